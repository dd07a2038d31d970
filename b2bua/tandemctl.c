/* tandemctl: the operator's tool — one request over tandem's control
 * socket (README.md, "Control socket and tandemctl"), its answer printed
 * as a table, or as the JSON document itself with --json.
 *
 * Exit codes: 0 the command succeeded, 1 tandem refused it (its message on
 * stderr), 2 a usage error or no answer from the socket. */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SOCKET "/run/tandem/control.sock"
#define TIMEOUT_SECONDS 5

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2 };

typedef struct {
  const char *name;           /* as typed: "calls", "conference" */
  const char *sub;            /* its second word ("list"), or NULL */
  const char *wire;           /* the request's "cmd" */
  guint n_args;
  const char *args;           /* for the usage text */
  /* Fill the request's members beyond "cmd" from argv. */
  void (*request) (JsonBuilder *b, char **argv);
  /* Print a successful response for people. */
  void (*print) (JsonObject *response);
} Command;

/* ---- calls --------------------------------------------------------------- */

static const char *
string_or (JsonObject *o, const char *key, const char *none)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return none;
  return json_node_get_string (n);
}

static void
print_calls (JsonObject *response)
{
  JsonNode *node = json_object_get_member (response, "calls");
  JsonArray *calls = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  guint n = calls ? json_array_get_length (calls) : 0;

  if (!n) {
    g_print ("no calls\n");
    return;
  }
  g_print ("%-8s %-20s %s\n", "CALL", "ANSWERED", "PARTIES");
  for (guint i = 0; i < n; i++) {
    JsonObject *call = json_array_get_object_element (calls, i);
    JsonNode *pn = json_object_get_member (call, "parties");
    JsonArray *parties = pn && JSON_NODE_HOLDS_ARRAY (pn) ? json_node_get_array (pn) : NULL;
    g_autoptr (GString) line = g_string_new (NULL);

    for (guint j = 0; parties && j < json_array_get_length (parties); j++) {
      JsonObject *p = json_array_get_object_element (parties, j);
      if (!p)
        continue;
      g_string_append_printf (line, "%s%s(%s):%s", line->len ? " " : "",
                              string_or (p, "user", "-"), string_or (p, "leg", "?"),
                              string_or (p, "state", "?"));
    }
    if (json_object_get_member (call, "room"))
      g_string_append_printf (line, " in room %s", string_or (call, "room", "?"));
    g_print ("%-8s %-20s %s\n", string_or (call, "id", "?"),
             string_or (call, "answered_at", "-"), line->str);
  }
}

/* ---- hangup -------------------------------------------------------------- */

static void
request_id (JsonBuilder *b, char **argv)
{
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, argv[0]);
}

static void
print_hangup (JsonObject *response)
{
  g_print ("hung up %s\n", string_or (response, "id", "?"));
}

/* ---- bridge and conference ----------------------------------------------- */

static void
request_bridge (JsonBuilder *b, char **argv)
{
  json_builder_set_member_name (b, "calls");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, argv[0]);
  json_builder_add_string_value (b, argv[1]);
  json_builder_end_array (b);
}

static void
parties_line (GString *line, JsonObject *o)
{
  JsonNode *pn = json_object_get_member (o, "parties");
  JsonArray *parties = pn && JSON_NODE_HOLDS_ARRAY (pn) ? json_node_get_array (pn) : NULL;

  for (guint j = 0; parties && j < json_array_get_length (parties); j++) {
    JsonObject *p = json_array_get_object_element (parties, j);
    if (p)
      g_string_append_printf (line, "%s%s(%s):%s", line->len ? " " : "",
                              string_or (p, "user", "-"), string_or (p, "leg", "?"),
                              string_or (p, "state", "?"));
  }
}

/* The room's id alone: what a script takes from `bridge`. */
static void
print_bridge (JsonObject *response)
{
  g_print ("%s\n", string_or (response, "room", "?"));
}

static void
print_rooms (JsonObject *response)
{
  JsonNode *node = json_object_get_member (response, "rooms");
  JsonArray *rooms = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  guint n = rooms ? json_array_get_length (rooms) : 0;

  if (!n) {
    g_print ("no rooms\n");
    return;
  }
  g_print ("%-8s %-20s %s\n", "ROOM", "CREATED", "PARTIES");
  for (guint i = 0; i < n; i++) {
    JsonObject *room = json_array_get_object_element (rooms, i);
    g_autoptr (GString) line = g_string_new (NULL);
    gint64 dialing;

    if (!room)
      continue;
    parties_line (line, room);
    dialing = json_object_get_int_member_with_default (room, "dialing", 0);
    if (dialing)
      g_string_append_printf (line, " (+%" G_GINT64_FORMAT " ringing)", dialing);
    g_print ("%-8s %-20s %s\n", string_or (room, "id", "?"), string_or (room, "created_at", "-"),
             line->str);
  }
}

static void
request_room_target (JsonBuilder *b, char **argv)
{
  json_builder_set_member_name (b, "room");
  json_builder_add_string_value (b, argv[0]);
  json_builder_set_member_name (b, "target");
  json_builder_add_string_value (b, argv[1]);
}

static void
print_add (JsonObject *response)
{
  g_print ("room %s: dialling (call %s, leg %s)\n", string_or (response, "room", "?"),
           string_or (response, "call", "?"), string_or (response, "leg", "-"));
}

static void
request_room_leg (JsonBuilder *b, char **argv)
{
  json_builder_set_member_name (b, "room");
  json_builder_add_string_value (b, argv[0]);
  json_builder_set_member_name (b, "leg");
  json_builder_add_string_value (b, argv[1]);
}

static void
print_kick (JsonObject *response)
{
  g_print ("room %s: hung up %s\n", string_or (response, "room", "?"),
           string_or (response, "leg", "?"));
}

