/* td-relay-private.h: TdRelay's insides, shared by the files of the relay:
 *   td-relay.c         the TdRelay object, the public API (main thread)
 *   td-relay-pool.c    the port pool: free, used and cooling pairs, parked sockets
 *   td-relay-worker.c  the media threads: epoll, commands, the packet path, migration
 *   td-relay-latch.c   latching: which sources a socket accepts (media thread)
 *   td-relay-source.c  tunes played from the relay on a timerfd (media thread)
 *   td-relay-mix.c     N-1 mixes of rooms, on the same timer (both threads)
 *   td-rtp-context.c   the outgoing RTP context (media thread)
 *   td-relay-srtp.c    SRTP on a port: commands, receive and send (media thread),
 *                      on td-srtp.c (libsrtp2)
 * Nothing outside media/td-relay*.c includes this. */
#pragma once

#include "td-relay.h"
#include "td-rtp-context.h"
#include "td-srtp.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

G_BEGIN_DECLS

/* Packets drained from one socket per recvmmsg call; also the send batch. */
#define BATCH 16
/* recvmmsg rounds per readable socket per loop, so one flooded socket cannot
 * starve the others (level-triggered epoll reports it again). */
#define MAX_ROUNDS 4
/* Larger than any packet of a 1500-byte MTU; bigger ones are dropped as
 * truncated (MSG_TRUNC) rather than forwarded cut. */
#define MAX_PACKET 2048
/* The playout timer ticks TD_RELAY_PHASES times a 20 ms frame; tunes and
 * mixes each take one phase, so that a worker's sends spread over the frame. */
#define TD_RELAY_PHASES 4

typedef struct _MixMember MixMember;   /* td-relay-mix.c */

enum { RTP, RTCP };

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

/* A tune being played (worker state): a virtual RTP source whose seq counts
 * the frames sent and whose ts counts the frames due, sent or not, so the
 * timestamp keeps real time while there is nowhere to send. */
typedef struct {
  TdTune *tune;              /* NULL: not playing */
  TdCodec codec;             /* the tune's frames in this codec... */
  guint8 pt;                 /* ...sent with the payload type the SDP gave it */
  gboolean until_peer;       /* the peer's first forwarded RTP packet ends it */
  guint32 rate;              /* the codec's RTP clock */
  guint ticks;               /* its timestamp units per frame */
  guint64 gen;               /* the play command's: names it in TUNE_ENDED */
  guint frame;               /* next frame of the tune */
  guint16 seq;
  guint32 ts;
  guint phase;               /* which of the worker's 5 ms ticks in each 20 ms it is sent on */
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
  TdRtpContext ctx;       /* worker */
  TdSrtp *srtp;           /* worker: NULL = plain RTP; else every packet in and out goes through it */
  Playout play;           /* worker */
  gboolean playing;       /* main thread's view of play.tune != NULL */
  MixMember *member;      /* worker: in a mix (td-relay-mix.c), or NULL */
  TdRelayMix *mix;        /* main thread's view: the mix it joined, or NULL */
  guint64 play_gen;       /* main thread: plays issued, the last one's number */
  /* Written by the owning worker only (load + store, no locked instruction),
   * read relaxed by the main thread. */
  _Atomic guint64 rx, tx, foreign, other, tx_errors, generated;
  _Atomic guint64 srtp_auth_failed, srtp_replayed, srtp_tx_failed;
  _Atomic gint64 last_rx;

  /* events (td-relay-events.c) */
  guint64 id;             /* immutable: tells the port from later ones on its pair */
  gint64 born_us;         /* immutable: allocation, where the idle clock starts */
  gboolean watched;       /* worker: it has an event func */
  gboolean idle;          /* worker: IDLE told, ACTIVE not yet */
  guint8 on_rx;           /* worker: ON_RX_* owed at the next accepted packet */
  TdRelayEventFunc event_func;   /* main thread */
  gpointer event_data;           /* main thread */
  gboolean idle_told;            /* main thread: IDLE delivered, ACTIVE not yet */
};

/* What the next accepted packet of a port must see to (TdRelayPort.on_rx):
 * 0 in the steady state, so the packet path tests one byte per batch. */
