#!/usr/bin/env python3
"""test_rounds.py - the order of a run's trials (runner.py).

At a point of a workload that runs in rounds (workloads.ROUNDS) every
server is started once and the trials go round them: trial 1 of each,
then trial 2 of each starting one server further on, and so on. idle and
memory points run one server at a time.
These tests check the plan, then drive runner.py against the real
bin/server-epoll and bin/server-poll with short trials: the order of the
trials, a server that does not start, one that dies mid-rounds, an
interruption, that a server waiting its turn spends no CPU, and that a
trial sharing the server's CPU with another process is flagged.
"""

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import load  # noqa: E402
import results as res  # noqa: E402
import runner  # noqa: E402
import workloads as wl  # noqa: E402

BIN = os.path.join(REPO, "bin")
TOOLS = os.path.join(REPO, "build", "harness")


def spec(name):
    return {"name": name, "label": name, "kind": "native",
            "argv": [os.path.join(BIN, "server-" + name)]}


def ref(name):
    return {"name": name, "label": name, "kind": "reference", "ref": name}


class Ctx:
    """What runner.py needs of bench.py's context, for short trials."""

    def __init__(self, tmp, workloads, trials=3, **cfg):
        self.cfg = dict(wl.PRESETS["quick"], preset="quick", workloads=list(workloads),
                        trials=trials, duration=0.3, warmup=0.1, workers=1, conns=[8],
                        idle=[50])
        self.cfg.update(cfg)
        self.out = self.root = tmp
        self.static_files = []
        self.server_cpus = self.client_cpus = None
        self.client_threads = 1
        self.server_ncpus = len(os.sched_getaffinity(0))
        self.tools = TOOLS
        self.results = res.Results(tmp)


class Recorder:
    """Wraps runner.measure_trial: records the order of the trials, calls
    before(name, trial, servers seen so far) ahead of each, and reads the
    CPU ticks of every other running server around each trial."""

    def __init__(self, before=None):
        self.before = before
        self.order, self.servers, self.idle_ticks = [], {}, []
        self.real = runner.measure_trial

    def __enter__(self):
        runner.measure_trial = self.trial
        return self

    def __exit__(self, *exc):
        runner.measure_trial = self.real

    def trial(self, step, ctx, srv, trial):
        name = step["spec"]["name"]
        self.servers[name] = srv
        if self.before:
            self.before(name, trial, self.servers)
        others = {n: s.cpu_ticks() for n, s in self.servers.items()
                  if s is not srv and s.alive()}
        row = self.real(step, ctx, srv, trial)
        for n, (u, s) in others.items():
            u1, s1 = self.servers[n].cpu_ticks()
            self.idle_ticks.append(u1 + s1 - u - s)
        self.order.append((name, trial))
        return row


def trials_of(rows):
    return [r["trial"] for r in rows]


class Plan(unittest.TestCase):
    def test_every_workload_has_its_order(self):
        self.assertEqual(set(wl.ROUNDS), set(wl.WORKLOADS))
        self.assertFalse(wl.runs_in_rounds("idle"))
        self.assertFalse(wl.runs_in_rounds("memory"))
        for w in ("plaintext", "pipeline", "json", "static", "churn", "delay"):
            self.assertTrue(wl.runs_in_rounds(w), w)

    def test_points(self):
        tmp = tempfile.mkdtemp(prefix="test-rounds-")
        try:
            specs = [spec("epoll"), spec("poll"), ref("floor"), ref("nginx")]
            ctx = Ctx(tmp, ("plaintext", "churn", "idle", "delay", "memory"), conns=[16, 64],
                      idle=[0, 100, 1000], delay_conns=[100])
            points = runner.make_plan(specs, ctx)
            got = [(p["workload"], p["param"], p["rounds"],
                    [m["spec"]["name"] for m in p["members"]]) for p in points]
            everyone = ["epoll", "poll", "floor", "nginx"]
            want = [("plaintext", 16, True, everyone), ("plaintext", 64, True, everyone),
                    ("churn", 64, True, ["epoll", "poll", "nginx"])]
            # no idle=0 point: the one of 1000 measures without them as well
            want += [("idle", k, False, [n]) for k in (100, 1000) for n in everyone]
            want += [("delay", 100, True, ["epoll", "poll"])]
            self.assertEqual(got, want)  # memory is read at the idle points
            paired = [(p["param"], m.get("paired")) for p in points for m in p["members"]
                      if p["workload"] == "idle"]
            self.assertEqual(paired, [(100, False)] * 4 + [(1000, True)] * 4)
            self.assertEqual(runner.paired_idle("idle", [0, 1000]), 1000)
            for params in ([0], [1000], [100, 1000]):
                self.assertIsNone(runner.paired_idle("idle", params), params)
            self.assertIsNone(runner.paired_idle("memory", [0, 1000]))
            churn = points[2]
            self.assertTrue(all(m["hyperfine"] for m in churn["members"]))
            for p in points:
                self.assertAlmostEqual(p["est_s"], sum(m["est_s"] for m in p["members"]))
            alone = runner.make_plan(specs, Ctx(tmp, ("memory",), idle=[0, 1000]))
            self.assertEqual([(p["workload"], p["rounds"], len(p["members"])) for p in alone],
                             [("memory", False, 1)] * 4)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class Busy:
    """A server whose CPU ticks advance `busy` reads, then stay; the CPUs it
    is pinned to (if `core_busy` is given) stay busy for that many reads,
    with the server itself quiet: another process's leftover work."""

    def __init__(self, busy, core_busy=None):
        self.reads, self.busy, self.core_busy, self.core_reads = 0, busy, core_busy, 0

    def cpu_ticks(self):
        self.reads += 1
        return min(self.reads, self.busy), 0

    def core_ticks(self):
        if self.core_busy is None:
            return None
        self.core_reads += 1
        return 5 * min(self.core_reads, self.core_busy)

    def alive(self):
        return True


