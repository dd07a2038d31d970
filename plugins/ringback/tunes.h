/* The ringback plugin's tunes: which tune each user's callers hear.
 *
 * A value is a file (relative to the configuration's folder), a generated
 * national cadence ("tone:cn", "tone:us", "tone:eu") or "none". Each
 * distinct tune is decoded and encoded once (td-tune.h) and shared by every
 * user who names it. A set is immutable once built: a reload builds a new
 * one, in a thread, reusing the tunes of files that did not change. */
#pragma once

#include "td-plugin.h"
#include "td-tune.h"

typedef struct _TuneSet TuneSet;

/* What the configuration asks for, read on the SIP thread (no I/O): for a
 * thread to load, or for a quick check. */
typedef struct _TuneSpecs TuneSpecs;
TuneSpecs *tune_specs_read (const TdConfig *config, GError **error);
void tune_specs_free (TuneSpecs *specs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuneSpecs, tune_specs_free)
/* Every file named exists and is a regular file (a stat each): what a
 * reload can refuse at once. Errors name the file, line, user and file. */
gboolean tune_specs_check_files (const TuneSpecs *specs, GError **error);

/* Decode every tune (blocks: startup, or a thread). `previous` (may be
 * NULL): its tunes of unchanged files are reused. Errors name the file,
 * line, user (or [media] ringback) and the tune file. */
TuneSet *tune_set_load (const TuneSpecs *specs, const TuneSet *previous, GError **error);
TuneSet *tune_set_ref (TuneSet *set);
void tune_set_unref (TuneSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuneSet, tune_set_unref)

/* The tune `user`'s callers hear (theirs, else the default), or NULL for
 * none. Borrowed: valid while the set lives. */
TdTune *tune_set_for (const TuneSet *set, const char *user);
guint tune_set_size (const TuneSet *set);   /* distinct tunes */
