#!/usr/bin/env python3
"""SRTP and SIP over TLS with real phones through tandem (issue 12).

Three phones on the sample configuration ([media] srtp = optional), with a
TLS listener added (a certificate made here, which alice's baresip checks:
sip_cafile): baresip 1.0 as alice over TLS with `mediaenc=srtp-mand`
(RTP/SAVP and one a=crypto line, its srtp module), linphonec 5.1 as bob with
`media_encryption=srtp` (mandatory: RTP/SAVP and four a=crypto lines), and
a second baresip as carol over UDP with no SRTP at all. Three calls:
 1. alice -> bob: SRTP on both legs (bob's tune as early media, SRTP too);
    alice holds and resumes (tandem's hold music to bob's SRTP leg);
 2. alice -> carol: SRTP on alice's leg, plain RTP on carol's;
 3. carol -> bob: plain RTP on carol's leg, SRTP on bob's.
Each is checked by what the phones decoded (baresip's sndfile recording:
the other phone's tone, not noise; linphone's RTP statistics), by the SDP
each phone received (the profile, one a=crypto of tandem's own in an
answer), and by the keys: every key a phone sent tandem differs from every
key tandem sent a phone (each leg has its own, tandem never passes one on),
and none appears in tandem's log or its database.

Exit status 0 when every step passed, 1 otherwise, 77 without the phones.
Usage: tests/phones/secure.py [--build build] [--keep] [--work DIR]
"""

import argparse
import glob
import os
import re
import subprocess
import time

import phones
from phones import (DOMAIN, StepFailed, Baresip, Linphone, Tandem, WAIT, TALK, baresip_registers,
                    file_size, linphone_registers, linphone_rtp_blocks, pick_ports, sample_passwords,
                    write_tone)
from heard import VOICE_HZ, WINDOW, classify, read_mono, read_text

KEY = re.compile(r"a=crypto:\d+ (\S+) inline:([A-Za-z0-9+/=]+)")


# ---- what tandem received (TPORT_DUMP) and what the phones received ----------------------

def dump_messages(path, since=0):
    """Every SIP message tandem received, whole, from its TPORT_DUMP file."""
    text = read_text(path, since)
    out = []
    for part in re.split(r"\n(?=(?:recv|sent) \d+ bytes )", "\n" + text):
        m = re.match(r"recv \d+ bytes from \S+ at [^\n]*\n(.*)", part, re.S)
        if m:
            out.append(m.group(1).replace("\r", ""))
    return out


def sdp_of(msg):
    """The SDP body of a message, or None."""
    at = msg.find("\nv=0")
    return msg[at + 1:] if at >= 0 else None


def media_line(sdp):
    m = re.search(r"^m=audio \d+ (\S+)", sdp or "", re.M)
    return m.group(1) if m else None


def keys_in(text):
    return set(k for _, k in KEY.findall(text or ""))


def baresip_received_sdp(b, since, tandem_ports):
    """The SDPs baresip received from tandem, in order, from its -s trace
    (each message after a line "PROTO SRC -> DST", SRC one of tandem_ports:
    its SIP and TLS ports) since byte offset since."""
    text = read_text(b.log_path, since).replace("\r", "")
    out = []
    for block in re.split(r"\x1b\[36;1m#\n", text)[1:]:
        head, _, msg = block.partition("\n")
        if re.match(r"\S+ 127\.0\.0\.1:(%d|%d) -> " % tandem_ports, head):
            sdp = sdp_of(msg.split("\x1b[;m")[0])
            if sdp:
                out.append(sdp)
    return out


def linphone_received_offer(l, since):
    """The SDP of the first INVITE linphone received since byte offset
    since of its log (each message whole, its SDP lines in a row)."""
    text = read_text(l.sip_log, since).replace("\r", "")
    at = text.find("\nINVITE sip:%s@" % l.user)
    if at < 0:
        return None
    body = text.find("\nv=0\n", at)
    if body < 0:
        return None
    lines = []
    for line in text[body + 1:].split("\n"):
        if not re.match(r"[a-z]=", line):
            break
        lines.append(line)
    return "\n".join(lines) + "\n"


