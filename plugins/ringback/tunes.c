/* The ringback plugin's tunes (tunes.h). */
#define G_LOG_DOMAIN "tandem-ringback"

#include "tunes.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#define TONE_PREFIX "tone:"

/* The cadences td_tune_new_tone generates. */
static const char *const tones[] = { "cn", "us", "eu", NULL };

/* One configured value: a user's, or the default ([media] ringback). */
typedef struct {
  char *user;        /* NULL: the default */
  char *value;       /* as written */
  char *path;        /* a file's full path; NULL for a tone or none */
  guint line;
} Spec;

struct _TuneSpecs {
  char *config_path;
  GArray *specs;     /* Spec */
};

/* A decoded tune and what identifies its source, for reuse on reload. */
typedef struct {
  TdTune *tune;
  gint64 mtime;
  goffset size;
} Entry;

struct _TuneSet {
  gatomicrefcount ref;
  GHashTable *entries;   /* source ("tone:eu", a full path) → Entry* */
  GHashTable *users;     /* user → TdTune* (borrowed from entries); NULL value: none */
  TdTune *fallback;      /* the default, borrowed; NULL: none */
};

static void
spec_clear (gpointer data)
{
  Spec *s = data;
  g_free (s->user);
  g_free (s->value);
  g_free (s->path);
}

static void
entry_free (gpointer data)
{
  Entry *e = data;
  td_tune_unref (e->tune);
  g_free (e);
}

void
tune_specs_free (TuneSpecs *specs)
{
  if (!specs)
    return;
  g_array_unref (specs->specs);
  g_free (specs->config_path);
  g_free (specs);
}

static const char *
spec_who (const Spec *s, char *buf, gsize len)
{
  if (s->user)
    g_snprintf (buf, len, "[user %s] ringback", s->user);
  else
    g_strlcpy (buf, "[media] ringback", len);
  return buf;
}

static gboolean
add_spec (TuneSpecs *specs, const TdConfig *config, const char *user, const char *value,
          guint line, GError **error)
{
  Spec s = { g_strdup (user), g_strdup (value), NULL, line };
  char who[128];

  if (g_str_has_prefix (value, TONE_PREFIX)) {
    /* Checked here, without generating it: this runs on the SIP thread. */
    if (!g_strv_contains (tones, value + strlen (TONE_PREFIX))) {
      g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE,
                   "%s:%u: %s: \"%s\" is no tone (tone:cn, tone:us or tone:eu)", config->path,
                   line, spec_who (&s, who, sizeof who), value);
      spec_clear (&s);
      return FALSE;
    }
  } else if (strcmp (value, "none") != 0) {
    s.path = g_path_is_absolute (value) || !config->dir
               ? g_strdup (value) : g_build_filename (config->dir, value, NULL);
  }
  g_array_append_val (specs->specs, s);
  return TRUE;
}

TuneSpecs *
tune_specs_read (const TdConfig *config, GError **error)
{
  g_autoptr (TuneSpecs) specs = g_new0 (TuneSpecs, 1);
  guint line = 0;
  const char *fallback = td_config_plugin_value (config, "ringback", "tune", &line);
  GHashTableIter it;
  TdUser *user;

  specs->config_path = g_strdup (config->path);
  specs->specs = g_array_new (FALSE, TRUE, sizeof (Spec));
  g_array_set_clear_func (specs->specs, spec_clear);
  if (fallback && *fallback && !add_spec (specs, config, NULL, fallback, line, error))
    return NULL;
  g_hash_table_iter_init (&it, config->users);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &user)) {
    const char *value = td_user_get (user, "ringback");
    if (value && !add_spec (specs, config, user->name, value,
                            GPOINTER_TO_UINT (g_hash_table_lookup (user->setting_lines,
                                                                   "ringback")), error))
      return NULL;
  }
  return g_steal_pointer (&specs);
}

