/* N-1 mixes in the real relay on 127.0.0.1: the parties are plain UDP
 * sockets, each sending its own tone, 20 ms a packet, from a tune of that
 * tone (G.722 and Opus encoded by GStreamer pipelines, td-tune-encode.c,
 * not by the mixer's coder); what they receive is decoded independently
 * (G.711 in C, G.722 and Opus by a GStreamer pipeline here) and checked with
 * a Goertzel detector: each hears the others' tones and not its own.
 * Relay ports 61000-61999: above net.ipv4.ip_local_port_range (32768-60999)
 * and clear of every other suite's range (test-relay 10000-19599, flow
 * tests and benches 2000-9999 and 20000-32699); the parties' sockets are
 * ephemeral. Every case runs with one media thread and with two (members
 * migrate to their mix's thread). Every loop is bounded by its duration. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include "td-g711.h"
#include "td-relay.h"
#include "td-tune.h"

#define PORT_MIN 61000
#define PORT_MAX 61999
#define MAX_PARTIES 3

typedef struct {
  guint16 seq;
  guint32 ts, ssrc;
  gboolean marker;
  guint8 pt;
  gint64 at_us;
  gsize len;
  guint8 payload[1280];
} Pkt;

typedef struct {
  int fd;
  guint16 local;
  TdRelayPort *port;
  TdTune *tune;              /* its tone */
  TdCodec codec;
  guint8 pt;
  guint32 ssrc;
  guint16 seq;
  guint32 ts;
  guint frame;
  gboolean sending;
  GArray *got;               /* Pkt */
} Party;

typedef struct {
  TdRelay *relay;
  guint n;
  Party party[MAX_PARTIES];
} Room;

static guint n_threads;

static TdTune *
tone_tune (double freq)
{
  gint16 pcm[8000];   /* 1 s: a whole number of cycles of each test tone */
  for (guint i = 0; i < G_N_ELEMENTS (pcm); i++)
    pcm[i] = (gint16) (8000 * sin (2 * G_PI * freq * i / 8000.0));
  return td_tune_new_from_pcm (pcm, G_N_ELEMENTS (pcm));
}

static void
room_init (Room *r, guint n, const TdCodec *codecs, const double *freqs)
{
  g_autoptr (GError) error = NULL;

  memset (r, 0, sizeof *r);
  r->relay = td_relay_new_full ("127.0.0.1", PORT_MIN, PORT_MAX, n_threads, &error);
  g_assert_no_error (error);
  r->n = n;
  for (guint i = 0; i < n; i++) {
    Party *p = &r->party[i];
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof a;

    p->fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    g_assert_cmpint (bind (p->fd, (struct sockaddr *) &a, len), ==, 0);
    g_assert_cmpint (getsockname (p->fd, (struct sockaddr *) &a, &len), ==, 0);
    p->local = ntohs (a.sin_port);
    p->port = td_relay_port_alloc (r->relay, &error);
    g_assert_no_error (error);
    td_relay_port_set_remote (p->port, "127.0.0.1", p->local, p->local + 1);
    p->codec = codecs[i];
    p->pt = codecs[i] == TD_CODEC_OPUS ? 111 : codecs[i] == TD_CODEC_G722 ? 9
            : codecs[i] == TD_CODEC_PCMA ? 8 : 0;
    if (codecs[i] == TD_CODEC_OPUS)
      td_relay_port_set_clock_rate (p->port, 48000);
    p->tune = tone_tune (freqs[i]);
    g_assert_true (td_tune_has_codec (p->tune, p->codec));
    p->ssrc = 0x1000 + i;
    p->seq = (guint16) (1000 * i);
    p->ts = 5000 * i;
    p->sending = TRUE;
    p->got = g_array_new (FALSE, FALSE, sizeof (Pkt));
  }
}

static void
room_clear (Room *r)
{
  for (guint i = 0; i < r->n; i++) {
    Party *p = &r->party[i];
    td_relay_port_free (p->port);
    close (p->fd);
    td_tune_unref (p->tune);
    g_array_unref (p->got);
  }
  td_relay_free (r->relay);
}

