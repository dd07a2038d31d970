/* Call flows: alice calls bob through a running tandem, both ends played by
 * SIPp (call-uac*.xml for alice, call-uas*.xml for bob), media by rtp-probe.
 *
 * SIPp asserts the order and status codes of the messages; the checks here
 * read what each side actually received (SIPp's message logs): that the two
 * legs are separate dialogs, that every SDP points at tandem's relay, that
 * CSeq numbers follow RFC 3261, that RTP crosses the relay both ways and
 * strangers' packets do not, and the CDR each call leaves in the store.
 * Each case starts its own daemon (see flow-harness.h). */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "flow-harness.h"

/* The relay range of these tests: below the kernel's ephemeral ports, so
 * that the ports the harness picks for probes never collide with it. */
#define MEDIA_MIN 20000
#define MEDIA_MAX 29999
#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 20000-29999\n"
#define FILE_TIMEOUT_MS 10000
#define CDR_TIMEOUT_MS 5000

/* RTP probe: packets per side, and the share that must arrive. */
#define PROBE_PACKETS 50
#define PROBE_MIN_RECEIVED 45
#define SSRC_ALICE 0xA11CEu
#define SSRC_BOB 0xB0Bu
#define SSRC_STRANGER_A 0xBAD1u
#define SSRC_STRANGER_B 0xBAD2u

/* ---- tandem --------------------------------------------------------------------- */

/* tandem with our relay range and the given [calls] lines. */
static FlowDaemon *
start_tandem (const char *calls)
{
  g_autofree char *extra = g_strdup_printf (MEDIA_CONFIG "\n[calls]\n%s\n", calls ? calls : "");
  return flow_daemon_start (extra);
}

static char *
port_str (guint16 port)
{
  return g_strdup_printf ("%u", port);
}

/* Registers bob's Contact at 127.0.0.1:port (where a bob scenario will run). */
static void
register_bob (FlowDaemon *d, guint16 port)
{
  g_autofree char *p = port_str (port);
  g_autoptr (FlowRun) run = flow_sipp (d, "register.xml", "-au", "bob", "-ap", "bob-secret",
                                       "-key", "aor", "bob", "-key", "contact_user", "bob",
                                       "-key", "expires", "3600", "-p", p, NULL);
  g_assert_cmpint (flow_msg_status (flow_run_last_received (run)), ==, 200);
}

/* What one side of the call is told: its scenario's -d pause, the RTP port
 * it advertises, the file its relay port goes to, bob's codec. */
typedef struct {
  const char *scenario;
  guint16 sip_port;      /* bob: the registered port; alice: 0 (any) */
  guint16 rtp_port;
  const char *side;      /* "a", "b", "b2": the .port file */
  const char *pause_ms;
  const char *pt, *codec;
} Party;

/* Starts a bob scenario in the background on its registered port. */
static FlowSipp *
start_bob (FlowDaemon *d, const Party *p)
{
  g_autofree char *sip = port_str (p->sip_port), *rtp = port_str (p->rtp_port);

  return flow_sipp_start (d, p->scenario, "-p", sip, "-key", "rtp_port", rtp,
                          "-key", "side", p->side, "-key", "pt", p->pt ? p->pt : "8",
                          "-key", "codec", p->codec ? p->codec : "PCMA",
                          "-d", p->pause_ms ? p->pause_ms : "0", NULL);
}

/* alice (password `password`) calls `callee`, in the background. */
static FlowSipp *
start_alice_as (FlowDaemon *d, const Party *p, const char *callee, const char *password)
{
  g_autofree char *rtp = port_str (p->rtp_port);
  g_autofree char *auth_uri = g_strdup_printf ("%s@pbx.test", callee);

  /* The digest uri must be the Request-URI's (the harness's default is the
   * registrar's); a later -auth_uri wins. */
  return flow_sipp_start (d, p->scenario, "-au", "alice", "-ap", password,
                          "-auth_uri", auth_uri, "-key", "callee", callee,
                          "-key", "rtp_port", rtp, "-key", "side", p->side ? p->side : "a",
                          "-d", p->pause_ms ? p->pause_ms : "0", NULL);
}

static FlowSipp *
start_alice (FlowDaemon *d, const Party *p, const char *callee)
{
  return start_alice_as (d, p, callee, "alice-secret");
}

/* Collects a run and asserts SIPp saw the scenario through. */
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

/* ---- reading messages ------------------------------------------------------------- */

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

/* The tag parameter of a From/To value; NULL without one. */
static char *
tag_of (const char *value)
{
  const char *close = strchr (value, '>');
  const char *hit = strstr (close ? close : value, ";tag=");
  if (!hit)
    return NULL;
  hit += strlen (";tag=");
  return g_strndup (hit, strcspn (hit, ";, \t"));
}

static char *
header_tag (const char *msg, const char *name)
{
  g_autofree char *value = header (msg, name);
  return tag_of (value);
}

static guint64
cseq_number (const char *msg)
{
  g_autofree char *cseq = header (msg, "CSeq");
  return g_ascii_strtoull (cseq, NULL, 10);
}

