/* N-1 mixes (mix-minus) inside the relay: see "mixes" in td-relay.h.
 *
 * Why in the relay and not a GStreamer pipeline per room: the relay's
 * sockets stay the only sockets, and the mix is a few additions per sample
 * on the media thread that already owns the members' packets, on its
 * playout timer; a pipeline per room (audiomixer per member, a jitterbuffer
 * per input) cost ~12 threads a room and stalled under load (see
 * /work/shared/notes/media.md). GStreamer still does the G.722 and Opus
 * coding, its elements driven synchronously from this thread
 * (td-transcode.c).
 *
 * The main thread's half (mix_new, join, leave, free, stats) queues
 * commands like the rest of the relay; a mix lives on one worker, chosen
 * at mix_new, and a joining port migrates there. The worker's half keeps
 * each member's jitter buffer, transcoder and mix-stream counters (a
 * virtual source whose seq counts frames sent and ts frames due, like a
 * tune's), and makes one frame per 20 ms in the mix's phase of the timer. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-relay-private.h"
#include "td-jitter.h"
#include "td-transcode.h"

#include <errno.h>
#include <sys/socket.h>

/* A worker more than this many frames late (a stalled thread or VM) makes
 * one frame, not a burst of them. */
#define RESYNC_FRAMES 5

struct _MixMember {
  TdRelayPort *port;
  TdRelayMix *mix;
  TdCodec codec;
  guint8 pt;
  gboolean hears;
  TdTranscode *tc;           /* NULL: the codec cannot be coded here: mute and deaf */
  TdJitter jitter;
  gboolean has_pcm;          /* contributes `pcm` to this frame */
  gint16 pcm[TD_TRANSCODE_MAX_SAMPLES];
  guint16 seq;               /* the mix stream sent to it: frames sent... */
  guint32 ts;                /* ...and its timestamp, frames due */
  guint32 clock;             /* its codec's RTP clock */
  guint ticks;               /* timestamp units per frame */
  guint64 late_seen, overflows_seen;   /* of `jitter`, already counted in the mix */
  GList link;                /* in mix->members */
};

struct _TdRelayMix {
  TdRelay *relay;            /* immutable */
  Worker *worker;            /* immutable: where it mixes */
  GList *ports;              /* main thread: the members */
  /* the worker */
  GQueue members;            /* MixMember* via link */
  guint rate;                /* 8000, or 16000 while a member is wideband */
  guint phase;
  gint64 last_frame_us;
  GList link;                /* in the worker's `mixes` while it has members */
  /* stats: written by the worker, read by the main thread */
  _Atomic guint64 frames, late, concealed, overflows, max_gap;
  _Atomic guint64 n_members;
};

/* ---- main thread ---- */

TdRelayMix *
td_relay_mix_new (TdRelay *relay)
{
  TdRelayMix *mix;
  Worker *best = &relay->workers[0];

  /* The codecs' plugins load here, once, not on a media thread at a join. */
  td_transcode_preload ();
  mix = g_new0 (TdRelayMix, 1);
  /* The least loaded worker: the members will migrate to it. */
  for (guint i = 1; i < relay->n_workers; i++)
    if (relay->workers[i].n_ports < best->n_ports)
      best = &relay->workers[i];
  mix->relay = relay;
  mix->worker = best;
  mix->rate = 8000;
  g_queue_init (&mix->members);
  relay->mixes = g_list_prepend (relay->mixes, mix);
  return mix;
}

void
td_relay_mix_free (TdRelayMix *mix)
{
  Cmd *cmd;

  if (!mix)
    return;
  while (mix->ports)
    td_relay_port_leave_mix (mix->ports->data);
  mix->relay->mixes = g_list_remove (mix->relay->mixes, mix);
  cmd = g_new0 (Cmd, 1);
  cmd->type = CMD_MIX_FREE;
  cmd->mix = mix;
  td_relay_worker_push (mix->worker, cmd);
}

