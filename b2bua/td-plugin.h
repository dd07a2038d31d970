/* td-plugin.h: the core's face toward features.
 *
 * A feature (call forwarding, hold, call waiting, ...) is a GModule in the
 * plugin folder exporting one descriptor:
 *
 *     static gboolean my_init (TdPluginHost *host, gpointer *state, GError **error) { ... }
 *     TD_PLUGIN_DEFINE ("forward", my_init, NULL)
 *
 * In init it registers the configuration keys it reads (its own [NAME]
 * group's, per-user ones) and the hooks it reacts to. A hook gets the call
 * (and, for offers, the leg) and returns TD_HOOK_CONTINUE to let the core
 * (and later plugins) go on, or TD_HOOK_HANDLED when it took over — then it
 * must act through the operations below (redirect the call, reject it,
 * answer the offer...). Plugins never see TdCall's fields: only these
 * functions; what a plugin keeps per call, it keeps in td_call_set_data. */
#pragma once

#include <glib.h>
#include <gmodule.h>
#include <json-glib/json-glib.h>

#include "td-config.h"

G_BEGIN_DECLS

typedef struct _TdPluginHost TdPluginHost;
typedef struct _TdCall TdCall;
typedef struct _TdLeg TdLeg;
typedef struct _TdSdp TdSdp;
typedef struct _TdTune TdTune;
typedef struct _TdRoom TdRoom;

typedef enum {
  TD_HOOK_CONTINUE,
  TD_HOOK_HANDLED,
} TdHookResult;

typedef enum {
  /* An authenticated call is about to ring its callee's contacts. A plugin
   * may reject it (td_call_reject) or send it elsewhere (td_call_redirect). */
  TD_HOOK_CALL_ROUTING,
  /* The callee's phones are ringing (the B-legs are out). */
  TD_HOOK_CALL_RINGING,
  /* Every branch failed; args->status is the final status the caller would
   * get (486 busy, 480, 408, 603...). HANDLED: the plugin redirected or
   * rejected the call itself. */
  TD_HOOK_CALL_FAILED,
  /* The call was answered and both legs are bridged. */
  TD_HOOK_CALL_ANSWERED,
  /* An established leg's endpoint sent a new offer (re-INVITE or UPDATE);
   * args->leg, args->sdp. HANDLED: the plugin answered it (td_call_answer_offer). */
  TD_HOOK_OFFER,
  /* The call is over (its CDR is being written); args->status: 200 if it
   * was answered, else the final status its caller (or originator) got. */
  TD_HOOK_CALL_ENDED,
  /* A leg's endpoint sent REFER in its dialog (RFC 3515); args->leg,
   * args->refer. The handler answers it, synchronously: td_leg_accept_refer
   * (202, then NOTIFYs with td_leg_notify_refer) or td_leg_refuse_refer.
   * Unhandled: 501. A second REFER on a leg whose transfer is still under
   * way never gets here (491). */
  TD_HOOK_REFER,
  /* Per-leg progress of a B-leg (an INVITE tandem sent), args->leg and
   * args->status: it rings (18x), it answered (2xx), it failed (>= 300). */
  TD_HOOK_LEG_RINGING,
  TD_HOOK_LEG_ANSWERED,
  TD_HOOK_LEG_FAILED,
  /* Any leg's dialog is gone (BYE, CANCEL, failure, timeout). */
  TD_HOOK_LEG_ENDED,
  TD_HOOK_COUNT
} TdHook;

/* What a REFER asks (TD_HOOK_REFER), from its headers. */
typedef struct {
  const char *refer_to;     /* the Refer-To URI, without its header part */
  const char *replaces;     /* the Replaces its ?Replaces= names (RFC 3891, unescaped), or NULL */
  const char *referred_by;  /* the Referred-By header value (RFC 3892), or NULL */
} TdRefer;

typedef struct {
  TdHook hook;
  TdCall *call;
  TdLeg *leg;          /* TD_HOOK_OFFER, TD_HOOK_REFER, TD_HOOK_LEG_* */
  const TdRefer *refer;  /* TD_HOOK_REFER */
  const TdSdp *sdp;    /* TD_HOOK_OFFER: the new offer */
  int status;          /* TD_HOOK_CALL_FAILED, _CALL_ENDED, TD_HOOK_LEG_* */
  const char *reason;  /* TD_HOOK_CALL_FAILED: "no answer" when tandem's own
                        * no-answer timer ended the ringing, else NULL */
} TdHookArgs;

