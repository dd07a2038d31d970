/* td-sdes: SDES (RFC 4568) negotiation of one leg (td-sdes.h). */
#define G_LOG_DOMAIN "tandem-sdes"

#include "td-sdes.h"

#include <string.h>

G_DEFINE_QUARK (td-sdes-error-quark, td_sdes_error)

/* What tandem offers, in order of preference: tag k+1 is offered[k]. The
 * RFC 4568 default first (every SDES phone has it), AES-192 left out (few
 * speak it; an endpoint's line with it is still taken). */
static const TdSrtpSuite offered[] = {
  TD_SRTP_AES_CM_128_HMAC_SHA1_80, TD_SRTP_AES_CM_128_HMAC_SHA1_32,
  TD_SRTP_AES_256_CM_HMAC_SHA1_80, TD_SRTP_AES_256_CM_HMAC_SHA1_32,
  TD_SRTP_AEAD_AES_128_GCM, TD_SRTP_AEAD_AES_256_GCM,
};

/* A line tandem writes: "<tag> <suite> inline:<base64>", at most
 * 1 + 1 + 23 + 8 + 64 bytes; fixed-size so it can be wiped without
 * knowing its length. */
#define LINE_SIZE 128

typedef enum {
  STREAM_PENDING,   /* nothing usable from the endpoint yet: tandem offers */
  STREAM_PLAIN,     /* plain RTP */
  STREAM_SRTP,      /* SRTP on the endpoint's line `tag` */
} StreamState;

typedef struct {
  StreamState state;
  char *proto;                  /* the endpoint's last proto (PLAIN, SRTP) */
  guint32 tag;                  /* SRTP: the a=crypto line agreed on */
  TdSrtpSuite suite;
  guint8 rx_key[TD_SRTP_MAX_KEY];                   /* the endpoint's */
  guint8 tx_key[TD_SRTP_N_SUITES][TD_SRTP_MAX_KEY]; /* tandem's, per suite */
  gboolean tx_made[TD_SRTP_N_SUITES];
  /* What the last td_sdes_fill_rewrite() gave for this stream. */
  char *fill_proto;
  char *fill_lines[G_N_ELEMENTS (offered) + 1];      /* LINE_SIZE each, NULL-terminated */
} Stream;

struct _TdSdes {
  TdSrtpPolicy policy;
  Stream streams[TD_SDP_MAX_MEDIA];
  const char *protos[TD_SDP_MAX_MEDIA];              /* → fill_proto */
  const char *const *crypto[TD_SDP_MAX_MEDIA];       /* → fill_lines */
};

/* ---- policies ----------------------------------------------------------- */

static const char *const policy_names[] = {
  [TD_SRTP_OFF] = "off", [TD_SRTP_OPTIONAL] = "optional", [TD_SRTP_MANDATORY] = "mandatory",
};

gboolean
td_srtp_policy_from_string (const char *name, TdSrtpPolicy *out)
{
  for (guint p = 0; name != NULL && p < G_N_ELEMENTS (policy_names); p++)
    if (strcmp (name, policy_names[p]) == 0) {
      *out = (TdSrtpPolicy) p;
      return TRUE;
    }
  return FALSE;
}

const char *
td_srtp_policy_name (TdSrtpPolicy policy)
{
  return (guint) policy < G_N_ELEMENTS (policy_names) ? policy_names[policy] : NULL;
}

/* ---- protos ------------------------------------------------------------- */

/* RTP/AVP, RTP/AVPF, RTP/SAVP, RTP/SAVPF (and their /TCP-style tails). */
static gboolean
is_rtp_proto (const char *proto)
{
  return proto != NULL && (g_str_has_prefix (proto, "RTP/AVP") || g_str_has_prefix (proto, "RTP/SAVP"));
}

static gboolean
is_secure_proto (const char *proto)
{
  return g_str_has_prefix (proto, "RTP/SAVP");
}

/* @proto (an RTP one) in its SAVP form or its AVP form; F-ness and any
 * tail kept. */
