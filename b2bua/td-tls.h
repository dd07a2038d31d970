/* TdTls: the certificate and key of [sip] tls-listen, checked and handed to
 * Sofia-SIP's TLS transport.
 *
 * Sofia reads one directory (TPTAG_CERTIFICATE): agent.pem holding the key
 * and the certificate chain, cafile.pem the CAs that verify peers. Given a
 * broken file it starts anyway and fails every handshake, so tandem checks
 * the files itself (OpenSSL: readable, PEM, the key matches the
 * certificate) and builds that directory privately (0700). */
#pragma once

#include <glib.h>

#include "td-config.h"

G_BEGIN_DECLS

typedef struct _TdTls TdTls;

/* Whether the configuration's TLS files are usable; FALSE with an error
 * naming the file and the configuration line. TRUE without tls-listen. */
gboolean td_tls_check (const TdConfig *config, GError **error);

/* Checks, then writes Sofia's directory; NULL with an error (or without
 * tls-listen: NULL and no error). */
TdTls *td_tls_new (const TdConfig *config, GError **error);
const char *td_tls_dir (const TdTls *tls);
/* Removes the directory (the key's copy with it). */
void td_tls_free (TdTls *tls);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdTls, td_tls_free)

G_END_DECLS
