"""envinfo.py - what machine and method produced a run (env.json).

What it is for: a number without its machine is meaningless. Every run
records the kernel, the CPU, the cores, the compiler and its flags, the git
revision, the versions of the tools, the pinning and the settings used, and
the charts print a one-line digest of it. Plain Python 3 stdlib.
"""

import datetime
import os
import platform
import re
import socket
import subprocess


def run_name():
    """'20261125T180512Z-hostname': the default results folder name."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
    return "%s-%s" % (stamp, host)


def count_cpus(cpus):
    """Number of CPUs in a taskset list such as '1' or '0,2-3'."""
    n = 0
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def _first_line(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        text = p.stdout.decode(errors="replace").strip()
        return text.splitlines()[0] if text else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def git_revision(repo):
    """HEAD's short hash, "-dirty" if tracked source differs from it. Files
    under results/ do not count: they are runs, not the code measured, and
    a run written over a committed one would mark every later run dirty."""
    rev = _first_line(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"])
    dirty = _first_line(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no",
                         "--", ".", ":(exclude)results"])
    if rev and ("fatal" in rev or "not a git" in rev):
        return None
    return rev + ("-dirty" if dirty else "") if rev else None


def collect(args, cfg, server_cpus, client_cpus, fd_limit, notes):
    """The env.json document."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "compiler": _first_line([args.cc, "--version"]),
        "cflags": args.cflags,
        "git_revision": git_revision(repo),
        "tools": {
            "wrk": _first_line(["wrk", "-v"]),
            "discard_client": "harness/discard_client.c at git_revision (static files)",
            "hyperfine": _first_line(["hyperfine", "--version"]),
            "ab": _first_line(["ab", "-V"]),
            "nginx": _first_line(["nginx", "-v"]),
            "h2o": _first_line(["h2o", "--version"]),
            "python": platform.python_version(),
        },
        "pinning": {"server_cpus": server_cpus, "client_cpus": client_cpus,
                    "tool": "taskset" if server_cpus or client_cpus else None},
        "limits": {"open_files": fd_limit,
                   "somaxconn": _read("/proc/sys/net/core/somaxconn"),
                   "ip_local_port_range": _read("/proc/sys/net/ipv4/ip_local_port_range"),
                   "tcp_tw_reuse": _read("/proc/sys/net/ipv4/tcp_tw_reuse")},
        "settings": {k: v for k, v in cfg.items()},
        "notes": list(notes),
    }


def caption(env):
    """One line for the charts: machine and method."""
    s = env.get("settings", {})
    pin = env.get("pinning", {})
    pinning = ("server CPU %s, client CPU %s" % (pin.get("server_cpus"), pin.get("client_cpus"))
               if pin.get("server_cpus") else "unpinned")
    if (s.get("workers") or 1) > 1:
        pinning = "%s workers, %s" % (s["workers"], pinning)
    opt = " ".join(f for f in (env.get("cflags") or "").split() if f.startswith("-O"))
    return ("%s, %s cores, %s | %s %s | %s, discard_client for static files | preset %s: "
            "%s s x %s trials, %s s warm-up, %s "
            "| git %s" % (env.get("cpu_model"), env.get("cores"), env.get("kernel"),
                          env.get("compiler") or "compiler ?", opt,
                          (env.get("tools") or {}).get("wrk", "wrk ?").split(" Copyright")[0],
                          s.get("preset"), s.get("duration"), s.get("trials"), s.get("warmup"),
                          pinning, env.get("git_revision")))
