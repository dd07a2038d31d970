/* td-tune: the TdTune object, and td_tune_load: a file decoded once by
 * GStreamer into two streams, 8 kHz encoded in G.711 as it comes (so an
 * 8 kHz file's G.711 is its samples, exactly) and 16 kHz PCM handed to
 * td-tune-encode.c for G.722 and Opus, then dropped. */
#define G_LOG_DOMAIN "tandem-tune"

#include "td-tune-private.h"
#include "td-g711.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>

G_DEFINE_QUARK (td-tune-error-quark, td_tune_error)

#define MAX_SAMPLES ((gsize) TD_TUNE_MAX_SECONDS * TD_TUNE_RATE)   /* at 8 kHz */
#define WIDE_FRAME (TD_TUNE_DECODE_RATE / 50)   /* samples per 20 ms */

#if G_BYTE_ORDER == G_LITTLE_ENDIAN
#define S16_NATIVE "S16LE"
#else
#define S16_NATIVE "S16BE"
#endif

/* A wedged decoder must not hang startup forever; a ten-minute MP3 decodes
 * in under a second here, so this leaves room for a loaded machine. */
#define LOAD_TIMEOUT_S 120
/* A demuxer fed a damaged file can wait forever without an error: no new
 * sample for this long means the file will not decode. */
#define STALL_S 5

/* Application messages the streaming threads post to the loading thread. */
#define MSG_TOO_LONG "td-tune-too-long"
#define MSG_NO_AUDIO "td-tune-no-audio"

/* One load in progress. The streaming threads write the samples and flags;
 * the loading thread reads them only after the pipeline is back in NULL,
 * which joins those threads. `missing` is the loading thread's alone. */
typedef struct {
  GstElement *pipeline;
  GstElement *convert;       /* where decodebin's audio pad links */
  gint audio_linked;         /* atomic: decodebin offered an audio stream */
  gint samples;              /* atomic: buffers decoded so far (progress) */
  GByteArray *pcm;           /* S16, host order, TD_TUNE_DECODE_RATE, mono */
  GByteArray *pcmu;          /* the 8 kHz stream, encoded as it came */
  GByteArray *pcma;
  gboolean too_long;
  char *missing;             /* what no plugin could decode, from decodebin */
} Load;

static void
post_application (GstElement *from, const char *name)
{
  gst_element_post_message (from, gst_message_new_application (GST_OBJECT (from),
                                                              gst_structure_new_empty (name)));
}

/* Encodes as the samples arrive, in both laws, so no 8 kHz PCM copy of the
 * whole tune is ever held. */
static void
append_g711 (Load *load, const guint8 *data, gsize size)
{
  gsize n = size / 2;        /* audio caps guarantee whole S16 samples */
  guint old = load->pcmu->len;
  const gint16 *samples = (const gint16 *) (gconstpointer) data;   /* native order */

  g_byte_array_set_size (load->pcmu, old + n);
  g_byte_array_set_size (load->pcma, old + n);
  for (gsize i = 0; i < n; i++)
    {
      load->pcmu->data[old + i] = td_g711_ulaw_encode (samples[i]);
      load->pcma->data[old + i] = td_g711_alaw_encode (samples[i]);
    }
}

/* An appsink's streaming thread, once per decoded buffer: the 8 kHz
 * branch's (`g711`) or the 16 kHz one's. */
static GstFlowReturn
take_sample (GstAppSink *sink, Load *load, gboolean g711)
{
  g_autoptr (GstSample) sample = gst_app_sink_pull_sample (sink);
  g_atomic_int_inc (&load->samples);
  if (sample == NULL)
    return GST_FLOW_EOS;
  if (g_atomic_int_get (&load->too_long))
    return GST_FLOW_EOS;

  GstMapInfo map;
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  if (buffer == NULL || !gst_buffer_map (buffer, &map, GST_MAP_READ))
    return GST_FLOW_OK;
  if (g711)
    append_g711 (load, map.data, map.size);
  else
    g_byte_array_append (load->pcm, map.data, (guint) (map.size & ~(gsize) 1));
  gst_buffer_unmap (buffer, &map);

  /* Stop decoding at once rather than after an hour-long file. */
  if (g711 && load->pcmu->len > MAX_SAMPLES &&
      g_atomic_int_compare_and_exchange (&load->too_long, FALSE, TRUE))
    {
      post_application (GST_ELEMENT (sink), MSG_TOO_LONG);
      return GST_FLOW_EOS;
    }
  return GST_FLOW_OK;
}

