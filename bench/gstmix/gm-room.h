/* One room mixed the GStreamer way: one pipeline, per party an input
 * branch (feed → rtpjitterbuffer → rtppcmudepay → mulawdec → audioconvert →
 * audioresample → S16 8 kHz mono → tee) and per listener an N-1 mix (the
 * other parties' tees → queue → audiomixer → mulawenc → rtppcmupay (20 ms)
 * → appsink, whose packets the "relay" takes in the streaming thread).
 *
 * The feed is either an appsrc per party (is-live, format=time, the relay's
 * arrival time as PTS/DTS) or, with GM_FEED_PAD, a bare source pad linked
 * to the jitterbuffer's sink pad, pushed from the feeding thread (no
 * streaming thread of its own). */
#pragma once

#include <gst/gst.h>

#include "gm-stats.h"

typedef enum { GM_FEED_APPSRC, GM_FEED_PAD } GmFeed;

typedef struct {
  GmFeed feed;
  guint parties;
  guint latency_ms;                  /* rtpjitterbuffer */
  gboolean queues;                   /* a queue per tee branch (FALSE: none) */
  gboolean ignore_inactive;          /* audiomixer ignore-inactive-pads */
  gboolean preset_time;              /* clock and base time fixed before PLAYING */
} GmConfig;

typedef struct {
  guint id;
  GmConfig cfg;
  GstElement *pipeline;
  GstClock *clock;
  GstClockTime base_time;
  GstElement *src[GM_MAX_PARTIES];   /* GM_FEED_APPSRC */
  GstPad *feed[GM_MAX_PARTIES];      /* GM_FEED_PAD */
  GstElement *jbuf[GM_MAX_PARTIES];
  GmStream out[GM_MAX_PARTIES];      /* per listener */
  GmOnsets onsets[GM_MAX_PARTIES];
  gint64 win[2];                     /* measurement window, ns (atomic) */
  gint active;                       /* atomic: the feeder feeds it */
  /* the feeder's */
  guint64 n;                         /* packets sent per party */
  gboolean toned[GM_MAX_PARTIES];    /* a tone packet was sent */
  gint64 first_push_ns;
  guint64 fed;                       /* packets pushed (all parties) */
  guint64 push_failed;
  /* the bus's (its sync handler, any thread) */
  gint errors, warnings, latency_msgs;
  gint latency_pending;              /* atomic: a LATENCY message to act on */
  gchar *first_error;                /* atomic pointer */
  /* the builder's */
  gint64 build_ns, playing_ns;       /* time to build; when PLAYING */
} GmRoom;

/* Builds the room's pipeline and sets it PLAYING; NULL + error if not. */
GmRoom *gm_room_new (guint id, const GmConfig *cfg, GError **error);
/* Pushes one 20 ms packet per party, stamped `now_ns` (monotonic). */
void gm_room_feed (GmRoom *r, gint64 now_ns);
/* The jitterbuffers' counters, summed over the parties. */
void gm_room_jbuf_stats (GmRoom *r, guint64 *pushed, guint64 *lost, guint64 *late);
/* Redistributes the latency (gst_bin_recalculate_latency) if an element
 * asked for it since the last call, as an application's bus watch does;
 * TRUE if it did. */
gboolean gm_room_latency (GmRoom *r);
/* Stops the pipeline: its threads end. */
void gm_room_stop (GmRoom *r);
/* Stops the pipeline and frees the room. */
void gm_room_free (GmRoom *r);
