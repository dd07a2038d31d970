/* gst-rooms: N three-party rooms mixed the GStreamer way (issue 11), one
 * pipeline per room (gm-room.c), all fed from ONE thread that imitates the
 * relay: every 20 ms each party's PCMU packet is pushed into its room, and
 * the mixed packets are taken from the appsinks as they come out. Judged
 * against the goals per receive stream: loss, added latency, the
 * longest stall; and CPU and threads per room. Optionally more rooms are
 * started while the N run, to look for the start-up stalls the notes saw.
 *
 *   gst-rooms [--rooms N] [--duration S] [--feed appsrc|pad] [--late K] ...
 *
 * Not a test: it takes the machine for its duration. */
#include <gst/gst.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gm-room.h"

#define MAX_ROOMS 1000

static struct {
  gint rooms, parties, duration, warmup, latency, late, late_after, late_gap;
  gchar *feed;
  gboolean no_queues, ignore_inactive, no_recalc, preset_time;
} opt = { 10, 3, 15, 3, 40, 0, 2, 0, NULL, FALSE, FALSE, FALSE, FALSE };

static GmRoom *rooms[MAX_ROOMS];       /* atomic pointers; the feeder reads */
static gint n_slots;                   /* atomic */
static gint stop;                      /* atomic */
static gint64 win_start = G_MAXINT64, win_end = G_MAXINT64;   /* atomic */

/* The feeder's own figures, in the window. */
static struct {
  gint64 max_late_ns, max_pass_ns;
  guint64 ticks, late_5ms;
} feeder;

static void
sleep_until (gint64 t_ns)
{
  struct timespec ts = { t_ns / 1000000000, t_ns % 1000000000 };
  while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
    ;
}

/* Imitates the relay: each tick pushes one packet per party of every live
 * room (a late tick sends at once: the phones' packets queue meanwhile). */
static void *
feed_thread (void *unused)
{
  gint64 t0 = gm_now_ns ();
  for (guint64 i = 0; !g_atomic_int_get (&stop); i++) {
    gint64 due = t0 + (gint64) i * GM_FRAME_NS;
    sleep_until (due);
    gint64 now = gm_now_ns ();
    gint n = g_atomic_int_get (&n_slots);
    for (gint k = 0; k < n; k++) {
      GmRoom *r = g_atomic_pointer_get (&rooms[k]);
      if (r && g_atomic_int_get (&r->active))
        gm_room_feed (r, gm_now_ns ());
    }
    gint64 done = gm_now_ns ();
    if (now >= __atomic_load_n (&win_start, __ATOMIC_RELAXED)
        && now <= __atomic_load_n (&win_end, __ATOMIC_RELAXED)) {
      feeder.ticks++;
      feeder.max_late_ns = MAX (feeder.max_late_ns, now - due);
      feeder.max_pass_ns = MAX (feeder.max_pass_ns, done - now);
      if (now - due > 5000000)
        feeder.late_5ms++;
    }
  }
  return NULL;
}

/* Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
static void
machine_jiffies (gint64 *busy, gint64 *total)
{
  g_autofree gchar *s = NULL;
  gint64 v[8] = { 0 };
  *busy = *total = 0;
  if (!g_file_get_contents ("/proc/stat", &s, NULL, NULL)
      || sscanf (s, "cpu %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT
                 " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT,
                 &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
    return;
  *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  *total = *busy + v[3] + v[4];
}

static gint64
cpu_ns (clockid_t c)
{
  struct timespec ts;
  clock_gettime (c, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gint64
status_field (const char *key)   /* from /proc/self/status, e.g. "Threads:" */
{
  g_autofree gchar *s = NULL;
  if (!g_file_get_contents ("/proc/self/status", &s, NULL, NULL))
    return -1;
  const char *p = strstr (s, key);
  return p ? g_ascii_strtoll (p + strlen (key), NULL, 10) : -1;
}

/* Builds a room and puts it in the feeder's list (active later). */
static GmRoom *
room_add (guint id, const GmConfig *cfg)
{
  g_autoptr (GError) error = NULL;
  GmRoom *r = gm_room_new (id, cfg, &error);
  if (!r) {
    fprintf (stderr, "gst-rooms: %s\n", error->message);
    exit (1);
  }
  g_atomic_pointer_set (&rooms[id], r);
  if ((gint) id >= g_atomic_int_get (&n_slots))
    g_atomic_int_set (&n_slots, id + 1);
  return r;
}

