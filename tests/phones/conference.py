#!/usr/bin/env python3
"""A three-way call bridged by the operator, with real phones (issue 11).

The sample configuration (its conference plugin) plus `[control] socket`
in the work folder. baresip 1.0 is alice (auto-answer), linphonec 5.1 is
bob, SIPp is carol (with rtp-probe as her RTP: it sends her tone and
traces every packet it gets). Each party sends its own tone (roomheard.py:
alice 300 Hz, bob 500 Hz, carol 800 Hz):
 1. bob calls alice: call 1. carol calls alice: call 2 (baresip answers
    a second call without holding the first).
 2. `tandemctl --json calls` shows both; `tandemctl --json bridge C1 C2`
    makes a room of alice, bob and carol: alice is in both calls, so her
    leg of call 2 gets BYE; `conference list` and `calls` show the room.
 3. carol hangs up: the room is a plain call of bob and alice again, RTP
    both ways; then bob hangs up.
Then what each party got: the RTP to each phone (off the loopback) and to
carol keeps one SSRC and sequence across the join and the collapse, and
by the tones holds the other party, then the other two, then the other
phone (carol: alice, then alice and bob), never its own tone; the phones'
recordings say the same; tandem sent no phone a re-INVITE; the CDRs;
tandem logged no warning and sent no 5xx.

Exit status 0 when every step passed, 1 otherwise, 77 without the phones.
Usage: tests/phones/conference.py [--build build] [--sipp sipp] [--probe rtp-probe] [--keep]
"""

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time

import phones
from phones import (DOMAIN, StepFailed, Baresip, Linphone, Tandem, WAIT, TALK, baresip_registers,
                    file_size, linphone_registers, pick_ports, sample_passwords, start, stop,
                    write_tone)
from heard import RtpWatch, linphone_pieces, read_mono, read_text
from ringback import baresip_over, sip_messages, tandem_sip
from transfer import no_errors
from roomheard import TONES, one_context, packet_windows, phases_by_clock, phases_in_order, windows

HERE = os.path.dirname(os.path.abspath(__file__))
ROOM = 5.0           # seconds the three talk in the room


# ---- carol: SIPp for her SIP, rtp-probe for her RTP ---------------------------------------

