#!/usr/bin/env python3
"""Real phones against tandem: baresip 1.0 (alice) and linphonec 5.1 (bob).

Starts tandem from a build folder on a copy of config/tandem.conf (only the
SIP port changed; the store and hold music are relative to the copy), starts
baresip headless (commands over ctrl_tcp, netstring JSON) and linphonec
(commands on stdin), then: both register; alice calls bob, each holds and
resumes, alice hangs up; bob calls alice, each holds and resumes, bob hangs
up. Every step is checked by what the phones report (registration, call
established, hold/resume seen by the other side, RTP counters), by tandem's
log (no call torn down by tandem) and by tandem's CDR table. With
--session-timer, a last call from bob (linphone, session timer 90 s) to alice
(baresip, no UPDATE) is held for 50 s, past the first refresh at 45 s.

Only loopback traffic. Python 3 standard library only. Exit status 0 when
every step passed, 1 otherwise, 77 when a phone is not installed (skip).
Usage: tests/phones/phones.py [--build build] [--session-timer] [--keep]
"""

import argparse
import json
import os
import queue
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import wave

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOMAIN = "pbx.test"
SKIP = 77


class StepFailed(Exception):
    pass


# ---- ports -----------------------------------------------------------------

def port_free(port):
    """True when port is free on 127.0.0.1 for both UDP and TCP."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_ports(count, span=1, low=10000, high=19800):
    """count base ports, each with `span` free ports from it (baresip also
    binds TLS on SIP port + 1), 200 apart: each phone takes its RTP ports
    from base + 10 on. Below 20000, the flow tests' media ranges (8000-9999,
    20000-32699), and below the kernel's ephemeral range (32768-)."""
    import random
    rng = random.Random(os.getpid() ^ int(time.time()))
    found = []
    for _ in range(2000):
        base = rng.randrange(low, high - span)
        if any(abs(base - other) < 200 for other in found):
            continue
        if all(port_free(base + i) for i in range(span)):
            found.append(base)
            if len(found) == count:
                return found
    raise StepFailed("no free ports on 127.0.0.1")


# ---- processes ---------------------------------------------------------------

