/* Media tandem makes for a call (td-plugin.h): a tune played to one party
 * from the relay, under that party's own RTP context, so the switch back to
 * the other party's voice is seamless. */
#define G_LOG_DOMAIN "tandem-call"

#include "td-call-private.h"

/* The G.711 codec `leg`'s endpoint receives on its first stream and the
 * payload type its SDP gave it (0/8, or a dynamic number mapped by rtpmap):
 * the first PCMU/PCMA format of its SDP, the order it prefers. */
static gboolean
g711_of (const TdLeg *leg, TdCodec *codec, guint8 *pt)
{
  const char *const *formats;

  if (!leg->remote_sdp || td_sdp_n_media (leg->remote_sdp) == 0)
    return FALSE;
  formats = td_sdp_media_formats (leg->remote_sdp, 0);
  for (guint i = 0; formats && formats[i]; i++) {
    const char *rtpmap = td_sdp_media_rtpmap (leg->remote_sdp, 0, formats[i]);
    guint64 number;

    if (!g_ascii_string_to_unsigned (formats[i], 10, 0, 127, &number, NULL))
      continue;   /* not an RTP payload type */
    if (td_codec_from_sdp (rtpmap ? rtpmap : formats[i], codec)) {
      *pt = (guint8) number;
      return TRUE;
    }
  }
  return FALSE;
}

/* The port of the leg's first stream, NULL if it has none (rejected). */
static TdRelayPort *
first_port (const TdLeg *leg)
{
  return leg && leg->ports->len > 0 ? g_ptr_array_index (leg->ports, 0) : NULL;
}

gboolean
td_call_play_to_peer (TdCall *call, TdLeg *leg, TdTune *tune)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  TdRelayPort *port = first_port (peer);
  TdCodec codec;
  guint8 pt;

  if (!port || !g711_of (peer, &codec, &pt)) {
    g_info ("call %s: cannot play %s: the other party has no G.711 stream", call->call_id,
            td_tune_path (tune));
    return FALSE;
  }
  td_relay_port_play (port, tune, codec, pt);
  g_info ("call %s: playing %s to the %s-leg (%s, payload type %u)", call->call_id,
          td_tune_path (tune), td_leg_name (peer), td_codec_name (codec), pt);
  return TRUE;
}

void
td_call_stop_playing_to_peer (TdCall *call, TdLeg *leg)
{
  TdRelayPort *port = first_port (td_call_peer_of (call, leg));
  if (port)
    td_relay_port_stop (port);
}

gboolean
td_call_is_playing_to_peer (TdCall *call, TdLeg *leg)
{
  TdRelayPort *port = first_port (td_call_peer_of (call, leg));
  return port && td_relay_port_is_playing (port);
}
