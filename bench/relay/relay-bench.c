/* relay-bench: N two-leg calls through TdRelay (or GStreamer), in-process.
 *
 * Each call has two "phones" (UDP sockets on 127.0.0.1) sending 172-byte
 * RTP at 50 packets/s to their relay port; the relay forwards to the other
 * phone. A load-generator thread sends on a fixed schedule (phones spread
 * evenly over each 20 ms) and receives everything, counting loss per
 * direction and the added latency: the receiving socket's kernel timestamp
 * (SO_TIMESTAMPNS) minus the send time carried in the payload, so the load
 * generator's own receive delay is not counted.
 *
 * In the same run and measured the same way:
 *   bare    K calls through a bare forwarding loop (one thread, epoll,
 *           recvfrom + sendto per packet, no checks): the floor of any relay
 *           thread hop on this machine;
 *   direct  K phone pairs sending straight to each other: the loopback floor.
 *
 * --rtpengine ADDR:PORT: the same calls through rtpengine (the peer's relay,
 * userspace) instead, set up over its ng control protocol (rtpengine-ng.c);
 * with --rtpengine-pid its threads are pinned to cpu0 as tandem's relay
 * is, and its CPU (all its threads, /proc ticks) is reported alike.
 *
 * --srtp: each call's A port runs SRTP (td_relay_port_set_srtp, random keys
 * per direction: one pair for every call, or per call with --keys-per-call,
 * see call_keys), B stays plain: SRTP<->RTP calls. The A phones protect
 * what they send under the relay's rx key and unprotect what they receive
 * under its tx key (phone-srtp.c, libsrtp2 directly); a packet that fails
 * to unprotect is lost, and counted apart. The relay does one SRTP
 * operation per relayed packet (unprotect A->B, protect B->A), so its CPU
 * per packet against a plain run is the cost of one. --apart runs the
 * generator in a child process with its own libsrtp2 (and NSS).
 *
 * CPU per thread comes from /proc/self/task/TID/stat (user + system ticks);
 * RSS per call is VmRSS after allocating and connecting the N calls' ports
 * minus before, over N; kernel memory per call is the Slab delta likewise.
 *
 * Build and run: see README.md in this folder. */
#define G_LOG_DOMAIN "relay-bench"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gst/gst.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "phone-srtp.h"
#include "rtpengine-ng.h"
#include "td-relay.h"
#include "td-srtp.h"

#define PACKET 172
#define PERIOD_NS 20000000LL         /* 50 packets/s */
#define HIST_US 200000               /* 1 µs buckets up to 200 ms */
#define WARMUP_S 2                   /* latency is not recorded before this */
#define DRAIN_MS 500

enum { TANDEM, BARE, DIRECT, N_CLASSES };
static const char *const class_names[] = { "relay", "bare", "direct" };

typedef struct {
  int fd;
  guint16 port;
  guint8 cls, dir;                   /* dir 0: an A phone (sends A->B) */
  gboolean connected;
  gboolean sink;                     /* --sample: never read, not counted */
  guint32 peer;                      /* index of the counterpart phone */
  struct sockaddr_in dest;           /* where it sends */
  guint32 seq;
  srtp_t srtp_tx, srtp_rx;           /* --srtp, A phones: protect / unprotect; NULL: plain */
} Phone;

typedef struct {
  guint64 sent[2], received[2], send_failed[2], misrouted;
  guint64 unprotect_auth, unprotect_replay, unprotect_other;   /* at the A phones (B->A), lost */
  guint64 *hist;                     /* HIST_US + 1 buckets */
  guint64 n_lat;
} ClassStats;

static struct {
  /* options */
  guint calls, bare_calls, direct_calls, duration, sample, threads;
  guint events_ms;                   /* --events: idle timeout, and an event func on every port */
  guint64 events;                    /* main thread: events delivered */
  guint64 sink_sent;
  guint16 port_min, port_max;
  gboolean pin, gst, spin;
  TdSrtpSuite suite;                 /* --srtp / --suite: on every A port; NONE = plain */
  gboolean keys_per_call;            /* --keys-per-call: else one key pair for every A port */
  srtp_t shared_tx, shared_rx;       /* the A phones' sessions when the keys are shared */
  guint8 *keys;                      /* --srtp: call_keys(); wiped once both sides have them */
  gboolean apart;                    /* --apart: the load generator in a child process */
  char *rtpengine;                   /* --rtpengine: ng control ADDR:PORT; NULL = tandem's relay */
  pid_t rtpengine_pid;               /* --rtpengine-pid: pinned and measured */
  NgClient *ng;
  gint64 child_cpu_ns;               /* --apart: the child's whole CPU over the window */
  pid_t child;
  int to_child, from_child;          /* --apart: pipes, parent side */
  int nice;                          /* for the relay (or GStreamer) and bare-loop threads */
  /* state */
  Phone *phones;
  guint n_phones;
  ClassStats cls[N_CLASSES];
  gint64 t_start_ns, t_warm_ns, t_stop_ns;
  pid_t loadgen_tid, bare_tid;
  guint64 *late_hist;                /* how late the generator sent, µs */
  gint64 loadgen_cpu_ns, bare_cpu_ns;   /* their own CLOCK_THREAD_CPUTIME_ID at the end */
  atomic_bool bare_stop;
  int bare_fds_n, *bare_fds;         /* forwarder sockets, [2i] faces A, [2i+1] faces B */
  struct sockaddr_in *bare_dest;     /* where each forwarder socket sends */
  TdRelayPort **ports;               /* tandem: [2i] call i's A port, [2i+1] its B port */
  gint64 relay_srtp_setup_ns, phone_srtp_setup_ns;
  guint n_phone_sessions;
  /* the generator's own libsrtp2 work, timed on CLOCK_MONOTONIC around each call */
  guint64 n_protect, n_unprotect;
  gint64 protect_ns, unprotect_ns;
} B = {
  .calls = 500, .threads = 1, .bare_calls = 20, .direct_calls = 20, .duration = 20,
  .port_min = 2000, .port_max = 19999, .pin = TRUE,
};

