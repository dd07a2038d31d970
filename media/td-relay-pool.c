/* The relay's port pool: which RTP/RTCP pairs of the range are free, in use
 * or cooling down, and the sockets of the pairs not in use.
 *
 * A freed pair keeps its sockets: binding a pair costs the SIP thread four
 * syscalls per socket (socket, bind, two buffer sizes), reusing one costs
 * one. So that nothing of the old call reaches the next one, the media
 * thread that closes a port parks its sockets: each is connected to itself
 * (the kernel then refuses every packet from anyone else, as for a closed
 * port), then what was already queued is read and thrown away. The next
 * port on the pair disconnects them; the pair still cools down first
 * (COOL_US) while others are free. A parked socket queues nothing, so a
 * stream sprayed at a free port costs no memory.
 *
 * Main thread, except td_relay_pool_put (the media thread closing a port)
 * and the fields under pool_lock. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay-private.h"

#include <errno.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

/* Per-socket kernel buffers (the kernel doubles them for bookkeeping): enough
 * to absorb a ~100 ms stall of the media thread on a 10 Mbit/s video stream,
 * hundreds of ms of audio; the memory is only charged while packets wait. */
#define SOCKET_BUFFER (128 * 1024)
/* A freed pair is not handed out again for this long while others are free:
 * late packets of the old call must not reach the next one. */
#define COOL_US (5 * G_USEC_PER_SEC)
/* Pairs whose parked sockets are closed when the process runs out of
 * descriptors: room for a few calls, not a sweep of the pool. */
#define EVICT_BATCH 16

typedef struct {
  guint pair;
  gint64 until;
} Cooling;

/* A pair a media thread has let go of, with its parked sockets (-1: none). */
typedef struct {
  guint pair;
  int fd[2];
} Released;

void
td_relay_pool_init (TdRelay *relay)
{
  struct rlimit rl;

  relay->free_pairs = g_new (guint, relay->n_pairs);
  for (guint i = 0; i < relay->n_pairs; i++)
    relay->free_pairs[i] = i;
  relay->n_free = relay->n_pairs;
  relay->parked = g_new (int, 2 * relay->n_pairs);
  for (guint i = 0; i < 2 * relay->n_pairs; i++)
    relay->parked[i] = -1;
  relay->released = g_array_new (FALSE, FALSE, sizeof (Released));
  g_queue_init (&relay->cooling);
  pthread_mutex_init (&relay->pool_lock, NULL);
  /* Parked sockets are file descriptors too: a quarter of the limit at
   * most (an eighth of it in pairs), and a port that finds no descriptor
   * left closes some (evict_parked). */
  relay->max_parked = relay->n_pairs;
  /* Connecting a socket bound to the wildcard address would bind it to the
   * connected route's address: such a relay closes its sockets instead. */
  if (addr_is_any (&relay->address))
    relay->max_parked = 0;
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    relay->max_parked = MIN (relay->max_parked, (guint) MIN (rl.rlim_cur / 8, G_MAXUINT));
}

static void
close_fds (int fd[2])
{
  for (guint k = RTP; k <= RTCP; k++)
    if (fd[k] >= 0)
      close (fd[k]);
}

/* After the workers stopped: every socket the pool still holds is closed. */
void
td_relay_pool_clear (TdRelay *relay)
{
  for (guint i = 0; i < relay->released->len; i++)
    close_fds (g_array_index (relay->released, Released, i).fd);
  for (guint i = 0; i < 2 * relay->n_pairs; i++)
    if (relay->parked[i] >= 0)
      close (relay->parked[i]);
  pthread_mutex_destroy (&relay->pool_lock);
  g_array_unref (relay->released);
  g_queue_clear_full (&relay->cooling, g_free);
  g_free (relay->parked);
  g_free (relay->free_pairs);
}

/* ---- parking (media thread) ---- */

/* Reads and drops whatever waits in `fd`'s queue. */
static void
drop_queued (int fd)
{
  struct mmsghdr msgs[BATCH];
  guint8 byte;
  struct iovec iov = { &byte, 1 };   /* truncated: the packets are thrown away */

  for (guint i = 0; i < BATCH; i++)
    msgs[i].msg_hdr = (struct msghdr) { .msg_iov = &iov, .msg_iovlen = 1 };
  for (guint round = 0; round < 1024; round++)   /* bounded: the queue is */
    if (recvmmsg (fd, msgs, BATCH, MSG_DONTWAIT, NULL) < BATCH)
      return;
}

/* Connected to itself, a UDP socket accepts only what it sends itself,
 * which is nothing: the kernel answers everyone else as for a closed port. */
