/* Unit tests for td-digest: the published RFC examples and the helpers. */
#include "td-digest.h"

#include <string.h>

/* RFC 2617 §3.5. */
static void
test_rfc2617_example (void)
{
  g_autofree char *ha1 = td_digest_ha1 (TD_DIGEST_MD5, "Mufasa", "testrealm@host.com",
                                        "Circle Of Life");
  g_assert_cmpstr (ha1, ==, "939e7578ed9e3c518a452acee763bce9");

  g_autofree char *response = td_digest_response (TD_DIGEST_MD5, ha1,
                                                  "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                                                  "00000001", "0a4f113b", "auth",
                                                  "GET", "/dir/index.html");
  g_assert_cmpstr (response, ==, "6629fae49393a05397450978507c4ef1");
}

/* RFC 7616 §3.9.1, both algorithms. */
#define RFC7616_NONCE "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
#define RFC7616_CNONCE "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"

static char *
rfc7616_response (TdDigestAlgorithm alg)
{
  g_autofree char *ha1 = td_digest_ha1 (alg, "Mufasa", "http-auth@example.org",
                                        "Circle of Life");
  return td_digest_response (alg, ha1, RFC7616_NONCE, "00000001", RFC7616_CNONCE,
                             "auth", "GET", "/dir/index.html");
}

static void
test_rfc7616_md5 (void)
{
  g_autofree char *response = rfc7616_response (TD_DIGEST_MD5);
  g_assert_cmpstr (response, ==, "8ca523f5e9506fed4657c9700eebdbec");
}

static void
test_rfc7616_sha256 (void)
{
  g_autofree char *ha1 = td_digest_ha1 (TD_DIGEST_SHA256, "Mufasa", "http-auth@example.org",
                                        "Circle of Life");
  g_assert_cmpuint (strlen (ha1), ==, 64);

  g_autofree char *response = rfc7616_response (TD_DIGEST_SHA256);
  g_assert_cmpstr (response, ==,
                   "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

/* RFC 2069 §2.4 (no qop). The RFC prints e966c932..., a known erratum; this
 * value was computed independently with md5sum(1). */
static void
test_rfc2069_form (void)
{
  g_autofree char *ha1 = td_digest_ha1 (TD_DIGEST_MD5, "Mufasa", "testrealm@host.com",
                                        "CircleOfLife");
  g_autofree char *response = td_digest_response (TD_DIGEST_MD5, ha1,
                                                  "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                                                  NULL, NULL, NULL,
                                                  "GET", "/dir/index.html");
  g_assert_cmpstr (response, ==, "1949323746fe6a43ef61f9606e7febea");

  /* nc and cnonce are ignored without qop. */
  g_autofree char *again = td_digest_response (TD_DIGEST_MD5, ha1,
                                               "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                                               "00000001", "0a4f113b", NULL,
                                               "GET", "/dir/index.html");
  g_assert_cmpstr (again, ==, response);

  /* Same with the RFC 2617 password, checked with md5sum(1). */
  g_autofree char *ha1b = td_digest_ha1 (TD_DIGEST_MD5, "Mufasa", "testrealm@host.com",
                                         "Circle Of Life");
  g_autofree char *responseb = td_digest_response (TD_DIGEST_MD5, ha1b,
                                                   "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                                                   NULL, NULL, NULL,
                                                   "GET", "/dir/index.html");
  g_assert_cmpstr (responseb, ==, "670fd8c2df070c60b045671b8b24ff02");
}

static void
test_algorithm_parse (void)
{
  TdDigestAlgorithm alg;

  alg = TD_DIGEST_SHA256;
  g_assert_true (td_digest_algorithm_parse ("MD5", &alg));
  g_assert_cmpint (alg, ==, TD_DIGEST_MD5);
  alg = TD_DIGEST_SHA256;
  g_assert_true (td_digest_algorithm_parse ("md5", &alg));
  g_assert_cmpint (alg, ==, TD_DIGEST_MD5);
  alg = TD_DIGEST_SHA256;
  g_assert_true (td_digest_algorithm_parse (NULL, &alg));
  g_assert_cmpint (alg, ==, TD_DIGEST_MD5);
  alg = TD_DIGEST_SHA256;
  g_assert_true (td_digest_algorithm_parse ("", &alg));
  g_assert_cmpint (alg, ==, TD_DIGEST_MD5);

  g_assert_true (td_digest_algorithm_parse ("SHA-256", &alg));
  g_assert_cmpint (alg, ==, TD_DIGEST_SHA256);
  alg = TD_DIGEST_MD5;
  g_assert_true (td_digest_algorithm_parse ("sha-256", &alg));
  g_assert_cmpint (alg, ==, TD_DIGEST_SHA256);

  alg = TD_DIGEST_SHA256;
  g_assert_false (td_digest_algorithm_parse ("MD5-sess", &alg));
  g_assert_false (td_digest_algorithm_parse ("SHA-256-sess", &alg));
  g_assert_false (td_digest_algorithm_parse ("SHA-512-256", &alg));
  g_assert_false (td_digest_algorithm_parse ("SHA256", &alg));
  g_assert_false (td_digest_algorithm_parse ("MD5 ", &alg));
  g_assert_cmpint (alg, ==, TD_DIGEST_SHA256);  /* untouched on failure */

  g_assert_cmpstr (td_digest_algorithm_name (TD_DIGEST_MD5), ==, "MD5");
  g_assert_cmpstr (td_digest_algorithm_name (TD_DIGEST_SHA256), ==, "SHA-256");
}

static void
test_equal (void)
{
  g_assert_true (td_digest_equal ("6629fae49393a05397450978507c4ef1",
                                  "6629fae49393a05397450978507c4ef1"));
  g_assert_true (td_digest_equal ("6629FAE49393A05397450978507C4EF1",
                                  "6629fae49393a05397450978507c4ef1"));
  g_assert_true (td_digest_equal ("", ""));
  g_assert_false (td_digest_equal ("6629fae49393a05397450978507c4ef1",
                                   "6629fae49393a05397450978507c4ef0"));
  g_assert_false (td_digest_equal ("0629fae49393a05397450978507c4ef1",
                                   "6629fae49393a05397450978507c4ef1"));
  g_assert_false (td_digest_equal ("6629fae4", "6629fae49393"));
  g_assert_false (td_digest_equal ("6629fae49393", "6629fae4"));
  g_assert_false (td_digest_equal (NULL, "abc"));
  g_assert_false (td_digest_equal ("abc", NULL));
  g_assert_false (td_digest_equal (NULL, NULL));
  /* Case folding is ASCII letters only: '@' (0x40) is not '`' (0x60), and a
   * control character is not a digit. */
  g_assert_false (td_digest_equal ("@", "`"));
  g_assert_false (td_digest_equal ("0", "\x10"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/digest/rfc2617-example", test_rfc2617_example);
  g_test_add_func ("/digest/rfc7616-md5", test_rfc7616_md5);
  g_test_add_func ("/digest/rfc7616-sha256", test_rfc7616_sha256);
  g_test_add_func ("/digest/rfc2069-form", test_rfc2069_form);
  g_test_add_func ("/digest/algorithm-parse", test_algorithm_parse);
  g_test_add_func ("/digest/equal", test_equal);

  return g_test_run ();
}
