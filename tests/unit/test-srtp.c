/* SRTP terminated in the relay (td_relay_port_set_srtp) over real loopback
 * UDP sockets: the "phones" are plain sockets on 127.0.0.1 (ephemeral ports)
 * with their own libsrtp2 sessions, the relay's ports come from
 * 35000-35999. Every wait is bounded. A packet that must NOT be relayed is
 * checked by sending a good one right after it from the same socket: the
 * good one must be the next to arrive. Every case runs with one media
 * thread and with two (ports sharded: a connect may migrate a port, and its
 * SRTP state with it).
 *
 * "A" is the SRTP leg: the phone behind it protects with kA_rx (the relay's
 * rx key for A) and unprotects with kA_tx; "B" is a plain leg. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gst/gst.h>
#include <srtp2/srtp.h>

#include "td-relay.h"
#include "td-srtp.h"

#define WAIT_MS 2000
#define PORT_MIN 35000
#define PORT_MAX 35999
#define PAYLOAD 160
#define RTP_LEN (12 + PAYLOAD)
#define SUITE TD_SRTP_AES_CM_128_HMAC_SHA1_80

static guint n_threads = 1;

/* ---- phones ---- */

typedef struct {
  int fd;
  guint16 port;
} Phone;

static Phone
phone_new (void)
{
  Phone p;
  struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof in;

  p.fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (p.fd, >=, 0);
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
phone_send (Phone *p, guint16 port, const void *data, gsize len)
{
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (port),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  g_assert_cmpint (sendto (p->fd, data, len, 0, (struct sockaddr *) &to, sizeof to), ==, (gssize) len);
}

/* The next datagram's length, or -1 if none within `ms`. */
static gssize
phone_recv (Phone *p, int ms, guint8 *buf, gsize cap)
{
  struct pollfd pfd = { .fd = p->fd, .events = POLLIN };

  if (poll (&pfd, 1, ms) <= 0)
    return -1;
  return recv (p->fd, buf, cap, 0);
}

/* ---- packets ---- */

/* An RTP packet (PCMU) whose payload names it: `tag` in every byte pair. */
static gsize
make_rtp (guint8 *buf, guint32 ssrc, guint16 seq, guint32 ts, guint16 tag)
{
  memset (buf, 0, RTP_LEN);
  buf[0] = 0x80;
  buf[1] = 0;
  buf[2] = (guint8) (seq >> 8);
  buf[3] = (guint8) seq;
  buf[4] = (guint8) (ts >> 24);
  buf[5] = (guint8) (ts >> 16);
  buf[6] = (guint8) (ts >> 8);
  buf[7] = (guint8) ts;
  buf[8] = (guint8) (ssrc >> 24);
  buf[9] = (guint8) (ssrc >> 16);
  buf[10] = (guint8) (ssrc >> 8);
  buf[11] = (guint8) ssrc;
  for (guint i = 0; i < PAYLOAD; i += 2) {
    buf[12 + i] = (guint8) (tag >> 8);
    buf[12 + i + 1] = (guint8) tag;
  }
  return RTP_LEN;
}

static guint16
rtp_tag (const guint8 *buf)
{
  return (guint16) (buf[12] << 8 | buf[13]);
}

static guint16
rtp_seq (const guint8 *buf)
{
  return (guint16) (buf[2] << 8 | buf[3]);
}

/* An RTCP receiver report (RR, 8 bytes) + `tag` in a 4-byte APP-like tail:
 * 12 bytes, plausible, naming itself. */
static gsize
make_rtcp (guint8 *buf, guint32 ssrc, guint32 tag)
{
  static const guint8 rr[4] = { 0x80, 201, 0, 2 };   /* RR, no report blocks, length 2 words */

  memcpy (buf, rr, 4);
  for (guint i = 0; i < 4; i++) {
    buf[4 + i] = (guint8) (ssrc >> (24 - 8 * i));
    buf[8 + i] = (guint8) (tag >> (24 - 8 * i));
  }
  return 12;
}

/* ---- the phones' libsrtp sessions ---- */

/* What each SDES suite means (RFC 4568, 6188, 7714), written out again
 * here rather than taken from the relay: SRTCP of the _32 suites keeps an
 * 80-bit tag (RFC 4568 §6.2). */
static void
phone_policy (srtp_policy_t *p, TdSrtpSuite suite, guint8 *key, srtp_ssrc_type_t type)
{
  memset (p, 0, sizeof *p);
  switch (suite) {
  case TD_SRTP_AES_CM_128_HMAC_SHA1_80:
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_CM_128_HMAC_SHA1_32:
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_192_CM_HMAC_SHA1_80:
    srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_192_CM_HMAC_SHA1_32:
    srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_256_CM_HMAC_SHA1_80:
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AES_256_CM_HMAC_SHA1_32:
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32 (&p->rtp);
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80 (&p->rtcp);
    break;
  case TD_SRTP_AEAD_AES_128_GCM:
    srtp_crypto_policy_set_aes_gcm_128_16_auth (&p->rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth (&p->rtcp);
    break;
  case TD_SRTP_AEAD_AES_256_GCM:
    srtp_crypto_policy_set_aes_gcm_256_16_auth (&p->rtp);
    srtp_crypto_policy_set_aes_gcm_256_16_auth (&p->rtcp);
    break;
  default:
    g_assert_not_reached ();
  }
  p->ssrc.type = type;
  p->key = key;
}

static srtp_t
session_new_suite (TdSrtpSuite suite, const guint8 *key, srtp_ssrc_type_t type)
{
  srtp_policy_t p;
  guint8 k[TD_SRTP_MAX_KEY];
  srtp_t s = NULL;

  memcpy (k, key, td_srtp_suite_key_len (suite));
  phone_policy (&p, suite, k, type);
  g_assert_cmpint (srtp_create (&s, &p), ==, srtp_err_status_ok);
  return s;
}

static srtp_t
session_new (const guint8 *key, srtp_ssrc_type_t type)
{
  return session_new_suite (SUITE, key, type);
}

/* Protects `len` bytes of `buf` (room for the trailer) with sender `s`. */
static gsize
protect (srtp_t s, guint8 *buf, gsize len, gboolean rtcp)
{
  int n = (int) len;
  g_assert_cmpint (rtcp ? srtp_protect_rtcp (s, buf, &n) : srtp_protect (s, buf, &n), ==,
                   srtp_err_status_ok);
  return (gsize) n;
}

/* Receives one packet and unprotects it with `s`: its clear length (the
 * libsrtp status must be ok). */
static gsize
recv_unprotect (Phone *p, srtp_t s, guint8 *buf, gboolean rtcp)
{
  gssize n = phone_recv (p, WAIT_MS, buf, 2048);
  int len;

  g_assert_cmpint (n, >, 0);
  len = (int) n;
  g_assert_cmpint (rtcp ? srtp_unprotect_rtcp (s, buf, &len) : srtp_unprotect (s, buf, &len), ==,
                   srtp_err_status_ok);
  return (gsize) len;
}

/* ---- the relay ---- */

typedef struct {
  TdRelay *relay;
  TdRelayPort *a, *b;
  Phone pa, pa_rtcp, pb, pb_rtcp;   /* behind A (SRTP) and B (plain) */
  guint8 ka_rx[TD_SRTP_MAX_KEY], ka_tx[TD_SRTP_MAX_KEY];
  srtp_t to_a;      /* the phone's sender: kA_rx */
  srtp_t from_a;    /* the phone's receiver: kA_tx */
  TdSrtpSuite suite;
} Call;

static TdRelayPort *
port_alloc (TdRelay *relay)
{
  g_autoptr (GError) error = NULL;
  TdRelayPort *port = td_relay_port_alloc (relay, &error);
  g_assert_no_error (error);
  return port;
}

/* A SRTP, B plain, connected; both remotes announced (and so latched at
 * their first packet). */
static void
call_setup_suite (Call *c, TdSrtpSuite suite)
{
  g_autoptr (GError) error = NULL;

  memset (c, 0, sizeof *c);
  c->suite = suite;
  c->relay = td_relay_new_full ("127.0.0.1", PORT_MIN, PORT_MAX, n_threads, &error);
  g_assert_no_error (error);
  c->a = port_alloc (c->relay);
  c->b = port_alloc (c->relay);
  c->pa = phone_new ();
  c->pa_rtcp = phone_new ();
  c->pb = phone_new ();
  c->pb_rtcp = phone_new ();
  td_relay_port_set_remote (c->a, "127.0.0.1", c->pa.port, c->pa_rtcp.port);
  td_relay_port_set_remote (c->b, "127.0.0.1", c->pb.port, c->pb_rtcp.port);
  td_srtp_random_key (suite, c->ka_rx);
  td_srtp_random_key (suite, c->ka_tx);
  td_relay_port_set_srtp (c->a, suite, c->ka_rx, c->ka_tx);
  td_relay_connect (c->a, c->b);
  td_relay_sync (c->relay);
  c->to_a = session_new_suite (suite, c->ka_rx, ssrc_any_outbound);
  c->from_a = session_new_suite (suite, c->ka_tx, ssrc_any_inbound);
}

static void
call_setup (Call *c)
{
  call_setup_suite (c, SUITE);
}

static void
call_clear (Call *c)
{
  td_relay_port_free (c->a);
  td_relay_port_free (c->b);
  td_relay_free (c->relay);
  phone_close (&c->pa);
  phone_close (&c->pa_rtcp);
  phone_close (&c->pb);
  phone_close (&c->pb_rtcp);
  srtp_dealloc (c->to_a);
  srtp_dealloc (c->from_a);
}

/* The phone behind A sends RTP packet `seq` (tag = seq), protected with `s`. */
static void
send_to_a (Call *c, srtp_t s, guint16 seq)
{
  guint8 buf[2048];
  gsize len = make_rtp (buf, 0x11111111, seq, seq * 160u, seq);

  phone_send (&c->pa, td_relay_port_number (c->a), buf, protect (s, buf, len, FALSE));
}

static void
send_b (Call *c, guint16 seq, guint16 tag)
{
  guint8 buf[2048];
  gsize len = make_rtp (buf, 0x22222222, seq, seq * 160u, tag);
  phone_send (&c->pb, td_relay_port_number (c->b), buf, len);
}

/* B's phone must get the clear packet tagged `tag` next. */
static void
expect_at_b (Call *c, guint16 tag)
{
  guint8 buf[2048];
  gssize n = phone_recv (&c->pb, WAIT_MS, buf, sizeof buf);

  g_assert_cmpint (n, ==, RTP_LEN);
  g_assert_cmpuint (rtp_tag (buf), ==, tag);
}

static void
expect_nothing (Phone *p, int ms)
{
  guint8 buf[2048];
  g_assert_cmpint (phone_recv (p, ms, buf, sizeof buf), ==, -1);
}

static void
get_stats (TdRelayPort *port, TdRelayStats *st)
{
  td_relay_port_get_stats (port, st);
}

/* ---- the cases ---- */

/* 1. SRTP in on A, clear out of B: every packet, payloads intact. */
static void
test_srtp_to_rtp (void)
{
  Call c;
  TdRelayStats st;

  call_setup (&c);
  for (guint16 seq = 1; seq <= 20; seq++)
    send_to_a (&c, c.to_a, seq);
  for (guint16 seq = 1; seq <= 20; seq++)
    expect_at_b (&c, seq);
  expect_nothing (&c.pb, 50);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.rx_packets, ==, 20);
  g_assert_cmpuint (st.srtp_auth_failed, ==, 0);
  g_assert_cmpuint (st.srtp_replayed, ==, 0);
  call_clear (&c);
}

/* 2. Clear in on B, SRTP out of A (every packet authenticates under kA_tx,
 * payload intact); SRTCP both ways. */
static void
test_rtp_to_srtp (void)
{
  Call c;
  guint8 buf[2048];
  gsize len;
  TdRelayStats st;

  call_setup (&c);
  for (guint16 seq = 1; seq <= 20; seq++) {
    len = make_rtp (buf, 0x22222222, seq, seq * 160u, seq);
    phone_send (&c.pb, td_relay_port_number (c.b), buf, len);
  }
  for (guint16 seq = 1; seq <= 20; seq++) {
    len = recv_unprotect (&c.pa, c.from_a, buf, FALSE);
    g_assert_cmpuint (len, ==, RTP_LEN);
    g_assert_cmpuint (rtp_tag (buf), ==, seq);
  }
  /* RTCP B -> A: SRTCP under kA_tx */
  len = make_rtcp (buf, 0x22222222, 0xb0b0b0b0);
  phone_send (&c.pb_rtcp, td_relay_port_number (c.b) + 1, buf, len);
  len = recv_unprotect (&c.pa_rtcp, c.from_a, buf, TRUE);
  g_assert_cmpuint (len, ==, 12);
  g_assert_cmpuint (buf[1], ==, 201);
  g_assert_cmpuint (buf[8], ==, 0xb0);
  /* RTCP A -> B: SRTCP under kA_rx in, clear out */
  len = make_rtcp (buf, 0x11111111, 0xa0a0a0a0);
  len = protect (c.to_a, buf, len, TRUE);
  g_assert_cmpuint (len, >, 12);
  phone_send (&c.pa_rtcp, td_relay_port_number (c.a) + 1, buf, len);
  g_assert_cmpint (phone_recv (&c.pb_rtcp, WAIT_MS, buf, sizeof buf), ==, 12);
  g_assert_cmpuint (buf[8], ==, 0xa0);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.tx_packets, ==, 21);
  g_assert_cmpuint (st.srtp_tx_failed, ==, 0);
  /* no room for the tag in the relay's buffer: not sent (and not sent clear) */
  len = make_rtp (buf, 0x22222222, 21, 21 * 160u, 21);
  phone_send (&c.pb, td_relay_port_number (c.b), buf, 1950);
  len = make_rtp (buf, 0x22222222, 22, 22 * 160u, 22);
  phone_send (&c.pb, td_relay_port_number (c.b), buf, len);
  len = recv_unprotect (&c.pa, c.from_a, buf, FALSE);
  g_assert_cmpuint (rtp_tag (buf), ==, 22);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.srtp_tx_failed, ==, 1);
  call_clear (&c);
}

