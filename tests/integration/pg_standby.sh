#!/usr/bin/env bash
# The multi-host shape of docs/deploy.md on loopback: a PostgreSQL primary with a
# synchronous streaming hot standby (pg_basebackup -R), the CA issuing on the primary,
# and `smki repo serve` run as `nobody` from a home with no token and no PIN, reading
# the standby, serving each new certificate (the lag from the CA's commit returning to
# the certificate being served is printed, p50/p99). Then failover: kill -9 of the
# primary during a `ca batch`, the standby promoted, the same batch run again against
# it (the CA's conninfo lists both servers, target_session_attrs=read-write): every
# certificate whose group commit returned is there, no CSR issued twice, no serial
# twice, the audit trail verifies.
#
# Environment (ctest sets it): SMKI_BIN, SMKI_BUILD (bin/make_device_csrs), SMKI_SHARED.
#   PG_FAILOVER_CSRS  CSRs in the failover batch (default 1500; make soak: 20000)
#   PG_LAG_CERTS      certificates issued one by one for the lag (default 40)
#   PG_REPLICATION    sync (default) | async: the standby asynchronous; then the
#                     certificates of the last commits may be missing after the
#                     failover, and the re-run must issue exactly those again
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_BUILD:?set SMKI_BUILD to the build folder}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
PY=/usr/bin/python3
TIMEOUT=600
N=${PG_FAILOVER_CSRS:-1500}
LAG_N=${PG_LAG_CERTS:-40}
HERE=$(cd "$(dirname "$0")" && pwd)
CLUSTER=$HERE/../pg/cluster.sh
GEN=$SMKI_BUILD/bin/make_device_csrs
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-pg-standby.XXXXXX")
chmod 0755 "$W"
source "$HERE/lib.sh"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    "$CLUSTER" stop "$W/primary.info" || true
    "$CLUSTER" stop "$W/standby.info" || true
    [[ -n ${KEEP:-} ]] || rm -rf "$W"
}
trap cleanup EXIT INT TERM
unset SMKI_PIN SMKI_SO_PIN SMKI_DEBUG SOFTHSM2_CONF SMKI_HOME

