/* TdConfig: parse and validate tandem's configuration file. */
#define G_LOG_DOMAIN "tandem-config"

#include "td-config.h"
#include "td-build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

G_DEFINE_QUARK (td-config-error-quark, td_config_error)

/* A plugin's [NAME] group. */
typedef struct {
  char *name;
  guint line;           /* its header; 0 if only moved keys (below) made it */
  GHashTable *values;   /* key → value */
  GHashTable *lines;    /* key → GUINT_TO_POINTER (line) */
} PluginGroup;

/* Plugin keys a core group also takes, as their plugin's key. Some were the
 * core's before their features became plugins: kept so that an operator's
 * configuration (kept over upgrades, never overwritten) still starts the
 * daemon, with a warning naming the file, line and new spelling. Others are
 * spelled where operators look for them (the default ringback is a
 * [media] setting) and are not deprecated. Either way a key whose plugin is
 * not enabled is reported as unused. */
typedef struct {
  const char *group, *key;
  const char *plugin, *plugin_key;
  gboolean deprecated;
} MovedKey;

static const MovedKey moved_keys[] = {
  { "media", "hold-music", "hold", "music", TRUE },
  { "calls", "max-diversions", "forward", "max-diversions", TRUE },
  { "media", "ringback", "ringback", "tune", FALSE },
  { "media", "ringback-mode", "ringback", "mode", FALSE },
  { "media", "ringback-follows", "ringback", "follows", FALSE },
};

typedef struct {
  const MovedKey *moved;
  guint line;
} MovedUse;

/* Parsing state: where we are, for messages that name the spot. */
typedef struct {
  TdConfig *config;
  const char *base_dir;
  guint line;
  const char *group;     /* current group header, e.g. "sip" or "user alice" */
  TdUser *user;          /* set inside a [user NAME] group */
  PluginGroup *plugin;   /* set inside a plugin's group */
  GHashTable *seen;      /* "group\nkey" → line, to refuse duplicates */
  GArray *moved;         /* MovedUse: old spellings met, warned about at the end */
} Parser;

typedef gboolean (*KeySetter) (Parser *p, const char *value, GError **error);

typedef struct {
  const char *group;
  const char *key;
  KeySetter set;
} KeySpec;

static gboolean G_GNUC_PRINTF (4, 5)
fail (Parser *p, GError **error, TdConfigError code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, TD_CONFIG_ERROR, code, "%s:%u: %s", p->config->path, p->line, msg);
  return FALSE;
}

/* Relative paths in the file are relative to the file's folder. */
static char *
resolve_path (Parser *p, const char *value)
{
  if (g_path_is_absolute (value) || !p->base_dir)
    return g_strdup (value);
  return g_build_filename (p->base_dir, value, NULL);
}

static gboolean known_group (const char *group);

static gboolean
valid_plugin_name (const char *s)
{
  if (!*s)
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isalnum (*s) && *s != '-' && *s != '_')
      return FALSE;
  return TRUE;
}

/* ---- value parsers ------------------------------------------------------ */

static gboolean
parse_uint (Parser *p, const char *key, const char *value, guint min, guint max,
            guint *out, GError **error)
{
  char *end = NULL;
  errno = 0;
  guint64 v = g_ascii_strtoull (value, &end, 10);
  if (*value == '\0' || *end != '\0' || errno != 0 || !g_ascii_isdigit (*value))
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[%s] %s: \"%s\" is not a whole number", p->group, key, value);
  if (v < min || v > max)
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[%s] %s: %s is out of range (%u–%u)", p->group, key, value, min, max);
  *out = (guint) v;
  return TRUE;
}

static gboolean
parse_port (Parser *p, const char *key, const char *value, guint16 *out, GError **error)
{
  guint v;
  if (!parse_uint (p, key, value, 1, 65535, &v, error))
    return FALSE;
  *out = (guint16) v;
  return TRUE;
}

/* "IP:PORT" or "[IPv6]:PORT" into *host (replaced) and *port_out. */
static gboolean
parse_listen (Parser *p, const char *key, const char *value, char **host_out,
              guint16 *port_out, GError **error)
{
  g_autofree char *host = NULL;
  const char *port;

  if (value[0] == '[') {           /* [v6addr]:port */
    const char *close = strchr (value, ']');
    if (!close || close[1] != ':')
      return fail (p, error, TD_CONFIG_ERROR_VALUE,
                   "[sip] %s: \"%s\" is not [IPv6]:port", key, value);
    host = g_strndup (value + 1, close - value - 1);
    port = close + 2;
  } else {
    const char *colon = strrchr (value, ':');
    if (!colon || strchr (value, ':') != colon)
      return fail (p, error, TD_CONFIG_ERROR_VALUE,
                   "[sip] %s: \"%s\" is not host:port (e.g. 127.0.0.1:5060)", key, value);
    host = g_strndup (value, colon - value);
    port = colon + 1;
  }
  if (!g_hostname_is_ip_address (host))
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[sip] %s: \"%s\" is not an IP address", key, host);
  if (!parse_port (p, key, port, port_out, error))
    return FALSE;
  g_free (*host_out);
  *host_out = g_steal_pointer (&host);
  return TRUE;
}

static gboolean
set_sip_listen (Parser *p, const char *value, GError **error)
{
  return parse_listen (p, "listen", value, &p->config->listen_host, &p->config->listen_port, error);
}