def voice_heard(path):
    """baresip's recording of what it decoded: after the first window of
    the other phone's tone, at least 90% of the audible windows are that
    tone (garbage from a wrong key would be noise), and TALK s of it."""
    x, rate = read_mono(path)
    text = classify(x, rate)
    first = text.find("v")
    after = text[first:] if first >= 0 else ""
    audible = len(after) - after.count(".")
    shown = re.sub(r"(.)\1*", lambda m: "%s%d" % (m.group(1), len(m.group(0))), text)
    if first < 0 or after.count("v") < 0.9 * audible or after.count("v") * WINDOW < TALK * 0.8:
        raise StepFailed("%s did not decode the tone: %s" % (os.path.basename(path), shown))
    return "%s: %.1f s of the tone" % (os.path.basename(path), after.count("v") * WINDOW)


def newest_recording(b, since):
    found = [p for p in glob.glob(os.path.join(b.snd, "dump-*-dec.wav"))
             if os.path.getmtime(p) >= since]
    if not found:
        raise StepFailed("baresip %s recorded nothing" % b.user)
    return max(found, key=os.path.getmtime)


# ---- one call ---------------------------------------------------------------------------

class Keys:
    """The keys seen so far: sent by the phones (what tandem received) and
    by tandem (what the phones received)."""

    def __init__(self):
        self.phones, self.tandem = set(), set()


def expect_profile(sdp, want, who, answer):
    """sdp's audio profile is want; an SRTP answer carries exactly one
    a=crypto line; a plain one none but tandem's offer lines."""
    proto = media_line(sdp)
    if proto != want:
        raise StepFailed("%s got m=audio %s, want %s" % (who, proto, want))
    n = len(KEY.findall(sdp))
    if answer and want.startswith("RTP/SAVP") and n != 1:
        raise StepFailed("%s got an SRTP answer with %d a=crypto lines" % (who, n))
    return "%s got %s with %d a=crypto" % (who, proto, n)


