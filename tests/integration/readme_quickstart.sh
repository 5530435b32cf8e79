#!/usr/bin/env bash
# The README's quick start, run exactly as written: every ```sh block between
# "## Quick start" and the next "## " heading, in order, in one shell, from a folder
# that looks like a fresh clone after `make demo` (build/bin holds this build's smki
# and make_device_csrs). Then independent checks of what it made (openssl), so the
# README can never drift from what smki does.
#
# Environment (ctest sets it): SMKI_BIN (the smki binary), SMKI_SRC (the source tree).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SRC:?set SMKI_SRC to the source tree}"

PY=/usr/bin/python3
TIMEOUT=60
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_OPERATOR SMKI_OPERATOR_KEY SMKI_HSM_KEY_COPY SMKI_DEBUG SOFTHSM2_CONF

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-readme.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/.check
mkdir -p "$W" "$ROOT/clone"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# ---- The blocks --------------------------------------------------------------------
awk '/^## /{ inside = ($0 ~ /^## Quick start/) } inside && /^```/{ if (fence) { fence = 0 } else if ($0 == "```sh") { fence = 1; n++; print "# ---- block " n } next } inside && fence' \
    "$SMKI_SRC/README.md" >"$ROOT/quickstart.sh"
blocks=$(grep -c '^# ---- block ' "$ROOT/quickstart.sh" || true)
if [[ $blocks -ge 7 ]]; then ok "README.md's quick start has $blocks sh blocks"; else not_ok "README.md's quick start has only $blocks sh blocks"; fi
check "the quick start starts from an empty home it makes itself" grep -q 'mkdir -p "$SMKI_HOME' "$ROOT/quickstart.sh"
check "the quick start shows the [operators] mapping" grep -q '^\[operators\]' "$ROOT/quickstart.sh"

# A fresh clone after make demo: the build's programs under build/bin.
ln -s "$(dirname "$(dirname "$SMKI_BIN")")" "$ROOT/clone/build"
[[ -x $ROOT/clone/build/bin/make_device_csrs ]] || not_ok "make_device_csrs is built beside smki"

# Each command as written; the trace names the one that failed. No pipefail: the
# README's pipelines end in the check (grep) an operator reads.
run env -C "$ROOT/clone" timeout 600 bash -eu -x "$ROOT/quickstart.sh"
if [[ $RC == 0 ]]; then
    ok "every quick start command ran as written"
else
    not_ok "the quick start failed (exit $RC)"
    DIAG_STDOUT=tail diag
    echo "#   the last commands:"
    grep '^+' <<<"$ERR" | tail -5 | sed 's/^/#   /'
fi

# ---- What it made, checked independently -------------------------------------------
H=$ROOT/clone/var/quickstart
WK=$H/work
CA=$H/ca/test
check "the DS and KA certificates chain to the test SMKI root (openssl)" \
    openssl verify -CAfile "$CA/smki-root.pem" -untrusted "$CA/smki-oca.pem" "$WK/supplier-ds.pem" "$WK/supplier-ka.pem"
run openssl x509 -in "$WK/supplier-ds.pem" -noout -ext keyUsage
expect_in "Digital Signature" "the DS certificate is for digital signature"
expect_not_in "Key Agreement" "and not for key agreement"
run openssl x509 -in "$WK/supplier-ka.pem" -noout -ext keyUsage
expect_in "Key Agreement" "the KA certificate is for key agreement"
n=$(find "$WK/devices" -name '*.pem' 2>/dev/null | wc -l)
if [[ $n == 20 ]]; then ok "the device batch wrote 20 certificates"; else not_ok "the device batch wrote $n certificates, wanted 20"; fi
check "a device certificate chains to the test Device CA (openssl)" bash -c \
    "openssl verify -CAfile '$CA/smki-root.pem' -untrusted '$CA/smki-dca.pem' \$(ls '$WK'/devices/*.pem | head -1)"
serial=$(openssl x509 -in "$WK/supplier-ds.pem" -noout -serial | cut -d= -f2)
run openssl crl -inform DER -in "$CA/smki-oca.crl" -noout -text
expect_in "Serial Number: $serial" "the OCA's CRL lists the revoked DS certificate"
expect_in "Key Compromise" "with its reason"
run env SMKI_HOME="$H" timeout "$TIMEOUT" "$SMKI_BIN" --json audit verify
expect_json "the audit trail of the quick start verifies" 'd["ok"] is True'

finish