static GstFlowReturn
on_g711_sample (GstAppSink *sink, gpointer data)
{
  return take_sample (sink, data, TRUE);
}

static GstFlowReturn
on_wide_sample (GstAppSink *sink, gpointer data)
{
  return take_sample (sink, data, FALSE);
}

/* ---- the pipeline ------------------------------------------------------- */

/* decodebin's streaming thread: link the first audio stream, ignore the rest
 * (video in a container, a second audio track). */
static void
on_pad_added (GstElement *decodebin, GstPad *pad, gpointer data)
{
  Load *load = data;
  g_autoptr (GstCaps) caps = gst_pad_get_current_caps (pad);
  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  if (gst_caps_is_empty (caps) || gst_caps_is_any (caps))
    return;
  const char *media = gst_structure_get_name (gst_caps_get_structure (caps, 0));
  if (!g_str_has_prefix (media, "audio/"))
    return;
  if (!g_atomic_int_compare_and_exchange (&load->audio_linked, 0, 1))
    return;

  g_autoptr (GstPad) sink = gst_element_get_static_pad (load->convert, "sink");
  GstPadLinkReturn ret = gst_pad_link (pad, sink);
  if (ret != GST_PAD_LINK_OK)
    GST_ELEMENT_ERROR (decodebin, CORE, NEGOTIATION, (NULL),
                       ("linking the audio stream failed: %s", gst_pad_link_get_name (ret)));
}

/* decodebin has exposed every stream it will: none was audio. Without this
 * the load would wait for an EOS that no sink will post. */
static void
on_no_more_pads (GstElement *decodebin, gpointer data)
{
  Load *load = data;
  if (!g_atomic_int_get (&load->audio_linked))
    post_application (decodebin, MSG_NO_AUDIO);
}

static GstElement *
make_element (const char *factory, GError **error)
{
  GstElement *element = gst_element_factory_make (factory, NULL);
  if (element == NULL)
    g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_FAILED,
                 "GStreamer element '%s' is missing (is gstreamer1.0-plugins-base installed?)",
                 factory);
  return element;
}

/* e[i] = a new element of factories[i], each; on failure none is left. */
static gboolean
make_elements (const char *const *factories, guint n, GstElement **e, GError **error)
{
  for (guint i = 0; i < n; i++)
    if ((e[i] = make_element (factories[i], error)) == NULL)
      {
        while (i-- > 0)
          gst_object_unref (gst_object_ref_sink (e[i]));
        return FALSE;
      }
  return TRUE;
}

/* One branch after the tee: queue ! audioresample
 *   ! audio/x-raw,format=S16 (native),rate=@rate,channels=1 ! appsink. */
static gboolean
add_branch (Load *load, GstElement *tee, guint rate,
            GstFlowReturn (*on_sample) (GstAppSink *, gpointer), GError **error)
{
  static const char *const factories[] = { "queue", "audioresample", "capsfilter", "appsink" };
  GstElement *e[G_N_ELEMENTS (factories)];

  if (!make_elements (factories, G_N_ELEMENTS (factories), e, error))
    return FALSE;
  g_autoptr (GstCaps) caps = gst_caps_new_simple ("audio/x-raw",
                                                  "format", G_TYPE_STRING, S16_NATIVE,
                                                  "rate", G_TYPE_INT, (int) rate,
                                                  "channels", G_TYPE_INT, 1,
                                                  "layout", G_TYPE_STRING, "interleaved",
                                                  NULL);
  g_object_set (e[2], "caps", caps, NULL);
  g_object_set (e[3], "sync", FALSE, NULL);
  GstAppSinkCallbacks callbacks = { .new_sample = on_sample };
  gst_app_sink_set_callbacks (GST_APP_SINK (e[3]), &callbacks, load, NULL);
  gst_bin_add_many (GST_BIN (load->pipeline), e[0], e[1], e[2], e[3], NULL);
  return gst_element_link_many (tee, e[0], e[1], e[2], e[3], NULL);
}

