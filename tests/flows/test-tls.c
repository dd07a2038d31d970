/* SIP over TLS: registration and calls against tandem's [sip] tls-listen.
 *
 * Debian's SIPp has no TLS (built without OpenSSL), so SIPp speaks TCP to
 * a socat that speaks TLS to tandem (socat TCP-LISTEN ... OPENSSL:...): each
 * SIPp connection is one TLS connection at tandem, which is what counts
 * (tandem logs each message's transport, "tls/..."). The certificate is
 * made per case with openssl. bob registers a Contact on port 9, where no
 * one listens: an INVITE reaches him only over his own connection. */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "flow-harness.h"

#define MEDIA "[media]\naddress = 127.0.0.1\nports = 37000-37499\n"

typedef struct {
  FlowDaemon *d;
  guint16 tls_port;        /* tandem's */
  guint16 socat_port;      /* where SIPp connects over TCP */
  FlowCommand *socat;
} Tls;

/* A self-signed certificate for 127.0.0.1 as <stem>-cert.pem and <stem>-key.pem. */
static void
make_certificate (const char *stem)
{
  g_autofree char *key = g_strdup_printf ("%s-key.pem", stem);
  g_autofree char *cert = g_strdup_printf ("%s-cert.pem", stem);
  const char *argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                         "-addext", "subjectAltName=IP:127.0.0.1", NULL };
  g_autofree char *err = NULL;

  g_assert_cmpint (flow_command (argv, 30000, NULL, &err), ==, 0);
}

static gboolean
accepts (guint16 port)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn =
      g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);
  return conn != NULL;
}

/* socat: TCP on socat_port, each connection a TLS one to tandem (no
 * verification: the certificate is self-signed). */
static void
start_socat (Tls *t)
{
  g_autofree char *listen = NULL, *connect = NULL;

  t->socat_port = flow_pick_port ();
  listen = g_strdup_printf ("TCP-LISTEN:%u,bind=127.0.0.1,reuseaddr,fork", t->socat_port);
  connect = g_strdup_printf ("OPENSSL:127.0.0.1:%u,verify=0", t->tls_port);
  t->socat = flow_command_start ((const char *const[]) { "socat", listen, connect, NULL });
  for (guint i = 0; i < 100 && !accepts (t->socat_port); i++)
    g_usleep (20000);
  g_assert_true (accepts (t->socat_port));
}

/* tandem with TLS, more_sip: more [sip] lines (tls-ca) or ""; extra: the
 * other groups. */
static Tls
tls_start_with (const char *more_sip, const char *extra)
{
  Tls t = { 0 };
  g_autofree char *lines = NULL;

  make_certificate ("tandem");
  t.tls_port = flow_pick_port ();
  /* relative: to the configuration's folder, the case's */
  lines = g_strdup_printf ("tls-listen = 127.0.0.1:%u\ntls-certificate = tandem-cert.pem\n"
                           "tls-key = tandem-key.pem\n%s", t.tls_port, more_sip);
  t.d = flow_daemon_start_sip (lines, extra);
  g_assert_true (flow_daemon_wait_log (t.d, "and on sips:127.0.0.1:", 2000));
  start_socat (&t);
  return t;
}

static Tls
tls_start (void)
{
  return tls_start_with ("", MEDIA);
}

static void
tls_stop (Tls *t)
{
  /* socat never ends by itself: the bound is what stops it */
  flow_command_finish (t->socat, 100, NULL, NULL);
  flow_daemon_stop (t->d);
  flow_daemon_free (t->d);
}

static char *
rsa (const Tls *t)
{
  return g_strdup_printf ("127.0.0.1:%u", t->socat_port);
}

/* bob registers over TLS and stays connected for wait_ms, answering a call
 * that reaches him there. */
static FlowSipp *
bob_over_tls (Tls *t, const char *wait_ms)
{
  g_autofree char *to = rsa (t);
  g_autofree char *callee = g_build_filename (g_getenv ("TANDEM_FLOWS_DIR"), "tls-callee.xml", NULL);
  FlowSipp *bob = flow_sipp_start (t->d, "tls-register.xml", "-t", "t1", "-rsa", to,
                                   "-oocsf", callee, "-au", "bob", "-ap", "bob-secret",
                                   "-d", wait_ms, NULL);

  g_assert_true (flow_daemon_wait_log (t->d, "now bound: <sip:bob@127.0.0.1:9;transport=tls>", 5000));
  return bob;
}

