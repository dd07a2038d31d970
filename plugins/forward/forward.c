/* forward: call forwarding on busy and on no answer (flows 10 and 11).
 *
 * Per user:
 *   forward-busy = carol                   the callee is busy (486/600, or
 *                                          busy by call waiting): call carol
 *   forward-no-answer = sip:vm@pbx.test     nobody answered: call this instead
 *   forward-no-answer-after = 15           seconds of ringing before that
 *                                          (default: when tandem's own
 *                                          [calls] no-answer-timeout ends it)
 * The core adds Diversion, sends the caller 181 and refuses loops. */
#define G_LOG_DOMAIN "tandem-forward"

#include <stdlib.h>
#include <string.h>

#include "td-plugin.h"

static const TdUser *
callee_of (TdCall *call)
{
  const TdConfig *config = td_plugin_host_config (td_call_get_host (call));
  return config ? td_config_lookup_user (config, td_call_get_callee (call)) : NULL;
}

static void
on_ring_timeout (TdCall *call, gpointer data)
{
  const char *target = td_user_get (callee_of (call), "forward-no-answer");
  if (target)
    td_call_forward (call, target, "no-answer");
}

/* The callee's phones ring: arm the no-answer forwarding if it has one. */
static TdHookResult
on_ringing (const TdHookArgs *args, gpointer data)
{
  const TdUser *user = callee_of (args->call);
  const char *after = td_user_get (user, "forward-no-answer-after");
  guint64 seconds;

  if (!td_user_get (user, "forward-no-answer") || !after)
    return TD_HOOK_CONTINUE;
  if (!g_ascii_string_to_unsigned (after, 10, 1, 3600, &seconds, NULL)) {
    g_warning ("[user %s] forward-no-answer-after: \"%s\" is not 1..3600 seconds", user->name,
               after);
    return TD_HOOK_CONTINUE;
  }
  td_call_add_ring_timeout (args->call, (guint) seconds, on_ring_timeout, NULL);
  return TD_HOOK_CONTINUE;
}

static gboolean
is_busy (int status)
{
  return status == 486 || status == 600;
}

static gboolean
is_no_answer (const TdHookArgs *args)
{
  return args->reason != NULL || args->status == 408 || args->status == 480;
}

/* The callee failed: forward on busy or on no answer if configured. */
static TdHookResult
on_failed (const TdHookArgs *args, gpointer data)
{
  const TdUser *user = callee_of (args->call);
  const char *target = NULL, *reason = NULL;

  if (is_busy (args->status)) {
    target = td_user_get (user, "forward-busy");
    reason = "user-busy";
  } else if (is_no_answer (args)) {
    target = td_user_get (user, "forward-no-answer");
    reason = "no-answer";
  }
  if (target && td_call_forward (args->call, target, reason))
    return TD_HOOK_HANDLED;
  return TD_HOOK_CONTINUE;
}

static gboolean
forward_init (TdPluginHost *host, gpointer *state, GError **error)
{
  td_plugin_host_add_user_key (host, "forward-busy");
  td_plugin_host_add_user_key (host, "forward-no-answer");
  td_plugin_host_add_user_key (host, "forward-no-answer-after");
  td_plugin_host_add_hook (host, TD_HOOK_CALL_RINGING, on_ringing, NULL);
  td_plugin_host_add_hook (host, TD_HOOK_CALL_FAILED, on_failed, NULL);
  return TRUE;
}

TD_PLUGIN_DEFINE ("forward", forward_init, NULL)
