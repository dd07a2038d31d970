/* td-tune-private.h: TdTune's insides, shared by
 *   td-tune.c         the object and td_tune_load (decoding a file)
 *   td-tune-encode.c  encoding decoded PCM into each codec's frames
 *   td-tone.c         generated ringing tones
 * Nothing outside media/td-tune*.c and td-tone.c includes this. */
#pragma once

#include "td-tune.h"

G_BEGIN_DECLS

/* The rate td_tune_load decodes at: G.722's, and wideband Opus; G.711 is
 * resampled from it. */
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

/* Encodes @pcm (n_frames * rate / 50 samples, mono, host-endian; @rate
 * 8000 or TD_TUNE_DECODE_RATE) into every codec's track. A codec whose
 * encoder is missing or fails stays absent (logged once per process, or
 * per failure). Blocks; no main loop. */
void td_tune_encode (TdTune *tune, const gint16 *pcm, guint rate);

G_END_DECLS
