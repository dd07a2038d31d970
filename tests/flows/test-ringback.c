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
 * This program: the tune and the switch to the callee's voice, the
 * callee's own early media, the caller's codecs, 100rel, the generated
 * tones. test-ringback-users.c: whose tune plays (forwarding, transfer),
 * bad tune files, reload.
 *
 * Each case writes its tunes (WAVs of a sine of known frequency) into its
 * directory; the callee's voice is the rtp-probe's sine of RB_VOICE_HZ;
 * what alice receives is decoded and each 20 ms frame's tone found
 * (ringback-audio.h). The call and the checks of its stream and SDP are
 * ringback-call.h's, which says what the wire must show. */
#include <gst/gst.h>
#include <string.h>

#include "ringback-call.h"

/* ringback-uas-early.xml's 180 → 183 (its pause). */
#define EARLY_AFTER_MS 1000

#define G722 9
#define OPUS 111

/* ---- the tune, then the voice ------------------------------------------------------------ */

/* bob answers; his first RTP comes 200 ms after his 200: the tune stops at
 * the 200, his voice follows with the marker, the timestamp advanced by
 * the silence between. */
static void
test_tune_then_voice (void)
{
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .ring_ms = RB_RING_MS, .voice_delay_ms = RB_RING_MS + 200,
                      .voice_pt = RB_PCMU };
  g_auto (RbCall) c = { 0 };
  g_autofree char *statuses = NULL;

  rb_call_run (d, &c, &spec);
  rb_assert_g711_ringback (&c, "0 101", RB_PCMU, RB_BOB_TUNE_HZ, FALSE);
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
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .ring_ms = RB_RING_MS, .voice_delay_ms = RB_RING_MS - 300,
                      .voice_pt = RB_PCMU };
  g_auto (RbCall) c = { 0 };
  gint64 switched, ok;

  rb_call_run (d, &c, &spec);
  switched = rb_assert_g711_ringback (&c, "0 101", RB_PCMU, RB_BOB_TUNE_HZ, FALSE);
  ok = rb_ringer_sent_us (&c, 200);
  flow_note ("bob's RTP began %" G_GINT64_FORMAT " ms before his 200", (ok - switched) / 1000);
  /* The premise: his RTP did come well before his 200. */
  g_assert_cmpint (switched, ==, c.voice_first_us);
  g_assert_cmpint (ok - c.voice_first_us, >=, 150 * 1000);
  flow_daemon_stop (d);
}

/* bob answers with several codecs, RB_PCMU first: the session alice has.
 * Her 200 carries byte for byte the SDP of the 183 (o= version too), and
 * no re-INVITE or UPDATE follows. */
static void
test_same_sdp_in_200 (void)
{
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .ring_ms = RB_RING_MS, .voice_delay_ms = RB_RING_MS, .voice_pt = RB_PCMU,
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
  rb_assert_g711_ringback (&c, "0 101", RB_PCMU, RB_BOB_TUNE_HZ, FALSE);
  flow_daemon_stop (d);
}

/* ringback = none for bob (though [media] has a default tune): today's
 * plain 180 without SDP, no 183, and nothing reaches alice before bob's
 * answer. */
static void
test_none_plain_180 (void)
{
  g_autoptr (FlowDaemon) d = rb_start_tandem ("ringback = tone:eu\n", "ringback = none", NULL);
  RbCallSpec spec = { .ring_ms = RB_RING_MS, .voice_delay_ms = RB_RING_MS + 100,
                      .voice_pt = RB_PCMA,
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

/* ---- the callee's own early media -------------------------------------------------------- */

/* bob rings (the tune), then sends 183 with SDP and, 300 ms later, RTP
 * (an announcement): in early-media-first mode (the default) that RTP
 * wins at once, long before his 200. */
static void
test_early_media_wins (void)
{
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .ringer_scenario = "ringback-uas-early.xml", .ring_ms = 1500,
                      .voice_delay_ms = EARLY_AFTER_MS + 300, .voice_pt = RB_PCMU };
  g_auto (RbCall) c = { 0 };
  gint64 switched;

  rb_call_run (d, &c, &spec);
  switched = rb_assert_g711_ringback (&c, "0 101", RB_PCMU, RB_BOB_TUNE_HZ, FALSE);
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
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .ringer_scenario = "ringback-uas-early.xml", .ring_ms = 1500,
                      .voice_delay_ms = EARLY_AFTER_MS + 1500 + 200, .voice_pt = RB_PCMU };
  g_auto (RbCall) c = { 0 };
  gint64 switched;

  rb_call_run (d, &c, &spec);
  switched = rb_assert_g711_ringback (&c, "0 101", RB_PCMU, RB_BOB_TUNE_HZ, FALSE);
  g_assert_cmpint (switched, ==, rb_ringer_sent_us (&c, 200));
  g_assert_cmpint (switched - rb_ringer_sent_us (&c, 183), >=, 1000 * 1000);
  flow_daemon_stop (d);
}

