/* TdCall: a call's legs (the A-leg, its branches, the one that answered) and its end. */
#define G_LOG_DOMAIN "tandem-call"

#include "td-call-private.h"
#include "td-room.h"

#include <string.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include "td-body.h"
#include "td-router.h"
#include "td-sipauth.h"

/* ---- small helpers ---------------------------------------------------------- */

/* nua keeps the phrase pointer: relay statuses with static phrases only. */
const char *
td_call_phrase (int status)
{
  const char *phrase = sip_status_phrase (status);
  return phrase ? phrase : "Unknown";
}

/* A Content-Type or Content-Disposition as one value with its parameters,
 * the way td-body reads it. */
static char *
header_value (const char *type, const msg_param_t *params)
{
  GString *s = g_string_new (type);
  for (guint i = 0; params && params[i]; i++)
    g_string_append_printf (s, ";%s", params[i]);
  return g_string_free (s, FALSE);
}

/* Where the session description of a message's body is: the body itself
 * or one part of a multipart (td-body.h). */
static TdBodyKind
body_sdp (const sip_t *sip, const char **sdp, gsize *len, GError **error)
{
  const sip_content_type_t *ct = sip ? sip->sip_content_type : NULL;
  const sip_content_disposition_t *cd = sip ? sip->sip_content_disposition : NULL;
  g_autofree char *ctype = ct && ct->c_type ? header_value (ct->c_type, ct->c_params) : NULL;
  g_autofree char *disposition = cd && cd->cd_type ? header_value (cd->cd_type, cd->cd_params)
                                                   : NULL;

  if (!sip || !sip->sip_payload)
    return TD_BODY_NONE;
  return td_body_find_sdp (ctype, disposition, sip->sip_payload->pl_data,
                           sip->sip_payload->pl_len, sdp, len, error);
}

static TdSdp *
sdp_of (const sip_t *sip, GError **error)
{
  const char *text = NULL;
  gsize len = 0;

  if (body_sdp (sip, &text, &len, error) != TD_BODY_SDP) {
    g_prefix_error (error, "no usable SDP: ");
    return NULL;
  }
  return td_sdp_parse (text, len, error);
}

gboolean
td_call_has_sdp (const sip_t *sip)
{
  return body_sdp (sip, NULL, NULL, NULL) == TD_BODY_SDP;
}

TdSdp *
td_call_parse_sdp (const TdCall *call, TdLeg *from, const sip_t *sip)
{
  g_autoptr (GError) error = NULL;
  TdSdp *sdp = sdp_of (sip, &error);

  if (!sdp) {
    g_info ("call %s: bad SDP: %s", call->call_id, error ? error->message : "none");
    return NULL;
  }
  if (from && !td_leg_sdp_acceptable (from, sdp, &error)) {
    g_info ("call %s: %s-leg's SDP refused: %s", call->call_id, td_leg_name (from), error->message);
    td_sdp_free (sdp);
    return NULL;
  }
  return sdp;
}

gboolean
td_call_refuse_body (const TdSignal *signal, nua_handle_t *nh, const sip_t *sip)
{
  g_autoptr (GError) error = NULL;

  if (body_sdp (sip, NULL, NULL, &error) != TD_BODY_UNUSABLE)
    return FALSE;
  g_info ("%s %s: 415: %s", sip->sip_request ? sip->sip_request->rq_method_name : "request",
          sip->sip_call_id ? sip->sip_call_id->i_id : "?", error->message);
  td_signal_respond (signal, nh, TD_WITH_CURRENT, NULL, SIP_415_UNSUPPORTED_MEDIA,
                     SIPTAG_ACCEPT_STR ("application/sdp"), TAG_END ());
  return TRUE;
}

TdLeg *
td_call_peer_of (const TdCall *call, const TdLeg *leg)
{
  if (leg == call->a)
    return call->bridged;
  return leg == call->bridged ? call->a : NULL;
}

const char *
td_call_media_address (const TdCall *call)
{
  return call->ctx->config->media_address;
}

/* Answer the A-leg's INVITE (once finally). A 503 comes from tandem itself
 * (a B-leg's 503 is mapped to 500): no media ports left for a new call,
 * which frees up as calls end, so the caller may retry (RFC 3261 §21.5.4)
 * after the one Retry-After tandem gives for being short of capacity,
 * `[sip] overload-retry-after`, as the overload 503s do. */
void
td_call_respond_a (TdCall *call, int status, const char *phrase, const char *sdp)
{
  TdLeg *a = call->a;
  g_autofree char *retry_after = NULL;

  if (!a) {
    /* An originated call: its final answer is for the originator, who
     * learns it from the hooks (TD_HOOK_CALL_ANSWERED, _ENDED). */
    if (status >= 200 && !call->origin_final) {
      call->origin_final = TRUE;
      if (status >= 300) {
        call->final_status = status;
        call->ended = TRUE;
        td_call_early_stop (call);   /* the party's ringback, if any */
      }
    }
    return;
  }
  if (!a->nh || a->final)
    return;
  if (status == 503)
    retry_after = g_strdup_printf ("%u", call->ctx->config->overload_retry_after);
  td_signal_respond (a->signal, a->nh, TD_WITH_HANDLE, NULL, status, phrase,
               TAG_IF (a->contact && status < 300, SIPTAG_CONTACT_STR (a->contact)),
               TAG_IF (sdp, SIPTAG_CONTENT_TYPE_STR ("application/sdp")),
               TAG_IF (sdp, SIPTAG_PAYLOAD_STR (sdp)),
               TAG_IF (retry_after, SIPTAG_RETRY_AFTER_STR (retry_after)),
               TAG_END ());
  if (status >= 200) {
    a->final = TRUE;
    if (status >= 300) {
      call->final_status = status;
      call->ended = TRUE;
    }
  }
}

void
td_call_cancel_branches (TdCall *call, TdLeg *except)
{
  for (guint i = 0; i < call->b_legs->len; i++) {
    TdLeg *b = g_ptr_array_index (call->b_legs, i);
    if (b != except && b->nh && !b->final && !b->cancelled) {
      td_signal_cancel (b->signal, b->nh);
      b->cancelled = TRUE;
    }
  }
}

