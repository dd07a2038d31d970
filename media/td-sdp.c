/* td-sdp: a lenient SDP parser and the relay-anchoring rewriter. */
#define G_LOG_DOMAIN "tandem-sdp"

#include "td-sdp.h"

#include <stdarg.h>
#include <string.h>

G_DEFINE_QUARK (td-sdp-error-quark, td_sdp_error)

/* One m= section. Lines are kept verbatim so that rewriting touches only what
 * tandem must change; the parsed fields are for the accessors. */
typedef struct {
  char *type;                /* "audio" */
  guint16 port;
  char *port_count;          /* "/2" if the m= line has one, else "" */
  char *proto;               /* "RTP/AVP" */
  char *rest;                /* the m= line from <proto> on, verbatim */
  GStrv formats;
  char *address;             /* first media-level c= address, NULL if none */
  gboolean has_direction;
  TdSdpDirection direction;
  gboolean rtcp_mux;
  gint rtcp_port;            /* a=rtcp port, -1 if absent or unparsable */
  GHashTable *rtpmap;        /* payload type → "PCMU/8000" */
  GPtrArray *crypto;         /* a=crypto values, NULL-terminated */
  GPtrArray *lines;          /* the lines after m=, verbatim */
} Media;

struct _TdSdp {
  GPtrArray *session;        /* lines before the first m=, verbatim; v=0 first */
  gboolean has_origin;
  gboolean has_connection;
  char *address;             /* first session-level c= address, NULL if none */
  gboolean has_direction;
  TdSdpDirection direction;
  GPtrArray *media;          /* Media* */
};

static void
media_free (gpointer data)
{
  Media *m = data;

  g_free (m->type);
  g_free (m->port_count);
  g_free (m->proto);
  g_free (m->rest);
  g_strfreev (m->formats);
  g_free (m->address);
  g_hash_table_unref (m->rtpmap);
  g_ptr_array_unref (m->crypto);
  g_ptr_array_unref (m->lines);
  g_free (m);
}

static TdSdp *
sdp_new (void)
{
  TdSdp *sdp = g_new0 (TdSdp, 1);

  sdp->session = g_ptr_array_new_with_free_func (g_free);
  sdp->media = g_ptr_array_new_with_free_func (media_free);
  return sdp;
}

void
td_sdp_free (TdSdp *sdp)
{
  if (sdp == NULL)
    return;
  g_ptr_array_unref (sdp->session);
  g_free (sdp->address);
  g_ptr_array_unref (sdp->media);
  g_free (sdp);
}

/* ---- small lexical helpers ---------------------------------------------- */

static gboolean
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

static const char *
skip_blanks (const char *s)
{
  while (is_blank (*s))
    s++;
  return s;
}

/* The next blank-separated field at *cursor (NULL at the end), its length in
 * *len; advances *cursor past it. RFC 4566 says single spaces, but some
 * stacks pad with more or use tabs, and that costs us nothing to accept. */
static const char *
next_field (const char **cursor, gsize *len)
{
  const char *start = skip_blanks (*cursor);
  const char *end = start;

  while (*end != '\0' && !is_blank (*end))
    end++;
  *cursor = end;
  *len = (gsize) (end - start);
  return *len > 0 ? start : NULL;
}

static GStrv
split_fields (const char *s)
{
  GPtrArray *fields = g_ptr_array_new ();
  const char *field;
  gsize len;

  while ((field = next_field (&s, &len)) != NULL)
    g_ptr_array_add (fields, g_strndup (field, len));
  g_ptr_array_add (fields, NULL);
  return (GStrv) g_ptr_array_free (fields, FALSE);
}

/* A decimal port 0-65535 occupying exactly @len bytes of @s. */
static gboolean
parse_port (const char *s, gsize len, guint16 *out)
{
  guint value = 0;

  if (len == 0 || len > 5)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (s[i]))
        return FALSE;
      value = value * 10 + (guint) (s[i] - '0');
    }
  if (value > G_MAXUINT16)
    return FALSE;
  *out = (guint16) value;
  return TRUE;
}

/* The RTP payload type @fmt names, or -1 if it is not a number 0-127 (as in
 * non-RTP m= lines: "t38", "webrtc-datachannel", "*"). */
static gint
payload_type (const char *fmt)
{
  guint16 pt;

  if (!parse_port (fmt, strlen (fmt), &pt) || pt > 127)
    return -1;
  return pt;
}

