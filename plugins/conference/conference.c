/* conference: the phone's side of rooms (see conference.h).
 *
 *  - `[conference] factory = conference`: an INVITE to
 *    sip:conference@DOMAIN is answered by tandem itself, the focus of a new
 *    room (its Contact carries ;isfocus), with the caller as its first party.
 *  - A REFER in a room's dialog pulls someone in (RFC 4579 §5.5):
 *    with ?Replaces= naming the referrer's other dialog (a phone's "merge"
 *    of its held and active calls), that dialog's other party joins at once,
 *    without ringing, and the replaced dialog is hung up; without, tandem
 *    dials the Refer-To target into the room. The referrer hears how it went
 *    in NOTIFYs (message/sipfrag), as for a transfer.
 *  - `[conference] max-parties` (4–32, default 10) bounds every room: no
 *    REFER or conference-add brings in more (a bridge makes four at most). */
#define G_LOG_DOMAIN "tandem-conference"

#include "conference.h"

#include <string.h>

#define DATA_KEY "conference"   /* td_call_set_data: a dialled call's referrer */


guint
conference_max_parties (Conference *conf)
{
  const TdConfig *config = td_plugin_host_config (conf->host);
  const char *value = config ? td_config_plugin_value (config, "conference", "max-parties", NULL)
                             : NULL;
  guint64 n;

  if (!value || !g_ascii_string_to_unsigned (value, 10, 4, CONFERENCE_MAX_PARTIES_LIMIT, &n, NULL))
    return CONFERENCE_DEFAULT_MAX_PARTIES;
  return (guint) n;
}

gboolean
conference_has_room_for (Conference *conf, TdRoom *room, guint more, GError **error)
{
  guint max = conference_max_parties (conf);

  if (td_room_n_parties (room) + td_room_n_dialing (room) + more > max) {
    g_set_error (error, TD_CALL_ERROR, 486, "room %s is full (%u parties at most)",
                 td_room_get_id (room), max);
    return FALSE;
  }
  return TRUE;
}

/* ---- configuration ------------------------------------------------------------------- */

static gboolean
check_factory (const char *value, GError **error)
{
  for (const char *c = value; *c; c++)
    if (!g_ascii_isalnum (*c) && !strchr ("-_.!~*'()", *c)) {
      g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE,
                   "\"%s\" is no user part of a SIP URI (letters, digits, -_.!~*'())", value);
      return FALSE;
    }
  if (!*value) {
    g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE, "empty: leave it out for no factory");
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_max_parties (const char *value, GError **error)
{
  guint64 n;

  if (!g_ascii_string_to_unsigned (value, 10, 4, CONFERENCE_MAX_PARTIES_LIMIT, &n, NULL)) {
    g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE,
                 "\"%s\": a number of parties from 4 to %d", value, CONFERENCE_MAX_PARTIES_LIMIT);
    return FALSE;
  }
  return TRUE;
}

/* ---- the factory --------------------------------------------------------------------- */

static TdHookResult
on_routing (const TdHookArgs *args, gpointer data)
{
  Conference *conf = data;
  g_autoptr (GError) error = NULL;
  TdRoom *room;

  if (!conf->factory || g_strcmp0 (td_call_get_callee (args->call), conf->factory) != 0)
    return TD_HOOK_CONTINUE;
  if (!(room = td_room_answer (args->call, &error))) {
    g_info ("call %s to the conference factory: %s", td_call_get_id (args->call), error->message);
    td_call_reject (args->call, error->code == 488 ? 488 : 480);
    return TD_HOOK_HANDLED;
  }
  g_message ("room %s: made by %s calling the factory", td_room_get_id (room),
             td_call_get_caller (args->call));
  return TD_HOOK_HANDLED;
}

/* ---- REFER to the focus -------------------------------------------------------------- */

