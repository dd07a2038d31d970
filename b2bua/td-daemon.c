/* TdDaemon: wires the SIP stack, the store and the services together. */
#define G_LOG_DOMAIN "tandem"

#include "td-daemon.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/tport_tag.h>

#include "td-auth.h"
#include "td-call.h"
#include "td-cdr.h"
#include "td-control.h"
#include "td-location.h"
#include "td-log.h"
#include "td-numeric-only.h"
#include "td-overload.h"
#include "td-plugins.h"
#include "td-registrar.h"
#include "td-tls.h"
#include "td-siplog.h"
#include "td-store.h"
#include "td-relay.h"

/* Large socket buffers: with Sofia's ~200 KiB default a 100 ms scheduling
 * hiccup at 1,000+ calls/s drops datagrams and retransmissions snowball. */
#define UDP_BUFFER_BYTES (4 * 1024 * 1024)
#define HOUSEKEEPING_SECONDS 5
#define SHUTDOWN_GRACE_SECONDS 5

struct _TdDaemon {
  char *config_path;
  TdConfig *config;
  TdLogSink log;              /* read by td_log_writer, from any thread */
  GMainLoop *loop;

  TdStore *store;
  TdStoreBatch *batch;        /* the store's writes */
  TdLocation *location;
  TdAuth *auth;
  TdRegistrar *registrar;
  TdSipLog *siplog;
  TdRelay *relay;
  TdCdr *cdr;
  TdPluginHost *plugins;
  TdCallContext calls;
  TdControl *control;         /* the operator's socket, or NULL */

  su_root_t *root;
  const GSourceFuncs *sofia_funcs;   /* Sofia's own, wrapped by sofia_source_funcs */
  GSourceFuncs sofia_source_funcs;
  nua_t *nua;
  TdOverload *overload;       /* watches the SIP socket's backlog */

  guint signal_sources[3];
  guint housekeeping;
  guint shutdown_timeout;
  gboolean shutting_down;
  gboolean nua_down;          /* nua_shutdown completed: nua_destroy is allowed */
};

/* ---- Sofia's source -------------------------------------------------------- */

/* Sofia's GLib source calls a timer due when it is less than a millisecond
 * away (it rounds down to whole ms) and its dispatch then expires nothing
 * until the timer's time: the loop spins with poll(0) until then. With
 * Sofia's per-transaction timers that was ~4,400 idle passes a second with
 * 3,000 calls held. After each dispatch, the timers due within the next
 * millisecond fire at once (SIP's timers are counted in ms anyway). */
static gboolean
sofia_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  TdDaemon *d = user_data;
  gboolean keep = d->sofia_funcs->dispatch (source, callback, user_data);
  su_duration_t next;

  su_timer_expire (su_task_timers (su_root_task (d->root)), &next, su_time_add (su_now (), 1));
  return keep;
}

/* Sofia's source never calls its callback: the slot carries the daemon. */
static gboolean
sofia_callback_unused (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static void
attach_sofia_source (TdDaemon *d)
{
  GSource *source = su_root_gsource (d->root);

  d->sofia_funcs = source->source_funcs;
  d->sofia_source_funcs = *d->sofia_funcs;
  d->sofia_source_funcs.dispatch = sofia_dispatch;
  source->source_funcs = &d->sofia_source_funcs;
  g_source_set_callback (source, sofia_callback_unused, d, NULL);
  /* GLib blocks a source that may not recurse while it dispatches: it takes
   * every one of its fds out of the poll set and puts them back, each time
   * waking the loop (an eventfd write, then a read): ~30 syscalls per call
   * with Sofia's sockets in the source. Nothing here runs a nested loop, so
   * recursion cannot happen and the blocking buys nothing. */
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, NULL);
}

/* ---- nua events ---------------------------------------------------------- */

static void
shutdown_done (TdDaemon *d)
{
  g_clear_handle_id (&d->shutdown_timeout, g_source_remove);
  g_main_loop_quit (d->loop);
}

/* A request nobody here takes on: answer it and forget its handle. */
static void
refuse (nua_t *nua, nua_handle_t *nh, int status, const char *phrase)
{
  nua_respond (nh, status, phrase, NUTAG_WITH_THIS (nua), TAG_END ());
  nua_handle_destroy (nh);
}