static const Command commands[] = {
  { "calls", NULL, "calls", 0, "", NULL, print_calls },
  { "hangup", NULL, "hangup", 1, " ID", request_id, print_hangup },
  { "bridge", NULL, "bridge", 2, " CALL1 CALL2", request_bridge, print_bridge },
  { "conference", "list", "conference-list", 0, "", NULL, print_rooms },
  { "conference", "add", "conference-add", 2, " ROOM TARGET", request_room_target, print_add },
  { "conference", "kick", "conference-kick", 2, " ROOM LEG", request_room_leg, print_kick },
};

/* ---- the socket ---------------------------------------------------------- */

static char *
request_line (const Command *cmd, char **argv)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "cmd");
  json_builder_add_string_value (b, cmd->wire);
  if (cmd->request)
    cmd->request (b, argv);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  return g_strconcat (text, "\n", NULL);
}

/* Sends the request, returns the response line; NULL with *error. */
static char *
exchange (const char *path, const char *line, GError **error)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (path);
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GDataInputStream) in = NULL;
  g_autoptr (GError) local = NULL;
  char *response;

  g_socket_client_set_timeout (client, TIMEOUT_SECONDS);
  conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (addr), NULL, &local);
  if (!conn) {
    g_set_error (error, G_IO_ERROR, local->code, "cannot connect to %s: %s", path,
                 local->message);
    return NULL;
  }
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), line,
                                  strlen (line), NULL, NULL, &local)) {
    g_set_error (error, G_IO_ERROR, local->code, "%s: %s", path, local->message);
    return NULL;
  }
  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  g_buffered_input_stream_set_buffer_size (G_BUFFERED_INPUT_STREAM (in), 64 * 1024);
  response = g_data_input_stream_read_line (in, NULL, NULL, &local);
  if (!response) {
    g_set_error (error, G_IO_ERROR, local ? local->code : G_IO_ERROR_CLOSED,
                 "%s: no answer: %s", path, local ? local->message : "tandem closed the socket");
    return NULL;
  }
  return response;
}

static int
usage (GOptionContext *ctx, const char *problem)
{
  g_autofree char *help = g_option_context_get_help (ctx, TRUE, NULL);
  g_printerr ("tandemctl: %s\n%s", problem, help);
  return EXIT_USAGE;
}

/* The command argv names (one word, or two: "conference list"). */
static const Command *
find_command (int argc, char **argv)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, argv[1]) == 0 &&
        (!commands[i].sub || (argc > 2 && strcmp (commands[i].sub, argv[2]) == 0)))
      return &commands[i];
  return NULL;
}

static char *
commands_summary (void)
{
  g_autoptr (GString) s = g_string_new ("Commands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (s, "  %s%s%s%s\n", commands[i].name, commands[i].sub ? " " : "",
                            commands[i].sub ? commands[i].sub : "", commands[i].args);
  g_string_append_printf (s, "\nThe socket: --socket, else $TANDEM_CONTROL_SOCKET, else %s.",
                          DEFAULT_SOCKET);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

int
main (int argc, char **argv)
{
  g_autofree char *socket_path = NULL;
  gboolean json = FALSE;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) ctx = g_option_context_new ("COMMAND [ARGS] - control a running tandem");
  g_autofree char *summary = commands_summary ();
  GOptionEntry entries[] = {
    { "socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path, "tandem's control socket", "PATH" },
    { "json", 'j', 0, G_OPTION_ARG_NONE, &json, "Print the response as JSON", NULL },
    { NULL }
  };
  const Command *cmd;
  g_autofree char *line = NULL, *response = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *obj;
  JsonNode *ok;
  guint words;

  setlocale (LC_ALL, "");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx, summary);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return usage (ctx, error->message);
  if (argc < 2)
    return usage (ctx, "no command given");
  if (!(cmd = find_command (argc, argv))) {
    g_autofree char *msg = g_strdup_printf ("unknown command \"%s%s%s\"", argv[1],
                                            argc > 2 && g_str_equal (argv[1], "conference") ? " " : "",
                                            argc > 2 && g_str_equal (argv[1], "conference") ? argv[2] : "");
    return usage (ctx, msg);
  }
  words = cmd->sub ? 3 : 2;
  if ((guint) argc - words != cmd->n_args) {
    g_autofree char *msg = g_strdup_printf ("usage: tandemctl %s%s%s%s", cmd->name,
                                            cmd->sub ? " " : "", cmd->sub ? cmd->sub : "", cmd->args);
    return usage (ctx, msg);
  }
  if (!socket_path)
    socket_path = g_strdup (g_getenv ("TANDEM_CONTROL_SOCKET") ? g_getenv ("TANDEM_CONTROL_SOCKET")
                                                               : DEFAULT_SOCKET);
  line = request_line (cmd, argv + words);
  if (!(response = exchange (socket_path, line, &error))) {
    g_printerr ("tandemctl: %s\n", error->message);
    return EXIT_USAGE;
  }
  if (!json_parser_load_from_data (parser, response, -1, &error) ||
      !(root = json_parser_get_root (parser)) || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_printerr ("tandemctl: %s: not a JSON response: %s\n", socket_path, response);
    return EXIT_USAGE;
  }
  obj = json_node_get_object (root);
  ok = json_object_get_member (obj, "ok");
  if (json)
    g_print ("%s\n", response);
  if (!ok || !JSON_NODE_HOLDS_VALUE (ok) || !json_node_get_boolean (ok)) {
    g_printerr ("tandemctl: %s\n", string_or (obj, "error", "tandem refused the request"));
    return EXIT_REFUSED;
  }
  if (!json)
    cmd->print (obj);
  return EXIT_SUCCESS;
}
