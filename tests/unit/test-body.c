/* td-body: finding the SDP in a SIP message body, plain or multipart
 * (RFC 5621), and refusing bodies tandem cannot use. */
#include <string.h>

#include "td-body.h"

#define SDP "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" \
            "m=audio 4000 RTP/AVP 0\r\n"
#define ISUP "\x01\x00\x49\x00\x00\x03\x02\x00\x07\x04\x10\x00\x33\x63\x21\x43\x00\x00"

/* Runs td_body_find_sdp on a NUL-terminated body; returns the kind and, for
 * SDP, the part found (owned by the caller). */
static TdBodyKind
find (const char *ctype, const char *disposition, const char *body, gsize len, char **sdp,
      GError **error)
{
  const char *found = NULL;
  gsize found_len = 0;
  TdBodyKind kind = td_body_find_sdp (ctype, disposition, body, len, &found, &found_len, error);

  *sdp = kind == TD_BODY_SDP ? g_strndup (found, found_len) : NULL;
  if (kind == TD_BODY_SDP) {
    g_assert_true (found >= body);
    g_assert_true (found + found_len <= body + len);
  }
  return kind;
}

static void
assert_sdp (const char *ctype, const char *body, gsize len, const char *want)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *sdp = NULL;

  g_assert_cmpint (find (ctype, NULL, body, len, &sdp, &error), ==, TD_BODY_SDP);
  g_assert_no_error (error);
  g_assert_cmpstr (sdp, ==, want);
}

static void
assert_unusable (const char *ctype, const char *disposition, const char *body, gsize len,
                 const char *why_part)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *sdp = NULL;

  g_assert_cmpint (find (ctype, disposition, body, len, &sdp, &error), ==, TD_BODY_UNUSABLE);
  g_assert_nonnull (error);
  if (!strstr (error->message, why_part))
    g_printerr ("error: %s (want \"%s\")\n", error->message, why_part);
  g_assert_nonnull (strstr (error->message, why_part));
}

static void
test_plain (void)
{
  g_autoptr (GError) error = NULL;
  const char *sdp = NULL;
  gsize len = 0;

  assert_sdp ("application/sdp", SDP, strlen (SDP), SDP);
  assert_sdp ("Application/SDP ; charset=utf-8", SDP, strlen (SDP), SDP);
  /* No Content-Type (RFC 3261 requires one): taken for SDP, as before. */
  assert_sdp (NULL, SDP, strlen (SDP), SDP);
  /* A body-less message has no SDP, which is not an error. */
  g_assert_cmpint (td_body_find_sdp ("application/sdp", NULL, "", 0, &sdp, &len, &error), ==,
                   TD_BODY_NONE);
  g_assert_cmpint (td_body_find_sdp (NULL, NULL, NULL, 0, &sdp, &len, &error), ==, TD_BODY_NONE);
  g_assert_no_error (error);
  /* An explicit session disposition is the default one. */
  {
    g_autofree char *found = NULL;
    g_assert_cmpint (find ("application/sdp", "session;handling=required", SDP, strlen (SDP),
                           &found, &error), ==, TD_BODY_SDP);
    g_assert_cmpstr (found, ==, SDP);
  }
}

/* SDP beside ISUP (RFC 3204), binary bytes and all, the way a gateway sends it. */
static void
test_mixed_with_isup (void)
{
  const char body[] = "--unique-boundary-1\r\n"
                      "Content-Type: application/sdp\r\n"
                      "\r\n" SDP "\r\n"
                      "--unique-boundary-1\r\n"
                      "Content-Type: application/ISUP; version=nxv3; base=etsi121\r\n"
                      "Content-Disposition: signal; handling=optional\r\n"
                      "\r\n" ISUP "\r\n"
                      "--unique-boundary-1--\r\n";

  assert_sdp ("multipart/mixed; boundary=unique-boundary-1", body, sizeof body - 1, SDP);
  /* The SDP second, a preamble first, bare LF line ends. */
  {
    const char second[] = "This is a MIME preamble.\n"
                          "--b1\n"
                          "Content-Type: application/pidf+xml\n"
                          "Content-ID: <target123@atlanta.example.com>\n"
                          "\n<presence/>\n"
                          "--b1\n"
                          "content-type:application/sdp\n"
                          "\n"
                          "v=0\n"
                          "--b1--";
    assert_sdp ("multipart/mixed;boundary=b1", second, sizeof second - 1, "v=0");
  }
}

/* RFC 2045 §5.1: the boundary may be quoted, and then hold characters a
 * token may not (spaces, "=", ":", "?"); other parameters around it,
 * quoted with semicolons, do not confuse it. */
