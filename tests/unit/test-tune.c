/* Unit tests for td-tune and td-g711: G.711 against the ITU-T reference
 * points, tunes generated at test time (WAV written by hand, Ogg/FLAC/MP3
 * encoded by GStreamer when the encoders exist) loaded and decoded back to
 * check level and pitch, frame wrapping and padding, the load errors,
 * td_codec_from_sdp; G.722 and Opus frames decoded back by GStreamer's own
 * decoders (pitch, level, and no gap where the tune loops); the ringing
 * tones' cadence and pitch. */
#include "td-g711.h"
#include "td-tune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#define AMPLITUDE 10000.0
#define TONE_HZ   1000.0

static char *tmpdir;

/* ---- G.711 -------------------------------------------------------------- */

static void
test_g711_ulaw_reference (void)
{
  /* Encoder points from the brief and ITU-T G.191's g711.c. */
  g_assert_cmphex (td_g711_ulaw_encode (0), ==, 0xFF);
  g_assert_cmphex (td_g711_ulaw_encode (-1), ==, 0x7F);
  g_assert_cmphex (td_g711_ulaw_encode (3), ==, 0xFF);
  g_assert_cmphex (td_g711_ulaw_encode (-4), ==, 0x7F);    /* one's complement */
  g_assert_cmphex (td_g711_ulaw_encode (32767), ==, 0x80);
  g_assert_cmphex (td_g711_ulaw_encode (-32768), ==, 0x00);
  g_assert_cmphex (td_g711_ulaw_encode (1000), ==, 0xCE);
  g_assert_cmphex (td_g711_ulaw_encode (-1000), ==, 0x4E);

  /* The decoder table every implementation shares (Sun's ulaw2linear). */
  g_assert_cmpint (td_g711_ulaw_decode (0xFF), ==, 0);
  g_assert_cmpint (td_g711_ulaw_decode (0x7F), ==, 0);
  g_assert_cmpint (td_g711_ulaw_decode (0x7E), ==, -8);
  g_assert_cmpint (td_g711_ulaw_decode (0xFE), ==, 8);
  g_assert_cmpint (td_g711_ulaw_decode (0x80), ==, 32124);
  g_assert_cmpint (td_g711_ulaw_decode (0x00), ==, -32124);
  g_assert_cmpint (td_g711_ulaw_decode (0x01), ==, -31100);
  g_assert_cmpint (td_g711_ulaw_decode (0x0F), ==, -16764);
  g_assert_cmpint (td_g711_ulaw_decode (0x70), ==, -120);
  g_assert_cmpint (td_g711_ulaw_decode (0xCE), ==, 988);
  g_assert_cmpint (TD_G711_ULAW_SILENCE, ==, td_g711_ulaw_encode (0));
}

static void
test_g711_alaw_reference (void)
{
  g_assert_cmphex (td_g711_alaw_encode (0), ==, 0xD5);
  g_assert_cmphex (td_g711_alaw_encode (-1), ==, 0x55);
  g_assert_cmphex (td_g711_alaw_encode (32767), ==, 0xAA);
  g_assert_cmphex (td_g711_alaw_encode (-32768), ==, 0x2A);
  g_assert_cmphex (td_g711_alaw_encode (1000), ==, 0xFA);
  g_assert_cmphex (td_g711_alaw_encode (-1000), ==, 0x7A);

  /* Sun's alaw2linear. A-law has no zero: the smallest codes are +-8. */
  g_assert_cmpint (td_g711_alaw_decode (0xD5), ==, 8);
  g_assert_cmpint (td_g711_alaw_decode (0x55), ==, -8);
  g_assert_cmpint (td_g711_alaw_decode (0xAA), ==, 32256);
  g_assert_cmpint (td_g711_alaw_decode (0x2A), ==, -32256);
  g_assert_cmpint (td_g711_alaw_decode (0x00), ==, -5504);
  g_assert_cmpint (td_g711_alaw_decode (0x01), ==, -5248);
  g_assert_cmpint (td_g711_alaw_decode (0x02), ==, -6016);
  g_assert_cmpint (td_g711_alaw_decode (0x80), ==, 5504);
  g_assert_cmpint (td_g711_alaw_decode (0xFA), ==, 1008);
  g_assert_cmpint (TD_G711_ALAW_SILENCE, ==, td_g711_alaw_encode (0));
}

/* Every 16-bit sample: the error stays within half a quantisation step of
 * its segment (about 3% of the magnitude; 4 resp. 8 near zero), and the
 * decoded value never decreases as the input grows. */
static void
test_g711_round_trip_error (void)
{
  gint prev_u = G_MININT, prev_a = G_MININT;
  for (gint s = G_MININT16; s <= G_MAXINT16; s++)
    {
      gint mag = ABS (s);
      gint u = td_g711_ulaw_decode (td_g711_ulaw_encode ((gint16) s));
      gint a = td_g711_alaw_decode (td_g711_alaw_encode ((gint16) s));
      gint clip_u = MIN (mag, 32124 + 512), clip_a = MIN (mag, 32256 + 512);

      if (ABS (u - s) > (clip_u + 132) / 32 + 1 + (mag - clip_u))
        g_error ("µ-law %d -> %d", s, u);
      if (ABS (a - s) > MAX (8, clip_a / 32 + 1) + (mag - clip_a))
        g_error ("A-law %d -> %d", s, a);
      g_assert_cmpint (u, >=, prev_u);
      g_assert_cmpint (a, >=, prev_a);
      prev_u = u;
      prev_a = a;
    }
}

/* Decoding then encoding gives back every code (bar µ-law's negative zero,
 * which decodes to the same 0 as positive zero). */
static void
test_g711_codes_round_trip (void)
{
  for (guint c = 0; c < 256; c++)
    {
      if (c != 0x7F)
        g_assert_cmphex (td_g711_ulaw_encode (td_g711_ulaw_decode ((guint8) c)), ==, c);
      g_assert_cmphex (td_g711_alaw_encode (td_g711_alaw_decode ((guint8) c)), ==, c);
    }
  g_assert_cmphex (td_g711_ulaw_encode (td_g711_ulaw_decode (0x7F)), ==, 0xFF);
}

/* ---- test audio --------------------------------------------------------- */

static void
put_le (GByteArray *out, guint32 value, guint bytes)
{
  for (guint i = 0; i < bytes; i++)
    {
      guint8 b = (guint8) (value >> (8 * i));
      g_byte_array_append (out, &b, 1);
    }
}