class Carol:
    """carol calls `callee` (conference-carol.xml) and sends her tone from
    port + 10 once tandem's answer names its relay port; `hang_up` is
    her button (an INFO straight to SIPp, which then sends BYE)."""

    def __init__(self, args, work, port, tandem_port, password, callee):
        self.work, self.port, self.user = work, port, "carol"
        self.rtp = port + 10
        self.call_id = "carol-%d-1@127.0.0.1" % os.getpid()
        portfile = os.path.join(work, "carol.port")
        if os.path.exists(portfile):
            os.unlink(portfile)
        # Her tone, PCMU, until she hangs up (at most 200 s); every packet
        # she gets printed as it comes (line-buffered: read while she talks).
        self.probe, self.probe_log = start(
            ["stdbuf", "-oL", args.probe, "-t", "-n", "10000", "-l", "200",
             "%d:@carol.port:%d:0:0:0:%d" % (self.rtp, 0xCA501, TONES["carol"])],
            os.path.join(work, "carol-probe.log"), cwd=work)
        self.sipp, self.sipp_log = start(
            [args.sipp, "127.0.0.1:%d" % tandem_port, "-sf", os.path.join(HERE, "conference-carol.xml"),
             "-m", "1", "-i", "127.0.0.1", "-p", str(port), "-cp", str(port + 20),
             "-mp", str(port + 30), "-nostdin", "-timeout", "100s", "-timeout_error",
             "-cid_str", "carol-%d-%%u@%%s" % os.getpid(), "-au", "carol", "-ap", password,
             "-key", "callee", callee, "-key", "rtp_port", str(self.rtp), "-key", "side", "carol",
             "-trace_msg", "-message_file", os.path.join(work, "carol-sipp-messages.log"),
             "-trace_err", "-error_file", os.path.join(work, "carol-sipp-errors.log")],
            os.path.join(work, "carol-sipp.log"), stdin=subprocess.DEVNULL, cwd=work)
        self.portfile = portfile

    def answered(self):
        """The relay port of tandem's 200, once SIPp has ACKed it."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.sipp.poll() is not None:
                raise StepFailed("SIPp ended (exit %d), see carol-sipp-errors.log" % self.sipp.returncode)
            try:
                return int(open(self.portfile).read())
            except (OSError, ValueError):
                time.sleep(0.05)
        raise StepFailed("carol's call was not answered within %d s" % WAIT)

    def hang_up(self):
        """The INFO (unanswered: SIPp sends all to tandem), then SIPp's BYE
        and its 200: SIPp ends, exit 0."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.sendto(("INFO sip:carol@127.0.0.1:%d SIP/2.0\r\n"
                      "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-hangup-%d\r\n"
                      "From: <sip:test@127.0.0.1>;tag=button\r\nTo: <sip:carol@pbx.test>\r\n"
                      "Call-ID: %s\r\nCSeq: 1 INFO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                      % (self.port, s.getsockname()[1], os.getpid(), self.call_id)).encode(),
                     ("127.0.0.1", self.port))
        try:
            rc = self.sipp.wait(WAIT)
        except subprocess.TimeoutExpired:
            raise StepFailed("SIPp did not end within %d s of the test's INFO" % WAIT)
        if rc:
            raise StepFailed("SIPp exit %d: see carol-sipp-errors.log" % rc)
        stop(self.probe)

    def packets(self, clock):
        """(arrival (monotonic), seq, ts, ssrc, marker, pt, payload) of what
        reached her; clock: wall clock minus monotonic."""
        out = []
        for line in self.probe_log.find(r"^pkt "):
            f = line.split()
            out.append((int(f[8]) / 1e6 - clock, int(f[4]), int(f[7]), int(f[3]), int(f[5]),
                        int(f[6]), bytes.fromhex(f[9]) if f[9] != "-" else b""))
        return out

    def close(self):
        stop(self.sipp)
        stop(self.probe)


# ---- tandemctl ----------------------------------------------------------------------------

def tandemctl(args, sock, *argv):
    """tandemctl --json ARGV: its JSON answer (exit 0, "ok": true)."""
    cmd = [args.tandemctl, "--socket", sock, "--json"] + list(argv)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT)
    except subprocess.TimeoutExpired:
        raise StepFailed("tandemctl %s: no answer within %d s" % (" ".join(argv), WAIT))
    if r.returncode:
        raise StepFailed("tandemctl %s: exit %d: %s" % (" ".join(argv), r.returncode,
                                                         (r.stderr or r.stdout).strip()))
    try:
        answer = json.loads(r.stdout)
    except ValueError:
        raise StepFailed("tandemctl --json %s printed no JSON: %r" % (" ".join(argv), r.stdout[:200]))
    if answer.get("ok") is not True:
        raise StepFailed("tandemctl %s: %s" % (" ".join(argv), r.stdout.strip()))
    return answer


def parties(entry):
    return [(p.get("user"), p.get("state")) for p in entry.get("parties", [])]


def shown_calls(calls):
    return "; ".join("%s%s: %s" % (c["id"], " (room %s)" % c["room"] if c.get("room") else "",
                                   ", ".join("%s(%s):%s" % (p.get("user"), p.get("leg"), p.get("state"))
                                             for p in c.get("parties", []))) for c in calls)


def until(what, check, timeout=WAIT):
    """check() until it returns a value (not None) within timeout; tandem
    changes its tables as the phones answer, a few ms after they tell."""
    deadline = time.monotonic() + timeout
    while True:
        got, detail = check()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise StepFailed("%s within %.0f s: %s" % (what, timeout, detail))
        time.sleep(0.1)


# ---- the phones ---------------------------------------------------------------------------

def wait_call(b, types, since, peer=None, call_id=None, timeout=WAIT):
    """The first baresip event of `types` since a mark for the call with
    that peer (a substring of its URI) or SIP Call-ID."""
    deadline = time.monotonic() + timeout
    with b.cond:
        while True:
            for ev in b.events[since:]:
                if (ev.get("type") in types and (peer is None or peer in ev.get("peeruri", "")) and
                        (call_id is None or ev.get("id") == call_id)):
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            b.cond.wait(left)


