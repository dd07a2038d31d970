/* td-call-private.h: TdCall's insides, shared by td-call.c (the two-leg
 * bridge) and td-call-features.c (the operations plugins call). Nothing
 * outside those two files includes this. */
#pragma once

#include "td-call.h"
#include "td-plugins.h"
#include "td-router.h"

G_BEGIN_DECLS

/* Ringback (td-call-early.c): what tandem itself tells the party the call
 * rings for. */
typedef enum {
  TD_EARLY_NONE,     /* nothing: the caller hears the branches' 18x and early media */
  TD_EARLY_CALLER,   /* tandem answered the caller's offer (183) and plays it a tune */
  TD_EARLY_ORIGIN,   /* an originated call plays a tune to its party's current stream */
} TdEarlyState;

typedef struct {
  TdEarlyState state;
  TdRingbackMode mode;
  TdTune *tune;           /* the tune playing (a reference) */
  TdCodec codec;          /* ... in the party's session's codec */
  guint8 pt;              /* ... under its payload type */
  char *sdp;              /* CALLER: tandem's answer in the 183, again in the 200 */
  TdLeg *branch;          /* the branch the caller's port is connected to while ringing
                           * (one of b_legs), or NULL */
  gboolean branch_media;  /* ... for its early media (183 SDP in the caller's codec) */
  gboolean realign_due;   /* the callee answered in another codec: re-offer the caller */
} TdCallEarly;

struct _TdCall {
  grefcount ref;          /* SIP thread only; ctx->calls holds one until the end */
  guint64 id;             /* stable, unique in the daemon's life (td-call-list.c) */
  TdCallContext *ctx;
  char *call_id;          /* the A-leg's (or tandem's first B-leg's), for logs and the CDR */
  /* CDR: one row per segment (the parties changed: a transfer); every
   * segment of one conversation shares `session`. */
  char *session;
  guint segment;
  char *transferred_by;   /* who moved this segment's party here, or NULL */
  gboolean segment_written;   /* its CDR row is in: a leg moved out */
  char *caller;           /* authenticated user */
  char *caller_display;   /* may be NULL */
  char *dialed;           /* the user the caller dialled (CDR) */
  char *callee;           /* the user now being called (changes when forwarded) */
  guint max_forwards;     /* for the B-legs: the A-leg's minus one (RFC 7332 §5) */

  TdLeg *a;               /* owned; NULL while an originated call rings */
  GPtrArray *b_legs;      /* TdLeg*, owned: every branch while forking */
  TdLeg *bridged;         /* the B-leg that answered (or a leg moved in) */
  /* An originated call (td_call_originate): the leg it rings for, in
   * another call until this one is answered (a reference), and whether the
   * originator has had its final answer. */
  TdLeg *origin;
  gboolean origin_final;

  TdTimer *no_answer_timer;
  GPtrArray *ring_timers; /* plugins' timers while ringing (RingTimer*, owned) */
  char *branch_headers;   /* header lines for new branches' INVITEs (td_call_redirect), or NULL */
  char *origin_headers;   /* an originated call's own header lines on every
                           * branch (Referred-By), whatever redirects add */
  GData *plugin_data;     /* td_call_set_data: plugins' own per-call state */

  gint64 started_us, answered_us;     /* wall clock, for the CDR */
  /* The RTP timeout (td-call-media.c): silence counts from the later of
   * rtp_since (the answer, the end of a hold; 0 while on hold) and the last
   * packet; rtp_timer is its deadline while every port is idle. */
  gint64 rtp_since;
  TdTimer *rtp_timer;
  int final_status;
  TdHangup hangup;
  const char *reason;     /* static */
  gboolean ended;         /* BYE/CANCEL/failure under way: start nothing new */
  /* The caller's INVITE had no SDP: the B-leg's 200 carries the offer, the
   * caller's ACK the answer, and tandem ACKs the B-leg itself with it. */
  gboolean late_offer;
  TdCallEarly early;
  /* Rooms (td-room.c): the room this call's one party (its `a`) is in, and
   * the room an originated call rings someone into (weak: the room holds
   * the call). */
  TdRoom *room;
  TdRoom *dials_into;
};

/* Has the caller (or an originated call's originator) had a final answer? */
static inline gboolean
td_call_caller_final (const TdCall *call)
{
  return call->a ? call->a->final : call->origin_final;
}

/* A new call in ctx->calls (which holds its one reference). */
TdCall *td_call_new (TdCallContext *ctx, const char *call_id, const char *caller,
                     const char *caller_display, const char *callee, guint max_forwards);
/* Free the call if none of its legs' dialogs is left: the last thing an
 * event handler on one of its legs does. */
