/* conf-ctl: tandem for the conference flow tests (test-conference.c) and
 * what they say to it: tandemctl and the raw control socket, with the
 * JSON of calls and rooms read back.
 *
 * The protocol these helpers expect (issue 11, README "Control socket and
 * tandemctl"): `bridge C1 C2` → {"ok":true,"room":"r1","parties":[...]};
 * `conference list` → {"ok":true,"rooms":[{"id","created_at","parties":
 * [{"user","leg","state"}]}]}; `conference add ROOM TARGET` →
 * {"ok":true,"room","leg"}; `conference kick ROOM LEG` → {"ok":true,
 * "room","leg"}; in `calls`, a call with a party in a room has "room".
 * Refusals: exit 1, tandem's message on stderr.
 *
 * Environment (set by meson): TANDEMCTL, the tool. */
#pragma once

#include <json-glib/json-glib.h>

#include "flow-calls.h"

G_BEGIN_DECLS

/* The relay range: below the kernel's ephemeral ports and apart from every
 * other suite's (ringback 5000-5999, transfer 6000-6999, media 7000-7999,
 * holdmusic 8000-9999, relay unit tests and phones 10000-19800, call and
 * control 20000-29999, features 30000-34199). */
#define CONF_MEDIA_MIN 4000
#define CONF_MEDIA_MAX 4999

/* tandem as the sample configuration has it (its plugins, users alice,
 * bob, carol of the harness and dave), plus the conference plugin and
 * [conference] (factory "conference", max-parties 10), the control socket
 * ctl.sock in the case directory and our relay range. Asserts the plugin
 * is built: without it nothing here is tested. */
FlowDaemon *conf_start_tandem (void);

/* tandemctl --socket ctl.sock ARGS...: its exit status and output. */
int conf_ctl_v (char **out, char **err, const char *const *args);
#define conf_ctl(out, err, ...) conf_ctl_v (out, err, (const char *const[]) { __VA_ARGS__, NULL })
/* tandemctl --json ARGS..., asserted to exit 0 with {"ok":true}: the
 * response object (owned by parser). */
JsonObject *conf_ctl_ok_v (JsonParser *parser, const char *const *args);
#define conf_ctl_ok(parser, ...) \
  conf_ctl_ok_v (parser, (const char *const[]) { __VA_ARGS__, NULL })
/* tandemctl ARGS... asserted to be refused: exit 1 and a message on stderr
 * containing `needle` (NULL: any message). */
void conf_ctl_refused_v (const char *needle, const char *const *args);
#define conf_ctl_refused(needle, ...) \
  conf_ctl_refused_v (needle, (const char *const[]) { __VA_ARGS__, NULL })

/* A member's string, NULL if it is missing or no string. */
const char *conf_str (JsonObject *o, const char *member);
/* The "parties" array of a call, a room or a bridge response (asserted). */
JsonArray *conf_parties (JsonObject *o);
/* The party of `user` in parties, NULL if none; asserts there is at most one. */
JsonObject *conf_party_of (JsonArray *parties, const char *user);
/* The users of parties, sorted and joined: "alice bob carol". */
char *conf_users (JsonArray *parties);

/* `calls` and `conference list` now (asserted to succeed). */
JsonArray *conf_calls (JsonParser *parser);
JsonArray *conf_rooms (JsonParser *parser);
/* The call whose parties are exactly users `a` and `b`, or NULL. */
JsonObject *conf_call_between (JsonArray *calls, const char *a, const char *b);
/* Waits (bounded) until `calls` shows n_calls calls whose every party is
 * talking; returns them. */
JsonArray *conf_wait_calls_talking (JsonParser *parser, guint n_calls);
/* Waits (bounded) until `conference list` shows exactly one room, `room`,
 * (NULL: whatever its id), whose parties are the users `users` (sorted,
 * "alice bob carol"), each talking; returns it. */
JsonObject *conf_wait_room (JsonParser *parser, const char *room, const char *users);
/* Waits (bounded) until `conference list` shows no room. */
void conf_wait_no_rooms (JsonParser *parser);

/* Several requests on one raw connection to the socket: `text` as is,
 * then n response lines (asserted to come). */
char **conf_raw (const char *text, guint n);

G_END_DECLS