/* TRUE if @line is "a=<name>" or "a=<name>:<value>"; *value then points at
 * the value ("" if none). Names compare case-insensitively: leniency. */
static gboolean
attr_is (const char *line, const char *name, const char **value)
{
  gsize n = strlen (name);
  const char *after = line + 2 + n;

  if (line[0] != 'a' || line[1] != '=' || g_ascii_strncasecmp (line + 2, name, n) != 0)
    return FALSE;
  if (*after == ':')
    after++;
  else if (*after != '\0' && !is_blank (*after))
    return FALSE;   /* a longer name: "rtcp-mux" is not "rtcp" */
  if (value != NULL)
    *value = after;
  return TRUE;
}

/* ICE lets the endpoints find a path around tandem's relay, which anchors
 * media precisely so that it can't be bypassed: these attributes are dropped. */
static gboolean
is_ice_attribute (const char *line)
{
  static const char *const ice[] = {
    "candidate", "remote-candidates", "end-of-candidates", "ice-ufrag", "ice-pwd",
    "ice-options", "ice-lite", "ice-mismatch", "ice-pacing",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (ice); i++)
    if (attr_is (line, ice[i], NULL))
      return TRUE;
  return FALSE;
}

/* RFC 5576 source attributes name the SSRCs the other endpoint sends; the
 * relay sends each endpoint its own port's outgoing context instead (one
 * SSRC per leg, kept when its peer changes), so they would be wrong, and
 * they would make a leg moved to a new peer read as a changed session
 * (measured with linphone and baresip: a re-INVITE after every transfer). */
static gboolean
is_source_attribute (const char *line)
{
  return attr_is (line, "ssrc", NULL) || attr_is (line, "ssrc-group", NULL);
}

/* The address of a c= value "<nettype> <addrtype> <address>[/ttl[/n]]",
 * newly allocated, or NULL if malformed. */
static char *
connection_address (const char *value)
{
  g_auto (GStrv) fields = split_fields (value);

  if (g_strv_length (fields) < 3 || fields[2][0] == '/')
    return NULL;
  return g_strndup (fields[2], strcspn (fields[2], "/"));
}

static gboolean
is_hold_address (const char *address)
{
  return g_strcmp0 (address, "0.0.0.0") == 0;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct {
  TdSdp *sdp;
  Media *media;              /* the current m= section; NULL in the session part */
  guint line_no;
  gboolean seen_version;
} Parser;

static gboolean G_GNUC_PRINTF (4, 5)
fail (Parser *p, GError **error, TdSdpError code, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, TD_SDP_ERROR, code, "line %u: %s", p->line_no, msg);
  return FALSE;
}

static gboolean
parse_media (Parser *p, const char *value, GError **error)
{
  const char *cursor = value;
  gsize type_len, port_len, proto_len;
  const char *type = next_field (&cursor, &type_len);
  const char *port = next_field (&cursor, &port_len);
  const char *rest = skip_blanks (cursor);
  const char *proto = next_field (&cursor, &proto_len);
  g_auto (GStrv) formats = split_fields (cursor);
  gsize number_len = port != NULL ? strcspn (port, "/ \t") : 0;
  guint16 port_value, count;

  if (p->sdp->media->len >= TD_SDP_MAX_MEDIA)
    return fail (p, error, TD_SDP_ERROR_TOO_LARGE, "more than %d m= lines", TD_SDP_MAX_MEDIA);
  if (type == NULL || port == NULL || proto == NULL || formats[0] == NULL)
    return fail (p, error, TD_SDP_ERROR_SYNTAX,
                 "malformed m= line, expected m=<media> <port>[/<n>] <proto> <fmt> ...");
  if (!parse_port (port, number_len, &port_value)
      || (number_len < port_len
          && (!parse_port (port + number_len + 1, port_len - number_len - 1, &count) || count == 0)))
    return fail (p, error, TD_SDP_ERROR_SYNTAX, "bad port \"%.*s\" in m= line",
                 (int) port_len, port);
  /* Offer/answer matching compares every format with every other one. */
  if (g_strv_length (formats) > TD_SDP_MAX_FORMATS)
    return fail (p, error, TD_SDP_ERROR_TOO_LARGE, "more than %d formats in m= line",
                 TD_SDP_MAX_FORMATS);

  Media *m = g_new0 (Media, 1);
  m->type = g_strndup (type, type_len);
  m->port = port_value;
  m->port_count = g_strndup (port + number_len, port_len - number_len);
  m->proto = g_strndup (proto, proto_len);
  m->rest = g_strdup (rest);
  m->formats = g_steal_pointer (&formats);
  m->rtcp_port = -1;
  m->rtpmap = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->crypto = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (m->crypto, NULL);
  m->lines = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (p->sdp->media, m);
  p->media = m;
  return TRUE;
}

