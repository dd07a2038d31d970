/* TdStore: the SIP thread's connection never checkpoints (that fsyncs the
 * database file); the store's own thread keeps the WAL from growing. */
#include <glib/gstdio.h>

#include "td-store.h"

static gint64
file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (gint64) st.st_size : -1;
}

static void
test_checkpoints_off_the_sip_thread (void)
{
  g_autofree char *dir = g_dir_make_tmp ("td-store-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "t.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (TdStore) store = td_store_open (path, FALSE, &error);
  sqlite3_stmt *stmt;
  gint64 before, deadline;

  g_assert_no_error (error);
  /* SQLite's autocheckpoint would run inside a commit on this connection. */
  stmt = td_store_prepare (store, "PRAGMA wal_autocheckpoint", &error);
  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, 0);

  /* Enough commits for SQLite's threshold (1,000 WAL frames): the rows
   * reach the database file only through a checkpoint, and only the
   * store's thread makes one. */
  before = file_size (path);
  for (guint i = 0; i < 1200; i++) {
    g_autofree char *sql = g_strdup_printf (
      "INSERT INTO cdrs (call_id, session, caller, callee, started_at, ended_at, status, hangup) "
      "VALUES ('c%u', 'c%u', 'alice', 'bob', %u, %u, 200, 'caller')", i, i, i, i);
    g_assert_true (td_store_exec (store, sql, &error));
  }
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (file_size (path) <= before && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  g_assert_cmpint (file_size (path), >, before);

  g_clear_pointer (&store, td_store_free);
  g_unlink (path);
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);
  g_unlink (wal);
  g_unlink (shm);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/checkpoints-off-the-sip-thread", test_checkpoints_off_the_sip_thread);
  return g_test_run ();
}
