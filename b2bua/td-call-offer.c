/* Mid-call offers: re-INVITE and UPDATE relayed across the bridge (or
 * answered by a plugin), glare, and refused offers (RFC 3264 §8). */
#define G_LOG_DOMAIN "tandem-call"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include "td-call-private.h"
#include "td-room.h"

static void
respond_saved (TdLeg *leg, int status, const char *phrase, const char *sdp)
{
  td_signal_respond (leg->signal, leg->nh, TD_WITH_SAVED, leg->pending, status, phrase,
                     TAG_IF (sdp, SIPTAG_CONTENT_TYPE_STR ("application/sdp")),
                     TAG_IF (sdp, SIPTAG_PAYLOAD_STR (sdp)),
                     TAG_END ());
  td_signal_destroy_event (leg->signal, leg->pending);
  leg->has_pending = FALSE;
}

/* A plugin (hold music) may answer an offer itself instead of passing it on:
 * the answer is the other endpoint's current SDP, onto this leg's ports, with
 * the direction the plugin chose; the other endpoint hears of nothing. */
static gboolean
offer_answered_by_plugin (TdCall *call, TdLeg *leg, TdSdp *sdp)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  const char *answer;

  leg->local_answer = -1;
  if (td_call_run_hook (call, TD_HOOK_OFFER, leg, sdp, 0, NULL) != TD_HOOK_HANDLED)
    return FALSE;
  /* A resume answered from the other party's session must share a codec
   * with the offer (RFC 3264 §6.1); if it cannot, ask the other party. */
  if (leg->local_answer == TD_SDP_SENDRECV && peer->remote_sdp &&
      !td_sdp_answer_matches_offer (sdp, peer->remote_sdp)) {
    leg->local_answer = -1;
    return FALSE;
  }
  if (leg->local_answer < 0 || !peer->remote_sdp) {
    td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL,
                       SIP_500_INTERNAL_SERVER_ERROR, TAG_END ());
    td_sdp_free (sdp);
    return TRUE;
  }
  td_leg_set_remote_sdp (leg, sdp);
  answer = td_leg_local_sdp_directed (leg, peer->remote_sdp, td_call_media_address (call),
                                      leg->local_answer);
  td_leg_connect_media (leg, peer);
  td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, SIP_200_OK,
                     SIPTAG_CONTENT_TYPE_STR ("application/sdp"), SIPTAG_PAYLOAD_STR (answer),
                     TAG_END ());
  td_call_arm_refresh (call, leg);
  return TRUE;
}

/* Ports for `sdp`'s streams on both legs, or none: if the peer's run out,
 * what this offer got on `leg` goes back to the pool (td_leg_ensure_ports
 * is all or nothing for one leg only). */
static gboolean
ensure_ports_both (TdCall *call, TdLeg *leg, TdLeg *peer, const TdSdp *sdp, GError **error)
{
  guint had = leg->ports->len;
  g_autofree gboolean *held = g_new0 (gboolean, had + 1);

  for (guint i = 0; i < had; i++)
    held[i] = g_ptr_array_index (leg->ports, i) != NULL;
  if (!td_leg_ensure_ports (leg, call->ctx->relay, sdp, error))
    return FALSE;
  if (td_leg_ensure_ports (peer, call->ctx->relay, sdp, error))
    return TRUE;
  /* Through the array, so that its free function closes each port. */
  for (guint i = 0; i < had; i++)
    if (!held[i] && g_ptr_array_index (leg->ports, i)) {
      g_ptr_array_remove_index (leg->ports, i);
      g_ptr_array_insert (leg->ports, i, NULL);
    }
  g_ptr_array_set_size (leg->ports, had);
  return FALSE;
}

void
td_call_answer_without_offer (TdCall *call, TdLeg *leg, gboolean is_update)
{
  /* A session refresh, or a re-INVITE asking for our offer: the SDP we last
   * gave this endpoint is still true. */
  td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, SIP_200_OK,
               TAG_IF (!is_update && leg->local_sdp, SIPTAG_CONTENT_TYPE_STR ("application/sdp")),
               TAG_IF (!is_update && leg->local_sdp, SIPTAG_PAYLOAD_STR (leg->local_sdp)),
               TAG_END ());
  leg->ack_answer_due = !is_update && leg->local_sdp;
  td_call_arm_refresh (call, leg);
}

