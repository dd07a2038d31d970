/* ringback-call: one call of the ringback flow tests (test-ringback.c):
 * alice calls a user whose phone rings (SIPp), rtp-probe -t plays both
 * media ends (the callee's voice a sine), and what alice received is
 * judged: tandem's 183 and its SDP answer, the tune before the switch,
 * the callee's voice after it, as one RTP stream.
 *
 * The wire behaviour these cases fix (written before the feature, from
 * issue 10 and the lead's interface):
 * - when the callee's leg answers 180 without SDP and the callee has a
 *   tune, alice gets 183 Session Progress with tandem's own SDP answer to
 *   her offer: one audio codec, her first of PCMU, PCMA, G722, opus (and
 *   telephone-event if she offered it), on a relay port; no 180 after it;
 *   the callee is offered her whole offer; her 200 carries the very same
 *   SDP (o= line and version too), and no re-INVITE follows when the
 *   callee's answer has that codec;
 * - the tune plays from that port in that codec and payload type, 20 ms
 *   packets (G.711: 160 bytes, timestamp step 160; opus: step 960), until
 *   the callee's first RTP packet or its 200, whichever comes first; then
 *   the callee's audio, under the same SSRC, the sequence going on by one,
 *   the timestamp advanced by the elapsed time, the marker on the first
 *   packet of the callee's. */
#pragma once

#include "ringback-audio.h"

G_BEGIN_DECLS

/* The relay range: below the kernel's ephemeral ports, apart from the
 * other flow tests' (6000-9999, 20000-34199) and the relay unit tests'
 * (10000-19599). */
#define RB_MEDIA_MIN 5000
#define RB_MEDIA_MAX 5999
#define RB_MEDIA_LINES "[media]\naddress = 127.0.0.1\nports = 5000-5999\n"
#define RB_PLUGINS "[plugins]\nenabled = forward;hold;transfer;waiting;ringback\n"

/* The tunes: a sine each, whole periods in RB_TUNE_MS. */
#define RB_BOB_TUNE_HZ 700
#define RB_CAROL_TUNE_HZ 500
#define RB_TUNE_MS 3000
/* The callee rings this long (180 → 200) in most cases. */
#define RB_RING_MS 2000
#define RB_PCMU 0
#define RB_PCMA 8

#define RB_SSRC_ALICE 0xA11CEu
#define RB_SSRC_CALLEE 0xCA11EEu
#define RB_FILL_ALICE 0x55
#define RB_FILL_VOICE 0x99      /* the callee's "voice" where no sine fits (Opus) */
#define RB_VOICE_HZ 1400        /* the callee's voice, a sine */

/* The callee's voice reaches alice within this of its first packet (or of
 * the 200, when that switches). */
#define RB_SWITCH_US (100 * 1000)
/* Cause and effect across processes' logs: SIPp's message times are those
 * of its log line, a little after the socket; room for a loaded machine. */
#define RB_SLACK_US (100 * 1000)

/* An SDP offer or answer of a scenario: m=audio formats and attribute
 * lines (an unused line is a harmless attribute). */
typedef struct {
  const char *formats;
  const char *lines[3];
} RbSdp;

extern const RbSdp rb_offer_g711, rb_offer_pcma, rb_offer_g722, rb_offer_opus;
extern const RbSdp rb_answer_pcmu, rb_answer_pcma, rb_answer_g722, rb_answer_opus,
  rb_answer_many;

/* What a call is made of. */
typedef struct {
  const char *alice_scenario;   /* NULL: ringback-uac.xml */
  const RbSdp *offer;           /* NULL: rb_offer_g711 */
  const char *ringer;           /* the user whose phone rings and answers [bob] */
  const char *ringer_scenario;  /* NULL: ringback-uas.xml */
  const RbSdp *answer;          /* NULL: rb_answer_pcmu */
  guint ring_ms;                /* the ringer's -d: 180 → 200 (ringback-uas-early.xml:
                                   183 → 200) */
  guint voice_delay_ms;         /* its voice starts this long after its INVITE came */
  guint8 voice_pt;              /* the payload type of its voice */
  gboolean voice_fill;          /* its voice is RB_FILL_VOICE bytes, not a sine */
  guint voice_packets;          /* how many [75: 1.5 s] */
  const char *busy;             /* a user rung first who is busy (486) [none]; alice
                                   calls this one then */
  const char *side;             /* names the port files: SIDE-a..., SIDE-b [""] */
  gboolean plain;               /* no 183 expected: alice's probe starts on her 200 */
  guint16 ringer_sip_port;      /* 0: a fresh one; else this (an earlier call's: the same
                                   Contact, so that tandem rings one phone, not two) */
} RbCallSpec;

