#!/usr/bin/env python3
"""bench.py - the benchmark runner behind `make bench-all`.

What it does: finds every server binary this platform built (and the
reference servers: the floor, nginx, h2o), verifies each one's answers,
then runs every workload (workloads.py) against each of them under the same
load, pinned to the same CPUs, with a warm-up before each measured trial.
Results are written after every point to results/<UTC stamp>-<host>/
(results.json, results.csv, env.json), so an interrupted run keeps what it
measured; at the end the charts and README.md are drawn (scripts/plot.py,
scripts/report.py) and a summary table is printed.

What it teaches: how to measure fairly -- same load, pinned processes,
warm-ups, several trials with median and spread, the server's own CPU time
per request, and an honest flag on every number that cannot be trusted
(errors, a saturated load generator).

Needs: Python 3 (stdlib only), Linux /proc, taskset, wrk; hyperfine and ab
for the churn batch; nginx and h2o for their lines. Run `harness/bench.py
--help`, or `make bench-all` (harness/README.md).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "scripts"))

import envinfo  # noqa: E402
import results as res  # noqa: E402
import servers  # noqa: E402
import workloads as wl  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark every I/O backend and the reference servers.",
        epilog="Workloads: " + ", ".join(wl.WORKLOAD_ORDER) + ". See harness/README.md.")
    p.add_argument("--preset", choices=sorted(wl.PRESETS), default="quick")
    p.add_argument("--backends", default="",
                   help="backends to measure, e.g. 'epoll poll' (default: every "
                        "bin/server-* built, plus bin/server-*.exe under Wine)")
    p.add_argument("--wine", choices=("auto", "no"), default="auto",
                   help="auto: also run every bin/server-*.exe under Wine (labelled, "
                        "never ranked with native backends); no: skip them")
    p.add_argument("--workloads", default="", help="subset of the workloads (default all)")
    p.add_argument("--refs", default="floor nginx h2o",
                   help="reference servers: floor nginx h2o, or 'none'")
    p.add_argument("--conns", default="", help="connections of the plaintext sweep")
    p.add_argument("--idle", default="", help="idle connection counts, e.g. '0 1000'")
    p.add_argument("--duration", type=float, help="seconds per measured trial (wrk runs "
                   "whole seconds; a fraction is obtained by interrupting it)")
    p.add_argument("--trials", type=int, help="measured trials per point")
    p.add_argument("--warmup", type=float, help="seconds of warm-up before each trial")
    p.add_argument("--server-cpus", default="0", help="taskset list for servers ('' = none)")
    p.add_argument("--client-cpus", default="1", help="taskset list for load generators")
    p.add_argument("--workers", type=int, default=1,
                   help="event loops per server: --workers N for ours, worker_processes "
                        "for nginx, num-threads for h2o (the floor always runs one)")
    p.add_argument("--out", default="", help="results folder (default results/<stamp>-<host>)")
    p.add_argument("--root", default="", help="static root to use (default: a generated "
                                              "temporary one)")
    p.add_argument("--bin-dir", default=os.path.join(REPO, "bin"))
    p.add_argument("--tools-dir", default=os.path.join(REPO, "build", "harness"))
    p.add_argument("--no-plots", action="store_true", help="skip charts and report")
    p.add_argument("--cc", default=os.environ.get("CC", "cc"), help="compiler (for env.json)")
    p.add_argument("--cflags", default="", help="compiler flags (for env.json)")
    return p.parse_args(argv)


def words(text):
    return [w for w in text.replace(",", " ").split() if w]


def build_config(args):
    """The effective settings: the preset, overridden by the knobs given."""
    cfg = dict(wl.PRESETS[args.preset])
    cfg["preset"] = args.preset
    if args.conns:
        cfg["conns"] = sorted({int(c) for c in words(args.conns)})
    if args.idle:
        cfg["idle"] = sorted({int(c) for c in words(args.idle)})
    for key in ("duration", "trials", "warmup"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    cfg["duration"] = max(0.2, float(cfg["duration"]))
    if cfg["duration"] == int(cfg["duration"]):
        cfg["duration"] = int(cfg["duration"])
    cfg["trials"] = max(1, int(cfg["trials"]))
    if args.workers < 1:
        sys.exit("bench: --workers must be 1 or more")
    cfg["workers"] = args.workers
    chosen = words(args.workloads) or list(wl.WORKLOAD_ORDER)
    unknown = [w for w in chosen if w not in wl.WORKLOADS]
    if unknown:
        sys.exit("bench: unknown workload(s) %s; known: %s" %
                 (" ".join(unknown), " ".join(wl.WORKLOAD_ORDER)))
    cfg["workloads"] = [w for w in wl.WORKLOAD_ORDER if w in chosen]
    refs = [] if args.refs.strip() == "none" else words(args.refs)
    bad = [r for r in refs if r not in wl.REFERENCE_WORKLOADS]
    if bad:
        sys.exit("bench: unknown reference server(s) %s; known: floor nginx h2o" % " ".join(bad))
    cfg["refs"] = refs
    return cfg


def raise_fd_limit():
    """Every connection costs a descriptor in wrk, in the server and in
    idle_holder: take the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    except (ValueError, OSError):
        pass
    return soft


