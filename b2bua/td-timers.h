/* TdTimers: the calls' one-shot timers (no answer, RTP silence, session
 * refresh, ring timeouts) under one GSource. A GSource per timer made every
 * main-loop pass visit every call's timers (GLib's prepare and check walk
 * all sources): the cost of a SIP message grew with the calls in progress.
 * Here a binary heap keeps them by deadline and the one source wakes for
 * the earliest. Main thread only. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TdTimers TdTimers;
typedef struct _TdTimer TdTimer;

/* Called once, from the main loop; the timer is gone by then, so the
 * callback must forget its handle (set it to NULL) before anything else. */
typedef void (*TdTimerFunc) (gpointer data);

/* Attached to `context` (NULL: the default one), as g_timeout_add does. */
TdTimers *td_timers_new (GMainContext *context);
void td_timers_free (TdTimers *timers);

/* Fires after `delay_ms` milliseconds; timers due together fire in the
 * order they were added. */
TdTimer *td_timers_add (TdTimers *timers, guint delay_ms, TdTimerFunc func, gpointer data);

/* Cancels *timer if set, and sets it to NULL. */
void td_timer_clear (TdTimer **timer);

guint td_timers_count (const TdTimers *timers);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdTimers, td_timers_free)

G_END_DECLS
