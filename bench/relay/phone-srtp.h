/* phone-srtp: the libsrtp2 sessions of relay-bench's SRTP phones (--srtp).
 *
 * Made on libsrtp2 directly, not through media/td-srtp.c: the phones read
 * each SDES suite as libsrtp does (RFC 4568, 6188, 7714), so a relay that
 * got a suite wrong would show up as auth failures, as in
 * tests/unit/test-srtp.c. */
#pragma once

#include <glib.h>
#include <srtp2/srtp.h>

#include "td-srtp-suite.h"

/* A session for `suite` (not NONE) keyed with `key` (td_srtp_suite_key_len
 * bytes; libsrtp derives its own keys from it, the caller may wipe it
 * afterwards). `outbound`: for srtp_protect of any SSRC the phone sends
 * (ssrc_any_outbound); else for srtp_unprotect of any SSRC it receives
 * (ssrc_any_inbound, replay window 128). Aborts if libsrtp refuses: a bench
 * that cannot make its phones has nothing to measure. srtp_init() first. */
srtp_t phone_srtp_new (TdSrtpSuite suite, const guint8 *key, gboolean outbound);
