"""runner.py - the plan of a run and the measurement of one point.

What it is for: bench.py verifies the servers, then calls make_plan() and
run_plan(). A point is one workload at one parameter value; every server
measured there gets a fresh server process (so its peak memory is its own)
and TRIALS measured trials, each after a warm-up. Around each measured
window the server's CPU time is read from /proc/<pid>/stat (all threads),
its memory from /proc/<pid>/status; the load generator's CPU from its own
/proc entry.

Order: workload, then parameter. At a point of a workload that runs in
rounds (workloads.ROUNDS) every server is started once, then trial 1 runs
against each server in turn, then trial 2 starting one server further on,
and so on: each server's trials spread over the same minutes as every
other's, so a machine that drifts during the point weighs on all of them
alike. After each trial the next waits until the server just measured
has gone quiet (settle()), so the servers that wait their turn are idle
and spend no CPU in another's trial. idle and memory points keep one
server at a time: K idle connections are held open on one server and its
memory is read. The idle point of the largest K has no separate K = 0 point:
its server takes turns with and without the K connections (paired_idle()),
so the ratio of the two shares the machine's drift. Plain Python 3 stdlib.
"""

import contextlib
import math
import os
import sys
import time

import load
import servers
import workloads as wl
from servers import CLK_TCK


def applies(spec, workload, cfg):
    if spec["kind"] == "reference":
        return workload in wl.REFERENCE_WORKLOADS[spec["name"]]
    if spec["kind"] == "wine":
        return workload in cfg["wine_workloads"]
    return True


def make_plan(specs, ctx):
    """The points of the run, in order: dicts {workload, param, rounds,
    members, est_s}. members has one dict per server, {spec, workload,
    param, est_s, hyperfine}: every server that serves the workload when
    it runs in rounds, otherwise one (and the next point has the next)."""
    cfg = ctx.cfg
    points = []
    per_trial = cfg["warmup"] + cfg["duration"] + 0.45  # + the tool's start-up, connects
    for workload in cfg["workloads"]:
        if workload == "memory" and "idle" in cfg["workloads"]:
            continue  # the idle points record memory per connection as they go
        rounds = wl.runs_in_rounds(workload)
        params = wl.params_for(workload, cfg)
        paired = paired_idle(workload, params)
        for i, param in enumerate(params):
            if paired and param == 0:
                continue  # measured at the point of the most idle connections
            members = []
            for spec in specs:
                if not applies(spec, workload, cfg):
                    continue
                est = 0.6 + (0 if workload == "memory" else cfg["trials"] * per_trial)
                if workload in ("idle", "memory"):
                    est += param / 4000.0 + (0.6 if param else 0)  # + the warm burst
                if param == paired:  # the trials without, and opening K again
                    est += cfg["trials"] * per_trial + cfg["trials"] // 2 * param / 4000.0
                hyper = workload == "churn" and i == 0 and spec["name"] != "floor"
                if hyper:
                    est += (cfg["trials"] + 1) * cfg["churn_batch"] / 4000.0 + 0.5
                members.append({"spec": spec, "workload": workload, "param": param,
                                "est_s": est, "hyperfine": hyper,
                                "paired": param == paired})
            for group in [members] if rounds and members else [[m] for m in members]:
                points.append({"workload": workload, "param": param, "rounds": rounds,
                               "members": group, "est_s": sum(m["est_s"] for m in group)})
    wine = sorted({s["label"] for s in specs if s["kind"] == "wine"})
    if wine and set(cfg["wine_workloads"]) != set(cfg["workloads"]):
        ctx.results.env.setdefault("notes", []).append(
            "%s measured on %s only (preset %s)" % (", ".join(wine),
                                                    ", ".join(cfg["wine_workloads"]),
                                                    cfg["preset"]))
    return points


def paired_idle(workload, params):
    """The idle count whose point also measures the same server without
    idle connections (param 0), trial for trial, or None. Target 4 is the
    ratio of those two: measured at points of their own they would be
    minutes apart, and drift on a shared machine would fall on one side
    only. Paired, they take turns in one server process, so it falls on
    both alike."""
    if workload != "idle" or 0 not in params or max(params) <= 0:
        return None
    return max(params)


