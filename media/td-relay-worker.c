/* The relay's media threads ("workers"): epoll loops over the sockets of the
 * ports they own, the command queue from the main thread, the packet path
 * (recvmmsg batches filtered by latching, forwarded with sendmmsg) and the
 * migration of ports between workers.
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
 * of two workers, one port migrates, and nobody waits for that (the main
 * thread is the SIP thread, which never waits on another thread):
 *  - the main thread queues CMD_DETACH(port, to) on the old worker and from
 *    then on sends the port's commands to `to`;
 *  - the old worker, on DETACH, takes the sockets out of its epoll set and
 *    itself queues CMD_ADD(port) on `to` (packets arriving meanwhile wait in
 *    the socket's kernel buffer, which epoll reports at once on `to`);
 *  - `to` may see the port's later commands (connect, set_forward, play,
 *    free...) before that ADD: a worker applies a command only when it owns
 *    every port the command touches (TdRelayPort.owner) and no earlier
 *    command held back touches them; otherwise it holds it in its backlog,
 *    in order, and replays the backlog when an ADD arrives. So each port's
 *    commands take effect in the order the main thread issued them, however
 *    many migrations are in flight (A->B then B->C before A detached: B
 *    holds the DETACH to C until A's ADD reaches it). No cycle can hold
 *    forever: the oldest command not yet applied anywhere (in the order
 *    the main thread issued them, a connect's CONNECT counting right after
 *    its DETACH) only ever waits for an older DETACH, applied by then.
 * The port's whole state (latching, outgoing context, playout) moves with
 * the struct itself, untouched. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay-private.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_EVENTS 256

/* ---- commands (main thread side) ---- */