void
td_relay_port_join_mix (TdRelayPort *port, TdRelayMix *mix, TdCodec codec, guint8 pt,
                        gboolean hears)
{
  Cmd *cmd;

  g_return_if_fail (port && mix && port->relay == mix->relay);
  g_return_if_fail ((guint) codec < TD_CODEC_COUNT && pt < 128);
  if (port->mix && port->mix != mix)
    td_relay_port_leave_mix (port);
  cmd = g_new0 (Cmd, 1);
  cmd->type = CMD_MIX_JOIN;
  cmd->port = port;
  cmd->mix = mix;
  cmd->codec = codec;
  cmd->pt = pt;
  cmd->flag = hears;
  /* The JOIN first, as in td_relay_connect: it waits on the mix's worker,
   * so the port is a member as it arrives, before a packet of it is read. */
  td_relay_worker_push (mix->worker, cmd);
  if (port->worker != mix->worker)
    td_relay_migrate (port, mix->worker);
  if (!port->mix) {
    port->mix = mix;
    mix->ports = g_list_prepend (mix->ports, port);
  }
}

void
td_relay_port_leave_mix (TdRelayPort *port)
{
  if (!port || !port->mix)
    return;
  port->mix->ports = g_list_remove (port->mix->ports, port);
  port->mix = NULL;
  td_relay_worker_send (port->worker, CMD_MIX_LEAVE, port, NULL, FALSE);
}

void
td_relay_mix_get_stats (TdRelayMix *mix, TdRelayMixStats *out)
{
  out->members = (guint) stat_get (&mix->n_members);
  out->frames = stat_get (&mix->frames);
  out->late = stat_get (&mix->late);
  out->concealed = stat_get (&mix->concealed);
  out->overflows = stat_get (&mix->overflows);
  out->max_gap_us = (gint64) stat_get (&mix->max_gap);
}

/* ---- the worker: membership ---- */

static void
update_rate (TdRelayMix *mix)
{
  guint rate = 8000;

  for (GList *l = mix->members.head; l; l = l->next) {
    MixMember *m = l->data;
    if (td_transcode_is_wideband (m->codec))
      rate = 16000;
  }
  if (rate == mix->rate)
    return;
  mix->rate = rate;
  for (GList *l = mix->members.head; l; l = l->next) {
    MixMember *m = l->data;
    if (m->tc)
      td_transcode_set_rate (m->tc, rate);
  }
}

/* (Re)codes the member for `codec`: a new transcoder, an empty jitter
 * buffer at the codec's clock. */
static void
set_codec (MixMember *m, TdCodec codec, guint rate)
{
  td_transcode_free (m->tc);
  m->codec = codec;
  m->tc = td_transcode_new (codec, td_transcode_is_wideband (codec) ? 16000 : rate);
  if (!m->tc)
    g_warning ("relay port %u: no %s coder: in its mix, mute and deaf", m->port->number,
               td_codec_name (codec));
  m->clock = td_codec_clock_rate (codec);
  m->ticks = td_codec_frame_ticks (codec);
  td_jitter_init (&m->jitter, m->ticks);
  m->late_seen = m->overflows_seen = 0;
}

void
td_relay_mix_join (Worker *w, const Cmd *cmd)
{
  TdRelayPort *port = cmd->port;
  TdRelayMix *mix = cmd->mix;
  MixMember *m = port->member;
  gboolean was_idle = g_queue_is_empty (&mix->members);

  if (m && m->mix != mix) {
    td_relay_mix_leave (w, port);
    m = NULL;
  }
  if (!m) {
    m = g_new0 (MixMember, 1);
    m->port = port;
    m->mix = mix;
    m->link.data = m;
    port->member = m;
    g_queue_push_tail_link (&mix->members, &m->link);
    stat_add (&mix->n_members, 1);
    /* Even straight after a leave, with no forwarded packet in between: the
     * mix stream is a new source. */
    td_rtp_context_restart (&port->ctx, TD_RTP_SOURCE_MIX);
    set_codec (m, cmd->codec, mix->rate);
  } else if (m->codec != cmd->codec) {
    set_codec (m, cmd->codec, mix->rate);
  }
  m->pt = cmd->pt;
  m->hears = cmd->flag;
  update_rate (mix);
  if (was_idle) {
    mix->phase = td_relay_source_next_phase (w);
    mix->last_frame_us = 0;
    mix->link.data = mix;
    g_queue_push_tail_link (&w->mixes, &mix->link);
    td_relay_source_update_timer (w);
  }
}

