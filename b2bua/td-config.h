/* TdConfig: tandem's configuration, read from a GLib-key-file-style file.
 *
 * Syntax: `[group]` headers, `key = value` lines, comment lines starting with
 * '#' or ';', and trailing comments after whitespace + '#'. Every error names
 * the file and line (and the group and key), so an operator can fix it without
 * reading code. Unknown groups and unknown keys are errors: a typo must not
 * silently fall back to a default. */
#pragma once

#include <glib.h>
#include "td-digest.h"
#include "td-relay.h"
#include "td-sdes.h"

G_BEGIN_DECLS

#define TD_CONFIG_ERROR (td_config_error_quark ())
GQuark td_config_error_quark (void);

typedef enum {
  TD_CONFIG_ERROR_IO,
  TD_CONFIG_ERROR_SYNTAX,
  TD_CONFIG_ERROR_UNKNOWN,    /* unknown group or key */
  TD_CONFIG_ERROR_VALUE,      /* a value that does not parse or is out of range */
  TD_CONFIG_ERROR_MISSING,    /* a required key is absent */
} TdConfigError;

typedef struct {
  char *name;       /* SIP user part, e.g. "alice" */
  char *password;
  char *display_name;  /* may be NULL */
  /* digest-algorithms: what this user is challenged with (and may answer
   * with); n_algorithms 0 = [auth] algorithms. */
  TdDigestAlgorithm algorithms[2];
  guint n_algorithms;
  /* srtp: the SRTP policy of the legs toward this user's phones; -1 = [media] srtp. */
  int srtp;
  /* max-calls: calls it may have under way as caller (a trunk, a gateway);
   * 0 = [calls] max-calls-per-user. */
  guint max_calls;
  guint line;       /* where its group starts, for messages */
  /* Keys read by plugins (forward-busy = carol, ...): key → value. Which keys
   * exist is known only once the plugins are loaded: td_config_check_user_keys(). */
  GHashTable *settings;
  GHashTable *setting_lines;   /* key → GUINT_TO_POINTER (line) */
} TdUser;

typedef struct {
  gatomicrefcount ref;
  char *path;             /* the file it came from ("<data>" for strings) */
  char *dir;              /* relative paths in it are relative to this; NULL: as written */
  /* What is wrong with the file but no error (old spellings), naming file
   * and line; td_config_load() logs them as warnings. NULL-terminated. */
  char **warnings;

  /* [sip] */
  char *listen_host;      /* "127.0.0.1", "::1", "0.0.0.0" */
  guint16 listen_port;
  char *domain;           /* also the digest realm */
  char *user_agent;       /* Server/User-Agent header value */
  /* Not from the file: this host's addresses when td_config_load() ran (at
   * start and on SIGHUP), what a wildcard listen (0.0.0.0, ::) answers on.
   * NULL-terminated; empty from td_config_parse(). */
  char **local_addresses;
  guint overload_lag;     /* ms the SIP thread may fall behind before new INVITEs and
                           * REGISTERs get 503; 0 = never shed */
  guint overload_retry_after;  /* seconds, the 503's Retry-After */
  guint transaction_lifetime;  /* seconds: 64*T1 (RFC 3261 timers B, F, H, J) */
  /* SIP over TLS (td-tls.c): a listener when tls_listen_port != 0, with the
   * PEM files resolved against the config file's folder; tls_ca (may be
   * NULL) verifies the servers tandem connects to. *_line: where each was
   * set, for the errors that name them. */
  char *tls_listen_host;
  guint16 tls_listen_port;
  char *tls_certificate, *tls_key, *tls_ca;
  guint tls_listen_line, tls_certificate_line, tls_key_line, tls_ca_line;

  /* [auth] */
  TdDigestAlgorithm algorithms[2];  /* offered order */
  guint n_algorithms;
  guint nonce_lifetime;   /* seconds */

  /* [registrar] */
  guint min_expires, max_expires, default_expires;  /* seconds */
  guint max_contacts;     /* bindings per address-of-record */

  /* [media] */
  char *media_address;
  guint16 port_min, port_max;
  guint relay_threads;    /* RTP relay threads (media ports are spread over them) */
  TdRelayLatching latching;  /* whose RTP a relay port accepts (td-relay.h) */
  TdSrtpPolicy srtp;         /* SRTP toward parties without their own [user] srtp (td-sdes.h) */

  /* [store] */
  char *store_path;       /* resolved against the config file's folder */
  gboolean store_full_sync;  /* fsync every commit (survives power loss, slower) */
  guint store_batch_ms;   /* how long a write waits for others to share its transaction */

  /* [calls] */
  guint no_answer_timeout;  /* seconds */
  guint rtp_timeout;        /* seconds without RTP before an answered call is ended; 0 = never */
  guint session_timer;      /* RFC 4028 Session-Expires offered/accepted; 0 = off */
  guint max_calls_per_user; /* calls a user may have started and not yet ended */

  /* [control] */
  char *control_socket;     /* the operator's Unix socket (td-control.c), resolved
                             * against the config file's folder; NULL: none */
  guint control_socket_line;   /* where it was set; 0: the default */

  /* [log] */
  GLogLevelFlags log_level; /* most verbose level shown */

  /* [plugins] */
  char **plugins;         /* enabled plugin names, in order; NULL-terminated */
  char *plugin_dir;       /* [plugins] path, or NULL: found next to the binary (td-plugins.c) */

  GHashTable *users;      /* name → TdUser* */
  /* [NAME] groups of enabled plugins (td_config_plugin_value): name → its
   * settings (td-config.c). Which keys exist is known only once the plugins
   * are loaded: td_config_check_plugin_keys(). */
  GHashTable *plugin_groups;
} TdConfig;

