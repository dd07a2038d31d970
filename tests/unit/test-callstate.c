/* The call/leg/offer state machine in one process, in the test world of
 * callstate-world.h (a fake TdSignal, messages from text). Races that SIPp
 * can only hit by luck (a 200 crossing a CANCEL, a refresh answered with an
 * error) happen here in a fixed order. */
#include "callstate-world.h"
/* RFC 3261 §14.1: after a 491 the owner of the Call-ID waits 2.1-4 s, the
 * other side 0-2 s, in units of 10 ms. */
static void
assert_glare_delay (guint delay_ms, gboolean owner)
{
  g_assert_cmpuint (delay_ms % 10, ==, 0);
  g_assert_cmpuint (delay_ms, >=, owner ? 2100 : 0);
  g_assert_cmpuint (delay_ms, <=, owner ? 4000 : 2000);
}

guint16 world_port_min = 34000;

/* ---- item 8: the two sessions never drift apart ------------------------------------- */

/* A holds (re-INVITE), then cancels it; B's 200 crosses tandem's CANCEL.
 * B now has the held session: tandem takes B's answer for the relay and
 * offers B the session A still has, so both legs agree again. */
static void
test_200_crosses_cancel (void)
{
  World w;
  g_autofree char *hold = sdp_text (40000, "0 8", 2, "a=sendonly");
  g_autofree char *held = sdp_text (40102, "8", 2, "a=recvonly");
  g_autofree char *resumed = sdp_text (40104, "8", 3, "a=sendrecv");
  g_autofree char *accepted = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  Op *relayed, *reoffer;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  accepted = g_strdup (w.b->local_sdp);
  a_request (&w, nua_i_invite, "INVITE", 2, hold);
  ops = new_ops (&w);
  relayed = only_op (ops, OP_INVITE, w.b);
  g_assert_nonnull (strstr (relayed->sdp, "a=sendonly"));
  guint64 relayed_version = sdp_version (relayed->sdp);
  g_clear_pointer (&ops, g_ptr_array_unref);

  a_request (&w, nua_i_cancel, "CANCEL", 2, NULL);
  ops = new_ops (&w);
  only_op (ops, OP_CANCEL, w.b);
  g_clear_pointer (&ops, g_ptr_array_unref);

  b_response (&w, nua_r_invite, 200, "INVITE", 2, NULL, held);
  ops = new_ops (&w);
  /* The relay follows what B really has now... */
  g_assert_cmpuint (td_sdp_media_port (w.b->remote_sdp, 0), ==, 40102);
  /* ...and B is offered A's unchanged session back, as a newer version. */
  reoffer = only_op (ops, OP_INVITE, w.b);
  g_assert_nonnull (strstr (reoffer->sdp, "a=sendrecv"));
  g_assert_cmpuint (sdp_version (reoffer->sdp), >, relayed_version);
  g_assert_cmpuint (sdp_port (reoffer->sdp), ==, sdp_port (accepted));
  g_assert_cmpuint (count_ops (ops, OP_RESPOND, w.a), ==, 0);
  g_clear_pointer (&ops, g_ptr_array_unref);

  b_response (&w, nua_r_invite, 200, "INVITE", 3, NULL, resumed);
  ops = new_ops (&w);
  g_assert_cmpuint (td_sdp_media_port (w.b->remote_sdp, 0), ==, 40104);
  g_assert_cmpint (td_sdp_media_direction (w.b->remote_sdp, 0), ==, TD_SDP_SENDRECV);
  g_assert_cmpuint (ops->len, ==, 0);
  g_assert_false (w.call->ended);
  world_clear (&w);
}

/* B accepts A's re-offer with a codec A did not offer: A hears 488 and
 * keeps its session; B, which took the new one, is offered A's again. */
static void
test_reoffer_no_common_codec (void)
{
  World w;
  g_autofree char *pcmu_only = sdp_text (40000, "0", 2, "a=sendrecv");
  g_autofree char *pcma = sdp_text (40100, "8", 2, "a=sendrecv");
  g_autofree char *accepted = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  Op *relayed, *reoffer;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  accepted = g_strdup (w.b->local_sdp);
  a_request (&w, nua_i_invite, "INVITE", 2, pcmu_only);
  ops = new_ops (&w);
  relayed = only_op (ops, OP_INVITE, w.b);
  guint64 relayed_version = sdp_version (relayed->sdp);
  g_clear_pointer (&ops, g_ptr_array_unref);

  b_response (&w, nua_r_invite, 200, "INVITE", 2, NULL, pcma);
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 488);
  reoffer = only_op (ops, OP_INVITE, w.b);
  g_assert_nonnull (strstr (reoffer->sdp, "RTP/AVP 0 8"));
  g_assert_cmpuint (sdp_version (reoffer->sdp), >, relayed_version);
  g_assert_false (w.call->ended);
  /* A's session is the one it had. */
  g_assert_cmpuint (td_sdp_media_port (w.a->remote_sdp, 0), ==, 40000);
  g_assert_cmpuint (g_strv_length ((GStrv) td_sdp_media_formats (w.a->remote_sdp, 0)), ==, 2);
  world_clear (&w);
  (void) accepted;
}

/* B answers the realignment 491 (it sent an offer of its own meanwhile):
 * tandem offers it again after the §14.1 delay, or the sessions would stay
 * apart. */
static void
test_realign_glare (void)
{
  World w;
  g_autofree char *pcmu_only = sdp_text (40000, "0", 2, "a=sendrecv");
  g_autofree char *pcma = sdp_text (40100, "8", 2, "a=sendrecv");
  g_autofree char *realigned = sdp_text (40100, "0", 3, "a=sendrecv");
  g_autofree char *first = NULL;
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  a_request (&w, nua_i_invite, "INVITE", 2, pcmu_only);
  g_ptr_array_unref (new_ops (&w));
  b_response (&w, nua_r_invite, 200, "INVITE", 2, NULL, pcma);
  ops = new_ops (&w);
  first = g_strdup (only_op (ops, OP_INVITE, w.b)->sdp);
  g_clear_pointer (&ops, g_ptr_array_unref);

  b_response (&w, nua_r_invite, 491, "INVITE", 3, NULL, NULL);
  ops = new_ops (&w);
  g_assert_cmpuint (ops->len, ==, 0);
  g_assert_cmpint (w.b->outgoing, ==, TD_OUT_NONE);
  g_assert_nonnull (w.b->refresh_timer);
  assert_glare_delay (w.b->refresh_delay_ms, TRUE);
  g_clear_pointer (&ops, g_ptr_array_unref);

  /* The timer fires: the same session, offered again. */
  g_assert_true (td_call_refresh_due (w.b));
  ops = new_ops (&w);
  g_assert_nonnull (strstr (only_op (ops, OP_INVITE, w.b)->sdp, "RTP/AVP 0 8"));
  g_assert_cmpuint (sdp_port (only_op (ops, OP_INVITE, w.b)->sdp), ==, sdp_port (first));
  g_assert_cmpint (w.b->outgoing, ==, TD_OUT_REALIGN);
  g_clear_pointer (&ops, g_ptr_array_unref);

  b_response (&w, nua_r_invite, 200, "INVITE", 4, NULL, realigned);
  g_assert_cmpint (w.b->outgoing, ==, TD_OUT_NONE);
  g_assert_cmpuint (g_strv_length ((GStrv) td_sdp_media_formats (w.b->remote_sdp, 0)), ==, 1);
  g_assert_cmpstr (td_sdp_media_formats (w.b->remote_sdp, 0)[0], ==, "0");
  g_assert_false (w.call->ended);
  world_clear (&w);
}

