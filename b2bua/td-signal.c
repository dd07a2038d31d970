/* TdSignal over nua: each operation is the nua call of the same name. */
#include "td-signal.h"

#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_tagarg.h>

static nua_handle_t *
nua_handle_op (gpointer self, tagi_t const *tags)
{
  return nua_handle (self, NULL, TAG_NEXT (tags));
}

static void
nua_bind_op (gpointer self, nua_handle_t *nh, gpointer leg)
{
  nua_handle_bind (nh, (nua_hmagic_t *) leg);
}

static void
nua_destroy_op (gpointer self, nua_handle_t *nh)
{
  nua_handle_destroy (nh);
}

static void
nua_set_params_op (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  nua_set_hparams (nh, TAG_NEXT (tags));
}

static void
nua_respond_op (gpointer self, nua_handle_t *nh, TdSignalWith with, nua_saved_event_t *saved,
                int status, const char *phrase, tagi_t const *tags)
{
  switch (with) {
  case TD_WITH_CURRENT:
    nua_respond (nh, status, phrase, NUTAG_WITH_THIS ((nua_t *) self), TAG_NEXT (tags));
    break;
  case TD_WITH_SAVED:
    nua_respond (nh, status, phrase, NUTAG_WITH_SAVED (saved), TAG_NEXT (tags));
    break;
  case TD_WITH_HANDLE:
  default:
    nua_respond (nh, status, phrase, TAG_NEXT (tags));
    break;
  }
}

static void
nua_invite_op (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  nua_invite (nh, TAG_NEXT (tags));
}

static void
nua_update_op (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  nua_update (nh, TAG_NEXT (tags));
}

static void
nua_ack_op (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  nua_ack (nh, TAG_NEXT (tags));
}

static void
nua_bye_op (gpointer self, nua_handle_t *nh)
{
  nua_bye (nh, TAG_END ());
}

static void
nua_cancel_op (gpointer self, nua_handle_t *nh)
{
  nua_cancel (nh, TAG_END ());
}

static void
nua_notify_op (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  nua_notify (nh, TAG_NEXT (tags));
}

static gpointer
nua_by_replaces_op (gpointer self, const sip_replaces_t *replaces)
{
  nua_handle_t *nh = nua_handle_by_replaces (self, replaces);
  gpointer leg = nh ? nua_handle_magic (nh) : NULL;

  if (nh)
    nua_handle_unref (nh);
  return leg;
}

static void
nua_save_event_op (gpointer self, nua_saved_event_t *saved)
{
  nua_save_event (self, saved);
}

static void
nua_destroy_event_op (gpointer self, nua_saved_event_t *saved)
{
  nua_destroy_event (saved);
}

static const TdSignalOps nua_ops = {
  .handle = nua_handle_op, .bind = nua_bind_op, .destroy = nua_destroy_op,
  .set_params = nua_set_params_op, .respond = nua_respond_op, .invite = nua_invite_op,
  .update = nua_update_op, .ack = nua_ack_op, .bye = nua_bye_op, .cancel = nua_cancel_op,
  .save_event = nua_save_event_op, .destroy_event = nua_destroy_event_op,
  .notify = nua_notify_op, .by_replaces = nua_by_replaces_op,
};

TdSignal
td_signal_nua (nua_t *nua)
{
  return (TdSignal) { .ops = &nua_ops, .self = nua };
}

/* ---- variadic front ends ------------------------------------------------------ */

nua_handle_t *
td_signal_handle (const TdSignal *s, tag_type_t tag, tag_value_t value, ...)
{
  nua_handle_t *nh;
  ta_list ta;
  ta_start (ta, tag, value);
  nh = s->ops->handle (s->self, ta_args (ta));
  (void) ta_end (ta);
  return nh;
}

void
td_signal_bind (const TdSignal *s, nua_handle_t *nh, gpointer leg)
{
  s->ops->bind (s->self, nh, leg);
}

void
td_signal_destroy (const TdSignal *s, nua_handle_t *nh)
{
  s->ops->destroy (s->self, nh);
}

void
td_signal_set_params (const TdSignal *s, nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
{
  ta_list ta;
  ta_start (ta, tag, value);
  s->ops->set_params (s->self, nh, ta_args (ta));
  (void) ta_end (ta);
}

void
td_signal_respond (const TdSignal *s, nua_handle_t *nh, TdSignalWith with,
                   nua_saved_event_t *saved, int status, const char *phrase,
                   tag_type_t tag, tag_value_t value, ...)
{
  ta_list ta;
  ta_start (ta, tag, value);
  s->ops->respond (s->self, nh, with, saved, status, phrase, ta_args (ta));
  (void) ta_end (ta);
}

#define FORWARD_TAGS(op)                                                          \
  void td_signal_##op (const TdSignal *s, nua_handle_t *nh, tag_type_t tag,       \
                       tag_value_t value, ...)                                    \
  {                                                                               \
    ta_list ta;                                                                   \
    ta_start (ta, tag, value);                                                    \
    s->ops->op (s->self, nh, ta_args (ta));                                       \
    (void) ta_end (ta);                                                                  \
  }
FORWARD_TAGS (invite)
FORWARD_TAGS (update)
FORWARD_TAGS (ack)
FORWARD_TAGS (notify)
#undef FORWARD_TAGS

gpointer
td_signal_by_replaces (const TdSignal *s, const sip_replaces_t *replaces)
{
  return s->ops->by_replaces (s->self, replaces);
}

void
td_signal_bye (const TdSignal *s, nua_handle_t *nh)
{
  s->ops->bye (s->self, nh);
}

void
td_signal_cancel (const TdSignal *s, nua_handle_t *nh)
{
  s->ops->cancel (s->self, nh);
}

void
td_signal_save_event (const TdSignal *s, nua_saved_event_t *saved)
{
  s->ops->save_event (s->self, saved);
}

void
td_signal_destroy_event (const TdSignal *s, nua_saved_event_t *saved)
{
  s->ops->destroy_event (s->self, saved);
}
