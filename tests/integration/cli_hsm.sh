#!/usr/bin/env bash
# The smki command as an operator uses it, from the outside: help and usage errors,
# a home's token (hsm init/info), keys made inside it (key generate/list/pub), sign
# and verify checked by independent tools (openssl, pkcs11-tool, p11tool, Debian's
# python3-cryptography), wrong PINs, a failing device through the fault-injecting
# PKCS#11 shim, EUI-64 parsing and file-key errors. Every check prints "ok - ..." or
# "not ok - ..."; the last line is "N passed, M failed" and the exit is non-zero if
# any failed. A sanitizer report from any smki run is a failure of its own.
#
# Environment (ctest sets it; by hand:
#   SMKI_BIN=/tmp/b/bin/smki SMKI_SHARED=/work/shared SMKI_SHIM_PATH=/tmp/b/lib/p11shim.so \
#   bash tests/integration/cli_hsm.sh):
#   SMKI_BIN        the smki binary
#   SMKI_SHARED     the folder holding vectors/
#   SMKI_SHIM_PATH  the fault-injecting PKCS#11 module (tests/shim/p11shim.c)
# Needs openssl, pkcs11-tool (opensc), p11tool (gnutls-bin), SoftHSM 2 and
# /usr/bin/python3 with python3-cryptography (tools/deps.sh installs them).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
: "${SMKI_SHIM_PATH:?set SMKI_SHIM_PATH to p11shim.so}"

PY=/usr/bin/python3 # Debian's: the python3 on PATH may lack cryptography
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
KEYSTORE=$SMKI_SHARED/vectors/gbcs/keystore
TOKEN=ops-token-7 # distinctive, so that "names the token" means something
SO_PIN=so-87654321
PIN=user-1234567
TIMEOUT=60 # no smki run may hang the suite

# Nothing from the caller's shell may leak into the runs.
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_HSM_KEY_COPY SMKI_SHIM_FAIL SMKI_SHIM_RV SMKI_SHIM_MODULE SMKI_DEBUG SOFTHSM2_CONF GNUTLS_PIN

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-cli-hsm.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
HOME_DIR=$ROOT/home # the operator's home: created by hsm init below
W=$ROOT/work
mkdir -p "$W" "$HOME_DIR"
export SMKI_HOME=$HOME_DIR
printf '[hsm]\ntoken = %s\n' "$TOKEN" >"$HOME_DIR/smki.conf"
SOFTHSM_CONF=$HOME_DIR/hsm/softhsm2.conf # written by smki on its first run in the home

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need() {
    if command -v "$1" >/dev/null 2>&1 || [[ -f $1 ]]; then
        ok "tool present: $1"
    else
        not_ok "tool present: $1 ($2)"
    fi
}

# ---- Tools the checks lean on --------------------------------------------------------
check "smki binary is executable: $SMKI_BIN" test -x "$SMKI_BIN"
need openssl "apt-get install openssl"
need pkcs11-tool "apt-get install opensc"
need p11tool "apt-get install gnutls-bin"
need "$SOFTHSM" "apt-get install softhsm2"
check "$PY imports cryptography (apt-get install python3-cryptography)" "$PY" -c 'import cryptography'
check "the shim module exists: $SMKI_SHIM_PATH" test -f "$SMKI_SHIM_PATH"

# ---- Help and usage ----------------------------------------------------------------------
for args in "--help" "-h" "help"; do
    expect_exit 0 "smki $args" smki $args
    expect_in "Usage: smki <command>" "smki $args prints the usage"
done
expect_in "Exit codes" "smki --help documents the exit codes"
expect_exit 0 "smki --version" smki --version
expect_in "smki " "smki --version prints a version"
expect_exit 1 "smki with no arguments is a usage error" smki
expect_in "Usage:" "smki with no arguments shows the usage"

# Every command and subcommand has a --help of its own.
HELP_LINES=("hsm" "hsm init" "hsm info" "key" "key generate" "key list" "key pub" "sign" "verify"
    "eui64" "eui64 parse" "eui64 range")
run smki --help
if [[ $OUT =~ (^|$'\n')\ +store\  ]]; then HELP_LINES+=("store" "store info"); fi
for cmd in "${HELP_LINES[@]}"; do
    # shellcheck disable=SC2086 # split "key generate" into words
    expect_exit 0 "smki $cmd --help" smki $cmd --help
    expect_in "Usage: smki $cmd" "smki $cmd --help prints its usage"
