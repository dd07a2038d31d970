/* The SRTP suite table (td-srtp-suite.h). */
#include "td-srtp-suite.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static const struct {
  const char *name;
  gsize key_len;
} suites[TD_SRTP_N_SUITES] = {
  [TD_SRTP_AES_CM_128_HMAC_SHA1_80] = { "AES_CM_128_HMAC_SHA1_80", 30 },
  [TD_SRTP_AES_CM_128_HMAC_SHA1_32] = { "AES_CM_128_HMAC_SHA1_32", 30 },
  [TD_SRTP_AES_192_CM_HMAC_SHA1_80] = { "AES_192_CM_HMAC_SHA1_80", 38 },
  [TD_SRTP_AES_192_CM_HMAC_SHA1_32] = { "AES_192_CM_HMAC_SHA1_32", 38 },
  [TD_SRTP_AES_256_CM_HMAC_SHA1_80] = { "AES_256_CM_HMAC_SHA1_80", 46 },
  [TD_SRTP_AES_256_CM_HMAC_SHA1_32] = { "AES_256_CM_HMAC_SHA1_32", 46 },
  [TD_SRTP_AEAD_AES_128_GCM] = { "AEAD_AES_128_GCM", 28 },
  [TD_SRTP_AEAD_AES_256_GCM] = { "AEAD_AES_256_GCM", 44 },
};

const char *
td_srtp_suite_name (TdSrtpSuite suite)
{
  return suite > TD_SRTP_SUITE_NONE && suite < TD_SRTP_N_SUITES ? suites[suite].name : NULL;
}

gboolean
td_srtp_suite_from_name (const char *name, TdSrtpSuite *out)
{
  for (guint s = TD_SRTP_SUITE_NONE + 1; name && s < TD_SRTP_N_SUITES; s++) {
    if (strcmp (name, suites[s].name) == 0) {
      *out = s;
      return TRUE;
    }
  }
  return FALSE;
}

gsize
td_srtp_suite_key_len (TdSrtpSuite suite)
{
  return suite > TD_SRTP_SUITE_NONE && suite < TD_SRTP_N_SUITES ? suites[suite].key_len : 0;
}

void
td_srtp_random_key (TdSrtpSuite suite, guint8 *out)
{
  gsize want = td_srtp_suite_key_len (suite), got = 0;

  while (got < want) {
    ssize_t n = getrandom (out + got, want - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      g_error ("getrandom failed (%s): no SRTP key can be made", g_strerror (errno));
    got += (gsize) n;
  }
}