/* A canonical 44-byte-header PCM WAV of a TONE_HZ sine, the same in every
 * channel. The phase offset keeps samples off exact zeros, so counting
 * sign changes counts the tone's zero crossings. */
static char *
write_wav (const char *name, guint rate, guint channels, gsize n_samples)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  guint32 data_bytes = (guint32) (n_samples * channels * 2);

  g_byte_array_append (out, (const guint8 *) "RIFF", 4);
  put_le (out, 36 + data_bytes, 4);
  g_byte_array_append (out, (const guint8 *) "WAVEfmt ", 8);
  put_le (out, 16, 4);                      /* fmt chunk size */
  put_le (out, 1, 2);                       /* PCM */
  put_le (out, channels, 2);
  put_le (out, rate, 4);
  put_le (out, rate * channels * 2, 4);     /* byte rate */
  put_le (out, channels * 2, 2);            /* block align */
  put_le (out, 16, 2);                      /* bits per sample */
  g_byte_array_append (out, (const guint8 *) "data", 4);
  put_le (out, data_bytes, 4);
  for (gsize i = 0; i < n_samples; i++)
    {
      gint16 s = (gint16) lrint (AMPLITUDE * sin (2 * G_PI * TONE_HZ * i / rate + 0.3));
      for (guint c = 0; c < channels; c++)
        put_le (out, (guint16) s, 2);
    }

  char *path = g_build_filename (tmpdir, name, NULL);
  g_assert_true (g_file_set_contents (path, (const char *) out->data, out->len, NULL));
  return path;
}

static char *
write_text (const char *name, const char *contents, gssize len)
{
  char *path = g_build_filename (tmpdir, name, NULL);
  g_assert_true (g_file_set_contents (path, contents, len, NULL));
  return path;
}

/* Skips the test unless every element in @names (separated by " !") exists. */
static gboolean
have_elements (const char *names)
{
  g_auto (GStrv) factories = g_strsplit_set (names, " !", -1);
  for (guint i = 0; factories[i] != NULL; i++)
    {
      if (*factories[i] == '\0')
        continue;
      g_autoptr (GstElementFactory) f = gst_element_factory_find (factories[i]);
      if (f == NULL)
        {
          g_autofree char *why = g_strdup_printf ("GStreamer element %s is missing", factories[i]);
          g_test_skip (why);
          return FALSE;
        }
    }
  return TRUE;
}

/* Runs "@source ! @encoder ! filesink" into @name; NULL (test skipped) when
 * an encoder element is missing. */
static char *
encode_file (const char *name, const char *source, const char *encoder)
{
  if (!have_elements (encoder))
    return NULL;

  char *path = g_build_filename (tmpdir, name, NULL);
  g_autofree char *launch = g_strdup_printf ("%s ! %s ! filesink location=\"%s\"",
                                             source, encoder, path);
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = gst_parse_launch (launch, &error);
  g_assert_no_error (error);

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  g_autoptr (GstBus) bus = gst_element_get_bus (pipeline);
  g_autoptr (GstMessage) msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND,
                                                           GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_assert_nonnull (msg);
  g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, GST_MESSAGE_EOS);
  return path;
}

/* A 1 s tone at 44.1 kHz mono, compressed by @encoder. */
static char *
encode_tone (const char *name, const char *encoder)
{
  g_autofree char *source = g_strdup_printf (
    "audiotestsrc wave=sine freq=%g volume=%g samplesperbuffer=441 num-buffers=100"
    " ! audio/x-raw,rate=44100,channels=1 ! audioconvert",
    TONE_HZ, AMPLITUDE / 32767.0);
  return encode_file (name, source, encoder);
}

/* ---- checking a loaded tune --------------------------------------------- */

/* Frame @i of a fixed-size codec (G.711, G.722): TD_TUNE_FRAME_BYTES. */
static const guint8 *
frame_at (const TdTune *tune, TdCodec codec, guint i)
{
  gsize len;
  const guint8 *frame = td_tune_frame (tune, codec, i, &len);
  g_assert_nonnull (frame);
  g_assert_cmpuint (len, ==, TD_TUNE_FRAME_BYTES);
  return frame;
}

/* The whole tune decoded back to linear. */
static gint16 *
decode_tune (const TdTune *tune, TdCodec codec, gsize *n_samples)
{
  guint n = td_tune_n_frames (tune);
  gint16 *pcm = g_new (gint16, (gsize) n * TD_TUNE_FRAME_SAMPLES);
  for (guint f = 0; f < n; f++)
    {
      const guint8 *frame = frame_at (tune, codec, f);
      for (guint i = 0; i < TD_TUNE_FRAME_SAMPLES; i++)
        pcm[f * TD_TUNE_FRAME_SAMPLES + i] = codec == TD_CODEC_PCMU
                                               ? td_g711_ulaw_decode (frame[i])
                                               : td_g711_alaw_decode (frame[i]);
    }
  *n_samples = (gsize) n * TD_TUNE_FRAME_SAMPLES;
  return pcm;
}

/* Checks the middle @seconds of the decoded tune (skipping encoder and
 * resampler edges) is the test tone: its level and its pitch. */
static void
check_tone (const TdTune *tune, TdCodec codec, double seconds, double rms_tolerance)
{
  gsize n;
  g_autofree gint16 *pcm = decode_tune (tune, codec, &n);
  gsize first = 400, count = (gsize) (seconds * TD_TUNE_RATE);
  g_assert_cmpuint (first + count, <=, n);

  double sum = 0;
  guint crossings = 0;
  for (gsize i = first; i < first + count; i++)
    {
      sum += (double) pcm[i] * pcm[i];
      if ((pcm[i] < 0) != (pcm[i - 1] < 0))
        crossings++;
    }
  double rms = sqrt (sum / count), expected_rms = AMPLITUDE / G_SQRT2;
  double expected_crossings = 2 * TONE_HZ * seconds;

  g_test_message ("%s: rms %.0f (source %.0f), %u zero crossings in %.2f s",
                  td_codec_name (codec), rms, expected_rms, crossings, seconds);
  g_assert_cmpfloat (fabs (rms - expected_rms), <, expected_rms * rms_tolerance);
  g_assert_cmpfloat (fabs (crossings - expected_crossings), <=, expected_crossings * 0.01 + 2);
}

