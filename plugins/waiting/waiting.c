/* waiting: call waiting (flow 13).
 *
 * Per user:
 *   call-waiting = true    (default) a second call rings a user already in a
 *                          call; the phone plays its waiting tone, and holding
 *                          one call to answer the other is the phone's
 *                          re-INVITE, which the core relays.
 *   call-waiting = false   a user already in a call is busy: 486, and
 *                          forwarding on busy applies.
 */
#define G_LOG_DOMAIN "tandem-waiting"

#include "td-plugin.h"

static gboolean
waiting_enabled (const TdUser *user)
{
  const char *v = td_user_get (user, "call-waiting");
  return !v || g_ascii_strcasecmp (v, "false") != 0;
}

static TdHookResult
on_routing (const TdHookArgs *args, gpointer data)
{
  TdPluginHost *host = td_call_get_host (args->call);
  const TdConfig *config = td_plugin_host_config (host);
  const char *callee = td_call_get_callee (args->call);
  const TdUser *user = config ? td_config_lookup_user (config, callee) : NULL;

  if (!user || waiting_enabled (user) || td_plugin_host_user_calls (host, callee) == 0)
    return TD_HOOK_CONTINUE;
  g_info ("call %s: %s is in a call and has call waiting off: busy", td_call_get_id (args->call),
          callee);
  td_call_reject (args->call, 486);
  return TD_HOOK_HANDLED;
}

static gboolean
waiting_init (TdPluginHost *host, gpointer *state, GError **error)
{
  td_plugin_host_add_user_key (host, "call-waiting");
  td_plugin_host_add_hook (host, TD_HOOK_CALL_ROUTING, on_routing, NULL);
  return TRUE;
}

TD_PLUGIN_DEFINE ("waiting", waiting_init, NULL)