/* filesrc ! decodebin ! audioconvert ! tee, then an 8 kHz branch for G.711
 * and a 16 kHz one for the rest (add_branch). Each resamples the source
 * once: an 8 kHz file passes untouched to G.711. Built by hand rather than
 * parsed, so no path needs quoting. */
static gboolean
build_pipeline (Load *load, const char *path, GError **error)
{
  static const char *const factories[] = { "filesrc", "decodebin", "audioconvert", "tee" };
  GstElement *e[G_N_ELEMENTS (factories)];

  if (!make_elements (factories, G_N_ELEMENTS (factories), e, error))
    return FALSE;

  GstElement *src = e[0], *decode = e[1], *convert = e[2], *tee = e[3];
  g_object_set (src, "location", path, NULL);
  /* Only decodable streams, so a stream we cannot decode is an error rather
   * than a pad with encoded caps. */
  g_object_set (decode, "expose-all-streams", FALSE, NULL);

  load->pipeline = gst_pipeline_new ("td-tune");
  load->convert = convert;
  gst_bin_add_many (GST_BIN (load->pipeline), src, decode, convert, tee, NULL);
  if (!gst_element_link (src, decode) || !gst_element_link (convert, tee))
    {
      g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_FAILED,
                   "cannot link the decoding pipeline");
      return FALSE;
    }
  GError *local = NULL;
  if (!add_branch (load, tee, TD_TUNE_RATE, on_g711_sample, &local)
      || !add_branch (load, tee, TD_TUNE_DECODE_RATE, on_wide_sample, &local))
    {
      if (local)
        g_propagate_error (error, local);
      else
        g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_FAILED,
                     "cannot link the decoding pipeline");
      return FALSE;
    }

  g_signal_connect (decode, "pad-added", G_CALLBACK (on_pad_added), load);
  g_signal_connect (decode, "no-more-pads", G_CALLBACK (on_no_more_pads), load);
  return TRUE;
}

/* decodebin names what it could not decode in a missing-plugin element
 * message before its error; read it without linking libgstpbutils. */
static void
note_missing_plugin (Load *load, GstMessage *msg)
{
  const GstStructure *s = gst_message_get_structure (msg);
  if (s == NULL || !gst_structure_has_name (s, "missing-plugin") || load->missing != NULL)
    return;
  const GValue *detail = gst_structure_get_value (s, "detail");
  if (detail != NULL && G_VALUE_HOLDS (detail, GST_TYPE_CAPS))
    load->missing = gst_caps_to_string (gst_value_get_caps (detail));
}

/* Turns GStreamer's error into ours: the caller wants to know whether to fix
 * the path, the file or the installation. */
static void
set_error_from_gst (Load *load, GstMessage *msg, GError **error)
{
  g_autoptr (GError) gerr = NULL;
  g_autofree char *debug = NULL;
  gst_message_parse_error (msg, &gerr, &debug);
  g_debug ("GStreamer error from %s: %s (%s)", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
           gerr->message, debug ? debug : "");

  if (g_error_matches (gerr, GST_STREAM_ERROR, GST_STREAM_ERROR_TYPE_NOT_FOUND)
      || g_error_matches (gerr, GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE))
    g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_AUDIO, "not an audio file (%s)",
                 gerr->message);
  else if (load->missing != NULL
           || g_error_matches (gerr, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN)
           || g_error_matches (gerr, GST_STREAM_ERROR, GST_STREAM_ERROR_CODEC_NOT_FOUND))
    g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NO_DECODER,
                 "no GStreamer decoder installed for %s",
                 load->missing ? load->missing : "this format");
  else if (gerr->domain == GST_RESOURCE_ERROR)
    g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_FOUND, "%s", gerr->message);
  else if (!g_atomic_int_get (&load->audio_linked))
    /* e.g. a video-only file: decodebin's pads went unlinked. */
    g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_AUDIO, "no audio stream (%s)",
                 gerr->message);
  else
    g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_FAILED, "decoding failed: %s",
                 gerr->message);
}

