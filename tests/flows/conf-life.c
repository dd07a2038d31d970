/* The life of a room (issue 11) and tandemctl's errors: the conference
 * flow cases after the ones that make rooms (test-conference.c, whose
 * header says what the wire must show). */
#include <string.h>

#include "conf-case.h"

#define LIFE_PACKETS 450   /* 9 s of each voice */

/* alice calls bob and carol on lines `bob_scenario`/`carol_scenario` and
 * bridges them into one room of three; a probe plays every line's voice,
 * `packets` of each (dave's too, if he answers on dave_file: "d.port").
 * Returns the probe; x->room is the room. */
static FlowProbe *
three_in_a_room (ConfCase *x, const char *bob_scenario, const char *carol_scenario,
                 const char *dave_file, guint packets)
{
  g_autofree char *c1 = NULL, *c2 = NULL, *leg2 = NULL;
  FlowProbe *probe;

  conf_case_start (x);
  conf_line_answer (x->d, &x->b, "bob", bob_scenario, "b");
  conf_line_answer (x->d, &x->c, "carol", carol_scenario, "c");
  if (dave_file)
    conf_line_answer (x->d, &x->dv, "dave", "xfer-uas-talk.xml", "d");
  conf_line_call (x->d, &x->a, "alice", "a", &x->b);
  conf_line_call (x->d, &x->a2, "alice", "a2", &x->c);
  {
    JsonArray *calls = conf_wait_calls_talking (x->parser, 2);
    c1 = conf_call_id (calls, "alice", "bob", NULL, NULL);
    c2 = conf_call_id (calls, "alice", "carol", "alice", &leg2);
  }
  {
    FlowToneEndpoint eps[] = {
      conf_line_tone (&x->a, CONF_SSRC (1), NULL, 0, packets),
      conf_line_tone (&x->a2, CONF_SSRC (2), NULL, 0, packets),
      conf_line_tone (&x->b, CONF_SSRC (3), NULL, 0, packets),
      conf_line_tone (&x->c, CONF_SSRC (4), NULL, 0, packets),
      { 0 },
    };
    if (dave_file)
      eps[4] = conf_line_tone (&x->dv, CONF_SSRC (5), dave_file, 0, packets);
    probe = flow_probe_start_tones (eps, dave_file ? 5 : 4);
  }
  g_usleep (CONF_PHASE_MS * 1000);
  conf_bridge (x, c1, c2, "alice bob carol");
  conf_line_finish (&x->a2);
  conf_assert_byed (&x->a2, x->bridge_sent_us);
  conf_wait_room (x->parser, x->room, "alice bob carol");
  conf_assert_calls_show_room (x->room, leg2);
  return probe;
}

/* In a room of three bob hangs up: alice and carol still hear each other,
 * in a plain call (no room in `conference list`, one call of the two in
 * `calls` without "room"); then carol hangs up: alice, the last, gets a
 * BYE and nothing is left. */
