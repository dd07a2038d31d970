/* TdPluginHost: GModule loading and hook dispatch. */
#define G_LOG_DOMAIN "tandem-plugins"

#include "td-plugins.h"

#include <gio/gio.h>
#include <gmodule.h>
#include <string.h>

#include "td-build-config.h"
#include "td-call.h"
#include "td-control.h"

typedef struct {
  TdHookFunc func;
  gpointer data;
} Handler;

/* A key of a plugin's own group. */
typedef struct {
  TdPluginKeyReload reload;
  TdPluginKeyCheck check;
} PluginKey;

typedef struct {
  TdPluginReloadCheck check;
  TdPluginReloadApply apply;
  gpointer data;
} ReloadFuncs;

typedef struct {
  GModule *module;
  const TdPluginDescriptor *desc;
  gpointer state;                    /* what its init returned */
} Plugin;

struct _TdPluginHost {
  GArray *handlers[TD_HOOK_COUNT];   /* Handler, in registration order */
  GArray *plugins;                   /* Plugin, in load order */
  GHashTable *user_keys;             /* set of keys plugins read */
  GHashTable *group_keys;            /* plugin name → (key → PluginKey*): their groups' keys */
  GArray *reload_funcs;              /* ReloadFuncs, in registration order */
  TdCallContext *ctx;
  GArray *commands;                  /* PluginCommand: the control socket's, from plugins */
  GHashTable *services;              /* users plugins serve themselves (td_plugin_host_add_service) */
  const TdConfig *loading;           /* the configuration, while plugins initialise */
  const char *loading_name;          /* the plugin whose init runs, as enabled */
};

typedef struct {
  char *name;
  TdPluginCommand func;
  gpointer data;
} PluginCommand;

static void
plugin_command_clear (gpointer p)
{
  g_free (((PluginCommand *) p)->name);
}

TdPluginHost *
td_plugin_host_new (void)
{
  TdPluginHost *host = g_new0 (TdPluginHost, 1);
  host->commands = g_array_new (FALSE, TRUE, sizeof (PluginCommand));
  host->services = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_array_set_clear_func (host->commands, plugin_command_clear);
  for (guint i = 0; i < TD_HOOK_COUNT; i++)
    host->handlers[i] = g_array_new (FALSE, FALSE, sizeof (Handler));
  host->plugins = g_array_new (FALSE, FALSE, sizeof (Plugin));
  host->reload_funcs = g_array_new (FALSE, FALSE, sizeof (ReloadFuncs));
  host->user_keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  host->group_keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify) g_hash_table_unref);
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
  g_array_unref (host->reload_funcs);
  g_array_unref (host->commands);
  g_hash_table_unref (host->services);
  g_hash_table_unref (host->user_keys);
  g_hash_table_unref (host->group_keys);
  g_free (host);
}

/* Where the plugins come from, in the order they are tried. */
typedef enum {
  PLUGIN_DIR_CONFIG,       /* [plugins] path: the operator said so */
  PLUGIN_DIR_ENV,          /* TANDEM_PLUGIN_DIR, e.g. from `meson devenv` */
  PLUGIN_DIR_BUILD_TREE,   /* the meson build tree the binary was built in */
  PLUGIN_DIR_INSTALLED,    /* the installed tree the binary sits in (moved, DESTDIR) */
  PLUGIN_DIR_PREFIX,       /* the configured install folder */
} PluginDirSource;

static const char *const plugin_dir_source_names[] = {
  [PLUGIN_DIR_CONFIG] = "[plugins] path",
  [PLUGIN_DIR_ENV] = "TANDEM_PLUGIN_DIR",
  [PLUGIN_DIR_BUILD_TREE] = "the build tree of the binary",
  [PLUGIN_DIR_INSTALLED] = "the install tree of the binary",
  [PLUGIN_DIR_PREFIX] = "the install folder",
};

/* `rel` taken from the folder of the running binary, or NULL. The binary's
 * own path, not argv[0] or the working folder: a tandem started from any
 * folder, or through a symlink, finds the tree it belongs to. */
static char *
exe_relative (const char *rel)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *exe_dir = NULL;
  g_autofree char *joined = NULL;

  if (!exe || !*rel)
    return NULL;
  exe_dir = g_path_get_dirname (exe);
  joined = g_build_filename (exe_dir, rel, NULL);
  return g_canonicalize_filename (joined, NULL);
}

/* A build tree is a meson build folder: the binary's folder alone could be
 * anything (an install prefix with a stray plugins/ next to bin/). */
