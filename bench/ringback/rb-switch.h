/* The answer switch, measured at the caller's receiver (see rb-switch.c). */
#pragma once

#include <glib.h>

typedef enum {
  RB_SWITCH_STOP,         /* td_relay_port_stop() on the callee's FIRST_PACKET event */
  RB_SWITCH_UNTIL_PEER,   /* td_relay_port_play_until_peer() */
} RbSwitchMode;

/* `switches` calls answer one after the other while `background` more
 * callers hear ringback; prints the gap, clipping and continuity. Returns
 * the exit status. */
int rb_switch_run (guint switches, guint background, RbSwitchMode mode);