static void
signal_worker (Worker *w)
{
  static const guint64 one = 1;

  if (write (w->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
    g_critical ("relay: eventfd write: %s", g_strerror (errno));
}

/* `defer`: the main thread's commands, signalled by
 * td_relay_worker_signal_pending when the relay defers; a worker's own
 * (a migration's ADD) are signalled at once. */
static void
queue_cmd (Worker *w, Cmd *cmd, gboolean defer)
{
  gboolean was_empty;

  pthread_mutex_lock (&w->lock);
  was_empty = g_queue_is_empty (&w->commands);
  g_queue_push_tail (&w->commands, cmd);
  pthread_mutex_unlock (&w->lock);
  /* Signal only the first command of a burst (a call set-up queues several):
   * each eventfd write can wake the worker on the other core, which costs
   * more than the command. Safe because the worker reads the eventfd before
   * it steals the queue under the lock: a command pushed into a non-empty
   * queue is taken by that steal, one pushed after it finds the queue empty
   * and signals again. A worker on an idle core wakes and steals at once,
   * so a burst issued over one SIP message still signals each command,
   * unless the main thread defers them to the end of its loop pass. */
  if (!was_empty)
    return;
  if (defer)
    w->signal_pending = TRUE;
  else
    signal_worker (w);
}

void
td_relay_worker_push (Worker *w, Cmd *cmd)
{
  queue_cmd (w, cmd, w->relay->defer_signals);
}

/* Main thread. */
static void
signal_if_pending (Worker *w)
{
  if (w->signal_pending) {
    w->signal_pending = FALSE;
    signal_worker (w);
  }
}

void
td_relay_worker_signal_pending (TdRelay *relay)
{
  for (guint i = 0; i < relay->n_workers; i++)
    signal_if_pending (&relay->workers[i]);
}

void
td_relay_worker_send (Worker *w, CmdType type, TdRelayPort *port, TdRelayPort *other,
                      gboolean flag)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->type = type;
  cmd->port = port;
  cmd->other = other;
  cmd->flag = flag;
  td_relay_worker_push (w, cmd);
}

/* Waits until `w` has applied every command queued so far. */
void
td_relay_worker_sync (Worker *w)
{
  Cmd *cmd = g_new0 (Cmd, 1);
  guint64 seq = ++w->sync_sent;

  cmd->type = CMD_SYNC;
  cmd->seq = seq;
  td_relay_worker_push (w, cmd);
  signal_if_pending (w);   /* it is about to be waited for */
  pthread_mutex_lock (&w->lock);
  while (w->sync_done < seq)
    pthread_cond_wait (&w->cond, &w->lock);
  pthread_mutex_unlock (&w->lock);
}

/* ---- the packet path (worker thread) ---- */

/* The one forwarding path: packets `idx[0..n)` of the worker's buffers,
 * received on `src`, go out of `dst`'s socket of the same kind to dst's
 * remote, RTP stamped with dst's outgoing context, then protected if dst
 * speaks SRTP (td-relay-srtp.c). */
static void
forward_packets (Worker *w, TdRelayPort *src, TdRelayPort *dst, guint kind,
                 const guint *idx, guint n, gint64 now)
{
  Buffers *b = w->buf;
  RelaySock *out = &dst->sock[kind];
  guint sent = 0, errors = 0;
  guint kept[BATCH];

  if (out->remote_len == 0 || out->fd < 0)
    return;   /* nowhere to send yet (no SDP, not latched), or RTCP under rtcp-mux */
  if (kind == RTP) {
    for (guint i = 0; i < n; i++)
      td_rtp_context_stamp_forwarded (&dst->ctx, b->data[idx[i]], now);
    td_relay_latch_note_sending (dst, now);
  }
  if (G_UNLIKELY (dst->srtp)) {
    n = td_relay_srtp_protect_batch (w, dst, kind, idx, n, kept, now);
    idx = kept;
    if (n == 0)
      return;
  }

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

/* `dst` plays a tune: the first of the accepted packets `idx[0..n)` that
 * ends it (its first RTP packet, if the tune was played until the peer
 * speaks), or n if none does (RTCP, multiplexed or not, stays dropped). */
static guint
ends_tune (Worker *w, const TdRelayPort *dst, guint kind, const guint *idx, guint n)
{
  if (!dst->play.until_peer || kind != RTP)
    return n;
  for (guint i = 0; i < n; i++) {
    const guint8 *p = w->buf->data[idx[i]];
    if (!(p[1] >= 192 && p[1] <= 223))
      return i;
  }
  return n;
}

/* Filters one received batch, then forwards what passed in one go (all of it
 * goes to the same destination, so sendmmsg applies). */
static void
handle_batch (Worker *w, RelaySock *s, guint n)
{
  Buffers *b = w->buf;
  TdRelayPort *port = s->port;
  guint idx[BATCH], accepted = 0;
  guint8 latch_before = s->state;
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++) {
    /* SRTP before latching: only the key holder latches or counts as activity */
    if (G_UNLIKELY (port->srtp) &&
        !td_relay_srtp_receive (port, s->kind, b->data[i], &b->rx[i].msg_len,
                                b->rx[i].msg_hdr.msg_flags))
      continue;
    if (td_relay_latch_accept (s, &b->src[i], b->data[i], b->rx[i].msg_len,
                               b->rx[i].msg_hdr.msg_flags, now))
      idx[accepted++] = i;
  }
  if (accepted) {
    /* last_rx before rx, released: a reader that sees the count sees the time */
    atomic_store_explicit (&port->last_rx, now, memory_order_relaxed);
    atomic_store_explicit (&port->rx,
                           atomic_load_explicit (&port->rx, memory_order_relaxed) + accepted,
                           memory_order_release);
    if (G_UNLIKELY (port->on_rx))
      td_relay_events_on_rx (w, port, s->kind, now);
  }
  /* Settled in this batch (perhaps by a dropped packet that found the
   * learning window over): one byte compared per batch, not per packet. */
  if (G_UNLIKELY (s->state != latch_before) && s->state == LATCH_CLOSED && s->kind == RTP &&
      port->watched)
    td_relay_events_post (w, port, TD_RELAY_EVENT_LATCHED, now, &s->remote);
  if (G_UNLIKELY (port->member)) {
    /* in a mix: its packets go to the mix, never to a peer */
    if (accepted && port->forward)
      td_relay_mix_receive (w, port, s->kind, idx, accepted);
    return;
  }
  if (accepted == 0 || !port->forward || !port->peer)
    return;
  if (G_UNLIKELY (port->peer->play.tune)) {
    /* a peer playing a tune sends the tune, not us, unless we end it */
    guint first = ends_tune (w, port->peer, s->kind, idx, accepted);
    if (first == accepted)
      return;
    td_relay_source_end_by_peer (w, port->peer, now);
    forward_packets (w, port, port->peer, s->kind, idx + first, accepted - first, now);
    return;
  }
  forward_packets (w, port, port->peer, s->kind, idx, accepted, now);
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
  if (port->play.tune)
    td_relay_source_add (w, port);   /* migrated while playing: the tune goes on here */
  td_relay_events_adopt (w, port);
  for (guint k = RTP; k <= RTCP; k++) {
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &port->sock[k] };
    if (port->sock[k].fd >= 0 && epoll_ctl (w->epfd, EPOLL_CTL_ADD, port->sock[k].fd, &ev) < 0)
      g_critical ("relay: epoll_ctl ADD port %u: %s", port->number, g_strerror (errno));
  }
  atomic_store_explicit (&port->owner, w, memory_order_relaxed);
}

