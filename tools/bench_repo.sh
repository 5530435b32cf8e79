#!/usr/bin/env bash
# The repository benchmark: certificate lookups by EUI-64 over HTTP (GET
# /certificates?eui=..., JSON) from a store of N device certificates (default 10^6),
# beside nginx serving the very same answers as static files, both under wrk at the
# same concurrency with keep-alive, in the same run. Prints rate and p99 of each and
# the ratio smki/nginx. Prints figures; never passes or fails on them.
# Rounds alternate the two servers (REPO_ROUNDS each); the ratio is the median of the
# rounds' ratios. With PostgreSQL 15 installed (REPO_PG=0 turns it off), a third
# server joins the rounds: smki repo serve reading a hot standby of a local primary
# into which the same store was copied (smki store copy), as on a repository host.
# Then the same over TLS (REPO_TLS=0 skips it), both servers with the
# same DCCKI server certificate chain: keep-alive (wrk), a full handshake per request
# (wrk, Connection: close; wrk resumes no session), and mutual TLS with a DCCKI client
# certificate (wrk cannot present one): keep-alive (bench_tls_load, the same connections
# as wrk's) and a handshake per request (openssl s_time -new, one client per core).
#   tools/bench_repo.sh [BUILD]   REPO_N=1000000 REPO_SECS=10 REPO_ROUNDS=3 REPO_CONNS=64 REPO_THREADS=2 REPO_PG_THREADS=8
#                                 REPO_TLS=1 REPO_TLS_SECS=5
set -euo pipefail
BUILD=${1:-build}
SMKI=$BUILD/bin/smki
LOAD=$BUILD/bin/bench_repo_load
N=${REPO_N:-1000000}
SECS=${REPO_SECS:-10}
CONNS=${REPO_CONNS:-64}
THREADS=${REPO_THREADS:-2}
# A loop answers the requests it read in one turn together: their lookups go to the
# standby as one statement, one round trip per turn (smki_repo_handle_many). The loop
# waits on that round trip, and the requests that arrive meanwhile make the next turn's
# batch, so more loops than cores buy nothing (REPO_PG_THREADS, default 2 as for LMDB).
PG_THREADS=${REPO_PG_THREADS:-2}
ROUNDS=${REPO_ROUNDS:-3}
SAMPLES=${REPO_SAMPLES:-20000}
SHARED=${SMKI_SHARED:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-bench-repo.XXXXXX")
source "$(dirname "$0")/repo_lib.sh"
repo_cleanup_trap
PG_CLUSTER=$(dirname "$0")/../tests/pg/cluster.sh
PG_ON=0
[ "${REPO_PG:-1}" != 0 ] && [ -x /usr/lib/postgresql/15/bin/initdb ] && PG_ON=1
if [ "$PG_ON" = 1 ]; then
    trap 'repo_cleanup; "$PG_CLUSTER" stop "$W.primary"; "$PG_CLUSTER" stop "$W.standby"' EXIT INT TERM
fi
for t in wrk nginx; do command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "bench_repo: $t is missing (tools/deps.sh)"; exit 1; }; done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "smki bench repo: $N certificates, wrk ${CONNS} connections, $ROUNDS rounds of ${SECS}s each, $(nproc) core(s); disk:"
df -h "$W" | tail -1 | sed 's/^/  /'
export SMKI_HOME=$W/home
mkdir -p "$SMKI_HOME/store"
"$LOAD" "$SMKI_HOME/store" test "$N" "$SHARED/vectors/gbcs/keystore/00db1234567890a0-ds.pem" "$W/euis.txt" "$SAMPLES"
du -sh "$SMKI_HOME/store" | sed 's/^/  store on disk: /'

repo_serve_start "$SMKI" "$W/serve.log" --env test --listen 127.0.0.1:0 --threads "$THREADS" --max-conns 4096 ||
    { cat "$W/serve.log"; exit 1; }
SMKI_PID=$REPO_PID

