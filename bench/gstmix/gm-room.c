#include "gm-room.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <string.h>

#define RTP_CAPS "application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0"
#define RAW_CAPS "audio/x-raw,format=S16LE,rate=8000,channels=1,layout=interleaved"

static GstElement *
add (GmRoom *r, const char *factory, const char *fmt, guint i, guint j, GError **error)
{
  g_autofree gchar *name = g_strdup_printf (fmt, i, j);
  GstElement *e = gst_element_factory_make (factory, name);
  if (!e) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN, "no GStreamer element %s", factory);
    return NULL;
  }
  gst_bin_add (GST_BIN (r->pipeline), e);
  return e;
}

static GstElement *
add_caps (GmRoom *r, const char *caps, const char *fmt, guint i, GError **error)
{
  GstElement *e = add (r, "capsfilter", fmt, i, 0, error);
  if (e) {
    g_autoptr (GstCaps) c = gst_caps_from_string (caps);
    g_object_set (e, "caps", c, NULL);
  }
  return e;
}

static gboolean
link_all (GError **error, GstElement *first, ...)
{
  va_list ap;
  va_start (ap, first);
  GstElement *a = first, *b;
  gboolean ok = TRUE;
  while (ok && (b = va_arg (ap, GstElement *))) {
    ok = gst_element_link (a, b);
    if (!ok)
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "cannot link %s to %s",
                   GST_ELEMENT_NAME (a), GST_ELEMENT_NAME (b));
    a = b;
  }
  va_end (ap);
  return ok;
}

/* The bare feed pad answers like a live source: caps, and "live, no
 * latency of its own", so the mixers downstream aggregate on the clock. */
static gboolean
feed_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  switch (GST_QUERY_TYPE (query)) {
  case GST_QUERY_LATENCY:
    gst_query_set_latency (query, TRUE, 0, GST_CLOCK_TIME_NONE);
    return TRUE;
  case GST_QUERY_CAPS: {
    g_autoptr (GstCaps) caps = gst_caps_from_string (RTP_CAPS);
    GstCaps *filter = NULL;
    gst_query_parse_caps (query, &filter);
    if (filter) {
      GstCaps *both = gst_caps_intersect (caps, filter);
      gst_query_set_caps_result (query, both);
      gst_caps_unref (both);
    } else {
      gst_query_set_caps_result (query, caps);
    }
    return TRUE;
  }
  default:
    return FALSE;
  }
}

/* One party's branch up to its tee. */
static GstElement *
build_input (GmRoom *r, guint p, GError **error)
{
  GstElement *head;
  GstElement *jb = add (r, "rtpjitterbuffer", "jbuf%u", p, 0, error);
  if (!jb)
    return NULL;
  g_object_set (jb, "latency", r->cfg.latency_ms, NULL);
  r->jbuf[p] = jb;
  if (r->cfg.feed == GM_FEED_APPSRC) {
    head = add (r, "appsrc", "src%u", p, 0, error);
    if (!head)
      return NULL;
    g_autoptr (GstCaps) caps = gst_caps_from_string (RTP_CAPS);
    g_object_set (head, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE,
                  "caps", caps, NULL);
    r->src[p] = head;
    if (!link_all (error, head, jb, NULL))
      return NULL;
  } else {
    r->feed[p] = gst_pad_new ("feed", GST_PAD_SRC);
    gst_pad_set_query_function (r->feed[p], feed_query);
    g_autoptr (GstPad) sink = gst_element_get_static_pad (jb, "sink");
    if (gst_pad_link (r->feed[p], sink) != GST_PAD_LINK_OK) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "cannot link a feed pad");
      return NULL;
    }
  }
  GstElement *depay = add (r, "rtppcmudepay", "depay%u", p, 0, error);
  GstElement *dec = depay ? add (r, "mulawdec", "dec%u", p, 0, error) : NULL;
  GstElement *conv = dec ? add (r, "audioconvert", "conv%u", p, 0, error) : NULL;
  GstElement *res = conv ? add (r, "audioresample", "res%u", p, 0, error) : NULL;
  GstElement *caps = res ? add_caps (r, RAW_CAPS, "raw%u", p, error) : NULL;
  GstElement *tee = caps ? add (r, "tee", "tee%u", p, 0, error) : NULL;
  if (!tee || !link_all (error, jb, depay, dec, conv, res, caps, tee, NULL))
    return NULL;
  return tee;
}

