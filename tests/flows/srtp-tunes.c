/* SRTP flows with tunes (test-srtp.c's program): hold music and colour
 * ringback played to an SRTP leg from the relay, under the leg's one
 * outgoing SRTP context: the party decrypts the tune (found by its tone,
 * Goertzel on the G.711 it decodes) and the other party's voice after the
 * switch, as one stream, without an authentication or replay failure. */
#include <math.h>
#include <string.h>

#include "srtp-flow.h"

#define TONE_HZ 1000.0
#define RATE 8000
#define PHASE_MS 2000

/* A-law to linear (ITU-T G.711). */
static gint
alaw_decode (guint8 code)
{
  guint8 a = code ^ 0x55;
  gint exponent = (a >> 4) & 7, mantissa = a & 0xF;
  gint mag = exponent == 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);

  return a & 0x80 ? mag : -mag;
}

/* µ-law to linear (ITU-T G.711). */
static gint
ulaw_decode (guint8 code)
{
  guint8 u = (guint8) ~code;
  gint exponent = (u >> 4) & 7, mantissa = u & 0xF;
  gint mag = (((mantissa << 3) + 0x84) << exponent) - 0x84;

  return u & 0x80 ? -mag : mag;
}

/* The share of the packet's energy at TONE_HZ (Goertzel), in the G.711 law
 * of its payload type: near 1 for the tone, 0 for a fill. */
static double
tone_share (const FlowRtpPacket *p)
{
  double coeff = 2 * cos (2 * G_PI * TONE_HZ / RATE), s1 = 0, s2 = 0, energy = 0;

  for (guint i = 0; i < p->len; i++) {
    double x = p->pt == 0 ? ulaw_decode (p->payload[i]) : alaw_decode (p->payload[i]);
    double s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += x * x;
  }
  if (energy == 0)
    return 0;
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (energy * p->len / 2);
}

/* 2 s of a TONE_HZ sine in the case's directory: the tune. */
static char *
write_tone (void)
{
  char *wav = g_build_filename (flow_case_dir (), "tone.wav", NULL);
  gint16 samples[2 * RATE];

  for (guint i = 0; i < G_N_ELEMENTS (samples); i++)
    samples[i] = (gint16) lround (8000 * sin (2 * G_PI * TONE_HZ * i / RATE));
  flow_write_wav (wav, samples, G_N_ELEMENTS (samples), RATE);
  return wav;
}

/* tandem with the hold plugin and the tone as its music. */
static FlowDaemon *
start_with_music (void)
{
  g_autofree char *wav = write_tone ();
  g_autofree char *conf = g_strdup_printf ("[plugins]\nenabled = hold\n[hold]\nmusic = %s\n", wav);

  return start_tandem (conf);
}

/* How many of the packets the endpoint on bind_port got are the music. */
static guint
count_music (char **report, guint16 bind_port)
{
  g_autoptr (GArray) pkts = flow_probe_packets (report, bind_port);
  guint n = 0;

  for (guint i = 0; i < pkts->len; i++)
    n += tone_share (&g_array_index (pkts, FlowRtpPacket, i)) > 0.9;
  return n;
}

/* alice (SRTP) calls bob (plain), bob holds her (a=sendonly) and resumes:
 * through the hold plugin, alice hears bob, then the music (a 1 kHz tone),
 * then bob again, all decrypted under the one key tandem answered her
 * with: not one packet failing authentication or replay, the sequence
 * going on by one across both switches. */
