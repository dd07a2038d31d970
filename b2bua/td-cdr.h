/* TdCdr: call detail records in the TdStore, one row per segment of a call:
 * a call that is never transferred is one segment; each transfer ends one
 * segment and begins the next, all under the first segment's session. */
#pragma once

#include <glib.h>
#include "td-store-batch.h"

G_BEGIN_DECLS

typedef enum {
  TD_HANGUP_CALLER,
  TD_HANGUP_CALLEE,
  TD_HANGUP_TANDEM,   /* timers, errors, shutdown */
  TD_HANGUP_TRANSFER, /* the segment ended because its party was transferred away */
} TdHangup;

typedef struct {
  const char *call_id;      /* the A-leg's Call-ID */
  const char *caller;
  const char *callee;
  gint64 started_us;        /* g_get_real_time() values; answered 0 = never */
  gint64 answered_us;
  gint64 ended_us;
  int status;
  TdHangup hangup;
  const char *reason;       /* may be NULL */
  const char *session;      /* shared by every segment of one conversation: the
                             * first segment's call_id; NULL = this call_id */
  guint segment;            /* 1 for the first part, 2 after the first transfer...; 0 = 1 */
  const char *transferred_by; /* the user whose transfer ended or began this
                               * segment; NULL if none */
} TdCdrRecord;

typedef struct _TdCdr TdCdr;

/* `batch` writes the records (both borrowed). */
TdCdr *td_cdr_new (TdStore *store, TdStoreBatch *batch, GError **error);
void td_cdr_free (TdCdr *cdr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdCdr, td_cdr_free)

/* Queues a copy of `rec` in the batch; a record that cannot be written is
 * logged as a warning naming its call. */
void td_cdr_write (TdCdr *cdr, const TdCdrRecord *rec);
const char *td_hangup_name (TdHangup hangup);

G_END_DECLS
