/* The RTP/RTCP relay over real loopback UDP sockets: "phones" are plain
 * sockets on 127.0.0.1; every wait is bounded. Relay ports come from a block
 * of 1,600 in 10000-19599 (see claim_port_block): below
 * net.ipv4.ip_local_port_range, so the phones' ephemeral ports never collide
 * with them, clear of 20000-29999 (tandem's own range in the flow tests and
 * benches), and never shared by two test-relay processes at once.
 * A packet that must NOT be forwarded is checked by sending a good one right
 * after it from a socket the relay reads in order: the good one must be the
 * first to arrive. Every test runs with one media thread and with two (ports
 * sharded, connect may migrate one).
 * The outgoing-context tests read RTP headers and the kernel's receive time
 * (SO_TIMESTAMPNS) of each packet, so timestamp jumps are checked against
 * when packets really arrived, not when the test got round to reading them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gst/gst.h>

#include "td-leg.h"
#include "td-relay.h"
#include "td-sdp.h"
#include "td-tune.h"

#define WAIT_MS 2000

/* Tests name exact ports (exhaustion, rotation), so two test-relay processes
 * (e.g. a sanitizer build testing beside a plain one) must not share them:
 * each takes one of six 1,600-port blocks by locking its file. */
#define BLOCK 1600
#define N_BLOCKS 6
static guint16 port_base;
#define P(offset) ((guint16) (port_base + (offset)))

static void
claim_port_block (void)
{
  for (guint i = 0; i < N_BLOCKS; i++) {
    g_autofree char *path = g_strdup_printf ("%s/tandem-test-relay-ports-%u.lock",
                                             g_get_tmp_dir (), i);
    int fd = open (path, O_RDONLY | O_CREAT | O_CLOEXEC, 0666);   /* flock needs no write access */
    if (fd >= 0 && flock (fd, LOCK_EX | LOCK_NB) == 0) {
      port_base = 10000 + i * BLOCK;   /* the lock lives as long as the process */
      return;
    }
    if (fd >= 0)
      close (fd);
  }
  g_error ("all %u port blocks of 10000-19599 are taken by other test-relay processes", N_BLOCKS);
}

static guint n_threads = 1;   /* of the relay under test: see main() */

typedef struct {
  int fd;
  guint16 port;
} Phone;

static Phone
phone_new_family (int family)
{
  Phone p;
  struct sockaddr_storage ss = { 0 };
  socklen_t len;

  p.fd = socket (family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (p.fd, >=, 0);
  if (family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *) &ss;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    len = sizeof *in;
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    len = sizeof *in6;
  }
  g_assert_cmpint (bind (p.fd, (struct sockaddr *) &ss, len), ==, 0);
  g_assert_cmpint (setsockopt (p.fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int) { 1 }, sizeof (int)), ==, 0);
  len = sizeof ss;
  g_assert_cmpint (getsockname (p.fd, (struct sockaddr *) &ss, &len), ==, 0);
  p.port = ntohs (family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                    : ((struct sockaddr_in6 *) &ss)->sin6_port);
  return p;
}

static Phone
phone_new (void)
{
  return phone_new_family (AF_INET);
}

/* A phone on another loopback address (all of 127/8 is loopback): another
 * host, as far as the relay can tell. */
static Phone
phone_new_at (const char *ip)
{
  Phone p;
  struct sockaddr_in in = { .sin_family = AF_INET };
  socklen_t len = sizeof in;

  g_assert_cmpint (inet_pton (AF_INET, ip, &in.sin_addr), ==, 1);
  p.fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (bind (p.fd, (struct sockaddr *) &in, len), ==, 0);
  g_assert_cmpint (getsockname (p.fd, (struct sockaddr *) &in, &len), ==, 0);
  p.port = ntohs (in.sin_port);
  return p;
}

static void
phone_close (Phone *p)
{
  close (p->fd);
}

static void
phone_send_raw (Phone *p, guint16 port, const void *data, gsize len)
{
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (port),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  g_assert_cmpint (sendto (p->fd, data, len, 0, (struct sockaddr *) &to, sizeof to), ==, (gssize) len);
}

/* A plausible RTP (or RTCP) packet whose payload carries `tag`. */
static void
phone_send (Phone *p, guint16 port, guint32 tag)
{
  guint8 pkt[172] = { 0x80, 0x00 };
  memcpy (pkt + 12, &tag, sizeof tag);
  phone_send_raw (p, port, pkt, sizeof pkt);
}

/* Next packet's tag and source port; FALSE if nothing within `ms`. */
static gboolean
phone_recv (Phone *p, int ms, guint32 *tag, guint16 *from)
{
  struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
  guint8 pkt[2048];
  struct sockaddr_in src;
  socklen_t len = sizeof src;
  gssize n;

  if (poll (&pfd, 1, ms) <= 0)
    return FALSE;
  n = recvfrom (p->fd, pkt, sizeof pkt, 0, (struct sockaddr *) &src, &len);
  g_assert_cmpint (n, ==, 172);
  g_assert_cmpuint (pkt[0], ==, 0x80);   /* unmodified */
  memcpy (tag, pkt + 12, sizeof *tag);
  if (from)
    *from = ntohs (src.sin_port);
  return TRUE;
}

static void
expect_packet (Phone *p, guint32 tag, guint16 from)
{
  guint32 got = 0;
  guint16 src = 0;

  g_assert_true (phone_recv (p, WAIT_MS, &got, &src));
  g_assert_cmphex (got, ==, tag);
  if (from)
    g_assert_cmpuint (src, ==, from);
}

static void
expect_nothing (Phone *p, int ms)
{
  guint32 tag;
  g_assert_false (phone_recv (p, ms, &tag, NULL));
}

static void
get_stats (TdRelayPort *port, TdRelayStats *st)
{
  td_relay_port_get_stats (port, st);
}

/* rx and drop counters are bumped before a packet is forwarded, tx after it
 * is sent (the phone can have it first): wait, bounded, until `field`
 * reaches `want`, then check it is exactly that. */
#define wait_stat(port, field, want) \
  G_STMT_START { \
    TdRelayStats st_; \
    gint64 deadline_ = g_get_monotonic_time () + WAIT_MS * 1000; \
    for (;;) { \
      get_stats ((port), &st_); \
      if (st_.field >= (guint64) (want) || g_get_monotonic_time () > deadline_) \
        break; \
      g_usleep (200); \
    } \
    g_assert_cmpuint (st_.field, ==, (want)); \
  } G_STMT_END

static void
wait_rx (TdRelayPort *port, guint64 rx)
{
  wait_stat (port, rx_packets, rx);
}

static TdRelay *
relay_new (guint16 min, guint16 max)
{
  g_autoptr (GError) error = NULL;
  TdRelay *relay = td_relay_new_full ("127.0.0.1", min, max, n_threads, &error);
  g_assert_no_error (error);
  return relay;
}

static TdRelayPort *
port_alloc (TdRelay *relay)
{
  g_autoptr (GError) error = NULL;
  TdRelayPort *port = td_relay_port_alloc (relay, &error);
  g_assert_no_error (error);
  return port;
}

/* Is 127.0.0.1:port free to bind? */
static gboolean
port_free_to_bind (guint16 port)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, SOCK_DGRAM, 0);
  gboolean ok = bind (fd, (struct sockaddr *) &a, sizeof a) == 0;
  close (fd);
  return ok;
}

static void
test_alloc_even (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (1), P (10));
  TdRelayPort *p = port_alloc (relay);
  guint16 n = td_relay_port_number (p);

  g_assert_cmpuint (n % 2, ==, 0);
  g_assert_cmpuint (n, >=, P (2));
  g_assert_cmpuint (n + 1, <=, P (10));
  g_assert_false (port_free_to_bind (n));       /* RTP bound */
  g_assert_false (port_free_to_bind (n + 1));   /* RTCP = RTP + 1 bound */
  g_assert_cmpuint (td_relay_port_count (relay), ==, 1);
  td_relay_port_free (p);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 0);
  /* parked for the next port on the pair (test_parked_deaf), not closed */
  g_assert_cmpuint (td_relay_parked_count (relay), ==, 1);
  g_assert_false (port_free_to_bind (n));
  g_assert_false (port_free_to_bind (n + 1));
}

static void
test_bad_config (void)
{
  GError *error = NULL;

  g_assert_null (td_relay_new ("localhost", P (0), P (10), &error));
  g_assert_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_ADDRESS);
  g_clear_error (&error);
  g_assert_null (td_relay_new ("127.0.0.1", P (1), P (2), &error));   /* no even+odd pair */
  g_assert_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_RANGE);
  g_clear_error (&error);
  g_assert_null (td_relay_new ("127.0.0.1", P (10), P (0), &error));
  g_assert_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_RANGE);
  g_clear_error (&error);
}

/* Two legs: A <-> port a ... port b <-> B, RTP and RTCP, both directions. */
typedef struct {
  TdRelay *relay;
  TdRelayPort *a, *b;
  Phone a_rtp, a_rtcp, b_rtp, b_rtcp;
} Call;

static void
call_setup (Call *c, guint16 min, guint16 max)
{
  c->relay = relay_new (min, max);
  c->a = port_alloc (c->relay);
  c->b = port_alloc (c->relay);
  c->a_rtp = phone_new ();
  c->a_rtcp = phone_new ();
  c->b_rtp = phone_new ();
  c->b_rtcp = phone_new ();
  td_relay_port_set_remote (c->a, "127.0.0.1", c->a_rtp.port, c->a_rtcp.port);
  td_relay_port_set_remote (c->b, "127.0.0.1", c->b_rtp.port, c->b_rtcp.port);
  td_relay_connect (c->a, c->b);
  td_relay_sync (c->relay);   /* commands are asynchronous: apply before sending */
}

static void
call_teardown (Call *c)
{
  td_relay_port_free (c->a);
  td_relay_port_free (c->b);
  td_relay_free (c->relay);
  phone_close (&c->a_rtp);
  phone_close (&c->a_rtcp);
  phone_close (&c->b_rtp);
  phone_close (&c->b_rtcp);
}

static void
test_both_ways (void)
{
  Call c;
  guint16 a, b;

  call_setup (&c, P (20), P (39));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  g_assert_cmpuint (a, !=, b);

  phone_send (&c.a_rtp, a, 0xa1);
  expect_packet (&c.b_rtp, 0xa1, b);
  phone_send (&c.b_rtp, b, 0xb1);
  expect_packet (&c.a_rtp, 0xb1, a);
  phone_send (&c.a_rtcp, a + 1, 0xa2);
  expect_packet (&c.b_rtcp, 0xa2, b + 1);
  phone_send (&c.b_rtcp, b + 1, 0xb2);
  expect_packet (&c.a_rtcp, 0xb2, a + 1);
  /* RTP never leaks to RTCP or back */
  expect_nothing (&c.a_rtcp, 20);
  expect_nothing (&c.b_rtcp, 20);
  call_teardown (&c);
}

/* A burst: whatever batches the relay reads, every packet arrives, in order. */
static void
test_burst_in_order (void)
{
  Call c;
  guint16 a, b;

  call_setup (&c, P (40), P (59));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  for (guint32 i = 0; i < 200; i++)
    phone_send (&c.a_rtp, a, i);
  for (guint32 i = 0; i < 200; i++)
    expect_packet (&c.b_rtp, i, b);
  call_teardown (&c);
}

/* PREFER_SDP (the default), the hijack at call start (issue 8 item 5): a
 * stranger spraying the port before the phone speaks gets nothing and is
 * heard by nobody, even while the other party talks; the announced phone
 * wins the moment it sends, on RTP and on RTCP. */
static void
test_latching_announced_wins (void)
{
  Call c;
  Phone stranger = phone_new ();
  guint16 a, b;
  TdRelayStats st;

  call_setup (&c, P (60), P (79));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  for (guint32 i = 0; i < 3; i++)
    phone_send (&stranger, a, 0xbad0 + i);
  phone_send (&stranger, a + 1, 0xbad9);
  /* B talks: it goes to A's SDP address, not to the stranger */
  phone_send (&c.b_rtp, b, 1);
  expect_packet (&c.a_rtp, 1, a);
  phone_send (&stranger, a, 0xbad3);
  phone_send (&c.a_rtp, a, 2);        /* the phone: the first thing B hears */
  expect_packet (&c.b_rtp, 2, b);
  phone_send (&stranger, a, 0xbad4);  /* latched: foreign from now on */
  phone_send (&c.a_rtp, a, 3);
  expect_packet (&c.b_rtp, 3, b);
  phone_send (&c.b_rtp, b, 4);
  expect_packet (&c.a_rtp, 4, a);
  phone_send (&c.a_rtcp, a + 1, 5);   /* RTCP: the announced one wins too */
  expect_packet (&c.b_rtcp, 5, b + 1);
  phone_send (&c.b_rtcp, b + 1, 6);
  expect_packet (&c.a_rtcp, 6, a + 1);
  expect_nothing (&stranger, 50);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.dropped_foreign, ==, 6);
  g_assert_cmpuint (st.rx_packets, ==, 3);
  call_teardown (&c);
  phone_close (&stranger);
}

/* A phone behind NAT: its packets come from its router, not from the SDP
 * address. Learned only once the relay has sent to the SDP address for the
 * NAT delay without a word back; until then dropped. The learned source is
 * provisional for the window: the SDP address still wins within it. */
static void
test_latching_nat (void)
{
  Call c;
  Phone nat = phone_new (), attacker = phone_new ();
  guint16 a, b;

  c.relay = relay_new (P (460), P (479));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 300, 10000);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);

  /* The relay has not sent to A yet: however long the NAT source sends,
   * nothing says the phone is silent (it may not know the port yet). */
  phone_send (&nat, a, 0xbad1);
  g_usleep (400 * 1000);
  phone_send (&nat, a, 0xbad2);
  phone_send (&c.b_rtp, b, 1);     /* B talks: to A's SDP address; the wait starts */
  expect_packet (&c.a_rtp, 1, a);
  phone_send (&nat, a, 0xbad3);    /* too early */
  wait_stat (c.a, dropped_foreign, 3);
  expect_nothing (&c.b_rtp, 20);
  g_usleep (350 * 1000);
  phone_send (&nat, a, 2);         /* A stayed silent: learned */
  expect_packet (&c.b_rtp, 2, b);
  phone_send (&c.b_rtp, b, 3);
  expect_packet (&nat, 3, a);
  expect_nothing (&c.a_rtp, 20);
  phone_send (&attacker, a, 0xbad4);   /* nobody else */
  phone_send (&nat, a, 4);
  expect_packet (&c.b_rtp, 4, b);
  /* within the window, the SDP address itself still wins */
  phone_send (&c.a_rtp, a, 5);
  expect_packet (&c.b_rtp, 5, b);
  phone_send (&c.b_rtp, b, 6);
  expect_packet (&c.a_rtp, 6, a);
  phone_send (&nat, a, 0xbad5);
  phone_send (&c.a_rtp, a, 7);
  expect_packet (&c.b_rtp, 7, b);
  expect_nothing (&nat, 20);
  expect_nothing (&attacker, 20);
  wait_stat (c.a, dropped_foreign, 5);
  call_teardown (&c);
  phone_close (&nat);
  phone_close (&attacker);
}

/* Both phones behind NAT, neither ever sends from its SDP address, so the
 * relay has nothing to forward and would wait for ever; but their RTP comes
 * from the hosts their SIP came from: learned after the NAT delay, while a
 * stranger spraying from elsewhere, even earlier, is never learned. (Both
 * announced an address: with nothing announced the host is learned at
 * once, latching/host-unannounced; so do the other host tests here.) */
static void
test_latching_nat_signalling_host (void)
{
  Call c;
  Phone nat_a = phone_new_at ("127.0.0.2"), nat_b = phone_new_at ("127.0.0.3");
  Phone stranger = phone_new ();
  guint16 a, b;

  c.relay = relay_new (P (600), P (619));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 300, 10000);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_port_set_signalling_host (c.a, "127.0.0.2");
  td_relay_port_set_signalling_host (c.b, "127.0.0.3");
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);

  phone_send (&stranger, a, 0xbad1);
  phone_send (&stranger, b, 0xbad2);
  phone_send (&nat_a, a, 0xbad3);   /* too early for either */
  phone_send (&nat_b, b, 0xbad4);
  wait_stat (c.a, dropped_foreign, 2);
  wait_stat (c.b, dropped_foreign, 2);
  g_usleep (350 * 1000);
  phone_send (&stranger, a, 0xbad5);
  phone_send (&stranger, b, 0xbad6);
  phone_send (&nat_a, a, 1);        /* learned; b has learned nobody yet */
  expect_packet (&c.b_rtp, 1, b);
  phone_send (&nat_b, b, 2);        /* learned */
  expect_packet (&nat_a, 2, a);
  phone_send (&nat_a, a, 3);
  expect_packet (&nat_b, 3, b);
  expect_nothing (&stranger, 20);
  wait_stat (c.a, dropped_foreign, 3);
  wait_stat (c.b, dropped_foreign, 3);
  call_teardown (&c);
  phone_close (&nat_a);
  phone_close (&nat_b);
  phone_close (&stranger);
}

