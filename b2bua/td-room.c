/* TdRoom: N parties, each hearing the sum of the others (td-room.h). */
#define G_LOG_DOMAIN "tandem-call"

#include "td-room.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <string.h>

struct _TdRoom {
  guint64 id;
  char *name;             /* "r3" */
  TdCallContext *ctx;
  TdRelayMix *mix;
  GPtrArray *members;     /* TdCall* (a reference each): one per party, its leg in `a` */
  GPtrArray *dialing;     /* TdCall* (a reference each): calls ringing someone into the room */
  gint64 created_us;      /* wall clock */
  gboolean collapsing;    /* its last members are leaving it: start nothing */
  guint most;             /* the most parties it has had at once */
};

/* What each member was told when it joined: the session its endpoint
 * believes it has with its far end, now the room (a member call's data). */
#define SESSION_KEY "td-room-session"

static void room_check (TdRoom *room);

/* ---- the table ------------------------------------------------------------------- */

static void
room_free (TdRoom *room)
{
  g_ptr_array_unref (room->members);
  g_ptr_array_unref (room->dialing);
  if (room->mix)
    td_relay_mix_free (room->mix);
  g_free (room->name);
  g_free (room);
}

void
td_rooms_init (TdCallContext *ctx)
{
  ctx->rooms = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) room_free);
}

void
td_rooms_clear (TdCallContext *ctx)
{
  g_clear_pointer (&ctx->rooms, g_hash_table_unref);
}

TdRoom *
td_rooms_lookup (TdCallContext *ctx, const char *id)
{
  return id && ctx->rooms ? g_hash_table_lookup (ctx->rooms, id) : NULL;
}

static TdRoom *
room_new (TdCallContext *ctx)
{
  TdRoom *room = g_new0 (TdRoom, 1);

  room->id = ++ctx->next_room_id;
  room->name = g_strdup_printf ("r%" G_GUINT64_FORMAT, room->id);
  room->ctx = ctx;
  room->mix = td_relay_mix_new (ctx->relay);
  room->members = g_ptr_array_new_with_free_func ((GDestroyNotify) td_call_unref);
  room->dialing = g_ptr_array_new_with_free_func ((GDestroyNotify) td_call_unref);
  room->created_us = g_get_real_time ();
  g_hash_table_insert (ctx->rooms, room->name, room);
  g_info ("room %s: new", room->name);
  return room;
}

/* ---- what plugins read ------------------------------------------------------------ */

const char *
td_room_get_id (const TdRoom *room)
{
  return room->name;
}

gint64
td_room_get_created (const TdRoom *room)
{
  return room->created_us;
}

GPtrArray *
td_room_get_legs (const TdRoom *room)
{
  GPtrArray *legs = g_ptr_array_new ();

  for (guint i = 0; i < room->members->len; i++) {
    TdCall *member = g_ptr_array_index (room->members, i);
    if (member->a && member->a->nh)
      g_ptr_array_add (legs, member->a);
  }
  return legs;
}

guint
td_room_n_parties (const TdRoom *room)
{
  return room->members->len;
}

guint
td_room_n_dialing (const TdRoom *room)
{
  return room->dialing->len;
}

TdLeg *
td_call_get_branch (const TdCall *call)
{
  if (call->bridged)
    return call->bridged;
  for (guint i = 0; i < call->b_legs->len; i++) {
    TdLeg *b = g_ptr_array_index (call->b_legs, i);
    if (b->nh && !b->final && !b->cancelled && !b->abandoned)
      return b;
  }
  return NULL;
}

TdRoom *
td_call_get_room (const TdCall *call)
{
  return call->room;
}

TdRoom *
td_plugin_host_find_room (TdPluginHost *host, const char *id)
{
  TdCallContext *ctx = td_plugin_host_get_context (host);
  return ctx ? td_rooms_lookup (ctx, id) : NULL;
}

static gint
by_id (gconstpointer a, gconstpointer b)
{
  const TdRoom *x = *(TdRoom *const *) a, *y = *(TdRoom *const *) b;
  return x->id < y->id ? -1 : x->id > y->id;
}

