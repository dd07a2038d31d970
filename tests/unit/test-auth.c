/* Unit tests for TdAuth: challenges, verification, replay, staleness, parsing. */
#include "td-auth.h"
#include "td-sipauth.h"

#include <string.h>

#define REALM "pbx.test"
#define LIFETIME_S 30
#define LIFETIME_US ((gint64) LIFETIME_S * G_USEC_PER_SEC)
#define URI "sip:pbx.test"

static const TdDigestAlgorithm md5_only[] = { TD_DIGEST_MD5 };
static const TdDigestAlgorithm sha_then_md5[] = { TD_DIGEST_SHA256, TD_DIGEST_MD5 };

/* A parameter of a challenge header, as a client would read it. */
static char *
challenge_param (const char *header, const char *name)
{
  g_autofree char *pattern = g_strdup_printf ("[ ,]%s=(\"([^\"]*)\"|([^,]*))", name);
  g_autoptr (GRegex) re = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;

  if (!g_regex_match (re, header, 0, &match))
    return NULL;
  g_autofree char *quoted = g_match_info_fetch (match, 2);
  if (quoted != NULL && *quoted != '\0')
    return g_steal_pointer (&quoted);
  return g_match_info_fetch (match, 3);
}

/* What a client sends back: fields point into `chunk`. */
typedef struct {
  GStringChunk *chunk;
  TdDigestCredentials cred;
} Answer;

static void
answer_clear (Answer *a)
{
  g_clear_pointer (&a->chunk, g_string_chunk_free);
}

/* Answers `header` as a well-behaved client would: with its nonce, opaque
 * and algorithm, qop=auth when qop is "auth" (and nc/cnonce), RFC 2069
 * style when qop is NULL. `realm` overrides the challenge's realm when not NULL. */
static void
answer_full (Answer *a, const char *header, const char *realm, const char *user,
             const char *password, const char *qop, const char *nc)
{
  g_autofree char *ch_realm = challenge_param (header, "realm");
  g_autofree char *nonce = challenge_param (header, "nonce");
  g_autofree char *opaque = challenge_param (header, "opaque");
  g_autofree char *algorithm = challenge_param (header, "algorithm");
  TdDigestAlgorithm alg;

  g_assert_true (td_digest_algorithm_parse (algorithm, &alg));
  if (realm == NULL)
    realm = ch_realm;

  a->chunk = g_string_chunk_new (256);
  a->cred = (TdDigestCredentials) {
    .username = g_string_chunk_insert (a->chunk, user),
    .realm = g_string_chunk_insert (a->chunk, realm),
    .nonce = g_string_chunk_insert (a->chunk, nonce),
    .uri = URI,
    .algorithm = g_string_chunk_insert (a->chunk, algorithm),
    .qop = qop,
    .nc = qop != NULL ? nc : NULL,
    .cnonce = qop != NULL ? "0a4f113b" : NULL,
    .opaque = g_string_chunk_insert (a->chunk, opaque),
  };
  g_autofree char *ha1 = td_digest_ha1 (alg, user, realm, password);
  g_autofree char *response = td_digest_response (alg, ha1, a->cred.nonce, a->cred.nc,
                                                  a->cred.cnonce, qop, "REGISTER", URI);
  a->cred.response = g_string_chunk_insert (a->chunk, response);
}

static void
answer (Answer *a, const char *header, const char *password, const char *nc)
{
  answer_full (a, header, NULL, "alice", password, "auth", nc);
}

/* Recomputes the response after the test changed some field of the credentials. */
static void
answer_resign (Answer *a, const char *password)
{
  TdDigestAlgorithm alg;
  g_assert_true (td_digest_algorithm_parse (a->cred.algorithm, &alg));
  g_autofree char *ha1 = td_digest_ha1 (alg, a->cred.username, a->cred.realm, password);
  g_autofree char *response = td_digest_response (alg, ha1, a->cred.nonce, a->cred.nc,
                                                  a->cred.cnonce, a->cred.qop,
                                                  "REGISTER", a->cred.uri);
  a->cred.response = g_string_chunk_insert (a->chunk, response);
}

static TdAuthResult
verify (TdAuth *auth, const Answer *a, const char *password, gint64 now_us)
{
  return td_auth_verify (auth, &a->cred, "REGISTER", password, now_us);
}