static void
party_send (Party *p)
{
  guint8 pkt[12 + 1280] = { 0x80, p->pt };
  gsize len;
  const guint8 *frame = td_tune_frame (p->tune, p->codec, p->frame++, &len);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
                            .sin_port = htons (td_relay_port_number (p->port)) };

  pkt[2] = (guint8) (p->seq >> 8);
  pkt[3] = (guint8) p->seq;
  for (guint b = 0; b < 4; b++) {
    pkt[4 + b] = (guint8) (p->ts >> (24 - 8 * b));
    pkt[8 + b] = (guint8) (p->ssrc >> (24 - 8 * b));
  }
  memcpy (pkt + 12, frame, len);
  g_assert_cmpint (sendto (p->fd, pkt, 12 + len, 0, (struct sockaddr *) &to, sizeof to), ==,
                   (gssize) (12 + len));
  p->seq++;
  p->ts += td_codec_frame_ticks (p->codec);
}

static void
party_drain (Party *p)
{
  guint8 buf[2048];
  gssize n;

  while ((n = recv (p->fd, buf, sizeof buf, 0)) >= 12) {
    Pkt k = { .seq = (guint16) (buf[2] << 8 | buf[3]), .marker = (buf[1] & 0x80) != 0,
              .pt = buf[1] & 0x7f, .at_us = g_get_monotonic_time (), .len = (gsize) n - 12 };
    k.ts = (guint32) buf[4] << 24 | (guint32) buf[5] << 16 | (guint32) buf[6] << 8 | buf[7];
    k.ssrc = (guint32) buf[8] << 24 | (guint32) buf[9] << 16 | (guint32) buf[10] << 8 | buf[11];
    memcpy (k.payload, buf + 12, k.len);
    g_array_append_val (p->got, k);
  }
}

/* Every sending party sends a packet every 20 ms for `ms`; everything
 * received is recorded. */
static void
room_run (Room *r, guint ms)
{
  gint64 start = g_get_monotonic_time (), next = start;

  while (next < start + ms * 1000) {
    for (guint i = 0; i < r->n; i++)
      if (r->party[i].sending)
        party_send (&r->party[i]);
    next += 20000;
    for (gint64 now; (now = g_get_monotonic_time ()) < next;) {
      struct pollfd pfd[MAX_PARTIES];
      for (guint i = 0; i < r->n; i++)
        pfd[i] = (struct pollfd) { .fd = r->party[i].fd, .events = POLLIN };
      poll (pfd, r->n, (int) ((next - now) / 1000) + 1);
      for (guint i = 0; i < r->n; i++)
        party_drain (&r->party[i]);
    }
  }
}

/* ---- what a party heard ---- */

/* Decodes a G.722 or Opus payload sequence with a pipeline of its own. */
static GArray *
gst_decode (const Party *p, guint first)
{
  const char *desc = p->codec == TD_CODEC_G722
    ? "appsrc name=src format=time caps=audio/G722,rate=16000,channels=1 ! avdec_g722"
      " ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=16000,channels=1"
      " ! appsink name=sink sync=false"
    : "appsrc name=src format=time caps=audio/x-opus,channel-mapping-family=0 ! opusdec"
      " ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=16000,channels=1"
      " ! appsink name=sink sync=false";
  g_autoptr (GError) error = NULL;
  GstElement *pipe = gst_parse_launch (desc, &error);
  GstElement *src, *sink;
  GArray *pcm = g_array_new (FALSE, FALSE, sizeof (gint16));
  GstSample *sample;

  g_assert_no_error (error);
  src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  sink = gst_bin_get_by_name (GST_BIN (pipe), "sink");
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  for (guint i = first; i < p->got->len; i++) {
    const Pkt *k = &g_array_index (p->got, Pkt, i);
    GstBuffer *b = gst_buffer_new_memdup (k->payload, k->len);
    GST_BUFFER_PTS (b) = (i - first) * 20 * GST_MSECOND;
    GST_BUFFER_DURATION (b) = 20 * GST_MSECOND;
    gst_app_src_push_buffer (GST_APP_SRC (src), b);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  while ((sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 5 * GST_SECOND))) {
    GstMapInfo map;
    gst_buffer_map (gst_sample_get_buffer (sample), &map, GST_MAP_READ);
    g_array_append_vals (pcm, map.data, (guint) (map.size / 2));
    gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
    gst_sample_unref (sample);
  }
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipe);
  return pcm;
}

