/* ringback-call: one call of the ringback flow tests and the checks of
 * what its caller received (see ringback-call.h). */
#include "ringback-call.h"

#include <stdlib.h>
#include <string.h>

/* alice talks this long after the answer, then hangs up: past the probe. */
#define TALK_MS "2500"
/* Packets of alice's own audio (she sends from her 183 on), and of the
 * ringer's voice: 1.5 s, enough to judge the stream after the switch. */
#define ALICE_PACKETS 100
#define VOICE_PACKETS 75
/* What the voice after the switch must bring at least (of VOICE_PACKETS). */
#define MIN_VOICE_PACKETS 40

const RbSdp rb_offer_g711 = { "0 8 101", { "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
                                           "a=rtpmap:101 telephone-event/8000" } };
const RbSdp rb_offer_pcma = { "8 101", { "a=rtpmap:8 PCMA/8000",
                                         "a=rtpmap:101 telephone-event/8000", "a=ptime:20" } };
const RbSdp rb_offer_g722 = { "9 101", { "a=rtpmap:9 G722/8000",
                                         "a=rtpmap:101 telephone-event/8000", "a=ptime:20" } };
const RbSdp rb_offer_opus = { "111 101", { "a=rtpmap:111 opus/48000/2",
                                           "a=fmtp:111 useinbandfec=1",
                                           "a=rtpmap:101 telephone-event/48000" } };
const RbSdp rb_answer_pcmu = { "0 101", { "a=rtpmap:0 PCMU/8000",
                                          "a=rtpmap:101 telephone-event/8000" } };
const RbSdp rb_answer_pcma = { "8 101", { "a=rtpmap:8 PCMA/8000",
                                          "a=rtpmap:101 telephone-event/8000" } };
const RbSdp rb_answer_g722 = { "9 101", { "a=rtpmap:9 G722/8000",
                                          "a=rtpmap:101 telephone-event/8000" } };
const RbSdp rb_answer_opus = { "111 101", { "a=rtpmap:111 opus/48000/2",
                                            "a=rtpmap:101 telephone-event/48000" } };
/* Several codecs, PCMU first: still the session alice has. */
const RbSdp rb_answer_many = { "0 8 101", { "a=rtpmap:101 telephone-event/8000",
                                            "a=ptime:20" } };

static const FlowRtpPacket *
pkt (GArray *pkts, guint i)
{
  return &g_array_index (pkts, FlowRtpPacket, i);
}

/* ---- tandem and tunes -------------------------------------------------------------------- */

/* A tune of hz as tunes/NAME in the case's directory (the configuration's
 * folder); returns "tunes/NAME", as the configuration names it. */
char *
rb_write_tune_file (const char *name, guint hz)
{
  g_autofree char *path = g_build_filename (flow_case_dir (), "tunes", name, NULL);

  rb_write_tune (path, hz, RB_TUNE_MS);
  return g_strdup_printf ("tunes/%s", name);
}

/* The configuration text after the harness's [sip]: our relay range plus
 * the [media] lines `media`, the plugins, and bob's and carol's extra
 * [user] lines. */
char *
rb_config_text (const char *media, const char *bob, const char *carol)
{
  return g_strdup_printf (RB_MEDIA_LINES "%s\n" RB_PLUGINS "\n"
                          "[user bob]\npassword = bob-secret\n%s\n\n"
                          "[user carol]\npassword = carol-secret\n%s\n",
                          media ? media : "", bob ? bob : "", carol ? carol : "");
}

FlowDaemon *
rb_start_tandem (const char *media, const char *bob, const char *carol)
{
  g_autofree char *conf = rb_config_text (media, bob, carol);
  return flow_daemon_start (conf);
}

/* tandem where bob's tune is a RB_BOB_TUNE_HZ file, with `media` lines. */
FlowDaemon *
rb_start_with_bob_tune (const char *media)
{
  g_autofree char *tune = rb_write_tune_file ("bob.wav", RB_BOB_TUNE_HZ);
  g_autofree char *bob = g_strdup_printf ("ringback = %s", tune);
  return rb_start_tandem (media, bob, NULL);
}

