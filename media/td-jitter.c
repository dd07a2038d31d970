/* TdJitter: see td-jitter.h. Everything is relative to the playout point
 * (play_ts, in ring slot play_idx): a packet n frames ahead of it goes to
 * slot play_idx + n, so the ring never depends on the stream's absolute
 * timestamps (random starts, 32-bit wrap). */
#include "td-jitter.h"

#include <string.h>

void
td_jitter_init (TdJitter *j, guint frame_ticks)
{
  g_return_if_fail (frame_ticks > 0);
  memset (j, 0, sizeof *j);
  j->frame_ticks = frame_ticks;
}

static void
clear_slots (TdJitter *j)
{
  for (guint i = 0; i < TD_JITTER_SLOTS; i++)
    j->slot[i].full = FALSE;
}

void
td_jitter_reset (TdJitter *j)
{
  clear_slots (j);
  j->started = FALSE;
}

/* The ring index of the frame n frames from the playout point. */
static inline guint
slot_index (const TdJitter *j, int n)
{
  return (guint) (((int) j->play_idx + n) % TD_JITTER_SLOTS + TD_JITTER_SLOTS) % TD_JITTER_SLOTS;
}

static inline TdJitterSlot *
slot_at (TdJitter *j, int n)
{
  return &j->slot[slot_index (j, n)];
}

/* Is the frame n frames ahead buffered? (A slot may still hold a frame of
 * another lap: its timestamp tells.) */
static inline gboolean
holds (const TdJitter *j, int n)
{
  const TdJitterSlot *s = &j->slot[slot_index (j, n)];
  return s->full && s->ts == j->play_ts + (guint32) n * j->frame_ticks;
}

guint
td_jitter_depth (const TdJitter *j)
{
  if (!j->started)
    return 0;
  for (int n = TD_JITTER_SLOTS - 1; n >= 0; n--)
    if (holds (j, n))
      return (guint) n + 1;
  return 0;
}

/* The playout point moves one frame on; what its slot held is gone. */
static void
advance (TdJitter *j)
{
  j->slot[j->play_idx].full = FALSE;
  j->play_ts += j->frame_ticks;
  j->play_idx = (j->play_idx + 1) % TD_JITTER_SLOTS;
}

static void
resync (TdJitter *j, guint32 ssrc, guint16 seq, guint32 ts)
{
  if (j->started)
    j->resyncs++;
  clear_slots (j);
  j->started = TRUE;
  j->ssrc = ssrc;
  j->max_seq = seq;
  j->play_ts = ts;
  j->play_idx = 0;
  j->idle_pops = 0;
  j->spare_pops = 0;
  j->last_pop_missing = FALSE;
}

/* d / ft rounded to the nearest integer, for either sign: a sender whose
 * timestamps are a little off the 20 ms grid still lands in its slot. */
static inline int
frames_of (gint32 d, guint ft)
{
  gint64 half = ft / 2;
  return (int) (d >= 0 ? (d + half) / (gint64) ft : -((-(gint64) d + half) / (gint64) ft));
}

TdJitterPush
td_jitter_push (TdJitter *j, guint32 ssrc, guint16 seq, guint32 ts, const guint8 *payload,
                gsize len)
{
  TdJitterSlot *s;
  gint16 seq_ahead;
  int n;

  if (len > TD_JITTER_MAX_PAYLOAD)
    return TD_JITTER_TOO_BIG;
  if (!j->started || ssrc != j->ssrc || j->idle_pops >= TD_JITTER_IDLE_POPS)
    resync (j, ssrc, seq, ts);
  seq_ahead = (gint16) (seq - j->max_seq);
  n = frames_of ((gint32) (ts - j->play_ts), j->frame_ticks);
  if (n >= TD_JITTER_SLOTS || n < -TD_JITTER_SLOTS) {
    /* Beyond reach: a stream that jumped (its sequence moves on), or an
     * old packet from long ago (its sequence is behind). */
    if (seq_ahead <= 0) {
      j->late++;
      return TD_JITTER_LATE;
    }
    resync (j, ssrc, seq, ts);
    seq_ahead = 0;
    n = 0;
  }
  if (n < 0) {
    /* The frame just concealed came after all: step back to it, if that
     * keeps the delay within bounds (one more frame of delay from now on). */
    if (n == -1 && j->last_pop_missing && td_jitter_depth (j) + 1 <= TD_JITTER_MAX_FRAMES) {
      j->play_ts -= j->frame_ticks;
      j->play_idx = slot_index (j, -1);
      j->last_pop_missing = FALSE;
      j->stretches++;
      n = 0;
    } else {
      j->late++;
      return TD_JITTER_LATE;
    }
  }
  while (n >= TD_JITTER_MAX_FRAMES) {
    advance (j);   /* the oldest waiting frame goes, played or not */
    j->overflows++;
    n--;
  }
  s = slot_at (j, n);
  if (holds (j, n)) {
    j->duplicates++;
    return TD_JITTER_DUPLICATE;
  }
  s->ts = j->play_ts + (guint32) n * j->frame_ticks;
  s->len = (guint16) len;
  s->full = TRUE;
  if (len)
    memcpy (s->data, payload, len);
  if (seq_ahead > 0)
    j->max_seq = seq;
  j->idle_pops = 0;
  return TD_JITTER_ACCEPTED;
}

TdJitterResult
td_jitter_pop (TdJitter *j, const guint8 **payload, gsize *len)
{
  TdJitterResult result;

  *payload = NULL;
  *len = 0;
  if (!j->started)
    return TD_JITTER_IDLE;
  if (holds (j, 0)) {
    TdJitterSlot *s = &j->slot[j->play_idx];
    *payload = s->data;
    *len = s->len;
    result = TD_JITTER_FRAME;
  } else if (td_jitter_depth (j) == 0 && ++j->idle_pops > TD_JITTER_IDLE_POPS) {
    result = TD_JITTER_IDLE;   /* stopped a while ago: nothing left to conceal */
  } else {
    j->missing++;
    result = TD_JITTER_MISSING;
  }
  j->last_pop_missing = result == TD_JITTER_MISSING;
  advance (j);
  /* A whole frame waited beyond this one, every pop for a while: the delay
   * is larger than the jitter needs; play one frame less. */
  if (td_jitter_depth (j) >= 1) {
    if (++j->spare_pops >= TD_JITTER_SHRINK_POPS) {
      advance (j);
      j->shrinks++;
      j->spare_pops = 0;
    }
  } else {
    j->spare_pops = 0;
  }
  return result;
}
