#!/usr/bin/env python3
"""per_request.py - what one request costs a server: CPU time, system calls
and user-space instructions, for several server binaries side by side.

What it is for: judging one optimisation at a time on a shared machine. A
wall-clock benchmark there moves with whatever else runs; two of the three
figures here do not:

  syscalls  system calls per response, counted by the kernel's syscall
            tracepoints (perf stat, a counter in the kernel: the server is
            not stopped at each call as it is under strace -c, so its batching
            stays what it is without the tracer). Also the recv() calls that
            found nothing (EAGAIN), the epoll_wait() calls that ended by
            their timeout, and the responses per epoll_wait().
  instr     user-space instructions per response, counted by callgrind
            (valgrind): deterministic, whatever else the machine does.
  misses    the same, with callgrind's cache model: data accesses per
            response that miss the first-level and the last-level cache
            (a model of the CPU's caches, not a measurement of them).
  cpu       server CPU time per request (user and system, from
            /proc/<pid>/stat, as harness/runner.py reads it) over a wrk run.
            Noisy on a busy machine, so servers are measured back to back,
            TRIALS times in turn, and the medians are compared.
  tail      the latency tail under a saturated wrk, and the two event
            loops that shape it: wrk's p50 and p99, the share of requests
            that took more than 1.5x the median ("late", the second mode of
            a bimodal tail), the mean time between wrk's epoll_wait() returns
            (one turn of its loop) and between the server's waits (epoll_wait,
            poll or io_uring_enter), both counted by perf in the kernel, and
            the share of its core the server used meanwhile. A loop turn of
            wrk's as long as the median says wrk is the bottleneck; a server
            near 1.00 busy with long waits says the server is.

A response is counted as one successful send() (syscalls, instr): true for
GET /plaintext without pipelining, where every response leaves in one call,
from every server that sends with send() (io_uring sends through its ring,
not a system call: measure it with cpu; nor does it run under valgrind).
The cpu mode divides by wrk's own request count, as the harness does.

Every server is started pinned to CPU 0 and wrk to CPU 1 (taskset), on
127.0.0.1 with --port 0; it must print the contract's "listening on" line
(harness/floor.c does). All load is bounded: wrk runs DURATION seconds.

A NAME=@nginx server is nginx, configured as the harness configures it
(harness/servers.py), on a free port.

Needs: wrk, taskset; perf (syscalls, tail), valgrind (instr), Linux;
nginx for @nginx.
Run:   bench/per_request.py --mode syscalls --conns 256,1024 \\
           epoll=bin/server-epoll floor=build/harness/floor
       (make bench-syscalls does this for BACKEND=epoll and the floor)
"""
import argparse
import glob
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import bench as harness_bench  # noqa: E402  (the descriptor limit)
import servers as harness_servers  # noqa: E402  (nginx as the harness starts it)

SERVER_CPU, CLIENT_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The system calls counted one by one; raw_syscalls counts them all.
CALLS = ("epoll_wait", "poll", "io_uring_enter", "recvfrom", "sendto", "epoll_ctl", "read",
         "write", "accept4", "setsockopt", "close")
URL_PATH = "/plaintext"  # what wrk asks for (--path)
START_TIMEOUT_S = 30     # for the listening line; valgrind takes a few seconds
VALGRIND_HINT = (" (if it is the io_uring backend: it hangs under valgrind 3.19; "
                 "measure it with --mode syscalls,cpu)")


