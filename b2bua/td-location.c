/* TdLocation: bindings in memory, written through to SQLite in the store's
 * batches. */
#define G_LOG_DOMAIN "tandem-location"

#include "td-location.h"

#include <string.h>

struct _TdLocation {
  TdStore *store;           /* borrowed: the daemon owns it */
  TdStoreBatch *batch;      /* borrowed */
  GHashTable *aors;         /* aor → GPtrArray of TdBinding* (owned) */
  sqlite3_stmt *insert, *remove, *remove_aor, *expire, *select_aor;
};

/* One REGISTER's changes on their way to the store. */
typedef struct {
  TdLocation *loc;
  char *aor;
  gboolean remove_all;
  GPtrArray *changes;       /* TdBinding*, a reference */
  TdLocationDone done;
  gpointer data;
} Update;

TdBinding *
td_binding_copy (const TdBinding *b)
{
  TdBinding *c = g_new (TdBinding, 1);
  *c = *b;
  c->aor = g_strdup (b->aor);
  c->contact = g_strdup (b->contact);
  c->call_id = g_strdup (b->call_id);
  c->source = g_strdup (b->source);
  c->user_agent = g_strdup (b->user_agent);
  return c;
}

void
td_binding_free (TdBinding *b)
{
  if (!b)
    return;
  g_free (b->aor);
  g_free (b->contact);
  g_free (b->call_id);
  g_free (b->source);
  g_free (b->user_agent);
  g_free (b);
}

static GPtrArray *
bindings_of (TdLocation *loc, const char *aor, gboolean create)
{
  GPtrArray *list = g_hash_table_lookup (loc->aors, aor);
  if (!list && create) {
    list = g_ptr_array_new_with_free_func ((GDestroyNotify) td_binding_free);
    g_hash_table_insert (loc->aors, g_strdup (aor), list);
  }
  return list;
}

static void
memory_put (TdLocation *loc, TdBinding *b)
{
  GPtrArray *list = bindings_of (loc, b->aor, TRUE);
  for (guint i = 0; i < list->len; i++) {
    TdBinding *old = g_ptr_array_index (list, i);
    if (strcmp (old->contact, b->contact) == 0) {
      g_ptr_array_index (list, i) = b;
      td_binding_free (old);
      return;
    }
  }
  g_ptr_array_add (list, b);
}

static void
memory_remove (TdLocation *loc, const char *aor, const char *contact)
{
  GPtrArray *list = bindings_of (loc, aor, FALSE);
  if (!list)
    return;
  for (guint i = 0; i < list->len; i++)
    if (!contact || strcmp (((TdBinding *) g_ptr_array_index (list, i))->contact, contact) == 0)
      g_ptr_array_remove_index (list, i--);
  if (list->len == 0)
    g_hash_table_remove (loc->aors, aor);
}

static const char *
column_text (sqlite3_stmt *stmt, int col)
{
  return (const char *) sqlite3_column_text (stmt, col);
}

/* Every row `stmt` (bound by the caller) yields goes into memory. */
static gboolean
load_rows (TdLocation *loc, sqlite3_stmt *stmt, GError **error)
{
  int rc;

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    TdBinding b = {
      .aor = (char *) column_text (stmt, 0), .contact = (char *) column_text (stmt, 1),
      .call_id = (char *) column_text (stmt, 2), .cseq = sqlite3_column_int64 (stmt, 3),
      .expires_at = sqlite3_column_int64 (stmt, 4), .q = sqlite3_column_int (stmt, 5),
      .source = (char *) column_text (stmt, 6), .user_agent = (char *) column_text (stmt, 7),
      .registered_at = sqlite3_column_int64 (stmt, 8),
    };
    memory_put (loc, td_binding_copy (&b));
  }
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  if (rc != SQLITE_DONE)
    return td_store_fail (loc->store, "load bindings", error);
  return TRUE;
}

#define COLUMNS "SELECT aor, contact, call_id, cseq, expires_at, q, source, user_agent," \
                " registered_at FROM bindings"

