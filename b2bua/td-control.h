/* TdControl: the operator's control socket ([control] socket), a Unix
 * stream socket speaking JSON lines (README.md, "Control socket and
 * tandemctl"): one request object a line, one response object a line.
 *
 * It runs on the GLib main context of the SIP thread with GIO async I/O,
 * so a slow or hostile client never blocks SIP; each client is bounded
 * (line length, unsent responses) and so is their number. Commands are
 * entries of a table: td_control_add_command() (the core's, plugins'). */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "td-call.h"
#include "td-config.h"

G_BEGIN_DECLS

typedef struct _TdControl TdControl;

#define TD_CONTROL_MAX_LINE (64 * 1024)      /* request bytes, newline excluded */
#define TD_CONTROL_MAX_CLIENTS 32
#define TD_CONTROL_MAX_UNSENT (256 * 1024)   /* response bytes a client has not read
                                              * when it asks for more */

/* A command: read `request` (the whole object, "cmd" included), add the
 * members of a successful response to `reply` (an object under
 * construction, after "ok" and "req"), or fail with a message for the
 * operator. */
typedef gboolean (*TdControlCommand) (JsonObject *request, JsonBuilder *reply,
                                      gpointer user_data, GError **error);

/* Listen on config->control_socket (NULL: no socket, and NULL returned
 * without error). A stale socket file is replaced; a live one (another
 * tandem) or any other file is an error naming the configuration line.
 * When the path is the default (not set in the file), failing to listen
 * is only a warning. The core's commands calls and hangup are in. */
TdControl *td_control_new (const TdConfig *config, TdCallContext *calls, GError **error);
/* Stops listening, closes every client and removes the socket file. */
void td_control_free (TdControl *control);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdControl, td_control_free)

/* Adds (or replaces) command `name`. */
void td_control_add_command (TdControl *control, const char *name, TdControlCommand command,
                             gpointer user_data);

/* The request member `key` as a string: FALSE with a message naming it
 * if it is absent or not a string. */
gboolean td_control_get_string (JsonObject *request, const char *key, const char **out,
                                GError **error);

G_END_DECLS
