/* td-digest: HTTP/SIP digest arithmetic (RFC 2617, RFC 7616, RFC 8760). */
#include "td-digest.h"

#include <string.h>

gboolean
td_digest_algorithm_parse (const char *name, TdDigestAlgorithm *out)
{
  TdDigestAlgorithm alg;

  /* RFC 2617 §3.2.1: an absent algorithm parameter means MD5. */
  if (name == NULL || *name == '\0' || g_ascii_strcasecmp (name, "MD5") == 0)
    alg = TD_DIGEST_MD5;
  else if (g_ascii_strcasecmp (name, "SHA-256") == 0)
    alg = TD_DIGEST_SHA256;
  else
    return FALSE;

  if (out != NULL)
    *out = alg;
  return TRUE;
}

const char *
td_digest_algorithm_name (TdDigestAlgorithm alg)
{
  switch (alg)
    {
    case TD_DIGEST_MD5:
      return "MD5";
    case TD_DIGEST_SHA256:
      return "SHA-256";
    }
  g_return_val_if_reached (NULL);
}

static GChecksumType
checksum_type (TdDigestAlgorithm alg)
{
  return alg == TD_DIGEST_SHA256 ? G_CHECKSUM_SHA256 : G_CHECKSUM_MD5;
}

/* H(parts[0]:parts[1]:...:parts[n-1]) as lowercase hex (GChecksum's format). */
static char *
hash_joined (TdDigestAlgorithm alg, const char *const *parts, gsize n_parts)
{
  g_autoptr (GChecksum) sum = g_checksum_new (checksum_type (alg));

  for (gsize i = 0; i < n_parts; i++)
    {
      if (i > 0)
        g_checksum_update (sum, (const guchar *) ":", 1);
      g_checksum_update (sum, (const guchar *) parts[i], -1);
    }
  return g_strdup (g_checksum_get_string (sum));
}

char *
td_digest_ha1 (TdDigestAlgorithm alg, const char *user,
               const char *realm, const char *password)
{
  g_return_val_if_fail (user != NULL && realm != NULL && password != NULL, NULL);

  const char *parts[] = { user, realm, password };
  return hash_joined (alg, parts, G_N_ELEMENTS (parts));
}

char *
td_digest_response (TdDigestAlgorithm alg, const char *ha1,
                    const char *nonce, const char *nc,
                    const char *cnonce, const char *qop,
                    const char *method, const char *uri)
{
  g_return_val_if_fail (ha1 != NULL && nonce != NULL, NULL);
  g_return_val_if_fail (method != NULL && uri != NULL, NULL);
  g_return_val_if_fail (qop == NULL || (nc != NULL && cnonce != NULL), NULL);

  const char *a2[] = { method, uri };
  g_autofree char *ha2 = hash_joined (alg, a2, G_N_ELEMENTS (a2));

  if (qop == NULL)
    {
      /* RFC 2069 clients hash neither nc nor cnonce. */
      const char *parts[] = { ha1, nonce, ha2 };
      return hash_joined (alg, parts, G_N_ELEMENTS (parts));
    }

  const char *parts[] = { ha1, nonce, nc, cnonce, qop, ha2 };
  return hash_joined (alg, parts, G_N_ELEMENTS (parts));
}

/* ASCII lowercase without a data-dependent branch, so the comparison below
 * takes the same time whatever the bytes are. */
static inline guint
fold_case (guchar c)
{
  guint is_upper = (guint) (c - 'A') < 26u;
  return c | (is_upper << 5);
}

gboolean
td_digest_equal (const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return FALSE;

  /* The lengths are not secret (every digest of an algorithm has the same
   * length); only the contents must not leak through timing. */
  gsize len = strlen (a);
  if (strlen (b) != len)
    return FALSE;

  guint diff = 0;
  for (gsize i = 0; i < len; i++)
    diff |= fold_case ((guchar) a[i]) ^ fold_case ((guchar) b[i]);
  return diff == 0;
}
