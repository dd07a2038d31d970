/* Relay events (td-relay.h, "events"): from the media threads to the main
 * context, and the idle check that produces IDLE.
 *
 * Why one queue and a GSource woken by ready time: a worker collects its
 * events in its own array during one loop iteration (no lock on the packet
 * path), appends them to the relay's queue under one lock at the end of the
 * iteration, and wakes the main context only when the queue was empty —
 * g_source_set_ready_time() is thread-safe and wakes the context only when
 * the ready time changes, so a burst costs one wake-up, and no source is
 * created per event (g_main_context_invoke would allocate one each time).
 * The main thread clears the ready time before it takes the queue, so an
 * event appended after the take finds the queue empty and wakes it again:
 * none is left behind.
 *
 * Why pair + id and no pointer: an event may still be queued when the main
 * thread frees its port, and the worker frees the memory soon after. The
 * main thread keeps, per pair, the port allocated on it and not yet freed
 * (by_pair); an event names its port by pair and by the id the port got at
 * allocation, and is delivered only if that port is still there. Events of
 * a freed port, or of an earlier port on the same pair, are dropped without
 * touching any freed memory.
 *
 * The mutex is a pthread one for ThreadSanitizer, as the command queue's
 * (td-relay-worker.c). */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define IDLE_CHECK_NS ((long) TD_RELAY_IDLE_CHECK_MS * 1000 * 1000)

typedef struct {
  GSource source;
  TdRelay *relay;
} EventSource;

/* ---- main thread ---- */