/* The outcome of a message the loading thread waits for; FALSE to go on
 * waiting. */
static gboolean
handle_message (Load *load, GstMessage *msg, gboolean *ok, GError **error)
{
  switch (GST_MESSAGE_TYPE (msg))
    {
    case GST_MESSAGE_ELEMENT:
      note_missing_plugin (load, msg);
      return FALSE;
    case GST_MESSAGE_ERROR:
      set_error_from_gst (load, msg, error);
      return TRUE;
    case GST_MESSAGE_APPLICATION:
      if (gst_message_has_name (msg, MSG_TOO_LONG))
        g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_TOO_LONG,
                     "longer than the limit of %d minutes", TD_TUNE_MAX_SECONDS / 60);
      else if (gst_message_has_name (msg, MSG_NO_AUDIO))
        g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_AUDIO, "no audio stream");
      else
        return FALSE;
      return TRUE;
    case GST_MESSAGE_EOS:
      *ok = TRUE;
      return TRUE;
    default:
      return FALSE;
    }
}

/* Plays the pipeline to EOS or an error, reading the bus directly: no main
 * loop, default or private, is involved. */
static gboolean
run_pipeline (Load *load, GError **error)
{
  g_autoptr (GstBus) bus = gst_element_get_bus (load->pipeline);
  gint64 deadline = g_get_monotonic_time () + LOAD_TIMEOUT_S * G_USEC_PER_SEC;
  gboolean ok = FALSE;

  if (gst_element_set_state (load->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    {
      /* The element that failed has posted why, as a rule. */
      g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
      if (msg != NULL)
        set_error_from_gst (load, msg, error);
      else
        g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_FAILED,
                     "the decoding pipeline would not start");
      return FALSE;
    }
  gint seen = 0;
  gint64 progress = g_get_monotonic_time ();
  for (;;)
    {
      gint64 now = g_get_monotonic_time ();
      gint64 left = deadline - now;
      if (g_atomic_int_get (&load->samples) != seen)
        {
          seen = g_atomic_int_get (&load->samples);
          progress = now;
        }
      if (now - progress > STALL_S * G_USEC_PER_SEC)
        {
          g_set_error (error, TD_TUNE_ERROR, seen ? TD_TUNE_ERROR_FAILED : TD_TUNE_ERROR_NOT_AUDIO,
                       "decoding stalled for %d s: damaged or unsupported file", STALL_S);
          return FALSE;
        }
      if (left <= 0)
        {
          g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_FAILED,
                       "decoding took more than %d s", LOAD_TIMEOUT_S);
          return FALSE;
        }
      /* Short waits, so a stall is noticed. */
      g_autoptr (GstMessage) msg = gst_bus_timed_pop_filtered (
        bus, (GstClockTime) MIN (left, 250 * 1000) * GST_USECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_APPLICATION | GST_MESSAGE_ELEMENT);
      if (msg != NULL && handle_message (load, msg, &ok, error))
        return ok;
    }
}

/* ---- loading ------------------------------------------------------------ */

/* The errors we can name better than GStreamer: a missing, unreadable,
 * special or empty file. */
