#!/usr/bin/env python3
"""Colour ringback with real phones through tandem (issue 10).

The sample configuration (bob's tune is config/tunes/ringback.wav), plus
alice's `ringback = tone:eu`. baresip 1.0 is alice (answers by `accept`),
linphonec 5.1 is bob (no -a: answers by `answer`), a second baresip is carol,
whose first codec is G.722. Each caller's callee rings for RING seconds:
 1. alice (baresip) calls bob: tandem answers baresip with its own 183 and
    SDP, baresip hears bob's tune (its RTP counters and what it decoded),
    bob answers, baresip hears bob's voice on the same stream (one SSRC),
    with no re-INVITE and the 183's SDP in the 200;
 2. bob (linphone) calls alice: the same from linphone's side (its SIP log,
    its bandwidth reports, what it recorded), alice's tune being tone:eu;
 3. carol (baresip, G.722 first) calls bob: the 183 chose G.722 (baresip
    decodes G.722), then bob's answer either matches or tandem re-INVITEs.
Every call ends cleanly; tandem's CDRs have them answered, its log no
warning. What each phone decoded is checked with a Goertzel detector: the
phones send a 300 Hz tone (no tune has it), the tune comes first, then the
voice, once.

Exit status 0 when every step passed, 1 otherwise, 77 without the phones.
Usage: tests/phones/ringback.py [--build build] [--keep] [--work DIR] [--ring S]
"""

import argparse
import glob
import math
import os
import re
import shutil
import socket
import struct
import threading
import time
import wave

import phones
from phones import (DOMAIN, StepFailed, Baresip, Linphone, Tandem, WAIT, TALK, baresip_registers,
                    file_size, linphone_registers, linphone_rtp_blocks, pick_ports, sample_passwords,
                    write_tone)
from transfer import dump_received

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
    if before.count("t") < need or before.count("?") > 3:   # '?': windows across a tone's edge
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


