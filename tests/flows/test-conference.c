/* Rooms (issue 11): three-way calling from a phone (RFC 4579 factory URI
 * and REFER to the focus), operator bridging with tandemctl, the life of
 * a room (leave, kick, add, collapse, end), and tandemctl's and the
 * socket's errors. Every party is a SIPp of its own, registered like a
 * phone; each sends a tone of its own (rtp-probe, PCMU) and what each
 * really receives is judged frame by frame (Goertzel, conf-audio.h).
 *
 * The wire behaviour these cases fix (written before the feature, from
 * the issue and the shared design; README "Control socket and
 * tandemctl" for the protocol, conf-ctl.h):
 * - `bridge C1 C2` of two answered calls makes one room of all their
 *   parties; a user who is a party of both (alice, talking to bob and to
 *   carol) joins once, with her leg of C1; her leg of C2 gets a BYE.
 * - Each party hears the sum of the others, never itself: with k others,
 *   every frame carries every one of their tones (after the join has had
 *   CONF_SETTLE_US to show) and none of its own.
 * - A leg moved into a room keeps its one outgoing RTP context: the party
 *   goes on receiving one SSRC from its relay port, sequence numbers
 *   going on by one, timestamps forward, no stall; no re-INVITE or UPDATE
 *   reaches anyone (PCMU everywhere: no codec must change).
 * - INVITE sip:conference@pbx.test is answered by tandem, the focus: 200
 *   with ;isfocus in its Contact. A REFER in that dialog whose Refer-To
 *   carries ?Replaces= naming the referrer's other dialog (Call-ID;
 *   to-tag = tandem's tag; from-tag = the referrer's) brings that
 *   dialog's other party in without ringing it (no new INVITE) and ends
 *   the replaced dialog (BYE); a REFER without Replaces dials the target
 *   in. Both: 202, NOTIFYs as for transfer (Event: refer, sipfrag: 100
 *   Trying active ... 200 OK terminated).
 * - A party leaving a room of three leaves a plain call of two (gone from
 *   `conference list`, a call in `calls` without "room"); the last party
 *   of a call gets BYE. `conference kick` BYEs the leg; `conference add`
 *   dials a user in.
 * - Refused commands exit 1 with tandem's message and change nothing.
 *
 * Helpers: conf-ctl.h (tandem, tandemctl), conf-line.h (SIPp lines),
 * conf-audio.h (the media judgement), flow-calls.h. */
#include <string.h>

#include "conf-ctl.h"
#include "conf-line.h"

/* Before a change, the calls' audio runs this long (so that there is a
 * stream to keep across it), and after one, the room's (to be judged):
 * the windows judged are measured from the events, not assumed. */
#define PHASE_MS 1500
/* Frames a judged window must hold at least (20 ms each). */
#define MIN_FRAMES 40
#define MIN_PRE_FRAMES 25
#define SSRC(n) (0x5000u + (n))

/* One case's tandem, parties and what tandemctl said. */
typedef struct {
  FlowDaemon *d;
  JsonParser *parser;
  ConfLine a, a2, b, c, dv, f;  /* alice's two lines, bob, carol, dave, alice's line to the focus */
  char *room;
  gint64 bridge_sent_us, bridged_us;
  char **report;
} Case;

static void
case_clear (Case *x)
{
  g_clear_pointer (&x->d, flow_daemon_free);
  g_clear_object (&x->parser);
  conf_line_clear (&x->a);
  conf_line_clear (&x->a2);
  conf_line_clear (&x->b);
  conf_line_clear (&x->c);
  conf_line_clear (&x->dv);
  conf_line_clear (&x->f);
  g_clear_pointer (&x->room, g_free);
  g_clear_pointer (&x->report, g_strfreev);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Case, case_clear)

static void
case_start (Case *x)
{
  x->d = conf_start_tandem ();
  x->parser = json_parser_new ();
}

