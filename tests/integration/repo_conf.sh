#!/usr/bin/env bash
# smki repo serve configured from the [repo] section of the home's smki.conf: a start
# from the file alone (plain HTTP, then TLS with mutual TLS and a Party Signifier rule,
# paths relative to the home), flags overriding the file, and refusals: an unknown key
# named with file and line, bad values named by key. Servers are stopped on every exit.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
TIMEOUT=60
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-repo-conf.XXXXXX")
source "$HERE/lib.sh"
repo_cleanup_trap

unset SMKI_PIN SMKI_SO_PIN SMKI_DEBUG SOFTHSM2_CONF
export SMKI_HOME=$W/home
BASE=$W/base.conf
repo_soft_ca_conf "$SMKI_HOME" "$BASE"
cp "$BASE" "$SMKI_HOME/smki.conf"
expect_exit 0 "a test hierarchy to serve" smki ca init --env test --config "$SMKI_HOME/smki.conf"
# Client certificates count only when the store has them in use: the two clients'
# DCCKI certificates come from the CA, through the RA.
ra_test_participant "$SMKI_HOME"
ra_dccki_party "$SMKI_HOME" PS-ALLOWED PS-OTHER
cp "$SMKI_HOME/smki.conf" "$BASE"

# with_repo LINES...: smki.conf is the base plus a [repo] section of these lines.
with_repo() {
    { cat "$BASE"; echo "[repo]"; printf '%s\n' "$@"; } >"$SMKI_HOME/smki.conf"
}
stop_server() {
    local p=${PIDS[-1]} rc=0
    kill -TERM "$p"
    wait "$p" || rc=$?
    unset 'PIDS[-1]'
    [[ $rc == 0 ]] && ok "$1: SIGTERM, exit 0" || not_ok "$1: exit $rc on SIGTERM"
}
in_log() { grep -q "$1" "$2" && ok "$3" || { not_ok "$3"; sed 's/^/#   /' "$2" | tail -5; }; }

# ---- Everything from the file --------------------------------------------------------------
with_repo "env = test" "listen = 127.0.0.1:0" "threads = 1" "max_conns = 50" "timeout = 5" "access_log = yes" \
    "public = health,ca"
if start_server "$W/s1.log"; then
    ok "serve with no flags: env and listen from [repo]"
    in_log '"threads":1,"max_conns":50' "$W/s1.log" "threads and max_conns from the file"
    run curl -sS "http://127.0.0.1:$PORT/health"
    expect_in '"env":"test"' "the test environment is served"
    run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/certificates?eui=00-DB-12-34-56-78-90-A0"
    expect_in "403" "public = health,ca: certificates need a client certificate"
    run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ca"
    expect_in "200" "and /ca is public"
    in_log '"event":"request".*"path":"/health"' "$W/s1.log" "access_log = yes logs requests"
    stop_server "config-only server"
else
    not_ok "serve with no flags"
fi

# ---- Flags override the file ----------------------------------------------------------------
with_repo "env = test" "listen = 127.0.0.1:1" "threads = 1" "public = health"
if start_server "$W/s2.log" --listen 127.0.0.1:0 --threads 3 --public all; then
    [[ $PORT != 1 ]] && ok "--listen overrides the file's (port $PORT, not 1)" || not_ok "--listen did not override"
    in_log '"threads":3' "$W/s2.log" "--threads 3 overrides threads = 1"
    run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/certificates?eui=00-DB-12-34-56-78-90-A0"
    expect_in "200" "--public all overrides public = health"
    if grep -q '"event":"request"' "$W/s2.log"; then not_ok "no access log without access_log"; else ok "no access log without access_log"; fi
    stop_server "flag-overridden server"
else
    not_ok "serve with flags over the file"
fi

# ---- TLS and mutual TLS from the file (paths relative to the home) ---------------------------------
T=$SMKI_HOME/tls
mkdir -p "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$T/server.key" \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" -out "$T/server.pem" 2>/dev/null
for who in PS-ALLOWED PS-OTHER; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$who.key" -subj "/CN=client" \
        -addext "keyUsage=critical,digitalSignature" -out "$T/$who.csr" 2>/dev/null
    expect_exit 0 "a DCCKI client certificate for $who" smki ca issue --env test --profile dccki-client \
        --csr "$T/$who.csr" --party "$who" --out "$T/$who.pem"
