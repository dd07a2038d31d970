/* Unit tests for td-sdes: the policy check, answers to the phones' offers
 * (captured from baresip 1.0 and linphone 5.1), tandem's own offer and the
 * answer to it, re-keying, strict a=crypto reading, and that no key ever
 * reaches an error message. Each SDP goes through td_sdp_rewrite() and back
 * through td_sdp_parse(), as the B2BUA would send it. */
#include "td-sdes.h"

#include <string.h>

/* ---- fixtures ----------------------------------------------------------- */

/* baresip 1.0.0, account ;mediaenc=srtp-mand (notes-12.md §3). */
static const char baresip_mand[] =
  "v=0\r\n"
  "o=- 54209021 820052056 IN IP4 127.0.0.1\r\n"
  "s=-\r\n"
  "c=IN IP4 127.0.0.1\r\n"
  "t=0 0\r\n"
  "a=tool:baresip 1.0.0\r\n"
  "m=audio 10912 RTP/SAVP 0 101\r\n"
  "a=rtpmap:0 PCMU/8000\r\n"
  "a=rtpmap:101 telephone-event/8000\r\n"
  "a=fmtp:101 0-15\r\n"
  "a=sendrecv\r\n"
  "a=label:1\r\n"
  "a=rtcp-rsize\r\n"
  "a=ssrc:2254178042 cname:sip:alice@127.0.0.1\r\n"
  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:Fx+Ofuh/1QRXKniKR6ty15MzJ+HRWtE0gGNelNIt\r\n"
  "a=minptime:20\r\n"
  "a=ptime:20\r\n";
#define BARESIP_KEY "Fx+Ofuh/1QRXKniKR6ty15MzJ+HRWtE0gGNelNIt"

/* baresip 1.0.0, ;mediaenc=srtp: "best effort", a=crypto on RTP/AVP. */
static const char baresip_best_effort[] =
  "v=0\r\n"
  "o=- 417239870 309112499 IN IP4 127.0.0.1\r\n"
  "s=-\r\n"
  "c=IN IP4 127.0.0.1\r\n"
  "t=0 0\r\n"
  "a=tool:baresip 1.0.0\r\n"
  "m=audio 7002 RTP/AVP 0 101\r\n"
  "a=rtpmap:0 PCMU/8000\r\n"
  "a=rtpmap:101 telephone-event/8000\r\n"
  "a=fmtp:101 0-15\r\n"
  "a=sendrecv\r\n"
  "a=label:1\r\n"
  "a=rtcp-rsize\r\n"
  "a=ssrc:4187004050 cname:sip:alice@127.0.0.1\r\n"
  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:N+5sXFjfBCOFwUp6F4GLbFuFe74VVGDdeHjEroqn\r\n"
  "a=minptime:20\r\n"
  "a=ptime:20\r\n";
#define BEST_EFFORT_KEY "N+5sXFjfBCOFwUp6F4GLbFuFe74VVGDdeHjEroqn"

/* linphone 5.1.65, media_encryption=srtp (the capture behind notes-12.md §3). */
static const char linphone_srtp[] =
  "v=0\r\n"
  "o=linphone 3770 678 IN IP4 192.0.2.2\r\n"
  "s=Talk\r\n"
  "c=IN IP4 192.0.2.2\r\n"
  "t=0 0\r\n"
  "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n"
  "m=audio 17000 RTP/SAVP 96 97 98 0 8 18 99 100 101\r\n"
  "a=rtpmap:96 opus/48000/2\r\n"
  "a=fmtp:96 useinbandfec=1\r\n"
  "a=rtpmap:97 speex/16000\r\n"
  "a=fmtp:97 vbr=on\r\n"
  "a=rtpmap:98 speex/8000\r\n"
  "a=fmtp:98 vbr=on\r\n"
  "a=fmtp:18 annexb=yes\r\n"
  "a=rtpmap:99 telephone-event/48000\r\n"
  "a=rtpmap:100 telephone-event/16000\r\n"
  "a=rtpmap:101 telephone-event/8000\r\n"
  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:jftSRXNtYJZjtb+whgvI9Av/TkFWawHEWAFhkorM\r\n"
  "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:bc3AMv0Wah0yDXYhoKthbZrfJIW+KHgI2vtKDqsK\r\n"
  "a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:qjQjzwJ1BA4r4bS93rU3y9phcX2rzl7930RmPSiPsW/e1RvW4XqgvlnkxeOGtA==\r\n"
  "a=crypto:4 AES_256_CM_HMAC_SHA1_32 inline:v+kA5goUXSMkJtVjSnPGdDNFkP2tiUSmgk3VkePDr4VsWm5dGG79eWemN8sAbg==\r\n"
  "a=rtcp-fb:* trr-int 5000\r\n"
  "a=rtcp-fb:* ccm tmmbr\r\n";
#define LINPHONE_KEY1 "jftSRXNtYJZjtb+whgvI9Av/TkFWawHEWAFhkorM"