/* The audio of packets [first, end) as PCM, at *rate. */
static GArray *
heard (const Party *p, guint first, guint *rate)
{
  GArray *pcm;

  if (p->codec == TD_CODEC_G722 || p->codec == TD_CODEC_OPUS) {
    *rate = 16000;
    return gst_decode (p, first);
  }
  *rate = 8000;
  pcm = g_array_new (FALSE, FALSE, sizeof (gint16));
  for (guint i = first; i < p->got->len; i++) {
    const Pkt *k = &g_array_index (p->got, Pkt, i);
    for (gsize s = 0; s < k->len; s++) {
      gint16 v = p->codec == TD_CODEC_PCMU ? td_g711_ulaw_decode (k->payload[s])
                                           : td_g711_alaw_decode (k->payload[s]);
      g_array_append_val (pcm, v);
    }
  }
  return pcm;
}

/* The share of the signal's power at `freq` (Goertzel over the last `n`
 * samples, a whole number of the tone's cycles): ~1 for a pure tone, ~0.5
 * each for two equal tones, ~0 if absent. */
static double
tone_share_n (const GArray *pcm, guint rate, double freq, guint n)
{
  guint start;
  double coeff = 2 * cos (2 * G_PI * freq / rate), s1 = 0, s2 = 0, energy = 0;

  g_assert_cmpuint (pcm->len, >=, n);
  start = pcm->len - n;
  for (guint i = 0; i < n; i++) {
    double x = g_array_index (pcm, gint16, start + i), s = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
    energy += x * x;
  }
  if (energy == 0)
    return 0;
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2 / ((double) n * n) / (energy / n);
}

/* ...over the last second. */
static double
tone_share (const GArray *pcm, guint rate, double freq)
{
  return tone_share_n (pcm, rate, freq, rate);
}

/* Parties whose port forwards nothing (td_relay_port_set_forward FALSE). */
static gboolean muted[MAX_PARTIES];

/* The parties that i should hear. */
static guint
talkers (const Room *r, guint i)
{
  guint n = 0;
  for (guint k = 0; k < r->n; k++)
    n += k != i && r->party[k].sending && !muted[k];
  return MAX (n, 1);
}

/* Party i heard each other sending party's tone (freqs) and not its own. */
static void
assert_hears_others (Room *r, guint i, const double *freqs, guint first)
{
  guint rate;
  g_autoptr (GArray) pcm = heard (&r->party[i], first, &rate);

  for (guint k = 0; k < r->n; k++) {
    double share = tone_share (pcm, rate, freqs[k]);
    g_test_message ("party %u (%s) hears %.0f Hz: %.3f", i, td_codec_name (r->party[i].codec),
                    freqs[k], share);
    if (k == i || !r->party[k].sending || muted[k])
      g_assert_cmpfloat (share, <, 0.01);
    else
      g_assert_cmpfloat (share, >, 0.6 / talkers (r, i));
  }
}

/* One SSRC, each sequence number one more than the last (loopback loses
 * nothing), the timestamp going forward; the packets with the marker (the
 * first after each switch) are `n_markers`, and the i-th of them lies in
 * [lo[i], hi[i]] (the switch was asked for when the party had lo[i]
 * packets, had taken effect when it had hi[i]). */
static void
assert_one_stream (const Party *p, guint n_markers, const guint *lo, const guint *hi)
{
  const Pkt *first = &g_array_index (p->got, Pkt, 0);
  guint found = 0;

  g_assert_false (first->marker);
  for (guint i = 1; i < p->got->len; i++) {
    const Pkt *k = &g_array_index (p->got, Pkt, i), *prev = k - 1;

    g_assert_cmphex (k->ssrc, ==, first->ssrc);
    g_assert_cmpuint (k->seq, ==, (guint16) (prev->seq + 1));
    g_assert_cmpint ((gint32) (k->ts - prev->ts), >, 0);
    if (k->marker) {
      g_assert_cmpuint (found, <, n_markers);
      g_assert_cmpuint (i, >=, lo[found]);
      g_assert_cmpuint (i, <=, hi[found]);
      found++;
    }
  }
  g_assert_cmpuint (found, ==, n_markers);
}

