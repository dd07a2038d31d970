/* REFER in a call's dialogs (RFC 3515): the request, the subscription it
 * creates, and the NOTIFYs that tell the referrer how the transfer goes
 * (message/sipfrag, RFC 3420). What a REFER leads to is the business of the
 * plugin that handles TD_HOOK_REFER; this file only speaks the protocol. */
#define G_LOG_DOMAIN "tandem-call"

#include <string.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tagarg.h>

#include "td-call-private.h"
#include "td-plugins.h"

/* The value of the `name` header in a URI's header part ("a=1&Replaces=x"),
 * unescaped, or NULL. */
static char *
uri_header (const char *headers, const char *name)
{
  g_auto (GStrv) fields = g_strsplit (headers ? headers : "", "&", -1);
  gsize len = strlen (name);

  for (guint i = 0; fields[i]; i++)
    if (g_ascii_strncasecmp (fields[i], name, len) == 0 && fields[i][len] == '=')
      return g_uri_unescape_string (fields[i] + len + 1, NULL);
  return NULL;
}

/* Refer-To's URI without its header part, and the Replaces it carries. */
static char *
refer_target (su_home_t *home, const sip_refer_to_t *rt, char **replaces)
{
  url_t url = *rt->r_url;

  *replaces = uri_header (url.url_headers, "Replaces");
  url.url_headers = NULL;
  return url_as_string (home, &url);
}

/* The Event of the subscription nua made for this REFER ("refer", or
 * "refer;id=N" for a dialog's later REFERs, RFC 3515 §2.4.6). */
static char *
refer_event (su_home_t *home, tagi_t tags[])
{
  sip_event_t const *event = NULL;

  if (tags)
    tl_gets (tags, NUTAG_REFER_EVENT_REF (event), TAG_END ());
  return g_strdup (event ? sip_header_as_string (home, (sip_header_t const *) event) : "refer");
}

static void
respond (TdLeg *leg, int status, const char *phrase)
{
  td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, status, phrase, TAG_END ());
}

void
td_call_refer_received (TdCall *call, TdLeg *leg, const sip_t *sip, tagi_t tags[])
{
  su_home_t home[1] = { SU_HOME_INIT (home) };
  g_autofree char *replaces = NULL;
  g_autofree char *referred_by = NULL;
  const char *target;
  TdRefer refer;
  TdHookArgs args;
  TdHookResult handled;

  /* Without a handler REFER is no application method: nua has answered. */
  if (!td_plugin_host_handles (call->ctx->plugins, TD_HOOK_REFER))
    return;
  /* RFC 3515 §2.4.1: one REFER at a time, so that each NOTIFY is clear. */
  if (leg->refer_event) {
    respond (leg, SIP_491_REQUEST_PENDING);
    return;
  }
  if (!sip || !sip->sip_refer_to || !sip->sip_refer_to->r_url->url_scheme) {
    respond (leg, 400, "Bad Request (no Refer-To)");
    return;
  }
  if (!td_leg_is_up (leg) || call->ended || (!call->room && td_call_peer_of (call, leg) == NULL)) {
    /* Its dialog is not (or no longer) part of a conversation (a room's
     * party talks to the room: a REFER there asks to pull someone in). */
    respond (leg, 403, "Forbidden (not in a call)");
    return;
  }
  target = refer_target (home, sip->sip_refer_to, &replaces);
  if (sip->sip_referred_by)
    referred_by = g_strdup (sip_header_as_string (home, (sip_header_t const *) sip->sip_referred_by));
  refer = (TdRefer) { .refer_to = target, .replaces = replaces, .referred_by = referred_by };
  leg->refer_event = refer_event (home, tags);
  g_info ("call %s: the %s-leg (%s) refers %s%s", call->call_id, td_leg_name (leg),
          leg->user ? leg->user : "?", target, replaces ? " (with Replaces)" : "");
  args = (TdHookArgs) { .hook = TD_HOOK_REFER, .call = call, .leg = leg, .refer = &refer };
  handled = td_plugin_host_run (call->ctx->plugins, &args);
  if (handled != TD_HOOK_HANDLED && leg->refer_event) {
    g_clear_pointer (&leg->refer_event, g_free);
    respond (leg, 501, "Not Implemented (no plugin took the transfer)");
  }
  su_home_deinit (home);
}

void
td_leg_accept_refer (TdLeg *leg)
{
  g_return_if_fail (leg->refer_event);
  respond (leg, SIP_202_ACCEPTED);
  td_leg_notify_refer (leg, 100);
}

void
td_leg_refuse_refer (TdLeg *leg, int status)
{
  g_return_if_fail (leg->refer_event);
  g_return_if_fail (status >= 300 && status < 700);
  g_clear_pointer (&leg->refer_event, g_free);
  respond (leg, status, td_call_phrase (status));
}

void
td_leg_notify_refer (TdLeg *leg, int status)
{
  g_autofree char *frag = NULL;
  gboolean final = status >= 200;

  if (!leg->refer_event)
    return;
  if (leg->nh) {
    frag = g_strdup_printf ("SIP/2.0 %d %s\r\n", status, td_call_phrase (status));
    td_signal_notify (leg->signal, leg->nh,
                      NUTAG_SUBSTATE (final ? nua_substate_terminated : nua_substate_active),
                      SIPTAG_EVENT_STR (leg->refer_event),
                      SIPTAG_CONTENT_TYPE_STR ("message/sipfrag;version=2.0"),
                      SIPTAG_PAYLOAD_STR (frag), TAG_END ());
  }
  if (final)
    g_clear_pointer (&leg->refer_event, g_free);
}
