/* rtp-probe: send RTP from loopback ports and count what comes back.
 *
 *   rtp-probe [-t] [-n COUNT] [-i INTERVAL_MS] [-l LINGER_MS] ENDPOINT...
 *   ENDPOINT = BIND_PORT:DEST:SSRC[:DELAY_MS[:FILL[:PT[:TONE_HZ[:COUNT]]]]]
 *   DEST = DEST_PORT | @FILE
 *
 * Each endpoint binds 127.0.0.1:BIND_PORT and, after DELAY_MS, sends COUNT
 * RTP packets (PCMA, 160-byte payload, its own SSRC) to 127.0.0.1:DEST_PORT,
 * one every INTERVAL_MS; every payload byte is FILL (0..255, "0x55" too;
 * default 0xd5, A-law silence), so that a receiver can tell whose audio it
 * got. Meanwhile every socket receives; LINGER_MS after the last send the
 * probe stops and prints, on stdout:
 *
 *   sent BIND_PORT N
 *   recv BIND_PORT SRC_PORT SSRC N     (per source port and SSRC seen)
 *
 * With -t it also prints every RTP packet received, as it arrives:
 *
 *   pkt BIND_PORT SRC_PORT SSRC SEQ MARKER PT TIMESTAMP TIME_US PAYLOAD_HEX
 *
 * (TIME_US: the wall clock at arrival, in µs since the epoch, comparable
 * with SIPp's message times; PAYLOAD_HEX: the bytes after the header, its
 * CSRCs and extension; "-" if none), and at the end, for each endpoint
 * that sent any, when it sent its first packet (wall clock, µs):
 *
 *   first BIND_PORT TIME_US
 *
 * The optional fields, for the ringback tests (test-ringback.c), where a
 * callee's audio must be told from a tune by its sound and its start tied
 * to the moment a scenario learns its relay port:
 *   PT       the payload type of its packets (default 8);
 *   TONE_HZ  instead of FILL bytes, a sine of this frequency (amplitude
 *            about a quarter of full scale, phase continuous across
 *            packets), G.711-encoded: µ-law for PT 0, A-law otherwise;
 *   COUNT    this endpoint's own packet count (default -n);
 *   @FILE    the destination port is read from FILE (relative to the
 *            working directory: a scenario's NAME.port), once it exists
 *            and holds a port; DELAY_MS then counts from that moment. An
 *            endpoint whose file does not come within FILE_WAIT_MS sends
 *            nothing.
 *
 * The flow tests (test-call.c, test-features.c; test-holdmusic.c with -t)
 * run it on the ports their SIPp scenarios advertise, towards the ports
 * tandem's SDP names, to prove the relay forwards both ways and drops
 * packets from strangers (and, traced, what each packet carried). Only
 * loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENDPOINTS 8
#define MAX_SOURCES 32
#define PAYLOAD 160
#define RTP_HEADER 12
#define DEFAULT_FILL 0xd5   /* A-law silence */
#define DEFAULT_PT 8        /* PCMA */
#define RATE 8000           /* the G.711 clock, for TONE_HZ */
#define TONE_AMPLITUDE 8000.0
#define FILE_WAIT_MS 15000  /* bounded: a scenario that never writes its port */
#define MAX_FILE 256

typedef struct {
  uint16_t src_port;
  uint32_t ssrc;
  unsigned count;
} Source;

typedef struct {
  uint16_t bind_port, dest_port;
  char dest_file[MAX_FILE];   /* @FILE: dest_port is 0 until it is read */
  uint32_t ssrc;
  long delay_ms;
  uint8_t fill, pt;
  unsigned tone_hz;
  long count;                 /* < 0: the global -n */
  long start;                 /* when its sending began (monotonic ms); < 0: not yet */
  int gave_up;                /* its @FILE never came */
  long long first_us;         /* wall clock of its first send */
  int fd;
  unsigned sent;
  Source sources[MAX_SOURCES];
  unsigned n_sources;
} Endpoint;

static int trace;   /* -t: print every packet received */

static long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
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

/* A number field of an endpoint spec, within [min, max]; strtol's bases
 * ("0x55" too). */
