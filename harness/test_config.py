"""test_config.py - unit tests of the harness's settings: --workers and the
CPU lists reach every server the same way (our --workers, nginx's
worker_processes, h2o's num-threads), and the quick preset measures every
point the performance targets need.

Run by `make test-harness` (or: python3 -m unittest harness/test_config.py).
Plain Python 3; nothing is started.
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import bench  # noqa: E402
import envinfo  # noqa: E402
import servers  # noqa: E402
import targets  # noqa: E402
import workloads as wl  # noqa: E402


class Workers(unittest.TestCase):
    def test_flag_reaches_the_settings(self):
        self.assertEqual(bench.build_config(bench.parse_args([]))["workers"], 1)
        cfg = bench.build_config(bench.parse_args(["--workers", "2", "--server-cpus", "0,1"]))
        self.assertEqual(cfg["workers"], 2)

    def test_our_servers_get_workers_the_floor_does_not(self):
        ours = servers.Server({"name": "epoll", "argv": ["bin/server-epoll"]}, "/r", None,
                              "/tmp", workers=4)
        argv = ours.contract_argv()
        self.assertEqual(argv[argv.index("--workers") + 1], "4")
        self.assertEqual(argv[argv.index("--root") + 1], "/r")
        floor = servers.Server({"name": "floor", "argv": ["floor"]}, "/r", None, "/tmp",
                               workers=4)
        self.assertNotIn("--workers", floor.contract_argv())
        self.assertEqual(floor.workers, 1)

    def test_reference_configs_match_the_workers(self):
        with tempfile.TemporaryDirectory() as tmp:
            def conf(kind, n):
                servers.write_ref_config(kind, tmp, "/srv/root", 8081, n)
                with open(os.path.join(tmp, "reference", kind, kind + ".conf")) as f:
                    return f.read()
            one, two = conf("nginx", 1), conf("nginx", 2)
            self.assertIn("worker_processes 1;", one)
            self.assertIn("master_process off;", one)
            self.assertNotIn("reuseport", one)
            self.assertIn("worker_processes 2;", two)
            self.assertIn("master_process on;", two)
            self.assertIn("listen 127.0.0.1:8081 backlog=4096 reuseport;", two)
            self.assertIn("num-threads: 1\n", conf("h2o", 1))
            self.assertIn("num-threads: 3\n", conf("h2o", 3))
        # Only nginx with a master is a family of processes to sum over.
        fam = servers.Server({"name": "nginx", "ref": "nginx"}, "/r", None, "/tmp", 2)
        self.assertTrue(fam.family)
        self.assertFalse(servers.Server({"name": "nginx", "ref": "nginx"}, "/r", None,
                                        "/tmp", 1).family)

    def test_cpu_lists(self):
        self.assertEqual(servers.cpu_set("0,2-3"), {0, 2, 3})
        self.assertEqual(servers.cpu_set("1"), {1})
        self.assertRaises(ValueError, servers.cpu_set, "x")

    def test_make_passes_the_knobs(self):
        r = subprocess.run(["make", "-n", "-C", REPO, "bench-all", "WORKERS=2",
                            "SERVER_CPUS=0,1", "CLIENT_CPUS=0,1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        text = r.stdout.decode(errors="replace")
        line = [x for x in text.splitlines() if "harness/bench.py" in x]
        self.assertTrue(line, text[-500:])
        self.assertIn('--workers "2"', line[-1])
        self.assertIn('--server-cpus "0,1"', line[-1])
        self.assertIn('--client-cpus "0,1"', line[-1])

    def test_make_takes_the_knobs_from_the_environment(self):
        env = dict(os.environ, WORKERS="3", SERVER_CPUS="0-1", CLIENT_CPUS="1")
        r = subprocess.run(["make", "-n", "-C", REPO, "bench-all"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        line = [x for x in r.stdout.decode(errors="replace").splitlines()
                if "harness/bench.py" in x]
        self.assertTrue(line)
        for flag in ('--workers "3"', '--server-cpus "0-1"', '--client-cpus "1"'):
            self.assertIn(flag, line[-1])


class QuickPresetHasTheTargetsPoints(unittest.TestCase):
    def test_points(self):
        q = wl.PRESETS["quick"]
        for c in set(targets.CPU_CONNS) | set(targets.THROUGHPUT_CONNS):
            self.assertIn(c, q["conns"])
        self.assertIn(targets.PIPELINE_CONNS, q["pipeline_conns"])
        self.assertIn(targets.STATIC_BYTES, [n for _, n in wl.STATIC_FILES])
        self.assertIn(0, q["idle"])
        self.assertIn(targets.IDLE_K, q["idle"])


class RevisionStamp(unittest.TestCase):
    """env.json's git_revision: "-dirty" for changed source, not for a
    run written over a committed one under results/."""

    def test_results_do_not_make_it_dirty(self):
        with tempfile.TemporaryDirectory() as repo:
            def git(*argv):
                subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"]
                               + list(argv), check=True, stdout=subprocess.DEVNULL)
            git("init", "-q")
            os.makedirs(os.path.join(repo, "results", "reference"))
            for name in ("server.c", "results/reference/README.md"):
                with open(os.path.join(repo, name), "w") as f:
                    f.write("one\n")
            git("add", ".")
            git("commit", "-q", "-m", "x")
            clean = envinfo.git_revision(repo)
            self.assertRegex(clean, r"^[0-9a-f]{12}$")
            with open(os.path.join(repo, "results", "reference", "README.md"), "w") as f:
                f.write("a new run\n")
            self.assertEqual(envinfo.git_revision(repo), clean)
            with open(os.path.join(repo, "server.c"), "w") as f:
                f.write("two\n")
            self.assertEqual(envinfo.git_revision(repo), clean + "-dirty")


if __name__ == "__main__":
    unittest.main()