static gboolean
parse_connection (Parser *p, const char *value, GError **error)
{
  g_autofree char *address = connection_address (value);
  char **slot = p->media != NULL ? &p->media->address : &p->sdp->address;

  /* Unlike other lines, a c= we can't read is an error: it says where media
   * goes, and guessing would send it somewhere else. */
  if (address == NULL)
    return fail (p, error, TD_SDP_ERROR_SYNTAX,
                 "malformed c= line, expected c=<nettype> <addrtype> <address>");
  if (p->media == NULL)
    p->sdp->has_connection = TRUE;
  if (*slot == NULL)   /* several c= lines (multicast layers): the first one counts */
    *slot = g_steal_pointer (&address);
  return TRUE;
}

static gboolean
parse_direction (const char *line, TdSdpDirection *out)
{
  static const char *const names[] = {
    [TD_SDP_SENDRECV] = "sendrecv",
    [TD_SDP_SENDONLY] = "sendonly",
    [TD_SDP_RECVONLY] = "recvonly",
    [TD_SDP_INACTIVE] = "inactive",
  };
  const char *value;

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (attr_is (line, names[i], &value) && *skip_blanks (value) == '\0')
      {
        *out = (TdSdpDirection) i;
        return TRUE;
      }
  return FALSE;
}

/* "a=rtpmap:<pt> <encoding>/<clock>[/<params>]": remember the encoding. A
 * malformed one is ignored (the line still passes through). */
static void
parse_rtpmap (Media *m, const char *value)
{
  const char *cursor = value;
  gsize pt_len, enc_len;
  const char *pt = next_field (&cursor, &pt_len);
  const char *enc = next_field (&cursor, &enc_len);
  g_autofree char *key = NULL;

  if (pt == NULL || enc == NULL)
    return;
  key = g_strndup (pt, pt_len);
  if (!g_hash_table_contains (m->rtpmap, key))
    g_hash_table_insert (m->rtpmap, g_steal_pointer (&key), g_strndup (enc, enc_len));
}

static void
parse_attribute (Parser *p, const char *line)
{
  Media *m = p->media;
  TdSdpDirection direction;
  const char *value;
  gsize len;

  if (parse_direction (line, &direction))
    {
      if (m != NULL)
        {
          m->direction = direction;
          m->has_direction = TRUE;
        }
      else
        {
          p->sdp->direction = direction;
          p->sdp->has_direction = TRUE;
        }
    }
  else if (m == NULL)
    return;   /* the rest are media-level attributes */
  else if (attr_is (line, "rtcp-mux", NULL))
    m->rtcp_mux = TRUE;
  else if (attr_is (line, "rtpmap", &value))
    parse_rtpmap (m, value);
  else if (attr_is (line, "crypto", &value))   /* kept before the terminating NULL */
    g_ptr_array_insert (m->crypto, (gint) m->crypto->len - 1, g_strdup (value));
  else if (attr_is (line, "rtcp", &value))
    {
      const char *port = next_field (&value, &len);
      guint16 rtcp;

      if (m->rtcp_port < 0 && port != NULL && parse_port (port, len, &rtcp))
        m->rtcp_port = rtcp;   /* the first one, like c= */
    }
}

/* Interprets the lines we need to understand; any other is only kept. */
static gboolean
interpret_line (Parser *p, const char *line, GError **error)
{
  switch (line[0])
    {
    case 'm':
      return parse_media (p, line + 2, error);
    case 'c':
      return parse_connection (p, line + 2, error);
    case 'o':
      if (p->media == NULL)
        p->sdp->has_origin = TRUE;
      return TRUE;
    case 'a':
      parse_attribute (p, line);
      return TRUE;
    default:
      return TRUE;
    }
}