static void
test_hold_music (void)
{
  g_autoptr (FlowDaemon) d = start_with_music ();
  g_autofree char *ka = random_key (30);
  const char *alice_keys[] = { "proto", "RTP/SAVP", "suite", SUITE_80, "crypto_key", ka, NULL };
  FlowParty alice = party ("alice", "srtp-uac.xml", "a");
  FlowParty bob = party ("bob", "srtp-uas-hold.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_autoptr (GArray) pkts = NULL;
  g_autoptr (GString) runs = g_string_new (NULL);
  g_auto (GStrv) report = NULL;
  g_auto (Answered) ta = { 0 };
  guint16 a_relay, b_relay;
  guint count[3] = { 0 }, run = 0;
  FlowSipp *sa, *sb;
  alice.keys = alice_keys;
  alice.pause_ms = "8000";
  alice.timeout = "25s";
  bob.pause_ms = G_STRINGIFY (PHASE_MS);
  bob.timeout = "25s";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  read_answered ("a.crypto", &ta);
  {
    /* One run over the three phases and some. */
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, ka, ta.key, 0, NULL),
                 plain_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB) };
    report = probe_run (eps, G_N_ELEMENTS (eps), 3 * PHASE_MS / 20 + 25, FALSE);
  }
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");
  g_assert_cmpuint (srtp_failures (report, alice.rtp_port), ==, 0);

  /* Runs of what alice heard: B (bob's fill), M (the tone), B. */
  pkts = flow_probe_packets (report, alice.rtp_port);
  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = &g_array_index (pkts, FlowRtpPacket, i);
    char kind = flow_rtp_is_fill (p, FILL_BOB) ? 'B' : tone_share (p) > 0.9 ? 'M' : '?';

    if (!runs->len || runs->str[runs->len - 1] != kind) {
      g_string_append_c (runs, kind);
      if (runs->len > 1)
        run++;
    }
    if (run < G_N_ELEMENTS (count))
      count[run]++;
    g_assert_cmpuint (p->src_port, ==, a_relay);
    if (i > 0)
      g_assert_cmpuint (p->seq, ==, (guint16) (g_array_index (pkts, FlowRtpPacket, i - 1).seq + 1));
  }
  flow_note ("alice heard %s: %u, %u, %u packets", runs->str, count[0], count[1], count[2]);
  g_assert_cmpstr (runs->str, ==, "BMB");
  for (guint r = 0; r < G_N_ELEMENTS (count); r++)
    g_assert_cmpuint (count[r], >=, PHASE_MS / 20 / 2);
  flow_daemon_stop (d);
}

/* The SRTP party holds: alice (SRTP) holds bob (a=sendonly, her same
 * key); the hold plugin answers her itself, on RTP/SAVP with a=recvonly and
 * the one line of tandem's she had (same tag, suite, key), and plays the
 * music to bob; bob's SIPp sees no re-INVITE; alice's audio, still
 * authenticated, does not reach him meanwhile. */
static void
test_hold_music_srtp_holder (void)
{
  g_autoptr (FlowDaemon) d = start_with_music ();
  g_autofree char *ka = random_key (30);
  const char *alice_keys[] = { "proto", "RTP/SAVP", "crypto_key", ka, "crypto_key2", ka, NULL };
  FlowParty alice = party ("alice", "srtp-uac-hold.xml", "a");
  FlowParty bob = party ("bob", "feat-uas-music.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) before = NULL, on_hold = NULL;
  g_auto (Answered) ta = { 0 }, ta2 = { 0 };
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  alice.keys = alice_keys;
  alice.pause_ms = "3000";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  read_answered ("a.crypto", &ta);
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, ka, ta.key, 1, NULL),
                 plain_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB) };
    before = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (before, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (before, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);

  g_assert_cmpuint (flow_wait_port_file ("a-held"), ==, a_relay);
  read_answered ("a-held.crypto", &ta2);
  g_assert_cmpstr (ta2.tag, ==, ta.tag);
  g_assert_cmpstr (ta2.suite, ==, ta.suite);
  g_assert_cmpstr (ta2.key, ==, ta.key);
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, ka, ta.key, 1 + PACKETS, NULL),
                 srtp_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB, NULL, NULL, NULL,
                          1 + PACKETS, NULL) };
    on_hold = probe (eps, G_N_ELEMENTS (eps));
  }
  g_assert_cmpuint (count_fill (on_hold, bob.rtp_port, FILL_ALICE), ==, 0);
  g_assert_cmpuint (count_music (on_hold, bob.rtp_port), >=, MIN_PACKETS);
  g_assert_cmpuint (count_fill (on_hold, alice.rtp_port, FILL_BOB), ==, 0);
  g_assert_cmpuint (srtp_failures (on_hold, alice.rtp_port), ==, 0);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");
  {
    const char *ok = flow_require_response (a->received, 200, "INVITE", 1);
    g_auto (GStrv) lines = crypto_lines (ok);
    assert_proto (ok, "RTP/SAVP");
    flow_assert_sdp_has (ok, "a=recvonly");
    g_assert_cmpuint (g_strv_length (lines), ==, 1);
  }
  g_assert_cmpuint (flow_count_msgs (b->received, "INVITE "), ==, 1);
  flow_daemon_stop (d);
}

