#!/usr/bin/env python3
"""soak.py - a long mixed load against each server binary, then a check that
its memory and descriptors came back to where they were.

    python3 tests/soak/soak.py [--requests N] [--max-seconds S] BINARY...

What it teaches: a leak of a few bytes per request, or of one descriptor per
thousand connections, is invisible in a functional test and fatal in a
server that runs for weeks. Only volume shows it. For each binary:

  1. start it on --port 0 with a small temporary site; after one request,
     count its descriptors: the baseline;
  2. warm-up: the same mix as the load, a fifth of its volume, so that
     buffers, allocator arenas and thread stacks reach their working size;
     once idle, read VmRSS: the warm RSS;
  3. load: at least N requests of the mix (below); once idle again, read
     VmRSS and count descriptors;
  4. pass if every answer was 2xx without a socket error, the descriptors
     equal the baseline, and RSS after the load is within RSS_MARGIN of the
     warm RSS (a fraction, plus a fixed slack for allocator noise): "no
     growth" means ten times the volume of the warm-up did not add memory.
     Then SIGTERM, and the exit code must be 0.

The mix, three wrk instances at once: mix.lua on 8 keep-alive connections
(/plaintext, /json, a small and a 64 KiB static file, POST /echo with 1 KiB,
a /delay/1 every 500th request), pipeline.lua on 4 connections (16 requests
per write), and /plaintext with `Connection: close` on 2 (a new connection
per request). Each round runs them for a few seconds; rounds repeat until N
requests are done, bounded by --max-seconds.

Prints one line per binary (`soak PASS|FAIL server-X: ...`) and a final
`soak: N passed, N failed`. Needs: wrk (Debian package wrk), Linux /proc,
Python 3.7+ standard library.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RSS_MARGIN = (0.10, 2048)  # allowed growth: 10% of the warm RSS plus 2 MiB (KiB)
IDLE_WAIT_S = 1.0           # quiet time before reading RSS and descriptors
READY_LINE = re.compile(r"listening on http://\S+:(\d+) backend=(\w+)")

# (name, wrk arguments after the URL's host part); the URL path is the
# script's default and is overridden by the scripts themselves.
LOADS = [
    ("mix", ["-c", "8", "-s", os.path.join(HERE, "mix.lua")], "/"),
    ("pipeline", ["-c", "4", "-s", os.path.join(HERE, "pipeline.lua")], "/"),
    ("close", ["-c", "2", "-H", "Connection: close"], "/plaintext"),
]


class SoakError(Exception):
    """The soak of one binary failed; the message says why in one line."""


def make_site():
    """A temporary --root with the two static files the mix asks for."""
    top = tempfile.mkdtemp(prefix="iomodels-soak-")
    with open(os.path.join(top, "small.txt"), "wb") as f:
        f.write(b"a small static file for the soak test\n")
    with open(os.path.join(top, "64k.bin"), "wb") as f:
        f.write(bytes(i % 251 for i in range(65536)))
    return top


def start_server(binary, root):
    """Starts BINARY on --port 0; returns (process, port) after its ready line."""
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen([binary, "--port", "0", "--root", root], stdout=out,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
        m = READY_LINE.search(text)
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            raise SoakError("exited with code %d before its ready line" % proc.returncode)
        time.sleep(0.02)
    proc.kill()
    raise SoakError("no ready line within 10 s")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SoakError("no VmRSS for pid %d" % pid)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def one_request(port):
    """One GET /plaintext on a fresh connection (so that lazily opened
    descriptors are counted in the baseline)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 200 "):
        raise SoakError("a single request got %r" % data[:40])


def parse_wrk(name, text):
    """Requests done by one wrk run; SoakError on any error or non-2xx."""
    m = re.search(r"(\d+) requests in", text)
    if m is None:
        raise SoakError("%s: wrk printed no request count: %s" % (name, text[-200:]))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       text)
    if errors and any(int(x) for x in errors.groups()):
        raise SoakError("%s: wrk %s" % (name, errors.group(0)))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad:
        raise SoakError("%s: %s non-2xx answers" % (name, bad.group(1)))
    return int(m.group(1))


