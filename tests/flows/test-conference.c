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

#include "conf-case.h"

/* ---- operator-made rooms ------------------------------------------------------------ */

#define OP_PACKETS 250   /* 5 s of each voice */

/* alice calls bob and carol (two lines), `bridge` of the two calls: one
 * room of three; alice's line to carol gets a BYE; nobody a re-INVITE;
 * each hears the other two and never itself, on one stream throughout. */
static void
test_operator_three (void)
{
  g_auto (ConfCase) x = { 0 };
  g_autofree char *c1 = NULL, *c2 = NULL, *leg1 = NULL, *leg2 = NULL;
  JsonObject *room;
  FlowProbe *probe;
  gint64 stop_us, start_us, end_us;

  conf_case_start (&x);
  conf_line_answer (x.d, &x.b, "bob", "xfer-uas-talk.xml", "b");
  conf_line_answer (x.d, &x.c, "carol", "xfer-uas-talk.xml", "c");
  conf_line_call (x.d, &x.a, "alice", "a", &x.b);
  conf_line_call (x.d, &x.a2, "alice", "a2", &x.c);
  {
    JsonArray *calls = conf_wait_calls_talking (x.parser, 2);
    c1 = conf_call_id (calls, "alice", "bob", "alice", &leg1);
    c2 = conf_call_id (calls, "alice", "carol", "alice", &leg2);
  }
  {
    FlowToneEndpoint eps[] = {
      conf_line_tone (&x.a, CONF_SSRC (1), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.a2, CONF_SSRC (2), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.b, CONF_SSRC (3), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.c, CONF_SSRC (4), NULL, 0, OP_PACKETS),
    };
    probe = flow_probe_start_tones (eps, G_N_ELEMENTS (eps));
  }
  g_usleep (CONF_PHASE_MS * 1000);
  conf_bridge (&x, c1, c2, "alice bob carol");
  conf_line_finish (&x.a2);
  conf_assert_byed (&x.a2, x.bridge_sent_us);
  room = conf_wait_room (x.parser, x.room, "alice bob carol");
  /* alice joined with her leg of the first call. */
  g_assert_cmpstr (conf_str (conf_party_of (conf_parties (room), "alice"), "leg"), ==, leg1);
  g_assert_true (g_regex_match_simple ("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$",
                                       conf_str (room, "created_at"), 0, 0));
  conf_assert_calls_show_room (x.room, leg2);
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
  conf_line_stream (x.report, &x.a, end_us);
  conf_line_stream (x.report, &x.b, end_us);
  conf_line_stream (x.report, &x.c, end_us);
  /* Before: two calls. After: the room. */
  conf_line_hears (x.report, &x.a, start_us, x.bridge_sent_us, CONF_MIN_PRE_FRAMES, "B");
  conf_line_hears (x.report, &x.a2, start_us, x.bridge_sent_us, CONF_MIN_PRE_FRAMES, "C");
  conf_line_hears (x.report, &x.b, start_us, x.bridge_sent_us, CONF_MIN_PRE_FRAMES, "A");
  conf_line_hears (x.report, &x.c, start_us, x.bridge_sent_us, CONF_MIN_PRE_FRAMES, "A");
  conf_line_hears (x.report, &x.a, x.bridged_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "BC");
  conf_line_hears (x.report, &x.b, x.bridged_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "AC");
  conf_line_hears (x.report, &x.c, x.bridged_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "AB");
}

/* alice talks to bob, carol to dave; `bridge` (the table form: it prints
 * the room's id): one room of four, nobody hung up; each hears the other
 * three. */
