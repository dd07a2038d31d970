/* Configuration parsing: good files, and bad ones named by file and line. */
#include <string.h>

#include "td-config.h"
#include "td-siplog.h"

#define GOOD \
  "# tandem test configuration\n" \
  "[sip]\n" \
  "listen = 127.0.0.1:5070        # UDP and TCP\n" \
  "domain = pbx.test\n" \
  "[auth]\n" \
  "algorithms = SHA-256; MD5\n" \
  "[media]\n" \
  "address = 127.0.0.1\n" \
  "ports = 30000-30099\n" \
  "[store]\n" \
  "path = tandem.db\n" \
  "[calls]\n" \
  "no-answer-timeout = 20\n" \
  "[user alice]\n" \
  "password = alice#secret\n" \
  "[user bob]\n" \
  "password = bob secret # comment\n"

static void
test_good (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_parse (GOOD, "good.conf", "/etc/tandem", &error);
  const TdUser *alice, *bob;

  g_assert_no_error (error);
  g_assert_nonnull (c);
  g_assert_cmpstr (c->listen_host, ==, "127.0.0.1");
  g_assert_cmpuint (c->listen_port, ==, 5070);
  g_assert_cmpstr (c->domain, ==, "pbx.test");
  g_assert_cmpuint (c->n_algorithms, ==, 2);
  g_assert_cmpint (c->algorithms[0], ==, TD_DIGEST_SHA256);
  g_assert_cmpint (c->algorithms[1], ==, TD_DIGEST_MD5);
  g_assert_cmpuint (c->port_min, ==, 30000);
  g_assert_cmpuint (c->port_max, ==, 30099);
  g_assert_cmpstr (c->store_path, ==, "/etc/tandem/tandem.db");
  g_assert_cmpuint (c->no_answer_timeout, ==, 20);
  alice = td_config_lookup_user (c, "alice");
  bob = td_config_lookup_user (c, "bob");
  g_assert_nonnull (alice);
  /* '#' without whitespace before it belongs to the value */
  g_assert_cmpstr (alice->password, ==, "alice#secret");
  g_assert_cmpstr (bob->password, ==, "bob secret");
  g_assert_null (td_config_lookup_user (c, "carol"));
  /* defaults */
  g_assert_cmpuint (c->min_expires, ==, 60);
  g_assert_cmpuint (c->nonce_lifetime, ==, 300);
  g_assert_cmpint (c->latching, ==, TD_RELAY_LATCH_PREFER_SDP);
}

/* What a file that says nothing about them gets. */
static void
test_defaults (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_parse ("[sip]\ndomain = pbx.test\n[store]\npath = x\n"
                                            "[user alice]\npassword = a\n",
                                            "defaults.conf", NULL, &error);
  g_assert_no_error (error);
  /* MD5 alone: baresip 1.0 cannot register when SHA-256 is offered at all. */
  g_assert_cmpuint (c->n_algorithms, ==, 1);
  g_assert_cmpint (c->algorithms[0], ==, TD_DIGEST_MD5);
  g_assert_cmpuint (td_config_lookup_user (c, "alice")->n_algorithms, ==, 0);
  g_assert_cmpuint (c->max_contacts, ==, 10);
  g_assert_cmpuint (c->max_calls_per_user, ==, 8);
  /* Not RFC 3261's 32 s: each finished transaction is kept that long. */
  g_assert_cmpuint (c->transaction_lifetime, ==, 8);
  /* Only td_config_load() reads the host's addresses. */
  g_assert_nonnull (c->local_addresses);
  g_assert_cmpuint (g_strv_length (c->local_addresses), ==, 0);
}

