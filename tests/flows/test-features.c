/* Feature flows: call forwarding (busy, no answer, failing targets, loops
 * and chains), call waiting and hold, through a running tandem with the
 * forward and waiting plugins. Callers and callees are SIPp (feat-*.xml
 * here, and the call-uas*.xml callees of the call tests), media the
 * rtp-probe.
 *
 * SIPp asserts the order and status codes of the messages; the checks here
 * read what each side actually received: who was rung, the Diversion
 * headers, 181 Call Is Being Forwarded, which RTP crosses the relay in each
 * phase of a hold, and the CDR each call leaves in the store.
 * Each case starts its own daemon (see flow-harness.h). */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flow-harness.h"

/* The relay range: below the kernel's ephemeral ports (where the harness's
 * free ports come from), and apart from test-call's range. */
#define MEDIA_MIN 12000
#define MEDIA_MAX 19999
#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 12000-19999\n"
#define PLUGINS_CONFIG "[plugins]\nenabled = forward;waiting\n"
#define FILE_TIMEOUT_MS 15000
#define CDR_TIMEOUT_MS 5000

/* RTP probe: packets per side, and the share that must arrive. */
#define PROBE_PACKETS 50
#define PROBE_MIN_RECEIVED 45
#define SSRC_ALICE 0xA11CEu
#define SSRC_BOB 0xB0Bu
#define SSRC_BOB2 0xB0B2u
#define SSRC_CAROL 0xCA201u

/* A phase of a held call lasts this long in the scenarios (SIPp -d): the
 * probe (PROBE_PACKETS × 20 ms, plus 400 ms linger) fits in with room. */
#define PHASE_MS "2500"

/* ---- tandem ------------------------------------------------------------------------ */

static const char *const users[] = { "alice", "bob", "carol", "dave" };

/* tandem with our relay range, both plugins, the given [calls] lines and
 * users alice, bob, carol and dave (password NAME-secret). The variable
 * arguments are pairs of a user and extra [user] lines for it
 * ("bob", "forward-busy = carol"), ended by NULL. */
static FlowDaemon *start_tandem (const char *calls, ...) G_GNUC_NULL_TERMINATED;

static FlowDaemon *
start_tandem (const char *calls, ...)
{
  g_autoptr (GHashTable) extra = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GString) conf = g_string_new (MEDIA_CONFIG "\n" PLUGINS_CONFIG "\n");
  const char *user;
  va_list ap;

  va_start (ap, calls);
  while ((user = va_arg (ap, const char *)))
    g_hash_table_insert (extra, (gpointer) user, va_arg (ap, char *));
  va_end (ap);
  g_string_append_printf (conf, "[calls]\n%s\n\n", calls ? calls : "");
  for (guint i = 0; i < G_N_ELEMENTS (users); i++) {
    const char *lines = g_hash_table_lookup (extra, users[i]);
    g_string_append_printf (conf, "[user %s]\npassword = %s-secret\n%s\n\n", users[i], users[i],
                            lines ? lines : "");
  }
  return flow_daemon_start (conf->str);
}

static char *
port_str (guint16 port)
{
  return g_strdup_printf ("%u", port);
}

static const char *
or_default (const char *value, const char *fallback)
{
  return value ? value : fallback;
}

/* ---- the parties ---------------------------------------------------------------------- */

/* One SIPp end of a call and what its scenario is told. */
typedef struct {
  const char *user;         /* alice, bob...: digest credentials USER / USER-secret */
  const char *scenario;
  const char *side;         /* names the .port files the scenario writes */
  const char *pause_ms;     /* SIPp -d */
  guint16 sip_port;         /* a callee's registered port */
  guint16 rtp_port;         /* the media port it advertises */
  guint16 rtp_port2;        /* feat-uas-waiting.xml: the second call's */
  const char *calls;        /* SIPp -m (default 1): a callee that may take more calls */
  const char *timeout;      /* SIPp -timeout (default 15s) */
  const char *answer_attr;  /* feat-uas-held.xml: its answer to the hold */
  const char *hold_addr, *hold_attr;   /* feat-uac-hold.xml: the hold offer */
} Party;

static Party
party (const char *user, const char *scenario, const char *side)
{
  return (Party) { .user = user, .scenario = scenario, .side = side, .pause_ms = "0",
                   .sip_port = flow_pick_port (), .rtp_port = flow_pick_port (),
                   .rtp_port2 = flow_pick_port () };
}

/* Registers the party's Contact at 127.0.0.1:sip_port, where its scenario
 * will run. */
static void
register_party (FlowDaemon *d, const Party *p)
{
  g_autofree char *port = port_str (p->sip_port);
  g_autofree char *password = g_strdup_printf ("%s-secret", p->user);
  g_autoptr (FlowRun) run = flow_sipp (d, "register.xml", "-au", p->user, "-ap", password,
                                       "-key", "aor", p->user, "-key", "contact_user", p->user,
                                       "-key", "expires", "3600", "-p", port, NULL);
  g_assert_cmpint (flow_msg_status (flow_run_last_received (run)), ==, 200);
}

/* Starts a callee's scenario in the background on its registered port. */
static FlowSipp *
start_callee (FlowDaemon *d, const Party *p)
{
  g_autofree char *sip = port_str (p->sip_port), *rtp = port_str (p->rtp_port);
  g_autofree char *rtp2 = port_str (p->rtp_port2);

  return flow_sipp_start (d, p->scenario, "-p", sip, "-m", or_default (p->calls, "1"),
                          "-timeout", or_default (p->timeout, "15s"),
                          "-key", "rtp_port", rtp, "-key", "rtp_port2", rtp2,
                          "-key", "side", p->side, "-key", "pt", "8", "-key", "codec", "PCMA",
                          "-key", "answer_attr", or_default (p->answer_attr, "a=sendrecv"),
                          "-d", p->pause_ms, NULL);
}

/* The party calls `callee`, in the background. */
static FlowSipp *
start_caller (FlowDaemon *d, const Party *p, const char *callee)
{
  g_autofree char *rtp = port_str (p->rtp_port);
  g_autofree char *password = g_strdup_printf ("%s-secret", p->user);
  g_autofree char *auth_uri = g_strdup_printf ("%s@pbx.test", callee);

  /* The digest uri must be the Request-URI's (the harness's default is the
   * registrar's); a later -auth_uri wins. */
  return flow_sipp_start (d, p->scenario, "-au", p->user, "-ap", password,
                          "-auth_uri", auth_uri, "-timeout", or_default (p->timeout, "15s"),
                          "-key", "caller", p->user, "-key", "callee", callee,
                          "-key", "rtp_port", rtp, "-key", "side", p->side,
                          "-key", "hold_addr", or_default (p->hold_addr, "127.0.0.1"),
                          "-key", "hold_attr", or_default (p->hold_attr, "a=sendonly"),
                          "-d", p->pause_ms, NULL);
}

/* Collects a run and asserts SIPp saw its scenario through. */
static FlowRun *
finish (FlowSipp *s, const char *who)
{
  FlowRun *run = flow_sipp_wait (s);
  if (run->exit_status != 0)
    g_printerr ("flow: %s's SIPp failed (exit %d%s)\n", who, run->exit_status,
                run->timed_out ? ", timed out" : "");
  g_assert_false (run->timed_out);
  g_assert_cmpint (run->exit_status, ==, 0);
  return run;
}

/* Collects a run whose SIPp is expected to wait in vain (its -timeout ends
 * it): only what it received counts. */
