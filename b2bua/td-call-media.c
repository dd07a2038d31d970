/* Media tandem makes for a call (td-plugin.h): a tune played to one party
 * from the relay, under that party's own RTP context, so the switch back to
 * the other party's voice is seamless. */
#define G_LOG_DOMAIN "tandem-call"

#include "td-call-private.h"

/* The G.711 payload type `leg`'s endpoint receives on its first stream:
 * the first PCMU/PCMA format of its SDP, the order it prefers. */
static gboolean
g711_of (const TdLeg *leg, TdCodec *codec)
{
  const char *const *formats;

  if (!leg->remote_sdp || td_sdp_n_media (leg->remote_sdp) == 0)
    return FALSE;
  formats = td_sdp_media_formats (leg->remote_sdp, 0);
  for (guint i = 0; formats && formats[i]; i++) {
    const char *rtpmap = td_sdp_media_rtpmap (leg->remote_sdp, 0, formats[i]);
    if (td_codec_from_sdp (rtpmap ? rtpmap : formats[i], codec))
      return TRUE;
  }
  return FALSE;
}

gboolean
td_call_play_to_peer (TdCall *call, TdLeg *leg, TdTune *tune)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  TdCodec codec;

  if (!peer || peer->ports->len == 0 || !g711_of (peer, &codec)) {
    g_info ("call %s: cannot play %s: the other party has no G.711 stream", call->call_id,
            td_tune_path (tune));
    return FALSE;
  }
  td_relay_port_play (g_ptr_array_index (peer->ports, 0), tune, (guint8) codec);
  g_info ("call %s: playing %s to the %s-leg (%s)", call->call_id, td_tune_path (tune),
          td_leg_name (peer), td_codec_name (codec));
  return TRUE;
}

void
td_call_stop_playing_to_peer (TdCall *call, TdLeg *leg)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  if (peer && peer->ports->len > 0)
    td_relay_port_stop (g_ptr_array_index (peer->ports, 0));
}

gboolean
td_call_is_playing_to_peer (TdCall *call, TdLeg *leg)
{
  TdLeg *peer = td_call_peer_of (call, leg);
  return peer && peer->ports->len > 0 &&
         td_relay_port_is_playing (g_ptr_array_index (peer->ports, 0));
}
