/* TdRtpContext: see td-rtp-context.h. */
#define G_LOG_DOMAIN "tandem-relay"

#include "td-rtp-context.h"

#define MARKER 0x80
/* G.711 and G.722 (whose RTP clock is 8 kHz too): until the SDP says otherwise. */
#define DEFAULT_CLOCK_RATE 8000

void
td_rtp_context_init (TdRtpContext *c)
{
  *c = (TdRtpContext) { .source = TD_RTP_SOURCE_NONE, .clock_rate = DEFAULT_CLOCK_RATE };
}

void
td_rtp_context_restart (TdRtpContext *c, TdRtpSource source)
{
  if (c->source == source)
    c->source = TD_RTP_SOURCE_NONE;
}

static inline guint16
get16 (const guint8 *p)
{
  return (guint16) (p[0] << 8 | p[1]);
}

static inline guint32
get32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

static inline void
put16 (guint8 *p, guint16 v)
{
  p[0] = (guint8) (v >> 8);
  p[1] = (guint8) v;
}

static inline void
put32 (guint8 *p, guint32 v)
{
  p[0] = (guint8) (v >> 24);
  p[1] = (guint8) (v >> 16);
  p[2] = (guint8) (v >> 8);
  p[3] = (guint8) v;
}

static guint32
fresh_ssrc (guint32 old)
{
  guint32 ssrc;

  do
    ssrc = g_random_int ();
  while (ssrc == old);
  return ssrc;
}

/* A new source starts with its packet (in_seq, in_ts): fix the offsets that
 * make it continue the port's stream, seq = last + 1 and timestamp = last +
 * the real time since the last packet. Returns TRUE for a switch (the caller
 * sets the marker); FALSE for the port's first stream, which keeps its own
 * identity if forwarded (nothing to continue; the receiver sees the sender's
 * stream untouched) and gets a random one if it is a tune (RFC 3550). */
static gboolean
ctx_switch (TdRtpContext *c, guint8 source, guint32 in_ssrc, guint16 in_seq, guint32 in_ts,
            guint32 rate, gint64 now)
{
  gboolean switched = c->started;
  guint16 seq;
  guint32 ts;

  if (!switched) {
    gboolean fwd = source == TD_RTP_SOURCE_FORWARD;
    c->ssrc = fwd ? in_ssrc : g_random_int ();
    seq = fwd ? in_seq : (guint16) g_random_int ();
    ts = fwd ? in_ts : g_random_int ();
    c->started = TRUE;
  } else {
    seq = c->last_seq + 1;
    /* At the new source's clock: a tune's codec's, a forwarded stream's the
     * rtpmap's (td_relay_port_set_clock_rate). */
    guint32 elapsed = (guint32) ((now - c->last_us) * (gint64) rate / G_USEC_PER_SEC);
    /* The last packet's audio lasts a frame (20 ms): a source that starts
     * sooner after it (the caller's packet a few µs after a tune frame) must
     * not overlap it, or the receiver plays two frames at one instant. */
    ts = c->last_ts + MAX (elapsed, rate / 50);
    if (c->new_ssrc_on_switch)
      c->ssrc = fresh_ssrc (c->ssrc);
  }
  c->source = source;
  c->source_ssrc = in_ssrc;
  c->seq_off = (guint16) (seq - in_seq);
  c->ts_off = ts - in_ts;
  c->last_seq = seq - 1;   /* so that ctx_stamp takes this packet as the newest */
  return switched;
}

/* Maps one packet of the current source onto the port's stream. */
static inline void
ctx_stamp (TdRtpContext *c, guint16 *seq, guint32 *ts, gint64 now)
{
  *seq += c->seq_off;
  *ts += c->ts_off;
  /* A late (reordered) packet does not move the end the next switch continues from. */
  if ((gint16) (*seq - c->last_seq) > 0) {
    c->last_seq = *seq;
    c->last_ts = *ts;
  }
  c->last_us = now;
}

/* Rewrites a forwarded packet's SSRC/seq/timestamp in place. RTCP is not
 * touched, neither on its own socket nor multiplexed here (RFC 5761): after
 * a switch the SSRC in a forwarded SR no longer matches the RTP it describes,
 * and its RTP timestamp is in the old source's time base. Receivers use SRs
 * for lip sync and statistics only; fine for now. */
void
td_rtp_context_stamp_forwarded (TdRtpContext *c, guint8 *p, gint64 now)
{
  guint32 in_ssrc, ts;
  guint16 seq;

  if (p[1] >= 192 && p[1] <= 223)
    return;   /* RTCP multiplexed on the RTP port */
  in_ssrc = get32 (p + 8);
  seq = get16 (p + 2);
  ts = get32 (p + 4);
  if (G_UNLIKELY (c->source != TD_RTP_SOURCE_FORWARD || c->source_ssrc != in_ssrc) &&
      ctx_switch (c, TD_RTP_SOURCE_FORWARD, in_ssrc, seq, ts, c->clock_rate, now))
    p[1] |= MARKER;
  ctx_stamp (c, &seq, &ts, now);
  put16 (p + 2, seq);
  put32 (p + 4, ts);
  put32 (p + 8, c->ssrc);
}

void
td_rtp_context_resync_forwarded (TdRtpContext *c, guint8 *p, gint64 now)
{
  /* Back to the packet as it came, then stamped as a new source's first. */
  put16 (p + 2, (guint16) (get16 (p + 2) - c->seq_off));
  put32 (p + 4, get32 (p + 4) - c->ts_off);
  put32 (p + 8, c->source_ssrc);
  c->source = TD_RTP_SOURCE_NONE;
  td_rtp_context_stamp_forwarded (c, p, now);
}

void
td_rtp_context_stamp_generated (TdRtpContext *c, guint8 hdr[TD_RTP_HEADER], guint8 pt,
                                guint16 seq, guint32 ts, guint32 rate, gint64 now)
{
  td_rtp_context_stamp_source (c, hdr, TD_RTP_SOURCE_TUNE, pt, seq, ts, rate, now);
}

void
td_rtp_context_stamp_source (TdRtpContext *c, guint8 hdr[TD_RTP_HEADER], TdRtpSource source,
                             guint8 pt, guint16 seq, guint32 ts, guint32 rate, gint64 now)
{
  hdr[0] = 0x80;
  hdr[1] = pt;
  if (c->source != source && ctx_switch (c, (guint8) source, 0, seq, ts, rate, now))
    hdr[1] |= MARKER;
  ctx_stamp (c, &seq, &ts, now);
  put16 (hdr + 2, seq);
  put32 (hdr + 4, ts);
  put32 (hdr + 8, c->ssrc);
}
