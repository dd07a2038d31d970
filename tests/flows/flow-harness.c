/* flow-harness: run tandem and SIPp scenarios against it (see flow-harness.h). */
#include "flow-harness.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* The parent makes each case's directory and tells the child through this. */
#define CASE_DIR_ENV "TANDEM_FLOW_CASE_DIR"
#define CASE_TIMEOUT_US (90 * G_USEC_PER_SEC)
#define READY_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 5000
#define KILL_TIMEOUT_MS 5000
/* SIPp gets -timeout 15s; this is the harness's own bound on top of it. */
#define SIPP_TIMEOUT_MS 30000
#define START_ATTEMPTS 3
#define DOMAIN "pbx.test"

/* ---- child processes ------------------------------------------------------ */

/* A spawned process and whether it has exited. Heap-allocated, because the
 * wait callback may outlive the function that spawned it. */
typedef struct {
  GSubprocess *proc;
  gboolean done;
} Child;

static void
child_exited (GObject *source, GAsyncResult *result, gpointer data)
{
  Child *c = data;
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  c->done = TRUE;
}

/* If the test process dies on a failed assertion, its children must not
 * linger holding ports (Linux only; elsewhere flow_daemon_free covers the
 * normal path). */
static void
die_with_parent (G_GNUC_UNUSED gpointer data)
{
#ifdef __linux__
  prctl (PR_SET_PDEATHSIG, SIGKILL);
#endif
}

static Child *
child_spawn (GSubprocessLauncher *launcher, const char *const *argv)
{
  g_autoptr (GError) error = NULL;
  Child *c = g_new0 (Child, 1);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  c->proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_wait_async (c->proc, NULL, child_exited, c);
  return c;
}