void
td_call_stop_ring_timers (TdCall *call)
{
  td_timer_clear (&call->no_answer_timer);
  g_ptr_array_set_size (call->ring_timers, 0);
}

/* With a late offer tandem ACKs the B-leg's 2xx itself (nua's auto-ACK is off
 * there), carrying the answer when it has one. */
void
td_call_ack_b (TdLeg *b, const char *sdp)
{
  td_signal_ack (b->signal, b->nh, TAG_IF (sdp, SIPTAG_CONTENT_TYPE_STR ("application/sdp")),
           TAG_IF (sdp, SIPTAG_PAYLOAD_STR (sdp)), TAG_END ());
}

/* End an established call from tandem's side or after one side's BYE. */
static void
bye (TdLeg *leg)
{
  if (leg && leg->nh && leg->answered)
    td_signal_bye (leg->signal, leg->nh);
}

void
td_call_end (TdCall *call, const char *reason, TdLeg *gone)
{
  if (call->ended)
    return;
  call->ended = TRUE;
  call->hangup = TD_HANGUP_TANDEM;
  call->reason = reason;
  g_info ("call %s: ending it: %s", call->call_id, reason);
  td_call_cancel_branches (call, NULL);   /* if it ends before an answer */
  if (call->a != gone && !(call->a && call->a->stays))
    bye (call->a);
  if (call->bridged != gone && !(call->bridged && call->bridged->stays))
    bye (call->bridged);
}

/* ---- life cycle ------------------------------------------------------------ */

/* A caller's calls: from td_call_new until the call leaves `calls`, its
 * ending legs included (they still hold their media ports). The count is
 * changed in place: no key copied per call while the caller has calls. */
static void
count_caller (TdCallContext *ctx, const char *caller, int delta)
{
  guint *n = g_hash_table_lookup (ctx->callers, caller);

  if (!n) {
    n = g_new0 (guint, 1);
    g_hash_table_insert (ctx->callers, g_strdup (caller), n);
  }
  *n += delta;
  if (*n == 0)
    g_hash_table_remove (ctx->callers, caller);
}

guint
td_calls_count_caller (TdCallContext *ctx, const char *user)
{
  const guint *n = g_hash_table_lookup (ctx->callers, user);
  return n ? *n : 0;
}

TdCall *
td_call_new (TdCallContext *ctx, const char *call_id, const char *caller,
             const char *caller_display, const char *callee, guint max_forwards)
{
  TdCall *call = g_new0 (TdCall, 1);
  g_ref_count_init (&call->ref);
  call->id = ++ctx->next_call_id;
  call->ctx = ctx;
  call->call_id = g_strdup (call_id);
  call->segment = 1;
  call->caller = g_strdup (caller);
  call->caller_display = g_strdup (caller_display);
  call->callee = g_strdup (callee);
  call->dialed = g_strdup (callee);
  call->ring_timers = g_ptr_array_new_with_free_func (td_ring_timer_free);
  call->max_forwards = max_forwards;
  call->b_legs = g_ptr_array_new_with_free_func ((GDestroyNotify) td_leg_unref);
  call->started_us = g_get_real_time ();
  call->final_status = 500;
  call->hangup = TD_HANGUP_TANDEM;
  g_hash_table_add (ctx->calls, call);
  count_caller (ctx, call->caller, 1);
  return call;
}

static TdCall *
call_new (TdCallContext *ctx, const sip_t *sip, const TdUser *caller, const char *callee)
{
  return td_call_new (ctx, sip->sip_call_id->i_id, caller->name, caller->display_name, callee,
                      sip->sip_max_forwards ? sip->sip_max_forwards->mf_count - 1 : 69);
}

TdCall *
td_call_ref (TdCall *call)
{
  g_ref_count_inc (&call->ref);
  return call;
}

/* Each leg still pointing at the call forgets it: a plugin may keep a leg
 * alive (a reference) beyond its call. */
static void
release_leg (TdCall *call, TdLeg **slot)
{
  if (*slot && (*slot)->call == call)
    (*slot)->call = NULL;
  g_clear_pointer (slot, td_leg_unref);
}

void
td_call_unref (TdCall *call)
{
  if (!call || !g_ref_count_dec (&call->ref))
    return;
  td_call_stop_ring_timers (call);
  td_timer_clear (&call->rtp_timer);
  td_call_early_clear (call);
  release_leg (call, &call->a);
  release_leg (call, &call->origin);
  call->bridged = NULL;
  for (guint i = 0; i < call->b_legs->len; i++)
    if (((TdLeg *) g_ptr_array_index (call->b_legs, i))->call == call)
      ((TdLeg *) g_ptr_array_index (call->b_legs, i))->call = NULL;
  g_ptr_array_unref (call->b_legs);
  g_free (call->session);
  g_free (call->origin_headers);
  g_free (call->transferred_by);
  g_free (call->call_id);
  g_free (call->caller);
  g_free (call->caller_display);
  g_free (call->callee);
  g_free (call->dialed);
  g_free (call->branch_headers);
  g_ptr_array_unref (call->ring_timers);
  g_datalist_clear (&call->plugin_data);
  g_free (call);
}

void
td_call_set_dialog_allow (TdCallContext *ctx, nua_handle_t *nh)
{
  if (ctx->dialog_allow)
    td_signal_set_params (&ctx->signal, nh, SIPTAG_ALLOW_STR (ctx->dialog_allow), TAG_END ());
}

void
td_call_context_init (TdCallContext *ctx)
{
  ctx->timers = td_timers_new (NULL);
  ctx->calls = g_hash_table_new (NULL, NULL);
  ctx->callers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  ctx->legs = g_hash_table_new (g_int64_hash, g_int64_equal);
  ctx->loose_legs = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) td_leg_unref, NULL);
  td_rooms_init (ctx);
}

void
td_call_context_clear (TdCallContext *ctx)
{
  td_rooms_clear (ctx);
  g_clear_pointer (&ctx->loose_legs, g_hash_table_unref);
  g_clear_pointer (&ctx->calls, g_hash_table_unref);
  g_clear_pointer (&ctx->callers, g_hash_table_unref);
  g_clear_pointer (&ctx->legs, g_hash_table_unref);
  g_clear_pointer (&ctx->timers, td_timers_free);
}