static TdTune *
load_ok (const char *path)
{
  g_autoptr (GError) error = NULL;
  TdTune *tune = td_tune_load (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (tune);
  g_assert_cmpstr (td_tune_path (tune), ==, path);
  return tune;
}

static void
load_fails (const char *path, TdTuneError code)
{
  g_autoptr (GError) error = NULL;
  TdTune *tune = td_tune_load (path, &error);
  g_assert_null (tune);
  g_assert_error (error, TD_TUNE_ERROR, (gint) code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, path));
}

/* ---- tunes -------------------------------------------------------------- */

static void
test_wav_8k_mono (void)
{
  g_autofree char *path = write_wav ("8k-mono.wav", 8000, 1, 8000);
  g_autoptr (TdTune) tune = load_ok (path);

  g_assert_cmpuint (td_tune_n_frames (tune), ==, 50);
  check_tone (tune, TD_CODEC_PCMU, 0.9, 0.02);
  check_tone (tune, TD_CODEC_PCMA, 0.9, 0.02);

  /* No resampling at 8 kHz: the frames are the source samples encoded. */
  const guint8 *u = frame_at (tune, TD_CODEC_PCMU, 0);
  const guint8 *a = frame_at (tune, TD_CODEC_PCMA, 0);
  for (guint i = 0; i < TD_TUNE_FRAME_SAMPLES; i++)
    {
      gint16 s = (gint16) lrint (AMPLITUDE * sin (2 * G_PI * TONE_HZ * i / 8000 + 0.3));
      g_assert_cmphex (u[i], ==, td_g711_ulaw_encode (s));
      g_assert_cmphex (a[i], ==, td_g711_alaw_encode (s));
    }
}

static void
test_wav_44k_stereo (void)
{
  g_autofree char *path = write_wav ("44k-stereo.wav", 44100, 2, 44100);
  g_autoptr (TdTune) tune = load_ok (path);

  g_assert_cmpuint (td_tune_n_frames (tune), >=, 50);
  g_assert_cmpuint (td_tune_n_frames (tune), <=, 51);
  check_tone (tune, TD_CODEC_PCMU, 0.9, 0.03);
  check_tone (tune, TD_CODEC_PCMA, 0.9, 0.03);
}

static void
check_encoded (const char *name, const char *encoder)
{
  g_autofree char *path = encode_tone (name, encoder);
  if (path == NULL)
    return;
  g_autoptr (TdTune) tune = load_ok (path);

  /* Encoders may add priming and padding. */
  g_assert_cmpuint (td_tune_n_frames (tune), >=, 49);
  g_assert_cmpuint (td_tune_n_frames (tune), <=, 56);
  check_tone (tune, TD_CODEC_PCMU, 0.8, 0.1);
  check_tone (tune, TD_CODEC_PCMA, 0.8, 0.1);
}

static void
test_ogg_vorbis (void)
{
  check_encoded ("tone.ogg", "vorbisenc ! oggmux");
}

static void
test_flac (void)
{
  check_encoded ("tone.flac", "flacenc");
}

static void
test_mp3 (void)
{
  check_encoded ("tone.mp3", "lamemp3enc");
}

/* frame(i) is frame(i % n_frames), to the pointer. */
static void
test_frame_wraps (void)
{
  g_autofree char *path = write_wav ("wrap.wav", 8000, 1, 8000);
  g_autoptr (TdTune) tune = load_ok (path);
  guint n = td_tune_n_frames (tune);

  for (guint i = 0; i < n; i++)
    for (TdCodec c = 0; c < TD_CODEC_COUNT; c++)
      {
        gsize len, len_n, len_7n;
        g_assert_true (td_tune_has_codec (tune, c));
        const guint8 *frame = td_tune_frame (tune, c, i, &len);
        g_assert_true (td_tune_frame (tune, c, i + n, &len_n) == frame);
        g_assert_true (td_tune_frame (tune, c, i + 7 * n, &len_7n) == frame);
        g_assert_cmpuint (len, >, 0);
        g_assert_cmpuint (len_n, ==, len);
        g_assert_cmpuint (len_7n, ==, len);
      }
  g_assert_true (frame_at (tune, TD_CODEC_PCMU, 1)
                 == frame_at (tune, TD_CODEC_PCMU, 0) + TD_TUNE_FRAME_BYTES);
  g_assert_true (frame_at (tune, TD_CODEC_PCMU, G_MAXUINT)
                 == frame_at (tune, TD_CODEC_PCMU, G_MAXUINT % n));
  /* Opus frames follow each other in one block */
  gsize len0, len1;
  const guint8 *o0 = td_tune_frame (tune, TD_CODEC_OPUS, 0, &len0);
  g_assert_true (td_tune_frame (tune, TD_CODEC_OPUS, 1, &len1) == o0 + len0);

  gsize len = 99;
  g_test_expect_message ("tandem-tune", G_LOG_LEVEL_CRITICAL, "*");
  g_assert_null (td_tune_frame (tune, (TdCodec) 9, 0, &len));
  g_test_assert_expected_messages ();
  g_assert_cmpuint (len, ==, 0);
  g_assert_false (td_tune_has_codec (tune, (TdCodec) 9));
}

/* 1.01 s: 50 whole frames and one of 80 samples, padded with silence. */
static void
test_padding (void)
{
  g_autofree char *path = write_wav ("padded.wav", 8000, 1, 8080);
  g_autoptr (TdTune) tune = load_ok (path);

  g_assert_cmpuint (td_tune_n_frames (tune), ==, 51);
  const guint8 *u = frame_at (tune, TD_CODEC_PCMU, 50);
  const guint8 *a = frame_at (tune, TD_CODEC_PCMA, 50);
  for (guint i = 0; i < 80; i++)
    g_assert_cmphex (u[i], !=, TD_G711_ULAW_SILENCE);   /* the tone never nears 0 */
  for (guint i = 80; i < TD_TUNE_FRAME_BYTES; i++)
    {
      g_assert_cmphex (u[i], ==, TD_G711_ULAW_SILENCE);
      g_assert_cmphex (a[i], ==, TD_G711_ALAW_SILENCE);
    }
}

/* One sample is still a tune: one frame of it and silence. */
static void
test_one_sample (void)
{
  g_autofree char *path = write_wav ("one-sample.wav", 8000, 1, 1);
  g_autoptr (TdTune) tune = load_ok (path);
  g_assert_cmpuint (td_tune_n_frames (tune), ==, 1);
}