/* [user NAME] digest-algorithms: the user's own list, in its order. */
static void
test_user_digest_algorithms (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_parse (
      "[sip]\ndomain = pbx.test\n[store]\npath = x\n[auth]\nalgorithms = MD5\n"
      "[registrar]\nmax-contacts = 3\n[calls]\nmax-calls-per-user = 2\n"
      "[user alice]\npassword = a\ndigest-algorithms = SHA-256\n"
      "[user bob]\npassword = b\ndigest-algorithms = MD5;SHA-256\n"
      "[user carol]\npassword = c\nmax-calls = 300\n", "users.conf", NULL, &error);
  const TdUser *alice, *bob, *carol;

  g_assert_no_error (error);
  alice = td_config_lookup_user (c, "alice");
  bob = td_config_lookup_user (c, "bob");
  carol = td_config_lookup_user (c, "carol");
  g_assert_cmpuint (alice->n_algorithms, ==, 1);
  g_assert_cmpint (alice->algorithms[0], ==, TD_DIGEST_SHA256);
  g_assert_cmpuint (bob->n_algorithms, ==, 2);
  g_assert_cmpint (bob->algorithms[0], ==, TD_DIGEST_MD5);
  g_assert_cmpint (bob->algorithms[1], ==, TD_DIGEST_SHA256);
  g_assert_cmpuint (carol->n_algorithms, ==, 0);
  /* Not a plugin's key: nothing left for td_config_check_user_keys(). */
  g_assert_null (td_user_get (alice, "digest-algorithms"));
  g_assert_true (td_config_check_user_keys (c, NULL, &error));
  g_assert_cmpuint (c->max_contacts, ==, 3);
  g_assert_cmpuint (c->max_calls_per_user, ==, 2);
  /* [user] max-calls overrides [calls] max-calls-per-user for that caller only */
  g_assert_cmpuint (td_config_max_calls (c, alice), ==, 2);
  g_assert_cmpuint (td_config_max_calls (c, carol), ==, 300);
}

static void
test_ipv6_listen (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_parse (
      "[sip]\nlisten = [::1]:5062\ndomain = pbx.test\n[store]\npath = /tmp/x.db\n",
      "v6.conf", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->listen_host, ==, "::1");
  g_assert_cmpuint (c->listen_port, ==, 5062);
}