/* ---- item 7: a failed re-offer as the offerer should hear it ------------------------- */

static void
reoffer_fails (int status, gboolean peer_dialog_gone)
{
  World w;
  g_autofree char *hold = sdp_text (40000, "0 8", 2, "a=sendonly");
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  a_request (&w, nua_i_invite, "INVITE", 2, hold);
  g_ptr_array_unref (new_ops (&w));
  if (status >= 700)
    event (w.b, nua_r_invite, status, NULL, NULL);   /* nua's own: no message */
  else
    b_response (&w, nua_r_invite, status, "INVITE", 2, NULL, NULL);
  ops = new_ops (&w);
  /* Never a 9xx on the wire, never a 408/481 that would end A's dialog. */
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 500);
  /* If B's dialog is gone, the call ends cleanly: A gets a BYE. */
  g_assert_cmpuint (count_ops (ops, OP_BYE, w.a), ==, peer_dialog_gone ? 1 : 0);
  g_assert_cmpint (w.call->ended, ==, peer_dialog_gone);
  world_clear (&w);
}

static void
test_reoffer_9xx (void)
{
  reoffer_fails (900, FALSE);
}

static void
test_reoffer_481 (void)
{
  reoffer_fails (481, TRUE);
}

static void
test_reoffer_408 (void)
{
  reoffer_fails (408, TRUE);
}

/* ---- item 9: SDP answers in ACKs ----------------------------------------------------- */

/* A late-offer call: alice's INVITE has no SDP, bob's 200 carries the
 * offer (PCMU+PCMA on 40100), alice's ACK the answer (`a_answer`). */
static void
late_offer_call (World *w, const char *a_answer)
{
  g_autofree char *b_offer = sdp_text (40100, "0 8", 1, "a=sendrecv");
  g_autoptr (GPtrArray) ops = NULL;

  start_call (w, NULL, NULL);
  ops = new_ops (w);
  g_assert_null (only_op (ops, OP_INVITE, w->b)->sdp);
  g_clear_pointer (&ops, g_ptr_array_unref);
  b_response (w, nua_r_invite, 200, "INVITE", 1, ALLOW_ALL, b_offer);
  ops = new_ops (w);
  g_assert_nonnull (only_op (ops, OP_RESPOND, w->a)->sdp);
  g_clear_pointer (&ops, g_ptr_array_unref);
  a_request (w, nua_i_ack, "ACK", 1, a_answer);
}

static void
test_late_offer_reinvite_ack_answer (void)
{
  World w;
  g_autofree char *answer = sdp_text (40000, "0", 1, "a=sendrecv");
  g_autofree char *moved = sdp_text (40010, "0", 2, "a=sendrecv");
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  late_offer_call (&w, answer);
  ops = new_ops (&w);
  g_assert_nonnull (only_op (ops, OP_ACK, w.b)->sdp);
  g_clear_pointer (&ops, g_ptr_array_unref);
  /* alice asks for an offer (offerless re-INVITE) and answers in the ACK
   * from another port: the relay must follow. */
  a_request (&w, nua_i_invite, "INVITE", 2, NULL);
  ops = new_ops (&w);
  g_assert_nonnull (only_op (ops, OP_RESPOND, w.a)->sdp);
  a_request (&w, nua_i_ack, "ACK", 2, moved);
  g_assert_cmpuint (td_sdp_media_port (w.a->remote_sdp, 0), ==, 40010);
  g_assert_false (w.call->ended);
  world_clear (&w);
}

/* An answer in an ACK cannot be refused (RFC 3264 §6): one with no codec
 * of the offer ends the call. */
static void
test_late_offer_ack_answer_no_common_codec (void)
{
  World w;
  g_autofree char *g729 = sdp_text (40000, "18", 1, "a=sendrecv");
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  late_offer_call (&w, g729);
  ops = new_ops (&w);
  only_op (ops, OP_ACK, w.b);      /* B's 2xx is ACKed all the same */
  only_op (ops, OP_BYE, w.a);
  only_op (ops, OP_BYE, w.b);
  g_assert_true (w.call->ended);
  world_clear (&w);
}

static void
test_reinvite_ack_answer_no_common_codec (void)
{
  World w;
  g_autofree char *answer = sdp_text (40000, "0", 1, "a=sendrecv");
  g_autofree char *g729 = sdp_text (40010, "18", 2, "a=sendrecv");
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  late_offer_call (&w, answer);
  g_ptr_array_unref (new_ops (&w));
  a_request (&w, nua_i_invite, "INVITE", 2, NULL);
  g_ptr_array_unref (new_ops (&w));
  a_request (&w, nua_i_ack, "ACK", 2, g729);
  ops = new_ops (&w);
  only_op (ops, OP_BYE, w.a);
  only_op (ops, OP_BYE, w.b);
  g_assert_true (w.call->ended);
  world_clear (&w);
}

/* ---- item 2: session refresh ------------------------------------------------------------ */

#define TIMER_90 "[calls]\nsession-timer = 90\n"

static void
world_init_timer (World *w)
{
  session_timer_config = TIMER_90;
  world_init (w);
  session_timer_config = "";
}

/* A response on the A-leg to tandem's request `method`. */
static void
a_response (World *w, nua_event_t e, int status, const char *method, guint cseq, const char *sdp)
{
  g_autofree char *head = g_strdup_printf ("SIP/2.0 %d %s\r\n" VIA A_DIALOG "CSeq: %u %s\r\n"
                                           "Contact: <sip:alice@127.0.0.1:5070>\r\n",
                                           status, td_call_phrase (status), cseq, method);
  event (w->a, e, status, head, sdp);
}

/* The first op of `kind` on `leg` in the whole run. */
static Op *
first_op (World *w, OpKind kind, TdLeg *leg)
{
  for (guint i = 0; i < w->fake.ops->len; i++) {
    Op *op = g_ptr_array_index (w->fake.ops, i);
    if (op->kind == kind && op->nh == leg->nh)
      return op;
  }
  g_assert_not_reached ();
}

/* nua is told the refresh method that fits the peer. */
static void
assert_update_refresh (World *w, TdLeg *leg, gboolean update)
{
  Op *last = NULL;
  for (guint i = 0; i < w->fake.ops->len; i++) {
    Op *op = g_ptr_array_index (w->fake.ops, i);
    if (op->kind == OP_PARAMS && op->nh == leg->nh && op->update_refresh_set)
      last = op;
  }
  g_assert_nonnull (last);
  g_assert_cmpint (last->update_refresh, ==, update);
}

