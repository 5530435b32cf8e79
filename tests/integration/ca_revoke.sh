#!/usr/bin/env bash
# Revocation from the outside: `smki ca revoke`, `smki ca crl`, `smki ca arl` on a test
# hierarchy (keys in a SoftHSM token), the lists checked by independent tools:
# openssl verify -crl_check rejects a revoked organisation certificate and accepts an
# unrevoked one, openssl crl -verify checks each list's signature, -crl_check_all with
# the root's ARL rejects a chain through a revoked CA, and Debian's python3-cryptography
# parses every list and verifies its signature. Every refusal (unknown serial, already
# revoked, device certificate, root, unknown reason) says why and writes nothing.
# Every check prints "ok - ..." or "not ok - ..."; the last line is "N passed, M failed".
#
# Environment (ctest sets it; by hand:
#   SMKI_BIN=/tmp/b/bin/smki SMKI_SHARED=/work/shared bash tests/integration/ca_revoke.sh)
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3 # Debian's: the python3 on PATH may lack cryptography
REAL_CSR=$SMKI_SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der
TIMEOUT=120

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF SMKI_SHIM_FAIL SMKI_OPERATOR SMKI_OPERATOR_KEY
export SMKI_PIN=ca-user-1234 SMKI_SO_PIN=ca-so-12345678

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-ca-revoke.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
export SMKI_HOME=$ROOT/home
W=$ROOT/work
mkdir -p "$W" "$SMKI_HOME"
CA=$SMKI_HOME/ca/test

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

json_field() { # field: from the last command's JSON stdout
    printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
revoked_count() {
    "$SMKI_BIN" --json ca list --status revoked | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])'
}
status_of() { # serial
    "$SMKI_BIN" --json ca show "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["certificates"][0]["status"])'
}
ca_serial() { # profile name of a CA
    "$SMKI_BIN" --json ca list --profile "$1" --env test |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["certificates"][0]["serial"])'
}
newcsr() { # name ku [subject]
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/$1.key" 2>/dev/null
    openssl req -new -key "$W/$1.key" -subj "${3:-/CN=x}" -addext "keyUsage=critical,$2" -out "$W/$1.csr" 2>/dev/null
}
# A list's facts as python3-cryptography reads them, its signature checked with the CA key.
py_crl() { # crl.der ca.pem
    "$PY" - "$1" "$2" <<'PY'
import sys
from cryptography import x509
crl = x509.load_der_x509_crl(open(sys.argv[1], "rb").read())
ca = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
assert crl.is_signature_valid(ca.public_key()), "signature"
assert crl.issuer == ca.subject, "issuer"
aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
assert aki.key_identifier == ski.digest, "AKI"
num = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
hours = (crl.next_update - crl.last_update).total_seconds() / 3600
entries = []
for r in crl:
    try:
        reason = r.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
    except x509.ExtensionNotFound:
        reason = "none"
    entries.append(f"{r.serial_number:032x}:{reason}")
print(f"number={num} hours={int(hours)} entries={','.join(sorted(entries))}")
PY
}

check "smki binary is executable: $SMKI_BIN" test -x "$SMKI_BIN"
check "$PY imports cryptography (python3-cryptography)" "$PY" -c 'import cryptography'
for sub in revoke crl arl; do
    expect_exit 0 "smki ca $sub --help" smki ca $sub --help
    expect_in "Usage: smki ca $sub" "smki ca $sub --help shows its usage"
done
expect_exit 0 "smki ca --help" smki ca --help
expect_in "revoke" "smki ca --help lists revoke"

# ---- A hierarchy and certificates to revoke ----------------------------------------------------------
expect_exit 0 "ca init --env test" smki ca init --env test
ra_test_participant "$SMKI_HOME"
ra_dccki_party "$SMKI_HOME" PARTY0001
newcsr org1 digitalSignature
newcsr org2 keyAgreement
newcsr tls digitalSignature
expect_exit 0 "issue organisation 1" smki --json ca issue --env test --csr "$W/org1.csr" --role 02 \
    --eui 90B3D51F30010000 --party GITTEST --out "$W/org1.pem"
ORG1=$(json_field serial)
expect_exit 0 "issue organisation 2" smki --json ca issue --env test --csr "$W/org2.csr" --role 02 \
    --eui 90B3D51F30010000 --party GITTEST --out "$W/org2.pem"