done
for group in hsm key eui64; do
    expect_exit 1 "smki $group with no subcommand is a usage error" smki "$group"
    expect_in "Usage: smki $group <command>" "smki $group with no subcommand lists its subcommands"
done

expect_exit 1 "unknown command" smki frobnicate
expect_in "frobnicate" "unknown command is named"
expect_exit 1 "unknown subcommand" smki key frobnicate
expect_in "frobnicate" "unknown subcommand is named"
expect_exit 1 "unknown global option" smki --frobnicate
expect_in "--frobnicate" "unknown global option is named"
expect_exit 1 "unknown subcommand option" smki key list --frobnicate
expect_in "--frobnicate" "unknown subcommand option is named"
expect_exit 1 "a global option without its value" smki --home
expect_exit 1 "an unexpected argument" smki hsm info extra-arg
expect_in "extra-arg" "the unexpected argument is named"

# ---- hsm init / info ---------------------------------------------------------------------
expect_exit 2 "hsm info before hsm init: no token yet" smki hsm info
expect_in "$TOKEN" "hsm info names the missing token"
expect_in "hsm init" "hsm info says how to make the token"

# A new home with no SO PIN: a usage error that names SMKI_SO_PIN.
SMKI_PIN=$PIN expect_exit 1 "hsm init without an SO PIN on a new home" smki --home "$ROOT/no-so-pin" hsm init
expect_in "SMKI_SO_PIN" "the missing SO PIN is named (SMKI_SO_PIN)"
SMKI_SO_PIN=$SO_PIN expect_exit 1 "hsm init without a user PIN on a new home" smki --home "$ROOT/no-pin" hsm init
expect_in "SMKI_PIN" "the missing user PIN is named (SMKI_PIN)"

# PINs the token cannot take are the operator's mistake (exit 1), said as such, and
# they leave nothing half-made: init with good PINs afterwards gives a usable token.
SMKI_SO_PIN=12 SMKI_PIN=$PIN expect_exit 1 "hsm init with a 2-character SO PIN is a usage error" \
    smki --home "$ROOT/short-so-pin" hsm init
expect_in "SO PIN" "the too-short SO PIN is named as the SO PIN"
expect_not_in "wrong PIN" "a too-short SO PIN on a new token is not called a wrong PIN"
SMKI_SO_PIN=$SO_PIN SMKI_PIN=1 expect_exit 1 "hsm init with a 1-character user PIN is a usage error" \
    smki --home "$ROOT/short-pin" hsm init
expect_in "PIN" "the too-short user PIN is reported"
SMKI_SO_PIN=$SO_PIN SMKI_PIN=$PIN expect_exit 0 "hsm init with good PINs after the failed one" \
    smki --home "$ROOT/short-pin" hsm init
expect_exit 0 "hsm info --json after the retried init" smki --home "$ROOT/short-pin" --json hsm info
expect_json "the retried init leaves the user PIN set" "d['token']['user_pin_set'] is True"
SMKI_PIN=$PIN expect_exit 0 "a key can be made on the token of the retried init" \
    smki --home "$ROOT/short-pin" key generate --label retry-ds --usage ds

SMKI_SO_PIN=$SO_PIN SMKI_PIN=$PIN expect_exit 0 "hsm init creates the token" smki hsm init
expect_in "Token '$TOKEN' created" "hsm init says it created the token with the home's label"
check "hsm init wrote the home's softhsm2.conf" test -s "$SOFTHSM_CONF"
SMKI_SO_PIN=$SO_PIN SMKI_PIN=$PIN expect_exit 0 "hsm init again" smki hsm init
expect_in "exists" "hsm init again says the token exists"
expect_not_in "created" "hsm init again does not claim to create it"
expect_exit 0 "hsm init again with no PINs at all (nothing to create)" smki hsm init
expect_in "exists" "hsm init without PINs reports the existing token"

expect_exit 0 "hsm info" smki hsm info
expect_in "Token '$TOKEN'" "hsm info names the token"
expect_exit 0 "hsm info --json" smki --json hsm info
expect_json "hsm info --json is JSON with ok and the token label" \
    "d['ok'] is True and d['token']['label'] == '$TOKEN' and d['token']['user_pin_set'] is True"

# ---- key generate -------------------------------------------------------------------------
SMKI_PIN=$PIN expect_exit 0 "key generate ds" smki key generate --label sup-ds --usage ds
DS_URI=$(grep -m1 '^pkcs11:' <<<"$OUT" || true)
check "key generate ds prints a pkcs11: URI naming the token and the key ($DS_URI)" \
    grep -q "^pkcs11:.*token=$TOKEN.*object=sup-ds" <<<"$DS_URI"
