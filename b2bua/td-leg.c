/* TdLeg: a dialog's handle, SDP state and relay ports. */
#define G_LOG_DOMAIN "tandem-call"

#include "td-leg.h"
#include "td-call.h"

#include <sofia-sip/msg_addr.h>
#include <string.h>

static void
free_port (gpointer port)
{
  td_relay_port_free (port);
}

TdLeg *
td_leg_new (TdCall *call, const TdSignal *signal, TdLegRole role, nua_handle_t *nh)
{
  TdLeg *leg = g_new0 (TdLeg, 1);

  g_ref_count_init (&leg->ref);
  leg->call = call;
  leg->signal = signal;
  leg->role = role;
  leg->nh = nh;
  leg->ports = g_ptr_array_new_with_free_func (free_port);
  /* o= session id: random per leg; the version grows with each new SDP. */
  leg->sdp_session_id = ((guint64) g_random_int () << 20) ^ g_random_int ();
  leg->sdp_version = 1;
  leg->local_answer = -1;
  if (nh)
    td_signal_bind (signal, nh, leg);
  return leg;
}

TdLeg *
td_leg_ref (TdLeg *leg)
{
  g_ref_count_inc (&leg->ref);
  return leg;
}

void
td_leg_register (TdLeg *leg, TdCallContext *ctx)
{
  leg->id = ++ctx->next_leg_id;
  leg->ctx = ctx;
  g_hash_table_insert (ctx->legs, &leg->id, leg);
}

TdLeg *
td_leg_lookup (TdCallContext *ctx, guint64 id)
{
  return g_hash_table_lookup (ctx->legs, &id);
}

gboolean
td_leg_is_up (const TdLeg *leg)
{
  return leg && leg->nh && leg->answered;
}

void
td_leg_unref (TdLeg *leg)
{
  if (!leg || !g_ref_count_dec (&leg->ref))
    return;
  if (leg->ctx && leg->ctx->legs)
    g_hash_table_remove (leg->ctx->legs, &leg->id);
  td_timer_clear (&leg->refresh_timer);
  if (leg->has_pending)
    td_signal_destroy_event (leg->signal, leg->pending);
  if (leg->nh) {
    td_signal_bind (leg->signal, leg->nh, NULL);
    td_signal_destroy (leg->signal, leg->nh);
  }
  g_ptr_array_unref (leg->ports);
  g_clear_pointer (&leg->remote_sdp, td_sdp_free);
  g_clear_pointer (&leg->offered_sdp, td_sdp_free);
  g_free (leg->local_sdp);
  g_free (leg->accepted_local_sdp);
  g_clear_pointer (&leg->sdes, td_sdes_free);
  g_free (leg->target);
  g_free (leg->source);
  g_free (leg->contact);
  g_free (leg->signalling_host);
  g_free (leg->user);
  g_free (leg->display);
  g_free (leg->refer_event);
  g_free (leg);
}

const char *
td_leg_name (const TdLeg *leg)
{
  return leg->role == TD_LEG_A ? "A" : "B";
}

gboolean
td_leg_ensure_ports (TdLeg *leg, TdRelay *relay, const TdSdp *sdp, GError **error)
{
  guint n = td_sdp_n_media (sdp), had = leg->ports->len;

  if (had < n)
    g_ptr_array_set_size (leg->ports, n);
  for (guint i = 0; i < n; i++) {
    TdRelayPort *port;

    if (g_ptr_array_index (leg->ports, i) || td_sdp_media_port (sdp, i) == 0)
      continue;
    if (!(port = td_relay_port_alloc (relay, error))) {
      /* all or nothing: a half-allocated offer is of no use */
      for (guint j = had; j < n; j++)
        td_relay_port_free (g_steal_pointer (&g_ptr_array_index (leg->ports, j)));
      g_ptr_array_set_size (leg->ports, had);
      return FALSE;
    }
    td_relay_port_set_event_func (port, td_call_media_port_event, leg);
    td_relay_port_set_signalling_host (port, leg->signalling_host);
    g_ptr_array_index (leg->ports, i) = port;
  }
  return TRUE;
}