# The same store on a PostgreSQL hot standby, served by a second smki repo serve.
if [ "$PG_ON" = 1 ]; then
    "$PG_CLUSTER" start "$W.primary" >/dev/null
    "$PG_CLUSTER" standby "$W.standby" "$W.primary" repo1 >/dev/null
    PGP=$(grep -v '^#' "$W.primary")
    PGS=$(grep -v '^#' "$W.standby")
    t0=$(date +%s.%N)
    "$SMKI" store copy --from "$SMKI_HOME/store" --to "postgresql:$PGP" >/dev/null
    target=$(psql -qAtX "$PGP" -c "SELECT pg_current_wal_lsn()")
    until [ "$(psql -qAtX "$PGS" -c "SELECT pg_last_wal_replay_lsn() >= '$target'")" = t ]; do sleep 0.2; done
    echo "  copied to a PostgreSQL primary and replayed on its standby in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s"
    mkdir -p "$W/pg-home"
    printf '[store]\nengine = postgresql\nconninfo = %s\n' "$PGS" >"$W/pg-home/smki.conf"
    SAVE_PORT=$PORT
    repo_serve_start "$SMKI" "$W/serve-pg.log" --home "$W/pg-home" --env test --listen 127.0.0.1:0 --threads "$PG_THREADS" \
        --max-conns 4096 || { cat "$W/serve-pg.log"; exit 1; }
    PG_PID=$REPO_PID
    PGPORT=$PORT
    PORT=$SAVE_PORT
fi

# The same answers as static files: fetched once from smki, byte for byte.
mkdir -p "$W/www/eui" "$W/nginx/tmp"
/usr/bin/python3 - "$PORT" "$W/euis.txt" "$W/www/eui" <<'PY'
import http.client, sys
port, euis, out = int(sys.argv[1]), open(sys.argv[2]).read().split(), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port)
for e in euis:
    c.request("GET", "/certificates?eui=" + e)
    r = c.getresponse()
    body = r.read()
    assert r.status == 200 and b'"count":2,' in body, (e, r.status, body[:200])
    open("%s/%s.json" % (out, e), "wb").write(body)
print("  %d answers written for nginx (%d octets each)" % (len(euis), len(body)))
PY
TLS=${REPO_TLS:-1}
TLS_SECS=${REPO_TLS_SECS:-5}
if [ "$TLS" = 1 ]; then
    # A test hierarchy in the same store (software CA keys), a Party authorised for DCCKI
    # TLS certificates, its server certificate (for 127.0.0.1) and a client certificate.
    T=$W/tls
    mkdir -p "$T"
    repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf"
    "$SMKI" ca init --env test >/dev/null
    "$(dirname "$0")/ra_test_participant.sh" "$SMKI" "$SMKI_HOME" "$T/ra"
    export SMKI_OPERATOR=tester SMKI_OPERATOR_KEY=file:$T/ra/ra-op.pem
    "$SMKI" ra party add BENCH-TLS --testing-participant --agreement-signed >/dev/null
    for ty in dccki-server dccki-client; do
        "$SMKI" ra subscriber authorise --party BENCH-TLS --type $ty --env test >/dev/null
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$ty.key" \
            -subj "/2.5.4.97=BENCH-TLS/CN=bench" -addext "keyUsage=critical,digitalSignature" -out "$T/$ty.csr" 2>/dev/null
    done
    "$SMKI" ca issue --env test --profile dccki-server --csr "$T/dccki-server.csr" --party BENCH-TLS --ip 127.0.0.1 \
        --out "$T/server.pem" >/dev/null
    "$SMKI" ca issue --env test --profile dccki-client --csr "$T/dccki-client.csr" --party BENCH-TLS \
        --out "$T/client.pem" >/dev/null
    CAD=$SMKI_HOME/ca/test
    cat "$T/server.pem" "$CAD/dccki-ica.pem" >"$T/chain.pem"
    cat "$CAD/dccki-ica.pem" "$CAD/dccki-root.pem" >"$T/client-ca.pem"
    chmod 0644 "$T/dccki-server.key"
    repo_serve_start "$SMKI" "$W/serve-tls.log" --env test --listen 127.0.0.1:0 --threads "$THREADS" --max-conns 4096 \
        --tls-cert "$T/chain.pem" --tls-key "$T/dccki-server.key" || { cat "$W/serve-tls.log"; exit 1; }
    TPORT=$PORT TLS_PID=$REPO_PID
    # Mutual TLS as DCC Gateway connections use it: a certificate required, the endpoint
    # not public, the client's certificate looked up in the store once per connection.
    repo_serve_start "$SMKI" "$W/serve-mtls.log" --env test --listen 127.0.0.1:0 --threads "$THREADS" \
        --max-conns 4096 --tls-cert "$T/chain.pem" --tls-key "$T/dccki-server.key" --client-ca "$T/client-ca.pem" \
        --require-client-cert --public health || { cat "$W/serve-mtls.log"; exit 1; }
    MPORT=$PORT MTLS_PID=$REPO_PID
    PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$W/serve.log" | head -1)
