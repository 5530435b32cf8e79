#!/usr/bin/env bash
# smki duis from the outside: the DCC's signed vectors verify (with the DUIS schema);
# every RTDS request smki signs (file key, and a pkcs11: key in SoftHSM) verifies with
# smki and independently with the xmlsec1 command-line tool; refusals with their exit
# codes and nothing written; `smki gbcs sign --request` correlates; smki's own CA issues
# an xmlSign certificate that lints clean, signs, verifies from a running repository
# (--repo) and is refused once revoked (--crl).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
PY=/usr/bin/python3
TIMEOUT=60
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
PIN=user-2468
SO_PIN=so-13579753
HERE=$(cd "$(dirname "$0")" && pwd)
DUIS=$SMKI_SHARED/vectors/duis
KS=$DUIS/keystore
RTDS=$SMKI_SHARED/vectors/gbcs/rtds
GKS=$SMKI_SHARED/vectors/gbcs/keystore
SUP=90b3d51f30010000-xmlsign
NO=90b3d51f30020000-xmlsign
AT=2020-01-01T00:00:00Z
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-duis.XXXXXX")
source "$HERE/lib.sh"
repo_cleanup_trap

unset SMKI_PIN SMKI_SO_PIN SMKI_DEBUG SOFTHSM2_CONF
export SMKI_HOME=$W/home
mkdir -p "$W/signed"

check "xmlsec1 is installed (apt-get install xmlsec1)" command -v xmlsec1

# ---- The DCC's vectors ---------------------------------------------------------------------
expect_exit 0 "the signed vectors and the DSP-signed response verify, with the DUIS schema" \
    smki duis verify --trust "$KS" --schema "$DUIS/schema" --at "$AT" "$DUIS"/signed/*.XML "$DUIS"/responses/*.XML
expect_in "4 passed, 0 failed" "all four pass"
expect_exit 0 "the response with --dcc, the DCC's EUI-64" \
    smki duis verify --trust "$KS" --dcc 90-B3-D5-1F-30-00-00-02 --at "$AT" "$DUIS"/responses/*.XML
expect_exit 2 "the response with --dcc of another" \
    smki duis verify --trust "$KS" --dcc 90-B3-D5-1F-30-00-00-04 --at "$AT" "$DUIS"/responses/*.XML
expect_in "is not the DCC 90-B3-D5-1F-30-00-00-04" "named"
expect_exit 0 "--json" smki --json duis verify --trust "$KS" --at "$AT" "$DUIS"/responses/*.XML
expect_json "JSON names the DSP xmlSign signer" \
    'd["ok"] and d["passed"] == 1 and d["results"][0]["signer_role"] == "89" and d["results"][0]["kind"] == "response"'

# ---- Sign every request whose originator has an xmlSign key; verify with smki and xmlsec1 --
n=0
for f in "$DUIS"/requests/*.XML; do
    orig=$(sed -n 's/.*<sr:RequestID>\([0-9A-F-]*\):.*/\1/p' "$f" | head -1 | tr -d '-' | tr 'A-F' 'a-f')
    [[ -f $KS/$orig-xmlsign.key ]] || continue
    out=$W/signed/$(basename "$f")
    run smki duis sign --key "file:$KS/$orig-xmlsign.key" --cert "$KS/$orig-xmlsign.pem" --in "$f" --out "$out"
    if [[ $RC != 0 ]]; then
        not_ok "sign $(basename "$f")"
        diag
        continue
    fi
    n=$((n + 1))
    if ! xmlsec1 --verify --pubkey-cert-pem "$KS/$orig-xmlsign.pem" "$out" >"$W/.x" 2>&1; then
        not_ok "xmlsec1 verifies smki's signature of $(basename "$f")"
        sed 's/^/#   /' "$W/.x" | head -10
    fi
