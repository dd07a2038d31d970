/* TdTranscode: see td-transcode.h. */
#define G_LOG_DOMAIN "tandem-mix"

#include "td-transcode.h"
#include "td-g711.h"

#include <string.h>

#include <gst/gst.h>

#define FRAME_NS (20 * GST_MSECOND)

/* ---- one GStreamer element driven from our own pads ---------------------- */

/* `element` between our `src` (feeding its sink pad) and our `sink` (fed
 * by its src pad): gst_pad_push (src) runs the element and our chain
 * function on this thread, before it returns. */
typedef struct {
  GstElement *element;
  GstPad *src, *sink;
  GstCaps *in_caps;          /* what we push */
  GstCaps *out_caps;         /* what our sink accepts: it fixes the element's output */
  guint64 pts;               /* of the next buffer pushed */
  guint8 *out;               /* where the chain function writes... */
  gsize out_size, out_len;   /* ...its room, what it wrote */
  gboolean got;              /* a buffer came out */
} Drive;

static GstFlowReturn
drive_chain (GstPad *pad, GstObject *parent, GstBuffer *buffer)
{
  Drive *d = gst_pad_get_element_private (pad);
  GstMapInfo map;

  (void) parent;
  /* Headers (opusenc 1.22 puts none in the stream) are no payload. */
  if (!GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_HEADER) &&
      gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    gsize n = MIN (map.size, d->out_size - d->out_len);
    memcpy (d->out + d->out_len, map.data, n);
    d->out_len += n;
    d->got = TRUE;
    gst_buffer_unmap (buffer, &map);
  }
  gst_buffer_unref (buffer);
  return GST_FLOW_OK;
}

/* Our sink answers caps queries with out_caps: that is how the decoder's
 * output rate and channels (Opus: 16 kHz mono) are chosen. */
static gboolean
drive_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  Drive *d = gst_pad_get_element_private (pad);

  (void) parent;
  switch (GST_QUERY_TYPE (query)) {
  case GST_QUERY_CAPS: {
    GstCaps *filter, *caps;
    gst_query_parse_caps (query, &filter);
    caps = filter ? gst_caps_intersect (d->out_caps, filter) : gst_caps_ref (d->out_caps);
    gst_query_set_caps_result (query, caps);
    gst_caps_unref (caps);
    return TRUE;
  }
  case GST_QUERY_ACCEPT_CAPS: {
    GstCaps *caps;
    gst_query_parse_accept_caps (query, &caps);
    gst_query_set_accept_caps_result (query, gst_caps_can_intersect (caps, d->out_caps));
    return TRUE;
  }
  default:
    return FALSE;
  }
}

static gboolean
drive_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  Drive *d = gst_pad_get_element_private (pad);

  (void) parent;
  if (GST_QUERY_TYPE (query) == GST_QUERY_CAPS) {
    gst_query_set_caps_result (query, d->in_caps);
    return TRUE;
  }
  return FALSE;
}

static gboolean
drive_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  (void) pad;
  (void) parent;
  gst_event_unref (event);   /* caps, segment, tags: nothing to do with them */
  return TRUE;
}

static void
drive_clear (Drive *d)
{
  if (d->element) {
    gst_element_set_state (d->element, GST_STATE_NULL);
    gst_object_unref (d->element);
  }
  g_clear_object (&d->src);
  g_clear_object (&d->sink);
  g_clear_pointer (&d->in_caps, gst_caps_unref);
  g_clear_pointer (&d->out_caps, gst_caps_unref);
}