static void
test_operator_four (void)
{
  g_auto (ConfCase) x = { 0 };
  g_autofree char *c1 = NULL, *c2 = NULL;
  FlowProbe *probe;
  gint64 stop_us, start_us, end_us;
  ConfLine *lines[] = { &x.a, &x.b, &x.c, &x.dv };

  conf_case_start (&x);
  conf_line_answer (x.d, &x.b, "bob", "xfer-uas-talk.xml", "b");
  conf_line_answer (x.d, &x.dv, "dave", "xfer-uas-talk.xml", "d");
  conf_line_call (x.d, &x.a, "alice", "a", &x.b);
  conf_line_call (x.d, &x.c, "carol", "c", &x.dv);
  {
    JsonArray *calls = conf_wait_calls_talking (x.parser, 2);
    c1 = conf_call_id (calls, "alice", "bob", NULL, NULL);
    c2 = conf_call_id (calls, "carol", "dave", NULL, NULL);
  }
  {
    FlowToneEndpoint eps[] = {
      conf_line_tone (&x.a, CONF_SSRC (1), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.b, CONF_SSRC (2), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.c, CONF_SSRC (3), NULL, 0, OP_PACKETS),
      conf_line_tone (&x.dv, CONF_SSRC (4), NULL, 0, OP_PACKETS),
    };
    probe = flow_probe_start_tones (eps, G_N_ELEMENTS (eps));
  }
  g_usleep (CONF_PHASE_MS * 1000);
  /* Without --json, tandemctl prints the room's id alone. */
  {
    g_autofree char *out = NULL;
    x.bridge_sent_us = g_get_real_time ();
    g_assert_cmpint (conf_ctl (&out, NULL, "bridge", c1, c2), ==, 0);
    x.bridged_us = g_get_real_time ();
    x.room = g_strdup (g_strstrip (out));
    g_assert_true (g_regex_match_simple ("^r[0-9]+$", x.room, 0, 0));
  }
  conf_wait_room (x.parser, x.room, "alice bob carol dave");
  conf_assert_calls_show_room (x.room, NULL);
  x.report = flow_probe_finish (probe);

  stop_us = g_get_real_time ();
  flow_daemon_stop (x.d);
  for (guint i = 0; i < G_N_ELEMENTS (lines); i++) {
    conf_line_finish (lines[i]);
    conf_assert_no_reinvite (lines[i], lines[i] == &x.a || lines[i] == &x.c);
    conf_assert_byed (lines[i], stop_us);
  }
  start_us = flow_probe_first_sent (x.report, x.dv.sip.rtp_port) + CONF_SETTLE_US;
  end_us = conf_line_last_sent (x.report, &x.dv, OP_PACKETS);
  for (guint i = 0; i < G_N_ELEMENTS (lines); i++)
    conf_line_stream (x.report, lines[i], end_us);
  conf_line_hears (x.report, &x.a, start_us, x.bridge_sent_us, CONF_MIN_PRE_FRAMES, "B");
  conf_line_hears (x.report, &x.b, start_us, x.bridge_sent_us, CONF_MIN_PRE_FRAMES, "A");
  conf_line_hears (x.report, &x.c, start_us, x.bridge_sent_us, CONF_MIN_PRE_FRAMES, "D");
  conf_line_hears (x.report, &x.dv, start_us, x.bridge_sent_us, CONF_MIN_PRE_FRAMES, "C");
  conf_line_hears (x.report, &x.a, x.bridged_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "BCD");
  conf_line_hears (x.report, &x.b, x.bridged_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "ACD");
  conf_line_hears (x.report, &x.c, x.bridged_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "ABD");
  conf_line_hears (x.report, &x.dv, x.bridged_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "ABC");
}

/* ---- a phone-made room (RFC 4579) ----------------------------------------------------- */

#define PHONE_PACKETS 400      /* 8 s of each voice */
#define FACTORY_PAUSE_MS "1500"  /* alice's line to the focus waits this long before its REFER */

/* A header's value up to its first ';', trimmed and lowercased; with
 * param, the value of that parameter (NULL if none). */
static char *
header_token (const char *msg, const char *name, const char *param)
{
  g_autofree char *value = flow_require_header (msg, name);
  g_auto (GStrv) parts = g_strsplit (value, ";", -1);

  if (!param)
    return g_ascii_strdown (g_strstrip (parts[0]), -1);
  for (guint i = 1; parts[i]; i++) {
    g_auto (GStrv) kv = g_strsplit (g_strstrip (parts[i]), "=", 2);
    if (kv[1] && g_ascii_strcasecmp (g_strstrip (kv[0]), param) == 0)
      return g_strdup (g_strstrip (kv[1]));
  }
  return NULL;
}

/* The REFER #nth of alice's line to the focus got 202, and its NOTIFYs
 * (those that came before the next REFER left) are in that dialog, Event:
 * refer (with id = the REFER's CSeq when given, and given for a second
 * REFER in the dialog: RFC 3515 §2.4.6), message/sipfrag;version=2.0, the
 * first "SIP/2.0 100 Trying" active, the last "SIP/2.0 200 OK" terminated,
 * each answered 200. */
