/* Unit tests for td-sdp: real-world SDP from common user agents, hold
 * variants, errors and limits, the relay rewrite line by line, and the
 * offer/answer codec check behind the B2BUA's 488. */
#include "td-sdp.h"

#include <string.h>

/* ---- fixtures: SDP as the user agents send it --------------------------- */

/* SIPp's uac scenario, extended with PCMA and telephone-event. */
static const char sipp_offer[] =
  "v=0\r\n"
  "o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n"
  "s=-\r\n"
  "c=IN IP4 127.0.1.1\r\n"
  "t=0 0\r\n"
  "m=audio 6000 RTP/AVP 0 8 101\r\n"
  "a=rtpmap:0 PCMU/8000\r\n"
  "a=rtpmap:8 PCMA/8000\r\n"
  "a=rtpmap:101 telephone-event/8000\r\n"
  "a=fmtp:101 0-15\r\n"
  "a=ptime:20\r\n";

/* Linphone behind NAT: session-level ICE credentials, candidates, rtcp-mux
 * and an a=rtcp with an address. */
static const char linphone_offer[] =
  "v=0\r\n"
  "o=alice 3122 1983 IN IP4 192.168.1.20\r\n"
  "s=Talk\r\n"
  "c=IN IP4 198.51.100.20\r\n"
  "t=0 0\r\n"
  "a=ice-pwd:6b2cb1a0a25a8d1a7fb5e7f2\r\n"
  "a=ice-ufrag:8f3e1b2c\r\n"
  "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n"
  "a=record:off\r\n"
  "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\n"
  "a=rtpmap:96 opus/48000/2\r\n"
  "a=fmtp:96 useinbandfec=1\r\n"
  "a=rtpmap:97 speex/16000\r\n"
  "a=fmtp:97 vbr=on\r\n"
  "a=rtpmap:98 speex/8000\r\n"
  "a=fmtp:98 vbr=on\r\n"
  "a=fmtp:18 annexb=yes\r\n"
  "a=rtpmap:101 telephone-event/48000\r\n"
  "a=rtpmap:99 telephone-event/16000\r\n"
  "a=rtpmap:100 telephone-event/8000\r\n"
  "a=rtcp:7079 IN IP4 198.51.100.20\r\n"
  "a=rtcp-mux\r\n"
  "a=candidate:1 1 UDP 2130706303 192.168.1.20 7078 typ host\r\n"
  "a=candidate:1 2 UDP 2130706302 192.168.1.20 7079 typ host\r\n"
  "a=candidate:2 1 UDP 1694498687 198.51.100.20 7078 typ srflx raddr 192.168.1.20 rport 7078\r\n"
  "a=candidate:2 2 UDP 1694498686 198.51.100.20 7079 typ srflx raddr 192.168.1.20 rport 7079\r\n"
  "a=rtcp-fb:* trr-int 1000\r\n"
  "a=rtcp-fb:* ccm tmmbr\r\n";

static const char baresip_offer[] =
  "v=0\r\n"
  "o=- 1977498234 2845318394 IN IP4 10.0.0.2\r\n"
  "s=-\r\n"
  "c=IN IP4 10.0.0.2\r\n"
  "t=0 0\r\n"
  "a=tool:baresip 3.10.1\r\n"
  "m=audio 10004 RTP/AVP 96 9 0 8 101\r\n"
  "b=AS:128\r\n"
  "a=rtpmap:96 opus/48000/2\r\n"
  "a=fmtp:96 stereo=1;sprop-stereo=1\r\n"
  "a=rtpmap:9 G722/8000\r\n"
  "a=rtpmap:0 PCMU/8000\r\n"
  "a=rtpmap:8 PCMA/8000\r\n"
  "a=rtpmap:101 telephone-event/8000\r\n"
  "a=fmtp:101 0-15\r\n"
  "a=sendrecv\r\n"
  "a=label:1\r\n"
  "a=ssrc:1585919397 cname:1c5a0c3d-5c9e-4d0b-a7a2-6f2f8a9c1e11\r\n"
  "a=rtcp-rsize\r\n";

/* A browser after gathering: BUNDLE, DTLS, media-level c=, no session c=. */
#define FINGERPRINT "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:" \
                    "2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F\r\n"
static const char webrtc_offer[] =
  "v=0\r\n"
  "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
  "s=-\r\n"
  "t=0 0\r\n"
  "a=group:BUNDLE 0 1 2\r\n"
  "a=extmap-allow-mixed\r\n"
  "a=msid-semantic: WMS stream0\r\n"
  "m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
  "c=IN IP4 203.0.113.7\r\n"
  "a=rtcp:9 IN IP4 0.0.0.0\r\n"
  "a=candidate:842163049 1 udp 1677729535 203.0.113.7 54400 typ srflx raddr 10.0.0.7 rport 54400 generation 0 network-cost 999\r\n"
  "a=ice-ufrag:EsAw\r\n"
  "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
  "a=ice-options:trickle\r\n"
  FINGERPRINT
  "a=setup:actpass\r\n"
  "a=mid:0\r\n"
  "a=sendrecv\r\n"
  "a=rtcp-mux\r\n"
  "a=rtpmap:111 opus/48000/2\r\n"
  "a=rtcp-fb:111 transport-cc\r\n"
  "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
  "a=rtpmap:63 red/48000/2\r\n"
  "a=fmtp:63 111/111\r\n"
  "a=rtpmap:9 G722/8000\r\n"
  "a=rtpmap:0 PCMU/8000\r\n"
  "a=rtpmap:8 PCMA/8000\r\n"
  "a=rtpmap:13 CN/8000\r\n"
  "a=rtpmap:110 telephone-event/48000\r\n"
  "a=rtpmap:126 telephone-event/8000\r\n"
  "a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6\r\n"
  "m=video 54402 UDP/TLS/RTP/SAVPF 96 97 102\r\n"
  "c=IN IP4 203.0.113.7\r\n"
  "a=rtcp:9 IN IP4 0.0.0.0\r\n"
  "a=candidate:842163049 1 udp 1677729535 203.0.113.7 54402 typ srflx raddr 10.0.0.7 rport 54402 generation 0 network-cost 999\r\n"
  "a=end-of-candidates\r\n"
  "a=ice-ufrag:EsAw\r\n"
  "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
  FINGERPRINT
  "a=setup:actpass\r\n"
  "a=mid:1\r\n"
  "a=recvonly\r\n"
  "a=rtcp-mux\r\n"
  "a=rtcp-rsize\r\n"
  "a=rtpmap:96 VP8/90000\r\n"
  "a=rtcp-fb:96 nack pli\r\n"
  "a=rtpmap:97 rtx/90000\r\n"
  "a=fmtp:97 apt=96\r\n"
  "a=rtpmap:102 H264/90000\r\n"
  "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
  "m=application 54404 UDP/DTLS/SCTP webrtc-datachannel\r\n"
  "c=IN IP4 203.0.113.7\r\n"
  "a=ice-ufrag:EsAw\r\n"
  "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
  FINGERPRINT
  "a=setup:actpass\r\n"
  "a=mid:2\r\n"
  "a=sctp-port:5000\r\n"
  "a=max-message-size:262144\r\n";

