#!/usr/bin/env bash
# smki lint from the outside, over the real RTDS keystore: every certificate clean but
# the two of 90b3d51f30010008 (no authorityKeyIdentifier, reported for exactly that),
# the closing line and exit code, --json read back by /usr/bin/python3, environments
# (inferred, --env test, production refused until --config sets its OIDs), DER input,
# several certificates in one PEM file, and a certificate openssl makes by default.
# Every check prints "ok - ..." or "not ok - ..."; the last line is "N passed, M
# failed" and the exit is non-zero if any failed.
#
# Environment (ctest sets it; by hand:
#   SMKI_BIN=/tmp/b/bin/smki SMKI_SHARED=/work/shared bash tests/integration/lint_keystore.sh):
#   SMKI_BIN     the smki binary
#   SMKI_SHARED  the folder holding vectors/
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3
KEYSTORE=$SMKI_SHARED/vectors/gbcs/keystore
TIMEOUT=60
unset SMKI_HOME SMKI_DEBUG

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-lint.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
mkdir -p "$W" "$ROOT/home"
export SMKI_HOME=$ROOT/home # an empty home: no lint.env, no environments configured

DIAG_STDOUT=tail # the closing count is at the end of a lint run
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# expect_last LINE DESC: the last line of stdout is LINE.
expect_last() {
    local last
    last=$(tail -n 1 <<<"$OUT")
    if [[ $last == "$1" ]]; then
        ok "$2"
    else
        not_ok "$2: last line '$last', wanted '$1'"
        diag
    fi
}
# expect_count N PATTERN DESC: N stdout lines match the extended regex PATTERN.
expect_count() {
    local n
    n=$(grep -cE "$2" <<<"$OUT" || true)
    if [[ $n == "$1" ]]; then
        ok "$3"
    else
        not_ok "$3: $n lines match '$2', wanted $1"
        diag
    fi
}

[[ -x $SMKI_BIN ]] && ok "smki binary is executable" || not_ok "smki binary is executable: $SMKI_BIN"
[[ -x $PY ]] && ok "$PY is there" || not_ok "$PY is there"

