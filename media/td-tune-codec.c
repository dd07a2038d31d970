/* td-tune-codec: the codecs tunes are held in, as SDP names them. */
#include "td-tune.h"

#include <string.h>

typedef struct {
  const char *name;          /* the rtpmap encoding name */
  guint8 static_pt;          /* RFC 3551's, or 0xff: dynamic only */
  guint32 clock_rate;
  const char *channels;      /* the rtpmap's channel field it may carry: "1", "2" */
  gboolean channels_required;
} CodecInfo;

static const CodecInfo codecs[TD_CODEC_COUNT] = {
  [TD_CODEC_PCMU] = { "PCMU", 0, 8000, "1", FALSE },
  [TD_CODEC_PCMA] = { "PCMA", 8, 8000, "1", FALSE },
  /* RFC 3551 4.5.2: 8000 for G.722 although it samples at 16 kHz. */
  [TD_CODEC_G722] = { "G722", 9, 8000, "1", FALSE },
  /* RFC 7587: always opus/48000/2, whatever is actually sent. */
  [TD_CODEC_OPUS] = { "opus", 0xff, 48000, "2", TRUE },
};

static const CodecInfo *
info_of (TdCodec codec)
{
  return (guint) codec < TD_CODEC_COUNT ? &codecs[codec] : NULL;
}

const char *
td_codec_name (TdCodec codec)
{
  const CodecInfo *info = info_of (codec);
  return info ? info->name : NULL;
}

guint32
td_codec_clock_rate (TdCodec codec)
{
  const CodecInfo *info = info_of (codec);
  return info ? info->clock_rate : 0;
}

guint
td_codec_frame_ticks (TdCodec codec)
{
  return td_codec_clock_rate (codec) / 50;   /* 20 ms */
}

/* "NAME/RATE" or "NAME/RATE/CHANNELS", as each codec allows. */
static gboolean
codec_from_rtpmap (const char *rtpmap, TdCodec *out)
{
  g_auto (GStrv) parts = g_strsplit (rtpmap, "/", 4);
  guint n = g_strv_length (parts);
  guint64 rate;

  if (n < 2 || n > 3 || !g_ascii_string_to_unsigned (parts[1], 10, 1, G_MAXUINT32, &rate, NULL))
    return FALSE;
  for (guint c = 0; c < TD_CODEC_COUNT; c++) {
    const CodecInfo *info = &codecs[c];

    if (g_ascii_strcasecmp (parts[0], info->name) != 0 || rate != info->clock_rate)
      continue;
    if (n == 3 ? strcmp (parts[2], info->channels) != 0 : info->channels_required)
      return FALSE;
    *out = (TdCodec) c;
    return TRUE;
  }
  return FALSE;
}

gboolean
td_codec_from_sdp (const char *rtpmap_or_pt, TdCodec *out)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (rtpmap_or_pt == NULL)
    return FALSE;

  g_autofree char *s = g_strstrip (g_strdup (rtpmap_or_pt));
  guint64 pt;
  if (g_ascii_isdigit (s[0])) {
    if (!g_ascii_string_to_unsigned (s, 10, 0, 127, &pt, NULL))
      return FALSE;
    for (guint c = 0; c < TD_CODEC_COUNT; c++) {
      if (codecs[c].static_pt == pt) {
        *out = (TdCodec) c;
        return TRUE;
      }
    }
    return FALSE;
  }
  return codec_from_rtpmap (s, out);
}
