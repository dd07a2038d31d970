/* tandem's command line: --version, --check-config, and start-up failures.
 * Exit codes (b2bua/main.c): 0 fine, 1 runtime failure, 2 bad configuration
 * or command line. */
#include <string.h>

#include "flow-harness.h"

#define COMMAND_TIMEOUT_MS 5000

static const char *
tandem_bin (void)
{
  const char *bin = g_getenv ("TANDEM_BIN");
  g_assert_nonnull (bin);
  return bin;
}

/* Writes text to name in the case's directory; returns the path. */
static char *
write_case_file (const char *name, const char *text)
{
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (flow_case_dir (), name, NULL);

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

static void
test_version (void)
{
  const char *argv[] = { tandem_bin (), "--version", NULL };
  g_autofree char *out = NULL;
  g_autofree char *want = g_strdup_printf ("tandem %s\n", g_getenv ("TANDEM_VERSION"));

  g_assert_cmpint (flow_command (argv, COMMAND_TIMEOUT_MS, &out, NULL), ==, 0);
  g_assert_cmpstr (out, ==, want);
}

/* The sample configuration, as a user runs it from any build folder: no
 * TANDEM_PLUGIN_DIR, the plugins found in the binary's own build tree. */
static void
test_check_sample (void)
{
  const char *sample = g_getenv ("TANDEM_SAMPLE_CONFIG");
  g_unsetenv ("TANDEM_PLUGIN_DIR");
  const char *argv[] = { tandem_bin (), "--check-config", sample, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status;

  g_assert_nonnull (sample);
  status = flow_command (argv, COMMAND_TIMEOUT_MS, &out, &err);
  if (status != 0)
    g_printerr ("stdout: %s\nstderr: %s\n", out, err);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, sample));
}

/* Every pthread key tandem's libraries delete at exit is their own
 * (keyguard.c): the sample configuration loads the hold music, so
 * GStreamer's streaming threads are still about while exit() runs Sofia's
 * destructor, which once deleted GLib's key and aborted the process. */
static void
test_check_sample_keys (void)
{
  const char *keyguard = g_getenv ("TANDEM_KEYGUARD");
  const char *sample = g_getenv ("TANDEM_SAMPLE_CONFIG");
  const char *argv[] = { tandem_bin (), "--check-config", sample, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status;

  g_assert_nonnull (keyguard);
  g_setenv ("LD_PRELOAD", keyguard, TRUE);
  status = flow_command (argv, COMMAND_TIMEOUT_MS, &out, &err);
  g_unsetenv ("LD_PRELOAD");
  flow_note ("stdout: %s\nstderr: %s", out, err);
  g_assert_null (strstr (err, "keyguard:"));
  g_assert_cmpint (status, ==, 0);
}

/* A broken file and the line the message must name. */
typedef struct {
  const char *what;
  const char *text;
  guint line;
} Broken;

static const Broken broken_files[] = {
  { "bad value",
    "[sip]\nlisten = 127.0.0.1:5060\ndomain = pbx.test\n[store]\npath = x.db\n"
    "[registrar]\nmin-expires = soon\n", 7 },
  { "unknown key",
    "[sip]\nlisten = 127.0.0.1:5060\nlisen = 127.0.0.1:5061\ndomain = pbx.test\n", 3 },
  { "unknown group",
    "# comment\n\n[sip]\ndomain = pbx.test\n[sipp]\n", 5 },
  { "key set twice",
    "[sip]\ndomain = pbx.test\ndomain = other.test\n", 3 },
  { "user without password",
    "[sip]\ndomain = pbx.test\n[store]\npath = x.db\n[user alice]\ndisplay-name = A\n", 5 },
  { "not key = value",
    "[sip]\ndomain = pbx.test\njust words\n", 3 },
};

static void
test_check_broken (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (broken_files); i++) {
    const Broken *b = &broken_files[i];
    g_autofree char *name = g_strdup_printf ("broken-%u.conf", i);
    g_autofree char *path = write_case_file (name, b->text);
    const char *argv[] = { tandem_bin (), "--check-config", path, NULL };
    g_autofree char *err = NULL;
    g_autofree char *where = g_strdup_printf ("%s:%u: ", path, b->line);
    int status = flow_command (argv, COMMAND_TIMEOUT_MS, NULL, &err);

    if (status != 2 || !strstr (err, where))
      g_printerr ("%s: exit %d, stderr: %s(want exit 2 and \"%s\")\n", b->what, status, err,
                  where);
    g_assert_cmpint (status, ==, 2);
    g_assert_nonnull (strstr (err, where));
  }
}

