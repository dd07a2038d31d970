/* td-sipauth: challenge and verify SIP requests with TdAuth. */
#define G_LOG_DOMAIN "tandem-auth"

#include "td-sipauth.h"

#include <arpa/inet.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_string.h>
#include <string.h>

/* The user a request speaks for, before it is authenticated: the one a
 * REGISTER binds (To), or the caller (From). NULL when not configured. */
static const TdUser *
requesting_user (const TdConfig *config, const sip_t *sip)
{
  const sip_addr_t *who = sip->sip_request->rq_method == sip_method_register ? sip->sip_to
                                                                             : sip->sip_from;
  return who ? td_config_lookup_user (config, who->a_url->url_user) : NULL;
}

/* user: whose digest-algorithms to offer; NULL (unknown, or none of its
 * own) gets [auth] algorithms — the same answer for both, so a challenge
 * does not tell an unknown user from one without a list of its own. (A user
 * with its own list is told apart by its challenge: the price of offering
 * that user what only its phone answers.) */
static void
challenge (TdAuth *auth, const TdUser *user, TdSipAuthKind kind, nua_t *nua, nua_handle_t *nh,
           gboolean stale)
{
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) values = user && user->n_algorithms
                              ? td_auth_challenge_for (auth, user->algorithms, user->n_algorithms,
                                                       stale, now)
                              : td_auth_challenge (auth, stale, now);
  g_autoptr (GString) headers = g_string_new (NULL);
  const char *name = kind == TD_SIPAUTH_WWW ? "WWW-Authenticate" : "Proxy-Authenticate";

  /* One header per offered algorithm, preferred first (RFC 8760 §2.4). */
  for (guint i = 0; values[i]; i++)
    g_string_append_printf (headers, "%s: %s\r\n", name, values[i]);
  if (kind == TD_SIPAUTH_WWW)
    nua_respond (nh, SIP_401_UNAUTHORIZED, SIPTAG_HEADER_STR (headers->str),
                 NUTAG_WITH_THIS (nua), TAG_END ());
  else
    nua_respond (nh, SIP_407_PROXY_AUTH_REQUIRED, SIPTAG_HEADER_STR (headers->str),
                 NUTAG_WITH_THIS (nua), TAG_END ());
}

/* The credentials for our realm, if the request carries some. */
static gboolean
find_credentials (const TdConfig *config, const msg_auth_t *list, GStringChunk *chunk,
                  TdDigestCredentials *cred)
{
  for (const msg_auth_t *au = list; au; au = au->au_next) {
    if (!su_casematch (au->au_scheme, "Digest"))
      continue;
    memset (cred, 0, sizeof *cred);
    if (td_auth_parse_params ((const char *const *) au->au_params, chunk, cred) &&
        cred->realm && strcmp (cred->realm, config->domain) == 0)
      return TRUE;
  }
  return FALSE;
}

/* ---- the digest uri -------------------------------------------------------- */

typedef struct {
  int family;
  guint8 bytes[16];
} IpAddress;

/* An IPv4 or IPv6 literal, the latter with or without [brackets]. */
static gboolean
ip_parse (const char *text, IpAddress *out)
{
  char buf[INET6_ADDRSTRLEN + 2];
  gsize len = strlen (text);

  if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
    if (len - 2 >= sizeof buf)
      return FALSE;
    memcpy (buf, text + 1, len - 2);
    buf[len - 2] = '\0';
    out->family = AF_INET6;
    return inet_pton (AF_INET6, buf, out->bytes) == 1;
  }
  out->family = AF_INET;
  if (inet_pton (AF_INET, text, out->bytes) == 1)
    return TRUE;
  out->family = AF_INET6;
  return inet_pton (AF_INET6, text, out->bytes) == 1;
}

