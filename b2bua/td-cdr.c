/* TdCdr: write call detail records as calls end, in the store's batches. */
#define G_LOG_DOMAIN "tandem-cdr"

#include "td-cdr.h"

struct _TdCdr {
  TdStore *store;     /* borrowed */
  TdStoreBatch *batch; /* borrowed */
  sqlite3_stmt *insert;
};

/* A record queued: the TdCdrRecord with strings of its own. */
typedef struct {
  TdCdr *cdr;
  TdCdrRecord rec;
  char *strings[6];
} Queued;

TdCdr *
td_cdr_new (TdStore *store, TdStoreBatch *batch, GError **error)
{
  g_autoptr (TdCdr) cdr = g_new0 (TdCdr, 1);
  cdr->store = store;
  cdr->batch = batch;
  cdr->insert = td_store_prepare (store,
      "INSERT INTO cdrs (call_id, caller, callee, started_at, answered_at, ended_at,"
      " status, hangup, reason, session, segment, transferred_by)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", error);
  return cdr->insert ? g_steal_pointer (&cdr) : NULL;
}

void
td_cdr_free (TdCdr *cdr)
{
  g_free (cdr);
}

const char *
td_hangup_name (TdHangup hangup)
{
  switch (hangup) {
  case TD_HANGUP_CALLER: return "caller";
  case TD_HANGUP_CALLEE: return "callee";
  case TD_HANGUP_TRANSFER: return "transfer";
  case TD_HANGUP_TANDEM:
  default: return "tandem";
  }
}

static gboolean
insert (TdCdr *cdr, const TdCdrRecord *rec, GError **error)
{
  sqlite3_stmt *st = cdr->insert;
  int rc;

  sqlite3_bind_text (st, 1, rec->call_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, rec->caller, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, rec->callee, -1, SQLITE_STATIC);
  sqlite3_bind_double (st, 4, rec->started_us / 1e6);
  if (rec->answered_us)
    sqlite3_bind_double (st, 5, rec->answered_us / 1e6);
  else
    sqlite3_bind_null (st, 5);
  sqlite3_bind_double (st, 6, rec->ended_us / 1e6);
  sqlite3_bind_int (st, 7, rec->status);
  sqlite3_bind_text (st, 8, td_hangup_name (rec->hangup), -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 9, rec->reason, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 10, rec->session ? rec->session : rec->call_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 11, MAX (rec->segment, 1));
  sqlite3_bind_text (st, 12, rec->transferred_by, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  return rc == SQLITE_DONE ? TRUE : td_store_fail (cdr->store, "write CDR", error);
}

static gboolean
write_queued (gpointer data, GError **error)
{
  Queued *q = data;
  return insert (q->cdr, &q->rec, error);
}

static void
queued_done (gpointer data, const GError *error)
{
  Queued *q = data;
  if (error)
    g_warning ("call %s: CDR not written: %s", q->rec.call_id, error->message);
}

static void
queued_free (gpointer data)
{
  Queued *q = data;
  for (guint i = 0; i < G_N_ELEMENTS (q->strings); i++)
    g_free (q->strings[i]);
  g_free (q);
}

/* Keeps a copy of `*field` in q and points the field at it. */
static void
own (Queued *q, guint slot, const char **field)
{
  *field = q->strings[slot] = g_strdup (*field);
}

void
td_cdr_write (TdCdr *cdr, const TdCdrRecord *rec)
{
  Queued *q = g_new0 (Queued, 1);

  q->cdr = cdr;
  q->rec = *rec;
  own (q, 0, &q->rec.call_id);
  own (q, 1, &q->rec.caller);
  own (q, 2, &q->rec.callee);
  own (q, 3, &q->rec.reason);
  own (q, 4, &q->rec.session);
  own (q, 5, &q->rec.transferred_by);
  td_store_batch_add (cdr->batch, write_queued, queued_done, q, queued_free);
}