static gboolean
set_sip_tls_listen (Parser *p, const char *value, GError **error)
{
  p->config->tls_listen_line = p->line;
  return parse_listen (p, "tls-listen", value, &p->config->tls_listen_host,
                       &p->config->tls_listen_port, error);
}

/* A PEM file of [sip]: its path (resolved), and the line, for errors. */
static gboolean
set_tls_file (Parser *p, const char *value, char **path, guint *line, GError **error)
{
  if (!*value)
    return fail (p, error, TD_CONFIG_ERROR_VALUE, "[sip] needs a file name here");
  g_free (*path);
  *path = resolve_path (p, value);
  *line = p->line;
  return TRUE;
}

static gboolean
set_sip_tls_certificate (Parser *p, const char *value, GError **error)
{
  return set_tls_file (p, value, &p->config->tls_certificate, &p->config->tls_certificate_line,
                       error);
}

static gboolean
set_sip_tls_key (Parser *p, const char *value, GError **error)
{
  return set_tls_file (p, value, &p->config->tls_key, &p->config->tls_key_line, error);
}

static gboolean
set_sip_tls_ca (Parser *p, const char *value, GError **error)
{
  return set_tls_file (p, value, &p->config->tls_ca, &p->config->tls_ca_line, error);
}

static gboolean
valid_domain (const char *s)
{
  if (!*s)
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isalnum (*s) && *s != '.' && *s != '-')
      return FALSE;
  return TRUE;
}

static gboolean
set_sip_domain (Parser *p, const char *value, GError **error)
{
  if (!valid_domain (value) && !g_hostname_is_ip_address (value))
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[sip] domain: \"%s\" is not a host name or IP address", value);
  g_free (p->config->domain);
  p->config->domain = g_strdup (value);
  return TRUE;
}

static gboolean
set_sip_user_agent (Parser *p, const char *value, GError **error)
{
  g_free (p->config->user_agent);
  p->config->user_agent = g_strdup (value);
  return TRUE;
}

static gboolean
set_sip_overload_lag (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "overload-lag", value, 0, 60000, &p->config->overload_lag, error);
}

static gboolean
set_sip_overload_retry_after (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "overload-retry-after", value, 1, 3600,
                     &p->config->overload_retry_after, error);
}

/* RFC 3261's 64*T1: how long tandem waits for any answer to its own request
 * (Timers B, F) and how long it remembers a finished one to absorb
 * retransmissions (H, J). Below 4 s a slow first answer would fail calls. */
static gboolean
set_sip_transaction_lifetime (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "transaction-lifetime", value, 4, 32,
                     &p->config->transaction_lifetime, error);
}

/* An algorithm list ("MD5;SHA-256"), preferred first, for `key` of the
 * current group ([auth] algorithms, [user NAME] digest-algorithms). */
static gboolean
parse_algorithms (Parser *p, const char *key, const char *value,
                  TdDigestAlgorithm out[2], guint *n_out, GError **error)
{
  g_auto (GStrv) names = g_strsplit_set (value, ";,", -1);
  guint n = 0;

  for (guint i = 0; names[i]; i++) {
    const char *name = g_strstrip (names[i]);
    TdDigestAlgorithm alg;
    if (!*name)
      continue;
    if (!td_digest_algorithm_parse (name, &alg))
      return fail (p, error, TD_CONFIG_ERROR_VALUE,
                   "[%s] %s: unknown algorithm \"%s\" (use MD5, SHA-256)", p->group, key, name);
    for (guint j = 0; j < n; j++)
      if (out[j] == alg)
        return fail (p, error, TD_CONFIG_ERROR_VALUE,
                     "[%s] %s: \"%s\" is listed twice", p->group, key, name);
    out[n++] = alg;
  }
  if (n == 0)
    return fail (p, error, TD_CONFIG_ERROR_VALUE, "[%s] %s: empty list", p->group, key);
  *n_out = n;
  return TRUE;
}

static gboolean
set_auth_algorithms (Parser *p, const char *value, GError **error)
{
  return parse_algorithms (p, "algorithms", value, p->config->algorithms,
                           &p->config->n_algorithms, error);
}

static gboolean
set_auth_nonce_lifetime (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "nonce-lifetime", value, 1, 86400, &p->config->nonce_lifetime, error);
}

static gboolean
set_reg_min (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "min-expires", value, 1, 86400, &p->config->min_expires, error);
}

static gboolean
set_reg_max (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "max-expires", value, 1, 604800, &p->config->max_expires, error);
}

static gboolean
set_reg_default (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "default-expires", value, 1, 604800, &p->config->default_expires, error);
}

static gboolean
set_reg_max_contacts (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "max-contacts", value, 1, 1000, &p->config->max_contacts, error);
}

static gboolean
set_media_address (Parser *p, const char *value, GError **error)
{
  if (!g_hostname_is_ip_address (value))
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[media] address: \"%s\" is not an IP address", value);
  g_free (p->config->media_address);
  p->config->media_address = g_strdup (value);
  return TRUE;
}