# The files: 417 .pem, of which one is a bare public key; the certificates alone.
mapfile -t ALL < <(ls "$KEYSTORE"/*.pem)
mapfile -t CERTS < <(grep -l 'BEGIN CERTIFICATE' "$KEYSTORE"/*.pem)
mapfile -t WITHOUT_0008 < <(grep -l 'BEGIN CERTIFICATE' "$KEYSTORE"/*.pem | grep -v '/90b3d51f30010008-')
[[ ${#ALL[@]} == 417 && ${#CERTS[@]} == 416 ]] && ok "417 .pem files, 416 of them certificates" ||
    not_ok "417 .pem files, 416 certificates: ${#ALL[@]}, ${#CERTS[@]}"

# ---- The keystore -----------------------------------------------------------------------------
expect_exit 2 "lint of every keystore .pem" smki lint "${ALL[@]}"
expect_last "414 clean, 2 with violations, 1 not linted" "closing line counts the keystore"
expect_in "fffffffffffffffe-ka.pem: not linted: no certificate" "the bare public key is named, not linted"
expect_count 2 '^ +aki\.missing: ' "exactly two aki.missing lines"
expect_count 2 '^ +[a-z0-9_.]+: ' "no other violation anywhere (warnings are marked)"
expect_count 2 '90b3d51f30010008-(ds|ka)\.pem: 1 violation\(s\) \(organisation 08 loadController' \
    "the two loadController certificates have one violation each"
expect_count 414 ': clean \((device|organisation) ' "414 certificates clean as device or organisation"

expect_exit 2 "lint of the 416 certificates" smki lint "${CERTS[@]}"
expect_last "414 clean, 2 with violations" "closing line without the public key"
expect_exit 0 "lint of the 414 without 90b3d51f30010008" smki lint "${WITHOUT_0008[@]}"
expect_last "414 clean, 0 with violations" "all 414 clean"
expect_exit 0 "the same against --env test" smki lint --env test "${WITHOUT_0008[@]}"
expect_last "414 clean, 0 with violations" "all 414 clean against the test environment"

# ---- --json ---------------------------------------------------------------------------------
expect_exit 2 "--json lint of every keystore .pem" smki --json lint "${ALL[@]}"
expect_json "--json parses; counts 414/2/1" \
    'd["clean"] == 414 and d["with_violations"] == 2 and d["not_certificates"] == 1 and d["ok"] is False'
expect_json "--json has one result per file" 'len(d["results"]) == 417'
expect_json "--json: the two dirty ones are 90b3d51f30010008 with exactly aki.missing" \
    'sorted(r["file"].rsplit("/",1)[1] for r in d["results"] if r["kind"] == "certificate" and not r["clean"]) == ["90b3d51f30010008-ds.pem", "90b3d51f30010008-ka.pem"] and all([v["rule"] for v in r["violations"]] == ["aki.missing"] for r in d["results"] if r["kind"] == "certificate" and not r["clean"])'
expect_json "--json: profiles, roles, EUI-64s and the inferred environment" \
    'all(r["profile"] in ("device", "organisation") and r["env"] == "test" and r["env_inferred"] and len(r["eui64"]) == 16 for r in d["results"] if r["kind"] == "certificate")'
expect_json "--json: the supplier DS certificate" \
    'any(r["file"].endswith("90b3d51f30010000-ds.pem") and r["role"] == "02" and r["role_name"] == "supplier" and r["eui64"] == "90B3D51F30010000" and r["clean"] for r in d["results"])'

# ---- Environments -------------------------------------------------------------------------------
SUPPLIER=$KEYSTORE/90b3d51f30010000-ds.pem
expect_exit 1 "production is refused until configured" smki lint --env production "$SUPPLIER"
expect_in "placeholder" "the refusal says the OIDs are placeholders"
expect_in "[env.production]" "the refusal says where to set them"
cat >"$W/prod.conf" <<'EOF'
[env.production]
org_policy = 1.2.826.0.1.8641679.1.2.1.4
device_policy = 1.2.826.0.1.1800000.1.2.1.4
hw_type = 1.2.826.0.1.8641679.1.2.2.1
EOF
expect_exit 0 "production with its OIDs from --config" smki lint --env production --config "$W/prod.conf" "$SUPPLIER"
cat >"$W/other.conf" <<'EOF'
[env.production]
org_policy = 1.2.3.4
device_policy = 1.2.3.5
hw_type = 1.2.3.6
EOF
expect_exit 2 "production with other OIDs: the test certificate's policy is wrong" \
    smki lint --env production --config "$W/other.conf" "$SUPPLIER"
expect_in "policies.oid" "the policy rule is named"
printf '[lint]\nenv = production\n' >"$ROOT/home/smki.conf"
expect_exit 1 "lint.env in the home's smki.conf is used" smki lint "$SUPPLIER"
rm "$ROOT/home/smki.conf"
expect_exit 1 "an unknown environment" smki lint --env nowhere "$SUPPLIER"

# ---- Forms of input -----------------------------------------------------------------------------
openssl x509 -in "$SUPPLIER" -outform DER -out "$W/supplier.der"
expect_exit 0 "a DER certificate" smki lint "$W/supplier.der"
expect_in "clean (organisation 02 supplier DS 90-B3-D5-1F-30-01-00-00)" "the DER certificate is described"
cat "$SUPPLIER" "$KEYSTORE/fffffffffffffffe-ka.pem" "$KEYSTORE/90b3d51f30010008-ka.pem" >"$W/two.pem"
expect_exit 2 "two certificates and a key in one PEM file" smki lint "$W/two.pem"
expect_in "two.pem#1: clean" "the first is labelled #1"
expect_in "two.pem#2: 1 violation(s)" "the second is labelled #2"
expect_last "1 clean, 1 with violations" "both counted"
expect_exit 2 "a missing file" smki lint "$W/no-such.pem"
expect_in "no-such.pem: not linted" "the missing file is named"

# ---- A certificate as openssl makes one by default --------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k.pem" -out "$W/default.pem" \
    -subj "/OU=02/CN=DEFAULT" -days 365 2>/dev/null
expect_exit 2 "openssl's default self-signed certificate" smki lint "$W/default.pem"
expect_in "ski.length" "its 20-octet SKI is named"

expect_exit 0 "--help" smki lint --help
expect_in "dccki-server" "--help lists the profiles"
expect_exit 1 "no files" smki lint

finish
