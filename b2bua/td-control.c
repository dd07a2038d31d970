/* TdControl: the control socket's server (td-control.h). The core's
 * commands (calls, hangup) are at the end; they read calls only through
 * td-call-list.h. */
#define G_LOG_DOMAIN "tandem-control"

#include "td-control.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "td-call-list.h"

#define READ_CHUNK 4096

typedef struct {
  TdControlCommand command;
  gpointer user_data;
} Command;

struct _TdControl {
  char *path;
  GSocketService *service;
  gboolean bound;           /* the socket file is ours: removed at the end */
  GPtrArray *clients;       /* Client*, a reference each */
  GHashTable *commands;     /* name → Command* */
  TdCallContext *calls;
};

typedef struct {
  grefcount ref;
  TdControl *control;       /* NULL once closed */
  guint serial;             /* for logs */
  GSocketConnection *conn;
  GCancellable *cancel;
  GByteArray *in;           /* bytes read, not yet a whole line */
  guint8 chunk[READ_CHUNK];
  GQueue out;               /* GBytes*: responses not yet written, the first being written */
  gsize unsent;
  gboolean writing;
  gboolean closing;         /* close once what is queued is written */
} Client;

static Client *
client_ref (Client *c)
{
  g_ref_count_inc (&c->ref);
  return c;
}

static void
client_unref (Client *c)
{
  if (!g_ref_count_dec (&c->ref))
    return;
  g_clear_object (&c->conn);
  g_clear_object (&c->cancel);
  g_byte_array_unref (c->in);
  g_queue_clear_full (&c->out, (GDestroyNotify) g_bytes_unref);
  g_free (c);
}

/* Stop serving the client; pending operations end cancelled. */
static void
client_close (Client *c)
{
  TdControl *control = c->control;

  if (!control)
    return;
  c->control = NULL;
  g_cancellable_cancel (c->cancel);
  g_io_stream_close (G_IO_STREAM (c->conn), NULL, NULL);
  g_ptr_array_remove_fast (control->clients, c);   /* drops its reference */
}

/* ---- writing --------------------------------------------------------------- */

static void write_next (Client *c);

static void
on_written (GObject *stream, GAsyncResult *res, gpointer data)
{
  Client *c = data;
  g_autoptr (GError) error = NULL;
  GBytes *done;

  c->writing = FALSE;
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (stream), res, NULL, &error)) {
    if (c->control)
      g_debug ("client %u: %s", c->serial, error->message);
    client_close (c);
  } else if (c->control) {
    done = g_queue_pop_head (&c->out);
    c->unsent -= g_bytes_get_size (done);
    g_bytes_unref (done);
    write_next (c);
  }
  client_unref (c);
}

static void
write_next (Client *c)
{
  GBytes *head = g_queue_peek_head (&c->out);
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (c->conn));

  if (c->writing)
    return;
  if (!head) {
    if (c->closing)
      client_close (c);
    return;
  }
  c->writing = TRUE;
  g_output_stream_write_all_async (out, g_bytes_get_data (head, NULL), g_bytes_get_size (head),
                                   G_PRIORITY_DEFAULT, c->cancel, on_written, client_ref (c));
}

/* Queue one response line. A client that asks for more while over
 * TD_CONTROL_MAX_UNSENT of its answers are still unread is closed: it
 * costs at most that and one response (which may be larger: many calls). */
static void
send_node (Client *c, JsonNode *root)
{
  g_autoptr (JsonGenerator) gen = NULL;
  gsize len = 0;
  char *text;

  if (!c->control)
    return;
  if (c->unsent > TD_CONTROL_MAX_UNSENT) {
    g_warning ("control client %u: %zu bytes of responses unread; closing it", c->serial,
               c->unsent);
    client_close (c);
    return;
  }
  gen = json_generator_new ();
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, &len);
  text = g_realloc (text, len + 2);
  text[len++] = '\n';
  text[len] = '\0';
  g_queue_push_tail (&c->out, g_bytes_new_take (text, len));
  c->unsent += len;
  write_next (c);
}

static void
send_error (Client *c, JsonNode *req, const char *message)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "ok");
  json_builder_add_boolean_value (b, FALSE);
  if (req) {
    json_builder_set_member_name (b, "req");
    json_builder_add_value (b, json_node_copy (req));
  }
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  send_node (c, root);
}

