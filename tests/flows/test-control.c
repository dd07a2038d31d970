/* The control socket and tandemctl (issue 11): `calls` against calls SIPp
 * really makes (ringing, answered, held), `hangup` of a call and of a leg,
 * errors for unknown ids, and a socket that survives malformed, overlong
 * and unread requests. tandem listens on ctl.sock in the case directory
 * ([control] socket, relative to its configuration's folder).
 *
 * Environment (set by meson): TANDEMCTL, the tool. */
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "flow-calls.h"

#define CONTROL_CONFIG \
  "[media]\naddress = 127.0.0.1\nports = 20000-29999\n[control]\nsocket = ctl.sock\n"
#define COMMAND_TIMEOUT_MS 8000
#define POLL_MS 100
#define WAIT_MS 10000
/* Longer than the server's limit (TD_CONTROL_MAX_LINE, 64 KiB). */
#define TD_MAX_LINE_TEST 70000

static char *
socket_path (void)
{
  return g_build_filename (flow_case_dir (), "ctl.sock", NULL);
}

/* tandemctl --socket ctl.sock ARGS...: its exit status and output. */
static int
ctl_v (char **out, char **err, const char *const *args)
{
  g_autofree char *sock = socket_path ();
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  const char *bin = g_getenv ("TANDEMCTL");

  g_assert_nonnull (bin);
  g_ptr_array_add (argv, (gpointer) bin);
  g_ptr_array_add (argv, "--socket");
  g_ptr_array_add (argv, sock);
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  return flow_command ((const char *const *) argv->pdata, COMMAND_TIMEOUT_MS, out, err);
}

#define ctl(out, err, ...) ctl_v (out, err, (const char *const[]) { __VA_ARGS__, NULL })

/* `tandemctl --json calls`, asserted to succeed: the calls array. */
static JsonArray *
calls_now (JsonParser *parser)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  JsonObject *root;

  g_assert_cmpint (ctl (&out, &err, "--json", "calls"), ==, 0);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_true (json_object_get_boolean_member (root, "ok"));
  return json_object_get_array_member (root, "calls");
}

static JsonObject *
party (JsonObject *call, guint i)
{
  return json_array_get_object_element (json_object_get_array_member (call, "parties"), i);
}

static guint
n_parties (JsonObject *call)
{
  return json_array_get_length (json_object_get_array_member (call, "parties"));
}

/* Polls `calls` (bounded) until the only call's parties are in `a_state`
 * and `b_state`; returns that call (in parser). */
static JsonObject *
wait_states (JsonParser *parser, const char *a_state, const char *b_state)
{
  g_autofree char *last = NULL;

  for (guint waited = 0; waited < WAIT_MS; waited += POLL_MS) {
    JsonArray *calls = calls_now (parser);
    if (json_array_get_length (calls) == 1) {
      JsonObject *call = json_array_get_object_element (calls, 0);
      if (n_parties (call) == 2 &&
          g_strcmp0 (json_object_get_string_member (party (call, 0), "state"), a_state) == 0 &&
          g_strcmp0 (json_object_get_string_member (party (call, 1), "state"), b_state) == 0)
        return call;
    }
    g_usleep (POLL_MS * 1000);
  }
  flow_note ("calls never showed %s/%s", a_state, b_state);
  g_assert_not_reached ();
}

static void
assert_no_calls (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();

  for (guint waited = 0; waited < WAIT_MS; waited += POLL_MS) {
    if (json_array_get_length (calls_now (parser)) == 0)
      return;
    g_usleep (POLL_MS * 1000);
  }
  g_assert_not_reached ();
}

static void
assert_party (JsonObject *p, const char *user)
{
  const char *leg = json_object_get_string_member (p, "leg");
  g_assert_cmpstr (json_object_get_string_member (p, "user"), ==, user);
  g_assert_nonnull (leg);
  g_assert_true (leg[0] == 'l' && g_ascii_isdigit (leg[1]));
}

