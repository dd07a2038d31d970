/* The call state machine's test world: see callstate-world.h. */
#include "callstate-world.h"

/* ---- the fake signal --------------------------------------------------------- */

static void
op_free (gpointer data)
{
  Op *op = data;
  g_free (op->sdp);
  g_free (op->session_expires);
  g_free (op->retry_after);
  g_free (op);
}

static Op *
record (Fake *f, OpKind kind, nua_handle_t *nh, tagi_t const *tags)
{
  Op *op = g_new0 (Op, 1);
  const char *sdp = NULL, *se = NULL, *retry_after = NULL;
  op->kind = kind;
  op->nh = nh;
  if (tags) {
    tagi_t const *t;
    tl_gets (tags, SIPTAG_PAYLOAD_STR_REF (sdp), SIPTAG_SESSION_EXPIRES_STR_REF (se),
             SIPTAG_RETRY_AFTER_STR_REF (retry_after), TAG_END ());
    if ((t = tl_find (tags, nutag_update_refresh))) {
      op->update_refresh_set = TRUE;
      op->update_refresh = t->t_value != 0;
    }
    if ((t = tl_find (tags, nutag_session_timer)))
      op->session_timer = (guint) t->t_value;
    if ((t = tl_find (tags, nutag_min_se)))
      op->min_se = (guint) t->t_value;
  }
  op->sdp = g_strdup (sdp);
  op->session_expires = g_strdup (se);
  op->retry_after = g_strdup (retry_after);
  g_ptr_array_add (f->ops, op);
  return op;
}

nua_handle_t *
fake_handle (gpointer self, tagi_t const *tags)
{
  Fake *f = self;
  return (nua_handle_t *) (f->next_handle += 16);
}

static void
fake_bind (gpointer self, nua_handle_t *nh, gpointer leg)
{
  Fake *f = self;
  if (leg)
    g_hash_table_insert (f->legs, nh, leg);
  else
    g_hash_table_remove (f->legs, nh);
}

static void
fake_destroy (gpointer self, nua_handle_t *nh)
{
}

static void
fake_set_params (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  record (self, OP_PARAMS, nh, tags);
}

static void
fake_respond (gpointer self, nua_handle_t *nh, TdSignalWith with, nua_saved_event_t *saved,
              int status, const char *phrase, tagi_t const *tags)
{
  Op *op = record (self, OP_RESPOND, nh, tags);
  op->status = status;
  op->with = with;
}

static void
fake_invite (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  record (self, OP_INVITE, nh, tags);
}

static void
fake_update (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  record (self, OP_UPDATE, nh, tags);
}

static void
fake_ack (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  record (self, OP_ACK, nh, tags);
}

static void
fake_bye (gpointer self, nua_handle_t *nh)
{
  record (self, OP_BYE, nh, NULL);
}

static void
fake_cancel (gpointer self, nua_handle_t *nh)
{
  record (self, OP_CANCEL, nh, NULL);
}

static void
fake_notify (gpointer self, nua_handle_t *nh, tagi_t const *tags)
{
  record (self, OP_NOTIFY, nh, tags);
}

/* Dialogs are named by their handle's address in these tests:
 * "0x1010;to-tag=t;from-tag=f". */
static gpointer
fake_by_replaces (gpointer self, const sip_replaces_t *replaces)
{
  Fake *f = self;
  guint64 nh = g_ascii_strtoull (replaces->rp_call_id, NULL, 16);
  return g_hash_table_lookup (f->legs, (gpointer) (guintptr) nh);
}

static void
fake_save_event (gpointer self, nua_saved_event_t *saved)
{
}

static void
fake_destroy_event (gpointer self, nua_saved_event_t *saved)
{
}

static const TdSignalOps fake_ops = {
  .handle = fake_handle, .bind = fake_bind, .destroy = fake_destroy,
  .set_params = fake_set_params, .respond = fake_respond, .invite = fake_invite,
  .update = fake_update, .ack = fake_ack, .bye = fake_bye, .cancel = fake_cancel,
  .save_event = fake_save_event, .destroy_event = fake_destroy_event,
  .notify = fake_notify, .by_replaces = fake_by_replaces,
};

/* ---- a test's world: config, relay, CDR store, the fake ---------------------------- */

const char *session_timer_config = "";   /* extra [calls] lines per test */
const char *sip_config = "";             /* extra [sip] lines per test */

void
world_init (World *w)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *media = g_strdup_printf ("[media]\naddress = 127.0.0.1\nports = %u-%u\n",
                                            world_port_min, world_port_min + 199);
  g_autofree char *text = g_strconcat (CONFIG_SIP, sip_config, media, CONFIG,
                                       session_timer_config, NULL);
  g_autofree char *db = NULL;

  memset (w, 0, sizeof *w);
  w->fake.ops = g_ptr_array_new_with_free_func (op_free);
  w->fake.legs = g_hash_table_new (NULL, NULL);
  w->fake.next_handle = 0x1000;
  w->dir = g_dir_make_tmp ("test-callstate-XXXXXX", &error);
  g_assert_no_error (error);
  db = g_build_filename (w->dir, "tandem.db", NULL);
  w->ctx.config = td_config_parse (text, "test.conf", w->dir, &error);
  g_assert_no_error (error);
  w->store = td_store_open (db, FALSE, &error);
  g_assert_no_error (error);
  w->batch = td_store_batch_new (w->store, 0);
  w->ctx.cdr = td_cdr_new (w->store, w->batch, &error);
  g_assert_no_error (error);
  w->ctx.relay = td_relay_new ("127.0.0.1", world_port_min, world_port_min + 199, &error);
  g_assert_no_error (error);
  td_call_context_init (&w->ctx);
  w->ctx.signal = (TdSignal) { .ops = &fake_ops, .self = &w->fake };
}

