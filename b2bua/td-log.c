/* The log writer (td-log.h). It runs for every line, at the default level a
 * few per call: it asks whether stderr is the journal once, not per line (a
 * getpeername each time), and stamps the line with localtime_r (the zone
 * read once), not a GDateTime (a zone lookup, a stat and a readlink per
 * line). One write per line still: a line logged is a line on disk, even if
 * tandem dies just after. */
#include "td-log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void
td_log_sink_init (TdLogSink *sink, GLogLevelFlags level)
{
  sink->level = level;
  sink->journald = g_log_writer_is_journald (fileno (stderr));
}

static const char *
level_name (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR) return "ERROR";
  if (level & G_LOG_LEVEL_CRITICAL) return "CRITICAL";
  if (level & G_LOG_LEVEL_WARNING) return "WARNING";
  if (level & G_LOG_LEVEL_MESSAGE) return "MESSAGE";
  if (level & G_LOG_LEVEL_INFO) return "INFO";
  return "DEBUG";
}

GLogWriterOutput
td_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
               gpointer user_data)
{
  const TdLogSink *sink = user_data;
  const char *domain = "tandem", *message = "";
  struct timespec ts;
  struct tm tm;

  /* GLib's levels grow more verbose as the bit value grows. */
  if ((level & G_LOG_LEVEL_MASK) > sink->level)
    return G_LOG_WRITER_HANDLED;
  if (sink->journald)
    return g_log_writer_journald (level, fields, n_fields, NULL);
  for (gsize i = 0; i < n_fields; i++) {
    if (strcmp (fields[i].key, "GLIB_DOMAIN") == 0)
      domain = fields[i].value;
    else if (strcmp (fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
  }
  clock_gettime (CLOCK_REALTIME, &ts);
  localtime_r (&ts.tv_sec, &tm);
  fprintf (stderr, "%02d:%02d:%02d.%03ld %s %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
           ts.tv_nsec / 1000000, level_name (level), domain, message);
  fflush (stderr);
  return G_LOG_WRITER_HANDLED;
}
