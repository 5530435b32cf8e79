#!/usr/bin/env bash
# smki repo from the outside: a test hierarchy (software keys), certificates issued
# into the store, `smki repo serve` on a free loopback port, and every endpoint and
# every bad input driven by Python's http.client and raw sockets (tests/integration/
# repo_checks.py), curl, and smki repo get/search. CRLs and ARLs as smki ca publishes
# them. TLS with the CA's DCCKI server certificate, mutual TLS with DCCKI client
# certificates and a Party Signifier rule. Servers are stopped on
# every exit path.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
PY=/usr/bin/python3
TIMEOUT=60
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-repo.XXXXXX")
source "$HERE/lib.sh"
repo_cleanup_trap

unset SMKI_PIN SMKI_SO_PIN SMKI_DEBUG SOFTHSM2_CONF
export SMKI_HOME=$W/home
repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf"
expect_exit 0 "the test hierarchy from software keys" smki ca init --env test --config "$SMKI_HOME/smki.conf"
ra_test_participant "$SMKI_HOME" # test certificates go only to a registered Testing Participant
ra_dccki_party "$SMKI_HOME" PS-DCC-REPO PS-SUPPLIER-1 PS-OTHER-2 # and DCCKI TLS ones to an Authorised Subscriber
expect_exit 0 "the RA: a second User ID for GITTEST" smki ra id allocate --party GITTEST --roles EIS --eui 90-B3-D5-1F-30-01-00-01
expect_exit 0 "a device certificate from the real CSR" \
    smki ca issue --env test --party GITTEST --csr "$SMKI_SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der" --der --out "$W/dev.der"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org.key" -subj "/CN=x" \
    -addext "keyUsage=critical,digitalSignature" -out "$W/org.csr" 2>/dev/null
expect_exit 0 "an organisation certificate" smki ca issue --env test --party GITTEST --csr "$W/org.csr" --role supplier \
    --eui 90-B3-D5-1F-30-01-00-00 --cn GITTESTSUPPLIER --der --out "$W/org.der"

# A revoked organisation certificate (another EUI-64), then the CRLs and ARLs as the
# CA publishes them: recorded in the store and written to <home>/ca/test/<ca>.crl.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/rev.key" -subj "/CN=r" \
    -addext "keyUsage=critical,digitalSignature" -out "$W/rev.csr" 2>/dev/null
expect_exit 0 "an organisation certificate to revoke" smki ca issue --env test --party GITTEST --csr "$W/rev.csr" --role supplier \
    --eui 90-B3-D5-1F-30-01-00-01 --der --out "$W/rev.der"
REV_SERIAL=$(openssl x509 -inform DER -in "$W/rev.der" -noout -serial | cut -d= -f2)
expect_exit 0 "revoked" smki ca revoke --env test "$REV_SERIAL" --reason keyCompromise
expect_exit 0 "the CRLs published" smki ca crl --env test --config "$SMKI_HOME/smki.conf"
expect_exit 0 "the ARLs published" smki ca arl --env test --config "$SMKI_HOME/smki.conf"

# serve LOG ARGS...: smki repo serve for the test environment on a free port (lib.sh's
# start_server); sets PORT.
serve() {
    local log=$1
    shift
    start_server "$log" --env test --listen 127.0.0.1:0 "$@"
}

# ---- Plain HTTP: every endpoint and every bad input ------------------------------------
serve "$W/serve.log" --access-log --timeout 3
SERVER_PID=$REPO_PID
echo "# serving on 127.0.0.1:$PORT"
if "$PY" "$HERE/repo_checks.py" plain "$PORT" "$SMKI_HOME" "$W" "$SMKI_BIN"; then
    ok "every endpoint and bad input (repo_checks.py plain)"
else
    not_ok "repo_checks.py plain"
    sed 's/^/#   log: /' "$W/serve.log" | tail -20
fi

