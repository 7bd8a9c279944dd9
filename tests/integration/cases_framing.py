"""cases_framing.py - message framing and connection reuse: request bodies
(Content-Length and chunked, with extensions and trailers), keep-alive,
HTTP/1.0, Connection: close, pipelining, requests split into tiny pieces, and
Expect: 100-continue.

What it teaches: TCP delivers a byte stream, not messages. A server must
find each request's end from the bytes alone, whether a read holds half a
request line or twenty whole requests, and answer them in order.
"""

import os
import random
import socket
import threading
import time

from client import chunked, expect, request
from suite import SITE_FILES, check, check_eq, test

HELLO = b"Hello, World!"
JSON = b'{"message":"Hello, World!"}'
TE_CHUNKED = [("Transfer-Encoding", "chunked")]


@test("echo_chunked")
def echo_chunked(t):
    pieces = [b"a", b"hello " * 100, os.urandom(5000), b"\r\n0\r\n\r\n", b"z"]
    c = t.connect()
    r = c.roundtrip(request("POST", "/echo", TE_CHUNKED, chunked(pieces)))
    expect(r, 200, body=b"".join(pieces))
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)


@test("echo_chunked_extensions_trailers")
def echo_chunked_ext(t):
    pieces = [b"first", b"second chunk", b"3"]
    c = t.connect()
    body = chunked(pieces, ext=';name=value;flag;q="quoted string"',
                   trailers=[("X-Checksum", "abc"), ("X-Other", "1, 2")])
    expect(c.roundtrip(request("POST", "/echo", TE_CHUNKED, body)), 200,
           body=b"".join(pieces))
    # upper-case hex sizes and an empty body
    upper = b"A\r\n0123456789\r\n1F\r\n" + b"x" * 31 + b"\r\n0\r\n\r\n"
    expect(c.roundtrip(request("POST", "/echo", TE_CHUNKED, upper)), 200,
           body=b"0123456789" + b"x" * 31)
    expect(c.roundtrip(request("POST", "/echo", TE_CHUNKED, b"0\r\n\r\n")), 200, body=b"")
    expect(c.roundtrip(request("GET", "/json")), 200, body=JSON)


@test("keepalive_many_requests")
def keepalive(t):
    c = t.connect()
    for i in range(200):
        kind = i % 4
        if kind == 0:
            expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)
        elif kind == 1:
            expect(c.roundtrip(request("GET", "/json")), 200, body=JSON)
        elif kind == 2:
            body = b"request %d" % i
            expect(c.roundtrip(request("POST", "/echo", body=body)), 200, body=body)
        else:
            r = c.roundtrip(request("GET", "/static/hello.txt"))
            expect(r, 200, body=SITE_FILES["hello.txt"])
        check(r_keeps(c), "server closed a keep-alive connection after %d requests" % (i + 1))


def r_keeps(c):
    return c.is_open(wait=0.0005)


@test("http10_without_keepalive")
def http10_close(t):
    c = t.connect()
    r = c.roundtrip(request("GET", "/plaintext", version="HTTP/1.0", host=None))
    expect(r, 200, body=HELLO)
    check(r.header("Connection") is None or r.closes(),
          "HTTP/1.0 response says Connection: %s" % r.header("Connection"))
    check_eq(c.wait_closed(t.scaled(2)), b"", "bytes after the HTTP/1.0 response")


@test("http10_keepalive")
def http10_keepalive(t):
    c = t.connect()
    for path, body in (("/plaintext", HELLO), ("/json", JSON), ("/plaintext", HELLO)):
        r = c.roundtrip(request("GET", path, [("Connection", "keep-alive")], version="HTTP/1.0"))
        expect(r, 200, body=body)
        check_eq((r.header("Connection") or "").lower(), "keep-alive",
                 "Connection field of an HTTP/1.0 keep-alive response")
    r = c.roundtrip(request("GET", "/plaintext", version="HTTP/1.0"))  # no keep-alive: last
    expect(r, 200, body=HELLO)
    check_eq(c.wait_closed(t.scaled(2)), b"", "bytes after the last HTTP/1.0 response")


@test("connection_close_honoured")
def connection_close(t):
    c = t.connect()
    r = c.roundtrip(request("GET", "/plaintext", [("Connection", "close")]))
    expect(r, 200, body=HELLO)
    check(r.closes(), "no Connection: close in the answer to Connection: close")
    check_eq(c.wait_closed(t.scaled(2)), b"", "bytes after the last response")
    # the same after a body, and with a second request already sent behind it
    c = t.connect()
    c.send(request("POST", "/echo", [("Connection", "close")], b"bye") +
           request("GET", "/plaintext"))
    r = c.read_response()
    expect(r, 200, body=b"bye")
    check(r.closes(), "no Connection: close on the echo")
    check_eq(c.wait_closed(t.scaled(2)), b"", "an answer to a request sent after close")