GPtrArray *
td_plugin_host_rooms (TdPluginHost *host)
{
  TdCallContext *ctx = td_plugin_host_get_context (host);
  GPtrArray *rooms = g_ptr_array_new ();
  GHashTableIter it;
  gpointer room;

  if (!ctx || !ctx->rooms)
    return rooms;
  g_hash_table_iter_init (&it, ctx->rooms);
  while (g_hash_table_iter_next (&it, NULL, &room))
    g_ptr_array_add (rooms, room);
  g_ptr_array_sort (rooms, by_id);
  return rooms;
}

/* ---- the media of a member -------------------------------------------------------- */

/* The member's endpoint speaks to the room: its SDP sends on stream 0 and
 * does not hold (a sendonly party has put the room on hold: whatever it
 * sends, its own music on hold, is not for the others). And it hears. */
static gboolean
endpoint_sends (const TdLeg *leg)
{
  if (!leg->remote_sdp || td_sdp_n_media (leg->remote_sdp) == 0)
    return FALSE;
  return td_sdp_media_direction (leg->remote_sdp, 0) == TD_SDP_SENDRECV &&
         !td_sdp_media_is_hold (leg->remote_sdp, 0);
}

static gboolean
endpoint_hears (const TdLeg *leg)
{
  TdSdpDirection d;

  if (!leg->remote_sdp || td_sdp_n_media (leg->remote_sdp) == 0 ||
      td_sdp_media_port (leg->remote_sdp, 0) == 0)
    return FALSE;
  d = td_sdp_media_direction (leg->remote_sdp, 0);
  return (d == TD_SDP_SENDRECV || d == TD_SDP_RECVONLY) &&
         g_strcmp0 (td_sdp_media_address (leg->remote_sdp, 0), "0.0.0.0") != 0;
}

/* Stream 0 into the mix in the session's codec; the other streams (video)
 * go nowhere while in a room. FALSE if the session has no codec the mixer
 * speaks. */
static gboolean
join_media (TdRoom *room, TdLeg *leg)
{
  TdRelayPort *port = leg->ports->len ? g_ptr_array_index (leg->ports, 0) : NULL;
  TdCodec codec;
  guint8 pt;

  if (!port || !td_leg_mix_format (leg, &codec, &pt))
    return FALSE;
  for (guint i = 0; i < leg->ports->len; i++) {
    TdRelayPort *p = g_ptr_array_index (leg->ports, i);
    if (p && td_relay_port_is_playing (p))
      td_relay_port_stop (p);
    if (p && i > 0)
      td_relay_disconnect (p);
  }
  td_relay_port_set_forward (port, endpoint_sends (leg));
  td_relay_port_set_clock_rate (port, td_codec_clock_rate (codec));
  td_relay_port_join_mix (port, room->mix, codec, pt, endpoint_hears (leg));
  return TRUE;
}

static void
leave_media (TdLeg *leg)
{
  TdRelayPort *port = leg->ports->len ? g_ptr_array_index (leg->ports, 0) : NULL;

  if (port)
    td_relay_port_leave_mix (port);
}

/* ---- members in and out ----------------------------------------------------------- */

static TdCall *
member_of (const TdRoom *room, const TdLeg *leg)
{
  for (guint i = 0; i < room->members->len; i++) {
    TdCall *member = g_ptr_array_index (room->members, i);
    if (member->a == leg)
      return member;
  }
  return NULL;
}

static gboolean
can_join (const TdRoom *room, const TdLeg *leg, GError **error)
{
  TdCodec codec;
  guint8 pt;

  if (room->collapsing || !td_leg_is_up (leg) || (leg->call && leg->call->room)) {
    g_set_error (error, TD_CALL_ERROR, 481, "leg l%" G_GUINT64_FORMAT " cannot join room %s%s",
                 leg->id, room->name,
                 leg->call && leg->call->room ? ": it is in a room already" : "");
    return FALSE;
  }
  if (leg->has_pending || leg->outgoing) {
    g_set_error (error, TD_CALL_ERROR, 491, "leg l%" G_GUINT64_FORMAT
                 " is renegotiating its session: try again", leg->id);
    return FALSE;
  }
  if (!td_leg_mix_format (leg, &codec, &pt)) {
    g_set_error (error, TD_CALL_ERROR, 488, "leg l%" G_GUINT64_FORMAT
                 "'s session has no codec the mixer speaks (PCMU, PCMA, G.722, Opus)", leg->id);
    return FALSE;
  }
  return TRUE;
}