TdSdp *
td_call_offer_take (TdCall *call, TdLeg *leg, const sip_t *sip, gboolean is_update)
{
  TdSdp *sdp;

  if (td_call_refuse_body (leg->signal, leg->nh, sip))
    return NULL;
  /* Every re-INVITE and UPDATE renegotiates the session timer (RFC 4028 §9). */
  td_call_learn_allow (leg, sip, FALSE);
  td_call_session_from_request (call, leg, sip);
  if (!td_call_has_sdp (sip)) {
    td_call_answer_without_offer (call, leg, is_update);
    return NULL;
  }
  if (!(sdp = td_call_parse_sdp (call, leg, sip)))
    td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, SIP_488_NOT_ACCEPTABLE,
                       TAG_END ());
  return sdp;
}

/* `leg`'s endpoint sent an offer: pass it to the other endpoint and answer
 * when the answer comes back (offer_answer_done). */
void
td_call_offer_received (TdCall *call, TdLeg *leg, const sip_t *sip, gboolean is_update)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  g_autoptr (GError) error = NULL;
  TdSdp *sdp;
  const char *offer;

  if (call->room && leg == call->a) {
    td_room_offer_received (call->room, call, leg, sip, is_update);
    return;
  }
  if (!peer || !peer->nh || call->ended) {
    td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, 488,
                       "Not Acceptable Here (no established session)", TAG_END ());
    return;
  }
  /* One offer at a time across the bridge: glare is answered 491 (RFC 3261
   * §14.2, RFC 3311 §5.2). Tandem's refresh UPDATE is no offer
   * (update_refresh_out): it does not count. */
  if (leg->has_pending || leg->outgoing || peer->has_pending || peer->outgoing) {
    td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, SIP_491_REQUEST_PENDING,
                       TAG_END ());
    return;
  }
  if (!(sdp = td_call_offer_take (call, leg, sip, is_update)))
    return;
  if (!ensure_ports_both (call, leg, peer, sdp, &error)) {
    /* Not 503, nor 500: without Retry-After, RFC 5057 lets the offerer
     * end the dialog on either, and Sofia's nua does (cr_graceful: BYE);
     * with Retry-After, nua resends the re-INVITE by itself after the
     * delay, an offer its user never made again. A call in progress must
     * never be disturbed (issue 8 item 6). 488 refuses this offer only, in
     * RFC 5057 and in nua alike: the session stays as it was. */
    g_warning ("call %s: %s", call->call_id, error->message);
    td_sdp_free (sdp);
    td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, 488,
                       "Not Acceptable Here (no media ports)", TAG_END ());
    return;
  }
  if (offer_answered_by_plugin (call, leg, sdp))
    return;
  /* RFC 3264 §8: the offer takes effect only once answered; a refused offer
   * changes nothing (offer_answer_done). */
  g_clear_pointer (&leg->offered_sdp, td_sdp_free);
  leg->offered_sdp = sdp;
  g_free (peer->accepted_local_sdp);
  peer->accepted_local_sdp = g_strdup (peer->local_sdp);
  td_signal_save_event (leg->signal, leg->pending);
  leg->has_pending = TRUE;
  leg->pending_is_update = is_update;
  peer->outgoing = TD_OUT_RELAYED;
  /* Beside tandem's refresh UPDATE, the offer goes as a re-INVITE: never
   * two UPDATEs out on one dialog, and each answer's method says which
   * request it answers. */
  peer->pending_is_update_out = is_update && !peer->update_refresh_out;
  offer = td_leg_local_sdp (peer, sdp, td_call_media_address (call));
  if (peer->pending_is_update_out)
    td_signal_update (peer->signal, peer->nh, SIPTAG_CONTENT_TYPE_STR ("application/sdp"),
                SIPTAG_PAYLOAD_STR (offer), TAG_END ());
  else
    td_signal_invite (peer->signal, peer->nh, SIPTAG_CONTENT_TYPE_STR ("application/sdp"),
                SIPTAG_PAYLOAD_STR (offer), TAG_END ());
}