static void
assert_refer_notified (const FlowRun *f, guint nth)
{
  const char *refer = conf_require_request (f->sent, "REFER ", nth);
  const char *next = flow_find_msg (f->sent, "REFER ", nth + 1);
  gint64 from = flow_run_msg_time (f, refer), to = next ? flow_run_msg_time (f, next) : G_MAXINT64;
  g_autoptr (GPtrArray) all = conf_requests (f->received, "NOTIFY ");
  g_autoptr (GPtrArray) notifies = g_ptr_array_new ();
  g_autofree char *call_id = flow_require_header (refer, "Call-ID");
  g_autofree char *ours = flow_msg_tag (refer, "From"), *theirs = flow_msg_tag (refer, "To");
  g_autofree char *cseq = g_strdup_printf ("%" G_GUINT64_FORMAT, flow_msg_cseq (refer));
  gboolean accepted = FALSE;

  for (guint i = 0; i < f->received->len; i++) {
    const char *m = g_ptr_array_index (f->received, i);
    g_autofree char *method = flow_msg_status (m) ? flow_msg_cseq_method (m) : NULL;
    if (method && strcmp (method, "REFER") == 0 && flow_msg_cseq (m) == flow_msg_cseq (refer) &&
        flow_msg_status (m) >= 200)
      accepted = flow_msg_status (m) == 202;
  }
  g_assert_true (accepted);
  for (guint i = 0; i < all->len; i++) {
    gint64 t = flow_run_msg_time (f, g_ptr_array_index (all, i));
    if (t >= from - 1000 && t < to)
      g_ptr_array_add (notifies, g_ptr_array_index (all, i));
  }
  flow_note ("REFER #%u: %u NOTIFYs", nth, notifies->len);
  g_assert_cmpuint (notifies->len, >=, 2);
  for (guint i = 0; i < notifies->len; i++) {
    const char *n = g_ptr_array_index (notifies, i);
    gboolean last = i + 1 == notifies->len;
    g_autofree char *event = header_token (n, "Event", NULL), *id = header_token (n, "Event", "id");
    g_autofree char *state = header_token (n, "Subscription-State", NULL);
    g_autofree char *type = header_token (n, "Content-Type", NULL);
    g_autofree char *version = header_token (n, "Content-Type", "version");
    g_autofree char *body = flow_msg_body (n), *n_call = flow_require_header (n, "Call-ID");
    g_autofree char *n_from = flow_msg_tag (n, "From"), *n_to = flow_msg_tag (n, "To");
    g_auto (GStrv) lines = g_strsplit (body, "\n", 2);

    flow_note ("  NOTIFY %u: Event %s id %s, %s, \"%s\"", i, event, id ? id : "-", state,
               g_strstrip (lines[0]));
    g_assert_cmpstr (n_call, ==, call_id);
    g_assert_cmpstr (n_to, ==, ours);
    g_assert_cmpstr (n_from, ==, theirs);
    g_assert_cmpstr (event, ==, "refer");
    if (nth > 0 && !id)
      g_printerr ("flow: a NOTIFY for the second REFER in the dialog has no Event id "
                  "(RFC 3515 §2.4.6)\n");
    if (nth > 0)
      g_assert_nonnull (id);
    if (id)
      g_assert_cmpstr (id, ==, cseq);
    g_assert_cmpstr (type, ==, "message/sipfrag");
    g_assert_cmpstr (version, ==, "2.0");
    g_assert_cmpstr (state, ==, last ? "terminated" : "active");
    if (i == 0)
      g_assert_cmpstr (lines[0], ==, "SIP/2.0 100 Trying");
    if (last)
      g_assert_cmpstr (lines[0], ==, "SIP/2.0 200 OK");
  }
  g_assert_cmpuint (flow_count_responses (f->sent, 200, "NOTIFY"), >=, notifies->len);
}

/* alice talks to bob, presses "conference": her phone INVITEs the factory
 * (tandem answers as the focus), REFERs bob in with Replaces naming her
 * call with him (bob is not rung again, that call of hers ends), then
 * carol without Replaces (carol rings, answers, joins). Each of the
 * three hears the other two, never itself. */
