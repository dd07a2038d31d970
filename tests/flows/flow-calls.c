/* flow-calls: parties, SDP, RTP probe and CDRs of the call flow tests (see
 * flow-calls.h). */
#include "flow-calls.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* Bounds on what the scenarios and tandem write while a case waits. */
#define PORT_FILE_TIMEOUT_MS 15000
#define CDR_TIMEOUT_MS 5000
#define PROBE_TIMEOUT_MS 10000

static const char *
or_default (const char *value, const char *fallback)
{
  return value ? value : fallback;
}

static char *
number_str (guint n)
{
  return g_strdup_printf ("%u", n);
}

/* ---- reserved ports ------------------------------------------------------------- */

/* The ports of the parties stay bound (UDP) by this process (port → GSocket)
 * until what they are for binds them: a callee's SIP port until its SIPp
 * runs, the media ports until the probe runs (and again between probe
 * runs). Otherwise, in the seconds between the harness finding a port free
 * and its use, another process (a SIPp, a tandem, a parallel test
 * program), or the next party, may be given it as an ephemeral port. */
static GHashTable *reserved_ports;

/* Binds port for UDP on loopback and keeps it; FALSE if it is taken. */
static gboolean
reserve_port (guint16 port)
{
  g_autoptr (GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                           G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, port);

  if (!reserved_ports)
    reserved_ports = g_hash_table_new_full (NULL, NULL, NULL, g_object_unref);
  if (g_hash_table_contains (reserved_ports, GUINT_TO_POINTER (port)))
    return TRUE;
  if (!sock || !g_socket_bind (sock, addr, FALSE, NULL))
    return FALSE;
  g_hash_table_insert (reserved_ports, GUINT_TO_POINTER (port), g_steal_pointer (&sock));
  return TRUE;
}

/* A fresh port (free for UDP and TCP), reserved. */
static guint16
pick_reserved_port (void)
{
  for (guint attempt = 0; attempt < 100; attempt++) {
    guint16 port = flow_pick_port ();
    if (reserve_port (port))
      return port;
  }
  g_error ("no free loopback port to reserve");
}

static void
release_port (guint16 port)
{
  if (reserved_ports)
    g_hash_table_remove (reserved_ports, GUINT_TO_POINTER (port));
}

/* Runs the probe command with the reserved ones of its bind ports let go
 * for it, and takes them back once it is done (a port someone else took
 * meanwhile stays theirs). */
static int
probe_command (const char *const *argv, const guint16 *bind_ports, guint n, guint timeout_ms,
               char **out, char **err)
{
  g_autoptr (GArray) released = g_array_new (FALSE, FALSE, sizeof (guint16));
  int status;

  for (guint i = 0; reserved_ports && i < n; i++)
    if (g_hash_table_remove (reserved_ports, GUINT_TO_POINTER (bind_ports[i])))
      g_array_append_val (released, bind_ports[i]);
  status = flow_command (argv, timeout_ms, out, err);
  for (guint i = 0; i < released->len; i++)
    reserve_port (g_array_index (released, guint16, i));
  return status;
}

/* ---- parties ------------------------------------------------------------------ */

FlowParty
flow_party (const char *user, const char *scenario, const char *side)
{
  return (FlowParty) { .user = user, .scenario = scenario, .side = side, .pause_ms = "0",
                       .sip_port = pick_reserved_port (), .rtp_port = pick_reserved_port (),
                       .rtp_port2 = pick_reserved_port () };
}

void
flow_register (FlowDaemon *d, const char *user, guint16 port)
{
  g_autofree char *port_text = number_str (port);
  g_autofree char *password = g_strdup_printf ("%s-secret", user);
  g_autoptr (FlowRun) run = flow_sipp (d, "register.xml", "-au", user, "-ap", password,
                                       "-key", "aor", user, "-key", "contact_user", user,
                                       "-key", "expires", "3600", "-p", port_text, NULL);
  g_assert_cmpint (flow_msg_status (flow_run_last_received (run)), ==, 200);
}

