#!/usr/bin/env python3
"""Call transfer with real phones through tandem (issue 9).

Three phones on the sample configuration: baresip 1.0 as alice, linphonec
5.1 as bob, a second baresip as carol (both baresips auto-answer, linphonec
runs with -a). Two transfers:
 - blind, by baresip: alice calls bob, alice transfers bob to carol
   (baresip's `transfer` command: REFER with Refer-To: carol); carol answers,
   bob talks to carol, alice's call ends;
 - attended, by linphone: bob calls alice, pauses her, calls carol, then
   `transfer A --to-call C` (REFER with Refer-To: carol?Replaces=...); alice
   talks to carol, bob's two calls end.
Each is checked by what the phones report (calls, RTP counters), by tandem's
log (no errors) and its CDRs (segments of one session, hangup 'transfer',
transferred_by). What each phone sent (REFER's Refer-To, Referred-By, the
holds and BYEs) is printed from tandem's transport dump (TPORT_DUMP).

Exit status 0 when every step passed, 1 otherwise, 77 without the phones.
Usage: tests/phones/transfer.py [--build build] [--keep] [--work DIR]
"""

import argparse
import os
import re
import sqlite3
import time

import phones
from phones import (DOMAIN, StepFailed, Baresip, Linphone, Tandem, WAIT, TALK, baresip_registers,
                    file_size, linphone_registers, linphone_rtp_blocks, pick_ports, sample_passwords,
                    write_tone)

CAROL = "sip:carol@%s" % DOMAIN


# ---- what the phones sent: tandem's log (one line per message) and its transport dump ----

def dump_received(path, since=0):
    """Every SIP message tandem received, whole, from a TPORT_DUMP file
    (from byte offset since), by (Call-ID, CSeq, first word). Sofia dumps
    only the start of what it sends: those come from tandem's log."""
    with open(path, errors="replace") as f:
        f.seek(since)
        text = f.read()
    found = {}
    for part in re.split(r"\n(?=(?:recv|sent) \d+ bytes )", "\n" + text):
        m = re.match(r"recv \d+ bytes from \S+ at [^\n]*\n(.*)", part, re.S)
        if m:
            msg = m.group(1).replace("\r", "").strip("\n")
            first = msg.split("\n", 1)[0]
            word = first.split(" ")[1] if first.startswith("SIP/2.0") else first.split(" ")[0]
            found.setdefault((header(msg, "Call-ID|i"), header(msg, "CSeq"), word), msg)
    return found


def header(msg, name):
    m = re.search(r"^(?:%s)\s*:\s*(.*)$" % name, msg, re.M | re.I)
    return m.group(1).strip() if m else None


def sdp_direction(msg):
    m = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)", msg, re.M)
    return m.group(1) if m else "sendrecv"


LOGGED = re.compile(r"^(\S+) DEBUG tandem-sip: (send|recv) \d+ bytes (?:to|from) \S+:(\d+): "
                    r"([^|]+?) \| Call-ID (\S+) \| CSeq ([^|]+?) \|")


def trace(tandem, tmark, dump, dmark, port):
    """The messages between tandem and the phone on `port` since the marks,
    one line each (-> to tandem, <- from it), but for REGISTER and its kin;
    what tandem received is detailed: SDP direction, Refer-To, Referred-By,
    Replaces, NOTIFY bodies."""
    received = dump_received(dump, dmark)
    lines = []
    for line in tandem.log.lines[tmark:]:
        m = LOGGED.match(line)
        if not m or int(m.group(3)) != port or m.group(6).endswith(("REGISTER", "OPTIONS")):
            continue
        stamp, direction, what, call_id, cseq = m.group(1), m.group(2), m.group(4), m.group(5), m.group(6)
        text = "%s %s %s (%s, %s)" % (stamp, "->" if direction == "recv" else "<-", what,
                                      cseq, call_id[:10])
        msg = received.get((call_id, cseq, what.split(" ")[0])) if direction == "recv" else None
        if msg and what in ("INVITE", "UPDATE") and "m=audio" in msg:
            text += " SDP %s" % sdp_direction(msg)
        if msg and what == "REFER":
            text += "\n              Refer-To: %s\n              Referred-By: %s" % (
                header(msg, "Refer-To|r"), header(msg, "Referred-By|b") or "(none)")
        if msg and what == "INVITE" and header(msg, "Replaces"):
            text += " Replaces: %s" % header(msg, "Replaces")
        lines.append(text)
    return lines