enum {
  ON_RX_FIRST = 1 << 0,    /* no RTP yet: the first is FIRST_PACKET (if watched) */
  ON_RX_ACTIVE = 1 << 1,   /* IDLE was told: the next packet is ACTIVE */
};

typedef enum {
  CMD_ADD, CMD_DETACH, CMD_SET_REMOTE, CMD_CONNECT, CMD_DISCONNECT, CMD_SET_FORWARD,
  CMD_SET_CLOCK_RATE, CMD_SET_NEW_SSRC, CMD_PLAY, CMD_STOP, CMD_FREE, CMD_SYNC, CMD_QUIT,
  CMD_DROP_RTCP, CMD_SET_HOST, CMD_TEST_STALL, CMD_WATCH, CMD_SET_IDLE,
  CMD_MIX_JOIN, CMD_MIX_LEAVE, CMD_MIX_FREE, CMD_SET_SRTP,
} CmdType;

typedef struct {
  CmdType type;
  TdRelayPort *port, *other;
  gboolean flag;
  guint32 rate;                /* CMD_SET_CLOCK_RATE */
  TdTune *tune;                /* CMD_PLAY: a reference, handed to the port */
  TdCodec codec;               /* CMD_PLAY (flag: until the peer speaks), CMD_MIX_JOIN */
  guint8 pt;                   /* CMD_PLAY, CMD_MIX_JOIN (flag: hears) */
  TdRelayMix *mix;             /* CMD_MIX_JOIN, CMD_MIX_FREE */
  guint64 gen;                 /* CMD_PLAY */
  guint64 seq;                 /* CMD_SYNC */
  Worker *to;                  /* CMD_DETACH: where the port goes */
  int fd;                      /* CMD_TEST_STALL */
  gint64 idle_us;              /* CMD_SET_IDLE */
  socklen_t remote_len;        /* CMD_SET_REMOTE, CMD_SET_HOST; 0 = none */
  Addr remote[2];              /* CMD_SET_REMOTE, RTP and RTCP; CMD_SET_HOST: [0] */
  TdSrtpSuite suite;           /* CMD_SET_SRTP */
  guint8 *keys;                /* CMD_SET_SRTP: rx key then tx key, TD_SRTP_MAX_KEY each;
                                * wiped once applied (and by cmd_free) */
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
  gboolean signal_pending;     /* commands queued, eventfd not yet written (defer_signals) */

  /* the worker thread */
  GQueue live_ports;           /* TdRelayPort* via port->link */
  GQueue backlog;              /* Cmd* held for ports not (yet) ours, in order */
  GQueue playing;              /* TdRelayPort* via port->play.link */
  GQueue mixes;                /* TdRelayMix* with members, on the playout timer */
  gboolean ticking;            /* tfd armed */
  guint64 ticks;               /* the playout timer's ticks so far (TD_RELAY_PHASES a frame) */
  guint next_phase;            /* the phase the next tune played gets */
  Buffers *buf;
  /* events (td-relay-events.c), the worker thread */
  int idle_tfd;                /* immutable: the idle check's timer */
  gint64 idle_us;              /* the relay's idle timeout; 0 = none */
  guint n_watched;             /* live ports with an event func */
  gboolean idle_armed;         /* idle_tfd armed */
  GList *idle_cursor;          /* in live_ports: where the next slice of the idle check starts */
  GArray *events;              /* RelayEvent: this loop iteration's, posted at its end */
};

/* An event on its way from a worker to the main thread: the port by pair and
 * id, never by pointer (it may be gone by delivery). */
typedef struct {
  guint pair;
  guint64 id;
  TdRelayEventKind kind;
  gint64 time_us;
  Addr address;                /* LATCHED */
  guint64 play_gen;            /* TUNE_ENDED: which play it ended */
} RelayEvent;

struct _TdRelay {
  /* immutable after td_relay_new */
  Addr address;
  socklen_t address_len;
  guint16 first_port;          /* first even port of the range */
  guint n_pairs;
  guint n_workers;
  Worker *workers;