/* Translates between the nonce's base64url and raw bytes, to tamper with it. */
static guint8 *
nonce_to_raw (const char *nonce, gsize *len)
{
  g_autofree char *std = g_strdup (nonce);
  g_strdelimit (std, "-", '+');
  g_strdelimit (std, "_", '/');
  return g_base64_decode (std, len);
}

static char *
raw_to_nonce (const guint8 *raw, gsize len)
{
  char *text = g_base64_encode (raw, len);
  g_strdelimit (text, "+", '-');
  g_strdelimit (text, "/", '_');
  return text;
}

/* ---- challenges ---- */

static void
test_challenge_format (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, sha_then_md5, 2, LIFETIME_S);
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, g_get_monotonic_time ());
  const char *re = "^Digest realm=\"pbx\\.test\", nonce=\"[A-Za-z0-9_-]+\", "
                   "opaque=\"[^\"]+\", algorithm=%s, qop=\"auth\"%s$";

  g_assert_cmpuint (g_strv_length (headers), ==, 2);
  g_autofree char *re_sha = g_strdup_printf (re, "SHA-256", "");
  g_autofree char *re_md5 = g_strdup_printf (re, "MD5", "");
  g_assert_true (g_regex_match_simple (re_sha, headers[0], 0, 0));
  g_assert_true (g_regex_match_simple (re_md5, headers[1], 0, 0));

  /* Each header has its own nonce; the opaque is the TdAuth's. */
  g_autofree char *n0 = challenge_param (headers[0], "nonce");
  g_autofree char *n1 = challenge_param (headers[1], "nonce");
  g_autofree char *o0 = challenge_param (headers[0], "opaque");
  g_autofree char *o1 = challenge_param (headers[1], "opaque");
  g_assert_cmpstr (n0, !=, n1);
  g_assert_cmpstr (o0, ==, o1);

  g_auto (GStrv) again = td_auth_challenge (auth, FALSE, g_get_monotonic_time ());
  g_autofree char *n2 = challenge_param (again[0], "nonce");
  g_assert_cmpstr (n0, !=, n2);

  g_auto (GStrv) stale = td_auth_challenge (auth, TRUE, g_get_monotonic_time ());
  g_autofree char *re_stale = g_strdup_printf (re, "SHA-256", ", stale=true");
  g_assert_cmpuint (g_strv_length (stale), ==, 2);
  g_assert_true (g_regex_match_simple (re_stale, stale[0], 0, 0));
  g_assert_true (g_str_has_suffix (stale[1], "algorithm=MD5, qop=\"auth\", stale=true"));

  /* Nothing is remembered for issuing challenges. */
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 0);
}

static void
test_challenge_realm_quoting (void)
{
  g_autoptr (TdAuth) auth = td_auth_new ("a\"b\\c", md5_only, 1, LIFETIME_S);
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, g_get_monotonic_time ());

  g_assert_true (g_str_has_prefix (headers[0], "Digest realm=\"a\\\"b\\\\c\", nonce=\""));
}

static void
test_set_algorithms (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) before = td_auth_challenge (auth, FALSE, now);

  g_assert_cmpuint (g_strv_length (before), ==, 1);
  g_assert_true (g_str_has_suffix (before[0], "algorithm=MD5, qop=\"auth\""));

  td_auth_set_algorithms (auth, sha_then_md5, 2);
  g_auto (GStrv) after = td_auth_challenge (auth, FALSE, now);
  g_assert_cmpuint (g_strv_length (after), ==, 2);
  g_assert_true (g_str_has_suffix (after[0], "algorithm=SHA-256, qop=\"auth\""));
  g_assert_true (g_str_has_suffix (after[1], "algorithm=MD5, qop=\"auth\""));

  /* The nonce issued before the reload is still good. */
  Answer a = { 0 };
  answer (&a, before[0], "secret", "00000001");
  g_assert_cmpint (verify (auth, &a, "secret", now + 1), ==, TD_AUTH_OK);
  answer_clear (&a);

  /* Only SHA-256 offered now; an MD5 nonce from before still works. */
  static const TdDigestAlgorithm sha_only[] = { TD_DIGEST_SHA256 };
  td_auth_set_algorithms (auth, sha_only, 1);
  answer (&a, after[1], "secret", "00000001");
  g_assert_cmpint (verify (auth, &a, "secret", now + 1), ==, TD_AUTH_OK);
  answer_clear (&a);
}