/* Every packet waiting on `p` carries a tag in [lo, hi]; TRUE if any. */
static gboolean
drain_tags_in (Phone *p, guint32 lo, guint32 hi)
{
  guint32 tag;
  gboolean any = FALSE;

  while (phone_recv (p, 50, &tag, NULL)) {
    g_assert_cmphex (tag, >=, lo);
    g_assert_cmphex (tag, <=, hi);
    any = TRUE;
  }
  return any;
}

/* A NATed phone (SDP address silent, RTP from the host its SIP comes from,
 * on another port) against a stranger on another host who sprays the port
 * from before the call: the stranger's packets become "anyone" learnable
 * before the phone's are, but while the signalling host speaks nobody else
 * is learned, and a learned stranger would yield to it. The phone's RTCP
 * goes with its RTP; the stranger's RTCP is never learned. */
static void
test_latching_nat_vs_sprayer (void)
{
  Call c;
  Phone nat = phone_new (), nat_rtcp = phone_new (), stranger = phone_new_at ("127.0.0.2");
  guint16 a, b;
  gint64 t0;
  guint32 tag = 0x100;

  c.relay = relay_new (P (840), P (859));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 300, 10000);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_port_set_signalling_host (c.a, "127.0.0.1");
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);

  phone_send (&stranger, a, 0xbad0);   /* spraying while the phone rings */
  phone_send (&stranger, a + 1, 0xbad0);
  phone_send (&c.b_rtp, b, 1);         /* B talks: "anyone" may be learned in 300 ms */
  expect_packet (&c.a_rtp, 1, a);
  t0 = g_get_monotonic_time ();
  /* The stranger sprays every 10 ms; the phone starts talking 100 ms later,
   * every 20 ms, so "anyone" is due 100 ms before the phone is (the old
   * code learned the stranger then, for good). Bounded: 80 rounds. */
  for (guint i = 0; i < 80 && g_get_monotonic_time () - t0 < 700 * 1000; i++) {
    phone_send (&stranger, a, 0xbad1);
    phone_send (&stranger, a + 1, 0xbad1);
    if (g_get_monotonic_time () - t0 >= 100 * 1000 && i % 2 == 0)
      phone_send (&nat, a, tag++);
    g_usleep (10 * 1000);
  }
  g_assert_true (drain_tags_in (&c.b_rtp, 0x100, tag - 1));   /* the phone, never the stranger */
  phone_send (&c.b_rtp, b, 2);
  expect_packet (&nat, 2, a);
  phone_send (&stranger, a, 0xbad2);
  phone_send (&nat, a, 3);
  expect_packet (&c.b_rtp, 3, b);
  /* RTCP: the phone's, from the host RTP latched to, not the stranger's */
  phone_send (&nat_rtcp, a + 1, 4);
  expect_packet (&c.b_rtcp, 4, b + 1);
  phone_send (&c.b_rtcp, b + 1, 5);
  expect_packet (&nat_rtcp, 5, a + 1);
  phone_send (&stranger, a + 1, 0xbad3);
  expect_nothing (&c.b_rtcp, 20);
  expect_nothing (&stranger, 20);
  call_teardown (&c);
  phone_close (&nat);
  phone_close (&nat_rtcp);
  phone_close (&stranger);
}

/* A stranger learned as "anyone" while the phone was still silent yields,
 * within the window, to the first packet from the signalling host. */
static void
test_latching_host_replaces_stranger (void)
{
  Call c;
  Phone nat = phone_new (), stranger = phone_new_at ("127.0.0.2");
  guint16 a, b;

  c.relay = relay_new (P (880), P (899));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 100, 10000);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_port_set_signalling_host (c.a, "127.0.0.1");
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);

  phone_send (&c.b_rtp, b, 1);
  expect_packet (&c.a_rtp, 1, a);
  g_usleep (150 * 1000);
  phone_send (&stranger, a, 0x51);     /* nobody better has spoken: learned */
  expect_packet (&c.b_rtp, 0x51, b);
  phone_send (&nat, a, 2);             /* the signalling host takes over at once */
  expect_packet (&c.b_rtp, 2, b);
  phone_send (&stranger, a, 0xbad);
  phone_send (&c.b_rtp, b, 3);
  expect_packet (&nat, 3, a);
  expect_nothing (&stranger, 20);
  expect_nothing (&c.b_rtp, 20);
  call_teardown (&c);
  phone_close (&nat);
  phone_close (&stranger);
}

/* RTCP is not learned by RTP's clock: phones send their first RTCP seconds
 * into the call, long after a stranger spraying the RTCP port would be
 * learned and locked in. The phone's RTCP, late, still gets through, and the
 * other party's RTCP reaches the phone, never the stranger. */
static void
test_latching_rtcp_sprayer (void)
{
  Call c;
  Phone stranger = phone_new_at ("127.0.0.2");
  guint16 a, b;
  gint64 t0;

  c.relay = relay_new (P (860), P (879));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 100, 200);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_port_set_signalling_host (c.a, "127.0.0.1");
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);

  phone_send (&c.b_rtp, b, 1);         /* RTP flows both ways from the SDP addresses */
  expect_packet (&c.a_rtp, 1, a);
  phone_send (&c.a_rtp, a, 2);
  expect_packet (&c.b_rtp, 2, b);
  t0 = g_get_monotonic_time ();
  /* past the NAT delay and the window, RTP going out all along (bounded) */
  for (guint i = 0; i < 60 && g_get_monotonic_time () - t0 < 500 * 1000; i++) {
    phone_send (&stranger, a + 1, 0xbad0 + i);
    phone_send (&c.b_rtp, b, 0x100 + i);
    g_usleep (10 * 1000);
  }
  g_assert_true (drain_tags_in (&c.a_rtp, 0x100, 0x100 + 59));
  phone_send (&c.b_rtcp, b + 1, 3);    /* B's RTCP: to A's SDP address */
  expect_packet (&c.a_rtcp, 3, a + 1);
  phone_send (&c.a_rtcp, a + 1, 4);    /* A's first RTCP, late: heard */
  expect_packet (&c.b_rtcp, 4, b + 1);
  phone_send (&stranger, a + 1, 0xbad);
  phone_send (&c.b_rtcp, b + 1, 5);
  expect_packet (&c.a_rtcp, 5, a + 1);
  expect_nothing (&c.b_rtcp, 20);
  expect_nothing (&stranger, 20);
  call_teardown (&c);
  phone_close (&stranger);
}

/* After the window, a learned NAT source is the only one: not even the SDP
 * address takes it over any more (a spoofed one could cut the call). */
static void
test_latching_window_closes (void)
{
  Call c;
  Phone nat = phone_new ();
  guint16 a, b;

  c.relay = relay_new (P (480), P (499));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 100, 300);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);

  phone_send (&c.b_rtp, b, 1);
  expect_packet (&c.a_rtp, 1, a);
  g_usleep (150 * 1000);
  phone_send (&nat, a, 2);
  expect_packet (&c.b_rtp, 2, b);
  g_usleep (350 * 1000);
  phone_send (&c.a_rtp, a, 0xbad);   /* window over */
  phone_send (&nat, a, 3);
  expect_packet (&c.b_rtp, 3, b);
  phone_send (&c.b_rtp, b, 4);
  expect_packet (&nat, 4, a);
  expect_nothing (&c.a_rtp, 20);
  wait_stat (c.a, dropped_foreign, 1);
  call_teardown (&c);
  phone_close (&nat);
}

/* SDP_ONLY: a stranger is never learned, however long the phone is silent. */
static void
test_latching_sdp_only (void)
{
  Call c;
  Phone nat = phone_new ();
  guint16 a, b;

  c.relay = relay_new (P (500), P (519));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_SDP_ONLY, 50, 100);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  phone_send (&c.b_rtp, b, 1);
  expect_packet (&c.a_rtp, 1, a);
  g_usleep (150 * 1000);
  phone_send (&nat, a, 0xbad);
  phone_send (&c.a_rtp, a, 2);
  expect_packet (&c.b_rtp, 2, b);
  phone_send (&c.b_rtp, b, 3);
  expect_packet (&c.a_rtp, 3, a);
  expect_nothing (&nat, 20);
  call_teardown (&c);
  phone_close (&nat);
}

/* FIRST_PACKET, the old behaviour, for the record: whoever sends first
 * takes the port, and hears B. */
static void
test_latching_first_packet (void)
{
  Call c;
  Phone stranger = phone_new ();
  guint16 a, b;

  c.relay = relay_new (P (520), P (539));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_FIRST_PACKET, 0, 0);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  phone_send (&stranger, a, 1);
  expect_packet (&c.b_rtp, 1, b);
  phone_send (&c.b_rtp, b, 2);
  expect_packet (&stranger, 2, a);
  phone_send (&c.a_rtp, a, 0xbad);   /* the phone itself is now foreign */
  phone_send (&stranger, a, 3);
  expect_packet (&c.b_rtp, 3, b);
  call_teardown (&c);
  phone_close (&stranger);
}

/* Only a changed SDP address re-arms learning: the same one again (a 200
 * after the 183, a refresh) or 0.0.0.0 (hold) keeps the learned source. */
static void
test_latching_rearm (void)
{
  Call c;
  Phone nat = phone_new (), moved = phone_new ();
  guint16 a, b;

  c.relay = relay_new (P (540), P (559));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 300, 100);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  phone_send (&c.b_rtp, b, 1);
  expect_packet (&c.a_rtp, 1, a);
  g_usleep (350 * 1000);
  phone_send (&nat, a, 2);            /* NAT learned */
  expect_packet (&c.b_rtp, 2, b);
  g_usleep (150 * 1000);              /* and final */

  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);   /* same */
  td_relay_port_set_remote (c.a, "0.0.0.0", c.a_rtp.port, 0);                /* hold */
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);   /* resume */
  td_relay_sync (c.relay);
  phone_send (&c.b_rtp, b, 3);
  expect_packet (&nat, 3, a);         /* still the NAT source, not the SDP address */
  phone_send (&c.a_rtp, a, 0xbad);
  phone_send (&nat, a, 4);
  expect_packet (&c.b_rtp, 4, b);

  /* A re-INVITE moves A's media: learning again, the new address wins. */
  td_relay_port_set_remote (c.a, "127.0.0.1", moved.port, 0);
  td_relay_sync (c.relay);
  phone_send (&c.b_rtp, b, 5);
  expect_packet (&moved, 5, a);
  phone_send (&nat, a, 0xbad2);
  phone_send (&moved, a, 6);
  expect_packet (&c.b_rtp, 6, b);
  expect_nothing (&nat, 20);
  call_teardown (&c);
  phone_close (&nat);
  phone_close (&moved);
}

/* "0.0.0.0" (SDP hold) means: send nowhere until latched. */
static void
test_remote_none (void)
{
  Call c;
  guint16 a, b;

  call_setup (&c, P (80), P (99));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  td_relay_port_set_remote (c.a, "0.0.0.0", 4000, 0);
  td_relay_sync (c.relay);
  phone_send (&c.b_rtp, b, 1);
  expect_nothing (&c.a_rtp, 50);
  phone_send (&c.a_rtp, a, 2);   /* latches */
  expect_packet (&c.b_rtp, 2, b);
  phone_send (&c.b_rtp, b, 3);
  expect_packet (&c.a_rtp, 3, a);
  call_teardown (&c);
}

static void
test_forward_off (void)
{
  Call c;
  guint16 a, b;
  TdRelayStats st;
  gint64 before;

  call_setup (&c, P (100), P (119));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  td_relay_port_set_forward (c.a, FALSE);
  td_relay_sync (c.relay);
  before = g_get_monotonic_time ();
  phone_send (&c.a_rtp, a, 1);
  wait_rx (c.a, 1);              /* seen (activity) but dropped */
  get_stats (c.a, &st);
  g_assert_cmpint (st.last_rx_us, >=, before);
  /* the other direction still flows (one-way hold) */
  phone_send (&c.b_rtp, b, 2);
  expect_packet (&c.a_rtp, 2, a);
  td_relay_port_set_forward (c.a, TRUE);
  td_relay_sync (c.relay);
  phone_send (&c.a_rtp, a, 3);
  expect_packet (&c.b_rtp, 3, b);   /* 1 never came */
  wait_stat (c.b, tx_packets, 1);
  call_teardown (&c);
}

static void
test_disconnect (void)
{
  Call c;
  guint16 a, b;
  Phone other = phone_new ();
  TdRelayPort *x;

  call_setup (&c, P (120), P (139));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  td_relay_disconnect (c.a);       /* both directions stop */
  td_relay_sync (c.relay);
  phone_send (&c.a_rtp, a, 1);
  phone_send (&c.b_rtp, b, 2);
  wait_rx (c.a, 1);
  wait_rx (c.b, 1);
  expect_nothing (&c.a_rtp, 20);
  expect_nothing (&c.b_rtp, 20);

  /* Re-bridge a to a new port x (transfer); b stays alone. */
  x = port_alloc (c.relay);
  td_relay_port_set_remote (x, "127.0.0.1", other.port, 0);
  td_relay_connect (c.a, x);
  td_relay_sync (c.relay);
  phone_send (&c.a_rtp, a, 3);
  expect_packet (&other, 3, td_relay_port_number (x));
  /* Freeing x while connected leaves a unconnected, not dangling. */
  td_relay_port_free (x);
  td_relay_sync (c.relay);
  phone_send (&c.a_rtp, a, 4);
  wait_rx (c.a, 3);
  expect_nothing (&other, 20);
  call_teardown (&c);
  phone_close (&other);
}

static void
test_garbage (void)
{
  Call c;
  Phone junk = phone_new ();
  guint16 a, b;
  TdRelayStats st;
  const guint8 short_rtp[11] = { 0x80 };
  guint8 v0[172] = { 0x00 };
  const guint8 short_rtcp[7] = { 0x80, 200 };
  guint8 huge[4000] = { 0x80 };

  call_setup (&c, P (140), P (159));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  /* Garbage while learning must not latch. */
  phone_send_raw (&junk, a, "hello", 5);
  phone_send_raw (&junk, a, short_rtp, sizeof short_rtp);
  phone_send_raw (&junk, a, v0, sizeof v0);
  phone_send_raw (&junk, a, huge, sizeof huge);
  phone_send_raw (&junk, a + 1, short_rtcp, sizeof short_rtcp);
  phone_send (&c.a_rtp, a, 1);
  expect_packet (&c.b_rtp, 1, b);
  phone_send (&c.a_rtcp, a + 1, 2);
  expect_packet (&c.b_rtcp, 2, b + 1);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.dropped_other, ==, 5);
  g_assert_cmpuint (st.dropped_foreign, ==, 0);
  g_assert_cmpuint (st.rx_packets, ==, 2);
  /* A latched, not junk: junk's RTP is now foreign. */
  phone_send (&junk, a, 0xbad);
  phone_send (&c.a_rtp, a, 3);
  expect_packet (&c.b_rtp, 3, b);
  /* Garbage from the latched source is "other", not forwarded. */
  phone_send_raw (&c.a_rtp, a, v0, sizeof v0);
  phone_send (&c.a_rtp, a, 4);
  expect_packet (&c.b_rtp, 4, b);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.dropped_foreign, ==, 1);
  g_assert_cmpuint (st.dropped_other, ==, 6);
  call_teardown (&c);
  phone_close (&junk);
}

/* RTCP multiplexed on the RTP port (RFC 5761) may be 8 bytes: forwarded. */
static void
test_rtcp_mux (void)
{
  Call c;
  const guint8 rr[8] = { 0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef };   /* empty RR */
  guint8 got[64];
  struct pollfd pfd;

  call_setup (&c, P (180), P (199));
  phone_send_raw (&c.a_rtp, td_relay_port_number (c.a), rr, sizeof rr);
  pfd = (struct pollfd) { .fd = c.b_rtp.fd, .events = POLLIN };
  g_assert_cmpint (poll (&pfd, 1, WAIT_MS), ==, 1);
  g_assert_cmpint (recv (c.b_rtp.fd, got, sizeof got, 0), ==, sizeof rr);
  g_assert_cmpmem (got, sizeof rr, rr, sizeof rr);
  call_teardown (&c);
}