done
# One the store does not know: it verifies (it is its own anchor in client_ca) but is refused.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$T/PS-STRANGER.key" \
    -subj "/organizationIdentifier=PS-ALLOWED/CN=client" -out "$T/PS-STRANGER.pem" 2>/dev/null
cat "$SMKI_HOME/ca/test/dccki-ica.pem" "$SMKI_HOME/ca/test/dccki-root.pem" "$T/PS-STRANGER.pem" >"$T/clients.pem"
with_repo "env = test" "listen = 127.0.0.1:0" "tls_cert = tls/server.pem" "tls_key = tls/server.key" \
    "client_ca = tls/clients.pem" "client_certs = optional" "public = health" "allow_party = PS-NOBODY, PS-ALLOWED" \
    "access_log = yes"
if start_server "$W/s3.log"; then
    in_log '"tls":true,"client_certs":"optional"' "$W/s3.log" "TLS and optional client certificates from the file"
    run curl -sS --cacert "$T/server.pem" "https://127.0.0.1:$PORT/health"
    expect_in '"env":"test"' "HTTPS with the file's certificate"
    run curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/server.pem" "https://127.0.0.1:$PORT/ca"
    expect_in "403" "no client certificate: 403 outside public"
    run curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/server.pem" --cert "$T/PS-ALLOWED.pem" \
        --key "$T/PS-ALLOWED.key" "https://127.0.0.1:$PORT/ca"
    expect_in "200" "a Party Signifier in allow_party: 200"
    run curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/server.pem" --cert "$T/PS-OTHER.pem" \
        --key "$T/PS-OTHER.key" "https://127.0.0.1:$PORT/ca"
    expect_in "403" "another Party Signifier: 403"
    in_log '"party":"PS-ALLOWED"' "$W/s3.log" "the client's Party Signifier is logged"
    run curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/server.pem" --cert "$T/PS-STRANGER.pem" \
        --key "$T/PS-STRANGER.key" "https://127.0.0.1:$PORT/ca"
    expect_in "403" "a client certificate that verifies but is not in the store: 403"
    in_log '"client certificate unknown"' "$W/s3.log" "the refusal is logged: client certificate unknown"
    stop_server "TLS server from the file"
else
    not_ok "serve TLS from the file"
fi
with_repo "env = test" "listen = 127.0.0.1:0" "tls_cert = tls/server.pem" "tls_key = tls/server.key" \
    "client_ca = tls/clients.pem" "client_certs = required"
if start_server "$W/s4.log"; then
    in_log '"client_certs":"required"' "$W/s4.log" "client_certs = required"
    run curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/server.pem" "https://127.0.0.1:$PORT/health"
    expect_not_in "200" "required: no handshake without a client certificate"
    run curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/server.pem" --cert "$T/PS-OTHER.pem" \
        --key "$T/PS-OTHER.key" "https://127.0.0.1:$PORT/health"
    expect_in "200" "required: served with one"
    stop_server "mutual TLS server"
else
    not_ok "serve mutual TLS from the file"
fi

# ---- Refusals -----------------------------------------------------------------------------------------
LINES=$(($(wc -l <"$BASE") + 4)) # [repo], env, listen, then the typo
with_repo "env = test" "listen = 127.0.0.1:0" "thread = 2"
expect_exit 1 "a typo under [repo] is refused" smki repo serve
expect_in "smki.conf:$LINES: unknown setting 'thread' under [repo] (did you mean 'threads'?)" \
    "the refusal names the file, the line and the nearest key"
expect_exit 1 "even when a flag would set it" smki repo serve --threads 2
for bad in "threads = 0" "threads = 65" "max_conns = many" "timeout = -1" "max_headers = 10" "access_log = maybe" \
    "public = dcc,secret" "client_certs = required" "allow_party = $(printf 'A%.0s' {1..70})"; do
    with_repo "env = test" "listen = 127.0.0.1:0" "$bad"
    expect_exit 1 "[repo] $bad is refused" smki repo serve
    expect_in "${bad%% *}" "the refusal names ${bad%% *}"
done
with_repo "listen = 127.0.0.1:0"
expect_exit 1 "no env anywhere: usage" smki repo serve
expect_in "[repo]" "the message says where env can be set"

finish