# The client commands.
SERIAL=$(openssl x509 -inform DER -in "$W/dev.der" -noout -serial | cut -d= -f2)
URL=http://127.0.0.1:$PORT
expect_exit 0 "smki repo get by serial" smki repo get --url "$URL" "$SERIAL" --out "$W/got.der"
check "what repo get wrote is the issued certificate" cmp "$W/got.der" "$W/dev.der"
expect_exit 0 "smki repo get prints PEM without --out" smki repo get --url "$URL" "$SERIAL"
expect_in "BEGIN CERTIFICATE" "PEM on stdout"
expect_exit 2 "smki repo get of an unknown serial" smki repo get --url "$URL" 0123456789abcdef0123456789abcdef
expect_in "HTTP 404" "the error names the HTTP status"
expect_exit 1 "smki repo get with a bad serial" smki repo get --url "$URL" 'zz/../x'
expect_exit 0 "smki repo get --crl" smki repo get --url "$URL" --crl smki-dca --out "$W/dca.crl"
check "the CRL is the published file" cmp "$W/dca.crl" "$SMKI_HOME/ca/test/smki-dca.crl"
expect_exit 0 "smki repo get --arl" smki repo get --url "$URL" --arl --out "$W/arl.crl"
check "the ARL is the SMKI root's" cmp "$W/arl.crl" "$SMKI_HOME/ca/test/smki-root.crl"
run openssl crl -inform DER -in "$W/dca.crl" -noout -issuer
expect_in "OU = 07, CN = E357" "openssl reads the DCA's CRL"
expect_exit 0 "smki repo search by EUI-64" smki repo search --url "$URL" --eui 00-DB-12-34-56-78-90-A0
expect_in "$SERIAL" "the device certificate is found"
expect_exit 0 "smki --json repo search by role" smki --json repo search --url "$URL" --role supplier
expect_json "two supplier certificates, one revoked" 'd["count"] == 2 and sorted(r["status"] for r in d["results"]) == ["I", "R"]'
expect_exit 1 "smki repo search with a bad status" smki repo search --url "$URL" --status Q
expect_exit 3 "smki repo get from a closed port" smki repo get --url http://127.0.0.1:1 "$SERIAL"
# The CLI conventions: an --out that exists is refused without --force, '-' is standard output.
expect_exit 2 "smki repo get --out onto a file that exists" smki repo get --url "$URL" --crl smki-oca --out "$W/got.der"
expect_in "exists; --force replaces it" "the refusal says --force replaces it"
check "and the file is untouched" cmp "$W/got.der" "$W/dev.der"
expect_exit 0 "with --force it is replaced" smki repo get --url "$URL" --crl smki-dca --out "$W/got.der" --force
check "by the CRL" cmp "$W/got.der" "$SMKI_HOME/ca/test/smki-dca.crl"
run bash -c "'$SMKI_BIN' repo get --url '$URL' '$SERIAL' --out - >'$W/stdout.der'"
check "--out - writes the DER to standard output" cmp "$W/stdout.der" "$W/dev.der"
expect_exit 1 "smki repo get with two serials" smki repo get --url "$URL" "$SERIAL" "$SERIAL"
expect_in "unexpected argument" "the second is named"
expect_exit 1 "smki repo get with an unknown option" smki repo get --url "$URL" "$SERIAL" --outfile x
expect_in "unknown option --outfile" "the option is named"
expect_exit 1 "smki repo search --limit 0" smki repo search --url "$URL" --limit 0
expect_in "--limit is a whole number from 1 to 1000" "the bound is named"
expect_exit 1 "smki repo serve --threads x" smki repo serve --env test --listen 127.0.0.1:0 --threads x
expect_in "--threads is a whole number" "a bad number is named"
expect_exit 1 "smki repo serve --env twice" smki repo serve --env test --env live --listen 127.0.0.1:0
expect_in "--env is given twice" "an option given twice is refused"
expect_exit 1 "smki repo serve --require-client-cert without --client-ca" \
    smki repo serve --env test --listen 127.0.0.1:0 --require-client-cert
expect_in "needs --client-ca" "the missing option is named"
# Answers the server gives before the handler are logged and counted like the rest.
run curl -sS -o /dev/null -w '%{http_code}' -H "X-Pad: $(head -c 9000 /dev/zero | tr '\0' a)" "$URL/health"
expect_in "431" "headers over --max-headers: 431"
run curl -sS "$URL/metrics"
check "the 431 is counted (group other)" grep -qE '^smki_repo_requests_total\{env="test",endpoint="other",code="4xx"\} [1-9]' <<<"$OUT"

# New certificates are seen without restart.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org2.key" -subj "/CN=y" \
    -addext "keyUsage=critical,keyAgreement" -out "$W/org2.csr" 2>/dev/null
expect_exit 0 "the CA issues while the repository serves" smki ca issue --env test --party GITTEST --csr "$W/org2.csr" \
    --role supplier --eui 90-B3-D5-1F-30-01-00-00 --out "$W/org2.pem"
expect_exit 0 "search again" smki --json repo search --url "$URL" --eui 90-B3-D5-1F-30-01-00-00
expect_json "the new KA certificate is there" 'sorted(r["usage"] for r in d["results"]) == ["DS", "KA"]'

