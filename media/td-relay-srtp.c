/* SRTP terminated in the relay, per port (td_relay_port_set_srtp in
 * td-relay.h): the port's sessions (td-srtp.h) are made on its media thread
 * when the command arrives; what the port receives is authenticated and
 * decrypted before latching sees it, so that only the endpoint holding the
 * key can latch an SRTP port or count as its activity; what leaves the port
 * (forwarded, tunes, mixes) is protected after the outgoing context stamped
 * it, under the port's one send session: one SSRC, a sequence that goes on
 * by one, so the ROC follows on its own across source switches.
 * Media thread, except td_relay_srtp_global_init. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay-private.h"

#include <sys/socket.h>

void
td_relay_srtp_global_init (void)
{
  td_srtp_global_init ();
}

void
td_relay_srtp_apply (TdRelayPort *port, Cmd *cmd)
{
  const guint8 *rx_key = cmd->keys, *tx_key = cmd->keys + TD_SRTP_MAX_KEY;

  if (cmd->suite == TD_SRTP_SUITE_NONE) {
    g_clear_pointer (&port->srtp, td_srtp_free);
  } else if (port->srtp && td_srtp_suite (port->srtp) == cmd->suite) {
    /* the same keys: nothing; a new key: that direction re-keyed */
    if (!td_srtp_rekey (port->srtp, rx_key, tx_key))
      g_warning ("relay: port %u keeps its old SRTP keys", port->number);
  } else {
    /* A new suite is a new crypto context. */
    td_srtp_free (port->srtp);
    port->srtp = td_srtp_new (cmd->suite, rx_key, tx_key);
  }
  explicit_bzero (cmd->keys, 2 * TD_SRTP_MAX_KEY);
}

void
td_relay_srtp_clear (TdRelayPort *port)
{
  g_clear_pointer (&port->srtp, td_srtp_free);
}

/* RTCP: its socket's, or multiplexed on the RTP one (RFC 5761: packet types
 * 192-223, which RTP payload types never take with the marker). */
static inline gboolean
is_rtcp (guint kind, const guint8 *p)
{
  return kind == RTCP || (p[1] >= 192 && p[1] <= 223);
}

gboolean
td_relay_srtp_receive (TdRelayPort *port, guint kind, guint8 *data, unsigned int *len, int flags)
{
  gsize n = *len;

  /* What latching would drop as not RTP at all (dropped_other) never
   * reaches libsrtp. */
  if ((flags & MSG_TRUNC) || n < 8 || (data[0] >> 6) != 2)
    return TRUE;
  switch (td_srtp_unprotect (port->srtp, data, &n, is_rtcp (kind, data))) {
  case TD_SRTP_OK:
    *len = (unsigned int) n;
    return TRUE;
  case TD_SRTP_REPLAYED:
    stat_add (&port->srtp_replayed, 1);
    return FALSE;
  case TD_SRTP_AUTH_FAILED:
    break;
  }
  stat_add (&port->srtp_auth_failed, 1);
  return FALSE;
}

/* Protects a packet in a buffer of `cap` bytes. FALSE: counted, not to be sent. */
static gboolean
protect (TdRelayPort *port, guint8 *pkt, gsize *len, gsize cap, gboolean rtcp)
{
  if (*len + TD_SRTP_TRAILER > cap || !td_srtp_protect (port->srtp, pkt, len, rtcp)) {
    stat_add (&port->srtp_tx_failed, 1);
    return FALSE;
  }
  return TRUE;
}

/* A forwarded RTP packet. One that libsrtp refuses may repeat numbers the
 * stream has sent (its sender restarted its sequence on the same SSRC;
 * the protect side never takes a number twice, so the leg would go
 * silent): it goes once more, as a new source continuing the stream. */
static gboolean
protect_forwarded (TdRelayPort *port, guint8 *pkt, gsize *len, gint64 now)
{
  if (*len + TD_SRTP_TRAILER > MAX_PACKET) {
    stat_add (&port->srtp_tx_failed, 1);
    return FALSE;
  }
  if (td_srtp_protect (port->srtp, pkt, len, FALSE))
    return TRUE;
  td_rtp_context_resync_forwarded (&port->ctx, pkt, now);
  if (td_srtp_protect (port->srtp, pkt, len, FALSE))
    return TRUE;
  stat_add (&port->srtp_tx_failed, 1);
  return FALSE;
}

guint
td_relay_srtp_protect_batch (Worker *w, TdRelayPort *dst, guint kind, const guint *idx,
                             guint n, guint *kept, gint64 now)
{
  Buffers *b = w->buf;
  guint n_kept = 0;

  for (guint i = 0; i < n; i++) {
    guint8 *p = b->data[idx[i]];
    gsize len = b->rx[idx[i]].msg_len;

    if (is_rtcp (kind, p) ? !protect (dst, p, &len, MAX_PACKET, TRUE)
                          : !protect_forwarded (dst, p, &len, now))
      continue;
    b->rx[idx[i]].msg_len = (unsigned int) len;
    kept[n_kept++] = idx[i];
  }
  return n_kept;
}

SrtpSendResult
td_relay_srtp_send_rtp (TdRelayPort *port, const struct iovec *iov, guint n_iov)
{
  RelaySock *out = &port->sock[RTP];
  guint8 pkt[MAX_PACKET];
  gsize len = 0;

  for (guint i = 0; i < n_iov; i++) {
    if (len + iov[i].iov_len > sizeof pkt) {
      stat_add (&port->srtp_tx_failed, 1);
      return SRTP_REFUSED;
    }
    memcpy (pkt + len, iov[i].iov_base, iov[i].iov_len);
    len += iov[i].iov_len;
  }
  if (!protect (port, pkt, &len, sizeof pkt, FALSE))
    return SRTP_REFUSED;
  return sendto (out->fd, pkt, len, 0, &out->remote.sa, out->remote_len) >= 0 ? SRTP_SENT
                                                                               : SRTP_SEND_ERROR;
}
