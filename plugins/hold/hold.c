/* hold: music on hold (flow 12, with [hold] music).
 *
 * Without hold music a hold needs no plugin: the core relays the holder's
 * re-INVITE (a=sendonly / inactive / c=0.0.0.0) to the other party and stops
 * forwarding audio the held party should not hear. With `[hold] music =
 * FILE` (relative to the configuration's folder), tandem answers the hold
 * itself instead — the held party's dialog does not change — and plays the
 * music to the held party from the relay in its codec; the resume
 * (a=sendrecv) stops it. The file is decoded once, when the plugin loads:
 * a missing or broken file is a start-up error naming the file and line,
 * and a reload (SIGHUP) keeps the music playing (a restart takes a new one). */
#define G_LOG_DOMAIN "tandem-hold"

#include "td-plugin.h"
#include "td-sdp.h"
#include "td-tune.h"

typedef struct {
  TdTune *music;
} Hold;

static TdHookResult
on_offer (const TdHookArgs *args, gpointer data)
{
  Hold *hold = data;
  gboolean holding = td_sdp_media_is_hold (args->sdp, 0);
  TdSdpDirection dir = td_sdp_media_direction (args->sdp, 0);

  if (!hold->music || td_sdp_n_media (args->sdp) == 0)
    return TD_HOOK_CONTINUE;
  if (holding) {
    if (!td_call_is_playing_to_peer (args->call, args->leg) &&
        !td_call_play_to_peer (args->call, args->leg, hold->music))
      return TD_HOOK_CONTINUE;   /* no codec to play in: relay the hold as usual */
    /* The holder sends (sendonly) or nothing (inactive): tandem receives only. */
    td_call_answer_offer (args->call, args->leg,
                          dir == TD_SDP_SENDONLY ? TD_SDP_RECVONLY : TD_SDP_INACTIVE);
    return TD_HOOK_HANDLED;
  }
  if (!td_call_is_playing_to_peer (args->call, args->leg))
    return TD_HOOK_CONTINUE;
  /* Resume: the other party never left the call; take the music away. */
  td_call_stop_playing_to_peer (args->call, args->leg);
  td_call_answer_offer (args->call, args->leg, TD_SDP_SENDRECV);
  return TD_HOOK_HANDLED;
}

static void
hold_close (TdPluginHost *host, gpointer state)
{
  Hold *hold = state;
  if (!hold)
    return;
  g_clear_pointer (&hold->music, td_tune_unref);
  g_free (hold);
}

static gboolean
hold_init (TdPluginHost *host, gpointer *state, GError **error)
{
  const TdConfig *config = td_plugin_host_config (host);
  Hold *hold = g_new0 (Hold, 1);
  guint line = 0;
  g_autofree char *path = config ? td_config_plugin_path (config, "hold", "music", &line) : NULL;
  g_autoptr (GError) local = NULL;

  *state = hold;
  td_plugin_host_add_key (host, "music", TD_PLUGIN_KEY_RESTART_ONLY, NULL);
  if (path) {
    hold->music = td_tune_load (path, &local);
    if (!hold->music) {
      g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE, "%s:%u: [hold] music: %s",
                   config->path, line, local->message);
      return FALSE;
    }
    g_info ("music on hold: %s, %u s", path, td_tune_n_frames (hold->music) / 50);
  }
  td_plugin_host_add_hook (host, TD_HOOK_OFFER, on_offer, hold);
  return TRUE;
}

TD_PLUGIN_DEFINE ("hold", hold_init, hold_close)
