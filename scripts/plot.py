#!/usr/bin/env python3
"""plot.py - draw the charts of a benchmark run (PNG and SVG).

Usage: $(scripts/find-python.sh) scripts/plot.py results/<run>

What it is for: turning results.json into pictures a person would rather
look at than read. Every chart uses one colour per server (the same in all
charts), draws the reference servers (floor, nginx, h2o) dashed or grey, marks
any point with errors in red and any client-bound point hollow, and carries
the machine and method in its caption, so it can be read on its own.

Needs: Python 3 with matplotlib (Debian: python3-matplotlib). The runner and
the report do not; only this script does.
"""

import json
import os
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

import envinfo  # noqa: E402
import workloads as wl  # noqa: E402

# One colour per server, fixed, so a backend looks the same in every chart
# and in every run. References are greys and black.
COLOURS = {
    "threads": "#d62728", "poll": "#ff7f0e", "select": "#bcbd22", "epoll": "#1f77b4",
    "io_uring": "#2ca02c", "kqueue": "#9467bd", "wepoll": "#17becf", "iocp": "#e377c2",
    "floor": "#000000", "nginx": "#7f7f7f", "h2o": "#8c564b",
}
SPARE = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"]
KIND_ORDER = {"native": 0, "emulated": 1, "wine": 2, "reference": 3}
ERROR_RED = "#e00000"


def colour(name):
    base = name[:-len("-wine")] if name.endswith("-wine") else name
    if base in COLOURS:
        return COLOURS[base]
    return SPARE[sum(map(ord, base)) % len(SPARE)]


def style(agg):
    """Line style of a server: references dashed, Wine dotted."""
    return {"reference": "--", "wine": ":"}.get(agg["kind"], "-")


def si(v, _pos=None):
    for div, suf in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return ("%.1f" % (v / div)).rstrip("0").rstrip(".") + suf
    return "%.0f" % v if abs(v) >= 10 or v == 0 else "%.2g" % v


def flagged(agg):
    return "errors" in agg["flags"] or "failed" in agg["flags"]


class Run:
    """results.json of one run, with the lookups the charts need."""

    def __init__(self, run_dir):
        with open(os.path.join(run_dir, "results.json")) as f:
            self.doc = json.load(f)
        self.dir = run_dir
        self.aggs = self.doc["aggregates"]
        self.caption = envinfo.caption(self.doc.get("env", {}))

    def servers(self, workload, tool=None):
        """[(name, label, kind)] that have this workload, natives first. The
        tool defaults to the workload's own load generator (wl.load_tool)."""
        tool = tool or wl.load_tool(workload)
        seen = {}
        for a in self.aggs:
            if a["workload"] == workload and a["tool"] == tool:
                seen[a["backend"]] = (a["label"], a["kind"])
        return sorted(((n, lk[0], lk[1]) for n, lk in seen.items()),
                      key=lambda x: (KIND_ORDER.get(x[2], 9), x[0]))

    def series(self, backend, workload, tool=None):
        tool = tool or wl.load_tool(workload)
        return sorted((a for a in self.aggs if a["backend"] == backend and
                       a["workload"] == workload and a["tool"] == tool),
                      key=lambda a: a["param"])

    def get(self, backend, workload, param, tool=None):
        tool = tool or wl.load_tool(workload)
        for a in self.aggs:
            if (a["backend"], a["workload"], a["param"], a["tool"]) == (backend, workload,
                                                                      param, tool):
                return a
        return None

    def params(self, workload, tool=None):
        tool = tool or wl.load_tool(workload)
        return sorted({a["param"] for a in self.aggs if a["workload"] == workload and
                       a["tool"] == tool})

    def footnotes(self, workload):
        """Why servers are missing from a chart, and what the marks mean."""
        notes = ["Dashed: reference servers (floor = no HTTP parsing, the kernel's cost "
                 "alone). Red x or hatched red: errors in a trial (not comparable). Hollow "
                 "marker or dotted bar: client-bound (the load generator saturated; the "
                 "server may be faster)."]
        if any(a["kind"] == "wine" for a in self.aggs):
            notes.append("'under Wine': functional numbers only, never ranked with native "
                         "backends.")
        for s in self.doc.get("skipped", []):
            notes.append("Not measured: %s: %s." % (s["label"], s["reason"]))
        notes += ["Note: %s." % n for n in self.doc.get("env", {}).get("notes", [])]
        refs_without = [lbl for n, lbl in (("floor", "floor"), ("nginx", "nginx"),
                                           ("h2o", "h2o"))
                        if n not in wl.REFERENCE_WORKLOADS or
                        workload not in wl.REFERENCE_WORKLOADS[n]]
        if workload and refs_without and workload in wl.WORKLOADS:
            notes.append("%s cannot serve this workload." % ", ".join(refs_without))
        failures = {}
        for r in self.doc.get("rows", []):
            related = (workload, "idle") if workload == "memory" else (workload,)
            if r.get("error") and (workload is None or r["workload"] in related):
                failures.setdefault((r["label"], r["workload"], r["param"]), r["error"])
        for (label, w, param), err in sorted(failures.items(), key=str)[:6]:
            notes.append("Failed: %s on %s (%s=%s): %s." % (
                label, w, wl.WORKLOADS[w]["param"], param, " ".join(err.split())[:110]))
        if not self.doc.get("complete"):
            notes.append("PARTIAL RUN (interrupted).")
        return notes


