#!/usr/bin/env python3
"""test_harness.py - `make test-harness`: the harness tests, in about a minute.

1. The unit tests: test_parse.py (the parsers on captured tool output),
   test_targets.py (the Targets of the report, on synthetic results),
   test_config.py (--workers, CPU lists, the quick preset's points),
   test_discard.py (discard_client, the static workload's load generator:
   its output, against server-epoll and a server that splits its answers,
   and a one-trial static bench), test_rounds.py (the order of the trials:
   rounds across the servers of a point, idle and memory one server at a
   time; a server that does not start, one that dies, an interruption),
   test_compare.py (scripts/compare.py: two runs' verdicts row by row).
2. The floor and idle_holder, driven directly: the floor answers 16
   pipelined requests split at awkward offsets with exactly 16 responses;
   idle_holder's connections really are open on the server (its /stats).
3. Workers and the warm burst: a server started with 2 workers says so
   and answers; the burst that precedes a memory baseline really sends
   its requests (the server's /stats counts them); nginx with 2 workers
   is a master and 2 worker processes whose CPU time is summed.
4. A tiny bench end to end: two backends, one workload, 1 s, one trial;
   results.json must carry every promised field, the CSV its header, the
   charts and README.md (with its Targets section) must exist.
5. Ctrl-C in the middle of a run keeps the rows measured so far.
6. A tiny scaling run (harness/scaling.py, --workers 1 and 2) writes its
   comparison table.

The last line is `harness: N passed, N failed`; the exit code is 1 if any
check failed. Plain Python 3 (the chart step inside the bench finds a
Python with matplotlib itself).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import load  # noqa: E402
import parse  # noqa: E402
import servers  # noqa: E402
import workloads as wl  # noqa: E402

UNIT_TESTS = ("test_parse.py", "test_targets.py", "test_config.py", "test_discard.py",
              "test_rounds.py", "test_compare.py")

passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("  ok    " + name)
    else:
        failed += 1
        print("  FAIL  %s%s" % (name, ": " + str(detail) if detail else ""))


def run_unit_tests():
    print("unit tests (parsers, aggregates, targets, settings, trial order):")
    suite = unittest.TestSuite(unittest.defaultTestLoader.discover(HERE, pattern=name)
                               for name in UNIT_TESTS)
    tests = list(iter_tests(suite))  # running a suite empties it
    check("unit test files found", len({t.__class__.__module__ for t in tests}) ==
          len(UNIT_TESTS), sorted({t.__class__.__module__ for t in tests}))
    result = unittest.TextTestRunner(stream=open(os.devnull, "w"), verbosity=0).run(suite)
    bad = {str(t): err for t, err in result.failures + result.errors}
    for test in tests:
        check(test.id().split(".", 1)[1], str(test) not in bad,
              bad.get(str(test), "").strip().splitlines()[-1:] if str(test) in bad else "")


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def start(argv):
    """Starts a contract server (or the floor); returns (process, port)."""
    p = subprocess.Popen(argv + ["--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    ready = parse.parse_listening_line(line.strip())
    if ready is None:
        p.kill()
        raise RuntimeError("no ready line from %s: %r" % (argv[0], line))
    return p, ready[1]


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def test_floor():
    print("the floor server:")
    p, port = start([os.path.join(REPO, "build", "harness", "floor")])
    try:
        req = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n" * 16
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        # Cut inside "\r\n\r\n" and elsewhere: heads straddle the reads.
        for a, b in ((0, 35), (35, 37), (37, 300), (300, len(req))):
            s.sendall(req[a:b])
            time.sleep(0.02)
        want = 16 * len(b"Hello, World!")
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"Hello, World!") < 16 and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.settimeout(0.3)
        try:
            data += s.recv(65536)  # nothing more may come
        except socket.timeout:
            pass
        s.close()
        check("floor answers 16 split pipelined requests exactly 16 times",
              data.count(b"HTTP/1.1 200 OK\r\n") == 16 and data.count(b"Hello, World!") * 13
              == want, "%d responses" % data.count(b"HTTP/1.1 200 OK"))
    finally:
        stop(p)


def test_idle_holder():
    print("idle_holder:")
    p, port = start([os.path.join(REPO, "bin", "server-epoll")])
    try:
        h = load.IdleHolder(os.path.join(REPO, "build", "harness", "idle_holder"), port, 50,
                            None)
        err = h.wait_holding(20)
        check("idle_holder opens 50 connections", err is None, err)
        stats = load.stats_snapshot(port)
        active = stats["connections"]["active"] if stats else None
        check("the server sees them open (active >= 50)", active is not None and active >= 50,
              active)
        check("none was closed while idle", h.release() == 0)
    finally:
        stop(p)


def test_workers_and_warm_burst(tmp):
    print("workers and the warm burst:")
    spec = {"name": "epoll", "label": "epoll", "kind": "native",
            "argv": [os.path.join(REPO, "bin", "server-epoll")]}
    srv = servers.Server(spec, tmp, None, tmp, workers=2).start()
    try:
        check("--workers 2 reaches the server (its ready line)", srv.reported_workers == 2,
              srv.reported_workers)
        before = load.stats_snapshot(srv.port)["requests"]
        answered, err = load.warm_burst(srv.port, wl.WARM_REQUESTS, wl.WARM_CONNS, None)
        after = load.stats_snapshot(srv.port)["requests"]
        check("the warm burst gets %d answers" % wl.WARM_REQUESTS,
              answered == wl.WARM_REQUESTS and err is None, (answered, err))
        check("the server counted them", after - before >= wl.WARM_REQUESTS,
              after - before)
    finally:
        srv.stop()
    if servers.reference_available("nginx"):
        print("  (nginx not installed: its workers are not checked here)")
        return
    with open(os.path.join(tmp, "one.bin"), "wb") as f:
        f.write(b"x" * 1000)
    ref = servers.Server({"name": "nginx", "label": "nginx", "kind": "reference",
                          "ref": "nginx"}, tmp, None, tmp, workers=2).start()
    try:
        time.sleep(0.3)  # the master forks its workers after it listens
        check("nginx with 2 workers: a master and 2 workers", len(ref.pids()) == 3,
              ref.pids())
        problems = servers.verify(ref, [("one.bin", os.path.join(tmp, "one.bin"))])
        check("nginx with 2 workers answers right (static files too)", not problems,
              problems)
        u0, s0 = ref.cpu_ticks()
        load.warm_burst(ref.port, 20000, 8, None)
        u1, s1 = ref.cpu_ticks()
        check("its CPU time is counted (summed over the workers)", u1 + s1 > u0 + s0,
              (u0 + s0, u1 + s1))
    finally:
        ref.stop()


def pick_backends():
    built = [b for b in ("epoll", "poll", "threads", "io_uring")
             if os.access(os.path.join(REPO, "bin", "server-" + b), os.X_OK)]
    return built[:2] if len(built) >= 2 else built


REQUIRED_ROW = {
    "rps": None, "requests": None, "duration_s": None,
    "latency_us": ("p50", "p90", "p99", "p99_9", "max"),
    "server_cpu": ("user_us_per_req", "sys_us_per_req", "util"),
    "client_cpu": ("util", "bound"),
    "server_mem": ("rss_kb", "hwm_kb"),
    "errors": ("connect", "read", "write", "timeout", "status"),
}


def row_problems(row):
    out = []
    for key, sub in REQUIRED_ROW.items():
        if key not in row or row[key] is None:
            out.append(key)
        elif sub:
            out += ["%s.%s" % (key, s) for s in sub if row[key].get(s) is None]
    return out


def test_tiny_bench(tmp):
    backends = pick_backends()
    refs = "floor" if len(backends) < 2 else "none"
    print("tiny bench (%s%s, plaintext, 1 s, one trial):" % (
        " ".join(backends), " + floor" if refs == "floor" else ""))
    out, bindir = os.path.join(tmp, "run"), os.path.join(tmp, "bin")
    os.makedirs(bindir)
    for b in backends:
        os.symlink(os.path.join(REPO, "bin", "server-" + b), os.path.join(bindir, "server-" + b))
    # A backend whose I/O model is unavailable here exits with code 3.
    with open(os.path.join(bindir, "server-unavailable"), "w") as f:
        f.write("#!/bin/sh\necho 'server-unavailable: not available here' >&2\nexit 3\n")
    os.chmod(os.path.join(bindir, "server-unavailable"), 0o755)
    argv = [sys.executable, os.path.join(HERE, "bench.py"), "--backends",
            " ".join(backends + ["unavailable"]), "--bin-dir", bindir, "--refs", refs,
            "--wine", "no", "--workloads", "plaintext", "--conns", "16", "--duration", "1",
            "--trials", "1", "--warmup", "0.2", "--out", out]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    text = r.stdout.decode(errors="replace")
    check("bench.py exits 0", r.returncode == 0, text[-400:])
    try:
        with open(os.path.join(out, "results.json")) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        check("results.json readable", False, e)
        return
    rows = [x for x in doc["rows"] if x["tool"] == "wrk"]
    names = {x["backend"] for x in rows}
    want = set(backends) | ({"floor"} if refs == "floor" else set())
    check("one row per backend", names == want and len(rows) == len(want), sorted(names))
    for row in rows:
        check("%s row has every promised field" % row["backend"], not row_problems(row),
              row_problems(row))
        check("%s measured > 0 req/s with no errors" % row["backend"],
              (row["rps"] or 0) > 0 and "errors" not in row["flags"], row.get("flags"))
    check("aggregates: median and spread", all(
        a["rps"]["median"] is not None and a["rps"]["min"] is not None
        for a in doc["aggregates"]) and len(doc["aggregates"]) == len(want))
    check("run marked complete", doc.get("complete") is True)
    skipped = {x["backend"]: x["reason"] for x in doc["skipped"]}
    check("exit code 3 backend skipped with its reason",
          "exit code 3" in skipped.get("unavailable", ""), skipped)
    with open(os.path.join(out, "README.md")) as f:
        readme = f.read()
    check("the report names the skipped backend", "unavailable" in readme)
    check("the report opens with its Targets", "## Targets" in readme and
          readme.index("## Targets") < readme.index("## Summary") and
          "not measured" in readme)
    with open(os.path.join(out, "env.json")) as f:
        env = json.load(f)
    missing = [k for k in ("kernel", "cpu_model", "cores", "compiler", "cflags",
                           "git_revision", "tools", "pinning") if k not in env]
    check("env.json has the machine and method", not missing, missing)
    with open(os.path.join(out, "results.csv")) as f:
        lines = f.read().splitlines()
    check("results.csv: header and one line per trial",
          lines and lines[0].startswith("backend,") and len(lines) == 1 + len(doc["rows"]))
    for stem in ("throughput_vs_conns", "latency", "cpu_per_request"):
        for ext in ("png", "svg"):
            path = os.path.join(out, "%s.%s" % (stem, ext))
            check("chart %s.%s drawn" % (stem, ext),
                  os.path.exists(path) and os.path.getsize(path) > 5000)
    check("README.md report written", os.path.exists(os.path.join(out, "README.md")))
    check("summary table printed", "Summary: requests/s" in text, text[-300:])


def test_interrupt(tmp):
    print("Ctrl-C keeps partial results:")
    out = os.path.join(tmp, "interrupted")
    argv = [sys.executable, os.path.join(HERE, "bench.py"), "--backends", "epoll", "--refs",
            "none", "--wine", "no", "--workloads", "plaintext", "--conns", "1 2 4 8 16 32",
            "--duration", "1", "--trials", "1", "--warmup", "0.2", "--out", out, "--no-plots"]
    # As from a terminal: SIGINT at its default. A shell without job control
    # starts background commands with SIGINT ignored, and Python then never
    # turns it into KeyboardInterrupt, so a CI run started with `&` would
    # see this run finish instead of stop.
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    path = os.path.join(out, "results.json")
    deadline = time.monotonic() + 40
    rows = 0
    while time.monotonic() < deadline and rows < 1:
        time.sleep(0.2)
        try:
            with open(path) as f:
                rows = len(json.load(f)["rows"])
        except (OSError, ValueError, KeyError):
            pass
    os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    text = p.communicate(timeout=30)[0].decode(errors="replace")
    check("interrupted run exits 130", p.returncode == 130, "exit %s" % p.returncode)
    with open(path) as f:
        doc = json.load(f)
    check("partial rows kept, run marked incomplete",
          len(doc["rows"]) >= 1 and doc["complete"] is False, "%d rows" % len(doc["rows"]))
    check("the partial run says so", "interrupted" in text, text[-200:])


def test_scaling(tmp):
    print("tiny scaling run (epoll, --workers 1 and 2):")
    out = os.path.join(tmp, "scaling")
    argv = [sys.executable, os.path.join(HERE, "scaling.py"), "--workers-list", "1 2", "--",
            "--backends", "epoll", "--refs", "none", "--wine", "no", "--workloads",
            "plaintext", "--conns", "16", "--duration", "0.5", "--trials", "1", "--warmup",
            "0.2", "--no-plots", "--out", out]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    text = r.stdout.decode(errors="replace")
    check("scaling.py exits 0", r.returncode == 0, text[-400:])
    settings = []
    for n in (1, 2):
        try:
            with open(os.path.join(out, "workers-%d" % n, "results.json")) as f:
                settings.append(json.load(f)["env"]["settings"].get("workers"))
        except (OSError, ValueError, KeyError):
            settings.append(None)
    check("one run per worker count, each with its --workers", settings == [1, 2], settings)
    try:
        with open(os.path.join(out, "README.md")) as f:
            table = f.read()
    except OSError as e:
        table = str(e)
    check("the comparison has the ratio column and the epoll row",
          "x w=2" in table and "| epoll | plaintext | 16 |" in table, table[-300:])


def main():
    t0 = time.monotonic()
    run_unit_tests()
    tmp = tempfile.mkdtemp(prefix="test-harness-")
    try:
        for test in (test_floor, test_idle_holder, lambda: test_workers_and_warm_burst(tmp),
                     lambda: test_tiny_bench(tmp), lambda: test_interrupt(tmp),
                     lambda: test_scaling(tmp)):
            try:
                test()
            except Exception as e:  # a crashed check is a failed check
                check(getattr(test, "__name__", "test"), False, "%s: %s" % (
                    type(e).__name__, e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("(%.0f s)" % (time.monotonic() - t0))
    print("harness: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
