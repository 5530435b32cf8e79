#!/usr/bin/env bash
# DCCKI TLS from the outside: a DCCKI server and a DCCKI client certificate issued by
# `smki ca issue --profile dccki-server|dccki-client` (CA keys in a SoftHSM token; the
# TLS endpoints' own keys are software PEM files made by openssl, as a Party's TLS
# terminator would hold them), each linting clean, then `openssl s_server` and
# `openssl s_client` completing a mutually authenticated TLS 1.3 handshake with the
# DCCKI chain as the only trust anchor, and failing it when the client presents an SMKI
# organisation certificate or a DCCKI certificate of the other environment. Then test
# against production: with both hierarchies made (production's OIDs are placeholders
# in the example arc 2.999, labelled as such), neither trust store validates the other's
# SMKI or DCCKI certificates (openssl verify), and smki lint refuses each in the other
# environment. Every check prints "ok - ..." or "not ok - ..."; the last line is
# "N passed, M failed".
#
# Environment (ctest sets it; by hand:
#   SMKI_BIN=/tmp/b/bin/smki SMKI_SHARED=/work/shared bash tests/integration/dccki_tls.sh)
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3 # Debian's: the python3 on PATH may lack cryptography
REAL_CSR=$SMKI_SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der
TIMEOUT=120
TLS_TIMEOUT=60 # seconds any one openssl s_server / s_client may run (a bound, not a measure)

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF SMKI_SHIM_FAIL SMKI_OPERATOR SMKI_OPERATOR_KEY
export SMKI_PIN=ca-user-1234 SMKI_SO_PIN=ca-so-12345678

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-dccki-tls.XXXXXX")
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [[ -n ${KEEP:-} ]] || rm -rf "$ROOT"
}
trap cleanup EXIT
TEST_HOME=$ROOT/test-home
PROD_HOME=$ROOT/prod-home
W=$ROOT/work
mkdir -p "$W" "$TEST_HOME" "$PROD_HOME"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tsmki() { SMKI_HOME=$TEST_HOME smki "$@"; }
psmki() { SMKI_HOME=$PROD_HOME smki "$@"; }
count_certs() {
    SMKI_HOME=$1 "$SMKI_BIN" --json ca list | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])'
}
newkey() { # name [curve]
    openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${2:-P-256}" -out "$W/$1.key" 2>/dev/null
}
newcsr() { # name subject ku
    openssl req -new -key "$W/$1.key" -subj "$2" -addext "keyUsage=critical,$3" -out "$W/$1.csr" 2>/dev/null
}
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tls NAME SERVER_CERT SERVER_KEY SERVER_CAFILE CLIENT_CERT CLIENT_KEY CLIENT_CAFILE:
# one mutually authenticated TLS 1.3 handshake on a free loopback port. The server
# demands a client certificate (-Verify 1) and both sides stop at any verification
# error. Leaves $W/NAME.server and $W/NAME.client (their output) and TLS_RC (the
# client's exit status).
tls() {
    local name=$1 scert=$2 skey=$3 sca=$4 ccert=$5 ckey=$6 cca=$7 port attempt
    for attempt in 1 2 3; do
        port=$(free_port)
        : >"$W/$name.server"
        timeout "$TLS_TIMEOUT" openssl s_server -accept "127.0.0.1:$port" -cert "$scert" -key "$skey" \
            -CAfile "$sca" -Verify 1 -verify_return_error -tls1_3 -naccept 1 -rev \
            </dev/null >"$W/$name.server" 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 600); do # up to a minute for s_server to listen on a loaded machine
            grep -q ACCEPT "$W/$name.server" && break
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        grep -q ACCEPT "$W/$name.server" && break
        wait "$SERVER_PID" 2>/dev/null || true # the port was taken meanwhile: another one
        SERVER_PID=
    done
    TLS_RC=0
    echo "smki dccki" | timeout "$TLS_TIMEOUT" openssl s_client -connect "127.0.0.1:$port" -cert "$ccert" \
        -key "$ckey" -CAfile "$cca" -verify_return_error -tls1_3 -verify_hostname localhost \
        >"$W/$name.client" 2>&1 || TLS_RC=$?
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
in_file() { grep -q -- "$1" "$2"; }