typedef TdHookResult (*TdHookFunc) (const TdHookArgs *args, gpointer user_data);

typedef struct {
  guint abi;                                    /* TD_PLUGIN_ABI */
  const char *name;
  /* Register keys and hooks; *state is the plugin's own data (hook
   * user_data, and close's), if it needs any. */
  gboolean (*init) (TdPluginHost *host, gpointer *state, GError **error);
  void (*close) (TdPluginHost *host, gpointer state);   /* may be NULL */
} TdPluginDescriptor;

#define TD_PLUGIN_ABI 3
#define TD_PLUGIN_SYMBOL "td_plugin_descriptor"
#define TD_PLUGIN_DEFINE(name, init, close) \
  G_MODULE_EXPORT const TdPluginDescriptor td_plugin_descriptor = { TD_PLUGIN_ABI, name, init, close };

/* ---- registration (from init) -------------------------------------------- */

void td_plugin_host_add_hook (TdPluginHost *host, TdHook hook, TdHookFunc func,
                              gpointer user_data);
/* A user of the domain that the plugin serves itself, which no phone
 * registers (a conference factory): calls to it reach TD_HOOK_CALL_ROUTING
 * with no branches to ring (unhandled: 404). A configured user of that
 * name is still that user. */
void td_plugin_host_add_service (TdPluginHost *host, const char *user);
/* A [user NAME] key this plugin reads (e.g. "forward-busy"); unknown keys
 * stay configuration errors. */
void td_plugin_host_add_user_key (TdPluginHost *host, const char *key);

/* When a key of the plugin's own group takes effect. */
typedef enum {
  TD_PLUGIN_KEY_RELOADABLE,   /* read when used: a reload (SIGHUP) applies a new value */
  TD_PLUGIN_KEY_RESTART_ONLY, /* read once, in init: a reload keeps the running value
                               * (td_config_plugin_value gives it) and warns */
} TdPluginKeyReload;

/* Checks a value: FALSE with an error saying what is wrong with it (the
 * host adds file, line, group and key). */
typedef gboolean (*TdPluginKeyCheck) (const char *value, GError **error);

/* A key of this plugin's own group: [NAME] for the plugin enabled as NAME
 * (the hold plugin's "music" is `[hold] music = FILE`). Other keys in the
 * group are configuration errors; `check` (may be NULL) runs on the value
 * at start and at each reload, which a bad value fails. Read it with
 * td_config_plugin_value (config, NAME, key, &line), or
 * td_config_plugin_path for a file (relative to the configuration's folder). */
void td_plugin_host_add_key (TdPluginHost *host, const char *key, TdPluginKeyReload reload,
                             TdPluginKeyCheck check);
/* Reload (SIGHUP). `check` (may be NULL) runs on the new configuration
 * before it replaces the running one: FALSE, with an error naming file and
 * line, refuses the whole reload. `apply` (may be NULL) runs once the new
 * configuration is the running one (td_plugin_host_config). Both run on the
 * SIP thread and must not block: slow work (decoding files) goes to a
 * thread, its result back to the main context. */
typedef gboolean (*TdPluginReloadCheck) (const TdConfig *fresh, gpointer data, GError **error);
typedef void (*TdPluginReloadApply) (const TdConfig *config, gpointer data);
void td_plugin_host_on_reload (TdPluginHost *host, TdPluginReloadCheck check,
                               TdPluginReloadApply apply, gpointer data);
/* The running configuration (changes on SIGHUP: do not keep it). During
 * init, the configuration being loaded (also for --check-config). */
const TdConfig *td_plugin_host_config (TdPluginHost *host);

/* ---- what a plugin may ask of a call ---------------------------------------- */

const char *td_call_get_id (const TdCall *call);        /* the A-leg's Call-ID */
const char *td_call_get_caller (const TdCall *call);    /* authenticated caller */
const char *td_call_get_callee (const TdCall *call);    /* the user now being called */
gboolean td_call_is_answered (const TdCall *call);
TdPluginHost *td_call_get_host (const TdCall *call);

/* Why the operations on calls refuse (td_call_resolve_target,
 * td_call_redirect, td_call_originate, td_call_take_leg): the code is the
 * SIP status that says it — 481 the call is answered or over (or the leg
 * cannot move there), 404 the target is no user of the domain, 480 (or the
 * router's status) that user cannot be rung now, 486 busy... */
#define TD_CALL_ERROR (td_call_error_quark ())
GQuark td_call_error_quark (void);