def print_trace(title, tandem, tmark, dump, dmark, phone):
    print("   %s:\n      %s" % (title, "\n      ".join(trace(tandem, tmark, dump, dmark, phone.port))),
          flush=True)


# ---- checks ---------------------------------------------------------------------------

def no_errors(tandem, since):
    """Warnings, criticals and 5xx that tandem logged or sent since a mark."""
    errors = tandem.log.find(r" (WARNING|CRITICAL|ERROR) |: 5\d\d [A-Z][^|]*\|", since)
    if errors:
        raise StepFailed("; ".join(errors[:5]))
    return "no warning, no 5xx"


def cdr_rows(tandem, since_id):
    db = sqlite3.connect("file:%s?mode=ro" % tandem.db, uri=True, timeout=2)
    try:
        return db.execute("SELECT id, session, segment, caller, callee, status, hangup, reason,"
                          " transferred_by FROM cdrs WHERE id > ? ORDER BY id", (since_id,)).fetchall()
    finally:
        db.close()


def last_cdr_id(tandem):
    rows = cdr_rows(tandem, -1)
    return rows[-1][0] if rows else 0


def check_segments(tandem, since_id, want, transferred_by):
    """The CDR rows written since since_id, in order: want = [(caller,
    callee, hangup, segment, session), ...] where session is a label: rows
    with one label share a session, rows with two differ. Every row answered
    (200) and naming transferred_by."""
    deadline = time.monotonic() + WAIT
    rows = cdr_rows(tandem, since_id)
    while len(rows) < len(want) and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = cdr_rows(tandem, since_id)
    shown = "; ".join("%s->%s session %s segment %d, %d, hangup %s (%s), transferred_by %s"
                      % (r[3], r[4], r[1][:8], r[2], r[5], r[6], r[7], r[8]) for r in rows)
    got = [(r[3], r[4], r[6], r[2]) for r in rows]
    labels = {}
    same = all(labels.setdefault(w[4], r[1]) == r[1] for w, r in zip(want, rows))
    distinct = len(set(labels.values())) == len(labels)
    if (got != [w[:4] for w in want] or not same or not distinct or
            any(r[5] != 200 or r[8] != transferred_by for r in rows)):
        raise StepFailed("want %s, transferred_by %s; got %s" % (want, transferred_by, shown))
    return shown


def baresip_summary(b, since):
    """(sent, received) of baresip's RTP summary of its last call."""
    line = b.log.wait(r"^packets:\s+\d+\s+\d+", WAIT, since)
    if not line:
        raise StepFailed("%s printed no RTP summary" % b.user)
    tx, rx = map(int, line.split()[1:3])
    return tx, rx


def baresip_live(b):
    """(sent, received, direction) of baresip's current call now, from its
    audio_debug: TX packets, and rcvd summed over the RTCP members."""
    text = b.command("audio_debug").get("data", "")
    tx = re.search(r"TX: packets=(\d+)", text)
    direction = re.search(r"audio dir=(\w+)", text)
    if not tx:
        raise StepFailed("%s: no audio stream (%s)" % (b.user, text.strip()[:200]))
    return (int(tx.group(1)), sum(int(x) for x in re.findall(r"rcvd=(\d+)", text)),
            direction.group(1) if direction else "?")


def talking(*phones_):
    """Each baresip sends and receives RTP for TALK s (50 packets/s each way)."""
    before = [baresip_live(b) for b in phones_]
    time.sleep(TALK)
    out = []
    for b, (tx0, rx0, _) in zip(phones_, before):
        tx, rx, direction = baresip_live(b)
        out.append("%s %s sent %d, received %d in %d s" % (b.user, direction, tx - tx0, rx - rx0, TALK))
        if tx - tx0 < 40 * TALK or rx - rx0 < 40 * TALK or direction != "sendrecv":
            raise StepFailed("; ".join(out))
    return "; ".join(out)


