/* transfer: blind and attended call transfer (flows 14 and 15).
 *
 * A party in a call sends REFER in its own dialog (RFC 3515):
 *  - blind, Refer-To: <sip:carol@pbx.test>: tandem calls carol on behalf of
 *    the other party (with Referred-By), and when carol answers moves that
 *    party's leg into carol's call. The referrer hears how it went in
 *    NOTIFYs (100 Trying, then the final status), and is hung up after a
 *    success if it does not hang up itself. A failure (busy, no answer)
 *    leaves the two parties as they were.
 *  - attended, Refer-To: <sip:carol@pbx.test?Replaces=...> naming the
 *    referrer's own dialog with tandem in a second, answered call: the other
 *    party takes that dialog's place in the second call at once (carol is
 *    not rung again), and both of the referrer's legs end.
 * Nothing to configure; with the plugin enabled, phones may transfer. */
#define G_LOG_DOMAIN "tandem-transfer"

#include <string.h>

#include "td-plugin.h"

/* How long a referrer may take to hang up after its transfer succeeded
 * before tandem hangs it up (RFC 5589 has the referrer do it). */
#define REFERRER_GRACE_S 2

typedef struct {
  TdLeg *referrer;    /* the leg that sent REFER; it holds the subscription */
  TdLeg *party;       /* the referrer's peer, the one being transferred */
  TdCall *target;     /* blind: the call to the target, until it answers or fails */
} Transfer;

typedef struct {
  GPtrArray *running;   /* Transfer*, owned */
  GPtrArray *graces;    /* Grace*, owned: referrers given time to hang up */
} State;

/* A referrer whose transfer worked, until it hangs up or REFERRER_GRACE_S. */
typedef struct {
  State *st;
  TdLeg *referrer;
  guint timer;
} Grace;

static void
grace_free (gpointer data)
{
  Grace *g = data;
  g_clear_handle_id (&g->timer, g_source_remove);
  td_leg_unref (g->referrer);
  g_free (g);
}

static void
transfer_free (gpointer data)
{
  Transfer *t = data;
  td_leg_set_stays (t->party, FALSE);
  td_leg_unref (t->referrer);
  td_leg_unref (t->party);
  g_clear_pointer (&t->target, td_call_unref);
  g_free (t);
}

static Transfer *
find (State *st, gboolean (*match) (const Transfer *, gconstpointer), gconstpointer what)
{
  for (guint i = 0; i < st->running->len; i++) {
    Transfer *t = g_ptr_array_index (st->running, i);
    if (match (t, what))
      return t;
  }
  return NULL;
}

static gboolean
involves (const Transfer *t, gconstpointer leg)
{
  return t->referrer == leg || t->party == leg;
}

static gboolean
targets (const Transfer *t, gconstpointer call)
{
  return t->target == call;
}

/* ---- the end of a transfer ------------------------------------------------------ */

static gboolean
on_grace_over (gpointer data)
{
  Grace *g = data;

  g->timer = 0;
  if (td_leg_is_up (g->referrer)) {
    g_info ("the referrer (%s) did not hang up after its transfer: hanging it up",
            td_leg_get_user (g->referrer) ? td_leg_get_user (g->referrer) : "?");
    td_leg_hangup (g->referrer);
  }
  g_ptr_array_remove_fast (g->st->graces, g);
  return G_SOURCE_REMOVE;
}

/* It worked: the referrer hears 200 and leaves (or is made to). */
static void
succeeded (State *st, Transfer *t)
{
  Grace *g = g_new0 (Grace, 1);

  td_leg_notify_refer (t->referrer, 200);
  g->st = st;
  g->referrer = td_leg_ref (t->referrer);
  g->timer = g_timeout_add_seconds (REFERRER_GRACE_S, on_grace_over, g);
  g_ptr_array_add (st->graces, g);
  g_ptr_array_remove_fast (st->running, t);
}

/* It did not: the referrer hears why; the party stays where it was, or,
 * if its referrer has left meanwhile, has nobody left and is hung up. */
static void
failed (State *st, Transfer *t, int status)
{
  g_info ("transfer of %s failed: %d", td_leg_get_user (t->party) ? td_leg_get_user (t->party) : "?",
          status);
  td_leg_notify_refer (t->referrer, status);
  if (td_leg_is_up (t->party) && !td_leg_is_up (td_leg_get_peer (t->party)))
    td_leg_hangup (t->party);
  g_ptr_array_remove_fast (st->running, t);
}

/* ---- REFER ------------------------------------------------------------------------ */

static char *
referred_by (const TdHookArgs *args, const TdConfig *config)
{
  const char *user = td_leg_get_user (args->leg);

  if (args->refer->referred_by)
    return g_strdup_printf ("Referred-By: %s\r\n", args->refer->referred_by);
  return user ? g_strdup_printf ("Referred-By: <sip:%s@%s>\r\n", user, config->domain) : NULL;
}

static void
blind (State *st, const TdHookArgs *args, TdLeg *party)
{
  const TdConfig *config = td_plugin_host_config (td_call_get_host (args->call));
  g_autofree char *headers = referred_by (args, config);
  g_autoptr (GError) error = NULL;
  Transfer *t = g_new0 (Transfer, 1);
  TdCall *target;

  t->referrer = td_leg_ref (args->leg);
  t->party = td_leg_ref (party);
  g_ptr_array_add (st->running, t);
  td_leg_accept_refer (args->leg);
  /* The referrer may hang up as soon as it has its 202. */
  td_leg_set_stays (party, TRUE);
  target = td_call_originate (party, args->refer->refer_to, headers, td_leg_get_user (args->leg),
                              &error);
  if (!target) {
    g_info ("blind transfer to %s: %s", args->refer->refer_to, error->message);
    failed (st, t, error->code >= 300 && error->code < 700 ? error->code : 500);
    return;
  }
  t->target = td_call_ref (target);
}

