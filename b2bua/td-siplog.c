/* TdSipLog: Sofia-SIP's transport dump → one GLib debug line per message. */
#define G_LOG_DOMAIN "tandem-sip"

#include "td-siplog.h"

#include <sofia-sip/su_log.h>
#include <string.h>

#define SEPARATOR "   ------------------------------------------------------------------------"

struct _TdSipLog {
  GString *pending;     /* the message being dumped, line by line */
  gboolean in_message;  /* between the stamp and the closing separator */
};

/* The value of header `name` (or its compact form) in a dump's lines. */
static char *
header_value (char **lines, const char *name, const char *compact)
{
  for (guint i = 1; lines[i]; i++) {
    char *colon = strchr (lines[i], ':');
    g_autofree char *key = NULL;
    if (!colon)
      continue;
    key = g_strstrip (g_strndup (lines[i], colon - lines[i]));
    if (g_ascii_strcasecmp (key, name) == 0 || (compact && g_ascii_strcasecmp (key, compact) == 0))
      return g_strstrip (g_strdup (colon + 1));
  }
  return NULL;
}

/* ";name=value" out of a header value, or "-". */
static char *
param_value (const char *header, const char *name)
{
  g_autofree char *needle = g_strconcat (";", name, "=", NULL);
  const char *p = header ? strstr (header, needle) : NULL;
  if (!p)
    return g_strdup ("-");
  p += strlen (needle);
  return g_strndup (p, strcspn (p, ";,> \t"));
}

char *
td_siplog_summarize (const char *dump)
{
  g_auto (GStrv) lines = g_strsplit (dump, "\n", -1);
  g_autofree char *call_id = NULL, *cseq = NULL, *via = NULL, *from = NULL, *to = NULL;
  g_autofree char *branch = NULL, *ftag = NULL, *ttag = NULL, *first = NULL;
  g_autofree char *stamp = NULL;
  guint start = 0;

  /* Line 0 is Sofia's stamp: "recv 456 bytes from udp/[127.0.0.1]:5061 at ...". */
  if (!lines[0])
    return NULL;
  stamp = g_strdup (lines[0]);
  if (strstr (stamp, " at "))
    *strstr (stamp, " at ") = '\0';
  for (start = 1; lines[start] && !*g_strstrip (lines[start]); start++)
    ;
  if (!lines[start])
    return NULL;
  first = g_strdup (lines[start]);
  call_id = header_value (lines + start, "Call-ID", "i");
  cseq = header_value (lines + start, "CSeq", NULL);
  via = header_value (lines + start, "Via", "v");
  from = header_value (lines + start, "From", "f");
  to = header_value (lines + start, "To", "t");
  branch = param_value (via, "branch");
  ftag = param_value (from, "tag");
  ttag = param_value (to, "tag");
  /* A request line ends in SIP/2.0; a status line starts with it. */
  if (g_str_has_prefix (first, "SIP/2.0 "))
    memmove (first, first + 8, strlen (first + 8) + 1);
  else if (strchr (first, ' '))
    *strchr (first, ' ') = '\0';
  return g_strdup_printf ("%s: %s | Call-ID %s | CSeq %s | branch %s | from-tag %s | to-tag %s",
                          stamp, first, call_id ? call_id : "-", cseq ? cseq : "-",
                          branch, ftag, ttag);
}

static void
flush (TdSipLog *log)
{
  g_autofree char *line = td_siplog_summarize (log->pending->str);
  if (line)
    g_debug ("%s", line);
  g_string_truncate (log->pending, 0);
  log->in_message = FALSE;
}

/* Sofia calls this for every fragment it logs: the stamp plus the opening
 * separator, then each message line in pieces, then the closing separator. */
static void
logger (void *stream, char const *fmt, va_list ap)
{
  TdSipLog *log = stream;
  g_autofree char *text = g_strdup_vprintf (fmt, ap);

  if (g_str_has_prefix (text, "recv ") || g_str_has_prefix (text, "send ")) {
    if (log->in_message)
      flush (log);
    log->in_message = TRUE;
    /* keep the stamp line; drop the opening separator */
    g_string_append_len (log->pending, text, strcspn (text, "\n"));
    g_string_append_c (log->pending, '\n');
    return;
  }
  if (log->in_message) {
    g_string_append (log->pending, text);
    if (strstr (log->pending->str, SEPARATOR)) {
      *strstr (log->pending->str, SEPARATOR) = '\0';
      log->pending->len = strlen (log->pending->str);
      flush (log);
    }
    return;
  }
  g_strchomp (text);
  if (*text)
    g_debug ("sofia: %s", text);
}

TdSipLog *
td_siplog_new (void)
{
  TdSipLog *log = g_new0 (TdSipLog, 1);
  log->pending = g_string_new (NULL);
  su_log_redirect (NULL, logger, log);
  return log;
}

void
td_siplog_free (TdSipLog *log)
{
  if (!log)
    return;
  su_log_redirect (NULL, NULL, NULL);
  g_string_free (log->pending, TRUE);
  g_free (log);
}