/* One raw exchange on the socket: `data` as is, then the first response
 * line (NULL at EOF); *eof_after: the server closed after it. */
static char *
raw_exchange (const char *data, gsize len, gboolean *eof_after)
{
  g_autofree char *sock = socket_path ();
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (sock);
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GDataInputStream) in = NULL;
  g_autoptr (GError) error = NULL;
  char *line;

  g_socket_client_set_timeout (client, 5);
  conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (addr), NULL, &error);
  g_assert_no_error (error);
  if (len)   /* 0: only listen (a refused client's one line) */
    g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), data, len,
                               NULL, NULL, &error);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  line = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  if (eof_after) {
    /* EOF, or a reset when tandem closed with some of our bytes unread. */
    g_autofree char *more = g_data_input_stream_read_line (in, NULL, NULL, &error);
    flow_note ("after the first line: %s", error ? error->message : more ? more : "EOF");
    *eof_after = !more && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  }
  return line;
}

static char *
raw (const char *text)
{
  return raw_exchange (text, strlen (text), NULL);
}

/* alice calls bob (each a SIPp scenario, bob answering after bob_pause ms). */
static void
start_call (FlowDaemon *d, FlowCall *c, const char *alice, const char *alice_pause,
            const char *bob, const char *bob_pause, FlowSipp **sa, FlowSipp **sb)
{
  c->alice = flow_party ("alice", alice, "a");
  c->bob = flow_party ("bob", bob, "b");
  c->alice.pause_ms = alice_pause;
  c->bob.pause_ms = bob_pause;
  *sb = flow_callee_start (d, &c->bob);
  *sa = flow_caller_start (d, &c->alice, "bob");
}

/* ---- calls ------------------------------------------------------------------- */

/* While bob rings: one call, both parties ringing, answered_at null; once
 * he answers: talking, answered_at an ISO 8601 UTC time, the same ids.
 * Then `hangup CALL` BYEs both. */
static void
test_calls_and_hangup_call (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_auto (FlowCall) c = { 0 };
  g_autoptr (JsonParser) ringing = json_parser_new ();
  g_autoptr (JsonParser) answered = json_parser_new ();
  g_autofree char *out = NULL, *err = NULL, *call_id = NULL, *table = NULL;
  FlowSipp *sa, *sb;
  JsonObject *call;
  const char *when;

  start_call (d, &c, "call-uac-wait.xml", NULL, "call-uas.xml", "2500", &sa, &sb);
  flow_wait_port_file ("b");
  call = wait_states (ringing, "ringing", "ringing");
  g_assert_true (json_object_get_null_member (call, "answered_at"));
  assert_party (party (call, 0), "alice");
  assert_party (party (call, 1), "bob");
  call_id = g_strdup (json_object_get_string_member (call, "id"));
  g_assert_true (call_id[0] == 'c');
  g_assert_cmpstr (json_object_get_string_member (party (call, 0), "leg"), !=,
                   json_object_get_string_member (party (call, 1), "leg"));

  call = wait_states (answered, "talking", "talking");
  g_assert_cmpstr (json_object_get_string_member (call, "id"), ==, call_id);
  when = json_object_get_string_member (call, "answered_at");
  g_assert_nonnull (when);
  g_assert_true (g_regex_match_simple ("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$", when, 0, 0));
  assert_party (party (call, 0), "alice");
  assert_party (party (call, 1), "bob");

  /* The table: id, answer time, user(leg):state. */
  g_assert_cmpint (ctl (&table, NULL, "calls"), ==, 0);
  {
    g_autofree char *alice = g_strdup_printf (
      "alice(%s):talking bob(%s):talking", json_object_get_string_member (party (call, 0), "leg"),
      json_object_get_string_member (party (call, 1), "leg"));
    flow_note ("table:\n%s", table);
    g_assert_nonnull (strstr (table, call_id));
    g_assert_nonnull (strstr (table, when));
    g_assert_nonnull (strstr (table, alice));
  }

  g_assert_cmpint (ctl (&out, &err, "hangup", call_id), ==, 0);
  c.a = flow_sipp_finish (sa, "alice");
  c.b = flow_sipp_finish (sb, "bob");
  flow_require_msg (c.a->received, "BYE ", 0);
  flow_require_msg (c.b->received, "BYE ", 0);
  assert_no_calls ();
  flow_daemon_stop (d);
}

