"""test_parse.py - unit tests of parse.py on real captured outputs.

Every fixture in fixtures/ was captured from the real tool on this project's
servers (wrk 4.1 with wrk/report.lua, hyperfine 1.15 over ab, /proc of a
running bin/server-epoll and of a process whose name holds ") "). The
expected numbers below were read off those files by eye, not computed by
the code under test.

Run: python3 -m unittest discover -s harness -p 'test_*.py'
"""

import os
import unittest

import parse
import results

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


class WrkUnits(unittest.TestCase):
    def test_times(self):
        self.assertEqual(parse.wrk_time_us("52.00us"), 52.0)
        self.assertAlmostEqual(parse.wrk_time_us("1.13ms"), 1130.0)
        self.assertEqual(parse.wrk_time_us("1.02s"), 1020000.0)
        self.assertEqual(parse.wrk_time_us("2m"), 120e6)

    def test_metrics_and_sizes(self):
        self.assertAlmostEqual(parse.wrk_metric("28.19k"), 28190.0)
        self.assertAlmostEqual(parse.wrk_metric("1.5M"), 1.5e6)
        self.assertEqual(parse.wrk_bytes("2.00KB"), 2048)
        self.assertAlmostEqual(parse.wrk_bytes("5.80MB"), 5.8 * 1024 * 1024)

    def test_garbage_is_rejected(self):
        for bad in ("", "ms", "12 parsecs", "1.2.3ms"):
            with self.assertRaises(ValueError, msg=bad):
                parse.wrk_time_us(bad)


class WrkReports(unittest.TestCase):
    def test_plaintext_text_report(self):
        r = parse.parse_wrk_text(fixture("wrk_plaintext.txt"))
        self.assertEqual(r["requests"], 45762)
        self.assertAlmostEqual(r["rps"], 45620.17)
        self.assertAlmostEqual(r["duration_s"], 1.0)
        self.assertAlmostEqual(r["latency_us"]["p50"], 970.0)
        self.assertAlmostEqual(r["latency_us"]["p99"], 4730.0)
        self.assertAlmostEqual(r["latency_us"]["max"], 8990.0)
        self.assertEqual(sum(r["errors"].values()), 0)

    def test_report_lua_line_takes_precedence(self):
        r = parse.parse_wrk(fixture("wrk_plaintext.txt"))
        self.assertEqual(r["latency_source"], "report.lua")
        self.assertEqual(r["latency_us"]["p99_9"], 8755)
        self.assertEqual(r["latency_us"]["p50"], 974)
        self.assertEqual(r["latency_us"]["max"], 8994)
        self.assertAlmostEqual(r["duration_s"], 1.003109)
        self.assertAlmostEqual(r["rps"], 45762 / 1.003109)
        self.assertEqual(r["bytes"], 6086346)

    def test_non_2xx_counted(self):
        r = parse.parse_wrk(fixture("wrk_non2xx.txt"))
        self.assertEqual(r["errors"]["status"], 49034)
        self.assertEqual(parse.parse_wrk_text(fixture("wrk_non2xx.txt"))["errors"]["status"],
                         49034)

    def test_refused_connections_give_status_errors(self):
        r = parse.parse_wrk(fixture("wrk_errors.txt"))
        self.assertEqual(r["errors"]["status"], 8653)
        self.assertEqual(r["requests"], 9725)

    def test_socket_errors(self):
        text = fixture("wrk_socket_errors.txt")
        r = parse.parse_wrk_text(text)
        self.assertEqual(r["errors"], {"connect": 0, "read": 32, "write": 42560,
                                       "timeout": 0, "status": 0})
        self.assertEqual(parse.parse_wrk(text)["errors"]["write"], 42560)

    def test_all_timeouts_give_no_latency(self):
        r = parse.parse_wrk(fixture("wrk_timeouts.txt"))
        self.assertEqual(r["errors"]["timeout"], 16)
        # wrk's histogram is empty: no percentile may read as 0 us.
        for key in ("p50", "p99", "p99_9", "max", "min", "mean"):
            self.assertIsNone(r["latency_us"][key], key)

    def test_pipelined_percentiles_beyond_samples_are_none(self):
        r = parse.parse_wrk(fixture("wrk_pipeline.txt"))
        self.assertEqual(r["requests"], 500752)
        self.assertEqual(r["latency_us"]["p50"], 3894)
        self.assertIsNone(r["latency_us"]["p99"])
        self.assertIsNone(r["latency_us"]["p99_9"])

    def test_not_a_report(self):
        with self.assertRaises(ValueError):
            parse.parse_wrk("Usage: wrk <options> <url>\n")
        # What wrk prints when nothing listens on the port.
        with self.assertRaises(ValueError):
            parse.parse_wrk(fixture("wrk_connect_errors.txt"))
        self.assertIsNone(parse.parse_wrk_json("no tagged line\n"))


