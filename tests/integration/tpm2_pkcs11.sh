#!/usr/bin/env bash
# smki on a second PKCS#11 implementation: tpm2-pkcs11 over a throwaway software TPM
# (swtpm on loopback, behind tpm2-abrmd on a private D-Bus session bus, as /dev/tpmrm0
# would be on a real machine). The token made by smki hsm init, keys generated inside
# it, signatures checked by openssl, the CA ceremony with every CA key in the TPM,
# issuance, CRLs and ARLs verified by openssl, smki doctor. A key-agreement key is
# refused by name where the module has no ECDH (tpm2-pkcs11 1.9.0), made where it has.
# Nothing is skipped: if the software TPM cannot start, the test fails.
#
# Environment (ctest sets it): SMKI_BIN. Needs swtpm, tpm2-abrmd, dbus-daemon,
# tpm2_ptool, libtpm2_pkcs11.so, pkcs11-tool (tools/deps.sh).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
PY=/usr/bin/python3
TIMEOUT=120
MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_OPERATOR SMKI_OPERATOR_KEY SMKI_HSM_KEY_COPY SMKI_DEBUG SOFTHSM2_CONF \
    SMKI_PKCS11_MODULE

# The ASan build: full stacks through libcrypto (built without frame pointers), so that
# tests/lsan.supp can name tpm2-pkcs11's own leak at C_SignInit.
[[ -n ${ASAN_OPTIONS:-} ]] && export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-tpm2.XXXXXX")
W=$ROOT/work
T=$ROOT/tpm
mkdir -p "$W" "$T/state" "$T/store"
SWTPM_PID= ABRMD_PID= DBUS_PID=
cleanup() {
    local p
    for p in "$ABRMD_PID" "$SWTPM_PID" "$DBUS_PID"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
    rm -rf "$ROOT"
}
trap cleanup EXIT
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# ---- The software TPM -------------------------------------------------------------------------
for tool in swtpm tpm2-abrmd dbus-daemon tpm2_ptool tpm2_getcap pkcs11-tool; do
    check "$tool is installed (tools/deps.sh)" command -v "$tool"