const TdSdp *
td_call_branch_offer (const TdCall *call)
{
  if (call->a)
    return call->a->remote_sdp;
  return call->origin ? call->origin->remote_sdp : NULL;
}

void
td_call_write_cdr (TdCall *call, const char *default_reason)
{
  /* After a transfer, the segment's parties are the legs' users. */
  gboolean later = call->segment > 1;
  const char *caller = later && call->a && call->a->user ? call->a->user : call->caller;
  const char *callee = later && call->bridged && call->bridged->user ? call->bridged->user
                                                                    : call->dialed;
  TdCdrRecord rec = {
    .call_id = call->call_id, .caller = caller, .callee = callee,
    .started_us = call->started_us, .answered_us = call->answered_us,
    .ended_us = g_get_real_time (),
    .status = call->answered_us ? 200 : call->final_status,
    .hangup = call->hangup, .reason = call->reason ? call->reason : default_reason,
    .session = call->session, .segment = call->segment, .transferred_by = call->transferred_by,
  };
  td_cdr_write (call->ctx->cdr, &rec);
  g_info ("call %s %s → %s ended: %d, hung up by %s%s%s", call->call_id, caller,
          callee, rec.status, td_hangup_name (rec.hangup), rec.reason ? ", " : "",
          rec.reason ? rec.reason : "");
}

static gboolean
all_legs_gone (const TdCall *call)
{
  if (call->a && call->a->nh)
    return FALSE;
  for (guint i = 0; i < call->b_legs->len; i++)
    if (((TdLeg *) g_ptr_array_index (call->b_legs, i))->nh)
      return FALSE;
  return TRUE;
}

void
td_call_maybe_finish (TdCall *call)
{
  if (!all_legs_gone (call) || !g_hash_table_contains (call->ctx->calls, call))
    return;
  td_call_early_stop (call);
  if (call->dials_into)
    td_room_dial_ended (call->dials_into, call);
  td_call_run_hook (call, TD_HOOK_CALL_ENDED, NULL, NULL,
                    call->answered_us ? 200 : call->final_status, NULL);
  if (!call->segment_written)
    td_call_write_cdr (call, NULL);
  g_hash_table_remove (call->ctx->calls, call);
  count_caller (call->ctx, call->caller, -1);
  td_call_unref (call);
}

/* ---- the B side: branches ----------------------------------------------------- */

/* The transport of a request, by its top Via: "udp", "tcp", "tls"... */
static const char *
transport_of (const sip_t *sip)
{
  const char *proto = sip->sip_via ? sip->sip_via->v_protocol : "SIP/2.0/UDP";
  const char *slash = strrchr (proto, '/');
  return slash ? slash + 1 : proto;
}

/* The transport the request came over, as its top Via names it (what the
 * registrar records as a binding's source too). */
static gboolean
came_over_tls (const sip_t *sip)
{
  return g_ascii_strcasecmp (transport_of (sip), "TLS") == 0;
}

/* tandem's Contact on a new dialog whose endpoint is reached over
 * `transport` ("udp", "tcp", "tls"), or NULL for nua's own. With a TLS
 * listener nua writes sips: ones, even toward UDP phones (measured), and
 * baresip ends such a dialog ("Function not implemented"): tandem names its
 * own, sip: with the transport, as RFC 3261 §12.1.1 allows outside a sips:
 * dialog. */
static char *
dialog_contact (const TdConfig *c, const char *transport)
{
  gboolean tls = g_ascii_strcasecmp (transport, "tls") == 0;
  const char *host = tls ? c->tls_listen_host : c->listen_host;
  const char *open = strchr (host, ':') ? "[" : "", *close = *open ? "]" : "";

  if (!c->tls_listen_port)
    return NULL;
  if (g_ascii_strcasecmp (transport, "udp") == 0)
    return g_strdup_printf ("<sip:%s%s%s:%u>", open, host, close, c->listen_port);
  return g_strdup_printf ("<sip:%s%s%s:%u;transport=%s>", open, host, close,
                          tls ? c->tls_listen_port : c->listen_port, tls ? "tls" : "tcp");
}

/* "udp", "tcp" or "tls": how a binding's REGISTER came. */
static const char *
binding_transport (const TdBinding *binding)
{
  if (g_str_has_prefix (binding->source, "tcp/"))
    return "tcp";
  return g_str_has_prefix (binding->source, "tls/") ? "tls" : "udp";
}

/* Where a binding is reached: the address its REGISTER came from (NAT), as an
 * outbound proxy for the branch; the Request-URI stays the contact. Not
 * for a contact that asks for TLS (sips:, transport=tls) registered over
 * something else: that flow would carry the call in clear (measured: a
 * sips: call went over UDP); nua dials the contact over TLS instead. */
static char *
route_of (const TdBinding *binding)
{
  const char *slash = strchr (binding->source, '/');
  g_autofree char *transport = NULL;
  if (!slash || g_str_has_suffix (binding->source, "/unknown"))
    return NULL;
  transport = g_strndup (binding->source, slash - binding->source);
  if (td_binding_is_secure (binding) && strcmp (transport, "tls") != 0)
    return NULL;
  return g_strdup_printf ("sip:%s;transport=%s", slash + 1, transport);
}

/* session_expires: the Session-Expires to ask for (a retry after a 422), or 0
 * for the configured one. */
