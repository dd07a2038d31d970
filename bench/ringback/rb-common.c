/* See rb-common.h. */
#define G_LOG_DOMAIN "ringback-bench"

#include "rb-common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

RbOptions rb_opt = { .port_min = 2000, .port_max = 9999, .pin = TRUE, .codec = TD_CODEC_PCMU };

gint64
rb_now_ns (clockid_t clock)
{
  struct timespec ts;

  clock_gettime (clock, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

gint64
rb_wall_ns (void)
{
  return rb_now_ns (CLOCK_REALTIME);
}

void
rb_sleep_until (gint64 wall_ns)
{
  struct timespec ts = { .tv_sec = wall_ns / 1000000000LL, .tv_nsec = wall_ns % 1000000000LL };

  while (clock_nanosleep (CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

pid_t
rb_gettid (void)
{
  return (pid_t) syscall (SYS_gettid);
}

void
rb_pin (pid_t tid, int cpu)
{
  cpu_set_t set;

  if (!rb_opt.pin)
    return;
  CPU_ZERO (&set);
  CPU_SET (cpu % (int) sysconf (_SC_NPROCESSORS_ONLN), &set);
  if (sched_setaffinity (tid, sizeof set, &set) < 0)
    g_warning ("pin %d to cpu %d: %s", tid, cpu, g_strerror (errno));
}

struct sockaddr_in
rb_loopback (guint16 port)
{
  return (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons (port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
}

int
rb_udp_socket (guint16 port, int rcvbuf, guint16 *bound)
{
  struct sockaddr_in a = rb_loopback (port);
  socklen_t len = sizeof a;
  int on = 1;
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0)
    g_error ("socket: %s", g_strerror (errno));
  if (bind (fd, (struct sockaddr *) &a, sizeof a) < 0)
    g_error ("bind 127.0.0.1:%u: %s", port, g_strerror (errno));
  setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  if (rcvbuf)
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  getsockname (fd, (struct sockaddr *) &a, &len);
  if (bound)
    *bound = ntohs (a.sin_port);
  return fd;
}

#define RX_BATCH 16

guint
rb_receive (int fd, RbPacket *out, guint max)
{
  struct mmsghdr msgs[RX_BATCH];
  struct iovec iov[RX_BATCH];
  char ctrl[RX_BATCH][CMSG_SPACE (sizeof (struct timespec))];
  int n;

  max = MIN (max, RX_BATCH);
  for (guint i = 0; i < max; i++) {
    iov[i] = (struct iovec) { out[i].data, sizeof out[i].data };
    msgs[i].msg_hdr = (struct msghdr) { .msg_iov = &iov[i], .msg_iovlen = 1,
                                        .msg_control = ctrl[i], .msg_controllen = sizeof ctrl[i] };
  }
  n = recvmmsg (fd, msgs, max, MSG_DONTWAIT, NULL);
  if (n <= 0)
    return 0;
  for (int i = 0; i < n; i++) {
    struct cmsghdr *c = CMSG_FIRSTHDR (&msgs[i].msg_hdr);
    out[i].len = msgs[i].msg_len;
    out[i].arrival_ns = 0;
    for (; c; c = CMSG_NXTHDR (&msgs[i].msg_hdr, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
        struct timespec ts;
        memcpy (&ts, CMSG_DATA (c), sizeof ts);
        out[i].arrival_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
      }
    }
    if (!out[i].arrival_ns)   /* no stamp: our own clock, a little later */
      out[i].arrival_ns = rb_wall_ns ();
  }
  return (guint) n;
}

gboolean
rb_rtp_parse (const RbPacket *p, RbRtp *out)
{
  const guint8 *d = p->data;

  if (p->len < 12 || (d[0] >> 6) != 2)
    return FALSE;
  out->marker = (d[1] & 0x80) != 0;
  out->pt = d[1] & 0x7f;
  out->seq = (guint16) (d[2] << 8 | d[3]);
  out->ts = (guint32) d[4] << 24 | (guint32) d[5] << 16 | (guint32) d[6] << 8 | d[7];
  out->ssrc = (guint32) d[8] << 24 | (guint32) d[9] << 16 | (guint32) d[10] << 8 | d[11];
  return TRUE;
}

void
rb_samples_init (RbSamples *s)
{
  s->v = g_array_new (FALSE, FALSE, sizeof (gint64));
  s->sorted = TRUE;
}

void
rb_samples_clear (RbSamples *s)
{
  g_clear_pointer (&s->v, g_array_unref);
}

void
rb_samples_add (RbSamples *s, gint64 ns)
{
  g_array_append_val (s->v, ns);
  s->sorted = FALSE;
}

static gint
cmp_i64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

gint64
rb_samples_quantile (RbSamples *s, double q)
{
  guint i;

  if (!s->v->len)
    return 0;
  if (!s->sorted) {
    g_array_sort (s->v, cmp_i64);
    s->sorted = TRUE;
  }
  i = (guint) MIN ((double) s->v->len - 1, floor (q * s->v->len));
  return g_array_index (s->v, gint64, i);
}

void
rb_samples_print_ms (RbSamples *s, const char *label)
{
  printf ("  %s: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  (%u samples)\n", label,
          rb_samples_quantile (s, 0.5) / 1e6, rb_samples_quantile (s, 0.99) / 1e6,
          rb_samples_quantile (s, 0.999) / 1e6, rb_samples_quantile (s, 1.0) / 1e6, s->v->len);
}

GArray *
rb_relay_threads (void)
{
  GArray *tids = g_array_new (FALSE, FALSE, sizeof (pid_t));
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/comm", name);
    g_autofree char *text = NULL;
    if (g_file_get_contents (path, &text, NULL, NULL) && g_str_has_prefix (text, "td-relay")) {
      pid_t tid = atoi (name);
      g_array_append_val (tids, tid);
    }
  }
  return tids;
}

gint64
rb_thread_cpu_ns (pid_t tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/self/task/%d/schedstat", tid);
  g_autofree char *text = NULL;
  unsigned long long utime, stime;
  char *p;

  /* schedstat's first field: ns on the CPU, exact (the stat ticks are 10 ms) */
  if (g_file_get_contents (path, &text, NULL, NULL))
    return g_ascii_strtoll (text, NULL, 10);
  g_clear_pointer (&path, g_free);
  g_clear_pointer (&text, g_free);
  path = g_strdup_printf ("/proc/self/task/%d/stat", tid);
  if (!g_file_get_contents (path, &text, NULL, NULL) || !(p = strrchr (text, ')')))
    return -1;
  if (sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return -1;
  return (gint64) ((utime + stime) * (1000000000ULL / (unsigned long long) sysconf (_SC_CLK_TCK)));
}

gint64
rb_rss_kb (void)
{
  g_autofree char *text = NULL;
  const char *p;

  if (!g_file_get_contents ("/proc/self/status", &text, NULL, NULL) || !(p = strstr (text, "VmRSS:")))
    return -1;
  return g_ascii_strtoll (p + strlen ("VmRSS:"), NULL, 10);
}

void
rb_cpu_jiffies (int cpu, gint64 *busy, gint64 *total)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  *busy = *total = 0;
  if (!g_file_get_contents ("/proc/stat", &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    int c;
    unsigned long long v[8];
    if (sscanf (lines[i], "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &c, &v[0], &v[1], &v[2],
                &v[3], &v[4], &v[5], &v[6], &v[7]) != 9 || c != cpu)
      continue;
    *busy = (gint64) (v[0] + v[1] + v[2] + v[5] + v[6]);
    *total = (gint64) (v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]);
  }
}

TdRelay *
rb_relay_new (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) tids = NULL;
  TdRelay *relay = td_relay_new ("127.0.0.1", rb_opt.port_min, rb_opt.port_max, &error);

  if (!relay)
    g_error ("relay: %s", error->message);
  td_relay_sync (relay);
  tids = rb_relay_threads ();
  for (guint i = 0; i < tids->len; i++) {
    pid_t tid = g_array_index (tids, pid_t, i);
    rb_pin (tid, 0);
    if (rb_opt.nice && setpriority (PRIO_PROCESS, (id_t) tid, rb_opt.nice) < 0)
      g_warning ("nice %d: %s", rb_opt.nice, g_strerror (errno));
  }
  return relay;
}

guint8
rb_codec_pt (TdCodec codec)
{
  switch (codec) {
  case TD_CODEC_PCMU: return 0;
  case TD_CODEC_PCMA: return 8;
  case TD_CODEC_G722: return 9;
  case TD_CODEC_OPUS: return 111;
  }
  return 0;
}

TdTune *
rb_ringback_tune (void)
{
  g_autoptr (GError) error = NULL;
  TdTune *tune = td_tune_new_tone ("eu", &error);

  if (!tune)
    g_error ("tone:eu: %s", error->message);
  if (!td_tune_has_codec (tune, rb_opt.codec))
    g_error ("tone:eu has no %s (its GStreamer encoder is missing)", td_codec_name (rb_opt.codec));
  return tune;
}

gboolean
rb_raise_nofile (guint need)
{
  struct rlimit rl;

  getrlimit (RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
  return rl.rlim_cur >= need;
}