void td_call_maybe_finish (TdCall *call);
/* Write the CDR of the segment so far (a leg moved in or out ends one). */
void td_call_write_cdr (TdCall *call, const char *default_reason);
/* The SDP branches are offered: the A-leg's, or the origin's. */
const TdSdp *td_call_branch_offer (const TdCall *call);
/* The Allow of a call's dialog on a leg's handle (REFER, ctx->dialog_allow). */
void td_call_set_dialog_allow (TdCallContext *ctx, nua_handle_t *nh);

typedef struct _RingTimer RingTimer;
void td_ring_timer_free (gpointer timer);

/* An admitted INVITE (authenticated, routed to `route`) on handle `nh`
 * becomes a call; sdp: the caller's offer (taken), or NULL for a late offer.
 * td_call_incoming's second half; tests start calls here. */
void td_call_start (TdCallContext *ctx, nua_handle_t *nh, const sip_t *sip, const TdUser *caller,
                    const TdRoute *route, TdSdp *sdp);

/* Shared by the bridge and the offer code. */
gboolean td_call_has_sdp (const sip_t *sip);
/* The SDP `from`'s endpoint sent in `sip`: NULL (logged) if bad, or if
 * `from`'s SRTP policy refuses it (td_leg_sdp_acceptable; from NULL: no
 * policy yet, the caller checks once it has the leg). */
TdSdp *td_call_parse_sdp (const TdCall *call, TdLeg *from, const sip_t *sip);
/* A request whose body holds no SDP tandem may use alone (a multipart
 * without one, another type, a required part): answered 415 with Accept
 * (RFC 3261 §21.4.13), TRUE. */
gboolean td_call_refuse_body (const TdSignal *signal, nua_handle_t *nh, const sip_t *sip);
TdLeg *td_call_peer_of (const TdCall *call, const TdLeg *leg);     /* the other bridged leg */
const char *td_call_media_address (const TdCall *call);
/* An established leg's endpoint sent an offer (re-INVITE or UPDATE). */
void td_call_offer_received (TdCall *call, TdLeg *leg, const sip_t *sip, gboolean is_update);
/* A re-INVITE or UPDATE without SDP (a refresh, or a re-INVITE asking for
 * tandem's offer): 200 with what tandem last told the endpoint. */
void td_call_answer_without_offer (TdCall *call, TdLeg *leg, gboolean is_update);
/* The common start of a mid-call offer on `leg`: refuse a body without
 * usable SDP, learn Allow and the session timer, answer one without SDP;
 * the parsed offer, or NULL when the request is answered already (also a
 * bad SDP: 488). */
TdSdp *td_call_offer_take (TdCall *call, TdLeg *leg, const sip_t *sip, gboolean is_update);
/* The answer (or refusal) to tandem's relayed offer arrived on `peer`. */
void td_call_offer_answer_done (TdCall *call, TdLeg *peer, int status, const sip_t *sip);
/* The sender of a re-INVITE cancelled it. */
void td_call_offer_cancelled (TdCall *call, TdLeg *leg);
/* An ACK on an established leg (it may carry an answer). */
void td_call_ack_received (TdCall *call, TdLeg *leg, const sip_t *sip);
/* A failed re-offer's status as its offerer should see it. */
int td_call_status_for_offerer (int status);
/* Does this response to an in-dialog request mean the dialog is gone? */
gboolean td_call_status_ends_dialog (int status);
/* End a call from tandem's side: CANCEL the branches still ringing, BYE
 * every answered leg but `gone` (whose dialog is over already; may be
 * NULL). Also what a leg's dialog ended by the stack does to the call. */
void td_call_end (TdCall *call, const char *reason, TdLeg *gone);
/* A B-leg's failure status as the caller should see it. */
int td_call_status_for_caller (int status);
/* With a late offer tandem ACKs the B-leg's 2xx itself, with the answer if any. */
void td_call_ack_b (TdLeg *b, const char *sdp);

/* nua keeps the phrase pointer: a static phrase for any status. */
const char *td_call_phrase (int status);
/* Answer the A-leg's INVITE (a final answer only once). */
void td_call_respond_a (TdCall *call, int status, const char *phrase, const char *sdp);
/* CANCEL every branch still ringing, but `except`. */
void td_call_cancel_branches (TdCall *call, TdLeg *except);
/* Ring every target of `route` (the callee's contacts); returns how many started. */
guint td_call_start_branches (TdCall *call, const TdRoute *route);
/* The core's no-answer timer and the plugins' ring timers. */
void td_call_start_ring_timer (TdCall *call);
void td_call_stop_ring_timers (TdCall *call);
/* Run a hook's handlers (CONTINUE when no plugin handles it). */
TdHookResult td_call_run_hook (TdCall *call, TdHook hook, TdLeg *leg, const TdSdp *sdp,
                               int status, const char *reason);
/* The callee's attempt failed with `status`: hooks first (forwarding), else
 * the caller gets it. */
void td_call_fail (TdCall *call, int status, const char *reason);

/* ---- ringback (td-call-early.c) ---- */
/* A branch's 18x (its early SDP, or NULL) once tandem answered the caller
 * itself: TRUE when handled that way (nothing goes to the caller, the SDP
 * is taken); FALSE, the SDP still the caller's, otherwise. */
