/* TdRelay: symmetric-latching RTP/RTCP relay on epoll media threads.
 *
 * Ownership: the main thread allocates ports (takes their sockets from the
 * pool) and keeps the pool; from then on one media thread (a "worker") owns
 * everything a packet touches (latching state, remotes, peer links,
 * forwarding flag) and is the only thread that reads, parks or closes a
 * port's sockets and frees its memory. The main thread reaches that state
 * only through the worker's command queue.
 *
 * The pieces (td-relay-private.h): this file is the TdRelay object and the
 * public API, on the main thread; the port pool is td-relay-pool.c; the
 * media threads are td-relay-worker.c, with latching in td-relay-latch.c,
 * tunes in td-relay-source.c and the outgoing RTP context in
 * td-rtp-context.c. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

G_DEFINE_QUARK (td-relay-error-quark, td_relay_error)

#define MAX_WORKERS 64

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

/* ---- public API ---- */

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

static void
relay_destroy (TdRelay *relay, guint n_started)
{
  /* A worker may still have to hand a migrating port on to another, which
   * must not have quit by then: let every command (and so every migration)
   * take effect first. Shutdown may wait; only the call path must not. */
  while (relay->mixes)
    td_relay_mix_free (relay->mixes->data);
  if (n_started == relay->n_workers)
    td_relay_sync (relay);
  for (guint i = 0; i < n_started; i++)
    td_relay_worker_stop (&relay->workers[i]);
  td_relay_events_clear (relay);
  td_relay_pool_clear (relay);
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
  /* libsrtp's one-time set-up, here rather than on a media thread */
  td_relay_srtp_global_init ();
  relay = g_new0 (TdRelay, 1);
  relay->address = addr;
  relay->address_len = addr_len;
  relay->first_port = first;
  relay->n_pairs = n_pairs;
  relay->n_workers = MIN (n_threads, MAX_WORKERS);
  relay->workers = g_new0 (Worker, relay->n_workers);
  td_relay_pool_init (relay);
  relay->latching = TD_RELAY_LATCH_PREFER_SDP;
  relay->nat_delay_us = TD_RELAY_NAT_DELAY_MS * (gint64) 1000;
  relay->window_us = TD_RELAY_LEARN_WINDOW_MS * (gint64) 1000;
  td_relay_events_init (relay);
  for (guint i = 0; i < relay->n_workers; i++) {
    if (!td_relay_worker_start (relay, &relay->workers[i], i, error)) {
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

void
td_relay_set_defer_signals (TdRelay *relay, gboolean defer)
{
  relay->defer_signals = defer;
  if (!defer)
    td_relay_worker_signal_pending (relay);
}

guint
td_relay_n_threads (TdRelay *relay)
{
  return relay->n_workers;
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
  td_relay_worker_push (port->worker, cmd);
}

/* Moves `port` to worker `to` without waiting: the old worker lets go and
 * hands it on itself; `to` holds the port's commands until then (see top). */
void
td_relay_migrate (TdRelayPort *port, Worker *to)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->type = CMD_DETACH;
  cmd->port = port;
  cmd->to = to;
  td_relay_worker_push (port->worker, cmd);
  port->worker->n_ports--;
  to->n_ports++;
  port->worker = to;
}

void
td_relay_connect (TdRelayPort *a, TdRelayPort *b)
{
  g_return_if_fail (a && b && a->relay == b->relay);
  td_relay_port_leave_mix (a);   /* a port is in a mix or connected, not both */
  td_relay_port_leave_mix (b);
  /* The CONNECT goes first, so that it is already waiting on a's worker
   * when b arrives there: b is connected as it is adopted, before that
   * worker reads a single packet of b's (which an unconnected port would
   * drop). b's commands still apply in order: the CONNECT is held until b's
   * old worker has applied everything queued there before the DETACH. */
  td_relay_worker_send (a->worker, CMD_CONNECT, a, b, FALSE);
  if (a->worker != b->worker)
    td_relay_migrate (b, a->worker);
}

void
td_relay_disconnect (TdRelayPort *port)
{
  td_relay_worker_send (port->worker, CMD_DISCONNECT, port, NULL, FALSE);
}

void
td_relay_port_set_forward (TdRelayPort *port, gboolean forward)
{
  td_relay_worker_send (port->worker, CMD_SET_FORWARD, port, NULL, forward);
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
  td_relay_worker_push (port->worker, cmd);
}

void
td_relay_port_set_new_ssrc_on_switch (TdRelayPort *port, gboolean new_ssrc)
{
  td_relay_worker_send (port->worker, CMD_SET_NEW_SSRC, port, NULL, new_ssrc);
}

static void
queue_play (TdRelayPort *port, TdTune *tune, TdCodec codec, guint8 pt, gboolean until_peer)
{
  Cmd *cmd;

  g_return_if_fail (port && tune);
  g_return_if_fail ((guint) codec < TD_CODEC_COUNT);
  g_return_if_fail (pt < 128);
  if (!td_tune_has_codec (tune, codec)) {
    g_warning ("relay port %u: tune %s has no %s (no encoder at load): not played",
               port->number, td_tune_path (tune), td_codec_name (codec));
    return;
  }
  cmd = g_new0 (Cmd, 1);
  cmd->type = CMD_PLAY;
  cmd->port = port;
  cmd->tune = td_tune_ref (tune);
  cmd->codec = codec;
  cmd->pt = pt;
  cmd->flag = until_peer;
  cmd->gen = ++port->play_gen;
  port->playing = TRUE;
  td_relay_worker_push (port->worker, cmd);
}

void
td_relay_port_play (TdRelayPort *port, TdTune *tune, TdCodec codec, guint8 pt)
{
  queue_play (port, tune, codec, pt, FALSE);
}

void
td_relay_port_play_until_peer (TdRelayPort *port, TdTune *tune, TdCodec codec, guint8 pt)
{
  queue_play (port, tune, codec, pt, TRUE);
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
  td_relay_worker_push (port->worker, cmd);
}

void
td_relay_port_drop_rtcp (TdRelayPort *port)
{
  td_relay_worker_send (port->worker, CMD_DROP_RTCP, port, NULL, FALSE);
}

void
td_relay_port_test_stall (TdRelayPort *port, int fd)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->type = CMD_TEST_STALL;
  cmd->port = port;
  cmd->fd = fd;
  td_relay_worker_push (port->worker, cmd);
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
  td_relay_worker_send (port->worker, CMD_STOP, port, NULL, FALSE);
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
  td_relay_port_leave_mix (port);
  port->worker->n_ports--;
  td_relay_events_port_free (port->relay, port);
  td_relay_worker_send (port->worker, CMD_FREE, port, NULL, FALSE);
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
  out->srtp_auth_failed = stat_get (&port->srtp_auth_failed);
  out->srtp_replayed = stat_get (&port->srtp_replayed);
  out->srtp_tx_failed = stat_get (&port->srtp_tx_failed);
}

void
td_relay_port_set_srtp (TdRelayPort *port, TdSrtpSuite suite, const guint8 *rx_key,
                        const guint8 *tx_key)
{
  Cmd *cmd = g_new0 (Cmd, 1);
  gsize len = td_srtp_suite_key_len (suite);

  g_return_if_fail (suite < TD_SRTP_N_SUITES);
  g_return_if_fail (len == 0 || (rx_key && tx_key));
  cmd->type = CMD_SET_SRTP;
  cmd->port = port;
  cmd->suite = suite;
  /* The keys travel in the command (the media thread makes the sessions:
   * ~84 us each with NSS), wiped there once used. */
  cmd->keys = g_malloc0 (2 * TD_SRTP_MAX_KEY);
  if (len) {
    memcpy (cmd->keys, rx_key, len);
    memcpy (cmd->keys + TD_SRTP_MAX_KEY, tx_key, len);
  }
  td_relay_worker_push (port->worker, cmd);
}

void
td_relay_sync (TdRelay *relay)
{
  for (guint i = 0; i < relay->n_workers; i++)
    td_relay_worker_sync (&relay->workers[i]);
}
