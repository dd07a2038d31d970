/* Legs that move between calls: a call tandem originates for a party, a leg
 * taken from one call into another (transfer), a leg replaced by a new
 * INVITE (RFC 3891), and the legs that left their call while they hang up.
 *
 * Tandem anchors the media, so a moved leg keeps its relay ports, and with
 * them its outgoing RTP context: the endpoint sees one SSRC and one sequence
 * for the whole dialog. Only when what tandem tells the endpoint changes
 * (another codec, the end of a hold) does it get a re-INVITE. */
#define G_LOG_DOMAIN "tandem-call"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include "td-call-private.h"
#include "td-router.h"

G_DEFINE_QUARK (td-call-error-quark, td_call_error)

/* ---- what plugins may read of a leg ------------------------------------------ */

guint64
td_leg_get_id (const TdLeg *leg)
{
  return leg->id;
}

TdCall *
td_leg_get_call (const TdLeg *leg)
{
  return leg->call;
}

const char *
td_leg_get_user (const TdLeg *leg)
{
  return leg->user;
}

TdLeg *
td_leg_get_peer (const TdLeg *leg)
{
  return leg->call ? td_call_peer_of (leg->call, leg) : NULL;
}

void
td_call_hangup (TdCall *call, const char *reason)
{
  gboolean originator_waits = !call->a && !call->origin_final;

  td_call_end (call, reason, NULL);
  if (originator_waits)
    td_call_respond_a (call, 487, NULL, NULL);   /* the originator gave up */
}

gboolean
td_call_is_ended (const TdCall *call)
{
  return call->ended;
}

TdLeg *
td_leg_find (const TdLeg *any, guint64 id)
{
  return td_leg_lookup (any->ctx, id);
}

TdLeg *
td_leg_find_replaced (const TdLeg *any, const char *replaces)
{
  su_home_t home[1] = { SU_HOME_INIT (home) };
  sip_replaces_t *rp = replaces ? sip_replaces_make (home, replaces) : NULL;
  TdLeg *found = rp ? td_signal_by_replaces (any->signal, rp) : NULL;

  su_home_deinit (home);
  return found;
}

void
td_leg_set_stays (TdLeg *leg, gboolean stays)
{
  leg->stays = stays;
}

void
td_leg_hangup (TdLeg *leg)
{
  if (!leg->nh)
    return;
  if (leg->answered)
    td_signal_bye (leg->signal, leg->nh);
  else if (leg->role == TD_LEG_B && !leg->final && !leg->cancelled) {
    td_signal_cancel (leg->signal, leg->nh);
    leg->cancelled = TRUE;
  }
}

/* ---- detaching and attaching ------------------------------------------------- */

TdLeg *
td_call_detach_leg (TdCall *call, TdLeg *leg)
{
  TdLeg *ref = NULL;

  if (call->a == leg) {
    ref = g_steal_pointer (&call->a);
  } else {
    guint i;
    if (!g_ptr_array_find (call->b_legs, leg, &i))
      return NULL;
    ref = g_ptr_array_steal_index (call->b_legs, i);
    if (call->bridged == leg)
      call->bridged = NULL;
  }
  leg->call = NULL;
  return ref;
}

/* A leg that left its call is hung up; tandem keeps it until nua says its
 * dialog is over, so that its BYE transaction completes. */
static void
let_go (TdCallContext *ctx, TdLeg *ref)
{
  td_timer_clear (&ref->refresh_timer);
  td_leg_hangup (ref);
  if (ref->nh)
    g_hash_table_add (ctx->loose_legs, ref);
  else
    td_leg_unref (ref);
}