/* The party's optional SIPp arguments (-recv_timeout, -key NAME VALUE),
 * NULL-terminated: they go last in the variadic argument list, so that
 * the first NULL also ends the list when there are fewer. */
#define PARTY_TAIL_LEN (2 + 3 * FLOW_PARTY_MAX_KEYS + 1)
#define PARTY_TAIL(t) t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], NULL
G_STATIC_ASSERT (PARTY_TAIL_LEN == 12);

static void
party_tail (const FlowParty *p, const char *tail[PARTY_TAIL_LEN])
{
  guint n = 0;

  if (p->recv_timeout) {
    tail[n++] = "-recv_timeout";
    tail[n++] = p->recv_timeout;
  }
  for (guint i = 0; p->keys && p->keys[i]; i += 2) {
    g_assert_nonnull (p->keys[i + 1]);
    g_assert_cmpuint (i / 2, <, FLOW_PARTY_MAX_KEYS);
    tail[n++] = "-key";
    tail[n++] = p->keys[i];
    tail[n++] = p->keys[i + 1];
  }
  while (n < PARTY_TAIL_LEN)
    tail[n++] = NULL;
}

FlowSipp *
flow_callee_start (FlowDaemon *d, const FlowParty *p)
{
  g_autofree char *sip = number_str (p->sip_port), *rtp = number_str (p->rtp_port);
  g_autofree char *rtp2 = number_str (p->rtp_port2);
  const char *tail[PARTY_TAIL_LEN];

  party_tail (p, tail);
  release_port (p->sip_port);
  flow_register (d, p->user, p->sip_port);
  return flow_sipp_start (d, p->scenario, "-p", sip, "-m", or_default (p->calls, "1"),
                          "-timeout", or_default (p->timeout, "15s"),
                          "-key", "rtp_port", rtp, "-key", "rtp_port2", rtp2,
                          "-key", "side", p->side, "-key", "pt", or_default (p->pt, "8"),
                          "-key", "codec", or_default (p->codec, "PCMA"),
                          "-key", "answer_attr", or_default (p->answer_attr, "a=sendrecv"),
                          "-d", or_default (p->pause_ms, "0"), PARTY_TAIL (tail));
}

FlowSipp *
flow_caller_start (FlowDaemon *d, const FlowParty *p, const char *callee)
{
  g_autofree char *rtp = number_str (p->rtp_port), *rtp2 = number_str (p->rtp_port2);
  g_autofree char *default_password = g_strdup_printf ("%s-secret", p->user);
  g_autofree char *auth_uri = g_strdup_printf ("%s@pbx.test", callee);
  const char *tail[PARTY_TAIL_LEN];

  party_tail (p, tail);

  /* The digest uri must be the Request-URI's (the harness's default is the
   * registrar's); a later -auth_uri wins. */
  return flow_sipp_start (d, p->scenario, "-au", p->user,
                          "-ap", or_default (p->password, default_password),
                          "-auth_uri", auth_uri, "-timeout", or_default (p->timeout, "15s"),
                          "-key", "caller", p->user, "-key", "callee", callee,
                          "-key", "rtp_port", rtp, "-key", "rtp_port2", rtp2,
                          "-key", "side", p->side, "-key", "hold_addr", or_default (p->hold_addr, "127.0.0.1"),
                          "-key", "hold_attr", or_default (p->hold_attr, "a=sendonly"),
                          "-key", "hold_formats", or_default (p->hold_formats, "0 8 101"),
                          "-key", "resume_formats", or_default (p->resume_formats, "0 8 101"),
                          "-d", or_default (p->pause_ms, "0"), PARTY_TAIL (tail));
}

