/* TdStoreBatch: queued writes, one transaction per batch (td-store-batch.h). */
#define G_LOG_DOMAIN "tandem-store"

#include "td-store-batch.h"

typedef struct {
  TdStoreWriteFunc write;
  TdStoreDoneFunc done;
  gpointer data;
  GDestroyNotify free_data;
  GError *error;               /* how it ended; NULL = committed */
} Job;

struct _TdStoreBatch {
  TdStore *store;              /* borrowed */
  guint delay_ms;
  GArray *queue;               /* Job, in the order added */
  guint timer;                 /* the flush of `queue`; 0 when empty */
};

TdStoreBatch *
td_store_batch_new (TdStore *store, guint delay_ms)
{
  TdStoreBatch *batch = g_new0 (TdStoreBatch, 1);

  batch->store = store;
  batch->delay_ms = delay_ms;
  batch->queue = g_array_new (FALSE, FALSE, sizeof (Job));
  return batch;
}

/* Every job in one transaction. FALSE (nothing of it stays) when any fails. */
static gboolean
run_together (TdStoreBatch *batch, GArray *jobs)
{
  g_autoptr (GError) error = NULL;

  if (!td_store_exec (batch->store, "BEGIN", &error))
    return FALSE;
  for (guint i = 0; i < jobs->len; i++) {
    Job *job = &g_array_index (jobs, Job, i);
    if (!job->write (job->data, &error)) {
      g_debug ("batch of %u: a write failed (%s); each alone now", jobs->len, error->message);
      td_store_exec (batch->store, "ROLLBACK", NULL);
      return FALSE;
    }
  }
  if (td_store_exec (batch->store, "COMMIT", &error))
    return TRUE;
  td_store_exec (batch->store, "ROLLBACK", NULL);
  return FALSE;
}

/* The slow path after a failure: each job its own transaction, its own end. */
static void
run_alone (TdStoreBatch *batch, Job *job)
{
  if (!td_store_exec (batch->store, "BEGIN", &job->error))
    return;
  if (job->write (job->data, &job->error) && td_store_exec (batch->store, "COMMIT", &job->error))
    return;
  td_store_exec (batch->store, "ROLLBACK", NULL);
}

void
td_store_batch_flush (TdStoreBatch *batch)
{
  GArray *jobs = batch->queue;

  g_clear_handle_id (&batch->timer, g_source_remove);
  if (jobs->len == 0)
    return;
  /* Writes queued by the done callbacks go into the next batch. */
  batch->queue = g_array_new (FALSE, FALSE, sizeof (Job));
  if (!run_together (batch, jobs))
    for (guint i = 0; i < jobs->len; i++)
      run_alone (batch, &g_array_index (jobs, Job, i));
  for (guint i = 0; i < jobs->len; i++) {
    Job *job = &g_array_index (jobs, Job, i);
    if (job->done)
      job->done (job->data, job->error);
    if (job->free_data)
      job->free_data (job->data);
    g_clear_error (&job->error);
  }
  g_array_unref (jobs);
}

static gboolean
flush_due (gpointer data)
{
  TdStoreBatch *batch = data;

  batch->timer = 0;
  td_store_batch_flush (batch);
  return G_SOURCE_REMOVE;
}

void
td_store_batch_add (TdStoreBatch *batch, TdStoreWriteFunc write, TdStoreDoneFunc done,
                    gpointer data, GDestroyNotify free_data)
{
  Job job = { .write = write, .done = done, .data = data, .free_data = free_data };

  g_array_append_val (batch->queue, job);
  if (!batch->timer)
    batch->timer = g_timeout_add (batch->delay_ms, flush_due, batch);
}

guint
td_store_batch_pending (TdStoreBatch *batch)
{
  return batch->queue->len;
}

void
td_store_batch_free (TdStoreBatch *batch)
{
  if (!batch)
    return;
  td_store_batch_flush (batch);
  g_array_unref (batch->queue);
  g_free (batch);
}