/* 2b. Every suite, RTP and RTCP, both ways; the phone's SRTCP of a _32
 * suite carries an 80-bit tag. */
static void
test_suites (void)
{
  for (TdSrtpSuite suite = TD_SRTP_SUITE_NONE + 1; suite < TD_SRTP_N_SUITES; suite++) {
    Call c;
    guint8 buf[2048];
    gsize len;
    TdRelayStats st;

    call_setup_suite (&c, suite);
    send_to_a (&c, c.to_a, 1);
    expect_at_b (&c, 1);
    len = protect (c.to_a, buf, make_rtcp (buf, 0x11111111, 0xa0a0a0a0), TRUE);
    if (strstr (td_srtp_suite_name (suite), "_32"))
      g_assert_cmpuint (len, ==, 12 + 4 + 10);
    phone_send (&c.pa_rtcp, td_relay_port_number (c.a) + 1, buf, len);
    g_assert_cmpint (phone_recv (&c.pb_rtcp, WAIT_MS, buf, sizeof buf), ==, 12);
    g_assert_cmpuint (buf[8], ==, 0xa0);
    send_b (&c, 1, 0x42);
    g_assert_cmpuint (recv_unprotect (&c.pa, c.from_a, buf, FALSE), ==, RTP_LEN);
    g_assert_cmpuint (rtp_tag (buf), ==, 0x42);
    len = make_rtcp (buf, 0x22222222, 0xb0b0b0b0);
    phone_send (&c.pb_rtcp, td_relay_port_number (c.b) + 1, buf, len);
    g_assert_cmpuint (recv_unprotect (&c.pa_rtcp, c.from_a, buf, TRUE), ==, 12);
    g_assert_cmpuint (buf[8], ==, 0xb0);
    get_stats (c.a, &st);
    g_assert_cmpuint (st.srtp_auth_failed, ==, 0);
    call_clear (&c);
  }
}