static void
test_phone (void)
{
  g_auto (ConfCase) x = { 0 };
  g_auto (GStrv) early = NULL;
  g_autofree char *e_call = NULL, *e_ours = NULL, *e_theirs = NULL, *refer1 = NULL;
  const char *keys[] = { "refer1", NULL, "refer2", "Refer-To: <sip:carol@pbx.test>", NULL };
  g_auto (GStrv) contacts = NULL;
  FlowProbe *probe;
  JsonObject *room;
  const char *ok, *a_ok;
  gint64 refer1_us, joined_us, stop_us, end_us;

  conf_case_start (&x);
  conf_line_answer (x.d, &x.b, "bob", "xfer-uas-talk.xml", "b");
  conf_line_answer (x.d, &x.c, "carol", "xfer-uas-talk.xml", "c");
  conf_line_call (x.d, &x.a, "alice", "a", &x.b);
  /* alice's phone writes the Replaces: her call with bob, tandem's tag as
   * to-tag, her own as from-tag (RFC 3891 §3, from tandem's side). Her
   * early dialog is that call's (checked below against tandem's 200). */
  early = flow_wait_lines_file ("a-early.txt", 3);
  e_call = g_uri_escape_string (early[0], NULL, FALSE);
  e_ours = g_uri_escape_string (early[1], NULL, FALSE);
  e_theirs = g_uri_escape_string (early[2], NULL, FALSE);
  refer1 = g_strdup_printf ("Refer-To: <sip:bob@pbx.test?Replaces=%s%%3Bto-tag%%3D%s"
                            "%%3Bfrom-tag%%3D%s>", e_call, e_theirs, e_ours);
  keys[1] = refer1;
  flow_note ("alice's first REFER: %s", refer1);
  x.f.user = "alice";
  x.f.side = "f";
  x.f.sip = flow_party ("alice", "conf-uac-factory.xml", "f");
  x.f.sip.pause_ms = FACTORY_PAUSE_MS;
  x.f.sip.timeout = "40s";
  x.f.sip.keys = keys;
  {
    FlowToneEndpoint eps[] = {
      conf_line_tone (&x.a, CONF_SSRC (1), NULL, 0, PHONE_PACKETS),
      conf_line_tone (&x.b, CONF_SSRC (2), NULL, 0, PHONE_PACKETS),
      conf_line_tone (&x.f, CONF_SSRC (3), "f.port", 0, PHONE_PACKETS),
      conf_line_tone (&x.c, CONF_SSRC (4), "c.port", 0, PHONE_PACKETS),
    };
    probe = flow_probe_start_tones (eps, G_N_ELEMENTS (eps));
  }
  x.f.sipp = flow_caller_start (x.d, &x.f.sip, "conference");
  x.f.relay = flow_wait_port_file ("f");
  if (flow_wait_port_file ("f-refer1") != 1)
    g_printerr ("flow: the REFER with Replaces to the focus was refused\n");
  g_assert_cmpuint (flow_wait_port_file ("f-refer1"), ==, 1);
  conf_line_finish (&x.a);   /* her replaced call: tandem's BYE ends it */
  if (flow_wait_port_file ("f-refer2") != 1)
    g_printerr ("flow: the REFER without Replaces to the focus was refused or failed\n");
  g_assert_cmpuint (flow_wait_port_file ("f-refer2"), ==, 1);
  x.c.relay = flow_wait_port_file ("c");
  room = conf_wait_room (x.parser, NULL, "alice bob carol");
  x.room = g_strdup (conf_str (room, "id"));
  conf_assert_calls_show_room (x.room, NULL);
  x.report = flow_probe_finish (probe);

  stop_us = g_get_real_time ();
  flow_daemon_stop (x.d);
  conf_line_finish (&x.b);
  conf_line_finish (&x.c);
  conf_line_finish (&x.f);

  /* The focus: tandem answered the factory URI, ;isfocus in its Contact. */
  ok = flow_require_response (x.f.run->received, 200, "INVITE", 0);
  contacts = flow_msg_contacts (ok);
  g_assert_nonnull (contacts[0]);
  {
    g_autofree char *lower = g_ascii_strdown (contacts[0], -1);
    if (!strstr (lower, ";isfocus"))
      g_printerr ("flow: the focus's Contact has no ;isfocus: %s\n", contacts[0]);
    g_assert_nonnull (strstr (lower, ";isfocus"));
  }
  assert_refer_notified (x.f.run, 0);
  assert_refer_notified (x.f.run, 1);
  /* The Replaces named alice's call with bob as tandem's 200 set it up. */
  a_ok = flow_require_response (x.a.run->received, 200, "INVITE", 0);
  {
    g_autofree char *tag = flow_msg_tag (a_ok, "To");
    g_assert_cmpstr (tag, ==, early[2]);
  }
  /* That call ended by tandem's BYE, after the REFER; bob was not rung
   * again (his one INVITE); carol was, by tandem, on a relay port. */
  refer1_us = flow_run_msg_time (x.f.run, conf_require_request (x.f.run->sent, "REFER ", 0));
  conf_assert_byed (&x.a, refer1_us);
  conf_assert_no_reinvite (&x.a, TRUE);
  conf_assert_no_reinvite (&x.b, FALSE);
  conf_assert_no_reinvite (&x.c, FALSE);
  conf_assert_no_reinvite (&x.f, TRUE);
  flow_assert_relay_sdp (flow_require_msg (x.c.run->received, "INVITE ", 0), x.c.sip.rtp_port,
                         FALSE, CONF_MEDIA_MIN, CONF_MEDIA_MAX);
  conf_assert_byed (&x.b, stop_us);
  conf_assert_byed (&x.c, stop_us);
  conf_assert_byed (&x.f, stop_us);

  /* The media, from carol's answer on (bob's also before it). */
  joined_us = flow_run_msg_time (x.c.run, flow_require_response (x.c.run->sent, 200, "INVITE", 0));
  end_us = MIN (conf_line_last_sent (x.report, &x.b, PHONE_PACKETS),
                MIN (conf_line_last_sent (x.report, &x.f, PHONE_PACKETS),
                     conf_line_last_sent (x.report, &x.c, PHONE_PACKETS)));
  conf_line_stream (x.report, &x.b, end_us);
  conf_line_stream (x.report, &x.c, end_us);
  conf_line_stream (x.report, &x.f, end_us);
  conf_line_hears (x.report, &x.b, flow_probe_first_sent (x.report, x.b.sip.rtp_port) +
                   CONF_SETTLE_US, refer1_us, CONF_MIN_PRE_FRAMES, "A");
  conf_line_hears (x.report, &x.f, joined_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "BC");
  conf_line_hears (x.report, &x.b, joined_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "AC");
  conf_line_hears (x.report, &x.c, joined_us + CONF_SETTLE_US, end_us, CONF_MIN_FRAMES, "AB");
}

