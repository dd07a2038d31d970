/* conf-ctl: tandem, tandemctl and the control socket for the conference
 * flow tests (see conf-ctl.h). */
#include "conf-ctl.h"

#include <string.h>

#define COMMAND_TIMEOUT_MS 8000
#define POLL_MS 100
#define WAIT_MS 10000
#define CONFERENCE_PLUGIN "conference"

FlowDaemon *
conf_start_tandem (void)
{
  const char *plugin_dir = g_getenv ("TANDEM_PLUGIN_DIR");
  g_autofree char *plugin = g_build_filename (plugin_dir ? plugin_dir : ".",
                                              CONFERENCE_PLUGIN ".so", NULL);

  if (!g_file_test (plugin, G_FILE_TEST_EXISTS))
    g_printerr ("flow: %s is not built: the conference plugin is missing\n", plugin);
  g_assert_true (g_file_test (plugin, G_FILE_TEST_EXISTS));
  return flow_daemon_start (
    "[media]\naddress = 127.0.0.1\nports = " G_STRINGIFY (CONF_MEDIA_MIN) "-"
    G_STRINGIFY (CONF_MEDIA_MAX) "\n\n"
    "[control]\nsocket = ctl.sock\n\n"
    "[plugins]\nenabled = forward;hold;transfer;waiting;ringback;" CONFERENCE_PLUGIN "\n\n"
    "[" CONFERENCE_PLUGIN "]\nfactory = conference\nmax-parties = 10\n\n"
    "[user dave]\npassword = dave-secret\n");
}

static char *
socket_path (void)
{
  return g_build_filename (flow_case_dir (), "ctl.sock", NULL);
}

int
conf_ctl_v (char **out, char **err, const char *const *args)
{
  g_autofree char *sock = socket_path ();
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *line = NULL, *o = NULL, *e = NULL;
  const char *bin = g_getenv ("TANDEMCTL");
  int status;

  g_assert_nonnull (bin);
  g_ptr_array_add (argv, (gpointer) bin);
  g_ptr_array_add (argv, "--socket");
  g_ptr_array_add (argv, sock);
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  status = flow_command ((const char *const *) argv->pdata, COMMAND_TIMEOUT_MS, &o, &e);
  line = g_strjoinv (" ", (char **) args);
  flow_note ("tandemctl %s: exit %d\n  stdout: %s  stderr: %s", line, status, o, e);
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return status;
}

JsonObject *
conf_ctl_ok_v (JsonParser *parser, const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  JsonNode *root;
  int status;

  g_ptr_array_add (argv, "--json");
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  status = conf_ctl_v (&out, &err, (const char *const *) argv->pdata);
  if (status != 0)
    g_printerr ("flow: tandemctl %s failed (exit %d): %s\n", args[0], status, err);
  g_assert_cmpint (status, ==, 0);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  g_assert_true (json_object_get_boolean_member (json_node_get_object (root), "ok"));
  return json_node_get_object (root);
}

void
conf_ctl_refused_v (const char *needle, const char *const *args)
{
  g_autofree char *out = NULL, *err = NULL, *line = g_strjoinv (" ", (char **) args);
  int status = conf_ctl_v (&out, &err, args);

  if (status != 1 || !*g_strstrip (err) || (needle && !strstr (err, needle)))
    g_printerr ("flow: tandemctl %s: exit %d, stderr \"%s\" (want exit 1 and a message%s%s)\n",
                line, status, err, needle ? " with " : "", needle ? needle : "");
  g_assert_cmpint (status, ==, 1);
  g_assert_cmpstr (err, !=, "");
  if (needle)
    g_assert_nonnull (strstr (err, needle));
}

/* ---- reading JSON ------------------------------------------------------------- */

const char *
conf_str (JsonObject *o, const char *member)
{
  JsonNode *n = o ? json_object_get_member (o, member) : NULL;

  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

JsonArray *
conf_parties (JsonObject *o)
{
  JsonNode *n = json_object_get_member (o, "parties");

  g_assert_nonnull (n);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (n));
  return json_node_get_array (n);
}

