/* Call flows: alice calls bob through a running tandem, both ends played by
 * SIPp (call-uac*.xml for alice, call-uas*.xml for bob), media by rtp-probe.
 *
 * SIPp asserts the order and status codes of the messages; the checks here
 * read what each side actually received (SIPp's message logs): that the two
 * legs are separate dialogs, that every SDP points at tandem's relay, that
 * CSeq numbers follow RFC 3261, that RTP crosses the relay both ways and
 * strangers' packets do not, and the CDR each call leaves in the store.
 * Each case starts its own daemon (see flow-harness.h); the parties, SDP,
 * probe and CDR helpers are flow-calls.h's. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "flow-calls.h"

/* The relay range of these tests: below the kernel's ephemeral ports, so
 * that the ports the harness picks for probes never collide with it. */
#define MEDIA_MIN 20000
#define MEDIA_MAX 29999
#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 20000-29999\n"

#define SSRC_ALICE 0xA11CEu
#define SSRC_BOB 0xB0Bu
#define SSRC_STRANGER_A 0xBAD1u
#define SSRC_STRANGER_B 0xBAD2u

/* tandem with our relay range and the given [calls] lines. */
static FlowDaemon *
start_tandem (const char *calls)
{
  g_autofree char *extra = g_strdup_printf (MEDIA_CONFIG "\n[calls]\n%s\n", calls ? calls : "");
  return flow_daemon_start (extra);
}

/* An SDP tandem wrote, on our relay range (flow_assert_relay_sdp). */
static guint16
assert_relay_sdp (const char *msg, guint16 not_port)
{
  return flow_assert_relay_sdp (msg, not_port, FALSE, MEDIA_MIN, MEDIA_MAX);
}

/* `later` (in run `lr`) was caused by `earlier` (in run `er`), so it is not
 * logged before it. Two SIPp processes stamp their logs after the send or
 * receive itself: a few ms of slack (seen: a receipt logged 200 µs before
 * the send that caused it). */
static void
assert_not_before (const FlowRun *lr, const char *later, const FlowRun *er, const char *earlier)
{
  g_assert_cmpint (flow_run_msg_time (lr, later), >=, flow_run_msg_time (er, earlier) - 5000);
}

/* ---- a call ------------------------------------------------------------------------------ */

/* alice calls bob: the two parties and, once finished, what each saw. */
typedef struct {
  FlowParty alice, bob;     /* bob is registered at bob.sip_port */
  FlowSipp *sa, *sb;
  FlowRun *a, *b;
} Call;

