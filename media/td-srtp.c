/* TdSrtp (td-srtp.h): tandem's SRTP suites as libsrtp2 policies, and one
 * port's receive and send sessions. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-srtp.h"

#include <nss.h>
#include <string.h>
#include <srtp2/srtp.h>

G_STATIC_ASSERT (TD_SRTP_TRAILER == SRTP_MAX_TRAILER_LEN);

struct _TdSrtp {
  TdSrtpSuite suite;
  srtp_t rx;        /* the endpoint's current key */
  srtp_t rx_old;    /* its previous key, until one packet under rx authenticates; or NULL */
  srtp_t tx;        /* tandem's key for this leg */
  guint8 rx_key[TD_SRTP_MAX_KEY];
  guint8 tx_key[TD_SRTP_MAX_KEY];
};

static gsize init_done;
/* tandem's own NSS context (td_srtp_global_init), for the process's life. */
static NSSInitContext *nss_context;

void
td_srtp_global_init (void)
{
  if (g_once_init_enter (&init_done)) {
    srtp_err_status_t err;

    /* Debian's libsrtp2 runs on NSS, which it initialises at each session
     * with NSS_INIT_OPTIMIZESPACE: NSS then keeps its sessions in 32 hash
     * buckets, and every protect and unprotect walks chains that grow with
     * the SRTP sessions in the process (measured: 3 us per protect at 100
     * sessions, 12 at 1,000). NSS initialised first without it keeps
     * 1,024; libsrtp's later contexts share that. Never shut down: the
     * sessions live as long as the relay. */
    nss_context = NSS_InitContext ("", "", "", "", NULL,
                                   NSS_INIT_READONLY | NSS_INIT_NOCERTDB | NSS_INIT_NOMODDB |
                                   NSS_INIT_FORCEOPEN | NSS_INIT_NOROOTINIT);
    if (!nss_context)
      g_warning ("NSS_InitContext failed: libsrtp2 initialises NSS itself (slower)");
    err = srtp_init ();
    if (err != srtp_err_status_ok)
      g_error ("srtp_init failed (%d): libsrtp2 unusable", err);
    g_once_init_leave (&init_done, 1);
  }
}

/* SRTCP of the _32 suites keeps the 80-bit tag (RFC 4568 §6.2; srtp.h:
 * the 32-bit one is not for SRTCP). */
