#!/usr/bin/env bash
# The CA from the outside, checked by independent tools: a test hierarchy made by
# `smki ca init` (keys generated in a SoftHSM token), device and organisation
# certificates issued by `smki ca issue` from the real device CSR and from CSRs that
# openssl makes; every chain verified by openssl verify and GnuTLS certtool, every
# certificate parsed by Debian's python3-cryptography; a production hierarchy (OIDs
# configured here) in a second home, and neither trust store validating the other's
# certificates; every refusal leaving the store and --out untouched. Every check
# prints "ok - ..." or "not ok - ..."; the last line is "N passed, M failed".
#
# Environment (ctest sets it; by hand:
#   SMKI_BIN=/tmp/b/bin/smki SMKI_SHARED=/work/shared bash tests/integration/ca_interop.sh):
#   SMKI_BIN     the smki binary
#   SMKI_SHARED  the folder holding vectors/
# Needs openssl, certtool (gnutls-bin), SoftHSM 2, /usr/bin/python3 with
# python3-cryptography (tools/deps.sh installs them).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3 # Debian's: the python3 on PATH may lack cryptography
V=$SMKI_SHARED/vectors/gbcs
REAL_CSR=$V/csr/00db1234567890a0-ds.csr.der
RTDS_DEVICE=$V/keystore/00db1234567890a0-ds.pem
RTDS_ORG=$V/keystore/90b3d51f30010000-ds.pem
TIMEOUT=120

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF SMKI_SHIM_FAIL SMKI_OPERATOR SMKI_OPERATOR_KEY
export SMKI_PIN=ca-user-1234 SMKI_SO_PIN=ca-so-12345678

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-ca-interop.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
TEST_HOME=$ROOT/test-home
PROD_HOME=$ROOT/prod-home
W=$ROOT/work
mkdir -p "$W" "$TEST_HOME" "$PROD_HOME"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tsmki() { SMKI_HOME=$TEST_HOME smki "$@"; }
psmki() { SMKI_HOME=$PROD_HOME smki "$@"; }

# Certificates in the store of a home, from `smki ca list --json`.
count_certs() {
    SMKI_HOME=$1 "$SMKI_BIN" --json ca list | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])'
}

# openssl verify of leaf against root through one issuing CA.
ossl_verify() { # root ca leaf
    openssl verify -x509_strict -CAfile "$1" -untrusted "$2" "$3"
}
# certtool --verify-chain over a PEM bundle leaf + CA + root: "Verified" for the chain.
gnutls_chain() { # leaf ca root
    cat "$1" "$2" "$3" >"$W/bundle.pem"
    certtool --verify-chain --infile "$W/bundle.pem" >"$W/certtool.out" 2>&1 || return 1
    grep -q "Chain verification output: Verified" "$W/certtool.out"
}
py_parses() { # files...: every extension decoded, subject and serial read
    "$PY" - "$@" <<'PY'
import sys
from cryptography import x509
for f in sys.argv[1:]:
    data = open(f, "rb").read()
    c = x509.load_pem_x509_certificate(data) if data.startswith(b"-----") else x509.load_der_x509_certificate(data)
    assert c.version == x509.Version.v3, f
    assert 0 < c.serial_number < 2**127, f
    for e in c.extensions:
        _ = e.value
    _ = c.subject.rfc4514_string(), c.issuer.rfc4514_string(), c.public_key()
PY
}
# "oid:critical" per extension, in order.
ext_shape() {
    "$PY" - "$1" <<'PY'
import sys
from cryptography import x509
data = open(sys.argv[1], "rb").read()
c = x509.load_pem_x509_certificate(data)
print(" ".join(f"{e.oid.dotted_string}:{int(e.critical)}" for e in c.extensions))
PY
}

# ---- Tools ----------------------------------------------------------------------------------
check "smki binary is executable: $SMKI_BIN" test -x "$SMKI_BIN"
check "openssl is there" command -v openssl
check "certtool is there (gnutls-bin)" command -v certtool
check "$PY imports cryptography (python3-cryptography)" "$PY" -c 'import cryptography'

