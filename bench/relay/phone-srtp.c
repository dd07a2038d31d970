/* phone-srtp: see phone-srtp.h. */
#define G_LOG_DOMAIN "relay-bench"

#include "phone-srtp.h"
#include "td-srtp.h"

#include <string.h>

srtp_t
phone_srtp_new (TdSrtpSuite suite, const guint8 *key, gboolean outbound)
{
  srtp_policy_t p;
  guint8 k[TD_SRTP_MAX_KEY];
  srtp_t s = NULL;
  srtp_err_status_t err;

  memset (&p, 0, sizeof p);
  td_srtp_policy_set_crypto (&p, suite);
  memcpy (k, key, td_srtp_suite_key_len (suite));   /* policy.key is not const */
  p.key = k;
  p.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
  err = srtp_create (&s, &p);
  explicit_bzero (k, sizeof k);
  if (err != srtp_err_status_ok)
    g_error ("phone-srtp: srtp_create (%s) failed: %d", td_srtp_suite_name (suite), err);
  return s;
}
