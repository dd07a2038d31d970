/* td-srtp-suite: the SRTP crypto suites tandem speaks in SDES (RFC 4568
 * a=crypto lines), their names and master key lengths.
 *
 * Every suite Debian's libsrtp2 2.5.0 (built with NSS) can run: the two of
 * RFC 4568, AES-192/256 of RFC 6188 and AES-GCM of RFC 7714 (its SDES names).
 * Pure table lookups and random keys; `media/` internal and shared by the
 * relay (td-srtp.c, which maps a suite to a libsrtp policy) and SDES
 * negotiation (td-sdes.c). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  TD_SRTP_SUITE_NONE = 0,   /* plain RTP */
  TD_SRTP_AES_CM_128_HMAC_SHA1_80,
  TD_SRTP_AES_CM_128_HMAC_SHA1_32,
  TD_SRTP_AES_192_CM_HMAC_SHA1_80,
  TD_SRTP_AES_192_CM_HMAC_SHA1_32,
  TD_SRTP_AES_256_CM_HMAC_SHA1_80,
  TD_SRTP_AES_256_CM_HMAC_SHA1_32,
  TD_SRTP_AEAD_AES_128_GCM,
  TD_SRTP_AEAD_AES_256_GCM,
  TD_SRTP_N_SUITES,
} TdSrtpSuite;

/* Master key + master salt bytes of the longest suite (AES-256-CM: 32 + 14). */
#define TD_SRTP_MAX_KEY 46

/* The SDES name ("AES_CM_128_HMAC_SHA1_80"); NULL for NONE or out of range. */
const char *td_srtp_suite_name (TdSrtpSuite suite);
/* By SDES name, exactly as the RFCs spell it (case-sensitive, RFC 4568 §9.2). */
gboolean td_srtp_suite_from_name (const char *name, TdSrtpSuite *out);
/* Master key + salt bytes: 30 (AES-128-CM), 38 (192), 46 (256), 28 (GCM-128),
 * 44 (GCM-256); 0 for NONE. */
gsize td_srtp_suite_key_len (TdSrtpSuite suite);
/* Fills `out` with td_srtp_suite_key_len(suite) bytes from the kernel's
 * CSPRNG (getrandom). Aborts if the kernel cannot give them: a predictable
 * key is worse than no call. */
void td_srtp_random_key (TdSrtpSuite suite, guint8 *out);

G_END_DECLS
