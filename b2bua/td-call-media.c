/* A call's media as the relay reports it: tunes tandem plays to one party
 * (td-plugin.h; ringback is td-call-early.c's), and the RTP timeout.
 *
 * A tune is played to one party from the relay, under that party's own RTP
 * context, so the switch back to the other party's voice is seamless.
 *
 * The RTP timeout ([calls] rtp-timeout): an answered call not on hold whose
 * ports have all been silent that long is ended ("rtp timeout", BYE both
 * sides). Nothing polls: the relay reports IDLE for a port silent for the
 * timeout (the daemon sets the relay's idle timeout to it) and ACTIVE when
 * it hears it again, on the SIP thread; the call looks again only then, and
 * when its SDPs change. While every port is idle the call keeps one timer,
 * for the case where the silence began before the answer or a hold ended:
 * the silence counts from the later of the last packet and rtp_since (the
 * answer, the end of the last hold). A hold's silence does not count: a
 * resumed call has the whole timeout for its RTP to come back, rather than
 * being ended the instant it is resumed. */
#define G_LOG_DOMAIN "tandem-call"

#include "td-call-private.h"

/* The port of the leg's first stream, NULL if it has none (rejected). */
static TdRelayPort *
first_port (const TdLeg *leg)
{
  return leg && leg->ports->len > 0 ? g_ptr_array_index (leg->ports, 0) : NULL;
}

gboolean
td_call_play_to_peer (TdCall *call, TdLeg *leg, TdTune *tune)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  TdRelayPort *port = first_port (peer);
  TdCodec codec;
  guint8 pt;

  if (!port || !td_leg_tune_format (peer, tune, &codec, &pt)) {
    g_info ("call %s: cannot play %s: the other party's session has no codec it is in",
            call->call_id, td_tune_path (tune));
    return FALSE;
  }
  td_relay_port_play (port, tune, codec, pt);
  g_info ("call %s: playing %s to the %s-leg (%s, payload type %u)", call->call_id,
          td_tune_path (tune), td_leg_name (peer), td_codec_name (codec), pt);
  return TRUE;
}

void
td_call_stop_playing_to_peer (TdCall *call, TdLeg *leg)
{
  TdRelayPort *port = first_port (td_call_peer_of (call, leg));
  if (port)
    td_relay_port_stop (port);
}

gboolean
td_call_is_playing_to_peer (TdCall *call, TdLeg *leg)
{
  TdRelayPort *port = first_port (td_call_peer_of (call, leg));
  return port && td_relay_port_is_playing (port);
}

/* ---- the RTP timeout ---------------------------------------------------------------------- */

static gboolean
on_hold (const TdLeg *leg)
{
  return leg && leg->remote_sdp && td_sdp_n_media (leg->remote_sdp) > 0 &&
         td_sdp_media_is_hold (leg->remote_sdp, 0);
}

static gboolean
held (const TdCall *call)
{
  return on_hold (call->a) || on_hold (call->bridged);
}

static gboolean
ports_idle (const TdLeg *leg)
{
  if (!leg)
    return TRUE;
  for (guint i = 0; i < leg->ports->len; i++) {
    TdRelayPort *port = g_ptr_array_index (leg->ports, i);
    if (port && !td_relay_port_is_idle (port))
      return FALSE;
  }
  return TRUE;
}

/* Two parties talk, or one party talks to a room. */
static gboolean
counts_silence (const TdCall *call)
{
  return call->a && (call->bridged || call->room);
}

/* When the call's silence reaches the timeout; 0 while it is not counting:
 * no timeout, not answered, ending, on hold, or a port still heard (it will
 * report IDLE when it falls silent). */
static gint64
rtp_deadline (const TdCall *call)
{
  gint64 timeout = (gint64) call->ctx->config->rtp_timeout * G_USEC_PER_SEC;

  if (!timeout || !counts_silence (call) || call->ended || !call->rtp_since || held (call) ||
      !ports_idle (call->a) || !ports_idle (call->bridged))
    return 0;
  return MAX (call->rtp_since, MAX (td_leg_last_media (call->a),
                                    call->bridged ? td_leg_last_media (call->bridged) : 0)) +
         timeout;
}

static void on_rtp_deadline (gpointer data);

/* `may_end`: FALSE when called from inside the call's own SIP handling
 * (an SDP change), where ending the call would pull it from under its
 * caller: an overdue deadline then fires from the main loop at once. */
static void
rtp_check (TdCall *call, gboolean may_end)
{
  gint64 deadline = rtp_deadline (call), now = g_get_monotonic_time ();

  td_timer_clear (&call->rtp_timer);
  if (!deadline)
    return;
  if (now >= deadline && may_end) {
    g_info ("call %s: no RTP for %u s, hanging up", call->call_id,
            call->ctx->config->rtp_timeout);
    td_call_end (call, "rtp timeout", NULL);
    return;
  }
  call->rtp_timer = td_timers_add (call->ctx->timers,
                                   (guint) MAX (0, (deadline - now + 999) / 1000),
                                   on_rtp_deadline, call);
}

static void
on_rtp_deadline (gpointer data)
{
  TdCall *call = data;

  call->rtp_timer = NULL;
  rtp_check (call, TRUE);
}

void
td_call_media_port_event (TdRelayPort *port, const TdRelayEvent *event, gpointer data)
{
  TdLeg *leg = data;
  TdCall *call = leg->call;

  if (!call)
    return;
  switch (event->kind) {
  case TD_RELAY_EVENT_FIRST_PACKET:
    g_debug ("call %s: first RTP from the %s-leg on port %u", call->call_id, td_leg_name (leg),
             td_relay_port_number (port));
    break;
  case TD_RELAY_EVENT_LATCHED:
    g_debug ("call %s: %s-leg port %u latched to %s port %u", call->call_id, td_leg_name (leg),
             td_relay_port_number (port), event->address, event->address_port);
    break;
  case TD_RELAY_EVENT_IDLE:
  case TD_RELAY_EVENT_ACTIVE:
    if (leg == call->a || leg == call->bridged)
      rtp_check (call, TRUE);
    break;
  case TD_RELAY_EVENT_TUNE_ENDED:
    /* The callee's media took over from the ringback (td-call-early.c). */
    g_info ("call %s: the %s-leg hears the other party now (its first packet ended the tune)",
            call->call_id, td_leg_name (leg));
    break;
  }
}

void
td_call_media_changed (TdCall *call)
{
  /* A call counts silence only while two parties are in it (or its one
   * party is in a room). */
  if (!call || !counts_silence (call))
    return;
  if (held (call))
    call->rtp_since = 0;
  else if (!call->rtp_since)
    call->rtp_since = g_get_monotonic_time ();   /* answered, or off hold */
  rtp_check (call, FALSE);
}
