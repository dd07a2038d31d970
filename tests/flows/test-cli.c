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

static void
test_check_sample (void)
{
  const char *sample = g_getenv ("TANDEM_SAMPLE_CONFIG");
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

int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  flow_add_test ("/cli/version", test_version);
  flow_add_test ("/cli/check-config/sample", test_check_sample);
  flow_add_test ("/cli/check-config/broken", test_check_broken);
  flow_add_test ("/cli/check-config/missing-file", test_check_missing_file);
  flow_add_test ("/cli/run/broken-config", test_run_broken);
  flow_add_test ("/cli/run/port-in-use", test_run_port_in_use);
  return g_test_run ();
}
