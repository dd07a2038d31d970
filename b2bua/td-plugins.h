/* TdPluginHost (core side): loads the enabled feature plugins and runs their
 * hooks. The plugin-facing API is td-plugin.h. */
#pragma once

#include "td-plugin.h"

G_BEGIN_DECLS

typedef struct _TdCallContext TdCallContext;

TdPluginHost *td_plugin_host_new (void);
void td_plugin_host_free (TdPluginHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdPluginHost, td_plugin_host_free)

/* Load and initialise every enabled plugin, then check the configuration
 * against them (td_plugin_host_check_config). Errors name the plugin file,
 * or the file and line. */
gboolean td_plugin_host_load (TdPluginHost *host, const TdConfig *config, GError **error);

/* Each [user] key and each key of a plugin's group is one a loaded plugin
 * reads, and passes its check; for a reloaded configuration too. */
gboolean td_plugin_host_check_config (TdPluginHost *host, const TdConfig *config, GError **error);

/* Reload: the plugins' restart-only keys (TD_PLUGIN_KEY_RESTART_ONLY) keep
 * their running values in `fresh`, with a warning for each that changed. */
void td_plugin_host_keep_restart_only (TdPluginHost *host, TdConfig *fresh,
                                       const TdConfig *running);

/* The new configuration is the running one: the plugins' reload
 * functions (td_plugin_host_on_reload) run. */
void td_plugin_host_reloaded (TdPluginHost *host, const TdConfig *config);

/* The calls the hooks act on (not set for --check-config). */
void td_plugin_host_set_context (TdPluginHost *host, TdCallContext *ctx);

/* Is `user` one a plugin serves itself (td_plugin_host_add_service)? */
gboolean td_plugin_host_is_service (TdPluginHost *host, const char *user);
/* The calls and rooms the plugins' operations act on (NULL for --check-config). */
TdCallContext *td_plugin_host_get_context (TdPluginHost *host);
/* The plugins' control commands (td_plugin_host_add_command) join the socket's. */
typedef struct _TdControl TdControl;
void td_plugin_host_register_commands (TdPluginHost *host, TdControl *control);

/* Run `args->hook`'s handlers in load order until one returns HANDLED. */
/* Has any plugin registered a handler for `hook`? */
gboolean td_plugin_host_handles (TdPluginHost *host, TdHook hook);
TdHookResult td_plugin_host_run (TdPluginHost *host, const TdHookArgs *args);

G_END_DECLS
