/* Numeric-only su_getaddrinfo() for Sofia's transports (see td-numeric-only.c). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when tandem's su_getaddrinfo() is the one Sofia's calls bind to and
 * Sofia's own is behind it: the guard is in place (the daemon refuses to
 * start otherwise). */
gboolean td_numeric_only_active (void);

G_END_DECLS