static gboolean
set_media_ports (Parser *p, const char *value, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (value, "-", 2);
  guint16 lo, hi;

  if (g_strv_length (parts) != 2)
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[media] ports: \"%s\" is not a range like 30000-39999", value);
  if (!parse_port (p, "ports", g_strstrip (parts[0]), &lo, error) ||
      !parse_port (p, "ports", g_strstrip (parts[1]), &hi, error))
    return FALSE;
  /* RTP on even ports, RTCP on the next odd one: a range needs one pair. */
  if (hi < lo + 1)
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[media] ports: %u-%u holds no RTP/RTCP pair", lo, hi);
  p->config->port_min = lo;
  p->config->port_max = hi;
  return TRUE;
}

static gboolean
set_media_relay_threads (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "relay-threads", value, 1, 64, &p->config->relay_threads, error);
}

static gboolean
set_media_latching (Parser *p, const char *value, GError **error)
{
  if (!td_relay_latching_from_string (value, &p->config->latching))
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[media] latching: \"%s\" is not prefer-sdp, sdp-only or first-packet", value);
  return TRUE;
}

static gboolean
parse_srtp (Parser *p, const char *group, const char *value, TdSrtpPolicy *out, GError **error)
{
  if (!td_srtp_policy_from_string (value, out))
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[%s] srtp: \"%s\" is not off, optional or mandatory", group, value);
  return TRUE;
}

static gboolean
set_media_srtp (Parser *p, const char *value, GError **error)
{
  return parse_srtp (p, "media", value, &p->config->srtp, error);
}

static gboolean
set_store_path (Parser *p, const char *value, GError **error)
{
  g_free (p->config->store_path);
  p->config->store_path = resolve_path (p, value);
  return TRUE;
}

static gboolean
set_store_batch (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "batch-ms", value, 0, 1000, &p->config->store_batch_ms, error);
}

static gboolean
set_store_sync (Parser *p, const char *value, GError **error)
{
  if (g_ascii_strcasecmp (value, "normal") == 0)
    p->config->store_full_sync = FALSE;
  else if (g_ascii_strcasecmp (value, "full") == 0)
    p->config->store_full_sync = TRUE;
  else
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[store] synchronous: \"%s\" is neither normal nor full", value);
  return TRUE;
}

static gboolean
set_calls_no_answer (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "no-answer-timeout", value, 1, 3600,
                     &p->config->no_answer_timeout, error);
}

static gboolean
set_calls_rtp_timeout (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "rtp-timeout", value, 0, 86400, &p->config->rtp_timeout, error);
}

static gboolean
set_calls_session_timer (Parser *p, const char *value, GError **error)
{
  guint v;
  if (!parse_uint (p, "session-timer", value, 0, 86400, &v, error))
    return FALSE;
  /* RFC 4028 §4: Session-Expires may not be below 90 s. */
  if (v != 0 && v < 90)
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[calls] session-timer: %u is below the RFC 4028 minimum of 90 (0 turns it off)", v);
  p->config->session_timer = v;
  return TRUE;
}

static gboolean
set_calls_max_per_user (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "max-calls-per-user", value, 1, 1000,
                     &p->config->max_calls_per_user, error);
}

/* A Unix socket's path must fit sockaddr_un (108 bytes with its NUL). */
#define CONTROL_SOCKET_MAX 107

static gboolean
set_control_socket (Parser *p, const char *value, GError **error)
{
  g_autofree char *path = NULL;

  g_clear_pointer (&p->config->control_socket, g_free);
  p->config->control_socket_line = p->line;
  if (!*value || g_ascii_strcasecmp (value, "none") == 0)
    return TRUE;
  path = resolve_path (p, value);
  if (g_str_has_suffix (value, "/"))
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[control] socket: \"%s\" names a folder, not a socket file", value);
  if (strlen (path) > CONTROL_SOCKET_MAX)
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[control] socket: \"%s\" is longer than a Unix socket path may be "
                 "(%d bytes)", path, CONTROL_SOCKET_MAX);
  p->config->control_socket = g_steal_pointer (&path);
  return TRUE;
}

static gboolean
set_plugins_enabled (Parser *p, const char *value, GError **error)
{
  g_auto (GStrv) names = g_strsplit_set (value, ";,", -1);
  g_autoptr (GPtrArray) list = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; names[i]; i++) {
    const char *name = g_strstrip (names[i]);
    if (!*name)
      continue;
    if (!valid_plugin_name (name))
      return fail (p, error, TD_CONFIG_ERROR_VALUE,
                   "[plugins] enabled: \"%s\" is not a plugin name", name);
    /* Its settings are its [NAME] group: that must not be a core group. */
    if (known_group (name) || strcmp (name, "user") == 0)
      return fail (p, error, TD_CONFIG_ERROR_VALUE,
                   "[plugins] enabled: \"%s\" is the name of a core group", name);
    g_ptr_array_add (list, g_strdup (name));
  }
  g_ptr_array_add (list, NULL);
  g_strfreev (p->config->plugins);
  p->config->plugins = (char **) g_ptr_array_free (g_steal_pointer (&list), FALSE);
  return TRUE;
}

static gboolean
set_plugins_path (Parser *p, const char *value, GError **error)
{
  g_autofree char *dir = resolve_path (p, value);

  /* An explicit folder is never passed over for another: a typo must show. */
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    return fail (p, error, TD_CONFIG_ERROR_VALUE, "[plugins] path: %s is not a folder", dir);
  g_free (p->config->plugin_dir);
  p->config->plugin_dir = g_steal_pointer (&dir);
  return TRUE;
}