SMKI_PIN=$PIN expect_exit 0 "key generate ka" smki key generate --label sup-ka --usage ka
KA_URI=$(grep -m1 '^pkcs11:' <<<"$OUT" || true)
check "key generate ka prints a pkcs11: URI naming the token and the key ($KA_URI)" \
    grep -q "^pkcs11:.*token=$TOKEN.*object=sup-ka" <<<"$KA_URI"

SMKI_PIN=$PIN expect_exit 2 "key generate with a label already on the token is refused" \
    smki key generate --label sup-ds --usage ka
expect_in "sup-ds" "the refusal names the label"
SMKI_PIN=$PIN expect_exit 1 "key generate --usage xy is a usage error" smki key generate --label k3 --usage xy
expect_in "'xy'" "the bad usage is quoted"
SMKI_PIN=$PIN expect_exit 1 "key generate without --usage is a usage error" smki key generate --label k3
expect_exit 1 "key generate without a PIN" smki key generate --label k3 --usage ds
expect_in "SMKI_PIN" "the missing PIN is named (SMKI_PIN)"
expect_exit 1 "--pin on the command line is refused as an unknown option" \
    smki key generate --label k3 --usage ds --pin 1234
expect_in "--pin" "the refused --pin option is named"
SMKI_PIN=$PIN expect_exit 1 "an empty key label is a usage error" smki key generate --label '' --usage ds

# ---- key list ------------------------------------------------------------------------------
SMKI_PIN=$PIN expect_exit 0 "key list" smki key list
check "key list shows sup-ds as a ds key" grep -Eq '^sup-ds +ds ' <<<"$OUT"
check "key list shows sup-ka as a ka key" grep -Eq '^sup-ka +ka ' <<<"$OUT"
SMKI_PIN=$PIN expect_exit 0 "key list --json" smki --json key list
expect_json "key list --json is JSON with exactly the 2 keys and their usages" \
    "d['ok'] is True and sorted((k['label'], k['usage']) for k in d['keys']) == [('sup-ds', 'ds'), ('sup-ka', 'ka')]"
printf '%s\n' "$PIN" >"$W/user.pin"
chmod 600 "$W/user.pin"
expect_exit 0 "key list with --pin-file" smki --pin-file "$W/user.pin" key list
expect_in "sup-ds" "key list with --pin-file shows the keys"
expect_exit 1 "key list without a PIN" smki key list
expect_in "SMKI_PIN" "key list without a PIN names SMKI_PIN"

# ---- key pub --------------------------------------------------------------------------------
SMKI_PIN=$PIN expect_exit 0 "key pub by label" smki key pub sup-ds
printf '%s\n' "$OUT" >"$W/pub-label.pem"
expect_in "-----BEGIN PUBLIC KEY-----" "key pub prints a PEM public key"
SMKI_PIN=$PIN expect_exit 0 "key pub by URI" smki key pub "$DS_URI"
printf '%s\n' "$OUT" >"$W/pub-uri.pem"
check "key pub by label and by URI give the same key" cmp -s "$W/pub-label.pem" "$W/pub-uri.pem"
SMKI_PIN=$PIN expect_exit 0 "key pub --out FILE" smki key pub sup-ds --out "$W/pub.pem"
check "key pub --out wrote the same key" cmp -s "$W/pub-label.pem" "$W/pub.pem"
run openssl pkey -pubin -in "$W/pub.pem" -text -noout
if [[ $RC == 0 && $OUT == *"ASN1 OID: prime256v1"* ]]; then
    ok "openssl pkey reads the public key as prime256v1"
else
    not_ok "openssl pkey reads the public key as prime256v1"
    diag
fi
SMKI_PIN=$PIN expect_exit 0 "key pub of the ka key" smki key pub sup-ka --out "$W/pub-ka.pem"
SMKI_PIN=$PIN expect_exit 2 "key pub of a label not on the token" smki key pub no-such-key
expect_in "no-such-key" "the missing key is named"

# ---- An independent look into the token: the private keys stay inside ---------------------
P11=(pkcs11-tool --module "$SOFTHSM" --token-label "$TOKEN" --login --pin "$PIN")
P11TOOL=(p11tool --provider "$SOFTHSM" --login)
# Controls: the same tools do read the public halves, and they are the keys smki shows.
SOFTHSM2_CONF=$SOFTHSM_CONF expect_exit 0 "pkcs11-tool --read-object reads the public key sup-ds (control)" \
    "${P11[@]}" --read-object --type pubkey --label sup-ds -o "$W/p11-pub.der"