/* The ids of the call between a and b (and its leg of `user`, if leg). */
static char *
call_id (JsonArray *calls, const char *a, const char *b, const char *user, char **leg)
{
  JsonObject *call = conf_call_between (calls, a, b);

  if (!call)
    g_printerr ("flow: `calls` shows no call between %s and %s\n", a, b);
  g_assert_nonnull (call);
  if (leg)
    *leg = g_strdup (conf_str (conf_party_of (conf_parties (call), user), "leg"));
  return g_strdup (conf_str (call, "id"));
}

/* `tandemctl --json bridge c1 c2`: a room id, and the room's users. */
static void
bridge (Case *x, const char *c1, const char *c2, const char *users)
{
  JsonObject *r;
  g_autofree char *got = NULL;

  x->bridge_sent_us = g_get_real_time ();
  r = conf_ctl_ok (x->parser, "bridge", c1, c2);
  x->bridged_us = g_get_real_time ();
  x->room = g_strdup (conf_str (r, "room"));
  g_assert_nonnull (x->room);
  g_assert_true (g_regex_match_simple ("^r[0-9]+$", x->room, 0, 0));
  got = conf_users (conf_parties (r));
  g_assert_cmpstr (got, ==, users);
}

/* `calls` agrees with the room: the calls holding its legs say
 * "room": ROOM, between them they hold exactly its legs, and the leg
 * `gone` (hung up by the bridge; NULL: none) is nowhere. */
static void
assert_calls_show_room (const char *room, const char *gone)
{
  g_autoptr (JsonParser) rp = json_parser_new (), cp = json_parser_new ();
  JsonArray *rooms = conf_rooms (rp), *calls = conf_calls (cp), *members;
  g_autoptr (GHashTable) legs = g_hash_table_new (g_str_hash, g_str_equal);
  guint seen = 0;

  g_assert_cmpuint (json_array_get_length (rooms), ==, 1);
  members = conf_parties (json_array_get_object_element (rooms, 0));
  for (guint i = 0; i < json_array_get_length (members); i++)
    g_hash_table_add (legs, (gpointer) conf_str (json_array_get_object_element (members, i),
                                                 "leg"));
  for (guint i = 0; i < json_array_get_length (calls); i++) {
    JsonObject *call = json_array_get_object_element (calls, i);
    JsonArray *parties = conf_parties (call);
    for (guint j = 0; j < json_array_get_length (parties); j++) {
      const char *leg = conf_str (json_array_get_object_element (parties, j), "leg");
      g_assert_cmpstr (leg, !=, gone);
      if (!g_hash_table_contains (legs, leg))
        continue;
      seen++;
      if (g_strcmp0 (conf_str (call, "room"), room) != 0)
        g_printerr ("flow: call %s holds leg %s of room %s but says \"room\": %s\n",
                    conf_str (call, "id"), leg, room, conf_str (call, "room"));
      g_assert_cmpstr (conf_str (call, "room"), ==, room);
    }
  }
  g_assert_cmpuint (seen, ==, g_hash_table_size (legs));
}

/* Letters of the voices not in `letters` ("ABCD" less them). */
static char *
others (const char *letters)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < CONF_N_VOICES; i++)
    if (!strchr (letters, conf_voices[i].letter))
      g_string_append_c (s, conf_voices[i].letter);
  return g_string_free (s, FALSE);
}

/* What line l received: one stream until until_us; in [from, to) it
 * hears `hear` and no other voice; never its own. */
static void
assert_hears (char **report, const ConfLine *l, gint64 from, gint64 to, guint min_frames,
              const char *hear)
{
  g_autoptr (GArray) pkts = flow_probe_packets (report, l->sip.rtp_port);
  g_autofree char *who = g_strdup_printf ("%s (line %s)", l->user, l->side);
  g_autofree char *never = others (hear);

  conf_assert_hears (who, pkts, from, to, min_frames, conf_voices, CONF_N_VOICES, hear, never);
}