static void
format_address (const Addr *a, TdRelayEvent *ev)
{
  const void *ip = a->sa.sa_family == AF_INET ? (const void *) &a->in.sin_addr
                                               : (const void *) &a->in6.sin6_addr;

  if (!inet_ntop (a->sa.sa_family, ip, ev->address, sizeof ev->address))
    ev->address[0] = '\0';
  ev->address_port = ntohs (a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

static void
deliver (TdRelay *relay, const RelayEvent *e)
{
  TdRelayPort *port = relay->by_pair[e->pair];
  TdRelayEvent ev = { .kind = e->kind, .time_us = e->time_us };

  if (!port || port->id != e->id)
    return;   /* freed, or a later port on the pair */
  if (e->kind == TD_RELAY_EVENT_TUNE_ENDED) {
    /* Stopped or replaced since the peer ended it: not news any more. */
    if (!port->playing || port->play_gen != e->play_gen)
      return;
    port->playing = FALSE;
  }
  if (!port->event_func)
    return;   /* no longer wanted */
  if (e->kind == TD_RELAY_EVENT_LATCHED)
    format_address (&e->address, &ev);
  else if (e->kind == TD_RELAY_EVENT_IDLE || e->kind == TD_RELAY_EVENT_ACTIVE)
    port->idle_told = e->kind == TD_RELAY_EVENT_IDLE;
  port->event_func (port, &ev, port->event_data);
}

static gboolean
dispatch_events (GSource *source, GSourceFunc callback, gpointer data)
{
  TdRelay *relay = ((EventSource *) source)->relay;
  GArray *batch;

  /* Before the take: see the top. */
  g_source_set_ready_time (source, -1);
  pthread_mutex_lock (&relay->event_lock);
  batch = relay->events;
  relay->events = relay->delivering;
  pthread_mutex_unlock (&relay->event_lock);
  relay->delivering = batch;
  /* by_pair is read afresh for each event: a func may free ports. */
  for (guint i = 0; i < batch->len; i++)
    deliver (relay, &g_array_index (batch, RelayEvent, i));
  g_array_set_size (batch, 0);
  td_relay_worker_signal_pending (relay);   /* what the funcs asked for */
  return G_SOURCE_CONTINUE;
}

/* Before the main loop polls (and after what it dispatched): the commands
 * of this pass wake the media threads now, one eventfd write per worker
 * (td_relay_set_defer_signals). */
static gboolean
prepare_events (GSource *source, gint *timeout)
{
  TdRelay *relay = ((EventSource *) source)->relay;

  td_relay_worker_signal_pending (relay);
  *timeout = -1;
  return FALSE;
}

static GSourceFuncs event_source_funcs = {
  .prepare = prepare_events,
  .dispatch = dispatch_events,
};

void
td_relay_events_init (TdRelay *relay)
{
  relay->context = g_main_context_ref_thread_default ();
  relay->event_source = g_source_new (&event_source_funcs, sizeof (EventSource));
  ((EventSource *) relay->event_source)->relay = relay;
  g_source_set_name (relay->event_source, "td-relay events");
  g_source_attach (relay->event_source, relay->context);
  pthread_mutex_init (&relay->event_lock, NULL);
  relay->events = g_array_new (FALSE, FALSE, sizeof (RelayEvent));
  relay->delivering = g_array_new (FALSE, FALSE, sizeof (RelayEvent));
  relay->by_pair = g_new0 (TdRelayPort *, relay->n_pairs);
}

void
td_relay_events_clear (TdRelay *relay)
{
  g_source_destroy (relay->event_source);
  g_source_unref (relay->event_source);
  g_main_context_unref (relay->context);
  pthread_mutex_destroy (&relay->event_lock);
  g_array_unref (relay->events);
  g_array_unref (relay->delivering);
  g_free (relay->by_pair);
}

void
td_relay_events_port_new (TdRelay *relay, TdRelayPort *port)
{
  port->id = ++relay->next_id;
  port->born_us = g_get_monotonic_time ();
  port->on_rx = ON_RX_FIRST;
  relay->by_pair[port->pair] = port;
}

void
td_relay_events_port_free (TdRelay *relay, TdRelayPort *port)
{
  if (relay->by_pair[port->pair] == port)
    relay->by_pair[port->pair] = NULL;
  port->event_func = NULL;
}

void
td_relay_port_set_event_func (TdRelayPort *port, TdRelayEventFunc func, gpointer user_data)
{
  gboolean was_on = port->event_func != NULL;

  port->event_func = func;
  port->event_data = user_data;
  if (!func)
    port->idle_told = FALSE;
  if (was_on != (func != NULL))
    td_relay_worker_send (port->worker, CMD_WATCH, port, NULL, func != NULL);
}

gboolean
td_relay_port_is_idle (TdRelayPort *port)
{
  return port->idle_told;
}

void
td_relay_set_idle_timeout (TdRelay *relay, guint ms)
{
  for (guint i = 0; i < relay->n_workers; i++) {
    Cmd *cmd = g_new0 (Cmd, 1);

    cmd->type = CMD_SET_IDLE;
    cmd->idle_us = ms * (gint64) 1000;
    td_relay_worker_push (&relay->workers[i], cmd);
  }
}

/* ---- the worker thread ---- */

gboolean
td_relay_events_worker_init (Worker *w)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &w->idle_tfd };

  w->idle_tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (w->idle_tfd < 0 || epoll_ctl (w->epfd, EPOLL_CTL_ADD, w->idle_tfd, &ev) < 0) {
    if (w->idle_tfd >= 0)
      close (w->idle_tfd);
    w->idle_tfd = -1;
    return FALSE;
  }
  w->events = g_array_new (FALSE, FALSE, sizeof (RelayEvent));
  return TRUE;
}

void
td_relay_events_worker_clear (Worker *w)
{
  close (w->idle_tfd);
  g_array_unref (w->events);
}

/* The idle check runs only while it has something to find: an idle relay,
 * or one without a timeout, never wakes up for it. */
static void
update_idle_timer (Worker *w)
{
  gboolean on = w->idle_us > 0 && w->n_watched > 0;
  struct itimerspec its = {
    .it_value.tv_nsec = on ? IDLE_CHECK_NS : 0,
    .it_interval.tv_nsec = on ? IDLE_CHECK_NS : 0,
  };

  if (on == w->idle_armed)
    return;
  if (timerfd_settime (w->idle_tfd, 0, &its, NULL) < 0)
    g_critical ("relay: timerfd_settime: %s", g_strerror (errno));
  w->idle_armed = on;
}

void
td_relay_events_post (Worker *w, TdRelayPort *port, TdRelayEventKind kind, gint64 now,
                      const Addr *address)
{
  RelayEvent e = { .pair = port->pair, .id = port->id, .kind = kind, .time_us = now };

  if (address)
    e.address = *address;
  g_array_append_val (w->events, e);
}