/* ---- judging a call ---------------------------------------------------------------------- */

/* When the switch was due: the ringer's first packet or its 200,
 * whichever came first; in tune-first mode its 200. */
gint64
rb_switch_due (const RbCall *c, gboolean tune_first)
{
  gint64 ok = rb_ringer_sent_us (c, 200);
  return tune_first ? ok : MIN (ok, c->voice_first_us);
}

/* At least 85% of the tune's packets from tandem's 183 to the switch. */
guint
rb_min_tune (const RbCall *c, const char *early, gint64 switch_us)
{
  gint64 from = flow_run_msg_time (c->a, early);
  g_assert_cmpint (from, >, 0);
  g_assert_cmpint (switch_us, >, from);
  return (guint) ((switch_us - from) / 20000 * 85 / 100);
}

/* A G.711 ringback call: alice's 183 answers with want_formats, the tune
 * of tune_hz in payload type pt plays until the switch, then the voice;
 * both SIPp runs succeeded. Returns the switch's time. */
gint64
rb_assert_g711_ringback (const RbCall *c, const char *want_formats, guint8 pt, double tune_hz,
                         gboolean tune_first)
{
  const RbTone tones[] = { { 'T', tune_hz }, { 'V', RB_VOICE_HZ } };
  const char *early = rb_assert_ringback_answer (c, want_formats);
  g_autofree char *letters = rb_letters (c->at_alice, tones, G_N_ELEMENTS (tones), FALSE);
  RbSwitch want = { .pt = pt, .ts_step = RB_FRAME, .clock_rate = RB_RATE, .frame_160 = TRUE,
                    .switch_us = rb_switch_due (c, tune_first) };

  want.min_tune = rb_min_tune (c, early, want.switch_us);
  rb_assert_switch (c, letters, &want);
  rb_assert_runs_ok (c);
  return want.switch_us;
}

/* ---- the call ---------------------------------------------------------------------------- */

void
rb_call_clear (RbCall *c)
{
  g_clear_pointer (&c->a, flow_run_free);
  g_clear_pointer (&c->r, flow_run_free);
  g_clear_pointer (&c->bz, flow_run_free);
  g_clear_pointer (&c->report, g_strfreev);
  g_clear_pointer (&c->at_alice, g_array_unref);
  g_clear_pointer (&c->a_side, g_free);
  g_clear_pointer (&c->b_side, g_free);
  g_clear_pointer (&c->ring_ms, g_free);
}

/* alice (-key formats, sdp1..3: her offer) calls callee, in the
 * background; she answers the digest challenge for callee@pbx.test. */
static FlowSipp *
caller_start (FlowDaemon *d, const FlowParty *p, const char *callee, const RbSdp *offer)
{
  g_autofree char *rtp = g_strdup_printf ("%u", p->rtp_port);
  g_autofree char *password = g_strdup_printf ("%s-secret", p->user);
  g_autofree char *auth_uri = g_strdup_printf ("%s@pbx.test", callee);

  return flow_sipp_start (d, p->scenario, "-au", p->user, "-ap", password, "-auth_uri", auth_uri,
                          "-timeout", p->timeout, "-key", "caller", p->user, "-key", "callee",
                          callee, "-key", "rtp_port", rtp, "-key", "side", p->side,
                          "-key", "formats", offer->formats, "-key", "sdp1", offer->lines[0],
                          "-key", "sdp2", offer->lines[1], "-key", "sdp3", offer->lines[2],
                          "-d", p->pause_ms, NULL);
}

static guint8
first_format (const RbSdp *sdp)
{
  return (guint8) strtoul (sdp->formats, NULL, 10);
}