void
td_relay_mix_leave (Worker *w, TdRelayPort *port)
{
  MixMember *m = port->member;
  TdRelayMix *mix;

  if (!m)
    return;
  mix = m->mix;
  g_queue_unlink (&mix->members, &m->link);
  port->member = NULL;
  stat_add (&mix->n_members, (guint64) -1);
  /* The next forwarded packet starts a new source anyway (the context's is MIX). */
  td_transcode_free (m->tc);
  g_free (m);
  if (g_queue_is_empty (&mix->members)) {
    g_queue_unlink (&w->mixes, &mix->link);
    td_relay_source_update_timer (w);
  } else {
    update_rate (mix);
  }
}

/* After every member's LEAVE (see td-relay-worker.c, cmd_ready). */
void
td_relay_mix_destroy (Worker *w, TdRelayMix *mix)
{
  (void) w;
  g_warn_if_fail (g_queue_is_empty (&mix->members));
  g_free (mix);
}

/* ---- the worker: packets in ---- */

/* The payload of an RTP packet (CSRCs, extension and padding skipped), or
 * FALSE if it is malformed. */
static gboolean
rtp_payload (const guint8 *p, gsize len, const guint8 **payload, gsize *payload_len)
{
  gsize off = TD_RTP_HEADER + 4 * (gsize) (p[0] & 0x0f), end = len;

  if (len < TD_RTP_HEADER || off > len)
    return FALSE;
  if (p[0] & 0x10) {   /* header extension */
    if (off + 4 > len)
      return FALSE;
    off += 4 + 4 * (gsize) (p[off + 2] << 8 | p[off + 3]);
    if (off > len)
      return FALSE;
  }
  if (p[0] & 0x20) {   /* padding: its count is the last byte */
    if (p[len - 1] > len - off)
      return FALSE;
    end -= p[len - 1];
  }
  *payload = p + off;
  *payload_len = end - off;
  return TRUE;
}

void
td_relay_mix_receive (Worker *w, TdRelayPort *port, guint kind, const guint *idx, guint n)
{
  MixMember *m = port->member;
  TdRelayMix *mix = m->mix;

  if (kind != RTP || !m->tc)
    return;   /* RTCP goes nowhere: the mix is a new source for everyone */
  for (guint i = 0; i < n; i++) {
    const guint8 *p = w->buf->data[idx[i]], *payload;
    gsize len = w->buf->rx[idx[i]].msg_len, payload_len;

    if ((p[1] & 0x7f) != m->pt || (p[1] >= 192 && p[1] <= 223))
      continue;   /* telephone-event, comfort noise, multiplexed RTCP */
    if (!rtp_payload (p, len, &payload, &payload_len))
      continue;
    td_jitter_push (&m->jitter, (guint32) p[8] << 24 | (guint32) p[9] << 16 |
                                (guint32) p[10] << 8 | p[11],
                    (guint16) (p[2] << 8 | p[3]),
                    (guint32) p[4] << 24 | (guint32) p[5] << 16 | (guint32) p[6] << 8 | p[7],
                    payload, payload_len);
  }
  /* late and duplicates alike: packets that came too late to be played */
  guint64 late = m->jitter.late + m->jitter.duplicates;
  if (late != m->late_seen) {
    stat_add (&mix->late, late - m->late_seen);
    m->late_seen = late;
  }
  if (m->jitter.overflows != m->overflows_seen) {
    stat_add (&mix->overflows, m->jitter.overflows - m->overflows_seen);
    m->overflows_seen = m->jitter.overflows;
  }
}

/* ---- the worker: one frame ---- */

