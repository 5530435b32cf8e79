#!/usr/bin/env bash
# kill -9 at random moments, then finish with smki commands alone (issue 15):
#  1. `smki ra request execute ID --out-dir DIR` of a device batch, killed ROUNDS times
#     while it issues and writes its files; then run to the end and once more. Every
#     CSR has exactly one certificate, DIR holds every file, the trail verifies.
#  2. `smki ca init --env kill` (its token made on the spot), killed ROUNDS times; each
#     time the re-run finishes what it can, a half-made ceremony's keys are removed with
#     `smki ca keys` (SO PIN, confirmed); at the end the five CAs are there and chain.
# usage: kill_ra.sh SMKI_BIN ROUNDS CSRS   (tests/integration/kill_ra.sh: a short run;
# tools/soak.sh: the long one). Prints "ok - ..." / "not ok - ..." and a summary;
# exits 1 if anything failed.
set -euo pipefail
BIN=$1
ROUNDS=${2:-5}
CSRS=${3:-60}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/smki-kill.XXXXXX")
[[ -n ${KILL_KEEP:-} ]] || trap 'rm -rf "$WORK"' EXIT
unset SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF SMKI_SHIM_FAIL SMKI_OPERATOR SMKI_OPERATOR_KEY
export SMKI_HOME=$WORK/home SMKI_PIN=kill-user-1234 SMKI_SO_PIN=kill-so-12345678
mkdir -p "$SMKI_HOME"
failed=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
s() { timeout 300 "$BIN" "$@"; }
# A random delay of 0 to $1 milliseconds.
pause() { sleep "$(awk -v m="$1" -v r="$RANDOM" 'BEGIN { printf "%.3f", (r % (m + 1)) / 1000 }')"; }
# Run "$@" in the background and kill -9 it after 0..$1 ms (if it is still running).
killed_run() {
    local ms=$1
    shift
    "$@" >/dev/null 2>&1 &
    local pid=$!
    pause "$ms"
    kill -9 "$pid" 2>/dev/null && hits=$((hits + 1)) || true
    wait "$pid" 2>/dev/null || true
}
hits=0

for o in alice bob; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$o.pem" 2>/dev/null
    openssl pkey -in "$WORK/$o.pem" -pubout -out "$WORK/$o.pub" 2>/dev/null
done
cat >"$SMKI_HOME/smki.conf" <<CONF
[ra]
batch_group = 10
demand_baseline = 100000000
batch_review_size = 100000000
[operators]
alice = file:$WORK/alice.pem
bob = file:$WORK/bob.pem
CONF
s hsm init >"$WORK/hsm-init" 2>&1 || { not_ok "hsm init"; cat "$WORK/hsm-init"; }
s key generate --label smki-audit --usage ds >/dev/null
s ca init --env test >/dev/null
s ra operator add alice --pub "$WORK/alice.pub" --operator alice >/dev/null
s ra operator add bob --pub "$WORK/bob.pub" --operator alice >/dev/null
for step in "party add SUP --testing-participant --agreement-signed" "range assign 00DB13/24 --party SUP --kind device" \
    "subscriber authorise --party SUP --type device --env test"; do
    # shellcheck disable=SC2086 # the step's words are the arguments
    s ra $step --operator alice >/dev/null
