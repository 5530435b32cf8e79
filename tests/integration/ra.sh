#!/usr/bin/env bash
# The RA from the outside: `smki ra` and `smki audit` end to end in a fresh home. The
# registry (operators with their own keys, parties, blocks, IDs, subscribers),
# organisation requests approved by another operator and issued, a device batch held
# for demand review and approved by two, a revocation with its CRL checked by openssl,
# suspensions and the gateway's check, every refusal named and writing nothing, the
# log failing closed without its checkpoint key, and `smki audit verify` naming each
# kind of tampering made directly in the LMDB store (tests/helpers/ra_tamper.c).
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

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-ra.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
export SMKI_HOME=$ROOT/home
W=$ROOT/work
mkdir -p "$W" "$SMKI_HOME"
STORE=$SMKI_HOME/store

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for o in alice bob carol mallory; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/$o.pem" 2>/dev/null
    openssl pkey -in "$W/$o.pem" -pubout -out "$W/$o.pub" 2>/dev/null
done
# bob's key comes from the configuration, alice's and carol's from the command line.
cat >"$SMKI_HOME/smki.conf" <<CONF
[ra]
batch_review_size = 4
demand_baseline = 4
[audit]
checkpoint_every = 4
[operators]
bob = file:$W/bob.pem
CONF
A=(--operator alice --operator-key "file:$W/alice.pem")
B=(--operator bob)
C=(--operator carol --operator-key "file:$W/carol.pem")
M=(--operator mallory --operator-key "file:$W/mallory.pem")
entries() { "$SMKI_BIN" --json audit list | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }

check "smki binary is executable: $SMKI_BIN" test -x "$SMKI_BIN"
check "ra_tamper helper is built: $TAMPER" test -x "$TAMPER"
for sub in operator party range id subscriber request revoke expiring adopt-ca; do
    expect_exit 0 "smki ra $sub --help" smki ra $sub --help
    expect_in "Usage: smki ra $sub" "smki ra $sub --help shows its usage"
done
expect_exit 0 "smki audit verify --help" smki audit verify --help
expect_exit 1 "smki ra without a command" smki ra

# ---- The token (CA keys, the checkpoint key) and the test hierarchy ---------------------------------
expect_exit 0 "hsm init" smki hsm init
expect_exit 0 "the audit checkpoint key in the token" smki key generate --label smki-audit --usage ds
expect_exit 0 "ca init --env test" smki ca init --env test

# ---- Operators ---------------------------------------------------------------------------------------
expect_exit 2 "the first operator registers themself, not someone else" \
    smki ra operator add bob --pub "$W/bob.pub" "${A[@]}"
expect_in "registers themself" "the refusal explains the bootstrap"
expect_exit 1 "an action without an operator is a usage error" smki ra party add X1
expect_in "--operator NAME" "and says how to name one"
expect_exit 0 "alice registers herself" smki ra operator add alice --pub "$W/alice.pub" "${A[@]}"
expect_in "bootstrap ceremony's 5 CA certificate(s) are now in the audit trail" \
    "her registration binds the unaudited ceremony's CAs to the trail"
expect_exit 0 "audit list after the bootstrap" smki --json audit list
expect_json "an operator-add entry, then 5 ca-adopt entries signed by alice, each with a SHA-256" \
    '[e["action"] for e in d["entries"]] == ["operator-add"] + ["ca-adopt"] * 5 and all(e["operator"] == "alice" and "SHA-256 " in e["detail"] for e in d["entries"][1:])'
