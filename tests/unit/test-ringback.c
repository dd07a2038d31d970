/* Ringback in the call state machine (td-call-early.c), in the test world of
 * callstate-world.h: tandem's own 183, the same SDP in the 200, a re-INVITE
 * only when the callee answers in another codec, which branch's early media
 * may end the tune. The relay's switch itself is test-relay's. */
#include "callstate-world.h"

#define OFFER_PCMU_PCMA_DTMF                                                          \
  "v=0\r\no=phone 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"    \
  "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" \
  "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"

guint16 world_port_min = 34200;

typedef struct {
  TdTune *tune;
  TdRingbackMode mode;
  gboolean played;
} Ringback;

static TdHookResult
play_on_ringing (const TdHookArgs *args, gpointer data)
{
  Ringback *rb = data;
  rb->played = td_call_play_ringback (args->call, rb->tune, rb->mode);
  return TD_HOOK_CONTINUE;
}

static TdTune *
test_tune (void)
{
  gint16 pcm[1600];
  for (guint i = 0; i < G_N_ELEMENTS (pcm); i++)
    pcm[i] = (gint16) (8000 * ((i / 4) % 2 ? 1 : -1));   /* 1 kHz square */
  return td_tune_new_from_pcm (pcm, G_N_ELEMENTS (pcm));
}

static void
world_with_ringback (World *w, Ringback *rb, TdRingbackMode mode)
{
  world_init (w);
  rb->tune = test_tune ();
  rb->mode = mode;
  rb->played = FALSE;
  w->ctx.plugins = td_plugin_host_new ();
  td_plugin_host_add_hook (w->ctx.plugins, TD_HOOK_LEG_RINGING, play_on_ringing, rb);
}

static void
world_without_ringback (World *w, Ringback *rb)
{
  g_clear_pointer (&w->ctx.plugins, td_plugin_host_free);
  world_clear (w);
  g_clear_pointer (&rb->tune, td_tune_unref);
}

static TdRelayPort *
port_of (TdLeg *leg)
{
  g_assert_cmpuint (leg->ports->len, >, 0);
  return g_ptr_array_index (leg->ports, 0);
}

/* B rings without SDP: the caller gets tandem's 183 (PCMU, the caller's
 * first codec, and its telephone-event, on its relay port) and no 180; the
 * tune plays; B's 200 in PCMU gets the caller a 200 with the very same SDP,
 * the tune stops, and the caller's ACK brings no re-INVITE. */
static void
test_answer_same_codec (void)
{
  World w;
  Ringback rb;
  g_autoptr (GPtrArray) ops = NULL;
  g_autofree char *early = NULL, *formats = NULL;
  g_autofree char *answer = sdp_text (40100, "0", 1, "a=sendrecv");

  world_with_ringback (&w, &rb, TD_RINGBACK_EARLY_MEDIA_FIRST);
  start_call (&w, OFFER_PCMU_PCMA_DTMF, NULL);
  g_ptr_array_unref (new_ops (&w));
  b_response (&w, nua_r_invite, 180, "INVITE", 1, NULL, NULL);
  ops = new_ops (&w);
  g_assert_true (rb.played);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 183);
  early = g_strdup (only_op (ops, OP_RESPOND, w.a)->sdp);
  g_assert_nonnull (early);
  formats = sdp_formats (early);
  g_assert_cmpstr (formats, ==, "0 101");
  g_assert_nonnull (strstr (early, "a=fmtp:101 0-15\r\n"));
  g_assert_null (strstr (early, "PCMA"));
  g_assert_cmpuint (sdp_port (early), ==, td_relay_port_number (port_of (w.a)));
  g_assert_true (td_relay_port_is_playing (port_of (w.a)));
  g_clear_pointer (&ops, g_ptr_array_unref);

  /* Ringing again (another 180) tells the caller nothing new. */
  b_response (&w, nua_r_invite, 180, "INVITE", 1, NULL, NULL);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_RESPOND, w.a), ==, 0);
  g_clear_pointer (&ops, g_ptr_array_unref);

  b_response (&w, nua_r_invite, 200, "INVITE", 1, NULL, answer);
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 200);
  g_assert_cmpstr (only_op (ops, OP_RESPOND, w.a)->sdp, ==, early);
  g_assert_false (td_relay_port_is_playing (port_of (w.a)));
  g_clear_pointer (&ops, g_ptr_array_unref);

  a_request (&w, nua_i_ack, "ACK", 1, NULL);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_INVITE, w.a), ==, 0);
  world_without_ringback (&w, &rb);
}

/* B answers in PCMA: the caller's 200 still repeats the 183 (its session is
 * PCMU), and once it has ACKed it is offered B's session: PCMA, a newer
 * o= version. Not before the ACK (RFC 3261 §14.1). */