void
td_call_loose_leg_event (TdCallContext *ctx, TdLeg *leg, nua_event_t event, const sip_t *sip,
                         tagi_t tags[])
{
  int state = nua_callstate_init;

  switch (event) {
  case nua_i_invite:
  case nua_i_update:
  case nua_i_refer:
    /* It is no longer in any conversation. */
    td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL,
                       SIP_481_NO_TRANSACTION, TAG_END ());
    break;
  case nua_i_state:
    tl_gets (tags, NUTAG_CALLSTATE_REF (state), TAG_END ());
    if (state != nua_callstate_terminated || !leg->nh)
      break;
    td_signal_bind (leg->signal, leg->nh, NULL);
    td_signal_destroy (leg->signal, leg->nh);
    leg->nh = NULL;
    td_leg_release_ports (leg, "(moved away)");
    g_hash_table_remove (ctx->loose_legs, leg);
    break;
  default:
    break;
  }
}

/* A leg is leaving `old`: its segment ends here (its CDR row is written),
 * and it starts nothing new. */
void
td_call_leave (TdCall *old, const char *transferred_by, const char *reason)
{
  if (!old->segment_written) {
    if (transferred_by) {
      g_free (old->transferred_by);
      old->transferred_by = g_strdup (transferred_by);
    }
    old->hangup = TD_HANGUP_TRANSFER;
    old->reason = reason ? reason : "transferred";
    td_call_write_cdr (old, NULL);
    old->segment_written = TRUE;
  }
  old->ended = TRUE;
  td_call_stop_ring_timers (old);
}

/* `call`'s parties change: if two were talking, their CDR segment ends
 * (hung up by the transfer) and a new one starts now; the call continues
 * the session of `from`, the call the arriving leg comes from. */
void
td_call_new_segment (TdCall *call, const TdCall *from, const char *transferred_by)
{
  if (call->a || call->segment_written) {
    if (!call->segment_written) {
      if (transferred_by) {
        g_free (call->transferred_by);
        call->transferred_by = g_strdup (transferred_by);
      }
      call->hangup = TD_HANGUP_TRANSFER;
      call->reason = "transferred";
      td_call_write_cdr (call, NULL);
    }
    call->segment++;
    call->started_us = call->answered_us = g_get_real_time ();
    call->segment_written = FALSE;
    call->hangup = TD_HANGUP_TANDEM;
    call->reason = NULL;
    g_clear_pointer (&call->transferred_by, g_free);
  }
  if (from) {
    if (!call->session)
      call->session = g_strdup (from->session ? from->session : from->call_id);
    call->segment = MAX (call->segment, from->segment + 1);
  }
  if (transferred_by) {
    g_free (call->transferred_by);
    call->transferred_by = g_strdup (transferred_by);
  }
}

/* A tune tandem played to an endpoint (the music of a hold its old peer
 * put it on) ends with the move: each now hears its new party. */
void
td_leg_stop_tunes (TdLeg *leg)
{
  for (guint i = 0; i < leg->ports->len; i++) {
    TdRelayPort *port = g_ptr_array_index (leg->ports, i);
    if (port && td_relay_port_is_playing (port))
      td_relay_port_stop (port);
  }
}

/* Put `ref` (a reference to `leg`) where `replacing` was in `call`, or in
 * the A-slot of an originated call. */
static void
attach (TdCall *call, TdLeg *leg, TdLeg *ref, TdLeg *replacing)
{
  leg->call = call;
  if (!replacing) {
    call->a = ref;
    if (call->origin == leg)
      g_clear_pointer (&call->origin, td_leg_unref);
    return;
  }
  if (call->a == replacing) {
    TdLeg *old = td_call_detach_leg (call, replacing);
    call->a = ref;
    let_go (call->ctx, old);
    return;
  }
  {
    gboolean was_bridged = call->bridged == replacing;
    TdLeg *old = td_call_detach_leg (call, replacing);
    g_ptr_array_add (call->b_legs, ref);
    if (was_bridged)
      call->bridged = leg;
    let_go (call->ctx, old);
  }
}

