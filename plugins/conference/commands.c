/* conference: the operator's commands on the control socket (README,
 * "Control socket and tandemctl"):
 *   bridge           {"calls": ["c1", "c2"]}          -> {"room": "r1", "parties": [...]}
 *   conference-list  {}                               -> {"rooms": [{"id", "created_at", "parties"}]}
 *   conference-add   {"room": "r1", "target": "carol"} -> {"room": "r1", "call": "c9", "leg": "l9"}
 *                    (the call ringing the target in, and its first branch)
 *   conference-kick  {"room": "r1", "leg": "l4"}       -> {"room": "r1", "leg": "l4"}
 * Each checks everything it is given before it changes anything, so a bad
 * request touches no call. */
#define G_LOG_DOMAIN "tandem-conference"

#include "conference.h"

#include <gio/gio.h>

static void
add_parties (JsonBuilder *reply, TdRoom *room)
{
  g_autoptr (GPtrArray) legs = td_room_get_legs (room);

  json_builder_set_member_name (reply, "parties");
  json_builder_begin_array (reply);
  for (guint i = 0; i < legs->len; i++)
    td_plugin_json_add_party (reply, g_ptr_array_index (legs, i));
  json_builder_end_array (reply);
}

static TdRoom *
find_room (Conference *conf, JsonObject *request, GError **error)
{
  const char *id;
  TdRoom *room;

  if (!td_plugin_json_get_string (request, "room", &id, error))
    return NULL;
  if (!(room = td_plugin_host_find_room (conf->host, id)))
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no live room %s", id);
  return room;
}

/* The two calls of "calls": ["c1", "c2"]. */
static gboolean
two_calls (Conference *conf, JsonObject *request, TdCall **first, TdCall **second, GError **error)
{
  JsonNode *node = json_object_get_member (request, "calls");
  JsonArray *ids = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  TdCall *calls[2] = { NULL, NULL };

  if (!ids || json_array_get_length (ids) != 2) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 "the request needs \"calls\": an array of two call ids");
    return FALSE;
  }
  for (guint i = 0; i < 2; i++) {
    JsonNode *id = json_array_get_element (ids, i);
    if (!JSON_NODE_HOLDS_VALUE (id) || json_node_get_value_type (id) != G_TYPE_STRING) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "\"calls\" holds call ids: strings such as \"c7\"");
      return FALSE;
    }
    if (!(calls[i] = td_plugin_host_find_call (conf->host, json_node_get_string (id), error)))
      return FALSE;
  }
  *first = calls[0];
  *second = calls[1];
  return TRUE;
}

static gboolean
cmd_bridge (JsonObject *request, JsonBuilder *reply, gpointer data, GError **error)
{
  Conference *conf = data;
  TdCall *first, *second;
  TdRoom *room;

  if (!two_calls (conf, request, &first, &second, error))
    return FALSE;
  if (td_call_get_room (first) || td_call_get_room (second)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 "a party of that call is in a room already (see conference list)");
    return FALSE;
  }
  if (!(room = td_room_bridge (first, second, error)))
    return FALSE;
  g_message ("room %s: made by the operator from two calls", td_room_get_id (room));
  json_builder_set_member_name (reply, "room");
  json_builder_add_string_value (reply, td_room_get_id (room));
  add_parties (reply, room);
  return TRUE;
}

static gboolean
cmd_list (JsonObject *request, JsonBuilder *reply, gpointer data, GError **error)
{
  Conference *conf = data;
  g_autoptr (GPtrArray) rooms = td_plugin_host_rooms (conf->host);

  json_builder_set_member_name (reply, "rooms");
  json_builder_begin_array (reply);
  for (guint i = 0; i < rooms->len; i++) {
    TdRoom *room = g_ptr_array_index (rooms, i);
    json_builder_begin_object (reply);
    json_builder_set_member_name (reply, "id");
    json_builder_add_string_value (reply, td_room_get_id (room));
    json_builder_set_member_name (reply, "created_at");
    td_plugin_json_add_time (reply, td_room_get_created (room));
    add_parties (reply, room);
    json_builder_set_member_name (reply, "dialing");
    json_builder_add_int_value (reply, td_room_n_dialing (room));
    json_builder_end_object (reply);
  }
  json_builder_end_array (reply);
  return TRUE;
}

static gboolean
cmd_add (JsonObject *request, JsonBuilder *reply, gpointer data, GError **error)
{
  Conference *conf = data;
  TdRoom *room = find_room (conf, request, error);
  g_autofree char *call_id = NULL;
  const char *target;
  TdCall *call;
  TdLeg *leg;

  if (!room || !td_plugin_json_get_string (request, "target", &target, error) ||
      !conference_has_room_for (conf, room, 1, error))
    return FALSE;
  if (!(call = td_room_dial (room, target, error)))
    return FALSE;
  g_message ("room %s: the operator dials %s in", td_room_get_id (room), target);
  call_id = td_call_get_operator_id (call);
  json_builder_set_member_name (reply, "room");
  json_builder_add_string_value (reply, td_room_get_id (room));
  json_builder_set_member_name (reply, "call");
  json_builder_add_string_value (reply, call_id);
  if ((leg = td_call_get_branch (call))) {
    g_autofree char *leg_id = td_leg_get_operator_id (leg);
    json_builder_set_member_name (reply, "leg");
    json_builder_add_string_value (reply, leg_id);
  }
  return TRUE;
}

static gboolean
cmd_kick (JsonObject *request, JsonBuilder *reply, gpointer data, GError **error)
{
  Conference *conf = data;
  TdRoom *room = find_room (conf, request, error);
  const char *id;
  TdLeg *leg;

  if (!room || !td_plugin_json_get_string (request, "leg", &id, error) ||
      !(leg = td_plugin_host_find_leg (conf->host, id, error)) ||
      !td_room_kick (room, leg, error))
    return FALSE;
  json_builder_set_member_name (reply, "room");
  json_builder_add_string_value (reply, td_room_get_id (room));
  json_builder_set_member_name (reply, "leg");
  json_builder_add_string_value (reply, id);
  return TRUE;
}

void
conference_add_commands (Conference *conf)
{
  td_plugin_host_add_command (conf->host, "bridge", cmd_bridge, conf);
  td_plugin_host_add_command (conf->host, "conference-list", cmd_list, conf);
  td_plugin_host_add_command (conf->host, "conference-add", cmd_add, conf);
  td_plugin_host_add_command (conf->host, "conference-kick", cmd_kick, conf);
}
