/* The answer switch, measured at the caller's receiver.
 *
 * Each call is two connected relay ports: `a` faces the caller (a receiver
 * socket that records every packet with its kernel receive time), `b` the
 * callee (a socket sending 20 ms RTP to b, as the answering phone would).
 * `a` plays the tune; at a random moment (uniform over the tune's 20 ms
 * tick) the callee starts talking. How the tune ends:
 *  - STOP (what tandem can do today): b's FIRST_PACKET event reaches the
 *    main thread, which calls td_relay_port_stop (a). Until the media
 *    thread applies that, a drops what b forwards: the callee's first
 *    packet is lost.
 *  - UNTIL_PEER (td_relay_port_play_until_peer): the first packet b
 *    forwards ends the tune on the media thread and is itself sent.
 *
 * Per call, at the receiver: the gap between the last tune packet and the
 * first callee packet (goal <= 20 ms: no frame missing), the callee frames
 * clipped before the first one heard, and the continuity the issue asks for
 * (one SSRC, sequence + 1, timestamp advanced by the elapsed time, marker). */
#define G_LOG_DOMAIN "ringback-bench"

#include "rb-switch.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rb-common.h"

#define CALLEE_FRAMES 50             /* the callee talks for 1 s */
#define FIRST_SWITCH_NS 1000000000LL /* the tune plays at least 1 s */
#define SPACING_NS 37000000LL        /* between callees' starts (+ 0-20 ms at random) */
static const char magic[8] = "CALLEE!!";

typedef struct {
  TdRelayPort *a, *b;
  int caller_fd, callee_fd;
  gint64 callee_start_ns;            /* wall */
  /* the receiver thread's */
  gboolean have_tune, have_callee;
  RbRtp last_tune, first_callee;
  gint64 last_tune_ns, first_callee_ns;
  guint32 first_callee_k;            /* the callee's frame number of the first heard */
  guint tune_after_callee, ssrc_changes, received;
  guint32 ssrc;
  /* the main thread's */
  gboolean stop_on_event;            /* STOP mode */
  gint64 seen_us, handled_us;        /* FIRST_PACKET on b: by the media thread, by us */
} Call;

typedef struct {
  guint n;
  Call *calls;
  RbSwitchMode mode;
  atomic_bool stop;
  GMainLoop *loop;
} Switch;

/* ---- the callees ---- */

typedef struct {
  gint64 at;
  guint call;
  guint32 k;
} Send;

static gint
cmp_send (gconstpointer a, gconstpointer b)
{
  const Send *x = a, *y = b;

  return x->at < y->at ? -1 : x->at > y->at;
}

static void
callee_send (Call *c, guint index, guint32 k)
{
  guint8 pkt[12 + 160] = { 0x80, (guint8) ((k == 0 ? 0x80 : 0x00) | rb_codec_pt (rb_opt.codec)) };
  guint32 ssrc = 0xCA11EE00u + index, ts = k * td_codec_frame_ticks (rb_opt.codec);

  pkt[2] = (guint8) (k >> 8);
  pkt[3] = (guint8) k;
  for (int i = 0; i < 4; i++) {
    pkt[4 + i] = (guint8) (ts >> (24 - 8 * i));
    pkt[8 + i] = (guint8) (ssrc >> (24 - 8 * i));
  }
  memcpy (pkt + 12, magic, sizeof magic);
  memcpy (pkt + 20, &k, sizeof k);
  if (send (c->callee_fd, pkt, sizeof pkt, 0) != sizeof pkt)
    g_warning ("callee %u: send failed", index);
}

static gpointer
callee_thread (gpointer data)
{
  Switch *sw = data;
  g_autoptr (GArray) plan = g_array_new (FALSE, FALSE, sizeof (Send));

  rb_pin (0, 1);
  for (guint i = 0; i < sw->n; i++)
    for (guint32 k = 0; k < CALLEE_FRAMES; k++) {
      Send s = { sw->calls[i].callee_start_ns + k * RB_FRAME_NS, i, k };
      g_array_append_val (plan, s);
    }
  g_array_sort (plan, cmp_send);
  for (guint j = 0; j < plan->len; j++) {
    Send *s = &g_array_index (plan, Send, j);
    rb_sleep_until (s->at);
    callee_send (&sw->calls[s->call], s->call, s->k);
  }
  return NULL;
}