# ---- Help at every level ----------------------------------------------------------------------
expect_exit 0 "smki ca --help" smki ca --help
expect_in "init" "smki ca --help lists init"
for sub in init issue list show; do
    expect_exit 0 "smki ca $sub --help" smki ca $sub --help
    expect_in "Usage: smki ca $sub" "smki ca $sub --help shows its usage"
done
expect_exit 1 "smki ca init without --env is a usage error" tsmki ca init
expect_in "--env is required" "and says what is missing"

# ---- Before init: refused, nothing created ------------------------------------------------------
expect_exit 2 "ca issue before ca init is refused" \
    tsmki ca issue --env test --csr "$REAL_CSR" --out "$W/early.pem"
expect_in "run 'smki ca init --env test' first" "the refusal says what to do"
check "no certificate file after it" test ! -e "$W/early.pem"
check "no store made by it" test ! -e "$TEST_HOME/store/data.mdb"

# ---- The test hierarchy -------------------------------------------------------------------------
expect_exit 0 "ca init --env test (token created, keys generated in it)" tsmki ca init --env test
expect_in "5 CA(s) created" "five CAs made"
TCA=$TEST_HOME/ca/test
for f in smki-root smki-oca smki-dca dccki-root dccki-ica; do
    check "$f.pem written" test -s "$TCA/$f.pem"