static void
sync_all (Room *r)
{
  td_relay_sync (r->relay);
  for (guint i = 0; i < r->n; i++)
    party_drain (&r->party[i]);
}

/* ---- the cases ---- */

static const double tones[] = { 400, 700, 1100 };

/* Three PCMU parties: A and B talk through a plain call, C is alone; all
 * three join a mix and each hears the other two, not itself; then A and B
 * leave and are connected again: a plain call once more. A and B see one
 * stream throughout (one SSRC, seq +1 each packet, a marker at each switch). */
static void
test_pcmu_tones (void)
{
  static const TdCodec codecs[] = { TD_CODEC_PCMU, TD_CODEC_PCMU, TD_CODEC_PCMU };
  Room r;
  TdRelayMix *mix;
  TdRelayMixStats st;
  guint lo[2][2], hi[2][2], mix_first[3];

  room_init (&r, 3, codecs, tones);
  td_relay_connect (r.party[0].port, r.party[1].port);
  td_relay_sync (r.relay);
  room_run (&r, 300);
  g_assert_cmpuint (r.party[0].got->len, >, 5);
  mix = td_relay_mix_new (r.relay);
  sync_all (&r);
  for (guint i = 0; i < 2; i++)
    lo[i][0] = r.party[i].got->len;
  for (guint i = 0; i < 3; i++)
    td_relay_port_join_mix (r.party[i].port, mix, TD_CODEC_PCMU, 0, TRUE);
  sync_all (&r);
  for (guint i = 0; i < 2; i++)
    hi[i][0] = r.party[i].got->len;
  room_run (&r, 1500);
  for (guint i = 0; i < 3; i++) {
    mix_first[i] = r.party[i].got->len;
    g_assert_cmpuint (mix_first[i], >, 60);
  }
  for (guint i = 0; i < 3; i++)
    assert_hears_others (&r, i, tones, 0);
  td_relay_mix_get_stats (mix, &st);
  g_assert_cmpuint (st.members, ==, 3);
  g_assert_cmpuint (st.frames, >=, 70);
  g_assert_cmpint (st.max_gap_us, <, 40000);

  sync_all (&r);
  for (guint i = 0; i < 2; i++)
    lo[i][1] = r.party[i].got->len;
  td_relay_port_leave_mix (r.party[0].port);
  td_relay_port_leave_mix (r.party[1].port);
  td_relay_connect (r.party[0].port, r.party[1].port);
  sync_all (&r);
  for (guint i = 0; i < 2; i++)
    hi[i][1] = r.party[i].got->len;
  room_run (&r, 300);
  td_relay_sync (r.relay);
  for (guint i = 0; i < 2; i++) {
    guint rate;
    double share;
    g_autoptr (GArray) pcm = NULL;

    party_drain (&r.party[i]);
    g_assert_cmpuint (r.party[i].got->len, >, hi[i][1] + 5);
    /* after the leave, A gets B's tone straight (and B A's), through the call */
    pcm = heard (&r.party[i], hi[i][1], &rate);
    share = tone_share_n (pcm, rate, tones[1 - i], 8000 / 5);   /* its last 200 ms */
    g_test_message ("party %u after the leave hears %.0f Hz: %.3f", i, tones[1 - i], share);
    g_assert_cmpfloat (share, >, 0.9);
    assert_one_stream (&r.party[i], 2, lo[i], hi[i]);
  }
  td_relay_mix_get_stats (mix, &st);
  g_assert_cmpuint (st.members, ==, 1);
  td_relay_mix_free (mix);
  room_clear (&r);
}

/* PCMU, G.722 and Opus in one room: the mix runs at 16 kHz, each hears the
 * others in its own codec. */
