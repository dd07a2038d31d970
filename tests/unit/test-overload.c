/* TdOverload: the shed decision, and the lag read from a real socket. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "td-overload.h"

#define MS 1000

static void
test_decision (void)
{
  const gint64 limit = 100 * MS;

  /* Below the threshold nothing is shed; from it on everything new is. */
  g_assert_cmpint (td_overload_decide (0, limit), ==, TD_OVERLOAD_NORMAL);
  g_assert_cmpint (td_overload_decide (99 * MS, limit), ==, TD_OVERLOAD_NORMAL);
  g_assert_cmpint (td_overload_decide (100 * MS, limit), ==, TD_OVERLOAD_SHEDDING);
  g_assert_cmpint (td_overload_decide (5000 * MS, limit), ==, TD_OVERLOAD_SHEDDING);
  /* Threshold 0: never, whatever the lag. */
  g_assert_cmpint (td_overload_decide (10 * 1000 * MS, 0), ==, TD_OVERLOAD_NORMAL);
}

static void
test_lag_of_waiting_datagram (void)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  int rx = socket (AF_INET, SOCK_DGRAM, 0), tx = socket (AF_INET, SOCK_DGRAM, 0);
  g_autoptr (TdOverload) o = NULL;
  g_autoptr (GError) error = NULL;
  char buf[16];
  gint64 lag;

  g_assert_cmpint (bind (rx, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  g_assert_cmpint (getsockname (rx, (struct sockaddr *) &sa, &len), ==, 0);
  o = td_overload_new ("127.0.0.1", ntohs (sa.sin_port), &error);
  g_assert_no_error (error);

  /* Nothing waits: no lag, nothing shed. */
  g_assert_cmpint (td_overload_lag_us (o), ==, 0);
  g_assert_false (td_overload_shed_new_work (o, 20));

  /* A datagram left unread for 60 ms is 60 ms of lag (the wait creates the
   * age being measured; it is not a race). The kernel turns receive stamps
   * on a little after the first socket in the system asks (deferred work);
   * a datagram that came before is stamped when first read, hence the
   * first peek right after sending. */
  g_assert_cmpint (sendto (tx, "INVITE", 6, 0, (struct sockaddr *) &sa, sizeof sa), ==, 6);
  g_assert_cmpint (td_overload_lag_us (o), <, 60 * MS);
  g_usleep (60 * MS);
  lag = td_overload_lag_us (o);
  g_assert_cmpint (lag, >=, 60 * MS);
  g_assert_cmpint (lag, <, 5000 * MS);
  g_assert_true (td_overload_shed_new_work (o, 20));
  g_assert_true (td_overload_shed_new_work (o, 20));
  g_assert_false (td_overload_shed_new_work (o, 0));   /* 0: never */

  /* Peeking took nothing: the owner still reads it, and then the lag is gone. */
  g_assert_cmpint (recv (rx, buf, sizeof buf, MSG_DONTWAIT), ==, 6);
  g_assert_cmpint (td_overload_lag_us (o), ==, 0);
  g_assert_false (td_overload_shed_new_work (o, 20));
  close (rx);
  close (tx);
}

static void
test_no_socket (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdOverload) o = td_overload_new ("127.0.0.1", 9, &error);
  g_assert_null (o);
  g_assert_nonnull (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Shedding starts with a g_warning for the operator: not a test failure. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK);
  g_test_add_func ("/overload/decision", test_decision);
  g_test_add_func ("/overload/lag-of-waiting-datagram", test_lag_of_waiting_datagram);
  g_test_add_func ("/overload/no-socket", test_no_socket);
  return g_test_run ();
}