static void
set_window (GmRoom *r, gint64 a, gint64 b)
{
  __atomic_store_n (&r->win[0], a, __ATOMIC_RELAXED);
  __atomic_store_n (&r->win[1], b, __ATOMIC_RELAXED);
}

/* Acts on the rooms' LATENCY messages (as an application's bus watch
 * would) and activates late rooms [first, last) once `activate_at` passed. */
static void
tend (gint first, gint last, gint64 activate_at)
{
  gint n = g_atomic_int_get (&n_slots);
  for (gint k = 0; k < n && !opt.no_recalc; k++)
    if (rooms[k])
      gm_room_latency (rooms[k]);
  for (gint k = first; k < last && gm_now_ns () >= activate_at; k++)
    if (rooms[k] && !g_atomic_int_get (&rooms[k]->active)) {
      set_window (rooms[k], gm_now_ns () + GST_SECOND, win_end);
      g_atomic_int_set (&rooms[k]->active, 1);
    }
}

/* Sleeps until `t`, tending the rooms every 20 ms. */
static void
tend_until (gint64 t, gint first, gint last, gint64 activate_at)
{
  while (gm_now_ns () < t) {
    tend (first, last, activate_at);
    sleep_until (MIN (t, gm_now_ns () + GM_FRAME_NS));
  }
}

typedef struct {
  guint rooms, streams;
  guint64 out_expected, out_got, holes, breaks, odd, cycles, missing, spurious;
  guint64 fed, jb_pushed, jb_lost, jb_late, push_failed;
  gint64 max_gap_win, max_gap_all, max_start, max_first_tone, max_build;
  guint gaps_over_100, silences_over_300, no_first, gaps_listed;
  gint64 max_unheard;
  double own_max;
  gint64 max_match;
  guint errors, warnings, latency_msgs;
  GArray *lat;
} Totals;

static double
ms (gint64 ns)
{
  return ns / 1e6;
}

/* The jitterbuffers' counters, read while the pipeline still plays. */
static void
add_inputs (Totals *t, GmRoom *r)
{
  guint64 pushed, lost, late;
  gm_room_jbuf_stats (r, &pushed, &lost, &late);
  t->jb_pushed += pushed;
  t->jb_lost += lost;
  t->jb_late += late;
  t->fed += r->fed;
  t->push_failed += r->push_failed;
  t->errors += r->errors;
  t->warnings += r->warnings;
  t->latency_msgs += r->latency_msgs;
}

/* The rest, once the pipeline has stopped (its threads have ended). */
static void
add_room (Totals *t, GmRoom *r)
{
  t->rooms++;
  t->max_build = MAX (t->max_build, r->build_ns);
  if (r->first_error)
    fprintf (stderr, "room %u: %s\n", r->id, r->first_error);
  gint64 win_len = MAX (0, r->win[1] - r->win[0]);
  for (guint q = 0; q < r->cfg.parties; q++) {
    GmStream *s = &r->out[q];
    t->streams++;
    guint64 expected = win_len / GM_FRAME_NS;
    t->out_expected += expected;
    t->out_got += s->packets_win;
    t->holes += s->holes_win;
    t->breaks += s->seq_breaks_win;
    t->odd += s->odd_packets;
    t->max_gap_win = MAX (t->max_gap_win, s->max_gap_win_ns);
    t->max_gap_all = MAX (t->max_gap_all, s->max_gap_ns);
    t->gaps_over_100 += s->max_gap_win_ns > 100000000;
    if (s->max_gap_ns > 100000000 && t->gaps_listed++ < 12)
      printf ("    stall: room %u listener %u: %.0f ms without a packet from %.0f ms after PLAYING (%.0f ms %s the window), %"
              G_GUINT64_FORMAT " packets before\n", r->id, q, ms (s->max_gap_ns), ms (s->max_gap_at_ns - r->playing_ns),
              ms (ABS (s->max_gap_at_ns - r->win[0])), s->max_gap_at_ns < r->win[0] ? "before" : "into",
              s->packets_at_gap);
    if (s->packets == 0)
      t->no_first++;
    else
      t->max_start = MAX (t->max_start, s->first_ns - r->first_push_ns);
    t->own_max = MAX (t->own_max, s->own_max);
    t->max_match = MAX (t->max_match, s->max_match_ns);
    g_array_append_vals (t->lat, s->latency->data, s->latency->len);
    for (guint p = 0; p < r->cfg.parties; p++) {
      if (p == q)
        continue;
      GmHeard *h = &s->heard[p];
      t->cycles += h->cycles;
      t->missing += h->missing;
      t->spurious += h->spurious;
      t->max_unheard = MAX (t->max_unheard, h->max_unheard_ns);
      t->silences_over_300 += h->max_unheard_ns > 300000000;
      if (h->first_latency_ns < 0)
        t->no_first++;
      else
        t->max_first_tone = MAX (t->max_first_tone, h->first_latency_ns);
    }
  }
}