/* Toward a B without UPDATE and without session timers, tandem refreshes
 * 10 s before nua would (45 ± 5 s) with a re-INVITE carrying B's SDP byte
 * for byte: the same o= version. */
static void
test_refresh_b_without_update (void)
{
  World w;
  g_autofree char *answer = sdp_text (40100, "8", 1, "a=sendrecv");
  g_autoptr (GPtrArray) ops = NULL;
  Op *refresh;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_NO_UPDATE);
  g_assert_cmpint (w.b->refresher, ==, TD_REFRESHER_TANDEM);
  g_assert_cmpuint (w.b->session_interval, ==, 90);
  g_assert_cmpuint (w.b->refresh_delay_ms, ==, 35000);
  g_assert_nonnull (w.b->refresh_timer);
  assert_update_refresh (&w, w.b, FALSE);

  g_assert_true (td_call_refresh_due (w.b));
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_UPDATE, NULL), ==, 0);
  refresh = only_op (ops, OP_INVITE, w.b);
  g_assert_cmpstr (refresh->sdp, ==, first_op (&w, OP_INVITE, w.b)->sdp);
  g_clear_pointer (&ops, g_ptr_array_unref);

  b_response (&w, nua_r_invite, 200, "INVITE", 2, ALLOW_NO_UPDATE, answer);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_RESPOND, w.a) + count_ops (ops, OP_INVITE, NULL), ==, 0);
  g_assert_nonnull (w.b->refresh_timer);
  g_assert_cmpuint (w.b->refresh_delay_ms, ==, 35000);
  g_assert_false (w.call->ended);
  world_clear (&w);
}

static void
test_refresh_b_with_update (void)
{
  World w;
  g_autoptr (GPtrArray) ops = NULL;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_ALL);
  assert_update_refresh (&w, w.b, TRUE);
  g_assert_true (td_call_refresh_due (w.b));
  ops = new_ops (&w);
  g_assert_null (only_op (ops, OP_UPDATE, w.b)->sdp);
  g_assert_cmpuint (count_ops (ops, OP_INVITE, NULL), ==, 0);
  b_response (&w, nua_r_update, 200, "UPDATE", 2, ALLOW_ALL, NULL);
  g_assert_nonnull (w.b->refresh_timer);
  g_assert_false (w.call->ended);
  world_clear (&w);
}

/* An UPDATE refused with 405 (the session lives on, RFC 5057, in
 * nua too): the next try is a re-INVITE, at once. A 501 gets none: nua has
 * BYEd the session by itself by then (measured: /refresh/update-501), and
 * a re-INVITE would only race its BYE; tandem ends nothing itself. */
static void
test_refresh_update_refused (void)
{
  World w;
  g_autoptr (GPtrArray) ops = NULL;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_ALL);
  g_assert_true (td_call_refresh_due (w.b));
  g_ptr_array_unref (new_ops (&w));
  b_response (&w, nua_r_update, 405, "UPDATE", 2, NULL, NULL);
  ops = new_ops (&w);
  g_assert_cmpstr (only_op (ops, OP_INVITE, w.b)->sdp, ==, w.b->local_sdp);
  g_assert_cmpuint (count_ops (ops, OP_BYE, NULL), ==, 0);
  assert_update_refresh (&w, w.b, FALSE);
  g_assert_false (w.call->ended);
  world_clear (&w);

  world_init_timer (&w);
  bridged_call (&w, ALLOW_ALL);
  g_assert_true (td_call_refresh_due (w.b));
  g_ptr_array_unref (new_ops (&w));
  b_response (&w, nua_r_update, 501, "UPDATE", 2, NULL, NULL);
  g_clear_pointer (&ops, g_ptr_array_unref);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_INVITE, NULL), ==, 0);
  g_assert_cmpuint (count_ops (ops, OP_BYE, NULL), ==, 0);
  g_assert_false (w.b->update_refresh_out);
  world_clear (&w);
}

/* The delay is random (else both sides would collide again), within its
 * range; tandem owns the B-leg's Call-ID, the caller the A-leg's. */
static void
test_glare_delay (void)
{
  World w;
  guint b_min = G_MAXUINT, b_max = 0, a_min = G_MAXUINT, a_max = 0;
  g_autoptr (GPtrArray) ops = NULL;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_NO_UPDATE);
  for (guint i = 0; i < 2000; i++) {
    guint b = td_call_glare_delay_ms (w.b), a = td_call_glare_delay_ms (w.a);
    assert_glare_delay (b, TRUE);
    assert_glare_delay (a, FALSE);
    b_min = MIN (b_min, b), b_max = MAX (b_max, b);
    a_min = MIN (a_min, a), a_max = MAX (a_max, a);
  }
  /* Spread over the range, not one fixed value (2000 draws of 191/201
   * values: each end is missed by 200 ms with odds far below 1e-9). */
  g_assert_cmpuint (b_min, <=, 2300);
  g_assert_cmpuint (b_max, >=, 3800);
  g_assert_cmpuint (a_min, <=, 200);
  g_assert_cmpuint (a_max, >=, 1800);

  /* The A-leg's refresh (an UPDATE: alice allows it) answered 491 waits
   * the other side's delay. */
  g_assert_true (td_call_refresh_due (w.a));
  ops = new_ops (&w);
  only_op (ops, OP_UPDATE, w.a);
  a_response (&w, nua_r_update, 491, "UPDATE", 2, NULL);
  g_assert_nonnull (w.a->refresh_timer);
  assert_glare_delay (w.a->refresh_delay_ms, FALSE);
  world_clear (&w);
}

/* Errors that refuse a refresh keep the call, and the next refresh comes. */
static void
test_refresh_errors_keep_call (void)
{
  static const int statuses[] = { 405, 488, 491, 500, 503, 603, 900 };

  for (guint i = 0; i < G_N_ELEMENTS (statuses); i++) {
    World w;
    g_autoptr (GPtrArray) ops = NULL;

    world_init_timer (&w);
    bridged_call (&w, ALLOW_NO_UPDATE);
    g_assert_true (td_call_refresh_due (w.b));
    g_ptr_array_unref (new_ops (&w));
    if (statuses[i] >= 700)
      event (w.b, nua_r_invite, statuses[i], NULL, NULL);
    else
      b_response (&w, nua_r_invite, statuses[i], "INVITE", 2, NULL, NULL);
    ops = new_ops (&w);
    g_test_message ("refresh answered %d", statuses[i]);
    g_assert_cmpuint (count_ops (ops, OP_BYE, NULL), ==, 0);
    g_assert_false (w.call->ended);
    g_assert_cmpint (w.b->outgoing, ==, TD_OUT_NONE);
    g_assert_nonnull (w.b->refresh_timer);
    if (statuses[i] == 491)
      assert_glare_delay (w.b->refresh_delay_ms, TRUE);   /* tandem owns B's Call-ID */
    world_clear (&w);
  }
}

