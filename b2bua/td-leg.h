/* TdLeg: one SIP dialog — one nua handle — and its media.
 *
 * A leg is an A-leg (an INVITE tandem answered) or a B-leg (an INVITE tandem
 * sent: to a callee's contact while forking, or to a transfer target). Each
 * leg is its own dialog: own Call-ID, tags, CSeq space, Via branches. A leg
 * stands alone: a call holds references to the legs it connects, and a leg
 * that stays up can move from one call to another (td-call-move.c) with its
 * dialog, its relay ports and so its outgoing RTP context (one SSRC and
 * sequence toward its endpoint for its whole life).
 * A leg owns one relay port pair per m= line of its SDP, remembers the last
 * SDP its endpoint sent (remote) and the o= identity tandem uses toward it,
 * so that the SDP it receives always reads as one continuous session. */
#pragma once

#include <glib.h>
#include <sofia-sip/nua.h>

#include "td-relay.h"
#include "td-sdes.h"
#include "td-sdp.h"
#include "td-signal.h"
#include "td-timers.h"

G_BEGIN_DECLS

typedef struct _TdCall TdCall;
typedef struct _TdLeg TdLeg;

typedef enum {
  TD_LEG_A,
  TD_LEG_B,
} TdLegRole;

/* Who refreshes a leg's session (RFC 4028), as nua negotiated it. */
typedef enum {
  TD_REFRESHER_NONE,    /* no session timer on this leg */
  TD_REFRESHER_TANDEM,
  TD_REFRESHER_PEER,    /* the endpoint refreshes; nua ends the dialog if it stops */
} TdRefresher;

/* What tandem's own re-INVITE/UPDATE on a leg is, while one is out. */
typedef enum {
  TD_OUT_NONE,
  TD_OUT_RELAYED,   /* the other endpoint's offer, relayed */
  TD_OUT_REALIGN,   /* the other endpoint's current session, offered again
                     * because this endpoint took one the other never got */
  TD_OUT_REFRESH,   /* a session refresh (RFC 4028): the current SDP unchanged */
} TdLegOutgoing;

struct _TdLeg {
  grefcount ref;            /* SIP thread only */
  guint64 id;               /* stable, unique in the daemon's life (td_leg_lookup) */
  struct _TdCallContext *ctx;   /* the daemon's calls, where it is registered */
  TdCall *call;             /* the call it is in now (weak: the call holds the
                             * leg); NULL once detached from every call */
  char *user;               /* the party's user of the domain (caller, callee),
                             * or NULL for someone else */
  char *display;            /* their display name, or NULL */
  const TdSignal *signal;   /* how it speaks SIP (the call context's) */
  TdLegRole role;
  nua_handle_t *nh;         /* NULL once the dialog is gone */
  char *target;             /* B: the contact URI called; A: the caller's contact */
  char *source;             /* B: where the binding's REGISTER came from (its route) */
  /* tandem's Contact toward this endpoint when nua's would not do, or NULL:
   * over TLS nua writes sips:, which e.g. baresip refuses ("Function not
   * implemented") unless the dialog is a sips: one (RFC 3261 §12.1.1). */
  char *contact;
  guint session_expires;    /* B: Session-Expires asked for after a 422; 0 = configured */

  GPtrArray *ports;         /* TdRelayPort*, one per m= line; NULL for a stream
                             * rejected (port 0) when it was offered */
  char *signalling_host;    /* the IP the endpoint's SIP comes from, for latching */
  TdSdp *remote_sdp;        /* what this leg's endpoint last offered/answered */
  TdSdp *offered_sdp;       /* its re-INVITE/UPDATE offer, until answered */
  guint64 sdp_session_id;   /* o= toward this leg's endpoint */
  guint64 sdp_version;
  char *local_sdp;          /* the last SDP tandem sent to this endpoint */
  /* SRTP keys with this endpoint (SDES): made at the leg's first SDP, with
   * the SRTP policy of its party (td_config_srtp_policy). */
  TdSdes *sdes;
  char *accepted_local_sdp; /* local_sdp before a relayed offer, restored if refused */

  int status;               /* B: the last response status received */
  gboolean answered;        /* 2xx sent (A) or received (B) */
  gboolean final;           /* B: final response received; A: final response sent */
  gboolean acked;           /* B: tandem has ACKed its late-offer 2xx */
  gboolean cancelled;       /* B: CANCEL sent */
  gboolean abandoned;       /* B: the call was forwarded away from this branch */

  /* An offer this leg's endpoint sent in a re-INVITE/UPDATE, waiting for the
   * other endpoint's answer. */
  nua_saved_event_t pending[1];
  gboolean has_pending;
  gboolean pending_is_update;
  TdLegOutgoing outgoing;   /* tandem's re-INVITE/UPDATE to this leg is out */
  gboolean pending_is_update_out;  /* ... and it is an UPDATE */
  /* Tandem's refresh UPDATE is out: it carries no SDP, so it is no offer
   * (RFC 3311 §5.2: no reason for a 491) and leaves `outgoing` free. */
  gboolean update_refresh_out;
  gboolean ack_answer_due;  /* tandem's 200 to an offerless re-INVITE carried an
                             * offer: the ACK brings the answer */
  /* The Event of the refer subscription this leg's endpoint holds (RFC
   * 3515: "refer", or "refer;id=CSEQ"), while its transfer runs; NULL when
   * none does. */
  char *refer_event;
  /* Its dialog stays up when its peer's ends (a party being transferred,
   * whose transferor may hang up first): see td_leg_set_stays. */
  gboolean stays;
  int local_answer;         /* a plugin answers this leg's offer itself with this
                             * direction (td_call_answer_offer); -1 = no */

