#!/usr/bin/env python3
"""grade.py - grades one lab: the checks of labs/labN-*/lab.json, NN/100.

    grade.py N --server BIN --ref BIN [--unit BIN]... [--solution] [--quick]

Normally run by `make grade LAB=n` (labs/labs.mk), which builds the student's
binaries first. Each check in lab.json is one of:

  integration  named tests of tests/integration/run.py against the student's
               server; points in proportion to the tests that pass
  unit         named tests (substrings) of a cmocka binary built with the
               student's copy; points in proportion to the tests that pass
  perf         server CPU time per request under the same wrk load, the
               student's binary against the reference one, measured in the
               same run and alternated; full points within `ratio`, none past
               twice that, linear between
  report       one answer of labs/work/lab<n>/answers.txt (lab 0) against the
               student's own harness run (report_check.py)

What it teaches: a grader is a test suite with a price on each test. The
performance check is a ratio measured in the same run, never an absolute
number: machines, and neighbours on them, are noisy.

Needs: Python 3.7+, wrk and taskset for the perf check.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import labgen  # noqa: E402
import report_check  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
RUN_PY = os.path.join(REPO, "tests", "integration", "run.py")
RESULT = re.compile(r"^(ok  |FAIL|skip) (\w+)(.*)$")


def say(text=""):
    print(text, flush=True)


# ---- integration tests -------------------------------------------------------

def run_integration(binary, names, budget_s):
    """Runs each named test alone (run.py -k NAME) and returns {name: (ok, why)}.
    A run that outlives budget_s is killed: its tests count as failed."""
    results = {}
    for name in names:
        if name in results:
            continue
        cmd = [sys.executable, RUN_PY, "-k", name, binary]
        try:
            out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 timeout=budget_s, cwd=REPO, universal_newlines=True).stdout
        except subprocess.TimeoutExpired as e:
            out = e.stdout or ""
            if isinstance(out, bytes):
                out = out.decode(errors="replace")
            out += "\nFAIL %s: no result within %ds\n" % (name, budget_s)
        for line in out.splitlines():
            m = RESULT.match(line)
            if m and m.group(2) not in results:
                # a skipped test earns nothing: it proved nothing
                why = m.group(3).lstrip(": ")
                results[m.group(2)] = (m.group(1) == "ok  ",
                                       "skipped: " + why if m.group(1) == "skip" else why)
        results.setdefault(name, (False, "no result (the server did not start?)"))
    return results


# ---- unit tests ----------------------------------------------------------------

def run_unit(binary, budget_s):
    """Runs a cmocka binary; returns ({test: passed}, total announced, note).
    Tests after a crash never report: they count as failed."""
    try:
        p = subprocess.run([binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=budget_s, cwd=REPO, universal_newlines=True,
                           errors="replace")
        out, note = p.stdout, "" if p.returncode == 0 else "exit code %d" % p.returncode
    except subprocess.TimeoutExpired as e:
        out, note = (e.stdout or b"").decode(errors="replace"), "timed out"
    passed = {}
    for line in out.splitlines():
        m = re.match(r"^\[ +(OK|FAILED) +\] (.+)$", line)
        if m and not re.match(r"^\d+ test", m.group(2)):
            passed.setdefault(m.group(2), m.group(1) == "OK")
    m = re.search(r"Running (\d+) test", out)
    crash = re.search(r"^.*(runtime error|AddressSanitizer|Segmentation fault).*$", out, re.M)
    if crash:
        note = crash.group(0).strip()[:160]
    return passed, int(m.group(1)) if m else 0, note


# ---- performance ----------------------------------------------------------------

def proc_cpu_ticks(pid):
    """utime + stime of a process, in clock ticks. The command name (field 2)
    may hold spaces and parentheses, so fields are counted after the last ')'."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def start_server(binary, cpu):
    p = subprocess.Popen(["taskset", "-c", str(cpu), binary, "--port", "0",
                          "--idle-timeout", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         cwd=REPO, universal_newlines=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        m = re.match(r"listening on http://([^:]+):(\d+) ", line)
        if m:
            return p, int(m.group(2))
        if not line and p.poll() is not None:
            break
    p.kill()
    p.wait()
    return None, 0


def stop_server(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def cpu_per_request(binary, seconds, conns, idle):
    """Runs wrk against a fresh server (server on CPU 1, wrk on CPU 0) while
    `idle` more connections stay open and silent, as real keep-alive clients
    do, and returns (microseconds of server CPU per request, requests/s), or
    an error string. A short warm-up is not measured. The idle connections
    cost a good loop nothing; a loop that is woken for sockets with nothing
    to do (an always-on level-triggered EPOLLOUT) pays for them on every turn."""
    p, port = start_server(binary, 1)
    if p is None:
        return "the server did not start"
    url = "http://127.0.0.1:%d/plaintext" % port
    held = []
    try:
        for _ in range(idle):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        wrk = ["taskset", "-c", "0", "wrk", "-t1", "-c%d" % conns]
        subprocess.run(wrk + ["-d1s", url], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=20)
        before = proc_cpu_ticks(p.pid)
        out = subprocess.run(wrk + ["-d%ds" % seconds, url], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=seconds + 20,
                             universal_newlines=True).stdout
        ticks = proc_cpu_ticks(p.pid) - before
    except (OSError, subprocess.TimeoutExpired) as e:
        return "load failed: %s" % e
    finally:
        for sock in held:
            sock.close()
        stop_server(p)
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not m or int(m.group(1)) == 0:
        return "no request completed"
    reqs = int(m.group(1))
    if bad or (errs and sum(int(x) for x in errs.groups()) > reqs // 100):
        return "errors under load (%s)" % (bad.group(0) if bad else errs.group(0))
    return ticks * 1e6 / CLK_TCK / reqs, reqs / seconds


def perf_check(check, student, ref, quick):
    """Alternates reference and student trials; compares medians."""
    trials = 3
    seconds = 1 if quick else check.get("seconds", 3)
    conns = check.get("connections", 8)
    idle = check.get("idle", 500)
    mine, theirs = [], []
    for _ in range(trials):
        for binary, into in ((ref, theirs), (student, mine)):
            r = cpu_per_request(binary, seconds, conns, idle)
            if isinstance(r, str):
                return 0.0, "%s: %s" % (os.path.basename(binary), r)
            into.append(r)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    me, ref_us = med([r[0] for r in mine]), med([r[0] for r in theirs])
    ratio = me / ref_us if ref_us > 0 else float("inf")
    limit = check.get("ratio", 1.5)
    frac = 1.0 if ratio <= limit else max(0.0, (2 * limit - ratio) / limit)
    note = "%.1f us/request vs reference %.1f us: %.2fx (full points up to %.1fx)" % (
        me, ref_us, ratio, limit)
    return frac, note


# ---- the report ------------------------------------------------------------------

def grade(lab, args):
    info = labgen.lab_info(lab)
    checks = info.get("checks", [])
    if not checks:
        say("lab %d: %s: no automatic grader; the handout says what your teacher checks"
            % (lab, info.get("title", "")))
        return 0
    total_points = sum(c["points"] for c in checks)
    if total_points != 100:
        say("grade: lab %d: the checks' points add up to %d, not 100" % (lab, total_points))
        return 2
    budget = 30 if args.quick else 90
    units = {os.path.basename(u).replace("test_", "", 1): u for u in args.unit}
    unit_runs = {}
    say("lab %d: %s%s" % (lab, info.get("title", ""), " (the reference)" if args.solution else ""))
    score = 0.0
    for check in checks:
        kind = check["kind"]
        names = check.get("quick_tests", check.get("tests")) if args.quick else check.get("tests")
        lines = []
        if kind == "integration":
            res = run_integration(args.server[0], names, budget)
            ok = [n for n in names if res[n][0]]
            frac = len(ok) / len(names)
            lines = ["  FAIL %s: %s" % (n, res[n][1][:150]) for n in names if not res[n][0]]
            note = "%d/%d tests" % (len(ok), len(names))
        elif kind == "unit":
            u = check["unit"]
            if u not in unit_runs:
                unit_runs[u] = run_unit(units[u], budget)
            passed, announced, crash = unit_runs[u]
            # tests that never reported (after a crash) count as failed
            want = names if names else list(passed)
            expected = len(names) if names else max(announced, len(passed), 1)
            good = [t for t in want if passed.get(t)]
            frac = len(good) / expected
            lines = ["  FAIL %s" % t for t in want if not passed.get(t)][:8]
            if crash:
                lines.append("  the test binary stopped: %s" % crash)
            note = "%d/%d unit tests" % (len(good), expected)
        elif kind == "perf":
            frac, note = perf_check(check, args.server[0], args.ref[0], args.quick)
        elif kind == "report":
            frac, note = report_check.check(check["question"], args.work, args.solution, REPO)
        else:
            say("grade: unknown check kind %r" % kind)
            return 2
        pts = check["points"] * frac
        score += pts
        say("%5.1f/%-3d %s: %s" % (pts, check["points"], check["name"], note))
        for line in lines:
            say(line)
    say("%d/100" % round(score))
    return 0


def main(argv):
    p = argparse.ArgumentParser(description="Grade one lab.")
    p.add_argument("lab", type=int)
    p.add_argument("--server", action="append", default=[], help="the binary to grade")
    p.add_argument("--ref", action="append", default=[], help="the reference binary")
    p.add_argument("--unit", action="append", default=[], help="a unit test binary")
    p.add_argument("--solution", action="store_true", help="grading the reference")
    p.add_argument("--quick", action="store_true", help="shorter runs (make test-labs)")
    p.add_argument("--work", default="", help="the student's working copy (answers.txt)")
    args = p.parse_args(argv)
    return grade(args.lab, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
