/* flow-harness: run tandem and SIPp scenarios against it from g_test programs.
 *
 * Each test case runs in its own child process (flow_add_test), with its own
 * temporary directory, tandem instance and ports, so cases are independent
 * and one failing assertion does not stop the others. When a case fails, the
 * parent prints the tail of tandem's log and the last SIPp run's output, and
 * keeps the directory; when it passes, the directory is removed.
 *
 * Environment (set by meson): TANDEM_BIN, the daemon; TANDEM_FLOWS_DIR, where
 * the SIPp scenarios live. All traffic stays on 127.0.0.1. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _FlowDaemon FlowDaemon;

/* One finished SIPp run. */
typedef struct {
  int exit_status;          /* SIPp's exit code (0: every call succeeded); -1 if killed */
  gboolean timed_out;       /* the harness had to kill it */
  guint16 local_port;       /* SIPp's SIP port, as in its Contact/Via */
  gboolean all_tcp;         /* every message went over TCP */
  GPtrArray *sent;          /* char*: SIP messages SIPp sent, CRs removed, in order */
  GPtrArray *received;      /* char*: SIP messages SIPp received */
  GArray *sent_us;          /* gint64: when each sent message left (wall clock, µs; 0 unknown) */
  GArray *received_us;      /* gint64: when each received message arrived */
} FlowRun;

/* A SIPp run in the background (flow_sipp_start). */
typedef struct _FlowSipp FlowSipp;

