#!/usr/bin/env python3
"""test_discard.py - tests of discard_client, the static workload's load
generator, and of its place in the harness.

What it is for: `make test-harness` runs these with the other unit tests
(test_harness.py lists them). The parser is tested on captured output; the
client itself against a real bin/server-epoll serving a known file (every
response counted, every byte accounted for, a 404 counted as an error and
not as a request), against a small Python server that splits its answers
at awkward places or leaves out Content-Length, and on its exit codes;
then a one-trial static bench must write discard_client rows.

Needs: make (bin/server-epoll, build/harness/discard_client). Plain Python 3.
Run:   python3 harness/test_discard.py
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import parse  # noqa: E402
import workloads as wl  # noqa: E402

CLIENT = os.path.join(REPO, "build", "harness", "discard_client")
SERVER = os.path.join(REPO, "bin", "server-epoll")

CAPTURED = ('{"tool": "discard_client", "requests": 3224, "duration_s": 1.000001, '
            '"bytes": 3382040180, "errors": {"connect": 0, "read": 1, "write": 0, '
            '"status": 2, "timeout": 0}, "latency_us": {"min": 960.912, "mean": 19603.232, '
            '"stdev": 2957.627, "max": 30099.741, "p50": 19529.728, "p75": 20316.160, '
            '"p90": 21626.880, "p99": 27656.192, "p99_9": 28966.912, "p99_99": 30015.488}}\n')


def run_client(port, path, conns=4, duration=1.0, extra=()):
    """Runs discard_client; returns (exit code, parsed result or None, stderr)."""
    argv = [CLIENT, "--port", str(port), "--path", path, "--conns", str(conns),
            "--duration", str(duration)] + list(extra)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=duration + 20)
    try:
        res = parse.parse_discard_json(p.stdout.decode())
    except ValueError:
        res = None
    return p.returncode, res, p.stderr.decode(errors="replace")


class ParseDiscard(unittest.TestCase):
    def test_captured_output(self):
        r = parse.parse_discard_json(CAPTURED)
        self.assertEqual(r["requests"], 3224)
        self.assertAlmostEqual(r["rps"], 3224 / 1.000001)
        self.assertEqual(r["bytes"], 3382040180)
        self.assertEqual(r["errors"], {"connect": 0, "read": 1, "write": 0, "status": 2,
                                       "timeout": 0})
        self.assertEqual(r["latency_us"]["p99_9"], 28966.912)
        self.assertEqual(r["latency_source"], "discard_client histogram")

    def test_no_request_means_no_latency(self):
        doc = json.loads(CAPTURED)
        doc["requests"] = 0
        r = parse.parse_discard_json(json.dumps(doc))
        self.assertTrue(all(v is None for v in r["latency_us"].values()))

    def test_not_its_output(self):
        for text in ("usage: discard_client --port PORT\n", '{"tool": "wrk"}\n',
                     '{"tool": "discard_client", "requests": 1}\n'):
            with self.assertRaises(ValueError):
                parse.parse_discard_json(text)

    def test_static_is_measured_with_it(self):
        self.assertEqual(wl.load_tool("static"), "discard_client")
        self.assertEqual(wl.load_tool("plaintext"), "wrk")


def start_server(root):
    p = subprocess.Popen([SERVER, "--port", "0", "--root", root], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    ready = parse.parse_listening_line(p.stdout.readline().decode().strip())
    if ready is None:
        p.kill()
        p.wait()
        raise RuntimeError("server-epoll gave no ready line")
    return p, ready[1]


def response_size(port, path):
    """Head plus body bytes of one answer, read the plain way."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head = data[:data.index(b"\r\n\r\n") + 4]
    length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
              if line.lower().startswith(b"content-length:")][0]
    s.close()
    return len(head) + length


class AgainstServer(unittest.TestCase):
    FILE_BYTES = 200003  # not a multiple of any buffer size

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="test-discard-")
        with open(os.path.join(cls.root, "f.bin"), "wb") as f:
            f.write(os.urandom(cls.FILE_BYTES))
        cls.proc, cls.port = start_server(cls.root)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(5)
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_counts_every_byte(self):
        size = response_size(self.port, "/static/f.bin")
        code, r, err = run_client(self.port, "/static/f.bin", conns=4, duration=1.0)
        self.assertEqual(code, 0, err)
        self.assertGreater(r["requests"], 0)
        self.assertEqual(sum(r["errors"].values()), 0, r["errors"])
        # In flight at the end: up to one partial answer per connection.
        self.assertGreaterEqual(r["bytes"], r["requests"] * size)
        self.assertLess(r["bytes"], (r["requests"] + 4) * size)
        self.assertGreater(r["duration_s"], 0.9)
        self.assertLess(r["duration_s"], 1.5)
        lat = r["latency_us"]
        self.assertTrue(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <=
                        lat["p99_9"] <= lat["max"], lat)
        self.assertTrue(lat["min"] <= lat["mean"] <= lat["max"], lat)

    def test_404_is_a_status_error(self):
        code, r, err = run_client(self.port, "/static/missing.bin", conns=2, duration=0.5)
        self.assertEqual(code, 0, err)
        self.assertEqual(r["requests"], 0)
        self.assertGreater(r["errors"]["status"], 0)
        self.assertEqual(r["errors"]["read"] + r["errors"]["connect"], 0, r["errors"])
        self.assertIsNone(r["latency_us"]["p50"])


