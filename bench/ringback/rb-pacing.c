/* Pacing: N callers hearing ringback at once.
 *
 * N relay ports each play the same tune (PCMU, pt 0) to a receiver socket of
 * their own, as N ringing callers would hear it. A receiver thread records
 * every packet with its kernel receive time (SO_TIMESTAMPNS, taken when the
 * relay's sendmsg delivers it on loopback, so the receiver's own lateness is
 * not counted) and checks the stream: one SSRC, sequence +1, timestamp +160.
 *
 * Figures:
 *  - loss, over the whole run: packets the relay sent (tx_generated) that
 *    no receiver got, and sequence gaps; frames the relay skipped
 *    (timestamp jumps: its timer more than five ticks late) apart;
 *  - pacing jitter, over the window after a warm-up: |inter-arrival -
 *    20 ms| per caller, p50/p99/max;
 *    The first and the last tenth of the callers (in the order the relay
 *    serves them at each tick) are shown apart: the tail waits for the
 *    burst. The same figure for a bare timer loop's receivers in the same
 *    run (rb-bare.c) is the floor of this machine;
 *  - the relay thread's CPU over that window (schedstat: exact, where the
 *    tick-sampled /proc/stat misses most of a 20 ms burst). On loopback
 *    each send also runs the receiving socket's path (enqueue, waking the
 *    receiver) in the relay thread: --sample cuts that share. */
#define G_LOG_DOMAIN "ringback-bench"

#include "rb-pacing.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "rb-bare.h"
#include "rb-common.h"

#define WARMUP_S 2
#define BARE_RECEIVERS 20

enum { RELAY, BARE, N_CLASSES };

typedef struct {
  RbSamples jitter;             /* |inter-arrival - 20 ms|, ns */
  guint64 received, missing, reordered, ssrc_changes, ts_jumps, not_rtp;
} Stats;

typedef struct {
  int fd;
  guint8 cls;
  guint8 part;                  /* RELAY: 1 first tenth, 2 last tenth of the callers, 0 others */
  gboolean started;
  guint16 last_seq;
  guint32 last_ts, ssrc;
  gint64 last_ns;
} Receiver;

typedef struct {
  guint n;                      /* callers */
  guint n_rx;                   /* receivers: the callers', then the bare loop's */
  Receiver *rx;
  gint64 warm_ns;               /* wall clock: jitter is recorded after it */
  guint ticks;                  /* the relay's timestamp units per frame */
  atomic_bool stop;
  /* the receiver thread's alone until joined */
  Stats st[N_CLASSES];
  RbSamples part_jitter[3];     /* RELAY by Receiver.part */
  atomic_llong first_ns;        /* arrival of the relay's first packet (its grid), 0 until then */
  gint64 cpu_ns;                /* the receiver thread's own CPU */
} Pacing;

