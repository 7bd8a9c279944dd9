"""cases_static.py - GET|HEAD /static/<path>: files byte-exact, content
types, and every way out of --root refused.

What it teaches: a static file server is a path-safety problem first. The
site (suite.Site) keeps a secret file beside the root and plants a symlink
to it, a symlink to /etc/passwd, a FIFO (opening one for reading blocks) and
folders; the tests then try every classic spelling of "..". A refusal may be
400, 403 or 404, but the secret's bytes must never come back and the server
must keep answering.
"""

import hashlib
import os
import re
import time

from client import expect, request
from suite import SECRET, SITE_FILES, check, check_eq, test

# The media type each kind of file must be served with (the part before ';').
TYPES = {
    "hello.txt": "text/plain",
    "UPPER.TXT": "text/plain",
    "index.html": "text/html",
    "style.css": "text/css",
    "app.js": "text/javascript",
    "data.json": "application/json",
    "pixel.png": "image/png",
    "README": "application/octet-stream",
    "empty.txt": "text/plain",
    "sub/nested.txt": "text/plain",
}


def check_charset(resp):
    """Text types may name a charset; if they do, it must be UTF-8."""
    ct = resp.header("Content-Type") or ""
    for param in ct.split(";")[1:]:
        k, _, v = param.strip().partition("=")
        if k.lower() == "charset":
            check_eq(v.strip('"').lower(), "utf-8", "charset of " + ct)


@test("static_small_files")
def small_files(t):
    c = t.connect()
    for name, media in TYPES.items():
        r = c.roundtrip(request("GET", "/static/" + name))
        expect(r, 200, body=SITE_FILES[name], media=media)
        check_charset(r)
        h = c.roundtrip(request("HEAD", "/static/" + name), method="HEAD")
        expect(h, 200, media=media, method="HEAD")
        check_eq(h.header("Content-Length"), str(len(SITE_FILES[name])), "HEAD length of " + name)


@test("static_percent_decoded_name")
def percent_name(t):
    c = t.connect()
    r = c.roundtrip(request("GET", "/static/name%20with%20space.txt"))
    expect(r, 200, body=SITE_FILES["name with space.txt"], media="text/plain")
    r = c.roundtrip(request("GET", "/static/%68ello.txt"))  # %68 is 'h'
    expect(r, 200, body=SITE_FILES["hello.txt"])


@test("static_one_mebibyte")
def big_file(t):
    c = t.connect(timeout=20)
    for _ in range(2):  # twice on one connection: the file range ends exactly
        r = c.roundtrip(request("GET", "/static/big.bin"))
        expect(r, 200, media="application/octet-stream")
        if r.body != t.site.big:
            at = next((i for i, (a, b) in enumerate(zip(r.body, t.site.big)) if a != b),
                      min(len(r.body), len(t.site.big)))
            check(False, "1 MiB body differs from the file at byte %d (got %d bytes, sha1 %s)"
                  % (at, len(r.body), hashlib.sha1(r.body).hexdigest()[:12]))
    h = c.roundtrip(request("HEAD", "/static/big.bin"), method="HEAD")
    expect(h, 200, method="HEAD")
    check_eq(h.header("Content-Length"), str(len(t.site.big)), "HEAD length of big.bin")
    expect(c.roundtrip(request("GET", "/static/hello.txt")), 200, body=SITE_FILES["hello.txt"])


@test("static_not_found")
def static_missing(t):
    c = t.connect()
    for path in ("/static/missing.txt", "/static/sub/missing", "/static/hello.txt/x"):
        r = c.roundtrip(request("GET", path))
        check(r.status in (403, 404), "%s: status %d, want 404" % (path, r.status))
        expect(r, r.status)
    r = c.roundtrip(request("GET", "/static/missing.txt"))
    expect(r, 404)
    expect(c.roundtrip(request("GET", "/static/hello.txt")), 200)


# Each of these must be refused. Raw bytes, sent exactly as written.
TRAVERSALS = [
    "/static/../secret.txt",
    "/static/sub/../../secret.txt",
    "/static/./../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static/sub%2f..%2f..%2fsecret.txt",
    "/static/%252e%252e/secret.txt",
    "/static/%252e%252e%252fsecret.txt",
    "/static/..\\secret.txt",
    "/static/..%5csecret.txt",
    "/static/sub\\..\\..\\secret.txt",
    "/static/%2e%2e%5csecret.txt",
    "/static/hello.txt%00.png",
    "/static/%00",
    "/static/..%00/secret.txt",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/link_out",
    "/static/link_abs",
    "/static/link_dir_out/secret.txt",
    "/../secret.txt",
    "/static/../../../../../../etc/passwd",
    "/static/....//secret.txt",
]


