#!/usr/bin/env bash
# smoke.sh SHIM SERVER - one server binary under the fault-injection shim,
# driven by curl, ab and h2load, every answer checked.
#
# What it shows: that a backend keeps every byte and every response right
# while its reads and writes come back short, EINTR and EAGAIN, and its
# accepts fail. It is the shim's own check and needs no other test code; the
# integration suite (tests/integration/run.py) is the thorough one.
#
# Needs: curl, ab (apache2-utils), h2load (nghttp2-client), python3.
# FAULT_SEED and FAULT_RATE pass through to the shim. Exit 0 on success.
set -euo pipefail

shim=$1
server=$2
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

fail() {
	echo "FAIL ($(basename "$server")): $*" >&2
	tail -5 "$work/server.err" >&2 || true
	exit 1
}

mkdir "$work/root"
head -c 1500000 /dev/urandom >"$work/root/big.bin"
head -c 300000 /dev/urandom >"$work/body.bin"

LD_PRELOAD=$shim FAULT_VERBOSE=1 "$server" --port 0 --root "$work/root" \
	>"$work/server.out" 2>"$work/server.err" &
pid=$!
for _ in $(seq 50); do
	grep -q '^listening on ' "$work/server.out" && break
	sleep 0.1
done
url=$(sed -n 's/^listening on \(http:[^ ]*\) .*/\1/p' "$work/server.out")
[ -n "$url" ] || fail "no 'listening on' line"

get() { curl -sS --max-time 20 --retry 3 --retry-all-errors "$@"; }

[ "$(get "$url/plaintext")" = "Hello, World!" ] || fail "/plaintext"
[ "$(get "$url/json")" = '{"message":"Hello, World!"}' ] || fail "/json"
get -o "$work/got.bin" "$url/static/big.bin"
cmp -s "$work/got.bin" "$work/root/big.bin" || fail "/static/big.bin differs"
get --data-binary @"$work/body.bin" -o "$work/echo.bin" "$url/echo"
cmp -s "$work/echo.bin" "$work/body.bin" || fail "POST /echo (Content-Length) differs"
get -H 'Transfer-Encoding: chunked' --data-binary @"$work/body.bin" -o "$work/echo2.bin" "$url/echo"
cmp -s "$work/echo2.bin" "$work/body.bin" || fail "POST /echo (chunked) differs"

# Pipelining: three requests in one write, three answers in order.
python3 - "$url" <<'EOF' || fail "pipelined requests"
import socket, sys
host, port = sys.argv[1][len("http://"):].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=20)
req = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
s.sendall((req * 2 + "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode())
data = b""
while chunk := s.recv(65536):
    data += chunk
assert data.count(b"HTTP/1.1 200 OK") == 3, data
assert data.endswith(b'{"message":"Hello, World!"}'), data
EOF

ab_out=$(timeout 120 ab -q -s 20 -k -n 3000 -c 16 "$url/plaintext" 2>&1) || fail "ab: $ab_out"
grep -q '^Complete requests: *3000$' <<<"$ab_out" || fail "ab: not all complete"
grep -q '^Failed requests: *0$' <<<"$ab_out" || fail "ab: failed requests"
if grep -q '^Non-2xx' <<<"$ab_out"; then fail "ab: non-2xx answers"; fi

h2_out=$(timeout 120 h2load --h1 -n 3000 -c 8 -m 4 "$url/json" 2>&1) || fail "h2load: $h2_out"
grep -q '3000 succeeded, 0 failed, 0 errored, 0 timeout' <<<"$h2_out" || fail "h2load: $h2_out"

kill -TERM "$pid"
for _ in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "exit code $rc after SIGTERM"
faults=$(grep '^faultinject:' "$work/server.err") || fail "the shim did not load"
grep -q ' 0 short' <<<"$faults" && fail "no fault was injected: $faults"
echo "ok $(basename "$server"): $faults"
