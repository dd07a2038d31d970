/* Rooms (b2bua/td-room.c) against the fake signal of callstate-world: who
 * is in a room, what each party's endpoint is told (nothing, mostly), and
 * how a room ends — deterministic, in one process, no timers. */
#include "callstate-world.h"
#include "td-room.h"

guint16 world_port_min = 34400;

typedef struct {
  TdCall *call;
  TdLeg *a, *b;
} Pair;

/* `caller` calls `callee`, who answers; both PCMU, the endpoints' RTP on
 * port and port + 2. */
static Pair
answered_call (World *w, const char *caller, const char *callee, guint16 port)
{
  g_auto (Msg) m = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *offer = sdp_text (port, "0", 1, "a=sendrecv");
  g_autofree char *answer = sdp_text (port + 2, "0", 1, "a=sendrecv");
  g_autofree char *contact = g_strdup_printf ("sip:%s@127.0.0.1:%u", callee, port);
  g_autofree char *head = g_strdup_printf ("INVITE sip:%s@pbx.test SIP/2.0\r\n" VIA
                                           "From: <sip:%s@pbx.test>;tag=%s-t\r\n"
                                           "To: <sip:%s@pbx.test>\r\nCall-ID: %s-%u@127.0.0.1\r\n"
                                           "CSeq: 1 INVITE\r\nContact: <sip:%s@127.0.0.1:5071>\r\n"
                                           ALLOW_ALL, callee, caller, caller, callee, caller, port,
                                           caller);
  g_autofree char *ok = g_strdup_printf ("SIP/2.0 200 OK\r\n" VIA "From: <sip:%s@pbx.test>;tag=x\r\n"
                                         "To: <sip:%s@pbx.test>;tag=y\r\nCall-ID: b-%u@127.0.0.1\r\n"
                                         "CSeq: 1 INVITE\r\nContact: <%s>\r\n" ALLOW_ALL,
                                         caller, callee, port, contact);
  TdUser user = { .name = (char *) caller };
  TdBinding binding = { .aor = (char *) callee, .contact = contact,
                        .source = (char *) "udp/127.0.0.1:5090" };
  g_autoptr (GPtrArray) targets = g_ptr_array_new ();
  TdRoute route = { .callee = (char *) callee, .targets = targets };
  const sip_t *sip = parse (&m, head, offer);
  nua_handle_t *nh = fake_handle (&w->fake, NULL);
  Pair p;

  g_ptr_array_add (targets, &binding);
  td_call_start (&w->ctx, nh, sip, &user, &route, td_sdp_parse (offer, strlen (offer), &error));
  g_assert_no_error (error);
  p.a = g_hash_table_lookup (w->fake.legs, nh);
  p.call = p.a->call;
  g_assert_cmpuint (p.call->b_legs->len, ==, 1);
  p.b = g_ptr_array_index (p.call->b_legs, 0);
  event (p.b, nua_r_invite, 200, ok, answer);
  g_assert_true (p.call->bridged == p.b);
  g_ptr_array_unref (new_ops (w));
  return p;
}

static void
terminated (TdLeg *leg)
{
  tagi_t tags[] = { { NUTAG_CALLSTATE (nua_callstate_terminated) }, { TAG_END () } };
  td_call_leg_event (leg, nua_i_state, 200, "OK", NULL, tags);
}

/* The endpoint of `leg` hangs up: its BYE, then its dialog's end. */
static void
hangs_up (TdLeg *leg)
{
  g_autoptr (TdLeg) held = td_leg_ref (leg);
  event (leg, nua_i_bye, 0, "BYE sip:tandem@127.0.0.1 SIP/2.0\r\n" VIA
         "From: <sip:x@pbx.test>;tag=a\r\nTo: <sip:y@pbx.test>;tag=b\r\nCall-ID: z@h\r\n"
         "CSeq: 9 BYE\r\n", NULL);
  terminated (leg);
}

/* Tandem sent BYE on `leg`: the endpoint's 200 ends the dialog. */
static void
bye_answered (TdLeg *leg)
{
  g_autoptr (TdLeg) held = td_leg_ref (leg);
  terminated (leg);
}

