/* The floor of tune pacing on this machine: one thread on the relay's core,
 * a timerfd on the same absolute 20 ms grid as the relay's, and one plain
 * sendto of a 172-byte RTP packet per receiver per tick, no other work. Its
 * receivers' jitter, measured in the same run as the relay's, shows what
 * the VM's timer wake-ups and co-tenants cost any 20 ms sender. Its grid is
 * set half a tick after the relay's, so that it wakes while the relay
 * sleeps: it then waits for the relay's burst only when that overruns. */
#define G_LOG_DOMAIN "ringback-bench"

#include "rb-bare.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "rb-common.h"

static void
send_frame (RbBare *b, int fd, guint i, guint16 seq)
{
  guint8 pkt[12 + 160] = { 0x80, 0x00 };
  guint32 ts = (guint32) seq * 160u, ssrc = 0xBA5E0000u + i;

  pkt[2] = (guint8) (seq >> 8);
  pkt[3] = (guint8) seq;
  for (int k = 0; k < 4; k++) {
    pkt[4 + k] = (guint8) (ts >> (24 - 8 * k));
    pkt[8 + k] = (guint8) (ssrc >> (24 - 8 * k));
  }
  memset (pkt + 12, 0xff, 160);   /* µ-law silence */
  if (sendto (fd, pkt, sizeof pkt, 0, (const struct sockaddr *) &b->dest[i], sizeof b->dest[i]) ==
      sizeof pkt)
    b->sent++;
}

static gpointer
bare_thread (gpointer data)
{
  RbBare *b = data;
  int fd = rb_udp_socket (0, 0, NULL);
  int tfd = timerfd_create (CLOCK_MONOTONIC, TFD_CLOEXEC);
  struct itimerspec its = { .it_interval.tv_nsec = RB_FRAME_NS };
  guint16 seq = 0;

  rb_pin (0, 0);
  if (rb_opt.nice)   /* as the relay thread's, for a fair floor */
    setpriority (PRIO_PROCESS, (id_t) rb_gettid (), rb_opt.nice);
  if (b->start_mono_ns) {
    its.it_value.tv_sec = b->start_mono_ns / 1000000000LL;
    its.it_value.tv_nsec = b->start_mono_ns % 1000000000LL;
  } else {
    its.it_value.tv_nsec = 1;
  }
  if (tfd < 0 || timerfd_settime (tfd, b->start_mono_ns ? TFD_TIMER_ABSTIME : 0, &its, NULL) < 0)
    g_error ("timerfd: %s", g_strerror (errno));
  for (guint t = 0; t < b->ticks; t++) {
    guint64 due;
    if (read (tfd, &due, sizeof due) != sizeof due)
      g_error ("timerfd read: %s", g_strerror (errno));
    for (guint i = 0; i < b->n; i++)
      send_frame (b, fd, i, seq);
    seq++;
  }
  close (tfd);
  close (fd);
  b->cpu_ns = rb_now_ns (CLOCK_THREAD_CPUTIME_ID);
  return NULL;
}

GThread *
rb_bare_start (RbBare *bare)
{
  return g_thread_new ("bare-loop", bare_thread, bare);
}