def outside_legend(fig, ax):
    """The legend to the right of the plot, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.80, 0.90), fontsize=9,
               frameon=False)


def finish(fig, run, stem, workload, title, right=1.0):
    """Title, caption (machine, method, footnotes), then PNG and SVG."""
    fig.suptitle(title, fontsize=13, fontweight="bold", x=0.01, ha="left")
    text = "\n".join(textwrap.fill(t, 170) for t in [run.caption] + run.footnotes(workload))
    lines = text.count("\n") + 1
    bottom = 0.035 + 0.026 * lines * 6.5 / fig.get_figheight()
    fig.text(0.01, 0.01, text, fontsize=7, color="#444444", va="bottom", ha="left")
    fig.tight_layout(rect=(0, bottom, right, 0.95))
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(run.dir, "%s.%s" % (stem, ext)), dpi=110)
    plt.close(fig)


def mark_points(ax, xs, aggs, value, c):
    """Draws the red x of error points and hollow client-bound markers."""
    for x, a in zip(xs, aggs):
        y = value(a)
        if y is None:
            continue
        if flagged(a):
            ax.plot([x], [y], "x", color=ERROR_RED, markersize=11, mew=2.5, zorder=5)
        elif a["client_cpu"].get("bound"):
            ax.plot([x], [y], "o", mfc="white", mec=c, markersize=8, mew=1.5, zorder=5)


def line_chart(ax, run, workload, value, err=None, skip_kinds=()):
    """One line per server over the workload's parameter. A point that
    failed outright (no number) is a red x on the axis."""
    for name, label, kind in run.servers(workload):
        if kind in skip_kinds:
            continue
        lost = [a["param"] for a in run.series(name, workload) if value(a) is None]
        if lost:
            ax.plot(lost, [0] * len(lost), "x", color=ERROR_RED, markersize=11, mew=2.5,
                    clip_on=False, zorder=6)
        every = [a for a in run.series(name, workload) if value(a) is not None]
        # The line joins clean points only; a flagged one is its red x alone.
        aggs = [a for a in every if not flagged(a)]
        c = colour(name)
        if not aggs:
            ax.plot([], [], color=c, ls=style(every[0]) if every else "-",
                    label=label + " (errors only)")
            mark_points(ax, [a["param"] for a in every], every, value, c)
            continue
        xs = [a["param"] for a in aggs]
        ys = [value(a) for a in aggs]
        if err:
            lo = [max(0, y - err(a)[0]) for y, a in zip(ys, aggs)]
            hi = [max(0, err(a)[1] - y) for y, a in zip(ys, aggs)]
            ax.errorbar(xs, ys, yerr=[lo, hi], color=c, ls=style(aggs[0]), marker="o",
                        markersize=4, capsize=3, lw=2 if kind != "reference" else 1.4,
                        label=label)
        else:
            ax.plot(xs, ys, color=c, ls=style(aggs[0]), marker="o", markersize=4,
                    lw=2 if kind != "reference" else 1.4, label=label)
        xs, aggs = [a["param"] for a in every], every
        mark_points(ax, xs, aggs, value, c)


def rps(a):
    return a["rps"]["median"]


def rps_spread(a):
    return a["rps"]["min"], a["rps"]["max"]


def chart_throughput(run):
    if not run.params("plaintext"):
        return
    fig, ax = plt.subplots(figsize=(11, 6.5))
    line_chart(ax, run, "plaintext", rps, rps_spread)
    ax.set_xscale("log")
    ax.set_xlabel("keep-alive connections (log scale)")
    ax.set_ylabel("requests per second (median, bars: min..max of trials)")
    ax.yaxis.set_major_formatter(FuncFormatter(si))
    ax.set_xticks(run.params("plaintext"))
    ax.xaxis.set_major_formatter(FuncFormatter(si))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    outside_legend(fig, ax)
    finish(fig, run, "throughput_vs_conns", "plaintext",
           "GET /plaintext: throughput against connections (higher is better)", right=0.80)


def pick_conns(run):
    ps = run.params("plaintext")
    low = [p for p in ps if p <= 256]
    return low[-1] if low else (ps[0] if ps else None)


PCTS = (("p50", "50%"), ("p90", "90%"), ("p99", "99%"), ("p99_9", "99.9%"), ("max", "max"))


def chart_latency(run):
    ps = run.params("plaintext")
    if not ps:
        return
    panels = sorted({pick_conns(run), ps[-1]})
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels) + 1, 6), squeeze=False)
    for ax, conns in zip(axes[0], panels):
        for name, label, kind in run.servers("plaintext"):
            a = run.get(name, "plaintext", conns)
            if a is None:
                continue
            pts = [(i, a["latency_us"].get(k)) for i, (k, _) in enumerate(PCTS)
                   if a["latency_us"].get(k)]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ys = [y / 1000.0 for y in ys]
            c = colour(name)
            ax.plot(xs, ys, color=c, ls=style(a), marker="o", markersize=5,
                    lw=2 if kind != "reference" else 1.4, label=label)
            if flagged(a):
                ax.plot(xs, ys, "x", color=ERROR_RED, markersize=10, mew=2)
        ax.set_yscale("log")
        ax.set_xticks(range(len(PCTS)))
        ax.set_xticklabels([p for _, p in PCTS])
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency, ms (log scale; lower is better)")
        ax.set_title("%s connections" % si(conns), fontsize=11)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: "%g" % v))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    outside_legend(fig, axes[0][-1])
    finish(fig, run, "latency", "plaintext",
           "GET /plaintext: latency percentiles per server (wrk, median of trials)", right=0.80)


def ordered_bars(run, workload, param, tool=None, value=rps, higher_better=True):
    """[(name, label, kind, agg)] for a bar chart: natives ranked by value,
    best first, then emulated, then Wine (never ranked with natives), then
    references."""
    out = []
    for name, label, kind in run.servers(workload, tool):
        a = run.get(name, workload, param, tool)
        if a is not None and value(a) is not None:
            out.append((name, label, kind, a))
    sign = -1 if higher_better else 1
    return sorted(out, key=lambda t: (KIND_ORDER.get(t[2], 9), sign * (value(t[3]) or 0)))


def separate_kinds(ax, bars, ys):
    """A thin rule between natives, emulated, Wine and references: ranks
    only hold within a group."""
    for i in range(1, len(bars)):
        if bars[i][2] != bars[i - 1][2]:
            ax.axhline((ys[i] + ys[i - 1]) / 2.0, color="#999999", lw=0.8, ls=":")


def bar_panel(ax, bars, value, err=None, unit_fmt=si, ideal=None):
    """Horizontal bars, one per server, best native at the top."""
    ys = list(range(len(bars)))[::-1]
    right = ideal or 0
    for y, (name, label, kind, a) in zip(ys, bars):
        v = value(a)
        end = v
        bad, cb = flagged(a), a["client_cpu"].get("bound")
        ax.barh(y, v, color=colour(name), alpha=0.55 if kind == "reference" else 0.9,
                hatch="xx" if bad else (".." if cb else None),
                edgecolor=ERROR_RED if bad else "white", lw=1.5 if bad else 0.5)
        if err:
            lo, hi = err(a)
            if lo is not None:
                ax.errorbar(v, y, xerr=[[max(0, v - lo)], [max(0, hi - v)]], color="black",
                            capsize=3, lw=1)
                end = max(v, hi)
        note = unit_fmt(v) + ("  ERRORS" if bad else "") + ("  client-bound" if cb else "")
        ax.text(end, y, "  " + note, va="center", fontsize=8,
                color=ERROR_RED if bad else "black")
        right = max(right, end * (1.6 if bad or cb else 1.3))
    separate_kinds(ax, bars, ys)
    ax.set_yticks(ys)
    ax.set_yticklabels([b[1] for b in bars], fontsize=9)
    ax.xaxis.set_major_formatter(FuncFormatter(si))
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlim(0, right or 1)
    if ideal:
        ax.axvline(ideal, color="black", ls="--", lw=1)
        ax.text(ideal, len(bars) - 0.5, " ideal", fontsize=8, va="bottom")


def chart_cpu(run):
    conns = pick_conns(run)
    bars = ordered_bars(run, "plaintext", conns, higher_better=False,
                        value=lambda a: None if a["server_cpu"].get("user_us_per_req") is None
                        else a["server_cpu"]["user_us_per_req"] + a["server_cpu"]["sys_us_per_req"])
    if not bars:
        return
    fig, ax = plt.subplots(figsize=(11, 1.5 + 0.55 * len(bars)))
    ys = list(range(len(bars)))[::-1]
    for y, (name, label, kind, a) in zip(ys, bars):
        u, s = a["server_cpu"]["user_us_per_req"], a["server_cpu"]["sys_us_per_req"]
        ax.barh(y, u, color=colour(name), alpha=0.95)
        ax.barh(y, s, left=u, color=colour(name), alpha=0.4, hatch="//", edgecolor="white")
        bad = flagged(a)
        ax.text(u + s, y, "  %.1f us (user %.1f + system %.1f)%s" % (
            u + s, u, s, "  ERRORS" if bad else ""), va="center", fontsize=8,
            color=ERROR_RED if bad else "black")
    separate_kinds(ax, bars, ys)
    ax.set_yticks(ys)
    ax.set_yticklabels([b[1] for b in bars], fontsize=9)
    ax.set_xlabel("server CPU microseconds per request: user (solid) + system (hatched); "
                  "lower is better")
    ax.set_xlim(0, max(b[3]["server_cpu"]["user_us_per_req"] +
                       b[3]["server_cpu"]["sys_us_per_req"] for b in bars) * 1.45)
    ax.grid(True, axis="x", alpha=0.3)
    finish(fig, run, "cpu_per_request", "plaintext",
           "GET /plaintext, %s connections: server CPU time per request "
           "(utime/stime of all threads)" % si(conns))


def chart_workloads(run):
    panels = []
    for workload, tool, title in (("pipeline", "wrk", "pipelined x%d" % wl.PIPELINE_DEPTH),
                                  ("json", "wrk", "GET /json"),
                                  ("churn", "wrk", "Connection: close (wrk)"),
                                  ("churn", "hyperfine", "Connection: close, fixed batch "
                                   "(hyperfine + ab)")):
        ps = run.params(workload, tool)
        # Pipelining at every count measured (64 is the target's point);
        # the others at their largest.
        for p in (ps if workload == "pipeline" else ps[-1:]):
            panels.append((workload, tool, p, title))
    if not panels:
        return
    n = max(len(ordered_bars(run, w, p, t)) for w, t, p, _ in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 1.2 + len(panels) * (0.9 + 0.4 * n)),
                             squeeze=False)
    for ax, (workload, tool, param, title) in zip(axes[:, 0], panels):
        bars = ordered_bars(run, workload, param, tool)
        bar_panel(ax, bars, rps, rps_spread)
        conns = bars[0][3]["conns"] if bars else param
        ax.set_title("%s, %s connections" % (title, conns), fontsize=10, loc="left")
        ax.set_xlabel("requests per second (median; bar: min..max)")
    finish(fig, run, "workloads", None,
           "Pipelining, JSON and connection churn (requests/s, higher is better)")


def chart_static(run):
    sizes = run.params("static")
    if not sizes:
        return
    n = max(len(ordered_bars(run, "static", s)) for s in sizes)
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 1.8 + 0.5 * n),
                             squeeze=False)
    for ax, size in zip(axes[0], sizes):
        bars = ordered_bars(run, "static", size)
        mib = lambda a, s=size: a["rps"]["median"] * s / 2**20  # noqa: E731
        bar_panel(ax, bars, rps, rps_spread)
        for y, b in zip(list(range(len(bars)))[::-1], bars):
            ax.text(0, y - 0.38, " %.0f MiB/s" % mib(b[3]), fontsize=7, color="#333333")
        ax.set_title("%s file" % wl.static_name(size).replace(".bin", "B").upper(),
                     fontsize=11)
        ax.set_xlabel("requests per second")
    finish(fig, run, "static_sizes", "static",
           "GET /static/<file>, %d connections (discard_client): throughput by file size"
           % wl.STATIC_CONNS)


def chart_idle(run):
    if not run.params("idle"):
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6))
    line_chart(ax1, run, "idle", rps, rps_spread)
    # Wine's CPU cost is of another order and would flatten every native line.
    line_chart(ax2, run, "idle", lambda a: (a["server_cpu"].get("user_us_per_req") or 0) +
               (a["server_cpu"].get("sys_us_per_req") or 0) or None, skip_kinds=("wine",))
    for ax in (ax1, ax2):
        ax.set_xlabel("idle keep-alive connections held open")
        ax.set_xticks(run.params("idle"))
        ax.xaxis.set_major_formatter(FuncFormatter(si))
        ax.yaxis.set_major_formatter(FuncFormatter(si))
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    ax1.set_ylabel("requests per second on %d busy connections" % wl.IDLE_ACTIVE_CONNS)
    ax1.set_title("throughput (flat is good)", fontsize=11)
    ax2.set_ylabel("server CPU us per request (user + system)")
    ax2.set_title("server CPU per request (poll/select pay for every watched fd)",
                  fontsize=11)
    outside_legend(fig, ax1)
    finish(fig, run, "idle_scaling", "idle",
           "Idle connections: %d busy connections while K others sit idle" %
           wl.IDLE_ACTIVE_CONNS, right=0.80)


def nearest(run, backend, workload, param):
    """The aggregate of backend/workload whose parameter is closest to param
    (on a log scale), or None."""
    import math
    aggs = [a for a in run.series(backend, workload) if a["rps"]["median"] is not None]
    if not aggs:
        return None
    return min(aggs, key=lambda a: abs(math.log(max(a["param"], 1)) - math.log(max(param, 1))))


def chart_delay(run):
    params = run.params("delay")
    if not params:
        return
    n = max(len(ordered_bars(run, "delay", p)) for p in params)
    fig, axes = plt.subplots(len(params), 1, figsize=(11, 1.2 + len(params) * (1 + 0.5 * n)),
                             squeeze=False)
    for ax, conns in zip(axes[:, 0], params):
        bars = ordered_bars(run, "delay", conns)
        ideal = conns * 1000.0 / wl.DELAY_MS
        bar_panel(ax, bars, rps, rps_spread, ideal=ideal)
        floor = nearest(run, "floor", "plaintext", conns)
        if floor is not None and floor["rps"]["median"]:
            # The load generator and the kernel cannot go faster than the
            # floor does on /plaintext: above that line the ideal is moot.
            ax.axvline(floor["rps"]["median"], color="black", ls=":", lw=1)
            ax.text(floor["rps"]["median"], -0.9, " floor, /plaintext at %s conns" %
                    si(floor["param"]), fontsize=7, va="center")
        for y, b in zip(list(range(len(bars)))[::-1], bars):
            p99 = b[3]["latency_us"].get("p99")
            if p99:
                ax.text(0, y - 0.38, " p99 %.1f ms" % (p99 / 1000), fontsize=7)
        ax.set_title("%s connections; ideal = connections / %d ms = %s req/s" % (
            si(conns), wl.DELAY_MS, si(ideal)), fontsize=10, loc="left")
        ax.set_xlabel("requests per second (higher is better, the ideal is the limit)")
    finish(fig, run, "delay", "delay",
           "GET /delay/%d: slow handlers under many connections" % wl.DELAY_MS)


def chart_memory(run):
    if not run.params("memory", "rss"):
        return
    fig, ax = plt.subplots(figsize=(11, 6))
    placed = []
    for name, label, kind in run.servers("memory", "rss"):
        aggs = [a for a in run.series(name, "memory", "rss")
                if a["server_mem"].get("bytes_per_conn") is not None]
        if not aggs:
            continue
        xs = [a["param"] for a in aggs]
        ys = [max(1.0, a["server_mem"]["bytes_per_conn"]) for a in aggs]
        ax.plot(xs, ys, color=colour(name), ls=style(aggs[0]), marker="o",
                lw=2 if kind != "reference" else 1.4, label=label)
        # Label the last point unless another label already sits there.
        if all(abs(ys[-1] / y - 1) > 0.25 for y in placed):
            ax.annotate(" %s B" % si(ys[-1]), (xs[-1], ys[-1]), fontsize=8,
                        color=colour(name))
            placed.append(ys[-1])
        mark_points(ax, xs, aggs, lambda a: max(1.0, a["server_mem"]["bytes_per_conn"]),
                    colour(name))
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xticks(run.params("memory", "rss"))
    ax.xaxis.set_major_formatter(FuncFormatter(si))
    ax.yaxis.set_major_formatter(FuncFormatter(si))
    ax.set_xlabel("idle keep-alive connections (log scale)")
    ax.set_ylabel("bytes per connection (log scale; lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    outside_legend(fig, ax)
    # Runs made before the warm burst took their baseline after one request.
    warm = max([a["server_mem"].get("warm_requests") or 1
                for a in run.aggs if a["workload"] == "memory"] or [1])
    ax.set_title("(server VmRSS with K idle connections - VmRSS after %s) / K; user space "
                 "only, kernel socket buffers are not in RSS" % (
                     "a warm burst of %d requests" % warm if warm > 1 else "one request"),
                 fontsize=9, loc="left")
    finish(fig, run, "memory_per_conn", "memory", "Memory per idle connection", right=0.80)


CHARTS = (chart_throughput, chart_latency, chart_cpu, chart_workloads, chart_static,
          chart_idle, chart_delay, chart_memory)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: plot.py results/<run folder>")
    run = Run(argv[1])
    plt.rcParams.update({"font.size": 10, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.fonttype": "none"})
    failed = 0
    for chart in CHARTS:
        try:
            chart(run)
        except Exception as e:  # one broken chart must not cost the others
            failed += 1
            print("plot.py: %s failed: %s: %s" % (chart.__name__, type(e).__name__, e),
                  file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
