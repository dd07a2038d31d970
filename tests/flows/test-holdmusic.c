/* Music on hold (flow 12 with the hold plugin and [hold] music): when
 * alice holds bob, tandem answers her re-INVITE itself and plays the music
 * file to bob from his relay port, in his G.711 codec, under the port's one
 * outgoing RTP context (same SSRC as alice's audio before, sequence going on
 * by one, marker on the first packet of each source); the resume gives bob
 * alice's audio back the same way. bob's SIPp never sees a re-INVITE.
 *
 * Each case writes its music (a WAV of known samples) into its directory and
 * runs one rtp-probe -t over the whole call, with alice's payload all
 * FILL_ALICE bytes and bob's all FILL_BOB, so that every packet bob receives
 * is either alice's or the music, and the music is checked against the file
 * sample by sample (decoded with the G.711 tables, within half a step of
 * the codec's quantiser). SIPp's message times place the switches.
 * Parties, SDP, probe and CDR helpers are flow-calls.h's. */
#include <math.h>
#include <signal.h>
#include <string.h>

#include "flow-calls.h"

/* The relay range: below SIPp's and the harness's ports (the kernel's
 * ephemeral range), apart from the other flow tests' (20000-32699) and the
 * relay unit tests' (10000-19599). */
#define MEDIA_MIN 8000
#define MEDIA_MAX 9999
#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 8000-9999\n"
#define PLUGINS_CONFIG "[plugins]\nenabled = forward;hold;waiting\n"

#define SSRC_ALICE 0xA11CEu
#define SSRC_BOB 0xB0Bu
#define FILL_ALICE 0x55
#define FILL_BOB 0xAA
#define PCMU 0
#define PCMA 8

/* alice's scenario spends this long in each phase (talk, hold, talk
 * again...); the probe runs from the answer to past the BYE. */
#define PHASE_MS 2000
/* What each phase must bring at least: ~1 s of 20 ms packets. */
#define MIN_PHASE_PACKETS 40
/* The music: 2 s at 8 kHz, 100 frames of 20 ms. */
#define MUSIC_RATE 8000
#define MUSIC_FRAME 160
#define MUSIC_FRAMES 100
/* How far from the SIP message that asked for it a switch may show on the
 * wire: the relay applies commands within microseconds, but SIPp's message
 * times are those of its log, a little after the socket; room for a loaded
 * machine too. */
#define SWITCH_SLACK_US (100 * 1000)

/* ---- the music file -------------------------------------------------------------------- */

typedef struct {
  char *path;
  gint16 samples[MUSIC_FRAMES * MUSIC_FRAME];
} Music;

static void
music_clear (Music *m)
{
  g_clear_pointer (&m->path, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Music, music_clear)

/* A 440 Hz tone with noise on it, so that no two 20 ms frames are alike
 * (the check below finds where in the file each packet is), kept clear of
 * µ-law's clipping; written as a plain RIFF/WAVE file (8 kHz, mono, 16-bit)
 * into the case's directory. */
static void
music_write (Music *m)
{
  guint32 seed = 12345;

  for (guint i = 0; i < G_N_ELEMENTS (m->samples); i++) {
    seed = seed * 1103515245u + 12345u;
    m->samples[i] = (gint16) (9000.0 * sin (2 * G_PI * 440.0 * i / MUSIC_RATE) +
                              (gint) ((seed >> 16) % 12001) - 6000);
  }
  m->path = g_build_filename (flow_case_dir (), "hold-music.wav", NULL);
  flow_write_wav (m->path, m->samples, G_N_ELEMENTS (m->samples), MUSIC_RATE);
}

/* G.711 decoding (ITU-T G.711, on the 16-bit scale) and how far from the
 * encoded sample the decoded value may be: half the quantiser step of the
 * code's segment, plus a little for encoders that round differently. */
static gint
ulaw_decode (guint8 code, gint *tolerance)
{
  guint8 u = (guint8) ~code;
  gint exponent = (u >> 4) & 7, mantissa = u & 0xF;
  gint mag = (((mantissa << 3) + 0x84) << exponent) - 0x84;

  *tolerance = (4 << exponent) + 4;
  return u & 0x80 ? -mag : mag;
}

static gint
alaw_decode (guint8 code, gint *tolerance)
{
  guint8 a = code ^ 0x55;
  gint exponent = (a >> 4) & 7, mantissa = a & 0xF;
  gint mag = exponent == 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);

  *tolerance = (exponent <= 1 ? 8 : 8 << (exponent - 1)) + 4;
  return a & 0x80 ? mag : -mag;
}

/* The payload is frame `frame` of the music, in the law of `pt`. */
static gboolean
music_frame_is (const Music *m, guint frame, const FlowRtpPacket *p, guint8 pt)
{
  const gint16 *s = m->samples + (frame % MUSIC_FRAMES) * MUSIC_FRAME;

  if (p->len != MUSIC_FRAME)
    return FALSE;
  for (guint i = 0; i < MUSIC_FRAME; i++) {
    gint tolerance;
    gint v = pt == PCMU ? ulaw_decode (p->payload[i], &tolerance)
                        : alaw_decode (p->payload[i], &tolerance);
    if (ABS (v - s[i]) > tolerance)
      return FALSE;
  }
  return TRUE;
}

/* Which frame of the music the payload is; -1 if none. */
static gint
music_find_frame (const Music *m, const FlowRtpPacket *p, guint8 pt)
{
  for (guint f = 0; f < MUSIC_FRAMES; f++)
    if (music_frame_is (m, f, p, pt))
      return (gint) f;
  return -1;
}

/* ---- tandem and the call ---------------------------------------------------------------- */

/* tandem with our relay range, the hold plugin (and the others) and, if
 * music is not NULL, its file as the hold music. */
static FlowDaemon *
start_tandem (const Music *music)
{
  g_autofree char *conf = g_strdup_printf (MEDIA_CONFIG "\n" PLUGINS_CONFIG "%s%s%s",
                                           music ? "[hold]\nmusic = " : "",
                                           music ? music->path : "", music ? "\n" : "");
  return flow_daemon_start (conf);
}

