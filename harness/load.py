"""load.py - the load generators: wrk, discard_client, hyperfine (over ab),
idle_holder.

What it is for: each function runs one tool pinned to the client CPUs,
bounded in time, and returns parsed numbers (through parse.py) together
with the tool's own CPU use, read from /proc/<pid>/stat after it exited but
before it is reaped (a zombie still reports its total user and system
time). That CPU use is how a run is flagged client-bound: when the load
generator itself is saturated, the server's number is a lower bound.

Needs: wrk (4.x, with LuaJIT), hyperfine and ab for the churn batch, the
idle_holder and discard_client built by make (make bench-tools).
"""

import json
import os
import signal
import subprocess
import time

import parse
from servers import CLK_TCK, pin

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_SLACK_S = 30          # wrk gets this long past its duration before it is killed
CLIENT_BOUND_UTIL = 0.90  # client CPU use (of its CPUs) above which a run is client-bound


def wrk_script(workdir, name):
    """Writes <workdir>/lua/<name>.lua: report.lua's done() hook followed by
    the workload's script (wrk takes a single -s script). Returns its path."""
    out = os.path.join(workdir, "lua", name + ".lua")
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        parts = []
        for part in ("report.lua", name + ".lua"):
            with open(os.path.join(HERE, "wrk", part)) as f:
                parts.append(f.read())
        with open(out, "w") as f:
            f.write("\n".join(parts))
    return out


def _exited(proc):
    """Whether proc has exited, without reaping it (its CPU times stay
    readable in /proc until it is reaped)."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait_exit(proc, timeout_s):
    """Waits up to timeout_s for proc to exit, without reaping it. Returns
    whether it exited."""
    deadline = time.monotonic() + timeout_s
    while not _exited(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _wait_keep_zombie(proc, timeout_s):
    """Waits for proc to exit without reaping it, killing it after timeout_s.
    Returns True if it had to be killed."""
    if _wait_exit(proc, timeout_s):
        return False
    os.kill(proc.pid, signal.SIGKILL)  # not proc.kill(): that may reap it first
    while not _exited(proc):
        time.sleep(0.01)
    return True


def _zombie_cpu_s(pid):
    """(user, system) seconds of an exited, not yet reaped process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = parse.parse_proc_stat(f.read())
        return st["utime"] / CLK_TCK, st["stime"] / CLK_TCK
    except (OSError, ValueError):
        return None, None


def wrk_argv(url, conns, duration_s, script, threads, headers=(), script_args=()):
    argv = ["wrk", "-t%d" % threads, "-c%d" % max(conns, threads), "-d%ds" % duration_s,
            "--latency", "--timeout", "5s", "-s", script]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    if script_args:
        argv += ["--"] + list(script_args)
    return argv


