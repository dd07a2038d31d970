/* TdCdr: a transferred call is written as segments sharing a session, and a
 * tandem.db from before segments existed keeps its rows when opened. */
#include <glib/gstdio.h>

#include "td-cdr.h"

typedef struct {
  char *dir, *path;
} TmpDb;

static TmpDb
tmp_db (void)
{
  TmpDb t = { .dir = g_dir_make_tmp ("td-cdr-XXXXXX", NULL) };
  g_assert_nonnull (t.dir);
  t.path = g_build_filename (t.dir, "tandem.db", NULL);
  return t;
}

static void
tmp_db_clear (TmpDb *t)
{
  static const char *const suffixes[] = { "", "-wal", "-shm" };
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *file = g_strconcat (t->path, suffixes[i], NULL);
    g_unlink (file);
  }
  g_rmdir (t->dir);
  g_free (t->path);
  g_free (t->dir);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TmpDb, tmp_db_clear)

static sqlite3_stmt *
query (TdStore *store, const char *sql)
{
  g_autoptr (GError) error = NULL;
  sqlite3_stmt *st = td_store_prepare (store, sql, &error);
  g_assert_no_error (error);
  return st;
}

static void
assert_text (sqlite3_stmt *st, int col, const char *want)
{
  g_assert_cmpstr ((const char *) sqlite3_column_text (st, col), ==, want);
}

static gint64
scalar (TdStore *store, const char *sql)
{
  sqlite3_stmt *st = query (store, sql);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  return sqlite3_column_int64 (st, 0);
}

static void
write_cdr (TdStore *store, const TdCdrRecord *rec)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdStoreBatch) batch = td_store_batch_new (store, 0);
  g_autoptr (TdCdr) cdr = td_cdr_new (store, batch, &error);
  g_assert_no_error (error);
  td_cdr_write (cdr, rec);
  td_store_batch_flush (batch);
  g_assert_cmpuint (td_store_batch_pending (batch), ==, 0);
}

#define ROW_SQL "SELECT call_id, session, segment, caller, callee, started_at, answered_at," \
                " ended_at, status, hangup, reason, transferred_by FROM cdrs WHERE call_id = '%s'"

static void
test_segment_round_trip (void)
{
  g_auto (TmpDb) t = tmp_db ();
  g_autoptr (GError) error = NULL;
  g_autoptr (TdStore) store = td_store_open (t.path, FALSE, &error);
  g_assert_no_error (error);

  write_cdr (store, &(TdCdrRecord) {
    .call_id = "seg2@a", .caller = "alice", .callee = "carol",
    .started_us = 1700000010500000, .answered_us = 1700000011000000,
    .ended_us = 1700000070250000, .status = 200, .hangup = TD_HANGUP_TRANSFER,
    .reason = "REFER", .session = "seg1@a", .segment = 2, .transferred_by = "bob",
  });
  sqlite3_stmt *st = query (store, "SELECT call_id, session, segment, caller, callee,"
                            " started_at, answered_at, ended_at, status, hangup, reason,"
                            " transferred_by FROM cdrs");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  assert_text (st, 0, "seg2@a");
  assert_text (st, 1, "seg1@a");
  g_assert_cmpint (sqlite3_column_int (st, 2), ==, 2);
  assert_text (st, 3, "alice");
  assert_text (st, 4, "carol");
  g_assert_cmpfloat (sqlite3_column_double (st, 5), ==, 1700000010.5);
  g_assert_cmpfloat (sqlite3_column_double (st, 6), ==, 1700000011.0);
  g_assert_cmpfloat (sqlite3_column_double (st, 7), ==, 1700000070.25);
  g_assert_cmpint (sqlite3_column_int (st, 8), ==, 200);
  assert_text (st, 9, "transfer");
  assert_text (st, 10, "REFER");
  assert_text (st, 11, "bob");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_DONE);
}

/* A caller that never heard of segments (today's td-call.c) gets segment 1
 * of a session of its own. */
static void
test_unsegmented_defaults (void)
{
  g_auto (TmpDb) t = tmp_db ();
  g_autoptr (GError) error = NULL;
  g_autoptr (TdStore) store = td_store_open (t.path, FALSE, &error);
  g_assert_no_error (error);

  write_cdr (store, &(TdCdrRecord) {
    .call_id = "plain@a", .caller = "alice", .callee = "bob",
    .started_us = 1700000000000000, .ended_us = 1700000001000000,
    .status = 486, .hangup = TD_HANGUP_CALLEE,
  });
  sqlite3_stmt *st = query (store, "SELECT session, segment, transferred_by, answered_at,"
                            " hangup FROM cdrs");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  assert_text (st, 0, "plain@a");
  g_assert_cmpint (sqlite3_column_int (st, 1), ==, 1);
  g_assert_cmpint (sqlite3_column_type (st, 2), ==, SQLITE_NULL);
  g_assert_cmpint (sqlite3_column_type (st, 3), ==, SQLITE_NULL);
  assert_text (st, 4, "callee");
}