/* ---- the callers' receiver ---- */

static void
caller_packet (Call *c, const RbPacket *p)
{
  RbRtp h;
  gboolean from_callee;

  if (!rb_rtp_parse (p, &h))
    return;
  if (c->received++ == 0)
    c->ssrc = h.ssrc;
  else if (h.ssrc != c->ssrc) {
    c->ssrc_changes++;
    c->ssrc = h.ssrc;
  }
  from_callee = p->len >= 24 && memcmp (p->data + 12, magic, sizeof magic) == 0;
  if (!from_callee) {
    if (c->have_callee)
      c->tune_after_callee++;
    else {
      c->have_tune = TRUE;
      c->last_tune = h;
      c->last_tune_ns = p->arrival_ns;
    }
  } else if (!c->have_callee) {
    c->have_callee = TRUE;
    c->first_callee = h;
    c->first_callee_ns = p->arrival_ns;
    memcpy (&c->first_callee_k, p->data + 20, sizeof c->first_callee_k);
  }
}

static gpointer
receiver_thread (gpointer data)
{
  Switch *sw = data;
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event ev[64];
  RbPacket pkts[16];

  rb_pin (0, 1);
  for (guint i = 0; i < sw->n; i++) {
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };
    epoll_ctl (ep, EPOLL_CTL_ADD, sw->calls[i].caller_fd, &e);
  }
  for (;;) {
    gboolean stopping = atomic_load (&sw->stop);
    int n = epoll_wait (ep, ev, G_N_ELEMENTS (ev), 50);
    if (n <= 0 && stopping)
      break;
    for (int i = 0; i < n; i++) {
      Call *c = &sw->calls[ev[i].data.u32];
      guint got;
      while ((got = rb_receive (c->caller_fd, pkts, G_N_ELEMENTS (pkts))) > 0)
        for (guint k = 0; k < got; k++)
          caller_packet (c, &pkts[k]);
    }
  }
  close (ep);
  return NULL;
}

/* ---- the relay side ---- */

/* b's first packet: in STOP mode the main thread ends the tune, as a
 * ringback plugin would on the callee's first RTP. */
static void
callee_event (TdRelayPort *port, const TdRelayEvent *event, gpointer data)
{
  Call *c = data;

  if (event->kind != TD_RELAY_EVENT_FIRST_PACKET)
    return;
  c->seen_us = event->time_us;
  c->handled_us = g_get_monotonic_time ();
  if (c->stop_on_event)
    td_relay_port_stop (c->a);
}

static void
start_tune (Switch *sw, Call *c, TdTune *tune)
{
  if (sw->mode == RB_SWITCH_STOP) {
    c->stop_on_event = TRUE;
    td_relay_port_set_event_func (c->b, callee_event, c);
    td_relay_port_play (c->a, tune, rb_opt.codec, rb_codec_pt (rb_opt.codec));
    return;
  }
  /* the event only times the callee's first packet here: the relay itself
   * ends the tune */
  td_relay_port_set_event_func (c->b, callee_event, c);
  td_relay_port_play_until_peer (c->a, tune, rb_opt.codec, rb_codec_pt (rb_opt.codec));
}