static void
set_signalling_host (TdLeg *leg, const char *ip)
{
  g_free (leg->signalling_host);
  leg->signalling_host = g_strdup (ip);
  for (guint i = 0; i < leg->ports->len; i++)
    if (g_ptr_array_index (leg->ports, i))
      td_relay_port_set_signalling_host (g_ptr_array_index (leg->ports, i), ip);
}

void
td_leg_set_signalling_from_request (TdLeg *leg, nua_t *nua)
{
  msg_t *msg = nua_current_request (nua);
  su_sockaddr_t const *su = msg ? msg_addr (msg) : NULL;
  char host[SU_ADDRSIZE] = "";

  if (su && su_inet_ntop (su->su_family, SU_ADDR (su), host, sizeof host))
    set_signalling_host (leg, host);
}

void
td_leg_set_signalling_source (TdLeg *leg, const char *source)
{
  const char *slash = source ? strchr (source, '/') : NULL;
  const char *host = slash ? slash + 1 : NULL;
  g_autofree char *ip = NULL;

  if (!host)
    return;
  if (*host == '[')   /* [v6]:port */
    ip = g_strndup (host + 1, strcspn (host + 1, "]"));
  else
    ip = g_strndup (host, strcspn (host, ":"));
  if (g_hostname_is_ip_address (ip))
    set_signalling_host (leg, ip);
}

/* Port i of the leg, NULL if it has none (rejected, or no such stream). */
static TdRelayPort *
port_at (const TdLeg *leg, guint i)
{
  return i < leg->ports->len ? g_ptr_array_index (leg->ports, i) : NULL;
}

/* Where the relay sends stream i of `sdp`: the address (0.0.0.0 for none),
 * RTP port and RTCP port. */
static void
stream_target (const TdSdp *sdp, guint i, const char **address, guint16 *rtp, guint16 *rtcp)
{
  *address = td_sdp_media_address (sdp, i);
  *rtp = td_sdp_media_port (sdp, i);
  /* A rejected stream (port 0) or a missing address: send nothing. */
  if (!*address || *rtp == 0)
    *address = "0.0.0.0";
  *rtcp = td_sdp_media_rtcp_mux (sdp, i) ? *rtp : td_sdp_media_rtcp_port (sdp, i);
}

/* The leg's SDES state, made on first use: by then the leg knows its party. */
static TdSdes *
leg_sdes (TdLeg *leg)
{
  if (!leg->sdes) {
    TdSrtpPolicy policy = leg->ctx && leg->ctx->config
                            ? td_config_srtp_policy (leg->ctx->config, leg->user)
                            : TD_SRTP_OFF;
    leg->sdes = td_sdes_new (policy);
  }
  return leg->sdes;
}

gboolean
td_leg_sdp_acceptable (TdLeg *leg, const TdSdp *sdp, GError **error)
{
  return td_sdes_check (leg_sdes (leg), sdp, error);
}

/* Each port's SRTP as the SDES state says (the relay keeps its contexts when
 * the keys did not change: a session refresh, 183 then 200). */
static void
arm_srtp (TdLeg *leg)
{
  for (guint i = 0; i < leg->ports->len; i++) {
    const guint8 *rx = NULL, *tx = NULL;
    TdSrtpSuite suite;

    if (!port_at (leg, i))
      continue;
    suite = td_sdes_stream_keys (leg->sdes, i, &rx, &tx);
    td_relay_port_set_srtp (port_at (leg, i), suite, rx, tx);
  }
}

void
td_leg_set_remote_sdp (TdLeg *leg, TdSdp *sdp)
{
  TdSdp *old = leg->remote_sdp;

  /* Keys before targets: the relay handles commands in order, so a port
   * never sends to a new target before it knows that target speaks SRTP
   * (a packet forwarded in between would go out in the clear). */
  td_sdes_take_remote (leg_sdes (leg), sdp);
  arm_srtp (leg);
  for (guint i = 0; i < td_sdp_n_media (sdp) && i < leg->ports->len; i++) {
    const char *address, *old_address;
    guint16 rtp, rtcp, old_rtp, old_rtcp;

    if (!port_at (leg, i))
      continue;
    stream_target (sdp, i, &address, &rtp, &rtcp);
    /* An unchanged target (183 then 200, a session refresh) must not re-arm
     * latching: that would send to a NATed phone's private address again
     * and reopen the window for a stranger to latch. */
    if (old && i < td_sdp_n_media (old)) {
      stream_target (old, i, &old_address, &old_rtp, &old_rtcp);
      if (strcmp (address, old_address) == 0 && rtp == old_rtp && rtcp == old_rtcp)
        continue;
    }
    td_relay_port_set_remote (port_at (leg, i), address, rtp, rtcp);
  }
  leg->remote_sdp = sdp;
  td_sdp_free (old);
}

