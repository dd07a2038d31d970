/* TdRelay: symmetric-latching RTP/RTCP relay on one epoll media thread.
 *
 * Ownership: the main thread allocates ports (binds the sockets) and keeps
 * the port-number pool; from then on the media thread owns everything a
 * packet touches (latching state, remotes, peer links, forwarding flag) and
 * is the only thread that reads, closes or frees a port's sockets and
 * memory. The main thread reaches that state only through the command queue.
 *
 * Why a mutex-protected command queue + eventfd rather than a lock-free one:
 * the mutex is taken by the media thread only when the eventfd says there are
 * commands (a few per call set-up, never per packet), and it then steals the
 * whole queue at once; the packet path takes no lock at all. Commands are
 * rare, so a lock-free queue would buy nothing but subtlety; the mutex also
 * gives ThreadSanitizer the happens-before edges it cannot see through the
 * kernel's epoll. It is a pthread mutex, not a GMutex: GLib's Linux GMutex is
 * a bare futex, which ThreadSanitizer cannot see either. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

G_DEFINE_QUARK (td-relay-error-quark, td_relay_error)

/* Packets drained from one socket per recvmmsg call; also the send batch. */
#define BATCH 16
/* recvmmsg rounds per readable socket per loop, so one flooded socket cannot
 * starve the others (level-triggered epoll reports it again). */
#define MAX_ROUNDS 4
/* Larger than any packet of a 1500-byte MTU; bigger ones are dropped as
 * truncated (MSG_TRUNC) rather than forwarded cut. */
#define MAX_PACKET 2048
#define MAX_EVENTS 256
/* Per-socket kernel buffers (the kernel doubles them for bookkeeping): enough
 * to absorb a ~100 ms stall of the media thread on a 10 Mbit/s video stream,
 * hundreds of ms of audio; the memory is only charged while packets wait. */
#define SOCKET_BUFFER (128 * 1024)

enum { RTP, RTCP };

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} Addr;

/* One UDP socket of a port; media-thread state except `fd` and `port`. */
typedef struct {
  int fd;
  guint8 kind;            /* RTP or RTCP */
  gboolean learning;      /* the next plausible packet's source becomes `remote` */
  socklen_t remote_len;   /* 0: nowhere to send */
  Addr remote;            /* SDP address, replaced by the latched source */
  TdRelayPort *port;
} RelaySock;

struct _TdRelayPort {
  TdRelay *relay;
  guint16 number;         /* RTP port; immutable */
  guint pair;             /* index in the relay's pool; immutable */
  GList link;             /* in relay->live_ports (media thread) */
  RelaySock sock[2];
  TdRelayPort *peer;      /* media thread */
  gboolean forward;       /* media thread */
  /* Written by the media thread only (load + store, no locked instruction),
   * read relaxed by the main thread. */
  _Atomic guint64 rx, tx, foreign, other, tx_errors;
  _Atomic gint64 last_rx;
};

typedef enum {
  CMD_ADD, CMD_SET_REMOTE, CMD_CONNECT, CMD_DISCONNECT, CMD_SET_FORWARD,
  CMD_FREE, CMD_SYNC, CMD_QUIT,
} CmdType;

typedef struct {
  CmdType type;
  TdRelayPort *port, *other;
  gboolean flag;
  guint64 seq;                 /* CMD_SYNC */
  socklen_t remote_len;        /* CMD_SET_REMOTE; 0 = none */
  Addr remote[2];              /* CMD_SET_REMOTE, RTP and RTCP */
} Cmd;

/* The media thread's one set of receive/send buffers, shared by all ports. */
typedef struct {
  struct mmsghdr rx[BATCH];
  struct iovec rx_iov[BATCH];
  Addr src[BATCH];
  struct mmsghdr tx[BATCH];
  struct iovec tx_iov[BATCH];
  guint8 data[BATCH][MAX_PACKET];
} Buffers;