gboolean
td_call_take_leg (TdCall *call, TdLeg *leg, TdLeg *replacing, const char *transferred_by,
                  GError **error)
{
  TdCall *old = leg->call;
  TdLeg *ref, *peer;

  if (!td_leg_is_up (leg) || !call->bridged || call->ended || old == call ||
      (replacing && replacing->call != call) || (!replacing && call->a)) {
    g_set_error (error, TD_CALL_ERROR, 481, "that leg cannot move into that call");
    return FALSE;
  }
  ref = old ? td_call_detach_leg (old, leg) : td_leg_ref (leg);
  if (old)
    td_call_leave (old, transferred_by, NULL);
  td_call_new_segment (call, old, transferred_by);
  attach (call, leg, ref, replacing);
  peer = td_call_peer_of (call, leg);
  g_info ("call %s: leg %" G_GUINT64_FORMAT " (%s) now talks to leg %" G_GUINT64_FORMAT
          " (%s)%s%s", call->call_id, leg->id, leg->user ? leg->user : "?", peer->id,
          peer->user ? peer->user : "?", old ? ", moved from call " : "",
          old ? old->call_id : "");
  td_leg_stop_tunes (leg);
  td_leg_stop_tunes (peer);
  td_leg_connect_media (leg, peer);
  /* Its endpoint was told another party's session (and maybe hold): tell
   * it the new one, unless nothing it would read has changed. */
  if (peer->remote_sdp && td_leg_media_differs (leg, peer->remote_sdp, td_call_media_address (call)))
    td_call_realign (call, leg);
  if (old)
    td_call_maybe_finish (old);
  return TRUE;
}

/* ---- a leg alone in a call of its own (a room's member), and two legs paired ---- */

TdCall *
td_call_adopt_leg (TdLeg *leg, const char *callee, const char *moved_by, const char *reason)
{
  TdCall *old = leg->call;
  g_autofree char *call_id = g_uuid_string_random ();
  TdLeg *ref = old ? td_call_detach_leg (old, leg) : td_leg_ref (leg);
  TdCall *call;

  if (old)
    td_call_leave (old, moved_by, reason);
  call = td_call_new (leg->ctx, call_id, leg->user ? leg->user : "anonymous", leg->display,
                      callee, 70);
  td_call_new_segment (call, old, moved_by);
  call->answered_us = call->started_us;
  call->final_status = 200;
  call->hangup = leg->role == TD_LEG_A ? TD_HANGUP_CALLER : TD_HANGUP_CALLEE;
  call->a = ref;
  leg->call = call;
  td_leg_stop_tunes (leg);
  if (old) {
    g_info ("call %s: leg %" G_GUINT64_FORMAT " (%s) moved here from call %s", call->call_id,
            leg->id, leg->user ? leg->user : "?", old->call_id);
    td_call_maybe_finish (old);
  }
  return call;
}

TdCall *
td_call_pair_legs (TdLeg *first, TdLeg *second, const char *moved_by, const char *reason)
{
  TdCall *call = td_call_adopt_leg (first, second->user ? second->user : "anonymous", moved_by,
                                    reason);
  TdCall *old = second->call;
  TdLeg *ref = old ? td_call_detach_leg (old, second) : td_leg_ref (second);

  if (old)
    td_call_leave (old, moved_by, reason);
  g_ptr_array_add (call->b_legs, ref);
  call->bridged = second;
  second->call = call;
  td_leg_stop_tunes (second);
  g_info ("call %s: leg %" G_GUINT64_FORMAT " (%s) now talks to leg %" G_GUINT64_FORMAT " (%s)",
          call->call_id, first->id, first->user ? first->user : "?", second->id,
          second->user ? second->user : "?");
  td_leg_connect_media (first, second);
  /* Each endpoint was told the session of the room (its old far end's):
   * tell it its new party's, unless nothing it would read changes. */
  if (second->remote_sdp &&
      td_leg_media_differs (first, second->remote_sdp, td_call_media_address (call)))
    td_call_realign (call, first);
  if (first->remote_sdp && !first->outgoing &&
      td_leg_media_differs (second, first->remote_sdp, td_call_media_address (call)))
    td_call_realign (call, second);
  td_call_arm_refresh (call, first);
  td_call_arm_refresh (call, second);
  if (old)
    td_call_maybe_finish (old);
  return call;
}