openssl pkey -pubin -inform DER -in "$W/p11-pub.der" -out "$W/p11-pub.pem" 2>/dev/null || true
check "pkcs11-tool's public key of sup-ds is the one smki key pub gives" cmp -s "$W/p11-pub.pem" "$W/pub.pem"
SOFTHSM2_CONF=$SOFTHSM_CONF GNUTLS_PIN=$PIN expect_exit 0 "p11tool --export exports the public key sup-ds (control)" \
    "${P11TOOL[@]}" --export "pkcs11:token=$TOKEN;object=sup-ds;type=public"
printf '%s\n' "$OUT" | openssl pkey -pubin -out "$W/p11tool-pub.pem" 2>/dev/null || true
check "p11tool's public key of sup-ds is the one smki key pub gives" cmp -s "$W/p11tool-pub.pem" "$W/pub.pem"
for label in sup-ds sup-ka; do
    # pkcs11-tool exits 0 and prints "sorry, reading private keys not (yet) supported":
    # what counts is that no key material comes out.
    SOFTHSM2_CONF=$SOFTHSM_CONF run "${P11[@]}" --read-object --type privkey --label "$label" -o "$W/$label.priv"
    if [[ ! -s $W/$label.priv && $OUT != *"BEGIN"* ]]; then
        ok "pkcs11-tool --read-object cannot read the private key $label"
    else
        not_ok "pkcs11-tool --read-object cannot read the private key $label"
        diag
    fi
    # GnuTLS's p11tool does ask the token for CKA_VALUE, which SoftHSM refuses for a
    # sensitive key.
    SOFTHSM2_CONF=$SOFTHSM_CONF GNUTLS_PIN=$PIN expect_exit 1 "p11tool --export cannot export the private key $label" \
        "${P11TOOL[@]}" --export "pkcs11:token=$TOKEN;object=$label;type=private"
    expect_not_in "BEGIN" "p11tool printed no key material for $label"
done
SOFTHSM2_CONF=$SOFTHSM_CONF run "${P11[@]}" --list-objects --type privkey
printf '%s\n' "$OUT" >"$W/objects.txt"
# The Access and Usage lines of the private key object with a given label.
priv_attr() {
    awk -v want="$1" -v what="$2" '
        /^Private Key Object/ { inkey = 1; label = ""; next }
        /^[A-Z]/ { inkey = 0 }
        inkey && $1 == "label:" { label = $2 }
        inkey && label == want && $1 == what { sub(/^ *[A-Za-z]+: */, ""); print }' "$W/objects.txt"
}
for label in sup-ds sup-ka; do
    access=$(priv_attr "$label" "Access:")
    # Items of "sensitive, always sensitive, never extractable, local": a bare
    # "extractable" would mean CKA_EXTRACTABLE is true.
    items=$(tr ',' '\n' <<<"$access" | sed 's/^ *//; s/ *$//')
    if grep -qx "sensitive" <<<"$items" && grep -qx "always sensitive" <<<"$items" &&
        grep -qx "never extractable" <<<"$items" && ! grep -qx "extractable" <<<"$items"; then
        ok "pkcs11-tool shows $label as sensitive, always sensitive, never extractable ($access)"
    else
        not_ok "pkcs11-tool shows $label as sensitive, always sensitive, never extractable (Access: '$access')"
        sed 's/^/#   /' "$W/objects.txt"
    fi
done
usage_ds=$(priv_attr sup-ds "Usage:")
usage_ka=$(priv_attr sup-ka "Usage:")
check "the ds private key may sign and not derive (Usage: $usage_ds)" \
    bash -c '[[ $1 == *sign* && $1 != *derive* ]]' _ "$usage_ds"
check "the ka private key may derive and not sign (Usage: $usage_ka)" \
    bash -c '[[ $1 == *derive* && $1 != *sign* ]]' _ "$usage_ka"

# ---- sign / verify -----------------------------------------------------------------------------
head -c 4099 /dev/urandom >"$W/msg.bin"
cp "$W/msg.bin" "$W/msg-tampered.bin"
printf 'x' >>"$W/msg-tampered.bin"

SMKI_PIN=$PIN expect_exit 0 "sign (DER by default) with a token key" \
    smki sign --key sup-ds --in "$W/msg.bin" --out "$W/msg.der.sig"
