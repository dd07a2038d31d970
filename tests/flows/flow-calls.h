/* flow-calls: what the call flow tests (test-call.c, test-features.c) share
 * on top of flow-harness.h: the SIPp parties of a call, their outcome, the
 * SDP tandem writes, the RTP probe and the CDRs in tandem's store.
 *
 * Environment (set by meson): TANDEM_RTP_PROBE, the rtp-probe program. */
#pragma once

#include "flow-harness.h"

G_BEGIN_DECLS

/* RTP probe: packets each endpoint sends, and how many must arrive. */
#define FLOW_PROBE_PACKETS 50
#define FLOW_PROBE_MIN_RECEIVED 45

/* ---- parties ------------------------------------------------------------------ */

/* One SIPp end of a call and what its scenario is told. A NULL string
 * means the default in brackets. */
typedef struct {
  const char *user;         /* alice, bob...: digest user (and -key caller) */
  const char *password;     /* a caller's digest password [USER-secret] */
  const char *scenario;
  const char *side;         /* -key side: names the .port files it writes */
  const char *pause_ms;     /* SIPp -d ["0"] */
  guint16 sip_port;         /* a callee's registered port */
  guint16 rtp_port;         /* the media port it advertises */
  guint16 rtp_port2;        /* feat-uas-waiting.xml: the second call's; a caller's moved media */
  const char *calls;        /* a callee's SIPp -m ["1"]: it may take more calls */
  const char *timeout;      /* SIPp -timeout ["15s"] */
  const char *pt, *codec;   /* a callee's answer: payload type ["8"], codec ["PCMA"] */
  const char *answer_attr;  /* feat-uas-held.xml: its answer to a hold ["a=sendrecv"] */
  const char *hold_addr;    /* feat-uac-hold.xml: the hold offer's c= ["127.0.0.1"] */
  const char *hold_attr;    /* and its a= line ["a=sendonly"] */
  const char *hold_formats, *resume_formats;  /* feat-uac-hold-formats.xml: the formats
                                                 of its hold and resume offers ["0 8 101"] */
  const char *recv_timeout; /* SIPp -recv_timeout (xfer-*-talk.xml: hang up after so
                               much quiet) [none] */
  const char *const *keys;  /* more -key NAME VALUE for the scenario: NAME, VALUE...,
                               NULL; at most FLOW_PARTY_MAX_KEYS pairs [none] */
} FlowParty;

#define FLOW_PARTY_MAX_KEYS 3

/* A party with fresh SIP and RTP ports and no pause. The ports stay bound
 * by the test process until they are used (flow_callee_start, the probe),
 * so that nothing else is given them meanwhile. */
FlowParty flow_party (const char *user, const char *scenario, const char *side);
/* Registers user (password USER-secret) with a Contact at 127.0.0.1:port,
 * where a callee scenario will run; asserts the 200. */
void flow_register (FlowDaemon *d, const char *user, guint16 port);
/* Registers the callee at its sip_port and starts its scenario there, in
 * the background. */
FlowSipp *flow_callee_start (FlowDaemon *d, const FlowParty *p);
/* The party calls `callee` (a user name), in the background; it answers
 * the digest challenge for the Request-URI callee@pbx.test. */
FlowSipp *flow_caller_start (FlowDaemon *d, const FlowParty *p, const char *callee);

/* The relay port a scenario wrote to NAME.port in the case directory (see
 * the scenarios' <exec>); waits for it, bounded. */
guint16 flow_wait_port_file (const char *name);
/* The lines of a text file a scenario wrote to the case directory (e.g.
 * "b-dialog.txt": a dialog's Call-ID and tags, one a line); waits for it,
 * bounded, and asserts it has at least min_lines. */
char **flow_wait_lines_file (const char *file, guint min_lines);

/* ---- how calls end ---------------------------------------------------------------- */

/* The caller's final response to its authenticated INVITE (its second),
 * after asserting that it ACKed it in that transaction (a check of the
 * scenario's [branch-N] arithmetic). */
int flow_caller_final (const FlowRun *caller);
/* tandem ACKed the callee's non-2xx final response: same CSeq number and
 * branch as its INVITE (RFC 3261 §17.1.1.3). */