static gboolean
check_file (const char *path, GError **error)
{
  GStatBuf st;
  if (g_stat (path, &st) != 0 || g_access (path, R_OK) != 0)
    {
      int saved = errno;
      g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_FOUND, "%s", g_strerror (saved));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_FOUND, "not a regular file");
      return FALSE;
    }
  if (st.st_size == 0)
    {
      g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_EMPTY, "the file is empty");
      return FALSE;
    }
  return TRUE;
}

static gboolean
decode_file (Load *load, const char *path, GError **error)
{
  GError *gst_error = NULL;
  if (!gst_init_check (NULL, NULL, &gst_error))
    {
      g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_FAILED, "GStreamer cannot start: %s",
                   gst_error->message);
      g_error_free (gst_error);
      return FALSE;
    }
  if (!build_pipeline (load, path, error))
    return FALSE;
  gboolean ok = run_pipeline (load, error);

  /* NULL joins the streaming threads: after it, `load` is ours alone. */
  gst_element_set_state (load->pipeline, GST_STATE_NULL);
  if (!ok)
    return FALSE;
  if (!g_atomic_int_get (&load->audio_linked))
    {
      g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_AUDIO, "no audio stream");
      return FALSE;
    }
  if (load->pcmu->len == 0)
    {
      g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_EMPTY, "the audio stream has no samples");
      return FALSE;
    }
  return TRUE;
}

/* Pads @array to whole frames of @silence and takes its bytes, trimmed:
 * GByteArray grows by powers of two, which would keep up to twice the
 * memory for the life of the tune. */
static TdTuneTrack
steal_g711 (GByteArray *array, guint n_frames, guint8 silence)
{
  guint len = array->len, size = n_frames * TD_TUNE_FRAME_BYTES;
  g_byte_array_set_size (array, size);
  memset (array->data + len, silence, size - len);
  return (TdTuneTrack) { .data = g_realloc (g_byte_array_free (array, FALSE), size),
                         .size = size, .frame_bytes = TD_TUNE_FRAME_BYTES };
}

/* Every load error names the file, in a form fit for a log line. */
static void
propagate_for (const char *path, GError **error, GError *local)
{
  g_autofree char *shown = g_filename_display_name (path);
  g_propagate_prefixed_error (error, local, "tune '%s': ", shown);
}

TdTune *
td_tune_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  GError *local = NULL;
  if (!check_file (path, &local))
    {
      propagate_for (path, error, local);
      return NULL;
    }

  Load load = { .pcm = g_byte_array_new (), .pcmu = g_byte_array_new (),
                .pcma = g_byte_array_new () };
  gint64 start = g_get_monotonic_time ();
  gboolean ok = decode_file (&load, path, &local);
  if (load.pipeline != NULL)
    gst_object_unref (load.pipeline);
  g_free (load.missing);
  if (!ok)
    {
      g_byte_array_unref (load.pcm);
      g_byte_array_unref (load.pcmu);
      g_byte_array_unref (load.pcma);
      propagate_for (path, error, local);
      return NULL;
    }

  /* Whole frames, the last padded with silence; the two resamplers may
   * disagree by a sample at the end. */
  guint wide = load.pcm->len / 2;
  guint n_frames = MAX ((load.pcmu->len + TD_TUNE_FRAME_SAMPLES - 1) / TD_TUNE_FRAME_SAMPLES,
                        (wide + WIDE_FRAME - 1) / WIDE_FRAME);
  g_byte_array_set_size (load.pcm, n_frames * WIDE_FRAME * 2);
  memset (load.pcm->data + wide * 2, 0, load.pcm->len - wide * 2);

  TdTune *tune = td_tune_alloc (path, n_frames);
  g_debug ("%s: decoded in %.0f ms", path, (g_get_monotonic_time () - start) / 1000.0);
  tune->track[TD_CODEC_PCMU] = steal_g711 (load.pcmu, n_frames, TD_G711_ULAW_SILENCE);
  tune->track[TD_CODEC_PCMA] = steal_g711 (load.pcma, n_frames, TD_G711_ALAW_SILENCE);
  td_tune_encode_wideband (tune, (const gint16 *) (gpointer) load.pcm->data, TD_TUNE_DECODE_RATE);
  g_byte_array_unref (load.pcm);
  g_debug ("loaded %s: %u frames (%.2f s) in %.0f ms", path, tune->n_frames,
           tune->n_frames / 50.0, (g_get_monotonic_time () - start) / 1000.0);
  return tune;
}

