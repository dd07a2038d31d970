/* tandem: command line — run the daemon, check a configuration, say the version. */
#include <errno.h>
#include <glib.h>
#include <locale.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <sofia-sip/su_uniqueid.h>

#include "td-build-config.h"
#include "td-config.h"
#include "td-daemon.h"
#include "td-plugins.h"
#include "td-tls.h"

/* Exit codes: 0 clean stop, 1 runtime failure (store, sockets), 2 bad
 * configuration or command line. */
enum { EXIT_CONFIG = 2 };

static int
check_config (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) config = td_config_load (path, &error);
  g_autoptr (TdPluginHost) plugins = td_plugin_host_new ();

  /* Plugins define the per-user keys: a file is valid only with them loaded. */
  if (!config || !td_tls_check (config, &error) || !td_plugin_host_load (plugins, config, &error)) {
    g_printerr ("tandem: %s\n", error->message);
    return EXIT_CONFIG;
  }
  g_print ("%s: OK (domain %s, %u user(s))\n", path, config->domain,
           g_hash_table_size (config->users));
  return EXIT_SUCCESS;
}

/* Debian 12's Sofia-SIP (1.12.11, before upstream commit 948e2ea) has a
 * destructor that deletes its random-state thread key at exit even when the
 * key was never created: it then deletes key 0, which is whatever the
 * process created first (GLib's slice allocator here). A GLib thread still
 * running during exit (GStreamer's pooled streaming threads after a tune is
 * decoded) then aborts in pthread_setspecific: 3% of `tandem --check-config`
 * runs on a loaded machine. Drawing one number makes Sofia create its own
 * key, so its destructor deletes that one. */
static void
sofia_create_own_key (void)
{
  (void) su_randint (0, 1);
}

/* Every media stream holds two sockets (RTP, RTCP): a call needs at least
 * four descriptors, so the usual soft limit of 1,024 would cap tandem near
 * 250 calls. Take all the kernel allows this process. */
static void
raise_fd_limit (void)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
      g_printerr ("tandem: cannot raise the open-files limit: %s\n", g_strerror (errno));
  }
}

static int
run (const char *path, gboolean debug)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) config = td_config_load (path, &error);
  g_autoptr (TdDaemon) daemon = NULL;

  if (!config) {
    g_printerr ("tandem: %s\n", error->message);
    return EXIT_CONFIG;
  }
  if (debug)
    config->log_level = G_LOG_LEVEL_DEBUG;
  raise_fd_limit ();
  daemon = td_daemon_new (path, config, &error);
  if (!daemon) {
    g_printerr ("tandem: %s\n", error->message);
    return EXIT_FAILURE;
  }
  return td_daemon_run (daemon);
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *check_path = NULL;
  gboolean version = FALSE, debug = FALSE;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- the tandem PBX core");
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "Run with this configuration", "FILE" },
    { "check-config", 0, 0, G_OPTION_ARG_FILENAME, &check_path,
      "Validate a configuration and exit (0 valid, 2 not)", "FILE" },
    { "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "Log at debug level (one line per SIP message)", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL }
  };

  sofia_create_own_key ();
  setlocale (LC_ALL, "");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("tandem: %s\n", error->message);
    return EXIT_CONFIG;
  }
  if (version) {
    g_print ("tandem %s\n", TANDEM_VERSION);
    return EXIT_SUCCESS;
  }
  if (check_path)
    return check_config (check_path);
  if (!config_path) {
    g_printerr ("tandem: --config FILE is required (see --help)\n");
    return EXIT_CONFIG;
  }
  return run (config_path, debug);
}
