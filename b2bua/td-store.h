/* TdStore: tandem's embedded SQLite database (registrations, and later CDRs).
 *
 * WAL mode with synchronous=NORMAL: a transaction that committed survives a
 * SIGKILL of the daemon the moment after (only an OS crash or power cut can
 * lose the last ones), without an fsync per REGISTER.
 *
 * Checkpoints (copying the WAL into the database file, with its fsyncs) run
 * on a thread of the store's own, on a connection of its own: the SIP
 * thread's connection never checkpoints, so it never waits for the disk. */
#pragma once

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

#define TD_STORE_ERROR (td_store_error_quark ())
GQuark td_store_error_quark (void);

typedef struct _TdStore TdStore;

/* full_sync: fsync every commit (synchronous=FULL), for power-loss safety. */
TdStore *td_store_open (const char *path, gboolean full_sync, GError **error);
void td_store_free (TdStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdStore, td_store_free)

sqlite3 *td_store_db (TdStore *store);

/* Run SQL without results (schema, BEGIN/COMMIT). */
gboolean td_store_exec (TdStore *store, const char *sql, GError **error);
/* Prepare a statement owned by the store (finalized with it); NULL + error on failure. */
sqlite3_stmt *td_store_prepare (TdStore *store, const char *sql, GError **error);
/* Set *error from the database's last error, prefixed with `what`. */
gboolean td_store_fail (TdStore *store, const char *what, GError **error);

G_END_DECLS