/* Overloaded: refuse new work before the digest check, the store or the
 * relay see it (RFC 3261 §21.5.4: 503 with Retry-After). */
static gboolean
shed (TdDaemon *d, nua_t *nua, nua_handle_t *nh)
{
  g_autofree char *retry_after = NULL;

  if (!td_overload_shed_new_work (d->overload, d->config->overload_lag))
    return FALSE;
  retry_after = g_strdup_printf ("%u", d->config->overload_retry_after);
  nua_respond (nh, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR (retry_after),
               NUTAG_WITH_THIS (nua), TAG_END ());
  nua_handle_destroy (nh);
  return TRUE;
}

static gboolean
unclaimed_request (nua_event_t event)
{
  switch (event) {
  case nua_i_terminated: case nua_i_options: case nua_i_refer: case nua_i_publish:
  case nua_i_info: case nua_i_message: case nua_i_chat: case nua_i_subscribe:
  case nua_i_notify: case nua_i_method: case nua_i_update: case nua_i_prack:
  case nua_i_bye:
    return TRUE;
  default:
    return FALSE;
  }
}

static void
on_nua_event (nua_event_t event, int status, char const *phrase, nua_t *nua,
              nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic,
              sip_t const *sip, tagi_t tags[])
{
  TdDaemon *d = (TdDaemon *) magic;

  /* Events on a handle bound to a call leg belong to that call. */
  if (hmagic) {
    td_call_leg_event ((TdLeg *) hmagic, event, status, phrase, sip, tags);
    return;
  }
  switch (event) {
  case nua_i_register:
    if (shed (d, nua, nh))
      break;
    td_registrar_handle (d->registrar, nua, nh, sip);   /* it destroys nh */
    break;
  case nua_i_invite:
    /* Unbound handle: an INVITE outside any dialog, i.e. a new call. */
    if (d->shutting_down)
      refuse (nua, nh, SIP_503_SERVICE_UNAVAILABLE);
    else if (!shed (d, nua, nh))
      td_call_incoming (&d->calls, nh, sip);
    break;
  case nua_i_error:
    g_warning ("SIP stack error %d %s", status, phrase);
    break;
  case nua_r_shutdown:
    if (status >= 200) {
      d->nua_down = TRUE;
      shutdown_done (d);
    }
    break;
  default:
    /* An incoming request nobody took on (nua answered it itself, e.g.
     * OPTIONS) leaves an unbound handle that is ours to destroy: no
     * terminated event follows. */
    if (nh && unclaimed_request (event))
      nua_handle_destroy (nh);
    break;
  }
}

/* ---- start-up ------------------------------------------------------------ */

#define ALLOW "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, UPDATE, PRACK"

/* "sip:127.0.0.1:5060", "sips:[::1]:5061". */
static char *
listen_url (const char *scheme, const char *host, guint16 port)
{
  return strchr (host, ':') ? g_strdup_printf ("%s:[%s]:%u", scheme, host, port)
                            : g_strdup_printf ("%s:%s:%u", scheme, host, port);
}

/* Whether a TCP socket could take host:port now: after nua_create failed,
 * tells a taken TLS port from a taken SIP one (nua says neither). */
static gboolean
tcp_bindable (const char *host, guint16 port)
{
  g_autoptr (GInetAddress) ip = g_inet_address_new_from_string (host);
  g_autoptr (GSocketAddress) sa = ip ? g_inet_socket_address_new (ip, port) : NULL;
  g_autoptr (GSocket) s = ip ? g_socket_new (g_inet_address_get_family (ip), G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL)
                             : NULL;

  return s && g_socket_bind (s, sa, TRUE, NULL);
}

