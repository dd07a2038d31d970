/* Colour ringback (issue 10, flow 16) through the real binary: alice calls
 * a user who chose a tune; while the phone rings she hears the tune, then
 * the callee's voice, on one RTP stream without a gap. The ringback plugin
 * ([plugins] enabled = forward;hold;transfer;waiting;ringback) reads:
 *   [user NAME] ringback = FILE | none | tone:cn | tone:us | tone:eu
 *   [media] ringback = FILE | tone:... | none   (the default; unset: none)
 *   [media] ringback-mode = early-media-first | tune-first
 *   [media] ringback-follows = current | original
 * (FILE relative to the configuration's folder.)
 *
 * Each case writes its tunes (WAVs of a sine of known frequency) into its
 * directory; the callee's voice is the rtp-probe's sine of RB_VOICE_HZ;
 * what alice receives is decoded and each 20 ms frame's tone found
 * (ringback-audio.h). The call and the checks of its stream and SDP are
 * ringback-call.h's, which says what the wire must show. */
#include <gst/gst.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "ringback-call.h"

#define BOB_TUNE_HZ 700
#define CAROL_TUNE_HZ 500
#define NEW_TUNE_HZ 900          /* /ringback/reload: bob's tune after the SIGHUP */
#define TUNE_MS 3000             /* whole periods of every tune here */

/* The callee rings this long (180 → 200), and ringback-uas-early.xml's
 * 180 → 183 (its EARLY_AFTER_MS). */
#define RING_MS 2000
#define EARLY_AFTER_MS 1000

#define PCMU 0
#define PCMA 8
#define G722 9
#define OPUS 111

#define COMMAND_TIMEOUT_MS 15000

/* ---- tandem -------------------------------------------------------------------------------- */

/* A tune of hz as tunes/NAME in the case's directory (the configuration's
 * folder); returns "tunes/NAME", as the configuration names it. */
static char *
write_tune (const char *name, guint hz)
{
  g_autofree char *path = g_build_filename (flow_case_dir (), "tunes", name, NULL);

  rb_write_tune (path, hz, TUNE_MS);
  return g_strdup_printf ("tunes/%s", name);
}

/* The configuration text after the harness's [sip]: our relay range plus
 * the [media] lines `media`, the plugins, and bob's and carol's extra
 * [user] lines. */
static char *
config_text (const char *media, const char *bob, const char *carol)
{
  return g_strdup_printf (RB_MEDIA_LINES "%s\n" RB_PLUGINS "\n"
                          "[user bob]\npassword = bob-secret\n%s\n\n"
                          "[user carol]\npassword = carol-secret\n%s\n",
                          media ? media : "", bob ? bob : "", carol ? carol : "");
}

static FlowDaemon *
start_tandem (const char *media, const char *bob, const char *carol)
{
  g_autofree char *conf = config_text (media, bob, carol);
  return flow_daemon_start (conf);
}

/* tandem where bob's tune is a BOB_TUNE_HZ file, with `media` lines. */
static FlowDaemon *
start_with_bob_tune (const char *media)
{
  g_autofree char *tune = write_tune ("bob.wav", BOB_TUNE_HZ);
  g_autofree char *bob = g_strdup_printf ("ringback = %s", tune);
  return start_tandem (media, bob, NULL);
}

/* ---- judging a call ----------------------------------------------------------------------- */

/* When the switch was due: the ringer's first packet or its 200,
 * whichever came first; in tune-first mode its 200. */
static gint64
switch_due (const RbCall *c, gboolean tune_first)
{
  gint64 ok = rb_ringer_sent_us (c, 200);
  return tune_first ? ok : MIN (ok, c->voice_first_us);
}

/* At least 85% of the tune's packets from tandem's 183 to the switch. */
static guint
min_tune (const RbCall *c, const char *early, gint64 switch_us)
{
  gint64 from = flow_run_msg_time (c->a, early);
  g_assert_cmpint (from, >, 0);
  g_assert_cmpint (switch_us, >, from);
  return (guint) ((switch_us - from) / 20000 * 85 / 100);
}

/* A G.711 ringback call: alice's 183 answers with want_formats, the tune
 * of tune_hz in payload type pt plays until the switch, then the voice;
 * both SIPp runs succeeded. Returns the switch's time. */
