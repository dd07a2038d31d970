/* srtp-probe: rtp-probe's SRTP sibling, for the SRTP flow tests
 * (test-srtp.c). SIPp cannot speak SRTP, so this plays the media ends of a
 * call whose legs tandem secures with SDES keys the scenarios exchanged.
 *
 *   srtp-probe [-r] [-n COUNT] [-i INTERVAL_MS] [-l LINGER_MS] ENDPOINT...
 *   ENDPOINT = BIND_PORT:DEST_PORT:SSRC:FILL:SUITE:TX_KEY:RX_KEY[:SEQ[:MODE[:DELAY_MS]]]
 *
 * Each endpoint binds 127.0.0.1:BIND_PORT and sends COUNT RTP packets
 * (PCMA, 160 payload bytes all FILL, sequence numbers from SEQ, default 1)
 * to 127.0.0.1:DEST_PORT, one every INTERVAL_MS from DELAY_MS after the
 * start (default 0), protected under SUITE
 * (an SDES name: AES_CM_128_HMAC_SHA1_80, AEAD_AES_256_GCM...; "plain":
 * plain RTP, keys "-") with TX_KEY (base64 of key‖salt, as in the
 * endpoint's own a=crypto). Everything it receives is unprotected with
 * RX_KEY (the key of tandem's a=crypto to it). MODE:
 *   ok      (default) each packet once;
 *   replay  each protected packet sent twice, byte for byte;
 *   forge   every second packet (the odd ones from 0) carries payload
 *           FILL ^ 0xff and has the last byte of its tag flipped: a relay
 *           that forwarded it would give it away by that payload.
 * LINGER_MS after the last send it prints, on stdout, in rtp-probe -t's
 * format (flow_probe_received and flow_probe_packets read it):
 *
 *   pkt BIND_PORT SRC_PORT SSRC SEQ MARKER PT TIMESTAMP TIME_US PAYLOAD_HEX
 *                                     (each packet that authenticated, decrypted)
 *   sent BIND_PORT N
 *   recv BIND_PORT SRC_PORT SSRC N
 *   srtp BIND_PORT AUTH_FAILED REPLAYED OTHER_FAILED
 *                                     (what did not unprotect, by libsrtp's verdict)
 *
 * With -r, RTCP too: each endpoint also binds BIND_PORT + 1 and, after
 * every RTCP_EVERY RTP packets, sends a sender report (its SSRC, its
 * counts) to DEST_PORT + 1, as SRTCP under the same keys; what arrives
 * there is unprotected (SRTCP) and counted by report SSRC:
 *
 *   rtcp BIND_PORT SRC_PORT SSRC N    (sender reports that arrived intact)
 *   srtcp BIND_PORT FAILED            (what did not unprotect or was not an SR)
 *
 * Independent of tandem's SRTP code on purpose: its own suite table and
 * libsrtp2 sessions. Only loopback; every loop bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENDPOINTS 4
#define MAX_SOURCES 16
#define PAYLOAD 160
#define RTP_HEADER 12
#define PT_PCMA 8
#define MAX_KEY 46
#define RTCP_EVERY 10
#define SR_LEN 28

typedef enum { MODE_OK, MODE_REPLAY, MODE_FORGE } Mode;

typedef struct {
  uint16_t src_port;
  uint32_t ssrc;
  unsigned count;
} Source;

typedef struct {
  uint16_t bind_port, dest_port;
  uint32_t ssrc;
  uint8_t fill;
  int rtcp_fd;                 /* -r: BIND_PORT + 1; else -1 */
  unsigned rtcp_failed;
  Source rtcp_sources[MAX_SOURCES];
  unsigned n_rtcp_sources;
  int plain;
  srtp_t tx, rx;
  uint16_t seq0;
  Mode mode;
  long delay_ms;
  int fd;
  unsigned sent;
  unsigned auth_failed, replayed, other_failed;
  Source sources[MAX_SOURCES];
  unsigned n_sources;
} Endpoint;

/* SDES suite name → libsrtp policy and master key length (RFC 4568, 6188,
 * 7714; the _32 suites keep SRTCP's 80-bit tag, RFC 4568 §6.2). */