static gboolean
parse_line (Parser *p, const char *s, gsize len, GError **error)
{
  gsize blank = 0;

  /* Lines are kept as C strings, and a CR that doesn't end a line could make
   * the next hop see a line (say, a c=) that we passed through as part of
   * another one. */
  if (memchr (s, '\0', len) != NULL)
    return fail (p, error, TD_SDP_ERROR_SYNTAX, "contains a NUL byte");
  if (memchr (s, '\r', len) != NULL)
    return fail (p, error, TD_SDP_ERROR_SYNTAX, "contains a CR that does not end the line");
  while (blank < len && is_blank (s[blank]))
    blank++;
  if (blank == len)
    return TRUE;   /* empty lines are skipped */

  g_autofree char *line = g_strndup (s, len);
  if (len < 2 || !g_ascii_isalpha (line[0]) || line[1] != '=')
    return fail (p, error, TD_SDP_ERROR_SYNTAX, "not of the form x=value");
  if (!p->seen_version)
    {
      if (strcmp (g_strchomp (line), "v=0") != 0)
        return fail (p, error, TD_SDP_ERROR_SYNTAX, "expected v=0 as the first line");
      p->seen_version = TRUE;
    }
  if (!interpret_line (p, line, error))
    return FALSE;
  if (line[0] != 'm')   /* a Media keeps its m= line in parsed form */
    g_ptr_array_add (p->media != NULL ? p->media->lines : p->sdp->session,
                     g_steal_pointer (&line));
  return TRUE;
}

TdSdp *
td_sdp_parse (const char *text, gssize len, GError **error)
{
  g_return_val_if_fail (text != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* strnlen: don't walk an unterminated hostile buffer past the limit. */
  gsize size = len < 0 ? strnlen (text, TD_SDP_MAX_SIZE + 1) : (gsize) len;
  if (size > TD_SDP_MAX_SIZE)
    {
      g_set_error (error, TD_SDP_ERROR, TD_SDP_ERROR_TOO_LARGE,
                   "SDP is larger than %d bytes", TD_SDP_MAX_SIZE);
      return NULL;
    }

  g_autoptr (TdSdp) sdp = sdp_new ();
  Parser p = { .sdp = sdp };
  const char *pos = text, *end = text + size;
  while (pos < end)
    {
      const char *nl = memchr (pos, '\n', (gsize) (end - pos));
      gsize line_len = (gsize) ((nl != NULL ? nl : end) - pos);

      p.line_no++;
      if (line_len > 0 && pos[line_len - 1] == '\r')
        line_len--;
      if (!parse_line (&p, pos, line_len, error))
        return NULL;
      pos = nl != NULL ? nl + 1 : end;
    }

  if (!p.seen_version)
    {
      g_set_error_literal (error, TD_SDP_ERROR, TD_SDP_ERROR_SYNTAX, "empty SDP, expected v=0");
      return NULL;
    }
  if (sdp->media->len == 0)
    {
      g_set_error_literal (error, TD_SDP_ERROR, TD_SDP_ERROR_SYNTAX, "no m= line");
      return NULL;
    }
  return g_steal_pointer (&sdp);
}

/* ---- accessors ---------------------------------------------------------- */

static const Media *
media_at (const TdSdp *sdp, guint i)
{
  g_return_val_if_fail (sdp != NULL, NULL);
  g_return_val_if_fail (i < sdp->media->len, NULL);
  return g_ptr_array_index (sdp->media, i);
}

guint
td_sdp_n_media (const TdSdp *sdp)
{
  g_return_val_if_fail (sdp != NULL, 0);
  return sdp->media->len;
}

const char *
td_sdp_media_type (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  return m != NULL ? m->type : NULL;
}

guint16
td_sdp_media_port (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  return m != NULL ? m->port : 0;
}

const char *
td_sdp_media_proto (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  return m != NULL ? m->proto : NULL;
}

const char *
td_sdp_media_address (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  if (m == NULL)
    return NULL;
  return m->address != NULL ? m->address : sdp->address;
}

TdSdpDirection
td_sdp_media_direction (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  if (m == NULL)
    return TD_SDP_SENDRECV;
  if (m->has_direction)
    return m->direction;
  return sdp->has_direction ? sdp->direction : TD_SDP_SENDRECV;
}

gboolean
td_sdp_media_is_hold (const TdSdp *sdp, guint i)
{
  if (media_at (sdp, i) == NULL)
    return FALSE;

  TdSdpDirection direction = td_sdp_media_direction (sdp, i);
  return direction == TD_SDP_SENDONLY || direction == TD_SDP_INACTIVE
         || is_hold_address (td_sdp_media_address (sdp, i));
}

gboolean
td_sdp_media_rtcp_mux (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  return m != NULL && m->rtcp_mux;
}

guint16
td_sdp_media_rtcp_port (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  if (m == NULL || m->port == 0)
    return 0;
  if (m->rtcp_port >= 0)
    return (guint16) m->rtcp_port;
  return m->port < G_MAXUINT16 ? m->port + 1 : 0;
}

const char *const *
td_sdp_media_formats (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  return m != NULL ? (const char *const *) m->formats : NULL;
}

const char *const *
td_sdp_media_crypto (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);
  return m != NULL ? (const char *const *) m->crypto->pdata : NULL;
}

