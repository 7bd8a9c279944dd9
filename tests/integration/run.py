#!/usr/bin/env python3
"""run.py - the integration suite every server binary must pass.

    python3 tests/integration/run.py [options] BINARY
      --wrapper "CMD ARGS"   run the server under this command ("wine", "valgrind -q ...")
      --server-env K=V       environment for the server process only (repeatable)
      --platform linux|wine  wine: checks that need /proc of the server are skipped
      --timeout-scale F      multiply every time limit (valgrind, Wine, sanitizers)
      -k SUBSTRING           run only the tests whose name contains SUBSTRING
      --list                 list test names

What it teaches: one black-box suite, rerun unchanged against every I/O
model, is what makes "the backends behave the same" a checked fact. Most
tests share one server; tests that need other flags (--idle-timeout,
--max-conns, --workers) start their own. Every server is stopped with
SIGTERM at the end and must exit 0 without a sanitizer report.

Prints one line per test (`ok   name (0.12s)`, `FAIL name: why`,
`skip name: why`) and ends with `integration: N passed, N failed, N skipped`.
Exit code 0 only if nothing failed. Needs: Python 3.7+ standard library.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import suite  # noqa: E402
from suite import Fail, Skip  # noqa: E402

# The order the groups run in; inside a group, the order of definition.
CASE_MODULES = ["cases_routes", "cases_static", "cases_framing", "cases_errors",
                "cases_load", "cases_hostile", "cases_tools", "cases_lifecycle"]


def parse_args(argv):
    p = argparse.ArgumentParser(description="Integration suite for one server binary.")
    p.add_argument("binary", nargs="?", help="the server binary, e.g. bin/server-epoll")
    p.add_argument("--wrapper", default="", help='run the server under this command')
    p.add_argument("--server-env", action="append", default=[], metavar="K=V",
                   help="environment for the server process only (repeatable)")
    p.add_argument("--platform", choices=["linux", "wine"], default="linux")
    p.add_argument("--timeout-scale", type=float, default=1.0, metavar="F")
    p.add_argument("-k", dest="pattern", default="", metavar="SUBSTRING")
    p.add_argument("--list", action="store_true", help="list test names and exit")
    args = p.parse_args(argv)
    env = {}
    for kv in args.server_env:
        if "=" not in kv:
            p.error("--server-env wants K=V, got %r" % kv)
        k, v = kv.split("=", 1)
        env[k] = v
    args.server_env = env
    if args.timeout_scale <= 0:
        p.error("--timeout-scale must be positive")
    if not args.list and args.binary is None:
        p.error("BINARY is required")
    return args


class Runner:
    """Runs the selected tests in order and keeps the score."""

    def __init__(self, opts):
        self.opts = opts
        self.site = suite.Site()
        self.shared = None
        self.start_error = None
        self.passed = self.failed = self.skipped = 0

    def report(self, status, name, text):
        print("%s %s%s" % (status, name, text), flush=True)

    def shared_server(self):
        """The shared server, (re)started if it is not running: after a crash
        the remaining tests get a fresh one rather than all failing."""
        if self.start_error is not None:
            raise Fail("shared server could not start: " + self.start_error)
        if self.shared is None or not self.shared.alive():
            self.shared = suite.Server(self.opts, self.site)
            try:
                self.shared.start()
            except Fail as e:
                self.start_error = str(e)  # the other tests fail at once, not after a wait
                self.shared = None
                raise
            # one request first, so lazily opened descriptors count in the baseline
            from client import Conn, request
            c = Conn(self.shared.addr, 5 * self.opts.scale)
            c.roundtrip(request("GET", "/plaintext"))
            c.close()
            time.sleep(0.05)
            if self.opts.platform == "linux":
                self.shared.fd_baseline = self.shared.fd_count()
        return self.shared

    def shared_died(self):
        """If the shared server died or reported a sanitizer error during the
        test just run, says so (and the next test will get a new server)."""
        s = self.shared
        if s is None:
            return None
        report = suite.sanitizer_report(s.stderr_text())
        if report is not None and not getattr(s, "reported", False):
            s.reported = True
            return "shared server: sanitizer report: %s" % suite.short(report, 200)
        if not s.alive():
            err = suite.tail(s.stderr_text(), 3)
            s.close_files()
            self.shared = None
            return "shared server died (exit code %s); stderr: %s" % (
                s.proc.returncode, suite.short(err, 300))
        return None

    def run_one(self, case):
        start = time.monotonic()
        t = None
        why = None
        try:
            if case.shared:
                self.shared_server()
            t = suite.Context(self, case)
            case.func(t)
        except Skip as e:
            why = ("skip", str(e))
        except Fail as e:
            why = ("FAIL", str(e))
        except Exception as e:  # a bug in the test itself still counts as a failure
            why = ("FAIL", "%s: %s" % (type(e).__name__, e))
        problem = t.cleanup() if t is not None else None
        if case.shared and why is None:
            problem = problem or self.shared_died()
        elif case.shared:
            self.shared_died()
        if why is None and problem is not None:
            why = ("FAIL", problem)
        if why is None:
            self.passed += 1
            self.report("ok  ", case.name, " (%.2fs)" % (time.monotonic() - start))
        elif why[0] == "skip":
            self.skipped += 1
            self.report("skip", case.name, ": " + why[1])
        else:
            self.failed += 1
            self.report("FAIL", case.name, ": " + why[1])

    def finish(self):
        """Stops the shared server; an unclean exit is a failure of its own."""
        if self.shared is not None:
            start = time.monotonic()
            why = self.shared.stop()
            if why is None:
                self.passed += 1
                self.report("ok  ", "shared_server_exit", " (%.2fs)" % (time.monotonic() - start))
            else:
                self.failed += 1
                self.report("FAIL", "shared_server_exit", ": " + why)
        self.site.remove()


def main(argv):
    args = parse_args(argv)
    for name in CASE_MODULES:
        __import__(name)
    selected = [tc for tc in suite.TESTS if args.pattern in tc.name]
    if args.list:
        for tc in selected:
            print(tc.name)
        return 0
    if not os.path.isfile(args.binary) and args.platform == "linux":
        print("run.py: no such binary: %s" % args.binary, file=sys.stderr)
        return 2
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    opts = suite.Options(os.path.abspath(args.binary), args.wrapper, args.server_env,
                           args.platform, args.timeout_scale, repo)
    runner = Runner(opts)
    began = time.monotonic()
    try:
        for case in selected:
            runner.run_one(case)
    finally:
        runner.finish()
    print("%s: %d tests in %.1fs" % (os.path.basename(args.binary),
                                     runner.passed + runner.failed + runner.skipped,
                                     time.monotonic() - began))
    # the closing line, alone and in this exact form: CI counts tests by it
    print("integration: %d passed, %d failed, %d skipped"
          % (runner.passed, runner.failed, runner.skipped), flush=True)
    return 0 if runner.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