static char *
build_tree_plugin_dir (void)
{
  g_autofree char *root = exe_relative (TANDEM_BUILD_TREE_REL);
  g_autofree char *marker = root ? g_build_filename (root, "meson-private", NULL) : NULL;

  if (!marker || !g_file_test (marker, G_FILE_TEST_IS_DIR))
    return NULL;
  return exe_relative (TANDEM_BUILD_PLUGINDIR_REL);
}

static char *
installed_plugin_dir (void)
{
  char *dir = exe_relative (TANDEM_INSTALLED_PLUGINDIR_REL);

  if (dir && !g_file_test (dir, G_FILE_TEST_IS_DIR))
    g_clear_pointer (&dir, g_free);
  return dir;
}

/* The folder all plugins are loaded from: one folder, so the plugins of one
 * build never mix with another's. */
static char *
find_plugin_dir (const TdConfig *config, PluginDirSource *source)
{
  const char *env = g_getenv ("TANDEM_PLUGIN_DIR");
  char *dir;

  *source = PLUGIN_DIR_CONFIG;
  if (config->plugin_dir)
    return g_strdup (config->plugin_dir);
  *source = PLUGIN_DIR_ENV;
  if (env && *env)
    return g_strdup (env);
  *source = PLUGIN_DIR_BUILD_TREE;
  if ((dir = build_tree_plugin_dir ()))
    return dir;
  *source = PLUGIN_DIR_INSTALLED;
  if ((dir = installed_plugin_dir ()))
    return dir;
  *source = PLUGIN_DIR_PREFIX;
  return g_strdup (TANDEM_PLUGINDIR);
}

static gboolean
load_one (TdPluginHost *host, const TdConfig *config, const char *dir, PluginDirSource source,
          const char *name, GError **error)
{
  g_autofree char *file = g_strconcat (name, ".", G_MODULE_SUFFIX, NULL);
  g_autofree char *path = g_build_filename (dir, file, NULL);
  Plugin p = { 0 };
  gpointer symbol = NULL;
  gboolean ok;
  g_autoptr (GError) local = NULL;

  p.module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (!p.module) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 "%s: [plugins] enabled names \"%s\", which cannot be loaded from %s (%s): %s",
                 config->path, name, dir, plugin_dir_source_names[source], g_module_error ());
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
  /* Its settings are the [NAME] group of the name it is enabled as. */
  if (strcmp (p.desc->name, name) != 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 "%s: [plugins] enabled names \"%s\", but the plugin calls itself \"%s\"",
                 path, name, p.desc->name);
    g_module_close (p.module);
    return FALSE;
  }
  g_array_append_val (host->plugins, p);
  host->loading_name = name;
  ok = p.desc->init (host, &g_array_index (host->plugins, Plugin, host->plugins->len - 1).state,
                     &local);
  host->loading_name = NULL;
  if (!ok) {
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
  PluginDirSource source;
  g_autofree char *dir = NULL;

  if (!config->plugins[0])
    return td_plugin_host_check_config (host, config, error);
  dir = find_plugin_dir (config, &source);
  g_info ("plugins from %s (%s)", dir, plugin_dir_source_names[source]);
  host->loading = config;
  for (guint i = 0; ok && config->plugins[i]; i++)
    ok = load_one (host, config, dir, source, config->plugins[i], error);
  host->loading = NULL;
  return ok && td_plugin_host_check_config (host, config, error);
}

/* Calls `each` for every key a plugin registered in its group, until it
 * returns FALSE; returns FALSE then. */
typedef gboolean (*PluginKeyFunc) (const char *plugin, const char *key, const PluginKey *spec,
                                   gpointer data);

static gboolean
foreach_plugin_key (TdPluginHost *host, PluginKeyFunc each, gpointer data)
{
  GHashTableIter plugins, keys;
  const char *plugin, *key;
  GHashTable *specs;
  PluginKey *spec;

  g_hash_table_iter_init (&plugins, host->group_keys);
  while (g_hash_table_iter_next (&plugins, (gpointer *) &plugin, (gpointer *) &specs)) {
    g_hash_table_iter_init (&keys, specs);
    while (g_hash_table_iter_next (&keys, (gpointer *) &key, (gpointer *) &spec))
      if (!each (plugin, key, spec, data))
        return FALSE;
  }
  return TRUE;
}

typedef struct {
  const TdConfig *config;
  GError **error;
} CheckValue;

