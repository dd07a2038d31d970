/* Ringback: tandem answers the caller itself while the callee rings
 * (td_call_play_ringback, td-plugin.h), and hands the caller over to the
 * callee's voice when it answers.
 *
 * The caller gets `183 Session Progress` with tandem's own SDP answer: the
 * caller's offer narrowed to one codec the tune is encoded in (its first
 * such codec, which the callee, offered the same list, most often answers
 * with too) plus telephone-event, on the caller's relay port. RFC 3261
 * §13.2.1: that answer is the session, so the caller's 200 carries it again,
 * byte for byte; when the callee answers in another codec the caller gets a
 * re-INVITE once it has ACKed.
 *
 * The relay plays the tune on the caller's port and switches by itself
 * (td_relay_port_play_until_peer) on the first packet the port it is
 * connected to forwards: the callee's RTP before its 200, or its early
 * media. Which branch the caller's port is connected to while ringing
 * decides which media can end the tune:
 *  - a branch that sent no early SDP: its first packet (sent as it answers,
 *    often before its 200 arrives) switches;
 *  - a branch whose early SDP (183) fits the caller's session: in
 *    early-media-first mode it is connected (its announcement wins, and one
 *    such branch keeps the caller while forking); in tune-first mode and when
 *    it does not fit it is not, and the tune plays until the 200.
 * At the 200 the answering branch is connected and the tune stopped (a
 * no-op when its first packet already did it). The caller's port keeps its
 * one outgoing RTP context throughout: one SSRC, the sequence continuing by
 * one, the marker on the callee's first packet.
 *
 * An originated call (a blind transfer's target ringing) plays the tune to
 * its party on the party's current stream; taking the leg in stops it, and
 * so does the call's end. */
#define G_LOG_DOMAIN "tandem-call"

#include "td-call-private.h"

#include <string.h>

static TdRelayPort *
first_port (const TdLeg *leg)
{
  return leg && leg->ports->len > 0 ? g_ptr_array_index (leg->ports, 0) : NULL;
}

/* The codec of `pt` in stream 0 of `sdp`, by its rtpmap or static number. */
static gboolean
format_codec (const TdSdp *sdp, const char *pt, TdCodec *codec)
{
  const char *rtpmap = td_sdp_media_rtpmap (sdp, 0, pt);
  return td_codec_from_sdp (rtpmap ? rtpmap : pt, codec);
}

/* The offer's telephone-event format at `rate` (DTMF keeps working), or NULL. */
static const char *
telephone_event (const TdSdp *sdp, guint32 rate)
{
  g_autofree char *wanted = g_strdup_printf ("telephone-event/%u", rate);
  const char *const *formats = td_sdp_media_formats (sdp, 0);

  for (guint i = 0; formats && formats[i]; i++) {
    const char *rtpmap = td_sdp_media_rtpmap (sdp, 0, formats[i]);
    if (rtpmap && g_ascii_strncasecmp (rtpmap, wanted, strlen (wanted)) == 0)
      return formats[i];
  }
  return NULL;
}

/* An answer's direction for an offer's (RFC 3264 §6.1). */
static TdSdpDirection
answer_direction (TdSdpDirection offered)
{
  switch (offered) {
  case TD_SDP_SENDONLY:
    return TD_SDP_RECVONLY;
  case TD_SDP_RECVONLY:
    return TD_SDP_SENDONLY;
  default:
    return offered;
  }
}

/* Does the callee's SDP (its early answer or its 200's) send what the
 * caller's session has: the same codec under the same payload type first? */
static gboolean
fits_caller (const TdCall *call, const TdSdp *sdp)
{
  const char *const *formats = sdp && td_sdp_n_media (sdp) ? td_sdp_media_formats (sdp, 0) : NULL;
  TdCodec codec;

  if (!formats || !formats[0] || td_sdp_media_port (sdp, 0) == 0)
    return FALSE;
  return g_ascii_strtoull (formats[0], NULL, 10) == call->early.pt &&
         format_codec (sdp, formats[0], &codec) && codec == call->early.codec;
}

static void
play (TdCall *call, TdRelayPort *port, TdTune *tune)
{
  if (call->early.state == TD_EARLY_CALLER)
    td_relay_port_play_until_peer (port, tune, call->early.codec, call->early.pt);
  else
    td_relay_port_play (port, tune, call->early.codec, call->early.pt);
  g_clear_pointer (&call->early.tune, td_tune_unref);
  call->early.tune = td_tune_ref (tune);
  g_info ("call %s: ringback %s to the %s (%s, payload type %u)", call->call_id,
          td_tune_path (tune), call->early.state == TD_EARLY_CALLER ? "caller" : "transferee",
          td_codec_name (call->early.codec), call->early.pt);
}

/* The 183: tandem's answer to the caller's offer. */
static gboolean
answer_caller (TdCall *call, TdTune *tune)
{
  TdLeg *a = call->a;
  const TdSdp *offer = a->remote_sdp;
  g_autofree char *format = NULL;
  const char *keep[3] = { NULL, NULL, NULL };
  g_autoptr (TdSdp) narrowed = NULL;
  const char *sdp;

  /* Nothing answered yet: the caller's first codec that the tune is in. */
  if (call->late_offer || !offer || !first_port (a) ||
      !td_leg_tune_format (a, tune, &call->early.codec, &call->early.pt))
    return FALSE;
  keep[0] = format = g_strdup_printf ("%u", call->early.pt);
  keep[1] = telephone_event (offer, td_codec_clock_rate (call->early.codec));
  if (!(narrowed = td_sdp_with_formats (offer, 0, keep)))
    return FALSE;
  call->early.state = TD_EARLY_CALLER;
  sdp = td_leg_local_sdp_directed (a, narrowed, td_call_media_address (call),
                                   answer_direction (td_sdp_media_direction (offer, 0)));
  call->early.sdp = g_strdup (sdp);
  td_relay_port_set_clock_rate (first_port (a), td_codec_clock_rate (call->early.codec));
  td_call_respond_a (call, 183, "Session Progress", sdp);
  return TRUE;
}

