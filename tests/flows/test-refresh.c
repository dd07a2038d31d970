/* Session refresh (RFC 4028) through the real binary: alice calls bob, each
 * played by SIPp (refresh-*.xml), with [calls] session-timer = 90, the
 * lowest interval RFC 4028 allows on the wire.
 *
 * Where a phone refreshes, it does so at once and the test is quick; where
 * tandem refreshes (a phone without session timers and without UPDATE, like
 * baresip 1.0), its refresh comes 35 s into the call (10 s before nua's own
 * window of 45 ± 5 s), so those cases take ~40 s each. The timing and the
 * error cases are tested to the millisecond in tests/unit/test-callstate.c.
 * Relay ports: 33000-33499. */
#include <string.h>

#include "flow-calls.h"

#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 33000-33499\n"
#define TIMER_CONFIG "[calls]\nsession-timer = 90\n"

/* tandem's refresh: 35 s after the session starts, give or take the load. */
#define REFRESH_MIN_MS 34500
#define REFRESH_MAX_MS 37000

static FlowDaemon *
start_tandem (void)
{
  return flow_daemon_start (MEDIA_CONFIG TIMER_CONFIG);
}

static FlowCall
call (const char *alice_scenario, const char *alice_pause, const char *bob_scenario)
{
  FlowCall c = { .alice = flow_party ("alice", alice_scenario, "a"),
             .bob = flow_party ("bob", bob_scenario, "b") };
  c.alice.pause_ms = alice_pause;
  c.alice.timeout = c.bob.timeout = "75s";
  return c;
}

/* Nothing of a refresh reaches the other party. */
static void
assert_no_midcall_request (const FlowRun *run, guint invites)
{
  g_assert_cmpuint (flow_count_msgs (run->received, "INVITE "), ==, invites);
  g_assert_cmpuint (flow_count_msgs (run->received, "UPDATE "), ==, 0);
}

/* alice is the refresher and refreshes with UPDATE: tandem answers it with
 * the session timer, bob hears nothing of it. */
static void
test_caller_refreshes (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ();
  g_auto (FlowCall) c = call ("refresh-uac-update.xml", "500", "call-uas.xml");

  flow_call_run (d, &c);
  flow_require_response (c.a->received, 200, "UPDATE", 0);
  assert_no_midcall_request (c.b, 1);
  flow_daemon_stop (d);
}

/* bob is the refresher (refresher=uas in his 200) and refreshes with UPDATE. */
static void
test_callee_refreshes (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ();
  g_auto (FlowCall) c = call ("refresh-uac-update.xml", "3000", "refresh-uas-update.xml");

  flow_call_run (d, &c);
  flow_require_response (c.b->received, 200, "UPDATE", 0);
  g_assert_cmpuint (flow_count_msgs (c.a->received, "UPDATE "), ==, 0);
  flow_daemon_stop (d);
}

/* tandem's refresh toward `peer`, the nth INVITE it received (it received
 * `first` to start the session, at `start`): a re-INVITE carrying the SDP
 * of `first` unchanged (same o= version), at 35 s. */
static void
assert_tandem_refresh (const FlowRun *peer, guint nth, const char *first, const char *start)
{
  const char *refresh = flow_require_msg (peer->received, "INVITE ", nth);
  g_autofree char *first_sdp = flow_msg_body (first), *refresh_sdp = flow_msg_body (refresh);
  gint64 ms = flow_run_ms_between (peer, start, refresh);

  flow_note ("tandem refreshed %" G_GINT64_FORMAT " ms into the session", ms);
  g_assert_cmpstr (refresh_sdp, ==, first_sdp);
  g_assert_cmpint (ms, >=, REFRESH_MIN_MS);
  g_assert_cmpint (ms, <=, REFRESH_MAX_MS);
  g_assert_cmpuint (flow_count_msgs (peer->received, "UPDATE "), ==, 0);
  g_assert_cmpuint (flow_count_msgs (peer->received, "BYE "), <=, 1);
}

/* bob has neither session timers nor UPDATE: tandem refreshes him with a
 * re-INVITE (an UPDATE would get 501 from such a phone, and used to end the
 * call), and the call lives on until alice hangs up. */
static void
test_tandem_refreshes_callee (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ();
  g_auto (FlowCall) c = call ("refresh-uac-update.xml", "40000", "refresh-uas-no-update.xml");

  flow_call_run (d, &c);
  assert_tandem_refresh (c.b, 1, flow_require_msg (c.b->received, "INVITE ", 0),
                         flow_require_msg (c.b->received, "ACK ", 0));
  flow_require_response (c.a->received, 200, "BYE", 0);
  g_assert_cmpuint (flow_count_msgs (c.a->received, "BYE "), ==, 0);
  flow_daemon_stop (d);
}

/* alice has neither: tandem refreshes the A-leg (as its UAS) with a
 * re-INVITE carrying the SDP of its 200; bob refreshes himself. */
static void
test_tandem_refreshes_caller (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ();
  g_auto (FlowCall) c = call ("refresh-uac-wait.xml", "500", "refresh-uas-update.xml");

  flow_call_run (d, &c);
  assert_tandem_refresh (c.a, 0, flow_require_response (c.a->received, 200, "INVITE", 0),
                         flow_require_response (c.a->received, 200, "INVITE", 0));
  flow_require_response (c.a->received, 200, "BYE", 0);
  g_assert_cmpuint (flow_count_msgs (c.b->received, "INVITE "), ==, 1);
  flow_daemon_stop (d);
}

/* bob allows UPDATE but answers tandem's refresh UPDATE 501. nua ends the
 * session usage on a 501 to an UPDATE as to a re-INVITE (cr_graceful) and
 * BYEs bob at once, before tandem hears of the 501: no re-INVITE can save
 * the call, tandem sends none, and hangs up alice. What nua does here is
 * out of tandem's hands; the test says what happens, so that a change in
 * Sofia shows. */
static void
test_update_501 (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ();
  g_auto (FlowCall) c = call ("refresh-uac-update-wait.xml", "0", "refresh-uas-update-501.xml");
  const char *update, *bye;
  gint64 ms;

  flow_call_run (d, &c);
  update = flow_require_msg (c.b->received, "UPDATE ", 0);
  bye = flow_require_msg (c.b->received, "BYE ", 0);
  ms = flow_run_ms_between (c.b, update, bye);
  flow_note ("nua's BYE to bob %" G_GINT64_FORMAT " ms after the UPDATE", ms);
  g_assert_cmpint (ms, <, 1000);
  g_assert_cmpuint (flow_count_msgs (c.b->received, "INVITE "), ==, 1);
  flow_require_response (c.a->received, 200, "UPDATE", 0);
  flow_require_msg (c.a->received, "BYE ", 0);
  flow_daemon_stop (d);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/refresh/caller-refreshes", test_caller_refreshes);
  flow_add_test ("/refresh/callee-refreshes", test_callee_refreshes);
  flow_add_test ("/refresh/tandem-refreshes-callee-without-update", test_tandem_refreshes_callee);
  flow_add_test ("/refresh/tandem-refreshes-caller-without-update", test_tandem_refreshes_caller);
  flow_add_test ("/refresh/update-501", test_update_501);
  return g_test_run ();
}