/* ringback-mode = tune-first: bob's early RTP does not stop the tune;
 * his 200 does. (His RTP goes on 1.5 s past the 200: 3 s in all.) */
static void
test_tune_first_mode (void)
{
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune ("ringback-mode = tune-first\n");
  RbCallSpec spec = { .ringer_scenario = "ringback-uas-early.xml", .ring_ms = 1500,
                      .voice_delay_ms = EARLY_AFTER_MS + 300, .voice_pt = RB_PCMU,
                      .voice_packets = 150 };
  g_auto (RbCall) c = { 0 };
  gint64 switched;

  rb_call_run (d, &c, &spec);
  switched = rb_assert_g711_ringback (&c, "0 101", RB_PCMU, RB_BOB_TUNE_HZ, TRUE);
  g_assert_cmpint (switched - c.voice_first_us, >=, 1000 * 1000);
  flow_daemon_stop (d);
}

/* ---- codecs ------------------------------------------------------------------------------ */

/* alice offers only RB_PCMA: the 183 answers RB_PCMA (and telephone-event), the
 * tune comes in A-law as payload type 8. */
static void
test_pcma_only (void)
{
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .offer = &rb_offer_pcma, .answer = &rb_answer_pcma, .ring_ms = RB_RING_MS,
                      .voice_delay_ms = RB_RING_MS, .voice_pt = RB_PCMA };
  g_auto (RbCall) c = { 0 };

  rb_call_run (d, &c, &spec);
  rb_assert_g711_ringback (&c, "8 101", RB_PCMA, RB_BOB_TUNE_HZ, FALSE);
  flow_daemon_stop (d);
}

/* A decoded tune (Opus, G.722) of n packets: after the decoder's first
 * frames, bob's frequency in 9 frames of 10 at least. */
static void
assert_decoded_tune (GArray *pcm, guint n)
{
  const RbTone tones[] = { { 'T', RB_BOB_TUNE_HZ } };
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
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .offer = &rb_offer_g722, .answer = &rb_answer_g722, .ring_ms = RB_RING_MS,
                      .voice_delay_ms = RB_RING_MS, .voice_pt = G722, .voice_fill = TRUE };
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
  want.switch_us = rb_switch_due (&c, FALSE);
  want.min_tune = rb_min_tune (&c, early, want.switch_us);
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
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .offer = &rb_offer_opus, .answer = &rb_answer_opus, .ring_ms = RB_RING_MS,
                      .voice_delay_ms = RB_RING_MS, .voice_pt = OPUS, .voice_fill = TRUE };
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
  want.switch_us = rb_switch_due (&c, FALSE);
  want.min_tune = rb_min_tune (&c, early, want.switch_us);
  k = rb_assert_switch (&c, letters, &want);
  pcm = rb_decode_opus (c.at_alice, 0, k, OPUS);
  assert_decoded_tune (pcm, k);
  rb_assert_runs_ok (&c);
  flow_daemon_stop (d);
}

/* ---- 100rel ------------------------------------------------------------------------------ */

/* alice requires 100rel: tandem's 183 is reliable (Require: 100rel, an
 * RSeq), her PRACK (RAck: that RSeq, 2 INVITE) gets 200, and the call
 * goes on to the answer as usual. */
static void
test_prack (void)
{
  g_autoptr (FlowDaemon) d = rb_start_with_bob_tune (NULL);
  RbCallSpec spec = { .alice_scenario = "ringback-uac-prack.xml", .ring_ms = RB_RING_MS,
                      .voice_delay_ms = RB_RING_MS, .voice_pt = RB_PCMU };
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
  rb_assert_g711_ringback (&c, "0 101", RB_PCMU, RB_BOB_TUNE_HZ, FALSE);
  flow_daemon_stop (d);
}

/* ---- the tones: [media] ringback = tone:eu ----------------------------------------------- */

/* bob has no tune of his own; [media] ringback = tone:eu plays to him:
 * 425 Hz, 1 s on, 4 s off (ETSI ES 201 970), generated. Ringing 6.5 s
 * shows one whole off and one whole on (T the tone, s silence). */
static void
test_default_tone (void)
{
  g_autoptr (FlowDaemon) d = rb_start_tandem ("ringback = tone:eu\n", NULL, NULL);
  RbCallSpec spec = { .ring_ms = 6500, .voice_delay_ms = 6500, .voice_pt = RB_PCMU };
  const RbTone tones[] = { { 'T', 425 }, { 'V', RB_VOICE_HZ } };
  g_auto (RbCall) c = { 0 };
  g_autofree char *letters = NULL, *runs = NULL, *tune = NULL;
  g_auto (GStrv) parts = NULL;
  const char *early;
  RbSwitch want = { .pt = RB_PCMU, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE };
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
  want.switch_us = rb_switch_due (&c, FALSE);
  want.min_tune = rb_min_tune (&c, early, want.switch_us);
  rb_assert_switch (&c, letters, &want);
  rb_assert_runs_ok (&c);
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
  return g_test_run ();
}