void
td_relay_events_post_tune_ended (Worker *w, TdRelayPort *port, gint64 now, guint64 gen)
{
  RelayEvent e = { .pair = port->pair, .id = port->id, .kind = TD_RELAY_EVENT_TUNE_ENDED,
                   .time_us = now, .play_gen = gen };

  g_array_append_val (w->events, e);
}

/* Watching on/off. A port watched again starts afresh: not idle (the next
 * check tells IDLE at once if it has been silent long enough). */
static void
set_watched (Worker *w, TdRelayPort *port, gboolean on)
{
  port->watched = on;
  port->idle = FALSE;
  port->on_rx &= (guint8) ~ON_RX_ACTIVE;
  if (on)
    w->n_watched++;
  else
    w->n_watched--;
  update_idle_timer (w);
}

void
td_relay_events_watch (Worker *w, TdRelayPort *port, gboolean on)
{
  if (on != port->watched)
    set_watched (w, port, on);
}

/* Migration keeps `watched`, `idle` and `on_rx` with the port; only the
 * workers' counts change. */
void
td_relay_events_adopt (Worker *w, TdRelayPort *port)
{
  if (port->watched) {
    w->n_watched++;
    update_idle_timer (w);
  }
}

void
td_relay_events_let_go (Worker *w, TdRelayPort *port)
{
  if (port->watched) {
    w->n_watched--;
    update_idle_timer (w);
  }
}

void
td_relay_events_set_idle (Worker *w, gint64 idle_us)
{
  w->idle_us = idle_us;
  update_idle_timer (w);
}

/* From the last-packet time the packet path keeps anyway: no clock read and
 * no syscall per packet for idle detection. */
void
td_relay_events_check_idle (Worker *w)
{
  const gint64 tick_us = TD_RELAY_IDLE_CHECK_MS * 1000;
  guint64 expirations, n, slice;
  gint64 now, window_us;

  if (read (w->idle_tfd, &expirations, sizeof expirations) != sizeof expirations ||
      w->idle_us == 0)
    return;   /* disarmed after epoll reported it */
  now = g_get_monotonic_time ();
  /* Every port once per window: the ceiling of the share one tick takes. */
  window_us = MAX (tick_us, w->idle_us / 16);
  n = w->live_ports.length;
  slice = (n * (guint64) tick_us + (guint64) window_us - 1) / (guint64) window_us;
  for (guint64 i = 0; i < slice; i++) {
    TdRelayPort *port;
    gint64 last;

    if (!w->idle_cursor)
      w->idle_cursor = w->live_ports.head;
    port = w->idle_cursor->data;
    w->idle_cursor = w->idle_cursor->next;
    if (!port->watched || port->idle)
      continue;
    last = MAX (atomic_load_explicit (&port->last_rx, memory_order_relaxed), port->born_us);
    if (now - last < w->idle_us)
      continue;
    port->idle = TRUE;
    port->on_rx |= ON_RX_ACTIVE;
    td_relay_events_post (w, port, TD_RELAY_EVENT_IDLE, now, NULL);
  }
}

/* An accepted batch on a port whose on_rx is set (rare: its first packets,
 * the first after IDLE). */
void
td_relay_events_on_rx (Worker *w, TdRelayPort *port, guint kind, gint64 now)
{
  if ((port->on_rx & ON_RX_FIRST) && kind == RTP) {
    port->on_rx &= (guint8) ~ON_RX_FIRST;
    if (port->watched)
      td_relay_events_post (w, port, TD_RELAY_EVENT_FIRST_PACKET, now, NULL);
  }
  if (port->on_rx & ON_RX_ACTIVE) {
    port->on_rx &= (guint8) ~ON_RX_ACTIVE;
    port->idle = FALSE;
    td_relay_events_post (w, port, TD_RELAY_EVENT_ACTIVE, now, NULL);
  }
}

void
td_relay_events_flush (Worker *w)
{
  TdRelay *relay = w->relay;
  gboolean was_empty;

  pthread_mutex_lock (&relay->event_lock);
  was_empty = relay->events->len == 0;
  g_array_append_vals (relay->events, w->events->data, w->events->len);
  pthread_mutex_unlock (&relay->event_lock);
  g_array_set_size (w->events, 0);
  if (was_empty)
    g_source_set_ready_time (relay->event_source, 0);
}
