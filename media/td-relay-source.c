/* Sources the relay plays itself: tunes, sent out of a port's RTP socket
 * under the port's outgoing context (td-rtp-context.h), in any codec the
 * tune holds (its frames may vary in size: Opus). Tunes are played by the
 * port's worker from one timerfd per worker, armed only while one of its
 * ports plays; a playing port migrates with its playout state like with its
 * latching state. A tune played until the peer speaks is ended by the
 * packet path itself (td-relay-worker.c), on the same thread: the peer's
 * first packet goes out in the very batch that ends it. Media thread. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay-private.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Tune playout: one 20 ms frame per port every PHASES ticks. The ports
 * playing are spread over the ticks (their phase), so that a worker sends
 * a quarter of its tunes every 5 ms rather than all of them in one burst
 * every 20 ms: measured with 500 callers on one thread, the burst alone
 * took ~4 ms, which the last callers of each burst saw as jitter. */
#define PHASES TD_RELAY_PHASES
#define TICK_NS (20 * 1000 * 1000 / PHASES)
/* A worker more than this many ticks late (a stalled thread or VM) skips the
 * frames it missed instead of sending them in one burst. */
#define RESYNC_TICKS 5

/* The header of the tune's next packet, under the port's outgoing context. */
static void
stamp_tune (TdRelayPort *port, guint8 hdr[TD_RTP_HEADER], gint64 now)
{
  td_rtp_context_stamp_generated (&port->ctx, hdr, port->play.pt, port->play.seq++,
                                  port->play.ts, port->play.rate, now);
}

/* Sends the tune's next frame out of `port`, if it has somewhere to send,
 * and advances the tune by one frame either way. */
static void
send_tune_frame (TdRelayPort *port, gint64 now)
{
  Playout *pl = &port->play;
  RelaySock *out = &port->sock[RTP];

  if (out->remote_len) {
    guint8 hdr[TD_RTP_HEADER];
    gsize len;
    const guint8 *payload = td_tune_frame (pl->tune, pl->codec, pl->frame, &len);
    /* The payload goes straight from the tune: sendmsg only reads it. */
    struct iovec iov[2] = {
      { hdr, sizeof hdr },
      { (void *) payload, len },
    };
    struct msghdr msg = {
      .msg_name = &out->remote, .msg_namelen = out->remote_len, .msg_iov = iov, .msg_iovlen = 2,
    };

    stamp_tune (port, hdr, now);
    td_relay_latch_note_sending (port, now);
    if (G_UNLIKELY (port->srtp)) {
      /* protected in a copy: the tune's frames are shared */
      SrtpSendResult r = td_relay_srtp_send_rtp (port, iov, 2);
      if (r == SRTP_SENT) {
        stat_add (&port->tx, 1);
        stat_add (&port->generated, 1);
      } else if (r == SRTP_SEND_ERROR) {
        stat_add (&port->tx_errors, 1);
      }
    } else if (sendmsg (out->fd, &msg, 0) >= 0) {
      stat_add (&port->tx, 1);
      stat_add (&port->generated, 1);
    } else {
      stat_add (&port->tx_errors, 1);
    }
  }
  pl->frame++;
  pl->ts += pl->ticks;
}

/* `due` ticks have passed since the last one handled (the timerfd counts
 * them on its absolute 20 ms grid, so the rate never drifts): send that many
 * frames, or, when the worker fell behind by more than RESYNC_TICKS, only
 * the current one, the tune and its timestamps jumping to now as after
 * packet loss rather than bursting 100+ ms of audio into the receiver. */
static void
play_frames (TdRelayPort *port, guint64 due, gint64 now)
{
  if (due > RESYNC_TICKS) {
    port->play.frame += (guint) (due - 1);
    port->play.ts += (guint32) (due - 1) * port->play.ticks;
    due = 1;
  }
  while (due--)
    send_tune_frame (port, now);
}

#define phase_ticks td_relay_phase_ticks

void
td_relay_source_tick (Worker *w)
{
  guint64 due, before;
  gint64 now;

  if (read (w->tfd, &due, sizeof due) != sizeof due)
    return;   /* disarmed after epoll reported it: nothing is due */
  now = g_get_monotonic_time ();
  before = w->ticks;
  w->ticks += due;
  for (GList *l = w->playing.head; l; l = l->next) {
    TdRelayPort *port = l->data;
    guint64 frames = phase_ticks (w->ticks, port->play.phase) -
                     phase_ticks (before, port->play.phase);
    if (frames)
      play_frames (port, frames, now);
  }
  if (w->mixes.head)
    td_relay_mix_tick (w, before, now);
}

/* The timer runs only while a port plays: an idle relay never wakes up. */
static void
set_ticking (Worker *w, gboolean on)
{
  /* it_value: the first tick at once (a new tune starts without waiting),
   * then the kernel keeps the period on its own absolute schedule. */
  struct itimerspec its = {
    .it_value.tv_nsec = on ? 1 : 0,
    .it_interval.tv_nsec = on ? TICK_NS : 0,
  };

  if (on == w->ticking)
    return;
  if (timerfd_settime (w->tfd, 0, &its, NULL) < 0)
    g_critical ("relay: timerfd_settime: %s", g_strerror (errno));
  w->ticking = on;
}

/* Round robin over the phases, so that tunes (and mixes) started together
 * (a burst of calls) spread; the first on an idle timer goes at once, its
 * tick being the next. A tune's first frame waits at most 20 ms, as before. */
guint
td_relay_source_next_phase (Worker *w)
{
  return w->ticking ? w->next_phase++ % PHASES : (guint) (w->ticks % PHASES);
}

void
td_relay_source_update_timer (Worker *w)
{
  set_ticking (w, w->playing.head || w->mixes.head);
}

void
td_relay_source_add (Worker *w, TdRelayPort *port)
{
  port->play.phase = td_relay_source_next_phase (w);
  port->play.link.data = port;
  g_queue_push_tail_link (&w->playing, &port->play.link);
  set_ticking (w, TRUE);
}

void
td_relay_source_remove (Worker *w, TdRelayPort *port)
{
  g_queue_unlink (&w->playing, &port->play.link);
  td_relay_source_update_timer (w);
}

/* Takes over the command's tune reference. */
void
td_relay_source_play (Worker *w, TdRelayPort *port, Cmd *cmd)
{
  Playout *pl = &port->play;
  TdTune *old = pl->tune;

  pl->tune = g_steal_pointer (&cmd->tune);
  pl->codec = cmd->codec;
  pl->pt = cmd->pt;
  pl->until_peer = cmd->flag;
  pl->rate = td_codec_clock_rate (cmd->codec);
  pl->ticks = td_codec_frame_ticks (cmd->codec);
  pl->gen = cmd->gen;
  pl->frame = 0;
  /* A new tune is a new source, even straight after another tune. */
  td_rtp_context_restart (&port->ctx, TD_RTP_SOURCE_TUNE);
  if (old)
    td_tune_unref (old);
  else
    td_relay_source_add (w, port);
}

void
td_relay_source_stop (Worker *w, TdRelayPort *port)
{
  if (!port->play.tune)
    return;
  td_relay_source_remove (w, port);
  g_clear_pointer (&port->play.tune, td_tune_unref);
  /* The next forwarded packet is a new source (the context carries TD_RTP_SOURCE_TUNE). */
}

void
td_relay_source_end_by_peer (Worker *w, TdRelayPort *port, gint64 now)
{
  /* Posted watched or not: the main thread's is_playing learns from it. */
  td_relay_events_post_tune_ended (w, port, now, port->play.gen);
  td_relay_source_stop (w, port);
}
