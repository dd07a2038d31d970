/* TdRouter: Request-URI → contacts, or the reason there are none. */
#define G_LOG_DOMAIN "tandem-router"

#include "td-router.h"

void
td_route_free (TdRoute *route)
{
  if (!route)
    return;
  g_free (route->callee);
  g_clear_pointer (&route->targets, g_ptr_array_unref);
  g_free (route);
}

static TdRoute *
fail (TdRoute *route, int status, const char *phrase)
{
  route->status = status;
  route->phrase = phrase;
  return route;
}

TdRoute *
td_router_route (const TdConfig *config, TdLocation *location, const char *user,
                 const char *host, gint64 now)
{
  TdRoute *route = g_new0 (TdRoute, 1);
  g_autoptr (GPtrArray) live = NULL;

  route->targets = g_ptr_array_new_with_free_func ((GDestroyNotify) td_binding_free);
  route->callee = g_strdup (user);
  /* tandem serves its own domain; trunks to other domains are not routed yet. */
  if (!host || (g_ascii_strcasecmp (host, config->domain) != 0 &&
                g_ascii_strcasecmp (host, config->listen_host) != 0))
    return fail (route, 404, "Not Found (not our domain)");
  if (!user || !td_config_lookup_user (config, user))
    return fail (route, 404, "Not Found");
  live = td_location_lookup (location, user, now);
  if (live->len == 0)
    return fail (route, 480, "Temporarily Unavailable (not registered)");
  for (guint i = 0; i < live->len; i++)
    g_ptr_array_add (route->targets, td_binding_copy (g_ptr_array_index (live, i)));
  return route;
}