const char *
td_leg_local_sdp (TdLeg *leg, const TdSdp *from, const char *address)
{
  return td_leg_local_sdp_directed (leg, from, address, -1);
}

const char *
td_leg_local_sdp_directed (TdLeg *leg, const TdSdp *from, const char *address, int direction)
{
  guint n = td_sdp_n_media (from);
  g_autofree guint16 *ports = g_new0 (guint16, n);
  g_autofree char *text = NULL;
  TdSdpRewrite rw = {
    .address = address, .ports = ports, .n_ports = n, .origin_user = "tandem",
    .session_id = leg->sdp_session_id, .session_version = leg->sdp_version,
    .set_direction = direction >= 0, .direction = direction >= 0 ? (TdSdpDirection) direction : 0,
  };

  for (guint i = 0; i < n; i++)
    ports[i] = port_at (leg, i) ? td_relay_port_number (port_at (leg, i)) : 0;   /* 0: rejected */
  /* Each stream's profile and a=crypto are this leg's own: `from`'s keys
   * are the other endpoint's, and never cross. */
  td_sdes_fill_rewrite (leg_sdes (leg), from, &rw);
  text = td_sdp_rewrite (from, &rw);
  if (!text)
    return leg->local_sdp;   /* only on a programming error; td_sdp_rewrite said why */
  /* RFC 3264 §8: a changed SDP carries a higher version, an unchanged one the same. */
  if (leg->local_sdp && strcmp (text, leg->local_sdp) != 0) {
    rw.session_version = ++leg->sdp_version;
    g_free (text);
    text = td_sdp_rewrite (from, &rw);
  }
  g_free (leg->local_sdp);
  leg->local_sdp = g_steal_pointer (&text);
  return leg->local_sdp;
}

/* The SDP minus its o= line and its a=crypto lines: what tells two sessions
 * apart for the endpoint. The leg's SRTP is its own, whatever the peer: the
 * crypto lines only drop away once an offer's were declined. */
static char *
without_origin (const char *sdp)
{
  g_auto (GStrv) lines = g_strsplit (sdp ? sdp : "", "\n", -1);
  GString *out = g_string_new (NULL);
  for (guint i = 0; lines[i]; i++)
    if (!g_str_has_prefix (lines[i], "o=") && !g_str_has_prefix (lines[i], "a=crypto:"))
      g_string_append (out, lines[i]);
  return g_string_free (out, FALSE);
}

gboolean
td_leg_media_differs (TdLeg *leg, const TdSdp *from, const char *address)
{
  g_autofree char *before = g_strdup (leg->local_sdp);
  guint64 version = leg->sdp_version;
  g_autofree char *then = NULL, *now = NULL;

  if (!before)
    return TRUE;
  td_leg_local_sdp (leg, from, address);
  then = without_origin (before);
  now = without_origin (leg->local_sdp);
  /* Leave the leg as it was: the caller decides whether to send it. */
  g_free (leg->local_sdp);
  leg->local_sdp = g_steal_pointer (&before);
  leg->sdp_version = version;
  return strcmp (then, now) != 0;
}

/* Does this leg's endpoint send (or receive) on media line i, by its SDP? */
static gboolean
leg_sends (const TdLeg *leg, guint i)
{
  TdSdpDirection d;
  if (!leg->remote_sdp || i >= td_sdp_n_media (leg->remote_sdp))
    return TRUE;   /* nothing said yet (late offer): let media through */
  d = td_sdp_media_direction (leg->remote_sdp, i);
  return d == TD_SDP_SENDRECV || d == TD_SDP_SENDONLY;
}

static gboolean
leg_receives (const TdLeg *leg, guint i)
{
  TdSdpDirection d;
  if (!leg->remote_sdp || i >= td_sdp_n_media (leg->remote_sdp))
    return TRUE;
  d = td_sdp_media_direction (leg->remote_sdp, i);
  return (d == TD_SDP_SENDRECV || d == TD_SDP_RECVONLY) &&
         g_strcmp0 (td_sdp_media_address (leg->remote_sdp, i), "0.0.0.0") != 0;
}