def fmt_secs(s):
    s = int(max(0, s))
    return "%dm%02ds" % (s // 60, s % 60) if s >= 60 else "%ds" % s


def run_plan(points, ctx):
    """Runs every point, saving the results after each one. Progress: a
    point in rounds prints its header (point i of n, time left, workload)
    and each round's number as it ends, then one line per server; a point
    of one server prints one line."""
    total_est = sum(p["est_s"] for p in points) or 1.0
    done_est, t0 = 0.0, time.monotonic()
    print("bench: %d points, %d server runs, about %s" % (
        len(points), sum(len(p["members"]) for p in points), fmt_secs(total_est)))
    for i, point in enumerate(points, 1):
        elapsed = time.monotonic() - t0
        pace = elapsed / done_est if done_est > 0 else 1.0
        left = (total_est - done_est) * pace
        name = wl.WORKLOADS[point["workload"]]["param"]
        head = "[%3d/%d] %7s left  " % (i, len(points), fmt_secs(left))
        where = "%-9s %s=%-6s " % (point["workload"], name, point["param"])
        if point["rounds"]:
            print(head + where + "%d server%s, round" % (
                len(point["members"]), "" if len(point["members"]) == 1 else "s"),
                end="", flush=True)
            per = run_point(point, ctx, lambda t: print(" %d" % t, end="", flush=True))
            print(flush=True)
        else:
            print(head + "%-26s " % point["members"][0]["spec"]["label"][:26] + where,
                  end="", flush=True)
            per = run_point(point, ctx)
        rows = [r for m in point["members"] for r in per[m["spec"]["name"]]]
        ctx.results.add(rows)
        for m in point["members"]:
            mine = per[m["spec"]["name"]]
            text = describe([r for r in mine if r["param"] == point["param"]])
            bare = [r for r in mine if r["param"] != point["param"]]
            if bare:  # the paired idle point's trials without idle connections
                text += "; without: " + describe(bare).strip()
            if point["rounds"]:
                print(" " * len(head) + "%-26s %s" % (m["spec"]["label"][:26], text),
                      flush=True)
            else:
                print(text, flush=True)
        done_est += point["est_s"]


def describe(rows):
    """The one-line outcome of a server at a point for the progress display."""
    rps = sorted(r["rps"] for r in rows if r.get("rps") is not None and
                 r["tool"] == wl.load_tool(r["workload"]))
    flags = sorted({f for r in rows for f in r.get("flags", [])})
    text = ""
    if rps:
        med = rps[len(rps) // 2]
        spread = (rps[-1] - rps[0]) / med * 100 if med else 0
        text = "%10.0f req/s (spread %.0f%%)" % (med, spread)
    mem = [r for r in rows if r["workload"] == "memory"]
    if mem and mem[0]["server_mem"].get("bytes_per_conn") is not None:
        text += "  %.0f B/conn" % mem[0]["server_mem"]["bytes_per_conn"]
    if flags:
        text += "  [" + ", ".join(flags) + "]"
    err = [r.get("error") for r in rows if r.get("error")]
    if err:
        text += "  " + err[0][:120]
    return text


def base_row(step, trial, tool="wrk"):
    """The fields every row of one server at one point starts with (`step`
    is one of a point's members)."""
    spec = step["spec"]
    flags = []
    if spec["kind"] == "wine":
        flags.append("under-wine")
    if spec["kind"] == "emulated":
        flags.append("emulated")
    return {"backend": spec["name"], "label": spec["label"], "kind": spec["kind"],
            "workload": step["workload"], "param": step["param"],
            "conns": wl.load_conns(step["workload"], step["param"]), "tool": tool,
            "trial": trial, "flags": flags}


def failed_row(step, error, trial=0):
    row = base_row(step, trial, tool=wl.load_tool(step["workload"]))
    row.update({"rps": None, "error": error})
    row["flags"].append("failed")
    return row


@contextlib.contextmanager
def off_server_cpus(ctx):
    """Keeps the harness's own work (starting the tools, reading /proc,
    parsing their output) on the client's CPUs while a point runs, when the
    run pins both sides: on the server's CPUs it would count as another
    program's use of them (other_util) and take time from the server."""
    if not (ctx.server_cpus and ctx.client_cpus):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, servers.cpu_set(ctx.client_cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run_point(point, ctx, on_round=None):
    """Measures one point. Returns {server name: its rows} (a 'failed' row
    for a server or tool that would not run: the reason is kept, the run
    goes on). on_round(t) is called as each round t ends."""
    with off_server_cpus(ctx):
        return measure_point(point, ctx, on_round)


def measure_point(point, ctx, on_round):
    names = [m["spec"]["name"] for m in point["members"]]
    if wl.load_tool(point["workload"]) == "discard_client":
        binary = discard_binary(ctx)
        if not os.access(binary, os.X_OK):
            return {name: [failed_row(m, "%s not built (make bench-tools)" % binary)]
                    for name, m in zip(names, point["members"])}
    if point["rounds"]:
        return run_rounds(point["members"], ctx, on_round)
    return {names[0]: run_alone(point["members"][0], ctx)}


def run_rounds(members, ctx, on_round=None):
    """Starts every member's server, then runs trial 1 against each in turn,
    trial 2 against each starting one server further on, and so on; then
    churn's hyperfine batch, one server after another; then stops them all,
    whatever happened (an exception or Ctrl-C too). A server that does not
    start gets its failed row and is left out; one that dies has its last
    row flagged server-died and no more trials.
    Returns {server name: rows}, each server's rows in trial order."""
    rows = {m["spec"]["name"]: [] for m in members}
    running = []  # (member, server), in the members' order
    try:
        for m in members:
            srv = servers.Server(m["spec"], ctx.root, ctx.server_cpus, ctx.out,
                                 ctx.cfg["workers"])
            running.append((m, srv))  # before start(): an interrupted start is stopped too
            try:
                srv.start()
            except servers.StartError as e:
                running.pop()
                rows[m["spec"]["name"]].append(failed_row(m, "server did not start: " +
                                                          e.reason))
        live = list(running)
        for _, srv in live:  # a Wine server's start keeps the wineserver busy a while
            settle(srv)
        for trial in range(1, ctx.cfg["trials"] + 1):
            if not live:
                break
            first = (trial - 1) % len(live)  # who goes first moves round by round
            for m, srv in live[first:] + live[:first]:
                out = rows[m["spec"]["name"]]
                if srv.alive():
                    out.append(measure_trial(m, ctx, srv, trial))
                    settle(srv)
                if not srv.alive():
                    if not out:  # it died while the others had their turn
                        out.append(failed_row(m, "the server exited before its trial", trial))
                    out[-1]["flags"].append("server-died")
                    live.remove((m, srv))
            if on_round:
                on_round(trial)
        for m, srv in running:
            if m["hyperfine"] and srv.alive():
                rows[m["spec"]["name"]] += measure_hyperfine(m, ctx, srv)
    finally:
        for m, srv in running:
            code = srv.stop()
            out = rows[m["spec"]["name"]]
            if code not in (0, None, -15) and out:
                out[-1]["flags"].append("server-exit-%d" % code)
    return rows


QUIET_S = 0.05   # a server that spends no CPU for this long is done with a trial
SETTLE_MAX_S = 5.0
CORE_QUIET_S = 0.2     # then its CPUs must be all but idle for this long:
CORE_QUIET_TICKS = 1   # at most this many busy ticks (5 % of a CPU)
# Other work on the server's CPUs that flags a trial: this share of them, and
# more ticks than the readings' noise (1-4), which 5 % of a short trial is not.
CONTENDED_UTIL = 0.05
CONTENDED_TICKS = 5


def settle(srv):
    """Waits until the server has spent no CPU for QUIET_S and the CPUs it is
    pinned to have then been all but idle for CORE_QUIET_S, at most
    SETTLE_MAX_S. After wrk exits a server still closes its connections:
    about 50 ms for epoll with 10,000, 0.3 s for nginx, seconds for a Wine
    backend with 1,024, whose wineserver goes on working after the Windows
    process is quiet. In rounds that tail must not fall into the next
    server's trial, on the same CPU: measure_trial() flags a trial where
    something did anyway."""
    deadline = time.monotonic() + SETTLE_MAX_S
    last = srv.cpu_ticks()
    while time.monotonic() < deadline:
        time.sleep(QUIET_S)
        now = srv.cpu_ticks()
        if not srv.alive():
            return
        if now != last:
            last = now
            continue
        core = srv.core_ticks()
        if core is None:
            return
        time.sleep(CORE_QUIET_S)
        if srv.core_ticks() - core <= CORE_QUIET_TICKS:
            return
        last = srv.cpu_ticks()


def run_alone(step, ctx):
    """Measures one server at a point of its own (idle and memory: the
    workloads whose ROUNDS is False): its trials back to back, with K idle
    connections held open while they run and the memory they cost read
    before them. At the paired idle point (paired_idle()) each trial is two,
    one with the K connections held and one without, their order swapped
    trial by trial (with, without; without, with; ...), so the connections
    are closed and opened again every other trial. Returns its rows."""
    srv = servers.Server(step["spec"], ctx.root, ctx.server_cpus, ctx.out, ctx.cfg["workers"])
    holder, rows, closed = None, [], 0
    try:
        srv.start()
    except servers.StartError as e:
        return [failed_row(step, "server did not start: " + e.reason)]
    try:
        k = step["param"] if step["workload"] in ("idle", "memory") else 0
        mem_row = None
        if k > 0:
            holder, mem_row = hold_idle(step, ctx, srv, k)
            if holder is None:
                return [mem_row]
        bare = dict(step, param=0)
        for trial, held in idle_turns(step, ctx.cfg["trials"]):
            if held and holder is None and k > 0:
                holder, err = open_holder(ctx, srv, k)
                if err:
                    rows.append(failed_row(step, err, trial))
                    break
            elif not held and holder is not None:
                closed += holder.release() or 0
                holder = None
                settle(srv)  # the server closes its side before the trial
            rows.append(measure_trial(step if held else bare, ctx, srv, trial))
            if not srv.alive():
                rows[-1]["flags"].append("server-died")
                break
        if step["hyperfine"] and srv.alive():
            rows += measure_hyperfine(step, ctx, srv)
        if holder is not None:
            closed += holder.release() or 0
            holder = None
        if closed:
            for r in rows + [mem_row]:
                if r is not None and r["param"] == k:
                    r["flags"].append("idle-closed")
                    r["idle_closed"] = closed
        if mem_row is not None and "memory" in ctx.cfg["workloads"]:
            rows.append(mem_row)
    finally:
        if holder is not None:
            holder.proc.kill()
            holder.proc.wait()
        code = srv.stop()
        if code not in (0, None, -15) and rows:
            rows[-1]["flags"].append("server-exit-%d" % code)
    return rows


def idle_turns(step, trials):
    """The trials of a point of one server, in the order they run, as
    (trial, held): held says whether its K idle connections are open. The
    paired idle point takes both turns each trial, swapping their order
    (with, without; without, with; ...); a memory point takes none."""
    if step["workload"] == "memory":
        return []
    if not step.get("paired"):
        return [(t, True) for t in range(1, trials + 1)]
    return [(t, held) for t in range(1, trials + 1)
            for held in ((True, False) if t % 2 else (False, True))]


def open_holder(ctx, srv, k):
    """Opens k idle connections with idle_holder. Returns (holder, None), or
    (None, the reason it failed)."""
    holder = load.IdleHolder(os.path.join(ctx.tools, "idle_holder"), srv.port, k,
                             ctx.client_cpus)
    err = holder.wait_holding(timeout_s=20 + k / 500.0)
    if err:
        return None, err
    time.sleep(0.1)  # let the last accepted connections settle
    return holder, None


def hold_idle(step, ctx, srv, k):
    """Opens k idle connections with idle_holder. Returns (holder, memory
    row), or (None, failed row).

    The baseline is read after a warm burst (wl.WARM_REQUESTS keep-alive
    requests over wl.WARM_CONNS connections, the same for every server): a
    loop's fixed costs -- buffers it allocates once and touches as they
    cycle, allocator arenas -- are then already in it, and what the idle
    connections add, divided by k, is the marginal cost of one connection."""
    answered, err = load.warm_burst(srv.port, wl.WARM_REQUESTS, wl.WARM_CONNS,
                                    ctx.client_cpus)
    if err:
        return None, failed_row(step, err)
    time.sleep(0.1)  # let the burst's connections close
    before = srv.memory_kb()
    holder, err = open_holder(ctx, srv, k)
    if err:
        return None, failed_row(step, err)
    after = srv.memory_kb()
    row = base_row(dict(step, workload="memory"), 1, tool="rss")
    row["conns"] = k
    row["server_mem"] = {
        "rss_before_kb": before.get("VmRSS"), "rss_kb": after.get("VmRSS"),
        "hwm_kb": after.get("VmHWM"), "threads": after.get("Threads"),
        "bytes_per_conn": (after["VmRSS"] - before["VmRSS"]) * 1024.0 / k,
        "warm_requests": answered,
    }
    row["rps"] = None
    return holder, row


def wrk_commands(step, ctx, srv):
    """wrk's measured and warm-up command lines for a point, and a function
    that runs the measured one: (argv, warm-up argv, run)."""
    workload, param = step["workload"], step["param"]
    conns = wl.load_conns(workload, param)
    script = load.wrk_script(ctx.out, "pipeline" if workload == "pipeline" else "plain")
    headers = ["Connection: close"] if workload == "churn" else []
    sargs = [str(wl.PIPELINE_DEPTH)] if workload == "pipeline" else []
    threads = min(ctx.client_threads, conns)
    argv = load.wrk_argv(srv.url(wl.request_path(workload, param)), conns,
                         math.ceil(ctx.cfg["duration"]), script, threads, headers, sargs)
    warm = load.wrk_argv(srv.url(wl.request_path(workload, param)), conns,
                         max(1, math.ceil(ctx.cfg["warmup"])), script, threads, headers, sargs)
    return argv, warm, lambda: load.run_wrk(argv, ctx.client_cpus, ctx.cfg["duration"], threads)


def discard_binary(ctx):
    return os.path.join(ctx.tools, "discard_client")


def discard_commands(step, ctx, srv):
    """The same for discard_client (the static workload: it drops the bodies
    in the kernel instead of copying them, so the client keeps up)."""
    binary = discard_binary(ctx)
    path = wl.request_path(step["workload"], step["param"])
    conns = wl.load_conns(step["workload"], step["param"])
    argv = load.discard_argv(binary, srv.port, path, conns, ctx.cfg["duration"])
    warm = load.discard_argv(binary, srv.port, path, conns, ctx.cfg["warmup"])
    return argv, warm, lambda: load.run_discard(argv, ctx.client_cpus, ctx.cfg["duration"])


def measure_trial(step, ctx, srv, trial):
    """One warm-up and one measured trial with the workload's load tool
    (wl.load_tool: wrk, or discard_client for static). Returns the row."""
    workload, param = step["workload"], step["param"]
    tool = wl.load_tool(workload)
    commands = discard_commands if tool == "discard_client" else wrk_commands
    argv, warm, run = commands(step, ctx, srv)
    load.warm_up(warm, ctx.client_cpus, ctx.cfg["warmup"])
    u0, s0 = srv.cpu_ticks()
    c0 = srv.core_ticks()
    t0 = time.monotonic()
    result, text, err = run()
    wall = time.monotonic() - t0
    row = base_row(step, trial, tool=tool)
    raw = os.path.join(ctx.out, "raw", "%s-%s-%s-t%d.txt" % (
        step["spec"]["name"], workload, param, trial))
    os.makedirs(os.path.dirname(raw), exist_ok=True)
    with open(raw, "w") as f:
        f.write(" ".join(argv) + "\n" + text)
    if not srv.alive():
        row.update({"rps": None, "error": "the server exited during the trial"})
        row["flags"].append("failed")
        return row
    u1, s1 = srv.cpu_ticks()
    c1 = srv.core_ticks()
    mem = srv.memory_kb()
    if result is None:
        row.update({"rps": None, "error": err})
        row["flags"].append("failed")
        return row
    n = result["requests"] or 1
    ncpu = ctx.server_ncpus
    other = c1 - c0 - (u1 - u0 + s1 - s0) if c0 is not None else None
    row.update({
        "duration_s": result["duration_s"], "requests": result["requests"],
        "rps": result["rps"], "bytes": result["bytes"], "latency_us": result["latency_us"],
        "latency_source": result["latency_source"], "errors": result["errors"],
        "client_cpu": result["client_cpu"],
        "server_cpu": {
            "user_s": (u1 - u0) / CLK_TCK, "sys_s": (s1 - s0) / CLK_TCK,
            "user_us_per_req": (u1 - u0) / CLK_TCK * 1e6 / n,
            "sys_us_per_req": (s1 - s0) / CLK_TCK * 1e6 / n,
            "util": round((u1 - u0 + s1 - s0) / CLK_TCK / wall / ncpu, 3),
            "other_util": other_util(other, wall, ncpu) if other is not None else None,
        },
        "server_mem": {"rss_kb": mem.get("VmRSS"), "hwm_kb": mem.get("VmHWM"),
                       "threads": mem.get("Threads")},
        "raw": os.path.relpath(raw, ctx.out),
    })
    if workload == "pipeline":
        row["pipeline_depth"] = wl.PIPELINE_DEPTH
    if result["requests"] == 0:
        row["error"] = "no response at all within the %g s trial" % ctx.cfg["duration"]
    if sum(result["errors"].values()) > 0 or result["requests"] == 0:
        row["flags"].append("errors")  # no answer at all is an error too
    if result["client_cpu"]["bound"]:
        row["flags"].append("client-bound")
    if other is not None and other >= CONTENDED_TICKS and \
            row["server_cpu"]["other_util"] >= CONTENDED_UTIL:
        row["flags"].append("cpu-contended")
    return row


def other_util(ticks, wall, ncpu):
    """The share of the server's CPUs that something other than the server
    used during a trial: their busy ticks less the server's own. The two are
    read a moment apart, and the kernel's own threads wake on every CPU now
    and then, so a few ticks either way are noise (below 0: 0)."""
    return round(max(0, ticks) / CLK_TCK / wall / ncpu, 3)


def measure_hyperfine(step, ctx, srv):
    """The churn batch: hyperfine times `churn_batch` requests, each on a new
    connection, over TRIALS runs. One row per run; the server's CPU time is
    read around the whole hyperfine and spread over every request, and for
    our own servers /stats confirms every request got a 2xx."""
    batch, runs = ctx.cfg["churn_batch"], ctx.cfg["trials"]
    export = os.path.join(ctx.out, "raw", "%s-churn-hyperfine.json" % step["spec"]["name"])
    os.makedirs(os.path.dirname(export), exist_ok=True)
    before = load.stats_snapshot(srv.port) if step["spec"]["kind"] != "reference" else None
    u0, s0 = srv.cpu_ticks()
    hf, err = load.run_hyperfine_churn(srv.url("/plaintext"), batch, runs, ctx.client_cpus,
                                       export)
    u1, s1 = srv.cpu_ticks()
    if hf is None:
        row = base_row(step, 0, tool="hyperfine")
        row.update({"rps": None, "error": err})
        row["flags"].append("failed")
        return [row]
    after = load.stats_snapshot(srv.port) if before is not None else None
    total = batch * (runs + 1)
    errors = {"exit": sum(1 for c in hf["exit_codes"] if c != 0)}
    if before and after:
        # /stats itself is one request, answered 2xx, between the snapshots.
        got = after["responses"]["2xx"] - before["responses"]["2xx"] - 1
        errors["status"] = max(0, total - got)
    rows = []
    for trial, t in enumerate(hf["times"], 1):
        row = base_row(step, trial, tool="hyperfine")
        row["conns"] = 8
        row.update({
            "duration_s": t, "requests": batch, "rps": batch / t if t > 0 else None,
            "errors": errors,
            "client_cpu": {"user_s": hf["user"], "sys_s": hf["system"],
                           "util": round((hf["user"] + hf["system"]) / hf["mean"], 3)},
            "server_cpu": {"user_us_per_req": (u1 - u0) / CLK_TCK * 1e6 / total,
                           "sys_us_per_req": (s1 - s0) / CLK_TCK * 1e6 / total},
            "hyperfine": {"mean_s": hf["mean"], "stddev_s": hf["stddev"],
                          "command": hf["command"], "export": os.path.relpath(export, ctx.out)},
        })
        row["client_cpu"]["bound"] = row["client_cpu"]["util"] >= load.CLIENT_BOUND_UTIL
        if sum(errors.values()) > 0:
            row["flags"].append("errors")
        rows.append(row)
    return rows


if __name__ == "__main__":
    sys.exit("runner.py is a module: run harness/bench.py")