fi
chmod -R a+rX "$W" # nginx's workers run as another user
NPORT=$((PORT + 1))
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes $THREADS;
worker_rlimit_nofile 65536;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 100000000; keepalive_timeout 60;
    # Below the file-descriptor limit a container may hold nginx to (1024 here).
    open_file_cache max=800 inactive=60s; open_file_cache_valid 60s;
    default_type application/json;
    client_body_temp_path $W/nginx/tmp; proxy_temp_path $W/nginx/tmp; fastcgi_temp_path $W/nginx/tmp;
    uwsgi_temp_path $W/nginx/tmp; scgi_temp_path $W/nginx/tmp;
    server { listen 127.0.0.1:$NPORT; root $W/www; }
$(if [ "$TLS" = 1 ]; then cat <<TLSCONF
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $T/chain.pem;
    ssl_certificate_key $T/dccki-server.key;
    server { listen 127.0.0.1:$((NPORT + 1)) ssl; root $W/www; }
    server {
        listen 127.0.0.1:$((NPORT + 2)) ssl; root $W/www;
        ssl_client_certificate $T/client-ca.pem; ssl_verify_client on; ssl_verify_depth 4;
    }
TLSCONF
fi)
}
EOF
"$NGINX" -c "$W/nginx/nginx.conf" -p "$W/nginx" 2>"$W/nginx/stderr" &
PIDS+=($!)
NGINX_PID=$!
sleep 0.5