static gint64
assert_g711_ringback (const RbCall *c, const char *want_formats, guint8 pt, double tune_hz,
                      gboolean tune_first)
{
  const RbTone tones[] = { { 'T', tune_hz }, { 'V', RB_VOICE_HZ } };
  const char *early = rb_assert_ringback_answer (c, want_formats);
  g_autofree char *letters = rb_letters (c->at_alice, tones, G_N_ELEMENTS (tones), FALSE);
  RbSwitch want = { .pt = pt, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE,
                    .switch_us = switch_due (c, tune_first) };

  want.min_tune = min_tune (c, early, want.switch_us);
  rb_assert_switch (c, letters, &want);
  rb_assert_runs_ok (c);
  return want.switch_us;
}

/* ---- the tune, then the voice ------------------------------------------------------------ */

/* bob answers; his first RTP comes 200 ms after his 200: the tune stops at
 * the 200, his voice follows with the marker, the timestamp advanced by
 * the silence between. */
static void
test_tune_then_voice (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .ring_ms = RING_MS, .voice_delay_ms = RING_MS + 200, .voice_pt = PCMU };
  g_auto (RbCall) c = { 0 };
  g_autofree char *statuses = NULL;

  rb_call_run (d, &c, &spec);
  assert_g711_ringback (&c, "0 101", PCMU, BOB_TUNE_HZ, FALSE);
  statuses = rb_statuses (&c);
  g_assert_cmpstr (statuses, ==, "183 200");
  flow_assert_cdr (d, c.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* bob's RTP comes ~300 ms before his 200 (a phone that opens its media on
 * answering, the 200 slow to follow): the switch is at that first packet,
 * not at the 200. */
static void
test_switch_on_rtp_before_200 (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .ring_ms = RING_MS, .voice_delay_ms = RING_MS - 300, .voice_pt = PCMU };
  g_auto (RbCall) c = { 0 };
  gint64 switched, ok;

  rb_call_run (d, &c, &spec);
  switched = assert_g711_ringback (&c, "0 101", PCMU, BOB_TUNE_HZ, FALSE);
  ok = rb_ringer_sent_us (&c, 200);
  flow_note ("bob's RTP began %" G_GINT64_FORMAT " ms before his 200", (ok - switched) / 1000);
  /* The premise: his RTP did come well before his 200. */
  g_assert_cmpint (switched, ==, c.voice_first_us);
  g_assert_cmpint (ok - c.voice_first_us, >=, 150 * 1000);
  flow_daemon_stop (d);
}

/* bob answers with several codecs, PCMU first: the session alice has.
 * Her 200 carries byte for byte the SDP of the 183 (o= version too), and
 * no re-INVITE or UPDATE follows. */
static void
test_same_sdp_in_200 (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .ring_ms = RING_MS, .voice_delay_ms = RING_MS, .voice_pt = PCMU,
                      .answer = &rb_answer_many };
  g_auto (RbCall) c = { 0 };
  const char *early, *ok;
  g_autofree char *early_o = NULL, *ok_o = NULL;

  rb_call_run (d, &c, &spec);
  early = rb_assert_ringback_answer (&c, "0 101");
  ok = flow_require_response (c.a->received, 200, "INVITE", 0);
  early_o = flow_sdp_line (early, "o=");
  ok_o = flow_sdp_line (ok, "o=");
  g_assert_cmpstr (ok_o, ==, early_o);
  g_assert_cmpuint (flow_sdp_version (ok), ==, flow_sdp_version (early));
  assert_g711_ringback (&c, "0 101", PCMU, BOB_TUNE_HZ, FALSE);
  flow_daemon_stop (d);
}

/* ringback = none for bob (though [media] has a default tune): today's
 * plain 180 without SDP, no 183, and nothing reaches alice before bob's
 * answer. */
