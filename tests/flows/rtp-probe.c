/* rtp-probe: send RTP from loopback ports and count what comes back.
 *
 *   rtp-probe [-n COUNT] [-i INTERVAL_MS] [-l LINGER_MS] ENDPOINT...
 *   ENDPOINT = BIND_PORT:DEST_PORT:SSRC[:DELAY_MS]
 *
 * Each endpoint binds 127.0.0.1:BIND_PORT and, after DELAY_MS, sends COUNT
 * RTP packets (PCMA, 160-byte payload, its own SSRC) to 127.0.0.1:DEST_PORT,
 * one every INTERVAL_MS. Meanwhile every socket receives; LINGER_MS after
 * the last send the probe stops and prints, on stdout:
 *
 *   sent BIND_PORT N
 *   recv BIND_PORT SRC_PORT SSRC N     (per source port and SSRC seen)
 *
 * The flow tests (test-call.c) run it on the ports their SIPp scenarios
 * advertise, towards the ports tandem's SDP names, to prove the relay
 * forwards both ways and drops packets from strangers. Only loopback. */
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

typedef struct {
  uint16_t src_port;
  uint32_t ssrc;
  unsigned count;
} Source;

typedef struct {
  uint16_t bind_port, dest_port;
  uint32_t ssrc;
  long delay_ms;
  int fd;
  unsigned sent;
  Source sources[MAX_SOURCES];
  unsigned n_sources;
} Endpoint;

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
  long delay = 0;
  int n = sscanf (spec, "%lu:%lu:%lu:%ld", &bind_port, &dest_port, &ssrc, &delay);

  if (n < 3 || bind_port == 0 || bind_port > 65535 || dest_port == 0 || dest_port > 65535 ||
      delay < 0)
    return -1;
  ep->bind_port = (uint16_t) bind_port;
  ep->dest_port = (uint16_t) dest_port;
  ep->ssrc = (uint32_t) ssrc;
  ep->delay_ms = delay;
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

  memset (pkt, 0xd5, sizeof pkt);      /* A-law silence */
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
  fprintf (stderr, "usage: rtp-probe [-n COUNT] [-i INTERVAL_MS] [-l LINGER_MS] "
                   "BIND_PORT:DEST_PORT:SSRC[:DELAY_MS]...\n");
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
  while ((opt = getopt (argc, argv, "n:i:l:")) != -1) {
    if (opt == 'n')
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