static void
check_packet (Pacing *pc, Receiver *r, const RbPacket *p)
{
  Stats *st = &pc->st[r->cls];
  RbRtp h;
  guint16 dseq;

  if (!rb_rtp_parse (p, &h)) {
    st->not_rtp++;
    return;
  }
  st->received++;
  if (r->cls == RELAY && !atomic_load (&pc->first_ns))
    atomic_store (&pc->first_ns, p->arrival_ns);
  if (!r->started) {
    r->started = TRUE;
    r->ssrc = h.ssrc;
    goto keep;
  }
  if (h.ssrc != r->ssrc) {
    st->ssrc_changes++;
    r->ssrc = h.ssrc;
  }
  dseq = (guint16) (h.seq - r->last_seq);
  if (dseq == 0 || dseq > 0x8000) {
    st->reordered++;             /* a duplicate or an old one: keep the newest */
    return;
  }
  st->missing += dseq - 1u;
  if (h.ts - r->last_ts != (guint32) dseq * (r->cls == RELAY ? pc->ticks : 160u))
    st->ts_jumps++;
  if (p->arrival_ns >= pc->warm_ns && dseq == 1) {
    gint64 dev = ABS (p->arrival_ns - r->last_ns - RB_FRAME_NS);
    rb_samples_add (&st->jitter, dev);
    if (r->cls == RELAY)
      rb_samples_add (&pc->part_jitter[r->part], dev);
  }
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
  for (guint i = 0; i < pc->n_rx; i++) {
    if (pc->rx[i].fd < 0)
      continue;   /* --sample: sends to the sink */
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

/* Over the ports whose receiver reads (all but --sample's sink senders). */
static guint64
sum_stats (Pacing *pc, TdRelayPort **ports, gboolean errors)
{
  guint64 sum = 0;

  for (guint i = 0; i < pc->n; i++) {
    TdRelayStats st;
    if (pc->rx[i].fd < 0)
      continue;
    td_relay_port_get_stats (ports[i], &st);
    sum += errors ? st.tx_errors : st.tx_generated;
  }
  return sum;
}

static void
report_checks (const Stats *st, const char *who, guint64 tx_errors)
{
  printf ("  %s stream checks: sequence gaps %" G_GUINT64_FORMAT ", reordered/duplicated %" G_GUINT64_FORMAT
          ", SSRC changes %" G_GUINT64_FORMAT ", timestamp jumps (frames skipped) %" G_GUINT64_FORMAT
          ", send errors %" G_GUINT64_FORMAT ", not RTP %" G_GUINT64_FORMAT "\n", who,
          st->missing, st->reordered, st->ssrc_changes, st->ts_jumps, tx_errors, st->not_rtp);
}

static void
report (Pacing *pc, guint64 sent, guint64 tx_errors, RbBare *bare, gint64 cpu_ns, gint64 window_ns,
        gint64 busy, gint64 total, pid_t relay_tid)
{
  Stats *st = &pc->st[RELAY];
  guint n_read = 0;
  double loss;
  double cpu = 100.0 * (double) cpu_ns / (double) window_ns;
  double jit99 = rb_samples_quantile (&st->jitter, 0.99) / 1e6;
  g_autofree char *load = NULL;

  for (guint i = 0; i < pc->n; i++)
    n_read += pc->rx[i].fd >= 0;
  loss = sent ? 100.0 * (double) (sent - MIN (sent, st->received)) / (double) sent : 0;

  g_file_get_contents ("/proc/loadavg", &load, NULL, NULL);
  printf ("  machine load average after: %s", load ? load : "?\n");
  printf ("  packets: relay sent %" G_GUINT64_FORMAT " (%.2f/s per caller), received %" G_GUINT64_FORMAT
          ", LOSS %.4f%% (goal < 0.1%%: %s)\n",
          sent, (double) sent / n_read / ((double) window_ns / 1e9 + WARMUP_S), st->received, loss,
          loss < 0.1 ? "met" : "NOT met");
  report_checks (st, "relay", tx_errors);
  rb_samples_print_ms (&st->jitter, "PACING JITTER |inter-arrival - 20 ms|");
  printf ("    goal p99 < 5 ms: %s\n", jit99 < 5 ? "met" : "NOT met");
  rb_samples_print_ms (&pc->part_jitter[1], "  the first tenth of the callers served at each tick");
  rb_samples_print_ms (&pc->part_jitter[2], "  the last tenth");
  printf ("  bare timer loop, same run, %u receivers (sent %" G_GUINT64_FORMAT ", received %"
          G_GUINT64_FORMAT ", cpu %.1f%%):\n", bare->n, bare->sent, pc->st[BARE].received,
          100.0 * (double) bare->cpu_ns / (double) (window_ns + WARMUP_S * 1000000000LL));
  report_checks (&pc->st[BARE], "bare", 0);
  rb_samples_print_ms (&pc->st[BARE].jitter, "bare loop's jitter (this machine's floor)");
  printf ("  RELAY THREAD (tid %d) cpu %.1f%% of one core over %.1f s (goal < 20%%: %s); "
          "cpu0 whole busy %.1f%% (softirq and anything else on cpu0 included)\n",
          relay_tid, cpu, window_ns / 1e9, cpu < 20 ? "met" : "NOT met",
          total ? 100.0 * (double) busy / (double) total : 0);
  printf ("  receiver thread cpu %.1f%%; process VmRSS %" G_GINT64_FORMAT " KiB\n",
          100.0 * (double) pc->cpu_ns / (double) (window_ns + WARMUP_S * 1000000000LL),
          rb_rss_kb ());
}

/* The bare loop's first tick: half a tick after one of the relay's (the
 * first packet of its first tick, on the monotonic clock), in the future. */
static gint64
bare_grid (Pacing *pc)
{
  gint64 first = 0, mono, offset;

  for (guint i = 0; i < 1000 && !(first = atomic_load (&pc->first_ns)); i++)
    g_usleep (1000);   /* bounded: 1 s */
  if (!first)
    return 0;
  offset = rb_now_ns (CLOCK_MONOTONIC) - rb_wall_ns ();
  mono = first + offset + RB_FRAME_NS / 2;
  while (mono < rb_now_ns (CLOCK_MONOTONIC) + RB_FRAME_NS)
    mono += RB_FRAME_NS;
  return mono;
}

int
rb_pacing_run (guint callers, guint duration, guint sample)
{
  TdRelay *relay;
  g_autoptr (TdTune) tune = rb_ringback_tune ();
  g_autoptr (GArray) tids = NULL;
  TdRelayPort **ports = g_new (TdRelayPort *, callers);
  Pacing pc = { .n = callers, .n_rx = callers + BARE_RECEIVERS, .ticks = td_codec_frame_ticks (rb_opt.codec),
                .rx = g_new0 (Receiver, callers + BARE_RECEIVERS) };
  struct sockaddr_in bare_dest[BARE_RECEIVERS];
  RbBare bare = { .n = BARE_RECEIVERS, .dest = bare_dest };
  GThread *thread, *bare_thread;
  gint64 t0, cpu0, cpu1, b0, b1, tot0, tot1, window_ns;
  pid_t relay_tid;
  guint16 sink_port = 0;
  int sink = -1;

  if (!rb_raise_nofile (3 * callers + 128)) {
    g_printerr ("ringback-bench: %u callers need %u open files: raise ulimit -n\n", callers,
                3 * callers + 128);
    return 1;
  }
  for (guint c = 0; c < N_CLASSES; c++)
    rb_samples_init (&pc.st[c].jitter);
  for (guint k = 0; k < 3; k++)
    rb_samples_init (&pc.part_jitter[k]);
  relay = rb_relay_new ();
  tids = rb_relay_threads ();
  relay_tid = g_array_index (tids, pid_t, 0);
  if (sample > 1)
    sink = rb_udp_socket (0, 1, &sink_port);   /* never read, the smallest buffer: drops at once */
  for (guint i = 0; i < callers; i++) {
    g_autoptr (GError) error = NULL;
    guint16 rport = sink_port;
    if (!(ports[i] = td_relay_port_alloc (relay, &error)))
      g_error ("port %u: %s", i, error->message);
    pc.rx[i].fd = sample > 1 && i % sample ? -1 : rb_udp_socket (0, 0, &rport);
    pc.rx[i].part = i < callers / 10 ? 1 : i >= callers - callers / 10 ? 2 : 0;
    td_relay_port_set_remote (ports[i], "127.0.0.1", rport, 0);
  }
  for (guint k = 0; k < BARE_RECEIVERS; k++) {
    Receiver *r = &pc.rx[callers + k];
    guint16 rport;
    r->cls = BARE;
    r->fd = rb_udp_socket (0, 0, &rport);
    bare_dest[k] = rb_loopback (rport);
  }
  bare.ticks = (WARMUP_S + duration) * 50;
  td_relay_sync (relay);
  printf ("pacing: %u callers hearing ringback (%s, tone:eu), %u s after %u s warm-up; "
          "pinned: %s; relay nice %d\n", callers, td_codec_name (rb_opt.codec), duration, WARMUP_S,
          rb_opt.pin ? "relay thread and bare loop cpu0, receiver thread cpu1" : "no", rb_opt.nice);
  if (sample > 1)
    printf ("  --sample %u: every %u-th caller's receiver reads (loss and jitter are theirs); the "
            "others send to one never-read socket, which drops at once\n", sample, sample);
  fflush (stdout);

  t0 = rb_wall_ns ();
  pc.warm_ns = t0 + WARMUP_S * 1000000000LL;
  thread = g_thread_new ("receiver", receiver_thread, &pc);
  /* the relay serves its playing ports in the order they started */
  for (guint i = 0; i < callers; i++)
    td_relay_port_play (ports[i], tune, rb_opt.codec, rb_codec_pt (rb_opt.codec));
  bare.start_mono_ns = bare_grid (&pc);
  bare_thread = rb_bare_start (&bare);

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
  g_thread_join (bare_thread);    /* its last ticks, a few ms after the window */
  atomic_store (&pc.stop, TRUE);
  g_thread_join (thread);

  report (&pc, sum_stats (&pc, ports, FALSE), sum_stats (&pc, ports, TRUE), &bare, cpu1 - cpu0,
          window_ns, b1 - b0, tot1 - tot0, relay_tid);
  td_relay_free (relay);          /* closes the ports */
  for (guint i = 0; i < pc.n_rx; i++)
    if (pc.rx[i].fd >= 0)
      close (pc.rx[i].fd);
  if (sink >= 0)
    close (sink);
  for (guint c = 0; c < N_CLASSES; c++)
    rb_samples_clear (&pc.st[c].jitter);
  for (guint k = 0; k < 3; k++)
    rb_samples_clear (&pc.part_jitter[k]);
  g_free (pc.rx);
  g_free (ports);
  return 0;
}
