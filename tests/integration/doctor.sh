#!/usr/bin/env bash
# smki doctor and the home's safety rules, from the outside: a mistyped home is never
# created (only the init commands make one), unknown configuration sections and PIN
# files every user can read are refused, and the doctor names each problem with what
# to do: no CRL/ARL, a CRL due or lapsed (--at), a CA near expiry, a stale published
# file, a wrong PIN (offered once, not once per key), a CA key gone from the token
# (found independently with pkcs11-tool), a tampered audit trail (ra_tamper), a home
# others may write. --json throughout.
#
# Environment (ctest sets it): SMKI_BIN, SMKI_BUILD (for bin/ra_tamper).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
SMKI_BUILD=${SMKI_BUILD:-$(dirname "$(dirname "$SMKI_BIN")")}
TAMPER=$SMKI_BUILD/bin/ra_tamper
PY=/usr/bin/python3
TIMEOUT=60
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_OPERATOR SMKI_OPERATOR_KEY SMKI_HSM_KEY_COPY SMKI_DEBUG SOFTHSM2_CONF

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-doctor.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
H=$ROOT/home
mkdir -p "$W"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# doctor_json DESC PYEXPR [ARGS...]: smki --json doctor ARGS in $H; PYEXPR over d (the
# document) and f(check, level, text): is there a finding of that check and level
# whose finding or subject contains text?
doctor_json() {
    local desc=$1 expr=$2
    shift 2
    run env SMKI_HOME="$H" timeout "$TIMEOUT" "$SMKI_BIN" --json doctor "$@"
    expect_json "$desc" "(lambda f: $expr)(lambda c, l, t='': any(x['check'] == c and x['level'] == l and (t in x['finding'] or t in x['subject']) for x in d['checks']))"
}

# ---- A mistyped home is never created ----------------------------------------------
for cmd in "key list" "store info" "ca list" "ra party list" "doctor"; do
    # shellcheck disable=SC2086 # the command's words
    expect_exit 2 "smki $cmd refuses a home that does not exist" smki --home "$ROOT/hmoe" $cmd
    expect_in "the home $ROOT/hmoe does not exist" "and names it"
    check "smki $cmd created nothing" test ! -e "$ROOT/hmoe"
done
run smki --home "$ROOT/hmoe" --json doctor
expect_json "doctor --json: one home problem" 'd["ok"] is False and d["problems"] == 1 and d["checks"][0]["check"] == "home"'

# ---- A home made by hsm init -----------------------------------------------------------
mkdir -p "$ROOT/secrets"
(umask 077; echo doctor-so-1234 >"$ROOT/secrets/so.pin"; echo doctor-user-12 >"$ROOT/secrets/user.pin")
expect_exit 0 "hsm init makes a new home" smki --home "$H" --so-pin-file "$ROOT/secrets/so.pin" \
    --pin-file "$ROOT/secrets/user.pin" hsm init
check "the new home is mode 0700" test "$(stat -c %a "$H")" = 700
cp -a "$ROOT/secrets" "$H/secrets"
cat >"$H/smki.conf" <<'CONF'
[hsm]
token = smki
pin_file = secrets/user.pin
so_pin_file = secrets/so.pin
CONF
doctor_json "a new home: token and PIN ok, no store yet, nothing a problem" \
    'd["ok"] and f("token", "ok") and f("pin", "ok", "logs in") and f("store", "note", "no store yet") and f("pin-file", "ok", "mode 0600")'
expect_exit 0 "doctor exits 0 with nothing a problem" env SMKI_HOME="$H" "$SMKI_BIN" doctor

# ---- The CAs and their lists ---------------------------------------------------------------
expect_exit 0 "ca init --env test" env SMKI_HOME="$H" timeout "$TIMEOUT" "$SMKI_BIN" ca init --env test
doctor_json "after the ceremony: every CA valid and its key signs, no CRL nor ARL published: problems" \
    'not d["ok"] and f("ca", "ok", "test/smki-oca") and f("ca-key", "ok", "signs") and f("crl", "problem", "no CRL has been published") and f("arl", "problem", "no ARL has been published") and d["problems"] == 5'
expect_exit 2 "doctor exits 2 on a problem" env SMKI_HOME="$H" "$SMKI_BIN" doctor
expect_in "publish it: 'smki ca crl --env test" "and says what to do"
expect_exit 0 "publish the CRLs" env SMKI_HOME="$H" "$SMKI_BIN" ca crl --env test
expect_exit 0 "publish the ARLs" env SMKI_HOME="$H" "$SMKI_BIN" ca arl --env test
doctor_json "published: every list ok" 'd["ok"] and d["problems"] == 0 and d["warnings"] == 0 and f("crl", "ok", "CRL 1") and f("arl", "ok", "ARL 1")'
next=$(openssl crl -inform DER -in "$H/ca/test/smki-oca.crl" -noout -nextupdate | cut -d= -f2)
soon=$(date -u -d "$next - 12 hours" +%FT%TZ)
late=$(date -u -d "$next + 1 hour" +%FT%TZ)
doctor_json "12 hours before the CRL's nextUpdate (openssl's): due, a warning" \
    'd["ok"] and f("crl", "warning", "is due") and not f("arl", "warning")' --at "$soon"