static gboolean
start_branch (TdCall *call, const TdBinding *binding, guint session_expires)
{
  TdCallContext *ctx = call->ctx;
  g_autofree char *from = NULL, *to = NULL, *proxy = route_of (binding);
  g_autofree char *mf = g_strdup_printf ("%u", call->max_forwards);
  g_autoptr (GError) error = NULL;
  nua_handle_t *nh;
  TdLeg *b;
  const char *offer;

  from = call->caller_display
           ? g_strdup_printf ("\"%s\" <sip:%s@%s>", call->caller_display, call->caller,
                              ctx->config->domain)
           : g_strdup_printf ("<sip:%s@%s>", call->caller, ctx->config->domain);
  to = g_strdup_printf ("<sip:%s@%s>", call->callee, ctx->config->domain);
  nh = td_signal_handle (&ctx->signal, SIPTAG_FROM_STR (from), SIPTAG_TO_STR (to),
                   TAG_IF (proxy, NUTAG_PROXY (proxy)),
                   TAG_IF (call->late_offer, NUTAG_AUTOACK (0)), TAG_END ());
  /* nua_handle()'s tags are for its requests; the dialog's Allow is a
   * handle parameter. */
  td_call_set_dialog_allow (ctx, nh);
  b = td_leg_new (call, &ctx->signal, TD_LEG_B, nh);
  td_leg_register (b, ctx);
  b->user = g_strdup (call->callee);
  b->target = g_strdup (binding->contact);
  b->source = g_strdup (binding->source);
  if (ctx->config->tls_listen_port && g_ascii_strncasecmp (binding->contact, "sips:", 5) != 0)
    b->contact = dialog_contact (ctx->config, td_binding_is_secure (binding) ? "tls"
                                 : binding_transport (binding));
  b->session_expires = session_expires;
  td_leg_set_signalling_source (b, binding->source);
  g_ptr_array_add (call->b_legs, b);
  if (call->late_offer) {
    td_signal_invite (&ctx->signal, nh, NUTAG_URL (binding->contact),
                TAG_IF (proxy, NUTAG_PROXY (proxy)), SIPTAG_MAX_FORWARDS_STR (mf),
                TAG_IF (b->contact, SIPTAG_CONTACT_STR (b->contact)),
                TAG_IF (call->origin_headers, SIPTAG_HEADER_STR (call->origin_headers)),
                TAG_IF (call->branch_headers, SIPTAG_HEADER_STR (call->branch_headers)),
                TAG_IF (session_expires, NUTAG_SESSION_TIMER (session_expires)),
                TAG_IF (session_expires, NUTAG_MIN_SE (session_expires)), TAG_END ());
    return TRUE;
  }
  if (!td_leg_ensure_ports (b, ctx->relay, td_call_branch_offer (call), &error)) {
    g_warning ("call %s: %s", call->call_id, error->message);
    /* Nothing was sent on this handle, so nua will never report it ended:
     * drop it (and the ports it got) now, or the call would never finish. */
    td_signal_bind (&ctx->signal, b->nh, NULL);
    td_signal_destroy (&ctx->signal, b->nh);
    b->nh = NULL;
    g_ptr_array_set_size (b->ports, 0);
    b->final = TRUE;
    b->status = 503;
    return FALSE;
  }
  offer = td_leg_local_sdp (b, td_call_branch_offer (call), td_call_media_address (call));
  /* The proxy again in the INVITE's own tags: on the handle alone nua
   * dials the Contact for a TLS flow (measured, notes-12 §1.6). */
  td_signal_invite (&ctx->signal, nh, NUTAG_URL (binding->contact),
              TAG_IF (proxy, NUTAG_PROXY (proxy)), SIPTAG_MAX_FORWARDS_STR (mf),
              TAG_IF (b->contact, SIPTAG_CONTACT_STR (b->contact)),
              TAG_IF (call->origin_headers, SIPTAG_HEADER_STR (call->origin_headers)),
              TAG_IF (call->branch_headers, SIPTAG_HEADER_STR (call->branch_headers)),
              SIPTAG_CONTENT_TYPE_STR ("application/sdp"),
              SIPTAG_PAYLOAD_STR (offer),
              TAG_IF (session_expires, NUTAG_SESSION_TIMER (session_expires)),
              TAG_IF (session_expires, NUTAG_MIN_SE (session_expires)),
              TAG_END ());
  g_debug ("call %s: branch to %s%s%s", call->call_id, binding->contact,
           proxy ? " via " : "", proxy ? proxy : "");
  return TRUE;
}

guint
td_call_start_branches (TdCall *call, const TdRoute *route)
{
  guint started = 0;
  for (guint i = 0; i < route->targets->len; i++)
    started += start_branch (call, g_ptr_array_index (route->targets, i), 0);
  return started;
}

/* RFC 3261 §16.7: a 6xx beats everything, else the lowest class wins. */
static int
best_failure (const TdCall *call)
{
  int best = 0;
  for (guint i = 0; i < call->b_legs->len; i++) {
    const TdLeg *b = g_ptr_array_index (call->b_legs, i);
    int s = b->abandoned || b->cancelled ? 0 : b->status;
    if (s >= 600 && s < 700)
      return s;
    if (s >= 300 && (!best || s / 100 < best / 100))
      best = s;
  }
  return best ? best : 480;
}

static gboolean
all_branches_final (const TdCall *call)
{
  for (guint i = 0; i < call->b_legs->len; i++) {
    const TdLeg *b = g_ptr_array_index (call->b_legs, i);
    if (!b->final && !b->abandoned)
      return FALSE;
  }
  return TRUE;
}

static void
b_progress (TdCall *call, TdLeg *b, int status, const char *phrase, const sip_t *sip)
{
  TdSdp *sdp;

  if (status == 100 || td_call_caller_final (call) || call->ended || b->abandoned)
    return;
  /* An originated call rings for a party still talking in another call:
   * nothing to relay until it is answered (the transfer target's early
   * media is not heard). */
  if (!call->a)
    return;
  /* In a late-offer call an SDP here would be B's offer, which only the
   * caller's ACK can answer: relay the progress without it. */
  sdp = !call->late_offer && td_call_has_sdp (sip) ? td_call_parse_sdp (call, b, sip) : NULL;
  /* Tandem answered the caller itself and plays it a tune. */
  if (td_call_early_progress (call, b, sdp))
    return;
  if (!sdp) {
    td_call_respond_a (call, status, td_call_phrase (status), NULL);
    return;
  }
  /* Early media (a colour ringback, an announcement): bridge this branch now. */
  td_leg_set_remote_sdp (b, sdp);
  td_leg_connect_media (call->a, b);
  td_call_respond_a (call, status, td_call_phrase (status),
             td_leg_local_sdp (call->a, b->remote_sdp, td_call_media_address (call)));
}

