/* Call transfer through tandem (issue 9): blind transfer with REFER
 * (flow 14), attended transfer with REFER and Replaces (flow 15), INVITE
 * with Replaces (RFC 3891), and the bad input around them. Every party is
 * a SIPp of its own, registered with tandem like a phone (xfer-*.xml here,
 * and the call tests' callees); media is the rtp-probe.
 *
 * The wire behaviour these cases fix (they were written before the
 * feature, for it to be built to):
 * - REFER in a dialog: 202, then NOTIFYs in that dialog (Event: refer,
 *   Content-Type: message/sipfrag;version=2.0): the first "SIP/2.0 100
 *   Trying" with Subscription-State: active, any 1xx between, the last the
 *   outcome's status line ("SIP/2.0 200 OK", "SIP/2.0 486 Busy Here",
 *   480 when the target does not answer within [calls]
 *   no-answer-timeout) with Subscription-State: terminated.
 * - Blind: tandem calls the target on the transferee's behalf (From: the
 *   transferee, Referred-By: the transferor); when the target answers,
 *   the transferee's media goes to it; the transferee keeps its dialog
 *   and its relay port (a re-INVITE, if any, names the same port). The
 *   transferor's leg ends: its own BYE right after the final NOTIFY is
 *   answered 200 and tandem sends none; if it sends none, tandem sends
 *   BYE (accepted here within 8 s of the final NOTIFY). On failure the
 *   transferor and transferee stay connected.
 * - Attended: the REFER's Refer-To carries
 *   ?Replaces=CALL-ID%3Bto-tag%3DTANDEM-TAG%3Bfrom-tag%3DTRANSFEROR-TAG,
 *   the transferor's own dialog with tandem in the consultation call, as
 *   the transferor's phone writes it (RFC 3891 §3: to-tag is the tag of
 *   the UA that matches the header, tandem; from-tag the other end's):
 *   to-tag = the tag tandem put in the To of its 200, from-tag = the
 *   transferor's From tag. tandem joins the transferee to the target's
 *   existing leg (no new INVITE to the target), resumes the held
 *   transferee (re-INVITE a=sendrecv, same relay port), ends both of the
 *   transferor's dialogs (its BYEs or tandem's), and the transferee hears
 *   one RTP stream throughout: one SSRC, sequence numbers going on by one,
 *   the marker on the target's first packet.
 * - INVITE with Replaces (and Require: replaces) naming one of tandem's
 *   confirmed dialogs, from the user of that dialog: the new leg takes the
 *   old one's place (200; the old leg gets BYE; the other party keeps its
 *   dialog). 481, and nothing changes, for a Replaces naming no dialog, an
 *   early dialog tandem did not set up (a caller's still ringing call), or
 *   another user's dialog. The digest check comes first (407).
 * - Bad REFERs get a SIP error and disturb no call: outside any dialog a
 *   405 (tandem allows REFER in calls' dialogs only, and sends no NOTIFY),
 *   without Refer-To 400, to a user tandem cannot reach 404 (at once, or
 *   202 and a final NOTIFY with 404), a second REFER while one is under way
 *   491.
 * - The 200 to an INVITE and the INVITE to a callee list REFER in Allow
 *   (OPTIONS does not: REFER is allowed in calls' dialogs only); OPTIONS
 *   and the 200 list replaces in Supported.
 * - A moved leg keeps its one outgoing RTP context: the transferee goes on
 *   hearing the SSRC it heard before (its port's first), now carrying the
 *   target's audio, and only one stream's worth of packets.
 *
 * The transfer plugin ("transfer", plugins/transfer/) is enabled; without
 * it tandem does not allow REFER. Parties, SDP,
 * probe helpers: flow-calls.h. */
#include <stdio.h>
#include <string.h>

#include "flow-calls.h"

/* The relay range: below the kernel's ephemeral ports, apart from the
 * other flow tests' (7000-9999, 20000-34199) and the relay unit tests'
 * (10000-19599). */
#define MEDIA_MIN 6000
#define MEDIA_MAX 6999
#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 6000-6999\n"
#define TRANSFER_PLUGIN "transfer"

#define SSRC_ALICE 0xA11CEu
#define SSRC_BOB 0xB0Bu
#define SSRC_BOB2 0xB0B2u
#define SSRC_CAROL 0xCA201u
#define SSRC_DAVE 0xDA7Eu
#define FILL_ALICE 0x11
#define FILL_BOB 0x22
#define FILL_BOB2 0x33
#define FILL_CAROL 0x44

/* A phase of a call (SIPp -d): the probe (FLOW_PROBE_PACKETS × 20 ms and
 * 400 ms linger) fits in with room. */
#define PHASE_MS "2500"
/* The [calls] no-answer-timeout of the cases whose target does not answer. */
#define NO_ANSWER_S 3
/* Cause and effect across two SIPp processes' logs (their times are those
 * of the log line, a little after the socket), on a loaded machine. */
#define SLACK_US (100 * 1000)
/* Traced RTP: at least this much of each source in each phase. */
#define MIN_PHASE_PACKETS 40
#define PCMA_FRAME 160

/* ---- tandem ------------------------------------------------------------------------ */

/* tandem with our relay range, the transfer plugin if it is built, and
 * the given [calls] lines; users alice, bob, carol (NAME-secret) are the
 * harness's. */
static FlowDaemon *
start_tandem (const char *calls)
{
  const char *plugin_dir = g_getenv ("TANDEM_PLUGIN_DIR");
  g_autofree char *plugin = g_build_filename (plugin_dir ? plugin_dir : ".",
                                              TRANSFER_PLUGIN ".so", NULL);
  g_autofree char *conf = NULL;

  /* meson builds it before this test runs: without it nothing here is tested. */
  g_assert_true (g_file_test (plugin, G_FILE_TEST_EXISTS));
  /* As in the sample configuration: the transferred call meets the
   * target's forwarding and call waiting like any other. */
  conf = g_strdup_printf (MEDIA_CONFIG "\n[plugins]\nenabled = forward;" TRANSFER_PLUGIN
                          ";waiting\n\n[calls]\n%s\n", calls ? calls : "");
  return flow_daemon_start (conf);
}

/* ---- reading messages ------------------------------------------------------------- */

/* The requests starting with `start` ("NOTIFY "), one per transaction
 * (Call-ID and CSeq): a retransmission is logged again. */
static GPtrArray *
requests (const GPtrArray *msgs, const char *start)
{
  GPtrArray *out = g_ptr_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < msgs->len; i++) {
    const char *m = g_ptr_array_index (msgs, i);
    g_autofree char *call_id = NULL;
    char *key;
    if (!g_str_has_prefix (m, start))
      continue;
    call_id = flow_require_header (m, "Call-ID");
    key = g_strdup_printf ("%s %" G_GUINT64_FORMAT, call_id, flow_msg_cseq (m));
    if (g_hash_table_add (seen, key))
      g_ptr_array_add (out, (gpointer) m);
  }
  return out;
}

static guint
count_requests (const GPtrArray *msgs, const char *start)
{
  g_autoptr (GPtrArray) found = requests (msgs, start);
  return found->len;
}

/* The nth request starting with `start` (retransmissions skipped). */
static const char *
require_request (const GPtrArray *msgs, const char *start, guint nth)
{
  g_autoptr (GPtrArray) found = requests (msgs, start);

  if (nth >= found->len)
    g_printerr ("flow: no %s #%u (%u of them)\n", start, nth, found->len);
  g_assert_cmpuint (nth, <, found->len);
  return g_ptr_array_index (found, nth);
}

/* How many new dialogs INVITEs opened: INVITEs without a To tag, one per
 * Call-ID. */
static guint
count_new_invites (const FlowRun *run)
{
  g_autoptr (GHashTable) call_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < run->received->len; i++) {
    const char *m = g_ptr_array_index (run->received, i);
    g_autofree char *tag = NULL;
    if (!g_str_has_prefix (m, "INVITE "))
      continue;
    tag = flow_msg_tag (m, "To");
    if (!tag)
      g_hash_table_add (call_ids, flow_require_header (m, "Call-ID"));
  }
  return g_hash_table_size (call_ids);
}

/* The final response (status >= 200, digest challenges skipped) the run
 * got to its nth REFER, or NULL. */
static const char *
refer_final (const FlowRun *run, guint nth)
{
  guint64 cseq = flow_msg_cseq (require_request (run->sent, "REFER ", nth));

  for (guint i = 0; i < run->received->len; i++) {
    const char *m = g_ptr_array_index (run->received, i);
    g_autofree char *method = NULL;
    int status = flow_msg_status (m);
    if (status < 200 || status == 401 || status == 407 || flow_msg_cseq (m) != cseq)
      continue;
    method = flow_msg_cseq_method (m);
    if (strcmp (method, "REFER") == 0)
      return m;
  }
  return NULL;
}

static int
refer_status (const FlowRun *run, guint nth)
{
  const char *final = refer_final (run, nth);
  int status = final ? flow_msg_status (final) : 0;

  flow_note ("REFER #%u: final status %d", nth, status);
  return status;
}

/* A header's value up to its first ';', trimmed and lowercased
 * ("active" from "active;expires=60"). */
