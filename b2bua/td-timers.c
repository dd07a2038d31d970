/* TdTimers: a binary min-heap of deadlines behind one GSource (td-timers.h).
 * Each timer knows its slot in the heap, so cancelling one (a call ending
 * with its half-hour session timer armed) takes it out at once instead of
 * leaving it to linger until its deadline. */
#include "td-timers.h"

#define FIRING G_MAXUINT   /* a timer whose callback is running: out of the heap */

struct _TdTimer {
  TdTimers *owner;
  gint64 due;            /* monotonic, µs */
  guint64 seq;           /* ties: the order of td_timers_add */
  guint slot;            /* index in owner->heap, or FIRING */
  TdTimerFunc func;
  gpointer data;
};

typedef struct {
  GSource source;
  TdTimers *timers;
} TimerSource;

struct _TdTimers {
  TimerSource *source;
  GPtrArray *heap;       /* TdTimer*, heap[0] the earliest */
  guint64 next_seq;
};

static gboolean
earlier (const TdTimer *a, const TdTimer *b)
{
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static inline TdTimer *
at (const TdTimers *t, guint i)
{
  return g_ptr_array_index (t->heap, i);
}

static void
place (TdTimers *t, guint i, TdTimer *timer)
{
  t->heap->pdata[i] = timer;
  timer->slot = i;
}

static void
sift_up (TdTimers *t, guint i)
{
  TdTimer *timer = at (t, i);

  while (i > 0 && earlier (timer, at (t, (i - 1) / 2))) {
    place (t, i, at (t, (i - 1) / 2));
    i = (i - 1) / 2;
  }
  place (t, i, timer);
}

static void
sift_down (TdTimers *t, guint i)
{
  TdTimer *timer = at (t, i);
  guint n = t->heap->len;

  for (;;) {
    guint child = 2 * i + 1;
    if (child >= n)
      break;
    if (child + 1 < n && earlier (at (t, child + 1), at (t, child)))
      child++;
    if (!earlier (at (t, child), timer))
      break;
    place (t, i, at (t, child));
    i = child;
  }
  place (t, i, timer);
}

/* Takes the timer in slot i out of the heap. */
static void
take_out (TdTimers *t, guint i)
{
  TdTimer *last = g_ptr_array_steal_index_fast (t->heap, t->heap->len - 1);

  if (i < t->heap->len) {
    /* the last one fills the hole, then moves whichever way it must */
    place (t, i, last);
    sift_down (t, i);
    sift_up (t, last->slot);
  }
}

static void
wake_for_earliest (TdTimers *t)
{
  g_source_set_ready_time (&t->source->source, t->heap->len ? at (t, 0)->due : -1);
}

static gboolean
dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  TdTimers *t = ((TimerSource *) source)->timers;
  gint64 now = g_source_get_time (source);
  /* Only timers already there: one re-armed at 0 ms by its own callback
   * waits for the next pass instead of spinning here. */
  guint64 before = t->next_seq;

  while (t->heap->len && at (t, 0)->due <= now && at (t, 0)->seq < before) {
    TdTimer *timer = at (t, 0);

    take_out (t, 0);
    timer->slot = FIRING;
    timer->func (timer->data);
    g_free (timer);
  }
  wake_for_earliest (t);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_source_funcs = { .dispatch = dispatch };

TdTimers *
td_timers_new (GMainContext *context)
{
  TdTimers *t = g_new0 (TdTimers, 1);

  t->heap = g_ptr_array_new ();
  t->source = (TimerSource *) g_source_new (&timer_source_funcs, sizeof (TimerSource));
  t->source->timers = t;
  g_source_set_name (&t->source->source, "tandem timers");
  g_source_attach (&t->source->source, context);
  return t;
}

void
td_timers_free (TdTimers *t)
{
  if (!t)
    return;
  g_source_destroy (&t->source->source);
  g_source_unref (&t->source->source);
  for (guint i = 0; i < t->heap->len; i++)
    g_free (at (t, i));
  g_ptr_array_unref (t->heap);
  g_free (t);
}

TdTimer *
td_timers_add (TdTimers *t, guint delay_ms, TdTimerFunc func, gpointer data)
{
  TdTimer *timer = g_new (TdTimer, 1);

  *timer = (TdTimer) { .owner = t, .due = g_get_monotonic_time () + (gint64) delay_ms * 1000,
                       .seq = t->next_seq++, .func = func, .data = data };
  g_ptr_array_add (t->heap, timer);
  sift_up (t, t->heap->len - 1);
  if (timer->slot == 0)
    wake_for_earliest (t);
  return timer;
}

void
td_timer_clear (TdTimer **timer)
{
  TdTimer *timer_ = *timer;
  TdTimers *t;
  gboolean was_first;

  if (!timer_)
    return;
  *timer = NULL;
  if (timer_->slot == FIRING)
    return;   /* its callback runs now: dispatch frees it */
  t = timer_->owner;
  was_first = timer_->slot == 0;
  take_out (t, timer_->slot);
  g_free (timer_);
  if (was_first)
    wake_for_earliest (t);
}

guint
td_timers_count (const TdTimers *t)
{
  return t->heap->len;
}
