/* TdRegistrar: answers REGISTER (RFC 3261 §10.3) — digest-challenges it,
 * checks who may bind which address-of-record, and says 200 once the
 * TdLocation has stored the contact changes. */
#pragma once

#include <glib.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip.h>

#include "td-auth.h"
#include "td-config.h"
#include "td-location.h"

G_BEGIN_DECLS

typedef struct _TdRegistrar TdRegistrar;

TdRegistrar *td_registrar_new (TdConfig *config, TdAuth *auth, TdLocation *location);
void td_registrar_free (TdRegistrar *reg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdRegistrar, td_registrar_free)

/* After a configuration reload (users, expiry limits). */
void td_registrar_set_config (TdRegistrar *reg, TdConfig *config);

/* Answer the REGISTER that is nua's current request (call from the nua
 * callback for nua_i_register): at once when it is refused or only asks
 * what is bound, else once the store has its changes. Takes the handle:
 * destroys it when it has answered. */
void td_registrar_handle (TdRegistrar *reg, nua_t *nua, nua_handle_t *nh, const sip_t *sip);

G_END_DECLS