/* Takes `element`, `in_caps`, `out_caps`. FALSE (logged) if it cannot run. */
static gboolean
drive_init (Drive *d, GstElement *element, GstCaps *in_caps, GstCaps *out_caps)
{
  GstSegment segment;
  g_autoptr (GstPad) esink = gst_element_get_static_pad (element, "sink");
  g_autoptr (GstPad) esrc = gst_element_get_static_pad (element, "src");

  memset (d, 0, sizeof *d);
  d->element = gst_object_ref_sink (element);
  d->in_caps = in_caps;
  d->out_caps = out_caps;
  d->src = gst_object_ref_sink (gst_pad_new ("td-src", GST_PAD_SRC));
  d->sink = gst_object_ref_sink (gst_pad_new ("td-sink", GST_PAD_SINK));
  gst_pad_set_element_private (d->src, d);
  gst_pad_set_element_private (d->sink, d);
  gst_pad_set_query_function (d->src, drive_src_query);
  gst_pad_set_chain_function (d->sink, drive_chain);
  gst_pad_set_query_function (d->sink, drive_sink_query);
  gst_pad_set_event_function (d->sink, drive_sink_event);
  if (!esink || !esrc ||
      gst_pad_link_full (d->src, esink, GST_PAD_LINK_CHECK_NOTHING) != GST_PAD_LINK_OK ||
      gst_pad_link_full (esrc, d->sink, GST_PAD_LINK_CHECK_NOTHING) != GST_PAD_LINK_OK ||
      !gst_pad_set_active (d->sink, TRUE) || !gst_pad_set_active (d->src, TRUE) ||
      gst_element_set_state (element, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_warning ("mix: cannot drive %s", GST_ELEMENT_NAME (element));
    drive_clear (d);
    return FALSE;
  }
  gst_segment_init (&segment, GST_FORMAT_TIME);
  if (!gst_pad_push_event (d->src, gst_event_new_stream_start ("td-mix")) ||
      !gst_pad_push_event (d->src, gst_event_new_caps (d->in_caps)) ||
      !gst_pad_push_event (d->src, gst_event_new_segment (&segment))) {
    g_warning ("mix: %s refused its stream (caps %" GST_PTR_FORMAT ")",
               GST_ELEMENT_NAME (element), d->in_caps);
    drive_clear (d);
    return FALSE;
  }
  return TRUE;
}

/* Pushes `len` bytes of 20 ms (or a GAP: data NULL) through the element;
 * what came out is in out[0..return). */
static gsize
drive_push (Drive *d, const void *data, gsize len, guint8 *out, gsize out_size)
{
  GstFlowReturn ret = GST_FLOW_OK;

  d->out = out;
  d->out_size = out_size;
  d->out_len = 0;
  d->got = FALSE;
  if (data) {
    GstBuffer *buffer = gst_buffer_new_memdup (data, len);
    GST_BUFFER_PTS (buffer) = d->pts;
    GST_BUFFER_DURATION (buffer) = FRAME_NS;
    ret = gst_pad_push (d->src, buffer);
  } else {
    gst_pad_push_event (d->src, gst_event_new_gap (d->pts, FRAME_NS));
  }
  d->pts += FRAME_NS;
  if (ret != GST_FLOW_OK)
    g_debug ("mix: %s: %s", GST_ELEMENT_NAME (d->element), gst_flow_get_name (ret));
  return d->out_len;
}

/* ---- the transcoder ------------------------------------------------------ */

struct _TdTranscode {
  TdCodec codec;
  guint rate;                /* the PCM side's */
  gboolean gst;              /* G.722, Opus: dec and enc are elements */
  Drive dec, enc;
  /* G.711 at 16 kHz: the resamplers' memory */
  gint16 up_last;            /* the last 8 kHz sample decoded */
  gint16 down_last;          /* the last odd 16 kHz sample encoded */
  /* concealment by repetition */
  gint16 last[TD_TRANSCODE_MAX_SAMPLES];
  guint fades;               /* frames concealed in a row */
};

#if G_BYTE_ORDER == G_LITTLE_ENDIAN
#define S16_NATIVE "S16LE"
#else
#define S16_NATIVE "S16BE"
#endif

static GstCaps *
pcm_caps (void)
{
  return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, S16_NATIVE,
                              "rate", G_TYPE_INT, 16000, "channels", G_TYPE_INT, 1,
                              "layout", G_TYPE_STRING, "interleaved", NULL);
}

gboolean
td_transcode_is_wideband (TdCodec codec)
{
  return codec == TD_CODEC_G722 || codec == TD_CODEC_OPUS;
}

/* An element, or NULL with one message per process and codec. */
static GstElement *
make (const char *factory, TdCodec codec, const char *package)
{
  static gint told[TD_CODEC_COUNT];
  GstElement *e = gst_element_factory_make (factory, NULL);

  if (!e && g_atomic_int_compare_and_exchange (&told[codec], 0, 1))
    g_warning ("mix: no %s: GStreamer element %s is missing (%s)", td_codec_name (codec),
               factory, package);
  return e;
}