/* The user `target` names — a user of the domain ("carol") or a SIP URI in
 * it ("sip:carol@pbx.test") — if the call could ring that user now (it is
 * unanswered and not over, and the user has a phone registered); else NULL
 * and an error saying why. What td_call_redirect would ring: a plugin asks
 * first when it must tell the caller before the new branches go out. */
char *td_call_resolve_target (TdCall *call, const char *target, GError **error);

/* Stop ringing the current callee and ring `target` (as in
 * td_call_resolve_target) instead: the branches still ringing are
 * cancelled, the callee becomes that user, and the new callee's
 * TD_HOOK_CALL_ROUTING (which may refuse or redirect it again) then
 * TD_HOOK_CALL_RINGING run before this returns. `extra_headers`, raw header
 * lines each ending in CRLF (or NULL), go on every new branch's INVITE,
 * instead of those of an earlier redirect. The caller is told nothing (see
 * td_call_send_provisional). FALSE, nothing changed, if it cannot be rung. */
gboolean td_call_redirect (TdCall *call, const char *target, const char *extra_headers,
                           GError **error);

/* A provisional response to the caller (101-199, with its standard phrase:
 * 181 Call Is Being Forwarded); nothing once the caller had a final one. */
void td_call_send_provisional (TdCall *call, int status);

/* A plugin's own state for one call, under a key of its own ("forward"):
 * `destroy` (may be NULL) frees it when it is replaced or when the call is
 * freed (after TD_HOOK_CALL_ENDED). NULL if none was set. */
void td_call_set_data (TdCall *call, const char *key, gpointer data, GDestroyNotify destroy);
gpointer td_call_get_data (TdCall *call, const char *key);

/* The current callee cannot take the call (e.g. busy: 486). The
 * TD_HOOK_CALL_FAILED handlers run (so forwarding on busy still applies),
 * else the caller gets `status`. Only for unanswered calls. */
void td_call_reject (TdCall *call, int status);

/* A timer that lives as long as the call is unanswered and not ended. */
typedef void (*TdCallTimeoutFunc) (TdCall *call, gpointer user_data);
void td_call_add_ring_timeout (TdCall *call, guint seconds, TdCallTimeoutFunc func,
                               gpointer user_data);

/* From a TD_HOOK_OFFER handler that returns HANDLED: tandem answers the
 * offer itself (the other party is not asked) with the other party's current
 * session, every stream set to `direction` (0 sendrecv, 1 sendonly, 2 recvonly,
 * 3 inactive: TdSdpDirection). */
void td_call_answer_offer (TdCall *call, TdLeg *leg, int direction);

/* Play `tune` (td-tune.h) to the party at the other end of `leg` from the
 * relay, in that party's session's codec (PCMU, PCMA, G.722 or Opus),
 * instead of `leg`'s audio; FALSE if it has none the tune is in. Stop gives it `leg`'s audio back, seamlessly. */
gboolean td_call_play_to_peer (TdCall *call, TdLeg *leg, TdTune *tune);
void td_call_stop_playing_to_peer (TdCall *call, TdLeg *leg);
gboolean td_call_is_playing_to_peer (TdCall *call, TdLeg *leg);

/* ---- ringback: tandem answers the caller while the callee rings -------- */

typedef enum {
  /* The callee's own early media (a 183 with SDP, then its RTP: an
   * announcement) ends the tune: its first packet reaches the caller. */
  TD_RINGBACK_EARLY_MEDIA_FIRST,
  /* The tune plays until the callee answers (its 200, or its first RTP
   * packet of a branch that sent no early SDP). */
  TD_RINGBACK_TUNE_FIRST,
} TdRingbackMode;

/* Play `tune` to the party this unanswered call rings for, until the
 * callee answers (switching on its first RTP packet or its 200, whichever
 * comes first, under the party's one RTP context), in the party's codec:
 *  - the caller: tandem answers its offer itself, `183 Session Progress`
 *    with an SDP of one codec (the caller's first that the tune has, plus
 *    telephone-event) on tandem's relay port, reliable (PRACK) when the
 *    caller asks for it; the caller's 200 carries the same SDP, and a
 *    callee answer in another codec gets the caller a re-INVITE after its
 *    ACK. The callee's 180s are not relayed any more;
 *  - an originated call's party (a transferee): its current stream.
 * Again on the same call: the tune changes (the call was forwarded), the
 * answer stays. FALSE, nothing done, when there is no codec to play in
 * (a late offer, no codec of the tune's) or the call is answered or over. */
