/* conf-line: the SIPp lines of the conference flow tests (see
 * conf-line.h). */
#include "conf-line.h"

#include <string.h>

#define LINE_TIMEOUT "40s"
/* SIPp's message times are those of its log line, a little after the
 * socket; room for a loaded machine. */
#define SLACK_US (100 * 1000)

const ConfVoice conf_voices[CONF_N_VOICES] = {
  { 'A', 400 }, { 'B', 700 }, { 'C', 1100 }, { 'D', 1500 },
};

void
conf_line_clear (ConfLine *l)
{
  g_clear_pointer (&l->run, flow_run_free);
  /* A line still running when a case fails: the harness kills it with
   * the case's process group (its SIPp dies with the parent). */
}

char
conf_line_letter (const ConfLine *l)
{
  static const char *const users[CONF_N_VOICES] = { "alice", "bob", "carol", "dave" };

  for (guint i = 0; i < CONF_N_VOICES; i++)
    if (strcmp (l->user, users[i]) == 0)
      return conf_voices[i].letter;
  g_assert_not_reached ();
}

void
conf_line_answer (FlowDaemon *d, ConfLine *l, const char *user, const char *scenario,
                  const char *side)
{
  l->user = user;
  l->side = side;
  l->sip = flow_party (user, scenario, side);
  l->sip.pt = "0";
  l->sip.codec = "PCMU";
  l->sip.timeout = LINE_TIMEOUT;
  l->sipp = flow_callee_start (d, &l->sip);
}

void
conf_line_call (FlowDaemon *d, ConfLine *l, const char *user, const char *side,
                ConfLine *callee)
{
  l->user = user;
  l->side = side;
  l->sip = flow_party (user, "xfer-uac-talk.xml", side);
  l->sip.timeout = LINE_TIMEOUT;
  l->sipp = flow_caller_start (d, &l->sip, callee->user);
  l->relay = flow_wait_port_file (side);
  callee->relay = flow_wait_port_file (callee->side);
}

gint64
conf_line_hang_up (FlowDaemon *d, ConfLine *l)
{
  g_autofree char *file = g_strdup_printf ("%s-dialog.txt", l->side);
  g_auto (GStrv) dialog = flow_wait_lines_file (file, 5);
  g_autoptr (FlowRun) bye = NULL;

  /* Call-ID, tandem's tag, ours, tandem's Contact, tandem's From. */
  bye = flow_sipp (d, "conf-bye.xml", "-cid_str", dialog[0], "-key", "user", l->user,
                   "-key", "ruri", dialog[3], "-key", "from_tag", dialog[2],
                   "-key", "to", dialog[4], NULL);
  return flow_run_msg_time (bye, flow_require_response (bye->received, 200, "BYE", 0));
}

void
conf_line_finish (ConfLine *l)
{
  g_autofree char *who = g_strdup_printf ("%s (line %s)", l->user, l->side);

  g_assert_nonnull (l->sipp);
  l->run = flow_sipp_finish (l->sipp, who);
  l->sipp = NULL;
}

FlowToneEndpoint
conf_line_tone (const ConfLine *l, guint32 ssrc, const char *dest_file, guint delay_ms,
                guint count)
{
  guint hz = 0;
  char letter = conf_line_letter (l);

  for (guint i = 0; i < CONF_N_VOICES; i++)
    if (conf_voices[i].letter == letter)
      hz = conf_voices[i].hz;
  g_assert_true (dest_file || l->relay);
  return (FlowToneEndpoint) { .bind_port = l->sip.rtp_port,
                              .dest_port = dest_file ? 0 : l->relay, .dest_file = dest_file,
                              .ssrc = ssrc, .delay_ms = delay_ms, .pt = 0, .tone_hz = hz,
                              .count = count };
}

gint64
conf_line_last_sent (char **report, const ConfLine *l, guint count)
{
  gint64 first = flow_probe_first_sent (report, l->sip.rtp_port);

  g_assert_cmpint (first, >, 0);
  return first + (gint64) (count - 1) * 20000;
}

/* ---- messages --------------------------------------------------------------------- */

GPtrArray *
conf_requests (const GPtrArray *msgs, const char *start)
{
  GPtrArray *out = g_ptr_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < msgs->len; i++) {
    const char *m = g_ptr_array_index (msgs, i);
    g_autofree char *call_id = NULL;
    if (!g_str_has_prefix (m, start))
      continue;
    call_id = flow_require_header (m, "Call-ID");
    if (g_hash_table_add (seen, g_strdup_printf ("%s %" G_GUINT64_FORMAT, call_id,
                                                 flow_msg_cseq (m))))
      g_ptr_array_add (out, (gpointer) m);
  }
  return out;
}

guint
conf_count_requests (const GPtrArray *msgs, const char *start)
{
  g_autoptr (GPtrArray) found = conf_requests (msgs, start);
  return found->len;
}

const char *
conf_require_request (const GPtrArray *msgs, const char *start, guint nth)
{
  g_autoptr (GPtrArray) found = conf_requests (msgs, start);

  if (nth >= found->len)
    g_printerr ("flow: no %s#%u (%u of them)\n", start, nth, found->len);
  g_assert_cmpuint (nth, <, found->len);
  return g_ptr_array_index (found, nth);
}

void
conf_assert_no_reinvite (const ConfLine *l, gboolean caller)
{
  guint invites = conf_count_requests (l->run->received, "INVITE ");
  guint updates = conf_count_requests (l->run->received, "UPDATE ");

  if (invites != (caller ? 0u : 1u) || updates)
    g_printerr ("flow: %s (line %s) got %u INVITEs and %u UPDATEs (want %u and none: no "
                "re-INVITE, PCMU everywhere)\n", l->user, l->side, invites, updates,
                caller ? 0 : 1);
  g_assert_cmpuint (invites, ==, caller ? 0 : 1);
  g_assert_cmpuint (updates, ==, 0);
}

void
conf_assert_byed (const ConfLine *l, gint64 not_before_us)
{
  guint got = conf_count_requests (l->run->received, "BYE ");
  guint sent = conf_count_requests (l->run->sent, "BYE ");
  gint64 at;

  if (got != 1 || sent)
    g_printerr ("flow: %s (line %s) got %u BYEs and sent %u (want tandem's one)\n", l->user,
                l->side, got, sent);
  g_assert_cmpuint (got, ==, 1);
  g_assert_cmpuint (sent, ==, 0);
  at = flow_run_msg_time (l->run, conf_require_request (l->run->received, "BYE ", 0));
  if (at < not_before_us - SLACK_US)
    g_printerr ("flow: %s (line %s) got its BYE %" G_GINT64_FORMAT " ms too early\n", l->user,
                l->side, (not_before_us - at) / 1000);
  g_assert_cmpint (at, >=, not_before_us - SLACK_US);
}