void flow_init (int *argc, char ***argv);
/* Registers a case that runs in a child process of its own. */
void flow_add_test (const char *path, void (*body) (void));
/* The running case's temporary directory. */
const char *flow_case_dir (void);
/* Notes what a case saw; printed only if the case fails. */
void flow_note (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* Starts tandem and waits until it answers OPTIONS. extra_config is appended
 * to the generated file; a group it names ([auth], [registrar], [user alice]
 * ...) replaces the harness's default for that group. [sip] and [store] are
 * always the harness's own. */
FlowDaemon *flow_daemon_start (const char *extra_config);
/* The same with more lines in the harness's [sip] group (tls-listen ...). */
FlowDaemon *flow_daemon_start_sip (const char *sip_lines, const char *extra_config);
/* Rewrites the configuration file (same port and store) with new extra text. */
void flow_daemon_write_config (FlowDaemon *d, const char *extra_config);
/* Sends a signal; for SIGKILL also waits (bounded) until the process is gone. */
void flow_daemon_signal (FlowDaemon *d, int signum);
/* Starts tandem again on the same configuration, port and store. */
void flow_daemon_restart (FlowDaemon *d);
/* SIGTERM; asserts a clean exit (status 0) within 5 s. */
void flow_daemon_stop (FlowDaemon *d);
/* Waits (bounded) until tandem's log contains needle; FALSE on timeout. */
gboolean flow_daemon_wait_log (FlowDaemon *d, const char *needle, guint timeout_ms);
guint16 flow_daemon_port (FlowDaemon *d);
/* tandem's process id while it runs (e.g. for /proc/PID/status). */
GPid flow_daemon_pid (FlowDaemon *d);
const char *flow_daemon_dir (FlowDaemon *d);
/* Stops tandem if it still runs (SIGKILL) and frees; the directory stays for
 * the parent to judge. */
void flow_daemon_free (FlowDaemon *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FlowDaemon, flow_daemon_free)

/* A loopback port free for UDP and TCP, e.g. to give several SIPp runs the
 * same "-p" so that they register the same Contact. */
guint16 flow_pick_port (void);

/* Runs a scenario from TANDEM_FLOWS_DIR against the daemon with -m 1 and the
 * extra SIPp arguments (NULL-terminated), and asserts that it succeeded.
 * Without "-p PORT" among them, SIPp gets a fresh port of its own. */
FlowRun *flow_sipp (FlowDaemon *d, const char *scenario, ...) G_GNUC_NULL_TERMINATED;
/* The same without the assertion. */
FlowRun *flow_sipp_try (FlowDaemon *d, const char *scenario, ...) G_GNUC_NULL_TERMINATED;
/* Starts a scenario like flow_sipp_try, but returns once SIPp has bound its
 * SIP port (so that requests sent to it are not lost), e.g. a UAS that a
 * call will reach. flow_sipp_wait collects it (bounded) and frees s; check
 * its exit_status yourself. */
FlowSipp *flow_sipp_start (FlowDaemon *d, const char *scenario, ...) G_GNUC_NULL_TERMINATED;
FlowRun *flow_sipp_wait (FlowSipp *s);
/* flow_sipp_wait, asserting that SIPp saw its scenario through; `who`
 * ("alice") names the run in the failure message. */
FlowRun *flow_sipp_finish (FlowSipp *s, const char *who);
/* flow_sipp_wait for a run expected to wait in vain until its -timeout ends
 * it: asserts only that the harness did not have to kill it (what it
 * received is what counts). */
FlowRun *flow_sipp_collect (FlowSipp *s);
void flow_run_free (FlowRun *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FlowRun, flow_run_free)
/* The last message SIPp received (the final response), or NULL. */
const char *flow_run_last_received (const FlowRun *run);
/* The last message SIPp sent, or NULL. */
const char *flow_run_last_sent (const FlowRun *run);

/* Runs a command in the case's directory, bounded by timeout_ms, with its
 * output captured (out and err may be NULL). Returns its exit status, or -1
 * if it was killed or timed out. */
int flow_command (const char *const *argv, guint timeout_ms, char **out, char **err);
/* The same in two steps, for a command that runs while the case does
 * other things (e.g. an RTP probe across a change of the call):
 * flow_command_finish waits (bounded), frees c, and returns what
 * flow_command would. */
typedef struct _FlowCommand FlowCommand;
FlowCommand *flow_command_start (const char *const *argv);
int flow_command_finish (FlowCommand *c, guint timeout_ms, char **out, char **err);

/* ---- reading SIP messages -------------------------------------------------- */

/* The message body (after the first empty line); "" without one. */
char *flow_msg_body (const char *msg);
/* The status code of a response; 0 for a request. */
int flow_msg_status (const char *msg);
/* The first line (request line or status line). */
char *flow_msg_start_line (const char *msg);
/* The values of every header line called name (case-insensitive; compact
 * forms such as "m" are not mapped), in order;
 * an empty vector if there is none. Values are trimmed, not split at commas. */
char **flow_msg_headers (const char *msg, const char *name);
/* Every entry of the header lines called name, split at commas outside <>
 * and quotes, trimmed. */
char **flow_msg_header_entries (const char *msg, const char *name);
/* Every Contact entry (flow_msg_header_entries). */
char **flow_msg_contacts (const char *msg);
/* The first value of header name; asserts there is one. */
char *flow_require_header (const char *msg, const char *name);
/* The tag parameter of a From or To header (asserted present); NULL if it
 * has none. */
char *flow_msg_tag (const char *msg, const char *name);
/* The CSeq number, and the CSeq method. */
guint64 flow_msg_cseq (const char *msg);
char *flow_msg_cseq_method (const char *msg);
/* The branch parameter of the (first) Via; asserts there is one. */
char *flow_msg_branch (const char *msg);
/* The URI of a Contact entry: the text between < and >, else up to ';'. */
char *flow_contact_uri (const char *entry);
/* A Contact entry's expires parameter; -1 without one. */
gint64 flow_contact_expires (const char *entry);

/* ---- finding messages in a run ------------------------------------------------ */

/* msgs is a FlowRun's sent or received; the messages returned are its own
 * (compare pointers, do not free). */

/* The nth (0-based) message whose start line begins with start ("INVITE ",
 * "BYE "), or NULL; flow_count_msgs: how many there are. */
const char *flow_find_msg (const GPtrArray *msgs, const char *start, guint nth);
guint flow_count_msgs (const GPtrArray *msgs, const char *start);
/* The nth response with this status to a request of this method (by its
 * CSeq), or NULL; flow_count_responses: how many there are. */
const char *flow_find_response (const GPtrArray *msgs, int status, const char *method, guint nth);
guint flow_count_responses (const GPtrArray *msgs, int status, const char *method);
/* flow_find_msg and flow_find_response, asserting that there is one. */
const char *flow_require_msg (const GPtrArray *msgs, const char *start, guint nth);
const char *flow_require_response (const GPtrArray *msgs, int status, const char *method,
                                   guint nth);
/* Where msg stands in msgs; asserts it is there. */
guint flow_msg_index (const GPtrArray *msgs, const char *msg);
/* When a message of the run (sent or received) left or arrived: wall clock
 * in µs, 0 if unknown. */
gint64 flow_run_msg_time (const FlowRun *run, const char *msg);
/* Milliseconds from message `from` to message `to` of a run (sent or
 * received); asserts both times are known. */
gint64 flow_run_ms_between (const FlowRun *run, const char *from, const char *to);

G_END_DECLS