JsonObject *
conf_party_of (JsonArray *parties, const char *user)
{
  JsonObject *found = NULL;

  for (guint i = 0; i < json_array_get_length (parties); i++) {
    JsonObject *p = json_array_get_object_element (parties, i);
    if (g_strcmp0 (conf_str (p, "user"), user) != 0)
      continue;
    g_assert_null (found);
    found = p;
  }
  return found;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

char *
conf_users (JsonArray *parties)
{
  g_autoptr (GPtrArray) users = g_ptr_array_new ();

  for (guint i = 0; i < json_array_get_length (parties); i++) {
    const char *user = conf_str (json_array_get_object_element (parties, i), "user");
    g_ptr_array_add (users, (gpointer) (user ? user : "-"));
  }
  g_ptr_array_sort (users, compare_strings);
  g_ptr_array_add (users, NULL);
  return g_strjoinv (" ", (char **) users->pdata);
}

static JsonArray *
array_member (JsonObject *o, const char *member)
{
  JsonNode *n = json_object_get_member (o, member);

  if (!n || !JSON_NODE_HOLDS_ARRAY (n))
    g_printerr ("flow: the response has no \"%s\" array\n", member);
  g_assert_nonnull (n);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (n));
  return json_node_get_array (n);
}

JsonArray *
conf_calls (JsonParser *parser)
{
  return array_member (conf_ctl_ok (parser, "calls"), "calls");
}

JsonArray *
conf_rooms (JsonParser *parser)
{
  return array_member (conf_ctl_ok (parser, "conference", "list"), "rooms");
}

JsonObject *
conf_call_between (JsonArray *calls, const char *a, const char *b)
{
  g_autofree char *want = g_strcmp0 (a, b) < 0 ? g_strdup_printf ("%s %s", a, b)
                                                : g_strdup_printf ("%s %s", b, a);

  for (guint i = 0; i < json_array_get_length (calls); i++) {
    JsonObject *call = json_array_get_object_element (calls, i);
    g_autofree char *users = conf_users (conf_parties (call));
    if (strcmp (users, want) == 0)
      return call;
  }
  return NULL;
}

static gboolean
all_talking (JsonArray *parties)
{
  for (guint i = 0; i < json_array_get_length (parties); i++)
    if (g_strcmp0 (conf_str (json_array_get_object_element (parties, i), "state"),
                   "talking") != 0)
      return FALSE;
  return TRUE;
}

JsonArray *
conf_wait_calls_talking (JsonParser *parser, guint n_calls)
{
  for (guint waited = 0; waited < WAIT_MS; waited += POLL_MS) {
    JsonArray *calls = conf_calls (parser);
    gboolean ok = json_array_get_length (calls) == n_calls;
    for (guint i = 0; ok && i < n_calls; i++)
      ok = all_talking (conf_parties (json_array_get_object_element (calls, i)));
    if (ok)
      return calls;
    g_usleep (POLL_MS * 1000);
  }
  g_printerr ("flow: `calls` never showed %u calls of talking parties\n", n_calls);
  g_assert_not_reached ();
}

JsonObject *
conf_wait_room (JsonParser *parser, const char *room, const char *users)
{
  g_autofree char *last = NULL;

  for (guint waited = 0; waited < WAIT_MS; waited += POLL_MS) {
    JsonArray *rooms = conf_rooms (parser);
    if (json_array_get_length (rooms) == 1) {
      JsonObject *r = json_array_get_object_element (rooms, 0);
      g_free (last);
      last = conf_users (conf_parties (r));
      if ((!room || g_strcmp0 (conf_str (r, "id"), room) == 0) && strcmp (last, users) == 0 &&
          all_talking (conf_parties (r)))
        return r;
    }
    g_usleep (POLL_MS * 1000);
  }
  g_printerr ("flow: `conference list` never showed room %s alone with %s talking (last: %s)\n",
              room ? room : "(any)", users, last ? last : "not one room");
  g_assert_not_reached ();
}

void
conf_wait_no_rooms (JsonParser *parser)
{
  for (guint waited = 0; waited < WAIT_MS; waited += POLL_MS) {
    if (json_array_get_length (conf_rooms (parser)) == 0)
      return;
    g_usleep (POLL_MS * 1000);
  }
  g_printerr ("flow: `conference list` still shows a room after %d ms\n", WAIT_MS);
  g_assert_not_reached ();
}

/* ---- the raw socket ------------------------------------------------------------- */

char **
conf_raw (const char *text, guint n)
{
  g_autofree char *sock = socket_path ();
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (sock);
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GDataInputStream) in = NULL;
  g_autoptr (GStrvBuilder) lines = g_strv_builder_new ();
  g_autoptr (GError) error = NULL;

  g_socket_client_set_timeout (client, 5);
  conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (addr), NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), text,
                             strlen (text), NULL, NULL, &error);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  for (guint i = 0; i < n; i++) {
    g_autofree char *line = g_data_input_stream_read_line (in, NULL, NULL, &error);
    g_assert_no_error (error);
    if (!line)
      g_printerr ("flow: the socket closed after %u of %u answers\n", i, n);
    g_assert_nonnull (line);
    flow_note ("raw answer %u: %s", i, line);
    g_strv_builder_add (lines, line);
  }
  return g_strv_builder_end (lines);
}