/* Each bad file must fail with a message naming file, line and what is wrong. */
static const struct {
  const char *data;
  TdConfigError code;
  const char *expect;   /* substring of the message */
} bad_cases[] = {
  { "[sip]\ndomain = pbx.test\nlisten = 127.0.0.1\n[store]\npath=x\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:3: [sip] listen" },
  { "[sip]\ndomain = pbx.test\nlisten = 127.0.0.1:99999\n[store]\npath=x\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:3: [sip] listen: 99999 is out of range" },
  { "[sip]\ndomain = pbx.test\ntransaction-lifetime = 2\n[store]\npath=x\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:3: [sip] transaction-lifetime: 2 is out of range" },
  { "[sip]\ndomain = pbx.test\ntransaction-lifetime = 33\n[store]\npath=x\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:3: [sip] transaction-lifetime: 33 is out of range" },
  { "[sip]\ndomain = pbx.test\ncolour = blue\n[store]\npath=x\n",
    TD_CONFIG_ERROR_UNKNOWN, "bad.conf:3: [sip] unknown key \"colour\"" },
  { "[sip]\ndomain = pbx.test\n[sound]\n",
    TD_CONFIG_ERROR_UNKNOWN, "bad.conf:3: unknown group [sound]" },
  { "[sip]\ndomain = pbx.test\nthis is not a line\n",
    TD_CONFIG_ERROR_SYNTAX, "bad.conf:3:" },
  { "[sip\n", TD_CONFIG_ERROR_SYNTAX, "bad.conf:1: group header" },
  { "domain = pbx.test\n", TD_CONFIG_ERROR_SYNTAX, "bad.conf:1: \"domain\" comes before" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[calls]\nno-answer-timeout = soon\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:6: [calls] no-answer-timeout: \"soon\" is not a whole number" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user alice]\ndisplay-name = A\n",
    TD_CONFIG_ERROR_MISSING, "bad.conf:5: [user alice] has no password" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user alice]\npassword = a\n[user alice]\n",
    TD_CONFIG_ERROR_SYNTAX, "bad.conf:7: [user alice] is defined twice" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[auth]\nalgorithms = SHA-512\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:6: [auth] algorithms: unknown algorithm \"SHA-512\"" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[media]\nports = 40000-30000\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:6: [media] ports" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[media]\nlatching = sometimes\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:6: [media] latching: \"sometimes\"" },
  { "[sip]\ndomain = pbx.test\ndomain = other.test\n",
    TD_CONFIG_ERROR_SYNTAX, "bad.conf:3: [sip] domain is set twice" },
  { "[store]\npath = x\n", TD_CONFIG_ERROR_MISSING, "[sip] domain is required" },
  { "[sip]\ndomain = pbx.test\n", TD_CONFIG_ERROR_MISSING, "[store] path is required" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user a@b]\npassword = x\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:5:" },
  { "[sip]\ndomain = pbx test\n", TD_CONFIG_ERROR_VALUE, "bad.conf:2: [sip] domain" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user alice]\npassword = a\n"
    "digest-algorithms = SHA-512\n",
    TD_CONFIG_ERROR_VALUE,
    "bad.conf:7: [user alice] digest-algorithms: unknown algorithm \"SHA-512\" (use MD5, SHA-256)" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user bob]\npassword = b\n"
    "digest-algorithms = ;\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:7: [user bob] digest-algorithms: empty list" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user bob]\npassword = b\n"
    "digest-algorithms = MD5; md5\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:7: [user bob] digest-algorithms: \"md5\" is listed twice" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[registrar]\nmax-contacts = 0\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:6: [registrar] max-contacts: 0 is out of range" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[calls]\nmax-calls-per-user = many\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:6: [calls] max-calls-per-user: \"many\" is not a whole number" },
  /* A plugin's group needs the plugin enabled, wherever [plugins] comes. */
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[hold]\nmusic = m.wav\n"
    "[plugins]\nenabled = forward\n",
    TD_CONFIG_ERROR_UNKNOWN, "bad.conf:5: unknown group [hold]: neither a core group" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[hold]\n",
    TD_CONFIG_ERROR_UNKNOWN, "bad.conf:5: unknown group [hold]" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[plugins]\nenabled = hold\n"
    "[hold]\nmusic = a.wav\n[hold]\n",
    TD_CONFIG_ERROR_SYNTAX, "bad.conf:9: group [hold] appears twice (first on line 7)" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[plugins]\nenabled = hold\n"
    "[hold]\nmusic = a.wav\nmusic = b.wav\n",
    TD_CONFIG_ERROR_SYNTAX, "bad.conf:9: [hold] music is set twice (first on line 8)" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[plugins]\nenabled = forward;media\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:6: [plugins] enabled: \"media\" is the name of a core group" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[plugins]\nenabled = hold\n"
    "[hold]\nmusic = a.wav\n[media]\nhold-music = b.wav\n",
    TD_CONFIG_ERROR_SYNTAX,
    "bad.conf:10: [media] hold-music is [hold] music, which is set already (on line 8)" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[plugins]\nenabled = hold\n"
    "[media]\nhold-music = b.wav\n[hold]\nmusic = a.wav\n",
    TD_CONFIG_ERROR_SYNTAX, "bad.conf:10: [hold] music is set twice (first on line 8)" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[media]\nsrtp = required\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:6: [media] srtp" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user a]\npassword = p\nmax-calls = 0\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:7: [user a] max-calls: 0 is out of range" },
  { "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user a]\npassword = p\nsrtp = yes\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:7: [user a] srtp" },
  { "[sip]\ndomain = pbx.test\ntls-listen = 127.0.0.1:5061\ntls-key = k.pem\n[store]\npath = x\n",
    TD_CONFIG_ERROR_MISSING, "bad.conf:3: [sip] tls-listen needs tls-certificate and tls-key" },
  { "[sip]\ndomain = pbx.test\ntls-certificate = c.pem\n[store]\npath = x\n",
    TD_CONFIG_ERROR_MISSING, "bad.conf:3: [sip] tls-certificate, tls-key and tls-ca are for tls-listen" },
  { "[sip]\ndomain = pbx.test\nlisten = 127.0.0.1:5060\ntls-ca = ca.pem\n[store]\npath = x\n",
    TD_CONFIG_ERROR_MISSING, "bad.conf:4: [sip] tls-certificate, tls-key and tls-ca are for" },
  { "[sip]\ndomain = pbx.test\ntls-listen = pbx.test:5061\n[store]\npath = x\n",
    TD_CONFIG_ERROR_VALUE, "bad.conf:3: [sip] tls-listen: \"pbx.test\" is not an IP address" },
};