static int
suite_policy (const char *name, srtp_policy_t *p, size_t *key_len)
{
  if (!strcmp (name, "AES_CM_128_HMAC_SHA1_80")) {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtcp);
    *key_len = 30;
  } else if (!strcmp (name, "AES_CM_128_HMAC_SHA1_32")) {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtcp);
    *key_len = 30;
  } else if (!strcmp (name, "AES_256_CM_HMAC_SHA1_80")) {
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtcp);
    *key_len = 46;
  } else if (!strcmp (name, "AES_256_CM_HMAC_SHA1_32")) {
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtcp);
    *key_len = 46;
  } else if (!strcmp (name, "AEAD_AES_128_GCM")) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth (&p->rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth (&p->rtcp);
    *key_len = 28;
  } else if (!strcmp (name, "AEAD_AES_256_GCM")) {
    srtp_crypto_policy_set_aes_gcm_256_16_auth (&p->rtp);
    srtp_crypto_policy_set_aes_gcm_256_16_auth (&p->rtcp);
    *key_len = 44;
  } else {
    return -1;
  }
  return 0;
}

/* One direction's session: ssrc_any_outbound for tx, any inbound for rx
 * (tandem's SSRC is its own), the default 128-packet replay window. */
static int
make_session (srtp_t *session, const char *suite, const char *b64, srtp_ssrc_type_t type)
{
  srtp_policy_t p;
  size_t key_len, got = 0;
  guchar *key;
  uint8_t master[MAX_KEY];
  int ok;

  memset (&p, 0, sizeof p);
  if (suite_policy (suite, &p, &key_len) < 0) {
    fprintf (stderr, "srtp-probe: unknown suite %s\n", suite);
    return -1;
  }
  key = g_base64_decode (b64, &got);
  ok = got == key_len;
  if (ok)
    memcpy (master, key, key_len);
  explicit_bzero (key, got);
  g_free (key);
  if (!ok) {
    fprintf (stderr, "srtp-probe: a key of %zu bytes for %s (want %zu)\n", got, suite, key_len);
    return -1;
  }
  p.ssrc.type = type;
  p.key = master;
  p.window_size = 128;
  p.allow_repeat_tx = 0;   /* MODE_REPLAY resends the bytes; it never protects twice */
  ok = srtp_create (session, &p) == srtp_err_status_ok;
  explicit_bzero (master, sizeof master);
  return ok ? 0 : -1;
}

static int
parse_endpoint (char *spec, Endpoint *ep)
{
  char *f[10], *save = NULL;
  unsigned n = 0;

  for (char *t = strtok_r (spec, ":", &save); t && n < 10; t = strtok_r (NULL, ":", &save))
    f[n++] = t;
  if (n < 7)
    return -1;
  ep->bind_port = (uint16_t) strtoul (f[0], NULL, 10);
  ep->dest_port = (uint16_t) strtoul (f[1], NULL, 10);
  ep->ssrc = (uint32_t) strtoul (f[2], NULL, 0);
  ep->fill = (uint8_t) strtoul (f[3], NULL, 0);
  ep->seq0 = n > 7 ? (uint16_t) strtoul (f[7], NULL, 10) : 1;
  ep->mode = MODE_OK;
  if (n > 8)
    ep->mode = !strcmp (f[8], "replay") ? MODE_REPLAY : !strcmp (f[8], "forge") ? MODE_FORGE
             : !strcmp (f[8], "ok") ? MODE_OK : (Mode) -1;
  ep->delay_ms = n > 9 ? strtol (f[9], NULL, 10) : 0;
  if (!ep->bind_port || !ep->dest_port || (int) ep->mode < 0 || ep->delay_ms < 0 ||
      ep->delay_ms > 10000)
    return -1;
  ep->plain = !strcmp (f[4], "plain");
  if (ep->plain)
    return 0;
  if (make_session (&ep->tx, f[4], f[5], ssrc_any_outbound) < 0 ||
      make_session (&ep->rx, f[4], f[6], ssrc_any_inbound) < 0)
    return -1;
  return 0;
}