/* 2c. A re-key in an AEAD suite: a packet under the old key fails the new
 * key first, and an AEAD failure may leave the buffer written to; the old
 * key must still get the packet as it came. */
static void
test_rekey_aead (void)
{
  Call c;
  guint8 k2[TD_SRTP_MAX_KEY];
  srtp_t to_a2;
  TdRelayStats st;

  call_setup_suite (&c, TD_SRTP_AEAD_AES_128_GCM);
  send_to_a (&c, c.to_a, 1);
  expect_at_b (&c, 1);
  td_srtp_random_key (c.suite, k2);
  td_relay_port_set_srtp (c.a, c.suite, k2, c.ka_tx);
  td_relay_sync (c.relay);
  to_a2 = session_new_suite (c.suite, k2, ssrc_any_outbound);
  for (guint16 seq = 2; seq <= 4; seq++)
    send_to_a (&c, c.to_a, seq);     /* the old key, tried after the new */
  for (guint16 seq = 2; seq <= 4; seq++)
    expect_at_b (&c, seq);
  send_to_a (&c, to_a2, 5);
  expect_at_b (&c, 5);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.srtp_auth_failed, ==, 0);
  srtp_dealloc (to_a2);
  call_clear (&c);
}

/* 2d. The plain side restarts its sequence on the same SSRC (a gateway
 * after a re-INVITE): the SRTP side still gets it, the stream's numbers
 * going on (SRTP's sender refuses a number twice). */