/* `hangup LEG` on bob's leg: bob gets the BYE, and with two parties the
 * call ends: alice gets one too. */
static void
test_hangup_leg (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_auto (FlowCall) c = { 0 };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *leg = NULL;
  FlowSipp *sa, *sb;
  JsonObject *call;

  start_call (d, &c, "call-uac-wait.xml", NULL, "call-uas.xml", NULL, &sa, &sb);
  call = wait_states (parser, "talking", "talking");
  leg = g_strdup (json_object_get_string_member (party (call, 1), "leg"));
  g_assert_cmpint (ctl (NULL, NULL, "hangup", leg), ==, 0);
  c.a = flow_sipp_finish (sa, "alice");
  c.b = flow_sipp_finish (sb, "bob");
  flow_require_msg (c.b->received, "BYE ", 0);
  flow_require_msg (c.a->received, "BYE ", 0);
  assert_no_calls ();
  flow_daemon_stop (d);
}

/* While bob rings, `hangup` of a leg: bob's is CANCELled, and the caller
 * gets 480 (its only branch ended unanswered); alice's (no dialog yet to
 * BYE) ends the call: bob is CANCELled and alice refused the same way. */
static void
hangup_ringing (guint which)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_auto (FlowCall) c = { 0 };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *leg = NULL;
  FlowSipp *sa, *sb;
  JsonObject *call;

  start_call (d, &c, "call-uac-fail.xml", NULL, "call-uas-ring.xml", NULL, &sa, &sb);
  flow_wait_port_file ("b");
  call = wait_states (parser, "ringing", "ringing");
  leg = g_strdup (json_object_get_string_member (party (call, which), "leg"));
  g_assert_cmpint (ctl (NULL, NULL, "hangup", leg), ==, 0);
  c.a = flow_sipp_finish (sa, "alice");
  c.b = flow_sipp_finish (sb, "bob");
  flow_assert_cancelled (c.b);
  g_assert_cmpint (flow_caller_final (c.a), ==, 480);
  assert_no_calls ();
  flow_daemon_stop (d);
}

static void
test_hangup_ringing_callee (void)
{
  hangup_ringing (1);
}

static void
test_hangup_ringing_caller (void)
{
  hangup_ringing (0);
}

/* alice holds at once (a=sendonly): both parties show held. */
static void
test_calls_held (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_auto (FlowCall) c = { 0 };
  g_autoptr (JsonParser) parser = json_parser_new ();
  FlowSipp *sa, *sb;

  start_call (d, &c, "call-uac-hold.xml", "4000", "call-uas-hold.xml", NULL, &sa, &sb);
  wait_states (parser, "held", "held");
  c.a = flow_sipp_finish (sa, "alice");
  c.b = flow_sipp_finish (sb, "bob");
  assert_no_calls ();
  flow_daemon_stop (d);
}

/* ---- errors ------------------------------------------------------------------ */

static void
assert_refused (const char *id, const char *message)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = ctl (&out, &err, "hangup", id);

  flow_note ("hangup %s: exit %d, stderr %s", id, status, err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, message));
}

/* Unknown ids, usage errors and no socket: exit 1 with tandem's message,
 * exit 2 with tandemctl's. */