guint16
flow_wait_port_file (const char *name)
{
  g_autofree char *file = g_strdup_printf ("%s.port", name);
  g_autofree char *path = g_build_filename (flow_case_dir (), file, NULL);
  gint64 deadline = g_get_monotonic_time () + PORT_FILE_TIMEOUT_MS * 1000;

  while (g_get_monotonic_time () < deadline) {
    g_autofree char *text = NULL;
    if (g_file_get_contents (path, &text, NULL, NULL) && *text) {
      guint64 port = g_ascii_strtoull (text, NULL, 10);
      g_assert_cmpuint (port, >, 0);
      return (guint16) port;
    }
    while (g_main_context_iteration (NULL, FALSE))
      ;
    g_usleep (10 * 1000);
  }
  g_printerr ("flow: %s not written within %d ms\n", path, PORT_FILE_TIMEOUT_MS);
  g_assert_not_reached ();
}

char **
flow_wait_lines_file (const char *file, guint min_lines)
{
  g_autofree char *path = g_build_filename (flow_case_dir (), file, NULL);
  gint64 deadline = g_get_monotonic_time () + PORT_FILE_TIMEOUT_MS * 1000;

  while (g_get_monotonic_time () < deadline) {
    g_autofree char *text = NULL;
    if (g_file_get_contents (path, &text, NULL, NULL) && *text) {
      g_auto (GStrv) lines = g_strsplit (g_strchomp (text), "\n", -1);
      for (guint i = 0; lines[i]; i++)
        g_strstrip (lines[i]);
      if (g_strv_length (lines) < min_lines)
        g_printerr ("flow: %s has %u lines (want %u):\n%s\n", path, g_strv_length (lines),
                    min_lines, text);
      g_assert_cmpuint (g_strv_length (lines), >=, min_lines);
      return g_steal_pointer (&lines);
    }
    while (g_main_context_iteration (NULL, FALSE))
      ;
    g_usleep (10 * 1000);
  }
  g_printerr ("flow: %s not written within %d ms\n", path, PORT_FILE_TIMEOUT_MS);
  g_assert_not_reached ();
}

/* ---- how calls end ---------------------------------------------------------------- */

int
flow_caller_final (const FlowRun *caller)
{
  const char *last = NULL, *ack = flow_run_last_sent (caller);
  const char *invite = flow_require_msg (caller->sent, "INVITE ", 1);
  g_autofree char *ack_branch = NULL, *invite_branch = flow_msg_branch (invite);

  for (guint i = 0; i < caller->received->len; i++) {
    const char *m = g_ptr_array_index (caller->received, i);
    if (flow_msg_status (m) >= 200)
      last = m;
  }
  g_assert_nonnull (last);
  g_assert_true (g_str_has_prefix (ack, "ACK "));
  ack_branch = flow_msg_branch (ack);
  g_assert_cmpstr (ack_branch, ==, invite_branch);
  return flow_msg_status (last);
}

/* The first request starting with `start` that the callee received is in
 * the transaction of its first INVITE: same CSeq number and branch. */
static void
assert_in_invite_transaction (const FlowRun *callee, const char *start)
{
  const char *inv = flow_require_msg (callee->received, "INVITE ", 0);
  const char *req = flow_require_msg (callee->received, start, 0);
  g_autofree char *inv_branch = flow_msg_branch (inv), *req_branch = flow_msg_branch (req);

  g_assert_cmpuint (flow_msg_cseq (req), ==, flow_msg_cseq (inv));
  g_assert_cmpstr (req_branch, ==, inv_branch);
}

void
flow_assert_error_acked (const FlowRun *callee)
{
  assert_in_invite_transaction (callee, "ACK ");
}

void
flow_assert_cancelled (const FlowRun *callee)
{
  g_autofree char *method = flow_msg_cseq_method (flow_require_msg (callee->received,
                                                                    "CANCEL ", 0));

  g_assert_cmpstr (method, ==, "CANCEL");
  assert_in_invite_transaction (callee, "CANCEL ");
  flow_require_response (callee->sent, 487, "INVITE", 0);
  flow_assert_error_acked (callee);
}

/* ---- SDP ------------------------------------------------------------------------ */

