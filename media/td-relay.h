/* TdRelay: the RTP/RTCP relay, the media plane of every call.
 *
 * Each leg's media stream gets a TdRelayPort: an even RTP port and the next
 * odd port for RTCP, bound on the relay's address from a configured range.
 * Connected ports copy packets received on one out of the other, to that
 * port's remote (learned by symmetric latching, or from SDP until then).
 *
 * One outgoing RTP context per port: whatever leaves a port's RTP socket
 * (the peer's forwarded RTP, or a tune played from the relay) carries the
 * port's own SSRC, a sequence number that continues by one per packet and a
 * timestamp that follows real time, so a receiver never sees its stream go
 * backwards when the source changes (ringback -> callee, transfer, hold
 * music). See /work/shared/notes/media.md, "One outgoing RTP context".
 *
 * Threading contract:
 *  - Every function here is called from ONE thread (the SIP main thread).
 *  - td_relay_new() starts a media thread (named "td-relay") that owns all
 *    packet state: it is the only reader of the sockets. Calls that change a
 *    port (set_remote, connect, disconnect, set_forward, the outgoing-context
 *    options, play, stop, port_free) queue a command and return at once; the
 *    media thread applies commands in order between packet batches, so the
 *    packet path takes no lock. A packet that arrives while a command is
 *    still queued is handled under the old state (microseconds);
 *    td_relay_sync() closes that window when needed. Tunes play from the
 *    port's media thread too, on a 20 ms timer of that thread.
 *  - td_relay_new_full() may start several media threads ("td-relay-N"):
 *    ports are sharded between them, connected ports always share one.
 *    td_relay_connect() of ports on two threads moves one of them, without
 *    waiting: the old thread hands the port over to the new one, which
 *    applies the port's later commands only once it has it, in the order
 *    they were issued. No call here waits for a media thread, except
 *    td_relay_sync() and td_relay_free().
 *  - td_relay_port_free() is asynchronous: the media thread closes the
 *    sockets and frees the port; its port numbers go back to the pool once
 *    that is done. The caller must not touch the port after the call.
 *  - td_relay_sync() waits until every command queued so far has taken
 *    effect, migrations included (tests; td_relay_free). Not for the SIP
 *    path.
 *  - What the media threads see comes back as events (first packet,
 *    latched, idle, active: see "events" below), delivered on the main
 *    context, so that no caller needs to poll.
 *
 * `media/` knows nothing of SIP. */
#pragma once

#include <glib.h>

#include "td-srtp-suite.h"
#include "td-tune.h"

G_BEGIN_DECLS

#define TD_RELAY_ERROR (td_relay_error_quark ())
GQuark td_relay_error_quark (void);

typedef enum {
  TD_RELAY_ERROR_ADDRESS,     /* the relay address is not an IP literal, or cannot be bound */
  TD_RELAY_ERROR_RANGE,       /* the port range holds no even/odd pair */
  TD_RELAY_ERROR_EXHAUSTED,   /* every port pair of the range is in use */
  TD_RELAY_ERROR_SYSTEM,      /* socket(), epoll, eventfd or the thread failed */
} TdRelayError;

typedef struct _TdRelay TdRelay;
typedef struct _TdRelayPort TdRelayPort;   /* one RTP+RTCP socket pair = one media stream of one leg */

typedef struct {
  guint64 rx_packets;        /* accepted: plausible RTP/RTCP from the (latched) remote, on both sockets */
  guint64 tx_packets;        /* sent out of this port to its remote, forwarded or generated */
  guint64 dropped_foreign;   /* from a source other than the latched one (RTP Bleed), or
                              * from a stranger while learning */
  guint64 dropped_other;     /* not RTP/RTCP: wrong version, too short, truncated */
  gint64 last_rx_us;         /* g_get_monotonic_time() of the last accepted packet, 0 = none */
  guint64 tx_errors;         /* sends the kernel refused (send buffer full, unreachable) */
  guint64 tx_generated;      /* tune packets sent (also counted in tx_packets) */
  guint64 srtp_auth_failed;  /* SRTP port, dropped: bad tag, or not SRTP/SRTCP (plain RTP) */
  guint64 srtp_replayed;     /* SRTP port, dropped: replayed, or too old for the replay window */
  guint64 srtp_tx_failed;    /* SRTP port: srtp_protect refused (or no room for the tag): not sent */
} TdRelayStats;

