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

#include "td-config.h"

G_BEGIN_DECLS

typedef struct _TdPluginHost TdPluginHost;
typedef struct _TdCall TdCall;
typedef struct _TdLeg TdLeg;
typedef struct _TdSdp TdSdp;
typedef struct _TdTune TdTune;

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
  /* The call is over (its CDR is being written). */
  TD_HOOK_CALL_ENDED,
  TD_HOOK_COUNT
} TdHook;

typedef struct {
  TdHook hook;
  TdCall *call;
  TdLeg *leg;          /* TD_HOOK_OFFER */
  const TdSdp *sdp;    /* TD_HOOK_OFFER: the new offer */
  int status;          /* TD_HOOK_CALL_FAILED */
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
/* The running configuration (changes on SIGHUP: do not keep it). During
 * init, the configuration being loaded (also for --check-config). */
const TdConfig *td_plugin_host_config (TdPluginHost *host);

/* ---- what a plugin may ask of a call ---------------------------------------- */

const char *td_call_get_id (const TdCall *call);        /* the A-leg's Call-ID */
const char *td_call_get_caller (const TdCall *call);    /* authenticated caller */
const char *td_call_get_callee (const TdCall *call);    /* the user now being called */
gboolean td_call_is_answered (const TdCall *call);
TdPluginHost *td_call_get_host (const TdCall *call);

/* Why td_call_resolve_target and td_call_redirect refuse. */
#define TD_CALL_ERROR (td_call_error_quark ())
GQuark td_call_error_quark (void);
typedef enum {
  TD_CALL_ERROR_STATE,        /* the call is answered, or over */
  TD_CALL_ERROR_NOT_A_USER,   /* the target is no user of the domain */
  TD_CALL_ERROR_UNREACHABLE,  /* that user cannot be rung (no registered phone...) */
} TdCallError;

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
 * relay, in that party's G.711 codec, instead of `leg`'s audio; FALSE if it
 * has no G.711 stream. Stop gives it `leg`'s audio back, seamlessly. */
gboolean td_call_play_to_peer (TdCall *call, TdLeg *leg, TdTune *tune);
void td_call_stop_playing_to_peer (TdCall *call, TdLeg *leg);
gboolean td_call_is_playing_to_peer (TdCall *call, TdLeg *leg);

/* How many answered calls `user` is in right now (call waiting, busy). */
guint td_plugin_host_user_calls (TdPluginHost *host, const char *user);

G_END_DECLS
