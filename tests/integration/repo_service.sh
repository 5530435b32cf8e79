#!/usr/bin/env bash
# The repository as a service: from a home that holds only smki.conf (no token, no
# PIN), as an unprivileged user (nobody) that may read the CA's store but not write it
# (LMDB's lock file aside), refusing with what to fix when it may not; SIGHUP reloads
# the TLS certificate and key and the configuration without dropping an established
# connection (a Python TLS client keeps one open across the reload and is still
# answered, with the old certificate, while new handshakes get the new one, per
# openssl s_client); a bad reload changes nothing; SIGTERM exits 0. /health and
# /metrics over curl.
#
# Environment (ctest sets it): SMKI_BIN. Needs root (to become nobody), curl, openssl,
# setpriv (util-linux), /usr/bin/python3.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
PY=/usr/bin/python3
TIMEOUT=60
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_OPERATOR SMKI_OPERATOR_KEY SOFTHSM2_CONF

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-repo-svc.XXXXXX")
W=$ROOT/work
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    rm -rf "$ROOT"
}
trap cleanup EXIT
mkdir -p "$W"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

check "this test runs as root (it becomes nobody)" test "$(id -u)" = 0
# The CA's home, made by root as the CA's user would: software CA keys, a test hierarchy.
CA=$ROOT/ca
mkdir -m 700 "$CA"
repo_soft_ca_conf "$CA" "$CA/smki.conf"
expect_exit 0 "the CA's ceremony" env SMKI_HOME="$CA" timeout "$TIMEOUT" "$SMKI_BIN" ca init --env test
ra_test_participant "$CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org.key" -subj /CN=X \
    -addext keyUsage=critical,digitalSignature -out "$W/org.csr" 2>/dev/null
expect_exit 0 "an organisation certificate" env SMKI_HOME="$CA" "$SMKI_BIN" ca issue --env test --csr "$W/org.csr" \
    --role supplier --party GITTEST --eui 90-B3-D5-1F-30-01-00-00 --out "$W/org.pem"

# The repository's home: smki.conf only. TLS pair A now, pair B later.
R=$ROOT/repo
mkdir -p "$R/tls"
for n in a b; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=repo-$n" \
        -keyout "$W/$n.key" -out "$W/$n.pem" 2>/dev/null
done
cp "$W/a.pem" "$R/tls/repo.pem" && cp "$W/a.key" "$R/tls/repo.key"
cat >"$R/smki.conf" <<CONF
[store]
path = $CA/store

[repo]
env = test
listen = 127.0.0.1:0
tls_cert = tls/repo.pem
tls_key = tls/repo.key
public = all
CONF
# nobody: may enter the CA's home and the store and read data.mdb; lock.mdb (the reader
# table) is its only writable file; the token's files and the PINs stay closed.
chmod 0755 "$ROOT" "$W"
chmod 0711 "$CA"
chgrp nogroup "$CA/store" "$CA/store/data.mdb" "$CA/store/lock.mdb"
chmod 0750 "$CA/store"
chmod 0640 "$CA/store/data.mdb" "$CA/store/lock.mdb"
chmod -R go-rwx "$CA/keys"
chmod -R a+rX "$R"
chmod 0640 "$R/tls/repo.key" && chgrp nogroup "$R/tls/repo.key"
AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs)
check "nobody cannot write the store's data" bash -c "! ${AS_NOBODY[*]} test -w '$CA/store/data.mdb'"
check "nobody cannot read the CA's keys" bash -c "! ${AS_NOBODY[*]} cat '$CA/keys/smki_oca.pem' >/dev/null 2>&1"

# Without write access to lock.mdb: refused, saying what to fix.
run env SMKI_HOME="$R" timeout 10 "${AS_NOBODY[@]}" "$SMKI_BIN" repo serve
if [[ $RC == 3 ]]; then ok "without the reader table the repository refuses to start (exit 3)"; else
    not_ok "without the reader table: exit $RC"
    diag
fi
expect_in "read-write access to its lock.mdb" "and names the file and the access it needs"
chmod 0660 "$CA/store/lock.mdb"