static void
test_leave (void)
{
  g_auto (ConfCase) x = { 0 };
  g_autoptr (JsonParser) cp = json_parser_new ();
  FlowProbe *probe = three_in_a_room (&x, "conf-uas-answer.xml", "conf-uas-answer.xml", NULL,
                                       LIFE_PACKETS);
  gint64 bob_left_us, carol_left_us;
  JsonArray *calls;
  JsonObject *call;

  g_usleep (CONF_PHASE_MS * 1000);
  bob_left_us = conf_line_hang_up (x.d, &x.b);
  conf_wait_no_rooms (x.parser);
  calls = conf_wait_calls_talking (cp, 1);
  call = conf_call_between (calls, "alice", "carol");
  g_assert_nonnull (call);
  if (json_object_has_member (call, "room"))
    g_printerr ("flow: the call of the last two still names a room\n");
  g_assert_false (json_object_has_member (call, "room"));
  g_usleep (CONF_PHASE_MS * 1000);
  carol_left_us = conf_line_hang_up (x.d, &x.c);
  conf_line_finish (&x.a);
  conf_assert_byed (&x.a, carol_left_us);
  g_assert_cmpuint (json_array_get_length (conf_wait_calls_talking (cp, 0)), ==, 0);
  x.report = flow_probe_finish (probe);
  flow_daemon_stop (x.d);
  conf_line_finish (&x.b);
  conf_line_finish (&x.c);

  conf_line_stream (x.report, &x.a, carol_left_us);
  conf_line_stream (x.report, &x.c, carol_left_us);
  conf_line_stream (x.report, &x.b, bob_left_us);
  /* The room, then the plain call of the two. */
  conf_line_hears (x.report, &x.a, x.bridged_us + CONF_SETTLE_US, bob_left_us, CONF_MIN_FRAMES,
                   "BC");
  conf_line_hears (x.report, &x.b, x.bridged_us + CONF_SETTLE_US, bob_left_us, CONF_MIN_FRAMES,
                   "AC");
  conf_line_hears (x.report, &x.c, x.bridged_us + CONF_SETTLE_US, bob_left_us, CONF_MIN_FRAMES,
                   "AB");
  conf_line_hears (x.report, &x.a, bob_left_us + CONF_SETTLE_US, carol_left_us, CONF_MIN_FRAMES,
                   "C");
  conf_line_hears (x.report, &x.c, bob_left_us + CONF_SETTLE_US, carol_left_us, CONF_MIN_FRAMES,
                   "A");
}

/* In a room of three: `conference add ROOM dave` rings dave, who answers
 * and hears the three (and they him); `conference kick ROOM carol's leg`
 * BYEs carol, and the other three go on hearing each other. */
static void
test_add_kick (void)
{
  g_auto (ConfCase) x = { 0 };
  FlowProbe *probe = three_in_a_room (&x, "xfer-uas-talk.xml", "xfer-uas-talk.xml", "d.port",
                                       LIFE_PACKETS);
  g_autofree char *dave_leg = NULL, *carol_leg = NULL;
  JsonObject *r, *room;
  gint64 kick_us, kicked_us, stop_us, dave_us, end_us;

  r = conf_ctl_ok (x.parser, "conference", "add", x.room, "dave");
  g_assert_cmpstr (conf_str (r, "room"), ==, x.room);
  dave_leg = g_strdup (conf_str (r, "leg"));
  g_assert_nonnull (dave_leg);
  x.dv.relay = flow_wait_port_file ("d");
  room = conf_wait_room (x.parser, x.room, "alice bob carol dave");
  g_assert_cmpstr (conf_str (conf_party_of (conf_parties (room), "dave"), "leg"), ==, dave_leg);
  carol_leg = g_strdup (conf_str (conf_party_of (conf_parties (room), "carol"), "leg"));
  g_usleep (CONF_PHASE_MS * 1000);

  kick_us = g_get_real_time ();
  r = conf_ctl_ok (x.parser, "conference", "kick", x.room, carol_leg);
  kicked_us = g_get_real_time ();
  g_assert_cmpstr (conf_str (r, "room"), ==, x.room);
  g_assert_cmpstr (conf_str (r, "leg"), ==, carol_leg);
  conf_line_finish (&x.c);
  conf_assert_byed (&x.c, kick_us);
  conf_wait_room (x.parser, x.room, "alice bob dave");
  conf_assert_calls_show_room (x.room, carol_leg);
  x.report = flow_probe_finish (probe);

  stop_us = g_get_real_time ();
  flow_daemon_stop (x.d);
  conf_line_finish (&x.a);
  conf_line_finish (&x.b);
  conf_line_finish (&x.dv);
  conf_assert_no_reinvite (&x.a, TRUE);
  conf_assert_no_reinvite (&x.b, FALSE);
  conf_assert_no_reinvite (&x.c, FALSE);
  conf_assert_no_reinvite (&x.dv, FALSE);
  conf_assert_byed (&x.a, stop_us);
  conf_assert_byed (&x.b, stop_us);
  conf_assert_byed (&x.dv, stop_us);
  flow_assert_relay_sdp (flow_require_msg (x.dv.run->received, "INVITE ", 0),
                         x.dv.sip.rtp_port, FALSE, CONF_MEDIA_MIN, CONF_MEDIA_MAX);

  dave_us = flow_run_msg_time (x.dv.run, flow_require_response (x.dv.run->sent, 200, "INVITE", 0));
  end_us = MIN (conf_line_last_sent (x.report, &x.a, LIFE_PACKETS),
                conf_line_last_sent (x.report, &x.dv, LIFE_PACKETS));
  conf_line_stream (x.report, &x.a, end_us);
  conf_line_stream (x.report, &x.b, end_us);
  conf_line_stream (x.report, &x.c, kick_us);
  conf_line_stream (x.report, &x.dv, end_us);
  /* Four, then three. */
  conf_line_hears (x.report, &x.a, dave_us + CONF_SETTLE_US, kick_us, CONF_MIN_FRAMES, "BCD");
  conf_line_hears (x.report, &x.b, dave_us + CONF_SETTLE_US, kick_us, CONF_MIN_FRAMES, "ACD");
  conf_line_hears (x.report, &x.c, dave_us + CONF_SETTLE_US, kick_us, CONF_MIN_FRAMES, "ABD");
  conf_line_hears (x.report, &x.dv, dave_us + CONF_SETTLE_US, kick_us, CONF_MIN_FRAMES, "ABC");
  conf_line_hears (x.report, &x.a, kicked_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "BD");
  conf_line_hears (x.report, &x.b, kicked_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "AD");
  conf_line_hears (x.report, &x.dv, kicked_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "AB");
}

