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
 * Each case starts its own daemon (see flow-harness.h); the parties, SDP,
 * probe and CDR helpers are flow-calls.h's. */
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "flow-calls.h"

/* The relay range: below the kernel's ephemeral ports (where the harness's
 * free ports come from), apart from test-call's range (20000-29999) and from
 * the relay unit tests' port blocks (10000-19599). */
#define MEDIA_MIN 30000
#define MEDIA_MAX 32699
#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 30000-32699\n"
#define PLUGINS_CONFIG "[plugins]\nenabled = forward;waiting\n"

#define SSRC_ALICE 0xA11CEu
#define SSRC_BOB 0xB0Bu
#define SSRC_BOB2 0xB0B2u
#define SSRC_CAROL 0xCA201u

/* A phase of a held call lasts this long in the scenarios (SIPp -d): the
 * probe (FLOW_PROBE_PACKETS × 20 ms, plus 400 ms linger) fits in with room. */
#define PHASE_MS "2500"

/* ---- tandem ------------------------------------------------------------------------ */

static const char *const users[] = { "alice", "bob", "carol", "dave" };

/* tandem with our relay range, both plugins, the given [calls] lines (and
 * any groups after them) and users alice, bob, carol and dave (password
 * NAME-secret). The variable
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

/* ---- reading messages ------------------------------------------------------------------- */

/* The provisional and final statuses (but 100) the caller got for its
 * authenticated INVITE, in order: "180 181 180 200". */
static char *
invite_statuses (const FlowRun *caller)
{
  guint64 cseq = flow_msg_cseq (flow_require_msg (caller->sent, "INVITE ", 1));
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint i = 0; i < caller->received->len; i++) {
    const char *m = g_ptr_array_index (caller->received, i);
    g_autofree char *method = NULL;
    int status = flow_msg_status (m);
    if (status <= 100 || flow_msg_cseq (m) != cseq)
      continue;
    method = flow_require_header (m, "CSeq");
    if (g_str_has_suffix (method, "INVITE"))
      g_string_append_printf (s, "%s%d", s->len ? " " : "", status);
  }
  return g_strdup (s->str);
}

/* The message's Diversion entries (newest first, whether tandem put them on
 * one line or several) are exactly the NULL-terminated list. */
static void assert_diversions (const char *msg, ...) G_GNUC_NULL_TERMINATED;