def run_round(port, seconds):
    """Runs the three loads at once for `seconds`; returns the requests done."""
    procs = []
    for name, args, path in LOADS:
        argv = ["wrk", "-t1", "-d%ds" % seconds, "--timeout", "5s"] + args + [
            "http://127.0.0.1:%d%s" % (port, path)]
        procs.append((name, subprocess.Popen(argv, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT)))
    total = 0
    for name, p in procs:
        try:
            out, _ = p.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise SoakError("%s: wrk overran its %d s by 30 s" % (name, seconds))
        total += parse_wrk(name, out.decode("utf-8", "replace"))
    return total


def run_phase(port, want, deadline):
    """Rounds of the mix until `want` requests are done; SoakError if the
    deadline comes first. Each round is sized from the rate seen so far."""
    done, began, seconds = 0, time.monotonic(), 1
    while done < want:
        if time.monotonic() + seconds > deadline:
            raise SoakError("only %d of %d requests before the time limit" % (done, want))
        done += run_round(port, seconds)
        rate = done / max(0.1, time.monotonic() - began)
        seconds = int(min(20, max(1, (want - done) / max(rate, 1) + 1)))
    return done


def wait_fds(pid, base, seconds=5.0):
    """The descriptor count once it is back at base, or after `seconds`."""
    deadline = time.monotonic() + seconds
    n = fd_count(pid)
    while n > base and time.monotonic() < deadline:
        time.sleep(0.1)
        n = fd_count(pid)
    return n


def soak_one(binary, want, max_seconds):
    """Soaks one binary; returns the one-line summary, SoakError if it fails."""
    root = make_site()
    proc = None
    try:
        proc, port = start_server(binary, root)
        one_request(port)
        time.sleep(0.2)
        fd_base = fd_count(proc.pid)
        rss_start = rss_kib(proc.pid)
        deadline = time.monotonic() + max_seconds
        warm = run_phase(port, want // 5, deadline)
        time.sleep(IDLE_WAIT_S)
        fd_warm = wait_fds(proc.pid, fd_base)
        rss_warm = rss_kib(proc.pid)
        load = run_phase(port, want, deadline)
        time.sleep(IDLE_WAIT_S)
        fd_after = wait_fds(proc.pid, fd_base)
        rss_after = rss_kib(proc.pid)
        figures = ("%d+%d requests; RSS KiB start %d, warm %d, after %d; fds base %d, "
                   "warm %d, after %d" % (warm, load, rss_start, rss_warm, rss_after, fd_base,
                                          fd_warm, fd_after))
        limit = rss_warm * (1 + RSS_MARGIN[0]) + RSS_MARGIN[1]
        problems = []
        if fd_after != fd_base:
            problems.append("descriptors %d, baseline %d" % (fd_after, fd_base))
        if rss_after > limit:
            problems.append("RSS grew to %d KiB, over the %d KiB allowed" % (rss_after, limit))
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "none (killed 10 s after SIGTERM)"
        if code != 0:
            problems.append("exit code %s after SIGTERM" % code)
        if problems:
            raise SoakError("%s: %s" % ("; ".join(problems), figures))
        return figures
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def main(argv):
    p = argparse.ArgumentParser(description="Soak test: long mixed load, then no growth.")
    p.add_argument("binaries", nargs="+")
    p.add_argument("--requests", type=int, default=1000000,
                   help="requests of the load phase per binary (the warm-up adds a fifth)")
    p.add_argument("--max-seconds", type=float, default=180,
                   help="time limit for warm-up and load of one binary")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("soak.py: wrk not found (Debian package wrk; scripts/ensure-deps.sh bench)",
              file=sys.stderr)
        return 2
    passed = failed = 0
    for binary in args.binaries:
        name = os.path.basename(binary)
        began = time.monotonic()
        try:
            figures = soak_one(binary, args.requests, args.max_seconds)
            passed += 1
            print("soak PASS %s (%.0fs): %s" % (name, time.monotonic() - began, figures),
                  flush=True)
        except (SoakError, OSError) as e:
            failed += 1
            print("soak FAIL %s (%.0fs): %s" % (name, time.monotonic() - began, e), flush=True)
    print("soak: %d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