static void
test_plain_restart (void)
{
  Call c;
  guint8 buf[2048];
  guint16 last = 0;
  TdRelayStats st;

  call_setup (&c);
  for (guint round = 0; round < 2; round++)
    for (guint16 seq = 1; seq <= 5; seq++) {
      send_b (&c, seq, (guint16) (0x100 * (round + 1) + seq));
      g_assert_cmpuint (recv_unprotect (&c.pa, c.from_a, buf, FALSE), ==, RTP_LEN);
      g_assert_cmpuint (rtp_tag (buf), ==, 0x100 * (round + 1) + seq);
      if (round || seq > 1)
        g_assert_cmpuint ((guint16) (((guint16) buf[2] << 8 | buf[3]) - last), ==, 1);
      last = (guint16) ((guint16) buf[2] << 8 | buf[3]);
    }
  get_stats (c.a, &st);
  g_assert_cmpuint (st.srtp_tx_failed, ==, 0);
  call_clear (&c);
}

/* 3. The same SRTP packet twice: relayed once. */
static void
test_replay (void)
{
  Call c;
  guint8 buf[2048];
  gsize len;
  TdRelayStats st;

  call_setup (&c);
  len = protect (c.to_a, buf, make_rtp (buf, 0x11111111, 1, 160, 1), FALSE);
  phone_send (&c.pa, td_relay_port_number (c.a), buf, len);
  phone_send (&c.pa, td_relay_port_number (c.a), buf, len);   /* replayed */
  send_to_a (&c, c.to_a, 2);
  expect_at_b (&c, 1);
  expect_at_b (&c, 2);
  expect_nothing (&c.pb, 50);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.srtp_replayed, ==, 1);
  g_assert_cmpuint (st.srtp_auth_failed, ==, 0);
  g_assert_cmpuint (st.rx_packets, ==, 2);
  call_clear (&c);
}

/* 4. A forged tag and a plain RTP packet are never relayed. */
static void
test_forged (void)
{
  Call c;
  guint8 buf[2048];
  gsize len;
  TdRelayStats st;

  call_setup (&c);
  send_to_a (&c, c.to_a, 1);
  len = protect (c.to_a, buf, make_rtp (buf, 0x11111111, 2, 320, 2), FALSE);
  buf[len - 1] ^= 0x01;   /* the tag's last byte */
  phone_send (&c.pa, td_relay_port_number (c.a), buf, len);
  len = make_rtp (buf, 0x11111111, 3, 480, 3);   /* plain RTP to an SRTP port */
  phone_send (&c.pa, td_relay_port_number (c.a), buf, len);
  send_to_a (&c, c.to_a, 4);
  expect_at_b (&c, 1);
  expect_at_b (&c, 4);
  expect_nothing (&c.pb, 50);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.srtp_auth_failed, ==, 2);
  g_assert_cmpuint (st.rx_packets, ==, 2);
  call_clear (&c);
}