/* SRTP policies: [media] for everyone, a user's own over it; TLS files
 * relative to the file's folder. */
static void
test_srtp_tls (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_parse (
      "[sip]\ndomain = pbx.test\ntls-listen = [::1]:5061\ntls-certificate = tls/cert.pem\n"
      "tls-key = /etc/k.pem\ntls-ca = ca.pem\n[store]\npath = x\n[media]\nsrtp = mandatory\n"
      "[user a]\npassword = p\nsrtp = off\n[user b]\npassword = p\n",
      "t.conf", "/srv/pbx", &error);
  g_autoptr (TdConfig) d = td_config_parse ("[sip]\ndomain = pbx.test\n[store]\npath = x\n",
                                            "d.conf", NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpint (td_config_srtp_policy (c, "a"), ==, TD_SRTP_OFF);
  g_assert_cmpint (td_config_srtp_policy (c, "b"), ==, TD_SRTP_MANDATORY);
  g_assert_cmpint (td_config_srtp_policy (c, NULL), ==, TD_SRTP_MANDATORY);   /* a trunk */
  g_assert_cmpint (td_config_srtp_policy (d, "b"), ==, TD_SRTP_OPTIONAL);     /* the default */
  g_assert_cmpstr (c->tls_listen_host, ==, "::1");
  g_assert_cmpuint (c->tls_listen_port, ==, 5061);
  g_assert_cmpstr (c->tls_certificate, ==, "/srv/pbx/tls/cert.pem");
  g_assert_cmpstr (c->tls_key, ==, "/etc/k.pem");
  g_assert_cmpstr (c->tls_ca, ==, "/srv/pbx/ca.pem");
  g_assert_cmpuint (c->tls_key_line, ==, 5);
  g_assert_cmpuint (d->tls_listen_port, ==, 0);
}

static void
test_bad (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (TdConfig) c = td_config_parse (bad_cases[i].data, "bad.conf", NULL, &error);
    g_test_message ("case %u: %s", i, error ? error->message : "(no error)");
    g_assert_null (c);
    g_assert_error (error, TD_CONFIG_ERROR, (gint) bad_cases[i].code);
    g_assert_nonnull (strstr (error->message, bad_cases[i].expect));
  }
}

static void
test_missing_file (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_load ("/nonexistent/tandem.conf", &error);
  g_assert_null (c);
  g_assert_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "/nonexistent/tandem.conf"));
}

static void
test_sample_config (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_load (SAMPLE_CONFIG, &error);
  g_assert_no_error (error);
  g_assert_nonnull (td_config_lookup_user (c, "alice"));
  /* What baresip 1.0, linphone 5.1 and SIPp all answer. */
  g_assert_cmpuint (c->n_algorithms, ==, 1);
  g_assert_cmpint (c->algorithms[0], ==, TD_DIGEST_MD5);
  g_assert_cmpuint (c->max_contacts, >=, 1);
  g_assert_cmpuint (c->max_calls_per_user, >=, 1);
  /* The sample spells every key as it is spelt now. */
  g_assert_cmpuint (g_strv_length (c->warnings), ==, 0);
  g_assert_nonnull (td_config_plugin_value (c, "hold", "music", NULL));
  /* td_config_load() read this host's addresses: loopback at least. */
  g_assert_true (g_strv_contains ((const char *const *) c->local_addresses, "127.0.0.1"));
}

/* The debug summary of a Sofia transport dump keeps what a call-flow reader needs. */
static void
test_siplog_summary (void)
{
  g_autofree char *line = td_siplog_summarize (
      "recv 300 bytes from udp/[127.0.0.1]:5061 at 07:50:01.123456:\n"
      "   REGISTER sip:pbx.test SIP/2.0\n"
      "   Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\n"
      "   From: <sip:alice@pbx.test>;tag=abc\n"
      "   To: <sip:alice@pbx.test>\n"
      "   Call-ID: 1-2@127.0.0.1\n"
      "   CSeq: 1 REGISTER\n");
  g_assert_cmpstr (line, ==,
                   "recv 300 bytes from udp/[127.0.0.1]:5061: REGISTER | Call-ID 1-2@127.0.0.1"
                   " | CSeq 1 REGISTER | branch z9hG4bK-1 | from-tag abc | to-tag -");
}

