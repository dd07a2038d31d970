/* td-tune-encode: a tune's PCM encoded once into each codec's 20 ms frames.
 *
 * G.711 is encoded in C (td-g711.c), from 8 kHz samples (td_tune_load
 * encodes its 8 kHz stream as it decodes). G.722 and Opus go through
 * one short-lived pipeline each, appsrc ! audioresample ! encoder ! appsink,
 * fed the PCM in place (wrapped, not copied) and run to EOS on the calling
 * thread, like td_tune_load's decoding: no main loop.
 *
 * Each pipeline is fed the tune as a loop: WARMUP frames of its end (more
 * than the whole tune, if it is short), the whole tune, WARMUP frames of
 * its start; the frames of the middle pass are kept. Frame 0 then comes out
 * of an encoder (and a resampler) that has just heard the end of the tune,
 * as a receiver's decoder has when the relay loops from frame n-1 to 0. */
#define G_LOG_DOMAIN "tandem-tune"

#include "td-tune-private.h"
#include "td-g711.h"

#include <string.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

/* 1 s. Measured with a 700 Hz tone (test-tune /codec/.../loop): Opus needs
 * more than 500 ms to settle (its rate control and analysis; with 200 ms
 * frame 0 still decoded 16 dB low after frame n-1, with 1 s no 5 ms block
 * strays 3% from the tone's level). G.722's ADPCM never settles into an exact
 * cycle, so its loop point keeps a wobble of about 1 dB for some 50 ms
 * (a cold encoder there: +11 dB, a click). */
#define WARMUP 50
/* An encoder that has not finished a 10-minute tune by then is wedged. */
#define ENCODE_TIMEOUT_S 120
/* Buffers pushed into appsrc: 1 s of PCM each. */
#define CHUNK_FRAMES 50
/* Opus: wideband mono at 24 kbit/s (RFC 7587 leaves the rate to the
 * sender); music-on-hold quality well above G.711's. */
#define OPUS_BITRATE 24000

#if G_BYTE_ORDER == G_LITTLE_ENDIAN
#define S16_NATIVE "S16LE"
#else
#define S16_NATIVE "S16BE"
#endif

/* What an encoding pipeline produced. Written by its appsink's streaming
 * thread, read by the loading thread only after the pipeline is back in
 * NULL (which joins that thread). */
typedef struct {
  GByteArray *bytes;         /* every output buffer, concatenated */
  GArray *ends;              /* guint32: where each output buffer ends in `bytes` */
} Output;

static GstFlowReturn
on_new_sample (GstAppSink *sink, gpointer data)
{
  Output *out = data;
  g_autoptr (GstSample) sample = gst_app_sink_pull_sample (sink);
  GstBuffer *buffer = sample ? gst_sample_get_buffer (sample) : NULL;
  GstMapInfo map;

  if (buffer == NULL)
    return GST_FLOW_EOS;
  /* Codec headers (none from opusenc 1.22, which puts them in its caps) are
   * no RTP payload. */
  if (GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_HEADER) ||
      !gst_buffer_map (buffer, &map, GST_MAP_READ))
    return GST_FLOW_OK;
  g_byte_array_append (out->bytes, map.data, (guint) map.size);
  guint32 end = out->bytes->len;
  g_array_append_val (out->ends, end);
  gst_buffer_unmap (buffer, &map);
  return GST_FLOW_OK;
}

/* ---- the pipeline ------------------------------------------------------- */

static GstCaps *
pcm_caps (guint rate)
{
  return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, S16_NATIVE,
                              "rate", G_TYPE_INT, (int) rate, "channels", G_TYPE_INT, 1,
                              "layout", G_TYPE_STRING, "interleaved", NULL);
}

/* appsrc (rate in) ! audioresample ! rate out ! [encoder] ! appsink, or NULL
 * (why logged) if an element is missing. */
static GstElement *
build (guint in_rate, guint out_rate, GstElement *encoder, GstElement **src, Output *out)
{
  GstElement *pipeline = gst_pipeline_new ("td-tune-encode");
  GstElement *resample = gst_element_factory_make ("audioresample", NULL);
  GstElement *filter = gst_element_factory_make ("capsfilter", NULL);
  GstElement *sink = gst_element_factory_make ("appsink", NULL);
  g_autoptr (GstCaps) in_caps = pcm_caps (in_rate);
  g_autoptr (GstCaps) out_caps = pcm_caps (out_rate);
  GstAppSinkCallbacks callbacks = { .new_sample = on_new_sample };

  *src = gst_element_factory_make ("appsrc", NULL);
  if (!*src || !resample || !filter || !sink) {
    g_warning ("tune encoding: GStreamer's appsrc, audioresample, capsfilter or appsink "
               "is missing (gstreamer1.0-plugins-base)");
    for (GstElement **e = (GstElement *[]) { *src, resample, filter, sink, encoder, NULL }; *e; e++)
      gst_object_unref (gst_object_ref_sink (*e));
    gst_object_unref (pipeline);
    return NULL;
  }
  g_object_set (*src, "caps", in_caps, "format", GST_FORMAT_TIME, "block", FALSE, NULL);
  g_object_set (filter, "caps", out_caps, NULL);
  g_object_set (sink, "sync", FALSE, NULL);
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &callbacks, out, NULL);
  gst_bin_add_many (GST_BIN (pipeline), *src, resample, filter, sink, NULL);
  if (encoder)
    gst_bin_add (GST_BIN (pipeline), encoder);
  if (!gst_element_link_many (*src, resample, filter, NULL) ||
      !gst_element_link (filter, encoder ? encoder : sink) ||
      (encoder && !gst_element_link (encoder, sink))) {
    g_warning ("tune encoding: cannot link the pipeline");
    gst_object_unref (pipeline);
    return NULL;
  }
  return pipeline;
}

