/* srtp-flow: what the SRTP flow tests (test-srtp.c, srtp-tunes.c) share on
 * top of flow-calls.h: test keys and the a=crypto lines of messages, the
 * media ports and runs of srtp-probe (TANDEM_SRTP_PROBE), and the checks of
 * what arrived. */
#pragma once

#include "flow-calls.h"

G_BEGIN_DECLS

#define MEDIA_MIN 36000
#define MEDIA_MAX 36999
#define MEDIA_CONFIG "[media]\naddress = 127.0.0.1\nports = 36000-36999\n"

#define SSRC_ALICE 0xA11CEu
#define SSRC_BOB 0xB0Bu
#define FILL_ALICE 0x55
#define FILL_BOB 0xAA
#define PACKETS 50          /* per probe run and end: 1 s of 20 ms packets */
#define MIN_PACKETS 45      /* what must arrive of them (loopback, a loaded machine) */
#define SUITE_80 "AES_CM_128_HMAC_SHA1_80"
#define PROBE_TIMEOUT_MS 15000

/* ---- keys ---- */

/* A master key‖salt of `len` bytes, base64 as in a=crypto. */
char *random_key (gsize len);
/* The a=crypto lines of a message's body, each without "a=crypto:". */
char **crypto_lines (const char *msg);
/* The key of an a=crypto line ("TAG SUITE inline:KEY"). */
char *line_key (const char *line);

/* NAME.crypto of a caller scenario: "TAG SUITE KEY" of tandem's answer. */
typedef struct {
  char *tag, *suite, *key;
} Answered;

void answered_clear (Answered *a);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Answered, answered_clear)
/* Waits (bounded) for the file and reads it. */
void read_answered (const char *file, Answered *out);
/* None of keys (NULL-terminated) is in tandem's log or store. */
void assert_keys_not_kept (const char *const *keys);

/* ---- the probe ---- */

/* A party whose media port pair is held by this process until the probe
 * runs (not flow-calls' reserved ports). */
FlowParty party (const char *user, const char *scenario, const char *side);

/* One srtp-probe endpoint (see srtp-probe.c). suite NULL: plain RTP. */
typedef struct {
  guint16 bind_port, dest_port;
  guint32 ssrc;
  guint8 fill;
  const char *suite, *tx_key, *rx_key;
  guint seq;                /* its first sequence number (0: 1); a later run on the same
                               SSRC goes on from the last, as a phone does: tandem relays
                               a plain stream's sequence as it is, and its SRTP sender
                               would refuse a number it has protected before */
  const char *mode;         /* "ok" (NULL), "replay", "forge" */
  guint delay_ms;           /* it starts sending so late */
} Ep;

Ep plain_ep (guint16 bind_port, guint16 dest_port, guint32 ssrc, guint8 fill);
Ep srtp_ep (guint16 bind_port, guint16 dest_port, guint32 ssrc, guint8 fill, const char *suite,
            const char *tx_key, const char *rx_key, guint seq, const char *mode);
/* Runs srtp-probe: each endpoint sends `count` packets, 20 ms apart (and
 * with `rtcp`, a sender report on its RTCP port after every tenth), and
 * records what it receives; asserts it ran, returns the report. */
char **probe_run (const Ep *eps, guint n, guint count, gboolean rtcp);
/* probe_run with PACKETS and no RTCP. */
char **probe (const Ep *eps, guint n);

/* ---- what arrived ---- */

/* Sender reports the endpoint on bind_port got intact from src_port with
 * ssrc; what reached its RTCP port that was not one (or failed SRTCP). */
guint rtcp_received (char **report, guint16 bind_port, guint16 src_port, guint32 ssrc);
guint rtcp_failures (char **report, guint16 bind_port);
/* What the endpoint on bind_port could not unprotect. */
guint srtp_failures (char **report, guint16 bind_port);
/* How many packets of the endpoint on bind_port carry `fill` all through. */
guint count_fill (char **report, guint16 bind_port, guint8 fill);
/* listener got the talker's audio intact: at least MIN_PACKETS packets (at
 * most `sent`), every one from relay_port under ssrc, all fill, nothing
 * that failed to unprotect. */
void assert_intact (char **report, guint16 listener, guint16 relay_port, guint32 ssrc,
                    guint8 fill, guint sent);

/* ---- calls ---- */

/* tandem on the SRTP tests' media range, with extra configuration ([media]
 * keys first: the text goes on in that group). */
FlowDaemon *start_tandem (const char *extra);
/* The m=audio line's proto; assert_proto asserts it. */
char *audio_proto (const char *msg);
void assert_proto (const char *msg, const char *want);
/* tandem's offer lines (tags 1..6, its suites in order, strict keys of the
 * suites' lengths, all different); returns the keys. */
char **assert_tandem_offer (const char *msg);

/* srtp-tunes.c: hold music and ringback on SRTP legs. */
void srtp_tunes_add_tests (void);

G_END_DECLS
