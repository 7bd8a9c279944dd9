#!/usr/bin/env python3
"""scaling.py - how throughput scales with --workers: one bench run per
worker count, then a table comparing them. `make bench-scaling` runs it.

Usage: harness/scaling.py [--workers-list "1 2"] [-- bench.py flags]
       harness/scaling.py --compare DIR     (redo the table of a finished run)

Each worker count gets its own complete run of harness/bench.py, in
<out>/workers-<N>/ (charts, report and all), with every other flag the same:
the same CPU lists, workloads, connections, trials. nginx and h2o are given
the same number of worker processes or threads (bench.py --workers). The
comparison, <out>/README.md, gives per server and point the requests/s at
each count, the ratio to the first count, the server CPU per request and
its CPU use (a share of the server CPUs), and the flags.

What it teaches: more loops help only while there are idle cores for them
and the load generator keeps up. When server and client share the cores
(docs/scaling.md: the 2-core case) the ratio says how the work was split,
not how the server would scale on its own.

Needs: what bench.py needs. Plain Python 3.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import envinfo  # noqa: E402


def split_argv(argv):
    """(own flags, bench.py flags): the bench flags are what follows '--'."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def take_flag(args, name):
    """Removes '--name VALUE' or '--name=VALUE' from args (a list); returns
    the last value given, or None."""
    value, out, i = None, [], 0
    while i < len(args):
        a = args[i]
        if a == name and i + 1 < len(args):
            value = args[i + 1]
            i += 2
            continue
        if a.startswith(name + "="):
            value = a.split("=", 1)[1]
        else:
            out.append(a)
        i += 1
    args[:] = out
    return value


def parse_own(argv):
    workers, compare = [1, 2], None
    i = 0
    while i < len(argv):
        if argv[i] == "--workers-list" and i + 1 < len(argv):
            workers = sorted({int(w) for w in argv[i + 1].replace(",", " ").split()})
            i += 2
        elif argv[i] == "--compare" and i + 1 < len(argv):
            compare = argv[i + 1]
            i += 2
        else:
            sys.exit("usage: harness/scaling.py [--workers-list '1 2'] [-- bench.py flags]\n"
                     "       harness/scaling.py --compare DIR")
    if not workers or workers[0] < 1:
        sys.exit("scaling: worker counts must be 1 or more")
    return workers, compare


def runs_in(base):
    """[(workers, results document)] of the runs under base, by count."""
    out = []
    for entry in sorted(os.listdir(base)):
        path = os.path.join(base, entry, "results.json")
        if entry.startswith("workers-") and os.path.exists(path):
            with open(path) as f:
                out.append((int(entry[len("workers-"):]), json.load(f)))
    return sorted(out, key=lambda x: x[0])


def comparison(runs):
    """Header and rows: one row per server x workload x parameter present in
    any run, with requests/s, ratio to the first count, CPU us/req, CPU use."""
    counts = [n for n, _ in runs]
    idx = [{(a["backend"], a["workload"], a["param"]): a for a in doc["aggregates"]
            if a["tool"] == "wrk"} for _, doc in runs]
    keys = sorted({k for i in idx for k in i}, key=lambda k: (k[1], k[2], k[0]))
    header = ["server", "workload", "param"]
    header += ["req/s w=%d" % n for n in counts]
    header += ["x w=%d" % n for n in counts[1:]]
    header += ["CPU us/req w=%d" % n for n in counts]
    header += ["server CPU w=%d" % n for n in counts]
    header.append("flags")
    rows = []
    for key in keys:
        aggs = [i.get(key) for i in idx]
        first = next(a for a in aggs if a)
        rps = [a["rps"]["median"] if a else None for a in aggs]
        row = [first["label"], key[1], key[2]]
        row += [fmt(v, "{:,.0f}") for v in rps]
        row += [fmt(v / rps[0] if v and rps[0] else None, "{:.2f}") for v in rps[1:]]
        for a in aggs:
            cpu = (a or {}).get("server_cpu") or {}
            u, s = cpu.get("user_us_per_req"), cpu.get("sys_us_per_req")
            row.append(fmt(u + s if u is not None and s is not None else None, "{:.1f}"))
        for a in aggs:
            util = ((a or {}).get("server_cpu") or {}).get("util")
            row.append(fmt(util * 100 if util is not None else None, "{:.0f}%"))
        flags = sorted({"w=%d: %s" % (n, f) for n, a in zip(counts, aggs) if a
                        for f in a["flags"] if f in ("client-bound", "errors", "failed")})
        row.append(", ".join(flags))
        rows.append(row)
    return header, rows


def fmt(v, pattern):
    return "-" if v is None else pattern.format(v)


def write_report(base, runs):
    import report
    header, rows = comparison(runs)
    env = runs[0][1].get("env", {})
    pin = env.get("pinning", {})
    shared = pin.get("server_cpus") and pin.get("server_cpus") == pin.get("client_cpus")
    lines = ["# Scaling with --workers: %s" % os.path.basename(os.path.abspath(base)), "",
             "**Machine and method:** " + envinfo.caption(env), "",
             "One complete run per worker count (%s), every other setting the same: "
             "`workers-<N>/` holds each run's charts and report. nginx runs N worker "
             "processes (with reuseport listeners), h2o N threads; the floor is left out "
             "(it has one loop). `x w=N` is requests/s at N workers over requests/s at "
             "%d; server CPU is a share of the server CPUs (%s)." % (
                 ", ".join(str(n) for n, _ in runs), runs[0][0], pin.get("server_cpus")), ""]
    if shared:
        lines += ["**Server and client share CPUs %s:** the load generator takes CPU the "
                  "workers would use, so a ratio near 1 here does not say the server cannot "
                  "scale; see docs/scaling.md." % pin.get("server_cpus"), ""]
    lines += [report.md_table(header, rows), ""]
    with open(os.path.join(base, "README.md"), "w") as f:
        f.write("\n".join(lines))
    print(report.text_table(header, rows))
    print("\nscaling: table in %s" % os.path.relpath(os.path.join(base, "README.md")))


def main(argv):
    own, bench_args = split_argv(argv)
    workers, compare = parse_own(own)
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    if compare:
        runs = runs_in(compare)
        if not runs:
            sys.exit("scaling: no workers-<N>/results.json under %s" % compare)
        write_report(compare, runs)
        return 0
    base = take_flag(bench_args, "--out")
    take_flag(bench_args, "--workers")  # each run sets its own
    base = os.path.abspath(base) if base else os.path.join(
        REPO, "results", envinfo.run_name() + "-scaling")
    os.makedirs(base, exist_ok=True)
    for n in workers:
        print("scaling: --workers %d" % n, flush=True)
        argv_n = [sys.executable, os.path.join(HERE, "bench.py")] + bench_args + [
            "--workers", str(n), "--out", os.path.join(base, "workers-%d" % n)]
        rc = subprocess.call(argv_n)
        if rc != 0:
            print("scaling: the run with %d workers ended with code %d" % (n, rc))
            if rc == 130:
                break
    runs = runs_in(base)
    if runs:
        write_report(base, runs)
    return 0 if len(runs) == len(workers) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