/* Under rtcp-mux (agreed by both SDPs) the RTCP socket goes: its port is
 * free again, RTCP multiplexed on the RTP port still passes, and RTCP that
 * would leave by the closed socket is simply not sent. */
static void
test_drop_rtcp (void)
{
  Call c;
  const guint8 rr[8] = { 0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef };
  guint8 got[64];
  struct pollfd pfd;
  guint16 a, b;
  TdRelayStats st;

  call_setup (&c, P (580), P (599));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  td_relay_port_drop_rtcp (c.a);
  td_relay_port_drop_rtcp (c.a);   /* twice: nothing more */
  td_relay_sync (c.relay);
  g_assert_true (port_free_to_bind (a + 1));
  g_assert_false (port_free_to_bind (a));
  phone_send_raw (&c.a_rtp, a, rr, sizeof rr);
  pfd = (struct pollfd) { .fd = c.b_rtp.fd, .events = POLLIN };
  g_assert_cmpint (poll (&pfd, 1, WAIT_MS), ==, 1);
  g_assert_cmpint (recv (c.b_rtp.fd, got, sizeof got, 0), ==, sizeof rr);
  phone_send (&c.b_rtcp, b + 1, 1);   /* for a's RTCP socket, which is gone */
  wait_rx (c.b, 1);
  phone_send (&c.b_rtp, b, 2);
  expect_packet (&c.a_rtp, 2, a);
  expect_nothing (&c.a_rtcp, 20);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.tx_errors, ==, 0);
  td_relay_port_free (c.a);
  td_relay_sync (c.relay);
  g_assert_cmpuint (td_relay_parked_count (c.relay), ==, 1);   /* its RTP socket */
  g_assert_true (port_free_to_bind (a + 1));
  c.a = port_alloc (c.relay);   /* for call_teardown */
  call_teardown (&c);
}

static void
test_stats (void)
{
  Call c;
  guint16 a, b;
  TdRelayStats st;
  gint64 before = g_get_monotonic_time ();

  call_setup (&c, P (160), P (179));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.rx_packets + st.tx_packets + st.dropped_foreign + st.dropped_other, ==, 0);
  g_assert_cmpint (st.last_rx_us, ==, 0);
  for (guint32 i = 0; i < 5; i++) {
    phone_send (&c.a_rtp, a, i);
    expect_packet (&c.b_rtp, i, b);
  }
  for (guint32 i = 0; i < 3; i++) {
    phone_send (&c.b_rtp, b, i);
    expect_packet (&c.a_rtp, i, a);
  }
  phone_send (&c.a_rtcp, a + 1, 9);
  expect_packet (&c.b_rtcp, 9, b + 1);
  wait_stat (c.a, tx_packets, 3);
  wait_stat (c.b, tx_packets, 6);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.rx_packets, ==, 6);   /* RTP and RTCP */
  g_assert_cmpuint (st.tx_packets, ==, 3);
  g_assert_cmpint (st.last_rx_us, >=, before);
  g_assert_cmpint (st.last_rx_us, <=, g_get_monotonic_time ());
  get_stats (c.b, &st);
  g_assert_cmpuint (st.rx_packets, ==, 3);
  g_assert_cmpuint (st.tx_packets, ==, 6);
  g_assert_cmpuint (st.tx_errors, ==, 0);
  call_teardown (&c);
}

static void
test_exhaustion (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (200), P (203));   /* 4 ports = 2 pairs */
  g_autoptr (GError) error = NULL;
  TdRelayPort *p1 = port_alloc (relay), *p2 = port_alloc (relay), *p3;
  guint16 n1 = td_relay_port_number (p1), n2 = td_relay_port_number (p2);

  g_assert_true (n1 == P (200) || n1 == P (202));
  g_assert_cmpuint (n1 + n2, ==, P (200) + P (202));
  g_assert_null (td_relay_port_alloc (relay, &error));
  g_assert_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_EXHAUSTED);
  g_assert_nonnull (strstr (error->message, "exhausted"));
  g_assert_cmpuint (td_relay_port_count (relay), ==, 2);

  /* A freed pair comes back once the media thread has closed it: cooling
   * down, but the only one left. */
  td_relay_port_free (p1);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 1);
  p3 = port_alloc (relay);
  g_assert_cmpuint (td_relay_port_number (p3), ==, n1);
  td_relay_port_free (p2);
  td_relay_port_free (p3);
}

/* Pairs held by other processes are skipped; freed pairs cool down: handed
 * out again only when nothing else is free, the oldest first. */
static void
test_rotation (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (220), P (227));   /* 4 pairs */
  g_autoptr (GError) error = NULL;
  Phone squatter;
  struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons (P (223)),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  TdRelayPort *p[3];
  guint16 sum = 0;

  /* someone else holds the RTCP port of the second pair */
  squatter.fd = socket (AF_INET, SOCK_DGRAM, 0);
  g_assert_cmpint (bind (squatter.fd, (struct sockaddr *) &at, sizeof at), ==, 0);
  for (guint i = 0; i < 3; i++) {
    p[i] = port_alloc (relay);
    g_assert_cmpuint (td_relay_port_number (p[i]), !=, P (222));
    sum += td_relay_port_number (p[i]);
  }
  g_assert_cmpuint (sum, ==, P (220) + P (224) + P (226));
  g_assert_null (td_relay_port_alloc (relay, &error));
  g_assert_nonnull (strstr (error->message, "1 by other sockets"));
  td_relay_port_free (p[1]);
  td_relay_sync (relay);
  td_relay_port_free (p[0]);
  td_relay_sync (relay);
  /* both cool down; the older one comes first */
  p[1] = port_alloc (relay);
  p[0] = port_alloc (relay);
  g_assert_cmpuint (td_relay_port_number (p[1]), <, P (227));
  for (guint i = 0; i < 3; i++)
    td_relay_port_free (p[i]);
  phone_close (&squatter);
}

/* Unpredictable and not reused at once: consecutive allocations do not walk
 * the range in order, and while free pairs remain, a freed pair is not
 * handed out again. */
static void
test_alloc_random (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (1400), P (1599));   /* 100 pairs */
  TdRelayPort *held[10];
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  guint in_order = 0;

  for (guint i = 0; i < 10; i++) {
    held[i] = port_alloc (relay);
    g_assert_true (g_hash_table_add (seen, GUINT_TO_POINTER (td_relay_port_number (held[i]))));
    if (i > 0 && td_relay_port_number (held[i]) == td_relay_port_number (held[i - 1]) + 2)
      in_order++;
  }
  g_assert_cmpuint (in_order, <, 9);
  /* 90 pairs left: 80 allocate-and-free rounds never repeat a pair */
  for (guint i = 0; i < 80; i++) {
    TdRelayPort *p = port_alloc (relay);
    g_assert_true (g_hash_table_add (seen, GUINT_TO_POINTER (td_relay_port_number (p))));
    td_relay_port_free (p);
    td_relay_sync (relay);
  }
  for (guint i = 0; i < 10; i++)
    td_relay_port_free (held[i]);
}

static guint
count_fds (void)
{
  GDir *dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir))
    n++;
  g_dir_close (dir);
  return n;
}

static void
test_many_ports (void)
{
  guint base = count_fds ();

  for (guint round = 0; round < 2; round++) {
    TdRelay *relay = relay_new (P (1000), P (1399));   /* exactly 200 pairs */
    TdRelayPort *ports[200];
    g_autoptr (GError) error = NULL;
    guint parked;

    for (guint i = 0; i < 200; i++)
      ports[i] = port_alloc (relay);
    g_assert_null (td_relay_port_alloc (relay, &error));
    g_assert_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_EXHAUSTED);
    g_assert_cmpuint (count_fds (), ==, base + 4 * n_threads + 400);   /* epoll, eventfd, two timerfds */
    for (guint i = 0; i < 200; i += 2)
      td_relay_connect (ports[i], ports[i + 1]);
    for (guint i = 0; i < 200; i++)
      td_relay_port_free (ports[i]);
    td_relay_sync (relay);
    g_assert_cmpuint (td_relay_port_count (relay), ==, 0);
    /* parked, up to the pool's share of the fd limit */
    parked = td_relay_parked_count (relay);
    g_assert_cmpuint (parked, >, 0);
    g_assert_cmpuint (parked, <=, 200);
    g_assert_cmpuint (count_fds (), ==, base + 4 * n_threads + 2 * parked);
    /* ports left allocated and parked sockets are closed by td_relay_free */
    for (guint i = 0; i < 10; i++)
      ports[i] = port_alloc (relay);
    td_relay_connect (ports[0], ports[1]);
    td_relay_free (relay);
    g_assert_cmpuint (count_fds (), ==, base);
  }
}

static void
test_ipv6 (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdRelay) relay = NULL;
  TdRelayPort *a, *b;
  Phone pa, pb;
  int probe = socket (AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_in6 lo = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  struct sockaddr_in6 to = lo;
  guint8 pkt[172] = { 0x80 };
  guint32 tag = 0;
  gboolean have_v6 = probe >= 0 && bind (probe, (struct sockaddr *) &lo, sizeof lo) == 0;

  if (probe >= 0)
    close (probe);
  if (!have_v6) {
    g_test_skip ("no IPv6 loopback");
    return;
  }
  relay = td_relay_new_full ("::1", P (240), P (259), n_threads, &error);
  g_assert_no_error (error);
  a = port_alloc (relay);
  b = port_alloc (relay);
  pa = phone_new_family (AF_INET6);
  pb = phone_new_family (AF_INET6);
  td_relay_port_set_remote (a, "::1", pa.port, 0);
  td_relay_port_set_remote (b, "::1", pb.port, 0);
  td_relay_connect (a, b);
  td_relay_sync (relay);
  to.sin6_port = htons (td_relay_port_number (a));
  pkt[12] = 0x66;
  g_assert_cmpint (sendto (pa.fd, pkt, sizeof pkt, 0, (struct sockaddr *) &to, sizeof to), ==, sizeof pkt);
  {
    struct pollfd pfd = { .fd = pb.fd, .events = POLLIN };
    g_assert_cmpint (poll (&pfd, 1, WAIT_MS), ==, 1);
    g_assert_cmpint (recv (pb.fd, pkt, sizeof pkt, 0), ==, sizeof pkt);
    memcpy (&tag, pkt + 12, 1);
    g_assert_cmpuint (tag, ==, 0x66);
  }
  td_relay_port_free (a);
  td_relay_port_free (b);
  phone_close (&pa);
  phone_close (&pb);
}

/* A transfer across media threads: p2, latched and bridged to p3 on one
 * thread, is re-bridged to p1 on the other; it moves with its latching state
 * and counters, and the traffic follows. */
static void
test_cross_thread_connect (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (260), P (279));
  TdRelayPort *p0 = port_alloc (relay), *p1 = port_alloc (relay);
  TdRelayPort *p2 = port_alloc (relay), *p3 = port_alloc (relay);
  Phone a = phone_new (), c = phone_new (), d = phone_new (), attacker = phone_new ();
  guint16 n1 = td_relay_port_number (p1), n2 = td_relay_port_number (p2);
  guint16 n3 = td_relay_port_number (p3);

  g_assert_cmpuint (td_relay_n_threads (relay), ==, n_threads);
  td_relay_port_set_remote (p1, "127.0.0.1", a.port, 0);
  td_relay_port_set_remote (p2, "127.0.0.1", c.port, 0);
  td_relay_port_set_remote (p3, "127.0.0.1", d.port, 0);
  td_relay_connect (p2, p3);
  td_relay_sync (relay);
  phone_send (&c, n2, 1);          /* latches c on p2 */
  expect_packet (&d, 1, n3);

  td_relay_connect (p1, p2);       /* p3 is left alone */
  td_relay_sync (relay);
  phone_send (&a, n1, 2);
  expect_packet (&c, 2, n2);
  phone_send (&attacker, n2, 0xbad);
  phone_send (&c, n2, 3);
  expect_packet (&a, 3, n1);
  expect_nothing (&d, 20);
  wait_stat (p2, dropped_foreign, 1);
  wait_stat (p2, rx_packets, 2);
  wait_stat (p2, tx_packets, 1);

  /* and back: p3 joins p2 again */
  td_relay_connect (p3, p2);
  td_relay_sync (relay);
  phone_send (&c, n2, 4);
  expect_packet (&d, 4, n3);

  td_relay_port_free (p0);
  td_relay_port_free (p1);
  td_relay_port_free (p2);
  td_relay_port_free (p3);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 0);
  phone_close (&a);
  phone_close (&c);
  phone_close (&d);
  phone_close (&attacker);
}

/* ---- the outgoing RTP context and tune playout ---- */

#define FRAME 160      /* samples (and G.711 bytes) per 20 ms frame */

typedef struct {
  gboolean marker;
  guint8 pt;
  guint16 seq;
  guint32 ts, ssrc;
  gsize len;               /* payload bytes */
  guint8 payload[1500];
  gint64 at_us;            /* kernel receive time (CLOCK_REALTIME) */
} Rtp;

static void
phone_send_rtp (Phone *p, guint16 port, guint32 ssrc, guint16 seq, guint32 ts, guint32 tag)
{
  guint8 pkt[12 + FRAME] = { 0x80, 0x00 };

  pkt[2] = (guint8) (seq >> 8);
  pkt[3] = (guint8) seq;
  for (guint i = 0; i < 4; i++) {
    pkt[4 + i] = (guint8) (ts >> (24 - 8 * i));
    pkt[8 + i] = (guint8) (ssrc >> (24 - 8 * i));
  }
  memcpy (pkt + 12, &tag, sizeof tag);
  phone_send_raw (p, port, pkt, sizeof pkt);
}

static gint64
receive_time (struct msghdr *msg)
{
  for (struct cmsghdr *c = CMSG_FIRSTHDR (msg); c; c = CMSG_NXTHDR (msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec t;
      memcpy (&t, CMSG_DATA (c), sizeof t);
      return (gint64) t.tv_sec * G_USEC_PER_SEC + t.tv_nsec / 1000;
    }
  }
  g_assert_not_reached ();
}

/* The next RTP packet within `ms`, parsed; FALSE if none came. */
static gboolean
phone_recv_rtp (Phone *p, int ms, Rtp *out)
{
  struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
  guint8 pkt[2048];
  char control[CMSG_SPACE (sizeof (struct timespec))];
  struct iovec iov = { pkt, sizeof pkt };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control, .msg_controllen = sizeof control };
  gssize n;

  if (poll (&pfd, 1, ms) <= 0)
    return FALSE;
  n = recvmsg (p->fd, &msg, 0);
  g_assert_cmpint (n, >=, 12);
  g_assert_cmpuint (pkt[0], ==, 0x80);
  out->marker = (pkt[1] & 0x80) != 0;
  out->pt = pkt[1] & 0x7f;
  out->seq = (guint16) (pkt[2] << 8 | pkt[3]);
  out->ts = (guint32) pkt[4] << 24 | (guint32) pkt[5] << 16 | (guint32) pkt[6] << 8 | pkt[7];
  out->ssrc = (guint32) pkt[8] << 24 | (guint32) pkt[9] << 16 | (guint32) pkt[10] << 8 | pkt[11];
  out->len = (gsize) n - 12;
  memcpy (out->payload, pkt + 12, out->len);
  out->at_us = receive_time (&msg);
  return TRUE;
}

static void
recv_rtp (Phone *p, Rtp *out)
{
  g_assert_true (phone_recv_rtp (p, WAIT_MS, out));
}

static guint32
payload_tag (const Rtp *r)
{
  guint32 tag;
  memcpy (&tag, r->payload, sizeof tag);
  return tag;
}

/* 25 frames (0.5 s), each a different ramp, so a payload names its frame. */
static TdTune *
test_tune (void)
{
  enum { N = 25 };
  gint16 pcm[N * FRAME];
  TdTune *tune;

  for (guint i = 0; i < G_N_ELEMENTS (pcm); i++)
    pcm[i] = (gint16) (((i / FRAME) % 2 ? -1 : 1) * (int) (200 + (i / FRAME) * 400 + (i % FRAME) * 2));
  tune = td_tune_new_from_pcm (pcm, G_N_ELEMENTS (pcm));
  g_assert_cmpuint (td_tune_n_frames (tune), ==, N);
  for (guint a = 0; a < N; a++) {
    for (guint b = a + 1; b < N; b++) {
      gsize la, lb;
      const guint8 *fa = td_tune_frame (tune, TD_CODEC_PCMU, a, &la);
      const guint8 *fb = td_tune_frame (tune, TD_CODEC_PCMU, b, &lb);
      g_assert_cmpuint (la, ==, FRAME);
      g_assert_true (memcmp (fa, fb, FRAME) != 0);
    }
  }
  return tune;
}

