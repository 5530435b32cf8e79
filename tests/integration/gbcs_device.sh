#!/usr/bin/env bash
# smki device from the outside. (1) The RTDS replay model of device 00-DB-12-34-56-78-90-A0
# built from the DCC's keystore accepts the RTDS CS02b commands in the named replay
# mode, refuses them without it, refuses a changed octet, a replay and the first
# supplier after the Change of Supplier (6.23). (2) The demo story on smki's own test
# PKI and a device with its keys in the token (tools/demo_gbcs.sh), checked step by
# step through --json. (3) Usage errors and the help. "ok - ..." / "not ok - ...";
# exit non-zero if any failed; a sanitizer report from any run is a failure.
#
# Environment (ctest sets it): SMKI_BIN, SMKI_SHARED, SMKI_SRC.
set -euo pipefail
: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
SRC=${SMKI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
TIMEOUT=120
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SOFTHSM2_CONF
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-gbcs-device.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
mkdir -p "$W"
source "$(dirname "$0")/lib.sh"

V=$SMKI_SHARED/vectors/gbcs
KS=$V/keystore
ACB_KA=$KS/90b3d51f30000002-ka.key
DEV=00-DB-12-34-56-78-90-A0
SBS=$V/rtds/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX
SBT=$V/rtds/6.23_CS02bSupplierByTransCoS/CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX
TBT=$V/rtds/NA_CS02bTransCoSByTransCoS/CS02bTransCoSByTransCoS_NA_SUCCESS_COMMAND_GBCS.HEX
NBN=$V/rtds/6.15.1_CS02bNOByNO/CS02bNOByNO_6.15.1_SUCCESS_COMMAND_GBCS.HEX

# ---- (1) RTDS replay model --------------------------------------------------------------
export SMKI_HOME=$ROOT/rtds
expect_exit 0 "device create --from-rtds" smki device create --eui $DEV --from-rtds "$KS"
expect_exit 2 "create again: refused (exists)" smki device create --eui $DEV --from-rtds "$KS"
expect_in "already exists" "the refusal says the device exists"
run smki --json device show --eui $DEV
expect_json "show lists 11 cells, the root by SKI only" \
  'len(d["cells"]) == 11 and any(c["cell"] == "root/CA/management" and not c["has_key"] for c in d["cells"])'
expect_exit 2 "receive without the named RTDS replay mode is refused" smki device receive --eui $DEV "$SBS"
expect_in "RTDS replay" "the refusal names the RTDS replay mode"
expect_exit 0 "CS02b networkOperatorByNetworkOperator accepted (dry run)" \
  smki device receive --eui $DEV "$NBN" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01 --dry-run
tr -d ' \r\n' <"$SBS" >"$W/flip.hex"
sed -i 's/^\(.\{400\}\)\(.\)/\1X\2/; s/X0/1/; s/X1/0/; s/X2/3/; s/X3/2/; s/X4/5/; s/X5/4/; s/X6/7/; s/X7/6/; s/X8/9/; s/X9/8/; s/XA/B/; s/XB/A/; s/XC/D/; s/XD/C/; s/XE/F/; s/XF/E/' "$W/flip.hex"
check "the flipped copy differs from the command" bash -c "! cmp -s <(tr -d ' \r\n' <'$SBS') '$W/flip.hex'"
run smki --json device receive --eui $DEV "$W/flip.hex" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01 --out "$W/flip.alert"
expect_json "one octet changed: refused with an alert (A2: bad MAC)" \
  'd["verdict"] == "bad-mac" and d["output"] == "alert" and d["alert_code"] > 0'
run smki --json device receive --eui $DEV "$SBS" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01 --out "$W/sbs.resp"
expect_json "CS02b supplierBySupplier accepted, three cells replaced" \
  'd["verdict"] == "accepted" and d["applied"] and d["mode"] == 2 and [o["status"] for o in d["outcomes"]] == [0, 0, 0]'
check "the response was written" test -s "$W/sbs.resp"
run smki --json device receive --eui $DEV "$SBS" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01
expect_json "the same command again is refused (the old supplier's cell was replaced)" 'd["verdict"] != "accepted"'
expect_exit 2 "and exits 2" smki device receive --eui $DEV "$SBS" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01

export SMKI_HOME=$ROOT/rtds2
smki device create --eui $DEV --from-rtds "$KS" >/dev/null
expect_exit 0 "set-floor supplier 1000" smki device set-floor --eui $DEV --role supplier --floor 1000
run smki --json device receive --eui $DEV "$SBS" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01
expect_json "counter 1000 at the floor: refused as a replay" 'd["verdict"] == "replay"'
expect_exit 0 "CS02b supplierByTransCoS (Change of Supplier) accepted" \
  smki device receive --eui $DEV "$SBT" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01
run smki --json device show --eui $DEV
expect_json "the supplier cells now hold GITTESTSUPPLIER2 (90B3D51F30030000)" \
  'all(c["subject"] == "90B3D51F30030000" for c in d["cells"] if c["cell"].startswith("supplier/"))'
smki device set-floor --eui $DEV --role supplier --floor 0 >/dev/null
run smki --json device receive --eui $DEV "$SBS" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01
expect_json "the first supplier's command is refused after the Change of Supplier (A2)" \
  'd["verdict"] == "no-trust-anchor" and d["output"] == "alert"'

# Each RTDS command is made against the device's initial state (6.23 is signed by the
# transitional CoS key that NA_CS02bTransCoSByTransCoS replaces), so one model each.
export SMKI_HOME=$ROOT/rtds3
smki device create --eui $DEV --from-rtds "$KS" >/dev/null
expect_exit 0 "CS02b transCoSByTransCoS accepted" \
  smki device receive --eui $DEV "$TBT" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01
expect_exit 2 "after it, 6.23 (signed by the replaced transitional CoS key) is refused" \
  smki device receive --eui $DEV "$SBT" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01

# A future-dated CS02b: verified and scheduled on receipt, run when its time has come.
FUT=$V/rtds/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX
export SMKI_HOME=$ROOT/rtds4
smki device create --eui $DEV --from-rtds "$KS" >/dev/null
run smki --json device receive --eui $DEV "$FUT" --rtds-replay-acb-key "$ACB_KA" --at 2020-01-01 --out "$W/fut.resp"
expect_json "a future-dated CS02b (2030-01-15) is scheduled, answered at once" \
  'd["verdict"] == "accepted" and d["action"] == "cs02b-scheduled" and d["output"] == "response"'
run smki --json gbcs inspect "$W/fut.resp"
expect_json "the answer is SEQUENCE { NULL }, as the RTDS FUTURE_DATED response" \
  'd["messages"][0]["signing"]["content"] == "30020500"'
expect_exit 0 "nothing is due in 2020" smki device run-due --eui $DEV --at 2020-06-01
expect_in "Nothing due" "run-due says so"
mkdir -p "$W/alerts"
run smki --json device run-due --eui $DEV --at 2030-01-16 --out-dir "$W/alerts"
expect_json "in 2030 it runs; the RTDS certificates expired in 2025 and the command applies time checks: 8F67" \
  'len(d["executed"]) == 1 and d["executed"][0]["alert_code"] == 0x8F67 and not d["executed"][0]["applied"]'
run smki --json gbcs inspect "$W/alerts/alert-1001.hex"
expect_json "the alert (CRA 03, 00CB) goes to the supplier" \
  'd["messages"][0]["signing"]["cra"] == 3 and d["messages"][0]["signing"]["message_code"] == "00CB" and d["messages"][0]["signing"]["recipient"] == "90B3D51F30010000"'
expect_exit 0 "and it ran once" smki device run-due --eui $DEV --at 2030-01-16
expect_in "Nothing due" "nothing is left"

# ---- (2) The demo story on smki's own PKI -----------------------------------------------
export SMKI_HOME=$ROOT/own SMKI_PIN=int-user-1234 SMKI_SO_PIN=int-so-123456
expect_exit 0 "hsm init" smki hsm init
run env GBCS_DEMO_DIR="$W/demo" GBCS_DEMO_DEVICE=00-DB-12-34-56-78-00-01 timeout 600 bash "$SRC/tools/demo_gbcs.sh" "$SMKI_BIN"
if [[ $RC == 0 ]]; then ok "demo_gbcs.sh ran end to end"; else not_ok "demo_gbcs.sh failed"; DIAG_STDOUT=tail diag; fi
expect_in "MAC checked: device-ka" "the device checked the MAC with its own KA key (token)"
run smki --json gbcs inspect "$W/demo/ecs01a-1.response.hex"
expect_json "the codec reads the device's response to a signed command: signed, not wrapped (DF), to supplier A" \
  'd["messages"][0]["kind"] == "general-signing" and d["messages"][0]["signing"]["cra"] == 2 and d["messages"][0]["signing"]["recipient"] == "90B3D51F30010000" and d["messages"][0]["signing"]["signature_state"] == "present"'
run smki --json device receive --eui 00-DB-12-34-56-78-00-01 "$W/demo/ecs01a-2.hex"
expect_json "the first supplier's next command is refused" 'd["verdict"] == "no-trust-anchor"'
run smki --json device receive --eui 00-DB-12-34-56-78-00-01 "$W/demo/cos.hex"
expect_json "the Change of Supplier command replayed is refused" 'd["verdict"] == "replay"'
check "the CS02c-shaped CSR has an empty subject, critical keyUsage and a hardwareModuleName SAN" \
  bash -c "openssl asn1parse -inform DER -in '$W/demo/00db123456780001-ds.csr' | grep -q 'Subject Alternative Name' && openssl req -inform DER -in '$W/demo/00db123456780001-ds.csr' -noout -verify"
# The device's KA key: its CS02c CSR (signed by the key at birth) became a device KA
# certificate; the key itself signs nothing any more.
D1=00db123456780001
check "the KA CSR's proof of possession verifies (openssl) and it asks for critical keyAgreement" \
  bash -c "openssl req -inform DER -in '$W/demo/$D1-ka.csr' -noout -verify 2>&1 | grep -q 'verify OK' && openssl req -inform DER -in '$W/demo/$D1-ka.csr' -noout -text | grep -A1 'Key Usage: critical' | grep -q 'Key Agreement'"
check "the KA CSR has an empty subject and the device's hardwareModuleName" \
  bash -c "openssl asn1parse -inform DER -in '$W/demo/$D1-ka.csr' | grep -q 'Subject Alternative Name' && openssl req -inform DER -in '$W/demo/$D1-ka.csr' -noout -subject | grep -Eq '^subject=\s*$' && od -An -tx1 -v '$W/demo/$D1-ka.csr' | tr -d ' \n' | grep -q '0408$D1'"
expect_exit 0 "the device KA certificate lints clean" smki lint "$W/demo/device-ka.pem"
expect_in "device KA" "lint sees a device KA certificate"
check "openssl verifies the device KA certificate (test root, DCA)" \
  openssl verify -CAfile "$SMKI_HOME/ca/test/smki-root.pem" -untrusted "$SMKI_HOME/ca/test/smki-dca.pem" "$W/demo/device-ka.pem"
check "the device KA certificate certifies the token KA key" \
  cmp <(openssl x509 -in "$W/demo/device-ka.pem" -pubkey -noout) "$W/demo/$D1-ka.pub.pem"
run smki key list
check "key list shows the device KA key as ka only (CKA_SIGN cleared)" grep -Eq "^dev-$D1-ka +ka " <<<"$OUT"
printf 'x' >"$W/x.bin"
expect_exit 2 "smki sign with the device KA key is refused" smki sign --key "dev-$D1-ka" --in "$W/x.bin" --out "$W/x.sig"
check "no signature file is left" test ! -e "$W/x.sig"
# The demo went through the real gateway.
run smki --json gbcs gateway device list
expect_json "the gateway's inventory holds the device (commissioned, its KA key) and MACed the demo's 4 commands" \
  'any(x["eui64"] == "00-DB-12-34-56-78-00-01" and x["status"] == "commissioned" and x["has_ka_key"] and x["next_invocation_counter"] == 4 for x in d["devices"])'
run smki --json gbcs gateway check --oca "$SMKI_HOME/ca/test/smki-oca.pem" --crl "$SMKI_HOME/ca/test/smki-oca.crl" \
  "$W/demo/ecs01a-1.signed.hex"
expect_json "the gateway refuses the demo's first pre-command again (counter.replay)" \
  'd["messages"][0]["verdict"] == "rejected" and d["messages"][0]["reason"] == "counter.replay"'
# CS02c keyAgreement from supplier B (after the Change of Supplier): a real CSR, issued by the DCA.
expect_exit 0 "a CS02c keyAgreement command from supplier B" \
  smki device make-command --sign "file:$W/demo/supplierB-ds.key" --from 90-B3-D5-1F-30-03-00-00 \
  --to 00-DB-12-34-56-78-00-01 --counter 9000000000000000 --code 000A --content-hex 300403020308 \
  --acb-ka "file:$W/demo/acb-ka.key" --device-ka "$W/demo/device-ka.pem" --out "$W/cs02c-ka.hex"
run smki --json device receive --eui 00-DB-12-34-56-78-00-01 "$W/cs02c-ka.hex" --out "$W/cs02c-ka.response.hex"
expect_json "the device accepts it and answers with a CSR" 'd["verdict"] == "accepted" and d["action"] == "cs02c-csr"'
run smki --json gbcs inspect "$W/cs02c-ka.response.hex"
printf '%s' "$OUT" | $PY -c 'import json,sys; sys.stdout.buffer.write(bytes.fromhex(json.load(sys.stdin)["messages"][0]["signing"]["content"]))' >"$W/cs02c-ka.csr"
check "the CS02c KA CSR verifies (openssl)" bash -c "openssl req -inform DER -in '$W/cs02c-ka.csr' -noout -verify 2>&1 | grep -q 'verify OK'"
expect_exit 0 "the test DCA issues the CS02c KA CSR" \
  smki ca issue --env test --party GITTEST --operator demo-ra --csr "$W/cs02c-ka.csr" --out "$W/cs02c-ka.pem"
expect_exit 0 "that certificate lints clean" smki lint "$W/cs02c-ka.pem"
check "openssl verifies it and it is keyAgreement for the device" bash -c "openssl verify -CAfile '$SMKI_HOME/ca/test/smki-root.pem' -untrusted '$SMKI_HOME/ca/test/smki-dca.pem' '$W/cs02c-ka.pem' && openssl x509 -in '$W/cs02c-ka.pem' -noout -ext keyUsage | grep -q 'Key Agreement'"
# The return path: a non-critical CS02a from the ACB (unsigned) is answered MACed to the
# ACB's KA cell; every response and alert the device produced verifies with smki gbcs verify
# (the device's certificates, the recipients' KA keys) and, independently, python3-cryptography.
expect_exit 0 "an unsigned CS02a from the ACB" \
  smki device make-command --from 90-B3-D5-1F-40-00-00-02 --to 00-DB-12-34-56-78-00-01 --counter 9000000000000001 \
  --code 0008 --content-hex 300E3007020102030207803003020102 --acb-ka "file:$W/demo/acb-ka.key" \
  --device-ka "$W/demo/device-ka.pem" --out "$W/cs02a.hex"
run smki --json device receive --eui 00-DB-12-34-56-78-00-01 "$W/cs02a.hex" --out "$W/cs02a.response.hex"
expect_json "the device answers CS02a MACed to the ACB, not signed" \
  'd["verdict"] == "accepted" and d["output_maced"] and not d["output_signed"]'
T=$W/trust-return
mkdir -p "$T"
for x in ds ka; do cp "$W/demo/device-$x.pem" "$T/$D1-$x.pem"; done
for x in supplierA-ds supplierA-ka supplierB-ds supplierB-ka acb-ds acb-ka cos-ds; do cp "$W/demo/$x.pem" "$T/"; done
cp "$W/demo/acb-ka.key" "$T/90b3d51f40000002-ka.key"
RETURNED=("$W/demo/ecs01a-1.response.hex" "$W/demo/replay.alert.hex" "$W/demo/cos.response.hex"
  "$W/demo/ecs01a-2.alert.hex" "$W/demo/ecs01a-b1.response.hex" "$W/cs02c-ka.response.hex" "$W/cs02a.response.hex")
run smki --json gbcs verify --trust "$T" --at now --recipient-key "file:$W/demo/acb-ka.key" "${RETURNED[@]}"
expect_json "smki gbcs verify accepts the device's 5 responses (4 signed, 1 MACed) and 2 alerts (signed)" \
  'd["ok"] and d["by_kind"]["responses"] == {"passed": 5, "failed": 0} and d["by_kind"]["alerts"] == {"passed": 2, "failed": 0} and [(r["signature"], r["mac"]) for r in d["results"]] == [(True, False)] * 6 + [(False, True)]'
check "python3-cryptography verifies the same 7 independently" \
  "$PY" "$SRC/tests/integration/gbcs_return.py" verify "$T" "$T/90b3d51f40000002-ka.key" -- "${RETURNED[@]}"
expect_exit 2 "the device's response does not verify against another folder's certificates" \
  smki gbcs verify --trust "$T" --at now "$W/demo/ecs01a-1.response.hex" --recipient-key "file:$KS/90b3d51f30010000-ka.key"
expect_in "its KA certificate" "the supplier key from the RTDS keystore is not bound in this folder"
cp "$KS/00db1234567890a0-ds.pem" "$T/"
"$PY" "$SRC/tests/integration/gbcs_return.py" set-title "$W/demo/ecs01a-1.response.hex" "$W/other-device.hex" originator 00db1234567890a0
expect_exit 2 "this device's response under another device's title" smki gbcs verify --trust "$T" --at now "$W/other-device.hex"
expect_in "signature.invalid" "refused as signature.invalid"
expect_exit 2 "RTDS replay mode on a device with its own keys is refused" \
  smki device receive --eui 00-DB-12-34-56-78-00-01 "$W/demo/ecs01a-2.hex" --rtds-replay-acb-key "$W/demo/acb-ka.key"
expect_in "own keys" "the refusal says why"

# ---- (3) Usage -------------------------------------------------------------------------------
expect_exit 0 "device --help" smki device --help
expect_in "receive" "help lists receive"
expect_exit 1 "receive without --eui" smki device receive "$SBS"
expect_exit 1 "bad --at" smki device receive --eui $DEV "$SBS" --at 2020-13-01
run smki --json device show --eui 00-DB-12-34-56-78-99-99
expect_json "an unknown device: a JSON error" '"error" in d or "code" in d or "message" in d'

finish