class LineLog:
    """Follows a process's output (a pipe) line by line into a file and a list."""

    def __init__(self, stream, path):
        self.lines = []
        self.cond = threading.Condition()
        self.file = open(path, "w", buffering=1)
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.file.write(line + "\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait(self, pattern, timeout, since=0):
        """The first line from index `since` matching pattern, or None."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[since:]:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def find(self, pattern, since=0):
        regex = re.compile(pattern)
        with self.cond:
            return [l for l in self.lines[since:] if regex.search(l)]


def start(argv, log_path, env=None, stdin=None, cwd=None):
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, cwd=cwd, start_new_session=True)
    return proc, LineLog(proc.stdout, log_path)


def stop(proc, timeout=5):
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- tandem --------------------------------------------------------------------

def write_tandem_config(src, dst, sip_port, overrides, additions=()):
    """The sample configuration with only the SIP port changed, and the
    --set GROUP.KEY=VALUE overrides (each must name an existing line). The
    media ports stay: tandem passes over pairs other programs hold.
    additions: ((GROUP, KEY), VALUE) lines added at the end of an existing
    GROUP that has no KEY line yet (a test's own settings, e.g. a user's
    ringback)."""
    group = None
    out = []
    added = dict(additions)
    changed = set()
    wanted = dict(overrides)
    for line in open(src):
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            add_lines(out, group, added)
            group = m.group(1)
        key = re.match(r"\s*([a-z-]+)\s*=", line)
        key = key.group(1) if key else None
        if key and (group, key) in added:
            raise StepFailed("%s has [%s] %s already: use --set" % (src, group, key))
        if key and (group, key) in wanted:
            line = "%s = %s   # phones.py --set\n" % (key, wanted.pop((group, key)))
        elif group == "sip" and key == "listen":
            line = "listen = 127.0.0.1:%d\n" % sip_port
            changed.add("listen")
        out.append(line)
    add_lines(out, group, added)
    if changed != {"listen"}:
        raise StepFailed("%s has no [sip] listen line" % src)
    if wanted:
        raise StepFailed("--set: %s has no such line: %s"
                         % (src, ", ".join("[%s] %s" % k for k in wanted)))
    if added:
        raise StepFailed("%s has no group for: %s" % (src, ", ".join("[%s] %s" % k for k in added)))
    with open(dst, "w") as f:
        f.writelines(out)


def add_lines(out, group, added):
    """Appends (and takes from added) the additions for group, before the
    blank lines and comments that end it."""
    lines = ["%s = %s   # added by the test\n" % (k, added.pop((g, k))) for g, k in list(added)
             if g == group]
    at = len(out)
    while at > 0 and re.match(r"\s*(#.*)?$", out[at - 1]):
        at -= 1
    out[at:at] = lines


def configured_hold_music(path):
    """[hold] music (or its old spelling, [media] hold-music) names a file."""
    group = None
    for line in open(path):
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            group = m.group(1).strip()
        m = re.match(r"\s*([a-z-]+)\s*=\s*[^\s#]", line)
        if m and (group, m.group(1)) in (("hold", "music"), ("media", "hold-music")):
            return True
    return False


def sample_passwords(path):
    users, user = {}, None
    for line in open(path):
        m = re.match(r"\s*\[user\s+(\S+)\]", line)
        if m:
            user = m.group(1)
            continue
        if re.match(r"\s*\[", line):
            user = None
        m = re.match(r"\s*password\s*=\s*(\S+)", line)
        if user and m:
            users[user] = m.group(1)
    return users


class Tandem:
    def __init__(self, build, work, sip_port, overrides=(), additions=()):
        self.conf = os.path.join(work, "tandem.conf")
        write_tandem_config(os.path.join(SOURCE_ROOT, "config", "tandem.conf"), self.conf,
                            sip_port, overrides, additions)
        shutil.copytree(os.path.join(SOURCE_ROOT, "config", "tunes"), os.path.join(work, "tunes"))
        self.db = os.path.join(work, "tandem.db")
        self.port = sip_port
        self.hold_music = configured_hold_music(self.conf)
        binary = os.path.join(build, "b2bua", "tandem")
        env = dict(os.environ)
        env.pop("TANDEM_PLUGIN_DIR", None)   # the build tree's plugins, found by tandem itself
        self.proc, self.log = start([binary, "-d", "-c", self.conf],
                                    os.path.join(work, "tandem.log"), env=env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            if not port_free(sip_port):
                return
            time.sleep(0.1)
        raise StepFailed("tandem did not start (exit %s), see tandem.log" % self.proc.poll())

    def cdrs(self, count=0):
        """The CDR rows, once there are at least count (or after 5 s): a phone
        reports its call closed when the BYE reaches it, before its 200 reaches
        tandem, which writes the row only then."""
        deadline = time.monotonic() + 5
        while True:
            db = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=2)
            try:
                rows = db.execute("SELECT caller, callee, answered_at IS NOT NULL, status, hangup,"
                                  " reason, ended_at - answered_at FROM cdrs ORDER BY id").fetchall()
            finally:
                db.close()
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)


# ---- baresip --------------------------------------------------------------------

class Baresip:
    """baresip 1.0 driven over ctrl_tcp: {"command","params","token"} in
    netstrings; it answers {"response":true,...} and reports
    {"event":true,"type":...}."""

    def __init__(self, work, user, password, sip_port, rtp_ports, ctrl_port, tandem_port, audio,
                 name="baresip", answermode="auto", codecs="PCMU/8000/1,PCMA/8000/1", extra=(),
                 sip_trace=False, account_params="", tls_port=None):
        """name: its config folder and log files in work (a second baresip needs another).
        answermode: auto, or manual (the test sends `accept`); codecs: its
        audio_codecs, in offer order; extra: more config lines (modules);
        sip_trace: baresip -s, every SIP message whole in its log;
        account_params: more ;name=value of its account (e.g. ;mediaenc=srtp-mand);
        tls_port: register and call over TLS to tandem's tls-listen port (its
        config then needs sip_cafile in extra)."""
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.user = user
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write("\n".join([
                "poll_method epoll",
                "sip_listen 127.0.0.1:%d" % sip_port,
                "net_interface 127.0.0.1",
                "audio_source aufile,%s" % audio,
                "audio_player alsa,null",
                "audio_alert alsa,null",
                "rtp_ports %d-%d" % rtp_ports,
                "rtp_stats yes",
                "call_local_timeout 120",
                "module_path /usr/lib/baresip/modules",
                "module g711.so", "module aufile.so", "module alsa.so",
                "module_app account.so", "module_app menu.so", "module_app ctrl_tcp.so",
                "ctrl_tcp_listen 127.0.0.1:%d" % ctrl_port]
                + list(extra) + [""]))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write('<sip:%s@%s%s>;auth_pass=%s;outbound="sip:127.0.0.1:%d;transport=%s";'
                    'regint=600;answermode=%s;audio_codecs=%s%s\n'
                    % (user, DOMAIN, ";transport=tls" if tls_port else "", password,
                       tls_port or tandem_port, "tls" if tls_port else "udp", answermode, codecs,
                       account_params))
        self.proc, self.log = start(["baresip", "-4", "-f", self.dir] + (["-s"] if sip_trace else []),
                                    os.path.join(work, name + ".log"), stdin=subprocess.DEVNULL)
        self.events = []
        self.cond = threading.Condition()
        self.responses = queue.Queue()
        self.sock = None
        deadline = time.monotonic() + 10
        while self.sock is None:
            try:
                self.sock = socket.create_connection(("127.0.0.1", ctrl_port), timeout=1)
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise StepFailed("baresip's ctrl_tcp did not open, see %s.log" % name)
                time.sleep(0.1)
        self.sock.settimeout(None)
        self.log_file = open(os.path.join(work, name + "-events.log"), "w", buffering=1)
        threading.Thread(target=self._read, daemon=True).start()
        self.token = 0

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                length = int(buf[:colon])
                if len(buf) < colon + 1 + length + 1:
                    break
                msg = json.loads(buf[colon + 1:colon + 1 + length])
                buf = buf[colon + 1 + length + 1:]
                self.log_file.write(json.dumps(msg) + "\n")
                if msg.get("response"):
                    self.responses.put(msg)
                else:
                    with self.cond:
                        self.events.append(msg)
                        self.cond.notify_all()

    def command(self, command, params=""):
        self.token += 1
        body = json.dumps({"command": command, "params": params, "token": str(self.token)}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))
        try:
            return self.responses.get(timeout=5)
        except queue.Empty:
            raise StepFailed("baresip did not answer command %s" % command)

    def mark(self):
        with self.cond:
            return len(self.events)

    def wait_event(self, types, timeout, since=0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events[since:]:
                    if ev.get("type") in types:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        if self.sock:
            try:
                self.command("quit")
            except (StepFailed, OSError):
                pass
        stop(self.proc)


# ---- linphonec ---------------------------------------------------------------------

class Linphone:
    """linphonec 5.1: commands on stdin, HOME in the work folder."""

    def __init__(self, work, user, password, sip_port, rtp_ports, tandem_port, audio, session_expires,
                 auto_answer=True, extra_sip=()):
        """auto_answer: linphonec -a; without it the test sends `answer`.
        extra_sip: more [sip] lines (e.g. media_encryption=srtp)."""
        self.user = user
        home = os.path.join(work, "linphone-home")
        os.makedirs(os.path.join(home, ".local", "share", "linphone"))   # its call-log database
        self.rc = os.path.join(home, "linphonerc")
        with open(self.rc, "w") as f:
            f.write("\n".join([
                "[sip]",
                "sip_port=%d" % sip_port,
                "sip_tcp_port=0",
                "sip_tls_port=0",
                "default_proxy=0",
                "guess_hostname=1",
                "inc_timeout=60",
                "session_expires_enabled=%d" % (1 if session_expires else 0),
                "session_expires_value=%d" % (session_expires or 0)] + list(extra_sip) + [
                "[net]",
                "ipv6=0",
                "dns_srv_enabled=0",
                "[rtp]",
                "audio_rtp_port=%d-%d" % rtp_ports,
                "[sound]",
                "echocancellation=0",
                "[proxy_0]",
                "reg_proxy=<sip:127.0.0.1:%d;transport=udp>" % tandem_port,
                "reg_identity=sip:%s@%s" % (user, DOMAIN),
                "reg_expires=600",
                "reg_sendregister=1",
                # Every request through tandem: no DNS lookup of pbx.test.
                "reg_route=<sip:127.0.0.1:%d;transport=udp;lr>" % tandem_port,
                "publish=0",
                "[auth_info_0]",
                "username=%s" % user,
                "passwd=%s" % password,
                "realm=%s" % DOMAIN,
                "domain=%s" % DOMAIN,
                "[misc]",
                "uuid=0",
                ""]))
        env = dict(os.environ, HOME=home)
        self.sip_log = os.path.join(work, "linphone-sip.log")
        self.proc, self.log = start(["linphonec", "-c", self.rc] + (["-a"] if auto_answer else [])
                                    + ["-d", "5", "-l", self.sip_log],
                                    os.path.join(work, "linphone.log"), env=env,
                                    stdin=subprocess.PIPE, cwd=home)
        self.audio = audio
        self.record = os.path.join(work, "linphone-heard.wav")
        self.send("soundcard use files")
        self.send("play %s" % audio)
        self.send("record %s" % self.record)

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def close(self):
        try:
            self.send("quit")
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop(self.proc)


# ---- the run ----------------------------------------------------------------------------

class Run:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.results = []

    def step(self, name, func):
        start_t = time.monotonic()
        try:
            detail = func() or ""
            ok = True
        except StepFailed as e:
            detail, ok = str(e), False
        took = time.monotonic() - start_t
        self.results.append((name, ok, detail))
        print("%s %s (%.1f s)%s" % ("ok" if ok else "FAIL", name, took, ": " + detail if detail else ""),
              flush=True)
        return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SOURCE_ROOT, "build"),
                    help="meson build folder with b2bua/tandem (default: SOURCE/build)")
    ap.add_argument("--session-timer", action="store_true",
                    help="run tandem with [calls] session-timer = 90 and hold a linphone->baresip "
                         "call for 50 s, past tandem's first refresh at 45 s")
    ap.add_argument("--keep", action="store_true", help="keep the work folder with all logs")
    ap.add_argument("--work", help="work folder (default: a new temporary one)")
    ap.add_argument("--set", action="append", default=[], metavar="GROUP.KEY=VALUE",
                    help="change one line of the sample configuration (repeatable), e.g. "
                         "auth.algorithms=MD5")
    args = ap.parse_args()
    overrides = []
    for item in args.set:
        m = re.match(r"([a-z]+(?: [a-z0-9_-]+)?)\.([a-z-]+)=(.*)$", item)
        if not m:
            ap.error("--set %s: want GROUP.KEY=VALUE" % item)
        overrides.append(((m.group(1), m.group(2)), m.group(3)))
    if args.session_timer and not any(k == ("calls", "session-timer") for k, _ in overrides):
        overrides.append((("calls", "session-timer"), "90"))
    args.set = overrides
    args.build = os.path.abspath(args.build)
    return drive(args, scenario)


def drive(args, scenario):
    """Runs scenario(run, args, work, procs) in a work folder, stops every
    process it appended to procs, prints the summary: the exit status."""
    for tool in ("baresip", "linphonec"):
        if not shutil.which(tool):
            print("SKIP: %s is not installed (apt-get install baresip linphone-cli)" % tool)
            return SKIP
    work = args.work or tempfile.mkdtemp(prefix="tandem-phones.")
    os.makedirs(work, exist_ok=True)
    print("work folder: %s" % work, flush=True)
    run = Run(args, work)
    procs = []
    t0 = time.monotonic()
    ok = False
    try:
        ok = scenario(run, args, work, procs)
    except StepFailed as e:
        run.results.append(("set-up", False, str(e)))
        print("FAIL set-up: %s" % e)
    finally:
        for p in reversed(procs):
            if hasattr(p, "close"):
                p.close()
            else:
                stop(p.proc)
    failed = [name for name, ok, _ in run.results if not ok]
    print("%d steps, %d failed%s; %.0f s" % (len(run.results), len(failed),
                                             (": " + ", ".join(failed)) if failed else "",
                                             time.monotonic() - t0))
    if not failed and not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("logs in %s" % work)
    return 0 if ok and not failed else 1


ANSI = re.compile(r"\x1b\[[0-9;]*m")
WAIT = 10          # seconds any single phone reaction may take
TALK = 2           # seconds of audio between steps


def linphone_rtp_blocks(path, offset):
    """(sent, received) of each 'AUDIO SESSION'S RTP STATISTICS' block oRTP
    logged (once per stream, i.e. per call or hold/resume) after offset."""
    with open(path, errors="replace") as f:
        f.seek(offset)
        text = f.read()
    blocks = []
    for block in text.split("AUDIO SESSION'S RTP STATISTICS")[1:]:
        sent = re.search(r"ortp-message-sent\s+(\d+) packets", block)
        recv = re.search(r"ortp-message-received\s+(\d+) packets", block)
        if sent and recv:
            blocks.append((int(sent.group(1)), int(recv.group(1))))
    return blocks


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def baresip_registers(b):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        info = ANSI.sub("", b.command("reginfo").get("data", ""))
        if re.search(r"sip:%s@\S+\s+OK" % b.user, info):
            return "REGISTER 200"
        if re.search(r"sip:%s@\S+\s+ERR" % b.user, info):
            reasons = b.log.find(r"reg: ")
            raise StepFailed("baresip: %s" % (ANSI.sub("", reasons[-1]).strip() if reasons
                                              else info.strip()))
        time.sleep(0.3)
    raise StepFailed("baresip did not register within %d s" % WAIT)


def linphone_registers(l):
    deadline = time.monotonic() + WAIT
    line = None
    while time.monotonic() < deadline:
        since = l.log.mark()
        l.send("status register")
        line = l.log.wait(r"registered", 2, since)
        if line and re.search(r"registered, identity=sip:%s@" % l.user, line):
            return "REGISTER 200"
        time.sleep(0.3)
    raise StepFailed("linphone did not register within %d s (last: %s)" % (WAIT, line))


def scenario(run, args, work, procs):
    sip_port, bs_port, lp_port = pick_ports(3, span=2)
    audio = os.path.join(work, "voice.wav")
    write_tone(audio, seconds=240)   # baresip's aufile hangs up when its file ends

    state = {}

    def start_tandem():
        t = Tandem(args.build, work, sip_port, args.set)
        procs.append(t)
        state["tandem"] = t
        changed = "".join("; [%s] %s = %s" % (g, k, v) for (g, k), v in args.set)
        return "%s on 127.0.0.1:%d%s" % (os.path.join(args.build, "b2bua", "tandem"), sip_port, changed)

    if not run.step("tandem starts on a copy of config/tandem.conf", start_tandem):
        return False
    tandem = state["tandem"]
    passwords = sample_passwords(tandem.conf)
    for user in ("alice", "bob"):
        if user not in passwords:
            raise StepFailed("config/tandem.conf has no [user %s] with a password" % user)

    b = Baresip(work, "alice", passwords["alice"], bs_port, (bs_port + 10, bs_port + 59),
                bs_port + 100, sip_port, audio)
    procs.append(b)
    l = Linphone(work, "bob", passwords["bob"], lp_port, (lp_port + 10, lp_port + 59), sip_port,
                 audio, 90)
    procs.append(l)

    registered = [run.step("baresip 1.0 (alice) registers", lambda: baresip_registers(b)),
                  run.step("linphone 5.1 (bob) registers", lambda: linphone_registers(l))]
    if not all(registered):
        print("calls not attempted: a phone is not registered")
        return False

    call_from_baresip(run, tandem, b, l)
    call_from_linphone(run, tandem, b, l, hold_for=0)
    if args.session_timer:
        call_from_linphone(run, tandem, b, l, hold_for=50)
    check_cdrs(run, tandem, args.session_timer)
    return True


def write_tone(path, seconds, freq=440):
    """A 440 Hz tone (or freq, whole Hz), 8 kHz mono 16 bit: what the phones send."""
    import math
    frames = bytearray()
    one = b"".join(int(8000 * math.sin(2 * math.pi * freq * i / 8000)).to_bytes(2, "little", signed=True)
                   for i in range(8000))
    for _ in range(seconds):
        frames += one
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(frames))


def check_music(tandem, tsince, what, held_leg):
    """With [hold] music, tandem answers a hold itself and plays the
    tune to the held party."""
    if what in ("hold", "pause") and tandem.hold_music:
        if not tandem.log.wait(r"playing .* to the %s-leg" % held_leg, WAIT, tsince):
            raise StepFailed("tandem does not play hold music to the %s-leg" % held_leg)
        return "tandem plays hold music to the %s-leg" % held_leg
    return ""


def baresip_hold(tandem, b, l, what, held_leg):
    """baresip holds (hold) or resumes (resume) its call: tandem's answer
    reaches baresip (CALL_REMOTE_SDP answer), the call stays up on both."""
    tsince = tandem.log.mark()
    since = b.mark()
    r = b.command(what)
    if not r.get("ok"):
        raise StepFailed("baresip %s: %s" % (what, r.get("data", "").strip()))
    ev = b.wait_event({"CALL_REMOTE_SDP", "CALL_CLOSED"}, WAIT, since)
    if not ev or ev["type"] != "CALL_REMOTE_SDP":
        raise StepFailed("baresip got no answer to its %s re-INVITE (%s)" % (what, ev))
    time.sleep(TALK)
    if b.wait_event({"CALL_CLOSED"}, 0, since) or l.log.find(r"ended", l.mark_call):
        raise StepFailed("the call ended after baresip's %s" % what)
    return check_music(tandem, tsince, what, held_leg)


def linphone_hold(tandem, b, l, what, held_leg):
    """linphone pauses (pause) or resumes (resume) its call."""
    tsince = tandem.log.mark()
    since = l.log.mark()
    bsince = b.mark()
    l.send(what)
    want = r"is now paused" if what == "pause" else r"Media streams established|resumed"
    line = l.log.wait(want + r"|error|ended", WAIT, since)
    if not line or not re.search(want, line):
        raise StepFailed("linphone %s: %s" % (what, line or "no reaction within %d s" % WAIT))
    time.sleep(TALK)
    if b.wait_event({"CALL_CLOSED"}, 0, bsince) or l.log.find(r"ended", since):
        raise StepFailed("the call ended after linphone's %s" % what)
    return check_music(tandem, tsince, what, held_leg)


def check_media(b, l, bsince, loffset):
    """RTP reached both phones: baresip's call summary (whole call) and
    linphone's last stream (after the last resume)."""
    line = b.log.wait(r"^packets:\s+\d+\s+\d+", WAIT, bsince)
    if not line:
        raise StepFailed("baresip printed no RTP summary")
    tx, rx = map(int, line.split()[1:3])
    deadline = time.monotonic() + WAIT
    blocks = []
    while time.monotonic() < deadline and not blocks:
        blocks = linphone_rtp_blocks(l.sip_log, loffset)
        time.sleep(0.2)
    if not blocks:
        raise StepFailed("linphone logged no RTP statistics")
    lsent, lrecv = blocks[-1]
    summary = "baresip sent %d, received %d RTP packets; linphone's last stream sent %d, received %d" % (
        tx, rx, lsent, lrecv)
    # 50 packets/s: at least TALK s of audio on each side after the last resume.
    if rx < 50 * TALK or tx < 50 * TALK or lrecv < 50 * TALK or lsent < 50 * TALK:
        raise StepFailed(summary)
    return summary