/* A user's own list (digest-algorithms = SHA-256) is offered instead of the
 * TdAuth's, and its answer verifies. */
static void
test_challenge_for (void)
{
  static const TdDigestAlgorithm sha_only[] = { TD_DIGEST_SHA256 };
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge_for (auth, sha_only, 1, FALSE, now);
  g_auto (GStrv) stale = td_auth_challenge_for (auth, sha_then_md5, 2, TRUE, now);
  g_auto (GStrv) global = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  g_assert_cmpuint (g_strv_length (headers), ==, 1);
  g_assert_true (g_str_has_suffix (headers[0], "algorithm=SHA-256, qop=\"auth\""));
  g_assert_cmpuint (g_strv_length (stale), ==, 2);
  g_assert_true (g_str_has_suffix (stale[0], "algorithm=SHA-256, qop=\"auth\", stale=true"));
  g_assert_true (g_str_has_suffix (stale[1], "algorithm=MD5, qop=\"auth\", stale=true"));
  /* The TdAuth's own list is unchanged. */
  g_assert_cmpuint (g_strv_length (global), ==, 1);
  g_assert_true (g_str_has_suffix (global[0], "algorithm=MD5, qop=\"auth\""));

  answer (&a, headers[0], "secret", "00000001");
  g_assert_cmpstr (a.cred.algorithm, ==, "SHA-256");
  g_assert_cmpuint (strlen (a.cred.response), ==, 64);
  g_assert_cmpint (verify (auth, &a, "secret", now + 1), ==, TD_AUTH_OK);
  answer_clear (&a);
}

/* ---- the digest uri ---- */

static gboolean
designates (const TdServerIdentity *server, const char *digest_uri, const char *request_uri)
{
  su_home_t home[1] = { SU_HOME_INIT (home) };
  url_t *ruri = url_make (home, request_uri);
  gboolean ok;

  g_assert_nonnull (ruri);
  ok = td_sipauth_uri_designates (server, digest_uri, ruri);
  su_home_deinit (home);
  return ok;
}

static void
test_uri_designates (void)
{
  const char *const addresses[] = { "127.0.0.1", "10.1.2.3", "fd00::5", NULL };
  const TdServerIdentity server = { .domain = "pbx.test", .addresses = addresses, .port = 5060 };
  static const struct {
    const char *digest_uri, *request_uri;
    gboolean ok;
  } cases[] = {
    /* The Request-URI itself, as phones write it. */
    { "sip:pbx.test", "sip:pbx.test", TRUE },
    { "sip:bob@pbx.test", "sip:bob@pbx.test", TRUE },
    { "sip:bob@elsewhere.example", "sip:bob@elsewhere.example", TRUE },
    /* SIPp without -auth_uri: the address it sent to. */
    { "sip:127.0.0.1:5060", "sip:pbx.test", TRUE },
    { "sip:127.0.0.1:5060", "sip:bob@pbx.test", TRUE },
    { "sip:127.0.0.1", "sip:pbx.test", TRUE },
    { "sip:10.1.2.3:5060", "sip:pbx.test", TRUE },
    { "sip:[fd00::5]:5060", "sip:pbx.test", TRUE },
    { "sip:[fd00:0::5]", "sip:pbx.test", TRUE },
    { "sips:pbx.test", "sip:pbx.test", TRUE },
    { "sip:PBX.test:5060", "sip:pbx.test", TRUE },
    { "sip:bob@127.0.0.1:5060", "sip:bob@pbx.test", TRUE },
    { "sip:pbx.test;transport=tcp", "sip:pbx.test", TRUE },
    /* A REGISTER's Request-URI names no user for the uri to differ from. */
    { "sip:alice@pbx.test", "sip:pbx.test", TRUE },
    /* Another server, port or user. */
    { "sip:other.example", "sip:pbx.test", FALSE },
    { "sip:127.0.0.2:5060", "sip:pbx.test", FALSE },
    { "sip:[fd00::6]", "sip:pbx.test", FALSE },
    { "sip:127.0.0.1:5061", "sip:pbx.test", FALSE },
    { "sip:pbx.test:50600", "sip:pbx.test", FALSE },
    { "sip:carol@pbx.test", "sip:bob@pbx.test", FALSE },
    { "sip:carol@127.0.0.1:5060", "sip:bob@pbx.test", FALSE },
    { "sip:pbx.test.evil.example", "sip:pbx.test", FALSE },
    { "tel:+15551234", "sip:pbx.test", FALSE },
    { "http://pbx.test/", "sip:pbx.test", FALSE },
    { "", "sip:pbx.test", FALSE },
    { "not a uri", "sip:pbx.test", FALSE },
    { NULL, "sip:pbx.test", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_test_message ("case %u: %s for %s", i, cases[i].digest_uri ? cases[i].digest_uri : "(null)",
                    cases[i].request_uri);
    g_assert_cmpint (designates (&server, cases[i].digest_uri, cases[i].request_uri), ==,
                     cases[i].ok);
  }
}

/* Only the addresses tandem listens on count: with none but the domain, an
 * address literal is someone else. */
static void
test_uri_designates_no_addresses (void)
{
  const char *const none[] = { NULL };
  const TdServerIdentity server = { .domain = "pbx.test", .addresses = none, .port = 5070 };

  g_assert_true (designates (&server, "sip:pbx.test:5070", "sip:pbx.test"));
  g_assert_false (designates (&server, "sip:pbx.test:5060", "sip:pbx.test"));
  g_assert_false (designates (&server, "sip:127.0.0.1:5070", "sip:pbx.test"));
}

/* ---- verification ---- */

static void
test_verify_ok (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, sha_then_md5, 2, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);

  for (guint i = 0; headers[i] != NULL; i++)
    {
      Answer a = { 0 };
      answer (&a, headers[i], "secret", "00000001");
      g_assert_cmpint (verify (auth, &a, "secret", now + G_USEC_PER_SEC), ==, TD_AUTH_OK);
      answer_clear (&a);
    }
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 2);
}

