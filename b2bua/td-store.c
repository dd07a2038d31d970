/* TdStore: open the SQLite file, set it up for durability, keep its schema. */
#define G_LOG_DOMAIN "tandem-store"

#include "td-store.h"

G_DEFINE_QUARK (td-store-error-quark, td_store_error)

/* SQLite's own autocheckpoint threshold, in WAL frames (pages). */
#define CHECKPOINT_FRAMES 1000
#define CHECKPOINT_INTERVAL_US (2 * G_USEC_PER_SEC)

struct _TdStore {
  sqlite3 *db;             /* the SIP thread's connection */
  char *path;
  GPtrArray *statements;   /* sqlite3_stmt*, finalized on free */
  gboolean full_sync;

  /* The checkpointer thread; lock guards the two flags. */
  GThread *checkpointer;
  GMutex lock;
  GCond wake;
  gboolean checkpoint_due;
  gboolean stopping;
};

/* Version 1: bindings. Each schema change appends a step; user_version says
 * which steps a file has seen, so old files upgrade in place. */
static const char *const schema_steps[] = {
  "CREATE TABLE bindings ("
  "  aor TEXT NOT NULL,"
  "  contact TEXT NOT NULL,"
  "  call_id TEXT NOT NULL,"
  "  cseq INTEGER NOT NULL,"
  "  expires_at INTEGER NOT NULL,"     /* Unix seconds */
  "  q INTEGER NOT NULL,"              /* q-value × 1000 */
  "  source TEXT NOT NULL,"            /* transport/address the REGISTER came from */
  "  user_agent TEXT,"
  "  registered_at INTEGER NOT NULL,"
  "  PRIMARY KEY (aor, contact));",
  /* Version 2: one call detail record per call. */
  "CREATE TABLE cdrs ("
  "  id INTEGER PRIMARY KEY,"
  "  call_id TEXT NOT NULL,"           /* the A-leg's Call-ID */
  "  caller TEXT NOT NULL,"
  "  callee TEXT NOT NULL,"
  "  started_at REAL NOT NULL,"        /* Unix seconds with fraction */
  "  answered_at REAL,"                /* NULL: never answered */
  "  ended_at REAL NOT NULL,"
  "  status INTEGER NOT NULL,"         /* final SIP status of the call (200 if answered) */
  "  hangup TEXT NOT NULL,"            /* caller, callee or tandem */
  "  reason TEXT);"
  "CREATE INDEX cdrs_started ON cdrs (started_at);",
  /* Version 3: a transferred call is one conversation in several segments.
   * The table is rebuilt (SQLite's documented way to change a table) rather
   * than ALTERed so session can be NOT NULL like the other keys, and an old
   * file ends with the same schema as a new one; old rows become segment 1
   * of a session named by their own call_id. */
  "CREATE TABLE cdrs_v3 ("
  "  id INTEGER PRIMARY KEY,"
  "  call_id TEXT NOT NULL,"           /* the A-leg's Call-ID */
  "  session TEXT NOT NULL,"           /* shared by a conversation's segments: the first's call_id */
  "  segment INTEGER NOT NULL DEFAULT 1," /* 1, then 2 after the first transfer, ... */
  "  caller TEXT NOT NULL,"
  "  callee TEXT NOT NULL,"
  "  started_at REAL NOT NULL,"        /* Unix seconds with fraction */
  "  answered_at REAL,"                /* NULL: never answered */
  "  ended_at REAL NOT NULL,"
  "  status INTEGER NOT NULL,"         /* final SIP status of the segment (200 if answered) */
  "  hangup TEXT NOT NULL,"            /* caller, callee, tandem or transfer */
  "  reason TEXT,"
  "  transferred_by TEXT);"            /* the user whose transfer ended or began the segment */
  "INSERT INTO cdrs_v3 (id, call_id, session, segment, caller, callee, started_at,"
  "  answered_at, ended_at, status, hangup, reason)"
  "  SELECT id, call_id, call_id, 1, caller, callee, started_at, answered_at, ended_at,"
  "  status, hangup, reason FROM cdrs;"
  "DROP TABLE cdrs;"
  "ALTER TABLE cdrs_v3 RENAME TO cdrs;"
  "CREATE INDEX cdrs_started ON cdrs (started_at);"
  "CREATE INDEX cdrs_session ON cdrs (session, segment);"
  /* One row per conversation: who called, who was last talked to, from the
   * first start to the last end, and how the last segment ended. */
  "CREATE VIEW cdr_sessions AS SELECT"
  "  s.session, s.segments, f.caller, l.callee, s.started_at, s.answered_at, s.ended_at,"
  "  l.status, l.hangup, l.reason"
  "  FROM (SELECT session, count(*) AS segments, min(started_at) AS started_at,"
  "        min(answered_at) AS answered_at, max(ended_at) AS ended_at"
  "        FROM cdrs GROUP BY session) s"
  "  JOIN cdrs f ON f.id = (SELECT id FROM cdrs WHERE session = s.session"
  "                         ORDER BY segment, id LIMIT 1)"
  "  JOIN cdrs l ON l.id = (SELECT id FROM cdrs WHERE session = s.session"
  "                         ORDER BY segment DESC, id DESC LIMIT 1);",
};

