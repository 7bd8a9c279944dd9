"""test_compare.py - unit tests of scripts/compare.py: two small synthetic
runs, built as test_targets.py builds one, compared row by row.

Run by `make test-harness` (or: python3 -m unittest harness/test_compare.py).
Plain Python 3.
"""

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))

import compare  # noqa: E402
from test_targets import doc_of, trials  # noqa: E402

STATIC = 1048576
UP = [2000, 2010, 2020, 2030, 2040]      # above nginx in every trial: settled
NGINX = [1800, 1810, 1820, 1830, 1840]
DOWN = [1600, 1610, 1620, 1630, 1640]    # below in every trial: settled
MIXED = [1700, 1790, 1850, 1900, 1950]   # straddles nginx: within noise
MIXED_LOW = [1700, 1750, 1800, 1900, 1950]


def run(epoll, io_uring, with_idle=True):
    rows = trials("nginx", "static", STATIC, NGINX)
    rows += trials("epoll", "static", STATIC, epoll)
    rows += trials("io_uring", "static", STATIC, io_uring)
    if with_idle:
        rows += trials("epoll", "idle", 0, [1e5] * 5) + trials("epoll", "idle", 10000, [9e4] * 5)
    doc = doc_of(rows)
    doc["env"] = {"git_revision": "abc123", "date_utc": "2026-01-01T00:00:00Z"}
    return doc


class Compare(unittest.TestCase):
    def test_counts_and_the_rows_that_turned(self):
        a = compare.verdicts(run(UP, MIXED))
        b = compare.verdicts(run(DOWN, MIXED_LOW))
        keys, n = compare.agreement(a, b)
        epoll = ("5. Static 1 MiB: epoll vs nginx", "64 conns")
        io_uring = ("5. Static 1 MiB: io_uring vs nginx", "64 conns")
        idle = ("4. Idle: epoll with vs without idle", "10,000 idle + 64 busy")
        self.assertEqual(keys, [idle, epoll, io_uring])
        self.assertEqual((a[io_uring]["status"], b[io_uring]["status"]), ("met", "not met"))
        self.assertEqual(n["rows"], 3)
        self.assertEqual(n["same"], 1)                 # the idle row
        self.assertEqual(n["turned"], [epoll, io_uring])
        self.assertEqual(n["turned_settled"], [epoll])  # settled on both sides, opposite
        self.assertEqual((n["settled_a"], n["settled_a_same"]), (2, 1))
        self.assertEqual((n["settled_b"], n["settled_b_same"]), (2, 1))

    def test_report_lines(self):
        lines = compare.report("x", "y", run(UP, MIXED), run(DOWN, MIXED_LOW, with_idle=False))
        text = "\n".join(lines)
        self.assertIn("A: x (revision abc123, 2026-01-01T00:00:00Z, up to 5 trials a point)",
                      text)
        self.assertIn("| 5. Static 1 MiB: epoll vs nginx | 64 conns | 1.11 met, settled "
                      "(p=0.008) | 0.89 not met, settled (p=0.008) | **turned** |", text)
        self.assertIn("Same verdict on 0 of the 2 rows measured in both.", text)
        self.assertIn("Turned although one run called them settled:\n"
                      "- 5. Static 1 MiB: epoll vs nginx, 64 conns:", text)
        self.assertIn("1 row measured in one run only (not compared).", text)
        same = compare.report("x", "x", run(UP, MIXED), run(UP, MIXED))
        self.assertIn("Same verdict on 3 of the 3 rows measured in both.", same)
        self.assertFalse([line for line in same if "turned" in line.lower()])

    def test_folders_and_usage(self):
        tmp = tempfile.mkdtemp(prefix="test-compare-")
        try:
            for name in ("a", "b"):
                os.mkdir(os.path.join(tmp, name))
                with open(os.path.join(tmp, name, "results.json"), "w") as f:
                    json.dump(run(UP, MIXED), f)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = compare.main([os.path.join(tmp, "a"), os.path.join(tmp, "b")])
            self.assertEqual(code, 0)
            self.assertIn("Same verdict on 3 of the 3 rows", out.getvalue())
            with self.assertRaises(SystemExit) as e:
                compare.load_run(os.path.join(tmp, "missing"))
            self.assertIn("cannot read", str(e.exception.code))
            with contextlib.redirect_stderr(io.StringIO()) as err:
                self.assertEqual(compare.main([tmp]), 2)
            self.assertIn("usage", err.getvalue())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