LOG=$W/serve.log
env SMKI_HOME="$R" "${AS_NOBODY[@]}" "$SMKI_BIN" repo serve 2>"$LOG" &
REPO_PID=$!
PIDS+=("$REPO_PID")
listening_port "$LOG"
if [[ -n $PORT ]]; then ok "the repository serves as nobody from a home without token or PIN"; else
    not_ok "the repository did not start"
    sed 's/^/#   /' "$LOG"
fi
check "it runs as nobody" test "$(ps -o user= -p "$REPO_PID" | tr -d ' ')" = nobody
check "its home gained no token folder" test ! -e "$R/hsm"
URL=https://127.0.0.1:$PORT
CURL=(curl -sS --max-time 10 -k)
run "${CURL[@]}" "$URL/health"
expect_in '"status":"degraded"' "/health: degraded while no CRL is published"
expect_in '"smki-oca has published no CRL"' "with the reason"
expect_exit 0 "the CA publishes its CRLs" env SMKI_HOME="$CA" "$SMKI_BIN" ca crl --env test
expect_exit 0 "and its ARLs" env SMKI_HOME="$CA" "$SMKI_BIN" ca arl --env test
run "${CURL[@]}" "$URL/health"
expect_in '"status":"ok"' "/health: ok once they are (read from the store the CA writes, no restart)"
run "${CURL[@]}" "$URL/metrics"
expect_in 'smki_repo_list_next_update_seconds{env="test",ca="smki-oca",list="crl"}' "/metrics: each list's nextUpdate"
expect_in 'smki_repo_tls_cert_not_after_seconds ' "/metrics: the TLS certificate's notAfter"
expect_in 'smki_repo_build_info{version="' "/metrics: build information"

fingerprint() { # the certificate a new handshake gets
    openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256
}
fp_a=$(openssl x509 -in "$W/a.pem" -noout -fingerprint -sha256)
fp_b=$(openssl x509 -in "$W/b.pem" -noout -fingerprint -sha256)
check "a new handshake gets certificate A" test "$(fingerprint)" = "$fp_a"

# A client that keeps its connection across the reload: asks once, waits for 'go',
# asks again on the same connection, prints its peer's fingerprint and both statuses.
cat >"$W/keep.py" <<'PYEOF'
import hashlib, os, socket, ssl, sys, time
port, go, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20))
def ask():
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data: data += s.recv(4096)
    head, rest = data.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(rest) < n: rest += s.recv(4096)
    return head.split(b" ")[1].decode()
first = ask()
open(out + ".ready", "w").close()
for _ in range(200):
    if os.path.exists(go): break
    time.sleep(0.05)
second = ask()
fp = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
open(out, "w").write("%s %s %s\n" % (first, second, fp))
PYEOF
"$PY" "$W/keep.py" "$PORT" "$W/go" "$W/keep.out" &
KEEP=$!
for _ in $(seq 100); do [[ -e $W/keep.out.ready ]] && break; sleep 0.05; done
check "the kept connection was answered before the reload" test -e "$W/keep.out.ready"

# The reload: pair B, and a configuration that closes /metrics to clients without a certificate.
cp "$W/b.pem" "$R/tls/repo.pem" && cp "$W/b.key" "$R/tls/repo.key"
sed -i 's/^public = all/public = dcc,ca,crl,health/' "$R/smki.conf"
kill -HUP "$REPO_PID"
for _ in $(seq 50); do grep -q '"event":"reloaded"' "$LOG" && break; sleep 0.1; done
check "SIGHUP: the log says reloaded" grep -q '"event":"reloaded".*"configuration":true' "$LOG"
check "the process lives on" kill -0 "$REPO_PID"
touch "$W/go"
wait "$KEEP" || true
read -r first second fp_kept <"$W/keep.out" || true
fp_a_hex=$(openssl x509 -in "$W/a.pem" -outform DER | sha256sum | cut -d' ' -f1)
if [[ $first == 200 && $second == 200 ]]; then ok "the connection open across the reload was answered before and after"; else
    not_ok "the kept connection: '$first' then '$second'"
fi
check "and kept certificate A" test "$fp_kept" = "$fp_a_hex"
check "a new handshake gets certificate B" test "$(fingerprint)" = "$fp_b"
run "${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/metrics"
expect_in "403" "the reloaded configuration applies: /metrics needs a client certificate now"
run "${CURL[@]}" "$URL/health"
expect_in '"status":"ok"' "/health is still public"

