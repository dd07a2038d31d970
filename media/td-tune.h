/* td-tune: a tune (music on hold, ringback) encoded once, at load, into the
 * RTP payloads of every codec tandem plays: PCMU, PCMA, G.722 and Opus.
 *
 * tandem plays tunes to callers from its own RTP relay, which stamps each
 * caller's SSRC, sequence number and timestamp. GStreamer decodes the file
 * once, at load, and its encoders encode it once per codec (G.711 is
 * encoded in C, td-g711.c); playback is then plain memory, one 20 ms frame
 * per tick per caller, looping the encoded frames (GStreamer's seamless-loop
 * seeks break RTP timing at the loop point, and a pipeline per call costs
 * far more: see /work/shared/notes/media.md).
 *
 * Seamless loops: G.722 and Opus, whose frames depend on what came before,
 * are encoded from the tune as a loop (its last second before its start,
 * its first after its end), keeping the frames of the middle pass, so that
 * the encoder state at frame 0 is about the one frame n-1 leaves a decoder
 * in: no click at the loop point (G.711 is stateless). Measured with a tone:
 * Opus keeps its level within 3% across the loop point, G.722 wobbles by
 * about 1 dB for some 50 ms (its ADPCM never settles into an exact cycle;
 * from a cold encoder it was +11 dB, a click). Opus frames are shifted by
 * the encoder's 6.5 ms look-ahead against the others: harmless in a loop.
 *
 * Measured here (test-tune -m perf -p /tune/measure-3-minutes: a 3-minute
 * 44.1 kHz stereo MP3 of a tone and noise; 2 vCPUs shared with other
 * builds, GStreamer 1.22): a load takes 1.7-2.9 s, 1.9 s of CPU: decoding
 * (into both streams, G.711 encoded as it comes) 0.5-1.1 s, G.722 0.15-0.3 s,
 * Opus 0.9-1.5 s (opusenc at complexity 10); G.711 alone, before G.722 and
 * Opus, took 0.3-0.5 s. Held for the tune's life: PCMU 1.44 MB, PCMA
 * 1.44 MB, G.722 1.44 MB, Opus 0.59 MB (24 kbit/s, 61 bytes a frame on
 * average, and a 4-byte offset each). During the load the peak RSS grows by
 * 12 MB more (the 16 kHz PCM, 5.8 MB, and the encoders' output), all freed
 * at its end; GStreamer's own first load, its plugins mapped (libav's for
 * G.722), peaks at about 65 MB RSS (55 MB before G.722 and Opus).
 *
 * A TdTune is immutable once loaded and its reference count is atomic, so
 * the relay thread may hold and drop references while others load tunes. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* td_tune_new_from_pcm's rate, and G.711's frames. */
#define TD_TUNE_RATE          8000   /* Hz */
#define TD_TUNE_FRAME_SAMPLES 160    /* 20 ms at 8 kHz */
#define TD_TUNE_FRAME_BYTES   160    /* G.711 (and G.722) bytes per 20 ms frame */
#define TD_TUNE_MAX_SECONDS   600    /* longer tunes are refused (memory) */

#define TD_TUNE_ERROR (td_tune_error_quark ())
GQuark td_tune_error_quark (void);

typedef enum {
  TD_TUNE_ERROR_NOT_FOUND,   /* missing, unreadable or not a regular file; an unknown tone */
  TD_TUNE_ERROR_NOT_AUDIO,   /* not a media file, or one without an audio stream */
  TD_TUNE_ERROR_NO_DECODER,  /* audio, but no GStreamer plugin decodes it */
  TD_TUNE_ERROR_EMPTY,       /* decoded to no samples at all */
  TD_TUNE_ERROR_TOO_LONG,    /* over TD_TUNE_MAX_SECONDS */
  TD_TUNE_ERROR_FAILED,      /* GStreamer unusable, a corrupt stream, a timeout */
} TdTuneError;

/* The codecs a tune is held in. Not RTP payload type numbers: those come
 * from the SDP (td_codec_from_sdp takes either). */