static gboolean
set_log_level (Parser *p, const char *value, GError **error)
{
  static const struct { const char *name; GLogLevelFlags level; } levels[] = {
    { "error", G_LOG_LEVEL_CRITICAL }, { "warning", G_LOG_LEVEL_WARNING },
    { "message", G_LOG_LEVEL_MESSAGE }, { "info", G_LOG_LEVEL_INFO },
    { "debug", G_LOG_LEVEL_DEBUG },
  };
  for (guint i = 0; i < G_N_ELEMENTS (levels); i++)
    if (g_ascii_strcasecmp (value, levels[i].name) == 0) {
      p->config->log_level = levels[i].level;
      return TRUE;
    }
  return fail (p, error, TD_CONFIG_ERROR_VALUE,
               "[log] level: \"%s\" is not one of error, warning, message, info, debug", value);
}

static gboolean
set_user_password (Parser *p, const char *value, GError **error)
{
  if (!*value)
    return fail (p, error, TD_CONFIG_ERROR_VALUE, "[%s] password: empty", p->group);
  g_free (p->user->password);
  p->user->password = g_strdup (value);
  return TRUE;
}

static gboolean
set_user_display_name (Parser *p, const char *value, GError **error)
{
  /* It goes into a quoted From display name. */
  if (strpbrk (value, "\"\\\r\n"))
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[%s] display-name: quotes and backslashes are not allowed", p->group);
  g_free (p->user->display_name);
  p->user->display_name = g_strdup (value);
  return TRUE;
}

static gboolean
set_user_digest_algorithms (Parser *p, const char *value, GError **error)
{
  return parse_algorithms (p, "digest-algorithms", value, p->user->algorithms,
                           &p->user->n_algorithms, error);
}

static gboolean
set_user_srtp (Parser *p, const char *value, GError **error)
{
  TdSrtpPolicy policy;

  if (!parse_srtp (p, p->group, value, &policy, error))
    return FALSE;
  p->user->srtp = policy;
  return TRUE;
}

static gboolean
set_user_max_calls (Parser *p, const char *value, GError **error)
{
  return parse_uint (p, "max-calls", value, 1, 100000, &p->user->max_calls, error);
}

/* "user" stands for every [user NAME] group. */
static const KeySpec key_specs[] = {
  { "sip", "listen", set_sip_listen },
  { "sip", "domain", set_sip_domain },
  { "sip", "user-agent", set_sip_user_agent },
  { "sip", "overload-lag", set_sip_overload_lag },
  { "sip", "overload-retry-after", set_sip_overload_retry_after },
  { "sip", "transaction-lifetime", set_sip_transaction_lifetime },
  { "sip", "tls-listen", set_sip_tls_listen },
  { "sip", "tls-certificate", set_sip_tls_certificate },
  { "sip", "tls-key", set_sip_tls_key },
  { "sip", "tls-ca", set_sip_tls_ca },
  { "auth", "algorithms", set_auth_algorithms },
  { "auth", "nonce-lifetime", set_auth_nonce_lifetime },
  { "registrar", "min-expires", set_reg_min },
  { "registrar", "max-expires", set_reg_max },
  { "registrar", "default-expires", set_reg_default },
  { "registrar", "max-contacts", set_reg_max_contacts },
  { "media", "address", set_media_address },
  { "media", "ports", set_media_ports },
  { "media", "relay-threads", set_media_relay_threads },
  { "media", "latching", set_media_latching },
  { "media", "srtp", set_media_srtp },
  { "store", "path", set_store_path },
  { "store", "synchronous", set_store_sync },
  { "store", "batch-ms", set_store_batch },
  { "calls", "no-answer-timeout", set_calls_no_answer },
  { "calls", "rtp-timeout", set_calls_rtp_timeout },
  { "calls", "session-timer", set_calls_session_timer },
  { "calls", "max-calls-per-user", set_calls_max_per_user },
  { "control", "socket", set_control_socket },
  { "plugins", "enabled", set_plugins_enabled },
  { "plugins", "path", set_plugins_path },
  { "log", "level", set_log_level },
  { "user", "password", set_user_password },
  { "user", "display-name", set_user_display_name },
  { "user", "digest-algorithms", set_user_digest_algorithms },
  { "user", "srtp", set_user_srtp },
  { "user", "max-calls", set_user_max_calls },
};

/* ---- lines ---------------------------------------------------------------- */

static void
user_free (TdUser *u)
{
  g_free (u->name);
  g_free (u->password);
  g_free (u->display_name);
  g_clear_pointer (&u->settings, g_hash_table_unref);
  g_clear_pointer (&u->setting_lines, g_hash_table_unref);
  g_free (u);
}

/* A SIP user part as tandem accepts it in configuration: RFC 3261 "unreserved"
 * characters and a few common punctuation marks, no '@', ':' or spaces. */
static gboolean
valid_user_name (const char *s)
{
  if (!*s)
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isalnum (*s) && !strchr ("-_.!~*'()&=+$,;?/", *s))
      return FALSE;
  return TRUE;
}

static void
plugin_group_free (PluginGroup *g)
{
  g_free (g->name);
  g_hash_table_unref (g->values);
  g_hash_table_unref (g->lines);
  g_free (g);
}