@test("static_traversal_refused")
def traversal(t):
    with open("/etc/passwd", "rb") as f:
        passwd = f.read()
    for path in TRAVERSALS:
        c = t.connect()
        c.send(request("GET", path))
        r = c.read_response()
        check(r.status in (400, 403, 404), "%s: status %d, want 400, 403 or 404"
              % (path, r.status))
        check(SECRET not in r.body and (not passwd or passwd[:32] not in r.body),
              "%s: served a file from outside the root" % path)
        expect(r, r.status)
        c.close()
    # absolute-form targets go through the same checks
    c = t.connect()
    r = c.roundtrip(request("GET", "http://test/static/%2e%2e/secret.txt"))
    check(r.status in (400, 403, 404) and SECRET not in r.body,
          "absolute-form traversal: status %d" % r.status)


@test("static_fifo_refused")
def fifo(t):
    # Opening a FIFO for reading blocks until a writer comes: a server that
    # does not check the file type first hangs here (and every other
    # connection of its loop with it).
    c = t.connect(timeout=3)
    began = time.monotonic()
    r = c.roundtrip(request("GET", "/static/fifo"))
    expect(r, 403)
    other = t.connect(timeout=3)
    expect(other.roundtrip(request("GET", "/plaintext")), 200)
    check(time.monotonic() - began < t.scaled(2), "the FIFO held the server up")


@test("static_directory_refused")
def directory(t):
    c = t.connect()
    for path in ("/static/sub", "/static/sub/", "/static/sub/folder", "/static/sub/folder/"):
        r = c.roundtrip(request("GET", path))
        expect(r, 403)
        check(c.is_open(), "a 403 closed the connection")
    r = c.roundtrip(request("HEAD", "/static/sub"), method="HEAD")
    check_eq(r.status, 403, "HEAD of a folder")
    expect(c.roundtrip(request("GET", "/static/sub/nested.txt")), 200,
           body=SITE_FILES["sub/nested.txt"])


@test("static_conditional")
def conditional(t):
    """A 200 carries Last-Modified and an ETag; sent back, they get a 304
    with the ETag and no content; If-Match and If-Unmodified-Since that do
    not hold get a 412; a changed file gets a 200 and a new tag. The
    connection stays in step after every one (RFC 9110 13, 15.4.5)."""
    path = os.path.join(t.site.root, "cond.txt")
    t.site.write("cond.txt", b"version 1\n")
    os.utime(path, ns=(784111777 * 10**9 + 5, 784111777 * 10**9 + 5))
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    c = t.connect()
    r = c.roundtrip(request("GET", "/static/cond.txt"))
    expect(r, 200, body=b"version 1\n")
    check_eq(r.header("Last-Modified"), date, "Last-Modified")
    tag = r.header("ETag") or ""
    check(re.fullmatch(r'"[\x21\x23-\x7e]+"', tag) is not None, "ETag %r is no strong tag" % tag)

    def ask(method, *fields):
        return c.roundtrip(request(method, "/static/cond.txt", list(fields)), method=method)

    for method, field in (("GET", ("If-None-Match", tag)),
                          ("GET", ("If-None-Match", '"other", W/' + tag)),
                          ("HEAD", ("If-None-Match", "*")),
                          ("GET", ("If-Modified-Since", date)),
                          ("GET", ("If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT")),
                          ("GET", ("If-Modified-Since", "Sun Nov  6 08:49:37 1994"))):
        r = ask(method, field)
        expect(r, 304, method=method)
        check_eq((r.header("ETag"), r.header("Content-Length"), r.body), (tag, None, b""),
                 "304 for %s: %s (ETag, Content-Length, body)" % field)
    for field in (("If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"),
                  ("If-Modified-Since", "not a date"),
                  ("If-None-Match", '"other"'),
                  ("If-Match", tag),
                  ("If-Unmodified-Since", date)):
        expect(ask("GET", field), 200, body=b"version 1\n")
    expect(ask("GET", ("If-Match", '"other"')), 412)
    expect(ask("GET", ("If-Match", "W/" + tag)), 412)  # If-Match compares strongly
    expect(ask("GET", ("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:36 GMT")), 412)
    expect(ask("GET", ("If-None-Match", tag), ("If-Match", '"other"')), 412)

    t.site.write("cond.txt", b"version 22\n")
    os.utime(path, ns=(784111790 * 10**9, 784111790 * 10**9))
    r = ask("GET", ("If-None-Match", tag))
    expect(r, 200, body=b"version 22\n")
    check(r.header("ETag") not in (None, tag), "the changed file kept its ETag")
    expect(ask("GET", ("If-Modified-Since", date)), 200, body=b"version 22\n")
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=b"Hello, World!")


@test("static_file_waits_for_its_body")
def file_waits_for_body(t):
    """A file is opened when its request's head arrives and sent once the
    body is in. An answer before it that finishes sending meanwhile must
    not take the file with it (it once closed it, and the connection was
    dropped where the file should have been)."""
    c = t.connect(timeout=20)
    c.send(request("GET", "/nope") +
           request("GET", "/static/big.bin", [("Content-Length", "3")]))
    expect(c.read_response(), 404)
    time.sleep(0.05)  # the 404 is out; the body is not
    c.send(b"abc")
    r = c.read_response()
    expect(r, 200, media="application/octet-stream")
    check(r.body == t.site.big, "1 MiB body differs (%d bytes)" % len(r.body))
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=b"Hello, World!")