static void
test_none_plain_180 (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("ringback = tone:eu\n", "ringback = none", NULL);
  RbCallSpec spec = { .ring_ms = RING_MS, .voice_delay_ms = RING_MS + 100, .voice_pt = PCMA,
                      .answer = &rb_answer_pcma, .plain = TRUE };
  const RbTone tones[] = { { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c = { 0 };
  g_autofree char *statuses = NULL, *ringing_body = NULL, *letters = NULL, *runs = NULL;
  gint64 ok;

  rb_call_run (d, &c, &spec);
  statuses = rb_statuses (&c);
  g_assert_cmpstr (statuses, ==, "180 200");
  ringing_body = flow_msg_body (flow_require_response (c.a->received, 180, "INVITE", 0));
  g_assert_cmpstr (ringing_body, ==, "");
  rb_assert_runs_ok (&c);
  ok = rb_ringer_sent_us (&c, 200);
  letters = rb_letters (c.at_alice, tones, G_N_ELEMENTS (tones), FALSE);
  runs = rb_runs (letters);
  rb_note_stream ("alice", c.at_alice, letters);
  flow_note ("alice heard %s", runs);
  for (guint i = 0; i < c.at_alice->len; i++) {
    const FlowRtpPacket *p = &g_array_index (c.at_alice, FlowRtpPacket, i);
    if (p->time_us < ok || letters[i] != 'V')
      g_printerr ("flow: alice's packet %u (%c) came %" G_GINT64_FORMAT " ms from bob's 200 "
                  "(want only his voice, after it)\n", i, letters[i], (p->time_us - ok) / 1000);
    g_assert_cmpint (p->time_us, >=, ok);
    g_assert_cmpint (letters[i], ==, 'V');
  }
  g_assert_cmpuint (c.at_alice->len, >=, 40);
  flow_daemon_stop (d);
}

/* ---- the callee's own early media ---------------------------------------------------------- */

/* bob rings (the tune), then sends 183 with SDP and, 300 ms later, RTP
 * (an announcement): in early-media-first mode (the default) that RTP
 * wins at once, long before his 200. */
static void
test_early_media_wins (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .ringer_scenario = "ringback-uas-early.xml", .ring_ms = 1500,
                      .voice_delay_ms = EARLY_AFTER_MS + 300, .voice_pt = PCMU };
  g_auto (RbCall) c = { 0 };
  gint64 switched;

  rb_call_run (d, &c, &spec);
  switched = assert_g711_ringback (&c, "0 101", PCMU, BOB_TUNE_HZ, FALSE);
  g_assert_cmpint (switched, ==, c.voice_first_us);
  g_assert_cmpint (c.voice_first_us, >=, rb_ringer_sent_us (&c, 183));
  g_assert_cmpint (rb_ringer_sent_us (&c, 200) - switched, >=, 1000 * 1000);
  flow_daemon_stop (d);
}

/* The same 183 with SDP, but no RTP until after bob's 200 (a carrier's
 * 183 and silence): the tune goes on through the 183 until the 200. */
static void
test_early_media_no_rtp_keeps_tune (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .ringer_scenario = "ringback-uas-early.xml", .ring_ms = 1500,
                      .voice_delay_ms = EARLY_AFTER_MS + 1500 + 200, .voice_pt = PCMU };
  g_auto (RbCall) c = { 0 };
  gint64 switched;

  rb_call_run (d, &c, &spec);
  switched = assert_g711_ringback (&c, "0 101", PCMU, BOB_TUNE_HZ, FALSE);
  g_assert_cmpint (switched, ==, rb_ringer_sent_us (&c, 200));
  g_assert_cmpint (switched - rb_ringer_sent_us (&c, 183), >=, 1000 * 1000);
  flow_daemon_stop (d);
}

/* ringback-mode = tune-first: bob's early RTP does not stop the tune;
 * his 200 does. */
static void
test_tune_first_mode (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune ("ringback-mode = tune-first\n");
  RbCallSpec spec = { .ringer_scenario = "ringback-uas-early.xml", .ring_ms = 1500,
                      .voice_delay_ms = EARLY_AFTER_MS + 300, .voice_pt = PCMU };
  g_auto (RbCall) c = { 0 };
  gint64 switched;

  rb_call_run (d, &c, &spec);
  switched = assert_g711_ringback (&c, "0 101", PCMU, BOB_TUNE_HZ, TRUE);
  g_assert_cmpint (switched - c.voice_first_us, >=, 1000 * 1000);
  flow_daemon_stop (d);
}

/* ---- codecs ------------------------------------------------------------------------------- */

/* alice offers only PCMA: the 183 answers PCMA (and telephone-event), the
 * tune comes in A-law as payload type 8. */
static void
test_pcma_only (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .offer = &rb_offer_pcma, .answer = &rb_answer_pcma, .ring_ms = RING_MS,
                      .voice_delay_ms = RING_MS, .voice_pt = PCMA };
  g_auto (RbCall) c = { 0 };

  rb_call_run (d, &c, &spec);
  assert_g711_ringback (&c, "8 101", PCMA, BOB_TUNE_HZ, FALSE);
  flow_daemon_stop (d);
}

