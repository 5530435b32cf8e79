#!/usr/bin/env bash
# smki gbcs on the DCC's RTDS messages through the command line: inspect (human and
# --json), sign (file key and SoftHSM token key; every refusal with its exit code and
# nothing written), verify (all RTDS commands, tampering, expiry, renamed
# certificates, the ACB key in a token), and an independent check of smki's signature
# with openssl over the signed region. The every-octet tamper proof runs in
# tests/unit/test_gbcs.c (60k variants: too many for CLI processes).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3 # Debian's: the python3 on PATH may lack cryptography
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
VEC=$SMKI_SHARED/vectors/gbcs
KEYSTORE=$VEC/keystore
RTDS=$VEC/rtds
ACB_KA=file:$KEYSTORE/90b3d51f30000002-ka.key
SUP_KEY=file:$KEYSTORE/90b3d51f30010000-ds.key
SUP_CERT=$KEYSTORE/90b3d51f30010000-ds.pem
AT=2020-01-01T00:00:00Z
PRE=$RTDS/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX
CMD=$RTDS/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_COMMAND_GBCS.HEX
PCS01=$RTDS/NA_PCS01/PCS01_NA_SUCCESS_COMMAND_GBCS.HEX
TIMEOUT=120
PIN=user-2468
SO_PIN=so-13579753

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_SHIM_FAIL SMKI_DEBUG SOFTHSM2_CONF
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-gbcs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
mkdir -p "$W"
export SMKI_HOME=$ROOT/home

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check "smki binary is executable: $SMKI_BIN" test -x "$SMKI_BIN"
check "$PY imports cryptography (apt-get install python3-cryptography)" "$PY" -c 'import cryptography'

mapfile -t ALL < <(find "$RTDS" -name '*.HEX' | sort)
mapfile -t COMMANDS < <(find "$RTDS" -name '*_COMMAND_GBCS.HEX' ! -name '*PRECOMMAND*' | sort)
mapfile -t VERIFIABLE < <(printf '%s\n' "${COMMANDS[@]}" | grep -v '/NA_PCS01/')

# ---- help ---------------------------------------------------------------------------------
expect_exit 0 "gbcs --help" smki gbcs --help
expect_in "inspect" "gbcs --help lists inspect"
for sub in inspect sign verify; do
    expect_exit 0 "gbcs $sub --help" smki gbcs "$sub" --help
    expect_in "Usage: smki gbcs $sub" "gbcs $sub --help teaches its usage"
done
expect_exit 1 "gbcs with an unknown subcommand" smki gbcs frobnicate

# ---- inspect ------------------------------------------------------------------------------
expect_exit 0 "inspect every RTDS file (${#ALL[@]})" smki gbcs inspect "${ALL[@]}"
expect_in "general-signing APDU (DF)" "inspect shows the general-signing APDU"
expect_in "supplementary ID     90B3D51F30010000" "inspect shows the URP supplementary remote party ID"
expect_exit 0 "inspect --json every RTDS file" smki --json gbcs inspect "${ALL[@]}"
expect_json "inspect --json: every message ok, counts and kinds" \
    "d['ok'] and len(d['messages']) == ${#ALL[@]} and all(m['ok'] for m in d['messages']) and \
     {m['kind'] for m in d['messages']} == {'general-signing', 'general-ciphering'}"
expect_exit 0 "inspect --json of one command" smki --json gbcs inspect "$CMD"
expect_json "inspect --json: fields of the ECS01a command" \
    "(lambda m: m['signing']['cra_name'] == 'command' and m['signing']['originator'] == '90B3D51F30010000' and \
      m['signing']['recipient'] == '00DB1234567890A0' and m['signing']['message_code'] == '0019' and \
      m['signing']['signature_state'] == 'present' and m['ciphering']['security_control'] == 17 and \
      m['ciphering']['aad_header'] == '110000000000' and len(m['ciphering']['mac']) == 24 and \
      m['signing']['signed_offset'] == m['signing']['offset'] + 1)(d['messages'][0])"
