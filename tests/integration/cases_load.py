"""cases_load.py - concurrency: a slow response must not hold up others, a
client that vanishes mid-download must not hurt the server, hundreds of
clients at once are all answered, --max-conns refuses and recovers, and
--workers 2 serves.

What it teaches: an event loop that blocks anywhere blocks everyone on it.
Timing is the only way to see that from outside: while one connection waits
on /delay/300, the others must be answered in a small fraction of 300 ms.
The many-clients test uses one selector rather than hundreds of threads, so
the client side stays cheap on a 2-core machine.
"""

import errno
import json
import re
import selectors
import socket
import time

from client import expect, request
from suite import check, check_eq, test

HELLO = b"Hello, World!"
CONTENT_LENGTH = re.compile(rb"\r\nContent-Length: (\d+)\r?$", re.I | re.M)


def stats(t, addr=None):
    c = t.connect(addr)
    r = c.roundtrip(request("GET", "/stats"))
    expect(r, 200)
    c.close()
    return json.loads(r.body.decode())


def wait_for(what, pred, seconds):
    """Polls pred() every 20 ms until it returns true or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            check(False, "%s: still false after %.1fs" % (what, seconds))
        time.sleep(0.02)


@test("delay_does_not_block_others")
def delay_not_blocking(t):
    delay_ms = int(300 * t.opts.scale)
    slow = t.connect()
    others = [t.connect() for _ in range(5)]
    for c in others:  # connections are open before the delay starts
        expect(c.roundtrip(request("GET", "/plaintext")), 200)
    began = time.monotonic()
    slow.send(request("GET", "/delay/%d" % delay_ms))
    time.sleep(0.02)
    worst = 0.0
    for i in range(3):
        for c in others:
            t0 = time.monotonic()
            expect(c.roundtrip(request("GET", "/json" if i % 2 else "/plaintext")), 200)
            worst = max(worst, time.monotonic() - t0)
    fresh = t.connect()  # and a connection accepted during the delay
    t0 = time.monotonic()
    expect(fresh.roundtrip(request("GET", "/plaintext")), 200)
    worst = max(worst, time.monotonic() - t0)
    check(time.monotonic() - began < delay_ms / 1000.0,
          "15 requests on other connections took longer than the delay itself")
    check(worst < delay_ms / 2000.0, "a request on another connection took %.0f ms during a "
          "%d ms delay" % (worst * 1000, delay_ms))
    r = slow.read_response()
    expect(r, 200, body=b"delayed %d ms\n" % delay_ms)
    check(time.monotonic() - began >= delay_ms / 1000.0 - 0.005, "the delay was cut short")


@test("delays_run_in_parallel")
def delays_parallel(t):
    # 20 delays of 300 ms at once end together, not one after another
    delay_ms = 300
    conns = [t.connect(timeout=10) for _ in range(20)]
    began = time.monotonic()
    for c in conns:
        c.send(request("GET", "/delay/%d" % delay_ms))
    for c in conns:
        expect(c.read_response(), 200, body=b"delayed %d ms\n" % delay_ms)
    took = time.monotonic() - began
    check(took < t.scaled(0.3) + 0.4, "20 parallel 300 ms delays took %.0f ms" % (took * 1000))


@test("client_aborts_mid_download")
def abort_download(t):
    for i in range(12):
        c = t.connect()
        c.send(request("GET", "/static/big.bin") * (2 if i % 3 == 0 else 1))
        got = 0
        while got < 100000 * (1 + i % 4):
            c._fill(time.monotonic() + t.scaled(5), "part of big.bin")
            got = len(c.buf)
        if i % 2:
            c.abort()  # RST: the server's next send fails with ECONNRESET or EPIPE
        else:
            c.close()  # FIN with unread data: the kernel answers the server with RST
    c = t.connect(timeout=20)
    r = c.roundtrip(request("GET", "/static/big.bin"))
    check(r.status == 200 and r.body == t.site.big, "the next full download is wrong")
    c.close()
    # and nothing of the aborted ones lingers (this test's stats connection is the one left)
    wait_for("connections.active back to 1 after the aborts",
             lambda: stats(t)["connections"]["active"] <= 1, t.scaled(3))


class Client:
    """One non-blocking client of run_many: sends `count` requests one after
    another on its connection, checking each answer."""

    def __init__(self, addr, count):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        err = self.sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect")
        self.count = count
        self.answers = 0
        self.buf = b""
        self.error = None

    def send_next(self):
        self.sock.send(request("GET", "/plaintext"))

    def on_readable(self):
        """Returns True when this client is done (all answers, or an error)."""
        try:
            data = self.sock.recv(65536)
        except OSError as e:
            self.error = "recv: %s" % e
            return True
        if not data:
            self.error = "closed after %d answers" % self.answers
            return True
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            length = CONTENT_LENGTH.search(self.buf[:end])
            if not self.buf.startswith(b"HTTP/1.1 200 ") or length is None:
                self.error = "answer %r" % self.buf[:40]
                return True
            body_end = end + 4 + int(length.group(1))
            if len(self.buf) < body_end:
                return False
            if self.buf[end + 4:body_end] != HELLO:
                self.error = "body %r" % self.buf[end + 4:body_end][:20]
                return True
            self.buf = self.buf[body_end:]
            self.answers += 1
            if self.answers == self.count:
                return True
            self.send_next()


def run_many(t, addr, n, count, seconds):
    """n clients connect at once, each then makes `count` keep-alive requests.
    Returns (clients done, first error or None); all sockets stay open."""
    sel = selectors.DefaultSelector()
    clients = []
    for _ in range(n):
        c = Client(addr, count)
        t.track(c.sock)
        clients.append(c)
        sel.register(c.sock, selectors.EVENT_WRITE, c)
    connected = done = 0
    deadline = time.monotonic() + seconds
    first_error = None
    while done < n and time.monotonic() < deadline:
        for key, events in sel.select(timeout=0.1):
            c = key.data
            if events & selectors.EVENT_WRITE:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    c.error = "connect: %s" % errno.errorcode.get(err, err)
                    sel.unregister(c.sock)
                    done += 1
                    first_error = first_error or c.error
                    continue
                connected += 1
                sel.modify(c.sock, selectors.EVENT_READ, c)
                c.send_next()
            elif c.on_readable():
                sel.unregister(c.sock)
                done += 1
                first_error = first_error or c.error
    sel.close()
    ok = sum(1 for c in clients if c.answers == count)
    return ok, first_error, clients


@test("hundreds_of_concurrent_clients")
def many_clients(t):
    n = 300
    ok, err, clients = run_many(t, t.addr, n, 3, t.scaled(20))
    check(ok == n, "%d of %d clients got all 3 answers; first error: %s" % (ok, n, err))
    # all 300 are still open: the server must count them all as active
    active = stats(t)["connections"]["active"]
    check(active >= n + 1, "stats active %d with %d connections open" % (active, n + 1))
    for c in clients:
        c.sock.close()
    wait_for("connections.active back to 1 after 300 closes",
             lambda: stats(t)["connections"]["active"] <= 1, t.scaled(3))


def refused(t, addr):
    """Connects one more client; returns how it was turned away (a string) or
    None if it was served."""
    try:
        c = t.connect(addr, timeout=3)
    except Exception as e:  # connection refused by the kernel counts as refusal
        return "connect: %s" % e
    try:
        c.send(request("GET", "/plaintext"))
        r = c.read_response()
    except Exception as e:
        return "closed: %s" % e
    if r.status == 503:
        check(r.closes(), "503 without Connection: close")
        return "503"
    return None


@test("max_conns_refuses_then_recovers", shared=False)
def max_conns(t):
    s = t.start_server(["--max-conns", "4"])
    held = [t.connect(s.addr) for _ in range(4)]
    for c in held:
        expect(c.roundtrip(request("GET", "/plaintext")), 200)
    how = refused(t, s.addr)
    check(how is not None, "a 5th connection was served with --max-conns 4")
    for c in held:  # the admitted ones are unaffected
        expect(c.roundtrip(request("GET", "/json")), 200)
    held.pop().close()
    held.pop().close()

    def served():
        return refused(t, s.addr) is None
    wait_for("a new connection served after two closed", served, t.scaled(3))
    # The probes above close at once, but a server may count a connection
    # until it notices the close (a thread per connection does so late):
    # release the held ones too and poll until /stats itself gets a slot.
    for c in held:
        c.close()
    got = []

    def stats_served():
        try:
            got.append(stats(t, s.addr))
            return True
        except Exception:
            return False
    wait_for("/stats served once the clients left", stats_served, t.scaled(3))
    doc = got[-1]
    check(doc["connections"]["rejected"] >= 1, "stats rejected is %d after a refusal"
          % doc["connections"]["rejected"])


@test("workers_2", shared=False)
def workers_two(t):
    s = t.start_server(["--workers", "2"], workers=2)
    doc = stats(t, s.addr)
    check_eq(doc.get("workers"), 2, "stats workers")
    ok, err, clients = run_many(t, s.addr, 60, 5, t.scaled(15))
    check(ok == 60, "%d of 60 clients got all 5 answers; first error: %s" % (ok, err))
    # both loops serve: delays on 10 connections all end together
    conns = [t.connect(s.addr) for _ in range(10)]
    began = time.monotonic()
    for c in conns:
        c.send(request("GET", "/delay/200"))
    for c in conns:
        expect(c.read_response(), 200, body=b"delayed 200 ms\n")
    took = time.monotonic() - began
    check(took < t.scaled(0.2) + 0.4, "10 parallel 200 ms delays took %.0f ms" % (took * 1000))