def linphone_heard(l, offset, path, ring, tune_hz):
    """linphone's recording of a call (its `record` file), which it writes
    in pieces: each stream of the call (the early one, then the one after a
    re-INVITE) is appended at that stream's rate (48 kHz for Opus, 8 kHz
    for G.711) under the header of the first; its log says where and at
    which rate each begins."""
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
    text = ""
    for (start, rate), (end, _) in zip(pieces, pieces[1:] + [[len(data) - at, None]]):
        chunk = data[at + start:at + end]
        text += classify(struct.unpack("<%dh" % (len(chunk) // 2), chunk[:len(chunk) // 2 * 2]),
                         rate or 8000, tune_hz)
    return tune_then_voice(text, "%s (pieces at %s Hz)" % (os.path.basename(path), "/".join(
        str(r) for _, r in pieces)), ring, tune_hz)


def newest(pattern, since):
    """The newest file matching pattern written after time since."""
    found = [p for p in glob.glob(pattern) if os.path.getmtime(p) >= since]
    if not found:
        raise StepFailed("no %s" % pattern)
    return max(found, key=os.path.getmtime)


# ---- what reached a phone: its RTP, read off the loopback ----------------------------------

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
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
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
        with self.lock:
            return len(self.packets)

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


def packet_letter(p):
    """One packet's G.711 audio as classify() would name it ('-' for other
    codecs): 20 ms is enough to tell the phones' 300 Hz from a tune."""
    if p[6] not in G711:
        return "-"
    table = G711[p[6]]
    x = [table[b] for b in p[7]]
    peak = math.sqrt(2 * sum(v * v for v in x) / len(x)) if x else 0
    if peak < 150:
        return "."
    return "v" if goertzel(x, VOICE_HZ, 8000) > 0.6 * peak else "t"


def one_stream(packets, answered_at):
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
    letters = "".join(packet_letter(p) for p in packets)
    shown = re.sub(r"(.)\1*", lambda m: "%s%d" % (m.group(1), len(m.group(0))), letters)
    detail = ("%d packets, SSRC %s, payload types %s, sequence jumps %s, timestamps going back %s, "
              "markers at packets %s; per packet: %s" % (
                  len(packets), ", ".join(ssrcs), sorted(set(p[6] for p in packets)), jumps[:3] or "none",
                  back[:3] or "none", markers[:6], shown))
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
    if "v" in before:
        raise StepFailed("the callee's audio before the marker: " + detail)
    if after[0] != "-" and (after[0] != "v" or after.count("t") > 1 or
                            after.count("v") < 0.9 * (len(after) - after.count(".") - after.count("-"))):
        raise StepFailed("the marked packet does not begin the callee's audio: " + detail)
    return detail


# ---- what tandem and the phones logged -----------------------------------------------

SIP_LINE = re.compile(r"tandem-sip: (send|recv) \d+ bytes (?:to|from) \S+:(\d+): ([^|]+?) \| "
                      r"Call-ID (\S+) \| CSeq ([^|]+?) \|")


def tandem_sip(tandem, since, port):
    """(direction, first line, CSeq) of each message tandem logged to or
    from the phone on port since a mark, REGISTERs aside."""
    out = []
    for line in tandem.log.lines[since:]:
        m = SIP_LINE.search(line)
        if m and int(m.group(2)) == port and "REGISTER" not in m.group(5):
            out.append((m.group(1), m.group(3).strip(), m.group(5).strip()))
    return out


def no_warnings(tandem, since):
    bad = tandem.log.find(r" (WARNING|CRITICAL|ERROR) ", since)
    if bad:
        raise StepFailed("; ".join(bad[:4]))


def ringback_line(tandem, since):
    """tandem's info line for the tune it plays, e.g. 'ringback FILE to the
    caller (PCMU, payload type 0)'; '' when it logs none."""
    lines = tandem.log.find(r"ringback .* to the (caller|transferee)", since)
    return re.sub(r".*?: (call \S+: )?", "", lines[-1], count=1) if lines else ""


def sip_messages(text):
    """(first line, CSeq, body) of each whole SIP message in a phone's log."""
    out = []
    for m in re.finditer(r"(SIP/2\.0 \d{3} [^\r\n]*|[A-Z]+ sip:\S+ SIP/2\.0)\r?\n(.*?)\r?\n\r?\n", text,
                         re.S):
        head = m.group(2)
        cseq = re.search(r"^CSeq:\s*(.+?)\s*$", head, re.M | re.I)
        length = re.search(r"^(?:Content-Length|l):\s*(\d+)", head, re.M | re.I)
        n = int(length.group(1)) if length else 0
        body = text[m.end():m.end() + n] if n else ""
        out.append((m.group(1).strip(), cseq.group(1) if cseq else "", body.replace("\r", "")))
    return out


def early_and_final_sdp(text, what):
    """The SDP of the 183 and of the 200 to the caller's INVITE that a
    phone's log holds; (183 SDP, 200 SDP). what: the phone, for errors."""
    got = {}
    for first, cseq, body in sip_messages(text):
        code = first.split(" ")[1] if first.startswith("SIP/2.0") else None
        if cseq.endswith("INVITE") and code in ("183", "200") and "m=audio" in body:
            got.setdefault(code, body)
    if "183" not in got:
        raise StepFailed("%s's log holds no 183 with SDP" % what)
    if "200" not in got:
        raise StepFailed("%s's log holds no 200 with SDP" % what)
    return got["183"], got["200"]


def sdp_summary(sdp):
    o = re.search(r"^o=(.*)$", sdp, re.M)
    m = re.search(r"^m=(.*)$", sdp, re.M)
    c = re.search(r"^c=(.*)$", sdp, re.M)
    rtpmaps = re.findall(r"^a=rtpmap:(\d+ \S+)", sdp, re.M)
    return "o=%s, m=%s, c=%s, %s" % (o.group(1) if o else "?", m.group(1) if m else "?",
                                      c.group(1) if c else "?", ", ".join(rtpmaps))


def same_sdp(early, final):
    if early.strip() != final.strip():
        raise StepFailed("the 200's SDP differs from the 183's: 183 [%s], 200 [%s]"
                         % (sdp_summary(early), sdp_summary(final)))
    return "the 200 carries the 183's SDP (%s)" % sdp_summary(early)


def read_text(path, offset=0):
    """A log from byte offset, its CRs kept (SIP's Content-Length counts them)."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def received_200(dump, since):
    """The first 200 to an INVITE with SDP tandem received since a byte
    offset of its transport dump: the callee's answer."""
    for (call_id, cseq, word), msg in dump_received(dump, since).items():
        if word == "200" and cseq and cseq.endswith("INVITE") and "m=audio" in msg:
            return msg
    raise StepFailed("tandem received no 200 with SDP (its transport dump)")


def first_codec(sdp):
    """The encoding name of the first format of the first m= line."""
    m = re.search(r"^m=audio \d+ \S+ (\d+)", sdp, re.M)
    if not m:
        return None
    rtpmap = re.search(r"^a=rtpmap:%s ([^/\s]+)" % m.group(1), sdp, re.M)
    static = {"0": "PCMU", "8": "PCMA", "9": "G722"}
    return (rtpmap.group(1) if rtpmap else static.get(m.group(1), m.group(1))).upper()


# ---- baresip's own reports -------------------------------------------------------------

def baresip_audio(b):
    """baresip's current call's audio stream, from its audio_debug: TX
    packets, received packets per RTCP member (one per SSRC heard),
    the decoder and the direction."""
    text = b.command("audio_debug").get("data", "")
    tx = re.search(r"TX: packets=(\d+)", text)
    if not tx:
        raise StepFailed("%s: no audio stream (%s)" % (b.user, text.strip()[:200]))
    decode = re.search(r"decode: (\S+) (\d+)Hz", text)
    direction = re.search(r"audio dir=(\w+)", text)
    # One RTCP member per SSRC heard; those RTP came from have an IP= line.
    members, rtcp_only = {}, []
    for block in re.split(r"\n\s*member ", text)[1:]:
        ssrc = block.split(":", 1)[0]
        rcvd = re.match(r"[^\n]*\n\s*IP=\S+ psent=\d+ rcvd=(\d+)", block)
        if rcvd:
            members[ssrc] = int(rcvd.group(1))
        else:
            rtcp_only.append(ssrc)
    return {"tx": int(tx.group(1)), "rx": sum(members.values()), "members": members,
            "rtcp_only": rtcp_only,
            "codec": decode.group(1).upper() if decode else None,
            "rate": int(decode.group(2)) if decode else 0,
            "dir": direction.group(1) if direction else "?"}


def baresip_over(b, seconds):
    """(before, after, packets sent, packets received) over `seconds`."""
    before = baresip_audio(b)
    time.sleep(seconds)
    after = baresip_audio(b)
    return before, after, after["tx"] - before["tx"], after["rx"] - before["rx"]


def still_ringing(b, since, who):
    ev = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 0, since)
    if ev:
        raise StepFailed("%s: %s while the callee still rang" % (who, ev["type"]))


# ---- linphone's own reports --------------------------------------------------------------

def linphone_download(l, offset):
    """The download rates (kbit/s) of linphone's audio streams in its
    once-a-second 'Bandwidth usage' reports since a byte offset."""
    return [float(d) for d in re.findall(r"Stream #0 \(audio\).*?RTP : \[d=([\d.]+),",
                                         read_text(l.sip_log, offset))]


def linphone_incoming(l, since):
    line = l.log.wait(r"Receiving new incoming call .*assigned id (\d+)", WAIT, since)
    if not line:
        raise StepFailed("linphone reports no incoming call")
    return int(re.search(r"assigned id (\d+)", line).group(1))


# ---- the flows ----------------------------------------------------------------------------

class Marks:
    """Where every log stood when a flow began."""

    def __init__(self, tandem, dump, *phones_):
        self.tandem, self.dump, self.time = tandem.log.mark(), file_size(dump), time.time()
        self.events = {p.user: p.mark() for p in phones_ if isinstance(p, Baresip)}
        self.logs = {p.user: p.log.mark() for p in phones_}
        self.sip = {p.user: file_size(p.sip_log) for p in phones_ if isinstance(p, Linphone)}
        self.blog = {p.user: file_size(p.log.file.name) for p in phones_ if isinstance(p, Baresip)}


def watched(watch, mark, state, path):
    """one_stream() on what the watch saw since mark; every header into path."""
    if watch.error:
        return "not checked: no packet socket on lo (%s)" % watch.error
    if "answered" not in state:
        raise StepFailed("the call was not answered")
    packets = watch.since(mark)
    with open(path, "w") as f:
        for p in packets:
            f.write("%+.3f port %d ssrc 0x%08x seq %d ts %d%s pt %d\n" % (
                p[0] - state["answered"], p[1], p[2], p[3], p[4], " M" if p[5] else "", p[6]))
    return one_stream(packets, state["answered"])


def sent_to(tandem, since, port):
    return [first for direction, first, _ in tandem_sip(tandem, since, port) if direction == "send"]


def reinvites_to(tandem, since, port):
    return [x for x in tandem_sip(tandem, since, port) if x[0] == "send" and x[1] == "INVITE"]


def baresip_calls_bob(run, tandem, caller, bob, dump, ring, codec, prefix):
    """caller (a baresip) calls bob (linphonec, answering after ring s):
    the tune as early media, then bob. codec: what the 183 must choose
    (the caller's first)."""
    m = Marks(tandem, dump, caller, bob)
    state = {}
    watch = caller.watch
    wmark = watch.mark()

    def rings():
        state["dialled"] = time.monotonic()
        r = caller.command("dial", "sip:bob@%s" % DOMAIN)
        if not r.get("ok"):
            raise StepFailed("baresip dial: %s" % r.get("data"))
        n = linphone_incoming(bob, m.logs["bob"])
        ev = caller.wait_event({"CALL_PROGRESS", "CALL_RINGING", "CALL_ESTABLISHED", "CALL_CLOSED"},
                               WAIT, m.events[caller.user])
        if ev and ev["type"] == "CALL_RINGING":   # a 180 first: a 183 may still follow
            ev = caller.wait_event({"CALL_PROGRESS"}, 1, m.events[caller.user]) or ev
        sent = sent_to(tandem, m.tandem, caller.port)
        if not ev or ev["type"] != "CALL_PROGRESS":
            raise StepFailed("baresip: %s, not early media (CALL_PROGRESS); tandem sent it: %s"
                             % (ev["type"] if ev else "nothing", ", ".join(sent)))
        # baresip may tell before tandem's log line is read.
        tandem.log.wait(r"send \d+ bytes to \S+:%d: 183 " % caller.port, WAIT, m.tandem)
        sent = sent_to(tandem, m.tandem, caller.port)
        if "183 Session Progress" not in sent or "180 Ringing" in sent:
            raise StepFailed("tandem sent baresip: %s" % ", ".join(sent))
        progress = caller.log.find(r"SIP Progress: 18\d", m.logs[caller.user])
        return "linphone rings (its call %d); tandem sent baresip %s; baresip: %s; tandem: %s" % (
            n, ", ".join(sent), phones.ANSI.sub("", progress[-1]).strip() if progress else "-",
            ringback_line(tandem, m.tandem) or "(no ringback line)")

    def hears_tune():
        if not caller.wait_event({"CALL_RTPESTAB"}, WAIT, m.events[caller.user]):
            raise StepFailed("baresip received no RTP while bob rang")
        before, after, tx, rx = baresip_over(caller, TALK)
        still_ringing(caller, m.events[caller.user], "baresip")
        state["members"] = after["members"]
        detail = ("baresip decodes %s/%d, received %d packets in %d s (RTP from %s), sent %d"
                  % (after["codec"], after["rate"], rx, TALK, after["members"], tx))
        if rx < 40 * TALK or after["codec"] != codec:
            raise StepFailed(detail + "; want %s, >= %d packets" % (codec, 40 * TALK))
        return detail

    def answer():
        time.sleep(max(0, ring - (time.monotonic() - state["dialled"])))
        still_ringing(caller, m.events[caller.user], "baresip")
        tsince, since = tandem.log.mark(), caller.mark()
        state["answered"] = time.monotonic()
        bob.send("answer")
        ev = caller.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT, since)
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("baresip: %s" % (ev.get("param") if ev else "no answer within %d s" % WAIT))
        if not bob.log.wait(r"Call \d+ with .* connected", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call connected")
        before, after, tx, rx = baresip_over(caller, TALK)
        answered = first_codec(received_200(dump, m.dump))
        reinvites = reinvites_to(tandem, tsince, caller.port)
        state["reinvited"] = bool(reinvites)
        detail = ("established; in %d s baresip sent %d, received %d (%s, %s/%d; RTP from %s, "
                  "RTCP alone from %s); bob answered %s; tandem re-INVITEd baresip %d time(s)"
                  % (TALK, tx, rx, after["dir"], after["codec"], after["rate"], after["members"],
                     after["rtcp_only"] or "none", answered, len(reinvites)))
        if tx < 40 * TALK or rx < 40 * TALK or after["dir"] != "sendrecv":
            raise StepFailed("no RTP both ways: " + detail)
        # One outgoing RTP context per leg: the tune's SSRC carries bob's voice.
        if set(after["members"]) != set(state.get("members", {})):
            raise StepFailed("the SSRC changed at the answer: " + detail)
        if answered == codec and reinvites:
            raise StepFailed("a re-INVITE though the codec matched: " + detail)
        if answered != codec and len(reinvites) != 1:
            raise StepFailed("bob answered in another codec: want one re-INVITE: " + detail)
        if after["codec"] != answered:
            raise StepFailed("baresip does not decode what bob sends: " + detail)
        return detail

    def hangup():
        since = caller.mark()
        caller.command("hangup")
        if not caller.wait_event({"CALL_CLOSED"}, WAIT, since):
            raise StepFailed("baresip: no CALL_CLOSED")
        if not bob.log.wait(r"Call \d+ .*ended", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call ended")
        early, final = early_and_final_sdp(read_text(caller.log.file.name, m.blog[caller.user]),
                                           "baresip")
        return same_sdp(early, final)

    if not run.step(prefix + "bob's phone rings; baresip gets tandem's 183", rings):
        caller.command("hangup")
        return
    if run.step(prefix + "baresip hears the tune while bob rings (its RTP counters)", hears_tune):
        run.step(prefix + "bob answers: bob's voice on the same stream", answer)
    else:
        bob.send("answer")
    run.step(prefix + "baresip hangs up; the 200's SDP is the 183's (baresip's SIP trace)", hangup)
    run.step(prefix + "what reached baresip: one RTP stream (headers off the loopback)",
             lambda: watched(watch, wmark, state, os.path.join(os.path.dirname(caller.snd),
                                                               "rtp-to-%s.log" % caller.user)))
    run.step(prefix + "baresip heard the tune, then bob (its recording)",
             lambda: baresip_heard(caller, m.time, ring, not state.get("reinvited")))
    run.step(prefix + "tandem logged no warning", lambda: no_warnings(tandem, m.tandem))


def linphone_calls_alice(run, tandem, bob, alice, dump, ring, prefix):
    """bob (linphonec) calls alice (baresip, accepting after ring s), whose
    tune is tone:eu: early media from linphone's side."""
    m = Marks(tandem, dump, bob, alice)
    state = {}
    watch = bob.watch
    wmark = watch.mark()

    def rings():
        state["dialled"] = time.monotonic()
        bob.send("record %s" % record)   # this call's own file
        bob.send("call sip:alice@%s" % DOMAIN)
        if not alice.wait_event({"CALL_INCOMING"}, WAIT, m.events["alice"]):
            raise StepFailed("baresip reports no incoming call")
        deadline = time.monotonic() + WAIT
        while "183 Session Progress" not in sent_to(tandem, m.tandem, bob.port):
            if time.monotonic() > deadline:
                raise StepFailed("tandem sent linphone: %s" % ", ".join(sent_to(tandem, m.tandem, bob.port)))
            time.sleep(0.1)
        sent = sent_to(tandem, m.tandem, bob.port)
        if "180 Ringing" in sent:
            raise StepFailed("tandem sent linphone: %s" % ", ".join(sent))
        early = bob.log.wait(r"Call \d+ .*(early media|ringing)", WAIT, m.logs["bob"])
        return "baresip rings; tandem sent linphone %s; linphone: %s; tandem: %s" % (
            ", ".join(sent), early.replace("linphonec> ", "").strip() if early else "-",
            ringback_line(tandem, m.tandem) or "(no ringback line)")

    def hears_tune():
        offset = file_size(bob.sip_log)
        time.sleep(TALK)
        still_ringing(alice, m.events["alice"], "baresip")
        rates = linphone_download(bob, offset)
        detail = "linphone's audio download while alice rang: %s kbit/s" % (rates or "no report")
        if not rates or max(rates) < 20:
            raise StepFailed(detail)
        return detail

    def answer():
        time.sleep(max(0, ring - (time.monotonic() - state["dialled"])))
        tsince, since = tandem.log.mark(), alice.mark()
        state["answered"] = time.monotonic()
        r = alice.command("accept")
        if not r.get("ok"):
            raise StepFailed("baresip accept: %s" % r.get("data"))
        ev = alice.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT, since)
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("baresip: %s" % (ev.get("param") if ev else "not established"))
        if not bob.log.wait(r"Call \d+ with .* connected", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call connected")
        before, after, tx, rx = baresip_over(alice, TALK)
        early, _ = early_and_final_sdp(read_text(bob.sip_log, m.sip["bob"]), "linphone")
        state["early"] = early
        chosen, answered = first_codec(early), first_codec(received_200(dump, m.dump))
        reinvites = reinvites_to(tandem, tsince, bob.port)
        detail = ("established; in %d s baresip sent %d, received %d (%s, %s); the 183 chose %s, "
                  "alice answered %s; tandem re-INVITEd linphone %d time(s)"
                  % (TALK, tx, rx, after["dir"], after["codec"], chosen, answered, len(reinvites)))
        if tx < 40 * TALK or rx < 40 * TALK or after["dir"] != "sendrecv":
            raise StepFailed("no RTP both ways: " + detail)
        if (chosen == answered) != (not reinvites) or len(reinvites) > 1:
            raise StepFailed("want a re-INVITE exactly when the codecs differ: " + detail)
        return detail

    def hangup():
        since = bob.log.mark()
        bob.send("terminate")
        if not alice.wait_event({"CALL_CLOSED"}, WAIT, m.events["alice"]):
            raise StepFailed("baresip: no CALL_CLOSED")
        if not bob.log.wait(r"Call \d+ .*ended", WAIT, since):
            raise StepFailed("linphone does not report the call ended")
        blocks = linphone_rtp_blocks(bob.sip_log, m.sip["bob"])
        early, final = early_and_final_sdp(read_text(bob.sip_log, m.sip["bob"]), "linphone")
        return "linphone's streams (sent, received): %s; %s" % (blocks, same_sdp(early, final))

    record = os.path.join(os.path.dirname(bob.record), "linphone-heard-ringback.wav")

    if not run.step(prefix + "alice's phone rings; linphone gets tandem's 183", rings):
        bob.send("terminate")
        return
    if not run.step(prefix + "linphone receives the tune while alice rings (its bandwidth reports)",
                    hears_tune):
        pass
    run.step(prefix + "alice answers: RTP both ways", answer)
    run.step(prefix + "linphone hangs up; the 200's SDP is the 183's (linphone's SIP log)", hangup)
    run.step(prefix + "what reached linphone: one RTP stream (headers off the loopback)",
             lambda: watched(watch, wmark, state, os.path.join(os.path.dirname(bob.sip_log),
                                                               "rtp-to-bob.log")))
    run.step(prefix + "linphone heard tone:eu, then alice (its recording)",
             lambda: linphone_heard(bob, m.sip["bob"], record, ring, EU_HZ))
    run.step(prefix + "tandem logged no warning", lambda: no_warnings(tandem, m.tandem))


# ---- the run -------------------------------------------------------------------------------

def sample_ringback(conf):
    """[plugins] enabled names ringback and [user bob] has a tune: the sample as the issue has it."""
    text = open(conf).read()
    enabled = re.search(r"^enabled\s*=\s*([^#\n]*)", text, re.M)
    bob = re.search(r"^\[user bob\]\n(?:(?!\[).*\n)*?ringback\s*=\s*(\S+)", text, re.M)
    if not enabled or "ringback" not in enabled.group(1).split(";") or not bob:
        raise StepFailed("config/tandem.conf enables no ringback plugin or gives bob no tune")
    return bob.group(1)


def scenario(run, args, work, procs):
    sip_port, a_port, b_port, c_port = pick_ports(4, span=2)
    audio = os.path.join(work, "voice.wav")
    write_tone(audio, seconds=240, freq=VOICE_HZ)   # baresip's aufile hangs up when its file ends
    dump = os.path.join(work, "tandem-sip.dump")
    os.environ["TPORT_DUMP"] = dump   # Sofia writes every message tandem receives, whole
    state = {}

    def start_tandem():
        state["tune"] = sample_ringback(os.path.join(phones.SOURCE_ROOT, "config", "tandem.conf"))
        t = Tandem(args.build, work, sip_port, additions=[(("user alice", "ringback"), "tone:eu")])
        procs.append(t)
        state["tandem"] = t
        return "on 127.0.0.1:%d; bob's tune %s, alice's tone:eu" % (sip_port, state["tune"])

    if not run.step("tandem starts on a copy of config/tandem.conf", start_tandem):
        return False
    tandem = state["tandem"]
    passwords = sample_passwords(tandem.conf)

    def baresip(user, port, audio, **kw):
        snd = os.path.join(work, user + "-heard")
        os.makedirs(snd)
        b = Baresip(work, user, passwords[user], port, (port + 10, port + 59), port + 100, sip_port,
                    audio, name=user + "-baresip", sip_trace=True,
                    extra=["module sndfile.so", "snd_path %s" % snd] + kw.pop("extra", []), **kw)
        procs.append(b)
        b.port, b.snd = port, snd
        b.watch = RtpWatch((port + 10, port + 59))
        procs.append(b.watch)
        return b

    alice = baresip("alice", a_port, audio, answermode="manual")
    # aufile does not resample: without ausrc_srate, an 8 kHz file sends
    # nothing in G.722 ("No such device"), a 16 kHz one nothing in PCMU.
    carol = baresip("carol", c_port, audio, codecs="G722/16000/1,PCMU/8000/1",
                    extra=["module g722.so", "ausrc_srate 8000"])
    bob = Linphone(work, "bob", passwords["bob"], b_port, (b_port + 10, b_port + 59), sip_port,
                   audio, 0, auto_answer=False)
    procs.append(bob)
    bob.port = b_port
    bob.watch = RtpWatch((b_port + 10, b_port + 59))
    procs.append(bob.watch)
    if not all([run.step("baresip (alice) registers", lambda: baresip_registers(alice)),
                run.step("baresip (carol) registers", lambda: baresip_registers(carol)),
                run.step("linphone (bob) registers", lambda: linphone_registers(bob))]):
        return False

    flows = [
        lambda: baresip_calls_bob(run, tandem, alice, bob, dump, args.ring, "PCMU",
                                  "1 baresip alice -> linphone bob (%s): " % state["tune"]),
        lambda: linphone_calls_alice(run, tandem, bob, alice, dump, args.ring,
                                     "2 linphone bob -> baresip alice (tone:eu): "),
        lambda: baresip_calls_bob(run, tandem, carol, bob, dump, args.ring, "G722",
                                  "3 baresip carol (G.722 first) -> linphone bob: "),
    ]
    for flow in flows:
        failed = sum(not ok for _, ok, _ in run.results)
        flow()
        if sum(not ok for _, ok, _ in run.results) > failed:
            settle(tandem, bob, alice, carol)
    run.step("tandem's CDRs: every call answered (200), hung up by its caller", lambda: cdrs(tandem))
    return True


def cdrs(tandem):
    rows = tandem.cdrs()
    want = [("alice", "bob"), ("bob", "alice"), ("carol", "bob")]
    shown = "; ".join("%s->%s %s, hung up by %s, %.0f s talk" % (r[0], r[1], r[3], r[4], r[6] or 0)
                      for r in rows)
    if [(r[0], r[1]) for r in rows] != want or any(not r[2] or r[3] != 200 or r[4] != "caller"
                                                   for r in rows):
        raise StepFailed(shown)
    return shown


def settle(tandem, bob, *baresips):
    """After a failed flow: every phone hangs up what it still has."""
    bob.send("terminate all")
    for b in baresips:
        for _ in range(2):
            b.command("hangup")
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        mark = tandem.log.mark()
        if not tandem.log.wait(r"tandem-sip: (send|recv) ", 1, mark):
            return


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(phones.SOURCE_ROOT, "build"),
                    help="meson build folder with b2bua/tandem (default: SOURCE/build)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder with all logs")
    ap.add_argument("--work", help="work folder (default: a new temporary one)")
    ap.add_argument("--ring", type=float, default=4.0,
                    help="seconds each callee rings before it answers (default 4)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    return phones.drive(args, scenario)


if __name__ == "__main__":
    raise SystemExit(main())