static gint64
now_ns (clockid_t clock)
{
  struct timespec ts;
  clock_gettime (clock, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
pin_tid (pid_t tid, int cpu)
{
  cpu_set_t set;

  if (!B.pin)
    return;
  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  if (sched_setaffinity (tid, sizeof set, &set) < 0)
    g_warning ("pin %d to cpu %d: %s", tid, cpu, g_strerror (errno));
}

/* Every thread of another process (rtpengine) on `cpu`. */
static void
pin_process (pid_t pid, int cpu)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/task", pid);
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (!dir)
    g_error ("no process %d", pid);
  while ((name = g_dir_read_name (dir)))
    pin_tid (atoi (name), cpu);
  g_dir_close (dir);
}

static struct sockaddr_in
loopback (guint16 port)
{
  return (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons (port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
}

static int
udp_socket (guint16 port, guint16 *bound)
{
  struct sockaddr_in a = loopback (port);
  socklen_t len = sizeof a;
  int on = 1;
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0)
    g_error ("socket: %s", g_strerror (errno));
  if (bind (fd, (struct sockaddr *) &a, sizeof a) < 0) {
    close (fd);
    return -1;
  }
  setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  getsockname (fd, (struct sockaddr *) &a, &len);
  if (bound)
    *bound = ntohs (a.sin_port);
  return fd;
}

/* ---- /proc readings ---- */

static gint64
proc_status_kb (const char *path, const char *key)
{
  g_autofree char *text = NULL;
  const char *p;

  if (!g_file_get_contents (path, &text, NULL, NULL) || !(p = strstr (text, key)))
    return -1;
  return g_ascii_strtoll (p + strlen (key), NULL, 10);
}

/* user + system ticks of a stat file: one thread's, or a whole process's */
static gint64
stat_ticks (const char *path)
{
  g_autofree char *text = NULL;
  char *p;
  unsigned long long utime, stime;

  if (!g_file_get_contents (path, &text, NULL, NULL) || !(p = strrchr (text, ')')))
    return -1;
  /* fields after the comm: state(3) ... utime(14) stime(15) */
  if (sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return -1;
  return (gint64) (utime + stime);
}

static gint64
thread_ticks (pid_t tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/self/task/%d/stat", tid);
  return stat_ticks (path);
}

static gint64
process_ticks (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  return stat_ticks (path);
}

/* TIDs of the threads whose name starts with `prefix`, sorted. */
static GArray *
find_threads (const char *prefix)
{
  GArray *tids = g_array_new (FALSE, FALSE, sizeof (pid_t));
  GDir *dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/comm", name);
    g_autofree char *text = NULL;
    if (g_file_get_contents (path, &text, NULL, NULL) && g_str_has_prefix (text, prefix)) {
      pid_t tid = atoi (name);
      g_array_append_val (tids, tid);
    }
  }
  if (dir)
    g_dir_close (dir);
  return tids;
}

/* Summed over the relay threads: CPU ticks, or voluntary context switches
 * (= wake-ups after sleeping in epoll_wait). */
static gint64
relay_threads_sum (GArray *tids, gboolean switches)
{
  gint64 sum = 0;

  for (guint i = 0; i < tids->len; i++) {
    pid_t tid = g_array_index (tids, pid_t, i);
    g_autofree char *path = g_strdup_printf ("/proc/self/task/%d/status", tid);
    sum += switches ? proc_status_kb (path, "voluntary_ctxt_switches:") : thread_ticks (tid);
  }
  return sum;
}

/* Per-CPU jiffies from /proc/stat: [cpu][0] busy (user..softirq), [1] softirq,
 * [2] steal, [3] total. The relay's sends on loopback run the receiving
 * socket's path in softirq, partly in ksoftirqd, which the thread's own
 * ticks miss: the CPU's busy share is the honest figure when pinned. */
#define MAX_CPUS 8
static void
cpu_jiffies (gint64 out[MAX_CPUS][4])
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  memset (out, 0, sizeof (gint64) * MAX_CPUS * 4);
  if (!g_file_get_contents ("/proc/stat", &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    unsigned cpu;
    unsigned long long v[8];
    if (sscanf (lines[i], "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
                &v[3], &v[4], &v[5], &v[6], &v[7]) != 9 || cpu >= MAX_CPUS)
      continue;
    out[cpu][0] = v[0] + v[1] + v[2] + v[5] + v[6];
    out[cpu][1] = v[6];
    out[cpu][2] = v[7];
    out[cpu][3] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  }
}

/* ---- the bare forwarding loop ---- */

static gpointer
bare_thread (gpointer data)
{
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event ev[256];
  guint8 buf[2048];

  B.bare_tid = (pid_t) syscall (SYS_gettid);
  pin_tid (B.bare_tid, 0);
  if (B.nice)
    setpriority (PRIO_PROCESS, B.bare_tid, B.nice);
  for (int i = 0; i < B.bare_fds_n; i++) {
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = (guint32) i };
    epoll_ctl (ep, EPOLL_CTL_ADD, B.bare_fds[i], &e);
  }
  while (!atomic_load (&B.bare_stop)) {
    int n = epoll_wait (ep, ev, G_N_ELEMENTS (ev), 100);
    for (int i = 0; i < n; i++) {
      guint32 k = ev[i].data.u32;
      ssize_t len;
      while ((len = recv (B.bare_fds[k], buf, sizeof buf, MSG_DONTWAIT)) > 0)
        sendto (B.bare_fds[k ^ 1], buf, len, 0, (struct sockaddr *) &B.bare_dest[k ^ 1],
                sizeof B.bare_dest[0]);
    }
  }
  close (ep);
  B.bare_cpu_ns = now_ns (CLOCK_THREAD_CPUTIME_ID);
  return NULL;
}

/* ---- the load generator ---- */

/* --srtp: encrypts the clear packet in place (room for the tag after it).
 * FALSE: libsrtp refused, not sent. */
static gboolean
phone_protect (Phone *p, guint8 *pkt, int *len)
{
  gint64 t0 = now_ns (CLOCK_MONOTONIC);
  srtp_err_status_t err = srtp_protect (p->srtp_tx, pkt, len);

  B.protect_ns += now_ns (CLOCK_MONOTONIC) - t0;
  B.n_protect++;
  return err == srtp_err_status_ok;
}

static void
send_one (Phone *p)
{
  guint8 pkt[PACKET + SRTP_MAX_TRAILER_LEN] = { 0x80, 0x00 };
  int len = PACKET;
  guint32 me = (guint32) (p - B.phones);
  gint64 t;
  ClassStats *cs = &B.cls[p->cls];
  gboolean ok;

  pkt[2] = p->seq >> 8;
  pkt[3] = p->seq & 0xff;
  memcpy (pkt + 8, &me, 4);                     /* as the SSRC */
  memcpy (pkt + 16, &p->seq, 4);
  t = now_ns (CLOCK_REALTIME);                  /* same clock as SO_TIMESTAMPNS */
  memcpy (pkt + 12 + 8, &t, 8);
  /* the send time is stamped before protect: A->B latency includes it */
  ok = !p->srtp_tx || phone_protect (p, pkt, &len);
  ok = ok && (p->connected ? send (p->fd, pkt, len, 0)   /* see connect_phones */
                           : sendto (p->fd, pkt, len, 0, (struct sockaddr *) &p->dest,
                                     sizeof p->dest)) == len;

  if (p->sink)
    B.sink_sent += ok;
  else if (ok)
    cs->sent[p->dir]++;
  else
    cs->send_failed[p->dir]++;
  p->seq++;
}

#define RX_BATCH 8

/* --srtp: decrypts in place; a failure is counted by kind (the packet is
 * then lost). */
static gboolean
phone_unprotect (Phone *p, guint8 *pkt, unsigned int *len)
{
  ClassStats *cs = &B.cls[p->cls];
  int n = (int) *len;
  gint64 t0 = now_ns (CLOCK_MONOTONIC);
  srtp_err_status_t err = srtp_unprotect (p->srtp_rx, pkt, &n);

  B.unprotect_ns += now_ns (CLOCK_MONOTONIC) - t0;
  B.n_unprotect++;
  switch (err) {
  case srtp_err_status_ok:
    *len = (unsigned int) n;
    return TRUE;
  case srtp_err_status_auth_fail:
    cs->unprotect_auth++;
    break;
  case srtp_err_status_replay_fail:
  case srtp_err_status_replay_old:
    cs->unprotect_replay++;
    break;
  default:
    cs->unprotect_other++;
    break;
  }
  return FALSE;
}

static void
receive_all (Phone *p, gboolean record)
{
  struct mmsghdr msgs[RX_BATCH];
  struct iovec iov[RX_BATCH];
  guint8 bufs[RX_BATCH][2048];
  char ctrl[RX_BATCH][CMSG_SPACE (sizeof (struct timespec))];
  int n;

  for (;;) {
    for (int i = 0; i < RX_BATCH; i++) {
      iov[i] = (struct iovec) { bufs[i], sizeof bufs[i] };
      msgs[i].msg_hdr = (struct msghdr) { .msg_iov = &iov[i], .msg_iovlen = 1,
                                          .msg_control = ctrl[i], .msg_controllen = sizeof ctrl[i] };
    }
    n = recvmmsg (p->fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
      return;
    for (int i = 0; i < n; i++) {
      guint32 from;
      gint64 sent_ns, rx_ns = 0;
      Phone *src;
      ClassStats *cs;
      struct cmsghdr *c;

      if (p->srtp_rx && !phone_unprotect (p, bufs[i], &msgs[i].msg_len))
        continue;
      if (msgs[i].msg_len != PACKET)
        continue;
      memcpy (&from, bufs[i] + 8, 4);
      memcpy (&sent_ns, bufs[i] + 20, 8);
      if (from >= B.n_phones || B.phones[from].peer != (guint32) (p - B.phones)) {
        B.cls[p->cls].misrouted++;
        continue;
      }
      src = &B.phones[from];
      cs = &B.cls[src->cls];
      cs->received[src->dir]++;
      for (c = CMSG_FIRSTHDR (&msgs[i].msg_hdr); c; c = CMSG_NXTHDR (&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
          struct timespec ts;
          memcpy (&ts, CMSG_DATA (c), sizeof ts);
          rx_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
        }
      }
      if (record && rx_ns) {
        gint64 us = (rx_ns - sent_ns) / 1000;
        cs->hist[CLAMP (us, 0, HIST_US)]++;
        cs->n_lat++;
      }
    }
    if (n < RX_BATCH)
      return;
  }
}

/* Phones sorted by send phase: index i sends at start + i * PERIOD / n. */
static gpointer
loadgen_thread (gpointer data)
{
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event ev[512];
  guint next = 0;
  gint64 round_start, stop_at, drain_until;
  guint64 rounds = 0;

  B.loadgen_tid = (pid_t) syscall (SYS_gettid);
  pin_tid (B.loadgen_tid, 1);
  for (guint i = 0; i < B.n_phones; i++) {
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };
    if (!B.phones[i].sink)
      epoll_ctl (ep, EPOLL_CTL_ADD, B.phones[i].fd, &e);
  }
  B.t_start_ns = now_ns (CLOCK_MONOTONIC);
  B.t_warm_ns = B.t_start_ns + WARMUP_S * 1000000000LL;
  stop_at = B.t_start_ns + (gint64) B.duration * 1000000000LL;
  drain_until = stop_at + DRAIN_MS * 1000000LL;
  round_start = B.t_start_ns;
  for (;;) {
    gint64 now = now_ns (CLOCK_MONOTONIC), due;
    struct timespec timeout;
    int n;

    if (now < stop_at) {
      /* send everything that is due (catching up if we were late) */
      while ((due = round_start + (gint64) next * PERIOD_NS / B.n_phones) <= now) {
        B.late_hist[CLAMP ((now - due) / 1000, 0, HIST_US)]++;
        send_one (&B.phones[next]);
        if (++next == B.n_phones) {
          next = 0;
          rounds++;
          round_start += PERIOD_NS;
        }
      }
    } else if (now >= drain_until) {
      break;
    } else {
      due = drain_until;
    }
    if (B.t_stop_ns == 0 && now >= stop_at)
      B.t_stop_ns = now;
    timeout.tv_sec = MAX (0, due - now) / 1000000000LL;
    timeout.tv_nsec = MAX (0, due - now) % 1000000000LL;
    if (B.spin)
      timeout.tv_sec = timeout.tv_nsec = 0;   /* never sleep: the relay's sends wake nobody */
    n = epoll_pwait2 (ep, ev, G_N_ELEMENTS (ev), &timeout, NULL);
    for (int i = 0; i < n; i++)
      receive_all (&B.phones[ev[i].data.u32], now_ns (CLOCK_MONOTONIC) >= B.t_warm_ns);
  }
  close (ep);
  B.loadgen_cpu_ns = now_ns (CLOCK_THREAD_CPUTIME_ID);
  return NULL;
}

/* ---- set-up ---- */

static void
add_phone_pair (guint cls, guint16 *a_port_out, guint16 *b_port_out, guint *ia, guint *ib)
{
  Phone *a = &B.phones[B.n_phones], *b = &B.phones[B.n_phones + 1];

  *ia = B.n_phones;
  *ib = B.n_phones + 1;
  a->fd = udp_socket (0, &a->port);
  b->fd = udp_socket (0, &b->port);
  if (a->fd < 0 || b->fd < 0)
    g_error ("phone socket: %s", g_strerror (errno));
  a->cls = b->cls = cls;
  a->dir = 0;
  b->dir = 1;
  a->peer = *ib;
  b->peer = *ia;
  B.n_phones += 2;
  if (a_port_out)
    *a_port_out = a->port;
  if (b_port_out)
    *b_port_out = b->port;
}

/* Phones are interleaved so that A and B of one call send 10 ms apart and
 * the classes mix over the period. */
static void
shuffle_phase (void)
{
  GRand *r = g_rand_new_with_seed (42);
  guint *order = g_new (guint, B.n_phones), *where = g_new (guint, B.n_phones);
  Phone *copy = g_memdup2 (B.phones, sizeof (Phone) * B.n_phones);

  for (guint i = 0; i < B.n_phones; i++)
    order[i] = i;
  for (guint i = B.n_phones - 1; i > 0; i--) {
    guint j = g_rand_int_range (r, 0, i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (guint i = 0; i < B.n_phones; i++)
    where[order[i]] = i;
  for (guint i = 0; i < B.n_phones; i++) {
    B.phones[where[i]] = copy[i];
    B.phones[where[i]].peer = where[copy[i].peer];
  }
  g_free (copy);
  g_free (order);
  g_free (where);
  g_rand_free (r);
}

static void
count_event (TdRelayPort *port, const TdRelayEvent *event, gpointer data)
{
  B.events++;
}

/* --srtp keys: rx (what the A phone sends under) then tx (what it
 * receives under), 2 * TD_SRTP_MAX_KEY bytes a call with --keys-per-call,
 * else one pair for all. Why one pair by default: every libsrtp2 session
 * of the process slows every SRTP operation in it (Debian's NSS build:
 * ~2.7 us a protect with 100 sessions, ~11 with 1,000, ~27 with 4,000, on
 * one session or spread, measured apart), so 2N phone sessions next to
 * the relay's 2N would inflate the relay's figure. With one pair the
 * phones need two sessions (each SSRC is a stream of them, sharing their
 * crypto contexts); the relay still makes its own two per port and never
 * knows the keys are equal. */
static const guint8 *
call_keys (const guint8 *keys, guint call)
{
  return keys + (B.keys_per_call ? (gsize) call * 2 * TD_SRTP_MAX_KEY : 0);
}

static gsize
keys_size (void)
{
  return (gsize) (B.keys_per_call ? B.calls : 1) * 2 * TD_SRTP_MAX_KEY;
}

static void
make_keys (void)
{
  B.keys = g_malloc (keys_size ());
  for (gsize off = 0; off < keys_size (); off += 2 * TD_SRTP_MAX_KEY) {
    td_srtp_random_key (B.suite, B.keys + off);
    td_srtp_random_key (B.suite, B.keys + off + TD_SRTP_MAX_KEY);
  }
}

static void
wipe_keys (void)
{
  if (B.keys)
    explicit_bzero (B.keys, keys_size ());
  g_clear_pointer (&B.keys, g_free);
}

/* The relay makes its sessions on the media thread; the time to the sync
 * is its set-up cost. */
static void
setup_relay_srtp (TdRelay *relay, TdRelayPort **ports, guint n)
{
  gint64 t0;

  td_relay_sync (relay);
  t0 = now_ns (CLOCK_MONOTONIC);
  for (guint i = 0; i < n; i++) {
    const guint8 *rx = call_keys (B.keys, i);
    td_relay_port_set_srtp (ports[2 * i], B.suite, rx, rx + TD_SRTP_MAX_KEY);
  }
  td_relay_sync (relay);
  B.relay_srtp_setup_ns = now_ns (CLOCK_MONOTONIC) - t0;
}

/* --srtp: the A phone's sessions, matching its relay port's (a sink phone
 * never reads: no receive session). */
static void
setup_phone_srtp (Phone *a, const guint8 *keys)
{
  gint64 t0 = now_ns (CLOCK_MONOTONIC);

  if (B.keys_per_call) {
    a->srtp_tx = phone_srtp_new (B.suite, keys, TRUE);
    B.n_phone_sessions++;
    if (!a->sink) {
      a->srtp_rx = phone_srtp_new (B.suite, keys + TD_SRTP_MAX_KEY, FALSE);
      B.n_phone_sessions++;
    }
  } else {
    if (!B.shared_tx) {
      B.shared_tx = phone_srtp_new (B.suite, keys, TRUE);
      B.shared_rx = phone_srtp_new (B.suite, keys + TD_SRTP_MAX_KEY, FALSE);
      B.n_phone_sessions += 2;
    }
    a->srtp_tx = B.shared_tx;
    a->srtp_rx = a->sink ? NULL : B.shared_rx;
  }
  B.phone_srtp_setup_ns += now_ns (CLOCK_MONOTONIC) - t0;
}

/* Every A phone's sessions (call i's phones are 2i and 2i+1 until
 * shuffle_phase), in the process that runs the generator. */
static void
setup_phones_srtp (void)
{
  td_srtp_global_init ();
  for (guint i = 0; i < B.calls; i++)
    setup_phone_srtp (&B.phones[2 * i], call_keys (B.keys, i));
}

/* --sample: call i's phones are never read unless i is a multiple of K. */
static void
sample_call (guint i, guint ia, guint ib)
{
  int small = 1;   /* the kernel's minimum: a sink holds a packet or two, then drops */

  if (B.sample <= 1 || i % B.sample == 0)
    return;
  B.phones[ia].sink = B.phones[ib].sink = TRUE;
  setsockopt (B.phones[ia].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  setsockopt (B.phones[ib].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
}

/* The calls' phones, before the relay (and before --apart's fork): call
 * i's are 2i (A) and 2i+1 (B). */
static void
tandem_phones (guint n)
{
  for (guint i = 0; i < n; i++) {
    guint ia, ib;
    add_phone_pair (TANDEM, NULL, NULL, &ia, &ib);
    g_assert (ia == 2 * i && ib == 2 * i + 1);
    sample_call (i, ia, ib);
  }
}

static TdRelay *
setup_tandem (guint n, gint64 *rss_kb, gint64 *slab_kb)
{
  g_autoptr (GError) error = NULL;
  TdRelay *relay = td_relay_new_full ("127.0.0.1", B.port_min, B.port_max, B.threads, &error);
  gint64 rss0, slab0;
  TdRelayPort **ports = g_new (TdRelayPort *, 2 * n);

  if (!relay)
    g_error ("%s", error->message);
  td_relay_sync (relay);
  rss0 = proc_status_kb ("/proc/self/status", "VmRSS:");
  slab0 = proc_status_kb ("/proc/meminfo", "Slab:");
  for (guint i = 0; i < 2 * n; i++) {
    ports[i] = td_relay_port_alloc (relay, &error);
    if (!ports[i])
      g_error ("%s", error->message);
  }
  for (guint i = 0; i < n; i++)
    td_relay_connect (ports[2 * i], ports[2 * i + 1]);
  if (B.events_ms) {
    /* as tandem runs it: every port watched, the idle check on */
    td_relay_set_idle_timeout (relay, B.events_ms);
    for (guint i = 0; i < 2 * n; i++)
      td_relay_port_set_event_func (ports[i], count_event, NULL);
  }
  if (B.suite != TD_SRTP_SUITE_NONE)
    setup_relay_srtp (relay, ports, n);   /* its sessions count in the relay's memory */
  td_relay_sync (relay);
  *rss_kb = proc_status_kb ("/proc/self/status", "VmRSS:") - rss0;
  *slab_kb = proc_status_kb ("/proc/meminfo", "Slab:") - slab0;
  /* now the phones: SDP remote = the phone, the phone sends to its port */
  for (guint i = 0; i < 2 * n; i++) {
    guint16 pp = B.phones[i].port;
    td_relay_port_set_remote (ports[i], "127.0.0.1", pp, pp);
    B.phones[i].dest = loopback (td_relay_port_number (ports[i]));
  }
  td_relay_sync (relay);
  B.ports = ports;   /* for the stats at the end; td_relay_free closes them */
  return relay;
}

/* Finds a free port in the range for udpsrc (it binds with SO_REUSEADDR
 * itself, so probe first without it). */
static guint16
probe_port (guint16 *cursor)
{
  while (*cursor < B.port_max) {
    guint16 p = (*cursor)++;
    int fd = udp_socket (p, NULL);
    if (fd >= 0) {
      close (fd);
      return p;
    }
  }
  g_error ("no free port left in %u-%u", B.port_min, B.port_max);
}

static GPtrArray *
setup_gst (guint n)
{
  GPtrArray *pipelines = g_ptr_array_new ();
  guint16 cursor = B.port_min;

  for (guint i = 0; i < n; i++) {
    guint16 pa, pb, ra = probe_port (&cursor), rb = probe_port (&cursor);
    guint ia, ib;
    g_autoptr (GError) error = NULL;

    add_phone_pair (TANDEM, &pa, &pb, &ia, &ib);
    B.phones[ia].dest = loopback (ra);
    B.phones[ib].dest = loopback (rb);
    for (guint d = 0; d < 2; d++) {
      g_autofree char *desc = g_strdup_printf (
          "udpsrc address=127.0.0.1 port=%u ! udpsink host=127.0.0.1 port=%u sync=false async=false",
          d ? rb : ra, d ? pa : pb);
      GstElement *p = gst_parse_launch (desc, &error);
      if (!p || gst_element_set_state (p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
        g_error ("pipeline %s: %s", desc, error ? error->message : "failed to start");
      g_ptr_array_add (pipelines, p);
    }
  }
  return pipelines;
}

/* --rtpengine: each call's two phones, and the ports rtpengine opened for
 * them (the offer carries A's port, the answer B's). */
static void
setup_rtpengine (guint n)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) hp = g_strsplit (B.rtpengine, ":", 2);

  if (!hp[1] || !(B.ng = ng_client_new (hp[0], (guint16) atoi (hp[1]), &error)))
    g_error ("--rtpengine %s: %s", B.rtpengine, error ? error->message : "not ADDR:PORT");
  for (guint i = 0; i < n; i++) {
    g_autofree char *call_id = g_strdup_printf ("relay-bench-%d-%u", (int) getpid (), i);
    guint16 pa, pb, to_a, to_b;
    guint ia, ib;

    add_phone_pair (TANDEM, &pa, &pb, &ia, &ib);
    sample_call (i, ia, ib);
    if (!ng_call_new (B.ng, call_id, pa, pb, &to_a, &to_b, &error))
      g_error ("call %u: %s", i, error->message);
    B.phones[ia].dest = loopback (to_a);
    B.phones[ib].dest = loopback (to_b);
  }
}

static void
teardown_rtpengine (guint n)
{
  for (guint i = 0; i < n; i++) {
    g_autofree char *call_id = g_strdup_printf ("relay-bench-%d-%u", (int) getpid (), i);
    g_autoptr (GError) error = NULL;
    if (!ng_call_delete (B.ng, call_id, &error))
      g_warning ("delete call %u: %s", i, error->message);
  }
  g_clear_pointer (&B.ng, ng_client_free);
}

static void
setup_baselines (void)
{
  B.bare_fds_n = 2 * B.bare_calls;
  B.bare_fds = g_new (int, B.bare_fds_n);
  B.bare_dest = g_new (struct sockaddr_in, B.bare_fds_n);
  for (guint i = 0; i < B.bare_calls; i++) {
    guint16 pa, pb, fa, fb;
    guint ia, ib;
    add_phone_pair (BARE, &pa, &pb, &ia, &ib);
    B.bare_fds[2 * i] = udp_socket (0, &fa);
    B.bare_fds[2 * i + 1] = udp_socket (0, &fb);
    B.bare_dest[2 * i] = loopback (pa);
    B.bare_dest[2 * i + 1] = loopback (pb);
    B.phones[ia].dest = loopback (fa);
    B.phones[ib].dest = loopback (fb);
  }
  for (guint i = 0; i < B.direct_calls; i++) {
    guint16 pa, pb;
    guint ia, ib;
    add_phone_pair (DIRECT, &pa, &pb, &ia, &ib);
    B.phones[ia].dest = loopback (pb);
    B.phones[ib].dest = loopback (pa);
  }
}

/* Each phone sends with send() on a socket connected to its destination:
 * cheaper for the generator (no per-packet route lookup), and the phone
 * then accepts only packets from where it sends, as a NAT would. Not for
 * GStreamer, whose udpsink sends from a port of its own. */
static void
connect_phones (void)
{
  for (guint i = 0; i < B.n_phones; i++) {
    Phone *p = &B.phones[i];
    if (B.gst && p->cls == TANDEM)
      continue;
    if (connect (p->fd, (struct sockaddr *) &p->dest, sizeof p->dest) < 0)
      g_error ("connect: %s", g_strerror (errno));
    p->connected = TRUE;
  }
}

/* ---- --apart: the load generator in a process of its own ----
 *
 * Forked once the phones' sockets and the keys exist, before anything
 * initialises libsrtp2 (td_relay_new does): each process then has its own
 * NSS, and the phones' sessions and operations neither slow nor lock the
 * relay's. The child learns the relay's port numbers through a pipe, runs
 * the generator when told, and sends back what it measured. */

static void
xfer (int fd, void *data, gsize n, gboolean out)
{
  guint8 *p = data;

  while (n > 0) {
    gssize r = out ? write (fd, p, n) : read (fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      g_error ("--apart: pipe %s", r == 0 ? "closed (the other process died)" : g_strerror (errno));
    p += r;
    n -= (gsize) r;
  }
}

/* What the generator measured, child -> parent. */
static void
xfer_results (int fd, gboolean out)
{
  for (guint c = 0; c < N_CLASSES; c++) {
    guint64 *hist = B.cls[c].hist;
    xfer (fd, &B.cls[c], sizeof B.cls[c], out);
    B.cls[c].hist = hist;   /* the parent's own buffer */
    xfer (fd, hist, sizeof (guint64) * (HIST_US + 1), out);
  }
  xfer (fd, B.late_hist, sizeof (guint64) * (HIST_US + 1), out);
  xfer (fd, &B.sink_sent, sizeof B.sink_sent, out);
  xfer (fd, &B.loadgen_cpu_ns, sizeof B.loadgen_cpu_ns, out);
  xfer (fd, &B.child_cpu_ns, sizeof B.child_cpu_ns, out);
  xfer (fd, &B.n_protect, sizeof B.n_protect, out);
  xfer (fd, &B.n_unprotect, sizeof B.n_unprotect, out);
  xfer (fd, &B.protect_ns, sizeof B.protect_ns, out);
  xfer (fd, &B.unprotect_ns, sizeof B.unprotect_ns, out);
  xfer (fd, &B.phone_srtp_setup_ns, sizeof B.phone_srtp_setup_ns, out);
  xfer (fd, &B.n_phone_sessions, sizeof B.n_phone_sessions, out);
}

static void G_GNUC_NORETURN
generator_child (int rd, int wr)
{
  g_autofree guint16 *ports = g_new (guint16, 2 * B.calls);
  gint64 cpu0;
  char c = 'r';

  xfer (rd, ports, sizeof (guint16) * 2 * B.calls, FALSE);
  for (guint i = 0; i < 2 * B.calls; i++)
    B.phones[i].dest = loopback (ports[i]);
  if (B.suite != TD_SRTP_SUITE_NONE)
    setup_phones_srtp ();
  wipe_keys ();
  shuffle_phase ();
  connect_phones ();
  xfer (wr, &c, 1, TRUE);    /* ready */
  xfer (rd, &c, 1, FALSE);   /* go */
  cpu0 = now_ns (CLOCK_PROCESS_CPUTIME_ID);
  g_thread_join (g_thread_new ("loadgen", loadgen_thread, NULL));
  B.child_cpu_ns = now_ns (CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  xfer_results (wr, TRUE);
  _exit (0);
}

static void
fork_generator (void)
{
  int down[2], up[2];

  if (pipe2 (down, O_CLOEXEC) < 0 || pipe2 (up, O_CLOEXEC) < 0)
    g_error ("pipe: %s", g_strerror (errno));
  fflush (stdout);
  B.child = fork ();
  if (B.child < 0)
    g_error ("fork: %s", g_strerror (errno));
  if (B.child == 0) {
    close (down[1]);
    close (up[0]);
    generator_child (down[0], up[1]);
  }
  close (down[0]);
  close (up[1]);
  B.to_child = down[1];
  B.from_child = up[0];
}

/* Parent: the relay's ports to the child, then wait until it is ready. */
static void
child_setup (void)
{
  g_autofree guint16 *ports = g_new (guint16, 2 * B.calls);
  char c;

  for (guint i = 0; i < 2 * B.calls; i++)
    ports[i] = td_relay_port_number (B.ports[i]);
  xfer (B.to_child, ports, sizeof (guint16) * 2 * B.calls, TRUE);
  xfer (B.from_child, &c, 1, FALSE);
}

/* Parent: the generator's run, from "go" to its results. */
static void
child_run (void)
{
  char c = 'g';
  int status;

  xfer (B.to_child, &c, 1, TRUE);
  xfer_results (B.from_child, FALSE);
  if (waitpid (B.child, &status, 0) < 0 || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_error ("--apart: the generator process failed");
}

/* ---- report ---- */

static double
hist_percentile (const guint64 *hist, guint64 n, double q)
{
  guint64 want = (guint64) (q * n), seen = 0;

  for (guint i = 0; i <= HIST_US; i++) {
    seen += hist[i];
    if (seen > want)
      return i;
  }
  return HIST_US;
}

static double
percentile_us (const ClassStats *cs, double q)
{
  return hist_percentile (cs->hist, cs->n_lat, q);
}

static void
report_class (guint c)
{
  ClassStats *cs = &B.cls[c];
  double loss[2];

  for (guint d = 0; d < 2; d++)
    loss[d] = cs->sent[d] ? 100.0 * (double) (cs->sent[d] - MIN (cs->sent[d], cs->received[d])) / cs->sent[d] : 0;
  printf ("  %-6s sent A->B %" G_GUINT64_FORMAT " B->A %" G_GUINT64_FORMAT
          "  loss A->B %.4f%% B->A %.4f%%  send-failed %" G_GUINT64_FORMAT
          "  misrouted %" G_GUINT64_FORMAT "\n",
          class_names[c], cs->sent[0], cs->sent[1], loss[0], loss[1],
          cs->send_failed[0] + cs->send_failed[1], cs->misrouted);
  if (cs->n_lat)
    printf ("         latency us: p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (%" G_GUINT64_FORMAT " samples)\n",
            percentile_us (cs, 0.5), percentile_us (cs, 0.99), percentile_us (cs, 0.999),
            percentile_us (cs, 1.0 - 1e-12), cs->n_lat);
}

/* --srtp: the relay's SRTP counters summed over every port, what was lost
 * to SRTP in each direction, the relay's SRTP operations per relayed
 * packet, and the generator's own libsrtp2 work (on the other core). */
static void
report_srtp (gint64 relay_ns, gint64 wall_ns)
{
  TdRelayStats sum = { 0 }, st;
  guint64 a_rx = 0, a_tx = 0, rx = 0, unprotects, protects, relayed;
  const ClassStats *cs = &B.cls[TANDEM];
  double per_packet, gen_ns = (double) (B.protect_ns + B.unprotect_ns);

  for (guint i = 0; i < 2 * B.calls; i++) {
    td_relay_port_get_stats (B.ports[i], &st);
    sum.srtp_auth_failed += st.srtp_auth_failed;
    sum.srtp_replayed += st.srtp_replayed;
    sum.srtp_tx_failed += st.srtp_tx_failed;
    rx += st.rx_packets + st.srtp_auth_failed + st.srtp_replayed;
    if (i % 2 == 0) {   /* A ports: every packet in is unprotected, every one out protected */
      a_rx += st.rx_packets;
      a_tx += st.tx_packets + st.tx_errors;
    }
  }
  unprotects = a_rx + sum.srtp_auth_failed + sum.srtp_replayed;
  protects = a_tx + sum.srtp_tx_failed;
  relayed = cs->received[0] + cs->received[1] + B.sink_sent;
  per_packet = (double) (unprotects + protects) / MAX (1, relayed);
  printf ("  SRTP %s on every A leg, B plain: relay counters (all ports): srtp_auth_failed %" G_GUINT64_FORMAT
          "  srtp_replayed %" G_GUINT64_FORMAT "  srtp_tx_failed %" G_GUINT64_FORMAT "\n",
          td_srtp_suite_name (B.suite), sum.srtp_auth_failed, sum.srtp_replayed, sum.srtp_tx_failed);
  printf ("         lost to SRTP: A->B at the relay auth %" G_GUINT64_FORMAT " replay %" G_GUINT64_FORMAT
          "; B->A relay protect %" G_GUINT64_FORMAT ", at the A phones auth %" G_GUINT64_FORMAT
          " replay %" G_GUINT64_FORMAT " other %" G_GUINT64_FORMAT " (all inside the loss above)\n",
          sum.srtp_auth_failed, sum.srtp_replayed, sum.srtp_tx_failed, cs->unprotect_auth,
          cs->unprotect_replay, cs->unprotect_other);
  printf ("         relay SRTP work: %" G_GUINT64_FORMAT " unprotect + %" G_GUINT64_FORMAT
          " protect = %.2f per relayed packet; relay cpu %.2f us per packet it took in (%" G_GUINT64_FORMAT
          "; = the us per relayed packet above when nothing is lost)\n",
          unprotects, protects, per_packet, relay_ns / 1e3 / MAX (1, rx), rx);
  printf ("         cost per SRTP packet = (this run's us per relayed packet - a plain run's, same calls) / %.2f\n",
          per_packet);
  printf ("         load generator's libsrtp2 (cpu1, not in the relay's figure): %.2f us per protect, "
          "%.2f us per unprotect, %.1f%% of one core\n",
          B.protect_ns / 1e3 / MAX (1, B.n_protect), B.unprotect_ns / 1e3 / MAX (1, B.n_unprotect),
          100.0 * gen_ns / wall_ns);
  printf ("         libsrtp2 sessions (each slows every SRTP operation of its process): relay %u "
          "(made in %.2f s on its media thread), phones %u (%s, made in %.2f s, %s)\n",
          2 * B.calls, B.relay_srtp_setup_ns / 1e9, B.n_phone_sessions,
          B.keys_per_call ? "keys per call" : "one key pair for every call",
          B.phone_srtp_setup_ns / 1e9, B.apart ? "in the generator's process" : "in the relay's process");
}

static double
cpu_pct (gint64 ticks, gint64 ns)
{
  return 100.0 * (double) ticks / sysconf (_SC_CLK_TCK) / ((double) ns / 1e9);
}

static void
usage (void)
{
  fprintf (stderr,
           "usage: relay-bench [--calls N] [--duration S] [--ports MIN-MAX] [--bare K] [--direct K]\n"
           "                   [--gst] [--no-pin] [--spin] [--nice N] [--threads N]\n"
           "                   [--sample K]   (read only every K-th call's phones)\n"
           "                   [--events MS]  (event funcs on every port, idle timeout MS)\n"
           "                   [--srtp] [--suite NAME]   (SRTP on every A leg: SRTP<->RTP calls;\n"
           "                    NAME an SDES suite, default AES_CM_128_HMAC_SHA1_80; implies --srtp)\n"
           "                   [--keys-per-call]   (--srtp: own keys per call, 2 phone sessions a call\n"
           "                    in this process, which slow the relay's too; default one pair)\n"
           "                   [--apart]   (the load generator in a child process, own libsrtp2/NSS)\n"
           "                   [--rtpengine ADDR:PORT [--rtpengine-pid PID]]   (the calls through\n"
           "                    rtpengine, set up over its ng port; PID: pinned to cpu0, CPU measured)\n");
  exit (2);
}

static void
parse_args (int argc, char **argv)
{
  static const struct option opts[] = {
    { "calls", required_argument, NULL, 'n' }, { "duration", required_argument, NULL, 'd' },
    { "ports", required_argument, NULL, 'p' }, { "bare", required_argument, NULL, 'b' },
    { "direct", required_argument, NULL, 'D' }, { "gst", no_argument, NULL, 'g' },
    { "no-pin", no_argument, NULL, 'P' }, { "spin", no_argument, NULL, 's' },
    { "nice", required_argument, NULL, 'N' }, { "threads", required_argument, NULL, 't' }, { "sample", required_argument, NULL, 'S' },
    { "events", required_argument, NULL, 'e' }, { "srtp", no_argument, NULL, 'r' },
    { "suite", required_argument, NULL, 'u' }, { "keys-per-call", no_argument, NULL, 'k' },
    { "apart", no_argument, NULL, 'a' }, { "rtpengine", required_argument, NULL, 'R' },
    { "rtpengine-pid", required_argument, NULL, 'I' },
    { NULL, 0, NULL, 0 },
  };
  int o;
  unsigned lo, hi;

  while ((o = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'n': B.calls = atoi (optarg); break;
    case 'd': B.duration = atoi (optarg); break;
    case 'b': B.bare_calls = atoi (optarg); break;
    case 'D': B.direct_calls = atoi (optarg); break;
    case 'g': B.gst = TRUE; break;
    case 'P': B.pin = FALSE; break;
    case 's': B.spin = TRUE; break;
    case 'N': B.nice = atoi (optarg); break;
    case 't': B.threads = atoi (optarg); break;
    case 'S': B.sample = atoi (optarg); break;
    case 'e': B.events_ms = atoi (optarg); break;
    case 'r':
      if (B.suite == TD_SRTP_SUITE_NONE)
        B.suite = TD_SRTP_AES_CM_128_HMAC_SHA1_80;
      break;
    case 'k': B.keys_per_call = TRUE; break;
    case 'a': B.apart = TRUE; break;
    case 'R': B.rtpengine = g_strdup (optarg); break;
    case 'I': B.rtpengine_pid = atoi (optarg); break;
    case 'u':
      if (!td_srtp_suite_from_name (optarg, &B.suite)) {
        fprintf (stderr, "relay-bench: unknown SRTP suite %s; one of:", optarg);
        for (guint k = TD_SRTP_SUITE_NONE + 1; k < TD_SRTP_N_SUITES; k++)
          fprintf (stderr, " %s", td_srtp_suite_name (k));
        fprintf (stderr, "\n");
        exit (2);
      }
      break;
    case 'p':
      if (sscanf (optarg, "%u-%u", &lo, &hi) != 2 || lo > hi || hi > 65535)
        usage ();
      B.port_min = lo;
      B.port_max = hi;
      break;
    default: usage ();
    }
  }
  if (B.keys_per_call && B.suite == TD_SRTP_SUITE_NONE)
    B.suite = TD_SRTP_AES_CM_128_HMAC_SHA1_80;
  if (B.calls == 0 || B.duration <= WARMUP_S || (B.gst && (B.suite != TD_SRTP_SUITE_NONE || B.apart)))
    usage ();
  if (B.rtpengine && (B.gst || B.suite != TD_SRTP_SUITE_NONE || B.apart || B.threads > 1))
    usage ();
  if (B.rtpengine_pid && !B.rtpengine)
    usage ();
}

static void
report_machine (gint64 cpu0[MAX_CPUS][4], gint64 cpu1[MAX_CPUS][4], gint64 proc_ns, gint64 wall_ns)
{
  gint64 busy = 0;

  for (guint c = 0; c < MAX_CPUS; c++) {
    gint64 total = cpu1[c][3] - cpu0[c][3];
    if (total <= 0)
      continue;
    busy += cpu1[c][0] - cpu0[c][0];
    printf ("  cpu%u (whole machine): busy %.1f%% (softirq %.1f%%, steal %.1f%%)\n", c,
            100.0 * (cpu1[c][0] - cpu0[c][0]) / total, 100.0 * (cpu1[c][1] - cpu0[c][1]) / total,
            100.0 * (cpu1[c][2] - cpu0[c][2]) / total);
  }
  printf ("  machine busy %.0f%% of one core (tick-sampled), this process %.0f%% (--apart: and the "
          "generator's): a surplus is "
          "ksoftirqd or other processes (must be small for a clean run)\n",
          cpu_pct (busy, wall_ns), 100.0 * proc_ns / wall_ns);
}

int
main (int argc, char **argv)
{
  struct rlimit rl;
  TdRelay *relay = NULL;
  GPtrArray *pipelines = NULL;
  gint64 rss_kb = 0, slab_kb = 0, relay_t0 = 0, wall_ns, proc_ns, main_ns, relay_side_ns;
  gint64 cpu0[MAX_CPUS][4], cpu1[MAX_CPUS][4], vcs0 = 0, vcs1 = 0, relay_t1 = 0;
  g_autoptr (GArray) relay_tids = NULL;
  int n_cpus = (int) sysconf (_SC_NPROCESSORS_ONLN);
  GThread *lg, *bare;
  g_autofree char *load = NULL;
  guint64 relayed;

  parse_args (argc, argv);
  if (B.gst)
    gst_init (&argc, &argv);
  getrlimit (RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
  for (guint c = 0; c < N_CLASSES; c++)
    B.cls[c].hist = g_new0 (guint64, HIST_US + 1);
  B.phones = g_new0 (Phone, 2 * (B.calls + B.bare_calls + B.direct_calls));
  B.late_hist = g_new0 (guint64, HIST_US + 1);

  if (B.gst) {
    /* GStreamer's streaming threads inherit this thread's CPU: cpu0, like the relay */
    pin_tid ((pid_t) syscall (SYS_gettid), 0);
    pipelines = setup_gst (B.calls);
  } else if (B.rtpengine) {
    setup_rtpengine (B.calls);
    if (B.rtpengine_pid)
      pin_process (B.rtpengine_pid, 0);   /* its every thread on cpu0, like tandem's relay */
  } else {
    tandem_phones (B.calls);
    setup_baselines ();
    if (B.suite != TD_SRTP_SUITE_NONE)
      make_keys ();
    if (B.apart)
      fork_generator ();   /* the child never comes back */
    relay = setup_tandem (B.calls, &rss_kb, &slab_kb);
    if (B.apart)
      child_setup ();
    else if (B.suite != TD_SRTP_SUITE_NONE)
      setup_phones_srtp ();
    wipe_keys ();
    relay_tids = find_threads ("td-relay");
    for (guint i = 0; i < relay_tids->len; i++) {
      pid_t tid = g_array_index (relay_tids, pid_t, i);
      pin_tid (tid, (int) i % n_cpus);   /* one thread: cpu0; two: cpu0 and cpu1 */
      if (B.nice && setpriority (PRIO_PROCESS, tid, B.nice) < 0)
        g_warning ("nice: %s", g_strerror (errno));
    }
  }
  if (B.gst || B.rtpengine)
    setup_baselines ();
  if (!B.apart) {
    shuffle_phase ();
    connect_phones ();
  }

  printf ("%s: %u calls (%u phones at 50 pkt/s, %u pkt/s into the relay), %u s, pinned: %s%s, nice %d%s%s\n",
          B.gst ? "gstreamer" : B.rtpengine ? "rtpengine" : B.threads > 1 ? "tandem, relay threads sharded" : "tandem", B.calls, 2 * B.calls, 100 * B.calls, B.duration,
          B.pin ? "relay (or GStreamer) cpu0, load generator cpu1, bare loop cpu0" : "no",
          B.spin ? ", load generator spinning" : "", B.nice,
          B.suite ? ", SRTP<->RTP: " : "", B.suite ? td_srtp_suite_name (B.suite) : "");
  if (!B.gst && !B.rtpengine)
    printf ("  relay memory for %u calls: RSS +%" G_GINT64_FORMAT " KiB (%.0f B/call%s), "
            "kernel slab +%" G_GINT64_FORMAT " KiB (%.1f KiB/call)\n",
            B.calls, rss_kb, 1024.0 * rss_kb / B.calls,
            B.suite ? ", the relay's SRTP sessions included" : "", slab_kb, (double) slab_kb / B.calls);
  fflush (stdout);

  /* the measured window: both generator threads run inside it */
  if (relay_tids) {
    relay_t0 = relay_threads_sum (relay_tids, FALSE);
    vcs0 = relay_threads_sum (relay_tids, TRUE);
  }
  if (B.rtpengine_pid)
    relay_t0 = process_ticks (B.rtpengine_pid);
  cpu_jiffies (cpu0);
  proc_ns = now_ns (CLOCK_PROCESS_CPUTIME_ID);
  main_ns = now_ns (CLOCK_THREAD_CPUTIME_ID);
  wall_ns = now_ns (CLOCK_MONOTONIC);
  bare = g_thread_new ("bare-loop", bare_thread, NULL);
  if (B.apart) {
    child_run ();
  } else {
    lg = g_thread_new ("loadgen", loadgen_thread, NULL);
    g_thread_join (lg);
  }
  if (relay_tids) {
    relay_t1 = relay_threads_sum (relay_tids, FALSE);
    vcs1 = relay_threads_sum (relay_tids, TRUE);
  }
  if (B.rtpengine_pid)
    relay_t1 = process_ticks (B.rtpengine_pid);
  atomic_store (&B.bare_stop, TRUE);
  g_thread_join (bare);
  wall_ns = now_ns (CLOCK_MONOTONIC) - wall_ns;
  main_ns = now_ns (CLOCK_THREAD_CPUTIME_ID) - main_ns;
  proc_ns = now_ns (CLOCK_PROCESS_CPUTIME_ID) - proc_ns;
  cpu_jiffies (cpu1);
  relay_side_ns = proc_ns - (B.apart ? 0 : B.loadgen_cpu_ns) - B.bare_cpu_ns - main_ns;

  g_file_get_contents ("/proc/loadavg", &load, NULL, NULL);
  printf ("  machine load average after: %s", load ? load : "?\n");
  for (guint c = 0; c < N_CLASSES; c++)
    if (B.cls[c].sent[0] + B.cls[c].sent[1])
      report_class (c);
  {
    guint64 n = 0;
    for (guint i = 0; i <= HIST_US; i++)
      n += B.late_hist[i];
    printf ("  load generator lateness us (a late generator sends in bursts): p50 %.0f  p99 %.0f  "
            "p99.9 %.0f  max %.0f\n", hist_percentile (B.late_hist, n, 0.5),
            hist_percentile (B.late_hist, n, 0.99), hist_percentile (B.late_hist, n, 0.999),
            hist_percentile (B.late_hist, n, 1.0 - 1e-12));
  }
  printf ("  cpu (%% of one core over %.1f s): load generator %.1f%%%s, bare loop %.1f%%\n",
          wall_ns / 1e9, 100.0 * B.loadgen_cpu_ns / wall_ns,
          B.apart ? " (a process of its own, on cpu1)" : B.suite ? " (on cpu1, its own libsrtp2 included: see SRTP below)" : "",
          100.0 * B.bare_cpu_ns / wall_ns);
  relayed = B.cls[TANDEM].received[0] + B.cls[TANDEM].received[1] + B.sink_sent;
  if (B.sample > 1)
    printf ("  --sample %u: loss and latency above are of every %u-th call; the other phones "
            "sent %" G_GUINT64_FORMAT " packets into never-read sockets\n",
            B.sample, B.sample, B.sink_sent);
  if (relay_tids)
    printf ("  RELAY THREAD%s cpu %.1f%% (%.2f us per relayed packet; /proc ticks say %.1f%%), "
            "%.0f wake-ups/s\n",
            relay_tids->len > 1 ? "S (sum)" : "",
            100.0 * relay_side_ns / wall_ns, relay_side_ns / 1e3 / MAX (1, relayed),
            cpu_pct (relay_t1 - relay_t0, wall_ns), (vcs1 - vcs0) / (wall_ns / 1e9));
  if (relay_tids && B.suite != TD_SRTP_SUITE_NONE)
    report_srtp (relay_side_ns, wall_ns);
  if (B.rtpengine && B.rtpengine_pid)
    printf ("  RTPENGINE cpu %.1f%% (all its threads, /proc ticks; %.2f us per relayed packet)\n",
            cpu_pct (relay_t1 - relay_t0, wall_ns),
            cpu_pct (relay_t1 - relay_t0, wall_ns) / 100.0 * wall_ns / 1e3 / MAX (1, relayed));
  else if (B.rtpengine)
    printf ("  RTPENGINE cpu not measured (no --rtpengine-pid)\n");
  else if (!relay_tids)
    printf ("  GSTREAMER cpu %.1f%% (%.2f us per relayed packet), %u threads\n",
            100.0 * relay_side_ns / wall_ns, relay_side_ns / 1e3 / MAX (1, relayed),
            2 * B.calls);
  report_machine (cpu0, cpu1, proc_ns + B.child_cpu_ns, wall_ns);
  printf ("  process VmRSS %" G_GINT64_FORMAT " KiB\n", proc_status_kb ("/proc/self/status", "VmRSS:"));

  if (pipelines) {
    for (guint i = 0; i < pipelines->len; i++) {
      gst_element_set_state (pipelines->pdata[i], GST_STATE_NULL);
      gst_object_unref (pipelines->pdata[i]);
    }
    g_ptr_array_unref (pipelines);
  }
  if (B.rtpengine)
    teardown_rtpengine (B.calls);
  if (relay && B.events_ms) {
    /* The main thread was in g_thread_join: the events wait in the queue. */
    while (g_main_context_iteration (NULL, FALSE))
      ;
    printf ("  events delivered: %" G_GUINT64_FORMAT " (first packet and latched per port)\n",
            B.events);
  }
  td_relay_free (relay);
  return 0;
}
