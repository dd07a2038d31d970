/* td-sipauth: challenge and verify SIP requests with TdAuth. */
#define G_LOG_DOMAIN "tandem-auth"

#include "td-sipauth.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_string.h>
#include <string.h>

static void
challenge (TdAuth *auth, TdSipAuthKind kind, nua_t *nua, nua_handle_t *nh, gboolean stale)
{
  g_auto (GStrv) values = td_auth_challenge (auth, stale, g_get_monotonic_time ());
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

/* Same scheme, user, host and port (url_cmp's notion; parameters may differ). */
static gboolean
uri_matches (const char *digest_uri, const url_t *request_uri)
{
  su_home_t home[1] = { SU_HOME_INIT (home) };
  url_t *u = digest_uri ? url_make (home, digest_uri) : NULL;
  gboolean same = u && url_cmp (u, request_uri) == 0;
  su_home_deinit (home);
  return same;
}

const TdUser *
td_sipauth_check (TdAuth *auth, const TdConfig *config, TdSipAuthKind kind,
                  nua_t *nua, nua_handle_t *nh, const sip_t *sip)
{
  g_autoptr (GStringChunk) chunk = g_string_chunk_new (256);
  const msg_auth_t *list = kind == TD_SIPAUTH_WWW ? sip->sip_authorization
                                                  : sip->sip_proxy_authorization;
  TdDigestCredentials cred = { 0 };
  const TdUser *user;

  if (!find_credentials (config, list, chunk, &cred)) {
    challenge (auth, kind, nua, nh, FALSE);
    return NULL;
  }
  if (!uri_matches (cred.uri, sip->sip_request->rq_url)) {
    /* RFC 7616 §3.4.6: credentials computed for another resource are refused. */
    nua_respond (nh, 400, "Digest uri does not match the Request-URI",
                 NUTAG_WITH_THIS (nua), TAG_END ());
    return NULL;
  }
  user = td_config_lookup_user (config, cred.username);
  switch (td_auth_verify (auth, &cred, sip->sip_request->rq_method_name,
                          user ? user->password : NULL, g_get_monotonic_time ())) {
  case TD_AUTH_OK:
    return user;
  case TD_AUTH_STALE:
    challenge (auth, kind, nua, nh, TRUE);
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