static void
assert_stream (char **report, const ConfLine *l, gint64 until_us)
{
  g_autoptr (GArray) pkts = flow_probe_packets (report, l->sip.rtp_port);
  g_autofree char *who = g_strdup_printf ("%s (line %s)", l->user, l->side);

  conf_note_stream (who, pkts, conf_voices, CONF_N_VOICES);
  conf_assert_one_stream (who, pkts, l->relay, until_us);
  conf_assert_never_hears (who, pkts, conf_voices, CONF_N_VOICES, conf_line_letter (l));
}

/* ---- operator-made rooms ------------------------------------------------------------ */

#define OP_PACKETS 250   /* 5 s of each voice */

/* alice calls bob and carol (two lines), `bridge` of the two calls: one
 * room of three; alice's line to carol gets a BYE; nobody a re-INVITE;
 * each hears the other two and never itself, on one stream throughout. */
static void
test_operator_three (void)
{
  g_auto (Case) x = { 0 };
  g_autofree char *c1 = NULL, *c2 = NULL, *leg1 = NULL, *leg2 = NULL;
  JsonObject *room;
  FlowProbe *probe;
  gint64 stop_us, start_us, end_us;

  case_start (&x);
  conf_line_answer (x.d, &x.b, "bob", "xfer-uas-talk.xml", "b");
  conf_line_answer (x.d, &x.c, "carol", "xfer-uas-talk.xml", "c");
  conf_line_call (x.d, &x.a, "alice", "a", &x.b);
  conf_line_call (x.d, &x.a2, "alice", "a2", &x.c);
  {
    JsonArray *calls = conf_wait_calls_talking (x.parser, 2);
    c1 = call_id (calls, "alice", "bob", "alice", &leg1);
    c2 = call_id (calls, "alice", "carol", "alice", &leg2);
  }
  {
    FlowToneEndpoint eps[] = {
      conf_line_tone (&x.a, SSRC (1), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.a2, SSRC (2), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.b, SSRC (3), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.c, SSRC (4), NULL, 0, OP_PACKETS),
    };
    probe = flow_probe_start_tones (eps, G_N_ELEMENTS (eps));
  }
  g_usleep (PHASE_MS * 1000);
  bridge (&x, c1, c2, "alice bob carol");
  conf_line_finish (&x.a2);
  conf_assert_byed (&x.a2, x.bridge_sent_us);
  room = conf_wait_room (x.parser, x.room, "alice bob carol");
  /* alice joined with her leg of the first call. */
  g_assert_cmpstr (conf_str (conf_party_of (conf_parties (room), "alice"), "leg"), ==, leg1);
  g_assert_true (g_regex_match_simple ("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$",
                                       conf_str (room, "created_at"), 0, 0));
  assert_calls_show_room (x.room, leg2);
  x.report = flow_probe_finish (probe);

  stop_us = g_get_real_time ();
  flow_daemon_stop (x.d);
  conf_line_finish (&x.a);
  conf_line_finish (&x.b);
  conf_line_finish (&x.c);
  conf_assert_no_reinvite (&x.a, TRUE);
  conf_assert_no_reinvite (&x.a2, TRUE);
  conf_assert_no_reinvite (&x.b, FALSE);
  conf_assert_no_reinvite (&x.c, FALSE);
  conf_assert_byed (&x.a, stop_us);
  conf_assert_byed (&x.b, stop_us);
  conf_assert_byed (&x.c, stop_us);

  start_us = flow_probe_first_sent (x.report, x.c.sip.rtp_port) + CONF_SETTLE_US;
  end_us = conf_line_last_sent (x.report, &x.c, OP_PACKETS);
  for (const ConfLine *l = &x.a; l; l = l == &x.a ? &x.b : l == &x.b ? &x.c : NULL)
    assert_stream (x.report, l, end_us);
  /* Before: two calls. After: the room. */
  assert_hears (x.report, &x.a, start_us, x.bridge_sent_us, MIN_PRE_FRAMES, "B");
  assert_hears (x.report, &x.a2, start_us, x.bridge_sent_us, MIN_PRE_FRAMES, "C");
  assert_hears (x.report, &x.b, start_us, x.bridge_sent_us, MIN_PRE_FRAMES, "A");
  assert_hears (x.report, &x.c, start_us, x.bridge_sent_us, MIN_PRE_FRAMES, "A");
  assert_hears (x.report, &x.a, x.bridged_us + CONF_SETTLE_US, end_us, MIN_FRAMES, "BC");
  assert_hears (x.report, &x.b, x.bridged_us + CONF_SETTLE_US, end_us, MIN_FRAMES, "AC");
  assert_hears (x.report, &x.c, x.bridged_us + CONF_SETTLE_US, end_us, MIN_FRAMES, "AB");
}

