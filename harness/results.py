"""results.py - the results of a run: rows, aggregates, results.json/.csv.

What it is for: one row per backend x workload x parameter x trial, written
to disk after every point (an interrupted run keeps its rows), and at the
end one aggregate per backend x workload x parameter: the median of the
trials and their spread (min, max). A point with errors in any trial, or
whose load generator was saturated, carries a flag that the charts and the
report show; nothing flagged is plotted as if it were clean.
Plain Python 3 stdlib.
"""

import csv
import json
import os
import statistics

SCHEMA = 1

# The CSV has one column per scalar of a row, in this order.
CSV_COLUMNS = (
    "backend", "label", "kind", "workload", "param", "conns", "tool", "trial", "duration_s",
    "requests", "rps", "lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_p99_9_us", "lat_max_us",
    "server_user_us_per_req", "server_sys_us_per_req", "server_cpu_util",
    "server_other_util", "client_cpu_util",
    "client_bound", "server_rss_kb", "server_hwm_kb", "bytes_per_conn", "err_connect",
    "err_read", "err_write", "err_timeout", "err_status", "flags",
)


def csv_row(row):
    """Flattens one result row for the CSV."""
    lat = row.get("latency_us") or {}
    cpu = row.get("server_cpu") or {}
    cli = row.get("client_cpu") or {}
    mem = row.get("server_mem") or {}
    err = row.get("errors") or {}
    out = {k: row.get(k) for k in ("backend", "label", "kind", "workload", "param", "conns",
                                   "tool", "trial", "duration_s", "requests", "rps")}
    out.update({
        "lat_p50_us": lat.get("p50"), "lat_p90_us": lat.get("p90"),
        "lat_p99_us": lat.get("p99"), "lat_p99_9_us": lat.get("p99_9"),
        "lat_max_us": lat.get("max"),
        "server_user_us_per_req": cpu.get("user_us_per_req"),
        "server_sys_us_per_req": cpu.get("sys_us_per_req"), "server_cpu_util": cpu.get("util"),
        "server_other_util": cpu.get("other_util"),
        "client_cpu_util": cli.get("util"), "client_bound": cli.get("bound"),
        "server_rss_kb": mem.get("rss_kb"), "server_hwm_kb": mem.get("hwm_kb"),
        "bytes_per_conn": mem.get("bytes_per_conn"),
        "err_connect": err.get("connect"), "err_read": err.get("read"),
        "err_write": err.get("write"), "err_timeout": err.get("timeout"),
        "err_status": err.get("status"), "flags": " ".join(row.get("flags", [])),
    })
    return out


def error_count(errors):
    return sum(v for v in (errors or {}).values() if isinstance(v, (int, float)))


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(rows):
    """Groups trial rows by (backend, workload, param, tool) and returns one
    dict per group: medians, min/max spread, and the union of flags."""
    groups = {}
    for r in rows:
        groups.setdefault((r["backend"], r["workload"], r["param"], r["tool"]), []).append(r)
    out = []
    for (backend, workload, param, tool), trials in groups.items():
        first = trials[0]
        rps = [t["rps"] for t in trials if t.get("rps") is not None]
        agg = {
            "backend": backend, "label": first["label"], "kind": first["kind"],
            "workload": workload, "param": param, "conns": first.get("conns"), "tool": tool,
            "trials": len(trials),
            "rps": {"median": _median(rps), "min": min(rps) if rps else None,
                    "max": max(rps) if rps else None,
                    "stdev": statistics.stdev(rps) if len(rps) > 1 else 0.0},
            "latency_us": {},
            "server_cpu": {},
            "client_cpu": {"util": _median((t.get("client_cpu") or {}).get("util")
                                           for t in trials),
                           "bound": sum(bool((t.get("client_cpu") or {}).get("bound"))
                                        for t in trials) * 2 > len(trials)},
            "server_mem": {},
            "errors": {},
            "flags": sorted({f for t in trials for f in t.get("flags", [])}),
        }
        for key in ("p50", "p75", "p90", "p99", "p99_9", "max", "mean"):
            agg["latency_us"][key] = _median((t.get("latency_us") or {}).get(key)
                                             for t in trials)
        for key in ("user_us_per_req", "sys_us_per_req", "util", "other_util"):
            agg["server_cpu"][key] = _median((t.get("server_cpu") or {}).get(key)
                                             for t in trials)
        for key in ("rss_kb", "hwm_kb", "rss_before_kb", "bytes_per_conn", "warm_requests"):
            vals = [(t.get("server_mem") or {}).get(key) for t in trials]
            agg["server_mem"][key] = _median(vals)
        for t in trials:
            for k, v in (t.get("errors") or {}).items():
                agg["errors"][k] = agg["errors"].get(k, 0) + (v or 0)
        agg["ok"] = "errors" not in agg["flags"] and "failed" not in agg["flags"]
        out.append(agg)
    return out


class Results:
    """The run's document, rewritten to disk after every point."""

    def __init__(self, out):
        self.out = out
        self.rows = []
        self.skipped = []
        self.verification = {}
        self.env = {}
        self.aggregates = []
        self.complete = False
        self.elapsed_s = None

    def skip(self, spec, reason):
        """Records a server that is not measured, and why."""
        self.skipped.append({"backend": spec["name"], "label": spec.get("label", spec["name"]),
                             "kind": spec.get("kind"), "reason": reason})
        self.write()

    def add(self, rows):
        self.rows.extend(rows)
        self.aggregates = aggregate(self.rows)
        self.write()

    def finish(self, complete, elapsed_s):
        self.complete, self.elapsed_s = complete, elapsed_s
        self.aggregates = aggregate(self.rows)
        self.write()

    def document(self):
        return {"schema": SCHEMA, "complete": self.complete, "elapsed_s": self.elapsed_s,
                "env": self.env, "skipped": self.skipped, "verification": self.verification,
                "rows": self.rows, "aggregates": self.aggregates}

    def write(self):
        """Writes results.json and results.csv atomically (rename), so a
        Ctrl-C in the middle of a write never leaves a torn file."""
        path = os.path.join(self.out, "results.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.document(), f, indent=1)
        os.replace(path + ".tmp", path)
        path = os.path.join(self.out, "results.csv")
        with open(path + ".tmp", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            for r in self.rows:
                w.writerow(csv_row(r))
        os.replace(path + ".tmp", path)


def load(run_dir):
    """Reads a run folder's results.json."""
    with open(os.path.join(run_dir, "results.json")) as f:
        return json.load(f)