static void
test_wideband (void)
{
  static const TdCodec codecs[] = { TD_CODEC_PCMU, TD_CODEC_G722, TD_CODEC_OPUS };
  Room r;
  TdRelayMix *mix;

  room_init (&r, 3, codecs, tones);
  mix = td_relay_mix_new (r.relay);
  for (guint i = 0; i < 3; i++)
    td_relay_port_join_mix (r.party[i].port, mix, codecs[i], r.party[i].pt, TRUE);
  td_relay_sync (r.relay);
  room_run (&r, 1600);
  for (guint i = 0; i < 3; i++) {
    g_assert_cmpuint (r.party[i].got->len, >, 60);
    g_assert_cmpuint (g_array_index (r.party[i].got, Pkt, 0).pt, ==, r.party[i].pt);
    assert_hears_others (&r, i, tones, 0);
  }
  td_relay_mix_free (mix);
  room_clear (&r);
}

/* C stops sending: A and B go on hearing each other with no gap, C goes on
 * hearing them; C's muted (forward off) or non-receiving (hears FALSE)
 * states are honoured. */
static void
test_silent_member (void)
{
  static const TdCodec codecs[] = { TD_CODEC_PCMU, TD_CODEC_PCMA, TD_CODEC_PCMU };
  Room r;
  TdRelayMix *mix;
  TdRelayMixStats st;
  guint from[3];
  gint64 max_gap = 0;

  room_init (&r, 3, codecs, tones);
  mix = td_relay_mix_new (r.relay);
  for (guint i = 0; i < 3; i++)
    td_relay_port_join_mix (r.party[i].port, mix, codecs[i], r.party[i].pt, TRUE);
  td_relay_sync (r.relay);
  room_run (&r, 400);
  r.party[2].sending = FALSE;
  for (guint i = 0; i < 3; i++)
    from[i] = r.party[i].got->len;
  room_run (&r, 1300);
  for (guint i = 0; i < 2; i++) {
    const Party *p = &r.party[i];
    for (guint k = from[i] + 1; k < p->got->len; k++)
      max_gap = MAX (max_gap, g_array_index (p->got, Pkt, k).at_us -
                              g_array_index (p->got, Pkt, k - 1).at_us);
    assert_hears_others (&r, i, tones, from[i]);
  }
  g_test_message ("longest gap A/B saw after C fell silent: %" G_GINT64_FORMAT " us", max_gap);
  g_assert_cmpint (max_gap, <, 60000);
  assert_hears_others (&r, 2, tones, from[2]);
  td_relay_mix_get_stats (mix, &st);
  g_assert_cmpuint (st.concealed, >=, 1);

  /* B muted: A no longer hears B's 700 Hz, only C's 1100; C hears FALSE:
   * it gets nothing */
  td_relay_port_set_forward (r.party[1].port, FALSE);
  muted[1] = TRUE;
  r.party[2].sending = TRUE;
  td_relay_port_join_mix (r.party[2].port, mix, TD_CODEC_PCMU, 0, FALSE);
  sync_all (&r);
  for (guint i = 0; i < 3; i++)
    from[i] = r.party[i].got->len;
  room_run (&r, 1300);
  sync_all (&r);
  g_assert_cmpuint (r.party[2].got->len, ==, from[2]);
  assert_hears_others (&r, 0, tones, from[0]);
  muted[1] = FALSE;
  td_relay_mix_free (mix);
  room_clear (&r);
}

/* A tune played on a member goes out instead of its mix, and the mix comes
 * back when it stops: one stream still. */