static guint
n_rooms (World *w)
{
  return g_hash_table_size (w->ctx.rooms);
}

/* Two calls bridged: four parties, each its own call in the room, told
 * nothing (no re-INVITE: the session each phone has is the room's), and the
 * old calls are over with a CDR each. */
static void
test_bridge (void)
{
  World w;
  world_init (&w);
  Pair p1 = answered_call (&w, "alice", "bob", 40000);
  Pair p2 = answered_call (&w, "carol", "dave", 40010);
  TdLeg *legs[] = { p1.a, p1.b, p2.a, p2.b };
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  g_autoptr (GPtrArray) in = NULL;
  TdRoom *room = td_room_bridge (p1.call, p2.call, &error);

  g_assert_no_error (error);
  g_assert_nonnull (room);
  g_assert_cmpstr (td_room_get_id (room), ==, "r1");
  g_assert_cmpuint (td_room_n_parties (room), ==, 4);
  in = td_room_get_legs (room);
  for (guint i = 0; i < 4; i++) {
    g_assert_true (g_ptr_array_index (in, i) == legs[i]);
    g_assert_true (td_call_get_room (legs[i]->call) == room);
    g_assert_true (legs[i]->call->a == legs[i]);
    g_assert_null (legs[i]->call->bridged);
  }
  ops = new_ops (&w);
  g_assert_cmpuint (ops->len, ==, 0);   /* no re-INVITE, no BYE */
  g_assert_cmpuint (g_hash_table_size (w.ctx.calls), ==, 4);
  world_clear (&w);
}

/* Parties leave: three keep talking; at two they are one plain call again
 * (told nothing: their sessions were PCMU all along); its end ends all. */
static void
test_collapse (void)
{
  World w;
  world_init (&w);
  Pair p1 = answered_call (&w, "alice", "bob", 40000);
  Pair p2 = answered_call (&w, "carol", "dave", 40010);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  TdRoom *room = td_room_bridge (p1.call, p2.call, &error);
  TdCall *call;

  g_assert_no_error (error);
  hangs_up (p2.b);
  g_assert_cmpuint (td_room_n_parties (room), ==, 3);
  g_assert_cmpuint (n_rooms (&w), ==, 1);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_BYE, p1.a) + count_ops (ops, OP_BYE, p1.b) +
                    count_ops (ops, OP_BYE, p2.a), ==, 0);
  hangs_up (p1.a);
  g_assert_cmpuint (n_rooms (&w), ==, 0);
  call = p1.b->call;
  g_assert_nonnull (call);
  g_assert_null (td_call_get_room (call));
  g_assert_true (p2.a->call == call);
  g_assert_true (td_call_peer_of (call, p1.b) == p2.a);
  g_clear_pointer (&ops, g_ptr_array_unref);
  ops = new_ops (&w);
  g_assert_cmpuint (count_ops (ops, OP_INVITE, p1.b) + count_ops (ops, OP_INVITE, p2.a), ==, 0);
  hangs_up (p2.a);
  g_clear_pointer (&ops, g_ptr_array_unref);
  ops = new_ops (&w);
  only_op (ops, OP_BYE, p1.b);
  bye_answered (p1.b);
  g_assert_cmpuint (g_hash_table_size (w.ctx.calls), ==, 0);
  world_clear (&w);
}

/* Three-way calling: alice talks to bob and to carol; bridging her two
 * calls makes one room of three, and her second leg is hung up. */
