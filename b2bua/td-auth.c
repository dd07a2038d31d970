/* TdAuth: digest challenges and credential checks (see td-auth.h). */
#define G_LOG_DOMAIN "tandem-auth"

#include "td-auth.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* A nonce is, before encoding:
 *   [0..7]   issue time, g_get_monotonic_time() µs, big-endian
 *   [8]      the TdDigestAlgorithm it was offered for
 *   [9..16]  random bytes, so two nonces issued in the same µs differ
 *   [17..32] first 16 bytes of HMAC-SHA256(process secret, bytes 0..16)
 * and travels as unpadded base64url. The HMAC makes it self-authenticating,
 * so issuing one stores nothing. */
enum {
  NONCE_TIME_OFF = 0,
  NONCE_ALG_OFF = 8,
  NONCE_RAND_OFF = 9,
  NONCE_MAC_OFF = 17,
  NONCE_MAC_LEN = 16,
  NONCE_RAW_LEN = NONCE_MAC_OFF + NONCE_MAC_LEN,
  NONCE_TEXT_LEN = NONCE_RAW_LEN / 3 * 4,
};
/* A multiple of 3 bytes base64-encodes without '=' padding. */
G_STATIC_ASSERT (NONCE_RAW_LEN % 3 == 0);

#define SECRET_LEN 32
#define OPAQUE_LEN 16

/* Hashed in place of the password of an unknown user, so that the answer
 * costs the same and timing does not tell which users exist. */
static const char dummy_password[] = "tandem: no such user";

struct _TdAuth {
  char *realm;
  char *opaque;
  TdDigestAlgorithm *algorithms;
  guint n_algorithms;
  gint64 lifetime_us;
  GHashTable *used;  /* nonce string -> UsedNonce, nonces accepted at least once */
  /* The same UsedNonces in the order of their first use, which is nearly
   * the order they were issued in: expiry pops from the head instead of
   * scanning the table (11-13 ms on the SIP thread every 5 s at 300,000
   * nonces, 1.3 ms now: bench/auth/nonce-expiry-bench). A list through the
   * entries themselves (their next and key pointers: 16 bytes each), no
   * node to allocate. */
  struct _UsedNonce *oldest, *newest;
};

typedef struct _UsedNonce {
  struct _UsedNonce *next;  /* first used after this one */
  const char *nonce;        /* the table's key */
  gint64 issued_us;
  guint64 last_nc;
  gboolean has_nc;  /* FALSE while the nonce was only used by RFC 2069 clients */
} UsedNonce;

/* What could be read from a nonce presented by a client. */
typedef struct {
  gboolean authentic;  /* ours: the HMAC checks */
  gboolean alg_known;  /* the algorithm byte could be read */
  TdDigestAlgorithm alg;
  gint64 issued_us;
} NonceInfo;

static void
fill_random (guint8 *buf, gsize len)
{
  gsize done = 0;

  while (done < len)
    {
      ssize_t n = getrandom (buf + done, len - done, 0);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          /* Without entropy every nonce would be forgeable: refuse to run. */
          g_error ("getrandom: %s", g_strerror (errno));
        }
      done += (gsize) n;
    }
}

/* One secret for the whole process, so that a TdAuth rebuilt on
 * configuration reload still accepts the nonces it handed out before; a
 * restart changes it, and old nonces then become stale. */
static const guint8 *
process_secret (void)
{
  static guint8 secret[SECRET_LEN];
  static gsize initialised = 0;

  if (g_once_init_enter (&initialised))
    {
      fill_random (secret, sizeof secret);
      g_once_init_leave (&initialised, 1);
    }
  return secret;
}

static void
nonce_mac (const guint8 raw[NONCE_RAW_LEN], guint8 mac[32])
{
  g_autoptr (GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA256, process_secret (), SECRET_LEN);
  gsize mac_len = 32;

  g_hmac_update (hmac, raw, NONCE_MAC_OFF);
  g_hmac_get_digest (hmac, mac, &mac_len);
}

static gboolean
algorithm_valid (TdDigestAlgorithm alg)
{
  return alg == TD_DIGEST_MD5 || alg == TD_DIGEST_SHA256;
}

