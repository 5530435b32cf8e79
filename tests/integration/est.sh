#!/usr/bin/env bash
# smki enrol serve from the outside, with independent clients only: curl with a DCCKI
# client certificate over mutual TLS, openssl pkcs7 / verify / x509 / asn1parse on the
# answers. RFC 7030 cacerts, csrattrs and simpleenroll of every type; a certificate
# issued over EST has the CLI's profile (smki lint, the same extensions as 'smki ca
# issue'); the audit trail says who acted for whom; every refusal with its status and
# nothing issued; 202 + Retry-After until operators approve, then the certificate
# (RFC 7030 4.2.3); device batches polled to completion, replayed without a second
# issue, resumed after a restart.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
SMKI_SRC=${SMKI_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TIMEOUT=60
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-est.XXXXXX")
source "$HERE/lib.sh"
repo_cleanup_trap

unset SMKI_PIN SMKI_SO_PIN SMKI_DEBUG SOFTHSM2_CONF SMKI_OPERATOR SMKI_OPERATOR_KEY
export SMKI_HOME=$W/home
mkdir -p "$SMKI_HOME"
BASE=$W/base.conf
repo_soft_ca_conf "$SMKI_HOME" "$BASE"
cp "$BASE" "$SMKI_HOME/smki.conf"
expect_exit 0 "a test hierarchy" smki ca init --env test --config "$SMKI_HOME/smki.conf"
# The RA: operator tester, Party GITTEST (User ID 90-B3-D5-1F-30-01-00-00, EIS; supplier
# and device certificates in test); GITTEST and PS-OTHER may hold DCCKI certificates. A Party
# enrolling for itself gets device certificates only for Device IDs of its own device blocks:
# 00-DB-12-... are GITTEST's, 00-DB-14-... PS-OTHER's.
ra_test_participant "$SMKI_HOME"
ra_dccki_party "$SMKI_HOME" PS-OTHER
for step in "subscriber authorise --party GITTEST --type dccki-client --env test" \
    "subscriber authorise --party GITTEST --type dccki-server --env test" \
    "range assign 90B3D51F4/36 --party PS-OTHER --kind central" \
    "range assign 00DB12/24 --party GITTEST --kind device" \
    "range assign 00DB14/24 --party PS-OTHER --kind device" \
    "id allocate --party PS-OTHER --roles EIS --eui 90-B3-D5-1F-40-00-00-00" \
    "party add PS-NOTEST --name NoTest" \
    "subscriber authorise --party PS-NOTEST --type dccki-client --env test"; do
    # shellcheck disable=SC2086 # the step's words are the arguments
    expect_exit 0 "RA: $step" smki ra $step
done
# The service's own operator, its key mapped in [operators].
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/est-op.pem" 2>/dev/null
openssl pkey -in "$W/est-op.pem" -pubout -out "$W/est-op.pub" 2>/dev/null
expect_exit 0 "the service's RA operator" smki ra operator add est --pub "$W/est-op.pub"
printf '[operators]\nest = file:%s\n' "$W/est-op.pem" >>"$SMKI_HOME/smki.conf"

# ---- TLS: the service's certificate, DCCKI client certificates from the CA ---------------------
T=$W/tls
mkdir -p "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$T/server.key" \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" -out "$T/server.pem" 2>/dev/null
client_cert() { # NAME PARTY: a DCCKI client certificate of PARTY issued by the CA
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" -subj "/CN=$1" \
        -addext "keyUsage=critical,digitalSignature" -out "$T/$1.csr" 2>/dev/null
    expect_exit 0 "a DCCKI client certificate $1 for $2" smki ca issue --env test --profile dccki-client \
        --csr "$T/$1.csr" --party "$2" --out "$T/$1.pem"
}
client_cert gittest GITTEST
client_cert other PS-OTHER
client_cert revoked GITTEST
# Another environment in the same store (lab), whose DCCKI CAs the service also trusts:
# a client certificate of lab is valid TLS but not an identity in test.
for k in smki_root smki_oca smki_dca dccki_root dccki_ica; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$SMKI_HOME/keys/lab_$k.pem" 2>/dev/null
done
cp "$SMKI_HOME/smki.conf" "$BASE"
{
    printf '[env.lab]\norg_policy = 1.2.3.4.1\ndevice_policy = 1.2.3.4.2\nhw_type = 1.2.3.4.3\ndccki_policy = 1.2.3.4.4\n'
    printf '[ca.lab]\nsmki_root_name = LR\nsmki_oca_name = LO\nsmki_dca_name = LD\n'
    printf 'dccki_root_name = Lab DCCKI Root\ndccki_ica_name = Lab DCCKI ICA\n'
    for k in smki_root smki_oca smki_dca dccki_root dccki_ica; do echo "${k}_key = file:$SMKI_HOME/keys/lab_$k.pem"; done
} >>"$BASE"
{ cat "$BASE"; printf '[ra]\ndirect_issue = test lab\n'; } >"$SMKI_HOME/smki.conf"
expect_exit 0 "a lab hierarchy in the same store" smki ca init --env lab
expect_exit 0 "GITTEST may hold lab DCCKI client certificates" smki ra subscriber authorise --party GITTEST \
    --type dccki-client --env lab
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/labclient.key" -subj "/CN=lab" \
    -addext "keyUsage=critical,digitalSignature" -out "$T/labclient.csr" 2>/dev/null
expect_exit 0 "a lab DCCKI client certificate for GITTEST" smki ca issue --env lab --profile dccki-client \
    --csr "$T/labclient.csr" --party GITTEST --out "$T/labclient.pem"
cat "$SMKI_HOME/ca/test/dccki-ica.pem" "$SMKI_HOME/ca/test/dccki-root.pem" "$SMKI_HOME/ca/lab/dccki-ica.pem" \
    "$SMKI_HOME/ca/lab/dccki-root.pem" >"$T/client-ca.pem"
cp "$BASE" "$SMKI_HOME/smki.conf"

# est_start LOG ARGS...: `smki enrol serve` in the background (PIDS), PORT from its log.
est_start() { # LOG [more flags]: --env test unless the flags name another (a flag is given once)
    local log=$1 env=(--env test)
    shift
    [[ " $* " == *" --env "* ]] && env=()
    env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY "$SMKI_BIN" enrol serve "${env[@]}" --listen 127.0.0.1:0 --operator est --tls-cert "$T/server.pem" \
        --tls-key "$T/server.key" --client-ca "$T/client-ca.pem" --access-log "$@" 2>"$log" &
    PIDS+=("$!")
    listening_port "$log" "${PIDS[-1]}"
    [[ -n $PORT ]] || { echo "# the service did not start:"; sed 's/^/#   /' "$log"; return 1; }
}
est_stop() {
    local p=${PIDS[-1]} rc=0
    kill -TERM "$p"
    wait "$p" || rc=$?
    unset 'PIDS[-1]'
    [[ $rc == 0 ]] && ok "$1: SIGTERM, exit 0" || not_ok "$1: exit $rc on SIGTERM"
}
URL() { echo "https://127.0.0.1:$PORT/.well-known/est/$1"; }
# est WHO PATH [curl args...]: a request with WHO's client certificate (none: no
# certificate); the status in $W/code, the body in $W/body, the headers in $W/headers.
est() {
    local who=$1 path=$2
    shift 2
    local cert=()
    [[ $who != none ]] && cert=(--cert "$T/$who.pem" --key "$T/$who.key")
    run curl -sS --max-time 20 -D "$W/headers" -o "$W/body" -w '%{http_code}' --cacert "$T/server.pem" \
        "${cert[@]}" "$@" "$(URL "$path")"
    OUT="$OUT"$'\n'"$(cat "$W/body" 2>/dev/null)"
}
# await_batch ID TRIES: GET batch/ID as gittest, 0.2 s apart, until it answers 200 or
# TRIES polls are done; $OUT holds the last answer.
await_batch() {
    for _ in $(seq 1 "$2"); do
        est gittest "batch/$1"
        [[ ${OUT%%$'\n'*} == 200 ]] && break
        sleep 0.2
    done
    return 0
}
expect_status() { # CODE DESC
    if [[ ${OUT%%$'\n'*} == "$1" ]]; then ok "$2 ($1)"; else not_ok "$2: HTTP ${OUT%%$'\n'*}, wanted $1"; diag; fi
}
# enrol WHO PATH CSR-FILE(DER): POST the base64 DER PKCS#10 as RFC 7030 4.2.1 sends it
enrol() {
    local who=$1 path=$2 csr=$3
    shift 3
    base64 -w 64 "$csr" >"$W/req.b64"
    est "$who" "$path" -H "Content-Type: application/pkcs10" --data-binary "@$W/req.b64" "$@"
}
# same_profile WHAT EST.pem CLI.pem: two certificates of the same CSR differ only in
# serial, validity times and signature (python3-cryptography).
same_profile() {
    check "$1: the EST certificate has exactly the CLI's profile (subject, issuer, extensions, lifetime)" "$PY" -c '
import sys
from cryptography import x509
a, b = (x509.load_pem_x509_certificate(open(f, "rb").read()) for f in sys.argv[1:3])
assert a.subject == b.subject, (a.subject, b.subject)
assert a.issuer == b.issuer
assert a.serial_number != b.serial_number
assert list(a.extensions) == list(b.extensions), (list(a.extensions), list(b.extensions))
d = lambda c: c.not_valid_after - c.not_valid_before
if a.not_valid_after.year == 9999:  # a device certificate never expires (RFC 5280 99991231235959Z): the same instant,
    assert a.not_valid_after == b.not_valid_after, (a.not_valid_after, b.not_valid_after)  # whenever each was issued
else:
    assert abs((d(a) - d(b)).total_seconds()) <= 2, (d(a), d(b))
assert a.signature_algorithm_oid == b.signature_algorithm_oid
' "$2" "$3"
}
certs_of_body() { base64 -d "$W/body" | openssl pkcs7 -inform DER -print_certs; }
count_certs() { smki --json ca list --env test | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["certificates"]))'; }

