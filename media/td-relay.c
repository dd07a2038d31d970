/* TdRelay: symmetric-latching RTP/RTCP relay on epoll media threads.
 *
 * Ownership: the main thread allocates ports (binds the sockets) and keeps
 * the port-number pool; from then on one media thread (a "worker") owns
 * everything a packet touches (latching state, remotes, peer links,
 * forwarding flag) and is the only thread that reads, closes or frees a
 * port's sockets and memory. The main thread reaches that state only through
 * the worker's command queue.
 *
 * Why a mutex-protected command queue + eventfd rather than a lock-free one:
 * the mutex is taken by the worker only when the eventfd says there are
 * commands (a few per call set-up, never per packet), and it then steals the
 * whole queue at once; the packet path takes no lock at all. Commands are
 * rare, so a lock-free queue would buy nothing but subtlety; the mutex also
 * gives ThreadSanitizer the happens-before edges it cannot see through the
 * kernel's epoll. It is a pthread mutex, not a GMutex: GLib's Linux GMutex is
 * a bare futex, which ThreadSanitizer cannot see either.
 *
 * Several workers (td_relay_new_full): ports are sharded, and two connected
 * ports always live on the same worker, so the packet path never touches
 * another thread's state. Both ports of a call usually land on one worker
 * (allocations are handed out in pairs); when td_relay_connect() joins ports
 * of two workers, one port migrates: its old worker lets go of it (the main
 * thread waits for that, once per such call set-up), then the new one adopts
 * it with its latching state. */
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
#define MAX_WORKERS 64

enum { RTP, RTCP };

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} Addr;

typedef struct _Worker Worker;

/* One UDP socket of a port; worker state except `fd` and `port`. */
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
  Worker *worker;         /* main thread only: where its commands go */
  GList link;             /* in its worker's live_ports */
  RelaySock sock[2];
  TdRelayPort *peer;      /* worker; always on the same worker */
  gboolean forward;       /* worker */
  /* Written by the owning worker only (load + store, no locked instruction),
   * read relaxed by the main thread. */
  _Atomic guint64 rx, tx, foreign, other, tx_errors;
  _Atomic gint64 last_rx;
};