/* Starts the media thread. `address` is an IPv4 or IPv6 literal
 * ("127.0.0.1", "0.0.0.0", "::1", "::"); ports are taken from
 * [port_min, port_max], RTP on even ports. Keep the range below
 * net.ipv4.ip_local_port_range, or ephemeral sockets will steal ports. */
TdRelay *td_relay_new (const char *address, guint16 port_min, guint16 port_max, GError **error);
/* The same with `n_threads` media threads (0 = one per CPU); td_relay_new()
 * is n_threads = 1. */
TdRelay *td_relay_new_full (const char *address, guint16 port_min, guint16 port_max,
                            guint n_threads, GError **error);
guint td_relay_n_threads (TdRelay *relay);
/* Deferred wake-ups: the main thread's commands wake the media threads once
 * per pass of the GMainContext the relay was made on (before it polls), not
 * once per command — a call's set-up issues a dozen over a few SIP messages,
 * and each wake-up of a thread on another core costs more than the command.
 * Only for a relay whose context's loop runs; td_relay_free and the calls
 * that wait for the media threads wake them at once either way. */
void td_relay_set_defer_signals (TdRelay *relay, gboolean defer);
/* Stops the thread(s) and closes everything, including ports not yet freed
 * (their pointers become invalid). */
void td_relay_free (TdRelay *relay);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdRelay, td_relay_free)

/* Latching: which source a port accepts packets from, and sends to.
 * Each socket (RTP, RTCP) learns on its own.
 *  - PREFER_SDP (the default): the address:port the SDP announced is
 *    preferred. While learning, a packet from it always wins and latches at
 *    once, for good. A packet from any other source is dropped (not
 *    forwarded, never a send target) unless it may be the phone behind NAT
 *    (its packets come from its router's address), which is learned after
 *    `nat_delay_ms` of silence from the announced address:
 *     - a source on the host the endpoint's SIP comes from
 *       (td_relay_port_set_signalling_host): after nat_delay_ms counted
 *       from its first packet — a NATed phone's RTP leaves by the router its
 *       SIP leaves by, which a stranger elsewhere cannot fake and receive —
 *       or at once while nothing has been announced on that socket (no
 *       set_remote yet: a callee that rang without SDP, whose RTP may come
 *       just before the 200 that brings its SDP); when the SDP does come,
 *       that latch stays, provisional for a new window (a NATed callee's
 *       SDP names a private address that never speaks: no NAT delay, no
 *       clipped words after the 200), and the announced address takes over
 *       as soon as it speaks;
 *     - any source, once the relay has been sending RTP to the announced
 *       address for nat_delay_ms without a word back (an endpoint whose
 *       media and signalling take different routes), but not while packets
 *       from the signalling host arrive (one came within nat_delay_ms): a
 *       stranger spraying since before the call would win the race. With
 *       nothing announced (no SDP yet), counted from the first packet. This
 *       clock starts at the relay's own first packet, not at a stranger's: a
 *       port exists from the INVITE on, and a stranger spraying the range
 *       while the phone still rings must not be learned before the phone
 *       can speak.
 *    RTCP never learns "any source": only the host RTP has latched to (the
 *    signalling host while RTP has latched nobody), at once, any port —
 *    phones send their first RTCP seconds into the call, long after a
 *    stranger spraying the RTCP port would have been learned by a clock.
 *    A source learned so is provisional for `window_ms`: a better one takes
 *    over (the announced address over all, the trusted host over any other
 *    source); afterwards only it counts.
 *  - SDP_ONLY: only the announced address, ever (no NAT traversal).
 *  - FIRST_PACKET: the first plausible packet's source latches, from
 *    anywhere (the relay before issue 8; RTP hijack at call start). */