static FlowRun *
collect (FlowSipp *s)
{
  FlowRun *run = flow_sipp_wait (s);
  g_assert_false (run->timed_out);   /* the harness did not have to kill it */
  return run;
}

/* ---- reading messages ------------------------------------------------------------------- */

/* The nth (0-based) message whose start line begins with `start`, or NULL. */
static const char *
find_msg (const GPtrArray *msgs, const char *start, guint nth)
{
  for (guint i = 0; i < msgs->len; i++) {
    const char *m = g_ptr_array_index (msgs, i);
    if (g_str_has_prefix (m, start) && nth-- == 0)
      return m;
  }
  return NULL;
}

static guint
count_msgs (const GPtrArray *msgs, const char *start)
{
  guint n = 0;
  while (find_msg (msgs, start, n))
    n++;
  return n;
}

/* The nth response with this status to a request of this method. */
static const char *
find_response (const GPtrArray *msgs, int status, const char *method, guint nth)
{
  for (guint i = 0; i < msgs->len; i++) {
    const char *m = g_ptr_array_index (msgs, i);
    g_auto (GStrv) cseq = flow_msg_headers (m, "CSeq");
    if (flow_msg_status (m) == status && cseq[0] && g_str_has_suffix (cseq[0], method) &&
        nth-- == 0)
      return m;
  }
  return NULL;
}

static guint
count_responses (const GPtrArray *msgs, int status, const char *method)
{
  guint n = 0;
  while (find_response (msgs, status, method, n))
    n++;
  return n;
}

static const char *
require_msg (const GPtrArray *msgs, const char *start, guint nth)
{
  const char *m = find_msg (msgs, start, nth);
  if (!m)
    g_printerr ("flow: no message #%u starting with \"%s\"\n", nth, start);
  g_assert_nonnull (m);
  return m;
}

static const char *
require_response (const GPtrArray *msgs, int status, const char *method, guint nth)
{
  const char *m = find_response (msgs, status, method, nth);
  if (!m)
    g_printerr ("flow: no %d response #%u to %s\n", status, nth, method);
  g_assert_nonnull (m);
  return m;
}

static guint
position (const GPtrArray *msgs, const char *msg)
{
  for (guint i = 0; i < msgs->len; i++)
    if (g_ptr_array_index (msgs, i) == msg)
      return i;
  g_assert_not_reached ();
}

/* The first value of header `name`; asserts there is one. */
static char *
header (const char *msg, const char *name)
{
  g_auto (GStrv) values = flow_msg_headers (msg, name);
  if (!values[0])
    g_printerr ("flow: no %s header in:\n%s\n", name, msg);
  g_assert_nonnull (values[0]);
  return g_strdup (values[0]);
}

/* The tag parameter of a From/To header; NULL without one. */
static char *
header_tag (const char *msg, const char *name)
{
  g_autofree char *value = header (msg, name);
  const char *close = strchr (value, '>');
  const char *hit = strstr (close ? close : value, ";tag=");

  if (!hit)
    return NULL;
  hit += strlen (";tag=");
  return g_strndup (hit, strcspn (hit, ";, \t"));
}

static guint64
cseq_number (const char *msg)
{
  g_autofree char *cseq = header (msg, "CSeq");
  return g_ascii_strtoull (cseq, NULL, 10);
}

static char *
via_branch (const char *msg)
{
  g_autofree char *via = header (msg, "Via");
  const char *hit = strstr (via, "branch=");
  g_assert_nonnull (hit);
  hit += strlen ("branch=");
  return g_strndup (hit, strcspn (hit, ";, \t"));
}

/* The provisional and final statuses (but 100) the caller got for its
 * authenticated INVITE, in order: "180 181 180 200". */
static char *
invite_statuses (const FlowRun *caller)
{
  guint64 cseq = cseq_number (require_msg (caller->sent, "INVITE ", 1));
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint i = 0; i < caller->received->len; i++) {
    const char *m = g_ptr_array_index (caller->received, i);
    g_autofree char *method = NULL;
    int status = flow_msg_status (m);
    if (status <= 100 || cseq_number (m) != cseq)
      continue;
    method = header (m, "CSeq");
    if (g_str_has_suffix (method, "INVITE"))
      g_string_append_printf (s, "%s%d", s->len ? " " : "", status);
  }
  return g_strdup (s->str);
}

/* Every Diversion entry of a message, newest first, whether tandem put them
 * on one line or several. */
static char **
diversions (const char *msg)
{
  g_auto (GStrv) lines = flow_msg_headers (msg, "Diversion");
  g_autoptr (GStrvBuilder) entries = g_strv_builder_new ();

  for (guint h = 0; lines[h]; h++) {
    const char *start = lines[h];
    gboolean in_angle = FALSE;
    for (const char *p = lines[h];; p++) {
      if (*p == '<')
        in_angle = TRUE;
      else if (*p == '>')
        in_angle = FALSE;
      if (*p == '\0' || (*p == ',' && !in_angle)) {
        g_autofree char *entry = g_strndup (start, p - start);
        g_strv_builder_add (entries, g_strstrip (entry));
        if (*p == '\0')
          break;
        start = p + 1;
      }
    }
  }
  return g_strv_builder_end (entries);
}

/* The message's Diversion entries are exactly the NULL-terminated list. */
static void assert_diversions (const char *msg, ...) G_GNUC_NULL_TERMINATED;

static void
assert_diversions (const char *msg, ...)
{
  g_auto (GStrv) got = diversions (msg);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_auto (GStrv) want = NULL;
  g_autofree char *got_text = NULL, *want_text = NULL;
  const char *entry;
  va_list ap;

  va_start (ap, msg);
  while ((entry = va_arg (ap, const char *)))
    g_strv_builder_add (b, entry);
  va_end (ap);
  want = g_strv_builder_end (b);
  got_text = g_strjoinv (" | ", got);
  want_text = g_strjoinv (" | ", want);
  g_assert_cmpstr (got_text, ==, want_text);
}

/* The first body line starting with `prefix` (e.g. "c=", "m=audio "), or NULL. */
static char *
sdp_line (const char *msg, const char *prefix)
{
  g_autofree char *body = flow_msg_body (msg);
  g_auto (GStrv) lines = g_strsplit (body, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (g_strstrip (lines[i]), prefix))
      return g_strdup (lines[i]);
  return NULL;
}

/* The SDP has this exact line. */
static gboolean
sdp_has (const char *msg, const char *line)
{
  g_autofree char *body = flow_msg_body (msg);
  g_auto (GStrv) lines = g_strsplit (body, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    if (strcmp (g_strstrip (lines[i]), line) == 0)
      return TRUE;
  return FALSE;
}

static void
assert_sdp_has (const char *msg, const char *line)
{
  if (!sdp_has (msg, line))
    g_printerr ("flow: no SDP line \"%s\" in:\n%s\n", line, msg);
  g_assert_true (sdp_has (msg, line));
}

static guint16
sdp_audio_port (const char *msg)
{
  g_autofree char *m = sdp_line (msg, "m=audio ");
  if (!m)
    g_printerr ("flow: no m=audio in:\n%s\n", msg);
  g_assert_nonnull (m);
  return (guint16) g_ascii_strtoull (m + strlen ("m=audio "), NULL, 10);
}

/* o=<user> <id> <version> ...: the version. */
static guint64
sdp_version (const char *msg)
{
  g_autofree char *o = sdp_line (msg, "o=");
  g_auto (GStrv) fields = NULL;

  g_assert_nonnull (o);
  fields = g_strsplit (o, " ", -1);
  g_assert_cmpuint (g_strv_length (fields), >=, 3);
  return g_ascii_strtoull (fields[2], NULL, 10);
}

/* The SDP without its o= line, to compare contents. */
static char *
sdp_without_origin (const char *msg)
{
  g_autofree char *body = flow_msg_body (msg);
  g_auto (GStrv) lines = g_strsplit (body, "\n", -1);
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint i = 0; lines[i]; i++)
    if (!g_str_has_prefix (lines[i], "o="))
      g_string_append_printf (s, "%s\n", lines[i]);
  return g_strdup (s->str);
}