/* 408 (or no answer) and 481: the dialog is gone, the call ends. */
static void
refresh_dialog_gone (int status)
{
  World w;
  g_autoptr (GPtrArray) ops = NULL;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_NO_UPDATE);
  g_assert_true (td_call_refresh_due (w.b));
  g_ptr_array_unref (new_ops (&w));
  b_response (&w, nua_r_invite, status, "INVITE", 2, NULL, NULL);
  ops = new_ops (&w);
  only_op (ops, OP_BYE, w.a);
  g_assert_true (w.call->ended);
  world_clear (&w);
}

static void
test_refresh_408 (void)
{
  refresh_dialog_gone (408);
}

static void
test_refresh_481 (void)
{
  refresh_dialog_gone (481);
}

/* A caller without session timers: tandem (the UAS) refreshes the A-leg,
 * with UPDATE when it allows it, else with a re-INVITE carrying the SDP of
 * tandem's 200. */
static void
test_refresh_a_leg (void)
{
  World w;
  g_autoptr (GPtrArray) ops = NULL;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_ALL);
  g_assert_cmpint (w.a->refresher, ==, TD_REFRESHER_TANDEM);
  g_assert_cmpuint (w.a->refresh_delay_ms, ==, 35000);
  g_assert_true (td_call_refresh_due (w.a));
  ops = new_ops (&w);
  only_op (ops, OP_UPDATE, w.a);
  a_response (&w, nua_r_update, 200, "UPDATE", 2, NULL);
  g_assert_nonnull (w.a->refresh_timer);
  g_assert_false (w.call->ended);
  world_clear (&w);

  world_init_timer (&w);
  bridged_call_with (&w, ALLOW_NO_UPDATE, ALLOW_ALL);
  assert_update_refresh (&w, w.a, FALSE);
  g_assert_true (td_call_refresh_due (w.a));
  g_clear_pointer (&ops, g_ptr_array_unref);
  ops = new_ops (&w);
  g_assert_cmpstr (only_op (ops, OP_INVITE, w.a)->sdp, ==, first_op (&w, OP_RESPOND, w.a)->sdp);
  a_response (&w, nua_r_invite, 500, "INVITE", 2, NULL);
  g_assert_false (w.call->ended);
  world_clear (&w);
}

/* Where the phone refreshes, tandem sends none (nua ends the dialog if the
 * phone stops); a refresh from the phone is answered and goes no further. */
static void
test_refresh_by_phone (void)
{
  World w;
  g_autoptr (GPtrArray) ops = NULL;

  world_init_timer (&w);
  bridged_call_with (&w, ALLOW_ALL "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
                     ALLOW_ALL "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n"
                     "Require: timer\r\n");
  g_assert_cmpint (w.a->refresher, ==, TD_REFRESHER_PEER);
  g_assert_cmpint (w.b->refresher, ==, TD_REFRESHER_PEER);
  g_assert_null (w.a->refresh_timer);
  g_assert_null (w.b->refresh_timer);
  g_assert_false (td_call_refresh_due (w.a));
  g_assert_false (td_call_refresh_due (w.b));
  a_request (&w, nua_i_update, "UPDATE", 2, NULL);
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 200);
  g_assert_cmpuint (ops->len, ==, 1);
  world_clear (&w);
}

/* A refresh due while an offer exchange is under way waits for it. */
static void
test_refresh_waits_for_offer (void)
{
  World w;
  g_autofree char *hold = sdp_text (40000, "0 8", 2, "a=sendonly");
  g_autoptr (GPtrArray) ops = NULL;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_NO_UPDATE);
  a_request (&w, nua_i_invite, "INVITE", 2, hold);
  g_ptr_array_unref (new_ops (&w));
  g_assert_false (td_call_refresh_due (w.b));
  ops = new_ops (&w);
  g_assert_cmpuint (ops->len, ==, 0);
  g_assert_cmpuint (w.b->refresh_delay_ms, ==, 2000);
  world_clear (&w);
}

/* B's 2xx names the refresher; the interval never exceeds tandem's. */
static void
test_refresh_negotiated_by_b (void)
{
  World w;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_ALL "Supported: timer\r\nSession-Expires: 120;refresher=uac\r\n"
                "Require: timer\r\n");
  g_assert_cmpint (w.b->refresher, ==, TD_REFRESHER_TANDEM);
  g_assert_cmpuint (w.b->session_interval, ==, 90);
  world_clear (&w);
}

/* ---- the previous round's fixes -------------------------------------------------------- */

/* A re-INVITE its sender cancels is withdrawn on the other leg too (CANCEL),
 * and a 487 from there changes nothing: no hang-up, no new offer. */
static void
test_cancelled_reinvite (void)
{
  World w;
  g_autofree char *hold = sdp_text (40000, "0 8", 2, "a=sendonly");
  g_autofree char *accepted = NULL;
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  accepted = g_strdup (w.b->local_sdp);
  a_request (&w, nua_i_invite, "INVITE", 2, hold);
  a_request (&w, nua_i_cancel, "CANCEL", 2, NULL);
  ops = new_ops (&w);
  only_op (ops, OP_CANCEL, w.b);
  g_clear_pointer (&ops, g_ptr_array_unref);
  b_response (&w, nua_r_invite, 487, "INVITE", 2, NULL, NULL);
  ops = new_ops (&w);
  g_assert_cmpuint (ops->len, ==, 0);
  g_assert_cmpstr (w.b->local_sdp, ==, accepted);
  g_assert_false (w.call->ended);
  world_clear (&w);
}

/* An early-offer call: an offerless re-INVITE gets tandem's offer in the
 * 200, and the answer in the ACK moves the relay. */
static void
test_ack_answer_early_offer (void)
{
  World w;
  g_autofree char *moved = sdp_text (40020, "8", 2, "a=sendrecv");
  g_autofree char *stray = sdp_text (40030, "8", 3, "a=sendrecv");
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);    /* B's session: PCMA */
  a_request (&w, nua_i_invite, "INVITE", 2, NULL);
  ops = new_ops (&w);
  g_assert_cmpstr (only_op (ops, OP_RESPOND, w.a)->sdp, ==, w.a->local_sdp);
  a_request (&w, nua_i_ack, "ACK", 2, moved);
  g_assert_cmpuint (td_sdp_media_port (w.a->remote_sdp, 0), ==, 40020);
  /* An ACK of a plain offer/answer carries no answer: a body there is ignored. */
  a_request (&w, nua_i_ack, "ACK", 3, stray);
  g_assert_cmpuint (td_sdp_media_port (w.a->remote_sdp, 0), ==, 40020);
  g_assert_false (w.call->ended);
  world_clear (&w);
}

/* The caller hears a B-leg's failure as the B2BUA's own. */
static void
test_failure_status_for_caller (void)
{
  static const struct { int b, a; } cases[] = {
    { 486, 486 }, { 503, 500 }, { 302, 480 }, { 401, 480 }, { 407, 480 }, { 900, 500 },
    { 603, 603 }, { 422, 500 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    World w;
    g_autofree char *offer = sdp_text (40000, "0 8", 1, "a=sendrecv");
    g_autoptr (GPtrArray) ops = NULL;

    world_init (&w);
    start_call (&w, offer, NULL);
    g_ptr_array_unref (new_ops (&w));
    if (cases[i].b >= 700)
      event (w.b, nua_r_invite, cases[i].b, NULL, NULL);
    else
      b_response (&w, nua_r_invite, cases[i].b, "INVITE", 1, NULL, NULL);
    ops = new_ops (&w);
    g_test_message ("B answered %d", cases[i].b);
    g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, cases[i].a);
    world_clear (&w);
  }
}