static void
test_refcount (void)
{
  g_autofree char *path = write_wav ("ref.wav", 8000, 1, 800);
  TdTune *tune = load_ok (path);
  g_assert_true (td_tune_ref (tune) == tune);
  td_tune_unref (tune);
  g_assert_cmpuint (td_tune_n_frames (tune), ==, 5);
  td_tune_unref (tune);
  td_tune_unref (NULL);
}

/* The relay thread refs and unrefs while others do: the count is atomic. */
static gpointer
ref_unref_many (gpointer data)
{
  for (guint i = 0; i < 100000; i++)
    td_tune_unref (td_tune_ref (data));
  return NULL;
}

static void
test_refcount_threads (void)
{
  g_autofree char *path = write_wav ("ref-threads.wav", 8000, 1, 800);
  g_autoptr (TdTune) tune = load_ok (path);
  GThread *threads[4];
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("ref", ref_unref_many, tune);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_assert_cmpuint (td_tune_n_frames (tune), ==, 5);
}

static gpointer
load_in_thread (gpointer path)
{
  return td_tune_load (path, NULL);
}

/* Loads run side by side (a reload while another tune loads) and agree. */
static void
test_concurrent_loads (void)
{
  g_autofree char *path = write_wav ("concurrent.wav", 44100, 2, 22050);
  g_autoptr (TdTune) reference = load_ok (path);
  GThread *threads[4];
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("load", load_in_thread, path);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_autoptr (TdTune) tune = g_thread_join (threads[i]);
      g_assert_nonnull (tune);
      g_assert_cmpuint (td_tune_n_frames (tune), ==, td_tune_n_frames (reference));
      for (guint f = 0; f < td_tune_n_frames (tune); f++)
        g_assert_cmpmem (frame_at (tune, TD_CODEC_PCMA, f), TD_TUNE_FRAME_BYTES,
                         frame_at (reference, TD_CODEC_PCMA, f), TD_TUNE_FRAME_BYTES);
    }
}