/* RFC 3264 §8: a changed SDP carries a higher version, an unchanged one
 * the same (both written by tandem to the same endpoint). */
static void
assert_sdp_versioned (const char *older, const char *newer)
{
  g_autofree char *old_text = sdp_without_origin (older);
  g_autofree char *new_text = sdp_without_origin (newer);

  if (strcmp (old_text, new_text) != 0)
    g_assert_cmpuint (sdp_version (newer), >, sdp_version (older));
  else
    g_assert_cmpuint (sdp_version (newer), ==, sdp_version (older));
}

/* An SDP tandem wrote: its own o= and m= on the relay, not `not_port` (the
 * port of the endpoint whose SDP it rewrote); c= on the relay unless the
 * endpoint said 0.0.0.0 (hold_address). Returns the relay port. */
static guint16
assert_relay_sdp_at (const char *msg, guint16 not_port, gboolean hold_address)
{
  g_autofree char *o = sdp_line (msg, "o=");
  guint16 port = sdp_audio_port (msg);

  g_assert_nonnull (o);
  g_assert_true (g_str_has_prefix (o, "o=tandem "));
  assert_sdp_has (msg, hold_address ? "c=IN IP4 0.0.0.0" : "c=IN IP4 127.0.0.1");
  g_assert_cmpuint (port, >=, MEDIA_MIN);
  g_assert_cmpuint (port, <=, MEDIA_MAX);
  g_assert_cmpuint (port, !=, not_port);
  return port;
}

static guint16
assert_relay_sdp (const char *msg, guint16 not_port)
{
  return assert_relay_sdp_at (msg, not_port, FALSE);
}

static gint64
time_of (const GPtrArray *msgs, const GArray *times, const char *msg)
{
  return g_array_index (times, gint64, position (msgs, msg));
}

/* ---- what calls ended with --------------------------------------------------------------- */

/* The caller's final response to its authenticated INVITE, and that it
 * ACKed it in its transaction (a check of the scenario's [branch-N]). */
static int
caller_final (const FlowRun *caller)
{
  const char *last = NULL, *ack = flow_run_last_sent (caller);
  const char *invite = require_msg (caller->sent, "INVITE ", 1);
  g_autofree char *ack_branch = NULL, *invite_branch = via_branch (invite);

  for (guint i = 0; i < caller->received->len; i++) {
    const char *m = g_ptr_array_index (caller->received, i);
    if (flow_msg_status (m) >= 200)
      last = m;
  }
  g_assert_nonnull (last);
  g_assert_true (g_str_has_prefix (ack, "ACK "));
  ack_branch = via_branch (ack);
  g_assert_cmpstr (ack_branch, ==, invite_branch);
  return flow_msg_status (last);
}

/* tandem ACKed the callee's non-2xx final response in its transaction. */
static void
assert_error_acked (const FlowRun *callee)
{
  const char *inv = require_msg (callee->received, "INVITE ", 0);
  const char *ack = require_msg (callee->received, "ACK ", 0);
  g_autofree char *inv_branch = via_branch (inv), *ack_branch = via_branch (ack);

  g_assert_cmpuint (cseq_number (ack), ==, cseq_number (inv));
  g_assert_cmpstr (ack_branch, ==, inv_branch);
}

/* The callee got a CANCEL for tandem's INVITE, and tandem ACKed its 487. */
static void
assert_cancelled (const FlowRun *callee)
{
  const char *inv = require_msg (callee->received, "INVITE ", 0);
  const char *cancel = require_msg (callee->received, "CANCEL ", 0);
  g_autofree char *inv_branch = via_branch (inv), *cancel_branch = via_branch (cancel);

  g_assert_cmpuint (cseq_number (cancel), ==, cseq_number (inv));
  g_assert_cmpstr (cancel_branch, ==, inv_branch);
  require_response (callee->sent, 487, "INVITE", 0);
  assert_error_acked (callee);
}

/* The INVITE a callee got names the caller in From and came to its
 * registered Contact. */
static void
assert_invite_from (const char *invite, const char *caller, const Party *callee)
{
  g_autofree char *from = header (invite, "From");
  g_autofree char *want_from = g_strdup_printf ("<sip:%s@pbx.test>", caller);
  g_autofree char *ruri = g_strdup_printf ("INVITE sip:%s@127.0.0.1:%u", callee->user,
                                           callee->sip_port);

  g_assert_nonnull (strstr (from, want_from));
  g_assert_true (g_str_has_prefix (invite, ruri));
}

/* ---- files written by the scenarios ------------------------------------------------------- */

/* The relay port a scenario wrote to <name>.port (see the scenarios'
 * <exec>); waits for it, bounded. */
static guint16
wait_port_file (const char *name)
{
  g_autofree char *file = g_strdup_printf ("%s.port", name);
  g_autofree char *path = g_build_filename (flow_case_dir (), file, NULL);
  gint64 deadline = g_get_monotonic_time () + FILE_TIMEOUT_MS * 1000;

  while (g_get_monotonic_time () < deadline) {
    g_autofree char *text = NULL;
    if (g_file_get_contents (path, &text, NULL, NULL) && *text) {
      guint64 port = g_ascii_strtoull (text, NULL, 10);
      g_assert_cmpuint (port, >, 0);
      return (guint16) port;
    }
    while (g_main_context_iteration (NULL, FALSE))
      ;
    g_usleep (10 * 1000);
  }
  g_printerr ("flow: %s not written within %d ms\n", path, FILE_TIMEOUT_MS);
  g_assert_not_reached ();
}

/* ---- CDRs ----------------------------------------------------------------------------------- */

typedef struct {
  char *caller, *callee, *hangup;
  int status;
  gboolean answered;
} Cdr;

static void
cdr_clear (Cdr *cdr)
{
  g_free (cdr->caller);
  g_free (cdr->callee);
  g_free (cdr->hangup);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Cdr, cdr_clear)

static char *
column_text (sqlite3_stmt *st, int col)
{
  const unsigned char *text = sqlite3_column_text (st, col);
  return text ? g_strdup ((const char *) text) : NULL;
}

/* The CDR row for the A-leg's Call-ID, FALSE if none (yet). Asserts there
 * is at most one. */
