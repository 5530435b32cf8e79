#!/usr/bin/env bash
# The return path through `smki gbcs verify`: every RTDS command, response and alert is
# verified by following its structure (counts per kind from `gbcs inspect`, nothing
# fails, the device-to-device PCS01 pair reported as such), python3-cryptography agrees
# on every response and alert, and each refusal is named: a changed octet (signature and
# MAC), a response signed by another device, a MAC under the wrong recipient key, a
# missing recipient key, a replayed and a reordered counter (--counters), a held lock.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3 # Debian's: the python3 on PATH may lack cryptography
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VEC=$SMKI_SHARED/vectors/gbcs
KEYSTORE=$VEC/keystore
RTDS=$VEC/rtds
AT=2020-01-01T00:00:00Z
TIMEOUT=120

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-return.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
mkdir -p "$W"
export SMKI_HOME=$ROOT/home

. "$HERE/lib.sh"

check "$PY imports cryptography (apt-get install python3-cryptography)" "$PY" -c 'import cryptography'

# Every message on the wire (pre-commands are what the DCC hands back for signing).
mapfile -t MSGS < <(find "$RTDS" -name '*.HEX' ! -name '*_PRECOMMAND_*' | sort)
# Every published KA private key whose certificate is in the keystore: the recipients'.
RKEYS=()
KEYFILES=()
for k in "$KEYSTORE"/*-ka.key; do
    [[ -e ${k%.key}.pem ]] || continue
    RKEYS+=(--recipient-key "file:$k")
    KEYFILES+=("$k")
done
VERIFY=(smki gbcs verify --trust "$KEYSTORE" --at "$AT" "${RKEYS[@]}")

# The kinds by the messages' own CRA flags, and which messages are between two devices
# (both titles are Device Certificates: an empty subject), as an independent count.
run smki --json gbcs inspect "${MSGS[@]}"
printf '%s' "$OUT" >"$W/inspect.json"
read -r N_CMD N_RSP N_ALR N_D2D < <("$PY" - "$W/inspect.json" "$KEYSTORE" <<'PYTHON'
import json, os, sys
from cryptography import x509
d = json.load(open(sys.argv[1]))
def device(eui):
    p = os.path.join(sys.argv[2], eui.lower() + "-ka.pem")
    return os.path.exists(p) and len(x509.load_pem_x509_certificate(open(p, "rb").read()).subject) == 0
n = {1: 0, 2: 0, 3: 0}
d2d = 0
for m in d["messages"]:
    s = m["signing"]
    n[s["cra"]] += 1
    d2d += m["kind"] == "general-ciphering" and device(s["originator"]) and device(s["recipient"])
print(n[1], n[2], n[3], d2d)
PYTHON
)
check "the RTDS selection holds commands ($N_CMD), responses ($N_RSP) and alerts ($N_ALR)" \
    test "$N_CMD" -gt 0 -a "$N_RSP" -gt 0 -a "$N_ALR" -gt 0

# ---- the whole folder ---------------------------------------------------------------------------
expect_exit 0 "verify every RTDS command, response and alert (${#MSGS[@]})" \
    smki --json gbcs verify --trust "$KEYSTORE" --at "$AT" --acb-key "file:$KEYSTORE/90b3d51f30000002-ka.key" \
    "${RKEYS[@]}" "${MSGS[@]}"
expect_json "counts per kind, nothing failed, device-to-device reported ($N_D2D)" \
    "d['ok'] and d['failed'] == 0 and d['passed'] == ${#MSGS[@]} and d['device_to_device'] == $N_D2D and \
     d['by_kind']['commands'] == {'passed': $N_CMD, 'failed': 0} and \
     d['by_kind']['responses'] == {'passed': $N_RSP, 'failed': 0} and \
     d['by_kind']['alerts'] == {'passed': $N_ALR, 'failed': 0} and \
     all(r['signature'] or r['mac'] or r['device_to_device'] for r in d['results']) and \
     all(r['verdict'] == 'd2d' for r in d['results'] if r['device_to_device'] and not r['signature'])"
expect_json "every response and alert says what was checked; signed ones and MACed ones both occur" \
    "any(r['kind'] == 'response' and r['signature'] for r in d['results']) and \
     any(r['kind'] == 'response' and r['mac'] for r in d['results']) and \
     all(r['signature'] for r in d['results'] if r['kind'] == 'alert')"

mapfile -t RETURN < <("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["results"]:
    if r["kind"] in ("response", "alert") and r["verdict"] == "ok":
        print(r["file"])' <(printf '%s' "$OUT"))
check "python3-cryptography verifies the same ${#RETURN[@]} responses and alerts independently" \
    "$PY" "$HERE/gbcs_return.py" verify "$KEYSTORE" "${KEYFILES[@]}" -- "${RETURN[@]}"

expect_exit 0 "human output: one line per file with what was checked" "${VERIFY[@]}" \
    "$RTDS/11.2_CS08/CS08_11.2_SUCCESS_RESPONSE_GBCS.HEX" "$RTDS/7.1_ECS42/ECS42_7.1_SUCCESS_RESPONSE_GBCS.HEX" \
    "$RTDS/NA_PCS01/PCS01_NA_SUCCESS_RESPONSE_GBCS.HEX" "$RTDS/NA_FDRA-DLMS/FDRA-DLMS_NA_8F72_ALERT_GBCS.HEX"
expect_in "CS08_11.2_SUCCESS_RESPONSE_GBCS.HEX: response, MAC (00DB1234567890A4 -> 90B3D51F30000002" "a MACed response"
expect_in "ECS42_7.1_SUCCESS_RESPONSE_GBCS.HEX: response, signature (00DB1234567890A0 -> 90B3D51F30010000" \
    "a signed response"
expect_in "d2d  $RTDS/NA_PCS01/PCS01_NA_SUCCESS_RESPONSE_GBCS.HEX: response, device-to-device MAC" \
    "the PPMID's response is device-to-device"
expect_in "FDRA-DLMS_NA_8F72_ALERT_GBCS.HEX: alert, signature (00DB1234567890A0" "a signed alert"
expect_in "4 passed, 0 failed (3 verified, 1 device-to-device; commands 0/0, responses 3/3, alerts 1/1 passed)" \
    "the totals"

# ---- refusals, each by name -----------------------------------------------------------------------
SIGNED=$RTDS/7.1_ECS42/ECS42_7.1_SUCCESS_RESPONSE_GBCS.HEX       # a0 -> supplier, signed
MACED=$RTDS/3.1_ECS10/ECS10_3.1_SUCCESS_RESPONSE_GBCS.HEX        # a0 -> supplier, MACed
ALERT=$RTDS/NA_FDRA-DLMS/FDRA-DLMS_NA_8F72_ALERT_GBCS.HEX
flip() { # flip FILE OUT BACK: change the octet BACK octets before the end of a hex file
    local h at o
    h=$(tr -d ' \r\n' <"$1")
    at=$((${#h} - 2 * $3))
    o=${h:$at:2}
    printf '%s%02X%s' "${h:0:$at}" $((0x$o ^ 0x01)) "${h:$((at + 2))}" >"$2"
}
flip "$SIGNED" "$W/changed-signed.hex" 66 # the content's last octet (before 40 r s)
expect_exit 2 "a changed octet in a signed response" "${VERIFY[@]}" "$W/changed-signed.hex"
expect_in "FAIL $W/changed-signed.hex: response, signature.invalid" "refused as signature.invalid"
flip "$MACED" "$W/changed-maced.hex" 14 # the content's last octet (before 00 and the MAC)
expect_exit 2 "a changed octet in a MACed response" "${VERIFY[@]}" "$W/changed-maced.hex"
expect_in "FAIL $W/changed-maced.hex: response, mac.invalid" "refused as mac.invalid"
H=$(tr -d ' \r\n' <"$MACED")
printf '%s' "${H:0:${#H}-2}$(printf '%02X' $((0x${H: -2} ^ 0x80)))" >"$W/changed-mac.hex"
expect_exit 2 "a changed octet in the MAC itself" "${VERIFY[@]}" "$W/changed-mac.hex"
expect_in "mac.invalid" "refused as mac.invalid"
flip "$ALERT" "$W/changed-alert.hex" 66
expect_exit 2 "a changed octet in a signed alert" "${VERIFY[@]}" "$W/changed-alert.hex"
expect_in "alert, signature.invalid" "refused as signature.invalid"

# a0's signature under a1's name: a response signed by another device than its originator.
"$PY" "$HERE/gbcs_return.py" set-title "$SIGNED" "$W/other-device.hex" originator 00db1234567890a1
expect_exit 2 "a response signed by another device (a0's key, a1's title)" "${VERIFY[@]}" "$W/other-device.hex"
expect_in "response, signature.invalid: signature of 00DB1234567890A1" "refused as signature.invalid naming a1"

# The device's MAC computed for the network operator's KA key, the header naming the supplier.
"$PY" "$HERE/gbcs_return.py" remac "$MACED" "$W/wrong-recipient.hex" \
    "$KEYSTORE/90b3d51f30020000-ka.key" "$KEYSTORE/00db1234567890a0-ka.pem"
expect_exit 2 "a MAC under the wrong recipient's key" "${VERIFY[@]}" "$W/wrong-recipient.hex"
expect_in "response, mac.invalid: MAC does not verify under the KA keys of recipient 90B3D51F30010000" \
    "refused as mac.invalid under the supplier's keys (management and prepayment)"
"$PY" "$HERE/gbcs_return.py" set-title "$W/wrong-recipient.hex" "$W/to-no.hex" recipient 90b3d51f30020000
expect_exit 2 "with the title changed to the network operator the KDF input changes: still refused" \
    smki gbcs verify --trust "$KEYSTORE" --at "$AT" --recipient-key "file:$KEYSTORE/90b3d51f30020000-ka.key" \
    "$W/to-no.hex"
expect_in "mac.invalid" "refused as mac.invalid"

expect_exit 2 "a MACed response without the recipient's key" \
    smki gbcs verify --trust "$KEYSTORE" --at "$AT" --recipient-key "file:$KEYSTORE/90b3d51f30020000-ka.key" "$MACED"
expect_in "mac.no-key: no KA private key of recipient 90B3D51F30010000" "refused as mac.no-key naming the recipient"
expect_exit 2 "a signed response whose device certificate is missing" \
    smki gbcs verify --trust "$W" --at "$AT" "$SIGNED"
expect_in "cert.not-found" "refused as cert.not-found"
expect_exit 2 "a recipient key with no KA certificate in the folder" \
    smki gbcs verify --trust "$KEYSTORE" --at "$AT" --recipient-key "file:$KEYSTORE/abababababababab-ka.key" "$MACED"
expect_in "its KA certificate" "the unbound key is named"
"$PY" -c 'import sys; h=open(sys.argv[1]).read().split(); open(sys.argv[2],"w").write("".join(h)[:-130]+"00")' \
    "$SIGNED" "$W/unsigned.hex"
expect_exit 2 "an unsigned, unwrapped response" "${VERIFY[@]}" "$W/unsigned.hex"
expect_in "structure.unprotected" "refused as structure.unprotected"
printf 'DF0902' >"$W/short.hex"
expect_exit 2 "a truncated message" "${VERIFY[@]}" "$W/short.hex"
expect_in "structure.malformed" "refused as structure.malformed"

# ---- counters: the User's high-water mark per originator, recipient and CRA flag -------------------
R1006=$RTDS/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_RESPONSE_GBCS.HEX
R1007=$RTDS/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_RESPONSE_GBCS.HEX
R1008=$RTDS/1.1.1_ECS01a/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_RESPONSE_GBCS.HEX
C=$W/user.counters
expect_exit 0 "responses 1006 and 1007 in order" "${VERIFY[@]}" --counters "$C" "$R1006" "$R1007"
check "the counter file holds the mark" grep -qx '00db1234567890a0 90b3d51f30010000 2 1007' "$C"
expect_exit 2 "1007 again, in a later run: replayed" "${VERIFY[@]}" --counters "$C" "$R1007"
expect_in "counter.replay" "refused as counter.replay"
expect_exit 2 "1006 after 1007: reordered" "${VERIFY[@]}" --counters "$C" "$R1006"
expect_in "counter.reordered" "refused as counter.reordered"
expect_exit 0 "1008 passes; an alert keeps its own mark" "${VERIFY[@]}" --counters "$C" "$R1008" "$ALERT"
check "marks for the response and the alert" \
    grep -qx '00db1234567890a0 90b3d51f30010000 2 1008' "$C"
check "marks for the alert" grep -qx '00db1234567890a0 90b3d51f30010000 3 2000' "$C"
expect_exit 2 "a replay inside one run" "${VERIFY[@]}" --counters "$W/run.counters" "$R1007" "$R1007"
expect_in "1 passed, 1 failed" "the first passes, the second is the replay"
expect_exit 2 "a message that fails leaves no mark" "${VERIFY[@]}" --counters "$W/fail.counters" "$W/changed-signed.hex"
check_fails "no mark for the refused message" grep -q '00db1234567890a0' "$W/fail.counters"
expect_exit 3 "counters in use by another process" \
    flock "$C.lock" "$SMKI_BIN" gbcs verify --trust "$KEYSTORE" --at "$AT" --counters "$C" "$R1008"
expect_in "in use by another process" "the held lock is named"
printf 'not a counter line\n' >"$W/bad.counters"
expect_exit 2 "a malformed counter file" "${VERIFY[@]}" --counters "$W/bad.counters" "$R1008"
expect_in "bad.counters:1:" "the file and line are named"

# ---- usage -------------------------------------------------------------------------------------------
expect_exit 0 "verify --help teaches responses" smki gbcs verify --help
expect_in "--recipient-key" "the help names --recipient-key"
expect_exit 1 "--recipient-key without a value" smki gbcs verify --trust "$KEYSTORE" --recipient-key

finish