void flow_assert_error_acked (const FlowRun *callee);
/* The callee received a CANCEL for tandem's INVITE (same branch and CSeq
 * number), answered 487, and tandem ACKed that. */
void flow_assert_cancelled (const FlowRun *callee);

/* ---- SDP ------------------------------------------------------------------------ */

/* The first body line starting with prefix ("c=", "m=audio "), or NULL. */
char *flow_sdp_line (const char *msg, const char *prefix);
/* The body has exactly this line; flow_assert_sdp_has asserts it. */
gboolean flow_sdp_has (const char *msg, const char *line);
void flow_assert_sdp_has (const char *msg, const char *line);
/* The m=audio port (asserted present). */
guint16 flow_sdp_audio_port (const char *msg);
/* The m=audio formats: "0 8 101" from "m=audio 20000 RTP/AVP 0 8 101". */
char *flow_sdp_formats (const char *msg);
/* The version of o=<user> <id> <version> ... */
guint64 flow_sdp_version (const char *msg);
/* RFC 3264 §8: tandem's newer SDP to the same endpoint carries a higher
 * version if anything but the o= line changed, else the same. */
void flow_assert_sdp_versioned (const char *older, const char *newer);
/* An SDP tandem wrote: its own o=, m= on a relay port in [relay_min,
 * relay_max] and not not_port (the port of the endpoint whose SDP it
 * rewrote), c= on the relay unless the endpoint held with 0.0.0.0
 * (hold_address: c= stays 0.0.0.0). Returns the relay port. */
guint16 flow_assert_relay_sdp (const char *msg, guint16 not_port, gboolean hold_address,
                               guint16 relay_min, guint16 relay_max);

/* ---- RTP probe ------------------------------------------------------------------ */

/* One rtp-probe endpoint: binds bind_port, sends FLOW_PROBE_PACKETS with
 * ssrc to dest_port, starting delay_ms late. */
typedef struct {
  guint16 bind_port, dest_port;
  guint32 ssrc;
  guint delay_ms;
} FlowProbeEndpoint;

/* Runs rtp-probe on the endpoints and asserts it succeeded; returns its
 * report, one line each: "sent BIND N", "recv BIND SRC SSRC N". */
char **flow_probe_run (const FlowProbeEndpoint *eps, guint n);
/* Two ends, each sending to its relay port. */
char **flow_probe_pair (guint16 a_port, guint16 a_relay, guint32 a_ssrc, guint16 b_port,
                        guint16 b_relay, guint32 b_ssrc);
/* Packets the endpoint on bind_port received from src_port (0: any) with
 * ssrc (0: any). */
guint flow_probe_received (char **report, guint16 bind_port, guint16 src_port, guint32 ssrc);
/* Packets the endpoint on bind_port sent. */
guint flow_probe_sent (char **report, guint16 bind_port);
/* listener heard at least FLOW_PROBE_MIN_RECEIVED packets of ssrc from
 * relay_port. */
void flow_assert_heard (char **report, guint16 listener, guint16 relay_port, guint32 ssrc);
/* The same, and none of ssrc came from anywhere else. */
void flow_assert_heard_only (char **report, guint16 listener, guint16 relay_port, guint32 ssrc);
/* listener heard no packet of ssrc. */
void flow_assert_not_heard (char **report, guint16 listener, guint32 ssrc);

/* Every packet, recorded (rtp-probe -t): for streams whose SSRC, sequence,
 * marker and payload matter, e.g. across a switch between two sources. */
typedef struct {
  guint16 bind_port, dest_port;
  guint32 ssrc;
  guint8 fill;              /* every payload byte of its packets: whose audio it is */
} FlowTraceEndpoint;

#define FLOW_RTP_MAX_PAYLOAD 512

/* One RTP packet an endpoint received. */
typedef struct {
  guint16 src_port;
  guint32 ssrc;
  guint16 seq;
  gboolean marker;
  guint8 pt;
  guint32 timestamp;
  gint64 time_us;           /* wall clock at arrival (comparable with flow_run_msg_time) */
  guint len;                /* payload bytes (longer payloads are cut here) */
  guint8 payload[FLOW_RTP_MAX_PAYLOAD];
} FlowRtpPacket;