static char *
cseq_method (const char *msg)
{
  g_autofree char *cseq = header (msg, "CSeq");
  const char *space = strchr (cseq, ' ');
  g_assert_nonnull (space);
  return g_strdup (g_strstrip ((char *) space));
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

static gboolean
sdp_has (const char *msg, const char *line)
{
  g_autofree char *found = sdp_line (msg, line);
  return found && strcmp (found, line) == 0;
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

/* "0 8 101" from "m=audio 20000 RTP/AVP 0 8 101". */
static char *
sdp_formats (const char *msg)
{
  g_autofree char *m = sdp_line (msg, "m=audio ");
  const char *avp = m ? strstr (m, "RTP/AVP ") : NULL;
  g_assert_nonnull (avp);
  return g_strdup (avp + strlen ("RTP/AVP "));
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

/* An SDP tandem wrote: its own o=, c= and m= on the relay, not `not_port`
 * (the port of the endpoint whose SDP it rewrote). */
static guint16
assert_relay_sdp (const char *msg, guint16 not_port)
{
  g_autofree char *o = sdp_line (msg, "o=");
  guint16 port = sdp_audio_port (msg);

  g_assert_nonnull (o);
  g_assert_true (g_str_has_prefix (o, "o=tandem "));
  g_assert_true (sdp_has (msg, "c=IN IP4 127.0.0.1"));
  g_assert_cmpuint (port, >=, MEDIA_MIN);
  g_assert_cmpuint (port, <=, MEDIA_MAX);
  g_assert_cmpuint (port, !=, not_port);
  return port;
}

/* Milliseconds between two messages of a run (sent or received). */
static gint64
elapsed_ms (gint64 from_us, gint64 to_us)
{
  g_assert_cmpint (from_us, >, 0);
  g_assert_cmpint (to_us, >, 0);
  return (to_us - from_us) / 1000;
}

static gint64
time_of (const GPtrArray *msgs, const GArray *times, const char *msg)
{
  for (guint i = 0; i < msgs->len; i++)
    if (g_ptr_array_index (msgs, i) == msg)
      return g_array_index (times, gint64, i);
  g_assert_not_reached ();
}

/* ---- files written by the scenarios ---------------------------------------------- */

/* The relay port a scenario wrote to <side>.port (see the scenarios'
 * <exec>); waits for it, bounded. */
static guint16
wait_port_file (const char *side)
{
  g_autofree char *name = g_strdup_printf ("%s.port", side);
  g_autofree char *path = g_build_filename (flow_case_dir (), name, NULL);
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

/* ---- CDRs -------------------------------------------------------------------------- */

typedef struct {
  char *caller, *callee, *hangup, *reason;
  int status;
  gboolean answered;
  double started_at, answered_at, ended_at;   /* Unix seconds; answered_at 0 if NULL */
} Cdr;

static void
cdr_clear (Cdr *cdr)
{
  g_free (cdr->caller);
  g_free (cdr->callee);
  g_free (cdr->hangup);
  g_free (cdr->reason);
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
                     "SELECT caller, callee, status, hangup, reason, answered_at IS NOT NULL,"
                     " started_at, answered_at, ended_at FROM cdrs WHERE call_id = ?",
                     -1, &st, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (st, 1, call_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW) {
    rows++;
    cdr_clear (out);
    out->caller = column_text (st, 0);
    out->callee = column_text (st, 1);
    out->status = sqlite3_column_int (st, 2);
    out->hangup = column_text (st, 3);
    out->reason = column_text (st, 4);
    out->answered = sqlite3_column_int (st, 5);
    out->started_at = sqlite3_column_double (st, 6);
    out->answered_at = sqlite3_column_double (st, 7);
    out->ended_at = sqlite3_column_double (st, 8);
  }
  sqlite3_finalize (st);
  sqlite3_close (db);
  if (rows > 1)
    g_printerr ("flow: %u CDR rows for call %s\n", rows, call_id);
  g_assert_cmpuint (rows, <=, 1);
  return rows == 1;
}

/* Waits (bounded) for the call's CDR: it is written when the last leg is gone. */
static void
cdr_wait (FlowDaemon *d, const FlowRun *alice, Cdr *out)
{
  const char *invite = require_msg (alice->sent, "INVITE ", 0);
  g_autofree char *call_id = header (invite, "Call-ID");
  gint64 deadline = g_get_monotonic_time () + CDR_TIMEOUT_MS * 1000;

  while (!cdr_read (d, call_id, out)) {
    if (g_get_monotonic_time () > deadline) {
      g_printerr ("flow: no CDR for call %s within %d ms\n", call_id, CDR_TIMEOUT_MS);
      g_assert_not_reached ();
    }
    g_usleep (50 * 1000);
  }
  flow_note ("CDR %s: %s -> %s status %d hangup %s reason %s answered %d", call_id, out->caller,
             out->callee, out->status, out->hangup, out->reason ? out->reason : "(null)",
             out->answered);
  g_assert_cmpstr (out->caller, ==, "alice");
  g_assert_cmpstr (out->callee, ==, "bob");
  /* Times in order, and recent (the CDR is this run's). */
  g_assert_cmpfloat (out->started_at, >, g_get_real_time () / 1e6 - 120);
  g_assert_cmpfloat (out->ended_at, >=, out->started_at);
  if (out->answered) {
    g_assert_cmpfloat (out->answered_at, >=, out->started_at);
    g_assert_cmpfloat (out->ended_at, >=, out->answered_at);
  }
}

static void
assert_cdr (FlowDaemon *d, const FlowRun *alice, int status, const char *hangup,
            const char *reason_part)
{
  g_auto (Cdr) cdr = { 0 };

  cdr_wait (d, alice, &cdr);
  g_assert_cmpint (cdr.status, ==, status);
  g_assert_cmpint (cdr.answered, ==, status == 200);
  g_assert_cmpstr (cdr.hangup, ==, hangup);
  if (reason_part) {
    g_assert_nonnull (cdr.reason);
    g_assert_nonnull (strstr (cdr.reason, reason_part));
  }
}

/* ---- RTP probe ------------------------------------------------------------------------ */

typedef struct {
  guint16 bind_port, dest_port;
  guint32 ssrc;
  guint delay_ms;
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
    g_autofree char *spec = g_strdup_printf ("%u:%u:%u:%u", eps[i].bind_port, eps[i].dest_port,
                                             eps[i].ssrc, eps[i].delay_ms);
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

static guint
probe_sent (char **report, guint16 bind_port)
{
  for (guint i = 0; report[i]; i++) {
    guint bind, n;
    if (sscanf (report[i], "sent %u %u", &bind, &n) == 2 && bind == bind_port)
      return n;
  }
  return 0;
}

/* ---- a basic call ------------------------------------------------------------------------ */

/* The two legs as both ends saw them. */
typedef struct {
  FlowRun *alice, *bob;
  guint16 alice_rtp, bob_rtp;
  guint16 bob_sip;          /* the port bob registered */
} Call;

static void
call_clear (Call *c)
{
  g_clear_pointer (&c->alice, flow_run_free);
  g_clear_pointer (&c->bob, flow_run_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Call, call_clear)

/* bob registers and runs bob_scenario; alice runs alice_scenario against him. */
static void
run_call (FlowDaemon *d, const char *alice_scenario, const char *alice_pause,
          const char *bob_scenario, const char *bob_pause, Call *out)
{
  Party bob = { bob_scenario, flow_pick_port (), flow_pick_port (), "b", bob_pause, NULL, NULL };
  Party alice = { alice_scenario, 0, flow_pick_port (), "a", alice_pause, NULL, NULL };
  FlowSipp *b, *a;

  register_bob (d, bob.sip_port);
  b = start_bob (d, &bob);
  a = start_alice (d, &alice, "bob");
  out->alice = finish (a, "alice");
  out->bob = finish (b, "bob");
  out->alice_rtp = alice.rtp_port;
  out->bob_rtp = bob.rtp_port;
  out->bob_sip = bob.sip_port;
}

/* The two dialogs are separate (RFC 3261 B2BUA): B's INVITE has its own
 * Call-ID, tag and branch, names the authenticated caller, one hop less. */
static void
assert_b_invite (const Call *c)
{
  const char *a_inv = require_msg (c->alice->sent, "INVITE ", 1);
  const char *b_inv = require_msg (c->bob->received, "INVITE ", 0);
  g_autofree char *a_cid = header (a_inv, "Call-ID"), *b_cid = header (b_inv, "Call-ID");
  g_autofree char *a_tag = header_tag (a_inv, "From"), *b_tag = header_tag (b_inv, "From");
  g_autofree char *a_branch = via_branch (a_inv), *b_branch = via_branch (b_inv);
  g_autofree char *from = header (b_inv, "From"), *to = header (b_inv, "To");
  g_autofree char *mf = header (b_inv, "Max-Forwards"), *formats = sdp_formats (b_inv);
  g_auto (GStrv) vias = flow_msg_headers (b_inv, "Via");
  g_autofree char *ruri = g_strdup_printf ("INVITE sip:bob@127.0.0.1:%u", c->bob_sip);

  g_assert_true (g_str_has_prefix (b_inv, ruri));      /* bob's registered Contact */
  g_assert_cmpstr (b_cid, !=, a_cid);
  g_assert_nonnull (b_tag);
  g_assert_cmpstr (b_tag, !=, a_tag);
  g_assert_cmpstr (b_branch, !=, a_branch);
  g_assert_true (g_str_has_prefix (b_branch, "z9hG4bK"));
  g_assert_cmpuint (g_strv_length (vias), ==, 1);     /* not a proxy: A's Via stays behind */
  g_assert_nonnull (strstr (from, "<sip:alice@pbx.test>"));
  g_assert_cmpstr (to, ==, "<sip:bob@pbx.test>");
  g_assert_cmpstr (mf, ==, "69");
  g_assert_cmpstr (formats, ==, "0 8 101");            /* codecs pass through */
  assert_relay_sdp (b_inv, c->alice_rtp);
}

/* alice's side: 100 without a To tag, 180 and 200 with the same tag, the
 * answer rewritten onto the relay. */
static void
assert_a_answer (const Call *c)
{
  const char *b_inv = require_msg (c->bob->received, "INVITE ", 0);
  const char *ok = require_response (c->alice->received, 200, "INVITE", 0);
  const char *ringing = require_response (c->alice->received, 180, "INVITE", 0);
  const char *trying = find_response (c->alice->received, 100, "INVITE", 0);
  g_autofree char *ok_tag = header_tag (ok, "To"), *ring_tag = header_tag (ringing, "To");
  g_autofree char *formats = sdp_formats (ok);
  guint16 a_relay;

  if (trying) {
    g_autofree char *trying_tag = header_tag (trying, "To");
    g_assert_null (trying_tag);
  }
  g_assert_nonnull (ok_tag);
  g_assert_cmpstr (ring_tag, ==, ok_tag);
  g_assert_cmpstr (formats, ==, "8 101");              /* bob's answer */
  a_relay = assert_relay_sdp (ok, c->bob_rtp);
  /* Each leg has its own relay port. */
  g_assert_cmpuint (a_relay, !=, sdp_audio_port (b_inv));
  g_assert_cmpuint (count_responses (c->alice->received, 200, "INVITE"), ==, 1);
}

/* What tandem sent bob after the INVITE: the ACK reuses the INVITE's CSeq
 * number, a BYE takes a higher one; both in the same dialog. */
static void
assert_b_ack (const Call *c)
{
  const char *b_inv = require_msg (c->bob->received, "INVITE ", 0);
  const char *ack = require_msg (c->bob->received, "ACK ", 0);
  g_autofree char *method = cseq_method (ack);
  g_autofree char *inv_cid = header (b_inv, "Call-ID"), *ack_cid = header (ack, "Call-ID");
  g_autofree char *ack_to = header_tag (ack, "To");

  g_assert_cmpstr (method, ==, "ACK");
  g_assert_cmpuint (cseq_number (ack), ==, cseq_number (b_inv));
  g_assert_cmpstr (ack_cid, ==, inv_cid);
  g_assert_nonnull (ack_to);
}

static void
assert_b_bye_from_tandem (const Call *c)
{
  const char *b_inv = require_msg (c->bob->received, "INVITE ", 0);
  const char *bye = require_msg (c->bob->received, "BYE ", 0);
  const char *b_ok = require_response (c->bob->sent, 200, "INVITE", 0);
  g_autofree char *method = cseq_method (bye);
  g_autofree char *inv_cid = header (b_inv, "Call-ID"), *bye_cid = header (bye, "Call-ID");
  g_autofree char *inv_tag = header_tag (b_inv, "From"), *bye_tag = header_tag (bye, "From");
  g_autofree char *bob_tag = header_tag (b_ok, "To"), *bye_to = header_tag (bye, "To");

  g_assert_cmpstr (method, ==, "BYE");
  g_assert_cmpuint (cseq_number (bye), >, cseq_number (b_inv));
  g_assert_cmpstr (bye_cid, ==, inv_cid);
  g_assert_cmpstr (bye_tag, ==, inv_tag);
  g_assert_cmpstr (bye_to, ==, bob_tag);
}

/* alice got a BYE from tandem in her dialog (tandem's tag in From). */
static void
assert_a_bye_from_tandem (const Call *c)
{
  const char *a_inv = require_msg (c->alice->sent, "INVITE ", 1);
  const char *ok = require_response (c->alice->received, 200, "INVITE", 0);
  const char *bye = require_msg (c->alice->received, "BYE ", 0);
  g_autofree char *a_cid = header (a_inv, "Call-ID"), *bye_cid = header (bye, "Call-ID");
  g_autofree char *tandem_tag = header_tag (ok, "To"), *bye_from = header_tag (bye, "From");
  g_autofree char *alice_tag = header_tag (a_inv, "From"), *bye_to = header_tag (bye, "To");

  g_assert_cmpstr (bye_cid, ==, a_cid);
  g_assert_cmpstr (bye_from, ==, tandem_tag);
  g_assert_cmpstr (bye_to, ==, alice_tag);
}

static void
test_basic_bye_from_caller (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };

  run_call (d, "call-uac.xml", "500", "call-uas.xml", "200", &c);
  assert_b_invite (&c);
  assert_a_answer (&c);
  assert_b_ack (&c);
  assert_b_bye_from_tandem (&c);
  require_response (c.alice->received, 200, "BYE", 0);
  assert_cdr (d, c.alice, 200, "caller", NULL);
  flow_daemon_stop (d);
}

static void
test_basic_bye_from_callee (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };

  run_call (d, "call-uac-wait.xml", NULL, "call-uas-hangup.xml", "500", &c);
  assert_b_invite (&c);
  assert_a_answer (&c);
  assert_b_ack (&c);
  assert_a_bye_from_tandem (&c);
  require_response (c.bob->received, 200, "BYE", 0);
  assert_cdr (d, c.alice, 200, "callee", NULL);
  flow_daemon_stop (d);
}

/* ---- RTP through the relay --------------------------------------------------------------- */

/* The message that gave bob tandem's SDP: the INVITE, or with a late offer
 * the ACK. */
static const char *
sdp_to_bob (const FlowRun *bob)
{
  const char *invite = require_msg (bob->received, "INVITE ", 0);
  g_autofree char *body = flow_msg_body (invite);

  return *body ? invite : require_msg (bob->received, "ACK ", 0);
}

/* A call held up for `hold_ms` while rtp-probe plays both ends (and the
 * strangers, if any); returns the probe's report. */
/* The scenarios (and which side waits while the probe runs). */
typedef struct {
  const char *alice, *alice_pause;
  const char *bob, *bob_pause;
} MediaCall;

static const MediaCall plain_call = { "call-uac.xml", "3500", "call-uas.xml", "0" };

static char **
call_with_media (FlowDaemon *d, const MediaCall *how, Call *c, guint16 *a_relay,
                 guint16 *b_relay, gboolean strangers)
{
  Party bob = { how->bob, flow_pick_port (), flow_pick_port (), "b", how->bob_pause, NULL, NULL };
  Party alice = { how->alice, 0, flow_pick_port (), "a", how->alice_pause, NULL, NULL };
  ProbeEndpoint eps[4];
  guint n = 0;
  FlowSipp *a, *b;
  char **report;

  register_bob (d, bob.sip_port);
  b = start_bob (d, &bob);
  a = start_alice (d, &alice, "bob");
  /* Both relay ports are known once alice has ACKed (she writes a.port; in
   * early media, at the 183). */
  *b_relay = wait_port_file ("b");
  *a_relay = wait_port_file ("a");
  eps[n++] = (ProbeEndpoint) { alice.rtp_port, *a_relay, SSRC_ALICE, 0 };
  eps[n++] = (ProbeEndpoint) { bob.rtp_port, *b_relay, SSRC_BOB, 0 };
  if (strangers) {
    /* Late enough that both ends have latched their relay ports. */
    eps[n++] = (ProbeEndpoint) { flow_pick_port (), *a_relay, SSRC_STRANGER_A, 300 };
    eps[n++] = (ProbeEndpoint) { flow_pick_port (), *b_relay, SSRC_STRANGER_B, 300 };
  }
  report = run_probe (eps, n);
  c->alice = finish (a, "alice");
  c->bob = finish (b, "bob");
  c->alice_rtp = alice.rtp_port;
  c->bob_rtp = bob.rtp_port;
  /* The ports the probe used are the ones the SDPs named (for bob: the
   * INVITE's, or with a late offer the ACK's). */
  g_assert_cmpuint (*a_relay, ==, sdp_audio_port (require_response (c->alice->received, 200,
                                                                    "INVITE", 0)));
  g_assert_cmpuint (*b_relay, ==, sdp_audio_port (sdp_to_bob (c->bob)));
  return report;
}

static void
test_rtp_both_ways (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };
  g_auto (GStrv) report = NULL;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &plain_call, &c, &a_relay, &b_relay, FALSE);
  g_assert_cmpuint (probe_sent (report, c.alice_rtp), ==, PROBE_PACKETS);
  g_assert_cmpuint (probe_sent (report, c.bob_rtp), ==, PROBE_PACKETS);
  /* Each side hears the other, from its own relay port, and nothing else. */
  g_assert_cmpuint (probe_received (report, c.bob_rtp, b_relay, SSRC_ALICE), >=, PROBE_MIN_RECEIVED);
  g_assert_cmpuint (probe_received (report, c.alice_rtp, a_relay, SSRC_BOB), >=, PROBE_MIN_RECEIVED);
  g_assert_cmpuint (probe_received (report, c.bob_rtp, 0, 0), ==,
                    probe_received (report, c.bob_rtp, b_relay, SSRC_ALICE));
  g_assert_cmpuint (probe_received (report, c.alice_rtp, 0, 0), ==,
                    probe_received (report, c.alice_rtp, a_relay, SSRC_BOB));
  assert_cdr (d, c.alice, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* Symmetric latching: once a relay port has latched onto its endpoint, a
 * third party sending to it (RTP Bleed) is not forwarded, and gets nothing. */
static void
test_rtp_foreign_source_dropped (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };
  g_auto (GStrv) report = NULL;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &plain_call, &c, &a_relay, &b_relay, TRUE);
  g_assert_cmpuint (probe_received (report, c.bob_rtp, 0, SSRC_STRANGER_A), ==, 0);
  g_assert_cmpuint (probe_received (report, c.alice_rtp, 0, SSRC_STRANGER_B), ==, 0);
  /* The strangers were really sending, and the call still flowed. */
  for (guint i = 0; report[i]; i++) {
    guint bind, n;
    if (sscanf (report[i], "sent %u %u", &bind, &n) == 2)
      g_assert_cmpuint (n, ==, PROBE_PACKETS);
    if (sscanf (report[i], "recv %u", &bind) == 1)
      g_assert_true (bind == c.alice_rtp || bind == c.bob_rtp);   /* strangers heard nothing */
  }
  g_assert_cmpuint (probe_received (report, c.bob_rtp, b_relay, SSRC_ALICE), >=, PROBE_MIN_RECEIVED);
  g_assert_cmpuint (probe_received (report, c.alice_rtp, a_relay, SSRC_BOB), >=, PROBE_MIN_RECEIVED);
  flow_daemon_stop (d);
}

/* Late offer: alice's INVITE has no SDP. bob gets none either, offers in
 * his 200; alice gets that offer rewritten onto the relay and answers in her
 * ACK, which tandem rewrites into its ACK to bob. Media then flows. */
static void
test_late_offer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };
  g_auto (GStrv) report = NULL;
  const char *b_inv, *b_ack, *a_ok;
  g_autofree char *b_body = NULL, *offer_formats = NULL, *answer_formats = NULL;
  guint16 a_relay, b_relay;

  static const MediaCall late = { "call-uac-late.xml", "3500", "call-uas-late.xml", "0" };

  report = call_with_media (d, &late, &c, &a_relay, &b_relay, FALSE);
  b_inv = require_msg (c.bob->received, "INVITE ", 0);
  b_ack = require_msg (c.bob->received, "ACK ", 0);
  a_ok = require_response (c.alice->received, 200, "INVITE", 0);
  b_body = flow_msg_body (b_inv);
  g_assert_cmpstr (b_body, ==, "");
  offer_formats = sdp_formats (a_ok);
  answer_formats = sdp_formats (b_ack);
  g_assert_cmpstr (offer_formats, ==, "8 101");        /* bob's offer */
  g_assert_cmpstr (answer_formats, ==, "8 101");       /* alice's answer */
  g_assert_cmpuint (assert_relay_sdp (a_ok, c.bob_rtp), ==, a_relay);
  g_assert_cmpuint (assert_relay_sdp (b_ack, c.alice_rtp), ==, b_relay);
  g_assert_cmpuint (cseq_number (b_ack), ==, cseq_number (b_inv));
  g_assert_cmpuint (probe_received (report, c.bob_rtp, b_relay, SSRC_ALICE), >=, PROBE_MIN_RECEIVED);
  g_assert_cmpuint (probe_received (report, c.alice_rtp, a_relay, SSRC_BOB), >=, PROBE_MIN_RECEIVED);
  assert_cdr (d, c.alice, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* Early media (a ringback tone from the callee): bob's 183 carries SDP,
 * which reaches alice rewritten onto the relay, and media flows both ways
 * before the answer; the 200 keeps the same relay port. */
static void
test_early_media (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  static const MediaCall early = { "call-uac-early.xml", "200", "call-uas-early.xml", "3500" };
  g_auto (Call) c = { 0 };
  g_auto (GStrv) report = NULL;
  const char *progress, *ok, *a_ok;
  guint16 a_relay, b_relay;

  report = call_with_media (d, &early, &c, &a_relay, &b_relay, FALSE);
  progress = require_response (c.alice->received, 183, "INVITE", 0);
  ok = require_response (c.alice->received, 200, "INVITE", 0);
  g_assert_cmpuint (assert_relay_sdp (progress, c.bob_rtp), ==, a_relay);
  g_assert_cmpuint (sdp_audio_port (ok), ==, a_relay);
  g_assert_cmpuint (probe_received (report, c.bob_rtp, b_relay, SSRC_ALICE), >=, PROBE_MIN_RECEIVED);
  g_assert_cmpuint (probe_received (report, c.alice_rtp, a_relay, SSRC_BOB), >=, PROBE_MIN_RECEIVED);
  /* The probe ran before the 200: this was early media. */
  a_ok = require_response (c.alice->received, 200, "INVITE", 0);
  g_assert_cmpint (elapsed_ms (time_of (c.alice->received, c.alice->received_us, progress),
                               time_of (c.alice->received, c.alice->received_us, a_ok)), >=, 3000);
  assert_cdr (d, c.alice, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* ---- calls that are not answered ------------------------------------------------------------ */

/* alice's final response, and that she ACKed it in its transaction (a
 * check of the scenario's [branch-N] arithmetic). */
static int
alice_final (const FlowRun *alice)
{
  const char *last = NULL, *ack = flow_run_last_sent (alice);
  const char *invite = require_msg (alice->sent, "INVITE ", 1);
  g_autofree char *ack_branch = NULL, *invite_branch = via_branch (invite);

  for (guint i = 0; i < alice->received->len; i++) {
    const char *m = g_ptr_array_index (alice->received, i);
    if (flow_msg_status (m) >= 200)
      last = m;
  }
  g_assert_nonnull (last);
  g_assert_true (g_str_has_prefix (ack, "ACK "));
  ack_branch = via_branch (ack);
  g_assert_cmpstr (ack_branch, ==, invite_branch);
  return flow_msg_status (last);
}

/* tandem ACKed bob's non-2xx final response: same CSeq number and branch
 * as its INVITE (RFC 3261 §17.1.1.3). */
static void
assert_b_error_acked (const FlowRun *bob)
{
  const char *inv = require_msg (bob->received, "INVITE ", 0);
  const char *ack = require_msg (bob->received, "ACK ", 0);
  g_autofree char *inv_branch = via_branch (inv), *ack_branch = via_branch (ack);

  g_assert_cmpuint (cseq_number (ack), ==, cseq_number (inv));
  g_assert_cmpstr (ack_branch, ==, inv_branch);
}

static void
test_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };

  run_call (d, "call-uac-fail.xml", NULL, "call-uas-busy.xml", NULL, &c);
  g_assert_cmpint (alice_final (c.alice), ==, 486);
  assert_b_error_acked (c.bob);
  assert_cdr (d, c.alice, 486, "callee", NULL);
  flow_daemon_stop (d);
}

/* bob received a CANCEL for tandem's INVITE (same branch and CSeq number),
 * and tandem ACKed his 487. */
static void
assert_b_cancelled (const FlowRun *bob)
{
  const char *inv = require_msg (bob->received, "INVITE ", 0);
  const char *cancel = require_msg (bob->received, "CANCEL ", 0);
  g_autofree char *inv_branch = via_branch (inv), *cancel_branch = via_branch (cancel);
  g_autofree char *method = cseq_method (cancel);

  g_assert_cmpstr (method, ==, "CANCEL");
  g_assert_cmpuint (cseq_number (cancel), ==, cseq_number (inv));
  g_assert_cmpstr (cancel_branch, ==, inv_branch);
  require_response (bob->sent, 487, "INVITE", 0);
  assert_b_error_acked (bob);
}

static void
test_cancel (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };

  run_call (d, "call-uac-cancel.xml", "500", "call-uas-ring.xml", NULL, &c);
  require_response (c.alice->received, 200, "CANCEL", 0);
  require_response (c.alice->received, 487, "INVITE", 0);
  g_assert_cmpuint (count_responses (c.alice->received, 200, "INVITE"), ==, 0);
  assert_b_cancelled (c.bob);
  assert_cdr (d, c.alice, 487, "caller", NULL);
  flow_daemon_stop (d);
}

static void
test_no_answer_timeout (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("no-answer-timeout = 2");
  g_auto (Call) c = { 0 };
  const char *invite, *unavailable;
  gint64 waited;

  run_call (d, "call-uac-fail.xml", NULL, "call-uas-ring.xml", NULL, &c);
  g_assert_cmpint (alice_final (c.alice), ==, 480);
  invite = require_msg (c.alice->sent, "INVITE ", 1);
  unavailable = require_response (c.alice->received, 480, "INVITE", 0);
  waited = elapsed_ms (time_of (c.alice->sent, c.alice->sent_us, invite),
                       time_of (c.alice->received, c.alice->received_us, unavailable));
  flow_note ("480 after %" G_GINT64_FORMAT " ms", waited);
  g_assert_cmpint (waited, >=, 1800);
  g_assert_cmpint (waited, <=, 4000);
  assert_b_cancelled (c.bob);
  assert_cdr (d, c.alice, 480, "tandem", "no answer");
  flow_daemon_stop (d);
}

/* ---- session modification ----------------------------------------------------------------- */

/* The offer `offer` (sent by one end) arrived at the other end as `relayed`:
 * rewritten onto that end's relay port, direction kept. */
static void
assert_offer_relayed (const char *relayed, const char *direction, guint16 relay_port,
                      guint16 not_port)
{
  g_assert_true (sdp_has (relayed, direction));
  g_assert_cmpuint (assert_relay_sdp (relayed, not_port), ==, relay_port);
}

static void
test_reinvite_and_update_from_caller (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };
  const char *b_inv, *b_reinv, *b_update, *a_ok, *a_reok, *a_upok;

  run_call (d, "call-uac-reinvite.xml", "300", "call-uas-reinvite.xml", NULL, &c);
  b_inv = require_msg (c.bob->received, "INVITE ", 0);
  b_reinv = require_msg (c.bob->received, "INVITE ", 1);
  b_update = require_msg (c.bob->received, "UPDATE ", 0);
  a_ok = require_response (c.alice->received, 200, "INVITE", 0);
  a_reok = require_response (c.alice->received, 200, "INVITE", 1);
  a_upok = require_response (c.alice->received, 200, "UPDATE", 0);

  /* bob: re-INVITE and UPDATE in the same dialog, new CSeqs, same relay port. */
  g_assert_cmpuint (cseq_number (b_reinv), >, cseq_number (b_inv));
  g_assert_cmpuint (cseq_number (b_update), >, cseq_number (b_reinv));
  assert_offer_relayed (b_reinv, "a=sendonly", sdp_audio_port (b_inv), c.alice_rtp);
  assert_offer_relayed (b_update, "a=inactive", sdp_audio_port (b_inv), c.alice_rtp);
  /* alice: bob's answers, rewritten, each a new SDP version (RFC 3264 §8). */
  assert_offer_relayed (a_reok, "a=recvonly", sdp_audio_port (a_ok), c.bob_rtp);
  assert_offer_relayed (a_upok, "a=inactive", sdp_audio_port (a_ok), c.bob_rtp);
  g_assert_cmpuint (sdp_version (a_reok), >, sdp_version (a_ok));
  g_assert_cmpuint (sdp_version (a_upok), >, sdp_version (a_reok));
  g_assert_cmpuint (sdp_version (b_reinv), >, sdp_version (b_inv));
  assert_cdr (d, c.alice, 200, "caller", NULL);
  flow_daemon_stop (d);
}

