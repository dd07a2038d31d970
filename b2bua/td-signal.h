/* TdSignal: the SIP operations calls and legs perform, as a table.
 *
 * td-call*.c and td-leg.c never call nua_* directly: they go through this
 * seam, so that the call/leg/offer state machine can run in one process
 * against a fake that records what would have been sent (tests/unit/
 * test-callstate.c), deterministically, and be driven by feeding the event
 * entry points (td_call_leg_event) messages parsed from text. The real table
 * (td_signal_nua) is a thin layer over nua with no logic of its own.
 *
 * Tags are passed through as a list: the real table hands them to nua, the
 * fake reads what it needs (SIPTAG_PAYLOAD_STR, SIPTAG_SESSION_EXPIRES_STR...). */
#pragma once

#include <glib.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip.h>

G_BEGIN_DECLS

/* Which request a response answers. */
typedef enum {
  TD_WITH_HANDLE,   /* the handle's own pending INVITE (the A-leg's initial one) */
  TD_WITH_CURRENT,  /* the request of the event being handled (NUTAG_WITH_THIS) */
  TD_WITH_SAVED,    /* a saved event (NUTAG_WITH_SAVED) */
} TdSignalWith;

typedef struct _TdSignalOps {
  /* A new outgoing handle (nua_handle). */
  nua_handle_t *(*handle) (gpointer self, tagi_t const *tags);
  void (*bind) (gpointer self, nua_handle_t *nh, gpointer leg);
  void (*destroy) (gpointer self, nua_handle_t *nh);
  /* Per-handle parameters (nua_set_hparams). */
  void (*set_params) (gpointer self, nua_handle_t *nh, tagi_t const *tags);
  void (*respond) (gpointer self, nua_handle_t *nh, TdSignalWith with, nua_saved_event_t *saved,
                   int status, const char *phrase, tagi_t const *tags);
  void (*invite) (gpointer self, nua_handle_t *nh, tagi_t const *tags);
  void (*update) (gpointer self, nua_handle_t *nh, tagi_t const *tags);
  void (*ack) (gpointer self, nua_handle_t *nh, tagi_t const *tags);
  void (*bye) (gpointer self, nua_handle_t *nh);
  void (*cancel) (gpointer self, nua_handle_t *nh);
  /* A NOTIFY in the handle's dialog (nua_notify): the refer subscription. */
  void (*notify) (gpointer self, nua_handle_t *nh, tagi_t const *tags);
  /* The leg (handle magic) whose dialog a Replaces names, matched as RFC
   * 3891 §3 says (to-tag = our local tag), or NULL (nua_handle_by_replaces). */
  gpointer (*by_replaces) (gpointer self, const sip_replaces_t *replaces);
  /* Keep the event being handled for a later answer (nua_save_event). */
  void (*save_event) (gpointer self, nua_saved_event_t *saved);
  void (*destroy_event) (gpointer self, nua_saved_event_t *saved);
} TdSignalOps;

typedef struct {
  const TdSignalOps *ops;
  gpointer self;            /* the real table: the nua_t */
} TdSignal;

/* The real table over `nua`. */
TdSignal td_signal_nua (nua_t *nua);

/* Variadic front ends (tags end with TAG_END ()). */
nua_handle_t *td_signal_handle (const TdSignal *s, tag_type_t tag, tag_value_t value, ...);
void td_signal_bind (const TdSignal *s, nua_handle_t *nh, gpointer leg);
void td_signal_destroy (const TdSignal *s, nua_handle_t *nh);
void td_signal_set_params (const TdSignal *s, nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...);
void td_signal_respond (const TdSignal *s, nua_handle_t *nh, TdSignalWith with,
                        nua_saved_event_t *saved, int status, const char *phrase,
                        tag_type_t tag, tag_value_t value, ...);
void td_signal_invite (const TdSignal *s, nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...);
void td_signal_update (const TdSignal *s, nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...);
void td_signal_ack (const TdSignal *s, nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...);
void td_signal_bye (const TdSignal *s, nua_handle_t *nh);
void td_signal_cancel (const TdSignal *s, nua_handle_t *nh);
void td_signal_notify (const TdSignal *s, nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...);
gpointer td_signal_by_replaces (const TdSignal *s, const sip_replaces_t *replaces);
void td_signal_save_event (const TdSignal *s, nua_saved_event_t *saved);
void td_signal_destroy_event (const TdSignal *s, nua_saved_event_t *saved);

G_END_DECLS
