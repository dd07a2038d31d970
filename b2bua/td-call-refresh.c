/* Session refresh (RFC 4028) on each leg of a call.
 *
 * nua negotiates the session timer (Session-Expires, Min-SE, Require; a
 * callee's 422 to the initial INVITE is retried by td-call.c, since nua
 * retries nothing itself, NUTAG_RETRY_COUNT(0))
 * and ends a dialog whose endpoint stops refreshing. Tandem sends the
 * refreshes itself where it is the refresher, because nua's own would be
 * wrong for a B2BUA that owns its SDP (NUTAG_MEDIA_ENABLE(0)): toward a peer
 * without UPDATE nua re-INVITEs without SDP (the A-leg) or with the SDP of
 * its last INVITE, however old (the B-leg). Tandem refreshes with UPDATE
 * only toward a peer whose Allow lists it, otherwise with a re-INVITE that
 * carries the SDP it last gave that endpoint, byte for byte (same o=
 * version: nothing changed, RFC 3264 §8). It refreshes 10 s before nua's
 * own refresh window (half the interval ± 5 s); nua restarts its timer on
 * every 2xx, so it never refreshes by itself while tandem's refreshes work.
 *
 * A refresh answered with an error does not end the call: only 408 or 481
 * (or no answer, which nua reports as 408) say the dialog is gone (RFC 4028
 * §10, RFC 5057). One limit stays nua's and no tag lifts it: after a 5xx
 * (500 and 503 only without Retry-After: with one, nua resends the request
 * itself after the delay), a 405 to a re-INVITE, most 6xx and its own 9xx,
 * nua ends the session with a BYE by itself, for a re-INVITE and an UPDATE
 * alike: an UPDATE is a request of the session's usage (nua_client.c
 * cr_graceful, which sip_response_terminates_dialog leaves set for those).
 * Measured: a 500 to tandem's refresh re-INVITE, and a 501 to its refresh
 * UPDATE, are followed by nua's BYE within a millisecond, before tandem
 * hears of the response (tests/flows/test-refresh.c /refresh/update-501).
 * A 405 to an UPDATE leaves the session alone (RFC 5057; in nua too): tandem
 * refreshes with a re-INVITE from then on. */
#define G_LOG_DOMAIN "tandem-call"

#include <string.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>

#include "td-call-private.h"

#define MIN_SE 90                   /* RFC 4028 §5: the lowest Min-SE on the wire */
#define AHEAD_OF_NUA_MS 10000       /* before nua's window of interval/2 ± 5 s */
#define BUSY_RETRY_MS 2000          /* an offer exchange is under way on the leg */

static void on_refresh_due (gpointer data);

void
td_call_learn_allow (TdLeg *leg, const sip_t *sip, gboolean initial)
{
  gboolean allows;

  if (!sip || (!sip->sip_allow && !initial))
    return;
  allows = sip->sip_allow && sip_is_allowed (sip->sip_allow, sip_method_update, "UPDATE");
  if (!initial && allows == leg->peer_allows_update)
    return;
  leg->peer_allows_update = allows;
  /* Should nua ever refresh by itself, the method must fit the peer too. */
  if (leg->nh)
    td_signal_set_params (leg->signal, leg->nh, NUTAG_UPDATE_REFRESH (allows), TAG_END ());
}

static gboolean
has_timer (const sip_t *sip)
{
  return sip_has_feature (sip->sip_supported, "timer") ||
         sip_has_feature (sip->sip_require, "timer");
}

static guint
clamp_interval (guint interval, guint configured, const sip_t *sip)
{
  guint min = MIN_SE;
  if (sip->sip_min_se && sip->sip_min_se->min_delta > min)
    min = sip->sip_min_se->min_delta;
  if (interval > configured)
    interval = configured;
  return MAX (interval, min);
}

/* What nua decides as the UAS of `sip`, a session's INVITE or a re-INVITE
 * or UPDATE from the endpoint (its session_timer_negotiate). */