/* alice talks to bob, carol to dave; `bridge`: one room of four, nobody
 * hung up; each hears the other three. */
static void
test_operator_four (void)
{
  g_auto (Case) x = { 0 };
  g_autofree char *c1 = NULL, *c2 = NULL;
  FlowProbe *probe;
  gint64 stop_us, start_us, end_us;
  const ConfLine *lines[] = { &x.a, &x.b, &x.c, &x.dv };

  case_start (&x);
  conf_line_answer (x.d, &x.b, "bob", "xfer-uas-talk.xml", "b");
  conf_line_answer (x.d, &x.dv, "dave", "xfer-uas-talk.xml", "d");
  conf_line_call (x.d, &x.a, "alice", "a", &x.b);
  conf_line_call (x.d, &x.c, "carol", "c", &x.dv);
  {
    JsonArray *calls = conf_wait_calls_talking (x.parser, 2);
    c1 = call_id (calls, "alice", "bob", NULL, NULL);
    c2 = call_id (calls, "carol", "dave", NULL, NULL);
  }
  {
    FlowToneEndpoint eps[] = {
      conf_line_tone (&x.a, SSRC (1), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.b, SSRC (2), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.c, SSRC (3), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.dv, SSRC (4), NULL, 0, OP_PACKETS),
    };
    probe = flow_probe_start_tones (eps, G_N_ELEMENTS (eps));
  }
  g_usleep (PHASE_MS * 1000);
  bridge (&x, c1, c2, "alice bob carol dave");
  conf_wait_room (x.parser, x.room, "alice bob carol dave");
  assert_calls_show_room (x.room, NULL);
  x.report = flow_probe_finish (probe);

  stop_us = g_get_real_time ();
  flow_daemon_stop (x.d);
  for (guint i = 0; i < G_N_ELEMENTS (lines); i++) {
    ConfLine *l = (ConfLine *) lines[i];
    conf_line_finish (l);
    conf_assert_no_reinvite (l, l == &x.a || l == &x.c);
    conf_assert_byed (l, stop_us);
  }
  start_us = flow_probe_first_sent (x.report, x.dv.sip.rtp_port) + CONF_SETTLE_US;
  end_us = conf_line_last_sent (x.report, &x.dv, OP_PACKETS);
  for (guint i = 0; i < G_N_ELEMENTS (lines); i++)
    assert_stream (x.report, lines[i], end_us);
  assert_hears (x.report, &x.a, start_us, x.bridge_sent_us, MIN_PRE_FRAMES, "B");
  assert_hears (x.report, &x.b, start_us, x.bridge_sent_us, MIN_PRE_FRAMES, "A");
  assert_hears (x.report, &x.c, start_us, x.bridge_sent_us, MIN_PRE_FRAMES, "D");
  assert_hears (x.report, &x.dv, start_us, x.bridge_sent_us, MIN_PRE_FRAMES, "C");
  assert_hears (x.report, &x.a, x.bridged_us + CONF_SETTLE_US, end_us, MIN_FRAMES, "BCD");
  assert_hears (x.report, &x.b, x.bridged_us + CONF_SETTLE_US, end_us, MIN_FRAMES, "ACD");
  assert_hears (x.report, &x.c, x.bridged_us + CONF_SETTLE_US, end_us, MIN_FRAMES, "ABD");
  assert_hears (x.report, &x.dv, x.bridged_us + CONF_SETTLE_US, end_us, MIN_FRAMES, "ABC");
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/conference/operator/three", test_operator_three);
  flow_add_test ("/conference/operator/four", test_operator_four);
  return g_test_run ();
}