const char *
td_sdp_media_rtpmap (const TdSdp *sdp, guint i, const char *pt)
{
  const Media *m = media_at (sdp, i);
  g_return_val_if_fail (pt != NULL, NULL);
  return m != NULL ? g_hash_table_lookup (m->rtpmap, pt) : NULL;
}

const char *
td_sdp_static_rtpmap (guint pt)
{
  /* RFC 3551 §6 (1, 2 and 19 are reserved). */
  static const char *const names[] = {
    [0] = "PCMU/8000", [3] = "GSM/8000", [4] = "G723/8000", [5] = "DVI4/8000",
    [6] = "DVI4/16000", [7] = "LPC/8000", [8] = "PCMA/8000", [9] = "G722/8000",
    [10] = "L16/44100/2", [11] = "L16/44100", [12] = "QCELP/8000", [13] = "CN/8000",
    [14] = "MPA/90000", [15] = "G728/8000", [16] = "DVI4/11025", [17] = "DVI4/22050",
    [18] = "G729/8000", [25] = "CelB/90000", [26] = "JPEG/90000", [28] = "nv/90000",
    [31] = "H261/90000", [32] = "MPV/90000", [33] = "MP2T/90000", [34] = "H263/90000",
  };

  return pt < G_N_ELEMENTS (names) ? names[pt] : NULL;
}

/* ---- rewriting ---------------------------------------------------------- */

typedef struct {
  const TdSdpRewrite *rw;
  const char *addrtype;      /* "IP4" / "IP6", for the relay address */
  GString *out;
} Writer;

static void
emit (Writer *w, const char *line)
{
  g_string_append (w->out, line);
  g_string_append (w->out, "\r\n");
}

static void
emit_origin (Writer *w)
{
  g_string_append_printf (w->out, "o=%s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " IN %s %s\r\n",
                          w->rw->origin_user, w->rw->session_id, w->rw->session_version,
                          w->addrtype, w->rw->address);
}

static void
emit_relay_connection (Writer *w)
{
  g_string_append_printf (w->out, "c=IN %s %s\r\n", w->addrtype, w->rw->address);
}

/* A c= line of the input: it points at the relay now, unless it says
 * 0.0.0.0, which is RFC 2543 hold and must reach the far end as such. */
static void
emit_connection (Writer *w, const char *line)
{
  g_autofree char *address = connection_address (line + 2);

  if (is_hold_address (address))
    emit (w, line);
  else
    emit_relay_connection (w);
}

/* The relay is one unicast address, so each level gets one c= line, where
 * the first one of the input was (the one the parser reads); further ones
 * (multicast layers) go. That also keeps the output about the input's size. */

static gboolean replaced_direction (Writer *w, const char *line);

/* RFC 4566 §5 orders the session part v o s i u e p c b t r z k a: a missing
 * session c= goes before the first line that follows c=. */
static void
emit_session (Writer *w, const TdSdp *sdp)
{
  gboolean origin_done = FALSE, connection_done = FALSE;

  emit (w, g_ptr_array_index (sdp->session, 0));   /* v=0 */
  if (!sdp->has_origin)
    {
      emit_origin (w);
      origin_done = TRUE;
    }
  for (guint i = 1; i < sdp->session->len; i++)
    {
      const char *line = g_ptr_array_index (sdp->session, i);

      if (!sdp->has_connection && !connection_done && strchr ("btrzka", line[0]) != NULL)
        {
          emit_relay_connection (w);
          connection_done = TRUE;
        }
      switch (line[0])
        {
        case 'o':   /* a second o= is invalid; one is enough */
          if (!origin_done)
            emit_origin (w);
          origin_done = TRUE;
          break;
        case 'c':
          if (!connection_done)
            emit_connection (w, line);
          connection_done = TRUE;
          break;
        case 'a':
          /* a=rtcp is media-level only; a stray session-level one would
           * name an address past the relay. */
          if (!is_ice_attribute (line) && !is_source_attribute (line) &&
              !attr_is (line, "rtcp", NULL) && !attr_is (line, "crypto", NULL) &&
              !replaced_direction (w, line))
            emit (w, line);
          break;
        default:
          emit (w, line);
        }
    }
  if (!connection_done)
    emit_relay_connection (w);
}