# wrk picks a random sampled EUI-64 per request.
lua() { # prefix suffix
    {
        echo "local euis = {}"
        while read -r e; do echo "euis[#euis+1] = \"$e\""; done <"$W/euis.txt"
        echo "math.randomseed(os.time())"
        echo "request = function() return wrk.format(\"GET\", \"$1\" .. euis[math.random(#euis)] .. \"$2\") end"
    }
}
lua "/certificates?eui=" "" >"$W/smki.lua"
lua "/eui/" ".json" >"$W/nginx.lua"
# CPU time (user + system clock ticks) of a process and its children's threads:
# nginx's workers are its master's children; smki's loops are threads of one process.
ticks() {
    local t=0 p
    for p in "$@" $(pgrep -P "$1" 2>/dev/null || true); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
HZ=$(getconf CLK_TCK)
measure() { # name port script pid [scheme [secs [wrk args...]]] -> "rate p99_ms errors cpu_us_per_request"
    local t0 t1 name=$1 port=$2 script=$3 pid=$4 scheme=${5:-http} secs=${6:-$SECS}
    shift 4
    [ $# -gt 0 ] && shift
    [ $# -gt 0 ] && shift
    t0=$(ticks "$pid")
    wrk -t2 -c"$CONNS" -d"${secs}s" --latency "$@" -s "$script" "$scheme://127.0.0.1:$port" >"$W/$name.wrk" 2>&1
    t1=$(ticks "$pid")
    echo "cpu_ticks $((t1 - t0))" >>"$W/$name.wrk"
    wrk_figures "$W/$name.wrk"
}
# mtls_load name port paths pid: as measure, with a client certificate (bench_tls_load:
# wrk cannot present one), keep-alive, the same connections and seconds as the TLS rounds.
mtls_load() {
    local t0 t1
    t0=$(ticks "$4")
    "$BUILD/bin/bench_tls_load" "$2" "$CONNS" 2 "$TLS_SECS" "$T/client.pem" "$T/dccki-client.key" "$T/client-ca.pem" \
        "$3" >"$W/$1.wrk" 2>&1
    t1=$(ticks "$4")
    echo "cpu_ticks $((t1 - t0))" >>"$W/$1.wrk"
    wrk_figures "$W/$1.wrk"
}
wrk_figures() { # a wrk (or bench_tls_load) report -> "rate p99_ms errors cpu_us_per_request"
    awk -v hz="$HZ" '
        /Requests\/sec/ { rate = $2 }
        /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; p99 = v }
        /Non-2xx/ { err += $NF } /Socket errors/ { err += 1 }
        / requests in / { n = $1 } /^cpu_ticks/ { ticks = $2 }
        END { printf "%s %s %d %.2f\n", rate, p99, err, n ? ticks * 1e6 / hz / n : 0 }' "$1"
}
measure warm "$PORT" "$W/smki.lua" "$SMKI_PID" >/dev/null
[ "$PG_ON" = 1 ] && measure warmpg "$PGPORT" "$W/smki.lua" "$PG_PID" >/dev/null
# Rounds alternate smki and nginx (the machine's other load moves both alike); each
# round's figures, then the medians and the median of the per-round ratios.
# Beside the rates, the servers' own CPU time per request (from /proc): less moved by
# the other work on a shared machine than the rates are.
printf '\n%-44s %12s %10s %8s %12s\n' "lookup by EUI-64, $N certs, ${CONNS} conns" "requests/s" "p99 ms" "errors" "CPU us/req"
: >"$W/rounds"
for r in $(seq 1 "$ROUNDS"); do
    read -r SR SP SE SC <<<"$(measure smki$r "$PORT" "$W/smki.lua" "$SMKI_PID")"
    read -r NR NP NE NC <<<"$(measure nginx$r "$NPORT" "$W/nginx.lua" "$NGINX_PID")"
    printf '%-44s %12.0f %10.2f %8s %12.2f\n' "round $r: smki repo serve (h2o, $THREADS loops)" "$SR" "$SP" "$SE" "$SC"
    printf '%-44s %12.0f %10.2f %8s %12.2f\n' "round $r: nginx, same answers as static files" "$NR" "$NP" "$NE" "$NC"
    echo "$SR $SP $SE $NR $NP $NE $SC $NC" >>"$W/rounds"
    if [ "$PG_ON" = 1 ]; then
        PM=$(head -1 "$(sed -n 's/^# dir //p' "$W.standby")/data/postmaster.pid")
        b0=$(ticks "$PM")
        read -r PR PP PE PC <<<"$(measure pg$r "$PGPORT" "$W/smki.lua" "$PG_PID")"
        b1=$(ticks "$PM")
        PB=$(awk -v t="$((b1 - b0))" -v hz="$HZ" '/ requests in / { n = $1 } END { printf "%.2f", n ? t * 1e6 / hz / n : 0 }' "$W/pg$r.wrk")
        printf '%-44s %12.0f %10.2f %8s %12.2f  + standby backends %s\n' "round $r: smki on a PG hot standby ($PG_THREADS loops)" \
            "$PR" "$PP" "$PE" "$PC" "$PB"
        echo "$PR $PP $PE $NR $SR $PC $PB" >>"$W/pg-rounds"
    fi
done
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
SR=$(awk '{print $1}' "$W/rounds" | median)
SP=$(awk '{print $2}' "$W/rounds" | median)
NR=$(awk '{print $4}' "$W/rounds" | median)
NP=$(awk '{print $5}' "$W/rounds" | median)
SC=$(awk '{print $7}' "$W/rounds" | median)
NC=$(awk '{print $8}' "$W/rounds" | median)
SE=$(awk '{e += $3} END {print e}' "$W/rounds")
NE=$(awk '{e += $6} END {print e}' "$W/rounds")
RATIO=$(awk '{print $1 / $4}' "$W/rounds" | median)
printf '%-44s %12.0f %10.2f %8s %12.2f\n' "median: smki repo serve (h2o, $THREADS loops)" "$SR" "$SP" "$SE" "$SC"
printf '%-44s %12.0f %10.2f %8s %12.2f\n' "median: nginx, same answers as static files" "$NR" "$NP" "$NE" "$NC"
printf '%-44s %12.3f   (target >= 1.0; rounds: %s)\n' "ratio smki / nginx (median of rounds)" "$RATIO" \
    "$(awk '{printf "%s%.3f", (NR > 1 ? " " : ""), $1 / $4}' "$W/rounds")"
awk -v s="$SC" -v n="$NC" 'BEGIN { if (s > 0) printf "%-44s %12.3f   (nginx CPU per request / smki CPU per request)\n", "CPU-time ratio", n / s }'
if [ "$PG_ON" = 1 ]; then
    # Where the time goes: the CPU column counts smki's process (a lookup is one
    # round trip: one prepared statement, the index entries joined with their
    # certificates, in the read's implicit transaction, whose sync follows unanswered;
    # most of it is the kernel's: waking threads, socket calls); "standby backends" the
    # CPU of the standby's postgres processes per request, on the same 2 cores.
    PR=$(awk '{print $1}' "$W/pg-rounds" | median)
    PP=$(awk '{print $2}' "$W/pg-rounds" | median)
    PC=$(awk '{print $6}' "$W/pg-rounds" | median)
    printf '%-44s %12.0f %10.2f %8s %12.2f  + standby backends %s\n' "median: smki on a PG hot standby ($PG_THREADS loops)" \
        "$PR" "$PP" "$(awk '{e += $3} END {print e}' "$W/pg-rounds")" "$PC" "$(awk '{print $7}' "$W/pg-rounds" | median)"
    printf '%-44s %12.3f   (target >= 0.3; rounds: %s)\n' "ratio PG standby / nginx (median of rounds)" \
        "$(awk '{print $1 / $4}' "$W/pg-rounds" | median)" "$(awk '{printf "%s%.3f", (NR > 1 ? " " : ""), $1 / $4}' "$W/pg-rounds")"
    printf '%-44s %12.3f\n' "ratio PG standby / LMDB (median of rounds)" "$(awk '{print $1 / $5}' "$W/pg-rounds" | median)"
fi
for f in "$W"/smki[0-9]*.wrk "$W"/nginx[0-9]*.wrk "$W"/pg[0-9]*.wrk; do
    [ -e "$f" ] || continue
    grep -E 'Socket errors|Non-2xx' "$f" | sed "s/^/  $(basename "$f" .wrk): /" || true
done
grep -q 'Non-2xx' "$W"/nginx[0-9]*.wrk && tail -2 "$W/nginx/error.log" | sed 's/^/  nginx error.log: /'
echo "  (errors: wrk's non-2xx answers plus socket errors; the machine's load average: $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$TLS" = 1 ] || exit 0

# ---- Over TLS: the same certificate chain and answers for both -----------------------------------
# s_time: one client per core, each a handshake per request (HTTP/1.0, -new), for
# REPO_TLS_SECS; "N connections in T real seconds" summed.
stime() { # name port path pid -> "rate 0 errors cpu_us_per_request"
    local t0 t1 i clients=()
    t0=$(ticks "$4")
    for i in $(seq 1 "$(nproc)"); do
        openssl s_time -connect "127.0.0.1:$2" -new -time "$TLS_SECS" -www "$3" -cert "$T/client.pem" \
            -key "$T/dccki-client.key" >"$W/$1.$i.stime" 2>&1 &
        clients+=($!)
    done
    wait "${clients[@]}" || true
    t1=$(ticks "$4")
    cat "$W/$1".*.stime | awk -v ticks=$((t1 - t0)) -v hz="$HZ" '
        / connections in [0-9.]+ real seconds/ { n += $1; t = $4 }
        END { printf "%.1f 0 0 %.2f\n", t ? n / t : 0, n ? ticks * 1e6 / hz / n : 0 }'
}
EUI1=$(head -1 "$W/euis.txt")
# A check that both answer the same over TLS before timing them.
a=$(curl -s --cacert "$T/client-ca.pem" "https://127.0.0.1:$TPORT/certificates?eui=$EUI1" | sha256sum)
b=$(curl -s --cacert "$T/client-ca.pem" "https://127.0.0.1:$((NPORT + 1))/eui/$EUI1.json" | sha256sum)
[ "$a" = "$b" ] || echo "  WARNING: smki and nginx answers differ over TLS"
c=$(curl -s --cacert "$T/client-ca.pem" --cert "$T/client.pem" --key "$T/dccki-client.key" \
    "https://127.0.0.1:$MPORT/certificates?eui=$EUI1" | sha256sum)
[ "$a" = "$c" ] || echo "  WARNING: smki's answer over mutual TLS differs"
sed 's#^#/certificates?eui=#' "$W/euis.txt" >"$W/smki.paths"
sed 's#^\(.*\)$#/eui/\1.json#' "$W/euis.txt" >"$W/nginx.paths"
printf '\n%-44s %12s %10s %8s %12s\n' "over TLS (same chain), $N certs" "requests/s" "p99 ms" "errors" "CPU us/req"
: >"$W/tls-rounds"
for r in $(seq 1 "$ROUNDS"); do
    read -r SR SP SE SC <<<"$(measure tls-smki$r "$TPORT" "$W/smki.lua" "$TLS_PID" https "$TLS_SECS")"
    read -r NR NP NE NC <<<"$(measure tls-nginx$r "$((NPORT + 1))" "$W/nginx.lua" "$NGINX_PID" https "$TLS_SECS")"
    printf '%-44s %12.0f %10.2f %8s %12.2f\n' "round $r keep-alive: smki" "$SR" "$SP" "$SE" "$SC"
    printf '%-44s %12.0f %10.2f %8s %12.2f\n' "round $r keep-alive: nginx" "$NR" "$NP" "$NE" "$NC"
    echo "keepalive $SR $NR $SC $NC" >>"$W/tls-rounds"
    read -r SR SP SE SC <<<"$(measure hs-smki$r "$TPORT" "$W/smki.lua" "$TLS_PID" https "$TLS_SECS" -H "Connection: close")"
    read -r NR NP NE NC <<<"$(measure hs-nginx$r "$((NPORT + 1))" "$W/nginx.lua" "$NGINX_PID" https "$TLS_SECS" -H "Connection: close")"
    printf '%-44s %12.0f %10.2f %8s %12.2f\n' "round $r handshake per request: smki" "$SR" "$SP" "$SE" "$SC"
    printf '%-44s %12.0f %10.2f %8s %12.2f\n' "round $r handshake per request: nginx" "$NR" "$NP" "$NE" "$NC"
    echo "handshake $SR $NR $SC $NC" >>"$W/tls-rounds"
    read -r SR SP SE SC <<<"$(mtls_load mka-smki$r "$MPORT" "$W/smki.paths" "$MTLS_PID")"
    read -r NR NP NE NC <<<"$(mtls_load mka-nginx$r "$((NPORT + 2))" "$W/nginx.paths" "$NGINX_PID")"
    printf '%-44s %12.0f %10.2f %8s %12.2f\n' "round $r mutual TLS keep-alive: smki" "$SR" "$SP" "$SE" "$SC"
    printf '%-44s %12.0f %10.2f %8s %12.2f\n' "round $r mutual TLS keep-alive: nginx" "$NR" "$NP" "$NE" "$NC"
    echo "mutual-keepalive $SR $NR $SC $NC" >>"$W/tls-rounds"
    read -r SR _ _ SC <<<"$(stime mtls-smki$r "$MPORT" "/certificates?eui=$EUI1" "$MTLS_PID")"
    read -r NR _ _ NC <<<"$(stime mtls-nginx$r "$((NPORT + 2))" "/eui/$EUI1.json" "$NGINX_PID")"
    printf '%-44s %12.0f %10s %8s %12.2f\n' "round $r mutual TLS, handshake each: smki" "$SR" "-" "-" "$SC"
    printf '%-44s %12.0f %10s %8s %12.2f\n' "round $r mutual TLS, handshake each: nginx" "$NR" "-" "-" "$NC"
    echo "mutual $SR $NR $SC $NC" >>"$W/tls-rounds"
done
for mode in keepalive handshake mutual-keepalive mutual; do
    ratio=$(awk -v m=$mode '$1 == m && $3 > 0 {print $2 / $3}' "$W/tls-rounds" | median)
    cpu=$(awk -v m=$mode '$1 == m && $4 > 0 {print $5 / $4}' "$W/tls-rounds" | median)
    printf '%-44s %12.3f   (target >= 1.0; CPU-time ratio nginx/smki %.3f; rounds: %s)\n' "TLS $mode: ratio smki / nginx" \
        "$ratio" "$cpu" "$(awk -v m=$mode '$1 == m && $3 > 0 {printf "%s%.3f", (n++ ? " " : ""), $2 / $3}' "$W/tls-rounds")"
done
for f in "$W"/tls-*.wrk "$W"/hs-*.wrk "$W"/mka-*.wrk; do
    grep -E 'Socket errors|Non-2xx' "$f" | sed "s/^/  $(basename "$f" .wrk): /" || true
done
exit 0
