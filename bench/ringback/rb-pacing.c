/* Pacing: N callers hearing ringback at once.
 *
 * N relay ports each play the same tune (PCMU, pt 0) to a receiver socket of
 * their own, as N ringing callers would hear it. A receiver thread records
 * every packet with its kernel receive time (SO_TIMESTAMPNS, taken when the
 * relay's sendmsg delivers it on loopback, so the receiver's own lateness is
 * not counted) and checks the stream: one SSRC, sequence +1, timestamp +160.
 *
 * Figures, over the window after a warm-up:
 *  - loss: packets the relay sent (tx_generated) that no receiver got, and
 *    sequence gaps; frames the relay skipped (timestamp jumps: its timer
 *    more than five ticks late) are reported apart;
 *  - pacing jitter: |inter-arrival - 20 ms| per caller, p50/p99/max;
 *  - the relay thread's CPU (schedstat), and cpu0's whole busy share (the
 *    loopback receive path runs in softirq, partly outside the thread). */
#define G_LOG_DOMAIN "ringback-bench"

#include "rb-pacing.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "rb-common.h"

#define WARMUP_S 2

typedef struct {
  int fd;
  gboolean started;
  guint16 last_seq;
  guint32 last_ts, ssrc;
  gint64 last_ns;
} Receiver;

typedef struct {
  guint n;
  Receiver *rx;
  gint64 warm_ns;               /* wall clock: jitter is recorded after it */
  atomic_bool stop;
  /* the receiver thread's alone until joined */
  RbSamples jitter;             /* |inter-arrival - 20 ms|, ns */
  guint64 received, missing, reordered, ssrc_changes, ts_jumps, not_rtp;
  gint64 cpu_ns;                /* the receiver thread's own CPU */
} Pacing;

static void
check_packet (Pacing *pc, Receiver *r, const RbPacket *p)
{
  RbRtp h;
  guint16 dseq;

  if (!rb_rtp_parse (p, &h)) {
    pc->not_rtp++;
    return;
  }
  pc->received++;
  if (!r->started) {
    r->started = TRUE;
    r->ssrc = h.ssrc;
    goto keep;
  }
  if (h.ssrc != r->ssrc) {
    pc->ssrc_changes++;
    r->ssrc = h.ssrc;
  }
  dseq = (guint16) (h.seq - r->last_seq);
  if (dseq == 0 || dseq > 0x8000) {
    pc->reordered++;             /* a duplicate or an old one: keep the newest */
    return;
  }
  pc->missing += dseq - 1u;
  if (h.ts - r->last_ts != (guint32) dseq * TD_TUNE_FRAME_SAMPLES)
    pc->ts_jumps++;
  if (p->arrival_ns >= pc->warm_ns && dseq == 1)
    rb_samples_add (&pc->jitter, ABS (p->arrival_ns - r->last_ns - RB_FRAME_NS));
keep:
  r->last_seq = h.seq;
  r->last_ts = h.ts;
  r->last_ns = p->arrival_ns;
}

static gpointer
receiver_thread (gpointer data)
{
  Pacing *pc = data;
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event ev[256];
  RbPacket pkts[16];

  rb_pin (0, 1);
  for (guint i = 0; i < pc->n; i++) {
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };
    epoll_ctl (ep, EPOLL_CTL_ADD, pc->rx[i].fd, &e);
  }
  for (;;) {
    gboolean stopping = atomic_load (&pc->stop);
    /* spinning, the receiver never sleeps: the relay's sends then never
     * wake it (a cross-core wake-up per packet, charged to the sender, that
     * a phone on the network would not cost the relay) */
    int n = epoll_wait (ep, ev, G_N_ELEMENTS (ev), rb_opt.spin ? 0 : 50);
    if (n <= 0 && stopping)
      break;   /* the relay stopped before `stop` was set: nothing is left in flight */
    for (int i = 0; i < n; i++) {
      Receiver *r = &pc->rx[ev[i].data.u32];
      guint got;
      while ((got = rb_receive (r->fd, pkts, G_N_ELEMENTS (pkts))) > 0)
        for (guint k = 0; k < got; k++)
          check_packet (pc, r, &pkts[k]);
    }
  }
  close (ep);
  pc->cpu_ns = rb_now_ns (CLOCK_THREAD_CPUTIME_ID);
  return NULL;
}

static guint64
sum_stats (TdRelayPort **ports, guint n, gboolean errors)
{
  guint64 sum = 0;

  for (guint i = 0; i < n; i++) {
    TdRelayStats st;
    td_relay_port_get_stats (ports[i], &st);
    sum += errors ? st.tx_errors : st.tx_generated;
  }
  return sum;
}

