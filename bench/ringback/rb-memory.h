/* Memory per distinct tune and codec (see rb-memory.c). */
#pragma once

/* Loads generated 30 s and 3 min WAV tunes, prints the RSS each costs.
 * Returns the exit status. */
int rb_memory_run (void);