struct _TdRelay {
  /* immutable after td_relay_new */
  Addr address;
  socklen_t address_len;
  guint16 first_port;          /* first even port of the range */
  guint n_pairs;
  int epfd, evfd;
  GThread *thread;

  /* main thread: the pool */
  guint8 *in_use;              /* per pair */
  guint cursor, n_in_use;
  guint64 sync_sent;

  /* shared, under `lock` */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  GQueue commands;             /* Cmd* */
  GArray *released;            /* guint pair indices closed by the media thread */
  guint64 sync_done;

  /* media thread */
  GQueue live_ports;           /* TdRelayPort* via port->link */
  Buffers *buf;
};

/* ---- stats: single writer ---- */

static inline void
stat_add (_Atomic guint64 *counter, guint64 n)
{
  atomic_store_explicit (counter, atomic_load_explicit (counter, memory_order_relaxed) + n,
                         memory_order_relaxed);
}

static inline guint64
stat_get (_Atomic guint64 *counter)
{
  return atomic_load_explicit (counter, memory_order_relaxed);
}

/* ---- addresses ---- */

static gboolean
parse_ip (const char *ip, Addr *out, socklen_t *len)
{
  memset (out, 0, sizeof *out);
  if (inet_pton (AF_INET, ip, &out->in.sin_addr) == 1) {
    out->in.sin_family = AF_INET;
    *len = sizeof out->in;
    return TRUE;
  }
  if (inet_pton (AF_INET6, ip, &out->in6.sin6_addr) == 1) {
    out->in6.sin6_family = AF_INET6;
    *len = sizeof out->in6;
    return TRUE;
  }
  return FALSE;
}

static gboolean
addr_is_any (const Addr *a)
{
  if (a->sa.sa_family == AF_INET)
    return a->in.sin_addr.s_addr == htonl (INADDR_ANY);
  return IN6_IS_ADDR_UNSPECIFIED (&a->in6.sin6_addr);
}

static void
addr_set_port (Addr *a, guint16 port)
{
  if (a->sa.sa_family == AF_INET)
    a->in.sin_port = htons (port);
  else
    a->in6.sin6_port = htons (port);
}

/* An IPv4 remote seen from an IPv6 (dual-stack) socket is ::ffff:a.b.c.d. */
static void
addr_map_v4 (Addr *a, socklen_t *len)
{
  struct in_addr v4 = a->in.sin_addr;

  memset (a, 0, sizeof *a);
  a->in6.sin6_family = AF_INET6;
  a->in6.sin6_addr.s6_addr[10] = 0xff;
  a->in6.sin6_addr.s6_addr[11] = 0xff;
  memcpy (&a->in6.sin6_addr.s6_addr[12], &v4, 4);
  *len = sizeof a->in6;
}

/* Same source? Compares only what identifies a sender: family, address, port. */
static inline gboolean
addr_equal (const Addr *a, const Addr *b)
{
  if (a->sa.sa_family != b->sa.sa_family)
    return FALSE;
  if (a->sa.sa_family == AF_INET)
    return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
  return a->in6.sin6_port == b->in6.sin6_port &&
         memcmp (&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr) == 0;
}

/* ---- commands (main thread side) ---- */