int
td_call_status_for_offerer (int status)
{
  /* The offerer must keep its dialog (RFC 3261 §12.2.1.2, RFC 5057): never
   * relay nua's internal codes (≥ 700), a 408/481 or another status that
   * ends the receiver's dialog (404, 410, 416, 482-485, 502, 604), a
   * redirect or the other party's challenge; a 503 is the B2BUA's own (RFC
   * 3261 §16.7). All of them become 500. */
  switch (status) {
  case 401: case 404: case 407: case 408: case 410: case 416: case 481: case 482:
  case 483: case 484: case 485: case 502: case 503: case 604:
    return 500;
  default:
    return status >= 700 || (status >= 300 && status < 400) ? 500 : status;
  }
}

gboolean
td_call_status_ends_dialog (int status)
{
  /* RFC 4028 §10 and RFC 5057: only these say the dialog itself is gone;
   * any other error refuses the request and leaves the session as it was. */
  return status == 408 || status == 481;
}

/* `peer` took a session that its other party never got (a 2xx that crossed
 * the offerer's CANCEL, an answer tandem refused for the offerer): offer it
 * the other party's current session again, so that both legs' sessions and
 * the relay agree. */
void
td_call_realign (TdCall *call, TdLeg *peer)
{
  TdLeg *leg = td_call_peer_of (call, peer);
  const char *offer;

  if (!leg || call->ended || !peer->nh || !leg->remote_sdp)
    return;
  g_info ("call %s: offering the %s-leg its other party's current session", call->call_id,
          td_leg_name (peer));
  offer = td_leg_local_sdp (peer, leg->remote_sdp, td_call_media_address (call));
  peer->outgoing = TD_OUT_REALIGN;
  peer->pending_is_update_out = FALSE;
  td_signal_invite (peer->signal, peer->nh, SIPTAG_CONTENT_TYPE_STR ("application/sdp"),
                    SIPTAG_PAYLOAD_STR (offer), TAG_END ());
}

/* The answer to tandem's re-INVITE/UPDATE arrived on `peer`. */
void
td_call_offer_answer_done (TdCall *call, TdLeg *peer, int status, const sip_t *sip)
{
  TdLeg *leg = td_call_peer_of (call, peer);
  TdLegOutgoing outgoing = peer->outgoing;
  TdSdp *sdp;

  if (outgoing == TD_OUT_REFRESH) {
    td_call_refresh_done (call, peer, status, sip, FALSE);
    return;
  }
  if (call->room && peer == call->a && outgoing != TD_OUT_NONE && status >= 200) {
    td_room_answer_received (call->room, call, peer, status, sip);
    return;
  }
  if (status < 200 || outgoing == TD_OUT_NONE)
    return;
  if (call->late_offer && peer->role == TD_LEG_B && status < 300 && !peer->pending_is_update_out)
    td_call_ack_b (peer, NULL);
  peer->outgoing = TD_OUT_NONE;
  if (!leg || !leg->nh)
    return;
  if (status < 300) {
    /* Any 2xx to a re-INVITE or UPDATE refreshes the session. */
    td_call_learn_allow (peer, sip, FALSE);
    td_call_session_from_response (call, peer, sip);
    td_call_arm_refresh (call, peer);
  }
  sdp = status < 300 && td_call_has_sdp (sip) ? td_call_parse_sdp (call, peer, sip) : NULL;
  if (outgoing == TD_OUT_REALIGN && status == 491) {
    /* The endpoint sent an offer of its own at the same time: without the
     * realignment the sessions stay apart, so send it again (§14.1). */
    td_call_retry_after_glare (peer, TD_OUT_REALIGN);
    return;
  }
  if (outgoing == TD_OUT_REALIGN && status >= 300)
    td_call_arm_refresh (call, peer);   /* its retry may have used the timer */
  if (outgoing == TD_OUT_REALIGN || !leg->has_pending) {
    /* A realignment answered, or the answer to an offer its sender withdrew
     * (the 200 crossed the CANCEL, or an UPDATE): whatever `peer` accepted
     * is its session now, and the relay must follow it. */
    if (sdp) {
      td_leg_set_remote_sdp (peer, sdp);
      td_leg_connect_media (leg, peer);
    }
    g_clear_pointer (&peer->accepted_local_sdp, g_free);
    if (outgoing == TD_OUT_RELAYED && status < 300)
      td_call_realign (call, peer);
    return;
  }
  if (sdp && leg->offered_sdp && !td_sdp_answer_matches_offer (leg->offered_sdp, sdp)) {
    /* The far end accepted without a codec of the offer (RFC 3264 §6.1):
     * passing that on would leave the offerer without audio. The far end
     * has the new session all the same: bring it back to the old one. */
    g_info ("call %s: the answer to a re-offer shares no codec with it: 488", call->call_id);
    g_clear_pointer (&leg->offered_sdp, td_sdp_free);
    g_clear_pointer (&peer->accepted_local_sdp, g_free);
    td_leg_set_remote_sdp (peer, sdp);
    td_leg_connect_media (leg, peer);
    respond_saved (leg, SIP_488_NOT_ACCEPTABLE, NULL);
    td_call_realign (call, peer);
    return;
  }
  if (status >= 300) {
    /* Refused: both sides keep the session they had. */
    int told = td_call_status_for_offerer (status);
    g_clear_pointer (&leg->offered_sdp, td_sdp_free);
    g_free (peer->local_sdp);
    peer->local_sdp = g_steal_pointer (&peer->accepted_local_sdp);
    respond_saved (leg, told, td_call_phrase (told), NULL);
    if (td_call_status_ends_dialog (status))
      td_call_end (call, "the other party's dialog is gone", peer);
    return;
  }
  if (leg->offered_sdp)
    td_leg_set_remote_sdp (leg, g_steal_pointer (&leg->offered_sdp));
  if (sdp)
    td_leg_set_remote_sdp (peer, sdp);
  g_clear_pointer (&peer->accepted_local_sdp, g_free);
  td_leg_connect_media (leg, peer);
  respond_saved (leg, SIP_200_OK,
                 peer->remote_sdp ? td_leg_local_sdp (leg, peer->remote_sdp, td_call_media_address (call))
                                  : NULL);
  td_call_arm_refresh (call, leg);
}