static char *
proto_form (const char *proto, gboolean secure)
{
  const char *tail = proto + strlen (is_secure_proto (proto) ? "RTP/S" : "RTP/");
  return g_strconcat (secure ? "RTP/S" : "RTP/", tail, NULL);
}

/* ---- base64, strictly --------------------------------------------------- */

static gint
b64_value (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* @len characters of @s as exactly @want bytes: the standard alphabet, the
 * padding RFC 4648 puts there and nowhere else, and zero unused bits, so
 * that one key has one spelling. g_base64_decode() skips what it doesn't
 * know and would take a mangled key. */
static gboolean
decode_key (const char *s, gsize len, guint8 *out, gsize want)
{
  gsize pad = (3 - want % 3) % 3, n = 0;
  guint32 acc = 0;
  guint bits = 0;

  if (want == 0 || len != (want + 2) / 3 * 4)
    return FALSE;
  for (gsize i = 0; i < len - pad; i++) {
    gint v = b64_value (s[i]);
    if (v < 0)
      return FALSE;
    acc = (acc << 6) | (guint32) v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (guint8) (acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  for (gsize i = len - pad; i < len; i++)
    if (s[i] != '=')
      return FALSE;
  return n == want && acc == 0;
}

/* Standard base64 with padding (RFC 4568 §6.1 uses RFC 3548's); @out holds
 * (len + 2) / 3 * 4 + 1 bytes. */
static void
encode_key (const guint8 *key, gsize len, char *out)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  for (gsize i = 0; i < len; i += 3) {
    guint32 group = (guint32) key[i] << 16;
    if (i + 1 < len)
      group |= (guint32) key[i + 1] << 8;
    if (i + 2 < len)
      group |= key[i + 2];
    *out++ = alphabet[group >> 18];
    *out++ = alphabet[(group >> 12) & 63];
    *out++ = i + 1 < len ? alphabet[(group >> 6) & 63] : '=';
    *out++ = i + 2 < len ? alphabet[group & 63] : '=';
  }
  *out = '\0';
}

/* ---- a=crypto lines ----------------------------------------------------- */

typedef struct {
  guint32 tag;
  TdSrtpSuite suite;
  guint8 key[TD_SRTP_MAX_KEY];
} CryptoLine;

/* Why a line is not usable: fixed texts, for td_sdes_check's message (never
 * any of the line itself, which holds a key). NULL: usable. */
typedef const char *Verdict;

static const char *
next_field (const char **cursor, gsize *len)
{
  const char *start = *cursor, *end;

  while (*start == ' ' || *start == '\t')
    start++;
  end = start;
  while (*end != '\0' && *end != ' ' && *end != '\t')
    end++;
  *cursor = end;
  *len = (gsize) (end - start);
  return *len > 0 ? start : NULL;
}

static gboolean
all_digits (const char *s, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit (s[i]))
      return FALSE;
  return len > 0;
}

/* 1*9DIGIT, 1 or more. */
static Verdict
parse_tag (const char *s, gsize len, guint32 *tag)
{
  guint32 value = 0;

  if (!all_digits (s, len) || len > 9)
    return "bad tag";
  for (gsize i = 0; i < len; i++)
    value = value * 10 + (guint32) (s[i] - '0');
  *tag = value;
  return value == 0 ? "bad tag" : NULL;
}

static Verdict
parse_suite (const char *s, gsize len, TdSrtpSuite *suite)
{
  char name[32];

  if (len >= sizeof name)
    return "unknown suite";
  memcpy (name, s, len);
  name[len] = '\0';
  return td_srtp_suite_from_name (name, suite) ? NULL : "unknown suite";
}

/* "inline:<key>[|<lifetime>][|<MKI>:<length>]", one of them (RFC 4568 §9.2
 * allows several, ';'-separated, for MKI use only). */
static Verdict
parse_key_params (const char *s, gsize len, CryptoLine *line)
{
  static const char method[] = "inline:";
  const char *end = s + len, *key, *bar;

  if (len < strlen (method) || g_ascii_strncasecmp (s, method, strlen (method)) != 0)
    return "not an inline key";
  if (memchr (s, ';', len) != NULL)
    return "several keys";
  key = s + strlen (method);
  bar = memchr (key, '|', (gsize) (end - key));
  if (!decode_key (key, (gsize) ((bar ? bar : end) - key), line->key,
                   td_srtp_suite_key_len (line->suite)))
    return "key not strict base64 of the suite's length";
  for (guint part = 0; bar != NULL; part++) {
    const char *p = bar + 1, *next = memchr (p, '|', (gsize) (end - p));
    gsize n = (gsize) ((next ? next : end) - p);

    if (memchr (p, ':', n) != NULL)
      return "MKI not supported";
    /* A lifetime, decimal or 2^n: libsrtp's own limit (2^48) is lower than
     * anything a line can ask for that matters; accepted, not enforced. */
    if (part > 0 || !(all_digits (p, n) || (n > 2 && p[0] == '2' && p[1] == '^'
                                            && all_digits (p + 2, n - 2))))
      return "bad key parameter";
    bar = next;
  }
  return NULL;
}

/* Session parameters (RFC 4568 §6.3): those that change what SRTP does are
 * not usable with tandem's libsrtp policy; an unknown one might, so it is
 * not either. WSH is a hint only, KDR=0 the default. */
static Verdict
parse_session_param (const char *s, gsize len)
{
  if (len > 4 && g_ascii_strncasecmp (s, "WSH=", 4) == 0 && all_digits (s + 4, len - 4))
    return NULL;
  if (len == 5 && g_ascii_strncasecmp (s, "KDR=0", 5) == 0)
    return NULL;
  if (len > 4 && g_ascii_strncasecmp (s, "KDR=", 4) == 0)
    return "KDR not supported";
  if (len >= 11 && g_ascii_strncasecmp (s, "UNENCRYPTED", 11) == 0)
    return "UNENCRYPTED_* not supported";
  if (len >= 15 && g_ascii_strncasecmp (s, "UNAUTHENTICATED", 15) == 0)
    return "UNAUTHENTICATED_SRTP not supported";
  if (len >= 4 && g_ascii_strncasecmp (s, "FEC_", 4) == 0)
    return "FEC_* not supported";
  return "unknown session parameter";
}

/* "<tag> <suite> <key-params> [<session-param> ...]". Never an error of the
 * whole SDP: a line we can't use is skipped, the next may do. */
static Verdict
parse_crypto (const char *value, CryptoLine *line)
{
  const char *cursor = value, *field;
  gsize len;
  Verdict v = NULL;

  if ((field = next_field (&cursor, &len)) == NULL || (v = parse_tag (field, len, &line->tag)))
    return v ? v : "bad tag";
  if ((field = next_field (&cursor, &len)) == NULL || (v = parse_suite (field, len, &line->suite)))
    return v ? v : "unknown suite";
  if ((field = next_field (&cursor, &len)) == NULL)
    return "no key";
  if ((v = parse_key_params (field, len, line)))
    return v;
  while ((field = next_field (&cursor, &len)) != NULL)
    if ((v = parse_session_param (field, len)))
      return v;
  return NULL;
}

static void
wipe (void *p, gsize len)
{
  explicit_bzero (p, len);
}

/* The first usable line of @lines, preferring one of @tag and @suite (tag 0:
 * none); *why says why the first line is not usable ("none given" if there
 * is no line). */
static gboolean
pick_line (const char *const *lines, guint32 tag, TdSrtpSuite suite, CryptoLine *out,
           Verdict *why)
{
  gboolean found = FALSE;
  CryptoLine line;

  *why = "none given";
  for (guint l = 0; lines[l] != NULL; l++) {
    Verdict v = parse_crypto (lines[l], &line);

    if (l == 0)
      *why = v;
    if (v != NULL)
      continue;
    if (!found || (line.tag == tag && line.suite == suite))
      *out = line;
    found = TRUE;
    if (line.tag == tag && line.suite == suite)
      break;
  }
  wipe (&line, sizeof line);
  return found;
}

/* ---- the leg ------------------------------------------------------------ */

TdSdes *
td_sdes_new (TdSrtpPolicy policy)
{
  TdSdes *sdes = g_new0 (TdSdes, 1);

  g_return_val_if_fail (td_srtp_policy_name (policy) != NULL, sdes);
  sdes->policy = policy;
  return sdes;
}

static void
clear_fill (TdSdes *sdes)
{
  for (guint i = 0; i < TD_SDP_MAX_MEDIA; i++) {
    Stream *st = &sdes->streams[i];

    g_clear_pointer (&st->fill_proto, g_free);
    for (guint l = 0; st->fill_lines[l] != NULL; l++) {
      wipe (st->fill_lines[l], LINE_SIZE);
      g_clear_pointer (&st->fill_lines[l], g_free);
    }
    sdes->protos[i] = NULL;
    sdes->crypto[i] = NULL;
  }
}

void
td_sdes_free (TdSdes *sdes)
{
  if (sdes == NULL)
    return;
  clear_fill (sdes);
  for (guint i = 0; i < TD_SDP_MAX_MEDIA; i++)
    g_free (sdes->streams[i].proto);
  wipe (sdes, sizeof *sdes);
  g_free (sdes);
}

TdSrtpPolicy
td_sdes_get_policy (const TdSdes *sdes)
{
  return sdes->policy;
}

gboolean
td_sdes_check (const TdSdes *sdes, const TdSdp *remote, GError **error)
{
  for (guint i = 0; i < td_sdp_n_media (remote); i++) {
    const char *proto = td_sdp_media_proto (remote, i);
    const char *type = td_sdp_media_type (remote, i);
    CryptoLine line;
    Verdict why;
    gboolean secure, usable;

    if (td_sdp_media_port (remote, i) == 0 || !is_rtp_proto (proto))
      continue;
    secure = is_secure_proto (proto);
    usable = pick_line (td_sdp_media_crypto (remote, i), 0, TD_SRTP_SUITE_NONE, &line, &why);
    wipe (&line, sizeof line);
    if (sdes->policy == TD_SRTP_OFF && secure) {
      g_set_error (error, TD_SDES_ERROR, TD_SDES_ERROR_REFUSED,
                   "stream %u (%s): SRTP is off here; %s refused", i + 1, type, proto);
      return FALSE;
    }
    if (sdes->policy == TD_SRTP_MANDATORY && !secure) {
      g_set_error (error, TD_SDES_ERROR, TD_SDES_ERROR_REFUSED,
                   "stream %u (%s): SRTP is mandatory here; %s %s", i + 1, type, proto,
                   usable ? "instead of RTP/SAVP(F)" : "without a usable a=crypto");
      return FALSE;
    }
    if (sdes->policy != TD_SRTP_OFF && secure && !usable) {
      g_set_error (error, TD_SDES_ERROR, TD_SDES_ERROR_REFUSED,
                   "stream %u (%s): %s without a usable a=crypto (%s%s)", i + 1, type, proto,
                   td_sdp_media_crypto (remote, i)[0] != NULL ? "the first: " : "", why);
      return FALSE;
    }
  }
  return TRUE;
}

static const guint8 *
tx_key (Stream *st, TdSrtpSuite suite)
{
  if (!st->tx_made[suite]) {
    td_srtp_random_key (suite, st->tx_key[suite]);
    st->tx_made[suite] = TRUE;
  }
  return st->tx_key[suite];
}

static void
take_stream (TdSdes *sdes, Stream *st, const TdSdp *remote, guint i)
{
  const char *proto = td_sdp_media_proto (remote, i);
  CryptoLine line;
  Verdict why;

  if (!is_rtp_proto (proto)) {   /* not ours to secure; nothing for the relay */
    st->state = STREAM_PENDING;
    return;
  }
  g_free (st->proto);
  st->proto = g_strdup (proto);
  if (sdes->policy == TD_SRTP_OFF
      || !pick_line (td_sdp_media_crypto (remote, i), st->state == STREAM_SRTP ? st->tag : 0,
                     st->suite, &line, &why)) {
    st->state = STREAM_PLAIN;
    wipe (st->rx_key, sizeof st->rx_key);
    return;
  }
  st->state = STREAM_SRTP;
  st->tag = line.tag;
  st->suite = line.suite;
  memcpy (st->rx_key, line.key, sizeof st->rx_key);
  wipe (&line, sizeof line);
  tx_key (st, st->suite);   /* the relay needs it now, before tandem's SDP goes */
}

void
td_sdes_take_remote (TdSdes *sdes, const TdSdp *remote)
{
  guint n = td_sdp_n_media (remote);

  g_return_if_fail (n <= TD_SDP_MAX_MEDIA);
  clear_fill (sdes);
  for (guint i = 0; i < n; i++)
    if (td_sdp_media_port (remote, i) != 0)
      take_stream (sdes, &sdes->streams[i], remote, i);
}

TdSrtpSuite
td_sdes_stream_keys (const TdSdes *sdes, guint i, const guint8 **rx_key, const guint8 **tx_key_out)
{
  const Stream *st = i < TD_SDP_MAX_MEDIA ? &sdes->streams[i] : NULL;

  if (st == NULL || st->state != STREAM_SRTP) {
    *rx_key = *tx_key_out = NULL;
    return TD_SRTP_SUITE_NONE;
  }
  *rx_key = st->rx_key;
  *tx_key_out = st->tx_key[st->suite];
  return st->suite;
}

/* "<tag> <suite> inline:<tandem's key>" into @slot (LINE_SIZE bytes). */
static void
write_line (Stream *st, guint32 tag, TdSrtpSuite suite, char **slot)
{
  char b64[(TD_SRTP_MAX_KEY + 2) / 3 * 4 + 1];

  encode_key (tx_key (st, suite), td_srtp_suite_key_len (suite), b64);
  *slot = g_malloc (LINE_SIZE);
  g_snprintf (*slot, LINE_SIZE, "%u %s inline:%s", tag, td_srtp_suite_name (suite), b64);
  wipe (b64, sizeof b64);
}

static void
fill_stream (TdSdes *sdes, Stream *st, const char *proto, gboolean rejected)
{
  gboolean offer = FALSE;

  switch (st->state) {
  case STREAM_PENDING:
    st->fill_proto = proto_form (proto, sdes->policy == TD_SRTP_MANDATORY);
    offer = sdes->policy != TD_SRTP_OFF;
    break;
  case STREAM_PLAIN:
    st->fill_proto = proto_form (st->proto, FALSE);
    break;
  case STREAM_SRTP:
    st->fill_proto = g_strdup (st->proto);
    if (!rejected)
      write_line (st, st->tag, st->suite, &st->fill_lines[0]);
    break;
  }
  for (guint k = 0; offer && !rejected && k < G_N_ELEMENTS (offered); k++)
    write_line (st, k + 1, offered[k], &st->fill_lines[k]);
}

void
td_sdes_fill_rewrite (TdSdes *sdes, const TdSdp *from, TdSdpRewrite *rw)
{
  guint n = td_sdp_n_media (from);

  g_return_if_fail (n <= TD_SDP_MAX_MEDIA);
  g_return_if_fail (rw->protos == NULL && rw->crypto == NULL);
  clear_fill (sdes);
  for (guint i = 0; i < n; i++) {
    Stream *st = &sdes->streams[i];
    const char *proto = td_sdp_media_proto (from, i);

    if (!is_rtp_proto (proto))
      continue;   /* m=application, TCP, DTLS...: as it is, no crypto */
    fill_stream (sdes, st, proto, td_sdp_media_port (from, i) == 0);
    sdes->protos[i] = st->fill_proto;
    sdes->crypto[i] = st->fill_lines[0] != NULL ? (const char *const *) st->fill_lines : NULL;
  }
  rw->protos = sdes->protos;
  rw->crypto = sdes->crypto;
}
