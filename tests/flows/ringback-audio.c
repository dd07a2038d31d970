/* ringback-audio: tune files, decoding and tone detection for the
 * ringback flow tests (see ringback-audio.h). */
#include "ringback-audio.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <math.h>
#include <string.h>

#define TUNE_AMPLITUDE 8000.0
/* Below this RMS a frame is silence (a G.711 idle pattern decodes to a
 * few units; the tunes' sines have an RMS of ~5,600). */
#define SILENCE_RMS 300.0
#define DECODE_TIMEOUT (5 * GST_SECOND)

void
rb_write_tune (const char *path, guint hz, guint ms)
{
  g_autofree char *dir = g_path_get_dirname (path);
  guint n = RB_RATE / 1000 * ms;
  g_autofree gint16 *samples = g_new (gint16, n);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  for (guint i = 0; i < n; i++)
    samples[i] = (gint16) lround (TUNE_AMPLITUDE * sin (2 * G_PI * hz * i / RB_RATE));
  flow_write_wav (path, samples, n, RB_RATE);
}

/* ITU-T G.711 decoding, on the 16-bit scale. */
static gint16
ulaw_decode (guint8 code)
{
  guint8 u = (guint8) ~code;
  gint exponent = (u >> 4) & 7, mantissa = u & 0xF;
  gint mag = (((mantissa << 3) + 0x84) << exponent) - 0x84;

  return (gint16) (u & 0x80 ? -mag : mag);
}

static gint16
alaw_decode (guint8 code)
{
  guint8 a = code ^ 0x55;
  gint exponent = (a >> 4) & 7, mantissa = a & 0xF;
  gint mag = exponent == 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);

  return (gint16) (a & 0x80 ? mag : -mag);
}

gboolean
rb_decode_g711 (const FlowRtpPacket *p, guint8 pt, gint16 out[RB_FRAME])
{
  if (p->len != RB_FRAME || (pt != 0 && pt != 8))
    return FALSE;
  for (guint i = 0; i < RB_FRAME; i++)
    out[i] = pt == 0 ? ulaw_decode (p->payload[i]) : alaw_decode (p->payload[i]);
  return TRUE;
}

double
rb_rms (const gint16 *samples, guint n)
{
  double sum = 0;

  for (guint i = 0; i < n; i++)
    sum += (double) samples[i] * samples[i];
  return n ? sqrt (sum / n) : 0;
}

double
rb_tone_share (const gint16 *samples, guint n, double hz)
{
  double coeff = 2 * cos (2 * G_PI * hz / RB_RATE), s1 = 0, s2 = 0, energy = 0, power;

  for (guint i = 0; i < n; i++) {
    double s0 = samples[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += (double) samples[i] * samples[i];
  }
  power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  /* A sine of amplitude A: |X|² ≈ (A·n/2)², energy ≈ A²·n/2. */
  return energy > 0 ? power / (energy * n / 2) : 0;
}

char
rb_classify (const gint16 *samples, guint n, const RbTone *tones, guint n_tones)
{
  if (rb_rms (samples, n) < SILENCE_RMS)
    return RB_SILENT;
  for (guint i = 0; i < n_tones; i++)
    if (rb_tone_share (samples, n, tones[i].hz) >= RB_TONE_SHARE)
      return tones[i].letter;
  return RB_OTHER;
}

/* ---- Opus and G.722 ---------------------------------------------------------------------- */

/* The packet again as RTP (the probe kept its header fields and payload). */
static GstBuffer *
rtp_buffer (const FlowRtpPacket *p, guint8 pt, guint index)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 12 + p->len, NULL);
  GstMapInfo map;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  map.data[0] = 0x80;
  map.data[1] = (guint8) ((p->marker ? 0x80 : 0) | pt);
  GST_WRITE_UINT16_BE (map.data + 2, p->seq);
  GST_WRITE_UINT32_BE (map.data + 4, p->timestamp);
  GST_WRITE_UINT32_BE (map.data + 8, p->ssrc);
  memcpy (map.data + 12, p->payload, p->len);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = index * 20 * GST_MSECOND;
  GST_BUFFER_DURATION (buf) = 20 * GST_MSECOND;
  return buf;
}

static void
append_sample (GArray *out, GstSample *sample)
{
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstMapInfo map;

  if (buf && gst_buffer_map (buf, &map, GST_MAP_READ)) {
    g_array_append_vals (out, map.data, (guint) (map.size / sizeof (gint16)));
    gst_buffer_unmap (buf, &map);
  }
}

/* Pushes the packets as RTP through `depay_decode` (caps `rtp_caps`) and
 * collects what comes out as 8 kHz mono 16-bit samples. */
static GArray *
decode_rtp (GArray *pkts, guint from, guint n, guint8 pt, const char *rtp_caps,
            const char *depay_decode)
{
  g_autofree char *desc = g_strdup_printf (
    "appsrc name=src format=time caps=application/x-rtp,media=audio,%s,payload=%u ! %s ! "
    "audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=%u,channels=1 ! "
    "appsink name=sink sync=false", rtp_caps, pt, depay_decode, RB_RATE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = gst_parse_launch (desc, &error);
  g_autoptr (GstElement) src = NULL, sink = NULL;
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gint16));
  GstSample *sample;

  g_assert_no_error (error);
  src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  for (guint i = 0; i < n; i++) {
    const FlowRtpPacket *p = &g_array_index (pkts, FlowRtpPacket, from + i);
    g_assert_cmpint (gst_app_src_push_buffer (GST_APP_SRC (src), rtp_buffer (p, pt, i)), ==,
                     GST_FLOW_OK);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  while ((sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), DECODE_TIMEOUT))) {
    append_sample (out, sample);
    gst_sample_unref (sample);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  return out;
}

GArray *
rb_decode_opus (GArray *pkts, guint from, guint n, guint8 pt)
{
  return decode_rtp (pkts, from, n, pt, "clock-rate=48000,encoding-name=OPUS",
                     "rtpopusdepay ! opusdec");
}

GArray *
rb_decode_g722 (GArray *pkts, guint from, guint n, guint8 pt)
{
  return decode_rtp (pkts, from, n, pt, "clock-rate=8000,encoding-name=G722",
                     "rtpg722depay ! avdec_g722");
}