/* 4b. A stranger spraying forged SRTP (and plain RTP) at a port that latches
 * the first packet from anywhere never latches it: the key holder, from
 * another socket, does, and hears B. */
static void
test_stranger_cannot_latch (void)
{
  g_autoptr (GError) error = NULL;
  TdRelay *relay = td_relay_new_full ("127.0.0.1", PORT_MIN, PORT_MAX, n_threads, &error);
  TdRelayPort *a, *b;
  Phone stranger = phone_new (), real = phone_new (), pb = phone_new ();
  guint8 ka_rx[TD_SRTP_MAX_KEY], ka_tx[TD_SRTP_MAX_KEY], buf[2048];
  srtp_t to_a, from_a, wrong;
  guint8 wrong_key[TD_SRTP_MAX_KEY];
  TdRelayStats st;
  gsize len;

  g_assert_no_error (error);
  td_relay_set_latching (relay, TD_RELAY_LATCH_FIRST_PACKET, TD_RELAY_NAT_DELAY_MS,
                         TD_RELAY_LEARN_WINDOW_MS);
  a = port_alloc (relay);
  b = port_alloc (relay);
  td_relay_port_set_remote (b, "127.0.0.1", pb.port, 0);
  td_srtp_random_key (SUITE, ka_rx);
  td_srtp_random_key (SUITE, ka_tx);
  td_srtp_random_key (SUITE, wrong_key);
  td_relay_port_set_srtp (a, SUITE, ka_rx, ka_tx);
  td_relay_connect (a, b);
  td_relay_sync (relay);
  to_a = session_new (ka_rx, ssrc_any_outbound);
  from_a = session_new (ka_tx, ssrc_any_inbound);
  wrong = session_new (wrong_key, ssrc_any_outbound);
  for (guint16 seq = 1; seq <= 5; seq++) {
    len = protect (wrong, buf, make_rtp (buf, 0x33333333, seq, seq * 160u, 0xbad), FALSE);
    phone_send (&stranger, td_relay_port_number (a), buf, len);
    len = make_rtp (buf, 0x33333333, seq, seq * 160u, 0xbad);
    phone_send (&stranger, td_relay_port_number (a), buf, len);
  }
  len = protect (to_a, buf, make_rtp (buf, 0x11111111, 1, 160, 1), FALSE);
  phone_send (&real, td_relay_port_number (a), buf, len);
  g_assert_cmpint (phone_recv (&pb, WAIT_MS, buf, sizeof buf), ==, RTP_LEN);
  g_assert_cmpuint (rtp_tag (buf), ==, 1);
  expect_nothing (&pb, 50);
  /* A latched the key holder: what B says goes to it, not to the stranger */
  len = make_rtp (buf, 0x22222222, 1, 160, 7);
  phone_send (&pb, td_relay_port_number (b), buf, len);
  len = recv_unprotect (&real, from_a, buf, FALSE);
  g_assert_cmpuint (rtp_tag (buf), ==, 7);
  expect_nothing (&stranger, 50);
  get_stats (a, &st);
  g_assert_cmpuint (st.srtp_auth_failed, ==, 10);
  g_assert_cmpuint (st.rx_packets, ==, 1);
  srtp_dealloc (to_a);
  srtp_dealloc (from_a);
  srtp_dealloc (wrong);
  td_relay_free (relay);
  phone_close (&stranger);
  phone_close (&real);
  phone_close (&pb);
}

/* 5. Re-key: a new rx key mid-stream; the old one is good until the first
 * packet under the new one; the same keys again change nothing. */
