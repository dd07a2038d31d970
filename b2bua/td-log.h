/* TdLogSink: where tandem's log lines go (stderr, or the journal when
 * stderr is journald's socket) and from which level on ([log] level). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  GLogLevelFlags level;   /* the most verbose level written */
  gboolean journald;      /* stderr is the journal: found once, at start */
} TdLogSink;

void td_log_sink_init (TdLogSink *sink, GLogLevelFlags level);

/* A GLogWriterFunc; user_data: a TdLogSink. Any thread. */
GLogWriterOutput td_log_writer (GLogLevelFlags level, const GLogField *fields,
                                gsize n_fields, gpointer user_data);

G_END_DECLS
