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
 * the struct itself, untouched.
 *
 * Outgoing context and playout: each port stamps what leaves its RTP socket
 * with its own SSRC/seq/timestamp (TxContext), whether the packet was
 * forwarded from its peer or generated from a tune; a source change is
 * noticed on the packet path itself (a different source or incoming SSRC
 * than the last packet's), so the switch needs no command and costs one
 * compare per packet. Tunes are played by the port's worker from one timerfd
 * per worker, armed only while one of its ports plays; a playing port
 * migrates with its playout state like with its latching state. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
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
/* Tune playout: one 20 ms G.711 frame per tick. */
#define TICK_NS (20 * 1000 * 1000)
/* A worker more than this many ticks late (a stalled thread or VM) skips the
 * frames it missed instead of sending them in one burst. */
#define RESYNC_TICKS 5
#define DEFAULT_CLOCK_RATE 8000
#define RTP_HEADER 12
#define RTP_MARKER 0x80
/* A freed pair is not handed out again for this long while others are free:
 * late packets of the old call must not reach the next one. */
#define COOL_US (5 * G_USEC_PER_SEC)

enum { RTP, RTCP };

/* What a port's outgoing RTP stream is carrying right now. */
enum { SRC_NONE, SRC_FORWARD, SRC_TUNE };

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} Addr;

typedef struct _Worker Worker;

/* Where a socket is in latching (see TdRelayLatching in td-relay.h). */
typedef enum {
  LATCH_OPEN,          /* learning: the announced address wins, strangers wait */
  LATCH_PROVISIONAL,   /* a stranger was learned (NAT); the announced address may still win */
  LATCH_CLOSED,        /* only `remote` is accepted */
} LatchState;

/* One UDP socket of a port; worker state except `port` (`fd` is set by the
 * main thread before the port reaches its worker). */
typedef struct {
  int fd;                 /* -1: closed (RTCP under rtcp-mux) */
  guint8 kind;            /* RTP or RTCP */
  guint8 state;           /* LatchState */
  socklen_t remote_len;   /* 0: nowhere to send */
  Addr remote;            /* the announced address, replaced by the latched source */
  socklen_t announced_len;   /* 0: nothing announced yet */
  Addr announced;         /* the SDP's address:port for this socket */
  gint64 silent_since;    /* PREFER_SDP: since when the announced address owes us a packet */
  gint64 host_since;      /* PREFER_SDP: first packet from the trusted host... */
  gint64 host_last;       /* ...and the latest one */
  gint64 provisional_until;
  TdRelayPort *port;
} RelaySock;

/* The port's outgoing RTP identity (worker state). Each source (a forwarded
 * stream, identified by its SSRC, or a tune) is mapped onto it by fixed
 * offsets chosen when the source starts (ctx_switch). */
typedef struct {
  gboolean started;          /* something was stamped: ssrc and last_* are valid */
  guint8 source;             /* SRC_*; SRC_NONE: the next packet starts a new source */
  guint32 source_ssrc;       /* SRC_FORWARD: the incoming stream's SSRC */
  guint16 seq_off;           /* added to the source's own seq... */
  guint32 ts_off;            /* ...and timestamp */
  guint32 ssrc;
  guint16 last_seq;          /* the highest sequence number sent */
  guint32 last_ts;           /* that packet's timestamp */
  gint64 last_us;            /* when the last RTP packet was stamped */
  guint32 clock_rate;
  gboolean new_ssrc_on_switch;
} TxContext;

/* A tune being played (worker state): a virtual RTP source whose seq counts
 * the frames sent and whose ts counts the frames due, sent or not, so the
 * timestamp keeps real time while there is nowhere to send. */
typedef struct {
  TdTune *tune;              /* NULL: not playing */
  TdCodec codec;             /* the tune's frames in this law... */
  guint8 pt;                 /* ...sent with the payload type the SDP gave it */
  guint frame;               /* next frame of the tune */
  guint16 seq;
  guint32 ts;
  GList link;                /* in its worker's `playing` while tune != NULL */
} Playout;

struct _TdRelayPort {
  TdRelay *relay;
  guint16 number;         /* RTP port; immutable */
  guint pair;             /* index in the relay's pool; immutable */
  Worker *worker;         /* main thread only: where its commands go */
  /* The worker that owns the port now, NULL while it is handed over.
   * Written only by the owning worker (on ADD, and when it lets go); other
   * workers read it only to see that it is not theirs. */
  _Atomic (Worker *) owner;
  GList link;             /* in its worker's live_ports */
  RelaySock sock[2];
  TdRelayPort *peer;      /* worker; always on the same worker */
  gboolean forward;       /* worker */
  /* immutable, copied from the relay at allocation */
  TdRelayLatching latching;
  gint64 nat_delay_us, window_us;
  socklen_t host_len;     /* worker: 0 = no signalling host known */
  Addr host;              /* worker: where the endpoint's SIP comes from (port 0) */
  TxContext ctx;          /* worker */
  Playout play;           /* worker */
  gboolean playing;       /* main thread's view of play.tune != NULL */
  /* Written by the owning worker only (load + store, no locked instruction),
   * read relaxed by the main thread. */
  _Atomic guint64 rx, tx, foreign, other, tx_errors, generated;
  _Atomic gint64 last_rx;
};