static gboolean
init_g722 (TdTranscode *t)
{
  GstElement *dec = make ("avdec_g722", TD_CODEC_G722, "gstreamer1.0-libav");
  GstElement *enc = dec ? make ("avenc_g722", TD_CODEC_G722, "gstreamer1.0-libav") : NULL;
  GstCaps *g722 = gst_caps_new_simple ("audio/G722", "rate", G_TYPE_INT, 16000,
                                       "channels", G_TYPE_INT, 1, NULL);

  if (!enc) {
    if (dec)
      gst_object_unref (gst_object_ref_sink (dec));
    gst_caps_unref (g722);
    return FALSE;
  }
  if (!drive_init (&t->dec, dec, gst_caps_ref (g722), pcm_caps ())) {
    gst_object_unref (gst_object_ref_sink (enc));
    gst_caps_unref (g722);
    return FALSE;
  }
  return drive_init (&t->enc, enc, pcm_caps (), g722);
}

static gboolean
init_opus (TdTranscode *t)
{
  GstElement *dec = make ("opusdec", TD_CODEC_OPUS, "gstreamer1.0-plugins-base");
  GstElement *enc = dec ? make ("opusenc", TD_CODEC_OPUS, "gstreamer1.0-plugins-base") : NULL;
  GstCaps *opus;

  if (!enc) {
    if (dec)
      gst_object_unref (gst_object_ref_sink (dec));
    return FALSE;
  }
  /* RTP Opus has no Ogg headers: mapping family 0, 48 kHz (RFC 7587);
   * stereo packets decode too, downmixed to our mono. */
  opus = gst_caps_new_simple ("audio/x-opus", "channel-mapping-family", G_TYPE_INT, 0,
                              "rate", G_TYPE_INT, 48000, "channels", G_TYPE_INT, 1, NULL);
  g_object_set (dec, "plc", TRUE, NULL);
  g_object_set (enc, "frame-size", 20, "bitrate", TD_TRANSCODE_OPUS_BITRATE, NULL);
  gst_util_set_object_arg (G_OBJECT (enc), "bandwidth", "wideband");
  gst_util_set_object_arg (G_OBJECT (enc), "audio-type", "voice");
  if (!drive_init (&t->dec, dec, gst_caps_ref (opus), pcm_caps ())) {
    gst_object_unref (gst_object_ref_sink (enc));
    gst_caps_unref (opus);
    return FALSE;
  }
  return drive_init (&t->enc, enc, pcm_caps (),
                     gst_caps_new_simple ("audio/x-opus", "channel-mapping-family", G_TYPE_INT, 0,
                                          NULL));
}

TdTranscode *
td_transcode_new (TdCodec codec, guint rate)
{
  TdTranscode *t;

  g_return_val_if_fail ((guint) codec < TD_CODEC_COUNT, NULL);
  g_return_val_if_fail (rate == 8000 || rate == 16000, NULL);
  g_return_val_if_fail (!td_transcode_is_wideband (codec) || rate == 16000, NULL);
  t = g_new0 (TdTranscode, 1);
  t->codec = codec;
  t->rate = rate;
  t->gst = td_transcode_is_wideband (codec);
  if (t->gst) {
    gboolean ok = gst_init_check (NULL, NULL, NULL) &&
                  (codec == TD_CODEC_G722 ? init_g722 (t) : init_opus (t));
    if (!ok) {
      drive_clear (&t->dec);
      drive_clear (&t->enc);
      g_free (t);
      return NULL;
    }
  }
  return t;
}

void
td_transcode_preload (void)
{
  static gsize done;

  if (g_once_init_enter (&done)) {
    td_transcode_free (td_transcode_new (TD_CODEC_G722, 16000));
    td_transcode_free (td_transcode_new (TD_CODEC_OPUS, 16000));
    g_once_init_leave (&done, 1);
  }
}

void
td_transcode_free (TdTranscode *t)
{
  if (!t)
    return;
  if (t->gst) {
    drive_clear (&t->dec);
    drive_clear (&t->enc);
  }
  g_free (t);
}

void
td_transcode_set_rate (TdTranscode *t, guint rate)
{
  g_return_if_fail (rate == 8000 || rate == 16000);
  if (t->gst || t->rate == rate)
    return;
  t->rate = rate;
  t->up_last = t->down_last = 0;
  t->fades = TD_TRANSCODE_FADE_FRAMES;   /* `last` is at the old rate: never repeat it */
}

guint
td_transcode_rate (const TdTranscode *t)
{
  return t->rate;
}

/* ---- G.711, and its 8 <-> 16 kHz resampling ------------------------------ */

