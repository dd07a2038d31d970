/* TdJitter, the mix input's jitter buffer: pure logic, driven packet by
 * packet and pop by pop (one pop = one 20 ms mix frame). Each packet's
 * payload is its frame number, so what comes out says which frame played. */
#include <string.h>

#include "td-jitter.h"

#define FT 160   /* G.711: 160 timestamp units per 20 ms */
#define SSRC 0x1234

typedef struct {
  TdJitter j;
  guint16 seq0;
  guint32 ts0;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  (void) data;
  td_jitter_init (&f->j, FT);
  /* near the wrap of both, so that every case crosses it */
  f->seq0 = 65530;
  f->ts0 = 0xFFFFFFFFu - 3 * FT;
}

static TdJitterPush
push_ssrc (Fixture *f, guint32 ssrc, guint frame)
{
  guint8 payload[4];
  memcpy (payload, &frame, sizeof frame);
  return td_jitter_push (&f->j, ssrc, (guint16) (f->seq0 + frame), f->ts0 + frame * FT, payload,
                         sizeof payload);
}

static TdJitterPush
push (Fixture *f, guint frame)
{
  return push_ssrc (f, SSRC, frame);
}

/* The frame number popped, or -1 (missing) / -2 (idle). */
static int
pop (Fixture *f)
{
  const guint8 *p;
  gsize len;
  guint frame;

  switch (td_jitter_pop (&f->j, &p, &len)) {
  case TD_JITTER_FRAME:
    g_assert_cmpuint (len, ==, sizeof frame);
    memcpy (&frame, p, sizeof frame);
    return (int) frame;
  case TD_JITTER_MISSING:
    return -1;
  case TD_JITTER_IDLE:
    return -2;
  }
  g_assert_not_reached ();
}

static void
test_in_order (Fixture *f, gconstpointer data)
{
  (void) data;
  g_assert_cmpint (pop (f), ==, -2);   /* nothing yet */
  for (guint i = 0; i < 20; i++) {
    g_assert_cmpint (push (f, i), ==, TD_JITTER_ACCEPTED);
    g_assert_cmpint (pop (f), ==, (int) i);   /* played at the next pop: no added delay */
  }
  g_assert_cmpuint (f->j.missing + f->j.late + f->j.resyncs, ==, 0);
}

static void
test_reorder (Fixture *f, gconstpointer data)
{
  (void) data;
  push (f, 0);
  g_assert_cmpint (pop (f), ==, 0);
  push (f, 2);   /* 2 before 1: 1 still plays first */
  push (f, 1);
  g_assert_cmpint (pop (f), ==, 1);
  g_assert_cmpint (pop (f), ==, 2);
  g_assert_cmpuint (f->j.late, ==, 0);
}

static void
test_loss (Fixture *f, gconstpointer data)
{
  (void) data;
  push (f, 0);
  g_assert_cmpint (pop (f), ==, 0);
  push (f, 2);   /* 1 lost */
  g_assert_cmpint (pop (f), ==, -1);
  g_assert_cmpint (pop (f), ==, 2);
  g_assert_cmpuint (f->j.missing, ==, 1);
}

static void
test_late (Fixture *f, gconstpointer data)
{
  (void) data;
  push (f, 0);
  g_assert_cmpint (pop (f), ==, 0);
  push (f, 2);
  push (f, 3);
  g_assert_cmpint (pop (f), ==, -1);   /* 1 is missing, concealed... */
  g_assert_cmpint (pop (f), ==, 2);
  /* ...and comes now: never played after a newer frame */
  g_assert_cmpint (push (f, 1), ==, TD_JITTER_LATE);
  g_assert_cmpint (pop (f), ==, 3);
  g_assert_cmpuint (f->j.late, ==, 1);
}

/* A packet one frame late into an empty buffer: the playout point steps
 * back to it (one frame of delay added), and the stream plays on with no
 * more loss though every packet now comes just after "its" pop. */
static void
test_stretch (Fixture *f, gconstpointer data)
{
  (void) data;
  push (f, 0);
  g_assert_cmpint (pop (f), ==, 0);
  g_assert_cmpint (pop (f), ==, -1);   /* 1 late */
  g_assert_cmpint (push (f, 1), ==, TD_JITTER_ACCEPTED);
  for (guint i = 2; i < 10; i++) {
    g_assert_cmpint (pop (f), ==, (int) i - 1);
    push (f, i);
  }
  g_assert_cmpuint (f->j.stretches, ==, 1);
  g_assert_cmpuint (f->j.late, ==, 0);
}

static void
test_duplicate (Fixture *f, gconstpointer data)
{
  (void) data;
  push (f, 0);
  push (f, 1);
  g_assert_cmpint (push (f, 1), ==, TD_JITTER_DUPLICATE);
  g_assert_cmpint (pop (f), ==, 0);
  g_assert_cmpint (push (f, 0), ==, TD_JITTER_LATE);   /* a duplicate of a frame played */
  g_assert_cmpint (pop (f), ==, 1);
  g_assert_cmpint (pop (f), ==, -1);
  g_assert_cmpuint (f->j.duplicates, ==, 1);
}

