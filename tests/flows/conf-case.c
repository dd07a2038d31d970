/* conf-case: the fixture of the conference flow cases (see conf-case.h). */
#include "conf-case.h"

#include <string.h>

void
conf_case_clear (ConfCase *x)
{
  g_clear_pointer (&x->d, flow_daemon_free);
  g_clear_object (&x->parser);
  conf_line_clear (&x->a);
  conf_line_clear (&x->a2);
  conf_line_clear (&x->b);
  conf_line_clear (&x->c);
  conf_line_clear (&x->dv);
  conf_line_clear (&x->f);
  g_clear_pointer (&x->room, g_free);
  g_clear_pointer (&x->report, g_strfreev);
}

void
conf_case_start (ConfCase *x)
{
  x->d = conf_start_tandem ();
  x->parser = json_parser_new ();
}

char *
conf_call_id (JsonArray *calls, const char *a, const char *b, const char *user, char **leg)
{
  JsonObject *call = conf_call_between (calls, a, b);

  if (!call)
    g_printerr ("flow: `calls` shows no call between %s and %s\n", a, b);
  g_assert_nonnull (call);
  if (leg)
    *leg = g_strdup (conf_str (conf_party_of (conf_parties (call), user), "leg"));
  return g_strdup (conf_str (call, "id"));
}

/* `tandemctl --json bridge c1 c2`: a room id, and the room's users. */
void
conf_bridge (ConfCase *x, const char *c1, const char *c2, const char *users)
{
  JsonObject *r;
  g_autofree char *got = NULL;

  x->bridge_sent_us = g_get_real_time ();
  r = conf_ctl_ok (x->parser, "bridge", c1, c2);
  x->bridged_us = g_get_real_time ();
  x->room = g_strdup (conf_str (r, "room"));
  g_assert_nonnull (x->room);
  g_assert_true (g_regex_match_simple ("^r[0-9]+$", x->room, 0, 0));
  got = conf_users (conf_parties (r));
  g_assert_cmpstr (got, ==, users);
}

/* `calls` agrees with the room: the calls holding its legs say
 * "room": ROOM, between them they hold exactly its legs, and the leg
 * `gone` (hung up by the bridge; NULL: none) is nowhere. */
void
conf_assert_calls_show_room (const char *room, const char *gone)
{
  g_autoptr (JsonParser) rp = json_parser_new (), cp = json_parser_new ();
  JsonArray *rooms = conf_rooms (rp), *calls = conf_calls (cp), *members;
  g_autoptr (GHashTable) legs = g_hash_table_new (g_str_hash, g_str_equal);
  guint seen = 0;

  g_assert_cmpuint (json_array_get_length (rooms), ==, 1);
  members = conf_parties (json_array_get_object_element (rooms, 0));
  for (guint i = 0; i < json_array_get_length (members); i++)
    g_hash_table_add (legs, (gpointer) conf_str (json_array_get_object_element (members, i),
                                                 "leg"));
  for (guint i = 0; i < json_array_get_length (calls); i++) {
    JsonObject *call = json_array_get_object_element (calls, i);
    JsonArray *parties = conf_parties (call);
    for (guint j = 0; j < json_array_get_length (parties); j++) {
      const char *leg = conf_str (json_array_get_object_element (parties, j), "leg");
      g_assert_cmpstr (leg, !=, gone);
      if (!g_hash_table_contains (legs, leg))
        continue;
      seen++;
      if (g_strcmp0 (conf_str (call, "room"), room) != 0)
        g_printerr ("flow: call %s holds leg %s of room %s but says \"room\": %s\n",
                    conf_str (call, "id"), leg, room, conf_str (call, "room"));
      g_assert_cmpstr (conf_str (call, "room"), ==, room);
    }
  }
  g_assert_cmpuint (seen, ==, g_hash_table_size (legs));
}

/* Letters of the voices not in `letters` ("ABCD" less them). */
static char *
others (const char *letters)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < CONF_N_VOICES; i++)
    if (!strchr (letters, conf_voices[i].letter))
      g_string_append_c (s, conf_voices[i].letter);
  return g_string_free (s, FALSE);
}

void
conf_line_hears (char **report, const ConfLine *l, gint64 from, gint64 to, guint min_frames,
                 const char *hear)
{
  g_autoptr (GArray) pkts = flow_probe_packets (report, l->sip.rtp_port);
  g_autofree char *who = g_strdup_printf ("%s (line %s)", l->user, l->side);
  g_autofree char *never = others (hear);

  conf_assert_hears (who, pkts, from, to, min_frames, conf_voices, CONF_N_VOICES, hear, never);
}

void
conf_line_stream (char **report, const ConfLine *l, gint64 until_us)
{
  g_autoptr (GArray) pkts = flow_probe_packets (report, l->sip.rtp_port);
  g_autofree char *who = g_strdup_printf ("%s (line %s)", l->user, l->side);

  conf_note_stream (who, pkts, conf_voices, CONF_N_VOICES);
  conf_assert_one_stream (who, pkts, l->relay, until_us);
  conf_assert_never_hears (who, pkts, conf_voices, CONF_N_VOICES, conf_line_letter (l));
}