/* After this the worker holds no reference to the port: it may migrate or
 * be closed. Runs after this loop iteration's events were handled, so no
 * pending event refers to it either. */
static void
let_go (Worker *w, TdRelayPort *port)
{
  td_relay_mix_leave (w, port);
  unlink_peer (port);
  if (w->idle_cursor == &port->link)
    w->idle_cursor = port->link.next;
  g_queue_unlink (&w->live_ports, &port->link);
  if (port->play.tune)
    td_relay_source_remove (w, port);
  td_relay_events_let_go (w, port);
  for (guint k = RTP; k <= RTCP; k++)
    if (port->sock[k].fd >= 0)
      epoll_ctl (w->epfd, EPOLL_CTL_DEL, port->sock[k].fd, NULL);
  /* Before the ADD that hands it on is queued: the next owner's store must
   * come after this one. */
  atomic_store_explicit (&port->owner, NULL, memory_order_relaxed);
}

/* Migration, the old worker's half: let go, then hand the port on. The
 * queue's lock orders everything this thread wrote to the port before the
 * new worker reads it. */
static void
detach_port (Worker *w, TdRelayPort *port, Worker *to)
{
  Cmd *add = g_new0 (Cmd, 1);

  let_go (w, port);
  add->type = CMD_ADD;
  add->port = port;
  queue_cmd (to, add, FALSE);
}

/* td_relay_port_test_stall(): block like a stalled thread, until `fd` is
 * readable. */
static void
test_stall (int fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };

  while (poll (&pfd, 1, -1) < 0 && errno == EINTR)
    ;
}

/* rtcp-mux: RTCP comes on the RTP socket; the RTCP one goes. Runs between
 * packet batches, so no pending event refers to it. */