static void
test_rekey (void)
{
  Call c;
  guint8 k2[TD_SRTP_MAX_KEY], buf[2048];
  srtp_t to_a2;
  TdRelayStats st;
  gsize len, replay_len;
  guint8 replay[2048];

  call_setup (&c);
  for (guint16 seq = 1; seq <= 3; seq++)
    send_to_a (&c, c.to_a, seq);
  for (guint16 seq = 1; seq <= 3; seq++)
    expect_at_b (&c, seq);
  td_srtp_random_key (SUITE, k2);
  td_relay_port_set_srtp (c.a, SUITE, k2, c.ka_tx);
  td_relay_sync (c.relay);
  to_a2 = session_new (k2, ssrc_any_outbound);
  /* still the old key: accepted */
  send_to_a (&c, c.to_a, 4);
  send_to_a (&c, c.to_a, 5);
  expect_at_b (&c, 4);
  expect_at_b (&c, 5);
  /* the new key: accepted, and from now on the only one */
  send_to_a (&c, to_a2, 6);
  expect_at_b (&c, 6);
  send_to_a (&c, c.to_a, 7);   /* old key: dropped */
  send_to_a (&c, to_a2, 8);
  expect_at_b (&c, 8);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.srtp_auth_failed, ==, 1);

  /* B -> A before and after the same keys again: one receiver context, no failure */
  len = make_rtp (buf, 0x22222222, 100, 16000, 100);
  phone_send (&c.pb, td_relay_port_number (c.b), buf, len);
  len = recv_unprotect (&c.pa, c.from_a, buf, FALSE);
  g_assert_cmpuint (rtp_tag (buf), ==, 100);
  replay_len = protect (to_a2, replay, make_rtp (replay, 0x11111111, 9, 9 * 160u, 9), FALSE);
  phone_send (&c.pa, td_relay_port_number (c.a), replay, replay_len);
  expect_at_b (&c, 9);

  td_relay_port_set_srtp (c.a, SUITE, k2, c.ka_tx);
  td_relay_sync (c.relay);
  /* the replay window was kept: packet 9 again is a replay, not news */
  phone_send (&c.pa, td_relay_port_number (c.a), replay, replay_len);
  send_to_a (&c, to_a2, 10);
  expect_at_b (&c, 10);
  len = make_rtp (buf, 0x22222222, 101, 16160, 101);
  phone_send (&c.pb, td_relay_port_number (c.b), buf, len);
  len = recv_unprotect (&c.pa, c.from_a, buf, FALSE);
  g_assert_cmpuint (rtp_tag (buf), ==, 101);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.srtp_replayed, ==, 1);
  g_assert_cmpuint (st.srtp_auth_failed, ==, 1);

  /* a new tx key: what leaves A is under it */
  {
    guint8 t2[TD_SRTP_MAX_KEY];
    srtp_t from_a2;

    td_srtp_random_key (SUITE, t2);
    td_relay_port_set_srtp (c.a, SUITE, k2, t2);
    td_relay_sync (c.relay);
    from_a2 = session_new (t2, ssrc_any_inbound);
    len = make_rtp (buf, 0x22222222, 102, 16320, 102);
    phone_send (&c.pb, td_relay_port_number (c.b), buf, len);
    len = recv_unprotect (&c.pa, from_a2, buf, FALSE);
    g_assert_cmpuint (rtp_tag (buf), ==, 102);
    srtp_dealloc (from_a2);
  }
  srtp_dealloc (to_a2);
  call_clear (&c);
}

/* A 0.5 s PCMU tune of a constant sample: its payload bytes are all one value. */
static TdTune *
test_tune (void)
{
  gint16 pcm[25 * 160];

  for (guint i = 0; i < G_N_ELEMENTS (pcm); i++)
    pcm[i] = 3000;
  return td_tune_new_from_pcm (pcm, G_N_ELEMENTS (pcm));
}

typedef struct {
  guint n;
  gboolean have_last;
  guint16 last_seq;
} Continuity;

/* The next packet at A's phone: it must authenticate under the one receiver
 * context, its sequence number one more than the last one's. Returns its
 * clear payload's first byte pair (a tag, or the tune's bytes). */
static guint16
expect_continuous (Call *c, Continuity *k)
{
  guint8 buf[2048];
  gsize len = recv_unprotect (&c->pa, c->from_a, buf, FALSE);

  g_assert_cmpuint (len, >, 12);
  if (k->have_last)
    g_assert_cmpuint (rtp_seq (buf), ==, (guint16) (k->last_seq + 1));
  k->last_seq = rtp_seq (buf);
  k->have_last = TRUE;
  k->n++;
  return rtp_tag (buf);
}

/* A's phone gets `frames` tune packets (not B's `tag_not`), continuous. */
static void
expect_tune (Call *c, Continuity *k, guint frames, guint16 tag_not)
{
  for (guint i = 0; i < frames; i++)
    g_assert_cmpuint (expect_continuous (c, k), !=, tag_not);
}

/* 6. One SRTP stream out of A across every source switch and a 16-bit
 * sequence wrap: forwarded (seq up to the wrap) -> ringback until the peer
 * speaks -> forwarded -> hold music -> stop -> forwarded. */
static void
test_continuity (void)
{
  Call c;
  Continuity k = { 0 };
  g_autoptr (TdTune) tune = test_tune ();
  guint16 seq = 65530;   /* the first forwarded source keeps its sequence numbers */
  TdRelayStats st;

  call_setup (&c);
  for (guint i = 0; i < 10; i++, seq++) {   /* 65530 .. 3: across the wrap */
    send_b (&c, seq, 0x1000 + i);
    g_assert_cmpuint (expect_continuous (&c, &k), ==, 0x1000 + i);
  }
  td_relay_port_play_until_peer (c.a, tune, TD_CODEC_PCMU, 0);
  td_relay_sync (c.relay);
  expect_tune (&c, &k, 5, 0x2000);
  send_b (&c, seq++, 0x2000);   /* ends the ringback */
  /* tune frames may still have been in flight before it */
  while (expect_continuous (&c, &k) != 0x2000)
    ;
  for (guint i = 1; i < 5; i++, seq++) {
    send_b (&c, seq, 0x2000 + i);
    g_assert_cmpuint (expect_continuous (&c, &k), ==, 0x2000 + i);
  }
  td_relay_port_play (c.a, tune, TD_CODEC_PCMU, 0);   /* hold music */
  td_relay_sync (c.relay);
  expect_tune (&c, &k, 5, 0x3000);
  td_relay_port_stop (c.a);
  td_relay_sync (c.relay);
  /* frames sent before the stop may still wait in the socket */
  for (guint i = 0; i < 5; i++, seq++)
    send_b (&c, seq, 0x3000 + i);
  while (expect_continuous (&c, &k) != 0x3000)
    ;
  for (guint i = 1; i < 5; i++)
    g_assert_cmpuint (expect_continuous (&c, &k), ==, 0x3000 + i);
  /* a new tx key after the wrap (ROC 1): the stream goes on, its ROC kept,
   * for a receiver that updates its context (srtp_update keeps the ROC) */
  {
    guint8 t2[TD_SRTP_MAX_KEY];
    srtp_policy_t p;

    td_srtp_random_key (SUITE, t2);
    td_relay_port_set_srtp (c.a, SUITE, c.ka_rx, t2);
    td_relay_sync (c.relay);
    phone_policy (&p, SUITE, t2, ssrc_any_inbound);
    g_assert_cmpint (srtp_update (c.from_a, &p), ==, srtp_err_status_ok);
    for (guint i = 0; i < 5; i++, seq++) {
      send_b (&c, seq, 0x4000 + i);
      g_assert_cmpuint (expect_continuous (&c, &k), ==, 0x4000 + i);
    }
  }
  expect_nothing (&c.pa, 50);
  get_stats (c.a, &st);
  g_assert_cmpuint (st.srtp_tx_failed, ==, 0);
  g_assert_cmpuint (k.n, >=, 34);
  call_clear (&c);
}