static gboolean
deadline_reached (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main context until the child exits or timeout_ms pass. */
static gboolean
child_wait (Child *c, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint timer = g_timeout_add (timeout_ms, deadline_reached, &expired);

  while (!c->done && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (timer);
  return c->done;
}

static void
child_free (Child *c)
{
  if (!c)
    return;
  if (!c->done) {
    g_subprocess_force_exit (c->proc);
    /* SIGKILL cannot be ignored: not gone within the bound means something
     * is badly wrong, and the callback would then write freed memory. */
    if (!child_wait (c, KILL_TIMEOUT_MS))
      g_error ("process %s survived SIGKILL", g_subprocess_get_identifier (c->proc));
  }
  g_object_unref (c->proc);
  g_free (c);
}

/* "exit status N" or "killed by signal N", for messages. */
static char *
child_describe (Child *c)
{
  if (!c->done)
    return g_strdup ("still running");
  if (g_subprocess_get_if_signaled (c->proc))
    return g_strdup_printf ("killed by signal %d", g_subprocess_get_term_sig (c->proc));
  return g_strdup_printf ("exit status %d", g_subprocess_get_exit_status (c->proc));
}

/* ---- files ------------------------------------------------------------------ */

static char *
read_file (const char *path)
{
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree char *child = g_build_filename (path, name, NULL);
    if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
      remove_tree (child);
    else
      g_unlink (child);
  }
  g_rmdir (path);
}

/* The last n lines of a file, for failure reports. */
static char *
file_tail (const char *path, guint n)
{
  g_autofree char *text = read_file (path);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint len = g_strv_length (lines);
  guint from = len > n ? len - n : 0;

  return g_strjoinv ("\n", lines + from);
}

static void
print_file (const char *title, const char *path, guint max_lines)
{
  g_autofree char *tail = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return;
  tail = file_tail (path, max_lines);
  g_printerr ("---- %s (%s, last %u lines) ----\n%s\n", title, path, max_lines, tail);
}

static void
append_line (const char *path, const char *line)
{
  int fd = g_open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  if (write (fd, line, strlen (line)) < 0 || write (fd, "\n", 1) < 0)
    g_printerr ("flow: cannot write %s: %s\n", path, g_strerror (errno));
  close (fd);
}

/* ---- isolated cases ------------------------------------------------------- */

typedef struct {
  void (*body) (void);
} FlowCase;

static const char *
env_or_fail (const char *name)
{
  const char *value = g_getenv (name);
  if (!value || !*value)
    g_error ("%s is not set (run the flow tests through meson test)", name);
  return value;
}

/* The SIPp files of the last run ("sipp-NN-name.*" sort by run number). */
static char *
last_sipp_stem (const char *dir_path)
{
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autofree char *best = NULL;
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    if (g_str_has_prefix (name, "sipp-") && g_str_has_suffix (name, ".out") &&
        (!best || strcmp (name, best) > 0)) {
      g_free (best);
      best = g_strdup (name);
    }
  if (!best)
    return NULL;
  best[strlen (best) - strlen (".out")] = '\0';
  return g_build_filename (dir_path, best, NULL);
}

static void
report_failure (const char *dir)
{
  g_autofree char *tandem_log = g_build_filename (dir, "tandem.log", NULL);
  g_autofree char *runs_log = g_build_filename (dir, "sipp-runs.log", NULL);
  g_autofree char *notes = g_build_filename (dir, "notes.log", NULL);
  g_autofree char *stem = last_sipp_stem (dir);

  g_printerr ("\n==== flow case failed; its files are kept in %s ====\n", dir);
  print_file ("SIPp runs in this case", runs_log, 40);
  print_file ("notes", notes, 40);
  if (stem) {
    g_autofree char *out = g_strconcat (stem, ".out", NULL);
    g_autofree char *err = g_strconcat (stem, ".err", NULL);
    g_autofree char *msg = g_strconcat (stem, ".msg", NULL);
    print_file ("last SIPp run: output", out, 25);
    print_file ("last SIPp run: error log", err, 60);
    print_file ("last SIPp run: messages", msg, 150);
  }
  print_file ("tandem log", tandem_log, 60);
}

static void
run_isolated (gconstpointer data)
{
  const FlowCase *fc = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;

  if (g_test_subprocess ()) {
    fc->body ();
    return;
  }
  dir = g_dir_make_tmp ("tandem-flow-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv (CASE_DIR_ENV, dir, TRUE);
  /* The child's stderr carries assertion messages; its stdout, a TAP stream
   * of its own, would confuse ours. */
  g_test_trap_subprocess (NULL, CASE_TIMEOUT_US, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv (CASE_DIR_ENV);
  if (g_test_trap_has_passed ())
    remove_tree (dir);
  else
    report_failure (dir);
  g_test_trap_assert_passed ();
}

void
flow_init (int *argc, char ***argv)
{
  g_test_init (argc, argv, NULL);
  /* Say once, not in every case, that the environment is missing. */
  env_or_fail ("TANDEM_BIN");
  /* A case that fails in its child is reported, and the next one still runs;
   * inside the child, the first failed assertion ends the case. */
  if (!g_test_subprocess ())
    g_test_set_nonfatal_assertions ();
  /* A SIPp or tandem that dies must not take the test program with it. */
  signal (SIGPIPE, SIG_IGN);
}

const char *
flow_case_dir (void)
{
  return env_or_fail (CASE_DIR_ENV);
}

void
flow_note (const char *format, ...)
{
  g_autofree char *path = g_build_filename (flow_case_dir (), "notes.log", NULL);
  g_autofree char *line = NULL;
  va_list ap;

  va_start (ap, format);
  line = g_strdup_vprintf (format, ap);
  va_end (ap);
  append_line (path, line);
}

void
flow_add_test (const char *path, void (*body) (void))
{
  FlowCase *fc = g_new0 (FlowCase, 1);
  fc->body = body;
  g_test_add_data_func_full (path, fc, run_isolated, g_free);
}

/* ---- ports ---------------------------------------------------------------- */

static GSocketAddress *
loopback (guint16 port)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  return g_inet_socket_address_new (lo, port);
}

/* A loopback port free for both UDP and TCP right now. Another process may
 * still take it before we use it; flow_daemon_start retries for that. */
guint16
flow_pick_port (void)
{
  for (guint attempt = 0; attempt < 100; attempt++) {
    g_autoptr (GSocket) udp = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                            G_SOCKET_PROTOCOL_UDP, NULL);
    g_autoptr (GSocket) tcp = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr (GSocketAddress) any = loopback (0);
    g_autoptr (GSocketAddress) bound = NULL;
    g_autoptr (GSocketAddress) same = NULL;
    guint16 port;

    if (!udp || !tcp || !g_socket_bind (udp, any, FALSE, NULL))
      continue;
    bound = g_socket_get_local_address (udp, NULL);
    port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
    same = loopback (port);
    if (g_socket_bind (tcp, same, FALSE, NULL))
      return port;
  }
  g_error ("no free loopback port for UDP and TCP");
}

/* ---- the daemon --------------------------------------------------------------- */

struct _FlowDaemon {
  char *dir;
  char *config_path;
  char *log_path;
  char *extra_config;
  char *sip_lines;          /* more [sip] lines (TLS), or NULL */
  guint16 port;
  guint starts;
  gsize log_checked_from;   /* assert_log_clean skips what failed starts wrote */
  guint sipp_runs;
  Child *child;
};

static const struct {
  const char *group;
  const char *body;
} default_groups[] = {
  { "auth", "algorithms = MD5;SHA-256\nnonce-lifetime = 300\n" },
  { "registrar", "min-expires = 60\nmax-expires = 7200\ndefault-expires = 3600\n" },
  { "log", "level = debug\n" },
  { "user alice", "password = alice-secret\n" },
  { "user bob", "password = bob-secret\n" },
  { "user carol", "password = carol-secret\n" },
};

/* The [group] names in a configuration text, whitespace-normalised. */
static GHashTable *
groups_in (const char *text)
{
  GHashTable *groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);

  for (guint i = 0; lines[i]; i++) {
    char *line = g_strstrip (lines[i]);
    gsize len = strlen (line);
    if (len >= 2 && line[0] == '[' && line[len - 1] == ']') {
      g_autofree char *inner = g_strndup (line + 1, len - 2);
      g_auto (GStrv) words = g_strsplit_set (g_strstrip (inner), " \t", -1);
      g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
      g_auto (GStrv) kept = NULL;
      char *joined;
      for (guint w = 0; words[w]; w++)
        if (*words[w])
          g_strv_builder_add (b, words[w]);
      kept = g_strv_builder_end (b);
      joined = g_strjoinv (" ", kept);
      g_hash_table_add (groups, joined);
    }
  }
  return groups;
}

static void
write_config (FlowDaemon *d)
{
  g_autoptr (GHashTable) overridden = groups_in (d->extra_config);
  g_autoptr (GString) s = g_string_new ("# Written by tests/flows/flow-harness.c\n");
  g_autoptr (GError) error = NULL;

  /* The listening port and the store belong to the harness: a test that
   * moved them would lose its daemon. */
  g_assert_false (g_hash_table_contains (overridden, "sip"));
  g_assert_false (g_hash_table_contains (overridden, "store"));
  g_string_append_printf (s, "[sip]\nlisten = 127.0.0.1:%u\ndomain = " DOMAIN "\n%s\n", d->port,
                          d->sip_lines ? d->sip_lines : "");
  g_string_append_printf (s, "[store]\npath = %s/tandem.db\n\n", d->dir);
  for (guint i = 0; i < G_N_ELEMENTS (default_groups); i++)
    if (!g_hash_table_contains (overridden, default_groups[i].group))
      g_string_append_printf (s, "[%s]\n%s\n", default_groups[i].group, default_groups[i].body);
  if (d->extra_config)
    g_string_append_printf (s, "%s\n", d->extra_config);
  g_file_set_contents (d->config_path, s->str, -1, &error);
  g_assert_no_error (error);
}

