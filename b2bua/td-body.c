/* td-body: the SDP of a SIP message body (see td-body.h).
 *
 * A small parser of its own rather than Sofia's msg_multipart_parse(): that
 * one needs a message home and parses every part into a header chain, where
 * tandem wants only to find one part and to bound what a hostile body can
 * make it do (nesting depth, every read within `len`). */
#include "td-body.h"

#include <gio/gio.h>
#include <string.h>

/* multipart inside multipart inside ...: real bodies nest once (RFC 5621
 * §3.1, multipart/alternative inside multipart/mixed). */
#define MAX_NESTING 4
/* RFC 2046 §5.1.1: 1 to 70 characters. */
#define MAX_BOUNDARY 70

/* What one entity (the whole body, or a part) holds for tandem. */
typedef enum {
  PART_SDP,         /* the session's SDP: *sdp, *sdp_len */
  PART_IGNORED,     /* nothing tandem needs, and it may be skipped */
  PART_REFUSED,     /* it may not be skipped, or it is malformed: error set */
} PartKind;

/* ---- header values ------------------------------------------------------------- */

/* The leading token of a value ("multipart/mixed" of "multipart/mixed;
 * boundary=x"), trimmed. */
static char *
value_token (const char *value)
{
  g_autofree char *token = g_strndup (value, strcspn (value, ";"));
  return g_strdup (g_strstrip (token));
}

static gboolean
token_is (const char *value, const char *want)
{
  g_autofree char *token = value_token (value);
  return g_ascii_strcasecmp (token, want) == 0;
}

/* The parameter `name` of a header value (RFC 2045 §5.1: token or
 * quoted-string, names case-insensitive), unquoted; NULL if absent or
 * unterminated. */
static char *
value_param (const char *value, const char *name)
{
  const char *p = strchr (value, ';');

  while (p && *p == ';') {
    const char *n, *n_end;
    g_autoptr (GString) v = g_string_new (NULL);

    p++;
    while (*p == ' ' || *p == '\t')
      p++;
    n = p;
    p += strcspn (p, "=; \t");
    n_end = p;
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p == '=') {
      p++;
      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
          if (*p == '\\' && p[1])
            p++;
          g_string_append_c (v, *p);
        }
        if (*p != '"')
          return NULL;
        p++;
      } else {
        gsize tlen = strcspn (p, "; \t");
        g_string_append_len (v, p, tlen);
        p += tlen;
      }
    }
    if ((gsize) (n_end - n) == strlen (name) && g_ascii_strncasecmp (n, name, n_end - n) == 0)
      return g_string_free (g_steal_pointer (&v), FALSE);
    p += strcspn (p, ";");
  }
  return NULL;
}

/* handling=required (RFC 3261 §20.11). Its default would be "required",
 * but bodies seen in the field (PIDF-LO by reference, ISUP) often carry no
 * Content-Disposition at all while the call must go on without them: only
 * an explicit "required" stops tandem. */
static gboolean
handling_required (const char *disposition)
{
  g_autofree char *handling = disposition ? value_param (disposition, "handling") : NULL;
  return handling && g_ascii_strcasecmp (handling, "required") == 0;
}

/* ---- one entity ------------------------------------------------------------------ */

static PartKind find_in_entity (const char *ctype, const char *disposition, const char *cte,
                                const char *body, gsize len, guint depth, const char **sdp,
                                gsize *sdp_len, GError **error);

/* A part tandem does not use: skipped, unless it must not be. */
static PartKind
skip_part (const char *ctype, const char *disposition, GError **error)
{
  if (!handling_required (disposition))
    return PART_IGNORED;
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               "a body part tandem cannot use (%s, disposition %s) has handling=required",
               ctype, disposition);
  return PART_REFUSED;
}

/* The next "--boundary" at the start of a line in [from, end) (the body's
 * first line counts as one: start), followed by "--" (*closing) or by
 * transport padding and a line end; NULL if there is none. *next: where
 * the following part starts. */
static const char *
find_delimiter (const char *start, const char *from, const char *end, const char *dash_boundary,
                gsize dlen, gboolean *closing, const char **next)
{
  for (const char *q = from; q + dlen <= end; q++) {
    const char *r = q + dlen;
    if ((q != start && q[-1] != '\n') || memcmp (q, dash_boundary, dlen) != 0)
      continue;
    if (r + 2 <= end && r[0] == '-' && r[1] == '-') {
      *closing = TRUE;
      *next = end;
      return q;
    }
    while (r < end && (*r == ' ' || *r == '\t'))
      r++;
    if (r < end && *r == '\r')
      r++;
    if (r < end && *r == '\n') {
      *closing = FALSE;
      *next = r + 1;
      return q;
    }
  }
  return NULL;
}

/* Sets *name (owned by the caller) to a part header's value if the unfolded
 * line is that header. */
static void
take_header (const char *line, const char *header, char **value)
{
  gsize hlen = strlen (header);
  const char *after = line + hlen;

  if (g_ascii_strncasecmp (line, header, hlen) != 0)
    return;
  while (*after == ' ' || *after == '\t')
    after++;
  if (*after != ':')
    return;
  g_free (*value);
  *value = g_strstrip (g_strdup (after + 1));
}

static void
take_headers (const char *line, char **ctype, char **disposition, char **cte)
{
  take_header (line, "Content-Type", ctype);
  take_header (line, "Content-Disposition", disposition);
  take_header (line, "Content-Transfer-Encoding", cte);
}