/* alice calls scheme:bob; over TLS (via socat) or UDP; returns her run. */
static FlowRun *
alice_calls (Tls *t, const char *scheme, gboolean tls)
{
  g_autofree char *to = rsa (t);

  if (tls)
    return flow_sipp_try (t->d, "tls-call.xml", "-t", "t1", "-rsa", to, "-au", "alice",
                          "-ap", "alice-secret", "-key", "scheme", scheme, "-key", "via", "TLS",
                          "-key", "contact_transport", "tls", NULL);
  return flow_sipp_try (t->d, "tls-call.xml", "-au", "alice", "-ap", "alice-secret",
                        "-key", "scheme", scheme, "-key", "via", "UDP",
                        "-key", "contact_transport", "udp", NULL);
}

/* Registration over TLS (401, then 200 with the TLS binding), then alice,
 * over TLS too, calls sips:bob: the INVITE reaches bob over his own
 * connection (his Contact's port 9 is nobody's), and the call ends well. */
static void
test_register_and_call (void)
{
  Tls t = tls_start ();
  FlowSipp *bob = bob_over_tls (&t, "4000");
  g_autoptr (FlowRun) alice = alice_calls (&t, "sips", TRUE);
  g_autoptr (FlowRun) bob_run = flow_sipp_finish (bob, "bob");
  const char *invite, *ok;
  g_auto (GStrv) contacts = NULL;

  ok = flow_require_response (bob_run->received, 200, "REGISTER", 0);
  contacts = flow_msg_contacts (ok);
  g_assert_cmpuint (g_strv_length (contacts), ==, 1);
  g_assert_nonnull (strstr (contacts[0], "<sip:bob@127.0.0.1:9;transport=tls>"));
  g_assert_cmpint (alice->exit_status, ==, 0);
  flow_require_response (alice->received, 200, "INVITE", 0);
  flow_require_response (alice->received, 200, "BYE", 0);
  invite = flow_require_msg (bob_run->received, "INVITE ", 0);
  g_assert_true (g_str_has_prefix (invite, "INVITE sip:bob@127.0.0.1:9;transport=tls SIP/2.0"));
  g_assert_nonnull (strstr (invite, "Via: SIP/2.0/TLS "));
  flow_require_msg (bob_run->received, "BYE ", 0);
  /* alice's requests reach tandem only through socat, i.e. over TLS; that
   * tandem says so too: */
  g_assert_true (flow_daemon_wait_log (t.d, "from tls/[127.0.0.1]", 100));
  tls_stop (&t);
}

/* A sips: request that came over UDP: 416, and bob is not rung. */
static void
test_sips_over_udp (void)
{
  Tls t = tls_start ();
  FlowSipp *bob = bob_over_tls (&t, "1500");
  g_autoptr (FlowRun) alice = alice_calls (&t, "sips", FALSE);
  g_autoptr (FlowRun) bob_run = flow_sipp_finish (bob, "bob");

  g_assert_cmpint (alice->exit_status, ==, 0);
  g_assert_nonnull (flow_find_response (alice->received, 416, "INVITE", 0));
  g_assert_null (flow_find_msg (bob_run->received, "INVITE ", 0));
  tls_stop (&t);
}

/* sips:bob when bob is registered over UDP only: 480; plain sip: rings. */
static void
test_sips_needs_tls_contact (void)
{
  Tls t = tls_start ();
  g_autoptr (FlowRun) reg = flow_sipp (t.d, "register.xml", "-au", "bob", "-ap", "bob-secret",
                                       "-key", "aor", "bob", "-key", "contact_user", "bob",
                                       "-key", "expires", "300", NULL);
  g_autoptr (FlowRun) alice = alice_calls (&t, "sips", TRUE);

  g_assert_cmpint (alice->exit_status, ==, 0);
  g_assert_nonnull (flow_find_response (alice->received, 480, "INVITE", 0));
  g_assert_nonnull (strstr (flow_find_response (alice->received, 480, "INVITE", 0), "TLS"));
  tls_stop (&t);
}

/* tandem --check-config (exit 2) and tandem itself (does not start) name
 * the file and the line: a key that is missing, one that is not the
 * certificate's, a certificate that is not one. */