char *
flow_sdp_line (const char *msg, const char *prefix)
{
  g_autofree char *body = flow_msg_body (msg);
  g_auto (GStrv) lines = g_strsplit (body, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (g_strstrip (lines[i]), prefix))
      return g_strdup (lines[i]);
  return NULL;
}

gboolean
flow_sdp_has (const char *msg, const char *line)
{
  g_autofree char *body = flow_msg_body (msg);
  g_auto (GStrv) lines = g_strsplit (body, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    if (strcmp (g_strstrip (lines[i]), line) == 0)
      return TRUE;
  return FALSE;
}

void
flow_assert_sdp_has (const char *msg, const char *line)
{
  if (!flow_sdp_has (msg, line))
    g_printerr ("flow: no SDP line \"%s\" in:\n%s\n", line, msg);
  g_assert_true (flow_sdp_has (msg, line));
}

guint16
flow_sdp_audio_port (const char *msg)
{
  g_autofree char *m = flow_sdp_line (msg, "m=audio ");
  if (!m)
    g_printerr ("flow: no m=audio in:\n%s\n", msg);
  g_assert_nonnull (m);
  return (guint16) g_ascii_strtoull (m + strlen ("m=audio "), NULL, 10);
}

char *
flow_sdp_formats (const char *msg)
{
  g_autofree char *m = flow_sdp_line (msg, "m=audio ");
  const char *avp = m ? strstr (m, "RTP/AVP ") : NULL;
  g_assert_nonnull (avp);
  return g_strdup (avp + strlen ("RTP/AVP "));
}

guint64
flow_sdp_version (const char *msg)
{
  g_autofree char *o = flow_sdp_line (msg, "o=");
  g_auto (GStrv) fields = NULL;

  g_assert_nonnull (o);
  fields = g_strsplit (o, " ", -1);
  g_assert_cmpuint (g_strv_length (fields), >=, 3);
  return g_ascii_strtoull (fields[2], NULL, 10);
}

/* The SDP without its o= line, to compare contents. */
static char *
sdp_without_origin (const char *msg)
{
  g_autofree char *body = flow_msg_body (msg);
  g_auto (GStrv) lines = g_strsplit (body, "\n", -1);
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint i = 0; lines[i]; i++)
    if (!g_str_has_prefix (lines[i], "o="))
      g_string_append_printf (s, "%s\n", lines[i]);
  return g_strdup (s->str);
}

void
flow_assert_sdp_versioned (const char *older, const char *newer)
{
  g_autofree char *old_text = sdp_without_origin (older);
  g_autofree char *new_text = sdp_without_origin (newer);

  if (strcmp (old_text, new_text) != 0)
    g_assert_cmpuint (flow_sdp_version (newer), >, flow_sdp_version (older));
  else
    g_assert_cmpuint (flow_sdp_version (newer), ==, flow_sdp_version (older));
}

guint16
flow_assert_relay_sdp (const char *msg, guint16 not_port, gboolean hold_address,
                       guint16 relay_min, guint16 relay_max)
{
  g_autofree char *o = flow_sdp_line (msg, "o=");
  guint16 port = flow_sdp_audio_port (msg);

  g_assert_nonnull (o);
  g_assert_true (g_str_has_prefix (o, "o=tandem "));
  flow_assert_sdp_has (msg, hold_address ? "c=IN IP4 0.0.0.0" : "c=IN IP4 127.0.0.1");
  g_assert_cmpuint (port, >=, relay_min);
  g_assert_cmpuint (port, <=, relay_max);
  g_assert_cmpuint (port, !=, not_port);
  return port;
}

/* ---- RTP probe ------------------------------------------------------------------ */