/* And a failed re-offer as its offerer should hear it. */
static void
test_failure_status_for_offerer (void)
{
  static const struct { int b, a; } cases[] = {
    { 488, 488 }, { 491, 491 }, { 500, 500 }, { 603, 603 }, { 404, 500 }, { 410, 500 },
    { 302, 500 }, { 401, 500 }, { 503, 500 }, { 904, 500 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpint (td_call_status_for_offerer (cases[i].b), ==, cases[i].a);
}

/* ---- a callee's 422: tandem retries itself (nua's own retries are off) ---------------- */

/* The B-leg bound to a handle other than those of `a` and `old`. */
static TdLeg *
successor_of (World *w, TdLeg *old)
{
  GHashTableIter it;
  gpointer key, value;
  TdLeg *found = NULL;
  g_hash_table_iter_init (&it, w->fake.legs);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (value != w->a && value != old) {
      g_assert_null (found);
      found = value;
    }
  g_assert_nonnull (found);
  return found;
}

/* bob finds tandem's Session-Expires (the configured 1800) too small: 422
 * with Min-SE 3600. Tandem calls him once more asking for 3600 s
 * (RFC 4028 §7.4), as a new branch, and alice gets that one's answer; a
 * second 422 is final (no third INVITE), and alice hears 500 (a 422 of
 * tandem's would need a Min-SE, and her interval was not the one refused). */
static void
test_422_retried_once (void)
{
  for (guint answered = 0; answered < 2; answered++) {
    World w;
    g_autofree char *offer = sdp_text (40000, "0 8", 1, "a=sendrecv");
    g_autofree char *answer = sdp_text (40100, "8", 1, "a=sendrecv");
    g_autoptr (GPtrArray) first = NULL, retried = NULL, last = NULL;
    TdLeg *old;
    Op *invite;

    world_init (&w);
    start_call (&w, offer, NULL);
    first = new_ops (&w);
    g_assert_cmpuint (only_op (first, OP_INVITE, w.b)->session_timer, ==, 0);
    b_response (&w, nua_r_invite, 422, "INVITE", 1, "Min-SE: 3600\r\n", NULL);
    retried = new_ops (&w);
    g_assert_cmpuint (count_ops (retried, OP_RESPOND, w.a), ==, 0);
    old = w.b;
    w.b = successor_of (&w, old);
    invite = only_op (retried, OP_INVITE, w.b);
    g_assert_cmpuint (invite->session_timer, ==, 3600);
    g_assert_cmpuint (invite->min_se, ==, 3600);
    g_assert_nonnull (invite->sdp);
    if (answered) {
      b_response (&w, nua_r_invite, 200, "INVITE", 1, "Session-Expires: 3600;refresher=uac\r\n",
                  answer);
      last = new_ops (&w);
      g_assert_cmpint (only_op (last, OP_RESPOND, w.a)->status, ==, 200);
      g_assert_true (w.call->bridged == w.b);
    } else {
      b_response (&w, nua_r_invite, 422, "INVITE", 1, "Min-SE: 7200\r\n", NULL);
      last = new_ops (&w);
      g_assert_cmpuint (count_ops (last, OP_INVITE, NULL), ==, 0);
      g_assert_cmpint (only_op (last, OP_RESPOND, w.a)->status, ==, 500);
    }
    world_clear (&w);
  }
}

/* ---- tandem's refresh UPDATE is no offer ------------------------------------------- */

/* While tandem's offerless refresh UPDATE to B is out, an offer from A is
 * no glare (RFC 3311 §5.2): it goes to B, as a re-INVITE (never two
 * UPDATEs out at once), and each answer finds its request. */
static void
test_offer_beside_refresh_update (void)
{
  static const gboolean a_sends_update[] = { FALSE, TRUE };

  for (guint i = 0; i < G_N_ELEMENTS (a_sends_update); i++) {
    World w;
    g_autofree char *hold = sdp_text (40000, "0 8", 2, "a=sendonly");
    g_autofree char *held = sdp_text (40102, "8", 2, "a=recvonly");
    g_autoptr (GPtrArray) ops = NULL;
    Op *relayed;

    world_init_timer (&w);
    bridged_call (&w, ALLOW_ALL);
    g_assert_true (td_call_refresh_due (w.b));
    ops = new_ops (&w);
    g_assert_null (only_op (ops, OP_UPDATE, w.b)->sdp);
    g_clear_pointer (&ops, g_ptr_array_unref);

    if (a_sends_update[i])
      a_request (&w, nua_i_update, "UPDATE", 2, hold);
    else
      a_request (&w, nua_i_invite, "INVITE", 2, hold);
    ops = new_ops (&w);
    g_assert_cmpuint (count_ops (ops, OP_RESPOND, w.a), ==, 0);   /* no 491 */
    relayed = only_op (ops, OP_INVITE, w.b);
    g_assert_nonnull (strstr (relayed->sdp, "a=sendonly"));
    g_assert_cmpuint (count_ops (ops, OP_UPDATE, NULL), ==, 0);
    g_clear_pointer (&ops, g_ptr_array_unref);

    /* The refresh's answer, then the offer's. A 405 would have tandem
     * re-INVITE to refresh, but the relayed re-INVITE is out already and
     * refreshes the session: it must not be overwritten. */
    b_response (&w, nua_r_update, a_sends_update[i] ? 405 : 200, "UPDATE", 2, NULL, NULL);
    ops = new_ops (&w);
    g_assert_cmpuint (count_ops (ops, OP_RESPOND, w.a), ==, 0);
    g_assert_cmpuint (count_ops (ops, OP_INVITE, NULL), ==, 0);
    g_assert_cmpint (w.b->outgoing, ==, TD_OUT_RELAYED);
    g_assert_false (w.b->update_refresh_out);
    g_clear_pointer (&ops, g_ptr_array_unref);
    b_response (&w, nua_r_invite, 200, "INVITE", 3, NULL, held);
    ops = new_ops (&w);
    g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 200);
    g_assert_cmpuint (td_sdp_media_port (w.b->remote_sdp, 0), ==, 40102);
    g_assert_cmpint (w.b->outgoing, ==, TD_OUT_NONE);
    g_assert_false (w.call->ended);
    world_clear (&w);
  }
}

/* A refresh re-INVITE carries the SDP unchanged, an offer: an offer from
 * the other side meanwhile is glare, 491. */
static void
test_offer_beside_refresh_reinvite (void)
{
  World w;
  g_autofree char *hold = sdp_text (40000, "0 8", 2, "a=sendonly");
  g_autoptr (GPtrArray) ops = NULL;

  world_init_timer (&w);
  bridged_call (&w, ALLOW_NO_UPDATE);
  g_assert_true (td_call_refresh_due (w.b));
  g_ptr_array_unref (new_ops (&w));
  a_request (&w, nua_i_invite, "INVITE", 2, hold);
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 491);
  g_assert_cmpuint (count_ops (ops, OP_INVITE, NULL), ==, 0);
  world_clear (&w);
}