/* nua has answered 487 to a re-INVITE its sender cancelled: take back the
 * offer tandem relayed for it (RFC 3261 §9: CANCEL it on the other leg). */
void
td_call_offer_cancelled (TdCall *call, TdLeg *leg)
{
  TdLeg *peer = td_call_peer_of (call, leg);

  if (!leg->has_pending)
    return;
  td_signal_destroy_event (leg->signal, leg->pending);
  leg->has_pending = FALSE;
  g_clear_pointer (&leg->offered_sdp, td_sdp_free);
  if (peer && peer->nh && peer->outgoing == TD_OUT_RELAYED && !peer->pending_is_update_out)
    td_signal_cancel (peer->signal, peer->nh);
  if (peer && peer->accepted_local_sdp) {
    g_free (peer->local_sdp);
    peer->local_sdp = g_steal_pointer (&peer->accepted_local_sdp);
  }
}

/* An ACK may carry the answer to the offer tandem made in a 200 to an
 * offerless re-INVITE: the endpoint's media may have moved. That offer was
 * the other endpoint's session; an answer without one of its codecs cannot
 * be refused any more (RFC 3264 §6), so it ends the call. */
void
td_call_ack_received (TdCall *call, TdLeg *leg, const sip_t *sip)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  TdSdp *sdp;

  if (!leg->ack_answer_due)
    return;
  leg->ack_answer_due = FALSE;
  if (!peer || !td_call_has_sdp (sip) || !(sdp = td_call_parse_sdp (call, leg, sip)))
    return;
  if (peer->remote_sdp && !td_sdp_answer_matches_offer (peer->remote_sdp, sdp)) {
    g_info ("call %s: the answer in the %s-leg's ACK shares no codec with the offer",
            call->call_id, td_leg_name (leg));
    td_sdp_free (sdp);
    td_call_end (call, "SDP answer in ACK shares no codec with the offer", NULL);
    return;
  }
  td_leg_set_remote_sdp (leg, sdp);
  td_leg_connect_media (leg, peer);
}
