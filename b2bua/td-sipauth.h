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

/* Authenticate nua's current request. Returns the user, or NULL after having
 * answered it (challenge, 403 for a wrong password or unknown user — the same
 * answer for both — or 400 for malformed credentials). */
const TdUser *td_sipauth_check (TdAuth *auth, const TdConfig *config, TdSipAuthKind kind,
                                nua_t *nua, nua_handle_t *nh, const sip_t *sip);

G_END_DECLS
