"""targets.py - the project's performance targets, checked against one run.

What it is for: the report (scripts/report.py, "Targets") states each target
plainly, one row per target and point: the figures it was computed from, the
ratio, "met" or "not met", and the caveats (client-bound, errors). Every
figure comes from the run's own results.json -- a ratio of two medians
measured in the same run, on the same machine, minutes apart -- and a point
the run did not measure says "not measured", never a guess.

What it teaches: a target is a ratio against something measured alongside
it (the floor, nginx, h2o, the same server without idle connections), not
an absolute number that changes with the machine. A met target whose figures
are flagged client-bound or with errors is a caveat to read, not a verdict.
And a verdict is only as firm as the trials behind it: each row also says
whether the trials themselves settle it (see mann_whitney_p()), or whether
the two servers' trials mix so much that another run could turn it.

Needs: plain Python 3. Input: the document of results.py (its "rows" and
"aggregates").
"""

import itertools
import math
import statistics

import workloads as wl

MET, NOT_MET, MISSING = "met", "not met", "not measured"
MIN_TRIALS = 3           # a ratio is of medians of at least this many trials
SETTLED_P = 0.05         # below this, the trials settle which side of the goal a row is on
CPU_CONNS = (64, 256, 1024)
THROUGHPUT_CONNS = (64, 256, 1024)
PIPELINE_CONNS = 64
EVENT_BACKENDS = ("poll", "epoll", "io_uring", "kqueue")
IDLE_K = 10000
STATIC_BYTES = 1024 * 1024

# The flags of an aggregate that are caveats on a ratio built from it.
CAVEATS = ("errors", "failed", "server-died", "client-bound", "cpu-contended", "idle-closed",
           "emulated", "under-wine")


class Index:
    """Lookups into one run: aggregates by (backend, workload, param, tool),
    and the measured trial rows of each."""

    def __init__(self, doc):
        self.aggs = {(a["backend"], a["workload"], a["param"], a["tool"]): a
                     for a in doc.get("aggregates", [])}
        self.rows = {}
        for r in doc.get("rows", []):
            key = (r["backend"], r["workload"], r["param"], r["tool"])
            self.rows.setdefault(key, []).append(r)

    def agg(self, backend, workload, param, tool=None):
        """tool: the workload's own load generator unless named (wl.load_tool)."""
        return self.aggs.get((backend, workload, param, tool or wl.load_tool(workload)))

    def backends(self, workload, param, tool=None):
        tool = tool or wl.load_tool(workload)
        return sorted(b for (b, w, p, t) in self.aggs if (w, p, t) == (workload, param, tool))


class Figure:
    """One measured number of one server at one point, with its caveats.
    value is None when the point was not measured (or every trial failed)."""

    def __init__(self, backend, value, unit, flags=(), trials=0, note="", samples=()):
        self.backend, self.value, self.unit = backend, value, unit
        self.flags, self.trials = list(flags), trials
        self.samples = list(samples)  # the trials' own values, for the noise test
        self.name = backend + (" (%s)" % note if note else "")

    def caveats(self):
        out = [f for f in CAVEATS if f in self.flags]
        if self.value is not None and self.trials < MIN_TRIALS:
            out.append("%d trial%s" % (self.trials, "" if self.trials == 1 else "s"))
        return out

    def text(self):
        if self.value is None:
            return "%s not measured" % self.name
        v = self.value
        if self.unit == "req/s":
            return "%s %s req/s" % (self.name, "{:,.0f}".format(v))
        if self.unit == "us":  # CPU time per request
            return "%s %.2f us" % (self.name, v)
        if self.unit == "latency":
            return "%s %s" % (self.name, "%.0f us" % v if v < 1000 else "%.2f ms" % (v / 1e3))
        if self.unit == "B":
            return "%s %.0f B" % (self.name, v)
        return "%s %g %s" % (self.name, v, self.unit)


def _measured(index, backend, workload, param, tool):
    """The trial rows of a point that produced a number."""
    return [r for r in index.rows.get((backend, workload, param, tool), [])
            if r.get("rps") is not None or workload == "memory"]


def rps(index, backend, workload, param, note=""):
    """Requests/s: the median of the point's trials."""
    a = index.agg(backend, workload, param)
    if a is None:
        return Figure(backend, None, "req/s", note=note)
    got = [r["rps"] for r in _measured(index, backend, workload, param,
                                        wl.load_tool(workload))]
    return Figure(backend, a["rps"]["median"], "req/s", a["flags"], len(got), note, got)


def p99(index, backend, workload, param):
    """99th percentile latency, microseconds: the median of the trials'."""
    a = index.agg(backend, workload, param)
    if a is None:
        return Figure(backend, None, "latency")
    got = [r["latency_us"]["p99"] for r in _measured(index, backend, workload, param,
                                                     wl.load_tool(workload))
           if (r.get("latency_us") or {}).get("p99") is not None]
    return Figure(backend, a["latency_us"].get("p99"), "latency", a["flags"], len(got),
                  samples=got)