static void
test_answer_other_codec (void)
{
  World w;
  Ringback rb;
  g_autoptr (GPtrArray) ops = NULL;
  g_autofree char *early = NULL, *formats = NULL;
  g_autofree char *answer = sdp_text (40100, "8", 1, "a=sendrecv");
  const char *offer;

  world_with_ringback (&w, &rb, TD_RINGBACK_EARLY_MEDIA_FIRST);
  start_call (&w, OFFER_PCMU_PCMA_DTMF, NULL);
  b_response (&w, nua_r_invite, 180, "INVITE", 1, NULL, NULL);
  ops = new_ops (&w);
  early = g_strdup (only_op (ops, OP_RESPOND, w.a)->sdp);
  g_clear_pointer (&ops, g_ptr_array_unref);

  b_response (&w, nua_r_invite, 200, "INVITE", 1, NULL, answer);
  ops = new_ops (&w);
  g_assert_cmpstr (only_op (ops, OP_RESPOND, w.a)->sdp, ==, early);
  g_assert_cmpuint (count_ops (ops, OP_INVITE, w.a), ==, 0);
  g_clear_pointer (&ops, g_ptr_array_unref);

  a_request (&w, nua_i_ack, "ACK", 1, NULL);
  ops = new_ops (&w);
  offer = only_op (ops, OP_INVITE, w.a)->sdp;
  formats = sdp_formats (offer);
  g_assert_cmpstr (formats, ==, "8");
  g_assert_cmpuint (sdp_version (offer), ==, sdp_version (early) + 1);
  g_assert_cmpuint (sdp_port (offer), ==, sdp_port (early));
  world_without_ringback (&w, &rb);
}

/* Without a tune (no plugin plays one) the 180 is relayed as it was. */
static void
test_no_ringback (void)
{
  World w;
  g_autoptr (GPtrArray) ops = NULL;

  world_init (&w);
  start_call (&w, OFFER_PCMU_PCMA_DTMF, NULL);
  g_ptr_array_unref (new_ops (&w));
  b_response (&w, nua_r_invite, 180, "INVITE", 1, NULL, NULL);
  ops = new_ops (&w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 180);
  g_assert_null (only_op (ops, OP_RESPOND, w.a)->sdp);
  world_clear (&w);
}

/* A late offer (no SDP in the INVITE) leaves tandem nothing to answer. */
static void
test_late_offer (void)
{
  World w;
  Ringback rb;
  g_autoptr (GPtrArray) ops = NULL;

  world_with_ringback (&w, &rb, TD_RINGBACK_EARLY_MEDIA_FIRST);
  start_call (&w, NULL, NULL);
  g_ptr_array_unref (new_ops (&w));
  b_response (&w, nua_r_invite, 180, "INVITE", 1, NULL, NULL);
  ops = new_ops (&w);
  g_assert_false (rb.played);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w.a)->status, ==, 180);
  world_without_ringback (&w, &rb);
}

/* B's early media (183 with SDP in the caller's codec): in
 * early-media-first mode the caller's port is B's, so that B's first packet
 * ends the tune; in tune-first mode it is not; one in another codec never
 * is. No second 183 goes to the caller either way. */
static void
early_media (TdRingbackMode mode, const char *b_codec, gboolean connected)
{
  World w;
  Ringback rb;
  g_autoptr (GPtrArray) ops = NULL;
  g_autofree char *early_sdp = sdp_text (40100, b_codec, 1, "a=sendrecv");

  world_with_ringback (&w, &rb, mode);
  start_call (&w, OFFER_PCMU_PCMA_DTMF, NULL);
  b_response (&w, nua_r_invite, 180, "INVITE", 1, NULL, NULL);
  g_assert_true (w.call->early.branch == w.b);   /* its RTP before its 200 switches */
  g_assert_false (w.call->early.branch_media);
  g_ptr_array_unref (new_ops (&w));
  b_response (&w, nua_r_invite, 183, "INVITE", 1, NULL, early_sdp);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_RESPOND, w.a), ==, 0);
  g_assert_true ((w.call->early.branch == w.b) == connected);
  g_assert_true (w.call->early.branch_media == connected);
  g_assert_true (td_relay_port_is_playing (port_of (w.a)));   /* until B's RTP */
  world_without_ringback (&w, &rb);
}

static void
test_early_media_first (void)
{
  early_media (TD_RINGBACK_EARLY_MEDIA_FIRST, "0", TRUE);
}

static void
test_tune_first (void)
{
  early_media (TD_RINGBACK_TUNE_FIRST, "0", FALSE);
}

static void
test_early_media_other_codec (void)
{
  early_media (TD_RINGBACK_EARLY_MEDIA_FIRST, "8", FALSE);
}

/* Forwarded: a second tune replaces the first on the same port; the caller
 * is told nothing more, its answer stays. */
