/* TdRouter: Request-URI → contacts, or the reason there are none. */
#define G_LOG_DOMAIN "tandem-router"

#include "td-router.h"

#include <string.h>

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

gboolean
td_router_serves (const TdConfig *config, const char *host)
{
  return host && (g_ascii_strcasecmp (host, config->domain) == 0 ||
                  g_ascii_strcasecmp (host, config->listen_host) == 0);
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
  if (!td_router_serves (config, host))
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

gboolean
td_binding_is_secure (const TdBinding *b)
{
  static const char param[] = ";transport=tls";

  if ((b->source && g_str_has_prefix (b->source, "tls/")) ||
      g_ascii_strncasecmp (b->contact, "sips:", 5) == 0)
    return TRUE;
  /* Every branch asks: no copy of the contact to lower its case. */
  for (const char *p = strchr (b->contact, ';'); p; p = strchr (p + 1, ';'))
    if (g_ascii_strncasecmp (p, param, sizeof param - 1) == 0)
      return TRUE;
  return FALSE;
}

void
td_route_keep_secure (TdRoute *route)
{
  for (guint i = route->targets->len; i-- > 0;)
    if (!td_binding_is_secure (g_ptr_array_index (route->targets, i)))
      g_ptr_array_remove_index (route->targets, i);
  if (!route->status && route->targets->len == 0)
    fail (route, 480, "Temporarily Unavailable (no TLS contact for a sips: URI)");
}

/* "carol", "sip:carol@pbx.test" or "<sip:carol@pbx.test>" → "carol" when the
 * target is a user of our domain; NULL for anything else (tandem routes no
 * other domains yet). */
char *
td_router_target_user (const TdConfig *config, const char *target)
{
  g_autofree char *t = g_strstrip (g_strdup (target));
  char *at, *user;

  if (t[0] == '<' && t[strlen (t) - 1] == '>') {
    t[strlen (t) - 1] = '\0';
    memmove (t, t + 1, strlen (t));
  }
  if (!g_str_has_prefix (t, "sip:"))
    return strchr (t, '@') || strchr (t, ':') ? NULL : g_strdup (t);
  user = t + 4;
  at = strchr (user, '@');
  if (!at)
    return NULL;
  *at = '\0';
  at[1 + strcspn (at + 1, ";>:")] = '\0';
  if (g_ascii_strcasecmp (at + 1, config->domain) != 0 &&
      g_ascii_strcasecmp (at + 1, config->listen_host) != 0)
    return NULL;
  return g_strdup (user);
}