static guint
count_threads (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  guint n = 0;
  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Loading leaves no pipeline running. GStreamer's streaming threads go back
 * to GLib's shared thread pool, which keeps a few idle for up to 15 s, so
 * the check is that repeated loads do not add to them. */
static void
test_no_threads_left (void)
{
  if (!g_file_test ("/proc/self/task", G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no /proc/self/task");
      return;
    }
  g_autofree char *path = write_wav ("threads.wav", 44100, 2, 4410);
  td_tune_unref (load_ok (path));
  guint after_one = count_threads ();
  for (guint i = 0; i < 10; i++)
    td_tune_unref (load_ok (path));
  g_test_message ("%u threads after one load, %u after eleven", after_one, count_threads ());
  g_assert_cmpuint (count_threads (), <=, after_one);
}

/* Exactly the limit loads; one frame more is refused. */
static void
test_length_limit (void)
{
  gsize limit = (gsize) TD_TUNE_MAX_SECONDS * TD_TUNE_RATE;
  g_autofree char *at = write_wav ("limit.wav", 8000, 1, limit);
  g_autofree char *over = write_wav ("over.wav", 8000, 1, limit + 160);

  g_autoptr (TdTune) tune = load_ok (at);
  g_assert_cmpuint (td_tune_n_frames (tune), ==, TD_TUNE_MAX_SECONDS * 50);
  load_fails (over, TD_TUNE_ERROR_TOO_LONG);
  g_remove (at);
  g_remove (over);
}

/* ---- errors ------------------------------------------------------------- */

static void
test_missing_file (void)
{
  g_autofree char *path = g_build_filename (tmpdir, "no-such-tune.wav", NULL);
  load_fails (path, TD_TUNE_ERROR_NOT_FOUND);
  load_fails (tmpdir, TD_TUNE_ERROR_NOT_FOUND);      /* a directory */
}

static void
test_not_audio (void)
{
  g_autofree char *text = write_text ("readme.wav",
                                      "This is not a WAV file, only text renamed.\n"
                                      "Hold music goes here.\n", -1);
  load_fails (text, TD_TUNE_ERROR_NOT_AUDIO);

  /* A RIFF header that is not WAVE. */
  g_autofree char *riff = write_text ("avi.wav", "RIFF\x24\0\0\0AVI LIST\x04\0\0\0hdrl", 24);
  load_fails (riff, TD_TUNE_ERROR_NOT_AUDIO);
}

static void
test_empty (void)
{
  g_autofree char *empty = write_text ("empty.wav", "", 0);
  load_fails (empty, TD_TUNE_ERROR_EMPTY);

  /* A valid header with no samples. */
  g_autofree char *no_samples = write_wav ("no-samples.wav", 8000, 1, 0);
  load_fails (no_samples, TD_TUNE_ERROR_EMPTY);
}

/* A video-only file has no tune in it. */
static void
test_video_only (void)
{
  g_autofree char *path = encode_file ("video.ogg",
                                       "videotestsrc num-buffers=10"
                                       " ! video/x-raw,width=64,height=48,framerate=10/1",
                                       "theoraenc ! oggmux");
  if (path != NULL)
    load_fails (path, TD_TUNE_ERROR_NOT_AUDIO);
}

/* A WAV whose format tag no installed plugin decodes (WMA v2, which only
 * gst-libav handles). */
static void
test_no_decoder (void)
{
  g_autoptr (GstElementFactory) libav = gst_element_factory_find ("avdec_wmav2");
  if (libav != NULL)
    {
      g_test_skip ("gst-libav decodes WMA");
      return;
    }
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_byte_array_append (out, (const guint8 *) "RIFF", 4);
  put_le (out, 36 + 18 + 8 + 1000, 4);
  g_byte_array_append (out, (const guint8 *) "WAVEfmt ", 8);
  put_le (out, 18, 4);
  put_le (out, 0x0161, 2);         /* WAVE_FORMAT_WMAUDIO2 */
  put_le (out, 1, 2);
  put_le (out, 8000, 4);
  put_le (out, 1000, 4);
  put_le (out, 100, 2);
  put_le (out, 16, 2);
  put_le (out, 0, 2);              /* no extra format bytes */
  g_byte_array_append (out, (const guint8 *) "data", 4);
  put_le (out, 1000, 4);
  for (guint i = 0; i < 1000; i++)
    put_le (out, i * 7, 1);
  g_autofree char *path = write_text ("wma.wav", (const char *) out->data, out->len);
  load_fails (path, TD_TUNE_ERROR_NO_DECODER);
}

/* ---- td_codec_from_sdp -------------------------------------------------- */

static void
test_codec_from_sdp (void)
{
  static const struct { const char *in; gboolean ok; TdCodec codec; } cases[] = {
    { "0", TRUE, TD_CODEC_PCMU },
    { "8", TRUE, TD_CODEC_PCMA },
    { "9", TRUE, TD_CODEC_G722 },
    { "PCMU/8000", TRUE, TD_CODEC_PCMU },
    { "PCMA/8000", TRUE, TD_CODEC_PCMA },
    { "pcmu/8000", TRUE, TD_CODEC_PCMU },
    { "PcMa/8000/1", TRUE, TD_CODEC_PCMA },
    { "G722/8000", TRUE, TD_CODEC_G722 },
    { "g722/8000/1", TRUE, TD_CODEC_G722 },
    { "opus/48000/2", TRUE, TD_CODEC_OPUS },
    { "OPUS/48000/2", TRUE, TD_CODEC_OPUS },
    { " 0 ", TRUE, TD_CODEC_PCMU },
    { " 9", TRUE, TD_CODEC_G722 },
    { "3", FALSE, 0 },
    { "18", FALSE, 0 },
    { "96", FALSE, 0 },            /* dynamic: only its rtpmap says what it is */
    { "101", FALSE, 0 },
    { "128", FALSE, 0 },
    { "-0", FALSE, 0 },
    { "0x0", FALSE, 0 },
    { "09x", FALSE, 0 },
    { "", FALSE, 0 },
    { "PCMU", FALSE, 0 },
    { "PCMU/16000", FALSE, 0 },
    { "PCMU/8000/2", FALSE, 0 },
    { "PCMU/8000/1/x", FALSE, 0 },
    { "G722/16000", FALSE, 0 },    /* the rate G.722 samples at is not its RTP clock */
    { "G722/8000/2", FALSE, 0 },
    { "opus/48000", FALSE, 0 },    /* RFC 7587: the channel count is required... */
    { "opus/48000/1", FALSE, 0 },  /* ...and always 2 */
    { "opus/16000/2", FALSE, 0 },
    { "opus/48000/2/x", FALSE, 0 },
    { "telephone-event/8000", FALSE, 0 },
    { "PCMUX/8000", FALSE, 0 },
    { "G7221/16000", FALSE, 0 },
    { "/8000", FALSE, 0 },
    { "PCMU/x8000", FALSE, 0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      TdCodec codec = 99;
      g_test_message ("%s", cases[i].in);
      g_assert_cmpint (td_codec_from_sdp (cases[i].in, &codec), ==, cases[i].ok);
      if (cases[i].ok)
        g_assert_cmpint (codec, ==, cases[i].codec);
      else
        g_assert_cmpint (codec, ==, 99);
    }
  TdCodec codec = 99;
  g_assert_false (td_codec_from_sdp (NULL, &codec));

  static const struct { TdCodec codec; const char *name; guint32 rate; guint ticks; } info[] = {
    { TD_CODEC_PCMU, "PCMU", 8000, 160 },
    { TD_CODEC_PCMA, "PCMA", 8000, 160 },
    { TD_CODEC_G722, "G722", 8000, 160 },
    { TD_CODEC_OPUS, "opus", 48000, 960 },
  };
  G_STATIC_ASSERT (G_N_ELEMENTS (info) == TD_CODEC_COUNT);
  for (guint i = 0; i < G_N_ELEMENTS (info); i++)
    {
      g_assert_cmpstr (td_codec_name (info[i].codec), ==, info[i].name);
      g_assert_cmpuint (td_codec_clock_rate (info[i].codec), ==, info[i].rate);
      g_assert_cmpuint (td_codec_frame_ticks (info[i].codec), ==, info[i].ticks);
    }
  g_assert_null (td_codec_name (TD_CODEC_COUNT));
  g_assert_cmpuint (td_codec_clock_rate (TD_CODEC_COUNT), ==, 0);
  g_assert_cmpuint (td_codec_frame_ticks ((TdCodec) 99), ==, 0);
}

/* ---- G.722 and Opus, decoded back -------------------------------------- */

#define CODEC_TONE_HZ 700.0
#define DECODED_RATE  16000

/* One second of CODEC_TONE_HZ at 8 kHz: 700 whole cycles, so the tune loops
 * without a seam of its own. */
static TdTune *
codec_tone (void)
{
  gint16 pcm[TD_TUNE_RATE];
  for (guint i = 0; i < G_N_ELEMENTS (pcm); i++)
    pcm[i] = (gint16) lrint (AMPLITUDE * sin (2 * G_PI * CODEC_TONE_HZ * i / TD_TUNE_RATE));
  return td_tune_new_from_pcm (pcm, G_N_ELEMENTS (pcm));
}

/* Frames first, first + 1, ... (count of them, wrapping) of @codec
 * through GStreamer's decoder, as a receiver would decode the relay's
 * packets, to 16 kHz mono. */
static gint16 *
decode_frames (const TdTune *tune, TdCodec codec, guint first, guint count, gsize *n_samples)
{
  const char *launch = codec == TD_CODEC_G722
    ? "appsrc name=src format=time caps=audio/G722,rate=16000,channels=1 ! avdec_g722"
    : "appsrc name=src format=time"
      " caps=audio/x-opus,channel-mapping-family=0,rate=48000,channels=1 ! opusdec";
  g_autofree char *full = g_strdup_printf (
    "%s ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=%d,channels=1"
    " ! appsink name=sink sync=false", launch, DECODED_RATE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = gst_parse_launch (full, &error);
  g_assert_no_error (error);
  g_autoptr (GstElement) src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  g_autoptr (GstElement) sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GByteArray *out = g_byte_array_new ();

  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  for (guint k = 0; k < count; k++)
    {
      gsize len;
      const guint8 *frame = td_tune_frame (tune, codec, first + k, &len);
      g_assert_nonnull (frame);
      GstBuffer *buffer = gst_buffer_new_memdup (frame, len);
      GST_BUFFER_PTS (buffer) = k * 20 * GST_MSECOND;
      GST_BUFFER_DURATION (buffer) = 20 * GST_MSECOND;
      g_assert_cmpint (gst_app_src_push_buffer (GST_APP_SRC (src), buffer), ==, GST_FLOW_OK);
    }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  for (;;)
    {
      g_autoptr (GstSample) sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink),
                                                                  10 * GST_SECOND);
      if (sample == NULL)
        break;
      GstMapInfo map;
      GstBuffer *buffer = gst_sample_get_buffer (sample);
      g_assert_true (gst_buffer_map (buffer, &map, GST_MAP_READ));
      g_byte_array_append (out, map.data, (guint) map.size);
      gst_buffer_unmap (buffer, &map);
    }
  g_assert_true (gst_app_sink_is_eos (GST_APP_SINK (sink)));
  gst_element_set_state (pipeline, GST_STATE_NULL);
  *n_samples = out->len / 2;
  return (gint16 *) (gpointer) g_byte_array_free (out, FALSE);
}

/* The share of @x's power at @hz (Goertzel): near 1 for a pure tone at @hz
 * over whole cycles, near 0 far from it. */
static double
tone_share (const gint16 *x, gsize n, double hz, double rate)
{
  double coeff = 2 * cos (2 * G_PI * hz / rate), s1 = 0, s2 = 0, energy = 0;
  for (gsize i = 0; i < n; i++)
    {
      double s0 = x[i] + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
      energy += (double) x[i] * x[i];
    }
  double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return energy > 0 ? 2 * power / (n * energy) : 0;
}

static double
rms_of (const gint16 *x, gsize n)
{
  double sum = 0;
  for (gsize i = 0; i < n; i++)
    sum += (double) x[i] * x[i];
  return sqrt (sum / n);
}

/* The codec's frames are real: decoded by GStreamer's own decoder, 0.5 s
 * of them is still a 700 Hz tone at the source's level. */
static void
check_codec_tone (TdCodec codec, const char *elements)
{
  if (!have_elements (elements))
    return;
  g_autoptr (TdTune) tune = codec_tone ();
  g_assert_true (td_tune_has_codec (tune, codec));
  g_assert_cmpuint (td_tune_n_frames (tune), ==, 50);

  gsize n;
  g_autofree gint16 *pcm = decode_frames (tune, codec, 0, 50, &n);
  g_assert_cmpuint (n, >=, DECODED_RATE * 9 / 10);
  const gint16 *mid = pcm + DECODED_RATE / 4;   /* past the decoder's start */
  gsize len = DECODED_RATE / 2;                 /* 350 whole cycles */
  double at = tone_share (mid, len, CODEC_TONE_HZ, DECODED_RATE);
  double below = tone_share (mid, len, CODEC_TONE_HZ - 100, DECODED_RATE);
  double above = tone_share (mid, len, CODEC_TONE_HZ + 100, DECODED_RATE);
  double rms = rms_of (mid, len);
  g_test_message ("%s: %.3f of the power at %.0f Hz (%.4f at -100 Hz, %.4f at +100 Hz), "
                  "rms %.0f (source %.0f)", td_codec_name (codec), at, CODEC_TONE_HZ, below,
                  above, rms, AMPLITUDE / G_SQRT2);
  g_assert_cmpfloat (at, >, 0.95);
  g_assert_cmpfloat (below, <, 0.01);
  g_assert_cmpfloat (above, <, 0.01);
  g_assert_cmpfloat (fabs (rms - AMPLITUDE / G_SQRT2), <, AMPLITUDE / G_SQRT2 * 0.1);
}

static void
test_g722_tone (void)
{
  check_codec_tone (TD_CODEC_G722, "avenc_g722 avdec_g722");
}

static void
test_opus_tone (void)
{
  check_codec_tone (TD_CODEC_OPUS, "opusenc opusdec");
}

/* Where the relay loops (frame n-1, then 0), a receiver's decoder hears no
 * seam: every 5 ms of the decoded tone around the loop point keeps the
 * tone's level within @tolerance. Measured: with frame 0 from a cold
 * encoder, G.722 +264% (a click), Opus -16%; as encoded, G.722 +13% at
 * worst (its ADPCM never settles into an exact cycle), Opus 2%. */
static void
check_codec_loop (TdCodec codec, const char *elements, double tolerance)
{
  if (!have_elements (elements))
    return;
  g_autoptr (TdTune) tune = codec_tone ();
  guint n = td_tune_n_frames (tune);
  gsize samples;
  /* frames n-20 ... n-1, 0 ... 9: the loop point 400 ms in, past the test
   * decoder's own start; the 100 ms either side of it are checked */
  g_autofree gint16 *pcm = decode_frames (tune, codec, n - 20, 30, &samples);
  guint block = DECODED_RATE / 200, per_frame = DECODED_RATE / 50;
  double want = AMPLITUDE / G_SQRT2, worst = want;

  g_assert_cmpuint (samples, >=, 25 * per_frame);
  for (gsize at = 15 * per_frame; at + block <= 25 * per_frame; at += block)
    {
      double rms = rms_of (pcm + at, block);
      if (fabs (rms - want) > fabs (worst - want))
        worst = rms;
    }
  g_test_message ("%s: 5 ms blocks across the loop point: worst rms %.0f (tone %.0f)",
                  td_codec_name (codec), worst, want);
  g_assert_cmpfloat (fabs (worst - want), <, want * tolerance);
  g_assert_cmpfloat (tone_share (pcm + 15 * per_frame, 10 * per_frame, CODEC_TONE_HZ,
                                 DECODED_RATE), >, 0.95);
}

static void
test_g722_loop (void)
{
  check_codec_loop (TD_CODEC_G722, "avenc_g722 avdec_g722", 0.2);
}

static void
test_opus_loop (void)
{
  check_codec_loop (TD_CODEC_OPUS, "opusenc opusdec", 0.08);
}

/* An Opus packet's duration from its TOC byte (RFC 6716 3.1), in 0.1 ms;
 * 0 unless it holds one frame (code 0). */
static guint
opus_packet_tenths_ms (guint8 toc)
{
  static const guint silk[] = { 100, 200, 400, 600 }, celt[] = { 25, 50, 100, 200 };
  guint config = toc >> 3;
  if ((toc & 3) != 0)
    return 0;
  if (config < 12)
    return silk[config % 4];
  if (config < 16)
    return config % 2 ? 200 : 100;
  return celt[config % 4];
}

/* Frame sizes: G.711 and G.722 160 bytes each, Opus variable and lean, each
 * packet one mono 20 ms frame; the memory figures add up. A loaded file has
 * every codec too. */
static void
test_codec_frames (void)
{
  if (!have_elements ("avenc_g722 opusenc"))
    return;
  g_autoptr (TdTune) tune = codec_tone ();
  guint n = td_tune_n_frames (tune);
  gsize opus = 0, min_len = G_MAXSIZE, max_len = 0;

  for (TdCodec c = 0; c < TD_CODEC_COUNT; c++)
    g_assert_true (td_tune_has_codec (tune, c));
  for (guint i = 0; i < n; i++)
    {
      gsize len;
      frame_at (tune, TD_CODEC_PCMU, i);
      frame_at (tune, TD_CODEC_PCMA, i);
      frame_at (tune, TD_CODEC_G722, i);
      g_assert_nonnull (td_tune_frame (tune, TD_CODEC_OPUS, i, &len));
      g_assert_cmpuint (len, >, 0);
      g_assert_cmpuint (len, <, 200);   /* 24 kbit/s: 60 bytes a frame on average */
      const guint8 *packet = td_tune_frame (tune, TD_CODEC_OPUS, i, &len);
      g_assert_cmpuint (opus_packet_tenths_ms (packet[0]), ==, 200);
      g_assert_cmpuint (packet[0] & 4, ==, 0);   /* mono */
      opus += len;
      min_len = MIN (min_len, len);
      max_len = MAX (max_len, len);
    }
  g_test_message ("Opus frames %" G_GSIZE_FORMAT "-%" G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT
                  " in all", min_len, max_len, opus);
  for (TdCodec c = TD_CODEC_PCMU; c <= TD_CODEC_G722; c++)
    g_assert_cmpuint (td_tune_memory (tune, c), ==, n * TD_TUNE_FRAME_BYTES);
  g_assert_cmpuint (td_tune_memory (tune, TD_CODEC_OPUS), ==, opus + (n + 1) * sizeof (guint32));

  g_autofree char *path = write_wav ("codecs.wav", 44100, 2, 22050);
  g_autoptr (TdTune) loaded = load_ok (path);
  for (TdCodec c = 0; c < TD_CODEC_COUNT; c++)
    g_assert_true (td_tune_has_codec (loaded, c));
}

/* A GStreamer without an encoder (here: its features taken out of the
 * registry for the test) gives tunes without that codec, not an error; the
 * others are all there. */
static void
test_codec_absent (void)
{
  GstRegistry *registry = gst_registry_get ();
  static const char *const encoders[] = { "avenc_g722", "opusenc" };
  GstPluginFeature *removed[G_N_ELEMENTS (encoders)] = { NULL };

  for (guint i = 0; i < G_N_ELEMENTS (encoders); i++)
    if ((removed[i] = gst_registry_lookup_feature (registry, encoders[i])))
      gst_registry_remove_feature (registry, removed[i]);
  g_autoptr (TdTune) tune = codec_tone ();
  g_autoptr (TdTune) tone = td_tune_new_tone ("eu", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (encoders); i++)
    if (removed[i])
      {
        gst_registry_add_feature (registry, removed[i]);
        gst_object_unref (removed[i]);
      }

  g_assert_true (td_tune_has_codec (tune, TD_CODEC_PCMU));
  g_assert_true (td_tune_has_codec (tune, TD_CODEC_PCMA));
  g_assert_true (td_tune_has_codec (tone, TD_CODEC_PCMU));
  for (TdCodec c = TD_CODEC_G722; c <= TD_CODEC_OPUS; c++)
    {
      gsize len = 99;
      g_assert_false (td_tune_has_codec (tune, c));
      g_assert_false (td_tune_has_codec (tone, c));
      g_assert_null (td_tune_frame (tune, c, 0, &len));
      g_assert_cmpuint (len, ==, 0);
      g_assert_cmpuint (td_tune_memory (tune, c), ==, 0);
    }
  g_assert_cmpuint (td_tune_memory (tune, TD_CODEC_PCMU), ==, 50 * TD_TUNE_FRAME_BYTES);

  /* and back: the same registry encodes them again */
  if (have_elements ("avenc_g722 opusenc"))
    {
      g_autoptr (TdTune) again = codec_tone ();
      g_assert_true (td_tune_has_codec (again, TD_CODEC_G722));
      g_assert_true (td_tune_has_codec (again, TD_CODEC_OPUS));
    }
}

/* ---- ringing tones ------------------------------------------------------ */

/* A cadence, checked on the PCMU frames (G.711 straight from the generated
 * samples): on for `on_ms`, each on frame carrying the tone's frequencies,
 * then silence to the end, `period_ms` in all; the other codecs there. */
static void
check_tone_cadence (const char *name, const double *hz, guint n_hz, guint on_ms, guint period_ms)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdTune) tone = td_tune_new_tone (name, &error);
  g_assert_no_error (error);
  g_autofree char *path = g_strconcat ("tone:", name, NULL);
  g_assert_cmpstr (td_tune_path (tone), ==, path);
  g_assert_cmpuint (td_tune_n_frames (tone), ==, period_ms / 20);
  if (gst_element_factory_find ("avenc_g722") && gst_element_factory_find ("opusenc"))
    for (TdCodec c = 0; c < TD_CODEC_COUNT; c++)
      g_assert_true (td_tune_has_codec (tone, c));

  /* the on part as one block: each frequency has its share, nothing else */
  guint on_frames = on_ms / 20;
  g_autofree gint16 *on = g_new (gint16, on_frames * TD_TUNE_FRAME_SAMPLES);
  for (guint f = 0; f < td_tune_n_frames (tone); f++)
    {
      const guint8 *u = frame_at (tone, TD_CODEC_PCMU, f);
      guint silent = 0;
      for (guint i = 0; i < TD_TUNE_FRAME_SAMPLES; i++)
        {
          silent += u[i] == TD_G711_ULAW_SILENCE;
          if (f < on_frames)
            on[f * TD_TUNE_FRAME_SAMPLES + i] = td_g711_ulaw_decode (u[i]);
        }
      if (f < on_frames)
        g_assert_cmpuint (silent, <, TD_TUNE_FRAME_SAMPLES / 4);   /* zero crossings only */
      else
        g_assert_cmpuint (silent, ==, TD_TUNE_FRAME_SAMPLES);
    }
  gsize n = (gsize) on_frames * TD_TUNE_FRAME_SAMPLES;
  double total = 0;
  for (guint k = 0; k < n_hz; k++)
    {
      double share = tone_share (on, n, hz[k], TD_TUNE_RATE);
      g_test_message ("%s: %.3f of the power at %.0f Hz", name, share, hz[k]);
      g_assert_cmpfloat (share, >, 0.9 / n_hz);
      total += share;
    }
  g_assert_cmpfloat (total, >, 0.97);
  g_assert_cmpfloat (tone_share (on, n, hz[0] - 50, TD_TUNE_RATE), <, 0.01);
  g_assert_cmpfloat (tone_share (on, n, hz[n_hz - 1] + 50, TD_TUNE_RATE), <, 0.01);
  double rms = rms_of (on + 400, n - 800);
  g_test_message ("%s: rms %.0f", name, rms);
  g_assert_cmpfloat (rms, >, 1000);   /* audible: -19 dBm0 a frequency at the least */
  g_assert_cmpfloat (rms, <, 8000);   /* and no louder than -10 dBm0 */
}