/* 8 -> 16 kHz by linear interpolation (half a sample late): plenty for
 * speech, whose energy lies far below 4 kHz. */
static void
upsample (TdTranscode *t, const gint16 *in, guint n, gint16 *out)
{
  for (guint i = 0; i < n; i++) {
    out[2 * i] = (gint16) (((gint32) t->up_last + in[i]) / 2);
    out[2 * i + 1] = in[i];
    t->up_last = in[i];
  }
}

/* 16 -> 8 kHz through a [1 2 1]/4 low-pass, which takes the worst of
 * what would alias (a zero at 8 kHz). */
static void
downsample (TdTranscode *t, const gint16 *in, guint n, gint16 *out)
{
  for (guint i = 0; i < n; i++) {
    out[i] = (gint16) (((gint32) t->down_last + 2 * in[2 * i] + in[2 * i + 1]) / 4);
    t->down_last = in[2 * i + 1];
  }
}

static gboolean
decode_g711 (TdTranscode *t, const guint8 *payload, gsize len, gint16 *pcm)
{
  gint16 narrow[TD_TUNE_FRAME_SAMPLES];
  gint16 *to = t->rate == 8000 ? pcm : narrow;

  if (len != TD_TUNE_FRAME_SAMPLES)
    return FALSE;   /* not 20 ms */
  for (guint i = 0; i < TD_TUNE_FRAME_SAMPLES; i++)
    to[i] = t->codec == TD_CODEC_PCMU ? td_g711_ulaw_decode (payload[i])
                                      : td_g711_alaw_decode (payload[i]);
  if (t->rate == 16000)
    upsample (t, narrow, TD_TUNE_FRAME_SAMPLES, pcm);
  return TRUE;
}

static gsize
encode_g711 (TdTranscode *t, const gint16 *pcm, guint8 *out)
{
  gint16 narrow[TD_TUNE_FRAME_SAMPLES];
  const gint16 *from = pcm;

  if (t->rate == 16000) {
    downsample (t, pcm, TD_TUNE_FRAME_SAMPLES, narrow);
    from = narrow;
  }
  for (guint i = 0; i < TD_TUNE_FRAME_SAMPLES; i++)
    out[i] = t->codec == TD_CODEC_PCMU ? td_g711_ulaw_encode (from[i])
                                       : td_g711_alaw_encode (from[i]);
  return TD_TUNE_FRAME_SAMPLES;
}

/* ---- the API ------------------------------------------------------------- */

static guint
frame_samples (const TdTranscode *t)
{
  return t->rate / 50;
}

gboolean
td_transcode_decode (TdTranscode *t, const guint8 *payload, gsize len, gint16 *pcm)
{
  guint n = frame_samples (t);
  gboolean ok;

  if (!t->gst) {
    ok = decode_g711 (t, payload, len, pcm);
  } else {
    gsize got = len ? drive_push (&t->dec, payload, len, (guint8 *) pcm, n * sizeof (gint16)) : 0;
    /* A decoder may give less (a 10 ms Opus packet): the rest is silence. */
    if (got && got < n * sizeof (gint16))
      memset ((guint8 *) pcm + got, 0, n * sizeof (gint16) - got);
    ok = got > 0;
  }
  if (ok) {
    memcpy (t->last, pcm, n * sizeof (gint16));
    t->fades = 0;
  }
  return ok;
}

void
td_transcode_conceal (TdTranscode *t, gint16 *pcm)
{
  guint n = frame_samples (t);

  if (t->codec == TD_CODEC_OPUS &&
      drive_push (&t->dec, NULL, 0, (guint8 *) pcm, n * sizeof (gint16)) == n * sizeof (gint16))
    return;   /* opusdec's own concealment */
  if (t->fades >= TD_TRANSCODE_FADE_FRAMES) {
    memset (pcm, 0, n * sizeof (gint16));
    return;
  }
  t->fades++;
  for (guint i = 0; i < n; i++)
    t->last[i] /= 2;
  memcpy (pcm, t->last, n * sizeof (gint16));
}

gsize
td_transcode_encode (TdTranscode *t, const gint16 *pcm, guint8 *out)
{
  if (!t->gst)
    return encode_g711 (t, pcm, out);
  return drive_push (&t->enc, pcm, frame_samples (t) * sizeof (gint16), out,
                     TD_TRANSCODE_MAX_PAYLOAD);
}