/* alice calls bob and, a phase (PHASE_MS) after each step, re-INVITEs
 * (holds, resumes...) and finally hangs up; both ends' RTP is traced from
 * the answer to past the BYE. */
typedef struct {
  const char *alice_scenario;  /* feat-uac-hold*.xml */
  guint reinvites;             /* how many re-INVITEs it sends: hold, resume, hold... */
  const char *hold_addr, *hold_attr;
  const char *hold_formats;    /* feat-uac-hold-formats.xml: its hold offer's (NULL: "0 8 101") */
  const char *resume_formats;  /* and its resume's */
  const char *bob_scenario;    /* feat-uas-music.xml, feat-uas-held.xml */
  const char *bob_formats;     /* the formats of bob's answer to the call (NULL: "8") */
  const char *bob_answer_attr; /* feat-uas-held.xml: his answer to the hold */
} HoldCallSpec;

typedef struct {
  FlowParty alice, bob;
  FlowRun *a, *b;
  guint16 a_relay, b_relay;
  guint reinvites;
  GArray *at_alice, *at_bob;   /* FlowRtpPacket: what each received */
} HoldCall;

static void
hold_call_clear (HoldCall *c)
{
  g_clear_pointer (&c->a, flow_run_free);
  g_clear_pointer (&c->b, flow_run_free);
  g_clear_pointer (&c->at_alice, g_array_unref);
  g_clear_pointer (&c->at_bob, g_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HoldCall, hold_call_clear)

/* Runs the call. The runs are collected, not asserted: the caller says
 * what went wrong first. */
static void
hold_call_run (FlowDaemon *d, HoldCall *c, const HoldCallSpec *spec)
{
  /* Every phase, and some more after the BYE: nothing may come then. */
  guint probe_packets = (spec->reinvites + 1) * PHASE_MS / 20 + 60;
  g_auto (GStrv) report = NULL;
  FlowSipp *sa, *sb;

  c->reinvites = spec->reinvites;
  c->bob = flow_party ("bob", spec->bob_scenario, "b");
  c->bob.pt = spec->bob_formats;
  c->bob.answer_attr = spec->bob_answer_attr;
  c->bob.timeout = "25s";
  c->alice = flow_party ("alice", spec->alice_scenario, "a");
  c->alice.hold_addr = spec->hold_addr;
  c->alice.hold_attr = spec->hold_attr;
  c->alice.hold_formats = spec->hold_formats;
  c->alice.resume_formats = spec->resume_formats;
  c->alice.pause_ms = G_STRINGIFY (PHASE_MS);
  c->alice.timeout = "25s";
  sb = flow_callee_start (d, &c->bob);
  sa = flow_caller_start (d, &c->alice, "bob");
  c->b_relay = flow_wait_port_file ("b");
  c->a_relay = flow_wait_port_file ("a");
  {
    FlowTraceEndpoint eps[] = { { c->alice.rtp_port, c->a_relay, SSRC_ALICE, FILL_ALICE },
                                { c->bob.rtp_port, c->b_relay, SSRC_BOB, FILL_BOB } };
    report = flow_probe_trace (eps, G_N_ELEMENTS (eps), probe_packets);
  }
  c->a = flow_sipp_wait (sa);
  c->b = flow_sipp_wait (sb);
  c->at_alice = flow_probe_packets (report, c->alice.rtp_port);
  c->at_bob = flow_probe_packets (report, c->bob.rtp_port);
  g_assert_cmpuint (flow_probe_sent (report, c->alice.rtp_port), ==, probe_packets);
  g_assert_cmpuint (flow_probe_sent (report, c->bob.rtp_port), ==, probe_packets);
}

static void
assert_run_ok (const FlowRun *run, const char *who)
{
  if (run->exit_status != 0)
    g_printerr ("flow: %s's SIPp exited with %d%s\n", who, run->exit_status,
                run->timed_out ? " (killed: timed out)" : "");
  g_assert_cmpint (run->exit_status, ==, 0);
}

/* alice's re-INVITE n (1: the hold, 2: the resume...) and its 200; n = 0
 * is the call's INVITE and 200. */
static const char *
reinvite (const HoldCall *c, guint n)
{
  return flow_require_msg (c->a->sent, "INVITE ", n + 1);
}

static const char *
reinvite_ok (const HoldCall *c, guint n)
{
  return flow_require_response (c->a->received, 200, "INVITE", n);
}

/* When alice sent (or got) a message. */
static gint64
alice_time (const HoldCall *c, const char *msg)
{
  gint64 t = flow_run_msg_time (c->a, msg);
  g_assert_cmpint (t, >, 0);
  return t;
}

/* ---- reading the traced streams --------------------------------------------------------- */

static const FlowRtpPacket *
pkt (GArray *pkts, guint i)
{
  return &g_array_index (pkts, FlowRtpPacket, i);
}

/* Whose packets a stream brought, in runs, by payload (alice's fill, or
 * anything else: the music): returns "AMA" for alice's, the music, alice's
 * again, and describes it in text ("alice×101 music×100 alice×79"); first
 * and count: where the first MAX_RUNS runs start and how long they are. */
#define MAX_RUNS 8
static char *
stream_runs (GArray *pkts, GString *text, guint first[MAX_RUNS], guint count[MAX_RUNS])
{
  g_autoptr (GString) pattern = g_string_new (NULL);
  guint start = 0;

  for (guint i = 1; i <= pkts->len; i++) {
    gboolean alice = flow_rtp_is_fill (pkt (pkts, i - 1), FILL_ALICE);
    if (i < pkts->len && flow_rtp_is_fill (pkt (pkts, i), FILL_ALICE) == alice)
      continue;
    if (pattern->len < MAX_RUNS) {
      first[pattern->len] = start;
      count[pattern->len] = i - start;
    }
    g_string_append_c (pattern, alice ? 'A' : 'M');
    g_string_append_printf (text, "%s%s×%u", start ? " " : "", alice ? "alice" : "music",
                            i - start);
    start = i;
  }
  return g_strdup (pattern->str);
}

/* One line per packet into the case's notes (shown if the case fails). */
static void
note_stream (const char *who, GArray *pkts)
{
  g_autoptr (GString) s = g_string_new (NULL);

  g_string_append_printf (s, "%s received %u RTP packets "
                          "(#: src ssrc seq M pt ts time first-byte):", who, pkts->len);
  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i);
    g_string_append_printf (s, "\n  %u: %u %#x %u %u %u %u %" G_GINT64_FORMAT ".%06u %02x", i,
                            p->src_port, p->ssrc, p->seq, p->marker, p->pt, p->timestamp,
                            p->time_us / G_USEC_PER_SEC, (guint) (p->time_us % G_USEC_PER_SEC),
                            p->len ? p->payload[0] : 0);
  }
  flow_note ("%s", s->str);
}