/* The first tune frame (in `codec`) this packet carries, or -1 (a forwarded
 * one, or a frame of no such tune). */
static int
tune_frame_of (TdTune *tune, TdCodec codec, const Rtp *r)
{
  for (guint i = 0; i < td_tune_n_frames (tune); i++) {
    gsize len;
    const guint8 *frame = td_tune_frame (tune, codec, i, &len);
    if (r->len == len && memcmp (r->payload, frame, len) == 0)
      return (int) i;
  }
  return -1;
}

/* What the receiving phone last saw of the port's stream. */
typedef struct {
  guint16 seq;
  guint32 ts, ssrc;
  gint64 at_us;
} Last;

static void
last_set (Last *l, const Rtp *r)
{
  *l = (Last) { r->seq, r->ts, r->ssrc, r->at_us };
}

/* `r` continues the stream within one source: seq + 1, timestamp + `step`,
 * same SSRC, no marker. */
static void
expect_continues (Last *l, const Rtp *r, guint32 step)
{
  g_assert_cmpuint (r->seq, ==, (guint16) (l->seq + 1));
  g_assert_cmpuint (r->ts, ==, l->ts + step);
  g_assert_cmphex (r->ssrc, ==, l->ssrc);
  g_assert_false (r->marker);
  last_set (l, r);
}

/* `r` is the first packet of a new source: seq + 1, marker, and a
 * timestamp advanced by the time elapsed since the previous packet x `rate`,
 * within one 20 ms frame. The SSRC is the caller's to check. */
static void
expect_switch (Last *l, const Rtp *r, guint rate)
{
  gint64 want = (r->at_us - l->at_us) * rate / G_USEC_PER_SEC;
  gint64 got = (guint32) (r->ts - l->ts);

  g_assert_cmpuint (r->seq, ==, (guint16) (l->seq + 1));
  g_assert_true (r->marker);
  g_assert_cmpint (got, >=, want - rate / 50);
  g_assert_cmpint (got, <=, want + rate / 50);
  last_set (l, r);
}

/* Sends `n` packets of one stream from B through the call to A and checks
 * each one continues `l` (the first one as given by `first_is_switch`). */
static void
forward_stream (Call *c, Last *l, guint32 ssrc, guint16 seq, guint32 ts, guint n,
                gboolean first_is_switch)
{
  guint16 b = td_relay_port_number (c->b);

  for (guint i = 0; i < n; i++) {
    Rtp r;
    phone_send_rtp (&c->b_rtp, b, ssrc, (guint16) (seq + i), ts + i * FRAME, 0xf0 + i);
    recv_rtp (&c->a_rtp, &r);
    g_assert_cmphex (payload_tag (&r), ==, 0xf0 + i);
    if (i == 0 && first_is_switch)
      expect_switch (l, &r, 8000);
    else
      expect_continues (l, &r, FRAME);
  }
}

/* Forwarded packets of the port's first stream leave untouched: its SSRC,
 * its sequence (+1 each, across the 16-bit wrap), its gaps, no marker. */
static void
test_context_forward (void)
{
  Call c;
  Rtp r;
  Last l;
  guint16 b;

  call_setup (&c, P (280), P (299));
  b = td_relay_port_number (c.b);
  phone_send_rtp (&c.b_rtp, b, 0x1111, 65530, 1000, 0xf0);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmphex (r.ssrc, ==, 0x1111);
  g_assert_cmpuint (r.seq, ==, 65530);
  g_assert_cmpuint (r.ts, ==, 1000);
  g_assert_false (r.marker);
  last_set (&l, &r);
  forward_stream (&c, &l, 0x1111, 65531, 1000 + FRAME, 10, FALSE);
  /* a packet lost upstream stays a gap of the same size */
  phone_send_rtp (&c.b_rtp, b, 0x1111, (guint16) (65531 + 11), 1000 + 12 * FRAME, 0xf1);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpuint (r.seq, ==, (guint16) (l.seq + 2));
  g_assert_cmpuint (r.ts, ==, l.ts + 2 * FRAME);
  g_assert_false (r.marker);
  call_teardown (&c);
}

/* ~50 packets/s of the tune's frames, in order and looping, pt as asked,
 * seq + 1 and ts + 160 each, one SSRC; the same tune again in PCMA is a new
 * source. */
static void
test_tune_plays (void)
{
  g_autoptr (TdTune) tune = test_tune ();
  Call c;
  Rtp r;
  Last l;
  TdRelayStats st;
  gint64 first_us;

  call_setup (&c, P (300), P (319));
  g_assert_false (td_relay_port_is_playing (c.a));
  td_relay_port_play (c.a, tune, TD_CODEC_PCMU, 0);
  g_assert_true (td_relay_port_is_playing (c.a));
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, 0);
  g_assert_cmpuint (r.pt, ==, 0);
  g_assert_false (r.marker);   /* the port's first stream: not a switch */
  last_set (&l, &r);
  first_us = r.at_us;
  for (guint i = 1; i <= 50; i++) {
    recv_rtp (&c.a_rtp, &r);
    g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, i % 25);
    g_assert_cmpuint (r.pt, ==, 0);
    expect_continues (&l, &r, FRAME);
  }
  /* 50 intervals of 20 ms on an absolute schedule */
  g_assert_cmpint (r.at_us - first_us, >=, 900 * 1000);
  g_assert_cmpint (r.at_us - first_us, <=, 1100 * 1000);
  td_relay_port_stop (c.a);
  g_assert_false (td_relay_port_is_playing (c.a));
  td_relay_sync (c.relay);
  while (phone_recv_rtp (&c.a_rtp, 60, &r))   /* frames sent before the stop */
    expect_continues (&l, &r, FRAME);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.tx_generated, >=, 51);
  g_assert_cmpuint (st.tx_packets, ==, st.tx_generated);
  g_assert_cmpuint (st.tx_errors, ==, 0);

  td_relay_port_play (c.a, tune, TD_CODEC_PCMA, 8);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMA, &r), ==, 0);
  g_assert_cmpuint (r.pt, ==, 8);
  expect_switch (&l, &r, 8000);
  g_assert_cmphex (r.ssrc, ==, l.ssrc);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMA, &r), ==, 1);
  expect_continues (&l, &r, FRAME);
  call_teardown (&c);
}

/* Forwarded -> tune -> forwarded: one SSRC, seq + 1 throughout, a marker and
 * a real-time timestamp jump at each switch and nowhere else. */
static void
test_switch_forward_tune_forward (void)
{
  g_autoptr (TdTune) tune = test_tune ();
  Call c;
  Rtp r;
  Last l;
  guint16 b;

  call_setup (&c, P (320), P (339));
  b = td_relay_port_number (c.b);
  phone_send_rtp (&c.b_rtp, b, 0xb0b, 500, 70000, 0xf0);
  recv_rtp (&c.a_rtp, &r);
  last_set (&l, &r);
  forward_stream (&c, &l, 0xb0b, 501, 70000 + FRAME, 9, FALSE);
  g_usleep (30 * 1000);

  td_relay_port_play (c.a, tune, TD_CODEC_PCMU, 0);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, 0);
  expect_switch (&l, &r, 8000);
  g_assert_cmphex (r.ssrc, ==, 0xb0b);
  for (guint i = 1; i < 10; i++) {
    recv_rtp (&c.a_rtp, &r);
    g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, i);
    expect_continues (&l, &r, FRAME);
  }

  td_relay_port_stop (c.a);
  td_relay_sync (c.relay);
  /* B's stream goes on in its own numbering, which has nothing to do with
   * what A received meanwhile */
  phone_send_rtp (&c.b_rtp, b, 0xb0b, 530, 70000 + 30 * FRAME, 0xe0);
  for (;;) {
    recv_rtp (&c.a_rtp, &r);
    if (tune_frame_of (tune, TD_CODEC_PCMU, &r) < 0)
      break;
    expect_continues (&l, &r, FRAME);   /* a frame sent before the stop */
  }
  g_assert_cmphex (payload_tag (&r), ==, 0xe0);
  expect_switch (&l, &r, 8000);
  g_assert_cmphex (r.ssrc, ==, 0xb0b);
  forward_stream (&c, &l, 0xb0b, 531, 70000 + 31 * FRAME, 5, FALSE);
  call_teardown (&c);
}

/* A new SSRC on the forwarded stream (the far end re-bridged after a
 * transfer) is a switch; so is a new peer with the very same SSRC. RTCP
 * passes unchanged. The clock rate scales the timestamp jump. */
static void
test_transfer_ssrc (void)
{
  Call c;
  Rtp r;
  Last l;
  guint16 b;
  TdRelayPort *x;
  Phone other = phone_new ();
  const guint8 sr[28] = { 0x80, 200, 0, 6, 0, 0, 0x0c, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8,
                          9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
  guint8 got[64];
  struct pollfd pfd;

  call_setup (&c, P (340), P (359));
  b = td_relay_port_number (c.b);
  phone_send_rtp (&c.b_rtp, b, 0xaaaa, 100, 5000, 0xf0);
  recv_rtp (&c.a_rtp, &r);
  last_set (&l, &r);
  forward_stream (&c, &l, 0xaaaa, 101, 5000 + FRAME, 4, FALSE);
  g_usleep (40 * 1000);
  forward_stream (&c, &l, 0xcccc, 7000, 999999, 5, TRUE);   /* rewritten to 0xaaaa */
  g_assert_cmphex (l.ssrc, ==, 0xaaaa);

  /* transfer to a new peer x whose stream keeps 0xcccc; wideband clock */
  x = port_alloc (c.relay);
  td_relay_port_set_remote (x, "127.0.0.1", other.port, other.port);   /* RTCP from there too */
  td_relay_port_set_clock_rate (c.a, 16000);
  td_relay_connect (c.a, x);
  td_relay_sync (c.relay);
  g_usleep (30 * 1000);
  phone_send_rtp (&other, td_relay_port_number (x), 0xcccc, 7005, 999999 + 5 * FRAME, 0xd0);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmphex (payload_tag (&r), ==, 0xd0);
  expect_switch (&l, &r, 16000);
  g_assert_cmphex (r.ssrc, ==, 0xaaaa);

  /* RTCP: byte for byte */
  phone_send_raw (&other, td_relay_port_number (x) + 1, sr, sizeof sr);
  pfd = (struct pollfd) { .fd = c.a_rtcp.fd, .events = POLLIN };
  g_assert_cmpint (poll (&pfd, 1, WAIT_MS), ==, 1);
  g_assert_cmpint (recv (c.a_rtcp.fd, got, sizeof got, 0), ==, sizeof sr);
  g_assert_cmpmem (got, sizeof sr, sr, sizeof sr);

  td_relay_port_free (x);
  call_teardown (&c);
  phone_close (&other);
}

/* The SDP mapped PCMU to payload type 96 and the call's codec runs a 16 kHz
 * clock (issue 8 item 11): the tune goes out as PT 96, the switch to it
 * advances the timestamp at the tune's 8 kHz, the switch back to the
 * forwarded stream at the stream's 16 kHz. */
static void
test_tune_dynamic_pt (void)
{
  g_autoptr (TdTune) tune = test_tune ();
  Call c;
  Rtp r;
  Last l;
  guint16 b;

  call_setup (&c, P (560), P (579));
  b = td_relay_port_number (c.b);
  td_relay_port_set_clock_rate (c.a, 16000);
  phone_send_rtp (&c.b_rtp, b, 0x9696, 10, 32000, 0xf0);
  recv_rtp (&c.a_rtp, &r);
  last_set (&l, &r);
  g_usleep (60 * 1000);

  td_relay_port_play (c.a, tune, TD_CODEC_PCMU, 96);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpuint (r.pt, ==, 96);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, 0);
  expect_switch (&l, &r, 8000);
  for (guint i = 1; i < 5; i++) {
    recv_rtp (&c.a_rtp, &r);
    g_assert_cmpuint (r.pt, ==, 96);
    g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, i);
    expect_continues (&l, &r, FRAME);
  }
  td_relay_port_stop (c.a);
  td_relay_sync (c.relay);
  g_usleep (60 * 1000);
  phone_send_rtp (&c.b_rtp, b, 0x9696, 11, 32000 + 320, 0xe0);
  for (;;) {
    recv_rtp (&c.a_rtp, &r);
    if (tune_frame_of (tune, TD_CODEC_PCMU, &r) < 0)
      break;
    expect_continues (&l, &r, FRAME);   /* a frame sent before the stop */
  }
  g_assert_cmphex (payload_tag (&r), ==, 0xe0);
  expect_switch (&l, &r, 16000);
  call_teardown (&c);
}

/* With the option, every switch picks a fresh SSRC (still marker, seq + 1);
 * the first stream keeps its own. */
static void
test_new_ssrc_on_switch (void)
{
  g_autoptr (TdTune) tune = test_tune ();
  Call c;
  Rtp r;
  Last l;
  guint16 b;
  guint32 tune_ssrc;

  call_setup (&c, P (360), P (379));
  b = td_relay_port_number (c.b);
  td_relay_port_set_new_ssrc_on_switch (c.a, TRUE);
  phone_send_rtp (&c.b_rtp, b, 0x5050, 1, 160, 0xf0);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmphex (r.ssrc, ==, 0x5050);
  last_set (&l, &r);

  td_relay_port_play (c.a, tune, TD_CODEC_PCMU, 0);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmphex (r.ssrc, !=, 0x5050);
  tune_ssrc = r.ssrc;
  expect_switch (&l, &r, 8000);
  recv_rtp (&c.a_rtp, &r);
  expect_continues (&l, &r, FRAME);

  td_relay_port_stop (c.a);
  td_relay_sync (c.relay);
  phone_send_rtp (&c.b_rtp, b, 0x5050, 2, 320, 0xe0);
  for (;;) {
    recv_rtp (&c.a_rtp, &r);
    if (tune_frame_of (tune, TD_CODEC_PCMU, &r) < 0)
      break;
    expect_continues (&l, &r, FRAME);
  }
  g_assert_cmphex (r.ssrc, !=, tune_ssrc);
  expect_switch (&l, &r, 8000);
  call_teardown (&c);
}

/* While a plays, what b receives for it is counted and dropped; a's own
 * packets still reach B. */
static void
test_drop_while_playing (void)
{
  g_autoptr (TdTune) tune = test_tune ();
  Call c;
  Rtp r;
  TdRelayStats st;
  guint16 a, b;
  gint64 end;
  guint n = 0;

  call_setup (&c, P (380), P (399));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  td_relay_port_play (c.a, tune, TD_CODEC_PCMA, 8);
  td_relay_sync (c.relay);
  for (guint i = 0; i < 5; i++)
    phone_send_rtp (&c.b_rtp, b, 0x77, (guint16) i, i * FRAME, 0xf0 + i);
  phone_send (&c.a_rtp, a, 0xa1);
  expect_packet (&c.b_rtp, 0xa1, b);
  wait_rx (c.b, 5);
  end = g_get_monotonic_time () + 150 * 1000;
  while (g_get_monotonic_time () < end && phone_recv_rtp (&c.a_rtp, 50, &r)) {
    g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMA, &r), >=, 0);
    n++;
  }
  g_assert_cmpuint (n, >=, 3);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.tx_packets, ==, st.tx_generated);
  get_stats (c.b, &st);
  g_assert_cmpuint (st.rx_packets, ==, 5);
  call_teardown (&c);
}

/* Nowhere to send (no SDP address, 0.0.0.0): nothing goes out, while the
 * tune keeps time; once the port latches, the tune reaches the phone. */
static void
test_play_unlatched (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (400), P (419));
  g_autoptr (TdTune) tune = test_tune ();
  TdRelayPort *p, *q;
  Phone phone = phone_new ();
  TdRelayStats st;
  Rtp r;

  /* p has no SDP address and q announces none: the tune waits for a latch
   * (whom a port latches onto is the latching tests' business) */
  td_relay_set_latching (relay, TD_RELAY_LATCH_FIRST_PACKET, 0, 0);
  p = port_alloc (relay);
  q = port_alloc (relay);
  td_relay_port_set_remote (q, "0.0.0.0", 4000, 0);
  td_relay_port_play (p, tune, TD_CODEC_PCMU, 0);
  td_relay_port_play (q, tune, TD_CODEC_PCMU, 0);
  g_usleep (120 * 1000);
  get_stats (p, &st);
  g_assert_cmpuint (st.tx_packets + st.tx_generated + st.tx_errors, ==, 0);
  get_stats (q, &st);
  g_assert_cmpuint (st.tx_packets + st.tx_generated + st.tx_errors, ==, 0);
  g_assert_true (td_relay_port_is_playing (p));

  phone_send (&phone, td_relay_port_number (p), 1);   /* latches */
  recv_rtp (&phone, &r);
  g_assert_false (r.marker);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), >=, 4);   /* ~6 frames went by */
  td_relay_port_free (p);
  td_relay_port_free (q);
  phone_close (&phone);
}