static int
parse_field (const char *text, long min, long max, long *out)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (text, &end, 0);
  if (errno || end == text || *end || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

static int
parse_endpoint (const char *spec, Endpoint *ep)
{
  char copy[512], *fields[8], *save = NULL;
  long v[8] = { 0, 0, 0, 0, DEFAULT_FILL, DEFAULT_PT, 0, -1 };
  static const long min[8] = { 1, 1, 0, 0, 0, 0, 0, 0 };
  static const long max[8] = { 65535, 65535, 4294967295L, 10000, 255, 127, 3999, 10000 };
  unsigned n = 0;

  if (strlen (spec) >= sizeof copy)
    return -1;
  strcpy (copy, spec);
  for (char *f = strtok_r (copy, ":", &save); f; f = strtok_r (NULL, ":", &save)) {
    if (n == 8)
      return -1;
    fields[n++] = f;
  }
  if (n < 3)
    return -1;
  for (unsigned i = 0; i < n; i++) {
    if (i == 1 && fields[1][0] == '@') {
      if (!fields[1][1] || strlen (fields[1] + 1) >= sizeof ep->dest_file)
        return -1;
      strcpy (ep->dest_file, fields[1] + 1);
      continue;
    }
    if (parse_field (fields[i], min[i], max[i], &v[i]) < 0)
      return -1;
  }
  ep->bind_port = (uint16_t) v[0];
  ep->dest_port = (uint16_t) v[1];
  ep->ssrc = (uint32_t) v[2];
  ep->delay_ms = v[3];
  ep->fill = (uint8_t) v[4];
  ep->pt = (uint8_t) v[5];
  ep->tone_hz = (unsigned) v[6];
  ep->count = n > 7 ? v[7] : -1;
  ep->start = -1;
  return 0;
}

static int
open_endpoint (Endpoint *ep)
{
  struct sockaddr_in sa = loopback (ep->bind_port);

  ep->fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ep->fd < 0 || bind (ep->fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
    fprintf (stderr, "rtp-probe: cannot bind 127.0.0.1:%u: %s\n", ep->bind_port,
             strerror (errno));
    return -1;
  }
  return 0;
}

/* G.711 encoding of a 16-bit sample (ITU-T G.711, as in the common
 * reference code). */
static uint8_t
ulaw_encode (int sample)
{
  int sign = sample < 0 ? 0x80 : 0, mag = sample < 0 ? -sample : sample, exponent = 7;

  if (mag > 32635)
    mag = 32635;
  mag += 0x84;
  while (exponent > 0 && !(mag & (0x4000 >> (7 - exponent))))
    exponent--;
  return (uint8_t) ~(sign | (exponent << 4) | ((mag >> (exponent + 3)) & 0x0f));
}

static uint8_t
alaw_encode (int sample)
{
  int sign = sample >= 0 ? 0x80 : 0, mag = sample < 0 ? -sample - 1 : sample, exponent = 7;
  int mantissa;

  if (mag > 32767)
    mag = 32767;
  while (exponent > 0 && !(mag & (0x4000 >> (7 - exponent))))
    exponent--;
  mantissa = exponent ? (mag >> (exponent + 3)) & 0x0f : (mag >> 4) & 0x0f;
  return (uint8_t) ((sign | (exponent << 4) | mantissa) ^ 0x55);
}

/* The payload of packet number ep->sent: FILL bytes, or the next 20 ms of
 * the endpoint's sine. */
static void
fill_payload (const Endpoint *ep, unsigned char *payload)
{
  if (!ep->tone_hz) {
    memset (payload, ep->fill, PAYLOAD);
    return;
  }
  for (unsigned i = 0; i < PAYLOAD; i++) {
    double n = (double) ep->sent * PAYLOAD + i;
    int sample = (int) lround (TONE_AMPLITUDE * sin (2 * M_PI * ep->tone_hz * n / RATE));
    payload[i] = ep->pt == 0 ? ulaw_encode (sample) : alaw_encode (sample);
  }
}

static long long wall_clock_us (void);

static void
send_packet (Endpoint *ep)
{
  unsigned char pkt[RTP_HEADER + PAYLOAD];
  struct sockaddr_in to = loopback (ep->dest_port);
  uint16_t seq = (uint16_t) (ep->sent + 1);
  uint32_t ts = htonl (ep->sent * PAYLOAD), ssrc = htonl (ep->ssrc);

  fill_payload (ep, pkt + RTP_HEADER);
  if (!ep->sent)
    ep->first_us = wall_clock_us ();
  pkt[0] = 0x80;                       /* version 2 */
  pkt[1] = ep->pt;                     /* PCMA unless told */
  pkt[2] = (unsigned char) (seq >> 8);
  pkt[3] = (unsigned char) seq;
  memcpy (pkt + 4, &ts, 4);
  memcpy (pkt + 8, &ssrc, 4);
  /* A refused send (ICMP from a closed port) still counts as sent: the
   * test judges what arrived. */
  sendto (ep->fd, pkt, sizeof pkt, 0, (struct sockaddr *) &to, sizeof to);
  ep->sent++;
}

static void
count_source (Endpoint *ep, uint16_t src_port, uint32_t ssrc)
{
  for (unsigned i = 0; i < ep->n_sources; i++)
    if (ep->sources[i].src_port == src_port && ep->sources[i].ssrc == ssrc) {
      ep->sources[i].count++;
      return;
    }
  if (ep->n_sources < MAX_SOURCES)
    ep->sources[ep->n_sources++] = (Source) { src_port, ssrc, 1 };
}

static long long
wall_clock_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* The -t line of one received RTP packet (at least RTP_HEADER bytes). */
static void
trace_packet (const Endpoint *ep, uint16_t src_port, const unsigned char *p, size_t n)
{
  size_t off = RTP_HEADER + 4u * (p[0] & 0x0f);   /* CSRCs */
  uint32_t ssrc, ts;

  if ((p[0] & 0x10) && off + 4 <= n)              /* header extension */
    off += 4 + 4u * (size_t) ((p[off + 2] << 8) | p[off + 3]);
  memcpy (&ssrc, p + 8, 4);
  memcpy (&ts, p + 4, 4);
  printf ("pkt %u %u %u %u %u %u %u %lld ", ep->bind_port, src_port, ntohl (ssrc),
          (unsigned) ((p[2] << 8) | p[3]), (unsigned) (p[1] >> 7), (unsigned) (p[1] & 0x7f),
          ntohl (ts), wall_clock_us ());
  if (off >= n)
    fputs ("-", stdout);
  for (size_t i = off; i < n; i++)
    printf ("%02x", p[i]);
  fputs ("\n", stdout);
}

static void
drain (Endpoint *ep)
{
  unsigned char buf[2048];
  struct sockaddr_in from;
  socklen_t len = sizeof from;
  ssize_t n;

  while ((n = recvfrom (ep->fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &len)) >= 0 ||
         errno == ECONNREFUSED) {
    len = sizeof from;
    if (n < RTP_HEADER || from.sin_addr.s_addr != htonl (INADDR_LOOPBACK))
      continue;
    uint32_t ssrc;
    memcpy (&ssrc, buf + 8, 4);
    count_source (ep, ntohs (from.sin_port), ntohl (ssrc));
    if (trace)
      trace_packet (ep, ntohs (from.sin_port), buf, (size_t) n);
  }
}

/* The port in the endpoint's @FILE, once the file holds one. */
static int
read_dest_file (Endpoint *ep)
{
  FILE *f = fopen (ep->dest_file, "r");
  unsigned long port = 0;
  int ok;

  if (!f)
    return 0;
  ok = fscanf (f, "%lu", &port) == 1 && port > 0 && port <= 65535;
  fclose (f);
  if (ok)
    ep->dest_port = (uint16_t) port;
  return ok;
}

static unsigned
endpoint_count (const Endpoint *ep, unsigned count)
{
  return ep->count >= 0 ? (unsigned) ep->count : count;
}

/* Schedules the endpoint's sending: DELAY_MS after the probe's start, or
 * after its @FILE came (polled: a scenario writes it whenever its call
 * gets there). Returns how long (ms) until it should be looked at again. */
static long
start_endpoint (Endpoint *ep, long probe_start, long now)
{
  if (ep->start >= 0 || ep->gave_up)
    return 0;
  if (!ep->dest_file[0]) {
    ep->start = probe_start + ep->delay_ms;
    return 0;
  }
  if (read_dest_file (ep)) {
    ep->start = now + ep->delay_ms;
    return 0;
  }
  if (now - probe_start >= FILE_WAIT_MS) {
    fprintf (stderr, "rtp-probe: %s never came; endpoint %u sends nothing\n", ep->dest_file,
             ep->bind_port);
    ep->gave_up = 1;
    return 0;
  }
  return 10;
}

/* Sends on schedule and receives until every endpoint is done plus linger. */
static void
run (Endpoint *eps, unsigned n, unsigned count, long interval, long linger)
{
  long start = now_ms ();
  struct pollfd pfd[MAX_ENDPOINTS];

  for (unsigned i = 0; i < n; i++)
    pfd[i] = (struct pollfd) { .fd = eps[i].fd, .events = POLLIN };
  for (;;) {
    long now = now_ms (), wait = 1000, end = start;
    int pending = 0;
    for (unsigned i = 0; i < n; i++) {
      Endpoint *ep = &eps[i];
      unsigned total = endpoint_count (ep, count);
      long again = start_endpoint (ep, start, now);
      if (ep->start < 0) {
        if (!ep->gave_up) {
          pending = 1;
          wait = again < wait ? again : wait;
        }
        continue;
      }
      while (ep->sent < total && now >= ep->start + (long) ep->sent * interval)
        send_packet (ep);
      if (ep->sent < total) {
        long next = ep->start + (long) ep->sent * interval - now;
        pending = 1;
        wait = next < wait ? next : wait;
      }
      long last = ep->start + (long) (total ? total - 1 : 0) * interval;
      end = last > end ? last : end;
    }
    if (!pending) {
      if (now >= end + linger)
        break;
      wait = end + linger - now < wait ? end + linger - now : wait;
    }
    if (poll (pfd, n, (int) (wait > 0 ? wait : 0)) > 0)
      for (unsigned i = 0; i < n; i++)
        if (pfd[i].revents)
          drain (&eps[i]);
  }
  for (unsigned i = 0; i < n; i++)
    drain (&eps[i]);
}

static void
report (const Endpoint *eps, unsigned n)
{
  for (unsigned i = 0; i < n; i++) {
    printf ("sent %u %u\n", eps[i].bind_port, eps[i].sent);
    for (unsigned s = 0; s < eps[i].n_sources; s++)
      printf ("recv %u %u %u %u\n", eps[i].bind_port, eps[i].sources[s].src_port,
              eps[i].sources[s].ssrc, eps[i].sources[s].count);
    if (trace && eps[i].sent)
      printf ("first %u %lld\n", eps[i].bind_port, eps[i].first_us);
  }
}

static int
usage (void)
{
  fprintf (stderr, "usage: rtp-probe [-t] [-n COUNT] [-i INTERVAL_MS] [-l LINGER_MS] "
                   "BIND_PORT:{DEST_PORT|@FILE}:SSRC"
                   "[:DELAY_MS[:FILL[:PT[:TONE_HZ[:COUNT]]]]]...\n");
  return 2;
}

int
main (int argc, char **argv)
{
  Endpoint eps[MAX_ENDPOINTS];
  unsigned n = 0;
  long count = 50, interval = 20, linger = 300;
  int opt;

  memset (eps, 0, sizeof eps);
  while ((opt = getopt (argc, argv, "tn:i:l:")) != -1) {
    if (opt == 't')
      trace = 1;
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
  if (count < 0 || count > 10000 || interval < 1 || interval > 1000 || linger < 0 ||
      linger > 10000 || optind >= argc || argc - optind > MAX_ENDPOINTS)
    return usage ();
  for (int a = optind; a < argc; a++, n++)
    if (parse_endpoint (argv[a], &eps[n]) < 0)
      return usage ();
  for (unsigned i = 0; i < n; i++)
    if (open_endpoint (&eps[i]) < 0)
      return 1;
  run (eps, n, (unsigned) count, interval, linger);
  report (eps, n);
  for (unsigned i = 0; i < n; i++)
    close (eps[i].fd);
  return 0;
}