/* Packets that arrived in [after_us, before_us). */
static guint
count_between (GArray *pkts, gint64 after_us, gint64 before_us)
{
  guint n = 0;
  for (guint i = 0; i < pkts->len; i++)
    if (pkt (pkts, i)->time_us >= after_us && pkt (pkts, i)->time_us < before_us)
      n++;
  return n;
}

/* One run of music: the file's frames one after the other, in bob's codec,
 * 50 packets a second. */
static void
assert_music_run (GArray *pkts, guint from, guint n, const Music *music, guint8 music_pt)
{
  gint frame = music_find_frame (music, pkt (pkts, from), music_pt);
  gint64 span_us = pkt (pkts, from + n - 1)->time_us - pkt (pkts, from)->time_us;
  guint in_first_second = 0;

  flow_note ("bob: the music from packet %u starts at frame %d of the file", from, frame);
  for (guint i = from; i < from + n; i++) {
    const FlowRtpPacket *p = pkt (pkts, i);
    guint want = (guint) frame + (i - from);
    if (p->pt != music_pt)
      g_printerr ("flow: bob's music packet %u has payload type %u (want %u)\n", i, p->pt,
                  music_pt);
    g_assert_cmpuint (p->pt, ==, music_pt);
    if (frame < 0 || !music_frame_is (music, want, p, music_pt))
      g_printerr ("flow: bob's music packet %u (%u bytes) is not frame %d of the file in "
                  "payload type %u (the run's first packet is frame %d)\n", i, p->len,
                  frame < 0 ? -1 : (gint) (want % MUSIC_FRAMES), music_pt, frame);
    g_assert_cmpint (frame, >=, 0);
    g_assert_true (music_frame_is (music, want, p, music_pt));
    if (p->time_us < pkt (pkts, from)->time_us + G_USEC_PER_SEC)
      in_first_second++;
  }
  flow_note ("bob: %u music packets in its first second, %u in %" G_GINT64_FORMAT " ms",
             in_first_second, n, span_us / 1000);
  g_assert_cmpint (span_us, >=, G_USEC_PER_SEC);
  g_assert_cmpuint (in_first_second, >=, 45);
  g_assert_cmpuint (in_first_second, <=, 55);
  g_assert_cmpuint ((guint64) (n - 1) * G_USEC_PER_SEC, >=, 45 * (guint64) span_us);
  g_assert_cmpuint ((guint64) (n - 1) * G_USEC_PER_SEC, <=, 55 * (guint64) span_us);
}

/* bob's stream: runs of alice's audio and of the music as `want` says
 * ("AMA": alice's, the music while held, alice's again), one switch per
 * re-INVITE of alice's, as one RTP stream out of his relay port; nothing
 * after the BYE. */
static void
assert_bob_stream (const HoldCall *c, const char *want, const Music *music, guint8 music_pt)
{
  GArray *pkts = c->at_bob;
  guint first[MAX_RUNS] = { 0 }, count[MAX_RUNS] = { 0 };
  g_autoptr (GString) runs = g_string_new (NULL);
  g_autofree char *pattern = NULL;
  guint n_runs = (guint) strlen (want);
  gint64 bye;

  g_assert_cmpuint (n_runs, <=, MAX_RUNS);
  g_assert_cmpuint (n_runs, ==, c->reinvites + 1);
  note_stream ("bob", pkts);
  pattern = stream_runs (pkts, runs, first, count);
  flow_note ("bob heard: %s", runs->str);
  if (strcmp (pattern, want) != 0)
    g_printerr ("flow: bob heard %s (want the runs %s: A alice, M music)\n", runs->str, want);
  g_assert_cmpstr (pattern, ==, want);
  for (guint r = 0; r < n_runs; r++) {
    if (count[r] < MIN_PHASE_PACKETS)
      g_printerr ("flow: bob heard %s (want >= %d packets each)\n", runs->str,
                  MIN_PHASE_PACKETS);
    g_assert_cmpuint (count[r], >=, MIN_PHASE_PACKETS);
  }

  /* One stream: the SSRC bob heard alice with, every packet from his relay
   * port, sequence numbers going on by one, the marker on the first packet
   * of each new source only, timestamps going on (by one frame a packet
   * within a source, by about the real time in between at a switch). */
  for (guint i = 0, r = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i), *prev = i ? pkt (pkts, i - 1) : NULL;
    gboolean is_switch = r + 1 < n_runs && i == first[r + 1];
    if (is_switch)
      r++;
    if (p->src_port != c->b_relay || p->ssrc != SSRC_ALICE || p->marker != is_switch ||
        (prev && p->seq != (guint16) (prev->seq + 1)))
      g_printerr ("flow: bob's packet %u (of %u: %s): from %u, SSRC %#x, seq %u after %u, "
                  "marker %d (want from %u, SSRC %#x, seq + 1, marker %d)\n", i, pkts->len,
                  runs->str, p->src_port, p->ssrc, p->seq, prev ? prev->seq : 0, p->marker,
                  c->b_relay, SSRC_ALICE, is_switch);
    g_assert_cmpuint (p->src_port, ==, c->b_relay);
    g_assert_cmphex (p->ssrc, ==, SSRC_ALICE);
    g_assert_cmpint (p->marker, ==, is_switch);
    if (!prev)
      continue;
    g_assert_cmpuint (p->seq, ==, (guint16) (prev->seq + 1));
    if (is_switch) {
      guint32 advance = p->timestamp - prev->timestamp;
      flow_note ("bob: switch at packet %u: timestamp + %u after %" G_GINT64_FORMAT
                 " µs of wall clock", i, advance, p->time_us - prev->time_us);
      g_assert_cmpuint (advance, >, 0);
      g_assert_cmpuint (advance, <, 2 * MUSIC_RATE);
    } else {
      if (p->timestamp - prev->timestamp != MUSIC_FRAME)
        g_printerr ("flow: bob's packet %u: timestamp %u after %u (want + %d)\n", i,
                    p->timestamp, prev->timestamp, MUSIC_FRAME);
      g_assert_cmpuint (p->timestamp - prev->timestamp, ==, MUSIC_FRAME);
    }
  }

  for (guint r = 0; r < n_runs; r++) {
    if (want[r] == 'M') {
      assert_music_run (pkts, first[r], count[r], music, music_pt);
    } else {
      /* alice's audio as she sent it */
      for (guint i = first[r]; i < first[r] + count[r]; i++) {
        g_assert_cmpuint (pkt (pkts, i)->pt, ==, PCMA);
        g_assert_cmpuint (pkt (pkts, i)->len, ==, MUSIC_FRAME);
      }
    }
    /* Each switch is a re-INVITE's: after alice sent it, and the run
     * before it over once she had its answer. */
    if (r > 0) {
      g_assert_cmpint (pkt (pkts, first[r])->time_us, >=,
                       alice_time (c, reinvite (c, r)) - SWITCH_SLACK_US);
      g_assert_cmpint (pkt (pkts, first[r] - 1)->time_us, <=,
                       alice_time (c, reinvite_ok (c, r)) + SWITCH_SLACK_US);
    }
  }
  bye = alice_time (c, flow_require_msg (c->a->sent, "BYE ", 0));
  g_assert_cmpuint (count_between (pkts, bye + SWITCH_SLACK_US, G_MAXINT64), ==, 0);
}

