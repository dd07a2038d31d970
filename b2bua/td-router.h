/* TdRouter: where an authenticated call should go.
 *
 * Pure decision from the configuration and the location service: the
 * Request-URI's user of our domain → its live contacts (all of them: parallel
 * forking is what PBX users expect), or the SIP error that explains why not. */
#pragma once

#include <glib.h>
#include "td-config.h"
#include "td-location.h"

G_BEGIN_DECLS

typedef struct {
  int status;           /* 0: route found; else the SIP status to answer (404, 480, 482) */
  const char *phrase;   /* static reason phrase for status */
  char *callee;         /* the called user (also when not registered) */
  GPtrArray *targets;   /* TdBinding* copies, owned; preferred first */
} TdRoute;

void td_route_free (TdRoute *route);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdRoute, td_route_free)

/* Is `host` (a Request-URI's) this server: its domain or listen address? */
gboolean td_router_serves (const TdConfig *config, const char *host);

/* user/host: the Request-URI's; host must be our domain or listen address. */
TdRoute *td_router_route (const TdConfig *config, TdLocation *location,
                          const char *user, const char *host, gint64 now);

/* For a sips: Request-URI (RFC 3261 §26.2.2): only the targets reached over
 * TLS (registered over it, or a sips: or transport=tls Contact) stay; none
 * left is 480. */
void td_route_keep_secure (TdRoute *route);

/* Is this binding reached over TLS? */
gboolean td_binding_is_secure (const TdBinding *b);

/* A forwarding target as configured ("carol", "sip:carol@pbx.test",
 * "<sip:carol@pbx.test>") → the user of our domain it names, or NULL when it
 * names anything else (tandem routes no other domains yet). */
char *td_router_target_user (const TdConfig *config, const char *target);

G_END_DECLS