char **
flow_probe_run (const FlowProbeEndpoint *eps, guint n)
{
  const char *probe = g_getenv ("TANDEM_RTP_PROBE");
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_autofree char *count = number_str (FLOW_PROBE_PACKETS);
  g_autofree char *out = NULL, *err = NULL;
  g_auto (GStrv) argv = NULL;
  int status;

  g_autofree guint16 *bind_ports = g_new0 (guint16, n);

  g_assert_nonnull (probe);
  g_strv_builder_add_many (b, probe, "-n", count, "-i", "20", "-l", "400", NULL);
  for (guint i = 0; i < n; i++) {
    g_autofree char *spec = g_strdup_printf ("%u:%u:%u:%u", eps[i].bind_port, eps[i].dest_port,
                                             eps[i].ssrc, eps[i].delay_ms);
    g_strv_builder_add (b, spec);
    bind_ports[i] = eps[i].bind_port;
  }
  argv = g_strv_builder_end (b);
  status = probe_command ((const char *const *) argv, bind_ports, n, PROBE_TIMEOUT_MS, &out,
                          &err);
  flow_note ("rtp-probe (exit %d):\n%s%s", status, out, err);
  g_assert_cmpint (status, ==, 0);
  return g_strsplit (out, "\n", -1);
}

char **
flow_probe_pair (guint16 a_port, guint16 a_relay, guint32 a_ssrc, guint16 b_port,
                 guint16 b_relay, guint32 b_ssrc)
{
  FlowProbeEndpoint eps[2] = { { a_port, a_relay, a_ssrc, 0 }, { b_port, b_relay, b_ssrc, 0 } };
  return flow_probe_run (eps, 2);
}

guint
flow_probe_received (char **report, guint16 bind_port, guint16 src_port, guint32 ssrc)
{
  guint total = 0;

  for (guint i = 0; report[i]; i++) {
    guint bind, src, id, n;
    if (sscanf (report[i], "recv %u %u %u %u", &bind, &src, &id, &n) != 4)
      continue;
    if (bind == bind_port && (!src_port || src == src_port) && (!ssrc || id == ssrc))
      total += n;
  }
  return total;
}

guint
flow_probe_sent (char **report, guint16 bind_port)
{
  for (guint i = 0; report[i]; i++) {
    guint bind, n;
    if (sscanf (report[i], "sent %u %u", &bind, &n) == 2 && bind == bind_port)
      return n;
  }
  return 0;
}

char **
flow_probe_trace (const FlowTraceEndpoint *eps, guint n, guint count)
{
  return flow_probe_trace_delayed (eps, NULL, n, count);
}

char **
flow_probe_trace_delayed (const FlowTraceEndpoint *eps, const guint *delays_ms, guint n,
                          guint count)
{
  const char *probe = g_getenv ("TANDEM_RTP_PROBE");
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_autofree char *count_text = number_str (count);
  g_autofree char *out = NULL, *err = NULL;
  g_auto (GStrv) argv = NULL;
  guint latest = 0;
  int status;

  g_autofree guint16 *bind_ports = g_new0 (guint16, n);

  g_assert_nonnull (probe);
  g_strv_builder_add_many (b, probe, "-t", "-n", count_text, "-i", "20", "-l", "300", NULL);
  for (guint i = 0; i < n; i++) {
    g_autofree char *spec = g_strdup_printf ("%u:%u:%u:%u:%u", eps[i].bind_port,
                                             eps[i].dest_port, eps[i].ssrc,
                                             delays_ms ? delays_ms[i] : 0, eps[i].fill);
    g_strv_builder_add (b, spec);
    bind_ports[i] = eps[i].bind_port;
  }
  argv = g_strv_builder_end (b);
  /* count × 20 ms, the latest start and the linger, with room for a
   * loaded machine. */
  for (guint i = 0; delays_ms && i < n; i++)
    latest = MAX (latest, delays_ms[i]);
  status = probe_command ((const char *const *) argv, bind_ports, n,
                          PROBE_TIMEOUT_MS + count * 20 + latest, &out, &err);
  flow_note ("rtp-probe -t (exit %d): %s, %u bytes of report", status, err,
             (guint) strlen (out));
  g_assert_cmpint (status, ==, 0);
  return g_strsplit (out, "\n", -1);
}

