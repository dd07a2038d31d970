/* conf-line: the SIPp lines of the conference flow tests
 * (test-conference.c). A line is one dialog of one party with tandem, one
 * SIPp run, one RTP port: alice calling bob and carol has two lines, as
 * her phone does. Each party's voice is a tone of its own (conf_voices),
 * sent by rtp-probe from the line's port to its relay port, in PCMU (every
 * callee answers PCMU alone, every caller offers PCMU first: no codec
 * needs changing anywhere, so no re-INVITE is due). */
#pragma once

#include "conf-audio.h"

G_BEGIN_DECLS

/* A alice 400 Hz, B bob 700, C carol 1100, D dave 1500. */
extern const ConfVoice conf_voices[4];
#define CONF_N_VOICES 4

typedef struct {
  const char *user;
  const char *side;             /* names its files: SIDE.port, SIDE-dialog.txt... */
  FlowParty sip;
  FlowSipp *sipp;
  FlowRun *run;
  guint16 relay;                /* tandem's port for its media (from its SDP) */
} ConfLine;

void conf_line_clear (ConfLine *l);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ConfLine, conf_line_clear)

/* The line's voice letter (its user's). */
char conf_line_letter (const ConfLine *l);
/* user registers and answers the line's call (scenario: xfer-uas-talk.xml,
 * which stays until tandem's BYE, or conf-uas-answer.xml, whose BYE
 * conf_line_hang_up sends), in PCMU; in the background. */
void conf_line_answer (FlowDaemon *d, ConfLine *l, const char *user, const char *scenario,
                       const char *side);
/* user calls the callee's user on line l (xfer-uac-talk.xml: stays until
 * tandem's BYE) and waits until both have their relay ports. */
void conf_line_call (FlowDaemon *d, ConfLine *l, const char *user, const char *side,
                     ConfLine *callee);
/* The callee of a conf-uas-answer.xml line hangs up now: BYE in its
 * dialog, answered 200 (asserted); returns when it left. */
gint64 conf_line_hang_up (FlowDaemon *d, ConfLine *l);
/* The line's SIPp run ends (asserted to have seen its scenario through). */
void conf_line_finish (ConfLine *l);

/* An rtp-probe endpoint: the line's voice from its port to its relay
 * port (dest_file instead, if the relay port is not known yet), `count`
 * packets, starting delay_ms late. */
FlowToneEndpoint conf_line_tone (const ConfLine *l, guint32 ssrc, const char *dest_file,
                                 guint delay_ms, guint count);
/* When the line's last probe packet left (wall clock, µs). */
gint64 conf_line_last_sent (char **report, const ConfLine *l, guint count);

/* Requests of a run starting with `start` ("BYE "), retransmissions
 * skipped (the messages are the run's); how many; the nth of them
 * (asserted). */
GPtrArray *conf_requests (const GPtrArray *msgs, const char *start);
guint conf_count_requests (const GPtrArray *msgs, const char *start);
const char *conf_require_request (const GPtrArray *msgs, const char *start, guint nth);
/* No re-INVITE or UPDATE reached the line: a caller got no INVITE, a
 * callee its one. */
void conf_assert_no_reinvite (const ConfLine *l, gboolean caller);
/* The line got exactly one BYE from tandem (and sent none), no earlier
 * than not_before_us (less a little slack for the SIPp log's clock). */
void conf_assert_byed (const ConfLine *l, gint64 not_before_us);

G_END_DECLS