/* Audio and video offered, ... */
static const char av_offer[] =
  "v=0\r\n"
  "o=carol 1 1 IN IP4 192.0.2.10\r\n"
  "s=call\r\n"
  "c=IN IP4 192.0.2.10\r\n"
  "t=0 0\r\n"
  "m=audio 6000 RTP/AVP 0 8 101\r\n"
  "a=rtpmap:101 telephone-event/8000\r\n"
  "m=video 6002 RTP/AVP 31 96\r\n"
  "a=rtpmap:96 H264/90000\r\n";

/* ... and the answer: audio accepted, video rejected with port 0. */
static const char av_answer_no_video[] =
  "v=0\r\n"
  "o=bob 2890844527 2890844528 IN IP4 192.0.2.50\r\n"
  "s=-\r\n"
  "c=IN IP4 192.0.2.50\r\n"
  "t=0 0\r\n"
  "m=audio 30000 RTP/AVP 0 101\r\n"
  "a=rtpmap:0 PCMU/8000\r\n"
  "a=rtpmap:101 telephone-event/8000\r\n"
  "a=rtcp:30001\r\n"
  "m=video 0 RTP/AVP 31\r\n"
  "a=rtcp:30003\r\n";

/* ---- helpers ------------------------------------------------------------ */

static TdSdp *
parse_ok (const char *text)
{
  g_autoptr (GError) error = NULL;
  TdSdp *sdp = td_sdp_parse (text, -1, &error);

  g_assert_no_error (error);
  g_assert_nonnull (sdp);
  return sdp;
}

static void
assert_parse_error (const char *text, gssize len, TdSdpError code, const char *prefix)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdSdp) sdp = td_sdp_parse (text, len, &error);

  g_assert_null (sdp);
  g_assert_error (error, TD_SDP_ERROR, (gint) code);
  if (!g_str_has_prefix (error->message, prefix))
    g_error ("error \"%s\" does not start with \"%s\"", error->message, prefix);
}

static void
assert_formats (const TdSdp *sdp, guint i, const char *const *expected)
{
  const char *const *formats = td_sdp_media_formats (sdp, i);

  g_assert_nonnull (formats);
  g_assert_cmpstrv (formats, expected);
}

/* Checks @out line by line against @expected (NULL-terminated): every line
 * ends in CRLF, there is no bare LF, nothing extra. */
static void
assert_lines (const char *out, const char *const *expected)
{
  g_assert_nonnull (out);
  g_assert_true (g_str_has_suffix (out, "\r\n"));

  g_auto (GStrv) lines = g_strsplit (out, "\r\n", -1);
  guint n = g_strv_length (lines);
  g_assert_cmpstr (lines[n - 1], ==, "");   /* after the final CRLF */
  g_free (lines[n - 1]);
  lines[n - 1] = NULL;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_assert_null (strchr (lines[i], '\n'));
      g_assert_null (strchr (lines[i], '\r'));
    }
  g_assert_cmpstrv (lines, expected);
}

static char *
rewrite (const TdSdp *sdp, const char *address, const guint16 *ports, guint n_ports)
{
  TdSdpRewrite rw = {
    .address = address,
    .ports = ports,
    .n_ports = n_ports,
    .origin_user = "tandem",
    .session_id = 42,
    .session_version = 7,
  };
  return td_sdp_rewrite (sdp, &rw);
}

/* ---- parsing real-world SDP --------------------------------------------- */

static void
test_parse_sipp (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (sipp_offer);

  g_assert_cmpuint (td_sdp_n_media (sdp), ==, 1);
  g_assert_cmpstr (td_sdp_media_type (sdp, 0), ==, "audio");
  g_assert_cmpuint (td_sdp_media_port (sdp, 0), ==, 6000);
  g_assert_cmpstr (td_sdp_media_proto (sdp, 0), ==, "RTP/AVP");
  g_assert_cmpstr (td_sdp_media_address (sdp, 0), ==, "127.0.1.1");
  g_assert_cmpint (td_sdp_media_direction (sdp, 0), ==, TD_SDP_SENDRECV);
  g_assert_false (td_sdp_media_is_hold (sdp, 0));
  g_assert_false (td_sdp_media_rtcp_mux (sdp, 0));
  g_assert_cmpuint (td_sdp_media_rtcp_port (sdp, 0), ==, 6001);
  assert_formats (sdp, 0, (const char *const[]) { "0", "8", "101", NULL });
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "0"), ==, "PCMU/8000");
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "8"), ==, "PCMA/8000");
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "101"), ==, "telephone-event/8000");
  g_assert_null (td_sdp_media_rtpmap (sdp, 0, "9"));
}

static void
test_parse_linphone (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (linphone_offer);

  g_assert_cmpuint (td_sdp_n_media (sdp), ==, 1);
  g_assert_cmpuint (td_sdp_media_port (sdp, 0), ==, 7078);
  g_assert_cmpstr (td_sdp_media_address (sdp, 0), ==, "198.51.100.20");
  g_assert_true (td_sdp_media_rtcp_mux (sdp, 0));
  g_assert_cmpuint (td_sdp_media_rtcp_port (sdp, 0), ==, 7079);
  assert_formats (sdp, 0, (const char *const[]) {
    "96", "97", "98", "0", "8", "18", "101", "99", "100", NULL });
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "96"), ==, "opus/48000/2");
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "99"), ==, "telephone-event/16000");
  g_assert_null (td_sdp_media_rtpmap (sdp, 0, "18"));   /* only an fmtp */
  g_assert_false (td_sdp_media_is_hold (sdp, 0));
}

static void
test_parse_baresip (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (baresip_offer);

  g_assert_cmpuint (td_sdp_n_media (sdp), ==, 1);
  g_assert_cmpuint (td_sdp_media_port (sdp, 0), ==, 10004);
  g_assert_cmpstr (td_sdp_media_address (sdp, 0), ==, "10.0.0.2");
  g_assert_cmpint (td_sdp_media_direction (sdp, 0), ==, TD_SDP_SENDRECV);
  g_assert_false (td_sdp_media_rtcp_mux (sdp, 0));
  g_assert_cmpuint (td_sdp_media_rtcp_port (sdp, 0), ==, 10005);
  assert_formats (sdp, 0, (const char *const[]) { "96", "9", "0", "8", "101", NULL });
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "9"), ==, "G722/8000");
}