/* ---- errors ------------------------------------------------------------------------- */

/* What `calls` and `conference list` say, as one text. */
static char *
snapshot (void)
{
  g_autoptr (JsonParser) cp = json_parser_new (), rp = json_parser_new ();
  g_autofree char *calls = NULL, *rooms = NULL;

  conf_calls (cp);
  conf_rooms (rp);
  calls = json_to_string (json_parser_get_root (cp), FALSE);
  rooms = json_to_string (json_parser_get_root (rp), FALSE);
  return g_strdup_printf ("%s\n%s", calls, rooms);
}

static void
assert_unchanged (const char *before)
{
  g_autofree char *after = snapshot ();

  if (strcmp (before, after) != 0)
    g_printerr ("flow: a refused command changed the calls or rooms:\nbefore %s\nafter %s\n",
                before, after);
  g_assert_cmpstr (after, ==, before);
}

/* Refused: bridge of an unknown call, of a ringing one, of a call with
 * itself (before any room); then, with a room, kick of a leg not in it
 * and of one that does not exist, kick from and add to an unknown room;
 * usage errors (exit 2). Each refusal names what is wrong and changes
 * nothing: the calls and the room are as before, no party got anything. */
static void
test_ctl_errors (void)
{
  g_auto (ConfCase) x = { 0 };
  g_auto (ConfLine) ring = { 0 }, ringing = { 0 };
  g_autofree char *c1 = NULL, *c2 = NULL, *c3 = NULL, *before = NULL, *dave_leg = NULL;
  gint64 stop_us;

  conf_case_start (&x);
  conf_line_answer (x.d, &x.b, "bob", "xfer-uas-talk.xml", "b");
  conf_line_answer (x.d, &x.c, "carol", "xfer-uas-talk.xml", "c");
  conf_line_call (x.d, &x.a, "alice", "a", &x.b);
  conf_line_call (x.d, &x.a2, "alice", "a2", &x.c);
  {
    JsonArray *calls = conf_wait_calls_talking (x.parser, 2);
    c1 = conf_call_id (calls, "alice", "bob", NULL, NULL);
    c2 = conf_call_id (calls, "alice", "carol", NULL, NULL);
  }
  /* A third call, ringing: alice calls dave, whose phone only rings. */
  conf_line_answer (x.d, &ringing, "dave", "call-uas-ring.xml", "d");
  ring.user = "alice";
  ring.side = "a3";
  ring.sip = flow_party ("alice", "call-uac-fail.xml", "a3");
  ring.sip.timeout = "40s";
  ring.sipp = flow_caller_start (x.d, &ring.sip, "dave");
  flow_wait_port_file ("d");
  for (guint waited = 0;; waited += 100) {
    g_autoptr (JsonParser) p = json_parser_new ();
    JsonObject *call = conf_call_between (conf_calls (p), "alice", "dave");
    if (call && conf_str (call, "id")) {
      c3 = g_strdup (conf_str (call, "id"));
      dave_leg = g_strdup (conf_str (conf_party_of (conf_parties (call), "dave"), "leg"));
      break;
    }
    g_assert_cmpuint (waited, <, 10000);
    g_usleep (100 * 1000);
  }

  before = snapshot ();
  conf_ctl_refused ("no live call c999", "bridge", "c999", c1);
  conf_ctl_refused ("no live call c999", "bridge", c1, "c999");
  conf_ctl_refused (c3, "bridge", c1, c3);
  conf_ctl_refused (NULL, "bridge", c1, c1);
  conf_ctl_refused (NULL, "bridge", "bogus", c1);
  conf_ctl_refused ("r999", "conference", "add", "r999", "bob");
  conf_ctl_refused ("r999", "conference", "kick", "r999", dave_leg);
  g_assert_cmpint (conf_ctl (NULL, NULL, "bridge", c1), ==, 2);
  g_assert_cmpint (conf_ctl (NULL, NULL, "conference"), ==, 2);
  g_assert_cmpint (conf_ctl (NULL, NULL, "conference", "frob"), ==, 2);
  assert_unchanged (before);

  conf_bridge (&x, c1, c2, "alice bob carol");
  conf_line_finish (&x.a2);
  conf_wait_room (x.parser, x.room, "alice bob carol");
  g_clear_pointer (&before, g_free);
  before = snapshot ();
  conf_ctl_refused (dave_leg, "conference", "kick", x.room, dave_leg);
  conf_ctl_refused ("l9999", "conference", "kick", x.room, "l9999");
  g_assert_cmpint (conf_ctl (NULL, NULL, "conference", "add", x.room), ==, 2);
  g_assert_cmpint (conf_ctl (NULL, NULL, "conference", "kick", x.room), ==, 2);
  assert_unchanged (before);

  stop_us = g_get_real_time ();
  flow_daemon_stop (x.d);
  conf_line_finish (&x.a);
  conf_line_finish (&x.b);
  conf_line_finish (&x.c);
  ring.run = flow_sipp_finish (ring.sipp, "alice (line a3)");
  ringing.run = flow_sipp_finish (ringing.sipp, "dave");
  flow_assert_cancelled (ringing.run);
  conf_assert_no_reinvite (&x.a, TRUE);
  conf_assert_no_reinvite (&x.b, FALSE);
  conf_assert_no_reinvite (&x.c, FALSE);
  conf_assert_byed (&x.a, stop_us);
  conf_assert_byed (&x.b, stop_us);
  conf_assert_byed (&x.c, stop_us);
}