def call_from_baresip(run, tandem, b, l):
    prefix = "A->B (baresip alice calls linphone bob): "
    bsince = b.mark()
    blog = b.log.mark()
    loffset = file_size(l.sip_log)
    l.mark_call = l.log.mark()

    def establish():
        r = b.command("dial", "sip:bob@%s" % DOMAIN)
        if not r.get("ok"):
            raise StepFailed("baresip dial: %s" % r.get("data"))
        ev = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT, bsince)
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            raise StepFailed("baresip: %s" % (ev.get("param") if ev else "no answer within %d s" % WAIT))
        if not l.log.wait(r"Call \d+ with .* connected", WAIT, l.mark_call):
            raise StepFailed("linphone does not report the call connected")
        if not b.wait_event({"CALL_RTPESTAB"}, WAIT, bsince):
            raise StepFailed("baresip received no RTP")
        if not l.log.wait(r"Media streams established", WAIT, l.mark_call):
            raise StepFailed("linphone reports no media streams")
        time.sleep(TALK)
        return "established, RTP both ways"

    if not run.step(prefix + "call established", establish):
        b.command("hangup")
        return
    run.step(prefix + "baresip holds", lambda: baresip_hold(tandem, b, l, "hold", "B"))
    run.step(prefix + "baresip resumes", lambda: baresip_hold(tandem, b, l, "resume", "B"))
    run.step(prefix + "linphone holds", lambda: linphone_hold(tandem, b, l, "pause", "A"))
    run.step(prefix + "linphone resumes", lambda: linphone_hold(tandem, b, l, "resume", "A"))

    def hangup():
        since = b.mark()
        b.command("hangup")
        if not b.wait_event({"CALL_CLOSED"}, WAIT, since):
            raise StepFailed("baresip: no CALL_CLOSED")
        if not l.log.wait(r"Call \d+ .*ended", WAIT, l.mark_call):
            raise StepFailed("linphone does not report the call ended")
        return check_media(b, l, blog, loffset)

    run.step(prefix + "baresip hangs up; RTP reached both", hangup)


