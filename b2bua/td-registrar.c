/* TdRegistrar: REGISTER handling on top of nua_respond(); a 200 is sent
 * once its bindings are stored (a saved nua event). */
#define G_LOG_DOMAIN "tandem-registrar"

#include "td-registrar.h"
#include "td-sipauth.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_string.h>
#include <string.h>

struct _TdRegistrar {
  TdConfig *config;
  TdAuth *auth;             /* borrowed from the daemon */
  TdLocation *location;     /* borrowed from the daemon */
};

/* A REGISTER whose 200 waits for its bindings to be stored. */
typedef struct {
  nua_saved_event_t saved[1];
  nua_handle_t *nh;
  char *aor;
  char *contacts;           /* the Contact of the 200; NULL: none bound */
} Answer;

/* What one REGISTER asks for, once checked. */
typedef struct {
  const char *aor;
  gboolean remove_all;      /* Contact: * with Expires: 0 */
  GPtrArray *changes;       /* TdBinding* */
} Request;

TdRegistrar *
td_registrar_new (TdConfig *config, TdAuth *auth, TdLocation *location)
{
  TdRegistrar *reg = g_new0 (TdRegistrar, 1);
  reg->config = td_config_ref (config);
  reg->auth = auth;
  reg->location = location;
  return reg;
}

void
td_registrar_free (TdRegistrar *reg)
{
  if (!reg)
    return;
  td_config_unref (reg->config);
  g_free (reg);
}

void
td_registrar_set_config (TdRegistrar *reg, TdConfig *config)
{
  td_config_ref (config);
  td_config_unref (reg->config);
  reg->config = config;
}

/* ---- answers ------------------------------------------------------------- */

/* Answer nua's current request: status, phrase, then optional tags.
 * nua keeps the phrase pointer: only static strings may be passed. */
#define respond(nua, nh, ...) \
  nua_respond ((nh), __VA_ARGS__, NUTAG_WITH_THIS (nua), TAG_END ())

/* "<sip:a@b>;expires=N" for every live binding, comma-separated. */
static char *
contact_list (TdRegistrar *reg, const char *aor, gint64 now)
{
  g_autoptr (GPtrArray) live = td_location_lookup (reg->location, aor, now);
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < live->len; i++) {
    const TdBinding *b = g_ptr_array_index (live, i);
    g_string_append_printf (s, "%s<%s>;expires=%" G_GINT64_FORMAT, s->len ? ", " : "",
                            b->contact, b->expires_at - now);
    if (b->q != 1000)
      g_string_append_printf (s, ";q=%u.%03u", b->q / 1000, b->q % 1000);
  }
  return g_string_free (s, s->len == 0);
}

/* ---- checks -------------------------------------------------------------- */

static gboolean
our_domain (TdRegistrar *reg, const url_t *url)
{
  return url->url_host && (su_casematch (url->url_host, reg->config->domain) ||
                           su_casematch (url->url_host, reg->config->listen_host));
}

/* The transport and address the request really came from (NAT: this, not the
 * Contact, is where the phone can be reached). */
static char *
source_of (nua_t *nua, const sip_t *sip)
{
  msg_t *msg = nua_current_request (nua);
  su_sockaddr_t const *su = msg ? msg_addr (msg) : NULL;
  const char *proto = sip->sip_via ? sip->sip_via->v_protocol : "SIP/2.0/UDP";
  const char *slash = strrchr (proto, '/');
  char host[SU_ADDRSIZE] = "";
  g_autofree char *transport = g_ascii_strdown (slash ? slash + 1 : proto, -1);

  if (!su)
    return g_strdup_printf ("%s/unknown", transport);
  su_inet_ntop (su->su_family, SU_ADDR (su), host, sizeof host);
  if (su->su_family == AF_INET6)
    return g_strdup_printf ("%s/[%s]:%u", transport, host, ntohs (su->su_port));
  return g_strdup_printf ("%s/%s:%u", transport, host, ntohs (su->su_port));
}

static guint
q_value (const sip_contact_t *m)
{
  double q;
  if (!m->m_q)
    return 1000;
  q = g_ascii_strtod (m->m_q, NULL);
  return (guint) (CLAMP (q, 0.0, 1.0) * 1000 + 0.5);
}

/* Expiry asked for one contact: its own parameter, else the Expires header,
 * else our default. FALSE when the parameter is not a number (RFC 3261
 * §25.1: delta-seconds are digits only; "soon" or "-5" must not turn into a
 * removal or the maximum). */