/* The schema tandem wrote up to version 2, written here by hand so the test
 * does not depend on the migration code it checks. */
static const char old_schema[] =
  "CREATE TABLE bindings ("
  "  aor TEXT NOT NULL, contact TEXT NOT NULL, call_id TEXT NOT NULL,"
  "  cseq INTEGER NOT NULL, expires_at INTEGER NOT NULL, q INTEGER NOT NULL,"
  "  source TEXT NOT NULL, user_agent TEXT, registered_at INTEGER NOT NULL,"
  "  PRIMARY KEY (aor, contact));"
  "CREATE TABLE cdrs ("
  "  id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, caller TEXT NOT NULL,"
  "  callee TEXT NOT NULL, started_at REAL NOT NULL, answered_at REAL,"
  "  ended_at REAL NOT NULL, status INTEGER NOT NULL, hangup TEXT NOT NULL, reason TEXT);"
  "CREATE INDEX cdrs_started ON cdrs (started_at);"
  "INSERT INTO bindings VALUES ('sip:alice@t', 'sip:alice@127.0.0.1:5070', 'r1', 3,"
  "  1700003600, 1000, 'udp/127.0.0.1:5070', 'ua', 1700000000);"
  "INSERT INTO cdrs VALUES (7, 'old1@a', 'alice', 'bob', 1700000000.25, 1700000002.5,"
  "  1700000060.75, 200, 'caller', NULL);"
  "INSERT INTO cdrs VALUES (9, 'old2@a', 'bob', 'alice', 1700000100, NULL,"
  "  1700000130, 480, 'tandem', 'no answer');"
  "PRAGMA user_version = 2;";

static void
make_old_db (const char *path)
{
  sqlite3 *db = NULL;
  char *msg = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_exec (db, old_schema, NULL, NULL, &msg);
  g_assert_null (msg);
  sqlite3_close (db);
}

/* The CDR tables, indexes and views, as SQLite keeps them. */
static char *
schema_of (TdStore *store)
{
  sqlite3_stmt *st = query (store, "SELECT type, name, tbl_name, sql FROM sqlite_master"
                            " WHERE tbl_name LIKE 'cdr%' ORDER BY type, name");
  GString *s = g_string_new (NULL);
  while (sqlite3_step (st) == SQLITE_ROW)
    for (int i = 0; i < 4; i++)
      g_string_append_printf (s, "%s%c", sqlite3_column_text (st, i), i == 3 ? '\n' : '|');
  return g_string_free (s, FALSE);
}

static void
test_old_schema_migrated (void)
{
  g_auto (TmpDb) old = tmp_db ();
  g_auto (TmpDb) fresh = tmp_db ();
  g_autoptr (GError) error = NULL;

  make_old_db (old.path);
  g_autoptr (TdStore) store = td_store_open (old.path, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (scalar (store, "PRAGMA user_version"), ==, 3);

  /* The old rows, every column, and their ids. */
  sqlite3_stmt *st = query (store, "SELECT id, call_id, session, segment, caller, callee,"
                            " started_at, answered_at, ended_at, status, hangup, reason,"
                            " transferred_by FROM cdrs ORDER BY id");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (st, 0), ==, 7);
  assert_text (st, 1, "old1@a");
  assert_text (st, 2, "old1@a");
  g_assert_cmpint (sqlite3_column_int (st, 3), ==, 1);
  assert_text (st, 4, "alice");
  assert_text (st, 5, "bob");
  g_assert_cmpfloat (sqlite3_column_double (st, 6), ==, 1700000000.25);
  g_assert_cmpfloat (sqlite3_column_double (st, 7), ==, 1700000002.5);
  g_assert_cmpfloat (sqlite3_column_double (st, 8), ==, 1700000060.75);
  g_assert_cmpint (sqlite3_column_int (st, 9), ==, 200);
  assert_text (st, 10, "caller");
  g_assert_cmpint (sqlite3_column_type (st, 11), ==, SQLITE_NULL);
  g_assert_cmpint (sqlite3_column_type (st, 12), ==, SQLITE_NULL);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (st, 0), ==, 9);
  assert_text (st, 2, "old2@a");
  g_assert_cmpint (sqlite3_column_type (st, 7), ==, SQLITE_NULL);
  g_assert_cmpint (sqlite3_column_int (st, 9), ==, 480);
  assert_text (st, 10, "tandem");
  assert_text (st, 11, "no answer");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_DONE);
  g_assert_cmpint (scalar (store, "SELECT count(*) FROM bindings WHERE aor = 'sip:alice@t'"
                           " AND cseq = 3"), ==, 1);
  g_assert_cmpint (scalar (store, "SELECT segments FROM cdr_sessions"
                           " WHERE session = 'old2@a'"), ==, 1);

  /* The upgraded file has the CDR schema a new install gets... */
  g_autoptr (TdStore) new_store = td_store_open (fresh.path, FALSE, &error);
  g_assert_no_error (error);
  g_autofree char *want = schema_of (new_store);
  g_autofree char *got = schema_of (store);
  g_assert_cmpstr (got, ==, want);

  /* ...and takes new rows after the old ones. */
  write_cdr (store, &(TdCdrRecord) {
    .call_id = "new@a", .caller = "alice", .callee = "bob", .started_us = 1700000200000000,
    .ended_us = 1700000201000000, .status = 487, .hangup = TD_HANGUP_CALLER,
  });
  g_assert_cmpint (scalar (store, "SELECT id FROM cdrs WHERE call_id = 'new@a'"), ==, 10);

  /* Opening it again finds nothing left to do. */
  g_clear_pointer (&store, td_store_free);
  store = td_store_open (old.path, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (scalar (store, "SELECT count(*) FROM cdrs"), ==, 3);
}

