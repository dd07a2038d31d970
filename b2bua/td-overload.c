/* TdOverload: the SIP thread's lag, read from the kernel, and the shed decision. */
#define G_LOG_DOMAIN "tandem"

#include "td-overload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Sheds less than this far apart belong to one overload episode: one log
 * line when it starts, one when it is over (decisions flip per message). */
#define EPISODE_QUIET_US (5 * G_USEC_PER_SEC)

struct _TdOverload {
  int fd;                  /* Sofia's UDP socket: peeked at, never read */
  gboolean in_episode;
  gint64 last_shed_us;     /* monotonic */
  gint64 peak_us;          /* highest lag seen in the episode, for the log */
  guint64 shed;            /* requests refused in the episode */
};

TdOverloadState
td_overload_decide (gint64 lag_us, gint64 threshold_us)
{
  /* No hysteresis: the age of the head of the queue falls by itself as the
   * backlog drains, and staying in SHEDDING below the threshold would refuse
   * calls the thread has time for. */
  if (threshold_us <= 0 || lag_us < threshold_us)
    return TD_OVERLOAD_NORMAL;
  return TD_OVERLOAD_SHEDDING;
}

/* Does fd hold a UDP socket bound to host:port? */
static gboolean
is_sip_socket (int fd, const struct sockaddr_storage *want, socklen_t want_len)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int type;
  socklen_t tlen = sizeof type;

  if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_DGRAM)
    return FALSE;
  if (getsockname (fd, (struct sockaddr *) &ss, &len) != 0 || len != want_len)
    return FALSE;
  return memcmp (&ss, want, want_len) == 0;
}

static gboolean
make_address (const char *host, guint16 port, struct sockaddr_storage *ss, socklen_t *len)
{
  memset (ss, 0, sizeof *ss);
  if (strchr (host, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons (port);
    *len = sizeof *s6;
    return inet_pton (AF_INET6, host, &s6->sin6_addr) == 1;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *) ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons (port);
  *len = sizeof *s4;
  return inet_pton (AF_INET, host, &s4->sin_addr) == 1;
}

/* Sofia keeps its sockets to itself: find the one bound to the listening
 * address among this process's descriptors (once, at start-up). */
static int
find_socket (const char *host, guint16 port)
{
  struct sockaddr_storage want;
  socklen_t want_len;
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (!make_address (host, port, &want, &want_len) ||
      !(dir = g_dir_open ("/proc/self/fd", 0, NULL)))
    return -1;
  while ((name = g_dir_read_name (dir))) {
    int fd = atoi (name);
    if (is_sip_socket (fd, &want, want_len))
      return fd;
  }
  return -1;
}

TdOverload *
td_overload_new (const char *host, guint16 port, GError **error)
{
  int fd = find_socket (host, port);
  int on = 1;
  TdOverload *o;

  if (fd < 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 "no UDP socket bound to %s port %u to watch for overload", host, port);
    return NULL;
  }
  /* Sofia reads with recvmsg() and no control buffer: the stamps are only
   * ever seen by the peek below. (A datagram that arrives before the kernel
   * has turned stamping on, just after this call, is stamped when first
   * peeked at: its lag counts from then.) */
  if (setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                 "SO_TIMESTAMPNS on the SIP socket: %s", g_strerror (errno));
    return NULL;
  }
  o = g_new0 (TdOverload, 1);
  o->fd = fd;
  return o;
}

void
td_overload_free (TdOverload *o)
{
  g_free (o);   /* the socket is Sofia's */
}

gint64
td_overload_lag_us (TdOverload *o)
{
  char byte;
  union {
    char buf[CMSG_SPACE (sizeof (struct timespec))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control.buf, .msg_controllen = sizeof control.buf };
  struct timespec now;

  /* A pending ICMP error makes the first attempt fail (and is reported to
   * Sofia through its error queue anyway): try once more. */
  for (int attempt = 0; attempt < 2; attempt++) {
    msg.msg_controllen = sizeof control.buf;
    if (recvmsg (o->fd, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0)
      break;
    if (errno == EAGAIN || errno == EWOULDBLOCK || attempt == 1)
      return 0;
  }
  clock_gettime (CLOCK_REALTIME, &now);
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c; c = CMSG_NXTHDR (&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec at;
      gint64 lag;
      memcpy (&at, CMSG_DATA (c), sizeof at);
      lag = (now.tv_sec - at.tv_sec) * G_USEC_PER_SEC + (now.tv_nsec - at.tv_nsec) / 1000;
      return MAX (lag, 0);
    }
  }
  return 0;
}

static void
end_episode (TdOverload *o)
{
  g_message ("overload over: %" G_GUINT64_FORMAT " new request(s) refused, the SIP thread "
             "at most %" G_GINT64_FORMAT " ms behind", o->shed, o->peak_us / 1000);
  o->in_episode = FALSE;
}

gboolean
td_overload_shed_new_work (TdOverload *o, guint threshold_ms)
{
  gint64 lag = threshold_ms ? td_overload_lag_us (o) : 0;
  gint64 now = g_get_monotonic_time ();
  gboolean quiet = now - o->last_shed_us > EPISODE_QUIET_US;

  if (td_overload_decide (lag, threshold_ms * (gint64) 1000) == TD_OVERLOAD_NORMAL) {
    if (o->in_episode && quiet)
      end_episode (o);
    return FALSE;
  }
  if (o->in_episode && quiet)
    end_episode (o);
  if (!o->in_episode) {
    g_warning ("overload: the SIP thread is %" G_GINT64_FORMAT " ms behind (limit %u ms): "
               "refusing new calls and registrations with 503", lag / 1000, threshold_ms);
    o->in_episode = TRUE;
    o->peak_us = 0;
    o->shed = 0;
  }
  o->last_shed_us = now;
  o->peak_us = MAX (o->peak_us, lag);
  o->shed++;
  return TRUE;
}
