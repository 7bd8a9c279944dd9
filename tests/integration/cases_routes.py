"""cases_routes.py - every route of the contract (common/handlers.h), GET and
HEAD: exact status, Content-Type, Content-Length, Date, Server and body.

What it teaches: a HEAD response is the GET response minus the body, with
the same Content-Length; the only way to prove no body bytes leaked is to
send another request on the same connection and parse its answer cleanly.
"""

import json
import os
import time

from client import expect, request
from suite import check, check_eq, test

HELLO = b"Hello, World!"
JSON = b'{"message":"Hello, World!"}'


def get_and_head(t, path, status, media, body):
    """GET then HEAD of `path` on one connection, then a GET again: the HEAD
    must match the GET field for field (but Date) and carry no body."""
    c = t.connect()
    g = c.roundtrip(request("GET", path))
    expect(g, status, body=body, media=media)
    h = c.roundtrip(request("HEAD", path), method="HEAD")
    expect(h, status, media=media, method="HEAD")
    check_eq(h.header("Content-Length"), g.header("Content-Length"),
             "HEAD Content-Length vs GET")
    check_eq(h.header("Content-Type"), g.header("Content-Type"), "HEAD Content-Type vs GET")
    again = c.roundtrip(request("GET", path))  # fails if HEAD left body bytes behind
    expect(again, status, body=body)
    check(c.is_open(), "connection closed after a plain GET/HEAD")


@test("ready_line")
def ready_line(t):
    # The suite parsed it exactly on start; here: it names a port that
    # answers, and the binary's file name matches backend=NAME.
    s = t.server
    want = t.opts.expected_backend()
    if want is not None:
        check_eq(s.backend, want, "backend= in the ready line")
    c = t.connect()
    expect(c.roundtrip(request("GET", "/plaintext")), 200)


@test("plaintext_get_head")
def plaintext(t):
    get_and_head(t, "/plaintext", 200, "text/plain", HELLO)


@test("json_get_head")
def json_route(t):
    get_and_head(t, "/json", 200, "application/json", JSON)
    check_eq(json.loads(JSON.decode()), {"message": "Hello, World!"}, "JSON document")


@test("plaintext_query_ignored")
def plaintext_query(t):
    c = t.connect()
    expect(c.roundtrip(request("GET", "/plaintext?a=1&b=%20")), 200, body=HELLO)


@test("absolute_form_target")
def absolute_form(t):
    # RFC 9112 3.2.2: a server must accept the absolute form too.
    c = t.connect()
    r = c.roundtrip(request("GET", "http://test/plaintext"))
    expect(r, 200, body=HELLO, media="text/plain")


@test("stats_get_head")
def stats(t):
    c = t.connect()
    first = c.roundtrip(request("GET", "/stats"))
    expect(first, 200, media="application/json")
    doc = json.loads(first.body.decode())
    check_eq(doc.get("backend"), t.server.backend, "stats backend")
    check_eq(doc.get("workers"), 1, "stats workers")
    for key in ("requests", "bytes_in", "bytes_out"):
        check(isinstance(doc.get(key), int), "stats %s is not a number" % key)
    for _ in range(3):
        expect(c.roundtrip(request("GET", "/plaintext")), 200)
    second = json.loads(c.roundtrip(request("GET", "/stats")).body.decode())
    check(second["requests"] >= doc["requests"] + 4,
          "stats requests went from %d to %d over 4 requests"
          % (doc["requests"], second["requests"]))
    h = c.roundtrip(request("HEAD", "/stats"), method="HEAD")
    expect(h, 200, media="application/json", method="HEAD")