/* ---- the tune ----------------------------------------------------------- */

TdTune *
td_tune_alloc (const char *path, guint n_frames)
{
  TdTune *tune = g_new0 (TdTune, 1);
  g_atomic_ref_count_init (&tune->ref);
  tune->path = g_strdup (path);
  tune->n_frames = n_frames;
  return tune;
}

TdTune *
td_tune_new_from_pcm (const gint16 *samples, gsize n_samples)
{
  g_return_val_if_fail (samples != NULL || n_samples == 0, NULL);
  g_return_val_if_fail (n_samples <= (gsize) TD_TUNE_MAX_SECONDS * TD_TUNE_RATE, NULL);

  guint n_frames = (guint) MAX (1, (n_samples + TD_TUNE_FRAME_SAMPLES - 1) / TD_TUNE_FRAME_SAMPLES);
  g_autofree gint16 *pcm = g_new0 (gint16, (gsize) n_frames * TD_TUNE_FRAME_SAMPLES);
  if (n_samples)
    memcpy (pcm, samples, n_samples * sizeof *samples);
  TdTune *tune = td_tune_alloc ("(pcm)", n_frames);
  td_tune_encode_g711 (tune, pcm);
  td_tune_encode_wideband (tune, pcm, TD_TUNE_RATE);
  return tune;
}

TdTune *
td_tune_ref (TdTune *tune)
{
  g_return_val_if_fail (tune != NULL, NULL);
  g_atomic_ref_count_inc (&tune->ref);
  return tune;
}

void
td_tune_unref (TdTune *tune)
{
  if (tune == NULL || !g_atomic_ref_count_dec (&tune->ref))
    return;
  for (guint c = 0; c < TD_CODEC_COUNT; c++)
    {
      g_free (tune->track[c].data);
      g_free (tune->track[c].offsets);
    }
  g_free (tune->path);
  g_free (tune);
}

const char *
td_tune_path (const TdTune *tune)
{
  g_return_val_if_fail (tune != NULL, NULL);
  return tune->path;
}

guint
td_tune_n_frames (const TdTune *tune)
{
  g_return_val_if_fail (tune != NULL, 0);
  return tune->n_frames;
}

gboolean
td_tune_has_codec (const TdTune *tune, TdCodec codec)
{
  g_return_val_if_fail (tune != NULL, FALSE);
  return (guint) codec < TD_CODEC_COUNT && tune->track[codec].data != NULL;
}

const guint8 *
td_tune_frame (const TdTune *tune, TdCodec codec, guint i, gsize *len)
{
  g_return_val_if_fail (len != NULL, NULL);
  *len = 0;
  g_return_val_if_fail (tune != NULL, NULL);
  g_return_val_if_fail ((guint) codec < TD_CODEC_COUNT, NULL);
  if (!td_tune_has_codec (tune, codec))
    return NULL;

  const TdTuneTrack *track = &tune->track[codec];
  guint f = i % tune->n_frames;
  if (track->frame_bytes)
    {
      *len = track->frame_bytes;
      return track->data + (gsize) f * track->frame_bytes;
    }
  *len = track->offsets[f + 1] - track->offsets[f];
  return track->data + track->offsets[f];
}

gsize
td_tune_memory (const TdTune *tune, TdCodec codec)
{
  g_return_val_if_fail (tune != NULL, 0);
  if (!td_tune_has_codec (tune, codec))
    return 0;
  const TdTuneTrack *track = &tune->track[codec];
  return track->size + (track->offsets ? (tune->n_frames + 1) * sizeof (guint32) : 0);
}
