#!/usr/bin/env bash
# The p11-kit proxy keeps working as a module: smki through p11-kit-proxy.so reaches the
# SoftHSM it proxies (the token made by hsm init, a key generated, a signature openssl
# verifies, the CA ceremony, smki doctor), and hsm info names the proxy as the module
# loaded. SoftHSM's token folder is this test's own (SOFTHSM2_CONF), never the system's.
#
# Environment (ctest sets it): SMKI_BIN. Needs p11-kit-modules and softhsm2.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
PY=/usr/bin/python3
TIMEOUT=60
PROXY=/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_PKCS11_MODULE SOFTHSM2_CONF

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-p11kit.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
H=$ROOT/home
mkdir -p "$W" "$ROOT/tokens"
mkdir -m 700 "$H"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

check "the p11-kit proxy is installed (p11-kit-modules)" test -r "$PROXY"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' "$ROOT" >"$ROOT/softhsm2.conf"
# The proxy also loads every other registered module: tpm2-pkcs11 finds no TPM here
# (TPM2_PKCS11_TCTI=none: it gives up at once; p11-kit skips it, it is not critical).
# p11-kit reads no per-user configuration as root, so that cannot be narrowed here.
export SOFTHSM2_CONF=$ROOT/softhsm2.conf TPM2_PKCS11_TCTI=none
printf '[hsm]\nmodule = %s\ntoken = proxied\n' "$PROXY" >"$H/smki.conf"
export SMKI_HOME=$H SMKI_PIN=proxy-user-1 SMKI_SO_PIN=proxy-so-12
expect_exit 0 "hsm init through the proxy" smki hsm init
run smki --json hsm info
expect_json "hsm info names the proxy as the module loaded, and SoftHSM's token behind it" \
    "d['module'] == '$PROXY' and d['token']['label'] == 'proxied' and 'SoftHSM' in d['token']['manufacturer']"
check "the token is in this test's own SoftHSM folder" bash -c "ls '$ROOT/tokens' | grep -q ."
expect_exit 0 "key generate" smki key generate --label k1 --usage ds
printf 'through the proxy\n' >"$W/m"
expect_exit 0 "sign" smki sign --key k1 --in "$W/m" --out "$W/m.sig" --der
expect_exit 0 "key pub" smki key pub k1 --out "$W/k1.pub"
check "openssl verifies the signature" openssl dgst -sha256 -verify "$W/k1.pub" -signature "$W/m.sig" "$W/m"
expect_exit 0 "ca init --env test through the proxy" smki ca init --env test
expect_exit 0 "ca crl" smki ca crl --env test
expect_exit 0 "ca arl" smki ca arl --env test
check "openssl verifies the OCA's CRL" openssl crl -inform DER -in "$H/ca/test/smki-oca.crl" -CAfile "$H/ca/test/smki-oca.pem" -noout
run smki --json doctor
expect_json "doctor: every CA key signs through the proxy" \
    'd["ok"] and sum(x["check"] == "ca-key" and "signs" in x["finding"] for x in d["checks"]) == 5'
finish
