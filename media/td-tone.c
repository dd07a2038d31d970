/* td-tone: national ringing tones (ringback), generated and encoded like
 * any tune, so they play in every codec from the relay. */
#define G_LOG_DOMAIN "tandem-tune"

#include "td-tune-private.h"

#include <math.h>
#include <string.h>

typedef struct {
  const char *name;
  double hz[2];              /* 0: a single tone */
  double dbm0;               /* level of each component */
  guint on_ms, off_ms;
} ToneSpec;

/* ITU-T E.180 Supplement 2 lists each country's; these are the ones asked
 * for. Levels: China (YD/T 1017) -10 dBm0; the US (ANSI T1.401) -19 dBm0
 * per frequency; ETSI ES 201 970 (CEPT) -13 dBm0 nominal. */
static const ToneSpec tones[] = {
  { "cn", { 450, 0 }, -10, 1000, 4000 },
  { "us", { 440, 480 }, -19, 2000, 4000 },
  { "eu", { 425, 0 }, -13, 1000, 4000 },
};

/* G.711's 0 dBm0 sine peaks 3.17 dB below full scale (the digital
 * milliwatt); 16-bit samples. */
static double
amplitude_of (double dbm0)
{
  return 32767.0 * pow (10, (dbm0 - 3.17) / 20);
}

/* Raised edges rather than a switched sine: a 4 ms ramp, so that the
 * cadence does not click at every on and off. */
#define RAMP_SAMPLES (TD_TUNE_RATE * 4 / 1000)

static gint16 *
generate (const ToneSpec *spec, gsize *n_samples)
{
  gsize on = (gsize) spec->on_ms * TD_TUNE_RATE / 1000;
  gsize n = on + (gsize) spec->off_ms * TD_TUNE_RATE / 1000;
  gint16 *pcm = g_new0 (gint16, n);
  double a = amplitude_of (spec->dbm0);

  for (gsize i = 0; i < on; i++) {
    double t = (double) i / TD_TUNE_RATE, s = 0;
    gsize edge = MIN (i, on - 1 - i);

    for (guint k = 0; k < G_N_ELEMENTS (spec->hz) && spec->hz[k] > 0; k++)
      s += sin (2 * G_PI * spec->hz[k] * t);
    if (edge < RAMP_SAMPLES)
      s *= (double) edge / RAMP_SAMPLES;
    pcm[i] = (gint16) lrint (a * s);
  }
  *n_samples = n;
  return pcm;
}

TdTune *
td_tune_new_tone (const char *name, GError **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  for (guint i = 0; name && i < G_N_ELEMENTS (tones); i++) {
    if (strcmp (name, tones[i].name) != 0)
      continue;
    gsize n;
    g_autofree gint16 *pcm = generate (&tones[i], &n);
    g_autofree char *path = g_strconcat ("tone:", name, NULL);
    TdTune *tune = td_tune_alloc (path, (guint) (n / TD_TUNE_FRAME_SAMPLES));
    td_tune_encode_g711 (tune, pcm);
    td_tune_encode_wideband (tune, pcm, TD_TUNE_RATE);
    return tune;
  }
  g_set_error (error, TD_TUNE_ERROR, TD_TUNE_ERROR_NOT_FOUND,
               "ringing tone '%s': no such tone (known: cn, us, eu)", name ? name : "(null)");
  return NULL;
}
