/* td-call-list: the live calls for operators (td-call-list.h). */
#define G_LOG_DOMAIN "tandem"

#include "td-call-list.h"

#include <gio/gio.h>
#include <stdlib.h>

#include "td-call-private.h"
#include "td-room.h"

const char *
td_party_state_name (TdPartyState state)
{
  switch (state) {
  case TD_PARTY_RINGING: return "ringing";
  case TD_PARTY_TALKING: return "talking";
  case TD_PARTY_HELD: return "held";
  }
  return "unknown";
}

static void
party_clear (gpointer p)
{
  TdPartyInfo *party = p;
  g_free (party->leg_id);
  g_free (party->user);
}

void
td_call_info_free (TdCallInfo *info)
{
  if (!info)
    return;
  g_free (info->id);
  g_free (info->room);
  g_array_unref (info->parties);
  g_free (info);
}

char *
td_call_operator_id (guint64 call_id)
{
  return g_strdup_printf ("c%" G_GUINT64_FORMAT, call_id);
}

char *
td_leg_operator_id (guint64 leg_id)
{
  return g_strdup_printf ("l%" G_GUINT64_FORMAT, leg_id);
}

static gboolean
sdp_holds (const TdSdp *sdp)
{
  if (!sdp)
    return FALSE;
  for (guint i = 0; i < td_sdp_n_media (sdp); i++)
    if (td_sdp_media_port (sdp, i) != 0 && td_sdp_media_is_hold (sdp, i))
      return TRUE;
  return FALSE;
}

static TdPartyState
party_state (const TdCall *call, TdLeg *leg)
{
  TdLeg *peer;

  if (!leg->answered)
    return TD_PARTY_RINGING;
  peer = td_call_peer_of (call, leg);
  if (sdp_holds (leg->remote_sdp) || (peer && sdp_holds (peer->remote_sdp)))
    return TD_PARTY_HELD;
  return TD_PARTY_TALKING;
}

/* A leg still takes part: its dialog lives and no CANCEL or forward left it. */
static gboolean
leg_in_call (const TdLeg *leg)
{
  return leg && leg->nh && !leg->cancelled && !leg->abandoned &&
         !(leg->final && !leg->answered);
}

static void
add_party (GArray *parties, const TdCall *call, TdLeg *leg)
{
  TdPartyInfo party = {
    .leg_id = td_leg_operator_id (leg->id),
    .user = g_strdup (leg->user),
    .state = party_state (call, leg),
  };
  g_array_append_val (parties, party);
}

static TdCallInfo *
call_info (const TdCall *call)
{
  TdCallInfo *info = g_new0 (TdCallInfo, 1);

  info->id = td_call_operator_id (call->id);
  info->room = call->room ? g_strdup (td_room_get_id (call->room)) : NULL;
  info->answered_us = call->answered_us;
  info->parties = g_array_new (FALSE, TRUE, sizeof (TdPartyInfo));
  g_array_set_clear_func (info->parties, party_clear);
  if (leg_in_call (call->a))
    add_party (info->parties, call, call->a);
  for (guint i = 0; i < call->b_legs->len; i++) {
    TdLeg *b = g_ptr_array_index (call->b_legs, i);
    /* Once answered, the call is its bridge: other branches are going. */
    if (leg_in_call (b) && (!call->bridged || b == call->bridged))
      add_party (info->parties, call, b);
  }
  return info;
}

static gint
by_id (gconstpointer a, gconstpointer b)
{
  const TdCall *x = *(TdCall *const *) a, *y = *(TdCall *const *) b;
  return x->id < y->id ? -1 : x->id > y->id;
}

GPtrArray *
td_calls_snapshot (TdCallContext *ctx)
{
  g_autoptr (GPtrArray) calls = g_ptr_array_new ();
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) td_call_info_free);
  GHashTableIter it;
  gpointer call;

  g_hash_table_iter_init (&it, ctx->calls);
  while (g_hash_table_iter_next (&it, &call, NULL))
    g_ptr_array_add (calls, call);
  g_ptr_array_sort (calls, by_id);
  for (guint i = 0; i < calls->len; i++) {
    const TdCall *c = g_ptr_array_index (calls, i);
    if (!c->ended)
      g_ptr_array_add (out, call_info (c));
  }
  return out;
}

