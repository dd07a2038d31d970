/* srtp-flow: what the SRTP flow tests share (srtp-flow.h): keys and
 * a=crypto lines, the probe's ports and runs, what arrived. */
#include "srtp-flow.h"

#include <stdio.h>
#include <string.h>

/* ---- keys ------------------------------------------------------------------------------ */

/* A master key‖salt of `len` bytes, base64 as in a=crypto (test keys: GLib's
 * generator is enough). */
char *
random_key (gsize len)
{
  guint8 key[46];

  g_assert_cmpuint (len, <=, sizeof key);
  for (gsize i = 0; i < len; i++)
    key[i] = (guint8) g_random_int_range (0, 256);
  return g_base64_encode (key, len);
}

/* The a=crypto lines of a message's body, each without "a=crypto:". */
char **
crypto_lines (const char *msg)
{
  g_autofree char *body = flow_msg_body (msg);
  g_auto (GStrv) lines = g_strsplit (body, "\n", -1);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();

  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (g_strstrip (lines[i]), "a=crypto:"))
      g_strv_builder_add (b, lines[i] + strlen ("a=crypto:"));
  return g_strv_builder_end (b);
}

/* The key of an a=crypto line ("TAG SUITE inline:KEY"). */
char *
line_key (const char *line)
{
  const char *k = strstr (line, "inline:");

  g_assert_nonnull (k);
  k += strlen ("inline:");
  return g_strndup (k, strcspn (k, "| \t"));
}

void
answered_clear (Answered *a)
{
  g_clear_pointer (&a->tag, g_free);
  g_clear_pointer (&a->suite, g_free);
  g_clear_pointer (&a->key, g_free);
}

void
read_answered (const char *file, Answered *out)
{
  g_auto (GStrv) lines = flow_wait_lines_file (file, 1);
  g_auto (GStrv) f = g_strsplit (lines[0], " ", -1);

  flow_note ("%s: %s", file, lines[0]);
  g_assert_cmpuint (g_strv_length (f), ==, 3);
  out->tag = g_strdup (f[0]);
  out->suite = g_strdup (f[1]);
  out->key = g_strdup (f[2]);
}

/* Is any of keys in the file (bytes: the store too)? A missing file has
 * none. */
static gboolean
file_has_key (const char *name, const char *const *keys, guint *which)
{
  g_autofree char *path = g_build_filename (flow_case_dir (), name, NULL);
  g_autofree char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, NULL))
    return FALSE;
  for (guint i = 0; keys[i]; i++)
    if (memmem (data, len, keys[i], strlen (keys[i]))) {
      *which = i;
      return TRUE;
    }
  return FALSE;
}

/* tandem's log never shows a key, nor its store (the CDRs, whatever else;
 * its write-ahead log too): neither the endpoints' nor its own. The log is
 * the debug level's (the harness's), and must be there. */
void
assert_keys_not_kept (const char *const *keys)
{
  static const char *const files[] = { "tandem.log", "tandem.db", "tandem.db-wal" };
  g_autofree char *path = g_build_filename (flow_case_dir (), "tandem.log", NULL);
  g_autofree char *log = NULL;

  g_assert_true (g_file_get_contents (path, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "INVITE"));   /* the log we think it is */
  for (guint f = 0; f < G_N_ELEMENTS (files); f++) {
    guint which = 0;
    gboolean found = file_has_key (files[f], keys, &which);
    if (found)
      g_printerr ("flow: key %u of the call is in %s\n", which, files[f]);
    g_assert_false (found);
  }
}

/* ---- media ports and the probe ---------------------------------------------------------- */

/* The probe's ports stay bound by this process until the probe runs (as
 * flow-calls does for rtp-probe), so that nothing else is given them. */
static GHashTable *held;   /* port → GSocket */

static gboolean
hold_port (guint16 port)
{
  g_autoptr (GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                           G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, port);

  if (!held)
    held = g_hash_table_new_full (NULL, NULL, NULL, g_object_unref);
  if (!sock || !g_socket_bind (sock, addr, FALSE, NULL))
    return FALSE;
  g_hash_table_insert (held, GUINT_TO_POINTER (port), g_steal_pointer (&sock));
  return TRUE;
}

/* An RTP port and the RTCP port above it, both held. */
static guint16
media_port (void)
{
  for (guint attempt = 0; attempt < 100; attempt++) {
    guint16 port = flow_pick_port ();
    if (port < 65535 && hold_port (port)) {
      if (hold_port (port + 1))
        return port;
      g_hash_table_remove (held, GUINT_TO_POINTER (port));
    }
  }
  g_error ("no free loopback port pair");
}

