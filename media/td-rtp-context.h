/* TdRtpContext: a relay port's outgoing RTP identity (SSRC, sequence number,
 * timestamp, marker), the one place where source switches happen.
 *
 * Each port stamps what leaves its RTP socket with its own context, whether
 * the packet was forwarded from its peer or generated from a tune (see
 * td-relay.h, "The outgoing context"). Each source (a forwarded stream,
 * identified by its SSRC, or a tune) is mapped onto the context by fixed
 * offsets chosen when the source starts; a source change is noticed on the
 * packet path itself (a different source or incoming SSRC than the last
 * packet's), so the switch needs no command and costs one compare per
 * packet.
 *
 * Media-thread state: a context belongs to one port and is touched only by
 * the worker that owns the port (it migrates with it), so nothing here locks.
 * `media/` internal. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define TD_RTP_HEADER 12

/* What a port's outgoing RTP stream is carrying right now. */
typedef enum {
  TD_RTP_SOURCE_NONE,      /* the next packet starts a new source */
  TD_RTP_SOURCE_FORWARD,   /* the peer's stream */
  TD_RTP_SOURCE_TUNE,      /* a tune played from the relay */
  TD_RTP_SOURCE_MIX,       /* a room's mix */
} TdRtpSource;

typedef struct {
  gboolean started;          /* something was stamped: ssrc and last_* are valid */
  guint8 source;             /* TdRtpSource; NONE: the next packet starts a new source */
  guint32 source_ssrc;       /* TD_RTP_SOURCE_FORWARD: the incoming stream's SSRC */
  guint16 seq_off;           /* added to the source's own seq... */
  guint32 ts_off;            /* ...and timestamp */
  guint32 ssrc;
  guint16 last_seq;          /* the highest sequence number sent */
  guint32 last_ts;           /* that packet's timestamp */
  gint64 last_us;            /* when the last RTP packet was stamped */
  guint32 clock_rate;
  gboolean new_ssrc_on_switch;
} TdRtpContext;

/* A fresh context: nothing sent yet, forwarded streams at 8 kHz. */
void td_rtp_context_init (TdRtpContext *c);
/* If the stream now carries `source`, its next packet starts a new source
 * (seq/timestamp continued, the marker set): a new tune after a tune, a new
 * peer whose stream may keep the old one's SSRC. */
void td_rtp_context_restart (TdRtpContext *c, TdRtpSource source);
/* Rewrites a forwarded packet's SSRC/seq/timestamp in place (RTCP
 * multiplexed on the RTP port passes untouched). */
void td_rtp_context_stamp_forwarded (TdRtpContext *c, guint8 *p, gint64 now);
/* A forwarded packet just stamped repeats sequence numbers the stream has
 * sent (its sender restarted them on the same SSRC): stamps it again as a
 * new source's first, continuing the stream. SRTP needs this (its sender
 * refuses a number twice); a plain receiver would take it as a restart. */
void td_rtp_context_resync_forwarded (TdRtpContext *c, guint8 *p, gint64 now);
/* Writes the RTP header of a packet generated from a tune (payload type
 * `pt`, the tune's own `seq` and `ts`, its codec's clock `rate`, at which a
 * switch to it advances the timestamp) under the context. */
void td_rtp_context_stamp_generated (TdRtpContext *c, guint8 hdr[TD_RTP_HEADER], guint8 pt,
                                     guint16 seq, guint32 ts, guint32 rate, gint64 now);
/* The same for a packet of another generated `source` (TD_RTP_SOURCE_MIX). */
void td_rtp_context_stamp_source (TdRtpContext *c, guint8 hdr[TD_RTP_HEADER], TdRtpSource source,
                                  guint8 pt, guint16 seq, guint32 ts, guint32 rate, gint64 now);

G_END_DECLS