typedef enum {
  CMD_ADD, CMD_DETACH, CMD_SET_REMOTE, CMD_CONNECT, CMD_DISCONNECT, CMD_SET_FORWARD,
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

/* A worker's one set of receive/send buffers, shared by all its ports. */
typedef struct {
  struct mmsghdr rx[BATCH];
  struct iovec rx_iov[BATCH];
  Addr src[BATCH];
  struct mmsghdr tx[BATCH];
  struct iovec tx_iov[BATCH];
  guint8 data[BATCH][MAX_PACKET];
} Buffers;

struct _Worker {
  TdRelay *relay;              /* immutable */
  int epfd, evfd;              /* immutable */
  GThread *thread;

  /* shared, under `lock` */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  GQueue commands;             /* Cmd* */
  guint64 sync_done;

  /* main thread */
  guint64 sync_sent;
  guint n_ports;               /* ports whose commands come here: for balancing */

  /* the worker thread */
  GQueue live_ports;           /* TdRelayPort* via port->link */
  Buffers *buf;
};

struct _TdRelay {
  /* immutable after td_relay_new */
  Addr address;
  socklen_t address_len;
  guint16 first_port;          /* first even port of the range */
  guint n_pairs;
  guint n_workers;
  Worker *workers;

  /* main thread: the pool */
  guint8 *in_use;              /* per pair */
  guint cursor, n_in_use;
  guint n_allocs;
  Worker *pair_worker;         /* where the second of an allocation pair goes */

  /* shared, under `pool_lock` */
  pthread_mutex_t pool_lock;
  GArray *released;            /* guint pair indices closed by the workers */
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
push_command (Worker *w, Cmd *cmd)
{
  static const guint64 one = 1;

  pthread_mutex_lock (&w->lock);
  g_queue_push_tail (&w->commands, cmd);
  pthread_mutex_unlock (&w->lock);
  /* Always signal: commands are rare, and this keeps the wake-up argument
   * trivial (the worker reads the eventfd before stealing the queue). */
  if (write (w->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
    g_critical ("relay: eventfd write: %s", g_strerror (errno));
}

static void
send_command (Worker *w, CmdType type, TdRelayPort *port, TdRelayPort *other, gboolean flag)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->type = type;
  cmd->port = port;
  cmd->other = other;
  cmd->flag = flag;
  push_command (w, cmd);
}

/* Waits until `w` has applied every command queued so far. */
static void
worker_sync (Worker *w)
{
  Cmd *cmd = g_new0 (Cmd, 1);
  guint64 seq = ++w->sync_sent;

  cmd->type = CMD_SYNC;
  cmd->seq = seq;
  push_command (w, cmd);
  pthread_mutex_lock (&w->lock);
  while (w->sync_done < seq)
    pthread_cond_wait (&w->cond, &w->lock);
  pthread_mutex_unlock (&w->lock);
}

/* Pairs the workers have closed go back to the pool. */
static void
reclaim_released (TdRelay *relay)
{
  pthread_mutex_lock (&relay->pool_lock);
  for (guint i = 0; i < relay->released->len; i++) {
    guint pair = g_array_index (relay->released, guint, i);
    g_assert (relay->in_use[pair]);
    relay->in_use[pair] = 0;
    relay->n_in_use--;
  }
  g_array_set_size (relay->released, 0);
  pthread_mutex_unlock (&relay->pool_lock);
}

/* ---- the packet path (worker thread) ---- */

/* Version 2 and long enough for its header. RTCP multiplexed on the RTP
 * port (RFC 5761: packet types 192-223) may be as short as RTCP's 8 bytes. */
static inline gboolean
plausible (guint kind, const guint8 *data, gsize len, int flags)
{
  if ((flags & MSG_TRUNC) || len < 8 || (data[0] >> 6) != 2)
    return FALSE;
  return kind == RTCP || len >= 12 || (data[1] >= 192 && data[1] <= 223);
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

/* The one send path: packets `idx[0..n)` of the worker's buffers, received
 * on `src`, go out of `dst`'s socket of the same kind to dst's remote. The
 * next issue's per-leg outgoing RTP context (SSRC/seq/timestamp rewriting,
 * SRTP) goes here, per packet, before the send. */
static void
forward_packets (Worker *w, TdRelayPort *src, TdRelayPort *dst, guint kind,
                 const guint *idx, guint n)
{
  Buffers *b = w->buf;
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
handle_batch (Worker *w, RelaySock *s, guint n)
{
  Buffers *b = w->buf;
  TdRelayPort *port = s->port;
  guint idx[BATCH], accepted = 0;

  for (guint i = 0; i < n; i++) {
    if (accept_packet (s, &b->src[i], b->data[i], b->rx[i].msg_len, b->rx[i].msg_hdr.msg_flags))
      idx[accepted++] = i;
  }
  if (accepted == 0)
    return;
  /* last_rx before rx, released: a reader that sees the count sees the time */
  atomic_store_explicit (&port->last_rx, g_get_monotonic_time (), memory_order_relaxed);
  atomic_store_explicit (&port->rx, atomic_load_explicit (&port->rx, memory_order_relaxed) + accepted,
                         memory_order_release);
  if (port->forward && port->peer)
    forward_packets (w, port, port->peer, s->kind, idx, accepted);
}

static void
drain_socket (Worker *w, RelaySock *s)
{
  Buffers *b = w->buf;

  for (guint round = 0; round < MAX_ROUNDS; round++) {
    int n;

    for (guint i = 0; i < BATCH; i++)
      b->rx[i].msg_hdr.msg_namelen = sizeof b->src[i];
    n = recvmmsg (s->fd, b->rx, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
      return;   /* EAGAIN; errors of unconnected UDP sockets are not ours to act on */
    handle_batch (w, s, (guint) n);
    if (n < BATCH)
      return;   /* drained: save the syscall that would say EAGAIN */
  }
}

/* ---- commands (worker side) ---- */

static void
unlink_peer (TdRelayPort *port)
{
  if (port->peer && port->peer->peer == port)
    port->peer->peer = NULL;
  port->peer = NULL;
}

static void
adopt_port (Worker *w, TdRelayPort *port)
{
  port->link.data = port;
  g_queue_push_tail_link (&w->live_ports, &port->link);
  for (guint k = RTP; k <= RTCP; k++) {
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &port->sock[k] };
    if (epoll_ctl (w->epfd, EPOLL_CTL_ADD, port->sock[k].fd, &ev) < 0)
      g_critical ("relay: epoll_ctl ADD port %u: %s", port->number, g_strerror (errno));
  }
}

/* After this the worker holds no reference to the port: it may migrate or
 * be closed. Runs after this loop iteration's events were handled, so no
 * pending event refers to it either. */
static void
let_go (Worker *w, TdRelayPort *port)
{
  unlink_peer (port);
  g_queue_unlink (&w->live_ports, &port->link);
  for (guint k = RTP; k <= RTCP; k++)
    epoll_ctl (w->epfd, EPOLL_CTL_DEL, port->sock[k].fd, NULL);
}

static void
close_port (Worker *w, TdRelayPort *port)
{
  TdRelay *relay = w->relay;

  let_go (w, port);
  close (port->sock[RTP].fd);
  close (port->sock[RTCP].fd);
  pthread_mutex_lock (&relay->pool_lock);
  g_array_append_val (relay->released, port->pair);
  pthread_mutex_unlock (&relay->pool_lock);
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
apply_command (Worker *w, Cmd *cmd)
{
  TdRelayPort *port = cmd->port;

  switch (cmd->type) {
  case CMD_ADD:
    adopt_port (w, port);
    break;
  case CMD_DETACH:
    let_go (w, port);
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
    close_port (w, port);
    break;
  case CMD_SYNC:
    pthread_mutex_lock (&w->lock);
    w->sync_done = cmd->seq;
    pthread_cond_broadcast (&w->cond);
    pthread_mutex_unlock (&w->lock);
    break;
  case CMD_QUIT:
    return FALSE;
  }
  return TRUE;
}

static gboolean
process_commands (Worker *w)
{
  guint64 count;
  GQueue batch;
  gboolean running = TRUE;
  Cmd *cmd;

  /* Read the eventfd first, then steal: a command pushed after the steal
   * writes the eventfd again, so none is left behind. */
  if (read (w->evfd, &count, sizeof count) < 0 && errno != EAGAIN)
    g_critical ("relay: eventfd read: %s", g_strerror (errno));
  pthread_mutex_lock (&w->lock);
  batch = w->commands;
  g_queue_init (&w->commands);
  pthread_mutex_unlock (&w->lock);

  while ((cmd = g_queue_pop_head (&batch))) {
    if (running)
      running = apply_command (w, cmd);
    g_free (cmd);
  }
  return running;
}

static gpointer
worker_thread (gpointer data)
{
  Worker *w = data;
  struct epoll_event events[MAX_EVENTS];
  gboolean running = TRUE;

  while (running) {
    gboolean commands = FALSE;
    int n = epoll_wait (w->epfd, events, MAX_EVENTS, -1);

    if (n < 0) {
      if (errno == EINTR)
        continue;
      g_critical ("relay: epoll_wait: %s", g_strerror (errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL)
        commands = TRUE;   /* the eventfd: after the packets, see let_go */
      else
        drain_socket (w, events[i].data.ptr);
    }
    if (commands)
      running = process_commands (w);
  }
  while (w->live_ports.head)
    close_port (w, w->live_ports.head->data);
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

static gboolean
worker_start (TdRelay *relay, Worker *w, guint index, GError **error)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  g_autofree char *name = relay->n_workers == 1 ? g_strdup ("td-relay")
                                                : g_strdup_printf ("td-relay-%u", index);
  GError *thread_error = NULL;

  w->relay = relay;
  w->epfd = epoll_create1 (EPOLL_CLOEXEC);
  w->evfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->epfd < 0 || w->evfd < 0 || epoll_ctl (w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_SYSTEM,
                 "media relay: epoll/eventfd: %s", g_strerror (errno));
    goto fail;
  }
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->cond, NULL);
  g_queue_init (&w->commands);
  g_queue_init (&w->live_ports);
  w->buf = g_new0 (Buffers, 1);
  init_buffers (w->buf);
  w->thread = g_thread_try_new (name, worker_thread, w, &thread_error);
  if (!w->thread) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_SYSTEM,
                 "media relay thread: %s", thread_error->message);
    g_error_free (thread_error);
    pthread_mutex_destroy (&w->lock);
    pthread_cond_destroy (&w->cond);
    g_free (w->buf);
    goto fail;
  }
  return TRUE;

fail:
  if (w->epfd >= 0)
    close (w->epfd);
  if (w->evfd >= 0)
    close (w->evfd);
  return FALSE;
}

/* Stops the thread; it closes every port it still owns on its way out. */
static void
worker_stop (Worker *w)
{
  Cmd *quit = g_new0 (Cmd, 1);

  quit->type = CMD_QUIT;
  push_command (w, quit);
  g_thread_join (w->thread);
  /* Only the main thread pushes commands, and QUIT was its last. */
  g_assert (g_queue_is_empty (&w->commands));
  close (w->epfd);
  close (w->evfd);
  pthread_mutex_destroy (&w->lock);
  pthread_cond_destroy (&w->cond);
  g_free (w->buf);
}

static void
relay_destroy (TdRelay *relay, guint n_started)
{
  for (guint i = 0; i < n_started; i++)
    worker_stop (&relay->workers[i]);
  pthread_mutex_destroy (&relay->pool_lock);
  g_array_unref (relay->released);
  g_free (relay->in_use);
  g_free (relay->workers);
  g_free (relay);
}

TdRelay *
td_relay_new_full (const char *address, guint16 port_min, guint16 port_max, guint n_threads,
                   GError **error)
{
  TdRelay *relay;
  Addr addr;
  socklen_t addr_len;
  guint16 first;
  guint n_pairs;

  if (!parse_ip (address, &addr, &addr_len)) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_ADDRESS,
                 "media address \"%s\" is not an IPv4 or IPv6 address", address);
    return NULL;
  }
  if (!check_range (port_min, port_max, &first, &n_pairs, error))
    return NULL;
  if (n_threads == 0)
    n_threads = g_get_num_processors ();
  relay = g_new0 (TdRelay, 1);
  relay->address = addr;
  relay->address_len = addr_len;
  relay->first_port = first;
  relay->n_pairs = n_pairs;
  relay->n_workers = MIN (n_threads, MAX_WORKERS);
  relay->workers = g_new0 (Worker, relay->n_workers);
  relay->in_use = g_new0 (guint8, n_pairs);
  relay->released = g_array_new (FALSE, FALSE, sizeof (guint));
  pthread_mutex_init (&relay->pool_lock, NULL);
  for (guint i = 0; i < relay->n_workers; i++) {
    if (!worker_start (relay, &relay->workers[i], i, error)) {
      relay_destroy (relay, i);
      return NULL;
    }
  }
  return relay;
}

TdRelay *
td_relay_new (const char *address, guint16 port_min, guint16 port_max, GError **error)
{
  return td_relay_new_full (address, port_min, port_max, 1, error);
}

void
td_relay_free (TdRelay *relay)
{
  if (relay)
    relay_destroy (relay, relay->n_workers);
}

guint
td_relay_n_threads (TdRelay *relay)
{
  return relay->n_workers;
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

/* Allocations are handed out in pairs, each pair to the least loaded worker:
 * a call's two legs are usually allocated back to back, and then connecting
 * them needs no migration. */
static Worker *
choose_worker (TdRelay *relay)
{
  if (relay->n_allocs++ % 2 == 0) {
    Worker *best = &relay->workers[0];
    for (guint i = 1; i < relay->n_workers; i++)
      if (relay->workers[i].n_ports < best->n_ports)
        best = &relay->workers[i];
    relay->pair_worker = best;
  }
  return relay->pair_worker;
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
  port->worker = choose_worker (relay);
  port->worker->n_ports++;
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
    send_command (port->worker, CMD_ADD, port, NULL, FALSE);
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
  push_command (port->worker, cmd);
}

/* Moves `port` to worker `to`: the old worker lets go first (we wait for it),
 * so the port's state is never touched by two threads. */
static void
migrate (TdRelayPort *port, Worker *to)
{
  Worker *from = port->worker;

  send_command (from, CMD_DETACH, port, NULL, FALSE);
  worker_sync (from);
  from->n_ports--;
  to->n_ports++;
  port->worker = to;
  send_command (to, CMD_ADD, port, NULL, FALSE);
}

void
td_relay_connect (TdRelayPort *a, TdRelayPort *b)
{
  g_return_if_fail (a && b && a->relay == b->relay);
  if (a->worker != b->worker)
    migrate (b, a->worker);
  send_command (a->worker, CMD_CONNECT, a, b, FALSE);
}

void
td_relay_disconnect (TdRelayPort *port)
{
  send_command (port->worker, CMD_DISCONNECT, port, NULL, FALSE);
}

void
td_relay_port_set_forward (TdRelayPort *port, gboolean forward)
{
  send_command (port->worker, CMD_SET_FORWARD, port, NULL, forward);
}

void
td_relay_port_free (TdRelayPort *port)
{
  if (!port)
    return;
  port->worker->n_ports--;
  send_command (port->worker, CMD_FREE, port, NULL, FALSE);
}

void
td_relay_port_get_stats (TdRelayPort *port, TdRelayStats *out)
{
  out->rx_packets = atomic_load_explicit (&port->rx, memory_order_acquire);
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
  for (guint i = 0; i < relay->n_workers; i++)
    worker_sync (&relay->workers[i]);
}
