#!/usr/bin/env bash
# A ceremony cut short, then finished by smki commands alone (issue 15), through the
# fault-injecting PKCS#11 module (tests/shim/p11shim.c) in place of a kill:
#  - the token made and its user PIN never set (C_InitPIN failing, as a kill between
#    the two): the same 'smki ca init' run again sets the PIN and makes the CAs;
#  - keys generated and no CA recorded (C_Sign failing, as a kill before the records):
#    the re-run is refused naming the key; 'smki ca keys' lists them and removes each
#    with the SO PIN and a confirmation (refusing a CA's own key), audited when the
#    store has operators; then the ceremony runs.
# tools/soak.sh kills real ceremonies at random moments (the long version).
#
# Environment (ctest sets it): SMKI_BIN, SMKI_SHIM_PATH.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHIM_PATH:?set SMKI_SHIM_PATH to p11shim.so}"
PY=/usr/bin/python3
TIMEOUT=120

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF SMKI_SHIM_FAIL SMKI_OPERATOR SMKI_OPERATOR_KEY
export SMKI_PIN=cer-user-1234 SMKI_SO_PIN=cer-so-12345678

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-ceremony.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
export SMKI_HOME=$ROOT/home
W=$ROOT/work
mkdir -p "$W" "$SMKI_HOME"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

expect_exit 0 "hsm init (the home's SoftHSM folder and token)" smki hsm init
check "the shim module exists" test -f "$SMKI_SHIM_PATH"
# From here on every PKCS#11 call goes through the shim, to the same SoftHSM tokens.
export SOFTHSM2_CONF=$SMKI_HOME/hsm/softhsm2.conf
cat >"$W/env.conf" <<'PCONF'
# PLACEHOLDER OIDs for this test only, in the example arc 2.999 (X.660).
[env.staging]
org_policy = 2.999.9.1
device_policy = 2.999.9.2
hw_type = 1.2.826.0.1.8641679.1.2.2.1
dccki_policy = 2.999.9.4
root_name = STAGEROOT
oca_name = STAGEOCA
dca_name = STAGEDCA
dccki_root_name = STAGE DCCKI Root
dccki_ica_name = STAGE DCCKI ICA
[ca.staging]
token = smki-stage
PCONF
printf '[hsm]\nmodule = %s\n' "$SMKI_SHIM_PATH" >"$SMKI_HOME/smki.conf"
cat "$W/env.conf" >>"$SMKI_HOME/smki.conf"
sed 's/staging/prelive/g; s/STAGE/PRELIVE/g; s/smki-stage/smki-prelive/' "$W/env.conf" >"$W/prelive.conf"

# ---- The token made, its user PIN never set ----------------------------------------------------------
SMKI_SHIM_FAIL=C_InitPIN expect_exit 3 "ca init, the token made and setting its user PIN failing" \
    smki ca init --env staging
expect_exit 2 "without the SO PIN the re-run says what the token lacks" env -u SMKI_SO_PIN "$SMKI_BIN" ca init \
    --env staging
expect_in "exists but has no user PIN" "the token was left without its user PIN (what a kill there leaves)"
expect_exit 0 "the same ca init again finishes the token and makes the CAs" smki --json ca init --env staging
expect_json "five CAs made" 'd["created"] == 5'
expect_exit 0 "the token's keys open with the user PIN" smki --json key list --token smki-stage
expect_json "five keys" 'len(d["keys"]) == 5'

# ---- Keys generated, no CA recorded ------------------------------------------------------------------
cat "$W/prelive.conf" >>"$SMKI_HOME/smki.conf"
SMKI_SHIM_FAIL=C_Sign expect_exit 3 "ca init --env prelive, signing failing after the keys were made" \
    smki ca init --env prelive
expect_exit 0 "ca list --env prelive" smki --json ca list --env prelive
expect_json "no CA was recorded" 'd["count"] == 0'
expect_exit 2 "the re-run is refused by the keys left" smki ca init --env prelive
expect_in "half-made" "the refusal says why"
expect_in "smki ca keys --env prelive" "and what to run"
expect_exit 0 "ca keys lists them" smki --json ca keys --env prelive
expect_json "five keys, one per CA to make, on smki-prelive" \
    'd["count"] == 5 and all(k["token"] == "smki-prelive" for k in d["keys"])'
LABELS=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(" ".join(k["label"] for k in json.load(sys.stdin)["keys"]))')
FIRST=${LABELS%% *}
expect_exit 1 "--remove without --confirm" smki ca keys --env prelive --remove "$FIRST"
expect_in "naming it twice" "the refusal says how to confirm"
expect_exit 1 "--confirm naming another key" smki ca keys --env prelive --remove "$FIRST" --confirm other
expect_exit 1 "without the SO PIN" env -u SMKI_SO_PIN "$SMKI_BIN" ca keys --env prelive --remove "$FIRST" --confirm "$FIRST"
expect_in "SO PIN" "the refusal asks for the SO PIN"
expect_exit 2 "with a wrong SO PIN" env SMKI_SO_PIN=wrong-so-pin-1 "$SMKI_BIN" ca keys --env prelive --remove "$FIRST" \
    --confirm "$FIRST"
expect_in "CKR_PIN_INCORRECT" "the token refuses it"
expect_exit 2 "a CA's own key is never removed" smki ca keys --env staging --remove staging-smki-root \
    --confirm staging-smki-root
expect_in "never is" "the refusal says so"

# In a store with an RA the removal is an RA action, audited.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/alice.pem" 2>/dev/null
openssl pkey -in "$W/alice.pem" -pubout -out "$W/alice.pub" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ckpt.pem" 2>/dev/null
printf '[audit]\ncheckpoint_key = file:%s\n[operators]\nalice = file:%s\n' "$W/ckpt.pem" "$W/alice.pem" \
    >>"$SMKI_HOME/smki.conf"
expect_exit 0 "alice registers herself" smki ra operator add alice --pub "$W/alice.pub" --operator alice
expect_exit 1 "now an operator is needed" smki ca keys --env prelive --remove "$FIRST" --confirm "$FIRST"
for l in $LABELS; do
    expect_exit 0 "remove $l" smki ca keys --env prelive --remove "$l" --confirm "$l" --operator alice
done
expect_exit 0 "audit list" smki --json audit list
expect_json "five ca-key-remove entries by alice" \
    'sum(1 for e in d["entries"] if e["action"] == "ca-key-remove" and e["operator"] == "alice") == 5'
openssl pkey -in "$W/ckpt.pem" -pubout -out "$W/ckpt.pub" 2>/dev/null
expect_exit 0 "audit verify" smki --json audit verify --checkpoint-pub "$W/ckpt.pub"
expect_json "clean and anchored" 'd["ok"] and d["anchor_checked"] and d["anchor"] == d["head"]' 
expect_exit 0 "nothing is left" smki --json ca keys --env prelive
expect_json "no key" 'd["count"] == 0'
expect_exit 0 "the ceremony runs now" smki --json ca init --env prelive --operator alice
expect_json "five CAs made" 'd["created"] == 5'

finish