/* Malformed and mistyped bridge and conference requests on one raw
 * connection: each answered in order with an error ("req" echoed), the
 * connection open for the next; the room is untouched and still mixes. */
static void
test_socket_errors (void)
{
  g_auto (ConfCase) x = { 0 };
  g_autofree char *before = NULL, *text = NULL;
  g_auto (GStrv) answers = NULL, report = NULL;
  /* Only as long as it takes to make the room: its media is judged after
   * the bad requests. */
  FlowProbe *probe = three_in_a_room (&x, "xfer-uas-talk.xml", "xfer-uas-talk.xml", NULL, 100);
  const char *bad[] = {
    "{\"cmd\":\"bridge\",\"req\":1}",
    "{\"cmd\":\"bridge\",\"calls\":\"c1\",\"req\":2}",
    "{\"cmd\":\"bridge\",\"calls\":[\"c1\"],\"req\":3}",
    "{\"cmd\":\"bridge\",\"calls\":[1,2],\"req\":4}",
    "{\"cmd\":\"conference-add\",\"room\":\"@ROOM\",\"req\":5}",
    "{\"cmd\":\"conference-add\",\"room\":\"@ROOM\",\"target\":\"\",\"req\":6}",
    "{\"cmd\":\"conference-add\",\"room\":7,\"target\":\"dave\",\"req\":7}",
    "{\"cmd\":\"conference-kick\",\"room\":\"@ROOM\",\"leg\":7,\"req\":8}",
    "{\"cmd\":\"conference-kick\",\"room\":\"@ROOM\",\"req\":9}",
    "{\"cmd\":\"conference-list\",\"rooms\":{\"req\":10",
  };
  GString *all = g_string_new (NULL);

  x.report = flow_probe_finish (probe);
  before = snapshot ();
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autofree char *line = g_strdup (bad[i]);
    GString *l = g_string_new (line);
    g_string_replace (l, "@ROOM", x.room, 0);
    g_string_append_printf (all, "%s\n", l->str);
    g_string_free (l, TRUE);
  }
  g_string_append (all, "{\"cmd\":\"conference-list\",\"req\":\"last\"}\n");
  text = g_string_free (all, FALSE);
  answers = conf_raw (text, G_N_ELEMENTS (bad) + 1);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autofree char *want = g_strdup_printf ("{\"ok\":false,\"req\":%u,\"error\":\"", i + 1);
    if (i + 1 == G_N_ELEMENTS (bad))   /* malformed JSON: no req to echo */
      g_assert_true (g_str_has_prefix (answers[i], "{\"ok\":false,\"error\":\"malformed JSON"));
    else
      g_assert_true (g_str_has_prefix (answers[i], want));
  }
  g_assert_true (g_str_has_prefix (answers[G_N_ELEMENTS (bad)],
                                   "{\"ok\":true,\"req\":\"last\",\"rooms\":["));
  g_assert_nonnull (strstr (answers[G_N_ELEMENTS (bad)], x.room));
  assert_unchanged (before);
  {
    FlowToneEndpoint eps[] = {
      conf_line_tone (&x.a, CONF_SSRC (1), NULL, 0, 100),
      conf_line_tone (&x.b, CONF_SSRC (3), NULL, 0, 100),
      conf_line_tone (&x.c, CONF_SSRC (4), NULL, 0, 100),
    };
    gint64 start, end;
    report = flow_probe_trace_tones (eps, G_N_ELEMENTS (eps));
    start = flow_probe_first_sent (report, x.a.sip.rtp_port) + CONF_SETTLE_US;
    end = conf_line_last_sent (report, &x.a, 100);
    conf_line_hears (report, &x.a, start, end, CONF_MIN_FRAMES, "BC");
    conf_line_hears (report, &x.b, start, end, CONF_MIN_FRAMES, "AC");
    conf_line_hears (report, &x.c, start, end, CONF_MIN_FRAMES, "AB");
  }
  flow_daemon_stop (x.d);
  conf_line_finish (&x.a);
  conf_line_finish (&x.b);
  conf_line_finish (&x.c);
}

void
conf_life_add_tests (void)
{
  flow_add_test ("/conference/life/leave-collapse-end", test_leave);
  flow_add_test ("/conference/life/add-kick", test_add_kick);
  flow_add_test ("/conference/errors/tandemctl", test_ctl_errors);
  flow_add_test ("/conference/errors/socket", test_socket_errors);
}