/* Pushes frames [first, last) of the tune as a loop (frame f is tune frame
 * f mod n), in chunks that each lie in one piece of `pcm`. */
static void
push_loop (GstElement *src, const gint16 *pcm, guint n_frames, guint rate, int first, int last)
{
  gsize frame_bytes = (gsize) rate / 50 * sizeof (gint16);
  guint64 index = 0;

  for (int f = first; f < last;) {
    guint at = (guint) (((f % (int) n_frames) + (int) n_frames) % (int) n_frames);
    guint count = MIN (MIN ((guint) (last - f), n_frames - at), CHUNK_FRAMES);
    GstBuffer *buffer = gst_buffer_new_wrapped_full (
      GST_MEMORY_FLAG_READONLY, (gpointer) pcm, n_frames * frame_bytes, at * frame_bytes,
      count * frame_bytes, NULL, NULL);

    GST_BUFFER_PTS (buffer) = index * 20 * GST_MSECOND;
    GST_BUFFER_DURATION (buffer) = count * 20 * GST_MSECOND;
    index += count;
    f += (int) count;
    if (gst_app_src_push_buffer (GST_APP_SRC (src), buffer) != GST_FLOW_OK)
      break;   /* the pipeline failed: its error is on the bus */
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
}

/* Runs `pipeline` over the looped tune to EOS. FALSE (logged) on an error. */
static gboolean
run (GstElement *pipeline, GstElement *src, const gint16 *pcm, guint n_frames, guint rate,
     const char *what)
{
  g_autoptr (GstBus) bus = gst_element_get_bus (pipeline);
  g_autoptr (GstMessage) msg = NULL;

  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_warning ("tune encoding (%s): the pipeline would not start", what);
    return FALSE;
  }
  push_loop (src, pcm, n_frames, rate, -WARMUP, (int) n_frames + WARMUP);
  msg = gst_bus_timed_pop_filtered (bus, ENCODE_TIMEOUT_S * GST_SECOND,
                                    GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS)
    return TRUE;
  if (msg) {
    g_autoptr (GError) error = NULL;
    gst_message_parse_error (msg, &error, NULL);
    g_warning ("tune encoding (%s) failed: %s", what, error->message);
  } else {
    g_warning ("tune encoding (%s) took more than %d s", what, ENCODE_TIMEOUT_S);
  }
  return FALSE;
}

/* Encodes the looped tune with `encoder` (NULL: resampling only) at
 * `out_rate`; what came out is in `out`. Takes `encoder`. */
static gboolean
encode_with (GstElement *encoder, const gint16 *pcm, guint n_frames, guint rate,
             guint out_rate, const char *what, Output *out)
{
  GstElement *src;
  GstElement *pipeline = build (rate, out_rate, encoder, &src, out);
  gboolean ok;

  if (!pipeline)
    return FALSE;
  ok = run (pipeline, src, pcm, n_frames, rate, what);
  /* NULL joins the streaming threads: `out` is ours again. */
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  return ok;
}

/* `bytes`: what the encoder will give, about; a GByteArray grown by
 * doubling would hold up to twice that during the load. */
static void
output_init (Output *out, gsize bytes)
{
  out->bytes = g_byte_array_sized_new ((guint) MIN (bytes, G_MAXUINT));
  out->ends = g_array_new (FALSE, FALSE, sizeof (guint32));
}

static void
output_clear (Output *out)
{
  g_byte_array_unref (out->bytes);
  g_array_unref (out->ends);
}

/* ---- the codecs --------------------------------------------------------- */

/* An encoder element, or NULL with one g_info per process and codec: a
 * GStreamer without it is a supported installation, not a fault. */
static GstElement *
make_encoder (const char *factory, TdCodec codec, const char *package)
{
  static gint told[TD_CODEC_COUNT];
  GstElement *e = gst_element_factory_make (factory, NULL);

  if (!e && g_atomic_int_compare_and_exchange (&told[codec], 0, 1))
    g_info ("tunes have no %s: GStreamer element %s is missing (%s)", td_codec_name (codec),
            factory, package);
  return e;
}

/* Did the encoder give the frames up to the end of the middle pass? The
 * look-ahead frames after it cover what encoders and resamplers hold back at
 * EOS. */