static char *
header_token (const char *msg, const char *name)
{
  g_autofree char *value = flow_require_header (msg, name);
  char *semi = strchr (value, ';');

  if (semi)
    *semi = '\0';
  return g_ascii_strdown (g_strstrip (value), -1);
}

/* A header's value without any whitespace, lowercased. */
static char *
header_squeezed (const char *msg, const char *name)
{
  g_autofree char *value = flow_require_header (msg, name);
  GString *s = g_string_new (NULL);

  for (const char *p = value; *p; p++)
    if (!g_ascii_isspace (*p))
      g_string_append_c (s, g_ascii_tolower (*p));
  return g_string_free (s, FALSE);
}

static char *
body_first_line (const char *msg)
{
  g_autofree char *body = flow_msg_body (msg);
  g_auto (GStrv) lines = g_strsplit (body, "\n", 2);

  return g_strdup (lines[0] ? g_strstrip (lines[0]) : "");
}

/* "SIP/2.0 486 Busy Here" → 486; 0 if it is no status line. */
static int
sipfrag_status (const char *line)
{
  int status = 0;
  return sscanf (line, "SIP/2.0 %d", &status) == 1 ? status : 0;
}

/* Whether a comma-separated header (Allow, Supported) lists token. */
static gboolean
header_lists (const char *msg, const char *name, const char *token)
{
  g_auto (GStrv) entries = flow_msg_header_entries (msg, name);

  for (guint i = 0; entries[i]; i++)
    if (g_ascii_strcasecmp (entries[i], token) == 0)
      return TRUE;
  return FALSE;
}

static void
assert_header_lists (const char *msg, const char *name, const char *token)
{
  if (!header_lists (msg, name, token))
    g_printerr ("flow: %s does not list %s in:\n%s\n", name, token, msg);
  g_assert_true (header_lists (msg, name, token));
}

/* ---- dialogs -------------------------------------------------------------------- */

/* A party's dialog with tandem, from the party's side. */
typedef struct {
  char *call_id, *local_tag, *remote_tag;
} Dialog;