gboolean td_call_early_progress (TdCall *call, TdLeg *b, TdSdp *sdp);
/* The SDP the caller's 200 must carry (tandem's 183 answer), or NULL. */
const char *td_call_early_answer_for (TdCall *call);
/* Branch `b` answered and is connected: the tune stops. */
void td_call_early_answered (TdCall *call, TdLeg *b);
/* The caller ACKed: a re-offer due since the answer goes out now. */
void td_call_early_acked (TdCall *call, TdLeg *leg);
/* An originated call ended or its party moved: its tune stops. */
void td_call_early_stop (TdCall *call);
void td_call_early_clear (TdCall *call);

/* ---- REFER (td-call-refer.c) ---- */
/* An in-dialog REFER arrived on `leg` (nua_i_refer). */
void td_call_refer_received (TdCall *call, TdLeg *leg, const sip_t *sip, tagi_t tags[]);

/* ---- legs that move (td-call-move.c) ---- */
/* An INVITE with Replaces from authenticated `caller`: take the named
 * leg's place, or answer 481/486. */
void td_call_incoming_replaces (TdCallContext *ctx, nua_handle_t *nh, const sip_t *sip,
                                const TdUser *caller);
/* An event on a leg that left its call (a replaced leg being hung up). */
void td_call_loose_leg_event (TdCallContext *ctx, TdLeg *leg, nua_event_t event,
                              const sip_t *sip, tagi_t tags[]);
/* Detach `leg` from its call (the call keeps the rest). Returns the
 * reference the call held. */
TdLeg *td_call_detach_leg (TdCall *call, TdLeg *leg);
/* `old` loses a party: its segment ends (CDR, hung up by the transfer;
 * reason: static, NULL for "transferred"), it starts nothing new. */
void td_call_leave (TdCall *old, const char *transferred_by, const char *reason);
/* `call`'s parties change: a new CDR segment, continuing `from`'s session. */
void td_call_new_segment (TdCall *call, const TdCall *from, const char *transferred_by);
/* A tune played to the leg's endpoint stops (it hears its new party). */
void td_leg_stop_tunes (TdLeg *leg);
/* `leg` (up) leaves its call (or none) for a new answered call of its own,
 * as its `a`, with no peer (a room's member); callee names the far side. */
TdCall *td_call_adopt_leg (TdLeg *leg, const char *callee, const char *moved_by,
                           const char *reason);
/* td_call_originate for a room (td_room_dial): the call rings someone into
 * `room` (call->dials_into, set before the routing hooks run). */
TdCall *td_call_originate_into (TdLeg *party, const char *target, const char *headers,
                                const char *transferred_by, TdRoom *room, GError **error);
/* Two up legs (in calls or none) become one answered two-party call; each
 * is re-offered only if what it was told changes. */
TdCall *td_call_pair_legs (TdLeg *first, TdLeg *second, const char *moved_by,
                           const char *reason);

/* ---- session refresh (td-call-refresh.c) ---- */
/* Learn whether the leg's endpoint allows UPDATE from `sip` (its INVITE or
 * 2xx when `initial`: no Allow means no; later only an Allow changes it). */
void td_call_learn_allow (TdLeg *leg, const sip_t *sip, gboolean initial);
/* The session timer as nua negotiated it: as UAS of the endpoint's request,
 * as UAC from the 2xx to tandem's. */
void td_call_session_from_request (TdCall *call, TdLeg *leg, const sip_t *sip);
void td_call_session_from_response (TdCall *call, TdLeg *leg, const sip_t *sip);
/* The session was just refreshed (a 2xx either way): (re)start tandem's
 * refresh timer if tandem is the leg's refresher. */
void td_call_arm_refresh (TdCall *call, TdLeg *leg);
/* The refresh timer fired: send the refresh, or wait for the offer exchange
 * under way. TRUE if a refresh went out. */
gboolean td_call_refresh_due (TdLeg *leg);
/* The answer to tandem's refresh (`was_update`: its UPDATE, else its re-INVITE). */
void td_call_refresh_done (TdCall *call, TdLeg *leg, int status, const sip_t *sip,
                           gboolean was_update);
/* RFC 3261 §14.1: how long to wait before resending a request on `leg`
 * that was answered 491. */
guint td_call_glare_delay_ms (const TdLeg *leg);
/* Tandem's re-INVITE/UPDATE `what` (TD_OUT_REFRESH or TD_OUT_REALIGN) on
 * `leg` met glare (491): send it again after td_call_glare_delay_ms, on
 * the leg's refresh timer. */
void td_call_retry_after_glare (TdLeg *leg, TdLegOutgoing what);
/* Offer `peer` its other party's current session again (td-call-offer.c). */
void td_call_realign (TdCall *call, TdLeg *peer);

G_END_DECLS