/* A factory room whose first invitee is busy: the REFER's NOTIFYs end
 * with 486, and alice, alone in her room, is not hung up (it never had a
 * second party to lose); she invites carol, who joins. */
static void
test_phone_busy (void)
{
  g_auto (ConfCase) x = { 0 };
  const char *keys[] = { "refer1", "Refer-To: <sip:dave@pbx.test>",
                         "refer2", "Refer-To: <sip:carol@pbx.test>", NULL };
  g_autoptr (GPtrArray) notifies = NULL;
  gboolean busy = FALSE;

  conf_case_start (&x);
  conf_line_answer (x.d, &x.dv, "dave", "call-uas-busy.xml", "d");
  conf_line_answer (x.d, &x.c, "carol", "xfer-uas-talk.xml", "c");
  x.f.user = "alice";
  x.f.side = "f";
  x.f.sip = flow_party ("alice", "conf-uac-factory.xml", "f");
  x.f.sip.pause_ms = FACTORY_PAUSE_MS;
  x.f.sip.timeout = "40s";
  x.f.sip.keys = keys;
  x.f.sipp = flow_caller_start (x.d, &x.f.sip, "conference");
  x.f.relay = flow_wait_port_file ("f");
  g_assert_cmpuint (flow_wait_port_file ("f-refer1"), ==, 1);
  if (flow_wait_port_file ("f-refer2") != 1)
    g_printerr ("flow: alice's second REFER did not complete: was she hung up?\n");
  g_assert_cmpuint (flow_wait_port_file ("f-refer2"), ==, 1);
  x.c.relay = flow_wait_port_file ("c");
  conf_wait_room (x.parser, NULL, "alice carol");
  flow_daemon_stop (x.d);
  conf_line_finish (&x.dv);
  conf_line_finish (&x.c);
  conf_line_finish (&x.f);
  notifies = conf_requests (x.f.run->received, "NOTIFY ");
  for (guint i = 0; i < notifies->len; i++)
    busy |= strstr (g_ptr_array_index (notifies, i), "SIP/2.0 486") != NULL;
  g_assert_true (busy);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/conference/operator/three", test_operator_three);
  flow_add_test ("/conference/operator/four", test_operator_four);
  flow_add_test ("/conference/phone/factory-refer", test_phone);
  flow_add_test ("/conference/phone/factory-busy", test_phone_busy);
  conf_life_add_tests ();
  return g_test_run ();
}