gboolean td_call_play_ringback (TdCall *call, TdTune *tune, TdRingbackMode mode);
/* The user the caller dialled, before any forwarding. */
const char *td_call_get_dialed (const TdCall *call);

/* ---- legs: one dialog each; they may move between calls ---------------- */

TdLeg *td_leg_ref (TdLeg *leg);
void td_leg_unref (TdLeg *leg);
/* Stable for the daemon's life: a control tool may name a leg by it. */
guint64 td_leg_get_id (const TdLeg *leg);
/* The call the leg is in now; NULL once it has left every call. */
TdCall *td_leg_get_call (const TdLeg *leg);
/* The party's user of the domain, or NULL (an outside party). */
const char *td_leg_get_user (const TdLeg *leg);
/* Its dialog is established and alive. */
gboolean td_leg_is_up (const TdLeg *leg);
/* The leg bridged to it in its call, or NULL. */
TdLeg *td_leg_get_peer (const TdLeg *leg);
/* Keep the leg up when its peer hangs up (TRUE), or end it with its peer
 * as usual (FALSE, the default): a party being transferred outlives its
 * transferor. The plugin that sets it hangs the leg up if nothing comes of it. */
void td_leg_set_stays (TdLeg *leg, gboolean stays);
/* BYE an established leg (a leg still ringing is cancelled). */
void td_leg_hangup (TdLeg *leg);
/* Among all of tandem's legs (`any` is one of them): the leg of that id,
 * or the leg whose dialog a Replaces header value names
 * ("call-id;to-tag=...;from-tag=...", RFC 3891 §3: to-tag is tandem's);
 * NULL if none. Borrowed. */
TdLeg *td_leg_find (const TdLeg *any, guint64 id);
TdLeg *td_leg_find_replaced (const TdLeg *any, const char *replaces);

/* ---- REFER (RFC 3515), from a TD_HOOK_REFER handler --------------------- */

/* 202 Accepted, and the first NOTIFY: "SIP/2.0 100 Trying", active. */
void td_leg_accept_refer (TdLeg *leg);
void td_leg_refuse_refer (TdLeg *leg, int status);
/* Later NOTIFYs of an accepted REFER: the status line of the transfer's
 * progress (message/sipfrag); a final status (>= 200) ends the
 * subscription and the transfer: the leg may be referred again. */
void td_leg_notify_refer (TdLeg *leg, int status);

/* ---- moving legs --------------------------------------------------------- */

/* (Their errors: TD_CALL_ERROR, the code a SIP status.) */

/* A new call from tandem to `target` (a user of the domain, or a sip: URI)
 * on behalf of `party`, which stays in its own call meanwhile: From is the
 * party's user, the offer the party's current SDP, `headers` (raw header
 * lines such as "Referred-By: <sip:bob@pbx.test>\r\n", or NULL) go on the
 * INVITEs. Routing hooks apply (forwarding, call waiting) like for any call.
 * The new call's CDR continues the party's call's session, and
 * `transferred_by` (a user, or NULL) is noted in it. Its progress shows in
 * the call hooks (TD_HOOK_CALL_ANSWERED, TD_HOOK_CALL_ENDED with the
 * status); once answered, td_call_take_leg brings the party in. Borrowed
 * (td_call_ref to keep it); NULL and `error` if it cannot be routed. */
TdCall *td_call_originate (TdLeg *party, const char *target, const char *headers,
                           const char *transferred_by, GError **error);
/* Move `leg` (up, in another call or in none) into answered `call`: in
 * place of `replacing` (a leg of `call`, which leaves it and is hung up), or
 * as the party an originated call rang for (replacing NULL). Its old call
 * loses it (that call's segment ends, hung up by TD_HANGUP_TRANSFER). The
 * relay is re-pointed; a leg gets a re-INVITE only if what tandem tells it
 * changes (codec, hold). `call` starts a new CDR segment. */
gboolean td_call_take_leg (TdCall *call, TdLeg *leg, TdLeg *replacing, const char *transferred_by,
                           GError **error);

TdCall *td_call_ref (TdCall *call);
void td_call_unref (TdCall *call);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdCall, td_call_unref)
/* End the call from tandem's side: cancel what rings, BYE who talks. */
void td_call_hangup (TdCall *call, const char *reason);
/* Has the call ended (or is it ending)? Nothing new starts on it. */
gboolean td_call_is_ended (const TdCall *call);

/* ---- rooms: N parties, each hearing the others ---------------------------- */