/* How long rtp-probe may wait for a dest_file (its FILE_WAIT_MS). */
#define PROBE_FILE_WAIT_MS 15000

/* A probe under way (flow_probe_start_tones): the reserved ports it was
 * given, to take back when it is done. */
struct _FlowProbe {
  FlowCommand *command;
  GArray *released;         /* guint16 */
  guint timeout_ms;
};

FlowProbe *
flow_probe_start_tones (const FlowToneEndpoint *eps, guint n)
{
  const char *probe = g_getenv ("TANDEM_RTP_PROBE");
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_auto (GStrv) argv = NULL;
  FlowProbe *p = g_new0 (FlowProbe, 1);
  guint longest = 0;

  g_assert_nonnull (probe);
  g_strv_builder_add_many (b, probe, "-t", "-i", "20", "-l", "300", NULL);
  p->released = g_array_new (FALSE, FALSE, sizeof (guint16));
  for (guint i = 0; i < n; i++) {
    g_autofree char *dest = eps[i].dest_port ? g_strdup_printf ("%u", eps[i].dest_port)
                                             : g_strdup_printf ("@%s", eps[i].dest_file);
    g_autofree char *spec = g_strdup_printf ("%u:%s:%u:%u:%u:%u:%u:%u", eps[i].bind_port, dest,
                                             eps[i].ssrc, eps[i].delay_ms, eps[i].fill,
                                             eps[i].pt, eps[i].tone_hz, eps[i].count);
    g_assert_true (eps[i].dest_port || eps[i].dest_file);
    g_strv_builder_add (b, spec);
    /* Let go of the reserved ones for the probe (see probe_command). */
    if (reserved_ports &&
        g_hash_table_remove (reserved_ports, GUINT_TO_POINTER (eps[i].bind_port)))
      g_array_append_val (p->released, eps[i].bind_port);
    longest = MAX (longest, eps[i].delay_ms + eps[i].count * 20);
  }
  argv = g_strv_builder_end (b);
  p->timeout_ms = PROBE_TIMEOUT_MS + PROBE_FILE_WAIT_MS + longest;
  p->command = flow_command_start ((const char *const *) argv);
  return p;
}

char **
flow_probe_finish (FlowProbe *p)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = flow_command_finish (p->command, p->timeout_ms, &out, &err);

  for (guint i = 0; i < p->released->len; i++)
    reserve_port (g_array_index (p->released, guint16, i));
  g_array_unref (p->released);
  g_free (p);
  flow_note ("rtp-probe -t (exit %d): %s, %u bytes of report", status, err,
             (guint) strlen (out));
  g_assert_cmpint (status, ==, 0);
  return g_strsplit (out, "\n", -1);
}

char **
flow_probe_trace_tones (const FlowToneEndpoint *eps, guint n)
{
  return flow_probe_finish (flow_probe_start_tones (eps, n));
}

gint64
flow_probe_first_sent (char **report, guint16 bind_port)
{
  for (guint i = 0; report[i]; i++) {
    guint bind;
    gint64 t;
    if (sscanf (report[i], "first %u %" G_GINT64_FORMAT, &bind, &t) == 2 && bind == bind_port)
      return t;
  }
  return 0;
}

static guint
hex_digit (char c)
{
  return g_ascii_isdigit (c) ? (guint) (c - '0') : (guint) (g_ascii_tolower (c) - 'a' + 10);
}