def call(run, tandem, dump, keys, caller, callee, name, caller_proto, callee_proto, hold=False):
    """caller (a baresip) dials callee (a baresip or linphone); each must get
    the profile named; both decode the other's tone; the caller hangs up."""
    prefix = name + ": "
    csince, clog = caller.mark(), file_size(caller.log_path)
    dsince = file_size(dump)
    t0 = time.time()
    linphone = isinstance(callee, Linphone)
    if linphone:
        lsip, lmark = file_size(callee.sip_log), callee.log.mark()
    else:
        esince, elog = callee.mark(), file_size(callee.log_path)

    def establish():
        r = caller.command("dial", "sip:%s@%s" % (callee.user, DOMAIN))
        if not r.get("ok"):
            raise StepFailed("baresip dial: %s" % r.get("data"))
        ev = caller.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT + 5, csince)
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("%s: %s" % (caller.user, ev.get("param") if ev else "no answer"))
        if not caller.wait_event({"CALL_RTPESTAB"}, WAIT, csince):
            raise StepFailed("%s received no RTP it could decrypt" % caller.user)
        if linphone:
            if not callee.log.wait(r"Media streams established", WAIT, lmark):
                raise StepFailed("linphone reports no media streams")
        elif not callee.wait_event({"CALL_RTPESTAB"}, WAIT, esince):
            raise StepFailed("%s received no RTP" % callee.user)
        time.sleep(TALK + 1)
        return "established, RTP both ways"

    if not run.step(prefix + "call established", establish):
        caller.command("hangup")
        time.sleep(1)
        return

    def sdps():
        got = baresip_received_sdp(caller, clog, tandem.ports)
        if not got:
            raise StepFailed("%s's trace shows no SDP received" % caller.user)
        details = [expect_profile(got[-1], caller_proto, caller.user, answer=True)]
        if linphone:
            recv = linphone_received_offer(callee, lsip)
        else:
            got = baresip_received_sdp(callee, elog, tandem.ports)
            recv = got[0] if got else None
        if recv is None:
            raise StepFailed("no SDP seen at %s" % callee.user)
        details.append(expect_profile(recv, callee_proto, callee.user, answer=False))
        sent = [sdp_of(m) for m in dump_messages(dump, dsince)]
        keys.phones |= set().union(*(keys_in(s) for s in sent if s))
        keys.tandem |= keys_in(got[-1] if not linphone else "") | keys_in(recv) | \
            set().union(*(keys_in(s) for s in baresip_received_sdp(caller, clog, tandem.ports)))
        shared = keys.phones & keys.tandem
        if shared:
            raise StepFailed("tandem sent a phone's own key on: %d key(s) shared" % len(shared))
        return "; ".join(details) + "; %d phone keys, %d tandem keys so far, none shared" % (
            len(keys.phones), len(keys.tandem))

    run.step(prefix + "each phone got its own leg's profile and keys", sdps)
    if hold:
        # hold music to an SRTP leg, from tandem's tune under that leg's
        # one outgoing context, then the caller's voice again
        callee.mark_call = lmark
        run.step(prefix + "baresip holds (music to the SRTP callee)",
                 lambda: phones.baresip_hold(tandem, caller, callee, "hold", "B"))
        run.step(prefix + "baresip resumes",
                 lambda: phones.baresip_hold(tandem, caller, callee, "resume", "B"))

    def hangup():
        since = caller.mark()
        caller.command("hangup")
        if not caller.wait_event({"CALL_CLOSED"}, WAIT, since):
            raise StepFailed("%s: no CALL_CLOSED" % caller.user)
        details = [voice_heard(newest_recording(caller, t0))]
        if linphone:
            if not callee.log.wait(r"Call \d+ .*ended", WAIT, lmark):
                raise StepFailed("linphone does not report the call ended")
            deadline, blocks = time.monotonic() + WAIT, []
            while time.monotonic() < deadline and not blocks:
                blocks = linphone_rtp_blocks(callee.sip_log, lsip)
                time.sleep(0.2)
            if not blocks:
                raise StepFailed("linphone logged no RTP statistics")
            sent, recv = blocks[-1]
            if sent < 50 * TALK or recv < 50 * TALK:
                raise StepFailed("linphone sent %d, received %d RTP packets" % (sent, recv))
            errors = re.findall(r".*srtp.*(?:fail|error).*", read_text(callee.sip_log, lsip), re.I)
            if errors:
                raise StepFailed("linphone: %s" % errors[0].strip())
            details.append("linphone sent %d, received %d RTP packets, no SRTP error" % (sent, recv))
        else:
            if not callee.wait_event({"CALL_CLOSED"}, WAIT, esince):
                raise StepFailed("%s: no CALL_CLOSED" % callee.user)
            details.append(voice_heard(newest_recording(callee, t0)))
        return "; ".join(details)

    run.step(prefix + "caller hangs up; each decoded the other's tone", hangup)
    time.sleep(0.5)


def no_keys_kept(tandem, keys):
    """No key appears in tandem's log or its database."""
    log = open(os.path.join(os.path.dirname(tandem.conf), "tandem.log"), errors="replace").read()
    db = b""
    for path in glob.glob(tandem.db + "*"):
        db += open(path, "rb").read()
    everything = keys.phones | keys.tandem
    if not everything:
        raise StepFailed("no keys were seen")
    for k in everything:
        if k in log or k.encode() in db:
            raise StepFailed("a key is in tandem's %s" % ("log" if k in log else "database"))
    rows = tandem.cdrs(3)
    answered = [r for r in rows if r[3] == 200]
    if len(answered) < 3:
        raise StepFailed("CDRs: %s" % rows)
    return "%d keys, none in tandem.log or tandem.db; %d calls answered (200)" % (
        len(everything), len(answered))


