"""What each party of a room heard, for tests/phones/conference.py: every
party sends its own tone (TONES), so a stretch of audio names the parties
it holds. Audio is cut into windows of 100 ms and each window gets a label:
the initials of the parties whose tone it holds ("bc": bob and carol), '.'
silent, '?' audible but none of the tones. The tones sit on whole bins of
both a 20 ms packet and a 100 ms window at 8 kHz (50 Hz apart and more),
so one party's tone leaks nothing into another's Goertzel filter. Python 3
standard library only."""

import itertools
import math

from heard import G711, goertzel
from phones import StepFailed

TONES = {"alice": 300, "bob": 500, "carol": 800}   # Hz, what each party sends
WINDOW = 0.1          # seconds
PRESENT = 0.3         # a tone is heard at this share of the window's amplitude
OWN = 0.1             # a party's own tone above this share is its echo: a failure


def label(seg, rate):
    """The window's label, and the share of its amplitude each tone has."""
    peak = math.sqrt(2 * sum(v * v for v in seg) / len(seg)) if seg else 0
    if peak < 150:
        return ".", {}
    shares = {name: goertzel(seg, hz, rate) / peak for name, hz in TONES.items()}
    heard = "".join(name[0] for name in sorted(TONES) if shares[name] > PRESENT)
    return heard or "?", shares


def windows(x, rate):
    """[(label, shares)] of each whole WINDOW of samples x."""
    size = int(rate * WINDOW)
    return [label(x[at:at + size], rate) for at in range(0, len(x) - size + 1, size)]


def runs(labels):
    """[(label, how many in a row)]."""
    return [(name, len(list(group))) for name, group in itertools.groupby(labels)]


def shown(labels):
    """Labels run-length coded: 'b x12, bc x40, . x1'."""
    return ", ".join("%s x%d" % r for r in runs(labels))


def own_echo(wins, own):
    """The largest share of `own`'s tone in any window."""
    return max([s.get(own, 0.0) for _, s in wins] or [0.0])


# ---- a recording: labels in order, without a clock ---------------------------------------

def phases_in_order(wins, want, own, what, room_s=None):
    """A recording's windows hold the phases of `want` (labels, e.g. ["b",
    "bc", "b"]) in that order, each a run of >= 1 s, with at most 3
    windows of anything else between them (the switches); nothing before
    the first phase but silence and 0.5 s of edges; never `own`'s tone.
    room_s: the time the second phase lasted by the test's clock; the
    recording's run must match it within 1 s."""
    labels = [l for l, _ in wins]
    detail = "%s: %.1f s by %.1f s windows: %s; %s's own tone at most %.2f of a window" % (
        what, len(labels) * WINDOW, WINDOW, shown(labels), own, own_echo(wins, own))
    if own_echo(wins, own) > OWN:
        raise StepFailed("%s's own tone comes back: %s" % (own, detail))
    found = runs(labels)
    at, stray, lengths = 0, 0, []
    for name in want:
        while at < len(found) and not (found[at][0] == name and found[at][1] >= 1 / WINDOW):
            if found[at][0] != "." or lengths:
                stray += found[at][1]
            at += 1
        if at == len(found):
            raise StepFailed("no %s phase (%s) where wanted: %s" % (name, " then ".join(want), detail))
        lengths.append(found[at][1] * WINDOW)
        at += 1
        # Runs of the same label split by a glitch belong to the phase.
        while at + 1 < len(found) and found[at][1] <= 3 and found[at + 1][0] == name:
            stray += found[at][1]
            lengths[-1] += (found[at][1] + found[at + 1][1]) * WINDOW
            at += 2
    limit = 3 * (len(want) - 1) + 5
    if stray > limit:
        raise StepFailed("%d windows outside the phases (want <= %d): %s" % (stray, limit, detail))
    detail += "; phases %s lasting %s s" % ("/".join(want), "/".join("%.1f" % s for s in lengths))
    if room_s is not None and len(want) > 1 and abs(lengths[1] - room_s) > 1.0:
        raise StepFailed("the %s phase lasted %.1f s, the room %.1f s: %s"
                         % (want[1], lengths[1], room_s, detail))
    return detail