static void
test_verify_via_parse (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, sha_then_md5, 2, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  /* What Sofia-SIP would hand over for the client's header. */
  answer (&a, headers[0], "secret", "00000001");
  g_autofree char *p_user = g_strdup_printf ("username=\"%s\"", a.cred.username);
  g_autofree char *p_realm = g_strdup_printf ("realm=\"%s\"", a.cred.realm);
  g_autofree char *p_nonce = g_strdup_printf ("nonce=\"%s\"", a.cred.nonce);
  g_autofree char *p_uri = g_strdup_printf ("uri=\"%s\"", a.cred.uri);
  g_autofree char *p_resp = g_strdup_printf ("response=\"%s\"", a.cred.response);
  g_autofree char *p_alg = g_strdup_printf ("algorithm=%s", a.cred.algorithm);
  g_autofree char *p_cnonce = g_strdup_printf ("cnonce=\"%s\"", a.cred.cnonce);
  g_autofree char *p_opaque = g_strdup_printf ("opaque=\"%s\"", a.cred.opaque);
  const char *params[] = { p_user, p_realm, p_nonce, p_uri, p_resp, p_alg,
                           "qop=auth", "nc=00000001", p_cnonce, p_opaque, NULL };

  g_autoptr (GStringChunk) chunk = g_string_chunk_new (64);
  TdDigestCredentials cred;
  g_assert_true (td_auth_parse_params (params, chunk, &cred));
  g_assert_cmpint (td_auth_verify (auth, &cred, "REGISTER", "secret", now), ==, TD_AUTH_OK);
  answer_clear (&a);
}

static void
test_verify_wrong_password (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, sha_then_md5, 2, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);

  for (guint i = 0; headers[i] != NULL; i++)
    {
      Answer a = { 0 };
      answer (&a, headers[i], "guess", "00000001");
      g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
      answer_clear (&a);
    }
  /* A failure remembers nothing. */
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 0);
}

static void
test_verify_unknown_user (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  answer (&a, headers[0], "secret", "00000001");
  g_assert_cmpint (verify (auth, &a, NULL, now), ==, TD_AUTH_FAILED);
  answer_clear (&a);

  /* Even the empty password does not stand in for an unknown user. */
  answer (&a, headers[0], "", "00000001");
  g_assert_cmpint (verify (auth, &a, NULL, now), ==, TD_AUTH_FAILED);

  /* Malformed wins over unknown. */
  a.cred.uri = NULL;
  g_assert_cmpint (verify (auth, &a, NULL, now), ==, TD_AUTH_MALFORMED);
  answer_clear (&a);
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 0);
}