# SIGTERM: a clean stop.
kill -TERM "$SERVER_PID"
RC=0
wait "$SERVER_PID" || RC=$?
[[ $RC == 0 ]] && ok "SIGTERM stops the server with exit 0" || not_ok "SIGTERM: exit $RC"
expect_in_file() { grep -q "$1" "$2" && ok "$3" || { not_ok "$3"; tail -5 "$2" | sed 's/^/#   /'; }; }
expect_in_file '"event":"stopped"' "$W/serve.log" "the log says it stopped"
expect_in_file '"event":"request".*"status":402' "$W/serve.log" "requests are logged as JSON lines"
expect_in_file '"event":"request".*"status":431' "$W/serve.log" "the 431 given before the handler is logged too"

# ---- Too many connections ---------------------------------------------------------------
serve "$W/serve2.log" --max-conns 2
if "$PY" "$HERE/repo_checks.py" maxconns "$PORT" "$SMKI_HOME" "$W" "$SMKI_BIN"; then
    ok "a third connection over --max-conns 2 is answered 429; the others keep working"
else
    not_ok "repo_checks.py maxconns"
fi

# ---- TLS with a DCCKI-like server certificate; mutual TLS with a Party Signifier -------------
T=$W/tls
mkdir -p "$T"
# DCCKI certificates from the CA: the repository's server certificate, two clients.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/server.key" -subj "/CN=127.0.0.1" \
    -addext "keyUsage=critical,digitalSignature" -out "$T/server.csr" 2>/dev/null
expect_exit 0 "a DCCKI server certificate for the repository" smki ca issue --env test --profile dccki-server \
    --csr "$T/server.csr" --party PS-DCC-REPO --ip 127.0.0.1 --cn 127.0.0.1 --out "$T/server.pem"
cat "$T/server.pem" "$SMKI_HOME/ca/test/dccki-ica.pem" >"$T/server-chain.pem"
cat "$SMKI_HOME/ca/test/dccki-ica.pem" "$SMKI_HOME/ca/test/dccki-root.pem" >"$T/ca.pem"
for who in PS-SUPPLIER-1 PS-OTHER-2; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$who.key" -subj "/CN=client" \
        -addext "keyUsage=critical,digitalSignature" -out "$T/$who.csr" 2>/dev/null
    expect_exit 0 "a DCCKI client certificate for $who" smki ca issue --env test --profile dccki-client \
        --csr "$T/$who.csr" --party "$who" --out "$T/$who.pem"
done
serve "$W/serve3.log" --tls-cert "$T/server-chain.pem" --tls-key "$T/server.key" --client-ca "$T/ca.pem" \
    --public health,ca,crl --allow-party PS-SUPPLIER-1 --access-log
URL=https://127.0.0.1:$PORT
expect_exit 0 "HTTPS health, the server's DCCKI certificate verified" \
    smki repo get --url "$URL" --ca "smki-root" --ca-file "$T/ca.pem" --out "$W/root.der"
check "the root certificate over TLS is the CA's" cmp "$W/root.der" <(openssl x509 -in "$SMKI_HOME/ca/test/smki-root.pem" -outform DER)
expect_exit 2 "a server certificate that does not chain to --ca-file is refused" \
    smki repo get --url "$URL" --ca smki-root --ca-file "$SMKI_HOME/ca/test/smki-root.pem" --out "$W/x.der"
expect_in "does not verify" "the refusal says the certificate does not verify"
expect_exit 2 "certificates need a client certificate (403 without)" \
    smki repo get --url "$URL" "$SERIAL" --ca-file "$T/ca.pem" --out "$W/x.der"
expect_in "HTTP 403" "403 named"
expect_exit 0 "an allowed Party Signifier's client certificate gets the certificate" \
    smki repo get --url "$URL" "$SERIAL" --ca-file "$T/ca.pem" --cert "$T/PS-SUPPLIER-1.pem" \
    --key "$T/PS-SUPPLIER-1.key" --out "$W/tls.der"
check "the same certificate over mutual TLS" cmp "$W/tls.der" "$W/dev.der"
expect_exit 2 "another Party Signifier is refused (403)" \
    smki repo get --url "$URL" "$SERIAL" --ca-file "$T/ca.pem" --cert "$T/PS-OTHER-2.pem" --key "$T/PS-OTHER-2.key" \
    --out "$W/x.der"