run openssl dgst -sha256 -verify "$W/pub.pem" -signature "$W/msg.der.sig" "$W/msg.bin"
expect_in "Verified OK" "openssl dgst -verify says Verified OK for the DER signature"
expect_exit 0 "smki verify --pub accepts the DER signature" \
    smki verify --pub "$W/pub.pem" --in "$W/msg.bin" --sig "$W/msg.der.sig"
expect_exit 0 "smki verify --pub --der accepts it" \
    smki verify --pub "$W/pub.pem" --in "$W/msg.bin" --sig "$W/msg.der.sig" --der

SMKI_PIN=$PIN expect_exit 0 "sign --raw by URI" smki sign --key "$DS_URI" --in "$W/msg.bin" --out "$W/msg.raw.sig" --raw
check "the raw signature is 64 octets" test "$(stat -c %s "$W/msg.raw.sig")" -eq 64
expect_exit 0 "smki verify takes 64 octets as raw r||s" \
    smki verify --pub "$W/pub.pem" --in "$W/msg.bin" --sig "$W/msg.raw.sig"
expect_exit 0 "smki verify --raw" smki verify --pub "$W/pub.pem" --in "$W/msg.bin" --sig "$W/msg.raw.sig" --raw

expect_exit 2 "a tampered file does not verify (DER)" \
    smki verify --pub "$W/pub.pem" --in "$W/msg-tampered.bin" --sig "$W/msg.der.sig"
expect_in "NOT verified" "the tampered file is reported NOT verified"
expect_exit 2 "a tampered file does not verify (raw)" \
    smki verify --pub "$W/pub.pem" --in "$W/msg-tampered.bin" --sig "$W/msg.raw.sig"