/* The member's endpoint was told another party's session, perhaps on hold
 * (its old peer held it): it takes part now, so it is told sendrecv. */
static void
offer_sendrecv (TdCall *member, TdLeg *leg)
{
  TdSdp *session = td_call_get_data (member, SESSION_KEY);
  guint64 version = leg->sdp_version;
  const char *offer;

  if (!session || !leg->local_sdp || !leg->nh)
    return;
  offer = td_leg_local_sdp_directed (leg, session, td_call_media_address (member),
                                     TD_SDP_SENDRECV);
  if (leg->sdp_version == version)
    return;   /* unchanged: it has sendrecv already */
  g_info ("call %s: re-offering the %s-leg the room, sendrecv", member->call_id,
          td_leg_name (leg));
  leg->outgoing = TD_OUT_REALIGN;
  leg->pending_is_update_out = FALSE;
  td_signal_invite (leg->signal, leg->nh, SIPTAG_CONTENT_TYPE_STR ("application/sdp"),
                    SIPTAG_PAYLOAD_STR (offer), TAG_END ());
}

/* Was the endpoint told that its far end sends nothing (its old peer put
 * it on hold) while it would listen? Not one that holds the call itself:
 * it stays the way it asked to be. */
static gboolean
held_by_peer (const TdLeg *leg, const TdSdp *told)
{
  TdSdpDirection t, own;

  if (!told || !td_sdp_n_media (told) || !leg->remote_sdp || !td_sdp_n_media (leg->remote_sdp))
    return FALSE;
  t = td_sdp_media_direction (told, 0);
  own = td_sdp_media_direction (leg->remote_sdp, 0);
  return (t == TD_SDP_SENDONLY || t == TD_SDP_INACTIVE) &&
         (own == TD_SDP_SENDRECV || own == TD_SDP_RECVONLY);
}

/* `leg` (checked by can_join) leaves its call for a member call of the room. */
static void
join (TdRoom *room, TdLeg *leg, const char *moved_by)
{
  TdSdp *told = leg->local_sdp ? td_sdp_parse (leg->local_sdp, -1, NULL) : NULL;
  /* The CDR of the call it leaves says why its segment ended. */
  TdCall *member = td_call_adopt_leg (leg, room->name, moved_by, "joined a conference");

  member->room = room;
  if (told)
    td_call_set_data (member, SESSION_KEY, told, (GDestroyNotify) td_sdp_free);
  g_ptr_array_add (room->members, td_call_ref (member));
  room->most = MAX (room->most, room->members->len);
  join_media (room, leg);
  td_call_media_changed (member);   /* the RTP timeout counts for it alone now */
  td_call_arm_refresh (member, leg);
  g_info ("room %s: leg %" G_GUINT64_FORMAT " (%s) joined: %u part%s", room->name, leg->id,
          leg->user ? leg->user : "?", room->members->len, room->members->len == 1 ? "y" : "ies");
  if (held_by_peer (leg, told))
    offer_sendrecv (member, leg);
}

gboolean
td_room_add_leg (TdRoom *room, TdLeg *leg, GError **error)
{
  if (!can_join (room, leg, error))
    return FALSE;
  join (room, leg, NULL);
  return TRUE;
}

/* Two members left: they talk as a plain call again; one: the room ends —
 * once it had more (a factory room whose first invitee did not answer
 * keeps its caller, who may invite someone else). */
