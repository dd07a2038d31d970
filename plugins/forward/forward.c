/* forward: call forwarding on busy and on no answer (flows 10 and 11).
 *
 * Per user:
 *   forward-busy = carol                   the callee is busy (486/600, or
 *                                          busy by call waiting): call carol
 *   forward-no-answer = sip:vm@pbx.test     nobody answered: call this instead
 *   forward-no-answer-after = 15           seconds of ringing before that
 *                                          (default: when tandem's own
 *                                          [calls] no-answer-timeout ends it)
 * Its own group:
 *   [forward] max-diversions = 5           forwarding hops per call (0-20;
 *                                          a reload applies it to new forwards)
 *
 * A forward tells the caller 181 Call Is Being Forwarded and puts a
 * Diversion header (RFC 5806) naming the diverting user, the reason and the
 * count on the new INVITEs, the newest first. Loops are refused: a call
 * never rings a user twice and is forwarded at most max-diversions times;
 * a refused forward leaves the caller the core's final answer. */
#define G_LOG_DOMAIN "tandem-forward"

#include <stdlib.h>
#include <string.h>

#include "td-plugin.h"

#define DEFAULT_MAX_DIVERSIONS 5
#define MAX_MAX_DIVERSIONS 20

/* What one call went through, kept with the call (td_call_set_data). */
typedef struct {
  GHashTable *visited;   /* users the call has rung */
  guint diversions;      /* how often it was forwarded */
  char *headers;         /* its Diversion header lines, newest first */
} Forwarding;

static void
forwarding_free (gpointer data)
{
  Forwarding *f = data;
  g_hash_table_unref (f->visited);
  g_free (f->headers);
  g_free (f);
}

static Forwarding *
forwarding_of (TdCall *call)
{
  Forwarding *f = td_call_get_data (call, "forward");

  if (!f) {
    f = g_new0 (Forwarding, 1);
    f->visited = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    td_call_set_data (call, "forward", f, forwarding_free);
  }
  return f;
}

static gboolean
parse_max_diversions (const char *value, guint *out, GError **error)
{
  guint64 v;

  if (!g_ascii_string_to_unsigned (value, 10, 0, MAX_MAX_DIVERSIONS, &v, NULL)) {
    g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE,
                 "\"%s\" is not a whole number from 0 to %u", value, MAX_MAX_DIVERSIONS);
    return FALSE;
  }
  *out = (guint) v;
  return TRUE;
}

static gboolean
check_max_diversions (const char *value, GError **error)
{
  guint v;
  return parse_max_diversions (value, &v, error);
}

static guint
max_diversions (const TdConfig *config)
{
  const char *value = td_config_plugin_value (config, "forward", "max-diversions", NULL);
  guint v = DEFAULT_MAX_DIVERSIONS;

  if (value)
    parse_max_diversions (value, &v, NULL);   /* checked at start and reload */
  return v;
}

/* Send the call from its callee to `target` for `reason` ("user-busy",
 * "no-answer"); FALSE (nothing done) if that would loop, go too far, or
 * cannot ring. */
static gboolean
forward (TdCall *call, const char *target, const char *reason)
{
  const TdConfig *config = td_plugin_host_config (td_call_get_host (call));
  const char *from = td_call_get_callee (call);
  Forwarding *f = forwarding_of (call);
  g_autoptr (GError) error = NULL;
  g_autofree char *user = td_call_resolve_target (call, target, &error);
  g_autofree char *headers = NULL;
  guint limit = max_diversions (config);

  g_hash_table_add (f->visited, g_strdup (from));   /* whom it rang before */
  if (!user) {
    g_info ("call %s: cannot forward to \"%s\": %s", td_call_get_id (call), target,
            error->message);
    return FALSE;
  }
  if (g_hash_table_contains (f->visited, user)) {
    g_info ("call %s: not forwarding %s → %s: it would loop", td_call_get_id (call), from, user);
    return FALSE;
  }
  if (f->diversions >= limit) {
    g_info ("call %s: not forwarding %s → %s: %u diversions already", td_call_get_id (call),
            from, user, f->diversions);
    return FALSE;
  }
  g_info ("call %s: forwarding %s → %s (%s)", td_call_get_id (call), from, user, reason);
  /* Counted before the redirect: the new callee's hooks may forward again. */
  f->diversions++;
  headers = g_strdup_printf ("Diversion: <sip:%s@%s>;reason=%s;counter=%u\r\n%s", from,
                             config->domain, reason, f->diversions, f->headers ? f->headers : "");
  g_free (f->headers);
  f->headers = g_strdup (headers);
  g_hash_table_add (f->visited, g_strdup (user));
  /* Before the new branches go out, and before the new callee's own
   * refusal (busy by call waiting) could give the caller a final answer. */
  td_call_send_provisional (call, 181);
  if (!td_call_redirect (call, user, headers, &error)) {
    /* Not after td_call_resolve_target in the same turn of the loop; if
     * it ever is, the caller still gets the core's final answer. */
    g_warning ("call %s: forwarding to %s failed after all: %s", td_call_get_id (call), user,
               error->message);
    return FALSE;
  }
  return TRUE;
}

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
    forward (call, target, "no-answer");
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
  if (target && forward (args->call, target, reason))
    return TD_HOOK_HANDLED;
  return TD_HOOK_CONTINUE;
}

static gboolean
forward_init (TdPluginHost *host, gpointer *state, GError **error)
{
  td_plugin_host_add_key (host, "max-diversions", TD_PLUGIN_KEY_RELOADABLE,
                          check_max_diversions);
  td_plugin_host_add_user_key (host, "forward-busy");
  td_plugin_host_add_user_key (host, "forward-no-answer");
  td_plugin_host_add_user_key (host, "forward-no-answer-after");
  td_plugin_host_add_hook (host, TD_HOOK_CALL_RINGING, on_ringing, NULL);
  td_plugin_host_add_hook (host, TD_HOOK_CALL_FAILED, on_failed, NULL);
  return TRUE;
}

TD_PLUGIN_DEFINE ("forward", forward_init, NULL)