static gboolean
start_sip (TdDaemon *d, GError **error)
{
  const TdConfig *c = d->config;
  g_autofree char *url = NULL, *sips_url = NULL;
  /* Sofia's directory with the key's copy lives only through nua_create:
   * Sofia reads agent.pem and cafile.pem once, when it opens the TLS
   * listener there (tls_init_master: one SSL_CTX for every connection, in
   * and out), so the copy is gone at once and a killed tandem leaves none
   * in /tmp. */
  g_autoptr (TdTls) tls = NULL;
  gboolean refer = td_plugin_host_handles (d->plugins, TD_HOOK_REFER);

  d->calls.dialog_allow = refer ? ALLOW ", REFER" : NULL;

  /* Sofia's transports must never look a name up on this thread. */
  if (!td_numeric_only_active ()) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                 "Sofia-SIP's su_getaddrinfo() is not behind tandem's numeric-only one");
    return FALSE;
  }
  d->root = su_glib_root_create (d);
  if (!d->root) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create the Sofia-SIP root");
    return FALSE;
  }
  /* nua on this thread: by default it runs its own and every event crosses
   * threads (measured: +70% CPU). */
  su_root_threading (d->root, 0);
  attach_sofia_source (d);

  url = listen_url ("sip", c->listen_host, c->listen_port);
  if (c->tls_listen_port) {
    if (!(tls = td_tls_new (c, error)))
      return FALSE;
    sips_url = listen_url ("sips", c->tls_listen_host, c->tls_listen_port);
  }
  d->nua = nua_create (d->root, on_nua_event, (nua_magic_t *) d,
                       NUTAG_URL (url),
                       /* "sips:", not "sip:...;transport=tls": with that
                        * Sofia silently opens no TLS listener (notes). */
                       TAG_IF (sips_url, NUTAG_SIPS_URL (sips_url)),
                       /* Always given with TLS, or Sofia reads ~/.sip/auth. */
                       TAG_IF (tls, TPTAG_CERTIFICATE (tls ? td_tls_dir (tls) : NULL)),
                       /* Verify the servers tandem calls (trunks) with
                        * tls-ca, never clients: phones have no certificates. */
                       TAG_IF (c->tls_ca, TPTAG_TLS_VERIFY_POLICY (TPTLS_VERIFY_SUBJECTS_OUT)),
                       /* A phone's TLS connection is how tandem reaches it:
                        * kept while it may stay registered, not nta's 30 min. */
                       TPTAG_IDLE ((c->max_expires + 60) * 1000),
                       TPTAG_UDP_RMEM (UDP_BUFFER_BYTES),
                       TPTAG_UDP_WMEM (UDP_BUFFER_BYTES),
                       TPTAG_LOG (c->log_level >= G_LOG_LEVEL_DEBUG),
                       TAG_END ());
  if (!d->nua && sips_url && !tcp_bindable (c->tls_listen_host, c->tls_listen_port)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                 "cannot listen for SIP over TLS on %s ([sip] tls-listen, %s:%u): "
                 "address in use or not local",
                 sips_url, c->path, c->tls_listen_line);
    return FALSE;
  }
  if (!d->nua) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                 "cannot listen for SIP on %s (UDP and TCP): address in use or not local",
                 url);
    return FALSE;
  }
  nua_set_params (d->nua,
                  /* Requests tandem answers itself instead of nua; REFER
                   * only with a plugin to carry transfers out. */
                  NUTAG_APPL_METHOD (refer ? "INVITE, REGISTER, UPDATE, REFER"
                                           : "INVITE, REGISTER, UPDATE"),
                  /* Advertise only what tandem really serves; nua refuses
                   * other methods with 405. REFER is allowed in calls'
                   * dialogs only (d->calls.dialog_allow, set on each leg's
                   * handle): outside one, Debian's nua would send a NOTIFY
                   * "100 Trying" of its own before tandem could refuse it
                   * (measured); with REFER not allowed there it answers
                   * 405 and nothing else. */
                  SIPTAG_ALLOW_STR (ALLOW),
                  /* Set once: a second SIPTAG_SUPPORTED replaces the first.
                   * 100rel (RFC 3262): a caller that requires it gets its
                   * 18x reliably (nua sends them so and answers the PRACKs,
                   * a 183 also to one that only supports it); a callee's
                   * reliable 18x nua PRACKs itself. */
                  SIPTAG_SUPPORTED_STR (c->session_timer ? "timer, 100rel, replaces"
                                                         : "100rel, replaces"),
                  NUTAG_SESSION_TIMER (c->session_timer),
                  NUTAG_MIN_SE (90),
                  NUTAG_SESSION_REFRESHER (nua_any_refresher),
                  /* Tandem sends the refreshes (td-call-refresh.c) and sets
                   * this per leg from the endpoint's Allow. */
                  NUTAG_UPDATE_REFRESH (0),
                  /* nua never retries a request on its own: with the default
                   * (3) it follows a callee's 302 to whatever its Contact
                   * names, and a 305 via the proxy it names, sending the
                   * new INVITE before it reports anything, so any phone
                   * could make tandem call any URI past routing and auth.
                   * A failure is the callee's answer, and tandem's to map
                   * (td_call_status_for_caller). Counted per request, so 0
                   * leaves the first attempt alone. */
                  NUTAG_RETRY_COUNT (0),
                  NUTAG_AUTOANSWER (0),
                  NUTAG_AUTOALERT (0),
                  NUTAG_MEDIA_ENABLE (0),
                  NUTAG_ENABLEMESSAGE (0),
                  NUTAG_ENABLEINVITE (1),
                  /* A request over 1,300 bytes (an SRTP offer's a=crypto
                   * lines take it there) goes by UDP like the rest: by
                   * default nta moves it to TCP (RFC 3261 §18.1.1), which a
                   * phone registered over UDP, behind NAT or with no TCP
                   * listener, never gets (measured: baresip's INVITE came
                   * over TCP). */
                  NTATAG_UDP_MTU (65535),
                  /* A finished transaction is kept this long with its
                   * request and answer (~10 KB): RFC 3261's 32 s held
                   * 1.4 GB at 2,000 registrations/s. (A sent INVITE stays
                   * 32 s whatever this is: nta's Timer D has no tag.) */
                  NTATAG_SIP_T1X64 (c->transaction_lifetime * 1000),
                  SIPTAG_USER_AGENT_STR (c->user_agent),
                  SIPTAG_SERVER_STR (c->user_agent),
                  TAG_END ());
  if (!(d->overload = td_overload_new (c->listen_host, c->listen_port, error)))
    return FALSE;
  g_message ("listening for SIP on %s (UDP and TCP)%s%s, domain %s", url,
             sips_url ? " and on " : "", sips_url ? sips_url : "", c->domain);
  return TRUE;
}

