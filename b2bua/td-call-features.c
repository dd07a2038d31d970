/* The operations plugins perform on calls (td-plugin.h): redirecting,
 * rejecting, ring timers, their own per-call data, and what they may read
 * of a call. */
#define G_LOG_DOMAIN "tandem-call"

#include <string.h>
#include <sofia-sip/sip_status.h>

#include "td-call-private.h"

struct _RingTimer {
  TdCall *call;
  TdCallTimeoutFunc func;
  gpointer data;
  TdTimer *timer;
};

const char *
td_call_get_id (const TdCall *call)
{
  return call->call_id;
}

const char *
td_call_get_caller (const TdCall *call)
{
  return call->caller;
}

const char *
td_call_get_callee (const TdCall *call)
{
  return call->callee;
}

const char *
td_call_get_dialed (const TdCall *call)
{
  return call->dialed;
}

gboolean
td_call_is_answered (const TdCall *call)
{
  return call->bridged != NULL;
}

TdPluginHost *
td_call_get_host (const TdCall *call)
{
  return call->ctx->plugins;
}

void
td_call_reject (TdCall *call, int status)
{
  g_return_if_fail (status >= 300 && status < 700);
  td_call_fail (call, status, NULL);
}

void
td_call_answer_offer (TdCall *call, TdLeg *leg, int direction)
{
  leg->local_answer = direction;
}

/* ---- ring timers -------------------------------------------------------------- */

void
td_ring_timer_free (gpointer data)
{
  RingTimer *t = data;
  td_timer_clear (&t->timer);
  g_free (t);
}

static void
on_ring_timer (gpointer data)
{
  RingTimer *t = data;
  TdCall *call = t->call;
  t->timer = NULL;
  /* Removing the timer frees `t`: take what the callback needs first. */
  TdCallTimeoutFunc func = t->func;
  gpointer user_data = t->data;
  g_ptr_array_remove (call->ring_timers, t);
  if (!call->bridged && !call->ended && !td_call_caller_final (call))
    func (call, user_data);
}

void
td_call_add_ring_timeout (TdCall *call, guint seconds, TdCallTimeoutFunc func, gpointer user_data)
{
  RingTimer *t = g_new0 (RingTimer, 1);
  t->call = call;
  t->func = func;
  t->data = user_data;
  t->timer = td_timers_add (call->ctx->timers, seconds * 1000, on_ring_timer, t);
  g_ptr_array_add (call->ring_timers, t);
}

/* ---- redirecting ---------------------------------------------------------------- */

static gboolean
may_redirect (const TdCall *call, GError **error)
{
  if (call->bridged || call->ended || td_call_caller_final (call)) {
    g_set_error (error, TD_CALL_ERROR, 481, "the call is %s",
                 call->bridged ? "answered" : "over");
    return FALSE;
  }
  return TRUE;
}

/* The user `target` names and where its phones are, or NULL. */
static TdRoute *
route_target (TdCall *call, const char *target, GError **error)
{
  const TdConfig *config = call->ctx->config;
  g_autofree char *user = NULL;
  g_autoptr (TdRoute) route = NULL;

  if (!may_redirect (call, error))
    return NULL;
  if (!(user = td_router_target_user (config, target))) {
    g_set_error (error, TD_CALL_ERROR, 404, "\"%s\" is not a user of %s",
                 target, config->domain);
    return NULL;
  }
  route = td_router_route (config, call->ctx->location, user, config->domain,
                           g_get_real_time () / G_USEC_PER_SEC);
  if (route->status) {
    g_set_error (error, TD_CALL_ERROR, route->status, "%s: %d %s", user,
                 route->status, route->phrase);
    return NULL;
  }
  return g_steal_pointer (&route);
}

char *
td_call_resolve_target (TdCall *call, const char *target, GError **error)
{
  g_autoptr (TdRoute) route = route_target (call, target, error);
  return route ? g_strdup (route->callee) : NULL;
}

static void
abandon_branches (TdCall *call)
{
  td_call_cancel_branches (call, NULL);
  for (guint i = 0; i < call->b_legs->len; i++)
    ((TdLeg *) g_ptr_array_index (call->b_legs, i))->abandoned = TRUE;
}

gboolean
td_call_redirect (TdCall *call, const char *target, const char *extra_headers, GError **error)
{
  g_autoptr (TdRoute) route = route_target (call, target, error);

  if (!route)
    return FALSE;
  g_debug ("call %s: redirected %s → %s", call->call_id, call->callee, route->callee);
  td_call_stop_ring_timers (call);
  abandon_branches (call);
  g_free (call->callee);
  call->callee = g_strdup (route->callee);
  g_free (call->branch_headers);
  call->branch_headers = extra_headers && *extra_headers ? g_strdup (extra_headers) : NULL;
  /* The new callee may itself refuse (busy, do-not-disturb...). */
  if (td_call_run_hook (call, TD_HOOK_CALL_ROUTING, NULL, NULL, 0, NULL) == TD_HOOK_HANDLED)
    return TRUE;
  if (!td_call_start_branches (call, route)) {
    td_call_fail (call, 503, "no media ports");
    return TRUE;
  }
  td_call_start_ring_timer (call);
  td_call_run_hook (call, TD_HOOK_CALL_RINGING, NULL, NULL, 0, NULL);
  return TRUE;
}

void
td_call_send_provisional (TdCall *call, int status)
{
  g_return_if_fail (status > 100 && status < 200);
  if (!call->ended)
    td_call_respond_a (call, status, td_call_phrase (status), NULL);
}

/* ---- plugins' data ------------------------------------------------------------------ */

void
td_call_set_data (TdCall *call, const char *key, gpointer data, GDestroyNotify destroy)
{
  g_datalist_set_data_full (&call->plugin_data, key, data, destroy);
}

gpointer
td_call_get_data (TdCall *call, const char *key)
{
  return g_datalist_get_data (&call->plugin_data, key);
}

/* ---- who is busy -------------------------------------------------------------- */

/* Calls in progress for which `counts` holds. */
static guint
count_calls (TdCallContext *ctx, gboolean (*counts) (const TdCall *, const char *),
             const char *user)
{
  GHashTableIter it;
  TdCall *call;
  guint n = 0;

  g_hash_table_iter_init (&it, ctx->calls);
  while (g_hash_table_iter_next (&it, (gpointer *) &call, NULL))
    n += !call->ended && counts (call, user);
  return n;
}

/* The parties are the legs' users: after a transfer they are no longer
 * the call's caller and callee. */
static gboolean
talking (const TdCall *call, const char *user)
{
  return call->bridged && call->a &&
         (g_strcmp0 (call->a->user, user) == 0 || g_strcmp0 (call->bridged->user, user) == 0);
}

guint
td_calls_count_user (TdCallContext *ctx, const char *user)
{
  return count_calls (ctx, talking, user);
}