/* Freeing a playing port (or the relay under one) drops the tune's
 * reference: the test lets go of its own at once, ASan finds any leak. */
static void
test_free_while_playing (void)
{
  TdRelay *relay = relay_new (P (420), P (439));
  TdTune *tune = test_tune ();
  TdRelayPort *p = port_alloc (relay), *q = port_alloc (relay), *s = port_alloc (relay);
  Phone phone = phone_new ();
  Rtp r;

  td_relay_port_set_remote (p, "127.0.0.1", phone.port, 0);
  td_relay_port_set_remote (q, "127.0.0.1", phone.port, 0);
  td_relay_port_play (p, tune, TD_CODEC_PCMU, 0);
  td_relay_port_play (q, tune, TD_CODEC_PCMU, 0);
  td_relay_port_play (s, tune, TD_CODEC_PCMU, 0);
  td_relay_port_play (s, tune, TD_CODEC_PCMA, 8);   /* replaces: the first ref goes */
  td_tune_unref (tune);
  recv_rtp (&phone, &r);
  td_relay_port_free (p);     /* while playing */
  td_relay_port_stop (s);
  td_relay_port_stop (s);     /* not playing: nothing */
  g_assert_false (td_relay_port_is_playing (s));
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 2);
  td_relay_port_free (s);
  td_relay_free (relay);      /* q still playing */
  phone_close (&phone);
}

/* A playing port that moves to another media thread (connected to a port
 * there) goes on with the same stream: no marker, seq + 1, ts + 160. */
static void
test_play_migrate (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (440), P (459));
  g_autoptr (TdTune) tune = test_tune ();
  TdRelayPort *p0 = port_alloc (relay), *p1 = port_alloc (relay);
  TdRelayPort *p2 = port_alloc (relay), *p3 = port_alloc (relay);
  Phone a = phone_new (), c = phone_new ();
  Rtp r;
  Last l;
  int frame;

  td_relay_port_set_remote (p1, "127.0.0.1", a.port, 0);
  td_relay_port_set_remote (p2, "127.0.0.1", c.port, 0);
  td_relay_port_play (p2, tune, TD_CODEC_PCMU, 0);
  recv_rtp (&c, &r);
  last_set (&l, &r);
  frame = tune_frame_of (tune, TD_CODEC_PCMU, &r);
  td_relay_connect (p1, p2);   /* with two threads p2 moves to p1's */
  td_relay_sync (relay);
  phone_send (&a, td_relay_port_number (p1), 1);   /* for p2, which plays: dropped */
  for (guint i = 1; i <= 5; i++) {
    recv_rtp (&c, &r);
    g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, (frame + (int) i) % 25);
    expect_continues (&l, &r, FRAME);
  }
  wait_rx (p1, 1);
  td_relay_port_stop (p2);
  td_relay_port_free (p0);
  td_relay_port_free (p1);
  td_relay_port_free (p2);
  td_relay_port_free (p3);
  phone_close (&a);
  phone_close (&c);
}

/* ---- where SDP meets the relay (TdLeg) ---- */

/* An endpoint's SDP: audio to `port` on 127.0.0.1 with `formats` and the
 * extra lines, then the extra streams. */
static TdSdp *
leg_sdp (guint16 port, const char *formats, const char *audio_lines, const char *more)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_strdup_printf ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
                                           "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                                           "m=audio %u RTP/AVP %s\r\n%s%s",
                                           port, formats, audio_lines, more);
  TdSdp *sdp = td_sdp_parse (text, -1, &error);

  g_assert_no_error (error);
  return sdp;
}

/* A call's two legs as the core sets them up: ports for the offer, each
 * endpoint's SDP, bridged. */
typedef struct {
  TdRelay *relay;
  TdLeg *a, *b;
  Phone pa, pb;
} LegCall;

static void
leg_call_setup (LegCall *c, guint16 min, guint16 max, const char *a_formats,
                const char *a_lines, const char *b_formats, const char *b_lines, const char *more)
{
  g_autoptr (GError) error = NULL;
  TdSdp *offer, *answer;

  c->relay = relay_new (min, max);
  c->a = td_leg_new (NULL, NULL, TD_LEG_A, NULL);
  c->b = td_leg_new (NULL, NULL, TD_LEG_B, NULL);
  c->pa = phone_new ();
  c->pb = phone_new ();
  offer = leg_sdp (c->pa.port, a_formats, a_lines, more);
  answer = leg_sdp (c->pb.port, b_formats, b_lines, more);
  g_assert_true (td_leg_ensure_ports (c->a, c->relay, offer, &error));
  g_assert_true (td_leg_ensure_ports (c->b, c->relay, offer, &error));
  g_assert_no_error (error);
  td_leg_set_remote_sdp (c->a, offer);
  td_leg_set_remote_sdp (c->b, answer);
  td_leg_connect_media (c->a, c->b);
  td_relay_sync (c->relay);
}

static void
leg_call_teardown (LegCall *c)
{
  td_leg_unref (c->a);
  td_leg_unref (c->b);
  td_relay_free (c->relay);
  phone_close (&c->pa);
  phone_close (&c->pb);
}

static guint16
leg_port (TdLeg *leg, guint i)
{
  g_assert_cmpuint (i, <, leg->ports->len);
  g_assert_nonnull (g_ptr_array_index (leg->ports, i));
  return td_relay_port_number (g_ptr_array_index (leg->ports, i));
}

/* A stream rejected in the offer (port 0) costs no ports (issue 8 item 6);
 * the audio still flows. */
static void
test_leg_rejected_stream (void)
{
  LegCall c;

  leg_call_setup (&c, P (620), P (639), "0", "", "0", "",
                  "m=video 0 RTP/AVP 96\r\nm=application 0 UDP/BFCP *\r\n");
  g_assert_cmpuint (td_relay_port_count (c.relay), ==, 2);
  g_assert_cmpuint (c.a->ports->len, ==, 3);
  g_assert_null (g_ptr_array_index (c.a->ports, 1));
  g_assert_null (g_ptr_array_index (c.b->ports, 2));
  phone_send (&c.pa, leg_port (c.a, 0), 1);
  expect_packet (&c.pb, 1, leg_port (c.b, 0));
  leg_call_teardown (&c);
}

/* rtcp-mux in both SDPs: no RTCP sockets on either leg; in one only: both
 * stay. */
static void
test_leg_rtcp_mux (void)
{
  LegCall c;

  leg_call_setup (&c, P (640), P (659), "0", "a=rtcp-mux\r\n", "0", "a=rtcp-mux\r\n", "");
  g_assert_true (port_free_to_bind (leg_port (c.a, 0) + 1));
  g_assert_true (port_free_to_bind (leg_port (c.b, 0) + 1));
  leg_call_teardown (&c);
  leg_call_setup (&c, P (660), P (679), "0", "a=rtcp-mux\r\n", "0", "", "");
  g_assert_false (port_free_to_bind (leg_port (c.a, 0) + 1));
  g_assert_false (port_free_to_bind (leg_port (c.b, 0) + 1));
  leg_call_teardown (&c);
}

/* The clock of what leaves a port is its endpoint's codec, from its rtpmap
 * (issue 8 item 11): B takes L16 at 16 kHz first, so after a tune the
 * forwarded stream continues at 16 kHz, not 8. */
static void
test_leg_clock_rate (void)
{
  g_autoptr (TdTune) tune = test_tune ();
  LegCall c;
  Rtp r;
  Last l;
  guint16 a;

  leg_call_setup (&c, P (680), P (699), "97 0", "a=rtpmap:97 L16/16000\r\n",
                  "97 0", "a=rtpmap:97 L16/16000\r\n", "");
  a = leg_port (c.a, 0);
  phone_send_rtp (&c.pa, a, 0x1616, 1, 1000, 0xf0);
  recv_rtp (&c.pb, &r);
  last_set (&l, &r);
  td_relay_port_play (g_ptr_array_index (c.b->ports, 0), tune, TD_CODEC_PCMU, 0);
  recv_rtp (&c.pb, &r);
  expect_switch (&l, &r, 8000);
  td_relay_port_stop (g_ptr_array_index (c.b->ports, 0));
  td_relay_sync (c.relay);
  g_usleep (60 * 1000);
  phone_send_rtp (&c.pa, a, 0x1616, 2, 1000 + 320, 0xe0);
  for (;;) {
    recv_rtp (&c.pb, &r);
    if (tune_frame_of (tune, TD_CODEC_PCMU, &r) < 0)
      break;
    expect_continues (&l, &r, FRAME);
  }
  expect_switch (&l, &r, 16000);
  leg_call_teardown (&c);
}

/* On `leg`'s port (toward `to`, fed from `from` through the other leg's
 * port `in`): a forwarded stream, a tune, the stream again, whose first
 * packet steps the timestamp by the time since the tune's last frame at
 * `rate`. */
static void
expect_tune_switch_at (LegCall *c, TdLeg *leg, Phone *to, Phone *from, guint16 in, guint rate)
{
  g_autoptr (TdTune) tune = test_tune ();
  TdRelayPort *port = g_ptr_array_index (leg->ports, 0);
  Rtp r;
  Last l;

  phone_send_rtp (from, in, 0x5050, 1, 1000, 0xf0);
  recv_rtp (to, &r);
  last_set (&l, &r);
  td_relay_port_play (port, tune, TD_CODEC_PCMU, 0);
  recv_rtp (to, &r);
  expect_switch (&l, &r, 8000);
  td_relay_port_stop (port);
  td_relay_sync (c->relay);
  g_usleep (60 * 1000);
  phone_send_rtp (from, in, 0x5050, 2, 1000 + 160, 0xe0);
  for (;;) {
    recv_rtp (to, &r);
    if (tune_frame_of (tune, TD_CODEC_PCMU, &r) < 0)
      break;
    expect_continues (&l, &r, FRAME);
  }
  expect_switch (&l, &r, rate);
}

/* Both ports of a stream run at the codec the answer chose, not at the one
 * the offerer put first: A offers opus then PCMU, B answers PCMU, so what
 * leaves A's port is 8 kHz (and so is B's); the same with the roles the
 * other way round (B's re-offer, A's answer). */
static void
test_leg_clock_rate_answer (void)
{
  LegCall c;

  leg_call_setup (&c, P (900), P (919), "111 0", "a=rtpmap:111 opus/48000/2\r\n", "0", "", "");
  expect_tune_switch_at (&c, c.a, &c.pa, &c.pb, leg_port (c.b, 0), 8000);
  leg_call_teardown (&c);
  leg_call_setup (&c, P (920), P (939), "0", "", "111 0", "a=rtpmap:111 opus/48000/2\r\n", "");
  expect_tune_switch_at (&c, c.b, &c.pb, &c.pa, leg_port (c.a, 0), 8000);
  leg_call_teardown (&c);
}

/* ---- migration between media threads (issue 8 item 4) ----
 * These run with 2 and 3 threads. Allocations go in pairs to the least
 * loaded thread, so on a fresh relay ports 2i and 2i+1 live on thread i.
 * td_relay_port_test_stall() blocks a thread on a pipe: while it blocks,
 * every command for a port migrating away from it is certainly held by the
 * thread the port goes to, so the hold-and-replay path is what is tested. */

#define MIGRATE_WAIT_MS 2000

/* 2 ports per thread, in thread order. */
static void
alloc_per_thread (TdRelay *relay, TdRelayPort **ports)
{
  for (guint i = 0; i < 2 * n_threads; i++)
    ports[i] = port_alloc (relay);
}

typedef struct {
  int fds[2];
} Stall;

/* Blocks `port`'s thread once it gets there, until stall_release(). */
static void
stall_start (Stall *s, TdRelayPort *port)
{
  g_assert_cmpint (pipe2 (s->fds, O_CLOEXEC), ==, 0);
  td_relay_port_test_stall (port, s->fds[0]);
}

static void
stall_release (Stall *s)
{
  g_assert_cmpint (write (s->fds[1], "x", 1), ==, 1);
}

/* After a td_relay_sync(): the thread has passed the stall. */
static void
stall_close (Stall *s)
{
  close (s->fds[0]);
  close (s->fds[1]);
}

/* Fails the test if td_relay_connect() waits for a media thread: a watchdog
 * releases the stall after MIGRATE_WAIT_MS if the call has not returned by
 * then (the code before the fix waited until the old thread had let go, so
 * it came back only thanks to the watchdog, and the test fails cleanly
 * instead of hanging). pthread, not GMutex: ThreadSanitizer cannot see
 * GLib's futex (see td-relay-worker.c). */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  gboolean returned, fired;
  Stall *stall;
} Watchdog;

static gpointer
watchdog_thread (gpointer data)
{
  Watchdog *wd = data;
  struct timespec deadline;

  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += MIGRATE_WAIT_MS / 1000;
  pthread_mutex_lock (&wd->lock);
  while (!wd->returned && !wd->fired)
    if (pthread_cond_timedwait (&wd->cond, &wd->lock, &deadline) == ETIMEDOUT)
      wd->fired = TRUE;
  pthread_mutex_unlock (&wd->lock);
  if (wd->fired)
    stall_release (wd->stall);
  return NULL;
}

static void
connect_without_waiting (TdRelayPort *a, TdRelayPort *b, Stall *stall)
{
  Watchdog wd = { .stall = stall };
  GThread *thread;

  pthread_mutex_init (&wd.lock, NULL);
  pthread_cond_init (&wd.cond, NULL);
  thread = g_thread_new ("watchdog", watchdog_thread, &wd);
  td_relay_connect (a, b);
  pthread_mutex_lock (&wd.lock);
  wd.returned = TRUE;
  pthread_cond_signal (&wd.cond);
  pthread_mutex_unlock (&wd.lock);
  g_thread_join (thread);
  pthread_mutex_destroy (&wd.lock);
  pthread_cond_destroy (&wd.cond);
  g_assert_false (wd.fired);   /* TRUE: td_relay_connect() waited for the stalled thread */
}

/* Until the relay has applied the commands just queued, a packet may still
 * meet the old state: send `tag` again every 10 ms (bounded) until one gets
 * through, then drop the copies still under way. */
static void
send_until_through (Phone *from, guint16 port, Phone *to, guint32 tag)
{
  guint32 got;

  for (guint i = 0; i < MIGRATE_WAIT_MS / 10; i++) {
    phone_send (from, port, tag);
    if (phone_recv (to, 10, &got, NULL)) {
      g_assert_cmphex (got, ==, tag);
      while (phone_recv (to, 20, &got, NULL))
        g_assert_cmphex (got, ==, tag);
      return;
    }
  }
  g_assert_not_reached ();
}

/* `n` packets each way between two connected phones, in order. */
static void
expect_flow (Phone *pa, TdRelayPort *a, Phone *pb, TdRelayPort *b, guint32 base)
{
  guint16 na = td_relay_port_number (a), nb = td_relay_port_number (b);

  send_until_through (pa, na, pb, base);
  send_until_through (pb, nb, pa, base + 1);
  for (guint32 i = 0; i < 20; i++) {
    phone_send (pa, na, base + 100 + i);
    phone_send (pb, nb, base + 200 + i);
  }
  for (guint32 i = 0; i < 20; i++) {
    expect_packet (pb, base + 100 + i, nb);
    expect_packet (pa, base + 200 + i, na);
  }
}

/* Connected across threads, packets flow both ways with no td_relay_sync()
 * in between: thread 0's port moves to thread 1, then on to thread 2. */
static void
test_migrate_flows (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (700), P (719));
  TdRelayPort *ports[6];
  Phone phones[3];

  alloc_per_thread (relay, ports);
  for (guint i = 0; i < n_threads; i++) {
    phones[i] = phone_new ();
    td_relay_port_set_remote (ports[2 * i], "127.0.0.1", phones[i].port, 0);
  }
  for (guint i = 1; i < n_threads; i++) {
    td_relay_connect (ports[2 * i], ports[0]);   /* ports[0] moves to thread i */
    expect_flow (&phones[i], ports[2 * i], &phones[0], ports[0], i << 16);
  }
  for (guint i = 0; i < 2 * n_threads; i++)
    td_relay_port_free (ports[i]);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 0);
  for (guint i = 0; i < n_threads; i++)
    phone_close (&phones[i]);
}

/* Commands issued right after a migration, while the old thread still holds
 * the port, take effect once it arrives, in the order issued. */