static void
test_verify_replay (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  static const struct {
    const char *nc;
    TdAuthResult result;
  } steps[] = {
    { "00000001", TD_AUTH_OK },
    { "00000001", TD_AUTH_FAILED },  /* replay */
    { "00000002", TD_AUTH_OK },
    { "00000001", TD_AUTH_FAILED },  /* going back */
    { "00000002", TD_AUTH_FAILED },
    { "00000005", TD_AUTH_OK },      /* gaps are fine */
    { "0000000a", TD_AUTH_OK },      /* hex */
    { "0000000A", TD_AUTH_FAILED },  /* same number */
    { "00000010", TD_AUTH_OK },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      Answer a = { 0 };
      answer (&a, headers[0], "secret", steps[i].nc);
      g_assert_cmpint (verify (auth, &a, "secret", now + (gint64) i), ==, steps[i].result);
      answer_clear (&a);
    }
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 1);
}

static void
test_verify_expired (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, sha_then_md5, 2, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  answer (&a, headers[0], "secret", "00000001");
  g_assert_cmpint (verify (auth, &a, "secret", now + LIFETIME_US), ==, TD_AUTH_STALE);
  g_assert_cmpint (verify (auth, &a, "other", now + LIFETIME_US), ==, TD_AUTH_FAILED);
  g_assert_cmpint (verify (auth, &a, NULL, now + LIFETIME_US), ==, TD_AUTH_FAILED);
  /* A nonce from the future (clock confusion) is not trusted either. */
  g_assert_cmpint (verify (auth, &a, "secret", now - 1), ==, TD_AUTH_STALE);
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 0);
  /* Just inside the lifetime it is fine. */
  g_assert_cmpint (verify (auth, &a, "secret", now + LIFETIME_US - 1), ==, TD_AUTH_OK);
  answer_clear (&a);

  /* A remembered nonce expires too, replay check or not. */
  answer (&a, headers[1], "secret", "00000001");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_OK);
  answer_clear (&a);
  answer (&a, headers[1], "secret", "00000002");
  g_assert_cmpint (verify (auth, &a, "secret", now + LIFETIME_US), ==, TD_AUTH_STALE);
  answer_clear (&a);
}

static void
test_verify_tampered (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, sha_then_md5, 2, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };
  gsize len = 0;

  /* Flip the top bit of every byte in turn: each forgery is stale (right
   * password) or failed, never OK. */
  answer (&a, headers[0], "secret", "00000001");
  g_autofree guint8 *raw = nonce_to_raw (a.cred.nonce, &len);
  g_assert_cmpuint (len, >, 0);
  for (gsize i = 0; i < len; i++)
    {
      raw[i] ^= 0x80;
      g_autofree char *forged = raw_to_nonce (raw, len);
      raw[i] ^= 0x80;

      a.cred.nonce = g_string_chunk_insert (a.chunk, forged);
      a.cred.algorithm = "SHA-256";
      answer_resign (&a, "secret");
      TdAuthResult r = verify (auth, &a, "secret", now);
      /* Where the flipped byte is the algorithm's it now names none, and
       * the claimed algorithm is used; elsewhere it still says SHA-256. */
      g_assert_cmpint (r, ==, TD_AUTH_STALE);
      answer_resign (&a, "wrong");
      g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
    }
  answer_clear (&a);

  /* Garbage, or an empty-looking nonce: STALE with the right password. */
  static const char *const junk[] = { "x", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                                      "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" };
  for (gsize i = 0; i < G_N_ELEMENTS (junk); i++)
    {
      answer (&a, headers[1], "secret", "00000001");
      a.cred.nonce = junk[i];
      answer_resign (&a, "secret");
      g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_STALE);
      answer_resign (&a, "wrong");
      g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
      answer_clear (&a);
    }
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 0);
}

static void
test_verify_forged_algorithm (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, sha_then_md5, 2, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };
  gsize len = 0;

  answer (&a, headers[0], "secret", "00000001");
  g_autofree guint8 *raw = nonce_to_raw (a.cred.nonce, &len);

  /* The MAC is wrong (as after a restart) but the algorithm byte still
   * reads SHA-256: claiming MD5 contradicts it. */
  raw[len - 1] ^= 0x80;
  g_autofree char *restarted = raw_to_nonce (raw, len);
  a.cred.nonce = restarted;
  a.cred.algorithm = "MD5";
  answer_resign (&a, "secret");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  a.cred.algorithm = "SHA-256";
  answer_resign (&a, "secret");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_STALE);

  /* An algorithm byte that names nothing: whatever the client claims. */
  raw[8] = 0x7f;
  g_autofree char *unreadable = raw_to_nonce (raw, len);
  a.cred.nonce = unreadable;
  for (int i = 0; i < 2; i++)
    {
      a.cred.algorithm = i == 0 ? "MD5" : "SHA-256";
      answer_resign (&a, "secret");
      g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_STALE);
      answer_resign (&a, "wrong");
      g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
    }
  answer_clear (&a);
}