/* The value of one key passes the plugin's check. */
static gboolean
check_value (const char *plugin, const char *key, const PluginKey *spec, gpointer data)
{
  CheckValue *cv = data;
  guint line;
  const char *value = td_config_plugin_value (cv->config, plugin, key, &line);
  g_autoptr (GError) local = NULL;

  if (!value || !spec->check || spec->check (value, &local))
    return TRUE;
  g_set_error (cv->error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE, "%s:%u: [%s] %s: %s",
               cv->config->path, line, plugin, key, local ? local->message : "not a valid value");
  return FALSE;
}

gboolean
td_plugin_host_check_config (TdPluginHost *host, const TdConfig *config, GError **error)
{
  CheckValue cv = { config, error };

  if (!td_config_check_user_keys (config, host->user_keys, error) ||
      !td_config_check_plugin_keys (config, host->group_keys, error) ||
      !foreach_plugin_key (host, check_value, &cv))
    return FALSE;
  for (guint i = 0; i < host->reload_funcs->len; i++) {
    ReloadFuncs *r = &g_array_index (host->reload_funcs, ReloadFuncs, i);
    if (r->check && !r->check (config, r->data, error))
      return FALSE;
  }
  return TRUE;
}

void
td_plugin_host_reloaded (TdPluginHost *host, const TdConfig *config)
{
  for (guint i = 0; i < host->reload_funcs->len; i++) {
    ReloadFuncs *r = &g_array_index (host->reload_funcs, ReloadFuncs, i);
    if (r->apply)
      r->apply (config, r->data);
  }
}

typedef struct {
  TdConfig *fresh;
  const TdConfig *running;
} KeepValue;

/* A restart-only value that a reload changed keeps its running value. */
static gboolean
keep_value (const char *plugin, const char *key, const PluginKey *spec, gpointer data)
{
  KeepValue *kv = data;

  if (spec->reload != TD_PLUGIN_KEY_RESTART_ONLY ||
      g_strcmp0 (td_config_plugin_value (kv->fresh, plugin, key, NULL),
                 td_config_plugin_value (kv->running, plugin, key, NULL)) == 0)
    return TRUE;
  g_warning ("reload: [%s] %s takes effect only on restart; the running value stays", plugin,
             key);
  td_config_keep_plugin_value (kv->fresh, kv->running, plugin, key);
  return TRUE;
}

void
td_plugin_host_keep_restart_only (TdPluginHost *host, TdConfig *fresh, const TdConfig *running)
{
  KeepValue kv = { fresh, running };

  foreach_plugin_key (host, keep_value, &kv);
}

void
td_plugin_host_set_context (TdPluginHost *host, TdCallContext *ctx)
{
  host->ctx = ctx;
}

gboolean
td_plugin_host_handles (TdPluginHost *host, TdHook hook)
{
  return host && host->handlers[hook]->len > 0;
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

void
td_plugin_host_add_key (TdPluginHost *host, const char *key, TdPluginKeyReload reload,
                        TdPluginKeyCheck check)
{
  GHashTable *specs;
  PluginKey *spec;

  /* The group is the plugin's own: known only while its init runs. */
  g_return_if_fail (host->loading_name != NULL);
  specs = g_hash_table_lookup (host->group_keys, host->loading_name);
  if (!specs) {
    specs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_insert (host->group_keys, g_strdup (host->loading_name), specs);
  }
  spec = g_new0 (PluginKey, 1);
  spec->reload = reload;
  spec->check = check;
  g_hash_table_insert (specs, g_strdup (key), spec);
}

void
td_plugin_host_on_reload (TdPluginHost *host, TdPluginReloadCheck check,
                          TdPluginReloadApply apply, gpointer data)
{
  ReloadFuncs r = { check, apply, data };
  g_array_append_val (host->reload_funcs, r);
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

void
td_plugin_host_add_command (TdPluginHost *host, const char *name, TdPluginCommand func,
                            gpointer data)
{
  PluginCommand cmd = { g_strdup (name), func, data };
  g_array_append_val (host->commands, cmd);
}

void
td_plugin_host_register_commands (TdPluginHost *host, TdControl *control)
{
  for (guint i = 0; i < host->commands->len; i++) {
    const PluginCommand *cmd = &g_array_index (host->commands, PluginCommand, i);
    td_control_add_command (control, cmd->name, cmd->func, cmd->data);
  }
}

TdCallContext *
td_plugin_host_get_context (TdPluginHost *host)
{
  return host->ctx;
}

void
td_plugin_host_add_service (TdPluginHost *host, const char *user)
{
  g_hash_table_add (host->services, g_strdup (user));
}

gboolean
td_plugin_host_is_service (TdPluginHost *host, const char *user)
{
  return g_hash_table_contains (host->services, user);
}