static struct sockaddr_in
loopback (uint16_t port)
{
  struct sockaddr_in sa;

  memset (&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons (port);
  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  return sa;
}

static long
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long long
wall_clock_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void
send_packet (Endpoint *ep)
{
  unsigned char pkt[RTP_HEADER + PAYLOAD + SRTP_MAX_TRAILER_LEN];
  struct sockaddr_in to = loopback (ep->dest_port);
  uint16_t seq = (uint16_t) (ep->seq0 + ep->sent);
  uint32_t ts = htonl ((uint32_t) (seq - 1) * PAYLOAD), ssrc = htonl (ep->ssrc);
  int forged = ep->mode == MODE_FORGE && (ep->sent & 1);
  int len = RTP_HEADER + PAYLOAD;

  pkt[0] = 0x80;
  pkt[1] = PT_PCMA;
  pkt[2] = (unsigned char) (seq >> 8);
  pkt[3] = (unsigned char) seq;
  memcpy (pkt + 4, &ts, 4);
  memcpy (pkt + 8, &ssrc, 4);
  memset (pkt + RTP_HEADER, forged ? ep->fill ^ 0xff : ep->fill, PAYLOAD);
  if (!ep->plain && srtp_protect (ep->tx, pkt, &len) != srtp_err_status_ok) {
    fprintf (stderr, "srtp-probe: protect failed on %u\n", ep->bind_port);
    exit (1);
  }
  if (forged)
    pkt[len - 1] ^= 0x01;
  /* A refused send (ICMP) still counts as sent: the test judges what arrived. */
  sendto (ep->fd, pkt, (size_t) len, 0, (struct sockaddr *) &to, sizeof to);
  if (ep->mode == MODE_REPLAY)
    sendto (ep->fd, pkt, (size_t) len, 0, (struct sockaddr *) &to, sizeof to);
  ep->sent++;
}

static void send_sr (Endpoint *ep);

static void
count_in (Source *sources, unsigned *n, uint16_t src_port, uint32_t ssrc)
{
  for (unsigned i = 0; i < *n; i++)
    if (sources[i].src_port == src_port && sources[i].ssrc == ssrc) {
      sources[i].count++;
      return;
    }
  if (*n < MAX_SOURCES)
    sources[(*n)++] = (Source) { src_port, ssrc, 1 };
}

static void
count_source (Endpoint *ep, uint16_t src_port, uint32_t ssrc)
{
  count_in (ep->sources, &ep->n_sources, src_port, ssrc);
}

static void
put32 (unsigned char *p, uint32_t v)
{
  v = htonl (v);
  memcpy (p, &v, 4);
}

/* An RTCP sender report (RFC 3550 §6.4.1, no report blocks), SRTCP-protected
 * unless plain, to DEST_PORT + 1. */
static void
send_sr (Endpoint *ep)
{
  unsigned char pkt[SR_LEN + SRTP_MAX_TRAILER_LEN];
  struct sockaddr_in to = loopback ((uint16_t) (ep->dest_port + 1));
  int len = SR_LEN;

  memset (pkt, 0, sizeof pkt);
  pkt[0] = 0x80;
  pkt[1] = 200;
  pkt[3] = SR_LEN / 4 - 1;
  put32 (pkt + 4, ep->ssrc);
  put32 (pkt + 8, (uint32_t) (wall_clock_us () / 1000000 + 2208988800u));   /* NTP seconds */
  put32 (pkt + 16, (uint32_t) (ep->seq0 + ep->sent - 1) * PAYLOAD);
  put32 (pkt + 20, ep->sent);
  put32 (pkt + 24, ep->sent * PAYLOAD);
  if (!ep->plain && srtp_protect_rtcp (ep->tx, pkt, &len) != srtp_err_status_ok) {
    fprintf (stderr, "srtp-probe: protect_rtcp failed on %u\n", ep->bind_port);
    exit (1);
  }
  sendto (ep->rtcp_fd, pkt, (size_t) len, 0, (struct sockaddr *) &to, sizeof to);
}

static void
trace_packet (const Endpoint *ep, uint16_t src_port, const unsigned char *p, int n)
{
  uint32_t ssrc, ts;
  int off = RTP_HEADER + 4 * (p[0] & 0x0f);

  if ((p[0] & 0x10) && off + 4 <= n)
    off += 4 + 4 * ((p[off + 2] << 8) | p[off + 3]);
  memcpy (&ssrc, p + 8, 4);
  memcpy (&ts, p + 4, 4);
  printf ("pkt %u %u %u %u %u %u %u %lld ", ep->bind_port, src_port, ntohl (ssrc),
          (unsigned) ((p[2] << 8) | p[3]), (unsigned) (p[1] >> 7), (unsigned) (p[1] & 0x7f),
          ntohl (ts), wall_clock_us ());
  if (off >= n)
    fputs ("-", stdout);
  for (int i = off; i < n; i++)
    printf ("%02x", p[i]);
  fputs ("\n", stdout);
}

/* RTCP (RFC 5761 demultiplexing) is not this probe's business: tandem's
 * SRTCP would only be counted as failures of the RTP context. */
static int
is_rtcp (const unsigned char *p)
{
  return p[1] >= 192 && p[1] <= 223;
}

static void
drain (Endpoint *ep)
{
  unsigned char buf[2048];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  ssize_t got;

  while ((got = recvfrom (ep->fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &fl)) >= 0 ||
         errno == ECONNREFUSED) {
    int n = (int) got;
    uint32_t ssrc;

    fl = sizeof from;
    if (got < RTP_HEADER || from.sin_addr.s_addr != htonl (INADDR_LOOPBACK) || is_rtcp (buf))
      continue;
    if (!ep->plain) {
      srtp_err_status_t st = srtp_unprotect (ep->rx, buf, &n);
      if (st == srtp_err_status_auth_fail)
        ep->auth_failed++;
      else if (st == srtp_err_status_replay_fail || st == srtp_err_status_replay_old)
        ep->replayed++;
      else if (st != srtp_err_status_ok)
        ep->other_failed++;
      if (st != srtp_err_status_ok)
        continue;
    }
    memcpy (&ssrc, buf + 8, 4);
    count_source (ep, ntohs (from.sin_port), ntohl (ssrc));
    trace_packet (ep, ntohs (from.sin_port), buf, n);
  }
}

static void
drain_rtcp (Endpoint *ep)
{
  unsigned char buf[2048];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  ssize_t got;

  while ((got = recvfrom (ep->rtcp_fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &fl)) >= 0 ||
         errno == ECONNREFUSED) {
    int n = (int) got;
    uint32_t ssrc;

    fl = sizeof from;
    if (got < 8 || from.sin_addr.s_addr != htonl (INADDR_LOOPBACK))
      continue;
    if ((!ep->plain && srtp_unprotect_rtcp (ep->rx, buf, &n) != srtp_err_status_ok) ||
        n < SR_LEN || buf[1] != 200) {
      ep->rtcp_failed++;
      continue;
    }
    memcpy (&ssrc, buf + 4, 4);
    count_in (ep->rtcp_sources, &ep->n_rtcp_sources, ntohs (from.sin_port), ntohl (ssrc));
  }
}

static void
run (Endpoint *eps, unsigned n, unsigned count, long interval, long linger)
{
  long start = now_ms (), end = start;
  struct pollfd pfd[2 * MAX_ENDPOINTS];

  for (unsigned i = 0; i < n; i++) {
    long last = start + eps[i].delay_ms + (long) (count ? count - 1 : 0) * interval + linger;
    end = last > end ? last : end;
  }

  for (unsigned i = 0; i < n; i++) {
    pfd[i] = (struct pollfd) { .fd = eps[i].fd, .events = POLLIN };
    pfd[n + i] = (struct pollfd) { .fd = eps[i].rtcp_fd, .events = POLLIN };   /* -1: ignored */
  }
  for (;;) {
    long now = now_ms (), wait = end - now;

    if (wait <= 0)
      break;
    for (unsigned i = 0; i < n; i++) {
      long from = start + eps[i].delay_ms;

      while (eps[i].sent < count && now >= from + (long) eps[i].sent * interval) {
        send_packet (&eps[i]);
        if (eps[i].rtcp_fd >= 0 && eps[i].sent % RTCP_EVERY == 0)
          send_sr (&eps[i]);
      }
      if (eps[i].sent < count && from + (long) eps[i].sent * interval - now < wait)
        wait = from + (long) eps[i].sent * interval - now;
    }
    if (poll (pfd, 2 * n, (int) (wait > 0 ? wait : 0)) > 0)
      for (unsigned i = 0; i < n; i++) {
        if (pfd[i].revents)
          drain (&eps[i]);
        if (pfd[n + i].revents)
          drain_rtcp (&eps[i]);
      }
  }
  for (unsigned i = 0; i < n; i++) {
    drain (&eps[i]);
    if (eps[i].rtcp_fd >= 0)
      drain_rtcp (&eps[i]);
  }
}

static int
open_socket (uint16_t port)
{
  struct sockaddr_in sa = loopback (port);
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0 || bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
    fprintf (stderr, "srtp-probe: cannot bind 127.0.0.1:%u: %s\n", port, strerror (errno));
    if (fd >= 0)
      close (fd);
    return -1;
  }
  return fd;
}

