/* TdSrtp: one relay port's SRTP state (RFC 3711) on libsrtp2: the receive
 * session (the endpoint's key, any SSRC), the send session (tandem's key for
 * the leg, any SSRC) and, during a re-key, the previous receive session.
 *
 * Made, used and freed by the one media thread that owns the port (it
 * migrates with the port): nothing here locks. libsrtp2 on Debian uses NSS,
 * where a context costs ~84 us and ~30 KiB to create (notes-12.md §2): the
 * SIP thread never creates one. Keys are copied in, compared with the ones
 * in use, and wiped when dropped. `media/` internal. */
#pragma once

#include <glib.h>
#include <srtp2/srtp.h>

#include "td-srtp-suite.h"

G_BEGIN_DECLS

/* Room a packet needs after its end for srtp_protect (SRTP_MAX_TRAILER_LEN:
 * a tag and an MKI at most). */
#define TD_SRTP_TRAILER 144

typedef struct _TdSrtp TdSrtp;

typedef enum {
  TD_SRTP_OK,
  TD_SRTP_AUTH_FAILED,   /* bad tag, or not SRTP/SRTCP at all */
  TD_SRTP_REPLAYED,      /* replayed, or too old for the replay window */
} TdSrtpStatus;

/* The rtp and rtcp crypto policies of `suite` (not NONE) in `p`: the one
 * reading of the SDES suite names as libsrtp2 policies (the bench's phones
 * use it too; the tests keep their own, to check this one). */
void td_srtp_policy_set_crypto (srtp_policy_t *p, TdSrtpSuite suite);

/* srtp_init(), once per process; thread-safe. */
void td_srtp_global_init (void);

/* Fresh sessions for `suite` (not NONE) with `rx_key` and `tx_key`
 * (td_srtp_suite_key_len bytes each). Never NULL: a session libsrtp refuses
 * to create (warned) fails closed, every packet through it refused. */
TdSrtp *td_srtp_new (TdSrtpSuite suite, const guint8 *rx_key, const guint8 *tx_key);
/* New keys for the same suite: an unchanged key keeps its session as it is
 * (ROC, replay window); a new tx key updates the send session in place (its
 * ROC kept: the stream goes on); a new rx key gets a fresh receive session,
 * the current one kept as the previous until a packet under the new key
 * authenticates. FALSE if libsrtp refused (warned; the old sessions stay). */
gboolean td_srtp_rekey (TdSrtp *srtp, const guint8 *rx_key, const guint8 *tx_key);
TdSrtpSuite td_srtp_suite (const TdSrtp *srtp);
/* Deallocates the sessions and wipes the keys. NULL is fine. */
void td_srtp_free (TdSrtp *srtp);

/* Authenticates and decrypts `pkt` in place; *len shrinks to the clear
 * packet. `rtcp`: SRTCP. */
TdSrtpStatus td_srtp_unprotect (TdSrtp *srtp, guint8 *pkt, gsize *len, gboolean rtcp);
/* Encrypts `pkt` in place, *len growing by the tag (and SRTCP's index);
 * `pkt` must have TD_SRTP_TRAILER bytes of room after *len. FALSE: libsrtp
 * refused (a replayed or too old index): not to be sent. */
gboolean td_srtp_protect (TdSrtp *srtp, guint8 *pkt, gsize *len, gboolean rtcp);

G_END_DECLS