static void
test_check_missing_file (void)
{
  const char *argv[] = { tandem_bin (), "--check-config", "/nonexistent/tandem.conf", NULL };
  g_autofree char *err = NULL;

  g_assert_cmpint (flow_command (argv, COMMAND_TIMEOUT_MS, NULL, &err), ==, 2);
  g_assert_nonnull (strstr (err, "/nonexistent/tandem.conf"));
}

/* Running (not just checking) a broken file fails the same way, at once. */
static void
test_run_broken (void)
{
  g_autofree char *path = write_case_file ("broken.conf", broken_files[0].text);
  const char *argv[] = { tandem_bin (), "-c", path, NULL };
  g_autofree char *err = NULL;
  g_autofree char *where = g_strdup_printf ("%s:%u: ", path, broken_files[0].line);

  g_assert_cmpint (flow_command (argv, COMMAND_TIMEOUT_MS, NULL, &err), ==, 2);
  g_assert_nonnull (strstr (err, where));
}

/* The SIP port is taken (here: a TCP listener): exit 1 with a message,
 * rather than running deaf on one transport. */
static void
test_run_port_in_use (void)
{
  guint16 port = flow_pick_port ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, port);
  g_autoptr (GSocket) taken = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autofree char *text = NULL, *path = NULL, *err = NULL;
  const char *argv[] = { tandem_bin (), "-c", NULL, NULL };
  int status;

  g_assert_true (g_socket_bind (taken, addr, TRUE, NULL));
  g_assert_true (g_socket_listen (taken, NULL));
  text = g_strdup_printf ("[sip]\nlisten = 127.0.0.1:%u\ndomain = pbx.test\n"
                          "[store]\npath = tandem.db\n", port);
  path = write_case_file ("in-use.conf", text);
  argv[2] = path;
  status = flow_command (argv, COMMAND_TIMEOUT_MS, NULL, &err);
  if (status != 1)
    g_printerr ("exit %d, stderr:\n%s\n", status, err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "cannot listen"));
}

/* ---- where the plugins come from ------------------------------------------- */

#define PLUGINS_ENABLED "[plugins]\nenabled = forward;hold;waiting\n"
#define BASE_CONFIG "[sip]\ndomain = pbx.test\n[store]\npath = x.db\n"

/* The build tree's plugin folder: plugins/ beside b2bua/, where tandem is. */
static char *
build_plugin_dir (void)
{
  g_autofree char *b2bua = g_path_get_dirname (tandem_bin ());
  g_autofree char *joined = g_build_filename (b2bua, "..", "plugins", NULL);
  return g_canonicalize_filename (joined, NULL);
}