static void
bridge_answered (TdCall *call, TdLeg *b, const char *sdp_for_a)
{
  call->bridged = b;
  td_call_stop_ring_timers (call);
  td_call_cancel_branches (call, b);
  td_call_respond_a (call, SIP_200_OK, sdp_for_a);
  if (call->a) {
    td_leg_connect_media (call->a, b);
    td_call_early_answered (call, b);
    call->a->answered = TRUE;
    td_call_arm_refresh (call, call->a);
  }
  td_call_arm_refresh (call, b);
  call->answered_us = g_get_real_time ();
  g_info ("call %s %s → %s answered by %s", call->call_id, call->caller, call->callee,
          b->target);
  td_call_run_hook (call, TD_HOOK_CALL_ANSWERED, b, NULL, 0, NULL);
  if (call->dials_into)
    td_room_dial_answered (call->dials_into, call, b);
}

/* B's 200 carries the offer: allocate the caller's ports now and pass it on;
 * the caller's ACK brings the answer (a_acked). */
static void
b_answered_late_offer (TdCall *call, TdLeg *b, TdSdp *sdp)
{
  g_autoptr (GError) error = NULL;

  if (!sdp || !td_leg_ensure_ports (call->a, call->ctx->relay, sdp, &error) ||
      !td_leg_ensure_ports (b, call->ctx->relay, sdp, &error)) {
    g_info ("call %s: late offer: %s", call->call_id,
            error ? error->message : "the 200 carries no usable SDP offer");
    td_sdp_free (sdp);
    td_call_ack_b (b, NULL);
    bye (b);
    call->reason = error ? "no media ports" : "no usable offer in the answer";
    if (error)
      td_call_respond_a (call, SIP_503_SERVICE_UNAVAILABLE, NULL);
    else
      td_call_respond_a (call, SIP_502_BAD_GATEWAY, NULL);
    td_call_cancel_branches (call, NULL);
    return;
  }
  td_leg_set_remote_sdp (b, sdp);
  bridge_answered (call, b, td_leg_local_sdp (call->a, sdp, td_call_media_address (call)));
}

/* The caller's ACK of a late-offer call carries the answer for B. */
static void
a_acked (TdCall *call, const sip_t *sip)
{
  TdLeg *b = call->bridged;
  TdSdp *sdp;

  if (!call->late_offer || !b || !b->nh || b->acked)
    return;
  b->acked = TRUE;
  if (td_call_has_sdp (sip) && (sdp = td_call_parse_sdp (call, call->a, sip))) {
    if (b->remote_sdp && !td_sdp_answer_matches_offer (b->remote_sdp, sdp)) {
      /* An answer cannot be refused (RFC 3264 §6): B's 2xx still needs its
       * ACK, and the call cannot go on. */
      g_info ("call %s: the answer in the caller's ACK shares no codec with the offer",
              call->call_id);
      td_sdp_free (sdp);
      td_call_ack_b (b, NULL);
      td_call_end (call, "SDP answer in ACK shares no codec with the offer", NULL);
      return;
    }
    td_leg_set_remote_sdp (call->a, sdp);
    td_leg_connect_media (call->a, b);
    td_call_ack_b (b, td_leg_local_sdp (b, sdp, td_call_media_address (call)));
    return;
  }
  g_info ("call %s: the caller's ACK carries no answer; ending the call", call->call_id);
  td_call_ack_b (b, NULL);
  call->ended = TRUE;
  call->reason = "no SDP answer in ACK";
  bye (call->a);
  bye (b);
}

static void
b_answered (TdCall *call, TdLeg *b, const sip_t *sip)
{
  TdSdp *sdp = td_call_has_sdp (sip) ? td_call_parse_sdp (call, b, sip) : NULL;

  b->answered = TRUE;
  td_call_learn_allow (b, sip, TRUE);
  td_call_session_from_response (call, b, sip);
  if (call->bridged || td_call_caller_final (call) || call->ended || b->abandoned) {
    /* Another branch won, or the caller gave up: ACK this late 200, then end it. */
    td_sdp_free (sdp);
    if (call->late_offer)
      td_call_ack_b (b, NULL);
    bye (b);
    return;
  }
  if (call->late_offer) {
    b_answered_late_offer (call, b, sdp);
    return;
  }
  if (sdp)
    td_leg_set_remote_sdp (b, sdp);
  if (!b->remote_sdp || !td_sdp_answer_matches_offer (td_call_branch_offer (call), b->remote_sdp)) {
    /* td_call_parse_sdp said why an SDP it refused was unusable */
    gboolean refused = td_call_has_sdp (sip) && !sdp;
    g_info ("call %s: %s", call->call_id,
            refused ? "the answer is unusable" : "answer shares no codec with the offer");
    bye (b);
    call->reason = refused ? "unusable answer" : "no common codec";
    td_call_respond_a (call, SIP_488_NOT_ACCEPTABLE, NULL);
    td_call_cancel_branches (call, NULL);
    return;
  }
  /* After tandem's own 183 the caller's session is that answer (RFC 3261
   * §13.2.1): its 200 repeats it. */
  if (td_call_early_answer_for (call))
    bridge_answered (call, b, td_call_early_answer_for (call));
  else
    bridge_answered (call, b, call->a ? td_leg_local_sdp (call->a, b->remote_sdp,
                                                        td_call_media_address (call))
                                      : NULL);
}

static void
b_failed (TdCall *call, TdLeg *b, int status)
{
  b->status = status;
  if (b->abandoned || td_call_caller_final (call) || call->bridged)
    return;
  /* RFC 3261 §16.7: a 6xx (Decline, Busy Everywhere) ends every branch now. */
  if (status >= 600 && status < 700)
    td_call_cancel_branches (call, NULL);
  else if (!all_branches_final (call))
    return;
  call->hangup = TD_HANGUP_CALLEE;
  td_call_fail (call, td_call_status_for_caller (best_failure (call)), NULL);
}