static gboolean
load (TdLocation *loc, gint64 now, GError **error)
{
  sqlite3_stmt *stmt = td_store_prepare (loc->store, COLUMNS " WHERE expires_at > ?", error);

  if (!stmt)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, now);
  return load_rows (loc, stmt, error);
}

/* After a write that failed: memory shows what the store holds for `aor`. */
static void
reload_aor (TdLocation *loc, const char *aor)
{
  g_autoptr (GError) error = NULL;

  memory_remove (loc, aor, NULL);
  sqlite3_bind_text (loc->select_aor, 1, aor, -1, SQLITE_STATIC);
  if (!load_rows (loc, loc->select_aor, &error))
    g_warning ("%s: %s", aor, error->message);
}

TdLocation *
td_location_new (TdStore *store, TdStoreBatch *batch, gint64 now, GError **error)
{
  g_autoptr (TdLocation) loc = g_new0 (TdLocation, 1);

  loc->store = store;
  loc->batch = batch;
  loc->aors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify) g_ptr_array_unref);
  if (!(loc->insert = td_store_prepare (store,
          "INSERT OR REPLACE INTO bindings (aor, contact, call_id, cseq, expires_at, q,"
          " source, user_agent, registered_at) VALUES (?,?,?,?,?,?,?,?,?)", error)) ||
      !(loc->remove = td_store_prepare (store,
          "DELETE FROM bindings WHERE aor = ? AND contact = ?", error)) ||
      !(loc->remove_aor = td_store_prepare (store, "DELETE FROM bindings WHERE aor = ?", error)) ||
      !(loc->expire = td_store_prepare (store, "DELETE FROM bindings WHERE expires_at <= ?", error)) ||
      !(loc->select_aor = td_store_prepare (store, COLUMNS " WHERE aor = ?", error)))
    return NULL;
  /* Bindings that expired while tandem was down go now. */
  if (td_location_expire (loc, now), !load (loc, now, error))
    return NULL;
  return g_steal_pointer (&loc);
}

void
td_location_free (TdLocation *loc)
{
  if (!loc)
    return;
  g_clear_pointer (&loc->aors, g_hash_table_unref);
  g_free (loc);
}

static gint
by_preference (gconstpointer a, gconstpointer b)
{
  const TdBinding *x = *(TdBinding **) a, *y = *(TdBinding **) b;
  if (x->q != y->q)
    return x->q > y->q ? -1 : 1;
  return (x->registered_at < y->registered_at) - (x->registered_at > y->registered_at);
}

GPtrArray *
td_location_lookup (TdLocation *loc, const char *aor, gint64 now)
{
  GPtrArray *out = g_ptr_array_new ();
  GPtrArray *list = bindings_of (loc, aor, FALSE);

  for (guint i = 0; list && i < list->len; i++) {
    TdBinding *b = g_ptr_array_index (list, i);
    if (b->expires_at > now)
      g_ptr_array_add (out, b);
  }
  g_ptr_array_sort (out, by_preference);
  return out;
}

const TdBinding *
td_location_find (TdLocation *loc, const char *aor, const char *contact)
{
  GPtrArray *list = bindings_of (loc, aor, FALSE);
  for (guint i = 0; list && i < list->len; i++) {
    TdBinding *b = g_ptr_array_index (list, i);
    if (strcmp (b->contact, contact) == 0)
      return b;
  }
  return NULL;
}

static gboolean
step (TdLocation *loc, sqlite3_stmt *stmt, GError **error)
{
  int rc = sqlite3_step (stmt);
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return rc == SQLITE_DONE ? TRUE : td_store_fail (loc->store, "write binding", error);
}