static void
room_check (TdRoom *room)
{
  if (room->dialing->len || room->members->len > 2 ||
      (room->members->len == 1 && room->most < 2))
    return;
  if (room->members->len == 2 && !room->collapsing) {
    TdCall *m1 = g_ptr_array_index (room->members, 0), *m2 = g_ptr_array_index (room->members, 1);
    TdLeg *l1 = m1->a, *l2 = m2->a;
    /* Not while either is ending (hung up by tandem, or at shutdown). */
    if (l1 && l2 && !m1->ended && !m2->ended && td_leg_is_up (l1) && td_leg_is_up (l2)) {
      room->collapsing = TRUE;
      g_info ("room %s: two parties left, a plain call again", room->name);
      leave_media (l1);
      leave_media (l2);
      m1->room = m2->room = NULL;
      g_ptr_array_set_size (room->members, 0);
      td_call_pair_legs (l1, l2, NULL, "conference down to two");
      g_hash_table_remove (room->ctx->rooms, room->name);
      return;
    }
  }
  for (guint i = 0; i < room->members->len; i++) {
    TdCall *member = g_ptr_array_index (room->members, i);
    if (!member->ended) {
      g_info ("room %s: one party left, the room ends", room->name);
      td_call_end (member, "conference ended", NULL);
    }
  }
  if (room->members->len == 0) {
    g_info ("room %s: closed", room->name);
    g_hash_table_remove (room->ctx->rooms, room->name);
  }
}

void
td_room_member_gone (TdRoom *room, TdCall *member)
{
  guint i;

  if (!g_ptr_array_find (room->members, member, &i))
    return;
  if (member->a)
    leave_media (member->a);
  member->room = NULL;
  g_info ("room %s: leg %" G_GUINT64_FORMAT " left: %u part%s", room->name,
          member->a ? member->a->id : 0, room->members->len - 1,
          room->members->len - 1 == 1 ? "y" : "ies");
  g_ptr_array_remove_index (room->members, i);
  room_check (room);
}

gboolean
td_room_kick (TdRoom *room, TdLeg *leg, GError **error)
{
  TdCall *member = member_of (room, leg);

  if (!member || member->ended) {
    g_set_error (error, TD_CALL_ERROR, 404, "leg l%" G_GUINT64_FORMAT " is no party of room %s",
                 leg->id, room->name);
    return FALSE;
  }
  g_message ("room %s: leg %" G_GUINT64_FORMAT " removed by the operator", room->name, leg->id);
  td_call_end (member, "removed from the conference", NULL);
  return TRUE;
}

/* ---- the focus: a call to a conference factory --------------------------------- */

/* Tandem's Contact as the focus (RFC 4579 §3: the isfocus feature tag),
 * at the address the phone reached it on. */
static char *
focus_contact (const TdCall *call, const sip_t *sip)
{
  const TdConfig *config = call->ctx->config;
  const char *host = config->listen_host;
  g_autofree char *port = g_strdup_printf ("%u", config->listen_port);

  if (g_str_equal (host, "0.0.0.0") || g_str_equal (host, "::")) {
    /* A wildcard listen: where the request was sent, when it says. */
    const url_t *ruri = sip && sip->sip_request ? sip->sip_request->rq_url : NULL;
    host = ruri && ruri->url_host ? ruri->url_host : config->domain;
    if (ruri && ruri->url_port) {
      g_free (port);
      port = g_strdup (ruri->url_port);
    }
  }
  return g_strdup_printf (strchr (host, ':') ? "<sip:%s@[%s]:%s>;isfocus" : "<sip:%s@%s:%s>;isfocus",
                          call->callee, host, port);
}