void
rb_call_run (FlowDaemon *d, RbCall *c, const RbCallSpec *s)
{
  const RbSdp *offer = s->offer ? s->offer : &rb_offer_g711;
  const RbSdp *answer = s->answer ? s->answer : &rb_answer_pcmu;
  const char *suffix = s->side ? s->side : "";
  g_autofree char *a_file = NULL, *b_file = NULL;

  c->a_side = g_strconcat ("a", suffix, NULL);
  c->b_side = g_strconcat ("b", suffix, NULL);
  c->ring_ms = g_strdup_printf ("%u", s->ring_ms);
  a_file = g_strdup_printf ("%s%s.port", c->a_side, s->plain ? "" : "-early");
  b_file = g_strdup_printf ("%s.port", c->b_side);
  c->keys[0] = "formats";
  c->keys[1] = answer->formats;
  c->keys[2] = "map1";
  c->keys[3] = answer->lines[0];
  c->keys[4] = "map2";
  c->keys[5] = answer->lines[1] ? answer->lines[1] : "a=ptime:20";
  c->keys[6] = NULL;
  FlowSipp *sa, *sr, *sbz = NULL;

  if (s->busy) {
    c->busy = flow_party (s->busy, "feat-uas-busy.xml", "x");
    c->busy.timeout = "30s";
    sbz = flow_callee_start (d, &c->busy);
  }
  c->ringer = flow_party (s->ringer ? s->ringer : "bob",
                          s->ringer_scenario ? s->ringer_scenario : "ringback-uas.xml",
                          c->b_side);
  if (s->ringer_sip_port)
    c->ringer.sip_port = s->ringer_sip_port;
  c->ringer.pause_ms = c->ring_ms;
  c->ringer.timeout = "30s";
  c->ringer.keys = c->keys;
  sr = flow_callee_start (d, &c->ringer);
  c->alice = flow_party ("alice", s->alice_scenario ? s->alice_scenario : "ringback-uac.xml",
                         c->a_side);
  c->alice.pause_ms = TALK_MS;
  c->alice.timeout = "30s";
  sa = caller_start (d, &c->alice, s->busy ? s->busy : c->ringer.user, offer);
  {
    FlowToneEndpoint eps[] = {
      { .bind_port = c->alice.rtp_port, .dest_file = a_file, .ssrc = RB_SSRC_ALICE,
        .fill = RB_FILL_ALICE, .pt = first_format (offer), .count = ALICE_PACKETS },
      { .bind_port = c->ringer.rtp_port, .dest_file = b_file, .ssrc = RB_SSRC_CALLEE,
        .delay_ms = s->voice_delay_ms, .fill = RB_FILL_VOICE, .pt = s->voice_pt,
        .tone_hz = s->voice_fill ? 0 : RB_VOICE_HZ,
        .count = s->voice_packets ? s->voice_packets : VOICE_PACKETS },
    };
    c->report = flow_probe_trace_tones (eps, G_N_ELEMENTS (eps));
  }
  c->a = flow_sipp_wait (sa);
  c->r = flow_sipp_wait (sr);
  if (sbz)
    c->bz = flow_sipp_wait (sbz);
  c->at_alice = flow_probe_packets (c->report, c->alice.rtp_port);
  c->voice_first_us = flow_probe_first_sent (c->report, c->ringer.rtp_port);
}

static void
assert_run_ok (const FlowRun *run, const char *who)
{
  if (run->exit_status != 0)
    g_printerr ("flow: %s's SIPp exited with %d%s\n", who, run->exit_status,
                run->timed_out ? " (killed: timed out)" : "");
  g_assert_cmpint (run->exit_status, ==, 0);
}

void
rb_assert_runs_ok (const RbCall *c)
{
  assert_run_ok (c->a, "alice");
  assert_run_ok (c->r, c->ringer.user);
  if (c->bz)
    assert_run_ok (c->bz, c->busy.user);
}

/* ---- signalling -------------------------------------------------------------------------- */

/* alice's responses to her authenticated INVITE (but 100), in order. */
static GPtrArray *
invite_responses (const RbCall *c)
{
  guint64 cseq = flow_msg_cseq (flow_require_msg (c->a->sent, "INVITE ", 1));
  GPtrArray *out = g_ptr_array_new ();

  for (guint i = 0; i < c->a->received->len; i++) {
    const char *m = g_ptr_array_index (c->a->received, i);
    g_autofree char *method = NULL;
    if (flow_msg_status (m) <= 100 || flow_msg_cseq (m) != cseq)
      continue;
    method = flow_msg_cseq_method (m);
    if (strcmp (method, "INVITE") == 0)
      g_ptr_array_add (out, (gpointer) m);
  }
  return out;
}

