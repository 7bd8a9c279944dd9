"""cases_tools.py - real clients against the server: curl, ab -k (HTTP/1.0
keep-alive) and h2load --h1 (pipelining).

What it teaches: our own client is strict but it is ours; tools written by
others make different, equally legal choices (curl sends Expect: 100-continue
for big uploads, ab speaks HTTP/1.0 with keep-alive, h2load pipelines 16 deep).

A missing tool fails the test with the Debian package to install, unless the
test is registered with optional=True, in which case it is skipped.
"""

import os
import re
import shutil
import subprocess

from suite import Fail, Skip, check, check_eq, test

PACKAGES = {"curl": "curl", "ab": "apache2-utils", "h2load": "nghttp2-client"}


def tool(name, optional=False):
    """The path of a client tool, or Fail (Skip if optional) naming its package."""
    path = shutil.which(name)
    if path is None:
        why = "%s is not installed (Debian package %s: apt-get install %s)" % (
            name, PACKAGES[name], PACKAGES[name])
        raise Skip(why) if optional else Fail(why)
    return path


def run(t, argv, seconds):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=t.scaled(seconds))
    except subprocess.TimeoutExpired:
        raise Fail("%s did not finish within %.0fs" % (os.path.basename(argv[0]),
                                                      t.scaled(seconds)))
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def url(t, path):
    return "http://%s:%d%s" % (t.addr[0], t.addr[1], path)


@test("curl_routes")
def curl_routes(t):
    curl = tool("curl")
    base = [curl, "-sS", "--max-time", str(int(t.scaled(10)))]
    rc, out, err = run(t, base + ["-i", url(t, "/plaintext")], 20)
    check_eq(rc, 0, "curl exit code (stderr %s)" % err.strip())
    head, _, body = out.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200 "), "curl saw %r" % head[:30])
    check_eq(body, b"Hello, World!", "curl body of /plaintext")
    rc, out, err = run(t, base + ["-I", url(t, "/static/big.bin")], 20)
    check(rc == 0 and b"Content-Length: 1048576" in out, "curl -I big.bin: %r" % out[:200])
    # two URLs on one connection: curl reuses it
    rc, out, err = run(t, base + ["-v", url(t, "/json"), url(t, "/plaintext")], 20)
    check_eq(out, b'{"message":"Hello, World!"}Hello, World!', "curl bodies of two URLs")
    check("Re-using existing connection" in err or "Reusing existing" in err,
          "curl did not reuse the keep-alive connection")


@test("curl_download_and_upload")
def curl_files(t):
    curl = tool("curl")
    base = [curl, "-sS", "--max-time", str(int(t.scaled(20)))]
    path = os.path.join(t.site.top, "curl-upload.bin")
    with open(path, "wb") as f:
        f.write(t.site.big[: 600 * 1024])
    rc, out, err = run(t, base + [url(t, "/static/big.bin")], 30)
    check(rc == 0 and out == t.site.big, "curl download of big.bin: rc %d, %d bytes"
          % (rc, len(out)))
    for extra in ([], ["-H", "Transfer-Encoding: chunked"], ["-H", "Expect: 100-continue"]):
        rc, out, err = run(t, base + extra + ["--data-binary", "@" + path, url(t, "/echo")], 30)
        check(rc == 0 and out == t.site.big[: 600 * 1024],
              "curl upload %s: rc %d, %d bytes back (%s)" % (extra, rc, len(out), err.strip()))


def ab_field(out, name):
    m = re.search(r"^%s:\s+(\d+)" % re.escape(name), out, re.M)
    check(m is not None, "ab printed no %r line" % name)
    return int(m.group(1))


@test("ab_keepalive")
def ab_keepalive(t):
    ab = tool("ab")
    n = 2000
    rc, out, err = run(t, [ab, "-k", "-q", "-n", str(n), "-c", "8", "-s", str(int(t.scaled(10))),
                           url(t, "/plaintext")], 60)
    text = out.decode("utf-8", "replace")
    check_eq(rc, 0, "ab exit code (%s)" % err.strip()[-200:])
    check_eq(ab_field(text, "Complete requests"), n, "ab Complete requests")
    check_eq(ab_field(text, "Failed requests"), 0, "ab Failed requests")
    check_eq(ab_field(text, "Keep-Alive requests"), n, "ab Keep-Alive requests")
    m = re.search(r"^Non-2xx responses:\s+(\d+)", text, re.M)
    check(m is None, "ab saw %s non-2xx responses" % (m.group(1) if m else 0))


@test("h2load_pipelined")
def h2load_pipelined(t):
    h2load = tool("h2load")
    n = 4000
    rc, out, err = run(t, [h2load, "--h1", "-n", str(n), "-c", "4", "-m", "16",
                           url(t, "/plaintext")], 60)
    text = out.decode("utf-8", "replace")
    check_eq(rc, 0, "h2load exit code (%s)" % err.strip()[-200:])
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
    check(m is not None, "h2load printed no requests line: %r" % text[-300:])
    total, started, done, ok, failed, errored, timeout = map(int, m.groups())
    check(done == n and ok == n and failed == 0 and errored == 0 and timeout == 0,
          "h2load: %s" % m.group(0))
    # "succeeded" above is exact. The 2xx tally is only a lower bound: h2load
    # counts a status twice when its status line arrives split across two
    # reads (short writes make that happen), so it may exceed n.
    m = re.search(r"^status codes: (\d+) 2xx", text, re.M)
    check(m is not None and int(m.group(1)) >= n, "h2load status codes line: %s"
          % (m.group(0) if m else "missing"))