void
td_call_session_from_request (TdCall *call, TdLeg *leg, const sip_t *sip)
{
  guint configured = call->ctx->config->session_timer;
  const sip_session_expires_t *x = sip->sip_session_expires;

  if (!configured) {
    leg->refresher = TD_REFRESHER_NONE;
    leg->session_interval = 0;
    return;
  }
  leg->session_interval = clamp_interval (x ? (guint) x->x_delta : configured, configured, sip);
  leg->peer_has_timer = leg->peer_has_timer || has_timer (sip);
  if (!leg->peer_has_timer)
    leg->refresher = TD_REFRESHER_TANDEM;     /* it cannot: the UAS must */
  else if (x && x->x_refresher && g_ascii_strcasecmp (x->x_refresher, "uas") == 0)
    leg->refresher = TD_REFRESHER_TANDEM;
  else
    leg->refresher = TD_REFRESHER_PEER;       /* the UAC's choice, or nua's default */
}

/* What nua decides as the UAC from the 2xx `sip` to tandem's INVITE,
 * re-INVITE or UPDATE on the leg. */
void
td_call_session_from_response (TdCall *call, TdLeg *leg, const sip_t *sip)
{
  guint configured = call->ctx->config->session_timer;
  const sip_session_expires_t *x = sip ? sip->sip_session_expires : NULL;

  if (!configured || !sip) {
    if (!configured)
      leg->refresher = TD_REFRESHER_NONE;
    return;
  }
  if (!x) {
    /* The endpoint has no session timer: the UAC refreshes (RFC 4028 §7.2). */
    leg->refresher = TD_REFRESHER_TANDEM;
    leg->session_interval = MAX (configured, MIN_SE);
    return;
  }
  leg->session_interval = clamp_interval (x->x_delta, configured, sip);
  leg->refresher = x->x_refresher && g_ascii_strcasecmp (x->x_refresher, "uas") == 0
                     ? TD_REFRESHER_PEER : TD_REFRESHER_TANDEM;
}

static void
arm (TdCall *call, TdLeg *leg, guint delay_ms)
{
  td_timer_clear (&leg->refresh_timer);
  leg->refresh_delay_ms = delay_ms;
  leg->refresh_timer = td_timers_add (call->ctx->timers, delay_ms, on_refresh_due, leg);
}

void
td_call_arm_refresh (TdCall *call, TdLeg *leg)
{
  guint half_ms;

  /* A realignment waiting out glare refreshes the session when it goes
   * through: its timer stays. */
  if (leg->timer_sends == TD_OUT_REALIGN && leg->refresh_timer)
    return;
  td_timer_clear (&leg->refresh_timer);
  leg->timer_sends = TD_OUT_NONE;
  if (call->ended || !leg->nh || leg->refresher != TD_REFRESHER_TANDEM || !leg->session_interval)
    return;
  half_ms = leg->session_interval * 1000 / 2;
  arm (call, leg, half_ms > AHEAD_OF_NUA_MS + 1000 ? half_ms - AHEAD_OF_NUA_MS : half_ms / 2);
}

static void
send_refresh (TdCall *call, TdLeg *leg)
{
  g_debug ("call %s: refreshing the %s-leg's session with %s", call->call_id, td_leg_name (leg),
           leg->peer_allows_update ? "UPDATE" : "re-INVITE");
  /* nua adds Session-Expires and Supported as negotiated. The UPDATE has
   * no SDP (and nua, without media, adds none): no offer, so an offer
   * arriving meanwhile is no glare. The re-INVITE is an offer. */
  if (leg->peer_allows_update) {
    leg->update_refresh_out = TRUE;
    td_signal_update (leg->signal, leg->nh, TAG_END ());
    return;
  }
  leg->outgoing = TD_OUT_REFRESH;
  leg->pending_is_update_out = FALSE;
  td_signal_invite (leg->signal, leg->nh,
                    TAG_IF (leg->local_sdp, SIPTAG_CONTENT_TYPE_STR ("application/sdp")),
                    TAG_IF (leg->local_sdp, SIPTAG_PAYLOAD_STR (leg->local_sdp)),
                    TAG_END ());
}