/* A party whose media port is ours (see held), not flow-calls'. */
FlowParty
party (const char *user, const char *scenario, const char *side)
{
  FlowParty p = flow_party (user, scenario, side);
  p.rtp_port = media_port ();
  return p;
}

Ep
plain_ep (guint16 bind_port, guint16 dest_port, guint32 ssrc, guint8 fill)
{
  return (Ep) { .bind_port = bind_port, .dest_port = dest_port, .ssrc = ssrc, .fill = fill };
}

Ep
srtp_ep (guint16 bind_port, guint16 dest_port, guint32 ssrc, guint8 fill, const char *suite,
         const char *tx_key, const char *rx_key, guint seq, const char *mode)
{
  return (Ep) { .bind_port = bind_port, .dest_port = dest_port, .ssrc = ssrc, .fill = fill,
                .suite = suite, .tx_key = tx_key, .rx_key = rx_key, .seq = seq, .mode = mode };
}

/* Runs srtp-probe: each endpoint sends `count` packets, 20 ms apart (and
 * with `rtcp`, a sender report on its RTCP port after every tenth), and
 * records what it receives; returns the report. */
char **
probe_run (const Ep *eps, guint n, guint count, gboolean rtcp)
{
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_autofree char *out = NULL, *err = NULL, *count_text = g_strdup_printf ("%u", count);
  g_auto (GStrv) argv = NULL;
  int status;

  g_strv_builder_add_many (b, g_getenv ("TANDEM_SRTP_PROBE"), "-n", count_text,
                           "-i", "20", "-l", "300", NULL);
  if (rtcp)
    g_strv_builder_add (b, "-r");
  for (guint i = 0; i < n; i++) {
    g_autofree char *spec = g_strdup_printf ("%u:%u:%u:%u:%s:%s:%s:%u:%s:%u", eps[i].bind_port,
                                             eps[i].dest_port, eps[i].ssrc, eps[i].fill,
                                             eps[i].suite ? eps[i].suite : "plain",
                                             eps[i].tx_key ? eps[i].tx_key : "-",
                                             eps[i].rx_key ? eps[i].rx_key : "-",
                                             eps[i].seq ? eps[i].seq : 1,
                                             eps[i].mode ? eps[i].mode : "ok",
                                             eps[i].delay_ms);
    g_strv_builder_add (b, spec);
    g_hash_table_remove (held, GUINT_TO_POINTER (eps[i].bind_port));
    g_hash_table_remove (held, GUINT_TO_POINTER (eps[i].bind_port + 1));
  }
  argv = g_strv_builder_end (b);
  g_assert_nonnull (argv[0]);
  status = flow_command ((const char *const *) argv, PROBE_TIMEOUT_MS + count * 20 + 10000, &out,
                         &err);
  for (guint i = 0; i < n; i++) {   /* a port someone took meanwhile stays theirs */
    hold_port (eps[i].bind_port);
    hold_port (eps[i].bind_port + 1);
  }
  flow_note ("srtp-probe (exit %d): %s", status, err);
  {
    /* The report minus the packets, for a failure's notes. */
    g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
    for (guint i = 0; lines[i]; i++)
      if (!g_str_has_prefix (lines[i], "pkt "))
        flow_note ("  %s", lines[i]);
  }
  g_assert_cmpint (status, ==, 0);
  return g_strsplit (out, "\n", -1);
}

char **
probe (const Ep *eps, guint n)
{
  return probe_run (eps, n, PACKETS, FALSE);
}

/* Sender reports the endpoint on bind_port got intact from src_port with
 * ssrc; and what reached its RTCP port that was not one (or failed SRTCP). */
guint
rtcp_received (char **report, guint16 bind_port, guint16 src_port, guint32 ssrc)
{
  guint total = 0;

  for (guint i = 0; report[i]; i++) {
    guint bind, src, id, n;
    if (sscanf (report[i], "rtcp %u %u %u %u", &bind, &src, &id, &n) == 4 &&
        bind == bind_port && src == src_port && id == ssrc)
      total += n;
  }
  return total;
}

guint
rtcp_failures (char **report, guint16 bind_port)
{
  for (guint i = 0; report[i]; i++) {
    guint bind, n;
    if (sscanf (report[i], "srtcp %u %u", &bind, &n) == 2 && bind == bind_port)
      return n;
  }
  g_assert_not_reached ();
}