static void
test_verify_algorithm_mismatch (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, sha_then_md5, 2, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  /* SHA-256 nonce answered with a correct MD5 response. */
  answer (&a, headers[0], "secret", "00000001");
  a.cred.algorithm = "MD5";
  answer_resign (&a, "secret");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  /* An absent algorithm means MD5. */
  a.cred.algorithm = NULL;
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  answer_clear (&a);

  /* MD5 nonce answered with SHA-256. */
  answer (&a, headers[1], "secret", "00000001");
  a.cred.algorithm = "SHA-256";
  answer_resign (&a, "secret");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  /* ... and with no algorithm at all, which is MD5 and fine. */
  a.cred.algorithm = NULL;
  answer_resign (&a, "secret");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_OK);
  answer_clear (&a);
}

static void
test_verify_wrong_realm (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  answer_full (&a, headers[0], "other.test", "alice", "secret", "auth", "00000001");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  answer_clear (&a);
  answer_full (&a, headers[0], "PBX.TEST", "alice", "secret", "auth", "00000001");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  answer_clear (&a);
}

static void
test_verify_opaque (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  answer (&a, headers[0], "secret", "00000001");
  a.cred.opaque = "not-ours";
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  a.cred.opaque = NULL;  /* dropped by the client: fine */
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_OK);
  a.cred.opaque = "";    /* or sent empty */
  a.cred.nc = "00000002";
  answer_resign (&a, "secret");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_OK);
  answer_clear (&a);
}

static void
test_verify_rfc2069 (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  answer_full (&a, headers[0], NULL, "alice", "secret", NULL, NULL);
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_OK);
  /* No nc to check: the nonce may be reused while it lives. */
  g_assert_cmpint (verify (auth, &a, "secret", now + 1), ==, TD_AUTH_OK);
  g_assert_cmpint (verify (auth, &a, "other", now + 1), ==, TD_AUTH_FAILED);
  g_assert_cmpint (verify (auth, &a, "secret", now + LIFETIME_US), ==, TD_AUTH_STALE);
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 1);
  answer_clear (&a);

  /* A qop=auth response is not accepted without qop. */
  answer (&a, headers[0], "secret", "00000001");
  a.cred.qop = NULL;
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  answer_clear (&a);
}

static void
test_verify_qop (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };

  answer_full (&a, headers[0], NULL, "alice", "secret", "auth-int", "00000001");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  answer_clear (&a);
  answer_full (&a, headers[0], NULL, "alice", "secret", "bogus", "00000001");
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_FAILED);
  answer_clear (&a);
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 0);
}

static void
test_verify_malformed (void)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 now = g_get_monotonic_time ();
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  Answer a = { 0 };
  TdDigestCredentials good;

  answer (&a, headers[0], "secret", "00000001");
  good = a.cred;

#define CHECK_MALFORMED(field, value)                                          \
  G_STMT_START {                                                               \
    a.cred = good;                                                             \
    a.cred.field = (value);                                                    \
    g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_MALFORMED); \
    g_assert_cmpint (verify (auth, &a, NULL, now), ==, TD_AUTH_MALFORMED);     \
  } G_STMT_END

  CHECK_MALFORMED (username, NULL);
  CHECK_MALFORMED (username, "");
  CHECK_MALFORMED (realm, NULL);
  CHECK_MALFORMED (nonce, NULL);
  CHECK_MALFORMED (nonce, "");
  CHECK_MALFORMED (uri, NULL);
  CHECK_MALFORMED (response, NULL);
  CHECK_MALFORMED (nc, NULL);
  CHECK_MALFORMED (cnonce, NULL);
  CHECK_MALFORMED (nc, "1");
  CHECK_MALFORMED (nc, "000000001");
  CHECK_MALFORMED (nc, "0000000g");
  CHECK_MALFORMED (nc, "");
  CHECK_MALFORMED (algorithm, "SHA-512");
  CHECK_MALFORMED (algorithm, "MD5-sess");