/* Alice calls bob, bob transfers her to carol: two rows, one conversation. */
static void
test_segments_share_a_session (void)
{
  g_auto (TmpDb) t = tmp_db ();
  g_autoptr (GError) error = NULL;
  g_autoptr (TdStore) store = td_store_open (t.path, FALSE, &error);
  g_assert_no_error (error);

  write_cdr (store, &(TdCdrRecord) {
    .call_id = "a1@a", .caller = "alice", .callee = "bob",
    .started_us = 1700000000000000, .answered_us = 1700000002000000,
    .ended_us = 1700000030000000, .status = 200, .hangup = TD_HANGUP_TRANSFER,
    .segment = 1, .transferred_by = "bob",
  });
  write_cdr (store, &(TdCdrRecord) {   /* someone else's call in between */
    .call_id = "x@a", .caller = "dave", .callee = "erin",
    .started_us = 1700000010000000, .ended_us = 1700000040000000,
    .status = 486, .hangup = TD_HANGUP_CALLEE,
  });
  write_cdr (store, &(TdCdrRecord) {
    .call_id = "a2@a", .caller = "alice", .callee = "carol",
    .started_us = 1700000030000000, .answered_us = 1700000033000000,
    .ended_us = 1700000090000000, .status = 200, .hangup = TD_HANGUP_CALLEE,
    .session = "a1@a", .segment = 2, .transferred_by = "bob",
  });

  sqlite3_stmt *st = query (store, "SELECT call_id, segment, hangup FROM cdrs"
                            " WHERE session = 'a1@a' ORDER BY segment");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  assert_text (st, 0, "a1@a");
  assert_text (st, 2, "transfer");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  assert_text (st, 0, "a2@a");
  g_assert_cmpint (sqlite3_column_int (st, 1), ==, 2);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_DONE);

  st = query (store, "SELECT session, segments, caller, callee, started_at, answered_at,"
              " ended_at, status, hangup FROM cdr_sessions ORDER BY started_at");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  assert_text (st, 0, "a1@a");
  g_assert_cmpint (sqlite3_column_int (st, 1), ==, 2);
  assert_text (st, 2, "alice");
  assert_text (st, 3, "carol");
  g_assert_cmpfloat (sqlite3_column_double (st, 4), ==, 1700000000.0);
  g_assert_cmpfloat (sqlite3_column_double (st, 5), ==, 1700000002.0);
  g_assert_cmpfloat (sqlite3_column_double (st, 6), ==, 1700000090.0);
  g_assert_cmpint (sqlite3_column_int (st, 7), ==, 200);
  assert_text (st, 8, "callee");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  assert_text (st, 0, "x@a");
  g_assert_cmpint (sqlite3_column_int (st, 1), ==, 1);
  assert_text (st, 3, "erin");
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_DONE);

  /* An operator's look-up of one conversation is an index search. */
  st = query (store, "EXPLAIN QUERY PLAN SELECT * FROM cdrs WHERE session = 'a1@a'"
              " ORDER BY segment");
  g_autoptr (GString) plan = g_string_new (NULL);
  while (sqlite3_step (st) == SQLITE_ROW)
    g_string_append_printf (plan, "%s\n", sqlite3_column_text (st, 3));
  g_assert_nonnull (strstr (plan->str, "USING INDEX cdrs_session"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cdr/segment-round-trip", test_segment_round_trip);
  g_test_add_func ("/cdr/unsegmented-defaults", test_unsegmented_defaults);
  g_test_add_func ("/cdr/old-schema-migrated", test_old_schema_migrated);
  g_test_add_func ("/cdr/segments-share-a-session", test_segments_share_a_session);
  return g_test_run ();
}
