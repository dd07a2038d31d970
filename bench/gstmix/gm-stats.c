#include "gm-stats.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "td-g711.h"

gint64
gm_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

/* Bins 10, 22, 34, ... of a 160-point DFT at 8 kHz: 12 bins (600 Hz) apart,
 * so a tone cut mid-frame leaks < 0.1% of a full frame's power into
 * another's bin, far under GM_ON_THRESHOLD. */
double
gm_tone_hz (guint party)
{
  return 500.0 + 600.0 * party;
}

/* Staggered: the parties' onsets fall 340 ms apart. */
gboolean
gm_tone_on (guint party, guint64 n)
{
  return (n + 17 * party) % GM_CYCLE >= GM_OFF;
}

void
gm_tone_frame (guint party, guint8 out[GM_FRAME])
{
  double w = 2 * G_PI * gm_tone_hz (party) / 8000.0;
  for (guint i = 0; i < GM_FRAME; i++)
    out[i] = td_g711_ulaw_encode ((gint16) lrint (GM_AMPLITUDE * sin (w * i)));
}

double
gm_tone_power (const gint16 *pcm, guint n, double hz)
{
  double coeff = 2 * cos (2 * G_PI * hz / 8000.0), s1 = 0, s2 = 0;
  for (guint i = 0; i < n; i++) {
    double s0 = pcm[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  double p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  double full = GM_AMPLITUDE * GM_FRAME / 2.0;
  return p / (full * full);
}

void
gm_onsets_push (GmOnsets *o, gint64 t_ns, gint64 pts_ns)
{
  gint h = g_atomic_int_get (&o->head);
  o->t[h % GM_ONSETS] = t_ns;
  o->pts[h % GM_ONSETS] = pts_ns;
  g_atomic_int_set (&o->head, h + 1);   /* a full barrier: t[] is written first */
}

void
gm_stream_init (GmStream *s, guint me, guint parties, GmOnsets *onsets,
                const gint64 *win)
{
  memset (s, 0, sizeof *s);
  s->me = me;
  s->parties = parties;
  s->onsets = onsets;
  s->win = win;
  s->latency = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint p = 0; p < parties; p++) {
    s->heard[p].off_run = GM_OFF;     /* the first tone heard is an onset */
    s->heard[p].first_latency_ns = -1;
  }
}

void
gm_stream_clear (GmStream *s)
{
  g_clear_pointer (&s->latency, g_array_unref);
}

static gboolean
in_window (const GmStream *s, gint64 t)
{
  return t >= __atomic_load_n (&s->win[0], __ATOMIC_RELAXED)
      && t <= __atomic_load_n (&s->win[1], __ATOMIC_RELAXED);
}

/* The onset whose running time is nearest `media` (within half a cycle:
 * onsets are a cycle apart); -1 if none. The mix keeps its inputs' running
 * times, so this finds the onset a rising edge carries even when the mix
 * lost whole tone periods or runs seconds behind. */
static gint
nearest_onset (GmOnsets *o, gint64 media)
{
  gint head = g_atomic_int_get (&o->head), best = -1;
  gint64 best_d = GM_CYCLE * GM_FRAME_NS / 2;
  for (gint i = head - 1; i >= 0 && i >= head - GM_ONSETS; i--) {
    gint64 d = ABS (o->pts[i % GM_ONSETS] - media);
    if (d < best_d) {
      best_d = d;
      best = i;
    }
  }
  return best;
}

/* A qualified rising edge of party p in a frame whose first sample has
 * running time `pts`. The tone started `k` samples into this frame, and a
 * mixer with no delay would have delivered that frame k samples before the
 * input frame's send time, hence + k samples. */
static void
onset_heard (GmStream *s, guint p, double power, gint64 pts, gint64 arrival, gboolean win)
{
  GmHeard *h = &s->heard[p];
  GmOnsets *o = &s->onsets[p];
  if (win && h->counting) {
    h->cycles++;
    if (h->on_frames < GM_ON)
      h->missing += GM_ON - h->on_frames;
  }
  h->counting = win;
  h->on_frames = 0;
  double frac = sqrt (MIN (power, 1.0));
  gint64 k = GM_FRAME - (gint64) lrint (frac * GM_FRAME);
  gint i = pts >= 0 ? nearest_onset (o, pts + k * GM_SAMPLE_NS) : -1;
  if (i < 0 || o->t[i % GM_ONSETS] > arrival) {
    h->spurious++;
    return;
  }
  if (win)
    s->max_match_ns = MAX (s->max_match_ns, ABS (o->pts[i % GM_ONSETS] - (pts + k * GM_SAMPLE_NS)));
  gint64 sent = o->t[i % GM_ONSETS];
  gint64 lat = arrival - sent + k * GM_SAMPLE_NS;
  if (h->first_latency_ns < 0)
    h->first_latency_ns = lat;
  if (in_window (s, sent))
    g_array_append_val (s->latency, lat);
}

static void
frame_heard (GmStream *s, const gint16 *pcm, guint n, gint64 pts, gint64 arrival)
{
  gboolean win = in_window (s, arrival);
  for (guint p = 0; p < s->parties; p++) {
    double power = gm_tone_power (pcm, n, gm_tone_hz (p));
    if (p == s->me) {
      if (win && power > s->own_max)
        s->own_max = power;
      continue;
    }
    GmHeard *h = &s->heard[p];
    gboolean on = power > GM_ON_THRESHOLD;
    if (on && !h->on && h->off_run >= GM_EDGE_MIN_OFF)
      onset_heard (s, p, power, pts, arrival, win);
    if (on) {
      /* by arrival time: a stalled stream is unheard too */
      if (win && h->last_on_ns > 0)
        h->max_unheard_ns = MAX (h->max_unheard_ns, arrival - h->last_on_ns - GM_FRAME_NS);
      h->last_on_ns = arrival;
      h->on_frames++;
      h->off_run = 0;
    } else {
      h->off_run++;
    }
    h->on = on;
  }
}

void
gm_stream_packet (GmStream *s, const guint8 *rtp, gsize len, gint64 pts, gint64 arrival)
{
  gboolean win = in_window (s, arrival);
  if (s->packets > 0) {
    gint64 gap = arrival - s->last_ns;
    if (gap > s->max_gap_ns) {
      s->max_gap_at_ns = s->last_ns;
      s->packets_at_gap = s->packets;
    }
    s->max_gap_ns = MAX (s->max_gap_ns, gap);
    if (win)
      s->max_gap_win_ns = MAX (s->max_gap_win_ns, gap);
  } else {
    s->first_ns = arrival;
  }
  s->last_ns = arrival;
  s->packets++;
  if (win)
    s->packets_win++;

  gsize hdr = len >= 12 ? 12 + 4 * (gsize) (rtp[0] & 0x0f) : len;
  if (len >= 12) {
    guint16 seq = (guint16) (rtp[2] << 8 | rtp[3]);
    guint32 ts = (guint32) rtp[4] << 24 | (guint32) rtp[5] << 16 | (guint32) rtp[6] << 8 | rtp[7];
    if (s->packets > 1 && win) {
      /* a frame missing (lost downstream of the mix, or never mixed)
       * shows in the timestamps; anything else is a break */
      guint32 d = ts - s->last_ts;
      guint16 ds = (guint16) (seq - s->last_seq);
      if (d == 0 || d > G_MAXINT32 || ds == 0 || ds > G_MAXINT16)
        s->seq_breaks_win++;
      else if (d > GM_FRAME)
        s->holes_win += d / GM_FRAME - 1;
    }
    s->last_seq = seq;
    s->last_ts = ts;
  }
  if (len < hdr || len - hdr != GM_FRAME) {
    s->odd_packets++;
    if (len <= hdr)
      return;
  }
  guint n = MIN (len - hdr, 1024);
  gint16 pcm[1024];
  for (guint i = 0; i < n; i++)
    pcm[i] = td_g711_ulaw_decode (rtp[hdr + i]);
  frame_heard (s, pcm, n, pts, arrival);
}

static gint
cmp_i64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

gint64
gm_quantile (GArray *v, double q)
{
  if (v->len == 0)
    return 0;
  g_array_sort (v, cmp_i64);
  guint i = (guint) lrint (q * (v->len - 1));
  return g_array_index (v, gint64, i);
}