@test("static_ranges")
def ranges(t):
    """One range of a file (206 with Content-Range), from the middle of the
    1 MiB file (sent without copying) and the end of a small one; a range
    past the end (416 with the size); a resumed download with If-Range,
    which gets the rest only while the file is the same version (RFC 9110
    14, 13.1.5); several ranges and HEAD get the whole file."""
    big, n = t.site.big, len(t.site.big)
    c = t.connect(timeout=20)
    whole = c.roundtrip(request("GET", "/static/big.bin"))
    expect(whole, 200)
    check_eq(whole.header("Accept-Ranges"), "bytes", "Accept-Ranges")
    tag = whole.header("ETag")
    for spec, first, last in (("bytes=1000-600999", 1000, 600999),
                              ("bytes=%d-" % (n - 70000), n - 70000, n - 1),
                              ("bytes=-5", n - 5, n - 1),
                              ("bytes=0-0", 0, 0),
                              ("bytes=10-%d" % (10 * n), 10, n - 1)):
        r = c.roundtrip(request("GET", "/static/big.bin", [("Range", spec)]))
        expect(r, 206, media="application/octet-stream")
        check_eq(r.header("Content-Range"), "bytes %d-%d/%d" % (first, last, n), spec)
        check(r.body == big[first:last + 1], "%s: wrong bytes" % spec)
    hello = SITE_FILES["hello.txt"]
    r = c.roundtrip(request("GET", "/static/hello.txt", [("Range", "bytes=-6")]))
    expect(r, 206, body=hello[-6:], media="text/plain")
    r = c.roundtrip(request("GET", "/static/big.bin", [("Range", "bytes=%d-" % n)]))
    expect(r, 416)
    check_eq(r.header("Content-Range"), "bytes */%d" % n, "416 Content-Range")
    resume = [("Range", "bytes=524288-"), ("If-Range", tag)]
    r = c.roundtrip(request("GET", "/static/big.bin", resume))
    expect(r, 206)
    check(r.body == big[524288:], "resumed download: wrong bytes")
    r = c.roundtrip(request("GET", "/static/big.bin", [resume[0], ("If-Range", '"other"')]))
    expect(r, 200)
    check(r.body == big, "If-Range that fails: not the whole file")
    r = c.roundtrip(request("GET", "/static/big.bin", [("Range", "bytes=0-1,5-6")]))
    expect(r, 200)
    r = c.roundtrip(request("HEAD", "/static/big.bin", [("Range", "bytes=0-1")]), method="HEAD")
    expect(r, 200, method="HEAD")
    check_eq(r.header("Content-Length"), str(n), "HEAD with Range")
    expect(c.roundtrip(request("GET", "/plaintext")), 200, body=b"Hello, World!")


@test("static_file_shrinks_while_sent")
def file_shrinks(t):
    """A file cut short while it is being sent: sendfile(2) meets its end
    before the Content-Length already promised. The server closes the
    connection (the client sees a short body, then EOF) instead of asking
    again forever, and goes on serving."""
    size = 32 * len(t.site.big)
    t.site.write("shrink.bin", t.site.big * 32)
    c = t.connect(timeout=t.scaled(10))
    c.send(request("GET", "/static/shrink.bin"))
    while b"\r\n\r\n" not in c.buf:
        c._fill(time.monotonic() + t.scaled(5), "the head")
    os.truncate(os.path.join(t.site.root, "shrink.bin"), 4096)
    got = len(c.buf) + len(c.wait_closed(timeout=t.scaled(10)))
    check(got < size, "the whole %d bytes came from a file cut to 4096" % size)
    expect(t.connect().roundtrip(request("GET", "/plaintext")), 200, body=b"Hello, World!")


@test("static_file_changed_between_requests")
def file_changed(t):
    """A small file is answered from memory the second time (the server keeps
    copies of small files), but a change on disk is seen at once: written in
    place at the same size, with its mtime put back as `cp -p` would, then
    replaced by a rename, then deleted. Each request follows the change
    without a pause; only the in-place write first waits 20 ms, for file
    systems whose clock moves in coarse ticks."""
    path = os.path.join(t.site.root, "changing.txt")
    c = t.connect()
    t.site.write("changing.txt", b"first\n")
    for _ in range(2):
        expect(c.roundtrip(request("GET", "/static/changing.txt")), 200, body=b"first\n")
    time.sleep(0.02)
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.write(b"again\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    expect(c.roundtrip(request("GET", "/static/changing.txt")), 200, body=b"again\n")
    t.site.write("changing.new", b"renamed over\n")
    os.rename(os.path.join(t.site.root, "changing.new"), path)
    expect(c.roundtrip(request("GET", "/static/changing.txt")), 200, body=b"renamed over\n")
    os.unlink(path)
    expect(c.roundtrip(request("GET", "/static/changing.txt")), 404)
