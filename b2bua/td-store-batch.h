/* TdStoreBatch: group commit for the TdStore. Writes (a binding, a CDR) are
 * queued and run together in one transaction a few milliseconds later, on
 * the SIP thread, then each writer hears how its write ended.
 *
 * Why: one transaction per write costs a BEGIN, a COMMIT, the WAL's page
 * writes and file locks each time (~20% of a registration's CPU, ~6% of a
 * call's, measured 2026-12-03), and with synchronous = full an fsync each.
 * Batched, those are paid once per batch. A write acknowledged to anyone
 * (the 200 to a REGISTER) is acknowledged from its done callback, after the
 * COMMIT: nothing is claimed stored before it is. What a SIGKILL can lose is
 * only what was never acknowledged: the queue of the last `delay_ms` (CDRs
 * included — documented in tandem.conf, [store] batch-ms).
 *
 * Each write is atomic on its own, as if unbatched: when one fails, the
 * batch rolls back and each write is run again in a transaction of its own,
 * so one bad write fails alone. */
#pragma once

#include <glib.h>
#include "td-store.h"

G_BEGIN_DECLS

typedef struct _TdStoreBatch TdStoreBatch;

/* Runs inside the batch's transaction; FALSE + error to fail this write. */
typedef gboolean (*TdStoreWriteFunc) (gpointer data, GError **error);
/* On the SIP thread once the write is committed (error NULL) or failed. */
typedef void (*TdStoreDoneFunc) (gpointer data, const GError *error);

/* `delay_ms`: how long the first queued write waits for others (0: the next
 * main-loop pass). `store` is borrowed. */
TdStoreBatch *td_store_batch_new (TdStore *store, guint delay_ms);
/* Flushes what is queued (done callbacks run), then frees. */
void td_store_batch_free (TdStoreBatch *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdStoreBatch, td_store_batch_free)

/* Queue a write. `done` may be NULL; `free_data` (may be NULL) runs after
 * `done`. */
void td_store_batch_add (TdStoreBatch *batch, TdStoreWriteFunc write, TdStoreDoneFunc done,
                         gpointer data, GDestroyNotify free_data);
/* Write what is queued now (shutdown, tests). */
void td_store_batch_flush (TdStoreBatch *batch);
guint td_store_batch_pending (TdStoreBatch *batch);

G_END_DECLS