/* Refer-To with Replaces: the referrer's other dialog's far party joins. */
static void
refer_replaces (Conference *conf, const TdHookArgs *args, TdRoom *room)
{
  TdLeg *replaced = td_leg_find_replaced (args->leg, args->refer->replaces);
  TdLeg *party = replaced ? td_leg_get_peer (replaced) : NULL;
  g_autoptr (GError) error = NULL;

  /* Only the referrer's own dialog, and one that is up (RFC 3891 §3). */
  if (!replaced || !td_leg_is_up (replaced) || !td_leg_is_up (party) ||
      g_strcmp0 (td_leg_get_user (replaced), td_leg_get_user (args->leg)) != 0) {
    td_leg_refuse_refer (args->leg, 481);
    return;
  }
  if (!conference_has_room_for (conf, room, 1, &error)) {
    td_leg_refuse_refer (args->leg, 486);
    return;
  }
  td_leg_accept_refer (args->leg);
  if (!td_room_add_leg (room, party, &error)) {
    g_info ("room %s: %s", td_room_get_id (room), error->message);
    td_leg_notify_refer (args->leg, error->code >= 400 && error->code < 700 ? error->code : 500);
    return;
  }
  td_leg_notify_refer (args->leg, 200);
  /* The referrer's dialog with that party is replaced by the room's. */
  td_leg_hangup (replaced);
}

static void
refer_dial (Conference *conf, const TdHookArgs *args, TdRoom *room)
{
  g_autoptr (GError) error = NULL;
  TdCall *call;

  if (!conference_has_room_for (conf, room, 1, &error)) {
    td_leg_refuse_refer (args->leg, 486);
    return;
  }
  td_leg_accept_refer (args->leg);
  if (!(call = td_room_dial (room, args->refer->refer_to, &error))) {
    g_info ("room %s: %s", td_room_get_id (room), error->message);
    td_leg_notify_refer (args->leg, error->code >= 400 && error->code < 700 ? error->code : 500);
    return;
  }
  td_call_set_data (call, DATA_KEY, td_leg_ref (args->leg), (GDestroyNotify) td_leg_unref);
}

static TdHookResult
on_refer (const TdHookArgs *args, gpointer data)
{
  Conference *conf = data;
  TdRoom *room = td_call_get_room (args->call);

  if (!room)
    return TD_HOOK_CONTINUE;
  if (args->refer->replaces)
    refer_replaces (conf, args, room);
  else
    refer_dial (conf, args, room);
  return TD_HOOK_HANDLED;
}

/* A call dialled for a REFER: its referrer hears the outcome. */
static TdHookResult
on_answered (const TdHookArgs *args, gpointer data)
{
  TdLeg *referrer = td_call_get_data (args->call, DATA_KEY);

  if (referrer) {
    if (td_leg_is_up (referrer))
      td_leg_notify_refer (referrer, 200);
    td_call_set_data (args->call, DATA_KEY, NULL, NULL);
  }
  return TD_HOOK_CONTINUE;
}

static TdHookResult
on_ended (const TdHookArgs *args, gpointer data)
{
  TdLeg *referrer = td_call_get_data (args->call, DATA_KEY);

  if (referrer && td_leg_is_up (referrer))
    td_leg_notify_refer (referrer, args->status >= 300 ? args->status : 487);
  return TD_HOOK_CONTINUE;
}

/* ---- life cycle ---------------------------------------------------------------------- */

static void
conference_close (TdPluginHost *host, gpointer state)
{
  Conference *conf = state;

  if (!conf)
    return;
  g_free (conf->factory);
  g_free (conf);
}

static gboolean
conference_init (TdPluginHost *host, gpointer *state, GError **error)
{
  const TdConfig *config = td_plugin_host_config (host);
  const char *factory = config ? td_config_plugin_value (config, "conference", "factory", NULL)
                               : NULL;
  Conference *conf = g_new0 (Conference, 1);

  *state = conf;
  conf->host = host;
  td_plugin_host_add_key (host, "factory", TD_PLUGIN_KEY_RESTART_ONLY, check_factory);
  td_plugin_host_add_key (host, "max-parties", TD_PLUGIN_KEY_RELOADABLE, check_max_parties);
  if (factory && *factory && check_factory (factory, NULL)) {
    conf->factory = g_strdup (factory);
    td_plugin_host_add_service (host, factory);
  }
  td_plugin_host_add_hook (host, TD_HOOK_CALL_ROUTING, on_routing, conf);
  td_plugin_host_add_hook (host, TD_HOOK_REFER, on_refer, conf);
  td_plugin_host_add_hook (host, TD_HOOK_CALL_ANSWERED, on_answered, conf);
  td_plugin_host_add_hook (host, TD_HOOK_CALL_ENDED, on_ended, conf);
  conference_add_commands (conf);
  return TRUE;
}

TD_PLUGIN_DEFINE ("conference", conference_init, conference_close)