static PluginGroup *
plugin_group_get (TdConfig *config, const char *name)
{
  PluginGroup *g = g_hash_table_lookup (config->plugin_groups, name);

  if (g)
    return g;
  g = g_new0 (PluginGroup, 1);
  g->name = g_strdup (name);
  g->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g->lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (config->plugin_groups, g->name, g);
  return g;
}

static void
plugin_group_set (PluginGroup *g, const char *key, const char *value, guint line)
{
  g_hash_table_insert (g->values, g_strdup (key), g_strdup (value));
  g_hash_table_insert (g->lines, g_strdup (key), GUINT_TO_POINTER (line));
}

static gboolean
known_group (const char *group)
{
  for (guint i = 0; i < G_N_ELEMENTS (key_specs); i++)
    if (strcmp (key_specs[i].group, group) == 0)
      return TRUE;
  return FALSE;
}

/* Note `what` ("group\nkey", "[group]"; taken) as met on this line; FALSE,
 * with *first the line it was met on before, if it was. */
static gboolean
note_seen (Parser *p, char *what, guint *first)
{
  gpointer line;

  if (g_hash_table_lookup_extended (p->seen, what, NULL, &line)) {
    *first = GPOINTER_TO_UINT (line);
    g_free (what);
    return FALSE;
  }
  g_hash_table_insert (p->seen, what, GUINT_TO_POINTER (p->line));
  return TRUE;
}

#define KNOWN_GROUPS \
  "sip, auth, registrar, media, store, calls, control, log, plugins, user NAME, and [NAME] for each " \
  "plugin in [plugins] enabled"

static gboolean
start_group (Parser *p, char *header, GError **error)
{
  char *name = g_strstrip (header);
  guint first;

  p->user = NULL;
  p->plugin = NULL;
  if (g_str_has_prefix (name, "user ")) {
    const char *uname = g_strstrip (name + 5);
    if (!valid_user_name (uname))
      return fail (p, error, TD_CONFIG_ERROR_VALUE, "[%s]: \"%s\" is not a valid user name",
                   name, uname);
    if (g_hash_table_contains (p->config->users, uname))
      return fail (p, error, TD_CONFIG_ERROR_SYNTAX, "[user %s] is defined twice", uname);
    p->user = g_new0 (TdUser, 1);
    p->user->srtp = -1;
    p->user->name = g_strdup (uname);
    p->user->line = p->line;
    p->user->settings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
    p->user->setting_lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_insert (p->config->users, p->user->name, p->user);
    p->group = g_intern_string (name);
    return TRUE;
  }
  if (strcmp (name, "user") == 0 || (!known_group (name) && !valid_plugin_name (name)))
    return fail (p, error, TD_CONFIG_ERROR_UNKNOWN, "unknown group [%s] (known: %s)", name,
                 KNOWN_GROUPS);
  if (!note_seen (p, g_strconcat ("[", name, "]", NULL), &first))
    return fail (p, error, TD_CONFIG_ERROR_SYNTAX, "group [%s] appears twice (first on line %u)",
                 name, first);
  p->group = g_intern_string (name);
  if (!known_group (name)) {
    /* A plugin's, if [plugins] enables it: known at the end of the file. */
    p->plugin = plugin_group_get (p->config, name);
    p->plugin->line = p->line;
  }
  return TRUE;
}

/* An old spelling: the value goes to its plugin's group (as if written
 * there), once; the warning waits for the end of the file, when it is known
 * whether that plugin is enabled. */
static gboolean
set_moved_key (Parser *p, const MovedKey *m, const char *value, GError **error)
{
  MovedUse use = { m, p->line };
  guint first;

  if (!note_seen (p, g_strconcat (m->plugin, "\n", m->plugin_key, NULL), &first))
    return fail (p, error, TD_CONFIG_ERROR_SYNTAX,
                 "[%s] %s is [%s] %s, which is set already (on line %u)", m->group, m->key,
                 m->plugin, m->plugin_key, first);
  plugin_group_set (plugin_group_get (p->config, m->plugin), m->plugin_key, value, p->line);
  g_array_append_val (p->moved, use);
  return TRUE;
}

static gboolean
set_key (Parser *p, const char *key, const char *value, GError **error)
{
  const char *kind = p->user ? "user" : p->group;
  guint first;

  if (!p->group)
    return fail (p, error, TD_CONFIG_ERROR_SYNTAX, "\"%s\" comes before any [group]", key);
  if (!note_seen (p, g_strconcat (p->group, "\n", key, NULL), &first))
    return fail (p, error, TD_CONFIG_ERROR_SYNTAX, "[%s] %s is set twice (first on line %u)",
                 p->group, key, first);

  if (p->plugin) {
    /* A plugin's key: checked once plugins are known. */
    plugin_group_set (p->plugin, key, value, p->line);
    return TRUE;
  }
  for (guint i = 0; i < G_N_ELEMENTS (key_specs); i++)
    if (strcmp (key_specs[i].group, kind) == 0 && strcmp (key_specs[i].key, key) == 0)
      return key_specs[i].set (p, value, error);
  for (guint i = 0; i < G_N_ELEMENTS (moved_keys); i++)
    if (strcmp (moved_keys[i].group, kind) == 0 && strcmp (moved_keys[i].key, key) == 0)
      return set_moved_key (p, &moved_keys[i], value, error);
  if (p->user) {
    /* Maybe a plugin's key: checked once plugins are known. */
    g_hash_table_insert (p->user->settings, g_strdup (key), g_strdup (value));
    g_hash_table_insert (p->user->setting_lines, g_strdup (key), GUINT_TO_POINTER (p->line));
    return TRUE;
  }
  return fail (p, error, TD_CONFIG_ERROR_UNKNOWN, "[%s] unknown key \"%s\"", p->group, key);
}

