/* td-g711: G.711 µ-law and A-law, after the ITU-T G.191 STL reference. */
#define G_LOG_DOMAIN "tandem-g711"

#include "td-g711.h"

/* µ-law works on 14-bit magnitudes with a bias of 33 added, so that every
 * segment boundary falls on a power of two: the segment is then the
 * position of the top set bit and the mantissa the four bits below it. */
#define ULAW_BIAS 33
#define ULAW_MAX  0x1FFF

guint8
td_g711_ulaw_encode (gint16 s)
{
  /* One's complement, not negation: G.191 makes the quantiser symmetric
   * about -0.5 so that -1..-4 land on the same code as 0..3. */
  gint mag = ((s < 0 ? ~s : s) >> 2) + ULAW_BIAS;
  if (mag > ULAW_MAX)
    mag = ULAW_MAX;

  gint seg = 1;                       /* 1..8: 1 + bits in mag >> 6 */
  for (gint i = mag >> 6; i != 0; i >>= 1)
    seg++;

  guint8 code = (guint8) (((8 - seg) << 4) | (15 - ((mag >> seg) & 0xF)));
  return s >= 0 ? code | 0x80 : code;
}

gint16
td_g711_ulaw_decode (guint8 u)
{
  guint8 inv = (guint8) ~u;
  gint exponent = (inv >> 4) & 0x7;
  gint mantissa = inv & 0xF;
  gint step = 4 << (exponent + 1);
  /* The middle of the quantisation interval, minus the encoder's bias. */
  gint mag = (0x80 << exponent) + step * mantissa + step / 2 - 4 * ULAW_BIAS;
  return (gint16) (u & 0x80 ? mag : -mag);
}

guint8
td_g711_alaw_encode (gint16 s)
{
  gint mag = (s < 0 ? ~s : s) >> 4;   /* 0..2047, 12 bits */
  if (mag > 15)
    {
      /* Segments 1..7 halve the resolution each; segment 0 and 1 share it. */
      gint exponent = 1;
      while (mag > 31)
        {
          mag >>= 1;
          exponent++;
        }
      mag = (exponent << 4) | (mag - 16);
    }
  if (s >= 0)
    mag |= 0x80;
  return (guint8) (mag ^ 0x55);       /* even-bit inversion, on the wire */
}

gint16
td_g711_alaw_decode (guint8 a)
{
  gint ix = (a ^ 0x55) & 0x7F;
  gint exponent = ix >> 4;
  gint mag = ix & 0xF;
  if (exponent > 0)
    mag += 16;                        /* the implicit leading bit */
  mag = (mag << 4) + 8;               /* the middle of the interval */
  if (exponent > 1)
    mag <<= exponent - 1;
  return (gint16) (a & 0x80 ? mag : -mag);
}