static void
spawn_daemon (FlowDaemon *d)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  const char *argv[] = { env_or_fail ("TANDEM_BIN"), "-c", d->config_path, NULL };
  g_autofree char *marker = g_strdup_printf ("==== flow harness: start %u of tandem on port %u ====",
                                             ++d->starts, d->port);
  int fd;

  /* One log across restarts, so a failure report shows the whole story. */
  append_line (d->log_path, marker);
  fd = g_open (d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  g_assert_cmpint (fd, >=, 0);
  g_subprocess_launcher_take_stdout_fd (launcher, dup (fd));
  g_subprocess_launcher_take_stderr_fd (launcher, fd);
  g_subprocess_launcher_set_cwd (launcher, d->dir);
  g_assert_null (d->child);
  d->child = child_spawn (launcher, argv);
}

static char *
options_probe (guint16 to_port, guint16 from_port, guint seq)
{
  return g_strdup_printf ("OPTIONS sip:127.0.0.1:%u SIP/2.0\r\n"
                          "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-flow-probe-%u\r\n"
                          "Max-Forwards: 70\r\n"
                          "From: <sip:probe@127.0.0.1>;tag=flow-probe\r\n"
                          "To: <sip:127.0.0.1:%u>\r\n"
                          "Call-ID: flow-probe-%d-%u@127.0.0.1\r\n"
                          "CSeq: %u OPTIONS\r\n"
                          "Content-Length: 0\r\n\r\n",
                          to_port, from_port, seq, to_port, (int) getpid (), seq, seq);
}

/* Sends OPTIONS over UDP until any SIP response comes back (TRUE), the
 * daemon exits or READY_TIMEOUT_MS pass (FALSE). */
static gboolean
wait_ready (FlowDaemon *d)
{
  g_autoptr (GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                           G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr (GSocketAddress) any = loopback (0);
  g_autoptr (GSocketAddress) server = loopback (d->port);
  g_autoptr (GSocketAddress) local = NULL;
  gint64 deadline = g_get_monotonic_time () + READY_TIMEOUT_MS * 1000;
  guint16 from_port;

  g_assert_true (g_socket_bind (sock, any, FALSE, NULL));
  local = g_socket_get_local_address (sock, NULL);
  from_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  for (guint seq = 1; g_get_monotonic_time () < deadline; seq++) {
    g_autofree char *probe = options_probe (d->port, from_port, seq);
    char buf[4096];
    gssize n;

    /* Let the exit callback run, so a daemon that died is noticed. */
    while (g_main_context_iteration (NULL, FALSE))
      ;
    if (d->child->done)
      return FALSE;
    g_socket_send_to (sock, server, probe, strlen (probe), NULL, NULL);
    if (!g_socket_condition_timed_wait (sock, G_IO_IN, 100 * 1000, NULL, NULL))
      continue;
    /* ICMP port unreachable shows up as an error here: not ready yet. */
    n = g_socket_receive (sock, buf, sizeof buf - 1, NULL, NULL);
    if (n > 8 && memcmp (buf, "SIP/2.0 ", 8) == 0)
      return TRUE;
  }
  return FALSE;
}

static gboolean
listen_failed (FlowDaemon *d)
{
  g_autofree char *log = read_file (d->log_path);
  return d->child->done && g_subprocess_get_if_exited (d->child->proc) &&
         g_subprocess_get_exit_status (d->child->proc) == 1 && strstr (log, "cannot listen");
}

static void
assert_ready (FlowDaemon *d)
{
  if (!wait_ready (d)) {
    g_autofree char *how = child_describe (d->child);
    g_printerr ("flow: tandem on port %u did not answer OPTIONS within %d ms (%s)\n",
                d->port, READY_TIMEOUT_MS, how);
    g_assert_not_reached ();
  }
}

FlowDaemon *
flow_daemon_start (const char *extra_config)
{
  return flow_daemon_start_sip (NULL, extra_config);
}

FlowDaemon *
flow_daemon_start_sip (const char *sip_lines, const char *extra_config)
{
  FlowDaemon *d = g_new0 (FlowDaemon, 1);

  d->dir = g_strdup (flow_case_dir ());
  d->config_path = g_build_filename (d->dir, "tandem.conf", NULL);
  d->log_path = g_build_filename (d->dir, "tandem.log", NULL);
  d->extra_config = g_strdup (extra_config);
  d->sip_lines = g_strdup (sip_lines);
  for (guint attempt = 1;; attempt++) {
    d->port = flow_pick_port ();
    write_config (d);
    spawn_daemon (d);
    if (wait_ready (d))
      return d;
    /* Someone took the port between our check and tandem's bind. That
     * start's exit is not held against the case: Sofia leaks ~1 KB when its
     * stack fails to bind (nua_create's failure path, in libsofia), which
     * LeakSanitizer reports as the process exits. */
    if (attempt < START_ATTEMPTS && listen_failed (d)) {
      g_autofree char *log = read_file (d->log_path);
      d->log_checked_from = strlen (log);
      g_clear_pointer (&d->child, child_free);
      continue;
    }
    assert_ready (d);
  }
}

void
flow_daemon_write_config (FlowDaemon *d, const char *extra_config)
{
  /* sip_lines stay: the same listeners (TLS) as the start's */
  g_free (d->extra_config);
  d->extra_config = g_strdup (extra_config);
  write_config (d);
}

/* Sanitizer reports and GLib criticals in tandem's log are bugs even when
 * every SIP answer was right. */
static void
assert_log_clean (FlowDaemon *d)
{
  static const char *const bad[] = {
    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
    " CRITICAL ", "GLib-CRITICAL", "GLib-GIO-CRITICAL",
  };
  g_autofree char *whole = read_file (d->log_path);
  const char *log = whole + MIN (d->log_checked_from, strlen (whole));

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    const char *hit = strstr (log, bad[i]);
    if (hit) {
      const char *start = hit, *end = strchr (hit, '\n');
      while (start > log && start[-1] != '\n')
        start--;
      g_printerr ("flow: tandem's log reports a problem:\n%.*s\n",
                  (int) (end ? end - start : (gssize) strlen (start)), start);
      g_assert_null (hit);
    }
  }
}