/* A decoded tune (Opus, G.722) of n packets: after the decoder's first
 * frames, bob's frequency in 9 frames of 10 at least. */
static void
assert_decoded_tune (GArray *pcm, guint n)
{
  const RbTone tones[] = { { 'T', BOB_TUNE_HZ } };
  g_autoptr (GString) seen = g_string_new (NULL);
  guint frames = pcm->len / RB_FRAME, tune = 0;

  for (guint f = 5; f < frames; f++) {
    char what = rb_classify (&g_array_index (pcm, gint16, f * RB_FRAME), RB_FRAME, tones, 1);
    g_string_append_c (seen, what);
    tune += what == 'T';
  }
  flow_note ("the tune decoded: %u samples, frames %s", pcm->len, seen->str);
  g_assert_cmpuint (frames, >=, n * 9 / 10);
  g_assert_cmpuint (tune * 10, >=, (frames - 5) * 9);
}

/* alice offers only G.722: the 183 answers G.722 (and telephone-event),
 * the tune comes as payload type 9, 160-byte packets, timestamp step 160
 * (G.722's RTP clock is 8000, RFC 3551), and decodes (avdec_g722) to bob's
 * tune; then bob's G.722 audio (fill bytes: judged by header and place). */
static void
test_g722_only (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .offer = &rb_offer_g722, .answer = &rb_answer_g722, .ring_ms = RING_MS,
                      .voice_delay_ms = RING_MS, .voice_pt = G722, .voice_fill = TRUE };
  g_auto (RbCall) c = { 0 };
  g_autofree char *letters = NULL;
  g_autoptr (GArray) pcm = NULL;
  const char *early;
  RbSwitch want = { .pt = G722, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };
  guint k;

  gst_init (NULL, NULL);
  rb_call_run (d, &c, &spec);
  early = rb_assert_ringback_answer (&c, "9 101");
  flow_assert_sdp_has (early, "a=rtpmap:9 G722/8000");
  letters = rb_letters (c.at_alice, NULL, 0, TRUE);
  want.switch_us = switch_due (&c, FALSE);
  want.min_tune = min_tune (&c, early, want.switch_us);
  k = rb_assert_switch (&c, letters, &want);
  pcm = rb_decode_g722 (c.at_alice, 0, k, G722);
  assert_decoded_tune (pcm, k);
  rb_assert_runs_ok (&c);
  flow_daemon_stop (d);
}

/* alice offers only Opus: the 183 answers Opus (and telephone-event), the
 * tune comes as payload type 111 on the 48 kHz clock (timestamp step 960)
 * and decodes (GStreamer's opusdec) to bob's tune; then bob's Opus audio
 * (fill bytes: only its header and place in the stream are judged). */
static void
test_opus_only (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .offer = &rb_offer_opus, .answer = &rb_answer_opus, .ring_ms = RING_MS,
                      .voice_delay_ms = RING_MS, .voice_pt = OPUS, .voice_fill = TRUE };
  g_auto (RbCall) c = { 0 };
  g_autofree char *letters = NULL;
  const char *early;
  g_autoptr (GArray) pcm = NULL;
  RbSwitch want = { .pt = OPUS, .ts_step = 960, .clock_rate = 48000 };
  guint k;

  gst_init (NULL, NULL);
  rb_call_run (d, &c, &spec);
  early = rb_assert_ringback_answer (&c, "111 101");
  flow_assert_sdp_has (early, "a=rtpmap:111 opus/48000/2");
  letters = rb_letters (c.at_alice, NULL, 0, TRUE);
  want.switch_us = switch_due (&c, FALSE);
  want.min_tune = min_tune (&c, early, want.switch_us);
  k = rb_assert_switch (&c, letters, &want);
  pcm = rb_decode_opus (c.at_alice, 0, k, OPUS);
  assert_decoded_tune (pcm, k);
  rb_assert_runs_ok (&c);
  flow_daemon_stop (d);
}

/* ---- 100rel -------------------------------------------------------------------------------- */

/* alice requires 100rel: tandem's 183 is reliable (Require: 100rel, an
 * RSeq), her PRACK (RAck: that RSeq, 2 INVITE) gets 200, and the call
 * goes on to the answer as usual. */