  /* main thread: the pool (td-relay-pool.c) */
  /* A pair is in use (n_in_use counts those), cooling (in `cooling`) or
   * free (in `free_pairs`), and in only one of them. */
  guint n_in_use;
  guint *free_pairs;           /* in no order */
  guint n_free;
  GQueue cooling;              /* Cooling*, oldest first */
  int *parked;                 /* per pair, RTP then RTCP: its parked socket, or -1 */
  guint evict_cursor;          /* the pair the next eviction looks at first */
  guint32 random[64];          /* from getrandom, used from the end */
  guint n_random;
  TdRelayLatching latching;    /* for new ports */
  gint64 nat_delay_us, window_us;
  guint n_allocs;
  Worker *pair_worker;         /* where the second of an allocation pair goes */

  /* shared, under `pool_lock` */
  pthread_mutex_t pool_lock;
  GArray *released;            /* Released: pairs the workers let go of */
  /* shared: pairs with parked sockets (counted when parked, until taken) */
  atomic_uint n_parked;
  guint max_parked;            /* immutable */

  /* events (td-relay-events.c) */
  GMainContext *context;       /* immutable: where events are delivered */
  GSource *event_source;       /* immutable; ready when `events` is not empty */
  pthread_mutex_t event_lock;
  GArray *events;              /* under event_lock: RelayEvent, posted by the workers */
  GArray *delivering;          /* main thread: the batch being delivered */
  TdRelayPort **by_pair;       /* main thread: the live (not freed) port of each pair */
  guint64 next_id;             /* main thread */

  GList *mixes;                /* main thread: TdRelayMix* not yet freed */
  gboolean defer_signals;      /* main thread: wake workers once per main-loop pass */
};

/* How many of the playout ticks [0, ticks) are `phase`'s. */
static inline guint64
td_relay_phase_ticks (guint64 ticks, guint phase)
{
  return (ticks + TD_RELAY_PHASES - 1 - phase) / TD_RELAY_PHASES;
}

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

static inline gboolean
addr_is_any (const Addr *a)
{
  if (a->sa.sa_family == AF_INET)
    return a->in.sin_addr.s_addr == htonl (INADDR_ANY);
  return IN6_IS_ADDR_UNSPECIFIED (&a->in6.sin6_addr);
}