ROOT_FP=$(openssl x509 -in "$SMKI_HOME/ca/test/smki-root.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
expect_in "SHA-256 $ROOT_FP" "the root's entry holds the fingerprint openssl computes"
expect_exit 0 "adopt-ca again adds nothing" smki --json ra adopt-ca "${A[@]}"
expect_json "adopted 0" 'd["adopted"] == 0'
expect_exit 2 "adopt-ca by an unregistered operator is refused" smki ra adopt-ca "${M[@]}"
expect_in "not a registered RA operator" "the refusal names it"
expect_exit 1 "adopt-ca with an argument is a usage error" smki ra adopt-ca extra "${A[@]}"
expect_exit 0 "alice registers bob" smki ra operator add bob --pub "$W/bob.pub" "${A[@]}"
expect_exit 0 "bob (key from smki.conf) registers carol" smki ra operator add carol --pub "$W/carol.pub" "${B[@]}"
expect_exit 2 "an unregistered operator is refused" smki ra party add X1 "${M[@]}"
expect_in "not a registered RA operator" "the refusal names it"
expect_exit 2 "a registered name with another key is refused" \
    smki ra party add X1 --operator bob --operator-key "file:$W/mallory.pem"
expect_in "not operator bob's registered key" "the refusal says the key is not theirs"
expect_exit 0 "operator list --json" smki --json ra operator list
expect_json "three active operators" 'd["count"] == 3 and all(o["active"] for o in d["operators"])'

# ---- Parties, blocks, IDs, subscribers --------------------------------------------------------------
expect_exit 0 "party add SUPPLIER-A (Testing Participant, agreement signed)" \
    smki ra party add SUPPLIER-A --name "Supplier A" --testing-participant --agreement-signed "${A[@]}"
expect_in "Next: assign it an EUI-64 block" "the message says what to do next"
expect_exit 0 "party add NETOP-B (Testing Participant, no agreement yet)" \
    smki ra party add NETOP-B --name "Network B" --testing-participant "${A[@]}"
expect_exit 2 "a party twice" smki ra party add SUPPLIER-A "${A[@]}"
expect_exit 1 "a signifier with a space" smki ra party add "BAD NAME" "${A[@]}"
expect_exit 0 "central block for SUPPLIER-A" smki ra range assign 90B3D51F3/36 --party SUPPLIER-A --kind central "${A[@]}"
expect_exit 0 "central block for NETOP-B" smki ra range assign 90B3D51F4/36 --party NETOP-B --kind central "${A[@]}"
expect_exit 0 "device block for SUPPLIER-A" smki ra range assign 00DB12/24 --party SUPPLIER-A --kind device "${A[@]}"
expect_exit 2 "an overlapping block" smki ra range assign 90B3D5/24 --party NETOP-B --kind central "${A[@]}"
expect_in "overlaps block 90B3D51F30000000/36, already assigned to SUPPLIER-A" "the refusal names the other block"
expect_exit 2 "a block for an unknown party" smki ra range assign 90B3D51F5/36 --party GHOST --kind central "${A[@]}"
expect_in "no party 'GHOST'" "the refusal names the party"
expect_exit 0 "id allocate (next free) for SUPPLIER-A" smki --json ra id allocate --party SUPPLIER-A --roles EIS,GIS "${A[@]}"
expect_json "the first ID of its block" 'd["eui64"] == "90-B3-D5-1F-30-00-00-00"'
expect_exit 0 "id allocate for NETOP-B" smki ra id allocate --party NETOP-B --roles ENO "${A[@]}"
expect_exit 2 "an ID outside the requester's block" \
    smki ra id allocate --party SUPPLIER-A --roles EIS --eui 90-B3-D5-1F-40-00-00-07 "${A[@]}"
expect_in "central block of NETOP-B" "the refusal says whose block it is"
expect_exit 2 "an ID allocated twice" \
    smki ra id allocate --party SUPPLIER-A --roles EIS --eui 90-B3-D5-1F-30-00-00-00 "${A[@]}"
expect_in "never allocated twice" "the refusal says so"
expect_exit 2 "a Device ID as a User ID" \
    smki ra id allocate --party SUPPLIER-A --roles EIS --eui 00-DB-12-00-00-00-00-01 "${A[@]}"
expect_exit 1 "an unknown User Role" smki ra id allocate --party SUPPLIER-A --roles XYZ "${A[@]}"
expect_exit 0 "SUPPLIER-A may have supplier certificates in test" \
    smki ra subscriber authorise --party SUPPLIER-A --type organisation --role supplier --env test "${A[@]}"
expect_exit 0 "and device certificates" smki ra subscriber authorise --party SUPPLIER-A --type device --env test "${A[@]}"
expect_exit 0 "and other (7F), which its User Roles do not allow" \
    smki ra subscriber authorise --party SUPPLIER-A --type organisation --role 7F --env test "${A[@]}"
expect_exit 0 "NETOP-B may have networkOperator certificates" \
    smki ra subscriber authorise --party NETOP-B --type organisation --role networkOperator --env test "${A[@]}"
for what in "party list" "range list" "id list" "subscriber list"; do
    # shellcheck disable=SC2086
    expect_exit 0 "ra $what (table)" smki ra $what
done
expect_in "SUPPLIER-A" "the tables show the registry"

# ---- Organisation requests --------------------------------------------------------------------------
orgcsr() { # name usage
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" -subj "/CN=$1" \
        -addext "keyUsage=critical,$2" -out "$W/$1.csr" 2>/dev/null
}
orgcsr sup-ds digitalSignature
orgcsr net-ds digitalSignature
submit_org() { # party role eui csr
    smki --json ra request submit --type organisation --party "$1" --env test --role "$2" --eui "$3" --csr "$W/$4.csr" "${A[@]}"
}
COUNT0=$(entries)
run submit_org SUPPLIER-A networkOperator 90-B3-D5-1F-30-00-00-00 sup-ds
[[ $RC == 2 ]] && ok "an unauthorised subscriber is refused (exit 2)" || { not_ok "unauthorised subscriber: exit $RC"; diag; }
expect_in "not an Authorised Subscriber" "the refusal names the rule"
run submit_org SUPPLIER-A 7F 90-B3-D5-1F-30-00-00-00 sup-ds
[[ $RC == 2 ]] && ok "a role not bound to the User ID is refused (exit 2)" || { not_ok "role not bound: exit $RC"; diag; }
expect_in "is not bound to 90-B3-D5-1F-30-00-00-00" "the refusal names the ID and its roles"
run submit_org SUPPLIER-A supplier 90-B3-D5-1F-40-00-00-00 sup-ds
[[ $RC == 2 ]] && ok "another party's EUI is refused (exit 2)" || { not_ok "another party's EUI: exit $RC"; diag; }
expect_in "belongs to party NETOP-B" "the refusal names the owner"
run submit_org GHOST supplier 90-B3-D5-1F-30-00-00-00 sup-ds
[[ $RC == 2 ]] && ok "an unknown party is refused (exit 2)" || { not_ok "unknown party: exit $RC"; diag; }
run submit_org NETOP-B networkOperator 90-B3-D5-1F-40-00-00-00 net-ds
[[ $RC == 2 ]] && ok "a Testing Participant without its agreement gets no test certificate" || { not_ok "no agreement: exit $RC"; diag; }
expect_in "without its signed agreement" "the refusal says what is missing"
check "no refusal left an audit entry" test "$(entries)" = "$COUNT0"
expect_exit 0 "ra request list --json: no request yet" smki --json ra request list
expect_json "empty" 'd["count"] == 0'

expect_exit 0 "submit the supplier's DS request" smki ra request submit --type organisation --party SUPPLIER-A \
    --env test --role supplier --eui 90-B3-D5-1F-30-00-00-00 --cn SUPPLIERA --csr "$W/sup-ds.csr" "${A[@]}"
expect_in "approve 1 --operator NAME" "the message says who must do what next"
expect_exit 2 "the requester approves their own request" smki ra request approve 1 "${A[@]}"
expect_in "may not approve it" "refused with the reason"
expect_exit 2 "execute before approval" smki ra request execute 1 "${B[@]}"
expect_in "awaits approvals" "refused with the reason"
expect_exit 0 "bob approves" smki ra request approve 1 "${B[@]}"
expect_exit 2 "bob approves again" smki ra request approve 1 "${B[@]}"
expect_in "has already approved" "refused: approvals come from distinct operators"
expect_exit 0 "bob executes" smki --json ra request execute 1 "${B[@]}" --out-dir "$W/issued"
expect_exit 0 "request show 1 --json" smki --json ra request show 1
expect_json "done, approved by bob, with its serial" \
    'd["state"] == "done" and d["approvers"] == ["bob"] and len(d["serial"]) == 32'
SUP_SERIAL=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["serial"])')
check "the certificate was written" test -s "$W/issued/$SUP_SERIAL.pem"
expect_exit 0 "it lints clean" smki lint --env test "$W/issued/$SUP_SERIAL.pem"
CA=$SMKI_HOME/ca/test
check "openssl verify: supplier -> smki-oca -> smki-root" \
    openssl verify -x509_strict -CAfile "$CA/smki-root.pem" -untrusted "$CA/smki-oca.pem" "$W/issued/$SUP_SERIAL.pem"