/* Cut a trailing comment: '#' that follows whitespace (so "a#b" stays). */
static void
strip_comment (char *value)
{
  for (char *s = value; *s; s++)
    if (*s == '#' && s > value && g_ascii_isspace (s[-1])) {
      *s = '\0';
      break;
    }
}

static gboolean
parse_line (Parser *p, char *line, GError **error)
{
  char *s = g_strstrip (line);
  char *eq;

  if (*s == '\0' || *s == '#' || *s == ';')
    return TRUE;
  if (*s == '[') {
    char *close = strrchr (s, ']');
    if (!close || close[1] != '\0')
      return fail (p, error, TD_CONFIG_ERROR_SYNTAX, "group header without closing ']'");
    *close = '\0';
    return start_group (p, s + 1, error);
  }
  eq = strchr (s, '=');
  if (!eq)
    return fail (p, error, TD_CONFIG_ERROR_SYNTAX,
                 "\"%s\" is neither a [group], a key = value line nor a comment", s);
  *eq = '\0';
  strip_comment (eq + 1);
  if (!*g_strstrip (s))
    return fail (p, error, TD_CONFIG_ERROR_SYNTAX, "a line starts with '='");
  return set_key (p, s, g_strstrip (eq + 1), error);
}

/* ---- whole file --------------------------------------------------------- */

static void
set_defaults (TdConfig *c)
{
  c->listen_host = g_strdup ("127.0.0.1");
  c->listen_port = 5060;
  c->user_agent = g_strdup ("tandem/" TANDEM_VERSION);
  c->overload_lag = 100;
  c->store_batch_ms = 10;
  c->overload_retry_after = 5;
  c->transaction_lifetime = 8;
  /* MD5 only: baresip 1.0 fails the whole registration on a 401 that
   * offers SHA-256 at all, even after MD5; SIPp knows only MD5. */
  c->algorithms[0] = TD_DIGEST_MD5;
  c->n_algorithms = 1;
  c->nonce_lifetime = 300;
  c->min_expires = 60;
  c->max_expires = 7200;
  c->default_expires = 3600;
  c->max_contacts = 10;
  c->media_address = g_strdup ("127.0.0.1");
  c->port_min = 30000;
  c->port_max = 39999;
  c->relay_threads = 1;
  c->latching = TD_RELAY_LATCH_PREFER_SDP;
  /* Phones that offer SRTP get it, those that don't get RTP; callees are
   * offered RTP/AVP with a=crypto (RFC 4568 "best effort"), which a plain
   * phone ignores. */
  c->srtp = TD_SRTP_OPTIONAL;
  c->store_path = NULL;
  c->no_answer_timeout = 30;
  c->rtp_timeout = 60;
  c->session_timer = 1800;
  c->max_calls_per_user = 8;
  c->plugins = g_new0 (char *, 1);
  c->plugin_dir = NULL;           /* td-plugins.c looks for them */
  c->log_level = G_LOG_LEVEL_INFO;
  c->control_socket = g_strdup (TD_CONFIG_DEFAULT_CONTROL_SOCKET);
  c->local_addresses = g_new0 (char *, 1);
  c->warnings = g_new0 (char *, 1);
}

static gboolean
plugin_enabled (const TdConfig *c, const char *name)
{
  return g_strv_contains ((const char *const *) c->plugins, name);
}

/* The old spellings, now that it is known whether their plugins are on. */
static void
warn_moved (const Parser *p)
{
  TdConfig *c = p->config;
  GPtrArray *w = g_ptr_array_new ();

  for (guint i = 0; i < p->moved->len; i++) {
    const MovedUse *u = &g_array_index (p->moved, MovedUse, i);
    const MovedKey *m = u->moved;
    if (plugin_enabled (c, m->plugin) && !m->deprecated)
      continue;
    if (!m->deprecated)
      g_ptr_array_add (w, g_strdup_printf ("%s:%u: [%s] %s is unused: plugin %s is not enabled",
                                           c->path, u->line, m->group, m->key, m->plugin));
    else if (plugin_enabled (c, m->plugin))
      g_ptr_array_add (w, g_strdup_printf ("%s:%u: [%s] %s is deprecated: write it as [%s] %s",
                                           c->path, u->line, m->group, m->key, m->plugin,
                                           m->plugin_key));
    else
      g_ptr_array_add (w, g_strdup_printf ("%s:%u: [%s] %s is deprecated (now [%s] %s), and "
                                           "unused: plugin %s is not enabled", c->path, u->line,
                                           m->group, m->key, m->plugin, m->plugin_key,
                                           m->plugin));
  }
  g_ptr_array_add (w, NULL);
  g_strfreev (c->warnings);
  c->warnings = (char **) g_ptr_array_free (w, FALSE);
}

/* Every plugin group is an enabled plugin's (the first that is not, by
 * line, is the error); a group only old spellings made for a plugin that
 * is not enabled goes, as those keys were unused then. */