GArray *
flow_probe_packets (char **report, guint16 bind_port)
{
  GArray *pkts = g_array_new (FALSE, TRUE, sizeof (FlowRtpPacket));

  for (guint i = 0; report[i]; i++) {
    guint bind, src, ssrc, seq, marker, pt, ts;
    gint64 t;
    char hex[2 * FLOW_RTP_MAX_PAYLOAD + 2];
    FlowRtpPacket p = { 0 };
    /* A longer payload is cut at the buffer (%1025s: 2 × 512 hex digits + 1). */
    G_STATIC_ASSERT (FLOW_RTP_MAX_PAYLOAD == 512);
    if (sscanf (report[i], "pkt %u %u %u %u %u %u %u %" G_GINT64_FORMAT " %1025s", &bind, &src,
                &ssrc, &seq, &marker, &pt, &ts, &t, hex) != 9 || bind != bind_port)
      continue;
    p.src_port = (guint16) src;
    p.ssrc = ssrc;
    p.seq = (guint16) seq;
    p.marker = marker != 0;
    p.pt = (guint8) pt;
    p.timestamp = ts;
    p.time_us = t;
    if (strcmp (hex, "-") != 0)
      for (const char *h = hex; h[0] && h[1] && p.len < FLOW_RTP_MAX_PAYLOAD; h += 2)
        p.payload[p.len++] = (guint8) (hex_digit (h[0]) << 4 | hex_digit (h[1]));
    g_array_append_val (pkts, p);
  }
  return pkts;
}

gboolean
flow_rtp_is_fill (const FlowRtpPacket *p, guint8 fill)
{
  if (p->len == 0)
    return FALSE;
  for (guint i = 0; i < p->len; i++)
    if (p->payload[i] != fill)
      return FALSE;
  return TRUE;
}

void
flow_assert_heard (char **report, guint16 listener, guint16 relay_port, guint32 ssrc)
{
  guint n = flow_probe_received (report, listener, relay_port, ssrc);
  if (n < FLOW_PROBE_MIN_RECEIVED)
    g_printerr ("flow: port %u heard %u packets of SSRC %#x from %u (want >= %d)\n", listener,
                n, ssrc, relay_port, FLOW_PROBE_MIN_RECEIVED);
  g_assert_cmpuint (n, >=, FLOW_PROBE_MIN_RECEIVED);
}

void
flow_assert_heard_only (char **report, guint16 listener, guint16 relay_port, guint32 ssrc)
{
  flow_assert_heard (report, listener, relay_port, ssrc);
  g_assert_cmpuint (flow_probe_received (report, listener, 0, ssrc), ==,
                    flow_probe_received (report, listener, relay_port, ssrc));
}

void
flow_assert_not_heard (char **report, guint16 listener, guint32 ssrc)
{
  guint n = flow_probe_received (report, listener, 0, ssrc);
  if (n)
    g_printerr ("flow: port %u heard %u packets of SSRC %#x (want none)\n", listener, n, ssrc);
  g_assert_cmpuint (n, ==, 0);
}

/* ---- CDRs ------------------------------------------------------------------------ */

void
flow_cdr_clear (FlowCdr *cdr)
{
  g_clear_pointer (&cdr->caller, g_free);
  g_clear_pointer (&cdr->callee, g_free);
  g_clear_pointer (&cdr->hangup, g_free);
  g_clear_pointer (&cdr->reason, g_free);
}

static char *
column_text (sqlite3_stmt *st, int col)
{
  const unsigned char *text = sqlite3_column_text (st, col);
  return text ? g_strdup ((const char *) text) : NULL;
}

/* The CDR row for the A-leg's Call-ID, FALSE if none (yet). Asserts there
 * is at most one. */