void
flow_daemon_signal (FlowDaemon *d, int signum)
{
  g_assert_nonnull (d->child);
  g_assert_false (d->child->done);
  g_subprocess_send_signal (d->child->proc, signum);
  if (signum == SIGKILL) {
    g_assert_true (child_wait (d->child, KILL_TIMEOUT_MS));
    assert_log_clean (d);
    g_clear_pointer (&d->child, child_free);
  }
}

void
flow_daemon_restart (FlowDaemon *d)
{
  g_assert_null (d->child);
  spawn_daemon (d);
  assert_ready (d);
}

void
flow_daemon_stop (FlowDaemon *d)
{
  g_autofree char *how = NULL;

  g_assert_nonnull (d->child);
  g_subprocess_send_signal (d->child->proc, SIGTERM);
  child_wait (d->child, STOP_TIMEOUT_MS);
  how = child_describe (d->child);
  if (!d->child->done || !g_subprocess_get_if_exited (d->child->proc) ||
      g_subprocess_get_exit_status (d->child->proc) != 0)
    g_printerr ("flow: after SIGTERM tandem was %s (want exit status 0 within %d ms)\n",
                how, STOP_TIMEOUT_MS);
  g_assert_cmpstr (how, ==, "exit status 0");
  assert_log_clean (d);
  g_clear_pointer (&d->child, child_free);
}

gboolean
flow_daemon_wait_log (FlowDaemon *d, const char *needle, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  do {
    g_autofree char *log = read_file (d->log_path);
    if (strstr (log, needle))
      return TRUE;
    g_usleep (20 * 1000);
  } while (g_get_monotonic_time () < deadline);
  return FALSE;
}

GPid
flow_daemon_pid (FlowDaemon *d)
{
  g_assert_nonnull (d->child);
  g_assert_false (d->child->done);
  return (GPid) g_ascii_strtoll (g_subprocess_get_identifier (d->child->proc), NULL, 10);
}

guint16
flow_daemon_port (FlowDaemon *d)
{
  return d->port;
}

const char *
flow_daemon_dir (FlowDaemon *d)
{
  return d->dir;
}

void
flow_daemon_free (FlowDaemon *d)
{
  if (!d)
    return;
  g_clear_pointer (&d->child, child_free);
  g_free (d->dir);
  g_free (d->config_path);
  g_free (d->log_path);
  g_free (d->extra_config);
  g_free (d->sip_lines);
  g_free (d);
}

/* ---- SIPp ------------------------------------------------------------------- */

/* The wall-clock time on SIPp's separator line
 * ("------ 2026-11-25 08:00:36.124649"), in microseconds; 0 if absent. */
static gint64
dashes_time (const char *line)
{
  const char *p = line + strspn (line, "-");
  g_autofree char *iso = g_strstrip (g_strdup (p));
  g_autoptr (GTimeZone) local = g_time_zone_new_local ();
  g_autoptr (GDateTime) when = NULL;
  char *space = strchr (iso, ' ');

  if (!space)
    return 0;
  *space = 'T';
  when = g_date_time_new_from_iso8601 (iso, local);
  return when ? g_date_time_to_unix (when) * G_USEC_PER_SEC + g_date_time_get_microsecond (when)
              : 0;
}

/* `text` cut into lines in place, NULL-terminated. Not g_strsplit: under
 * AddressSanitizer its strstr() measures the whole rest of the text at each
 * line, and a run of 5,000 messages took minutes. */
static GPtrArray *
split_lines (char *text)
{
  GPtrArray *lines = g_ptr_array_new ();
  char *end = text + strlen (text);

  for (char *p = text; p <= end;) {
    char *nl = memchr (p, '\n', (gsize) (end - p));
    g_ptr_array_add (lines, p);
    if (!nl)
      break;
    *nl = '\0';
    p = nl + 1;
  }
  g_ptr_array_add (lines, NULL);
  return lines;
}

/* SIPp's -message_file: each message follows a line of dashes and a line
 * saying "UDP message sent (N bytes):" or "TCP message received [N] bytes :",
 * then an empty line. */
static void
parse_message_log (const char *text, FlowRun *run)
{
  g_autofree char *copy = g_strdup (text);
  g_autoptr (GPtrArray) split = split_lines (copy);
  char **lines = (char **) split->pdata;
  GString *msg = NULL;
  GPtrArray *into = NULL;

  for (guint i = 0; lines[i]; i++) {
    char *line = lines[i];
    gsize len = strlen (line);
    if (len && line[len - 1] == '\r')
      line[len - 1] = '\0';
    if (g_str_has_prefix (line, "-----------------------------------------------")) {
      if (msg)
        g_ptr_array_add (into, g_strchomp (g_string_free (msg, FALSE)));
      msg = NULL;
      if (lines[i + 1] && strstr (lines[i + 1], "message sent"))
        into = run->sent;
      else if (lines[i + 1] && strstr (lines[i + 1], "message received"))
        into = run->received;
      else
        continue;
      if (run->sent_us) {
        gint64 at = dashes_time (line);
        g_array_append_val (into == run->sent ? run->sent_us : run->received_us, at);
      }
      if (!g_str_has_prefix (lines[i + 1], "TCP "))
        run->all_tcp = FALSE;
      msg = g_string_new (NULL);
      i += lines[i + 2] ? 2 : 1;  /* the "message sent" line and the empty line */
      continue;
    }
    if (msg)
      g_string_append_printf (msg, "%s\n", line);
  }
  if (msg)
    g_ptr_array_add (into, g_strchomp (g_string_free (msg, FALSE)));
}

