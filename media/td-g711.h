/* td-g711: ITU-T G.711 µ-law (PCMU) and A-law (PCMA) for one sample.
 *
 * Bit-exact with the ITU-T G.191 Software Tool Library reference (g711.c):
 * the linear side is 16-bit PCM of which µ-law uses the top 14 bits and
 * A-law the top 13, negative samples quantise by their one's complement (so
 * -1 encodes like 0), and the encoded bytes carry G.711's inversions (µ-law
 * all bits, A-law the even bits) as they go on the wire. Table-free: a few
 * shifts per sample, fast enough to encode a whole tune at load time. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The encodings of digital silence, for padding frames. */
#define TD_G711_ULAW_SILENCE 0xFF
#define TD_G711_ALAW_SILENCE 0xD5

guint8 td_g711_ulaw_encode (gint16 s);
guint8 td_g711_alaw_encode (gint16 s);
gint16 td_g711_ulaw_decode (guint8 u);
gint16 td_g711_alaw_decode (guint8 a);

G_END_DECLS