# ---- The command line's rules: one parser, the same refusals everywhere (tools/smki/cli.h) -------------
COUNTCLI=$(entries)
expect_exit 1 "an unknown option is a usage error" smki ra party add X2 --colour red "${A[@]}"
expect_in "unknown option --colour" "the refusal names the option"
expect_exit 1 "an option without its value" smki ra party add X2 --operator
expect_in "--operator needs a value" "the refusal names the option"
expect_exit 1 "a value given twice" smki ra party add X2 --name one --name two "${A[@]}"
expect_in "--name is given twice" "the refusal names the option"
expect_exit 1 "--operator given twice" smki ra party add X2 "${A[@]}" --operator bob
expect_in "--operator is given twice" "the operator is an ordinary option: given twice, refused"
expect_exit 1 "a flag with a value" smki ra party add X2 --dcc=yes "${A[@]}"
expect_in "--dcc takes no value" "the refusal names the flag"
expect_exit 1 "one positional too many" smki ra party show SUPPLIER-A NETOP-B
expect_in "unexpected argument 'NETOP-B'" "the refusal names the extra argument"
expect_exit 1 "a missing positional" smki ra request show
expect_in "missing argument" "the refusal says an argument is missing"
expect_exit 1 "a reading command takes no --operator" smki ra party list "${A[@]}"
expect_in "unknown option --operator" "the refusal names it"
expect_exit 1 "an unknown verb" smki ra party rename SUPPLIER-A
expect_in "unknown command 'rename'" "the refusal names the verb"
expect_exit 1 "audit list --last 0" smki audit list --last 0
expect_in "--last is a whole number from 1" "numbers are checked by name"
expect_exit 1 "audit verify takes no argument" smki audit verify extra
expect_in "unexpected argument 'extra'" "the refusal names it"
expect_exit 1 "ra expiring --days beyond its bound" smki ra expiring --days 36501
expect_in "--days is a whole number from 0 to 36500" "the refusal gives the bound"
check "no refused command left an audit entry" test "$(entries)" = "$COUNTCLI"
expect_exit 0 "--option=VALUE is the same as --option VALUE" smki --json ra id list --party=NETOP-B
expect_json "NETOP-B's one ID" 'd["count"] == 1 and d["ids"][0]["party"] == "NETOP-B"'
expect_exit 0 "a verb's --help lists the operator's options" smki ra request approve --help
expect_in "--operator NAME [--operator-key KEY]" "the help names them"
expect_exit 0 "smki ra party --help" smki ra party --help
expect_in "--operator NAME" "a group's help names them too"
# --out-dir: a file of the certificate's name that holds something else is replaced only with --force.
cp "$W/issued/$SUP_SERIAL.pem" "$W/sup-ds.pem"
echo "not a certificate" >"$W/issued/$SUP_SERIAL.pem"
expect_exit 2 "execute --out-dir over another file of the same name" smki ra request execute 1 "${B[@]}" --out-dir "$W/issued"
expect_in "exists and holds something else than certificate $SUP_SERIAL; --force replaces it" "the refusal names the file and --force"
check "the other file is left as it was" grep -q "not a certificate" "$W/issued/$SUP_SERIAL.pem"
expect_exit 0 "with --force it is replaced" smki ra request execute 1 "${B[@]}" --out-dir "$W/issued" --force
expect_in "1 missing certificate file(s) written" "one file written"
check "the file is the certificate again" cmp -s "$W/issued/$SUP_SERIAL.pem" "$W/sup-ds.pem"
expect_exit 0 "run again: the same file is left" smki ra request execute 1 "${B[@]}" --out-dir "$W/issued"
expect_in "0 missing certificate file(s) written to $W/issued from the store, 1 already there" "nothing rewritten"
# '-' is standard input wherever a file is read.
from_stdin() { # file cmd...: cmd with file on standard input
    local f=$1
    shift
    "$@" <"$f"
}
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkey -pubout -out "$W/dave.pub" 2>/dev/null
expect_exit 0 "a public key from standard input (--pub -) is checked as a file's is" \
    from_stdin "$W/dave.pub" smki ra operator add dave --pub - "${A[@]}"