static void
test_migrate_commands_in_order (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (720), P (739));
  g_autoptr (TdTune) tune = test_tune ();
  TdRelayPort *ports[6], *a, *b;
  Phone pa = phone_new (), pc = phone_new (), pd = phone_new ();
  Stall stall;
  Rtp r;

  alloc_per_thread (relay, ports);
  a = ports[0];   /* thread 0 */
  b = ports[2];   /* thread 1, moves to thread 0 */
  td_relay_port_set_remote (a, "127.0.0.1", pa.port, 0);
  td_relay_port_set_remote (b, "127.0.0.1", pc.port, 0);
  td_relay_sync (relay);

  stall_start (&stall, ports[3]);   /* b's old thread */
  connect_without_waiting (a, b, &stall);
  td_relay_port_set_forward (b, FALSE);
  td_relay_port_set_forward (b, TRUE);
  td_relay_port_set_forward (b, FALSE);          /* the last one counts */
  td_relay_port_set_remote (b, "127.0.0.1", pd.port, 0);   /* c, then d */
  td_relay_port_play (b, tune, TD_CODEC_PCMU, 0);
  g_assert_true (td_relay_port_is_playing (b));
  stall_release (&stall);

  /* the tune goes to d (the later remote), from b */
  recv_rtp (&pd, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), >=, 0);
  /* d latches on b; forwarding is off, so a hears nothing */
  phone_send (&pd, td_relay_port_number (b), 0xd1);
  wait_rx (b, 1);
  expect_nothing (&pa, 50);
  expect_nothing (&pc, 0);

  /* and after them, more commands with no sync: forwarding on again */
  td_relay_port_stop (b);
  td_relay_port_set_forward (b, TRUE);
  send_until_through (&pd, td_relay_port_number (b), &pa, 0xd2);
  expect_nothing (&pc, 0);

  td_relay_sync (relay);
  stall_close (&stall);
  for (guint i = 0; i < 2 * n_threads; i++)
    td_relay_port_free (ports[i]);
  phone_close (&pa);
  phone_close (&pc);
  phone_close (&pd);
}

/* A freed pair's sockets are parked for its next port: what the old call's
 * phone sent before the free (queued, never read) and after it never
 * reaches the next port, which latches onto its own phone. */
static void
test_parked_deaf (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (1560), P (1563));   /* 2 pairs */
  Phone old = phone_new (), fresh = phone_new (), other = phone_new ();
  TdRelayPort *p0, *p;
  guint16 n, n0;
  Stall stall;

  td_relay_set_latching (relay, TD_RELAY_LATCH_FIRST_PACKET, 0, 0);
  p0 = port_alloc (relay);
  n0 = td_relay_port_number (p0);
  /* p's thread (p0's: allocations go in twos) is held before p is adopted,
   * so nothing reads what `old` sends until p is freed and parked */
  stall_start (&stall, p0);
  p = port_alloc (relay);
  n = td_relay_port_number (p);
  phone_send (&old, n, 1);
  phone_send (&old, n + 1, 2);
  td_relay_port_free (p);
  stall_release (&stall);
  td_relay_sync (relay);
  stall_close (&stall);
  g_assert_cmpuint (td_relay_parked_count (relay), ==, 1);
  phone_send (&old, n, 3);   /* while parked */
  phone_send (&old, n + 1, 4);
  p = port_alloc (relay);   /* the other pair is p0's: this one, cooling, parked */
  g_assert_cmpuint (td_relay_port_number (p), ==, n);
  g_assert_cmpuint (td_relay_parked_count (relay), ==, 0);
  td_relay_connect (p0, p);
  /* p latches onto the first source it hears: `fresh`, unless a packet of
   * `old` was still waiting in its socket */
  phone_send (&fresh, n, 5);
  wait_rx (p, 1);
  phone_send (&other, n0, 6);
  expect_packet (&fresh, 6, n);
  expect_nothing (&old, 20);
  td_relay_port_free (p);
  td_relay_port_free (p0);
  phone_close (&old);
  phone_close (&fresh);
  phone_close (&other);
}

/* A relay on the wildcard address closes freed sockets: connecting one to
 * itself would narrow its bind to one address. */
static void
test_wildcard_closes (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdRelay) relay = td_relay_new_full ("0.0.0.0", P (1570), P (1571), n_threads, &error);
  TdRelayPort *p;
  guint16 n;

  g_assert_no_error (error);
  p = port_alloc (relay);
  n = td_relay_port_number (p);
  g_assert_false (port_free_to_bind (n));
  td_relay_port_free (p);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_parked_count (relay), ==, 0);
  g_assert_true (port_free_to_bind (n));
  g_assert_true (port_free_to_bind (n + 1));
}

/* Parked sockets give way when the process runs out of descriptors: with
 * room for 20 more ports beside 10 parked pairs, 30 ports can be allocated
 * (20 without eviction). In a child process: it lowers its own open-files
 * limit. */
static void
test_parked_evicted (void)
{
  g_autoptr (TdRelay) relay = NULL;
  g_autoptr (GError) error = NULL;
  TdRelayPort *ports[64];
  struct rlimit rl;
  guint n = 0;

  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed ();
    return;
  }
  relay = relay_new (P (1400), P (1527));   /* 64 pairs */
  for (guint i = 0; i < 10; i++)
    ports[i] = port_alloc (relay);
  for (guint i = 0; i < 10; i++)
    td_relay_port_free (ports[i]);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_parked_count (relay), ==, 10);
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  rl.rlim_cur = count_fds () + 40;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  while (n < G_N_ELEMENTS (ports) && (ports[n] = td_relay_port_alloc (relay, &error)))
    n++;
  g_assert_error (error, TD_RELAY_ERROR, TD_RELAY_ERROR_SYSTEM);
  g_assert_cmpuint (n, ==, 30);
  g_assert_cmpuint (td_relay_parked_count (relay), ==, 0);
  for (guint i = 0; i < n; i++)
    td_relay_port_free (ports[i]);
}

/* A port freed (while playing) before it has reached its new thread is
 * closed there once it arrives: its sockets are closed, its pair released. */
static void
test_migrate_then_free (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (740), P (759));
  g_autoptr (TdTune) tune = test_tune ();
  TdRelayPort *ports[6];
  guint16 moved;
  Stall stall;

  alloc_per_thread (relay, ports);
  moved = td_relay_port_number (ports[2]);
  td_relay_port_play (ports[2], tune, TD_CODEC_PCMU, 0);
  stall_start (&stall, ports[3]);
  connect_without_waiting (ports[0], ports[2], &stall);
  td_relay_port_free (ports[2]);
  stall_release (&stall);
  td_relay_sync (relay);
  stall_close (&stall);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 2 * n_threads - 1);
  g_assert_cmpuint (td_relay_parked_count (relay), ==, 1);
  g_assert_false (port_free_to_bind (moved));   /* parked by the thread it reached */
  for (guint i = 0; i < 2 * n_threads; i++)
    if (i != 2)
      td_relay_port_free (ports[i]);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 0);
}

/* Two migrations in a row before the first old thread has let go: thread 0
 * -> 1 -> 2 with three threads, 0 -> 1 -> 0 with two. The port ends where
 * the last connect put it, connected to that peer only. */
static void
test_migrate_twice (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (760), P (779));
  TdRelayPort *ports[6], *p, *first, *second;
  Phone pp = phone_new (), p1 = phone_new (), p2 = phone_new ();
  Stall stall;

  alloc_per_thread (relay, ports);
  p = ports[0];                                  /* thread 0 */
  first = ports[2];                              /* thread 1 */
  second = ports[2 * (2 % n_threads) + 1];       /* thread 2, or 0 */
  td_relay_port_set_remote (p, "127.0.0.1", pp.port, 0);
  td_relay_port_set_remote (first, "127.0.0.1", p1.port, 0);
  td_relay_port_set_remote (second, "127.0.0.1", p2.port, 0);
  td_relay_sync (relay);

  stall_start (&stall, ports[1]);                /* p's thread */
  connect_without_waiting (first, p, &stall);
  connect_without_waiting (second, p, &stall);
  td_relay_port_set_forward (p, TRUE);           /* a command after both */
  stall_release (&stall);
  expect_flow (&pp, p, &p2, second, 0x20000);
  expect_nothing (&p1, 20);

  td_relay_sync (relay);
  stall_close (&stall);
  for (guint i = 0; i < 2 * n_threads; i++)
    td_relay_port_free (ports[i]);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 0);
  phone_close (&pp);
  phone_close (&p1);
  phone_close (&p2);
}

/* Ping-pong: one port moved between the threads 300 times, round-robin,
 * while its phone sends: every packet reaches the peer of the moment exactly
 * once and in order (while in transit the packets wait in the socket). The
 * phone keeps at most PINGPONG_WINDOW packets under way, so that neither
 * socket buffer can overflow however far the media threads fall behind on
 * this shared machine; that still leaves several migrations in flight. */
#define PINGPONG_ROUNDS 300
#define PINGPONG_BURST 3
#define PINGPONG_WINDOW 60

typedef struct {
  guint8 seen[PINGPONG_ROUNDS * PINGPONG_BURST];
  guint32 sent, got;
} PingPong;

static void
drain_counted (PingPong *pp, Phone *ph, guint32 *last, int ms)
{
  guint32 tag;

  while (phone_recv (ph, ms, &tag, NULL)) {
    g_assert_cmpuint (tag, <, pp->sent);
    g_assert_cmpuint (pp->seen[tag], ==, 0);   /* once */
    g_assert_true (*last == G_MAXUINT32 || tag > *last);   /* in order */
    pp->seen[tag] = 1;
    pp->got++;
    *last = tag;
  }
}

/* Bounded: until at most `outstanding` packets are under way. */
static void
pingpong_wait (PingPong *pp, Phone *sinks, guint32 *last, guint32 outstanding)
{
  gint64 deadline = g_get_monotonic_time () + MIGRATE_WAIT_MS * 1000;

  for (guint i = 0; i < n_threads; i++)
    drain_counted (pp, &sinks[i], &last[i], 0);
  while (pp->sent - pp->got > outstanding && g_get_monotonic_time () < deadline)
    for (guint i = 0; i < n_threads; i++)
      drain_counted (pp, &sinks[i], &last[i], 1);
}

static void
test_migrate_ping_pong (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (780), P (799));
  TdRelayPort *ports[6], *p;
  Phone source = phone_new (), sinks[3];
  guint32 last[3];
  g_autofree PingPong *pp = g_new0 (PingPong, 1);
  TdRelayStats st;

  alloc_per_thread (relay, ports);
  p = ports[1];   /* thread 0 */
  td_relay_port_set_remote (p, "127.0.0.1", source.port, 0);
  for (guint i = 0; i < n_threads; i++) {
    sinks[i] = phone_new ();
    last[i] = G_MAXUINT32;
    td_relay_port_set_remote (ports[2 * i], "127.0.0.1", sinks[i].port, 0);
  }
  td_relay_connect (ports[0], p);
  td_relay_sync (relay);   /* the first packet must not meet an unconnected port */

  for (guint round = 1; round <= PINGPONG_ROUNDS; round++) {
    td_relay_connect (ports[2 * (round % n_threads)], p);
    for (guint k = 0; k < PINGPONG_BURST; k++)
      phone_send (&source, td_relay_port_number (p), pp->sent++);
    pingpong_wait (pp, sinks, last, PINGPONG_WINDOW);
  }
  pingpong_wait (pp, sinks, last, 0);
  g_assert_cmpuint (pp->got, ==, pp->sent);
  td_relay_sync (relay);
  td_relay_port_get_stats (p, &st);
  g_assert_cmpuint (st.rx_packets, ==, pp->sent);
  g_assert_cmpuint (st.dropped_foreign + st.dropped_other, ==, 0);

  for (guint i = 0; i < 2 * n_threads; i++)
    td_relay_port_free (ports[i]);
  td_relay_sync (relay);
  g_assert_cmpuint (td_relay_port_count (relay), ==, 0);
  phone_close (&source);
  for (guint i = 0; i < n_threads; i++)
    phone_close (&sinks[i]);
}

/* td_relay_connect() returns while the port's old thread is blocked, and
 * the packets flow once that thread resumes. */
static void
test_migrate_does_not_wait (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (800), P (819));
  TdRelayPort *ports[6];
  Phone pa = phone_new (), pb = phone_new ();
  Stall stall;

  alloc_per_thread (relay, ports);
  td_relay_port_set_remote (ports[0], "127.0.0.1", pa.port, 0);
  td_relay_port_set_remote (ports[2], "127.0.0.1", pb.port, 0);
  stall_start (&stall, ports[3]);
  connect_without_waiting (ports[0], ports[2], &stall);
  stall_release (&stall);
  expect_flow (&pa, ports[0], &pb, ports[2], 0x30000);
  td_relay_sync (relay);
  stall_close (&stall);
  for (guint i = 0; i < 2 * n_threads; i++)
    td_relay_port_free (ports[i]);
  phone_close (&pa);
  phone_close (&pb);
}

/* td_relay_free() while a port is still on its way to another thread: the
 * new thread must not quit before the port has reached it, or the port's
 * sockets would stay open (and the old thread would queue onto a stopped
 * one). The stall is released once the destination thread has quit (its
 * own ports' sockets are closed), or after a second if it never does: the
 * fixed relay drains the migration first, so it always passes; one that
 * stops the threads at once leaks the port. */
typedef struct {
  Stall *stall;
  guint16 dest_port;   /* a port of the destination thread's own */
} FreeRace;

static gpointer
release_when_quit (gpointer data)
{
  FreeRace *fr = data;
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;

  while (!port_free_to_bind (fr->dest_port) && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  stall_release (fr->stall);
  return NULL;
}

static void
test_migrate_free_relay (void)
{
  TdRelay *relay = relay_new (P (820), P (839));
  TdRelayPort *ports[6];
  guint16 numbers[6];
  Stall stall;
  FreeRace fr = { &stall, 0 };
  GThread *releaser;

  alloc_per_thread (relay, ports);
  for (guint i = 0; i < 2 * n_threads; i++)
    numbers[i] = td_relay_port_number (ports[i]);   /* the ports die with the relay */
  fr.dest_port = td_relay_port_number (ports[0]);
  stall_start (&stall, ports[3]);
  connect_without_waiting (ports[0], ports[2], &stall);
  releaser = g_thread_new ("release", release_when_quit, &fr);
  td_relay_free (relay);
  g_thread_join (releaser);
  stall_close (&stall);
  for (guint i = 0; i < 2 * n_threads; i++) {
    g_assert_true (port_free_to_bind (numbers[i]));
    g_assert_true (port_free_to_bind (numbers[i] + 1));
  }
}

/* ---- events ---- */

/* Records a port's events, and whether each came where it must: on the
 * recorder's thread, from its main context, for its port. */
typedef struct {
  TdRelayPort *port;
  GThread *thread;
  GMainContext *context;
  guint count[5];               /* per TdRelayEventKind */
  TdRelayEvent last[5];
  gboolean misdelivered;
  gboolean free_on_first;       /* the func frees the port at FIRST_PACKET */
} Recorder;

static void
record_event (TdRelayPort *port, const TdRelayEvent *event, gpointer data)
{
  Recorder *r = data;

  if (g_thread_self () != r->thread || !g_main_context_is_owner (r->context) ||
      port != r->port)
    r->misdelivered = TRUE;
  g_assert_cmpint (event->kind, <=, TD_RELAY_EVENT_TUNE_ENDED);
  r->count[event->kind]++;
  r->last[event->kind] = *event;
  if (r->free_on_first && event->kind == TD_RELAY_EVENT_FIRST_PACKET) {
    td_relay_port_free (port);
    r->port = NULL;
  }
}

static void
recorder_watch_on (Recorder *r, TdRelayPort *port, GMainContext *context)
{
  *r = (Recorder) { .port = port, .thread = g_thread_self (),
                    .context = context ? context : g_main_context_default () };
  td_relay_port_set_event_func (port, record_event, r);
}

static void
recorder_watch (Recorder *r, TdRelayPort *port)
{
  recorder_watch_on (r, port, NULL);
}

static guint
recorder_total (const Recorder *r)
{
  return r->count[0] + r->count[1] + r->count[2] + r->count[3] + r->count[4];
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the recorder's context until it has `want` events of `kind`, for at
 * most `ms`. */
static gboolean
wait_event_ms (Recorder *r, TdRelayEventKind kind, guint want, guint ms)
{
  gboolean timed_out = FALSE;
  GSource *timer = g_timeout_source_new (ms);

  g_source_set_callback (timer, set_flag, &timed_out, NULL);
  g_source_attach (timer, r->context);
  while (r->count[kind] < want && !timed_out)
    g_main_context_iteration (r->context, TRUE);
  g_source_destroy (timer);
  g_source_unref (timer);
  return r->count[kind] >= want;
}

#define wait_event(r, kind, want) g_assert_true (wait_event_ms ((r), (kind), (want), WAIT_MS))

/* Delivers every event the media threads have seen so far. A worker posts
 * its events at the end of a loop iteration, after that iteration's
 * commands: the first sync returns once the iteration that handled what
 * came before it has reached its commands, the second once that iteration
 * (and so its posting) is over. */
static void
deliver_pending (TdRelay *relay, GMainContext *context)
{
  td_relay_sync (relay);
  td_relay_sync (relay);
  while (g_main_context_iteration (context, FALSE))
    ;
}

/* FIRST_PACKET and LATCHED: once each, on the main context, with the
 * source; RTCP is not the first RTP packet. */
static void
test_events_first_packet (void)
{
  Call c;
  Recorder ra, rb;
  guint16 a, b;
  gint64 before = g_get_monotonic_time ();

  call_setup (&c, P (940), P (943));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  recorder_watch (&ra, c.a);
  recorder_watch (&rb, c.b);
  phone_send (&c.a_rtcp, a + 1, 0xc1);
  expect_packet (&c.b_rtcp, 0xc1, b + 1);
  deliver_pending (c.relay, NULL);
  g_assert_cmpuint (recorder_total (&ra), ==, 0);
  for (guint32 i = 0; i < 3; i++) {
    phone_send (&c.a_rtp, a, i);
    expect_packet (&c.b_rtp, i, b);
  }
  wait_event (&ra, TD_RELAY_EVENT_FIRST_PACKET, 1);
  wait_event (&ra, TD_RELAY_EVENT_LATCHED, 1);
  phone_send (&c.a_rtp, a, 3);
  expect_packet (&c.b_rtp, 3, b);
  deliver_pending (c.relay, NULL);
  g_assert_false (ra.misdelivered);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_FIRST_PACKET], ==, 1);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_LATCHED], ==, 1);
  g_assert_cmpuint (recorder_total (&ra), ==, 2);
  g_assert_cmpstr (ra.last[TD_RELAY_EVENT_LATCHED].address, ==, "127.0.0.1");
  g_assert_cmpuint (ra.last[TD_RELAY_EVENT_LATCHED].address_port, ==, c.a_rtp.port);
  g_assert_cmpint (ra.last[TD_RELAY_EVENT_FIRST_PACKET].time_us, >=, before);
  g_assert_cmpint (ra.last[TD_RELAY_EVENT_FIRST_PACKET].time_us, <=, g_get_monotonic_time ());
  g_assert_cmpuint (recorder_total (&rb), ==, 0);   /* B never spoke */
  call_teardown (&c);
}