/* One line per run for sipp-runs.log: "name (port N): exit S; >sent ... |
 * <received ...", each side in order. */
static char *
run_summary (const FlowRun *run, const char *name)
{
  GString *s = g_string_new (NULL);
  guint total = run->sent->len + run->received->len;

  g_string_append_printf (s, "%s (port %u): exit %d%s;", name, run->local_port,
                          run->exit_status, run->timed_out ? " (timed out)" : "");
  for (guint i = 0; i < run->sent->len; i++) {
    g_autofree char *first = flow_msg_start_line (g_ptr_array_index (run->sent, i));
    g_string_append_printf (s, " >%s", first);
  }
  g_string_append (s, " |");
  for (guint i = 0; i < run->received->len; i++) {
    g_autofree char *first = flow_msg_start_line (g_ptr_array_index (run->received, i));
    g_string_append_printf (s, " <%s", first);
  }
  if (total == 0)
    g_string_append (s, " no messages");
  return g_string_free (s, FALSE);
}

/* SIPp's exit code when it cannot bind a socket (its -2). */
#define SIPP_EXIT_BIND 254

/* SIPp binds four UDP ports from -mp up (audio and video, RTP and RTCP):
 * a base whose four ports are free now and clear of the control port. */
static guint16
pick_media_ports (guint16 control)
{
  for (guint attempt = 0; attempt < 100; attempt++) {
    guint16 base = flow_pick_port ();
    GSocket *held[4] = { NULL };
    gboolean ok = base <= 65531 && !(control >= base && control <= base + 3);

    for (guint k = 0; ok && k < 4; k++) {
      g_autoptr (GSocketAddress) addr = loopback (base + k);
      held[k] = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                              G_SOCKET_PROTOCOL_UDP, NULL);
      ok = held[k] && g_socket_bind (held[k], addr, FALSE, NULL);
    }
    for (guint k = 0; k < 4; k++)
      g_clear_object (&held[k]);
    if (ok)
      return base;
  }
  g_error ("no four free loopback UDP ports in a row");
}

/* The SIPp command line; fresh ports unless the caller fixed "-p". */
static char **
sipp_argv (FlowDaemon *d, const char *scenario, const char *stem,
           const char *const *extra, FlowRun *run)
{
  g_autoptr (GStrvBuilder) args = g_strv_builder_new ();
  g_autofree char *path = g_build_filename (env_or_fail ("TANDEM_FLOWS_DIR"), scenario, NULL);
  g_autofree char *target = g_strdup_printf ("127.0.0.1:%u", d->port);
  g_autofree char *msgs = g_strconcat (stem, ".msg", NULL);
  g_autofree char *err = g_strconcat (stem, ".err", NULL);
  /* SIPp binds a control socket (default 8888) and RTP/RTCP sockets
   * (default from 6000 up, even if the scenario has no media): fixed ports
   * would clash with parallel runs and whatever else runs on this host. */
  guint16 control = flow_pick_port ();
  g_autofree char *cport = g_strdup_printf ("%u", control);
  g_autofree char *mport = g_strdup_printf ("%u", pick_media_ports (control));
  const char *sipp = g_getenv ("SIPP");

  for (guint i = 0; extra[i]; i++)
    if (strcmp (extra[i], "-p") == 0 && extra[i + 1])
      run->local_port = (guint16) g_ascii_strtoull (extra[i + 1], NULL, 10);
  g_strv_builder_add_many (args, sipp && *sipp ? sipp : "sipp", target, "-sf", path,
                           "-m", "1", "-i", "127.0.0.1", "-cp", cport, "-mp", mport,
                           "-nostdin",
                           "-timeout", "15s", "-timeout_error",
                           "-trace_msg", "-message_file", msgs,
                           "-trace_err", "-error_file", err, NULL);
  if (!run->local_port) {
    g_autofree char *lport = NULL;
    run->local_port = flow_pick_port ();
    lport = g_strdup_printf ("%u", run->local_port);
    g_strv_builder_add_many (args, "-p", lport, NULL);
  }
  g_strv_builder_addv (args, (const char **) extra);
  return g_strv_builder_end (args);
}

/* A SIPp run under way. */
struct _FlowSipp {
  char *name;               /* the scenario without ".xml", for sipp-runs.log */
  char *stem;               /* its files: stem.out, stem.msg, stem.err */
  char *runs_log;
  FlowRun *run;
  Child *child;
  guint timeout_ms;         /* the harness's bound on this run */
};

/* SIPP_TIMEOUT_MS, or longer for a run given a longer "-timeout Ns". */
static guint
sipp_bound_ms (const char *const *extra)
{
  for (guint i = 0; extra && extra[i] && extra[i + 1]; i++)
    if (strcmp (extra[i], "-timeout") == 0) {
      guint64 s = g_ascii_strtoull (extra[i + 1], NULL, 10);
      if (s * 1000 + 15000 > SIPP_TIMEOUT_MS)
        return (guint) MIN (s * 1000 + 15000, 600000);
    }
  return SIPP_TIMEOUT_MS;
}