/* 7. rtcp-mux on the SRTP leg (and the plain one): SRTCP on A's RTP port both ways. */
static void
test_rtcp_mux (void)
{
  Call c;
  guint8 buf[2048];
  gsize len;
  gssize n;

  call_setup (&c);
  td_relay_port_drop_rtcp (c.a);
  td_relay_port_drop_rtcp (c.b);
  td_relay_sync (c.relay);
  /* A -> B: SRTCP then SRTP on the RTP port, clear at B */
  len = protect (c.to_a, buf, make_rtcp (buf, 0x11111111, 0xa1a1a1a1), TRUE);
  phone_send (&c.pa, td_relay_port_number (c.a), buf, len);
  send_to_a (&c, c.to_a, 1);
  n = phone_recv (&c.pb, WAIT_MS, buf, sizeof buf);
  g_assert_cmpint (n, ==, 12);
  g_assert_cmpuint (buf[1], ==, 201);
  g_assert_cmpuint (buf[8], ==, 0xa1);
  expect_at_b (&c, 1);
  /* B -> A: clear RTCP and RTP in, SRTCP and SRTP out */
  len = make_rtcp (buf, 0x22222222, 0xb1b1b1b1);
  phone_send (&c.pb, td_relay_port_number (c.b), buf, len);
  send_b (&c, 1, 0x77);
  len = recv_unprotect (&c.pa, c.from_a, buf, TRUE);
  g_assert_cmpuint (len, ==, 12);
  g_assert_cmpuint (buf[8], ==, 0xb1);
  len = recv_unprotect (&c.pa, c.from_a, buf, FALSE);
  g_assert_cmpuint (rtp_tag (buf), ==, 0x77);
  call_clear (&c);
}

/* 8. A mix member on SRTP hears the mix, protected. */
static void
test_mix_member (void)
{
  Call c;
  TdRelayMix *mix;
  guint8 buf[2048];
  gsize len;

  call_setup (&c);
  td_relay_disconnect (c.a);
  mix = td_relay_mix_new (c.relay);
  td_relay_port_join_mix (c.a, mix, TD_CODEC_PCMU, 0, TRUE);
  td_relay_port_join_mix (c.b, mix, TD_CODEC_PCMU, 0, TRUE);
  td_relay_sync (c.relay);
  for (guint16 seq = 1; seq <= 10; seq++) {
    send_b (&c, seq, 0x5555);
    g_usleep (20000);
  }
  for (guint i = 0; i < 5; i++) {
    len = recv_unprotect (&c.pa, c.from_a, buf, FALSE);
    g_assert_cmpuint (len, ==, RTP_LEN);
  }
  td_relay_mix_free (mix);
  call_clear (&c);
}

/* ---- a figure (-m perf): relay CPU per packet, SRTP<->RTP vs RTP<->RTP ---- */

/* utime + stime of the process's threads named `comm`, in clock ticks. */
static guint64
thread_ticks (const char *comm)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *tid;
  guint64 total = 0;

  while (dir && (tid = g_dir_read_name (dir))) {
    g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/stat", tid);
    g_autofree char *stat = NULL;
    char *p;
    guint64 ut, st;

    if (!g_file_get_contents (path, &stat, NULL, NULL))
      continue;
    p = strrchr (stat, ')');
    if (!p || strncmp (strchr (stat, '(') + 1, comm, strlen (comm)) != 0)
      continue;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %" G_GUINT64_FORMAT
                " %" G_GUINT64_FORMAT, &ut, &st) == 2)
      total += ut + st;
  }
  return total;
}

#define PERF_PAIRS 200
#define PERF_SECONDS 10

/* PERF_PAIRS calls, each A (SRTP or plain) <-> B (plain), both directions at
 * 50 pps for PERF_SECONDS; returns the relay thread's CPU µs per packet relayed. */