typedef enum {
  TD_RELAY_LATCH_PREFER_SDP,
  TD_RELAY_LATCH_SDP_ONLY,
  TD_RELAY_LATCH_FIRST_PACKET,
} TdRelayLatching;

#define TD_RELAY_NAT_DELAY_MS 500
#define TD_RELAY_LEARN_WINDOW_MS 3000

/* "prefer-sdp", "sdp-only", "first-packet" (the [media] latching values). */
gboolean td_relay_latching_from_string (const char *name, TdRelayLatching *out);
const char *td_relay_latching_name (TdRelayLatching mode);
/* For ports allocated from now on (main thread). */
void td_relay_set_latching (TdRelay *relay, TdRelayLatching mode, guint nat_delay_ms,
                            guint window_ms);

/* Binds an even RTP port and the next odd one for RTCP, skipping ports in
 * use (here or by other processes). The pair is chosen at random (a random
 * start and a random step through the range), so that nobody can predict
 * the next call's ports; a freshly freed pair cools down and is reused only
 * when no other pair is free. Fails with TD_RELAY_ERROR_EXHAUSTED when no
 * pair is free. The new port is unconnected, forwarding, with no remote and
 * latching armed. */
TdRelayPort *td_relay_port_alloc (TdRelay *relay, GError **error);
guint16 td_relay_port_number (const TdRelayPort *port);   /* the RTP port; RTCP is +1 */

/* The address:port the SDP announced: sent to until latched. Re-arms
 * latching on both sockets only when the announced address differs from the
 * last one announced (a re-INVITE that moves the media); an unchanged one
 * (183 then 200, a session refresh, a resume) keeps what was learned, and
 * so does the first one after a source learned with nothing announced (see
 * PREFER_SDP). `ip`
 * must be an IP literal (resolve SDP host names first; anything else is
 * logged and treated as "0.0.0.0"). ip "0.0.0.0" (or "::", or rtp_port 0):
 * nothing announced (SDP hold, a rejected stream): a latched socket keeps
 * its source, one still learning sends nowhere until it latches.
 * rtcp_port 0 = rtp_port + 1. An IPv4 remote on an IPv6 relay is sent to as
 * a v4-mapped address. */
void td_relay_port_set_remote (TdRelayPort *port, const char *ip, guint16 rtp_port, guint16 rtcp_port);
/* The IP literal the endpoint's SIP messages come from (its NAT router's
 * public address), for PREFER_SDP's NAT learning; NULL or unparsable: none. */
void td_relay_port_set_signalling_host (TdRelayPort *port, const char *ip);
/* The stream multiplexes RTCP on the RTP port (RFC 5761, agreed by offer
 * and answer): the RTCP socket is closed (its port number stays reserved
 * with the pair). Irreversible for this port. */
void td_relay_port_drop_rtcp (TdRelayPort *port);
/* Packets in on a go out of b, and vice versa (RTP to RTP, RTCP to RTCP).
 * Either port's previous peer is disconnected. a == b echoes back. Packets
 * that reach an unconnected port still latch and count, and are dropped. */
void td_relay_connect (TdRelayPort *a, TdRelayPort *b);
void td_relay_disconnect (TdRelayPort *port);   /* and its peer from it */
/* FALSE: packets received on this port are dropped (hold / mute); they still
 * latch and count as activity (rx_packets, last_rx_us). */
void td_relay_port_set_forward (TdRelayPort *port, gboolean forward);
/* SRTP on this port (RFC 3711; keys from SDES, RFC 4568): every packet that arrives (RTP and
 * RTCP, multiplexed or not) is authenticated and decrypted with `rx_key` (the endpoint's key),
 * everything that leaves (forwarded, tunes, mixes) is encrypted under `tx_key` (tandem's key
 * for this leg), under the port's one outgoing RTP context. suite NONE: plain RTP (the default;
 * keys ignored, may be NULL). Keys (td_srtp_suite_key_len bytes) are copied, then wiped from the
 * command once the media thread has them. Given the same suite and keys again: nothing changes
 * (contexts, ROC and replay windows are kept). A new rx key (the endpoint re-keyed in a
 * re-INVITE): packets under the old key are still accepted until the first one under the new
 * key authenticates. A new tx key: the outgoing stream goes on (its ROC kept).
 * Packets are authenticated before latching looks at them: a packet that fails
 * (srtp_auth_failed, srtp_replayed) neither latches nor counts as activity, and is never
 * relayed; nor is one srtp_protect refuses (srtp_tx_failed). A new suite starts fresh
 * sessions. The sessions are made on the media thread (~84 us each with Debian's NSS build). */