static void
test_errors (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_autofree char *err = NULL, *err2 = NULL, *out = NULL;
  const char *bin = g_getenv ("TANDEMCTL");
  const char *nowhere[] = { bin, "--socket", "/nonexistent/ctl.sock", "calls", NULL };

  assert_refused ("c99", "no live call c99");
  assert_refused ("l99", "no live leg l99");
  assert_refused ("bogus", "\"bogus\" is no call or leg id");
  g_assert_cmpint (ctl (NULL, &err, "frobnicate"), ==, 2);
  g_assert_nonnull (strstr (err, "unknown command"));
  g_assert_cmpint (ctl (NULL, NULL, "hangup"), ==, 2);
  g_assert_cmpint (flow_command (nowhere, COMMAND_TIMEOUT_MS, &out, &err2), ==, 2);
  g_assert_nonnull (strstr (err2, "/nonexistent/ctl.sock"));
  flow_daemon_stop (d);
}

/* What reaches the raw socket: malformed JSON, wrong types, unknown
 * commands are answered with errors on the same connection; "req" comes
 * back; an overlong line gets an error and the end of the connection.
 * Afterwards tandem serves the next client and a call. */
static void
test_raw_requests (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_auto (FlowCall) c = { 0 };
  g_autofree char *r1 = raw ("{not json\n");
  g_autofree char *r2 = raw ("[1,2]\n");
  g_autofree char *r3 = raw ("{\"cmd\":\"hangup\",\"id\":5}\n");
  g_autofree char *r4 = raw ("{\"cmd\":\"frob\",\"req\":\"x1\"}\n");
  g_autofree char *r5 = raw ("{\"cmd\":42}\n");
  g_autofree char *r6 = raw ("\n{\"cmd\":\"calls\",\"req\":7}\n");
  g_autofree char *r8 = NULL, *big = NULL;
  gboolean closed = FALSE;

  g_assert_true (g_str_has_prefix (r1, "{\"ok\":false,\"error\":\"malformed JSON"));
  g_assert_cmpstr (r2, ==, "{\"ok\":false,\"error\":\"a request is one JSON object a line\"}");
  g_assert_cmpstr (r3, ==, "{\"ok\":false,\"error\":\"the request needs \\\"id\\\", a string\"}");
  g_assert_cmpstr (r4, ==, "{\"ok\":false,\"req\":\"x1\",\"error\":"
                           "\"unknown command \\\"frob\\\" (known: calls, hangup)\"}");
  g_assert_cmpstr (r5, ==, "{\"ok\":false,\"error\":\"the request has no \\\"cmd\\\" string\"}");
  g_assert_cmpstr (r6, ==, "{\"ok\":true,\"req\":7,\"calls\":[]}");

  big = g_malloc (TD_MAX_LINE_TEST + 1);
  memset (big, 'x', TD_MAX_LINE_TEST);
  big[TD_MAX_LINE_TEST] = '\0';
  r8 = raw_exchange (big, TD_MAX_LINE_TEST, &closed);
  g_assert_cmpstr (r8, ==, "{\"ok\":false,\"error\":\"request line longer than 65536 bytes; "
                           "closing\"}");
  g_assert_true (closed);

  {
    g_autofree char *again = raw ("{\"cmd\":\"calls\"}\n");
    g_assert_cmpstr (again, ==, "{\"ok\":true,\"calls\":[]}");
  }
  c.alice = flow_party ("alice", "call-uac.xml", "a");
  c.bob = flow_party ("bob", "call-uas.xml", "b");
  flow_call_run (d, &c);   /* asserts both SIPp scenarios went through */
  flow_daemon_stop (d);
}

/* A client that sends requests and never reads the answers is closed
 * once its unread responses pass the bound; others are served on. */
