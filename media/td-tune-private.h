/* td-tune-private.h: TdTune's insides, shared by
 *   td-tune.c         the object and td_tune_load (decoding a file)
 *   td-tune-codec.c   the codecs' names and clocks
 *   td-tune-encode.c  encoding decoded PCM into each codec's frames
 *   td-tone.c         generated ringing tones
 * Nothing outside media/td-tune*.c and td-tone.c includes this. */
#pragma once

#include "td-tune.h"

G_BEGIN_DECLS

/* The rate of td_tune_load's second stream: G.722's, and wideband Opus. */
#define TD_TUNE_DECODE_RATE 16000

/* One codec's frames. */
typedef struct {
  guint8 *data;              /* NULL: the codec is absent */
  gsize size;
  guint frame_bytes;         /* every frame this size, or 0: see offsets */
  guint32 *offsets;          /* frame_bytes == 0: n_frames + 1 offsets into data */
} TdTuneTrack;

struct _TdTune {
  gatomicrefcount ref;
  char *path;
  guint n_frames;
  TdTuneTrack track[TD_CODEC_COUNT];
};

/* A new tune of @n_frames frames, no track yet. */
TdTune *td_tune_alloc (const char *path, guint n_frames);

/* td-tune-encode.c. Both laws from @pcm, 8 kHz (n_frames * 160 samples,
 * mono, host order). */
void td_tune_encode_g711 (TdTune *tune, const gint16 *pcm);
/* G.722 and Opus from @pcm (n_frames * @rate / 50 samples, mono, host order;
 * @rate 8000 or TD_TUNE_DECODE_RATE) by GStreamer. A codec whose encoder is
 * missing or fails stays absent (logged once per process, or per failure).
 * Blocks; no main loop. */
void td_tune_encode_wideband (TdTune *tune, const gint16 *pcm, guint rate);

G_END_DECLS