static void
test_tone_cn (void)
{
  check_tone_cadence ("cn", (const double[]) { 450 }, 1, 1000, 5000);
}

static void
test_tone_us (void)
{
  check_tone_cadence ("us", (const double[]) { 440, 480 }, 2, 2000, 6000);
}

static void
test_tone_eu (void)
{
  check_tone_cadence ("eu", (const double[]) { 425 }, 1, 1000, 5000);
}

static void
test_tone_unknown (void)
{
  static const char *const names[] = { "uk", "", "CN", "cn ", "tone:cn" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_null (td_tune_new_tone (names[i], &error));
      g_assert_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_FOUND);
      g_autofree char *quoted = g_strdup_printf ("'%s'", names[i]);
      g_assert_nonnull (strstr (error->message, quoted));
    }
}

/* ---- the figures in td-tune.h ------------------------------------------ */

/* -m perf: a 3-minute 44.1 kHz stereo MP3 (a tone and noise, like music to
 * the encoders) loaded; the time it takes and the memory per codec. */
static void
test_measure_3_minutes (void)
{
  if (!g_test_perf ())
    {
      g_test_skip ("a measurement: run with -m perf");
      return;
    }
  g_autofree char *path = encode_file (
    "3min.mp3",
    "audiotestsrc wave=sine freq=440 volume=0.3 samplesperbuffer=4410 num-buffers=1800"
    " ! audio/x-raw,rate=44100,channels=1 ! mix.sink_0"
    " audiotestsrc wave=pink-noise volume=0.1 samplesperbuffer=4410 num-buffers=1800"
    " ! audio/x-raw,rate=44100,channels=1 ! mix.sink_1"
    " audiomixer name=mix ! audioconvert ! audio/x-raw,channels=2",
    "lamemp3enc");
  if (path == NULL)
    return;
  struct rusage r0, r1;
  getrusage (RUSAGE_SELF, &r0);
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (TdTune) tune = load_ok (path);
  gint64 t1 = g_get_monotonic_time ();
  getrusage (RUSAGE_SELF, &r1);
  double cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec
                - r0.ru_stime.tv_sec) + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec
                                         + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
  g_test_message ("3 minutes: %u frames, loaded in %.2f s (%.2f s of CPU); peak RSS %.1f MB "
                  "before, %.1f MB after", td_tune_n_frames (tune), (t1 - t0) / 1e6, cpu,
                  r0.ru_maxrss / 1e3, r1.ru_maxrss / 1e3);
  g_assert_cmpuint (td_tune_n_frames (tune), >=, 180 * 50);
  for (TdCodec c = 0; c < TD_CODEC_COUNT; c++)
    g_test_message ("%s: %.2f MB", td_codec_name (c), td_tune_memory (tune, c) / 1e6);
}