static void
push_command (TdRelay *relay, Cmd *cmd)
{
  static const guint64 one = 1;

  pthread_mutex_lock (&relay->lock);
  g_queue_push_tail (&relay->commands, cmd);
  pthread_mutex_unlock (&relay->lock);
  /* Always signal: commands are rare, and this keeps the wake-up argument
   * trivial (the media thread reads the eventfd before stealing the queue). */
  if (write (relay->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
    g_critical ("relay: eventfd write: %s", g_strerror (errno));
}

static void
send_command (TdRelay *relay, CmdType type, TdRelayPort *port, TdRelayPort *other, gboolean flag)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->type = type;
  cmd->port = port;
  cmd->other = other;
  cmd->flag = flag;
  push_command (relay, cmd);
}

/* Pairs the media thread has closed go back to the pool. */
static void
reclaim_released (TdRelay *relay)
{
  pthread_mutex_lock (&relay->lock);
  for (guint i = 0; i < relay->released->len; i++) {
    guint pair = g_array_index (relay->released, guint, i);
    g_assert (relay->in_use[pair]);
    relay->in_use[pair] = 0;
    relay->n_in_use--;
  }
  g_array_set_size (relay->released, 0);
  pthread_mutex_unlock (&relay->lock);
}

/* ---- the packet path (media thread) ---- */

static inline gboolean
plausible (guint kind, const guint8 *data, gsize len, int flags)
{
  if (flags & MSG_TRUNC)
    return FALSE;
  if (len < (kind == RTP ? 12u : 8u))
    return FALSE;
  return (data[0] >> 6) == 2;
}

/* Latching and RTP Bleed protection: while learning, the first plausible
 * packet's source becomes the remote; afterwards only that source is
 * accepted. Garbage never latches. */
static inline gboolean
accept_packet (RelaySock *s, const Addr *src, const guint8 *data, gsize len, int flags)
{
  TdRelayPort *port = s->port;

  if (!s->learning && !addr_equal (src, &s->remote)) {
    stat_add (&port->foreign, 1);
    return FALSE;
  }
  if (!plausible (s->kind, data, len, flags)) {
    stat_add (&port->other, 1);
    return FALSE;
  }
  if (s->learning) {
    s->remote = *src;
    s->remote_len = src->sa.sa_family == AF_INET ? sizeof src->in : sizeof src->in6;
    s->learning = FALSE;
  }
  return TRUE;
}

/* The one send path: packets `idx[0..n)` of the shared buffers, received on
 * `src`, go out of `dst`'s socket of the same kind to dst's remote. The next
 * issue's per-leg outgoing RTP context (SSRC/seq/timestamp rewriting, SRTP)
 * goes here, per packet, before the send. */
static void
forward_packets (TdRelay *relay, TdRelayPort *src, TdRelayPort *dst, guint kind,
                 const guint *idx, guint n)
{
  Buffers *b = relay->buf;
  RelaySock *out = &dst->sock[kind];
  guint sent = 0, errors = 0;

  if (out->remote_len == 0)
    return;   /* nowhere to send yet (no SDP, not latched) */

  if (n == 1) {
    if (sendto (out->fd, b->data[idx[0]], b->rx[idx[0]].msg_len, 0,
                &out->remote.sa, out->remote_len) >= 0)
      sent = 1;
    else
      errors = 1;
  } else {
    for (guint i = 0; i < n; i++) {
      b->tx_iov[i] = (struct iovec) { b->data[idx[i]], b->rx[idx[i]].msg_len };
      b->tx[i].msg_hdr = (struct msghdr) {
        .msg_name = &out->remote, .msg_namelen = out->remote_len,
        .msg_iov = &b->tx_iov[i], .msg_iovlen = 1,
      };
    }
    while (sent + errors < n) {
      int r = sendmmsg (out->fd, b->tx + sent + errors, n - sent - errors, 0);
      if (r > 0) {
        sent += r;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        errors = n - sent;   /* buffer full: the rest are lost */
      } else {
        errors++;            /* skip the packet the kernel refused, try the rest */
      }
    }
  }
  stat_add (&dst->tx, sent);
  if (errors)
    stat_add (&dst->tx_errors, errors);
}

/* Filters one received batch, then forwards what passed in one go (all of it
 * goes to the same destination, so sendmmsg applies). */
static void
handle_batch (TdRelay *relay, RelaySock *s, guint n)
{
  Buffers *b = relay->buf;
  TdRelayPort *port = s->port;
  guint idx[BATCH], accepted = 0;

  for (guint i = 0; i < n; i++) {
    if (accept_packet (s, &b->src[i], b->data[i], b->rx[i].msg_len, b->rx[i].msg_hdr.msg_flags))
      idx[accepted++] = i;
  }
  if (accepted == 0)
    return;
  stat_add (&port->rx, accepted);
  atomic_store_explicit (&port->last_rx, g_get_monotonic_time (), memory_order_relaxed);
  if (port->forward && port->peer)
    forward_packets (relay, port, port->peer, s->kind, idx, accepted);
}

static void
drain_socket (TdRelay *relay, RelaySock *s)
{
  Buffers *b = relay->buf;

  for (guint round = 0; round < MAX_ROUNDS; round++) {
    int n;

    for (guint i = 0; i < BATCH; i++)
      b->rx[i].msg_hdr.msg_namelen = sizeof b->src[i];
    n = recvmmsg (s->fd, b->rx, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
      return;   /* EAGAIN; errors of unconnected UDP sockets are not ours to act on */
    handle_batch (relay, s, (guint) n);
    if (n < BATCH)
      return;   /* drained: save the syscall that would say EAGAIN */
  }
}

/* ---- commands (media thread side) ---- */

static void
unlink_peer (TdRelayPort *port)
{
  if (port->peer && port->peer->peer == port)
    port->peer->peer = NULL;
  port->peer = NULL;
}

static void
watch_socket (TdRelay *relay, RelaySock *s)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

  if (epoll_ctl (relay->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
    g_critical ("relay: epoll_ctl ADD port %u: %s", s->port->number, g_strerror (errno));
}

/* Closing happens here, on the thread that reads the sockets, after this
 * loop iteration's events are handled: no event can refer to the port. */
static void
close_port (TdRelay *relay, TdRelayPort *port)
{
  unlink_peer (port);
  g_queue_unlink (&relay->live_ports, &port->link);
  for (guint k = RTP; k <= RTCP; k++) {
    epoll_ctl (relay->epfd, EPOLL_CTL_DEL, port->sock[k].fd, NULL);
    close (port->sock[k].fd);
  }
  pthread_mutex_lock (&relay->lock);
  g_array_append_val (relay->released, port->pair);
  pthread_mutex_unlock (&relay->lock);
  g_free (port);
}

static void
apply_set_remote (TdRelayPort *port, const Cmd *cmd)
{
  for (guint k = RTP; k <= RTCP; k++) {
    RelaySock *s = &port->sock[k];
    s->remote_len = cmd->remote_len;
    if (cmd->remote_len)
      s->remote = cmd->remote[k];
    s->learning = TRUE;
  }
}

/* Returns FALSE on CMD_QUIT. */
static gboolean
apply_command (TdRelay *relay, Cmd *cmd)
{
  TdRelayPort *port = cmd->port;

  switch (cmd->type) {
  case CMD_ADD:
    port->link.data = port;
    g_queue_push_tail_link (&relay->live_ports, &port->link);
    watch_socket (relay, &port->sock[RTP]);
    watch_socket (relay, &port->sock[RTCP]);
    break;
  case CMD_SET_REMOTE:
    apply_set_remote (port, cmd);
    break;
  case CMD_CONNECT:
    unlink_peer (port);
    unlink_peer (cmd->other);
    port->peer = cmd->other;
    cmd->other->peer = port;
    break;
  case CMD_DISCONNECT:
    unlink_peer (port);
    break;
  case CMD_SET_FORWARD:
    port->forward = cmd->flag;
    break;
  case CMD_FREE:
    close_port (relay, port);
    break;
  case CMD_SYNC:
    pthread_mutex_lock (&relay->lock);
    relay->sync_done = cmd->seq;
    pthread_cond_broadcast (&relay->cond);
    pthread_mutex_unlock (&relay->lock);
    break;
  case CMD_QUIT:
    return FALSE;
  }
  return TRUE;
}

static gboolean
process_commands (TdRelay *relay)
{
  guint64 count;
  GQueue batch = G_QUEUE_INIT;
  gboolean running = TRUE;
  Cmd *cmd;

  /* Read the eventfd first, then steal: a command pushed after the steal
   * writes the eventfd again, so none is left behind. */
  if (read (relay->evfd, &count, sizeof count) < 0 && errno != EAGAIN)
    g_critical ("relay: eventfd read: %s", g_strerror (errno));
  pthread_mutex_lock (&relay->lock);
  batch = relay->commands;
  g_queue_init (&relay->commands);
  pthread_mutex_unlock (&relay->lock);

  while ((cmd = g_queue_pop_head (&batch))) {
    if (running)
      running = apply_command (relay, cmd);
    g_free (cmd);
  }
  return running;
}

static gpointer
relay_thread (gpointer data)
{
  TdRelay *relay = data;
  struct epoll_event events[MAX_EVENTS];
  gboolean running = TRUE;

  while (running) {
    gboolean commands = FALSE;
    int n = epoll_wait (relay->epfd, events, MAX_EVENTS, -1);

    if (n < 0) {
      if (errno == EINTR)
        continue;
      g_critical ("relay: epoll_wait: %s", g_strerror (errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL)
        commands = TRUE;   /* the eventfd: after the packets, see close_port */
      else
        drain_socket (relay, events[i].data.ptr);
    }
    if (commands)
      running = process_commands (relay);
  }
  while (relay->live_ports.head)
    close_port (relay, relay->live_ports.head->data);
  return NULL;
}

/* ---- public API ---- */

static void
init_buffers (Buffers *b)
{
  for (guint i = 0; i < BATCH; i++) {
    b->rx_iov[i] = (struct iovec) { b->data[i], MAX_PACKET };
    b->rx[i].msg_hdr = (struct msghdr) {
      .msg_name = &b->src[i], .msg_namelen = sizeof b->src[i],
      .msg_iov = &b->rx_iov[i], .msg_iovlen = 1,
    };
  }
}

static gboolean
check_range (guint16 port_min, guint16 port_max, guint16 *first, guint *n_pairs, GError **error)
{
  guint first_even = port_min + (port_min & 1u);

  if (port_min == 0 || port_min > port_max || first_even + 1 > port_max) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_RANGE,
                 "media port range %u-%u holds no even RTP port with its RTCP port",
                 port_min, port_max);
    return FALSE;
  }
  *first = (guint16) first_even;
  *n_pairs = (port_max - first_even + 1) / 2;
  return TRUE;
}

TdRelay *
td_relay_new (const char *address, guint16 port_min, guint16 port_max, GError **error)
{
  g_autofree TdRelay *relay = g_new0 (TdRelay, 1);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  GError *thread_error = NULL;

  if (!parse_ip (address, &relay->address, &relay->address_len)) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_ADDRESS,
                 "media address \"%s\" is not an IPv4 or IPv6 address", address);
    return NULL;
  }
  if (!check_range (port_min, port_max, &relay->first_port, &relay->n_pairs, error))
    return NULL;
  relay->epfd = epoll_create1 (EPOLL_CLOEXEC);
  relay->evfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (relay->epfd < 0 || relay->evfd < 0 ||
      epoll_ctl (relay->epfd, EPOLL_CTL_ADD, relay->evfd, &ev) < 0) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_SYSTEM,
                 "media relay: epoll/eventfd: %s", g_strerror (errno));
    goto fail;
  }
  relay->in_use = g_new0 (guint8, relay->n_pairs);
  relay->released = g_array_new (FALSE, FALSE, sizeof (guint));
  relay->buf = g_new0 (Buffers, 1);
  init_buffers (relay->buf);
  pthread_mutex_init (&relay->lock, NULL);
  pthread_cond_init (&relay->cond, NULL);
  g_queue_init (&relay->commands);
  g_queue_init (&relay->live_ports);
  relay->thread = g_thread_try_new ("td-relay", relay_thread, relay, &thread_error);
  if (!relay->thread) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_SYSTEM,
                 "media relay thread: %s", thread_error->message);
    g_error_free (thread_error);
    pthread_mutex_destroy (&relay->lock);
    pthread_cond_destroy (&relay->cond);
    g_free (relay->buf);
    g_free (relay->in_use);
    g_array_unref (relay->released);
    goto fail;
  }
  return g_steal_pointer (&relay);

