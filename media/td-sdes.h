/* td-sdes: SDES (RFC 4568) key negotiation for one leg (one SIP dialog, one
 * endpoint), all its streams.
 *
 * Tandem terminates SRTP on each leg: the relay decrypts what the endpoint
 * sends with the endpoint's key (rx) and encrypts what it sends with
 * tandem's own (tx). A TdSdes keeps both per stream, reads the endpoint's
 * a=crypto lines (td_sdes_take_remote, whether its SDP is an offer or an
 * answer), and says what tandem's SDP to that endpoint carries
 * (td_sdes_fill_rewrite → td_sdp_rewrite). Only RTP streams (proto
 * "RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF") take part; any other
 * m= line is left as it is, with no crypto.
 *
 * Tandem's key for a suite is made once per stream and kept for the leg's
 * life: tandem never re-keys on its own, so the receiver's rollover counter
 * never has to survive a key change we caused.
 *
 * Keys are secrets: none is ever logged or put in a GError; every buffer
 * that held one is wiped when freed. Pure logic; nothing here knows SIP. */
#pragma once

#include "td-sdp.h"
#include "td-srtp-suite.h"

G_BEGIN_DECLS

typedef enum {
  TD_SRTP_OFF,         /* plain RTP; a=crypto ignored, RTP/SAVP refused */
  TD_SRTP_OPTIONAL,    /* SRTP where the endpoint offers or takes it, else RTP */
  TD_SRTP_MANDATORY,   /* RTP/SAVP(F) with a usable a=crypto, or nothing */
} TdSrtpPolicy;

/* "off", "optional", "mandatory" (exactly). */
gboolean td_srtp_policy_from_string (const char *name, TdSrtpPolicy *out);
const char *td_srtp_policy_name (TdSrtpPolicy policy);

#define TD_SDES_ERROR (td_sdes_error_quark ())
GQuark td_sdes_error_quark (void);

typedef enum {
  TD_SDES_ERROR_REFUSED,   /* the endpoint's SDP does not fit the policy (→ 488) */
} TdSdesError;

typedef struct _TdSdes TdSdes;

TdSdes *td_sdes_new (TdSrtpPolicy policy);
/* Wipes every key. */
void td_sdes_free (TdSdes *sdes);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdSdes, td_sdes_free)

TdSrtpPolicy td_sdes_get_policy (const TdSdes *sdes);

/* Can this leg take @remote (its endpoint's SDP) under its policy? Checks
 * every accepted (port != 0) RTP stream: mandatory wants RTP/SAVP(F) and a
 * usable a=crypto, off refuses RTP/SAVP(F), optional wants a usable
 * a=crypto on RTP/SAVP(F). FALSE with TD_SDES_ERROR_REFUSED and a message
 * naming the first stream that fails (counting m= lines from 1) and why,
 * e.g. "stream 1 (audio): SRTP is mandatory here; RTP/AVP without a usable
 * a=crypto"; never any text of the a=crypto lines. Changes nothing. */
gboolean td_sdes_check (const TdSdes *sdes, const TdSdp *remote, GError **error);

/* Takes the endpoint's SDP (offer or answer), stream by stream: a rejected
 * stream (port 0) keeps its state; with policy off, or without a usable
 * a=crypto line, the stream is plain RTP; else it is SRTP with the usable
 * line of the current tag and suite if there is one (the endpoint re-keyed
 * or repeated itself), or else the first usable line. One rule for both
 * cases: an endpoint's offer is answered with its tag, and an endpoint's
 * answer to tandem's offer names one of tandem's tags. Invalidates what the
 * last td_sdes_fill_rewrite() gave. */
void td_sdes_take_remote (TdSdes *sdes, const TdSdp *remote);

/* Stream @i's keys for td_relay_port_set_srtp(): the suite (NONE: plain
 * RTP, or nothing agreed yet; both keys are then set to NULL), the
 * endpoint's key (*rx_key) and tandem's (*tx_key), td_srtp_suite_key_len()
 * bytes each, owned by @sdes and valid until the next take or free. */
TdSrtpSuite td_sdes_stream_keys (const TdSdes *sdes, guint i, const guint8 **rx_key,
                                 const guint8 **tx_key);

/* What tandem's SDP to this endpoint says, built from @from (the other
 * endpoint's SDP, the one td_sdp_rewrite() re-emits): sets rw->protos and
 * rw->crypto (which must be NULL) to arrays of td_sdp_n_media(@from)
 * entries that @sdes owns, valid until the next fill, take or free; the
 * caller sets the rest of @rw. Per RTP stream:
 * - nothing agreed yet: off → @from's proto made plain; optional → RTP/AVP(F),
 *   mandatory → RTP/SAVP(F), each with one offer line per suite tandem
 *   offers (tags 1..6: AES_CM_128_HMAC_SHA1_80, _32, AES_256_CM_HMAC_SHA1_80,
 *   _32, AEAD_AES_128_GCM, AEAD_AES_256_GCM);
 * - plain: the endpoint's proto made plain, no crypto;
 * - SRTP: the endpoint's own proto and one line, its tag and suite with
 *   tandem's key.
 * Rejected streams (port 0 in @from) get the proto but no crypto. Makes
 * tandem's keys as needed (once per suite per stream). */
void td_sdes_fill_rewrite (TdSdes *sdes, const TdSdp *from, TdSdpRewrite *rw);

G_END_DECLS