static void
dialog_clear (Dialog *dl)
{
  g_clear_pointer (&dl->call_id, g_free);
  g_clear_pointer (&dl->local_tag, g_free);
  g_clear_pointer (&dl->remote_tag, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Dialog, dialog_clear)

/* A callee's: tandem's INVITE and the callee's 200. */
static void
callee_dialog (const FlowRun *run, Dialog *dl)
{
  const char *invite = flow_require_msg (run->received, "INVITE ", 0);
  const char *ok = flow_require_response (run->sent, 200, "INVITE", 0);

  dl->call_id = flow_require_header (invite, "Call-ID");
  dl->remote_tag = flow_msg_tag (invite, "From");
  dl->local_tag = flow_msg_tag (ok, "To");
}

/* A caller's: its authenticated INVITE and tandem's 200. */
static void
caller_dialog (const FlowRun *run, Dialog *dl)
{
  const char *invite = flow_require_msg (run->sent, "INVITE ", 1);
  const char *ok = flow_require_response (run->received, 200, "INVITE", 0);

  dl->call_id = flow_require_header (invite, "Call-ID");
  dl->local_tag = flow_msg_tag (invite, "From");
  dl->remote_tag = flow_msg_tag (ok, "To");
}

/* A request tandem sent the party belongs to the dialog. */
static void
assert_in_dialog (const char *request, const Dialog *dl)
{
  g_autofree char *call_id = flow_require_header (request, "Call-ID");
  g_autofree char *from_tag = flow_msg_tag (request, "From");
  g_autofree char *to_tag = flow_msg_tag (request, "To");

  if (g_strcmp0 (call_id, dl->call_id) || g_strcmp0 (from_tag, dl->remote_tag) ||
      g_strcmp0 (to_tag, dl->local_tag))
    g_printerr ("flow: not in the dialog %s (tags: ours %s, tandem's %s):\n%s\n", dl->call_id,
                dl->local_tag, dl->remote_tag, request);
  g_assert_cmpstr (call_id, ==, dl->call_id);
  g_assert_cmpstr (from_tag, ==, dl->remote_tag);
  g_assert_cmpstr (to_tag, ==, dl->local_tag);
}

/* ---- transfer outcomes ------------------------------------------------------------ */

/* The transferor's NOTIFYs (RFC 3515): in its dialog, Event: refer,
 * message/sipfrag;version=2.0; the first "SIP/2.0 100 Trying" and active,
 * any between a 1xx and active, the last final_status (and exactly
 * final_line, unless NULL) and terminated; each answered 200 by the
 * scenario. Returns the last. */
static const char *
assert_notifies (const FlowRun *run, const Dialog *dl, int final_status, const char *final_line)
{
  g_autoptr (GPtrArray) notifies = requests (run->received, "NOTIFY ");

  for (guint i = 0; i < notifies->len; i++) {
    const char *n = g_ptr_array_index (notifies, i);
    g_autofree char *line = body_first_line (n);
    g_autofree char *state = flow_require_header (n, "Subscription-State");
    flow_note ("NOTIFY %u: \"%s\", Subscription-State: %s", i, line, state);
  }
  if (notifies->len < 2)
    g_printerr ("flow: %u NOTIFYs (want 100 Trying, then the outcome)\n", notifies->len);
  g_assert_cmpuint (notifies->len, >=, 2);
  for (guint i = 0; i < notifies->len; i++) {
    const char *n = g_ptr_array_index (notifies, i);
    gboolean last = i + 1 == notifies->len;
    g_autofree char *event = header_token (n, "Event");
    g_autofree char *type = header_squeezed (n, "Content-Type");
    g_autofree char *state = header_token (n, "Subscription-State");
    g_autofree char *line = body_first_line (n);
    int status = sipfrag_status (line);

    assert_in_dialog (n, dl);
    g_assert_cmpstr (event, ==, "refer");
    g_assert_cmpstr (type, ==, "message/sipfrag;version=2.0");
    g_assert_cmpstr (state, ==, last ? "terminated" : "active");
    if (i == 0) {
      g_assert_cmpstr (line, ==, "SIP/2.0 100 Trying");
    } else if (!last) {
      g_assert_cmpint (status, >, 100);
      g_assert_cmpint (status, <, 200);
    } else {
      g_assert_cmpint (status, ==, final_status);
      if (final_line)
        g_assert_cmpstr (line, ==, final_line);
    }
  }
  g_assert_cmpuint (flow_count_responses (run->sent, 200, "NOTIFY"), >=, notifies->len);
  return g_ptr_array_index (notifies, notifies->len - 1);
}

/* Message ma (of run ra) came no earlier than mb (of run rb): cause and
 * effect across two SIPp logs, with SLACK_US. */
static void
assert_not_before (const FlowRun *ra, const char *ma, const FlowRun *rb, const char *mb,
                   const char *what)
{
  gint64 ta = flow_run_msg_time (ra, ma), tb = flow_run_msg_time (rb, mb);

  g_assert_cmpint (ta, >, 0);
  g_assert_cmpint (tb, >, 0);
  if (ta < tb - SLACK_US)
    g_printerr ("flow: %s: %" G_GINT64_FORMAT " µs too early\n", what, tb - ta);
  g_assert_cmpint (ta, >=, tb - SLACK_US);
}

/* The INVITE tandem sent the target on the transferee's behalf: a new
 * dialog, From the transferee, with Referred-By naming the transferor, to
 * the target's registered Contact. */
static const char *
assert_target_invite (const FlowRun *target, const FlowParty *target_party,
                      const char *transferee, const char *transferor)
{
  const char *invite = flow_require_msg (target->received, "INVITE ", 0);
  g_autofree char *from = flow_require_header (invite, "From");
  g_autofree char *want_from = g_strdup_printf ("<sip:%s@pbx.test>", transferee);
  g_autofree char *want_by = g_strdup_printf ("sip:%s@pbx.test", transferor);
  g_autofree char *ruri = g_strdup_printf ("INVITE sip:%s@127.0.0.1:%u", target_party->user,
                                           target_party->sip_port);
  g_auto (GStrv) referred_by = flow_msg_headers (invite, "Referred-By");

  g_assert_cmpuint (count_new_invites (target), ==, 1);
  g_assert_true (g_str_has_prefix (invite, ruri));
  if (!strstr (from, want_from))
    g_printerr ("flow: the target's INVITE is From %s (want %s)\n", from, want_from);
  g_assert_nonnull (strstr (from, want_from));
  if (!referred_by[0] || !strstr (referred_by[0], want_by))
    g_printerr ("flow: the target's INVITE has Referred-By \"%s\" (want %s):\n%s\n",
                referred_by[0] ? referred_by[0] : "(none)", want_by, invite);
  g_assert_nonnull (referred_by[0]);
  g_assert_nonnull (strstr (referred_by[0], want_by));
  return invite;
}

/* Every re-INVITE the party got from tandem keeps its relay port: the
 * transfer moves media behind the port, not the port. */
static void
assert_reinvites_keep_port (const FlowRun *run, gboolean caller, guint16 relay,
                            guint16 party_port)
{
  for (guint i = caller ? 0 : 1;; i++) {
    const char *reinvite = flow_find_msg (run->received, "INVITE ", i);
    if (!reinvite)
      break;
    g_assert_cmpuint (flow_assert_relay_sdp (reinvite, party_port, FALSE, MEDIA_MIN, MEDIA_MAX),
                      ==, relay);
  }
}

/* The party's leg ended with exactly one BYE: its own (answered 200) or
 * tandem's (answered 200 by the scenario). Returns tandem's, or NULL. */
static const char *
assert_one_bye (const FlowRun *run, const char *who)
{
  guint got = count_requests (run->received, "BYE "), sent = count_requests (run->sent, "BYE ");

  flow_note ("%s: %u BYE received, %u sent", who, got, sent);
  if (got + sent != 1)
    g_printerr ("flow: %s's leg saw %u BYEs from tandem and sent %u (want one in all)\n", who,
                got, sent);
  g_assert_cmpuint (got + sent, ==, 1);
  if (sent)
    flow_require_response (run->received, 200, "BYE", 0);
  return got ? require_request (run->received, "BYE ", 0) : NULL;
}

/* ---- blind transfer (flow 14) ---------------------------------------------------- */

/* alice calls bob; after a phase bob refers her to carol (xfer-uas-refer.xml
 * with [after]); carol runs her scenario. RTP is probed before the REFER
 * (alice ↔ bob) and after the transfer's outcome (alice, bob, carol). */
typedef struct {
  FlowParty alice, bob, carol;
  FlowRun *a, *b, *c;
  char **before, **after;
  guint16 a_relay, b_relay, c_relay;
  gboolean accepted;        /* bob's REFER got 202 (his done file says 1) */
} Blind;

static void
blind_clear (Blind *x)
{
  g_clear_pointer (&x->a, flow_run_free);
  g_clear_pointer (&x->b, flow_run_free);
  g_clear_pointer (&x->c, flow_run_free);
  g_clear_pointer (&x->before, g_strfreev);
  g_clear_pointer (&x->after, g_strfreev);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Blind, blind_clear)

static void
blind_run (FlowDaemon *d, Blind *x, const char *carol_scenario, const char *refer_line,
           const char *after, gboolean expect_accept)
{
  const char *bob_keys[] = { "refer_line", refer_line, "after", after, NULL };
  FlowSipp *sa, *sb, *sc = NULL;

  x->alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  x->alice.timeout = "25s";
  x->bob = flow_party ("bob", "xfer-uas-refer.xml", "b");
  x->bob.pause_ms = PHASE_MS;
  x->bob.timeout = "25s";
  x->bob.keys = bob_keys;
  if (carol_scenario) {
    x->carol = flow_party ("carol", carol_scenario, "c");
    x->carol.pause_ms = "3000";   /* call-uas-hangup.xml: talks 3 s, hangs up */
    x->carol.timeout = "20s";
    sc = flow_callee_start (d, &x->carol);
  }
  sb = flow_callee_start (d, &x->bob);
  sa = flow_caller_start (d, &x->alice, "bob");
  x->a_relay = flow_wait_port_file ("a");
  x->b_relay = flow_wait_port_file ("b");
  x->before = flow_probe_pair (x->alice.rtp_port, x->a_relay, SSRC_ALICE, x->bob.rtp_port,
                               x->b_relay, SSRC_BOB);
  x->accepted = flow_wait_port_file ("b-done") == 1;
  if (expect_accept && !x->accepted) {
    /* Refused: say with which status before anything else fails. */
    x->b = flow_sipp_wait (sb);
    g_assert_cmpint (refer_status (x->b, 0), ==, 202);
  }
  if (x->accepted && carol_scenario && strcmp (carol_scenario, "call-uas-hangup.xml") == 0) {
    FlowProbeEndpoint eps[] = { { x->alice.rtp_port, x->a_relay, SSRC_ALICE, 0 },
                                { x->bob.rtp_port, x->b_relay, SSRC_BOB, 0 },
                                { x->carol.rtp_port, 0, SSRC_CAROL, 0 } };
    x->c_relay = eps[2].dest_port = flow_wait_port_file ("c");
    x->after = flow_probe_run (eps, G_N_ELEMENTS (eps));
  } else {
    x->after = flow_probe_pair (x->alice.rtp_port, x->a_relay, SSRC_ALICE, x->bob.rtp_port,
                                x->b_relay, SSRC_BOB);
  }
  if (!x->b)
    x->b = flow_sipp_wait (sb);
  x->a = flow_sipp_wait (sa);
  if (sc)
    x->c = flow_sipp_wait (sc);
}

/* A moved leg's endpoint hears one stream from its relay port: the SSRC
 * it heard before the move (the port's outgoing context), now someone
 * else's audio, and no more packets than one sender sent. */
static void
assert_heard_one_stream (char **report, guint16 listener, guint16 relay_port, guint32 ssrc)
{
  flow_assert_heard_only (report, listener, relay_port, ssrc);
  g_assert_cmpuint (flow_probe_received (report, listener, relay_port, 0), <=,
                    FLOW_PROBE_PACKETS);
}

/* What every blind transfer of bob's shows, whatever the outcome: his
 * REFER accepted, the NOTIFYs in his dialog ending with the outcome,
 * carol called on alice's behalf after the REFER, alice's relay port kept. */
static void
assert_blind_common (const Blind *x, int final_status, const char *final_line)
{
  g_auto (Dialog) bob_dialog = { 0 };
  const char *refer = require_request (x->b->sent, "REFER ", 0);

  g_assert_cmpint (refer_status (x->b, 0), ==, 202);
  callee_dialog (x->b, &bob_dialog);
  assert_notifies (x->b, &bob_dialog, final_status, final_line);
  assert_not_before (x->c, assert_target_invite (x->c, &x->carol, "alice", "bob"), x->b, refer,
                     "carol's INVITE after bob's REFER");
  assert_reinvites_keep_port (x->a, TRUE, x->a_relay, x->alice.rtp_port);
  flow_assert_heard_only (x->before, x->bob.rtp_port, x->b_relay, SSRC_ALICE);
  flow_assert_heard_only (x->before, x->alice.rtp_port, x->a_relay, SSRC_BOB);
}

/* The transfer went through: carol's INVITE is tandem's offer on her relay
 * port, bob's final NOTIFY came after her answer, alice and carol talk
 * (and bob hears alice no more), alice's dialog lasts until carol hangs
 * up. */
static void
assert_blind_connected (const Blind *x)
{
  g_autoptr (GPtrArray) notifies = requests (x->b->received, "NOTIFY ");
  const char *c_invite = flow_require_msg (x->c->received, "INVITE ", 0);
  const char *c_ok = flow_require_response (x->c->sent, 200, "INVITE", 0);

  assert_blind_common (x, 200, "SIP/2.0 200 OK");
  g_assert_cmpuint (flow_assert_relay_sdp (c_invite, x->alice.rtp_port, FALSE, MEDIA_MIN,
                                           MEDIA_MAX), ==, x->c_relay);
  assert_not_before (x->b, g_ptr_array_index (notifies, notifies->len - 1), x->c, c_ok,
                     "bob's final NOTIFY after carol's 200");
  flow_assert_heard_only (x->after, x->carol.rtp_port, x->c_relay, SSRC_ALICE);
  assert_heard_one_stream (x->after, x->alice.rtp_port, x->a_relay, SSRC_BOB);
  flow_assert_not_heard (x->after, x->bob.rtp_port, SSRC_ALICE);
  flow_assert_not_heard (x->after, x->alice.rtp_port, SSRC_CAROL);
  /* carol hung up; alice's one BYE is that. */
  g_assert_cmpuint (count_requests (x->a->received, "BYE "), ==, 1);
  g_assert_cmpuint (count_requests (x->a->sent, "BYE "), ==, 0);
  assert_not_before (x->a, require_request (x->a->received, "BYE ", 0), x->c,
                     require_request (x->c->sent, "BYE ", 0), "alice's BYE after carol's");
}

/* The transfer failed: bob and alice still talk; bob hung up in the end,
 * and alice's one BYE is that. */
static void
assert_blind_stayed (const Blind *x)
{
  flow_assert_heard_only (x->after, x->bob.rtp_port, x->b_relay, SSRC_ALICE);
  flow_assert_heard_only (x->after, x->alice.rtp_port, x->a_relay, SSRC_BOB);
  g_assert_cmpuint (count_requests (x->b->received, "BYE "), ==, 0);
  g_assert_cmpuint (count_requests (x->b->sent, "BYE "), ==, 1);
  g_assert_cmpuint (count_requests (x->a->received, "BYE "), ==, 1);
  assert_not_before (x->a, require_request (x->a->received, "BYE ", 0), x->b,
                     require_request (x->b->sent, "BYE ", 0), "alice's BYE after bob's");
}

/* bob transfers alice to carol and hangs up himself right after the final
 * NOTIFY: tandem answers his BYE and sends him none. */
static void
test_blind (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Blind) x = { 0 };

  blind_run (d, &x, "call-uas-hangup.xml", "Refer-To: <sip:carol@pbx.test>", "bye", TRUE);
  assert_blind_connected (&x);
  g_assert_cmpuint (count_requests (x.b->received, "BYE "), ==, 0);
  g_assert_cmpuint (count_requests (x.b->sent, "BYE "), ==, 1);
  flow_require_response (x.b->received, 200, "BYE", 0);
  flow_daemon_stop (d);
}

