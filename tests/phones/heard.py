"""What a phone heard, for tests/phones/ringback.py: its own recording
read with a Goertzel detector, and the RTP that reached it read off the
loopback interface (G.711 decoded). Python 3 standard library only.

The phones send VOICE_HZ, a frequency in no tune: a recording (or a
packet) is cut into letters, '.' silent, 'v' the phones' tone, 't' a tune
(with tune_hz: that frequency), '?' anything else."""

import collections
import glob
import math
import os
import re
import socket
import struct
import threading
import time
import wave

from phones import StepFailed

VOICE_HZ = 300       # what the phones send: in no tune (the chime is 520 Hz and up, tone:eu 425 Hz)
EU_HZ = 425          # tone:eu, 1 s on, 4 s off
WINDOW = 0.1         # seconds per analysed window of a recording


# ---- what a phone decoded ------------------------------------------------------------

def goertzel(seg, freq, rate):
    """Amplitude of freq in seg (a pure tone of amplitude A gives ~A)."""
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for v in seg:
        s1, s2 = v + k * s1 - s2, s1
    return 2 * math.sqrt(max(s1 * s1 + s2 * s2 - k * s1 * s2, 0.0)) / len(seg)


def read_mono(path):
    with wave.open(path) as w:
        rate, width, channels, n = w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()
        data = w.readframes(n)
    if width != 2:
        raise StepFailed("%s: %d-byte samples" % (path, width))
    x = struct.unpack("<%dh" % (len(data) // 2), data)
    return list(x[::channels]), rate


def classify(x, rate, tune_hz=None):
    """Samples as one letter per WINDOW: '.' silent, 'v' the voice
    (VOICE_HZ dominant), 't' anything else audible (a tune); with tune_hz,
    't' only when that frequency dominates ('?' otherwise)."""
    size = int(rate * WINDOW)
    out = []
    for at in range(0, len(x) - size + 1, size):
        seg = x[at:at + size]
        peak = math.sqrt(2 * sum(v * v for v in seg) / size)   # a pure tone's amplitude
        if peak < 150:
            out.append(".")
        elif goertzel(seg, VOICE_HZ, rate) > 0.6 * peak:
            out.append("v")
        elif tune_hz is None or goertzel(seg, tune_hz, rate) > 0.6 * peak:
            out.append("t")
        else:
            out.append("?")
    return "".join(out)


def tune_then_voice(text, name, ring, tune_hz=None, voice=True):
    """What the caller decoded (classify()'s letters): the tune while the
    callee rang (at least ring - 1.5 s of it, 0.5 s with tone:eu's 1 s on,
    4 s off), then the voice; nothing of the voice before, no tune after
    it (one window of the switch aside). voice=False: a recording that
    may end before the voice."""
    shown = re.sub(r"(.)\1*", lambda m: "%s%d" % (m.group(1), len(m.group(0))), text)
    first_voice = text.find("v")
    detail = "%s: %.1f s, by %.1f s windows: %s" % (name, len(text) * WINDOW, WINDOW, shown)
    if first_voice < 0 and voice:
        raise StepFailed("the voice never came: " + detail)
    if first_voice < 0:
        first_voice = len(text)
        detail += " (the recording ends at the re-INVITE)"
    before, after = text[:first_voice], text[first_voice:]
    need = (0.5 if tune_hz else ring - 1.5) / WINDOW
    # '?': windows across a tone's edges (two a burst), and a glitch or two
    bursts = len(re.findall(r"t+", before))
    if before.count("t") < need or before.count("?") > 2 * bursts + 2:
        raise StepFailed("too little of the tune before the voice (%d windows, want %d): %s"
                         % (before.count("t"), need, detail))
    heard = len(after) - after.count(".")
    if after.count("t") + after.count("?") > 1 or after.count("v") < 0.9 * heard:
        raise StepFailed("the tune after the voice began: " + detail)
    gap = len(before) - len(before.rstrip("."))
    return "%s; the voice from %.1f s, after %.1f s of silence" % (detail, first_voice * WINDOW,
                                                                   gap * WINDOW)


def baresip_heard(b, since, ring, whole):
    """baresip's sndfile recording of what it decoded in its last call.
    whole: False after a re-INVITE that changed the codec, where baresip's
    new decoder has no sndfile filter: the recording stops at the tune."""
    path = newest(os.path.join(b.snd, "dump-*-dec.wav"), since)
    x, rate = read_mono(path)
    return tune_then_voice(classify(x, rate), os.path.basename(path), ring, voice=whole)


def linphone_pieces(l, offset, path):
    """linphone's recording of a call (its `record` file), which it writes
    in pieces: each stream of the call (the early one, then the one after a
    re-INVITE) is appended at that stream's rate (48 kHz for Opus, 8 kHz
    for G.711) under the header of the first; its log says where and at
    which rate each begins. [(samples, rate), ...], one per piece."""
    pieces, size = [], None
    for line in read_text(l.sip_log, offset).split("\n"):
        m = re.search(r"current data size is (\d+)", line)
        if m:
            size = int(m.group(1))
        m = re.search(r"MSFileRec: recording into (\S+)", line)
        if m:
            pieces.append([size or 0, None]) if m.group(1) == path else None
            size = None
        m = re.search(r"-->MSFileRec:\S+ from rate \[\d+\] to rate \[(\d+)\]", line)
        if m and pieces and pieces[-1][1] is None:
            pieces[-1][1] = int(m.group(1))
    data = open(path, "rb").read()
    at = data.find(b"data") + 8
    if not pieces or at < 8:
        raise StepFailed("linphone recorded nothing into %s" % path)
    out = []
    for (start, rate), (end, _) in zip(pieces, pieces[1:] + [[len(data) - at, None]]):
        chunk = data[at + start:at + end]
        out.append((struct.unpack("<%dh" % (len(chunk) // 2), chunk[:len(chunk) // 2 * 2]),
                    rate or 8000))
    return out


def linphone_heard(l, offset, path, ring, tune_hz):
    """What linphone recorded of a call (linphone_pieces), as
    tune_then_voice() sees it."""
    pieces = linphone_pieces(l, offset, path)
    text = "".join(classify(x, rate, tune_hz) for x, rate in pieces)
    plc = re.findall(r"opus decoder stats: fec (\d+) packets - plc (\d+) packets",
                     read_text(l.sip_log, offset))
    return "%s; linphone's Opus decoder concealed %s packet(s)" % (
        tune_then_voice(text, "%s (pieces at %s Hz)" % (os.path.basename(path), "/".join(
            str(r) for _, r in pieces)), ring, tune_hz), "+".join(p[1] for p in plc) or "no")


def newest(pattern, since):
    """The newest file matching pattern written after time since."""
    found = [p for p in glob.glob(pattern) if os.path.getmtime(p) >= since]
    if not found:
        raise StepFailed("no %s" % pattern)
    return max(found, key=os.path.getmtime)


# ---- what reached a phone: its RTP, read off the loopback ----------------------------------

SO_RCVBUFFORCE, SOL_PACKET, PACKET_STATISTICS = 33, 263, 6   # <asm/socket.h>, <linux/if_packet.h>


class RtpWatch:
    """The RTP headers of what tandem sends to a phone's RTP ports, read
    off the loopback interface (a packet socket: root only; without it the
    step says so and checks the phone's own reports alone)."""

    def __init__(self, ports):
        self.ports = ports          # (first, last) of the phone's RTP ports
        self.packets = []           # (arrival, dst port, ssrc, seq, timestamp, marker, pt, payload)
        self.lock = threading.Lock()
        self.error = None
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
            # Past net.core.rmem_max (root may): a busy second must not drop packets.
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 23)
            self.sock.bind(("lo", 0))
            self.sock.settimeout(0.2)
        except OSError as e:
            self.sock, self.error = None, str(e)
            return
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 14 + 20 + 8 + 12:
                continue   # lo shows each packet twice: keep the incoming copy
            ip = data[14:]
            if ip[9] != 17:
                continue
            udp = ip[(ip[0] & 15) * 4:]
            src, dst = struct.unpack("!HH", udp[:4])
            rtp = udp[8:]
            if not self.ports[0] <= dst <= self.ports[1] or rtp[0] >> 6 != 2 or 72 <= rtp[1] & 127 <= 76:
                continue   # not RTP to the phone (RTCP's types are 200-204: 72-76 without the top bit)
            seq, ts, ssrc = struct.unpack("!HII", rtp[2:12])
            with self.lock:
                self.packets.append((time.monotonic(), dst, ssrc, seq, ts, rtp[1] >> 7, rtp[1] & 127,
                                     bytes(rtp[12 + 4 * (rtp[0] & 15):])))

    def mark(self):
        """Where the watch stands (its drop count starts again from here)."""
        if self.sock:
            self.drops()
        with self.lock:
            return len(self.packets)

    def drops(self):
        """Packets the kernel dropped for this socket since the last call."""
        packets, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        return drops

    def since(self, mark):
        with self.lock:
            return self.packets[mark:]

    def close(self):
        if self.sock:
            self.running = False
            self.thread.join()
            self.sock.close()


def g711_table(alaw):
    """The 256 linear values of G.711 mu-law (PCMU) or A-law (PCMA) bytes."""
    out = []
    for b in range(256):
        if alaw:
            b ^= 0x55
            exp, mant = (b >> 4) & 7, b & 15
            x = (mant << 4) + 8 if exp == 0 else ((mant << 4) + 0x108) << (exp - 1)
            out.append(x if b & 0x80 else -x)
        else:
            b = ~b & 0xFF
            exp, mant = (b >> 4) & 7, b & 15
            x = (((mant << 3) + 0x84) << exp) - 0x84
            out.append(-x if b & 0x80 else x)
    return out


G711 = {0: g711_table(False), 8: g711_table(True)}


def packet_letter(p, tune_hz=None):
    """One packet's G.711 audio as classify() would name it ('-' for other
    codecs): 20 ms is enough to tell the phones' 300 Hz from a tune."""
    if p[6] not in G711:
        return "-"
    table = G711[p[6]]
    x = [table[b] for b in p[7]]
    peak = math.sqrt(2 * sum(v * v for v in x) / len(x)) if x else 0
    if peak < 150:
        return "."
    if goertzel(x, VOICE_HZ, 8000) > 0.6 * peak:
        return "v"
    return "t" if tune_hz is None or goertzel(x, tune_hz, 8000) > 0.6 * peak else "?"


def one_stream(packets, answered_at, tune_hz=None):
    """What reached the caller across the answer (a monotonic time): one
    SSRC, every sequence number +1, no timestamp going back, and one marker
    after the answer: on the first packet of the callee's audio (in G.711,
    the first packet that decodes as the callee's tone; no tune after it)."""
    if not packets:
        raise StepFailed("no RTP reached the phone")
    ssrcs = sorted(set("0x%08x" % p[2] for p in packets))
    pairs = list(zip(packets, packets[1:]))
    jumps = [(a[3], b[3]) for a, b in pairs if (b[3] - a[3]) & 0xFFFF != 1]
    back = [(a[4], b[4]) for a, b in pairs if (b[4] - a[4]) & 0xFFFFFFFF >= 1 << 31]
    markers = [i for i, p in enumerate(packets) if p[5]]
    switch = [i for i in markers if packets[i][0] >= answered_at]
    letters = "".join(packet_letter(p, tune_hz) for p in packets)
    shown = re.sub(r"(.)\1*", lambda m: "%s%d" % (m.group(1), len(m.group(0))), letters)
    early = [b[0] - a[0] for a, b in pairs if b[0] < answered_at]
    detail = ("%d packets, SSRC %s, payload types %s, sequence jumps %s, timestamps going back %s, "
              "markers at packets %s, longest arrival gap before the answer %.0f ms; per packet: %s" % (
                  len(packets), ", ".join(ssrcs), sorted(set(p[6] for p in packets)), jumps[:3] or "none",
                  back[:3] or "none", markers[:6], 1000 * max(early or [0]), shown))
    if len(ssrcs) != 1 or jumps or back:
        raise StepFailed(detail)
    if len(switch) != 1:
        raise StepFailed("want one marker after the answer: " + detail)
    at = switch[0]
    a, b = packets[at - 1], packets[at]
    detail += ("; the switch %.0f ms after the answer: seq %d -> %d, timestamp +%d, pt %d -> %d, "
               "%.0f ms between the packets" % (1000 * (b[0] - answered_at), a[3], b[3],
                                                (b[4] - a[4]) & 0xFFFFFFFF, a[6], b[6],
                                                1000 * (b[0] - a[0])))
    before, after = letters[:at], letters[at:]
    if "v" in before or before.count("?") > 2:
        raise StepFailed("the callee's audio (or no tune) before the marker: " + detail)
    if after[0] != "-" and (after[0] != "v" or after.count("t") > 1 or
                            after.count("v") < 0.9 * (len(after) - after.count(".") - after.count("-"))):
        raise StepFailed("the marked packet does not begin the callee's audio: " + detail)
    return detail


def read_text(path, offset=0):
    """A log from byte offset, its CRs kept (SIP's Content-Length counts them)."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def watched(watch, mark, state, path, tune_hz=None, from_tune=False):
    """one_stream() on what the watch saw since mark; every header into path.
    from_tune: the stream starts at its first packet of the tune, the
    previous party's last packets still in flight at the mark left out (a
    transferee hears its transferor until the target's tune begins; the
    mark may come before the tune or after it began)."""
    if watch.error:
        return "not checked: no packet socket on lo (%s)" % watch.error
    if "answered" not in state:
        raise StepFailed("the call was not answered")
    packets = watch.since(mark)
    dropped = watch.drops()
    if dropped:
        # Then a gap in sequence numbers may be the watch's own: not a finding.
        raise StepFailed("the watch itself dropped %d packets: try again" % dropped)
    with open(path, "w") as f:
        for p in packets:
            f.write("%+.3f port %d ssrc 0x%08x seq %d ts %d%s pt %d\n" % (
                p[0] - state["answered"], p[1], p[2], p[3], p[4], " M" if p[5] else "", p[6]))
    # The phone's RTP port is the one of its range that the call's packets
    # go to; packets to its other ports never reach the phone: another
    # test's phones and tandem, run beside this one, use them (seen in CI).
    counts = collections.Counter(p[1] for p in packets)
    if not counts:
        return one_stream(packets, state["answered"], tune_hz)
    port = counts.most_common(1)[0][0]
    mine = [p for p in packets if p[1] == port]
    before = 0
    if from_tune:
        before = next((i for i, p in enumerate(mine) if packet_letter(p, tune_hz) == "t"), 0)
        mine = mine[before:]
    summary = one_stream(mine, state["answered"], tune_hz)
    if before:
        summary += "; %d packet(s) of the previous party before the tune left out" % before
    others = len(packets) - counts[port]
    if others:
        summary += "; %d packet(s) to other ports of the range (not this phone's) left out" % others
    return summary