# ---- RTP with arrival times: labels by the test's clock -------------------------------------

def packet_windows(packets):
    """[(arrival of its first packet, label, shares)] of each 5 G.711
    packets (100 ms) in a row. packets: (arrival, payload type, payload)
    in order; other payload types (telephone-event) are left out."""
    audio = [p for p in packets if p[1] in G711]
    out = []
    for at in range(0, len(audio) - 4, 5):
        group = audio[at:at + 5]
        x = [G711[p[1]][b] for p in group for b in p[2]]
        out.append((group[0][0],) + label(x, 8000))
    return out


def phases_by_clock(wins, phases, own, what, edge=0.3):
    """RTP to a party, by arrival: phases = [(start, end, want label)];
    inside each (edge s from its ends aside), 90% of the windows carry
    that label; no window, anywhere, carries `own`'s tone."""
    out, bad = [], []
    for start, end, want in phases:
        inside = [l for t, l, _ in wins if start + edge <= t < end - edge]
        good = inside.count(want)
        out.append("%s %d/%d (%s)" % (want, good, len(inside), shown(inside)))
        if not inside or good < 0.9 * len(inside):
            bad.append(want)
    detail = "%s by 100 ms of RTP: %s; %s's own tone at most %.2f of a window" % (
        what, "; then ".join(out), own, own_echo([(l, s) for _, l, s in wins], own))
    if own_echo([(l, s) for _, l, s in wins], own) > OWN:
        raise StepFailed("%s's own tone comes back: %s" % (own, detail))
    if bad:
        raise StepFailed("not what the phase wants (%s): %s" % (", ".join(bad), detail))
    return detail


def one_context(packets, marks, what):
    """The RTP to a party (arrival, seq, ts, ssrc, marker) keeps one
    context across the moves at `marks` (name -> time): one SSRC, every
    sequence number +1, no timestamp going back nor running ahead of the
    time between the packets by more than 1 s. Reports the packets
    around each mark."""
    if len(packets) < 50:
        raise StepFailed("%s: only %d RTP packets" % (what, len(packets)))
    ssrcs = sorted(set("0x%08x" % p[3] for p in packets))
    pairs = list(zip(packets, packets[1:]))
    jumps = [(a[1], b[1]) for a, b in pairs if (b[1] - a[1]) & 0xFFFF != 1]
    back = [(a[2], b[2]) for a, b in pairs if (b[2] - a[2]) & 0xFFFFFFFF >= 1 << 31]
    ahead = [(a[2], b[2]) for a, b in pairs
             if (b[2] - a[2]) & 0xFFFFFFFF < 1 << 31 and
             (b[2] - a[2]) & 0xFFFFFFFF > 8000 * (b[0] - a[0] + 1)]
    first = min(marks.values())
    markers = ", ".join("%+.2f s" % (p[0] - first) for p in packets if p[4]) or "none"
    around = []
    for name, t in marks.items():
        i = next((i for i, p in enumerate(packets) if p[0] >= t), None)
        if i:
            a, b = packets[i - 1], packets[i]
            near = [(y[0] - x[0], x, y) for x, y in pairs if abs(y[0] - t) <= 0.5]
            gap, x, y = max(near, key=lambda g: g[0], default=(b[0] - a[0], a, b))
            around.append("at %s seq %d -> %d, ts +%d; the longest gap within 0.5 s %.0f ms "
                          "(seq %d -> %d, ts +%d)" % (name, a[1], b[1], (b[2] - a[2]) & 0xFFFFFFFF,
                                                      1000 * gap, x[1], y[1],
                                                      (y[2] - x[2]) & 0xFFFFFFFF))
    detail = ("%s: %d packets, SSRC %s, sequence jumps %s, timestamps back %s, ahead %s, "
              "markers at %s from %s; %s" % (what, len(packets), ", ".join(ssrcs), jumps[:3] or "none",
                                             back[:3] or "none", ahead[:3] or "none", markers,
                                             min(marks, key=marks.get), "; ".join(around)))
    if len(ssrcs) != 1 or jumps or back or ahead:
        raise StepFailed(detail)
    return detail
