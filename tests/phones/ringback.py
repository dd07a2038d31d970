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
import os
import re
import time

import phones
from phones import (DOMAIN, StepFailed, Baresip, Linphone, Tandem, WAIT, TALK, baresip_registers,
                    file_size, linphone_registers, linphone_rtp_blocks, pick_ports, sample_passwords,
                    write_tone)
from transfer import dump_received, linphone_calls
from heard import (EU_HZ, VOICE_HZ, RtpWatch, baresip_heard, linphone_heard, read_text, watched)


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


def transfer_to_alice(run, tandem, bob, carol, alice, dump, ring, prefix):
    """bob (linphonec) calls carol (baresip, auto-answer), then transfers
    her blind to alice (accepting after ring s): while alice rings, carol
    hears alice's tune (tone:eu) on her call's stream, then alice."""
    m = Marks(tandem, dump, bob, carol, alice)
    watch = carol.watch
    state = {}

    def call():
        bob.send("call sip:carol@%s" % DOMAIN)
        ev = carol.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT, m.events["carol"])
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("carol: %s" % (ev.get("param") if ev else "no call within %d s" % WAIT))
        if not bob.log.wait(r"Call \d+ with .*carol.* connected", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call connected")
        state["call"] = linphone_calls(bob, m.logs["bob"])[-1]
        time.sleep(TALK)
        return "linphone's call %d; carol decodes %s" % (state["call"], baresip_audio(carol)["codec"])

    def transfer():
        bob.send("transfer %d sip:alice@%s" % (state["call"], DOMAIN))
        if not alice.wait_event({"CALL_INCOMING"}, WAIT, m.events["alice"]):
            raise StepFailed("alice's phone does not ring")
        state["ringing"], state["wmark"] = time.monotonic(), watch.mark()
        before, after, tx, rx = baresip_over(carol, TALK)
        still_ringing(alice, m.events["alice"], "alice")
        ended = state["call"] in linphone_calls(bob, m.logs["bob"], "ended")
        detail = ("alice rings; carol received %d packets in %d s (%s); bob's call %s; tandem: %s"
                  % (rx, TALK, after["codec"], "ended" if ended else "still up",
                     ringback_line(tandem, m.tandem) or "(no ringback line)"))
        if rx < 40 * TALK or not tandem.log.find(r"ringback tone:eu to the transferee", m.tandem):
            raise StepFailed(detail)
        return detail

    def answer():
        time.sleep(max(0, ring - (time.monotonic() - state["ringing"])))
        since = alice.mark()
        state["answered"] = time.monotonic()
        alice.command("accept")
        ev = alice.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT, since)
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("alice: %s" % (ev.get("param") if ev else "not established"))
        return talking(carol, alice)

    def hangup():
        since = carol.mark()
        carol.command("hangup")
        if not carol.wait_event({"CALL_CLOSED"}, WAIT, since):
            raise StepFailed("carol: no CALL_CLOSED")
        if not alice.wait_event({"CALL_CLOSED"}, WAIT, m.events["alice"]):
            raise StepFailed("alice: no CALL_CLOSED")
        return "carol and alice closed"

    if not run.step(prefix + "bob calls carol", call):
        bob.send("terminate")
        return
    if run.step(prefix + "bob transfers carol to alice; carol hears alice's tune while she rings",
                transfer):
        if run.step(prefix + "alice answers: carol and alice talk (both RTP counters)", answer):
            run.step(prefix + "what reached carol since alice rang: one RTP stream",
                     lambda: watched(watch, state["wmark"], state,
                                     os.path.join(os.path.dirname(carol.snd), "rtp-to-carol-2.log"),
                                     EU_HZ, from_tune=True))
        run.step(prefix + "carol hangs up", hangup)
    run.step(prefix + "tandem logged no warning", lambda: no_warnings(tandem, m.tandem))


def talking(*phones_):
    """Each baresip sends and receives RTP for TALK s, sendrecv."""
    out = []
    for b, (before, after, tx, rx) in zip(phones_, [baresip_over(b, TALK) for b in phones_]):
        out.append("%s %s sent %d, received %d in %d s" % (b.user, after["dir"], tx, rx, TALK))
        if tx < 40 * TALK or rx < 40 * TALK or after["dir"] != "sendrecv":
            raise StepFailed("; ".join(out))
    return "; ".join(out)


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
        b.watch = RtpWatch((port + 2, port + 99))   # baresip may take port + 9 (an even one)
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
    bob.watch = RtpWatch((b_port + 2, b_port + 99))
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
        lambda: transfer_to_alice(run, tandem, bob, carol, alice, dump, args.ring,
                                  "4 linphone bob transfers baresip carol to alice (tone:eu): "),
    ]
    for flow in flows:
        failed = sum(not ok for _, ok, _ in run.results)
        flow()
        if sum(not ok for _, ok, _ in run.results) > failed:
            settle(tandem, bob, alice, carol)
    run.step("tandem's CDRs: every call answered (200), hung up by its caller or transferred",
             lambda: cdrs(tandem))
    return True


def cdrs(tandem):
    want = [("alice", "bob", "caller"), ("bob", "alice", "caller"), ("carol", "bob", "caller"),
            ("bob", "carol", "transfer"), ("carol", "alice", "caller")]
    rows = tandem.cdrs(len(want))
    shown = "; ".join("%s->%s %s, hung up by %s, %.0f s talk" % (r[0], r[1], r[3], r[4], r[6] or 0)
                      for r in rows)
    if [(r[0], r[1], r[4]) for r in rows] != want or any(not r[2] or r[3] != 200 for r in rows):
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