def cpu_per_request(index, backend, param):
    """Server CPU per request (user + system, microseconds) on plaintext:
    the median over the trials of each trial's sum."""
    a = index.agg(backend, "plaintext", param)
    if a is None:
        return Figure(backend, None, "us")
    sums = []
    for r in _measured(index, backend, "plaintext", param, wl.load_tool("plaintext")):
        cpu = r.get("server_cpu") or {}
        if cpu.get("user_us_per_req") is not None and cpu.get("sys_us_per_req") is not None:
            sums.append(cpu["user_us_per_req"] + cpu["sys_us_per_req"])
    value = statistics.median(sums) if sums else None
    return Figure(backend, value, "us", a["flags"], len(sums), samples=sums)


def bytes_per_conn(index, backend, k):
    """Server memory per idle connection at k idle connections (one reading
    per point: (RSS with k idle - RSS after the warm burst) / k)."""
    a = index.agg(backend, "memory", k, "rss")
    if a is None:
        return Figure(backend, None, "B")
    return Figure(backend, a["server_mem"].get("bytes_per_conn"), "B", a["flags"], MIN_TRIALS)


def _ranks(values):
    """Ranks 1..n of values, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mann_whitney_p(xs, ys):
    """Two-sided p-value of the Mann-Whitney U test, exact: how often a
    random split of all the trials into groups of len(xs) and len(ys) puts
    the groups at least as far apart (in rank sum) as the real split. Small
    when every x sits above every y (or below): with 5 trials each, 2/252 =
    0.008; with 3 each, 2/20 = 0.1, so 3 trials can never settle a row at
    0.05. None for groups too large to enumerate (over 20 trials in all)."""
    n, m = len(xs), len(ys)
    if n == 0 or m == 0 or n + m > 20:
        return None
    ranks = _ranks(list(xs) + list(ys))
    mean = n * (n + m + 1) / 2.0
    seen = abs(sum(ranks[:n]) - mean)
    total = hits = 0
    for pick in itertools.combinations(range(n + m), n):
        total += 1
        if abs(sum(ranks[i] for i in pick) - mean) >= seen - 1e-9:
            hits += 1
    return hits / total


def smallest_p(trials):
    """The smallest p mann_whitney_p() can give with `trials` trials a side:
    the two most lopsided splits of all C(2n, n)."""
    return 2 / math.comb(2 * trials, trials)


def noise_test(num, den, limit):
    """Whether the trials settle a ratio's side of `limit`: the p-value of
    num's trials against den's trials scaled by the limit (a ratio of
    limit exactly is the no-difference case). None without trials."""
    if len(num.samples) < 2 or len(den.samples) < 2:
        return None
    return mann_whitney_p(num.samples, [limit * d for d in den.samples])


def compare(target, point, num, den, goal, limit):
    """One row: ratio = num / den, met when it satisfies `goal` against
    `limit` ('<=', '<' or '>='); p says whether the trials settle it."""
    row = {"target": target, "point": point, "figures": "%s; %s" % (num.text(), den.text()),
           "goal": "%s %.2f" % (goal, limit), "ratio": None, "status": MISSING, "flags": "",
           "p": None}
    caveats = ["%s: %s" % (f.name, ", ".join(f.caveats())) for f in (num, den)
               if f.caveats()]
    row["flags"] = "; ".join(caveats)
    if num.value is None or den.value is None or den.value <= 0:
        return row
    ratio = num.value / den.value
    ok = {"<=": ratio <= limit, "<": ratio < limit, ">=": ratio >= limit}[goal]
    row.update({"ratio": ratio, "status": MET if ok else NOT_MET,
                "p": noise_test(num, den, limit)})
    return row


def settled(row):
    """Whether a row's trials settle its verdict: True, False (within
    noise), or None (no trials to test: one reading, not measured)."""
    p = row.get("p")
    return None if p is None or row["status"] == MISSING else p < SETTLED_P


def noise_text(row):
    """The report's word on a row's trials: 'settled (p=0.008)', 'within
    noise (p=0.42)', or '-' (no trials to test: one reading, not measured)."""
    s = settled(row)
    if s is None:
        return "-"
    return "%s (p=%.3f)" % ("settled" if s else "within noise", row["p"])


def absolute(target, point, fig, goal, limit, unit):
    """One row against a fixed limit (memory per connection): the 'ratio'
    column holds the figure over the limit."""
    row = {"target": target, "point": point, "figures": fig.text(),
           "goal": "%s %g %s" % (goal, limit, unit), "ratio": None, "status": MISSING,
           "flags": ("%s: %s" % (fig.name, ", ".join(fig.caveats()))
                     if fig.caveats() else ""), "p": None}
    if fig.value is None:
        return row
    ratio = fig.value / limit
    row.update({"ratio": ratio, "status": MET if fig.value <= limit else NOT_MET})
    return row