static void
assert_diversions (const char *msg, ...)
{
  g_auto (GStrv) got = flow_msg_header_entries (msg, "Diversion");
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

/* An SDP tandem wrote, on our relay range (flow_assert_relay_sdp). */
static guint16
assert_relay_sdp (const char *msg, guint16 not_port)
{
  return flow_assert_relay_sdp (msg, not_port, FALSE, MEDIA_MIN, MEDIA_MAX);
}

/* The INVITE a callee got names the caller in From and came to its
 * registered Contact. */
static void
assert_invite_from (const char *invite, const char *caller, const FlowParty *callee)
{
  g_autofree char *from = flow_require_header (invite, "From");
  g_autofree char *want_from = g_strdup_printf ("<sip:%s@pbx.test>", caller);
  g_autofree char *ruri = g_strdup_printf ("INVITE sip:%s@127.0.0.1:%u", callee->user,
                                           callee->sip_port);

  g_assert_nonnull (strstr (from, want_from));
  g_assert_true (g_str_has_prefix (invite, ruri));
}

/* ---- a forwarded call ------------------------------------------------------------------- */

/* alice calls bob; bob, carol and dave, those given a scenario, are
 * registered callees (sides "b", "c", "d"). A callee marked idle is to wait
 * in vain (for a call that must not come) until its -timeout: its run is
 * collected, not asserted to succeed. */
typedef struct {
  FlowParty alice, bob, carol, dave;
  gboolean bob_idle, carol_idle, dave_idle;
  FlowSipp *sa, *sb, *sc, *sd;
  FlowRun *a, *b, *c, *dv;
} Forward;

static void
forward_clear (Forward *f)
{
  g_clear_pointer (&f->a, flow_run_free);
  g_clear_pointer (&f->b, flow_run_free);
  g_clear_pointer (&f->c, flow_run_free);
  g_clear_pointer (&f->dv, flow_run_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Forward, forward_clear)

/* The parties' scenarios; NULL for a callee that takes no part. */
static Forward
forward (const char *alice, const char *bob, const char *carol, const char *dave)
{
  Forward f = { .alice = flow_party ("alice", alice, "a") };

  if (bob)
    f.bob = flow_party ("bob", bob, "b");
  if (carol)
    f.carol = flow_party ("carol", carol, "c");
  if (dave)
    f.dave = flow_party ("dave", dave, "d");
  return f;
}

/* Starts the callees (registered) in order, then alice's call to bob. */
static void
forward_start (FlowDaemon *d, Forward *f)
{
  if (f->bob.scenario)
    f->sb = flow_callee_start (d, &f->bob);
  if (f->carol.scenario)
    f->sc = flow_callee_start (d, &f->carol);
  if (f->dave.scenario)
    f->sd = flow_callee_start (d, &f->dave);
  f->sa = flow_caller_start (d, &f->alice, "bob");
}

static FlowRun *
finish_callee (FlowSipp *s, const FlowParty *p, gboolean idle)
{
  if (!s)
    return NULL;
  return idle ? flow_sipp_collect (s) : flow_sipp_finish (s, p->user);
}

/* Collects alice's run, then the callees'. */
static void
forward_finish (Forward *f)
{
  f->a = flow_sipp_finish (f->sa, "alice");
  f->b = finish_callee (f->sb, &f->bob, f->bob_idle);
  f->c = finish_callee (f->sc, &f->carol, f->carol_idle);
  f->dv = finish_callee (f->sd, &f->dave, f->dave_idle);
}

static void
forward_run (FlowDaemon *d, Forward *f)
{
  forward_start (d, f);
  forward_finish (f);
}

/* forward_run for a call that ends up with carol: alice's scenario pauses
 * PHASE_MS once carol has answered, while alice and carol send RTP to their
 * relay ports (returned). Returns the probe's report. */
static char **
forward_to_carol_with_media (FlowDaemon *d, Forward *f, guint16 *a_relay, guint16 *c_relay)
{
  char **report;

  f->alice.pause_ms = PHASE_MS;
  forward_start (d, f);
  *a_relay = flow_wait_port_file ("a");
  *c_relay = flow_wait_port_file ("c");
  report = flow_probe_pair (f->alice.rtp_port, *a_relay, SSRC_ALICE, f->carol.rtp_port, *c_relay,
                            SSRC_CAROL);
  forward_finish (f);
  return report;
}

/* ---- forwarding on busy (flow 10) ----------------------------------------------------------- */

/* bob is busy and forwards to carol: alice hears 181, carol gets the call
 * with a Diversion naming bob, answers, and media flows alice ↔ carol. */
static void
test_forward_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  g_auto (Forward) f = forward ("feat-uac.xml", "call-uas-busy.xml", "call-uas.xml", NULL);
  g_auto (GStrv) report = NULL;
  g_autofree char *statuses = NULL, *forwarded_line = NULL;
  const char *c_inv, *b_inv, *forwarded, *ok;
  guint16 a_relay, c_relay;

  report = forward_to_carol_with_media (d, &f, &a_relay, &c_relay);

  /* bob was rung first, without Diversion, and his 486 ACKed. */
  b_inv = flow_require_msg (f.b->received, "INVITE ", 0);
  assert_invite_from (b_inv, "alice", &f.bob);
  assert_diversions (b_inv, NULL);
  flow_assert_error_acked (f.b);
  /* alice: 181 Call Is Being Forwarded, then carol's answer. */
  forwarded = flow_require_response (f.a->received, 181, "INVITE", 0);
  forwarded_line = flow_msg_start_line (forwarded);
  g_assert_cmpstr (forwarded_line, ==, "SIP/2.0 181 Call Is Being Forwarded");
  ok = flow_require_response (f.a->received, 200, "INVITE", 0);
  g_assert_cmpuint (flow_msg_index (f.a->received, forwarded), <,
                    flow_msg_index (f.a->received, ok));
  {
    /* One dialog toward alice, whoever answers: the 181's To tag is the 200's. */
    g_autofree char *forwarded_tag = flow_msg_tag (forwarded, "To");
    g_autofree char *ok_tag = flow_msg_tag (ok, "To");
    g_assert_nonnull (ok_tag);
    g_assert_cmpstr (forwarded_tag, ==, ok_tag);
  }
  g_assert_cmpuint (flow_count_responses (f.a->received, 200, "INVITE"), ==, 1);
  statuses = invite_statuses (f.a);
  g_assert_cmpstr (statuses, ==, "181 180 200");
  /* carol: the call from alice, diverted by bob because he was busy. */
  c_inv = flow_require_msg (f.c->received, "INVITE ", 0);
  assert_invite_from (c_inv, "alice", &f.carol);
  assert_diversions (c_inv, "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  g_assert_cmpuint (assert_relay_sdp (c_inv, f.alice.rtp_port), ==, c_relay);
  g_assert_cmpuint (assert_relay_sdp (ok, f.carol.rtp_port), ==, a_relay);
  /* Media: alice ↔ carol, both ways. */
  flow_assert_heard_only (report, f.carol.rtp_port, c_relay, SSRC_ALICE);
  flow_assert_heard_only (report, f.alice.rtp_port, a_relay, SSRC_CAROL);
  /* The CDR names the user alice dialled. */
  flow_assert_cdr (d, f.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* The same with a late offer (alice's INVITE has no SDP): carol's INVITE
 * has none either, her 200 brings the offer to alice, alice's ACK the
 * answer to carol, and media flows. */
static void
test_forward_busy_late_offer (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  g_auto (Forward) f = forward ("feat-uac-late.xml", "feat-uas-busy.xml", "call-uas-late.xml",
                                NULL);
  g_auto (GStrv) report = NULL;
  g_autofree char *statuses = NULL, *c_body = NULL;
  const char *c_inv, *c_ack, *ok;
  guint16 a_relay, c_relay;

  report = forward_to_carol_with_media (d, &f, &a_relay, &c_relay);

  flow_assert_error_acked (f.b);
  statuses = invite_statuses (f.a);
  g_assert_cmpstr (statuses, ==, "181 180 200");
  c_inv = flow_require_msg (f.c->received, "INVITE ", 0);
  assert_invite_from (c_inv, "alice", &f.carol);
  assert_diversions (c_inv, "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  c_body = flow_msg_body (c_inv);
  g_assert_cmpstr (c_body, ==, "");
  ok = flow_require_response (f.a->received, 200, "INVITE", 0);
  g_assert_cmpuint (assert_relay_sdp (ok, f.carol.rtp_port), ==, a_relay);
  c_ack = flow_require_msg (f.c->received, "ACK ", 0);
  g_assert_cmpuint (assert_relay_sdp (c_ack, f.alice.rtp_port), ==, c_relay);
  flow_assert_heard_only (report, f.carol.rtp_port, c_relay, SSRC_ALICE);
  flow_assert_heard_only (report, f.alice.rtp_port, a_relay, SSRC_CAROL);
  flow_assert_cdr (d, f.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* bob plays early media (an announcement), then is busy: alice's one
 * relay port stays, now bridged to carol; both ways heard, and alice's 200
 * names the same port as bob's 183. */
static void
test_forward_busy_after_early_media (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  g_auto (Forward) f = forward ("feat-uac.xml", "feat-uas-early-busy.xml", "call-uas.xml", NULL);
  g_auto (GStrv) report = NULL;
  g_autofree char *statuses = NULL;
  const char *early, *ok;
  guint16 a_relay, c_relay;

  f.bob.pause_ms = "300";
  report = forward_to_carol_with_media (d, &f, &a_relay, &c_relay);

  flow_assert_error_acked (f.b);
  statuses = invite_statuses (f.a);
  g_assert_cmpstr (statuses, ==, "183 181 180 200");
  early = flow_require_response (f.a->received, 183, "INVITE", 0);
  ok = flow_require_response (f.a->received, 200, "INVITE", 0);
  g_assert_cmpuint (assert_relay_sdp (early, f.bob.rtp_port), ==, a_relay);
  g_assert_cmpuint (assert_relay_sdp (ok, f.carol.rtp_port), ==, a_relay);
  flow_assert_heard_only (report, f.carol.rtp_port, c_relay, SSRC_ALICE);
  flow_assert_heard_only (report, f.alice.rtp_port, a_relay, SSRC_CAROL);
  flow_assert_cdr (d, f.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* ---- forwarding on no answer (flow 11) ------------------------------------------------------ */

/* bob only rings; after the no-answer time (his own or the core's) he gets
 * a CANCEL and carol the call. Returns how long bob rang (ms). */
static gint64
run_no_answer_forward (FlowDaemon *d)
{
  g_auto (Forward) f = forward ("feat-uac.xml", "call-uas-ring.xml", "call-uas.xml", NULL);
  g_autofree char *statuses = NULL;
  const char *c_inv, *ok;

  f.carol.pause_ms = "500";      /* carol rings a little before she answers */
  f.alice.pause_ms = "300";
  forward_run (d, &f);

  flow_assert_cancelled (f.b);
  /* alice hears bob ring, the forwarding, carol ring, carol's answer. */
  statuses = invite_statuses (f.a);
  g_assert_cmpstr (statuses, ==, "180 181 180 200");
  c_inv = flow_require_msg (f.c->received, "INVITE ", 0);
  assert_invite_from (c_inv, "alice", &f.carol);
  assert_diversions (c_inv, "<sip:bob@pbx.test>;reason=no-answer;counter=1", NULL);
  ok = flow_require_response (f.a->received, 200, "INVITE", 0);
  assert_relay_sdp (ok, f.carol.rtp_port);
  flow_require_msg (f.c->received, "BYE ", 0);
  flow_assert_cdr (d, f.a, "alice", "bob", 200, "caller", NULL);

  return flow_run_ms_between (f.b, flow_require_msg (f.b->received, "INVITE ", 0),
                              flow_require_msg (f.b->received, "CANCEL ", 0));
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
  g_auto (Forward) f = forward ("feat-uac-fail.xml", "call-uas-busy.xml", "call-uas-busy.xml",
                                NULL);

  forward_run (d, &f);
  g_assert_cmpint (flow_caller_final (f.a), ==, 486);
  g_assert_cmpuint (flow_count_responses (f.a->received, 181, "INVITE"), ==, 1);
  flow_assert_error_acked (f.b);
  flow_assert_error_acked (f.c);
  assert_diversions (flow_require_msg (f.c->received, "INVITE ", 0),
                     "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  flow_assert_cdr (d, f.a, "alice", "bob", 486, "callee", NULL);
  flow_daemon_stop (d);
}

/* bob busy, but carol (his forward-busy) is not registered: the forward is
 * impossible, so alice gets bob's own 486 — and no 181 promising one. */
static void
test_forward_target_unregistered (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol", NULL);
  g_auto (Forward) f = forward ("feat-uac-fail.xml", "call-uas-busy.xml", NULL, NULL);

  forward_run (d, &f);
  g_assert_cmpint (flow_caller_final (f.a), ==, 486);
  g_assert_cmpuint (flow_count_responses (f.a->received, 181, "INVITE"), ==, 0);
  flow_assert_error_acked (f.b);
  flow_assert_cdr (d, f.a, "alice", "bob", 486, "callee", NULL);
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
  g_auto (Forward) f = forward ("feat-uac-fail.xml", "call-uas-busy.xml", "call-uas-busy.xml",
                                NULL);

  f.bob.calls = f.carol.calls = "2";
  f.bob.timeout = f.carol.timeout = "3s";
  f.bob_idle = f.carol_idle = TRUE;
  forward_run (d, &f);

  g_assert_cmpint (flow_caller_final (f.a), ==, 486);
  /* bob → carol only */
  g_assert_cmpuint (flow_count_responses (f.a->received, 181, "INVITE"), ==, 1);
  g_assert_cmpuint (flow_count_msgs (f.b->received, "INVITE "), ==, 1);
  g_assert_cmpuint (flow_count_msgs (f.c->received, "INVITE "), ==, 1);
  flow_assert_error_acked (f.b);
  flow_assert_error_acked (f.c);
  flow_assert_cdr (d, f.a, "alice", "bob", 486, "callee", NULL);
  flow_daemon_stop (d);
}

/* bob → carol → dave, both on busy: dave's INVITE carries both
 * diversions, the newest (carol's, counter=2) first. */
static void
test_forward_chain (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "forward-busy = carol",
                                           "carol", "forward-busy = dave", NULL);
  g_auto (Forward) f = forward ("feat-uac.xml", "call-uas-busy.xml", "call-uas-busy.xml",
                                "call-uas.xml");
  g_autofree char *statuses = NULL;
  const char *dave_inv;

  f.alice.pause_ms = "300";
  forward_run (d, &f);

  statuses = invite_statuses (f.a);
  g_assert_cmpstr (statuses, ==, "181 181 180 200");
  assert_diversions (flow_require_msg (f.c->received, "INVITE ", 0),
                     "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  dave_inv = flow_require_msg (f.dv->received, "INVITE ", 0);
  assert_invite_from (dave_inv, "alice", &f.dave);
  assert_diversions (dave_inv, "<sip:carol@pbx.test>;reason=user-busy;counter=2",
                     "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  flow_require_msg (f.dv->received, "BYE ", 0);
  flow_assert_cdr (d, f.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* The same chain with max-diversions = 1 (`calls`: the [calls] lines and
 * the [forward] group saying so): it stops at carol, whose 486 alice gets;
 * dave is never rung (his SIPp waits 2 s in vain). */
static void
run_forward_max_diversions (const char *calls)
{
  g_autoptr (FlowDaemon) d = start_tandem (calls, "bob", "forward-busy = carol",
                                           "carol", "forward-busy = dave", NULL);
  g_auto (Forward) f = forward ("feat-uac-fail.xml", "call-uas-busy.xml", "call-uas-busy.xml",
                                "call-uas.xml");

  f.dave.timeout = "2s";
  f.dave_idle = TRUE;
  forward_run (d, &f);

  g_assert_cmpint (flow_caller_final (f.a), ==, 486);
  g_assert_cmpuint (flow_count_responses (f.a->received, 181, "INVITE"), ==, 1);
  assert_diversions (flow_require_msg (f.c->received, "INVITE ", 0),
                     "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  flow_assert_error_acked (f.c);
  g_assert_cmpuint (f.dv->received->len, ==, 0);
  flow_assert_cdr (d, f.a, "alice", "bob", 486, "callee", NULL);
  flow_daemon_stop (d);
}

static void
test_forward_max_diversions (void)
{
  run_forward_max_diversions ("\n[forward]\nmax-diversions = 1");
}

/* Its old spelling, [calls] max-diversions, still works. */
static void
test_forward_max_diversions_old_spelling (void)
{
  run_forward_max_diversions ("max-diversions = 1");
}

/* A max-diversions the plugin cannot use is refused naming the file and
 * line: by --check-config (exit 2), and by a reload, which keeps the
 * running configuration. */
static void
test_forward_bad_max_diversions (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, NULL);
  g_autofree char *conf = g_build_filename (flow_daemon_dir (d), "tandem.conf", NULL);
  const char *check[] = { g_getenv ("TANDEM_BIN"), "--check-config", conf, NULL };
  g_autofree char *text = NULL, *err = NULL, *want = NULL;
  g_auto (GStrv) lines = NULL;
  guint line = 0;
  int status;

  flow_daemon_write_config (d, MEDIA_CONFIG PLUGINS_CONFIG "[forward]\nmax-diversions = 50\n");
  g_assert_true (g_file_get_contents (conf, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] && !line; i++)
    if (g_str_has_prefix (lines[i], "max-diversions = 50"))
      line = i + 1;
  want = g_strdup_printf ("%s:%u: [forward] max-diversions: \"50\" is not a whole number from 0 "
                          "to 20", conf, line);
  status = flow_command (check, 20000, NULL, &err);
  flow_note ("--check-config: exit %d, stderr:\n%s", status, err);
  g_assert_cmpint (status, ==, 2);
  g_assert_nonnull (strstr (err, want));

  flow_daemon_signal (d, SIGHUP);
  g_assert_true (flow_daemon_wait_log (d, "reload refused", 5000));
  g_assert_true (flow_daemon_wait_log (d, want, 0));
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
  FlowParty bob = flow_party ("bob", "feat-uas-waiting.xml", "b");
  FlowParty alice = flow_party ("alice", "feat-uac-held.xml", "a");
  FlowParty carol = flow_party ("carol", "feat-uac.xml", "c");
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
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  a_relay = flow_wait_port_file ("a");
  b_relay = flow_wait_port_file ("b");
  sc = flow_caller_start (d, &carol, "bob");
  talk = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  flow_wait_port_file ("a-held");
  b2_relay = flow_wait_port_file ("b2");
  c_relay = flow_wait_port_file ("c");
  {
    FlowProbeEndpoint eps[] = { { alice.rtp_port, a_relay, SSRC_ALICE, 0 },
                                { bob.rtp_port, b_relay, SSRC_BOB, 0 },
                                { bob.rtp_port2, b2_relay, SSRC_BOB2, 0 },
                                { carol.rtp_port, c_relay, SSRC_CAROL, 0 } };
    waiting = flow_probe_run (eps, G_N_ELEMENTS (eps));
  }
  flow_wait_port_file ("a-resumed");
  resumed = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay,
                             SSRC_BOB);
  c = flow_sipp_finish (sc, "carol");
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");

  /* Call waiting is on: bob's phone got carol's INVITE. */
  g_assert_cmpuint (flow_count_msgs (b->received, "INVITE "), ==, 2);
  b_inv2 = flow_require_msg (b->received, "INVITE ", 1);
  carol_statuses = invite_statuses (c);
  g_assert_cmpstr (carol_statuses, ==, "180 200");      /* it rang while bob talked */
  assert_invite_from (b_inv2, "carol", &bob);
  g_assert_cmpuint (assert_relay_sdp (b_inv2, carol.rtp_port), ==, b2_relay);
  g_assert_cmpuint (assert_relay_sdp (flow_require_response (c->received, 200, "INVITE", 0),
                                      bob.rtp_port2), ==, c_relay);
  /* bob's hold reached alice as tandem's re-INVITE, on her relay port. */
  a_hold = flow_require_msg (a->received, "INVITE ", 0);
  flow_assert_sdp_has (a_hold, "a=sendonly");
  g_assert_cmpuint (assert_relay_sdp (a_hold, bob.rtp_port), ==, a_relay);
  a_resume = flow_require_msg (a->received, "INVITE ", 1);
  flow_assert_sdp_has (a_resume, "a=sendrecv");
  g_assert_cmpuint (assert_relay_sdp (a_resume, bob.rtp_port), ==, a_relay);
  flow_assert_sdp_has (flow_require_response (b->received, 200, "INVITE", 0), "a=recvonly");

  /* 1. Talking. */
  flow_assert_heard_only (talk, bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard_only (talk, alice.rtp_port, a_relay, SSRC_BOB);
  /* 2. alice held, bob with carol; no crosstalk between the calls. */
  flow_assert_heard_only (waiting, bob.rtp_port2, b2_relay, SSRC_CAROL);
  flow_assert_heard_only (waiting, carol.rtp_port, c_relay, SSRC_BOB2);
  flow_assert_not_heard (waiting, bob.rtp_port, SSRC_ALICE);
  flow_assert_heard_only (waiting, alice.rtp_port, a_relay, SSRC_BOB);
  flow_assert_not_heard (waiting, carol.rtp_port, SSRC_ALICE);
  flow_assert_not_heard (waiting, carol.rtp_port, SSRC_BOB);
  flow_assert_not_heard (waiting, bob.rtp_port2, SSRC_ALICE);
  flow_assert_not_heard (waiting, alice.rtp_port, SSRC_CAROL);
  /* 3. Resumed. */
  flow_assert_heard_only (resumed, bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard_only (resumed, alice.rtp_port, a_relay, SSRC_BOB);

  flow_assert_cdr (d, a, "alice", "bob", 200, "caller", NULL);
  flow_assert_cdr (d, c, "carol", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* bob (registered, running his scenario) answers alice's call, which stays
 * up for 3 s in the background; returns once it is answered. */
static void
start_busy_bob (FlowDaemon *d, FlowParty *bob, FlowParty *alice, FlowSipp **sb, FlowSipp **sa)
{
  *sb = flow_callee_start (d, bob);
  alice->pause_ms = "3000";
  *sa = flow_caller_start (d, alice, "bob");
  flow_wait_port_file ("a");
}

/* call-waiting = false: a user in a call is busy; carol gets 486 at once,
 * and bob's phone never sees her INVITE. */
static void
test_waiting_off_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "call-waiting = false", NULL);
  FlowParty bob = flow_party ("bob", "call-uas.xml", "b");
  FlowParty alice = flow_party ("alice", "feat-uac.xml", "a");
  FlowParty carol = flow_party ("carol", "feat-uac-fail.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL;
  FlowSipp *sa, *sb;

  bob.calls = "2";               /* would take carol's call too, if it came */
  bob.timeout = "6s";
  start_busy_bob (d, &bob, &alice, &sb, &sa);
  c = flow_sipp_finish (flow_caller_start (d, &carol, "bob"), "carol");
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_collect (sb);

  g_assert_cmpint (flow_caller_final (c), ==, 486);
  g_assert_cmpuint (flow_count_responses (c->received, 181, "INVITE"), ==, 0);
  g_assert_cmpuint (flow_count_msgs (b->received, "INVITE "), ==, 1);
  flow_require_msg (b->received, "BYE ", 0);
  flow_assert_cdr (d, c, "carol", "bob", 486, "tandem", NULL);
  flow_assert_cdr (d, a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* call-waiting = false and forward-busy = dave: carol's call goes to dave. */
static void
test_waiting_off_forward_busy (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL, "bob", "call-waiting = false\n"
                                                         "forward-busy = dave", NULL);
  FlowParty bob = flow_party ("bob", "call-uas.xml", "b");
  FlowParty dave = flow_party ("dave", "call-uas.xml", "d");
  FlowParty alice = flow_party ("alice", "feat-uac.xml", "a");
  FlowParty carol = flow_party ("carol", "feat-uac.xml", "c");
  g_autoptr (FlowRun) a = NULL, b = NULL, c = NULL, dv = NULL;
  g_autofree char *statuses = NULL;
  const char *dave_inv;
  FlowSipp *sa, *sb, *sd;

  bob.calls = "2";
  bob.timeout = "6s";
  carol.pause_ms = "300";
  sd = flow_callee_start (d, &dave);
  start_busy_bob (d, &bob, &alice, &sb, &sa);
  c = flow_sipp_finish (flow_caller_start (d, &carol, "bob"), "carol");
  dv = flow_sipp_finish (sd, "dave");
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_collect (sb);

  statuses = invite_statuses (c);
  g_assert_cmpstr (statuses, ==, "181 180 200");
  dave_inv = flow_require_msg (dv->received, "INVITE ", 0);
  assert_invite_from (dave_inv, "carol", &dave);
  assert_diversions (dave_inv, "<sip:bob@pbx.test>;reason=user-busy;counter=1", NULL);
  g_assert_cmpuint (flow_count_msgs (b->received, "INVITE "), ==, 1);
  flow_assert_cdr (d, c, "carol", "bob", 200, "caller", NULL);
  flow_assert_cdr (d, a, "alice", "bob", 200, "caller", NULL);
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
  FlowParty bob = flow_party ("bob", "feat-uas-held.xml", "b");
  FlowParty alice = flow_party ("alice", "feat-uac-hold.xml", "a");
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
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  a_relay = flow_wait_port_file ("a");
  b_relay = flow_wait_port_file ("b");
  before = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  flow_wait_port_file ("a-held");
  held = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  flow_wait_port_file ("a-resumed");
  after = flow_probe_pair (alice.rtp_port, a_relay, SSRC_ALICE, bob.rtp_port, b_relay, SSRC_BOB);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");

  /* The hold reached bob rewritten onto tandem (c= kept if 0.0.0.0),
   * the same relay port, the direction kept. */
  b_hold = flow_require_msg (b->received, "INVITE ", 1);
  flow_assert_sdp_has (b_hold, hc->bob_sees);
  g_assert_cmpuint (flow_assert_relay_sdp (b_hold, alice.rtp_port, zero, MEDIA_MIN, MEDIA_MAX),
                    ==, b_relay);
  a_hold_ok = flow_require_response (a->received, 200, "INVITE", 1);
  flow_assert_sdp_has (a_hold_ok, hc->alice_sees);
  g_assert_cmpuint (assert_relay_sdp (a_hold_ok, bob.rtp_port), ==, a_relay);
  /* The resume. */
  b_resume = flow_require_msg (b->received, "INVITE ", 2);
  flow_assert_sdp_has (b_resume, "a=sendrecv");
  g_assert_cmpuint (assert_relay_sdp (b_resume, alice.rtp_port), ==, b_relay);
  a_resume_ok = flow_require_response (a->received, 200, "INVITE", 2);
  flow_assert_sdp_has (a_resume_ok, "a=sendrecv");
  g_assert_cmpuint (assert_relay_sdp (a_resume_ok, bob.rtp_port), ==, a_relay);
  /* tandem's SDP versions, per leg. */
  flow_assert_sdp_versioned (flow_require_msg (b->received, "INVITE ", 0), b_hold);
  flow_assert_sdp_versioned (b_hold, b_resume);
  flow_assert_sdp_versioned (flow_require_response (a->received, 200, "INVITE", 0), a_hold_ok);
  flow_assert_sdp_versioned (a_hold_ok, a_resume_ok);

  flow_assert_heard_only (before, bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard_only (before, alice.rtp_port, a_relay, SSRC_BOB);
  flow_assert_not_heard (held, alice.rtp_port, SSRC_BOB);
  if (hc->alice_to_bob)
    flow_assert_heard_only (held, bob.rtp_port, b_relay, SSRC_ALICE);
  else
    flow_assert_not_heard (held, bob.rtp_port, SSRC_ALICE);
  flow_assert_heard_only (after, bob.rtp_port, b_relay, SSRC_ALICE);
  flow_assert_heard_only (after, alice.rtp_port, a_relay, SSRC_BOB);
  flow_assert_cdr (d, a, "alice", "bob", 200, "caller", NULL);
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
  flow_add_test ("/features/forward/max-diversions/old-spelling",
                 test_forward_max_diversions_old_spelling);
  flow_add_test ("/features/forward/max-diversions/bad", test_forward_bad_max_diversions);
  flow_add_test ("/features/waiting/hold-and-answer", test_waiting_hold_and_answer);
  flow_add_test ("/features/waiting/off-busy", test_waiting_off_busy);
  flow_add_test ("/features/waiting/off-forward-busy", test_waiting_off_forward_busy);
  flow_add_test ("/features/hold/sendonly", test_hold_sendonly);
  flow_add_test ("/features/hold/inactive", test_hold_inactive);
  flow_add_test ("/features/hold/zero-address", test_hold_zero_address);
  return g_test_run ();
}