def warm_up(argv, cpus, seconds):
    """Runs the same load command (wrk or discard_client) for `seconds` (may
    be fractional: wrk takes whole seconds, so it is interrupted), output
    discarded."""
    if seconds <= 0:
        return
    p = subprocess.Popen(pin(cpus) + argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        p.wait(seconds)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    time.sleep(0.05)  # let the server finish closing the warm-up's connections


def _run_measured(argv, cpus, duration_s, interrupt=False):
    """Runs one measured load tool pinned to cpus, killed WRK_SLACK_S past
    duration_s (interrupt: SIGINT at duration_s, for wrk's whole seconds).
    Returns (proc, stdout text, stderr text, user s, system s, wall s, killed)."""
    t0 = time.monotonic()
    p = subprocess.Popen(pin(cpus) + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # A tool that exits early (nothing listening) must not be reaped here:
    # its CPU time is read from its zombie below.
    if interrupt and not _wait_exit(p, duration_s + 0.02):
        os.kill(p.pid, signal.SIGINT)
    killed = _wait_keep_zombie(p, duration_s + WRK_SLACK_S)
    wall = time.monotonic() - t0
    user, system = _zombie_cpu_s(p.pid)
    out, err = p.communicate()
    return (p, out.decode(errors="replace"), err.decode(errors="replace"), user, system, wall,
            killed)


def run_wrk(argv, cpus, duration_s, threads):
    """Runs one measured wrk. Returns (result dict from parse.parse_wrk plus
    'client_cpu', or None, raw output text, error text or None). wrk takes
    whole seconds; a fractional duration_s is obtained by interrupting it
    (SIGINT: wrk stops, and reports over the time it actually ran)."""
    p, text, err, user, system, wall, killed = _run_measured(
        argv, cpus, duration_s, interrupt=duration_s != int(duration_s))
    if killed:
        return None, text, "wrk did not finish within %d s and was killed" % (
            duration_s + WRK_SLACK_S)
    try:
        res = parse.parse_wrk(text)
    except ValueError as e:
        return None, text, "wrk failed (exit %d): %s %s" % (p.returncode, e, err.strip()[:300])
    res["client_cpu"] = client_cpu(user, system, wall, threads)
    return res, text, None


def discard_argv(binary, port, path, conns, duration_s):
    """discard_client's command line: GET path on conns keep-alive connections
    to 127.0.0.1:port for duration_s seconds (fractions are fine)."""
    return [binary, "--port", str(port), "--path", path, "--conns", str(conns),
            "--duration", "%g" % duration_s, "--timeout", "5"]


def run_discard(argv, cpus, duration_s):
    """Runs one measured discard_client (one thread; the caller checked it is
    built). Returns the same triple as run_wrk: (result dict from
    parse.parse_discard_json plus 'client_cpu', or None, raw output text,
    error text or None)."""
    p, out, err, user, system, wall, killed = _run_measured(argv, cpus, duration_s)
    text = out + err
    if killed:
        return None, text, "discard_client did not finish within %g s and was killed" % (
            duration_s + WRK_SLACK_S)
    try:
        res = parse.parse_discard_json(out)
    except ValueError as e:
        return None, text, "discard_client failed (exit %d): %s %s" % (
            p.returncode, e, err.strip()[:300])
    if p.returncode != 0:
        return None, text, "discard_client exit %d: %s" % (p.returncode, err.strip()[:300])
    res["client_cpu"] = client_cpu(user, system, wall, 1)
    return res, text, None


def client_cpu(user, system, wall_s, ncpus):
    """The load generator's CPU use over its wall time, and the flag."""
    if user is None or wall_s <= 0:
        return {"user_s": None, "sys_s": None, "util": None, "bound": False}
    util = (user + system) / wall_s / max(1, ncpus)
    return {"user_s": user, "sys_s": system, "util": round(util, 3),
            "bound": util >= CLIENT_BOUND_UTIL}


def run_hyperfine_churn(url, batch, runs, cpus, export_path):
    """Times a fixed batch of `batch` requests, each on its own connection
    (ab without -k: HTTP/1.0, the server closes after every answer), with
    hyperfine: one warm-up run, then `runs` measured runs. Returns (parsed
    result dict of parse.parse_hyperfine_json, error text or None)."""
    cmd = "ab -q -r -n %d -c 8 %s" % (batch, url)
    argv = pin(cpus) + ["hyperfine", "-N", "--style", "none", "--warmup", "1", "--runs",
                        str(runs), "--export-json", export_path, cmd]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60 + 10 * runs)
    except subprocess.TimeoutExpired:
        return None, "hyperfine did not finish in time"
    if p.returncode != 0 or not os.path.exists(export_path):
        return None, "hyperfine failed: " + p.stdout.decode(errors="replace").strip()[-300:]
    with open(export_path) as f:
        return parse.parse_hyperfine_json(f.read())[0], None


class IdleHolder:
    """build/harness/idle_holder holding K idle keep-alive connections."""

    def __init__(self, binary, port, conns, cpus):
        self.conns = conns
        self.proc = subprocess.Popen(
            pin(cpus) + [binary, "--port", str(port), "--conns", str(conns)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_holding(self, timeout_s=120):
        """Blocks until every connection got its answer. Returns None, or
        the reason it failed."""
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline, line = time.monotonic() + timeout_s, b""
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                chunk = os.read(self.proc.stdout.fileno(), 256)
                if not chunk:
                    break
                line += chunk
        sel.close()
        if line.strip() == b"holding %d" % self.conns:
            return None
        self.proc.kill()
        err = self.proc.communicate()[1].decode(errors="replace").strip()
        return "idle_holder could not open %d connections: %s" % (self.conns,
                                                                   err or "timed out")

    def release(self):
        """Closes every connection. Returns how many of them the server had
        already closed while they were idle (0 unless it timed them out)."""
        if self.proc.poll() is not None:
            return None
        out = self.proc.communicate(b"", timeout=30)[0].decode(errors="replace")
        for line in out.splitlines():
            if line.startswith("closed-by-server "):
                return int(line.split()[1])
        return None


WARM_REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def warm_burst(port, requests, conns, cpus, deadline_s=10.0):
    """Sends `requests` keep-alive GET /plaintext over `conns` connections,
    one in flight on each, taking turns, and reads every answer. Bounded by
    the count and by deadline_s. The calling thread is pinned to the client
    CPUs meanwhile (and given back its CPUs after), like every load generator.
    Returns (answers read, error text or None)."""
    import socket
    from servers import cpu_set
    old = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpu_set(cpus))
    socks, done = [], 0
    deadline = time.monotonic() + deadline_s
    try:
        for _ in range(conns):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        while done < requests and time.monotonic() < deadline:
            batch = socks[:min(conns, requests - done)]
            for s in batch:
                s.sendall(WARM_REQUEST)
            for s in batch:
                _read_answer(s)
                done += 1
        return done, None if done == requests else "warm burst: %d of %d answered in " \
            "%g s" % (done, requests, deadline_s)
    except (OSError, ValueError) as e:
        return done, "warm burst: %s after %d answers" % (e, done)
    finally:
        for s in socks:
            s.close()
        os.sched_setaffinity(0, old)


def _read_answer(sock):
    """Reads one HTTP response with a Content-Length body from sock."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("the server closed the connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("an answer without Content-Length")
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("the server closed the connection")
        body += chunk
    if len(body) != length:
        raise ValueError("more bytes than the answer's Content-Length")


def stats_snapshot(port):
    """Our servers' GET /stats as a dict, or None (reference servers)."""
    import http.client
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        c.request("GET", "/stats")
        r = c.getresponse()
        body = r.read()
        c.close()
        return json.loads(body) if r.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
