/* td-digest: HTTP/SIP digest arithmetic (RFC 2617, RFC 7616, RFC 8760).
 *
 * Pure functions, no state: tandem's server-side digest is its own code because
 * Sofia-SIP's auth_module only speaks MD5. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  TD_DIGEST_MD5,
  TD_DIGEST_SHA256,
} TdDigestAlgorithm;

/* "MD5" / "SHA-256" (case-insensitive; NULL or "" means MD5, as RFC 2617 says
 * for an absent algorithm parameter). Returns FALSE for anything else,
 * including the "-sess" variants, which tandem does not offer. */
gboolean td_digest_algorithm_parse (const char *name, TdDigestAlgorithm *out);
const char *td_digest_algorithm_name (TdDigestAlgorithm alg);

/* H(user:realm:password) as lowercase hex. */
char *td_digest_ha1 (TdDigestAlgorithm alg, const char *user,
                     const char *realm, const char *password);

/* The expected "response" value as lowercase hex.
 * qop NULL: RFC 2069 form H(HA1:nonce:HA2); qop "auth": H(HA1:nonce:nc:cnonce:qop:HA2)
 * with HA2 = H(method:uri). */
char *td_digest_response (TdDigestAlgorithm alg, const char *ha1,
                          const char *nonce, const char *nc,
                          const char *cnonce, const char *qop,
                          const char *method, const char *uri);

/* Constant-time comparison of two hex strings (case-insensitive); FALSE if
 * either is NULL or the lengths differ. */
gboolean td_digest_equal (const char *a, const char *b);

G_END_DECLS
