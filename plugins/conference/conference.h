/* conference: rooms of three parties or more (flow 17), made from a phone
 * (RFC 4579: a conference factory URI, REFERs to the focus) or by the
 * operator (tandemctl bridge / conference). The rooms themselves — who is
 * in, the mixing, collapsing to a plain call at two — are the core's
 * (td-plugin.h, "rooms"); this plugin decides when rooms are made and who
 * is pulled in. */
#pragma once

#include "td-plugin.h"

G_BEGIN_DECLS

#define CONFERENCE_DEFAULT_MAX_PARTIES 10
#define CONFERENCE_MAX_PARTIES_LIMIT 32

typedef struct {
  TdPluginHost *host;
  char *factory;        /* the factory's user ("conference"), or NULL: none */
} Conference;

/* [conference] max-parties, as running now. */
guint conference_max_parties (Conference *conf);
/* Can one more party come into `room` (those in it and those being dialled)? */
gboolean conference_has_room_for (Conference *conf, TdRoom *room, guint more, GError **error);

/* commands.c: the control socket's bridge, conference-list, -add, -kick. */
void conference_add_commands (Conference *conf);

G_END_DECLS