# ---- Auto-approved: test is a direct environment ([ra] direct_issue), so a single enrolment goes
# through the RA's gate (smki_ra_issue) in one commit; cacerts, csrattrs, a device certificate -------
{ cat "$BASE"; printf '[ra]\ndirect_issue = test\n'; } >"$SMKI_HOME/smki.conf"
if est_start "$W/s1.log"; then
    est none cacerts
    expect_status 200 "cacerts without a client certificate"
    check "cacerts is base64 PKCS#7 certs-only with the environment's 5 CAs" \
        bash -c "base64 -d '$W/body' | openssl pkcs7 -inform DER -print_certs | grep -c '^subject' | grep -qx 5"
    grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only' "$W/headers" &&
        ok "cacerts: Content-Type application/pkcs7-mime; smime-type=certs-only" || not_ok "cacerts content type"
    run curl -sS --max-time 20 --cacert "$T/server.pem" "https://127.0.0.1:$PORT/health"
    expect_in '"status":"ok","env":"test","operator":"est"' "GET /health answers without a client certificate"
    est none csrattrs
    expect_status 200 "csrattrs"
    check "csrattrs names ecdsa-with-SHA256 and prime256v1" \
        bash -c "base64 -d '$W/body' | openssl asn1parse -inform DER | grep -q ecdsa-with-SHA256 &&
                 base64 -d '$W/body' | openssl asn1parse -inform DER | grep -q prime256v1"

    "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/dev" 00DB120000000100 4 >/dev/null
    DEV0=$(ls "$W/dev"/*.der | head -1)
    BEFORE=$(count_certs)
    enrol gittest simpleenroll "$DEV0"
    expect_status 200 "simpleenroll of a device CSR, auto-approved (direct issuance)"
    certs_of_body >"$W/dev0.pem" 2>/dev/null || true
    check "the answer is one certificate (openssl pkcs7 -print_certs)" grep -q "BEGIN CERTIFICATE" "$W/dev0.pem"
    check "it verifies to the test root through the device CA (openssl verify)" \
        openssl verify -CAfile "$SMKI_HOME/ca/test/smki-root.pem" -untrusted "$SMKI_HOME/ca/test/smki-dca.pem" \
        -partial_chain "$W/dev0.pem"
    expect_exit 0 "it lints clean as a device certificate" smki lint --env test "$W/dev0.pem"
    [[ $(count_certs) == $((BEFORE + 1)) ]] && ok "one certificate more in the store" || not_ok "store count"
    run smki --json audit list
    expect_in "via party GITTEST over EST" "the audit trail says the request came from GITTEST over EST"
    expect_in '"action":"ca-issue-direct"' "an entry of the gate's direct issuance"
    [[ $(smki --json ra request list | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))') == 0 ]] &&
        ok "no RA request was made (nothing is executed unapproved)" || not_ok "a request was made"
    expect_exit 0 "the audit trail verifies" smki audit verify

    # The same CSR again (a client that lost the answer): the same certificate, nothing
    # issued twice. simplereenroll renews only the connection's own client certificate.
    cp "$W/body" "$W/first.b64"
    enrol gittest simpleenroll "$DEV0"
    expect_status 200 "simpleenroll of the same CSR again"
    check "the same certificate comes back" cmp -s "$W/body" "$W/first.b64"
    [[ $(count_certs) == $((BEFORE + 1)) ]] && ok "nothing issued twice" || not_ok "a second certificate was issued"
    openssl req -inform DER -in "$DEV0" -out "$W/dev0.csr" 2>/dev/null
    expect_exit 2 "the CLI refuses a second in-use certificate for that device and key" smki ca issue --env test \
        --csr "$W/dev0.csr" --party GITTEST --out "$W/dev0-cli.pem"
    expect_in "already holds in-use certificate" "naming the certificate EST issued"
    expect_exit 0 "the CLI issues the same device CSR when asked for explicitly" smki ca issue --env test \
        --csr "$W/dev0.csr" --party GITTEST --out "$W/dev0-cli.pem" --allow-duplicate-key
    same_profile "device" "$W/dev0.pem" "$W/dev0-cli.pem"
    enrol gittest simplereenroll "$DEV0"
    expect_status 403 "simplereenroll of a device CSR: it renews only the client certificate of the connection"
    expect_in "not the subject of the certificate being renewed" "the refusal names the rule (RFC 7030 4.2.2)"
    [[ $(count_certs) == $((BEFORE + 2)) ]] && ok "nothing issued by it" || not_ok "simplereenroll issued a certificate"
    enrol gittest simpleenroll "$DEV0"
    check "asked again after the CLI certified the same key: still the request's own certificate" \
        cmp -s "$W/body" "$W/first.b64"
    N409=$(count_certs)
    enrol gittest simpleenroll "$DEV0" --url-query cn=other
    expect_status 409 "the same device key as another enrolment (another query): a second in-use certificate is refused"
    expect_in "already holds in-use certificate" "the answer names the certificate there"
    [[ $(count_certs) == "$N409" ]] && ok "nothing issued" || not_ok "a certificate was issued"

    # An organisation certificate, role and EUI-64 from the label; the CLI issues the same CSR
    # directly: the two certificates differ only in serial, validity times and signature.
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org.key" -subj "/CN=SUPPLIERA" \
        -addext "keyUsage=critical,digitalSignature" -outform DER -out "$W/org.der" 2>/dev/null
    enrol gittest org-supplier-90B3D51F30010000/simpleenroll "$W/org.der" --url-query cn=SUPPLIERA
    expect_status 200 "simpleenroll of an organisation certificate (label org-supplier-<EUI-64>, ?cn=)"
    certs_of_body >"$W/org-est.pem" 2>/dev/null || true
    expect_exit 0 "it lints clean" smki lint --env test "$W/org-est.pem"
    check "it verifies to the root through the organisation CA" openssl verify -CAfile \
        "$SMKI_HOME/ca/test/smki-root.pem" -untrusted "$SMKI_HOME/ca/test/smki-oca.pem" "$W/org-est.pem"
    openssl req -inform DER -in "$W/org.der" -out "$W/org.csr" 2>/dev/null
    expect_exit 0 "the CLI issues the same CSR" smki ca issue --env test --csr "$W/org.csr" \
        --role supplier --eui 90-B3-D5-1F-30-01-00-00 --cn SUPPLIERA --party GITTEST --out "$W/org-cli.pem"
    same_profile "organisation" "$W/org-est.pem" "$W/org-cli.pem"

    # DCCKI TLS certificates of the client's Party.
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/tlsc.key" -subj "/CN=meter-head" \
        -addext "keyUsage=critical,digitalSignature" -outform DER -out "$W/tlsc.der" 2>/dev/null
    enrol gittest dccki-client/simpleenroll "$W/tlsc.der"
    expect_status 200 "simpleenroll of a DCCKI client certificate"
    certs_of_body >"$W/tlsc.pem" 2>/dev/null || true
    check "its Party Signifier is the client's (GITTEST)" bash -c \
        "openssl x509 -in '$W/tlsc.pem' -noout -subject -nameopt sep_multiline | grep -q 'organizationIdentifier=GITTEST'"
    check "clientAuth" bash -c "openssl x509 -in '$W/tlsc.pem' -noout -ext extendedKeyUsage | grep -q 'Client Authentication'"
    expect_exit 0 "it lints clean" smki lint --env test "$W/tlsc.pem"
    openssl req -inform DER -in "$W/tlsc.der" -out "$W/tlsc.csr" 2>/dev/null
    expect_exit 0 "the CLI issues the same DCCKI client CSR" smki ca issue --env test --profile dccki-client \
        --csr "$W/tlsc.csr" --party GITTEST --out "$W/tlsc-cli.pem"
    same_profile "dccki-client" "$W/tlsc.pem" "$W/tlsc-cli.pem"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/tlss.key" -subj "/CN=head-end" \
        -addext "keyUsage=critical,digitalSignature" -outform DER -out "$W/tlss.der" 2>/dev/null
    enrol gittest dccki-server/simpleenroll "$W/tlss.der" --url-query dns=he.example.net --url-query ip=10.1.2.3
    expect_status 200 "simpleenroll of a DCCKI server certificate (?dns=, ?ip=)"
    certs_of_body >"$W/tlss.pem" 2>/dev/null || true
    check "it names the endpoint" bash -c "openssl x509 -in '$W/tlss.pem' -noout -ext subjectAltName |
        grep -q 'DNS:he.example.net, IP Address:10.1.2.3'"
    expect_exit 0 "it lints clean" smki lint --env test "$W/tlss.pem"

    # ---- Renewal (RFC 7030 4.2.2): the connection's client certificate, a new key, exactly
    # its subject (CSRs made by python3-cryptography) ---------------------------------------------
    "$PY" - "$T/gittest.pem" "$W/renew" <<'PYEOF'
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
cert = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
def csr(subject, out):
    key = ec.generate_private_key(ec.SECP256R1())
    req = (x509.CertificateSigningRequestBuilder().subject_name(subject)
           .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
           .sign(key, hashes.SHA256()))
    open(out + ".der", "wb").write(req.public_bytes(serialization.Encoding.DER))
    open(out + ".key", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
csr(cert.subject, sys.argv[2])
csr(cert.subject, sys.argv[2] + "2")
csr(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "someone-else")]), sys.argv[2] + "-other")
PYEOF
    NR=$(count_certs)
    enrol gittest simplereenroll "$W/renew.der"
    expect_status 200 "simplereenroll: the client certificate of the connection renewed with a new key"
    certs_of_body >"$T/renewed.pem" 2>/dev/null || true
    cp "$W/renew.key" "$T/renewed.key"
    check "the renewed certificate has exactly the subject of the one renewed" bash -c \
        "[ \"\$(openssl x509 -in '$T/renewed.pem' -noout -subject)\" = \"\$(openssl x509 -in '$T/gittest.pem' -noout -subject)\" ]"
    check "its key is the CSR's new key" bash -c \
        "cmp -s <(openssl x509 -in '$T/renewed.pem' -noout -pubkey) <(openssl pkey -in '$W/renew.key' -pubout)"
    check "it verifies to the DCCKI root (openssl verify)" openssl verify -CAfile "$SMKI_HOME/ca/test/dccki-root.pem" \
        -untrusted "$SMKI_HOME/ca/test/dccki-ica.pem" "$T/renewed.pem"
    expect_exit 0 "it lints clean" smki lint --env test "$T/renewed.pem"
    [[ $(count_certs) == $((NR + 1)) ]] && ok "one certificate issued" || not_ok "store count after the renewal"
    enrol renewed simplereenroll "$W/renew2.der"
    expect_status 200 "the renewed certificate authenticates and renews itself in turn (curl with it)"
    enrol gittest simplereenroll "$W/renew-other.der"
    expect_status 403 "simplereenroll of a CSR with another subject"
    expect_in "not the subject of the certificate being renewed" "the refusal says which rule"
    enrol other simplereenroll "$W/renew.der"
    expect_status 403 "another Party's client certificate cannot renew GITTEST's (the CSR's subject is not its own)"
    enrol none simplereenroll "$W/renew.der"
    expect_status 401 "simplereenroll without a client certificate"
    enrol gittest device/simplereenroll "$W/renew.der"
    expect_status 400 "simplereenroll with a label other than dccki-client"
    [[ $(count_certs) == $((NR + 2)) ]] && ok "the refused renewals issued nothing" || not_ok "a refused renewal issued"

    # ---- Refusals: the right status, a message, nothing issued --------------------------------------
    N0=$(count_certs)
    DEV1=$(ls "$W/dev"/*.der | sed -n 2p)
    enrol none simpleenroll "$DEV1"
    expect_status 401 "no client certificate"
    expect_in "DCCKI client certificate" "the message says what is needed"
    expect_exit 0 "the client certificate 'revoked' is revoked" smki ca revoke --env test \
        "$(openssl x509 -in "$T/revoked.pem" -noout -serial | cut -d= -f2)" --reason keyCompromise
    enrol revoked simpleenroll "$DEV1"
    expect_status 401 "a revoked client certificate"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$T/stranger.key" \
        -subj "/organizationIdentifier=GITTEST/CN=stranger" -addext "extendedKeyUsage=clientAuth" \
        -out "$T/stranger.pem" 2>/dev/null
    enrol stranger simpleenroll "$DEV1"
    expect_status 401 "a client certificate of a CA the service does not trust"
    grep -q 'client certificate does not verify' "$W/s1.log" && ok "the log says it does not verify" ||
        not_ok "no 'does not verify' in the log"
    # Expired: signed by the DCCKI issuing CA's own key (a file in this test), valid in 2020.
    "$PY" - "$SMKI_HOME" "$T" <<'PYEOF'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
home, t = sys.argv[1], sys.argv[2]
ica = x509.load_pem_x509_certificate(open(home + "/ca/test/dccki-ica.pem", "rb").read())
ica_key = serialization.load_pem_private_key(open(home + "/keys/dccki_ica.pem", "rb").read(), None)
key = ec.generate_private_key(ec.SECP256R1())
ski = ica.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), "GITTEST"),
                                                            x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
        .issuer_name(ica.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2020, 1, 1)).not_valid_after(datetime.datetime(2020, 6, 1))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
        .sign(ica_key, hashes.SHA256()))
open(t + "/expired.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(t + "/expired.key", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
PYEOF
    enrol expired simpleenroll "$DEV1"
    expect_status 401 "an expired client certificate"
    enrol labclient simpleenroll "$DEV1"
    expect_status 401 "a client certificate of another environment (lab), though its CA is trusted"
    grep -q '"client certificate unknown"' "$W/s1.log" && ok "logged: not a certificate of this environment" ||
        not_ok "the log does not say unknown"
    # Test certificates go only to Testing Participants with their agreement signed.
    expect_exit 0 "GITTEST's agreement is withdrawn" smki ra party set GITTEST --agreement-signed no
    enrol gittest simpleenroll "$DEV1"
    expect_status 403 "a Party without its Testing Participant agreement, in test"
    expect_in "agreement" "the refusal says why"
    expect_exit 0 "and signed again" smki ra party set GITTEST --agreement-signed yes
    enrol other simpleenroll "$DEV1"
    expect_status 403 "a Party that is not an Authorised Subscriber for device certificates"
    expect_in "PS-OTHER" "the refusal names the Party"
    enrol gittest org-supplier-90B3D51F30010005/simpleenroll "$W/org.der"
    expect_status 403 "an organisation EUI-64 that is not the Party's"
    enrol gittest org-supplier-90B3D51F40000000/simpleenroll "$W/org.der"
    expect_status 403 "an organisation EUI-64 of another Party"
    expect_in "PS-OTHER" "the refusal names whose it is"
    enrol gittest org-networkOperator-90B3D51F30010000/simpleenroll "$W/org.der"
    expect_status 403 "a role the Party is not authorised for"
    "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/central" 90B3D51F30000005 1 >/dev/null
    enrol gittest device/simpleenroll "$(ls "$W/central"/*.der)"
    expect_status 403 "a device ID from a central block"
    "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/foreign" 00DB130000000001 1 >/dev/null
    enrol gittest device/simpleenroll "$(ls "$W/foreign"/*.der)"
    expect_status 403 "a Device ID in none of the Party's device blocks"
    expect_in "in no device block of party GITTEST" "the refusal says whose blocks it is not in"
    "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/theirs" 00DB140000000001 1 >/dev/null
    enrol gittest simpleenroll "$(ls "$W/theirs"/*.der)"
    expect_status 403 "a Device ID of another Party's device block"
    expect_in "device block of party PS-OTHER, not of GITTEST" "the refusal names whose block it is"
    enrol other dccki-client/simpleenroll "$W/tlsc.der"
    expect_status 200 "PS-OTHER may have a DCCKI client certificate of its own"
    printf 'this is not base64!' >"$W/bad.b64"
    est gittest simpleenroll -H "Content-Type: application/pkcs10" --data-binary "@$W/bad.b64"
    expect_status 400 "malformed base64"
    expect_in "base64" "the message says it is the base64"
    head -c 300 /dev/urandom >"$W/junk.der"
    enrol gittest simpleenroll "$W/junk.der"
    expect_status 400 "base64 of bytes that are no DER PKCS#10"
    enrol gittest device/simpleenroll "$DEV1" --url-query dns=x.example
    expect_status 400 "a device certificate with endpoint names"
    enrol gittest bogus-label/simpleenroll "$W/tlsc.der"
    expect_status 400 "an unknown label"
    head -c 20000 /dev/zero | tr '\0' 'A' >"$W/big.b64"
    est gittest simpleenroll -H "Content-Type: application/pkcs10" --data-binary "@$W/big.b64"
    expect_status 413 "an enrolment body over 16384 octets"
    est gittest simpleenroll
    expect_status 405 "simpleenroll takes POST"
    est gittest nothing-here
    expect_status 404 "an unknown operation"
    N1=$(count_certs)
    [[ $N1 == $((N0 + 1)) ]] && ok "the refusals issued nothing (only PS-OTHER's certificate: $N0 -> $N1)" ||
        not_ok "certificates issued by refusals: $N0 -> $N1"
    # /metrics: requests by operation and outcome (Prometheus text), for supervisors as /health.
    run curl -sS --max-time 20 -o "$W/metrics" -w '%{http_code}' --cacert "$T/server.pem" "https://127.0.0.1:$PORT/metrics"
    expect_in 200 "GET /metrics answers without a client certificate"
    check "it counts simplereenroll by outcome: 2 renewed, 3 refused, 1 unauthenticated, 1 bad request" "$PY" -c '
import re, sys
m = {}
for line in open(sys.argv[1]):
    g = re.match(r"smki_est_requests_total\{env=\"test\",operation=\"(\w+)\",outcome=\"(\w+)\"\} (\d+)$", line.strip())
    if g: m[(g[1], g[2])] = int(g[3])
r = lambda o: m.get(("simplereenroll", o), 0)
assert (r("ok"), r("refused"), r("unauthenticated"), r("bad_request")) == (2, 3, 1, 1), m
e = lambda o: m.get(("simpleenroll", o), 0)
assert e("ok") >= 5 and e("refused") >= 5 and e("unauthenticated") >= 4 and e("conflict") == 1, m
assert m.get(("cacerts", "ok")) == 1 and m.get(("csrattrs", "ok")) == 1, m
' "$W/metrics"
    est_stop "auto-approving service"
else
    not_ok "the service starts"
fi

# ---- Approvals (no direct environment: requests, approvals_organisation = 1): 202 + Retry-After,
# then the certificate ------------------------------------------------------------------------------
{ cat "$BASE"; printf '[ra]\ndirect_issue = none\n'; } >"$SMKI_HOME/smki.conf"
json_field() { "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read().split("\n",1)[1])[sys.argv[1]])' "$1" <<<"$OUT"; }
req_state() { smki --json ra request show "$1" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("state", d))'; }
pem_batch() { # OUT FILES...: the DER CSRs as one concatenated PEM body
    local out=$1 f
    shift
    : >"$out"
    for f in "$@"; do openssl req -inform DER -in "$f" >>"$out" 2>/dev/null; done
}
# ---- A device batch where test issues directly ([ra] direct_issue = test): the RA's batch gate
# (as 'smki ca batch'), no approval, audited "via party GITTEST over EST"; polled, then PKCS#7 --------
{ cat "$BASE"; printf '[ra]\ndirect_issue = test\n'; } >"$SMKI_HOME/smki.conf"
direct_entries() { smki --json audit list | grep -o '"action":"ca-batch-direct"' | wc -l; }
if est_start "$W/sd.log"; then
    "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/dbatch" 00DB120000000300 5 >/dev/null
    "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/dforeign" 00DB140000000300 1 >/dev/null
    mapfile -t DCSR < <(ls "$W/dbatch"/*.der)
    pem_batch "$W/dbatch.pem" "${DCSR[@]:0:4}"
    ND=$(count_certs)
    NR=$(smki --json ra request list | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))')
    est gittest batch -H "Content-Type: application/x-pem-file" --data-binary "@$W/dbatch.pem"
    expect_status 202 "a batch of 4 device CSRs in a direct environment: 202 Accepted, no approval asked"
    grep -qi '^location: /.well-known/est/batch/' "$W/headers" && ok "with a Location" || not_ok "no Location"
    DID=$(json_field request)
    [[ $DID =~ ^[0-9a-f]{64}$ ]] && ok "the batch's request id ($DID)" || not_ok "request id '$DID'"
    expect_in '"replay":false' "a new batch"
    est other "batch/$DID"
    expect_status 404 "another Party cannot see the batch"
    await_batch "$DID" 100
    expect_status 200 "polled until done: the certificates, with no operator's approval"
    cp "$W/body" "$W/dbatch.b64"
    certs_of_body >"$W/dbatch-certs.pem" 2>/dev/null || true
    [[ $(grep -c 'BEGIN CERTIFICATE' "$W/dbatch-certs.pem") == 4 ]] && ok "openssl pkcs7 -print_certs reads 4 certificates" ||
        not_ok "not 4 certificates in the batch's PKCS#7"
    check "each lints clean" smki lint --env test "$W/dbatch-certs.pem"
    check "the certificates come in the batch's CSR order (python3-cryptography)" "$PY" -c '
import base64, sys
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7, Encoding, PublicFormat
certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(open(sys.argv[1], "rb").read()))
csrs = [x509.load_der_x509_csr(open(f, "rb").read()) for f in sys.argv[2:]]
key = lambda k: k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
assert [key(c.public_key()) for c in certs] == [key(r.public_key()) for r in csrs]
' "$W/body" "${DCSR[@]:0:4}"
    [[ $(count_certs) == $((ND + 4)) ]] && ok "4 certificates in the store" || not_ok "store count after the batch"
    est gittest "batch/$DID" --url-query format=json
    expect_in '"state":"done","direct":true,"done":4,"total":4' "format=json gives the progress: done, 4 of 4"
    [[ $(smki --json ra request list | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))') == "$NR" ]] &&
        ok "no RA request was made" || not_ok "an RA request was made"
    run smki --json audit list
    expect_in '"action":"ca-batch-direct"' "the RA's batch gate audited it"
    expect_in "via party GITTEST over EST" "the entry says it came from GITTEST over EST"
    ED=$(direct_entries)
    expect_exit 0 "the audit trail verifies" smki audit verify
    est gittest batch -H "Content-Type: application/x-pem-file" --data-binary "@$W/dbatch.pem"
    expect_status 200 "the same batch replayed: done"
    expect_in '"replay":true' "the replay is the same batch"
    [[ $(count_certs) == $((ND + 4)) ]] && ok "a replayed batch issues nothing" || not_ok "a replay issued certificates"
    # Refused whole by the RA's rules, nothing issued: a Device ID of PS-OTHER's block.
    pem_batch "$W/dforeign.pem" "${DCSR[4]}" "$(ls "$W/dforeign"/*.der)"
    est gittest batch --data-binary "@$W/dforeign.pem"
    expect_status 403 "a batch holding a Device ID outside the Party's device blocks is refused whole"
    expect_in "CSR#2: Device ID 00-DB-14-00-00-00-03-00 is in a device block of party PS-OTHER" \
        "the refusal names the CSR and the rule"
    [[ $(count_certs) == $((ND + 4)) ]] && ok "the refused batch issued nothing" || not_ok "the refused batch issued"
    est none batch --data-binary "@$W/dbatch.pem"
    expect_status 401 "a batch without a client certificate"
    est_stop "direct batch service"
fi
# A restart forgets the batch, the store does not: sent again, the 4 come back and a 5th
# CSR added to them is the only one issued (a batch interrupted part-way resumes so).
if est_start "$W/sd2.log"; then
    est gittest "batch/$DID"
    expect_status 404 "after a restart the batch is not known by its id"
    expect_in "send the same batch again" "the answer says what to do"
    est gittest batch -H "Content-Type: application/x-pem-file" --data-binary "@$W/dbatch.pem"
    expect_status 202 "the same batch sent again after a restart"
    await_batch "$(json_field request)" 100
    check "the same certificates come back" cmp -s "$W/body" "$W/dbatch.b64"
    pem_batch "$W/dbatch5.pem" "${DCSR[@]:0:5}"
    est gittest batch -H "Content-Type: application/x-pem-file" --data-binary "@$W/dbatch5.pem"
    await_batch "$(json_field request)" 100
    certs_of_body >"$W/dbatch5-certs.pem" 2>/dev/null || true
    [[ $(grep -c 'BEGIN CERTIFICATE' "$W/dbatch5-certs.pem") == 5 ]] && ok "the 4 and a 5th CSR: 5 certificates" ||
        not_ok "not 5 certificates"
    [[ $(count_certs) == $((ND + 5)) ]] && ok "only the 5th issued: nothing twice" || not_ok "store count $(count_certs)"
    [[ $(direct_entries) == $((ED + 1)) ]] && ok "one audit entry more, for the 5th" || not_ok "audit entries"
    expect_exit 0 "the audit trail verifies" smki audit verify
    est_stop "direct batch service after a restart"
else
    not_ok "the service starts"
fi
{ cat "$BASE"; printf '[ra]\ndirect_issue = none\n'; } >"$SMKI_HOME/smki.conf"
if est_start "$W/s2.log" --retry-after 2; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org2.key" -subj "/CN=SUPPLIERA" \
        -addext "keyUsage=critical,keyAgreement" -outform DER -out "$W/org2.der" 2>/dev/null
    enrol gittest org-02-90-B3-D5-1F-30-01-00-00/simpleenroll "$W/org2.der"
    expect_status 202 "an organisation certificate that needs an approval: 202 Accepted"
    grep -qi '^retry-after: 2' "$W/headers" && ok "with Retry-After: 2" || { not_ok "no Retry-After: 2"; cat "$W/headers"; }
    RID=$(json_field request)
    [[ $(req_state "$RID") == pending ]] && ok "request $RID is pending in the RA" || not_ok "request $RID state"
    enrol gittest org-02-90-B3-D5-1F-30-01-00-00/simpleenroll "$W/org2.der"
    expect_status 202 "asked again before approval: 202 again"
    [[ $(json_field request) == "$RID" ]] && ok "the same request ($RID), no second one" || not_ok "a second request"
    expect_exit 2 "the service's operator cannot approve what it submitted" smki ra request approve "$RID" \
        --operator est --operator-key "file:$W/est-op.pem"
    expect_exit 0 "another operator approves" smki ra request approve "$RID" --operator tester
    enrol gittest org-02-90-B3-D5-1F-30-01-00-00/simpleenroll "$W/org2.der"
    expect_status 200 "asked again after approval: the certificate (RFC 7030 4.2.3)"
    certs_of_body >"$W/org2.pem" 2>/dev/null || true
    expect_exit 0 "it lints clean" smki lint --env test "$W/org2.pem"
    [[ $(req_state "$RID") == done ]] && ok "request $RID is done" || not_ok "request $RID not done"

    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org3.key" -subj "/CN=X" \
        -addext "keyUsage=critical,digitalSignature" -outform DER -out "$W/org3.der" 2>/dev/null
    enrol gittest org-supplier-90B3D51F30010000/simpleenroll "$W/org3.der"
    expect_status 202 "another organisation request: 202"
    RID3=$(json_field request)
    expect_exit 0 "an operator rejects it" smki ra request reject "$RID3" --reason "wrong CN" --operator tester
    enrol gittest org-supplier-90B3D51F30010000/simpleenroll "$W/org3.der"
    expect_status 403 "a rejected request: 403"
    expect_in "wrong CN" "the answer gives the operator's reason"

    # ---- A device batch: 202 and a Location, progress, then PKCS#7 certs-only -------------------
    "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/batch" 00DB120000000200 6 >/dev/null
    mapfile -t BCSR < <(ls "$W/batch"/*.der)
    pem_batch "$W/batch.pem" "${BCSR[@]:0:4}"
    NB=$(count_certs)
    est gittest batch -H "Content-Type: application/x-pem-file" --data-binary "@$W/batch.pem"
    expect_status 202 "a batch of 4 device CSRs: 202 Accepted"
    grep -qi '^location: /.well-known/est/batch/' "$W/headers" && ok "with a Location" || not_ok "no Location"
    BID=$(json_field request)
    [[ $(json_field total) == 4 ]] && ok "the answer counts 4 CSRs" || not_ok "total"
    est gittest "batch/$BID"
    expect_status 202 "polled before approval: 202 with progress"
    expect_in '"state":"pending"' "the progress says pending"
    est other "batch/$BID"
    expect_status 404 "another Party cannot see the batch"
    expect_exit 0 "an operator approves the batch" smki ra request approve "$BID" --operator tester
    await_batch "$BID" 50
    expect_status 200 "polled after approval: the certificates"
    certs_of_body >"$W/batch-certs.pem" 2>/dev/null || true
    [[ $(grep -c 'BEGIN CERTIFICATE' "$W/batch-certs.pem") == 4 ]] && ok "openssl pkcs7 -print_certs reads 4 certificates" ||
        not_ok "not 4 certificates in the batch's PKCS#7"
    check "each lints clean" smki lint --env test "$W/batch-certs.pem"
    check "the certificates come in the batch's CSR order (python3-cryptography)" "$PY" -c '
import base64, sys
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7, Encoding, PublicFormat
certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(open(sys.argv[1], "rb").read()))
csrs = [x509.load_der_x509_csr(open(f, "rb").read()) for f in sys.argv[2:]]
key = lambda k: k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
assert [key(c.public_key()) for c in certs] == [key(r.public_key()) for r in csrs]
' "$W/body" "${BCSR[@]:0:4}"
    [[ $(count_certs) == $((NB + 4)) ]] && ok "4 certificates in the store" || not_ok "store count after the batch"
    est gittest batch -H "Content-Type: application/x-pem-file" --data-binary "@$W/batch.pem"
    expect_status 200 "the same batch replayed"
    expect_in '"replay":true' "the answer says it is a replay"
    [[ $(json_field request) == "$BID" ]] && ok "of request $BID" || not_ok "a replay made a new request"
    [[ $(count_certs) == $((NB + 4)) ]] && ok "a replayed batch issues nothing" || not_ok "a replay issued certificates"

    # Refusals of batches.
    "$PY" "$SMKI_SRC/tools/device_csrs.py" "$W/central2" 90B3D51F30000006 1 >/dev/null
    pem_batch "$W/mixed.pem" "${BCSR[4]}" "$(ls "$W/central2"/*.der)"
    est gittest batch --data-binary "@$W/mixed.pem"
    expect_status 403 "a batch holding a central-block ID is refused whole"
    pem_batch "$W/foreign.pem" "${BCSR[4]}" "$(ls "$W/foreign"/*.der)"
    est gittest batch --data-binary "@$W/foreign.pem"
    expect_status 403 "a batch holding a Device ID outside the Party's device blocks is refused whole"
    expect_in "CSR 2 of the batch" "the refusal names the CSR"
    expect_in "in no device block of party GITTEST" "and why"
    expect_in "CSR 2" "the refusal names the CSR"
    printf -- '-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n' >"$W/badpem.pem"
    est gittest batch --data-binary "@$W/badpem.pem"
    expect_status 400 "a batch whose PEM body is not base64"
    printf 'garbage' >"$W/garbage.pem"
    est gittest batch --data-binary "@$W/garbage.pem"
    expect_status 400 "a batch that is not PEM"
    est none batch --data-binary "@$W/batch.pem"
    expect_status 401 "a batch without a client certificate"
    [[ $(count_certs) == $((NB + 4)) ]] && ok "the refused batches issued nothing" || not_ok "refused batches issued"

    # Left approved while the service is down: the next start carries it on without a poll.
    pem_batch "$W/late.pem" "${BCSR[@]:4:2}"
    est gittest batch --data-binary "@$W/late.pem"
    expect_status 202 "a batch of 2 submitted"
    LID=$(json_field request)
    est_stop "service with approvals"
    expect_exit 0 "approved while the service is down" smki ra request approve "$LID" --operator tester
else
    not_ok "the service with approvals starts"
fi
if est_start "$W/s3.log" --max-batch 3 --max-body 4096 --timeout 2; then
    for _ in $(seq 1 50); do [[ $(req_state "$LID") == done ]] && break; sleep 0.2; done
    [[ $(req_state "$LID") == done ]] && ok "the restarted service executed the approved batch by itself" ||
        not_ok "the approved batch was not resumed"
    est gittest "batch/$LID"
    expect_status 200 "its certificates"
    pem_batch "$W/four.pem" "${BCSR[@]:0:4}"
    est gittest batch --data-binary "@$W/four.pem"
    expect_status 413 "more CSRs than --max-batch"
    head -c 5000 /dev/zero | tr '\0' 'A' >"$W/big.pem"
    est gittest batch --data-binary "@$W/big.pem"
    expect_status 413 "a body over --max-body"
    # A slow client (headers never finished) is cut off after --timeout.
    check "a client that stalls mid-request is disconnected within the timeout" "$PY" - "$PORT" "$T" <<'PYEOF'
import socket, ssl, sys, time
port, t = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=t + "/server.pem")
ctx.load_cert_chain(t + "/gittest.pem", t + "/gittest.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
s.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nMIIB")
t0 = time.time()
s.settimeout(10)
try:
    while s.recv(4096):
        pass
except (ConnectionError, ssl.SSLError):
    pass
took = time.time() - t0
print("closed after %.1f s" % took)
sys.exit(0 if took < 6 else 1)
PYEOF
    est_stop "restarted service"
else
    not_ok "the restarted service starts"
fi

# ---- Killed in the middle of a batch: the next start carries on, nothing issued twice ----------
SMKI_BUILD=${SMKI_BUILD:-$(dirname "$(dirname "$SMKI_BIN")")}
# (the approval flow's batches: test is no direct environment here)
{ cat "$BASE"; printf '[ra]\ndirect_issue = none\nbatch_group = 40\ndemand_baseline = 1000000\nbatch_review_size = 100000\n'; } \
    >"$SMKI_HOME/smki.conf"
"$SMKI_BUILD/bin/make_device_csrs" --out "$W/big-batch.pem" --bundle --count 2000 --start 00-DB-12-00-00-01-00-00 \
    >/dev/null
issued() { smki --json ra request show "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["issued"])'; }
if est_start "$W/s6.log" --max-body 4000000; then
    NK=$(count_certs)
    est gittest batch --data-binary "@$W/big-batch.pem"
    expect_status 202 "a batch of 2000 device CSRs"
    KID=$(json_field request)
    expect_exit 0 "an operator approves it" smki ra request approve "$KID" --operator tester
    est gittest "batch/$KID"
    expect_status 202 "polled: queued, 202 with progress"
    for _ in $(seq 1 200); do [[ $(issued "$KID") -gt 0 ]] && break; sleep 0.02; done
    kill -KILL "${PIDS[-1]}"
    wait "${PIDS[-1]}" 2>/dev/null || true
    unset 'PIDS[-1]'
    DONE=$(issued "$KID")
    if [[ $DONE -gt 0 && $DONE -lt 2000 ]]; then ok "killed with $DONE of 2000 issued"; else
        not_ok "the kill did not land mid-batch ($DONE of 2000 issued)"; fi
    [[ $(count_certs) == $((NK + DONE)) ]] && ok "the store holds exactly the committed groups" ||
        not_ok "store count after the kill"
    if est_start "$W/s7.log"; then
        await_batch "$KID" 100
        expect_status 200 "after a restart the batch completes"
        certs_of_body >"$W/big-certs.pem" 2>/dev/null || true
        [[ $(grep -c 'BEGIN CERTIFICATE' "$W/big-certs.pem") == 2000 ]] && ok "2000 certificates in its PKCS#7" ||
            not_ok "not 2000 certificates in the PKCS#7"
        [[ $(count_certs) == $((NK + 2000)) ]] && ok "exactly 2000 issued: none twice" ||
            not_ok "issued $(($(count_certs) - NK)), not 2000"
        est_stop "restarted after the kill"
    else
        not_ok "the service starts again after the kill"
    fi
else
    not_ok "the service for the big batch starts"
fi

# ---- Killed in the middle of a direct batch: sent again after the restart, it carries on
# from the store (its last group commit), nothing issued twice --------------------------------------
{ cat "$BASE"; printf '[ra]\ndirect_issue = test\ndemand_baseline = 1000000\n'; } >"$SMKI_HOME/smki.conf"
"$SMKI_BUILD/bin/make_device_csrs" --out "$W/big-direct.pem" --bundle --count 10000 --start 00-DB-12-00-00-02-00-00 \
    >/dev/null
if est_start "$W/s8.log" --max-body 8000000; then
    NK=$(count_certs)
    est gittest batch --data-binary "@$W/big-direct.pem"
    expect_status 202 "a direct batch of 10000 device CSRs"
    KID=$(json_field request)
    for _ in $(seq 1 500); do
        est gittest "batch/$KID" --url-query format=json
        [[ $(json_field done) -gt 0 ]] && break
    done
    kill -KILL "${PIDS[-1]}"
    wait "${PIDS[-1]}" 2>/dev/null || true
    unset 'PIDS[-1]'
    DONE=$(($(count_certs) - NK))
    if [[ $DONE -gt 0 && $DONE -lt 10000 ]]; then ok "killed with $DONE of 10000 issued"; else
        not_ok "the kill did not land mid-batch ($DONE of 10000 issued)"; fi
    if est_start "$W/s9.log" --max-body 8000000; then
        est gittest batch --data-binary "@$W/big-direct.pem"
        expect_status 202 "the same batch sent again after the restart"
        await_batch "$(json_field request)" 150
        expect_status 200 "it completes"
        certs_of_body >"$W/big-direct-certs.pem" 2>/dev/null || true
        [[ $(grep -c 'BEGIN CERTIFICATE' "$W/big-direct-certs.pem") == 10000 ]] && ok "10000 certificates in its PKCS#7" ||
            not_ok "not 10000 certificates in the PKCS#7"
        [[ $(count_certs) == $((NK + 10000)) ]] && ok "exactly 10000 issued: none twice" ||
            not_ok "issued $(($(count_certs) - NK)), not 10000"
        expect_exit 0 "the audit trail verifies" smki audit verify
        est_stop "restarted after the kill of a direct batch"
    else
        not_ok "the service starts again after the kill"
    fi
else
    not_ok "the service for the big direct batch starts"
fi
cp "$BASE" "$SMKI_HOME/smki.conf"

# ---- A Testing Participant authorised in test only, enrolling in another environment -----------
if est_start "$W/s5.log" --env lab; then
    enrol labclient simpleenroll "$DEV1"
    expect_status 403 "GITTEST, a Testing Participant authorised for device certificates in test only, in lab"
    expect_in "not an Authorised Subscriber" "refused by the RA's rule, named"
    enrol gittest simpleenroll "$DEV1"
    expect_status 401 "its test client certificate is no identity in lab"
    est_stop "lab service"
else
    not_ok "the lab service starts"
fi

# ---- Everything from [enrol] in smki.conf; refusals of the section ---------------------------------
cp -r "$T" "$SMKI_HOME/tls"
with_enrol() { { cat "$BASE"; printf '[ra]\ndirect_issue = none\n[enrol]\n'; printf '%s\n' "$@"; } >"$SMKI_HOME/smki.conf"; }
with_enrol "env = test" "listen = 127.0.0.1:0" "operator = est" "tls_cert = tls/server.pem" "tls_key = tls/server.key" \
    "client_ca = tls/client-ca.pem" "client_certs = optional" "retry_after = 7" "threads = 1" "access_log = yes"
env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY "$SMKI_BIN" enrol serve 2>"$W/s4.log" &
PIDS+=("$!")
listening_port "$W/s4.log"
if [[ -n $PORT ]]; then
    ok "smki enrol serve with no flags: everything from [enrol]"
    grep -q '"threads":1' "$W/s4.log" && ok "threads from the file" || not_ok "threads from the file"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org4.key" -subj "/CN=Y" \
        -addext "keyUsage=critical,digitalSignature" -outform DER -out "$W/org4.der" 2>/dev/null
    enrol gittest org-supplier-90B3D51F30010000/simpleenroll "$W/org4.der"
    expect_status 202 "an enrolment through the file-configured service"
    grep -qi '^retry-after: 7' "$W/headers" && ok "retry_after = 7 from the file" || not_ok "retry_after from the file"
    est_stop "file-configured service"
else
    not_ok "smki enrol serve from [enrol]"
    sed 's/^/#   /' "$W/s4.log"
fi
with_enrol "env = test" "listen = 127.0.0.1:0" "operator = est" "retry_afte = 3"
expect_exit 1 "a typo under [enrol] is refused" env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY "$SMKI_BIN" enrol serve
expect_in "unknown setting 'retry_afte' under [enrol] (did you mean 'retry_after'?)" "naming the key and the nearest one"
with_enrol "env = test" "listen = 127.0.0.1:0" "operator = est"
expect_exit 1 "no TLS: refused (enrolment is over mutual TLS)" env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY \
    "$SMKI_BIN" enrol serve
expect_in "mutual TLS" "the message says what is needed"
with_enrol "env = test" "listen = 127.0.0.1:0" "operator = nobody" "tls_cert = tls/server.pem" \
    "tls_key = tls/server.key" "client_ca = tls/client-ca.pem"
printf '[operators]\nnobody = file:%s\n' "$W/est-op.pem" >>"$SMKI_HOME/smki.conf"
expect_exit 2 "an operator the RA does not know is refused at start" env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY \
    "$SMKI_BIN" enrol serve
expect_exit 1 "--max-body over the server's limit (64 MiB, as 'smki repo serve') is refused" \
    env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY "$SMKI_BIN" enrol serve --max-body 67108865
expect_in "--max-body is a whole number from 1024 to 67108864" "naming the bounds"
expect_exit 1 "an option given twice is refused (one parser for every command)" \
    env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY "$SMKI_BIN" enrol serve --env test --env lab
expect_exit 0 "smki enrol serve --help" "$SMKI_BIN" enrol serve --help
expect_in "simpleenroll" "the help names the endpoints"
cp "$BASE" "$SMKI_HOME/smki.conf"
expect_exit 0 "after all of it the audit trail verifies (chain, operators' signatures, checkpoints)" smki audit verify
run smki --json audit list
expect_in "via party GITTEST over EST" "EST entries are in the same trail"
stop_servers_and_check_logs "$W/s1.log" "$W/s2.log" "$W/s3.log" "$W/s4.log" "$W/s5.log" "$W/s7.log"

finish
