/* ringback-audio: the sound side of the ringback flow tests
 * (test-ringback.c): tune files of a known frequency, decoding what a
 * caller received (G.711 here, Opus through GStreamer), and which tone a
 * 20 ms frame carries (a Goertzel filter). */
#pragma once

#include "flow-calls.h"

G_BEGIN_DECLS

#define RB_RATE 8000
#define RB_FRAME 160            /* 20 ms at 8 kHz */

/* Writes a RIFF/WAVE file (8 kHz, mono, 16-bit) of a sine of hz at about a
 * quarter of full scale, `ms` long, at path (its folder made if needed).
 * Choose ms so that the tune holds whole periods (3000 ms does for any
 * whole hz): tandem loops it, and a seam would be a click. */
void rb_write_tune (const char *path, guint hz, guint ms);

/* A G.711 payload (PCMU for pt 0, PCMA for pt 8) of RB_FRAME bytes,
 * decoded to 16-bit samples; FALSE for any other payload type or size. */
gboolean rb_decode_g711 (const FlowRtpPacket *p, guint8 pt, gint16 out[RB_FRAME]);

/* The share of the frame's energy at hz (Goertzel): ~1 for a pure sine of
 * that frequency, ~0 for one far from it. 0 for a silent frame. */
double rb_tone_share (const gint16 *samples, guint n, double hz);
/* Root mean square of the samples. */
double rb_rms (const gint16 *samples, guint n);

/* A tone the analysis looks for, and the letter that stands for it in a
 * stream's description ("TTTTBBBB"). */
typedef struct {
  char letter;
  double hz;
} RbTone;

/* What the frame carries: the letter of the tone holding at least
 * RB_TONE_SHARE of its energy, RB_SILENT if it is quiet, RB_OTHER if
 * it is neither. */
#define RB_TONE_SHARE 0.6
#define RB_SILENT 's'
#define RB_OTHER '?'
char rb_classify (const gint16 *samples, guint n, const RbTone *tones, guint n_tones);

/* Decodes packets [from, from + n) of pkts (FlowRtpPacket: an Opus stream
 * of payload type pt, 48 kHz RTP clock) with GStreamer (rtpopusdepay,
 * opusdec) to 8 kHz mono 16-bit samples. Needs gst_init. */
GArray *rb_decode_opus (GArray *pkts, guint from, guint n, guint8 pt);
/* The same for G.722 (RTP clock 8000, RFC 3551), with avdec_g722. */
GArray *rb_decode_g722 (GArray *pkts, guint from, guint n, guint8 pt);

G_END_DECLS