static FlowSipp *
sipp_spawn (FlowDaemon *d, const char *scenario, const char *const *extra)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  FlowSipp *s = g_new0 (FlowSipp, 1);
  g_autofree char *out = NULL;
  g_auto (GStrv) argv = NULL;

  s->name = g_strndup (scenario, strcspn (scenario, "."));
  s->stem = g_strdup_printf ("%s/sipp-%02u-%s", d->dir, ++d->sipp_runs, s->name);
  s->runs_log = g_build_filename (d->dir, "sipp-runs.log", NULL);
  s->timeout_ms = sipp_bound_ms (extra);
  s->run = g_new0 (FlowRun, 1);
  s->run->sent = g_ptr_array_new_with_free_func (g_free);
  s->run->received = g_ptr_array_new_with_free_func (g_free);
  s->run->sent_us = g_array_new (FALSE, FALSE, sizeof (gint64));
  s->run->received_us = g_array_new (FALSE, FALSE, sizeof (gint64));
  argv = sipp_argv (d, scenario, s->stem, extra, s->run);
  out = g_strconcat (s->stem, ".out", NULL);
  g_subprocess_launcher_set_stdout_file_path (launcher, out);
  g_subprocess_launcher_set_cwd (launcher, d->dir);
  s->child = child_spawn (launcher, (const char *const *) argv);
  return s;
}

/* Waits (bounded) for the run to end, reads its message log, frees s. */
static FlowRun *
sipp_collect (FlowSipp *s, guint timeout_ms)
{
  g_autofree char *msgs = g_strconcat (s->stem, ".msg", NULL);
  g_autofree char *text = NULL, *summary = NULL;
  FlowRun *run = s->run;
  Child *c = s->child;

  if (!child_wait (c, timeout_ms)) {
    run->timed_out = TRUE;
    g_subprocess_force_exit (c->proc);
    child_wait (c, KILL_TIMEOUT_MS);
  }
  run->exit_status = c->done && g_subprocess_get_if_exited (c->proc)
                         ? g_subprocess_get_exit_status (c->proc) : -1;
  child_free (c);

  text = read_file (msgs);
  run->all_tcp = TRUE;
  parse_message_log (text, run);
  run->all_tcp = run->all_tcp && run->sent->len > 0;
  summary = run_summary (run, s->name);
  append_line (s->runs_log, summary);
  g_free (s->name);
  g_free (s->stem);
  g_free (s->runs_log);
  g_free (s);
  return run;
}

static FlowRun *
sipp_run_once (FlowDaemon *d, const char *scenario, const char *const *extra)
{
  FlowSipp *s = sipp_spawn (d, scenario, extra);
  return sipp_collect (s, s->timeout_ms);
}

/* The NULL-terminated arguments of a variadic call. */
static char **
collect_args (va_list ap)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  const char *arg;

  while ((arg = va_arg (ap, const char *)))
    g_strv_builder_add (builder, arg);
  return g_strv_builder_end (builder);
}

static FlowRun *
sipp_run (FlowDaemon *d, const char *scenario, const char *const *extra)
{
  FlowRun *run;

  /* A port we found free may be taken by another process before SIPp binds
   * it; SIPp then gives up before sending anything, and we try new ports. */
  for (guint attempt = 1;; attempt++) {
    run = sipp_run_once (d, scenario, extra);
    if (attempt == START_ATTEMPTS || run->exit_status != SIPP_EXIT_BIND || run->sent->len)
      return run;
    flow_run_free (run);
  }
}

/* Asserts that SIPp saw its scenario through; `what` names the run. */
static FlowRun *
assert_run_ok (FlowRun *run, const char *what)
{
  if (run->exit_status != 0)
    g_printerr ("flow: %s failed (exit %d%s)\n", what, run->exit_status,
                run->timed_out ? ", timed out" : "");
  g_assert_false (run->timed_out);
  g_assert_cmpint (run->exit_status, ==, 0);
  return run;
}

FlowRun *
flow_sipp_try (FlowDaemon *d, const char *scenario, ...)
{
  g_auto (GStrv) extra = NULL;
  va_list ap;

  va_start (ap, scenario);
  extra = collect_args (ap);
  va_end (ap);
  return sipp_run (d, scenario, (const char *const *) extra);
}

FlowRun *
flow_sipp (FlowDaemon *d, const char *scenario, ...)
{
  g_autofree char *what = g_strdup_printf ("SIPp scenario %s", scenario);
  g_auto (GStrv) extra = NULL;
  va_list ap;

  va_start (ap, scenario);
  extra = collect_args (ap);
  va_end (ap);
  return assert_run_ok (sipp_run (d, scenario, (const char *const *) extra), what);
}

/* TRUE if something holds the UDP port on 127.0.0.1 (we cannot bind it). */
static gboolean
udp_port_taken (guint16 port)
{
  g_autoptr (GSocket) udp = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                          G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr (GSocketAddress) addr = loopback (port);

  return udp && !g_socket_bind (udp, addr, FALSE, NULL);
}

/* Until SIPp has bound its SIP port (TRUE) or exited (FALSE), bounded. */
static gboolean
sipp_wait_bound (FlowSipp *s, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (g_get_monotonic_time () < deadline) {
    while (g_main_context_iteration (NULL, FALSE))
      ;
    if (s->child->done)
      return FALSE;
    if (udp_port_taken (s->run->local_port))
      return TRUE;
    g_usleep (10 * 1000);
  }
  return FALSE;
}

static FlowSipp *
sipp_start (FlowDaemon *d, const char *scenario, const char *const *extra)
{
  gboolean client_connection = FALSE;

  /* "-t t1" (one TCP connection SIPp opens): nothing is bound to wait for;
   * requests to it come over that connection. */
  for (guint i = 0; extra[i]; i++)
    client_connection = client_connection || strcmp (extra[i], "-t") == 0;
  if (client_connection)
    return sipp_spawn (d, scenario, extra);
  /* As in sipp_run: a port taken under our feet means new ports. */
  for (guint attempt = 1;; attempt++) {
    FlowSipp *s = sipp_spawn (d, scenario, extra);
    FlowRun *run;
    if (sipp_wait_bound (s, READY_TIMEOUT_MS) || attempt == START_ATTEMPTS)
      return s;
    if (!s->child->done)
      return s;   /* slow, but alive: flow_sipp_wait will judge */
    run = sipp_collect (s, KILL_TIMEOUT_MS);
    if (run->exit_status != SIPP_EXIT_BIND || run->sent->len || run->received->len) {
      g_printerr ("flow: SIPp %s exited at once (exit %d)\n", scenario, run->exit_status);
      g_assert_cmpint (run->exit_status, ==, SIPP_EXIT_BIND);
    }
    flow_run_free (run);
  }
}