/* Both endpoints' SDPs multiplex RTCP on stream i (RFC 5761): the answer
 * may carry a=rtcp-mux only if the offer did, and tandem passes each SDP's
 * attribute on to the other endpoint, so both legs then send RTCP to the RTP
 * port. */
static gboolean
rtcp_muxed (const TdLeg *a, const TdLeg *b, guint i)
{
  return a->remote_sdp && b->remote_sdp && i < td_sdp_n_media (a->remote_sdp) &&
         i < td_sdp_n_media (b->remote_sdp) && td_sdp_media_rtcp_mux (a->remote_sdp, i) &&
         td_sdp_media_rtcp_mux (b->remote_sdp, i);
}

/* A codec as an SDP names it: its rtpmap, else the static table's. */
static const char *
codec_name (const TdSdp *sdp, guint i, const char *pt)
{
  const char *map = td_sdp_media_rtpmap (sdp, i, pt);
  guint64 n;

  if (map)
    return map;
  return g_ascii_string_to_unsigned (pt, 10, 0, 127, &n, NULL) ? td_sdp_static_rtpmap ((guint) n)
                                                               : NULL;
}

/* Does `sup`'s stream i list every codec of `sub`'s? */
static gboolean
codecs_within (const TdSdp *sub, const TdSdp *sup, guint i)
{
  for (const char *const *f = td_sdp_media_formats (sub, i); f && *f; f++) {
    const char *name = codec_name (sub, i, *f);
    gboolean found = FALSE;

    for (const char *const *g = td_sdp_media_formats (sup, i); g && *g && !found; g++) {
      const char *other = codec_name (sup, i, *g);
      found = name && other ? g_ascii_strcasecmp (name, other) == 0 : g_strcmp0 (*f, *g) == 0;
    }
    if (!found)
      return FALSE;
  }
  return TRUE;
}

/* Does stream 0 of `sdp` list the codec `name` ("PCMU/8000") under any
 * payload type? (Each side numbers what it receives: RFC 3264 §6.1.) */
static gboolean
lists_codec (const TdSdp *sdp, const char *name)
{
  for (const char *const *f = td_sdp_media_formats (sdp, 0); f && *f; f++) {
    const char *other = codec_name (sdp, 0, *f);
    if (other && g_ascii_strcasecmp (other, name) == 0)
      return TRUE;
  }
  return FALSE;
}

/* The first format of the session (see td_leg_tune_format) whose codec
 * `usable` takes (tune NULL: any codec tandem speaks). */
static gboolean
session_format (const TdLeg *leg, const TdTune *tune, TdCodec *codec, guint8 *pt)
{
  g_autoptr (TdSdp) local = leg->local_sdp ? td_sdp_parse (leg->local_sdp, -1, NULL) : NULL;
  const TdSdp *answer = leg->remote_sdp, *other = local;

  if (!answer || td_sdp_n_media (answer) == 0)
    return FALSE;
  if (local && td_sdp_n_media (local) == 0)
    other = NULL;
  /* The SDP that lists only codecs of the other is the answer (see
   * negotiated_rate): its order is the session's (RFC 3264 §6.1). */
  if (other && codecs_within (other, answer, 0) && !codecs_within (answer, other, 0)) {
    answer = other;
    other = leg->remote_sdp;
  }
  for (const char *const *f = td_sdp_media_formats (answer, 0); f && *f; f++) {
    const char *name = codec_name (answer, 0, *f);
    guint64 number;

    if (!g_ascii_string_to_unsigned (*f, 10, 0, 127, &number, NULL) || !name ||
        !td_codec_from_sdp (name, codec) || (tune && !td_tune_has_codec (tune, *codec)))
      continue;
    if (other && !lists_codec (other, name))
      continue;   /* offered, not taken */
    *pt = (guint8) number;
    return TRUE;
  }
  return FALSE;
}

gboolean
td_leg_tune_format (const TdLeg *leg, const TdTune *tune, TdCodec *codec, guint8 *pt)
{
  return session_format (leg, tune, codec, pt);
}

