/* What the GStreamer room bench sends and how it judges what comes back.
 *
 * Each party sends a tone of its own (a whole number of cycles per 20 ms
 * frame, so every tone frame is the same bytes and the tones are exactly
 * orthogonal over a frame), switched off for 200 ms of every second. A
 * listener's mixed stream is decoded and each frame's power at every
 * party's frequency measured (Goertzel): a rising edge of a party's tone,
 * matched to the moment the feeder sent that party's first tone packet,
 * gives the added latency; the frames between two edges give the frames of
 * that party the mix lost; the longest run without the tone, the longest
 * a party went unheard. The listener's own tone must never be in its mix
 * (N-1). */
#pragma once

#include <glib.h>

#define GM_MAX_PARTIES 6
#define GM_FRAME 160                 /* samples per 20 ms packet at 8 kHz */
#define GM_FRAME_NS 20000000LL
#define GM_SAMPLE_NS 125000LL
#define GM_CYCLE 50                  /* packets per tone cycle (1 s) */
#define GM_OFF 10                    /* silent packets per cycle (200 ms) */
#define GM_ON (GM_CYCLE - GM_OFF)
#define GM_AMPLITUDE 8000.0          /* per party: two summed never clip */
/* A frame "has" a tone when its power there is this fraction of a full
 * frame of it: at least 32 of the 160 samples. */
#define GM_ON_THRESHOLD 0.04
/* A rising edge counts as an onset only after this many frames without the
 * tone (the pause is 10): a short dropout inside a tone is not an onset. */
#define GM_EDGE_MIN_OFF 5
#define GM_ONSETS 512

gint64 gm_now_ns (void);             /* CLOCK_MONOTONIC */

double gm_tone_hz (guint party);
/* Whether `party` sends its tone in its room's packet number `n`. */
gboolean gm_tone_on (guint party, guint64 n);
/* One µ-law frame of the party's tone. */
void gm_tone_frame (guint party, guint8 out[GM_FRAME]);
/* Power of `pcm` at `hz`, 1.0 = a full frame of tone at GM_AMPLITUDE. */
double gm_tone_power (const gint16 *pcm, guint n, double hz);

/* When each of a party's tone onsets was pushed (monotonic) and the
 * running time it was stamped with: written by the feeder, read by the
 * listeners' streaming threads. */
typedef struct {
  gint64 t[GM_ONSETS], pts[GM_ONSETS];
  gint head;                         /* atomic: onsets written */
} GmOnsets;

void gm_onsets_push (GmOnsets *o, gint64 t_ns, gint64 pts_ns);

/* What one listener hears of one other party. */
typedef struct {
  gboolean on;
  guint off_run;                     /* frames since the tone was last heard */
  guint on_frames;                   /* since the last onset */
  gboolean counting;                 /* the last onset came in the window */
  gint64 first_latency_ns;           /* the first tone heard, -1: none yet */
  gint64 last_on_ns;                 /* arrival of the last frame with the tone */
  gint64 max_unheard_ns;             /* in the window: on-frame to on-frame, minus a frame */
  guint64 cycles, missing;           /* in the window: onset to onset */
  guint spurious;                    /* edges matching no onset sent */
} GmHeard;

/* One listener's mixed stream, written only by its appsink's streaming
 * thread (read once the pipeline has stopped). */
typedef struct {
  guint me, parties;
  GmOnsets *onsets;                  /* the room's [parties] */
  const gint64 *win;                 /* the room's window [start, end], ns */
  gint64 first_ns, last_ns;
  gint64 max_gap_ns;                 /* between packets after the first */
  gint64 max_gap_win_ns;             /* ... ending in the window */
  gint64 max_gap_at_ns;              /* when the longest gap began */
  guint64 packets, packets_win, odd_packets;
  guint32 last_ts;
  guint16 last_seq;
  guint64 holes_win;                 /* frames missing from the RTP timeline, window */
  guint64 seq_breaks_win;            /* sequence or timestamp not forward */
  double own_max;                    /* the listener's own tone, window */
  gint64 max_match_ns;               /* |onset's running time - edge's|, window */
  guint64 packets_at_gap;            /* packets before the longest gap */
  GmHeard heard[GM_MAX_PARTIES];
  GArray *latency;                   /* gint64 ns, onsets sent in the window */
} GmStream;

void gm_stream_init (GmStream *s, guint me, guint parties, GmOnsets *onsets,
                     const gint64 *win);
void gm_stream_clear (GmStream *s);
/* One packet out of the listener's appsink, seen at `arrival_ns`; `pts_ns`
 * is its buffer's PTS (running time of its first sample, -1: none). */
void gm_stream_packet (GmStream *s, const guint8 *rtp, gsize len, gint64 pts_ns,
                       gint64 arrival_ns);

/* Quantile q in [0, 1] of gint64 samples (sorts them); 0 when empty. */
gint64 gm_quantile (GArray *v, double q);