/* Runs rtp-probe -t: each endpoint sends `count` packets (20 ms apart,
 * from the start) and records what it receives. Asserts it succeeded;
 * returns its report (flow_probe_received and the rest read it too). */
char **flow_probe_trace (const FlowTraceEndpoint *eps, guint n, guint count);
/* The same with endpoint i starting to send delays_ms[i] late: streams
 * whose sequence numbers and timestamps differ at any moment. */
char **flow_probe_trace_delayed (const FlowTraceEndpoint *eps, const guint *delays_ms, guint n,
                                 guint count);
/* The packets the endpoint on bind_port received, in arrival order
 * (FlowRtpPacket). */
GArray *flow_probe_packets (char **report, guint16 bind_port);
/* The payload is `len` bytes of `fill`: a probe endpoint's packet. */
gboolean flow_rtp_is_fill (const FlowRtpPacket *p, guint8 fill);

/* A traced endpoint with rtp-probe's optional fields: a sine instead of
 * fill bytes, its own payload type and count, and a start tied to the
 * moment a scenario writes its relay port (test-ringback.c). */
typedef struct {
  guint16 bind_port;
  guint16 dest_port;        /* 0: read from dest_file */
  const char *dest_file;    /* with dest_port 0: a file of the case directory ("b.port") the
                               port is read from once it appears; delay_ms counts from then */
  guint32 ssrc;
  guint delay_ms;
  guint8 fill;              /* every payload byte, when tone_hz is 0 */
  guint8 pt;                /* the payload type it sends: 0 PCMU, 8 PCMA... */
  guint tone_hz;            /* > 0: a sine of this frequency, in µ-law for pt 0, else A-law */
  guint count;              /* packets it sends, 20 ms apart */
} FlowToneEndpoint;

/* Runs rtp-probe -t on those endpoints (like flow_probe_trace); returns
 * its report. */
char **flow_probe_trace_tones (const FlowToneEndpoint *eps, guint n);
/* The same in the background, while the case goes on (changes the calls
 * the probe's media runs through): flow_probe_finish waits for it
 * (bounded by its endpoints' schedule), asserts it succeeded and returns
 * its report. */
typedef struct _FlowProbe FlowProbe;
FlowProbe *flow_probe_start_tones (const FlowToneEndpoint *eps, guint n);
char **flow_probe_finish (FlowProbe *p);
/* When the endpoint on bind_port sent its first packet (wall clock, µs,
 * comparable with flow_run_msg_time); 0 if it sent none. */
gint64 flow_probe_first_sent (char **report, guint16 bind_port);

/* ---- CDRs ------------------------------------------------------------------------ */

/* A row of tandem's cdrs table. */
typedef struct {
  char *caller, *callee, *hangup, *reason;
  int status;
  gboolean answered;
  double started_at, answered_at, ended_at;   /* Unix seconds; answered_at 0 if NULL */
} FlowCdr;

void flow_cdr_clear (FlowCdr *cdr);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (FlowCdr, flow_cdr_clear)

/* Waits (bounded) for the CDR of the caller's call (by the Call-ID of its
 * first INVITE; tandem writes it when the call's last leg is gone) and
 * checks it: who called (from), whom they dialled (not whom the call was
 * forwarded to), the status (answered exactly when 200) and who hung up.
 * Asserts there is one row at most. Fills out, if not NULL, for more
 * checks. */
void flow_assert_cdr (FlowDaemon *d, const FlowRun *caller, const char *from, const char *dialled,
                      int status, const char *hangup, FlowCdr *out);

/* alice calls bob through tandem, both ends SIPp: what each saw. */
typedef struct {
  FlowParty alice, bob;
  FlowRun *a, *b;
} FlowCall;

void flow_call_clear (FlowCall *c);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (FlowCall, flow_call_clear)
/* Starts bob (registered), then alice calling him, and waits for both. */
void flow_call_run (FlowDaemon *d, FlowCall *c);

/* A RIFF/WAVE file of `n` 16-bit mono samples at `rate` Hz (tunes the
 * cases write: hold music, ringback). */
void flow_write_wav (const char *path, const gint16 *samples, gsize n, guint rate);

G_END_DECLS
