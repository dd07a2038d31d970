/* Colour ringback (issue 10): whose tune plays, and the tunes as
 * configuration. With forwarding (bob busy, forward-busy = carol) alice
 * hears the tune of the user now ringing, or with [media] ringback-follows
 * = original the one she dialled; during a blind transfer the transferee
 * hears the target's tune on the stream it has; a missing or undecodable
 * tune file is refused (--check-config exits 2, start-up fails) naming the
 * user and the file; SIGHUP reloads a changed tune for new calls, while a
 * call ringing meanwhile keeps its tune undisturbed.
 *
 * The plugin's keys and the wire behaviour: see test-ringback.c and
 * ringback-call.h. */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "ringback-call.h"

#define NEW_TUNE_HZ 900          /* /ringback/reload: bob's tune after the SIGHUP */
#define COMMAND_TIMEOUT_MS 15000

/* ---- forwarding -------------------------------------------------------------------------- */

/* bob is busy and forwards to carol; both have tunes. alice hears
 * want_hz (carol's with ringback-follows = current, bob's with original)
 * and never the other, then carol's voice. */
static void
forward_case (const char *media, guint want_hz, guint other_hz)
{
  g_autofree char *bob_tune = rb_write_tune_file ("bob.wav", RB_BOB_TUNE_HZ);
  g_autofree char *carol_tune = rb_write_tune_file ("carol.wav", RB_CAROL_TUNE_HZ);
  g_autofree char *bob = g_strdup_printf ("forward-busy = carol\nringback = %s", bob_tune);
  g_autofree char *carol = g_strdup_printf ("ringback = %s", carol_tune);
  g_autoptr (FlowDaemon) d = rb_start_tandem (media, bob, carol);
  RbCallSpec spec = { .busy = "bob", .ringer = "carol", .ring_ms = RB_RING_MS,
                      .voice_delay_ms = RB_RING_MS, .voice_pt = RB_PCMU };
  const RbTone tones[] = { { 'T', want_hz }, { 'X', other_hz }, { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c = { 0 };
  g_autofree char *statuses = NULL, *letters = NULL;
  const char *early;
  RbSwitch want = { .pt = RB_PCMU, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };

  rb_call_run (d, &c, &spec);
  statuses = rb_statuses (&c);
  g_assert_true (g_str_has_prefix (statuses, "181 "));
  early = rb_assert_ringback_answer (&c, "0 101");
  flow_assert_error_acked (c.bz);
  letters = rb_letters (c.at_alice, tones, G_N_ELEMENTS (tones), FALSE);
  want.switch_us = rb_switch_due (&c, FALSE);
  want.min_tune = rb_min_tune (&c, early, want.switch_us);
  rb_assert_switch (&c, letters, &want);
  rb_assert_runs_ok (&c);
  flow_assert_cdr (d, c.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

static void
test_forward_follows_current (void)
{
  forward_case (NULL, RB_CAROL_TUNE_HZ, RB_BOB_TUNE_HZ);
}

static void
test_forward_follows_original (void)
{
  forward_case ("ringback-follows = original\n", RB_BOB_TUNE_HZ, RB_CAROL_TUNE_HZ);
}

/* ---- blind transfer ---------------------------------------------------------------------- */

#define BOB_VOICE_HZ 1000
#define PHASE_MS 2000            /* bob talks this long, then refers alice to carol */

/* alice calls bob, who answers and talks (BOB_VOICE_HZ) for PHASE_MS,
 * then refers her to carol (blind) and hangs up once carol answered.
 * carol's phone rings RB_RING_MS; while it does alice hears carol's tune on
 * the stream she has (her relay port, its SSRC), then carol's voice. */
static void
test_transfer_target_tune (void)
{
  g_autofree char *carol_tune = rb_write_tune_file ("carol.wav", RB_CAROL_TUNE_HZ);
  g_autofree char *carol_lines = g_strdup_printf ("ringback = %s", carol_tune);
  g_autoptr (FlowDaemon) d = rb_start_tandem (NULL, NULL, carol_lines);
  const char *bob_keys[] = { "refer_line", "Refer-To: <sip:carol@pbx.test>", "after", "bye",
                             NULL };
  const char *carol_keys[] = { "formats", rb_answer_pcma.formats, "map1",
                               rb_answer_pcma.lines[0], "map2", rb_answer_pcma.lines[1], NULL };
  const RbTone tones[] = { { 'B', BOB_VOICE_HZ }, { 'T', RB_CAROL_TUNE_HZ }, { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c = { 0 };
  g_autoptr (FlowRun) b = NULL;
  g_autoptr (GArray) after = NULL;
  g_autofree char *letters = NULL, *runs = NULL, *ring = g_strdup_printf ("%u", RB_RING_MS);
  RbSwitch want = { .pt = RB_PCMA, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };
  FlowParty bob;
  FlowSipp *sa, *sb, *sc;
  guint talked = 0;
  gint64 carol_invite;

  c.ringer = flow_party ("carol", "ringback-uas.xml", "c");
  c.ringer.pause_ms = ring;
  c.ringer.timeout = "30s";
  c.ringer.keys = carol_keys;
  sc = flow_callee_start (d, &c.ringer);
  bob = flow_party ("bob", "xfer-uas-refer.xml", "b");
  bob.pause_ms = G_STRINGIFY (PHASE_MS);
  bob.timeout = "30s";
  bob.keys = bob_keys;
  sb = flow_callee_start (d, &bob);
  c.alice = flow_party ("alice", "xfer-uac-talk.xml", "a");
  c.alice.timeout = "30s";
  c.alice.recv_timeout = "7000";   /* hangs up 7 s after the answer (or a re-INVITE) */
  sa = flow_caller_start (d, &c.alice, "bob");
  {
    FlowToneEndpoint eps[] = {
      { .bind_port = c.alice.rtp_port, .dest_file = "a.port", .ssrc = RB_SSRC_ALICE,
        .fill = RB_FILL_ALICE, .pt = RB_PCMA, .count = 300 },
      /* bob stops talking just before his REFER. */
      { .bind_port = bob.rtp_port, .dest_file = "b.port", .ssrc = 0xB0B, .pt = RB_PCMA,
        .tone_hz = BOB_VOICE_HZ, .count = PHASE_MS / 20 - 5 },
      { .bind_port = c.ringer.rtp_port, .dest_file = "c.port", .ssrc = RB_SSRC_CALLEE,
        .delay_ms = RB_RING_MS, .pt = RB_PCMA, .tone_hz = RB_VOICE_HZ, .count = 75 },
    };
    c.report = flow_probe_trace_tones (eps, G_N_ELEMENTS (eps));
  }
  c.a = flow_sipp_wait (sa);
  b = flow_sipp_wait (sb);
  c.r = flow_sipp_wait (sc);
  c.at_alice = flow_probe_packets (c.report, c.alice.rtp_port);
  c.voice_first_us = flow_probe_first_sent (c.report, c.ringer.rtp_port);
  letters = rb_letters (c.at_alice, tones, G_N_ELEMENTS (tones), FALSE);
  runs = rb_runs (letters);
  rb_note_stream ("alice", c.at_alice, letters);
  flow_note ("alice heard %s", runs);
  flow_require_response (b->received, 202, "REFER", 0);

  /* bob's voice first, then from carol's ringing on what rb_assert_switch
   * judges: her tune, her voice. */
  while (talked < c.at_alice->len && letters[talked] == 'B')
    talked++;
  if (talked < 40)
    g_printerr ("flow: alice heard %s (want bob's voice Bx40 or more first)\n", runs);
  g_assert_cmpuint (talked, >=, 40);
  g_assert_cmpuint (talked, <, c.at_alice->len);
  {
    const FlowRtpPacket *last_bob = &g_array_index (c.at_alice, FlowRtpPacket, talked - 1);
    const FlowRtpPacket *next = &g_array_index (c.at_alice, FlowRtpPacket, talked);
    /* The same stream across the move: her port's one SSRC, the sequence
     * going on. */
    g_assert_cmphex (next->ssrc, ==, last_bob->ssrc);
    g_assert_cmpuint (next->seq, ==, (guint16) (last_bob->seq + 1));
    g_assert_cmpint ((gint32) (next->timestamp - last_bob->timestamp), >, 0);
  }
  after = g_array_sized_new (FALSE, FALSE, sizeof (FlowRtpPacket), c.at_alice->len - talked);
  g_array_append_vals (after, &g_array_index (c.at_alice, FlowRtpPacket, talked),
                       c.at_alice->len - talked);
  g_array_unref (c.at_alice);
  c.at_alice = g_steal_pointer (&after);
  /* The tune in the codec of the session alice has (bob's PCMA), not in
   * the first of her offer. */
  {
    g_autofree char *formats = flow_sdp_formats (flow_require_response (c.a->received, 200,
                                                                        "INVITE", 0));
    g_assert_true (g_str_has_prefix (formats, "8 "));
  }
  want.switch_us = rb_switch_due (&c, FALSE);
  carol_invite = flow_run_msg_time (c.r, flow_require_msg (c.r->received, "INVITE ", 0));
  want.min_tune = (guint) ((want.switch_us - carol_invite) / 20000 * 85 / 100);
  rb_assert_switch (&c, letters + talked, &want);
  rb_assert_runs_ok (&c);
  g_assert_cmpint (b->exit_status, ==, 0);
  flow_daemon_stop (d);
}

/* ---- configuration ----------------------------------------------------------------------- */

/* A configuration for `tandem -c` naming bob's tune `tune`; returns its
 * path. */
static char *
write_config (const char *tune)
{
  g_autofree char *bob = g_strdup_printf ("ringback = %s", tune);
  g_autofree char *body = rb_config_text (NULL, bob, NULL);
  g_autofree char *text = g_strdup_printf ("[sip]\nlisten = 127.0.0.1:%u\ndomain = pbx.test\n"
                                           "[store]\npath = tandem.db\n%s"
                                           "[user alice]\npassword = alice-secret\n",
                                           flow_pick_port (), body);
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (flow_case_dir (), "tandem.conf", NULL);

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

/* Starting and checking a configuration whose tune for bob is `tune` both
 * fail, naming bob and the file: start-up with a non-zero exit (at once,
 * not after serving), --check-config with 2. */
static void
assert_tune_refused (const char *tune)
{
  g_autofree char *conf = write_config (tune);
  const char *run[] = { g_getenv ("TANDEM_BIN"), "-c", conf, NULL };
  const char *check[] = { g_getenv ("TANDEM_BIN"), "--check-config", conf, NULL };
  g_autofree char *run_err = NULL, *check_out = NULL, *check_err = NULL;
  int status;

  g_assert_nonnull (run[0]);
  status = flow_command (run, COMMAND_TIMEOUT_MS, NULL, &run_err);
  flow_note ("tandem -c: exit %d, stderr:\n%s", status, run_err);
  if (status <= 0 || !strstr (run_err, tune) || !strstr (run_err, "bob"))
    g_printerr ("flow: tandem -c with bob's ringback = %s: exit %d, stderr:\n%s(want a non-zero "
                "exit naming bob and the file)\n", tune, status, run_err);
  g_assert_cmpint (status, >, 0);
  g_assert_nonnull (strstr (run_err, tune));
  g_assert_nonnull (strstr (run_err, "bob"));

  status = flow_command (check, COMMAND_TIMEOUT_MS, &check_out, &check_err);
  flow_note ("tandem --check-config: exit %d, stdout:\n%s\nstderr:\n%s", status, check_out,
             check_err);
  if (status != 2 || !strstr (check_err, tune) || !strstr (check_err, "bob"))
    g_printerr ("flow: tandem --check-config with bob's ringback = %s: exit %d, stderr:\n%s"
                "(want exit 2 naming bob and the file)\n", tune, status, check_err);
  g_assert_cmpint (status, ==, 2);
  g_assert_nonnull (strstr (check_err, tune));
  g_assert_nonnull (strstr (check_err, "bob"));
}

static void
test_missing_file_refused (void)
{
  assert_tune_refused ("tunes/missing.wav");
}

/* There, but no audio. */
static void
test_not_audio_refused (void)
{
  g_autofree char *dir = g_build_filename (flow_case_dir (), "tunes", NULL);
  g_autofree char *path = g_build_filename (dir, "noise.wav", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_file_set_contents (path, "this is not a sound file\n", -1, &error);
  g_assert_no_error (error);
  assert_tune_refused ("tunes/noise.wav");
}

/* The same configuration with a good tune is accepted: the refusals above
 * are about the file. */
static void
test_good_file_accepted (void)
{
  g_autofree char *tune = rb_write_tune_file ("bob.wav", RB_BOB_TUNE_HZ);
  g_autofree char *conf = write_config (tune);
  const char *check[] = { g_getenv ("TANDEM_BIN"), "--check-config", conf, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = flow_command (check, COMMAND_TIMEOUT_MS, &out, &err);

  if (status != 0)
    g_printerr ("flow: --check-config with a good tune: exit %d, stderr:\n%s\n", status, err);
  g_assert_cmpint (status, ==, 0);
}

/* ---- reload ------------------------------------------------------------------------------ */

/* Once alice's first call is ringing (her 183 came), a second of the tune
 * later: bob's tune file changes to NEW_TUNE_HZ and tandem gets SIGHUP. */
typedef struct {
  FlowDaemon *d;
  char *tune_path;
} Reloader;

static gpointer
reload_mid_call (gpointer data)
{
  Reloader *r = data;
  g_autofree char *early = g_build_filename (flow_case_dir (), "a1-early.port", NULL);
  g_autofree char *tmp = g_strdup_printf ("%s.new.wav", r->tune_path);
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;

  while (!g_file_test (early, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_usleep (G_USEC_PER_SEC);
  /* Written aside and renamed: tandem never reads half a file. */
  rb_write_tune (tmp, NEW_TUNE_HZ, RB_TUNE_MS);
  g_assert_cmpint (g_rename (tmp, r->tune_path), ==, 0);
  kill (flow_daemon_pid (r->d), SIGHUP);
  return NULL;
}

/* SIGHUP with bob's tune file changed: the call ringing meanwhile goes on
 * with the old tune, undisturbed (one stream, paced, no new tone in it);
 * the next call hears the new one. */
static void
test_reload (void)
{
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  g_autofree char *tune_path = g_build_filename (flow_case_dir (), "tunes", "bob.wav", NULL);
  Reloader r = { d, tune_path };
  RbCallSpec first = { .ring_ms = 3000, .voice_delay_ms = 3000, .voice_pt = RB_PCMU, .side = "1" };
  RbCallSpec second = { .ring_ms = RB_RING_MS, .voice_delay_ms = RB_RING_MS, .voice_pt = RB_PCMU,
                        .side = "2" };
  const RbTone old_tones[] = { { 'T', RB_BOB_TUNE_HZ }, { 'N', NEW_TUNE_HZ },
                               { 'V', RB_VOICE_HZ } };
  const RbTone new_tones[] = { { 'T', NEW_TUNE_HZ }, { 'O', RB_BOB_TUNE_HZ },
                               { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c1 = { 0 }, c2 = { 0 };
  g_autofree char *letters1 = NULL, *letters2 = NULL;
  const char *early;
  RbSwitch want = { .pt = RB_PCMU, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };
  GThread *reloader = g_thread_new ("reload", reload_mid_call, &r);

  rb_call_run (d, &c1, &first);
  g_thread_join (reloader);
  g_assert_true (flow_daemon_wait_log (d, "configuration reloaded", 5000));
  early = rb_assert_ringback_answer (&c1, "0 101");
  letters1 = rb_letters (c1.at_alice, old_tones, G_N_ELEMENTS (old_tones), FALSE);
  want.switch_us = rb_switch_due (&c1, FALSE);
  want.min_tune = rb_min_tune (&c1, early, want.switch_us);
  rb_assert_switch (&c1, letters1, &want);
  rb_assert_runs_ok (&c1);

  second.ringer_sip_port = c1.ringer.sip_port;
  rb_call_run (d, &c2, &second);
  early = rb_assert_ringback_answer (&c2, "0 101");
  letters2 = rb_letters (c2.at_alice, new_tones, G_N_ELEMENTS (new_tones), FALSE);
  want.switch_us = rb_switch_due (&c2, FALSE);
  want.min_tune = rb_min_tune (&c2, early, want.switch_us);
  rb_assert_switch (&c2, letters2, &want);
  rb_assert_runs_ok (&c2);
  flow_daemon_stop (d);
}
int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/ringback/forward-follows-current", test_forward_follows_current);
  flow_add_test ("/ringback/forward-follows-original", test_forward_follows_original);
  flow_add_test ("/ringback/transfer-target-tune", test_transfer_target_tune);
  flow_add_test ("/ringback/missing-file-refused", test_missing_file_refused);
  flow_add_test ("/ringback/not-audio-refused", test_not_audio_refused);
  flow_add_test ("/ringback/good-file-accepted", test_good_file_accepted);
  flow_add_test ("/ringback/reload", test_reload);
  return g_test_run ();
}