char *
rb_statuses (const RbCall *c)
{
  g_autoptr (GPtrArray) responses = invite_responses (c);
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint i = 0; i < responses->len; i++)
    g_string_append_printf (s, "%s%d", i ? " " : "",
                            flow_msg_status (g_ptr_array_index (responses, i)));
  return g_strdup (s->str);
}

const char *
rb_assert_ringback_answer (const RbCall *c, const char *want_formats)
{
  g_autoptr (GPtrArray) responses = invite_responses (c);
  g_autofree char *statuses = rb_statuses (c), *early_body = NULL, *formats = NULL;
  g_autofree char *offered = NULL, *b_offered = NULL;
  const char *early = NULL, *ok;
  guint16 relay;

  flow_note ("alice's statuses: %s", statuses);
  for (guint i = 0; i < responses->len && !early; i++) {
    const char *m = g_ptr_array_index (responses, i);
    g_autofree char *body = flow_msg_body (m);
    if (flow_msg_status (m) == 183 && *body)
      early = m;
  }
  if (!early)
    g_printerr ("flow: alice got no 183 with SDP (statuses %s): no ringback answer\n", statuses);
  g_assert_nonnull (early);
  early_body = flow_msg_body (early);
  relay = flow_assert_relay_sdp (early, c->alice.rtp_port, FALSE, RB_MEDIA_MIN, RB_MEDIA_MAX);
  formats = flow_sdp_formats (early);
  if (strcmp (formats, want_formats) != 0)
    g_printerr ("flow: tandem's 183 answers with formats \"%s\" (want \"%s\"):\n%s\n", formats,
                want_formats, early);
  g_assert_cmpstr (formats, ==, want_formats);
  /* Nothing but 183s (the same SDP) after it, then the 200 with that SDP. */
  for (guint i = 0; i < responses->len; i++) {
    const char *m = g_ptr_array_index (responses, i);
    g_autofree char *body = flow_msg_body (m);
    if (flow_msg_index (c->a->received, m) <= flow_msg_index (c->a->received, early))
      continue;
    if (flow_msg_status (m) == 180)
      g_printerr ("flow: alice got a 180 after tandem's 183 (statuses %s)\n", statuses);
    g_assert_cmpint (flow_msg_status (m), !=, 180);
    if (*body && strcmp (body, early_body) != 0)
      g_printerr ("flow: alice's %d has another SDP than the 183's:\n%s\nthe 183's:\n%s\n",
                  flow_msg_status (m), body, early_body);
    if (*body)
      g_assert_cmpstr (body, ==, early_body);
  }
  ok = flow_require_response (c->a->received, 200, "INVITE", 0);
  {
    g_autofree char *ok_body = flow_msg_body (ok);
    g_assert_cmpstr (ok_body, ==, early_body);
  }
  g_assert_cmpuint (flow_sdp_audio_port (ok), ==, relay);
  /* No renegotiation towards alice. */
  g_assert_cmpuint (flow_count_msgs (c->a->received, "INVITE "), ==, 0);
  g_assert_cmpuint (flow_count_msgs (c->a->received, "UPDATE "), ==, 0);
  /* The ringer was offered all alice offered. */
  offered = flow_sdp_formats (flow_require_msg (c->a->sent, "INVITE ", 1));
  b_offered = flow_sdp_formats (flow_require_msg (c->r->received, "INVITE ", 0));
  g_assert_cmpstr (b_offered, ==, offered);
  return early;
}

gint64
rb_ringer_sent_us (const RbCall *c, int status)
{
  gint64 t = flow_run_msg_time (c->r, flow_require_response (c->r->sent, status, "INVITE", 0));
  g_assert_cmpint (t, >, 0);
  return t;
}

/* ---- the stream -------------------------------------------------------------------------- */