static void
report (Pacing *pc, guint64 sent, guint64 tx_errors, gint64 cpu_ns, gint64 window_ns,
        gint64 busy, gint64 total, pid_t relay_tid)
{
  double loss = sent ? 100.0 * (double) (sent - MIN (sent, pc->received)) / (double) sent : 0;
  double cpu = 100.0 * (double) cpu_ns / (double) window_ns;
  double jit99 = rb_samples_quantile (&pc->jitter, 0.99) / 1e6;
  g_autofree char *load = NULL;

  g_file_get_contents ("/proc/loadavg", &load, NULL, NULL);
  printf ("  machine load average after: %s", load ? load : "?\n");
  printf ("  packets: relay sent %" G_GUINT64_FORMAT " (%.2f/s per caller), received %" G_GUINT64_FORMAT
          ", LOSS %.4f%% (goal < 0.1%%: %s)\n",
          sent, (double) sent / pc->n / ((double) window_ns / 1e9 + WARMUP_S), pc->received, loss,
          loss < 0.1 ? "met" : "NOT met");
  printf ("  stream checks: sequence gaps %" G_GUINT64_FORMAT ", reordered/duplicated %" G_GUINT64_FORMAT
          ", SSRC changes %" G_GUINT64_FORMAT ", timestamp jumps (frames the relay skipped) %" G_GUINT64_FORMAT
          ", send errors %" G_GUINT64_FORMAT ", not RTP %" G_GUINT64_FORMAT "\n",
          pc->missing, pc->reordered, pc->ssrc_changes, pc->ts_jumps, tx_errors, pc->not_rtp);
  rb_samples_print_ms (&pc->jitter, "PACING JITTER |inter-arrival - 20 ms|");
  printf ("    goal p99 < 5 ms: %s\n", jit99 < 5 ? "met" : "NOT met");
  printf ("  RELAY THREAD (tid %d) cpu %.1f%% of one core over %.1f s (goal < 20%%: %s); "
          "cpu0 whole busy %.1f%% (softirq and anything else on cpu0 included)\n",
          relay_tid, cpu, window_ns / 1e9, cpu < 20 ? "met" : "NOT met",
          total ? 100.0 * (double) busy / (double) total : 0);
  printf ("  receiver thread cpu %.1f%%; process VmRSS %" G_GINT64_FORMAT " KiB\n",
          100.0 * (double) pc->cpu_ns / (double) (window_ns + WARMUP_S * 1000000000LL),
          rb_rss_kb ());
}

int
rb_pacing_run (guint callers, guint duration)
{
  TdRelay *relay;
  g_autoptr (TdTune) tune = rb_tone_tune (425, 6);
  g_autoptr (GArray) tids = NULL;
  TdRelayPort **ports = g_new (TdRelayPort *, callers);
  Pacing pc = { .n = callers, .rx = g_new0 (Receiver, callers) };
  GThread *thread;
  gint64 t0, cpu0, cpu1, b0, b1, tot0, tot1, window_ns;
  pid_t relay_tid;

  if (!rb_raise_nofile (3 * callers + 64)) {
    g_printerr ("ringback-bench: %u callers need %u open files: raise ulimit -n\n", callers,
                3 * callers + 64);
    return 1;
  }
  rb_samples_init (&pc.jitter);
  relay = rb_relay_new ();
  tids = rb_relay_threads ();
  relay_tid = g_array_index (tids, pid_t, 0);
  for (guint i = 0; i < callers; i++) {
    g_autoptr (GError) error = NULL;
    guint16 rport;
    if (!(ports[i] = td_relay_port_alloc (relay, &error)))
      g_error ("port %u: %s", i, error->message);
    pc.rx[i].fd = rb_udp_socket (0, 0, &rport);
    td_relay_port_set_remote (ports[i], "127.0.0.1", rport, 0);
  }
  td_relay_sync (relay);
  printf ("pacing: %u callers hearing ringback (PCMU, one 6 s tone tune), %u s after %u s warm-up; "
          "pinned: %s\n", callers, duration, WARMUP_S,
          rb_opt.pin ? "relay thread cpu0, receiver thread cpu1" : "no");
  fflush (stdout);

  t0 = rb_wall_ns ();
  pc.warm_ns = t0 + WARMUP_S * 1000000000LL;
  thread = g_thread_new ("receiver", receiver_thread, &pc);
  for (guint i = 0; i < callers; i++)
    td_relay_port_play (ports[i], tune, TD_CODEC_PCMU, 0);

  rb_sleep_until (pc.warm_ns);
  cpu0 = rb_thread_cpu_ns (relay_tid);
  rb_cpu_jiffies (0, &b0, &tot0);
  window_ns = rb_now_ns (CLOCK_MONOTONIC);
  rb_sleep_until (pc.warm_ns + (gint64) duration * 1000000000LL);
  cpu1 = rb_thread_cpu_ns (relay_tid);
  rb_cpu_jiffies (0, &b1, &tot1);
  window_ns = rb_now_ns (CLOCK_MONOTONIC) - window_ns;

  for (guint i = 0; i < callers; i++)
    td_relay_port_stop (ports[i]);
  td_relay_sync (relay);          /* the stats are final now */
  atomic_store (&pc.stop, TRUE);
  g_thread_join (thread);

  report (&pc, sum_stats (ports, callers, FALSE), sum_stats (ports, callers, TRUE), cpu1 - cpu0,
          window_ns, b1 - b0, tot1 - tot0, relay_tid);
  td_relay_free (relay);          /* closes the ports */
  for (guint i = 0; i < callers; i++)
    close (pc.rx[i].fd);
  rb_samples_clear (&pc.jitter);
  g_free (pc.rx);
  g_free (ports);
  return 0;
}