TdRoom *
td_room_answer (TdCall *call, GError **error)
{
  TdLeg *a = call->a;
  const TdSdp *offer = a ? a->remote_sdp : NULL;
  g_autofree char *format = NULL, *contact = NULL;
  const char *keep[3] = { NULL, NULL, NULL }, *sdp;
  TdSdp *session;
  TdCodec codec;
  guint8 pt;
  TdRoom *room;

  if (!a || a->final || call->ended || call->room) {
    g_set_error (error, TD_CALL_ERROR, 481, "the call cannot be answered into a room");
    return NULL;
  }
  if (call->late_offer || !offer || !td_leg_mix_format (a, &codec, &pt)) {
    g_set_error (error, TD_CALL_ERROR, 488, "the caller offers no codec the mixer speaks");
    return NULL;
  }
  keep[0] = format = g_strdup_printf ("%u", pt);
  keep[1] = td_sdp_telephone_event (offer, 0, td_codec_clock_rate (codec));
  if (!(session = td_sdp_with_formats (offer, 0, keep))) {
    g_set_error (error, TD_CALL_ERROR, 488, "the caller's offer cannot be answered");
    return NULL;
  }
  room = room_new (call->ctx);
  sdp = td_leg_local_sdp_directed (a, session, td_call_media_address (call),
                                   td_sdp_answer_direction (td_sdp_media_direction (offer, 0)));
  contact = focus_contact (call, NULL);
  td_signal_respond (a->signal, a->nh, TD_WITH_HANDLE, NULL, SIP_200_OK,
                     SIPTAG_CONTACT_STR (contact),
                     SIPTAG_CONTENT_TYPE_STR ("application/sdp"), SIPTAG_PAYLOAD_STR (sdp),
                     TAG_END ());
  a->final = a->answered = TRUE;
  call->answered_us = g_get_real_time ();
  call->final_status = 200;
  call->hangup = TD_HANGUP_CALLER;
  call->room = room;
  td_call_set_data (call, SESSION_KEY, session, (GDestroyNotify) td_sdp_free);
  g_ptr_array_add (room->members, td_call_ref (call));
  room->most = 1;
  join_media (room, a);
  td_call_media_changed (call);
  td_call_arm_refresh (call, a);
  g_info ("call %s %s → %s answered by tandem as the focus of room %s", call->call_id,
          call->caller, call->callee, room->name);
  return room;
}

/* ---- bridging two calls ----------------------------------------------------------- */

static gboolean
bridgeable (const TdCall *call, GError **error)
{
  if (call->ended || call->room || !call->a || !call->bridged || !td_leg_is_up (call->a) ||
      !td_leg_is_up (call->bridged)) {
    g_set_error (error, TD_CALL_ERROR, 481, "call c%" G_GUINT64_FORMAT
                 " is not an answered two-party call", call->id);
    return FALSE;
  }
  return TRUE;
}

/* A party of `second` who is also a party of `first` (the same user: a
 * three-way call's host), or NULL. */
static TdLeg *
shared_party (const TdCall *first, TdLeg *leg)
{
  return leg->user && (g_strcmp0 (leg->user, first->a->user) == 0 ||
                       g_strcmp0 (leg->user, first->bridged->user) == 0) ? leg : NULL;
}

TdRoom *
td_room_bridge (TdCall *first, TdCall *second, GError **error)
{
  TdLeg *legs[4], *drop = NULL;
  guint n = 0;
  TdRoom *room;

  if (first == second) {
    g_set_error (error, TD_CALL_ERROR, 400, "call c%" G_GUINT64_FORMAT
                 " cannot be bridged with itself", first->id);
    return NULL;
  }
  if (!bridgeable (first, error) || !bridgeable (second, error))
    return NULL;
  legs[n++] = first->a;
  legs[n++] = first->bridged;
  if (shared_party (first, second->a))
    drop = second->a;
  else
    legs[n++] = second->a;
  if (!drop && shared_party (first, second->bridged))
    drop = second->bridged;
  else
    legs[n++] = second->bridged;
  for (guint i = 0; i < n; i++) {
    TdCodec codec;
    guint8 pt;
    if (legs[i]->has_pending || legs[i]->outgoing || !td_leg_mix_format (legs[i], &codec, &pt)) {
      g_set_error (error, TD_CALL_ERROR, 488, "leg l%" G_GUINT64_FORMAT " cannot join a room now%s",
                   legs[i]->id, legs[i]->has_pending || legs[i]->outgoing
                   ? " (its session is being renegotiated)" : " (no codec the mixer speaks)");
      return NULL;
    }
  }
  room = room_new (first->ctx);
  g_autoptr (TdLeg) dropped = drop ? td_leg_ref (drop) : NULL;
  for (guint i = 0; i < n; i++)
    join (room, legs[i], NULL);
  if (dropped) {
    /* Its other dialog is in the room: this one would only echo. */
    g_info ("room %s: %s is in both calls: leg %" G_GUINT64_FORMAT " hangs up", room->name,
            dropped->user, dropped->id);
    td_leg_hangup (dropped);
  }
  return room;
}

/* ---- offers from members ---------------------------------------------------------- */