static void
test_tune_replaced (void)
{
  World w;
  Ringback rb;
  g_autoptr (GPtrArray) ops = NULL;
  g_autoptr (TdTune) other = test_tune ();

  world_with_ringback (&w, &rb, TD_RINGBACK_EARLY_MEDIA_FIRST);
  start_call (&w, OFFER_PCMU_PCMA_DTMF, NULL);
  b_response (&w, nua_r_invite, 180, "INVITE", 1, NULL, NULL);
  g_ptr_array_unref (new_ops (&w));
  g_assert_true (w.call->early.tune == rb.tune);
  g_assert_true (td_call_play_ringback (w.call, other, TD_RINGBACK_EARLY_MEDIA_FIRST));
  ops = new_ops (&w);
  g_assert_cmpuint (ops->len, ==, 0);
  g_assert_true (w.call->early.tune == other);
  world_without_ringback (&w, &rb);
}

/* alice calls bob, who has two phones: both branches ring. */
static void
start_forked_call (World *w, TdLeg **b1, TdLeg **b2)
{
  g_auto (Msg) m = { 0 };
  TdUser alice = { .name = (char *) "alice" };
  TdBinding one = { .aor = (char *) "bob", .contact = (char *) "sip:bob@127.0.0.1:5080",
                    .source = (char *) "udp/127.0.0.1:5080" };
  TdBinding two = { .aor = (char *) "bob", .contact = (char *) "sip:bob@127.0.0.1:5082",
                    .source = (char *) "udp/127.0.0.1:5082" };
  g_autoptr (GPtrArray) targets = g_ptr_array_new ();
  TdRoute route = { .callee = (char *) "bob", .targets = targets };
  const sip_t *sip = parse (&m, "INVITE sip:bob@pbx.test SIP/2.0\r\n" VIA
                            "From: <sip:alice@pbx.test>;tag=at\r\nTo: <sip:bob@pbx.test>\r\n"
                            "Call-ID: a-call@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
                            "Contact: <sip:alice@127.0.0.1:5070>\r\n" ALLOW_ALL,
                            OFFER_PCMU_PCMA_DTMF);
  nua_handle_t *nh = fake_handle (&w->fake, NULL);

  g_ptr_array_add (targets, &one);
  g_ptr_array_add (targets, &two);
  td_call_start (&w->ctx, nh, sip, &alice, &route,
                 td_sdp_parse (OFFER_PCMU_PCMA_DTMF, -1, NULL));
  w->a = g_hash_table_lookup (w->fake.legs, nh);
  w->call = w->a->call;
  g_assert_cmpuint (w->call->b_legs->len, ==, 2);
  *b1 = g_ptr_array_index (w->call->b_legs, 0);
  *b2 = g_ptr_array_index (w->call->b_legs, 1);
  w->b = *b1;
}

static void
branch_response (TdLeg *b, int status, const char *sdp)
{
  g_autofree char *head = g_strdup_printf ("SIP/2.0 %d %s\r\n" VIA B_DIALOG
                                           "CSeq: 1 INVITE\r\nContact: <%s>\r\n", status,
                                           td_call_phrase (status), b->target);
  event (b, nua_r_invite, status, head, sdp);
}

/* Forking: the first branch whose early media fits keeps the caller; the
 * other's early media and ringing do not take it away; once that branch
 * fails, the other's 183 gets it. */
static void
test_forked_early_media (void)
{
  World w;
  Ringback rb;
  TdLeg *b1, *b2;
  g_autofree char *sdp1 = sdp_text (40100, "0", 1, "a=sendrecv");
  g_autofree char *sdp2 = sdp_text (40200, "0", 1, "a=sendrecv");

  world_with_ringback (&w, &rb, TD_RINGBACK_EARLY_MEDIA_FIRST);
  start_forked_call (&w, &b1, &b2);
  branch_response (b1, 183, sdp1);
  g_assert_true (w.call->early.branch == b1 && w.call->early.branch_media);
  branch_response (b2, 183, sdp2);
  g_assert_true (w.call->early.branch == b1);
  branch_response (b2, 180, NULL);
  g_assert_true (w.call->early.branch == b1);
  branch_response (b1, 486, NULL);
  branch_response (b2, 183, sdp2);
  g_assert_true (w.call->early.branch == b2 && w.call->early.branch_media);
  world_without_ringback (&w, &rb);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ringback/answer/same-codec", test_answer_same_codec);
  g_test_add_func ("/ringback/answer/other-codec", test_answer_other_codec);
  g_test_add_func ("/ringback/none", test_no_ringback);
  g_test_add_func ("/ringback/late-offer", test_late_offer);
  g_test_add_func ("/ringback/early-media/first", test_early_media_first);
  g_test_add_func ("/ringback/early-media/tune-first", test_tune_first);
  g_test_add_func ("/ringback/early-media/other-codec", test_early_media_other_codec);
  g_test_add_func ("/ringback/tune-replaced", test_tune_replaced);
  g_test_add_func ("/ringback/early-media/forked", test_forked_early_media);
  return g_test_run ();
}