def best_backend(index, workload, param):
    """The fastest of our backends at a point (Wine excluded: never ranked
    with native ones; a point with errors only when no clean one exists)."""
    cands = []
    for b in index.backends(workload, param):
        a = index.agg(b, workload, param)
        if a["kind"] in ("reference", "wine") or a["rps"]["median"] is None:
            continue
        clean = "errors" not in a["flags"] and "failed" not in a["flags"]
        cands.append((clean, a["rps"]["median"], b))
    if not cands:
        return None
    return max(cands)[2]


def evaluate(doc):
    """Every target and point of the run, as rows {target, point, figures,
    goal, ratio, status, flags}, in the order of the targets."""
    ix = Index(doc)
    out = []
    for c in CPU_CONNS:
        point = "plaintext, %d conns" % c
        epoll = cpu_per_request(ix, "epoll", c)
        t = "1. CPU/request: epoll vs %s"
        out.append(compare(t % "the floor", point, epoll, cpu_per_request(ix, "floor", c),
                           "<=", 1.10))
        out.append(compare(t % "nginx", point, epoll, cpu_per_request(ix, "nginx", c), "<", 1.0))
        out.append(compare(t % "h2o", point, epoll, cpu_per_request(ix, "h2o", c), "<", 1.0))
        out.append(compare("1. CPU/request: io_uring vs epoll", point,
                           cpu_per_request(ix, "io_uring", c), epoll, "<=", 0.90))
    best = best_backend(ix, "pipeline", PIPELINE_CONNS) or "best backend"
    out.append(compare("2. Pipelined x%d: best backend vs the floor" % wl.PIPELINE_DEPTH,
                       "%d conns" % PIPELINE_CONNS, rps(ix, best, "pipeline", PIPELINE_CONNS),
                       rps(ix, "floor", "pipeline", PIPELINE_CONNS), ">=", 0.8))
    for c in THROUGHPUT_CONNS:
        point = "plaintext, %d conns" % c
        for b in EVENT_BACKENDS:
            mine = rps(ix, b, "plaintext", c)
            for ref in ("nginx", "h2o"):
                out.append(compare("3. Throughput: %s vs %s" % (b, ref), point, mine,
                                   rps(ix, ref, "plaintext", c), ">=", 1.0))
            out.append(compare("3. p99 latency: %s vs nginx" % b, point,
                               p99(ix, b, "plaintext", c), p99(ix, "nginx", "plaintext", c),
                               "<=", 1.0))
    for b in ("epoll", "io_uring"):
        out.append(compare("4. Idle: %s with vs without idle" % b,
                           "%s idle + %d busy" % ("{:,}".format(IDLE_K), wl.IDLE_ACTIVE_CONNS),
                           rps(ix, b, "idle", IDLE_K, "%s idle" % "{:,}".format(IDLE_K)),
                           rps(ix, b, "idle", 0, "no idle"), ">=", 0.8))
    for b in ("epoll", "io_uring"):
        out.append(absolute("4. Memory per idle connection: %s" % b,
                            "%s idle" % "{:,}".format(IDLE_K), bytes_per_conn(ix, b, IDLE_K),
                            "<=", 256, "B"))
    for b in ("epoll", "io_uring"):
        out.append(compare("5. Static 1 MiB: %s vs nginx" % b, "%d conns" % wl.STATIC_CONNS,
                           rps(ix, b, "static", STATIC_BYTES),
                           rps(ix, "nginx", "static", STATIC_BYTES), ">=", 1.0))
    return out


def floor_context(doc):
    """Target 3's yardstick: the floor's requests/s against nginx's at the
    same points, as rows shaped like evaluate()'s. The floor does the
    kernel's work and nothing else, so where it falls short of nginx the
    figure is the load generator's limit, not a server's (harness/README.md,
    why target 3's throughput rows come out either way)."""
    ix = Index(doc)
    return [compare("the floor vs nginx", "plaintext, %d conns" % c,
                    rps(ix, "floor", "plaintext", c), rps(ix, "nginx", "plaintext", c),
                    ">=", 1.0) for c in THROUGHPUT_CONNS]


def ratio_text(row):
    """The ratio as the report shows it: two decimals, more when two would
    round it onto the limit (0.899 is not 0.90, 0.9999 is not 1.00)."""
    r = row["ratio"]
    if r is None:
        return "-"
    limit = float(row["goal"].split()[1])
    for digits in (2, 3, 4, 5, 6):
        if round(r, digits) != limit or r == limit:
            return "%.*f" % (digits, r)
    return repr(r)


def counts(rows):
    """{'met': n, 'not met': n, 'not measured': n, 'flagged': n, and per
    status the rows whose trials do not settle it: 'met within noise',
    'not met within noise'}."""
    out = {MET: 0, NOT_MET: 0, MISSING: 0}
    for r in rows:
        out[r["status"]] += 1
    out["flagged"] = sum(1 for r in rows if r["flags"] and r["status"] != MISSING)
    for status in (MET, NOT_MET):
        out[status + " within noise"] = sum(
            1 for r in rows if r["status"] == status and settled(r) is False)
    return out
