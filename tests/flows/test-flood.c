/* Garbage flood: mangled SIP full of host names must not stall the SIP thread.
 *
 * Each case runs tandem in a mount namespace of its own where
 * /etc/resolv.conf names a DNS server on 127.53.53.53 that the test plays
 * and never answers (glibc would wait its whole timeout per name). One UDP
 * socket sends messages Sofia-SIP used to answer by looking up a host name
 * of the message on the SIP thread (a bad SIP version, maddr=NAME, a Via
 * naming TCP on UDP) mixed with random bytes; another socket sends ordinary
 * OPTIONS meanwhile. Every OPTIONS must be answered promptly, and not one
 * DNS query may leave tandem. Needs root (CI runs as root) for the mount
 * namespace; skipped otherwise.
 *
 * The SIP thread does not wait for the store either: while another process
 * holds the SQLite write lock, a REGISTER is refused at once instead of
 * after a busy timeout. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flow-harness.h"

#define FAKE_DNS "127.53.53.53"
#define LEGIT_REQUESTS 40
#define ANSWER_DEADLINE_MS 3000

static int
udp_socket (const char *ip, guint16 port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (inet_pton (AF_INET, ip, &sa.sin_addr), ==, 1);
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) != 0)
    g_error ("bind %s:%u: %s", ip, port, g_strerror (errno));
  return fd;
}

static guint16
local_port (int fd)
{
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &sa, &len), ==, 0);
  return ntohs (sa.sin_port);
}

static void
send_to (int fd, guint16 port, const char *data, gsize len)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  /* Loopback never drops on the sender's side, but the receive buffer may
   * be full; a lost datagram is part of a flood. */
  (void) sendto (fd, data, len, 0, (struct sockaddr *) &sa, sizeof sa);
}

/* How many datagrams wait on fd (each one a DNS query to the fake server). */
static guint
drain (int fd)
{
  char buf[2048];
  guint n = 0;
  while (recv (fd, buf, sizeof buf, 0) >= 0)
    n++;
  return n;
}

/* Runs the case's tandem against a resolver that never answers: a private
 * mount namespace with our own /etc/resolv.conf. */
static gboolean
isolate_resolver (void)
{
  g_autofree char *conf = g_build_filename (flow_case_dir (), "resolv.conf", NULL);

  if (getuid () != 0) {
    g_test_skip ("needs root for a mount namespace with its own /etc/resolv.conf");
    return FALSE;
  }
  g_assert_true (g_file_set_contents (conf, "nameserver " FAKE_DNS "\n"
                                      "options timeout:2 attempts:1\n", -1, NULL));
  if (unshare (CLONE_NEWNS) != 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount (conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) != 0)
    g_error ("private /etc/resolv.conf: %s", g_strerror (errno));
  return TRUE;
}

/* Messages that named a host Sofia-SIP looked up before answering. */
static char *
mangled (guint i)
{
  static const char *const vias[] = {
    "SIP/3.0/UDP ver%u.flood.invalid:5060;branch=z9hG4bKv%u",                 /* 505 */
    "SIP/2.0/UDP via%u.flood.invalid:5060;maddr=maddr%u.flood.invalid;branch=z9hG4bKm", /* maddr */
    "SIP/2.0/TCP tcp%u.flood.invalid:5060;branch=z9hG4bKt%u",                 /* 400, TCP */
  };
  const char *version = i % 3 == 0 ? "SIP/3.0" : "SIP/2.0";
  g_autofree char *via = g_strdup_printf (vias[i % 3], i, i);

  return g_strdup_printf ("OPTIONS sip:bob@ruri%u.flood.invalid %s\r\n"
                          "Via: %s\r\n"
                          "Route: <sip:route%u.flood.invalid;lr>\r\n"
                          "Max-Forwards: 70\r\n"
                          "From: <sip:alice@from%u.flood.invalid>;tag=f%u\r\n"
                          "To: <sip:bob@to%u.flood.invalid>\r\n"
                          "Call-ID: flood-%u@host%u.flood.invalid\r\n"
                          "CSeq: %s OPTIONS\r\n"
                          "Contact: <sip:alice@contact%u.flood.invalid>\r\n"
                          "Content-Length: 0\r\n\r\n",
                          i, version, via, i, i, i, i, i, i, i % 3 == 2 ? "x" : "1", i);
}

