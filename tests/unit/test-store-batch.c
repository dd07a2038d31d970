/* TdStoreBatch: writes share one transaction, are acknowledged only after
 * it committed, fail one by one, and a binding the store refused does not
 * stay in memory. */
#include <glib/gstdio.h>

#include "td-location.h"
#include "td-store-batch.h"

typedef struct {
  char *dir, *path;
  TdStore *store;
  TdStoreBatch *batch;
  GString *log;              /* what the done callbacks saw, in order */
  guint commits;             /* on the store's connection */
} Fixture;

static int
count_commit (void *data)
{
  ((Fixture *) data)->commits++;
  return 0;   /* let it commit */
}

static void
set_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("td-batch-XXXXXX", NULL);
  f->path = g_build_filename (f->dir, "t.db", NULL);
  f->store = td_store_open (f->path, FALSE, &error);
  g_assert_no_error (error);
  sqlite3_commit_hook (td_store_db (f->store), count_commit, f);
  f->batch = td_store_batch_new (f->store, GPOINTER_TO_UINT (data));
  f->log = g_string_new (NULL);
}

static void
tear_down (Fixture *f, gconstpointer data)
{
  static const char *const suffixes[] = { "", "-wal", "-shm" };

  g_clear_pointer (&f->batch, td_store_batch_free);
  td_store_free (f->store);
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *file = g_strconcat (f->path, suffixes[i], NULL);
    g_unlink (file);
  }
  g_rmdir (f->dir);
  g_free (f->path);
  g_free (f->dir);
  g_string_free (f->log, TRUE);
}

/* A write: one CDR row named `call_id`; "bad" fails like a refused write. */
typedef struct {
  Fixture *f;
  char call_id[16];
} Row;

static gboolean
write_row (gpointer data, GError **error)
{
  Row *r = data;
  g_autofree char *sql = NULL;

  if (g_str_equal (r->call_id, "bad")) {
    g_set_error (error, TD_STORE_ERROR, 0, "refused");
    return FALSE;
  }
  sql = g_strdup_printf ("INSERT INTO cdrs (call_id, session, caller, callee, started_at,"
                         " ended_at, status, hangup) VALUES ('%s', '%s', 'a', 'b', 1, 2, 200,"
                         " 'caller')", r->call_id, r->call_id);
  return td_store_exec (r->f->store, sql, error);
}

static gint64
rows (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  sqlite3_stmt *st = td_store_prepare (f->store, "SELECT count(*) FROM cdrs", &error);
  gint64 n;

  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  n = sqlite3_column_int64 (st, 0);
  sqlite3_reset (st);
  return n;
}

static void
row_done (gpointer data, const GError *error)
{
  Row *r = data;

  /* Acknowledged only once the row is there for everyone to read. */
  if (!error)
    g_assert_cmpint (rows (r->f), >, 0);
  g_string_append_printf (r->f->log, "%s:%s ", r->call_id, error ? "failed" : "stored");
}

static void
add_row (Fixture *f, const char *call_id)
{
  Row *r = g_new0 (Row, 1);

  r->f = f;
  g_strlcpy (r->call_id, call_id, sizeof r->call_id);
  td_store_batch_add (f->batch, write_row, row_done, r, g_free);
}

static void
test_one_transaction (Fixture *f, gconstpointer data)
{
  add_row (f, "c1");
  add_row (f, "c2");
  add_row (f, "c3");
  g_assert_cmpuint (td_store_batch_pending (f->batch), ==, 3);
  g_assert_cmpint (rows (f), ==, 0);   /* nothing until the batch runs */
  g_assert_cmpstr (f->log->str, ==, "");
  f->commits = 0;
  td_store_batch_flush (f->batch);
  g_assert_cmpuint (f->commits, ==, 1);   /* three writes, one COMMIT */
  g_assert_cmpint (rows (f), ==, 3);
  g_assert_cmpstr (f->log->str, ==, "c1:stored c2:stored c3:stored ");
  g_assert_cmpuint (td_store_batch_pending (f->batch), ==, 0);
}