static void
test_prack (void)
{
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  RbCallSpec spec = { .alice_scenario = "ringback-uac-prack.xml", .ring_ms = RING_MS,
                      .voice_delay_ms = RING_MS, .voice_pt = PCMU };
  g_auto (RbCall) c = { 0 };
  g_autofree char *require = NULL, *rseq = NULL, *rack = NULL, *want_rack = NULL;
  const char *early, *prack, *prack_ok, *ok;

  rb_call_run (d, &c, &spec);
  early = rb_assert_ringback_answer (&c, "0 101");
  require = flow_require_header (early, "Require");
  g_assert_nonnull (strstr (require, "100rel"));
  rseq = flow_require_header (early, "RSeq");
  prack = flow_require_msg (c.a->sent, "PRACK ", 0);
  rack = flow_require_header (prack, "RAck");
  want_rack = g_strdup_printf ("%s 2 INVITE", rseq);
  g_assert_cmpstr (rack, ==, want_rack);
  prack_ok = flow_require_response (c.a->received, 200, "PRACK", 0);
  ok = flow_require_response (c.a->received, 200, "INVITE", 0);
  g_assert_cmpuint (flow_msg_index (c.a->received, prack_ok), <,
                    flow_msg_index (c.a->received, ok));
  assert_g711_ringback (&c, "0 101", PCMU, BOB_TUNE_HZ, FALSE);
  flow_daemon_stop (d);
}

/* ---- the tones: [media] ringback = tone:eu ------------------------------------------------- */

/* bob has no tune of his own; [media] ringback = tone:eu plays to him:
 * 425 Hz, 1 s on, 4 s off (ETSI ES 201 970), generated. Ringing 6.5 s
 * shows one whole off and one whole on (T the tone, s silence). */