typedef struct {
  FlowParty alice, ringer, busy;
  FlowRun *a, *r, *bz;
  char **report;
  GArray *at_alice;             /* FlowRtpPacket: what alice received */
  gint64 voice_first_us;        /* when the ringer's first packet left (wall clock) */
  char *a_side, *b_side, *ring_ms;   /* what the parties point to */
  const char *keys[7];
} RbCall;

void rb_call_clear (RbCall *c);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (RbCall, rb_call_clear)

/* Runs the call to its end (alice hangs up a while after the answer).
 * The SIPp runs are collected, not asserted: the checks say first what
 * went wrong. */
void rb_call_run (FlowDaemon *d, RbCall *c, const RbCallSpec *spec);
/* Both SIPp runs saw their scenario through. */
void rb_assert_runs_ok (const RbCall *c);

/* The provisional and final statuses (but 100) alice got for her
 * authenticated INVITE, in order: "183 200". */
char *rb_statuses (const RbCall *c);
/* tandem's 183 to alice: with SDP, o=tandem, c= and m= on a relay port of
 * ours, formats want_formats ("0 101"); no 180 after it; every later 183
 * with SDP and her 200 carry the same body; she got no re-INVITE or
 * UPDATE; the ringer was offered her whole offer. Returns the 183. */
const char *rb_assert_ringback_answer (const RbCall *c, const char *want_formats);
/* When the ringer sent its 200 (its response with that status), or 183. */
gint64 rb_ringer_sent_us (const RbCall *c, int status);

/* One letter per packet alice got: the tone it carries (rb_classify of
 * its G.711 payload), or for fill_voice streams 'V' for the ringer's
 * fill bytes and 'T' for anything else. */
char *rb_letters (GArray *pkts, const RbTone *tones, guint n_tones, gboolean fill_voice);
/* "Tx98 Vx75": the runs of a letter string. */
char *rb_runs (const char *letters);

/* What the stream alice got must show. */
typedef struct {
  guint8 pt;                    /* the tune's payload type */
  guint ts_step;                /* between tune packets: 160, or 960 for opus */
  guint clock_rate;             /* 8000, 48000 */
  gboolean frame_160;           /* tune payloads are 160 bytes (G.711, G.722) */
  guint min_tune;               /* packets of tune at least */
  gint64 switch_us;             /* when the switch was due (the ringer's first packet
                                   or its 200, whichever came first) */
} RbSwitch;

/* alice's stream is letters 'T' (the tune) then 'V' (the voice), one RTP
 * stream from her relay port as the header says above; the tune paced at
 * 50 packets a second and stopped by the switch; the voice from within
 * RB_SWITCH_US of the later of switch and the ringer's first packet.
 * Returns the index of the first voice packet. */
guint rb_assert_switch (const RbCall *c, const char *letters, const RbSwitch *want);

/* Every packet's header and first byte into the case's notes. */
void rb_note_stream (const char *who, GArray *pkts, const char *letters);

/* ---- tandem and the common judgement ---- */

/* A tune of hz as tunes/NAME in the case's directory (the configuration's
 * folder); returns "tunes/NAME", as the configuration names it. */
char *rb_write_tune_file (const char *name, guint hz);
/* The configuration after the harness's [sip]: our relay range plus the
 * [media] lines `media`, the plugins (RB_PLUGINS), and bob's and carol's
 * extra [user] lines (each may be NULL). */
char *rb_config_text (const char *media, const char *bob, const char *carol);
FlowDaemon *rb_start_tandem (const char *media, const char *bob, const char *carol);
/* tandem where bob's tune is a RB_BOB_TUNE_HZ file, with `media` lines. */
FlowDaemon *rb_start_with_bob_tune (const char *media);
/* When the switch was due: the ringer's first packet or its 200,
 * whichever came first; in tune-first mode its 200. */
gint64 rb_switch_due (const RbCall *c, gboolean tune_first);
/* At least 85% of the tune's packets from tandem's 183 (early) to the
 * switch. */
guint rb_min_tune (const RbCall *c, const char *early, gint64 switch_us);
/* A G.711 ringback call: alice's 183 answers with want_formats, the tune
 * of tune_hz in payload type pt plays until the switch, then the voice;
 * all SIPp runs succeeded. Returns the switch's time. */
gint64 rb_assert_g711_ringback (const RbCall *c, const char *want_formats, guint8 pt,
                                double tune_hz, gboolean tune_first);

G_END_DECLS