def dumped(b, since_line, nth):
    """The nth decoder recording baresip's sndfile began since a log mark."""
    found = [re.search(r"dumping decode audio to (\S+)", l).group(1)
             for l in b.log.find(r"sndfile: dumping decode audio to ", since_line)]
    if len(found) <= nth:
        raise StepFailed("baresip's sndfile began %d decoder recording(s)" % len(found))
    return found[nth]


def sent_requests(tandem, since, port):
    """The requests tandem sent the endpoint on port since a mark."""
    return [(first, cseq) for d, first, cseq in tandem_sip(tandem, since, port)
            if d == "send" and not first[:3].isdigit()]


# ---- the run --------------------------------------------------------------------------------

def scenario(run, args, work, procs):
    sip_port, a_port, b_port, c_port = pick_ports(4, span=2)
    tones = {}
    for user, hz in TONES.items():
        tones[user] = os.path.join(work, "%s-%d.wav" % (user, hz))
        write_tone(tones[user], seconds=240, freq=hz)   # baresip's aufile hangs up when its file ends
    sock = os.path.join(work, "tandem.sock")
    st = {"clock": time.time() - time.monotonic()}

    def start_tandem():
        text = open(os.path.join(phones.SOURCE_ROOT, "config", "tandem.conf")).read()
        if not re.search(r"^enabled\s*=.*\bconference\b", text, re.M) or \
                not re.search(r"^\[conference\]", text, re.M):
            raise StepFailed("config/tandem.conf enables no conference plugin: not on this tree yet")
        t = Tandem(args.build, work, sip_port, additions=[(("control", "socket"), "tandem.sock")])
        procs.append(t)
        st["tandem"] = t
        return "on 127.0.0.1:%d, control socket %s" % (sip_port, sock)

    if not run.step("tandem starts on a copy of config/tandem.conf, [control] socket added", start_tandem):
        return False
    tandem = st["tandem"]
    passwords = sample_passwords(tandem.conf)
    snd = os.path.join(work, "alice-heard")
    os.makedirs(snd)
    alice = Baresip(work, "alice", passwords["alice"], a_port, (a_port + 10, a_port + 59),
                    a_port + 100, sip_port, tones["alice"], name="alice-baresip", sip_trace=True,
                    extra=["module sndfile.so", "snd_path %s" % snd, "call_max_calls 4"])
    procs.append(alice)
    alice.port = a_port
    alice.watch = RtpWatch((a_port + 2, a_port + 99))   # baresip may take port + 9
    procs.append(alice.watch)
    bob = Linphone(work, "bob", passwords["bob"], b_port, (b_port + 10, b_port + 59), sip_port,
                   tones["bob"], 0)
    procs.append(bob)
    bob.port = b_port
    bob.watch = RtpWatch((b_port + 2, b_port + 99))
    procs.append(bob.watch)
    if not all([run.step("baresip (alice) registers", lambda: baresip_registers(alice)),
                run.step("linphone (bob) registers", lambda: linphone_registers(bob))]):
        return False

    st.update(t0=tandem.log.mark(), a0=alice.mark(), alog=alice.log.mark(), b0=bob.log.mark(),
              bsip=file_size(bob.sip_log), awatch=alice.watch.mark(), bwatch=bob.watch.mark())

    def call_1():
        bob.send("call sip:alice@%s" % DOMAIN)
        ev = wait_call(alice, {"CALL_ESTABLISHED", "CALL_CLOSED"}, st["a0"], peer="bob")
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("baresip: %s" % (ev.get("param") if ev else "no call within %d s" % WAIT))
        st["a_c1"] = ev["id"]
        if not bob.log.wait(r"Call \d+ with .* connected", WAIT, st["b0"]):
            raise StepFailed("linphone does not report the call connected")
        if not wait_call(alice, {"CALL_RTPESTAB"}, st["a0"], call_id=st["a_c1"]):
            raise StepFailed("baresip received no RTP")
        st["c1_up"] = time.monotonic()
        before, after, tx, rx = baresip_over(alice, TALK)
        detail = "alice sent %d, received %d RTP packets in %d s (%s, %s)" % (
            tx, rx, TALK, after["dir"], after["codec"])
        if tx < 40 * TALK or rx < 40 * TALK or after["dir"] != "sendrecv":
            raise StepFailed(detail)
        return "bob -> alice established; " + detail

    if not run.step("1 linphone bob calls baresip alice: call 1", call_1):
        return False

    def call_2():
        st["a1"] = alice.mark()
        carol = Carol(args, work, c_port, sip_port, passwords["carol"], "alice")
        procs.append(carol)
        st["carol"] = carol
        relay = carol.answered()
        ev = wait_call(alice, {"CALL_ESTABLISHED", "CALL_CLOSED"}, st["a1"], peer="carol")
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("baresip: %s" % (ev.get("param") if ev else "no second call"))
        st["a_c2"] = ev["id"]
        if not carol.probe_log.wait(r"^pkt ", WAIT):
            raise StepFailed("no RTP reached carol")
        st["c2_up"] = time.monotonic()
        time.sleep(TALK)
        got = carol.packets(st["clock"])
        closed = wait_call(alice, {"CALL_CLOSED"}, st["a1"], call_id=st["a_c1"], timeout=0)
        if closed:
            raise StepFailed("baresip closed call 1 on answering call 2")
        return ("carol -> alice established (tandem's relay port %d); carol received %d packets; "
                "baresip answered without holding bob" % (relay, len(got)))

    if not run.step("2 SIPp carol (her tone from rtp-probe) calls alice: call 2", call_2):
        return False
    carol = st["carol"]

    def list_calls():
        def two():
            calls = tandemctl(args, sock, "calls")["calls"]
            want = {"c1": [("bob", "talking"), ("alice", "talking")],
                    "c2": [("carol", "talking"), ("alice", "talking")]}
            ids = {}
            for name, who in want.items():
                match = [c for c in calls if parties(c) == who and c.get("answered_at")]
                if len(match) == 1:
                    ids[name] = match[0]["id"]
            ok = len(calls) == 2 and len(ids) == 2 and not any(c.get("room") for c in calls)
            return (ids if ok else None), shown_calls(calls)
        st["calls"] = until("calls: bob-alice and carol-alice, answered, talking", two)
        return shown_calls(tandemctl(args, sock, "calls")["calls"])

    if not run.step("3 tandemctl --json calls: both calls answered, every party talking", list_calls):
        return False

    def bridge():
        st["t_bridge"], st["a2"] = tandem.log.mark(), alice.mark()
        st["traces"] = {"alice": (alice.log.file.name, file_size(alice.log.file.name)),
                        "bob": (bob.sip_log, file_size(bob.sip_log))}
        st["join"] = time.monotonic()
        answer = tandemctl(args, sock, "bridge", st["calls"]["c1"], st["calls"]["c2"])
        st["joined"] = time.monotonic()
        room = answer.get("room")
        users = sorted(p.get("user") for p in answer.get("parties", []))
        if not room or users != ["alice", "bob", "carol"]:
            raise StepFailed("bridge answered %s" % json.dumps(answer))
        st["room"] = room
        ev = wait_call(alice, {"CALL_CLOSED"}, st["a2"], call_id=st["a_c2"])
        if not ev:
            raise StepFailed("alice's leg of call 2 got no BYE (baresip: no CALL_CLOSED)")
        gone = wait_call(alice, {"CALL_CLOSED"}, st["a2"], call_id=st["a_c1"], timeout=0)
        if gone:
            raise StepFailed("baresip closed call 1 too")
        return "room %s: %s; alice's call 2 closed (%s), %.0f ms after the command" % (
            room, json.dumps(answer.get("parties")), ev.get("param", "-"),
            1000 * (time.monotonic() - st["join"]))

    if not run.step("4 tandemctl --json bridge C1 C2: a room of three; alice's leg of call 2 hangs up",
                    bridge):
        return False

    def listed():
        def three():
            rooms = tandemctl(args, sock, "conference", "list")["rooms"]
            calls = tandemctl(args, sock, "calls")["calls"]
            mine = [r for r in rooms if r.get("id") == st["room"]]
            users = sorted(mine[0]["parties"], key=lambda p: p.get("user") or "") if mine else []
            in_room = sorted(p.get("user") for c in calls if c.get("room") == st["room"]
                             for p in c["parties"])
            ok = (len(rooms) == 1 and [(p.get("user"), p.get("state")) for p in users] ==
                  [("alice", "talking"), ("bob", "talking"), ("carol", "talking")] and
                  in_room == ["alice", "bob", "carol"] and all(c.get("room") for c in calls))
            return (True if ok else None), "rooms %s; calls %s" % (json.dumps(rooms), shown_calls(calls))
        until("conference list: one room of alice, bob, carol talking; calls in it", three)
        return three()[1]

    run.step("5 tandemctl --json conference list: three parties, talking; calls name the room", listed)
    time.sleep(max(0, ROOM - (time.monotonic() - st["joined"])))

    def carol_leaves():
        st["t_leave"], st["a3"] = tandem.log.mark(), alice.mark()
        st["leave"] = time.monotonic()
        carol.hang_up()
        line = tandem.log.wait(r"room %s: two parties left" % st["room"], WAIT, st["t_leave"])
        st["left"] = time.monotonic()
        if not line:
            raise StepFailed("tandem did not log the room's collapse to a plain call")

        def plain():
            rooms = tandemctl(args, sock, "conference", "list")["rooms"]
            calls = tandemctl(args, sock, "calls")["calls"]
            ok = (not rooms and len(calls) == 1 and not calls[0].get("room") and
                  sorted(parties(calls[0])) == [("alice", "talking"), ("bob", "talking")])
            return (shown_calls(calls) if ok else None), "rooms %s; calls %s" % (
                json.dumps(rooms), shown_calls(calls))
        listed_calls = until("no room, one call of alice and bob", plain)
        if wait_call(alice, {"CALL_CLOSED"}, st["a3"], call_id=st["a_c1"], timeout=0):
            raise StepFailed("baresip closed call 1")
        before, after, tx, rx = baresip_over(alice, TALK)
        mark = bob.watch.mark()
        time.sleep(0.5)
        to_bob = len(bob.watch.since(mark))
        detail = ("SIPp's BYE answered; tandem: %s; calls: %s; then alice sent %d, received %d in "
                  "%d s (%s), bob got %d packets in 0.5 s" % (line.split(": ", 1)[-1], listed_calls,
                                                             tx, rx, TALK, after["dir"], to_bob))
        if tx < 40 * TALK or rx < 40 * TALK or after["dir"] != "sendrecv" or \
                (not bob.watch.error and to_bob < 15):
            raise StepFailed("no RTP both ways: " + detail)
        return detail

    room_ok = run.step("6 carol hangs up: alice and bob are a plain call, RTP both ways", carol_leaves)

    def hang_up():
        st["end"] = time.monotonic()
        since = bob.log.mark()
        bob.send("terminate")
        if not wait_call(alice, {"CALL_CLOSED"}, st["a0"], call_id=st["a_c1"]):
            raise StepFailed("baresip: call 1 not closed")
        if not bob.log.wait(r"Call \d+ .*ended", WAIT, since):
            raise StepFailed("linphone does not report the call ended")
        return "both phones report the call ended"

    run.step("7 linphone bob hangs up", hang_up)
    if room_ok:
        afterwards(run, st, tandem, alice, bob, carol)
    run.step("tandem's CDRs: every segment answered, in two sessions",
             lambda: cdrs(tandem, st.get("room")))
    run.step("tandem logged no warning, sent no 5xx", lambda: no_errors(tandem, 0))
    return True


