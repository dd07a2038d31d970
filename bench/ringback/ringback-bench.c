/* ringback-bench: colour ringback (issue 10) at the relay level, in-process.
 *
 *   ringback-bench pacing [--callers N] [--duration S] [--sample K]
 *       N callers hearing a tune at once: loss, pacing jitter, relay CPU
 *       (--sample K: only every K-th caller's receiver reads; the others'
 *       packets go to one never-read socket, which drops them on arrival,
 *       so the relay's CPU carries less of the loopback receive path)
 *   ringback-bench switch [--switches K] [--background N] [--until-peer] [--new-ssrc]
 *       K answers: the gap between the last tune packet and the callee's
 *       first at the caller, clipping, SSRC/sequence/timestamp continuity
 *       (--new-ssrc: the per-leg option of a fresh SSRC at each switch,
 *       which the SSRC check then reports)
 *   ringback-bench memory
 *       RSS per distinct tune (30 s and 3 min WAV) and codec
 *
 * Common options: --codec pcmu|pcma|g722|opus (the tune's, pt 0/8/9/111;
 * default pcmu), --ports MIN-MAX (the relay's range, default 2000-9999:
 * clear of test-relay's 10000-19599, the flow tests' 20000-29999 and the
 * ephemeral range), --no-pin (default: the relay thread on cpu0, the bench's
 * sending and receiving threads on cpu1, so that they do not queue behind
 * each other on one core), --spin (the receivers poll without sleeping: the
 * relay's sends then never wake a thread on the other core, a cost a phone
 * on the network would not put on the relay), --nice N (the relay thread's
 * and the bare loop's: how much co-tenants on the relay's core cost it).
 * Traffic stays on 127.0.0.1; every loop is
 * bounded by its duration or count. Not a test. See README.md here. */
#define G_LOG_DOMAIN "ringback-bench"

#include <getopt.h>
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rb-common.h"
#include "rb-memory.h"
#include "rb-pacing.h"
#include "rb-switch.h"

static G_NORETURN void
usage (void)
{
  fprintf (stderr,
           "usage: ringback-bench pacing [--callers N] [--duration S] [--sample K]\n"
           "       ringback-bench switch [--switches K] [--background N] [--until-peer] [--new-ssrc]\n"
           "       ringback-bench memory\n"
           "  common: [--codec pcmu|pcma|g722|opus] [--ports MIN-MAX] [--no-pin] [--spin] [--nice N]\n");
  exit (2);
}

static gboolean
parse_codec (const char *name, TdCodec *out)
{
  for (TdCodec c = 0; c < TD_CODEC_COUNT; c++)
    if (g_ascii_strcasecmp (name, td_codec_name (c)) == 0) {
      *out = c;
      return TRUE;
    }
  return FALSE;
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "callers", required_argument, NULL, 'c' }, { "duration", required_argument, NULL, 'd' },
    { "switches", required_argument, NULL, 's' }, { "background", required_argument, NULL, 'b' },
    { "until-peer", no_argument, NULL, 'u' }, { "ports", required_argument, NULL, 'p' },
    { "no-pin", no_argument, NULL, 'P' }, { "sample", required_argument, NULL, 'K' },
    { "new-ssrc", no_argument, NULL, 'n' }, { "codec", required_argument, NULL, 'C' }, { "nice", required_argument, NULL, 'N' }, { "spin", no_argument, NULL, 'S' }, { NULL, 0, NULL, 0 },
  };
  guint callers = 500, duration = 20, sample = 1, switches = 200, background = 0;
  RbSwitchMode mode = RB_SWITCH_STOP;
  const char *what;
  unsigned lo, hi;
  int o;

  if (argc < 2)
    usage ();
  what = argv[1];
  argv[1] = argv[0];   /* getopt from the subcommand on */
  argc--;
  argv++;
  while ((o = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'c': callers = (guint) atoi (optarg); break;
    case 'd': duration = (guint) atoi (optarg); break;
    case 's': switches = (guint) atoi (optarg); break;
    case 'b': background = (guint) atoi (optarg); break;
    case 'u': mode = RB_SWITCH_UNTIL_PEER; break;
    case 'P': rb_opt.pin = FALSE; break;
    case 'S': rb_opt.spin = TRUE; break;
    case 'n': rb_opt.new_ssrc = TRUE; break;
    case 'C':
      if (!parse_codec (optarg, &rb_opt.codec))
        usage ();
      break;
    case 'N': rb_opt.nice = atoi (optarg); break;
    case 'K': sample = (guint) atoi (optarg); break;
    case 'p':
      if (sscanf (optarg, "%u-%u", &lo, &hi) != 2 || lo > hi || hi > 65535)
        usage ();
      rb_opt.port_min = (guint16) lo;
      rb_opt.port_max = (guint16) hi;
      break;
    default: usage ();
    }
  }
  if (optind != argc || callers == 0 || callers > 5000 || duration == 0 || duration > 600 ||
      switches == 0 || switches > 2000 || background > 5000)
    usage ();
  /* tunes are encoded by GStreamer (G.722, Opus) */
  gst_init (NULL, NULL);
  /* the bench's own threads inherit cpu1; rb_relay_new moves the relay's to cpu0 */
  rb_pin (0, 1);
  if (strcmp (what, "pacing") == 0)
    return rb_pacing_run (callers, duration, sample);
  if (strcmp (what, "switch") == 0)
    return rb_switch_run (switches, background, mode);
  if (strcmp (what, "memory") == 0)
    return rb_memory_run ();
  usage ();
}