static int
usage (void)
{
  fprintf (stderr, "usage: srtp-probe [-r] [-n COUNT] [-i INTERVAL_MS] [-l LINGER_MS] "
                   "BIND_PORT:DEST_PORT:SSRC:FILL:{SUITE|plain}:TX_KEY:RX_KEY"
                   "[:SEQ[:MODE[:DELAY_MS]]]...\n");
  return 2;
}

int
main (int argc, char **argv)
{
  Endpoint eps[MAX_ENDPOINTS];
  long count = 50, interval = 20, linger = 300;
  unsigned n = 0;
  int opt, rtcp = 0;

  memset (eps, 0, sizeof eps);
  while ((opt = getopt (argc, argv, "rn:i:l:")) != -1) {
    if (opt == 'r')
      rtcp = 1;
    else if (opt == 'n')
      count = strtol (optarg, NULL, 10);
    else if (opt == 'i')
      interval = strtol (optarg, NULL, 10);
    else if (opt == 'l')
      linger = strtol (optarg, NULL, 10);
    else
      return usage ();
  }
  /* Bounded on purpose: a probe must never outlive its test. */
  if (count < 0 || count > 2000 || interval < 1 || interval > 1000 || linger < 0 ||
      linger > 10000 || optind >= argc || argc - optind > MAX_ENDPOINTS)
    return usage ();
  if (srtp_init () != srtp_err_status_ok) {
    fprintf (stderr, "srtp-probe: srtp_init failed\n");
    return 1;
  }
  for (int a = optind; a < argc; a++, n++) {
    if (parse_endpoint (argv[a], &eps[n]) < 0)
      return usage ();
    eps[n].fd = open_socket (eps[n].bind_port);
    eps[n].rtcp_fd = rtcp ? open_socket ((uint16_t) (eps[n].bind_port + 1)) : -1;
    if (eps[n].fd < 0 || (rtcp && eps[n].rtcp_fd < 0))
      return 1;
  }
  run (eps, n, (unsigned) count, interval, linger);
  for (unsigned i = 0; i < n; i++) {
    printf ("sent %u %u\n", eps[i].bind_port, eps[i].sent);
    for (unsigned s = 0; s < eps[i].n_sources; s++)
      printf ("recv %u %u %u %u\n", eps[i].bind_port, eps[i].sources[s].src_port,
              eps[i].sources[s].ssrc, eps[i].sources[s].count);
    printf ("srtp %u %u %u %u\n", eps[i].bind_port, eps[i].auth_failed, eps[i].replayed,
            eps[i].other_failed);
    for (unsigned s = 0; s < eps[i].n_rtcp_sources; s++)
      printf ("rtcp %u %u %u %u\n", eps[i].bind_port, eps[i].rtcp_sources[s].src_port,
              eps[i].rtcp_sources[s].ssrc, eps[i].rtcp_sources[s].count);
    if (eps[i].rtcp_fd >= 0) {
      printf ("srtcp %u %u\n", eps[i].bind_port, eps[i].rtcp_failed);
      close (eps[i].rtcp_fd);
    }
    if (!eps[i].plain) {
      srtp_dealloc (eps[i].tx);
      srtp_dealloc (eps[i].rx);
    }
    close (eps[i].fd);
  }
  srtp_shutdown ();
  return 0;
}
