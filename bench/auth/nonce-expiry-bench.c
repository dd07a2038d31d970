/* What forgetting expired digest nonces costs the SIP thread (issue 13).
 *
 * Fills a TdAuth with N nonces used once each, issued evenly over one
 * lifetime (300 s, the sample's nonce-lifetime), as N calls in 300 s would
 * leave them, then runs the daemon's housekeeping expiry five times, 5 s
 * apart, each pass forgetting 1/60 of them, and prints how long each took.
 *   nonce-expiry-bench [N]   (default 300000: 1,000 calls/s) */
#include "td-auth.h"
#include "td-digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIFETIME_S 300
#define REALM "pbx.test"
#define URI "sip:pbx.test"

/* A quoted parameter of a challenge. */
static char *
param (const char *header, const char *name)
{
  g_autofree char *key = g_strdup_printf ("%s=\"", name);
  const char *p = strstr (header, key);

  if (!p)
    return NULL;
  p += strlen (key);
  return g_strndup (p, strcspn (p, "\""));
}

/* Challenge at `now`, answer as a phone would, verify. */
static gboolean
use_one_nonce (TdAuth *auth, gint64 now)
{
  g_auto (GStrv) headers = td_auth_challenge (auth, FALSE, now);
  g_autofree char *nonce = param (headers[0], "nonce");
  g_autofree char *opaque = param (headers[0], "opaque");
  g_autofree char *ha1 = td_digest_ha1 (TD_DIGEST_MD5, "u", REALM, "p");
  g_autofree char *response = td_digest_response (TD_DIGEST_MD5, ha1, nonce, "00000001", "c",
                                                  "auth", "INVITE", URI);
  TdDigestCredentials cred = {
    .username = "u", .realm = REALM, .nonce = nonce, .uri = URI, .algorithm = "MD5",
    .qop = "auth", .nc = "00000001", .cnonce = "c", .opaque = opaque, .response = response,
  };

  return td_auth_verify (auth, &cred, "INVITE", "p", now) == TD_AUTH_OK;
}

int
main (int argc, char **argv)
{
  static const TdDigestAlgorithm md5[] = { TD_DIGEST_MD5 };
  guint n = argc > 1 ? (guint) strtoul (argv[1], NULL, 10) : 300000;
  g_autoptr (TdAuth) auth = td_auth_new (REALM, md5, 1, LIFETIME_S);
  gint64 t0 = g_get_monotonic_time ();
  gint64 lifetime = (gint64) LIFETIME_S * G_USEC_PER_SEC;
  gint64 now = t0 + lifetime;

  for (guint i = 0; i < n; i++)
    if (!use_one_nonce (auth, t0 + lifetime * i / MAX (n, 1))) {
      fprintf (stderr, "nonce %u was refused\n", i);
      return 1;
    }
  printf ("%u nonces in use\n", td_auth_nonce_count (auth));
  for (int pass = 0; pass < 5; pass++, now += 5 * G_USEC_PER_SEC) {
    gint64 start = g_get_monotonic_time ();
    td_auth_expire (auth, now);
    printf ("pass %d: %.2f ms, %u left\n", pass, (g_get_monotonic_time () - start) / 1000.0,
            td_auth_nonce_count (auth));
  }
  return 0;
}
