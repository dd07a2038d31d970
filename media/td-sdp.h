/* td-sdp: a lenient SDP (RFC 4566/8866) parser and the rewriter tandem uses to
 * anchor media on its RTP relay.
 *
 * tandem carries every call as two SIP dialogs and relays RTP through its own
 * ports, so each SDP crossing it is rewritten: o=, c=, m= ports and a=rtcp
 * point at the relay, ICE attributes go (ICE would let media bypass the
 * relay), a=crypto goes (tandem terminates SRTP on each leg: the other
 * leg's keys are no use here and must not leak; td-sdes.c says what this
 * leg's are), and everything else — codecs, fmtp, bandwidth — passes
 * through verbatim. Sofia-SIP's SDP parser rejects some valid SDP, hence our
 * own: any line we don't understand is kept as it is.
 *
 * Nothing here knows about SIP. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Limits, so hostile input can't make us allocate much. */
#define TD_SDP_MAX_SIZE  (64 * 1024)   /* bytes */
/* m= lines: each stream costs a relay port pair per leg and per branch, so
 * one SDP must not be able to take a large share of the range (a call with
 * audio, video, a second video and data needs 4; tandem answers 488 above). */
#define TD_SDP_MAX_MEDIA 8
#define TD_SDP_MAX_FORMATS 128         /* formats on one m= line (RTP has 128 payload types) */

#define TD_SDP_ERROR (td_sdp_error_quark ())
GQuark td_sdp_error_quark (void);

typedef enum {
  TD_SDP_ERROR_SYNTAX,      /* not SDP, or a line we need (v=, m=, c=) is malformed */
  TD_SDP_ERROR_TOO_LARGE,   /* over one of the TD_SDP_MAX_* limits */
} TdSdpError;

typedef enum {
  TD_SDP_SENDRECV,
  TD_SDP_SENDONLY,
  TD_SDP_RECVONLY,
  TD_SDP_INACTIVE,
} TdSdpDirection;

typedef struct _TdSdp TdSdp;

/* Parses @len bytes of @text (-1: NUL-terminated). Lines end in CRLF or LF;
 * empty lines are skipped. Requires v=0 first and at least one m= line; a
 * malformed m= or c= line is an error, any other line is kept verbatim.
 * Error messages name the line, e.g. "line 3: not of the form x=value". */
TdSdp *td_sdp_parse (const char *text, gssize len, GError **error);
void td_sdp_free (TdSdp *sdp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdSdp, td_sdp_free)

/* Per-m= line accessors; @i < td_sdp_n_media(). Strings belong to @sdp. */
guint td_sdp_n_media (const TdSdp *sdp);
const char *td_sdp_media_type (const TdSdp *sdp, guint i);       /* "audio", "video", ... */
guint16 td_sdp_media_port (const TdSdp *sdp, guint i);           /* 0 = stream rejected/disabled */
const char *td_sdp_media_proto (const TdSdp *sdp, guint i);      /* "RTP/AVP", "RTP/SAVP", ... */
/* The media c= address, else the session c= address (without any /ttl);
 * NULL if neither exists. */
const char *td_sdp_media_address (const TdSdp *sdp, guint i);
/* Media-level direction attribute, else session-level, else sendrecv. */
TdSdpDirection td_sdp_media_direction (const TdSdp *sdp, guint i);
/* sendonly or inactive, or address 0.0.0.0 (RFC 2543 hold). */
gboolean td_sdp_media_is_hold (const TdSdp *sdp, guint i);
gboolean td_sdp_media_rtcp_mux (const TdSdp *sdp, guint i);
/* a=rtcp:PORT if present, else port + 1; 0 if the stream is rejected (port 0). */
guint16 td_sdp_media_rtcp_port (const TdSdp *sdp, guint i);
/* The <fmt> list of the m= line (payload types for RTP), NULL-terminated. */
const char *const *td_sdp_media_formats (const TdSdp *sdp, guint i);
/* The a=rtpmap value for payload type @pt, e.g. "PCMU/8000" or "opus/48000/2";
 * NULL if the media has no rtpmap for it (see td_sdp_static_rtpmap()). */
const char *td_sdp_media_rtpmap (const TdSdp *sdp, guint i, const char *pt);
/* The stream's a=crypto values (what follows "a=crypto:", unparsed; td-sdes.c
 * reads them), in order, NULL-terminated; empty if none. Session-level
 * a=crypto is not valid (RFC 4568 §9.1) and is not returned. */