static void
test_fails_alone (Fixture *f, gconstpointer data)
{
  add_row (f, "c1");
  add_row (f, "bad");
  add_row (f, "c3");
  td_store_batch_flush (f->batch);
  g_assert_cmpstr (f->log->str, ==, "c1:stored bad:failed c3:stored ");
  g_assert_cmpint (rows (f), ==, 2);
}

/* The main loop runs the batch `delay_ms` after its first write. */
static void
test_runs_from_the_loop (Fixture *f, gconstpointer data)
{
  gint64 start = g_get_monotonic_time (), deadline = start + 5 * G_USEC_PER_SEC;

  add_row (f, "c1");
  add_row (f, "c2");
  while (td_store_batch_pending (f->batch) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (f->log->str, ==, "c1:stored c2:stored ");
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 20 * 1000);
}

/* Freeing writes what is queued: shutdown loses nothing. */
static void
test_free_flushes (Fixture *f, gconstpointer data)
{
  add_row (f, "c1");
  g_clear_pointer (&f->batch, td_store_batch_free);
  g_assert_cmpstr (f->log->str, ==, "c1:stored ");
  g_assert_cmpint (rows (f), ==, 1);
}

static void
binding_done (gpointer data, const GError *error)
{
  Fixture *f = data;
  g_string_append (f->log, error ? "failed " : "stored ");
}

static guint
live (TdLocation *loc, const char *aor)
{
  g_autoptr (GPtrArray) list = td_location_lookup (loc, aor, 1000);
  return list->len;
}

/* A binding the store refused (another process holds its write lock) does
 * not stay in memory: memory is what the store has. */
static void
test_refused_binding_forgotten (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdLocation) loc = td_location_new (f->store, f->batch, 1000, &error);
  g_autoptr (GPtrArray) changes = g_ptr_array_new_with_free_func ((GDestroyNotify) td_binding_free);
  TdBinding b = { .aor = "bob", .contact = "sip:bob@127.0.0.1:5070", .call_id = "r1",
                  .cseq = 1, .expires_at = 2000, .q = 1000, .source = "udp/127.0.0.1:5070",
                  .registered_at = 1000 };
  sqlite3 *other = NULL;

  g_assert_no_error (error);
  g_ptr_array_add (changes, td_binding_copy (&b));
  td_location_update (loc, "bob", FALSE, changes, binding_done, f);
  g_assert_cmpuint (live (loc, "bob"), ==, 1);   /* seen at once */
  td_store_batch_flush (f->batch);
  g_assert_cmpstr (f->log->str, ==, "stored ");

  /* A second contact while the file is locked: refused, and gone again. */
  g_assert_cmpint (sqlite3_open_v2 (f->path, &other, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (other, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
  g_ptr_array_set_size (changes, 0);
  b.contact = "sip:bob@127.0.0.1:5072";
  g_ptr_array_add (changes, td_binding_copy (&b));
  td_location_update (loc, "bob", FALSE, changes, binding_done, f);
  g_assert_cmpuint (live (loc, "bob"), ==, 2);
  td_store_batch_flush (f->batch);
  sqlite3_exec (other, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close (other);
  g_assert_cmpstr (f->log->str, ==, "stored failed ");
  g_assert_cmpuint (live (loc, "bob"), ==, 1);
  g_assert_nonnull (td_location_find (loc, "bob", "sip:bob@127.0.0.1:5070"));
  g_assert_null (td_location_find (loc, "bob", "sip:bob@127.0.0.1:5072"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/store-batch/one-transaction", Fixture, GUINT_TO_POINTER (0), set_up,
              test_one_transaction, tear_down);
  g_test_add ("/store-batch/fails-alone", Fixture, GUINT_TO_POINTER (0), set_up,
              test_fails_alone, tear_down);
  g_test_add ("/store-batch/runs-from-the-loop", Fixture, GUINT_TO_POINTER (20), set_up,
              test_runs_from_the_loop, tear_down);
  g_test_add ("/store-batch/free-flushes", Fixture, GUINT_TO_POINTER (0), set_up,
              test_free_flushes, tear_down);
  g_test_add ("/store-batch/refused-binding-forgotten", Fixture, GUINT_TO_POINTER (0), set_up,
              test_refused_binding_forgotten, tear_down);
  return g_test_run ();
}
