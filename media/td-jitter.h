/* TdJitter: the jitter buffer of one mix input (pure logic, no clock, no I/O).
 *
 * The relay pushes each RTP packet of a mix member as it arrives; the mix
 * pops one 20 ms frame per member on each of its frames. Packets are placed
 * by timestamp in 20 ms slots (`frame_ticks` RTP units each), so reordered
 * packets fall into place, duplicates and packets whose slot was already
 * played ("late") are dropped, and a frame that did not come is reported as
 * missing (the mix conceals it). Nothing ever waits for a packet: one
 * party's late packets cost that party a concealed frame, never the room a
 * stall, and they never come out after newer ones.
 *
 * Playout delay, adaptive and small (the room's added latency must stay
 * under 60 ms):
 *  - a stream starts (or resyncs) with its packet played at the very next
 *    pop: no delay beyond the wait for the mix's next frame;
 *  - a packet that misses its pop by one frame while the buffer is empty is
 *    not dropped: the playout point steps back to it (the frame before was
 *    concealed), which adds one frame of delay, up to TD_JITTER_MAX_FRAMES
 *    buffered in all;
 *  - a packet that would make more than TD_JITTER_MAX_FRAMES wait skips the
 *    oldest (an overflow: a burst after a stall, a sender clock faster than
 *    the relay's);
 *  - after TD_JITTER_SHRINK_POPS pops that each left a whole frame to spare,
 *    one frame is skipped: the delay comes back down once jitter subsides.
 * Resync (the next packet plays at once, the buffer is emptied): a new SSRC,
 * a timestamp beyond the buffer's reach either way while the sequence moves
 * on (a jump, a sender that restarted its clock), or a packet after
 * TD_JITTER_IDLE_POPS pops without any (the party stopped talking, hold). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define TD_JITTER_SLOTS 8           /* the ring: 160 ms of 20 ms frames */
#define TD_JITTER_MAX_PAYLOAD 1280  /* an Opus frame at its highest rate fits */
#define TD_JITTER_MAX_FRAMES 3      /* frames held at most, the one playing next included */
#define TD_JITTER_SHRINK_POPS 100   /* 2 s with a frame to spare: one less frame of delay */
#define TD_JITTER_IDLE_POPS 10      /* 200 ms without a packet: the stream is idle */

typedef enum {
  TD_JITTER_FRAME,     /* a frame: *payload, *len */
  TD_JITTER_MISSING,   /* its frame is lost or late: conceal */
  TD_JITTER_IDLE,      /* no stream (yet, or it stopped): silence, nothing to conceal */
} TdJitterResult;

typedef enum {
  TD_JITTER_ACCEPTED,
  TD_JITTER_LATE,        /* its slot was played already: dropped */
  TD_JITTER_DUPLICATE,   /* its slot holds it already: dropped */
  TD_JITTER_TOO_BIG,     /* over TD_JITTER_MAX_PAYLOAD: dropped */
} TdJitterPush;

typedef struct {
  guint32 ts;
  guint16 len;
  gboolean full;
  guint8 data[TD_JITTER_MAX_PAYLOAD];
} TdJitterSlot;

typedef struct {
  guint frame_ticks;         /* RTP timestamp units per 20 ms */
  gboolean started;          /* a stream is being played: ssrc, play_ts, max_seq valid */
  guint32 ssrc;
  guint32 play_ts;           /* the timestamp of the next frame to pop... */
  guint play_idx;            /* ...and its slot */
  guint16 max_seq;           /* the newest sequence number accepted */
  guint idle_pops;           /* pops in a row with nothing at all buffered */
  guint spare_pops;          /* pops in a row that left a frame to spare */
  gboolean last_pop_missing; /* the last pop concealed its frame */
  /* counters, for stats */
  guint64 late, duplicates, overflows, missing, resyncs, stretches, shrinks;
  TdJitterSlot slot[TD_JITTER_SLOTS];
} TdJitter;

void td_jitter_init (TdJitter *j, guint frame_ticks);
/* Forget the stream: the next packet starts afresh. */
void td_jitter_reset (TdJitter *j);
TdJitterPush td_jitter_push (TdJitter *j, guint32 ssrc, guint16 seq, guint32 ts,
                             const guint8 *payload, gsize len);
/* The next 20 ms frame. *payload stays valid until the next push or pop. */
TdJitterResult td_jitter_pop (TdJitter *j, const guint8 **payload, gsize *len);
/* Frames buffered from the playout point on (0 .. TD_JITTER_MAX_FRAMES). */
guint td_jitter_depth (const TdJitter *j);

G_END_DECLS
