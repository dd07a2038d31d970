/* Memory per distinct tune and codec.
 *
 * Generated WAV files (44.1 kHz 16-bit mono tones, as a user's recording
 * might be) of 30 s and 3 min are loaded with td_tune_load(), several
 * distinct ones per length, and kept: the VmRSS growth per load, after
 * malloc_trim() has returned the decoder's transient heap, is what a
 * distinct tune costs while tandem holds it. The peak during the load
 * (VmHWM, reset before each load) shows the transient on top.
 *
 * A tune holds its frames in every codec (PCMU, PCMA, G.722, Opus, encoded
 * at load): td_tune_memory() tells what each codec's frames take, printed
 * beside the measured RSS (which is of all codecs together). */
#define G_LOG_DOMAIN "ringback-bench"

#include "rb-memory.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rb-common.h"

#define WAV_RATE 44100
#define COPIES 4   /* distinct tunes per length */


static void
put_le (FILE *f, guint32 v, guint bytes)
{
  for (guint i = 0; i < bytes; i++)
    fputc ((int) ((v >> (8 * i)) & 0xff), f);
}

static char *
write_wav (const char *dir, guint seconds, double hz)
{
  char *path = g_strdup_printf ("%s/tone-%us-%.0fHz.wav", dir, seconds, hz);
  guint32 n = seconds * WAV_RATE;
  FILE *f = fopen (path, "wb");

  if (!f)
    g_error ("%s: %s", path, g_strerror (errno));
  fwrite ("RIFF", 1, 4, f);
  put_le (f, 36 + 2 * n, 4);
  fwrite ("WAVEfmt ", 1, 8, f);
  put_le (f, 16, 4);
  put_le (f, 1, 2);             /* PCM */
  put_le (f, 1, 2);             /* mono */
  put_le (f, WAV_RATE, 4);
  put_le (f, 2 * WAV_RATE, 4);
  put_le (f, 2, 2);
  put_le (f, 16, 2);
  fwrite ("data", 1, 4, f);
  put_le (f, 2 * n, 4);
  for (guint32 i = 0; i < n; i++)
    put_le (f, (guint32) (guint16) (gint16) (8192 * sin (2 * G_PI * hz * i / WAV_RATE)), 2);
  if (fclose (f) != 0)
    g_error ("%s: write failed", path);
  return path;
}

static gint64
status_kb (const char *key)
{
  g_autofree char *text = NULL;
  const char *p;

  if (!g_file_get_contents ("/proc/self/status", &text, NULL, NULL) || !(p = strstr (text, key)))
    return -1;
  return g_ascii_strtoll (p + strlen (key), NULL, 10);
}

/* VmHWM back to the current RSS (Linux >= 4.0), so it shows this load's peak */
static void
reset_peak (void)
{
  g_file_set_contents ("/proc/self/clear_refs", "5", 1, NULL);
}

static TdTune *
load (const char *path, gint64 *ms)
{
  g_autoptr (GError) error = NULL;
  gint64 t = g_get_monotonic_time ();
  TdTune *tune = td_tune_load (path, &error);

  if (!tune)
    g_error ("%s", error->message);
  *ms = (g_get_monotonic_time () - t) / 1000;
  return tune;
}

/* Adds the tune's td_tune_memory() per codec to `sum`. */
static void
add_codecs (const TdTune *tune, gsize sum[TD_CODEC_COUNT])
{
  for (TdCodec c = 0; c < TD_CODEC_COUNT; c++)
    sum[c] += td_tune_memory (tune, c);
}

/* Loads COPIES distinct tunes of `seconds` and keeps them in `kept`. */
static void
measure_length (const char *dir, guint seconds, GPtrArray *kept)
{
  gint64 sum = 0, lo = G_MAXINT64, hi = 0;
  gsize codec_sum[TD_CODEC_COUNT] = { 0 }, all = 0;
  guint frames = 0;

  for (guint i = 0; i < COPIES; i++) {
    g_autofree char *path = write_wav (dir, seconds, 400 + 50 * i);
    gint64 rss0, rss1, peak, ms;
    TdTune *tune;

    malloc_trim (0);
    reset_peak ();
    rss0 = rb_rss_kb ();
    tune = load (path, &ms);
    peak = status_kb ("VmHWM:");
    malloc_trim (0);
    rss1 = rb_rss_kb ();
    g_ptr_array_add (kept, tune);
    frames = td_tune_n_frames (tune);
    sum += rss1 - rss0;
    lo = MIN (lo, rss1 - rss0);
    hi = MAX (hi, rss1 - rss0);
    printf ("    %s: RSS +%" G_GINT64_FORMAT " KiB kept, peak +%" G_GINT64_FORMAT
            " KiB during the load, %" G_GINT64_FORMAT " ms\n",
            strrchr (path, '/') + 1, rss1 - rss0, peak - rss0, ms);
    add_codecs (tune, codec_sum);
    remove (path);
  }
  printf ("  %3u s tune (%u frames): RSS per distinct tune %.0f KiB (min %" G_GINT64_FORMAT
          ", max %" G_GINT64_FORMAT ")\n", seconds, frames, (double) sum / COPIES, lo, hi);
  printf ("    td_tune_memory per tune:");
  for (TdCodec c = 0; c < TD_CODEC_COUNT; c++) {
    all += codec_sum[c] / COPIES;
    printf (" %s %.0f KiB (%.1f KiB/s)", td_codec_name (c), codec_sum[c] / COPIES / 1024.0,
            codec_sum[c] / COPIES / 1024.0 / seconds);
  }
  printf ("; all %.0f KiB\n", all / 1024.0);
}

int
rb_memory_run (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("ringback-bench-XXXXXX", &error);
  g_autoptr (GPtrArray) kept = g_ptr_array_new_with_free_func ((GDestroyNotify) td_tune_unref);
  g_autofree char *warm = NULL;
  gint64 ms, rss_all;

  if (!dir)
    g_error ("%s", error->message);
  gst_init (NULL, NULL);
  /* the first load pulls in GStreamer's registry and plugins: not a tune's cost */
  warm = write_wav (dir, 1, 1000);
  td_tune_unref (load (warm, &ms));
  remove (warm);
  malloc_trim (0);
  rss_all = rb_rss_kb ();
  printf ("memory: %u distinct tunes per length from generated %u Hz 16-bit mono WAV, "
          "td_tune_load() (every codec); RSS after GStreamer's first load %" G_GINT64_FORMAT " KiB\n",
          COPIES, WAV_RATE, rss_all);
  measure_length (dir, 30, kept);
  measure_length (dir, 180, kept);
  g_ptr_array_set_size (kept, 0);
  malloc_trim (0);
  printf ("  after freeing the %u tunes: RSS %+" G_GINT64_FORMAT " KiB against before the first\n",
          2 * COPIES, rb_rss_kb () - rss_all);
  g_rmdir (dir);
  return 0;
}