static const char *
direction_name (TdSdpDirection d)
{
  static const char *const names[] = { "sendrecv", "sendonly", "recvonly", "inactive" };
  return names[d];
}

/* A direction attribute the rewrite replaces by its own. */
static gboolean
replaced_direction (Writer *w, const char *line)
{
  TdSdpDirection d;
  return w->rw->set_direction && parse_direction (line, &d);
}

/* The m= line, its proto replaced if the rewrite gives one (m->rest
 * starts with the proto, the formats follow it verbatim). */
static void
emit_media_line (Writer *w, const Media *m, guint16 port, const char *proto)
{
  if (proto == NULL)
    g_string_append_printf (w->out, "m=%s %u%s %s\r\n", m->type, port, m->port_count, m->rest);
  else
    g_string_append_printf (w->out, "m=%s %u%s %s%s\r\n", m->type, port, m->port_count, proto,
                            m->rest + strlen (m->proto));
}

static void
emit_media (Writer *w, const Media *m, guint index, guint16 relay_port)
{
  guint16 port = m->port == 0 ? 0 : relay_port;
  gboolean connection_done = FALSE, rtcp_done = FALSE;
  const char *const *crypto = w->rw->crypto != NULL ? w->rw->crypto[index] : NULL;

  emit_media_line (w, m, port, w->rw->protos != NULL ? w->rw->protos[index] : NULL);
  for (guint i = 0; i < m->lines->len; i++)
    {
      const char *line = g_ptr_array_index (m->lines, i);

      if (line[0] == 'c')
        {
          if (!connection_done)
            emit_connection (w, line);
          connection_done = TRUE;
        }
      else if (is_ice_attribute (line) || is_source_attribute (line) ||
               attr_is (line, "crypto", NULL) || replaced_direction (w, line))
        continue;
      else if (attr_is (line, "rtcp", NULL))
        {
          /* The relay's RTCP port; its address is the c= one. A rejected
           * stream has no RTCP to point anywhere. */
          if (port != 0 && !rtcp_done)
            g_string_append_printf (w->out, "a=rtcp:%u\r\n", port + 1u);
          rtcp_done = TRUE;
        }
      else
        emit (w, line);
    }
  if (w->rw->set_direction && port != 0)
    g_string_append_printf (w->out, "a=%s\r\n", direction_name (w->rw->direction));
  for (guint c = 0; crypto != NULL && crypto[c] != NULL; c++)
    g_string_append_printf (w->out, "a=crypto:%s\r\n", crypto[c]);
}

/* Non-empty, and nothing that would split the o= line into other fields. */
static gboolean
is_token (const char *s)
{
  if (s == NULL || *s == '\0')
    return FALSE;
  for (; *s != '\0'; s++)
    if (g_ascii_isspace (*s) || g_ascii_iscntrl (*s))
      return FALSE;
  return TRUE;
}

static gboolean
rewrite_is_valid (const TdSdp *sdp, const TdSdpRewrite *rw)
{
  g_return_val_if_fail (rw->address != NULL && g_hostname_is_ip_address (rw->address), FALSE);
  g_return_val_if_fail (is_token (rw->origin_user), FALSE);
  g_return_val_if_fail (rw->n_ports == sdp->media->len, FALSE);
  g_return_val_if_fail (rw->ports != NULL, FALSE);
  for (guint i = 0; i < rw->n_ports; i++)
    {
      g_return_val_if_fail (rw->ports[i] < G_MAXUINT16, FALSE);   /* RTCP is port + 1 */
      g_return_val_if_fail (rw->protos == NULL || rw->protos[i] == NULL
                            || is_token (rw->protos[i]), FALSE);
      for (guint c = 0; rw->crypto != NULL && rw->crypto[i] != NULL && rw->crypto[i][c]; c++)
        g_return_val_if_fail (strpbrk (rw->crypto[i][c], "\r\n") == NULL, FALSE);
    }
  return TRUE;
}