static void
test_bad_files (void)
{
  const char *bin = g_getenv ("TANDEM_BIN");
  const struct {
    const char *cert, *key, *expect;
  } cases[] = {
    { "a-cert.pem", "missing-key.pem", "missing-key.pem ([sip] tls-key, %s:6): No such file" },
    { "a-cert.pem", "b-key.pem", "b-key.pem ([sip] tls-key, %s:6): this key does not match" },
    { "a-key.pem", "a-key.pem", "a-key.pem ([sip] tls-certificate, %s:5): not a PEM certificate" },
  };

  make_certificate ("a");
  make_certificate ("b");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *conf = g_build_filename (flow_case_dir (), "bad.conf", NULL);
    g_autofree char *text = g_strdup_printf (
        "[sip]\nlisten = 127.0.0.1:%u\ndomain = pbx.test\ntls-listen = 127.0.0.1:%u\n"
        "tls-certificate = %s\ntls-key = %s\n[store]\npath = t.db\n",
        flow_pick_port (), flow_pick_port (), cases[i].cert, cases[i].key);
    g_autofree char *expect = g_strdup_printf (cases[i].expect, conf);
    g_autofree char *err = NULL, *err2 = NULL;

    g_assert_true (g_file_set_contents (conf, text, -1, NULL));
    g_assert_cmpint (flow_command ((const char *const[]) { bin, "--check-config", conf, NULL },
                                   10000, NULL, &err), ==, 2);
    flow_note ("check-config: %s", err);
    g_assert_nonnull (strstr (err, expect));
    g_assert_cmpint (flow_command ((const char *const[]) { bin, "-c", conf, NULL }, 10000, NULL,
                                   &err2), >, 0);
    flow_note ("start: %s", err2);
    g_assert_nonnull (strstr (err2, expect));
  }
}

/* tls-listen on a port someone holds: tandem does not start and says
 * which key, with its line. */
static void
test_port_taken (void)
{
  const char *bin = g_getenv ("TANDEM_BIN");
  g_autoptr (GSocket) holder = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) sa = NULL;
  g_autofree char *conf = g_build_filename (flow_case_dir (), "taken.conf", NULL);
  g_autofree char *text = NULL, *expect = NULL, *err = NULL;
  guint16 port = 0;

  make_certificate ("a");
  for (guint i = 0; i < 20 && !port; i++) {
    port = flow_pick_port ();
    g_clear_object (&sa);
    sa = g_inet_socket_address_new (lo, port);
    if (!g_socket_bind (holder, sa, FALSE, NULL) || !g_socket_listen (holder, NULL))
      port = 0;
  }
  g_assert_cmpuint (port, !=, 0);
  text = g_strdup_printf ("[sip]\nlisten = 127.0.0.1:%u\ndomain = pbx.test\n"
                          "tls-listen = 127.0.0.1:%u\ntls-certificate = a-cert.pem\n"
                          "tls-key = a-key.pem\n[store]\npath = t.db\n" MEDIA,
                          flow_pick_port (), port);
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  g_assert_cmpint (flow_command ((const char *const[]) { bin, "-c", conf, NULL }, 10000, NULL,
                                 &err), >, 0);
  flow_note ("start: %s", err);
  expect = g_strdup_printf ("sips:127.0.0.1:%u ([sip] tls-listen, %s:4)", port, conf);
  g_assert_nonnull (strstr (err, expect));
}

/* The copy of the key tandem writes for Sofia is gone once the listener
 * is up: a tandem killed later leaves no key behind (TMPDIR: where
 * g_dir_make_tmp puts it). */
static void
test_no_key_copy_left (void)
{
  g_autofree char *tmp = g_build_filename (flow_case_dir (), "tmp", NULL);
  g_autofree char *old = g_strdup (g_getenv ("TMPDIR"));
  g_autoptr (GDir) dir = NULL;
  Tls t;

  g_assert_cmpint (g_mkdir (tmp, 0700), ==, 0);
  g_setenv ("TMPDIR", tmp, TRUE);
  t = tls_start ();
  if (old)
    g_setenv ("TMPDIR", old, TRUE);
  else
    g_unsetenv ("TMPDIR");
  /* the listener works without it */
  {
    FlowSipp *bob = bob_over_tls (&t, "100");
    g_autoptr (FlowRun) run = flow_sipp_finish (bob, "bob");
    flow_require_response (run->received, 200, "REGISTER", 0);
  }
  dir = g_dir_open (tmp, 0, NULL);
  g_assert_nonnull (dir);
  g_assert_null (g_dir_read_name (dir));
  tls_stop (&t);
}

/* SIGHUP with TLS on: the rewritten file keeps its tls lines (nothing
 * that needs a restart changed), and TLS still serves after the reload
 * (Sofia's directory was gone long before). */
static void
test_reload (void)
{
  Tls t = tls_start ();

  flow_daemon_write_config (t.d, MEDIA);
  flow_daemon_signal (t.d, SIGHUP);
  g_assert_true (flow_daemon_wait_log (t.d, "reloaded", 5000));
  g_assert_false (flow_daemon_wait_log (t.d, "reload: [sip]", 100));
  {
    FlowSipp *bob = bob_over_tls (&t, "100");
    g_autoptr (FlowRun) run = flow_sipp_finish (bob, "bob");
    flow_require_response (run->received, 200, "REGISTER", 0);
  }
  tls_stop (&t);
}

/* bob registers over UDP a Contact with transport=tls at a TLS server of
 * his own (socat OPENSSL-LISTEN in front of a SIPp UAS over TCP): tandem
 * dials that Contact over TLS (a connection of its own), never the UDP
 * address his REGISTER came from, and a sips: call may ring him. */