static gboolean
check_plugin_groups (Parser *p, GError **error)
{
  TdConfig *c = p->config;
  GHashTableIter it;
  PluginGroup *g, *first = NULL;
  g_autofree char *enabled = NULL;

  warn_moved (p);
  g_hash_table_iter_init (&it, c->plugin_groups);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &g)) {
    if (plugin_enabled (c, g->name))
      continue;
    if (!g->line)
      g_hash_table_iter_remove (&it);
    else if (!first || g->line < first->line)
      first = g;
  }
  if (!first)
    return TRUE;
  p->line = first->line;
  enabled = g_strjoinv (", ", c->plugins);
  return fail (p, error, TD_CONFIG_ERROR_UNKNOWN,
               "unknown group [%s]: neither a core group (sip, auth, registrar, media, store, "
               "calls, control, log, plugins, user NAME) nor the group of a plugin in [plugins] enabled "
               "(%s)", first->name, *enabled ? enabled : "none");
}

/* tls-listen and its files go together; the error names the line of the
 * one that is there (the end of the file says nothing). */
static gboolean
check_tls (Parser *p, GError **error)
{
  const TdConfig *c = p->config;
  guint file_line = c->tls_certificate ? c->tls_certificate_line
                    : c->tls_key ? c->tls_key_line : c->tls_ca_line;

  if (c->tls_listen_port && (!c->tls_certificate || !c->tls_key)) {
    p->line = c->tls_listen_line;
    return fail (p, error, TD_CONFIG_ERROR_MISSING,
                 "[sip] tls-listen needs tls-certificate and tls-key (PEM files)");
  }
  if (!c->tls_listen_port && (c->tls_certificate || c->tls_key || c->tls_ca)) {
    p->line = file_line;
    return fail (p, error, TD_CONFIG_ERROR_MISSING,
                 "[sip] tls-certificate, tls-key and tls-ca are for tls-listen, which is not set");
  }
  return TRUE;
}

static gboolean
check_whole (Parser *p, GError **error)
{
  TdConfig *c = p->config;
  GHashTableIter it;
  TdUser *u;

  if (!check_plugin_groups (p, error))
    return FALSE;
  if (!c->domain)
    return fail (p, error, TD_CONFIG_ERROR_MISSING, "[sip] domain is required");
  if (!c->store_path)
    return fail (p, error, TD_CONFIG_ERROR_MISSING, "[store] path is required");
  if (!check_tls (p, error))
    return FALSE;
  if (c->min_expires > c->max_expires)
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[registrar] min-expires (%u) exceeds max-expires (%u)",
                 c->min_expires, c->max_expires);
  if (c->default_expires < c->min_expires || c->default_expires > c->max_expires)
    return fail (p, error, TD_CONFIG_ERROR_VALUE,
                 "[registrar] default-expires (%u) lies outside min-expires..max-expires",
                 c->default_expires);
  g_hash_table_iter_init (&it, c->users);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &u))
    if (!u->password) {
      p->line = u->line;
      return fail (p, error, TD_CONFIG_ERROR_MISSING, "[user %s] has no password", u->name);
    }
  return TRUE;
}

TdConfig *
td_config_parse (const char *data, const char *name, const char *base_dir, GError **error)
{
  g_autoptr (TdConfig) c = g_new0 (TdConfig, 1);
  g_auto (GStrv) lines = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GArray) moved = g_array_new (FALSE, FALSE, sizeof (MovedUse));
  Parser p = { .config = c, .base_dir = base_dir, .seen = seen, .moved = moved };

  g_atomic_ref_count_init (&c->ref);
  c->path = g_strdup (name);
  c->dir = g_strdup (base_dir);
  c->users = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) user_free);
  c->plugin_groups = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify) plugin_group_free);
  set_defaults (c);

  if (!g_utf8_validate (data, -1, NULL)) {
    g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_SYNTAX, "%s: not UTF-8 text", name);
    return NULL;
  }
  lines = g_strsplit (data, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    p.line = i + 1;
    if (!parse_line (&p, lines[i], error))
      return NULL;
  }
  p.line = g_strv_length (lines);
  if (!check_whole (&p, error))
    return NULL;
  return g_steal_pointer (&c);
}

/* Every IPv4/IPv6 address of this host's interfaces, as text. One
 * getifaddrs() per load, so that matching a request against them later
 * needs no system call. */
static char **
read_local_addresses (void)
{
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  struct ifaddrs *list = NULL;

  if (getifaddrs (&list) != 0) {
    g_warning ("getifaddrs: %s; a wildcard [sip] listen answers only to [sip] domain",
               g_strerror (errno));
    return g_strv_builder_end (b);
  }
  for (const struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
    char text[INET6_ADDRSTRLEN];
    const void *bytes = NULL;
    if (!ifa->ifa_addr)
      continue;
    if (ifa->ifa_addr->sa_family == AF_INET)
      bytes = &((const struct sockaddr_in *) ifa->ifa_addr)->sin_addr;
    else if (ifa->ifa_addr->sa_family == AF_INET6)
      bytes = &((const struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr;
    if (bytes && inet_ntop (ifa->ifa_addr->sa_family, bytes, text, sizeof text))
      g_strv_builder_add (b, text);
  }
  freeifaddrs (list);
  return g_strv_builder_end (b);
}

TdConfig *
td_config_load (const char *path, GError **error)
{
  TdConfig *c;

  g_autofree char *data = NULL;
  g_autofree char *dir = NULL;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (path, &data, NULL, &local)) {
    g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_IO, "%s", local->message);
    return NULL;
  }
  dir = g_path_get_dirname (path);
  if (!(c = td_config_parse (data, path, dir, error)))
    return NULL;
  g_strfreev (c->local_addresses);
  c->local_addresses = read_local_addresses ();
  for (guint i = 0; c->warnings[i]; i++)
    g_warning ("%s", c->warnings[i]);
  return c;
}