class Server:
    """One server process, pinned, on an ephemeral loopback port."""

    def __init__(self, argv, prefix=()):
        cmd = ["taskset", "-c", SERVER_CPU] + list(prefix) + list(argv) + [
            "--port", "0", "--idle-timeout", "60"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        ready = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)[0]
        line = self.proc.stdout.readline() if ready else ""
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            self.stop()
            raise RuntimeError("%s did not print its listening line in %d s: %r%s" % (
                argv[0], START_TIMEOUT_S, line, VALGRIND_HINT if prefix else ""))
        self.url = m.group(1) + URL_PATH

    def pid(self):
        """The server's pid (under valgrind, the tool's process is the server)."""
        return self.proc.pid

    def cpu_s(self):
        """(user, system) CPU seconds of the process so far, all threads."""
        with open("/proc/%d/stat" % self.pid()) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Nginx(Server):
    """nginx as the harness runs it (harness/servers.py: its configuration,
    one worker, no master, a free port), pinned like the others."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory()
        spec = {"name": "nginx", "kind": "reference", "ref": "nginx"}
        self.ref = harness_servers.Server(spec, self.tmp.name, SERVER_CPU, self.tmp.name)
        try:
            self.ref.start()
        except harness_servers.StartError as e:
            self.tmp.cleanup()
            raise RuntimeError("nginx did not start: %s" % e) from None
        self.proc = self.ref.proc
        self.url = "http://127.0.0.1:%d%s" % (self.ref.port, URL_PATH)

    def stop(self):
        self.ref.stop()
        self.tmp.cleanup()


def start(argv, prefix=()):
    """A Server for NAME=BINARY [args], or nginx for NAME=@nginx."""
    if argv == ["@nginx"]:
        if prefix:
            raise RuntimeError("nginx does not run under valgrind here: measure it with --mode cpu,tail")
        return Nginx()
    return Server(argv, prefix)


def wrk(url, conns, seconds, background=False, script=None):
    """Runs wrk pinned to CLIENT_CPU; returns its request count (or the Popen)."""
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds]
    argv += ["-s", script, url] if script else [url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if background:
        return proc
    return wrk_requests(proc)


def wrk_requests(proc):
    out = proc.communicate(timeout=60)[0]
    m = re.search(r"^\s*(\d+) requests in", out, re.M)
    if not m or "Non-2xx" in out:
        raise RuntimeError("wrk failed or got errors:\n" + out)
    return int(m.group(1))


def measure_cpu(argv, conns, duration):
    srv = start(argv)
    try:
        wrk(srv.url, conns, 1)  # warm-up: connections, caches, the heap's size
        u0, s0 = srv.cpu_s()
        n = wrk(srv.url, conns, duration)
        u1, s1 = srv.cpu_s()
    finally:
        srv.stop()
    return {"user_us": (u1 - u0) / n * 1e6, "sys_us": (s1 - s0) / n * 1e6,
            "cpu_us": (u1 - u0 + s1 - s0) / n * 1e6, "requests": n, "req_s": n / duration}


def stats_requests(url):
    """The server's request count from GET /stats, or None (the floor)."""
    try:
        with urllib.request.urlopen(url.replace(URL_PATH, "/stats"), timeout=2) as r:
            return int(json.load(r)["requests"])
    except (OSError, ValueError, KeyError):
        return None