fail:
  if (relay->epfd >= 0)
    close (relay->epfd);
  if (relay->evfd >= 0)
    close (relay->evfd);
  return NULL;
}

void
td_relay_free (TdRelay *relay)
{
  Cmd *quit;

  if (!relay)
    return;
  quit = g_new0 (Cmd, 1);
  quit->type = CMD_QUIT;
  push_command (relay, quit);
  g_thread_join (relay->thread);   /* it closed every live port on its way out */
  /* Only the main thread pushes commands, and QUIT was its last. */
  g_assert (g_queue_is_empty (&relay->commands));
  close (relay->epfd);
  close (relay->evfd);
  pthread_mutex_destroy (&relay->lock);
  pthread_cond_destroy (&relay->cond);
  g_array_unref (relay->released);
  g_free (relay->in_use);
  g_free (relay->buf);
  g_free (relay);
}

static int
open_socket (TdRelay *relay, guint16 number)
{
  Addr a = relay->address;
  int size = SOCKET_BUFFER;
  int fd = socket (a.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -1;
  /* No SO_REUSEADDR: for UDP it would let two sockets share a port. */
  addr_set_port (&a, number);
  if (bind (fd, &a.sa, relay->address_len) < 0) {
    int saved = errno;
    close (fd);
    errno = saved;
    return -1;
  }
  /* Best effort: the kernel caps these at net.core.[rw]mem_max. */
  setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  return fd;
}

/* Binds both sockets of pair `pair`. Returns FALSE with errno set. */
static gboolean
bind_pair (TdRelay *relay, guint pair, int fds[2])
{
  guint16 number = relay->first_port + 2 * pair;

  fds[RTP] = open_socket (relay, number);
  if (fds[RTP] < 0)
    return FALSE;
  fds[RTCP] = open_socket (relay, number + 1);
  if (fds[RTCP] < 0) {
    int saved = errno;
    close (fds[RTP]);
    errno = saved;
    return FALSE;
  }
  return TRUE;
}

static TdRelayPort *
new_port (TdRelay *relay, guint pair, const int fds[2])
{
  TdRelayPort *port = g_new0 (TdRelayPort, 1);

  port->relay = relay;
  port->pair = pair;
  port->number = relay->first_port + 2 * pair;
  port->forward = TRUE;
  for (guint k = RTP; k <= RTCP; k++) {
    port->sock[k].fd = fds[k];
    port->sock[k].kind = k;
    port->sock[k].learning = TRUE;
    port->sock[k].port = port;
  }
  return port;
}

TdRelayPort *
td_relay_port_alloc (TdRelay *relay, GError **error)
{
  guint busy = 0;

  g_return_val_if_fail (relay, NULL);
  reclaim_released (relay);
  for (guint tried = 0; tried < relay->n_pairs; tried++) {
    guint pair = (relay->cursor + tried) % relay->n_pairs;
    int fds[2];
    TdRelayPort *port;
    Cmd *cmd;

    if (relay->in_use[pair])
      continue;
    if (!bind_pair (relay, pair, fds)) {
      if (errno == EADDRINUSE || errno == EACCES) {
        busy++;   /* another process holds it: try the next pair */
        continue;
      }
      g_set_error (error, TD_RELAY_ERROR,
                   errno == EADDRNOTAVAIL ? TD_RELAY_ERROR_ADDRESS : TD_RELAY_ERROR_SYSTEM,
                   "media port %u: %s", relay->first_port + 2 * pair, g_strerror (errno));
      return NULL;
    }
    relay->in_use[pair] = 1;
    relay->n_in_use++;
    relay->cursor = (pair + 1) % relay->n_pairs;
    port = new_port (relay, pair, fds);
    cmd = g_new0 (Cmd, 1);
    cmd->type = CMD_ADD;
    cmd->port = port;
    push_command (relay, cmd);
    return port;
  }
  g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_EXHAUSTED,
               "media port range %u-%u exhausted: all %u RTP/RTCP pairs in use "
               "(%u by tandem, %u by other sockets)",
               relay->first_port, relay->first_port + 2 * relay->n_pairs - 1,
               relay->n_pairs, relay->n_in_use, busy);
  return NULL;
}