guint
td_config_max_calls (const TdConfig *config, const TdUser *user)
{
  return user->max_calls ? user->max_calls : config->max_calls_per_user;
}

TdSrtpPolicy
td_config_srtp_policy (const TdConfig *config, const char *user_name)
{
  const TdUser *user = user_name ? td_config_lookup_user (config, user_name) : NULL;
  return user && user->srtp >= 0 ? (TdSrtpPolicy) user->srtp : config->srtp;
}

TdConfig *
td_config_ref (TdConfig *config)
{
  g_atomic_ref_count_inc (&config->ref);
  return config;
}

void
td_config_unref (TdConfig *c)
{
  if (!c || !g_atomic_ref_count_dec (&c->ref))
    return;
  g_free (c->path);
  g_free (c->listen_host);
  g_free (c->tls_listen_host);
  g_free (c->tls_certificate);
  g_free (c->tls_key);
  g_free (c->tls_ca);
  g_free (c->domain);
  g_free (c->user_agent);
  g_strfreev (c->local_addresses);
  g_strfreev (c->warnings);
  g_free (c->media_address);
  g_free (c->store_path);
  g_free (c->control_socket);
  g_free (c->dir);
  g_clear_pointer (&c->plugin_groups, g_hash_table_unref);
  g_strfreev (c->plugins);
  g_free (c->plugin_dir);
  g_clear_pointer (&c->users, g_hash_table_unref);
  g_free (c);
}

const TdUser *
td_config_lookup_user (const TdConfig *config, const char *name)
{
  return name ? g_hash_table_lookup (config->users, name) : NULL;
}

const char *
td_user_get (const TdUser *user, const char *key)
{
  return user ? g_hash_table_lookup (user->settings, key) : NULL;
}

gboolean
td_config_check_user_keys (const TdConfig *config, GHashTable *known, GError **error)
{
  GHashTableIter users, keys;
  TdUser *u;
  const char *key;

  g_hash_table_iter_init (&users, config->users);
  while (g_hash_table_iter_next (&users, NULL, (gpointer *) &u)) {
    g_hash_table_iter_init (&keys, u->settings);
    while (g_hash_table_iter_next (&keys, (gpointer *) &key, NULL))
      if (!known || !g_hash_table_contains (known, key)) {
        g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_UNKNOWN,
                     "%s:%u: [user %s] unknown key \"%s\" (no enabled plugin reads it)",
                     config->path,
                     GPOINTER_TO_UINT (g_hash_table_lookup (u->setting_lines, key)),
                     u->name, key);
        return FALSE;
      }
  }
  return TRUE;
}

/* ---- plugin groups --------------------------------------------------------- */

const char *
td_config_plugin_value (const TdConfig *config, const char *plugin, const char *key, guint *line)
{
  const PluginGroup *g = g_hash_table_lookup (config->plugin_groups, plugin);
  const char *value = g ? g_hash_table_lookup (g->values, key) : NULL;

  if (line)
    *line = value ? GPOINTER_TO_UINT (g_hash_table_lookup (g->lines, key)) : 0;
  return value;
}

char *
td_config_plugin_path (const TdConfig *config, const char *plugin, const char *key, guint *line)
{
  const char *value = td_config_plugin_value (config, plugin, key, line);

  if (!value || !*value)
    return NULL;
  if (g_path_is_absolute (value) || !config->dir)
    return g_strdup (value);
  return g_build_filename (config->dir, value, NULL);
}

gboolean
td_config_check_plugin_keys (const TdConfig *config, GHashTable *known, GError **error)
{
  GHashTableIter groups, keys;
  PluginGroup *g;
  const char *key;

  g_hash_table_iter_init (&groups, config->plugin_groups);
  while (g_hash_table_iter_next (&groups, NULL, (gpointer *) &g)) {
    GHashTable *reads = known ? g_hash_table_lookup (known, g->name) : NULL;
    g_hash_table_iter_init (&keys, g->values);
    while (g_hash_table_iter_next (&keys, (gpointer *) &key, NULL))
      if (!reads || !g_hash_table_contains (reads, key)) {
        g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_UNKNOWN,
                     "%s:%u: [%s] unknown key \"%s\" (not one plugin %s reads)", config->path,
                     GPOINTER_TO_UINT (g_hash_table_lookup (g->lines, key)), g->name, key,
                     g->name);
        return FALSE;
      }
  }
  return TRUE;
}

void
td_config_keep_plugin_value (TdConfig *fresh, const TdConfig *running, const char *plugin,
                             const char *key)
{
  guint line;
  const char *value = td_config_plugin_value (running, plugin, key, &line);
  PluginGroup *g = plugin_group_get (fresh, plugin);

  if (value)
    plugin_group_set (g, key, value, line);
  else {
    g_hash_table_remove (g->values, key);
    g_hash_table_remove (g->lines, key);
  }
}