void
td_room_offer_received (TdRoom *room, TdCall *member, TdLeg *leg, const sip_t *sip,
                        gboolean is_update)
{
  TdSdp *session = td_call_get_data (member, SESSION_KEY), *sdp;
  g_autoptr (GError) error = NULL;
  const char *answer;

  if (leg->outgoing || member->ended) {
    td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, SIP_491_REQUEST_PENDING,
                       TAG_END ());
    return;
  }
  if (!(sdp = td_call_offer_take (member, leg, sip, is_update)))
    return;
  /* Tandem is the far end now: it answers from the session the member
   * has, which must share a codec with the offer (RFC 3264 §6.1). */
  if (!session || !td_sdp_answer_matches_offer (sdp, session) ||
      !td_leg_ensure_ports (leg, room->ctx->relay, sdp, &error)) {
    g_info ("call %s: the room cannot take this offer: %s", member->call_id,
            error ? error->message : "no codec of its session");
    td_sdp_free (sdp);
    td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, SIP_488_NOT_ACCEPTABLE,
                       TAG_END ());
    return;
  }
  td_leg_set_remote_sdp (leg, sdp);
  answer = td_leg_local_sdp_directed (leg, session, td_call_media_address (member),
                                      td_sdp_answer_direction (td_sdp_media_direction (sdp, 0)));
  td_signal_respond (leg->signal, leg->nh, TD_WITH_CURRENT, NULL, SIP_200_OK,
                     SIPTAG_CONTENT_TYPE_STR ("application/sdp"), SIPTAG_PAYLOAD_STR (answer),
                     TAG_END ());
  if (!join_media (room, leg))
    g_info ("call %s: its new session has no codec the mixer speaks", member->call_id);
  td_call_media_changed (member);   /* a hold stops the RTP timeout, a resume restarts it */
  td_call_arm_refresh (member, leg);
}

void
td_room_answer_received (TdRoom *room, TdCall *member, TdLeg *leg, int status, const sip_t *sip)
{
  TdSdp *sdp;

  leg->outgoing = TD_OUT_NONE;
  if (status >= 300) {
    if (td_call_status_ends_dialog (status))
      td_call_end (member, "the party's dialog is gone", leg);
    return;
  }
  td_call_learn_allow (leg, sip, FALSE);
  td_call_session_from_response (member, leg, sip);
  td_call_arm_refresh (member, leg);
  if (td_call_has_sdp (sip) && (sdp = td_call_parse_sdp (member, leg, sip))) {
    td_leg_set_remote_sdp (leg, sdp);
    join_media (room, leg);
    td_call_media_changed (member);
  }
}

/* ---- dialling someone in ---------------------------------------------------------- */

TdCall *
td_room_dial (TdRoom *room, const char *target, GError **error)
{
  TdCall *host = NULL, *call;

  for (guint i = 0; i < room->members->len && !host; i++) {
    TdCall *member = g_ptr_array_index (room->members, i);
    if (!member->ended && td_leg_is_up (member->a) && member->a->remote_sdp)
      host = member;
  }
  if (!host || room->collapsing) {
    g_set_error (error, TD_CALL_ERROR, 481, "room %s has no party to dial for", room->name);
    return NULL;
  }
  /* The offer is a party's session (codecs its phone chose); the callee
   * sees the room's first party as the caller. */
  if (!(call = td_call_originate_into (host->a, target, NULL, NULL, room, error)))
    return NULL;
  g_ptr_array_add (room->dialing, td_call_ref (call));
  g_info ("room %s: dialling %s (call %s)", room->name, target, call->call_id);
  return call;
}

void
td_room_dial_answered (TdRoom *room, TdCall *call, TdLeg *leg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdCall) held = td_call_ref (call);

  call->dials_into = NULL;
  g_ptr_array_remove (room->dialing, call);
  if (!can_join (room, leg, &error)) {
    g_info ("room %s: %s", room->name, error->message);
    td_call_hangup (call, "could not join the conference");
    room_check (room);
    return;
  }
  join (room, leg, NULL);
  td_call_maybe_finish (call);
}

void
td_room_dial_ended (TdRoom *room, TdCall *call)
{
  call->dials_into = NULL;
  if (g_ptr_array_remove (room->dialing, call))
    room_check (room);
}