static void
setup_call (TdRelay *relay, Call *c, gint64 start_ns)
{
  g_autoptr (GError) error = NULL;
  guint16 caller_port, callee_port;
  struct sockaddr_in b_addr;

  if (!(c->a = td_relay_port_alloc (relay, &error)) || !(c->b = td_relay_port_alloc (relay, &error)))
    g_error ("port: %s", error->message);
  c->caller_fd = rb_udp_socket (0, 0, &caller_port);
  c->callee_fd = rb_udp_socket (0, 0, &callee_port);
  td_relay_port_set_remote (c->a, "127.0.0.1", caller_port, 0);
  td_relay_port_set_remote (c->b, "127.0.0.1", callee_port, 0);
  td_relay_connect (c->a, c->b);
  /* the callee's stream, forwarded out of a, runs at the codec's clock */
  td_relay_port_set_clock_rate (c->a, td_codec_clock_rate (rb_opt.codec));
  if (rb_opt.new_ssrc)
    td_relay_port_set_new_ssrc_on_switch (c->a, TRUE);
  b_addr = rb_loopback (td_relay_port_number (c->b));
  if (connect (c->callee_fd, (struct sockaddr *) &b_addr, sizeof b_addr) < 0)
    g_error ("connect: %s", g_strerror (errno));
  c->callee_start_ns = start_ns;
}

/* ---- report ---- */