/* Keys of the right length for the synthetic SDPs below. */
#define KEY30_A "/XDetfP+6Xf9ia/edIGUFZGv3lMk/hmRYl0526dH"
#define KEY30_B "epTV0PVyLPipkN+MOGB7BdodtI7tEE5CIlXLbpwQ"
#define KEY30_C "X9yuwFEomBdvz8aKLTSA8/qhdopEuO9jgA1N2SmG"
#define KEY46_A "hXO6Ewq1pF2hG1EVd1dTZyHVsDMUAB/TlhNX2ymeh/7FmRssabUsea3rRgDNkQ=="
#define KEY28_A "lHyh7n9ziwsLNz4C/7SYay5tvBzQrd7VTACgHQ=="
#define KEY44_A "iFgaxP6aoOzoBICrwLJt3EBF2uRfwSgQPgq5eXJjvBFXxcrpF0YiWiSUDe8="

/* An SDP whose streams are given as "m=..." lines plus attributes, each
 * string one m= section ("\r\n"-separated lines, no trailing CRLF). */
static TdSdp *
sdp_of (const char *const *sections)
{
  g_autoptr (GString) text = g_string_new ("v=0\r\no=x 1 1 IN IP4 192.0.2.9\r\ns=-\r\n"
                                           "c=IN IP4 192.0.2.9\r\nt=0 0\r\n");
  g_autoptr (GError) error = NULL;
  TdSdp *sdp;

  for (guint i = 0; sections[i] != NULL; i++)
    g_string_append_printf (text, "%s\r\n", sections[i]);
  sdp = td_sdp_parse (text->str, -1, &error);
  g_assert_no_error (error);
  return sdp;
}

/* One audio stream: proto and zero or more a=crypto values. */
static TdSdp *
audio (const char *proto, const char *const *crypto)
{
  g_autoptr (GString) section = g_string_new (NULL);

  g_string_printf (section, "m=audio 4000 %s 0 101\r\na=rtpmap:101 telephone-event/8000", proto);
  for (guint i = 0; crypto != NULL && crypto[i] != NULL; i++)
    g_string_append_printf (section, "\r\na=crypto:%s", crypto[i]);
  return sdp_of ((const char *const[]) { section->str, NULL });
}

static TdSdp *
parse_ok (const char *text)
{
  g_autoptr (GError) error = NULL;
  TdSdp *sdp = td_sdp_parse (text, -1, &error);

  g_assert_no_error (error);
  return sdp;
}

/* What tandem sends this leg's endpoint, built from @from, parsed back. */
static TdSdp *
tandem_sdp (TdSdes *sdes, const TdSdp *from)
{
  guint16 ports[TD_SDP_MAX_MEDIA] = { 30000, 30002, 30004, 30006, 30008, 30010, 30012, 30014 };
  TdSdpRewrite rw = {
    .address = "192.0.2.1", .ports = ports, .n_ports = td_sdp_n_media (from),
    .origin_user = "tandem", .session_id = 1, .session_version = 1,
  };

  td_sdes_fill_rewrite (sdes, from, &rw);
  g_autofree char *text = td_sdp_rewrite (from, &rw);
  return parse_ok (text);
}

/* @b64 decoded (by GLib, for comparison: these are well-formed) equals the
 * @len bytes at @key. */
static void
assert_key (const guint8 *key, gsize len, const char *b64)
{
  gsize n;
  g_autofree guint8 *want = g_base64_decode (b64, &n);

  g_assert_nonnull (key);
  g_assert_cmpmem (key, len, want, n);
}

/* The key of an a=crypto value tandem wrote, "<tag> <suite> inline:<b64>". */
static const char *
line_key (const char *value)
{
  const char *key = strstr (value, " inline:");
  g_assert_nonnull (key);
  return key + strlen (" inline:");
}

/* Stream @i of @sdp has exactly one a=crypto: "<tag> <suite> inline:..."
 * with a key of the suite's length; returns its key. */
static const char *
assert_one_line (const TdSdp *sdp, guint i, guint tag, TdSrtpSuite suite)
{
  const char *const *lines = td_sdp_media_crypto (sdp, i);
  g_autofree char *prefix = g_strdup_printf ("%u %s inline:", tag, td_srtp_suite_name (suite));
  gsize n;

  g_assert_cmpuint (g_strv_length ((char **) lines), ==, 1);
  g_assert_true (g_str_has_prefix (lines[0], prefix));
  g_autofree guint8 *key = g_base64_decode (line_key (lines[0]), &n);
  g_assert_cmpuint (n, ==, td_srtp_suite_key_len (suite));
  return lines[0];
}

/* ---- policies ----------------------------------------------------------- */

static void
test_policy_names (void)
{
  static const char *const names[] = { "off", "optional", "mandatory" };
  TdSrtpPolicy p;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_assert_true (td_srtp_policy_from_string (names[i], &p));
    g_assert_cmpint (p, ==, (TdSrtpPolicy) i);
    g_assert_cmpstr (td_srtp_policy_name (p), ==, names[i]);
  }
  g_assert_false (td_srtp_policy_from_string ("Optional", &p));
  g_assert_false (td_srtp_policy_from_string ("", &p));
  g_assert_false (td_srtp_policy_from_string (NULL, &p));
  g_assert_null (td_srtp_policy_name ((TdSrtpPolicy) 3));

  g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_MANDATORY);
  g_assert_cmpint (td_sdes_get_policy (sdes), ==, TD_SRTP_MANDATORY);
}