typedef enum {
  CMD_ADD, CMD_DETACH, CMD_SET_REMOTE, CMD_CONNECT, CMD_DISCONNECT, CMD_SET_FORWARD,
  CMD_SET_CLOCK_RATE, CMD_SET_NEW_SSRC, CMD_PLAY, CMD_STOP, CMD_FREE, CMD_SYNC, CMD_QUIT,
  CMD_DROP_RTCP, CMD_SET_HOST, CMD_TEST_STALL,
} CmdType;

typedef struct {
  CmdType type;
  TdRelayPort *port, *other;
  gboolean flag;
  guint32 rate;                /* CMD_SET_CLOCK_RATE */
  TdTune *tune;                /* CMD_PLAY: a reference, handed to the port */
  TdCodec codec;               /* CMD_PLAY */
  guint8 pt;                   /* CMD_PLAY */
  guint64 seq;                 /* CMD_SYNC */
  Worker *to;                  /* CMD_DETACH: where the port goes */
  int fd;                      /* CMD_TEST_STALL */
  socklen_t remote_len;        /* CMD_SET_REMOTE, CMD_SET_HOST; 0 = none */
  Addr remote[2];              /* CMD_SET_REMOTE, RTP and RTCP; CMD_SET_HOST: [0] */
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
  int epfd, evfd, tfd;         /* immutable; tfd: the playout timer */
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
  GQueue backlog;              /* Cmd* held for ports not (yet) ours, in order */
  GQueue playing;              /* TdRelayPort* via port->play.link */
  gboolean ticking;            /* tfd armed */
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
  guint8 *in_use;              /* per pair: PairState */
  guint n_in_use;
  GQueue cooling;              /* Cooling*, oldest first */
  TdRelayLatching latching;    /* for new ports */
  gint64 nat_delay_us, window_us;
  guint n_allocs;
  Worker *pair_worker;         /* where the second of an allocation pair goes */

  /* shared, under `pool_lock` */
  pthread_mutex_t pool_lock;
  GArray *released;            /* guint pair indices closed by the workers */
};

typedef enum { PAIR_FREE, PAIR_USED, PAIR_COOLING } PairState;