static gboolean
cdr_read (FlowDaemon *d, const char *call_id, Cdr *out)
{
  g_autofree char *path = g_build_filename (flow_daemon_dir (d), "tandem.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  guint rows = 0;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 2000);
  g_assert_cmpint (sqlite3_prepare_v2 (db,
                     "SELECT caller, callee, status, hangup, answered_at IS NOT NULL"
                     " FROM cdrs WHERE call_id = ?", -1, &st, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (st, 1, call_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW) {
    rows++;
    cdr_clear (out);
    out->caller = column_text (st, 0);
    out->callee = column_text (st, 1);
    out->status = sqlite3_column_int (st, 2);
    out->hangup = column_text (st, 3);
    out->answered = sqlite3_column_int (st, 4);
  }
  sqlite3_finalize (st);
  sqlite3_close (db);
  g_assert_cmpuint (rows, <=, 1);
  return rows == 1;
}

/* Waits (bounded) for the call's CDR (written when its last leg is gone)
 * and checks it: who called, whom they dialled (not whom the call was
 * forwarded to), the status and who hung up. */
static void
assert_cdr (FlowDaemon *d, const FlowRun *caller, const char *from, const char *dialled,
            int status, const char *hangup)
{
  const char *invite = require_msg (caller->sent, "INVITE ", 0);
  g_autofree char *call_id = header (invite, "Call-ID");
  gint64 deadline = g_get_monotonic_time () + CDR_TIMEOUT_MS * 1000;
  g_auto (Cdr) cdr = { 0 };

  while (!cdr_read (d, call_id, &cdr)) {
    if (g_get_monotonic_time () > deadline) {
      g_printerr ("flow: no CDR for call %s within %d ms\n", call_id, CDR_TIMEOUT_MS);
      g_assert_not_reached ();
    }
    g_usleep (50 * 1000);
  }
  flow_note ("CDR %s: %s -> %s status %d hangup %s answered %d", call_id, cdr.caller,
             cdr.callee, cdr.status, cdr.hangup, cdr.answered);
  g_assert_cmpstr (cdr.caller, ==, from);
  g_assert_cmpstr (cdr.callee, ==, dialled);
  g_assert_cmpint (cdr.status, ==, status);
  g_assert_cmpint (cdr.answered, ==, status == 200);
  g_assert_cmpstr (cdr.hangup, ==, hangup);
}

/* ---- RTP probe ------------------------------------------------------------------------------ */

typedef struct {
  guint16 bind_port, dest_port;
  guint32 ssrc;
} ProbeEndpoint;

/* Runs rtp-probe on the endpoints; returns its report ("sent ..."/"recv ..."). */
static char **
run_probe (const ProbeEndpoint *eps, guint n)
{
  const char *probe = g_getenv ("TANDEM_RTP_PROBE");
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_autofree char *count = port_str (PROBE_PACKETS);
  g_autofree char *out = NULL, *err = NULL;
  g_auto (GStrv) argv = NULL;
  int status;

  g_assert_nonnull (probe);
  g_strv_builder_add_many (b, probe, "-n", count, "-i", "20", "-l", "400", NULL);
  for (guint i = 0; i < n; i++) {
    g_autofree char *spec = g_strdup_printf ("%u:%u:%u", eps[i].bind_port, eps[i].dest_port,
                                             eps[i].ssrc);
    g_strv_builder_add (b, spec);
  }
  argv = g_strv_builder_end (b);
  status = flow_command ((const char *const *) argv, 10000, &out, &err);
  flow_note ("rtp-probe (exit %d):\n%s%s", status, out, err);
  g_assert_cmpint (status, ==, 0);
  return g_strsplit (out, "\n", -1);
}

/* Packets the endpoint on bind_port received from src_port (0: any) with
 * ssrc (0: any). */
static guint
probe_received (char **report, guint16 bind_port, guint16 src_port, guint32 ssrc)
{
  guint total = 0;

  for (guint i = 0; report[i]; i++) {
    guint bind, src, id, n;
    if (sscanf (report[i], "recv %u %u %u %u", &bind, &src, &id, &n) != 4)
      continue;
    if (bind == bind_port && (!src_port || src == src_port) && (!ssrc || id == ssrc))
      total += n;
  }
  return total;
}

/* `listener` heard `ssrc` through its relay port (and only from there). */
static void
assert_heard (char **report, guint16 listener, guint16 relay_port, guint32 ssrc)
{
  guint n = probe_received (report, listener, relay_port, ssrc);
  if (n < PROBE_MIN_RECEIVED)
    g_printerr ("flow: port %u heard %u packets of SSRC %#x from %u (want >= %d)\n", listener,
                n, ssrc, relay_port, PROBE_MIN_RECEIVED);
  g_assert_cmpuint (n, >=, PROBE_MIN_RECEIVED);
  g_assert_cmpuint (probe_received (report, listener, 0, ssrc), ==, n);
}

static void
assert_not_heard (char **report, guint16 listener, guint32 ssrc)
{
  guint n = probe_received (report, listener, 0, ssrc);
  if (n)
    g_printerr ("flow: port %u heard %u packets of SSRC %#x (want none)\n", listener, n, ssrc);
  g_assert_cmpuint (n, ==, 0);
}

/* Two ends each send to their relay port; returns the report. */
static char **
probe_two (guint16 a_port, guint16 a_relay, guint32 a_ssrc, guint16 b_port, guint16 b_relay,
           guint32 b_ssrc)
{
  ProbeEndpoint eps[2] = { { a_port, a_relay, a_ssrc }, { b_port, b_relay, b_ssrc } };
  return run_probe (eps, 2);
}

/* ---- forwarding on busy (flow 10) ----------------------------------------------------------- */

/* bob is busy and forwards to carol: alice hears 181, carol gets the call
 * with a Diversion naming bob, answers, and media flows alice ↔ carol. */
static void
test_forward_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  Party bob = party ("bob", "call-uas-busy.xml", "b");
  Party carol = party ("carol", "call-uas.xml", "c");
  Party alice = party ("alice", "feat-uac.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  g_auto (GStrv) report = NULL;
  g_autofree char *statuses = NULL, *forwarded_line = NULL;
  const char *c_inv, *b_inv, *forwarded, *ok;
  FlowSipp *sa, *sb, *sc;
  guint16 a_relay, c_relay;

  alice.pause_ms = PHASE_MS;
  register_party (d, &bob);
  register_party (d, &carol);
  sb = start_callee (d, &bob);
  sc = start_callee (d, &carol);
  sa = start_caller (d, &alice, "bob");
  a_relay = wait_port_file ("a");
  c_relay = wait_port_file ("c");
  report = probe_two (alice.rtp_port, a_relay, SSRC_ALICE, carol.rtp_port, c_relay, SSRC_CAROL);
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  c = finish (sc, "carol");

  /* bob was rung first, without Diversion, and his 486 ACKed. */
  b_inv = require_msg (b->received, "INVITE ", 0);
  assert_invite_from (b_inv, "alice", &bob);
  assert_diversions (b_inv, NULL);
  assert_error_acked (b);
  /* alice: 181 Call Is Being Forwarded, then carol's answer. */
  forwarded = require_response (a->received, 181, "INVITE", 0);
  forwarded_line = flow_msg_start_line (forwarded);
  g_assert_cmpstr (forwarded_line, ==, "SIP/2.0 181 Call Is Being Forwarded");
  ok = require_response (a->received, 200, "INVITE", 0);
  g_assert_cmpuint (position (a->received, forwarded), <, position (a->received, ok));
  {
    /* One dialog toward alice, whoever answers: the 181's To tag is the 200's. */
    g_autofree char *forwarded_tag = header_tag (forwarded, "To"), *ok_tag = header_tag (ok, "To");
    g_assert_nonnull (ok_tag);
    g_assert_cmpstr (forwarded_tag, ==, ok_tag);
  }
  g_assert_cmpuint (count_responses (a->received, 200, "INVITE"), ==, 1);
  statuses = invite_statuses (a);
  g_assert_cmpstr (statuses, ==, "181 180 200");
  /* carol: the call from alice, diverted by bob because he was busy. */
  c_inv = require_msg (c->received, "INVITE ", 0);
  assert_invite_from (c_inv, "alice", &carol);
  assert_diversions (c_inv, "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  g_assert_cmpuint (assert_relay_sdp (c_inv, alice.rtp_port), ==, c_relay);
  g_assert_cmpuint (assert_relay_sdp (ok, carol.rtp_port), ==, a_relay);
  /* Media: alice ↔ carol, both ways. */
  assert_heard (report, carol.rtp_port, c_relay, SSRC_ALICE);
  assert_heard (report, alice.rtp_port, a_relay, SSRC_CAROL);
  /* The CDR names the user alice dialled. */
  assert_cdr (d, a, "alice", "bob", 200, "caller");
  flow_daemon_stop (d);
}

/* The same with a late offer (alice's INVITE has no SDP): carol's INVITE
 * has none either, her 200 brings the offer to alice, alice's ACK the
 * answer to carol, and media flows. */
static void
test_forward_busy_late_offer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  Party bob = party ("bob", "feat-uas-busy.xml", "b");
  Party carol = party ("carol", "call-uas-late.xml", "c");
  Party alice = party ("alice", "feat-uac-late.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  g_auto (GStrv) report = NULL;
  g_autofree char *statuses = NULL, *c_body = NULL;
  const char *c_inv, *c_ack, *ok;
  FlowSipp *sa, *sb, *sc;
  guint16 a_relay, c_relay;

  alice.pause_ms = PHASE_MS;
  register_party (d, &bob);
  register_party (d, &carol);
  sb = start_callee (d, &bob);
  sc = start_callee (d, &carol);
  sa = start_caller (d, &alice, "bob");
  a_relay = wait_port_file ("a");
  c_relay = wait_port_file ("c");
  report = probe_two (alice.rtp_port, a_relay, SSRC_ALICE, carol.rtp_port, c_relay, SSRC_CAROL);
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  c = finish (sc, "carol");

  assert_error_acked (b);
  statuses = invite_statuses (a);
  g_assert_cmpstr (statuses, ==, "181 180 200");
  c_inv = require_msg (c->received, "INVITE ", 0);
  assert_invite_from (c_inv, "alice", &carol);
  assert_diversions (c_inv, "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  c_body = flow_msg_body (c_inv);
  g_assert_cmpstr (c_body, ==, "");
  ok = require_response (a->received, 200, "INVITE", 0);
  g_assert_cmpuint (assert_relay_sdp (ok, carol.rtp_port), ==, a_relay);
  c_ack = require_msg (c->received, "ACK ", 0);
  g_assert_cmpuint (assert_relay_sdp (c_ack, alice.rtp_port), ==, c_relay);
  assert_heard (report, carol.rtp_port, c_relay, SSRC_ALICE);
  assert_heard (report, alice.rtp_port, a_relay, SSRC_CAROL);
  assert_cdr (d, a, "alice", "bob", 200, "caller");
  flow_daemon_stop (d);
}

/* bob plays early media (an announcement), then is busy: alice's one
 * relay port stays, now bridged to carol; both ways heard, and alice's 200
 * names the same port as bob's 183. */
static void
test_forward_busy_after_early_media (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  Party bob = party ("bob", "feat-uas-early-busy.xml", "b");
  Party carol = party ("carol", "call-uas.xml", "c");
  Party alice = party ("alice", "feat-uac.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  g_auto (GStrv) report = NULL;
  g_autofree char *statuses = NULL;
  const char *early, *ok;
  FlowSipp *sa, *sb, *sc;
  guint16 a_relay, c_relay;

  bob.pause_ms = "300";
  alice.pause_ms = PHASE_MS;
  register_party (d, &bob);
  register_party (d, &carol);
  sb = start_callee (d, &bob);
  sc = start_callee (d, &carol);
  sa = start_caller (d, &alice, "bob");
  a_relay = wait_port_file ("a");
  c_relay = wait_port_file ("c");
  report = probe_two (alice.rtp_port, a_relay, SSRC_ALICE, carol.rtp_port, c_relay, SSRC_CAROL);
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  c = finish (sc, "carol");

  assert_error_acked (b);
  statuses = invite_statuses (a);
  g_assert_cmpstr (statuses, ==, "183 181 180 200");
  early = require_response (a->received, 183, "INVITE", 0);
  ok = require_response (a->received, 200, "INVITE", 0);
  g_assert_cmpuint (assert_relay_sdp (early, bob.rtp_port), ==, a_relay);
  g_assert_cmpuint (assert_relay_sdp (ok, carol.rtp_port), ==, a_relay);
  assert_heard (report, carol.rtp_port, c_relay, SSRC_ALICE);
  assert_heard (report, alice.rtp_port, a_relay, SSRC_CAROL);
  assert_cdr (d, a, "alice", "bob", 200, "caller");
  flow_daemon_stop (d);
}

/* ---- forwarding on no answer (flow 11) ------------------------------------------------------ */

/* bob only rings; after the no-answer time (his own or the core's) he gets
 * a CANCEL and carol the call. Returns how long bob rang (ms). */
static gint64
run_no_answer_forward (FlowDaemon *d)
{
  Party bob = party ("bob", "call-uas-ring.xml", "b");
  Party carol = party ("carol", "call-uas.xml", "c");
  Party alice = party ("alice", "feat-uac.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  g_autofree char *statuses = NULL;
  const char *b_inv, *cancel, *c_inv, *ok;
  FlowSipp *sa, *sb, *sc;

  carol.pause_ms = "500";        /* carol rings a little before she answers */
  alice.pause_ms = "300";
  register_party (d, &bob);
  register_party (d, &carol);
  sb = start_callee (d, &bob);
  sc = start_callee (d, &carol);
  sa = start_caller (d, &alice, "bob");
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  c = finish (sc, "carol");

  assert_cancelled (b);
  /* alice hears bob ring, the forwarding, carol ring, carol's answer. */
  statuses = invite_statuses (a);
  g_assert_cmpstr (statuses, ==, "180 181 180 200");
  c_inv = require_msg (c->received, "INVITE ", 0);
  assert_invite_from (c_inv, "alice", &carol);
  assert_diversions (c_inv, "<sip:bob@pbx.test>;reason=no-answer;counter=1", NULL);
  ok = require_response (a->received, 200, "INVITE", 0);
  assert_relay_sdp (ok, carol.rtp_port);
  require_msg (c->received, "BYE ", 0);
  assert_cdr (d, a, "alice", "bob", 200, "caller");

  b_inv = require_msg (b->received, "INVITE ", 0);
  cancel = require_msg (b->received, "CANCEL ", 0);
  return (time_of (b->received, b->received_us, cancel) -
          time_of (b->received, b->received_us, b_inv)) / 1000;
}

/* bob's own forward-no-answer-after (2 s), well before the core's 30 s. */
static void
test_forward_no_answer_after (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob",
                                           "forward-no-answer = carol\n"
                                           "forward-no-answer-after = 2", NULL);
  gint64 rang = run_no_answer_forward (d);

  flow_note ("bob rang %" G_GINT64_FORMAT " ms", rang);
  /* g_timeout_add_seconds may fire up to a second late. */
  g_assert_cmpint (rang, >=, 1500);
  g_assert_cmpint (rang, <=, 4000);
  flow_daemon_stop (d);
}

/* No forward-no-answer-after: the core's no-answer-timeout ends bob's
 * ringing, and the call goes to carol instead of failing 480. */
static void
test_forward_no_answer_timeout (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("no-answer-timeout = 2", "bob",
                                           "forward-no-answer = sip:carol@pbx.test", NULL);
  gint64 rang = run_no_answer_forward (d);

  flow_note ("bob rang %" G_GINT64_FORMAT " ms", rang);
  g_assert_cmpint (rang, >=, 1500);
  g_assert_cmpint (rang, <=, 4000);
  flow_daemon_stop (d);
}

/* ---- when forwarding fails -------------------------------------------------------------------- */

/* bob busy → carol, who is busy too and forwards nowhere: alice gets a
 * final 486, not silence. */
static void
test_forward_target_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  Party bob = party ("bob", "call-uas-busy.xml", "b");
  Party carol = party ("carol", "call-uas-busy.xml", "c");
  Party alice = party ("alice", "feat-uac-fail.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  FlowSipp *sa, *sb, *sc;

  register_party (d, &bob);
  register_party (d, &carol);
  sb = start_callee (d, &bob);
  sc = start_callee (d, &carol);
  sa = start_caller (d, &alice, "bob");
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  c = finish (sc, "carol");

  g_assert_cmpint (caller_final (a), ==, 486);
  g_assert_cmpuint (count_responses (a->received, 181, "INVITE"), ==, 1);
  assert_error_acked (b);
  assert_error_acked (c);
  assert_diversions (require_msg (c->received, "INVITE ", 0),
                     "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  assert_cdr (d, a, "alice", "bob", 486, "callee");
  flow_daemon_stop (d);
}

/* bob busy, but carol (his forward-busy) is not registered: the forward is
 * impossible, so alice gets bob's own 486 — and no 181 promising one. */
static void
test_forward_target_unregistered (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  Party bob = party ("bob", "call-uas-busy.xml", "b");
  Party alice = party ("alice", "feat-uac-fail.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  FlowSipp *sa, *sb;

  register_party (d, &bob);
  sb = start_callee (d, &bob);
  sa = start_caller (d, &alice, "bob");
  a = finish (sa, "alice");
  b = finish (sb, "bob");

  g_assert_cmpint (caller_final (a), ==, 486);
  g_assert_cmpuint (count_responses (a->received, 181, "INVITE"), ==, 0);
  assert_error_acked (b);
  assert_cdr (d, a, "alice", "bob", 486, "callee");
  flow_daemon_stop (d);
}

/* ---- loops and chains ------------------------------------------------------------------------- */

/* bob and carol forward to each other on busy, both busy: the loop guard
 * stops at carol, alice gets 486, and bob is rung once. Both callees may
 * take a second call (-m 2) and wait 3 s for it, so a runaway loop would
 * show as a second INVITE. */
static void
test_forward_loop (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol",
                                           "carol", "forward-busy = bob", NULL);
  Party bob = party ("bob", "call-uas-busy.xml", "b");
  Party carol = party ("carol", "call-uas-busy.xml", "c");
  Party alice = party ("alice", "feat-uac-fail.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  FlowSipp *sa, *sb, *sc;

  bob.calls = carol.calls = "2";
  bob.timeout = carol.timeout = "3s";
  register_party (d, &bob);
  register_party (d, &carol);
  sb = start_callee (d, &bob);
  sc = start_callee (d, &carol);
  sa = start_caller (d, &alice, "bob");
  a = finish (sa, "alice");
  b = collect (sb);
  c = collect (sc);

  g_assert_cmpint (caller_final (a), ==, 486);
  g_assert_cmpuint (count_responses (a->received, 181, "INVITE"), ==, 1);   /* bob → carol only */
  g_assert_cmpuint (count_msgs (b->received, "INVITE "), ==, 1);
  g_assert_cmpuint (count_msgs (c->received, "INVITE "), ==, 1);
  assert_error_acked (b);
  assert_error_acked (c);
  assert_cdr (d, a, "alice", "bob", 486, "callee");
  flow_daemon_stop (d);
}

/* bob → carol → dave, both on busy: dave's INVITE carries both
 * diversions, the newest (carol's, counter=2) first. */
static void
test_forward_chain (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol",
                                           "carol", "forward-busy = dave", NULL);
  Party bob = party ("bob", "call-uas-busy.xml", "b");
  Party carol = party ("carol", "call-uas-busy.xml", "c");
  Party dave = party ("dave", "call-uas.xml", "d");
  Party alice = party ("alice", "feat-uac.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL, dv = NULL;
  g_autofree char *statuses = NULL;
  const char *dave_inv;
  FlowSipp *sa, *sb, *sc, *sd;

  alice.pause_ms = "300";
  register_party (d, &bob);
  register_party (d, &carol);
  register_party (d, &dave);
  sb = start_callee (d, &bob);
  sc = start_callee (d, &carol);
  sd = start_callee (d, &dave);
  sa = start_caller (d, &alice, "bob");
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  c = finish (sc, "carol");
  dv = finish (sd, "dave");

  statuses = invite_statuses (a);
  g_assert_cmpstr (statuses, ==, "181 181 180 200");
  assert_diversions (require_msg (c->received, "INVITE ", 0),
                     "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  dave_inv = require_msg (dv->received, "INVITE ", 0);
  assert_invite_from (dave_inv, "alice", &dave);
  assert_diversions (dave_inv, "<sip:carol@pbx.test>;reason=user-busy;counter=2",
                     "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  require_msg (dv->received, "BYE ", 0);
  assert_cdr (d, a, "alice", "bob", 200, "caller");
  flow_daemon_stop (d);
}

/* The same chain with max-diversions = 1: it stops at carol, whose 486
 * alice gets; dave is never rung (his SIPp waits 2 s in vain). */
static void
test_forward_max_diversions (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("max-diversions = 1", "bob", "forward-busy = carol",
                                           "carol", "forward-busy = dave", NULL);
  Party bob = party ("bob", "call-uas-busy.xml", "b");
  Party carol = party ("carol", "call-uas-busy.xml", "c");
  Party dave = party ("dave", "call-uas.xml", "d");
  Party alice = party ("alice", "feat-uac-fail.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL, dv = NULL;
  FlowSipp *sa, *sb, *sc, *sd;

  dave.timeout = "2s";
  register_party (d, &bob);
  register_party (d, &carol);
  register_party (d, &dave);
  sb = start_callee (d, &bob);
  sc = start_callee (d, &carol);
  sd = start_callee (d, &dave);
  sa = start_caller (d, &alice, "bob");
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  c = finish (sc, "carol");
  dv = collect (sd);

  g_assert_cmpint (caller_final (a), ==, 486);
  g_assert_cmpuint (count_responses (a->received, 181, "INVITE"), ==, 1);
  assert_diversions (require_msg (c->received, "INVITE ", 0),
                     "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  assert_error_acked (c);
  g_assert_cmpuint (dv->received->len, ==, 0);
  assert_cdr (d, a, "alice", "bob", 486, "callee");
  flow_daemon_stop (d);
}

/* ---- call waiting (flow 13) -------------------------------------------------------------------- */

/* bob is in a call with alice when carol calls. His phone gets the second
 * INVITE, holds alice (re-INVITE a=sendonly, which tandem relays to her),
 * answers carol, and later resumes alice (see feat-uas-waiting.xml for the
 * timing). RTP is probed in each phase:
 *   1. alice ↔ bob (carol's call rings meanwhile);
 *   2. bob ↔ carol; alice on hold: her RTP does not reach bob, his (music
 *      on hold: he is the one sending) reaches her;
 *   3. after the resume, alice ↔ bob again. */
static void
test_waiting_hold_and_answer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, NULL);
  Party bob = party ("bob", "feat-uas-waiting.xml", "b");
  Party alice = party ("alice", "feat-uac-held.xml", "a");
  Party carol = party ("carol", "feat-uac.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  g_auto (GStrv) talk = NULL, waiting = NULL, resumed = NULL;
  g_autofree char *carol_statuses = NULL;
  const char *b_inv2, *a_hold, *a_resume;
  guint16 a_relay, b_relay, b2_relay, c_relay;
  FlowSipp *sa, *sb, *sc;

  bob.calls = "2";
  bob.timeout = "25s";
  alice.timeout = "25s";
  alice.pause_ms = PHASE_MS;
  carol.pause_ms = PHASE_MS;
  register_party (d, &bob);
  sb = start_callee (d, &bob);
  sa = start_caller (d, &alice, "bob");
  a_relay = wait_port_file ("a");
  b_relay = wait_port_file ("b");
  sc = start_caller (d, &carol, "bob");
  {
    ProbeEndpoint eps[] = { { alice.rtp_port, a_relay, SSRC_ALICE },
                            { bob.rtp_port, b_relay, SSRC_BOB } };
    talk = run_probe (eps, G_N_ELEMENTS (eps));
  }
  wait_port_file ("a-held");
  b2_relay = wait_port_file ("b2");
  c_relay = wait_port_file ("c");
  {
    ProbeEndpoint eps[] = { { alice.rtp_port, a_relay, SSRC_ALICE },
                            { bob.rtp_port, b_relay, SSRC_BOB },
                            { bob.rtp_port2, b2_relay, SSRC_BOB2 },
                            { carol.rtp_port, c_relay, SSRC_CAROL } };
    waiting = run_probe (eps, G_N_ELEMENTS (eps));
  }
  wait_port_file ("a-resumed");
  {
    ProbeEndpoint eps[] = { { alice.rtp_port, a_relay, SSRC_ALICE },
                            { bob.rtp_port, b_relay, SSRC_BOB } };
    resumed = run_probe (eps, G_N_ELEMENTS (eps));
  }
  c = finish (sc, "carol");
  a = finish (sa, "alice");
  b = finish (sb, "bob");

  /* Call waiting is on: bob's phone got carol's INVITE. */
  g_assert_cmpuint (count_msgs (b->received, "INVITE "), ==, 2);
  b_inv2 = require_msg (b->received, "INVITE ", 1);
  carol_statuses = invite_statuses (c);
  g_assert_cmpstr (carol_statuses, ==, "180 200");      /* it rang while bob talked */
  assert_invite_from (b_inv2, "carol", &bob);
  g_assert_cmpuint (assert_relay_sdp (b_inv2, carol.rtp_port), ==, b2_relay);
  g_assert_cmpuint (assert_relay_sdp (require_response (c->received, 200, "INVITE", 0),
                                      bob.rtp_port2), ==, c_relay);
  /* bob's hold reached alice as tandem's re-INVITE, on her relay port. */
  a_hold = require_msg (a->received, "INVITE ", 0);
  assert_sdp_has (a_hold, "a=sendonly");
  g_assert_cmpuint (assert_relay_sdp (a_hold, bob.rtp_port), ==, a_relay);
  a_resume = require_msg (a->received, "INVITE ", 1);
  assert_sdp_has (a_resume, "a=sendrecv");
  g_assert_cmpuint (assert_relay_sdp (a_resume, bob.rtp_port), ==, a_relay);
  assert_sdp_has (require_response (b->received, 200, "INVITE", 0), "a=recvonly");

  /* 1. Talking. */
  assert_heard (talk, bob.rtp_port, b_relay, SSRC_ALICE);
  assert_heard (talk, alice.rtp_port, a_relay, SSRC_BOB);
  /* 2. alice held, bob with carol; no crosstalk between the calls. */
  assert_heard (waiting, bob.rtp_port2, b2_relay, SSRC_CAROL);
  assert_heard (waiting, carol.rtp_port, c_relay, SSRC_BOB2);
  assert_not_heard (waiting, bob.rtp_port, SSRC_ALICE);
  assert_heard (waiting, alice.rtp_port, a_relay, SSRC_BOB);
  assert_not_heard (waiting, carol.rtp_port, SSRC_ALICE);
  assert_not_heard (waiting, carol.rtp_port, SSRC_BOB);
  assert_not_heard (waiting, bob.rtp_port2, SSRC_ALICE);
  assert_not_heard (waiting, alice.rtp_port, SSRC_CAROL);
  /* 3. Resumed. */
  assert_heard (resumed, bob.rtp_port, b_relay, SSRC_ALICE);
  assert_heard (resumed, alice.rtp_port, a_relay, SSRC_BOB);

  assert_cdr (d, a, "alice", "bob", 200, "caller");
  assert_cdr (d, c, "carol", "bob", 200, "caller");
  flow_daemon_stop (d);
}

/* bob (registered, running his scenario) answers alice's call, which stays
 * up for 3 s in the background; returns once it is answered. */
static void
start_busy_bob (FlowDaemon *d, Party *bob, Party *alice, FlowSipp **sb, FlowSipp **sa)
{
  register_party (d, bob);
  *sb = start_callee (d, bob);
  alice->pause_ms = "3000";
  *sa = start_caller (d, alice, "bob");
  wait_port_file ("a");
}

/* call-waiting = false: a user in a call is busy; carol gets 486 at once,
 * and bob's phone never sees her INVITE. */
static void
test_waiting_off_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "call-waiting = false", NULL);
  Party bob = party ("bob", "call-uas.xml", "b");
  Party alice = party ("alice", "feat-uac.xml", "a");
  Party carol = party ("carol", "feat-uac-fail.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  FlowSipp *sa, *sb;

  bob.calls = "2";               /* would take carol's call too, if it came */
  bob.timeout = "6s";
  start_busy_bob (d, &bob, &alice, &sb, &sa);
  c = finish (start_caller (d, &carol, "bob"), "carol");
  a = finish (sa, "alice");
  b = collect (sb);

  g_assert_cmpint (caller_final (c), ==, 486);
  g_assert_cmpuint (count_responses (c->received, 181, "INVITE"), ==, 0);
  g_assert_cmpuint (count_msgs (b->received, "INVITE "), ==, 1);
  require_msg (b->received, "BYE ", 0);
  assert_cdr (d, c, "carol", "bob", 486, "tandem");
  assert_cdr (d, a, "alice", "bob", 200, "caller");
  flow_daemon_stop (d);
}

/* call-waiting = false and forward-busy = dave: carol's call goes to dave. */
static void
test_waiting_off_forward_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "call-waiting = false\n"
                                                         "forward-busy = dave", NULL);
  Party bob = party ("bob", "call-uas.xml", "b");
  Party dave = party ("dave", "call-uas.xml", "d");
  Party alice = party ("alice", "feat-uac.xml", "a");
  Party carol = party ("carol", "feat-uac.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL, dv = NULL;
  g_autofree char *statuses = NULL;
  const char *dave_inv;
  FlowSipp *sa, *sb, *sd;

  bob.calls = "2";
  bob.timeout = "6s";
  carol.pause_ms = "300";
  register_party (d, &dave);
  sd = start_callee (d, &dave);
  start_busy_bob (d, &bob, &alice, &sb, &sa);
  c = finish (start_caller (d, &carol, "bob"), "carol");
  dv = finish (sd, "dave");
  a = finish (sa, "alice");
  b = collect (sb);

  statuses = invite_statuses (c);
  g_assert_cmpstr (statuses, ==, "181 180 200");
  dave_inv = require_msg (dv->received, "INVITE ", 0);
  assert_invite_from (dave_inv, "carol", &dave);
  assert_diversions (dave_inv, "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  g_assert_cmpuint (count_msgs (b->received, "INVITE "), ==, 1);
  assert_cdr (d, c, "carol", "bob", 200, "caller");
  assert_cdr (d, a, "alice", "bob", 200, "caller");
  flow_daemon_stop (d);
}

/* ---- hold (flow 12) ---------------------------------------------------------------------------- */

/* One way to hold a call: what alice offers, what bob answers, what each
 * must see, and which direction the relay forwards during the hold. */
typedef struct {
  const char *hold_addr, *hold_attr;  /* alice's offer: c= address and an a= line */
  const char *answer_attr;            /* bob's answer */
  const char *bob_sees;               /* a line of the offer bob gets */
  const char *alice_sees;             /* a line of the answer alice gets */
  gboolean alice_to_bob;              /* the holder's RTP reaches the held party */
} HoldCase;

/* alice (the holder) calls bob, holds him, resumes; RTP probed before,
 * during and after the hold. bob's RTP must never reach alice while held. */
static void
run_hold (const HoldCase *hc)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, NULL);
  Party bob = party ("bob", "feat-uas-held.xml", "b");
  Party alice = party ("alice", "feat-uac-hold.xml", "a");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) before = NULL, held = NULL, after = NULL;
  gboolean zero = strcmp (hc->hold_addr, "0.0.0.0") == 0;
  const char *b_hold, *b_resume, *a_hold_ok, *a_resume_ok;
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  bob.answer_attr = hc->answer_attr;
  alice.hold_addr = hc->hold_addr;
  alice.hold_attr = hc->hold_attr;
  alice.pause_ms = PHASE_MS;
  register_party (d, &bob);
  sb = start_callee (d, &bob);
  sa = start_caller (d, &alice, "bob");
  a_relay = wait_port_file ("a");
  b_relay = wait_port_file ("b");
  before = probe_two (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  wait_port_file ("a-held");
  held = probe_two (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  wait_port_file ("a-resumed");
  after = probe_two (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  a = finish (sa, "alice");
  b = finish (sb, "bob");

  /* The hold reached bob rewritten onto tandem (c= kept if 0.0.0.0),
   * the same relay port, the direction kept. */
  b_hold = require_msg (b->received, "INVITE ", 1);
  assert_sdp_has (b_hold, hc->bob_sees);
  g_assert_cmpuint (assert_relay_sdp_at (b_hold, alice.rtp_port, zero), ==, b_relay);
  a_hold_ok = require_response (a->received, 200, "INVITE", 1);
  assert_sdp_has (a_hold_ok, hc->alice_sees);
  g_assert_cmpuint (assert_relay_sdp (a_hold_ok, bob.rtp_port), ==, a_relay);
  /* The resume. */
  b_resume = require_msg (b->received, "INVITE ", 2);
  assert_sdp_has (b_resume, "a=sendrecv");
  g_assert_cmpuint (assert_relay_sdp (b_resume, alice.rtp_port), ==, b_relay);
  a_resume_ok = require_response (a->received, 200, "INVITE", 2);
  assert_sdp_has (a_resume_ok, "a=sendrecv");
  g_assert_cmpuint (assert_relay_sdp (a_resume_ok, bob.rtp_port), ==, a_relay);
  /* tandem's SDP versions, per leg. */
  assert_sdp_versioned (require_msg (b->received, "INVITE ", 0), b_hold);
  assert_sdp_versioned (b_hold, b_resume);
  assert_sdp_versioned (require_response (a->received, 200, "INVITE", 0), a_hold_ok);
  assert_sdp_versioned (a_hold_ok, a_resume_ok);

  assert_heard (before, bob.rtp_port, b_relay, SSRC_ALICE);
  assert_heard (before, alice.rtp_port, a_relay, SSRC_BOB);
  assert_not_heard (held, alice.rtp_port, SSRC_BOB);
  if (hc->alice_to_bob)
    assert_heard (held, bob.rtp_port, b_relay, SSRC_ALICE);
  else
    assert_not_heard (held, bob.rtp_port, SSRC_ALICE);
  assert_heard (after, bob.rtp_port, b_relay, SSRC_ALICE);
  assert_heard (after, alice.rtp_port, a_relay, SSRC_BOB);
  assert_cdr (d, a, "alice", "bob", 200, "caller");
  flow_daemon_stop (d);
}

/* a=sendonly: alice sends (music on hold from her phone), bob is not heard. */
static void
test_hold_sendonly (void)
{
  static const HoldCase hc = { "127.0.0.1", "a=sendonly", "a=recvonly", "a=sendonly",
                               "a=recvonly", TRUE };
  run_hold (&hc);
}

/* a=inactive: nothing either way. */
static void
test_hold_inactive (void)
{
  static const HoldCase hc = { "127.0.0.1", "a=inactive", "a=inactive", "a=inactive",
                               "a=inactive", FALSE };
  run_hold (&hc);
}

/* RFC 2543 hold, c=0.0.0.0 (and no direction: a harmless a=ptime line in
 * its place): alice must not be sent to; bob sees c=0.0.0.0 and answers
 * sendrecv, and alice's RTP may still reach him. */
static void
test_hold_zero_address (void)
{
  static const HoldCase hc = { "0.0.0.0", "a=ptime:20", "a=sendrecv", "c=IN IP4 0.0.0.0",
                               "a=sendrecv", TRUE };
  run_hold (&hc);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/features/forward/busy", test_forward_busy);
  flow_add_test ("/features/forward/busy-late-offer", test_forward_busy_late_offer);
  flow_add_test ("/features/forward/busy-after-early-media", test_forward_busy_after_early_media);
  flow_add_test ("/features/forward/no-answer-after", test_forward_no_answer_after);
  flow_add_test ("/features/forward/no-answer-timeout", test_forward_no_answer_timeout);
  flow_add_test ("/features/forward/target-busy", test_forward_target_busy);
  flow_add_test ("/features/forward/target-unregistered", test_forward_target_unregistered);
  flow_add_test ("/features/forward/loop", test_forward_loop);
  flow_add_test ("/features/forward/chain", test_forward_chain);
  flow_add_test ("/features/forward/max-diversions", test_forward_max_diversions);
  flow_add_test ("/features/waiting/hold-and-answer", test_waiting_hold_and_answer);
  flow_add_test ("/features/waiting/off-busy", test_waiting_off_busy);
  flow_add_test ("/features/waiting/off-forward-busy", test_waiting_off_forward_busy);
  flow_add_test ("/features/hold/sendonly", test_hold_sendonly);
  flow_add_test ("/features/hold/inactive", test_hold_inactive);
  flow_add_test ("/features/hold/zero-address", test_hold_zero_address);
  return g_test_run ();
}