/* Plugin keys in [user] groups are checked once the plugins are known. */
static void
test_user_keys (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_parse (
      "[sip]\ndomain = pbx.test\n[store]\npath = x\n[user bob]\npassword = b\n"
      "forward-busy = carol\nforwrd-no-answer = carol\n", "keys.conf", NULL, &error);
  g_autoptr (GHashTable) known = g_hash_table_new (g_str_hash, g_str_equal);

  g_assert_no_error (error);
  g_assert_cmpstr (td_user_get (td_config_lookup_user (c, "bob"), "forward-busy"), ==, "carol");
  g_hash_table_add (known, "forward-busy");
  g_assert_false (td_config_check_user_keys (c, known, &error));
  g_assert_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_UNKNOWN);
  g_assert_nonnull (strstr (error->message, "keys.conf:8: [user bob] unknown key \"forwrd-no-answer\""));
  g_clear_error (&error);
  g_hash_table_add (known, "forwrd-no-answer");
  g_assert_true (td_config_check_user_keys (c, known, &error));
  g_assert_no_error (error);
}

/* [NAME] groups: the settings of the plugin enabled as NAME, read with
 * their lines; paths relative to the file's folder; keys checked once the
 * plugins are known. */
static void
test_plugin_groups (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_parse (
      "[sip]\ndomain = pbx.test\n[store]\npath = x\n"
      "[hold]\nmusic = tunes/m.wav   # comment\n"
      "[forward]\nmax-diversions = 2\nmax-diversion = 3\n"
      "[plugins]\nenabled = forward;hold\n", "groups.conf", "/etc/tandem", &error);
  g_autoptr (GHashTable) known = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                        (GDestroyNotify) g_hash_table_unref);
  GHashTable *hold = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTable *forward = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *path = NULL;
  guint line = 99;

  g_assert_no_error (error);
  g_assert_cmpstr (td_config_plugin_value (c, "hold", "music", &line), ==, "tunes/m.wav");
  g_assert_cmpuint (line, ==, 6);
  path = td_config_plugin_path (c, "hold", "music", NULL);
  g_assert_cmpstr (path, ==, "/etc/tandem/tunes/m.wav");
  g_assert_cmpstr (td_config_plugin_value (c, "forward", "max-diversions", NULL), ==, "2");
  g_assert_null (td_config_plugin_value (c, "hold", "volume", &line));
  g_assert_cmpuint (line, ==, 0);
  g_assert_null (td_config_plugin_value (c, "waiting", "music", NULL));
  g_assert_null (td_config_plugin_path (c, "hold", "volume", NULL));

  g_hash_table_add (hold, "music");
  g_hash_table_add (forward, "max-diversions");
  g_hash_table_insert (known, "hold", hold);
  g_hash_table_insert (known, "forward", forward);
  g_assert_false (td_config_check_plugin_keys (c, known, &error));
  g_assert_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_UNKNOWN);
  g_assert_nonnull (strstr (error->message,
                            "groups.conf:9: [forward] unknown key \"max-diversion\""));
  g_clear_error (&error);
  g_hash_table_add (forward, "max-diversion");
  g_assert_true (td_config_check_plugin_keys (c, known, &error));
  g_assert_no_error (error);
  /* No plugin loaded reads any of it. */
  g_assert_false (td_config_check_plugin_keys (c, NULL, &error));
  g_assert_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_UNKNOWN);
}

/* An empty value is no file; an absolute one stays as it is. */
static void
test_plugin_paths (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = td_config_parse (
      "[sip]\ndomain = pbx.test\n[store]\npath = x\n[plugins]\nenabled = hold;forward\n"
      "[hold]\nmusic =\n[forward]\nlog = /var/log/f\n", "paths.conf", "/etc/tandem", &error);
  g_autofree char *abs = NULL;

  g_assert_no_error (error);
  g_assert_cmpstr (td_config_plugin_value (c, "hold", "music", NULL), ==, "");
  g_assert_null (td_config_plugin_path (c, "hold", "music", NULL));
  abs = td_config_plugin_path (c, "forward", "log", NULL);
  g_assert_cmpstr (abs, ==, "/var/log/f");
}