class Hyperfine(unittest.TestCase):
    def test_export_json(self):
        (r,) = parse.parse_hyperfine_json(fixture("hyperfine_churn.json"))
        self.assertTrue(r["command"].startswith("ab -q -n 500 -c 8 "))
        self.assertAlmostEqual(r["mean"], 0.08300436433333334)
        self.assertAlmostEqual(r["median"], 0.082734759)
        self.assertEqual(len(r["times"]), 3)
        self.assertEqual(r["exit_codes"], [0, 0, 0])
        self.assertAlmostEqual(r["user"] + r["system"], 0.009267333 + 0.044160333, places=6)


class Proc(unittest.TestCase):
    def test_stat_of_a_server(self):
        st = parse.parse_proc_stat(fixture("proc_stat_server.txt"))
        self.assertEqual(st["comm"], "server-epoll")
        self.assertEqual(st["pid"], 14852)
        self.assertEqual((st["utime"], st["stime"]), (26, 116))
        self.assertEqual(st["num_threads"], 2)
        self.assertEqual(st["rss"], 430)

    def test_stat_with_parenthesis_and_space_in_name(self):
        st = parse.parse_proc_stat(fixture("proc_stat_odd_comm.txt"))
        self.assertEqual(st["pid"], 15049)
        self.assertEqual(st["comm"], "odd) name")
        self.assertEqual(st["state"], "S")
        self.assertEqual((st["utime"], st["stime"]), (0, 0))
        self.assertEqual(st["num_threads"], 1)
        self.assertEqual(st["vsize"], 2990080)
        self.assertEqual(st["rss"], 399)

    def test_status_memory(self):
        st = parse.parse_proc_status(fixture("proc_status_server.txt"))
        self.assertEqual(st["VmHWM"], 1852)
        self.assertEqual(st["VmRSS"], 1852)
        self.assertEqual(st["Threads"], 2)
        self.assertNotIn("Name", st)


class ReadyLine(unittest.TestCase):
    def test_contract_line(self):
        self.assertEqual(
            parse.parse_listening_line("listening on http://127.0.0.1:40123 backend=epoll "
                                       "workers=1"), ("127.0.0.1", 40123, "epoll", 1))
        self.assertEqual(parse.parse_listening_line(
            "listening on http://[::1]:8080 backend=poll workers=4\n"), ("::1", 8080, "poll", 4))
        self.assertIsNone(parse.parse_listening_line("listening on port 8080"))


class Aggregates(unittest.TestCase):
    def row(self, trial, rps, flags=()):
        return {"backend": "epoll", "label": "epoll", "kind": "native",
                "workload": "plaintext", "param": 64, "conns": 64, "tool": "wrk",
                "trial": trial, "rps": rps, "flags": list(flags),
                "latency_us": {"p99": rps / 10}, "client_cpu": {"util": 0.95, "bound": True},
                "errors": {"read": 1 if flags else 0}}

    def test_median_spread_and_flags(self):
        (a,) = results.aggregate([self.row(1, 100.0), self.row(2, 300.0),
                                  self.row(3, 200.0, ["errors"])])
        self.assertEqual(a["rps"]["median"], 200.0)
        self.assertEqual((a["rps"]["min"], a["rps"]["max"]), (100.0, 300.0))
        self.assertEqual(a["latency_us"]["p99"], 20.0)
        self.assertEqual(a["errors"]["read"], 1)
        self.assertFalse(a["ok"])
        self.assertTrue(a["client_cpu"]["bound"])
        self.assertEqual(a["trials"], 3)

    def test_csv_row_flattens(self):
        flat = results.csv_row(self.row(1, 10.0, ["errors"]))
        self.assertEqual(set(flat), set(results.CSV_COLUMNS))
        self.assertEqual(flat["flags"], "errors")
        self.assertEqual(flat["lat_p99_us"], 1.0)


if __name__ == "__main__":
    unittest.main()
