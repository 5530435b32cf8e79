#!/usr/bin/env bash
# The repository demo (tools/demo.sh calls it; it also runs alone): start the SMKI
# Repository on the home's store, fetch an organisation certificate (DCC service and
# REST), search a device's certificates by EUI-64, download the CRL. Uses the home's
# test hierarchy when there is one (SMKI_HOME), else makes a scratch home with
# software CA keys. The server is stopped with SIGTERM at the end (and on any exit).
#   tools/demo_repo.sh [SMKI_BIN]
set -euo pipefail
SMKI=${1:-build/bin/smki}
SHARED=${SMKI_SHARED:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/smki-demo-repo.XXXXXX")
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$SCRATCH"
}
trap cleanup EXIT INT TERM
source "$(dirname "$0")/repo_lib.sh"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

if [ -z "${SMKI_HOME:-}" ] || [ ! -f "$SMKI_HOME/ca/test/smki-root.pem" ]; then
    export SMKI_HOME=$SCRATCH/home
    unset SMKI_PIN SMKI_SO_PIN
    say "A scratch home with a test hierarchy of software keys ($SMKI_HOME)"
    repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf"
    "$SMKI" ca init --env test --config "$SMKI_HOME/smki.conf" | tail -1
    "$SMKI" ca crl --env test --config "$SMKI_HOME/smki.conf" | tail -1
    "$SMKI" ca arl --env test --config "$SMKI_HOME/smki.conf" | tail -1
    "$(dirname "$0")/ra_test_participant.sh" "$SMKI" "$SMKI_HOME" "$SCRATCH/ra"
    export SMKI_OPERATOR=tester SMKI_OPERATOR_KEY=file:$SCRATCH/ra/ra-op.pem
fi
# Test certificates go only to a registered Testing Participant (make demo's home: GITTEST,
# operator demo-ra; a scratch home: the same Party, operator tester).
export SMKI_OPERATOR=${SMKI_OPERATOR:-demo-ra}
if ! "$SMKI" --json ca list --env test --eui 00-DB-12-34-56-78-90-A0 | grep -q '"serial"'; then
    run "$SMKI" ca issue --env test --party GITTEST --csr "$SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der" --out "$SCRATCH/dev.pem"
fi
if ! "$SMKI" --json ca list --env test --eui 90-B3-D5-1F-30-01-00-00 --profile organisation | grep -q '"serial"'; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$SCRATCH/org.key" \
        -subj "/CN=demo" -addext "keyUsage=critical,digitalSignature" -out "$SCRATCH/org.csr" 2>/dev/null
    run "$SMKI" ca issue --env test --party GITTEST --csr "$SCRATCH/org.csr" --role supplier --eui 90-B3-D5-1F-30-01-00-00 \
        --cn GITTESTSUPPLIER --out "$SCRATCH/org.pem"
fi

say "1. Start the SMKI Repository for the test environment (foreground process; JSON logs)"
echo "\$ $SMKI repo serve --env test --listen 127.0.0.1:0 --access-log &"
repo_serve_start "$SMKI" "$SCRATCH/serve.log" --env test --listen 127.0.0.1:0 --access-log ||
    { SERVER=$REPO_PID; cat "$SCRATCH/serve.log"; exit 1; }
SERVER=$REPO_PID
head -1 "$SCRATCH/serve.log"
URL=http://127.0.0.1:$PORT
run curl -s "$URL/health"

say "2. Fetch an organisation certificate: the DCC tool's search and retrieve, then REST"
run curl -s -X POST "$URL/services/certificatesearch?apikey=demo" --data \
    '<?xml version="1.0" encoding="UTF-8"?><CertificateSearchRequest><CertificateSubjectName>90-B3-D5-1F-30-01-00-00</CertificateSubjectName></CertificateSearchRequest>'
ORG_SERIAL=$(curl -s -X POST "$URL/services/certificatesearch" --data \
    '<CertificateSearchRequest><CertificateSubjectName>90-B3-D5-1F-30-01-00-00</CertificateSubjectName></CertificateSearchRequest>' |
    sed -n 's/.*<CertificateSerial>\([0-9A-F]*\)<.*/\1/p' | head -1)
echo
run curl -s -X POST "$URL/services/retrievecertificate" --data \
    "<CertificateDataRequest><CertificateSerial>$ORG_SERIAL</CertificateSerial></CertificateDataRequest>"
echo
run "$SMKI" repo get --url "$URL" "$ORG_SERIAL" --out "$SCRATCH/org.der"
run openssl x509 -inform DER -in "$SCRATCH/org.der" -noout -subject -serial

say "3. Search a device's certificates by EUI-64"
run "$SMKI" repo search --url "$URL" --eui 00-DB-12-34-56-78-90-A0
run curl -s "$URL/certificates?eui=00-DB-12-34-56-78-90-A0&usage=ds"

say "4. Download the CRL as the CA published it"
if run "$SMKI" repo get --url "$URL" --crl smki-dca --out "$SCRATCH/dca.crl"; then
    run openssl crl -inform DER -in "$SCRATCH/dca.crl" -noout -issuer -lastupdate -nextupdate
    run "$SMKI" repo get --url "$URL" --arl --out "$SCRATCH/root.arl"
    run openssl crl -inform DER -in "$SCRATCH/root.arl" -noout -issuer
else
    echo "(No CRL published yet under $SMKI_HOME/ca/test/: the repository answers 404 until the CA publishes one.)"
fi

say "5. Bad input gets a clear 4xx; the server keeps serving"
run curl -s -o /dev/null -w 'DOCTYPE in the XML: HTTP %{http_code}\n' -X POST "$URL/services/certificatesearch" \
    --data '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
run curl -s -o /dev/null -w 'unknown serial: HTTP %{http_code}\n' -X POST "$URL/services/retrievecertificate" \
    --data '<CertificateDataRequest><CertificateSerial>0123456789ABCDEF</CertificateSerial></CertificateDataRequest>'
run curl -s -o /dev/null -w 'bad EUI-64: HTTP %{http_code}\n' "$URL/certificates?eui=00-DB"
run curl -s "$URL/metrics" | grep -E '^smki_repo_(requests_total|certificates)' | head -6

say "6. SIGTERM: a clean stop"
kill -TERM "$SERVER"
wait "$SERVER" && echo "exit 0"
SERVER=
tail -1 "$SCRATCH/serve.log"