static void
drop_rtcp (Worker *w, TdRelayPort *port)
{
  RelaySock *s = &port->sock[RTCP];

  if (s->fd < 0)
    return;
  epoll_ctl (w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
  close (s->fd);
  s->fd = -1;
  s->remote_len = 0;
}

/* The port is gone; its sockets go back to the pool, parked for the next
 * call on the pair unless the relay is going away (`park` FALSE). */
static void
close_port (Worker *w, TdRelayPort *port, gboolean park)
{
  int fds[2] = { port->sock[RTP].fd, port->sock[RTCP].fd };

  let_go (w, port);
  td_relay_pool_put (w->relay, port->pair, fds, park);
  td_tune_unref (port->play.tune);
  td_relay_srtp_clear (port);
  g_free (port);
}

/* A new peer is a new source, even if its stream happens to keep the SSRC
 * of the old one (a transfer between two legs of the same far end). */
static void
restart_forwarded (TdRelayPort *port, TdRelayPort *new_peer)
{
  if (port->peer != new_peer)
    td_rtp_context_restart (&port->ctx, TD_RTP_SOURCE_FORWARD);
}

static void
connect_ports (TdRelayPort *a, TdRelayPort *b)
{
  restart_forwarded (a, b);
  restart_forwarded (b, a);
  unlink_peer (a);
  unlink_peer (b);
  a->peer = b;
  b->peer = a;
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
    detach_port (w, port, cmd->to);
    break;
  case CMD_SET_REMOTE:
    td_relay_latch_set_remote (port, cmd);
    break;
  case CMD_CONNECT:
    connect_ports (port, cmd->other);
    break;
  case CMD_DISCONNECT:
    unlink_peer (port);
    break;
  case CMD_SET_FORWARD:
    port->forward = cmd->flag;
    break;
  case CMD_SET_CLOCK_RATE:
    port->ctx.clock_rate = cmd->rate;
    break;
  case CMD_SET_NEW_SSRC:
    port->ctx.new_ssrc_on_switch = cmd->flag;
    break;
  case CMD_PLAY:
    td_relay_source_play (w, port, cmd);
    break;
  case CMD_STOP:
    td_relay_source_stop (w, port);
    break;
  case CMD_FREE:
    close_port (w, port, TRUE);
    break;
  case CMD_DROP_RTCP:
    drop_rtcp (w, port);
    break;
  case CMD_SET_HOST:
    port->host = cmd->remote[0];
    port->host_len = cmd->remote_len;
    break;
  case CMD_TEST_STALL:
    test_stall (cmd->fd);
    break;
  case CMD_WATCH:
    td_relay_events_watch (w, port, cmd->flag);
    break;
  case CMD_SET_IDLE:
    td_relay_events_set_idle (w, cmd->idle_us);
    break;
  case CMD_MIX_JOIN:
    unlink_peer (port);
    td_relay_mix_join (w, cmd);
    break;
  case CMD_MIX_LEAVE:
    td_relay_mix_leave (w, port);
    break;
  case CMD_MIX_FREE:
    td_relay_mix_destroy (w, cmd->mix);
    break;
  case CMD_SET_SRTP:
    td_relay_srtp_apply (port, cmd);
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

static void
cmd_free (Cmd *cmd)
{
  td_tune_unref (cmd->tune);   /* a CMD_PLAY not applied (none follow QUIT, but still) */
  if (cmd->keys) {
    explicit_bzero (cmd->keys, 2 * TD_SRTP_MAX_KEY);
    g_free (cmd->keys);
  }
  g_free (cmd);
}

static gboolean
touches (const Cmd *cmd, const TdRelayPort *port)
{
  return port && (cmd->port == port || cmd->other == port);
}

/* Can `port`'s part of a command be applied by `w` now? Only if `w` owns it
 * and none of the commands held before this one (the backlog from its head
 * up to `upto`, exclusive) is for it: those come first. */
static gboolean
port_ready (Worker *w, const TdRelayPort *port, GList *upto)
{
  if (atomic_load_explicit (&port->owner, memory_order_relaxed) != w)
    return FALSE;
  for (GList *l = w->backlog.head; l != upto; l = l->next)
    if (touches (l->data, port))
      return FALSE;
  return TRUE;
}

static gboolean
cmd_ready (Worker *w, const Cmd *cmd, GList *upto)
{
  /* "all before me applied": nothing held before it (a mix goes once its
   * members' LEAVEs, perhaps held for a migration, took effect) */
  if (cmd->type == CMD_SYNC || cmd->type == CMD_MIX_FREE)
    return w->backlog.head == upto;
  return (!cmd->port || port_ready (w, cmd->port, upto)) &&
         (!cmd->other || port_ready (w, cmd->other, upto));
}

/* An ADD arrived: apply, in order, what was held for want of it. One pass is
 * enough: only an ADD makes a held command ready. */
static void
replay_backlog (Worker *w)
{
  GList *l = w->backlog.head;

  while (l) {
    GList *next = l->next;
    Cmd *cmd = l->data;

    if (cmd_ready (w, cmd, l)) {
      g_queue_delete_link (&w->backlog, l);
      apply_command (w, cmd);
      cmd_free (cmd);
    }
    l = next;
  }
}

/* Returns FALSE on CMD_QUIT. */
static gboolean
deliver (Worker *w, Cmd *cmd)
{
  gboolean running = TRUE;

  if (cmd->type == CMD_ADD) {
    apply_command (w, cmd);
    if (w->backlog.head)
      replay_backlog (w);
  } else if (cmd->type != CMD_QUIT && !cmd_ready (w, cmd, NULL)) {
    g_queue_push_tail (&w->backlog, cmd);
    return TRUE;
  } else {
    running = apply_command (w, cmd);
  }
  cmd_free (cmd);
  return running;
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
      running = deliver (w, cmd);
    else
      cmd_free (cmd);
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
    gboolean commands = FALSE, tick = FALSE, idle_check = FALSE;
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
      else if (events[i].data.ptr == &w->tfd)
        tick = TRUE;
      else if (events[i].data.ptr == &w->idle_tfd)
        idle_check = TRUE;
      else
        drain_socket (w, events[i].data.ptr);
    }
    if (tick)
      td_relay_source_tick (w);
    if (idle_check)
      td_relay_events_check_idle (w);
    if (commands)
      running = process_commands (w);
    if (w->events->len)
      td_relay_events_flush (w);   /* once per iteration, never per packet */
  }
  while (w->live_ports.head)
    close_port (w, w->live_ports.head->data, FALSE);
  /* Empty: td_relay_free() drained every migration before QUIT. */
  g_queue_clear_full (&w->backlog, (GDestroyNotify) cmd_free);
  return NULL;
}

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