char *
td_sdp_rewrite (const TdSdp *sdp, const TdSdpRewrite *rw)
{
  g_return_val_if_fail (sdp != NULL && rw != NULL, NULL);
  if (!rewrite_is_valid (sdp, rw))
    return NULL;

  Writer w = {
    .rw = rw,
    .addrtype = strchr (rw->address, ':') != NULL ? "IP6" : "IP4",
    .out = g_string_sized_new (1024),
  };
  emit_session (&w, sdp);
  for (guint i = 0; i < sdp->media->len; i++)
    emit_media (&w, g_ptr_array_index (sdp->media, i), i, rw->ports[i]);
  return g_string_free (w.out, FALSE);
}

/* ---- selecting formats -------------------------------------------------- */

/* The payload type an a=rtpmap, a=fmtp or a=rtcp-fb line is about, or NULL
 * for any other line (and for "a=rtcp-fb:*", which is about all of them). */
static char *
format_attribute_pt (const char *line)
{
  static const char *const per_format[] = { "rtpmap", "fmtp", "rtcp-fb" };
  const char *value;

  for (gsize i = 0; i < G_N_ELEMENTS (per_format); i++)
    if (attr_is (line, per_format[i], &value) && *value != '*')
      return g_strndup (value, strcspn (value, " \t"));
  return NULL;
}

static gboolean
format_kept (const char *const *formats, const char *fmt)
{
  return fmt == NULL || g_strv_contains (formats, fmt);
}

static void
append_media_text (GString *out, const Media *m, const char *const *formats)
{
  if (formats == NULL)
    {
      g_string_append_printf (out, "m=%s %u%s %s\r\n", m->type, m->port, m->port_count, m->rest);
      formats = (const char *const *) m->formats;
    }
  else
    {
      g_autofree char *list = g_strjoinv (" ", (char **) formats);
      g_string_append_printf (out, "m=%s %u%s %s %s\r\n", m->type, m->port, m->port_count,
                              m->proto, list);
    }
  for (guint i = 0; i < m->lines->len; i++)
    {
      const char *line = g_ptr_array_index (m->lines, i);
      g_autofree char *pt = format_attribute_pt (line);

      if (format_kept (formats, pt))
        g_string_append_printf (out, "%s\r\n", line);
    }
}

TdSdp *
td_sdp_with_formats (const TdSdp *sdp, guint i, const char *const *formats)
{
  const Media *target = media_at (sdp, i);
  g_autoptr (GPtrArray) kept = g_ptr_array_new ();
  g_autoptr (GString) out = g_string_sized_new (1024);

  if (target == NULL)
    return NULL;
  /* In the stream's own order: the answer keeps the offer's preference. */
  for (guint f = 0; target->formats && target->formats[f]; f++)
    if (g_strv_contains (formats, target->formats[f]))
      g_ptr_array_add (kept, target->formats[f]);
  if (kept->len == 0)
    return NULL;
  g_ptr_array_add (kept, NULL);
  for (guint l = 0; l < sdp->session->len; l++)
    g_string_append_printf (out, "%s\r\n", (const char *) g_ptr_array_index (sdp->session, l));
  for (guint m = 0; m < sdp->media->len; m++)
    append_media_text (out, g_ptr_array_index (sdp->media, m),
                       m == i ? (const char *const *) kept->pdata : NULL);
  return td_sdp_parse (out->str, (gssize) out->len, NULL);
}

/* ---- offer/answer ------------------------------------------------------- */

/* The encoding of @fmt in @m: its rtpmap, else the static assignment. */
static const char *
format_encoding (const Media *m, const char *fmt)
{
  const char *enc = g_hash_table_lookup (m->rtpmap, fmt);
  gint pt = payload_type (fmt);

  if (enc == NULL && pt >= 0)
    enc = td_sdp_static_rtpmap ((guint) pt);
  return enc;
}

/* "opus/48000/2" and "OPUS/48000" are the same codec: name and clock rate
 * decide; channels and anything after don't. */
static gboolean
encodings_equal (const char *a, const char *b)
{
  gsize a_len = strcspn (a, "/"), b_len = strcspn (b, "/");

  if (a[a_len] == '/')
    a_len += 1 + strcspn (a + a_len + 1, "/");
  if (b[b_len] == '/')
    b_len += 1 + strcspn (b + b_len + 1, "/");
  return a_len == b_len && g_ascii_strncasecmp (a, b, a_len) == 0;
}

/* Formats that ride along with a codec but carry no voice or picture of
 * their own: sharing only these is not a codec in common. */