int
td_call_status_for_caller (int status)
{
  /* A B-leg's failure is told to the caller as the B2BUA's own: nua's
   * internal codes (≥ 700) and a 503 (RFC 3261 §16.7) become 500; a redirect
   * or the callee's own challenge means nothing to the caller: 480. A 422
   * refused tandem's session interval, not the caller's, and one without
   * Min-SE breaks RFC 4028 §6: 500 too. */
  if (status >= 700 || status == 503 || status == 422)
    return 500;
  if ((status >= 300 && status < 400) || status == 401 || status == 407)
    return 480;
  return status;
}

void
td_call_fail (TdCall *call, int status, const char *reason)
{
  if (td_call_caller_final (call) || call->bridged || call->ended)
    return;
  td_call_stop_ring_timers (call);
  /* Forwarding on busy / no answer takes it from here if configured. */
  if (td_call_run_hook (call, TD_HOOK_CALL_FAILED, NULL, NULL, status, reason) == TD_HOOK_HANDLED)
    return;
  if (reason)
    call->reason = reason;
  td_call_cancel_branches (call, NULL);
  td_call_respond_a (call, status, td_call_phrase (status), NULL);
}

static void leg_terminated (TdCall *call, TdLeg *leg, int status);

/* The callee refused the session interval tandem asked for as too small
 * (422 with its Min-SE). nua would retry by itself, but tandem turns nua's
 * retries off (they would also follow a callee's redirect, td-daemon.c), so
 * tandem retries here as RFC 4028 §7.4 has a UAC do: the same contact once
 * more, asking for the callee's Min-SE, as a new branch that takes this
 * one's place. Once only, so that a callee raising its Min-SE every time
 * cannot keep tandem calling it. TRUE if the successor is on its way. */
static gboolean
b_retry_session_interval (TdCall *call, TdLeg *b, const sip_t *sip)
{
  guint asked = call->ctx->config->session_timer;
  guint min_se = sip && sip->sip_min_se ? (guint) sip->sip_min_se->min_delta : 0;
  TdBinding binding = { .contact = b->target, .source = b->source };

  if (b->session_expires || !asked || min_se <= asked || !b->source || !b->target ||
      b->abandoned || b->cancelled || td_call_caller_final (call) || call->bridged ||
      call->ended)
    return FALSE;
  g_info ("call %s: %s wants a session interval of at least %u s (422): calling it again",
          call->call_id, b->target, min_se);
  b->abandoned = TRUE;   /* its successor carries the branch */
  if (start_branch (call, &binding, min_se))
    return TRUE;
  b->abandoned = FALSE;  /* the successor failed at once: this branch's 422 counts */
  return FALSE;
}

static void
b_invite_response (TdCall *call, TdLeg *b, int status, const char *phrase, const sip_t *sip)
{
  if (status < 200) {
    if (status > 100)
      td_call_run_hook (call, TD_HOOK_LEG_RINGING, b, NULL, status, NULL);
    b_progress (call, b, status, phrase, sip);
    return;
  }
  td_call_run_hook (call, status < 300 ? TD_HOOK_LEG_ANSWERED : TD_HOOK_LEG_FAILED, b, NULL,
                    status, NULL);
  b->final = TRUE;
  b->status = status;
  if (status < 300)
    b_answered (call, b, sip);
  else if (!(status == 422 && b_retry_session_interval (call, b, sip)))
    b_failed (call, b, status);
  /* With nua's retries on, it keeps the session after a 401 or 407 for
   * nua_authenticate(), which tandem never calls (it has no credentials of
   * the callee's), and no terminated state follows. With them off
   * (td-daemon.c) nua ends it like any failure (measured: the status-mapped
   * flow test passes without this); the branch still ends here, so that its
   * end never depends on that setting. */
  if ((status == 401 || status == 407) && b->nh)
    leg_terminated (call, b, status);
}

/* ---- the end of a call ------------------------------------------------------------ */

static void
bye_received (TdCall *call, TdLeg *leg)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  /* A branch that lost (or was forwarded away) hanging up ends only itself. */
  if (leg != call->a && leg != call->bridged)
    return;
  if (!call->ended) {
    call->ended = TRUE;
    call->hangup = leg == call->a ? TD_HANGUP_CALLER : TD_HANGUP_CALLEE;
  }
  if (peer && peer->stays)
    g_info ("call %s: the %s-leg stays up for its transfer", call->call_id, td_leg_name (peer));
  else
    bye (peer);
}

static void
cancel_received (TdCall *call)
{
  /* nua has already answered 200 to the CANCEL and 487 to the INVITE. */
  if (call->ended)
    return;
  call->ended = TRUE;
  call->a->final = TRUE;
  call->final_status = 487;
  call->hangup = TD_HANGUP_CALLER;
  td_call_stop_ring_timers (call);
  td_call_cancel_branches (call, NULL);
}

/* A leg's dialog is over (nua reports it terminated): forget its handle; if it
 * ended on its own (timeouts, transport errors), end the other side too. */
static void
leg_terminated (TdCall *call, TdLeg *leg, int status)
{
  /* A BYE or CANCEL from an endpoint has set `ended` already: anything else
   * that ends the A-leg or the bridged B-leg is the SIP stack's doing (no
   * ACK, session timer expiry, transport error), so tandem ends the other side. */
  if (!call->ended && (leg == call->a || leg == call->bridged)) {
    g_info ("call %s: %s-leg dialog ended by the stack (%d)", call->call_id,
            td_leg_name (leg), status);
    td_call_end (call, leg == call->a ? "A-leg dialog failed (no ACK, timeout or transport error)"
                                      : "B-leg dialog failed (timeout or transport error)", leg);
  }
  td_signal_bind (leg->signal, leg->nh, NULL);
  td_signal_destroy (leg->signal, leg->nh);
  leg->nh = NULL;
  if (call->room && leg == call->a)
    td_room_member_gone (call->room, call);
  td_leg_release_ports (leg, call->call_id);
  td_call_run_hook (call, TD_HOOK_LEG_ENDED, leg, NULL, status, NULL);
}

/* ---- entry points ------------------------------------------------------------------ */