# ---- Primary and synchronous standby ------------------------------------------------------------
"$CLUSTER" start "$W/primary.info" >/dev/null
"$CLUSTER" standby "$W/standby.info" "$W/primary.info" standby1 >/dev/null
P=$(grep -v '^#' "$W/primary.info")
S=$(grep -v '^#' "$W/standby.info")
PDIR=$(sed -n 's/^# dir //p' "$W/primary.info")
# synchronous_commit back on (cluster.sh turns it off for the other tests' speed): a
# commit returns once the standby has its WAL (sync), or once the primary has (async)
MODE=${PG_REPLICATION:-sync}
[[ $MODE == sync ]] && psql -qAtX "$P" -c "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
psql -qAtX "$P" -c "ALTER SYSTEM SET synchronous_commit = on" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 100); do
    [[ $(psql -qAtX "$P" -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'") == "$MODE" ]] && break
    sleep 0.1
done
run psql -qAtX "$P" -c "SELECT application_name || ' ' || sync_state || ' ' || current_setting('synchronous_commit') FROM pg_stat_replication"
expect_in "standby1 $MODE on" "the standby streams from the primary, $MODE"
run psql -qAtX "$S" -c "SELECT pg_is_in_recovery()"
check "the standby is a hot standby (in recovery, answering reads)" test "$OUT" = t

# ---- The CA host: token-less software keys here, its store on the primary --------------------------
CA=$W/ca-home
repo_soft_ca_conf "$CA" "$CA/smki.conf"
# Both servers, the writable one chosen: after the failover the CA finds the promoted standby.
SH=$(sed -n 's/^host=\([^ ]*\).*/\1/p' <<<"$S")
sed -i "s|^path = store\$|engine = postgresql\nconninfo = host=$PDIR,$SH port=5432,5432 user=smki dbname=postgres target_session_attrs=read-write|" \
    "$CA/smki.conf"
export SMKI_HOME=$CA
expect_exit 0 "ca init on the primary" smki ca init --env test --config "$CA/smki.conf"
ra_test_participant "$CA"

# ---- The repository host: no token, no PIN, reading the standby as nobody ---------------------------
R=$W/repo-home
mkdir -p "$R"
printf '[store]\nengine = postgresql\nconninfo = %s\n' "$S" >"$R/smki.conf"
AS_USER=()
if [[ $(id -u) -eq 0 ]]; then
    chown -R nobody: "$R"
    AS_USER=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
# A copy of the binary in the scratch folder: the build tree may sit where nobody
# cannot reach (a CI checkout under /root).
cp "$SMKI_BIN" "$W/smki-bin"
chmod 0755 "$W/smki-bin"
printf '#!/bin/sh\nexec %s "%s" "$@"\n' "${AS_USER[*]}" "$W/smki-bin" >"$W/smki-repo"
chmod 0755 "$W/smki-repo"
repo_serve_start "$W/smki-repo" "$W/serve.log" --home "$R" --env test --listen 127.0.0.1:0 ||
    { sed 's/^/#   /' "$W/serve.log"; }
check "the repository serves from the standby" test -n "$PORT"
check "as an unprivileged user" test "$(ps -o user= -p "$REPO_PID")" = "$([[ $(id -u) -eq 0 ]] && echo nobody || id -un)"
check "from a home with no token in it" bash -c "! find '$R' -name '*.object' | grep -q ."
expect_exit 2 "a write through the standby is refused" env SMKI_HOME="$R" "$SMKI_BIN" ra party add X
expect_in "this is a standby; writes go to the primary" "named: a standby"
# A standby whose schema was never made on the primary: made there, not here.
mkdir -p "$W/no-schema-home"
printf "[store]\nengine = postgresql\nconninfo = %s options='-c search_path=nosuch'\n" "$S" >"$W/no-schema-home/smki.conf"
run env SMKI_HOME="$W/no-schema-home" "$SMKI_BIN" store info
check "a standby without the schema is refused" test "$RC" != 0
expect_in "create it on the primary" "named: the schema is made on the primary"

# ---- Lag: each certificate the CA issues, served by the standby's repository ------------------------
"$GEN" --out "$W/lag" --count "$LAG_N" --start 00-DB-77-00-00-00-00-00
cat >"$W/lag.py" <<'PY'
import glob, http.client, os, subprocess, sys, time
smki, lag_dir, port, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
from cryptography import x509
lags, missing = [], 0
for csr in sorted(glob.glob(os.path.join(lag_dir, "*.csr"))):
    out = os.path.join(work, os.path.basename(csr) + ".der")
    subprocess.run([smki, "ca", "issue", "--env", "test", "--party", "GITTEST", "--csr", csr, "--der", "--out", out],
                   check=True, stdout=subprocess.DEVNULL)
    committed = time.monotonic()
    serial = format(x509.load_der_x509_certificate(open(out, "rb").read()).serial_number, "032x")
    while True:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/certificates/" + serial)
        r = c.getresponse(); body = r.read(); c.close()
        if r.status == 200 and body == open(out, "rb").read(): break
        if time.monotonic() - committed > 10: missing += 1; break
        time.sleep(0.001)
    lags.append((time.monotonic() - committed) * 1000)
lags.sort()
p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
print(f"served {len(lags) - missing} of {len(lags)}; lag from commit to served on the standby: "
      f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {lags[-1]:.1f} ms")
sys.exit(1 if missing else 0)
PY
run "$PY" "$W/lag.py" "$SMKI_BIN" "$W/lag" "$PORT" "$W"
if [[ $RC == 0 ]]; then ok "every new certificate is served by the standby's repository"; else not_ok "lag"; diag; fi
echo "# $OUT"

# ---- Failover: kill -9 the primary during a batch; promote; run the batch again ---------------------
"$GEN" --out "$W/in" --count "$N" --start 00-DB-66-00-00-00-00-00
smki --json ca batch --party GITTEST --env test --in "$W/in" --out "$W/out" --group 50 >"$W/batch1.json" 2>"$W/batch1.err" &
BATCH=$!
for _ in $(seq 1 600); do
    [[ $(find "$W/out" -name '*.pem' 2>/dev/null | wc -l) -ge $((N / 3)) ]] && break
    kill -0 "$BATCH" 2>/dev/null || break
    sleep 0.05
done
PPID_=$(head -1 "$PDIR/data/postmaster.pid")
kill -9 "$PPID_"
BRC=0
wait "$BATCH" || BRC=$?
# What the killed batch had written: each file after its group commit returned.
find "$W/out" -name '*.pem' | sort >"$W/written"
WRITTEN=$(wc -l <"$W/written")
echo "# the primary was killed with $WRITTEN of $N certificates written by the batch"
check "the primary died during the batch (some, not all, written)" test "$WRITTEN" -gt 0 -a "$WRITTEN" -lt "$N"
# (--json: the error is in the JSON on stdout)
# (lost mid-transaction; or while committing, the outcome unknown and said so; or,
# between two groups, no server to connect to that takes writes)
check "the batch failed (exit $BRC) on the lost server, saying so" grep -qE \
    "connection to the PostgreSQL server (was lost mid-transaction|at .* was lost while committing)|cannot reach the PostgreSQL server" \
    "$W/batch1.json"
mkdir -p "$W/out.first"
cp "$W"/out/*.pem "$W/out.first/"

"$CLUSTER" promote "$W/standby.info"
run psql -qAtX "$S" -c "SELECT pg_is_in_recovery()"
check "the standby is promoted" test "$OUT" = f

# What the promoted standby holds of the batch, and which written certificates it lacks
smki --json ca list --env test --profile device >"$W/before.json"
LOST=$("$PY" -c '
import json, sys
from cryptography import x509
have = {c["serial"] for c in json.load(open(sys.argv[1]))["certificates"]}
lost = 0
for f in open(sys.argv[2]).read().split():
    if format(x509.load_pem_x509_certificate(open(f, "rb").read()).serial_number, "032x") not in have: lost += 1
print(lost)' "$W/before.json" "$W/written")
HAVE=$("$PY" -c 'import json, sys; print(sum(1 for c in json.load(open(sys.argv[1]))["certificates"] if c["eui64"].startswith("00-DB-66")))' "$W/before.json")
echo "# after the failover ($MODE): the new primary holds $HAVE of the batch; $LOST written certificate(s) lost"
if [[ $MODE == sync ]]; then
    check "synchronous: no certificate whose commit returned was lost" test "$LOST" = 0
fi

smki --json ca batch --party GITTEST --env test --in "$W/in" --out "$W/out" >"$W/batch2.json" 2>"$W/batch2.err" || true
check "the re-run issues exactly what the new primary lacks (each lost file kept, the new one beside it)" "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1])); n, have, lost = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(d["issued"], d["already_issued"], d["refused"], d["name_clashes"])
sys.exit(0 if d["ok"] and d["issued"] == n - have and d["already_issued"] == have and d["refused"] == 0
         and d["name_clashes"] == lost else 1)' "$W/batch2.json" "$N" "$HAVE" "$LOST"
[[ $MODE == sync ]] && check "the same batch against the new primary: every CSR accounted for, the written ones already issued, no clash" \
    "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1])); n, written = int(sys.argv[2]), int(sys.argv[3])
print(d["issued"], d["already_issued"], d["refused"], d["name_clashes"])
sys.exit(0 if d["ok"] and d["issued"] + d["already_issued"] == n and d["refused"] == 0 and d["already_issued"] >= written
         and d["name_clashes"] == 0 else 1)' "$W/batch2.json" "$N" "$WRITTEN"
[[ $MODE == sync ]] && check "every certificate written before the kill is there unchanged" \
    bash -c "cd '$W/out.first' && for f in *.pem; do cmp -s \"\$f\" '$W/out/'\"\$f\" || exit 1; done"
smki --json ca list --env test --profile device >"$W/list.json"
check "one certificate per CSR, no serial twice" "$PY" -c '
import collections, json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
serials = [c["serial"] for c in d["certificates"]]
per = collections.Counter((c["eui64"], c["usage"]) for c in d["certificates"])
batch = sum(1 for c in d["certificates"] if c["eui64"].startswith("00-DB-66"))
print(len(serials), len(set(serials)), max(per.values()), batch)
sys.exit(0 if batch == n and len(set(serials)) == len(serials) and max(per.values()) == 1 else 1)' "$W/list.json" "$N"
expect_exit 0 "the audit trail verifies on the new primary" smki audit verify
stop_servers_and_check_logs "$W/serve.log"

finish