static gboolean
format_is_auxiliary (const Media *m, const char *fmt)
{
  static const char *const aux[] = { "telephone-event", "CN", "red", "ulpfec", "flexfec", "rtx" };
  const char *enc = format_encoding (m, fmt);
  gsize len = enc != NULL ? strcspn (enc, "/") : 0;

  for (gsize i = 0; enc != NULL && i < G_N_ELEMENTS (aux); i++)
    if (strlen (aux[i]) == len && g_ascii_strncasecmp (enc, aux[i], len) == 0)
      return TRUE;
  return FALSE;
}

guint32
td_sdp_media_clock_rate (const TdSdp *sdp, guint i)
{
  const Media *m = media_at (sdp, i);

  for (guint f = 0; m && m->formats && m->formats[f]; f++) {
    const char *enc = format_encoding (m, m->formats[f]);
    const char *slash = enc ? strchr (enc, '/') : NULL;
    g_autofree char *digits = NULL;
    guint64 rate;

    if (!enc || format_is_auxiliary (m, m->formats[f]))
      continue;
    if (!slash)
      return 0;
    digits = g_strndup (slash + 1, strcspn (slash + 1, "/"));
    return g_ascii_string_to_unsigned (digits, 10, 1, G_MAXUINT32, &rate, NULL) ? (guint32) rate : 0;
  }
  return 0;
}

static gboolean
formats_equal (const Media *om, const char *ofmt, const Media *am, const char *afmt)
{
  gint opt = payload_type (ofmt), apt = payload_type (afmt);

  if (opt < 0 || apt < 0)
    return g_ascii_strcasecmp (ofmt, afmt) == 0;   /* not RTP: "t38", "*", ... */
  if (opt < 96 && apt < 96)
    return opt == apt;

  /* A dynamic number means whatever the rtpmap says; each side picks its own
   * (RFC 3264 §6.1 lets the answerer renumber). */
  const char *oenc = format_encoding (om, ofmt), *aenc = format_encoding (am, afmt);
  if (oenc == NULL || aenc == NULL)
    return opt == apt;
  return encodings_equal (oenc, aenc);
}

static gboolean
media_share_codec (const Media *offer, const Media *answer)
{
  gboolean offer_has_codec = FALSE;

  for (guint i = 0; offer->formats[i] != NULL; i++)
    if (!format_is_auxiliary (offer, offer->formats[i]))
      offer_has_codec = TRUE;

  for (guint a = 0; answer->formats[a] != NULL; a++)
    {
      if (offer_has_codec && format_is_auxiliary (answer, answer->formats[a]))
        continue;
      for (guint o = 0; offer->formats[o] != NULL; o++)
        if (formats_equal (offer, offer->formats[o], answer, answer->formats[a]))
          return TRUE;
    }
  return FALSE;
}

gboolean
td_sdp_answer_matches_offer (const TdSdp *offer, const TdSdp *answer)
{
  gboolean accepted = FALSE;

  g_return_val_if_fail (offer != NULL && answer != NULL, FALSE);

  for (guint i = 0; i < answer->media->len; i++)
    {
      const Media *a = g_ptr_array_index (answer->media, i);
      const Media *o;

      if (a->port == 0)
        continue;
      /* RFC 3264 §6: the answer's m= lines mirror the offer's, one for one;
       * accepting a stream that wasn't offered (or was offered disabled) is
       * nonsense. */
      if (i >= offer->media->len)
        return FALSE;
      o = g_ptr_array_index (offer->media, i);
      if (o->port == 0 || g_ascii_strcasecmp (o->type, a->type) != 0)
        return FALSE;
      if (!media_share_codec (o, a))
        return FALSE;
      accepted = TRUE;
    }
  return accepted;
}

TdSdpDirection
td_sdp_answer_direction (TdSdpDirection offered)
{
  switch (offered) {
  case TD_SDP_SENDONLY:
    return TD_SDP_RECVONLY;
  case TD_SDP_RECVONLY:
    return TD_SDP_SENDONLY;
  default:
    return offered;
  }
}

const char *
td_sdp_telephone_event (const TdSdp *sdp, guint i, guint32 rate)
{
  g_autofree char *wanted = g_strdup_printf ("telephone-event/%u", rate);
  const char *const *formats = td_sdp_media_formats (sdp, i);

  for (guint f = 0; formats && formats[f]; f++) {
    const char *rtpmap = td_sdp_media_rtpmap (sdp, i, formats[f]);
    if (rtpmap && g_ascii_strncasecmp (rtpmap, wanted, strlen (wanted)) == 0)
      return formats[f];
  }
  return NULL;
}