void td_relay_port_set_srtp (TdRelayPort *port, TdSrtpSuite suite, const guint8 *rx_key,
                             const guint8 *tx_key);
/* Returns the ports to the pool once the media thread has let go (see top);
 * a tune still playing is stopped and its reference dropped. */
void td_relay_port_free (TdRelayPort *port);

/* The outgoing context. By default the port keeps the SSRC of the first
 * stream sent out of it (a random one if a tune comes first); at each source
 * change (forwarded stream <-> tune, a new SSRC on the forwarded stream, a
 * new peer) the first packet of the new source gets seq = last + 1,
 * timestamp = last + the real time elapsed since the last packet sent x the
 * clock rate, and the marker bit. Within one source the offsets stay fixed,
 * so its gaps and jitter pass through. RTCP is forwarded unchanged.
 *
 * RTP clock rate of the port's forwarded stream (the SDP's rtpmap), for the
 * timestamp advance at a switch to it; 8000 (G.711, G.722) until set. A
 * switch to a tune advances at the tune codec's rate (td_codec_clock_rate). */
void td_relay_port_set_clock_rate (TdRelayPort *port, guint32 rate);
/* TRUE: a fresh random SSRC at every switch (still with the marker and a
 * continued sequence), for endpoints that want that rather than one SSRC
 * for the whole call. Default FALSE: a new SSRC is RFC 3550-clean but broke
 * browsers behind Asterisk (see the notes). */
void td_relay_port_set_new_ssrc_on_switch (TdRelayPort *port, gboolean new_ssrc);

/* Send `tune` out of `port` to its remote (latched or SDP) as RTP in
 * `codec` with payload type `pt` (the number the SDP gave that codec: 0, 8,
 * 9, or a dynamic one), one 20 ms frame every 20 ms, looping, the timestamp
 * advancing td_codec_frame_ticks() a frame, under the port's outgoing
 * context (a switch to the tune advances the timestamp at the codec's
 * clock rate). While playing, packets forwarded to this port from its peer
 * (RTP and RTCP) are dropped (they are still received and counted on the
 * peer). Takes a ref on the tune. Starting a new tune replaces the old one
 * (a source switch). With no remote yet (no SDP address, not latched) the
 * tune runs silently: its clock advances, nothing is sent until the port
 * latches. A codec the tune lacks (td_tune_has_codec) is refused with a
 * warning: nothing changes. */
void td_relay_port_play (TdRelayPort *port, TdTune *tune, TdCodec codec, guint8 pt);
/* Ringback: like td_relay_port_play, but the first RTP packet the port's
 * connected peer forwards to it (one that passes the peer's latching, with
 * the peer's forward flag on) ends the tune on the media thread, with no
 * round trip through the main thread: that packet goes out at once as the
 * new source's first (marker, seq = last + 1, timestamp advanced by the real
 * time elapsed at the port's clock rate, td_relay_port_set_clock_rate, which
 * may be set after this call; the same SSRC unless new-SSRC-on-switch), and
 * the port forwards from then on. RTCP from the peer stays dropped while the
 * tune plays. The owner hears of it as TD_RELAY_EVENT_TUNE_ENDED. */
void td_relay_port_play_until_peer (TdRelayPort *port, TdTune *tune, TdCodec codec, guint8 pt);
/* Stop playing; forwarding resumes (a source switch). No-op if not playing
 * (also after the peer ended a play_until_peer tune). Never TUNE_ENDED. */
void td_relay_port_stop (TdRelayPort *port);
/* The main thread's view: TRUE from play until stop, or until the delivery
 * of the TUNE_ENDED that the peer's first packet caused (delivered whether
 * or not the port has an event func). */
