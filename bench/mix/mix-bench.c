/* mix-bench: R three-party rooms mixed by the real relay (td_relay_mix_*),
 * in-process, on 127.0.0.1.
 *
 * Each party is a UDP socket sending PCMU, 20 ms a packet, to its relay
 * port, the parties spread evenly over each 20 ms (phones are not in step).
 * They send silence, except a "marker" frame (a loud 1 kHz tone) every
 * MARKER_EVERY frames, party j of a room at frame offset j * MARKER_EVERY / 3,
 * so a room's markers never overlap. The mix sends each party the sum of
 * the other two: the first loud packet a party receives after another
 * party's marker carries that marker. Added latency = the receiving socket's
 * kernel timestamp (SO_TIMESTAMPNS) minus the marker's send time: loopback
 * both ways, the jitter buffer, the wait for the mix's phase, decode, mix
 * and encode.
 *
 * Also: loss (sequence gaps in what each party receives), the longest gap
 * between two packets of one receive stream (a stall), the mixes' own
 * counters (concealed/late/overflow frames, their longest gap between two
 * frames), CPU of the relay threads (/proc/self/task/TID/stat) and of the
 * whole process (getrusage), and the number of threads. Statistics skip the
 * first WARMUP_S seconds (the mixes' longest gap counts from the start) and
 * end with the sending. Bounded: --seconds (10 by default).
 *
 *   ninja -C build bench/mix-bench
 *   build/bench/mix-bench --rooms 50 [--seconds 10] [--threads 1]
 *
 * Relay ports: 62000-63999 by default (above the kernel's ephemeral range
 * and every test suite's); --port-min/--port-max to move them. */
#define G_LOG_DOMAIN "mix-bench"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gst/gst.h>

#include "td-g711.h"
#include "td-relay.h"
#include "td-transcode.h"

#define PARTIES 3
#define PERIOD_NS 20000000LL
#define MARKER_EVERY 24              /* frames: a marker every 480 ms per party */
#define WARMUP_S 2
#define DRAIN_MS 300
#define SLOT_NS 1000000LL            /* the sender's wake-ups: every 1 ms at most */
#define LOUD 2000                    /* a decoded sample above this: the packet is loud */

typedef struct {
  int fd;
  guint room, j;
  struct sockaddr_in dest;
  guint16 seq;
  guint32 ts;
  /* receiver thread */
  gboolean got_any;
  guint16 last_seq;
  guint64 received, lost;
  gint64 last_ns, max_gap_ns;
  guint64 matched[PARTIES];          /* the latest marker of party k already measured */
} Party;

typedef struct {
  TdRelayMix *mix;
  /* the latest marker of each party: its number (frame / MARKER_EVERY + 1)
   * and send time, written by the sender thread */
  _Atomic guint64 marker_no[PARTIES];
  _Atomic gint64 marker_ns[PARTIES];
  TdRelayMixStats warm, end;         /* at the end of the warm-up, and of sending */
} Room;

static struct {
  guint rooms, seconds, threads;
  guint port_min, port_max;
  Room *room;
  Party *party;
  guint n_parties;
  gint64 start_ns, warm_ns;
  atomic_bool stop;
  GArray *latency_us;                /* double */
  gint64 send_late_max_ns;           /* the sender's worst lateness against its schedule */
  guint64 sends_late_5ms;            /* sends more than 5 ms behind it */
  guint8 silence[160], marker[160];
  /* --wideband: the third party of every room speaks this codec */
  const char *wideband;
  TdCodec wb_codec;
  guint8 wb_pt;
  guint8 wb_frame[MARKER_EVERY][1280];   /* one marker cycle, encoded as a stream */
  gsize wb_len[MARKER_EVERY];
} B = { .rooms = 50, .seconds = 10, .threads = 1, .port_min = 62000, .port_max = 63999 };