def mixed_pipeline(n, seed):
    """n requests of every kind, as one byte string, with what each answer
    must be: (method, status, body)."""
    rnd = random.Random(seed)
    data, want = b"", []
    for i in range(n):
        k = rnd.randrange(6)
        if k == 0:
            data += request("GET", "/plaintext")
            want.append(("GET", 200, HELLO))
        elif k == 1:
            data += request("HEAD", "/json")
            want.append(("HEAD", 200, b""))
        elif k == 2:
            body = os.urandom(rnd.randrange(1, 3000))
            data += request("POST", "/echo", body=body)
            want.append(("GET", 200, body))
        elif k == 3:
            body = b"chunk %d" % i
            data += request("POST", "/echo", TE_CHUNKED, chunked([body[:3], body[3:]]))
            want.append(("GET", 200, body))
        elif k == 4:
            data += request("GET", "/static/index.html")
            want.append(("GET", 200, SITE_FILES["index.html"]))
        else:
            data += request("GET", "/missing/%d" % i)
            want.append(("GET", 404, None))
    return data, want


def read_all(t, c, want):
    for i, (method, status, body) in enumerate(want):
        r = c.read_response(method)
        check(r.status == status and (body is None or r.body == body),
              "pipelined response %d of %d: %d %s, want %d %s"
              % (i + 1, len(want), r.status, r.body[:40], status, (body or b"")[:40]))


@test("pipelining_in_order")
def pipelining(t):
    data, want = mixed_pipeline(150, seed=1)
    c = t.connect()
    c.send(data)
    read_all(t, c, want)
    check(c.is_open(), "connection closed after the pipeline")
    check_eq(c.buf, b"", "bytes after the last pipelined response")


@test("pipelining_large_responses")
def pipelining_large(t):
    # 8 MiB of answers to one send: the server must stop and go as the
    # client reads, and keep every file range whole and in order.
    c = t.connect(timeout=30)
    c.send(request("GET", "/static/big.bin") * 4 + request("GET", "/plaintext") +
           request("GET", "/static/big.bin") * 4)
    for i in range(9):
        r = c.read_response()
        want = HELLO if i == 4 else t.site.big
        check(r.status == 200 and r.body == want, "response %d of 9 is wrong (%d, %d bytes)"
              % (i + 1, r.status, len(r.body)))


@test("pipelining_read_late")
def pipelining_read_late(t):
    # A client pipelines more requests than the server keeps for a busy
    # connection (conn.c's CONN_IN_MAX, 64 KiB and a head) and reads nothing
    # for a second. The server must stop reading while its answers wait and
    # read on as they drain, not take every byte and give up: all answered.
    n = 4000
    c = t.connect(timeout=30)
    sender = threading.Thread(target=c.send, args=(request("GET", "/plaintext") * n,))
    sender.start()
    time.sleep(1)
    for i in range(n):
        r = c.read_response()
        check(r.status == 200 and r.body == HELLO, "response %d of %d: %d %s"
              % (i + 1, n, r.status, r.body[:40]))
    sender.join()
    check(c.is_open(), "connection closed after the pipeline")


@test("pipelining_many_small_sends")
def pipelining_split(t):
    # the same pipeline, cut at random places into small sends
    data, want = mixed_pipeline(60, seed=2)
    rnd = random.Random(3)
    c = t.connect()
    i = 0
    while i < len(data):
        n = rnd.randrange(1, 200)
        c.send(data[i:i + n])
        i += n
        if rnd.random() < 0.1:
            time.sleep(0.001)
    read_all(t, c, want)


@test("request_split_into_tiny_pieces")
def tiny_pieces(t):
    c = t.connect()
    c.send_slowly(request("GET", "/plaintext", [("X-Pad", "y" * 40)]), piece=1, pause=0.002)
    expect(c.read_response(), 200, body=HELLO)
    body = b"tiny pieces"
    c.send_slowly(request("POST", "/echo", TE_CHUNKED,
                          chunked([body[:4], body[4:]], ext=";e=1", trailers=[("T", "v")])),
                  piece=3, pause=0.003)
    expect(c.read_response(), 200, body=body)
    c.send_slowly(request("POST", "/echo", body=b"0123456789" * 5), piece=7, pause=0.003)
    expect(c.read_response(), 200, body=b"0123456789" * 5)
    # a head split exactly around its CR LF CR LF
    head = request("GET", "/json")
    for cut in (len(head) - 1, len(head) - 2, len(head) - 3):
        c.send(head[:cut])
        time.sleep(0.02)
        c.send(head[cut:])
        expect(c.read_response(), 200, body=JSON)


