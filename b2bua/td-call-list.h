/* td-call-list: the live calls as an operator sees them (a snapshot that
 * outlives nothing it describes), and hanging up a call or a leg by its
 * operator id. The control socket (td-control.c) reads calls only through
 * this, so TdCall's insides stay in the call code. */
#pragma once

#include <glib.h>

#include "td-call.h"

G_BEGIN_DECLS

typedef enum {
  TD_PARTY_RINGING,   /* its dialog is not answered yet */
  TD_PARTY_TALKING,
  TD_PARTY_HELD,      /* answered, and its or its peer's SDP is on hold */
} TdPartyState;

const char *td_party_state_name (TdPartyState state);   /* "ringing", "talking", "held" */

typedef struct {
  char *leg_id;       /* "l12": the leg's operator id */
  char *user;         /* the party's user of the domain, or NULL */
  TdPartyState state;
} TdPartyInfo;

typedef struct {
  char *id;           /* "c7": the call's operator id */
  char *room;         /* "r3": the room its party is in, or NULL */
  gint64 answered_us; /* wall clock, µs; 0 while it rings */
  GArray *parties;    /* TdPartyInfo: the A-leg, then its B-legs */
} TdCallInfo;

void td_call_info_free (TdCallInfo *info);

/* Every live call (not ended), oldest first: TdCallInfo*, owned. */
GPtrArray *td_calls_snapshot (TdCallContext *ctx);

/* Operator ids: "c" + a call's id, "l" + a leg's id. */
char *td_call_operator_id (guint64 call_id);
char *td_leg_operator_id (guint64 leg_id);

/* Hang up what `id` names: a call (as td_call_hangup: every party) or one
 * leg (BYE if answered, CANCEL if ringing; the call reacts as to that
 * party hanging up). FALSE with a message naming the id if it names
 * nothing alive. */
gboolean td_calls_hangup_id (TdCallContext *ctx, const char *id, GError **error);

G_END_DECLS
