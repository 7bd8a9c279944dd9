"""client.py - a strict, deliberately small HTTP/1.1 client over raw sockets.

What it teaches: what a response looks like on the wire, byte by byte. The
suite does not use http.client or urllib on purpose: they forgive (bare LF,
a missing Content-Length, extra bytes after a body) exactly what the tests
must catch, and they cannot send a malformed request, a split request or a
pipeline of them. Every read here is bounded by a timeout.

Needs: Python 3.7+ standard library only.
"""

import email.utils
import re
import socket
import struct
import time

from suite import Fail, check, check_eq, short

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ([^\r\n]*)")
FIELD_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ?([^\r\n]*?)[ \t]*")
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d\d:\d\d:\d\d GMT")


def request(method, path, headers=None, body=b"", version="HTTP/1.1", host="test"):
    """The bytes of one request. headers: a list of (name, value); Host comes
    first unless host is None; Content-Length is added for a body unless the
    headers already frame it."""
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: " + host)
    names = [n.lower() for n, _ in headers or []]
    for n, v in headers or []:
        lines.append("%s: %s" % (n, v))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(pieces, ext=None, trailers=()):
    """A chunked body: one chunk per piece, `ext` (e.g. ';name=value') after
    every size, then the last chunk and the trailer fields."""
    out = b""
    for p in pieces:
        out += b"%x%s\r\n%s\r\n" % (len(p), (ext or "").encode(), p)
    out += b"0%s\r\n" % (ext or "").encode()
    for n, v in trailers:
        out += ("%s: %s\r\n" % (n, v)).encode()
    return out + b"\r\n"


class Response:
    """One parsed response: status, reason, headers (in order), body."""

    def __init__(self, status, reason, headers, body, head):
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as sent
        self.body = body
        self.head = head  # the raw head bytes

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def header(self, name):
        """The value of a field sent once, None if absent; Fail if repeated."""
        values = self.all(name)
        check(len(values) <= 1, "%s sent %d times" % (name, len(values)))
        return values[0] if values else None

    def media_type(self):
        ct = self.header("Content-Type")
        return ct.split(";")[0].strip().lower() if ct else None

    def closes(self):
        """True if the response says the connection ends after it."""
        conn = (self.header("Connection") or "").lower()
        return "close" in [t.strip() for t in conn.split(",")]

    def __repr__(self):
        return "<%d %s, %d body bytes>" % (self.status, self.reason, len(self.body))


class Conn:
    """A client connection with its own receive buffer, so responses that
    arrive together (pipelining) are split exactly at their boundaries."""

    def __init__(self, addr, timeout):
        self.timeout = timeout
        self.buf = b""
        try:
            self.sock = socket.create_connection(addr, timeout=timeout)
        except OSError as e:
            raise Fail("cannot connect to %s:%d: %s" % (addr[0], addr[1], e))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Fail("send failed: %s" % e)

    def send_slowly(self, data, piece=1, pause=0.002):
        """Sends `data` in pieces of `piece` bytes with a pause after each."""
        for i in range(0, len(data), piece):
            self.send(data[i:i + piece])
            time.sleep(pause)

    def _fill(self, deadline, what):
        """Reads more bytes into the buffer; Fail on timeout or EOF."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail("timed out waiting for %s (have %s)" % (what, short(self.buf[:80])))
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(256 * 1024)
        except socket.timeout:
            raise Fail("timed out waiting for %s (have %s)" % (what, short(self.buf[:80])))
        except OSError as e:
            raise Fail("connection error while waiting for %s: %s" % (what, e))
        if not data:
            raise Fail("connection closed while waiting for %s (have %s)"
                       % (what, short(self.buf[:80])))
        self.buf += data

    def read_response(self, method="GET", timeout=None):
        """Reads exactly one response (a 1xx one too). Checks the framing
        strictly: CRLF line ends, a well-formed status line and fields, one
        valid Content-Length on every final response but a 304, which has
        no content (RFC 9110 15.4.5)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            check(len(self.buf) < 65536, "response head over 64 KiB")
            self._fill(deadline, "a response head")
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.split(b"\r\n")
        for line in lines:
            check(b"\n" not in line and b"\r" not in line,
                  "bare CR or LF in response head: %s" % short(raw))
        m = STATUS_LINE.fullmatch(lines[0])
        check(m is not None, "bad status line %s" % short(lines[0]))
        headers = []
        for line in lines[1:]:
            f = FIELD_LINE.fullmatch(line)
            check(f is not None, "bad header line %s" % short(line))
            headers.append((f.group(1).decode("latin-1"), f.group(2).decode("latin-1")))
        resp = Response(int(m.group(1)), m.group(2).decode("latin-1"), headers, b"", raw)
        if resp.status < 200:
            return resp
        length = resp.header("Content-Length")
        if resp.status == 304:
            check(length is None or length.isdigit(), "304 with a bad Content-Length")
            return resp
        check(length is not None and length.isdigit(),
              "%d response without a valid Content-Length (%s)" % (resp.status, short(length)))
        if method != "HEAD":
            n = int(length)
            while len(self.buf) < n:
                self._fill(deadline, "%d body bytes of a %d response" % (n, resp.status))
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        return resp

    def roundtrip(self, data, method="GET"):
        self.send(data)
        return self.read_response(method)

    def wait_closed(self, timeout=None):
        """Reads until the server closes (EOF or reset). Returns the bytes that
        came before the close; Fail if it stays open past the timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        extra = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail("connection still open after %.1fs" % (timeout or self.timeout))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return extra
            if not data:
                return extra
            extra += data

    def is_open(self, wait=0.05):
        """True if nothing (no EOF, no data) arrives within `wait` seconds."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except socket.timeout:
            return True
        except OSError:
            return False
        return bool(data)

    def abort(self):
        """Closes with a reset (SO_LINGER 0), as a crashing client would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


def check_common(resp, method="GET"):
    """What every response must carry (RFC 9110): a Server field, a Date in
    IMF-fixdate close to now, and a Content-Length equal to the body sent."""
    server = resp.header("Server")
    check(server, "no Server field")
    date = resp.header("Date")
    check(date is not None, "no Date field")
    check(IMF_FIXDATE.fullmatch(date) is not None, "Date not in IMF-fixdate: %s" % short(date))
    skew = abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time())
    check(skew < 30, "Date is %.0fs away from now" % skew)
    if method != "HEAD" and resp.status != 304:
        check_eq(int(resp.header("Content-Length")), len(resp.body), "Content-Length vs body")


def expect(resp, status, body=None, media=None, method="GET"):
    """Checks status, the common fields, and optionally body and media type."""
    if resp.status != status:
        raise Fail("status %d %s, want %d (body %s)"
                   % (resp.status, resp.reason, status, short(resp.body[:100])))
    check_common(resp, method)
    if media is not None:
        check_eq(resp.media_type(), media, "Content-Type of %d" % status)
    if body is not None:
        check_eq(resp.body, body, "body")