static char *
nonce_issue (TdDigestAlgorithm alg, gint64 now_us)
{
  guint8 raw[NONCE_RAW_LEN];
  guint64 time_be = GUINT64_TO_BE ((guint64) now_us);
  guint32 noise[2] = { g_random_int (), g_random_int () };
  guint8 mac[32];

  /* The random bytes only make nonces unique; unpredictability comes from
   * the HMAC, so GLib's PRNG is good enough here. */
  memcpy (raw + NONCE_TIME_OFF, &time_be, sizeof time_be);
  raw[NONCE_ALG_OFF] = (guint8) alg;
  memcpy (raw + NONCE_RAND_OFF, noise, sizeof noise);
  nonce_mac (raw, mac);
  memcpy (raw + NONCE_MAC_OFF, mac, NONCE_MAC_LEN);

  char *text = g_base64_encode (raw, sizeof raw);
  for (char *c = text; *c; c++)
    {
      if (*c == '+')
        *c = '-';
      else if (*c == '/')
        *c = '_';
    }
  return text;
}

/* Decodes base64url strictly (g_base64_decode would skip stray characters). */
static gboolean
nonce_decode (const char *nonce, guint8 raw[NONCE_RAW_LEN])
{
  char text[NONCE_TEXT_LEN + 1];

  if (strlen (nonce) != NONCE_TEXT_LEN)
    return FALSE;
  for (gsize i = 0; i < NONCE_TEXT_LEN; i++)
    {
      char c = nonce[i];
      if (c == '-')
        c = '+';
      else if (c == '_')
        c = '/';
      else if (!g_ascii_isalnum (c))
        return FALSE;
      text[i] = c;
    }
  text[NONCE_TEXT_LEN] = '\0';

  gsize len = 0;
  g_autofree guint8 *decoded = g_base64_decode (text, &len);
  if (len != NONCE_RAW_LEN)
    return FALSE;
  memcpy (raw, decoded, NONCE_RAW_LEN);
  return TRUE;
}

static NonceInfo
nonce_open (const char *nonce)
{
  NonceInfo info = { 0 };
  guint8 raw[NONCE_RAW_LEN];
  guint8 mac[32];
  guint64 time_be;
  guint diff = 0;

  if (!nonce_decode (nonce, raw))
    return info;

  /* Read even when the HMAC fails: a nonce from before a restart names the
   * algorithm the client was really offered. Trusting it costs nothing, as
   * it can only turn STALE into FAILED. */
  if (algorithm_valid ((TdDigestAlgorithm) raw[NONCE_ALG_OFF]))
    {
      info.alg_known = TRUE;
      info.alg = (TdDigestAlgorithm) raw[NONCE_ALG_OFF];
    }
  memcpy (&time_be, raw + NONCE_TIME_OFF, sizeof time_be);
  info.issued_us = (gint64) GUINT64_FROM_BE (time_be);

  /* Constant time, so the MAC cannot be guessed a byte at a time. */
  nonce_mac (raw, mac);
  for (gsize i = 0; i < NONCE_MAC_LEN; i++)
    diff |= mac[i] ^ raw[NONCE_MAC_OFF + i];
  info.authentic = diff == 0 && info.alg_known;
  return info;
}

static gboolean
nonce_fresh (const TdAuth *auth, gint64 issued_us, gint64 now_us)
{
  gint64 age = now_us - issued_us;
  /* A nonce from the future cannot be ours: treat it as expired. */
  return age >= 0 && age < auth->lifetime_us;
}

static char *
random_hex (gsize n_bytes)
{
  g_autofree guint8 *bytes = g_malloc (n_bytes);
  GString *hex = g_string_sized_new (n_bytes * 2);

  fill_random (bytes, n_bytes);
  for (gsize i = 0; i < n_bytes; i++)
    g_string_append_printf (hex, "%02x", bytes[i]);
  return g_string_free (hex, FALSE);
}