static GstFlowReturn
on_sample (GstAppSink *sink, gpointer data)
{
  GmStream *s = data;
  gint64 arrival = gm_now_ns ();
  g_autoptr (GstSample) sample = gst_app_sink_pull_sample (sink);
  GstBuffer *buf = sample ? gst_sample_get_buffer (sample) : NULL;
  GstMapInfo map;
  if (buf && gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gint64 pts = GST_BUFFER_PTS_IS_VALID (buf) ? (gint64) GST_BUFFER_PTS (buf) : -1;
    gm_stream_packet (s, map.data, map.size, pts, arrival);
    gst_buffer_unmap (buf, &map);
  }
  return GST_FLOW_OK;
}

/* Listener q's N-1 mix of the other parties' tees, to its appsink. */
static gboolean
build_mix (GmRoom *r, guint q, GstElement **tees, GError **error)
{
  GstElement *mix = add (r, "audiomixer", "mix%u", q, 0, error);
  if (!mix)
    return FALSE;
  g_object_set (mix, "output-buffer-duration", (guint64) GM_FRAME_NS, NULL);
  if (r->cfg.ignore_inactive)
    g_object_set (mix, "ignore-inactive-pads", TRUE, NULL);
  for (guint p = 0; p < r->cfg.parties; p++) {
    if (p == q)
      continue;
    if (!r->cfg.queues) {
      /* gst_element_link cannot pair two request pads */
      g_autoptr (GstPad) from = gst_element_request_pad_simple (tees[p], "src_%u");
      g_autoptr (GstPad) to = gst_element_request_pad_simple (mix, "sink_%u");
      if (gst_pad_link (from, to) != GST_PAD_LINK_OK) {
        g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "cannot link tee%u to mix%u", p, q);
        return FALSE;
      }
      continue;
    }
    GstElement *queue = add (r, "queue", "q%u_%u", p, q, error);
    if (!queue || !link_all (error, tees[p], queue, mix, NULL))
      return FALSE;
  }
  GstElement *caps = add_caps (r, RAW_CAPS, "mixraw%u", q, error);
  GstElement *enc = caps ? add (r, "mulawenc", "enc%u", q, 0, error) : NULL;
  GstElement *pay = enc ? add (r, "rtppcmupay", "pay%u", q, 0, error) : NULL;
  GstElement *sink = pay ? add (r, "appsink", "out%u", q, 0, error) : NULL;
  if (!sink || !link_all (error, mix, caps, enc, pay, sink, NULL))
    return FALSE;
  g_object_set (pay, "min-ptime", (gint64) GM_FRAME_NS, "max-ptime", (gint64) GM_FRAME_NS, NULL);
  /* sync=false: the mixer already runs on the clock; async=false: a live
   * pipeline does not preroll, and the pad-fed one has no live source to
   * tell the sinks so. */
  g_object_set (sink, "sync", FALSE, "async", FALSE, "emit-signals", FALSE, NULL);
  GstAppSinkCallbacks cb = { .new_sample = on_sample };
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &cb, &r->out[q], NULL);
  return TRUE;
}

/* Nobody reads these buses: count what matters and drop the rest (an
 * unread bus keeps every message). */
static GstBusSyncReply
on_message (GstBus *bus, GstMessage *m, gpointer data)
{
  GmRoom *r = data;
  switch (GST_MESSAGE_TYPE (m)) {
  case GST_MESSAGE_ERROR: {
    g_autoptr (GError) e = NULL;
    gst_message_parse_error (m, &e, NULL);
    g_atomic_int_inc (&r->errors);
    gchar *text = g_strdup_printf ("%s: %s", GST_OBJECT_NAME (m->src), e->message);
    if (!g_atomic_pointer_compare_and_exchange (&r->first_error, NULL, text))
      g_free (text);
    break;
  }
  case GST_MESSAGE_WARNING:
    g_atomic_int_inc (&r->warnings);
    break;
  case GST_MESSAGE_LATENCY:
    g_atomic_int_inc (&r->latency_msgs);
    g_atomic_int_set (&r->latency_pending, 1);
    break;
  default:
    break;
  }
  return GST_BUS_DROP;
}

