/* Mid-call offers whose answer goes wrong, through the real binary: alice
 * re-INVITEs, bob answers in a way tandem must not pass on as it is
 * (offer-*.xml). The races around them (a 200 crossing a CANCEL, 9xx) are
 * in tests/unit/test-callstate.c. Relay ports: 33500-33999. */
#include <string.h>

#include "flow-calls.h"

#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 33500-33999\n"

/* bob's dialog is gone (481 to the relayed re-INVITE): alice hears 500,
 * which keeps her dialog (RFC 3261 §12.2.1.2), and then tandem's BYE; bob,
 * whose dialog is over, gets nothing more. */
static void
test_peer_dialog_gone (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (MEDIA_CONFIG);
  g_auto (FlowCall) c = { .alice = flow_party ("alice", "offer-uac-500.xml", "a"),
                      .bob = flow_party ("bob", "offer-uas-481.xml", "b") };

  flow_call_run (d, &c);
  flow_require_response (c.a->received, 500, "INVITE", 0);
  g_assert_cmpuint (flow_count_responses (c.a->received, 481, "INVITE"), ==, 0);
  flow_require_msg (c.a->received, "BYE ", 0);
  g_assert_cmpuint (flow_count_msgs (c.b->received, "BYE "), ==, 0);
  flow_daemon_stop (d);
}

/* bob accepts alice's PCMU-only re-offer with PCMA: alice hears 488 and
 * keeps her session; bob, who took the new one, is offered hers again
 * (PCMU, PCMA, telephone-event) with a newer o= version. */
static void
test_answer_without_common_codec (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (MEDIA_CONFIG);
  g_auto (FlowCall) c = { .alice = flow_party ("alice", "offer-uac-488.xml", "a"),
                      .bob = flow_party ("bob", "offer-uas-other-codec.xml", "b") };
  const char *first, *relayed, *realign;
  g_autofree char *first_formats = NULL, *relayed_formats = NULL, *realign_formats = NULL;

  c.alice.hold_formats = "0 101";
  c.alice.hold_attr = "a=sendrecv";
  c.alice.pause_ms = "1000";
  flow_call_run (d, &c);
  flow_require_response (c.a->received, 488, "INVITE", 0);
  first = flow_require_msg (c.b->received, "INVITE ", 0);
  relayed = flow_require_msg (c.b->received, "INVITE ", 1);
  realign = flow_require_msg (c.b->received, "INVITE ", 2);
  first_formats = flow_sdp_formats (first);
  relayed_formats = flow_sdp_formats (relayed);
  realign_formats = flow_sdp_formats (realign);
  g_assert_cmpstr (relayed_formats, ==, "0 101");
  g_assert_cmpstr (realign_formats, ==, first_formats);
  g_assert_cmpuint (flow_sdp_version (realign), >, flow_sdp_version (relayed));
  g_assert_cmpuint (flow_sdp_audio_port (realign), ==, flow_sdp_audio_port (first));
  g_assert_cmpuint (flow_count_msgs (c.a->received, "BYE "), ==, 0);
  flow_daemon_stop (d);
}

/* A late-offer call, then alice's offerless re-INVITE: tandem offers in its
 * 200 and alice answers in her ACK with a=inactive. That answer must take
 * effect: from then on no media crosses the relay either way. */
static void
test_late_offer_reinvite_ack_answer (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (MEDIA_CONFIG);
  g_auto (FlowCall) c = { .alice = flow_party ("alice", "offer-uac-late-ack.xml", "a"),
                      .bob = flow_party ("bob", "call-uas-late.xml", "b") };
  FlowSipp *sa, *sb;
  g_auto (GStrv) report = NULL;
  guint16 a_relay, b_relay;

  c.alice.hold_attr = "a=inactive";
  c.alice.pause_ms = "3500";
  sb = flow_callee_start (d, &c.bob);
  sa = flow_caller_start (d, &c.alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  report = flow_probe_pair (c.alice.rtp_port, a_relay, 0xA11CEu, c.bob.rtp_port, b_relay, 0xB0Bu);
  c.a = flow_sipp_finish (sa, "alice");
  c.b = flow_sipp_finish (sb, "bob");
  g_assert_cmpuint (flow_probe_sent (report, c.alice.rtp_port), ==, FLOW_PROBE_PACKETS);
  g_assert_cmpuint (flow_probe_sent (report, c.bob.rtp_port), ==, FLOW_PROBE_PACKETS);
  flow_assert_not_heard (report, c.alice.rtp_port, 0xB0Bu);
  flow_assert_not_heard (report, c.bob.rtp_port, 0xA11CEu);
  flow_daemon_stop (d);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/offer/peer-dialog-gone", test_peer_dialog_gone);
  flow_add_test ("/offer/answer-without-common-codec", test_answer_without_common_codec);
  flow_add_test ("/offer/late-offer-reinvite-ack-answer", test_late_offer_reinvite_ack_answer);
  return g_test_run ();
}