/* ---- a call tandem originates -------------------------------------------------- */

/* The call failed before it got going (busy, not routable): nothing waits
 * for it, so it ends here with its CDR, and the originator learns the status. */
static int
failed_at_once (TdCall *call)
{
  int status = call->final_status;
  gboolean alive = FALSE;

  for (guint i = 0; i < call->b_legs->len; i++)
    alive |= ((TdLeg *) g_ptr_array_index (call->b_legs, i))->nh != NULL;
  if (!call->origin_final || alive)
    return 0;
  td_call_maybe_finish (call);
  return status ? status : 500;
}

TdCall *
td_call_originate (TdLeg *party, const char *target, const char *headers,
                   const char *transferred_by, GError **error)
{
  return td_call_originate_into (party, target, headers, transferred_by, NULL, error);
}

TdCall *
td_call_originate_into (TdLeg *party, const char *target, const char *headers,
                        const char *transferred_by, TdRoom *room, GError **error)
{
  TdCall *from = party->call;
  TdCallContext *ctx = from ? from->ctx : NULL;
  g_autofree char *user = NULL, *call_id = g_uuid_string_random ();
  g_autoptr (TdRoute) route = NULL;
  TdCall *call;
  int status;

  g_return_val_if_fail (from && target, NULL);
  if (!party->remote_sdp) {
    g_set_error (error, TD_CALL_ERROR, 488, "the party has no session to offer");
    return NULL;
  }
  if (!(user = td_router_target_user (ctx->config, target))) {
    g_set_error (error, TD_CALL_ERROR, 404, "%s: not a user of %s", target, ctx->config->domain);
    return NULL;
  }
  route = td_router_route (ctx->config, ctx->location, user, ctx->config->domain,
                           g_get_real_time () / G_USEC_PER_SEC);
  if (route->status) {
    g_set_error (error, TD_CALL_ERROR, route->status, "%s: %s", user, route->phrase);
    return NULL;
  }
  call = td_call_new (ctx, call_id, party->user ? party->user : "anonymous", party->display,
                      user, 69);
  call->origin = td_leg_ref (party);
  call->origin_headers = g_strdup (headers);
  call->dials_into = room;
  td_call_new_segment (call, from, transferred_by);
  g_info ("call %s: originated for the %s-leg (%s) of call %s → %s: %u branch(es)", call->call_id,
          td_leg_name (party), call->caller, from->call_id, user, route->targets->len);
  if (td_call_run_hook (call, TD_HOOK_CALL_ROUTING, NULL, NULL, 0, NULL) != TD_HOOK_HANDLED) {
    if (td_call_start_branches (call, route)) {
      td_call_start_ring_timer (call);
      td_call_run_hook (call, TD_HOOK_CALL_RINGING, NULL, NULL, 0, NULL);
    } else {
      call->reason = "no media ports";
      td_call_respond_a (call, SIP_503_SERVICE_UNAVAILABLE, NULL);
    }
  } else if (!td_call_caller_final (call) && call->b_legs->len == 0) {
    td_call_respond_a (call, SIP_500_INTERNAL_SERVER_ERROR, NULL);
  }
  if ((status = failed_at_once (call))) {
    g_set_error (error, TD_CALL_ERROR, status, "%s: %d %s", user, status, td_call_phrase (status));
    return NULL;
  }
  return call;
}

/* ---- INVITE with Replaces (RFC 3891) -------------------------------------------- */

static void
refuse (TdCallContext *ctx, nua_handle_t *nh, int status, const char *phrase)
{
  td_signal_respond (&ctx->signal, nh, TD_WITH_CURRENT, NULL, status, phrase, TAG_END ());
  td_signal_destroy (&ctx->signal, nh);
}

/* The leg an INVITE's Replaces may take the place of, or the status that
 * says why not. */