static gboolean
requested_expiry (TdRegistrar *reg, const sip_t *sip, const sip_contact_t *m, guint64 *out)
{
  if (m->m_expires) {
    const char *p = m->m_expires;
    if (!*p || strspn (p, "0123456789") != strlen (p) || strlen (p) > 10)
      return FALSE;
    *out = g_ascii_strtoull (p, NULL, 10);
  } else if (sip->sip_expires) {
    *out = sip->sip_expires->ex_delta;
  } else {
    *out = reg->config->default_expires;
  }
  return TRUE;
}

/* The contact as stored: host and scheme lowercased, since RFC 3261 §19.1.4
 * compares them case-insensitively (LOCALHOST and localhost are one binding). */
static char *
canonical_contact (su_home_t *home, const url_t *url)
{
  url_t *copy = url_hdup (home, url);
  char *host = su_strdup (home, copy->url_host);
  char *scheme = su_strdup (home, copy->url_scheme);

  for (char *c = host; c && *c; c++)
    *c = g_ascii_tolower (*c);
  for (char *c = scheme; c && *c; c++)
    *c = g_ascii_tolower (*c);
  copy->url_host = host;
  copy->url_scheme = scheme;
  return url_as_string (home, copy);
}

/* RFC 3261 §10.3 step 7: a REGISTER from the same Call-ID must carry a
 * higher CSeq than the one that last touched the binding (reordered UDP). */
static gboolean
in_order (TdRegistrar *reg, const char *aor, const char *contact, const sip_t *sip)
{
  const TdBinding *old = td_location_find (reg->location, aor, contact);
  return !old || strcmp (old->call_id, sip->sip_call_id->i_id) != 0 ||
         sip->sip_cseq->cs_seq > old->cseq;
}

/* Turn the Contact headers into binding changes; on a problem answer and
 * return FALSE. */
static gboolean
collect_changes (TdRegistrar *reg, nua_t *nua, nua_handle_t *nh, const sip_t *sip,
                 Request *rq, gint64 now)
{
  const TdConfig *c = reg->config;
  g_autofree char *source = source_of (nua, sip);
  su_home_t home[1] = { SU_HOME_INIT (home) };
  gboolean ok = TRUE;

  for (const sip_contact_t *m = sip->sip_contact; m && ok; m = m->m_next) {
    guint64 expiry = 0;
    TdBinding b = { 0 };

    if (!requested_expiry (reg, sip, m, &expiry)) {
      respond (nua, nh, 400, "Invalid Contact expires parameter");
      ok = FALSE;
      break;
    }
    if (m->m_url->url_type == url_any) {
      /* "*" is only allowed alone and with Expires: 0 (RFC 3261 §10.2.2). */
      if (sip->sip_contact->m_next || !sip->sip_expires || sip->sip_expires->ex_delta != 0) {
        respond (nua, nh, 400, "Contact * needs Expires: 0 and no other contact");
        ok = FALSE;
      }
      rq->remove_all = TRUE;
      continue;
    }
    if (expiry > 0 && expiry < c->min_expires) {
      g_autofree char *min = g_strdup_printf ("%u", c->min_expires);
      respond (nua, nh, SIP_423_INTERVAL_TOO_BRIEF, SIPTAG_MIN_EXPIRES_STR (min));
      ok = FALSE;
      break;
    }
    b.aor = (char *) rq->aor;
    b.contact = canonical_contact (home, m->m_url);
    if (!in_order (reg, rq->aor, b.contact, sip)) {
      respond (nua, nh, 500, "Out of order REGISTER");
      ok = FALSE;
      break;
    }
    b.call_id = (char *) sip->sip_call_id->i_id;
    b.cseq = sip->sip_cseq->cs_seq;
    b.expires_at = expiry ? now + MIN (expiry, (guint64) c->max_expires) : 0;
    b.q = q_value (m);
    b.source = source;
    b.user_agent = sip->sip_user_agent ? (char *) sip->sip_user_agent->g_string : NULL;
    b.registered_at = now;
    g_ptr_array_add (rq->changes, td_binding_copy (&b));
  }
  su_home_deinit (home);
  return ok;
}

/* Whether the REGISTER adds a binding and the AOR would then hold more than
 * [registrar] max-contacts. Refreshes and removals always pass, even when a
 * reload lowered the limit below what is bound. */