/* ---- media ports running out -------------------------------------------------------- */

/* Take every port pair the relay has (returned, to be freed by the test). */
static GPtrArray *
drain_ports (World *w)
{
  GPtrArray *taken = g_ptr_array_new_with_free_func ((GDestroyNotify) td_relay_port_free);
  TdRelayPort *port;
  GError *error = NULL;

  while ((port = td_relay_port_alloc (w->ctx.relay, &error)))
    g_ptr_array_add (taken, port);
  g_assert_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_EXHAUSTED);
  g_error_free (error);
  return taken;
}

/* A new call that finds no media ports hears 503 with the one Retry-After
 * tandem gives for lack of capacity, [sip] overload-retry-after. */
static void
test_no_ports_retry_after (void)
{
  World w;
  g_auto (Msg) m = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) taken = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  g_autofree char *offer = sdp_text (40000, "0 8", 1, "a=sendrecv");
  TdUser alice = { .name = (char *) "alice" };
  g_autoptr (GPtrArray) targets = g_ptr_array_new ();
  TdRoute route = { .callee = (char *) "bob", .targets = targets };
  const sip_t *sip;
  GLogLevelFlags fatal;
  Op *answer;

  sip_config = "overload-retry-after = 17\n";
  world_init (&w);
  sip_config = "";
  taken = drain_ports (&w);
  /* Running out is a g_warning for the operator here, not a test failure. */
  fatal = g_log_set_always_fatal (G_LOG_FATAL_MASK);
  sip = parse (&m, "INVITE sip:bob@pbx.test SIP/2.0\r\n" VIA
               "From: <sip:alice@pbx.test>;tag=at\r\nTo: <sip:bob@pbx.test>\r\n"
               "Call-ID: a-call@127.0.0.1\r\nCSeq: 1 INVITE\r\n", offer);
  td_call_start (&w.ctx, fake_handle (&w.fake, NULL), sip, &alice, &route,
                 td_sdp_parse (offer, strlen (offer), &error));
  g_assert_no_error (error);
  g_log_set_always_fatal (fatal);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_RESPOND, NULL), ==, 1);
  answer = g_ptr_array_index (ops, ops->len - 1);
  g_assert_cmpint (answer->kind, ==, OP_RESPOND);
  g_assert_cmpint (answer->status, ==, 503);
  g_assert_cmpstr (answer->retry_after, ==, "17");
  g_clear_pointer (&taken, g_ptr_array_unref);
  world_clear (&w);
}

/* A re-offer adding a stream when the ports run out half way (A's new
 * port found, B's not) is refused 488, which ends no dialog (RFC 5057, and
 * nua), never 503; the port A got for it goes back; the call goes on. */
static void
test_reoffer_no_ports (void)
{
  World w;
  g_autoptr (GPtrArray) taken = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  g_autofree char *two = g_strconcat ("v=0\r\no=phone 42 2 IN IP4 127.0.0.1\r\ns=-\r\n"
                                      "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                                      "m=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n"
                                      "m=audio 40002 RTP/AVP 0\r\na=sendrecv\r\n", NULL);
  GLogLevelFlags fatal;
  GError *error = NULL;
  TdRelayPort *port;
  Op *answer;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  g_assert_cmpuint (w.a->ports->len, ==, 1);
  taken = drain_ports (&w);
  /* One pair left: enough for A's second stream, not for B's. */
  g_ptr_array_remove_index (taken, taken->len - 1);
  td_relay_sync (w.ctx.relay);
  fatal = g_log_set_always_fatal (G_LOG_FATAL_MASK);
  a_request (&w, nua_i_invite, "INVITE", 2, two);
  g_log_set_always_fatal (fatal);
  ops = new_ops (&w);
  answer = only_op (ops, OP_RESPOND, w.a);
  g_assert_cmpint (answer->status, ==, 488);
  g_assert_cmpuint (count_ops (ops, OP_INVITE, NULL), ==, 0);
  g_assert_cmpuint (count_ops (ops, OP_BYE, NULL), ==, 0);
  g_assert_false (w.call->ended);
  g_assert_false (w.a->has_pending);
  /* A's new port is back in the pool: it can be had again. */
  g_assert_cmpuint (w.a->ports->len, ==, 1);
  g_assert_cmpuint (w.b->ports->len, ==, 1);
  td_relay_sync (w.ctx.relay);
  port = td_relay_port_alloc (w.ctx.relay, &error);
  g_assert_no_error (error);
  g_ptr_array_add (taken, port);
  g_clear_pointer (&taken, g_ptr_array_unref);
  world_clear (&w);
}

/* ---- a dialog ended by the stack ---------------------------------------------------- */

static void
stack_terminates (TdLeg *leg)
{
  tagi_t tags[] = { { NUTAG_CALLSTATE (nua_callstate_terminated) }, { TAG_END () } };
  td_call_leg_event (leg, nua_i_state, 408, "Request Timeout", NULL, tags);
}

/* The bridged B-leg's dialog ends without a BYE (session timer, transport):
 * tandem ends the call as td_call_end does, BYE to A, hangup by tandem. */
static void
test_stack_ends_b_leg (void)
{
  World w;
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  nua_handle_t *a_nh = w.a->nh;
  stack_terminates (w.b);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_BYE, NULL), ==, 1);
  g_assert_true (((Op *) g_ptr_array_index (ops, 0))->nh == a_nh);
  g_assert_true (w.call->ended);
  g_assert_cmpint (w.call->hangup, ==, TD_HANGUP_TANDEM);
  g_assert_cmpstr (w.call->reason, ==, "B-leg dialog failed (timeout or transport error)");
  world_clear (&w);
}

/* The A-leg's dialog ends while B still rings: B is CANCELled, no BYE. */
static void
test_stack_ends_a_leg_ringing (void)
{
  World w;
  g_autofree char *offer = sdp_text (40000, "0 8", 1, "a=sendrecv");
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  start_call (&w, offer, NULL);
  g_ptr_array_unref (new_ops (&w));
  stack_terminates (w.a);
  ops = new_ops (&w);
  only_op (ops, OP_CANCEL, w.b);
  g_assert_cmpuint (count_ops (ops, OP_BYE, NULL), ==, 0);
  g_assert_true (w.call->ended);
  g_assert_cmpint (w.call->hangup, ==, TD_HANGUP_TANDEM);
  world_clear (&w);
}

/* ---- legs that move (td-call-move.c) and REFER (td-call-refer.c) ---------------- */

/* carol calls dave, who answers `codec` ("8" PCMA, "0" PCMU) on 40300: a
 * second bridged call in the same world. */
