#!/usr/bin/env bash
# The CLI conventions (issue 10 section 2) from the outside, for the commands on the one
# parser: '-' is standard input/output wherever a file is read or written, an output
# file that exists is refused unless --force (and nothing changes), options are named
# in usage errors, numbers are decimal in range, times are YYYY-MM-DD or RFC 3339,
# and the device's JSON names its EUI-64 'eui64'. Cross-checked with openssl.
#
# Environment (ctest sets it): SMKI_BIN, SMKI_SHARED (the folder holding vectors/).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3
TIMEOUT=60
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_OPERATOR SMKI_OPERATOR_KEY SMKI_HSM_KEY_COPY SMKI_DEBUG SOFTHSM2_CONF
export SMKI_PIN=conv-user-1234 SMKI_SO_PIN=conv-so-12345678

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-cli-conventions.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
export SMKI_HOME=$ROOT/home
W=$ROOT/work
mkdir -p "$W" "$SMKI_HOME"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

V=$SMKI_SHARED/vectors
KS=$V/gbcs/keystore
PRE=$V/gbcs/rtds/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX
REQ=$V/duis/requests/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS.XML
DEV=00-DB-12-34-56-78-90-A0
NBN=$V/gbcs/rtds/6.15.1_CS02bNOByNO/CS02bNOByNO_6.15.1_SUCCESS_COMMAND_GBCS.HEX

expect_exit 0 "hsm init" smki hsm init
expect_exit 0 "key generate" smki key generate --label conv --usage ds
printf 'hello\n' >"$W/msg"

# ---- sign / verify / key pub: '-' and --force --------------------------------------------
expect_exit 0 "sign --out FILE" smki sign --key conv --in "$W/msg" --out "$W/msg.sig"
cp "$W/msg.sig" "$W/msg.sig.first"
expect_exit 2 "sign --out over an existing file is refused" smki sign --key conv --in "$W/msg" --out "$W/msg.sig"
expect_in "exists; --force replaces it" "the refusal names --force"
check "the refused --out is left as it was" cmp "$W/msg.sig" "$W/msg.sig.first"
expect_exit 0 "sign --force replaces it" smki sign --key conv --in "$W/msg" --out "$W/msg.sig" --force
check_fails "it was replaced (ECDSA signatures differ)" cmp -s "$W/msg.sig" "$W/msg.sig.first"
expect_exit 0 "key pub --out" smki key pub conv --out "$W/pub.pem"
expect_exit 2 "key pub --out over an existing file is refused" smki key pub conv --out "$W/pub.pem"
check "openssl verifies the DER signature" openssl dgst -sha256 -verify "$W/pub.pem" -signature "$W/msg.sig" "$W/msg"
# '-': the message from standard input, the signature to standard output.
"$SMKI_BIN" sign --key conv --in - --out - --raw <"$W/msg" >"$W/stdout.sig"
check "sign --in - --out - writes the 64-octet raw signature alone on stdout" test "$(stat -c %s "$W/stdout.sig")" = 64
expect_exit 0 "verify the stdout signature" smki verify --pub "$W/pub.pem" --in "$W/msg" --sig "$W/stdout.sig"
check "verify --in - reads the message from standard input" \
    "$SMKI_BIN" verify --pub "$W/pub.pem" --in - --sig "$W/stdout.sig" <"$W/msg"
expect_exit 1 "verify with both --in - and --sig - is a usage error" \
    smki verify --pub "$W/pub.pem" --in - --sig -
expect_in "only one of --in and --sig" "the usage error says why"
expect_exit 1 "sign --out - with --json is a usage error" smki --json sign --key conv --in "$W/msg" --out -
expect_exit 1 "an unknown option is named" smki sign --key conv --in "$W/msg" --out "$W/x" --bogus
expect_in "unknown option --bogus" "the unknown option is named"
expect_exit 1 "verify refuses sign's --force" smki verify --pub "$W/pub.pem" --in "$W/msg" --sig "$W/msg.sig" --force
expect_in "belong to 'smki sign'" "and says where it belongs"
expect_exit 1 "sign --raw --der together" smki sign --key conv --in "$W/msg" --out "$W/y" --raw --der

