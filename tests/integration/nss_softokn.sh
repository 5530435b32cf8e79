#!/usr/bin/env bash
# [hsm] init_args reach the PKCS#11 module: NSS softokn (libnss3) refuses C_Initialize
# without its parameters (CKR_ARGUMENTS_BAD) and starts with them; smki names the
# setting when they are missing, and hsm info reports the module actually loaded.
#
# Environment (ctest sets it): SMKI_BIN.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
PY=/usr/bin/python3
TIMEOUT=60
SOFTOKN=/usr/lib/x86_64-linux-gnu/libsoftokn3.so
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_PKCS11_MODULE SOFTHSM2_CONF

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-nss.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
H=$ROOT/home
mkdir -p "$W" "$ROOT/nssdb"
mkdir -m 700 "$H"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

check "NSS softokn is installed (libnss3)" test -r "$SOFTOKN"
printf '[hsm]\nmodule = %s\ntoken = NSS Generic Crypto Services\n' "$SOFTOKN" >"$H/smki.conf"
expect_exit 3 "without init_args NSS softokn does not start" smki --home "$H" hsm info
expect_in "CKR_ARGUMENTS_BAD" "it says what the module answered"
expect_in "[hsm] init_args" "and names the setting"

printf "init_args = configdir='sql:%s' certPrefix='' keyPrefix='' secmod='secmod.db' flags=\n" \
    "$ROOT/nssdb" >>"$H/smki.conf"
run smki --home "$H" --json hsm info
expect_json "with init_args the module starts: its token found, the module named" \
    "d['ok'] and d['module'] == '$SOFTOKN' and d['token']['label'] == 'NSS Generic Crypto Services'"
sed -i 's/^init_args =/init_arg =/' "$H/smki.conf"
expect_exit 1 "a misspelt init_args is refused, not ignored" smki --home "$H" hsm info
expect_in "unknown setting 'init_arg' under [hsm] (did you mean 'init_args'?)" "naming the nearest setting"
finish