gboolean
tune_specs_check_files (const TuneSpecs *specs, GError **error)
{
  for (guint i = 0; i < specs->specs->len; i++) {
    const Spec *s = &g_array_index (specs->specs, Spec, i);
    GStatBuf st;
    char who[128];

    if (!s->path)
      continue;
    if (g_stat (s->path, &st) != 0 || !S_ISREG (st.st_mode)) {
      int saved = errno;
      g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE, "%s:%u: %s: %s: %s",
                   specs->config_path, s->line, spec_who (s, who, sizeof who), s->path,
                   g_stat (s->path, &st) != 0 ? g_strerror (saved) : "not a regular file");
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- sets ------------------------------------------------------------------ */

static TuneSet *
set_new (void)
{
  TuneSet *set = g_new0 (TuneSet, 1);
  g_atomic_ref_count_init (&set->ref);
  set->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, entry_free);
  set->users = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return set;
}

TuneSet *
tune_set_ref (TuneSet *set)
{
  g_atomic_ref_count_inc (&set->ref);
  return set;
}

void
tune_set_unref (TuneSet *set)
{
  if (!set || !g_atomic_ref_count_dec (&set->ref))
    return;
  g_hash_table_unref (set->users);
  g_hash_table_unref (set->entries);
  g_free (set);
}

/* The tune of one spec, loaded once per source; NULL for "none". */
static gboolean
entry_for (TuneSet *set, const TuneSet *previous, const TuneSpecs *specs, const Spec *s,
           TdTune **out, GError **error)
{
  const char *source = s->path ? s->path : s->value;
  g_autoptr (GError) local = NULL;
  Entry *e = g_hash_table_lookup (set->entries, source), *old;
  GStatBuf st = { 0 };
  char who[128];

  *out = NULL;
  if (!s->path && !g_str_has_prefix (s->value, TONE_PREFIX))
    return TRUE;   /* none */
  if (e) {
    *out = e->tune;
    return TRUE;
  }
  e = g_new0 (Entry, 1);
  if (s->path && g_stat (s->path, &st) == 0) {
    e->mtime = (gint64) st.st_mtime;
    e->size = st.st_size;
  }
  old = previous ? g_hash_table_lookup (previous->entries, source) : NULL;
  if (old && old->mtime == e->mtime && old->size == e->size)
    e->tune = td_tune_ref (old->tune);   /* unchanged: keep it, no decoding */
  else if (s->path)
    e->tune = td_tune_load (s->path, &local);
  else
    e->tune = td_tune_new_tone (s->value + strlen (TONE_PREFIX), &local);
  if (!e->tune) {
    g_free (e);
    g_set_error (error, TD_CONFIG_ERROR, TD_CONFIG_ERROR_VALUE, "%s:%u: %s: %s",
                 specs->config_path, s->line, spec_who (s, who, sizeof who), local->message);
    return FALSE;
  }
  g_hash_table_insert (set->entries, g_strdup (source), e);
  *out = e->tune;
  return TRUE;
}

TuneSet *
tune_set_load (const TuneSpecs *specs, const TuneSet *previous, GError **error)
{
  g_autoptr (TuneSet) set = set_new ();

  for (guint i = 0; i < specs->specs->len; i++) {
    const Spec *s = &g_array_index (specs->specs, Spec, i);
    TdTune *tune;

    if (!entry_for (set, previous, specs, s, &tune, error))
      return NULL;
    if (s->user)
      g_hash_table_insert (set->users, g_strdup (s->user), tune);
    else
      set->fallback = tune;
  }
  return g_steal_pointer (&set);
}

TdTune *
tune_set_for (const TuneSet *set, const char *user)
{
  gpointer tune;

  if (user && g_hash_table_lookup_extended (set->users, user, NULL, &tune))
    return tune;
  return set->fallback;
}

guint
tune_set_size (const TuneSet *set)
{
  return g_hash_table_size (set->entries);
}