static void
call_clear (Call *c)
{
  g_clear_pointer (&c->a, flow_run_free);
  g_clear_pointer (&c->b, flow_run_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Call, call_clear)

/* alice runs alice_scenario, bob bob_scenario, each after its -d pause
 * (NULL: none). */
static Call
call (const char *alice_scenario, const char *alice_pause, const char *bob_scenario,
      const char *bob_pause)
{
  Call c = { .alice = flow_party ("alice", alice_scenario, "a"),
             .bob = flow_party ("bob", bob_scenario, "b") };

  c.alice.pause_ms = alice_pause;
  c.bob.pause_ms = bob_pause;
  return c;
}

/* bob registers and starts; then alice calls him. Both in the background. */
static void
call_start (FlowDaemon *d, Call *c)
{
  c->sb = flow_callee_start (d, &c->bob);
  c->sa = flow_caller_start (d, &c->alice, "bob");
}

/* Collects both runs, asserting each SIPp saw its scenario through. */
static void
call_finish (Call *c)
{
  c->a = flow_sipp_finish (c->sa, "alice");
  c->b = flow_sipp_finish (c->sb, "bob");
}

static void
call_run (FlowDaemon *d, Call *c)
{
  call_start (d, c);
  call_finish (c);
}

/* The two dialogs are separate (RFC 3261 B2BUA): B's INVITE has its own
 * Call-ID, tag and branch, names the authenticated caller, one hop less. */
static void
assert_b_invite (const Call *c)
{
  const char *a_inv = flow_require_msg (c->a->sent, "INVITE ", 1);
  const char *b_inv = flow_require_msg (c->b->received, "INVITE ", 0);
  g_autofree char *a_cid = flow_require_header (a_inv, "Call-ID");
  g_autofree char *b_cid = flow_require_header (b_inv, "Call-ID");
  g_autofree char *a_tag = flow_msg_tag (a_inv, "From"), *b_tag = flow_msg_tag (b_inv, "From");
  g_autofree char *a_branch = flow_msg_branch (a_inv), *b_branch = flow_msg_branch (b_inv);
  g_autofree char *from = flow_require_header (b_inv, "From");
  g_autofree char *to = flow_require_header (b_inv, "To");
  g_autofree char *mf = flow_require_header (b_inv, "Max-Forwards");
  g_autofree char *formats = flow_sdp_formats (b_inv);
  g_auto (GStrv) vias = flow_msg_headers (b_inv, "Via");
  g_autofree char *ruri = g_strdup_printf ("INVITE sip:bob@127.0.0.1:%u", c->bob.sip_port);

  g_assert_true (g_str_has_prefix (b_inv, ruri));      /* bob's registered Contact */
  g_assert_cmpstr (b_cid, !=, a_cid);
  g_assert_nonnull (b_tag);
  g_assert_cmpstr (b_tag, !=, a_tag);
  g_assert_cmpstr (b_branch, !=, a_branch);
  g_assert_true (g_str_has_prefix (b_branch, "z9hG4bK"));
  g_assert_cmpuint (g_strv_length (vias), ==, 1);     /* not a proxy: A's Via stays behind */
  g_assert_nonnull (strstr (from, "<sip:alice@pbx.test>"));
  g_assert_cmpstr (to, ==, "<sip:bob@pbx.test>");
  g_assert_cmpstr (mf, ==, "69");
  g_assert_cmpstr (formats, ==, "0 8 101");            /* codecs pass through */
  assert_relay_sdp (b_inv, c->alice.rtp_port);
}

/* alice's side: 100 without a To tag, 180 and 200 with the same tag, the
 * answer rewritten onto the relay. */
static void
assert_a_answer (const Call *c)
{
  const char *b_inv = flow_require_msg (c->b->received, "INVITE ", 0);
  const char *ok = flow_require_response (c->a->received, 200, "INVITE", 0);
  const char *ringing = flow_require_response (c->a->received, 180, "INVITE", 0);
  const char *trying = flow_find_response (c->a->received, 100, "INVITE", 0);
  g_autofree char *ok_tag = flow_msg_tag (ok, "To"), *ring_tag = flow_msg_tag (ringing, "To");
  g_autofree char *formats = flow_sdp_formats (ok);
  guint16 a_relay;

  if (trying) {
    g_autofree char *trying_tag = flow_msg_tag (trying, "To");
    g_assert_null (trying_tag);
  }
  g_assert_nonnull (ok_tag);
  g_assert_cmpstr (ring_tag, ==, ok_tag);
  g_assert_cmpstr (formats, ==, "8 101");              /* bob's answer */
  a_relay = assert_relay_sdp (ok, c->bob.rtp_port);
  /* Each leg has its own relay port. */
  g_assert_cmpuint (a_relay, !=, flow_sdp_audio_port (b_inv));
  g_assert_cmpuint (flow_count_responses (c->a->received, 200, "INVITE"), ==, 1);
}

/* What tandem sent bob after the INVITE: the ACK reuses the INVITE's CSeq
 * number, a BYE takes a higher one; both in the same dialog. */
static void
assert_b_ack (const Call *c)
{
  const char *b_inv = flow_require_msg (c->b->received, "INVITE ", 0);
  const char *ack = flow_require_msg (c->b->received, "ACK ", 0);
  g_autofree char *method = flow_msg_cseq_method (ack);
  g_autofree char *inv_cid = flow_require_header (b_inv, "Call-ID");
  g_autofree char *ack_cid = flow_require_header (ack, "Call-ID");
  g_autofree char *ack_to = flow_msg_tag (ack, "To");

  g_assert_cmpstr (method, ==, "ACK");
  g_assert_cmpuint (flow_msg_cseq (ack), ==, flow_msg_cseq (b_inv));
  g_assert_cmpstr (ack_cid, ==, inv_cid);
  g_assert_nonnull (ack_to);
}

static void
assert_b_bye_from_tandem (const Call *c)
{
  const char *b_inv = flow_require_msg (c->b->received, "INVITE ", 0);
  const char *bye = flow_require_msg (c->b->received, "BYE ", 0);
  const char *b_ok = flow_require_response (c->b->sent, 200, "INVITE", 0);
  g_autofree char *method = flow_msg_cseq_method (bye);
  g_autofree char *inv_cid = flow_require_header (b_inv, "Call-ID");
  g_autofree char *bye_cid = flow_require_header (bye, "Call-ID");
  g_autofree char *inv_tag = flow_msg_tag (b_inv, "From"), *bye_tag = flow_msg_tag (bye, "From");
  g_autofree char *bob_tag = flow_msg_tag (b_ok, "To"), *bye_to = flow_msg_tag (bye, "To");

  g_assert_cmpstr (method, ==, "BYE");
  g_assert_cmpuint (flow_msg_cseq (bye), >, flow_msg_cseq (b_inv));
  g_assert_cmpstr (bye_cid, ==, inv_cid);
  g_assert_cmpstr (bye_tag, ==, inv_tag);
  g_assert_cmpstr (bye_to, ==, bob_tag);
}

/* alice got a BYE from tandem in her dialog (tandem's tag in From). */
static void
assert_a_bye_from_tandem (const Call *c)
{
  const char *a_inv = flow_require_msg (c->a->sent, "INVITE ", 1);
  const char *ok = flow_require_response (c->a->received, 200, "INVITE", 0);
  const char *bye = flow_require_msg (c->a->received, "BYE ", 0);
  g_autofree char *a_cid = flow_require_header (a_inv, "Call-ID");
  g_autofree char *bye_cid = flow_require_header (bye, "Call-ID");
  g_autofree char *tandem_tag = flow_msg_tag (ok, "To"), *bye_from = flow_msg_tag (bye, "From");
  g_autofree char *alice_tag = flow_msg_tag (a_inv, "From"), *bye_to = flow_msg_tag (bye, "To");

  g_assert_cmpstr (bye_cid, ==, a_cid);
  g_assert_cmpstr (bye_from, ==, tandem_tag);
  g_assert_cmpstr (bye_to, ==, alice_tag);
}

/* The CDR of alice's call to bob (flow_assert_cdr), with its times in
 * order and recent (the CDR is this run's), and if reason_part is given,
 * a reason containing it. */
static void
assert_cdr (FlowDaemon *d, const FlowRun *alice, int status, const char *hangup,
            const char *reason_part)
{
  g_auto (FlowCdr) cdr = { 0 };

  flow_assert_cdr (d, alice, "alice", "bob", status, hangup, &cdr);
  g_assert_cmpfloat (cdr.started_at, >, g_get_real_time () / 1e6 - 120);
  g_assert_cmpfloat (cdr.ended_at, >=, cdr.started_at);
  if (cdr.answered) {
    g_assert_cmpfloat (cdr.answered_at, >=, cdr.started_at);
    g_assert_cmpfloat (cdr.ended_at, >=, cdr.answered_at);
  }
  if (reason_part) {
    g_assert_nonnull (cdr.reason);
    g_assert_nonnull (strstr (cdr.reason, reason_part));
  }
}

static void
test_basic_bye_from_caller (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac.xml", "500", "call-uas.xml", "200");

  call_run (d, &c);
  assert_b_invite (&c);
  assert_a_answer (&c);
  assert_b_ack (&c);
  assert_b_bye_from_tandem (&c);
  flow_require_response (c.a->received, 200, "BYE", 0);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

static void
test_basic_bye_from_callee (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-wait.xml", NULL, "call-uas-hangup.xml", "500");

  call_run (d, &c);
  assert_b_invite (&c);
  assert_a_answer (&c);
  assert_b_ack (&c);
  assert_a_bye_from_tandem (&c);
  flow_require_response (c.b->received, 200, "BYE", 0);
  assert_cdr (d, c.a, 200, "callee", NULL);
  flow_daemon_stop (d);
}

/* ---- RTP through the relay --------------------------------------------------------------- */

/* The message that gave bob tandem's SDP: the INVITE, or with a late offer
 * the ACK. */
static const char *
sdp_to_bob (const FlowRun *bob)
{
  const char *invite = flow_require_msg (bob->received, "INVITE ", 0);
  g_autofree char *body = flow_msg_body (invite);

  return *body ? invite : flow_require_msg (bob->received, "ACK ", 0);
}

/* Runs the call while rtp-probe plays both ends (and two strangers, if
 * asked) on the relay ports, which it returns; returns the probe's report.
 * One of the scenarios pauses long enough for the probe. */
static char **
call_with_media (FlowDaemon *d, Call *c, guint16 *a_relay, guint16 *b_relay, gboolean strangers)
{
  FlowProbeEndpoint eps[4];
  guint n = 0;
  char **report;

  call_start (d, c);
  /* Both relay ports are known once alice has ACKed (she writes a.port; in
   * early media, at the 183). */
  *b_relay = flow_wait_port_file ("b");
  *a_relay = flow_wait_port_file ("a");
  eps[n++] = (FlowProbeEndpoint) { c->alice.rtp_port, *a_relay, SSRC_ALICE, 0 };
  eps[n++] = (FlowProbeEndpoint) { c->bob.rtp_port, *b_relay, SSRC_BOB, 0 };
  if (strangers) {
    /* Late enough that both ends have latched their relay ports. */
    eps[n++] = (FlowProbeEndpoint) { flow_pick_port (), *a_relay, SSRC_STRANGER_A, 300 };
    eps[n++] = (FlowProbeEndpoint) { flow_pick_port (), *b_relay, SSRC_STRANGER_B, 300 };
  }
  report = flow_probe_run (eps, n);
  call_finish (c);
  /* The ports the probe used are the ones the SDPs named (for bob: the
   * INVITE's, or with a late offer the ACK's). */
  g_assert_cmpuint (*a_relay, ==, flow_sdp_audio_port (flow_require_response (c->a->received,
                                                                              200, "INVITE", 0)));
  g_assert_cmpuint (*b_relay, ==, flow_sdp_audio_port (sdp_to_bob (c->b)));
  return report;
}

static void
test_rtp_both_ways (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac.xml", "3500", "call-uas.xml", NULL);
  g_auto (GStrv) report = NULL;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &c, &a_relay, &b_relay, FALSE);
  g_assert_cmpuint (flow_probe_sent (report, c.alice.rtp_port), ==, FLOW_PROBE_PACKETS);
  g_assert_cmpuint (flow_probe_sent (report, c.bob.rtp_port), ==, FLOW_PROBE_PACKETS);
  /* Each side hears the other, from its own relay port, and nothing else. */
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  g_assert_cmpuint (flow_probe_received (report, c.bob.rtp_port, 0, 0), ==,
                    flow_probe_received (report, c.bob.rtp_port, b_relay, SSRC_ALICE));
  g_assert_cmpuint (flow_probe_received (report, c.alice.rtp_port, 0, 0), ==,
                    flow_probe_received (report, c.alice.rtp_port, a_relay, SSRC_BOB));
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* RTP hijack at call start (issue 8 item 5): two strangers spray both relay
 * ports from before either phone sends. The ports latch onto the addresses
 * the SDPs announced all the same: the strangers receive nothing, and
 * neither party hears a packet of theirs. */
static void
test_rtp_foreign_source_dropped (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac.xml", "3500", "call-uas.xml", NULL);
  g_auto (GStrv) report = NULL;
  FlowProbeEndpoint eps[4];
  guint16 a_relay, b_relay;

  call_start (d, &c);
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  /* The strangers start at once, the phones 300 ms later. */
  eps[0] = (FlowProbeEndpoint) { flow_pick_port (), a_relay, SSRC_STRANGER_A, 0 };
  eps[1] = (FlowProbeEndpoint) { flow_pick_port (), b_relay, SSRC_STRANGER_B, 0 };
  eps[2] = (FlowProbeEndpoint) { c.alice.rtp_port, a_relay, SSRC_ALICE, 300 };
  eps[3] = (FlowProbeEndpoint) { c.bob.rtp_port, b_relay, SSRC_BOB, 300 };
  report = flow_probe_run (eps, G_N_ELEMENTS (eps));
  call_finish (&c);
  g_assert_cmpuint (a_relay, ==, flow_sdp_audio_port (flow_require_response (c.a->received,
                                                                             200, "INVITE", 0)));
  g_assert_cmpuint (b_relay, ==, flow_sdp_audio_port (sdp_to_bob (c.b)));

  flow_assert_not_heard (report, c.bob.rtp_port, SSRC_STRANGER_A);
  flow_assert_not_heard (report, c.alice.rtp_port, SSRC_STRANGER_B);
  /* The strangers were really sending, and heard nothing. */
  for (guint i = 0; i < 2; i++) {
    g_assert_cmpuint (flow_probe_sent (report, eps[i].bind_port), ==, FLOW_PROBE_PACKETS);
    g_assert_cmpuint (flow_probe_received (report, eps[i].bind_port, 0, 0), ==, 0);
  }
  /* The call flowed, from the phones only. */
  flow_assert_heard_only (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard_only (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  g_assert_cmpuint (flow_probe_received (report, c.bob.rtp_port, 0, 0), ==,
                    flow_probe_received (report, c.bob.rtp_port, b_relay, SSRC_ALICE));
  g_assert_cmpuint (flow_probe_received (report, c.alice.rtp_port, 0, 0), ==,
                    flow_probe_received (report, c.alice.rtp_port, a_relay, SSRC_BOB));
  flow_daemon_stop (d);
}

/* Late offer: alice's INVITE has no SDP. bob gets none either, offers in
 * his 200; alice gets that offer rewritten onto the relay and answers in her
 * ACK, which tandem rewrites into its ACK to bob. Media then flows. */
static void
test_late_offer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-late.xml", "3500", "call-uas-late.xml", NULL);
  g_auto (GStrv) report = NULL;
  const char *b_inv, *b_ack, *a_ok;
  g_autofree char *b_body = NULL, *offer_formats = NULL, *answer_formats = NULL;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &c, &a_relay, &b_relay, FALSE);
  b_inv = flow_require_msg (c.b->received, "INVITE ", 0);
  b_ack = flow_require_msg (c.b->received, "ACK ", 0);
  a_ok = flow_require_response (c.a->received, 200, "INVITE", 0);
  b_body = flow_msg_body (b_inv);
  g_assert_cmpstr (b_body, ==, "");
  offer_formats = flow_sdp_formats (a_ok);
  answer_formats = flow_sdp_formats (b_ack);
  g_assert_cmpstr (offer_formats, ==, "8 101");        /* bob's offer */
  g_assert_cmpstr (answer_formats, ==, "8 101");       /* alice's answer */
  g_assert_cmpuint (assert_relay_sdp (a_ok, c.bob.rtp_port), ==, a_relay);
  g_assert_cmpuint (assert_relay_sdp (b_ack, c.alice.rtp_port), ==, b_relay);
  g_assert_cmpuint (flow_msg_cseq (b_ack), ==, flow_msg_cseq (b_inv));
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* Early media (a ringback tone from the callee): bob's 183 carries SDP,
 * which reaches alice rewritten onto the relay, and media flows both ways
 * before the answer; the 200 keeps the same relay port. */
static void
test_early_media (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-early.xml", "200", "call-uas-early.xml", "3500");
  g_auto (GStrv) report = NULL;
  const char *progress, *ok;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &c, &a_relay, &b_relay, FALSE);
  progress = flow_require_response (c.a->received, 183, "INVITE", 0);
  ok = flow_require_response (c.a->received, 200, "INVITE", 0);
  g_assert_cmpuint (assert_relay_sdp (progress, c.bob.rtp_port), ==, a_relay);
  g_assert_cmpuint (flow_sdp_audio_port (ok), ==, a_relay);
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  /* The probe ran before the 200: this was early media. */
  g_assert_cmpint (flow_run_ms_between (c.a, progress, ok), >=, 3000);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* ---- calls that are not answered ------------------------------------------------------------ */

static void
test_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-fail.xml", NULL, "call-uas-busy.xml", NULL);

  call_run (d, &c);
  g_assert_cmpint (flow_caller_final (c.a), ==, 486);
  flow_assert_error_acked (c.b);
  assert_cdr (d, c.a, 486, "callee", NULL);
  flow_daemon_stop (d);
}

static void
test_cancel (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-cancel.xml", "500", "call-uas-ring.xml", NULL);

  call_run (d, &c);
  flow_require_response (c.a->received, 200, "CANCEL", 0);
  flow_require_response (c.a->received, 487, "INVITE", 0);
  g_assert_cmpuint (flow_count_responses (c.a->received, 200, "INVITE"), ==, 0);
  flow_assert_cancelled (c.b);
  assert_cdr (d, c.a, 487, "caller", NULL);
  flow_daemon_stop (d);
}

static void
test_no_answer_timeout (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("no-answer-timeout = 2");
  g_auto (Call) c = call ("call-uac-fail.xml", NULL, "call-uas-ring.xml", NULL);
  const char *invite, *unavailable;
  gint64 waited;

  call_run (d, &c);
  g_assert_cmpint (flow_caller_final (c.a), ==, 480);
  invite = flow_require_msg (c.a->sent, "INVITE ", 1);
  unavailable = flow_require_response (c.a->received, 480, "INVITE", 0);
  waited = flow_run_ms_between (c.a, invite, unavailable);
  flow_note ("480 after %" G_GINT64_FORMAT " ms", waited);
  g_assert_cmpint (waited, >=, 1800);
  g_assert_cmpint (waited, <=, 4000);
  flow_assert_cancelled (c.b);
  assert_cdr (d, c.a, 480, "tandem", "no answer");
  flow_daemon_stop (d);
}

/* [sip] transaction-lifetime is also how long tandem waits for any answer
 * to its INVITE (RFC 3261 Timer B): a callee that says nothing at all is
 * unreachable then, long before the no-answer timeout of one that rings. */
static void
test_silent_callee (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start_sip ("transaction-lifetime = 4",
                                                    MEDIA_CONFIG "\n[calls]\nno-answer-timeout = 30\n");
  g_auto (Call) c = call ("call-uac-fail.xml", NULL, "call-uas-silent.xml", "7000");
  const char *invite, *final;
  int status;
  gint64 waited;

  call_run (d, &c);
  status = flow_caller_final (c.a);
  g_assert_cmpint (status, ==, 408);   /* nta's own, relayed as a proxy would */
  invite = flow_require_msg (c.a->sent, "INVITE ", 1);
  final = flow_require_response (c.a->received, status, "INVITE", 0);
  waited = flow_run_ms_between (c.a, invite, final);
  flow_note ("%d after %" G_GINT64_FORMAT " ms, %u INVITEs at bob", status, waited,
             flow_count_msgs (c.b->received, "INVITE "));
  g_assert_cmpint (waited, >=, 3500);
  g_assert_cmpint (waited, <=, 6500);
  /* Over UDP, retransmitted meanwhile (0, 0.5, 1.5, 3.5 s). */
  g_assert_cmpuint (flow_count_msgs (c.b->received, "INVITE "), >=, 3);
  flow_daemon_stop (d);
}

/* ---- session modification ----------------------------------------------------------------- */

/* An offer or answer from one end arrived at the other end as `relayed`:
 * rewritten onto that end's relay port, direction kept. */
static void
assert_offer_relayed (const char *relayed, const char *direction, guint16 relay_port,
                      guint16 not_port)
{
  g_assert_true (flow_sdp_has (relayed, direction));
  g_assert_cmpuint (assert_relay_sdp (relayed, not_port), ==, relay_port);
}

static void
test_reinvite_and_update_from_caller (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-reinvite.xml", "300", "call-uas-reinvite.xml", NULL);
  const char *b_inv, *b_reinv, *b_update, *a_ok, *a_reok, *a_upok;

  call_run (d, &c);
  b_inv = flow_require_msg (c.b->received, "INVITE ", 0);
  b_reinv = flow_require_msg (c.b->received, "INVITE ", 1);
  b_update = flow_require_msg (c.b->received, "UPDATE ", 0);
  a_ok = flow_require_response (c.a->received, 200, "INVITE", 0);
  a_reok = flow_require_response (c.a->received, 200, "INVITE", 1);
  a_upok = flow_require_response (c.a->received, 200, "UPDATE", 0);

  /* bob: re-INVITE and UPDATE in the same dialog, new CSeqs, same relay port. */
  g_assert_cmpuint (flow_msg_cseq (b_reinv), >, flow_msg_cseq (b_inv));
  g_assert_cmpuint (flow_msg_cseq (b_update), >, flow_msg_cseq (b_reinv));
  assert_offer_relayed (b_reinv, "a=sendonly", flow_sdp_audio_port (b_inv), c.alice.rtp_port);
  assert_offer_relayed (b_update, "a=inactive", flow_sdp_audio_port (b_inv), c.alice.rtp_port);
  /* alice: bob's answers, rewritten, each a new SDP version (RFC 3264 §8). */
  assert_offer_relayed (a_reok, "a=recvonly", flow_sdp_audio_port (a_ok), c.bob.rtp_port);
  assert_offer_relayed (a_upok, "a=inactive", flow_sdp_audio_port (a_ok), c.bob.rtp_port);
  g_assert_cmpuint (flow_sdp_version (a_reok), >, flow_sdp_version (a_ok));
  g_assert_cmpuint (flow_sdp_version (a_upok), >, flow_sdp_version (a_reok));
  g_assert_cmpuint (flow_sdp_version (b_reinv), >, flow_sdp_version (b_inv));
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

static void
test_reinvite_and_update_from_callee (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-answer.xml", "300", "call-uas-reinvite-b.xml", "300");
  const char *b_inv, *b_reok, *b_upok, *a_ok, *a_reinv, *a_update;

  call_run (d, &c);
  b_inv = flow_require_msg (c.b->received, "INVITE ", 0);
  b_reok = flow_require_response (c.b->received, 200, "INVITE", 0);
  a_ok = flow_require_response (c.a->received, 200, "INVITE", 0);
  a_reinv = flow_require_msg (c.a->received, "INVITE ", 0);

  assert_offer_relayed (a_reinv, "a=sendonly", flow_sdp_audio_port (a_ok), c.bob.rtp_port);
  assert_offer_relayed (b_reok, "a=recvonly", flow_sdp_audio_port (b_inv), c.alice.rtp_port);
  g_assert_cmpuint (flow_sdp_version (a_reinv), >, flow_sdp_version (a_ok));
  /* The resume by UPDATE, both ways. */
  a_update = flow_require_msg (c.a->received, "UPDATE ", 0);
  b_upok = flow_require_response (c.b->received, 200, "UPDATE", 0);
  assert_offer_relayed (a_update, "a=sendrecv", flow_sdp_audio_port (a_ok), c.bob.rtp_port);
  assert_offer_relayed (b_upok, "a=sendrecv", flow_sdp_audio_port (b_inv), c.alice.rtp_port);
  g_assert_cmpuint (flow_sdp_version (a_update), >, flow_sdp_version (a_reinv));
  {
    /* tandem's re-INVITE is in alice's dialog: its tag in From, hers in To. */
    g_autofree char *tandem_tag = flow_msg_tag (a_ok, "To");
    g_autofree char *from = flow_msg_tag (a_reinv, "From");
    g_autofree char *a_cid = flow_require_header (a_ok, "Call-ID");
    g_autofree char *cid = flow_require_header (a_reinv, "Call-ID");
    g_assert_cmpstr (from, ==, tandem_tag);
    g_assert_cmpstr (cid, ==, a_cid);
  }
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* tandem's SDP to one end, given again later, is the same session: the
 * same text, o= version and all. */
static void
assert_same_session (const char *before, const char *after)
{
  g_autofree char *old_sdp = flow_msg_body (before), *new_sdp = flow_msg_body (after);

  flow_note ("session before:\n%s\nafter:\n%s", old_sdp, new_sdp);
  g_assert_cmpstr (new_sdp, ==, old_sdp);
}

/* Both ends offer at once: bob meets tandem's relayed re-INVITE with his
 * own (see gap-uas-glare.xml). tandem must refuse bob's with 491 (its
 * own offer to him is pending) and pass bob's 491 back to alice. Neither
 * offer took effect (RFC 3264 §8): asked for its offer afterwards (a
 * re-INVITE without SDP), tandem gives each end the very SDP it had from
 * before, and media still flows both ways. */
static void
test_glare (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("gap-uac-glare.xml", "2500", "gap-uas-glare.xml", NULL);
  g_auto (GStrv) report = NULL;
  guint16 a_relay, b_relay;

  call_start (d, &c);
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a-after");
  report = flow_probe_pair (c.alice.rtp_port, a_relay, SSRC_ALICE, c.bob.rtp_port, b_relay,
                            SSRC_BOB);
  call_finish (&c);
  flow_require_response (c.b->received, 491, "INVITE", 0);
  flow_require_response (c.a->received, 491, "INVITE", 0);
  assert_same_session (flow_require_response (c.a->received, 200, "INVITE", 0),
                       flow_require_response (c.a->received, 200, "INVITE", 1));
  assert_same_session (flow_require_msg (c.b->received, "INVITE ", 0),
                       flow_require_response (c.b->received, 200, "INVITE", 0));
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* alice cancels her re-INVITE while bob has not answered it: tandem
 * withdraws the offer it relayed (bob gets a CANCEL in that re-INVITE's
 * transaction), and the call goes on as before: nobody is hung up, and
 * RTP still flows both ways afterwards. */
static void
test_reinvite_cancelled (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("gap-uac-reinvite-cancel.xml", "2500", "gap-uas-reinvite-cancel.xml",
                          NULL);
  g_auto (GStrv) report = NULL;
  const char *b_reinv, *b_cancel, *a_bye, *b_bye;
  g_autofree char *reinv_branch = NULL, *cancel_branch = NULL;
  guint16 a_relay, b_relay;

  call_start (d, &c);
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a-after");
  report = flow_probe_pair (c.alice.rtp_port, a_relay, SSRC_ALICE, c.bob.rtp_port, b_relay,
                            SSRC_BOB);
  call_finish (&c);
  flow_require_response (c.a->received, 200, "CANCEL", 0);
  flow_require_response (c.a->received, 487, "INVITE", 0);
  b_reinv = flow_require_msg (c.b->received, "INVITE ", 1);
  b_cancel = flow_require_msg (c.b->received, "CANCEL ", 0);
  reinv_branch = flow_msg_branch (b_reinv);
  cancel_branch = flow_msg_branch (b_cancel);
  g_assert_cmpstr (cancel_branch, ==, reinv_branch);
  g_assert_cmpuint (flow_msg_cseq (b_cancel), ==, flow_msg_cseq (b_reinv));
  /* Nobody was hung up by the cancellation: alice got no BYE, and bob's
   * one BYE is the one her own BYE caused, after it. */
  g_assert_null (flow_find_msg (c.a->received, "BYE ", 0));
  g_assert_cmpuint (flow_count_msgs (c.b->received, "BYE "), ==, 1);
  a_bye = flow_require_msg (c.a->sent, "BYE ", 0);
  b_bye = flow_require_msg (c.b->received, "BYE ", 0);
  assert_not_before (c.b, b_bye, c.a, a_bye);
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* alice asks tandem for its offer (a re-INVITE without SDP) and answers
 * in her ACK with her media moved to another port: from then on the relay
 * sends bob's audio there, and no longer to her old port. (Neither of
 * alice's ports sends to the relay, so latching cannot be what moved it.)
 * bob hears of none of it. */
static void
test_ack_answer_moves_media (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("gap-uac-ack-sdp.xml", "2500", "call-uas.xml", NULL);
  g_auto (GStrv) report = NULL;
  FlowProbeEndpoint eps[3];
  guint16 a_relay, b_relay;
  const char *offer;

  call_start (d, &c);
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  eps[0] = (FlowProbeEndpoint) { c.bob.rtp_port, b_relay, SSRC_BOB, 0 };
  eps[1] = (FlowProbeEndpoint) { c.alice.rtp_port2, flow_pick_port (), SSRC_ALICE, 0 };
  eps[2] = (FlowProbeEndpoint) { c.alice.rtp_port, flow_pick_port (), SSRC_ALICE, 0 };
  report = flow_probe_run (eps, 3);
  call_finish (&c);
  /* tandem's offer in the 200 is its session with alice as it was. */
  offer = flow_require_response (c.a->received, 200, "INVITE", 1);
  assert_same_session (flow_require_response (c.a->received, 200, "INVITE", 0), offer);
  flow_assert_heard_only (report, c.alice.rtp_port2, a_relay, SSRC_BOB);
  flow_assert_not_heard (report, c.alice.rtp_port, SSRC_BOB);
  g_assert_cmpuint (flow_count_msgs (c.b->received, "INVITE "), ==, 1);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* ---- forking ------------------------------------------------------------------------------ */

/* bob has two phones (two registrations, a scenario each, sides "b" and
 * "b2") and alice calls him. */
typedef struct {
  FlowParty alice, bob1, bob2;
  FlowRun *a, *b1, *b2;
} Fork;

static void
fork_clear (Fork *f)
{
  g_clear_pointer (&f->a, flow_run_free);
  g_clear_pointer (&f->b1, flow_run_free);
  g_clear_pointer (&f->b2, flow_run_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Fork, fork_clear)

static Fork
fork_call (const char *alice_scenario, const char *bob1_scenario, const char *bob2_scenario)
{
  return (Fork) { .alice = flow_party ("alice", alice_scenario, "a"),
                  .bob1 = flow_party ("bob", bob1_scenario, "b"),
                  .bob2 = flow_party ("bob", bob2_scenario, "b2") };
}

/* Runs the forked call; with must_succeed, asserts that every SIPp saw its
 * scenario through (else each run's exit_status is the test's to judge). */
static void
fork_run (FlowDaemon *d, Fork *f, gboolean must_succeed)
{
  FlowSipp *s1 = flow_callee_start (d, &f->bob1);
  FlowSipp *s2 = flow_callee_start (d, &f->bob2);
  FlowSipp *sa = flow_caller_start (d, &f->alice, "bob");

  f->a = must_succeed ? flow_sipp_finish (sa, "alice") : flow_sipp_wait (sa);
  f->b1 = must_succeed ? flow_sipp_finish (s1, "bob (phone 1)") : flow_sipp_wait (s1);
  f->b2 = must_succeed ? flow_sipp_finish (s2, "bob (phone 2)") : flow_sipp_wait (s2);
}

static void
test_forking (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Fork) f = fork_call ("call-uac.xml", "call-uas.xml", "call-uas-ring.xml");
  const char *inv1, *inv2, *a_inv;

  f.bob1.pause_ms = "700";       /* phone 1 answers; phone 2 only rings */
  f.alice.pause_ms = "300";
  fork_run (d, &f, TRUE);

  inv1 = flow_require_msg (f.b1->received, "INVITE ", 0);
  inv2 = flow_require_msg (f.b2->received, "INVITE ", 0);
  a_inv = flow_require_msg (f.a->sent, "INVITE ", 1);
  {
    /* Each branch is a dialog of its own. */
    g_autofree char *cid1 = flow_require_header (inv1, "Call-ID");
    g_autofree char *cid2 = flow_require_header (inv2, "Call-ID");
    g_autofree char *cida = flow_require_header (a_inv, "Call-ID");
    g_autofree char *tag1 = flow_msg_tag (inv1, "From"), *tag2 = flow_msg_tag (inv2, "From");
    g_autofree char *br1 = flow_msg_branch (inv1), *br2 = flow_msg_branch (inv2);
    g_assert_cmpstr (cid1, !=, cid2);
    g_assert_cmpstr (cid1, !=, cida);
    g_assert_cmpstr (cid2, !=, cida);
    g_assert_cmpstr (tag1, !=, tag2);
    g_assert_cmpstr (br1, !=, br2);
  }
  /* One answer reaches alice; the other branch is cancelled. */
  g_assert_cmpuint (flow_count_responses (f.a->received, 200, "INVITE"), ==, 1);
  flow_require_msg (f.b1->received, "ACK ", 0);
  flow_require_msg (f.b1->received, "BYE ", 0);
  flow_assert_cancelled (f.b2);
  assert_cdr (d, f.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* The cancelled branch answers anyway (its 200 crossed the CANCEL): tandem
 * ACKs that late 200 and hangs it up; alice still sees one answer. */
static void
test_forking_late_answer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Fork) f = fork_call ("call-uac.xml", "call-uas.xml", "call-uas-answer-late.xml");
  const char *inv, *ack, *bye;

  f.bob1.pause_ms = "700";
  f.alice.pause_ms = "500";
  fork_run (d, &f, TRUE);

  g_assert_cmpuint (flow_count_responses (f.a->received, 200, "INVITE"), ==, 1);
  inv = flow_require_msg (f.b2->received, "INVITE ", 0);
  flow_require_msg (f.b2->received, "CANCEL ", 0);
  ack = flow_require_msg (f.b2->received, "ACK ", 0);
  bye = flow_require_msg (f.b2->received, "BYE ", 0);
  g_assert_cmpuint (flow_msg_cseq (ack), ==, flow_msg_cseq (inv));
  g_assert_cmpuint (flow_msg_cseq (bye), >, flow_msg_cseq (inv));
  flow_require_msg (f.b1->received, "BYE ", 0);
  assert_cdr (d, f.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* As above, and the losing phone hangs up itself as soon as it has the
 * ACK, its BYE crossing tandem's (which nua may then drop: the dialog is
 * over either way). That BYE ends only its own branch: the
 * call alice has with the winning phone goes on (her later re-INVITE and
 * UPDATE still reach it), and it ends when she hangs up. */
static void
test_forking_loser_hangs_up (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Fork) f = fork_call ("call-uac-reinvite.xml", "call-uas-reinvite.xml",
                               "gap-uas-answer-late-bye.xml");
  const char *loser_bye, *a_reinv, *a_bye, *b1_bye;

  f.bob1.pause_ms = "700";
  f.alice.pause_ms = "1500";
  fork_run (d, &f, TRUE);

  loser_bye = flow_require_msg (f.b2->sent, "BYE ", 0);
  flow_require_msg (f.b2->received, "ACK ", 0);
  a_reinv = flow_require_msg (f.a->sent, "INVITE ", 2);
  g_assert_cmpint (flow_run_msg_time (f.b2, loser_bye), <, flow_run_msg_time (f.a, a_reinv));
  /* alice's re-INVITE and UPDATE were relayed to the winner and answered. */
  g_assert_cmpuint (flow_count_responses (f.a->received, 200, "INVITE"), ==, 2);
  flow_require_response (f.a->received, 200, "UPDATE", 0);
  flow_require_msg (f.b1->received, "INVITE ", 1);
  flow_require_msg (f.b1->received, "UPDATE ", 0);
  /* The winner's only BYE is the one alice's caused. */
  g_assert_cmpuint (flow_count_msgs (f.b1->received, "BYE "), ==, 1);
  a_bye = flow_require_msg (f.a->sent, "BYE ", 0);
  b1_bye = flow_require_msg (f.b1->received, "BYE ", 0);
  assert_not_before (f.b1, b1_bye, f.a, a_bye);
  g_assert_null (flow_find_msg (f.a->received, "BYE ", 0));
  assert_cdr (d, f.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* A 6xx from one branch ends the whole fork at once (RFC 3261 §16.7:
 * cancel the other branches; a 6xx beats every other answer). */
static void
test_forking_decline (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("no-answer-timeout = 5");
  g_auto (Fork) f = fork_call ("call-uac-fail.xml", "call-uas-decline.xml", "call-uas-ring.xml");
  const char *invite, *final;
  gint64 waited;

  fork_run (d, &f, FALSE);
  invite = flow_require_msg (f.a->sent, "INVITE ", 1);
  final = flow_find_response (f.a->received, 603, "INVITE", 0);
  if (!final)
    flow_note ("alice's final answer: %s", flow_run_last_received (f.a));
  g_assert_nonnull (final);
  waited = flow_run_ms_between (f.a, invite, final);
  g_assert_cmpint (waited, <, 2000);
  g_assert_cmpint (f.b1->exit_status, ==, 0);
  g_assert_cmpint (f.b2->exit_status, ==, 0);
  flow_assert_cancelled (f.b2);
  assert_cdr (d, f.a, 603, "callee", NULL);
  flow_daemon_stop (d);
}

/* ---- refused calls ---------------------------------------------------------------------- */

/* On a tandem of its own (bob registered first if bob_registered), alice
 * calls callee with scenario and password; returns her final status. */
static int
refused_call (const char *scenario, const char *callee, const char *password,
              gboolean bob_registered)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  FlowParty alice = flow_party ("alice", scenario, "a");
  g_autoptr (FlowRun) run = NULL;
  int status;

  if (bob_registered)
    flow_register (d, "bob", flow_pick_port ());
  alice.password = password;
  run = flow_sipp_finish (flow_caller_start (d, &alice, callee), "alice");
  status = flow_caller_final (run);
  flow_daemon_stop (d);
  return status;
}

static void
test_unknown_user (void)
{
  g_assert_cmpint (refused_call ("call-uac-fail.xml", "mallory", "alice-secret", FALSE), ==, 404);
}

static void
test_not_registered (void)
{
  g_assert_cmpint (refused_call ("call-uac-fail.xml", "carol", "alice-secret", FALSE), ==, 480);
}

static void
test_wrong_password (void)
{
  g_assert_cmpint (refused_call ("call-uac-fail.xml", "bob", "not-it", TRUE), ==, 403);
}

static void
test_bad_sdp (void)
{
  g_assert_cmpint (refused_call ("call-uac-badsdp.xml", "bob", "alice-secret", TRUE), ==, 400);
}

/* bob answers with G.729 only, which alice did not offer: tandem hangs up
 * on bob and refuses alice's call. */
static void
test_no_common_codec (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-fail.xml", NULL, "call-uas.xml", NULL);

  c.bob.pt = "18";
  c.bob.codec = "G729";
  call_run (d, &c);
  g_assert_cmpint (flow_caller_final (c.a), ==, 488);
  g_assert_cmpuint (flow_count_responses (c.a->received, 200, "INVITE"), ==, 0);
  flow_require_msg (c.b->received, "ACK ", 0);
  flow_require_msg (c.b->received, "BYE ", 0);
  assert_cdr (d, c.a, 488, "tandem", "codec");
  flow_daemon_stop (d);
}

/* bob (one registration, at port) refuses alice's call with `status`;
 * alice must get `want`, and the call must be over in tandem too (its CDR
 * is written when its last leg is gone). */
static void
assert_status_for_caller (FlowDaemon *d, guint16 port, const char *status, int want)
{
  FlowParty alice = flow_party ("alice", "call-uac-fail.xml", "a");
  g_autofree char *port_text = g_strdup_printf ("%u", port);
  g_autoptr (FlowRun) a = NULL, b = NULL;
  FlowSipp *sb;

  flow_register (d, "bob", port);
  sb = flow_sipp_start (d, "gap-uas-status.xml", "-p", port_text, "-key", "status", status,
                        NULL);
  a = flow_sipp_finish (flow_caller_start (d, &alice, "bob"), "alice");
  b = flow_sipp_finish (sb, "bob");
  flow_assert_error_acked (b);
  flow_note ("bob answered %s, alice got %d", status, flow_caller_final (a));
  g_assert_cmpint (flow_caller_final (a), ==, want);
  assert_cdr (d, a, want, "callee", NULL);
}

/* A B-leg's failure reaches the caller as the B2BUA's own answer: a 503
 * would make her try another server for her own request (RFC 3261 §16.7
 * wants 500), and bob's redirect or challenge is not hers to follow or
 * answer (480); a plain refusal passes unchanged. (A 302 is here too: the
 * redirect tests check that nobody follows it.) tandem ends a B-leg that got
 * a 401 or 407 itself. */
static void
test_failure_status_mapped (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  guint16 bob = flow_pick_port ();   /* one binding, re-registered each time */

  assert_status_for_caller (d, bob, "503", 500);
  assert_status_for_caller (d, bob, "301", 480);
  assert_status_for_caller (d, bob, "302", 480);
  assert_status_for_caller (d, bob, "401", 480);
  assert_status_for_caller (d, bob, "407", 480);
  assert_status_for_caller (d, bob, "404", 404);
  flow_daemon_stop (d);
}

/* bob's binding points at a port where nobody listens: nua reports the
 * transport failure with its own code (>= 700, or a 503 of its own), which
 * must not go out on the wire; alice gets 500. */
static void
test_failure_unreachable_callee (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  FlowParty alice = flow_party ("alice", "call-uac-fail.xml", "a");
  g_autoptr (FlowRun) a = NULL;

  flow_register (d, "bob", flow_pick_port ());
  a = flow_sipp_finish (flow_caller_start (d, &alice, "bob"), "alice");
  g_assert_cmpint (flow_caller_final (a), ==, 500);
  flow_daemon_stop (d);
}

/* ---- message bodies (RFC 5621) ------------------------------------------------------------ */

/* What tandem sent bob carries a plain SDP of its own: nothing of the
 * multipart, nor of alice's ISUP. */
static void
assert_plain_sdp (const char *msg)
{
  g_autofree char *ctype = flow_require_header (msg, "Content-Type");
  g_autofree char *body = flow_msg_body (msg);

  g_assert_cmpstr (ctype, ==, "application/sdp");
  g_assert_true (g_str_has_prefix (body, "v=0"));
  g_assert_null (strstr (body, "ISUP"));
  g_assert_null (strstr (body, "tandem mp=1"));
}

/* The 415 tandem answered: it says what it takes (RFC 3261 §21.4.13). */
static void
assert_refused_body (const char *response)
{
  g_autofree char *accept = flow_require_header (response, "Accept");
  g_assert_cmpint (flow_msg_status (response), ==, 415);
  g_assert_cmpstr (accept, ==, "application/sdp");
}

/* alice's INVITE, re-INVITE and UPDATE each carry SDP beside ISUP in a
 * multipart/mixed: tandem uses the SDP part (the call is set up, held and
 * heard) and offers bob plain SDP on its relay ports. An UPDATE whose only
 * body is ISUP is refused with 415 and never reaches bob. */
static void
test_multipart_body (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("multipart-uac.xml", "3500", "call-uas-reinvite.xml", NULL);
  g_auto (GStrv) report = NULL;
  const char *b_inv, *b_reinv, *b_update;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &c, &a_relay, &b_relay, FALSE);
  assert_b_invite (&c);
  assert_relay_sdp (flow_require_response (c.a->received, 200, "INVITE", 0), c.bob.rtp_port);
  b_inv = flow_require_msg (c.b->received, "INVITE ", 0);
  b_reinv = flow_require_msg (c.b->received, "INVITE ", 1);
  b_update = flow_require_msg (c.b->received, "UPDATE ", 0);
  assert_plain_sdp (b_inv);
  assert_plain_sdp (b_reinv);
  assert_plain_sdp (b_update);
  assert_offer_relayed (b_reinv, "a=sendonly", b_relay, c.alice.rtp_port);
  assert_offer_relayed (b_update, "a=inactive", b_relay, c.alice.rtp_port);
  g_assert_cmpuint (flow_count_msgs (c.b->received, "UPDATE "), ==, 1);
  assert_refused_body (flow_require_response (c.a->received, 415, "UPDATE", 0));
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* Late offer, alice's answer in her ACK inside a multipart: bob's ACK
 * carries it as plain SDP, and media flows. */
static void
test_multipart_ack (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("multipart-uac-late.xml", "3500", "call-uas-late.xml", NULL);
  g_auto (GStrv) report = NULL;
  const char *b_ack;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &c, &a_relay, &b_relay, FALSE);
  b_ack = flow_require_msg (c.b->received, "ACK ", 0);
  assert_plain_sdp (b_ack);
  g_assert_cmpuint (assert_relay_sdp (b_ack, c.alice.rtp_port), ==, b_relay);
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* bob's answer comes as SDP beside ISUP (the ISUP part first): tandem
 * uses the SDP part, and alice gets a plain SDP answer on her relay port. */
static void
test_multipart_answer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac.xml", "3500", "multipart-uas.xml", NULL);
  g_auto (GStrv) report = NULL;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &c, &a_relay, &b_relay, FALSE);
  assert_a_answer (&c);
  assert_plain_sdp (flow_require_response (c.a->received, 200, "INVITE", 0));
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* An INVITE whose only body is ISUP cannot set up media: 415 with Accept,
 * and bob (registered, but with nobody at his port) is never called. */
static void
test_multipart_no_sdp (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  FlowParty alice = flow_party ("alice", "multipart-uac-refused.xml", "a");
  g_autoptr (FlowRun) run = NULL;

  flow_register (d, "bob", flow_pick_port ());
  run = flow_sipp_finish (flow_caller_start (d, &alice, "bob"), "alice");
  g_assert_cmpint (flow_caller_final (run), ==, 415);
  assert_refused_body (flow_require_response (run->received, 415, "INVITE", 0));
  g_assert_null (flow_find_response (run->received, 180, "INVITE", 0));
  flow_daemon_stop (d);
}

/* ---- tandem ends the call --------------------------------------------------------------- */

/* No RTP at all: after rtp-timeout seconds tandem BYEs both ends. */
static void
test_rtp_timeout (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 2");
  g_auto (Call) c = call ("call-uac-wait.xml", NULL, "call-uas.xml", NULL);
  const char *ok, *bye;
  gint64 waited;

  call_run (d, &c);
  assert_a_bye_from_tandem (&c);
  assert_b_bye_from_tandem (&c);
  ok = flow_require_response (c.a->received, 200, "INVITE", 0);
  bye = flow_require_msg (c.a->received, "BYE ", 0);
  waited = flow_run_ms_between (c.a, ok, bye);
  flow_note ("BYE %" G_GINT64_FORMAT " ms after the answer", waited);
  g_assert_cmpint (waited, >=, 1800);
  g_assert_cmpint (waited, <=, 4500);
  assert_cdr (d, c.a, 200, "tandem", "rtp");
  flow_daemon_stop (d);
}

/* A call on hold sends no RTP on purpose: the RTP timeout spares it. */
static void
test_rtp_timeout_spares_hold (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 2");
  g_auto (Call) c = call ("call-uac-hold.xml", "4500", "call-uas-hold.xml", NULL);

  call_run (d, &c);
  g_assert_null (flow_find_msg (c.a->received, "BYE ", 0));
  assert_b_bye_from_tandem (&c);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* RTP for a second, then silence: the timeout counts from the last packet
 * (the relay reports the ports idle then), not from the answer. */
static void
test_rtp_timeout_after_media (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 2");
  g_auto (Call) c = call ("call-uac-wait.xml", NULL, "call-uas.xml", NULL);
  FlowTraceEndpoint eps[2];
  g_auto (GStrv) report = NULL;
  g_autoptr (GArray) to_alice = NULL, to_bob = NULL;
  guint16 a_relay, b_relay;
  gint64 last_rtp, bye, waited;

  call_start (d, &c);
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  eps[0] = (FlowTraceEndpoint) { c.alice.rtp_port, a_relay, SSRC_ALICE, 0xd5 };
  eps[1] = (FlowTraceEndpoint) { c.bob.rtp_port, b_relay, SSRC_BOB, 0xd5 };
  report = flow_probe_trace (eps, G_N_ELEMENTS (eps), FLOW_PROBE_PACKETS);
  call_finish (&c);
  to_alice = flow_probe_packets (report, c.alice.rtp_port);
  to_bob = flow_probe_packets (report, c.bob.rtp_port);
  g_assert_cmpuint (to_alice->len, >=, FLOW_PROBE_MIN_RECEIVED);
  g_assert_cmpuint (to_bob->len, >=, FLOW_PROBE_MIN_RECEIVED);
  /* what the relay forwarded last is when it heard the last packet */
  last_rtp = MAX (g_array_index (to_alice, FlowRtpPacket, to_alice->len - 1).time_us,
                  g_array_index (to_bob, FlowRtpPacket, to_bob->len - 1).time_us);
  assert_a_bye_from_tandem (&c);
  assert_b_bye_from_tandem (&c);
  bye = flow_run_msg_time (c.a, flow_require_msg (c.a->received, "BYE ", 0));
  waited = (bye - last_rtp) / 1000;
  flow_note ("BYE %" G_GINT64_FORMAT " ms after the last RTP", waited);
  g_assert_cmpint (waited, >=, 1800);
  g_assert_cmpint (waited, <=, 3500);
  assert_cdr (d, c.a, 200, "tandem", "rtp");
  flow_daemon_stop (d);
}

/* A hold's silence does not count: a call held for longer than the timeout
 * and resumed has the whole timeout for its RTP to come back (here the
 * caller hangs up 1.5 s after the resume), rather than being ended at the
 * resume. */
static void
test_rtp_timeout_resume (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 2");
  g_auto (Call) c = call ("feat-uac-hold.xml", "1500", "feat-uas-held.xml", NULL);

  c.bob.answer_attr = "a=recvonly";
  call_run (d, &c);
  flow_require_response (c.a->received, 200, "INVITE", 2);   /* the resume */
  g_assert_null (flow_find_msg (c.a->received, "BYE ", 0));
  assert_b_bye_from_tandem (&c);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* rtp-timeout set by SIGHUP applies: the relay reports idle ports from then
 * on, and a call without RTP is ended. */
static void
test_rtp_timeout_reload (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 0");
  g_autofree char *conf_path = g_build_filename (flow_daemon_dir (d), "tandem.conf", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (Call) c = call ("call-uac-wait.xml", NULL, "call-uas.xml", NULL);
  GString *conf;

  g_assert_true (g_file_get_contents (conf_path, &text, NULL, &error));
  conf = g_string_new (text);
  g_assert_cmpuint (g_string_replace (conf, "rtp-timeout = 0", "rtp-timeout = 2", 1), ==, 1);
  g_assert_true (g_file_set_contents (conf_path, conf->str, -1, &error));
  g_string_free (conf, TRUE);
  flow_daemon_signal (d, SIGHUP);
  g_assert_true (flow_daemon_wait_log (d, "configuration reloaded", 5000));
  call_run (d, &c);
  assert_a_bye_from_tandem (&c);
  assert_b_bye_from_tandem (&c);
  assert_cdr (d, c.a, 200, "tandem", "rtp");
  flow_daemon_stop (d);
}

/* A refused hold leaves the call as it was (RFC 3264 §8: a rejected offer
 * changes nothing): not on hold, so with no RTP the timeout still ends it. */
static void
test_rtp_timeout_after_refused_hold (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 2");
  g_auto (Call) c = call ("call-uac-hold-refused.xml", NULL, "call-uas-reject-reinvite.xml", NULL);

  call_run (d, &c);
  flow_require_response (c.a->received, 488, "INVITE", 0);
  assert_a_bye_from_tandem (&c);
  assert_b_bye_from_tandem (&c);
  assert_cdr (d, c.a, 200, "tandem", "rtp");
  flow_daemon_stop (d);
}

/* The same refused hold, heard: the call must sound as before the offer,
 * both directions relayed. */
static void
test_media_after_refused_hold (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-hold-refused-media.xml", "3000",
                          "call-uas-reject-reinvite.xml", NULL);
  g_auto (GStrv) report = NULL;
  guint16 a_relay, b_relay;

  call_start (d, &c);
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a-after");
  report = flow_probe_pair (c.alice.rtp_port, a_relay, SSRC_ALICE, c.bob.rtp_port, b_relay,
                            SSRC_BOB);
  call_finish (&c);
  flow_require_response (c.a->received, 488, "INVITE", 0);
  flow_assert_heard (report, c.bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard (report, c.alice.rtp_port, a_relay, SSRC_BOB);
  flow_daemon_stop (d);
}

/* SIGHUP with settings changed that only a restart can apply (the SIP
 * socket, the media address and ports, the store) and one that a reload
 * applies (a new user): tandem says so in a warning, keeps the running
 * values (still on its port, SDP still on its relay address and range,
 * registrations still in its store) and takes the new user. */
static void
test_sighup_keeps_restart_only (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autofree char *conf_path = g_build_filename (flow_daemon_dir (d), "tandem.conf", NULL);
  g_autofree char *old_db = g_build_filename (flow_daemon_dir (d), "tandem.db", NULL);
  g_autofree char *new_db = g_build_filename (flow_daemon_dir (d), "moved.db", NULL);
  g_autofree char *text = NULL, *listen = NULL, *moved_listen = NULL;
  g_autoptr (GError) error = NULL;
  guint16 moved_port = flow_pick_port ();
  g_auto (Call) c = call ("call-uac.xml", "300", "call-uas.xml", NULL);
  GString *conf;

  /* The harness's file, with [sip] listen, [store] path and [media] moved. */
  g_assert_true (g_file_get_contents (conf_path, &text, NULL, &error));
  listen = g_strdup_printf ("listen = 127.0.0.1:%u\n", flow_daemon_port (d));
  moved_listen = g_strdup_printf ("listen = 127.0.0.1:%u\n", moved_port);
  conf = g_string_new (text);
  g_assert_cmpuint (g_string_replace (conf, listen, moved_listen, 1), ==, 1);
  g_assert_cmpuint (g_string_replace (conf, old_db, new_db, 1), ==, 1);
  g_assert_cmpuint (g_string_replace (conf, "address = 127.0.0.1\nports = 20000-29999\n",
                                      "address = 127.0.0.2\nports = 30000-30099\n", 1), ==, 1);
  g_string_append (conf, "\n[user dave]\npassword = dave-secret\n");
  g_assert_true (g_file_set_contents (conf_path, conf->str, -1, &error));
  g_string_free (conf, TRUE);

  flow_daemon_signal (d, SIGHUP);
  g_assert_true (flow_daemon_wait_log (d, "configuration reloaded", 5000));
  g_assert_true (flow_daemon_wait_log (d, "take effect only on restart", 1000));
  /* Reloadable: dave exists now (flow_register asserts his 200). */
  flow_register (d, "dave", flow_pick_port ());
  /* Restart-only: the call runs on the old socket, with the old relay. */
  call_run (d, &c);
  assert_b_invite (&c);
  assert_a_answer (&c);
  {
    g_autoptr (GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                             G_SOCKET_PROTOCOL_UDP, NULL);
    g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, moved_port);
    /* Nobody (tandem) took the new listening port. */
    g_assert_true (g_socket_bind (sock, addr, FALSE, NULL));
  }
  g_assert_false (g_file_test (new_db, G_FILE_TEST_EXISTS));
  assert_cdr (d, c.a, 200, "caller", NULL);   /* read from the old store */
  flow_daemon_stop (d);
}

/* SIGTERM with a call ringing: alice gets a final answer, bob a CANCEL. */
static void
test_shutdown_while_ringing (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-fail.xml", NULL, "call-uas-ring.xml", NULL);

  call_start (d, &c);
  flow_wait_port_file ("b");     /* bob has the INVITE */
  g_usleep (200 * 1000);         /* and his 180 has reached alice */
  flow_daemon_stop (d);
  call_finish (&c);
  g_assert_cmpint (flow_caller_final (c.a), ==, 503);
  flow_assert_cancelled (c.b);
}

/* SIGTERM with a call up: both ends get a BYE, tandem exits 0. */
static void
test_shutdown_with_call_up (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac-wait.xml", NULL, "call-uas.xml", NULL);

  call_start (d, &c);
  flow_wait_port_file ("a");     /* alice has ACKed: the call is up */
  g_usleep (200 * 1000);         /* and tandem has seen the ACK */
  flow_daemon_stop (d);          /* asserts exit status 0 */
  call_finish (&c);
  assert_a_bye_from_tandem (&c);
  assert_b_bye_from_tandem (&c);
  assert_cdr (d, c.a, 200, "tandem", "shutdown");
}

/* ---- redirects ---------------------------------------------------------------------------- */

/* bob answers alice's call with a redirect (`status`: 302, or 305 Use
 * Proxy) naming carol's SIPp, a URI nobody routed to. A phone must not make
 * tandem call whatever it names (toll fraud, reflection past routing, auth
 * and the forwarding loop guard): the branch fails with the 3xx, alice gets
 * 480, and carol never sees an INVITE. nua would send a redirected INVITE
 * before reporting anything, so by alice's final answer it would have left:
 * carol's short -timeout only bounds the wait for what already happened. */
static void
assert_redirect_not_followed (const char *status)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  FlowParty alice = flow_party ("alice", "call-uac-fail.xml", "a");
  guint16 bob_port = flow_pick_port (), carol_port = flow_pick_port ();
  g_autofree char *bob_text = g_strdup_printf ("%u", bob_port);
  g_autofree char *carol_text = g_strdup_printf ("%u", carol_port);
  g_autoptr (FlowRun) a = NULL, b = NULL, carol = NULL;
  FlowSipp *sb, *sc;

  sc = flow_sipp_start (d, "redirect-target.xml", "-p", carol_text, "-timeout", "3s", NULL);
  flow_register (d, "bob", bob_port);
  sb = flow_sipp_start (d, "redirect-uas.xml", "-p", bob_text, "-key", "status", status,
                        "-key", "target", carol_text, "-key", "side", "b", NULL);
  a = flow_sipp_finish (flow_caller_start (d, &alice, "bob"), "alice");
  b = flow_sipp_finish (sb, "bob");
  carol = flow_sipp_collect (sc);

  flow_note ("bob answered %s, alice got %d, carol received %u messages", status,
             flow_caller_final (a), carol->received->len);
  g_assert_cmpuint (flow_count_msgs (carol->received, "INVITE "), ==, 0);
  g_assert_cmpuint (carol->received->len, ==, 0);
  g_assert_cmpuint (flow_count_msgs (b->received, "INVITE "), ==, 1);
  flow_assert_error_acked (b);
  g_assert_cmpint (flow_caller_final (a), ==, 480);
  assert_cdr (d, a, 480, "callee", NULL);
  flow_daemon_stop (d);
}

static void
test_redirect_not_followed (void)
{
  assert_redirect_not_followed ("302");
}

static void
test_use_proxy_not_followed (void)
{
  assert_redirect_not_followed ("305");
}

/* bob's Min-SE is above the session interval tandem asks for: his 422 makes
 * tandem call him once more asking for his Min-SE (RFC 4028 §7.4; nua's own
 * retries are off, see above), and alice's call goes through. */
static void
test_session_interval_retried (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = call ("call-uac.xml", "300", "retry-uas-422.xml", NULL);
  const char *first, *second;
  g_autofree char *se1 = NULL, *se2 = NULL, *min_se2 = NULL;

  c.bob.calls = "2";
  call_run (d, &c);
  g_assert_cmpuint (flow_count_msgs (c.b->received, "INVITE "), ==, 2);
  first = flow_require_msg (c.b->received, "INVITE ", 0);
  second = flow_require_msg (c.b->received, "INVITE ", 1);
  se1 = flow_require_header (first, "Session-Expires");
  se2 = flow_require_header (second, "Session-Expires");
  min_se2 = flow_require_header (second, "Min-SE");
  g_assert_true (g_str_has_prefix (se1, "1800"));
  g_assert_true (g_str_has_prefix (se2, "3600"));
  g_assert_true (g_str_has_prefix (min_se2, "3600"));
  g_assert_cmpuint (flow_count_responses (c.a->received, 200, "INVITE"), >=, 1);
  assert_cdr (d, c.a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* Forking: bob's first phone redirects to carol at once, his second answers
 * later. The redirect ends only its own branch: the other keeps ringing and
 * answers, alice's call goes through, and carol is never called. */
static void
test_redirect_while_forking (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  FlowParty alice = flow_party ("alice", "call-uac.xml", "a");
  FlowParty bob2 = flow_party ("bob", "call-uas.xml", "b2");
  guint16 bob1_port = flow_pick_port (), carol_port = flow_pick_port ();
  g_autofree char *bob1_text = g_strdup_printf ("%u", bob1_port);
  g_autofree char *carol_text = g_strdup_printf ("%u", carol_port);
  g_autoptr (FlowRun) a = NULL, b1 = NULL, b2 = NULL, carol = NULL;
  FlowSipp *s1, *s2, *sc;

  bob2.pause_ms = "700";
  alice.pause_ms = "300";
  sc = flow_sipp_start (d, "redirect-target.xml", "-p", carol_text, "-timeout", "3s", NULL);
  flow_register (d, "bob", bob1_port);
  s1 = flow_sipp_start (d, "redirect-uas.xml", "-p", bob1_text, "-key", "status", "302",
                        "-key", "target", carol_text, "-key", "side", "b", NULL);
  s2 = flow_callee_start (d, &bob2);
  a = flow_sipp_finish (flow_caller_start (d, &alice, "bob"), "alice");
  b1 = flow_sipp_finish (s1, "bob (phone 1)");
  b2 = flow_sipp_finish (s2, "bob (phone 2)");
  carol = flow_sipp_collect (sc);

  g_assert_cmpuint (carol->received->len, ==, 0);
  flow_assert_error_acked (b1);
  flow_require_msg (b2->received, "ACK ", 0);
  g_assert_cmpuint (flow_count_responses (a->received, 200, "INVITE"), >=, 1);
  assert_cdr (d, a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* In a call, bob answers alice's relayed re-INVITE with a 302 to carol:
 * tandem follows that no more than an initial one. alice hears 500 (a
 * failed re-offer, td_call_status_for_offerer), the call stays up until she
 * hangs up, bob gets the BYE, and carol is never called. (Measured with
 * nua's retries on: nua did not call carol here, but its redirect handling
 * had already dropped the B-leg's dialog state, so bob never got a BYE.) */
static void
test_redirect_reinvite_not_followed (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  FlowParty alice = flow_party ("alice", "redirect-uac-reinvite.xml", "a");
  guint16 bob_port = flow_pick_port (), carol_port = flow_pick_port ();
  guint16 bob_rtp = flow_pick_port ();
  g_autofree char *bob_text = g_strdup_printf ("%u", bob_port);
  g_autofree char *carol_text = g_strdup_printf ("%u", carol_port);
  g_autofree char *rtp_text = g_strdup_printf ("%u", bob_rtp);
  g_autoptr (FlowRun) a = NULL, b = NULL, carol = NULL;
  FlowSipp *sb, *sc;

  alice.pause_ms = "300";
  sc = flow_sipp_start (d, "redirect-target.xml", "-p", carol_text, "-timeout", "3s", NULL);
  flow_register (d, "bob", bob_port);
  sb = flow_sipp_start (d, "redirect-uas-reinvite.xml", "-p", bob_text, "-key", "target",
                        carol_text, "-key", "rtp_port", rtp_text, "-key", "pt", "8",
                        "-key", "codec", "PCMA", "-key", "side", "b", "-d", "0", NULL);
  a = flow_sipp_finish (flow_caller_start (d, &alice, "bob"), "alice");
  b = flow_sipp_finish (sb, "bob");
  carol = flow_sipp_collect (sc);

  flow_note ("carol received %u messages", carol->received->len);
  g_assert_cmpuint (carol->received->len, ==, 0);
  g_assert_cmpuint (flow_count_msgs (b->received, "INVITE "), ==, 2);
  flow_require_msg (b->received, "BYE ", 0);
  flow_require_response (a->received, 500, "INVITE", 0);
  assert_cdr (d, a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/call/basic/bye-from-caller", test_basic_bye_from_caller);
  flow_add_test ("/call/basic/bye-from-callee", test_basic_bye_from_callee);
  flow_add_test ("/call/rtp/both-ways", test_rtp_both_ways);
  flow_add_test ("/call/rtp/foreign-source-dropped", test_rtp_foreign_source_dropped);
  flow_add_test ("/call/late-offer", test_late_offer);
  flow_add_test ("/call/early-media", test_early_media);
  flow_add_test ("/call/busy", test_busy);
  flow_add_test ("/call/cancel", test_cancel);
  flow_add_test ("/call/no-answer-timeout", test_no_answer_timeout);
  flow_add_test ("/call/silent-callee", test_silent_callee);
  flow_add_test ("/call/reinvite-update-from-caller", test_reinvite_and_update_from_caller);
  flow_add_test ("/call/reinvite-update-from-callee", test_reinvite_and_update_from_callee);
  flow_add_test ("/call/glare", test_glare);
  flow_add_test ("/call/reinvite-cancelled", test_reinvite_cancelled);
  flow_add_test ("/call/ack-answer-moves-media", test_ack_answer_moves_media);
  flow_add_test ("/call/forking", test_forking);
  flow_add_test ("/call/forking-late-answer", test_forking_late_answer);
  flow_add_test ("/call/forking-loser-hangs-up", test_forking_loser_hangs_up);
  flow_add_test ("/call/forking-decline", test_forking_decline);
  flow_add_test ("/call/refused/unknown-user", test_unknown_user);
  flow_add_test ("/call/refused/not-registered", test_not_registered);
  flow_add_test ("/call/refused/wrong-password", test_wrong_password);
  flow_add_test ("/call/refused/bad-sdp", test_bad_sdp);
  flow_add_test ("/call/refused/no-common-codec", test_no_common_codec);
  flow_add_test ("/call/refused/status-mapped", test_failure_status_mapped);
  flow_add_test ("/call/refused/unreachable-callee", test_failure_unreachable_callee);
  flow_add_test ("/call/body/multipart", test_multipart_body);
  flow_add_test ("/call/body/multipart-ack", test_multipart_ack);
  flow_add_test ("/call/body/multipart-answer", test_multipart_answer);
  flow_add_test ("/call/body/no-sdp", test_multipart_no_sdp);
  flow_add_test ("/call/rtp-timeout", test_rtp_timeout);
  flow_add_test ("/call/rtp-timeout-spares-hold", test_rtp_timeout_spares_hold);
  flow_add_test ("/call/rtp-timeout-after-refused-hold", test_rtp_timeout_after_refused_hold);
  flow_add_test ("/call/rtp-timeout-after-media", test_rtp_timeout_after_media);
  flow_add_test ("/call/rtp-timeout-resume", test_rtp_timeout_resume);
  flow_add_test ("/call/rtp-timeout-reload", test_rtp_timeout_reload);
  flow_add_test ("/call/media-after-refused-hold", test_media_after_refused_hold);
  flow_add_test ("/call/sighup-keeps-restart-only", test_sighup_keeps_restart_only);
  flow_add_test ("/call/shutdown-with-call-up", test_shutdown_with_call_up);
  flow_add_test ("/call/shutdown-while-ringing", test_shutdown_while_ringing);
  flow_add_test ("/call/redirect/302-not-followed", test_redirect_not_followed);
  flow_add_test ("/call/redirect/305-not-followed", test_use_proxy_not_followed);
  flow_add_test ("/call/redirect/while-forking", test_redirect_while_forking);
  flow_add_test ("/call/redirect/reinvite-not-followed", test_redirect_reinvite_not_followed);
  flow_add_test ("/call/session-interval-retried", test_session_interval_retried);
  return g_test_run ();
}