  /* Session refresh (td-call-refresh.c). */
  gboolean peer_allows_update;   /* the endpoint's Allow lists UPDATE (RFC 3311) */
  gboolean peer_has_timer;       /* it has said Supported/Require: timer (sticky, as in nua) */
  TdRefresher refresher;
  guint session_interval;        /* negotiated Session-Expires, s; 0 = none */
  TdTimer *refresh_timer;        /* tandem's next refresh */
  guint refresh_delay_ms;        /* the delay it was armed with */
  /* What that timer sends: TD_OUT_REALIGN when it retries a realignment the
   * endpoint answered 491 (glare), else (TD_OUT_NONE) a refresh. */
  TdLegOutgoing timer_sends;
};

TdLeg *td_leg_new (TdCall *call, const TdSignal *signal, TdLegRole role, nua_handle_t *nh);
TdLeg *td_leg_ref (TdLeg *leg);
/* The last reference drops the handle (destroyed), the ports, saved events
 * and the registration. */
void td_leg_unref (TdLeg *leg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdLeg, td_leg_unref)

/* Register the leg under a fresh id (ctx->legs: id -> leg, weak). */
void td_leg_register (TdLeg *leg, struct _TdCallContext *ctx);
TdLeg *td_leg_lookup (struct _TdCallContext *ctx, guint64 id);   /* borrowed, or NULL */
/* The dialog is up: an answered leg whose handle is alive. */
gboolean td_leg_is_up (const TdLeg *leg);
/* Would the SDP tandem sends this leg's endpoint change in anything but its
 * o= version if built from `from` now (codecs, addresses, directions)? */
gboolean td_leg_media_differs (TdLeg *leg, const TdSdp *from, const char *address);

const char *td_leg_name (const TdLeg *leg);   /* "A" or "B" for logs */

/* Make sure the leg has a port pair for every m= line of `sdp` (an offer)
 * that is not rejected (port 0): a rejected stream costs no ports. On
 * failure (TD_RELAY_ERROR_EXHAUSTED: refuse the new call, 503) the leg keeps
 * what it had. */
gboolean td_leg_ensure_ports (TdLeg *leg, TdRelay *relay, const TdSdp *sdp, GError **error);

/* Where the endpoint's SIP comes from (its NAT router, if any): its RTP
 * from there is taken for the phone behind NAT by the relay's latching
 * (td_relay_port_set_signalling_host), on the ports it has and will get.
 * From the request nua is handling now (the A-leg's INVITE), or from a
 * binding's source ("udp/192.0.2.1:5060", "tcp/[2001:db8::1]:5060"). */
void td_leg_set_signalling_from_request (TdLeg *leg, nua_t *nua);
void td_leg_set_signalling_source (TdLeg *leg, const char *source);

/* May the leg take this SDP from its endpoint, by the SRTP policy of its
 * party? FALSE with why (naming the stream, never a key): refuse it (488)
 * or fail the branch. */
gboolean td_leg_sdp_acceptable (TdLeg *leg, const TdSdp *sdp, GError **error);

/* The leg's dialog is over: its relay ports go, and what their SRTP
 * dropped (bad tags, replays) or could not protect is logged, if anything,
 * for the operator. */
void td_leg_release_ports (TdLeg *leg, const char *call_id);

/* Take an SDP from this leg's endpoint: remember it and point the relay's
 * sending side at the addresses it names, and its SRTP at the keys the SDP
 * and tandem's SDPs to it agreed. */
void td_leg_set_remote_sdp (TdLeg *leg, TdSdp *sdp);

/* The SDP to send to this leg's endpoint: `from` (the other endpoint's SDP)
 * rewritten onto this leg's relay ports. Returns a borrowed string, valid
 * until the next call. */
const char *td_leg_local_sdp (TdLeg *leg, const TdSdp *from, const char *address);
/* The same with every stream's direction set to `direction` (-1: as in `from`). */
const char *td_leg_local_sdp_directed (TdLeg *leg, const TdSdp *from, const char *address,
                                       int direction);

/* Bridge the media of two legs (port i to port i), forwarding each direction
 * only where the sender's SDP sends and the receiver's SDP receives (hold).
 * Call again whenever either leg's SDP changes. Also what the SDPs agreed
 * for the relay: each port's clock rate (the codec the answer put first, on
 * both ports of a stream) and, once
 * both endpoints' SDPs carry a=rtcp-mux on a stream (offer and answer, as
 * tandem relays one's to the other), no RTCP sockets for it. */
void td_leg_connect_media (TdLeg *a, TdLeg *b);

/* A format of the leg's first stream to play `tune` in: the first, in the
 * order of the SDP that answered (the session's), of those both SDPs list
 * (an offer not answered yet: the first of the offer's) that the tune is
 * encoded in. FALSE if none. */
gboolean td_leg_tune_format (const TdLeg *leg, const TdTune *tune, TdCodec *codec, guint8 *pt);
/* The same for the room's mixer: the session's first codec of PCMU, PCMA,
 * G.722 and Opus. */
gboolean td_leg_mix_format (const TdLeg *leg, TdCodec *codec, guint8 *pt);

/* The newest activity on any of the leg's ports (g_get_monotonic_time), 0 if none. */
gint64 td_leg_last_media (TdLeg *leg);

/* td-call-media.c, the RTP timeout: the event func of every port of a leg
 * (user_data: the leg), and what td_leg_connect_media tells the call of a
 * new SDP (a hold, a resume). Both do nothing for a leg without a call. */
void td_call_media_port_event (TdRelayPort *port, const TdRelayEvent *event, gpointer leg);
void td_call_media_changed (TdCall *call);

G_END_DECLS