expect_in "NOT verified" "the tampered file is reported NOT verified (raw)"
# Flip the last octet: still well-formed, part of s, so it must be a clean "NOT verified".
flip_last() { "$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[2], "wb").write(b)' "$1" "$2"; }
flip_last "$W/msg.raw.sig" "$W/bad.raw.sig"
flip_last "$W/msg.der.sig" "$W/bad.der.sig"
expect_exit 2 "a tampered raw signature does not verify" \
    smki verify --pub "$W/pub.pem" --in "$W/msg.bin" --sig "$W/bad.raw.sig"
expect_in "NOT verified" "the tampered raw signature is reported NOT verified"
expect_exit 2 "a tampered DER signature does not verify" \
    smki verify --pub "$W/pub.pem" --in "$W/msg.bin" --sig "$W/bad.der.sig"
expect_in "NOT verified" "the tampered DER signature is reported NOT verified"
expect_exit 2 "verify with the wrong public key (the ka key's)" \
    smki verify --pub "$W/pub-ka.pem" --in "$W/msg.bin" --sig "$W/msg.der.sig"
expect_in "NOT verified" "the wrong public key is reported NOT verified"
expect_exit 2 "verify --json of a tampered file" \
    smki --json verify --pub "$W/pub.pem" --in "$W/msg-tampered.bin" --sig "$W/msg.der.sig"
expect_json "verify --json says verified false" "d['ok'] is False and d['verified'] is False"

expect_exit 1 "sign without --out is a usage error" smki sign --key sup-ds --in "$W/msg.bin"
expect_exit 1 "verify with both --pub and --cert is a usage error" \
    smki verify --pub "$W/pub.pem" --cert "$KEYSTORE/90b3d51f30010000-ds.pem" --in "$W/msg.bin" --sig "$W/msg.der.sig"
# Signing with a token key needs the PIN; its absence is the same usage error as for
# every other command that needs it.
expect_exit 1 "sign with a token key and no PIN" \
    smki sign --key sup-ds --in "$W/msg.bin" --out "$W/nopin.sig"
expect_in "SMKI_PIN" "sign without a PIN names SMKI_PIN"
# SMKI keeps signing and key agreement apart: a ka key may not sign. That is a refusal
# (exit 2), not an internal or HSM failure.
SMKI_PIN=$PIN expect_exit 2 "sign with a key-agreement key is refused" \
    smki sign --key sup-ka --in "$W/msg.bin" --out "$W/ka.sig"
expect_in "sup-ka" "the refusal names the ka key"
check "no signature file is left by the refused ka signing" test ! -e "$W/ka.sig"

# A software key and a real certificate from the shared vectors.
SMKI_PIN=$PIN expect_exit 0 "sign with a file: software key" \
    smki sign --key "file:$KEYSTORE/90b3d51f30010000-ds.key" --in "$W/msg.bin" --out "$W/file.sig"
expect_exit 0 "verify --cert with the key's own certificate" \
    smki verify --cert "$KEYSTORE/90b3d51f30010000-ds.pem" --in "$W/msg.bin" --sig "$W/file.sig"
expect_exit 2 "verify --cert with the same party's ka certificate" \
    smki verify --cert "$KEYSTORE/90b3d51f30010000-ka.pem" --in "$W/msg.bin" --sig "$W/file.sig"
expect_in "NOT verified" "the wrong certificate is reported NOT verified"
openssl x509 -in "$KEYSTORE/90b3d51f30010000-ds.pem" -noout -pubkey >"$W/cert-pub.pem" 2>/dev/null || true
run openssl dgst -sha256 -verify "$W/cert-pub.pem" -signature "$W/file.sig" "$W/msg.bin"
expect_in "Verified OK" "openssl verifies the software key's signature with the certificate's key"

# ---- Python cross-check: python3-cryptography verifies a token key's raw r||s ----------------
cat >"$W/xcheck.py" <<'PYTHON'
import sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

pub_path, msg_path, sig_path, bad_path = sys.argv[1:5]
pub = serialization.load_pem_public_key(open(pub_path, "rb").read())
assert isinstance(pub.curve, ec.SECP256R1), pub.curve.name
raw = open(sig_path, "rb").read()
assert len(raw) == 64, len(raw)
der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
pub.verify(der, open(msg_path, "rb").read(), ec.ECDSA(hashes.SHA256()))
try:
    pub.verify(der, open(bad_path, "rb").read(), ec.ECDSA(hashes.SHA256()))
except InvalidSignature:
    print("python: raw r||s verified; tampered file rejected")
else:
    sys.exit("python: the tampered file verified too")
PYTHON
run "$PY" "$W/xcheck.py" "$W/pub.pem" "$W/msg.bin" "$W/msg.raw.sig" "$W/msg-tampered.bin"
if [[ $RC == 0 && $OUT == *"raw r||s verified"* ]]; then
    ok "python3-cryptography verifies the token's raw r||s signature (and rejects a tampered file)"
else
    not_ok "python3-cryptography verifies the token's raw r||s signature (and rejects a tampered file)"
    diag
fi

# ---- Wrong PIN -------------------------------------------------------------------------------
SMKI_PIN=0000 expect_exit 2 "sign with a wrong PIN is refused" \
    smki sign --key sup-ds --in "$W/msg.bin" --out "$W/wrongpin.sig"
expect_in "CKR_PIN_INCORRECT" "the wrong PIN is reported as CKR_PIN_INCORRECT"
expect_in "'$TOKEN'" "the wrong-PIN message names the token"
check "no signature file is left after a wrong PIN" test ! -e "$W/wrongpin.sig"
SMKI_PIN=0000 expect_exit 2 "key list --json with a wrong PIN" smki --json key list
expect_json "the --json error is JSON with ok=false, error.code and exit 2" \
    "d['ok'] is False and isinstance(d['error']['code'], str) and d['error']['code'] != '' and 'CKR_PIN_INCORRECT' in d['error']['message'] and d['error']['exit'] == 2"
SMKI_PIN=$PIN expect_exit 0 "the right PIN still works after wrong ones" smki key list

# ---- A failing device, through the fault-injecting shim --------------------------------------
# A second home whose [hsm] module is the shim. smki prepares no SoftHSM folder for a
# configured module, so SoftHSM is pointed at the first home's token with SOFTHSM2_CONF.
SHIM_HOME=$ROOT/shim-home
mkdir -p "$SHIM_HOME"
printf '[hsm]\nmodule = %s\ntoken = %s\n' "$SMKI_SHIM_PATH" "$TOKEN" >"$SHIM_HOME/smki.conf"
shim() { SOFTHSM2_CONF=$SOFTHSM_CONF SMKI_PIN=$PIN timeout 30 "$SMKI_BIN" --home "$SHIM_HOME" "$@"; }

expect_exit 0 "through the shim with no fault, signing works (control)" \
    shim sign --key sup-ds --in "$W/msg.bin" --out "$W/shim-ok.sig"
expect_exit 0 "the control signature verifies" smki verify --pub "$W/pub.pem" --in "$W/msg.bin" --sig "$W/shim-ok.sig"
SMKI_SHIM_FAIL=C_Sign expect_exit 3 "C_Sign failing with CKR_DEVICE_ERROR is an HSM error" \
    shim sign --key sup-ds --in "$W/msg.bin" --out "$W/shim-fail.sig"
check "the failing signing did not hang (timeout 30)" test "$RC" -ne 124
expect_in "'$TOKEN'" "the device failure names the token"
expect_in "signing" "the device failure says it was signing"
check "no signature file is left by the failed signing" test ! -e "$W/shim-fail.sig"
SMKI_SHIM_FAIL=C_Sign expect_exit 3 "C_Sign failing, with --json" \
    shim --json sign --key sup-ds --in "$W/msg.bin" --out "$W/shim-fail.sig"
expect_json "the --json HSM error is JSON with ok=false, error.code and exit 3" \
    "d['ok'] is False and d['error']['code'] != '' and d['error']['exit'] == 3"
SMKI_SHIM_FAIL=C_Login expect_exit 3 "C_Login failing with CKR_DEVICE_ERROR is an HSM error" \
    shim sign --key sup-ds --in "$W/msg.bin" --out "$W/shim-fail.sig"
expect_in "'$TOKEN'" "the login failure names the token"
expect_in "CKR_DEVICE_ERROR" "the login failure names the device's error (CKR_DEVICE_ERROR)"
SMKI_SHIM_FAIL=C_GenerateKeyPair expect_exit 3 "C_GenerateKeyPair failing is an HSM error" \
    shim key generate --label shim-k --usage ds
expect_in "CKR_DEVICE_ERROR" "the key generation failure names CKR_DEVICE_ERROR"
SMKI_PIN=$PIN expect_exit 0 "key list after the failed generation" smki --json key list
expect_json "the failed generation left no key behind" "sorted(k['label'] for k in d['keys']) == ['sup-ds', 'sup-ka']"

# ---- eui64 ------------------------------------------------------------------------------------
for id in 90-B3-D5-1F-30-01-00-00 90B3D51F30010000 90:b3:d5:1f:30:01:00:00; do
    expect_exit 0 "eui64 parse accepts $id" smki eui64 parse "$id"
    expect_in "90-B3-D5-1F-30-01-00-00" "eui64 parse $id prints the hyphen form"
done
expect_exit 1 "eui64 parse refuses 90-B3-D5" smki eui64 parse 90-B3-D5
expect_in '"90-B3-D5"' "the refused EUI-64 is quoted"
expect_exit 1 "eui64 parse refuses 17 hex digits" smki eui64 parse 90B3D51F300100000
expect_exit 0 "90B3D51F30010000 is in 90B3D51F3/36" smki eui64 parse 90B3D51F30010000 --range 90B3D51F3/36
expect_in "is in" "eui64 parse --range says it is in the range"
expect_exit 2 "00DB1234567890A0 is not in 90B3D51F3/36" smki eui64 parse 00DB1234567890A0 --range 90B3D51F3/36
expect_in "NOT in" "eui64 parse --range says it is NOT in the range"
expect_exit 0 "eui64 range 90B3D51F3/36" smki eui64 range 90B3D51F3/36
expect_in "268435456" "the MA-S block holds 268435456 IDs"
expect_exit 0 "eui64 range --json" smki --json eui64 range 90B3D51F3/36
expect_json "eui64 range --json gives size 268435456 and kind MA-S" "d['size'] == 268435456 and d['kind'] == 'MA-S'"
expect_exit 1 "eui64 range with prefix length 37" smki eui64 range 90B3D51F3/37
expect_exit 0 "eui64 range --nth of the last ID" smki eui64 range 90B3D51F3/36 --nth 268435455
expect_in "90-B3-D5-1F-3F-FF-FF-FF" "the last ID of the block"
expect_exit 2 "eui64 range --nth past the block" smki eui64 range 90B3D51F3/36 --nth 268435456

# ---- File-key errors ----------------------------------------------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$W/p384.key" 2>/dev/null
expect_exit 2 "a P-384 file key is refused" smki sign --key "file:$W/p384.key" --in "$W/msg.bin" --out "$W/p384.sig"
expect_in "secp384r1" "the refusal names the curve"
expect_exit 2 "a missing key file" smki sign --key "file:$W/no-such.key" --in "$W/msg.bin" --out "$W/x.sig"
expect_in "$W/no-such.key" "the missing key file is named"
expect_exit 2 "a key file that is not a key" smki sign --key "file:$W/msg.bin" --in "$W/msg.bin" --out "$W/x.sig"
expect_in "$W/msg.bin" "the bad key file is named"
# A bare key name is a label on the home's token: a key file given without file: is
# refused with the way to write it, not looked up as a label ("no private key 'k.pem'").
cp "$KEYSTORE/90b3d51f30010000-ds.key" "$W/k.pem"
pushd "$W" >/dev/null
expect_exit 1 "sign --key k.pem (a file, no file:) is refused" smki sign --key k.pem --in msg.bin --out k.sig
expect_in "write file:k.pem" "the refusal says to write file:k.pem"
expect_not_in "no private key" "the file is not looked up as a token label"
expect_exit 1 "key pub of a file path without file: is refused" smki key pub "$W/k.pem"
expect_in "write file:$W/k.pem" "the refusal says to write file:PATH"
expect_exit 0 "sign --key file:k.pem signs" smki sign --key file:k.pem --in msg.bin --out k.sig
popd >/dev/null
expect_exit 2 "a missing input file" \
    smki sign --key "file:$KEYSTORE/90b3d51f30010000-ds.key" --in "$W/no-such.bin" --out "$W/x.sig"
expect_in "$W/no-such.bin" "the missing input file is named"
openssl pkey -in "$W/p384.key" -pubout -out "$W/p384.pub" 2>/dev/null
expect_exit 2 "verify with a P-384 public key is refused" \
    smki verify --pub "$W/p384.pub" --in "$W/msg.bin" --sig "$W/msg.der.sig"
expect_in "secp384r1" "the P-384 public key's curve is named"

# A misspelt key in the home's configuration is refused, naming file and line,
# rather than silently falling back to a default token or folder.
TYPO_HOME=$ROOT/typo-home
mkdir -p "$TYPO_HOME"
printf '[hsm]\ntoken = x\ntokne = y\n' >"$TYPO_HOME/smki.conf"
expect_exit 1 "a misspelt [hsm] key in smki.conf is a usage error" smki --home "$TYPO_HOME" key list
expect_in "smki.conf:3: unknown setting 'tokne' under [hsm] (did you mean 'token'?)" "the typo is named with its line"

# [hsm] key_copy: off signs with the token object (auto, the default, with a session
# copy inside the token: every signature above); anything else is refused, naming it.
KC_HOME=$ROOT/key-copy-home
mkdir -p "$KC_HOME"
printf '[hsm]\ntoken = %s\nsofthsm_dir = %s\nkey_copy = off\n' "$TOKEN" "$HOME_DIR/hsm" >"$KC_HOME/smki.conf"
SMKI_PIN=$PIN expect_exit 0 "sign with key_copy = off in smki.conf" \
    smki --home "$KC_HOME" sign --key sup-ds --in "$W/msg.bin" --out "$W/kc-off.sig"
run openssl dgst -sha256 -verify "$W/pub.pem" -signature "$W/kc-off.sig" "$W/msg.bin"
expect_in "Verified OK" "openssl verifies the signature made with key_copy = off"
SMKI_PIN=$PIN SMKI_HSM_KEY_COPY=off expect_exit 0 "sign with SMKI_HSM_KEY_COPY=off" \
    smki sign --key sup-ds --in "$W/msg.bin" --out "$W/kc-env.sig" --raw
expect_exit 0 "the SMKI_HSM_KEY_COPY=off signature verifies" \
    smki verify --pub "$W/pub.pem" --in "$W/msg.bin" --sig "$W/kc-env.sig" --raw
printf '[hsm]\ntoken = %s\nsofthsm_dir = %s\nkey_copy = sometimes\n' "$TOKEN" "$HOME_DIR/hsm" >"$KC_HOME/smki.conf"
SMKI_PIN=$PIN expect_exit 1 "key_copy = sometimes in smki.conf is a usage error" \
    smki --home "$KC_HOME" sign --key sup-ds --in "$W/msg.bin" --out "$W/kc-bad.sig"
expect_in "[hsm] key_copy must be auto or off, not 'sometimes'" "the bad key_copy is named"
check "no signature file is left by the refused key_copy" test ! -e "$W/kc-bad.sig"
SMKI_PIN=$PIN SMKI_HSM_KEY_COPY=never expect_exit 1 "SMKI_HSM_KEY_COPY=never is a usage error" \
    smki sign --key sup-ds --in "$W/msg.bin" --out "$W/kc-bad.sig"
expect_in "SMKI_HSM_KEY_COPY must be auto or off, not 'never'" "the bad SMKI_HSM_KEY_COPY is named"

finish