typedef struct {
  guint pair;
  gint64 until;
} Cooling;

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
   * and signals again. */
  if (was_empty && write (w->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
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

/* Pairs the workers have closed cool down, then go back to the pool. */
static void
reclaim_released (TdRelay *relay)
{
  gint64 now = g_get_monotonic_time ();
  Cooling *c;

  pthread_mutex_lock (&relay->pool_lock);
  for (guint i = 0; i < relay->released->len; i++) {
    guint pair = g_array_index (relay->released, guint, i);
    g_assert (relay->in_use[pair] == PAIR_USED);
    relay->in_use[pair] = PAIR_COOLING;
    relay->n_in_use--;
    c = g_new (Cooling, 1);
    *c = (Cooling) { pair, now + COOL_US };
    g_queue_push_tail (&relay->cooling, c);
  }
  g_array_set_size (relay->released, 0);
  pthread_mutex_unlock (&relay->pool_lock);
  while ((c = g_queue_peek_head (&relay->cooling)) && c->until <= now) {
    g_queue_pop_head (&relay->cooling);
    relay->in_use[c->pair] = PAIR_FREE;
    g_free (c);
  }
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

static inline void
latch (RelaySock *s, const Addr *src, LatchState state)
{
  s->remote = *src;
  s->remote_len = src->sa.sa_family == AF_INET ? sizeof src->in : sizeof src->in6;
  s->state = state;
}

/* Same host, whatever the port. */
static inline gboolean
addr_same_host (const Addr *a, const Addr *b)
{
  if (a->sa.sa_family != b->sa.sa_family)
    return FALSE;
  if (a->sa.sa_family == AF_INET)
    return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
  return memcmp (&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr) == 0;
}

/* PREFER_SDP's order of sources, best last: a better one always takes a
 * provisional latch over from a worse one. */
typedef enum {
  RANK_ANY,         /* anyone: learnable on RTP only, and only when nobody better speaks */
  RANK_HOST,        /* the socket's trusted host (trusted_host), any port */
  RANK_ANNOUNCED,   /* the SDP's address:port */
} SourceRank;

/* The host whose packets may be the phone behind NAT. RTP: where its SIP
 * comes from (a NATed phone's RTP leaves by the router its SIP leaves by).
 * RTCP: the host RTP latched to, once it has — phones send their first RTCP
 * seconds into the call, long after a stranger spraying the RTCP port would
 * have been learned by a clock; RTCP belongs to whoever owns the RTP. */
static inline const Addr *
trusted_host (const RelaySock *s)
{
  const TdRelayPort *port = s->port;
  const RelaySock *rtp = &port->sock[RTP];

  if (s->kind == RTCP && rtp->state != LATCH_OPEN && rtp->remote_len)
    return &rtp->remote;
  return port->host_len ? &port->host : NULL;
}

static inline SourceRank
source_rank (const RelaySock *s, const Addr *src)
{
  const Addr *host;

  if (s->announced_len && addr_equal (src, &s->announced))
    return RANK_ANNOUNCED;
  host = trusted_host (s);
  return host && addr_same_host (src, host) ? RANK_HOST : RANK_ANY;
}

/* PREFER_SDP, learning: may this source be the phone behind NAT, learned
 * now (provisionally)? */
static inline gboolean
nat_learnable (RelaySock *s, SourceRank rank, gint64 now)
{
  TdRelayPort *port = s->port;

  if (rank == RANK_HOST) {
    if (!s->host_since)
      s->host_since = now;
    s->host_last = now;
    /* RTCP's host is RTP's latch, which has already waited. */
    return s->kind == RTCP || now - s->host_since >= port->nat_delay_us;
  }
  if (s->kind == RTCP)
    return FALSE;
  /* Anyone, but never while the signalling host is speaking: it is the
   * phone, and a stranger spraying since before the call would win the
   * race to the first packet after the delay. */
  if (s->host_last && now - s->host_last < port->nat_delay_us)
    return FALSE;
  if (!s->announced_len && !s->silent_since)
    s->silent_since = now;   /* nothing to wait for: count from this packet */
  return s->silent_since && now - s->silent_since >= port->nat_delay_us;
}

/* Latching and RTP Bleed protection (TdRelayLatching): which sources a
 * socket accepts, and whom it learns as its remote. Garbage never latches. */
static inline gboolean
accept_packet (RelaySock *s, const Addr *src, const guint8 *data, gsize len, int flags,
               gint64 now)
{
  TdRelayPort *port = s->port;
  SourceRank rank;

  if (s->state == LATCH_PROVISIONAL && now >= s->provisional_until)
    s->state = LATCH_CLOSED;
  if (s->state == LATCH_CLOSED) {
    if (!addr_equal (src, &s->remote))
      goto foreign;
    if (!plausible (s->kind, data, len, flags))
      goto other;
    return TRUE;
  }
  if (!plausible (s->kind, data, len, flags))
    goto other;
  if (port->latching == TD_RELAY_LATCH_FIRST_PACKET) {
    latch (s, src, LATCH_CLOSED);
    return TRUE;
  }
  if (s->state == LATCH_PROVISIONAL && addr_equal (src, &s->remote))
    return TRUE;
  rank = source_rank (s, src);
  if (rank == RANK_ANNOUNCED) {
    latch (s, src, LATCH_CLOSED);   /* the phone itself, at once or after all */
    return TRUE;
  }
  if (port->latching == TD_RELAY_LATCH_SDP_ONLY)
    goto foreign;
  if (s->state == LATCH_PROVISIONAL) {
    /* A better source takes over, within the same window. */
    if (rank > source_rank (s, &s->remote)) {
      latch (s, src, LATCH_PROVISIONAL);
      return TRUE;
    }
    goto foreign;
  }
  /* LATCH_OPEN */
  if (nat_learnable (s, rank, now)) {
    latch (s, src, LATCH_PROVISIONAL);
    s->provisional_until = now + port->window_us;
    return TRUE;
  }
foreign:
  stat_add (&port->foreign, 1);
  return FALSE;
other:
  stat_add (&port->other, 1);
  return FALSE;
}

/* RTP left `port` for its announced address: from now on, that address owes
 * us packets (PREFER_SDP's NAT wait for "anyone" starts). RTP only: RTCP
 * never learns "anyone" (trusted_host). */
static inline void
note_sending (TdRelayPort *port, gint64 now)
{
  RelaySock *s = &port->sock[RTP];

  if (G_UNLIKELY (s->state == LATCH_OPEN && s->announced_len && !s->silent_since))
    s->silent_since = now;
}

/* ---- the outgoing RTP context (worker thread) ---- */

static inline guint16
get16 (const guint8 *p)
{
  return (guint16) (p[0] << 8 | p[1]);
}

static inline guint32
get32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

static inline void
put16 (guint8 *p, guint16 v)
{
  p[0] = (guint8) (v >> 8);
  p[1] = (guint8) v;
}

static inline void
put32 (guint8 *p, guint32 v)
{
  p[0] = (guint8) (v >> 24);
  p[1] = (guint8) (v >> 16);
  p[2] = (guint8) (v >> 8);
  p[3] = (guint8) v;
}

static guint32
fresh_ssrc (guint32 old)
{
  guint32 ssrc;

  do
    ssrc = g_random_int ();
  while (ssrc == old);
  return ssrc;
}

/* A new source starts with its packet (in_seq, in_ts): fix the offsets that
 * make it continue the port's stream, seq = last + 1 and timestamp = last +
 * the real time since the last packet. Returns TRUE for a switch (the caller
 * sets the marker); FALSE for the port's first stream, which keeps its own
 * identity if forwarded (nothing to continue; the receiver sees the sender's
 * stream untouched) and gets a random one if it is a tune (RFC 3550). */
static gboolean
ctx_switch (TxContext *c, guint8 source, guint32 in_ssrc, guint16 in_seq, guint32 in_ts,
            gint64 now)
{
  gboolean switched = c->started;
  guint16 seq;
  guint32 ts;

  if (!switched) {
    gboolean fwd = source == SRC_FORWARD;
    c->ssrc = fwd ? in_ssrc : g_random_int ();
    seq = fwd ? in_seq : (guint16) g_random_int ();
    ts = fwd ? in_ts : g_random_int ();
    c->started = TRUE;
  } else {
    seq = c->last_seq + 1;
    /* The new source's clock: a tune's is G.711's, a forwarded stream's the
     * rtpmap's (td_relay_port_set_clock_rate). */
    guint32 rate = source == SRC_TUNE ? TD_TUNE_RATE : c->clock_rate;
    guint32 elapsed = (guint32) ((now - c->last_us) * (gint64) rate / G_USEC_PER_SEC);
    /* The last packet's audio lasts a frame (20 ms): a source that starts
     * sooner after it (the caller's packet a few µs after a tune frame) must
     * not overlap it, or the receiver plays two frames at one instant. */
    ts = c->last_ts + MAX (elapsed, rate / 50);
    if (c->new_ssrc_on_switch)
      c->ssrc = fresh_ssrc (c->ssrc);
  }
  c->source = source;
  c->source_ssrc = in_ssrc;
  c->seq_off = (guint16) (seq - in_seq);
  c->ts_off = ts - in_ts;
  c->last_seq = seq - 1;   /* so that ctx_stamp takes this packet as the newest */
  return switched;
}

/* Maps one packet of the current source onto the port's stream. */
static inline void
ctx_stamp (TxContext *c, guint16 *seq, guint32 *ts, gint64 now)
{
  *seq += c->seq_off;
  *ts += c->ts_off;
  /* A late (reordered) packet does not move the end the next switch continues from. */
  if ((gint16) (*seq - c->last_seq) > 0) {
    c->last_seq = *seq;
    c->last_ts = *ts;
  }
  c->last_us = now;
}

/* Rewrites a forwarded packet's SSRC/seq/timestamp in place. RTCP is not
 * touched, neither on its own socket nor multiplexed here (RFC 5761): after
 * a switch the SSRC in a forwarded SR no longer matches the RTP it describes,
 * and its RTP timestamp is in the old source's time base. Receivers use SRs
 * for lip sync and statistics only; fine for now. */
static inline void
stamp_forwarded (TxContext *c, guint8 *p, gint64 now)
{
  guint32 in_ssrc, ts;
  guint16 seq;

  if (p[1] >= 192 && p[1] <= 223)
    return;   /* RTCP multiplexed on the RTP port */
  in_ssrc = get32 (p + 8);
  seq = get16 (p + 2);
  ts = get32 (p + 4);
  if (G_UNLIKELY (c->source != SRC_FORWARD || c->source_ssrc != in_ssrc) &&
      ctx_switch (c, SRC_FORWARD, in_ssrc, seq, ts, now))
    p[1] |= RTP_MARKER;
  ctx_stamp (c, &seq, &ts, now);
  put16 (p + 2, seq);
  put32 (p + 4, ts);
  put32 (p + 8, c->ssrc);
}

/* The one forwarding path: packets `idx[0..n)` of the worker's buffers,
 * received on `src`, go out of `dst`'s socket of the same kind to dst's
 * remote, RTP stamped with dst's outgoing context (SRTP would go here too). */
static void
forward_packets (Worker *w, TdRelayPort *src, TdRelayPort *dst, guint kind,
                 const guint *idx, guint n, gint64 now)
{
  Buffers *b = w->buf;
  RelaySock *out = &dst->sock[kind];
  guint sent = 0, errors = 0;

  if (out->remote_len == 0 || out->fd < 0)
    return;   /* nowhere to send yet (no SDP, not latched), or RTCP under rtcp-mux */
  if (kind == RTP) {
    for (guint i = 0; i < n; i++)
      stamp_forwarded (&dst->ctx, b->data[idx[i]], now);
    note_sending (dst, now);
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

/* Filters one received batch, then forwards what passed in one go (all of it
 * goes to the same destination, so sendmmsg applies). */
static void
handle_batch (Worker *w, RelaySock *s, guint n)
{
  Buffers *b = w->buf;
  TdRelayPort *port = s->port;
  guint idx[BATCH], accepted = 0;
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++) {
    if (accept_packet (s, &b->src[i], b->data[i], b->rx[i].msg_len, b->rx[i].msg_hdr.msg_flags,
                       now))
      idx[accepted++] = i;
  }
  if (accepted == 0)
    return;
  /* last_rx before rx, released: a reader that sees the count sees the time */
  atomic_store_explicit (&port->last_rx, now, memory_order_relaxed);
  atomic_store_explicit (&port->rx, atomic_load_explicit (&port->rx, memory_order_relaxed) + accepted,
                         memory_order_release);
  /* a peer playing a tune sends the tune, not us */
  if (port->forward && port->peer && !port->peer->play.tune)
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

/* ---- tune playout (worker thread) ---- */

/* The header of the tune's next packet, under the port's outgoing context. */
static void
stamp_tune (TdRelayPort *port, guint8 hdr[RTP_HEADER], gint64 now)
{
  TxContext *c = &port->ctx;
  guint16 seq = port->play.seq++;
  guint32 ts = port->play.ts;

  hdr[0] = 0x80;
  hdr[1] = port->play.pt;
  if (c->source != SRC_TUNE && ctx_switch (c, SRC_TUNE, 0, seq, ts, now))
    hdr[1] |= RTP_MARKER;
  ctx_stamp (c, &seq, &ts, now);
  put16 (hdr + 2, seq);
  put32 (hdr + 4, ts);
  put32 (hdr + 8, c->ssrc);
}

/* Sends the tune's next frame out of `port`, if it has somewhere to send,
 * and advances the tune by one frame either way. */
static void
send_tune_frame (TdRelayPort *port, gint64 now)
{
  Playout *pl = &port->play;
  RelaySock *out = &port->sock[RTP];

  if (out->remote_len) {
    guint8 hdr[RTP_HEADER];
    /* The payload goes straight from the tune: sendmsg only reads it. */
    struct iovec iov[2] = {
      { hdr, sizeof hdr },
      { (void *) td_tune_frame (pl->tune, pl->codec, pl->frame), TD_TUNE_FRAME_BYTES },
    };
    struct msghdr msg = {
      .msg_name = &out->remote, .msg_namelen = out->remote_len, .msg_iov = iov, .msg_iovlen = 2,
    };

    stamp_tune (port, hdr, now);
    note_sending (port, now);
    if (sendmsg (out->fd, &msg, 0) >= 0) {
      stat_add (&port->tx, 1);
      stat_add (&port->generated, 1);
    } else {
      stat_add (&port->tx_errors, 1);
    }
  }
  pl->frame++;
  pl->ts += TD_TUNE_FRAME_SAMPLES;
}

/* `due` ticks have passed since the last one handled (the timerfd counts
 * them on its absolute 20 ms grid, so the rate never drifts): send that many
 * frames, or, when the worker fell behind by more than RESYNC_TICKS, only
 * the current one, the tune and its timestamps jumping to now as after
 * packet loss rather than bursting 100+ ms of audio into the receiver. */
static void
play_frames (TdRelayPort *port, guint64 due, gint64 now)
{
  if (due > RESYNC_TICKS) {
    port->play.frame += (guint) (due - 1);
    port->play.ts += (guint32) (due - 1) * TD_TUNE_FRAME_SAMPLES;
    due = 1;
  }
  while (due--)
    send_tune_frame (port, now);
}

static void
play_tick (Worker *w)
{
  guint64 due;
  gint64 now;

  if (read (w->tfd, &due, sizeof due) != sizeof due)
    return;   /* disarmed after epoll reported it: nothing is due */
  now = g_get_monotonic_time ();
  for (GList *l = w->playing.head; l; l = l->next)
    play_frames (l->data, due, now);
}

/* The timer runs only while a port plays: an idle relay never wakes up. */
static void
set_ticking (Worker *w, gboolean on)
{
  /* it_value: the first tick at once (a new tune starts without waiting),
   * then the kernel keeps the 20 ms period on its own absolute schedule. */
  struct itimerspec its = {
    .it_value.tv_nsec = on ? 1 : 0,
    .it_interval.tv_nsec = on ? TICK_NS : 0,
  };

  if (on == w->ticking)
    return;
  if (timerfd_settime (w->tfd, 0, &its, NULL) < 0)
    g_critical ("relay: timerfd_settime: %s", g_strerror (errno));
  w->ticking = on;
}

static void
playing_add (Worker *w, TdRelayPort *port)
{
  port->play.link.data = port;
  g_queue_push_tail_link (&w->playing, &port->play.link);
  set_ticking (w, TRUE);
}

static void
playing_remove (Worker *w, TdRelayPort *port)
{
  g_queue_unlink (&w->playing, &port->play.link);
  if (g_queue_is_empty (&w->playing))
    set_ticking (w, FALSE);
}

/* Takes over the command's tune reference. */
static void
start_tune (Worker *w, TdRelayPort *port, Cmd *cmd)
{
  Playout *pl = &port->play;
  TdTune *old = pl->tune;

  pl->tune = g_steal_pointer (&cmd->tune);
  pl->codec = cmd->codec;
  pl->pt = cmd->pt;
  pl->frame = 0;
  /* A new tune is a new source, even straight after another tune. */
  if (port->ctx.source == SRC_TUNE)
    port->ctx.source = SRC_NONE;
  if (old)
    td_tune_unref (old);
  else
    playing_add (w, port);
}

static void
stop_tune (Worker *w, TdRelayPort *port)
{
  if (!port->play.tune)
    return;
  playing_remove (w, port);
  g_clear_pointer (&port->play.tune, td_tune_unref);
  /* The next forwarded packet is a new source (ctx.source is SRC_TUNE). */
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
    playing_add (w, port);   /* migrated while playing: the tune goes on here */
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
  unlink_peer (port);
  g_queue_unlink (&w->live_ports, &port->link);
  if (port->play.tune)
    playing_remove (w, port);
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
  push_command (to, add);
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

static void
close_port (Worker *w, TdRelayPort *port)
{
  TdRelay *relay = w->relay;

  let_go (w, port);
  close (port->sock[RTP].fd);
  if (port->sock[RTCP].fd >= 0)
    close (port->sock[RTCP].fd);
  td_tune_unref (port->play.tune);
  pthread_mutex_lock (&relay->pool_lock);
  g_array_append_val (relay->released, port->pair);
  pthread_mutex_unlock (&relay->pool_lock);
  g_free (port);
}

/* Only a new announced address re-arms learning: re-announcing the same one
 * (a 200 after the 183, a refresh, a resume) must not reopen the window for
 * a stranger, nor send to a NATed phone's private address again. */
static void
apply_set_remote (TdRelayPort *port, const Cmd *cmd)
{
  for (guint k = RTP; k <= RTCP; k++) {
    RelaySock *s = &port->sock[k];

    if (cmd->remote_len == 0) {
      if (s->state == LATCH_OPEN)
        s->remote_len = 0;   /* nothing announced: send nowhere until latched */
      continue;
    }
    if (s->announced_len && addr_equal (&s->announced, &cmd->remote[k])) {
      if (s->state == LATCH_OPEN) {   /* announced again after a hold with 0.0.0.0 */
        s->remote = s->announced;
        s->remote_len = s->announced_len;
      }
      continue;
    }
    s->announced = cmd->remote[k];
    s->announced_len = cmd->remote_len;
    s->remote = s->announced;
    s->remote_len = s->announced_len;
    s->state = LATCH_OPEN;
    s->silent_since = 0;
    s->host_since = 0;
    s->host_last = 0;
  }
}

/* A new peer is a new source, even if its stream happens to keep the SSRC
 * of the old one (a transfer between two legs of the same far end). */
static void
restart_forwarded (TdRelayPort *port, TdRelayPort *new_peer)
{
  if (port->peer != new_peer && port->ctx.source == SRC_FORWARD)
    port->ctx.source = SRC_NONE;
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
    apply_set_remote (port, cmd);
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
    start_tune (w, port, cmd);
    break;
  case CMD_STOP:
    stop_tune (w, port);
    break;
  case CMD_FREE:
    close_port (w, port);
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
  if (cmd->type == CMD_SYNC)   /* "all before me applied": nothing held before it */
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
    gboolean commands = FALSE, tick = FALSE;
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
      else
        drain_socket (w, events[i].data.ptr);
    }
    if (tick)
      play_tick (w);
    if (commands)
      running = process_commands (w);
  }
  while (w->live_ports.head)
    close_port (w, w->live_ports.head->data);
  /* Empty: td_relay_free() drained every migration before QUIT. */
  g_queue_clear_full (&w->backlog, (GDestroyNotify) cmd_free);
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
  if (w->tfd >= 0)
    close (w->tfd);
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
  /* QUIT was the main thread's last command, and no worker pushes any more
   * (relay_destroy drained the migrations first). */
  g_assert (g_queue_is_empty (&w->commands));
  close (w->epfd);
  close (w->evfd);
  close (w->tfd);
  pthread_mutex_destroy (&w->lock);
  pthread_cond_destroy (&w->cond);
  g_free (w->buf);
}

static void
relay_destroy (TdRelay *relay, guint n_started)
{
  /* A worker may still have to hand a migrating port on to another, which
   * must not have quit by then: let every command (and so every migration)
   * take effect first. Shutdown may wait; only the call path must not. */
  if (n_started == relay->n_workers)
    td_relay_sync (relay);
  for (guint i = 0; i < n_started; i++)
    worker_stop (&relay->workers[i]);
  pthread_mutex_destroy (&relay->pool_lock);
  g_array_unref (relay->released);
  g_queue_clear_full (&relay->cooling, g_free);
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
  g_queue_init (&relay->cooling);
  relay->latching = TD_RELAY_LATCH_PREFER_SDP;
  relay->nat_delay_us = TD_RELAY_NAT_DELAY_MS * (gint64) 1000;
  relay->window_us = TD_RELAY_LEARN_WINDOW_MS * (gint64) 1000;
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
  port->latching = relay->latching;
  port->nat_delay_us = relay->nat_delay_us;
  port->window_us = relay->window_us;
  port->ctx.clock_rate = DEFAULT_CLOCK_RATE;
  for (guint k = RTP; k <= RTCP; k++) {
    port->sock[k].fd = fds[k];
    port->sock[k].kind = k;
    port->sock[k].state = LATCH_OPEN;
    port->sock[k].port = port;
  }
  port->worker = choose_worker (relay);
  port->worker->n_ports++;
  return port;
}

/* Unpredictable numbers for the port choice: not GLib's Mersenne Twister,
 * whose state can be reconstructed from its outputs (SSRCs are visible). */
static guint32
secure_random (void)
{
  guint32 v;

  if (getrandom (&v, sizeof v, GRND_NONBLOCK) != sizeof v)
    v = g_random_int ();   /* entropy pool not ready (early boot): still random */
  return v;
}

static guint
gcd (guint a, guint b)
{
  while (b) {
    guint t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* A step through 0..n-1 that visits every pair: coprime with n. */
static guint
random_step (guint n)
{
  for (guint tries = 0; n > 2 && tries < 32; tries++) {
    guint step = 1 + secure_random () % (n - 1);
    if (gcd (step, n) == 1)
      return step;
  }
  return 1;
}

/* Binds `pair` into a new port; NULL with *error set on a hard failure,
 * NULL without it when another process holds the pair. */
static TdRelayPort *
take_pair (TdRelay *relay, guint pair, guint *busy, GError **error)
{
  int fds[2];
  TdRelayPort *port;

  if (!bind_pair (relay, pair, fds)) {
    if (errno == EADDRINUSE || errno == EACCES) {
      (*busy)++;   /* another process holds it: try the next pair */
      return NULL;
    }
    g_set_error (error, TD_RELAY_ERROR,
                 errno == EADDRNOTAVAIL ? TD_RELAY_ERROR_ADDRESS : TD_RELAY_ERROR_SYSTEM,
                 "media port %u: %s", relay->first_port + 2 * pair, g_strerror (errno));
    return NULL;
  }
  relay->in_use[pair] = PAIR_USED;
  relay->n_in_use++;
  port = new_port (relay, pair, fds);
  send_command (port->worker, CMD_ADD, port, NULL, FALSE);
  return port;
}

TdRelayPort *
td_relay_port_alloc (TdRelay *relay, GError **error)
{
  guint busy = 0, n = relay->n_pairs, start, step;
  TdRelayPort *port;
  Cooling *c;

  g_return_val_if_fail (relay, NULL);
  reclaim_released (relay);
  /* A random start and a random step: the next pair cannot be guessed from
   * the last one, and every free pair is still tried once. */
  start = secure_random () % n;
  step = random_step (n);
  for (guint tried = 0; tried < n; tried++) {
    guint pair = (guint) ((start + (guint64) tried * step) % n);

    if (relay->in_use[pair] != PAIR_FREE)
      continue;
    if ((port = take_pair (relay, pair, &busy, error)) || (error && *error))
      return port;
  }
  /* Nothing free but pairs still cooling down: the oldest first. */
  while ((c = g_queue_pop_head (&relay->cooling))) {
    guint pair = c->pair;

    g_free (c);
    relay->in_use[pair] = PAIR_FREE;
    if ((port = take_pair (relay, pair, &busy, error)) || (error && *error))
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

/* Moves `port` to worker `to` without waiting: the old worker lets go and
 * hands it on itself; `to` holds the port's commands until then (see top). */
static void
migrate (TdRelayPort *port, Worker *to)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->type = CMD_DETACH;
  cmd->port = port;
  cmd->to = to;
  push_command (port->worker, cmd);
  port->worker->n_ports--;
  to->n_ports++;
  port->worker = to;
}

void
td_relay_connect (TdRelayPort *a, TdRelayPort *b)
{
  g_return_if_fail (a && b && a->relay == b->relay);
  /* The CONNECT goes first, so that it is already waiting on a's worker
   * when b arrives there: b is connected as it is adopted, before that
   * worker reads a single packet of b's (which an unconnected port would
   * drop). b's commands still apply in order: the CONNECT is held until b's
   * old worker has applied everything queued there before the DETACH. */
  send_command (a->worker, CMD_CONNECT, a, b, FALSE);
  if (a->worker != b->worker)
    migrate (b, a->worker);
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
td_relay_port_set_clock_rate (TdRelayPort *port, guint32 rate)
{
  Cmd *cmd;

  g_return_if_fail (port && rate > 0);
  cmd = g_new0 (Cmd, 1);
  cmd->type = CMD_SET_CLOCK_RATE;
  cmd->port = port;
  cmd->rate = rate;
  push_command (port->worker, cmd);
}

void
td_relay_port_set_new_ssrc_on_switch (TdRelayPort *port, gboolean new_ssrc)
{
  send_command (port->worker, CMD_SET_NEW_SSRC, port, NULL, new_ssrc);
}

void
td_relay_port_play (TdRelayPort *port, TdTune *tune, TdCodec codec, guint8 pt)
{
  Cmd *cmd;

  g_return_if_fail (port && tune);
  g_return_if_fail (codec == TD_CODEC_PCMU || codec == TD_CODEC_PCMA);
  g_return_if_fail (pt < 128);
  cmd = g_new0 (Cmd, 1);
  cmd->type = CMD_PLAY;
  cmd->port = port;
  cmd->tune = td_tune_ref (tune);
  cmd->codec = codec;
  cmd->pt = pt;
  port->playing = TRUE;
  push_command (port->worker, cmd);
}

void
td_relay_port_set_signalling_host (TdRelayPort *port, const char *ip)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->type = CMD_SET_HOST;
  cmd->port = port;
  if (!ip || !parse_ip (ip, &cmd->remote[0], &cmd->remote_len))
    cmd->remote_len = 0;
  else if (cmd->remote[0].sa.sa_family == AF_INET &&
           port->relay->address.sa.sa_family == AF_INET6)
    addr_map_v4 (&cmd->remote[0], &cmd->remote_len);   /* as an IPv6 relay sees it */
  else if (cmd->remote[0].sa.sa_family != port->relay->address.sa.sa_family)
    cmd->remote_len = 0;
  push_command (port->worker, cmd);
}

void
td_relay_port_drop_rtcp (TdRelayPort *port)
{
  send_command (port->worker, CMD_DROP_RTCP, port, NULL, FALSE);
}

void
td_relay_port_test_stall (TdRelayPort *port, int fd)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->type = CMD_TEST_STALL;
  cmd->port = port;
  cmd->fd = fd;
  push_command (port->worker, cmd);
}

static const char *const latching_names[] = {
  [TD_RELAY_LATCH_PREFER_SDP] = "prefer-sdp",
  [TD_RELAY_LATCH_SDP_ONLY] = "sdp-only",
  [TD_RELAY_LATCH_FIRST_PACKET] = "first-packet",
};

gboolean
td_relay_latching_from_string (const char *name, TdRelayLatching *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (latching_names); i++) {
    if (g_strcmp0 (name, latching_names[i]) == 0) {
      *out = (TdRelayLatching) i;
      return TRUE;
    }
  }
  return FALSE;
}

const char *
td_relay_latching_name (TdRelayLatching mode)
{
  return (guint) mode < G_N_ELEMENTS (latching_names) ? latching_names[mode] : NULL;
}

void
td_relay_set_latching (TdRelay *relay, TdRelayLatching mode, guint nat_delay_ms, guint window_ms)
{
  relay->latching = mode;
  relay->nat_delay_us = nat_delay_ms * (gint64) 1000;
  relay->window_us = window_ms * (gint64) 1000;
}

void
td_relay_port_stop (TdRelayPort *port)
{
  if (!port->playing)
    return;   /* the worker's view can only be "not playing" too */
  port->playing = FALSE;
  send_command (port->worker, CMD_STOP, port, NULL, FALSE);
}

gboolean
td_relay_port_is_playing (TdRelayPort *port)
{
  return port->playing;
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
  out->tx_generated = stat_get (&port->generated);
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