/* bob transfers alice to carol and does not hang up: tandem ends his leg. */
static void
test_blind_tandem_hangs_up (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Blind) x = { 0 };
  g_autoptr (GPtrArray) notifies = NULL;
  const char *bye;
  gint64 waited;

  blind_run (d, &x, "call-uas-hangup.xml", "Refer-To: <sip:carol@pbx.test>", "wait", TRUE);
  assert_blind_connected (&x);
  notifies = requests (x.b->received, "NOTIFY ");
  g_assert_cmpuint (count_requests (x.b->sent, "BYE "), ==, 0);
  g_assert_cmpuint (count_requests (x.b->received, "BYE "), ==, 1);
  bye = require_request (x.b->received, "BYE ", 0);
  waited = flow_run_ms_between (x.b, g_ptr_array_index (notifies, notifies->len - 1), bye);
  flow_note ("tandem's BYE to bob %" G_GINT64_FORMAT " ms after the final NOTIFY", waited);
  g_assert_cmpint (waited, >=, 0);
  g_assert_cmpint (waited, <=, 8000);
  flow_daemon_stop (d);
}

/* carol is busy: bob's final NOTIFY says so; alice and bob talk on. */
static void
test_blind_target_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Blind) x = { 0 };

  blind_run (d, &x, "call-uas-busy.xml", "Refer-To: <sip:carol@pbx.test>", "stay", TRUE);
  assert_blind_common (&x, 486, "SIP/2.0 486 Busy Here");
  flow_assert_error_acked (x.c);
  assert_blind_stayed (&x);
  flow_daemon_stop (d);
}

/* carol does not answer: after no-answer-timeout tandem cancels her call;
 * bob's final NOTIFY says 480; alice and bob talk on. */
static void
test_blind_target_no_answer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("no-answer-timeout = " G_STRINGIFY (NO_ANSWER_S));
  g_auto (Blind) x = { 0 };
  gint64 rang;

  blind_run (d, &x, "call-uas-ring.xml", "Refer-To: <sip:carol@pbx.test>", "stay", TRUE);
  assert_blind_common (&x, 480, NULL);
  flow_assert_cancelled (x.c);
  rang = flow_run_ms_between (x.c, flow_require_msg (x.c->received, "INVITE ", 0),
                              flow_require_msg (x.c->received, "CANCEL ", 0));
  flow_note ("carol rang %" G_GINT64_FORMAT " ms", rang);
  g_assert_cmpint (rang, >=, NO_ANSWER_S * 1000 - 500);
  g_assert_cmpint (rang, <=, NO_ANSWER_S * 1000 + 1500);
  assert_blind_stayed (&x);
  flow_daemon_stop (d);
}

/* The caller transfers: alice refers bob to carol and hangs up after the
 * final NOTIFY; carol's INVITE is from bob, referred by alice; bob and
 * carol talk until carol hangs up. */
static void
test_blind_by_caller (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  const char *alice_keys[] = { "refer_line", "Refer-To: <sip:carol@pbx.test>", NULL };
  FlowParty alice = flow_party ("alice", "xfer-uac-refer.xml", "a");
  FlowParty bob = flow_party ("bob", "xfer-uas-talk.xml", "b");
  FlowParty carol = flow_party ("carol", "call-uas-hangup.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  g_auto (GStrv) before = NULL, after = NULL;
  g_auto (Dialog) alice_dialog = { 0 };
  guint16 a_relay, b_relay, c_relay;
  FlowSipp *sa, *sb, *sc;

  alice.pause_ms = PHASE_MS;
  alice.keys = alice_keys;
  alice.timeout = bob.timeout = carol.timeout = "25s";
  carol.pause_ms = "3000";
  sc = flow_callee_start (d, &carol);
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  a_relay = flow_wait_port_file ("a");
  b_relay = flow_wait_port_file ("b");
  before = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  flow_wait_port_file ("a-done");
  a = flow_sipp_wait (sa);     /* alice hung up after the transfer's outcome */
  g_assert_cmpint (refer_status (a, 0), ==, 202);
  c_relay = flow_wait_port_file ("c");
  {
    FlowProbeEndpoint eps[] = { { alice.rtp_port, a_relay, SSRC_ALICE, 0 },
                                { bob.rtp_port, b_relay, SSRC_BOB, 0 },
                                { carol.rtp_port, c_relay, SSRC_CAROL, 0 } };
    after = flow_probe_run (eps, G_N_ELEMENTS (eps));
  }
  c = flow_sipp_wait (sc);
  b = flow_sipp_wait (sb);

  caller_dialog (a, &alice_dialog);
  assert_notifies (a, &alice_dialog, 200, "SIP/2.0 200 OK");
  assert_not_before (c, assert_target_invite (c, &carol, "bob", "alice"), a,
                     require_request (a->sent, "REFER ", 0), "carol's INVITE after alice's REFER");
  assert_reinvites_keep_port (b, FALSE, b_relay, bob.rtp_port);
  flow_assert_heard_only (before, bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard_only (before, alice.rtp_port, a_relay, SSRC_BOB);
  flow_assert_heard_only (after, carol.rtp_port, c_relay, SSRC_BOB);
  assert_heard_one_stream (after, bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_not_heard (after, bob.rtp_port, SSRC_CAROL);
  flow_assert_not_heard (after, alice.rtp_port, SSRC_BOB);
  flow_assert_not_heard (after, carol.rtp_port, SSRC_ALICE);
  /* alice hung up herself; bob's one BYE is carol's hangup. */
  g_assert_cmpuint (count_requests (a->received, "BYE "), ==, 0);
  flow_require_response (a->received, 200, "BYE", 0);
  g_assert_cmpuint (count_requests (b->received, "BYE "), ==, 1);
  assert_not_before (b, require_request (b->received, "BYE ", 0), c,
                     require_request (c->sent, "BYE ", 0), "bob's BYE after carol's");
  flow_daemon_stop (d);
}

/* ---- attended transfer (flow 15) ---------------------------------------------------- */

/* A traced stream's sources, told apart by payload. */
typedef struct {
  guint8 fill;
  char letter;
} Source;

static const Source sources[] = {
  { FILL_ALICE, 'A' }, { FILL_BOB, 'B' }, { FILL_BOB2, '2' }, { FILL_CAROL, 'C' },
};

static const FlowRtpPacket *
pkt (GArray *pkts, guint i)
{
  return &g_array_index (pkts, FlowRtpPacket, i);
}

static char
source_of (const FlowRtpPacket *p)
{
  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    if (flow_rtp_is_fill (p, sources[i].fill))
      return sources[i].letter;
  return '?';
}

/* The stream's runs by source ("BC": bob's audio, then carol's); first
 * and count say where the first 8 start and how long they are. */
static char *
stream_runs (GArray *pkts, guint first[8], guint count[8])
{
  GString *pattern = g_string_new (NULL);
  guint start = 0;

  for (guint i = 1; i <= pkts->len; i++) {
    char who = source_of (pkt (pkts, i - 1));
    if (i < pkts->len && source_of (pkt (pkts, i)) == who)
      continue;
    if (pattern->len < 8) {
      first[pattern->len] = start;
      count[pattern->len] = i - start;
    }
    g_string_append_c (pattern, who);
    start = i;
  }
  return g_string_free (pattern, FALSE);
}

static void
note_stream (const char *who, GArray *pkts)
{
  g_autoptr (GString) s = g_string_new (NULL);

  g_string_append_printf (s, "%s received %u RTP packets (#: src ssrc seq M ts time source):",
                          who, pkts->len);
  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i);
    g_string_append_printf (s, "\n  %u: %u %#x %u %u %u %" G_GINT64_FORMAT " %c", i, p->src_port,
                            p->ssrc, p->seq, p->marker, p->timestamp, p->time_us,
                            source_of (p));
  }
  flow_note ("%s", s->str);
}

/* One RTP stream out of relay_port across a switch of source (the
 * notes/media.md rule): the runs of sources `want` ("BC"), each of at
 * least MIN_PHASE_PACKETS; one SSRC, the first packet's; sequence numbers
 * going on by one; the marker on the first packet of each later run and
 * nowhere else; timestamps going on by a frame within a run and forward by
 * less than 2 s at a switch. The probe's endpoints start apart, so that
 * packets passed through unchanged would break the sequence there. Returns
 * where the second run starts. */
static guint
assert_one_stream (const char *who, GArray *pkts, guint16 relay_port, const char *want)
{
  guint first[8] = { 0 }, count[8] = { 0 };
  g_autofree char *runs = NULL;
  guint n_runs = (guint) strlen (want);

  note_stream (who, pkts);
  g_assert_cmpuint (pkts->len, >, 0);
  runs = stream_runs (pkts, first, count);
  if (strcmp (runs, want) != 0)
    g_printerr ("flow: %s heard the sources %s (want %s; A alice, B bob, 2 bob's second line, "
                "C carol)\n", who, runs, want);
  g_assert_cmpstr (runs, ==, want);
  for (guint r = 0; r < n_runs; r++) {
    if (count[r] < MIN_PHASE_PACKETS)
      g_printerr ("flow: %s heard %u packets of %c (want >= %d)\n", who, count[r], want[r],
                  MIN_PHASE_PACKETS);
    g_assert_cmpuint (count[r], >=, MIN_PHASE_PACKETS);
  }
  for (guint i = 0, r = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i), *prev = i ? pkt (pkts, i - 1) : NULL;
    gboolean is_switch = r + 1 < n_runs && i == first[r + 1];
    if (is_switch)
      r++;
    if (p->src_port != relay_port || p->ssrc != pkt (pkts, 0)->ssrc || p->marker != is_switch ||
        (prev && p->seq != (guint16) (prev->seq + 1)))
      g_printerr ("flow: %s's packet %u (%c): from %u, SSRC %#x, seq %u after %u, marker %d "
                  "(want from %u, SSRC %#x, seq + 1, marker %d)\n", who, i, source_of (p),
                  p->src_port, p->ssrc, p->seq, prev ? prev->seq : 0, p->marker, relay_port,
                  pkt (pkts, 0)->ssrc, is_switch);
    g_assert_cmpuint (p->src_port, ==, relay_port);
    g_assert_cmphex (p->ssrc, ==, pkt (pkts, 0)->ssrc);
    g_assert_cmpint (p->marker, ==, is_switch);
    if (!prev)
      continue;
    g_assert_cmpuint (p->seq, ==, (guint16) (prev->seq + 1));
    if (is_switch) {
      guint32 advance = p->timestamp - prev->timestamp;
      flow_note ("%s: switch at packet %u: timestamp + %u", who, i, advance);
      g_assert_cmpuint (advance, >, 0);
      g_assert_cmpuint (advance, <, 2 * 8000);
    } else {
      g_assert_cmpuint (p->timestamp - prev->timestamp, ==, PCMA_FRAME);
    }
  }
  return n_runs > 1 ? first[1] : pkts->len;
}