typedef enum {
  TD_CODEC_PCMU,
  TD_CODEC_PCMA,
  TD_CODEC_G722,
  TD_CODEC_OPUS,
} TdCodec;
#define TD_CODEC_COUNT 4

/* "0", "8", "9" (static payload types) or an a=rtpmap value: "PCMU/8000",
 * "PCMA/8000", "G722/8000" (optionally "/1"), "opus/48000/2"; encoding names
 * are case-insensitive. FALSE for anything else, other rates included. */
gboolean td_codec_from_sdp (const char *rtpmap_or_pt, TdCodec *out);
/* "PCMU" "PCMA" "G722" "opus" (the rtpmap spelling); NULL for anything else. */
const char *td_codec_name (TdCodec codec);
/* The RTP clock: 8000, 8000, 8000 (G.722's, RFC 3551, though it samples at
 * 16 kHz), 48000 (Opus, whatever its bandwidth, RFC 7587). 0 otherwise. */
guint32 td_codec_clock_rate (TdCodec codec);
/* RTP timestamp units per 20 ms frame: 160, 160, 160, 960. 0 otherwise. */
guint td_codec_frame_ticks (TdCodec codec);

typedef struct _TdTune TdTune;

/* Decodes @path (anything decodebin handles: WAV, Ogg/Vorbis, FLAC, MP3...)
 * once, into two mono streams, each resampled once from the source: 8 kHz
 * for G.711 (an 8 kHz file's samples, exactly) and 16 kHz for G.722 and
 * wideband Opus, and encodes it in every codec (see the top for the cost). Blocks for the load, so call it
 * at startup or from a worker thread, not from the relay's. Thread-safe;
 * needs no main loop and leaves no pipeline behind. A codec whose encoder
 * this GStreamer lacks (avenc_g722 is in gstreamer1.0-libav, opusenc in
 * -plugins-base) is absent from the tune (td_tune_has_codec), not an error.
 * Errors are TD_TUNE_ERROR and name @path. */
TdTune *td_tune_load (const char *path, GError **error);

/* A tune from @n_samples of 8 kHz mono PCM already in memory (tests,
 * generated tones), encoded like a loaded one: G.711 straight from the
 * samples, G.722 and Opus by GStreamer. Its path is "(pcm)". */
TdTune *td_tune_new_from_pcm (const gint16 *samples, gsize n_samples);

/* A national ringing tone, generated, in every codec, looping its cadence:
 * "cn" 450 Hz, 1 s on / 4 s off; "us" 440 + 480 Hz, 2 s on / 4 s off;
 * "eu" (ETSI/CEPT) 425 Hz, 1 s on / 4 s off. Its path is "tone:NAME".
 * TD_TUNE_ERROR_NOT_FOUND, naming @name, for anything else. */
TdTune *td_tune_new_tone (const char *name, GError **error);

TdTune *td_tune_ref (TdTune *tune);
void td_tune_unref (TdTune *tune);

const char *td_tune_path (const TdTune *tune);

/* The number of 20 ms frames, at least 1, the same in every codec; the last
 * is padded with silence. */
guint td_tune_n_frames (const TdTune *tune);

/* FALSE: this GStreamer has no encoder for @codec (or it failed at load). */
gboolean td_tune_has_codec (const TdTune *tune, TdCodec codec);

/* Frame @i % n_frames encoded in @codec, one RTP payload of 20 ms, and its
 * size in *@len (G.711 and G.722: TD_TUNE_FRAME_BYTES; Opus frames vary).
 * Points into the tune, valid while the tune lives. NULL (and *@len 0) if
 * the tune lacks @codec. */
const guint8 *td_tune_frame (const TdTune *tune, TdCodec codec, guint i, gsize *len);

/* Bytes the tune holds for @codec (payloads and their index). */
gsize td_tune_memory (const TdTune *tune, TdCodec codec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdTune, td_tune_unref)

G_END_DECLS