static void
report (const char *label, Totals *t)
{
  printf ("%s: %u rooms, %u receive streams\n", label, t->rooms, t->streams);
  if (!t->rooms)
    return;
  printf ("  output: %" G_GUINT64_FORMAT " packets arrived in the window for %" G_GUINT64_FORMAT
          " frames of it; %" G_GUINT64_FORMAT " frames missing from the RTP timestamps (%.3f%%), %"
          G_GUINT64_FORMAT " sequence breaks, %" G_GUINT64_FORMAT " not 160 bytes\n", t->out_got,
          t->out_expected, t->holes, t->out_got ? 100.0 * t->holes / t->out_got : 0, t->breaks, t->odd);
  printf ("  lost in the mix: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " tone frames (%.3f%%) over %"
          G_GUINT64_FORMAT " tone cycles; %" G_GUINT64_FORMAT " unmatched edges, onsets matched within %.1f ms of running time\n",
          t->missing, t->cycles * GM_ON, t->cycles ? 100.0 * t->missing / (t->cycles * GM_ON) : 0,
          t->cycles, t->spurious, ms (t->max_match));
  printf ("  inputs: %" G_GUINT64_FORMAT " fed, jitterbuffers pushed %" G_GUINT64_FORMAT
          ", lost %" G_GUINT64_FORMAT ", late %" G_GUINT64_FORMAT "; push failures %" G_GUINT64_FORMAT "\n",
          t->fed, t->jb_pushed, t->jb_lost, t->jb_late, t->push_failed);
  printf ("  added latency (tone onset fed -> heard in the mix): p50 %.1f  p95 %.1f  p99 %.1f  max %.1f ms (%u onsets)\n",
          ms (gm_quantile (t->lat, 0.5)), ms (gm_quantile (t->lat, 0.95)),
          ms (gm_quantile (t->lat, 0.99)), ms (gm_quantile (t->lat, 1)), t->lat->len);
  printf ("  longest gap between output packets: %.1f ms in the window (%u streams > 100 ms), %.1f ms from the first packet on\n",
          ms (t->max_gap_win), t->gaps_over_100, ms (t->max_gap_all));
  printf ("  longest a party went unheard in a mix: %.0f ms (its pause: 180-200 ms; %u listener-party pairs > 300 ms)\n",
          ms (t->max_unheard), t->silences_over_300);
  printf ("  own tone in own mix (N-1): max %.1f dB of a full tone frame\n",
          10 * log10 (MAX (t->own_max, 1e-12)));
  printf ("  start: build max %.1f ms; first packet fed -> first mixed packet max %.1f ms; first tone heard max %.1f ms after it was fed; %u streams/pairs never started\n",
          ms (t->max_build), ms (t->max_start), ms (t->max_first_tone), t->no_first);
  printf ("  bus: %u errors, %u warnings, %u latency messages\n", t->errors, t->warnings, t->latency_msgs);
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    { "rooms", 0, 0, G_OPTION_ARG_INT, &opt.rooms, "rooms running (10)", "N" },
    { "parties", 0, 0, G_OPTION_ARG_INT, &opt.parties, "parties per room, 3..6 (3)", "N" },
    { "duration", 0, 0, G_OPTION_ARG_INT, &opt.duration, "measurement window (15)", "S" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &opt.warmup, "before the window, after the last room started (3)", "S" },
    { "feed", 0, 0, G_OPTION_ARG_STRING, &opt.feed, "appsrc (default) or pad: push into the jitterbuffers' sink pads", "HOW" },
    { "latency", 0, 0, G_OPTION_ARG_INT, &opt.latency, "rtpjitterbuffer latency (40)", "MS" },
    { "no-queues", 0, 0, G_OPTION_ARG_NONE, &opt.no_queues, "tee straight into the mixers", NULL },
    { "ignore-inactive", 0, 0, G_OPTION_ARG_NONE, &opt.ignore_inactive, "audiomixer ignore-inactive-pads", NULL },
    { "preset-time", 0, 0, G_OPTION_ARG_NONE, &opt.preset_time, "fix clock and base time before PLAYING (the start-up stall's fix)", NULL },
    { "no-recalc", 0, 0, G_OPTION_ARG_NONE, &opt.no_recalc, "ignore LATENCY messages (no bus watch)", NULL },
    { "late", 0, 0, G_OPTION_ARG_INT, &opt.late, "rooms started while the others run (0)", "K" },
    { "late-after", 0, 0, G_OPTION_ARG_INT, &opt.late_after, "... this far into the window (2)", "S" },
    { "late-gap", 0, 0, G_OPTION_ARG_INT, &opt.late_gap, "... their first packet this long after PLAYING (0)", "MS" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- GStreamer N-1 rooms under load");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, "gst-rooms: %s\n", error->message);
    return 2;
  }
  GmConfig cfg = { GM_FEED_APPSRC, opt.parties, opt.latency, !opt.no_queues, opt.ignore_inactive,
                   opt.preset_time };
  if (opt.feed && g_str_equal (opt.feed, "pad"))
    cfg.feed = GM_FEED_PAD;
  else if (opt.feed && !g_str_equal (opt.feed, "appsrc")) {
    fprintf (stderr, "gst-rooms: --feed appsrc|pad\n");
    return 2;
  }
  if (opt.parties < 3 || opt.parties > GM_MAX_PARTIES || opt.rooms < 1
      || opt.rooms + opt.late > MAX_ROOMS || opt.duration < 2 || opt.late_after >= opt.duration) {
    fprintf (stderr, "gst-rooms: bad --parties, --rooms, --late or --duration\n");
    return 2;
  }
  gst_init (NULL, NULL);
  pthread_t feeder_thread;
  pthread_create (&feeder_thread, NULL, feed_thread, NULL);
  gint64 threads0 = status_field ("Threads:"), rss0 = status_field ("VmRSS:");
  clockid_t feeder_clock;
  pthread_getcpuclockid (feeder_thread, &feeder_clock);

  gint64 t_build = gm_now_ns ();
  for (gint k = 0; k < opt.rooms; k++) {
    GmRoom *r = room_add (k, &cfg);
    g_atomic_int_set (&r->active, 1);
    tend (0, 0, 0);
  }
  gint64 built = gm_now_ns ();
  gint64 ws = built + (gint64) opt.warmup * GST_SECOND, we = ws + (gint64) opt.duration * GST_SECOND;
  tend_until (ws, 0, 0, 0);
  __atomic_store_n (&win_end, we, __ATOMIC_RELAXED);
  __atomic_store_n (&win_start, ws, __ATOMIC_RELAXED);
  for (gint k = 0; k < opt.rooms; k++)
    set_window (rooms[k], ws, we);
  struct rusage ru0, ru1;
  gint64 mb0, mt0, mb1, mt1;
  machine_jiffies (&mb0, &mt0);
  getrusage (RUSAGE_SELF, &ru0);
  gint64 f0 = cpu_ns (feeder_clock), c0 = gm_now_ns ();

  gint64 threads_max = status_field ("Threads:");
  if (opt.late > 0) {
    tend_until (ws + (gint64) opt.late_after * GST_SECOND, 0, 0, 0);
    for (gint k = opt.rooms; k < opt.rooms + opt.late; k++)
      room_add (k, &cfg);
    tend (0, 0, 0);
    threads_max = MAX (threads_max, status_field ("Threads:"));
    tend_until (we, opt.rooms, opt.rooms + opt.late, gm_now_ns () + (gint64) opt.late_gap * 1000000);
  } else {
    tend_until (we, 0, 0, 0);
  }
  getrusage (RUSAGE_SELF, &ru1);
  machine_jiffies (&mb1, &mt1);
  gint64 f1 = cpu_ns (feeder_clock), c1 = gm_now_ns ();
  gint64 threads = MAX (threads_max, status_field ("Threads:")), rss = status_field ("VmRSS:");

  Totals main_t = { .lat = g_array_new (FALSE, FALSE, sizeof (gint64)) };
  Totals late_t = { .lat = g_array_new (FALSE, FALSE, sizeof (gint64)) };
  g_atomic_int_set (&stop, 1);
  pthread_join (feeder_thread, NULL);
  for (gint k = 0; k < opt.rooms + opt.late; k++)
    add_inputs (k < opt.rooms ? &main_t : &late_t, rooms[k]);
  for (gint k = 0; k < opt.rooms + opt.late; k++)
    gm_room_stop (rooms[k]);
  for (gint k = 0; k < opt.rooms + opt.late; k++)
    add_room (k < opt.rooms ? &main_t : &late_t, rooms[k]);

  double wall = (c1 - c0) / 1e9;
  double proc = ((ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec)
                 + ((ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec)) / 1e6);
  double feed_s = (f1 - f0) / 1e9;
  gint total = opt.rooms + opt.late;
  printf ("gst-rooms: %d rooms x %d parties, feed %s, jitterbuffer %d ms, %s, %s%s; built in %.2f s; window %.1f s; GStreamer %s\n",
          opt.rooms, opt.parties, cfg.feed == GM_FEED_PAD ? "pad" : "appsrc", opt.latency,
          cfg.queues ? "tee+queue" : "tee (no queues)",
          opt.no_recalc ? "LATENCY messages ignored" : "LATENCY messages acted on",
          opt.preset_time ? ", clock and base time preset" : "",
          (built - t_build) / 1e9, wall, gst_version_string ());
  if (opt.late)
    printf ("  + %d rooms started %d s into the window, first packets %d ms after PLAYING\n",
            opt.late, opt.late_after, opt.late_gap);
  printf ("  CPU: process %.1f%% of one core (feeder thread %.1f%%), %.2f%% per room; threads %" G_GINT64_FORMAT
          " (%.1f per room, %" G_GINT64_FORMAT " without rooms: main + feeder); RSS %.1f MB (%.0f KiB per room)\n",
          100 * proc / wall, 100 * feed_s / wall, 100 * (proc - feed_s) / wall / total, threads,
          (double) (threads - threads0) / total, threads0, rss / 1024.0, (double) (rss - rss0) / total);
  /* what else ran: co-tenants on these two cores spoil a window */
  double machine = mt1 > mt0 ? (double) (mb1 - mb0) / (mt1 - mt0) * sysconf (_SC_NPROCESSORS_ONLN) : 0;
  printf ("  machine: %.1f%% of one core busy in all, so %.1f%% outside this process\n",
          100 * machine, MAX (0, 100 * machine - 100 * proc / wall));
  printf ("  feeder: %" G_GUINT64_FORMAT " ticks, %" G_GUINT64_FORMAT " woke > 5 ms late, max %.1f ms late, longest pass %.1f ms\n",
          feeder.ticks, feeder.late_5ms, ms (feeder.max_late_ns), ms (feeder.max_pass_ns));
  report ("running rooms", &main_t);
  if (opt.late)
    report ("rooms started under load (window from 1 s after their first packet)", &late_t);
  printf ("SUMMARY feed=%s%s rooms=%d late=%d cpu=%.1f cpu_room=%.2f threads=%" G_GINT64_FORMAT
          " out_loss=%.3f mix_loss=%.3f lat_p50=%.1f lat_p99=%.1f lat_max=%.1f gap_max=%.1f unheard_max=%.0f\n",
          cfg.feed == GM_FEED_PAD ? "pad" : "appsrc", opt.preset_time ? "+preset" : "", opt.rooms, opt.late, 100 * proc / wall,
          100 * (proc - feed_s) / wall / total, threads,
          main_t.out_got ? 100.0 * main_t.holes / main_t.out_got : 0,
          main_t.cycles ? 100.0 * main_t.missing / (main_t.cycles * GM_ON) : 0,
          ms (gm_quantile (main_t.lat, 0.5)), ms (gm_quantile (main_t.lat, 0.99)),
          ms (gm_quantile (main_t.lat, 1)), ms (main_t.max_gap_win), ms (main_t.max_unheard));
  for (gint k = 0; k < total; k++)
    gm_room_free (rooms[k]);
  g_array_unref (main_t.lat);
  g_array_unref (late_t.lat);
  g_free (opt.feed);
  return 0;
}
