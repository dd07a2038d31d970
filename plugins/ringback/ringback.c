/* ringback: colour ringback per user (flow 16).
 *
 * Whoever calls a user who chose a tune hears it while the user's phones
 * ring, then the user's voice:
 *   [user bob] ringback = tunes/bob.ogg    a file GStreamer decodes (WAV, Ogg,
 *                                         MP3, FLAC), relative to the
 *                                         configuration's folder; or tone:cn,
 *                                         tone:us, tone:eu (national cadences,
 *                                         generated); or none (a plain 180)
 *   [media] ringback = tone:eu            the default for users without one
 *                                         (unset: none)
 *   [media] ringback-mode = early-media-first | tune-first
 *                                         the callee's own early media (183
 *                                         and RTP) ends the tune, or not
 *   [media] ringback-follows = current | original
 *                                         after forwarding: the tune of the
 *                                         user now ringing, or of the one dialled
 * ([ringback] tune, mode and follows are the same keys.)
 *
 * The plugin only chooses: on each branch's 18x it asks the core to play
 * the chosen tune (td_call_play_ringback), which answers the caller with
 * its own 183, plays from the relay and switches at the answer. A blind
 * transfer's target ringing plays the target's tune to the transferee the
 * same way. Tunes are decoded once, at start (a missing or broken file
 * stops tandem naming the user and file); on SIGHUP a thread decodes the
 * files that changed, and new calls get them once all are ready — calls in
 * progress keep what they play. */
#define G_LOG_DOMAIN "tandem-ringback"

#include <string.h>

#include "td-plugin.h"
#include "tunes.h"

typedef struct _Reload Reload;

typedef struct {
  TdPluginHost *host;
  TuneSet *tunes;
  GMainContext *context;   /* the SIP thread's, where a reload's result lands */
  Reload *running;         /* a reload decoding in its thread, or NULL */
  TuneSpecs *queued;       /* a later reload's, waiting for it */
} Ringback;

/* One reload's decoding, in its own thread. */
struct _Reload {
  Ringback *rb;
  GThread *thread;
  TuneSpecs *specs;
  TuneSet *previous;
  TuneSet *result;
  GError *error;
  GSource *done;           /* attached by the thread when it is over */
};

static gboolean
mode_from_string (const char *value, TdRingbackMode *out)
{
  if (!value || strcmp (value, "early-media-first") == 0)
    *out = TD_RINGBACK_EARLY_MEDIA_FIRST;
  else if (strcmp (value, "tune-first") == 0)
    *out = TD_RINGBACK_TUNE_FIRST;
  else
    return FALSE;
  return TRUE;
}

static gboolean
check_mode (const char *value, GError **error)
{
  TdRingbackMode mode;
  if (mode_from_string (value, &mode))
    return TRUE;
  g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE,
               "\"%s\" is not early-media-first or tune-first", value);
  return FALSE;
}

static gboolean
check_follows (const char *value, GError **error)
{
  if (strcmp (value, "current") == 0 || strcmp (value, "original") == 0)
    return TRUE;
  g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE,
               "\"%s\" is not current or original", value);
  return FALSE;
}

/* ---- calls ------------------------------------------------------------------ */

static TdHookResult
on_leg_ringing (const TdHookArgs *args, gpointer data)
{
  Ringback *rb = data;
  const TdConfig *config = td_plugin_host_config (rb->host);
  const char *follows = td_config_plugin_value (config, "ringback", "follows", NULL);
  TdRingbackMode mode = TD_RINGBACK_EARLY_MEDIA_FIRST;
  const char *user;
  TdTune *tune;

  mode_from_string (td_config_plugin_value (config, "ringback", "mode", NULL), &mode);
  user = g_strcmp0 (follows, "original") == 0 ? td_call_get_dialed (args->call)
                                             : td_call_get_callee (args->call);
  tune = rb->tunes ? tune_set_for (rb->tunes, user) : NULL;
  if (tune)
    td_call_play_ringback (args->call, tune, mode);
  return TD_HOOK_CONTINUE;
}

/* ---- reload ----------------------------------------------------------------- */

static void reload_start (Ringback *rb, TuneSpecs *specs);