guint16
td_relay_port_number (const TdRelayPort *port)
{
  return port->number;
}

void
td_relay_port_set_remote (TdRelayPort *port, const char *ip, guint16 rtp_port, guint16 rtcp_port)
{
  TdRelay *relay = port->relay;
  Cmd *cmd = g_new0 (Cmd, 1);
  Addr a;
  socklen_t len = 0;

  cmd->type = CMD_SET_REMOTE;
  cmd->port = port;
  if (!ip || !parse_ip (ip, &a, &len)) {
    g_warning ("relay port %u: remote \"%s\" is not an IP address; not sending until latched",
               port->number, ip ? ip : "(null)");
    len = 0;
  } else if (addr_is_any (&a) || rtp_port == 0) {
    len = 0;   /* SDP hold / disabled stream */
  } else if (a.sa.sa_family == AF_INET && relay->address.sa.sa_family == AF_INET6) {
    addr_map_v4 (&a, &len);
  } else if (a.sa.sa_family != relay->address.sa.sa_family) {
    g_warning ("relay port %u: IPv6 remote %s on an IPv4 relay; not sending until latched",
               port->number, ip);
    len = 0;
  }
  cmd->remote_len = len;
  if (len) {
    cmd->remote[RTP] = a;
    addr_set_port (&cmd->remote[RTP], rtp_port);
    cmd->remote[RTCP] = a;
    addr_set_port (&cmd->remote[RTCP], rtcp_port ? rtcp_port : rtp_port + 1);
  }
  push_command (relay, cmd);
}

