/* conf-audio: what each party of a room really receives (test-conference.c):
 * one RTP stream from its relay port, and in it the others' tones and
 * never its own.
 *
 * Every party sends a sine of its own (rtp-probe, PCMU, 20 ms packets, an
 * amplitude of a quarter of full scale), at a multiple of 50 Hz, so that
 * each 160-sample frame holds whole periods of every tone and a Goertzel
 * filter at one tone sees nothing of the others. A mix of k equal tones
 * puts about 1/k of a frame's energy at each. */
#pragma once

#include "ringback-audio.h"

G_BEGIN_DECLS

/* A tone in a frame: at least this share of the frame's energy (a mix of
 * four tones puts ~0.25 at each), and a tone not in it: below this. */
#define CONF_PRESENT_SHARE 0.12
#define CONF_ABSENT_SHARE 0.05
/* Of a window's frames, this share at least must carry every tone due. */
#define CONF_MIN_MIXED 0.9
/* After a change (a join, a leave), the mix may take this long to show it
 * (jitter buffers, a loaded machine). */
#define CONF_SETTLE_US (400 * 1000)
/* Longest quiet between two packets a party receives while everyone
 * talks: more is a stall. */
#define CONF_MAX_GAP_US (250 * 1000)

/* A party's voice: its letter in a stream's description and its tone. */
typedef struct {
  char letter;
  guint hz;
} ConfVoice;

/* The tones a frame carries: a bit for each voice of voices (bit i for
 * voices[i]) with at least CONF_PRESENT_SHARE of its energy; 0 for a
 * silent frame or one that is no PCMU frame. */
guint conf_frame_voices (const FlowRtpPacket *p, const ConfVoice *voices, guint n);

/* What the stream carried, frame by frame, as runs ("Bx50 BCx120 -x3":
 * bob's tone alone for 50 frames, bob's and carol's for 120, silence for
 * 3), into the case's notes. */
void conf_note_stream (const char *who, GArray *pkts, const ConfVoice *voices, guint n);

/* The stream the party got is one: every packet from relay_port, PCMU
 * (payload type 0, 160 bytes), one SSRC, sequence numbers going on by
 * one, timestamps going forward by less than 2 s; and no quiet of more
 * than CONF_MAX_GAP_US between packets that arrived before until_us. */
void conf_assert_one_stream (const char *who, GArray *pkts, guint16 relay_port, gint64 until_us);

/* In the frames that arrived in [from_us, to_us): at least min_frames;
 * CONF_MIN_MIXED of them carry every voice of `hear` (letters, "BC"), and
 * none carries a voice of `never` ("A"). */
void conf_assert_hears (const char *who, GArray *pkts, gint64 from_us, gint64 to_us,
                        guint min_frames, const ConfVoice *voices, guint n,
                        const char *hear, const char *never);

/* No frame of the whole stream carries the voice `letter` (its own). */
void conf_assert_never_hears (const char *who, GArray *pkts, const ConfVoice *voices, guint n,
                              char letter);

G_END_DECLS