check "smki binary is executable: $SMKI_BIN" test -x "$SMKI_BIN"
check "openssl is there" command -v openssl
expect_exit 0 "smki ca issue --help" smki ca issue --help
expect_in "--profile dccki-server|dccki-client" "the help teaches the DCCKI form"
expect_in "organizationIdentifier" "and where the Party Signifier goes"

# ---- The test hierarchy and the TLS certificates ---------------------------------------------------------------
expect_exit 0 "ca init --env test" tsmki ca init --env test
TCA=$TEST_HOME/ca/test
# Test certificates, DCCKI TLS ones too, go only through the RA's gate: registered
# Testing Participants authorised for the type (lib.sh).
ra_test_participant "$TEST_HOME"
ra_dccki_party "$TEST_HOME" PARTY0001 PARTY0002
cat "$TCA/dccki-root.pem" "$TCA/dccki-ica.pem" >"$W/test-dccki-chain.pem"
newkey server
newcsr server "/CN=ignored" digitalSignature
newkey client
newcsr client "/2.5.4.97=PARTY0002/CN=ignored" digitalSignature
expect_exit 0 "issue a DCCKI server certificate" tsmki --json ca issue --env test --profile dccki-server \
    --csr "$W/server.csr" --party PARTY0001 --cn gw1.dccki.test --dns localhost --dns gw1.dccki.test \
    --ip 127.0.0.1 --out "$W/server.pem"
expect_json "dccki-server, DS, Party PARTY0001, no role or EUI-64" \
    'd["profile"] == "dccki-server" and d["usage"] == "DS" and d["party"] == "PARTY0001" and "role" not in d and "eui64" not in d'
expect_exit 0 "issue a DCCKI client certificate, the Party Signifier agreeing with the CSR's" tsmki --json ca issue \
    --env test --profile dccki-client --csr "$W/client.csr" --party PARTY0002 --out "$W/client.pem"
expect_json "dccki-client, Party PARTY0002 (the CSR's)" 'd["profile"] == "dccki-client" and d["party"] == "PARTY0002"'
expect_exit 0 "both lint clean in the test environment" tsmki lint --env test "$W/server.pem" "$W/client.pem"
expect_in "clean (dccki-server)" "the server certificate claims dccki-server"
expect_in "clean (dccki-client)" "the client certificate claims dccki-client"
expect_in "2 clean, 0 with violations" "both clean"
run openssl x509 -in "$W/server.pem" -noout -subject -ext subjectAltName,extendedKeyUsage,keyUsage -nameopt RFC2253
expect_in "organizationIdentifier=PARTY0001" "the Party Signifier is the subject's organizationIdentifier"
expect_in "DNS:localhost, DNS:gw1.dccki.test, IP Address:127.0.0.1" "the SAN names the hosts"
expect_in "TLS Web Server Authentication" "serverAuth"
expect_not_in "Client Authentication" "and not clientAuth"
run openssl x509 -in "$W/client.pem" -noout -ext extendedKeyUsage
expect_in "TLS Web Client Authentication" "the client certificate is clientAuth"
expect_not_in "Server Authentication" "and not serverAuth"
check "openssl verify: server -> dccki-ica -> dccki-root" openssl verify -x509_strict -purpose sslserver \
    -CAfile "$TCA/dccki-root.pem" -untrusted "$TCA/dccki-ica.pem" "$W/server.pem"
check "openssl verify: client -> dccki-ica -> dccki-root" openssl verify -x509_strict -purpose sslclient \
    -CAfile "$TCA/dccki-root.pem" -untrusted "$TCA/dccki-ica.pem" "$W/client.pem"
check_fails "the server certificate is not good for a client" openssl verify -purpose sslclient \
    -CAfile "$TCA/dccki-root.pem" -untrusted "$TCA/dccki-ica.pem" "$W/server.pem"