/* "c7" → 7 with *kind 'c'; 0 if it is no operator id. */
static guint64
parse_operator_id (const char *id, char *kind)
{
  guint64 n = 0;

  if (!id || (id[0] != 'c' && id[0] != 'l') ||
      !g_ascii_string_to_unsigned (id + 1, 10, 1, G_MAXUINT64, &n, NULL))
    return 0;
  *kind = id[0];
  return n;
}

static TdCall *
find_call (TdCallContext *ctx, guint64 n)
{
  GHashTableIter it;
  TdCall *call;

  g_hash_table_iter_init (&it, ctx->calls);
  while (g_hash_table_iter_next (&it, (gpointer *) &call, NULL))
    if (call->id == n && !call->ended)
      return call;
  return NULL;
}

/* Every party goes. A caller still waiting for its final answer gets 480,
 * as when its callee's only branch ends without one (td_call_hangup
 * answers no caller: the branches' 487s come to an ended call). */
static void
hangup_call (TdCall *call)
{
  td_call_hangup (call, "operator");
  td_call_respond_a (call, 480, td_call_phrase (480), NULL);
}

/* The A-leg of a call that still rings has no dialog of its own to end:
 * the call ends, as if the caller had given up. */
static void
hangup_leg (TdLeg *leg)
{
  TdCall *call = leg->call;

  if (call && leg == call->a && !leg->answered)
    hangup_call (call);
  else
    td_leg_hangup (leg);
}

gboolean
td_calls_hangup_id (TdCallContext *ctx, const char *id, GError **error)
{
  char kind = 0;
  guint64 n = parse_operator_id (id, &kind);
  TdCall *call;
  TdLeg *leg;

  if (!n) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 "\"%s\" is no call or leg id (c<number> or l<number>, see calls)", id);
    return FALSE;
  }
  if (kind == 'c') {
    if (!(call = find_call (ctx, n))) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no live call %s", id);
      return FALSE;
    }
    g_message ("call %s: hung up by the operator", id);
    hangup_call (call);
    return TRUE;
  }
  leg = td_leg_lookup (ctx, n);
  if (!leg || !leg->call || leg->call->ended || !leg_in_call (leg)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no live leg %s", id);
    return FALSE;
  }
  g_message ("leg %s: hung up by the operator", id);
  hangup_leg (leg);
  return TRUE;
}

/* ---- what plugins' control commands find ------------------------------------------ */

char *
td_call_get_operator_id (const TdCall *call)
{
  return td_call_operator_id (call->id);
}

char *
td_leg_get_operator_id (const TdLeg *leg)
{
  return td_leg_operator_id (leg->id);
}

const char *
td_leg_get_state (const TdLeg *leg)
{
  if (!leg->call)
    return td_party_state_name (leg->answered ? TD_PARTY_TALKING : TD_PARTY_RINGING);
  return td_party_state_name (party_state (leg->call, (TdLeg *) leg));
}

TdCall *
td_plugin_host_find_call (TdPluginHost *host, const char *id, GError **error)
{
  TdCallContext *ctx = td_plugin_host_get_context (host);
  char kind = 0;
  guint64 n = parse_operator_id (id, &kind);
  TdCall *call = ctx && n && kind == 'c' ? find_call (ctx, n) : NULL;

  if (!call)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 n && kind == 'c' ? "no live call %s" : "\"%s\" is no call id (c<number>, see calls)",
                 id);
  return call;
}

TdLeg *
td_plugin_host_find_leg (TdPluginHost *host, const char *id, GError **error)
{
  TdCallContext *ctx = td_plugin_host_get_context (host);
  char kind = 0;
  guint64 n = parse_operator_id (id, &kind);
  TdLeg *leg = ctx && n && kind == 'l' ? td_leg_lookup (ctx, n) : NULL;

  if (!leg || !leg_in_call (leg)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 n && kind == 'l' ? "no live leg %s" : "\"%s\" is no leg id (l<number>, see calls)",
                 id);
    return NULL;
  }
  return leg;
}
