/* TdRoom (core side): a bridge of N parties, each hearing the others.
 *
 * A room holds legs that left their calls: each member leg is the one
 * party of a call of its own (its CDR segment, its session refresh, its
 * BYE), whose other side is the room. The first audio stream of every
 * member joins one mix in the relay (td_relay_port_join_mix), in the codec
 * that member's session already has, so joining changes nothing the phone
 * was told: no re-INVITE, the same SSRC and sequence (the leg's outgoing
 * RTP context). A room that drops to two members becomes a plain call of
 * those two again; to one (and nobody being dialled in), it ends.
 * The plugin-facing operations are in td-plugin.h. */
#pragma once

#include "td-call-private.h"

G_BEGIN_DECLS

/* Member call events, from td-call.c / td-call-offer.c: */
/* A member's endpoint sent an offer (re-INVITE/UPDATE). */
void td_room_offer_received (TdRoom *room, TdCall *member, TdLeg *leg, const sip_t *sip,
                             gboolean is_update);
/* The answer to tandem's own re-INVITE to a member (its realignment). */
void td_room_answer_received (TdRoom *room, TdCall *member, TdLeg *leg, int status,
                              const sip_t *sip);
/* A member's dialog is over (before its ports go). */
void td_room_member_gone (TdRoom *room, TdCall *member);
/* A call dialled into the room (td_room_dial) was answered by `leg`, or failed. */
void td_room_dial_answered (TdRoom *room, TdCall *call, TdLeg *leg);
void td_room_dial_ended (TdRoom *room, TdCall *call);

/* The rooms table of a call context: ctx->rooms (id -> TdRoom*, owned). */
void td_rooms_init (TdCallContext *ctx);
void td_rooms_clear (TdCallContext *ctx);
/* "r3" -> the live room, or NULL. */
TdRoom *td_rooms_lookup (TdCallContext *ctx, const char *id);

G_END_DECLS