static void
test_unread_client (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_autofree char *sock = socket_path ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (sock);
  g_autoptr (GSocket) s = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                        G_SOCKET_PROTOCOL_DEFAULT, NULL);
  g_autoptr (GString) request = g_string_new ("{\"cmd\":\"calls\",\"req\":\"");
  gboolean closed = FALSE;

  g_assert_true (g_socket_connect (s, addr, NULL, NULL));
  g_socket_set_blocking (s, FALSE);
  for (guint i = 0; i < 1000; i++)
    g_string_append_c (request, 'r');
  g_string_append (request, "\"}\n");
  /* 8 MB of answers asked for at most; tandem stops reading us long before. */
  for (guint i = 0; i < 8000 && !closed; i++) {
    g_autoptr (GError) error = NULL;
    if (g_socket_send (s, request->str, request->len, NULL, &error) < 0) {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        g_usleep (1000);
      else
        closed = TRUE;   /* EPIPE / ECONNRESET: tandem closed us */
    }
    if (i % 100 == 0 && flow_daemon_wait_log (d, "responses unread; closing it", 0))
      break;
  }
  g_assert_true (flow_daemon_wait_log (d, "responses unread; closing it", 5000));
  {
    g_autofree char *again = raw ("{\"cmd\":\"calls\"}\n");
    g_assert_cmpstr (again, ==, "{\"ok\":true,\"calls\":[]}");
  }
  flow_daemon_stop (d);
}

/* 32 clients at once: one more gets an error line and is closed; once
 * they go, the next is served. */
static void
test_max_clients (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_autofree char *sock = socket_path ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (sock);
  g_autoptr (GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *refused = NULL;

  for (guint i = 0; i < 32; i++) {
    GSocket *s = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                               G_SOCKET_PROTOCOL_DEFAULT, NULL);
    /* tandem accepts on its loop: a full backlog refuses for a moment. */
    guint tries = 0;
    while (!g_socket_connect (s, addr, NULL, NULL) && ++tries < 100)
      g_usleep (10000);
    g_assert_cmpuint (tries, <, 100);
    g_ptr_array_add (held, s);
  }
  /* The server counts a client once its loop accepted it: ask the last. */
  {
    GSocket *last = g_ptr_array_index (held, 31);
    char buf[256] = { 0 };
    const char *req = "{\"cmd\":\"calls\"}\n";
    g_socket_set_timeout (last, 5);
    g_assert_cmpint (g_socket_send (last, req, strlen (req), NULL, NULL), ==, strlen (req));
    g_assert_cmpint (g_socket_receive (last, buf, sizeof buf - 1, NULL, NULL), >, 0);
    g_assert_true (g_str_has_prefix (buf, "{\"ok\":true"));
  }
  refused = raw_exchange ("", 0, NULL);
  g_assert_cmpstr (refused, ==, "{\"ok\":false,\"error\":\"too many control clients\"}");
  g_ptr_array_set_size (held, 0);
  /* tandemctl (exit 0) once tandem has seen them go. */
  for (guint waited = 0; ctl (NULL, NULL, "calls") != 0; waited += POLL_MS) {
    g_assert_cmpuint (waited, <, WAIT_MS);
    g_usleep (POLL_MS * 1000);
  }
  flow_daemon_stop (d);
}

/* A socket that accepts and never answers: tandemctl gives up after its
 * timeout (5 s) with exit 2 and the path. */
static void
test_ctl_timeout (void)
{
  g_autofree char *sock = socket_path ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (sock);
  g_autoptr (GSocket) mute = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_DEFAULT, NULL);
  g_autofree char *err = NULL;
  gint64 start;

  g_assert_true (g_socket_bind (mute, addr, FALSE, NULL));
  g_assert_true (g_socket_listen (mute, NULL));
  start = g_get_monotonic_time ();
  g_assert_cmpint (ctl (NULL, &err, "calls"), ==, 2);
  flow_note ("tandemctl: %s", err);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 4500000);
  g_assert_nonnull (strstr (err, sock));
}

/* ---- the socket file ---------------------------------------------------------- */

/* Mode 0660; after a crash (SIGKILL) the stale file is replaced; a clean
 * stop removes it. */
