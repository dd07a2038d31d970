/* TdPluginHost: GModule loading and hook dispatch. */
#define G_LOG_DOMAIN "tandem-plugins"

#include "td-plugins.h"

#include <gio/gio.h>
#include <gmodule.h>

#include "td-call.h"

typedef struct {
  TdHookFunc func;
  gpointer data;
} Handler;

typedef struct {
  GModule *module;
  const TdPluginDescriptor *desc;
  gpointer state;                    /* what its init returned */
} Plugin;

struct _TdPluginHost {
  GArray *handlers[TD_HOOK_COUNT];   /* Handler, in registration order */
  GArray *plugins;                   /* Plugin, in load order */
  GHashTable *user_keys;             /* set of keys plugins read */
  TdCallContext *ctx;
  const TdConfig *loading;           /* the configuration, while plugins initialise */
};

TdPluginHost *
td_plugin_host_new (void)
{
  TdPluginHost *host = g_new0 (TdPluginHost, 1);
  for (guint i = 0; i < TD_HOOK_COUNT; i++)
    host->handlers[i] = g_array_new (FALSE, FALSE, sizeof (Handler));
  host->plugins = g_array_new (FALSE, FALSE, sizeof (Plugin));
  host->user_keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return host;
}

void
td_plugin_host_free (TdPluginHost *host)
{
  if (!host)
    return;
  /* Close in reverse load order; modules stay mapped until all are closed. */
  for (guint i = host->plugins->len; i-- > 0;) {
    Plugin *p = &g_array_index (host->plugins, Plugin, i);
    if (p->desc->close)
      p->desc->close (host, p->state);
  }
  for (guint i = 0; i < host->plugins->len; i++)
    g_module_close (g_array_index (host->plugins, Plugin, i).module);
  for (guint i = 0; i < TD_HOOK_COUNT; i++)
    g_array_unref (host->handlers[i]);
  g_array_unref (host->plugins);
  g_hash_table_unref (host->user_keys);
  g_free (host);
}

static gboolean
load_one (TdPluginHost *host, const TdConfig *config, const char *name, GError **error)
{
  g_autofree char *file = g_strconcat (name, ".", G_MODULE_SUFFIX, NULL);
  /* TANDEM_PLUGIN_DIR overrides [plugins] path: running from a build tree. */
  const char *dir = g_getenv ("TANDEM_PLUGIN_DIR") ? g_getenv ("TANDEM_PLUGIN_DIR")
                                                   : config->plugin_dir;
  g_autofree char *path = g_build_filename (dir, file, NULL);
  Plugin p = { 0 };
  gpointer symbol = NULL;
  g_autoptr (GError) local = NULL;

  p.module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (!p.module) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 "%s: [plugins] enabled names \"%s\", which cannot be loaded: %s",
                 config->path, name, g_module_error ());
    return FALSE;
  }
  if (!g_module_symbol (p.module, TD_PLUGIN_SYMBOL, &symbol) || !symbol ||
      ((const TdPluginDescriptor *) symbol)->abi != TD_PLUGIN_ABI) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 "%s: not a tandem plugin (no %s of ABI %d)", path, TD_PLUGIN_SYMBOL,
                 TD_PLUGIN_ABI);
    g_module_close (p.module);
    return FALSE;
  }
  p.desc = symbol;
  g_array_append_val (host->plugins, p);
  if (!p.desc->init (host, &g_array_index (host->plugins, Plugin, host->plugins->len - 1).state,
                     &local)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "plugin %s: %s", name,
                 local ? local->message : "initialisation failed");
    return FALSE;
  }
  g_info ("plugin %s loaded from %s", p.desc->name, path);
  return TRUE;
}

gboolean
td_plugin_host_load (TdPluginHost *host, const TdConfig *config, GError **error)
{
  gboolean ok = TRUE;

  host->loading = config;
  for (guint i = 0; ok && config->plugins[i]; i++)
    ok = load_one (host, config, config->plugins[i], error);
  host->loading = NULL;
  return ok && td_config_check_user_keys (config, host->user_keys, error);
}

gboolean
td_plugin_host_check_config (TdPluginHost *host, const TdConfig *config, GError **error)
{
  return td_config_check_user_keys (config, host->user_keys, error);
}

void
td_plugin_host_set_context (TdPluginHost *host, TdCallContext *ctx)
{
  host->ctx = ctx;
}

TdHookResult
td_plugin_host_run (TdPluginHost *host, const TdHookArgs *args)
{
  GArray *list = host->handlers[args->hook];
  for (guint i = 0; i < list->len; i++) {
    Handler *h = &g_array_index (list, Handler, i);
    if (h->func (args, h->data) == TD_HOOK_HANDLED)
      return TD_HOOK_HANDLED;
  }
  return TD_HOOK_CONTINUE;
}

/* ---- the plugin-facing registration API ----------------------------------- */

void
td_plugin_host_add_hook (TdPluginHost *host, TdHook hook, TdHookFunc func, gpointer user_data)
{
  Handler h = { func, user_data };
  g_return_if_fail (hook < TD_HOOK_COUNT);
  g_array_append_val (host->handlers[hook], h);
}

void
td_plugin_host_add_user_key (TdPluginHost *host, const char *key)
{
  g_hash_table_add (host->user_keys, g_strdup (key));
}

const TdConfig *
td_plugin_host_config (TdPluginHost *host)
{
  if (host->loading)
    return host->loading;
  return host->ctx ? host->ctx->config : NULL;
}

guint
td_plugin_host_user_calls (TdPluginHost *host, const char *user)
{
  return host->ctx ? td_calls_count_user (host->ctx, user) : 0;
}