def perf_stat(pid, events, seconds):
    """Starts perf stat counting `events` (each '-e EVENT' with its
    '--filter ...' if any, as a list of arguments) in process `pid` for
    `seconds`; perf_counts() collects it."""
    return subprocess.Popen(["perf", "stat", "-x", ",", "-p", str(pid)] + events +
                            ["--", "sleep", str(seconds)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def perf_counts(proc):
    """[(count, event name)] in perf's order, from a perf_stat() process."""
    err = proc.communicate(timeout=60)[1]
    rows = [line.split(",") for line in err.splitlines()]
    counts = [(int(r[0]), r[2]) for r in rows if len(r) > 3 and r[0].isdigit()]
    if not counts:
        raise RuntimeError("perf stat gave no counts:\n" + err)
    return counts


def measure_syscalls(argv, conns, duration):
    """Counts system calls in a window inside a wrk run (no connect or close
    in it): wrk runs duration + 2 s, perf watches the middle duration s."""
    events = []
    for e in ["raw_syscalls:sys_enter"] + ["syscalls:sys_enter_" + c for c in CALLS]:
        events += ["-e", e]
    # Filters on exit events: responses (a send that sent) and empty reads.
    events += ["-e", "syscalls:sys_exit_sendto", "--filter", "ret > 0",
               "-e", "syscalls:sys_exit_recvfrom", "--filter", "ret == -11",
               "-e", "syscalls:sys_exit_epoll_wait", "--filter", "ret == 0"]
    srv = start(argv)
    try:
        wrk(srv.url, conns, 1)
        load = wrk(srv.url, conns, duration + 2, background=True)
        time.sleep(1)
        served = stats_requests(srv.url)
        perf = perf_counts(perf_stat(srv.pid(), events, duration))
        if served is not None:
            served = stats_requests(srv.url) - served - 1  # less our own /stats
        wrk_requests(load)
    finally:
        srv.stop()
    counts, exits = {}, []
    for count, event in perf:
        name = event.split(":")[-1]
        if name.startswith("sys_exit"):
            exits.append(count)
        else:
            counts[name.replace("sys_enter_", "").replace("sys_enter", "all")] = count
    if len(exits) != 3 or (exits[0] == 0 and not served):
        raise RuntimeError("perf stat counted no responses: %r" % perf)
    # A completion backend sends from the ring, not with sendto(): its
    # responses are counted by its own /stats instead (the floor has none).
    resp = exits[0] or served
    row = {k: v / resp for k, v in counts.items()}
    row["recv_eagain"] = exits[1] / resp
    row["wait_timeouts"] = exits[2] / resp
    row["resp_per_wait"] = resp / counts["epoll_wait"] if counts.get("epoll_wait") else 0
    row["requests"] = resp
    return row


# wrk's done() hook for the tail mode: the median, the p99 and the share of
# requests slower than 1.5x the median, found by bisecting the percentiles.
TAIL_LUA = """
function done(summary, latency, requests)
  local p50, lo, hi = latency:percentile(50), 50.0, 100.0
  for i = 1, 40 do
    local mid = (lo + hi) / 2
    if latency:percentile(mid) > 1.5 * p50 then hi = mid else lo = mid end
  end
  io.write(string.format("TAIL %d %d %.4f\\n", p50, latency:percentile(99), 100 - lo))
end
"""
SERVER_WAITS = ("epoll_wait", "poll", "io_uring_enter")


def measure_tail(argv, conns, duration):
    """wrk's latency percentiles over duration + 2 s, and both loops' turns
    counted by perf over the middle `duration` s of it."""
    srv = start(argv)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(TAIL_LUA)
        lua.flush()
        try:
            wrk(srv.url, conns, 1)
            load = wrk(srv.url, conns, duration + 2, background=True, script=lua.name)
            time.sleep(1)
            u0, s0, t0 = *srv.cpu_s(), time.monotonic()
            client = perf_stat(load.pid, ["-e", "syscalls:sys_exit_epoll_wait"], duration)
            server = perf_stat(srv.pid(), [a for c in SERVER_WAITS
                                           for a in ("-e", "syscalls:sys_enter_" + c)], duration)
            turns = sum(n for n, _ in perf_counts(client))
            waits = sum(n for n, _ in perf_counts(server))
            u1, s1, t1 = *srv.cpu_s(), time.monotonic()
            out = load.communicate(timeout=60)[0]
        finally:
            srv.stop()
    m = re.search(r"^TAIL (\d+) (\d+) ([\d.]+)$", out, re.M)
    n = re.search(r"^\s*(\d+) requests in ([\d.]+)s", out, re.M)
    if not m or not n or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError("wrk failed or got errors:\n" + out)
    req_s = int(n.group(1)) / float(n.group(2))
    return {"p99_ms": int(m.group(2)) / 1000, "p50_ms": int(m.group(1)) / 1000,
            "late_pct": float(m.group(3)), "wrk_turn_ms": duration * 1000 / max(turns, 1),
            "server_wait_us": duration * 1e6 / max(waits, 1),
            "resp_per_wait": req_s * duration / max(waits, 1), "req_s": req_s,
            "server_busy": (u1 - u0 + s1 - s0) / (t1 - t0)}


def callgrind_totals(path):
    """({event: total}, calls to libc's send()) from a callgrind output file."""
    names, events, total, sends, cfn = {}, [], {}, 0, None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                total = dict(zip(events, (int(v) for v in line.split()[1:])))
            elif line.startswith("cfn="):
                m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.strip())
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                cfn = names.get(m.group(1))
            elif line.startswith("fn=") or line.startswith("fl="):
                m = re.match(r"fn=\((\d+)\) (.*)", line.strip())
                if m:
                    names[m.group(1)] = m.group(2)
            elif line.startswith("calls=") and cfn == "send":
                sends += int(line.split("=")[1].split()[0])
    return total, sends


def measure_instr(argv, conns, duration, cache_sim=False):
    """User-space instructions per response under callgrind: the counters are
    zeroed after a warm-up and dumped right after a duration s wrk run. With
    cache_sim, also the data reads and writes that missed callgrind's model
    of the first-level cache (D1) and of the last-level cache (LL)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        tool = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
        srv = start(argv, tool + (["--cache-sim=yes"] if cache_sim else []))
        try:
            wrk(srv.url, conns, 1)
            subprocess.run(["callgrind_control", "-z", str(srv.pid())], capture_output=True,
                           check=True)
            wrk(srv.url, conns, duration)
            subprocess.run(["callgrind_control", "-d", str(srv.pid())], capture_output=True,
                           check=True)
        finally:
            srv.stop()
        dumps = sorted(glob.glob(out + ".*"))
        if not dumps:
            raise RuntimeError("callgrind wrote no dump")
        total, sends = callgrind_totals(dumps[0])
    if not sends:
        raise RuntimeError("no send() calls in the callgrind dump")
    row = {"instr": total["Ir"] / sends, "requests": sends}
    if cache_sim:  # (callgrind leaves out trailing counts that are zero)
        row["d1_miss"] = (total.get("D1mr", 0) + total.get("D1mw", 0)) / sends
        row["ll_miss"] = (total.get("DLmr", 0) + total.get("DLmw", 0)) / sends
    return row


def measure_misses(argv, conns, duration):
    return measure_instr(argv, conns, duration, cache_sim=True)


MODES = {"cpu": (measure_cpu, ("cpu_us", "user_us", "sys_us", "req_s")),
         "syscalls": (measure_syscalls, ("all", "recvfrom", "recv_eagain", "sendto",
                                         "epoll_wait", "io_uring_enter", "wait_timeouts", "epoll_ctl",
                                         "resp_per_wait")),
         "tail": (measure_tail, ("p99_ms", "p50_ms", "late_pct", "wrk_turn_ms", "server_wait_us",
                                 "resp_per_wait", "server_busy", "req_s")),
         "instr": (measure_instr, ("instr",)),
         "misses": (measure_misses, ("instr", "d1_miss", "ll_miss"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="syscalls", help="syscalls, instr, misses, cpu, tail (comma list)")
    ap.add_argument("--conns", default="256,1024", help="connection counts, comma list")
    ap.add_argument("--duration", type=int, default=3, help="seconds of each measured run")
    ap.add_argument("--trials", type=int, default=3, help="runs per point; medians shown")
    ap.add_argument("--path", default="/plaintext",
                    help="what wrk asks for, e.g. /static/<file> (with --root in the server's args)")
    ap.add_argument("servers", nargs="+", help="NAME=BINARY [args...]; the first is the base")
    args = ap.parse_args()
    global URL_PATH
    URL_PATH = args.path
    servers = [(s.split("=", 1)[0], s.split("=", 1)[1].split()) for s in args.servers]
    modes = args.mode.split(",")
    for mode in modes:
        if mode not in MODES:
            sys.exit("per_request.py: unknown mode %r (one of: %s)" % (mode, ", ".join(MODES)))
    need = {"wrk": "wrk", "taskset": "util-linux"}
    if {"syscalls", "tail"} & set(modes):
        need["perf"] = "linux-perf"
    if {"instr", "misses"} & set(modes):
        need["valgrind"] = "valgrind"
    missing = ["%s (Debian package %s)" % (c, p) for c, p in need.items() if not shutil.which(c)]
    if any(argv == ["@nginx"] for _, argv in servers):
        missing += filter(None, [harness_servers.reference_available("nginx")])
    if missing:
        sys.exit("per_request.py: missing " + ", ".join(missing))
    harness_bench.raise_fd_limit()
    for mode in modes:
        fn, keys = MODES[mode]
        print("\n## %s: medians of %d trials, %d s each\n" % (mode, args.trials, args.duration))
        print("| conns | server | " + " | ".join(keys) + " | %s min..max | ratio to %s |"
              % (keys[0], servers[-1][0]))
        print("|---" * (len(keys) + 4) + "|")
        for conns in [int(c) for c in args.conns.split(",")]:
            rows = {name: [] for name, _ in servers}
            for _ in range(args.trials):  # back to back: noise hits every server
                for name, argv in servers:
                    rows[name].append(fn(argv, conns, args.duration))
            med = {n: {k: statistics.median(r[k] for r in rows[n]) for k in keys}
                   for n in rows}
            last = med[servers[-1][0]][keys[0]]
            for name, _ in servers:
                ratio = med[name][keys[0]] / last if last else 0
                first = [r[keys[0]] for r in rows[name]]
                print("| %d | %s | " % (conns, name) +
                      " | ".join("%.2f" % med[name][k] for k in keys) +
                      " | %.2f..%.2f | %.2f |" % (min(first), max(first), ratio))
            sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit("per_request.py: %s" % e)