static double
perf_run (gboolean srtp)
{
  struct rlimit nofile;
  g_autoptr (GError) error = NULL;
  TdRelay *relay = td_relay_new_full ("127.0.0.1", PORT_MIN, PORT_MAX, 1, &error);
  TdRelayPort *a[PERF_PAIRS], *b[PERF_PAIRS];
  Phone pa[PERF_PAIRS], pb[PERF_PAIRS];
  srtp_t to_a[PERF_PAIRS];
  guint8 key[TD_SRTP_MAX_KEY], buf[2048];
  guint64 t0, t1, relayed = 0;
  gint64 start;
  guint rounds = PERF_SECONDS * 50;

  g_assert_no_error (error);
  /* 4 relay sockets and 2 phones a call */
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &nofile), ==, 0);
  nofile.rlim_cur = nofile.rlim_max;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &nofile), ==, 0);
  for (guint i = 0; i < PERF_PAIRS; i++) {
    a[i] = port_alloc (relay);
    b[i] = port_alloc (relay);
    pa[i] = phone_new ();
    pb[i] = phone_new ();
    /* The phones only send: what comes back is left to the kernel's buffers
     * (dropped when full; costs the relay the same). */
    td_relay_port_set_remote (a[i], "127.0.0.1", pa[i].port, 0);
    td_relay_port_set_remote (b[i], "127.0.0.1", pb[i].port, 0);
    td_srtp_random_key (SUITE, key);
    if (srtp)
      td_relay_port_set_srtp (a[i], SUITE, key, key);
    to_a[i] = session_new (key, ssrc_any_outbound);
    td_relay_connect (a[i], b[i]);
  }
  td_relay_sync (relay);
  t0 = thread_ticks ("td-relay");
  start = g_get_monotonic_time ();
  for (guint r = 0; r < rounds; r++) {
    gint64 due = start + (gint64) r * 20000;
    gint64 now = g_get_monotonic_time ();
    if (due > now)
      g_usleep ((gulong) (due - now));
    for (guint i = 0; i < PERF_PAIRS; i++) {
      gsize len = make_rtp (buf, 0x11111111 + i, (guint16) r, r * 160u, (guint16) r);
      if (srtp)
        len = protect (to_a[i], buf, len, FALSE);
      phone_send (&pa[i], td_relay_port_number (a[i]), buf, len);
      len = make_rtp (buf, 0x22222222 + i, (guint16) r, r * 160u, (guint16) r);
      phone_send (&pb[i], td_relay_port_number (b[i]), buf, len);
    }
    /* drain what the relay sends back, so that the kernel keeps sending it */
    for (guint i = 0; i < PERF_PAIRS; i++) {
      while (recv (pa[i].fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
      while (recv (pb[i].fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
    }
  }
  td_relay_sync (relay);
  t1 = thread_ticks ("td-relay");
  for (guint i = 0; i < PERF_PAIRS; i++) {
    TdRelayStats st;
    td_relay_port_get_stats (a[i], &st);
    relayed += st.tx_packets;
    td_relay_port_get_stats (b[i], &st);
    relayed += st.tx_packets;
    g_assert_cmpuint (st.srtp_auth_failed, ==, 0);
    td_relay_port_free (a[i]);
    td_relay_port_free (b[i]);
    phone_close (&pa[i]);
    phone_close (&pb[i]);
    srtp_dealloc (to_a[i]);
  }
  td_relay_free (relay);
  g_assert_cmpuint (relayed, >, 0);
  return (double) (t1 - t0) * 1e6 / (double) sysconf (_SC_CLK_TCK) / (double) relayed;
}

static void
test_perf (void)
{
  double plain = perf_run (FALSE), srtp = perf_run (TRUE);

  g_test_minimized_result (srtp, "relay CPU per packet, SRTP<->RTP: %.2f us (RTP<->RTP %.2f us)",
                           srtp, plain);
  g_test_message ("relay thread CPU per packet relayed: RTP<->RTP %.2f us, SRTP<->RTP %.2f us "
                  "(%u pairs x 2 directions x 50 pps x %u s)", plain, srtp, PERF_PAIRS,
                  PERF_SECONDS);
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
    { "srtp-to-rtp", test_srtp_to_rtp },
    { "rtp-to-srtp", test_rtp_to_srtp },
    { "suites", test_suites },
    { "rekey-aead", test_rekey_aead },
    { "plain-restart", test_plain_restart },
    { "replay", test_replay },
    { "forged", test_forged },
    { "stranger-cannot-latch", test_stranger_cannot_latch },
    { "rekey", test_rekey },
    { "continuity", test_continuity },
    { "rtcp-mux", test_rtcp_mux },
    { "mix-member", test_mix_member },
  };

  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);
  /* libsrtp's srtp_init() fails when called twice: the relay's, for the phones too */
  td_srtp_global_init ();
  g_main_context_default ();
  for (guint threads = 1; threads <= 2; threads++) {
    for (guint i = 0; i < G_N_ELEMENTS (tests); i++) {
      Case *c = g_new (Case, 1);
      g_autofree char *path = g_strdup_printf ("/srtp/%u-thread/%s", threads, tests[i].name);
      c->fn = tests[i].fn;
      c->threads = threads;
      g_test_add_data_func_full (path, c, run_case, g_free);
    }
  }
  if (g_test_perf ())
    g_test_add_func ("/srtp/perf/relay-cpu", test_perf);
  return g_test_run ();
}