static void
finalize_statement (gpointer stmt)
{
  sqlite3_finalize (stmt);
}

gboolean
td_store_fail (TdStore *store, const char *what, GError **error)
{
  g_set_error (error, TD_STORE_ERROR, sqlite3_errcode (store->db), "%s: %s: %s",
               store->path, what, sqlite3_errmsg (store->db));
  return FALSE;
}

gboolean
td_store_exec (TdStore *store, const char *sql, GError **error)
{
  char *msg = NULL;
  if (sqlite3_exec (store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    g_set_error (error, TD_STORE_ERROR, sqlite3_errcode (store->db), "%s: %s",
                 store->path, msg ? msg : sqlite3_errmsg (store->db));
    sqlite3_free (msg);
    return FALSE;
  }
  return TRUE;
}

sqlite3_stmt *
td_store_prepare (TdStore *store, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2 (store->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    td_store_fail (store, "prepare", error);
    return NULL;
  }
  g_ptr_array_add (store->statements, stmt);
  return stmt;
}

static gboolean
migrate (TdStore *store, GError **error)
{
  sqlite3_stmt *stmt;
  int version = 0;

  if (sqlite3_prepare_v2 (store->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
    return td_store_fail (store, "read schema version", error);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    version = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);

  if (version > (int) G_N_ELEMENTS (schema_steps)) {
    g_set_error (error, TD_STORE_ERROR, 0,
                 "%s: schema version %d is newer than this tandem knows (%u)",
                 store->path, version, (guint) G_N_ELEMENTS (schema_steps));
    return FALSE;
  }
  for (guint i = version; i < G_N_ELEMENTS (schema_steps); i++) {
    g_autofree char *bump = g_strdup_printf ("PRAGMA user_version = %u", i + 1);
    if (!td_store_exec (store, "BEGIN", error) ||
        !td_store_exec (store, schema_steps[i], error) ||
        !td_store_exec (store, bump, error) ||
        !td_store_exec (store, "COMMIT", error))
      return FALSE;
  }
  return TRUE;
}

/* The checkpointer: its own connection, woken when the WAL has grown past
 * CHECKPOINT_FRAMES or every CHECKPOINT_INTERVAL_US. PASSIVE never blocks
 * the writer: it copies what no reader still needs and leaves the rest. A
 * busy timeout is harmless here, on this thread. */
static gpointer
checkpoint_thread (gpointer data)
{
  TdStore *store = data;
  sqlite3 *db = NULL;

  if (sqlite3_open_v2 (store->path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    g_warning ("%s: checkpoint connection: %s", store->path, sqlite3_errmsg (db));
    sqlite3_close (db);
    return NULL;
  }
  sqlite3_busy_timeout (db, 1000);
  sqlite3_exec (db, store->full_sync ? "PRAGMA synchronous = FULL"
                                     : "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
  g_mutex_lock (&store->lock);
  while (!store->stopping) {
    gint64 until = g_get_monotonic_time () + CHECKPOINT_INTERVAL_US;
    while (!store->checkpoint_due && !store->stopping &&
           g_cond_wait_until (&store->wake, &store->lock, until))
      ;
    if (store->stopping)
      break;
    store->checkpoint_due = FALSE;
    g_mutex_unlock (&store->lock);
    if (sqlite3_wal_checkpoint_v2 (db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK &&
        sqlite3_errcode (db) != SQLITE_BUSY)
      g_warning ("%s: checkpoint: %s", store->path, sqlite3_errmsg (db));
    g_mutex_lock (&store->lock);
  }
  g_mutex_unlock (&store->lock);
  sqlite3_close (db);
  return NULL;
}

/* After each commit on the SIP thread's connection: hand a grown WAL to the
 * checkpointer (a signal, no wait). */
static int
on_wal_commit (void *data, sqlite3 *db, const char *name, int frames)
{
  TdStore *store = data;

  if (frames >= CHECKPOINT_FRAMES) {
    g_mutex_lock (&store->lock);
    store->checkpoint_due = TRUE;
    g_cond_signal (&store->wake);
    g_mutex_unlock (&store->lock);
  }
  return SQLITE_OK;
}

static gboolean
start_checkpointer (TdStore *store, GError **error)
{
  /* Replaces SQLite's autocheckpoint, which would run on this thread. */
  sqlite3_wal_hook (store->db, on_wal_commit, store);
  store->checkpointer = g_thread_try_new ("td-store-ckpt", checkpoint_thread, store, error);
  return store->checkpointer != NULL;
}

TdStore *
td_store_open (const char *path, gboolean full_sync, GError **error)
{
  g_autoptr (TdStore) store = g_new0 (TdStore, 1);

  store->path = g_strdup (path);
  store->full_sync = full_sync;
  store->statements = g_ptr_array_new_with_free_func (finalize_statement);
  g_mutex_init (&store->lock);
  g_cond_init (&store->wake);
  if (sqlite3_open_v2 (path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
      != SQLITE_OK) {
    td_store_fail (store, "open", error);
    return NULL;
  }
  /* No busy timeout: the store is tandem's own and its only writer, and the
   * SIP thread must never sleep in SQLite waiting for a lock. Should another
   * process write the file anyway (an operator's sqlite3 shell), tandem's
   * statement fails at once with SQLITE_BUSY and that one request gets an
   * error response; WAL readers never block tandem's writes. */
  sqlite3_busy_timeout (store->db, 0);
  if (!td_store_exec (store, "PRAGMA journal_mode = WAL", error) ||
      !td_store_exec (store, full_sync ? "PRAGMA synchronous = FULL"
                                       : "PRAGMA synchronous = NORMAL", error) ||
      !migrate (store, error) || !start_checkpointer (store, error))
    return NULL;
  return g_steal_pointer (&store);
}

void
td_store_free (TdStore *store)
{
  if (!store)
    return;
  if (store->checkpointer) {
    g_mutex_lock (&store->lock);
    store->stopping = TRUE;
    g_cond_signal (&store->wake);
    g_mutex_unlock (&store->lock);
    g_thread_join (store->checkpointer);
  }
  g_mutex_clear (&store->lock);
  g_cond_clear (&store->wake);
  g_clear_pointer (&store->statements, g_ptr_array_unref);
  if (store->db)
    sqlite3_close (store->db);
  g_free (store->path);
  g_free (store);
}

sqlite3 *
td_store_db (TdStore *store)
{
  return store->db;
}