static void
reload_free (Reload *r)
{
  /* Joined first: until it returns, the thread may still attach `done`. */
  g_clear_pointer (&r->thread, g_thread_join);
  if (r->done) {
    g_source_destroy (r->done);
    g_source_unref (r->done);
  }
  tune_specs_free (r->specs);
  g_clear_pointer (&r->previous, tune_set_unref);
  g_clear_pointer (&r->result, tune_set_unref);
  g_clear_error (&r->error);
  g_free (r);
}

/* Back on the SIP thread: the new tunes are ready (or one failed). */
static gboolean
reload_done (gpointer data)
{
  Reload *r = data;
  Ringback *rb = r->rb;
  TuneSpecs *next = g_steal_pointer (&rb->queued);

  if (r->result) {
    g_clear_pointer (&rb->tunes, tune_set_unref);
    rb->tunes = g_steal_pointer (&r->result);
    g_message ("ringback: %u tune(s) ready after the reload", tune_set_size (rb->tunes));
  } else {
    g_warning ("reload: ringback: %s; callers keep hearing the previous tunes",
               r->error->message);
  }
  g_source_unref (g_steal_pointer (&r->done));   /* returning FALSE destroys it */
  rb->running = NULL;
  reload_free (r);
  if (next)
    reload_start (rb, next);
  return G_SOURCE_REMOVE;
}

static gpointer
reload_thread (gpointer data)
{
  Reload *r = data;
  GSource *done = g_idle_source_new ();

  r->result = tune_set_load (r->specs, r->previous, &r->error);
  g_source_set_callback (done, reload_done, r, NULL);
  r->done = done;
  g_source_attach (done, r->rb->context);
  return NULL;
}

/* Takes `specs`. One reload decodes at a time; the newest waits. */
static void
reload_start (Ringback *rb, TuneSpecs *specs)
{
  Reload *r;

  if (rb->running) {
    g_clear_pointer (&rb->queued, tune_specs_free);
    rb->queued = specs;
    return;
  }
  r = g_new0 (Reload, 1);
  r->rb = rb;
  r->specs = specs;
  r->previous = rb->tunes ? tune_set_ref (rb->tunes) : NULL;
  rb->running = r;
  r->thread = g_thread_new ("td-ringback", reload_thread, r);
}

/* A reload is refused at once for a value that is wrong or a file that is
 * not there; a file that does not decode is found by the thread. */
static gboolean
reload_check (const TdConfig *fresh, gpointer data, GError **error)
{
  g_autoptr (TuneSpecs) specs = tune_specs_read (fresh, error);
  return specs && tune_specs_check_files (specs, error);
}

static void
reload_apply (const TdConfig *config, gpointer data)
{
  TuneSpecs *specs = tune_specs_read (config, NULL);

  if (specs)
    reload_start (data, specs);
}

/* ---- life -------------------------------------------------------------------- */

static void
ringback_close (TdPluginHost *host, gpointer state)
{
  Ringback *rb = state;

  if (!rb)
    return;
  /* The thread runs this module's code: it must be over before the module goes. */
  if (rb->running)
    reload_free (rb->running);
  tune_specs_free (rb->queued);
  g_clear_pointer (&rb->tunes, tune_set_unref);
  g_main_context_unref (rb->context);
  g_free (rb);
}

static gboolean
ringback_init (TdPluginHost *host, gpointer *state, GError **error)
{
  const TdConfig *config = td_plugin_host_config (host);
  Ringback *rb = g_new0 (Ringback, 1);
  g_autoptr (TuneSpecs) specs = NULL;

  *state = rb;
  rb->host = host;
  rb->context = g_main_context_ref_thread_default ();
  td_plugin_host_add_user_key (host, "ringback");
  td_plugin_host_add_key (host, "tune", TD_PLUGIN_KEY_RELOADABLE, NULL);
  td_plugin_host_add_key (host, "mode", TD_PLUGIN_KEY_RELOADABLE, check_mode);
  td_plugin_host_add_key (host, "follows", TD_PLUGIN_KEY_RELOADABLE, check_follows);
  if (config) {
    if (!(specs = tune_specs_read (config, error)) ||
        !(rb->tunes = tune_set_load (specs, NULL, error)))
      return FALSE;
    g_info ("ringback: %u tune(s)", tune_set_size (rb->tunes));
  }
  td_plugin_host_add_hook (host, TD_HOOK_LEG_RINGING, on_leg_ringing, rb);
  td_plugin_host_on_reload (host, reload_check, reload_apply, rb);
  return TRUE;
}

TD_PLUGIN_DEFINE ("ringback", ringback_init, ringback_close)