static gboolean
open_services (TdDaemon *d, GError **error)
{
  const TdConfig *c = d->config;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (!(d->store = td_store_open (c->store_path, c->store_full_sync, error)))
    return FALSE;
  d->batch = td_store_batch_new (d->store, c->store_batch_ms);
  if (!(d->location = td_location_new (d->store, d->batch, now, error)))
    return FALSE;
  g_message ("store %s: %u registration(s) loaded", c->store_path,
             td_location_count (d->location));
  d->auth = td_auth_new (c->domain, c->algorithms, c->n_algorithms, c->nonce_lifetime);
  d->registrar = td_registrar_new (d->config, d->auth, d->location);
  if (!(d->cdr = td_cdr_new (d->store, d->batch, error)))
    return FALSE;
  if (!(d->relay = td_relay_new_full (c->media_address, c->port_min, c->port_max, c->relay_threads, error)))
    return FALSE;
  td_relay_set_latching (d->relay, c->latching, TD_RELAY_NAT_DELAY_MS, TD_RELAY_LEARN_WINDOW_MS);
  td_relay_set_idle_timeout (d->relay, c->rtp_timeout * 1000);   /* IDLE: td-call-media.c */
  td_relay_set_defer_signals (d->relay, TRUE);   /* this thread runs the relay's context */
  d->plugins = td_plugin_host_new ();
  d->calls = (TdCallContext) {
    .config = d->config, .auth = d->auth, .location = d->location, .relay = d->relay,
    .cdr = d->cdr, .plugins = d->plugins,
  };
  td_call_context_init (&d->calls);
  td_plugin_host_set_context (d->plugins, &d->calls);
  return td_plugin_host_load (d->plugins, c, error);
}

/* ---- signals and timers ---------------------------------------------------- */

