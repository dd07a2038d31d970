/* flood: a garbage flood for bench/flood.sh — random bytes and mangled SIP
 * sent to 127.0.0.1 only, bounded in count and time.
 *
 *   flood PORT RATE SECONDS [SEED]
 *
 * Sends RATE datagrams per second for SECONDS seconds (at most 200,000
 * datagrams and 60 s, whatever is asked) from one socket on 127.0.0.1 to
 * 127.0.0.1:PORT. A quarter are random bytes; the rest are SIP requests
 * (OPTIONS, REGISTER, INVITE, BYE, garbage methods) with host names made up
 * per message in the Request-URI, Via, Route, From, To and Contact, and one
 * mangling each: a bad SIP version, a maddr= in the Via, a Via naming TCP,
 * a broken CSeq, a few random bytes overwritten, or truncation. Prints what
 * it sent. Responses are read and thrown away (the socket never fills). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DATAGRAMS 200000
#define MAX_SECONDS 60

static uint64_t rng_state;

static uint32_t
rng (void)
{
  /* xorshift64*: reproducible runs from a seed */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t) ((rng_state * 2685821657736338717ULL) >> 32);
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t
mangled_sip (char *buf, size_t size, unsigned long i)
{
  static const char *const methods[] = { "OPTIONS", "REGISTER", "INVITE", "BYE", "XQZ\x01" };
  const char *method = methods[rng () % 5];
  unsigned kind = rng () % 6;
  const char *version = kind == 0 ? "SIP/7.1" : "SIP/2.0";
  char via[200];
  int n;

  if (kind == 1)
    snprintf (via, sizeof via, "SIP/2.0/UDP v%lu.flood.invalid:5060;maddr=m%lu.flood.invalid;"
              "branch=z9hG4bK%lu", i, i, i);
  else if (kind == 2)
    snprintf (via, sizeof via, "SIP/2.0/TCP v%lu.flood.invalid:5060;branch=z9hG4bK%lu", i, i);
  else
    snprintf (via, sizeof via, "%s/UDP v%lu.flood.invalid:5060;branch=z9hG4bK%lu", version, i, i);
  n = snprintf (buf, size,
                "%s sip:u%lu@r%lu.flood.invalid %s\r\n"
                "Via: %s\r\n"
                "Route: <sip:rt%lu.flood.invalid;lr>\r\n"
                "Max-Forwards: 70\r\n"
                "From: <sip:a%lu@f%lu.flood.invalid>;tag=%lu\r\n"
                "To: <sip:b%lu@t%lu.flood.invalid>\r\n"
                "Call-ID: %lu@c%lu.flood.invalid\r\n"
                "CSeq: %s %s\r\n"
                "Contact: <sip:a%lu@ct%lu.flood.invalid>\r\n"
                "Content-Length: 0\r\n\r\n",
                method, i, i, version, via, i, i, i, i, i, i, i, i,
                kind == 3 ? "x1" : "1", method, i, i);
  if (n < 0 || (size_t) n >= size)
    n = (int) size - 1;
  if (kind == 4)      /* a few random bytes overwritten */
    for (int k = 0; k < 4; k++)
      buf[rng () % n] = (char) rng ();
  else if (kind == 5) /* truncated */
    n = 40 + rng () % (n - 40);
  return n;
}

int
main (int argc, char **argv)
{
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  struct sockaddr_in from = to;
  unsigned long rate, total, sent = 0, random_sent = 0, sip_sent = 0;
  double seconds, start, interval;
  char buf[1500], sink[4096];
  int fd;

  if (argc < 4) {
    fprintf (stderr, "usage: %s PORT RATE SECONDS [SEED]\n", argv[0]);
    return 2;
  }
  to.sin_port = htons ((uint16_t) atoi (argv[1]));
  rate = strtoul (argv[2], NULL, 10);
  seconds = atof (argv[3]);
  rng_state = argc > 4 ? strtoull (argv[4], NULL, 10) | 1 : 88172645463325252ULL;
  if (seconds > MAX_SECONDS)
    seconds = MAX_SECONDS;
  total = (unsigned long) (rate * seconds);
  if (total > MAX_DATAGRAMS)
    total = MAX_DATAGRAMS;
  if (rate == 0 || total == 0)
    return 2;

  fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  from.sin_port = 0;
  if (fd < 0 || bind (fd, (struct sockaddr *) &from, sizeof from) != 0) {
    perror ("socket");
    return 1;
  }
  interval = 1.0 / rate;
  start = now_s ();
  while (sent < total && now_s () - start < seconds + 1) {
    double due = start + sent * interval;
    double wait = due - now_s ();
    size_t len;

    if (wait > 0.0005)
      usleep ((useconds_t) (wait * 1e6));
    if (rng () % 4 == 0) {
      len = 64 + rng () % 1000;
      for (size_t k = 0; k < len; k++)
        buf[k] = (char) rng ();
      random_sent++;
    } else {
      len = mangled_sip (buf, sizeof buf, sent);
      sip_sent++;
    }
    if (sendto (fd, buf, len, 0, (struct sockaddr *) &to, sizeof to) < 0 && errno != EAGAIN) {
      perror ("sendto");
      return 1;
    }
    sent++;
    while (recv (fd, sink, sizeof sink, 0) > 0)
      ;
  }
  printf ("flood: %lu datagrams in %.1f s (%lu random, %lu mangled SIP)\n", sent,
          now_s () - start, random_sent, sip_sent);
  return 0;
}