/* ---- requests -------------------------------------------------------------- */

static gint
by_name (gconstpointer a, gconstpointer b, gpointer unused)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static char *
known_commands (TdControl *control)
{
  guint n = 0;
  g_autofree const char **names =
    (const char **) g_hash_table_get_keys_as_array (control->commands, &n);
  g_qsort_with_data (names, n, sizeof (char *), by_name, NULL);
  return g_strjoinv (", ", (char **) names);
}

static void
run_request (Client *c, JsonObject *request, JsonNode *req)
{
  TdControl *control = c->control;
  JsonNode *cmd_node = json_object_get_member (request, "cmd");
  const char *name;
  Command *cmd;
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GError) error = NULL;

  if (!cmd_node || !JSON_NODE_HOLDS_VALUE (cmd_node) ||
      json_node_get_value_type (cmd_node) != G_TYPE_STRING) {
    send_error (c, req, "the request has no \"cmd\" string");
    return;
  }
  name = json_node_get_string (cmd_node);
  if (!(cmd = g_hash_table_lookup (control->commands, name))) {
    g_autofree char *known = known_commands (control);
    g_autofree char *msg = g_strdup_printf ("unknown command \"%s\" (known: %s)", name, known);
    send_error (c, req, msg);
    return;
  }
  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "ok");
  json_builder_add_boolean_value (b, TRUE);
  if (req) {
    json_builder_set_member_name (b, "req");
    json_builder_add_value (b, json_node_copy (req));
  }
  if (!cmd->command (request, b, cmd->user_data, &error)) {
    send_error (c, req, error->message);
    return;
  }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  send_node (c, root);
}

static void
handle_line (Client *c, const char *line, gsize len)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonNode *root;
  JsonObject *request;

  if (len == 0 || strspn (line, " \t\r") == len)
    return;   /* blank lines are no requests */
  if (memchr (line, '\0', len) || !g_utf8_validate_len (line, len, NULL)) {
    send_error (c, NULL, "malformed request: not UTF-8 text");
    return;
  }
  if (!json_parser_load_from_data (parser, line, len, &error)) {
    g_autofree char *msg = g_strdup_printf ("malformed JSON: %s", error->message);
    send_error (c, NULL, msg);
    return;
  }
  root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    send_error (c, NULL, "a request is one JSON object a line");
    return;
  }
  request = json_node_get_object (root);
  run_request (c, request, json_object_get_member (request, "req"));
}

/* Every whole line read so far; FALSE if the client is to be closed. */
static gboolean
handle_input (Client *c)
{
  guint8 *nl;

  while (c->control && !c->closing && (nl = memchr (c->in->data, '\n', c->in->len))) {
    gsize len = nl - c->in->data;
    *nl = '\0';
    handle_line (c, (const char *) c->in->data, len);
    g_byte_array_remove_range (c->in, 0, len + 1);
  }
  if (c->control && c->in->len > TD_CONTROL_MAX_LINE) {
    g_autofree char *msg = g_strdup_printf ("request line longer than %d bytes; closing",
                                            TD_CONTROL_MAX_LINE);
    send_error (c, NULL, msg);
    c->closing = TRUE;
    write_next (c);
  }
  return c->control && !c->closing;
}

static void read_next (Client *c);

static void
on_read (GObject *stream, GAsyncResult *res, gpointer data)
{
  Client *c = data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (stream), res, &error);

  if (!c->control) {
    /* closed meanwhile */
  } else if (n <= 0) {
    /* The client is done (EOF) or gone: what it asked is still answered. */
    c->closing = TRUE;
    write_next (c);
  } else {
    g_byte_array_append (c->in, c->chunk, n);
    if (handle_input (c))
      read_next (c);
  }
  client_unref (c);
}

static void
read_next (Client *c)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (c->conn));
  g_input_stream_read_async (in, c->chunk, sizeof c->chunk, G_PRIORITY_DEFAULT, c->cancel,
                             on_read, client_ref (c));
}