ORG2=$(json_field serial)
expect_exit 0 "issue a device certificate" smki --json ca issue --env test --csr "$REAL_CSR" --party GITTEST --out "$W/device.pem"
DEVICE=$(json_field serial)
expect_exit 0 "issue a DCCKI client certificate" smki --json ca issue --env test --profile dccki-client \
    --csr "$W/tls.csr" --party PARTY0001 --out "$W/tls.pem"
TLS=$(json_field serial)
ROOT_SERIAL=$(ca_serial smki-root)
OCA_SERIAL=$(ca_serial smki-oca)
cat "$CA/smki-root.pem" "$CA/smki-oca.pem" >"$W/smki-chain.pem"
cat "$CA/dccki-root.pem" "$CA/dccki-ica.pem" >"$W/dccki-chain.pem"

# ---- Refusals: each says why, nothing written -----------------------------------------------------------
refused() { # code desc needle args...
    local code=$1 desc=$2 needle=$3
    shift 3
    expect_exit "$code" "$desc" smki ca revoke --env "${REVOKE_ENV:-test}" "$@"
    expect_in "$needle" "$desc: the message says '$needle'"
    check "$desc: nothing revoked" test "$(revoked_count)" = 0
}
refused 2 "an unknown serial" "no certificate of serial" 00112233445566778899aabbccddeeff --reason superseded
refused 1 "a serial that is not one" "32 hex digits" 12zz --reason superseded
refused 1 "an unknown reason" "is not a revocation reason" "$ORG1" --reason boredom
refused 1 "certificateHold (a revocation is final)" "certificateHold" "$ORG1" --reason certificateHold
refused 1 "removeFromCRL" "removeFromCRL" "$ORG1" --reason 8
refused 2 "a device certificate" "replaced, not revoked" "$DEVICE" --reason keyCompromise
refused 2 "the SMKI root" "not revoked" "$ROOT_SERIAL" --reason keyCompromise
REVOKE_ENV=production refused 2 "a serial of another environment" "no certificate of serial" "$ORG1" \
    --reason superseded
refused 1 "an unknown --issuer" "is not a CA" "$ORG1" --issuer nosuch --reason superseded
refused 2 "the right serial under another issuer" "from that issuer" "$ORG1" --issuer smki-dca \
    --reason superseded
expect_exit 2 "--json: a refusal is a JSON error" smki --json ca revoke --env test "$DEVICE" --reason 1
expect_json "ok false, naming why" 'd["ok"] is False and "replaced, not revoked" in json.dumps(d)'
check "and nothing revoked by it" test "$(revoked_count)" = 0
expect_exit 1 "revoke without --reason is a usage error" smki ca revoke --env test "$ORG1"
expect_exit 1 "revoke without a SERIAL is a usage error" smki ca revoke --env test --reason superseded
expect_in "missing argument: it takes one SERIAL" "the refusal names the SERIAL"
expect_exit 1 "the serial is positional: --serial is no option" smki ca revoke --env test --serial "$ORG1" \
    --reason superseded
expect_in "unknown option --serial" "the refusal names it"
check "organisation 1 is still in use" test "$(status_of "$ORG1")" = in-use
check "the device certificate is still in use" test "$(status_of "$DEVICE")" = in-use

# ---- Revoking an organisation certificate ----------------------------------------------------------------
expect_exit 0 "revoke organisation 1 (key-compromise)" smki --json ca revoke --env test "$ORG1" \
    --issuer oca --reason key-compromise
expect_json "revoked, reason keyCompromise (1), on the CRL" \
    'd["status"] == "revoked" and d["reason"] == "keyCompromise" and d["reason_code"] == 1 and d["list"] == "CRL"'
check "ca show: organisation 1 is revoked" test "$(status_of "$ORG1")" = revoked
check "ca show: organisation 2 is still in use" test "$(status_of "$ORG2")" = in-use
expect_exit 0 "ca list --status revoked" smki --json ca list --status revoked
expect_json "lists exactly organisation 1" "d['count'] == 1 and d['certificates'][0]['serial'] == '$ORG1'"
expect_json "with its reason and time" "d['certificates'][0]['reason'] == 'keyCompromise' and 'revoked_at' in d['certificates'][0]"
expect_exit 0 "ca show of the revoked certificate" smki ca show "$ORG1"
expect_in "revoked     " "ca show says when it was revoked"
expect_in "(keyCompromise)" "and why"
expect_exit 0 "ca list --status in-use" smki --json ca list --status in-use --profile organisation
expect_json "lists only organisation 2 among organisation certificates" \
    "d['count'] == 1 and d['certificates'][0]['serial'] == '$ORG2'"
