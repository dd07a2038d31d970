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
import struct
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


def classify(path, tune_hz=None):
    """The recording as one letter per WINDOW: '.' silent, 'v' the voice
    (VOICE_HZ dominant), 't' anything else audible (a tune); with tune_hz,
    't' only when that frequency dominates ('?' otherwise)."""
    x, rate = read_mono(path)
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


def tune_then_voice(path, ring, tune_hz=None):
    """What the caller decoded: the tune while the callee rang (at least
    ring - 1.5 s of it, 0.5 s with tone:eu's 1 s on, 4 s off), then the
    voice; nothing of the voice before, no tune after it (one window of
    the switch aside)."""
    text = classify(path, tune_hz)
    shown = re.sub(r"(.)\1*", lambda m: "%s%d" % (m.group(1), len(m.group(0))), text)
    first_voice = text.find("v")
    detail = "%s: %.1f s, by %.1f s windows: %s" % (os.path.basename(path), len(text) * WINDOW,
                                                     WINDOW, shown)
    if first_voice < 0:
        raise StepFailed("the voice never came: " + detail)
    before, after = text[:first_voice], text[first_voice:]
    need = (0.5 if tune_hz else ring - 1.5) / WINDOW
    if before.count("t") < need or "?" in before:
        raise StepFailed("too little of the tune before the voice (%d windows, want %d): %s"
                         % (before.count("t"), need, detail))
    heard = len(after) - after.count(".")
    if after.count("t") + after.count("?") > 1 or after.count("v") < 0.9 * heard:
        raise StepFailed("the tune after the voice began: " + detail)
    gap = len(before) - len(before.rstrip("."))
    return "%s; the voice from %.1f s, after %.1f s of silence" % (detail, first_voice * WINDOW,
                                                                   gap * WINDOW)


def newest(pattern, since):
    """The newest file matching pattern written after time since."""
    found = [p for p in glob.glob(pattern) if os.path.getmtime(p) >= since]
    if not found:
        raise StepFailed("no %s" % pattern)
    return max(found, key=os.path.getmtime)


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
    members = dict((ssrc, int(n)) for ssrc, n in
                   re.findall(r"member (0x[0-9a-f]+):.*?rcvd=(\d+)", text, re.S))
    return {"tx": int(tx.group(1)), "rx": sum(members.values()), "members": members,
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
        detail = ("baresip decodes %s/%d, received %d packets in %d s (RTCP members %s), sent %d"
                  % (after["codec"], after["rate"], rx, TALK, after["members"], tx))
        if rx < 40 * TALK or after["codec"] != codec:
            raise StepFailed(detail + "; want %s, >= %d packets" % (codec, 40 * TALK))
        return detail

    def answer():
        time.sleep(max(0, ring - (time.monotonic() - state["dialled"])))
        still_ringing(caller, m.events[caller.user], "baresip")
        tsince, since = tandem.log.mark(), caller.mark()
        bob.send("answer")
        ev = caller.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT, since)
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("baresip: %s" % (ev.get("param") if ev else "no answer within %d s" % WAIT))
        if not bob.log.wait(r"Call \d+ with .* connected", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call connected")
        before, after, tx, rx = baresip_over(caller, TALK)
        answered = first_codec(received_200(dump, m.dump))
        reinvites = reinvites_to(tandem, tsince, caller.port)
        detail = ("established; in %d s baresip sent %d, received %d (%s, %s/%d, RTCP members %s); "
                  "bob answered %s; tandem re-INVITEd baresip %d time(s)"
                  % (TALK, tx, rx, after["dir"], after["codec"], after["rate"], after["members"],
                     answered, len(reinvites)))
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
    run.step(prefix + "baresip heard the tune, then bob (its recording)", lambda: tune_then_voice(
        newest(os.path.join(caller.snd, "dump-*-dec.wav"), m.time), ring))
    run.step(prefix + "tandem logged no warning", lambda: no_warnings(tandem, m.tandem))


def linphone_calls_alice(run, tandem, bob, alice, dump, ring, prefix):
    """bob (linphonec) calls alice (baresip, accepting after ring s), whose
    tune is tone:eu: early media from linphone's side."""
    m = Marks(tandem, dump, bob, alice)
    state = {}

    def rings():
        state["dialled"] = time.monotonic()
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

    def heard():
        copy = os.path.join(os.path.dirname(bob.record), "linphone-heard-ringback.wav")
        shutil.copy(bob.record, copy)
        return tune_then_voice(copy, ring, EU_HZ)

    if not run.step(prefix + "alice's phone rings; linphone gets tandem's 183", rings):
        bob.send("terminate")
        return
    if not run.step(prefix + "linphone receives the tune while alice rings (its bandwidth reports)",
                    hears_tune):
        pass
    run.step(prefix + "alice answers: RTP both ways", answer)
    run.step(prefix + "linphone hangs up; the 200's SDP is the 183's (linphone's SIP log)", hangup)
    run.step(prefix + "linphone heard tone:eu, then alice (its recording)", heard)
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
        t = Tandem(args.build, work, sip_port, additions=[(("user alice", "ringback"), "tone:eu")])
        procs.append(t)
        state["tandem"], state["tune"] = t, sample_ringback(t.conf)
        return "on 127.0.0.1:%d; bob's tune %s, alice's tone:eu" % (sip_port, state["tune"])

    if not run.step("tandem starts on a copy of config/tandem.conf", start_tandem):
        return False
    tandem = state["tandem"]
    passwords = sample_passwords(tandem.conf)

    def baresip(user, port, **kw):
        snd = os.path.join(work, user + "-heard")
        os.makedirs(snd)
        b = Baresip(work, user, passwords[user], port, (port + 10, port + 59), port + 100, sip_port,
                    audio, name=user + "-baresip", sip_trace=True,
                    extra=["module sndfile.so", "snd_path %s" % snd] + kw.pop("extra", []), **kw)
        procs.append(b)
        b.port, b.snd = port, snd
        return b

    alice = baresip("alice", a_port, answermode="manual")
    carol = baresip("carol", c_port, codecs="G722/16000/1,PCMU/8000/1", extra=["module g722.so"])
    bob = Linphone(work, "bob", passwords["bob"], b_port, (b_port + 10, b_port + 59), sip_port,
                   audio, 0, auto_answer=False)
    procs.append(bob)
    bob.port = b_port
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