FlowSipp *
flow_sipp_start (FlowDaemon *d, const char *scenario, ...)
{
  g_auto (GStrv) extra = NULL;
  va_list ap;

  va_start (ap, scenario);
  extra = collect_args (ap);
  va_end (ap);
  return sipp_start (d, scenario, (const char *const *) extra);
}

FlowRun *
flow_sipp_wait (FlowSipp *s)
{
  return sipp_collect (s, s->timeout_ms);
}

FlowRun *
flow_sipp_finish (FlowSipp *s, const char *who)
{
  g_autofree char *what = g_strdup_printf ("%s's SIPp", who);
  return assert_run_ok (flow_sipp_wait (s), what);
}

FlowRun *
flow_sipp_collect (FlowSipp *s)
{
  FlowRun *run = flow_sipp_wait (s);
  g_assert_false (run->timed_out);   /* the harness did not have to kill it */
  return run;
}

void
flow_run_free (FlowRun *run)
{
  if (!run)
    return;
  g_ptr_array_unref (run->sent);
  g_ptr_array_unref (run->received);
  g_clear_pointer (&run->sent_us, g_array_unref);
  g_clear_pointer (&run->received_us, g_array_unref);
  g_free (run);
}

const char *
flow_run_last_received (const FlowRun *run)
{
  return run->received->len ? g_ptr_array_index (run->received, run->received->len - 1) : NULL;
}

const char *
flow_run_last_sent (const FlowRun *run)
{
  return run->sent->len ? g_ptr_array_index (run->sent, run->sent->len - 1) : NULL;
}

/* ---- other commands ------------------------------------------------------ */

/* A command under way: its process and where its output goes. */
struct _FlowCommand {
  Child *child;
  char *out_path, *err_path, *line;
};

FlowCommand *
flow_command_start (const char *const *argv)
{
  static guint runs;
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  const char *dir = flow_case_dir ();
  g_autofree char *stem = g_strdup_printf ("%s/command-%02u", dir, ++runs);
  FlowCommand *c = g_new0 (FlowCommand, 1);

  c->out_path = g_strconcat (stem, ".out", NULL);
  c->err_path = g_strconcat (stem, ".err", NULL);
  c->line = g_strjoinv (" ", (char **) argv);
  g_subprocess_launcher_set_stdout_file_path (launcher, c->out_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, c->err_path);
  g_subprocess_launcher_set_cwd (launcher, dir);
  c->child = child_spawn (launcher, argv);
  return c;
}

int
flow_command_finish (FlowCommand *c, guint timeout_ms, char **out, char **err)
{
  int status = -1;

  if (child_wait (c->child, timeout_ms) && g_subprocess_get_if_exited (c->child->proc))
    status = g_subprocess_get_exit_status (c->child->proc);
  else
    g_printerr ("flow: \"%s\" did not exit within %u ms\n", c->line, timeout_ms);
  child_free (c->child);
  if (out)
    *out = read_file (c->out_path);
  if (err)
    *err = read_file (c->err_path);
  g_free (c->out_path);
  g_free (c->err_path);
  g_free (c->line);
  g_free (c);
  return status;
}

int
flow_command (const char *const *argv, guint timeout_ms, char **out, char **err)
{
  return flow_command_finish (flow_command_start (argv), timeout_ms, out, err);
}

/* ---- reading SIP messages -------------------------------------------------- */

char *
flow_msg_body (const char *msg)
{
  const char *blank = msg ? strstr (msg, "\n\n") : NULL;
  return g_strdup (blank ? blank + 2 : "");
}

char *
flow_msg_start_line (const char *msg)
{
  return g_strndup (msg, strcspn (msg, "\n"));
}

int
flow_msg_status (const char *msg)
{
  if (!msg || !g_str_has_prefix (msg, "SIP/2.0 "))
    return 0;
  return (int) g_ascii_strtoll (msg + 8, NULL, 10);
}

char **
flow_msg_headers (const char *msg, const char *name)
{
  g_autoptr (GStrvBuilder) values = g_strv_builder_new ();
  g_auto (GStrv) lines = g_strsplit (msg ? msg : "", "\n", -1);
  gsize name_len = strlen (name);

  /* Line 0 is the start line; the header ends at the first empty line. */
  for (guint i = 1; lines[i] && *lines[i]; i++) {
    const char *line = lines[i];
    const char *after = line + name_len;
    if (g_ascii_strncasecmp (line, name, name_len) != 0)
      continue;
    while (*after == ' ' || *after == '\t')
      after++;
    if (*after != ':')
      continue;
    g_autofree char *value = g_strdup (after + 1);
    g_strv_builder_add (values, g_strstrip (value));
  }
  return g_strv_builder_end (values);
}

char **
flow_msg_header_entries (const char *msg, const char *name)
{
  g_auto (GStrv) headers = flow_msg_headers (msg, name);
  g_autoptr (GStrvBuilder) entries = g_strv_builder_new ();

  for (guint h = 0; headers[h]; h++) {
    const char *start = headers[h];
    gboolean in_angle = FALSE, in_quote = FALSE;
    for (const char *p = headers[h];; p++) {
      if (*p == '"' && !in_angle)
        in_quote = !in_quote;
      else if (*p == '<' && !in_quote)
        in_angle = TRUE;
      else if (*p == '>' && !in_quote)
        in_angle = FALSE;
      if (*p == '\0' || (*p == ',' && !in_angle && !in_quote)) {
        g_autofree char *entry = g_strndup (start, p - start);
        g_strv_builder_add (entries, g_strstrip (entry));
        if (*p == '\0')
          break;
        start = p + 1;
      }
    }
  }
  return g_strv_builder_end (entries);
}