static void
test_socket_file (void)
{
  g_autoptr (FlowDaemon) d = flow_daemon_start (CONTROL_CONFIG);
  g_autofree char *sock = socket_path ();
  struct stat st;

  g_assert_cmpint (lstat (sock, &st), ==, 0);
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpint (st.st_mode & 0777, ==, 0660);
  flow_daemon_signal (d, SIGKILL);
  g_assert_cmpint (lstat (sock, &st), ==, 0);   /* left behind */
  flow_daemon_restart (d);
  g_assert_cmpint (ctl (NULL, NULL, "calls"), ==, 0);
  flow_daemon_stop (d);
  g_assert_cmpint (lstat (sock, &st), ==, -1);
}

static char *
write_config (const char *name, const char *control_lines)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_strdup_printf ("[sip]\nlisten = 127.0.0.1:%u\ndomain = pbx.test\n"
                                           "[store]\npath = x.db\n[control]\n%s\n",
                                           flow_pick_port (), control_lines);
  char *path = g_build_filename (flow_case_dir (), name, NULL);

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

/* A path too long for a Unix socket fails --check-config, naming file and
 * line (7: the socket line); so does starting on a file that is no socket,
 * which stays untouched. */
static void
test_bad_socket_config (void)
{
  g_autofree char *lng = g_strnfill (120, 'x');
  g_autofree char *line = g_strdup_printf ("socket = /tmp/%s.sock", lng);
  g_autofree char *conf = write_config ("long.conf", line);
  g_autofree char *plain = g_build_filename (flow_case_dir (), "plain.txt", NULL);
  g_autofree char *conf2 = write_config ("plain.conf", "socket = plain.txt");
  g_autofree char *where = g_strdup_printf ("%s:7: [control] socket", conf);
  g_autofree char *where2 = g_strdup_printf ("%s:7: [control] socket", conf2);
  g_autofree char *err = NULL, *err2 = NULL, *out = NULL, *kept = NULL;
  const char *check[] = { g_getenv ("TANDEM_BIN"), "--check-config", conf, NULL };
  const char *check2[] = { g_getenv ("TANDEM_BIN"), "--check-config", conf2, NULL };
  const char *run2[] = { g_getenv ("TANDEM_BIN"), "-c", conf2, NULL };

  g_assert_cmpint (flow_command (check, COMMAND_TIMEOUT_MS, NULL, &err), ==, 2);
  flow_note ("check: %s", err);
  g_assert_nonnull (strstr (err, where));
  g_assert_nonnull (strstr (err, "longer than a Unix socket path"));

  g_assert_true (g_file_set_contents (plain, "keep me", -1, NULL));
  /* --check-config binds nothing: the value is fine. */
  g_assert_cmpint (flow_command (check2, COMMAND_TIMEOUT_MS, &out, NULL), ==, 0);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (flow_command (run2, COMMAND_TIMEOUT_MS, NULL, &err2), ==, 1);
  flow_note ("run: %s", err2);
  g_assert_nonnull (strstr (err2, where2));
  g_assert_nonnull (strstr (err2, "is no socket"));
  g_assert_true (g_file_get_contents (plain, &kept, NULL, NULL));
  g_assert_cmpstr (kept, ==, "keep me");
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/control/calls/ringing-answered-hangup", test_calls_and_hangup_call);
  flow_add_test ("/control/calls/held", test_calls_held);
  flow_add_test ("/control/hangup/leg", test_hangup_leg);
  flow_add_test ("/control/hangup/ringing-callee", test_hangup_ringing_callee);
  flow_add_test ("/control/hangup/ringing-caller", test_hangup_ringing_caller);
  flow_add_test ("/control/errors", test_errors);
  flow_add_test ("/control/socket/raw-requests", test_raw_requests);
  flow_add_test ("/control/socket/unread-client", test_unread_client);
  flow_add_test ("/control/socket/file", test_socket_file);
  flow_add_test ("/control/socket/max-clients", test_max_clients);
  flow_add_test ("/control/tandemctl/timeout", test_ctl_timeout);
  flow_add_test ("/control/config/bad-socket", test_bad_socket_config);
  return g_test_run ();
}
