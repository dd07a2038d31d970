/* rtp-probe: send RTP from loopback ports and count what comes back.
 *
 *   rtp-probe [-t] [-n COUNT] [-i INTERVAL_MS] [-l LINGER_MS] ENDPOINT...
 *   ENDPOINT = BIND_PORT:DEST_PORT:SSRC[:DELAY_MS[:FILL]]
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
 * CSRCs and extension; "-" if none.)
 *
 * The flow tests (test-call.c, test-features.c; test-holdmusic.c with -t)
 * run it on the ports their SIPp scenarios advertise, towards the ports
 * tandem's SDP names, to prove the relay forwards both ways and drops
 * packets from strangers (and, traced, what each packet carried). Only
 * loopback. */
#include <arpa/inet.h>
#include <errno.h>
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

typedef struct {
  uint16_t src_port;
  uint32_t ssrc;
  unsigned count;
} Source;

typedef struct {
  uint16_t bind_port, dest_port;
  uint32_t ssrc;
  long delay_ms;
  uint8_t fill;
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

static int
parse_endpoint (const char *spec, Endpoint *ep)
{
  unsigned long bind_port, dest_port, ssrc;
  long delay = 0, fill = DEFAULT_FILL;
  int n = sscanf (spec, "%lu:%lu:%lu:%ld:%li", &bind_port, &dest_port, &ssrc, &delay, &fill);

  if (n < 3 || bind_port == 0 || bind_port > 65535 || dest_port == 0 || dest_port > 65535 ||
      delay < 0 || fill < 0 || fill > 255)
    return -1;
  ep->bind_port = (uint16_t) bind_port;
  ep->dest_port = (uint16_t) dest_port;
  ep->ssrc = (uint32_t) ssrc;
  ep->delay_ms = delay;
  ep->fill = (uint8_t) fill;
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

static void
send_packet (Endpoint *ep)
{
  unsigned char pkt[RTP_HEADER + PAYLOAD];
  struct sockaddr_in to = loopback (ep->dest_port);
  uint16_t seq = (uint16_t) (ep->sent + 1);
  uint32_t ts = htonl (ep->sent * PAYLOAD), ssrc = htonl (ep->ssrc);

  memset (pkt, ep->fill, sizeof pkt);
  pkt[0] = 0x80;                       /* version 2 */
  pkt[1] = 8;                          /* PCMA */
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

/* Sends on schedule and receives until every endpoint is done plus linger. */
static void
run (Endpoint *eps, unsigned n, unsigned count, long interval, long linger)
{
  long start = now_ms (), end = 0;
  struct pollfd pfd[MAX_ENDPOINTS];

  for (unsigned i = 0; i < n; i++) {
    pfd[i] = (struct pollfd) { .fd = eps[i].fd, .events = POLLIN };
    long last = eps[i].delay_ms + (long) (count ? count - 1 : 0) * interval;
    if (last > end)
      end = last;
  }
  end += start + linger;
  for (long now = start; now < end; now = now_ms ()) {
    long wait = end - now;
    for (unsigned i = 0; i < n; i++) {
      while (eps[i].sent < count && now >= start + eps[i].delay_ms + (long) eps[i].sent * interval)
        send_packet (&eps[i]);
      if (eps[i].sent < count) {
        long next = start + eps[i].delay_ms + (long) eps[i].sent * interval - now;
        if (next < wait)
          wait = next;
      }
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
  }
}

static int
usage (void)
{
  fprintf (stderr, "usage: rtp-probe [-t] [-n COUNT] [-i INTERVAL_MS] [-l LINGER_MS] "
                   "BIND_PORT:DEST_PORT:SSRC[:DELAY_MS[:FILL]]...\n");
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
    if (parse_endpoint (argv[a], &eps[n]) < 0 || eps[n].delay_ms > 10000)
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
