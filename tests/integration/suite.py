"""suite.py - the machinery of the integration suite: the test registry, the
options, the temporary site, and the server processes under test.

What it teaches: how to test a network server from the outside, as a black
box. The server is a real process started on `--port 0`; the suite reads
the one "listening on" line it prints, talks to it over real sockets, and at
the end sends SIGTERM and judges how it went away (exit code 0, no sanitizer
report on stderr, nothing on stdout but that one line).

Needs: Python 3.7+ standard library only, Linux (/proc) for descriptor
counts; under --platform wine those checks are skipped, with the reason.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# ---- outcomes ---------------------------------------------------------------


class Fail(Exception):
    """A test failed; the message says why in one line."""


class Skip(Exception):
    """A test does not apply here; the message says why."""


def check(cond, why):
    """Fails the test with `why` unless cond holds."""
    if not cond:
        raise Fail(why)


def check_eq(got, want, what):
    """Fails the test unless got == want, showing both (shortened)."""
    if got != want:
        raise Fail("%s: got %s, want %s" % (what, short(got), short(want)))


def short(value, limit=120):
    """repr() of a value, cut to `limit` characters for one-line reports."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- the registry -----------------------------------------------------------

TESTS = []


class TestCase:
    """One registered test: a function taking a Context."""

    def __init__(self, name, func, shared):
        self.name = name
        self.func = func
        self.shared = shared  # uses the shared server (t.server)


def test(name, shared=True):
    """Decorator: registers a test under `name`. shared=False means the test
    starts its own servers (t.start_server) or none at all. Tests run in the
    order they are registered (cases modules are imported in a fixed order)."""

    def register(func):
        if any(tc.name == name for tc in TESTS):
            raise RuntimeError("two tests named " + name)
        TESTS.append(TestCase(name, func, shared))
        return func

    return register


# ---- options ------------------------------------------------------------------


class Options:
    """What run.py parsed: the binary, how to run it, how slow it may be."""

    def __init__(self, binary, wrapper, server_env, platform, timeout_scale, repo):
        self.binary = binary
        self.wrapper = shlex.split(wrapper) if wrapper else []
        self.server_env = server_env  # dict
        self.platform = platform
        self.scale = timeout_scale
        self.repo = repo
        # The stop signal. Wine installs no SIGTERM handler, so the signal's
        # default action kills the process before any Windows code can run
        # (exit -15); SIGINT becomes CTRL_C_EVENT, the way a Windows console
        # program is asked to stop. Under Wine the suite therefore checks the
        # SIGINT half of the contract and cannot check the SIGTERM half.
        self.stop_signal = signal.SIGINT if platform == "wine" else signal.SIGTERM

    def expected_backend(self):
        """The backend name the binary's file name promises (server-NAME[.exe])."""
        m = re.match(r"server-(\w+?)(\.exe)?$", os.path.basename(self.binary))
        return m.group(1) if m else None

    def env(self):
        env = dict(os.environ)
        env.update(self.server_env)
        return env


# ---- the temporary site -----------------------------------------------------

# The site every server serves. secret.txt lies outside the root: no request
# may ever return its text.
SECRET = b"TOP SECRET: this file is outside --root and must never be served\n"
SITE_FILES = {
    "hello.txt": b"Hello from the test site.\n",
    "index.html": b"<!doctype html><title>t</title><p>hi</p>\n",
    "style.css": b"p { color: red; }\n",
    "app.js": b"console.log('hi');\n",
    "data.json": b'{"ok": true}\n',
    "pixel.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    "README": b"no extension here\n",
    "UPPER.TXT": b"the extension is matched without regard to case\n",
    "empty.txt": b"",
    "name with space.txt": b"percent-decoded names work\n",
    "sub/nested.txt": b"a file one folder down\n",
}
BIG_SIZE = 1 << 20


def big_file_bytes():
    """1 MiB that differs at every offset in a recognisable way, so a short,
    shifted or repeated block shows up as a mismatch at a known place."""
    block = bytearray()
    i = 0
    while len(block) < BIG_SIZE:
        block += b"%08x|" % i
        i += 1
    return bytes(block[:BIG_SIZE])