# Binary input is read as well as hex text.
"$PY" -c "import sys; open(sys.argv[2], 'wb').write(bytes.fromhex(open(sys.argv[1]).read()))" "$CMD" "$W/cmd.bin"
expect_exit 0 "inspect a binary command" smki gbcs inspect "$W/cmd.bin"
expect_in "general-ciphering, " "the binary file parses as general-ciphering"
# Defects: exit 2 with field and offset.
{ cat "$PRE"; printf '0000'; } >"$W/trailing.hex"
expect_exit 2 "inspect refuses trailing octets" smki gbcs inspect "$W/trailing.hex"
expect_in "trailing octet" "the refusal says trailing octets"
sed 's/^DF0901/DF0904/' "$PRE" >"$W/badcra.hex"
expect_exit 2 "inspect refuses CRA flag 04" smki gbcs inspect "$W/badcra.hex"
expect_in "CRA flag at offset 2" "the refusal names the CRA flag and its offset"
head -c 100 "$CMD" >"$W/cut.hex"
expect_exit 2 "inspect refuses a truncated command" smki gbcs inspect "$W/cut.hex"
expect_exit 2 "inspect --json of a bad file" smki --json gbcs inspect "$W/badcra.hex" "$PRE"
expect_json "inspect --json reports the bad file and the good one" \
    "not d['ok'] and d['failed'] == 1 and d['messages'][0]['error']['code'] == 'input' and d['messages'][1]['ok']"
expect_exit 2 "inspect a missing file" smki gbcs inspect "$W/nope.hex"
expect_exit 1 "inspect without files" smki gbcs inspect

# ---- sign with the supplier's test key ------------------------------------------------------
expect_exit 0 "sign the ECS01a pre-command as the supplier" \
    smki gbcs sign --key "$SUP_KEY" --cert "$SUP_CERT" --in "$PRE" --out "$W/signed.hex" \
    --expect-code 0019 --expect-target 00-DB-12-34-56-78-90-A0 --expect-counter 0-99999999999
expect_in "Signed" "sign reports what it signed"
check "the output is hex text like the RTDS files" grep -qE '^DF[0-9A-F]+$' "$W/signed.hex"
check "the output begins with the pre-command and adds 40 r s (130 hex digits)" "$PY" -c "
import sys
pre = open('$PRE').read().split()[0]; out = open('$W/signed.hex').read().strip()
sys.exit(0 if out.startswith(pre) and len(out) == len(pre) + 130 and out[len(pre):len(pre)+2] == '40' else 1)"
expect_exit 0 "verify the signed pre-command (DF, signature only)" \
    smki gbcs verify --trust "$KEYSTORE" --at "$AT" "$W/signed.hex"
expect_in "1 passed, 0 failed" "one passed"
expect_in "signature (90B3D51F30010000 -> 00DB1234567890A0" "the line names signer and target"

# openssl, independently: SHA-256/ECDSA over the signed region, r||s as DER.
expect_exit 0 "inspect --json of the signed pre-command" smki --json gbcs inspect "$W/signed.hex"
printf '%s' "$OUT" >"$W/signed.json"
"$PY" - "$W/signed.json" "$W/signed.hex" "$W" <<'PY'
import json, sys
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
m = json.load(open(sys.argv[1]))['messages'][0]['signing']
data = bytes.fromhex(open(sys.argv[2]).read().strip())
region = data[m['signed_offset']:m['signed_offset'] + m['signed_octets']]
sig = bytes.fromhex(m['signature'])
open(sys.argv[3] + '/region.bin', 'wb').write(region)
open(sys.argv[3] + '/sig.der', 'wb').write(
    encode_dss_signature(int.from_bytes(sig[:32], 'big'), int.from_bytes(sig[32:], 'big')))
PY
openssl x509 -in "$SUP_CERT" -pubkey -noout >"$W/sup-pub.pem"
check "openssl verifies smki's signature over the signed region" \
    openssl dgst -sha256 -verify "$W/sup-pub.pem" -signature "$W/sig.der" "$W/region.bin"
check "the signed region is the pre-command after DF" "$PY" -c "
import sys
pre = bytes.fromhex(open('$PRE').read().strip()); r = open('$W/region.bin', 'rb').read()
sys.exit(0 if r == pre[1:] else 1)"
printf 'x' >>"$W/region.bin"
check_fails "openssl refuses the signature over a changed region" \
    openssl dgst -sha256 -verify "$W/sup-pub.pem" -signature "$W/sig.der" "$W/region.bin"

