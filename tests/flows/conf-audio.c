/* conf-audio: judging what the parties of a room received (see
 * conf-audio.h). */
#include "conf-audio.h"

#include <string.h>

/* Below this RMS a frame is silence (as in ringback-audio.c). */
#define SILENCE_RMS 300.0

static const FlowRtpPacket *
pkt (GArray *pkts, guint i)
{
  return &g_array_index (pkts, FlowRtpPacket, i);
}

/* The frame's samples; FALSE if it is no PCMU frame or silent. */
static gboolean
frame_samples (const FlowRtpPacket *p, gint16 pcm[RB_FRAME])
{
  return p->pt == 0 && rb_decode_g711 (p, 0, pcm) && rb_rms (pcm, RB_FRAME) >= SILENCE_RMS;
}

/* Bits of the voices whose share of the frame reaches `share`. */
static guint
voices_over (const FlowRtpPacket *p, const ConfVoice *voices, guint n, double share)
{
  gint16 pcm[RB_FRAME];
  guint mask = 0;

  if (!frame_samples (p, pcm))
    return 0;
  for (guint i = 0; i < n; i++)
    if (rb_tone_share (pcm, RB_FRAME, voices[i].hz) >= share)
      mask |= 1u << i;
  return mask;
}

guint
conf_frame_voices (const FlowRtpPacket *p, const ConfVoice *voices, guint n)
{
  return voices_over (p, voices, n, CONF_PRESENT_SHARE);
}

/* The bits of the voices named by letters. */
static guint
mask_of (const char *letters, const ConfVoice *voices, guint n)
{
  guint mask = 0;

  for (const char *l = letters; *l; l++) {
    guint i = 0;
    while (i < n && voices[i].letter != *l)
      i++;
    g_assert_cmpuint (i, <, n);
    mask |= 1u << i;
  }
  return mask;
}

static char *
mask_letters (guint mask, const ConfVoice *voices, guint n)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    if (mask & (1u << i))
      g_string_append_c (s, voices[i].letter);
  if (!s->len)
    g_string_append_c (s, '-');
  return g_string_free (s, FALSE);
}

void
conf_note_stream (const char *who, GArray *pkts, const ConfVoice *voices, guint n)
{
  g_autoptr (GString) s = g_string_new (NULL);
  guint start = 0;

  g_string_append_printf (s, "%s received %u RTP packets; the voices in them, as runs "
                          "(first packet: src ssrc seq ts time):", who, pkts->len);
  for (guint i = 1; i <= pkts->len; i++) {
    guint mask = conf_frame_voices (pkt (pkts, start), voices, n);
    if (i < pkts->len && conf_frame_voices (pkt (pkts, i), voices, n) == mask)
      continue;
    {
      g_autofree char *letters = mask_letters (mask, voices, n);
      const FlowRtpPacket *p = pkt (pkts, start);
      g_string_append_printf (s, "\n  #%u %sx%u (%u %#x %u %u %" G_GINT64_FORMAT ")", start,
                              letters, i - start, p->src_port, p->ssrc, p->seq, p->timestamp,
                              p->time_us);
    }
    start = i;
  }
  flow_note ("%s", s->str);
}

void
conf_assert_one_stream (const char *who, GArray *pkts, guint16 relay_port, gint64 until_us)
{
  g_assert_cmpuint (pkts->len, >, 0);
  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i), *prev = i ? pkt (pkts, i - 1) : NULL;
    guint32 step = prev ? p->timestamp - prev->timestamp : 1;
    gint64 gap = prev ? p->time_us - prev->time_us : 0;

    if (p->src_port != relay_port || p->pt != 0 || p->len != RB_FRAME ||
        p->ssrc != pkt (pkts, 0)->ssrc || (prev && p->seq != (guint16) (prev->seq + 1)) ||
        step == 0 || step >= 2 * RB_RATE || (p->time_us <= until_us && gap > CONF_MAX_GAP_US))
      g_printerr ("flow: %s's packet %u: from %u, pt %u, %u bytes, SSRC %#x, seq %u after %u, "
                  "timestamp +%u, %" G_GINT64_FORMAT " ms after the last (want from %u, PCMU, "
                  "160 bytes, SSRC %#x, seq + 1, timestamp forward < 2 s, no stall)\n",
                  who, i, p->src_port, p->pt, p->len, p->ssrc, p->seq, prev ? prev->seq : 0,
                  step, gap / 1000, relay_port, pkt (pkts, 0)->ssrc);
    g_assert_cmpuint (p->src_port, ==, relay_port);
    g_assert_cmpuint (p->pt, ==, 0);
    g_assert_cmpuint (p->len, ==, RB_FRAME);
    g_assert_cmphex (p->ssrc, ==, pkt (pkts, 0)->ssrc);
    if (!prev)
      continue;
    g_assert_cmpuint (p->seq, ==, (guint16) (prev->seq + 1));
    g_assert_cmpuint (step, >, 0);
    g_assert_cmpuint (step, <, 2 * RB_RATE);
    if (p->time_us <= until_us)
      g_assert_cmpint (gap, <=, CONF_MAX_GAP_US);
  }
}

void
conf_assert_hears (const char *who, GArray *pkts, gint64 from_us, gint64 to_us,
                   guint min_frames, const ConfVoice *voices, guint n, const char *hear,
                   const char *never)
{
  guint want = mask_of (hear, voices, n), banned = mask_of (never, voices, n);
  guint frames = 0, mixed = 0, wrong = 0;

  for (guint i = 0; i < pkts->len; i++) {
    const FlowRtpPacket *p = pkt (pkts, i);
    if (p->time_us < from_us || p->time_us >= to_us)
      continue;
    frames++;
    mixed += (conf_frame_voices (p, voices, n) & want) == want;
    if (voices_over (p, voices, n, CONF_ABSENT_SHARE) & banned) {
      if (!wrong)
        g_printerr ("flow: %s's packet %u (seq %u) carries a voice of \"%s\"\n", who, i, p->seq,
                    never);
      wrong++;
    }
  }
  flow_note ("%s, %.3f s to %.3f s: %u frames, %u with all of \"%s\", %u with any of \"%s\"",
             who, from_us / 1e6, to_us / 1e6, frames, mixed, hear, wrong, never);
  if (frames < min_frames || mixed < CONF_MIN_MIXED * frames || wrong)
    g_printerr ("flow: %s heard %u frames in the window (want >= %u), %u of them with every "
                "voice of \"%s\" (want >= %.0f%%), %u with one of \"%s\" (want none)\n",
                who, frames, min_frames, mixed, hear, CONF_MIN_MIXED * 100, wrong, never);
  g_assert_cmpuint (frames, >=, min_frames);
  g_assert_cmpuint (mixed, >=, CONF_MIN_MIXED * frames);
  g_assert_cmpuint (wrong, ==, 0);
}

void
conf_assert_never_hears (const char *who, GArray *pkts, const ConfVoice *voices, guint n,
                         char letter)
{
  const char never[2] = { letter, '\0' };

  conf_assert_hears (who, pkts, G_MININT64, G_MAXINT64, 0, voices, n, "", never);
}