def call_from_linphone(run, tandem, b, l, hold_for):
    if hold_for:
        prefix = "B->A with session timers of 90 s, %d s: " % hold_for
    else:
        prefix = "B->A (linphone bob calls baresip alice): "
    bsince = b.mark()
    blog = b.log.mark()
    loffset = file_size(l.sip_log)
    l.mark_call = l.log.mark()
    tmark = tandem.log.mark()

    def establish():
        l.send("call sip:alice@%s" % DOMAIN)
        ev = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, WAIT, bsince)
        if not ev or ev["type"] != "CALL_ESTABLISHED":
            err = l.log.find(r"error|ended", l.mark_call)
            raise StepFailed("baresip: %s; linphone: %s" % (
                ev.get("param") if ev else "no call within %d s" % WAIT, err[-1] if err else "-"))
        if not l.log.wait(r"Call \d+ with .* connected", WAIT, l.mark_call):
            raise StepFailed("linphone does not report the call connected")
        if not b.wait_event({"CALL_RTPESTAB"}, WAIT, bsince):
            raise StepFailed("baresip received no RTP")
        time.sleep(TALK)
        return "established, RTP both ways"

    if not run.step(prefix + "call established", establish):
        l.send("terminate")
        return
    if hold_for:
        def stays_up():
            deadline = time.monotonic() + hold_for
            while time.monotonic() < deadline:
                ev = b.wait_event({"CALL_CLOSED"}, 1, bsince)
                ended = l.log.find(r"Call \d+ .*(ended|error)", l.mark_call)
                if ev or ended:
                    sip = [x.split("|")[0].split(": ", 1)[-1] for x in tandem.log.find(
                        r"(send|recv) .*(UPDATE|BYE|50[0-9] |408 |481 |491 )", tmark)]
                    raise StepFailed("call ended %.0f s into the wait: baresip %s, linphone %s; tandem: %s" % (
                        hold_for - (deadline - time.monotonic()), ev.get("param") if ev else "-",
                        ended[-1] if ended else "-", "; ".join(sip[-6:])))
            # The refreshes tandem sent or answered after the call's set-up (its ACKs).
            lines = tandem.log.find(r"(send|recv) \d+ bytes", tmark)
            acks = [i for i, x in enumerate(lines) if " ACK " in x]
            later = lines[acks[-1] + 1:] if acks else lines
            seen = []
            for x in later:
                m = re.search(r"(send|recv) \d+ bytes (?:to|from) \S+: ([^|]+?) \|", x)
                if m and "REGISTER" not in x:
                    seen.append("%s %s" % (m.group(1), m.group(2).strip()))
            return "up for %d s; tandem since: %s" % (hold_for, ", ".join(seen) or "nothing")
        run.step(prefix + "call stays up", stays_up)
    else:
        run.step(prefix + "linphone holds", lambda: linphone_hold(tandem, b, l, "pause", "B"))
        run.step(prefix + "linphone resumes", lambda: linphone_hold(tandem, b, l, "resume", "B"))
        run.step(prefix + "baresip holds", lambda: baresip_hold(tandem, b, l, "hold", "A"))
        run.step(prefix + "baresip resumes", lambda: baresip_hold(tandem, b, l, "resume", "A"))

    def hangup():
        since = l.log.mark()
        l.send("terminate")
        if not b.wait_event({"CALL_CLOSED"}, WAIT, bsince):
            raise StepFailed("baresip: no CALL_CLOSED")
        if not l.log.wait(r"Call \d+ .*ended", WAIT, since):
            raise StepFailed("linphone does not report the call ended")
        return check_media(b, l, blog, loffset)

    run.step(prefix + "linphone hangs up; RTP reached both", hangup)


def check_cdrs(run, tandem, long_call):
    def cdrs():
        want = [("alice", "bob"), ("bob", "alice")] + ([("bob", "alice")] if long_call else [])
        rows = tandem.cdrs(len(want))
        got = [(r[0], r[1]) for r in rows]
        bad = [r for r in rows if not r[2] or r[3] != 200 or r[4] != "caller"]
        if got != want or bad:
            raise StepFailed("tandem's cdrs (caller, callee, answered, status, hangup, reason, talk s): %s"
                             % rows)
        tandem_ended = tandem.log.find(r"ended: .*hung up by tandem")
        if tandem_ended:
            raise StepFailed("tandem ended calls: %s" % tandem_ended)
        return "; ".join("%s->%s %d, hung up by %s, %.0f s" % (r[0], r[1], r[3], r[4], r[6]) for r in rows)

    run.step("tandem's CDRs: every call answered (200) and hung up by its caller", cdrs)


if __name__ == "__main__":
    sys.exit(main())
