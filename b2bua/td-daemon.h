/* TdDaemon: tandem's top object. It owns the configuration, the store, the
 * location service, the digest authority, the registrar and the Sofia-SIP
 * stack (nua on the GLib main loop), dispatches nua events to them, and
 * handles the process signals: SIGTERM/SIGINT shut down cleanly, SIGHUP
 * reloads the users from the configuration file. */
#pragma once

#include <glib.h>
#include "td-config.h"

G_BEGIN_DECLS

typedef struct _TdDaemon TdDaemon;

/* Opens the store and binds the SIP sockets; errors name what failed. */
TdDaemon *td_daemon_new (const char *config_path, TdConfig *config, GError **error);
/* Runs the main loop until a shutdown signal; returns the exit code. */
int td_daemon_run (TdDaemon *daemon);
void td_daemon_free (TdDaemon *daemon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdDaemon, td_daemon_free)

G_END_DECLS