/* What the endpoint on bind_port could not unprotect. */
guint
srtp_failures (char **report, guint16 bind_port)
{
  for (guint i = 0; report[i]; i++) {
    guint bind, auth, replay, other;
    if (sscanf (report[i], "srtp %u %u %u %u", &bind, &auth, &replay, &other) == 4 &&
        bind == bind_port)
      return auth + replay + other;
  }
  g_assert_not_reached ();
}

/* How many packets of the endpoint on bind_port carry `fill` all through. */
guint
count_fill (char **report, guint16 bind_port, guint8 fill)
{
  g_autoptr (GArray) pkts = flow_probe_packets (report, bind_port);
  guint n = 0;

  for (guint i = 0; i < pkts->len; i++)
    n += flow_rtp_is_fill (&g_array_index (pkts, FlowRtpPacket, i), fill);
  return n;
}

/* listener got the talker's audio intact: at least MIN_PACKETS packets
 * (at most what was sent), every one from relay_port under the talker's
 * SSRC, 160 bytes of its fill (so decrypted right, for an SRTP listener),
 * and nothing that failed to unprotect. */
void
assert_intact (char **report, guint16 listener, guint16 relay_port, guint32 ssrc, guint8 fill,
               guint sent)
{
  guint from_relay = flow_probe_received (report, listener, relay_port, ssrc);
  guint all = flow_probe_received (report, listener, 0, 0);
  guint intact = count_fill (report, listener, fill);

  if (intact < MIN_PACKETS || all != intact || from_relay != all ||
      srtp_failures (report, listener))
    g_printerr ("flow: %u got %u packets, %u of SSRC %#x from %u, %u of fill %#x, %u failed "
                "to unprotect\n", listener, all, from_relay, ssrc, relay_port, intact, fill,
                srtp_failures (report, listener));
  g_assert_cmpuint (srtp_failures (report, listener), ==, 0);
  g_assert_cmpuint (from_relay, ==, all);
  g_assert_cmpuint (intact, ==, all);
  g_assert_cmpuint (intact, >=, MIN_PACKETS);
  g_assert_cmpuint (intact, <=, sent);
}

/* ---- calls ------------------------------------------------------------------------------- */

FlowDaemon *
start_tandem (const char *extra)
{
  g_autofree char *conf = g_strdup_printf (MEDIA_CONFIG "%s", extra ? extra : "");
  return flow_daemon_start (conf);
}

/* The m=audio line's proto. */
char *
audio_proto (const char *msg)
{
  g_autofree char *m = flow_sdp_line (msg, "m=audio ");
  g_auto (GStrv) f = NULL;

  g_assert_nonnull (m);
  f = g_strsplit (m, " ", -1);
  g_assert_cmpuint (g_strv_length (f), >=, 3);
  return g_strdup (f[2]);
}

void
assert_proto (const char *msg, const char *want)
{
  g_autofree char *proto = audio_proto (msg);
  g_assert_cmpstr (proto, ==, want);
}

/* tandem's offer lines (a message bob received): tags 1..6, the suites
 * tandem offers in its order, each key strict base64 of the suite's length,
 * all different. Returns the keys. */
char **
assert_tandem_offer (const char *msg)
{
  static const char *const suites[] = { SUITE_80, "AES_CM_128_HMAC_SHA1_32",
                                        "AES_256_CM_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_32",
                                        "AEAD_AES_128_GCM", "AEAD_AES_256_GCM" };
  static const gsize key_len[] = { 30, 30, 46, 46, 28, 44 };
  g_auto (GStrv) lines = crypto_lines (msg);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_auto (GStrv) keys = NULL;

  g_assert_cmpuint (g_strv_length (lines), ==, G_N_ELEMENTS (suites));
  for (guint i = 0; lines[i]; i++) {
    g_autofree char *want = g_strdup_printf ("%u %s inline:", i + 1, suites[i]);
    g_autofree char *key = line_key (lines[i]);
    g_autofree guchar *raw = NULL;
    gsize len = 0;

    g_assert_true (g_str_has_prefix (lines[i], want));
    raw = g_base64_decode (key, &len);
    g_assert_cmpuint (len, ==, key_len[i]);
    g_strv_builder_add (b, key);
  }
  keys = g_strv_builder_end (b);
  for (guint i = 0; keys[i]; i++)
    for (guint j = i + 1; keys[j]; j++)
      g_assert_cmpstr (keys[i], !=, keys[j]);
  return g_steal_pointer (&keys);
}