done
"$PY" "$SRC/tools/device_csrs.py" "$WORK/csrs" 00DB130000000000 "$CSRS" >/dev/null
ID=$(s --json ra request submit --type device-batch --party SUP --env test --csr-dir "$WORK/csrs" --operator alice |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
s ra request approve "$ID" --operator bob >/dev/null

# ---- 1. execution killed ---------------------------------------------------------------------------
start=$(date +%s%N)
for ((i = 0; i < ROUNDS; i++)); do
    killed_run "${KILL_EXEC_MS:-600}" "$BIN" ra request execute "$ID" --operator bob --out-dir "$WORK/out"
done
rc=0
s ra request execute "$ID" --operator bob --out-dir "$WORK/out" >"$WORK/last" 2>&1 || rc=$?
[[ $rc == 0 ]] && ok "execution finished after $ROUNDS kills" || { not_ok "execution after kills: exit $rc"; cat "$WORK/last"; }
rm -f "$(ls "$WORK"/out/*.pem | head -1)"
s ra request execute "$ID" --operator bob --out-dir "$WORK/out" >"$WORK/last" 2>&1 &&
    grep -q "1 missing certificate file(s) written" "$WORK/last" && ok "run again: the missing file written" ||
    { not_ok "run again"; cat "$WORK/last"; }
n=$(s --json ca list --env test --profile device | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[[ $n == "$CSRS" ]] && ok "$CSRS CSRs, $n device certificates: none lost, none twice" || not_ok "$n certificates for $CSRS CSRs"
f=$(ls "$WORK/out" | grep -c '\.pem$' || true)
[[ $f == "$CSRS" ]] && ok "$f certificate files" || not_ok "$f files for $CSRS CSRs"
ls "$WORK/out" | grep -q '\.tmp\.' && not_ok "a temporary file was left" || ok "no temporary file left"
s --json audit verify >"$WORK/verify" 2>&1 && ok "audit verify: clean, anchored" || { not_ok "audit verify"; cat "$WORK/verify"; }
echo "# execution: $hits of $ROUNDS kills landed while it ran; they and the finish took $((($(date +%s%N) - start) / 1000000)) ms"

# ---- 2. the ceremony killed ------------------------------------------------------------------------
cat >>"$SMKI_HOME/smki.conf" <<'PCONF'
# PLACEHOLDER OIDs for this test only, in the example arc 2.999 (X.660).
[env.kill]
org_policy = 2.999.9.1
device_policy = 2.999.9.2
hw_type = 1.2.826.0.1.8641679.1.2.2.1
dccki_policy = 2.999.9.4
root_name = KILLROOT
oca_name = KILLOCA
dca_name = KILLDCA
dccki_root_name = KILL DCCKI Root
dccki_ica_name = KILL DCCKI ICA
[ca.kill]
token = smki-kill
PCONF
# Whatever a kill left: the re-run finishes the token; keys without their CA are removed.
recover() {
    local out rc=0
    out=$(s ca init --env kill --operator alice 2>&1) || rc=$?
    if [[ $rc != 0 && $out == *half-made* ]]; then
        for l in $(s --json ca keys --env kill | "$PY" -c 'import json,sys; print(" ".join(k["label"] for k in json.load(sys.stdin)["keys"]))'); do
            s ca keys --env kill --remove "$l" --confirm "$l" --operator alice >/dev/null
        done
        removed=$((removed + 1))
    fi
    return 0
}
removed=0
hits=0
start=$(date +%s%N)
for ((i = 0; i < ROUNDS; i++)); do
    killed_run "${KILL_INIT_MS:-250}" "$BIN" ca init --env kill --operator alice
    if ((i % 2)); then recover; fi
done
recover
rc=0
s --json ca init --env kill --operator alice >"$WORK/init" 2>&1 || rc=$?
[[ $rc == 0 ]] && ok "the ceremony finished after $ROUNDS kills ($removed time(s) half-made keys removed)" ||
    { not_ok "ceremony after kills: exit $rc"; cat "$WORK/init"; }
c=$(s --json ca list --env kill --usage ca | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[[ $c == 5 ]] && ok "five CAs in the store" || not_ok "$c CAs"
k=$(s --json ca keys --env kill | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[[ $k == 0 ]] && ok "no half-made key left" || not_ok "$k half-made keys left"
CA=$SMKI_HOME/ca/kill
openssl verify -CAfile "$CA/smki-root.pem" "$CA/smki-oca.pem" >/dev/null 2>&1 && ok "openssl: the OCA chains to the root" ||
    not_ok "the OCA does not chain"
s audit verify >"$WORK/verify" 2>&1 && ok "audit verify: clean" || { not_ok "audit verify"; cat "$WORK/verify"; }
echo "# ceremony: $hits of $ROUNDS kills landed while it ran; they and the finish took $((($(date +%s%N) - start) / 1000000)) ms"
echo "# kill_ra: $failed failed"
[[ $failed == 0 ]]