void
td_call_leg_event (TdLeg *leg, nua_event_t event, int status, const char *phrase,
                   const sip_t *sip, tagi_t tags[])
{
  /* Hooks may move legs and end calls: both stay valid to the end. */
  g_autoptr (TdLeg) held = td_leg_ref (leg);
  g_autoptr (TdCall) call = leg->call ? td_call_ref (leg->call) : NULL;
  int state = nua_callstate_init;

  if (!call) {
    td_call_loose_leg_event (leg->ctx, leg, event, sip, tags);
    return;
  }
  switch (event) {
  case nua_r_invite:
    if (leg->role == TD_LEG_B && !leg->answered && !leg->final)
      b_invite_response (call, leg, status, phrase, sip);
    else
      td_call_offer_answer_done (call, leg, status, sip);
    break;
  case nua_r_update:
    /* A relayed offer never goes as an UPDATE beside the refresh UPDATE. */
    if (leg->update_refresh_out)
      td_call_refresh_done (call, leg, status, sip, TRUE);
    else
      td_call_offer_answer_done (call, leg, status, sip);
    break;
  case nua_i_invite:
    td_call_offer_received (call, leg, sip, FALSE);
    break;
  case nua_i_update:
    td_call_offer_received (call, leg, sip, TRUE);
    break;
  case nua_i_cancel:
    if (leg == call->a && !call->a->final && leg->role == TD_LEG_A)
      cancel_received (call);
    else
      td_call_offer_cancelled (call, leg);   /* a re-INVITE was cancelled */
    break;
  case nua_i_ack:
    /* The caller's first ACK of a late-offer call answers B's offer; any
     * later one belongs to a re-INVITE. */
    if (leg == call->a && call->late_offer && call->bridged && !call->bridged->acked)
      a_acked (call, sip);
    else
      td_call_ack_received (call, leg, sip);
    td_call_early_acked (call, leg);
    break;
  case nua_i_bye:
    bye_received (call, leg);
    break;
  case nua_i_refer:
    td_call_refer_received (call, leg, sip, tags);
    break;
  case nua_i_state:
    tl_gets (tags, NUTAG_CALLSTATE_REF (state), TAG_END ());
    if (state == nua_callstate_terminated && leg->nh)
      leg_terminated (call, leg, status);
    break;
  default:
    break;
  }
  td_call_maybe_finish (call);
}

static void
on_no_answer (gpointer data)
{
  TdCall *call = data;
  call->no_answer_timer = NULL;
  if (td_call_caller_final (call) || call->ended)
    return;
  g_info ("call %s: no answer within %u s", call->call_id,
          call->ctx->config->no_answer_timeout);
  call->hangup = TD_HANGUP_TANDEM;
  td_call_fail (call, 480, "no answer");
}

/* Answer an INVITE we will not take on, and drop its handle. */
static void
reject (TdCallContext *ctx, nua_handle_t *nh, int status, const char *phrase)
{
  td_signal_respond (&ctx->signal, nh, TD_WITH_CURRENT, NULL, status, phrase, TAG_END ());
  td_signal_destroy (&ctx->signal, nh);
}

/* Authenticate and route; NULL after answering. */
static TdRoute *
admit (TdCallContext *ctx, nua_handle_t *nh, const sip_t *sip, const TdUser **caller)
{
  const url_t *ruri = sip->sip_request->rq_url;
  TdRoute *route;

  if (!(*caller = td_sipauth_check (ctx->auth, ctx->config, TD_SIPAUTH_PROXY, ctx->nua, nh, sip))) {
    td_signal_destroy (&ctx->signal, nh);
    return NULL;
  }
  if (td_calls_count_caller (ctx, (*caller)->name) >= td_config_max_calls (ctx->config, *caller)) {
    /* 486, not 503: the server is fine, only this caller's lines are full. */
    g_info ("INVITE from %s: %u calls under way already", (*caller)->name,
            td_config_max_calls (ctx->config, *caller));
    reject (ctx, nh, 486, "Busy Here (too many calls)");
    return NULL;
  }
  if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0) {
    reject (ctx, nh, SIP_483_TOO_MANY_HOPS);
    return NULL;
  }
  /* A sips: request must have come over TLS (RFC 3261 §26.2.2); Sofia
   * takes it over anything. */
  if (ruri->url_type == url_sips && !came_over_tls (sip)) {
    reject (ctx, nh, 416, "Unsupported URI Scheme (sips: needs TLS)");
    return NULL;
  }
  route = td_router_route (ctx->config, ctx->location, ruri->url_user, ruri->url_host,
                           g_get_real_time () / G_USEC_PER_SEC);
  if (ruri->url_type == url_sips)
    td_route_keep_secure (route);
  /* A user a plugin serves itself (a conference factory): no phone to
   * ring, the routing hook takes it. */
  if (route->status == 404 && ctx->plugins && ruri->url_user &&
      td_router_serves (ctx->config, ruri->url_host) &&
      td_plugin_host_is_service (ctx->plugins, ruri->url_user)) {
    route->status = 0;
    route->phrase = NULL;
  }
  if (route->status) {
    g_info ("INVITE %s → %s: %d %s", (*caller)->name, ruri->url_user ? ruri->url_user : "?",
            route->status, route->phrase);
    reject (ctx, nh, route->status, route->phrase);
    td_route_free (route);
    return NULL;
  }
  return route;
}