/* An originated call's party keeps its session: the tune goes in its codec. */
static gboolean
answer_origin (TdCall *call, TdTune *tune)
{
  TdLeg *party = call->origin;

  /* A call ringing someone into a room: the room goes on talking. */
  if (call->dials_into || !td_leg_is_up (party) || !first_port (party) ||
      !td_leg_tune_format (party, tune, &call->early.codec, &call->early.pt))
    return FALSE;
  call->early.state = TD_EARLY_ORIGIN;
  return TRUE;
}

/* Is the caller's port connected to a branch still ringing? (One that
 * failed, or that the call was forwarded away from, is not.) */
static gboolean
branch_live (const TdCall *call)
{
  const TdLeg *b = call->early.branch;
  return b && b->nh && !b->final && !b->abandoned && !b->cancelled;
}

/* Has a live branch's early media got the caller? */
static gboolean
early_media_taken (const TdCall *call)
{
  return call->early.branch_media && branch_live (call);
}

gboolean
td_call_play_ringback (TdCall *call, TdTune *tune, TdRingbackMode mode)
{
  TdLeg *party = call->a ? call->a : call->origin;
  TdRelayPort *port = first_port (party);

  if (!party || !port || call->ended || call->bridged || td_call_caller_final (call))
    return FALSE;
  call->early.mode = mode;
  if (call->early.state != TD_EARLY_NONE) {
    /* Forwarded: the new callee's tune; and the tune again if a branch's
     * media ended it and that branch is gone. Not over a live branch's. */
    gboolean playing = td_relay_port_is_playing (port);
    if (((playing && call->early.tune != tune) || (!playing && !branch_live (call))) &&
        td_tune_has_codec (tune, call->early.codec))
      play (call, port, tune);
    return TRUE;
  }
  if (!(call->a ? answer_caller (call, tune) : answer_origin (call, tune))) {
    g_info ("call %s: no ringback: %s", call->call_id,
            call->late_offer ? "the caller made no offer"
                             : "no codec of the party's is one the tune is in");
    return FALSE;
  }
  play (call, port, tune);
  return TRUE;
}

/* Point the caller's port at branch `b` (NULL: at nothing) while ringing. */
static void
connect_branch (TdCall *call, TdLeg *b, gboolean with_media)
{
  TdRelayPort *port = first_port (call->a);

  if (b && first_port (b)) {
    td_leg_connect_media (call->a, b);
    /* Whatever B's SDP lists, what leaves toward the caller is its session's codec. */
    td_relay_port_set_clock_rate (port, td_codec_clock_rate (call->early.codec));
  } else {
    td_relay_disconnect (port);
    b = NULL;
  }
  call->early.branch = b;
  call->early.branch_media = b && with_media;
}

gboolean
td_call_early_progress (TdCall *call, TdLeg *b, TdSdp *sdp)
{
  gboolean fits;

  if (call->early.state != TD_EARLY_CALLER)
    return FALSE;   /* the SDP stays the caller's */
  if (sdp)
    td_leg_set_remote_sdp (b, sdp);
  if (!b->remote_sdp) {
    /* A branch with nothing to say yet: its first packet, if it comes
     * before its 200, is its answer. One branch's early media stays. */
    if (!early_media_taken (call))
      connect_branch (call, b, FALSE);
    return TRUE;
  }
  fits = fits_caller (call, b->remote_sdp);
  if (fits && call->early.mode == TD_RINGBACK_EARLY_MEDIA_FIRST) {
    if (!early_media_taken (call) || call->early.branch == b)
      connect_branch (call, b, TRUE);
    return TRUE;
  }
  if (!fits)
    g_info ("call %s: early media from %s is not in the caller's codec: the tune goes on",
            call->call_id, b->target ? b->target : "the callee");
  if (call->early.branch == b)
    connect_branch (call, NULL, FALSE);
  return TRUE;
}

const char *
td_call_early_answer_for (TdCall *call)
{
  return call->early.state == TD_EARLY_CALLER ? call->early.sdp : NULL;
}

void
td_call_early_answered (TdCall *call, TdLeg *b)
{
  TdRelayPort *port = first_port (call->a);

  if (call->early.state != TD_EARLY_CALLER || !port)
    return;
  td_relay_port_stop (port);
  if (fits_caller (call, b->remote_sdp)) {
    td_relay_port_set_clock_rate (port, td_codec_clock_rate (call->early.codec));
    return;
  }
  g_info ("call %s: the callee answered in another codec: the caller gets it after its ACK",
          call->call_id);
  call->early.realign_due = TRUE;
}

void
td_call_early_acked (TdCall *call, TdLeg *leg)
{
  if (leg != call->a || !call->early.realign_due || !call->bridged)
    return;
  call->early.realign_due = FALSE;
  td_call_realign (call, call->a);
}

void
td_call_early_stop (TdCall *call)
{
  TdLeg *party = call->origin;

  if (call->early.state != TD_EARLY_ORIGIN)
    return;
  /* A transferee still in its old call hears that call again. */
  if (party && party->call != call && first_port (party))
    td_relay_port_stop (first_port (party));
  call->early.state = TD_EARLY_NONE;
  g_clear_pointer (&call->early.tune, td_tune_unref);
}

void
td_call_early_clear (TdCall *call)
{
  g_clear_pointer (&call->early.tune, td_tune_unref);
  g_clear_pointer (&call->early.sdp, g_free);
  call->early.branch = NULL;
}
