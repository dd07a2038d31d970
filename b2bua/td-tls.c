/* TdTls: see td-tls.h. */
#define G_LOG_DOMAIN "tandem"

#include "td-tls.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>
#include <unistd.h>

struct _TdTls {
  char *dir;
};

/* "FILE ([sip] KEY, CONFIG:LINE)": how errors name a file. */
static char *
where (const TdConfig *c, const char *file, const char *key, guint line)
{
  return g_strdup_printf ("%s ([sip] %s, %s:%u)", file, key, c->path, line);
}

/* OpenSSL's first queued reason, the queue cleared. */
static char *
openssl_reason (void)
{
  char text[256] = "no reason given";
  unsigned long e = ERR_get_error ();

  if (e)
    ERR_error_string_n (e, text, sizeof text);
  ERR_clear_error ();
  return g_strdup (text);
}

static gboolean
readable (const TdConfig *c, const char *file, const char *key, guint line, GError **error)
{
  if (access (file, R_OK) == 0)
    return TRUE;
  g_autofree char *w = where (c, file, key, line);
  g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_IO, "%s: %s", w, g_strerror (errno));
  return FALSE;
}

static gboolean
ssl_failed (const TdConfig *c, const char *file, const char *key, guint line, const char *what,
            GError **error)
{
  g_autofree char *w = where (c, file, key, line);
  g_autofree char *why = openssl_reason ();
  g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE, "%s: %s (%s)", w, what, why);
  return FALSE;
}

gboolean
td_tls_check (const TdConfig *c, GError **error)
{
  SSL_CTX *ctx;
  gboolean ok = FALSE;

  if (!c->tls_listen_port)
    return TRUE;
  if (!readable (c, c->tls_certificate, "tls-certificate", c->tls_certificate_line, error) ||
      !readable (c, c->tls_key, "tls-key", c->tls_key_line, error) ||
      (c->tls_ca && !readable (c, c->tls_ca, "tls-ca", c->tls_ca_line, error)))
    return FALSE;
  ctx = SSL_CTX_new (TLS_method ());
  if (!ctx) {
    g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_IO, "OpenSSL: cannot make a context");
    return FALSE;
  }
  /* The key alone first (with a certificate loaded, OpenSSL would call a
   * mismatch unreadable), then the pair. */
  if (SSL_CTX_use_PrivateKey_file (ctx, c->tls_key, SSL_FILETYPE_PEM) != 1)
    ssl_failed (c, c->tls_key, "tls-key", c->tls_key_line,
                "not a PEM private key (a passphrase-protected one is not supported)", error);
  else if (SSL_CTX_use_certificate_chain_file (ctx, c->tls_certificate) != 1)
    ssl_failed (c, c->tls_certificate, "tls-certificate", c->tls_certificate_line,
                "not a PEM certificate", error);
  else if (SSL_CTX_check_private_key (ctx) != 1)
    ssl_failed (c, c->tls_key, "tls-key", c->tls_key_line,
                "this key does not match the certificate of tls-certificate", error);
  else if (c->tls_ca && SSL_CTX_load_verify_locations (ctx, c->tls_ca, NULL) != 1)
    ssl_failed (c, c->tls_ca, "tls-ca", c->tls_ca_line, "no PEM certificates in it", error);
  else
    ok = TRUE;
  SSL_CTX_free (ctx);
  return ok;
}

/* Frees a file's text, wiped first: it may hold the key. */
static void
free_wiped (gpointer data)
{
  GBytes *b = data;
  gsize len;
  gpointer text = (gpointer) g_bytes_get_data (b, &len);

  explicit_bzero (text, len);
  g_bytes_unref (b);
}

/* @name in @dir with the contents of @files, in order, mode 0600. Every
 * buffer that held them is wiped; the joined one is sized once, so no
 * realloc leaves a copy of the key in freed memory. */
static gboolean
write_joined (const char *dir, const char *name, const char *const *files, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (free_wiped);
  g_autoptr (GString) all = NULL;
  gsize total = 0;
  gboolean ok;

  for (guint i = 0; files[i]; i++) {
    char *text;
    gsize len;

    if (!g_file_get_contents (files[i], &text, &len, error))
      return FALSE;
    g_ptr_array_add (texts, g_bytes_new_take (text, len));
    total += len + 1;
  }
  all = g_string_sized_new (total + 1);
  for (guint i = 0; i < texts->len; i++) {
    gsize len;
    const char *text = g_bytes_get_data (g_ptr_array_index (texts, i), &len);

    g_string_append_len (all, text, (gssize) len);
    if (len && text[len - 1] != '\n')
      g_string_append_c (all, '\n');
  }
  ok = g_file_set_contents_full (path, all->str, (gssize) all->len,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
  explicit_bzero (all->str, all->len);
  return ok;
}

TdTls *
td_tls_new (const TdConfig *c, GError **error)
{
  g_autoptr (TdTls) tls = NULL;

  if (!c->tls_listen_port || !td_tls_check (c, error))
    return NULL;
  tls = g_new0 (TdTls, 1);
  /* g_dir_make_tmp makes it 0700: only tandem's user reads the key's copy. */
  if (!(tls->dir = g_dir_make_tmp ("tandem-tls-XXXXXX", error)))
    return NULL;
  if (!write_joined (tls->dir, "agent.pem",
                     (const char *const[]) { c->tls_key, c->tls_certificate, NULL }, error))
    return NULL;
  if (c->tls_ca &&
      !write_joined (tls->dir, "cafile.pem", (const char *const[]) { c->tls_ca, NULL }, error))
    return NULL;
  return g_steal_pointer (&tls);
}

const char *
td_tls_dir (const TdTls *tls)
{
  return tls->dir;
}

void
td_tls_free (TdTls *tls)
{
  if (!tls)
    return;
  if (tls->dir) {
    g_autoptr (GDir) d = g_dir_open (tls->dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *path = g_build_filename (tls->dir, name, NULL);
      g_unlink (path);
    }
    g_rmdir (tls->dir);
    g_free (tls->dir);
  }
  g_free (tls);
}