static void
test_three_way (void)
{
  World w;
  world_init (&w);
  Pair p1 = answered_call (&w, "alice", "bob", 40000);
  Pair p2 = answered_call (&w, "alice", "carol", 40010);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  TdRoom *room = td_room_bridge (p1.call, p2.call, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (td_room_n_parties (room), ==, 3);
  ops = new_ops (&w);
  only_op (ops, OP_BYE, p2.a);
  g_assert_true (td_call_get_room (p2.b->call) == room);
  bye_answered (p2.a);
  g_assert_cmpuint (td_room_n_parties (room), ==, 3);
  g_assert_cmpuint (g_hash_table_size (w.ctx.calls), ==, 3);
  world_clear (&w);
}

/* The operator removes a party (BYE); a room down to one ends (BYE). */
static void
test_kick_and_end (void)
{
  World w;
  world_init (&w);
  Pair p1 = answered_call (&w, "alice", "bob", 40000);
  Pair p2 = answered_call (&w, "alice", "carol", 40010);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  TdRoom *room = td_room_bridge (p1.call, p2.call, &error);

  g_assert_no_error (error);
  bye_answered (p2.a);
  g_ptr_array_unref (new_ops (&w));
  g_assert_false (td_room_kick (room, p2.a, &error));   /* not a party */
  g_assert_error (error, TD_CALL_ERROR, 404);
  g_clear_error (&error);
  g_assert_true (td_room_kick (room, p2.b, &error));
  ops = new_ops (&w);
  only_op (ops, OP_BYE, p2.b);
  bye_answered (p2.b);
  /* alice and bob: a call again */
  g_assert_cmpuint (n_rooms (&w), ==, 0);
  g_assert_true (p1.a->call == p1.b->call);
  world_clear (&w);
}

/* What cannot be bridged is refused, and nothing changes. */
static void
test_refused (void)
{
  World w;
  world_init (&w);
  Pair p1 = answered_call (&w, "alice", "bob", 40000);
  Pair p2 = answered_call (&w, "carol", "dave", 40010);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) ops = NULL;

  g_assert_null (td_room_bridge (p1.call, p1.call, &error));
  g_assert_error (error, TD_CALL_ERROR, 400);
  g_clear_error (&error);
  g_assert_nonnull (td_room_bridge (p1.call, p2.call, &error));
  g_assert_no_error (error);
  /* Their parties' calls are in a room now: not two-party calls. */
  g_assert_null (td_room_bridge (p1.a->call, p2.a->call, &error));
  g_assert_error (error, TD_CALL_ERROR, 481);
  ops = new_ops (&w);
  g_assert_cmpuint (ops->len, ==, 0);
  world_clear (&w);
}

/* A party's re-INVITE (a hold) is answered by tandem itself from the room's
 * session: recvonly, on the party's own port; nobody else hears of it. */
static void
test_party_offer (void)
{
  World w;
  world_init (&w);
  Pair p1 = answered_call (&w, "alice", "bob", 40000);
  Pair p2 = answered_call (&w, "carol", "dave", 40010);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) ops = NULL;
  g_autofree char *hold = sdp_text (40000, "0", 2, "a=sendonly");
  guint16 port = td_relay_port_number (g_ptr_array_index (p1.a->ports, 0));
  Op *ok;

  g_assert_nonnull (td_room_bridge (p1.call, p2.call, &error));
  event (p1.a, nua_i_invite, 0, "INVITE sip:tandem@127.0.0.1 SIP/2.0\r\n" VIA A_DIALOG
         "CSeq: 2 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\n" ALLOW_ALL, hold);
  ops = new_ops (&w);
  g_assert_cmpuint (ops->len, ==, 1);
  ok = only_op (ops, OP_RESPOND, p1.a);
  g_assert_cmpint (ok->status, ==, 200);
  g_assert_nonnull (strstr (ok->sdp, "a=recvonly"));
  g_assert_cmpuint (sdp_port (ok->sdp), ==, port);
  g_autofree char *formats = sdp_formats (ok->sdp);
  g_assert_cmpstr (formats, ==, "0");
  world_clear (&w);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rooms/bridge", test_bridge);
  g_test_add_func ("/rooms/collapse", test_collapse);
  g_test_add_func ("/rooms/three-way", test_three_way);
  g_test_add_func ("/rooms/kick-and-end", test_kick_and_end);
  g_test_add_func ("/rooms/refused", test_refused);
  g_test_add_func ("/rooms/party-offer", test_party_offer);
  return g_test_run ();
}