/* One part, [p, end): its headers up to the empty line, then its body. */
static PartKind
find_in_part (const char *p, const char *end, guint depth, const char **sdp, gsize *sdp_len,
              GError **error)
{
  g_autofree char *ctype = NULL, *disposition = NULL, *cte = NULL;
  g_autoptr (GString) line = g_string_new (NULL);

  for (;;) {
    const char *eol = memchr (p, '\n', end - p);
    /* A part may end among its headers: RFC 2046 §5.1.1 makes the body
     * optional ("--b CRLF Content-Type: x CRLF --b", or no headers at all). */
    gsize n = (eol ? eol : end) - p;
    if (n && p[n - 1] == '\r')
      n--;
    /* A folded line continues the header before it. */
    if (line->len && (n == 0 || (*p != ' ' && *p != '\t'))) {
      take_headers (line->str, &ctype, &disposition, &cte);
      g_string_truncate (line, 0);
    }
    g_string_append_len (line, p, n);
    p = eol ? eol + 1 : end;
    if (n == 0 || !eol)
      break;
  }
  if (line->len)
    take_headers (line->str, &ctype, &disposition, &cte);
  /* RFC 2046 §5.1: a part without Content-Type is text/plain. */
  return find_in_entity (ctype ? ctype : "text/plain", disposition, cte, p, end - p, depth,
                         sdp, sdp_len, error);
}

/* Every part of a multipart body: the first SDP of the session counts (of a
 * multipart/alternative the last, the sender's preferred one: RFC 2046
 * §5.1.4), but every part is looked at, since any one may forbid going on
 * without it. */
static PartKind
find_in_multipart (const char *ctype, const char *body, gsize len, guint depth,
                   const char **sdp, gsize *sdp_len, GError **error)
{
  g_autofree char *boundary = value_param (ctype, "boundary");
  g_autofree char *dash_boundary = NULL;
  const char *end = body + len, *part, *q;
  const char *found = NULL;
  gsize found_len = 0, dlen;
  gboolean closing = FALSE;
  gboolean last_wins = token_is (ctype, "multipart/alternative");

  if (depth >= MAX_NESTING) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                 "multipart bodies nested more than %d deep", MAX_NESTING);
    return PART_REFUSED;
  }
  if (!boundary || !*boundary || strlen (boundary) > MAX_BOUNDARY) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 "%s without a valid boundary parameter", ctype);
    return PART_REFUSED;
  }
  dash_boundary = g_strconcat ("--", boundary, NULL);
  dlen = strlen (dash_boundary);
  /* The preamble before the first delimiter means nothing. */
  if (!find_delimiter (body, body, end, dash_boundary, dlen, &closing, &part) || closing) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 "multipart body without parts (boundary \"%s\")", boundary);
    return PART_REFUSED;
  }
  while (!closing) {
    const char *next, *part_end;
    const char *psdp = NULL;
    gsize psdp_len = 0;
    PartKind kind;

    if (!(q = find_delimiter (body, part, end, dash_boundary, dlen, &closing, &next))) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "multipart body without its closing delimiter (boundary \"%s\")", boundary);
      return PART_REFUSED;
    }
    /* The line end before a delimiter belongs to the delimiter. */
    part_end = q;
    if (part_end > part && part_end[-1] == '\n')
      part_end--;
    if (part_end > part && part_end[-1] == '\r')
      part_end--;
    kind = find_in_part (part, part_end, depth + 1, &psdp, &psdp_len, error);
    if (kind == PART_REFUSED)
      return PART_REFUSED;
    if (kind == PART_SDP && (!found || last_wins)) {
      found = psdp;
      found_len = psdp_len;
    }
    part = next;
  }
  if (!found)
    return PART_IGNORED;
  *sdp = found;
  *sdp_len = found_len;
  return PART_SDP;
}

static PartKind
find_in_entity (const char *ctype, const char *disposition, const char *cte, const char *body,
                gsize len, guint depth, const char **sdp, gsize *sdp_len, GError **error)
{
  if (token_is (ctype, "application/sdp")) {
    /* Only the session's description: not an early-session one (RFC 3959)
     * nor one to render; and only as plain text. */
    if ((disposition && !token_is (disposition, "session")) ||
        (cte && !token_is (cte, "7bit") && !token_is (cte, "8bit") && !token_is (cte, "binary")))
      return skip_part (ctype, disposition, error);
    *sdp = body;
    *sdp_len = len;
    return PART_SDP;
  }
  if (g_ascii_strncasecmp (ctype, "multipart/", strlen ("multipart/")) == 0) {
    PartKind kind = find_in_multipart (ctype, body, len, depth, sdp, sdp_len, error);
    return kind == PART_IGNORED ? skip_part (ctype, disposition, error) : kind;
  }
  return skip_part (ctype, disposition, error);
}

/* ---- the message body ------------------------------------------------------------- */

TdBodyKind
td_body_find_sdp (const char *content_type, const char *disposition, const char *body,
                  gsize len, const char **sdp, gsize *sdp_len, GError **error)
{
  g_autoptr (GError) local = NULL;
  const char *found = NULL;
  gsize found_len = 0;

  if (!body || len == 0)
    return TD_BODY_NONE;
  switch (find_in_entity (content_type ? content_type : "application/sdp", disposition, NULL,
                          body, len, 0, &found, &found_len, &local)) {
  case PART_SDP:
    if (sdp)
      *sdp = found;
    if (sdp_len)
      *sdp_len = found_len;
    return TD_BODY_SDP;
  case PART_REFUSED:
    g_propagate_error (error, g_steal_pointer (&local));
    return TD_BODY_UNUSABLE;
  case PART_IGNORED:
  default:
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                 "no session description (application/sdp) in the %s body",
                 content_type ? content_type : "message");
    return TD_BODY_UNUSABLE;
  }
}