gboolean td_relay_port_is_playing (TdRelayPort *port);
/* May be slightly stale: counters are written by the media thread. */
void td_relay_port_get_stats (TdRelayPort *port, TdRelayStats *out);

/* ---- mixes: rooms of N ports, each hearing the others (td-relay-mix.c) ----
 *
 * A mix runs on one media thread, on its playout timer (one phase of its
 * 5 ms ticks): every 20 ms it takes one frame from each member's jitter
 * buffer (td-jitter.h), decodes it, sums them and sends each member the
 * sum minus its own part, encoded in its codec (td-transcode.h). It mixes
 * at 16 kHz while a member is wideband (G.722, Opus), at 8 kHz otherwise.
 * Nothing waits for a member's packets: a late one is concealed (Opus PLC,
 * else the last frame fading) and then dropped. */
typedef struct _TdRelayMix TdRelayMix;
/* A room's mix on one media thread: each member port hears the sum of the
 * other members (N-1), decoded from and re-encoded into its own codec.
 * The process's first call loads GStreamer's G.722 and Opus plugins (~0.1 s
 * here), so that no media thread does at a join. */
TdRelayMix *td_relay_mix_new (TdRelay *relay);
/* Asynchronous like port_free; members still in it leave first (as leave_mix). */
void td_relay_mix_free (TdRelayMix *mix);
/* `port` joins `mix` (or changes codec/pt/hears when already in it): its received RTP
 * of payload type `pt` is jitter-buffered, decoded as `codec` and mixed instead of being
 * forwarded to its peer (other PTs: telephone-event, CN... are dropped; RTCP is not
 * forwarded); out of it goes the N-1 mix encoded in `codec` under `pt`, 20 ms a packet,
 * under the port's outgoing RTP context (a source switch: marker, seq +1, timestamp
 * advanced by real time, same SSRC), unless `hears` is FALSE (its SDP does not receive:
 * nothing is sent to it). A port whose forward flag is off (td_relay_port_set_forward)
 * still sends to the mix nothing. The port is disconnected from its peer while in the mix.
 * Ports of one mix share a media thread (join migrates the port like td_relay_connect).
 * A tune played on a member (td_relay_port_play) is sent instead of its mix while it
 * plays. td_relay_connect() of a member makes it leave its mix first; freeing a member
 * port makes it leave. A codec this GStreamer cannot decode or encode (no avdec_g722...)
 * joins the port mute and deaf, with a warning. */
void td_relay_port_join_mix (TdRelayPort *port, TdRelayMix *mix, TdCodec codec, guint8 pt,
                             gboolean hears);
/* Back to plain forwarding, unconnected (connect it again); no-op if in no mix. The next
 * forwarded packet is a source switch under the same outgoing context. */
void td_relay_port_leave_mix (TdRelayPort *port);
/* members: ports in the mix; frames: 20 ms mix frames made; late: member packets dropped
 * as too late for their frame (or duplicates); concealed: member frames concealed (lost
 * or late); overflows: member frames skipped because too many waited (a burst, a fast
 * clock); max_gap_us: the longest time between two frames of the mix (its own stalls). */
typedef struct { guint members; guint64 frames, late, concealed, overflows; gint64 max_gap_us; } TdRelayMixStats;
void td_relay_mix_get_stats (TdRelayMix *mix, TdRelayMixStats *out);   /* may be slightly stale */

/* ---- events: what the media threads see, told on the main thread ----
 *
 * A port with an event func reports what happens to its media, for owners
 * that would otherwise poll td_relay_port_get_stats() (RTP inactivity, the
 * first packet, where the endpoint turned out to be). Events reach the func
 * on the GMainContext that was thread-default when td_relay_new*() ran (the
 * SIP thread's), from one source of that context, never on a media thread;
 * a port's events come in the order its media thread saw them. The media
 * threads queue them and wake that context once per loop iteration at most:
 * nothing is posted per packet, and a port without a func costs nothing.
 *
 * No event reaches the func once td_relay_port_free() or a NULL
 * td_relay_port_set_event_func() has returned (events still in flight for
 * that port are dropped). The func may free ports (its own too) and change
 * event funcs; it must not free the relay. */
