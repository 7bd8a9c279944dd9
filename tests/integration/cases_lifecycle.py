"""cases_lifecycle.py - the process around the HTTP: descriptors back to
their baseline after everything above, the command line (bad flags exit 2,
--help and --version exit 0), SIGTERM with work in flight, and the io_uring
binary refusing to start, with exit code 3, where io_uring is denied.

What it teaches: a server is also judged by how it starts and stops. A
leaked descriptor per aborted client is invisible in any single test and
fatal after a week; a graceful stop that drops the response in flight is a
failed request for somebody.
"""

import os
import shutil
import socket
import subprocess
import time

from client import expect, request
from suite import Fail, Skip, check, check_eq, run_binary, sanitizer_report, short, test


@test("fds_back_to_baseline")
def fds_baseline(t):
    # Runs after every other test on the shared server (see run.py's order).
    t.need_proc()
    s = t.server
    base = s.fd_baseline
    deadline = time.monotonic() + t.scaled(3)
    while True:
        now = s.fd_count()
        if now <= base or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if now > base:
        fds = sorted(os.readlink("/proc/%d/fd/%s" % (s.pid, fd))
                     for fd in os.listdir("/proc/%d/fd" % s.pid))
        check(False, "%d descriptors open, %d at the start: %s" % (now, base, short(fds, 300)))


BAD_FLAGS = [
    (["--port", "abc"], "port"),
    (["--port", "70000"], "port"),
    (["--workers", "0"], "workers"),
    (["--idle-timeout", "-1"], "idle-timeout"),
    (["--max-conns", "0"], "max-conns"),
    (["--bogus"], "bogus"),
    (["--port"], "port"),
    (["stray-argument"], "stray-argument"),
    (["--root", "/nonexistent/iomodels-test"], "nonexistent"),
]


@test("bad_flags_exit_2", shared=False)
def bad_flags(t):
    for args, word in BAD_FLAGS:
        code, out, err = run_binary(t.opts, args)
        what = " ".join(args)
        check(code == 2, "%s: exit code %d, want 2 (stderr %s)" % (what, code, short(err)))
        check(word in err, "%s: the message does not name %r: %s" % (what, word, short(err)))
        check("listening on" not in out, "%s: the server started anyway" % what)
        report = sanitizer_report(err)
        check(report is None, "%s: sanitizer report: %s" % (what, report))


@test("help_and_version_exit_0", shared=False)
def help_version(t):
    want = t.opts.expected_backend()
    code, out, err = run_binary(t.opts, ["--help"])
    check_eq(code, 0, "--help exit code")
    for word in ("--port", "--root", "--workers", "--idle-timeout", "--max-conns"):
        check(word in out, "--help does not mention %s" % word)
    check(sanitizer_report(err) is None, "--help: sanitizer report: %s" % sanitizer_report(err))
    code, out, err = run_binary(t.opts, ["--version"])
    check_eq(code, 0, "--version exit code")
    check(out.strip() != "", "--version printed nothing")
    if want is not None:
        check("backend %s" % want in out, "--version does not say backend %s: %s"
              % (want, short(out)))
    check(sanitizer_report(err) is None, "--version: sanitizer report")


@test("sigterm_finishes_in_flight", shared=False)
def sigterm(t):
    s = t.start_server()
    idle = [t.connect(s.addr) for _ in range(3)]
    for c in idle[1:]:
        expect(c.roundtrip(request("GET", "/plaintext")), 200)
    delay_ms = int(600 * t.opts.scale)
    busy = t.connect(s.addr, timeout=10)
    busy.send(request("GET", "/delay/%d" % delay_ms))
    half = t.connect(s.addr)
    half.send(b"GET /plaintext HTTP/1.1\r\nHost: te")  # a head half sent
    time.sleep(0.15 * t.opts.scale)
    began = time.monotonic()
    s.signal(t.opts.stop_signal)  # SIGINT under Wine: see suite.Options
    r = busy.read_response()
    expect(r, 200, body=b"delayed %d ms\n" % delay_ms)
    check(r.closes(), "the response in flight at shutdown lacks Connection: close")
    busy.wait_closed(t.scaled(3))
    half.send(b"st\r\n\r\n")  # the rest of a head begun before the signal
    r = half.read_response()
    expect(r, 200, body=b"Hello, World!")
    check(r.closes(), "a response after the stop signal lacks Connection: close")
    for c in idle:
        check_eq(c.wait_closed(t.scaled(4)), b"", "bytes sent to an idle connection at stop")
    code = s.wait(t.scaled(6))
    check(code is not None, "still running %.0fs after SIGTERM" % t.scaled(6))
    why = s.judge_exit(code)  # exit code 0, no sanitizer report, stdout clean
    check(why is None, why)
    check(time.monotonic() - began < t.scaled(5), "took %.1fs to stop"
          % (time.monotonic() - began))
    try:
        t.connect(s.addr, timeout=1)
    except Fail:
        pass  # refused: the listener is gone
    else:
        check(False, "a connection was accepted after the server exited")


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@test("host_flag_ipv6", shared=False)
def host_ipv6(t):
    if not have_ipv6_loopback():
        raise Skip("this machine has no IPv6 loopback (::1)")
    s = t.start_server(["--host", "::1"], host="::1")  # the line says http://[::1]:PORT
    c = t.connect(s.addr)
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=b"Hello, World!")


def deny_tool(t):
    """The path of tests/tools/deny_io_uring, built with make or, failing
    that, compiled here with $CC into the test site."""
    built = os.path.join(t.opts.repo, "build", "tools", "deny_io_uring")
    if os.access(built, os.X_OK):
        return built
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise Fail("build/tools/deny_io_uring is missing and there is no %s to build it "
                   "(make build/tools/deny_io_uring)" % cc)
    out = os.path.join(t.site.top, "deny_io_uring")
    src = os.path.join(t.opts.repo, "tests", "tools", "deny_io_uring.c")
    p = subprocess.run([cc, "-O2", "-o", out, src], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    check(p.returncode == 0, "cannot build deny_io_uring: %s" % short(p.stdout.decode()))
    return out


@test("io_uring_unavailable_exit_3", shared=False)
def io_uring_denied(t):
    code, out, err = run_binary(t.opts, ["--version"])
    if "backend io_uring" not in out:
        raise Skip("only for the io_uring backend (--version says %s)" % short(out.strip()))
    if t.opts.platform != "linux":
        raise Skip("needs a Linux seccomp filter")
    tool = deny_tool(t)
    code, out, err = run_binary(t.opts, ["--port", "0", "--root", t.site.root], prefix=[tool])
    check(code == 3, "exit code %d under a seccomp filter denying io_uring_setup, want 3 "
          "(stderr %s)" % (code, short(err)))
    check("io_uring" in err, "the message does not name io_uring: %s" % short(err))
    check("listening on" not in out, "printed the ready line anyway")
    check(sanitizer_report(err) is None, "sanitizer report: %s" % sanitizer_report(err))
