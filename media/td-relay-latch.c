/* Latching and RTP Bleed protection (TdRelayLatching in td-relay.h): which
 * sources a relay socket accepts, and whom it learns as its remote. Media
 * thread: runs on the packet path of the worker that owns the port. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay-private.h"

#include <string.h>

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
    /* RTCP's host is RTP's latch, which has already waited. With nothing
     * announced yet (a callee that rang with a 180 without SDP) there is no
     * better source to wait for: the host is all we know of the endpoint,
     * and the RTP it sends just before its 200 (which brings the SDP) is
     * the callee's first words. */
    return s->kind == RTCP || !s->announced_len || now - s->host_since >= port->nat_delay_us;
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
gboolean
td_relay_latch_accept (RelaySock *s, const Addr *src, const guint8 *data, gsize len, int flags,
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
void
td_relay_latch_note_sending (TdRelayPort *port, gint64 now)
{
  RelaySock *s = &port->sock[RTP];

  if (G_UNLIKELY (s->state == LATCH_OPEN && s->announced_len && !s->silent_since))
    s->silent_since = now;
}

/* Only a new announced address re-arms learning: re-announcing the same one
 * (a 200 after the 183, a refresh, a resume) must not reopen the window for
 * a stranger, nor send to a NATed phone's private address again.
 * The first announcement after a provisional latch learned with nothing
 * announced (a callee that rang without SDP and spoke before its 200) keeps
 * that latch for a new window: it is the path the callee's packets are
 * known to take (a NATed phone's SDP names a private address that never
 * speaks, and re-learning it would cost the NAT delay: 0.5 s of the first
 * words), while the announced address still takes over as soon as it
 * speaks. */
void
td_relay_latch_set_remote (TdRelayPort *port, const Cmd *cmd)
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
    if (!s->announced_len && s->state == LATCH_PROVISIONAL) {
      s->announced = cmd->remote[k];
      s->announced_len = cmd->remote_len;
      s->provisional_until = g_get_monotonic_time () + port->window_us;
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