/* alice's stream: bob's audio, from her relay port, under bob's SSRC, and
 * nothing else (no music); nothing at all while she holds him (after her
 * odd re-INVITEs until the next one, or the BYE), bob again after each
 * resume; nothing after the BYE. */
static void
assert_alice_stream (const HoldCall *c)
{
  GArray *pkts = c->at_alice;
  gint64 bye = alice_time (c, flow_require_msg (c->a->sent, "BYE ", 0));

  note_stream ("alice", pkts);
  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i);
    if (p->src_port != c->a_relay || p->ssrc != SSRC_BOB || !flow_rtp_is_fill (p, FILL_BOB))
      g_printerr ("flow: alice's packet %u: from %u, SSRC %#x, payload %02x... (want only bob's "
                  "audio from %u, SSRC %#x)\n", i, p->src_port, p->ssrc,
                  p->len ? p->payload[0] : 0, c->a_relay, SSRC_BOB);
    g_assert_cmpuint (p->src_port, ==, c->a_relay);
    g_assert_cmphex (p->ssrc, ==, SSRC_BOB);
    g_assert_true (flow_rtp_is_fill (p, FILL_BOB));
  }
  for (guint n = 0; n <= c->reinvites; n++) {
    gboolean held = n % 2 == 1;
    gint64 from = n ? alice_time (c, reinvite_ok (c, n)) + SWITCH_SLACK_US : 0;
    gint64 to = (n < c->reinvites ? alice_time (c, reinvite (c, n + 1)) : bye) - SWITCH_SLACK_US;
    guint heard = count_between (pkts, from, to);
    flow_note ("alice heard %u of bob's packets after re-INVITE %u (%s)", heard, n,
               held ? "held" : "talking");
    if (held && heard)
      g_printerr ("flow: alice heard %u of bob's packets while she held him\n", heard);
    if (held)
      g_assert_cmpuint (heard, ==, 0);
    else
      g_assert_cmpuint (heard, >=, MIN_PHASE_PACKETS);
  }
  g_assert_cmpuint (count_between (pkts, bye + SWITCH_SLACK_US, G_MAXINT64), ==, 0);
}

/* ---- hold with music -------------------------------------------------------------------- */

/* One way to hold bob with music playing. */
typedef struct {
  const char *hold_addr, *hold_attr;  /* alice's hold offer: c= address, an a= line */
  const char *alice_sees;             /* the direction line of tandem's answer */
  const char *bob_formats;            /* bob's answer to the call: "8", "0 8"... */
  guint8 music_pt;                    /* what bob must hear the music in */
  const char *alice_scenario;         /* NULL: feat-uac-hold.xml (hold, resume) */
  const char *bob_hears;              /* NULL: "AMA" (alice, music, alice) */
  const char *hold_formats;           /* feat-uac-hold-formats.xml: the hold offer's */
} MusicCase;

/* RFC 3264 §6.1: an answer names at least one format of the offer (it may
 * add others); a sendrecv answer at least one codec (not just
 * telephone-event, 101 here) of the offer, or nothing could be sent. */
static void
assert_answer_formats (const char *offer, const char *answer)
{
  g_autofree char *offered = flow_sdp_formats (offer), *answered = flow_sdp_formats (answer);
  g_auto (GStrv) offered_v = g_strsplit (offered, " ", -1);
  g_auto (GStrv) answered_v = g_strsplit (answered, " ", -1);
  gboolean sendrecv = !flow_sdp_has (answer, "a=sendonly") &&
                      !flow_sdp_has (answer, "a=recvonly") && !flow_sdp_has (answer, "a=inactive");
  guint common = 0, common_codecs = 0;

  for (guint i = 0; answered_v[i]; i++)
    if (g_strv_contains ((const char *const *) offered_v, answered_v[i])) {
      common++;
      if (strcmp (answered_v[i], "101") != 0)
        common_codecs++;
    }
  if (common == 0 || (sendrecv && common_codecs == 0))
    g_printerr ("flow: the answer (formats %s) has no %s of the offer (formats %s):\n%s\n"
                "--- answered with:\n%s\n", answered, sendrecv ? "codec" : "format", offered,
                offer, answer);
  g_assert_cmpuint (common, >, 0);
  if (sendrecv)
    g_assert_cmpuint (common_codecs, >, 0);
}

