#!/usr/bin/env bash
# The RA against someone who can write the store (issue 15): records edited with
# tests/helpers/ra_tamper.c, no operator key, no PIN. A request edited to "approved"
# does not execute; a CSR (and the hash on record) replaced after approval does not
# execute, and `smki audit verify` names a request executed and then substituted;
# approval counts are fixed in the store and changed only by a dual-controlled policy
# request; an executed request run again writes the files it is missing; `ca issue`
# checks --out before it issues and refuses a second in-use device certificate for one
# key unless asked; a trail cut back behind the head anchored on the token is named;
# `audit verify` works on a store mounted read-only.
#
# Environment (ctest sets it): SMKI_BIN, SMKI_BUILD (for bin/ra_tamper), SMKI_SRC.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
SMKI_BUILD=${SMKI_BUILD:-$(dirname "$(dirname "$SMKI_BIN")")}
SMKI_SRC=${SMKI_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TAMPER=$SMKI_BUILD/bin/ra_tamper
PY=/usr/bin/python3
TIMEOUT=120

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF SMKI_SHIM_FAIL SMKI_OPERATOR SMKI_OPERATOR_KEY
export SMKI_PIN=ra-user-1234 SMKI_SO_PIN=ra-so-12345678

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-ra-attacks.XXXXXX")
trap 'chmod -R u+w "$ROOT" 2>/dev/null; rm -rf "$ROOT"' EXIT
export SMKI_HOME=$ROOT/home
W=$ROOT/work
mkdir -p "$W" "$SMKI_HOME"
STORE=$SMKI_HOME/store

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for o in alice bob carol; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/$o.pem" 2>/dev/null
    openssl pkey -in "$W/$o.pem" -pubout -out "$W/$o.pub" 2>/dev/null
done
cat >"$SMKI_HOME/smki.conf" <<CONF
[audit]
checkpoint_every = 4
[operators]
alice = file:$W/alice.pem
bob = file:$W/bob.pem
carol = file:$W/carol.pem
CONF
A=(--operator alice)
B=(--operator bob)
C=(--operator carol)
check "ra_tamper helper is built: $TAMPER" test -x "$TAMPER"

expect_exit 0 "hsm init" smki hsm init
# The store as ra_tamper opens it, saved and put back: the folder under LMDB; in the
# PostgreSQL run (tests/pg/smki-pg) the home's schema, through smki store copy (as ra.sh).
save_store() { cp -a "$STORE" "$W/store.good"; }
restore_store() { rm -rf "$STORE" && cp -a "$W/store.good" "$STORE"; }
if [[ -n ${SMKI_TEST_PG_FILE:-} ]]; then
    PG_SCHEMA=$(<"$SMKI_HOME/.pg-schema")
    PG_CONNINFO=$(grep -v '^#' "$SMKI_TEST_PG_FILE")
    STORE="postgresql:$PG_CONNINFO options='-c search_path=$PG_SCHEMA'"
    save_store() { rm -rf "$W/store.good" && "$SMKI_BIN" store copy --from "$STORE" --to "$W/store.good" >/dev/null; }
    restore_store() {
        psql -qAtX "$PG_CONNINFO" -c "SET client_min_messages = warning" -c "DROP SCHEMA $PG_SCHEMA CASCADE" \
            -c "CREATE SCHEMA $PG_SCHEMA" >/dev/null &&
            "$SMKI_BIN" store copy --from "$W/store.good" --to "$STORE" >/dev/null
    }
fi
expect_exit 0 "the audit checkpoint key in the token" smki key generate --label smki-audit --usage ds
expect_exit 0 "ca init --env test" smki ca init --env test
expect_exit 0 "alice registers herself" smki ra operator add alice --pub "$W/alice.pub" "${A[@]}"
expect_exit 0 "alice registers bob" smki ra operator add bob --pub "$W/bob.pub" "${A[@]}"
expect_exit 0 "alice registers carol" smki ra operator add carol --pub "$W/carol.pub" "${A[@]}"
for step in "party add SUP --testing-participant --agreement-signed" \
    "range assign 00DB12/24 --party SUP --kind device" \
    "subscriber authorise --party SUP --type device --env test"; do
    # shellcheck disable=SC2086 # the step's words are the arguments
    expect_exit 0 "RA: $step" smki ra $step "${A[@]}"
done
check "4 device CSRs" "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/dev" 00DB120000000100 4
check "another key's CSR for the first Device ID" "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/evil" 00DB120000000100 1
EVIL=$(ls "$W"/evil/*)
submit_batch() { smki --json ra request submit --type device-batch --party SUP --env test --csr-dir "$W/dev" "${A[@]}"; }
certs() { smki --json ca list --env test --profile device | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }

# ---- Approvals are proved, not stated ---------------------------------------------------------------
expect_exit 0 "alice submits a batch" submit_batch
expect_exit 0 "the record edited to 'approved' (no key)" "$TAMPER" "$STORE" force-approve 1
expect_exit 0 "request show" smki --json ra request show 1
expect_json "the store now says approved" 'd["state"] == "approved"'
expect_exit 2 "alice executes her own request alone: refused" smki ra request execute 1 "${A[@]}"
expect_in "0 valid signed approval(s) in the audit trail of the 1 it needs" "the refusal counts the signed approvals"
check "no device certificate was issued" test "$(certs)" = 0

expect_exit 0 "alice submits another" submit_batch
expect_exit 0 "bob approves it" smki ra request approve 2 "${B[@]}"
expect_exit 0 "CSR 1 and its hash on record replaced by another key's" "$TAMPER" "$STORE" replace-csr 2 0 "$EVIL"
expect_exit 2 "the substituted request does not execute" smki ra request execute 2 "${B[@]}"
expect_in "is not what was approved" "the refusal says the content changed after approval"
check "still no device certificate" test "$(certs)" = 0

expect_exit 0 "alice submits a third" submit_batch
expect_exit 0 "bob approves it" smki ra request approve 3 "${B[@]}"
expect_exit 0 "it executes" smki ra request execute 3 "${B[@]}" --out-dir "$W/out3"
check "4 certificates written" test "$(ls "$W/out3" | wc -l)" = 4
expect_exit 0 "audit verify: clean" smki --json audit verify
expect_exit 0 "after execution, CSR 1 substituted" "$TAMPER" "$STORE" replace-csr 3 0 "$EVIL"
expect_exit 2 "audit verify names the request" smki --json audit verify
expect_json "a 'content' finding for request 3" \
    'not d["ok"] and any(f["kind"] == "content" and "request 3" in f["message"] for f in d["findings"])'

# ---- Crash-safe outputs -----------------------------------------------------------------------------
expect_exit 0 "CSR 1 of request 3 put back as approved" "$TAMPER" "$STORE" replace-csr 3 0 "$W/dev/$(ls "$W/dev" | head -1)"
expect_exit 0 "audit verify: clean again" smki audit verify
rm -f "$W"/out3/*
expect_exit 0 "an executed request run again (its files lost)" smki --json ra request execute 3 "${B[@]}" --out-dir "$W/out3"
expect_in "4 missing certificate file(s) written" "every missing file is written from the store"
check "4 certificates there again" test "$(ls "$W/out3" | wc -l)" = 4
rm -f "$(ls "$W"/out3/*.pem | head -1)"
expect_exit 0 "run again with one file lost" smki ra request execute 3 "${B[@]}" --out-dir "$W/out3"
expect_in "1 missing certificate file(s) written" "only the missing one"
expect_in "3 already there" "the others are left as they are"
check "still 4 device certificates in the store" test "$(certs)" = 4
expect_exit 2 "without --out-dir a done request is refused as before" smki ra request execute 3 "${B[@]}"
expect_in "is done" "the refusal says it is done"

check "a new device CSR" "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/one" 00DB120000000200 1
ONE=$(ls "$W"/one/*)
# A folder that cannot be written (a file where the folder should be: root writes anywhere else).
: >"$W/not-a-folder"
expect_exit 3 "ca issue --out where no file can be made" smki ca issue --env test --csr "$ONE" --party SUP \
    --out "$W/not-a-folder/one.pem" "${A[@]}"
expect_in "cannot write $W/not-a-folder/one.pem" "the refusal names the file"
check "nothing was issued" test "$(certs)" = 4
expect_exit 0 "ca issue --out into a writable one" smki ca issue --env test --csr "$ONE" --party SUP --out "$W/one.pem" "${A[@]}"
check "5 device certificates" test "$(certs)" = 5
expect_exit 2 "ca issue again for the same key and Device ID" smki ca issue --env test --csr "$ONE" --party SUP \
    --out "$W/one-again.pem" "${A[@]}"
expect_in "already holds in-use certificate" "refused, naming the certificate it holds"
check "still 5" test "$(certs)" = 5
expect_exit 0 "a second one when asked for" smki ca issue --env test --csr "$ONE" --party SUP --out "$W/one-again.pem" \
    --allow-duplicate-key "${A[@]}"
check "6" test "$(certs)" = 6

# ---- Approval counts: at least one, fixed in the store, changed by a dual-controlled request ---------
cp "$SMKI_HOME/smki.conf" "$W/conf.good"
printf '[ra]\napprovals_organisation = 0\n' >>"$SMKI_HOME/smki.conf"
expect_exit 1 "[ra] approvals_organisation = 0 is refused" smki ra policy show
expect_in "ra.approvals_organisation" "the refusal names the key"
cp "$W/conf.good" "$SMKI_HOME/smki.conf"
printf '[ra]\napprovals_sensitive = 1\n' >>"$SMKI_HOME/smki.conf"
expect_exit 0 "policy show" smki --json ra policy show
expect_json "smki.conf edited after the RA began changes nothing" \
    'd["approvals_organisation"] == 1 and d["approvals_sensitive"] == 2'
cp "$W/conf.good" "$SMKI_HOME/smki.conf"
expect_exit 2 "a count of 0 is refused" smki ra policy set approvals_organisation 0 "${A[@]}"
expect_in "one operator alone" "the refusal says why"
expect_exit 0 "alice asks for 2 organisation approvals" smki --json ra policy set approvals_organisation 2 "${A[@]}"
expect_json "a policy request that needs the sensitive 2" 'd["type"] == "policy" and d["approvals_required"] == 2'
PID=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect_exit 0 "bob approves" smki ra request approve "$PID" "${B[@]}"
expect_exit 2 "one approval is not enough" smki ra request execute "$PID" "${A[@]}"
expect_exit 0 "carol approves" smki ra request approve "$PID" "${C[@]}"
expect_exit 0 "executed" smki ra request execute "$PID" "${A[@]}"
expect_exit 0 "policy show" smki --json ra policy show
expect_json "approvals_organisation is 2 now" 'd["approvals_organisation"] == 2'
expect_exit 0 "audit list" smki --json audit list
expect_json "its entry says so" 'any(e["action"] == "request-execute" and "set approvals_organisation = 2" in e["detail"] for e in d["entries"])'

# ---- Request numbers --------------------------------------------------------------------------------
expect_exit 1 "a request number above 2^64-1 is refused, not taken as another" smki ra request show 18446744073709551616
expect_in "is not a request number" "the refusal says so"
expect_exit 1 "far above too" smki ra request approve 99999999999999999999999 "${B[@]}"
expect_exit 2 "2^64-1 is a number, of no request" smki ra request show 18446744073709551615
expect_in "no request 18446744073709551615" "the refusal names it"

# ---- A trail that cannot be cut short ----------------------------------------------------------------
expect_exit 0 "audit verify with the PIN: the anchor is read" smki --json audit verify
expect_json "clean, anchored at the head" 'd["ok"] and d["anchor_checked"] and d["anchor"] == d["head"]'
HEAD=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["head"])')
expect_exit 0 "without the PIN" env -u SMKI_PIN "$SMKI_BIN" audit verify
expect_in "anchor beside the checkpoint key was not read" "it says the anchor was not read"
check "the store saved before the cuts" save_store
# The tail cut back behind the last checkpoint's successor: entries and checkpoints above the cut gone.
CUT=$(((HEAD - 1) / 4 * 4 + 1))
expect_exit 0 "the trail cut back to $((CUT - 1)) entries, the head rewritten" "$TAMPER" "$STORE" truncate "$CUT"
expect_exit 2 "audit verify names the cut" smki --json audit verify
expect_json "an 'anchor' finding at entry $HEAD" \
    'not d["ok"] and any(f["kind"] == "anchor" and f["entry"] == '"$HEAD"' and "cut off" in f["message"] for f in d["findings"])'
check "the store put back" restore_store
LASTCP=$(((HEAD - 1) / 4 * 4))
expect_exit 0 "cut back to checkpoint $LASTCP's entry, that checkpoint deleted too" "$TAMPER" "$STORE" truncate "$LASTCP"
"$TAMPER" "$STORE" drop-checkpoint "$LASTCP" >/dev/null
expect_exit 2 "audit verify names the cut" smki --json audit verify
expect_json "an 'anchor' finding" 'not d["ok"] and any(f["kind"] == "anchor" for f in d["findings"])'
check "the store put back" restore_store

# ---- audit verify on a read-only store ------------------------------------------------------------------
# A read-only bind mount of the home's store (in a user and mount namespace of its own when not root).
RO=$ROOT/ro-home
mkdir -p "$RO/store"
cp "$SMKI_HOME/smki.conf" "$RO/"
cp -a "$SMKI_HOME"/softhsm* "$RO/" 2>/dev/null || true
ln -s "$SMKI_HOME"/* "$RO/" 2>/dev/null || true
ro_verify() {
    unshare -r -m sh -c 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"' sh \
        "$STORE" "$RO/store" env SMKI_HOME="$RO" "$SMKI_BIN" --json audit verify
}
if [[ -n ${SMKI_TEST_PG_FILE:-} ]]; then
    # PostgreSQL: a session whose every transaction is read-only (default_transaction_read_only).
    sed "s|options='-c search_path=|options='-c default_transaction_read_only=on -c search_path=|" \
        "$SMKI_HOME/smki.conf" >"$RO/smki.conf"
    check "the read-only home's conninfo makes every transaction read-only" grep -q default_transaction_read_only "$RO/smki.conf"
    expect_exit 0 "audit verify of a store in read-only transactions" env SMKI_HOME="$RO" "$SMKI_BIN" --json audit verify
    expect_json "clean and anchored" 'd["ok"] and d["anchor_checked"]'
    check "a write in that home is refused by PostgreSQL (the session is read-only)" bash -c \
        'out=$(SMKI_HOME="$1" "$2" ra party add ROTEST --operator alice 2>&1) && exit 1; echo "# $out";
         grep -qi "read-only" <<<"$out"' sh "$RO" "$SMKI_BIN"
elif unshare -r -m true 2>/dev/null; then
    expect_exit 0 "audit verify of a store on a read-only mount" ro_verify
    expect_json "clean and anchored" 'd["ok"] and d["anchor_checked"]'
else
    ok "# SKIP read-only mount: no user namespaces here"
fi

finish