static void
test_default_tone (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("ringback = tone:eu\n", NULL, NULL);
  RbCallSpec spec = { .ring_ms = 6500, .voice_delay_ms = 6500, .voice_pt = PCMU };
  const RbTone tones[] = { { 'T', 425 }, { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c = { 0 };
  g_autofree char *letters = NULL, *runs = NULL, *tune = NULL;
  g_auto (GStrv) parts = NULL;
  const char *early;
  RbSwitch want = { .pt = PCMU, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };
  guint k = 0, whole_on = 0, whole_off = 0;

  rb_call_run (d, &c, &spec);
  early = rb_assert_ringback_answer (&c, "0 101");
  letters = rb_letters (c.at_alice, tones, G_N_ELEMENTS (tones), FALSE);
  runs = rb_runs (letters);
  flow_note ("alice heard %s", runs);
  /* The cadence: the runs before the voice; the first and last may be cut. */
  while (letters[k] == 'T' || letters[k] == 's')
    k++;
  tune = g_strndup (letters, k);
  {
    g_autofree char *tune_runs = rb_runs (tune);
    parts = g_strsplit (tune_runs, " ", -1);
  }
  for (guint i = 1; parts[i] && parts[i + 1]; i++) {
    guint n = (guint) g_ascii_strtoull (strchr (parts[i], 'x') + 1, NULL, 10);
    if (parts[i][0] == 'T') {
      whole_on++;
      g_assert_cmpuint (n, >=, 45);
      g_assert_cmpuint (n, <=, 55);
    } else {
      whole_off++;
      g_assert_cmpint (parts[i][0], ==, 's');
      g_assert_cmpuint (n, >=, 190);
      g_assert_cmpuint (n, <=, 210);
    }
  }
  g_assert_cmpuint (whole_off, >=, 1);
  g_assert_cmpuint (whole_on + whole_off, >=, 2);
  /* Otherwise the stream and switch as for a tune (its silences are tune). */
  for (guint i = 0; i < k; i++)
    letters[i] = 'T';
  want.switch_us = switch_due (&c, FALSE);
  want.min_tune = min_tune (&c, early, want.switch_us);
  rb_assert_switch (&c, letters, &want);
  rb_assert_runs_ok (&c);
  flow_daemon_stop (d);
}

/* ---- forwarding ---------------------------------------------------------------------------- */

/* bob is busy and forwards to carol; both have tunes. alice hears
 * want_hz (carol's with ringback-follows = current, bob's with original)
 * and never the other, then carol's voice. */
static void
forward_case (const char *media, guint want_hz, guint other_hz)
{
  g_autofree char *bob_tune = write_tune ("bob.wav", BOB_TUNE_HZ);
  g_autofree char *carol_tune = write_tune ("carol.wav", CAROL_TUNE_HZ);
  g_autofree char *bob = g_strdup_printf ("forward-busy = carol\nringback = %s", bob_tune);
  g_autofree char *carol = g_strdup_printf ("ringback = %s", carol_tune);
  g_autoptr (FlowDaemon) d = start_tandem (media, bob, carol);
  RbCallSpec spec = { .busy = "bob", .ringer = "carol", .ring_ms = RING_MS,
                      .voice_delay_ms = RING_MS, .voice_pt = PCMU };
  const RbTone tones[] = { { 'T', want_hz }, { 'X', other_hz }, { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c = { 0 };
  g_autofree char *statuses = NULL, *letters = NULL;
  const char *early;
  RbSwitch want = { .pt = PCMU, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };

  rb_call_run (d, &c, &spec);
  statuses = rb_statuses (&c);
  g_assert_true (g_str_has_prefix (statuses, "181 "));
  early = rb_assert_ringback_answer (&c, "0 101");
  flow_assert_error_acked (c.bz);
  letters = rb_letters (c.at_alice, tones, G_N_ELEMENTS (tones), FALSE);
  want.switch_us = switch_due (&c, FALSE);
  want.min_tune = min_tune (&c, early, want.switch_us);
  rb_assert_switch (&c, letters, &want);
  rb_assert_runs_ok (&c);
  flow_assert_cdr (d, c.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

static void
test_forward_follows_current (void)
{
  forward_case (NULL, CAROL_TUNE_HZ, BOB_TUNE_HZ);
}

static void
test_forward_follows_original (void)
{
  forward_case ("ringback-follows = original\n", BOB_TUNE_HZ, CAROL_TUNE_HZ);
}

/* ---- blind transfer ------------------------------------------------------------------------ */

#define BOB_VOICE_HZ 1000
#define PHASE_MS 2000            /* bob talks this long, then refers alice to carol */

/* alice calls bob, who answers and talks (BOB_VOICE_HZ) for PHASE_MS,
 * then refers her to carol (blind) and hangs up once carol answered.
 * carol's phone rings RING_MS; while it does alice hears carol's tune on
 * the stream she has (her relay port, its SSRC), then carol's voice. */
static void
test_transfer_target_tune (void)
{
  g_autofree char *carol_tune = write_tune ("carol.wav", CAROL_TUNE_HZ);
  g_autofree char *carol_lines = g_strdup_printf ("ringback = %s", carol_tune);
  g_autoptr (FlowDaemon) d = start_tandem (NULL, NULL, carol_lines);
  const char *bob_keys[] = { "refer_line", "Refer-To: <sip:carol@pbx.test>", "after", "bye",
                             NULL };
  const char *carol_keys[] = { "formats", rb_answer_pcma.formats, "map1",
                               rb_answer_pcma.lines[0], "map2", rb_answer_pcma.lines[1], NULL };
  const RbTone tones[] = { { 'B', BOB_VOICE_HZ }, { 'T', CAROL_TUNE_HZ }, { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c = { 0 };
  g_autoptr (FlowRun) b = NULL;
  g_autoptr (GArray) after = NULL;
  g_autofree char *letters = NULL, *runs = NULL, *ring = g_strdup_printf ("%u", RING_MS);
  RbSwitch want = { .pt = PCMA, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };
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
        .fill = RB_FILL_ALICE, .pt = PCMA, .count = 300 },
      /* bob stops talking just before his REFER. */
      { .bind_port = bob.rtp_port, .dest_file = "b.port", .ssrc = 0xB0B, .pt = PCMA,
        .tone_hz = BOB_VOICE_HZ, .count = PHASE_MS / 20 - 5 },
      { .bind_port = c.ringer.rtp_port, .dest_file = "c.port", .ssrc = RB_SSRC_CALLEE,
        .delay_ms = RING_MS, .pt = PCMA, .tone_hz = RB_VOICE_HZ, .count = 75 },
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
  want.switch_us = switch_due (&c, FALSE);
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
  g_autofree char *body = config_text (NULL, bob, NULL);
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
  g_autofree char *tune = write_tune ("bob.wav", BOB_TUNE_HZ);
  g_autofree char *conf = write_config (tune);
  const char *check[] = { g_getenv ("TANDEM_BIN"), "--check-config", conf, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = flow_command (check, COMMAND_TIMEOUT_MS, &out, &err);

  if (status != 0)
    g_printerr ("flow: --check-config with a good tune: exit %d, stderr:\n%s\n", status, err);
  g_assert_cmpint (status, ==, 0);
}

/* ---- reload -------------------------------------------------------------------------------- */

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
  rb_write_tune (tmp, NEW_TUNE_HZ, TUNE_MS);
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
  g_autoptr (FlowDaemon) d = start_with_bob_tune (NULL);
  g_autofree char *tune_path = g_build_filename (flow_case_dir (), "tunes", "bob.wav", NULL);
  Reloader r = { d, tune_path };
  RbCallSpec first = { .ring_ms = 3000, .voice_delay_ms = 3000, .voice_pt = PCMU, .side = "1" };
  RbCallSpec second = { .ring_ms = RING_MS, .voice_delay_ms = RING_MS, .voice_pt = PCMU,
                        .side = "2" };
  const RbTone old_tones[] = { { 'T', BOB_TUNE_HZ }, { 'N', NEW_TUNE_HZ }, { 'V', RB_VOICE_HZ } };
  const RbTone new_tones[] = { { 'T', NEW_TUNE_HZ }, { 'O', BOB_TUNE_HZ }, { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c1 = { 0 }, c2 = { 0 };
  g_autofree char *letters1 = NULL, *letters2 = NULL;
  const char *early;
  RbSwitch want = { .pt = PCMU, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };
  GThread *reloader = g_thread_new ("reload", reload_mid_call, &r);

  rb_call_run (d, &c1, &first);
  g_thread_join (reloader);
  g_assert_true (flow_daemon_wait_log (d, "configuration reloaded", 5000));
  early = rb_assert_ringback_answer (&c1, "0 101");
  letters1 = rb_letters (c1.at_alice, old_tones, G_N_ELEMENTS (old_tones), FALSE);
  want.switch_us = switch_due (&c1, FALSE);
  want.min_tune = min_tune (&c1, early, want.switch_us);
  rb_assert_switch (&c1, letters1, &want);
  rb_assert_runs_ok (&c1);

  second.ringer_sip_port = c1.ringer.sip_port;
  rb_call_run (d, &c2, &second);
  early = rb_assert_ringback_answer (&c2, "0 101");
  letters2 = rb_letters (c2.at_alice, new_tones, G_N_ELEMENTS (new_tones), FALSE);
  want.switch_us = switch_due (&c2, FALSE);
  want.min_tune = min_tune (&c2, early, want.switch_us);
  rb_assert_switch (&c2, letters2, &want);
  rb_assert_runs_ok (&c2);
  flow_daemon_stop (d);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/ringback/tune-then-voice", test_tune_then_voice);
  flow_add_test ("/ringback/switch-on-rtp-before-200", test_switch_on_rtp_before_200);
  flow_add_test ("/ringback/same-sdp-in-200", test_same_sdp_in_200);
  flow_add_test ("/ringback/none-plain-180", test_none_plain_180);
  flow_add_test ("/ringback/early-media-wins", test_early_media_wins);
  flow_add_test ("/ringback/early-media-no-rtp-keeps-tune", test_early_media_no_rtp_keeps_tune);
  flow_add_test ("/ringback/tune-first-mode", test_tune_first_mode);
  flow_add_test ("/ringback/pcma-only", test_pcma_only);
  flow_add_test ("/ringback/g722-only", test_g722_only);
  flow_add_test ("/ringback/opus-only", test_opus_only);
  flow_add_test ("/ringback/prack", test_prack);
  flow_add_test ("/ringback/default-tone", test_default_tone);
  flow_add_test ("/ringback/forward-follows-current", test_forward_follows_current);
  flow_add_test ("/ringback/forward-follows-original", test_forward_follows_original);
  flow_add_test ("/ringback/transfer-target-tune", test_transfer_target_tune);
  flow_add_test ("/ringback/missing-file-refused", test_missing_file_refused);
  flow_add_test ("/ringback/not-audio-refused", test_not_audio_refused);
  flow_add_test ("/ringback/good-file-accepted", test_good_file_accepted);
  flow_add_test ("/ringback/reload", test_reload);
  return g_test_run ();
}
