#!/usr/bin/env python3
"""report.py - the Markdown report (README.md) of a results folder, and the
summary table bench.py prints at the end of a run.

Usage: scripts/report.py results/<run>      (writes results/<run>/README.md)

What it is for: a person should be able to open the run folder on GitHub
and read it: machine and method first, the performance targets (each a ratio
measured in this run: met, not met or not measured, harness/targets.py),
what was skipped and why, a summary table, then every chart with the numbers
behind it. Runs on plain Python 3
(no matplotlib); the charts come from scripts/plot.py.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

import envinfo  # noqa: E402
import targets  # noqa: E402
import workloads as wl  # noqa: E402

# The charts plot.py draws, in report order: (file stem, title, workload).
CHARTS = (
    ("throughput_vs_conns", "Plaintext throughput against connections", "plaintext"),
    ("latency", "Latency percentiles (plaintext)", "plaintext"),
    ("cpu_per_request", "Server CPU time per request (plaintext)", "plaintext"),
    ("workloads", "Pipelined, JSON and connection churn", None),
    ("static_sizes", "Static files by size", "static"),
    ("idle_scaling", "Throughput with idle connections open", "idle"),
    ("delay", "Slow handlers: /delay/10", "delay"),
    ("memory_per_conn", "Memory per idle connection", "memory"),
)


def fmt(v, digits=0, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float) and digits == 0 and abs(v) >= 1e6:
        return "%.2fM%s" % (v / 1e6, unit)
    return ("{:,.%df}" % digits).format(v) + unit


def plural(n, word):
    return "%s %s%s" % (fmt(n), word, "" if n == 1 else "s")


def fmt_us(v):
    if v is None:
        return "-"
    return "%.0f us" % v if v < 1000 else "%.2f ms" % (v / 1000)


def by_key(doc):
    """{(backend, workload, param, tool): aggregate}."""
    return {(a["backend"], a["workload"], a["param"], a["tool"]): a for a in doc["aggregates"]}


def backends_in(doc):
    """[(name, label, kind)] in a stable order: native, emulated, Wine, refs."""
    order = {"native": 0, "emulated": 1, "wine": 2, "reference": 3}
    seen = {}
    for a in doc["aggregates"]:
        seen.setdefault(a["backend"], (a["label"], a["kind"]))
    return sorted(((n, l, k) for n, (l, k) in seen.items()),
                  key=lambda x: (order.get(x[2], 9), x[0]))


def pick_conns(doc):
    """The plaintext connection count the single-number columns use: the
    largest measured up to 256 (a typical busy server), else the smallest."""
    ps = sorted({a["param"] for a in doc["aggregates"] if a["workload"] == "plaintext"})
    low = [p for p in ps if p <= 256]
    return low[-1] if low else (ps[0] if ps else None)


def cell(agg, what="rps"):
    if agg is None:
        return "-"
    if what == "rps":
        v = agg["rps"]["median"]
        text = fmt(v)
    else:
        v = agg["server_mem"].get("bytes_per_conn")
        text = fmt(v, 0, " B")
    marks = []
    if "errors" in agg["flags"] or "failed" in agg["flags"]:
        marks.append("ERR")
    if agg["client_cpu"].get("bound"):
        marks.append("cb")
    return text + (" (" + ",".join(marks) + ")" if marks else "")


def summary_rows(doc):
    """The summary: one row per server, one column per headline number."""
    idx = by_key(doc)
    c = pick_conns(doc)

    def pick(workload):
        ps = sorted({a["param"] for a in doc["aggregates"] if a["workload"] == workload})
        return (ps[-1] if workload in ("idle", "memory") else ps[0]) if ps else None

    def first(workload, tool=None, param=None):
        param = pick(workload) if param is None else param
        tool = tool or wl.load_tool(workload)
        return lambda b: idx.get((b, workload, param, tool))

    cols = [
        ("plaintext c=%s" % c, lambda b: idx.get((b, "plaintext", c, "wrk")), "rps"),
        ("pipelined x16", first("pipeline"), "rps"),
        ("json", first("json"), "rps"),
        ("static 64k", first("static", param=65536), "rps"),
        ("churn (wrk)", first("churn"), "rps"),
        ("churn (hyperfine)", first("churn", "hyperfine"), "rps"),
        ("idle %s + 64 busy" % pick("idle"), first("idle"), "rps"),
        ("delay c=%s" % pick("delay"), first("delay"), "rps"),
        ("B/conn at %s" % pick("memory"), first("memory", "rss"), "mem"),
    ]
    header = ["server"] + [name for name, _, _ in cols]
    rows = []
    for name, label, kind in backends_in(doc):
        rows.append([label] + [cell(get(name), what) for _, get, what in cols])
    return header, rows


def text_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).rjust(w) if i else str(x).ljust(w)  # noqa: E731
                               for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


TARGETS_HEADER = ["target", "point", "figures (medians)", "ratio", "goal", "result", "flags",
                  "trials"]


def target_rows(doc):
    """The Targets table: one row per target and point."""
    return [[t["target"], t["point"], t["figures"], targets.ratio_text(t), t["goal"],
             t["status"], t["flags"], targets.noise_text(t)] for t in targets.evaluate(doc)]


def targets_counts_text(doc):
    c = targets.counts(targets.evaluate(doc))
    return ("%d met, %d not met, %d not measured; %d of the measured rows carry a caveat "
            "flag; the trials leave %d of the met and %d of the not met within noise"
            % (c[targets.MET], c[targets.NOT_MET], c[targets.MISSING], c["flagged"],
               c[targets.MET + " within noise"], c[targets.NOT_MET + " within noise"]))


def smallest_p_text(doc):
    """How far this run's trials can settle a row: the smallest p with the
    most trials a point has here, and that 3 trials never can."""
    n = max((a["trials"] for a in doc["aggregates"]), default=0)
    three = "3 trials a side never settle a row (the smallest p is 0.1)."
    if n <= 3:
        return three
    p = ("%.6f" % float("%.1g" % targets.smallest_p(n))).rstrip("0")
    return "With %d trials a side the smallest p is %s; %s" % (n, p, three)


def floor_context_text(doc):
    """A line under the Targets table: the floor against nginx at target 3's
    points, or '' when the run has neither."""
    got = [r for r in targets.floor_context(doc) if r["ratio"] is not None]
    if not got:
        return ""
    points = "; ".join("%s %s, %s" % (r["point"].split(", ")[1], targets.ratio_text(r),
                                       targets.noise_text(r)) for r in got)
    return ("Target 3 beside the floor: the floor's requests/s against nginx's, plaintext, "
            "%s. The floor does the kernel's work and nothing else: where even it falls "
            "short of nginx, a throughput row measures the load generator (see its flags), "
            "and the CPU per request rows (target 1) are the measure of the server."
            % points)


def targets_markdown(doc):
    rows = target_rows(doc)
    context = floor_context_text(doc)
    for r in rows:
        r[5] = "**%s**" % r[5] if r[5] != targets.MISSING else r[5]
    return ["## Targets", "",
            "The project's performance targets, each checked as a ratio of medians "
            "measured in this run (at least %d trials each; fewer is flagged). A point this "
            "run did not measure says *not measured*. Flags are caveats on the figures: "
            "`client-bound` (the load generator was saturated, so the server may be "
            "faster than its figure), `cpu-contended` (something else used the server's "
            "CPUs during a trial), `errors`/`failed` (not comparable), `emulated`, "
            "`idle-closed`. Memory per connection is one reading per point: (RSS with "
            "the idle connections - RSS after a warm burst of %d requests) / connections. "
            "*trials* says whether the trials themselves settle the result: an exact "
            "two-sided Mann-Whitney test of one server's trials against the other's "
            "scaled by the goal. *settled* (p < %.2f): every ordering of the trials this "
            "lopsided is rare by chance; *within noise*: the two servers' trials mix, and "
            "another run could turn the result. %s The trials run in rounds, "
            "one of each server in turn, the first moving on by one each round, so slow "
            "drift falls on both servers' trials alike; a change within a round (a few "
            "seconds) can still favour one of them. Target 4's two sides, with and without "
            "the idle connections, take turns in one server process, trial by trial."
            % (targets.MIN_TRIALS, wl.WARM_REQUESTS, targets.SETTLED_P, smallest_p_text(doc)),
            "",
            targets_counts_text(doc) + ".", "", md_table(TARGETS_HEADER, rows), ""] + (
                [context, ""] if context else [])


def summary_text(doc):
    """The table bench.py prints at the end (requests/s, median of trials),
    then the targets: their counts and every one not met."""
    header, rows = summary_rows(doc)
    out = ["Summary: requests/s, median of trials (ERR: errors, cb: client-bound)",
           text_table(header, rows), "",
           "Targets: " + targets_counts_text(doc) + " (README.md, Targets)"]
    for r in target_rows(doc):
        if r[5] == targets.NOT_MET:
            out.append("  not met: %s, %s: %s (%s%s; trials: %s)" % (
                r[0], r[1], r[3], r[4], "; " + r[6] if r[6] else "", r[7]))
    for s in doc["skipped"]:
        out.append("skipped: %s: %s" % (s["label"], s["reason"]))
    return "\n".join(out)


def detail_table(doc, workload):
    """Every aggregate of one workload, as Markdown."""
    aggs = [a for a in doc["aggregates"] if a["workload"] == workload]
    order = {n: i for i, (n, _, _) in enumerate(backends_in(doc))}
    aggs.sort(key=lambda a: (a["tool"], a["param"], order.get(a["backend"], 99)))
    pname = wl.WORKLOADS[workload]["param"]
    if workload == "memory":
        # Runs before the warm burst took their baseline after one request.
        header = ["server", "idle conns", "baseline after", "RSS baseline", "RSS with idle",
                  "bytes/conn", "flags"]
        rows = [[a["label"], a["param"],
                 plural(a["server_mem"].get("warm_requests") or 1, "request"),
                 fmt(a["server_mem"]["rss_before_kb"], 0, " kB"),
                 fmt(a["server_mem"]["rss_kb"], 0, " kB"),
                 fmt(a["server_mem"]["bytes_per_conn"], 0), " ".join(a["flags"])]
                for a in aggs]
        return md_table(header, rows)
    header = ["server", "tool", pname, "req/s (median)", "min..max", "p50", "p99", "p99.9",
              "max", "CPU us/req user+sys", "server CPU", "client CPU", "flags"]
    rows = []
    for a in aggs:
        cpu = a["server_cpu"]
        lat = a["latency_us"]
        us = ("%.1f + %.1f" % (cpu["user_us_per_req"], cpu["sys_us_per_req"])
              if cpu.get("user_us_per_req") is not None else "-")
        rows.append([a["label"], a["tool"], a["param"], fmt(a["rps"]["median"]),
                     "%s..%s" % (fmt(a["rps"]["min"]), fmt(a["rps"]["max"])),
                     fmt_us(lat.get("p50")), fmt_us(lat.get("p99")), fmt_us(lat.get("p99_9")),
                     fmt_us(lat.get("max")), us,
                     fmt((cpu.get("util") or 0) * 100, 0, "%") if cpu.get("util") else "-",
                     fmt((a["client_cpu"].get("util") or 0) * 100, 0, "%"),
                     " ".join(a["flags"])])
    return md_table(header, rows)


def markdown(doc, run_dir):
    env = doc.get("env", {})
    lines = ["# Benchmark run %s" % os.path.basename(os.path.abspath(run_dir)), "",
             "**Machine and method:** " + envinfo.caption(env), ""]
    if not doc.get("complete"):
        lines += ["**This run was interrupted: the results below are partial.**", ""]
    lines += ["Every number is the median of the trials; min..max is the spread. "
              "Flags: `errors` (socket errors, timeouts or non-2xx answers in a trial: "
              "the number is not comparable), `client-bound` (the load generator used "
              "over 90% of its CPU: the server may be faster than shown), `cpu-contended` "
              "(something other than the server used 5% or more of the server's CPUs, "
              "and 50 ms or more, during a trial: it had less than a whole core), `emulated`, "
              "`under-wine` (never ranked against native backends), `idle-closed` (the "
              "server closed idle connections during the measurement). See "
              "[harness/README.md](../../harness/README.md) for the method.", ""]
    lines += targets_markdown(doc)
    header, rows = summary_rows(doc)
    lines += ["## Summary (requests/s)", "", md_table(header, rows), ""]
    if doc["skipped"]:
        lines += ["## Not measured", ""]
        lines += ["- **%s**: %s" % (s["label"], s["reason"]) for s in doc["skipped"]]
        lines.append("")
    notes = env.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + ["- " + n for n in notes] + [""]
    present = {a["workload"] for a in doc["aggregates"]}
    for stem, title, workload in CHARTS:
        if not os.path.exists(os.path.join(run_dir, stem + ".png")):
            continue
        lines += ["## " + title, "", "![%s](%s.png)" % (title, stem),
                  "", "[SVG](%s.svg)" % stem, ""]
        shown = [workload] if workload else ["pipeline", "json", "churn"]
        for w in shown:
            if w in present and (workload != "plaintext" or stem == "throughput_vs_conns"):
                lines += ["**%s** -- %s" % (w, wl.WORKLOADS[w]["doc"]), "",
                          detail_table(doc, w), ""]
    lines += ["## Files", "", "`results.json` (every trial and the aggregates), "
              "`results.csv` (the trials, flat), `env.json` (machine, tools, settings), "
              "`raw/` (each tool's own output), `reference/` (the nginx and h2o "
              "configurations used), `logs/` (server output).", ""]
    return "\n".join(lines)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: scripts/report.py results/<run folder>")
    run_dir = argv[1]
    with open(os.path.join(run_dir, "results.json")) as f:
        doc = json.load(f)
    with open(os.path.join(run_dir, "README.md"), "w") as f:
        f.write(markdown(doc, run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