void
td_call_incoming (TdCallContext *ctx, nua_handle_t *nh, const sip_t *sip)
{
  g_autoptr (TdRoute) route = NULL;
  g_autoptr (GError) error = NULL;
  const TdUser *caller = NULL;
  TdSdp *sdp;

  if (!sip || !sip->sip_request || !sip->sip_call_id) {
    reject (ctx, nh, SIP_400_BAD_REQUEST);
    return;
  }
  if (sip->sip_replaces) {
    /* RFC 3891: it takes an existing leg's place, if its user may. */
    if (!(caller = td_sipauth_check (ctx->auth, ctx->config, TD_SIPAUTH_PROXY, ctx->nua, nh, sip)))
      td_signal_destroy (&ctx->signal, nh);
    else
      td_call_incoming_replaces (ctx, nh, sip, caller);
    return;
  }
  if (!(route = admit (ctx, nh, sip, &caller)))
    return;
  if (td_call_refuse_body (&ctx->signal, nh, sip)) {
    td_signal_destroy (&ctx->signal, nh);
    return;
  }
  if (!td_call_has_sdp (sip)) {
    td_call_start (ctx, nh, sip, caller, route, NULL);
    return;
  }
  if (!(sdp = sdp_of (sip, &error))) {
    g_info ("INVITE from %s: bad SDP: %s", caller->name, error->message);
    if (g_error_matches (error, TD_SDP_ERROR, TD_SDP_ERROR_TOO_LARGE))
      reject (ctx, nh, 488, "Not Acceptable Here (too many media streams)");   /* RFC 3261 §21.4.26 */
    else
      reject (ctx, nh, 400, "Bad Session Description");
    return;
  }
  td_call_start (ctx, nh, sip, caller, route, sdp);
}

/* sdp: the caller's offer, or NULL for a late-offer call. */
void
td_call_start (TdCallContext *ctx, nua_handle_t *nh, const sip_t *sip, const TdUser *caller,
            const TdRoute *route, TdSdp *sdp)
{
  g_autoptr (GError) error = NULL;
  TdCall *call = call_new (ctx, sip, caller, route->callee);
  guint started = 0;

  call->a = td_leg_new (call, &ctx->signal, TD_LEG_A, nh);
  td_leg_register (call->a, ctx);
  td_call_set_dialog_allow (ctx, nh);
  call->a->user = g_strdup (caller->name);
  call->a->display = g_strdup (caller->display_name);
  td_leg_set_signalling_from_request (call->a, ctx->nua);
  if (sip->sip_request->rq_url->url_type != url_sips)
    call->a->contact = dialog_contact (ctx->config, transport_of (sip));
  td_call_learn_allow (call->a, sip, TRUE);
  td_call_session_from_request (call, call->a, sip);
  call->late_offer = sdp == NULL;
  if (sdp && !td_leg_sdp_acceptable (call->a, sdp, &error)) {
    g_info ("call %s: %s's offer refused: %s", call->call_id, caller->name, error->message);
    td_sdp_free (sdp);
    call->reason = "SRTP policy";
    td_call_respond_a (call, SIP_488_NOT_ACCEPTABLE, NULL);
    return;
  }
  if (sdp && !td_leg_ensure_ports (call->a, ctx->relay, sdp, &error)) {
    g_warning ("call %s: %s", call->call_id, error->message);
    td_sdp_free (sdp);
    call->reason = "no media ports";
    td_call_respond_a (call, SIP_503_SERVICE_UNAVAILABLE, NULL);
    return;
  }
  if (sdp)
    td_leg_set_remote_sdp (call->a, sdp);
  g_info ("call %s %s → %s: %u branch(es)%s", call->call_id, caller->name, route->callee,
          route->targets->len, call->late_offer ? ", late offer" : "");
  if (td_call_run_hook (call, TD_HOOK_CALL_ROUTING, NULL, NULL, 0, NULL) == TD_HOOK_HANDLED) {
    /* A plugin forwarded or rejected the call; if it did neither, say so. */
    if (!td_call_caller_final (call) && call->b_legs->len == 0)
      td_call_respond_a (call, SIP_500_INTERNAL_SERVER_ERROR, NULL);
    return;
  }
  if (route->targets->len == 0) {
    td_call_respond_a (call, SIP_404_NOT_FOUND, NULL);   /* a service nobody took */
    return;
  }
  started = td_call_start_branches (call, route);
  if (!started) {
    call->reason = "no media ports";
    td_call_respond_a (call, SIP_503_SERVICE_UNAVAILABLE, NULL);
    return;
  }
  td_call_start_ring_timer (call);
  td_call_run_hook (call, TD_HOOK_CALL_RINGING, NULL, NULL, 0, NULL);
}

void
td_call_start_ring_timer (TdCall *call)
{
  td_timer_clear (&call->no_answer_timer);
  call->no_answer_timer = td_timers_add (call->ctx->timers,
                                         call->ctx->config->no_answer_timeout * 1000,
                                         on_no_answer, call);
}

TdHookResult
td_call_run_hook (TdCall *call, TdHook hook, TdLeg *leg, const TdSdp *sdp, int status,
                  const char *reason)
{
  TdHookArgs args = { .hook = hook, .call = call, .leg = leg, .sdp = sdp,
                      .status = status, .reason = reason };
  if (!call->ctx->plugins)
    return TD_HOOK_CONTINUE;
  return td_plugin_host_run (call->ctx->plugins, &args);
}

/* ---- timers and shutdown -------------------------------------------------------------- */

void
td_calls_hangup_all (TdCallContext *ctx)
{
  GHashTableIter it;
  TdCall *call;

  g_hash_table_iter_init (&it, ctx->calls);
  while (g_hash_table_iter_next (&it, (gpointer *) &call, NULL)) {
    call->ended = TRUE;
    call->hangup = TD_HANGUP_TANDEM;
    call->reason = "shutdown";
    td_call_respond_a (call, SIP_503_SERVICE_UNAVAILABLE, NULL);
    td_call_cancel_branches (call, NULL);
    bye (call->a);
    bye (call->bridged);
  }
}

void
td_calls_free_all (TdCallContext *ctx)
{
  GHashTableIter it;
  TdCall *call;
  TdLeg *leg;

  g_hash_table_iter_init (&it, ctx->calls);
  while (g_hash_table_iter_next (&it, (gpointer *) &call, NULL)) {
    if (!call->segment_written)
      td_call_write_cdr (call, "shutdown");
    g_hash_table_iter_remove (&it);
    td_call_unref (call);
  }
  /* Legs a plugin still holds (a transfer under way) outlive the stack:
   * their handles go with it now, not after it. */
  g_hash_table_remove_all (ctx->loose_legs);
  g_hash_table_iter_init (&it, ctx->legs);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &leg))
    if (leg->nh) {
      td_signal_bind (leg->signal, leg->nh, NULL);
      td_signal_destroy (leg->signal, leg->nh);
      leg->nh = NULL;
    }
}