expect_in "Party Signifier is not allowed" "the refusal names the rule"
run curl -sS --cacert "$T/ca.pem" --cert "$T/PS-SUPPLIER-1.pem" --key "$T/PS-SUPPLIER-1.key" \
    -X POST --data "<CertificateDataRequest><CertificateSerial>$SERIAL</CertificateSerial></CertificateDataRequest>" \
    "$URL/services/retrievecertificate"
expect_in "<CertificateSubjectAltName>00-DB-12-34-56-78-90-A0</CertificateSubjectAltName>" "curl: DCC retrieve over mutual TLS"
expect_in_file '"party":"PS-SUPPLIER-1"' "$W/serve3.log" "the client's Party Signifier is logged"
run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health"
expect_not_in "200" "plain HTTP to the TLS port gets no answer"
run curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" "$URL/health"
expect_in "200" "and the server still serves TLS after it"
# One TLS 1.3 session ticket per handshake, not OpenSSL's two (each costs the server about
# a tenth of a mutual-TLS handshake); the resumed session below is resumed with it.
TICKETS=$(printf 'GET /health HTTP/1.0\r\n\r\n' | timeout "$TIMEOUT" openssl s_client -connect "127.0.0.1:$PORT" \
    -tls1_3 -CAfile "$T/ca.pem" -cert "$T/PS-SUPPLIER-1.pem" -key "$T/PS-SUPPLIER-1.key" -ign_eof -msg 2>/dev/null |
    grep -c NewSessionTicket)
check "one TLS 1.3 session ticket per handshake (openssl s_client saw $TICKETS)" test "$TICKETS" = 1

# A client certificate revoked while the server runs: refused (403) from its next
# connection on, a resumed TLS session included (the store is read per connection).
cat >"$W/mtls.py" <<'PYEOF'
import socket, ssl, sys, subprocess
port, ca, cert, key, path, revoke = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
def get(session=None):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            data = b""
            while True:
                b = s.recv(65536)
                if not b: break
                data += b
            return int(data.split(b" ")[1]), s.session, s.session_reused
st1, sess, _ = get()
st2, _, _ = get()
subprocess.run(revoke, check=True, stdout=subprocess.DEVNULL)
st3, _, reused = get(sess)
st4, _, _ = get()
print(st1, st2, st3, st4, reused)
sys.exit(0 if (st1, st2, st3, st4) == (200, 200, 403, 403) and reused else 1)
PYEOF
SUP_SERIAL=$(openssl x509 -in "$T/PS-SUPPLIER-1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
run timeout "$TIMEOUT" "$PY" "$W/mtls.py" "$PORT" "$T/ca.pem" "$T/PS-SUPPLIER-1.pem" "$T/PS-SUPPLIER-1.key" \
    "/certificates/$SERIAL" "$SMKI_BIN" ca revoke --env test "$SUP_SERIAL" --reason keyCompromise
[[ $RC == 0 ]] && ok "a client certificate gets 200, then 403 once revoked (new connection and resumed session, resumed by the one ticket)" ||
    not_ok "revoked client certificate: $OUT"
expect_in_file '"client certificate revoked"' "$W/serve3.log" "the refusal is logged: client certificate revoked"
expect_exit 0 "public endpoints still answer the revoked certificate" \
    smki repo get --url "$URL" --ca smki-root --ca-file "$T/ca.pem" --cert "$T/PS-SUPPLIER-1.pem" \
    --key "$T/PS-SUPPLIER-1.key" --out "$W/root2.der"

# A CA revoked: the certificates it issued are revoked with it in the store, and the
# repository's status search says so.
OCA_SERIAL=$(openssl x509 -in "$SMKI_HOME/ca/test/smki-oca.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
expect_exit 0 "the organisation CA is revoked (cACompromise)" smki ca revoke --env test "$OCA_SERIAL" \
    --reason cACompromise
serve "$W/serve4.log"
expect_exit 0 "search the supplier certificates again" smki --json repo search --url "http://127.0.0.1:$PORT" \
    --role supplier
expect_json "all three are revoked now (the OCA's revocation)" \
    'd["count"] == 3 and all(r["status"] == "R" for r in d["results"])'
expect_exit 0 "search by status: in use" smki --json repo search --url "http://127.0.0.1:$PORT" --status I --role supplier
expect_json "no supplier certificate is in use" 'd["count"] == 0'

# Every server stops cleanly on SIGTERM, and no sanitizer report in any log (ASan build).
stop_servers_and_check_logs "$W"/serve*.log

finish