char *
rb_letters (GArray *pkts, const RbTone *tones, guint n_tones, gboolean fill_voice)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i);
    gint16 pcm[RB_FRAME];
    if (fill_voice)
      g_string_append_c (s, flow_rtp_is_fill (p, RB_FILL_VOICE) ? 'V' : 'T');
    else if (rb_decode_g711 (p, p->pt, pcm))
      g_string_append_c (s, rb_classify (pcm, RB_FRAME, tones, n_tones));
    else
      g_string_append_c (s, RB_OTHER);
  }
  return g_string_free (s, FALSE);
}

char *
rb_runs (const char *letters)
{
  GString *s = g_string_new (NULL);
  guint start = 0, len = (guint) strlen (letters);

  for (guint i = 1; i <= len; i++) {
    if (i < len && letters[i] == letters[start])
      continue;
    g_string_append_printf (s, "%s%cx%u", start ? " " : "", letters[start], i - start);
    start = i;
  }
  return g_string_free (s, FALSE);
}

void
rb_note_stream (const char *who, GArray *pkts, const char *letters)
{
  g_autoptr (GString) s = g_string_new (NULL);

  g_string_append_printf (s, "%s received %u RTP packets "
                          "(#: what src ssrc seq M pt ts time len first-byte):", who, pkts->len);
  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i);
    g_string_append_printf (s, "\n  %u: %c %u %#x %u %u %u %u %" G_GINT64_FORMAT ".%06u %u %02x",
                            i, letters ? letters[i] : '-', p->src_port, p->ssrc, p->seq,
                            p->marker, p->pt, p->timestamp, p->time_us / G_USEC_PER_SEC,
                            (guint) (p->time_us % G_USEC_PER_SEC), p->len,
                            p->len ? p->payload[0] : 0);
  }
  flow_note ("%s", s->str);
}

/* One SSRC from one port, the sequence going on by one, the timestamp
 * never going back. */
static void
assert_one_stream (GArray *pkts, guint16 relay)
{
  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i), *prev = i ? pkt (pkts, i - 1) : NULL;
    if (p->src_port != relay || (prev && p->ssrc != prev->ssrc))
      g_printerr ("flow: alice's packet %u came from port %u with SSRC %#x (want %u, one "
                  "SSRC)\n", i, p->src_port, p->ssrc, relay);
    g_assert_cmpuint (p->src_port, ==, relay);
    if (!prev)
      continue;
    g_assert_cmphex (p->ssrc, ==, prev->ssrc);
    if (p->seq != (guint16) (prev->seq + 1))
      g_printerr ("flow: alice's packet %u has sequence %u after %u\n", i, p->seq, prev->seq);
    g_assert_cmpuint (p->seq, ==, (guint16) (prev->seq + 1));
    if ((gint32) (p->timestamp - prev->timestamp) <= 0)
      g_printerr ("flow: alice's packet %u has timestamp %u after %u\n", i, p->timestamp,
                  prev->timestamp);
    g_assert_cmpint ((gint32) (p->timestamp - prev->timestamp), >, 0);
  }
}

/* The tune's packets [0, n): its payload type and size, its timestamp
 * step, 50 a second. */
static void
assert_tune_packets (GArray *pkts, guint n, const RbSwitch *want)
{
  gint64 span_us = pkt (pkts, n - 1)->time_us - pkt (pkts, 0)->time_us;

  for (guint i = 0; i < n; i++) {
    const FlowRtpPacket *p = pkt (pkts, i);
    if (p->pt != want->pt || (want->frame_160 && p->len != RB_FRAME) || p->len == 0)
      g_printerr ("flow: tune packet %u: payload type %u, %u bytes (want %u%s)\n", i, p->pt,
                  p->len, want->pt, want->frame_160 ? ", 160 bytes" : "");
    g_assert_cmpuint (p->pt, ==, want->pt);
    g_assert_cmpuint (p->len, >, 0);
    if (want->frame_160)
      g_assert_cmpuint (p->len, ==, RB_FRAME);
    if (i > 0 && p->timestamp - pkt (pkts, i - 1)->timestamp != want->ts_step)
      g_printerr ("flow: tune packet %u: timestamp step %u (want %u)\n", i,
                  p->timestamp - pkt (pkts, i - 1)->timestamp, want->ts_step);
    if (i > 0)
      g_assert_cmpuint (p->timestamp - pkt (pkts, i - 1)->timestamp, ==, want->ts_step);
  }
  /* Paced: 20 ms a packet, within 10% over the whole run. */
  flow_note ("alice: %u tune packets in %" G_GINT64_FORMAT " ms", n, span_us / 1000);
  g_assert_cmpuint ((guint64) (n - 1) * 20000 * 10, >=, (guint64) span_us * 9);
  g_assert_cmpuint ((guint64) (n - 1) * 20000 * 10, <=, (guint64) span_us * 11);
}