done
check "27 RTDS requests signed (CS08's originator has no xmlSign key)" test "$n" -eq 27
ok "xmlsec1 verified every signature smki made (failures listed above)"
expect_exit 0 "smki verifies all it signed, with the schema" \
    smki duis verify --trust "$KS" --schema "$DUIS/schema" "$W"/signed/*.XML
expect_in "27 passed, 0 failed" "27 pass"

# ---- The same with the key in a token (pkcs11: URI) ----------------------------------------
SMKI_SO_PIN=$SO_PIN SMKI_PIN=$PIN expect_exit 0 "hsm init" smki hsm init
export SOFTHSM2_CONF=$SMKI_HOME/hsm/softhsm2.conf
openssl pkey -in "$KS/$SUP.key" -outform DER -out "$W/sup.der" 2>/dev/null
openssl pkey -in "$KS/$SUP.key" -pubout -outform DER -out "$W/sup-pub.der" 2>/dev/null
check "import the xmlSign key into the token" pkcs11-tool --module "$SOFTHSM" --login --pin "$PIN" \
    --token-label smki --write-object "$W/sup.der" --type privkey --usage-sign --label xmlsign --id b1
check "import its public key" pkcs11-tool --module "$SOFTHSM" --login --pin "$PIN" \
    --token-label smki --write-object "$W/sup-pub.der" --type pubkey --label xmlsign --id b1
REQ=$DUIS/requests/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_REQUEST_DUIS.XML
SMKI_PIN=$PIN expect_exit 0 "sign with a pkcs11: URI" \
    smki duis sign --key "pkcs11:token=smki;object=xmlsign" --cert "$KS/$SUP.pem" --in "$REQ" --out "$W/token.xml"
check "xmlsec1 verifies the token's signature" xmlsec1 --verify --pubkey-cert-pem "$KS/$SUP.pem" "$W/token.xml"
expect_exit 0 "smki verifies it" smki duis verify --trust "$KS" "$W/token.xml"

# ---- Refusals: exit 2, nothing written -------------------------------------------------------
refuse_sign() {
    local desc=$1 needle=$2
    shift 2
    rm -f "$W/refused.xml"
    expect_exit 2 "sign refused: $desc" smki duis sign --in "$REQ" --out "$W/refused.xml" "$@"
    expect_in "$needle" "the refusal names it: $desc"
    check "nothing written: $desc" test ! -e "$W/refused.xml"
}
refuse_sign "another User's certificate" "business originator" --key "file:$KS/$NO.key" --cert "$KS/$NO.pem"
refuse_sign "DSP xmlSign for a Request" "role 87" \
    --key "file:$KS/90b3d51f30000002-dspxmlsign.key" --cert "$KS/90b3d51f30000002-dspxmlsign.pem"
refuse_sign "a GBCS DS certificate" "Remote Party Role 02" \
    --key "file:$GKS/90b3d51f30010000-ds.key" --cert "$GKS/90b3d51f30010000-ds.pem"
refuse_sign "a key that is not the certificate's" "not the certificate's key" \
    --key "file:$KS/$NO.key" --cert "$KS/$SUP.pem"
refuse_sign "outside the validity" "not valid at" --key "file:$KS/$SUP.key" --cert "$KS/$SUP.pem" --at 2200-01-01
printf '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<r>&x;</r>\n' >"$W/xxe.xml"
expect_exit 2 "sign refuses XXE" smki duis sign --key "file:$KS/$SUP.key" --cert "$KS/$SUP.pem" --in "$W/xxe.xml" --out "$W/refused.xml"
expect_in "DOCTYPE" "named: DOCTYPE"

sed 's/<sr:CurrencyUnits>GBP/<sr:CurrencyUnits>EUR/' "$W/token.xml" >"$W/changed.xml"
cp "$W/xxe.xml" "$W/changed2.xml"
expect_exit 2 "verify: one file changed, one hostile, one good" \
    smki duis verify --trust "$KS" "$W/changed.xml" "$W/xxe.xml" "$W/token.xml"
expect_in "FAIL $W/changed.xml: the Reference digest does not match" "the change is named"
expect_in "FAIL $W/xxe.xml: document has a DOCTYPE" "the DTD is named"
expect_in "1 passed, 2 failed" "the count"
check_fails "xmlsec1 refuses the changed file too" xmlsec1 --verify --pubkey-cert-pem "$KS/$SUP.pem" "$W/changed.xml"
expect_exit 1 "verify needs --trust or --repo" smki duis verify "$W/token.xml"

# ---- gbcs sign --request: the pre-command is correlated first ---------------------------------
PRE=$RTDS/1.1.1_ECS01a/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX
OTHER=$RTDS/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_PRECOMMAND_GBCS.HEX
expect_exit 0 "gbcs sign --request: the matching pre-command is signed" \
    smki gbcs sign --key "file:$GKS/90b3d51f30010000-ds.key" --cert "$GKS/90b3d51f30010000-ds.pem" --in "$PRE" \
    --out "$W/pre.hex" --request "$W/token.xml" --request-trust "$KS"
expect_exit 2 "gbcs sign --request: another pre-command is refused" \
    smki gbcs sign --key "file:$GKS/90b3d51f30010000-ds.key" --cert "$GKS/90b3d51f30010000-ds.pem" --in "$OTHER" \
    --out "$W/other.hex" --request "$W/token.xml" --request-trust "$KS"
expect_in "counter: the request says 1008, the pre-command holds 1006" "named: the counter"
check "nothing written for it" test ! -e "$W/other.hex"
expect_exit 0 "gbcs sign --request: the DCC's own signed request and its RTDS pre-command correlate" \
    smki gbcs sign --key "file:$GKS/90b3d51f30010000-ds.key" --cert "$GKS/90b3d51f30010000-ds.pem" \
    --in "$RTDS/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX" --out "$W/dcc.hex" \
    --request "$DUIS/signed/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS_SIGNED.XML" --request-trust "$KS"
expect_exit 2 "gbcs sign --request: a changed request is refused" \
    smki gbcs sign --key "file:$GKS/90b3d51f30010000-ds.key" --cert "$GKS/90b3d51f30010000-ds.pem" --in "$PRE" \
    --out "$W/other.hex" --request "$W/changed.xml" --request-trust "$KS"

# ---- smki's CA: an xmlSign certificate, from the repository, revoked -----------------------
repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf.ca"
cat "$SMKI_HOME/smki.conf.ca" >>"$SMKI_HOME/smki.conf"
expect_exit 0 "the test hierarchy from software keys" smki ca init --env test --config "$SMKI_HOME/smki.conf"
ra_test_participant "$SMKI_HOME"
expect_exit 0 "GITTEST authorised for xmlSign" \
    smki ra subscriber authorise --party GITTEST --type organisation --role xmlSign --env test
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/xs.key" -subj "/CN=x" \
    -addext "keyUsage=critical,digitalSignature" -out "$W/xs.csr" 2>/dev/null
expect_exit 0 "an xmlSign certificate from smki's CA" smki ca issue --env test --party GITTEST --csr "$W/xs.csr" \
    --role xmlSign --eui 90-B3-D5-1F-30-01-00-00 --out "$W/xs.pem"
expect_exit 0 "it lints clean" smki lint "$W/xs.pem"
expect_exit 0 "sign a request with it" \
    smki duis sign --key "file:$W/xs.key" --cert "$W/xs.pem" --in "$REQ" --out "$W/own.xml"
check "xmlsec1 verifies it" xmlsec1 --verify --pubkey-cert-pem "$W/xs.pem" "$W/own.xml"
start_server "$W/serve.log" --env test --listen 127.0.0.1:0 || true
expect_exit 0 "verify with the signer fetched from the repository" \
    smki duis verify --repo "http://127.0.0.1:$PORT" "$W/own.xml"
expect_in "1 passed, 0 failed" "from the repository"
stop_servers_and_check_logs "$W/serve.log"
SERIAL=$(openssl x509 -in "$W/xs.pem" -noout -serial | cut -d= -f2)
expect_exit 0 "revoked" smki ca revoke --env test "$SERIAL" --reason keyCompromise
expect_exit 0 "the CRLs published" smki ca crl --env test --config "$SMKI_HOME/smki.conf"
mkdir -p "$W/own-trust"
cp "$W/xs.pem" "$W/own-trust/"
CRL=$SMKI_HOME/ca/test/smki-oca.crl
check "the OCA's CRL was written" test -s "$CRL"
expect_exit 2 "a CRL whose issuer is not trusted is refused, not ignored" \
    smki duis verify --trust "$W/own-trust" --crl "$CRL" "$W/own.xml"
expect_in "issuing CA's certificate" "named"
cp "$SMKI_HOME/ca/test/smki-oca.pem" "$W/own-trust/oca.pem" # as 'ca init' wrote it
expect_exit 2 "the revoked signer is refused" smki duis verify --trust "$W/own-trust" --crl "$CRL" "$W/own.xml"
expect_in "revoked" "named: revoked"

finish