/* A NAT-learned source is LATCHED only once the learning window is over
 * (told with its first packet after it), and it is the NAT's address. */
static void
test_events_latched_nat (void)
{
  Call c;
  Recorder ra;
  Phone nat = phone_new ();
  guint16 a;
  gint64 first;

  c.relay = relay_new (P (944), P (947));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 100, 300);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_signalling_host (c.a, "127.0.0.1");
  td_relay_connect (c.a, c.b);
  recorder_watch (&ra, c.a);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  first = g_get_monotonic_time ();
  for (guint i = 0; i < 100 && ra.count[TD_RELAY_EVENT_LATCHED] == 0; i++) {
    phone_send (&nat, a, i);   /* 20 ms RTP from the signalling host, not the SDP port */
    g_usleep (20 * 1000);
    while (g_main_context_iteration (NULL, FALSE))
      ;
  }
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_LATCHED], ==, 1);
  g_assert_cmpint (ra.last[TD_RELAY_EVENT_LATCHED].time_us - first, >=, (100 + 300) * 1000);
  g_assert_cmpuint (ra.last[TD_RELAY_EVENT_LATCHED].address_port, ==, nat.port);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_FIRST_PACKET], ==, 1);
  g_assert_false (ra.misdelivered);
  call_teardown (&c);
  phone_close (&nat);
}

/* IDLE once after the timeout without packets, ACTIVE once when they come
 * back, IDLE again; a port that never heard anything is IDLE too. */
static void
test_events_idle_active (void)
{
  Call c;
  Recorder ra, rb;
  TdRelayStats st;
  gint64 late;
  guint16 a, b;

  call_setup (&c, P (948), P (951));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  td_relay_set_idle_timeout (c.relay, 300);
  recorder_watch (&ra, c.a);
  recorder_watch (&rb, c.b);
  td_relay_sync (c.relay);   /* watched before the first packet */
  phone_send (&c.a_rtp, a, 1);
  expect_packet (&c.b_rtp, 1, b);
  g_assert_false (td_relay_port_is_idle (c.a));
  wait_event (&ra, TD_RELAY_EVENT_IDLE, 1);
  g_assert_true (td_relay_port_is_idle (c.a));
  get_stats (c.a, &st);
  late = ra.last[TD_RELAY_EVENT_IDLE].time_us - st.last_rx_us;
  g_test_message ("IDLE %" G_GINT64_FORMAT " ms after the last packet", late / 1000);
  g_assert_cmpint (late, >=, 300 * 1000);
  g_assert_cmpint (late, <, (300 + TD_RELAY_IDLE_CHECK_MS + 500) * 1000);
  /* once: not again over three more checks */
  g_assert_false (wait_event_ms (&ra, TD_RELAY_EVENT_IDLE, 2, 3 * TD_RELAY_IDLE_CHECK_MS));
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_ACTIVE], ==, 0);
  wait_event (&rb, TD_RELAY_EVENT_IDLE, 1);   /* silent since allocation */
  g_assert_cmpuint (rb.count[TD_RELAY_EVENT_FIRST_PACKET], ==, 0);

  phone_send (&c.a_rtcp, a + 1, 2);   /* RTCP is activity too */
  expect_packet (&c.b_rtcp, 2, b + 1);
  wait_event (&ra, TD_RELAY_EVENT_ACTIVE, 1);
  g_assert_false (td_relay_port_is_idle (c.a));
  phone_send (&c.a_rtp, a, 3);
  expect_packet (&c.b_rtp, 3, b);
  deliver_pending (c.relay, NULL);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_ACTIVE], ==, 1);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_IDLE], ==, 1);
  wait_event (&ra, TD_RELAY_EVENT_IDLE, 2);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_FIRST_PACKET], ==, 1);
  g_assert_false (ra.misdelivered);
  g_assert_false (rb.misdelivered);
  call_teardown (&c);
}

/* No timeout, no IDLE; a timeout set later (a reload) applies to ports
 * silent for longer already. */
static void
test_events_idle_timeout_set (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (952), P (953));
  TdRelayPort *p = port_alloc (relay);
  Recorder r;

  recorder_watch (&r, p);
  td_relay_set_idle_timeout (relay, 100);
  td_relay_set_idle_timeout (relay, 0);
  g_assert_false (wait_event_ms (&r, TD_RELAY_EVENT_IDLE, 1, 3 * TD_RELAY_IDLE_CHECK_MS));
  td_relay_set_idle_timeout (relay, 200);
  wait_event (&r, TD_RELAY_EVENT_IDLE, 1);
  g_assert_cmpuint (recorder_total (&r), ==, 1);
  td_relay_port_free (p);
}

/* Nothing reaches a port's func once it is freed or the func is unset, not
 * even what was in flight; not a later port on the same pair either; and a
 * func that frees its port gets nothing more for it. */
/* Sends one packet to a watched port and waits until its media thread has
 * taken it: its FIRST_PACKET and LATCHED are then on their way. */
static TdRelayPort *
watched_port_heard (TdRelay *relay, Recorder *r, Phone *phone)
{
  TdRelayPort *p = port_alloc (relay);

  recorder_watch (r, p);
  td_relay_port_set_remote (p, "127.0.0.1", phone->port, 0);
  td_relay_sync (relay);
  phone_send (phone, td_relay_port_number (p), 1);
  wait_rx (p, 1);
  return p;
}

static void
test_events_after_free (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (954), P (955));   /* one pair */
  Phone phone = phone_new ();
  TdRelayPort *p, *q;
  Recorder rp, rq;

  /* freed: what was in flight is dropped, though its memory is gone */
  p = watched_port_heard (relay, &rp, &phone);
  td_relay_port_free (p);
  td_relay_sync (relay);
  deliver_pending (relay, NULL);
  g_assert_cmpuint (recorder_total (&rp), ==, 0);

  /* nor does it reach the next port on the same pair */
  p = watched_port_heard (relay, &rp, &phone);
  td_relay_port_free (p);
  td_relay_sync (relay);
  q = port_alloc (relay);   /* the same pair, the only one */
  recorder_watch (&rq, q);
  deliver_pending (relay, NULL);
  g_assert_cmpuint (recorder_total (&rp), ==, 0);
  g_assert_cmpuint (recorder_total (&rq), ==, 0);
  td_relay_port_free (q);
  td_relay_sync (relay);

  /* unset */
  q = watched_port_heard (relay, &rq, &phone);
  td_relay_port_set_event_func (q, NULL, NULL);
  deliver_pending (relay, NULL);
  g_assert_cmpuint (recorder_total (&rq), ==, 0);
  td_relay_port_free (q);
  td_relay_sync (relay);

  /* FIRST_PACKET and LATCHED come in one batch: freed at the first */
  q = port_alloc (relay);
  recorder_watch (&rq, q);
  rq.free_on_first = TRUE;
  td_relay_port_set_remote (q, "127.0.0.1", phone.port, 0);
  td_relay_sync (relay);
  phone_send (&phone, td_relay_port_number (q), 3);
  wait_event (&rq, TD_RELAY_EVENT_FIRST_PACKET, 1);
  deliver_pending (relay, NULL);
  g_assert_cmpuint (rq.count[TD_RELAY_EVENT_LATCHED], ==, 0);
  g_assert_cmpuint (recorder_total (&rq), ==, 1);
  phone_close (&phone);
}

/* Events go to the context that was thread-default when the relay was
 * made, not to the global default one. */
static void
test_events_context (void)
{
  GMainContext *ctx = g_main_context_new ();
  TdRelay *relay;
  TdRelayPort *p;
  Phone phone = phone_new ();
  Recorder r;

  g_main_context_push_thread_default (ctx);
  relay = relay_new (P (956), P (957));
  g_main_context_pop_thread_default (ctx);
  p = port_alloc (relay);
  recorder_watch_on (&r, p, ctx);
  td_relay_port_set_remote (p, "127.0.0.1", phone.port, 0);
  td_relay_sync (relay);
  phone_send (&phone, td_relay_port_number (p), 1);
  wait_rx (p, 1);
  deliver_pending (relay, g_main_context_default ());
  g_assert_cmpuint (recorder_total (&r), ==, 0);
  wait_event (&r, TD_RELAY_EVENT_LATCHED, 1);
  g_assert_false (r.misdelivered);
  td_relay_port_free (p);
  td_relay_free (relay);
  g_main_context_unref (ctx);
  phone_close (&phone);
}

/* A watched port that moves to another thread is watched there: its IDLE
 * comes from the new thread, whose idle check must now run for it. */
static void
test_migrate_events (void)
{
  g_autoptr (TdRelay) relay = relay_new (P (960), P (983));
  TdRelayPort *ports[6];
  Recorder r;

  alloc_per_thread (relay, ports);
  recorder_watch (&r, ports[2]);   /* the only watched port, on the second thread */
  td_relay_connect (ports[0], ports[2]);   /* to the first */
  td_relay_sync (relay);
  td_relay_set_idle_timeout (relay, 100);
  wait_event (&r, TD_RELAY_EVENT_IDLE, 1);
  g_assert_false (r.misdelivered);
  for (guint i = 0; i < 2 * n_threads; i++)
    td_relay_port_free (ports[i]);
}

/* ---- tunes in every codec, and ringback until the peer speaks ---- */

static gboolean
have_codec (TdTune *tune, TdCodec codec)
{
  if (td_tune_has_codec (tune, codec))
    return TRUE;
  g_test_skip ("this GStreamer has no encoder for the codec");
  return FALSE;
}

/* The tune in `codec`: pt as asked, each packet one frame of the tune,
 * whole (Opus's vary in length), in order and looping, timestamps stepping
 * the codec's ticks. The switch from a forwarded stream to the tune
 * advances the timestamp at the codec's clock, back to the stream at the
 * port's. */
static void
play_codec (TdCodec codec, guint8 pt, guint16 lo, guint16 hi)
{
  g_autoptr (TdTune) tune = test_tune ();
  guint ticks = td_codec_frame_ticks (codec);
  Call c;
  Rtp r;
  Last l;
  guint16 b;
  gsize min_len = G_MAXSIZE, max_len = 0;

  if (!have_codec (tune, codec))
    return;
  call_setup (&c, lo, hi);
  b = td_relay_port_number (c.b);
  phone_send_rtp (&c.b_rtp, b, 0x7222, 40, 4000, 0xf0);
  recv_rtp (&c.a_rtp, &r);
  last_set (&l, &r);
  g_usleep (60 * 1000);

  td_relay_port_play (c.a, tune, codec, pt);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, codec, &r), ==, 0);
  g_assert_cmpuint (r.pt, ==, pt);
  expect_switch (&l, &r, td_codec_clock_rate (codec));
  g_assert_cmphex (r.ssrc, ==, 0x7222);
  for (guint i = 1; i <= 30; i++) {
    gsize len;
    recv_rtp (&c.a_rtp, &r);
    g_assert_true (td_tune_frame (tune, codec, i, &len) != NULL);
    g_assert_cmpuint (r.len, ==, len);
    g_assert_cmpint (tune_frame_of (tune, codec, &r), ==, i % 25);
    g_assert_cmpuint (r.pt, ==, pt);
    expect_continues (&l, &r, ticks);
    min_len = MIN (min_len, r.len);
    max_len = MAX (max_len, r.len);
  }
  g_test_message ("%s: payloads of %" G_GSIZE_FORMAT "-%" G_GSIZE_FORMAT " bytes",
                  td_codec_name (codec), min_len, max_len);
  if (codec == TD_CODEC_OPUS)
    g_assert_cmpuint (min_len, <, max_len);   /* variable: each frame sent as it is */
  else
    g_assert_cmpuint (min_len, ==, TD_TUNE_FRAME_BYTES);

  td_relay_port_stop (c.a);
  td_relay_sync (c.relay);
  g_usleep (60 * 1000);
  phone_send_rtp (&c.b_rtp, b, 0x7222, 41, 4000 + FRAME, 0xe0);
  for (;;) {
    recv_rtp (&c.a_rtp, &r);
    if (tune_frame_of (tune, codec, &r) < 0)
      break;
    expect_continues (&l, &r, ticks);   /* a frame sent before the stop */
  }
  g_assert_cmphex (payload_tag (&r), ==, 0xe0);
  expect_switch (&l, &r, 8000);
  call_teardown (&c);
}

static void
test_tune_g722 (void)
{
  play_codec (TD_CODEC_G722, 9, P (204), P (207));
}

static void
test_tune_opus (void)
{
  play_codec (TD_CODEC_OPUS, 111, P (208), P (211));
}

/* An RTCP packet (a receiver report) that the phone sends on `port`. */
static void
phone_send_rtcp (Phone *p, guint16 port)
{
  const guint8 rr[8] = { 0x80, 201, 0, 1, 0, 0, 0x0c, 0x0c };

  phone_send_raw (p, port, rr, sizeof rr);
}

/* Receives A's packets until the first that is no frame of `tune`, checking
 * that the tune's go on in one stream; that one is returned in `r`. */
static void
skip_tune (Phone *phone, TdTune *tune, TdCodec codec, Last *l, Rtp *r)
{
  for (guint i = 0; i < 100; i++) {
    recv_rtp (phone, r);
    if (tune_frame_of (tune, codec, r) < 0)
      return;
    expect_continues (l, r, td_codec_frame_ticks (codec));
  }
  g_assert_not_reached ();
}

/* Ringback: the tune until the callee's first RTP packet, which goes out at
 * once as the switch (marker, seq + 1, the tune's SSRC, the timestamp
 * advanced by the time elapsed at the port's clock, set after the play
 * call); the port forwards from then on, and its owner hears TUNE_ENDED.
 * Until then the callee's RTCP, on its socket or multiplexed, is dropped
 * and ends nothing, nor does RTP the callee's port does not forward. */
