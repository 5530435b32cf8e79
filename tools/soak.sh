#!/usr/bin/env bash
# make soak: long runs that look for slow failures. For now: the crypto core signing
# through SoftHSM from 2 threads for SOAK_SECONDS (default 60) while its memory is
# sampled (resident size must stay flat), repeated kill -9 of a process writing
# to the store in batches (every committed record must survive), kill -9 of RA
# executions and ceremonies finished by smki alone (tools/kill_ra.sh), and a PostgreSQL
# failover during a 20,000-CSR batch (pg_standby.sh). Prints figures.
set -euo pipefail
BUILD=${1:-build}
SECS=${SOAK_SECONDS:-60}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SMKI_HOME=$WORK/home SMKI_PIN=soakpin1 SMKI_SO_PIN=soakso12
"$BUILD/bin/smki" hsm init >/dev/null
"$BUILD/bin/smki" key generate --label soak-ds --usage ds >/dev/null
export SOFTHSM2_CONF=$SMKI_HOME/hsm/softhsm2.conf

echo "== soak 1: token signing, 2 threads, ${SECS}s, resident memory sampled every 5s"
"$BUILD/bin/bench_core" "pkcs11:token=smki;object=soak-ds" sign 2 "$SECS" >"$WORK/out" &
pid=$!
samples=()
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && samples+=("$rss")
  sleep 5
done
wait "$pid"
echo "signatures/s: $(awk '{print $3}' "$WORK/out")"
echo "RSS KiB samples: ${samples[*]}"
first=${samples[1]:-${samples[0]}}
last=${samples[-1]}
echo "RSS growth after warm-up: $((last - first)) KiB"

echo "== soak 2: kill -9 a batch writer ${SMKI_CRASH_ROUNDS:-300} times; every committed record must survive"
SMKI_BUILD=$BUILD SMKI_CRASH_ROUNDS=${SMKI_CRASH_ROUNDS:-300} SMKI_TEST_FILTER='*killed*' "$BUILD/bin/test_store"

echo "== soak 3: the repository under load while the CA issues into its store (tools/soak_repo.sh)"
SOAK_SECONDS=$SECS "$(dirname "$0")/soak_repo.sh" "$BUILD"

echo "== soak 4: kill -9 an RA batch execution and a ceremony ${SMKI_KILL_ROUNDS:-40} times each (tools/kill_ra.sh)"
KILL_EXEC_MS=${KILL_EXEC_MS:-2000} "$(dirname "$0")/kill_ra.sh" "$BUILD/bin/smki" "${SMKI_KILL_ROUNDS:-40}" "${SMKI_KILL_CSRS:-2000}"

echo "== soak 5: PostgreSQL failover: kill -9 of the primary during a ${PG_FAILOVER_CSRS:-20000}-CSR ca batch,"
echo "   the synchronous standby promoted, the batch re-run (tests/integration/pg_standby.sh)"
SMKI_BIN=$BUILD/bin/smki SMKI_BUILD=$BUILD SMKI_SHARED=${SMKI_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared} \
  PG_FAILOVER_CSRS=${PG_FAILOVER_CSRS:-20000} PG_LAG_CERTS=${PG_LAG_CERTS:-200} \
  bash "$(dirname "$0")/../tests/integration/pg_standby.sh"