static inline void
addr_set_port (Addr *a, guint16 port)
{
  if (a->sa.sa_family == AF_INET)
    a->in.sin_port = htons (port);
  else
    a->in6.sin6_port = htons (port);
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

/* ---- between the files ---- */

/* td-relay-worker.c. Main thread (and a worker handing a port on): queue a
 * command for `w`; it takes ownership of `cmd`. */
void td_relay_worker_push (Worker *w, Cmd *cmd);
void td_relay_worker_send (Worker *w, CmdType type, TdRelayPort *port, TdRelayPort *other,
                           gboolean flag);
void td_relay_worker_sync (Worker *w);
/* Main thread: write the eventfd of every worker with commands not yet signalled. */
void td_relay_worker_signal_pending (TdRelay *relay);
gboolean td_relay_worker_start (TdRelay *relay, Worker *w, guint index, GError **error);
void td_relay_worker_stop (Worker *w);
/* td-relay.c, main thread: `port`'s commands go to `to` from now on. */
void td_relay_migrate (TdRelayPort *port, Worker *to);

/* td-relay-pool.c. Main thread: */
void td_relay_pool_init (TdRelay *relay);
void td_relay_pool_clear (TdRelay *relay);   /* after the workers stopped */
/* Media thread: the sockets of a port it closes, parked for the pair's next
 * port unless `park` is FALSE (the relay is going away). */
void td_relay_pool_put (TdRelay *relay, guint pair, const int fds[2], gboolean park);

/* td-relay-latch.c, media thread. */
gboolean td_relay_latch_accept (RelaySock *s, const Addr *src, const guint8 *data, gsize len,
                                int flags, gint64 now);
void td_relay_latch_note_sending (TdRelayPort *port, gint64 now);
void td_relay_latch_set_remote (TdRelayPort *port, const Cmd *cmd);

/* td-relay-events.c. Main thread: */
void td_relay_events_init (TdRelay *relay);
void td_relay_events_clear (TdRelay *relay);   /* after the workers stopped */
void td_relay_events_port_new (TdRelay *relay, TdRelayPort *port);
void td_relay_events_port_free (TdRelay *relay, TdRelayPort *port);
/* Media thread: */
gboolean td_relay_events_worker_init (Worker *w);
void td_relay_events_worker_clear (Worker *w);
void td_relay_events_watch (Worker *w, TdRelayPort *port, gboolean on);
void td_relay_events_adopt (Worker *w, TdRelayPort *port);    /* it came to w */
void td_relay_events_let_go (Worker *w, TdRelayPort *port);   /* it leaves w */
void td_relay_events_set_idle (Worker *w, gint64 idle_us);
void td_relay_events_check_idle (Worker *w);                  /* idle_tfd fired */
void td_relay_events_post (Worker *w, TdRelayPort *port, TdRelayEventKind kind, gint64 now,
                           const Addr *address);
void td_relay_events_on_rx (Worker *w, TdRelayPort *port, guint kind, gint64 now);
/* TUNE_ENDED of the play numbered `gen`, posted whether or not the port is
 * watched: it also ends the main thread's is_playing. */
void td_relay_events_post_tune_ended (Worker *w, TdRelayPort *port, gint64 now, guint64 gen);
void td_relay_events_flush (Worker *w);                       /* end of a loop iteration */

/* td-relay-source.c, media thread. */
void td_relay_source_tick (Worker *w);
void td_relay_source_add (Worker *w, TdRelayPort *port);
void td_relay_source_remove (Worker *w, TdRelayPort *port);
void td_relay_source_play (Worker *w, TdRelayPort *port, Cmd *cmd);
void td_relay_source_stop (Worker *w, TdRelayPort *port);
/* The peer's RTP packet that ends a play_until_peer tune is being forwarded
 * to `port` (its first): stop the tune, tell TUNE_ENDED. */
void td_relay_source_end_by_peer (Worker *w, TdRelayPort *port, gint64 now);
/* Arms the playout timer while a tune plays or a mix has members, disarms
 * it otherwise. */
void td_relay_source_update_timer (Worker *w);
/* The phase a new tune or mix gets. */
guint td_relay_source_next_phase (Worker *w);

/* td-relay-srtp.c. Main thread: */
void td_relay_srtp_global_init (void);
/* Media thread: */
void td_relay_srtp_apply (TdRelayPort *port, Cmd *cmd);
void td_relay_srtp_clear (TdRelayPort *port);   /* the port closes */
/* An SRTP port received `data` (*len bytes, recvmmsg `flags`) on its `kind`
 * socket: TRUE if it authenticated (*len is now the clear packet's) or is
 * not even plausible RTP/RTCP (latching drops and counts it); FALSE: dropped
 * and counted here. */
gboolean td_relay_srtp_receive (TdRelayPort *port, guint kind, guint8 *data, unsigned int *len,
                                int flags);
/* Protects the packets idx[0..n) of the worker's buffers, about to leave
 * the SRTP port `dst`'s `kind` socket, in place; the ones that may go are
 * written to kept[], their number returned (the others are counted). */
guint td_relay_srtp_protect_batch (Worker *w, TdRelayPort *dst, guint kind, const guint *idx,
                                   guint n, guint *kept, gint64 now);
typedef enum { SRTP_SENT, SRTP_SEND_ERROR, SRTP_REFUSED } SrtpSendResult;
/* Sends the RTP packet made of iov[0..n_iov) out of the SRTP port's RTP
 * socket to its remote, protected (a copy: the iovecs are only read).
 * SRTP_REFUSED is counted here (srtp_tx_failed), the rest by the caller. */
SrtpSendResult td_relay_srtp_send_rtp (TdRelayPort *port, const struct iovec *iov, guint n_iov);

/* td-relay-mix.c, media thread. */
void td_relay_mix_join (Worker *w, const Cmd *cmd);
void td_relay_mix_leave (Worker *w, TdRelayPort *port);   /* no-op if in no mix */
void td_relay_mix_destroy (Worker *w, TdRelayMix *mix);
/* Accepted packets idx[0..n) of a member port (its forward flag on). */
void td_relay_mix_receive (Worker *w, TdRelayPort *port, guint kind, const guint *idx, guint n);
/* The playout timer went from tick `before` to w->ticks. */
void td_relay_mix_tick (Worker *w, guint64 before, gint64 now);

G_END_DECLS