@test("delay_route")
def delay(t):
    c = t.connect()
    began = time.monotonic()
    r = c.roundtrip(request("GET", "/delay/120"))
    took = time.monotonic() - began
    expect(r, 200, body=b"delayed 120 ms\n", media="text/plain")
    check(took >= 0.115, "/delay/120 answered after %.0f ms" % (took * 1000))
    check(took < t.scaled(1.0), "/delay/120 took %.0f ms" % (took * 1000))
    expect(c.roundtrip(request("GET", "/delay/0")), 200, body=b"delayed 0 ms\n")
    h = c.roundtrip(request("HEAD", "/delay/10"), method="HEAD")
    expect(h, 200, method="HEAD")
    check_eq(h.header("Content-Length"), str(len(b"delayed 10 ms\n")), "HEAD /delay length")
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)


@test("delay_bad_argument")
def delay_bad(t):
    for path in ("/delay/abc", "/delay/60001", "/delay/-1", "/delay/99999999999"):
        c = t.connect()
        r = c.roundtrip(request("GET", path))
        expect(r, 400)


@test("echo_content_length")
def echo_length(t):
    body = os.urandom(3000) + b"\r\n\r\nGET / HTTP/1.1\r\n\r\n\x00"  # bytes that look like HTTP
    c = t.connect()
    r = c.roundtrip(request("POST", "/echo", [("Content-Type", "application/x-test")], body))
    expect(r, 200, body=body, media="application/octet-stream")
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)


@test("echo_empty")
def echo_empty(t):
    c = t.connect()
    expect(c.roundtrip(request("POST", "/echo", [("Content-Length", "0")])), 200, body=b"")
    expect(c.roundtrip(request("POST", "/echo")), 200, body=b"")  # no framing: no body
    expect(c.roundtrip(request("GET", "/json")), 200, body=JSON)


@test("echo_one_mebibyte")
def echo_max(t):
    body = t.site.big  # exactly HTTP_MAX_BODY: the largest body allowed
    c = t.connect(timeout=20)
    c.send(request("POST", "/echo", body=body))
    expect(c.read_response(), 200, body=body)


@test("not_found")
def not_found(t):
    c = t.connect()
    for path in ("/", "/nope", "/plaintext/more", "/PLAINTEXT", "/jsonx", "/static"):
        r = c.roundtrip(request("GET", path))
        expect(r, 404)
    h = c.roundtrip(request("HEAD", "/nope"), method="HEAD")
    check_eq(h.status, 404, "HEAD /nope status")
    # a 404 does not break framing: the connection goes on
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)


def allow_set(resp):
    value = resp.header("Allow")
    check(value is not None, "%d without an Allow field" % resp.status)
    return {m.strip() for m in value.split(",")}


@test("method_not_allowed_405")
def not_allowed(t):
    c = t.connect()
    cases = [("POST", "/plaintext", {"GET", "HEAD"}), ("PUT", "/json", {"GET", "HEAD"}),
             ("DELETE", "/static/hello.txt", {"GET", "HEAD"}), ("GET", "/echo", {"POST"}),
             ("POST", "/stats", {"GET", "HEAD"})]
    for method, path, allowed in cases:
        r = c.roundtrip(request(method, path, body=b"x" if method == "POST" else b""))
        expect(r, 405)
        check_eq(allow_set(r), allowed, "Allow of %s %s" % (method, path))
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)


@test("options_asterisk")
def options_asterisk(t):
    # "OPTIONS *" asks about the server as a whole (RFC 9110 9.3.7): every
    # method some route takes. On a route, OPTIONS is a method like others.
    c = t.connect()
    r = c.roundtrip(request("OPTIONS", "*"))
    expect(r, 200, body=b"")
    check_eq(allow_set(r), {"GET", "HEAD", "POST", "OPTIONS"}, "Allow of OPTIONS *")
    check_eq(r.header("Content-Type"), None, "Content-Type of an empty answer")
    r = c.roundtrip(request("OPTIONS", "/plaintext"))
    expect(r, 405)
    check_eq(allow_set(r), {"GET", "HEAD"}, "Allow of OPTIONS /plaintext")
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=HELLO)