static gboolean
on_incoming (GSocketService *service, GSocketConnection *conn, GObject *source, gpointer data)
{
  TdControl *control = data;
  static guint serial;
  Client *c;

  if (control->clients->len >= TD_CONTROL_MAX_CLIENTS) {
    /* One short line into a fresh socket's empty buffer cannot block. */
    static const char busy[] = "{\"ok\":false,\"error\":\"too many control clients\"}\n";
    GSocket *socket = g_socket_connection_get_socket (conn);
    g_socket_set_blocking (socket, FALSE);
    (void) g_socket_send (socket, busy, sizeof busy - 1, NULL, NULL);
    g_warning ("control socket: %d clients already; refusing one more", TD_CONTROL_MAX_CLIENTS);
    g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    return TRUE;
  }
  c = g_new0 (Client, 1);
  g_ref_count_init (&c->ref);
  c->control = control;
  c->serial = ++serial;
  c->conn = g_object_ref (conn);
  c->cancel = g_cancellable_new ();
  c->in = g_byte_array_new ();
  g_queue_init (&c->out);
  g_ptr_array_add (control->clients, c);
  read_next (c);
  return TRUE;
}

/* ---- the socket file ----------------------------------------------------- */

/* "FILE:LINE: [control] socket PATH" for messages. */
static char *
where (const TdConfig *config, const char *path)
{
  if (config->control_socket_line)
    return g_strdup_printf ("%s:%u: [control] socket %s", config->path,
                            config->control_socket_line, path);
  return g_strdup_printf ("[control] socket %s (the default)", path);
}

/* A socket file left by a tandem that died is replaced; a socket someone
 * still listens on, or any other file, is not. */
static gboolean
clear_stale (const TdConfig *config, const char *path, GError **error)
{
  g_autofree char *at = where (config, path);
  g_autoptr (GSocket) probe = NULL;
  g_autoptr (GSocketAddress) addr = NULL;
  struct stat st;

  if (lstat (path, &st) != 0) {
    if (errno == ENOENT)
      return TRUE;
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "%s: %s", at,
                 g_strerror (errno));
    return FALSE;
  }
  if (!S_ISSOCK (st.st_mode)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                 "%s: the file exists and is no socket; not replacing it", at);
    return FALSE;
  }
  probe = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                        error);
  if (!probe)
    return FALSE;
  addr = g_unix_socket_address_new (path);
  if (g_socket_connect (probe, addr, NULL, NULL)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                 "%s: another process (another tandem?) is listening on it", at);
    return FALSE;
  }
  g_info ("%s: removing the stale socket file of an earlier run", at);
  if (unlink (path) != 0 && errno != ENOENT) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "%s: cannot remove it: %s",
                 at, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

static gboolean
listen_on (TdControl *control, const TdConfig *config, GError **error)
{
  const char *path = control->path;
  g_autofree char *at = where (config, path);
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (path);
  g_autoptr (GError) local = NULL;

  if (!clear_stale (config, path, error))
    return FALSE;
  control->service = g_socket_service_new ();
  /* Connections queue here until the main loop accepts them. */
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (control->service), TD_CONTROL_MAX_CLIENTS);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (control->service), addr,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, NULL,
                                      NULL, &local)) {
    g_set_error (error, G_IO_ERROR, local->code, "%s: cannot listen: %s", at, local->message);
    return FALSE;
  }
  /* The operator's group may connect, nobody else. */
  if (chmod (path, 0660) != 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "%s: chmod: %s", at,
                 g_strerror (errno));
    control->bound = TRUE;   /* removed by td_control_free */
    return FALSE;
  }
  control->bound = TRUE;
  g_signal_connect (control->service, "incoming", G_CALLBACK (on_incoming), control);
  g_socket_service_start (control->service);
  g_message ("control socket listening on %s", path);
  return TRUE;
}

/* ---- the core's commands --------------------------------------------------- */

gboolean
td_control_get_string (JsonObject *request, const char *key, const char **out, GError **error)
{
  JsonNode *node = json_object_get_member (request, key);

  if (!node || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 "the request needs \"%s\", a string", key);
    return FALSE;
  }
  *out = json_node_get_string (node);
  return TRUE;
}

gboolean
td_plugin_json_get_string (JsonObject *request, const char *key, const char **out, GError **error)
{
  return td_control_get_string (request, key, out, error);
}

void
td_plugin_json_add_time (JsonBuilder *b, gint64 us)
{
  g_autoptr (GDateTime) t = NULL;
  g_autofree char *text = NULL;

  if (!us) {
    json_builder_add_null_value (b);
    return;
  }
  t = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  text = g_date_time_format (t, "%Y-%m-%dT%H:%M:%SZ");
  json_builder_add_string_value (b, text);
}