static gboolean
park_socket (TdRelay *relay, int fd, guint16 number)
{
  Addr self = relay->address;

  addr_set_port (&self, number);
  if (connect (fd, &self.sa, relay->address_len) < 0)
    return FALSE;
  drop_queued (fd);   /* after the connect: nothing can come in behind it */
  return TRUE;
}

/* The media thread that owned a port is done with its sockets: park them
 * for the next call on this pair, or close them (`park` FALSE, the limit
 * reached, or a connect failed). Hands the pair back either way. */
void
td_relay_pool_put (TdRelay *relay, guint pair, const int fds[2], gboolean park)
{
  Released r = { pair, { fds[RTP], fds[RTCP] } };

  if (park && atomic_fetch_add (&relay->n_parked, 1) >= relay->max_parked) {
    atomic_fetch_sub (&relay->n_parked, 1);
    park = FALSE;
  }
  if (park && (!park_socket (relay, r.fd[RTP], relay->first_port + 2 * pair) ||
               (r.fd[RTCP] >= 0 && !park_socket (relay, r.fd[RTCP],
                                                 relay->first_port + 2 * pair + 1)))) {
    atomic_fetch_sub (&relay->n_parked, 1);
    park = FALSE;
  }
  if (!park) {
    close_fds (r.fd);
    r.fd[RTP] = r.fd[RTCP] = -1;
  }
  pthread_mutex_lock (&relay->pool_lock);
  g_array_append_val (relay->released, r);
  pthread_mutex_unlock (&relay->pool_lock);
}

/* ---- the pool (main thread) ---- */

/* Pairs the workers have let go of cool down, then go back to the pool. */
static void
reclaim_released (TdRelay *relay)
{
  gint64 now = g_get_monotonic_time ();
  Cooling *c;

  pthread_mutex_lock (&relay->pool_lock);
  for (guint i = 0; i < relay->released->len; i++) {
    Released *r = &g_array_index (relay->released, Released, i);

    relay->parked[2 * r->pair + RTP] = r->fd[RTP];
    relay->parked[2 * r->pair + RTCP] = r->fd[RTCP];
    relay->n_in_use--;
    c = g_new (Cooling, 1);
    *c = (Cooling) { r->pair, now + COOL_US };
    g_queue_push_tail (&relay->cooling, c);
  }
  g_array_set_size (relay->released, 0);
  pthread_mutex_unlock (&relay->pool_lock);
  while ((c = g_queue_peek_head (&relay->cooling)) && c->until <= now) {
    g_queue_pop_head (&relay->cooling);
    relay->free_pairs[relay->n_free++] = c->pair;
    g_free (c);
  }
}

guint
td_relay_port_count (TdRelay *relay)
{
  reclaim_released (relay);
  return relay->n_in_use;
}

