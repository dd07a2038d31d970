/* The floor: a bare 20 ms timer loop sending RTP (see rb-bare.c). */
#pragma once

#include <glib.h>
#include <netinet/in.h>

typedef struct {
  guint n;                     /* receivers */
  const struct sockaddr_in *dest;
  guint ticks;                 /* how many 20 ms ticks it runs: bounded */
  gint64 start_mono_ns;        /* CLOCK_MONOTONIC of its first tick (the grid); 0: at once */
  /* set by the thread */
  guint64 sent;
  gint64 cpu_ns;
} RbBare;

/* Starts the loop's thread, pinned to cpu0 beside the relay thread;
 * join it with g_thread_join. */
GThread *rb_bare_start (RbBare *bare);
