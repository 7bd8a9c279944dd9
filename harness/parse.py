"""parse.py - read the output of wrk, discard_client and hyperfine, and /proc figures.

What it is for: the benchmark runner (bench.py) turns every tool's output
into numbers through these functions and nothing else, so they are the part
of the harness with unit tests (test_parse.py, on real captured outputs in
fixtures/). Plain Python 3 standard library; no side effects.

Units used everywhere in the results: seconds for durations, microseconds
for latencies, bytes for sizes, kB (as the kernel prints it) for memory.
"""

import json
import re

# wrk prints sizes and durations with these suffixes (units.c in wrk).
_TIME_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_SI_UNITS = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}

WRK_JSON_TAG = "WRK_JSON "


def wrk_time_us(text):
    """'1.13ms' -> 1130.0 (microseconds). Raises ValueError on bad input."""
    m = re.fullmatch(r"\s*([-+]?[0-9.]+|-?nan)(us|ms|s|m|h)\s*", text)
    if not m:
        raise ValueError("not a wrk time: %r" % text)
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def wrk_metric(text):
    """'28.19k' -> 28190.0 (wrk's SI-scaled counts)."""
    m = re.fullmatch(r"\s*([-+]?[0-9.]+)([kMGT]?)\s*", text)
    if not m:
        raise ValueError("not a wrk metric: %r" % text)
    return float(m.group(1)) * _SI_UNITS[m.group(2)]


def wrk_bytes(text):
    """'2.53MB' -> bytes (wrk uses powers of 1024)."""
    m = re.fullmatch(r"\s*([0-9.]+)(B|KB|MB|GB|TB)\s*", text)
    if not m:
        raise ValueError("not a wrk size: %r" % text)
    return float(m.group(1)) * _BYTE_UNITS[m.group(2)]


def parse_wrk_text(text):
    """Parses wrk's human-readable report (with or without --latency).

    Returns a dict: requests, duration_s, rps, transfer_bytes_per_s,
    latency_us (mean, stdev, max, and p50/p75/p90/p99 when --latency was
    given), errors (connect, read, write, timeout, status). Counters wrk
    omits when zero are 0. Raises ValueError if the text is not a wrk report
    (for example wrk's usage text after a bad flag).
    """
    out = {"latency_us": {}, "errors": dict.fromkeys(
        ("connect", "read", "write", "timeout", "status"), 0)}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+), ([0-9.]+\w+) read", text, re.M)
    if not m:
        raise ValueError("no 'N requests in T' line: not a wrk report")
    out["requests"] = int(m.group(1))
    out["duration_s"] = wrk_time_us(m.group(2)) / 1e6
    out["bytes"] = wrk_bytes(m.group(3))
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    out["rps"] = float(m.group(1)) if m else None
    m = re.search(r"^Transfer/sec:\s+(\S+)", text, re.M)
    out["transfer_bytes_per_s"] = wrk_bytes(m.group(1)) if m else None
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+", text, re.M)
    if m:
        lat = out["latency_us"]
        lat["mean"], lat["stdev"], lat["max"] = (wrk_time_us(g) for g in m.groups())
    for pct, value in re.findall(r"^\s*(50|75|90|99)%\s+(\S+)\s*$", text, re.M):
        out["latency_us"]["p" + pct] = wrk_time_us(value)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        for key, value in zip(("connect", "read", "write", "timeout"), m.groups()):
            out["errors"][key] = int(value)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["errors"]["status"] = int(m.group(1))
    return out


def parse_wrk_json(text):
    """Finds the line written by wrk/report.lua and returns its dict, or None.

    A percentile of 0 means wrk's histogram had no sample there (all requests
    timed out, or pipelining, where wrk records one latency per batch): it
    becomes None, never a zero latency. So does a min that overflowed.
    """
    for line in text.splitlines():
        if line.startswith(WRK_JSON_TAG):
            data = json.loads(line[len(WRK_JSON_TAG):])
            lat = data.get("latency_us", {})
            for key, value in list(lat.items()):
                if key != "mean" and key != "stdev" and (value is None or value <= 0):
                    lat[key] = None
            if data.get("requests", 0) == 0 or lat.get("max") is None:
                lat["mean"] = lat["stdev"] = None
            return data
    return None