def phases(st, pair):
    """The phases (start, end, label) of what `pair` (the two others'
    initials, e.g. "bc") heard on call 1, by the test's clock."""
    return [(st["c1_up"], st["join"], pair[0]), (st["joined"], st["leave"], pair),
            (st["left"], st["end"], pair[0])]


def afterwards(run, st, tandem, alice, bob, carol):
    """What each party got, from the traces and recordings."""
    marks = {"the join": st["join"], "the collapse": st["leave"]}

    def judged(packets, phases_, own, path):
        """one_context and phases_by_clock of the packets (arrival, seq, ts,
        ssrc, marker, pt, payload) to `own`, both reported, either failing;
        every header into path."""
        with open(path, "w") as f:
            for p in packets:
                f.write("%+.3f seq %d ts %d ssrc 0x%08x%s pt %d\n" % (
                    p[0] - st["join"], p[1], p[2], p[3], " M" if p[4] else "", p[5]))
        out, failed = [], False
        for check in (lambda: one_context([p[:5] for p in packets], marks, own),
                      lambda: phases_by_clock(packet_windows([(p[0], p[5], p[6]) for p in packets]),
                                              phases_, own, own)):
            try:
                out.append(check())
            except StepFailed as e:
                out.append("FAILED: %s" % e)
                failed = True
        if failed:
            raise StepFailed("; ".join(out))
        return "; ".join(out)

    def to_phone(phone, own, pair):
        if phone.watch.error:
            return "not checked: no packet socket on lo (%s)" % phone.watch.error
        if phone.watch.drops():
            raise StepFailed("the watch itself dropped packets: try again")
        packets = phone.watch.since(st["awatch" if phone is alice else "bwatch"])
        # Call 1's port: the one still fed after the collapse (alice's call 2 is gone by then).
        late = [p[1] for p in packets if p[0] > st["left"]]
        if not late:
            raise StepFailed("no RTP reached %s after the collapse" % own)
        port = max(set(late), key=late.count)
        mine = [(p[0], p[3], p[4], p[2], p[5], p[6], p[7]) for p in packets if p[1] == port]
        others = len(packets) - len(mine)
        return "port %d: %s%s" % (port, judged(mine, phases(st, pair), own,
                                              os.path.join(os.path.dirname(tandem.db),
                                                           "rtp-to-%s.log" % own)),
                                  "; %d packet(s) to %s's other ports (call 2)" % (others, own)
                                  if others else "")

    run.step("8 what reached alice (call 1's port): one RTP stream; bob, then bob+carol, then bob",
             lambda: to_phone(alice, "alice", "bc"))
    run.step("8 what reached bob: one RTP stream; alice, then alice+carol, then alice",
             lambda: to_phone(bob, "bob", "ac"))
    run.step("8 what reached carol (rtp-probe's trace): one RTP stream; alice, then alice+bob",
             lambda: judged(carol.packets(st["clock"]),
                            [(st["c2_up"], st["join"], "a"), (st["joined"], st["leave"], "ab")],
                            "carol", os.path.join(os.path.dirname(tandem.db), "rtp-to-carol.log")))
    room_s = st["leave"] - st["joined"]

    def alice_recorded():
        first, second = dumped(alice, st["alog"], 0), dumped(alice, st["alog"], 1)
        x, rate = read_mono(first)
        one = phases_in_order(windows(x, rate), ["b", "bc", "b"], "alice", os.path.basename(first),
                              room_s)
        x, rate = read_mono(second)
        two = phases_in_order(windows(x, rate), ["c"], "alice", os.path.basename(second))
        return "call 1: %s; call 2: %s" % (one, two)

    run.step("9 baresip's recordings: bob, bob+carol, bob on call 1; carol on call 2", alice_recorded)

    def bob_recorded():
        pieces = linphone_pieces(bob, st["bsip"], bob.record)
        wins = [w for x, rate in pieces for w in windows(x, rate)]
        return "%d piece(s) at %s Hz; %s" % (len(pieces), "/".join(str(r) for _, r in pieces),
                                             phases_in_order(wins, ["a", "ac", "a"], "bob",
                                                             os.path.basename(bob.record), room_s))

    run.step("9 linphone's recording: alice, alice+carol, alice", bob_recorded)

    def no_reinvite():
        out = []
        for who, port in (("alice", alice.port), ("bob", bob.port), ("carol", carol.port)):
            sent = sent_requests(tandem, st["t_bridge"], port)
            out.append("%s: %s" % (who, ", ".join("%s (%s)" % s for s in sent) or "nothing"))
            if any(first in ("INVITE", "UPDATE") for first, _ in sent):
                raise StepFailed("tandem re-offered a party: " + "; ".join(out))
        # The phones' own traces: whole messages, either way.
        seen = []
        for who, (path, offset) in sorted(st["traces"].items()):
            offers = [first for first, _, _ in sip_messages(read_text(path, offset))
                      if first.startswith(("INVITE ", "UPDATE "))]
            seen.append("%s's SIP trace: %s" % (who, ", ".join(offers) or "no INVITE, no UPDATE"))
            if offers:
                raise StepFailed("; ".join(out + seen))
        return "requests tandem sent since the bridge: %s; %s" % ("; ".join(out), "; ".join(seen))

    run.step("10 no re-INVITE or UPDATE to any party from the bridge to the end (tandem's log, "
             "the phones' SIP traces)",
             no_reinvite)