def make_certificate(work):
    """A self-signed certificate for 127.0.0.1: tandem's, and baresip's CA."""
    cert, key = os.path.join(work, "tls-cert.pem"), os.path.join(work, "tls-key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, timeout=30)
    if r.returncode:
        raise StepFailed("openssl req: %s" % r.stderr.decode(errors="replace"))
    return cert


def over_tls(tandem):
    """tandem's log (-d: a line per message) shows a REGISTER came over TLS
    (alice's: no other phone has TLS)."""
    for line in tandem.log.lines:
        if re.search(r"recv \d+ bytes from tls/\S+: REGISTER", line):
            break
    else:
        raise StepFailed("no REGISTER over TLS in tandem's log")
    return "REGISTER 200 over TLS"


def scenario(run, args, work, procs):
    sip_port, a_port, b_port, c_port, tls_port = pick_ports(5, span=2)
    cert = make_certificate(work)
    audio = os.path.join(work, "voice.wav")
    write_tone(audio, seconds=240, freq=VOICE_HZ)   # baresip's aufile hangs up when its file ends
    dump = os.path.join(work, "tandem-sip.dump")
    os.environ["TPORT_DUMP"] = dump   # Sofia writes every message tandem receives, whole
    state = {}

    def start_tandem():
        # bob's phone takes SRTP only: his operator says so (tandem's
        # optional offer, RTP/AVP with a=crypto, gets linphone's 488).
        t = Tandem(args.build, work, sip_port, additions=[
            (("user bob", "srtp"), "mandatory"), (("sip", "tls-listen"), "127.0.0.1:%d" % tls_port),
            (("sip", "tls-certificate"), "tls-cert.pem"), (("sip", "tls-key"), "tls-key.pem")])
        t.ports = (sip_port, tls_port)
        procs.append(t)
        state["tandem"] = t
        return "on 127.0.0.1:%d, TLS on %d; [user bob] srtp = mandatory" % (sip_port, tls_port)

    if not run.step("tandem starts on a copy of config/tandem.conf", start_tandem):
        return False
    tandem = state["tandem"]
    passwords = sample_passwords(tandem.conf)

    def baresip(user, port, mediaenc, tls=False):
        snd = os.path.join(work, user + "-heard")
        os.makedirs(snd)
        extra = ["module sndfile.so", "snd_path %s" % snd]
        if mediaenc:
            extra.append("module srtp.so")
        if tls:
            extra.append("sip_cafile %s" % cert)   # it verifies tandem's certificate
        b = Baresip(work, user, passwords[user], port, (port + 10, port + 59), port + 100, sip_port,
                    audio, name=user + "-baresip", sip_trace=True, extra=extra,
                    account_params=";mediaenc=%s" % mediaenc if mediaenc else "",
                    tls_port=tls_port if tls else None)
        procs.append(b)
        b.snd = snd
        b.log_path = os.path.join(work, user + "-baresip.log")
        return b

    alice = baresip("alice", a_port, "srtp-mand", tls=True)
    carol = baresip("carol", c_port, None)
    bob = Linphone(work, "bob", passwords["bob"], b_port, (b_port + 10, b_port + 59), sip_port,
                   audio, 0, extra_sip=["media_encryption=srtp", "media_encryption_mandatory=1"])
    procs.append(bob)
    if not all([run.step("baresip (alice, srtp-mand, TLS) registers",
                         lambda: baresip_registers(alice) and over_tls(tandem)),
                run.step("baresip (carol, plain RTP) registers", lambda: baresip_registers(carol)),
                run.step("linphone (bob, SRTP mandatory) registers", lambda: linphone_registers(bob))]):
        return False
    keys = Keys()
    call(run, tandem, dump, keys, alice, bob, "1 alice (SRTP, TLS) -> bob (SRTP)", "RTP/SAVP", "RTP/SAVP",
         hold=True)
    call(run, tandem, dump, keys, alice, carol, "2 alice (SRTP, TLS) -> carol (RTP)", "RTP/SAVP", "RTP/AVP")
    call(run, tandem, dump, keys, carol, bob, "3 carol (RTP) -> bob (SRTP)", "RTP/AVP", "RTP/SAVP")
    run.step("no key in tandem's log or database; the CDRs", lambda: no_keys_kept(tandem, keys))
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(phones.SOURCE_ROOT, "build"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder with all logs")
    ap.add_argument("--work", help="work folder (default: a new temporary one)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    return phones.drive(args, scenario)


if __name__ == "__main__":
    raise SystemExit(main())
