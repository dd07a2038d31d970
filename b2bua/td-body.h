/* td-body: the SDP of a SIP message body.
 *
 * A body may be the SDP itself (application/sdp) or a MIME multipart
 * (RFC 5621: SDP beside ISUP, PIDF-LO, ...), nested or not. Tandem uses
 * the session description and relays nothing else; a body without one it
 * can use is refused (415) where it arrives in a request. Pure functions
 * over the header values and the body bytes, no SIP stack. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  TD_BODY_NONE,       /* no body at all: no SDP (late offer, refresh) */
  TD_BODY_SDP,        /* *sdp, *sdp_len: the session description */
  TD_BODY_UNUSABLE,   /* a body, but no SDP tandem may use alone (error says why) */
} TdBodyKind;

/* Finds the session description in a message body of len bytes.
 * content_type is the Content-Type value with its parameters
 * ("multipart/mixed; boundary=xyz"), NULL if the message has none (then
 * the body is taken for SDP, as before Content-Type was mandatory);
 * disposition the Content-Disposition value, NULL if none. On TD_BODY_SDP,
 * *sdp points into body. A part that is not the session's SDP is ignored
 * unless it says handling=required (RFC 3261 §20.11, RFC 5621 §9). */
TdBodyKind td_body_find_sdp (const char *content_type, const char *disposition,
                             const char *body, gsize len, const char **sdp, gsize *sdp_len,
                             GError **error);

G_END_DECLS