# ---- Refusals: each writes nothing --------------------------------------------------------------------------------
COUNT=$(count_certs "$TEST_HOME")
refused() { # code desc needle args...
    local code=$1 desc=$2 needle=$3
    shift 3
    rm -f "$W/refused.pem"
    expect_exit "$code" "$desc" tsmki ca issue --env test "$@" --out "$W/refused.pem"
    expect_in "$needle" "$desc: the message says '$needle'"
    check "$desc: no --out file" test ! -e "$W/refused.pem"
    check "$desc: the store still holds $COUNT" test "$(count_certs "$TEST_HOME")" = "$COUNT"
}
refused 1 "a server certificate without --dns or --ip" "--dns NAME" --profile dccki-server --csr "$W/server.csr" \
    --party PARTY0001
refused 1 "a wildcard host name" "no wildcard" --profile dccki-server --csr "$W/server.csr" --party PARTY0001 \
    --dns '*.dccki.test'
refused 1 "an address that is not one" "not an IPv4 or IPv6" --profile dccki-server --csr "$W/server.csr" \
    --party PARTY0001 --ip 300.1.2.3
refused 2 "no --party: the RA's gate" "registered Parties" --profile dccki-client --csr "$W/server.csr"
refused 2 "--party that disagrees with the CSR's" "disagrees" --profile dccki-client --csr "$W/client.csr" \
    --party PARTY9999
refused 1 "--role on a DCCKI certificate" "no Remote Party Role" --profile dccki-client --csr "$W/client.csr" \
    --role 02
refused 1 "--dns without a DCCKI profile" "are for --profile dccki" --csr "$W/server.csr" --dns localhost
refused 1 "an unknown profile" "--profile is" --profile dccki-root --csr "$W/server.csr"
refused 2 "a device CSR" "names a device" --profile dccki-client --csr "$REAL_CSR" --party PARTY0001
newkey ka
newcsr ka "/CN=x" keyAgreement
refused 2 "a keyAgreement CSR" "digitalSignature only" --profile dccki-client --csr "$W/ka.csr" --party PARTY0001
newkey p384 P-384
newcsr p384 "/CN=x" digitalSignature
refused 2 "a P-384 key (P-256 only)" "secp384r1" --profile dccki-client --csr "$W/p384.csr" --party PARTY0001

# ---- The RA's gate: DCCKI TLS certificates only to Authorised Subscribers -----------------------------------
expect_exit 0 "RA: PARTY0003 registered, not authorised for DCCKI" tsmki ra party add PARTY0003 \
    --testing-participant --agreement-signed
expect_exit 0 "RA: PARTY0003 authorised for DCCKI servers only" tsmki ra subscriber authorise --party PARTY0003 \
    --type dccki-server --env test
refused 2 "an unknown Party" "PARTY0009" --profile dccki-client --csr "$W/server.csr" --party PARTY0009
refused 2 "a Party not authorised for client certificates" "not an Authorised Subscriber for DCCKI TLS client" \
    --profile dccki-client --csr "$W/server.csr" --party PARTY0003
refused 2 "no operator in a gated store" "operator" --profile dccki-server --csr "$W/server.csr" --party PARTY0003 \
    --dns localhost --operator nobody
expect_exit 0 "RA: PARTY0004 registered, not a Testing Participant" tsmki ra party add PARTY0004
expect_exit 0 "RA: PARTY0004 authorised for DCCKI servers" tsmki ra subscriber authorise --party PARTY0004 \
    --type dccki-server --env test
refused 2 "a Party that is not a Testing Participant" "not a Testing Participant" --profile dccki-server \
    --csr "$W/server.csr" --party PARTY0004 --dns localhost
expect_exit 0 "the subscriber list names the DCCKI types" tsmki --json ra subscriber list
expect_json "PARTY0003: dccki-server in test" \
    'any(s["party"] == "PARTY0003" and s["type"] == "dccki-server" and s["env"] == "test" for s in d["subscribers"])'

# Through a request: submitted, approved by another operator, executed; audited.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/op2.pem" 2>/dev/null
openssl pkey -in "$W/op2.pem" -pubout -out "$W/op2.pub" 2>/dev/null
expect_exit 0 "RA: a second operator" tsmki ra operator add approver --pub "$W/op2.pub"
newkey rq
newcsr rq "/2.5.4.97=PARTY0003/CN=x" digitalSignature
expect_exit 2 "a request for a type the Party is not authorised for is refused" tsmki --json ra request submit \
    --type dccki-client --party PARTY0003 --env test --csr "$W/rq.csr"