typedef enum {
  TD_RELAY_EVENT_FIRST_PACKET,   /* the first packet accepted on the port's RTP socket (RTP,
                                  * or RTCP multiplexed on it; not a stranger's that latching
                                  * rejects); once per port */
  TD_RELAY_EVENT_LATCHED,        /* the RTP socket's latching settled on `address`: at
                                  * once for the announced address (or FIRST_PACKET
                                  * latching), after the learning window for a NAT-learned
                                  * source (told with its first packet after the window);
                                  * again after a set_remote that re-armed latching */
  TD_RELAY_EVENT_IDLE,           /* no packet accepted (RTP or RTCP, as rx_packets) for the
                                  * relay's idle timeout, counted from the port's allocation
                                  * if none came; once, until ACTIVE */
  TD_RELAY_EVENT_ACTIVE,         /* a packet accepted again after IDLE */
  TD_RELAY_EVENT_TUNE_ENDED,     /* the peer's first packet ended a tune played with
                                  * td_relay_port_play_until_peer (not told for a stop, nor
                                  * for a tune stopped or replaced before the delivery);
                                  * time_us: when that packet was forwarded */
} TdRelayEventKind;

#define TD_RELAY_ADDRESS_LEN 46  /* INET6_ADDRSTRLEN */

typedef struct {
  TdRelayEventKind kind;
  gint64 time_us;                       /* g_get_monotonic_time() when the media thread saw it */
  char address[TD_RELAY_ADDRESS_LEN];   /* LATCHED: the source's IP literal ("::ffff:a.b.c.d"
                                         * for IPv4 on an IPv6 relay); "" otherwise */
  guint16 address_port;                 /* LATCHED: its UDP port; 0 otherwise */
} TdRelayEvent;

typedef void (*TdRelayEventFunc) (TdRelayPort *port, const TdRelayEvent *event,
                                  gpointer user_data);

/* Main thread. `user_data` is the port's owner (a leg, say); func NULL stops
 * the events. Like the other port calls it reaches the media thread a
 * moment later, and what that thread handled before is not told: set it
 * right after td_relay_port_alloc(), before anyone knows the port's number,
 * to miss nothing. */
void td_relay_port_set_event_func (TdRelayPort *port, TdRelayEventFunc func, gpointer user_data);
/* IDLE after `ms` without a packet; 0 (the default) = never. For every port,
 * at once (a port silent for longer already reports IDLE at the next check).
 * Each media thread checks its watched ports from the time of the last
 * packet that it keeps anyway, a slice of them every TD_RELAY_IDLE_CHECK_MS,
 * each port once per MAX (TD_RELAY_IDLE_CHECK_MS, `ms` / 16): IDLE comes
 * between `ms` and `ms` + that after the last packet (60 s: within 3.75 s
 * more), costs nothing per packet, and the check of thousands of held
 * calls no longer walks them all four times a second. */
void td_relay_set_idle_timeout (TdRelay *relay, guint ms);
#define TD_RELAY_IDLE_CHECK_MS 250
/* The main thread's view: TRUE from the delivery of IDLE until that of the
 * next ACTIVE (FALSE while the port has no event func). */
gboolean td_relay_port_is_idle (TdRelayPort *port);

/* Port pairs in use: allocated and not yet let go of by the media thread (a
 * freed port counts until the media thread has closed it, which
 * td_relay_sync() waits for). */
guint td_relay_port_count (TdRelay *relay);
/* Pairs not in use whose sockets the relay keeps open for the next port on
 * them, deaf until then (td-relay-pool.c). td_relay_free() closes them. */
guint td_relay_parked_count (TdRelay *relay);
/* Waits until the media threads have applied every command queued so far
 * (and completed the migrations they imply). */
void td_relay_sync (TdRelay *relay);

/* Tests only (tandem never calls it): the port's media thread blocks, as a
 * stalled thread would, once it reaches this command, until `fd` is
 * readable. Shows that nothing on the calling side waits for that thread. */
void td_relay_port_test_stall (TdRelayPort *port, int fd);

G_END_DECLS