def cap_to_fd_limit(cfg, limit, notes):
    """Drops the sweep values no process could hold within `limit` fds, and
    says so in the run's notes (never silently)."""
    room = limit - 200  # listeners, logs, the 64 busy connections of idle runs
    for key in ("conns", "delay_conns", "pipeline_conns", "json_conns", "churn_conns"):
        over = [c for c in cfg[key] if c > room]
        if over:
            cfg[key] = [c for c in cfg[key] if c <= room] or [room]
            notes.append("%s %s dropped: above the open-file limit %d" % (key, over, limit))
    over = [k for k in cfg["idle"] if k + wl.IDLE_ACTIVE_CONNS > room]
    if over:
        cfg["idle"] = [k for k in cfg["idle"] if k + wl.IDLE_ACTIVE_CONNS <= room]
        notes.append("idle %s dropped: above the open-file limit %d" % (over, limit))


def check_pinning(server_cpus, client_cpus, notes):
    """Pins only to CPUs this process may use; otherwise runs unpinned and
    records it. Returns the (server, client) taskset lists or None each."""
    allowed = os.sched_getaffinity(0)

    def ok(cpus):
        try:
            wanted = set()
            for part in cpus.split(","):
                lo, _, hi = part.partition("-")
                wanted |= set(range(int(lo), int(hi or lo) + 1))
            return bool(wanted) and wanted <= allowed
        except ValueError:
            return False

    if shutil.which("taskset") is None:
        notes.append("taskset not found (apt-get install util-linux): nothing is pinned")
        return None, None
    out = []
    for role, cpus in (("server", server_cpus), ("client", client_cpus)):
        if cpus and not ok(cpus):
            notes.append("%s CPUs '%s' not available here (allowed %s): %s not pinned" %
                         (role, cpus, sorted(allowed), role))
            cpus = None
        out.append(cpus or None)
    if out[0] and out[0] == out[1]:
        notes.append("server and client share CPUs %s: they compete for them" % out[0])
    return out[0], out[1]


def note_workers(cfg, server_cpus, notes):
    """Says in the run's notes what several workers mean here."""
    n = cfg["workers"]
    if n == 1:
        return
    if "floor" in cfg["refs"]:
        notes.append("%d workers per server; the floor runs one loop whatever the count" % n)
    ncpus = envinfo.count_cpus(server_cpus) if server_cpus else len(os.sched_getaffinity(0))
    if n > ncpus:
        notes.append("%d workers share %d server CPU(s)" % (n, ncpus))