static gint64
now_ns (clockid_t clock)
{
  struct timespec t;
  clock_gettime (clock, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---- the sender: every party, every 20 ms, spread over the period ---- */

static gboolean
is_wideband (const Party *p)
{
  return B.wideband && p->j == PARTIES - 1;
}

static void
send_frame (Party *p, guint64 frame)
{
  guint8 pkt[12 + 1280] = { 0x80, 0 };
  guint phase = (guint) (frame % MARKER_EVERY);
  gboolean marker = phase == p->j * (MARKER_EVERY / PARTIES);
  gboolean wb = is_wideband (p);
  gsize len = wb ? B.wb_len[phase] : 160;

  pkt[2] = (guint8) (p->seq >> 8);
  pkt[3] = (guint8) p->seq;
  for (guint b = 0; b < 4; b++) {
    pkt[4 + b] = (guint8) (p->ts >> (24 - 8 * b));
    pkt[8 + b] = (guint8) ((0x5000 + (guint32) (p - B.party)) >> (24 - 8 * b));
  }
  pkt[1] = wb ? B.wb_pt : 0;
  memcpy (pkt + 12, wb ? B.wb_frame[phase] : marker ? B.marker : B.silence, len);
  if (marker) {
    Room *r = &B.room[p->room];
    /* the time first, then the number that makes it current */
    atomic_store (&r->marker_ns[p->j], now_ns (CLOCK_REALTIME));
    atomic_store (&r->marker_no[p->j], frame / MARKER_EVERY + 1);
  }
  sendto (p->fd, pkt, 12 + len, 0, (struct sockaddr *) &p->dest, sizeof p->dest);
  p->seq++;
  p->ts += wb ? td_codec_frame_ticks (B.wb_codec) : 160;
}

static gpointer
sender (gpointer data)
{
  guint64 frames = (guint64) B.seconds * 50;
  gint64 start = now_ns (CLOCK_MONOTONIC);

  (void) data;
  /* One wake-up per SLOT_NS, sending every packet due by then: a sleep per
   * packet cost the load generator more than the relay its whole work. */
  for (guint64 f = 0; f < frames; f++) {
    for (guint i = 0; i < B.n_parties;) {
      gint64 at = start + (gint64) f * PERIOD_NS + (gint64) i * PERIOD_NS / B.n_parties;
      struct timespec ts = { at / 1000000000LL, at % 1000000000LL };
      gint64 now;
      while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
      now = now_ns (CLOCK_MONOTONIC);
      for (; i < B.n_parties; i++) {
        gint64 due = start + (gint64) f * PERIOD_NS + (gint64) i * PERIOD_NS / B.n_parties;
        if (due > now + SLOT_NS)
          break;
        if (f >= WARMUP_S * 50) {
          B.send_late_max_ns = MAX (B.send_late_max_ns, now - due);
          B.sends_late_5ms += now - due > 5000000;
        }
        send_frame (&B.party[i], f);
      }
    }
  }
  return NULL;
}

/* ---- the receiver: every party's socket, one epoll ---- */

static gboolean
loud (const guint8 *payload, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (ABS (td_g711_ulaw_decode (payload[i])) > LOUD)
      return TRUE;
  return FALSE;
}

/* A loud packet reached p at `at` (kernel time): the newest marker of
 * another party of its room not yet measured by p, if it was sent less
 * than a marker period ago. */
static void
measure (Party *p, gint64 at)
{
  Room *r = &B.room[p->room];
  gint64 best_ns = 0;
  guint best = PARTIES;
  guint64 best_no = 0;

  for (guint k = 0; k < PARTIES; k++) {
    guint64 no = atomic_load (&r->marker_no[k]);
    gint64 ns = atomic_load (&r->marker_ns[k]);
    if (k == p->j || no == 0 || no == p->matched[k] || ns > at ||
        at - ns > MARKER_EVERY / PARTIES * PERIOD_NS)
      continue;
    if (ns > best_ns) {
      best_ns = ns;
      best = k;
      best_no = no;
    }
  }
  if (best == PARTIES)
    return;
  p->matched[best] = best_no;
  if (at >= B.warm_ns) {
    double us = (at - best_ns) / 1000.0;
    g_array_append_val (B.latency_us, us);
  }
}

static void
receive_one (Party *p)
{
  guint8 buf[2048];
  char control[CMSG_SPACE (sizeof (struct timespec))];
  struct iovec iov = { buf, sizeof buf };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                        .msg_controllen = sizeof control };
  ssize_t n;

  while ((n = recvmsg (p->fd, &msg, MSG_DONTWAIT)) >= 12) {
    gint64 at = now_ns (CLOCK_REALTIME);
    guint16 seq = (guint16) (buf[2] << 8 | buf[3]);

    for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c; c = CMSG_NXTHDR (&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        struct timespec t;
        memcpy (&t, CMSG_DATA (c), sizeof t);
        at = t.tv_sec * 1000000000LL + t.tv_nsec;
      }
    if (p->got_any && at >= B.warm_ns) {
      gint16 d = (gint16) (seq - p->last_seq);
      if (d > 1)
        p->lost += (guint64) (d - 1);
      p->max_gap_ns = MAX (p->max_gap_ns, at - p->last_ns);
      p->received++;
    }
    if (!p->got_any || (gint16) (seq - p->last_seq) > 0)
      p->last_seq = seq;
    p->got_any = TRUE;
    p->last_ns = at;
    /* the wideband party's stream is counted, not decoded (the load
     * generator would spend more than the relay) */
    if (!is_wideband (p) && loud (buf + 12, (gsize) n - 12))
      measure (p, at);
    msg.msg_controllen = sizeof control;
  }
}

static gpointer
receiver (gpointer data)
{
  int ep = GPOINTER_TO_INT (data);
  struct epoll_event ev[256];

  while (!atomic_load (&B.stop)) {
    int n = epoll_wait (ep, ev, G_N_ELEMENTS (ev), 50);
    for (int i = 0; i < n; i++)
      receive_one (ev[i].data.ptr);
  }
  return NULL;
}

/* ---- CPU and threads ---- */

static gint64
thread_ticks (const char *tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/stat", tid);
  g_autofree char *text = NULL;
  unsigned long long utime, stime;
  char *p;

  if (!g_file_get_contents (path, &text, NULL, NULL) || !(p = strrchr (text, ')')) ||
      sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return 0;
  return (gint64) (utime + stime);
}

/* CPU ticks of the relay's threads; *n_threads: all of the process's. */
static gint64
relay_ticks (guint *n_threads)
{
  GDir *dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *name;
  gint64 sum = 0;

  *n_threads = 0;
  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/comm", name);
    g_autofree char *comm = NULL;
    (*n_threads)++;
    if (g_file_get_contents (path, &comm, NULL, NULL) && g_str_has_prefix (comm, "td-relay"))
      sum += thread_ticks (name);
  }
  if (dir)
    g_dir_close (dir);
  return sum;
}

static double
rusage_s (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- setup and report ---- */

/* The wideband party's marker cycle (silence but for its marker frame),
 * encoded as a stream looping over it: ADPCM (G.722) and Opus frames
 * depend on the frames before them, so a marker frame decoded after
 * silence frames it was not encoded after would come out faint. The third
 * pass is kept: the encoder has heard the cycle's end before its start. */
static void
wideband_frames (void)
{
  g_autoptr (TdTranscode) tc = NULL;
  gint16 pcm[320];

  if (!td_codec_from_sdp (g_ascii_strcasecmp (B.wideband, "opus") == 0 ? "opus/48000/2"
                          : g_ascii_strcasecmp (B.wideband, "g722") == 0 ? "G722/8000" : "",
                          &B.wb_codec))
    g_error ("--wideband: G722 or opus");
  B.wb_pt = B.wb_codec == TD_CODEC_OPUS ? 111 : 9;
  tc = td_transcode_new (B.wb_codec, 16000);
  if (!tc)
    g_error ("no %s coder in this GStreamer", B.wideband);
  for (guint pass = 0; pass < 3; pass++) {
    for (guint f = 0; f < MARKER_EVERY; f++) {
      for (guint i = 0; i < 320; i++)
        pcm[i] = f == (PARTIES - 1) * (MARKER_EVERY / PARTIES)
                 ? (gint16) (16000 * sin (2 * G_PI * 1000 * i / 16000.0)) : 0;
      B.wb_len[f] = td_transcode_encode (tc, pcm, B.wb_frame[f]);
      if (B.wb_len[f] == 0)
        g_error ("the %s encoder gave nothing", B.wideband);
    }
  }
}

static int
party_socket (void)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

  if (fd < 0 || bind (fd, (struct sockaddr *) &a, sizeof a) < 0 ||
      setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int) { 1 }, sizeof (int)) < 0)
    g_error ("party socket: %s", g_strerror (errno));
  return fd;
}

