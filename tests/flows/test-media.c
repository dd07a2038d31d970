/* Media ports as a resource (issue 8 item 6): what a call costs of the
 * relay's port range, and what happens when the range runs out.
 *
 * alice calls bob through a running tandem whose [media] ports is a tiny
 * range, so that the range is the limit: a rejected stream and RTCP under
 * rtcp-mux cost nothing, a new call that finds no ports is refused with 503
 * and Retry-After while the call in progress keeps its audio, and an SDP
 * with more m= lines than tandem takes is refused with 488.
 *
 * The ranges of these tests lie in 7000-7999: clear of the other flow tests'
 * (8000-9999 hold music, 20000-29999 calls, 30000-32699 features), of the
 * relay unit tests' (10000-19999) and below the kernel's ephemeral ports. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flow-calls.h"

#define SSRC_ALICE 0xA11CEu
#define SSRC_BOB 0xB0Bu

/* tandem relaying on [first, last] only. */
static FlowDaemon *
start_tandem (guint16 first, guint16 last)
{
  g_autofree char *extra = g_strdup_printf ("[media]\naddress = 127.0.0.1\nports = %u-%u\n",
                                            first, last);
  return flow_daemon_start (extra);
}

/* Is 127.0.0.1:port free to bind, i.e. no socket of tandem's on it? */
static gboolean
port_free_to_bind (guint16 port)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, SOCK_DGRAM, 0);
  gboolean ok = fd >= 0 && bind (fd, (struct sockaddr *) &a, sizeof a) == 0;

  if (fd >= 0)
    close (fd);
  return ok;
}

/* port_free_to_bind, waiting (bounded) for the relay thread to close it. */
static gboolean
becomes_free (guint16 port)
{
  gint64 deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;

  while (!port_free_to_bind (port)) {
    if (g_get_monotonic_time () > deadline)
      return FALSE;
    g_usleep (20 * 1000);
  }
  return TRUE;
}

/* The call alice -> bob is up (alice has ACKed); its relay ports. */
typedef struct {
  FlowParty alice, bob;
  FlowSipp *sa, *sb;
  guint16 a_relay, b_relay;
} Call;

static void
call_up (FlowDaemon *d, Call *c, const char *alice_scenario, const char *bob_scenario,
         const char *alice_pause)
{
  c->alice = flow_party ("alice", alice_scenario, "a");
  c->bob = flow_party ("bob", bob_scenario, "b");
  c->alice.pause_ms = alice_pause;
  c->sb = flow_callee_start (d, &c->bob);
  c->sa = flow_caller_start (d, &c->alice, "bob");
  c->b_relay = flow_wait_port_file ("b");
  c->a_relay = flow_wait_port_file ("a");
}

static void
call_finish (Call *c)
{
  g_autoptr (FlowRun) a = flow_sipp_finish (c->sa, "alice");
  g_autoptr (FlowRun) b = flow_sipp_finish (c->sb, "bob");
}

/* Both ends of the call hear each other through the relay. */
static void
assert_audio_flows (Call *c)
{
  g_auto (GStrv) report = flow_probe_pair (c->alice.rtp_port, c->a_relay, SSRC_ALICE,
                                           c->bob.rtp_port, c->b_relay, SSRC_BOB);

  flow_assert_heard_only (report, c->bob.rtp_port, c->b_relay, SSRC_ALICE);
  flow_assert_heard_only (report, c->alice.rtp_port, c->a_relay, SSRC_BOB);
}

/* With ports for exactly one call (`pairs` RTP/RTCP pairs: 2 for the call,
 * maybe 1 more), carol's call to bob is refused with 503 and Retry-After,
 * whether tandem runs out on her own leg (2 pairs) or on the branch to bob
 * (3 pairs: her leg got the last one, which goes back); the call in progress
 * keeps its audio, before, during and after. */
static void
ports_exhausted (guint pairs)
{
  g_autoptr (FlowDaemon) d = start_tandem (7000, (guint16) (7000 + 2 * pairs - 1));
  FlowParty carol = flow_party ("carol", "call-uac-fail.xml", "c");
  g_autoptr (FlowRun) refused = NULL;
  g_auto (GStrv) report = NULL;
  g_autofree char *retry = NULL;
  const char *answer;
  Call c;

  call_up (d, &c, "call-uac.xml", "call-uas.xml", "5000");
  assert_audio_flows (&c);
  refused = flow_sipp_finish (flow_caller_start (d, &carol, "bob"), "carol");
  g_assert_cmpint (flow_caller_final (refused), ==, 503);
  answer = flow_require_response (refused->received, 503, "INVITE", 0);
  retry = flow_require_header (answer, "Retry-After");
  g_assert_cmpuint (g_ascii_strtoull (retry, NULL, 10), >, 0);
  assert_audio_flows (&c);
  call_finish (&c);
  flow_daemon_stop (d);
}

static void
test_exhausted_caller_leg (void)
{
  ports_exhausted (2);
}

static void
test_exhausted_branch (void)
{
  ports_exhausted (3);
}

/* alice offers audio with a=rtcp-mux and a video stream she rejects (port
 * 0), bob answers the same: two port pairs (one per leg) carry the call,
 * the rejected stream gets none, and since both agreed on rtcp-mux the RTCP
 * sockets are closed (their ports free to bind) while the audio, RTCP
 * included, goes over the RTP ports. */
static void
test_rejected_stream_and_rtcp_mux (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (7100, 7103);
  Call c;

  call_up (d, &c, "media-uac-streams.xml", "media-uas-streams.xml", "3000");
  g_assert_true (becomes_free (c.a_relay + 1));
  g_assert_true (becomes_free (c.b_relay + 1));
  assert_audio_flows (&c);
  call_finish (&c);
  flow_daemon_stop (d);
}

/* Without rtcp-mux, the RTCP sockets stay (the test above would pass with
 * a relay that never opened them). */
static void
test_rtcp_without_mux (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (7200, 7203);
  Call c;

  call_up (d, &c, "call-uac.xml", "call-uas.xml", "2000");
  assert_audio_flows (&c);
  g_assert_false (port_free_to_bind (c.a_relay + 1));
  g_assert_false (port_free_to_bind (c.b_relay + 1));
  call_finish (&c);
  flow_daemon_stop (d);
}

/* Nine m= lines, one more than tandem takes: 488, nothing allocated. */
static void
test_too_many_streams (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (7300, 7399);
  FlowParty alice = flow_party ("alice", "media-uac-many.xml", "a");
  g_autoptr (FlowRun) run = NULL;

  flow_register (d, "bob", flow_pick_port ());
  run = flow_sipp_finish (flow_caller_start (d, &alice, "bob"), "alice");
  g_assert_cmpint (flow_caller_final (run), ==, 488);
  flow_daemon_stop (d);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/media/ports-exhausted/caller-leg", test_exhausted_caller_leg);
  flow_add_test ("/media/ports-exhausted/branch", test_exhausted_branch);
  flow_add_test ("/media/rejected-stream-and-rtcp-mux", test_rejected_stream_and_rtcp_mux);
  flow_add_test ("/media/rtcp-without-mux", test_rtcp_without_mux);
  flow_add_test ("/media/too-many-streams", test_too_many_streams);
  return g_test_run ();
}