gboolean
td_call_refresh_due (TdLeg *leg)
{
  TdCall *call = leg->call;
  TdLeg *peer = call ? td_call_peer_of (call, leg) : NULL;

  if (!call || call->ended || !leg->nh ||
      (leg->timer_sends != TD_OUT_REALIGN && leg->refresher != TD_REFRESHER_TANDEM))
    return FALSE;
  /* An offer exchange on this leg (or waiting for one) refreshes the
   * session when it succeeds; a second request now would only collide. */
  if (leg->outgoing || leg->update_refresh_out || leg->has_pending ||
      (peer && (peer->outgoing || peer->has_pending))) {
    arm (call, leg, BUSY_RETRY_MS);
    return FALSE;
  }
  if (leg->timer_sends == TD_OUT_REALIGN) {
    leg->timer_sends = TD_OUT_NONE;
    td_call_realign (call, leg);
    return leg->outgoing == TD_OUT_REALIGN;
  }
  send_refresh (call, leg);
  return TRUE;
}

guint
td_call_glare_delay_ms (const TdLeg *leg)
{
  /* RFC 3261 §14.1, in units of 10 ms: the owner of the Call-ID (the UA
   * that generated it: tandem on a B-leg) waits 2.1-4 s, the other side
   * 0-2 s, so that the other side's retry goes first. */
  if (leg->role == TD_LEG_B)
    return 2100 + 10 * (guint) g_random_int_range (0, 191);
  return 10 * (guint) g_random_int_range (0, 201);
}

void
td_call_retry_after_glare (TdLeg *leg, TdLegOutgoing what)
{
  guint delay_ms = td_call_glare_delay_ms (leg);

  g_debug ("call %s: glare on the %s-leg: trying again in %u ms", leg->call->call_id,
           td_leg_name (leg), delay_ms);
  arm (leg->call, leg, delay_ms);
  leg->timer_sends = what == TD_OUT_REALIGN ? TD_OUT_REALIGN : TD_OUT_NONE;
}

static void
on_refresh_due (gpointer data)
{
  TdLeg *leg = data;
  leg->refresh_timer = NULL;
  td_call_refresh_due (leg);
}

void
td_call_refresh_done (TdCall *call, TdLeg *leg, int status, const sip_t *sip,
                      gboolean was_update)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  TdSdp *sdp;

  if (status < 200)
    return;
  if (was_update)
    leg->update_refresh_out = FALSE;
  else
    leg->outgoing = TD_OUT_NONE;
  if (status < 300) {
    if (call->late_offer && leg->role == TD_LEG_B && !was_update)
      td_call_ack_b (leg, NULL);
    /* The answer to an unchanged offer should be unchanged too; if the
     * endpoint moved anyway, the relay follows it. */
    if (!was_update && td_call_has_sdp (sip) && (sdp = td_call_parse_sdp (call, leg, sip))) {
      td_leg_set_remote_sdp (leg, sdp);
      if (peer)
        td_leg_connect_media (leg, peer);
    }
    td_call_learn_allow (leg, sip, FALSE);
    td_call_session_from_response (call, leg, sip);
    td_call_arm_refresh (call, leg);
    return;
  }
  if (td_call_status_ends_dialog (status)) {
    td_call_end (call, "session refresh failed: the dialog is gone", leg);
    return;
  }
  if (was_update && status == 405) {
    /* Its Allow said otherwise, or it changed its mind: re-INVITE now (a
     * 501 would come too late for that: nua has sent its BYE already). */
    g_info ("call %s: the %s-leg refused UPDATE (%d): refreshing with re-INVITE",
            call->call_id, td_leg_name (leg), status);
    leg->peer_allows_update = FALSE;
    td_signal_set_params (leg->signal, leg->nh, NUTAG_UPDATE_REFRESH (0), TAG_END ());
    /* An offer relayed meanwhile refreshes the session when answered. */
    if (leg->outgoing)
      td_call_arm_refresh (call, leg);
    else
      send_refresh (call, leg);
    return;
  }
  if (status == 491) {
    td_call_retry_after_glare (leg, TD_OUT_REFRESH);
    return;
  }
  /* Refused, but the dialog lives on: so does the call. */
  g_info ("call %s: the %s-leg answered its session refresh with %d; the call goes on",
          call->call_id, td_leg_name (leg), status);
  td_call_arm_refresh (call, leg);
}