static gboolean
exceeds_max_contacts (TdRegistrar *reg, const Request *rq, gint64 now)
{
  g_autoptr (GPtrArray) live = td_location_lookup (reg->location, rq->aor, now);
  g_autoptr (GHashTable) bound = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean adds = FALSE;

  for (guint i = 0; !rq->remove_all && i < live->len; i++)
    g_hash_table_add (bound, ((TdBinding *) g_ptr_array_index (live, i))->contact);
  for (guint i = 0; i < rq->changes->len; i++) {
    TdBinding *b = g_ptr_array_index (rq->changes, i);
    if (b->expires_at == 0)
      g_hash_table_remove (bound, b->contact);
    else if (g_hash_table_add (bound, b->contact))
      adds = TRUE;
  }
  return adds && g_hash_table_size (bound) > reg->config->max_contacts;
}

/* ---- the request --------------------------------------------------------- */

/* The bindings are stored (or not): now the phone hears it. */
static void
stored (gpointer data, const GError *error)
{
  Answer *a = data;

  if (error) {
    /* The binding is not stored: do not pretend it is. */
    g_warning ("REGISTER %s: %s", a->aor, error->message);
    nua_respond (a->nh, SIP_500_INTERNAL_SERVER_ERROR, NUTAG_WITH_SAVED (a->saved), TAG_END ());
  } else {
    nua_respond (a->nh, SIP_200_OK, TAG_IF (a->contacts, SIPTAG_CONTACT_STR (a->contacts)),
                 NUTAG_WITH_SAVED (a->saved), TAG_END ());
  }
  nua_destroy_event (a->saved);
  nua_handle_destroy (a->nh);
  g_free (a->aor);
  g_free (a->contacts);
  g_free (a);
}

/* TRUE when the answer waits for the store (and owns `nh` until then). */
static gboolean
handle (TdRegistrar *reg, nua_t *nua, nua_handle_t *nh, const sip_t *sip)
{
  g_autoptr (GPtrArray) changes = g_ptr_array_new_with_free_func ((GDestroyNotify) td_binding_free);
  g_autofree char *contacts = NULL;
  const TdUser *user;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  Request rq = { .changes = changes };
  Answer *answer;

  if (!sip || !sip->sip_to || !sip->sip_call_id || !sip->sip_cseq || !sip->sip_request) {
    respond (nua, nh, SIP_400_BAD_REQUEST);
    return FALSE;
  }
  if (!our_domain (reg, sip->sip_to->a_url) || !sip->sip_to->a_url->url_user) {
    respond (nua, nh, 404, "Not Found (not our domain)");
    return FALSE;
  }
  if (!(user = td_sipauth_check (reg->auth, reg->config, TD_SIPAUTH_WWW, nua, nh, sip)))
    return FALSE;
  rq.aor = sip->sip_to->a_url->url_user;
  if (strcmp (rq.aor, user->name) != 0) {
    /* A user may only bind its own address-of-record. */
    g_info ("REGISTER: user %s may not register %s", user->name, rq.aor);
    respond (nua, nh, 403, "Forbidden (not your address)");
    return FALSE;
  }
  if (!collect_changes (reg, nua, nh, sip, &rq, now))
    return FALSE;
  if (exceeds_max_contacts (reg, &rq, now)) {
    /* 403 as Asterisk answers, not Kamailio's 503: nothing is wrong with
     * the server, and a 503 would send the phone to another server or make
     * it retry a request that fails the same way until a binding goes. */
    g_info ("REGISTER %s: refused, more than %u contacts", rq.aor, reg->config->max_contacts);
    respond (nua, nh, 403, "Forbidden (too many contacts)");
    return FALSE;
  }
  if (!rq.remove_all && changes->len == 0) {
    /* A query: the bindings as they are. */
    contacts = contact_list (reg, rq.aor, now);
    respond (nua, nh, SIP_200_OK, TAG_IF (contacts, SIPTAG_CONTACT_STR (contacts)));
    return FALSE;
  }
  answer = g_new0 (Answer, 1);
  nua_save_event (nua, answer->saved);
  answer->nh = nh;
  answer->aor = g_strdup (rq.aor);
  /* Memory changes at once, `stored` runs from a later batch. */
  td_location_update (reg->location, rq.aor, rq.remove_all, changes, stored, answer);
  answer->contacts = contact_list (reg, rq.aor, now);
  g_info ("REGISTER %s: %u contact change(s)%s; now bound: %s", rq.aor, changes->len,
          rq.remove_all ? " after removing all" : "",
          answer->contacts ? answer->contacts : "none");
  return TRUE;
}

void
td_registrar_handle (TdRegistrar *reg, nua_t *nua, nua_handle_t *nh, const sip_t *sip)
{
  if (!handle (reg, nua, nh, sip))
    nua_handle_destroy (nh);
}
