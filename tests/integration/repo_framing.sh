#!/usr/bin/env bash
# smki repo serve against request smuggling (RFC 9112 6.3): a request with both
# Content-Length and Transfer-Encoding, or two different Content-Lengths, is answered
# 400 and its connection closed, so nothing carried in its body is ever served as a
# request; two equal Content-Lengths, and keep-alive requests before it, are served.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
PY=/usr/bin/python3
TIMEOUT=120
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-repo-framing.XXXXXX")
source "$HERE/lib.sh"
repo_cleanup_trap

unset SMKI_PIN SMKI_SO_PIN SMKI_DEBUG SOFTHSM2_CONF
export SMKI_HOME=$W/home
repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf"
expect_exit 0 "a test hierarchy to serve" smki ca init --env test --config "$SMKI_HOME/smki.conf"
start_server "$W/s.log" --env test --listen 127.0.0.1:0 --threads 1

cat >"$W/framing.py" <<'PY'
import socket, sys
port = int(sys.argv[1])
failed = 0

def check(cond, desc, extra=b""):
    global failed
    print(("ok - " if cond else "not ok - ") + desc)
    if not cond:
        failed += 1
        print("#   " + repr(extra[:300]))

def exchange(raw):
    """Everything the server sends back on one connection until it closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        except socket.timeout:
            data += b"<timeout>"
    return data

smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
r = exchange(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
check(r.startswith(b"HTTP/1.1 400 "), "Content-Length with Transfer-Encoding: 400", r)
check(b"ambiguous framing" in r, "the answer says why", r)
check(r.count(b"HTTP/1.1 ") == 1, "the connection is closed: the request in its body is never served", r)
r = exchange(b"POST /search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n")
check(r.startswith(b"HTTP/1.1 400 "), "the other order, any case: 400", r)
r = exchange(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 39\r\n\r\nabcd" + smuggled)
check(r.startswith(b"HTTP/1.1 400 ") and r.count(b"HTTP/1.1 ") == 1, "two different Content-Lengths: 400, closed", r)
r = exchange(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length:  0 \r\nConnection: close\r\n\r\n")
check(r.startswith(b"HTTP/1.1 200 "), "two equal Content-Lengths are served", r)
r = exchange(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" +
             b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
check(r.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 400 " in r, "keep-alive: the good request served, the ambiguous one after it refused", r)
r = exchange(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check(r.startswith(b"HTTP/1.1 200 "), "the server serves on", r)
sys.exit(1 if failed else 0)
PY
run timeout "$TIMEOUT" "$PY" "$W/framing.py" "$PORT"
printf '%s\n' "$OUT"
PASSED=$((PASSED + $(grep -c '^ok - ' <<<"$OUT" || true)))
FAILED=$((FAILED + $(grep -c '^not ok - ' <<<"$OUT" || true)))
[[ $RC == 0 ]] || { not_ok "framing.py exited $RC"; diag; }
run curl -sS "http://127.0.0.1:$PORT/metrics"
check "the 400s are counted" grep -qE '^smki_repo_requests_total\{env="test",endpoint="other",code="4xx"\} [1-9]' <<<"$OUT"
stop_servers_and_check_logs "$W/s.log"
finish
