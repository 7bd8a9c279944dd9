"""test_targets.py - unit tests of the Targets computation (targets.py) on
small synthetic results, built row by row and aggregated by results.py as a
real run is: a met, a not-met, a missing and a flagged point, the choice of
the best backend, and the rule that a ratio is of medians of the trials.

Run by `make test-harness` (or: python3 -m unittest harness/test_targets.py).
Plain Python 3.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import results  # noqa: E402
import targets  # noqa: E402
import workloads as wl  # noqa: E402

KINDS = {"floor": "reference", "nginx": "reference", "h2o": "reference",
         "kqueue": "emulated", "iocp-wine": "wine"}


def row(backend, workload, param, rps, cpu=(1.0, 9.0), p99=1000, flags=(), trial=1,
        tool=None, errors=0):
    """One trial row, shaped as runner.measure_trial writes it (by default with
    the workload's own load tool, as a run has it)."""
    flags = list(flags) + (["emulated"] if backend == "kqueue" else [])
    tool = tool or wl.load_tool(workload)
    return {"backend": backend, "label": backend, "kind": KINDS.get(backend, "native"),
            "workload": workload, "param": param, "conns": param, "tool": tool,
            "trial": trial, "rps": rps, "flags": flags,
            "latency_us": {"p50": p99 / 2, "p99": p99},
            "server_cpu": {"user_us_per_req": cpu[0], "sys_us_per_req": cpu[1]},
            "client_cpu": {"util": 0.95 if "client-bound" in flags else 0.5,
                           "bound": "client-bound" in flags},
            "errors": {"connect": errors}}


def trials(backend, workload, param, values, **kw):
    """Three trials (or as many as values) of one point."""
    return [row(backend, workload, param, v, trial=i + 1, **kw) for i, v in enumerate(values)]


def memory_row(backend, k, bytes_per_conn, flags=()):
    return {"backend": backend, "label": backend, "kind": KINDS.get(backend, "native"),
            "workload": "memory", "param": k, "conns": k, "tool": "rss", "trial": 1,
            "rps": None, "flags": list(flags),
            "server_mem": {"rss_before_kb": 2000, "rss_kb": 2000 + bytes_per_conn * k / 1024,
                           "bytes_per_conn": bytes_per_conn}}


def doc_of(rows):
    return {"rows": rows, "aggregates": results.aggregate(rows)}


def find(out, target, point=None):
    hits = [r for r in out if r["target"] == target and (point is None or r["point"] == point)]
    assert len(hits) == 1, (target, point, [r["target"] for r in out])
    return hits[0]


class CpuTargets(unittest.TestCase):
    def setUp(self):
        rows = []
        # epoll: 10 us per request at 64 conns; the floor 9.5 us: 1.05x, met.
        rows += trials("epoll", "plaintext", 64, [90e3, 95e3, 100e3], cpu=(1.0, 9.0))
        rows += trials("floor", "plaintext", 64, [99e3, 100e3, 101e3], cpu=(0.5, 9.0))
        # At 1024 the floor is much cheaper: 10 / 8 = 1.25x, not met.
        rows += trials("epoll", "plaintext", 1024, [50e3] * 3, cpu=(2.0, 8.0))
        rows += trials("floor", "plaintext", 1024, [60e3] * 3, cpu=(0.5, 7.5),
                       flags=["client-bound"])
        rows += trials("nginx", "plaintext", 64, [60e3] * 3, cpu=(3.0, 12.0))
        # io_uring at 64: 9 us against epoll's 10: exactly 0.90, met (<=).
        rows += trials("io_uring", "plaintext", 64, [80e3] * 3, cpu=(1.0, 8.0))
        self.out = targets.evaluate(doc_of(rows))

    def test_met_against_the_floor(self):
        r = find(self.out, "1. CPU/request: epoll vs the floor", "plaintext, 64 conns")
        self.assertEqual(r["status"], targets.MET)
        self.assertAlmostEqual(r["ratio"], 10.0 / 9.5)
        self.assertIn("epoll 10.00 us", r["figures"])
        self.assertIn("floor 9.50 us", r["figures"])
        self.assertEqual(r["flags"], "")

    def test_not_met_and_flagged(self):
        r = find(self.out, "1. CPU/request: epoll vs the floor", "plaintext, 1024 conns")
        self.assertEqual(r["status"], targets.NOT_MET)
        self.assertAlmostEqual(r["ratio"], 1.25)
        self.assertEqual(r["flags"], "floor: client-bound")

    def test_missing_reference_is_not_measured(self):
        r = find(self.out, "1. CPU/request: epoll vs h2o", "plaintext, 64 conns")
        self.assertEqual(r["status"], targets.MISSING)
        self.assertIsNone(r["ratio"])
        self.assertIn("h2o not measured", r["figures"])
        # A point the run never swept (256) is not measured either.
        r = find(self.out, "1. CPU/request: epoll vs the floor", "plaintext, 256 conns")
        self.assertEqual(r["status"], targets.MISSING)

    def test_strictly_below_and_at_the_limit(self):
        r = find(self.out, "1. CPU/request: epoll vs nginx", "plaintext, 64 conns")
        self.assertEqual(r["status"], targets.MET)
        self.assertAlmostEqual(r["ratio"], 10.0 / 15.0)
        r = find(self.out, "1. CPU/request: io_uring vs epoll", "plaintext, 64 conns")
        self.assertAlmostEqual(r["ratio"], 0.9)
        self.assertEqual(r["status"], targets.MET)

    def test_cpu_is_the_median_of_each_trials_sum(self):
        rows = [row("epoll", "plaintext", 64, 1e5, cpu=c, trial=i)
                for i, c in enumerate([(1.0, 9.0), (5.0, 5.0), (0.0, 30.0)], 1)]
        rows += trials("floor", "plaintext", 64, [1e5] * 3, cpu=(1.0, 9.0))
        r = find(targets.evaluate(doc_of(rows)), "1. CPU/request: epoll vs the floor",
                 "plaintext, 64 conns")
        self.assertAlmostEqual(r["ratio"], 1.0)  # sums 10, 10, 30: median 10


class OtherTargets(unittest.TestCase):
    def test_pipeline_best_backend_skips_wine_and_errors(self):
        rows = []
        rows += trials("epoll", "pipeline", 64, [700e3] * 3)
        rows += trials("poll", "pipeline", 64, [900e3] * 3, errors=5, flags=["errors"])
        rows += trials("iocp-wine", "pipeline", 64, [2e6] * 3, flags=["under-wine"])
        rows += trials("floor", "pipeline", 64, [1e6] * 3)
        r = find(targets.evaluate(doc_of(rows)), "2. Pipelined x16: best backend vs the floor")
        self.assertIn("epoll 700,000 req/s", r["figures"])
        self.assertAlmostEqual(r["ratio"], 0.7)
        self.assertEqual(r["status"], targets.NOT_MET)

    def test_pipeline_not_measured_without_the_floor(self):
        rows = trials("epoll", "pipeline", 256, [700e3] * 3)  # 256, not the target's 64
        r = find(targets.evaluate(doc_of(rows)), "2. Pipelined x16: best backend vs the floor")
        self.assertEqual(r["status"], targets.MISSING)

    def test_throughput_and_p99(self):
        rows = []
        rows += trials("kqueue", "plaintext", 256, [70e3] * 3, p99=2000)
        rows += trials("nginx", "plaintext", 256, [60e3] * 3, p99=1500)
        rows += trials("h2o", "plaintext", 256, [80e3, 80e3], p99=1500)  # two trials only
        out = targets.evaluate(doc_of(rows))
        r = find(out, "3. Throughput: kqueue vs nginx", "plaintext, 256 conns")
        self.assertEqual(r["status"], targets.MET)
        self.assertIn("kqueue: emulated", r["flags"])
        r = find(out, "3. Throughput: kqueue vs h2o", "plaintext, 256 conns")
        self.assertEqual(r["status"], targets.NOT_MET)
        self.assertIn("h2o: 2 trials", r["flags"])
        r = find(out, "3. p99 latency: kqueue vs nginx", "plaintext, 256 conns")
        self.assertEqual(r["status"], targets.NOT_MET)
        self.assertIn("2.00 ms", r["figures"])
        r = find(out, "3. Throughput: io_uring vs nginx", "plaintext, 256 conns")
        self.assertEqual(r["status"], targets.MISSING)

    def test_floor_context_beside_target_3(self):
        rows = []
        rows += trials("floor", "plaintext", 64, [90e3, 91e3, 92e3], flags=["client-bound"])
        rows += trials("nginx", "plaintext", 64, [99e3, 100e3, 101e3], flags=["client-bound"])
        rows += trials("floor", "plaintext", 1024, [50e3] * 3)
        out = targets.floor_context(doc_of(rows))
        self.assertEqual([r["point"] for r in out],
                         ["plaintext, %d conns" % c for c in targets.THROUGHPUT_CONNS])
        r = out[0]
        self.assertEqual(r["status"], targets.NOT_MET)
        self.assertAlmostEqual(r["ratio"], 91e3 / 100e3)
        self.assertIn("floor: client-bound", r["flags"])
        self.assertEqual(out[2]["status"], targets.MISSING)  # no nginx at 1024
        # Context only: no target row comes from it.
        self.assertFalse([t for t in targets.evaluate(doc_of(rows))
                          if t["target"] == "the floor vs nginx"])

    def test_idle_memory_and_static(self):
        rows = []
        rows += trials("epoll", "idle", 0, [100e3] * 3)
        rows += trials("epoll", "idle", 10000, [85e3] * 3)
        rows += trials("io_uring", "idle", 0, [100e3] * 3)
        rows += trials("io_uring", "idle", 10000, [70e3] * 3)
        rows += [memory_row("epoll", 10000, 232), memory_row("io_uring", 10000, 300,
                                                              ["idle-closed"])]
        rows += trials("epoll", "static", 1048576, [2000] * 3)
        rows += trials("nginx", "static", 1048576, [1500] * 3)
        out = targets.evaluate(doc_of(rows))
        self.assertEqual(find(out, "4. Idle: epoll with vs without idle")["status"],
                         targets.MET)
        r = find(out, "4. Idle: io_uring with vs without idle")
        self.assertEqual(r["status"], targets.NOT_MET)
        self.assertIn("io_uring (no idle) 100,000 req/s", r["figures"])
        self.assertEqual(find(out, "4. Memory per idle connection: epoll")["status"],
                         targets.MET)
        r = find(out, "4. Memory per idle connection: io_uring")
        self.assertEqual(r["status"], targets.NOT_MET)
        self.assertEqual(r["flags"], "io_uring: idle-closed")
        self.assertEqual(find(out, "5. Static 1 MiB: epoll vs nginx")["status"], targets.MET)
        self.assertEqual(find(out, "5. Static 1 MiB: io_uring vs nginx")["status"],
                         targets.MISSING)

    def test_static_is_read_from_its_own_tool(self):
        # Static rows come from discard_client; rows of another tool are not used.
        rows = trials("epoll", "static", 1048576, [2000] * 3, tool="wrk")
        rows += trials("nginx", "static", 1048576, [1500] * 3)
        r = find(targets.evaluate(doc_of(rows)), "5. Static 1 MiB: epoll vs nginx")
        self.assertEqual(r["status"], targets.MISSING)
        self.assertEqual(wl.load_tool("static"), "discard_client")

    def test_failed_point_is_not_measured(self):
        rows = [dict(row("epoll", "static", 1048576, None), flags=["failed"])]
        rows += trials("nginx", "static", 1048576, [1500] * 3)
        r = find(targets.evaluate(doc_of(rows)), "5. Static 1 MiB: epoll vs nginx")
        self.assertEqual(r["status"], targets.MISSING)
        self.assertIn("epoll: failed", r["flags"])

    def test_empty_run_and_counts(self):
        out = targets.evaluate({"rows": [], "aggregates": []})
        self.assertTrue(out)
        self.assertTrue(all(r["status"] == targets.MISSING for r in out))
        c = targets.counts(out)
        self.assertEqual((c[targets.MET], c[targets.NOT_MET], c["flagged"]), (0, 0, 0))

    def test_ratio_text_never_rounds_onto_the_limit(self):
        self.assertEqual(targets.ratio_text({"ratio": 0.8996, "goal": "<= 0.90"}), "0.8996")
        self.assertEqual(targets.ratio_text({"ratio": 0.9004, "goal": "<= 0.90"}), "0.9004")
        self.assertEqual(targets.ratio_text({"ratio": 0.99991, "goal": ">= 1.00"}), "0.9999")
        self.assertEqual(targets.ratio_text({"ratio": 1.2345, "goal": ">= 1.00"}), "1.23")
        self.assertEqual(targets.ratio_text({"ratio": None, "goal": ">= 1.00"}), "-")


class Noise(unittest.TestCase):
    """Whether a row's trials settle it (mann_whitney_p, noise_test)."""

    def test_exact_p_values(self):
        p = targets.mann_whitney_p
        self.assertAlmostEqual(p([10, 11, 12, 13, 14], [1, 2, 3, 4, 5]), 2 / 252)
        self.assertAlmostEqual(p([1, 2, 3, 4, 5], [10, 11, 12, 13, 14]), 2 / 252)
        self.assertAlmostEqual(p([4, 5, 6], [1, 2, 3]), 0.1)  # 3 a side: never below 0.1
        self.assertAlmostEqual(p([1, 2, 3], [1, 2, 3]), 1.0)
        self.assertGreater(p([1, 3, 5, 7, 9], [2, 4, 6, 8, 10]), 0.5)  # interleaved
        self.assertIsNone(p([], [1, 2]))
        self.assertIsNone(p(list(range(11)), list(range(10))))  # too many to enumerate

    def test_smallest_p_is_a_clean_split(self):
        for n in (3, 5, 7):
            low, high = list(range(n)), list(range(100, 100 + n))
            self.assertAlmostEqual(targets.smallest_p(n), targets.mann_whitney_p(high, low))
        self.assertAlmostEqual(targets.smallest_p(7), 2 / 3432)

    def test_rows_settled_or_within_noise(self):
        rows = []
        # epoll above nginx in every trial: met, settled.
        rows += trials("epoll", "static", 1048576, [2000, 2010, 2020, 2030, 2040])
        rows += trials("nginx", "static", 1048576, [1800, 1810, 1820, 1830, 1840])
        # io_uring's median is above nginx's, but its trials straddle nginx's: within noise.
        rows += trials("io_uring", "static", 1048576, [1700, 1790, 1850, 1900, 1950])
        out = targets.evaluate(doc_of(rows))
        r = find(out, "5. Static 1 MiB: epoll vs nginx")
        self.assertEqual(r["status"], targets.MET)
        self.assertAlmostEqual(r["p"], 2 / 252)
        self.assertEqual(targets.noise_text(r), "settled (p=0.008)")
        r = find(out, "5. Static 1 MiB: io_uring vs nginx")
        self.assertEqual(r["status"], targets.MET)
        self.assertGreaterEqual(r["p"], targets.SETTLED_P)
        self.assertTrue(targets.noise_text(r).startswith("within noise"))
        c = targets.counts(out)
        self.assertEqual((c["met within noise"], c["not met within noise"]), (1, 0))

    def test_the_goal_scales_the_test(self):
        # io_uring at 0.85-0.89x epoll's CPU in every trial: below the 0.90 goal, settled;
        # at 0.95x it is below epoll but above the goal, and settled as not met.
        rows = trials("epoll", "plaintext", 64, [1e5] * 5, cpu=(1.0, 9.0))
        rows += [row("io_uring", "plaintext", 64, 1e5, cpu=(0.0, c), trial=i + 1)
                 for i, c in enumerate([8.5, 8.6, 8.7, 8.8, 8.9])]
        rows += [row("io_uring", "plaintext", 256, 1e5, cpu=(0.0, 9.5), trial=i + 1)
                 for i in range(5)]
        rows += trials("epoll", "plaintext", 256, [1e5] * 5, cpu=(1.0, 9.0))
        out = targets.evaluate(doc_of(rows))
        r = find(out, "1. CPU/request: io_uring vs epoll", "plaintext, 64 conns")
        self.assertEqual((r["status"], targets.noise_text(r)), (targets.MET, "settled (p=0.008)"))
        r = find(out, "1. CPU/request: io_uring vs epoll", "plaintext, 256 conns")
        self.assertEqual(r["status"], targets.NOT_MET)
        self.assertLess(r["p"], targets.SETTLED_P)

    def test_one_reading_is_not_tested(self):
        out = targets.evaluate(doc_of([memory_row("epoll", 10000, 232)]))
        r = find(out, "4. Memory per idle connection: epoll")
        self.assertEqual((r["status"], targets.noise_text(r)), (targets.MET, "-"))


if __name__ == "__main__":
    unittest.main()