def parse_wrk(text):
    """wrk's full output -> one dict: the text report, with the exact figures
    of the report.lua line (when present) taking precedence."""
    out = parse_wrk_text(text)
    exact = parse_wrk_json(text)
    if exact is not None:
        out["requests"] = exact["requests"]
        out["duration_s"] = exact["duration_us"] / 1e6
        out["bytes"] = exact["bytes"]
        if out["duration_s"] > 0:
            out["rps"] = exact["requests"] / out["duration_s"]
        out["errors"] = exact["errors"]
        out["latency_us"] = exact["latency_us"]
    out["latency_source"] = "report.lua" if exact is not None else "wrk text"
    return out


DISCARD_LATENCY_KEYS = ("min", "mean", "stdev", "max", "p50", "p75", "p90", "p99", "p99_9",
                        "p99_99")


def parse_discard_json(text):
    """discard_client's output (one JSON object on one line) -> the same dict
    as parse_wrk: requests, duration_s, rps, bytes, errors (connect, read,
    write, timeout, status), latency_us, latency_source. Latencies of a run
    with no request are None. Raises ValueError if the text holds no such
    object (for example the usage text after a bad flag)."""
    data = None
    for line in text.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
    if not isinstance(data, dict) or data.get("tool") != "discard_client":
        raise ValueError("no discard_client JSON line")
    try:
        requests, duration_s = int(data["requests"]), float(data["duration_s"])
        errors = {k: int(data["errors"][k])
                  for k in ("connect", "read", "write", "timeout", "status")}
        lat = {k: data["latency_us"][k] for k in DISCARD_LATENCY_KEYS}
        nbytes = int(data["bytes"])
    except (KeyError, TypeError) as e:
        raise ValueError("discard_client JSON without %s" % e)
    if requests == 0:
        lat = dict.fromkeys(DISCARD_LATENCY_KEYS)
    return {"requests": requests, "duration_s": duration_s, "bytes": nbytes,
            "rps": requests / duration_s if duration_s > 0 else None,
            "errors": errors, "latency_us": lat, "latency_source": "discard_client histogram"}


def parse_hyperfine_json(text):
    """hyperfine --export-json -> list of dicts (one per command): mean,
    stddev, median, min, max, user, system (seconds), times, exit_codes."""
    data = json.loads(text)
    keep = ("command", "mean", "stddev", "median", "min", "max", "user", "system",
            "times", "exit_codes")
    return [{k: r.get(k) for k in keep} for r in data["results"]]


def parse_proc_stat(text):
    """/proc/<pid>/stat -> dict with comm, state, utime and stime (clock
    ticks; the sum over every thread of the process, living or exited),
    num_threads, vsize (bytes) and rss (pages).

    The command name is in parentheses and may itself hold spaces and
    parentheses, so the fields are split after the last ')'.
    """
    lpar, rpar = text.index("("), text.rindex(")")
    fields = text[rpar + 2:].split()
    # fields[0] is field 3 of proc(5) (state); field N is fields[N - 3].
    return {
        "pid": int(text[:lpar]),
        "comm": text[lpar + 1:rpar],
        "state": fields[0],
        "utime": int(fields[14 - 3]),
        "stime": int(fields[15 - 3]),
        "num_threads": int(fields[20 - 3]),
        "vsize": int(fields[23 - 3]),
        "rss": int(fields[24 - 3]),
    }


def parse_proc_status(text):
    """/proc/<pid>/status -> dict of the memory lines in kB (VmHWM, VmRSS,
    VmPeak, VmSize, RssAnon, RssFile) and Threads. Absent lines are absent."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "VmPeak", "VmSize", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
        elif key == "Threads":
            out[key] = int(value)
    return out


def parse_listening_line(line):
    """'listening on http://HOST:PORT backend=NAME workers=N' -> (host, port,
    name, workers), or None if the line is not the contract's ready line."""
    m = re.fullmatch(r"listening on http://(\[[^\]]+\]|[^:/\s]+):(\d+) backend=(\S+)"
                     r" workers=(\d+)\s*", line)
    if not m:
        return None
    return m.group(1).strip("[]"), int(m.group(2)), m.group(3), int(m.group(4))