static gboolean
start_feed_pads (GmRoom *r)
{
  g_autoptr (GstCaps) caps = gst_caps_from_string (RTP_CAPS);
  guint group = gst_util_group_id_next ();
  for (guint p = 0; p < r->cfg.parties; p++) {
    g_autofree gchar *sid = g_strdup_printf ("room%u-party%u", r->id, p);
    GstEvent *start = gst_event_new_stream_start (sid);
    gst_event_set_group_id (start, group);
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_pad_set_active (r->feed[p], TRUE);
    if (!gst_pad_push_event (r->feed[p], start)
        || !gst_pad_push_event (r->feed[p], gst_event_new_caps (caps))
        || !gst_pad_push_event (r->feed[p], gst_event_new_segment (&seg)))
      return FALSE;
  }
  return TRUE;
}

/* The start-up stall: a live aggregator's srcpad task runs from PAUSED on;
 * at PAUSED->PLAYING the pipeline hands every element the clock first and
 * each element its base time only when the bin reaches it, so until then
 * the mixer reads the clock against base time 0, finds every output period
 * hours overdue and produces them back to back, seconds ahead of the
 * running time, then waits that long for the clock. Fixing the clock and
 * the base time up front (start time NONE: the pipeline keeps them) gives
 * every element its real base time already at READY->PAUSED. */
static void
preset_time (GstElement *pipeline)
{
  GstClock *clock = gst_system_clock_obtain ();
  gst_pipeline_use_clock (GST_PIPELINE (pipeline), clock);
  gst_element_set_start_time (pipeline, GST_CLOCK_TIME_NONE);
  gst_element_set_base_time (pipeline, gst_clock_get_time (clock));
  gst_object_unref (clock);
}

GmRoom *
gm_room_new (guint id, const GmConfig *cfg, GError **error)
{
  gint64 t0 = gm_now_ns ();
  GmRoom *r = g_new0 (GmRoom, 1);
  r->id = id;
  r->cfg = *cfg;
  r->win[0] = r->win[1] = G_MAXINT64;
  g_autofree gchar *name = g_strdup_printf ("room%u", id);
  r->pipeline = gst_pipeline_new (name);
  g_autoptr (GstBus) bus = gst_pipeline_get_bus (GST_PIPELINE (r->pipeline));
  gst_bus_set_sync_handler (bus, on_message, r, NULL);
  for (guint q = 0; q < cfg->parties; q++)
    gm_stream_init (&r->out[q], q, cfg->parties, r->onsets, r->win);

  GstElement *tees[GM_MAX_PARTIES];
  gboolean ok = TRUE;
  for (guint p = 0; ok && p < cfg->parties; p++)
    ok = (tees[p] = build_input (r, p, error)) != NULL;
  for (guint q = 0; ok && q < cfg->parties; q++)
    ok = build_mix (r, q, tees, error);
  r->build_ns = gm_now_ns () - t0;
  if (ok && cfg->preset_time)
    preset_time (r->pipeline);
  if (ok && gst_element_set_state (r->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "room %u: cannot go PLAYING", id);
    ok = FALSE;
  }
  if (ok && gst_element_get_state (r->pipeline, NULL, NULL, 5 * GST_SECOND)
      == GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "room %u: state change failed", id);
    ok = FALSE;
  }
  if (ok && cfg->feed == GM_FEED_PAD && !start_feed_pads (r)) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "room %u: feed pads refused events", id);
    ok = FALSE;
  }
  if (!ok) {
    gm_room_free (r);
    return NULL;
  }
  r->clock = gst_element_get_clock (r->pipeline);
  r->base_time = gst_element_get_base_time (r->pipeline);
  r->playing_ns = gm_now_ns ();
  return r;
}