class FakeServer:
    """Answers every request on every connection with `answer(n)` (a list of
    byte chunks sent with short pauses), n counting the answers."""

    def __init__(self, answer):
        self.answer, self.count = answer, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        deadline = time.monotonic() + 10
        while not self.stop and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.one, args=(c, deadline), daemon=True).start()

    def one(self, c, deadline):
        c.settimeout(1)
        try:
            while not self.stop and time.monotonic() < deadline:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.count += 1
                for part in self.answer(self.count):
                    c.sendall(part)
                    time.sleep(0.002)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def run_against(answer, conns=1, duration=0.3, extra=()):
    """run_client against a FakeServer answering with answer(n), closed after:
    (exit code, result, stderr, seconds the client took)."""
    srv = FakeServer(answer)
    try:
        t0 = time.monotonic()
        code, r, err = run_client(srv.port, "/x", conns=conns, duration=duration,
                                  extra=list(extra))
        return code, r, err, time.monotonic() - t0
    finally:
        srv.close()


class AgainstFakeServer(unittest.TestCase):
    def test_split_heads_and_bodies(self):
        body = b"x" * 70000
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\nX-Pad: abc\r\n\r\n"

        def answer(n):  # cut in the status line, in "\r\n\r\n", in the body
            cut = (5, len(head) - 2, len(head) + 10)[n % 3]
            whole = head + body
            return [whole[:cut], whole[cut:cut + 7], whole[cut + 7:]]
        code, r, err, _ = run_against(answer, conns=2, duration=0.6)
        self.assertEqual(code, 0, err)
        self.assertGreater(r["requests"], 3)
        self.assertEqual(sum(r["errors"].values()), 0, r["errors"])
        self.assertGreaterEqual(r["bytes"], r["requests"] * (len(head) + len(body)))

    def test_no_content_length_is_a_read_error(self):
        code, r, err, _ = run_against(lambda n: [b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nhello"])
        self.assertEqual(code, 0, err)
        self.assertEqual(r["requests"], 0)
        self.assertGreater(r["errors"]["read"], 0)

    def test_bytes_past_the_body_are_not_discarded(self):
        # The body and 5 stray bytes arrive in one segment after the head: a
        # discard not bounded by what is left of the body would swallow the
        # strays; bounded, they are read as the next head, which is wrong.
        code, r, err, _ = run_against(lambda n: [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", b"y" * 5000 + b"EXTRA"])
        self.assertEqual(code, 0, err)
        self.assertGreater(r["errors"]["read"], 0, r)

    def test_hung_server_is_a_timeout_and_the_run_ends(self):
        code, r, err, took = run_against(
            lambda n: [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], duration=1.0,
            extra=["--timeout", "0.3"])
        self.assertEqual(code, 0, err)
        self.assertLess(took, 3)
        self.assertEqual(r["requests"], 0)
        self.assertGreater(r["errors"]["timeout"], 0)


class ExitCodes(unittest.TestCase):
    def test_bad_flags_exit_2_with_usage(self):
        for argv in ([], ["--port", "80"], ["--port", "x", "--path", "/"],
                     ["--port", "80", "--path", "/", "--conns", "0"],
                     ["--port", "80", "--path", "/", "--bogus", "1"]):
            p = subprocess.run([CLIENT] + argv, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
            self.assertEqual(p.returncode, 2, argv)
            self.assertIn(b"usage", p.stderr)

    def test_nothing_listening_exits_1(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # bound, never listened: refused
        code, r, err = run_client(port, "/", conns=2, duration=0.3)
        self.assertEqual(code, 1, err)
        self.assertGreater(r["errors"]["connect"], 0)


class InTheBench(unittest.TestCase):
    def bench(self, out, tools_dir):
        argv = [sys.executable, os.path.join(HERE, "bench.py"), "--backends", "epoll",
                "--refs", "none", "--wine", "no", "--workloads", "static", "--duration",
                "0.5", "--trials", "1", "--warmup", "0.1", "--no-plots", "--out", out,
                "--tools-dir", tools_dir]
        subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        with open(os.path.join(out, "results.json")) as f:
            return json.load(f)["rows"]

    def test_static_rows_come_from_discard_client(self):
        tmp = tempfile.mkdtemp(prefix="test-discard-bench-")
        try:
            rows = self.bench(os.path.join(tmp, "run"), os.path.dirname(CLIENT))
            self.assertEqual(sorted(r["param"] for r in rows),
                             sorted(size for _, size in wl.STATIC_FILES))
            for r in rows:
                self.assertEqual(r["tool"], "discard_client")
                self.assertEqual(r["latency_source"], "discard_client histogram")
                self.assertGreater(r["rps"] or 0, 0, r.get("error"))
                self.assertNotIn("errors", r["flags"])
                self.assertIsNotNone(r["client_cpu"]["util"])
                self.assertTrue(os.path.exists(os.path.join(tmp, "run", r["raw"])))
            missing = self.bench(os.path.join(tmp, "missing"), tmp)
            self.assertTrue(missing and all("discard_client not built" in r.get("error", "")
                                            for r in missing), missing)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