/* Packets that arrived from since_us on. */
static guint
count_since (GArray *pkts, gint64 since_us)
{
  guint n = 0;
  for (guint i = 0; i < pkts->len; i++)
    n += pkt (pkts, i)->time_us >= since_us;
  return n;
}

/* Packets of source `letter` (see sources[]). */
static guint
count_source (GArray *pkts, char letter)
{
  guint n = 0;
  for (guint i = 0; i < pkts->len; i++)
    n += source_of (pkt (pkts, i)) == letter;
  return n;
}

/* "%40"-style escaping of everything but unreserved characters, for a
 * header inside a URI (RFC 3261 §19.1.1). */
static char *
uri_escape (const char *s)
{
  return g_uri_escape_string (s, NULL, FALSE);
}

/* alice calls bob; bob holds her, calls carol (his second line), and
 * refers alice to carol with Replaces naming his call with carol. One
 * traced probe runs from before the REFER to well after it. */
static void
test_attended (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  FlowParty alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  FlowParty bob = flow_party ("bob", "xfer-uas-hold.xml", "b");
  FlowParty bob2 = flow_party ("bob", "xfer-uac-consult.xml", "b2");
  FlowParty carol = flow_party ("carol", "xfer-uas-talk.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, b2 = NULL, br = NULL, c = NULL;
  g_autoptr (GArray) at_alice = NULL, at_bob = NULL, at_bob2 = NULL, at_carol = NULL;
  g_auto (GStrv) report = NULL, first = NULL, consult = NULL;
  g_autofree char *refer_to = NULL, *e_call = NULL, *e_to = NULL, *e_from = NULL;
  g_autofree char *contact = NULL;
  g_auto (Dialog) bob_dialog = { 0 };
  const char *refer, *notify_final, *b2_bye, *c_ok;
  guint16 a_relay, b_relay, b2_relay, c_relay;
  guint switch_at;
  FlowSipp *sa, *sb, *sb2, *sbr, *sc;

  alice.recv_timeout = "6000";  /* hangs up 6 s after her last re-INVITE */
  bob.pause_ms = "1000";        /* holds alice 1 s after answering */
  alice.timeout = bob.timeout = bob2.timeout = carol.timeout = "30s";
  sc = flow_callee_start (d, &carol);
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  a_relay = flow_wait_port_file ("a");
  b_relay = flow_wait_port_file ("b");
  first = flow_wait_lines_file ("b-dialog.txt", 5);
  flow_wait_port_file ("b-held");
  sb2 = flow_caller_start (d, &bob2, "carol");
  b2_relay = flow_wait_port_file ("b2");
  c_relay = flow_wait_port_file ("c");
  consult = flow_wait_lines_file ("b2-dialog.txt", 3);

  /* bob's phone writes the Replaces: his consultation dialog, tandem's tag
   * as to-tag, his own as from-tag (RFC 3891 §3, from tandem's side). */
  e_call = uri_escape (consult[0]);
  e_from = uri_escape (consult[1]);
  e_to = uri_escape (consult[2]);
  refer_to = g_strdup_printf ("sip:carol@pbx.test?Replaces=%s%%3Bto-tag%%3D%s%%3Bfrom-tag%%3D%s",
                              e_call, e_to, e_from);
  contact = g_strdup_printf ("<sip:bob@127.0.0.1:%u>", bob.sip_port);
  flow_note ("bob's REFER: Refer-To: <%s>", refer_to);
  sbr = flow_sipp_start (d, "xfer-refer.xml", "-cid_str", first[0], "-d", "1500",
                         "-key", "ruri", first[3], "-key", "from_tag", first[2],
                         "-key", "to", first[4], "-key", "contact", contact,
                         "-key", "refer_to", refer_to, NULL);
  {
    /* The endpoints start apart (see assert_one_stream). */
    FlowTraceEndpoint eps[] = { { alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE },
                                { bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB },
                                { bob2.rtp_port, b2_relay, SSRC_BOB2, FILL_BOB2 },
                                { carol.rtp_port, c_relay, SSRC_CAROL, FILL_CAROL } };
    const guint delays_ms[] = { 0, 0, 300, 500 };
    report = flow_probe_trace_delayed (eps, delays_ms, G_N_ELEMENTS (eps), 200);
  }
  br = flow_sipp_wait (sbr);
  g_assert_cmpint (refer_status (br, 0), ==, 202);
  b = flow_sipp_wait (sb);
  b2 = flow_sipp_wait (sb2);
  a = flow_sipp_wait (sa);
  c = flow_sipp_wait (sc);
  at_alice = flow_probe_packets (report, alice.rtp_port);
  at_bob = flow_probe_packets (report, bob.rtp_port);
  at_bob2 = flow_probe_packets (report, bob2.rtp_port);
  at_carol = flow_probe_packets (report, carol.rtp_port);
  refer = require_request (br->sent, "REFER ", 0);

  /* bob's first line: the NOTIFYs, then no dialog left. */
  callee_dialog (b, &bob_dialog);
  g_assert_cmpstr (bob_dialog.call_id, ==, first[0]);
  notify_final = assert_notifies (b, &bob_dialog, 200, "SIP/2.0 200 OK");
  assert_one_bye (b, "bob");
  /* His consultation line: replaced, so ended too (by tandem, as RFC 3891
   * has the replacing side do, or by bob). */
  b2_bye = assert_one_bye (b2, "bob's second line");
  if (b2_bye)
    assert_not_before (b2, b2_bye, br, refer, "the BYE of bob's second line after the REFER");
  /* carol: no new INVITE; her dialog lasts until alice hangs up. */
  g_assert_cmpuint (count_new_invites (c), ==, 1);
  assert_reinvites_keep_port (c, FALSE, c_relay, carol.rtp_port);
  c_ok = flow_require_response (c->sent, 200, "INVITE", 0);
  g_assert_nonnull (c_ok);
  g_assert_cmpuint (count_requests (c->received, "BYE "), ==, 1);
  g_assert_cmpuint (count_requests (a->received, "BYE "), ==, 0);
  assert_not_before (c, require_request (c->received, "BYE ", 0), a,
                     require_request (a->sent, "BYE ", 0), "carol's BYE after alice's");
  /* alice: held (bob's hold, relayed), then resumed after the REFER (a
   * re-INVITE that is sendrecv, said or by default); her relay port
   * throughout. */
  flow_assert_sdp_has (flow_require_msg (a->received, "INVITE ", 0), "a=sendonly");
  {
    const char *resume = NULL;
    for (guint i = 1; flow_find_msg (a->received, "INVITE ", i); i++) {
      const char *reinvite = flow_find_msg (a->received, "INVITE ", i);
      if (!flow_sdp_has (reinvite, "a=sendonly") && !flow_sdp_has (reinvite, "a=recvonly") &&
          !flow_sdp_has (reinvite, "a=inactive"))
        resume = reinvite;
    }
    if (!resume)
      g_printerr ("flow: alice was never resumed (no sendrecv re-INVITE after the hold)\n");
    g_assert_nonnull (resume);
    assert_not_before (a, resume, br, refer, "alice's resume after bob's REFER");
  }
  assert_reinvites_keep_port (a, TRUE, a_relay, alice.rtp_port);

  /* Media: alice hears bob (holding her), then carol, as one stream;
   * carol hears bob's second line, then alice, likewise; bob hears
   * nothing of alice, and nothing at all once the transfer is done. */
  switch_at = assert_one_stream ("alice", at_alice, a_relay, "BC");
  g_assert_cmpint (pkt (at_alice, switch_at)->time_us, >=,
                   flow_run_msg_time (br, refer) - SLACK_US);
  switch_at = assert_one_stream ("carol", at_carol, c_relay, "2A");
  g_assert_cmpint (pkt (at_carol, switch_at)->time_us, >=,
                   flow_run_msg_time (br, refer) - SLACK_US);
  note_stream ("bob", at_bob);
  note_stream ("bob's second line", at_bob2);
  g_assert_cmpuint (count_source (at_bob, 'A'), ==, 0);
  g_assert_cmpuint (count_source (at_bob2, 'A'), ==, 0);
  g_assert_cmpuint (count_since (at_bob, flow_run_msg_time (b, notify_final) + SLACK_US), ==, 0);
  g_assert_cmpuint (count_since (at_bob2, flow_run_msg_time (b, notify_final) + SLACK_US), ==, 0);
  flow_daemon_stop (d);
}

/* ---- INVITE with Replaces (RFC 3891) ------------------------------------------------ */

/* alice (xfer-uac-talk.xml, -recv_timeout alice_quiet or none) calls bob
 * (xfer-uas-talk.xml, his dialog in b-dialog.txt); returns once both have
 * the relay ports. */
typedef struct {
  FlowParty alice, bob;
  FlowSipp *sa, *sb;
  FlowRun *a, *b;
  guint16 a_relay, b_relay;
  char **bob_dialog;        /* Call-ID, tandem's tag, bob's tag */
} Talk;

static void
talk_clear (Talk *t)
{
  g_clear_pointer (&t->a, flow_run_free);
  g_clear_pointer (&t->b, flow_run_free);
  g_clear_pointer (&t->bob_dialog, g_strfreev);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Talk, talk_clear)

static void
talk_start (FlowDaemon *d, Talk *t, const char *alice_quiet)
{
  t->alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  t->alice.recv_timeout = alice_quiet;
  t->alice.timeout = "25s";
  t->bob = flow_party ("bob", "xfer-uas-talk.xml", "b");
  t->bob.timeout = "25s";
  t->sb = flow_callee_start (d, &t->bob);
  t->sa = flow_caller_start (d, &t->alice, "bob");
  t->a_relay = flow_wait_port_file ("a");
  t->b_relay = flow_wait_port_file ("b");
  t->bob_dialog = flow_wait_lines_file ("b-dialog.txt", 3);
}

static void
talk_finish (Talk *t)
{
  t->a = flow_sipp_finish (t->sa, "alice");
  t->b = flow_sipp_finish (t->sb, "bob");
}

/* "CALL-ID;to-tag=TANDEM;from-tag=BOB": a Replaces naming bob's dialog as
 * tandem, the UA that matches it, sees it (RFC 3891 §3). */
static char *
replaces_bob (const Talk *t)
{
  return g_strdup_printf ("%s;to-tag=%s;from-tag=%s", t->bob_dialog[0], t->bob_dialog[1],
                          t->bob_dialog[2]);
}

/* The call went on untouched after a refused Replaces: no re-INVITE to
 * either side, RTP both ways after the refusal, alice hung up herself and
 * bob's one BYE is that. */
static void
assert_talk_untouched (const Talk *t, char **after)
{
  flow_assert_heard_only (after, t->bob.rtp_port, t->b_relay, SSRC_ALICE);
  flow_assert_heard_only (after, t->alice.rtp_port, t->a_relay, SSRC_BOB);
  g_assert_cmpuint (flow_count_msgs (t->a->received, "INVITE "), ==, 0);
  g_assert_cmpuint (count_requests (t->b->received, "INVITE "), ==, 1);
  g_assert_cmpuint (count_requests (t->a->received, "BYE "), ==, 0);
  g_assert_cmpuint (count_requests (t->b->received, "BYE "), ==, 1);
  assert_not_before (t->b, require_request (t->b->received, "BYE ", 0), t->a,
                     require_request (t->a->sent, "BYE ", 0), "bob's BYE after alice's");
}

/* Until the scenario on `side` (xfer-uac-replaces.xml) wrote SIDE.port
 * (answered: TRUE) or SIDE-refused.port (FALSE), bounded. */
static gboolean
wait_replaces_answer (const char *side)
{
  g_autofree char *refused = g_strdup_printf ("%s-refused.port", side);
  g_autofree char *answered = g_strdup_printf ("%s.port", side);
  g_autofree char *refused_path = g_build_filename (flow_case_dir (), refused, NULL);
  g_autofree char *answered_path = g_build_filename (flow_case_dir (), answered, NULL);
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline) {
    if (g_file_test (answered_path, G_FILE_TEST_EXISTS))
      return TRUE;
    if (g_file_test (refused_path, G_FILE_TEST_EXISTS))
      return FALSE;
    g_usleep (10 * 1000);
  }
  g_printerr ("flow: neither %s nor %s written within 15 s\n", answered, refused);
  g_assert_not_reached ();
}