expect_exit 2 "revoking it again is refused" smki ca revoke --env test "$ORG1" --reason superseded
expect_in "already revoked" "the refusal says it is already revoked"
expect_in "keyCompromise" "and names the first reason"
check "still one revoked" test "$(revoked_count)" = 1

# ---- The CRL ---------------------------------------------------------------------------------------------------
expect_exit 1 "ca crl without --env" smki ca crl
expect_exit 1 "ca crl --ca of a root is refused (that is an ARL)" smki ca crl --env test --ca smki-root
expect_exit 0 "ca crl --env test --ca oca" smki --json ca crl --env test --ca oca
expect_json "CRL 1 of smki-oca with one entry, next update in 7 days" \
    'd["crls"][0]["ca"] == "smki-oca" and d["crls"][0]["number"] == 1 and d["crls"][0]["entries"] == 1'
check "written to <home>/ca/test/smki-oca.crl" test -s "$CA/smki-oca.crl"
check "openssl crl -verify: the CRL's signature verifies with the OCA's key" \
    openssl crl -inform DER -in "$CA/smki-oca.crl" -CAfile "$W/smki-chain.pem" -noout -verify
run openssl crl -inform DER -in "$CA/smki-oca.crl" -noout -text
expect_in "Version 2" "openssl reads a v2 CRL"
expect_in "X509v3 CRL Number" "with a cRLNumber"
expect_in "X509v3 Authority Key Identifier" "and the authorityKeyIdentifier"
expect_in "Key Compromise" "and the entry's reason"
expect_in "${ORG1^^}" "listing organisation 1's serial"
run openssl verify -crl_check -CAfile "$W/smki-chain.pem" -CRLfile "$CA/smki-oca.crl" "$W/org1.pem"
if [[ $RC != 0 && "$OUT$ERR" == *"certificate revoked"* ]]; then
    ok "openssl verify -crl_check rejects the revoked organisation certificate: certificate revoked"
else
    not_ok "openssl verify -crl_check did not reject organisation 1 as revoked"
    diag
fi
check "openssl verify -crl_check accepts the unrevoked organisation certificate" \
    openssl verify -crl_check -CAfile "$W/smki-chain.pem" -CRLfile "$CA/smki-oca.crl" "$W/org2.pem"
run py_crl "$CA/smki-oca.crl" "$CA/smki-oca.pem"
expect_in "number=1 hours=168 entries=$ORG1:key_compromise" \
    "python3-cryptography: signature, issuer, AKI, number 1, 7 days, organisation 1 with keyCompromise"
cp "$CA/smki-oca.crl" "$W/crl-1.der"
expect_exit 0 "publish again" smki --json ca crl --env test --ca smki-oca
expect_json "the cRLNumber goes up to 2" 'd["crls"][0]["number"] == 2'
check "the file was replaced by the new list" test "$(cmp -s "$W/crl-1.der" "$CA/smki-oca.crl"; echo $?)" = 1
cat >"$W/crl.conf" <<'CONF'
[ca.test]
crl_hours = 24
arl_hours = 48
CONF
expect_exit 0 "ca crl with crl_hours = 24 from --config" smki ca crl --env test --ca oca --config "$W/crl.conf"
run py_crl "$CA/smki-oca.crl" "$CA/smki-oca.pem"
expect_in "number=3 hours=24 " "nextUpdate follows the configured interval"
printf '[ca.test]\ncrl_hours = 0\n' >"$W/bad.conf"
cp "$CA/smki-oca.crl" "$W/crl-3.der"
expect_exit 1 "crl_hours = 0 is refused" smki ca crl --env test --ca oca --config "$W/bad.conf"
expect_in "crl_hours" "naming the setting"
check "and nothing published by the refusal" cmp "$W/crl-3.der" "$CA/smki-oca.crl"
expect_exit 0 "ca crl (every issuing CA)" smki --json ca crl --env test
expect_json "smki-oca, smki-dca and dccki-ica" \
    '[c["ca"] for c in d["crls"]] == ["smki-oca", "smki-dca", "dccki-ica"] and d["crls"][1]["entries"] == 0'
