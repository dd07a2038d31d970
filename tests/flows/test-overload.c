/* Overload: when the SIP thread falls behind, new INVITEs and REGISTERs get
 * 503 with Retry-After; a call in progress is never disturbed.
 *
 * tandem is made to lag for real: SIGSTOP while alice and bob are in a call,
 * alice hangs up (her BYE queues in tandem's socket), a new INVITE and a
 * REGISTER queue behind it, then an OPTIONS; SIGCONT. The new requests are
 * refused with 503 and Retry-After, the BYE ends the call on both legs, the
 * OPTIONS is answered. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flow-calls.h"

#define STOPPED_MS 2500   /* alice's BYE is due 1 s after her ACK: 1.5 s to spare */

static int
raw_socket (guint16 *port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &sa, &len), ==, 0);
  *port = ntohs (sa.sin_port);
  return fd;
}

static void
raw_send (int fd, guint16 to, const char *msg)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (to),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  g_assert_cmpint (sendto (fd, msg, strlen (msg), 0, (struct sockaddr *) &sa, sizeof sa), ==,
                   (gssize) strlen (msg));
}

/* A request outside any dialog from 127.0.0.1:from. */
static char *
request (const char *method, const char *ruri, const char *user, guint16 to, guint16 from,
         const char *extra)
{
  return g_strdup_printf ("%s %s SIP/2.0\r\n"
                          "Via: SIP/2.0/UDP 127.0.0.1:%u;rport;branch=z9hG4bK-%s-%u\r\n"
                          "Max-Forwards: 70\r\n"
                          "From: <sip:%s@pbx.test>;tag=ovl-%s\r\n"
                          "To: <sip:%s@pbx.test>\r\n"
                          "Call-ID: overload-%s-%u@127.0.0.1\r\n"
                          "CSeq: 1 %s\r\n"
                          "Contact: <sip:%s@127.0.0.1:%u>\r\n"
                          "%s"
                          "Content-Length: 0\r\n\r\n",
                          method, ruri, from, method, to, user, method, user, method, to,
                          method, user, from, extra);
}

/* The final response waiting on fd (provisional ones skipped), or NULL. */
static char *
final_response (int fd, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  char buf[4096];

  while (g_get_monotonic_time () < deadline) {
    gssize len = recv (fd, buf, sizeof buf - 1, 0);
    if (len < 0) {
      g_usleep (10 * 1000);
      continue;
    }
    buf[len] = '\0';
    if (g_str_has_prefix (buf, "SIP/2.0 ") && buf[8] != '1')
      return g_strdup (buf);
  }
  return NULL;
}

static void
assert_shed (const char *what, const char *response)
{
  g_autofree char *line = NULL;
  g_autofree char *retry = NULL;

  g_assert_nonnull (response);
  line = flow_msg_start_line (response);
  flow_note ("%s while tandem lagged: %s", what, line);
  g_assert_cmpint (flow_msg_status (response), ==, 503);
  retry = flow_require_header (response, "Retry-After");
  g_assert_cmpstr (retry, ==, "7");
}

static void
test_lagging_sheds_new_work_only (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start ("[calls]\nrtp-timeout = 0\nsession-timer = 0\n");
  FlowParty alice = flow_party ("alice", "call-uac.xml", "a");
  FlowParty bob = flow_party ("bob", "call-uas.xml", "b");
  guint16 port = flow_daemon_port (d), inv_port, reg_port, opt_port;
  int inv = raw_socket (&inv_port), reg = raw_socket (&reg_port), opt = raw_socket (&opt_port);
  g_autofree char *invite = NULL, *regist = NULL, *options = NULL;
  g_autofree char *inv_final = NULL, *reg_final = NULL, *opt_final = NULL;
  g_autoptr (FlowRun) a = NULL;
  g_autoptr (FlowRun) b = NULL;
  FlowSipp *sa, *sb;
  gint64 resumed;

  /* [sip] is the harness's own: add the overload keys to its file and reload. */
  {
    g_autofree char *conf = g_build_filename (flow_daemon_dir (d), "tandem.conf", NULL);
    g_autofree char *text = NULL;
    g_auto (GStrv) halves = NULL;
    g_autofree char *edited = NULL;
    g_assert_true (g_file_get_contents (conf, &text, NULL, NULL));
    halves = g_strsplit (text, "[sip]\n", 2);
    g_assert_cmpuint (g_strv_length (halves), ==, 2);
    edited = g_strconcat (halves[0], "[sip]\noverload-lag = 200\noverload-retry-after = 7\n",
                          halves[1], NULL);
    g_assert_true (g_file_set_contents (conf, edited, -1, NULL));
  }
  flow_daemon_signal (d, SIGHUP);
  g_assert_true (flow_daemon_wait_log (d, "configuration reloaded", 5000));

  /* alice hangs up 1 s after her ACK. */
  alice.pause_ms = "1000";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  /* Stop only once alice's ACK is in: a 200 left unacknowledged would be
   * retransmitted after SIGCONT, and SIPp would take it for its BYE's 200. */
  g_assert_true (flow_daemon_wait_log (d, "| CSeq 2 ACK |", 5000));

  flow_daemon_signal (d, SIGSTOP);
  g_usleep (STOPPED_MS * 1000);   /* alice's BYE goes out meanwhile (checked below) */
  invite = request ("INVITE", "sip:bob@pbx.test", "carol", port, inv_port, "");
  regist = request ("REGISTER", "sip:pbx.test", "carol", port, reg_port, "Expires: 60\r\n");
  options = request ("OPTIONS", "sip:pbx.test", "carol", port, opt_port, "");
  raw_send (inv, port, invite);
  raw_send (reg, port, regist);
  raw_send (opt, port, options);
  g_usleep (300 * 1000);          /* the queue ages past overload-lag */
  resumed = g_get_real_time ();
  flow_daemon_signal (d, SIGCONT);

  inv_final = final_response (inv, 5000);
  reg_final = final_response (reg, 5000);
  opt_final = final_response (opt, 5000);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");

  /* The BYE really waited in the queue with the new requests. */
  g_assert_cmpint (flow_run_msg_time (a, flow_require_msg (a->sent, "BYE ", 0)), <, resumed);
  assert_shed ("new INVITE", inv_final);
  assert_shed ("REGISTER", reg_final);
  /* The call in progress ended normally on both legs. */
  flow_require_response (a->received, 200, "BYE", 0);
  flow_require_msg (b->received, "BYE ", 0);
  /* OPTIONS is no new work. */
  g_assert_nonnull (opt_final);
  g_assert_cmpint (flow_msg_status (opt_final), ==, 200);
  g_assert_true (flow_daemon_wait_log (d, "overload: the SIP thread is", 1000));
  flow_daemon_stop (d);
  close (inv);
  close (reg);
  close (opt);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/overload/lagging-sheds-new-work-only", test_lagging_sheds_new_work_only);
  return g_test_run ();
}