static void
test_reinvite_and_update_from_callee (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };
  const char *b_inv, *b_reok, *b_upok, *a_ok, *a_reinv, *a_update;

  run_call (d, "call-uac-answer.xml", "300", "call-uas-reinvite-b.xml", "300", &c);
  b_inv = require_msg (c.bob->received, "INVITE ", 0);
  b_reok = require_response (c.bob->received, 200, "INVITE", 0);
  a_ok = require_response (c.alice->received, 200, "INVITE", 0);
  a_reinv = require_msg (c.alice->received, "INVITE ", 0);

  assert_offer_relayed (a_reinv, "a=sendonly", sdp_audio_port (a_ok), c.bob_rtp);
  assert_offer_relayed (b_reok, "a=recvonly", sdp_audio_port (b_inv), c.alice_rtp);
  g_assert_cmpuint (sdp_version (a_reinv), >, sdp_version (a_ok));
  /* The resume by UPDATE, both ways. */
  a_update = require_msg (c.alice->received, "UPDATE ", 0);
  b_upok = require_response (c.bob->received, 200, "UPDATE", 0);
  assert_offer_relayed (a_update, "a=sendrecv", sdp_audio_port (a_ok), c.bob_rtp);
  assert_offer_relayed (b_upok, "a=sendrecv", sdp_audio_port (b_inv), c.alice_rtp);
  g_assert_cmpuint (sdp_version (a_update), >, sdp_version (a_reinv));
  {
    /* tandem's re-INVITE is in alice's dialog: its tag in From, hers in To. */
    g_autofree char *tandem_tag = header_tag (a_ok, "To"), *from = header_tag (a_reinv, "From");
    g_autofree char *a_cid = header (a_ok, "Call-ID"), *cid = header (a_reinv, "Call-ID");
    g_assert_cmpstr (from, ==, tandem_tag);
    g_assert_cmpstr (cid, ==, a_cid);
  }
  assert_cdr (d, c.alice, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* Both ends offer at once: bob meets tandem's relayed re-INVITE with his
 * own (see call-uas-glare.xml). tandem must refuse bob's with 491 (its
 * own offer to him is pending) and pass bob's 491 back to alice. */