/* ---- main --------------------------------------------------------------- */

static void
remove_tmpdir (void)
{
  g_autoptr (GDir) dir = g_dir_open (tmpdir, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (tmpdir, name, NULL);
      g_remove (path);
    }
  g_rmdir (tmpdir);
  g_free (tmpdir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gst_init (NULL, NULL);
  tmpdir = g_dir_make_tmp ("test-tune-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);

  g_test_add_func ("/g711/ulaw/reference", test_g711_ulaw_reference);
  g_test_add_func ("/g711/alaw/reference", test_g711_alaw_reference);
  g_test_add_func ("/g711/round-trip-error", test_g711_round_trip_error);
  g_test_add_func ("/g711/codes-round-trip", test_g711_codes_round_trip);
  g_test_add_func ("/tune/wav-8k-mono", test_wav_8k_mono);
  g_test_add_func ("/tune/wav-44k-stereo", test_wav_44k_stereo);
  g_test_add_func ("/tune/ogg-vorbis", test_ogg_vorbis);
  g_test_add_func ("/tune/flac", test_flac);
  g_test_add_func ("/tune/mp3", test_mp3);
  g_test_add_func ("/tune/frame-wraps", test_frame_wraps);
  g_test_add_func ("/tune/padding", test_padding);
  g_test_add_func ("/tune/one-sample", test_one_sample);
  g_test_add_func ("/tune/refcount", test_refcount);
  g_test_add_func ("/tune/refcount-threads", test_refcount_threads);
  g_test_add_func ("/tune/concurrent-loads", test_concurrent_loads);
  g_test_add_func ("/tune/no-threads-left", test_no_threads_left);
  g_test_add_func ("/tune/length-limit", test_length_limit);
  g_test_add_func ("/tune/error/missing", test_missing_file);
  g_test_add_func ("/tune/error/not-audio", test_not_audio);
  g_test_add_func ("/tune/error/empty", test_empty);
  g_test_add_func ("/tune/error/video-only", test_video_only);
  g_test_add_func ("/tune/error/no-decoder", test_no_decoder);
  g_test_add_func ("/codec/from-sdp", test_codec_from_sdp);
  g_test_add_func ("/codec/frames", test_codec_frames);
  g_test_add_func ("/codec/g722/tone", test_g722_tone);
  g_test_add_func ("/codec/g722/loop", test_g722_loop);
  g_test_add_func ("/codec/opus/tone", test_opus_tone);
  g_test_add_func ("/codec/opus/loop", test_opus_loop);
  g_test_add_func ("/codec/absent", test_codec_absent);
  g_test_add_func ("/tone/cn", test_tone_cn);
  g_test_add_func ("/tone/us", test_tone_us);
  g_test_add_func ("/tone/eu", test_tone_eu);
  g_test_add_func ("/tone/unknown", test_tone_unknown);
  g_test_add_func ("/tune/measure-3-minutes", test_measure_3_minutes);

  int ret = g_test_run ();
  remove_tmpdir ();
  return ret;
}
