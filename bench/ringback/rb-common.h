/* Pieces the ringback bench's three measurements share: loopback sockets
 * that carry their kernel receive time, samples and percentiles, and the
 * /proc readings for a thread's CPU and the process's memory. */
#pragma once

#include <glib.h>
#include <netinet/in.h>
#include <sys/types.h>

#include "td-relay.h"

#define RB_FRAME_NS 20000000LL   /* one 20 ms frame */

typedef struct {
  guint16 port_min, port_max;    /* the relay's range */
  gboolean pin;                  /* relay thread on cpu0, the bench's threads on cpu1 */
  gboolean spin;                 /* receivers poll without sleeping */
  int nice;                      /* for the relay thread (and the bare loop), 0: unchanged */
  TdCodec codec;                 /* the tune's (and the callee's) codec */
  gboolean new_ssrc;             /* switch: td_relay_port_set_new_ssrc_on_switch on the caller's port */
} RbOptions;

extern RbOptions rb_opt;

gint64 rb_now_ns (clockid_t clock);
/* CLOCK_REALTIME, the clock SO_TIMESTAMPNS stamps with. */
gint64 rb_wall_ns (void);
void rb_sleep_until (gint64 wall_ns);

/* Pins thread `tid` (0 = the caller) to `cpu` when rb_opt.pin. */
void rb_pin (pid_t tid, int cpu);
pid_t rb_gettid (void);

struct sockaddr_in rb_loopback (guint16 port);
/* A non-blocking UDP socket on 127.0.0.1 (port 0: any) with SO_TIMESTAMPNS
 * and `rcvbuf` bytes of receive buffer (0: the default). */
int rb_udp_socket (guint16 port, int rcvbuf, guint16 *bound);

/* One received datagram and the kernel's receive time (CLOCK_REALTIME ns). */
typedef struct {
  guint8 data[512];
  gssize len;
  gint64 arrival_ns;
} RbPacket;

/* Reads up to `max` waiting datagrams of `fd` into `out`; returns how many. */
guint rb_receive (int fd, RbPacket *out, guint max);

/* An RTP header's fields. */
typedef struct {
  guint8 pt;
  gboolean marker;
  guint16 seq;
  guint32 ts, ssrc;
} RbRtp;

gboolean rb_rtp_parse (const RbPacket *p, RbRtp *out);

/* Samples (ns) and their percentiles. */
typedef struct {
  GArray *v;   /* gint64 */
  gboolean sorted;
} RbSamples;

void rb_samples_init (RbSamples *s);
void rb_samples_clear (RbSamples *s);
void rb_samples_add (RbSamples *s, gint64 ns);
/* q in [0, 1]; 1 = the maximum. 0 when empty. */
gint64 rb_samples_quantile (RbSamples *s, double q);
/* "p50 A  p99 B  max C ms (N samples)" */
void rb_samples_print_ms (RbSamples *s, const char *label);

/* The relay's media thread(s): TIDs of the threads named "td-relay*". */
GArray *rb_relay_threads (void);
/* CPU time a thread has run, ns (/proc/self/task/TID/schedstat, else the
 * stat ticks). */
gint64 rb_thread_cpu_ns (pid_t tid);
gint64 rb_rss_kb (void);

/* Busy (user..softirq) and total jiffies of one CPU from /proc/stat. */
void rb_cpu_jiffies (int cpu, gint64 *busy, gint64 *total);

/* A relay on 127.0.0.1 over rb_opt's range, its thread pinned to cpu0. */
TdRelay *rb_relay_new (void);

/* The payload type the bench gives `codec`: its static one, 111 for Opus. */
guint8 rb_codec_pt (TdCodec codec);
/* The tune the callers hear: the generated ETSI ringing tone ("tone:eu",
 * 425 Hz, 1 s on, 4 s off), in every codec; exits if it lacks rb_opt.codec. */
TdTune *rb_ringback_tune (void);

/* Raises the soft limit on open files to the hard one; FALSE if that stays
 * below `need`. */
gboolean rb_raise_nofile (guint need);