static void
test_ssrc_change (Fixture *f, gconstpointer data)
{
  (void) data;
  push (f, 0);
  push (f, 1);
  g_assert_cmpint (pop (f), ==, 0);
  /* A new source with unrelated numbers: played at once, the old one's
   * waiting frame forgotten. */
  f->seq0 = 100;
  f->ts0 = 5000000;
  g_assert_cmpint (push_ssrc (f, 0x9999, 7), ==, TD_JITTER_ACCEPTED);
  g_assert_cmpint (pop (f), ==, 7);
  g_assert_cmpint (push_ssrc (f, 0x9999, 8), ==, TD_JITTER_ACCEPTED);
  g_assert_cmpint (pop (f), ==, 8);
  g_assert_cmpuint (f->j.resyncs, ==, 1);
}

/* A timestamp jump (forward or backward) with the sequence moving on:
 * resync; the same jump with an old sequence number: a stray, dropped. */
static void
test_jump (Fixture *f, gconstpointer data)
{
  (void) data;
  push (f, 0);
  g_assert_cmpint (pop (f), ==, 0);
  g_assert_cmpint (td_jitter_push (&f->j, SSRC, (guint16) (f->seq0 + 1), f->ts0 + 8000 * 60,
                                   (const guint8 *) "\x2a\0\0\0", 4), ==, TD_JITTER_ACCEPTED);
  g_assert_cmpint (pop (f), ==, 42);
  g_assert_cmpint (td_jitter_push (&f->j, SSRC, (guint16) (f->seq0 + 2), f->ts0 - 8000 * 60,
                                   (const guint8 *) "\x2b\0\0\0", 4), ==, TD_JITTER_ACCEPTED);
  g_assert_cmpint (pop (f), ==, 43);
  g_assert_cmpint (td_jitter_push (&f->j, SSRC, f->seq0, f->ts0 + 8000 * 30,
                                   (const guint8 *) "\x2c\0\0\0", 4), ==, TD_JITTER_LATE);
  g_assert_cmpuint (f->j.resyncs, ==, 2);
}

/* However packets bunch up (a sender's burst after a stall), no more than
 * TD_JITTER_MAX_FRAMES wait: the oldest go. */
static void
test_bounded_delay (Fixture *f, gconstpointer data)
{
  (void) data;
  for (guint i = 0; i < 7; i++)
    g_assert_cmpint (push (f, i), ==, TD_JITTER_ACCEPTED);
  g_assert_cmpuint (td_jitter_depth (&f->j), ==, TD_JITTER_MAX_FRAMES);
  g_assert_cmpint (pop (f), ==, 7 - TD_JITTER_MAX_FRAMES);
  g_assert_cmpuint (f->j.overflows, ==, 7 - TD_JITTER_MAX_FRAMES);
  /* and late arrivals cannot stretch it beyond the bound either */
  for (guint round = 0; round < 10; round++) {
    g_assert_cmpuint (td_jitter_depth (&f->j), <=, TD_JITTER_MAX_FRAMES);
    pop (f);
  }
}

/* Packets a frame early for a while (delay larger than needed): after
 * TD_JITTER_SHRINK_POPS pops one frame is skipped, once. */
static void
test_shrink (Fixture *f, gconstpointer data)
{
  guint i = 0, skipped = 0;
  int expect = 0;

  (void) data;
  push (f, i++);
  push (f, i++);
  for (guint n = 0; n < TD_JITTER_SHRINK_POPS + 20; n++) {
    int got = pop (f);
    g_assert_cmpint (got, >=, expect);
    skipped += (guint) (got - expect);
    expect = got + 1;
    push (f, i++);
  }
  g_assert_cmpuint (skipped, ==, 1);
  g_assert_cmpuint (f->j.shrinks, ==, 1);
}

/* A party that stops: a few frames concealed, then idle (silence); its
 * next packet starts afresh, played at once. */
static void
test_idle (Fixture *f, gconstpointer data)
{
  (void) data;
  push (f, 0);
  g_assert_cmpint (pop (f), ==, 0);
  for (guint n = 0; n < TD_JITTER_IDLE_POPS; n++)
    g_assert_cmpint (pop (f), ==, -1);
  g_assert_cmpint (pop (f), ==, -2);
  g_assert_cmpint (pop (f), ==, -2);
  push (f, 3);   /* sender's clock did not move while it was silent */
  g_assert_cmpint (pop (f), ==, 3);
  push (f, 4);
  g_assert_cmpint (pop (f), ==, 4);
  g_assert_cmpuint (f->j.resyncs, ==, 1);
}

static void
test_too_big (Fixture *f, gconstpointer data)
{
  static guint8 big[TD_JITTER_MAX_PAYLOAD + 1];
  (void) data;
  g_assert_cmpint (td_jitter_push (&f->j, SSRC, 1, 160, big, sizeof big), ==, TD_JITTER_TOO_BIG);
  g_assert_cmpint (pop (f), ==, -2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/jitter/" name, Fixture, NULL, setup, fn, NULL)
  ADD ("in-order", test_in_order);
  ADD ("reorder", test_reorder);
  ADD ("loss", test_loss);
  ADD ("late", test_late);
  ADD ("stretch", test_stretch);
  ADD ("duplicate", test_duplicate);
  ADD ("ssrc-change", test_ssrc_change);
  ADD ("jump", test_jump);
  ADD ("bounded-delay", test_bounded_delay);
  ADD ("shrink", test_shrink);
  ADD ("idle", test_idle);
  ADD ("too-big", test_too_big);
  return g_test_run ();
}
