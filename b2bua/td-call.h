/* TdCall: one call — an A-leg, its B-legs while forking, and the bridge
 * between them once answered.
 *
 * The call relays what one dialog says to the other: provisional and final
 * responses, re-INVITE/UPDATE offers and answers (SDP rewritten onto the
 * relay), BYE. It owns the no-answer timer and writes the CDR when its last
 * leg is gone. nua events reach it through td_call_incoming() (a new INVITE)
 * and td_call_leg_event() (anything on a leg's handle). */
#pragma once

#include <glib.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip.h>

#include "td-auth.h"
#include "td-cdr.h"
#include "td-config.h"
#include "td-leg.h"
#include "td-location.h"
#include "td-relay.h"
#include "td-plugin.h"

G_BEGIN_DECLS

/* What calls need from the daemon; the daemon keeps `config` current. */
typedef struct _TdCallContext {
  nua_t *nua;               /* for digest challenges (td-sipauth) */
  TdSignal signal;          /* every other SIP operation of calls and legs */
  TdConfig *config;
  TdAuth *auth;
  TdLocation *location;
  TdRelay *relay;
  TdCdr *cdr;
  GHashTable *calls;        /* TdCall* set: every live call */
  TdPluginHost *plugins;    /* feature hooks; may be NULL */
} TdCallContext;

/* A new INVITE on a fresh handle (nua's current request). Authenticates,
 * routes and starts the B-legs, or answers with an error. */
void td_call_incoming (TdCallContext *ctx, nua_handle_t *nh, const sip_t *sip);

/* Any nua event on a handle bound to a leg. */
void td_call_leg_event (TdLeg *leg, nua_event_t event, int status, const char *phrase,
                        const sip_t *sip, tagi_t tags[]);

/* Answered calls `user` takes part in (as caller or callee). */
guint td_calls_count_user (TdCallContext *ctx, const char *user);
/* Calls `user` started that have not ended yet, ringing or answered
 * ([calls] max-calls-per-user). */
guint td_calls_count_caller (TdCallContext *ctx, const char *user);

/* Shutdown: end every call (BYE the answered, CANCEL/503 the rest). */
void td_calls_hangup_all (TdCallContext *ctx);

/* At exit, after the SIP stack is gone: CDRs for calls still open, then free. */
void td_calls_free_all (TdCallContext *ctx);

G_END_DECLS
