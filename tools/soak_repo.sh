#!/usr/bin/env bash
# make soak, the repository: smki repo serve under many concurrent keep-alive
# connections (wrk, SOAK_REPO_CONNS, default 256) for SOAK_SECONDS (default 60) on
# loopback, lookups by EUI-64 and by serial, while a CA process keeps issuing into
# the same store. Checks and prints: zero errors (non-2xx and socket errors), the
# server's anonymous resident memory sampled every 5 s (flat; the file-backed part is
# the store's map, growing with the CA's writes), and that the certificates issued
# during the run are all visible through the running server at the end.
set -euo pipefail
BUILD=${1:-build}
SMKI=$BUILD/bin/smki
SECS=${SOAK_SECONDS:-60}
CONNS=${SOAK_REPO_CONNS:-256}
SHARED=${SMKI_SHARED:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-soak-repo.XXXXXX")
source "$(dirname "$0")/repo_lib.sh"
repo_cleanup_trap
export SMKI_HOME=$W/home
unset SMKI_PIN SMKI_SO_PIN
repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf"
"$SMKI" ca init --env test --config "$SMKI_HOME/smki.conf" >/dev/null
"$(dirname "$0")/ra_test_participant.sh" "$SMKI" "$SMKI_HOME" "$W/ra" # test certificates: a Testing Participant
export SMKI_OPERATOR=tester SMKI_OPERATOR_KEY=file:$W/ra/ra-op.pem
"$SMKI" ca issue --env test --party GITTEST --csr "$SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der" --out "$W/dev.pem" >/dev/null
DEV_SERIAL=$(openssl x509 -in "$W/dev.pem" -noout -serial | cut -d= -f2)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org.key" -subj "/CN=soak" \
    -addext "keyUsage=critical,digitalSignature" -out "$W/org.csr" 2>/dev/null

repo_serve_start "$SMKI" "$W/serve.log" --env test --listen 127.0.0.1:0 --threads 2 --max-conns 4096 ||
    { cat "$W/serve.log"; exit 1; }
SERVER=$REPO_PID

echo "== soak repo: ${CONNS} keep-alive connections for ${SECS}s on 127.0.0.1:$PORT while the CA issues"
# The CA: organisation certificates for one EUI-64, one after another, until told to stop.
(
    i=0
    while [ ! -f "$W/stop" ]; do
        "$SMKI" ca issue --env test --party GITTEST --csr "$W/org.csr" --role supplier --eui 90-B3-D5-1F-30-01-00-00 \
            --out "$W/org-$i.pem" >/dev/null
        i=$((i + 1))
    done
    echo "$i" >"$W/issued"
) &
ISSUER=$!
PIDS+=("$ISSUER")
cat >"$W/mix.lua" <<EOF
local paths = {
  "/certificates?eui=00-DB-12-34-56-78-90-A0",
  "/certificates/$DEV_SERIAL",
  "/certificates?eui=90-B3-D5-1F-30-01-00-00&limit=5",
  "/certificates?eui=00-DB-12-34-56-78-90-FF",
  "/health",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
EOF
wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s -s "$W/mix.lua" "http://127.0.0.1:$PORT" >"$W/wrk.out" 2>&1 &
WRK=$!
# Resident memory: anonymous (heap, stacks: must stay flat) apart from file-backed
# (the store's map, which grows as the CA writes into it).
samples=()
files=()
while kill -0 "$WRK" 2>/dev/null; do
    anon=$(awk '/RssAnon/ {print $2}' "/proc/$SERVER/status" 2>/dev/null || true)
    file=$(awk '/RssFile/ {print $2}' "/proc/$SERVER/status" 2>/dev/null || true)
    [ -n "$anon" ] && samples+=("$anon") && files+=("$file")
    sleep 5
done
wait "$WRK" || true
touch "$W/stop"
wait "$ISSUER" || true
sed 's/^/  wrk: /' "$W/wrk.out" | grep -E 'Requests/sec|Latency|requests in|Non-2xx|Socket errors' || true
ISSUED=$(cat "$W/issued" 2>/dev/null || echo 0)
echo "  certificates the CA issued during the run: $ISSUED"
SEEN=$(/usr/bin/python3 -c '
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
n, off = 0, 0
while off is not None:
    c.request("GET", "/certificates?eui=90-B3-D5-1F-30-01-00-00&limit=1000&offset=%d" % off)
    d = json.loads(c.getresponse().read())
    if "count" not in d: # past the offset cap (10000) or max_scan: what was counted so far
        print("%d (then: %s)" % (n, d.get("error")), end=" ")
        break
    n, off = n + d["count"], d["next_offset"]
print(n)' "$PORT")
echo "  of them visible through the running server: $SEEN"
echo "  server anonymous RSS KiB every 5s: ${samples[*]}"
echo "  server file-backed RSS KiB (the store's map) every 5s: ${files[*]}"
first=${samples[1]:-${samples[0]}}
last=${samples[-1]}
echo "  anonymous RSS growth after warm-up: $((last - first)) KiB"
errors=0
grep -q 'Non-2xx' "$W/wrk.out" && errors=1
grep -q 'Socket errors' "$W/wrk.out" && errors=1
[ "$SEEN" = "$ISSUED" ] || { echo "  MISMATCH: issued $ISSUED, visible $SEEN"; errors=1; }
kill -TERM "$SERVER"
wait "$SERVER" && echo "  SIGTERM: clean exit" || { echo "  SIGTERM: exit $?"; errors=1; }
PIDS=()
if [ "$errors" = 0 ]; then echo "  soak repo: zero errors"; else echo "  soak repo: ERRORS (see above)"; exit 1; fi