/* Colour ringback to an SRTP caller: bob's tune (the tone) comes in
 * tandem's own 183 (PCMU), whose a=crypto is the key of its 200 too; alice
 * decrypts the tune, then bob's voice after the answer, as one stream
 * (sequence going on by one, not a packet failing authentication or
 * replay); bob hears alice once he has answered. */
static void
test_ringback (void)
{
  g_autofree char *wav = write_tone ();
  g_autofree char *conf = g_strdup_printf ("ringback-mode = tune-first\n"
                                           "[plugins]\nenabled = ringback\n"
                                           "[user bob]\npassword = bob-secret\nringback = %s\n",
                                           wav);
  g_autoptr (FlowDaemon) d = start_tandem (conf);
  g_autofree char *ka = random_key (30);
  const char *alice_keys[] = { "proto", "RTP/SAVP", "suite", SUITE_80, "crypto_key", ka, NULL };
  FlowParty alice = party ("alice", "srtp-uac.xml", "a"), bob = party ("bob", "call-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_autoptr (GArray) pkts = NULL;
  g_autoptr (GString) runs = g_string_new (NULL);
  g_auto (GStrv) report = NULL;
  g_auto (Answered) early = { 0 }, ta = { 0 };
  guint16 a_relay, b_relay;
  guint count[2] = { 0 }, run = 0;
  FlowSipp *sa, *sb;

  alice.keys = alice_keys;
  alice.pause_ms = "3000";
  bob.pause_ms = "2000";   /* rings 2 s */
  /* PCMU, the first of alice's formats and so the tune's: no re-INVITE to
   * change codecs at the answer */
  bob.pt = "0";
  bob.codec = "PCMU";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a-early");
  read_answered ("a-early.crypto", &early);
  g_assert_cmpstr (early.tag, ==, "1");
  g_assert_cmpstr (early.key, !=, ka);
  {
    /* bob talks once he has answered (2 s in): a packet of his before his
     * 200 would end the tune by design (td-call-early.c), as a callee's
     * first RTP does when it sent no early SDP. */
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, ka, early.key, 0, NULL),
                 plain_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB) };
    eps[1].delay_ms = 2300;
    report = probe_run (eps, G_N_ELEMENTS (eps), 175, FALSE);
  }
  g_assert_cmpuint (flow_wait_port_file ("a"), ==, a_relay);
  read_answered ("a.crypto", &ta);
  g_assert_cmpstr (ta.key, ==, early.key);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");
  g_assert_cmpuint (srtp_failures (report, alice.rtp_port), ==, 0);

  /* What alice heard: T (the tune), then B (bob's fill). */
  pkts = flow_probe_packets (report, alice.rtp_port);
  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = &g_array_index (pkts, FlowRtpPacket, i);
    char kind = flow_rtp_is_fill (p, FILL_BOB) ? 'B' : tone_share (p) > 0.9 ? 'T' : '?';

    if (!runs->len || runs->str[runs->len - 1] != kind) {
      g_string_append_c (runs, kind);
      if (runs->len > 1)
        run++;
    }
    if (run < G_N_ELEMENTS (count))
      count[run]++;
    g_assert_cmpuint (p->src_port, ==, a_relay);
    if (i > 0)
      g_assert_cmpuint (p->seq, ==, (guint16) (g_array_index (pkts, FlowRtpPacket, i - 1).seq + 1));
  }
  flow_note ("alice heard %s: %u, %u packets", runs->str, count[0], count[1]);
  g_assert_cmpstr (runs->str, ==, "TB");
  g_assert_cmpuint (count[0], >=, 40);
  g_assert_cmpuint (count[1], >=, 40);
  g_assert_cmpuint (count_fill (report, bob.rtp_port, FILL_ALICE), >=, 40);
  g_assert_cmpuint (count_fill (report, bob.rtp_port, FILL_ALICE), ==,
                    flow_probe_received (report, bob.rtp_port, 0, 0));
  flow_daemon_stop (d);
}


void
srtp_tunes_add_tests (void)
{
  flow_add_test ("/srtp/hold-music", test_hold_music);
  flow_add_test ("/srtp/holder-hold-music", test_hold_music_srtp_holder);
  flow_add_test ("/srtp/ringback", test_ringback);
}