/* ---- policy × offer ----------------------------------------------------- */

typedef enum { OFFER_PLAIN, OFFER_SAVP, OFFER_AVP_CRYPTO, OFFER_SAVP_NO_CRYPTO } OfferKind;

static TdSdp *
offer_of (OfferKind kind)
{
  const char *const line[] = { "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A, NULL };

  switch (kind) {
  case OFFER_PLAIN:
    return audio ("RTP/AVP", NULL);
  case OFFER_SAVP:
    return audio ("RTP/SAVP", line);
  case OFFER_AVP_CRYPTO:
    return audio ("RTP/AVP", line);
  default:
    return audio ("RTP/SAVP", NULL);
  }
}

static void
test_check_matrix (void)
{
  static const struct {
    TdSrtpPolicy policy;
    OfferKind offer;
    const char *error;       /* NULL: accepted */
    const char *proto;       /* tandem's answer */
    gboolean srtp;           /* one a=crypto line with tag 1 in the answer, keys set */
  } cases[] = {
    { TD_SRTP_OFF, OFFER_PLAIN, NULL, "RTP/AVP", FALSE },
    { TD_SRTP_OFF, OFFER_SAVP, "stream 1 (audio): SRTP is off here; RTP/SAVP refused", NULL, FALSE },
    { TD_SRTP_OFF, OFFER_AVP_CRYPTO, NULL, "RTP/AVP", FALSE },
    { TD_SRTP_OFF, OFFER_SAVP_NO_CRYPTO, "stream 1 (audio): SRTP is off here; RTP/SAVP refused", NULL, FALSE },
    { TD_SRTP_OPTIONAL, OFFER_PLAIN, NULL, "RTP/AVP", FALSE },
    { TD_SRTP_OPTIONAL, OFFER_SAVP, NULL, "RTP/SAVP", TRUE },
    { TD_SRTP_OPTIONAL, OFFER_AVP_CRYPTO, NULL, "RTP/AVP", TRUE },
    { TD_SRTP_OPTIONAL, OFFER_SAVP_NO_CRYPTO,
      "stream 1 (audio): RTP/SAVP without a usable a=crypto (none given)", NULL, FALSE },
    { TD_SRTP_MANDATORY, OFFER_PLAIN,
      "stream 1 (audio): SRTP is mandatory here; RTP/AVP without a usable a=crypto", NULL, FALSE },
    { TD_SRTP_MANDATORY, OFFER_SAVP, NULL, "RTP/SAVP", TRUE },
    { TD_SRTP_MANDATORY, OFFER_AVP_CRYPTO,
      "stream 1 (audio): SRTP is mandatory here; RTP/AVP instead of RTP/SAVP(F)", NULL, FALSE },
    { TD_SRTP_MANDATORY, OFFER_SAVP_NO_CRYPTO,
      "stream 1 (audio): RTP/SAVP without a usable a=crypto (none given)", NULL, FALSE },
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autoptr (TdSdes) sdes = td_sdes_new (cases[c].policy);
    g_autoptr (TdSdp) offer = offer_of (cases[c].offer);
    g_autoptr (GError) error = NULL;
    const guint8 *rx, *tx;

    g_test_message ("case %u: %s", c, td_srtp_policy_name (cases[c].policy));
    if (cases[c].error != NULL) {
      g_assert_false (td_sdes_check (sdes, offer, &error));
      g_assert_error (error, TD_SDES_ERROR, TD_SDES_ERROR_REFUSED);
      g_assert_cmpstr (error->message, ==, cases[c].error);
      g_assert_null (strstr (error->message, KEY30_A));
      continue;
    }
    g_assert_true (td_sdes_check (sdes, offer, &error));
    g_assert_no_error (error);
    td_sdes_take_remote (sdes, offer);

    /* The other endpoint's offer is plain here; what this leg gets follows
     * this leg's endpoint. */
    g_autoptr (TdSdp) other = audio ("RTP/AVP", NULL);
    g_autoptr (TdSdp) answer = tandem_sdp (sdes, other);
    g_assert_cmpstr (td_sdp_media_proto (answer, 0), ==, cases[c].proto);
    TdSrtpSuite suite = td_sdes_stream_keys (sdes, 0, &rx, &tx);
    if (!cases[c].srtp) {
      g_assert_null (td_sdp_media_crypto (answer, 0)[0]);
      g_assert_cmpint (suite, ==, TD_SRTP_SUITE_NONE);
      g_assert_null (rx);
      g_assert_null (tx);
      continue;
    }
    const char *line = assert_one_line (answer, 0, 1, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
    g_assert_cmpint (suite, ==, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
    assert_key (rx, 30, KEY30_A);
    assert_key (tx, 30, line_key (line));
    g_assert_cmpstr (line_key (line), !=, KEY30_A);
  }
}

/* Two legs and two streams: four different tandem keys. */
static void
test_fresh_keys (void)
{
  const char *const sections[] = {
    "m=audio 4000 RTP/SAVP 0\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A,
    "m=video 4002 RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"
    "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_B,
    NULL,
  };
  g_autoptr (TdSdp) offer = sdp_of (sections);
  g_autoptr (TdSdes) one = td_sdes_new (TD_SRTP_OPTIONAL);
  g_autoptr (TdSdes) two = td_sdes_new (TD_SRTP_OPTIONAL);
  const guint8 *rx, *tx[4];

  td_sdes_take_remote (one, offer);
  td_sdes_take_remote (two, offer);
  for (guint leg = 0; leg < 2; leg++) {
    TdSdes *sdes = leg == 0 ? one : two;
    g_autoptr (TdSdp) answer = tandem_sdp (sdes, offer);

    g_assert_cmpstr (td_sdp_media_proto (answer, 0), ==, "RTP/SAVP");
    g_assert_cmpstr (td_sdp_media_proto (answer, 1), ==, "RTP/SAVPF");
    const char *a = assert_one_line (answer, 0, 7, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
    const char *v = assert_one_line (answer, 1, 3, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
    g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx[leg * 2]), ==,
                     TD_SRTP_AES_CM_128_HMAC_SHA1_80);
    assert_key (rx, 30, KEY30_A);
    assert_key (tx[leg * 2], 30, line_key (a));
    g_assert_cmpint (td_sdes_stream_keys (sdes, 1, &rx, &tx[leg * 2 + 1]), ==,
                     TD_SRTP_AES_CM_128_HMAC_SHA1_80);
    assert_key (rx, 30, KEY30_B);
    assert_key (tx[leg * 2 + 1], 30, line_key (v));
  }
  for (guint a = 0; a < 4; a++)
    for (guint b = a + 1; b < 4; b++)
      g_assert_true (memcmp (tx[a], tx[b], 30) != 0);
  /* Out of range: plain. */
  g_assert_cmpint (td_sdes_stream_keys (one, 2, &rx, &tx[0]), ==, TD_SRTP_SUITE_NONE);
  g_assert_cmpint (td_sdes_stream_keys (one, 99, &rx, &tx[0]), ==, TD_SRTP_SUITE_NONE);
  g_assert_null (tx[0]);
}

/* ---- the phones --------------------------------------------------------- */

static void
test_baresip (void)
{
  g_autoptr (TdSdp) offer = parse_ok (baresip_mand);
  g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_MANDATORY);
  g_autoptr (GError) error = NULL;
  const guint8 *rx, *tx;

  g_assert_true (td_sdes_check (sdes, offer, &error));
  td_sdes_take_remote (sdes, offer);
  g_autoptr (TdSdp) answer = tandem_sdp (sdes, offer);
  g_assert_cmpstr (td_sdp_media_proto (answer, 0), ==, "RTP/SAVP");
  const char *line = assert_one_line (answer, 0, 1, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
  assert_key (rx, 30, BARESIP_KEY);
  assert_key (tx, 30, line_key (line));

  /* Best effort: RTP/AVP with a=crypto is an SRTP offer under optional,
   * and the answer stays RTP/AVP; off takes it as plain RTP. */
  g_autoptr (TdSdp) best = parse_ok (baresip_best_effort);
  g_autoptr (TdSdes) opt = td_sdes_new (TD_SRTP_OPTIONAL);
  g_assert_true (td_sdes_check (opt, best, &error));
  td_sdes_take_remote (opt, best);
  g_autoptr (TdSdp) answer2 = tandem_sdp (opt, best);
  g_assert_cmpstr (td_sdp_media_proto (answer2, 0), ==, "RTP/AVP");
  assert_one_line (answer2, 0, 1, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
  g_assert_cmpint (td_sdes_stream_keys (opt, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
  assert_key (rx, 30, BEST_EFFORT_KEY);

  g_autoptr (TdSdes) off = td_sdes_new (TD_SRTP_OFF);
  g_assert_true (td_sdes_check (off, best, &error));
  td_sdes_take_remote (off, best);
  g_autoptr (TdSdp) answer3 = tandem_sdp (off, best);
  g_assert_cmpstr (td_sdp_media_proto (answer3, 0), ==, "RTP/AVP");
  g_assert_null (td_sdp_media_crypto (answer3, 0)[0]);
  g_assert_cmpint (td_sdes_stream_keys (off, 0, &rx, &tx), ==, TD_SRTP_SUITE_NONE);
}

static void
test_linphone (void)
{
  g_autoptr (TdSdp) offer = parse_ok (linphone_srtp);
  g_autoptr (GError) error = NULL;
  const guint8 *rx, *tx;

  g_assert_cmpuint (g_strv_length ((char **) td_sdp_media_crypto (offer, 0)), ==, 4);
  for (TdSrtpPolicy p = TD_SRTP_OPTIONAL; p <= TD_SRTP_MANDATORY; p++) {
    g_autoptr (TdSdes) sdes = td_sdes_new (p);

    g_assert_true (td_sdes_check (sdes, offer, &error));
    td_sdes_take_remote (sdes, offer);
    g_autoptr (TdSdp) answer = tandem_sdp (sdes, offer);
    g_assert_cmpstr (td_sdp_media_proto (answer, 0), ==, "RTP/SAVP");
    assert_one_line (answer, 0, 1, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
    g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
    assert_key (rx, 30, LINPHONE_KEY1);
  }

  /* Lines 1 and 2 unusable: line 3 (AES-256, 46 bytes, "==") is taken. */
  g_autofree char *text = g_strdup (linphone_srtp);
  char *l1 = strstr (text, "a=crypto:1 AES_CM"), *l2 = strstr (text, "a=crypto:2 AES_CM");
  l1[strlen ("a=crypto:1 AES")] = 'X';
  l2[strlen ("a=crypto:2 AES")] = 'X';
  g_autoptr (TdSdp) offer3 = parse_ok (text);
  g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_OPTIONAL);
  td_sdes_take_remote (sdes, offer3);
  g_autoptr (TdSdp) answer = tandem_sdp (sdes, offer3);
  assert_one_line (answer, 0, 3, TD_SRTP_AES_256_CM_HMAC_SHA1_80);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_256_CM_HMAC_SHA1_80);
  assert_key (rx, 46, "qjQjzwJ1BA4r4bS93rU3y9phcX2rzl7930RmPSiPsW/e1RvW4XqgvlnkxeOGtA==");
}

/* ---- tandem offers ------------------------------------------------------ */

static void
test_offer (void)
{
  static const TdSrtpSuite order[] = {
    TD_SRTP_AES_CM_128_HMAC_SHA1_80, TD_SRTP_AES_CM_128_HMAC_SHA1_32,
    TD_SRTP_AES_256_CM_HMAC_SHA1_80, TD_SRTP_AES_256_CM_HMAC_SHA1_32,
    TD_SRTP_AEAD_AES_128_GCM, TD_SRTP_AEAD_AES_256_GCM,
  };
  static const gsize b64_len[] = { 40, 40, 64, 64, 40, 60 };
  static const struct {
    TdSrtpPolicy policy;
    const char *from, *proto;
  } cases[] = {
    { TD_SRTP_OPTIONAL, "RTP/AVP", "RTP/AVP" },
    { TD_SRTP_OPTIONAL, "RTP/SAVPF", "RTP/AVPF" },
    { TD_SRTP_MANDATORY, "RTP/AVP", "RTP/SAVP" },
    { TD_SRTP_MANDATORY, "RTP/AVPF", "RTP/SAVPF" },
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autoptr (TdSdes) sdes = td_sdes_new (cases[c].policy);
    g_autoptr (TdSdp) from = audio (cases[c].from, NULL);
    g_autoptr (TdSdp) ours = tandem_sdp (sdes, from);
    const char *const *lines = td_sdp_media_crypto (ours, 0);
    const guint8 *rx, *tx;

    g_assert_cmpstr (td_sdp_media_proto (ours, 0), ==, cases[c].proto);
    g_assert_cmpuint (g_strv_length ((char **) lines), ==, G_N_ELEMENTS (order));
    for (guint k = 0; k < G_N_ELEMENTS (order); k++) {
      g_autofree char *prefix = g_strdup_printf ("%u %s inline:", k + 1, td_srtp_suite_name (order[k]));
      g_assert_true (g_str_has_prefix (lines[k], prefix));
      g_assert_cmpuint (strlen (line_key (lines[k])), ==, b64_len[k]);
    }
    g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_SUITE_NONE);

    /* Filled again before any answer: the same keys (once per suite). */
    g_autoptr (TdSdp) again = tandem_sdp (sdes, from);
    g_assert_cmpstrv (td_sdp_media_crypto (again, 0), lines);

    /* The endpoint answers tag 2: SRTP with _32, tandem's tx key the one
     * it offered on line 2. */
    g_autofree char *offered2 = g_strdup (line_key (lines[1]));
    g_autofree char *answer_line = g_strdup ("2 AES_CM_128_HMAC_SHA1_32 inline:" KEY30_C);
    g_autoptr (TdSdp) answer = audio (g_str_has_suffix (cases[c].proto, "F") ? "RTP/SAVPF" : "RTP/SAVP",
                                      (const char *const[]) { answer_line, NULL });
    g_assert_true (td_sdes_check (sdes, answer, NULL));
    td_sdes_take_remote (sdes, answer);
    g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_32);
    assert_key (rx, 30, KEY30_C);
    assert_key (tx, 30, offered2);

    /* A re-offer from tandem now says the agreed line with the same key. */
    g_autoptr (TdSdp) reoffer = tandem_sdp (sdes, from);
    const char *line = assert_one_line (reoffer, 0, 2, TD_SRTP_AES_CM_128_HMAC_SHA1_32);
    g_assert_cmpstr (line_key (line), ==, offered2);
    g_assert_cmpstr (td_sdp_media_proto (reoffer, 0), ==, td_sdp_media_proto (answer, 0));
  }

  /* Off: from's proto made plain, no crypto. */
  g_autoptr (TdSdes) off = td_sdes_new (TD_SRTP_OFF);
  g_autoptr (TdSdp) from = audio ("RTP/SAVPF", NULL);
  g_autoptr (TdSdp) ours = tandem_sdp (off, from);
  g_assert_cmpstr (td_sdp_media_proto (ours, 0), ==, "RTP/AVPF");
  g_assert_null (td_sdp_media_crypto (ours, 0)[0]);
}

/* Tandem offered; the endpoint answers plain RTP/AVP: tandem's next SDP is
 * plain too. */
static void
test_offer_answered_plain (void)
{
  g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_OPTIONAL);
  g_autoptr (TdSdp) from = audio ("RTP/AVPF", NULL);
  g_autoptr (TdSdp) ours = tandem_sdp (sdes, from);
  g_autoptr (TdSdp) plain = audio ("RTP/AVP", NULL);
  const guint8 *rx, *tx;

  g_assert_nonnull (td_sdp_media_crypto (ours, 0)[0]);
  g_assert_true (td_sdes_check (sdes, plain, NULL));
  td_sdes_take_remote (sdes, plain);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_SUITE_NONE);
  g_autoptr (TdSdp) next = tandem_sdp (sdes, from);
  g_assert_cmpstr (td_sdp_media_proto (next, 0), ==, "RTP/AVP");
  g_assert_null (td_sdp_media_crypto (next, 0)[0]);
}

/* ---- re-keying ---------------------------------------------------------- */

static void
test_rekey (void)
{
  g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_MANDATORY);
  const guint8 *rx, *tx;
  guint8 tx80[30], tx32[30];

  g_autoptr (TdSdp) first = audio ("RTP/SAVP", (const char *const[]) {
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A, NULL });
  td_sdes_take_remote (sdes, first);
  td_sdes_stream_keys (sdes, 0, &rx, &tx);
  assert_key (rx, 30, KEY30_A);
  memcpy (tx80, tx, 30);

  /* Same tag and suite, new key: rx follows, tx stays. The current line
   * wins over an earlier usable one. */
  g_autoptr (TdSdp) rekey = audio ("RTP/SAVP", (const char *const[]) {
    "2 AES_256_CM_HMAC_SHA1_80 inline:" KEY46_A,
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_B, NULL });
  td_sdes_take_remote (sdes, rekey);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
  assert_key (rx, 30, KEY30_B);
  g_assert_cmpmem (tx, 30, tx80, 30);
  g_autoptr (TdSdp) answer = tandem_sdp (sdes, rekey);
  assert_one_line (answer, 0, 1, TD_SRTP_AES_CM_128_HMAC_SHA1_80);

  /* Same tag, other suite: a switch (the first usable line), new tx key. */
  g_autoptr (TdSdp) other_suite = audio ("RTP/SAVP", (const char *const[]) {
    "1 AES_CM_128_HMAC_SHA1_32 inline:" KEY30_C, NULL });
  td_sdes_take_remote (sdes, other_suite);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_32);
  assert_key (rx, 30, KEY30_C);
  g_assert_true (memcmp (tx, tx80, 30) != 0);
  memcpy (tx32, tx, 30);

  /* New tag: a switch too; back to _80, tandem's _80 key is the old one. */
  g_autoptr (TdSdp) other_tag = audio ("RTP/SAVP", (const char *const[]) {
    "5 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A, NULL });
  td_sdes_take_remote (sdes, other_tag);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
  assert_key (rx, 30, KEY30_A);
  g_assert_cmpmem (tx, 30, tx80, 30);
  g_autoptr (TdSdp) answer2 = tandem_sdp (sdes, other_tag);
  assert_one_line (answer2, 0, 5, TD_SRTP_AES_CM_128_HMAC_SHA1_80);

  /* A rejected stream (port 0) changes nothing. */
  g_autoptr (TdSdp) rejected = sdp_of ((const char *const[]) { "m=audio 0 RTP/SAVP 0", NULL });
  td_sdes_take_remote (sdes, rejected);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
  assert_key (rx, 30, KEY30_A);
}

/* ---- strictness --------------------------------------------------------- */

static void
test_strict (void)
{
  static const char *const bad[] = {
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "A",                 /* 41 chars */
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "AAAA",              /* 33 bytes */
    "1 AES_CM_128_HMAC_SHA1_80 inline:/XDetfP+6Xf9ia/edIGUFZGv3lMk/hmRYl0526d",  /* 39 */
    "1 AES_CM_128_HMAC_SHA1_80 inline:-XDetfP+6Xf9ia/edIGUFZGv3lMk/hmRYl0526dH", /* url-safe */
    "1 AES_CM_128_HMAC_SHA1_80 inline:/XDetfP+6Xf9ia/edIGU FZGv3lMk/hmRYl0526dH",
    "1 AES_CM_128_HMAC_SHA1_80 inline:/XDetfP+6Xf9ia/edIGU=ZGv3lMk/hmRYl0526dH",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY28_A,                      /* GCM length */
    "1 AES_256_CM_HMAC_SHA1_80 inline:hXO6Ewq1pF2hG1EVd1dTZyHVsDMUAB/TlhNX2ymeh/7FmRssabUsea3rRgDNkQ",
    "1 AES_256_CM_HMAC_SHA1_80 inline:hXO6Ewq1pF2hG1EVd1dTZyHVsDMUAB/TlhNX2ymeh/7FmRssabUsea3rRgDNkQ=",
    "1 AES_256_CM_HMAC_SHA1_80 inline:hXO6Ewq1pF2hG1EVd1dTZyHVsDMUAB/TlhNX2ymeh/7FmRssabUsea3rRgDNkR==",
    "1 AEAD_AES_256_GCM inline:iFgaxP6aoOzoBICrwLJt3EBF2uRfwSgQPgq5eXJjvBFXxcrpF0YiWiSUDe9=",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "|1:4",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "|2^20|1:4",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "|2^20|2^30",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "|forever",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "|2^20|1:4;inline:" KEY30_B "|2^20|2:4",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " UNENCRYPTED_SRTP",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " UNENCRYPTED_SRTCP",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " UNAUTHENTICATED_SRTP",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " FEC_ORDER=FEC_SRTP",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " FEC_KEY=inline:" KEY30_B,
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " KDR=1",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " WSH=128 FOO=1",
    "1 F8_128_HMAC_SHA1_80 inline:" KEY30_A,
    "1 AES_CM_256_HMAC_SHA1_80 inline:" KEY46_A,
    "1 aes_cm_128_hmac_sha1_80 inline:" KEY30_A,
    "0 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A,
    "x AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A,
    "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A,
    "-1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A,
    "1 AES_CM_128_HMAC_SHA1_80",
    "1 AES_CM_128_HMAC_SHA1_80 inline" KEY30_A,
    "1 AES_CM_128_HMAC_SHA1_80 uri:" KEY30_A,
    "1",
    "",
  };
  static const char *const good[] = {
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "|2^31",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A "|1048576",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " WSH=128",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A " KDR=0 WSH=64",
    "1 AES_CM_128_HMAC_SHA1_80 INLINE:" KEY30_A,
    "1\tAES_CM_128_HMAC_SHA1_80  inline:" KEY30_A,
    "1 AES_256_CM_HMAC_SHA1_32 inline:" KEY46_A,
    "1 AEAD_AES_128_GCM inline:" KEY28_A,
    "1 AEAD_AES_256_GCM inline:" KEY44_A,
  };
  const guint8 *rx, *tx;

  for (guint b = 0; b < G_N_ELEMENTS (bad); b++) {
    g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_OPTIONAL);
    g_autoptr (TdSdp) offer = audio ("RTP/SAVP", (const char *const[]) {
      bad[b], "9 AES_CM_128_HMAC_SHA1_32 inline:" KEY30_C, NULL });
    g_autoptr (TdSdp) only = audio ("RTP/SAVP", (const char *const[]) { bad[b], NULL });
    g_autoptr (GError) error = NULL;

    g_test_message ("bad %u: %s", b, bad[b]);
    td_sdes_take_remote (sdes, offer);
    g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_32);
    assert_key (rx, 30, KEY30_C);
    g_autoptr (TdSdp) answer = tandem_sdp (sdes, offer);
    assert_one_line (answer, 0, 9, TD_SRTP_AES_CM_128_HMAC_SHA1_32);

    /* Alone, it leaves RTP/SAVP without a usable line: refused, and the
     * message gives a reason but none of the line. */
    g_assert_false (td_sdes_check (sdes, only, &error));
    g_assert_true (g_str_has_prefix (error->message,
                                     "stream 1 (audio): RTP/SAVP without a usable a=crypto (the first: "));
    g_assert_null (strstr (error->message, KEY30_A));
    g_assert_null (strstr (error->message, "inline:"));
    g_test_message ("  %s", error->message);
  }
  for (guint g = 0; g < G_N_ELEMENTS (good); g++) {
    g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_OPTIONAL);
    g_autoptr (TdSdp) offer = audio ("RTP/SAVP", (const char *const[]) {
      good[g], "9 AES_CM_128_HMAC_SHA1_32 inline:" KEY30_C, NULL });

    g_test_message ("good %u: %s", g, good[g]);
    g_assert_true (td_sdes_check (sdes, offer, NULL));
    td_sdes_take_remote (sdes, offer);
    TdSrtpSuite suite = td_sdes_stream_keys (sdes, 0, &rx, &tx);
    g_assert_cmpint (suite, !=, TD_SRTP_AES_CM_128_HMAC_SHA1_32);
    g_autoptr (TdSdp) answer = tandem_sdp (sdes, offer);
    assert_one_line (answer, 0, 1, suite);
  }

  /* AES-192 is never offered but is taken. */
  g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_MANDATORY);
  g_autofree char *line192 = NULL;
  {
    guint8 key[38];
    td_srtp_random_key (TD_SRTP_AES_192_CM_HMAC_SHA1_80, key);
    g_autofree char *b64 = g_base64_encode (key, sizeof key);
    line192 = g_strdup_printf ("4 AES_192_CM_HMAC_SHA1_80 inline:%s", b64);
  }
  g_autoptr (TdSdp) offer = audio ("RTP/SAVP", (const char *const[]) { line192, NULL });
  g_assert_true (td_sdes_check (sdes, offer, NULL));
  td_sdes_take_remote (sdes, offer);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_192_CM_HMAC_SHA1_80);
  assert_key (rx, 38, line_key (line192));
}