expect_exit 0 "dave is registered" smki --json ra operator list
expect_json "with the key given on standard input" \
    'any(o["name"] == "dave" and o["active"] for o in d["operators"])'
expect_exit 0 "alice deactivates dave" smki ra operator deactivate dave "${A[@]}"
expect_exit 2 "an empty standard input is no public key" from_stdin /dev/null smki ra operator add eve --pub - "${A[@]}"
expect_in "standard input" "the refusal names standard input"
expect_exit 0 "NETOP-B's agreement is signed now" smki ra party set NETOP-B --agreement-signed yes "${A[@]}"
expect_exit 0 "submit the network operator's request" smki ra request submit --type organisation --party NETOP-B \
    --env test --role networkOperator --eui 90-B3-D5-1F-40-00-00-00 --csr "$W/net-ds.csr" "${C[@]}"
expect_exit 0 "rejected by alice" smki ra request reject 2 --reason "wrong CN in the CSR" "${A[@]}"
expect_exit 2 "bob cannot approve a rejected request" smki ra request approve 2 "${B[@]}"
expect_in "is rejected" "refused with the reason"
expect_exit 0 "request show 2" smki ra request show 2
expect_in "wrong CN in the CSR" "the rejection's reason is visible"

# ---- A device batch, held for review ---------------------------------------------------------------
check "8 device CSRs made" "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/devices" 00DB120000000100 8
expect_exit 0 "submit the batch (8 CSRs: above the review size 4 and 150% of the baseline 4)" \
    smki --json ra request submit --type device-batch --party SUPPLIER-A --env test --csr-dir "$W/devices" "${A[@]}"
expect_json "held for review, two approvals" \
    'd["state"] == "held" and d["approvals_required"] == 2 and "held for review" in d["note"]'