/* A Replaces INVITE that tandem must refuse with 481, by `user` to `callee`
 * (xfer-uac-replaces-refused.xml); returns its run. */
static FlowRun *
run_refused_replaces (FlowDaemon *d, const char *user, const char *side, const char *callee,
                      const char *replaces)
{
  const char *keys[] = { "replaces", replaces, NULL };
  FlowParty p = flow_party (user, "xfer-uac-replaces-refused.xml", side);
  FlowRun *run;

  p.keys = keys;
  flow_note ("%s sends INVITE sip:%s@pbx.test with Replaces: %s", user, callee, replaces);
  run = flow_sipp_wait (flow_caller_start (d, &p, callee));
  return run;
}

/* The status of the last final response the caller got (0: none). */
static int
last_final_status (const FlowRun *run)
{
  const char *last = NULL;
  g_autofree char *line = NULL;

  for (guint i = 0; i < run->received->len; i++)
    if (flow_msg_status (g_ptr_array_index (run->received, i)) >= 200)
      last = g_ptr_array_index (run->received, i);
  line = last ? flow_msg_start_line (last) : g_strdup ("none");
  flow_note ("the Replaces INVITE's last final response: %s", line);
  return last ? flow_msg_status (last) : 0;
}

static void
assert_refused_481 (const FlowRun *run)
{
  g_assert_cmpint (last_final_status (run), ==, 481);
  g_assert_cmpint (flow_caller_final (run), ==, 481);
}

/* bob's second phone takes over his established call: INVITE with
 * Replaces naming tandem's dialog with his first phone. The first phone
 * gets BYE, alice's dialog stays and she talks to the second phone. */
static void
test_replaces_pickup (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Talk) t = { 0 };
  g_autofree char *replaces = NULL;
  const char *keys[2 + 1] = { "replaces", NULL, NULL };
  FlowParty bob2 = flow_party ("bob", "xfer-uac-replaces.xml", "b2");
  g_autoptr (FlowRun) r2 = NULL;
  g_auto (GStrv) before = NULL, after = NULL;
  const char *ok, *invite;
  guint16 b2_relay;

  talk_start (d, &t, NULL);
  before = flow_probe_pair (t.alice.rtp_port, t.a_relay, SSRC_ALICE, t.bob.rtp_port, t.b_relay,
                            SSRC_BOB);
  replaces = replaces_bob (&t);
  keys[1] = replaces;
  bob2.keys = keys;
  bob2.pause_ms = PHASE_MS;
  bob2.timeout = "20s";
  flow_note ("bob's second phone: Replaces: %s", replaces);
  {
    FlowSipp *s2 = flow_caller_start (d, &bob2, "alice");
    if (!wait_replaces_answer ("b2")) {
      /* Refused: with which status, before anything else fails. */
      r2 = flow_sipp_wait (s2);
      g_assert_cmpint (last_final_status (r2), ==, 200);
    }
    b2_relay = flow_wait_port_file ("b2");
    {
      FlowProbeEndpoint eps[] = { { t.alice.rtp_port, t.a_relay, SSRC_ALICE, 0 },
                                  { t.bob.rtp_port, t.b_relay, SSRC_BOB, 0 },
                                  { bob2.rtp_port, b2_relay, SSRC_BOB2, 0 } };
      after = flow_probe_run (eps, G_N_ELEMENTS (eps));
    }
    r2 = flow_sipp_finish (s2, "bob's second phone");
  }
  talk_finish (&t);

  invite = require_request (r2->sent, "INVITE ", 1);
  ok = flow_require_response (r2->received, 200, "INVITE", 0);
  g_assert_cmpuint (flow_assert_relay_sdp (ok, bob2.rtp_port, FALSE, MEDIA_MIN, MEDIA_MAX), ==,
                    b2_relay);
  /* The first phone's leg ended by tandem, after the Replaces came. */
  g_assert_cmpuint (count_requests (t.b->received, "BYE "), ==, 1);
  g_assert_cmpuint (count_requests (t.b->sent, "BYE "), ==, 0);
  assert_not_before (t.b, require_request (t.b->received, "BYE ", 0), r2, invite,
                     "the first phone's BYE after the Replaces INVITE");
  /* alice's dialog lasted until the second phone hung up. */
  assert_reinvites_keep_port (t.a, TRUE, t.a_relay, t.alice.rtp_port);
  g_assert_cmpuint (count_requests (t.a->received, "BYE "), ==, 1);
  assert_not_before (t.a, require_request (t.a->received, "BYE ", 0), r2,
                     require_request (r2->sent, "BYE ", 0), "alice's BYE after the second phone's");
  flow_assert_heard_only (before, t.bob.rtp_port, t.b_relay, SSRC_ALICE);
  flow_assert_heard_only (after, bob2.rtp_port, b2_relay, SSRC_ALICE);
  assert_heard_one_stream (after, t.alice.rtp_port, t.a_relay, SSRC_BOB);
  flow_assert_not_heard (after, t.bob.rtp_port, SSRC_ALICE);
  flow_assert_not_heard (after, t.alice.rtp_port, SSRC_BOB2);
  flow_daemon_stop (d);
}