expect_exit 0 "sign --binary" smki gbcs sign --key "$SUP_KEY" --cert "$SUP_CERT" --in "$PRE" --out "$W/signed.bin" --binary
check "--binary writes binary starting DF" "$PY" -c "import sys; sys.exit(0 if open('$W/signed.bin','rb').read()[:1] == b'\xdf' else 1)"
expect_exit 0 "verify the binary signed pre-command" smki gbcs verify --trust "$KEYSTORE" --at "$AT" "$W/signed.bin"
expect_exit 0 "sign --json" smki --json gbcs sign --key "$SUP_KEY" --cert "$SUP_CERT" --in "$PRE" --out "$W/signed2.hex"
expect_json "sign --json names originator, code and counter" \
    "d['ok'] and d['originator'] == '90B3D51F30010000' and d['message_code'] == '0019' and d['format'] == 'hex'"

# ---- sign refusals: exit 2, the field, expected and found; nothing written ------------------
refuse() { # refuse DESC NEEDLE ARGS...
    local desc=$1 needle=$2
    shift 2
    rm -f "$W/refused.hex"
    expect_exit 2 "$desc" smki gbcs sign --in "$PRE" --out "$W/refused.hex" "$@"
    expect_in "$needle" "$desc: message says '$needle'"
    check "$desc: nothing written" test ! -e "$W/refused.hex"
}
refuse "sign with another organisation's certificate" \
    "the certificate is 90B3D51F30020000's, the pre-command's originator is 90B3D51F30010000" \
    --key "file:$KEYSTORE/90b3d51f30020000-ds.key" --cert "$KEYSTORE/90b3d51f30020000-ds.pem"
refuse "sign with the supplier's KA certificate" "not a digital-signature certificate" \
    --key "$SUP_KEY" --cert "$KEYSTORE/90b3d51f30010000-ka.pem"
refuse "sign with a device certificate" "not an organisation certificate" \
    --key "$SUP_KEY" --cert "$KEYSTORE/00db1234567890a0-ds.pem"
refuse "sign with a key that is not the certificate's" "is not the key of the signing certificate" \
    --key "file:$KEYSTORE/90b3d51f30020000-ds.key" --cert "$SUP_CERT"
refuse "sign with --expect-code 0020" "message code: expected 0020, found 0019" \
    --key "$SUP_KEY" --cert "$SUP_CERT" --expect-code 0020
refuse "sign with --expect-target of another device" "target (recipient): expected 00DB1234567890A1, found 00DB1234567890A0" \
    --key "$SUP_KEY" --cert "$SUP_CERT" --expect-target 00DB1234567890A1
refuse "sign with a counter window that excludes the counter" "originator counter: expected 1-2, found" \
    --key "$SUP_KEY" --cert "$SUP_CERT" --expect-counter 1-2
rm -f "$W/refused.hex"
expect_exit 2 "sign an already signed APDU" smki gbcs sign --key "$SUP_KEY" --cert "$SUP_CERT" --in "$W/signed.hex" --out "$W/refused.hex"
expect_in "already carries a signature" "the refusal says it is signed"
expect_exit 2 "sign a command (DD)" smki gbcs sign --key "$SUP_KEY" --cert "$SUP_CERT" --in "$CMD" --out "$W/refused.hex"
expect_in "only a general-signing APDU" "the refusal says only DF is signed"
expect_exit 1 "sign with a malformed counter window" smki gbcs sign --key "$SUP_KEY" --cert "$SUP_CERT" --in "$PRE" --out "$W/refused.hex" --expect-counter 5
expect_exit 1 "sign with a malformed --expect-code" smki gbcs sign --key "$SUP_KEY" --cert "$SUP_CERT" --in "$PRE" --out "$W/refused.hex" --expect-code 12345
expect_exit 1 "sign with a malformed --expect-target" smki gbcs sign --key "$SUP_KEY" --cert "$SUP_CERT" --in "$PRE" --out "$W/refused.hex" --expect-target 00DB
expect_exit 1 "sign without --cert" smki gbcs sign --key "$SUP_KEY" --in "$PRE" --out "$W/refused.hex"
expect_exit 1 "sign --json without --cert" smki --json gbcs sign --key "$SUP_KEY" --in "$PRE" --out "$W/refused.hex"
expect_json "a usage error in --json" "not d['ok'] and d['error']['code'] == 'usage' and d['error']['exit'] == 1"
check "no refused output was written" test ! -e "$W/refused.hex"

# ---- verify the RTDS commands ----------------------------------------------------------------
expect_exit 0 "verify the ${#VERIFIABLE[@]} RTDS commands with published keys" \
    smki gbcs verify --trust "$KEYSTORE" --acb-key "$ACB_KA" --at "$AT" "${VERIFIABLE[@]}"