expect_in "not an Authorised Subscriber" "the refusal says why"
expect_exit 2 "a request whose CSR names another Party is refused" tsmki --json ra request submit \
    --type dccki-server --party PARTY0001 --env test --csr "$W/rq.csr" --dns localhost
expect_in "disagrees" "the refusal says the Signifiers disagree"
expect_exit 1 "a server request without a host name is refused" tsmki ra request submit \
    --type dccki-server --party PARTY0003 --env test --csr "$W/rq.csr"
expect_in "--dns NAME" "the refusal says what to give"
expect_exit 1 "--eui on a DCCKI request is refused" tsmki ra request submit \
    --type dccki-server --party PARTY0003 --env test --csr "$W/rq.csr" --dns localhost --eui 90B3D51F30010000
expect_exit 0 "submit a dccki-server request" tsmki --json ra request submit --type dccki-server --party PARTY0003 \
    --env test --csr "$W/rq.csr" --dns localhost --ip 127.0.0.1 --cn gw3
RQ=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect_json "pending, one approval needed" 'd["state"] == "pending" and d["type"] == "dccki-server" and d["approvals_required"] == 1'
expect_exit 2 "the requester may not approve it" tsmki ra request approve "$RQ"
expect_in "may not approve" "the refusal says why"
expect_exit 0 "another operator approves" env SMKI_HOME="$TEST_HOME" SMKI_OPERATOR=approver \
    SMKI_OPERATOR_KEY="file:$W/op2.pem" "$SMKI_BIN" ra request approve "$RQ"