static gboolean
algorithms_valid (const TdDigestAlgorithm *algorithms, guint n_algorithms)
{
  if (algorithms == NULL || n_algorithms == 0)
    return FALSE;
  for (guint i = 0; i < n_algorithms; i++)
    if (!algorithm_valid (algorithms[i]))
      return FALSE;
  return TRUE;
}

TdAuth *
td_auth_new (const char *realm, const TdDigestAlgorithm *algorithms,
             guint n_algorithms, guint nonce_lifetime_s)
{
  g_return_val_if_fail (realm != NULL, NULL);
  g_return_val_if_fail (algorithms_valid (algorithms, n_algorithms), NULL);
  g_return_val_if_fail (nonce_lifetime_s > 0, NULL);

  TdAuth *auth = g_new0 (TdAuth, 1);
  auth->realm = g_strdup (realm);
  auth->opaque = random_hex (OPAQUE_LEN);
  auth->algorithms = g_memdup2 (algorithms, n_algorithms * sizeof *algorithms);
  auth->n_algorithms = n_algorithms;
  auth->lifetime_us = (gint64) nonce_lifetime_s * G_USEC_PER_SEC;
  auth->used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return auth;
}

void
td_auth_free (TdAuth *auth)
{
  if (auth == NULL)
    return;
  g_free (auth->realm);
  g_free (auth->opaque);
  g_free (auth->algorithms);
  g_clear_pointer (&auth->used, g_hash_table_unref);   /* frees the list's entries */
  g_free (auth);
}

void
td_auth_set_algorithms (TdAuth *auth, const TdDigestAlgorithm *algorithms,
                        guint n_algorithms)
{
  g_return_if_fail (auth != NULL);
  g_return_if_fail (algorithms_valid (algorithms, n_algorithms));

  /* Nonces carry their own algorithm and the HMAC key does not change, so
   * nonces already issued stay valid. */
  g_free (auth->algorithms);
  auth->algorithms = g_memdup2 (algorithms, n_algorithms * sizeof *algorithms);
  auth->n_algorithms = n_algorithms;
}

/* Appends s as a quoted-string (RFC 3261 §25.1). */
static void
append_quoted (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s; s++)
    {
      if (*s == '"' || *s == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, *s);
    }
  g_string_append_c (out, '"');
}

static char *
challenge_one (TdAuth *auth, TdDigestAlgorithm alg, gboolean stale, gint64 now_us)
{
  g_autofree char *nonce = nonce_issue (alg, now_us);
  GString *h = g_string_new ("Digest realm=");

  append_quoted (h, auth->realm);
  g_string_append_printf (h, ", nonce=\"%s\", opaque=\"%s\", algorithm=%s, qop=\"auth\"",
                          nonce, auth->opaque, td_digest_algorithm_name (alg));
  if (stale)
    g_string_append (h, ", stale=true");
  return g_string_free (h, FALSE);
}

char **
td_auth_challenge_for (TdAuth *auth, const TdDigestAlgorithm *algorithms,
                       guint n_algorithms, gboolean stale, gint64 now_us)
{
  g_return_val_if_fail (auth != NULL, NULL);
  g_return_val_if_fail (algorithms_valid (algorithms, n_algorithms), NULL);

  char **headers = g_new0 (char *, n_algorithms + 1);
  for (guint i = 0; i < n_algorithms; i++)
    headers[i] = challenge_one (auth, algorithms[i], stale, now_us);
  return headers;
}

char **
td_auth_challenge (TdAuth *auth, gboolean stale, gint64 now_us)
{
  g_return_val_if_fail (auth != NULL, NULL);
  return td_auth_challenge_for (auth, auth->algorithms, auth->n_algorithms, stale, now_us);
}

/* ---- parsing ---- */

static const char *
skip_spaces (const char *s)
{
  while (g_ascii_isspace (*s))
    s++;
  return s;
}

/* The unquoted value of a parameter, or NULL if it is malformed
 * (unterminated quoted-string, or text after the closing quote). */