/* The member's frame of this 20 ms into m->pcm (has_pcm: it contributes). */
static void
take_input (TdRelayMix *mix, MixMember *m)
{
  const guint8 *payload;
  gsize len;

  m->has_pcm = FALSE;
  if (!m->tc)
    return;
  switch (td_jitter_pop (&m->jitter, &payload, &len)) {
  case TD_JITTER_FRAME:
    if (td_transcode_decode (m->tc, payload, len, m->pcm)) {
      m->has_pcm = TRUE;
      return;
    }
    G_GNUC_FALLTHROUGH;   /* undecodable: as if lost */
  case TD_JITTER_MISSING:
    td_transcode_conceal (m->tc, m->pcm);
    stat_add (&mix->concealed, 1);
    m->has_pcm = TRUE;
    return;
  case TD_JITTER_IDLE:
    return;
  }
}

static void
send_output (TdRelayPort *port, MixMember *m, const gint32 *sum, guint n, gint64 now)
{
  RelaySock *out = &port->sock[RTP];
  guint8 pkt[TD_RTP_HEADER + TD_TRANSCODE_MAX_PAYLOAD];
  gint16 pcm[TD_TRANSCODE_MAX_SAMPLES];
  gsize len;

  for (guint i = 0; i < n; i++) {
    gint32 v = sum[i] - (m->has_pcm ? m->pcm[i] : 0);   /* N-1: everyone but itself */
    pcm[i] = (gint16) CLAMP (v, G_MININT16, G_MAXINT16);
  }
  len = td_transcode_encode (m->tc, pcm, pkt + TD_RTP_HEADER);
  if (len == 0)
    return;
  td_rtp_context_stamp_source (&port->ctx, pkt, TD_RTP_SOURCE_MIX, m->pt, m->seq++, m->ts,
                               m->clock, now);
  td_relay_latch_note_sending (port, now);
  if (G_UNLIKELY (port->srtp)) {
    struct iovec iov = { pkt, TD_RTP_HEADER + len };
    SrtpSendResult r = td_relay_srtp_send_rtp (port, &iov, 1);
    if (r != SRTP_REFUSED)
      stat_add (r == SRTP_SENT ? &port->tx : &port->tx_errors, 1);
  } else if (sendto (out->fd, pkt, TD_RTP_HEADER + len, 0, &out->remote.sa, out->remote_len) >= 0) {
    stat_add (&port->tx, 1);
  } else {
    stat_add (&port->tx_errors, 1);
  }
}

static void
mix_frame (TdRelayMix *mix, gint64 now)
{
  gint32 sum[TD_TRANSCODE_MAX_SAMPLES] = { 0 };
  guint n = mix->rate / 50;

  if (mix->last_frame_us && now - mix->last_frame_us > (gint64) stat_get (&mix->max_gap))
    atomic_store_explicit (&mix->max_gap, (guint64) (now - mix->last_frame_us),
                           memory_order_relaxed);
  mix->last_frame_us = now;
  for (GList *l = mix->members.head; l; l = l->next) {
    MixMember *m = l->data;
    take_input (mix, m);
    if (m->has_pcm)
      for (guint i = 0; i < n; i++)
        sum[i] += m->pcm[i];
  }
  for (GList *l = mix->members.head; l; l = l->next) {
    MixMember *m = l->data;
    TdRelayPort *port = m->port;

    /* A tune on the member (hold music) goes out instead, from its own
     * source; with nowhere to send, the stream's clock still runs. */
    if (m->tc && m->hears && !port->play.tune && port->sock[RTP].remote_len)
      send_output (port, m, sum, n, now);
    m->ts += m->ticks;
  }
  stat_add (&mix->frames, 1);
}

void
td_relay_mix_tick (Worker *w, guint64 before, gint64 now)
{
  GList *l = w->mixes.head;

  while (l) {
    TdRelayMix *mix = l->data;
    guint64 due = td_relay_phase_ticks (w->ticks, mix->phase) -
                  td_relay_phase_ticks (before, mix->phase);

    l = l->next;
    if (due > RESYNC_FRAMES) {
      /* skip what was missed, as after packet loss, rather than burst */
      for (GList *k = mix->members.head; k; k = k->next) {
        MixMember *m = k->data;
        m->ts += (guint32) (due - 1) * m->ticks;
      }
      due = 1;
    }
    while (due--)
      mix_frame (mix, now);
  }
}