static void
test_play_until_peer (void)
{
  g_autoptr (TdTune) tune = test_tune ();
  Call c;
  Recorder ra;
  Rtp r;
  Last l;
  guint16 a, b;
  gint64 sent_us;

  call_setup (&c, P (212), P (215));
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);
  recorder_watch (&ra, c.a);
  td_relay_port_play_until_peer (c.a, tune, TD_CODEC_PCMU, 0);
  td_relay_port_set_clock_rate (c.a, 16000);   /* the answer's codec, known later */
  g_assert_true (td_relay_port_is_playing (c.a));
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, 0);
  last_set (&l, &r);

  phone_send_rtcp (&c.b_rtcp, b + 1);
  phone_send_rtcp (&c.b_rtp, b);                  /* multiplexed */
  td_relay_port_set_forward (c.b, FALSE);         /* muted: heard, not forwarded */
  td_relay_sync (c.relay);
  phone_send_rtp (&c.b_rtp, b, 0x4242, 6999, 99999, 0xdd);
  wait_rx (c.b, 3);
  td_relay_port_set_forward (c.b, TRUE);
  td_relay_sync (c.relay);
  for (guint i = 1; i <= 3; i++) {                /* the tune goes on */
    recv_rtp (&c.a_rtp, &r);
    g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, i);
    expect_continues (&l, &r, FRAME);
  }
  expect_nothing (&c.a_rtcp, 20);
  deliver_pending (c.relay, NULL);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_TUNE_ENDED], ==, 0);
  g_assert_true (td_relay_port_is_playing (c.a));

  g_usleep (30 * 1000);
  sent_us = g_get_real_time ();
  phone_send_rtp (&c.b_rtp, b, 0x4242, 7000, 123456, 0xe0);
  skip_tune (&c.a_rtp, tune, TD_CODEC_PCMU, &l, &r);
  g_assert_cmphex (payload_tag (&r), ==, 0xe0);
  g_test_message ("the callee's first packet out %" G_GINT64_FORMAT " us after it was sent",
                  r.at_us - sent_us);
  expect_switch (&l, &r, 16000);
  g_assert_cmphex (r.ssrc, ==, l.ssrc);
  g_assert_cmphex (r.ssrc, !=, 0x4242);           /* the tune's, kept */
  for (guint i = 1; i < 5; i++) {                 /* forwarded from now on */
    phone_send_rtp (&c.b_rtp, b, 0x4242, (guint16) (7000 + i), 123456 + i * 320, 0xe0 + i);
    recv_rtp (&c.a_rtp, &r);
    g_assert_cmphex (payload_tag (&r), ==, 0xe0 + i);
    expect_continues (&l, &r, 320);
  }
  expect_nothing (&c.a_rtp, 60);                  /* and no tune any more */

  wait_event (&ra, TD_RELAY_EVENT_TUNE_ENDED, 1);
  g_assert_false (td_relay_port_is_playing (c.a));
  g_assert_cmpint (ra.last[TD_RELAY_EVENT_TUNE_ENDED].time_us, <=, g_get_monotonic_time ());
  td_relay_port_stop (c.a);                       /* harmless, and no event */
  phone_send (&c.b_rtcp, b + 1, 0x55);            /* RTCP flows too */
  expect_packet (&c.a_rtcp, 0x55, a + 1);
  deliver_pending (c.relay, NULL);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_TUNE_ENDED], ==, 1);
  g_assert_false (ra.misdelivered);
  call_teardown (&c);
}

/* A TUNE_ENDED still in flight when the owner stopped the tune, or played
 * another, is not told, and does not end the new one; without an event
 * func, is_playing still learns that the peer ended the tune. */
static void
test_play_until_peer_races (void)
{
  g_autoptr (TdTune) tune = test_tune ();
  Call c;
  Recorder ra;
  Rtp r;
  guint16 b;

  call_setup (&c, P (216), P (219));
  b = td_relay_port_number (c.b);
  recorder_watch (&ra, c.a);

  /* replaced by a plain tune before the delivery */
  td_relay_port_play_until_peer (c.a, tune, TD_CODEC_PCMU, 0);
  recv_rtp (&c.a_rtp, &r);
  phone_send_rtp (&c.b_rtp, b, 0x99, 1, 160, 0xe0);
  do
    recv_rtp (&c.a_rtp, &r);
  while (tune_frame_of (tune, TD_CODEC_PCMU, &r) >= 0);
  td_relay_port_play (c.a, tune, TD_CODEC_PCMA, 8);
  deliver_pending (c.relay, NULL);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_TUNE_ENDED], ==, 0);
  g_assert_true (td_relay_port_is_playing (c.a));
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMA, &r), ==, 0);
  g_assert_true (r.marker);
  phone_send_rtp (&c.b_rtp, b, 0x99, 2, 320, 0xe1);   /* a plain tune: not ended */
  wait_rx (c.b, 2);
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMA, &r), >=, 0);

  /* stopped before the delivery */
  td_relay_port_play_until_peer (c.a, tune, TD_CODEC_PCMU, 0);
  td_relay_sync (c.relay);
  phone_send_rtp (&c.b_rtp, b, 0x99, 3, 480, 0xe2);
  do
    recv_rtp (&c.a_rtp, &r);
  while (tune_frame_of (tune, TD_CODEC_PCMU, &r) >= 0 ||
         tune_frame_of (tune, TD_CODEC_PCMA, &r) >= 0);
  g_assert_cmphex (payload_tag (&r), ==, 0xe2);
  td_relay_port_stop (c.a);
  deliver_pending (c.relay, NULL);
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_TUNE_ENDED], ==, 0);
  g_assert_false (td_relay_port_is_playing (c.a));

  /* nobody watching */
  td_relay_port_set_event_func (c.a, NULL, NULL);
  td_relay_port_play_until_peer (c.a, tune, TD_CODEC_PCMU, 0);
  td_relay_sync (c.relay);
  phone_send_rtp (&c.b_rtp, b, 0x99, 4, 640, 0xe3);
  do
    recv_rtp (&c.a_rtp, &r);
  while (tune_frame_of (tune, TD_CODEC_PCMU, &r) >= 0);
  g_assert_cmphex (payload_tag (&r), ==, 0xe3);
  g_assert_true (td_relay_port_is_playing (c.a));   /* not delivered yet */
  deliver_pending (c.relay, NULL);
  g_assert_false (td_relay_port_is_playing (c.a));
  g_assert_cmpuint (ra.count[TD_RELAY_EVENT_TUNE_ENDED], ==, 0);
  call_teardown (&c);
}

/* A codec the tune lacks (no encoder in this GStreamer, here taken out of
 * its registry) is refused with a warning: nothing plays, nothing changes.
 * In a subprocess, where warnings are not fatal (structured logging passes
 * g_test_expect_message by). */
static void
test_play_missing_codec (void)
{
  GstRegistry *registry;
  GstPluginFeature *opusenc;
  g_autoptr (TdTune) tune = NULL;
  Call c;
  Rtp r;

  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed ();
    g_test_trap_assert_stderr ("*tune (pcm) has no opus*tune (pcm) has no opus*");
    return;
  }
  g_log_set_always_fatal (G_LOG_FATAL_MASK);
  gst_init (NULL, NULL);
  registry = gst_registry_get ();
  opusenc = gst_registry_lookup_feature (registry, "opusenc");
  if (opusenc)
    gst_registry_remove_feature (registry, opusenc);
  tune = test_tune ();
  if (opusenc) {
    gst_registry_add_feature (registry, opusenc);
    gst_object_unref (opusenc);
  }
  g_assert_false (td_tune_has_codec (tune, TD_CODEC_OPUS));

  call_setup (&c, P (236), P (239));
  td_relay_port_play (c.a, tune, TD_CODEC_OPUS, 111);
  td_relay_port_play_until_peer (c.a, tune, TD_CODEC_OPUS, 111);
  g_assert_false (td_relay_port_is_playing (c.a));
  td_relay_sync (c.relay);
  g_assert_false (phone_recv_rtp (&c.a_rtp, 60, &r));
  td_relay_port_play (c.a, tune, TD_CODEC_PCMU, 0);   /* what it has, it plays */
  recv_rtp (&c.a_rtp, &r);
  g_assert_cmpint (tune_frame_of (tune, TD_CODEC_PCMU, &r), ==, 0);
  call_teardown (&c);
}

/* The callee rang without SDP (nothing announced on its port), and its RTP
 * comes just before the 200 that brings its SDP: from the host its SIP came
 * from, it is learned at once (the NAT delay would clip its first words),
 * while a stranger's packets, even earlier, are not. The 200's SDP does not
 * unlearn it (no NAT delay then either); the SDP's address takes over when
 * it speaks. */
static void
test_latching_host_unannounced (void)
{
  Call c;
  Phone callee = phone_new_at ("127.0.0.2"), stranger = phone_new_at ("127.0.0.3");
  guint16 a, b;

  c.relay = relay_new (P (228), P (231));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 300, 10000);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_signalling_host (c.b, "127.0.0.2");
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);

  phone_send (&stranger, b, 0xbad1);
  phone_send (&callee, b, 1);           /* at once: the first A hears */
  expect_packet (&c.a_rtp, 1, a);
  phone_send (&stranger, b, 0xbad2);
  phone_send (&c.a_rtp, a, 2);          /* and where A's RTP goes */
  expect_packet (&callee, 2, b);
  phone_send (&callee, b, 3);
  expect_packet (&c.a_rtp, 3, a);
  wait_stat (c.b, dropped_foreign, 2);

  /* The 200's SDP names another address (a NATed callee's private one, or
   * its media elsewhere): the learned path stays until that one speaks. */
  td_relay_port_set_remote (c.b, "127.0.0.1", c.b_rtp.port, c.b_rtcp.port);
  td_relay_sync (c.relay);
  phone_send (&c.a_rtp, a, 4);
  expect_packet (&callee, 4, b);
  phone_send (&callee, b, 5);           /* no NAT delay after the 200 */
  expect_packet (&c.a_rtp, 5, a);
  phone_send (&c.b_rtp, b, 6);          /* the announced one takes over */
  expect_packet (&c.a_rtp, 6, a);
  phone_send (&callee, b, 0xbad3);      /* latched to the announced one now */
  phone_send (&c.b_rtp, b, 7);
  expect_packet (&c.a_rtp, 7, a);
  phone_send (&c.a_rtp, a, 8);
  expect_packet (&c.b_rtp, 8, b);
  expect_nothing (&callee, 20);
  expect_nothing (&stranger, 20);
  call_teardown (&c);
  phone_close (&callee);
  phone_close (&stranger);
}

/* With nothing announced, a stranger keeps today's rule: learnable only
 * after the NAT delay counted from its first packet, and never while the
 * signalling host speaks. */
static void
test_latching_stranger_unannounced (void)
{
  Call c;
  Phone stranger = phone_new_at ("127.0.0.3");
  guint16 a, b;

  c.relay = relay_new (P (232), P (235));
  td_relay_set_latching (c.relay, TD_RELAY_LATCH_PREFER_SDP, 300, 10000);
  c.a = port_alloc (c.relay);
  c.b = port_alloc (c.relay);
  c.a_rtp = phone_new ();
  c.a_rtcp = phone_new ();
  c.b_rtp = phone_new ();
  c.b_rtcp = phone_new ();
  td_relay_port_set_remote (c.a, "127.0.0.1", c.a_rtp.port, c.a_rtcp.port);
  td_relay_port_set_signalling_host (c.b, "127.0.0.2");
  td_relay_connect (c.a, c.b);
  td_relay_sync (c.relay);
  a = td_relay_port_number (c.a);
  b = td_relay_port_number (c.b);

  phone_send (&stranger, b, 0xbad1);
  phone_send (&stranger, b, 0xbad2);
  wait_stat (c.b, dropped_foreign, 2);
  phone_send (&c.a_rtp, a, 1);          /* to nowhere: b has learned nobody */
  expect_nothing (&stranger, 50);
  g_usleep (350 * 1000);
  phone_send (&stranger, b, 2);         /* "anyone", after the delay */
  expect_packet (&c.a_rtp, 2, a);
  call_teardown (&c);
  phone_close (&stranger);
}

typedef struct {
  void (*fn) (void);
  guint threads;
} Case;

static void
run_case (gconstpointer data)
{
  const Case *c = data;

  n_threads = c->threads;
  c->fn ();
}

int
main (int argc, char **argv)
{
  static const struct {
    const char *name;
    void (*fn) (void);
  } tests[] = {
    { "alloc-even", test_alloc_even },
    { "bad-config", test_bad_config },
    { "both-ways", test_both_ways },
    { "burst-in-order", test_burst_in_order },
    { "latching/announced-wins", test_latching_announced_wins },
    { "latching/nat", test_latching_nat },
    { "latching/nat-signalling-host", test_latching_nat_signalling_host },
    { "latching/nat-vs-sprayer", test_latching_nat_vs_sprayer },
    { "latching/rtcp-sprayer", test_latching_rtcp_sprayer },
    { "latching/host-replaces-stranger", test_latching_host_replaces_stranger },
    { "latching/window-closes", test_latching_window_closes },
    { "latching/sdp-only", test_latching_sdp_only },
    { "latching/first-packet", test_latching_first_packet },
    { "latching/rearm", test_latching_rearm },
    { "latching/host-unannounced", test_latching_host_unannounced },
    { "latching/stranger-unannounced", test_latching_stranger_unannounced },
    { "remote-none", test_remote_none },
    { "forward-off", test_forward_off },
    { "disconnect", test_disconnect },
    { "garbage", test_garbage },
    { "rtcp-mux", test_rtcp_mux },
    { "drop-rtcp", test_drop_rtcp },
    { "stats", test_stats },
    { "exhaustion", test_exhaustion },
    { "rotation", test_rotation },
    { "alloc-random", test_alloc_random },
    { "parked-deaf", test_parked_deaf },
    { "wildcard-closes", test_wildcard_closes },
    { "parked-evicted", test_parked_evicted },
    { "many-ports", test_many_ports },
    { "ipv6", test_ipv6 },
    { "cross-thread-connect", test_cross_thread_connect },
    { "context-forward", test_context_forward },
    { "tune-plays", test_tune_plays },
    { "switch-forward-tune-forward", test_switch_forward_tune_forward },
    { "transfer-ssrc", test_transfer_ssrc },
    { "new-ssrc-on-switch", test_new_ssrc_on_switch },
    { "tune-dynamic-pt", test_tune_dynamic_pt },
    { "drop-while-playing", test_drop_while_playing },
    { "play-unlatched", test_play_unlatched },
    { "free-while-playing", test_free_while_playing },
    { "play-migrate", test_play_migrate },
    { "tune-g722", test_tune_g722 },
    { "tune-opus", test_tune_opus },
    { "play-until-peer", test_play_until_peer },
    { "play-until-peer-races", test_play_until_peer_races },
    { "play-missing-codec", test_play_missing_codec },
    { "leg/rejected-stream", test_leg_rejected_stream },
    { "leg/rtcp-mux", test_leg_rtcp_mux },
    { "leg/clock-rate", test_leg_clock_rate },
    { "leg/clock-rate-answer", test_leg_clock_rate_answer },
    { "events/first-packet", test_events_first_packet },
    { "events/latched-nat", test_events_latched_nat },
    { "events/idle-active", test_events_idle_active },
    { "events/idle-timeout-set", test_events_idle_timeout_set },
    { "events/after-free", test_events_after_free },
    { "events/context", test_events_context },
  };

  static const struct {
    const char *name;
    void (*fn) (void);
  } migrations[] = {
    { "migrate/flows", test_migrate_flows },
    { "migrate/commands-in-order", test_migrate_commands_in_order },
    { "migrate/then-free", test_migrate_then_free },
    { "migrate/twice", test_migrate_twice },
    { "migrate/ping-pong", test_migrate_ping_pong },
    { "migrate/does-not-wait", test_migrate_does_not_wait },
    { "migrate/free-relay", test_migrate_free_relay },
    { "migrate/events", test_migrate_events },
  };

  g_test_init (&argc, &argv, NULL);
  claim_port_block ();
  /* Relays deliver their events there: its wakeup fd exists before any
   * test counts fds. */
  g_main_context_default ();
  for (guint threads = 1; threads <= 2; threads++) {
    for (guint i = 0; i < G_N_ELEMENTS (tests); i++) {
      Case *c = g_new (Case, 1);
      g_autofree char *path = g_strdup_printf ("/relay/%u-thread/%s", threads, tests[i].name);
      c->fn = tests[i].fn;
      c->threads = threads;
      g_test_add_data_func_full (path, c, run_case, g_free);
    }
  }
  for (guint threads = 2; threads <= 3; threads++) {
    for (guint i = 0; i < G_N_ELEMENTS (migrations); i++) {
      Case *c = g_new (Case, 1);
      g_autofree char *path = g_strdup_printf ("/relay/%u-thread/%s", threads,
                                               migrations[i].name);
      c->fn = migrations[i].fn;
      c->threads = threads;
      g_test_add_data_func_full (path, c, run_case, g_free);
    }
  }
  return g_test_run ();
}