static char *
unquote_value (const char *v)
{
  v = skip_spaces (v);
  if (*v != '"')
    return g_strchomp (g_strdup (v));

  g_autoptr (GString) out = g_string_new (NULL);
  for (v++; *v != '"'; v++)
    {
      if (*v == '\\')
        v++;  /* quoted-pair: the next character stands for itself */
      if (*v == '\0')
        return NULL;
      g_string_append_c (out, *v);
    }
  if (*skip_spaces (v + 1) != '\0')
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The credentials field a parameter name designates, or NULL if tandem
 * does not use that parameter. */
static const char **
field_for_name (TdDigestCredentials *out, const char *name, gsize len)
{
  static const struct {
    const char *name;
    gsize offset;
  } fields[] = {
    { "username", G_STRUCT_OFFSET (TdDigestCredentials, username) },
    { "realm", G_STRUCT_OFFSET (TdDigestCredentials, realm) },
    { "nonce", G_STRUCT_OFFSET (TdDigestCredentials, nonce) },
    { "uri", G_STRUCT_OFFSET (TdDigestCredentials, uri) },
    { "response", G_STRUCT_OFFSET (TdDigestCredentials, response) },
    { "algorithm", G_STRUCT_OFFSET (TdDigestCredentials, algorithm) },
    { "qop", G_STRUCT_OFFSET (TdDigestCredentials, qop) },
    { "nc", G_STRUCT_OFFSET (TdDigestCredentials, nc) },
    { "cnonce", G_STRUCT_OFFSET (TdDigestCredentials, cnonce) },
    { "opaque", G_STRUCT_OFFSET (TdDigestCredentials, opaque) },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (fields); i++)
    if (strlen (fields[i].name) == len && g_ascii_strncasecmp (name, fields[i].name, len) == 0)
      return G_STRUCT_MEMBER_P (out, fields[i].offset);
  return NULL;
}

static void
store_param (const char *param, GStringChunk *chunk, TdDigestCredentials *out)
{
  const char *eq = strchr (param, '=');
  if (eq == NULL)
    return;

  const char *name = skip_spaces (param);
  const char *name_end = eq;
  while (name_end > name && g_ascii_isspace (name_end[-1]))
    name_end--;

  /* A repeated parameter is ignored: the first one counts, so every reader
   * of the same header sees the same username. */
  const char **field = field_for_name (out, name, (gsize) (name_end - name));
  if (field == NULL || *field != NULL)
    return;

  g_autofree char *value = unquote_value (eq + 1);
  if (value != NULL)
    *field = g_string_chunk_insert (chunk, value);
}

gboolean
td_auth_parse_params (const char *const *params, GStringChunk *chunk,
                      TdDigestCredentials *out)
{
  g_return_val_if_fail (chunk != NULL && out != NULL, FALSE);

  *out = (TdDigestCredentials) { 0 };
  if (params == NULL)
    return FALSE;
  for (const char *const *p = params; *p != NULL; p++)
    store_param (*p, chunk, out);
  return out->username != NULL && out->response != NULL;
}

/* ---- verification ---- */

static gboolean
present (const char *s)
{
  return s != NULL && *s != '\0';
}

/* nc is exactly 8 hex digits (RFC 2617 §3.2.2). */
static gboolean
parse_nc (const char *s, guint64 *out)
{
  guint64 v = 0;

  if (strlen (s) != 8)
    return FALSE;
  for (; *s; s++)
    {
      if (!g_ascii_isxdigit (*s))
        return FALSE;
      v = (v << 4) | (guint64) g_ascii_xdigit_value (*s);
    }
  *out = v;
  return TRUE;
}

static gboolean
well_formed (const TdDigestCredentials *cred, TdDigestAlgorithm *alg, guint64 *nc)
{
  if (!present (cred->username) || !present (cred->realm) || !present (cred->nonce)
      || !present (cred->uri) || !present (cred->response))
    return FALSE;
  if (!td_digest_algorithm_parse (cred->algorithm, alg))
    return FALSE;
  if (cred->qop == NULL)
    return TRUE;
  return present (cred->cnonce) && cred->nc != NULL && parse_nc (cred->nc, nc);
}

static gboolean
response_matches (TdDigestAlgorithm alg, const TdDigestCredentials *cred,
                  const char *method, const char *password)
{
  g_autofree char *ha1 = td_digest_ha1 (alg, cred->username, cred->realm, password);
  g_autofree char *expected = td_digest_response (alg, ha1, cred->nonce, cred->nc,
                                                  cred->cnonce, cred->qop,
                                                  method, cred->uri);
  return td_digest_equal (expected, cred->response);
}

/* Records a successful use of an authentic, fresh nonce; FAILED if its
 * nonce-count does not advance (a replay). */
static TdAuthResult
remember_use (TdAuth *auth, const TdDigestCredentials *cred,
              gint64 issued_us, guint64 nc)
{
  UsedNonce *used = g_hash_table_lookup (auth->used, cred->nonce);

  if (used == NULL)
    {
      char *key = g_strdup (cred->nonce);
      used = g_new0 (UsedNonce, 1);
      used->nonce = key;
      used->issued_us = issued_us;
      g_hash_table_insert (auth->used, key, used);
      if (auth->newest)
        auth->newest->next = used;
      else
        auth->oldest = used;
      auth->newest = used;
    }
  else if (cred->qop != NULL && used->has_nc && nc <= used->last_nc)
    {
      return TD_AUTH_FAILED;
    }

  /* An RFC 2069 client (no qop) sends no nc, so it has no way to make a
   * request unique: it may reuse the nonce until it expires. That is the
   * replay window RFC 2069 itself has; a qop=auth response cannot be turned
   * into an RFC 2069 one without the password, so it does not widen it. */
  if (cred->qop != NULL)
    {
      used->last_nc = nc;
      used->has_nc = TRUE;
    }
  return TD_AUTH_OK;
}

TdAuthResult
td_auth_verify (TdAuth *auth, const TdDigestCredentials *cred,
                const char *method, const char *password,
                gint64 now_us)
{
  TdDigestAlgorithm alg = TD_DIGEST_MD5;
  guint64 nc = 0;

  g_return_val_if_fail (auth != NULL && cred != NULL && method != NULL, TD_AUTH_MALFORMED);

  if (!well_formed (cred, &alg, &nc))
    return TD_AUTH_MALFORMED;
  /* None of these depend on whether the user exists. */
  if (strcmp (cred->realm, auth->realm) != 0)
    return TD_AUTH_FAILED;
  if (cred->qop != NULL && g_ascii_strcasecmp (cred->qop, "auth") != 0)
    return TD_AUTH_FAILED;
  /* Many clients drop opaque (or send it empty); one that echoes a
   * different value did not get it from us. */
  if (present (cred->opaque) && strcmp (cred->opaque, auth->opaque) != 0)
    return TD_AUTH_FAILED;

  NonceInfo info = nonce_open (cred->nonce);
  if (info.alg_known && info.alg != alg)
    return TD_AUTH_FAILED;

  gboolean right = response_matches (alg, cred, method,
                                     password != NULL ? password : dummy_password);
  if (password == NULL || !right)
    return TD_AUTH_FAILED;
  if (!info.authentic || !nonce_fresh (auth, info.issued_us, now_us))
    return TD_AUTH_STALE;
  return remember_use (auth, cred, info.issued_us, nc);
}

void
td_auth_expire (TdAuth *auth, gint64 now_us)
{
  g_return_if_fail (auth != NULL);

  /* No grace period is needed: verify answers STALE for an expired nonce
   * before it looks at the table, so forgetting it changes no answer.
   * Only the head is looked at: a nonce first used late (issued long before)
   * waits behind fresher ones, at most one lifetime after it expired, and is
   * never forgotten early. */
  while (auth->oldest && !nonce_fresh (auth, auth->oldest->issued_us, now_us))
    {
      UsedNonce *gone = auth->oldest;

      auth->oldest = gone->next;
      if (!auth->oldest)
        auth->newest = NULL;
      g_hash_table_remove (auth->used, gone->nonce);   /* frees it and its key */
    }
}

guint
td_auth_nonce_count (TdAuth *auth)
{
  g_return_val_if_fail (auth != NULL, 0);
  return g_hash_table_size (auth->used);
}