static void
dial_tls_contact (const char *ca, gboolean verified)
{
  Tls t;
  guint16 uas_port = flow_pick_port (), tls_port = flow_pick_port ();
  g_autofree char *uas = g_strdup_printf ("%u", uas_port);
  g_autofree char *contact_port = g_strdup_printf ("%u", tls_port);
  g_autofree char *listen = g_strdup_printf (
      "OPENSSL-LISTEN:%u,bind=127.0.0.1,reuseaddr,fork,cert=bob-cert.pem,key=bob-key.pem,verify=0",
      tls_port);
  g_autofree char *to_uas = g_strdup_printf ("TCP:127.0.0.1:%u", uas_port);
  FlowCommand *server;
  FlowSipp *bob;
  g_autoptr (FlowRun) reg = NULL, alice = NULL, bob_run = NULL;
  const char *invite;

  make_certificate ("bob");
  make_certificate ("other");
  /* refused: the call waits for no-answer-timeout (below) */
  t = tls_start_with (ca, verified ? MEDIA : MEDIA "[calls]\nno-answer-timeout = 3\n");
  bob = flow_sipp_start (t.d, "tls-callee-elsewhere.xml", "-t", "t1", "-p", uas,
                         "-key", "contact_port", contact_port, NULL);
  for (guint i = 0; i < 100 && !accepts (uas_port); i++)
    g_usleep (20000);
  server = flow_command_start ((const char *const[]) { "socat", listen, to_uas, NULL });
  for (guint i = 0; i < 100 && !accepts (tls_port); i++)
    g_usleep (20000);
  reg = flow_sipp (t.d, "tls-register-elsewhere.xml", "-au", "bob", "-ap", "bob-secret",
                   "-key", "contact_port", contact_port, NULL);
  alice = alice_calls (&t, "sips", TRUE);
  if (!verified) {
    /* the handshake fails at tandem's end: bob never sees the INVITE */
    bob_run = flow_sipp_collect (bob);
    flow_command_finish (server, 100, NULL, NULL);
    g_assert_null (flow_find_response (alice->received, 200, "INVITE", 0));
    g_assert_null (flow_find_msg (bob_run->received, "INVITE ", 0));
    /* Debian's Sofia never fails the INVITE when the handshake fails its
     * verification (measured: no response until tandem's no-answer
     * timeout, 30 s by default): the call ends only by that. */
    g_assert_nonnull (flow_find_response (alice->received, 480, "INVITE", 0));
    /* Sofia keeps that INVITE's transaction to its own timer (B, [sip]
     * transaction-lifetime, 8 s), so a SIGTERM now waits out tandem's 5 s
     * grace: not this case's subject. */
    flow_command_finish (t.socat, 100, NULL, NULL);
    flow_daemon_signal (t.d, SIGKILL);
    flow_daemon_free (t.d);
    return;
  }
  bob_run = flow_sipp_finish (bob, "bob");
  flow_command_finish (server, 100, NULL, NULL);

  g_assert_cmpint (alice->exit_status, ==, 0);
  flow_require_response (alice->received, 200, "INVITE", 0);
  invite = flow_require_msg (bob_run->received, "INVITE ", 0);
  g_assert_nonnull (strstr (invite, "Via: SIP/2.0/TLS "));
  flow_require_msg (bob_run->received, "BYE ", 0);
  tls_stop (&t);
}

static void
test_dial_tls_contact (void)
{
  dial_tls_contact ("", TRUE);
}

/* With tls-ca, the server tandem dials must present a certificate the CA
 * file verifies (and that names 127.0.0.1): bob's own one in it, the call
 * goes through; only another one in it, bob is never reached. */
static void
test_verify_server (void)
{
  dial_tls_contact ("tls-ca = bob-cert.pem\n", TRUE);
}

static void
test_verify_server_refused (void)
{
  dial_tls_contact ("tls-ca = other-cert.pem\n", FALSE);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/tls/register-and-call", test_register_and_call);
  flow_add_test ("/tls/sips-over-udp", test_sips_over_udp);
  flow_add_test ("/tls/sips-needs-tls-contact", test_sips_needs_tls_contact);
  flow_add_test ("/tls/bad-files", test_bad_files);
  flow_add_test ("/tls/port-taken", test_port_taken);
  flow_add_test ("/tls/no-key-copy-left", test_no_key_copy_left);
  flow_add_test ("/tls/reload", test_reload);
  flow_add_test ("/tls/dial-tls-contact", test_dial_tls_contact);
  flow_add_test ("/tls/verify-server", test_verify_server);
  flow_add_test ("/tls/verify-server-refused", test_verify_server_refused);
  return g_test_run ();
}