void
td_srtp_policy_set_crypto (srtp_policy_t *p, TdSrtpSuite suite)
{
  switch (suite) {
  case TD_SRTP_AES_CM_128_HMAC_SHA1_80:
    srtp_crypto_policy_set_rtp_default (&p->rtp);
    srtp_crypto_policy_set_rtcp_default (&p->rtcp);
    break;
  case TD_SRTP_AES_CM_128_HMAC_SHA1_32:
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_rtcp_default (&p->rtcp);
    break;
  case TD_SRTP_AES_192_CM_HMAC_SHA1_80:
    srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_192_CM_HMAC_SHA1_32:
    srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_256_CM_HMAC_SHA1_80:
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_256_CM_HMAC_SHA1_32:
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AEAD_AES_128_GCM:
    srtp_crypto_policy_set_aes_gcm_128_16_auth (&p->rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth (&p->rtcp);
    break;
  case TD_SRTP_AEAD_AES_256_GCM:
    srtp_crypto_policy_set_aes_gcm_256_16_auth (&p->rtp);
    srtp_crypto_policy_set_aes_gcm_256_16_auth (&p->rtcp);
    break;
  case TD_SRTP_SUITE_NONE:
  case TD_SRTP_N_SUITES:
    g_assert_not_reached ();
  }
}

/* `key` must stay valid while libsrtp uses the policy (it copies it). */
static void
make_policy (srtp_policy_t *p, TdSrtpSuite suite, guint8 *key, srtp_ssrc_type_t type)
{
  memset (p, 0, sizeof *p);
  td_srtp_policy_set_crypto (p, suite);
  p->ssrc.type = type;
  p->key = key;
  p->window_size = 0;       /* libsrtp's default: 128 */
  p->allow_repeat_tx = 0;   /* the outgoing context never repeats a sequence number */
}

static srtp_t
session_new (TdSrtpSuite suite, guint8 *key, srtp_ssrc_type_t type)
{
  srtp_policy_t p;
  srtp_t session = NULL;
  srtp_err_status_t err;

  make_policy (&p, suite, key, type);
  err = srtp_create (&session, &p);
  if (err != srtp_err_status_ok) {
    g_warning ("relay: srtp_create (%s) failed: %d", td_srtp_suite_name (suite), err);
    return NULL;
  }
  return session;
}

static void
session_free (srtp_t *session)
{
  if (*session)
    srtp_dealloc (*session);
  *session = NULL;
}

/* Constant time, though both keys are ours to know. */
static gboolean
keys_equal (const guint8 *a, const guint8 *b, gsize len)
{
  guint8 diff = 0;

  for (gsize i = 0; i < len; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

TdSrtp *
td_srtp_new (TdSrtpSuite suite, const guint8 *rx_key, const guint8 *tx_key)
{
  TdSrtp *srtp = g_new0 (TdSrtp, 1);
  gsize len = td_srtp_suite_key_len (suite);

  g_return_val_if_fail (len > 0, NULL);
  srtp->suite = suite;
  memcpy (srtp->rx_key, rx_key, len);
  memcpy (srtp->tx_key, tx_key, len);
  srtp->rx = session_new (suite, srtp->rx_key, ssrc_any_inbound);
  srtp->tx = session_new (suite, srtp->tx_key, ssrc_any_outbound);
  return srtp;   /* a NULL session refuses every packet: no plain RTP slips through */
}

gboolean
td_srtp_rekey (TdSrtp *srtp, const guint8 *rx_key, const guint8 *tx_key)
{
  gsize len = td_srtp_suite_key_len (srtp->suite);
  gboolean new_rx = !keys_equal (rx_key, srtp->rx_key, len);
  gboolean new_tx = !keys_equal (tx_key, srtp->tx_key, len);
  guint8 key[TD_SRTP_MAX_KEY];
  srtp_t rx = NULL;

  if (new_rx) {
    memcpy (key, rx_key, len);
    rx = session_new (srtp->suite, key, ssrc_any_inbound);
    explicit_bzero (key, sizeof key);
    if (!rx)
      return FALSE;
  }
  if (new_tx) {
    srtp_policy_t p;
    srtp_err_status_t err;

    memcpy (key, tx_key, len);
    make_policy (&p, srtp->suite, key, ssrc_any_outbound);
    /* In place: the streams keep their ROC and sequence (notes-12.md §2);
     * a session that failed to be created gets another chance. */
    err = srtp->tx ? srtp_update (srtp->tx, &p) : srtp_create (&srtp->tx, &p);
    explicit_bzero (key, sizeof key);
    if (err != srtp_err_status_ok) {
      g_warning ("relay: srtp_update (%s) failed: %d", td_srtp_suite_name (srtp->suite), err);
      session_free (&rx);
      return FALSE;
    }
    memcpy (srtp->tx_key, tx_key, len);
  }
  if (new_rx) {
    /* Packets under the old key may still be on their way (or the endpoint
     * switches a little later than its SDP says). */
    session_free (&srtp->rx_old);
    srtp->rx_old = srtp->rx;
    srtp->rx = rx;
    memcpy (srtp->rx_key, rx_key, len);
  }
  return TRUE;
}

TdSrtpSuite
td_srtp_suite (const TdSrtp *srtp)
{
  return srtp->suite;
}

void
td_srtp_free (TdSrtp *srtp)
{
  if (!srtp)
    return;
  session_free (&srtp->rx);
  session_free (&srtp->rx_old);
  session_free (&srtp->tx);
  explicit_bzero (srtp, sizeof *srtp);
  g_free (srtp);
}

static TdSrtpStatus
status_of (srtp_err_status_t err)
{
  switch (err) {
  case srtp_err_status_ok:
    return TD_SRTP_OK;
  case srtp_err_status_replay_fail:
  case srtp_err_status_replay_old:
    return TD_SRTP_REPLAYED;
  default:
    return TD_SRTP_AUTH_FAILED;   /* auth_fail, bad_param (too short), no_ctx... */
  }
}

static srtp_err_status_t
unprotect_with (srtp_t session, guint8 *pkt, gsize *len, gboolean rtcp)
{
  int n = (int) *len;
  srtp_err_status_t err;

  if (G_UNLIKELY (!session))
    return srtp_err_status_no_ctx;   /* it could not be created: fail closed */
  err = rtcp ? srtp_unprotect_rtcp (session, pkt, &n) : srtp_unprotect (session, pkt, &n);

  if (err == srtp_err_status_ok)
    *len = (gsize) n;
  return err;
}

/* During a re-key: the new key first, the old one if that fails. The
 * packet is kept, as an AEAD decryption that fails may have written to it. */
static TdSrtpStatus
unprotect_rekeying (TdSrtp *srtp, guint8 *pkt, gsize *len, gboolean rtcp)
{
  guint8 copy[2048];
  gsize n = *len;
  srtp_err_status_t err;

  if (n > sizeof copy)
    return status_of (unprotect_with (srtp->rx, pkt, len, rtcp));
  memcpy (copy, pkt, n);
  err = unprotect_with (srtp->rx, pkt, len, rtcp);
  if (err == srtp_err_status_ok) {
    session_free (&srtp->rx_old);   /* the endpoint has switched: the old key is done */
    return TD_SRTP_OK;
  }
  if (err != srtp_err_status_auth_fail)
    return status_of (err);
  memcpy (pkt, copy, n);
  return status_of (unprotect_with (srtp->rx_old, pkt, len, rtcp));
}

TdSrtpStatus
td_srtp_unprotect (TdSrtp *srtp, guint8 *pkt, gsize *len, gboolean rtcp)
{
  if (G_UNLIKELY (srtp->rx_old))
    return unprotect_rekeying (srtp, pkt, len, rtcp);
  return status_of (unprotect_with (srtp->rx, pkt, len, rtcp));
}

gboolean
td_srtp_protect (TdSrtp *srtp, guint8 *pkt, gsize *len, gboolean rtcp)
{
  int n = (int) *len;
  srtp_err_status_t err;

  if (G_UNLIKELY (!srtp->tx))
    return FALSE;   /* it could not be created: fail closed */
  err = rtcp ? srtp_protect_rtcp (srtp->tx, pkt, &n) : srtp_protect (srtp->tx, pkt, &n);
  if (err != srtp_err_status_ok)
    return FALSE;
  *len = (gsize) n;
  return TRUE;
}