run py_crl "$CA/smki-dca.crl" "$CA/smki-dca.pem"
expect_in "entries=" "an empty device CA CRL parses and verifies (no revokedCertificates)"

# ---- A DCCKI TLS certificate on the DCCKI issuing CA's CRL ----------------------------------------------------
expect_exit 0 "revoke the DCCKI client certificate (superseded)" smki ca revoke --env test "$TLS" \
    --reason superseded
expect_exit 0 "ca crl --ca dccki-ica" smki ca crl --env test --ca dccki-ica
run openssl verify -crl_check -CAfile "$W/dccki-chain.pem" -CRLfile "$CA/dccki-ica.crl" "$W/tls.pem"
if [[ $RC != 0 && "$OUT$ERR" == *"certificate revoked"* ]]; then
    ok "openssl verify -crl_check rejects the revoked DCCKI certificate"
else
    not_ok "the revoked DCCKI certificate was not rejected"
    diag
fi
run py_crl "$CA/dccki-ica.crl" "$CA/dccki-ica.pem"
expect_in "entries=$TLS:superseded" "python3-cryptography reads the DCCKI CRL's entry"

# ---- The ARL: a revoked organisation CA -------------------------------------------------------------------------
expect_exit 0 "ca arl --env test (both roots)" smki --json ca arl --env test
expect_json "smki-root and dccki-root, nothing revoked yet" \
    '[c["ca"] for c in d["arls"]] == ["smki-root", "dccki-root"] and all(c["entries"] == 0 for c in d["arls"])'
check "openssl crl -verify: the ARL's signature verifies with the root's key" \
    openssl crl -inform DER -in "$CA/smki-root.crl" -CAfile "$CA/smki-root.pem" -noout -verify
check "before: openssl -crl_check_all accepts organisation 2 through the OCA" \
    openssl verify -crl_check_all -CAfile "$W/smki-chain.pem" -CRLfile "$CA/smki-oca.crl" \
    -CRLfile "$CA/smki-root.crl" "$W/org2.pem"
expect_exit 0 "revoke the organisation CA (cACompromise)" smki --json ca revoke --env test "$OCA_SERIAL" \
    --reason cACompromise
expect_json "a CA certificate goes on the ARL" 'd["list"] == "ARL" and d["profile"] == "smki-oca"'
expect_exit 0 "ca arl --ca smki-root" smki --json ca arl --env test --ca smki-root --config "$W/crl.conf"
expect_json "ARL 2 of the root with one entry" 'd["arls"][0]["number"] == 2 and d["arls"][0]["entries"] == 1'
run py_crl "$CA/smki-root.crl" "$CA/smki-root.pem"
expect_in "number=2 hours=48 entries=$OCA_SERIAL:ca_compromise" "python3-cryptography: the ARL lists the OCA (48 h)"
run openssl verify -crl_check_all -CAfile "$W/smki-chain.pem" -CRLfile "$CA/smki-oca.crl" \
    -CRLfile "$CA/smki-root.crl" "$W/org2.pem"
if [[ $RC != 0 && "$OUT$ERR" == *"certificate revoked"* ]]; then
    ok "openssl -crl_check_all rejects an unrevoked certificate whose CA is on the ARL"
else
    not_ok "openssl -crl_check_all accepted a chain through a revoked CA"
    diag
fi
check_fails "openssl verify: the OCA itself is rejected against the ARL" \
    openssl verify -crl_check -CAfile "$CA/smki-root.pem" -CRLfile "$CA/smki-root.crl" "$CA/smki-oca.pem"
newcsr org3 digitalSignature
expect_exit 2 "a revoked CA issues nothing more" smki ca issue --env test --csr "$W/org3.csr" --role 02 \
    --eui 90B3D51F30010000 --party GITTEST --out "$W/org3.pem"
expect_in "revoked" "the refusal says the CA is revoked"
check "no certificate written by it" test ! -e "$W/org3.pem"
expect_exit 2 "the same device key again: refused, a second in-use certificate" \
    smki ca issue --env test --csr "$REAL_CSR" --party GITTEST --out "$W/device2.pem"
expect_in "already holds in-use certificate" "the refusal names the certificate it holds"
check "nothing written" test ! -e "$W/device2.pem"
expect_exit 0 "the device CA still issues (a second one asked for)" \
    smki ca issue --env test --csr "$REAL_CSR" --party GITTEST --out "$W/device2.pem" --allow-duplicate-key

finish
