/* TdSipLog: one debug line per SIP message tandem receives or sends.
 *
 * Sofia-SIP's transport layer can print every message it sends and receives
 * (TPTAG_LOG); TdSipLog takes that text through su_log's redirect and reduces
 * each message to the identifiers a reader of a call flow needs: direction,
 * peer, method or status, Call-ID, CSeq, top Via branch, From and To tags.
 * Enabled only at debug level: per-message logging costs too much under load.
 * Other Sofia-SIP log output is passed on as GLib debug messages. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TdSipLog TdSipLog;

TdSipLog *td_siplog_new (void);   /* takes over Sofia-SIP's default log */
void td_siplog_free (TdSipLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdSipLog, td_siplog_free)

/* Reduce one message dump (stamp line, then the message lines) to a summary.
 * Exposed for unit tests. */
char *td_siplog_summarize (const char *dump);

G_END_DECLS