doctor_json "an hour after it: lapsed, a problem" 'not d["ok"] and f("crl", "problem", "lapsed")' --at "$late"
doctor_json "--ca-warn-days beyond the CAs' lives: each CA a warning" \
    'd["ok"] and d["warnings"] == 5 and f("ca", "warning", "expires in")' --ca-warn-days 36500
expect_exit 1 "--at that is not a time is a usage error" env SMKI_HOME="$H" "$SMKI_BIN" doctor --at tomorrow
mv "$H/ca/test/smki-oca.crl" "$W/oca.crl"
doctor_json "a published CRL file gone: a warning naming it" 'f("crl", "warning", "smki-oca.crl")'
mv "$W/oca.crl" "$H/ca/test/smki-oca.crl"

# ---- The PIN ---------------------------------------------------------------------------------
run env SMKI_HOME="$H" SMKI_PIN=wrong-pin-0 timeout "$TIMEOUT" "$SMKI_BIN" --json doctor
expect_json "a wrong PIN: a problem, and no CA key's signing is tried with it" \
    'not d["ok"] and any(x["check"] == "pin" and x["level"] == "problem" and "CKR_PIN_INCORRECT" in x["finding"] for x in d["checks"]) and not any(x["check"] == "ca-key" and x["level"] == "problem" for x in d["checks"])'
n=$(grep -o CKR_PIN_INCORRECT <<<"$OUT" | wc -l)
if [[ $n == 1 ]]; then ok "the wrong PIN was offered once"; else not_ok "the wrong PIN was offered $n times"; fi

chmod 644 "$H/secrets/user.pin"
expect_exit 2 "a PIN file every user may read is refused" env SMKI_HOME="$H" "$SMKI_BIN" key list
expect_in "readable by every user (mode 0644)" "naming it and its mode"
doctor_json "doctor: the PIN file is a problem" 'not d["ok"] and f("pin-file", "problem", "readable by every user") and f("pin", "problem")'
chmod 600 "$H/secrets/user.pin"

# ---- Configuration ------------------------------------------------------------------------------
cp "$H/smki.conf" "$W/smki.conf.good"
printf '\n[stroe]\npath = store\n' >>"$H/smki.conf"
expect_exit 1 "an unknown section is refused" env SMKI_HOME="$H" "$SMKI_BIN" key list
expect_in "smki.conf:6: unknown section [stroe] (did you mean [store]?)" "naming the line and the nearest section"
doctor_json "doctor: the configuration is the problem" 'not d["ok"] and f("config", "problem", "unknown section [stroe]")'
cp "$W/smki.conf.good" "$H/smki.conf"

chmod 777 "$H"
doctor_json "a home others may write into is a problem" 'not d["ok"] and f("home", "problem", "mode 0777")'
chmod 700 "$H"

# ---- The repository's TLS certificate ([repo] tls_cert) -----------------------------------------
mkdir -p "$H/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 -subj /CN=repo \
    -keyout "$H/tls/repo.key" -out "$H/tls/repo.pem" 2>/dev/null
printf '\n[repo]\nenv = test\ntls_cert = tls/repo.pem\ntls_key = tls/repo.key\n' >>"$H/smki.conf"
doctor_json "a repository TLS certificate ending in 10 days: a warning" \
    'd["ok"] and f("repo-tls", "warning", "expires in")'
doctor_json "past its end (--at): a problem" 'not d["ok"] and f("repo-tls", "problem", "expired")' \
    --at "$(date -u -d '+11 days' +%F)"
rm "$H/tls/repo.pem"
doctor_json "missing: a problem naming the file" 'not d["ok"] and f("repo-tls", "problem", "tls/repo.pem")'
cp "$W/smki.conf.good" "$H/smki.conf"

# ---- The audit trail ----------------------------------------------------------------------------
ra_test_participant "$H"
doctor_json "an RA with a clean trail" 'd["ok"] and f("audit", "ok", "chained and signed by 1 operator")'
check "ra_tamper is built" test -x "$TAMPER"
"$TAMPER" "$H/store" flip 2 >/dev/null
doctor_json "one entry altered in the store: the audit trail is a problem naming it" \
    'not d["ok"] and f("audit", "problem", "entry 2")'

# ---- A CA key gone from the token (removed with OpenSC's pkcs11-tool) ----------------------------
P11=(env SOFTHSM2_CONF="$H/hsm/softhsm2.conf" pkcs11-tool --module "$SOFTHSM" --token-label smki-test --login
    --pin "$(cat "$H/secrets/user.pin")")
check "pkcs11-tool deletes the OCA's private key" "${P11[@]}" --delete-object --type privkey --label test-smki-oca
doctor_json "the OCA's key does not sign: a problem for that CA only" \
    'f("ca-key", "problem", "test/smki-oca") and f("ca-key", "ok", "test/smki-dca")'
run env SMKI_HOME="$H" timeout "$TIMEOUT" "$SMKI_BIN" doctor
expect_in "the CA's key" "the human report names the key"
expect_in "-> the CA cannot issue" "and what to do"

finish
