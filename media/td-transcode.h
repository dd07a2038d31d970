/* TdTranscode: one mix member's codec, both ways: its 20 ms RTP payloads
 * decoded into the mix's PCM, the mix's PCM encoded into its payloads.
 *
 * G.711 (PCMU, PCMA) is done in C (td-g711.c), resampled 8 <-> 16 kHz when
 * the mix runs wideband. G.722 (avdec_g722/avenc_g722, gstreamer1.0-libav)
 * and Opus (opusdec/opusenc) are GStreamer elements driven synchronously
 * from the calling thread: our own src pad pushes a buffer into the
 * element's sink pad, its output arrives in our own sink pad's chain
 * function before gst_pad_push() returns. No pipeline, no bus, no clock, no
 * streaming thread: the relay's media thread does the work in the tick that
 * needs it. Both run at 16 kHz on the PCM side (G.722's rate; wideband Opus).
 *
 * Loss: td_transcode_conceal() gives a frame for a packet that did not
 * come: Opus's own packet loss concealment (opusdec plc, through a GAP
 * event), otherwise the last decoded frame repeated, fading by half each
 * time, silence after TD_TRANSCODE_FADE_FRAMES.
 *
 * Not thread-safe: one thread at a time (the mix's media thread). */
#pragma once

#include <glib.h>

#include "td-tune.h"

G_BEGIN_DECLS

#define TD_TRANSCODE_MAX_RATE 16000
#define TD_TRANSCODE_MAX_SAMPLES (TD_TRANSCODE_MAX_RATE / 50)   /* 20 ms */
#define TD_TRANSCODE_MAX_PAYLOAD 1280
#define TD_TRANSCODE_FADE_FRAMES 3
/* Opus sent by the mix: wideband voice. */
#define TD_TRANSCODE_OPUS_BITRATE 24000

typedef struct _TdTranscode TdTranscode;

/* Loads GStreamer and the G.722 and Opus plugins, once per process (the
 * first avdec_g722 took ~85 ms here, its plugin loading): call it where a
 * wait is harmless, so that no media thread stalls on a member's join.
 * Thread-safe; later calls return at once. */
void td_transcode_preload (void);

/* `rate`: the mix's PCM rate, 8000 or 16000; G.722 and Opus need 16000.
 * NULL (logged once per codec) if this GStreamer lacks the codec's elements. */
TdTranscode *td_transcode_new (TdCodec codec, guint rate);
void td_transcode_free (TdTranscode *t);
/* Is `codec` wideband (its PCM at 16 kHz)? */
gboolean td_transcode_is_wideband (TdCodec codec);
/* The mix changed rate (G.711 only): the resamplers start over. */
void td_transcode_set_rate (TdTranscode *t, guint rate);
guint td_transcode_rate (const TdTranscode *t);

/* One 20 ms payload into `pcm` (rate / 50 samples). FALSE if it did not
 * decode (wrong size, a decoder error): conceal instead. */
gboolean td_transcode_decode (TdTranscode *t, const guint8 *payload, gsize len, gint16 *pcm);
/* A frame for one that is missing (see top). */
void td_transcode_conceal (TdTranscode *t, gint16 *pcm);
/* rate / 50 samples of `pcm` into one payload in `out`
 * (TD_TRANSCODE_MAX_PAYLOAD bytes); its size, 0 if the encoder gave none. */
gsize td_transcode_encode (TdTranscode *t, const gint16 *pcm, guint8 *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdTranscode, td_transcode_free)

G_END_DECLS
