/* conf-case: what every conference flow case (test-conference.c,
 * conf-life.c) is made of: its tandem, its SIPp lines, the room
 * tandemctl made, and the judgement of what each line received. */
#pragma once

#include "conf-ctl.h"
#include "conf-line.h"

G_BEGIN_DECLS

/* Before a change, the calls' audio runs this long (so that there is a
 * stream to keep across it), and after one, the room's (to be judged):
 * the windows judged are measured from the events, not assumed. */
#define CONF_PHASE_MS 1500
/* Frames a judged window must hold at least (20 ms each). */
#define CONF_MIN_FRAMES 40
#define CONF_MIN_PRE_FRAMES 25
#define CONF_SSRC(n) (0x5000u + (n))

/* One case's tandem, parties and what tandemctl said. */
typedef struct {
  FlowDaemon *d;
  JsonParser *parser;
  ConfLine a, a2, b, c, dv, f;  /* alice's two lines, bob, carol, dave, alice's line to the focus */
  char *room;
  gint64 bridge_sent_us, bridged_us;
  char **report;
} ConfCase;

void conf_case_clear (ConfCase *x);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ConfCase, conf_case_clear)
/* tandem (conf_start_tandem) and a parser for tandemctl's answers. */
void conf_case_start (ConfCase *x);

/* The id of the call between users a and b in calls (asserted), and its
 * leg of `user` if leg is not NULL. */
char *conf_call_id (JsonArray *calls, const char *a, const char *b, const char *user,
                    char **leg);
/* `tandemctl --json bridge c1 c2`: the room id (x->room, "r" and digits),
 * whose parties are the users `users` ("alice bob carol"); when it was
 * sent and answered (x->bridge_sent_us, x->bridged_us). */
void conf_bridge (ConfCase *x, const char *c1, const char *c2, const char *users);
/* `calls` agrees with `conference list`'s one room: the calls holding its
 * legs say "room": ROOM, between them they hold exactly its legs, and
 * the leg `gone` (hung up by the bridge; NULL: none) is nowhere. */
void conf_assert_calls_show_room (const char *room, const char *gone);

/* What line l received in [from, to): at least min_frames frames, which
 * carry the voices `hear` ("BC") and no other. */
void conf_line_hears (char **report, const ConfLine *l, gint64 from, gint64 to,
                      guint min_frames, const char *hear);
/* What line l received is one stream (conf_assert_one_stream, no stall
 * before until_us) from its relay port, and never its own voice. */
void conf_line_stream (char **report, const ConfLine *l, gint64 until_us);

/* The cases of conf-life.c: a room's life, tandemctl's errors. */
void conf_life_add_tests (void);

G_END_DECLS