static void
report (Switch *sw)
{
  RbSamples gap, clipped, to_voice, ts_adv, ts_err, main_lag;
  gint64 rate = td_codec_clock_rate (rb_opt.codec);
  guint missing = 0, seq_bad = 0, ssrc_bad = 0, no_marker = 0, ts_back = 0, tune_after = 0, over = 0;

  rb_samples_init (&gap);
  rb_samples_init (&clipped);
  rb_samples_init (&to_voice);
  rb_samples_init (&ts_adv);
  rb_samples_init (&ts_err);
  rb_samples_init (&main_lag);
  for (guint i = 0; i < sw->n; i++) {
    Call *c = &sw->calls[i];
    gint64 g;
    gint32 dts;
    if (!c->have_tune || !c->have_callee) {
      missing++;
      continue;
    }
    g = c->first_callee_ns - c->last_tune_ns;
    dts = (gint32) (c->first_callee.ts - c->last_tune.ts);
    rb_samples_add (&gap, g);
    over += g > RB_FRAME_NS + 1000000;   /* a frame plus 1 ms of scheduling */
    rb_samples_add (&clipped, (gint64) c->first_callee_k * RB_FRAME_NS);
    rb_samples_add (&to_voice, c->first_callee_ns - c->callee_start_ns);
    /* the timestamp advances by the elapsed time, and at least by the last
     * tune frame's 20 ms (td-rtp-context.c: the callee's audio must not
     * overlap it) */
    rb_samples_add (&ts_adv, (gint64) dts * 1000000000LL / rate);
    rb_samples_add (&ts_err, ABS ((gint64) dts * 1000000000LL / rate - MAX (g, RB_FRAME_NS)));
    if (c->seen_us)
      rb_samples_add (&main_lag, (c->handled_us - c->seen_us) * 1000);
    seq_bad += c->first_callee.seq != (guint16) (c->last_tune.seq + 1);
    ssrc_bad += c->ssrc_changes > 0 || c->first_callee.ssrc != c->last_tune.ssrc;
    no_marker += !c->first_callee.marker;
    ts_back += dts <= 0;
    tune_after += c->tune_after_callee;
  }
  printf ("  calls without a tune packet or without a callee packet at the caller: %u\n", missing);
  rb_samples_print_ms (&gap, "SWITCH GAP last tune packet -> first callee packet");
  printf ("    goal <= 20 ms: p99 %s, max %s; gaps over 21 ms: %u of %u\n",
          rb_samples_quantile (&gap, 0.99) <= RB_FRAME_NS + 1000000 ? "met" : "NOT met",
          rb_samples_quantile (&gap, 1.0) <= RB_FRAME_NS + 1000000 ? "met" : "NOT met", over, gap.v->len);
  rb_samples_print_ms (&clipped, "callee audio clipped (frames lost before the first heard x 20 ms)");
  rb_samples_print_ms (&to_voice, "callee's first packet sent -> first callee packet at the caller");
  rb_samples_print_ms (&ts_adv, "timestamp advance last tune -> first callee packet (at the codec's clock)");
  rb_samples_print_ms (&ts_err, "|timestamp advance - max (arrival gap, 20 ms)|");
  if (main_lag.v->len)
    rb_samples_print_ms (&main_lag, "FIRST_PACKET event: media thread -> main thread");
  printf ("  continuity: sequence not +1: %u, SSRC changed: %u, no marker on the first callee packet: %u, "
          "timestamp not advancing: %u, tune packets after the callee's first: %u\n",
          seq_bad, ssrc_bad, no_marker, ts_back, tune_after);
  rb_samples_clear (&gap);
  rb_samples_clear (&clipped);
  rb_samples_clear (&to_voice);
  rb_samples_clear (&ts_adv);
  rb_samples_clear (&ts_err);
  rb_samples_clear (&main_lag);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* Extra ports playing to one never-read socket: the relay's timer then has
 * `n` more callers to serve at each tick, as on a busy PBX. */
static int
add_background (TdRelay *relay, TdTune *tune, guint n)
{
  guint16 sink_port;
  int small = 1;   /* the kernel's minimum: the sink drops nearly all */
  int sink = rb_udp_socket (0, small, &sink_port);

  for (guint i = 0; i < n; i++) {
    g_autoptr (GError) error = NULL;
    TdRelayPort *p = td_relay_port_alloc (relay, &error);
    if (!p)
      g_error ("background port: %s", error->message);
    td_relay_port_set_remote (p, "127.0.0.1", sink_port, 0);
    td_relay_port_play (p, tune, rb_opt.codec, rb_codec_pt (rb_opt.codec));
  }
  return sink;
}

int
rb_switch_run (guint switches, guint background, RbSwitchMode mode)
{
  Switch sw = { .n = switches, .calls = g_new0 (Call, switches), .mode = mode };
  g_autoptr (TdTune) tune = rb_ringback_tune ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (10);
  TdRelay *relay;
  GThread *callees, *receiver;
  gint64 base, last_start = 0;
  int sink = -1;

  if (!rb_raise_nofile (4 * switches + 2 * background + 64)) {
    g_printerr ("ringback-bench: raise ulimit -n\n");
    return 1;
  }
  relay = rb_relay_new ();
  sw.loop = g_main_loop_new (NULL, FALSE);
  base = rb_wall_ns () + FIRST_SWITCH_NS;
  for (guint i = 0; i < switches; i++) {
    last_start = base + i * SPACING_NS + g_rand_int_range (rand, 0, (gint32) RB_FRAME_NS);
    setup_call (relay, &sw.calls[i], last_start);
  }
  if (background)
    sink = add_background (relay, tune, background);
  td_relay_sync (relay);
  printf ("switch: %u answers in %s, tune ended by %s, %u more callers hearing ringback meanwhile; "
          "pinned: %s; relay nice %d\n", switches, td_codec_name (rb_opt.codec),
          mode == RB_SWITCH_STOP ? "td_relay_port_stop() on the callee's FIRST_PACKET event"
                                 : "td_relay_port_play_until_peer()",
          background, rb_opt.pin ? "relay thread cpu0, callee and receiver threads cpu1" : "no",
          rb_opt.nice);
  fflush (stdout);
  for (guint i = 0; i < switches; i++)
    start_tune (&sw, &sw.calls[i], tune);
  receiver = g_thread_new ("receiver", receiver_thread, &sw);
  callees = g_thread_new ("callees", callee_thread, &sw);
  /* events need this loop; it ends once every callee has talked */
  g_timeout_add ((guint) ((last_start - rb_wall_ns ()) / 1000000 + CALLEE_FRAMES * 20 + 300),
                 quit_loop, sw.loop);
  g_main_loop_run (sw.loop);
  g_thread_join (callees);
  td_relay_sync (relay);
  atomic_store (&sw.stop, TRUE);
  g_thread_join (receiver);
  report (&sw);

  td_relay_free (relay);
  for (guint i = 0; i < switches; i++) {
    close (sw.calls[i].caller_fd);
    close (sw.calls[i].callee_fd);
  }
  if (sink >= 0)
    close (sink);
  g_main_loop_unref (sw.loop);
  g_free (sw.calls);
  return 0;
}