char **
flow_msg_contacts (const char *msg)
{
  return flow_msg_header_entries (msg, "Contact");
}

char *
flow_require_header (const char *msg, const char *name)
{
  g_auto (GStrv) values = flow_msg_headers (msg, name);
  if (!values[0])
    g_printerr ("flow: no %s header in:\n%s\n", name, msg);
  g_assert_nonnull (values[0]);
  return g_strdup (values[0]);
}

char *
flow_msg_tag (const char *msg, const char *name)
{
  g_autofree char *value = flow_require_header (msg, name);
  const char *close = strchr (value, '>');
  const char *hit = strstr (close ? close : value, ";tag=");

  if (!hit)
    return NULL;
  hit += strlen (";tag=");
  return g_strndup (hit, strcspn (hit, ";, \t"));
}

guint64
flow_msg_cseq (const char *msg)
{
  g_autofree char *cseq = flow_require_header (msg, "CSeq");
  return g_ascii_strtoull (cseq, NULL, 10);
}

char *
flow_msg_cseq_method (const char *msg)
{
  g_autofree char *cseq = flow_require_header (msg, "CSeq");
  const char *space = strchr (cseq, ' ');
  g_assert_nonnull (space);
  return g_strdup (g_strstrip ((char *) space));
}

char *
flow_msg_branch (const char *msg)
{
  g_autofree char *via = flow_require_header (msg, "Via");
  const char *hit = strstr (via, "branch=");
  g_assert_nonnull (hit);
  hit += strlen ("branch=");
  return g_strndup (hit, strcspn (hit, ";, \t"));
}

char *
flow_contact_uri (const char *entry)
{
  const char *open = strchr (entry, '<');
  const char *close = open ? strchr (open, '>') : NULL;

  if (open && close)
    return g_strndup (open + 1, close - open - 1);
  return g_strndup (entry, strcspn (entry, ";"));
}

gint64
flow_contact_expires (const char *entry)
{
  const char *close = strchr (entry, '>');
  const char *params = close ? close + 1 : entry;
  g_autofree char *lower = g_ascii_strdown (params, -1);
  const char *hit = strstr (lower, ";expires=");

  if (!hit)
    return -1;
  return g_ascii_strtoll (hit + strlen (";expires="), NULL, 10);
}

/* ---- finding messages in a run --------------------------------------------------- */

const char *
flow_find_msg (const GPtrArray *msgs, const char *start, guint nth)
{
  for (guint i = 0; i < msgs->len; i++) {
    const char *m = g_ptr_array_index (msgs, i);
    if (g_str_has_prefix (m, start) && nth-- == 0)
      return m;
  }
  return NULL;
}

guint
flow_count_msgs (const GPtrArray *msgs, const char *start)
{
  guint n = 0;
  for (guint i = 0; i < msgs->len; i++)
    n += g_str_has_prefix (g_ptr_array_index (msgs, i), start);
  return n;
}

static gboolean
is_response (const char *m, int status, const char *method)
{
  g_auto (GStrv) cseq = NULL;

  if (flow_msg_status (m) != status)
    return FALSE;
  cseq = flow_msg_headers (m, "CSeq");
  return cseq[0] && g_str_has_suffix (cseq[0], method);
}

const char *
flow_find_response (const GPtrArray *msgs, int status, const char *method, guint nth)
{
  for (guint i = 0; i < msgs->len; i++) {
    const char *m = g_ptr_array_index (msgs, i);
    if (is_response (m, status, method) && nth-- == 0)
      return m;
  }
  return NULL;
}

guint
flow_count_responses (const GPtrArray *msgs, int status, const char *method)
{
  guint n = 0;
  for (guint i = 0; i < msgs->len; i++)
    n += is_response (g_ptr_array_index (msgs, i), status, method);
  return n;
}

const char *
flow_require_msg (const GPtrArray *msgs, const char *start, guint nth)
{
  const char *m = flow_find_msg (msgs, start, nth);
  if (!m)
    g_printerr ("flow: no message #%u starting with \"%s\"\n", nth, start);
  g_assert_nonnull (m);
  return m;
}

const char *
flow_require_response (const GPtrArray *msgs, int status, const char *method, guint nth)
{
  const char *m = flow_find_response (msgs, status, method, nth);
  if (!m)
    g_printerr ("flow: no %d response #%u to %s\n", status, nth, method);
  g_assert_nonnull (m);
  return m;
}

guint
flow_msg_index (const GPtrArray *msgs, const char *msg)
{
  for (guint i = 0; i < msgs->len; i++)
    if (g_ptr_array_index (msgs, i) == msg)
      return i;
  g_assert_not_reached ();
}

gint64
flow_run_msg_time (const FlowRun *run, const char *msg)
{
  for (guint i = 0; i < run->sent->len; i++)
    if (g_ptr_array_index (run->sent, i) == msg)
      return g_array_index (run->sent_us, gint64, i);
  return g_array_index (run->received_us, gint64, flow_msg_index (run->received, msg));
}

gint64
flow_run_ms_between (const FlowRun *run, const char *from, const char *to)
{
  gint64 from_us = flow_run_msg_time (run, from), to_us = flow_run_msg_time (run, to);

  g_assert_cmpint (from_us, >, 0);
  g_assert_cmpint (to_us, >, 0);
  return (to_us - from_us) / 1000;
}