static void
copy_file (const char *from, const char *to)
{
  g_autoptr (GFile) src = g_file_new_for_path (from);
  g_autoptr (GFile) dst = g_file_new_for_path (to);
  g_autoptr (GError) error = NULL;

  g_file_copy (src, dst, G_FILE_COPY_ALL_METADATA, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
}

/* A copy of the build tree's binary and plugins in the case's folder, laid
 * out as in the build tree (b2bua/tandem, plugins/NAME.so); with `marker`,
 * the meson-private/ folder that makes it a build tree. Returns the binary. */
static char *
copy_build_tree (gboolean marker)
{
  const char *dir = flow_case_dir ();
  g_autofree char *plugins = build_plugin_dir ();
  g_autofree char *b2bua = g_build_filename (dir, "tree", "b2bua", NULL);
  g_autofree char *copy_plugins = g_build_filename (dir, "tree", "plugins", NULL);
  g_autofree char *private_dir = g_build_filename (dir, "tree", "meson-private", NULL);
  const char *names[] = { "forward", "hold", "waiting" };
  char *bin = g_build_filename (b2bua, "tandem", NULL);

  g_assert_cmpint (g_mkdir_with_parents (b2bua, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (copy_plugins, 0755), ==, 0);
  if (marker)
    g_assert_cmpint (g_mkdir_with_parents (private_dir, 0755), ==, 0);
  copy_file (tandem_bin (), bin);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *file = g_strconcat (names[i], ".so", NULL);
    g_autofree char *from = g_build_filename (plugins, file, NULL);
    g_autofree char *to = g_build_filename (copy_plugins, file, NULL);
    copy_file (from, to);
  }
  return bin;
}

/* `bin --check-config` on text, with the plugin host's messages on; the
 * exit status, and the output of both streams in *out. */
static int
check_plugins (const char *bin, const char *text, char **out)
{
  g_autofree char *path = write_case_file ("plugins.conf", text);
  const char *argv[] = { bin, "--check-config", path, NULL };
  g_autofree char *o = NULL, *e = NULL;
  int status;

  g_setenv ("G_MESSAGES_DEBUG", "tandem-plugins", TRUE);
  status = flow_command (argv, COMMAND_TIMEOUT_MS, &o, &e);
  *out = g_strconcat (o, e, NULL);
  flow_note ("%s --check-config: exit %d, output:\n%s", bin, status, *out);
  return status;
}

/* What the plugin host says it loads from: "plugins from DIR (HOW)". */
static void
assert_plugins_from (const char *out, const char *dir, const char *how)
{
  g_autofree char *want = g_strdup_printf ("plugins from %s (%s)", dir, how);
  g_assert_nonnull (strstr (out, want));
}

/* No path, no TANDEM_PLUGIN_DIR: the binary's own build tree. */
static void
test_plugins_build_tree (void)
{
  g_autofree char *out = NULL;
  g_autofree char *plugins = build_plugin_dir ();

  g_unsetenv ("TANDEM_PLUGIN_DIR");
  g_assert_cmpint (check_plugins (tandem_bin (), BASE_CONFIG PLUGINS_ENABLED, &out), ==, 0);
  assert_plugins_from (out, plugins, "the build tree of the binary");
}

/* A build tree in another folder uses its own plugins, not the ones of the
 * tree it was copied from (nor the installed ones). */
static void
test_plugins_build_tree_copy (void)
{
  g_autofree char *bin = copy_build_tree (TRUE);
  g_autofree char *out = NULL;
  g_autofree char *plugins = g_build_filename (flow_case_dir (), "tree", "plugins", NULL);

  g_unsetenv ("TANDEM_PLUGIN_DIR");
  g_assert_cmpint (check_plugins (bin, BASE_CONFIG PLUGINS_ENABLED, &out), ==, 0);
  assert_plugins_from (out, plugins, "the build tree of the binary");
}

/* A plugins/ folder beside the binary's folder is not enough: without a
 * meson build tree around it, tandem does not load code from it. */
static void
test_plugins_not_a_build_tree (void)
{
  g_autofree char *bin = copy_build_tree (FALSE);
  g_autofree char *out = NULL;
  g_autofree char *plugins = g_build_filename (flow_case_dir (), "tree", "plugins", NULL);

  g_unsetenv ("TANDEM_PLUGIN_DIR");
  check_plugins (bin, BASE_CONFIG PLUGINS_ENABLED, &out);
  g_assert_null (strstr (out, plugins));
}

/* TANDEM_PLUGIN_DIR (meson devenv) comes before the build tree. */
static void
test_plugins_env (void)
{
  g_autofree char *bin = copy_build_tree (TRUE);
  g_autofree char *out = NULL;
  g_autofree char *plugins = build_plugin_dir ();

  g_setenv ("TANDEM_PLUGIN_DIR", plugins, TRUE);
  g_assert_cmpint (check_plugins (bin, BASE_CONFIG PLUGINS_ENABLED, &out), ==, 0);
  assert_plugins_from (out, plugins, "TANDEM_PLUGIN_DIR");
}

/* [plugins] path comes before everything, even TANDEM_PLUGIN_DIR. */
static void
test_plugins_config_path (void)
{
  g_autofree char *out = NULL;
  g_autofree char *plugins = g_build_filename (flow_case_dir (), "tree", "plugins", NULL);

  g_free (copy_build_tree (FALSE));   /* its plugins/ is the path */
  g_setenv ("TANDEM_PLUGIN_DIR", "/nonexistent", TRUE);
  g_assert_cmpint (check_plugins (tandem_bin (), BASE_CONFIG PLUGINS_ENABLED "path = tree/plugins\n",
                                  &out), ==, 0);
  assert_plugins_from (out, plugins, "[plugins] path");
}

/* A path naming no folder is an error at its line, not a quiet fallback. */
static void
test_plugins_missing_path (void)
{
  g_autofree char *out = NULL;
  g_autofree char *conf = g_build_filename (flow_case_dir (), "plugins.conf", NULL);
  g_autofree char *where = g_strdup_printf ("%s:7: [plugins] path: %s/no-such-folder is not a folder",
                                            conf, flow_case_dir ());

  g_unsetenv ("TANDEM_PLUGIN_DIR");
  g_assert_cmpint (check_plugins (tandem_bin (), BASE_CONFIG PLUGINS_ENABLED "path = no-such-folder\n",
                                  &out), ==, 2);
  g_assert_nonnull (strstr (out, where));
}

/* A folder without the plugin: the message names the plugin, the folder and
 * why that folder. */
static void
test_plugins_missing_plugin (void)
{
  g_autofree char *out = NULL;
  g_autofree char *empty = g_build_filename (flow_case_dir (), "empty", NULL);
  g_autofree char *want = g_strdup_printf ("\"forward\", which cannot be loaded from %s ([plugins] path)",
                                           empty);

  g_assert_cmpint (g_mkdir_with_parents (empty, 0755), ==, 0);
  g_assert_cmpint (check_plugins (tandem_bin (), BASE_CONFIG PLUGINS_ENABLED "path = empty\n", &out),
                   ==, 2);
  g_assert_nonnull (strstr (out, want));
}

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/cli/version", test_version);
  flow_add_test ("/cli/check-config/sample", test_check_sample);
  /* Not in sanitizer builds (meson gives no keyguard there): the
   * sanitizer's runtime must be the first library in the process. */
  if (g_getenv ("TANDEM_KEYGUARD"))
    flow_add_test ("/cli/check-config/exit-keys", test_check_sample_keys);
  flow_add_test ("/cli/check-config/broken", test_check_broken);
  flow_add_test ("/cli/check-config/missing-file", test_check_missing_file);
  flow_add_test ("/cli/run/broken-config", test_run_broken);
  flow_add_test ("/cli/run/port-in-use", test_run_port_in_use);
  flow_add_test ("/cli/plugins/build-tree", test_plugins_build_tree);
  flow_add_test ("/cli/plugins/build-tree-copy", test_plugins_build_tree_copy);
  flow_add_test ("/cli/plugins/not-a-build-tree", test_plugins_not_a_build_tree);
  flow_add_test ("/cli/plugins/env", test_plugins_env);
  flow_add_test ("/cli/plugins/config-path", test_plugins_config_path);
  flow_add_test ("/cli/plugins/missing-path", test_plugins_missing_path);
  flow_add_test ("/cli/plugins/missing-plugin", test_plugins_missing_plugin);
  return g_test_run ();
}
