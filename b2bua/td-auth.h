/* TdAuth: the digest challenges tandem issues and the credentials it checks.
 *
 * One TdAuth per realm. Nonces are self-authenticating (issue time, offered
 * algorithm and random bytes, sealed with an HMAC under a per-process secret),
 * so a flood of unauthenticated requests costs no memory; only nonces that
 * were used successfully are remembered, with the highest nonce-count seen, to
 * refuse replays. An expired nonce, or one from before a restart, is "stale". Knows nothing of SIP messages: the registrar and the
 * call code feed it the parameters of an Authorization/Proxy-Authorization
 * header and build the 401/407 from the strings it returns. */
#pragma once

#include <glib.h>
#include "td-digest.h"

G_BEGIN_DECLS

typedef struct _TdAuth TdAuth;

typedef enum {
  TD_AUTH_OK,          /* credentials valid: let the request through */
  TD_AUTH_STALE,       /* right password, but nonce expired or unknown: re-challenge with stale=true */
  TD_AUTH_FAILED,      /* wrong password, unknown user, replayed nc, bad realm/uri: 403 */
  TD_AUTH_MALFORMED,   /* missing or nonsensical parameters: 400 */
} TdAuthResult;

/* The parameters of one Authorization header. Strings are unquoted, borrowed. */
typedef struct {
  const char *username;
  const char *realm;
  const char *nonce;
  const char *uri;
  const char *response;
  const char *algorithm;  /* may be NULL (= MD5) */
  const char *qop;        /* may be NULL (RFC 2069 client); tandem offers qop=auth */
  const char *nc;
  const char *cnonce;
  const char *opaque;     /* may be NULL */
} TdDigestCredentials;

/* algorithms: the order in which challenges are offered (first = preferred;
 * clients that read only the first header see it). nonce_lifetime_s > 0. */
TdAuth *td_auth_new (const char *realm, const TdDigestAlgorithm *algorithms,
                     guint n_algorithms, guint nonce_lifetime_s);
void td_auth_free (TdAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdAuth, td_auth_free)

/* Replace the offered algorithm list (configuration reload). Known nonces stay valid. */
void td_auth_set_algorithms (TdAuth *auth, const TdDigestAlgorithm *algorithms,
                             guint n_algorithms);

/* Challenge header values, one per offered algorithm, in order, each a fresh
 * nonce, e.g.  Digest realm="pbx.test", nonce="...", opaque="...",
 * algorithm=MD5, qop="auth"  (plus ", stale=true" when stale).
 * Returns a NULL-terminated array: g_strfreev() it. now_us: g_get_monotonic_time(). */
char **td_auth_challenge (TdAuth *auth, gboolean stale, gint64 now_us);
/* The same for another list than the TdAuth's (a user's own digest-algorithms). */
char **td_auth_challenge_for (TdAuth *auth, const TdDigestAlgorithm *algorithms,
                              guint n_algorithms, gboolean stale, gint64 now_us);

/* Split the "name=value" parameter list of a credentials header, as Sofia-SIP
 * keeps it in msg_auth_t.au_params (values may be quoted: quotes are removed
 * into storage owned by `chunk`), into `out`. Returns FALSE if the list is not
 * a Digest credential at all (e.g. no username or response). */
gboolean td_auth_parse_params (const char *const *params, GStringChunk *chunk,
                               TdDigestCredentials *out);

/* Check credentials for a request. password: the user's configured password,
 * or NULL when the user is unknown (the answer is then FAILED, computed with
 * the same work as for a known user so timing reveals nothing).
 * MALFORMED: a required parameter is missing (username, realm, nonce, uri,
 * response; nc and cnonce when qop is present) or the algorithm is unknown.
 * FAILED: realm is not ours, the response is wrong, the algorithm differs from
 * the one the nonce was issued for, qop is other than "auth", or the
 * nonce-count is not strictly greater than the last one accepted for it.
 * STALE: the response is right (for the claimed algorithm) but the nonce is
 * expired, forged or from before a restart: the client knows the password and
 * should simply retry with a fresh nonce. */
TdAuthResult td_auth_verify (TdAuth *auth, const TdDigestCredentials *cred,
                             const char *method, const char *password,
                             gint64 now_us);

/* Forget nonces older than their lifetime (and their grace). Called from a timer. */
void td_auth_expire (TdAuth *auth, gint64 now_us);
guint td_auth_nonce_count (TdAuth *auth);

G_END_DECLS
