/* churn-bench: what allocating and freeing relay ports costs the SIP thread.
 *
 * Calls arrive at RATE per second, each taking two ports (its legs),
 * connecting them and freeing both HOLD ms later, as tandem does; no RTP. The
 * main thread's own CPU time (RUSAGE_THREAD) is what the SIP thread would
 * spend; the process's minus that is the media threads'. Reported after
 * WARMUP seconds, once freed pairs have cooled down and come back (the pool's
 * steady state), per call.
 *   churn-bench [RATE=400] [SECONDS=10] [HOLD_MS=1000] [WARMUP=7]
 * Ports 40000-49999 on 127.0.0.1 (5,000 pairs, like the sample's range). */
#include "td-relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
  TdRelayPort *a, *b;
  gint64 until;
} Call;

static gint64
cpu_us (int who)
{
  struct rusage ru;

  getrusage (who, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * G_USEC_PER_SEC + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

static TdRelayPort *
alloc_port (TdRelay *relay)
{
  g_autoptr (GError) error = NULL;
  TdRelayPort *port = td_relay_port_alloc (relay, &error);

  if (!port)
    g_error ("churn-bench: %s", error->message);
  return port;
}

int
main (int argc, char **argv)
{
  guint rate = argc > 1 ? (guint) atoi (argv[1]) : 400;
  guint seconds = argc > 2 ? (guint) atoi (argv[2]) : 10;
  guint hold_ms = argc > 3 ? (guint) atoi (argv[3]) : 1000;
  guint warmup = argc > 4 ? (guint) atoi (argv[4]) : 7;
  g_autoptr (GError) error = NULL;
  struct rlimit rl;
  TdRelay *relay;
  GQueue live = G_QUEUE_INIT;
  gint64 start, next, stop, measure_from, main0 = 0, proc0 = 0, wall0 = 0;
  guint64 n = 0, measured = 0;
  gboolean measuring = FALSE;

  /* as tandem does (main.c): all the descriptors the kernel allows */
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit (RLIMIT_NOFILE, &rl);
  }
  relay = td_relay_new_full ("127.0.0.1", 40000, 49999, 1, &error);

  if (!relay || rate == 0 || seconds == 0)
    g_error ("churn-bench: %s", error ? error->message : "RATE and SECONDS must be > 0");
  start = next = g_get_monotonic_time ();
  measure_from = start + warmup * G_USEC_PER_SEC;
  stop = measure_from + seconds * G_USEC_PER_SEC;
  while (next < stop) {
    gint64 now = g_get_monotonic_time ();
    Call *c;

    if (!measuring && now >= measure_from) {
      measuring = TRUE;
      main0 = cpu_us (RUSAGE_THREAD);
      proc0 = cpu_us (RUSAGE_SELF);
      wall0 = now;
    }
    while ((c = g_queue_peek_head (&live)) && c->until <= now) {
      g_queue_pop_head (&live);
      td_relay_port_free (c->a);
      td_relay_port_free (c->b);
      g_free (c);
    }
    if (now < next) {
      g_usleep (MIN (next - now, 1000));
      continue;
    }
    c = g_new (Call, 1);
    c->a = alloc_port (relay);
    c->b = alloc_port (relay);
    td_relay_connect (c->a, c->b);
    c->until = now + hold_ms * (gint64) 1000;
    g_queue_push_tail (&live, c);
    n++;
    measured += measuring;
    next = start + (gint64) (n * G_USEC_PER_SEC / rate);
  }
  {
    gint64 main_us = cpu_us (RUSAGE_THREAD) - main0;
    gint64 proc_us = cpu_us (RUSAGE_SELF) - proc0;
    double wall_s = (g_get_monotonic_time () - wall0) / 1e6;

    printf ("calls %" G_GUINT64_FORMAT " (%.0f/s)  main %.2f us/call  media %.2f us/call  "
            "parked %u\n",
            measured, measured / wall_s, (double) main_us / measured,
            (double) (proc_us - main_us) / measured, td_relay_parked_count (relay));
  }
  while (!g_queue_is_empty (&live)) {
    Call *c = g_queue_pop_head (&live);
    td_relay_port_free (c->a);
    td_relay_port_free (c->b);
    g_free (c);
  }
  td_relay_free (relay);
  return 0;
}
