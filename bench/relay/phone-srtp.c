/* phone-srtp: see phone-srtp.h. */
#define G_LOG_DOMAIN "relay-bench"

#include "phone-srtp.h"

#include <string.h>

/* SRTCP of the _32 suites keeps an 80-bit tag (RFC 4568 §6.2); the bench
 * sends no RTCP, but the policy is the phone's whole reading of the suite. */
static void
suite_policy (srtp_policy_t *p, TdSrtpSuite suite)
{
  switch (suite) {
  case TD_SRTP_AES_CM_128_HMAC_SHA1_80:
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_CM_128_HMAC_SHA1_32:
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtcp);
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
  default:
    g_error ("phone-srtp: no SRTP suite %d", suite);
  }
}

srtp_t
phone_srtp_new (TdSrtpSuite suite, const guint8 *key, gboolean outbound)
{
  srtp_policy_t p;
  guint8 k[TD_SRTP_MAX_KEY];
  srtp_t s = NULL;
  srtp_err_status_t err;

  memset (&p, 0, sizeof p);
  suite_policy (&p, suite);
  memcpy (k, key, td_srtp_suite_key_len (suite));   /* policy.key is not const */
  p.key = k;
  p.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
  err = srtp_create (&s, &p);
  explicit_bzero (k, sizeof k);
  if (err != srtp_err_status_ok)
    g_error ("phone-srtp: srtp_create (%s) failed: %d", td_srtp_suite_name (suite), err);
  return s;
}