expect_exit 0 "held requests are listed as held" smki --json ra request list --state held
expect_json "one" 'd["count"] == 1 and d["requests"][0]["id"] == 3'
expect_exit 0 "bob approves" smki ra request approve 3 "${B[@]}"
expect_exit 2 "not yet approved: one approval of two" smki ra request execute 3 "${B[@]}"
expect_exit 0 "carol approves" smki ra request approve 3 "${C[@]}"
expect_exit 0 "execute the batch" smki --json ra request execute 3 "${C[@]}" --out-dir "$W/devout"
check "8 device certificates written" test "$(ls "$W/devout" | wc -l)" = 8
expect_exit 0 "they all lint clean" smki lint --env test "$W"/devout/*.pem
expect_in "8 clean, 0 with violations" "eight clean"
check "a device CSR with a central ID is refused" "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/central" 90B3D51F30000005 1
expect_exit 2 "a Device ID from a central block" smki ra request submit --type device-batch --party SUPPLIER-A \
    --env test --csr-dir "$W/central" "${A[@]}"
expect_in "never a Device ID" "the refusal names the rule"

# ---- Suspension and the gateway's check -----------------------------------------------------------
expect_exit 0 "id check: the supplier may send" smki ra id check 90-B3-D5-1F-30-00-00-00
expect_exit 0 "suspend SUPPLIER-A" smki ra party suspend SUPPLIER-A --reason "SEC Panel decision" "${A[@]}"
expect_exit 2 "id check: refused while its party is suspended" smki ra id check 90-B3-D5-1F-30-00-00-00
expect_in "SEC Panel decision" "the refusal gives the reason"
expect_exit 2 "a suspended party's request is refused" smki ra request submit --type organisation \
    --party SUPPLIER-A --env test --role supplier --eui 90-B3-D5-1F-30-00-00-00 --csr "$W/sup-ds.csr" "${A[@]}"
expect_exit 0 "resume SUPPLIER-A" smki ra party resume SUPPLIER-A "${A[@]}"
expect_exit 0 "suspend the User ID" smki ra id suspend 90-B3-D5-1F-30-00-00-00 --reason "key lost" "${A[@]}"
expect_exit 2 "id check: refused while the ID is suspended" smki ra id check 90-B3-D5-1F-30-00-00-00
expect_exit 0 "resume the User ID" smki ra id resume 90-B3-D5-1F-30-00-00-00 "${A[@]}"
expect_exit 2 "id check of an unknown ID" smki ra id check 90-B3-D5-1F-30-00-00-55

# ---- Revocation and the CRL -------------------------------------------------------------------------
expect_exit 2 "a device certificate is replaced, not revoked" \
    smki ra revoke "$(basename "$(ls "$W"/devout/*.pem | head -1)" .pem)" --reason keyCompromise "${A[@]}"
expect_in "replaced, not revoked" "the refusal says why"
expect_exit 1 "certificateHold is not a reason smki uses" smki ra revoke "$SUP_SERIAL" --reason certificateHold "${A[@]}"
expect_exit 0 "revoke the supplier's certificate" smki --json ra revoke "$SUP_SERIAL" --reason keyCompromise "${A[@]}"
expect_json "a revoke request for SUPPLIER-A needing two approvals" \
    'd["type"] == "revoke" and d["party"] == "SUPPLIER-A" and d["approvals_required"] == 2'
REV=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect_exit 0 "bob approves" smki ra request approve "$REV" "${B[@]}"
expect_exit 0 "carol approves" smki ra request approve "$REV" "${C[@]}"
expect_exit 0 "execute: revoked and the CRL published" smki ra request execute "$REV" "${C[@]}"
expect_in "smki-oca.crl" "the message names the published CRL"
check "openssl: the CRL verifies with the OCA's key" openssl crl -inform DER -in "$CA/smki-oca.crl" -noout \
    -CAfile "$CA/smki-oca.pem"
openssl crl -inform DER -in "$CA/smki-oca.crl" -out "$W/oca.crl.pem" 2>/dev/null
cat "$CA/smki-root.pem" "$CA/smki-oca.pem" >"$W/chain.pem"
check_fails "openssl verify -crl_check: the supplier's certificate is revoked" \
    openssl verify -crl_check -CAfile "$W/chain.pem" -CRLfile "$W/oca.crl.pem" "$W/issued/$SUP_SERIAL.pem"
expect_exit 0 "ca show: revoked" smki --json ca show "$SUP_SERIAL"
expect_json "status revoked" 'd["certificates"][0]["status"] == "revoked"'
expect_exit 0 "the expiry monitor" smki --json ra expiring --days 4000 --env test
expect_json "no in-use organisation certificate left to expire" 'd["count"] == 0'

# ---- Direct issuance (smki ca issue) goes through the same gate ---------------------------------------
orgcsr direct digitalSignature
expect_exit 2 "smki ca issue --env test without --party" smki ca issue --env test --csr "$W/direct.csr" \
    --role supplier --eui 90-B3-D5-1F-30-00-00-00 --out "$W/direct.pem"
expect_exit 0 "smki ca issue to the registered participant, audited" smki ca issue --env test --csr "$W/direct.csr" \
    --role supplier --eui 90-B3-D5-1F-30-00-00-00 --party SUPPLIER-A --out "$W/direct.pem" "${A[@]}"
expect_exit 0 "the expiry monitor sees it, per Party" smki --json ra expiring --days 4000
expect_json "one, SUPPLIER-A's" 'd["count"] == 1 and d["expiring"][0]["party"] == "SUPPLIER-A"'

# ---- CA compromise recovery --------------------------------------------------------------------------
cp "$CA/smki-oca.pem" "$W/old-oca.pem"
DIRECT_SERIAL=$(openssl x509 -in "$W/direct.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
expect_exit 0 "submit the recovery of the organisation CA" smki --json ra recover --env test "${A[@]}"
expect_json "a recover request needing two approvals" 'd["type"] == "recover" and d["approvals_required"] == 2'
RECOVER=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect_exit 2 "the requester cannot approve it" smki ra request approve "$RECOVER" "${A[@]}"
expect_exit 0 "bob approves" smki ra request approve "$RECOVER" "${B[@]}"
expect_exit 0 "carol approves" smki ra request approve "$RECOVER" "${C[@]}"
expect_exit 0 "execute: revoke, ARL, successor (a new key in the token), re-issue" \
    smki ra request execute "$RECOVER" "${C[@]}"
expect_in "1 organisation certificate(s) are re-issued" "the one live certificate (the direct one) is re-issued"
check "the old OCA certificate is kept beside the successor's" test -s "$CA/smki-oca-$(openssl x509 -in "$W/old-oca.pem" \
    -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f').pem"
check_fails "the successor has a new key" cmp -s <(openssl x509 -in "$W/old-oca.pem" -noout -pubkey) \
    <(openssl x509 -in "$CA/smki-oca.pem" -noout -pubkey)
check "openssl: the successor chains to the root" openssl verify -x509_strict -CAfile "$CA/smki-root.pem" "$CA/smki-oca.pem"
openssl crl -inform DER -in "$CA/smki-root.crl" -out "$W/arl.pem" 2>/dev/null
check_fails "openssl -crl_check: the old OCA is on the root's ARL" \
    openssl verify -crl_check -CAfile "$CA/smki-root.pem" -CRLfile "$W/arl.pem" "$W/old-oca.pem"
expect_exit 0 "ca list under the successor" smki --json ca list --env test --profile organisation --status in-use
NEW_SERIAL=$(printf '%s' "$OUT" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print([c["serial"] for c in d["certificates"] if c["serial"] != "'"$DIRECT_SERIAL"'" and c["eui64"] == "90-B3-D5-1F-30-00-00-00"][-1])')
expect_exit 0 "the re-issued certificate" smki ca show "$NEW_SERIAL" --out "$W/reissued.pem"
check "openssl: the re-issued certificate chains through the successor" \
    openssl verify -x509_strict -CAfile "$CA/smki-root.pem" -untrusted "$CA/smki-oca.pem" "$W/reissued.pem"
check "it certifies the same public key as before" cmp -s <(openssl x509 -in "$W/direct.pem" -noout -pubkey) \
    <(openssl x509 -in "$W/reissued.pem" -noout -pubkey)
expect_exit 0 "it lints clean" smki lint --env test "$W/reissued.pem"
expect_exit 0 "requests issue under the successor" smki ra request submit --type organisation --party SUPPLIER-A \
    --env test --role supplier --eui 90-B3-D5-1F-30-00-00-00 --csr "$W/direct.csr" "${A[@]}"
# The old OCA's certificates are revoked with it, in the store: ca list shows it.
expect_exit 0 "ca list: the old OCA's certificate" smki --json ca list --env test --profile organisation --status revoked
expect_json "the direct certificate is revoked, cACompromise" \
    'any(c["serial"] == "'"$DIRECT_SERIAL"'" and c["status"] == "revoked" and c["reason"] == "cACompromise" for c in d["certificates"])'
expect_exit 0 "ca list: in use" smki --json ca list --env test --profile organisation --status in-use
expect_json "the old OCA's certificate is no longer in use" \
    'all(c["serial"] != "'"$DIRECT_SERIAL"'" for c in d["certificates"])'
# Its last CRL, after its successor exists: by its SKI, with its own key.
OLD_SKI=$(openssl x509 -in "$W/old-oca.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr 'A-F' 'a-f')
OLD_OCA_SERIAL=$(openssl x509 -in "$W/old-oca.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
expect_exit 2 "ca crl for an unknown CA SKI is refused" smki ca crl --env test --ca 4001020304050607 "${A[@]}"
expect_in "no CA, current or superseded, of SKI 4001020304050607" "the refusal names the SKI"
expect_exit 1 "ca crl for a CA name that is none" smki ca crl --env test --ca nosuchca "${A[@]}"
expect_in "is not a CA" "the refusal says so"
expect_exit 1 "ca arl for an issuing CA's SKI is a usage error" smki ca arl --env test --ca "$OLD_SKI" "${A[@]}"
expect_exit 0 "ca crl --ca <the old OCA's SKI>" smki --json ca crl --env test --ca "$OLD_SKI" "${A[@]}"
expect_json "its CRL 1, listing its certificates, in its own file" \
    'd["crls"][0]["ca"] == "smki-oca" and d["crls"][0]["number"] == 1 and d["crls"][0]["entries"] >= 1 and d["crls"][0]["file"].endswith("smki-oca-'"$OLD_OCA_SERIAL"'.crl")'
check "openssl: the old OCA's CRL verifies with the old OCA's key" \
    openssl crl -inform DER -in "$CA/smki-oca-$OLD_OCA_SERIAL.crl" -noout -CAfile "$W/old-oca.pem"
openssl crl -inform DER -in "$CA/smki-oca-$OLD_OCA_SERIAL.crl" -out "$W/old-oca-crl.pem" 2>/dev/null
cat "$CA/smki-root.pem" "$W/old-oca.pem" >"$W/old-chain.pem"
check_fails "openssl -crl_check: the direct certificate is on the old OCA's CRL" \
    openssl verify -crl_check -CAfile "$W/old-chain.pem" -CRLfile "$W/old-oca-crl.pem" "$W/direct.pem"
expect_exit 0 "audit list" smki --json audit list
expect_json "its crl-publish entry names the superseded CA" \
    'any(e["action"] == "crl-publish" and "superseded CA serial '"$OLD_OCA_SERIAL"'" in e["object"] for e in d["entries"])'

# ---- The CA's own actions are RA actions: the ceremony, CRLs and ARLs --------------------------------
COUNT1=$(entries)
expect_exit 1 "ca crl without an operator is a usage error" smki ca crl --env test --ca oca
expect_in "--operator NAME" "the refusal says how to name one"
expect_exit 2 "ca crl by an unregistered operator is refused" smki ca crl --env test --ca oca "${M[@]}"
expect_exit 1 "ca arl without an operator is a usage error" smki ca arl --env test
expect_exit 1 "ca init (even a re-run) without an operator is a usage error" smki ca init --env test
check "no refusal left an audit entry" test "$(entries)" = "$COUNT1"
expect_exit 0 "ca crl by alice" smki --json ca crl --env test --ca oca "${A[@]}"
CRLNUM=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["crls"][0]["number"])')
expect_exit 0 "audit list" smki --json audit list
expect_json "its entry: crl-publish by alice, the list's number and hash" \
    'd["entries"][-1]["action"] == "crl-publish" and d["entries"][-1]["operator"] == "alice" and d["entries"][-1]["object"] == "crl of test/smki-oca number '"$CRLNUM"'" and "SHA-256 '"$(sha256sum "$CA/smki-oca.crl" | cut -c1-64)"'" in d["entries"][-1]["detail"]'
expect_exit 0 "ca arl by bob (key from smki.conf)" smki --json ca arl --env test "${B[@]}"
expect_exit 0 "audit list" smki --json audit list
expect_json "one arl-publish entry per root, by bob" \
    '[(e["action"], e["operator"], e["object"].split(" number")[0]) for e in d["entries"][-2:]] == [("arl-publish", "bob", "arl of test/smki-root"), ("arl-publish", "bob", "arl of test/dccki-root")]'
COUNT2=$(entries)
expect_exit 0 "ca init --env test again, by alice: nothing made" smki ca init --env test "${A[@]}"
expect_in "0 CA(s) created" "every CA exists"
check "a ceremony that makes nothing writes no entry" test "$(entries)" = "$COUNT2"
cat >"$W/prod.conf" <<'PCONF'
# PLACEHOLDER OIDs for this test only, in the example arc 2.999 (X.660).
[env.production]
org_policy = 2.999.9.1
device_policy = 2.999.9.2
hw_type = 1.2.826.0.1.8641679.1.2.2.1
dccki_policy = 2.999.9.4
root_name = PRODROOT
oca_name = PRODOCA
dca_name = PRODDCA
dccki_root_name = PROD DCCKI Root
dccki_ica_name = PROD DCCKI ICA
[ca.production]
token = smki-prod
PCONF
sed 's/production/staging/g; s/PROD/STAGE/g; s/smki-prod/smki-stage/' "$W/prod.conf" >"$W/staging.conf"
expect_exit 0 "the production ceremony by carol, audited" smki --json ca init --env production --config "$W/prod.conf" "${C[@]}"
expect_json "five CAs made" 'd["created"] == 5'
PROOT=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print([c["serial"] for c in json.load(sys.stdin)["cas"] if c["name"] == "smki-root"][0])')
expect_exit 0 "audit list" smki --json audit list
expect_json "its entry: ca-init of production by carol, each CA with its serial and certificate hash" \
    'd["entries"][-1]["action"] == "ca-init" and d["entries"][-1]["operator"] == "carol" and d["entries"][-1]["object"] == "environment production" and "smki-root serial '"$PROOT"' sha256 '"$(openssl x509 -in "$SMKI_HOME/ca/production/smki-root.pem" -outform DER | sha256sum | cut -c1-32)"'" in d["entries"][-1]["detail"] and all(k in d["entries"][-1]["detail"] for k in ("smki-oca serial", "smki-dca serial", "dccki-root serial", "dccki-ica serial"))'

# ---- The audit trail ---------------------------------------------------------------------------------
expect_exit 0 "audit verify: clean" smki --json audit verify
expect_json "no finding, checkpoints every 4 entries" \
    'd["ok"] and d["total_findings"] == 0 and d["checkpoints"] == d["head"] // 4 and d["last_checkpoint"] > 0'
HEAD=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["head"])')
expect_exit 0 "audit list" smki audit list --last 8
expect_in "request-submit" "the table shows the actions"
expect_exit 0 "audit list --json" smki --json audit list
expect_json "every action is there: submit, approve, reject, execute, revoke's CRL" \
    '{e["action"] for e in d["entries"]} >= {"request-submit", "request-approve", "request-reject", "request-execute", "crl-publish", "ca-issue-direct", "party-suspend", "recover-revoke-ca", "arl-publish", "ca-successor", "recover-reissue"}'

# The store saved once and put back before each tampering: the folder under LMDB; in
# the PostgreSQL run (tests/pg/smki-pg) the home's schema, through smki store copy.
save_store() { cp -a "$STORE" "$W/store.good"; }
restore_store() { rm -rf "$STORE" && cp -a "$W/store.good" "$STORE"; }
if [[ -n ${SMKI_TEST_PG_FILE:-} ]]; then
    PG_SCHEMA=$(<"$SMKI_HOME/.pg-schema")
    PG_CONNINFO=$(grep -v '^#' "$SMKI_TEST_PG_FILE")
    STORE="postgresql:$PG_CONNINFO options='-c search_path=$PG_SCHEMA'"
    save_store() { "$SMKI_BIN" store copy --from "$STORE" --to "$W/store.good" >/dev/null; }
    restore_store() {
        psql -qAtX "$PG_CONNINFO" -c "SET client_min_messages = warning" -c "DROP SCHEMA $PG_SCHEMA CASCADE" \
            -c "CREATE SCHEMA $PG_SCHEMA" >/dev/null &&
            "$SMKI_BIN" store copy --from "$W/store.good" --to "$STORE" >/dev/null
    }
fi
check "the store saved before the tampering" save_store
tampered() { # desc kind entry ra_tamper-args...: the damage is named at that entry
    local desc=$1 kind=$2 entry=$3
    shift 3
    restore_store
    check "tamper: $*" "$TAMPER" "$STORE" "$@"
    expect_exit 2 "audit verify refuses: $desc" smki --json audit verify
    expect_json "$desc: '$kind' at entry $entry" \
        "not d['ok'] and any(f['kind'] == '$kind' and f['entry'] == $entry for f in d['findings'])"
}
tampered "an altered entry" altered 5 flip 5
tampered "a deleted entry" missing 6 delete 6
tampered "reordered entries" misplaced 3 swap 3 4
tampered "an inserted entry (entry 2 written again as 9)" misplaced 9 copy 2 9
LASTCP=$(((HEAD - 1) / 4 * 4))
tampered "a tail cut back past checkpoint $LASTCP, the head rewritten" truncated "$LASTCP" truncate "$LASTCP"
tampered "a deleted checkpoint" checkpoint-missing 4 drop-checkpoint 4
restore_store
expect_exit 2 "the human report names the entry" smki audit verify --checkpoint-pub "$W/alice.pub"
expect_in "checkpoint" "checkpoints signed by another key do not verify"
expect_exit 2 "the checkpoint key's public half from standard input (--checkpoint-pub -)" \
    from_stdin "$W/alice.pub" smki audit verify --checkpoint-pub -
expect_in "checkpoint" "read from standard input, it is used as a file's would be"
expect_exit 0 "the untouched store verifies again" smki audit verify

# ---- The log fails closed ----------------------------------------------------------------------------
cp "$SMKI_HOME/smki.conf" "$W/smki.conf.good"
printf '[audit]\ncheckpoint_every = 4\ncheckpoint_key = file:%s/no-such-key.pem\n[operators]\nbob = file:%s/bob.pem\n' \
    "$W" "$W" >"$SMKI_HOME/smki.conf"
failed=
for i in 1 2 3 4; do
    run smki ra party add "LATE-$i" "${A[@]}"
    if [[ $RC != 0 ]]; then failed=$i; break; fi
done
if [[ -n $failed ]]; then ok "an action on which a checkpoint falls due without its key is refused"; else not_ok "no refusal in 4 actions"; fi
expect_in "checkpoint" "the refusal says the checkpoint key is missing"
expect_exit 2 "and that party was not registered" smki ra party show "LATE-$failed"
cp "$CA/smki-oca.crl" "$W/oca-before.crl"
expect_exit 2 "ca crl on which the checkpoint falls due is refused" smki ca crl --env test --ca oca "${A[@]}"
expect_in "checkpoint" "the refusal says the checkpoint key is missing"
check "the CRL file is unchanged" cmp -s "$CA/smki-oca.crl" "$W/oca-before.crl"
expect_exit 2 "a ceremony on which the checkpoint falls due is refused" \
    smki ca init --env staging --config "$W/staging.conf" "${A[@]}"
expect_in "checkpoint" "the refusal says the checkpoint key is missing"
expect_exit 0 "ca list --env staging" smki --json ca list --env staging
expect_json "no staging CA was recorded" 'd["count"] == 0'
check "no staging CA file was written" test ! -e "$SMKI_HOME/ca/staging/smki-root.pem"
cp "$W/smki.conf.good" "$SMKI_HOME/smki.conf"
expect_exit 0 "the log verifies clean after the refusals (checkpoint key back)" smki --json audit verify

# ---- A CSR from standard input (--csr -) ------------------------------------------------------------------
orgcsr sup-ds2 digitalSignature
expect_exit 1 "an organisation request takes one CSR" smki ra request submit --type organisation --party SUPPLIER-A \
    --env test --role supplier --eui 90-B3-D5-1F-30-00-00-00 --csr "$W/sup-ds2.csr" --csr "$W/sup-ds.csr" "${A[@]}"
expect_in "takes one CSR" "the refusal says so"
expect_exit 0 "an organisation request with its CSR on standard input" from_stdin "$W/sup-ds2.csr" \
    smki --json ra request submit --type organisation --party SUPPLIER-A --env test --role supplier \
    --eui 90-B3-D5-1F-30-00-00-00 --csr - "${A[@]}"
expect_json "pending, one CSR" 'd["state"] == "pending" and d["csrs"] == 1 and d["eui64"] == "90-B3-D5-1F-30-00-00-00"'
expect_exit 1 "an empty standard input is no CSR" from_stdin /dev/null smki ra request submit --type organisation \
    --party SUPPLIER-A --env test --role supplier --eui 90-B3-D5-1F-30-00-00-00 --csr - "${A[@]}"
expect_in "needs its CSR" "the refusal says the CSR is missing"

finish