done
mkdir -p "$W/before"
cp "$TCA"/*.pem "$W/before/"
expect_exit 0 "ca init --env test again" tsmki --json ca init --env test
expect_json "the second run creates nothing and reports every CA as existing" \
    'd["created"] == 0 and len(d["cas"]) == 5 and all(c["state"] == "exists" for c in d["cas"])'
for f in smki-root smki-oca smki-dca dccki-root dccki-ica; do
    check "$f.pem is byte for byte the same after the second run" cmp "$W/before/$f.pem" "$TCA/$f.pem"
done
expect_exit 0 "the hierarchy lints clean" tsmki lint --env test "$TCA"/*.pem
expect_in "5 clean, 0 with violations" "all five clean"
check "openssl: smki-oca chains to smki-root" openssl verify -x509_strict -CAfile "$TCA/smki-root.pem" "$TCA/smki-oca.pem"
check "openssl: smki-dca chains to smki-root" openssl verify -x509_strict -CAfile "$TCA/smki-root.pem" "$TCA/smki-dca.pem"
check "openssl: dccki-ica chains to dccki-root" openssl verify -x509_strict -CAfile "$TCA/dccki-root.pem" "$TCA/dccki-ica.pem"
check "the roots are in the test trust store" test -s "$TEST_HOME/trust/test/smki-root.pem"

# ---- The RA's gate: test certificates only to a registered Testing Participant ----------------------
# The operator who issues here, the party GITTEST (a Testing Participant, agreement on
# file) with the supplier's User ID, authorised for supplier and device certificates.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/op.pem" 2>/dev/null
openssl pkey -in "$W/op.pem" -pubout -out "$W/op.pub" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ckpt.pem" 2>/dev/null
printf '[audit]\ncheckpoint_key = file:%s\n' "$W/ckpt.pem" >"$TEST_HOME/smki.conf"
export SMKI_OPERATOR=interop SMKI_OPERATOR_KEY=file:$W/op.pem
expect_exit 2 "ca issue --env test without --party is refused" \
    tsmki ca issue --env test --csr "$REAL_CSR" --out "$W/ungated.pem"
expect_in "Testing Participants with their agreement signed" "the refusal says who may have test certificates"
check "no certificate file after it" test ! -e "$W/ungated.pem"
expect_exit 0 "ra operator add (bootstrap)" tsmki ra operator add interop --pub "$W/op.pub"
expect_exit 0 "ra party add GITTEST (a Testing Participant, agreement not yet signed)" \
    tsmki ra party add GITTEST --testing-participant
expect_exit 0 "ra range assign" tsmki ra range assign 90B3D51F3/36 --party GITTEST --kind central
expect_exit 0 "ra id allocate the supplier's ID" \
    tsmki ra id allocate --party GITTEST --roles EIS --eui 90-B3-D5-1F-30-01-00-00
expect_exit 0 "ra subscriber authorise: supplier" \
    tsmki ra subscriber authorise --party GITTEST --type organisation --role supplier --env test
expect_exit 0 "ra subscriber authorise: devices" tsmki ra subscriber authorise --party GITTEST --type device --env test
expect_exit 2 "ca issue to a Testing Participant without its signed agreement is refused" \
    tsmki ca issue --env test --csr "$REAL_CSR" --party GITTEST --out "$W/ungated.pem"
expect_in "without its signed agreement" "the refusal names the agreement"
expect_exit 0 "ra party set GITTEST --agreement-signed yes" tsmki ra party set GITTEST --agreement-signed yes

# ---- Device certificate from the real CSR ------------------------------------------------------
expect_exit 0 "ca issue: the real device CSR (CS02c)" \
    tsmki --json ca issue --env test --csr "$REAL_CSR" --eui 00-DB-12-34-56-78-90-A0 --party GITTEST --out "$W/device.pem"
expect_json "device, DS, its EUI-64, a 16-octet serial" \
    'd["profile"] == "device" and d["usage"] == "DS" and d["eui64"] == "00-DB-12-34-56-78-90-A0" and len(d["serial"]) == 32'
DEVICE_SERIAL=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["serial"])')
expect_exit 0 "the device certificate lints clean" tsmki lint --env test "$W/device.pem"
expect_in "clean (device DS 00-DB-12-34-56-78-90-A0)" "as a device DS certificate of the real Device ID"
check "its extensions, criticality and order are the RTDS certificate's" \
    test "$(ext_shape "$W/device.pem")" = "$(ext_shape "$RTDS_DEVICE")"
check "its SAN and SKI are the RTDS certificate's octet for octet" "$PY" - "$W/device.pem" "$RTDS_DEVICE" <<'PY'
import sys
from cryptography import x509
a, b = (x509.load_pem_x509_certificate(open(f, "rb").read()) for f in sys.argv[1:])
for oid in (x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER):
    assert a.extensions.get_extension_for_oid(oid).value.public_bytes() == \
        b.extensions.get_extension_for_oid(oid).value.public_bytes(), oid
PY
check "openssl verify: device -> smki-dca -> smki-root" ossl_verify "$TCA/smki-root.pem" "$TCA/smki-dca.pem" "$W/device.pem"
check "certtool --verify-chain: device, smki-dca, smki-root" gnutls_chain "$W/device.pem" "$TCA/smki-dca.pem" "$TCA/smki-root.pem"
check_fails "openssl verify: the device does not chain through the organisation CA" \
    ossl_verify "$TCA/smki-root.pem" "$TCA/smki-oca.pem" "$W/device.pem"

# ---- Organisation certificates (role 02, 90-B3-D5-1F-30-01-00-00) -----------------------------------
for u in ds ka; do
    ku=digitalSignature
    [[ $u == ka ]] && ku=keyAgreement
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/org-$u.key" 2>/dev/null
    openssl req -new -key "$W/org-$u.key" -subj "/CN=ignored/O=Not Copied" -addext "keyUsage=critical,$ku" \
        -out "$W/org-$u.csr" 2>/dev/null
    expect_exit 0 "ca issue: organisation ${u^^} (supplier)" \
        tsmki --json ca issue --env test --csr "$W/org-$u.csr" --role 02 --eui 90-B3-D5-1F-30-01-00-00 \
        --cn GITTESTSUPPLIER --party GITTEST --out "$W/org-$u.pem"
    expect_json "organisation ${u^^}, role 02, the EUI-64" \
        "d['profile'] == 'organisation' and d['usage'] == '${u^^}' and d['role'] == '02' and d['eui64'] == '90-B3-D5-1F-30-01-00-00'"
    expect_exit 0 "organisation ${u^^} lints clean" tsmki lint --env test "$W/org-$u.pem"
    check "organisation ${u^^}: the subject is encoded like the keystore's" test \
        "$(openssl x509 -in "$W/org-$u.pem" -noout -subject -nameopt RFC2253,dump_all)" = \
        "$(openssl x509 -in "$RTDS_ORG" -noout -subject -nameopt RFC2253,dump_all)"
    check "organisation ${u^^}: extensions in the keystore's order and criticality" \
        test "$(ext_shape "$W/org-$u.pem")" = "$(ext_shape "$RTDS_ORG")"
    check "openssl verify: organisation ${u^^} -> smki-oca -> smki-root" \
        ossl_verify "$TCA/smki-root.pem" "$TCA/smki-oca.pem" "$W/org-$u.pem"
    check "certtool --verify-chain: organisation ${u^^}" \
        gnutls_chain "$W/org-$u.pem" "$TCA/smki-oca.pem" "$TCA/smki-root.pem"
done
check "python3-cryptography parses every test certificate" py_parses "$TCA"/*.pem "$W/device.pem" "$W"/org-*.pem

# ---- The store ---------------------------------------------------------------------------------
expect_exit 0 "ca list --json" tsmki --json ca list
expect_json "5 CAs and 3 leaves" 'd["count"] == 8'
expect_exit 0 "ca list --eui" tsmki --json ca list --eui 90B3D51F30010000
expect_json "two for the supplier's EUI-64" 'd["count"] == 2'
expect_exit 0 "ca list --role --usage" tsmki --json ca list --role supplier --usage ka
expect_json "one supplier KA" 'd["count"] == 1 and d["certificates"][0]["usage"] == "KA"'
expect_exit 0 "ca list --usage ca" tsmki --json ca list --usage ca --env test
expect_json "the five CAs" 'd["count"] == 5'
expect_exit 0 "ca list --status revoked" tsmki --json ca list --status R
expect_json "none revoked" 'd["count"] == 0'
expect_exit 0 "ca show SERIAL --out" tsmki ca show "$DEVICE_SERIAL" --out "$W/shown.pem"
expect_in "profile     device" "ca show describes it"
check "ca show writes the same certificate" cmp "$W/shown.pem" "$W/device.pem"
printf 'not a certificate\n' >"$W/shown.pem"
expect_exit 2 "ca show --out of a file that exists is refused without --force" \
    tsmki ca show "$DEVICE_SERIAL" --out "$W/shown.pem"
expect_in "$W/shown.pem exists; --force replaces it" "the refusal says what to do"
check "and the file is left as it was" test "$(cat "$W/shown.pem")" = "not a certificate"
expect_exit 0 "ca show --out --force replaces it" tsmki ca show "$DEVICE_SERIAL" --out "$W/shown.pem" --force
check "with the certificate" cmp "$W/shown.pem" "$W/device.pem"
expect_exit 0 "ca show --out -: the PEM to standard output" tsmki ca show "$DEVICE_SERIAL" --out -
check "standard output is exactly the certificate's PEM" test "$OUT" = "$(cat "$W/device.pem")"
check "no file named '-' was written" test ! -e ./-
expect_exit 1 "ca show --out - with --json is refused" tsmki --json ca show "$DEVICE_SERIAL" --out -
expect_exit 1 "ca show with two serials is a usage error" tsmki ca show "$DEVICE_SERIAL" "$DEVICE_SERIAL"
expect_in "unexpected argument" "the refusal names the extra argument"
expect_exit 0 "ca show --json: a device certificate never expires: not_after 9999-12-31T23:59:59Z" \
    tsmki --json ca show "$DEVICE_SERIAL"
expect_json "RFC 5280's 99991231235959Z, RFC 3339" 'd["certificates"][0]["not_after"] == "9999-12-31T23:59:59Z"'
expect_exit 0 "ca show: for a human it is 'never'" tsmki ca show "$DEVICE_SERIAL"
expect_in " to never" "the validity ends 'never'"
expect_exit 2 "ca show of an unknown serial" tsmki ca show 00112233445566778899aabbccddeeff
expect_exit 1 "ca show of something that is not a serial" tsmki ca show xyz

# ---- Refusals: nothing written ------------------------------------------------------------------
COUNT=$(count_certs "$TEST_HOME")
refused() { # code desc args...: refused with code; the store and --out untouched
    local code=$1 desc=$2
    shift 2
    rm -f "$W/refused.pem"
    expect_exit "$code" "$desc" tsmki ca issue "$@" --party GITTEST --out "$W/refused.pem"
    check "$desc: no --out file" test ! -e "$W/refused.pem"
    check "$desc: the store still holds $COUNT" test "$(count_certs "$TEST_HOME")" = "$COUNT"
}
# A CSR whose signature does not verify: the last octet of the real one changed.
cp "$REAL_CSR" "$W/bad-pop.der"
printf '\x01' | dd of="$W/bad-pop.der" bs=1 seek=$(($(stat -c %s "$REAL_CSR") - 1)) conv=notrunc 2>/dev/null
refused 2 "a CSR with a bad proof of possession" --env test --csr "$W/bad-pop.der"
expect_in "proof of possession" "the refusal names the proof of possession"
openssl req -new -key "$W/org-ds.key" -subj "/CN=x" -addext "keyUsage=critical,digitalSignature,keyAgreement" \
    -out "$W/both.csr" 2>/dev/null
refused 2 "a CSR asking for both DS and KA" --env test --csr "$W/both.csr" --role 02 --eui 90B3D51F30010000
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$W/p384.key" 2>/dev/null
openssl req -new -key "$W/p384.key" -subj "/CN=x" -addext "keyUsage=critical,digitalSignature" \
    -out "$W/p384.csr" 2>/dev/null
refused 2 "a P-384 CSR" --env test --csr "$W/p384.csr" --role 02 --eui 90B3D51F30010000
expect_in "secp384r1" "the refusal names the curve"
refused 2 "--eui that disagrees with the CSR's Device ID" --env test --csr "$REAL_CSR" --eui 00DB1234567890A1
expect_in "EUI-64 mismatch" "the refusal names the mismatch"
refused 1 "an unknown environment" --env staging --csr "$REAL_CSR"
expect_in "unknown environment 'staging'" "the refusal names the environment"
refused 1 "production while its OIDs are placeholders" --env production --csr "$REAL_CSR"
expect_in "is not configured" "the refusal says production is not configured"
refused 1 "an organisation CSR without --role or --eui" --env test --csr "$W/org-ds.csr"
expect_in "--role, --eui" "the refusal names the options"
refused 1 "an organisation CSR with --role but no --eui" --env test --csr "$W/org-ds.csr" --role 02
refused 1 "a device CSR with --role" --env test --csr "$REAL_CSR" --role 02
refused 2 "a Remote Party Role of CA certificates (07)" --env test --csr "$W/org-ds.csr" --role 07 --eui 90B3D51F30010000
refused 1 "a role that is not one" --env test --csr "$W/org-ds.csr" --role boss --eui 90B3D51F30010000
refused 2 "a CSR file that does not exist" --env test --csr "$W/no-such.csr"
expect_exit 2 "--out that exists is never replaced" \
    tsmki ca issue --env test --csr "$REAL_CSR" --party GITTEST --out "$W/device.pem"
expect_in "$W/device.pem exists; --force replaces it" "the refusal says what to do"
expect_exit 1 "--out of a folder is refused before issuing, even with --force" \
    tsmki ca issue --env test --csr "$REAL_CSR" --party GITTEST --out "$W" --force
expect_in "is a folder: name a file to write" "the refusal says why"
expect_exit 0 "every test issuance is in the audit trail, which verifies" tsmki --json audit verify
expect_json "3 issuances among its entries, no finding" \
    'd["ok"] and d["total_findings"] == 0 and d["entries"] >= 10'
expect_exit 0 "audit list" tsmki --json audit list
expect_json "3 ca-issue-direct entries" 'sum(e["action"] == "ca-issue-direct" for e in d["entries"]) == 3'

check "the store is unchanged by that too" test "$(count_certs "$TEST_HOME")" = "$COUNT"

# ---- Production: a separate hierarchy ---------------------------------------------------------------
expect_exit 1 "ca init --env production is refused while its OIDs are placeholders" psmki ca init --env production
expect_in "org_policy" "the refusal names the settings"
check "no CA file written by the refusal" test ! -e "$PROD_HOME/ca/production"
check "no store created by the refusal" test ! -e "$PROD_HOME/store/data.mdb"
cat >"$W/prod.conf" <<'CONF'
# OIDs for this test only (the example arc, X.660): the live ones are not public.
[env.production]
org_policy = 2.999.9.1
device_policy = 2.999.9.2
hw_type = 1.2.826.0.1.8641679.1.2.2.1
dccki_policy = 2.999.9.4
root_name = PRODROOT
oca_name = PRODOCA
dca_name = PRODDCA
[ca.production]
token = smki-prod
CONF
expect_exit 0 "ca init --env production with configured OIDs" psmki ca init --env production --config "$W/prod.conf"
expect_exit 0 "ca init again, --config - from standard input" env SMKI_HOME="$PROD_HOME" bash -c \
    '"$1" --json ca init --env production --config - <"$2"' _ "$SMKI_BIN" "$W/prod.conf"
expect_json "the same configuration read: its five CAs exist, none made" \
    'd["created"] == 0 and len(d["cas"]) == 5 and all(x["state"] == "exists" for x in d["cas"]) and [x["cn"] for x in d["cas"] if x["name"] == "smki-oca"] == ["PRODOCA"]'
PCA=$PROD_HOME/ca/production
# No certificate outside the RA: a store without RA operators issues in production only
# when it is declared a lab store (ra.unmanaged).
expect_exit 2 "production without an RA: issuance refused" \
    psmki ca issue --env production --csr "$REAL_CSR" --out "$W/prod-device.pem"
expect_in "no RA operators yet" "the refusal says the RA is missing"
expect_in "ra.unmanaged" "and names the lab-store setting"
check "nothing written by the refusal" test ! -e "$W/prod-device.pem"
printf '\n[ra]\nunmanaged = production\n' >>"$PROD_HOME/smki.conf"
expect_exit 0 "production: issue the real device CSR" \
    psmki ca issue --env production --csr "$REAL_CSR" --out "$W/prod-device.pem"
expect_exit 0 "production: issue an organisation certificate" \
    psmki ca issue --env production --csr "$W/org-ds.csr" --role 02 --eui 90B3D51F30010000 --out "$W/prod-org.pem"
check "openssl verify: production device chain" ossl_verify "$PCA/smki-root.pem" "$PCA/smki-dca.pem" "$W/prod-device.pem"
check "certtool: production organisation chain" gnutls_chain "$W/prod-org.pem" "$PCA/smki-oca.pem" "$PCA/smki-root.pem"
check "python3-cryptography parses every production certificate" py_parses "$PCA"/*.pem "$W"/prod-*.pem
# Each trust store holds only its own roots: never the other's certificates.
cat "$TEST_HOME"/trust/test/*.pem >"$W/test-trust.pem"
cat "$PROD_HOME"/trust/production/*.pem >"$W/prod-trust.pem"
check_fails "a test device certificate does not verify against the production trust store" \
    ossl_verify "$W/prod-trust.pem" "$TCA/smki-dca.pem" "$W/device.pem"
check_fails "a test organisation certificate does not verify against the production trust store" \
    ossl_verify "$W/prod-trust.pem" "$TCA/smki-oca.pem" "$W/org-ds.pem"
check_fails "a production device certificate does not verify against the test trust store" \
    ossl_verify "$W/test-trust.pem" "$PCA/smki-dca.pem" "$W/prod-device.pem"
check_fails "a production organisation certificate does not verify against the test trust store" \
    ossl_verify "$W/test-trust.pem" "$PCA/smki-oca.pem" "$W/prod-org.pem"
check_fails "certtool: a test chain under the production root is not trusted" \
    gnutls_chain "$W/device.pem" "$TCA/smki-dca.pem" "$PCA/smki-root.pem"
check_fails "a production CA does not verify against the test root" \
    openssl verify -CAfile "$W/test-trust.pem" "$PCA/smki-dca.pem"
# And the profiles keep them apart: each fails the other environment's policy.
expect_exit 2 "a production device certificate fails the test profile" tsmki lint --env test "$W/prod-device.pem"
expect_in "policies.oid" "by its policy OID"
expect_exit 2 "a test device certificate fails the production profile" \
    psmki lint --env production --config "$W/prod.conf" "$W/device.pem"
expect_in "policies.oid" "by its policy OID"
expect_exit 0 "the production home lists only its own certificates" psmki --json ca list --env test
expect_json "no test certificate in it" 'd["count"] == 0'

finish