# ---- gbcs sign, duis sign: --force, '-' ------------------------------------------------------
G=(gbcs sign --key "file:$KS/90b3d51f30010000-ds.key" --cert "$KS/90b3d51f30010000-ds.pem")
expect_exit 0 "gbcs sign --out FILE" smki "${G[@]}" --in "$PRE" --out "$W/signed.hex"
expect_exit 2 "gbcs sign over an existing --out is refused" smki "${G[@]}" --in "$PRE" --out "$W/signed.hex"
expect_in "exists; --force replaces it" "the refusal names --force"
"$SMKI_BIN" "${G[@]}" --in - --out - <"$PRE" >"$W/stdout.hex"
# The same message as the file but for the signature (ECDSA: a new one each time).
a=$(<"$W/stdout.hex") b=$(<"$W/signed.hex")
check "gbcs sign --in - --out - gives the file's message on stdout" test "${a:0:-130}" = "${b:0:-130}" -a ${#a} = ${#b}
expect_exit 0 "gbcs inspect - reads standard input" bash -c '"$1" gbcs inspect - <"$2"' _ "$SMKI_BIN" "$W/signed.hex"
expect_exit 1 "gbcs sign --expect-counter with a non-decimal MAX" \
    smki "${G[@]}" --in "$PRE" --out "$W/c.hex" --expect-counter 1-0x10
expect_in "--expect-counter MAX is a whole number" "the bad counter bound is named"
expect_exit 1 "gbcs sign --expect-code of 5 digits" smki "${G[@]}" --in "$PRE" --out "$W/c.hex" --expect-code 00190
expect_in "1-4 hex digits" "the code's form is said"
D=(duis sign --key "file:$V/duis/keystore/90b3d51f30010000-xmlsign.key"
    --cert "$V/duis/keystore/90b3d51f30010000-xmlsign.pem" --at 2020-01-01)
expect_exit 0 "duis sign --out FILE" smki "${D[@]}" --in "$REQ" --out "$W/signed.xml"
expect_exit 2 "duis sign over an existing --out is refused" smki "${D[@]}" --in "$REQ" --out "$W/signed.xml"
expect_exit 0 "duis sign --force" smki "${D[@]}" --in "$REQ" --out "$W/signed.xml" --force
check "duis verify reads the signed XML from standard input" \
    bash -c '"$1" duis verify --trust "$2" --at 2020-01-01 - <"$3"' _ "$SMKI_BIN" "$V/duis/keystore" "$W/signed.xml"
check "xmlsec1 verifies the signed XML (independent)" \
    xmlsec1 --verify --enabled-reference-uris empty --pubkey-cert-pem "$V/duis/keystore/90b3d51f30010000-xmlsign.pem" \
    "$W/signed.xml"

# ---- lint: '-' --------------------------------------------------------------------------------
check "lint - reads a certificate from standard input" \
    bash -c '"$1" lint --env test - <"$2"' _ "$SMKI_BIN" "$KS/90b3d51f30010000-ds.pem"

# ---- device: --force before the device changes, numbers, times, eui64 -----------------------
ACB=$KS/90b3d51f30000002-ka.key
expect_exit 0 "device create --from-rtds" smki device create --eui $DEV --from-rtds "$KS"
run smki --json device show --eui $DEV
expect_json "device show --json names the device 'eui64'" 'd["eui64"] == "00-DB-12-34-56-78-90-A0" and "device" not in d'
echo x >"$W/taken.hex"
expect_exit 2 "receive with an existing --out is refused" \
    smki device receive --eui $DEV --rtds-replay-acb-key "$ACB" --at 2020-01-01 --out "$W/taken.hex" "$NBN"
expect_in "exists; --force replaces it" "the refusal names --force"
expect_exit 0 "and the device did not take the command: it is accepted now" \
    smki device receive --eui $DEV --rtds-replay-acb-key "$ACB" --at 2020-01-01T00:00:00Z --out "$W/taken.hex" --force "$NBN"
check "the response replaced the file (hex text)" grep -Eq '^[0-9A-F]{40,}$' "$W/taken.hex"
expect_exit 1 "set-floor --floor in hex is refused (decimal)" smki device set-floor --eui $DEV --role supplier --floor 0x10
expect_in "--floor is a whole number" "the option is named"
expect_exit 1 "make-cs02b --mode 1 is out of range" \
    smki device make-cs02b --mode 1 --replace "supplier:ds=$KS/90b3d51f30030000-ds.pem" --out "$W/q.der"
expect_in "--mode is a whole number from 2 to 9" "the range is said"
expect_exit 1 "make-cs02b --other without =" \
    smki device make-cs02b --mode 2 --other supplier --replace "supplier:ds=$KS/90b3d51f30030000-ds.pem" --out "$W/q.der"
expect_in "is not ROLE=N" "the form is said"
expect_exit 0 "make-cs02b to standard output" bash -c '"$1" device make-cs02b --mode 2 --seq 10 \
    --replace "supplier:ds=$2" --out - | openssl asn1parse -inform DER >/dev/null' _ "$SMKI_BIN" "$KS/90b3d51f30030000-ds.pem"
expect_exit 1 "make-command --code of 5 hex digits" smki device make-command --from 90-B3-D5-1F-30-01-00-00 \
    --to $DEV --counter 1 --code 00190 --content-hex 0102 --out "$W/p.hex"
expect_in "1-4 hex digits" "the code's form is said"
mkdir -p "$W/csrs"
: >"$W/csrs/00db123456780001-ka.csr"
expect_exit 2 "create --csr-dir with one of its files there is refused" \
    smki device create --eui 00-DB-12-34-56-78-00-01 --csr-dir "$W/csrs"
run smki --json device show --eui 00-DB-12-34-56-78-00-01
expect_json "and no device was made" 'not d["ok"] and d["error"]["code"] == "not_found"'
expect_exit 0 "create --csr-dir --force" smki device create --eui 00-DB-12-34-56-78-00-01 --csr-dir "$W/csrs" --force
check "openssl reads the DS CSR written there" openssl req -inform DER -in "$W/csrs/00db123456780001-ds.csr" -noout
# run-due: an alert file that exists is refused; the JSON stays one document that says
# what ran and why its alert was not written.
FUT=$V/gbcs/rtds/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX
MAIN_HOME=$SMKI_HOME
export SMKI_HOME=$ROOT/due
{
    expect_exit 0 "run-due home: device create" smki device create --eui $DEV --from-rtds "$KS"
    expect_exit 0 "a future-dated CS02b is scheduled" \
        smki device receive --eui $DEV --rtds-replay-acb-key "$ACB" --at 2020-01-01 "$FUT"
    mkdir -p "$W/alerts"
    echo taken >"$W/alerts/alert-1001.hex"
    run smki --json device run-due --eui $DEV --at 2030-01-16 --out-dir "$W/alerts"
    expect_json "run-due over an existing alert file: one JSON document, the command listed, the refusal named" \
        'not d["ok"] and len(d["executed"]) == 1 and "alert" not in d["executed"][0] and d["error"]["code"] == "exists"'
    check "the existing alert file is left as it was" grep -qx taken "$W/alerts/alert-1001.hex"
    check "stdout is one JSON document" "$PY" -c 'import json,sys; json.loads(sys.argv[1])' "$OUT"
}
export SMKI_HOME=$MAIN_HOME
printf '[device]\nalert_a2 = 8G1C\n' >>"$SMKI_HOME/smki.conf"
expect_exit 1 "a malformed [device] alert code is refused" \
    smki device receive --eui $DEV --rtds-replay-acb-key "$ACB" --at 2020-01-01 "$NBN"
expect_in "[device] alert_a2" "the setting is named"
expect_exit 1 "run-due refuses it too" smki device run-due --eui $DEV

finish