def make_static_root(root):
    """Generates the static files (deterministic bytes) in `root`; returns
    [(name, path), ...] smallest first."""
    os.makedirs(root, exist_ok=True)
    files = []
    for name, size in wl.STATIC_FILES:
        path = os.path.join(root, name)
        pattern = bytes(range(256)) * (size // 256 + 1)
        with open(path, "wb") as f:
            f.write(pattern[:size])
        files.append((name, path))
    return files


def discover(args, cfg, notes):
    """Every server to measure, as Server specs, and the ones that cannot
    run here as skipped entries {name, label, reason}."""
    specs, skipped = [], []
    names = words(args.backends)
    if not names:
        names = sorted(f[len("server-"):] for f in os.listdir(args.bin_dir)
                       if f.startswith("server-") and not f.endswith(".exe"))
    for name in names:
        path = os.path.join(args.bin_dir, "server-" + name)
        label = "kqueue (emulated on epoll)" if name == "kqueue" else name
        kind = "emulated" if name == "kqueue" else "native"
        if not os.access(path, os.X_OK):
            skipped.append({"name": name, "label": label, "reason": "not built here (%s "
                            "missing)" % os.path.relpath(path, REPO)})
            continue
        specs.append({"name": name, "label": label, "kind": kind, "argv": [path]})
    exes = sorted(os.listdir(args.bin_dir)) if os.path.isdir(args.bin_dir) else []
    for f in exes if args.wine == "auto" else []:
        if f.startswith("server-") and f.endswith(".exe"):
            name = f[len("server-"):-len(".exe")] + "-wine"
            label = f[len("server-"):-len(".exe")] + " (under Wine)"
            if shutil.which("wine") is None:
                skipped.append({"name": name, "label": label,
                                "reason": "Wine is not installed (apt-get install wine)"})
                continue
            specs.append({"name": name, "label": label, "kind": "wine",
                          "argv": ["wine", os.path.join(args.bin_dir, f)]})
    for ref in cfg["refs"]:
        label = {"floor": "floor (kernel only)"}.get(ref, ref)
        why = servers.reference_available(ref)
        if ref == "floor":
            floor = os.path.join(args.tools_dir, "floor")
            why = None if os.access(floor, os.X_OK) else "%s not built (make bench-tools)" % floor
        if why:
            skipped.append({"name": ref, "label": label, "reason": why})
            continue
        spec = {"name": ref, "label": label, "kind": "reference"}
        if ref == "floor":
            spec["argv"] = [os.path.join(args.tools_dir, "floor")]
        else:
            spec["ref"] = ref
        specs.append(spec)
    return specs, skipped


def verify_all(specs, ctx):
    """Starts each server once and checks its answers. Returns the specs that
    passed; the others go to ctx.results as skipped, with the reason."""
    good = []
    for spec in specs:
        srv = servers.Server(spec, ctx.root, ctx.server_cpus, ctx.out, ctx.cfg["workers"])
        try:
            srv.start()
        except servers.StartError as e:
            ctx.results.skip(spec, "cannot start: " + e.reason)
            print("  skip  %-28s cannot start: %s" % (spec["label"], e.reason))
            continue
        problems = servers.verify(srv, ctx.static_files, plaintext_only=spec["name"] == "floor")
        srv.stop()
        ctx.results.verification[spec["name"]] = {"ok": not problems, "problems": problems}
        if problems:
            ctx.results.skip(spec, "failed verification: " + "; ".join(problems))
            print("  skip  %-28s failed verification: %s" % (spec["label"], problems[0]))
            continue
        print("  ok    %-28s answers verified" % spec["label"])
        good.append(spec)
    return good


class Context:
    """What every point needs: settings, paths, pinning, the results."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    cfg = build_config(args)
    notes = []
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk not found: install it (apt-get install wrk, or "
                 "scripts/ensure-deps.sh bench)")
    fd_limit = raise_fd_limit()
    cap_to_fd_limit(cfg, fd_limit, notes)
    server_cpus, client_cpus = check_pinning(args.server_cpus, args.client_cpus, notes)
    note_workers(cfg, server_cpus, notes)
    # Absolute: nginx and h2o are given paths inside it from their own prefix.
    out = (os.path.abspath(args.out) if args.out else
           os.path.join(REPO, "results", envinfo.run_name()))
    os.makedirs(out, exist_ok=True)
    tmp = None
    if args.root:
        root = args.root
    else:
        tmp = tempfile.mkdtemp(prefix="bench-root-")
        root = tmp
    ctx = Context(cfg=cfg, out=out, root=root, static_files=make_static_root(root),
                  server_cpus=server_cpus, client_cpus=client_cpus,
                  client_threads=len(os.sched_getaffinity(0)) if not client_cpus
                  else envinfo.count_cpus(client_cpus),
                  server_ncpus=envinfo.count_cpus(server_cpus) if server_cpus
                  else len(os.sched_getaffinity(0)),
                  tools=args.tools_dir, results=res.Results(out))
    env = envinfo.collect(args, cfg, server_cpus, client_cpus, fd_limit, notes)
    ctx.results.env = env
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump(env, f, indent=2)
    print("bench: preset %s, %g s x %d trials, results in %s" %
          (cfg["preset"], cfg["duration"], cfg["trials"], os.path.relpath(out)))
    for n in notes:
        print("bench: note: " + n)
    specs, skipped = discover(args, cfg, notes)
    for s in skipped:
        ctx.results.skip(s, s["reason"])
        print("  skip  %-28s %s" % (s["label"], s["reason"]))
    import runner
    interrupted = False
    started = time.monotonic()
    try:
        specs = verify_all(specs, ctx)
        runner.run_plan(runner.make_plan(specs, ctx), ctx)
    except KeyboardInterrupt:
        interrupted = True
        print("\nbench: interrupted: keeping the %d rows measured so far" %
              len(ctx.results.rows))
    ctx.results.finish(complete=not interrupted, elapsed_s=time.monotonic() - started)
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump(ctx.results.env, f, indent=2)  # with the notes added during the run
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.no_plots:
        draw(out)
    import report
    print()
    print(report.summary_text(ctx.results.document()))
    print("\nbench: %s in %s (%.0f s); charts and README.md there." %
          ("done" if not interrupted else "partial results", os.path.relpath(out),
           time.monotonic() - started))
    return 130 if interrupted else 0


def draw(out):
    """Runs the chart script with a Python that has matplotlib, then the
    report; a missing matplotlib costs the charts, never the results."""
    find = os.path.join(REPO, "scripts", "find-python.sh")
    py = subprocess.run([find], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if py.returncode != 0:
        print("bench: charts skipped: " + py.stderr.decode().strip())
    else:
        r = subprocess.run([py.stdout.decode().strip(), os.path.join(REPO, "scripts",
                                                                    "plot.py"), out])
        if r.returncode != 0:
            print("bench: scripts/plot.py failed (exit %d)" % r.returncode)
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "report.py"), out])


if __name__ == "__main__":
    sys.exit(main())