static gboolean
store_change (TdLocation *loc, const TdBinding *b, GError **error)
{
  if (b->expires_at == 0) {
    sqlite3_bind_text (loc->remove, 1, b->aor, -1, SQLITE_STATIC);
    sqlite3_bind_text (loc->remove, 2, b->contact, -1, SQLITE_STATIC);
    return step (loc, loc->remove, error);
  }
  sqlite3_bind_text (loc->insert, 1, b->aor, -1, SQLITE_STATIC);
  sqlite3_bind_text (loc->insert, 2, b->contact, -1, SQLITE_STATIC);
  sqlite3_bind_text (loc->insert, 3, b->call_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (loc->insert, 4, b->cseq);
  sqlite3_bind_int64 (loc->insert, 5, b->expires_at);
  sqlite3_bind_int (loc->insert, 6, b->q);
  sqlite3_bind_text (loc->insert, 7, b->source, -1, SQLITE_STATIC);
  sqlite3_bind_text (loc->insert, 8, b->user_agent, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (loc->insert, 9, b->registered_at);
  return step (loc, loc->insert, error);
}

static gboolean
write_update (gpointer data, GError **error)
{
  Update *u = data;
  TdLocation *loc = u->loc;
  gboolean ok = TRUE;

  if (u->remove_all) {
    sqlite3_bind_text (loc->remove_aor, 1, u->aor, -1, SQLITE_STATIC);
    ok = step (loc, loc->remove_aor, error);
  }
  for (guint i = 0; ok && u->changes && i < u->changes->len; i++)
    ok = store_change (loc, g_ptr_array_index (u->changes, i), error);
  return ok;
}

static void
update_done (gpointer data, const GError *error)
{
  Update *u = data;

  if (error)
    reload_aor (u->loc, u->aor);
  if (u->done)
    u->done (u->data, error);
}

static void
update_free (gpointer data)
{
  Update *u = data;

  g_free (u->aor);
  g_clear_pointer (&u->changes, g_ptr_array_unref);
  g_free (u);
}

void
td_location_update (TdLocation *loc, const char *aor, gboolean remove_all, GPtrArray *changes,
                    TdLocationDone done, gpointer data)
{
  Update *u = g_new0 (Update, 1);

  u->loc = loc;
  u->aor = g_strdup (aor);
  u->remove_all = remove_all;
  u->changes = changes ? g_ptr_array_ref (changes) : NULL;
  u->done = done;
  u->data = data;
  td_store_batch_add (loc->batch, write_update, update_done, u, update_free);

  if (remove_all)
    memory_remove (loc, aor, NULL);
  for (guint i = 0; changes && i < changes->len; i++) {
    const TdBinding *b = g_ptr_array_index (changes, i);
    if (b->expires_at == 0)
      memory_remove (loc, aor, b->contact);
    else
      memory_put (loc, td_binding_copy (b));
  }
}

/* The expiry sweep's store half: rows whose time passed by `before`. */
typedef struct {
  TdLocation *loc;
  gint64 before;
} Sweep;

static gboolean
write_sweep (gpointer data, GError **error)
{
  Sweep *sw = data;

  sqlite3_bind_int64 (sw->loc->expire, 1, sw->before);
  return step (sw->loc, sw->loc->expire, error);
}

static void
sweep_done (gpointer data, const GError *error)
{
  if (error)
    g_warning ("expiring bindings: %s", error->message);
}

guint
td_location_expire (TdLocation *loc, gint64 now)
{
  GHashTableIter it;
  GPtrArray *list;
  guint n = 0;
  Sweep *sw = g_new (Sweep, 1);

  *sw = (Sweep) { .loc = loc, .before = now };
  td_store_batch_add (loc->batch, write_sweep, sweep_done, sw, g_free);

  g_hash_table_iter_init (&it, loc->aors);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &list)) {
    for (guint i = 0; i < list->len; i++)
      if (((TdBinding *) g_ptr_array_index (list, i))->expires_at <= now) {
        g_ptr_array_remove_index (list, i--);
        n++;
      }
    if (list->len == 0)
      g_hash_table_iter_remove (&it);
  }
  return n;
}

guint
td_location_count (TdLocation *loc)
{
  GHashTableIter it;
  GPtrArray *list;
  guint n = 0;

  g_hash_table_iter_init (&it, loc->aors);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &list))
    n += list->len;
  return n;
}