def cdrs(tandem, room):
    """One row per segment, every one answered (200): the two calls the
    phones made (segment 1), each party's time in the room (segment 2:
    callee the room), then bob and alice's plain call again (segment 3).
    A segment that ends because its party moves on is hung up by
    'transfer'; carol's and the last by their caller's BYE. bob's and
    alice's rows are one session, carol's another."""
    want = sorted([("bob", "alice", 1, "transfer"), ("carol", "alice", 1, "transfer"),
                   ("bob", room, 2, "transfer"), ("alice", room, 2, "transfer"),
                   ("carol", room, 2, "caller"), ("bob", "alice", 3, "caller")])
    deadline = time.monotonic() + 5
    while True:
        db = sqlite3.connect("file:%s?mode=ro" % tandem.db, uri=True, timeout=2)
        try:
            rows = db.execute("SELECT session, segment, caller, callee, status, hangup, reason,"
                              " transferred_by, answered_at IS NOT NULL FROM cdrs ORDER BY id").fetchall()
        finally:
            db.close()
        if len(rows) >= len(want) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    shown = "; ".join("%s->%s session %s seg %s: %s, hung up by %s (%s)%s" % (
        r[2], r[3], (r[0] or "?")[:8], r[1], r[4], r[5], r[6],
        ", moved by %s" % r[7] if r[7] else "") for r in rows)
    got = sorted((r[2], r[3], r[1], r[5]) for r in rows)
    sessions = {}
    for r in rows:
        sessions.setdefault("carol" if "carol" in (r[2], r[3]) else "bob+alice", set()).add(r[0])
    if (got != want or any(r[4] != 200 or not r[8] for r in rows) or
            sorted(len(v) for v in sessions.values()) != [1, 1] or
            len(set.union(*sessions.values())) != 2):
        raise StepFailed("want (caller, callee, segment, hangup) %s in two sessions; got %s" % (want, shown))
    return shown


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(phones.SOURCE_ROOT, "build"),
                    help="meson build folder with b2bua/tandem and b2bua/tandemctl (default: SOURCE/build)")
    ap.add_argument("--sipp", default=shutil.which("sipp") or "sipp", help="SIPp (default: on PATH)")
    ap.add_argument("--probe", help="rtp-probe (default: BUILD/tests/flows/rtp-probe)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder with all logs")
    ap.add_argument("--work", help="work folder (default: a new temporary one)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.probe = os.path.abspath(args.probe or os.path.join(args.build, "tests", "flows", "rtp-probe"))
    args.tandemctl = os.path.join(args.build, "b2bua", "tandemctl")
    if not shutil.which(args.sipp):
        print("SKIP: SIPp is not installed (apt-get install sip-tester)")
        return phones.SKIP
    for tool in (args.probe, args.tandemctl):
        if not os.access(tool, os.X_OK):
            ap.error("%s is not built" % tool)
    return phones.drive(args, scenario)


if __name__ == "__main__":
    raise SystemExit(main())