/* A Replaces naming no dialog: 481, the call goes on. */
static void
test_replaces_no_dialog (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Talk) t = { 0 };
  g_autoptr (FlowRun) r2 = NULL;
  g_auto (GStrv) after = NULL;

  talk_start (d, &t, "5000");
  r2 = run_refused_replaces (d, "bob", "b2", "alice",
                             "no-such-call@127.0.0.1;to-tag=no-such-tag;from-tag=nor-this");
  after = flow_probe_pair (t.alice.rtp_port, t.a_relay, SSRC_ALICE, t.bob.rtp_port, t.b_relay,
                           SSRC_BOB);
  talk_finish (&t);
  assert_refused_481 (r2);
  assert_talk_untouched (&t, after);
  flow_daemon_stop (d);
}

/* carol names bob's dialog (the right Call-ID and tags): it is not hers,
 * 481, the call goes on. */
static void
test_replaces_other_user (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Talk) t = { 0 };
  g_autoptr (FlowRun) r2 = NULL;
  g_auto (GStrv) after = NULL;
  g_autofree char *replaces = NULL;

  talk_start (d, &t, "5000");
  replaces = replaces_bob (&t);
  r2 = run_refused_replaces (d, "carol", "c2", "alice", replaces);
  after = flow_probe_pair (t.alice.rtp_port, t.a_relay, SSRC_ALICE, t.bob.rtp_port, t.b_relay,
                           SSRC_BOB);
  talk_finish (&t);
  assert_refused_481 (r2);
  assert_talk_untouched (&t, after);
  flow_daemon_stop (d);
}

/* While bob's phone rings, alice (her own user) names her early dialog
 * with tandem, which tandem did not set up (it answers it): 481; bob is
 * not rung again, answers, and the call goes on. */
static void
test_replaces_early_dialog (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  FlowParty alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  FlowParty bob = flow_party ("bob", "call-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL, r2 = NULL;
  g_auto (GStrv) early = NULL, after = NULL;
  g_autofree char *replaces = NULL;
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  bob.pause_ms = "2500";         /* rings 2.5 s before answering */
  alice.recv_timeout = "4000";   /* hangs up 4 s after the answer */
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  early = flow_wait_lines_file ("a-early.txt", 3);
  /* tandem's tag (in the To of its 180) is the to-tag, alice's the from-tag. */
  replaces = g_strdup_printf ("%s;to-tag=%s;from-tag=%s", early[0], early[2], early[1]);
  r2 = run_refused_replaces (d, "alice", "a2", "bob", replaces);
  a_relay = flow_wait_port_file ("a");
  b_relay = flow_wait_port_file ("b");
  after = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");

  assert_refused_481 (r2);
  /* It was refused while the call still rang. */
  assert_not_before (b, flow_require_response (b->sent, 200, "INVITE", 0), r2,
                     flow_run_last_received (r2), "bob's answer after the 481");
  g_assert_cmpuint (count_new_invites (b), ==, 1);
  g_assert_cmpuint (flow_count_responses (a->received, 200, "INVITE"), ==, 1);
  flow_assert_heard_only (after, bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard_only (after, alice.rtp_port, a_relay, SSRC_BOB);
  flow_daemon_stop (d);
}

/* ---- bad input ---------------------------------------------------------------------- */

/* A REFER outside any dialog, from bob (digest answered if asked), while
 * alice and bob talk: a 4xx, nobody is called, the call goes on. */
static void
test_bad_out_of_dialog (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Talk) t = { 0 };
  FlowParty carol = flow_party ("carol", "call-uas.xml", "c");
  g_autoptr (FlowRun) r = NULL, c = NULL;
  g_auto (GStrv) after = NULL;
  FlowSipp *sc;
  int status;

  carol.timeout = "4s";          /* waits in vain for a call that must not come */
  sc = flow_callee_start (d, &carol);
  talk_start (d, &t, "5000");
  r = flow_sipp_try (d, "xfer-refer-ood.xml", "-au", "bob", "-ap", "bob-secret",
                     "-auth_uri", "alice@pbx.test", "-key", "caller", "bob",
                     "-key", "callee", "alice", NULL);
  status = refer_status (r, count_requests (r->sent, "REFER ") - 1);
  /* REFER is not allowed outside a call's dialog: 405, and no NOTIFY. */
  g_assert_cmpint (status, ==, 405);
  after = flow_probe_pair (t.alice.rtp_port, t.a_relay, SSRC_ALICE, t.bob.rtp_port, t.b_relay,
                           SSRC_BOB);
  talk_finish (&t);
  c = flow_sipp_collect (sc);
  g_assert_cmpuint (c->received->len, ==, 0);
  assert_talk_untouched (&t, after);
  flow_daemon_stop (d);
}

/* bob refers with a bad or impossible line; the REFER's outcome is
 * checked by the caller; alice and bob talk on and bob hangs up. */
static void
run_bad_refer (FlowDaemon *d, Blind *x, const char *refer_line)
{
  blind_run (d, x, NULL, refer_line, "stay", FALSE);
  g_assert_cmpuint (count_requests (x->a->received, "INVITE "), ==, 0);
  assert_blind_stayed (x);
}

/* REFER without Refer-To: 400, no NOTIFY. */
static void
test_bad_no_refer_to (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Blind) x = { 0 };

  run_bad_refer (d, &x, "Subject: no Refer-To in this REFER");
  g_assert_cmpint (refer_status (x.b, 0), ==, 400);
  g_assert_false (x.accepted);
  g_assert_cmpuint (count_requests (x.b->received, "NOTIFY "), ==, 0);
  flow_daemon_stop (d);
}

/* Refer-To a user tandem does not know: 404 at once, or 202 and a final
 * NOTIFY with 404; the call goes on either way. */
static void
test_bad_unroutable (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (Blind) x = { 0 };
  int status;

  run_bad_refer (d, &x, "Refer-To: <sip:nobody@pbx.test>");
  status = refer_status (x.b, 0);
  if (status == 202) {
    g_auto (Dialog) bob_dialog = { 0 };
    callee_dialog (x.b, &bob_dialog);
    assert_notifies (x.b, &bob_dialog, 404, NULL);
  } else {
    g_assert_cmpint (status, ==, 404);
    g_assert_cmpuint (count_requests (x.b->received, "NOTIFY "), ==, 0);
  }
  flow_daemon_stop (d);
}

/* A second REFER while the first runs (carol takes 2 s to say she is
 * busy): 491; the first goes on to its end (486), carol is called once,
 * alice and bob talk on. */