static int
replaceable (TdCallContext *ctx, const sip_t *sip, const TdUser *caller, TdLeg **out)
{
  TdLeg *old = td_signal_by_replaces (&ctx->signal, sip->sip_replaces);

  /* Early dialogs are not replaced (a ringing call is not picked up this
   * way), and neither is another user's dialog: 481 says no more than
   * "no such dialog" (RFC 3891 §3). */
  if (!old || !old->call || old->call->ended || !td_leg_is_up (old) ||
      !td_leg_is_up (td_call_peer_of (old->call, old)) || g_strcmp0 (old->user, caller->name) != 0)
    return 481;
  if (sip->sip_replaces->rp_early_only)
    return 486;   /* RFC 3891 §3: the dialog is confirmed */
  *out = old;
  return 0;
}

void
td_call_incoming_replaces (TdCallContext *ctx, nua_handle_t *nh, const sip_t *sip,
                           const TdUser *caller)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdLeg) leg = NULL;
  TdLeg *old = NULL, *peer;
  TdSdp *offer = NULL;
  int status;

  if ((status = replaceable (ctx, sip, caller, &old))) {
    g_info ("INVITE from %s with Replaces %s: %d", caller->name, sip->sip_replaces->rp_call_id,
            status);
    refuse (ctx, nh, status, td_call_phrase (status));
    return;
  }
  peer = td_call_peer_of (old->call, old);
  if (td_call_has_sdp (sip) && !(offer = td_call_parse_sdp (old->call, NULL, sip))) {
    refuse (ctx, nh, 400, "Bad Session Description");
    return;
  }
  if (offer && !td_sdp_answer_matches_offer (offer, peer->remote_sdp)) {
    td_sdp_free (offer);
    refuse (ctx, nh, SIP_488_NOT_ACCEPTABLE);
    return;
  }
  leg = td_leg_new (NULL, &ctx->signal, TD_LEG_A, nh);
  td_leg_register (leg, ctx);
  td_call_set_dialog_allow (ctx, nh);
  leg->user = g_strdup (caller->name);
  leg->display = g_strdup (caller->display_name);
  td_leg_set_signalling_from_request (leg, ctx->nua);
  td_call_learn_allow (leg, sip, TRUE);
  if (offer && !td_leg_sdp_acceptable (leg, offer, &error)) {
    g_info ("INVITE with Replaces from %s: %s", caller->name, error->message);
    td_sdp_free (offer);
    td_signal_respond (&ctx->signal, nh, TD_WITH_CURRENT, NULL, SIP_488_NOT_ACCEPTABLE, TAG_END ());
    return;
  }
  if (!td_leg_ensure_ports (leg, ctx->relay, offer ? offer : peer->remote_sdp, &error)) {
    g_warning ("INVITE with Replaces: %s", error->message);
    td_sdp_free (offer);
    td_signal_respond (&ctx->signal, nh, TD_WITH_CURRENT, NULL, SIP_503_SERVICE_UNAVAILABLE,
                       TAG_END ());
    return;   /* nua ends the handle; the leg's unref drops it */
  }
  if (offer)
    td_leg_set_remote_sdp (leg, offer);
  td_call_session_from_request (old->call, leg, sip);
  /* The answer is the other party's session, as for a resume answered by
   * tandem: without an offer, it is tandem's offer and the ACK answers. */
  td_signal_respond (&ctx->signal, nh, TD_WITH_HANDLE, NULL, SIP_200_OK,
                     SIPTAG_CONTENT_TYPE_STR ("application/sdp"),
                     SIPTAG_PAYLOAD_STR (td_leg_local_sdp (leg, peer->remote_sdp,
                                                           ctx->config->media_address)),
                     TAG_END ());
  leg->final = leg->answered = TRUE;
  leg->ack_answer_due = offer == NULL;
  g_info ("call %s: %s replaces its %s-leg with a new dialog (%s)", old->call->call_id,
          caller->name, td_leg_name (old), sip->sip_call_id->i_id);
  if (!td_call_take_leg (old->call, leg, old, NULL, &error))
    g_warning ("INVITE with Replaces: %s", error->message);
  else
    td_call_arm_refresh (leg->call, leg);
}