/* At the switch (packet k, the first of the voice): the marker, and a
 * timestamp advanced by about the time that passed (within 3 frames). */
static void
assert_switch_header (GArray *pkts, guint k, guint clock_rate)
{
  const FlowRtpPacket *p = pkt (pkts, k), *prev = pkt (pkts, k - 1);
  gint64 elapsed = (p->time_us - prev->time_us) * clock_rate / G_USEC_PER_SEC;
  gint64 advanced = (gint32) (p->timestamp - prev->timestamp);

  flow_note ("switch at packet %u: timestamp +%" G_GINT64_FORMAT " for %" G_GINT64_FORMAT
             " clock units elapsed", k, advanced, elapsed);
  if (!p->marker)
    g_printerr ("flow: the first packet of the voice (%u) has no marker bit\n", k);
  g_assert_true (p->marker);
  if (ABS (advanced - elapsed) > 3 * (gint64) clock_rate / 50)
    g_printerr ("flow: at the switch the timestamp went on by %" G_GINT64_FORMAT " for %"
                G_GINT64_FORMAT " of time\n", advanced, elapsed);
  g_assert_cmpint (ABS (advanced - elapsed), <=, 3 * (gint64) clock_rate / 50);
}

guint
rb_assert_switch (const RbCall *c, const char *letters, const RbSwitch *want)
{
  GArray *pkts = c->at_alice;
  g_autofree char *runs = rb_runs (letters);
  guint n = pkts->len, k = 0, voice;
  gint64 voice_due;

  rb_note_stream ("alice", pkts, letters);
  flow_note ("alice heard %s; the ringer's first packet left at %" G_GINT64_FORMAT
             ", the switch was due at %" G_GINT64_FORMAT, runs, c->voice_first_us,
             want->switch_us);
  while (k < n && letters[k] == 'T')
    k++;
  for (voice = k; voice < n && letters[voice] == 'V'; voice++)
    ;
  if (k < want->min_tune || voice != n || n - k < MIN_VOICE_PACKETS)
    g_printerr ("flow: alice heard %s (want the tune Tx%u or more, then only the voice V, "
                "%u or more)\n", runs, want->min_tune, MIN_VOICE_PACKETS);
  g_assert_cmpuint (k, >=, want->min_tune);
  g_assert_cmpuint (voice, ==, n);
  g_assert_cmpuint (n - k, >=, MIN_VOICE_PACKETS);
  assert_one_stream (pkts, pkt (pkts, 0)->src_port);
  assert_tune_packets (pkts, k, want);
  assert_switch_header (pkts, k, want->clock_rate);
  /* The tune played up to the switch and stopped by it... */
  flow_note ("last tune packet %" G_GINT64_FORMAT " ms from the switch, first voice packet %"
             G_GINT64_FORMAT " ms", (pkt (pkts, k - 1)->time_us - want->switch_us) / 1000,
             (pkt (pkts, k)->time_us - want->switch_us) / 1000);
  g_assert_cmpint (pkt (pkts, k - 1)->time_us, <=, want->switch_us + RB_SLACK_US);
  g_assert_cmpint (pkt (pkts, k - 1)->time_us, >=, want->switch_us - 2 * RB_SLACK_US);
  /* ...and the voice came as soon as there was any after it. */
  g_assert_cmpint (c->voice_first_us, >, 0);
  voice_due = MAX (want->switch_us, c->voice_first_us);
  g_assert_cmpint (pkt (pkts, k)->time_us, <=, voice_due + RB_SWITCH_US);
  g_assert_cmpint (pkt (pkts, k)->time_us, >=, c->voice_first_us);
  return k;
}