static void
test_bad_second_refer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  const char *bob_keys[] = { "refer_line", "Refer-To: <sip:carol@pbx.test>", NULL };
  FlowParty alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  FlowParty bob = flow_party ("bob", "xfer-uas-refer-twice.xml", "b");
  FlowParty carol = flow_party ("carol", "xfer-uas-busy-late.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  g_auto (GStrv) after = NULL;
  g_auto (Dialog) bob_dialog = { 0 };
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb, *sc;

  alice.timeout = bob.timeout = carol.timeout = "25s";
  bob.pause_ms = PHASE_MS;
  bob.keys = bob_keys;
  carol.pause_ms = "2000";
  sc = flow_callee_start (d, &carol);
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  a_relay = flow_wait_port_file ("a");
  b_relay = flow_wait_port_file ("b");
  if (flow_wait_port_file ("b-done") != 1) {
    b = flow_sipp_wait (sb);
    g_assert_cmpint (refer_status (b, 0), ==, 202);
  }
  after = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  if (!b)
    b = flow_sipp_wait (sb);
  a = flow_sipp_wait (sa);
  c = flow_sipp_wait (sc);

  g_assert_cmpint (refer_status (b, 0), ==, 202);
  g_assert_cmpint (refer_status (b, 1), ==, 491);
  callee_dialog (b, &bob_dialog);
  assert_notifies (b, &bob_dialog, 486, "SIP/2.0 486 Busy Here");
  assert_target_invite (c, &carol, "alice", "bob");
  flow_assert_heard_only (after, bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard_only (after, alice.rtp_port, a_relay, SSRC_BOB);
  g_assert_cmpuint (count_requests (b->received, "BYE "), ==, 0);
  g_assert_cmpuint (count_requests (a->received, "BYE "), ==, 1);
  flow_daemon_stop (d);
}

/* ---- what tandem advertises ----------------------------------------------------------- */

/* REFER in Allow and replaces in Supported: in OPTIONS, in the 200 to a
 * caller; REFER in Allow of the INVITE to a callee (its phone offers
 * transfer only if allowed). */
static void
test_allow (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autoptr (FlowRun) options = flow_sipp (d, "options.xml", NULL);
  g_auto (FlowCall) call = { .alice = flow_party ("alice", "call-uac.xml", "a"),
                             .bob = flow_party ("bob", "call-uas.xml", "b") };
  const char *ok = flow_run_last_received (options), *answer, *invite;

  g_assert_cmpint (flow_msg_status (ok), ==, 200);
  /* REFER is taken in a call's dialog only: outside one, Debian's nua
   * would NOTIFY "100 Trying" before tandem could refuse it. */
  g_assert_false (header_lists (ok, "Allow", "REFER"));
  assert_header_lists (ok, "Allow", "INVITE");
  assert_header_lists (ok, "Supported", "replaces");
  flow_call_run (d, &call);
  answer = flow_require_response (call.a->received, 200, "INVITE", 0);
  assert_header_lists (answer, "Allow", "REFER");
  assert_header_lists (answer, "Supported", "replaces");
  invite = flow_require_msg (call.b->received, "INVITE ", 0);
  assert_header_lists (invite, "Allow", "REFER");
  flow_daemon_stop (d);
}

/* The transferor abandons the transfer: bob hangs up as soon as his REFER
 * is accepted (202 and the first NOTIFY), while carol still rings. alice
 * is not hung up with him: when carol answers she takes alice's call, on
 * alice's relay port; bob hears of nothing more (his dialog is
 * gone: no NOTIFY after his BYE). */
static void
test_blind_transferor_leaves (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  const char *bob_keys[] = { "refer_to", "sip:carol@pbx.test", NULL };
  FlowParty alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  FlowParty bob = flow_party ("bob", "xfer-uas-refer-leave.xml", "b");
  FlowParty carol = flow_party ("carol", "xfer-uas-ring-hangup.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  g_auto (GStrv) after = NULL;
  guint16 a_relay, c_relay;
  FlowSipp *sa, *sb, *sc;
  const char *bob_bye, *c_ok;

  bob.pause_ms = "1000";
  bob.keys = bob_keys;
  alice.timeout = bob.timeout = carol.timeout = "25s";
  carol.pause_ms = "3000";
  sc = flow_callee_start (d, &carol);
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  a_relay = flow_wait_port_file ("a");
  b = flow_sipp_wait (sb);
  c_relay = flow_wait_port_file ("c");
  flow_wait_port_file ("c-answered");
  after = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, carol.rtp_port, c_relay,
                           SSRC_CAROL);
  c = flow_sipp_wait (sc);
  a = flow_sipp_wait (sa);

  g_assert_cmpint (refer_status (b, 0), ==, 202);
  g_assert_cmpuint (count_requests (b->received, "NOTIFY "), ==, 1);
  bob_bye = require_request (b->sent, "BYE ", 0);
  flow_require_response (b->received, 200, "BYE", 0);
  assert_target_invite (c, &carol, "alice", "bob");
  c_ok = flow_require_response (c->sent, 200, "INVITE", 0);
  assert_not_before (c, c_ok, b, bob_bye, "carol's answer after bob left");
  flow_assert_heard_only (after, carol.rtp_port, c_relay, SSRC_ALICE);
  /* No RTP went through alice's port before: carol's is its first stream. */
  assert_heard_one_stream (after, alice.rtp_port, a_relay, SSRC_CAROL);
  /* alice's one BYE is carol's hangup, not bob's. */
  g_assert_cmpuint (count_requests (a->received, "BYE "), ==, 1);
  assert_not_before (a, require_request (a->received, "BYE ", 0), c,
                     require_request (c->sent, "BYE ", 0), "alice's BYE after carol's");
  flow_daemon_stop (d);
}

/* The transferee leaves while the target rings: alice hangs up after
 * bob's REFER was accepted, before carol answers. Her call ends as any
 * call does (tandem BYEs bob), and the transfer has nobody to connect:
 * carol's ringing is cancelled. */
static void
test_blind_transferee_leaves (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  const char *bob_keys[] = { "refer_line", "Refer-To: <sip:carol@pbx.test>", "after", "stay",
                             NULL };
  FlowParty alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  FlowParty bob = flow_party ("bob", "xfer-uas-refer.xml", "b");
  FlowParty carol = flow_party ("carol", "call-uas-ring.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  FlowSipp *sa, *sb, *sc;
  const char *a_bye;

  bob.pause_ms = "1000";
  bob.keys = bob_keys;
  alice.recv_timeout = "2500";   /* hangs up 2.5 s after her call is set up */
  alice.timeout = bob.timeout = carol.timeout = "20s";
  sc = flow_callee_start (d, &carol);
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  a = flow_sipp_wait (sa);
  c = flow_sipp_wait (sc);
  b = flow_sipp_wait (sb);

  g_assert_cmpint (refer_status (b, 0), ==, 202);
  assert_target_invite (c, &carol, "alice", "bob");
  a_bye = require_request (a->sent, "BYE ", 0);
  flow_require_response (a->received, 200, "BYE", 0);
  flow_assert_cancelled (c);
  assert_not_before (c, require_request (c->received, "CANCEL ", 0), a, a_bye,
                     "carol's CANCEL after alice's BYE");
  g_assert_cmpuint (count_requests (b->received, "BYE "), ==, 1);
  assert_not_before (b, require_request (b->received, "BYE ", 0), a, a_bye,
                     "bob's BYE after alice's");
  flow_daemon_stop (d);
}

/* The transfer target forwards on busy: carol is busy and forwards to
 * dave, who answers; alice ends up talking to dave. dave's INVITE carries
 * both the Diversion naming carol and bob's Referred-By; bob's final
 * NOTIFY is dave's 200. */
static void
test_blind_target_forwards (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("\n[user carol]\npassword = carol-secret\n"
                                           "forward-busy = dave\n"
                                           "[user dave]\npassword = dave-secret\n");
  const char *bob_keys[] = { "refer_line", "Refer-To: <sip:carol@pbx.test>", "after", "bye",
                             NULL };
  FlowParty alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  FlowParty bob = flow_party ("bob", "xfer-uas-refer.xml", "b");
  FlowParty carol = flow_party ("carol", "call-uas-busy.xml", "c");
  FlowParty dave = flow_party ("dave", "call-uas-hangup.xml", "d");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL, dv = NULL;
  g_auto (GStrv) after = NULL;
  g_auto (Dialog) bob_dialog = { 0 };
  g_auto (GStrv) diversion = NULL;
  guint16 a_relay, d_relay;
  FlowSipp *sa, *sb, *sc, *sd;
  const char *invite;

  bob.pause_ms = "1000";
  bob.keys = bob_keys;
  dave.pause_ms = "3000";
  alice.timeout = bob.timeout = carol.timeout = dave.timeout = "20s";
  sc = flow_callee_start (d, &carol);
  sd = flow_callee_start (d, &dave);
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  a_relay = flow_wait_port_file ("a");
  d_relay = flow_wait_port_file ("d");
  g_assert_cmpint (flow_wait_port_file ("b-done"), ==, 1);
  after = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, dave.rtp_port, d_relay,
                           SSRC_DAVE);
  b = flow_sipp_wait (sb);
  c = flow_sipp_wait (sc);
  dv = flow_sipp_wait (sd);
  a = flow_sipp_wait (sa);

  callee_dialog (b, &bob_dialog);
  assert_notifies (b, &bob_dialog, 200, "SIP/2.0 200 OK");
  flow_assert_error_acked (c);
  invite = assert_target_invite (dv, &dave, "alice", "bob");
  diversion = flow_msg_headers (invite, "Diversion");
  g_assert_nonnull (diversion[0]);
  g_assert_nonnull (strstr (diversion[0], "sip:carol@pbx.test"));
  flow_assert_heard_only (after, dave.rtp_port, d_relay, SSRC_ALICE);
  assert_heard_one_stream (after, alice.rtp_port, a_relay, SSRC_DAVE);
  flow_daemon_stop (d);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/transfer/allow", test_allow);
  flow_add_test ("/transfer/blind/callee-hangs-up", test_blind);
  flow_add_test ("/transfer/blind/tandem-hangs-up", test_blind_tandem_hangs_up);
  flow_add_test ("/transfer/blind/target-busy", test_blind_target_busy);
  flow_add_test ("/transfer/blind/target-no-answer", test_blind_target_no_answer);
  flow_add_test ("/transfer/blind/by-caller", test_blind_by_caller);
  flow_add_test ("/transfer/blind/transferor-leaves", test_blind_transferor_leaves);
  flow_add_test ("/transfer/blind/transferee-leaves", test_blind_transferee_leaves);
  flow_add_test ("/transfer/blind/target-forwards", test_blind_target_forwards);
  flow_add_test ("/transfer/attended", test_attended);
  flow_add_test ("/transfer/replaces/pickup", test_replaces_pickup);
  flow_add_test ("/transfer/replaces/no-dialog", test_replaces_no_dialog);
  flow_add_test ("/transfer/replaces/other-user", test_replaces_other_user);
  flow_add_test ("/transfer/replaces/early-dialog", test_replaces_early_dialog);
  flow_add_test ("/transfer/bad/out-of-dialog", test_bad_out_of_dialog);
  flow_add_test ("/transfer/bad/no-refer-to", test_bad_no_refer_to);
  flow_add_test ("/transfer/bad/unroutable", test_bad_unroutable);
  flow_add_test ("/transfer/bad/second-refer", test_bad_second_refer);
  return g_test_run ();
}