static void
test_boundary_quoting (void)
{
  const char body[] = "--simple boundary=:?\r\n"
                      "Content-Type: application/sdp\r\n"
                      "\r\n" SDP "\r\n"
                      "--simple boundary=:?--\r\n";
  const char prefix[] = "--ab\r\n"
                        "Content-Type: text/plain\r\n"
                        "\r\n"
                        "--abc is not our delimiter\r\n"
                        "--ab\r\n"
                        "Content-Type: application/sdp\r\n"
                        "\r\n" SDP "\r\n"
                        "--ab--\r\n";

  assert_sdp ("multipart/mixed; boundary=\"simple boundary=:?\"", body, sizeof body - 1, SDP);
  assert_sdp ("multipart/mixed; x=\"a;boundary=wrong\"; BOUNDARY=\"simple boundary=:?\"", body,
              sizeof body - 1, SDP);
  /* A line that only starts with the delimiter is text of the part. */
  assert_sdp ("multipart/mixed; boundary=ab", prefix, sizeof prefix - 1, SDP);
  /* Unterminated quote: no boundary. */
  assert_unusable ("multipart/mixed; boundary=\"simple boundary=:?", NULL, body, sizeof body - 1,
                   "boundary");
}

static void
test_no_sdp_part (void)
{
  const char body[] = "--b\r\n"
                      "Content-Type: application/isup\r\n"
                      "\r\n" ISUP "\r\n"
                      "--b--\r\n";

  assert_unusable ("multipart/mixed; boundary=b", NULL, body, sizeof body - 1, "no session");
  /* A body that is not SDP at all. */
  assert_unusable ("application/isup", NULL, ISUP, sizeof ISUP - 1, "no session");
  assert_unusable ("text/plain", NULL, "hello", 5, "no session");
  /* An early-session SDP (RFC 3959) is not the session's. */
  assert_unusable ("application/sdp", "early-session", SDP, strlen (SDP), "no session");
}

/* A part tandem would drop may forbid that (handling=required). */
static void
test_required_part (void)
{
  const char body[] = "--b\r\n"
                      "Content-Type: application/sdp\r\n"
                      "\r\n" SDP "\r\n"
                      "--b\r\n"
                      "Content-Type: application/isup\r\n"
                      "Content-Disposition: signal;\r\n"
                      "   handling=required\r\n"        /* folded */
                      "\r\n" ISUP "\r\n"
                      "--b--\r\n";
  const char early[] = "--b\r\n"
                       "Content-Type: application/sdp\r\n"
                       "Content-Disposition: early-session; handling=required\r\n"
                       "\r\n" SDP "\r\n"
                       "--b\r\n"
                       "Content-Type: application/sdp\r\n"
                       "Content-Disposition: session\r\n"
                       "\r\n" SDP "\r\n"
                       "--b--\r\n";
  const char base64[] = "--b\r\n"
                        "Content-Type: application/sdp\r\n"
                        "Content-Transfer-Encoding: base64\r\n"
                        "\r\n"
                        "dj0wDQo=\r\n"
                        "--b--\r\n";

  assert_unusable ("multipart/mixed; boundary=b", NULL, body, sizeof body - 1,
                   "handling=required");
  assert_unusable ("multipart/mixed; boundary=b", NULL, early, sizeof early - 1,
                   "handling=required");
  assert_unusable ("multipart/mixed; boundary=b", NULL, base64, sizeof base64 - 1, "no session");
  /* The same ISUP part, optional: skipped. */
  {
    g_autofree char *optional = g_memdup2 (body, sizeof body);   /* ISUP has NULs */
    memcpy (strstr (optional, "handling=required") + strlen ("handling="), "optional",
            strlen ("optional"));
    assert_sdp ("multipart/mixed; boundary=b", optional, sizeof body - 1, SDP);
  }
}

/* multipart/alternative inside multipart/mixed (RFC 5621 §3.1), and a
 * nesting bomb. */
