#!/usr/bin/env bash
# EST enrolment (smki enrol serve) beside bare CA issuance, in the same run, software CA
# keys, one store on this disk:
#   simpleenroll  fresh device CSRs POSTed over mutual TLS with keep-alive (EST_CONNS client
#                 connections: 2, then 8), auto-approved: test is a direct environment ([ra]
#                 direct_issue), so each is the RA gate's direct issuance (smki_ra_issue),
#                 one durable commit with its operator-signed audit entry
#   bare CA       bench_issue with one certificate per durable commit (the same unit of
#                 durability as one enrolment), 1 thread
#   batch         one POST of N PEM CSRs (test is a direct environment: the RA's batch gate
#                 issues it at once; elsewhere an RA request another operator approves, not
#                 timed), polled until done, the PKCS#7 fetched
#   ca batch      'smki ca batch' of N other fresh CSRs from files, --threads 1 (the RA
#                 executes a batch on one thread), certificates written as files
# Prints figures and ratios (targets 0.5 and 0.8); never passes or fails on one.
# Usage: tools/bench_est.sh [BUILD]  (EST_N enrolments per round, default 500; EST_ROUNDS, 3;
# EST_BATCH CSRs in the batch, 4000; EST_CONNS the client connections for simpleenroll, one
# set of rounds for each number in the list, "2 8";
# EST_PERF=FILE records the server with perf in each round; EST_SERVE=BIN serves with another
# smki binary, e.g. build-tsan/bin/smki from make build-tsan, its reports in TSAN_OPTIONS'
# log_path). A service that dies, or exits other than 0 on SIGTERM, fails the bench with its log.
set -euo pipefail
BUILD=${1:-build}
SMKI=$BUILD/bin/smki
N=${EST_N:-500}
ROUNDS=${EST_ROUNDS:-3}
NB=${EST_BATCH:-4000}
CONNS_LIST=${EST_CONNS:-2 8}
PY=/usr/bin/python3
WORK=$(mktemp -d)
PID=
cleanup() {
  local rc=$? src=0
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || src=$?
  fi
  if [ "$src" -ne 0 ]; then
    echo "the enrolment service ended with status $src (a crash, or not stopped cleanly by SIGTERM); its log:" >&2
    tail -20 "$WORK/est.log" >&2
    rc=1
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
source "$(dirname "$0")/repo_lib.sh"
unset SMKI_PIN SMKI_SO_PIN SOFTHSM2_CONF SMKI_OPERATOR SMKI_OPERATOR_KEY
export SMKI_HOME=$WORK/home
mkdir -p "$SMKI_HOME"
repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf"
"$SMKI" ca init --env test --config "$SMKI_HOME/smki.conf" >/dev/null
for k in op est ckpt; do openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$k.pem" 2>/dev/null; done
for k in op est; do openssl pkey -in "$WORK/$k.pem" -pubout -out "$WORK/$k.pub" 2>/dev/null; done
cat >>"$SMKI_HOME/smki.conf" <<CONF
[audit]
checkpoint_key = file:$WORK/ckpt.pem
[ra]
direct_issue = test
rate_per_day = 100000000
demand_baseline = 100000000
batch_review_size = 100000000
[operators]
est = file:$WORK/est.pem
CONF
export SMKI_OPERATOR=bench SMKI_OPERATOR_KEY=file:$WORK/op.pem
"$SMKI" ra operator add bench --pub "$WORK/op.pub" >/dev/null
"$SMKI" ra operator add est --pub "$WORK/est.pub" >/dev/null
"$SMKI" ra party add BENCH --testing-participant --agreement-signed >/dev/null
"$SMKI" ra subscriber authorise --party BENCH --type device --env test >/dev/null
"$SMKI" ra subscriber authorise --party BENCH --type dccki-client --env test >/dev/null
# A Party enrolling for itself gets device certificates only for its own device blocks.
"$SMKI" ra range assign 00DBE5/24 --party BENCH --kind device >/dev/null
"$SMKI" ra range assign 00DBE6/24 --party BENCH --kind device >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$WORK/server.key" \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" -out "$WORK/server.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/client.key" -subj "/CN=bench" \
  -addext "keyUsage=critical,digitalSignature" -out "$WORK/client.csr" 2>/dev/null
"$SMKI" ca issue --env test --profile dccki-client --csr "$WORK/client.csr" --party BENCH --out "$WORK/client.pem" >/dev/null
cat "$SMKI_HOME/ca/test/dccki-ica.pem" "$SMKI_HOME/ca/test/dccki-root.pem" >"$WORK/client-ca.pem"
k=0
for _ in $CONNS_LIST; do
  for r in $(seq 1 "$ROUNDS"); do
    "$BUILD/bin/make_device_csrs" --out "$WORK/single-$k-$r" --count "$N" --start "00-DB-E5-$k$r-00-00-00-00" --der \
      >/dev/null
  done
  k=$((k + 1))
done
"$BUILD/bin/make_device_csrs" --out "$WORK/batch.pem" --bundle --count "$NB" --start 00-DB-E6-00-00-00-00-00 >/dev/null
"$BUILD/bin/make_device_csrs" --out "$WORK/cabatch" --count "$NB" --start 00-DB-E7-00-00-00-00-00 >/dev/null

env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY "${EST_SERVE:-$SMKI}" enrol serve --env test --listen 127.0.0.1:0 --operator est \
  --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" --client-ca "$WORK/client-ca.pem" --retry-after 1 \
  --max-body $((NB * 1000)) 2>"$WORK/est.log" &
PID=$!
PORT=
for _ in $(seq 1 100); do
  # (the log may not exist yet: under set -e and pipefail a failing sed ended the bench)
  PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$WORK/est.log" 2>/dev/null | head -1 || true)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "the enrolment service did not start:"; cat "$WORK/est.log"; exit 1; }

# The client: Python's http.client over one TLS connection per thread, kept alive.
CLIENT=$(
  cat <<'PYEOF'
import base64, glob, http.client, json, ssl, sys, threading, time
import subprocess
mode, port, work, sub = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conns = int(sys.argv[6]) if len(sys.argv) > 6 else 2
ctx = ssl.create_default_context(cafile=work + "/server.pem")
ctx.load_cert_chain(work + "/client.pem", work + "/client.key")
def conn():
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
if mode == "single":
    bodies = [base64.encodebytes(open(f, "rb").read()) for f in sorted(glob.glob(work + "/" + sub + "/*.der"))]
    bad, lock, nxt = [0], threading.Lock(), [0]
    def run():
        c = conn()
        while True:
            with lock:
                i = nxt[0]; nxt[0] += 1
            if i >= len(bodies): return
            c.request("POST", "/.well-known/est/simpleenroll", bodies[i], {"Content-Type": "application/pkcs10"})
            r = c.getresponse(); r.read()
            if r.status != 200:
                with lock: bad[0] += 1
    ths = [threading.Thread(target=run) for _ in range(conns)]
    t0 = time.time()
    for t in ths: t.start()
    for t in ths: t.join()
    took = time.time() - t0
    print("%d %.3f %d" % (len(bodies), took, bad[0]))
else:
    body = open(work + "/batch.pem", "rb").read()
    c = conn()
    t0 = time.time()
    c.request("POST", "/.well-known/est/batch", body, {"Content-Type": "application/x-pem-file"})
    r = c.getresponse(); loc = r.getheader("Location"); ans = json.loads(r.read())
    # A direct-issue environment issues the batch through the RA's batch gate at once;
    # elsewhere it is an RA request the bench's other operator approves (not timed).
    if not ans.get("direct"):
        ta = time.time()
        subprocess.run([sys.argv[5], "ra", "request", "approve", str(ans["request"])], check=True,
                       stdout=subprocess.DEVNULL)
        t0 += time.time() - ta
    while True:
        c.request("GET", loc); r = c.getresponse(); data = r.read()
        if r.status != 202: break
        time.sleep(0.05)
    took = time.time() - t0
    n = len(base64.decodebytes(data)) if r.status == 200 else 0
    print("%d %.3f %d" % (body.count(b"BEGIN CERTIFICATE REQUEST"), took, 0 if r.status == 200 else 1))
PYEOF
)
row() { # label measured peer note
  awk -v l="$1" -v m="$2" -v b="$3" -v n="$4" 'BEGIN { printf "%-40s %10.0f  %10.0f  %6.3f  %s\n", l, m, b, m / b, n }'
}
printf '%-40s %10s  %10s  %6s  %s\n' "figure (per second)" "measured" "peer" "ratio" "note"

# Rounds alternating the two (the machine's other load moves both): each round's rates
# and ratio, then the median ratio; for each number of client connections.
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
single_rounds() { # CONNECTIONS K: the rounds over the CSRs single-K-*
  local conns=$1 k=$2 RATIOS=() CPURATIOS=()
  for r in $(seq 1 "$ROUNDS"); do
    [ -n "${EST_PERF:-}" ] && { perf record --call-graph dwarf,16384 -F 2000 -o "$EST_PERF.$k.$r" -p "$PID" 2>/dev/null & PERFPID=$!; sleep 0.5; }
    c0=$(cpu_ticks "$PID")
    read -r n took bad <<<"$("$PY" -c "$CLIENT" single "$PORT" "$WORK" "single-$k-$r" "$SMKI" "$conns")"
    c1=$(cpu_ticks "$PID")
    [ -n "${EST_PERF:-}" ] && { kill -INT "$PERFPID"; wait "$PERFPID" || true; }
    EST=$(awk -v n="$n" -v t="$took" 'BEGIN { print n / t }')
    ESTCPU=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v hz="$HZ" 'BEGIN { print (b - a) / hz * 1e6 / n }')
    read -r _ _ BARE BARECPU _ <<<"$("$BUILD/bin/bench_issue" smki soft 1 "$N" 5 sync 2>/dev/null)"
    row "EST simpleenroll, $conns conn., round $r" "$EST" "$BARE" "$(awk -v e="$ESTCPU" -v b="$BARECPU" -v n="$n" -v x="$bad" \
      'BEGIN { printf "peer = bare CA issue, 1 durable commit each; CPU us each: server %.0f, bare %.0f; %d enrolments, %d not 200", e, b, n, x }')"
    RATIOS+=("$(awk -v a="$EST" -v b="$BARE" 'BEGIN { print a / b }')")
    CPURATIOS+=("$(awk -v a="$ESTCPU" -v b="$BARECPU" 'BEGIN { print b / a }')")
  done
  printf '%-40s %10s  %10s  %6.3f  %s\n' "EST simpleenroll / bare CA, median" "" "" "$(median "${RATIOS[@]}")" \
    "mutual TLS, keep-alive, $conns connections, auto-approved; target >= 0.5"
  printf '%-40s %10s  %10s  %6.3f  %s\n' "  the same in CPU time, median" "" "" "$(median "${CPURATIOS[@]}")" \
    "bare CA's CPU per certificate / the service's per enrolment (TLS, HTTP, RA, audit included)"
}
k=0
for c in $CONNS_LIST; do
  single_rounds "$c" "$k"
  k=$((k + 1))
done

read -r n took bad <<<"$("$PY" -c "$CLIENT" batch "$PORT" "$WORK" - "$SMKI")"
ESTB=$(awk -v n="$n" -v t="$took" 'BEGIN { print n / t }')
ms=$("$SMKI" --json ca batch --env test --in "$WORK/cabatch" --out "$WORK/cabatch-out" --threads 1 --party BENCH |
  awk -F'"milliseconds":' '{ split($2, a, ","); print a[1] }')
CAB=$(awk -v n="$NB" -v ms="$ms" 'BEGIN { print n * 1000 / ms }')
row "EST batch ($NB CSRs: POST, poll, PKCS#7)" "$ESTB" "$CAB" "peer = smki ca batch --threads 1, same count; $bad failed; target >= 0.8"