static gboolean
on_shutdown_timeout (gpointer data)
{
  TdDaemon *d = data;
  g_warning ("SIP stack did not shut down within %d s; exiting anyway", SHUTDOWN_GRACE_SECONDS);
  d->shutdown_timeout = 0;
  g_main_loop_quit (d->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
on_terminate (gpointer data)
{
  TdDaemon *d = data;
  if (d->shutting_down)
    return G_SOURCE_CONTINUE;
  d->shutting_down = TRUE;
  g_message ("shutting down: ending %u call(s)", g_hash_table_size (d->calls.calls));
  td_calls_hangup_all (&d->calls);
  td_store_batch_flush (d->batch);   /* the 200s of stored REGISTERs go out first */
  nua_shutdown (d->nua);
  d->shutdown_timeout = g_timeout_add_seconds (SHUTDOWN_GRACE_SECONDS, on_shutdown_timeout, d);
  return G_SOURCE_CONTINUE;
}

/* What a reload cannot change in a running daemon (sockets, realm, store,
 * the relay, loaded tunes): keep the running values, and say so. */
static void
keep_restart_only (TdConfig *fresh, const TdConfig *running)
{
  gboolean changed =
    strcmp (fresh->listen_host, running->listen_host) != 0 ||
    fresh->listen_port != running->listen_port || strcmp (fresh->domain, running->domain) != 0 ||
    g_strcmp0 (fresh->store_path, running->store_path) != 0 ||
    fresh->store_full_sync != running->store_full_sync ||
    fresh->store_batch_ms != running->store_batch_ms ||
    strcmp (fresh->media_address, running->media_address) != 0 ||
    fresh->port_min != running->port_min || fresh->port_max != running->port_max ||
    fresh->relay_threads != running->relay_threads ||
    fresh->session_timer != running->session_timer ||
    fresh->transaction_lifetime != running->transaction_lifetime ||
    strcmp (fresh->user_agent, running->user_agent) != 0 ||
    g_strcmp0 (fresh->control_socket, running->control_socket) != 0 ||
    g_strcmp0 (fresh->tls_listen_host, running->tls_listen_host) != 0 ||
    fresh->tls_listen_port != running->tls_listen_port ||
    g_strcmp0 (fresh->tls_certificate, running->tls_certificate) != 0 ||
    g_strcmp0 (fresh->tls_key, running->tls_key) != 0 ||
    g_strcmp0 (fresh->tls_ca, running->tls_ca) != 0;

  if (changed)
    g_warning ("reload: [sip], [media], [store], [control], [calls] session-timer and "
               "user-agent changes take effect only on restart; the running values stay");
#define KEEP_STR(f) do { g_free (fresh->f); fresh->f = g_strdup (running->f); } while (0)
  KEEP_STR (listen_host);
  KEEP_STR (domain);
  KEEP_STR (store_path);
  KEEP_STR (media_address);
  KEEP_STR (user_agent);
  KEEP_STR (control_socket);
  KEEP_STR (tls_listen_host);
  KEEP_STR (tls_certificate);
  KEEP_STR (tls_key);
  KEEP_STR (tls_ca);
#undef KEEP_STR
  fresh->tls_listen_port = running->tls_listen_port;
  fresh->control_socket_line = running->control_socket_line;
  fresh->listen_port = running->listen_port;
  fresh->port_min = running->port_min;
  fresh->port_max = running->port_max;
  fresh->relay_threads = running->relay_threads;
  fresh->session_timer = running->session_timer;
  fresh->transaction_lifetime = running->transaction_lifetime;
  fresh->store_full_sync = running->store_full_sync;
  fresh->store_batch_ms = running->store_batch_ms;
}

/* SIGHUP: new users and limits take effect; registrations and the listening
 * socket stay (changing [sip] listen or [store] needs a restart). */
static gboolean
on_reload (gpointer data)
{
  TdDaemon *d = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TdConfig) fresh = td_config_load (d->config_path, &error);

  if (!fresh || !td_plugin_host_check_config (d->plugins, fresh, &error)) {
    g_warning ("reload refused, keeping the running configuration: %s", error->message);
    return G_SOURCE_CONTINUE;
  }
  if (!g_strv_equal ((const char *const *) fresh->plugins, (const char *const *) d->config->plugins))
    g_warning ("reload: [plugins] enabled takes effect only on restart");
  keep_restart_only (fresh, d->config);
  td_plugin_host_keep_restart_only (d->plugins, fresh, d->config);
  td_auth_set_algorithms (d->auth, fresh->algorithms, fresh->n_algorithms);
  td_registrar_set_config (d->registrar, fresh);
  td_relay_set_latching (d->relay, fresh->latching, TD_RELAY_NAT_DELAY_MS,
                         TD_RELAY_LEARN_WINDOW_MS);   /* for new calls */
  td_relay_set_idle_timeout (d->relay, fresh->rtp_timeout * 1000);
  d->calls.config = fresh;
  d->log.level = fresh->log_level;
  td_config_unref (d->config);
  d->config = g_steal_pointer (&fresh);
  td_plugin_host_reloaded (d->plugins, d->config);
  g_message ("configuration reloaded from %s: %u user(s)", d->config_path,
             g_hash_table_size (d->config->users));
  return G_SOURCE_CONTINUE;
}

static gboolean
on_housekeeping (gpointer data)
{
  TdDaemon *d = data;
  guint expired = td_location_expire (d->location, g_get_real_time () / G_USEC_PER_SEC);
  if (expired)
    g_info ("%u registration(s) expired", expired);
  td_auth_expire (d->auth, g_get_monotonic_time ());
  return G_SOURCE_CONTINUE;
}

/* ---- life cycle ------------------------------------------------------------ */

TdDaemon *
td_daemon_new (const char *config_path, TdConfig *config, GError **error)
{
  g_autoptr (TdDaemon) d = g_new0 (TdDaemon, 1);

  d->config_path = g_strdup (config_path);
  d->config = td_config_ref (config);
  td_log_sink_init (&d->log, config->log_level);
  g_log_set_writer_func (td_log_writer, &d->log, NULL);
  d->loop = g_main_loop_new (NULL, FALSE);
  d->siplog = td_siplog_new ();
  su_init ();

  if (!open_services (d, error) || !start_sip (d, error))
    return NULL;
  d->calls.nua = d->nua;
  d->calls.signal = td_signal_nua (d->nua);
  d->control = td_control_new (d->config, &d->calls, error);
  if (!d->control && error && *error)
    return NULL;
  if (d->control)
    td_plugin_host_register_commands (d->plugins, d->control);
  d->signal_sources[0] = g_unix_signal_add (SIGTERM, on_terminate, d);
  d->signal_sources[1] = g_unix_signal_add (SIGINT, on_terminate, d);
  d->signal_sources[2] = g_unix_signal_add (SIGHUP, on_reload, d);
  d->housekeeping = g_timeout_add_seconds (HOUSEKEEPING_SECONDS, on_housekeeping, d);
  return g_steal_pointer (&d);
}

int
td_daemon_run (TdDaemon *d)
{
  g_main_loop_run (d->loop);
  g_message ("stopped");
  return 0;
}

void
td_daemon_free (TdDaemon *d)
{
  if (!d)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (d->signal_sources); i++)
    g_clear_handle_id (&d->signal_sources[i], g_source_remove);
  g_clear_handle_id (&d->housekeeping, g_source_remove);
  g_clear_pointer (&d->control, td_control_free);
  if (d->calls.calls) {
    td_calls_free_all (&d->calls);
    td_call_context_clear (&d->calls);
  }
  /* The last CDRs and bindings, while nua can still carry the answers. */
  g_clear_pointer (&d->batch, td_store_batch_free);
  g_clear_handle_id (&d->shutdown_timeout, g_source_remove);
  /* nua_destroy() aborts unless nua_shutdown() completed; after a timed-out
   * shutdown the process is exiting and the stack is simply left behind. */
  if (d->nua && d->nua_down)
    nua_destroy (d->nua);
  d->nua = NULL;
  if (d->root) {
    su_root_destroy (d->root);
    d->root = NULL;
  }
  g_clear_pointer (&d->overload, td_overload_free);
  g_clear_pointer (&d->plugins, td_plugin_host_free);
  g_clear_pointer (&d->relay, td_relay_free);
  g_clear_pointer (&d->cdr, td_cdr_free);
  g_clear_pointer (&d->registrar, td_registrar_free);
  g_clear_pointer (&d->auth, td_auth_free);
  g_clear_pointer (&d->location, td_location_free);
  g_clear_pointer (&d->store, td_store_free);
  g_clear_pointer (&d->siplog, td_siplog_free);
  g_clear_pointer (&d->loop, g_main_loop_unref);
  g_clear_pointer (&d->config, td_config_unref);
  g_free (d->config_path);
  su_deinit ();
  g_free (d);
}