/* [control] socket when the file does not set it. */
#define TD_CONFIG_DEFAULT_CONTROL_SOCKET "/run/tandem/control.sock"

TdConfig *td_config_load (const char *path, GError **error);
/* Parse `data` as if read from `name` (relative paths resolve against `base_dir`). */
TdConfig *td_config_parse (const char *data, const char *name,
                           const char *base_dir, GError **error);
TdConfig *td_config_ref (TdConfig *config);
void td_config_unref (TdConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdConfig, td_config_unref)

const TdUser *td_config_lookup_user (const TdConfig *config, const char *name);

/* The SRTP policy of the legs toward `user_name`'s phones (NULL: not a user
 * of the domain, e.g. a trunk): its [user] srtp, else [media] srtp. */
guint td_config_max_calls (const TdConfig *config, const TdUser *user);
TdSrtpPolicy td_config_srtp_policy (const TdConfig *config, const char *user_name);

/* A plugin-read setting of a user, or NULL. */
const char *td_user_get (const TdUser *user, const char *key);

/* Every [user] key must be one the enabled plugins read (`known`: a set of
 * key strings); else an error naming file, line, user and key. */
gboolean td_config_check_user_keys (const TdConfig *config, GHashTable *known, GError **error);

/* A plugin's own settings: `[hold] music = FILE` is ("hold", "music").
 *
 * A group that is no core group is the group of the plugin of that name,
 * which must be in [plugins] enabled (else an error naming its line). Two
 * keys that were core keys before their features became plugins are still
 * read in their old places, with a warning naming file and line: [media]
 * hold-music as [hold] music, [calls] max-diversions as [forward]
 * max-diversions (ignored, as before, when that plugin is not enabled). */

/* The value of `key` in [plugin], or NULL; *line (may be NULL): where it was set. */
const char *td_config_plugin_value (const TdConfig *config, const char *plugin, const char *key,
                                    guint *line);
/* The same for a file name, relative to the configuration file's folder;
 * NULL if unset or empty. */
char *td_config_plugin_path (const TdConfig *config, const char *plugin, const char *key,
                             guint *line);
/* Every key of a plugin group must be one its plugin reads (`known`: plugin
 * name → a table whose keys are its key names); else an error naming file,
 * line, group and key. */
gboolean td_config_check_plugin_keys (const TdConfig *config, GHashTable *known, GError **error);
/* Reload: `fresh` takes `running`'s value of the key (or its absence). */
void td_config_keep_plugin_value (TdConfig *fresh, const TdConfig *running, const char *plugin,
                                  const char *key);

G_END_DECLS
