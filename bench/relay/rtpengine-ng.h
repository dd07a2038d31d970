/* A minimal client of rtpengine's ng control protocol (bencode over UDP),
 * for relay-bench --rtpengine: the peer's relay under the same load as
 * tandem's. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _NgClient NgClient;

NgClient *ng_client_new (const char *address, guint16 port, GError **error);
void ng_client_free (NgClient *ng);

/* One call: A's phone on a_port, B's on b_port (127.0.0.1, PCMU). On
 * success *to_a is the rtpengine port A sends to, *to_b the one B sends to. */
gboolean ng_call_new (NgClient *ng, const char *call_id, guint16 a_port, guint16 b_port,
                      guint16 *to_a, guint16 *to_b, GError **error);
gboolean ng_call_delete (NgClient *ng, const char *call_id, GError **error);

G_END_DECLS