static gboolean
cdr_read (FlowDaemon *d, const char *call_id, FlowCdr *out)
{
  g_autofree char *path = g_build_filename (flow_daemon_dir (d), "tandem.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  guint rows = 0;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 2000);
  g_assert_cmpint (sqlite3_prepare_v2 (db,
                     "SELECT caller, callee, status, hangup, reason, answered_at IS NOT NULL,"
                     " started_at, answered_at, ended_at FROM cdrs WHERE call_id = ?",
                     -1, &st, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (st, 1, call_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW) {
    rows++;
    flow_cdr_clear (out);
    out->caller = column_text (st, 0);
    out->callee = column_text (st, 1);
    out->status = sqlite3_column_int (st, 2);
    out->hangup = column_text (st, 3);
    out->reason = column_text (st, 4);
    out->answered = sqlite3_column_int (st, 5);
    out->started_at = sqlite3_column_double (st, 6);
    out->answered_at = sqlite3_column_double (st, 7);
    out->ended_at = sqlite3_column_double (st, 8);
  }
  sqlite3_finalize (st);
  sqlite3_close (db);
  if (rows > 1)
    g_printerr ("flow: %u CDR rows for call %s\n", rows, call_id);
  g_assert_cmpuint (rows, <=, 1);
  return rows == 1;
}

void
flow_assert_cdr (FlowDaemon *d, const FlowRun *caller, const char *from, const char *dialled,
                 int status, const char *hangup, FlowCdr *out)
{
  const char *invite = flow_require_msg (caller->sent, "INVITE ", 0);
  g_autofree char *call_id = flow_require_header (invite, "Call-ID");
  gint64 deadline = g_get_monotonic_time () + CDR_TIMEOUT_MS * 1000;
  g_auto (FlowCdr) cdr = { 0 };

  while (!cdr_read (d, call_id, &cdr)) {
    if (g_get_monotonic_time () > deadline) {
      g_printerr ("flow: no CDR for call %s within %d ms\n", call_id, CDR_TIMEOUT_MS);
      g_assert_not_reached ();
    }
    g_usleep (50 * 1000);
  }
  flow_note ("CDR %s: %s -> %s status %d hangup %s reason %s answered %d", call_id, cdr.caller,
             cdr.callee, cdr.status, cdr.hangup, cdr.reason ? cdr.reason : "(null)",
             cdr.answered);
  g_assert_cmpstr (cdr.caller, ==, from);
  g_assert_cmpstr (cdr.callee, ==, dialled);
  g_assert_cmpint (cdr.status, ==, status);
  g_assert_cmpint (cdr.answered, ==, status == 200);
  g_assert_cmpstr (cdr.hangup, ==, hangup);
  if (out) {
    flow_cdr_clear (out);
    *out = cdr;
    cdr = (FlowCdr) { 0 };
  }
}

void
flow_call_clear (FlowCall *c)
{
  g_clear_pointer (&c->a, flow_run_free);
  g_clear_pointer (&c->b, flow_run_free);
}

void
flow_call_run (FlowDaemon *d, FlowCall *c)
{
  FlowSipp *sb = flow_callee_start (d, &c->bob);
  FlowSipp *sa = flow_caller_start (d, &c->alice, "bob");
  c->a = flow_sipp_finish (sa, "alice");
  c->b = flow_sipp_finish (sb, "bob");
}

static void
put_le (GByteArray *b, guint32 v, guint bytes)
{
  for (guint i = 0; i < bytes; i++) {
    guint8 byte = (guint8) (v >> (8 * i));
    g_byte_array_append (b, &byte, 1);
  }
}

void
flow_write_wav (const char *path, const gint16 *samples, gsize n, guint rate)
{
  g_autoptr (GByteArray) wav = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  guint32 data_bytes = (guint32) (n * 2);

  g_byte_array_append (wav, (const guint8 *) "RIFF", 4);
  put_le (wav, 36 + data_bytes, 4);
  g_byte_array_append (wav, (const guint8 *) "WAVEfmt ", 8);
  put_le (wav, 16, 4);                  /* fmt chunk size */
  put_le (wav, 1, 2);                   /* PCM */
  put_le (wav, 1, 2);                   /* mono */
  put_le (wav, rate, 4);
  put_le (wav, rate * 2, 4);            /* bytes per second */
  put_le (wav, 2, 2);                   /* block align */
  put_le (wav, 16, 2);                  /* bits per sample */
  g_byte_array_append (wav, (const guint8 *) "data", 4);
  put_le (wav, data_bytes, 4);
  for (gsize i = 0; i < n; i++)
    put_le (wav, (guint16) samples[i], 2);
  g_file_set_contents (path, (const char *) wav->data, wav->len, &error);
  g_assert_no_error (error);
}