#undef CHECK_MALFORMED

  /* Still fine as it was. */
  a.cred = good;
  g_assert_cmpint (verify (auth, &a, "secret", now), ==, TD_AUTH_OK);
  answer_clear (&a);
}

/* ---- parsing ---- */

static void
test_parse_params (void)
{
  const char *params[] = {
    "username=\"alice\"",
    "Realm=\"pbx.test\"",
    "NONCE=\"abc-_123\"",
    " uri = \"sip:bob@pbx.test;transport=tcp\" ",
    "response=\"6629fae49393a05397450978507c4ef1\"",
    "algorithm=SHA-256",
    "qop=auth",
    "nc=00000001",
    "cnonce=\"a\\\"b\\\\c, d\"",
    "opaque=\"\"",
    "userhash=false",   /* unknown: ignored */
    "username=\"mallory\"",  /* repeated: the first counts */
    "flag",
    NULL,
  };
  g_autoptr (GStringChunk) chunk = g_string_chunk_new (64);
  TdDigestCredentials cred;

  g_assert_true (td_auth_parse_params (params, chunk, &cred));
  g_assert_cmpstr (cred.username, ==, "alice");
  g_assert_cmpstr (cred.realm, ==, "pbx.test");
  g_assert_cmpstr (cred.nonce, ==, "abc-_123");
  g_assert_cmpstr (cred.uri, ==, "sip:bob@pbx.test;transport=tcp");
  g_assert_cmpstr (cred.response, ==, "6629fae49393a05397450978507c4ef1");
  g_assert_cmpstr (cred.algorithm, ==, "SHA-256");
  g_assert_cmpstr (cred.qop, ==, "auth");
  g_assert_cmpstr (cred.nc, ==, "00000001");
  g_assert_cmpstr (cred.cnonce, ==, "a\"b\\c, d");
  g_assert_cmpstr (cred.opaque, ==, "");

  /* The values are copies, not pointers into the params. */
  g_assert_true (cred.algorithm != params[5] + strlen ("algorithm="));
}

static void
test_parse_params_minimal (void)
{
  const char *params[] = { "username=bob", "response=00", NULL };
  g_autoptr (GStringChunk) chunk = g_string_chunk_new (64);
  TdDigestCredentials cred;

  memset (&cred, 0xff, sizeof cred);  /* stale garbage must be cleared */
  g_assert_true (td_auth_parse_params (params, chunk, &cred));
  g_assert_cmpstr (cred.username, ==, "bob");
  g_assert_cmpstr (cred.response, ==, "00");
  g_assert_null (cred.realm);
  g_assert_null (cred.nonce);
  g_assert_null (cred.uri);
  g_assert_null (cred.algorithm);
  g_assert_null (cred.qop);
  g_assert_null (cred.nc);
  g_assert_null (cred.cnonce);
  g_assert_null (cred.opaque);
}

static void
test_parse_params_not_digest (void)
{
  g_autoptr (GStringChunk) chunk = g_string_chunk_new (64);
  TdDigestCredentials cred;
  const char *no_user[] = { "realm=\"pbx.test\"", "response=\"00\"", NULL };
  const char *no_response[] = { "username=\"alice\"", "realm=\"pbx.test\"", NULL };
  const char *unterminated[] = { "username=\"alice", "response=\"00\"", NULL };
  const char *trailing[] = { "username=\"alice\"x", "response=\"00\"", NULL };
  const char *bad_escape[] = { "username=\"alice\\\"", "response=\"00\"", NULL };
  const char *empty[] = { NULL };

  g_assert_false (td_auth_parse_params (no_user, chunk, &cred));
  g_assert_false (td_auth_parse_params (no_response, chunk, &cred));
  g_assert_false (td_auth_parse_params (unterminated, chunk, &cred));
  g_assert_false (td_auth_parse_params (trailing, chunk, &cred));
  g_assert_false (td_auth_parse_params (bad_escape, chunk, &cred));
  g_assert_false (td_auth_parse_params (empty, chunk, &cred));
  g_assert_false (td_auth_parse_params (NULL, chunk, &cred));
}

/* ---- housekeeping ---- */