static void
test_parse_webrtc (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (webrtc_offer);

  g_assert_cmpuint (td_sdp_n_media (sdp), ==, 3);

  g_assert_cmpstr (td_sdp_media_type (sdp, 0), ==, "audio");
  g_assert_cmpstr (td_sdp_media_proto (sdp, 0), ==, "UDP/TLS/RTP/SAVPF");
  g_assert_cmpuint (td_sdp_media_port (sdp, 0), ==, 54400);
  g_assert_cmpstr (td_sdp_media_address (sdp, 0), ==, "203.0.113.7");
  g_assert_cmpuint (td_sdp_media_rtcp_port (sdp, 0), ==, 9);
  g_assert_true (td_sdp_media_rtcp_mux (sdp, 0));
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "111"), ==, "opus/48000/2");
  /* rtpmaps are per m= line: 96 is not mapped in the audio section. */
  g_assert_null (td_sdp_media_rtpmap (sdp, 0, "96"));

  g_assert_cmpstr (td_sdp_media_type (sdp, 1), ==, "video");
  g_assert_cmpuint (td_sdp_media_port (sdp, 1), ==, 54402);
  g_assert_cmpint (td_sdp_media_direction (sdp, 1), ==, TD_SDP_RECVONLY);
  g_assert_false (td_sdp_media_is_hold (sdp, 1));   /* recvonly is not hold */
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 1, "96"), ==, "VP8/90000");
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 1, "102"), ==, "H264/90000");

  g_assert_cmpstr (td_sdp_media_type (sdp, 2), ==, "application");
  g_assert_cmpstr (td_sdp_media_proto (sdp, 2), ==, "UDP/DTLS/SCTP");
  assert_formats (sdp, 2, (const char *const[]) { "webrtc-datachannel", NULL });
  g_assert_false (td_sdp_media_rtcp_mux (sdp, 2));
  g_assert_cmpuint (td_sdp_media_rtcp_port (sdp, 2), ==, 54405);
}

static void
test_parse_rejected_stream (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (av_answer_no_video);

  g_assert_cmpuint (td_sdp_n_media (sdp), ==, 2);
  g_assert_cmpuint (td_sdp_media_port (sdp, 0), ==, 30000);
  g_assert_cmpuint (td_sdp_media_rtcp_port (sdp, 0), ==, 30001);
  g_assert_cmpstr (td_sdp_media_type (sdp, 1), ==, "video");
  g_assert_cmpuint (td_sdp_media_port (sdp, 1), ==, 0);
  g_assert_cmpuint (td_sdp_media_rtcp_port (sdp, 1), ==, 0);
  assert_formats (sdp, 1, (const char *const[]) { "31", NULL });
}

/* ---- hold --------------------------------------------------------------- */

#define HOLD_HEAD "v=0\r\no=x 1 2 IN IP4 192.0.2.1\r\ns=-\r\n"

static void
test_hold_variants (void)
{
  static const struct {
    const char *sdp;
    TdSdpDirection direction;
    gboolean hold;
    const char *address;
  } cases[] = {
    { HOLD_HEAD "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
      TD_SDP_SENDONLY, TRUE, "192.0.2.1" },
    { HOLD_HEAD "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n",
      TD_SDP_INACTIVE, TRUE, "192.0.2.1" },
    { HOLD_HEAD "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n",
      TD_SDP_RECVONLY, FALSE, "192.0.2.1" },
    /* RFC 2543 hold, session-level and media-level. */
    { HOLD_HEAD "c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
      TD_SDP_SENDRECV, TRUE, "0.0.0.0" },
    { HOLD_HEAD "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n",
      TD_SDP_SENDRECV, TRUE, "0.0.0.0" },
    /* The media-level c= wins over a session-level 0.0.0.0. */
    { HOLD_HEAD "c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\n",
      TD_SDP_SENDRECV, FALSE, "192.0.2.9" },
    /* Session-level direction applies unless the media says otherwise. */
    { HOLD_HEAD "c=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n",
      TD_SDP_SENDRECV, FALSE, "192.0.2.1" },
    { HOLD_HEAD "c=IN IP4 192.0.2.1\r\nt=0 0\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\n",
      TD_SDP_INACTIVE, TRUE, "192.0.2.1" },
    /* Trailing blanks, as some phones send them. */
    { HOLD_HEAD "c=IN IP4 192.0.2.1 \r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly \r\n",
      TD_SDP_SENDONLY, TRUE, "192.0.2.1" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (TdSdp) sdp = parse_ok (cases[i].sdp);

      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpint (td_sdp_media_direction (sdp, 0), ==, cases[i].direction);
      g_assert_cmpint (td_sdp_media_is_hold (sdp, 0), ==, cases[i].hold);
      g_assert_cmpstr (td_sdp_media_address (sdp, 0), ==, cases[i].address);
    }
}

/* ---- leniency ----------------------------------------------------------- */

static void
test_parse_lf_only (void)
{
  g_autofree char *lf = NULL;
  g_auto (GStrv) parts = g_strsplit (sipp_offer, "\r\n", -1);

  lf = g_strjoinv ("\n", parts);
  g_autoptr (TdSdp) sdp = parse_ok (lf);
  g_assert_cmpuint (td_sdp_media_port (sdp, 0), ==, 6000);
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "101"), ==, "telephone-event/8000");

  /* No final newline, and the last line still counts. */
  g_autoptr (TdSdp) unterminated = parse_ok ("v=0\nc=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 0\na=sendonly");
  g_assert_true (td_sdp_media_is_hold (unterminated, 0));

  /* Mixed endings and empty lines, including a trailing one. */
  g_autoptr (TdSdp) mixed = parse_ok ("v=0\r\n\r\ns=-\n\nm=audio 4000 RTP/AVP 0\r\n\r\n");
  g_assert_cmpuint (td_sdp_n_media (mixed), ==, 1);
  g_assert_null (td_sdp_media_address (mixed, 0));
}