/* ---- streams that are not RTP, and rejected ones ------------------------- */

static void
test_other_streams (void)
{
  const char *const sections[] = {
    "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A,
    "m=application 5000 UDP/BFCP *",
    "m=video 0 RTP/SAVP 96\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_B,
    "m=image 6000 udptl t38",
    NULL,
  };
  g_autoptr (TdSdp) offer = sdp_of (sections);
  g_autoptr (TdSdes) sdes = td_sdes_new (TD_SRTP_MANDATORY);
  g_autoptr (GError) error = NULL;
  const guint8 *rx, *tx;

  /* Only the accepted RTP stream counts. */
  g_assert_true (td_sdes_check (sdes, offer, &error));
  g_assert_no_error (error);
  td_sdes_take_remote (sdes, offer);
  g_assert_cmpint (td_sdes_stream_keys (sdes, 0, &rx, &tx), ==, TD_SRTP_AES_CM_128_HMAC_SHA1_80);
  for (guint i = 1; i < 4; i++)
    g_assert_cmpint (td_sdes_stream_keys (sdes, i, &rx, &tx), ==, TD_SRTP_SUITE_NONE);

  TdSdpRewrite rw = { 0 };
  td_sdes_fill_rewrite (sdes, offer, &rw);
  g_assert_cmpstr (rw.protos[0], ==, "RTP/SAVP");
  g_assert_nonnull (rw.crypto[0]);
  g_assert_null (rw.protos[1]);
  g_assert_null (rw.crypto[1]);
  g_assert_cmpstr (rw.protos[2], ==, "RTP/SAVP");   /* mandatory, nothing agreed: SAVP */
  g_assert_null (rw.crypto[2]);                     /* but rejected: no keys */
  g_assert_null (rw.protos[3]);
  g_assert_null (rw.crypto[3]);

  g_autoptr (TdSdp) answer = tandem_sdp (sdes, offer);
  g_assert_cmpstr (td_sdp_media_proto (answer, 1), ==, "UDP/BFCP");
  g_assert_cmpstr (td_sdp_media_proto (answer, 3), ==, "udptl");
  for (guint i = 1; i < 4; i++)
    g_assert_null (td_sdp_media_crypto (answer, i)[0]);
  assert_one_line (answer, 0, 1, TD_SRTP_AES_CM_128_HMAC_SHA1_80);

  /* The agreed stream, later rejected in what the leg is sent (port 0):
   * its profile stays, no key goes with it. */
  const char *const gone[] = { "m=audio 0 RTP/SAVP 0", NULL };
  g_autoptr (TdSdp) from = sdp_of (gone);
  TdSdpRewrite rw2 = { 0 };
  td_sdes_fill_rewrite (sdes, from, &rw2);
  g_assert_cmpstr (rw2.protos[0], ==, "RTP/SAVP");
  g_assert_null (rw2.crypto[0]);

  /* The second stream refused under mandatory names itself. */
  const char *const two[] = {
    "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_A,
    "m=video 4002 RTP/AVPF 96\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY30_B,
    NULL,
  };
  g_autoptr (TdSdp) offer2 = sdp_of (two);
  g_assert_false (td_sdes_check (sdes, offer2, &error));
  g_assert_cmpstr (error->message, ==,
                   "stream 2 (video): SRTP is mandatory here; RTP/AVPF instead of RTP/SAVP(F)");
  g_assert_null (strstr (error->message, KEY30_B));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/sdes/policy/names", test_policy_names);
  g_test_add_func ("/sdes/check/matrix", test_check_matrix);
  g_test_add_func ("/sdes/answer/fresh-keys", test_fresh_keys);
  g_test_add_func ("/sdes/phones/baresip", test_baresip);
  g_test_add_func ("/sdes/phones/linphone", test_linphone);
  g_test_add_func ("/sdes/offer/lines", test_offer);
  g_test_add_func ("/sdes/offer/answered-plain", test_offer_answered_plain);
  g_test_add_func ("/sdes/rekey", test_rekey);
  g_test_add_func ("/sdes/strict", test_strict);
  g_test_add_func ("/sdes/other-streams", test_other_streams);

  return g_test_run ();
}