gboolean
td_relay_worker_start (TdRelay *relay, Worker *w, guint index, GError **error)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  struct epoll_event tick = { .events = EPOLLIN, .data.ptr = &w->tfd };
  g_autofree char *name = relay->n_workers == 1 ? g_strdup ("td-relay")
                                                : g_strdup_printf ("td-relay-%u", index);
  GError *thread_error = NULL;

  w->relay = relay;
  w->epfd = epoll_create1 (EPOLL_CLOEXEC);
  w->evfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  w->tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (w->epfd < 0 || w->evfd < 0 || w->tfd < 0 ||
      epoll_ctl (w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0 ||
      epoll_ctl (w->epfd, EPOLL_CTL_ADD, w->tfd, &tick) < 0) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_SYSTEM,
                 "media relay: epoll/eventfd/timerfd: %s", g_strerror (errno));
    goto fail;
  }
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->cond, NULL);
  g_queue_init (&w->commands);
  g_queue_init (&w->live_ports);
  g_queue_init (&w->backlog);
  g_queue_init (&w->playing);
  g_queue_init (&w->mixes);
  if (!td_relay_events_worker_init (w)) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_SYSTEM,
                 "media relay: timerfd: %s", g_strerror (errno));
    pthread_mutex_destroy (&w->lock);
    pthread_cond_destroy (&w->cond);
    goto fail;
  }
  w->buf = g_new0 (Buffers, 1);
  init_buffers (w->buf);
  w->thread = g_thread_try_new (name, worker_thread, w, &thread_error);
  if (!w->thread) {
    g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_SYSTEM,
                 "media relay thread: %s", thread_error->message);
    g_error_free (thread_error);
    pthread_mutex_destroy (&w->lock);
    pthread_cond_destroy (&w->cond);
    td_relay_events_worker_clear (w);
    g_free (w->buf);
    goto fail;
  }
  return TRUE;

fail:
  if (w->epfd >= 0)
    close (w->epfd);
  if (w->evfd >= 0)
    close (w->evfd);
  if (w->tfd >= 0)
    close (w->tfd);
  return FALSE;
}

/* Stops the thread; it closes every port it still owns on its way out. */
void
td_relay_worker_stop (Worker *w)
{
  Cmd *quit = g_new0 (Cmd, 1);

  quit->type = CMD_QUIT;
  td_relay_worker_push (w, quit);
  signal_if_pending (w);
  g_thread_join (w->thread);
  /* QUIT was the main thread's last command, and no worker pushes any more
   * (relay_destroy drained the migrations first). */
  g_assert (g_queue_is_empty (&w->commands));
  close (w->epfd);
  close (w->evfd);
  close (w->tfd);
  td_relay_events_worker_clear (w);
  pthread_mutex_destroy (&w->lock);
  pthread_cond_destroy (&w->cond);
  g_free (w->buf);
}
