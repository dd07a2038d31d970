/* td-tune: a tune (music on hold, ringback) decoded once into G.711 frames.
 *
 * tandem plays tunes to callers from its own RTP relay, which stamps each
 * caller's SSRC, sequence number and timestamp. GStreamer decodes the file
 * once, at load; playback is then plain memory, one 20 ms frame per tick per
 * caller, looping the raw bytes (GStreamer's seamless-loop seeks break RTP
 * timing at the loop point, see /work/shared/notes/media.md).
 *
 * A TdTune is immutable once loaded and its reference count is atomic, so
 * the relay thread may hold and drop references while others load tunes. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define TD_TUNE_RATE          8000   /* Hz: G.711 */
#define TD_TUNE_FRAME_SAMPLES 160    /* 20 ms at 8 kHz */
#define TD_TUNE_FRAME_BYTES   160    /* one byte a sample in G.711 */
#define TD_TUNE_MAX_SECONDS   600    /* longer tunes are refused (memory) */

#define TD_TUNE_ERROR (td_tune_error_quark ())
GQuark td_tune_error_quark (void);

typedef enum {
  TD_TUNE_ERROR_NOT_FOUND,   /* missing, unreadable or not a regular file */
  TD_TUNE_ERROR_NOT_AUDIO,   /* not a media file, or one without an audio stream */
  TD_TUNE_ERROR_NO_DECODER,  /* audio, but no GStreamer plugin decodes it */
  TD_TUNE_ERROR_EMPTY,       /* decoded to no samples at all */
  TD_TUNE_ERROR_TOO_LONG,    /* over TD_TUNE_MAX_SECONDS */
  TD_TUNE_ERROR_FAILED,      /* GStreamer unusable, a corrupt stream, a timeout */
} TdTuneError;

/* RTP static payload type numbers (RFC 3551). */
typedef enum {
  TD_CODEC_PCMU = 0,
  TD_CODEC_PCMA = 8,
} TdCodec;

typedef struct _TdTune TdTune;

/* Decodes @path (anything decodebin handles: WAV, Ogg/Vorbis, FLAC, MP3 with
 * its plugin...) to 8 kHz mono and encodes it in both G.711 laws. Blocks for
 * the decode (measured: 0.2 s of CPU for a three-minute MP3, 0.4 s for Ogg
 * Vorbis, 0.1 s for WAV), so call it at startup or from a worker thread,
 * not from the relay's. Thread-safe; needs no main loop and leaves no
 * pipeline behind. Errors are TD_TUNE_ERROR and name @path. */
TdTune *td_tune_load (const char *path, GError **error);

/* A tune from @n_samples of 8 kHz mono PCM already in memory (tests,
 * generated tones); no GStreamer involved. Its path is "(pcm)". */
TdTune *td_tune_new_from_pcm (const gint16 *samples, gsize n_samples);

TdTune *td_tune_ref (TdTune *tune);
void td_tune_unref (TdTune *tune);

const char *td_tune_path (const TdTune *tune);

/* The number of 20 ms frames, at least 1; the last is padded with silence. */
guint td_tune_n_frames (const TdTune *tune);

/* Frame @i % n_frames encoded in @codec: TD_TUNE_FRAME_BYTES bytes of G.711,
 * pointing into the tune, valid while the tune lives. NULL for a codec other
 * than PCMU or PCMA. */
const guint8 *td_tune_frame (const TdTune *tune, TdCodec codec, guint i);

/* The G.711 law of an SDP format: a static payload type ("0", "8") or an
 * a=rtpmap value ("PCMU/8000", "pcma/8000/1"; encoding names are
 * case-insensitive). FALSE for anything else, including other clock rates. */
gboolean td_codec_from_sdp (const char *rtpmap_or_pt, TdCodec *out);

/* "PCMU" or "PCMA"; NULL for anything else. */
const char *td_codec_name (TdCodec codec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdTune, td_tune_unref)

G_END_DECLS