/* A room holds parties (legs) that left their calls; each hears the sum of
 * the others, mixed by the relay in its own session's codec (PCMU, PCMA,
 * G.722, Opus), so joining needs no re-INVITE and keeps the leg's RTP
 * context. A room that drops to two parties becomes a plain call of those
 * two; to one (with nobody being dialled in), it ends. Errors: TD_CALL_ERROR
 * with a SIP-like code (481 no such answered call or leg, 488 no codec the
 * mixer speaks, 491 the leg renegotiates its session, 404 not a party). */

/* The parties of two answered two-party calls, in one new room (borrowed).
 * A user who is a party of both (the host of a three-way call) joins once,
 * with its leg of `first`; its leg of `second` is hung up. */
TdRoom *td_room_bridge (TdCall *first, TdCall *second, GError **error);
/* An unanswered call's caller (a call to a conference factory URI) is
 * answered by tandem itself as the focus (RFC 4579: its Contact has
 * ;isfocus), in the first codec of the offer the mixer speaks, and is a new
 * room's first party. */
TdRoom *td_room_answer (TdCall *call, GError **error);
/* An up leg of any call joins the room; its call loses it (that call goes
 * on without it, or ends with it if it was its last party). */
gboolean td_room_add_leg (TdRoom *room, TdLeg *leg, GError **error);
/* Ring `target` (a user, or a sip: URI of the domain) into the room: the
 * party who answers joins. Borrowed; NULL and `error` if it cannot ring. */
TdCall *td_room_dial (TdRoom *room, const char *target, GError **error);
/* BYE a party of the room. */
gboolean td_room_kick (TdRoom *room, TdLeg *leg, GError **error);
const char *td_room_get_id (const TdRoom *room);     /* "r3": stable for the daemon's life */
gint64 td_room_get_created (const TdRoom *room);     /* wall clock, µs */
/* Its parties (legs, borrowed) in the order they joined. */
GPtrArray *td_room_get_legs (const TdRoom *room);
guint td_room_n_parties (const TdRoom *room);
guint td_room_n_dialing (const TdRoom *room);
/* The first branch of a call still ringing (or the one that answered), or NULL. */
TdLeg *td_call_get_branch (const TdCall *call);
/* The room the call's party is in (the call is that party's share of the
 * room), or NULL. */
TdRoom *td_call_get_room (const TdCall *call);
/* The live room of that id, or NULL; every live room, oldest first (a new
 * array of borrowed rooms). */
TdRoom *td_plugin_host_find_room (TdPluginHost *host, const char *id);
GPtrArray *td_plugin_host_rooms (TdPluginHost *host);

/* ---- the operator's control socket ------------------------------------------ */

/* A command of the control socket (README, "Control socket and
 * tandemctl"): read `request`, add the members of a successful response to
 * `reply`, or fail with a message for the operator. */
typedef gboolean (*TdPluginCommand) (JsonObject *request, JsonBuilder *reply, gpointer data,
                                     GError **error);
/* From init: the socket's command `name` runs `func`. */
void td_plugin_host_add_command (TdPluginHost *host, const char *name, TdPluginCommand func,
                                 gpointer data);
/* A live call by its operator id ("c7"), or NULL and an error for the operator. */
TdCall *td_plugin_host_find_call (TdPluginHost *host, const char *id, GError **error);
/* A live leg by its operator id ("l12"), or NULL and an error. */
TdLeg *td_plugin_host_find_leg (TdPluginHost *host, const char *id, GError **error);
/* Operator ids: "c7" for a call, "l12" for a leg (new strings). */
char *td_call_get_operator_id (const TdCall *call);
char *td_leg_get_operator_id (const TdLeg *leg);
/* What the operator sees of a party: "ringing", "talking" or "held". */
const char *td_leg_get_state (const TdLeg *leg);

/* JSON for replies, as the core's commands write them: a wall-clock time
 * (µs; 0: null) as "2026-12-02T03:17:20Z", a party as {"user", "leg", "state"}. */
void td_plugin_json_add_time (JsonBuilder *b, gint64 us);
void td_plugin_json_add_party (JsonBuilder *b, const TdLeg *leg);
/* The request member `key` as a string: FALSE with a message naming it if absent or no string. */
gboolean td_plugin_json_get_string (JsonObject *request, const char *key, const char **out,
                                    GError **error);

/* How many answered calls `user` is in right now (call waiting, busy). */
guint td_plugin_host_user_calls (TdPluginHost *host, const char *user);

G_END_DECLS