static void
test_nested (void)
{
  const char body[] = "--outer\r\n"
                      "Content-Type: multipart/alternative; boundary=inner\r\n"
                      "\r\n"
                      "--inner\r\n"
                      "Content-Type: text/plain\r\n"
                      "\r\n"
                      "no audio here\r\n"
                      "--inner\r\n"
                      "Content-Type: application/sdp\r\n"
                      "\r\n" SDP "\r\n"
                      "--inner--\r\n"
                      "\r\n"
                      "--outer\r\n"
                      "Content-Type: application/isup\r\n"
                      "\r\n" ISUP "\r\n"
                      "--outer--\r\n";
  g_autoptr (GString) bomb = g_string_new (NULL);

  assert_sdp ("multipart/mixed; boundary=outer", body, sizeof body - 1, SDP);
  for (guint i = 0; i < 10; i++)
    g_string_append_printf (bomb, "--b%u\r\nContent-Type: multipart/mixed; boundary=b%u\r\n\r\n",
                            i, i + 1);
  g_string_append (bomb, "--b10\r\nContent-Type: application/sdp\r\n\r\n" SDP "\r\n--b10--\r\n");
  for (guint i = 10; i-- > 0;)
    g_string_append_printf (bomb, "--b%u--\r\n", i);
  assert_unusable ("multipart/mixed; boundary=b0", NULL, bomb->str, bomb->len, "nested");
}

/* RFC 2046 §5.1.1: a part's body is optional, and so are its headers. */
static void
test_empty_parts (void)
{
  const char headers_only[] = "--b\r\nContent-Type: application/sdp\r\n--b--\r\n";
  const char around[] = "--b\r\n"
                        "--b\r\n"
                        "Content-Type: application/ISUP; version=nxv3\r\n"
                        "--b\r\n"
                        "Content-Type: application/sdp\r\n"
                        "\r\n" SDP "\r\n"
                        "--b--\r\n";

  /* An SDP part with no body is found (and is then a bad SDP, not a 415). */
  assert_sdp ("multipart/mixed; boundary=b", headers_only, sizeof headers_only - 1, "");
  assert_sdp ("multipart/mixed; boundary=b", around, sizeof around - 1, SDP);
}

/* RFC 2046 §5.1.4: of alternatives, the last is the sender's preferred. */
static void
test_alternative_last (void)
{
  const char body[] = "--b\r\n"
                      "Content-Type: application/sdp\r\n\r\nv=0 first\r\n"
                      "--b\r\n"
                      "Content-Type: application/sdp\r\n\r\nv=0 preferred\r\n"
                      "--b--\r\n";

  assert_sdp ("multipart/alternative; boundary=b", body, sizeof body - 1, "v=0 preferred");
  assert_sdp ("multipart/mixed; boundary=b", body, sizeof body - 1, "v=0 first");
}

static void
test_garbage (void)
{
  const char no_close[] = "--b\r\nContent-Type: application/sdp\r\n\r\n" SDP;
  const char no_parts[] = "just some text\r\n";
  g_autofree char *long_boundary = g_strnfill (71, 'x');
  g_autofree char *long_ctype = g_strdup_printf ("multipart/mixed; boundary=%s", long_boundary);

  assert_unusable ("multipart/mixed; boundary=b", NULL, no_close, sizeof no_close - 1,
                   "closing delimiter");
  assert_unusable ("multipart/mixed; boundary=b", NULL, no_parts, sizeof no_parts - 1,
                   "without parts");
  assert_unusable ("multipart/mixed", NULL, no_parts, sizeof no_parts - 1, "boundary");
  assert_unusable ("multipart/mixed; boundary=", NULL, no_parts, sizeof no_parts - 1, "boundary");
  assert_unusable (long_ctype, NULL, no_parts, sizeof no_parts - 1, "boundary");
  /* Random bytes and random delimiter soup: whatever the answer, never a
   * read outside the buffer (valgrind or a sanitizer build checks that). */
  {
    g_autoptr (GRand) rand = g_rand_new_with_seed (5621);
    for (guint round = 0; round < 2000; round++) {
      gsize len = g_rand_int_range (rand, 1, 200);
      g_autofree char *buf = g_malloc (len);
      const char *sdp;
      gsize sdp_len;
      for (gsize i = 0; i < len; i++)
        buf[i] = (char) (round % 2 ? g_rand_int_range (rand, 0, 256)
                                   : "-b\r\n:C"[g_rand_int_range (rand, 0, 7)]);
      /* buf is not NUL-terminated: the parser must keep to len. */
      (void) td_body_find_sdp ("multipart/mixed; boundary=b", NULL, buf, len, &sdp, &sdp_len, NULL);
    }
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/body/plain", test_plain);
  g_test_add_func ("/body/mixed-with-isup", test_mixed_with_isup);
  g_test_add_func ("/body/boundary-quoting", test_boundary_quoting);
  g_test_add_func ("/body/no-sdp-part", test_no_sdp_part);
  g_test_add_func ("/body/required-part", test_required_part);
  g_test_add_func ("/body/nested", test_nested);
  g_test_add_func ("/body/empty-parts", test_empty_parts);
  g_test_add_func ("/body/alternative-last", test_alternative_last);
  g_test_add_func ("/body/garbage", test_garbage);
  return g_test_run ();
}
