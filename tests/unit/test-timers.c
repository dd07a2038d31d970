/* TdTimers: deadline order, ties in the order added, cancelling (also from
 * inside a callback), a callback re-arming itself at 0 ms, and the heap
 * against a sorted list for random deadlines and cancellations. Delays are
 * a few milliseconds: the tests check order, never durations. */
#include "td-timers.h"

typedef struct {
  TdTimers *timers;
  GArray *fired;        /* int tags, in firing order */
  TdTimer *handles[64];
  guint rearms;         /* for on_rearm */
} World;

typedef struct {
  World *w;
  int tag;
} Tag;

static void
on_fire (gpointer data)
{
  Tag *t = data;
  t->w->handles[t->tag] = NULL;
  g_array_append_val (t->w->fired, t->tag);
}

static void
run_until (World *w, guint n)
{
  gint64 give_up = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (w->fired->len < n && g_get_monotonic_time () < give_up)
    g_main_context_iteration (NULL, TRUE);
}

static void
world_init (World *w)
{
  *w = (World) { .timers = td_timers_new (NULL), .fired = g_array_new (FALSE, FALSE, sizeof (int)) };
}

static void
world_clear (World *w)
{
  td_timers_free (w->timers);
  g_array_unref (w->fired);
}

static void
test_order (void)
{
  World w;
  Tag tags[5];
  const guint delays[5] = { 30, 10, 20, 10, 0 };
  const int expected[5] = { 4, 1, 3, 2, 0 };

  world_init (&w);
  for (int i = 0; i < 5; i++) {
    tags[i] = (Tag) { &w, i };
    w.handles[i] = td_timers_add (w.timers, delays[i], on_fire, &tags[i]);
  }
  g_assert_cmpuint (td_timers_count (w.timers), ==, 5);
  run_until (&w, 5);
  g_assert_cmpuint (w.fired->len, ==, 5);
  for (int i = 0; i < 5; i++)
    g_assert_cmpint (g_array_index (w.fired, int, i), ==, expected[i]);
  g_assert_cmpuint (td_timers_count (w.timers), ==, 0);
  world_clear (&w);
}

static void
test_cancel (void)
{
  World w;
  Tag tags[6];

  world_init (&w);
  for (int i = 0; i < 6; i++) {
    tags[i] = (Tag) { &w, i };
    w.handles[i] = td_timers_add (w.timers, 5 + 2 * i, on_fire, &tags[i]);
  }
  td_timer_clear (&w.handles[0]);   /* the earliest */
  td_timer_clear (&w.handles[3]);
  td_timer_clear (&w.handles[5]);   /* the last */
  td_timer_clear (&w.handles[5]);   /* NULL now: nothing */
  g_assert_null (w.handles[0]);
  g_assert_cmpuint (td_timers_count (w.timers), ==, 3);
  run_until (&w, 3);
  /* nothing else comes */
  for (int i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (w.fired->len, ==, 3);
  g_assert_cmpint (g_array_index (w.fired, int, 0), ==, 1);
  g_assert_cmpint (g_array_index (w.fired, int, 1), ==, 2);
  g_assert_cmpint (g_array_index (w.fired, int, 2), ==, 4);
  world_clear (&w);
}

/* A callback that cancels another timer due at the same time, and one that
 * clears its own (already firing) handle. */
static void
on_fire_cancel_next (gpointer data)
{
  Tag *t = data;
  World *w = t->w;
  TdTimer *self = w->handles[t->tag];

  td_timer_clear (&w->handles[t->tag]);    /* firing: only forgotten */
  g_assert_nonnull (self);
  td_timer_clear (&w->handles[t->tag + 1]);
  g_array_append_val (w->fired, t->tag);
}

static void
test_cancel_from_callback (void)
{
  World w;
  Tag tags[3];

  world_init (&w);
  for (int i = 0; i < 3; i++)
    tags[i] = (Tag) { &w, i };
  w.handles[0] = td_timers_add (w.timers, 0, on_fire_cancel_next, &tags[0]);
  w.handles[1] = td_timers_add (w.timers, 0, on_fire, &tags[1]);
  w.handles[2] = td_timers_add (w.timers, 1, on_fire, &tags[2]);
  run_until (&w, 2);
  g_assert_cmpuint (w.fired->len, ==, 2);
  g_assert_cmpint (g_array_index (w.fired, int, 0), ==, 0);
  g_assert_cmpint (g_array_index (w.fired, int, 1), ==, 2);
  world_clear (&w);
}

static void
on_rearm (gpointer data)
{
  World *w = data;
  w->handles[0] = NULL;
  if (++w->rearms < 3)
    w->handles[0] = td_timers_add (w->timers, 0, on_rearm, w);
}

/* Re-armed at 0 ms from its own callback: once per main-loop pass. */
static void
test_rearm_waits_for_next_pass (void)
{
  World w;

  world_init (&w);
  w.handles[0] = td_timers_add (w.timers, 0, on_rearm, &w);
  while (w.rearms == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (w.rearms, ==, 1);
  g_assert_nonnull (w.handles[0]);
  while (w.rearms < 3)
    g_main_context_iteration (NULL, TRUE);
  g_assert_null (w.handles[0]);
  g_assert_cmpuint (td_timers_count (w.timers), ==, 0);
  world_clear (&w);
}

/* Random deadlines, half cancelled at random: what fires is the rest, in
 * (deadline, order added). */
static void
test_random (void)
{
  World w;
  Tag tags[64];
  guint delays[64];
  gboolean cancelled[64] = { FALSE };
  GRand *rand = g_rand_new_with_seed (4475);
  guint n_left = 0;

  world_init (&w);
  for (int i = 0; i < 64; i++) {
    tags[i] = (Tag) { &w, i };
    delays[i] = (guint) g_rand_int_range (rand, 0, 8) * 3;
    w.handles[i] = td_timers_add (w.timers, delays[i], on_fire, &tags[i]);
  }
  for (int i = 0; i < 64; i++)
    if (g_rand_boolean (rand)) {
      td_timer_clear (&w.handles[i]);
      cancelled[i] = TRUE;
    } else {
      n_left++;
    }
  g_assert_cmpuint (td_timers_count (w.timers), ==, n_left);
  run_until (&w, n_left);
  g_assert_cmpuint (w.fired->len, ==, n_left);
  for (guint k = 0; k < w.fired->len; k++) {
    int i = g_array_index (w.fired, int, k);
    g_assert_false (cancelled[i]);
    if (k > 0) {
      int p = g_array_index (w.fired, int, k - 1);
      g_assert_true (delays[p] < delays[i] || (delays[p] == delays[i] && p < i));
    }
  }
  g_rand_free (rand);
  world_clear (&w);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/timers/order", test_order);
  g_test_add_func ("/timers/cancel", test_cancel);
  g_test_add_func ("/timers/cancel-from-callback", test_cancel_from_callback);
  g_test_add_func ("/timers/rearm-waits-for-next-pass", test_rearm_waits_for_next_pass);
  g_test_add_func ("/timers/random", test_random);
  return g_test_run ();
}