static void
test_tune_precedence (void)
{
  static const TdCodec codecs[] = { TD_CODEC_PCMU, TD_CODEC_PCMU, TD_CODEC_PCMU };
  static const double hold[] = { 1700 };
  Room r;
  TdRelayMix *mix;
  g_autoptr (TdTune) music = tone_tune (hold[0]);
  guint lo[2], hi[2];

  room_init (&r, 3, codecs, tones);
  mix = td_relay_mix_new (r.relay);
  for (guint i = 0; i < 3; i++)
    td_relay_port_join_mix (r.party[i].port, mix, TD_CODEC_PCMU, 0, TRUE);
  td_relay_sync (r.relay);
  room_run (&r, 300);
  sync_all (&r);
  lo[0] = r.party[0].got->len;
  td_relay_port_play (r.party[0].port, music, TD_CODEC_PCMU, 0);
  sync_all (&r);
  hi[0] = r.party[0].got->len;
  room_run (&r, 1200);
  {
    guint rate;
    g_autoptr (GArray) pcm = heard (&r.party[0], hi[0], &rate);
    g_assert_cmpfloat (tone_share (pcm, rate, hold[0]), >, 0.9);
  }
  sync_all (&r);
  lo[1] = r.party[0].got->len;
  td_relay_port_stop (r.party[0].port);
  sync_all (&r);
  hi[1] = r.party[0].got->len;
  room_run (&r, 1200);
  assert_hears_others (&r, 0, tones, hi[1]);
  /* the first packet: the mix's, the port's first stream (no marker) */
  assert_one_stream (&r.party[0], 2, lo, hi);
  td_relay_mix_free (mix);
  room_clear (&r);
}

/* A lone member joins again (a codec/hears update: the mix must not be
 * scheduled twice), then leaves and joins again at once, with no packet
 * forwarded in between: a new source all the same (marker, seq + 1). */
static void
test_rejoin (void)
{
  static const TdCodec codecs[] = { TD_CODEC_PCMU, TD_CODEC_PCMU };
  Room r;
  TdRelayMix *mix;
  TdRelayMixStats st;
  guint lo[1], hi[1];

  room_init (&r, 2, codecs, tones);
  mix = td_relay_mix_new (r.relay);
  td_relay_port_join_mix (r.party[0].port, mix, TD_CODEC_PCMA, 8, TRUE);
  td_relay_sync (r.relay);
  td_relay_port_join_mix (r.party[0].port, mix, TD_CODEC_PCMU, 0, TRUE);
  td_relay_port_join_mix (r.party[1].port, mix, TD_CODEC_PCMU, 0, TRUE);
  td_relay_sync (r.relay);
  room_run (&r, 1200);
  assert_hears_others (&r, 0, tones, 0);
  sync_all (&r);
  lo[0] = r.party[0].got->len;
  td_relay_port_leave_mix (r.party[0].port);
  td_relay_port_join_mix (r.party[0].port, mix, TD_CODEC_PCMU, 0, TRUE);
  sync_all (&r);
  hi[0] = r.party[0].got->len;
  room_run (&r, 1200);
  sync_all (&r);
  assert_one_stream (&r.party[0], 1, lo, hi);
  assert_hears_others (&r, 0, tones, hi[0]);
  td_relay_mix_get_stats (mix, &st);
  g_assert_cmpuint (st.members, ==, 2);
  /* ~50 frames a second: scheduled once, not twice */
  g_assert_cmpuint (st.frames, <=, 2500 / 20 + 10);
  td_relay_mix_free (mix);
  room_clear (&r);
}

typedef struct {
  void (*fn) (void);
  guint threads;
} Case;

static void
run_case (gconstpointer data)
{
  const Case *c = data;
  n_threads = c->threads;
  c->fn ();
}

int
main (int argc, char **argv)
{
  static const struct {
    const char *name;
    void (*fn) (void);
  } tests[] = {
    { "pcmu-tones", test_pcmu_tones },
    { "wideband", test_wideband },
    { "silent-member", test_silent_member },
    { "tune-precedence", test_tune_precedence },
    { "rejoin", test_rejoin },
  };
  static Case cases[2 * G_N_ELEMENTS (tests)];

  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);
  for (guint t = 1; t <= 2; t++) {
    for (guint i = 0; i < G_N_ELEMENTS (tests); i++) {
      Case *c = &cases[(t - 1) * G_N_ELEMENTS (tests) + i];
      g_autofree char *path = g_strdup_printf ("/mix/%u-thread%s/%s", t, t > 1 ? "s" : "",
                                               tests[i].name);
      *c = (Case) { tests[i].fn, t };
      g_test_add_data_func (path, c, run_case);
    }
  }
  return g_test_run ();
}
