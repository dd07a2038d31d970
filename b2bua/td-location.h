/* TdLocation: the location service — which contacts each user has registered.
 *
 * Kept in memory for lookups and written through to the TdStore in its
 * batches (td-store-batch.h); the registrar answers from the write's done
 * callback, so a binding acknowledged with 200 survives a crash; loaded back
 * at start-up. Times are Unix seconds (wall clock), so expiry
 * keeps its meaning across a restart. */
#pragma once

#include <glib.h>
#include "td-store-batch.h"

G_BEGIN_DECLS

typedef struct {
  char *aor;            /* user name */
  char *contact;        /* Contact URI as registered, e.g. sip:alice@10.0.0.2:5062;transport=tcp */
  char *call_id;        /* of the REGISTER that made or refreshed it */
  guint32 cseq;
  gint64 expires_at;    /* Unix seconds; 0 in a change = remove this contact */
  guint q;              /* q-value × 1000 (1000 when absent) */
  char *source;         /* where the REGISTER came from: "udp/127.0.0.1:5062" */
  char *user_agent;     /* may be NULL */
  gint64 registered_at;
} TdBinding;

TdBinding *td_binding_copy (const TdBinding *b);
void td_binding_free (TdBinding *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdBinding, td_binding_free)

typedef struct _TdLocation TdLocation;

/* Both borrowed; `batch` writes on `store`. */
TdLocation *td_location_new (TdStore *store, TdStoreBatch *batch, gint64 now, GError **error);
void td_location_free (TdLocation *loc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdLocation, td_location_free)

/* The live bindings of `aor`, highest q first, then most recently registered.
 * Pointers are borrowed until the next change; free the array only. */
GPtrArray *td_location_lookup (TdLocation *loc, const char *aor, gint64 now);
const TdBinding *td_location_find (TdLocation *loc, const char *aor, const char *contact);

/* Apply one REGISTER's changes: remove_all drops every binding of the AOR
 * first; then each change (a TdBinding) replaces the binding with the same
 * contact, or removes it when its expires_at is 0. Memory changes at once
 * (lookups and the next REGISTER see it); the store in the batch, in one
 * transaction; then `done` runs (error NULL: stored). If the store refused
 * it, nothing of it stays: memory is read back from the store first. */
typedef void (*TdLocationDone) (gpointer data, const GError *error);
void td_location_update (TdLocation *loc, const char *aor, gboolean remove_all,
                         GPtrArray *changes, TdLocationDone done, gpointer data);

/* Drop bindings whose time has passed (memory now, the store in the batch).
 * Returns how many. */
guint td_location_expire (TdLocation *loc, gint64 now);
guint td_location_count (TdLocation *loc);

G_END_DECLS