static guint16
local_port (int fd)
{
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  getsockname (fd, (struct sockaddr *) &a, &len);
  return ntohs (a.sin_port);
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
percentile (GArray *v, double q)
{
  if (v->len == 0)
    return NAN;
  return g_array_index (v, double, MIN ((guint) (q * v->len), v->len - 1));
}

static void
report (double wall_s, double relay_cpu_s, double proc_cpu_s, guint n_threads)
{
  guint64 received = 0, lost = 0;
  gint64 worst_gap = 0;
  TdRelayMixStats sum = { 0 };
  gint64 worst_mix_gap = 0;
  g_autoptr (GArray) gaps = g_array_new (FALSE, FALSE, sizeof (double));

  for (guint i = 0; i < B.n_parties; i++) {
    double g = B.party[i].max_gap_ns / 1e6;
    received += B.party[i].received;
    lost += B.party[i].lost;
    worst_gap = MAX (worst_gap, B.party[i].max_gap_ns);
    g_array_append_val (gaps, g);
  }
  for (guint r = 0; r < B.rooms; r++) {
    const TdRelayMixStats *st0 = &B.room[r].warm, *st = &B.room[r].end;
    sum.frames += st->frames - st0->frames;
    sum.late += st->late - st0->late;
    sum.concealed += st->concealed - st0->concealed;
    sum.overflows += st->overflows - st0->overflows;
    worst_mix_gap = MAX (worst_mix_gap, st->max_gap_us);
  }
  g_array_sort (B.latency_us, cmp_double);
  g_array_sort (gaps, cmp_double);
  printf ("rooms %u x %u parties, PCMU%s%s, %u s (stats after %d s), %u relay thread(s)\n",
          B.rooms, PARTIES, B.wideband ? " + one " : "", B.wideband ? B.wideband : "",
          B.seconds, WARMUP_S, B.threads);
  printf ("received %" G_GUINT64_FORMAT " mixed packets, lost %" G_GUINT64_FORMAT
          " (%.4f%%)\n", received, lost, received + lost ? 100.0 * lost / (received + lost) : 0);
  printf ("added latency (marker send -> mixed packet at another party), %u samples: "
          "p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", B.latency_us->len,
          percentile (B.latency_us, 0.50) / 1000, percentile (B.latency_us, 0.99) / 1000,
          percentile (B.latency_us, 1.0) / 1000);
  printf ("longest gap per receive stream: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
          percentile (gaps, 0.5), percentile (gaps, 0.99), worst_gap / 1e6);
  printf ("mixes: %" G_GUINT64_FORMAT " frames, member frames concealed %" G_GUINT64_FORMAT
          " (%.4f%%), late %" G_GUINT64_FORMAT ", overflows %" G_GUINT64_FORMAT
          ", longest gap between two frames of a mix %.1f ms\n", sum.frames, sum.concealed,
          sum.frames ? 100.0 * sum.concealed / (sum.frames * PARTIES) : 0, sum.late,
          sum.overflows, worst_mix_gap / 1000.0);
  printf ("the load generator's sends: worst %.1f ms behind schedule, %" G_GUINT64_FORMAT
          " more than 5 ms behind\n", B.send_late_max_ns / 1e6, B.sends_late_5ms);
  printf ("CPU: relay threads %.1f%% of a core (%.3f%% per room), whole process %.1f%%; "
          "%u threads\n", 100 * relay_cpu_s / wall_s, 100 * relay_cpu_s / wall_s / B.rooms,
          100 * proc_cpu_s / wall_s, n_threads);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  GOptionEntry entries[] = {
    { "rooms", 'r', 0, G_OPTION_ARG_INT, &B.rooms, "three-party rooms (50)", "R" },
    { "seconds", 's', 0, G_OPTION_ARG_INT, &B.seconds, "duration (10)", "S" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &B.threads, "relay media threads (1)", "T" },
    { "port-min", 0, 0, G_OPTION_ARG_INT, &B.port_min, "relay ports from (62000)", "P" },
    { "port-max", 0, 0, G_OPTION_ARG_INT, &B.port_max, "relay ports to (63999)", "P" },
    { "wideband", 'w', 0, G_OPTION_ARG_STRING, &B.wideband,
      "the third party of each room speaks G722 or opus (the mix runs at 16 kHz)", "CODEC" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- three-party rooms through the relay's mixes");
  g_autoptr (TdRelay) relay = NULL;
  struct rlimit nofile;
  GThread *tx, *rx;
  int ep;
  guint n_threads;
  gint64 ticks0, ticks1, t0, t1;
  double cpu0, cpu1;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || B.rooms == 0 || B.seconds <= WARMUP_S ||
      B.port_min > B.port_max || B.port_max > 65535)
    g_error ("%s", error ? error->message : "bad options");
  gst_init (&argc, &argv);
  /* the parties' sockets and the relay's, beyond the default 1024 */
  getrlimit (RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit (RLIMIT_NOFILE, &nofile);
  for (guint i = 0; i < 160; i++) {
    B.silence[i] = TD_G711_ULAW_SILENCE;
    B.marker[i] = td_g711_ulaw_encode ((gint16) (16000 * sin (2 * G_PI * 1000 * i / 8000.0)));
  }
  if (B.wideband)
    wideband_frames ();
  relay = td_relay_new_full ("127.0.0.1", (guint16) B.port_min, (guint16) B.port_max, B.threads,
                             &error);
  if (!relay)
    g_error ("%s", error->message);
  B.room = g_new0 (Room, B.rooms);
  B.n_parties = B.rooms * PARTIES;
  B.party = g_new0 (Party, B.n_parties);
  B.latency_us = g_array_new (FALSE, FALSE, sizeof (double));
  ep = epoll_create1 (EPOLL_CLOEXEC);
  for (guint r = 0; r < B.rooms; r++) {
    B.room[r].mix = td_relay_mix_new (relay);
    for (guint j = 0; j < PARTIES; j++) {
      Party *p = &B.party[r * PARTIES + j];
      TdRelayPort *port = td_relay_port_alloc (relay, &error);
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };

      if (!port)
        g_error ("%s", error->message);
      p->room = r;
      p->j = j;
      p->fd = party_socket ();
      p->dest = (struct sockaddr_in) { .sin_family = AF_INET,
                                       .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
                                       .sin_port = htons (td_relay_port_number (port)) };
      td_relay_port_set_remote (port, "127.0.0.1", local_port (p->fd), 0);
      if (is_wideband (p))
        td_relay_port_join_mix (port, B.room[r].mix, B.wb_codec, B.wb_pt, TRUE);
      else
        td_relay_port_join_mix (port, B.room[r].mix, TD_CODEC_PCMU, 0, TRUE);
      epoll_ctl (ep, EPOLL_CTL_ADD, p->fd, &ev);
    }
  }
  td_relay_sync (relay);
  B.start_ns = now_ns (CLOCK_REALTIME);
  B.warm_ns = B.start_ns + WARMUP_S * 1000000000LL;
  rx = g_thread_new ("mb-receive", receiver, GINT_TO_POINTER (ep));
  tx = g_thread_new ("mb-send", sender, NULL);
  /* CPU from the end of the warm-up to the end of sending */
  g_usleep (WARMUP_S * G_USEC_PER_SEC);
  for (guint r = 0; r < B.rooms; r++)
    td_relay_mix_get_stats (B.room[r].mix, &B.room[r].warm);
  ticks0 = relay_ticks (&n_threads);
  cpu0 = rusage_s ();
  t0 = now_ns (CLOCK_MONOTONIC);
  g_thread_join (tx);
  ticks1 = relay_ticks (&n_threads);
  cpu1 = rusage_s ();
  t1 = now_ns (CLOCK_MONOTONIC);
  for (guint r = 0; r < B.rooms; r++)
    td_relay_mix_get_stats (B.room[r].mix, &B.room[r].end);
  g_usleep (DRAIN_MS * 1000);
  atomic_store (&B.stop, TRUE);
  g_thread_join (rx);
  report ((t1 - t0) / 1e9, (double) (ticks1 - ticks0) / sysconf (_SC_CLK_TCK), cpu1 - cpu0,
          n_threads);
  for (guint r = 0; r < B.rooms; r++)
    td_relay_mix_free (B.room[r].mix);
  for (guint i = 0; i < B.n_parties; i++)
    close (B.party[i].fd);
  close (ep);
  return 0;
}