gboolean
td_leg_mix_format (const TdLeg *leg, TdCodec *codec, guint8 *pt)
{
  return session_format (leg, NULL, codec, pt);
}

/* The clock of stream i in both directions is the codec the answer put
 * first: the negotiated one (RFC 3264 §6.1, §7), whatever the offer listed
 * first (A offers opus then PCMU, B answers PCMU: 8 kHz both ways). The leg
 * does not know which SDP answered, but an answer lists only codecs of the
 * offer: the SDP whose codecs the other lists all of, while it lacks one of
 * the other's, is the answer. Where that does not tell (the same codecs,
 * perhaps reordered; or neither within the other), each port keeps its own
 * endpoint's first codec. 0: unknown. */
static guint32
negotiated_rate (const TdLeg *leg, const TdLeg *other, guint i)
{
  const TdSdp *mine = leg->remote_sdp, *theirs = other->remote_sdp;
  gboolean mine_within, theirs_within;

  if (!mine || i >= td_sdp_n_media (mine))
    return 0;
  if (!theirs || i >= td_sdp_n_media (theirs))
    return td_sdp_media_clock_rate (mine, i);
  mine_within = codecs_within (mine, theirs, i);
  theirs_within = codecs_within (theirs, mine, i);
  if (theirs_within && !mine_within)
    return td_sdp_media_clock_rate (theirs, i);
  return td_sdp_media_clock_rate (mine, i);
}

/* What leaves port i toward the leg's endpoint is in the negotiated codec. */
static void
set_clock_rate (const TdLeg *leg, const TdLeg *other, TdRelayPort *port, guint i)
{
  guint32 rate = negotiated_rate (leg, other, i);

  if (rate)
    td_relay_port_set_clock_rate (port, rate);
}

void
td_leg_connect_media (TdLeg *a, TdLeg *b)
{
  for (guint i = 0; i < a->ports->len && i < b->ports->len; i++) {
    TdRelayPort *pa = port_at (a, i), *pb = port_at (b, i);

    if (!pa || !pb)
      continue;   /* a rejected stream */
    td_relay_connect (pa, pb);
    /* Hold: a party on hold (or holding) must not be heard: forward only
     * what one side sends and the other wants to receive. */
    td_relay_port_set_forward (pa, leg_sends (a, i) && leg_receives (b, i));
    td_relay_port_set_forward (pb, leg_sends (b, i) && leg_receives (a, i));
    set_clock_rate (a, b, pa, i);
    set_clock_rate (b, a, pb, i);
    if (rtcp_muxed (a, b, i)) {
      td_relay_port_drop_rtcp (pa);
      td_relay_port_drop_rtcp (pb);
    }
  }
  td_call_media_changed (a->call);
}

static void
report_srtp (TdLeg *leg, const char *call_id)
{
  TdRelayStats sum = { 0 };

  for (guint i = 0; i < leg->ports->len; i++) {
    TdRelayStats st;
    if (!port_at (leg, i))
      continue;
    td_relay_port_get_stats (port_at (leg, i), &st);
    sum.srtp_auth_failed += st.srtp_auth_failed;
    sum.srtp_replayed += st.srtp_replayed;
    sum.srtp_tx_failed += st.srtp_tx_failed;
  }
  if (sum.srtp_auth_failed || sum.srtp_replayed || sum.srtp_tx_failed)
    g_message ("call %s: %s-leg SRTP dropped %" G_GUINT64_FORMAT " packet(s) failing "
               "authentication, %" G_GUINT64_FORMAT " replayed; %" G_GUINT64_FORMAT
               " could not be protected", call_id, td_leg_name (leg),
               sum.srtp_auth_failed, sum.srtp_replayed, sum.srtp_tx_failed);
}

void
td_leg_release_ports (TdLeg *leg, const char *call_id)
{
  report_srtp (leg, call_id);
  g_ptr_array_set_size (leg->ports, 0);
}

gint64
td_leg_last_media (TdLeg *leg)
{
  gint64 last = 0;
  for (guint i = 0; i < leg->ports->len; i++) {
    TdRelayStats st;
    if (!port_at (leg, i))
      continue;
    td_relay_port_get_stats (port_at (leg, i), &st);
    last = MAX (last, st.last_rx_us);
  }
  return last;
}