/* The old spellings of keys that moved to a plugin's group still work,
 * with a warning naming file, line and the new spelling. */
static void
test_moved_keys (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = NULL;
  guint line = 0;

  c = td_config_parse ("[sip]\ndomain = pbx.test\n[store]\npath = x\n"
                       "[media]\nhold-music = tunes/m.wav\n[calls]\nmax-diversions = 1\n"
                       "[plugins]\nenabled = forward;hold\n", "old.conf", "/etc/tandem", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (c->warnings), ==, 2);
  g_assert_cmpstr (c->warnings[0], ==,
                   "old.conf:6: [media] hold-music is deprecated: write it as [hold] music");
  g_assert_cmpstr (c->warnings[1], ==, "old.conf:8: [calls] max-diversions is deprecated: "
                                       "write it as [forward] max-diversions");
  g_assert_cmpstr (td_config_plugin_value (c, "hold", "music", &line), ==, "tunes/m.wav");
  g_assert_cmpuint (line, ==, 6);
  g_assert_cmpstr (td_config_plugin_value (c, "forward", "max-diversions", NULL), ==, "1");
}

/* As before, they are unused when their plugin is not enabled: no error. */
static void
test_moved_keys_unused (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) c = NULL;

  c = td_config_parse ("[sip]\ndomain = pbx.test\n[store]\npath = x\n"
                       "[media]\nhold-music = tunes/m.wav\n", "old.conf", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (c->warnings), ==, 1);
  g_assert_cmpstr (c->warnings[0], ==, "old.conf:6: [media] hold-music is deprecated (now "
                                       "[hold] music), and unused: plugin hold is not enabled");
  g_assert_null (td_config_plugin_value (c, "hold", "music", NULL));
  g_assert_true (td_config_check_plugin_keys (c, NULL, &error));
}

/* A reload keeps a restart-only key's running value, or its absence. */
static void
test_keep_plugin_value (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) running = td_config_parse (
      "[sip]\ndomain = pbx.test\n[store]\npath = x\n[plugins]\nenabled = hold\n"
      "[hold]\nmusic = old.wav\n", "r.conf", NULL, &error);
  g_autoptr (TdConfig) fresh = td_config_parse (
      "[sip]\ndomain = pbx.test\n[store]\npath = x\n[plugins]\nenabled = hold\n",
      "r.conf", NULL, &error);
  guint line = 0;

  g_assert_no_error (error);
  g_assert_null (td_config_plugin_value (fresh, "hold", "music", NULL));
  td_config_keep_plugin_value (fresh, running, "hold", "music");
  g_assert_cmpstr (td_config_plugin_value (fresh, "hold", "music", &line), ==, "old.wav");
  g_assert_cmpuint (line, ==, 8);
  td_config_keep_plugin_value (running, fresh, "hold", "volume");
  g_assert_null (td_config_plugin_value (running, "hold", "volume", NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/good", test_good);
  g_test_add_func ("/config/defaults", test_defaults);
  g_test_add_func ("/config/user-digest-algorithms", test_user_digest_algorithms);
  g_test_add_func ("/config/ipv6-listen", test_ipv6_listen);
  g_test_add_func ("/config/bad", test_bad);
  g_test_add_func ("/config/srtp-tls", test_srtp_tls);
  g_test_add_func ("/config/missing-file", test_missing_file);
  g_test_add_func ("/config/sample", test_sample_config);
  g_test_add_func ("/config/user-keys", test_user_keys);
  g_test_add_func ("/config/plugin-groups", test_plugin_groups);
  g_test_add_func ("/config/plugin-paths", test_plugin_paths);
  g_test_add_func ("/config/moved-keys", test_moved_keys);
  g_test_add_func ("/config/moved-keys-unused", test_moved_keys_unused);
  g_test_add_func ("/config/keep-plugin-value", test_keep_plugin_value);
  g_test_add_func ("/siplog/summary", test_siplog_summary);
  return g_test_run ();
}