static void
run_music (const MusicCase *mc)
{
  const char *bob_hears = mc->bob_hears ? mc->bob_hears : "AMA";
  HoldCallSpec spec = {
    .alice_scenario = mc->alice_scenario ? mc->alice_scenario : "feat-uac-hold.xml",
    .reinvites = (guint) strlen (bob_hears) - 1,
    .hold_addr = mc->hold_addr, .hold_attr = mc->hold_attr, .hold_formats = mc->hold_formats,
    .bob_scenario = "feat-uas-music.xml", .bob_formats = mc->bob_formats,
  };
  g_auto (Music) music = { 0 };
  g_autoptr (FlowDaemon) d = NULL;
  g_auto (HoldCall) c = { 0 };
  g_autofree char *bob_formats = NULL, *want_play = NULL;

  music_write (&music);
  d = start_tandem (&music);
  hold_call_run (d, &c, &spec);

  /* bob heard nothing of the holds: his only INVITE is the call's. */
  if (flow_count_msgs (c.b->received, "INVITE ") != 1)
    g_printerr ("flow: bob received %u INVITEs (want the call's only); the second:\n%s\n",
                flow_count_msgs (c.b->received, "INVITE "),
                flow_find_msg (c.b->received, "INVITE ", 1));
  g_assert_cmpuint (flow_count_msgs (c.b->received, "INVITE "), ==, 1);
  g_assert_cmpuint (flow_count_msgs (c.b->received, "UPDATE "), ==, 0);
  assert_run_ok (c.a, "alice");
  assert_run_ok (c.b, "bob");

  /* tandem answered alice itself: holds with the direction asked for,
   * resumes with sendrecv, always on the same relay port, with bob's
   * formats (fit for her offer), versioned. */
  bob_formats = flow_sdp_formats (reinvite_ok (&c, 0));
  for (guint n = 1; n <= c.reinvites; n++) {
    const char *ok = reinvite_ok (&c, n);
    g_autofree char *formats = flow_sdp_formats (ok);
    flow_assert_sdp_has (reinvite (&c, n), n % 2 ? mc->hold_attr : "a=sendrecv");
    flow_assert_sdp_has (ok, n % 2 ? mc->alice_sees : "a=sendrecv");
    g_assert_cmpuint (flow_assert_relay_sdp (ok, c.bob.rtp_port, FALSE, MEDIA_MIN, MEDIA_MAX),
                      ==, c.a_relay);
    assert_answer_formats (reinvite (&c, n), ok);
    g_assert_cmpstr (formats, ==, bob_formats);
    flow_assert_sdp_versioned (reinvite_ok (&c, n - 1), ok);
  }

  assert_bob_stream (&c, bob_hears, &music, mc->music_pt);
  assert_alice_stream (&c);

  want_play = g_strdup_printf ("playing %s to the", music.path);
  g_assert_true (flow_daemon_wait_log (d, want_play, 0));
  flow_assert_cdr (d, c.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* a=sendonly: tandem answers a=recvonly; bob hears the music (A-law, his
 * one codec). */
static void
test_music_sendonly (void)
{
  static const MusicCase mc = { .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
                                .alice_sees = "a=recvonly", .bob_formats = "8",
                                .music_pt = PCMA };
  run_music (&mc);
}

/* a=inactive: tandem answers a=inactive; the music still plays to bob. */
static void
test_music_inactive (void)
{
  static const MusicCase mc = { .hold_addr = "127.0.0.1", .hold_attr = "a=inactive",
                                .alice_sees = "a=inactive", .bob_formats = "8",
                                .music_pt = PCMA };
  run_music (&mc);
}

/* RFC 2543 hold, c=0.0.0.0 and no direction: tandem answers a=inactive
 * (on its own address, not 0.0.0.0). */
static void
test_music_zero_address (void)
{
  static const MusicCase mc = { .hold_addr = "0.0.0.0", .hold_attr = "a=ptime:20",
                                .alice_sees = "a=inactive", .bob_formats = "8",
                                .music_pt = PCMA };
  run_music (&mc);
}

/* bob answered µ-law: the music is µ-law. */
static void
test_music_pcmu (void)
{
  static const MusicCase mc = { .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
                                .alice_sees = "a=recvonly", .bob_formats = "0",
                                .music_pt = PCMU };
  run_music (&mc);
}

/* bob takes both laws, µ-law first: the music follows his first. */
static void
test_music_pcmu_first (void)
{
  static const MusicCase mc = { .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
                                .alice_sees = "a=recvonly", .bob_formats = "0 8",
                                .music_pt = PCMU };
  run_music (&mc);
}

/* And A-law first. */
static void
test_music_pcma_first (void)
{
  static const MusicCase mc = { .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
                                .alice_sees = "a=recvonly", .bob_formats = "8 0",
                                .music_pt = PCMA };
  run_music (&mc);
}

/* Held, resumed, held and resumed again: each hold brings the music (a new
 * source: marker, the sequence going on), each resume alice back. */
static void
test_music_twice (void)
{
  static const MusicCase mc = { .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
                                .alice_sees = "a=recvonly", .bob_formats = "8",
                                .music_pt = PCMA, .alice_scenario = "feat-uac-hold-twice.xml",
                                .bob_hears = "AMAMA" };
  run_music (&mc);
}

/* alice hangs up while bob hears the music: bob gets the BYE, and the music
 * stops with the call. */
static void
test_music_hangup_while_held (void)
{
  static const MusicCase mc = { .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
                                .alice_sees = "a=recvonly", .bob_formats = "8",
                                .music_pt = PCMA, .alice_scenario = "feat-uac-hold-hangup.xml",
                                .bob_hears = "AM" };
  run_music (&mc);
}

/* alice's hold offers only µ-law (and telephone-event) while bob talks
 * A-law: tandem still answers it itself (a recvonly answer needs only one
 * format of the offer: telephone-event here), and bob hears the music in
 * his A-law. */
static void
test_music_hold_offer_other_codec (void)
{
  static const MusicCase mc = { .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
                                .alice_sees = "a=recvonly", .bob_formats = "8",
                                .music_pt = PCMA, .alice_scenario = "feat-uac-hold-formats.xml",
                                .hold_formats = "0 101" };
  run_music (&mc);
}

/* The final response alice got to her re-INVITE n; NULL if none. */
static const char *
reinvite_final (const HoldCall *c, guint n)
{
  guint64 cseq = flow_msg_cseq (reinvite (c, n));

  for (guint i = 0; i < c->a->received->len; i++) {
    const char *m = g_ptr_array_index (c->a->received, i);
    if (flow_msg_status (m) >= 200 && flow_msg_cseq (m) == cseq)
      return m;
  }
  return NULL;
}

/* alice resumes with an offer of µ-law only (and telephone-event) while
 * bob's session is A-law. tandem cannot answer that resume itself from
 * bob's session (RFC 3264 §6.1: a sendrecv answer needs a codec of the
 * offer), so it asks bob: he gets the µ-law offer, and answers A-law only
 * (feat-uas-music.xml answers any re-INVITE with his codec). That answer
 * shares no codec with alice's offer, so alice gets exactly 488, never a
 * 200 with a codec she did not offer. bob has now taken a session alice
 * does not have: tandem offers him the one he had again (a third INVITE,
 * his first offer's formats, a newer o= version), so both agree. */
static void
test_music_resume_offer_other_codec (void)
{
  static const HoldCallSpec spec = {
    .alice_scenario = "feat-uac-hold-formats.xml", .reinvites = 2,
    .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly", .resume_formats = "0 101",
    .bob_scenario = "feat-uas-music.xml", .bob_formats = "8",
  };
  g_auto (Music) music = { 0 };
  g_autoptr (FlowDaemon) d = NULL;
  g_auto (HoldCall) c = { 0 };
  const char *resumed, *b_offer, *b_answer, *b_realign;
  g_autofree char *offered = NULL, *answered = NULL, *first = NULL, *realigned = NULL;

  music_write (&music);
  d = start_tandem (&music);
  hold_call_run (d, &c, &spec);
  flow_assert_sdp_has (reinvite_ok (&c, 1), "a=recvonly");
  assert_answer_formats (reinvite (&c, 1), reinvite_ok (&c, 1));
  /* The hold was tandem's to answer; the resume went to bob, and then the
   * session bob had before it. */
  g_assert_cmpuint (flow_count_msgs (c.b->received, "INVITE "), ==, 3);
  b_offer = flow_require_msg (c.b->received, "INVITE ", 1);
  b_realign = flow_require_msg (c.b->received, "INVITE ", 2);
  first = flow_sdp_formats (flow_require_msg (c.b->received, "INVITE ", 0));
  realigned = flow_sdp_formats (b_realign);
  g_assert_cmpstr (realigned, ==, first);
  g_assert_cmpuint (flow_sdp_version (b_realign), >, flow_sdp_version (b_offer));
  b_answer = flow_require_response (c.b->sent, 200, "INVITE", 1);
  offered = flow_sdp_formats (b_offer);
  answered = flow_sdp_formats (b_answer);
  g_assert_cmpstr (offered, ==, "0 101");
  g_assert_cmpstr (answered, ==, "8 101");
  resumed = reinvite_final (&c, 2);
  g_assert_nonnull (resumed);
  g_assert_cmpint (flow_msg_status (resumed), ==, 488);
  flow_daemon_stop (d);
}

/* ---- the hold plugin without music ------------------------------------------------------ */

/* No [hold] music configured: the hold plugin leaves holds to the core, which
 * relays alice's re-INVITEs to bob; alice's audio (sendonly) goes on
 * reaching bob during the hold, one stream, and never any music. */
static void
test_no_music_relays_hold (void)
{
  static const HoldCallSpec spec = {
    .alice_scenario = "feat-uac-hold.xml", .reinvites = 2,
    .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
    .bob_scenario = "feat-uas-held.xml", .bob_answer_attr = "a=recvonly",
  };
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_auto (HoldCall) c = { 0 };
  const char *b_hold, *b_resume;

  hold_call_run (d, &c, &spec);
  assert_run_ok (c.a, "alice");
  assert_run_ok (c.b, "bob");

  /* The hold and the resume reached bob; alice got his answers. */
  g_assert_cmpuint (flow_count_msgs (c.b->received, "INVITE "), ==, 3);
  b_hold = flow_require_msg (c.b->received, "INVITE ", 1);
  flow_assert_sdp_has (b_hold, "a=sendonly");
  g_assert_cmpuint (flow_assert_relay_sdp (b_hold, c.alice.rtp_port, FALSE, MEDIA_MIN, MEDIA_MAX),
                    ==, c.b_relay);
  b_resume = flow_require_msg (c.b->received, "INVITE ", 2);
  flow_assert_sdp_has (b_resume, "a=sendrecv");
  flow_assert_sdp_has (reinvite_ok (&c, 1), "a=recvonly");
  g_assert_cmpuint (flow_assert_relay_sdp (reinvite_ok (&c, 1), c.bob.rtp_port, FALSE,
                                           MEDIA_MIN, MEDIA_MAX), ==, c.a_relay);
  flow_assert_sdp_has (reinvite_ok (&c, 2), "a=sendrecv");

  /* bob: alice's audio all along, one unbroken stream, until the BYE. */
  note_stream ("bob", c.at_bob);
  g_assert_cmpuint (c.at_bob->len, >=, 3 * PHASE_MS / 20 - 20);
  for (guint i = 0; i < c.at_bob->len; i++) {
    const FlowRtpPacket *p = pkt (c.at_bob, i);
    if (!flow_rtp_is_fill (p, FILL_ALICE))
      g_printerr ("flow: bob's packet %u is not alice's audio (payload type %u, %02x...)\n", i,
                  p->pt, p->len ? p->payload[0] : 0);
    g_assert_true (flow_rtp_is_fill (p, FILL_ALICE));
    g_assert_cmpuint (p->src_port, ==, c.b_relay);
    g_assert_cmphex (p->ssrc, ==, SSRC_ALICE);
    if (i > 0)
      g_assert_cmpuint (p->seq, ==, (guint16) (pkt (c.at_bob, i - 1)->seq + 1));
  }
  /* alice: bob's audio, but not while he is held. */
  assert_alice_stream (&c);
  g_assert_false (flow_daemon_wait_log (d, "playing ", 0));
  flow_assert_cdr (d, c.a, "alice", "bob", 200, "caller", NULL);
  flow_daemon_stop (d);
}

/* ---- a hold-music file tandem cannot use -------------------------------------------------- */

#define COMMAND_TIMEOUT_MS 20000

/* A configuration for `tandem -c` with `music_lines` after its [media]
 * lines ("[hold]\nmusic = FILE\n", FILE relative to the case directory);
 * returns its path. */
static char *
write_config (const char *music_lines)
{
  g_autofree char *text = g_strdup_printf ("[sip]\nlisten = 127.0.0.1:%u\ndomain = pbx.test\n"
                                           "[store]\npath = tandem.db\n"
                                           MEDIA_CONFIG "%s" PLUGINS_CONFIG
                                           "[user alice]\npassword = alice-secret\n",
                                           flow_pick_port (), music_lines);
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (flow_case_dir (), "tandem.conf", NULL);

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

/* The same with `music` as [hold] music, on this line. */
#define MUSIC_LINE 10
static char *
write_music_config (const char *music)
{
  g_autofree char *lines = g_strdup_printf ("[hold]\nmusic = %s\n", music);
  return write_config (lines);
}

/* A sanitizer build reports leaks and undefined behaviour on stderr; tandem
 * failing to start must not leak either. */
static void
assert_no_sanitizer_report (const char *err)
{
  static const char *const bad[] = {
    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    if (strstr (err, bad[i]))
      g_printerr ("flow: tandem's stderr reports a problem:\n%s\n", err);
    g_assert_null (strstr (err, bad[i]));
  }
}

/* Starting and checking a configuration whose hold music is `music` both
 * fail, naming the file: start-up with a non-zero exit (and at once, not
 * after serving), --check-config with 2. */
static void
assert_music_refused (const char *music)
{
  g_autofree char *conf = write_music_config (music);
  /* The line of [hold] music in write_config's file. */
  g_autofree char *where = g_strdup_printf ("%s:%u: [hold] music: ", conf, MUSIC_LINE);
  const char *run[] = { g_getenv ("TANDEM_BIN"), "-c", conf, NULL };
  const char *check[] = { g_getenv ("TANDEM_BIN"), "--check-config", conf, NULL };
  g_autofree char *run_err = NULL, *check_out = NULL, *check_err = NULL;
  int status;

  g_assert_nonnull (run[0]);
  status = flow_command (run, COMMAND_TIMEOUT_MS, NULL, &run_err);
  flow_note ("tandem -c: exit %d, stderr:\n%s", status, run_err);
  if (status <= 0 || !strstr (run_err, music) || !strstr (run_err, where))
    g_printerr ("flow: tandem -c with [hold] music = %s: exit %d, stderr:\n%s(want a non-zero "
                "exit, the file and \"%s\")\n", music, status, run_err, where);
  g_assert_cmpint (status, >, 0);
  g_assert_nonnull (strstr (run_err, music));
  g_assert_nonnull (strstr (run_err, where));
  assert_no_sanitizer_report (run_err);

  status = flow_command (check, COMMAND_TIMEOUT_MS, &check_out, &check_err);
  flow_note ("tandem --check-config: exit %d, stdout:\n%s\nstderr:\n%s", status, check_out,
             check_err);
  if (status != 2 || !strstr (check_err, music) || !strstr (check_err, where))
    g_printerr ("flow: tandem --check-config with [hold] music = %s: exit %d, stdout: %s, "
                "stderr:\n%s(want exit 2, the file and \"%s\")\n", music, status, check_out,
                check_err, where);
  g_assert_cmpint (status, ==, 2);
  g_assert_nonnull (strstr (check_err, music));
  g_assert_nonnull (strstr (check_err, where));
  assert_no_sanitizer_report (check_err);
}

static void
test_missing_file (void)
{
  assert_music_refused ("no-such-music.wav");
}

/* A file that is there but no audio (hold.c: "a missing or broken file is
 * a start-up error"). */
static void
test_not_audio (void)
{
  g_autofree char *path = g_build_filename (flow_case_dir (), "not-music.wav", NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, "this is not a sound file\n", -1, &error);
  g_assert_no_error (error);
  assert_music_refused ("not-music.wav");
}

/* The music file of the cases above is one tandem takes: --check-config
 * says OK (so the refusals are about the file, not the rest). */
static void
test_check_good_file (void)
{
  g_auto (Music) music = { 0 };
  g_autofree char *conf = NULL, *out = NULL, *err = NULL;
  const char *check[] = { g_getenv ("TANDEM_BIN"), "--check-config", NULL, NULL };
  int status;

  music_write (&music);
  conf = write_music_config ("hold-music.wav");
  check[2] = conf;
  status = flow_command (check, COMMAND_TIMEOUT_MS, &out, &err);
  if (status != 0)
    g_printerr ("flow: --check-config: exit %d, stderr:\n%s\n", status, err);
  g_assert_cmpint (status, ==, 0);
  assert_no_sanitizer_report (err);
}

/* `tandem --check-config` on a file with `music_lines` (write_config),
 * the hold plugin's messages on: its exit status and both streams. */
static int
check_config (const char *music_lines, char **conf, char **output)
{
  const char *check[] = { g_getenv ("TANDEM_BIN"), "--check-config", NULL, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status;

  *conf = write_config (music_lines);
  check[2] = *conf;
  g_setenv ("G_MESSAGES_DEBUG", "tandem-hold", TRUE);
  status = flow_command (check, COMMAND_TIMEOUT_MS, &out, &err);
  g_unsetenv ("G_MESSAGES_DEBUG");
  *output = g_strconcat (out, err, NULL);
  flow_note ("--check-config: exit %d, output:\n%s", status, *output);
  assert_no_sanitizer_report (err);
  return status;
}

/* The old spelling, [media] hold-music (line 9, in [media]), still plays
 * its file (relative to the configuration's folder), with a warning
 * naming file, line and the new spelling. */
static void
test_check_old_spelling (void)
{
  g_auto (Music) music = { 0 };
  g_autofree char *conf = NULL, *output = NULL, *warning = NULL, *loaded = NULL;
  int status;

  music_write (&music);
  status = check_config ("hold-music = hold-music.wav\n", &conf, &output);
  warning = g_strdup_printf ("%s:9: [media] hold-music is deprecated: write it as [hold] music",
                             conf);
  loaded = g_strdup_printf ("music on hold: %s, ", music.path);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (output, warning));
  g_assert_nonnull (strstr (output, loaded));
}

/* A key the hold plugin does not read, in its group: refused, naming it. */
static void
test_check_unknown_key (void)
{
  g_autofree char *conf = NULL, *output = NULL, *want = NULL;
  int status = check_config ("[hold]\nmusik = hold-music.wav\n", &conf, &output);

  want = g_strdup_printf ("%s:%u: [hold] unknown key \"musik\"", conf, MUSIC_LINE);
  g_assert_cmpint (status, ==, 2);
  g_assert_nonnull (strstr (output, want));
}

/* SIGHUP with another [hold] music: the file was decoded at start, so the
 * reload says it takes a restart, keeps the running music (even though
 * the new file does not exist: a reload decodes nothing) and applies the
 * rest; the music still plays. */
static void
test_reload_keeps_music (void)
{
  static const HoldCallSpec spec = {
    .alice_scenario = "feat-uac-hold.xml", .reinvites = 2,
    .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
    .bob_scenario = "feat-uas-music.xml",
  };
  g_auto (Music) music = { 0 };
  g_autoptr (FlowDaemon) d = NULL;
  g_auto (HoldCall) c = { 0 };
  g_autofree char *want_play = NULL;

  music_write (&music);
  d = start_tandem (&music);
  flow_daemon_write_config (d, MEDIA_CONFIG "\n" PLUGINS_CONFIG "[hold]\nmusic = other.wav\n");
  flow_daemon_signal (d, SIGHUP);
  g_assert_true (flow_daemon_wait_log (d, "configuration reloaded", 5000));
  g_assert_true (flow_daemon_wait_log (d, "reload: [hold] music takes effect only on restart", 0));
  hold_call_run (d, &c, &spec);
  assert_run_ok (c.a, "alice");
  assert_run_ok (c.b, "bob");
  assert_bob_stream (&c, "AMA", &music, PCMA);
  want_play = g_strdup_printf ("playing %s to the", music.path);
  g_assert_true (flow_daemon_wait_log (d, want_play, 0));
  flow_daemon_stop (d);
}

/* bob maps PCMU to payload type 96 (a=rtpmap:96 PCMU/8000): the music goes
 * to him in µ-law as payload type 96, the number his SDP gave it, not as 0
 * (issue 8 item 11); alice's audio around it passes as she sent it. */
static void
test_music_dynamic_pt (void)
{
  HoldCallSpec spec = {
    .alice_scenario = "feat-uac-hold.xml", .reinvites = 2,
    .hold_addr = "127.0.0.1", .hold_attr = "a=sendonly",
    .bob_scenario = "feat-uas-music-rtpmap.xml", .bob_formats = "96",
  };
  g_auto (Music) music = { 0 };
  g_autoptr (FlowDaemon) d = NULL;
  g_auto (HoldCall) c = { 0 };
  g_autoptr (GString) runs = g_string_new (NULL);
  g_autofree char *pattern = NULL;
  guint first[MAX_RUNS], count[MAX_RUNS];
  gint frame;

  music_write (&music);
  d = start_tandem (&music);
  hold_call_run (d, &c, &spec);
  assert_run_ok (c.a, "alice");
  assert_run_ok (c.b, "bob");
  note_stream ("bob", c.at_bob);
  pattern = stream_runs (c.at_bob, runs, first, count);
  if (strcmp (pattern, "AMA") != 0)
    g_printerr ("flow: bob heard %s (want alice, music, alice)\n", runs->str);
  g_assert_cmpstr (pattern, ==, "AMA");
  g_assert_cmpuint (count[1], >=, MIN_PHASE_PACKETS);
  frame = music_find_frame (&music, pkt (c.at_bob, first[1]), PCMU);
  g_assert_cmpint (frame, >=, 0);
  for (guint i = first[1]; i < first[1] + count[1]; i++) {
    const FlowRtpPacket *p = pkt (c.at_bob, i);
    if (p->pt != 96)
      g_printerr ("flow: bob's music packet %u has payload type %u (want 96)\n", i, p->pt);
    g_assert_cmpuint (p->pt, ==, 96);
    g_assert_true (music_frame_is (&music, (guint) frame + (i - first[1]), p, PCMU));
  }
  g_assert_cmpuint (pkt (c.at_bob, first[0])->pt, ==, PCMA);
  g_assert_cmpuint (pkt (c.at_bob, first[2])->pt, ==, PCMA);
  flow_daemon_stop (d);
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/hold-music/sendonly", test_music_sendonly);
  flow_add_test ("/hold-music/inactive", test_music_inactive);
  flow_add_test ("/hold-music/zero-address", test_music_zero_address);
  flow_add_test ("/hold-music/codec/pcmu", test_music_pcmu);
  flow_add_test ("/hold-music/codec/pcmu-first", test_music_pcmu_first);
  flow_add_test ("/hold-music/codec/pcma-first", test_music_pcma_first);
  flow_add_test ("/hold-music/codec/dynamic-pt", test_music_dynamic_pt);
  flow_add_test ("/hold-music/twice", test_music_twice);
  flow_add_test ("/hold-music/hangup-while-held", test_music_hangup_while_held);
  flow_add_test ("/hold-music/hold-offer-other-codec", test_music_hold_offer_other_codec);
  flow_add_test ("/hold-music/resume-offer-other-codec", test_music_resume_offer_other_codec);
  flow_add_test ("/hold-music/without-music/relayed", test_no_music_relays_hold);
  flow_add_test ("/hold-music/config/good-file", test_check_good_file);
  flow_add_test ("/hold-music/config/missing-file", test_missing_file);
  flow_add_test ("/hold-music/config/not-audio", test_not_audio);
  flow_add_test ("/hold-music/config/old-spelling", test_check_old_spelling);
  flow_add_test ("/hold-music/config/unknown-key", test_check_unknown_key);
  flow_add_test ("/hold-music/reload/keeps-music", test_reload_keeps_music);
  return g_test_run ();
}
