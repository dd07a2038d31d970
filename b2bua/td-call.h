/* TdCall: one call — the legs it connects: an A-leg (the caller's, or the
 * party a call was originated for), its B-legs while forking, and the bridge
 * between the A-leg and the B-leg that answered.
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
  TdTimers *timers;         /* every call's and leg's timers (td-timers.h) */
  GHashTable *calls;        /* TdCall* set: every live call (one reference each) */
  GHashTable *callers;      /* user name -> guint*: calls in `calls` it placed (an INVITE
                             * is checked against it: no scan of every call) */
  GHashTable *legs;         /* guint64 id -> TdLeg*: every leg alive (weak) */
  GHashTable *loose_legs;   /* TdLeg* set (a reference each): legs that left
                             * their call and are being hung up */
  guint64 next_leg_id;
  guint64 next_call_id;     /* TdCall ids, for operators (td-call-list.c) */
  GHashTable *rooms;        /* "r3" -> TdRoom*, owned: every live room (td-room.c) */
  guint64 next_room_id;
  TdPluginHost *plugins;    /* feature hooks; may be NULL */
  /* The Allow of calls' dialogs when it differs from the stack's (REFER,
   * with a transfer plugin: taken in dialogs only), or NULL. */
  const char *dialog_allow;
} TdCallContext;

/* The tables of calls and legs (empty), and their end. */
void td_call_context_init (TdCallContext *ctx);
void td_call_context_clear (TdCallContext *ctx);

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