/* The Replaces names the referrer's own dialog in another answered call. */
static TdLeg *
replaced_leg (const TdHookArgs *args)
{
  TdLeg *r = td_leg_find_replaced (args->leg, args->refer->replaces);
  TdCall *call = r ? td_leg_get_call (r) : NULL;

  if (!call || call == args->call || !td_leg_is_up (r) || !td_leg_is_up (td_leg_get_peer (r)) ||
      g_strcmp0 (td_leg_get_user (r), td_leg_get_user (args->leg)) != 0)
    return NULL;
  return r;
}

static void
attended (State *st, const TdHookArgs *args, TdLeg *party)
{
  TdLeg *r = replaced_leg (args);
  g_autoptr (GError) error = NULL;
  Transfer *t;

  if (!r) {
    g_info ("attended transfer: the Replaces names none of %s's calls",
            td_leg_get_user (args->leg) ? td_leg_get_user (args->leg) : "?");
    td_leg_refuse_refer (args->leg, 481);
    return;
  }
  t = g_new0 (Transfer, 1);
  t->referrer = td_leg_ref (args->leg);
  t->party = td_leg_ref (party);
  g_ptr_array_add (st->running, t);
  td_leg_accept_refer (args->leg);
  if (!td_call_take_leg (td_leg_get_call (r), party, r, td_leg_get_user (args->leg), &error)) {
    failed (st, t, error->code >= 300 && error->code < 700 ? error->code : 500);
    return;
  }
  succeeded (st, t);
}

static TdHookResult
on_refer (const TdHookArgs *args, gpointer data)
{
  State *st = data;
  TdLeg *party = td_leg_get_peer (args->leg);

  /* A REFER to a room's focus pulls someone into the room: no transfer. */
  if (td_call_get_room (args->call))
    return TD_HOOK_CONTINUE;
  if (!td_leg_is_up (party)) {
    td_leg_refuse_refer (args->leg, 403);
    return TD_HOOK_HANDLED;
  }
  /* One transfer at a time for the two of them (RFC 3515 §2.4.1 has the
   * same for one dialog). */
  if (find (st, involves, args->leg) || find (st, involves, party)) {
    td_leg_refuse_refer (args->leg, 491);
    return TD_HOOK_HANDLED;
  }
  if (args->refer->replaces)
    attended (st, args, party);
  else
    blind (st, args, party);
  return TD_HOOK_HANDLED;
}

/* ---- the target call's progress ---------------------------------------------------- */

static TdHookResult
on_answered (const TdHookArgs *args, gpointer data)
{
  State *st = data;
  Transfer *t = find (st, targets, args->call);
  g_autoptr (GError) error = NULL;

  if (!t)
    return TD_HOOK_CONTINUE;
  if (!td_call_take_leg (args->call, t->party, NULL, td_leg_get_user (t->referrer), &error)) {
    /* The party left while the target rang: the target has nobody to talk to. */
    g_info ("blind transfer: %s", error->message);
    td_call_hangup (args->call, "the transferred party left");
    failed (st, t, 487);
    return TD_HOOK_CONTINUE;
  }
  succeeded (st, t);
  return TD_HOOK_CONTINUE;
}

static TdHookResult
on_ended (const TdHookArgs *args, gpointer data)
{
  State *st = data;
  Transfer *t = find (st, targets, args->call);

  if (t)
    failed (st, t, args->status >= 300 ? args->status : 500);
  return TD_HOOK_CONTINUE;
}

/* The party hung up (or was hung up) while its transfer ran: the target
 * call has nobody to connect. */
static TdHookResult
on_leg_ended (const TdHookArgs *args, gpointer data)
{
  State *st = data;

  for (guint i = 0; i < st->running->len; i++) {
    Transfer *t = g_ptr_array_index (st->running, i);
    if (t->party == args->leg && t->target) {
      g_info ("blind transfer: the party left; ending the call to the target");
      td_call_hangup (t->target, "the transferred party left");
      failed (st, t, 487);
      return TD_HOOK_CONTINUE;
    }
  }
  return TD_HOOK_CONTINUE;
}

static gboolean
transfer_init (TdPluginHost *host, gpointer *state, GError **error)
{
  State *st = g_new0 (State, 1);
  st->running = g_ptr_array_new_with_free_func (transfer_free);
  st->graces = g_ptr_array_new_with_free_func (grace_free);
  *state = st;
  td_plugin_host_add_hook (host, TD_HOOK_REFER, on_refer, st);
  td_plugin_host_add_hook (host, TD_HOOK_CALL_ANSWERED, on_answered, st);
  td_plugin_host_add_hook (host, TD_HOOK_CALL_ENDED, on_ended, st);
  td_plugin_host_add_hook (host, TD_HOOK_LEG_ENDED, on_leg_ended, st);
  return TRUE;
}

static void
transfer_close (TdPluginHost *host, gpointer state)
{
  State *st = state;
  g_ptr_array_unref (st->running);
  g_ptr_array_unref (st->graces);
  g_free (st);
}

TD_PLUGIN_DEFINE ("transfer", transfer_init, transfer_close)