void
td_relay_connect (TdRelayPort *a, TdRelayPort *b)
{
  g_return_if_fail (a && b && a->relay == b->relay);
  send_command (a->relay, CMD_CONNECT, a, b, FALSE);
}

void
td_relay_disconnect (TdRelayPort *port)
{
  send_command (port->relay, CMD_DISCONNECT, port, NULL, FALSE);
}

void
td_relay_port_set_forward (TdRelayPort *port, gboolean forward)
{
  send_command (port->relay, CMD_SET_FORWARD, port, NULL, forward);
}

void
td_relay_port_free (TdRelayPort *port)
{
  if (port)
    send_command (port->relay, CMD_FREE, port, NULL, FALSE);
}

void
td_relay_port_get_stats (TdRelayPort *port, TdRelayStats *out)
{
  out->rx_packets = stat_get (&port->rx);
  out->tx_packets = stat_get (&port->tx);
  out->dropped_foreign = stat_get (&port->foreign);
  out->dropped_other = stat_get (&port->other);
  out->tx_errors = stat_get (&port->tx_errors);
  out->last_rx_us = atomic_load_explicit (&port->last_rx, memory_order_relaxed);
}

guint
td_relay_port_count (TdRelay *relay)
{
  reclaim_released (relay);
  return relay->n_in_use;
}

void
td_relay_sync (TdRelay *relay)
{
  Cmd *cmd = g_new0 (Cmd, 1);
  guint64 seq = ++relay->sync_sent;

  cmd->type = CMD_SYNC;
  cmd->seq = seq;
  push_command (relay, cmd);
  pthread_mutex_lock (&relay->lock);
  while (relay->sync_done < seq)
    pthread_cond_wait (&relay->cond, &relay->lock);
  pthread_mutex_unlock (&relay->lock);
}