expect_in "${#VERIFIABLE[@]} passed, 0 failed" "all of them pass"
expect_in "signature and MAC (90B3D51F30010000 -> 00DB1234567890A0" "a critical command: signature and MAC"
expect_in "ok   $RTDS/11.2_CS08/CS08_11.2_SUCCESS_COMMAND_GBCS.HEX: command, MAC (" "a non-critical command: MAC only"
expect_in "CS02aSignature_NA_ERROR_COMMAND_GBCS.HEX: command, signature (" "the DF-only command: signature only"
expect_exit 0 "verify all ${#COMMANDS[@]} RTDS commands: PCS01 is device-to-device, not a failure" \
    smki gbcs verify --trust "$KEYSTORE" --acb-key "$ACB_KA" --at "$AT" "${COMMANDS[@]}"
expect_in "${#COMMANDS[@]} passed, 0 failed ($((${#COMMANDS[@]} - 1)) verified, 1 device-to-device" "45 verify and PCS01 is reported"
expect_in "d2d  $PCS01: command, device-to-device MAC (00DB1234567890A4 -> 00DB1234567890A1" "PCS01's line says what it is"
expect_exit 0 "verify --json of every command" smki --json gbcs verify --trust "$KEYSTORE" --acb-key "$ACB_KA" --at "$AT" "${COMMANDS[@]}"
expect_json "verify --json counts and flags" \
    "d['ok'] and d['passed'] == ${#COMMANDS[@]} and d['verified'] == ${#COMMANDS[@]} - 1 and d['device_to_device'] == 1 and \
     sum(1 for r in d['results'] if r.get('mac')) == 44 and sum(1 for r in d['results'] if r.get('signature')) == 28"

expect_exit 2 "verify at 2030: the supplier's certificate expired" \
    smki gbcs verify --trust "$KEYSTORE" --acb-key "$ACB_KA" --at 2030-01-01T00:00:00Z "$CMD"
expect_in "is not valid at 2030-01-01T00:00:00Z" "the expiry is named"
expect_exit 2 "verify a wrapped command without --acb-key" smki gbcs verify --trust "$KEYSTORE" --at "$AT" "$CMD"
expect_in "needs --acb-key" "the missing key is named"
expect_exit 2 "verify with the wrong ACB key" \
    smki gbcs verify --trust "$KEYSTORE" --acb-key "file:$KEYSTORE/90b3d51f30010000-ka.key" --at "$AT" "$CMD"
expect_in "MAC does not verify" "the MAC is named"
expect_exit 0 "verify a response to the ACB with --acb-key (it is the recipient's KA key)" \
    smki gbcs verify --trust "$KEYSTORE" --acb-key "$ACB_KA" --at "$AT" "$RTDS/11.2_CS08/CS08_11.2_SUCCESS_RESPONSE_GBCS.HEX"
expect_in "response, MAC (00DB1234567890A4 -> 90B3D51F30000002" "the response's line says MAC"
expect_exit 1 "verify with a malformed --at" smki gbcs verify --trust "$KEYSTORE" --at "2020-01-01 00:00" "$CMD"
expect_exit 1 "verify without --trust" smki gbcs verify "$CMD"
expect_exit 2 "verify with a missing trust folder" smki gbcs verify --trust "$W/none" "$CMD"

# Tampering, a few through the CLI (every octet of every command: tests/unit/test_gbcs.c).
for spec in 20 40 100 200 -1 -20; do
    "$PY" - "$CMD" "$W/tampered.hex" "$spec" <<'PY'
import sys
b = bytearray.fromhex(open(sys.argv[1]).read().strip())
i = int(sys.argv[3]); b[i] ^= 0x01
open(sys.argv[2], 'w').write(b.hex().upper())
PY
    expect_exit 2 "verify refuses the command with octet $spec changed" \
        smki gbcs verify --trust "$KEYSTORE" --acb-key "$ACB_KA" --at "$AT" "$W/tampered.hex"
    expect_in "0 passed, 1 failed" "octet $spec: counted as failed"
done