/* Two nonces, issued at t0 and 10 s later, each used once: in the order
 * they were issued, or (first_used_late) the early one after the fresher.
 * Expiry walks nonces in the order of their first use; either way neither
 * may be forgotten before it expires, nor make the other go early, and both
 * go in the end. */
static void
check_expiry (gboolean first_used_late)
{
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5_only, 1, LIFETIME_S);
  gint64 t0 = g_get_monotonic_time ();
  gint64 t1 = t0 + 10 * G_USEC_PER_SEC;
  gint64 expired = t0 + LIFETIME_US;   /* the early one's end */
  g_auto (GStrv) early = td_auth_challenge (auth, FALSE, t0);
  g_auto (GStrv) fresh = td_auth_challenge (auth, FALSE, t1);
  Answer a = { 0 }, b = { 0 };

  answer (&a, early[0], "secret", "00000001");
  answer (&b, fresh[0], "secret", "00000001");
  g_assert_cmpint (verify (auth, first_used_late ? &b : &a, "secret", t1), ==, TD_AUTH_OK);
  g_assert_cmpint (verify (auth, first_used_late ? &a : &b, "secret", t1 + 1), ==, TD_AUTH_OK);
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 2);

  /* Just before the early one expires both are kept and refuse replays. */
  td_auth_expire (auth, expired - 1);
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 2);
  g_assert_cmpint (verify (auth, &a, "secret", expired - 1), ==, TD_AUTH_FAILED);
  g_assert_cmpint (verify (auth, &b, "secret", expired - 1), ==, TD_AUTH_FAILED);

  /* Then the early one is stale (first used late, it may still wait behind
   * the fresh one), and the fresh one still refuses its replay. */
  td_auth_expire (auth, expired);
  if (!first_used_late)
    g_assert_cmpuint (td_auth_nonce_count (auth), ==, 1);
  g_assert_cmpint (verify (auth, &a, "secret", expired), ==, TD_AUTH_STALE);
  g_assert_cmpint (verify (auth, &b, "secret", expired), ==, TD_AUTH_FAILED);

  td_auth_expire (auth, t1 + LIFETIME_US);
  g_assert_cmpuint (td_auth_nonce_count (auth), ==, 0);
  answer_clear (&a);
  answer_clear (&b);
}

static void
test_expire (void)
{
  check_expiry (FALSE);
}

static void
test_expire_first_used_late (void)
{
  check_expiry (TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/auth/challenge/format", test_challenge_format);
  g_test_add_func ("/auth/challenge/realm-quoting", test_challenge_realm_quoting);
  g_test_add_func ("/auth/challenge/set-algorithms", test_set_algorithms);
  g_test_add_func ("/auth/challenge/for-user", test_challenge_for);
  g_test_add_func ("/auth/uri/designates", test_uri_designates);
  g_test_add_func ("/auth/uri/designates-no-addresses", test_uri_designates_no_addresses);
  g_test_add_func ("/auth/verify/ok", test_verify_ok);
  g_test_add_func ("/auth/verify/via-parse", test_verify_via_parse);
  g_test_add_func ("/auth/verify/wrong-password", test_verify_wrong_password);
  g_test_add_func ("/auth/verify/unknown-user", test_verify_unknown_user);
  g_test_add_func ("/auth/verify/replay", test_verify_replay);
  g_test_add_func ("/auth/verify/expired", test_verify_expired);
  g_test_add_func ("/auth/verify/tampered", test_verify_tampered);
  g_test_add_func ("/auth/verify/forged-algorithm", test_verify_forged_algorithm);
  g_test_add_func ("/auth/verify/algorithm-mismatch", test_verify_algorithm_mismatch);
  g_test_add_func ("/auth/verify/wrong-realm", test_verify_wrong_realm);
  g_test_add_func ("/auth/verify/opaque", test_verify_opaque);
  g_test_add_func ("/auth/verify/rfc2069", test_verify_rfc2069);
  g_test_add_func ("/auth/verify/qop", test_verify_qop);
  g_test_add_func ("/auth/verify/malformed", test_verify_malformed);
  g_test_add_func ("/auth/parse/params", test_parse_params);
  g_test_add_func ("/auth/parse/minimal", test_parse_params_minimal);
  g_test_add_func ("/auth/parse/not-digest", test_parse_params_not_digest);
  g_test_add_func ("/auth/expire", test_expire);
  g_test_add_func ("/auth/expire/first-used-late", test_expire_first_used_late);

  return g_test_run ();
}