static void
test_parse_explicit_length (void)
{
  /* Text followed by junk, parsed up to @len only. */
  g_autofree char *buffer = g_strconcat (sipp_offer, "garbage that is not SDP", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (TdSdp) sdp = td_sdp_parse (buffer, (gssize) strlen (sipp_offer), &error);

  g_assert_no_error (error);
  g_assert_cmpuint (td_sdp_n_media (sdp), ==, 1);
  g_assert_cmpstr (td_sdp_media_rtpmap (sdp, 0, "101"), ==, "telephone-event/8000");

  /* A buffer with no NUL at all (as a SIP body is), ending mid-line: under
   * ASan, any read past @len shows. */
  static const char body[] = "v=0\r\nm=audio 4000 RTP/AVP 0 8\r\na=sendonly";
  gsize len = sizeof body - 1;
  g_autofree char *exact = g_memdup2 (body, len);
  g_autoptr (TdSdp) unterminated = td_sdp_parse (exact, (gssize) len, &error);
  g_assert_no_error (error);
  g_assert_true (td_sdp_media_is_hold (unterminated, 0));
  assert_formats (unterminated, 0, (const char *const[]) { "0", "8", NULL });
}

static void
test_parse_lenient (void)
{
  /* Sofia-SIP answers 400 to this one. */
  g_autoptr (TdSdp) lpc = parse_ok (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 31 7\r\na=rtpmap:31 LPC\r\n");
  g_assert_cmpstr (td_sdp_media_rtpmap (lpc, 0, "31"), ==, "LPC");

  /* Unknown letters and attributes, extra blanks, a tab, a hostname in c=,
   * a multicast TTL, a port count, malformed a=rtpmap and a=rtcp: kept,
   * not fatal. */
  g_autoptr (TdSdp) odd = parse_ok (
    "v=0\r\n"
    "o=- 1 1 IN IP4 pbx.example.com\r\n"
    "s=\r\n"
    "X=vendor extension\r\n"
    "y=whatever\r\n"
    "c=IN IP4 pbx.example.com\r\n"
    "t=0 0\r\n"
    "m=audio  4000/2\tRTP/AVP  0   8\r\n"
    "c=IN IP4 233.252.0.1/127\r\n"
    "a=rtpmap:\r\n"
    "a=rtcp:notaport\r\n"
    "a=x-custom\r\n");
  g_assert_cmpuint (td_sdp_media_port (odd, 0), ==, 4000);
  g_assert_cmpstr (td_sdp_media_proto (odd, 0), ==, "RTP/AVP");
  assert_formats (odd, 0, (const char *const[]) { "0", "8", NULL });
  g_assert_cmpstr (td_sdp_media_address (odd, 0), ==, "233.252.0.1");
  g_assert_cmpuint (td_sdp_media_rtcp_port (odd, 0), ==, 4001);

  /* A direction attribute with a value is not a direction. */
  g_autoptr (TdSdp) notdir = parse_ok ("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly:yes\r\n");
  g_assert_cmpint (td_sdp_media_direction (notdir, 0), ==, TD_SDP_SENDRECV);
}

/* ---- errors and limits -------------------------------------------------- */

static void
test_parse_errors (void)
{
  static const struct {
    const char *text;
    const char *prefix;
  } cases[] = {
    { "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nthis is not SDP\r\nm=audio 4000 RTP/AVP 0\r\n",
      "line 3: not of the form x=value" },
    { "v=0\r\n=0\r\n", "line 2: not of the form x=value" },
    { "v=0\r\n1=0\r\n", "line 2: not of the form x=value" },
    { "v=0\r\n a=sendonly\r\n", "line 2: not of the form x=value" },
    { "v=0\r\nm\r\n", "line 2: not of the form x=value" },
    { "o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n", "line 1: expected v=0" },
    { "\r\nv=1\r\n", "line 2: expected v=0" },
    { "", "empty SDP" },
    { "\r\n  \r\n", "empty SDP" },
    { "v=0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n", "no m= line" },
    { "v=0\r\nm=audio\r\n", "line 2: malformed m= line" },
    { "v=0\r\nm=audio 4000 RTP/AVP\r\n", "line 2: malformed m= line" },
    { "v=0\r\nm=audio 4000 RTP/AVP \r\n", "line 2: malformed m= line" },
    { "v=0\r\nm=audio four RTP/AVP 0\r\n", "line 2: bad port" },
    { "v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "line 2: bad port" },
    { "v=0\r\nm=audio -1 RTP/AVP 0\r\n", "line 2: bad port" },
    { "v=0\r\nm=audio 4000/ RTP/AVP 0\r\n", "line 2: bad port" },
    { "v=0\r\nm=audio 4000/0 RTP/AVP 0\r\n", "line 2: bad port" },
    { "v=0\r\nm=audio 4000 RTP/AVP 0\r\nm=video x RTP/AVP 31\r\n", "line 3: bad port" },
    { "v=0\r\nc=IN IP4\r\nm=audio 4000 RTP/AVP 0\r\n", "line 2: malformed c= line" },
    { "v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 /127\r\n", "line 3: malformed c= line" },
    /* A lone CR could smuggle a line past us to the next hop. */
    { "v=0\r\nm=audio 4000 RTP/AVP 0\r\na=x\rc=IN IP4 203.0.113.66\r\n",
      "line 3: contains a CR" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, cases[i].prefix);
      assert_parse_error (cases[i].text, -1, TD_SDP_ERROR_SYNTAX, cases[i].prefix);
    }

  static const char with_nul[] = "v=0\r\nm=audio 4000 RTP/AVP 0\r\na=x\0y\r\n";
  assert_parse_error (with_nul, sizeof with_nul - 1, TD_SDP_ERROR_SYNTAX,
                      "line 3: contains a NUL byte");
}

/* "v=0" and one m= line, padded with an attribute to exactly @size bytes. */
static char *
sdp_of_size (gsize size)
{
  static const char head[] = "v=0\r\nm=audio 4000 RTP/AVP 0\r\na=x:";
  GString *s = g_string_new (head);

  g_assert_cmpuint (size, >, sizeof head + 2);
  while (s->len < size - 2)
    g_string_append_c (s, 'y');
  g_string_append (s, "\r\n");
  g_assert_cmpuint (s->len, ==, size);
  return g_string_free (s, FALSE);
}

static char *
sdp_with_media (guint n)
{
  GString *s = g_string_new ("v=0\r\n");

  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "m=audio %u RTP/AVP 0\r\n", 4000 + 2 * i);
  return g_string_free (s, FALSE);
}

static void
test_parse_limits (void)
{
  g_autofree char *at_limit = sdp_of_size (TD_SDP_MAX_SIZE);
  g_autoptr (TdSdp) ok = parse_ok (at_limit);
  g_assert_cmpuint (td_sdp_n_media (ok), ==, 1);

  g_autofree char *over = sdp_of_size (TD_SDP_MAX_SIZE + 1);
  assert_parse_error (over, -1, TD_SDP_ERROR_TOO_LARGE, "SDP is larger than 65536 bytes");
  assert_parse_error (over, (gssize) strlen (over), TD_SDP_ERROR_TOO_LARGE, "SDP is larger");

  g_autofree char *max_media = sdp_with_media (TD_SDP_MAX_MEDIA);
  g_autoptr (TdSdp) many = parse_ok (max_media);
  g_assert_cmpuint (td_sdp_n_media (many), ==, TD_SDP_MAX_MEDIA);
  g_assert_cmpuint (td_sdp_media_port (many, TD_SDP_MAX_MEDIA - 1), ==, 4000 + 2 * 7);

  /* Each stream costs relay ports on every leg: 8 is the most (issue 8 item 6). */
  g_assert_cmpuint (TD_SDP_MAX_MEDIA, ==, 8);
  g_autofree char *too_many = sdp_with_media (TD_SDP_MAX_MEDIA + 1);
  assert_parse_error (too_many, -1, TD_SDP_ERROR_TOO_LARGE, "line 10: more than 8 m= lines");

  /* Formats: every payload type once is fine, more is hostile. */
  g_autoptr (GString) formats = g_string_new ("v=0\r\nm=audio 4000 RTP/AVP");
  for (guint pt = 0; pt < TD_SDP_MAX_FORMATS; pt++)
    g_string_append_printf (formats, " %u", pt);
  g_autofree char *all_types = g_strconcat (formats->str, "\r\n", NULL);
  g_autoptr (TdSdp) all = parse_ok (all_types);
  g_assert_cmpuint (g_strv_length ((GStrv) td_sdp_media_formats (all, 0)), ==, TD_SDP_MAX_FORMATS);
  g_assert_true (td_sdp_answer_matches_offer (all, all));
  g_string_append (formats, " 0\r\n");
  assert_parse_error (formats->str, -1, TD_SDP_ERROR_TOO_LARGE, "line 2: more than 128 formats");
}

/* ---- rewriting ---------------------------------------------------------- */

static void
test_rewrite_sipp (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (sipp_offer);
  const guint16 ports[] = { 40000 };
  g_autofree char *out = rewrite (sdp, "192.0.2.1", ports, 1);

  assert_lines (out, (const char *const[]) {
    "v=0",
    "o=tandem 42 7 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 192.0.2.1",
    "t=0 0",
    "m=audio 40000 RTP/AVP 0 8 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:20",
    NULL });
}

static void
test_rewrite_linphone (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (linphone_offer);
  const guint16 ports[] = { 20000 };
  g_autofree char *out = rewrite (sdp, "2001:db8::1", ports, 1);

  /* IPv6 relay; ICE gone at both levels; a=rtcp-xr is not a=rtcp. */
  assert_lines (out, (const char *const[]) {
    "v=0",
    "o=tandem 42 7 IN IP6 2001:db8::1",
    "s=Talk",
    "c=IN IP6 2001:db8::1",
    "t=0 0",
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics",
    "a=record:off",
    "m=audio 20000 RTP/AVP 96 97 98 0 8 18 101 99 100",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=rtpmap:97 speex/16000",
    "a=fmtp:97 vbr=on",
    "a=rtpmap:98 speex/8000",
    "a=fmtp:98 vbr=on",
    "a=fmtp:18 annexb=yes",
    "a=rtpmap:101 telephone-event/48000",
    "a=rtpmap:99 telephone-event/16000",
    "a=rtpmap:100 telephone-event/8000",
    "a=rtcp:20001",
    "a=rtcp-mux",
    "a=rtcp-fb:* trr-int 1000",
    "a=rtcp-fb:* ccm tmmbr",
    NULL });
}

static void
test_rewrite_baresip (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (baresip_offer);
  const guint16 ports[] = { 30010 };
  g_autofree char *out = rewrite (sdp, "192.0.2.1", ports, 1);

  /* Only a=ssrc goes (the relay sends its own SSRC, RFC 5576): everything
   * but o=, c= and the port is verbatim. */
  g_autofree char *expected = g_strdup (baresip_offer);
  g_auto (GStrv) lines = g_strsplit (expected, "\r\n", -1);
  g_free (lines[1]);
  lines[1] = g_strdup ("o=tandem 42 7 IN IP4 192.0.2.1");
  g_free (lines[3]);
  lines[3] = g_strdup ("c=IN IP4 192.0.2.1");
  g_free (lines[6]);
  lines[6] = g_strdup ("m=audio 30010 RTP/AVP 96 9 0 8 101");
  g_assert_true (g_str_has_prefix (lines[17], "a=ssrc:"));
  g_free (lines[17]);
  memmove (lines + 17, lines + 18, (g_strv_length (lines + 18) + 1) * sizeof (char *));
  g_autofree char *joined = g_strjoinv ("\r\n", lines);
  g_assert_cmpstr (out, ==, joined);
}

static void
test_rewrite_webrtc (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (webrtc_offer);
  const guint16 ports[] = { 41000, 41002, 41004 };
  g_autofree char *out = rewrite (sdp, "192.0.2.1", ports, 3);
  const char *fingerprint = "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:"
                            "2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F";

  /* No session c= in the input: one goes before t=, per RFC 4566 order. */
  assert_lines (out, (const char *const[]) {
    "v=0",
    "o=tandem 42 7 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 192.0.2.1",
    "t=0 0",
    "a=group:BUNDLE 0 1 2",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS stream0",
    "m=audio 41000 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 192.0.2.1",
    "a=rtcp:41001",
    fingerprint,
    "a=setup:actpass",
    "a=mid:0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
    "m=video 41002 UDP/TLS/RTP/SAVPF 96 97 102",
    "c=IN IP4 192.0.2.1",
    "a=rtcp:41003",
    fingerprint,
    "a=setup:actpass",
    "a=mid:1",
    "a=recvonly",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "a=rtpmap:102 H264/90000",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    "m=application 41004 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 192.0.2.1",
    fingerprint,
    "a=setup:actpass",
    "a=mid:2",
    "a=sctp-port:5000",
    "a=max-message-size:262144",
    NULL });
}

static void
test_rewrite_rejected_stream (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (av_answer_no_video);
  const guint16 ports[] = { 42000, 42002 };
  g_autofree char *out = rewrite (sdp, "192.0.2.1", ports, 2);

  /* Video stays rejected: port 0 and no a=rtcp pointing anywhere. */
  assert_lines (out, (const char *const[]) {
    "v=0",
    "o=tandem 42 7 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 192.0.2.1",
    "t=0 0",
    "m=audio 42000 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=rtcp:42001",
    "m=video 0 RTP/AVP 31",
    NULL });
}

static void
test_rewrite_hold (void)
{
  /* RFC 2543 hold at session level with a media-level address, and at
   * media level: 0.0.0.0 must reach the far end unchanged. */
  g_autoptr (TdSdp) sdp = parse_ok (
    "v=0\r\n"
    "o=x 1 2 IN IP4 192.0.2.77\r\n"
    "s=-\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "t=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\n"
    "a=sendonly\r\n"
    "m=audio 4002 RTP/AVP 8\r\n"
    "c=IN IP4 192.0.2.77\r\n"
    "m=video 4004 RTP/AVP 31\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=inactive\r\n");
  const guint16 ports[] = { 43000, 43002, 43004 };
  g_autofree char *out = rewrite (sdp, "192.0.2.1", ports, 3);

  assert_lines (out, (const char *const[]) {
    "v=0",
    "o=tandem 42 7 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 0.0.0.0",
    "t=0 0",
    "m=audio 43000 RTP/AVP 0",
    "a=sendonly",
    "m=audio 43002 RTP/AVP 8",
    "c=IN IP4 192.0.2.1",
    "m=video 43004 RTP/AVP 31",
    "c=IN IP4 0.0.0.0",
    "a=inactive",
    NULL });

  /* And what the far end parses from it. */
  g_autoptr (TdSdp) again = parse_ok (out);
  g_assert_true (td_sdp_media_is_hold (again, 0));
  g_assert_false (td_sdp_media_is_hold (again, 1));
  g_assert_true (td_sdp_media_is_hold (again, 2));
}

static void
test_rewrite_minimal (void)
{
  /* No o=, no session c=, b= before t=, LF endings, a session-level a=rtcp
   * (invalid) and ICE; one stream with its own c=, one without. */
  g_autoptr (TdSdp) sdp = parse_ok (
    "v=0\n"
    "s=minimal\n"
    "i=info\n"
    "b=AS:64\n"
    "t=0 0\n"
    "a=ice-lite\n"
    "a=rtcp:5000 IN IP4 198.51.100.1\n"
    "m=audio 5000 RTP/AVP 0\n"
    "c=IN IP4 198.51.100.1\n"
    "a=remote-candidates:1 198.51.100.1 5000\n"
    "a=ice-mismatch\n"
    "m=audio 5002/2 RTP/AVP 8\n"
    "a=RTCP:5003\n");
  const guint16 ports[] = { 44000, 44010 };
  TdSdpRewrite rw = {
    .address = "203.0.113.1",
    .ports = ports,
    .n_ports = 2,
    .origin_user = "tandem",
    .session_id = G_MAXUINT64,
    .session_version = 0,
  };
  g_autofree char *out = td_sdp_rewrite (sdp, &rw);

  assert_lines (out, (const char *const[]) {
    "v=0",
    "o=tandem 18446744073709551615 0 IN IP4 203.0.113.1",
    "s=minimal",
    "i=info",
    "c=IN IP4 203.0.113.1",
    "b=AS:64",
    "t=0 0",
    "m=audio 44000 RTP/AVP 0",
    "c=IN IP4 203.0.113.1",
    "m=audio 44010/2 RTP/AVP 8",
    "a=rtcp:44011",
    NULL });

  g_autoptr (TdSdp) again = parse_ok (out);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpstr (td_sdp_media_address (again, i), ==, "203.0.113.1");
      g_assert_cmpuint (td_sdp_media_port (again, i), ==, ports[i]);
      g_assert_cmpuint (td_sdp_media_rtcp_port (again, i), ==, ports[i] + 1);
    }
}

static void
test_rewrite_duplicates (void)
{
  /* Two o=, two session c=, a multicast-style pair of media c= and two
   * a=rtcp: one of each comes out, in the first one's place. */
  g_autoptr (TdSdp) sdp = parse_ok (
    "v=0\r\n"
    "o=a 1 1 IN IP4 192.0.2.5\r\n"
    "o=b 2 2 IN IP4 192.0.2.6\r\n"
    "s=-\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "c=IN IP4 192.0.2.5\r\n"
    "t=0 0\r\n"
    "m=video 4000/2 RTP/AVP 31\r\n"
    "c=IN IP4 233.252.0.1/127\r\n"
    "c=IN IP4 233.252.0.2/127\r\n"
    "a=rtcp:4001\r\n"
    "a=rtcp:4003\r\n"
    "a=recvonly\r\n");
  const guint16 ports[] = { 45000 };
  g_autofree char *out = rewrite (sdp, "192.0.2.1", ports, 1);

  g_assert_false (td_sdp_media_is_hold (sdp, 0));   /* media c= wins */
  g_assert_cmpstr (td_sdp_media_address (sdp, 0), ==, "233.252.0.1");   /* the first one */
  g_assert_cmpuint (td_sdp_media_rtcp_port (sdp, 0), ==, 4001);
  assert_lines (out, (const char *const[]) {
    "v=0",
    "o=tandem 42 7 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 0.0.0.0",
    "t=0 0",
    "m=video 45000/2 RTP/AVP 31",
    "c=IN IP4 192.0.2.1",
    "a=rtcp:45001",
    "a=recvonly",
    NULL });
}

static void
test_rewrite_bad_arguments (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr (TdSdp) sdp = parse_ok (sipp_offer);
      const guint16 ports[] = { 40000, 40002 };
      g_autofree char *out = rewrite (sdp, "192.0.2.1", ports, 2);   /* one port too many */
      g_assert_null (out);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*n_ports*");
}

/* ---- offer/answer ------------------------------------------------------- */

#define OA_HEAD "v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"

static gboolean
matches (const char *offer_text, const char *answer_text)
{
  g_autoptr (TdSdp) offer = parse_ok (offer_text);
  g_autoptr (TdSdp) answer = parse_ok (answer_text);
  return td_sdp_answer_matches_offer (offer, answer);
}

static void
test_answer_matches_offer (void)
{
  static const struct {
    const char *offer;
    const char *answer;
    gboolean match;
  } cases[] = {
    /* Plain: PCMU + telephone-event accepted from a SIPp offer. */
    { sipp_offer, OA_HEAD "m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n", TRUE },
    /* Static payload types by number, with or without rtpmap. */
    { sipp_offer, OA_HEAD "m=audio 5000 RTP/AVP 8\r\n", TRUE },
    /* Dynamic renumbering: offer 101 telephone-event, answer 96. */
    { OA_HEAD "m=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n",
      OA_HEAD "m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 telephone-event/8000\r\n", TRUE },
    { sipp_offer, OA_HEAD "m=audio 5000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n", TRUE },
    /* ... same name, other clock rate: not the same format. */
    { OA_HEAD "m=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n",
      OA_HEAD "m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 telephone-event/16000\r\n", FALSE },
    /* Opus renumbered, case and channel count don't matter. */
    { linphone_offer, OA_HEAD "m=audio 5000 RTP/AVP 111\r\na=rtpmap:111 OPUS/48000\r\n", TRUE },
    /* Same number, different codec: the rtpmap decides. */
    { linphone_offer, OA_HEAD "m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 iLBC/8000\r\n", FALSE },
    /* No codec in common. */
    { sipp_offer, OA_HEAD "m=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n", FALSE },
    { sipp_offer, OA_HEAD "m=audio 5000 RTP/AVP 9 96\r\na=rtpmap:96 opus/48000/2\r\n", FALSE },
    /* Only telephone-event in common is no codec in common. */
    { sipp_offer, OA_HEAD "m=audio 5000 RTP/AVP 18 96\r\na=rtpmap:96 telephone-event/8000\r\n", FALSE },
    { webrtc_offer, OA_HEAD "m=audio 5000 RTP/AVP 13 126\r\na=rtpmap:126 telephone-event/8000\r\n"
                            "m=video 0 RTP/AVP 96\r\nm=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n",
      FALSE },
    /* Video rejected, audio accepted. */
    { av_offer, av_answer_no_video, TRUE },
    /* Both accepted; video by dynamic type renumbered. */
    { av_offer, OA_HEAD "m=audio 5000 RTP/AVP 8\r\nm=video 5002 RTP/AVP 100\r\na=rtpmap:100 h264/90000\r\n",
      TRUE },
    /* Video accepted with a codec that wasn't offered. */
    { av_offer, OA_HEAD "m=audio 5000 RTP/AVP 8\r\nm=video 5002 RTP/AVP 34\r\n", FALSE },
    /* Nothing accepted. */
    { av_offer, OA_HEAD "m=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n", FALSE },
    /* More accepted m= lines than offered. */
    { sipp_offer, OA_HEAD "m=audio 5000 RTP/AVP 0\r\nm=audio 5002 RTP/AVP 0\r\n", FALSE },
    /* An answer may not accept a stream the offer disabled, or change its type. */
    { av_answer_no_video, OA_HEAD "m=audio 5000 RTP/AVP 0\r\nm=video 5002 RTP/AVP 31\r\n", FALSE },
    { av_offer, OA_HEAD "m=video 5000 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n", FALSE },
    /* Non-RTP formats compare as strings: T.38. */
    { OA_HEAD "m=image 4000 udptl t38\r\n", OA_HEAD "m=image 5000 udptl T38\r\n", TRUE },
    { OA_HEAD "m=image 4000 udptl t38\r\n", OA_HEAD "m=image 5000 udptl 0\r\n", FALSE },
    /* A dynamic type without rtpmap on one side falls back to its number. */
    { OA_HEAD "m=audio 4000 RTP/AVP 97\r\n", OA_HEAD "m=audio 5000 RTP/AVP 97\r\na=rtpmap:97 AMR/8000\r\n", TRUE },
    { OA_HEAD "m=audio 4000 RTP/AVP 97\r\n", OA_HEAD "m=audio 5000 RTP/AVP 98\r\na=rtpmap:98 AMR/8000\r\n", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpint (matches (cases[i].offer, cases[i].answer), ==, cases[i].match);
    }
}

static void
test_static_rtpmap (void)
{
  g_assert_cmpstr (td_sdp_static_rtpmap (0), ==, "PCMU/8000");
  g_assert_cmpstr (td_sdp_static_rtpmap (8), ==, "PCMA/8000");
  g_assert_cmpstr (td_sdp_static_rtpmap (9), ==, "G722/8000");
  g_assert_cmpstr (td_sdp_static_rtpmap (13), ==, "CN/8000");
  g_assert_cmpstr (td_sdp_static_rtpmap (18), ==, "G729/8000");
  g_assert_cmpstr (td_sdp_static_rtpmap (34), ==, "H263/90000");
  g_assert_null (td_sdp_static_rtpmap (1));
  g_assert_null (td_sdp_static_rtpmap (19));
  g_assert_null (td_sdp_static_rtpmap (35));
  g_assert_null (td_sdp_static_rtpmap (96));
}

/* tandem answering a hold itself: every direction attribute becomes its own,
 * once per accepted stream, none at session level. */
static void
test_rewrite_direction (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TdSdp) sdp = td_sdp_parse (
      "v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
      "a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"
      "m=video 0 RTP/AVP 96\r\n", -1, &error);
  guint16 ports[] = { 30000, 30002 };
  TdSdpRewrite rw = { .address = "127.0.0.1", .ports = ports, .n_ports = 2,
                      .origin_user = "tandem", .session_id = 7, .session_version = 3,
                      .set_direction = TRUE, .direction = TD_SDP_RECVONLY };
  g_autofree char *out = NULL;
  g_autoptr (TdSdp) again = NULL;

  g_assert_no_error (error);
  out = td_sdp_rewrite (sdp, &rw);
  g_assert_cmpstr (out, ==,
                   "v=0\r\no=tandem 7 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                   "t=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=recvonly\r\nm=video 0 RTP/AVP 96\r\n");
  again = td_sdp_parse (out, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (td_sdp_media_direction (again, 0), ==, TD_SDP_RECVONLY);
}

/* The clock of each stream's first codec, for the relay's timestamps at a
 * source switch (issue 8 item 11): rtpmap first, static table else,
 * telephone-event and CN skipped. */
static void
test_clock_rate (void)
{
  g_autoptr (TdSdp) sdp = parse_ok ("v=0\r\nc=IN IP4 10.0.0.1\r\n"
                                    "m=audio 4000 RTP/AVP 96 0\r\na=rtpmap:96 PCMU/8000\r\n"
                                    "m=audio 4002 RTP/AVP 101 111\r\na=rtpmap:101 telephone-event/8000\r\n"
                                    "a=rtpmap:111 opus/48000/2\r\n"
                                    "m=audio 4004 RTP/AVP 13 6\r\n"
                                    "m=audio 4006 RTP/AVP 9\r\n"
                                    "m=audio 4008 RTP/AVP 97\r\na=rtpmap:97 L16/16000\r\n"
                                    "m=audio 4010 RTP/AVP 98\r\n"
                                    "m=application 4012 UDP/BFCP *\r\n");

  g_assert_cmpuint (td_sdp_media_clock_rate (sdp, 0), ==, 8000);
  g_assert_cmpuint (td_sdp_media_clock_rate (sdp, 1), ==, 48000);
  g_assert_cmpuint (td_sdp_media_clock_rate (sdp, 2), ==, 16000);   /* DVI4/16000 after CN */
  g_assert_cmpuint (td_sdp_media_clock_rate (sdp, 3), ==, 8000);    /* G.722's RTP clock */
  g_assert_cmpuint (td_sdp_media_clock_rate (sdp, 4), ==, 16000);
  g_assert_cmpuint (td_sdp_media_clock_rate (sdp, 5), ==, 0);       /* dynamic, no rtpmap */
  g_assert_cmpuint (td_sdp_media_clock_rate (sdp, 6), ==, 0);
}

/* Tandem's own answer to an offer keeps one codec (and telephone-event)
 * of the offer's first stream, the offer's order, and nothing about the
 * others; the rest of the SDP is untouched. */
static void
test_with_formats (void)
{
  static const char offer[] =
    "v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 96 0 8 101\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtcp-fb:* nack\r\n"
    "a=rtcp-fb:96 transport-cc\r\na=ptime:20\r\na=sendrecv\r\n"
    "m=video 5000 RTP/AVP 97\r\na=rtpmap:97 VP8/90000\r\n";
  static const char *const keep[] = { "101", "8", NULL };
  static const char *const none[] = { "9", NULL };
  g_autoptr (TdSdp) sdp = td_sdp_parse (offer, -1, NULL);
  g_autoptr (TdSdp) one = td_sdp_with_formats (sdp, 0, keep);
  guint16 ports[] = { 30000, 30002 };
  TdSdpRewrite rw = { .address = "127.0.0.1", .ports = ports, .n_ports = 2,
                      .origin_user = "tandem", .session_id = 1, .session_version = 1 };
  g_autofree char *text = NULL;

  g_assert_nonnull (one);
  g_assert_null (td_sdp_with_formats (sdp, 0, none));
  g_assert_cmpuint (td_sdp_n_media (one), ==, 2);
  g_assert_cmpuint (g_strv_length ((char **) td_sdp_media_formats (one, 0)), ==, 2);
  g_assert_cmpstr (td_sdp_media_formats (one, 0)[0], ==, "8");
  g_assert_cmpstr (td_sdp_media_formats (one, 0)[1], ==, "101");
  g_assert_cmpstr (td_sdp_media_rtpmap (one, 0, "101"), ==, "telephone-event/8000");
  g_assert_null (td_sdp_media_rtpmap (one, 0, "96"));
  g_assert_cmpstr (td_sdp_media_formats (one, 1)[0], ==, "97");
  text = td_sdp_rewrite (one, &rw);
  g_assert_nonnull (strstr (text, "m=audio 30000 RTP/AVP 8 101\r\n"));
  g_assert_null (strstr (text, "opus"));
  g_assert_null (strstr (text, "useinbandfec"));
  g_assert_null (strstr (text, "transport-cc"));
  g_assert_nonnull (strstr (text, "a=fmtp:101 0-15\r\n"));
  g_assert_nonnull (strstr (text, "a=rtcp-fb:* nack\r\n"));
  g_assert_nonnull (strstr (text, "a=ptime:20\r\n"));
  g_assert_nonnull (strstr (text, "m=video 30002 RTP/AVP 97\r\na=rtpmap:97 VP8/90000\r\n"));
}

/* ---- SDES lines (td-sdes.c decides them; td-sdp only carries them) ------ */

/* Another leg's keys at both levels (session-level a=crypto is invalid but
 * seen), two a=crypto on audio, none on video, and an m=application. */
static const char crypto_offer[] =
  "v=0\r\n"
  "o=bob 1 1 IN IP4 10.0.0.3\r\n"
  "s=-\r\n"
  "c=IN IP4 10.0.0.3\r\n"
  "t=0 0\r\n"
  "a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:SESSIONLEVELKEYxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
  "m=audio 4000 RTP/SAVP 0 101\r\n"
  "a=rtpmap:101 telephone-event/8000\r\n"
  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:OTHERLEGKEY1xxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
  "a=CRYPTO:2 AES_CM_128_HMAC_SHA1_32 inline:OTHERLEGKEY2xxxxxxxxxxxxxxxxxxxxxxxxxxxx|2^20\r\n"
  "a=sendrecv\r\n"
  "m=video 4002 RTP/AVPF 96\r\n"
  "a=rtpmap:96 VP8/90000\r\n"
  "m=application 4004 UDP/BFCP *\r\n"
  "a=floorctrl:c-s\r\n";

static void
test_media_crypto (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (crypto_offer);

  g_assert_cmpstrv (td_sdp_media_crypto (sdp, 0), ((const char *const[]) {
    "1 AES_CM_128_HMAC_SHA1_80 inline:OTHERLEGKEY1xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "2 AES_CM_128_HMAC_SHA1_32 inline:OTHERLEGKEY2xxxxxxxxxxxxxxxxxxxxxxxxxxxx|2^20",
    NULL }));
  g_assert_nonnull (td_sdp_media_crypto (sdp, 1));
  g_assert_null (td_sdp_media_crypto (sdp, 1)[0]);
  g_assert_null (td_sdp_media_crypto (sdp, 2)[0]);
  /* Not a prefix match: a=cryptox is another attribute. */
  g_autoptr (TdSdp) other = parse_ok ("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 1 RTP/AVP 0\r\n"
                                      "a=cryptox:1 a b\r\n");
  g_assert_null (td_sdp_media_crypto (other, 0)[0]);
}

static void
test_rewrite_crypto (void)
{
  g_autoptr (TdSdp) sdp = parse_ok (crypto_offer);
  const guint16 ports[] = { 40000, 40002, 40004 };
  const char *const protos[] = { "RTP/AVP", "RTP/SAVPF", NULL };
  const char *const audio_lines[] = { "3 AES_CM_128_HMAC_SHA1_80 inline:OURKEY", NULL };
  const char *const video_lines[] = { "1 AEAD_AES_128_GCM inline:K1", "2 AEAD_AES_256_GCM inline:K2", NULL };
  const char *const *const crypto[] = { audio_lines, video_lines, NULL };
  TdSdpRewrite rw = {
    .address = "192.0.2.1", .ports = ports, .n_ports = 3,
    .origin_user = "tandem", .session_id = 42, .session_version = 7,
  };

  /* Without protos and crypto: the input's a=crypto still go. */
  g_autofree char *plain = td_sdp_rewrite (sdp, &rw);
  g_assert_null (strstr (plain, "crypto"));
  g_assert_null (strstr (plain, "CRYPTO"));
  g_assert_nonnull (strstr (plain, "m=audio 40000 RTP/SAVP 0 101\r\n"));

  rw.protos = protos;
  rw.crypto = crypto;
  g_autofree char *out = td_sdp_rewrite (sdp, &rw);
  assert_lines (out, (const char *const[]) {
    "v=0",
    "o=tandem 42 7 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 192.0.2.1",
    "t=0 0",
    "m=audio 40000 RTP/AVP 0 101",
    "a=rtpmap:101 telephone-event/8000",
    "a=sendrecv",
    "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:OURKEY",
    "m=video 40002 RTP/SAVPF 96",
    "a=rtpmap:96 VP8/90000",
    "a=crypto:1 AEAD_AES_128_GCM inline:K1",
    "a=crypto:2 AEAD_AES_256_GCM inline:K2",
    "m=application 40004 UDP/BFCP *",
    "a=floorctrl:c-s",
    NULL });

  /* Round trip: what tandem wrote reads back as it meant. */
  g_autoptr (TdSdp) back = parse_ok (out);
  g_assert_cmpstr (td_sdp_media_proto (back, 0), ==, "RTP/AVP");
  g_assert_cmpstr (td_sdp_media_proto (back, 1), ==, "RTP/SAVPF");
  g_assert_cmpstr (td_sdp_media_proto (back, 2), ==, "UDP/BFCP");
  g_assert_cmpstrv (td_sdp_media_crypto (back, 0), audio_lines);
  g_assert_cmpstrv (td_sdp_media_crypto (back, 1), video_lines);
  g_assert_null (td_sdp_media_crypto (back, 2)[0]);
  g_assert_cmpstrv (td_sdp_media_formats (back, 0), ((const char *const[]) { "0", "101", NULL }));

  /* A line break in a value or a proto with a blank would forge lines. */
  const char *const evil_lines[] = { "1 X inline:K\r\na=candidate:1 1 UDP 1 6.6.6.6 1 typ host", NULL };
  const char *const *const evil_crypto[] = { evil_lines, NULL, NULL };
  const char *const evil_protos[] = { "RTP/AVP 0\r\nc=IN IP4 6.6.6.6", NULL, NULL };
  rw.crypto = evil_crypto;
  rw.protos = NULL;
  g_test_expect_message ("tandem-sdp", G_LOG_LEVEL_CRITICAL, "*rewrite_is_valid*");
  g_assert_null (td_sdp_rewrite (sdp, &rw));
  g_test_assert_expected_messages ();
  rw.crypto = NULL;
  rw.protos = evil_protos;
  g_test_expect_message ("tandem-sdp", G_LOG_LEVEL_CRITICAL, "*rewrite_is_valid*");
  g_assert_null (td_sdp_rewrite (sdp, &rw));
  g_test_assert_expected_messages ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/sdp/parse/sipp", test_parse_sipp);
  g_test_add_func ("/sdp/parse/linphone", test_parse_linphone);
  g_test_add_func ("/sdp/parse/baresip", test_parse_baresip);
  g_test_add_func ("/sdp/parse/webrtc", test_parse_webrtc);
  g_test_add_func ("/sdp/parse/rejected-stream", test_parse_rejected_stream);
  g_test_add_func ("/sdp/parse/lf-only", test_parse_lf_only);
  g_test_add_func ("/sdp/parse/explicit-length", test_parse_explicit_length);
  g_test_add_func ("/sdp/parse/lenient", test_parse_lenient);
  g_test_add_func ("/sdp/parse/errors", test_parse_errors);
  g_test_add_func ("/sdp/parse/limits", test_parse_limits);
  g_test_add_func ("/sdp/hold", test_hold_variants);
  g_test_add_func ("/sdp/rewrite/sipp", test_rewrite_sipp);
  g_test_add_func ("/sdp/rewrite/linphone", test_rewrite_linphone);
  g_test_add_func ("/sdp/rewrite/baresip", test_rewrite_baresip);
  g_test_add_func ("/sdp/rewrite/webrtc", test_rewrite_webrtc);
  g_test_add_func ("/sdp/rewrite/rejected-stream", test_rewrite_rejected_stream);
  g_test_add_func ("/sdp/rewrite/hold", test_rewrite_hold);
  g_test_add_func ("/sdp/rewrite/direction", test_rewrite_direction);
  g_test_add_func ("/sdp/rewrite/minimal", test_rewrite_minimal);
  g_test_add_func ("/sdp/rewrite/duplicates", test_rewrite_duplicates);
  g_test_add_func ("/sdp/rewrite/bad-arguments", test_rewrite_bad_arguments);
  g_test_add_func ("/sdp/answer-matches-offer", test_answer_matches_offer);
  g_test_add_func ("/sdp/static-rtpmap", test_static_rtpmap);
  g_test_add_func ("/sdp/clock-rate", test_clock_rate);
  g_test_add_func ("/sdp/with-formats", test_with_formats);
  g_test_add_func ("/sdp/media-crypto", test_media_crypto);
  g_test_add_func ("/sdp/rewrite/crypto", test_rewrite_crypto);

  return g_test_run ();
}