@test("expect_100_continue")
def expect_continue(t):
    body = os.urandom(20000)
    c = t.connect()
    c.send(request("POST", "/echo", [("Expect", "100-continue"),
                                     ("Content-Length", str(len(body)))]))
    interim = c.read_response()
    check_eq(interim.status, 100, "status before the body was sent")
    check_eq(interim.reason, "Continue", "reason phrase of 100")
    c.send(body)
    expect(c.read_response(), 200, body=body)
    # chunked, and the connection goes on
    c.send(request("POST", "/echo", [("Expect", "100-continue")] + TE_CHUNKED))
    check_eq(c.read_response().status, 100, "status before a chunked body")
    c.send(chunked([b"abc", b"def"]))
    expect(c.read_response(), 200, body=b"abcdef")
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)


@test("expect_100_continue_refused_early")
def expect_continue_refused(t):
    # RFC 9110 10.1.1: a request the server will refuse gets its final status
    # at once, never a 100 that would invite the body.
    c = t.connect()
    c.send(request("POST", "/plaintext", [("Expect", "100-continue"), ("Content-Length", "10")]))
    r = c.read_response()
    check_eq(r.status, 405, "final status instead of 100")
    c = t.connect()
    c.send(request("POST", "/echo", [("Expect", "100-continue"),
                                     ("Content-Length", str(2 << 20))]))
    r = c.read_response()
    check_eq(r.status, 413, "final status for a body over the limit, instead of 100")


@test("lenient_syntax_accepted")
def lenient(t):
    # What RFC 9112 lets a server accept: any case in field names, spaces and
    # tabs around values, empty lines before a request (2.2), bare LF line ends.
    c = t.connect()
    raw = b"POST /echo HTTP/1.1\r\nhOsT:\ttest \t\r\ncontent-LENGTH:   5\r\nX-Empty:\r\n\r\nhello"
    expect(c.roundtrip(raw), 200, body=b"hello")
    expect(c.roundtrip(b"\r\n" + request("GET", "/json")), 200, body=JSON)
    expect(c.roundtrip(b"GET /plaintext HTTP/1.1\nHost: test\n\n"), 200, body=HELLO)
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)


@test("body_on_get_is_skipped")
def body_on_get(t):
    # A GET may carry a body; the server must read past it, not parse it as
    # the next request.
    c = t.connect()
    sneaky = b"GET /nope HTTP/1.1\r\nHost: test\r\n\r\n"
    c.send(request("GET", "/plaintext", body=sneaky) + request("GET", "/json"))
    expect(c.read_response(), 200, body=HELLO)
    expect(c.read_response(), 200, body=JSON)
    c.send(request("GET", "/plaintext", TE_CHUNKED, chunked([sneaky])) + request("GET", "/json"))
    expect(c.read_response(), 200, body=HELLO)
    expect(c.read_response(), 200, body=JSON)
    c.send(request("POST", "/missing", body=sneaky) + request("GET", "/json"))
    expect(c.read_response(), 404)
    expect(c.read_response(), 200, body=JSON)


@test("client_half_close")
def half_close(t):
    # A client may send its requests and shut its side down (shutdown(SHUT_WR),
    # as `nc -N` does): every request sent before the FIN is still answered.
    c = t.connect()
    c.send(request("GET", "/plaintext") + request("POST", "/echo", body=b"abc") +
           request("GET", "/static/hello.txt"))
    c.sock.shutdown(socket.SHUT_WR)
    expect(c.read_response(), 200, body=HELLO)
    expect(c.read_response(), 200, body=b"abc")
    expect(c.read_response(), 200, body=SITE_FILES["hello.txt"])
    check_eq(c.wait_closed(t.scaled(3)), b"", "bytes after the last answer")


@test("slow_reader_large_file")
def slow_reader(t):
    # A small receive window and a slow reader: the server's sends come back
    # short or would block, and it must resume exactly where it stopped.
    sock = t.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.settimeout(t.scaled(10))
    sock.connect(t.addr)
    sock.sendall(request("GET", "/static/big.bin") + request("GET", "/plaintext"))
    data = b""
    deadline = time.monotonic() + t.scaled(20)
    reads = 0
    while time.monotonic() < deadline:
        chunk = sock.recv(4096 if reads < 40 else 262144)
        if not chunk:
            break
        data += chunk
        reads += 1
        if reads < 40:
            time.sleep(0.005)
        if data.endswith(HELLO) and len(data) > len(t.site.big):
            break
    head, _, rest = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200 "), "slow reader got %r" % head[:30])
    check(rest[:len(t.site.big)] == t.site.big, "the file arrived damaged (%d bytes after "
          "the head)" % len(rest))
    second = rest[len(t.site.big):]
    check(second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"\r\n\r\n" + HELLO),
          "the pipelined request behind the file: %r" % second[:40])