void
world_clear (World *w)
{
  g_autofree char *db = g_build_filename (w->dir, "tandem.db", NULL);
  td_calls_free_all (&w->ctx);
  td_call_context_clear (&w->ctx);
  td_relay_free (w->ctx.relay);
  td_store_batch_free (w->batch);
  td_cdr_free (w->ctx.cdr);
  td_store_free (w->store);
  td_config_unref (w->ctx.config);
  g_ptr_array_unref (w->fake.ops);
  g_hash_table_unref (w->fake.legs);
  g_unlink (db);
  g_autofree char *wal = g_strconcat (db, "-wal", NULL), *shm = g_strconcat (db, "-shm", NULL);
  g_unlink (wal);
  g_unlink (shm);
  g_rmdir (w->dir);
  g_free (w->dir);
}

/* ---- messages from text ------------------------------------------------------------ */

/* An SDP from 127.0.0.1 on `port` offering/answering `formats` ("0 8"),
 * o= version `version`, direction line `dir` ("a=sendrecv"). */
char *
sdp_text (guint16 port, const char *formats, guint version, const char *dir)
{
  g_autoptr (GString) s = g_string_new (NULL);
  g_auto (GStrv) fmts = g_strsplit (formats, " ", -1);
  g_string_append_printf (s, "v=0\r\no=phone 42 %u IN IP4 127.0.0.1\r\ns=-\r\n"
                          "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %u RTP/AVP %s\r\n",
                          version, port, formats);
  for (guint i = 0; fmts[i]; i++) {
    if (strcmp (fmts[i], "0") == 0)
      g_string_append (s, "a=rtpmap:0 PCMU/8000\r\n");
    else if (strcmp (fmts[i], "8") == 0)
      g_string_append (s, "a=rtpmap:8 PCMA/8000\r\n");
  }
  g_string_append_printf (s, "%s\r\n", dir);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

void
msg_clear (Msg *m)
{
  if (m->msg)
    msg_destroy (m->msg);
}

/* Parse a SIP message: start line and headers (lines joined with CRLF),
 * and an optional SDP body. */
const sip_t *
parse (Msg *m, const char *head, const char *sdp)
{
  g_autofree char *text = sdp
    ? g_strdup_printf ("%sContent-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s",
                       head, strlen (sdp), sdp)
    : g_strdup_printf ("%sContent-Length: 0\r\n\r\n", head);
  m->msg = msg_make (sip_default_mclass (), 0, text, strlen (text));
  g_assert_nonnull (m->msg);
  g_assert_nonnull (sip_object (m->msg));
  return sip_object (m->msg);
}

/* A request or response on a leg, as nua reports it. */
void
event (TdLeg *leg, nua_event_t e, int status, const char *head, const char *sdp)
{
  g_auto (Msg) m = { 0 };
  const sip_t *sip = head ? parse (&m, head, sdp) : NULL;
  td_call_leg_event (leg, e, status, sip ? (sip->sip_status ? sip->sip_status->st_phrase : NULL)
                                          : "internal", sip, NULL);
}

/* The A-leg's endpoint sends a request (INVITE, UPDATE, ACK...) with `sdp`. */
void
a_request (World *w, nua_event_t e, const char *method, guint cseq, const char *sdp)
{
  g_autofree char *head = g_strdup_printf ("%s sip:tandem@127.0.0.1 SIP/2.0\r\n" VIA A_DIALOG
                                           "CSeq: %u %s\r\nContact: <sip:alice@127.0.0.1:5070>\r\n"
                                           ALLOW_ALL, method, cseq, method);
  event (w->a, e, 0, head, sdp);
}

/* A response on the B-leg to tandem's request `method`. */
void
b_response (World *w, nua_event_t e, int status, const char *method, guint cseq,
            const char *extra, const char *sdp)
{
  g_autofree char *head = g_strdup_printf ("SIP/2.0 %d %s\r\n" VIA B_DIALOG "CSeq: %u %s\r\n"
                                           "Contact: <sip:bob@127.0.0.1:5080>\r\n%s",
                                           status, td_call_phrase (status), cseq, method,
                                           extra ? extra : "");
  event (w->b, e, status, head, sdp);
}

/* ---- reading what tandem did --------------------------------------------------------- */

/* The ops since the last mark, and move the mark. */
GPtrArray *
new_ops (World *w)
{
  GPtrArray *ops = g_ptr_array_new ();
  for (guint i = w->mark; i < w->fake.ops->len; i++)
    g_ptr_array_add (ops, g_ptr_array_index (w->fake.ops, i));
  w->mark = w->fake.ops->len;
  return ops;
}

/* The one op of `kind` on `leg` among `ops` (asserted exactly one). */
Op *
only_op (GPtrArray *ops, OpKind kind, TdLeg *leg)
{
  Op *found = NULL;
  for (guint i = 0; i < ops->len; i++) {
    Op *op = g_ptr_array_index (ops, i);
    if (op->kind == kind && op->nh == leg->nh) {
      g_assert_null (found);
      found = op;
    }
  }
  g_assert_nonnull (found);
  return found;
}

guint
count_ops (GPtrArray *ops, OpKind kind, TdLeg *leg)
{
  guint n = 0;
  for (guint i = 0; i < ops->len; i++) {
    Op *op = g_ptr_array_index (ops, i);
    n += op->kind == kind && (!leg || op->nh == leg->nh);
  }
  return n;
}

guint16
sdp_port (const char *text)
{
  g_autoptr (GError) error = NULL;
  TdSdp *sdp = td_sdp_parse (text, strlen (text), &error);
  guint16 port;
  g_assert_no_error (error);
  port = td_sdp_media_port (sdp, 0);
  td_sdp_free (sdp);
  return port;
}

/* "0 8" of "m=audio 40000 RTP/AVP 0 8". */
char *
sdp_formats (const char *text)
{
  const char *m = strstr (text, "RTP/AVP ");
  g_assert_nonnull (m);
  return g_strndup (m + 8, strcspn (m + 8, "\r\n"));
}

guint64
sdp_version (const char *text)
{
  const char *o = strstr (text, "o=");
  g_auto (GStrv) f = NULL;
  g_autofree char *line = NULL;
  g_assert_nonnull (o);
  line = g_strndup (o, strcspn (o, "\r\n"));
  f = g_strsplit (line, " ", -1);
  g_assert_cmpuint (g_strv_length (f), >=, 3);
  return g_ascii_strtoull (f[2], NULL, 10);
}

/* ---- setting up a call ----------------------------------------------------------------- */

/* alice calls bob (one contact) with `a_sdp` (NULL: a late offer); her
 * INVITE's Allow (and other headers) are `a_headers` (NULL: ALLOW_ALL). */
void
start_call (World *w, const char *a_sdp, const char *a_headers)
{
  g_auto (Msg) m = { 0 };
  g_autoptr (GError) error = NULL;
  TdUser alice = { .name = (char *) "alice" };
  TdBinding binding = { .aor = (char *) "bob", .contact = (char *) "sip:bob@127.0.0.1:5080",
                        .source = (char *) "udp/127.0.0.1:5080" };
  g_autoptr (GPtrArray) targets = g_ptr_array_new ();
  TdRoute route = { .callee = (char *) "bob", .targets = targets };
  g_autofree char *head = g_strconcat ("INVITE sip:bob@pbx.test SIP/2.0\r\n" VIA
                                       "From: <sip:alice@pbx.test>;tag=at\r\nTo: <sip:bob@pbx.test>\r\n"
                                       "Call-ID: a-call@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
                                       "Contact: <sip:alice@127.0.0.1:5070>\r\n",
                                       a_headers ? a_headers : ALLOW_ALL, NULL);
  const sip_t *sip = parse (&m, head, a_sdp);
  TdSdp *sdp = a_sdp ? td_sdp_parse (a_sdp, strlen (a_sdp), &error) : NULL;
  nua_handle_t *nh = fake_handle (&w->fake, NULL);
  GHashTableIter it;
  gpointer key, value;

  g_assert_no_error (error);
  g_ptr_array_add (targets, &binding);
  td_call_start (&w->ctx, nh, sip, &alice, &route, sdp);
  w->a = g_hash_table_lookup (w->fake.legs, nh);
  g_assert_nonnull (w->a);
  w->call = w->a->call;
  g_hash_table_iter_init (&it, w->fake.legs);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (value != w->a)
      w->b = value;
  g_assert_nonnull (w->b);
}

/* An early-offer call, answered and bridged: A offers PCMU+PCMA on 40000
 * (its INVITE's extra headers: a_headers), B answers PCMA on 40100 with the
 * headers b_headers (its Allow, Session-Expires...). */
void
bridged_call_with (World *w, const char *a_headers, const char *b_headers)
{
  g_autofree char *offer = sdp_text (40000, "0 8", 1, "a=sendrecv");
  g_autofree char *answer = sdp_text (40100, "8", 1, "a=sendrecv");
  g_autoptr (GPtrArray) ops = NULL;

  start_call (w, offer, a_headers);
  b_response (w, nua_r_invite, 200, "INVITE", 1, b_headers, answer);
  ops = new_ops (w);
  g_assert_cmpint (only_op (ops, OP_RESPOND, w->a)->status, ==, 200);
  g_assert_true (w->call->bridged == w->b);
}

void
bridged_call (World *w, const char *b_headers)
{
  bridged_call_with (w, NULL, b_headers);
}