static void
add_call (JsonBuilder *b, const TdCallInfo *info)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, info->id);
  if (info->room) {
    json_builder_set_member_name (b, "room");
    json_builder_add_string_value (b, info->room);
  }
  json_builder_set_member_name (b, "answered_at");
  td_plugin_json_add_time (b, info->answered_us);
  json_builder_set_member_name (b, "parties");
  json_builder_begin_array (b);
  for (guint i = 0; i < info->parties->len; i++) {
    const TdPartyInfo *p = &g_array_index (info->parties, TdPartyInfo, i);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "user");
    if (p->user)
      json_builder_add_string_value (b, p->user);
    else
      json_builder_add_null_value (b);
    json_builder_set_member_name (b, "leg");
    json_builder_add_string_value (b, p->leg_id);
    json_builder_set_member_name (b, "state");
    json_builder_add_string_value (b, td_party_state_name (p->state));
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
}

void
td_plugin_json_add_party (JsonBuilder *b, const TdLeg *leg)
{
  g_autofree char *id = td_leg_get_operator_id (leg);
  const char *user = td_leg_get_user (leg);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "user");
  if (user)
    json_builder_add_string_value (b, user);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "leg");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, td_leg_get_state (leg));
  json_builder_end_object (b);
}

static gboolean
cmd_calls (JsonObject *request, JsonBuilder *reply, gpointer data, GError **error)
{
  TdControl *control = data;
  g_autoptr (GPtrArray) calls = td_calls_snapshot (control->calls);

  json_builder_set_member_name (reply, "calls");
  json_builder_begin_array (reply);
  for (guint i = 0; i < calls->len; i++)
    add_call (reply, g_ptr_array_index (calls, i));
  json_builder_end_array (reply);
  return TRUE;
}

static gboolean
cmd_hangup (JsonObject *request, JsonBuilder *reply, gpointer data, GError **error)
{
  TdControl *control = data;
  const char *id;

  if (!td_control_get_string (request, "id", &id, error) ||
      !td_calls_hangup_id (control->calls, id, error))
    return FALSE;
  json_builder_set_member_name (reply, "id");
  json_builder_add_string_value (reply, id);
  return TRUE;
}

/* ---- life cycle ------------------------------------------------------------ */

void
td_control_add_command (TdControl *control, const char *name, TdControlCommand command,
                        gpointer user_data)
{
  Command *cmd = g_new0 (Command, 1);
  cmd->command = command;
  cmd->user_data = user_data;
  g_hash_table_insert (control->commands, g_strdup (name), cmd);
}

TdControl *
td_control_new (const TdConfig *config, TdCallContext *calls, GError **error)
{
  g_autoptr (TdControl) control = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *dir = NULL;

  if (!config->control_socket)
    return NULL;
  /* The default's folder is the installed service's (systemd
   * RuntimeDirectory=tandem): without it, no socket and no complaint. */
  dir = g_path_get_dirname (config->control_socket);
  if (!config->control_socket_line && !g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_info ("no control socket: %s does not exist (set [control] socket)", dir);
    return NULL;
  }
  control = g_new0 (TdControl, 1);
  control->path = g_strdup (config->control_socket);
  control->calls = calls;
  control->clients = g_ptr_array_new_with_free_func ((GDestroyNotify) client_unref);
  control->commands = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  td_control_add_command (control, "calls", cmd_calls, control);
  td_control_add_command (control, "hangup", cmd_hangup, control);
  if (!listen_on (control, config, &local)) {
    if (config->control_socket_line) {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
    g_warning ("no control socket: %s", local->message);
    return NULL;
  }
  return g_steal_pointer (&control);
}

void
td_control_free (TdControl *control)
{
  if (!control)
    return;
  if (control->service) {
    g_socket_service_stop (control->service);
    g_socket_listener_close (G_SOCKET_LISTENER (control->service));
    g_clear_object (&control->service);
  }
  if (control->bound)
    unlink (control->path);
  while (control->clients->len)
    client_close (g_ptr_array_index (control->clients, 0));
  g_ptr_array_unref (control->clients);
  g_hash_table_unref (control->commands);
  g_free (control->path);
  g_free (control);
}