static GstBuffer *
packet (GmRoom *r, guint p, GstClockTime running)
{
  static guint8 tone[GM_MAX_PARTIES][GM_FRAME];
  static gsize once;
  if (g_once_init_enter (&once)) {
    for (guint i = 0; i < GM_MAX_PARTIES; i++)
      gm_tone_frame (i, tone[i]);
    g_once_init_leave (&once, 1);
  }
  guint8 d[12 + GM_FRAME];
  guint16 seq = (guint16) (r->n + 1000 * p);
  guint32 ts = (guint32) (r->n * GM_FRAME + 90000u * p);
  guint32 ssrc = 0x10000 * (r->id + 1) + p;
  d[0] = 0x80;
  d[1] = r->n == 0 ? 0x80 : 0x00;                  /* PT 0, marker on the first */
  d[2] = seq >> 8; d[3] = seq & 0xff;
  d[4] = ts >> 24; d[5] = ts >> 16; d[6] = ts >> 8; d[7] = ts & 0xff;
  d[8] = ssrc >> 24; d[9] = ssrc >> 16; d[10] = ssrc >> 8; d[11] = ssrc & 0xff;
  if (gm_tone_on (p, r->n))
    memcpy (d + 12, tone[p], GM_FRAME);
  else
    memset (d + 12, 0xff, GM_FRAME);                 /* µ-law silence */
  GstBuffer *b = gst_buffer_new_memdup (d, sizeof d);
  GST_BUFFER_PTS (b) = GST_BUFFER_DTS (b) = running;  /* the relay's arrival time */
  return b;
}

void
gm_room_feed (GmRoom *r, gint64 now_ns)
{
  GstClockTime running = gst_clock_get_time (r->clock) - r->base_time;
  if (r->n == 0)
    r->first_push_ns = now_ns;
  for (guint p = 0; p < r->cfg.parties; p++) {
    gboolean on = gm_tone_on (p, r->n);
    /* an onset: the tone switches on, or the room's first tone packet */
    if (on && (!r->toned[p] || !gm_tone_on (p, r->n - 1)))
      gm_onsets_push (&r->onsets[p], now_ns, (gint64) running);
    r->toned[p] |= on;
    GstBuffer *b = packet (r, p, running);
    GstFlowReturn ret = r->cfg.feed == GM_FEED_APPSRC
        ? gst_app_src_push_buffer (GST_APP_SRC (r->src[p]), b)
        : gst_pad_push (r->feed[p], b);
    if (ret != GST_FLOW_OK)
      r->push_failed++;
    r->fed++;
  }
  r->n++;
}

void
gm_room_jbuf_stats (GmRoom *r, guint64 *pushed, guint64 *lost, guint64 *late)
{
  *pushed = *lost = *late = 0;
  for (guint p = 0; p < r->cfg.parties; p++) {
    GstStructure *st = NULL;
    g_object_get (r->jbuf[p], "stats", &st, NULL);
    if (!st)
      continue;
    guint64 a = 0, b = 0, c = 0;
    gst_structure_get_uint64 (st, "num-pushed", &a);
    gst_structure_get_uint64 (st, "num-lost", &b);
    gst_structure_get_uint64 (st, "num-late", &c);
    *pushed += a;
    *lost += b;
    *late += c;
    gst_structure_free (st);
  }
}

gboolean
gm_room_latency (GmRoom *r)
{
  if (!g_atomic_int_compare_and_exchange (&r->latency_pending, 1, 0))
    return FALSE;
  gst_bin_recalculate_latency (GST_BIN (r->pipeline));
  return TRUE;
}

void
gm_room_stop (GmRoom *r)
{
  gst_element_set_state (r->pipeline, GST_STATE_NULL);
}

void
gm_room_free (GmRoom *r)
{
  if (!r)
    return;
  gm_room_stop (r);
  for (guint p = 0; p < r->cfg.parties; p++)
    if (r->feed[p]) {
      gst_pad_set_active (r->feed[p], FALSE);
      gst_object_unref (r->feed[p]);
    }
  g_clear_object (&r->clock);
  g_autoptr (GstBus) bus = gst_pipeline_get_bus (GST_PIPELINE (r->pipeline));
  gst_bus_set_sync_handler (bus, NULL, NULL, NULL);
  gst_object_unref (r->pipeline);
  for (guint q = 0; q < r->cfg.parties; q++)
    gm_stream_clear (&r->out[q]);
  g_free (r->first_error);
  g_free (r);
}