static void
test_glare (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Call) c = { 0 };

  run_call (d, "call-uac-glare.xml", "300", "call-uas-glare.xml", NULL, &c);
  require_response (c.bob->received, 491, "INVITE", 0);
  require_response (c.alice->received, 491, "INVITE", 0);
  assert_cdr (d, c.alice, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* ---- forking ------------------------------------------------------------------------------ */

static void
test_forking (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  Party answers = { "call-uas.xml", flow_pick_port (), flow_pick_port (), "b", "700", NULL, NULL };
  Party rings = { "call-uas-ring.xml", flow_pick_port (), flow_pick_port (), "b2", NULL, NULL, NULL };
  Party alice = { "call-uac.xml", 0, flow_pick_port (), "a", "300", NULL, NULL };
  g_autoptr (FlowRun) a = NULL, b1 = NULL, b2 = NULL;
  FlowSipp *s1, *s2, *sa;
  const char *inv1, *inv2, *a_inv;

  register_bob (d, answers.sip_port);
  register_bob (d, rings.sip_port);
  s1 = start_bob (d, &answers);
  s2 = start_bob (d, &rings);
  sa = start_alice (d, &alice, "bob");
  a = finish (sa, "alice");
  b1 = finish (s1, "bob (answers)");
  b2 = finish (s2, "bob (rings)");

  inv1 = require_msg (b1->received, "INVITE ", 0);
  inv2 = require_msg (b2->received, "INVITE ", 0);
  a_inv = require_msg (a->sent, "INVITE ", 1);
  {
    /* Each branch is a dialog of its own. */
    g_autofree char *cid1 = header (inv1, "Call-ID"), *cid2 = header (inv2, "Call-ID");
    g_autofree char *cida = header (a_inv, "Call-ID");
    g_autofree char *tag1 = header_tag (inv1, "From"), *tag2 = header_tag (inv2, "From");
    g_autofree char *br1 = via_branch (inv1), *br2 = via_branch (inv2);
    g_assert_cmpstr (cid1, !=, cid2);
    g_assert_cmpstr (cid1, !=, cida);
    g_assert_cmpstr (cid2, !=, cida);
    g_assert_cmpstr (tag1, !=, tag2);
    g_assert_cmpstr (br1, !=, br2);
  }
  /* One answer reaches alice; the other branch is cancelled. */
  g_assert_cmpuint (count_responses (a->received, 200, "INVITE"), ==, 1);
  require_msg (b1->received, "ACK ", 0);
  require_msg (b1->received, "BYE ", 0);
  assert_b_cancelled (b2);
  assert_cdr (d, a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* The cancelled branch answers anyway (its 200 crossed the CANCEL): tandem
 * ACKs that late 200 and hangs it up; alice still sees one answer. */
static void
test_forking_late_answer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  Party answers = { "call-uas.xml", flow_pick_port (), flow_pick_port (), "b", "700", NULL, NULL };
  Party late = { "call-uas-answer-late.xml", flow_pick_port (), flow_pick_port (), "b2", NULL,
                 NULL, NULL };
  Party alice = { "call-uac.xml", 0, flow_pick_port (), "a", "500", NULL, NULL };
  g_autoptr (FlowRun) a = NULL, b1 = NULL, b2 = NULL;
  FlowSipp *s1, *s2, *sa;
  const char *inv, *ack, *bye;

  register_bob (d, answers.sip_port);
  register_bob (d, late.sip_port);
  s1 = start_bob (d, &answers);
  s2 = start_bob (d, &late);
  sa = start_alice (d, &alice, "bob");
  a = finish (sa, "alice");
  b1 = finish (s1, "bob (answers)");
  b2 = finish (s2, "bob (answers late)");

  g_assert_cmpuint (count_responses (a->received, 200, "INVITE"), ==, 1);
  inv = require_msg (b2->received, "INVITE ", 0);
  require_msg (b2->received, "CANCEL ", 0);
  ack = require_msg (b2->received, "ACK ", 0);
  bye = require_msg (b2->received, "BYE ", 0);
  g_assert_cmpuint (cseq_number (ack), ==, cseq_number (inv));
  g_assert_cmpuint (cseq_number (bye), >, cseq_number (inv));
  require_msg (b1->received, "BYE ", 0);
  assert_cdr (d, a, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* A 6xx from one branch ends the whole fork at once (RFC 3261 §16.7:
 * cancel the other branches; a 6xx beats every other answer). */
static void
test_forking_decline (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("no-answer-timeout = 5");
  Party declines = { "call-uas-decline.xml", flow_pick_port (), flow_pick_port (), "b", NULL,
                     NULL, NULL };
  Party rings = { "call-uas-ring.xml", flow_pick_port (), flow_pick_port (), "b2", NULL, NULL,
                  NULL };
  Party alice = { "call-uac-fail.xml", 0, flow_pick_port (), "a", NULL, NULL, NULL };
  g_autoptr (FlowRun) a = NULL, b1 = NULL, b2 = NULL;
  FlowSipp *s1, *s2, *sa;
  const char *invite, *final;
  gint64 waited;

  register_bob (d, declines.sip_port);
  register_bob (d, rings.sip_port);
  s1 = start_bob (d, &declines);
  s2 = start_bob (d, &rings);
  sa = start_alice (d, &alice, "bob");
  a = flow_sipp_wait (sa);
  b1 = flow_sipp_wait (s1);
  b2 = flow_sipp_wait (s2);
  invite = require_msg (a->sent, "INVITE ", 1);
  final = find_response (a->received, 603, "INVITE", 0);
  if (!final)
    flow_note ("alice's final answer: %s", flow_run_last_received (a));
  g_assert_nonnull (final);
  waited = elapsed_ms (time_of (a->sent, a->sent_us, invite),
                       time_of (a->received, a->received_us, final));
  g_assert_cmpint (waited, <, 2000);
  g_assert_cmpint (b1->exit_status, ==, 0);
  g_assert_cmpint (b2->exit_status, ==, 0);
  assert_b_cancelled (b2);
  assert_cdr (d, a, 603, "callee", NULL);
  flow_daemon_stop (d);
}

/* ---- refused calls ---------------------------------------------------------------------- */

/* alice calls `callee` with scenario and password; returns her final status. */
static int
refused_call (FlowDaemon *d, const char *scenario, const char *callee, const char *password,
              FlowRun **out)
{
  Party alice = { scenario, 0, flow_pick_port (), "a", NULL, NULL, NULL };
  FlowRun *run = finish (start_alice_as (d, &alice, callee, password), "alice");
  int status = alice_final (run);

  *out = run;
  return status;
}

static void
test_unknown_user (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autoptr (FlowRun) run = NULL;

  g_assert_cmpint (refused_call (d, "call-uac-fail.xml", "mallory", "alice-secret", &run), ==, 404);
  flow_daemon_stop (d);
}

static void
test_not_registered (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autoptr (FlowRun) run = NULL;

  g_assert_cmpint (refused_call (d, "call-uac-fail.xml", "carol", "alice-secret", &run), ==, 480);
  flow_daemon_stop (d);
}

static void
test_wrong_password (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autoptr (FlowRun) run = NULL;

  register_bob (d, flow_pick_port ());
  g_assert_cmpint (refused_call (d, "call-uac-fail.xml", "bob", "not-it", &run), ==, 403);
  flow_daemon_stop (d);
}

static void
test_bad_sdp (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autoptr (FlowRun) run = NULL;

  register_bob (d, flow_pick_port ());
  g_assert_cmpint (refused_call (d, "call-uac-badsdp.xml", "bob", "alice-secret", &run), ==, 400);
  flow_daemon_stop (d);
}

/* bob answers with G.729 only, which alice did not offer: tandem hangs up
 * on bob and refuses alice's call. */
static void
test_no_common_codec (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  Party bob = { "call-uas.xml", flow_pick_port (), flow_pick_port (), "b", NULL, "18", "G729" };
  Party alice = { "call-uac-fail.xml", 0, flow_pick_port (), "a", NULL, NULL, NULL };
  g_autoptr (FlowRun) a = NULL, b = NULL;
  FlowSipp *sb;

  register_bob (d, bob.sip_port);
  sb = start_bob (d, &bob);
  a = finish (start_alice (d, &alice, "bob"), "alice");
  b = finish (sb, "bob");
  g_assert_cmpint (alice_final (a), ==, 488);
  g_assert_cmpuint (count_responses (a->received, 200, "INVITE"), ==, 0);
  require_msg (b->received, "ACK ", 0);
  require_msg (b->received, "BYE ", 0);
  assert_cdr (d, a, 488, "tandem", "codec");
  flow_daemon_stop (d);
}

/* ---- tandem ends the call --------------------------------------------------------------- */

/* No RTP at all: after rtp-timeout seconds tandem BYEs both ends. */
static void
test_rtp_timeout (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 2");
  g_auto (Call) c = { 0 };
  const char *ok, *bye;
  gint64 waited;

  run_call (d, "call-uac-wait.xml", NULL, "call-uas.xml", NULL, &c);
  assert_a_bye_from_tandem (&c);
  assert_b_bye_from_tandem (&c);
  ok = require_response (c.alice->received, 200, "INVITE", 0);
  bye = require_msg (c.alice->received, "BYE ", 0);
  waited = elapsed_ms (time_of (c.alice->received, c.alice->received_us, ok),
                       time_of (c.alice->received, c.alice->received_us, bye));
  flow_note ("BYE %" G_GINT64_FORMAT " ms after the answer", waited);
  g_assert_cmpint (waited, >=, 1800);
  g_assert_cmpint (waited, <=, 4500);
  assert_cdr (d, c.alice, 200, "tandem", "rtp");
  flow_daemon_stop (d);
}

/* A call on hold sends no RTP on purpose: the RTP timeout spares it. */
static void
test_rtp_timeout_spares_hold (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 2");
  g_auto (Call) c = { 0 };

  run_call (d, "call-uac-hold.xml", "4500", "call-uas-hold.xml", NULL, &c);
  g_assert_null (find_msg (c.alice->received, "BYE ", 0));
  assert_b_bye_from_tandem (&c);
  assert_cdr (d, c.alice, 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* A refused hold leaves the call as it was (RFC 3264 §8: a rejected offer
 * changes nothing): not on hold, so with no RTP the timeout still ends it. */
static void
test_rtp_timeout_after_refused_hold (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("rtp-timeout = 2");
  g_auto (Call) c = { 0 };

  run_call (d, "call-uac-hold-refused.xml", NULL, "call-uas-reject-reinvite.xml", NULL, &c);
  require_response (c.alice->received, 488, "INVITE", 0);
  assert_a_bye_from_tandem (&c);
  assert_b_bye_from_tandem (&c);
  assert_cdr (d, c.alice, 200, "tandem", "rtp");
  flow_daemon_stop (d);
}

/* The same refused hold, heard: the call must sound as before the offer,
 * both directions relayed. */
static void
test_media_after_refused_hold (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  Party bob = { "call-uas-reject-reinvite.xml", flow_pick_port (), flow_pick_port (), "b", NULL,
                NULL, NULL };
  Party alice = { "call-uac-hold-refused-media.xml", 0, flow_pick_port (), "a", "3000", NULL,
                  NULL };
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) report = NULL;
  ProbeEndpoint eps[2];
  FlowSipp *sa, *sb;

  register_bob (d, bob.sip_port);
  sb = start_bob (d, &bob);
  sa = start_alice (d, &alice, "bob");
  eps[1] = (ProbeEndpoint) { bob.rtp_port, wait_port_file ("b"), SSRC_BOB, 0 };
  eps[0] = (ProbeEndpoint) { alice.rtp_port, wait_port_file ("a-after"), SSRC_ALICE, 0 };
  report = run_probe (eps, 2);
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  require_response (a->received, 488, "INVITE", 0);
  g_assert_cmpuint (probe_received (report, bob.rtp_port, eps[1].dest_port, SSRC_ALICE), >=,
                    PROBE_MIN_RECEIVED);
  g_assert_cmpuint (probe_received (report, alice.rtp_port, eps[0].dest_port, SSRC_BOB), >=,
                    PROBE_MIN_RECEIVED);
  flow_daemon_stop (d);
}

/* SIGTERM with a call ringing: alice gets a final answer, bob a CANCEL. */
static void
test_shutdown_while_ringing (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  Party bob = { "call-uas-ring.xml", flow_pick_port (), flow_pick_port (), "b", NULL, NULL, NULL };
  Party alice = { "call-uac-fail.xml", 0, flow_pick_port (), "a", NULL, NULL, NULL };
  g_autoptr (FlowRun) a = NULL, b = NULL;
  FlowSipp *sa, *sb;

  register_bob (d, bob.sip_port);
  sb = start_bob (d, &bob);
  sa = start_alice (d, &alice, "bob");
  wait_port_file ("b");          /* bob has the INVITE */
  g_usleep (200 * 1000);         /* and his 180 has reached alice */
  flow_daemon_stop (d);
  a = finish (sa, "alice");
  b = finish (sb, "bob");
  g_assert_cmpint (alice_final (a), ==, 503);
  assert_b_cancelled (b);
}

/* SIGTERM with a call up: both ends get a BYE, tandem exits 0. */
static void
test_shutdown_with_call_up (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  Party bob = { "call-uas.xml", flow_pick_port (), flow_pick_port (), "b", NULL, NULL, NULL };
  Party alice = { "call-uac-wait.xml", 0, flow_pick_port (), "a", NULL, NULL, NULL };
  g_auto (Call) c = { 0 };
  FlowSipp *a, *b;

  register_bob (d, bob.sip_port);
  b = start_bob (d, &bob);
  a = start_alice (d, &alice, "bob");
  wait_port_file ("a");          /* alice has ACKed: the call is up */
  g_usleep (200 * 1000);         /* and tandem has seen the ACK */
  flow_daemon_stop (d);          /* asserts exit status 0 */
  c.alice = finish (a, "alice");
  c.bob = finish (b, "bob");
  c.alice_rtp = alice.rtp_port;
  c.bob_rtp = bob.rtp_port;
  assert_a_bye_from_tandem (&c);
  assert_b_bye_from_tandem (&c);
  assert_cdr (d, c.alice, 200, "tandem", "shutdown");
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/call/basic/bye-from-caller", test_basic_bye_from_caller);
  flow_add_test ("/call/basic/bye-from-callee", test_basic_bye_from_callee);
  flow_add_test ("/call/rtp/both-ways", test_rtp_both_ways);
  flow_add_test ("/call/rtp/foreign-source-dropped", test_rtp_foreign_source_dropped);
  flow_add_test ("/call/late-offer", test_late_offer);
  flow_add_test ("/call/early-media", test_early_media);
  flow_add_test ("/call/busy", test_busy);
  flow_add_test ("/call/cancel", test_cancel);
  flow_add_test ("/call/no-answer-timeout", test_no_answer_timeout);
  flow_add_test ("/call/reinvite-update-from-caller", test_reinvite_and_update_from_caller);
  flow_add_test ("/call/reinvite-update-from-callee", test_reinvite_and_update_from_callee);
  flow_add_test ("/call/glare", test_glare);
  flow_add_test ("/call/forking", test_forking);
  flow_add_test ("/call/forking-late-answer", test_forking_late_answer);
  flow_add_test ("/call/forking-decline", test_forking_decline);
  flow_add_test ("/call/refused/unknown-user", test_unknown_user);
  flow_add_test ("/call/refused/not-registered", test_not_registered);
  flow_add_test ("/call/refused/wrong-password", test_wrong_password);
  flow_add_test ("/call/refused/bad-sdp", test_bad_sdp);
  flow_add_test ("/call/refused/no-common-codec", test_no_common_codec);
  flow_add_test ("/call/rtp-timeout", test_rtp_timeout);
  flow_add_test ("/call/rtp-timeout-spares-hold", test_rtp_timeout_spares_hold);
  flow_add_test ("/call/rtp-timeout-after-refused-hold", test_rtp_timeout_after_refused_hold);
  flow_add_test ("/call/media-after-refused-hold", test_media_after_refused_hold);
  flow_add_test ("/call/shutdown-with-call-up", test_shutdown_with_call_up);
  flow_add_test ("/call/shutdown-while-ringing", test_shutdown_while_ringing);
  return g_test_run ();
}
