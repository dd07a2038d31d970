/* Pacing: N callers hearing ringback at once (see rb-pacing.c). */
#pragma once

#include <glib.h>

/* Plays a tune to `callers` receivers for a warm-up and `duration` s, prints
 * loss, pacing jitter and the relay thread's CPU. `sample` > 1: only every
 * sample-th caller's receiver reads (see rb-pacing.c). Returns the exit
 * status. */
int rb_pacing_run (guint callers, guint duration, guint sample);