done
check "the tpm2-pkcs11 module is installed" test -r "$MODULE"
# The swtpm TCTI finds the control channel at the server's port + 1: two free ports in a row.
read -r PORT CTRL < <("$PY" -c '
import random, socket
while True:
    p = random.randrange(20000, 60000, 2)
    try:
        a = socket.socket(); a.bind(("127.0.0.1", p)); b = socket.socket(); b.bind(("127.0.0.1", p + 1))
    except OSError:
        continue
    print(p, p + 1)
    break')
swtpm socket --tpm2 --tpmstate dir="$T/state" --server type=tcp,port="$PORT",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port="$CTRL",bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
    --pid file="$T/swtpm.pid" --log file="$T/swtpm.log" --daemon
SWTPM_PID=$(cat "$T/swtpm.pid")
dbus-daemon --session --fork --address="unix:path=$T/bus" --print-address=1 --print-pid=1 >"$T/dbus.out"
DBUS_PID=$(sed -n 2p "$T/dbus.out")
export DBUS_SESSION_BUS_ADDRESS
DBUS_SESSION_BUS_ADDRESS=$(sed -n 1p "$T/dbus.out")
tpm2-abrmd --session --allow-root --flush-all --tcti="swtpm:host=127.0.0.1,port=$PORT" >"$T/abrmd.log" 2>&1 &
ABRMD_PID=$!
export TPM2TOOLS_TCTI=tabrmd:bus_type=session TPM2_PKCS11_TCTI=tabrmd:bus_type=session TPM2_PKCS11_STORE=$T/store
up=0
for _ in $(seq 100); do
    if tpm2_getcap properties-fixed >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
done
if [[ $up == 1 ]]; then ok "the software TPM answers through the resource manager"; else
    not_ok "the software TPM did not start"
    sed 's/^/#   /' "$T/abrmd.log" "$T/swtpm.log" 2>/dev/null | head -20
    finish
    exit 1
fi
check "tpm2_ptool makes the PKCS#11 store's primary key" tpm2_ptool init

# ---- A home on the TPM --------------------------------------------------------------------------
H=$ROOT/home
mkdir -m 700 "$H" "$H/secrets"
(umask 077; echo tpm-so-123456 >"$H/secrets/so.pin"; echo tpm-user-1234 >"$H/secrets/user.pin")
cat >"$H/smki.conf" <<CONF
[hsm]
module = $MODULE
token = smki
pin_file = secrets/user.pin
so_pin_file = secrets/so.pin
CONF
export SMKI_HOME=$H
expect_exit 0 "hsm init makes the token in the TPM" smki hsm init
run smki --json hsm info
expect_json "hsm info names the module actually loaded, and the TPM's token" \
    "d['module'] == '$MODULE' and d['token']['label'] == 'smki' and d['token']['user_pin_set']"

# ---- Keys and signatures ------------------------------------------------------------------------
expect_exit 0 "key generate --usage ds in the TPM" smki key generate --label supplier-ds --usage ds
run smki --json key list
expect_json "key list: a DS key with its id" 'any(k["label"] == "supplier-ds" and k["usage"] == "ds" for k in d["keys"])'
PIN=$(cat "$H/secrets/user.pin")
run env TPM2_PKCS11_TCTI="$TPM2_PKCS11_TCTI" pkcs11-tool --module "$MODULE" --token-label smki --login --pin "$PIN" \
    --list-objects --type privkey
expect_in "never extractable" "pkcs11-tool: the private key is never extractable"
expect_in "sign" "pkcs11-tool: and may sign"
expect_not_in "decrypt" "pkcs11-tool: and may not decrypt"
printf 'a pre-command to sign\n' >"$W/msg"
expect_exit 0 "sign --der with the TPM key" smki sign --key supplier-ds --in "$W/msg" --out "$W/msg.der" --der
expect_exit 0 "key pub" smki key pub supplier-ds --out "$W/ds.pub"
check "openssl verifies the TPM's signature" openssl dgst -sha256 -verify "$W/ds.pub" -signature "$W/msg.der" "$W/msg"
expect_exit 0 "sign --raw (GBCS r||s)" smki sign --key supplier-ds --in "$W/msg" --out "$W/msg.raw" --raw
expect_exit 0 "smki verify of the raw signature" smki verify --pub "$W/ds.pub" --in "$W/msg" --sig "$W/msg.raw"

run env TPM2_PKCS11_TCTI="$TPM2_PKCS11_TCTI" pkcs11-tool --module "$MODULE" --token-label smki -M
if grep -q 'ECDH1-DERIVE' <<<"$OUT"; then
    expect_exit 0 "the module offers ECDH: key generate --usage ka" smki key generate --label supplier-ka --usage ka
else
    expect_exit 2 "the module offers no ECDH (pkcs11-tool -M agrees): a KA key is refused" \
        smki key generate --label supplier-ka --usage ka
    expect_in "offers no ECDH (CKM_ECDH1_DERIVE" "naming the mechanism"
    run smki --json key list
    expect_json "and nothing is left on the token" 'not any(k["label"] == "supplier-ka" for k in d["keys"])'
fi

# ---- The CA in the TPM ---------------------------------------------------------------------------
expect_exit 0 "ca init --env test: every CA key in the TPM" smki ca init --env test
CA=$H/ca/test
check "openssl: the OCA chains to the root" openssl verify -CAfile "$CA/smki-root.pem" "$CA/smki-oca.pem"
check "openssl: the DCCKI ICA chains to its root" openssl verify -CAfile "$CA/dccki-root.pem" "$CA/dccki-ica.pem"
run smki --json ca show --env test
ra_test_participant "$H"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org.key" -subj /CN=GITTEST \
    -addext keyUsage=critical,digitalSignature -out "$W/org.csr" 2>/dev/null
expect_exit 0 "ca issue: an organisation certificate signed in the TPM" smki ca issue --env test --csr "$W/org.csr" \
    --role supplier --party GITTEST --eui 90-B3-D5-1F-30-01-00-00 --out "$W/org.pem"
check "openssl verifies it" openssl verify -CAfile "$CA/smki-root.pem" -untrusted "$CA/smki-oca.pem" "$W/org.pem"
expect_exit 0 "lint: it meets the profile" smki lint --env test "$W/org.pem"
serial=$(openssl x509 -in "$W/org.pem" -noout -serial | cut -d= -f2)
expect_exit 0 "ca revoke" smki ca revoke --env test "$serial" --reason keyCompromise
expect_exit 0 "ca crl: CRLs signed in the TPM" smki ca crl --env test
expect_exit 0 "ca arl: ARLs signed in the TPM" smki ca arl --env test
check "openssl verifies the OCA's CRL" openssl crl -inform DER -in "$CA/smki-oca.crl" -CAfile "$CA/smki-oca.pem" -noout
check "openssl verifies the root's ARL" openssl crl -inform DER -in "$CA/smki-root.crl" -CAfile "$CA/smki-root.pem" -noout
run openssl crl -inform DER -in "$CA/smki-oca.crl" -noout -text
expect_in "Serial Number: $serial" "the CRL lists the revoked certificate"

run smki --json doctor
expect_json "doctor: all well on the TPM, every CA key signs" \
    'd["ok"] and d["problems"] == 0 and sum(x["check"] == "ca-key" and "signs" in x["finding"] for x in d["checks"]) == 5'

finish