static TdCall *
second_call (World *w, const char *codec, TdLeg **c, TdLeg **d)
{
  g_auto (Msg) m = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *offer = sdp_text (40200, "0 8", 1, "a=sendrecv");
  g_autofree char *answer = sdp_text (40300, codec, 1, "a=sendrecv");
  TdUser carol = { .name = (char *) "carol" };
  TdBinding binding = { .aor = (char *) "dave", .contact = (char *) "sip:dave@127.0.0.1:5090",
                        .source = (char *) "udp/127.0.0.1:5090" };
  g_autoptr (GPtrArray) targets = g_ptr_array_new ();
  TdRoute route = { .callee = (char *) "dave", .targets = targets };
  const sip_t *sip = parse (&m, "INVITE sip:dave@pbx.test SIP/2.0\r\n" VIA
                                "From: <sip:carol@pbx.test>;tag=ct\r\nTo: <sip:dave@pbx.test>\r\n"
                                "Call-ID: c-call@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
                                "Contact: <sip:carol@127.0.0.1:5071>\r\n" ALLOW_ALL, offer);
  nua_handle_t *nh = fake_handle (&w->fake, NULL);
  TdCall *call;

  g_ptr_array_add (targets, &binding);
  td_call_start (&w->ctx, nh, sip, &carol, &route,
                 td_sdp_parse (offer, strlen (offer), &error));
  g_assert_no_error (error);
  *c = g_hash_table_lookup (w->fake.legs, nh);
  call = (*c)->call;
  g_assert_cmpuint (call->b_legs->len, ==, 1);
  *d = g_ptr_array_index (call->b_legs, 0);
  event (*d, nua_r_invite, 200,
         "SIP/2.0 200 OK\r\n" VIA "From: <sip:carol@pbx.test>;tag=td\r\n"
         "To: <sip:dave@pbx.test>;tag=dt\r\nCall-ID: d-call@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
         "Contact: <sip:dave@127.0.0.1:5090>\r\n" ALLOW_ALL, answer);
  g_assert_true (call->bridged == *d);
  return call;
}

static void
terminated (TdLeg *leg)
{
  tagi_t tags[] = { { NUTAG_CALLSTATE (nua_callstate_terminated) }, { TAG_END () } };
  td_call_leg_event (leg, nua_i_state, 200, "OK", NULL, tags);
}

static guint16
first_port (const TdLeg *leg)
{
  return td_relay_port_number (g_ptr_array_index (leg->ports, 0));
}

/* alice (talking to bob) takes carol's place in carol's call with dave:
 * her leg keeps its dialog and relay port, needs no re-INVITE (dave's
 * session reads as bob's did), carol's leg leaves and is hung up, and each
 * call writes the segment that ended. bob hanging up then ends his call,
 * not alice. */
static void
test_move_leg (void)
{
  World w;
  TdLeg *c, *d;
  TdCall *call2;
  g_autoptr (GPtrArray) ops = NULL;
  g_autoptr (GError) error = NULL;
  TdCall *call1;
  guint16 port;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  call1 = w.call;
  call2 = second_call (&w, "8", &c, &d);
  port = first_port (w.a);
  g_clear_pointer (&ops, g_ptr_array_unref);
  ops = new_ops (&w);
  g_clear_pointer (&ops, g_ptr_array_unref);
  /* bob had put alice on hold with music: the move ends it. */
  {
    gint16 pcm[160] = { 0 };
    g_autoptr (TdTune) music = td_tune_new_from_pcm (pcm, G_N_ELEMENTS (pcm));
    td_relay_port_play (g_ptr_array_index (w.a->ports, 0), music, TD_CODEC_PCMA, 8);
    g_assert_true (td_relay_port_is_playing (g_ptr_array_index (w.a->ports, 0)));
  }

  g_assert_true (td_call_take_leg (call2, w.a, c, "bob", &error));
  g_assert_no_error (error);
  ops = new_ops (&w);
  g_assert_true (w.a->call == call2 && call2->a == w.a && call2->bridged == d);
  g_assert_null (c->call);
  g_assert_true (g_hash_table_contains (w.ctx.loose_legs, c));
  only_op (ops, OP_BYE, c);
  g_assert_cmpuint (count_ops (ops, OP_INVITE, w.a), ==, 0);
  g_assert_cmpuint (count_ops (ops, OP_BYE, w.a) + count_ops (ops, OP_BYE, d), ==, 0);
  g_assert_cmpuint (first_port (w.a), ==, port);
  g_assert_false (td_relay_port_is_playing (g_ptr_array_index (w.a->ports, 0)));
  g_assert_true (call1->ended && call1->segment_written);
  g_assert_cmpuint (call2->segment, ==, 2);
  g_assert_cmpstr (call2->session, ==, "a-call@127.0.0.1");
  g_clear_pointer (&ops, g_ptr_array_unref);

  /* carol's dialog ends: tandem lets her leg go. */
  terminated (c);
  g_assert_cmpuint (g_hash_table_size (w.ctx.loose_legs), ==, 0);

  /* bob hangs up: his call ends (its last leg leaves), alice stays. */
  b_response (&w, nua_i_bye, 0, "BYE", 2, NULL, NULL);
  terminated (w.b);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_BYE, w.a), ==, 0);
  g_assert_false (g_hash_table_contains (w.ctx.calls, call1));
  g_assert_true (g_hash_table_contains (w.ctx.calls, call2));
  g_assert_true (w.a->call == call2);
  world_clear (&w);
}

/* dave talks PCMU where bob talked PCMA: alice is told dave's session in a
 * re-INVITE, on her same relay port. */
static void
test_move_leg_reinvite (void)
{
  World w;
  TdLeg *c, *d;
  TdCall *call2;
  g_autoptr (GPtrArray) ops = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *formats = NULL;
  Op *invite;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  call2 = second_call (&w, "0", &c, &d);
  g_clear_pointer (&ops, g_ptr_array_unref);
  ops = new_ops (&w);
  g_clear_pointer (&ops, g_ptr_array_unref);
  g_assert_true (td_call_take_leg (call2, w.a, c, NULL, &error));
  ops = new_ops (&w);
  invite = only_op (ops, OP_INVITE, w.a);
  formats = sdp_formats (invite->sdp);
  g_assert_cmpstr (formats, ==, "0");
  g_assert_cmpuint (sdp_port (invite->sdp), ==, first_port (w.a));
  world_clear (&w);
}

/* A leg cannot move into a call it is in, or one not answered. */
static void
test_move_leg_refused (void)
{
  World w;
  g_autoptr (GError) error = NULL;

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  g_assert_false (td_call_take_leg (w.call, w.a, w.b, NULL, &error));
  g_assert_error (error, TD_CALL_ERROR, 481);
  g_assert_true (w.a->call == w.call && w.call->bridged == w.b);
  world_clear (&w);
}

static TdHookResult
accept_refer (const TdHookArgs *args, gpointer data)
{
  const TdRefer **seen = data;
  *seen = args->refer;
  g_assert_cmpstr (args->refer->refer_to, ==, "sip:carol@pbx.test");
  g_assert_cmpstr (args->refer->replaces, ==, "x@h;to-tag=1;from-tag=2");
  td_leg_accept_refer (args->leg);
  return TD_HOOK_HANDLED;
}