# A bad reload (a key that is not the certificate's): logged, nothing changes.
cp "$W/a.key" "$R/tls/repo.key"
kill -HUP "$REPO_PID"
for _ in $(seq 50); do grep -q '"event":"reload","failed":"tls"' "$LOG" && break; sleep 0.1; done
check "a key that is not the certificate's: the reload is refused and logged" \
    grep -q '"level":"error","event":"reload","failed":"tls".*is not the certificate' "$LOG"
check "the server keeps certificate B" test "$(fingerprint)" = "$fp_b"
cp "$W/b.key" "$R/tls/repo.key"
sed -i 's/^listen = 127.0.0.1:0/listen = 127.0.0.1:1/' "$R/smki.conf"
kill -HUP "$REPO_PID"
for _ in $(seq 50); do grep -q 'needs_restart' "$LOG" && break; sleep 0.1; done
check "a change only a restart applies is logged by name" grep -q '"needs_restart":"listen"' "$LOG"
run "${CURL[@]}" "$URL/health"
expect_in '"status":"ok"' "and the server goes on serving"

kill -TERM "$REPO_PID"
rc=0
wait "$REPO_PID" || rc=$?
PIDS=()
if [[ $rc == 0 ]]; then ok "SIGTERM: exit 0"; else not_ok "SIGTERM: exit $rc"; fi
check "the log says stopped" grep -q '"event":"stopped"' "$LOG"

# smki-repo.service's view of the store, built as systemd builds it: in a private mount
# namespace the CA's home is a read-only mount (ReadOnlyPaths=) and lock.mdb alone is
# bound writable again (ReadWritePaths=). The data file cannot be written even by root
# there; the repository serves, and sees what the CA writes outside (the same file).
# (make deb-check runs the real unit under systemd.)
LOG2=$W/serve-ro.log
sed -i -e 's/^listen = 127.0.0.1:1$/listen = 127.0.0.1:0/' -e 's/^public = .*/public = all/' "$R/smki.conf"
unshare --mount --propagation private bash -c '
    set -e
    mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"
    mount --bind "$1/store/lock.mdb" "$1/store/lock.mdb" && mount -o remount,bind,rw "$1/store/lock.mdb"
    if touch "$1/store/data.mdb" 2>/dev/null; then echo "data.mdb writable" >&2; exit 9; fi
    findmnt -no OPTIONS -T "$1/store/data.mdb" | grep -qE "(^|,)ro(,|$)"
    shift
    exec "$@"' _ "$CA" env SMKI_HOME="$R" "${AS_NOBODY[@]}" "$SMKI_BIN" repo serve 2>"$LOG2" &
REPO_PID=$!
PIDS+=("$REPO_PID")
listening_port "$LOG2"
if [[ -n $PORT ]]; then ok "the repository serves with the store on a read-only mount, lock.mdb alone writable"; else
    not_ok "the repository did not start on the read-only store"
    sed 's/^/#   /' "$LOG2"
fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org2.key" -subj /CN=Y \
    -addext keyUsage=critical,keyAgreement -out "$W/org2.csr" 2>/dev/null
expect_exit 0 "the CA issues while it serves" env SMKI_HOME="$CA" "$SMKI_BIN" ca issue --env test --csr "$W/org2.csr" \
    --role supplier --party GITTEST --eui 90-B3-D5-1F-30-01-00-00 --der --out "$W/org2.der"
S2=$(openssl x509 -inform DER -in "$W/org2.der" -noout -serial | cut -d= -f2)
run curl -sS --max-time 10 -k -o "$W/got2.der" "https://127.0.0.1:$PORT/certificates/$S2"
check "the new certificate is served from the read-only mount" cmp "$W/got2.der" "$W/org2.der"
kill -TERM "$REPO_PID"
rc=0
wait "$REPO_PID" || rc=$?
PIDS=()
if [[ $rc == 0 ]]; then ok "and stops with exit 0"; else not_ok "the read-only-mount server: exit $rc"; sed 's/^/#   /' "$LOG2"; fi
cat "$LOG2" >>"$LOG"
if grep -qE 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:' "$LOG"; then
    not_ok "no sanitizer report in the server's log"
    sed 's/^/#   /' "$LOG" | head -40
else
    ok "no sanitizer report in the server's log"
fi
finish
