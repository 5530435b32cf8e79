#!/usr/bin/env bash
# The ca batch part of make bench alone: smki ca batch on LMDB and on PostgreSQL (a
# local durable cluster, as in tools/bench.sh), 1 and 2 threads, the PG/LMDB ratio of
# each pair. Every round runs each smki binary given, one after the other, so an old
# and a new build are measured in the same minutes on the same cluster and home; the
# medians over the rounds close the report.
#
#   tools/bench_ca_batch.sh [-n CSRS] [-r ROUNDS] [-s] [SMKI...]   (default build/bin/smki)
#     -s  instead of timing: log every statement (log_statement = all) of one PG batch
#         per binary and thread count, and print statements per CSR, the statements
#         that come once per CSR or more, and the client's send and poll calls per CSR
#         (strace: a blocking round trip is a send and a poll)
# make_device_csrs is taken from beside the first smki (MAKE_CSRS overrides).
# Prints figures; never passes or fails on a threshold.
set -euo pipefail
N=3000 ROUNDS=3 COUNT_STATEMENTS=
while getopts n:r:s opt; do
  case $opt in
  n) N=$OPTARG ;;
  r) ROUNDS=$OPTARG ;;
  s) COUNT_STATEMENTS=1 ;;
  *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
SMKIS=("$@")
[ ${#SMKIS[@]} -gt 0 ] || SMKIS=(build/bin/smki)
MAKE_CSRS=${MAKE_CSRS:-$(dirname "${SMKIS[0]}")/make_device_csrs}
[ -x "$MAKE_CSRS" ] || MAKE_CSRS=build/bin/make_device_csrs
CLUSTER=$(cd "$(dirname "$0")" && pwd)/../tests/pg/cluster.sh
WORK=$(mktemp -d)
trap '"$CLUSTER" stop "$WORK/pg.info" 2>/dev/null; rm -rf "$WORK"' EXIT

# A home as tools/bench.sh makes it: a SoftHSM token, the test CA, an RA operator and a
# Testing Participant, so every group commit passes the RA's gate and is audited.
S=${SMKIS[0]}
export SMKI_HOME=$WORK/home SMKI_PIN=benchpin1 SMKI_SO_PIN=benchso12
"$S" hsm init >/dev/null
"$S" ca init --env test >/dev/null
for k in op ckpt; do openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ra-$k.pem" 2>/dev/null; done
openssl pkey -in "$WORK/ra-op.pem" -pubout -out "$WORK/ra-op.pub" 2>/dev/null
printf '\n[audit]\ncheckpoint_key = file:%s\n' "$WORK/ra-ckpt.pem" >>"$SMKI_HOME/smki.conf"
export SMKI_OPERATOR=bench SMKI_OPERATOR_KEY=file:$WORK/ra-op.pem
"$S" ra operator add bench --pub "$WORK/ra-op.pub" >/dev/null
"$S" ra party add BENCH --testing-participant --agreement-signed >/dev/null
"$S" ra subscriber authorise --party BENCH --type device --env test >/dev/null

# The same home on PostgreSQL: its store copied to the cluster; each run takes the
# configuration of its engine.
SMKI_PG_DURABLE=1 "$CLUSTER" start "$WORK/pg.info" >/dev/null
PGCI=$(grep -v '^#' "$WORK/pg.info")
PGDIR=$(sed -n 's/^# dir //p' "$WORK/pg.info")
"$S" store copy --from "$SMKI_HOME/store" --to "postgresql:$PGCI" >/dev/null
cp "$SMKI_HOME/smki.conf" "$WORK/conf.lmdb"
cp "$SMKI_HOME/smki.conf" "$WORK/conf.pg"
printf '\n[store]\nengine = postgresql\nconninfo = %s\n' "$PGCI" >>"$WORK/conf.pg"

run=0
prepare() { # engine: fresh CSRs (devices no run has seen) in $WORK/csrs, the engine's configuration
  run=$((run + 1))
  rm -rf "$WORK/csrs" "$WORK/certs"
  cp "$WORK/conf.$1" "$SMKI_HOME/smki.conf"
  "$MAKE_CSRS" --out "$WORK/csrs" --count "$N" --start "$(printf '00-DB-%02X-%02X-00-00-00-00' $((run / 256)) $((run % 256)))"
}

batch() { # smki threads [wrapper...]: one batch of $WORK/csrs, every CSR issued; its CPU in $WORK/cpu
  local smki=$1 t=$2
  shift 2
  (
    "$@" "$smki" --json ca batch --env test --in "$WORK/csrs" --out "$WORK/certs" --threads "$t" --party BENCH \
      >"$WORK/out.json"
    times >"$WORK/times" # the last line: the children's user and system time, "0m0.680s 0m0.350s"
  )
  tail -1 "$WORK/times" | awk -v n="$N" '{ split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.0f\n", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1e6 / n }' \
    >"$WORK/cpu"
  grep -q "\"issued\":${N}[,}]" "$WORK/out.json" ||
    { echo "not every CSR was issued: $(head -c 300 "$WORK/out.json")" >&2; exit 1; }
}

# CPU of the server's processes so far, in clock ticks: the postmaster's own and its
# ended children's (each session's backend ends with its connection), and the live
# children's (WAL writer, checkpointer...).
pg_ticks() {
  local pm t
  pm=$(head -1 "$PGDIR/data/postmaster.pid")
  t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
  for c in $(pgrep -P "$pm"); do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}
TICK=$(getconf CLK_TCK)

ms() { # the last batch's own time (as tools/bench.sh takes it)
  awk -F'"milliseconds":' '{ split($2, a, ","); print a[1] }' "$WORK/out.json"
}

if [ -n "$COUNT_STATEMENTS" ]; then
  command -v strace >/dev/null || { echo "-s needs strace (tools/deps.sh bench installs it)" >&2; exit 1; }
  psql -qAtX "$PGCI" -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
  for smki in "${SMKIS[@]}"; do
    for t in 1 2; do
      prepare pg
      before=$(wc -l <"$PGDIR/server.log")
      batch "$smki" "$t" strace -f -qq -c -e trace=sendto,poll,ppoll -o "$WORK/strace.txt"
      sleep 0.5 # the server's log catches up
      tail -n +$((before + 1)) "$PGDIR/server.log" | grep -o 'LOG:  \(statement\|execute [a-z_0-9]*\)' >"$WORK/log.txt" || true
      awk -v s="$smki" -v t="$t" -v n="$N" -v st="$(wc -l <"$WORK/log.txt")" \
        '$NF == "sendto" { sends = $4 } $NF ~ /poll/ { polls += $4 }
         END { printf "%s, %d thread(s): %.2f statements per CSR; %.2f sends, %.2f polls per CSR\n",
               s, t, st / n, sends / n, polls / n }' "$WORK/strace.txt"
      sort "$WORK/log.txt" | uniq -c | sort -rn | awk -v n="$N" '$1 >= n { print "   ", $0 }'
    done
  done
  exit 0
fi

echo "ca batch, $N CSRs: round, binary, threads, LMDB/s, PG/s, PG/LMDB; CPU us per CSR: smki on LMDB, smki on PG,"
echo "  the PostgreSQL server, LMDB/(PG smki + server); load average"
for r in $(seq 1 "$ROUNDS"); do
  for smki in "${SMKIS[@]}"; do
    for t in 1 2; do
      prepare lmdb
      batch "$smki" "$t"
      l=$(ms) lc=$(cat "$WORK/cpu")
      prepare pg
      g0=$(pg_ticks)
      batch "$smki" "$t"
      p=$(ms) pc=$(cat "$WORK/cpu") g=$(($(pg_ticks) - g0))
      awk -v r="$r" -v s="$smki" -v t="$t" -v n="$N" -v l="$l" -v p="$p" -v lc="$lc" -v pc="$pc" \
        -v gc="$(awk -v g="$g" -v k="$TICK" -v n="$N" 'BEGIN { print g / k * 1e6 / n }')" \
        -v la="$(cut -d' ' -f1-3 /proc/loadavg)" \
        'BEGIN { printf "%d %-28s %d %7.0f %7.0f  %.3f  %4.0f %4.0f %4.0f  %.3f  (%s)\n", r, s, t, n * 1000 / l,
                 n * 1000 / p, l / p, lc, pc, gc, lc / (pc + gc), la }' |
        tee -a "$WORK/rows.txt"
    done
  done
done
echo "medians over $ROUNDS rounds: binary, threads, LMDB/s, PG/s, PG/LMDB (min-max); CPU us per CSR as above"
for smki in "${SMKIS[@]}"; do
  for t in 1 2; do
    awk -v s="$smki" -v t="$t" '$2 == s && $3 == t { print $4, $5, $6, $7, $8, $9, $10 }' "$WORK/rows.txt" |
      /usr/bin/python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin]
m = [statistics.median(c) for c in zip(*rows)]
print("%-28s %s %7.0f %7.0f  %.3f  (%.3f-%.3f)  %4.0f %4.0f %4.0f  %.3f" % (sys.argv[1], sys.argv[2], m[0], m[1],
      m[2], min(r[2] for r in rows), max(r[2] for r in rows), m[3], m[4], m[5], m[6]))' "$smki" "$t"
  done
done