# Certificates found by their EUI-64 whatever the file name (PEM and DER).
mkdir -p "$W/trust"
cp "$SUP_CERT" "$W/trust/supplier-signing.crt"
openssl x509 -in "$KEYSTORE/00db1234567890a0-ka.pem" -outform DER -out "$W/trust/meter.der"
cp "$KEYSTORE/90b3d51f30010000-ds.key" "$W/trust/not-a-cert.pem"
expect_exit 0 "verify with renamed certificates" smki gbcs verify --trust "$W/trust" --acb-key "$ACB_KA" --at "$AT" "$CMD"
expect_in "1 passed, 0 failed" "found by EUI-64"

# ---- SoftHSM: the ACB key as a pkcs11: URI, and signing with a token key --------------------
SMKI_SO_PIN=$SO_PIN SMKI_PIN=$PIN expect_exit 0 "hsm init" smki hsm init
export SOFTHSM2_CONF=$SMKI_HOME/hsm/softhsm2.conf
if command -v pkcs11-tool >/dev/null 2>&1; then
    openssl pkey -in "$KEYSTORE/90b3d51f30000002-ka.key" -outform DER -out "$W/acb.der"
    openssl pkey -in "$KEYSTORE/90b3d51f30000002-ka.key" -pubout -outform DER -out "$W/acb-pub.der"
    check "import the ACB KA key into the token" pkcs11-tool --module "$SOFTHSM" --login --pin "$PIN" \
        --token-label smki --write-object "$W/acb.der" --type privkey --usage-derive --label acb-ka --id a1
    check "import its public key" pkcs11-tool --module "$SOFTHSM" --login --pin "$PIN" \
        --token-label smki --write-object "$W/acb-pub.der" --type pubkey --label acb-ka --id a1
    SMKI_PIN=$PIN expect_exit 0 "verify with the ACB key as a pkcs11: URI" \
        smki gbcs verify --trust "$KEYSTORE" --acb-key "pkcs11:token=smki;object=acb-ka" --at "$AT" "${VERIFIABLE[@]}"
    expect_in "${#VERIFIABLE[@]} passed, 0 failed" "all pass with the token's ACB key"
else
    not_ok "pkcs11-tool present (apt-get install opensc)"
fi

SMKI_PIN=$PIN expect_exit 0 "key generate a DS key in the token" smki key generate --label gbcs-ds --usage ds
expect_exit 0 "key pub" smki key pub gbcs-ds --out "$W/token-pub.pem"
# An organisation certificate for the token key: the supplier's subject (x500UniqueIdentifier
# 90B3D51F30010000, OU=02), keyUsage and policy, issued by a throwaway CA (sign does not check
# chains; verify checks validity at --at).
"$PY" - "$SUP_CERT" "$W/token-pub.pem" "$W/trust-token/token-supplier.pem" <<'PY'
import datetime, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
orig = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
pub = serialization.load_pem_public_key(open(sys.argv[2], 'rb').read())
ca = ec.generate_private_key(ec.SECP256R1())
start = datetime.datetime(2019, 1, 1)
b = (x509.CertificateBuilder().subject_name(orig.subject).issuer_name(orig.issuer).public_key(pub)
     .serial_number(x509.random_serial_number()).not_valid_before(start)
     .not_valid_after(start + datetime.timedelta(days=3650)))
for e in orig.extensions:
    if e.oid.dotted_string in ('2.5.29.15', '2.5.29.32'):
        b = b.add_extension(e.value, e.critical)
os.makedirs(os.path.dirname(sys.argv[3]), exist_ok=True)
open(sys.argv[3], 'wb').write(b.sign(ca, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
PY
SMKI_PIN=$PIN expect_exit 0 "sign the pre-command with the token key" \
    smki gbcs sign --key gbcs-ds --cert "$W/trust-token/token-supplier.pem" --in "$PRE" --out "$W/token-signed.hex"
expect_exit 0 "verify the token-signed pre-command against the token key's certificate" \
    smki gbcs verify --trust "$W/trust-token" --at "$AT" "$W/token-signed.hex"
expect_exit 2 "the token-signed pre-command does not verify against the keystore's supplier certificate" \
    smki gbcs verify --trust "$KEYSTORE" --at "$AT" "$W/token-signed.hex"
SMKI_PIN=$PIN expect_exit 2 "the token key refuses to sign with the keystore's supplier certificate" \
    smki gbcs sign --key gbcs-ds --cert "$SUP_CERT" --in "$PRE" --out "$W/token-refused.hex"
expect_in "is not the key of the signing certificate" "the key mismatch is named"

finish