static char *
legit_options (guint16 to_port, guint16 from_port, guint seq)
{
  return g_strdup_printf ("OPTIONS sip:127.0.0.1:%u SIP/2.0\r\n"
                          "Via: SIP/2.0/UDP 127.0.0.1:%u;rport;branch=z9hG4bK-legit-%u\r\n"
                          "Max-Forwards: 70\r\n"
                          "From: <sip:probe@127.0.0.1>;tag=legit\r\n"
                          "To: <sip:127.0.0.1:%u>\r\n"
                          "Call-ID: legit-%u@127.0.0.1\r\n"
                          "CSeq: %u OPTIONS\r\n"
                          "Content-Length: 0\r\n\r\n",
                          to_port, from_port, seq, to_port, seq, seq);
}

/* Counts the 200 OK answers to legit OPTIONS waiting on fd. */
static guint
count_answers (int fd)
{
  char buf[4096];
  guint n = 0;
  gssize len;
  while ((len = recv (fd, buf, sizeof buf - 1, 0)) >= 0) {
    buf[len] = '\0';
    if (g_str_has_prefix (buf, "SIP/2.0 200") && strstr (buf, "legit-"))
      n++;
  }
  return n;
}

static void
test_flood_host_names (void)
{
  g_autoptr (FlowDaemon) d = NULL;
  int dns, flood, legit;
  guint16 port;
  guint answered = 0, queries;
  gint64 deadline;
  GRand *rand = g_rand_new_with_seed (8);

  if (!isolate_resolver ())
    return;
  dns = udp_socket (FAKE_DNS, 53);
  d = flow_daemon_start ("");
  port = flow_daemon_port (d);
  drain (dns);   /* whatever start-up asked is not the flood's */
  flood = udp_socket ("127.0.0.1", 0);
  legit = udp_socket ("127.0.0.1", 0);

  /* Interleaved: every legit OPTIONS follows a burst of garbage. */
  for (guint seq = 1; seq <= LEGIT_REQUESTS; seq++) {
    for (guint j = 0; j < 6; j++) {
      guint i = seq * 6 + j;
      if (j == 5) {
        guint8 noise[300];
        for (guint k = 0; k < sizeof noise; k++)
          noise[k] = g_rand_int_range (rand, 0, 256);
        send_to (flood, port, (const char *) noise, sizeof noise);
      } else {
        g_autofree char *msg = mangled (i);
        send_to (flood, port, msg, strlen (msg));
      }
    }
    g_autofree char *probe = legit_options (port, local_port (legit), seq);
    send_to (legit, port, probe, strlen (probe));
  }
  deadline = g_get_monotonic_time () + ANSWER_DEADLINE_MS * 1000;
  while (answered < LEGIT_REQUESTS && g_get_monotonic_time () < deadline) {
    g_usleep (20 * 1000);
    answered += count_answers (legit);
  }
  queries = drain (dns);
  flow_note ("legit OPTIONS answered: %u of %u within %d ms; DNS queries from tandem: %u",
             answered, LEGIT_REQUESTS, ANSWER_DEADLINE_MS, queries);
  g_assert_cmpuint (queries, ==, 0);
  g_assert_cmpuint (answered, ==, LEGIT_REQUESTS);
  flow_daemon_stop (d);
  g_rand_free (rand);
  close (dns);
  close (flood);
  close (legit);
}

/* Another process writing the store (an operator's sqlite3 shell) must not
 * hold up the SIP thread: the REGISTER gets its 500 at once. */
static void
test_store_locked_no_wait (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start ("");
  g_autofree char *path = g_build_filename (flow_daemon_dir (d), "tandem.db", NULL);
  g_autofree char *port = g_strdup_printf ("%u", flow_pick_port ());
  g_autoptr (FlowRun) run = NULL;
  const char *second, *refused;
  sqlite3 *db = NULL;
  gint64 ms;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
  run = flow_sipp_try (d, "register.xml", "-au", "alice", "-ap", "alice-secret",
                       "-key", "aor", "alice", "-key", "contact_user", "alice",
                       "-key", "expires", "3600", "-p", port, NULL);
  sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close (db);
  second = flow_require_msg (run->sent, "REGISTER ", 1);
  refused = flow_require_response (run->received, 500, "REGISTER", 0);
  ms = flow_run_ms_between (run, second, refused);
  flow_note ("REGISTER refused %" G_GINT64_FORMAT " ms after it was sent", ms);
  g_assert_cmpint (ms, <, 500);
  flow_daemon_stop (d);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/flood/host-names-not-resolved", test_flood_host_names);
  flow_add_test ("/sip-thread/store-locked-no-wait", test_store_locked_no_wait);
  return g_test_run ();
}