guint
td_relay_parked_count (TdRelay *relay)
{
  return atomic_load (&relay->n_parked);
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

/* Out of descriptors: closes the parked sockets of up to `max` pairs, from
 * where the last eviction stopped. Returns how many pairs it closed. */
static guint
evict_parked (TdRelay *relay, guint max)
{
  guint closed = 0;

  for (guint seen = 0; seen < relay->n_pairs && closed < max; seen++) {
    guint pair = relay->evict_cursor;
    int *parked = &relay->parked[2 * pair];

    relay->evict_cursor = (pair + 1) % relay->n_pairs;
    if (parked[RTP] < 0 && parked[RTCP] < 0)
      continue;
    close_fds (parked);
    parked[RTP] = parked[RTCP] = -1;
    atomic_fetch_sub (&relay->n_parked, 1);
    closed++;
  }
  return closed;
}

/* A socket bound to `number`, making room among the parked ones if the
 * process has no descriptor left. -1 with errno set. */
static int
new_socket (TdRelay *relay, guint16 number)
{
  int fd = open_socket (relay, number);

  if (fd < 0 && (errno == EMFILE || errno == ENFILE) && evict_parked (relay, EVICT_BATCH))
    fd = open_socket (relay, number);
  return fd;
}

/* The parked socket of `pair`'s `kind`, disconnected, or a new one.
 * -1 with errno set. */
static int
take_socket (TdRelay *relay, guint pair, guint kind)
{
  int *parked = &relay->parked[2 * pair + kind];
  int fd = *parked;
  struct sockaddr unspec = { .sa_family = AF_UNSPEC };

  if (fd < 0)
    return new_socket (relay, relay->first_port + 2 * pair + kind);
  *parked = -1;
  if (connect (fd, &unspec, sizeof unspec) < 0) {   /* disconnect: hears everyone again */
    int saved = errno;
    close (fd);
    errno = saved;
    return -1;
  }
  return fd;
}

/* Both sockets of pair `pair`, parked or bound now. FALSE with errno set;
 * the pair's parked sockets are closed then. */
static gboolean
take_sockets (TdRelay *relay, guint pair, int fds[2])
{
  int *parked = &relay->parked[2 * pair];
  int saved;

  if (parked[RTP] >= 0 || parked[RTCP] >= 0)
    atomic_fetch_sub (&relay->n_parked, 1);
  fds[RTP] = take_socket (relay, pair, RTP);
  if (fds[RTP] >= 0) {
    fds[RTCP] = take_socket (relay, pair, RTCP);
    if (fds[RTCP] >= 0)
      return TRUE;
  }
  saved = errno;
  if (fds[RTP] >= 0)
    close (fds[RTP]);
  if (parked[RTCP] >= 0)
    close (parked[RTCP]);
  parked[RTCP] = -1;
  errno = saved;
  return FALSE;
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
  port->latching = relay->latching;
  port->nat_delay_us = relay->nat_delay_us;
  port->window_us = relay->window_us;
  td_rtp_context_init (&port->ctx);
  for (guint k = RTP; k <= RTCP; k++) {
    port->sock[k].fd = fds[k];
    port->sock[k].kind = k;
    port->sock[k].state = LATCH_OPEN;
    port->sock[k].port = port;
  }
  port->worker = choose_worker (relay);
  port->worker->n_ports++;
  td_relay_events_port_new (relay, port);
  return port;
}

/* Unpredictable numbers for the port choice: not GLib's Mersenne Twister,
 * whose state can be reconstructed from its outputs (SSRCs are visible).
 * Drawn from the kernel a block at a time, not a syscall per number. */
static guint32
secure_random (TdRelay *relay)
{
  if (relay->n_random == 0) {
    if (getrandom (relay->random, sizeof relay->random, GRND_NONBLOCK) != sizeof relay->random)
      return g_random_int ();   /* entropy pool not ready (early boot): still random */
    relay->n_random = G_N_ELEMENTS (relay->random);
  }
  return relay->random[--relay->n_random];
}

/* `pair` as a new port; NULL with *error set on a hard failure, NULL
 * without it when another process holds the pair. */
static TdRelayPort *
take_pair (TdRelay *relay, guint pair, guint *busy, GError **error)
{
  int fds[2];
  TdRelayPort *port;

  if (!take_sockets (relay, pair, fds)) {
    if (errno == EADDRINUSE || errno == EACCES) {
      (*busy)++;   /* another process holds it: try the next pair */
      return NULL;
    }
    g_set_error (error, TD_RELAY_ERROR,
                 errno == EADDRNOTAVAIL ? TD_RELAY_ERROR_ADDRESS : TD_RELAY_ERROR_SYSTEM,
                 "media port %u: %s", relay->first_port + 2 * pair, g_strerror (errno));
    return NULL;
  }
  relay->n_in_use++;
  port = new_port (relay, pair, fds);
  td_relay_worker_send (port->worker, CMD_ADD, port, NULL, FALSE);
  return port;
}

/* The pair at `i` of the free list is no longer free. */
static void
unlist_free (TdRelay *relay, guint i)
{
  relay->free_pairs[i] = relay->free_pairs[--relay->n_free];
}

TdRelayPort *
td_relay_port_alloc (TdRelay *relay, GError **error)
{
  guint busy = 0;
  TdRelayPort *port;
  Cooling *c;

  g_return_val_if_fail (relay, NULL);
  reclaim_released (relay);
  /* A free pair at random, so that the next one cannot be guessed from the
   * last ones. The pairs tried and found held by another process are moved
   * behind `untried`: each free pair is tried once. */
  for (guint untried = relay->n_free; untried > 0; untried--) {
    guint i = secure_random (relay) % untried, pair = relay->free_pairs[i];

    relay->free_pairs[i] = relay->free_pairs[untried - 1];
    relay->free_pairs[untried - 1] = pair;
    port = take_pair (relay, pair, &busy, error);
    if (port)
      unlist_free (relay, untried - 1);
    if (port || (error && *error))
      return port;
  }
  /* Nothing free but pairs still cooling down: the oldest first. */
  while ((c = g_queue_pop_head (&relay->cooling))) {
    guint pair = c->pair;

    g_free (c);
    if ((port = take_pair (relay, pair, &busy, error)))
      return port;
    relay->free_pairs[relay->n_free++] = pair;   /* held by another process */
    if (error && *error)
      return NULL;
  }
  g_set_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_EXHAUSTED,
               "media port range %u-%u exhausted: all %u RTP/RTCP pairs in use "
               "(%u by tandem, %u by other sockets)",
               relay->first_port, relay->first_port + 2 * relay->n_pairs - 1,
               relay->n_pairs, relay->n_in_use, busy);
  return NULL;
}