def linphone_stream(l, offset):
    """(sent, received) of linphone's last ended RTP stream after offset."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        blocks = linphone_rtp_blocks(l.sip_log, offset)
        if blocks:
            return blocks[-1]
        time.sleep(0.2)
    raise StepFailed("linphone logged no RTP statistics")


def established(b, since, who):
    ev = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT, since)
    if not ev or ev["type"] != "CALL_ESTABLISHED":
        raise StepFailed("%s: %s" % (who, ev.get("param") if ev else "no call within %d s" % WAIT))
    if not b.wait_event({"CALL_RTPESTAB"}, WAIT, since):
        raise StepFailed("%s received no RTP" % who)


def still_up(b, since):
    ev = b.wait_event({"CALL_CLOSED"}, 0, since)
    if ev:
        raise StepFailed("%s's call ended: %s" % (b.user, ev.get("param")))


def hang_up(b, since):
    mark = b.mark()
    b.command("hangup")
    if not b.wait_event({"CALL_CLOSED"}, WAIT, mark):
        raise StepFailed("%s: no CALL_CLOSED" % b.user)


# ---- the two transfers ------------------------------------------------------------------

class Marks:
    """Where every log stood when a transfer began."""

    def __init__(self, tandem, dump, *phones_):
        self.cdr = last_cdr_id(tandem)
        self.tandem, self.dump = tandem.log.mark(), file_size(dump)
        self.events = {p.user: p.mark() for p in phones_ if isinstance(p, Baresip)}
        self.logs = {p.user: p.log.mark() for p in phones_}
        self.linphone = {p.user: file_size(p.sip_log) for p in phones_ if isinstance(p, Linphone)}


def blind_by_baresip(run, tandem, alice, bob, carol, dump):
    """alice (baresip) calls bob (linphone), then transfers him to carol."""
    prefix = "blind (baresip alice transfers linphone bob): "
    m = Marks(tandem, dump, alice, bob, carol)

    def call():
        r = alice.command("dial", "sip:bob@%s" % DOMAIN)
        if not r.get("ok"):
            raise StepFailed("baresip dial: %s" % r.get("data"))
        established(alice, m.events["alice"], "alice")
        if not bob.log.wait(r"Call \d+ with .* connected", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call connected")
        time.sleep(TALK)
        return "established, RTP both ways"

    def transfer():
        r = alice.command("transfer", CAROL)
        if not r.get("ok"):
            raise StepFailed("baresip transfer: %s" % r.get("data", "").strip())
        established(carol, m.events["carol"], "carol")
        ev = alice.wait_event({"CALL_CLOSED"}, WAIT, m.events["alice"])
        if not ev:
            raise StepFailed("alice's call did not end after the transfer")
        who = ("tandem hung alice up" if tandem.log.find(r"did not hang up after its transfer",
                                                          m.tandem) else "alice hung up herself")
        return "carol rang and answered; alice's call closed (%s; %s)" % (ev.get("param"), who)

    def talk():
        if bob.log.find(r"Call \d+ .*(ended|error)", m.logs["bob"]):
            raise StepFailed("bob's call ended: %s" % bob.log.find(r"ended|error", m.logs["bob"]))
        out = talking(carol)
        still_up(carol, m.events["carol"])
        return out

    def hangup():
        a_tx, _ = baresip_summary(alice, m.logs["alice"])
        hang_up(carol, m.events["carol"])
        if not bob.log.wait(r"Call \d+ .*ended", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call ended")
        b_tx, b_rx = linphone_stream(bob, m.linphone["bob"])
        c_tx, c_rx = baresip_summary(carol, m.logs["carol"])
        # bob's one stream heard alice, then carol: what alice sent is not all of it.
        summary = ("bob's stream (alice, then carol) sent %d, received %d; alice sent %d, carol sent %d"
                   % (b_tx, b_rx, a_tx, c_tx))
        if b_rx - a_tx < 40 * TALK:
            raise StepFailed("bob received nothing from carol: " + summary)
        return summary

    if not run.step(prefix + "alice calls bob", call):
        alice.command("hangup")
        return
    if run.step(prefix + "alice transfers bob to carol", transfer):
        run.step(prefix + "bob talks to carol (carol's RTP counters)", talk)
        run.step(prefix + "carol hangs up; bob heard carol (linphone's counters)", hangup)
    run.step(prefix + "CDRs: two segments of one session", lambda: check_segments(
        tandem, m.cdr, [("alice", "bob", "transfer", 1, "s"), ("bob", "carol", "callee", 2, "s")],
        "alice"))
    run.step(prefix + "tandem's log", lambda: no_errors(tandem, m.tandem))
    print_trace("baresip (alice, the transferor)", tandem, m.tandem, dump, m.dump, alice)
    print_trace("linphone (bob, transferred)", tandem, m.tandem, dump, m.dump, bob)
    print_trace("baresip (carol, the target)", tandem, m.tandem, dump, m.dump, carol)


def linphone_calls(bob, since, state="connected"):
    """Call ids linphonec reported in that state since a mark, in order."""
    ids = []
    for line in bob.log.find(r"Call \d+ with .* %s" % state, since):
        n = int(re.search(r"Call (\d+)", line).group(1))
        if n not in ids:
            ids.append(n)
    return ids


def attended_by_linphone(run, tandem, alice, bob, carol, dump):
    """bob (linphone) calls alice, pauses her, calls carol, transfers alice
    to carol attended."""
    prefix = "attended (linphone bob transfers baresip alice): "
    m = Marks(tandem, dump, alice, bob, carol)
    calls = {}

    def call_alice():
        bob.send("call sip:alice@%s" % DOMAIN)
        established(alice, m.events["alice"], "alice")
        if not bob.log.wait(r"Call \d+ with .* connected", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call connected")
        calls["alice"] = linphone_calls(bob, m.logs["bob"])[-1]
        time.sleep(TALK)
        return "linphone's call %d" % calls["alice"]

    def pause():
        since = bob.log.mark()
        bob.send("pause")
        line = bob.log.wait(r"is now paused|error|ended", WAIT, since)
        if not line or "paused" not in line:
            raise StepFailed("linphone pause: %s" % line)
        return line.replace("linphonec> ", "").strip()

    def call_carol():
        since = bob.log.mark()
        bob.send("call %s" % CAROL)
        established(carol, m.events["carol"], "carol")
        if not bob.log.wait(r"Call \d+ with .*carol.* connected", WAIT, since):
            raise StepFailed("linphone does not report the call to carol connected")
        calls["carol"] = linphone_calls(bob, since)[-1]
        time.sleep(TALK)
        return "linphone's call %d" % calls["carol"]

    def transfer():
        since = bob.log.mark()
        bob.send("transfer %d --to-call %d" % (calls["alice"], calls["carol"]))
        deadline = time.monotonic() + WAIT
        while set(linphone_calls(bob, since, "ended")) < {calls["alice"], calls["carol"]}:
            if time.monotonic() > deadline:
                raise StepFailed("bob's calls did not both end: %s"
                                 % bob.log.find(r"Call \d+", since)[-6:])
            time.sleep(0.2)
        still_up(alice, m.events["alice"])
        still_up(carol, m.events["carol"])
        return "bob's calls %d and %d ended; alice's and carol's calls up" % (calls["alice"],
                                                                            calls["carol"])

    def hangup():
        hang_up(alice, m.events["alice"])
        if not carol.wait_event({"CALL_CLOSED"}, WAIT, m.events["carol"]):
            raise StepFailed("carol: no CALL_CLOSED")
        return "alice and carol closed"

    if not run.step(prefix + "bob calls alice", call_alice):
        bob.send("terminate")
        return
    if not (run.step(prefix + "bob pauses alice", pause) and
            run.step(prefix + "bob calls carol", call_carol)):
        bob.send("terminate all")
        return
    if run.step(prefix + "bob transfers alice to carol", transfer):
        run.step(prefix + "alice talks to carol (both RTP counters)", lambda: talking(alice, carol))
        run.step(prefix + "alice hangs up", hangup)
    run.step(prefix + "CDRs", lambda: check_segments(
        tandem, m.cdr, [("bob", "alice", "transfer", 1, "alice's"),
                        ("bob", "carol", "transfer", 1, "carol's"),
                        ("alice", "carol", "caller", 2, "alice's")], "bob"))
    run.step(prefix + "tandem's log", lambda: no_errors(tandem, m.tandem))
    print_trace("linphone (bob, the transferor)", tandem, m.tandem, dump, m.dump, bob)
    print_trace("baresip (alice, transferred)", tandem, m.tandem, dump, m.dump, alice)
    print_trace("baresip (carol, the target)", tandem, m.tandem, dump, m.dump, carol)


def blind_by_linphone(run, tandem, alice, bob, carol, dump):
    """bob (linphone) calls alice (baresip), then transfers her to carol
    (`transfer <call id> <uri>`)."""
    prefix = "blind (linphone bob transfers baresip alice): "
    m = Marks(tandem, dump, alice, bob, carol)
    calls = {}

    def call():
        bob.send("call sip:alice@%s" % DOMAIN)
        established(alice, m.events["alice"], "alice")
        if not bob.log.wait(r"Call \d+ with .* connected", WAIT, m.logs["bob"]):
            raise StepFailed("linphone does not report the call connected")
        calls["alice"] = linphone_calls(bob, m.logs["bob"])[-1]
        time.sleep(TALK)
        return "linphone's call %d" % calls["alice"]

    def transfer():
        bob.send("transfer %d %s" % (calls["alice"], CAROL))
        established(carol, m.events["carol"], "carol")
        deadline = time.monotonic() + WAIT
        while calls["alice"] not in linphone_calls(bob, m.logs["bob"], "ended"):
            if time.monotonic() > deadline:
                raise StepFailed("bob's call did not end: %s" % bob.log.find(r"Call \d+", m.logs["bob"])[-4:])
            time.sleep(0.2)
        still_up(alice, m.events["alice"])
        who = ("tandem hung bob up" if tandem.log.find(r"did not hang up after its transfer", m.tandem)
               else "bob hung up himself")
        return "carol rang and answered; bob's call ended (%s)" % who

    def hangup():
        hang_up(carol, m.events["carol"])
        if not alice.wait_event({"CALL_CLOSED"}, WAIT, m.events["alice"]):
            raise StepFailed("alice: no CALL_CLOSED")
        return "carol and alice closed"

    if not run.step(prefix + "bob calls alice", call):
        bob.send("terminate")
        return
    if run.step(prefix + "bob transfers alice to carol", transfer):
        run.step(prefix + "alice talks to carol (both RTP counters)", lambda: talking(alice, carol))
        run.step(prefix + "carol hangs up", hangup)
    run.step(prefix + "CDRs: two segments of one session", lambda: check_segments(
        tandem, m.cdr, [("bob", "alice", "transfer", 1, "s"), ("alice", "carol", "callee", 2, "s")],
        "bob"))
    run.step(prefix + "tandem's log", lambda: no_errors(tandem, m.tandem))
    print_trace("linphone (bob, the transferor)", tandem, m.tandem, dump, m.dump, bob)
    print_trace("baresip (alice, transferred)", tandem, m.tandem, dump, m.dump, alice)


def scenario(run, args, work, procs):
    sip_port, a_port, b_port, c_port = pick_ports(4, span=2)
    audio = os.path.join(work, "voice.wav")
    write_tone(audio, seconds=240)
    dump = os.path.join(work, "tandem-sip.dump")
    os.environ["TPORT_DUMP"] = dump   # Sofia writes every message tandem sends and receives
    state = {}

    def start_tandem():
        state["tandem"] = Tandem(args.build, work, sip_port)
        procs.append(state["tandem"])
        return "on 127.0.0.1:%d" % sip_port

    if not run.step("tandem starts on a copy of config/tandem.conf", start_tandem):
        return False
    tandem = state["tandem"]
    passwords = sample_passwords(tandem.conf)
    for user in ("alice", "bob", "carol"):
        if user not in passwords:
            raise StepFailed("config/tandem.conf has no [user %s] with a password" % user)
    alice = Baresip(work, "alice", passwords["alice"], a_port, (a_port + 10, a_port + 59),
                    a_port + 100, sip_port, audio, name="alice-baresip")
    procs.append(alice)
    carol = Baresip(work, "carol", passwords["carol"], c_port, (c_port + 10, c_port + 59),
                    c_port + 100, sip_port, audio, name="carol-baresip")
    procs.append(carol)
    bob = Linphone(work, "bob", passwords["bob"], b_port, (b_port + 10, b_port + 59), sip_port,
                   audio, 0)
    procs.append(bob)
    alice.port, bob.port, carol.port = a_port, b_port, c_port

    if not all([run.step("baresip (alice) registers", lambda: baresip_registers(alice)),
                run.step("baresip (carol) registers", lambda: baresip_registers(carol)),
                run.step("linphone (bob) registers", lambda: linphone_registers(bob))]):
        return False
    for flow in (blind_by_baresip, blind_by_linphone, attended_by_linphone):
        failed = sum(not ok for _, ok, _ in run.results)
        flow(run, tandem, alice, bob, carol, dump)
        if sum(not ok for _, ok, _ in run.results) > failed:
            settle(tandem, alice, bob, carol)
    return True


def settle(tandem, alice, bob, carol):
    """After a failed flow: every phone hangs up what it still has, so that
    the next flow starts from idle phones."""
    bob.send("terminate all")
    for b in (alice, carol):
        for _ in range(3):
            b.command("hangup")
    # Done when tandem has seen no SIP message for 1 s (the BYEs are over).
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
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    return phones.drive(args, scenario)


if __name__ == "__main__":
    raise SystemExit(main())