static TdHookResult
decline_refer (const TdHookArgs *args, gpointer data)
{
  return TD_HOOK_CONTINUE;
}

static void
bob_refers (World *w, guint cseq, const char *refer_to)
{
  g_autofree char *head = g_strdup_printf (
    "REFER sip:tandem@127.0.0.1 SIP/2.0\r\n" VIA
    "From: <sip:bob@pbx.test>;tag=bt\r\nTo: <sip:alice@pbx.test>;tag=tb\r\n"
    "Call-ID: b-call@127.0.0.1\r\nCSeq: %u REFER\r\nContact: <sip:bob@127.0.0.1:5080>\r\n%s",
    cseq, refer_to ? refer_to : "");
  event (w->b, nua_i_refer, 0, head, NULL);
}

/* REFER (RFC 3515): no answer from tandem without a handler (nua answers
 * then), 400 without Refer-To, 501 from a handler that does not take it,
 * 202 and a 100 Trying NOTIFY from one that does, 491 while that transfer
 * runs, and again accepted once its final NOTIFY is out. */
static void
test_refer (void)
{
  World w;
  g_autoptr (GPtrArray) ops = NULL;
  const TdRefer *seen = NULL;
  const char *refer_to =
    "Refer-To: <sip:carol@pbx.test?Replaces=x%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n";

  world_init (&w);
  bridged_call (&w, ALLOW_ALL);
  g_ptr_array_unref (new_ops (&w));
  bob_refers (&w, 2, "Refer-To: <sip:carol@pbx.test>\r\n");
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_RESPOND, w.b), ==, 0);
  g_clear_pointer (&ops, g_ptr_array_unref);

  w.ctx.plugins = td_plugin_host_new ();
  td_plugin_host_add_hook (w.ctx.plugins, TD_HOOK_REFER, decline_refer, NULL);
  bob_refers (&w, 3, NULL);
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.b)->status, ==, 400);
  g_clear_pointer (&ops, g_ptr_array_unref);

  bob_refers (&w, 4, "Refer-To: <sip:carol@pbx.test>\r\n");
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.b)->status, ==, 501);
  g_assert_null (w.b->refer_event);
  g_clear_pointer (&ops, g_ptr_array_unref);
  g_clear_pointer (&w.ctx.plugins, td_plugin_host_free);

  w.ctx.plugins = td_plugin_host_new ();
  td_plugin_host_add_hook (w.ctx.plugins, TD_HOOK_REFER, accept_refer, &seen);
  bob_refers (&w, 5, refer_to);
  ops = new_ops (&w);
  g_assert_nonnull (seen);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.b)->status, ==, 202);
  g_assert_cmpstr (only_op (ops, OP_NOTIFY, w.b)->sdp, ==, "SIP/2.0 100 Trying\r\n");
  g_clear_pointer (&ops, g_ptr_array_unref);

  bob_refers (&w, 6, refer_to);
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.b)->status, ==, 491);
  g_clear_pointer (&ops, g_ptr_array_unref);

  td_leg_notify_refer (w.b, 486);
  ops = new_ops (&w);
  g_assert_cmpstr (only_op (ops, OP_NOTIFY, w.b)->sdp, ==, "SIP/2.0 486 Busy Here\r\n");
  g_assert_null (w.b->refer_event);
  g_clear_pointer (&ops, g_ptr_array_unref);

  bob_refers (&w, 7, refer_to);
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.b)->status, ==, 202);
  g_clear_pointer (&w.ctx.plugins, td_plugin_host_free);
  world_clear (&w);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/callstate/reoffer/200-crosses-cancel", test_200_crosses_cancel);
  g_test_add_func ("/callstate/move/leg", test_move_leg);
  g_test_add_func ("/callstate/move/reinvite", test_move_leg_reinvite);
  g_test_add_func ("/callstate/move/refused", test_move_leg_refused);
  g_test_add_func ("/callstate/refer", test_refer);
  g_test_add_func ("/callstate/reoffer/realign-glare", test_realign_glare);
  g_test_add_func ("/callstate/refresh/glare-delay", test_glare_delay);
  g_test_add_func ("/callstate/ports/retry-after", test_no_ports_retry_after);
  g_test_add_func ("/callstate/refresh/offer-beside-update", test_offer_beside_refresh_update);
  g_test_add_func ("/callstate/refresh/offer-beside-reinvite", test_offer_beside_refresh_reinvite);
  g_test_add_func ("/callstate/end/stack-ends-b-leg", test_stack_ends_b_leg);
  g_test_add_func ("/callstate/end/stack-ends-a-leg-ringing", test_stack_ends_a_leg_ringing);
  g_test_add_func ("/callstate/ports/reoffer", test_reoffer_no_ports);
  g_test_add_func ("/callstate/reoffer/no-common-codec", test_reoffer_no_common_codec);
  g_test_add_func ("/callstate/reoffer/9xx", test_reoffer_9xx);
  g_test_add_func ("/callstate/reoffer/481", test_reoffer_481);
  g_test_add_func ("/callstate/reoffer/408", test_reoffer_408);
  g_test_add_func ("/callstate/ack/late-offer-reinvite-answer", test_late_offer_reinvite_ack_answer);
  g_test_add_func ("/callstate/ack/late-offer-no-common-codec", test_late_offer_ack_answer_no_common_codec);
  g_test_add_func ("/callstate/ack/reinvite-answer-no-common-codec", test_reinvite_ack_answer_no_common_codec);
  g_test_add_func ("/callstate/refresh/b-without-update", test_refresh_b_without_update);
  g_test_add_func ("/callstate/refresh/b-with-update", test_refresh_b_with_update);
  g_test_add_func ("/callstate/refresh/update-refused", test_refresh_update_refused);
  g_test_add_func ("/callstate/refresh/errors-keep-call", test_refresh_errors_keep_call);
  g_test_add_func ("/callstate/refresh/408", test_refresh_408);
  g_test_add_func ("/callstate/refresh/481", test_refresh_481);
  g_test_add_func ("/callstate/refresh/a-leg", test_refresh_a_leg);
  g_test_add_func ("/callstate/refresh/by-phone", test_refresh_by_phone);
  g_test_add_func ("/callstate/refresh/waits-for-offer", test_refresh_waits_for_offer);
  g_test_add_func ("/callstate/refresh/negotiated-by-b", test_refresh_negotiated_by_b);
  g_test_add_func ("/callstate/reoffer/cancelled", test_cancelled_reinvite);
  g_test_add_func ("/callstate/ack/early-offer-answer", test_ack_answer_early_offer);
  g_test_add_func ("/callstate/status/for-caller", test_failure_status_for_caller);
  g_test_add_func ("/callstate/status/for-offerer", test_failure_status_for_offerer);
  g_test_add_func ("/callstate/branch/422-retried-once", test_422_retried_once);
  return g_test_run ();
}
