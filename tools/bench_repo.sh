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
#   tools/bench_repo.sh [BUILD]   REPO_N=1000000 REPO_SECS=10 REPO_ROUNDS=3 REPO_CONNS=64 REPO_THREADS=2
set -euo pipefail
BUILD=${1:-build}
SMKI=$BUILD/bin/smki
LOAD=$BUILD/bin/bench_repo_load
N=${REPO_N:-1000000}
SECS=${REPO_SECS:-10}
CONNS=${REPO_CONNS:-64}
THREADS=${REPO_THREADS:-2}
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
    repo_serve_start "$SMKI" "$W/serve-pg.log" --home "$W/pg-home" --env test --listen 127.0.0.1:0 --threads "$THREADS" \
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
measure() { # name port script pid -> "rate p99_ms errors cpu_us_per_request"
    local t0 t1
    t0=$(ticks "$4")
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$3" "http://127.0.0.1:$2" >"$W/$1.wrk" 2>&1
    t1=$(ticks "$4")
    echo "cpu_ticks $((t1 - t0))" >>"$W/$1.wrk"
    awk -v hz="$HZ" '
        /Requests\/sec/ { rate = $2 }
        /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; p99 = v }
        /Non-2xx/ { err += $NF } /Socket errors/ { err += 1 }
        / requests in / { n = $1 } /^cpu_ticks/ { ticks = $2 }
        END { printf "%s %s %d %.2f\n", rate, p99, err, n ? ticks * 1e6 / hz / n : 0 }' "$W/$1.wrk"
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
        printf '%-44s %12.0f %10.2f %8s %12.2f  + standby backends %s\n' "round $r: smki repo serve on a PG hot standby" \
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
    # Where the time goes: the CPU column counts smki's process (libpq round trips: a
    # transaction's BEGIN, each statement, its end); "standby backends" the CPU of the
    # standby's postgres processes per request, on the same 2 cores.
    PR=$(awk '{print $1}' "$W/pg-rounds" | median)
    PP=$(awk '{print $2}' "$W/pg-rounds" | median)
    PC=$(awk '{print $6}' "$W/pg-rounds" | median)
    printf '%-44s %12.0f %10.2f %8s %12.2f  + standby backends %s\n' "median: smki repo serve on a PG hot standby" \
        "$PR" "$PP" "$(awk '{e += $3} END {print e}' "$W/pg-rounds")" "$PC" "$(awk '{print $7}' "$W/pg-rounds" | median)"
    printf '%-44s %12.3f   (target >= 0.3; rounds: %s)\n' "ratio PG standby / nginx (median of rounds)" \
        "$(awk '{print $1 / $4}' "$W/pg-rounds" | median)" "$(awk '{printf "%s%.3f", (NR > 1 ? " " : ""), $1 / $4}' "$W/pg-rounds")"
    printf '%-44s %12.3f\n' "ratio PG standby / LMDB (median of rounds)" "$(awk '{print $1 / $5}' "$W/pg-rounds" | median)"
fi
for f in "$W"/smki[0-9]*.wrk "$W"/nginx[0-9]*.wrk "$W"/pg[0-9]*.wrk; do
    grep -E 'Socket errors|Non-2xx' "$f" | sed "s/^/  $(basename "$f" .wrk): /" || true
done
grep -q 'Non-2xx' "$W"/nginx[0-9]*.wrk && tail -2 "$W/nginx/error.log" | sed 's/^/  nginx error.log: /'
echo "  (errors: wrk's non-2xx answers plus socket errors; the machine's load average: $(cut -d' ' -f1-3 /proc/loadavg))"
exit 0