static gboolean
enough (const char *what, gsize got, gsize need)
{
  if (got >= need)
    return TRUE;
  g_warning ("tune encoding (%s): %" G_GSIZE_FORMAT " units out, %" G_GSIZE_FORMAT " needed",
             what, got, need);
  return FALSE;
}

/* A trimmed copy: GByteArray grows by doubling, which would keep up to
 * twice the memory for the life of the tune. */
static guint8 *
copy_bytes (const guint8 *data, gsize size)
{
  return size ? g_memdup2 (data, size) : g_malloc (1);
}

static void
set_fixed (TdTuneTrack *track, const guint8 *data, guint n_frames, guint frame_bytes)
{
  track->size = (gsize) n_frames * frame_bytes;
  track->data = copy_bytes (data, track->size);
  track->frame_bytes = frame_bytes;
}

/* G.711 is stateless: no loop, no GStreamer. */
void
td_tune_encode_g711 (TdTune *tune, const gint16 *pcm8k)
{
  gsize n = (gsize) tune->n_frames * TD_TUNE_FRAME_SAMPLES;
  guint8 *u = g_malloc (n), *a = g_malloc (n);

  for (gsize i = 0; i < n; i++) {
    u[i] = td_g711_ulaw_encode (pcm8k[i]);
    a[i] = td_g711_alaw_encode (pcm8k[i]);
  }
  tune->track[TD_CODEC_PCMU] = (TdTuneTrack) { u, n, TD_TUNE_FRAME_BYTES, NULL };
  tune->track[TD_CODEC_PCMA] = (TdTuneTrack) { a, n, TD_TUNE_FRAME_BYTES, NULL };
}

/* avenc_g722: 16 kHz in, 4 bits a sample pair out: 160 bytes per 20 ms. Its
 * buffers happen to be 20 ms each; the bytes are re-framed regardless. */
static void
encode_g722 (TdTune *tune, const gint16 *pcm, guint rate)
{
  GstElement *enc = make_encoder ("avenc_g722", TD_CODEC_G722, "gstreamer1.0-libav");
  gsize need = (gsize) (WARMUP + tune->n_frames) * TD_TUNE_FRAME_BYTES;
  Output out;

  if (!enc)
    return;
  output_init (&out, need + TD_TUNE_FRAME_BYTES * WARMUP);
  if (encode_with (enc, pcm, tune->n_frames, rate, 16000, "G.722", &out) &&
      enough ("G.722", out.bytes->len, need))
    set_fixed (&tune->track[TD_CODEC_G722], out.bytes->data + WARMUP * TD_TUNE_FRAME_BYTES,
               tune->n_frames, TD_TUNE_FRAME_BYTES);
  output_clear (&out);
}

/* opusenc: one output buffer is one 20 ms packet, one RTP payload. */
static void
encode_opus (TdTune *tune, const gint16 *pcm, guint rate)
{
  GstElement *enc = make_encoder ("opusenc", TD_CODEC_OPUS, "gstreamer1.0-plugins-base");
  TdTuneTrack *track = &tune->track[TD_CODEC_OPUS];
  Output out;

  if (!enc)
    return;
  g_object_set (enc, "frame-size", 20, "bitrate", OPUS_BITRATE, NULL);
  gst_util_set_object_arg (G_OBJECT (enc), "bandwidth", "wideband");
  output_init (&out, (gsize) (2 * WARMUP + tune->n_frames) * OPUS_BITRATE / 8 / 50);
  if (encode_with (enc, pcm, tune->n_frames, rate, 16000, "Opus", &out) &&
      enough ("Opus", out.ends->len, WARMUP + tune->n_frames)) {
    const guint32 *ends = (const guint32 *) (gpointer) out.ends->data;
    guint32 base = ends[WARMUP - 1];

    track->size = ends[WARMUP - 1 + tune->n_frames] - base;
    track->data = copy_bytes (out.bytes->data + base, track->size);
    track->offsets = g_new (guint32, tune->n_frames + 1);
    for (guint f = 0; f <= tune->n_frames; f++)
      track->offsets[f] = ends[WARMUP - 1 + f] - base;
  }
  output_clear (&out);
}

/* The time since *since, in ms, and *since moved to now (the debug log's
 * load figures). */
static double
lap (gint64 *since)
{
  gint64 now = g_get_monotonic_time (), was = *since;
  *since = now;
  return (now - was) / 1000.0;
}

void
td_tune_encode_wideband (TdTune *tune, const gint16 *pcm, guint rate)
{
  g_return_if_fail (rate == TD_TUNE_RATE || rate == TD_TUNE_DECODE_RATE);
  gint64 t = g_get_monotonic_time ();
  double g722;

  if (!gst_init_check (NULL, NULL, NULL)) {
    g_warning ("tune encoding: GStreamer cannot start: %s has no G.722 nor Opus", tune->path);
    return;
  }
  encode_g722 (tune, pcm, rate);
  g722 = lap (&t);
  encode_opus (tune, pcm, rate);
  g_debug ("%s: %u frames encoded in %.0f ms (G.722), %.0f ms (Opus)", tune->path,
           tune->n_frames, g722, lap (&t));
}