class Settle(unittest.TestCase):
    def test_waits_for_the_tail_of_a_trial(self):
        srv = Busy(4)
        runner.settle(srv)
        self.assertEqual(srv.reads, 5)  # 4 busy reads, then one quiet interval

    def test_waits_for_its_cpus_to_go_idle(self):
        srv = Busy(1, core_busy=5)
        runner.settle(srv)
        self.assertEqual(srv.core_reads, 6)  # the server is quiet; its CPU is not

    def test_gives_up_on_a_server_that_stays_busy(self):
        srv, limit = Busy(10 ** 9), runner.SETTLE_MAX_S
        runner.SETTLE_MAX_S = 0.3
        try:
            t0 = time.monotonic()
            runner.settle(srv)
            self.assertLess(time.monotonic() - t0, 1.0)
        finally:
            runner.SETTLE_MAX_S = limit


class WithServers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test-rounds-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def point(self, names, trials=3):
        ctx = Ctx(self.tmp, ("plaintext",), trials=trials)
        specs = [spec(n) for n in names]
        (point,) = runner.make_plan(specs, ctx)
        return ctx, point

    def test_trials_interleave_and_idle_points_do_not(self):
        ctx = Ctx(self.tmp, ("plaintext", "idle", "memory"))
        shown = io.StringIO()
        with Recorder() as rec, contextlib.redirect_stdout(shown):
            runner.run_plan(runner.make_plan([spec("epoll"), spec("poll")], ctx), ctx)
        self.assertEqual(rec.order, [("epoll", 1), ("poll", 1), ("poll", 2), ("epoll", 2),
                                     ("epoll", 3), ("poll", 3),
                                     ("epoll", 1), ("epoll", 2), ("epoll", 3),
                                     ("poll", 1), ("poll", 2), ("poll", 3)])
        # results.json keeps each server's rows together, in trial order.
        self.assertEqual([(r["backend"], r["workload"], r["trial"]) for r in ctx.results.rows],
                         [("epoll", "plaintext", t) for t in (1, 2, 3)] +
                         [("poll", "plaintext", t) for t in (1, 2, 3)] +
                         [("epoll", "idle", t) for t in (1, 2, 3)] + [("epoll", "memory", 1)] +
                         [("poll", "idle", t) for t in (1, 2, 3)] + [("poll", "memory", 1)])
        for r in ctx.results.rows:
            if r["workload"] != "memory":
                self.assertGreater(r["rps"] or 0, 0, r.get("error"))
            self.assertNotIn("failed", r["flags"])
        # Progress: the point in rounds, its rounds as they end, then one
        # line per server; each point of one server on one line.
        lines = shown.getvalue().splitlines()
        self.assertRegex(lines[0], r"^bench: 3 points, 4 server runs, about \d+s$")
        self.assertRegex(lines[1], r"^\[  1/3\] +\d+s left  plaintext conns=8 +"
                                   r"2 servers, round 1 2 3$")
        for line, name in zip(lines[2:4], ("epoll", "poll")):
            self.assertRegex(line, r"^ {20,}%s +\d+ req/s" % name)
        for line, name in zip(lines[4:6], ("epoll", "poll")):
            self.assertRegex(line, r"^\[  [23]/3\] +\d+s left  %s +idle +idle=50 +\d+ "
                                   r"req/s .* B/conn" % name)
        self.assertEqual(len(lines), 6, lines)
        # The server waiting its turn spends no CPU while the other is loaded
        # (a tick is 10 ms; the loaded one spends some 300 ms a trial).
        self.assertTrue(rec.idle_ticks, "no reading of a waiting server")
        self.assertLessEqual(max(rec.idle_ticks), 1, rec.idle_ticks)

    def test_the_paired_idle_point_takes_turns(self):
        """With and without the idle connections, one server process, the
        order swapped trial by trial; each trial sees what it claims (the
        server's own count of open connections, /stats among them)."""
        ctx = Ctx(self.tmp, ("idle", "memory"), idle=[0, 50])
        seen = []

        def before(name, trial, servers):
            stats = load.stats_snapshot(servers[name].port)
            seen.append((trial, stats["connections"]["active"] - 1))

        shown = io.StringIO()
        with Recorder(before), contextlib.redirect_stdout(shown):
            runner.run_plan(runner.make_plan([spec("epoll")], ctx), ctx)
        self.assertEqual(seen, [(1, 50), (1, 0), (2, 0), (2, 50), (3, 50), (3, 0)])
        got = [(r["workload"], r["param"], r["trial"]) for r in ctx.results.rows]
        self.assertEqual(got, [("idle", 50, 1), ("idle", 0, 1), ("idle", 0, 2), ("idle", 50, 2),
                               ("idle", 50, 3), ("idle", 0, 3), ("memory", 50, 1)])
        for r in ctx.results.rows:
            self.assertNotIn("failed", r["flags"], r.get("error"))
            if r["workload"] == "idle":
                self.assertGreater(r["rps"] or 0, 0)
        lines = shown.getvalue().splitlines()
        self.assertRegex(lines[-1], r"idle=50 +\d+ req/s .* B/conn.*; without: \d+ req/s")

    def test_the_paired_idle_point_when_opening_again_fails(self):
        """The K connections cannot be opened a second time: that trial gets
        a failed row with the reason, the point ends there, and every row
        measured so far is kept, the memory reading too."""
        ctx = Ctx(self.tmp, ("idle", "memory"), idle=[0, 50])
        (point,) = runner.make_plan([spec("epoll")], ctx)
        real, calls = runner.open_holder, []

        def second_fails(ctx_, srv, k):
            calls.append(k)
            if len(calls) == 2:
                return None, "idle_holder could not open %d connections: test" % k
            return real(ctx_, srv, k)

        runner.open_holder = second_fails
        try:
            rows = runner.run_point(point, ctx)["epoll"]
        finally:
            runner.open_holder = real
        got = [(r["workload"], r["param"], r["trial"], "failed" in r["flags"])
               for r in rows]
        self.assertEqual(got, [("idle", 50, 1, False), ("idle", 0, 1, False),
                               ("idle", 0, 2, False), ("idle", 50, 2, True),
                               ("memory", 50, 1, False)])
        self.assertIn("could not open 50 connections", rows[3]["error"])
        self.assertEqual(calls, [50, 50])

    def test_a_server_that_does_not_start_is_left_out(self):
        bad = os.path.join(self.tmp, "server-unavailable")
        with open(bad, "w") as f:
            f.write("#!/bin/sh\necho 'not available here' >&2\nexit 3\n")
        os.chmod(bad, 0o755)
        ctx = Ctx(self.tmp, ("plaintext",))
        specs = [spec("epoll"), dict(spec("unavailable"), argv=[bad]), spec("poll")]
        (point,) = runner.make_plan(specs, ctx)
        with Recorder() as rec:
            per = runner.run_point(point, ctx)
        (failed,) = per["unavailable"]
        self.assertIn("failed", failed["flags"])
        self.assertIn("server did not start", failed["error"])
        self.assertIn("exit code 3", failed["error"])
        self.assertEqual(rec.order, [("epoll", 1), ("poll", 1), ("poll", 2), ("epoll", 2),
                                     ("epoll", 3), ("poll", 3)])
        for name in ("epoll", "poll"):
            self.assertEqual(trials_of(per[name]), [1, 2, 3])
            self.assertTrue(all((r["rps"] or 0) > 0 for r in per[name]), per[name])

    def test_a_trial_that_shares_its_cpu_is_flagged(self):
        """A process spinning on the server's CPU during the trials: each row
        says how much of the CPU it took and carries cpu-contended. Without
        it, no row does."""
        if len(os.sched_getaffinity(0)) < 2:
            self.fail("needs 2 CPUs: the server pinned to one, wrk to the other")
        cpus = sorted(os.sched_getaffinity(0))
        ctx = Ctx(self.tmp, ("plaintext",), trials=2, duration=1.0)
        ctx.server_cpus, ctx.client_cpus = str(cpus[0]), str(cpus[1])
        ctx.server_ncpus = 1
        (point,) = runner.make_plan([spec("epoll")], ctx)
        hog = subprocess.Popen(["taskset", "-c", ctx.server_cpus, "sh", "-c",
                                "while :; do :; done"])
        try:
            contended = runner.run_point(point, ctx)["epoll"]
        finally:
            hog.kill()
            hog.wait()
        alone = runner.run_point(point, ctx)["epoll"]
        for r in contended:
            self.assertIn("cpu-contended", r["flags"])
            self.assertGreater(r["server_cpu"]["other_util"], 0.2, r["server_cpu"])
        for r in alone:  # what is left is noise: kernel threads, the readings' timing
            self.assertNotIn("cpu-contended", r["flags"], r["server_cpu"])
            self.assertLess(r["server_cpu"]["other_util"], 0.2, r["server_cpu"])
            self.assertGreater(r["rps"] or 0, 0)

    def test_the_harness_works_on_the_client_cpus(self):
        """While a point runs, the harness itself is pinned to the client's
        CPUs (its bookkeeping would otherwise count against the server's);
        afterwards it gets its CPUs back."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            self.fail("needs 2 CPUs: the server pinned to one, wrk to the other")
        ctx, point = self.point(["epoll", "poll"], trials=1)
        ctx.server_cpus, ctx.client_cpus, ctx.server_ncpus = str(cpus[0]), str(cpus[1]), 1
        seen = []
        with Recorder(lambda name, trial, servers: seen.append(os.sched_getaffinity(0))):
            per = runner.run_point(point, ctx)
        self.assertEqual(seen, [{cpus[1]}, {cpus[1]}])
        self.assertEqual(sorted(os.sched_getaffinity(0)), cpus)
        self.assertTrue(all(r["rps"] for rows in per.values() for r in rows), per)

    def kill(self, victim, at):
        """A before() hook that kills `victim` when trial `at` is due."""
        def before(name, trial, seen):
            if (name, trial) == at:
                seen[victim].proc.send_signal(signal.SIGKILL)
                seen[victim].proc.wait()
        return before

    def test_a_server_that_dies_in_its_trial(self):
        ctx, point = self.point(["epoll", "poll"])
        with Recorder(self.kill("poll", ("poll", 2))) as rec:
            per = runner.run_point(point, ctx)
        self.assertEqual(rec.order, [("epoll", 1), ("poll", 1), ("poll", 2), ("epoll", 2),
                                     ("epoll", 3)])
        poll = per["poll"]
        self.assertEqual(trials_of(poll), [1, 2])
        self.assertGreater(poll[0]["rps"] or 0, 0)
        self.assertIsNone(poll[1]["rps"])
        for flag in ("failed", "server-died", "server-exit--9"):
            self.assertIn(flag, poll[1]["flags"])
        self.assertEqual(trials_of(per["epoll"]), [1, 2, 3])
        for r in per["epoll"]:
            self.assertGreater(r["rps"] or 0, 0)
            self.assertFalse({"failed", "server-died"} & set(r["flags"]), r["flags"])

    def test_a_server_that_dies_waiting_its_turn(self):
        ctx, point = self.point(["epoll", "poll"])
        # round 3 starts with epoll: poll dies while epoll has its trial
        with Recorder(self.kill("poll", ("epoll", 3))) as rec:
            per = runner.run_point(point, ctx)
        self.assertEqual(rec.order, [("epoll", 1), ("poll", 1), ("poll", 2), ("epoll", 2),
                                     ("epoll", 3)])
        poll = per["poll"]
        self.assertEqual(trials_of(poll), [1, 2])
        self.assertTrue(all((r["rps"] or 0) > 0 for r in poll))  # measured before it died
        self.assertNotIn("server-died", poll[0]["flags"])
        self.assertIn("server-died", poll[1]["flags"])
        self.assertIn("server-exit--9", poll[1]["flags"])
        self.assertEqual(trials_of(per["epoll"]), [1, 2, 3])

    def test_an_interruption_stops_every_server(self):
        ctx, point = self.point(["epoll", "poll"])

        def before(name, trial, seen):
            if (name, trial) == ("poll", 2):
                raise KeyboardInterrupt

        with Recorder(before) as rec:
            with self.assertRaises(KeyboardInterrupt):
                runner.run_point(point, ctx)
        self.assertEqual(sorted(rec.servers), ["epoll", "poll"])
        for name, srv in rec.servers.items():
            self.assertIsNotNone(srv.proc.poll(), name + " still running")
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


if __name__ == "__main__":
    unittest.main()