const char *const *td_sdp_media_crypto (const TdSdp *sdp, guint i);

/* The RTP clock rate of the stream's first codec (its first format that is
 * not telephone-event, CN, red, FEC or rtx): what the endpoint prefers, and
 * in an answer what it chose. From its rtpmap ("opus/48000/2": 48000) or the
 * static table (9, G.722: 8000 by RFC 3551); 0 if unknown or not RTP. */
guint32 td_sdp_media_clock_rate (const TdSdp *sdp, guint i);

/* The RFC 3551 encoding of static payload type @pt ("PCMU/8000" for 0);
 * NULL for unassigned, reserved and dynamic numbers. */
const char *td_sdp_static_rtpmap (guint pt);

typedef struct {
  const char *address;        /* tandem's relay address (IPv4 or IPv6 literal) */
  const guint16 *ports;       /* one RTP port per m= line (index-aligned); RTCP = port+1 */
  guint n_ports;              /* must equal td_sdp_n_media */
  const char *origin_user;    /* o= username, e.g. "tandem" */
  guint64 session_id;         /* o= sess-id for this leg */
  guint64 session_version;    /* o= sess-version for this leg (caller bumps it when the SDP changes) */
  gboolean set_direction;     /* replace every direction attribute by `direction` */
  TdSdpDirection direction;   /* (tandem answering a hold itself) */
  /* Both optional (NULL: none), n_ports entries each when given, as
   * td_sdes_fill_rewrite() fills them: */
  const char *const *protos;            /* NULL entry: keep the m= line's proto */
  const char *const *const *crypto;     /* NULL-terminated a=crypto values ("1
                                         * AES_CM_128_HMAC_SHA1_80 inline:..."),
                                         * or a NULL entry for none */
} TdSdpRewrite;

/* @sdp re-emitted with CRLF line endings and media anchored on the relay:
 * - o= becomes "o=<origin_user> <session_id> <session_version> IN IP4|IP6 <address>";
 * - every c= becomes "c=IN IP4|IP6 <address>", except c=... 0.0.0.0 (hold),
 *   which stays so the far end still sees hold; a session-level c= is added
 *   when the input has none, so every stream has one;
 * - each m= port becomes ports[i] (an input port of 0 stays 0: rejected);
 * - a=rtcp becomes a=rtcp:<ports[i]+1> (dropped for rejected streams);
 * - ICE attributes (candidate, ice-*, end-of-candidates, remote-candidates)
 *   are removed;
 * - a=crypto lines are removed, session and media level, always; stream i
 *   gets "a=crypto:<value>" for each of crypto[i] at the end of its section
 *   instead, and the proto protos[i] if given;
 * - every other line is copied verbatim, in its original order.
 * Free with g_free(). */
char *td_sdp_rewrite (const TdSdp *sdp, const TdSdpRewrite *rw);

/* A copy of @sdp whose stream @i lists only those of its formats that are
 * in @formats (NULL-terminated), in the stream's own order, its a=rtpmap,
 * a=fmtp and a=rtcp-fb lines for the others dropped; every other line and
 * stream as it was. NULL if stream @i has none of @formats. (Tandem
 * answering an offer itself with the one codec it plays a tune in.) */
TdSdp *td_sdp_with_formats (const TdSdp *sdp, guint i, const char *const *formats);

/* The direction an answer takes for an offer's (RFC 3264 §6.1): sendonly
 * gets recvonly, recvonly sendonly, the others their own. */
TdSdpDirection td_sdp_answer_direction (TdSdpDirection offered);

/* Stream @i's telephone-event format at @rate ("101"), or NULL: what an
 * answer of one codec keeps so that DTMF keeps working. */
const char *td_sdp_telephone_event (const TdSdp *sdp, guint i, guint32 rate);

/* For the B2BUA's 488 decision: TRUE if at least one m= line of @answer is
 * accepted (port != 0) and every accepted line has a codec in common with the
 * same m= line of @offer. Dynamic payload types (96-127) compare by rtpmap
 * encoding name and clock rate (case-insensitive), static ones by number;
 * non-RTP formats compare as strings. Auxiliary formats (telephone-event, CN,
 * red, ulpfec, flexfec, rtx) don't count as a codec in common unless the offer
 * line has nothing else. */
gboolean td_sdp_answer_matches_offer (const TdSdp *offer, const TdSdp *answer);

G_END_DECLS
