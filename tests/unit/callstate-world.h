/* The call state machine's test world (test-callstate.c, test-ringback.c):
 * calls run against a fake TdSignal that records every SIP operation instead
 * of sending it, and are driven through td_call_leg_event with messages
 * parsed from text by Sofia's own parser. Relay ports: 200 from
 * world_port_min on 127.0.0.1. */
#pragma once

#include <string.h>
#include <glib/gstdio.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag.h>

#include "td-call-private.h"
#include "td-plugins.h"
#include "td-tune.h"
#include "td-cdr.h"
#include "td-store.h"

typedef enum {
  OP_RESPOND, OP_INVITE, OP_UPDATE, OP_ACK, OP_BYE, OP_CANCEL, OP_PARAMS, OP_NOTIFY
} OpKind;

typedef struct {
  OpKind kind;
  nua_handle_t *nh;
  int status;
  TdSignalWith with;
  char *sdp;            /* SIPTAG_PAYLOAD_STR, or NULL */
  char *session_expires;
  char *retry_after;    /* SIPTAG_RETRY_AFTER_STR, or NULL */
  gboolean update_refresh_set, update_refresh;
  guint session_timer, min_se;   /* NUTAG_SESSION_TIMER / NUTAG_MIN_SE, 0 if absent */
} Op;

typedef struct {
  GPtrArray *ops;       /* Op*, in order */
  GHashTable *legs;     /* nua_handle_t* → TdLeg* (bound handles) */
  guintptr next_handle;
} Fake;

typedef struct {
  Fake fake;
  TdCallContext ctx;
  TdStore *store;
  TdStoreBatch *batch;
  char *dir;
  TdCall *call;
  TdLeg *a, *b;
  guint mark;           /* ops before this index are old news */
} World;

#define CONFIG_SIP "[sip]\ndomain = pbx.test\n"
#define CONFIG \
  "[store]\npath = unused.db\n" \
  "[user alice]\npassword = a\n[user bob]\npassword = b\n"
/* The first of the world's 200 relay ports, set by each test program that
 * shares this world (callstate 34000, ringback-state 34200, rooms 34400):
 * meson runs them at once. */
extern guint16 world_port_min;

typedef struct {
  msg_t *msg;
} Msg;

#define A_DIALOG "From: <sip:alice@pbx.test>;tag=at\r\nTo: <sip:bob@pbx.test>;tag=tt\r\n" \
                 "Call-ID: a-call@127.0.0.1\r\n"
#define B_DIALOG "From: <sip:alice@pbx.test>;tag=tb\r\nTo: <sip:bob@pbx.test>;tag=bt\r\n" \
                 "Call-ID: b-call@127.0.0.1\r\n"
#define VIA "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
#define ALLOW_ALL "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE\r\n"
#define ALLOW_NO_UPDATE "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n"
/* Extra [calls] and [sip] lines for the next world_init. */
extern const char *session_timer_config;
extern const char *sip_config;

/* A fresh context (config, relay, CDR store, the fake), and its end. */
void world_init (World *w);
void world_clear (World *w);
nua_handle_t *fake_handle (gpointer self, tagi_t const *tags);

/* An SDP from 127.0.0.1 on `port` offering/answering `formats` ("0 8"),
 * o= version `version`, direction line `dir` ("a=sendrecv"). */
char *sdp_text (guint16 port, const char *formats, guint version, const char *dir);
/* A SIP message parsed from its head (start line and headers) and SDP. */
void msg_clear (Msg *m);
const sip_t *parse (Msg *m, const char *head, const char *sdp);
/* A request or response on a leg, as nua reports it. */
void event (TdLeg *leg, nua_event_t e, int status, const char *head, const char *sdp);
/* The A-leg's endpoint sends a request (INVITE, UPDATE, ACK...) with `sdp`. */
void a_request (World *w, nua_event_t e, const char *method, guint cseq, const char *sdp);
/* A response on the B-leg to tandem's request `method`. */
void b_response (World *w, nua_event_t e, int status, const char *method, guint cseq,
                 const char *extra, const char *sdp);

/* The ops since the last mark (and move the mark); the one op of `kind` on
 * `leg` (asserted exactly one); how many there are. */
GPtrArray *new_ops (World *w);
Op *only_op (GPtrArray *ops, OpKind kind, TdLeg *leg);
guint count_ops (GPtrArray *ops, OpKind kind, TdLeg *leg);
/* Read an SDP's first port, its formats ("0 8"), its o= version. */
guint16 sdp_port (const char *text);
char *sdp_formats (const char *text);
guint64 sdp_version (const char *text);

/* alice calls bob (one contact) with `a_sdp` (NULL: a late offer); her
 * INVITE's Allow (and other headers) are `a_headers` (NULL: ALLOW_ALL). */
void start_call (World *w, const char *a_sdp, const char *a_headers);
/* An early-offer call, answered and bridged: A offers PCMU+PCMA on 40000,
 * B answers PCMA on 40100 with the headers b_headers. */
void bridged_call_with (World *w, const char *a_headers, const char *b_headers);
void bridged_call (World *w, const char *b_headers);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Msg, msg_clear)