static gboolean
ip_equal (const IpAddress *a, const IpAddress *b)
{
  return a->family == b->family &&
         memcmp (a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

static gboolean
host_is_server (const TdServerIdentity *server, const char *host)
{
  IpAddress ip, other;

  if (su_casematch (host, server->domain))
    return TRUE;
  if (!ip_parse (host, &ip))
    return FALSE;
  if (ip_parse (server->domain, &other) && ip_equal (&ip, &other))
    return TRUE;
  for (const char *const *a = server->addresses; a && *a; a++)
    if (ip_parse (*a, &other) && ip_equal (&ip, &other))
      return TRUE;
  return FALSE;
}

static gboolean
port_is_server (const TdServerIdentity *server, const char *port)
{
  if (!port)
    return TRUE;
  if (!*port || strspn (port, "0123456789") != strlen (port) || strlen (port) > 5)
    return FALSE;
  return g_ascii_strtoull (port, NULL, 10) == server->port;
}

/* Where the Request-URI names a user, the digest uri names the same one or
 * none (SIPp writes none); a Request-URI without one (REGISTER sip:pbx.test)
 * names no user the uri could differ from. */
static gboolean
user_matches (const char *digest_user, const char *request_user)
{
  return !digest_user || !request_user || strcmp (digest_user, request_user) == 0;
}

gboolean
td_sipauth_uri_designates (const TdServerIdentity *server, const char *digest_uri,
                           const url_t *request_uri)
{
  su_home_t home[1] = { SU_HOME_INIT (home) };
  url_t *u = digest_uri ? url_make (home, digest_uri) : NULL;
  gboolean ok = FALSE;

  if (!u || !request_uri)
    ok = FALSE;
  else if (url_cmp (u, request_uri) == 0)
    ok = TRUE;  /* the resource itself */
  else
    ok = (u->url_type == url_sip || u->url_type == url_sips) && u->url_host &&
         host_is_server (server, u->url_host) && port_is_server (server, u->url_port) &&
         user_matches (u->url_user, request_uri->url_user);
  su_home_deinit (home);
  return ok;
}

/* A wildcard listen answers on every local address (read at load). */
static TdServerIdentity
server_identity (const TdConfig *config, const char *listen_only[2])
{
  IpAddress ip;
  static const guint8 zero[16] = { 0 };
  gboolean wildcard = ip_parse (config->listen_host, &ip) &&
                      memcmp (ip.bytes, zero, ip.family == AF_INET ? 4 : 16) == 0;

  listen_only[0] = config->listen_host;
  listen_only[1] = NULL;
  return (TdServerIdentity) {
    .domain = config->domain,
    .addresses = wildcard ? (const char *const *) config->local_addresses : listen_only,
    .port = config->listen_port,
  };
}

/* ---- the check --------------------------------------------------------------- */

/* Whether a user with its own digest-algorithms may answer with this one
 * (it could have got a nonce for another from a challenge meant for
 * someone else). Unparsable names are left to td_auth_verify (400). */
static gboolean
algorithm_allowed (const TdUser *user, const char *name)
{
  TdDigestAlgorithm alg;

  if (!user || user->n_algorithms == 0 || !td_digest_algorithm_parse (name, &alg))
    return TRUE;
  for (guint i = 0; i < user->n_algorithms; i++)
    if (user->algorithms[i] == alg)
      return TRUE;
  return FALSE;
}

const TdUser *
td_sipauth_check (TdAuth *auth, const TdConfig *config, TdSipAuthKind kind,
                  nua_t *nua, nua_handle_t *nh, const sip_t *sip)
{
  g_autoptr (GStringChunk) chunk = g_string_chunk_new (256);
  const msg_auth_t *list = kind == TD_SIPAUTH_WWW ? sip->sip_authorization
                                                  : sip->sip_proxy_authorization;
  const TdUser *requester = requesting_user (config, sip);
  const char *listen_only[2];
  TdServerIdentity server = server_identity (config, listen_only);
  TdDigestCredentials cred = { 0 };
  const TdUser *user;

  if (!find_credentials (config, list, chunk, &cred)) {
    challenge (auth, requester, kind, nua, nh, FALSE);
    return NULL;
  }
  if (!td_sipauth_uri_designates (&server, cred.uri, sip->sip_request->rq_url)) {
    /* RFC 7616 §3.4.6: credentials computed for another resource are refused. */
    g_info ("%s from %s: digest uri %s names neither this server nor the Request-URI",
            sip->sip_request->rq_method_name, cred.username, cred.uri ? cred.uri : "(none)");
    nua_respond (nh, 400, "Digest uri does not match the Request-URI",
                 NUTAG_WITH_THIS (nua), TAG_END ());
    return NULL;
  }
  user = td_config_lookup_user (config, cred.username);
  if (!algorithm_allowed (user, cred.algorithm)) {
    /* Not a wrong password: offer what this user may use. */
    challenge (auth, user, kind, nua, nh, FALSE);
    return NULL;
  }
  switch (td_auth_verify (auth, &cred, sip->sip_request->rq_method_name,
                          user ? user->password : NULL, g_get_monotonic_time ())) {
  case TD_AUTH_OK:
    return user;
  case TD_AUTH_STALE:
    challenge (auth, requester, kind, nua, nh, TRUE);
    return NULL;
  case TD_AUTH_MALFORMED:
    nua_respond (nh, 400, "Malformed Credentials", NUTAG_WITH_THIS (nua), TAG_END ());
    return NULL;
  case TD_AUTH_FAILED:
  default:
    g_info ("%s from %s: authentication failed", sip->sip_request->rq_method_name,
            cred.username);
    nua_respond (nh, SIP_403_FORBIDDEN, NUTAG_WITH_THIS (nua), TAG_END ());
    return NULL;
  }
}