expect_exit 0 "request show names the host" tsmki --json ra request show "$RQ"
expect_json "approved, with its names" 'd["state"] == "approved" and d["names"] == ["dns localhost", "ip 127.0.0.1"]'
expect_exit 0 "execute it" tsmki ra request execute "$RQ" --out-dir "$W/rq-out"
RQ_CERT=$(ls "$W/rq-out"/*.pem)
run openssl x509 -in "$RQ_CERT" -noout -subject -ext extendedKeyUsage,subjectAltName
expect_in "PARTY0003" "the certificate carries the Party's Signifier"
expect_in "TLS Web Server Authentication" "a server certificate"
expect_in "DNS:localhost" "with the requested host"
expect_exit 0 "it lints clean" tsmki lint --env test "$RQ_CERT"
expect_exit 0 "audit verify is clean" tsmki --json audit verify
expect_json "clean, the DCCKI issuance among the entries" 'd["ok"] is True and d["entries"] > 10'
expect_exit 0 "audit list" tsmki --json audit list
expect_in "dccki-server certificate serial" "the execution's entry names the certificate"
expect_in "ca-issue-direct" "and the direct issuances are there too"

# ---- The handshake -------------------------------------------------------------------------------------------------
tls good "$W/server.pem" "$W/server.key" "$W/test-dccki-chain.pem" "$W/client.pem" "$W/client.key" \
    "$W/test-dccki-chain.pem"
check "TLS 1.3, mutual: s_client exits 0" test "$TLS_RC" = 0
check "s_client verified the server: Verify return code: 0 (ok)" in_file "Verify return code: 0 (ok)" "$W/good.client"
check "s_client negotiated TLSv1.3" in_file "New, TLSv1.3, Cipher is" "$W/good.client"
check "s_server established the connection" in_file "CONNECTION ESTABLISHED" "$W/good.server"
check "s_server verified the client's certificate chain (Verification: OK)" in_file "Verification: OK" "$W/good.server"
check "s_server saw the client's Party Signifier" in_file "Peer certificate: organizationIdentifier = PARTY0002" \
    "$W/good.server"
check "s_server spoke TLSv1.3" in_file "Protocol version: TLSv1.3" "$W/good.server"
if ! { in_file "CONNECTION ESTABLISHED" "$W/good.server" && [[ $TLS_RC == 0 ]]; }; then
    sed 's/^/#   server: /' "$W/good.server" | head -30
    sed 's/^/#   client: /' "$W/good.client" | head -30
fi

# An SMKI organisation certificate is no DCCKI client certificate.
newkey org
newcsr org "/CN=x" digitalSignature
# (GITTEST registered above by ra_test_participant)
expect_exit 0 "issue an SMKI organisation certificate" tsmki ca issue --env test --csr "$W/org.csr" --role 02 \
    --eui 90B3D51F30010000 --party GITTEST --out "$W/org.pem"
# --csr - and --out -: a filter, the CSR from standard input and the certificate to standard
# output; the summary goes to standard error.
newkey piped
newcsr piped "/2.5.4.97=PARTY0002/CN=ignored" digitalSignature
expect_exit 0 "ca issue --csr - --out -: CSR in, certificate out" env SMKI_HOME="$TEST_HOME" bash -c \
    'cd "$1" && "$2" ca issue --env test --profile dccki-client --csr - --party PARTY0002 --out - <"$1/piped.csr"' \
    _ "$W" "$SMKI_BIN"
printf '%s\n' "$OUT" >"$W/piped.pem"
check "standard output is the certificate alone, PEM" test "$(head -1 "$W/piped.pem")" = "-----BEGIN CERTIFICATE-----" \
    -a "$(grep -c -- '-----BEGIN' "$W/piped.pem")" = 1 -a "$(tail -1 "$W/piped.pem")" = "-----END CERTIFICATE-----"
expect_in "Issued dccki-client certificate for Party PARTY0002" "the summary is there"
check "the summary went to standard error" test -n "$ERR" -a "${ERR#*Issued dccki-client}" != "$ERR"
check "no file named '-' was written" test ! -e "$W/-"
check "openssl verify: the certificate from standard output chains" openssl verify -x509_strict -purpose sslclient \
    -CAfile "$TCA/dccki-root.pem" -untrusted "$TCA/dccki-ica.pem" "$W/piped.pem"
check "it holds the key of the CSR from standard input" test \
    "$(openssl x509 -in "$W/piped.pem" -noout -pubkey)" = "$(openssl pkey -in "$W/piped.key" -pubout)"
expect_exit 1 "--json with --out - is refused (both would write to standard output)" tsmki --json ca issue \
    --env test --profile dccki-client --csr "$W/piped.csr" --party PARTY0002 --out -
expect_json "the refusal names --out FILE" 'd["ok"] is False and "give --out FILE" in d["error"]["message"]'
# An --out that exists: refused before anything is issued; --force replaces it.
newkey forced
newcsr forced "/2.5.4.97=PARTY0002/CN=ignored" digitalSignature
BEFORE=$(count_certs "$TEST_HOME")
expect_exit 2 "ca issue --out of a file that exists is refused without --force" tsmki ca issue --env test \
    --profile dccki-client --csr "$W/forced.csr" --party PARTY0002 --out "$W/piped.pem"
expect_in "$W/piped.pem exists; --force replaces it" "the refusal says what to do"
check "nothing was issued by it" test "$(count_certs "$TEST_HOME")" = "$BEFORE"
expect_exit 0 "ca issue --out FILE --force replaces the file" tsmki ca issue --env test \
    --profile dccki-client --csr "$W/forced.csr" --party PARTY0002 --out "$W/piped.pem" --force
check "the file holds the new certificate (the key of the new CSR)" test \
    "$(openssl x509 -in "$W/piped.pem" -noout -pubkey)" = "$(openssl pkey -in "$W/forced.key" -pubout)"
check "one certificate more in the store" test "$(count_certs "$TEST_HOME")" = "$((BEFORE + 1))"
tls org "$W/server.pem" "$W/server.key" "$W/test-dccki-chain.pem" "$W/org.pem" "$W/org.key" \
    "$W/test-dccki-chain.pem"
check_fails "the server refuses a client with an SMKI organisation certificate" \
    in_file "CONNECTION ESTABLISHED" "$W/org.server"
check "the server says why: the client's chain does not verify" in_file "verify error" "$W/org.server"
# (What keeps it out is the trust anchor: an organisation certificate has no EKU, so a
# server that also trusted the SMKI chain would take it. DCCKI endpoints trust the
# DCCKI chain only.)
# A DCCKI server certificate is no client certificate either.
tls swap "$W/server.pem" "$W/server.key" "$W/test-dccki-chain.pem" "$W/server.pem" "$W/server.key" \
    "$W/test-dccki-chain.pem"
check_fails "the server refuses a client presenting a serverAuth-only certificate" \
    in_file "CONNECTION ESTABLISHED" "$W/swap.server"

# ---- Production: a second hierarchy ------------------------------------------------------------------------------
cat >"$W/prod.conf" <<'CONF'
# PLACEHOLDER OIDs for this test only, in the example arc 2.999 (X.660): the live SMKI
# and DCCKI policy OIDs are not public. Never use these for real certificates.
[env.production]
org_policy = 2.999.9.1
device_policy = 2.999.9.2
hw_type = 1.2.826.0.1.8641679.1.2.2.1
dccki_policy = 2.999.9.4
root_name = PRODROOT
oca_name = PRODOCA
dca_name = PRODDCA
dccki_root_name = PROD DCCKI Root
dccki_ica_name = PROD DCCKI ICA
[ca.production]
token = smki-prod
dccki_root_name = PROD DCCKI Root
dccki_ica_name = PROD DCCKI ICA
CONF
expect_exit 0 "ca init --env production (placeholder OIDs)" psmki ca init --env production --config "$W/prod.conf"
expect_in "5 CA(s) created" "its five CAs"
PCA=$PROD_HOME/ca/production
printf '\n[ra]\nunmanaged = production\n' >>"$PROD_HOME/smki.conf" # a lab store: no RA (ca_interop.sh)
cat "$PCA/dccki-root.pem" "$PCA/dccki-ica.pem" >"$W/prod-dccki-chain.pem"
newkey pclient
newcsr pclient "/CN=x" digitalSignature
expect_exit 0 "production: issue a DCCKI client certificate" psmki ca issue --env production \
    --profile dccki-client --csr "$W/pclient.csr" --party PARTY0002 --out "$W/prod-client.pem"
newkey pserver
newcsr pserver "/CN=x" digitalSignature
expect_exit 0 "production: issue a DCCKI server certificate" psmki ca issue --env production \
    --profile dccki-server --csr "$W/pserver.csr" --party PARTY0001 --dns localhost --out "$W/prod-server.pem"
expect_exit 0 "production: issue an organisation certificate" psmki ca issue --env production --csr "$W/org.csr" \
    --role 02 --eui 90B3D51F30010000 --out "$W/prod-org.pem"
expect_exit 0 "production certificates lint clean in production" \
    psmki lint --env production --config "$W/prod.conf" "$W/prod-client.pem" "$W/prod-server.pem" "$W/prod-org.pem"
expect_in "3 clean, 0 with violations" "all three"
run openssl x509 -in "$W/prod-client.pem" -noout -ext certificatePolicies
expect_in "2.999.9.4" "the production DCCKI certificate carries production's (placeholder) policy"

tls prod "$W/server.pem" "$W/server.key" "$W/test-dccki-chain.pem" "$W/prod-client.pem" "$W/pclient.key" \
    "$W/test-dccki-chain.pem"
check_fails "the test server refuses a production DCCKI client certificate" \
    in_file "CONNECTION ESTABLISHED" "$W/prod.server"
check "the server says why: the client's chain does not verify" in_file "verify error" "$W/prod.server"
tls prodsrv "$W/prod-server.pem" "$W/pserver.key" "$W/prod-dccki-chain.pem" "$W/client.pem" "$W/client.key" \
    "$W/test-dccki-chain.pem"
check "a test client refuses a production DCCKI server" test "$TLS_RC" != 0
check_fails "and no connection is established" in_file "CONNECTION ESTABLISHED" "$W/prodsrv.server"
tls prodgood "$W/prod-server.pem" "$W/pserver.key" "$W/prod-dccki-chain.pem" "$W/prod-client.pem" \
    "$W/pclient.key" "$W/prod-dccki-chain.pem"
check "production to production: the handshake completes" in_file "CONNECTION ESTABLISHED" "$W/prodgood.server"

# Each trust store is its environment's roots (SMKI and DCCKI), written by the ceremony.
cat "$TEST_HOME"/trust/test/*.pem >"$W/test-trust.pem"
cat "$PROD_HOME"/trust/production/*.pem >"$W/prod-trust.pem"
check "the test trust store holds the test SMKI and DCCKI roots" test "$(grep -c BEGIN "$W/test-trust.pem")" = 2
check "the production trust store holds production's two roots" test "$(grep -c BEGIN "$W/prod-trust.pem")" = 2
verify() { # trust ica leaf [purpose]
    openssl verify -x509_strict ${4:+-purpose "$4"} -CAfile "$1" -untrusted "$2" "$3"
}
check "test trust store: test DCCKI client verifies" verify "$W/test-trust.pem" "$TCA/dccki-ica.pem" "$W/client.pem"
check "test trust store: test organisation certificate verifies" \
    verify "$W/test-trust.pem" "$TCA/smki-oca.pem" "$W/org.pem"
check "production trust store: production DCCKI client verifies" \
    verify "$W/prod-trust.pem" "$PCA/dccki-ica.pem" "$W/prod-client.pem"
check "production trust store: production organisation certificate verifies" \
    verify "$W/prod-trust.pem" "$PCA/smki-oca.pem" "$W/prod-org.pem"
check_fails "production trust store: a test DCCKI client certificate fails" \
    verify "$W/prod-trust.pem" "$TCA/dccki-ica.pem" "$W/client.pem"
check_fails "production trust store: a test DCCKI server certificate fails" \
    verify "$W/prod-trust.pem" "$TCA/dccki-ica.pem" "$W/server.pem"
check_fails "production trust store: a test organisation certificate fails" \
    verify "$W/prod-trust.pem" "$TCA/smki-oca.pem" "$W/org.pem"
check_fails "production trust store: the test DCCKI issuing CA fails" \
    openssl verify -CAfile "$W/prod-trust.pem" "$TCA/dccki-ica.pem"
check_fails "test trust store: a production DCCKI client certificate fails" \
    verify "$W/test-trust.pem" "$PCA/dccki-ica.pem" "$W/prod-client.pem"
check_fails "test trust store: a production organisation certificate fails" \
    verify "$W/test-trust.pem" "$PCA/smki-oca.pem" "$W/prod-org.pem"
check_fails "test trust store: the production DCCKI issuing CA fails" \
    openssl verify -CAfile "$W/test-trust.pem" "$PCA/dccki-ica.pem"
# smki's own check: each environment's profile refuses the other's certificates by policy.
expect_exit 2 "smki lint --env production: a test DCCKI certificate fails" \
    psmki lint --env production --config "$W/prod.conf" "$W/client.pem"
expect_in "policies.oid" "by its policy OID"
expect_exit 2 "smki lint --env production: a test organisation certificate fails" \
    psmki lint --env production --config "$W/prod.conf" "$W/org.pem"
expect_in "policies.oid" "by its policy OID"
# The built-in test environment leaves the DCCKI policy unset (the DCC's is not public);
# with the one this project's test hierarchy uses (docs/ca-ceremony.conf) it is checked.
printf '[env.test]\ndccki_policy = 2.999.1.2.826.1\n' >"$W/test-dccki.conf"
expect_exit 0 "smki lint --env test with the test DCCKI policy: the test DCCKI certificates are clean" \
    tsmki lint --env test --config "$W/test-dccki.conf" "$W/client.pem" "$W/server.pem"
expect_exit 2 "smki lint --env test: a production DCCKI certificate fails" \
    tsmki lint --env test --config "$W/test-dccki.conf" "$W/prod-client.pem"
expect_in "policies.oid" "by its policy OID"
expect_exit 2 "smki lint --env test: a production organisation certificate fails" \
    tsmki lint --env test "$W/prod-org.pem"
expect_in "policies.oid" "by its policy OID"

finish