class Site:
    """A temporary folder: `root` (served) and, beside it, the secret."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="iomodels-it-")
        self.root = os.path.join(self.top, "site")
        self.big = big_file_bytes()
        os.makedirs(os.path.join(self.root, "sub", "folder"))
        for name, data in SITE_FILES.items():
            self.write(name, data)
        self.write("big.bin", self.big)
        with open(os.path.join(self.top, "secret.txt"), "wb") as f:
            f.write(SECRET)
        os.mkfifo(os.path.join(self.root, "fifo"))
        os.symlink("../secret.txt", os.path.join(self.root, "link_out"))
        os.symlink(self.top, os.path.join(self.root, "link_dir_out"))
        os.symlink("/etc/passwd", os.path.join(self.root, "link_abs"))

    def write(self, name, data):
        with open(os.path.join(self.root, name), "wb") as f:
            f.write(data)

    def remove(self):
        shutil.rmtree(self.top, ignore_errors=True)  # does not follow the symlinks


# ---- server processes -------------------------------------------------------

READY_LINE = re.compile(
    r"listening on http://(?P<host>\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(?P<port>\d+)"
    r" backend=(?P<backend>[a-z0-9_]+) workers=(?P<workers>\d+)"
)
SANITIZER = re.compile(
    r"(AddressSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|LeakSanitizer"
    r"|runtime error: )"
)


def sanitizer_report(text):
    """The first line of a sanitizer report in `text`, or None."""
    for line in text.splitlines():
        if SANITIZER.search(line):
            return line.strip()
    return None


def tail(text, lines=6):
    """The last few lines of a process's output, for a failure report."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Server:
    """One server process: `BINARY --port 0 --root SITE ARGS...` under the
    wrapper, with stdout and stderr in files (a pipe nobody reads could fill
    and stall the server)."""

    def __init__(self, opts, site, args=(), workers=1, host="127.0.0.1"):
        self.opts = opts
        self.args = list(args)
        self.workers = workers
        self.want_host = "[%s]" % host if ":" in host else host
        self.dir = tempfile.mkdtemp(prefix="srv-", dir=site.top)
        self.argv = opts.wrapper + [opts.binary, "--port", "0", "--root", site.root] + self.args
        self.proc = None
        self.host = self.port = self.backend = None
        self.line = None
        self.exit_code = None
        self.killed = False

    def start(self):
        """Starts the process and waits for its ready line; raises Fail if it
        does not come (with the tail of stderr) or has the wrong form."""
        self.out = open(os.path.join(self.dir, "stdout"), "w+b")
        self.err = open(os.path.join(self.dir, "stderr"), "w+b")
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err,
            env=self.opts.env(), start_new_session=True)
        deadline = time.monotonic() + 10 * self.opts.scale
        while time.monotonic() < deadline:
            text = self.stdout_text()
            if "\n" in text:
                self.parse_line(text.split("\n", 1)[0])
                return self
            if self.proc.poll() is not None:
                raise Fail("server exited with code %d before its ready line; stderr: %s"
                           % (self.proc.returncode, short(tail(self.stderr_text(), 3), 300)))
            time.sleep(0.01)
        self.kill()
        raise Fail("no ready line within %.0fs" % (10 * self.opts.scale))

    def parse_line(self, line):
        """Checks the ready line against the contract, exactly."""
        if self.opts.platform == "wine" and line.endswith("\r"):
            line = line[:-1]  # a Windows C runtime writes CRLF on a text stream
        self.line = line
        m = READY_LINE.fullmatch(line)
        if m is None:
            self.kill()
            raise Fail("ready line has the wrong form: %s" % short(line))
        self.host = m.group("host").strip("[]")
        self.port = int(m.group("port"))
        self.backend = m.group("backend")
        want = self.opts.expected_backend()
        problems = []
        if m.group("host") != self.want_host:
            problems.append("host %s, want %s" % (m.group("host"), self.want_host))
        if not 0 < self.port < 65536:
            problems.append("port %d" % self.port)
        if want is not None and self.backend != want:
            problems.append("backend=%s but the binary is server-%s" % (self.backend, want))
        if int(m.group("workers")) != self.workers:
            problems.append("workers=%s, want %d" % (m.group("workers"), self.workers))
        if problems:
            self.kill()
            raise Fail("ready line %s: %s" % (short(line), "; ".join(problems)))

    @property
    def addr(self):
        return (self.host, self.port)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stdout_text(self):
        with open(self.out.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr_text(self):
        with open(self.err.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def fd_count(self):
        """Open descriptors of the server process (/proc, Linux only)."""
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def signal(self, sig=signal.SIGTERM):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for the exit; returns the exit code or None on timeout."""
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def kill(self):
        """Ends a server the test has already failed on; stop() then has
        nothing more to report about it."""
        self.killed = True
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.close_files()

    def close_files(self):
        for f in (getattr(self, "out", None), getattr(self, "err", None)):
            if f is not None and not f.closed:
                f.close()

    def stop(self):
        """SIGTERM, then judge the exit. Returns None if it was clean, else
        one line saying what was wrong. Kills a server that overstays."""
        if self.proc is None or self.killed:
            return None
        if self.alive():
            self.signal(self.opts.stop_signal)
            # the contract bounds the grace period; 3 s in common/server.h
            if self.wait(8 * self.opts.scale) is None:
                self.kill()
                return "still running %.0fs after SIGTERM (killed)" % (8 * self.opts.scale)
        code = self.proc.wait()
        self.close_files()
        return self.judge_exit(code)

    def judge_exit(self, code):
        err = self.stderr_text()
        report = sanitizer_report(err)
        if report is not None:
            return "sanitizer report on stderr: %s" % short(report, 200)
        if code != 0:
            return "exit code %d after SIGTERM; stderr: %s" % (code, short(tail(err, 3), 300))
        out = self.stdout_text().replace("\r\n", "\n")
        if out != self.line + "\n":
            return "stdout holds more than the ready line: %s" % short(out)
        return None


def run_binary(opts, args, timeout=10.0, extra_env=None, prefix=()):
    """Runs the binary (under the wrapper) to completion; returns
    (exit code, stdout, stderr). For flags that never start a server."""
    env = opts.env()
    env.update(extra_env or {})
    argv = list(prefix) + opts.wrapper + [opts.binary] + list(args)
    for attempt in (1, 2):
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, timeout=timeout * opts.scale)
        except subprocess.TimeoutExpired:
            raise Fail("%s did not exit within %.0fs" % (" ".join(args), timeout * opts.scale))
        # Wine now and then ends a program it never started with 1 and not a
        # word; the server never fails silently, so that one case is retried.
        if not (opts.platform == "wine" and p.returncode == 1 and not p.stdout
                and not p.stderr and attempt == 1):
            break
        sys.stderr.write("note: %s exited 1 without output under Wine; trying again\n"
                         % " ".join(args))
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


# ---- the context a test runs in ----------------------------------------------


class Context:
    """What a test function gets: the options, the site, the shared server
    (t.server), and helpers whose resources are released after the test."""

    def __init__(self, runner, case):
        self.runner = runner
        self.opts = runner.opts
        self.site = runner.site
        self.case = case
        self.owned_servers = []
        self.sockets = []
        self.server = runner.shared if case.shared else None

    @property
    def addr(self):
        return self.server.addr

    def scaled(self, seconds):
        """A time limit, stretched for slow runs (valgrind, Wine, sanitizers)."""
        return seconds * self.opts.scale

    def start_server(self, args=(), workers=1, host="127.0.0.1"):
        """Starts a server of this test's own; it is stopped and judged
        (exit code, sanitizer report) when the test ends. workers and host
        are what its ready line must say."""
        s = Server(self.opts, self.site, args, workers, host)
        self.owned_servers.append(s)
        return s.start()

    def connect(self, addr=None, timeout=5.0):
        """A client connection (client.Conn), closed when the test ends."""
        from client import Conn  # here, not at the top: client.py imports this module

        c = Conn(addr or self.addr, self.scaled(timeout))
        self.sockets.append(c)
        return c

    def track(self, sock):
        """Makes sure a raw socket is closed when the test ends."""
        self.sockets.append(sock)
        return sock

    def need_proc(self):
        """Skips a check that reads the server's /proc entries."""
        if self.opts.platform != "linux":
            raise Skip("reads /proc/PID of the server, which --platform %s does not have"
                       % self.opts.platform)

    def cleanup(self):
        """Closes the test's sockets and stops its servers; returns a reason
        if one of those servers did not exit cleanly, else None."""
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
        problem = None
        for s in self.owned_servers:
            why = s.stop()
            if why is not None and problem is None:
                problem = "own server (%s): %s" % (" ".join(s.args) or "default flags", why)
        return problem
