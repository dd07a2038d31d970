/* td-sipauth: digest authentication of a SIP request through nua.
 *
 * Shared by the registrar (401, WWW-Authenticate / Authorization) and calls
 * (407, Proxy-Authenticate / Proxy-Authorization); TdAuth does the digest
 * work, this file speaks SIP around it. */
#pragma once

#include <sofia-sip/nua.h>
#include <sofia-sip/sip.h>

#include "td-auth.h"
#include "td-config.h"

G_BEGIN_DECLS

typedef enum {
  TD_SIPAUTH_WWW,     /* registrar: 401 + WWW-Authenticate, reads Authorization */
  TD_SIPAUTH_PROXY,   /* calls: 407 + Proxy-Authenticate, reads Proxy-Authorization */
} TdSipAuthKind;

/* What designates this server in a digest uri. */
typedef struct {
  const char *domain;              /* [sip] domain */
  const char *const *addresses;    /* IP addresses tandem answers on, as text; NULL-terminated */
  guint16 port;                    /* [sip] listen port */
} TdServerIdentity;

/* Whether credentials computed for digest_uri may be used for a request to
 * request_uri (RFC 7616 §3.4.6 wants the uri to designate the requested
 * resource). Accepted: the Request-URI itself, or a sip:/sips: URI whose host
 * is the domain or one of the addresses, whose port is absent or the listen
 * port, and whose user part is absent or, where the Request-URI has one,
 * the same. So SIPp's
 * default "sip:127.0.0.1:5060" passes; a uri naming another host, port or
 * user does not. Pure: no I/O, no name resolution. */
gboolean td_sipauth_uri_designates (const TdServerIdentity *server, const char *digest_uri,
                                    const url_t *request_uri);

/* Authenticate nua's current request. Returns the user, or NULL after having
 * answered it (challenge, 403 for a wrong password or unknown user — the same
 * answer for both — or 400 for malformed credentials).
 * The challenge offers the digest-algorithms of the user the request speaks
 * for — a REGISTER's To, any other request's From (the caller) — or, for
 * users without their own list and for unknown users alike, [auth]
 * algorithms. A user with a list of its own is accepted only with one of
 * those algorithms. */
const TdUser *td_sipauth_check (TdAuth *auth, const TdConfig *config, TdSipAuthKind kind,
                                nua_t *nua, nua_handle_t *nh, const sip_t *sip);

G_END_DECLS
