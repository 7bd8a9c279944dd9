"""cases_errors.py - every error status of the contract (RFC 9110/9112), and
that the connection closes after an error that breaks framing.

What it teaches: after a malformed head or body the server cannot know
where the next request would start, so it answers once and closes; anything
else would let a client smuggle a second request past it. The tests send a
valid request right behind each bad one: it must never be answered.
"""

import socket
import time

from client import chunked, expect, request
from suite import Fail, check, check_eq, test

FOLLOW = b"GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n"


def error_then_close(t, raw, status, what, addr=None):
    """Sends raw + a valid request; wants exactly one `status` response with
    Connection: close, then the close, and no answer to the second request."""
    c = t.connect(addr)
    c.send(raw + FOLLOW)
    r = c.read_response()
    check(r.status == status, "%s: status %d %s, want %d" % (what, r.status, r.reason, status))
    expect(r, status)
    check(r.closes(), "%s: %d without Connection: close" % (what, status))
    rest = c.wait_closed(t.scaled(3))
    check_eq(rest, b"", "%s: bytes after the %d (the request behind it was answered)"
             % (what, status))


BAD_SYNTAX = [
    ("garbage line", b"GARBAGE\r\n\r\n"),
    ("HTTP/0.9 request line", b"GET /plaintext\r\n\r\n"),
    ("no target", b"GET  HTTP/1.1\r\nHost: test\r\n\r\n"),
    ("lower-case version", b"GET /plaintext http/1.1\r\nHost: test\r\n\r\n"),
    ("bad version digits", b"GET /plaintext HTTP/1.x\r\nHost: test\r\n\r\n"),
    ("header without colon", b"GET /plaintext HTTP/1.1\r\nHost: test\r\nNoColon\r\n\r\n"),
    ("space before colon", b"GET /plaintext HTTP/1.1\r\nHost: test\r\nX-A : b\r\n\r\n"),
    ("obs-fold", b"GET /plaintext HTTP/1.1\r\nHost: test\r\nX-A: b\r\n c\r\n\r\n"),
    ("control byte in value", b"GET /plaintext HTTP/1.1\r\nHost: test\r\nX-A: b\x01c\r\n\r\n"),
    ("bad Content-Length", b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1x\r\n\r\n"),
    ("negative Content-Length", b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n"),
    ("two different Content-Lengths",
     b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
    ("Content-Length and chunked",
     b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("chunked on HTTP/1.0",
     b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("bad chunk size", b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nab\r\n0\r\n\r\n"),
    ("chunk data without CRLF",
     b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n"),
    ("two Host fields", b"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("fragment in target", b"GET /plaintext#frag HTTP/1.1\r\nHost: test\r\n\r\n"),
]


@test("bad_request_400")
def bad_request(t):
    for what, raw in BAD_SYNTAX:
        error_then_close(t, raw, 400, what)


@test("missing_host_400")
def missing_host(t):
    error_then_close(t, b"GET /plaintext HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host")
    # HTTP/1.0 may leave Host out
    c = t.connect()
    expect(c.roundtrip(request("GET", "/plaintext", version="HTTP/1.0", host=None)), 200,
           body=b"Hello, World!")


@test("body_too_large_413")
def too_large(t):
    raw = request("POST", "/echo", [("Content-Length", str((1 << 20) + 1))])
    error_then_close(t, raw, 413, "Content-Length over 1 MiB")
    # chunked: the limit is only known once the bytes arrive
    c = t.connect(timeout=20)
    head = request("POST", "/echo", [("Transfer-Encoding", "chunked")])
    piece = b"x" * 65536
    c.send(head)
    sent = 0
    try:
        while sent <= (1 << 20) + 65536:
            c.sock.sendall(chunked([piece])[:-5])  # a chunk, but not the last-chunk
            sent += len(piece)
    except OSError:
        pass  # the server may close before we are done: that is allowed
    r = c.read_response()
    expect(r, 413)
    check(r.closes(), "413 on a chunked body without Connection: close")
    c.wait_closed(t.scaled(3))


def eof_not_reset(c, what, timeout):
    """The next read must be a clean EOF: Fail on bytes, a reset, or silence."""
    c.sock.settimeout(timeout)
    try:
        data = c.sock.recv(65536)
    except ConnectionResetError:
        raise Fail("%s: the server reset the connection instead of closing it in stages "
                   "(RFC 9112, 9.6)" % what)
    except socket.timeout:
        raise Fail("%s: no EOF within %.1fs" % (what, timeout))
    check_eq(data, b"", "%s: bytes after the answer" % what)


@test("lingering_close")
def lingering_close(t):
    # An upload the server refuses at its head keeps coming. Closing with it
    # unread would make TCP answer with a reset, which can destroy the 413
    # before the client reads it; the server shuts its side instead, reads and
    # drops the rest, and closes once the client is done.
    piece = b"x" * 65536
    c = t.connect(timeout=t.scaled(5))
    c.send(request("POST", "/echo", [("Content-Length", str(4 << 20))]) + piece)
    r = c.read_response()
    expect(r, 413)
    check(r.closes(), "413 without Connection: close")
    time.sleep(0.05)
    for _ in range(4):  # more of the body, after the answer: thrown away, no reset
        try:
            c.sock.sendall(piece)
        except OSError as e:
            raise Fail("sending the rest of the body after the 413: %s" % e)
    eof_not_reset(c, "after a 413 with the body still coming", t.scaled(3))
    c.sock.shutdown(socket.SHUT_WR)
    check_eq(c.wait_closed(t.scaled(3)), b"", "bytes after the EOF")
    # a head over the limit whose rest is still on its way: the same
    c = t.connect(timeout=t.scaled(5))
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: test\r\nX-Big: " + b"v" * 70000)
    expect(c.read_response(), 431)
    time.sleep(0.05)
    c.send(b"v" * 4096 + b"\r\n\r\n" + FOLLOW)
    eof_not_reset(c, "after a 431 with the head still coming", t.scaled(3))


@test("uri_too_long_414")
def uri_too_long(t):
    error_then_close(t, request("GET", "/static/" + "a" * 9000), 414, "9000-byte target")
    # within the limit is fine (and merely not found)
    c = t.connect()
    r = c.roundtrip(request("GET", "/static/" + "a" * 200))
    check(r.status in (403, 404), "a 200-byte name: status %d" % r.status)


@test("headers_too_large_431")
def headers_too_large(t):
    big = request("GET", "/plaintext", [("X-Big", "v" * 20000)])
    error_then_close(t, big, 431, "one 20000-byte field")
    many = request("GET", "/plaintext", [("X-F%d" % i, "v") for i in range(100)])
    error_then_close(t, many, 431, "100 fields")
    # 40 small fields are fine
    c = t.connect()
    ok = request("GET", "/plaintext", [("X-F%d" % i, "v") for i in range(40)])
    expect(c.roundtrip(ok), 200)


@test("not_implemented_501")
def not_implemented(t):
    error_then_close(t, b"BREW /plaintext HTTP/1.1\r\nHost: test\r\n\r\n", 501, "method BREW")
    error_then_close(t, b"MKCOL /x HTTP/1.1\r\nHost: test\r\n\r\n", 501, "method MKCOL")
    raw = (b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: x-unknown, chunked\r\n\r\n"
           + chunked([b"abc"]))
    error_then_close(t, raw, 501, "Transfer-Encoding x-unknown, chunked")


@test("version_not_supported_505")
def version(t):
    error_then_close(t, b"GET /plaintext HTTP/2.0\r\nHost: test\r\n\r\n", 505, "HTTP/2.0")
    error_then_close(t, b"GET /plaintext HTTP/3.0\r\nHost: test\r\n\r\n", 505, "HTTP/3.0")
    # HTTP/1.2 is answered as HTTP/1.1 (RFC 9110 2.5)
    c = t.connect()
    expect(c.roundtrip(b"GET /plaintext HTTP/1.2\r\nHost: test\r\n\r\n"), 200)


@test("expectation_failed_417")
def expectation(t):
    c = t.connect()
    c.send(request("POST", "/echo", [("Expect", "something-else"), ("Content-Length", "3")]))
    expect(c.read_response(), 417)


@test("errors_that_keep_framing")
def soft_errors(t):
    # 404, 405, 403 and a bad argument leave the byte stream intact, so the
    # server may go on. Whatever it does must match what it says: without
    # Connection: close, the next request on the connection is answered.
    for raw, status in ((request("GET", "/nope"), 404),
                        (request("POST", "/json", body=b"abc"), 405),
                        (request("GET", "/delay/x"), 400),
                        (request("GET", "/static/%zz"), 400),
                        (request("GET", "/static/sub"), 403)):
        c = t.connect()
        c.send(raw + FOLLOW)
        r = c.read_response()
        expect(r, status)
        if r.closes():
            check_eq(c.wait_closed(t.scaled(3)), b"", "bytes after %d with close" % status)
        else:
            expect(c.read_response(), 200, body=b"Hello, World!")


def closed_by_timeout(t, c, began, what):
    """Waits for the server to end a stalled request: a 408 or a plain close,
    not before the 1 s idle timeout."""
    extra = c.wait_closed(t.scaled(4))
    took = time.monotonic() - began
    check(took >= 0.9, "%s: closed after %.2fs, before the 1 s idle timeout" % (what, took))
    if extra:
        check(extra.startswith(b"HTTP/1.1 408 "), "answer to %s: %s" % (what, extra[:40]))


@test("slow_head_408_or_close", shared=False)
def slow_head(t):
    s = t.start_server(["--idle-timeout", "1"])
    head = t.connect(s.addr)
    body = t.connect(s.addr)
    began = time.monotonic()
    head.send(b"GET /plaintext HTTP/1.1\r\nHost: te")
    body.send(request("POST", "/echo", [("Content-Length", "10")]) + b"abc")
    closed_by_timeout(t, head, began, "a slow head")
    closed_by_timeout(t, body, began, "a slow body")
    # a head trickled in byte by byte must not get more time than one whole head
    c = t.connect(s.addr)
    began = time.monotonic()
    trickle = b"GET /plaintext HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"s" * 300
    try:
        for i in range(len(trickle)):
            c.sock.send(trickle[i:i + 1])
            time.sleep(0.01)
            if time.monotonic() - began > t.scaled(4):
                break
    except OSError:
        pass  # closed on us: what we want
    closed_by_timeout(t, c, began, "a trickled head")
    check(time.monotonic() - began < t.scaled(4), "a trickled head kept the connection open")


@test("idle_timeout_closes", shared=False)
def idle_timeout(t):
    s = t.start_server(["--idle-timeout", "1"])
    fresh = t.connect(s.addr)  # never sends anything
    used = t.connect(s.addr)  # idle after one request
    began = time.monotonic()
    expect(used.roundtrip(request("GET", "/plaintext")), 200)
    for c, what in ((fresh, "a connection that never sent"), (used, "an idle keep-alive")):
        extra = c.wait_closed(t.scaled(4))
        took = time.monotonic() - began
        check(took >= 0.9, "%s closed after %.2fs, before the idle timeout" % (what, took))
        check_eq(extra, b"", "bytes sent to %s before the close" % what)
    # a busy connection is not idle: requests every 0.3 s for 1.5 s
    busy = t.connect(s.addr)
    for _ in range(5):
        expect(busy.roundtrip(request("GET", "/plaintext")), 200)
        time.sleep(0.3)
    expect(busy.roundtrip(request("GET", "/json")), 200)
