#!/usr/bin/env bash
# The systemd units' command lines, run here as systemd would run them (no systemd is
# PID 1 in make test; `make deb-check` boots one and runs the units themselves): each
# unit's Environment=, ExecStart= and ExecStartPost= lines read from the unit file, its
# specifiers (%i the instance, %d $CREDENTIALS_DIRECTORY) filled in, the paths mapped
# into a temp dir, run as an unprivileged user (User=/SupplementaryGroups=).
#   smki-publish@test.service: the CA's user ('daemon' here, 'smki' installed) with the
#   PIN only in a credentials directory laid out as LoadCredential= lays it out (a
#   0400 file of the service's user in a 0500 folder); the CA's smki.conf names no PIN.
#   smki-repo.service: another user ('nobody', 'smki-repo' installed) in the CA user's
#   group, in a private mount namespace built from the unit's ReadOnlyPaths=,
#   ReadWritePaths= and InaccessiblePaths=.
# Environment (ctest sets it): SMKI_BIN, SMKI_SRC. Needs root (setpriv, unshare, mount).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SRC:?set SMKI_SRC to the source tree}"
TIMEOUT=60
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_OPERATOR SMKI_OPERATOR_KEY SOFTHSM2_CONF
UNITS=$SMKI_SRC/packaging/systemd
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-units.XXXXXX")
W=$ROOT/work
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    rm -rf "$ROOT"
}
trap cleanup EXIT
mkdir -p "$W"
chmod 0755 "$ROOT"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
check "this test runs as root (it becomes other users)" test "$(id -u)" = 0

# The installed layout, mapped into ROOT: /var/lib/smki (the CA's home), /etc/smki.
CA=$ROOT/var/lib/smki
CRED_SRC=$ROOT/etc/smki/credentials
mkdir -p "$CA" "$CRED_SRC" "$ROOT/etc/smki/repo"
chmod 0755 "$ROOT/var" "$ROOT/var/lib" "$ROOT/etc" "$ROOT/etc/smki" "$ROOT/etc/smki/repo"
chmod 0700 "$CRED_SRC"
chown daemon:daemon "$CA" && chmod 0750 "$CA"
map() { # a unit's line with the installed paths and binary mapped into ROOT
    sed -e "s#/usr/bin/smki#$SMKI_BIN#g" -e "s#/var/lib/smki#$CA#g" -e "s#/etc/smki#$ROOT/etc/smki#g" <<<"$1"
}
unit_lines() { # UNIT KEY: the values of KEY= in UNIT, one a line
    sed -n "s/^$2=//p" "$UNITS/$1"
}

# ---- The CA's home, as docs/operations.md makes it, as the CA's user -----------------------------
(umask 077; openssl rand -hex 12 >"$CRED_SRC/user.pin"; openssl rand -hex 12 >"$W/so.pin")
printf '[hsm]\ntoken = smki\n\n[audit]\ncheckpoint_key = smki-audit\n\n[operators]\npublisher = op-publisher\n' >"$CA/smki.conf"
chown daemon:daemon "$CA/smki.conf"
AS_CA=(setpriv --reuid=daemon --regid=daemon --clear-groups env SMKI_HOME="$CA")
SMKI_PIN=$(cat "$CRED_SRC/user.pin") SMKI_SO_PIN=$(cat "$W/so.pin")
export SMKI_PIN SMKI_SO_PIN # the set-up's PINs (the units get none from the environment)
expect_exit 0 "hsm init as the CA's user" timeout "$TIMEOUT" "${AS_CA[@]}" "$SMKI_BIN" hsm init
expect_exit 0 "ca init --env test" timeout "$TIMEOUT" "${AS_CA[@]}" "$SMKI_BIN" ca init --env test
for k in smki-audit op-publisher; do
    expect_exit 0 "key $k" "${AS_CA[@]}" "$SMKI_BIN" key generate --label "$k" --usage ds
done
expect_exit 0 "the publisher's public key" "${AS_CA[@]}" "$SMKI_BIN" key pub op-publisher --out "$CA/publisher.pub"
expect_exit 0 "the RA operator 'publisher' (the unit's --operator)" \
    "${AS_CA[@]}" "$SMKI_BIN" ra operator add publisher --pub "$CA/publisher.pub" --operator publisher
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/org.key" -subj /CN=X \
    -addext keyUsage=critical,digitalSignature -out "$W/org.csr" 2>/dev/null
chmod 0644 "$W/org.csr"
for step in "party add UNITS --testing-participant --agreement-signed" "range assign 90B3D51F3/36 --party UNITS --kind central" \
    "id allocate --party UNITS --roles EIS --eui 90-B3-D5-1F-30-01-00-00" \
    "subscriber authorise --party UNITS --type organisation --role supplier --env test"; do
    # shellcheck disable=SC2086 # the step's words are the arguments
    expect_exit 0 "RA: $step" "${AS_CA[@]}" "$SMKI_BIN" ra $step --operator publisher
done
expect_exit 0 "an organisation certificate" "${AS_CA[@]}" "$SMKI_BIN" ca issue --env test --csr "$W/org.csr" \
    --role supplier --party UNITS --eui 90-B3-D5-1F-30-01-00-00 --operator publisher --der --out "$CA/org.der"
unset SMKI_PIN SMKI_SO_PIN
check "the CA's user cannot read the credential's source" bash -c "! ${AS_CA[*]} cat '$CRED_SRC/user.pin' >/dev/null 2>&1"
check "the CA's smki.conf names no PIN file" bash -c "! grep -q pin_file '$CA/smki.conf'"

# ---- smki-publish@test.service -----------------------------------------------------------------
U=smki-publish@.service
check "$U runs as smki, the CA's user" test "$(unit_lines $U User)" = smki
# LoadCredential=ID:PATH: systemd copies PATH (as root) to $CREDENTIALS_DIRECTORY/ID, a
# file of the service's user, 0400, in a folder of its own, 0500.
CRED=$ROOT/run/credentials/smki-publish@test.service
mkdir -p "$CRED"
while IFS=: read -r id src; do
    install -m 0400 -o daemon -g daemon "$(map "$src")" "$CRED/$id"
done < <(unit_lines $U LoadCredential)
chown daemon:daemon "$CRED" && chmod 0500 "$CRED"
chmod 0755 "$ROOT/run" "$ROOT/run/credentials"
check "LoadCredential= gives user.pin" test -s "$CRED/user.pin"
# A unit's environment is its Environment= lines alone (env -i), and the sanitizers'
# settings of the ASan build (its leak suppressions).
SAN=()
for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do [[ -n ${!v:-} ]] && SAN+=("$v=${!v}"); done
ENVS=("${SAN[@]}")
while read -r e; do ENVS+=("$(map "$e")"); done < <(unit_lines $U Environment)
run_lines() { # KEY: each KEY= line of the unit as its user, %i test, %d the credentials
    local line ignore rc
    while read -r line; do
        ignore=0
        [[ $line == -* ]] && ignore=1 && line=${line#-}
        line=$(map "$line")
        line=${line//%i/test}
        line=${line//%d/$CRED}
        rc=0
        # shellcheck disable=SC2086 # a unit's command line is words
        timeout "$TIMEOUT" setpriv --reuid=daemon --regid=daemon --clear-groups env -i PATH=/usr/bin:/bin \
            CREDENTIALS_DIRECTORY="$CRED" "${ENVS[@]}" $line >>"$W/$1.out" 2>&1 || rc=$?
        if [[ $rc == 0 || $ignore == 1 ]]; then ok "$1: ${line//$ROOT/} (exit $rc)"; else
            not_ok "$1: ${line//$ROOT/}: exit $rc"
            sed 's/^/#   /' "$W/$1.out" | tail -5
        fi
    done < <(unit_lines $U "$1")
}
run_lines ExecStart
run_lines ExecStartPost
for ca in smki-oca smki-dca dccki-ica smki-root dccki-root; do
    check "$ca's list published (ca/test/$ca.crl)" test -s "$CA/ca/test/$ca.crl"
done
run openssl crl -inform DER -in "$CA/ca/test/smki-oca.crl" -noout -nextupdate
nu=$(date -d "$(sed -n 's/^nextUpdate=//p' <<<"$OUT")" +%s 2>/dev/null || echo 0)
check "its nextUpdate is days ahead, far beyond the timer's 6 hours" test "$nu" -gt $(($(date +%s) + 86400))
check "the store after ExecStartPost: data.mdb 0640, lock.mdb 0660, store 0750" \
    test "$(stat -c %a "$CA/store/data.mdb") $(stat -c %a "$CA/store/lock.mdb") $(stat -c %a "$CA/store")" = "640 660 750"
check "the timer runs it every 6 hours" grep -qx 'OnCalendar=\*-\*-\* 00/6:00:00' "$UNITS/smki-publish@.timer"

# ---- smki-repo.service ---------------------------------------------------------------------------
U=smki-repo.service
check "$U runs as smki-repo in group smki" test "$(unit_lines $U User) $(unit_lines $U SupplementaryGroups)" = "smki-repo smki"
printf '[store]\npath = %s/store\n\n[repo]\nenv = test\nlisten = 127.0.0.1:0\n' "$CA" >"$ROOT/etc/smki/repo/smki.conf"
chmod 0644 "$ROOT/etc/smki/repo/smki.conf"
ENVS=("${SAN[@]}")
while read -r e; do ENVS+=("$(map "$e")"); done < <(unit_lines $U Environment)
# The namespace as systemd builds it: every ReadOnlyPaths= a read-only bind mount, every
# ReadWritePaths= bound writable again, every InaccessiblePaths= covered by an empty 000 folder.
ns=$'set -e\n'
for p in $(unit_lines $U ReadOnlyPaths); do p=$(map "${p#-}"); ns+="mount --bind '$p' '$p'; mount -o remount,bind,ro '$p'"$'\n'; done
mkdir -m 0000 "$W/empty"
for p in $(unit_lines $U InaccessiblePaths); do p=$(map "${p#-}"); ns+="[ ! -e '$p' ] || mount --bind '$W/empty' '$p'"$'\n'; done
for p in $(unit_lines $U ReadWritePaths); do p=$(map "${p#-}"); ns+="mount --bind '$p' '$p'; mount -o remount,bind,rw '$p'"$'\n'; done
START=$(map "$(unit_lines $U ExecStart)")
LOG=$W/repo.log
# shellcheck disable=SC2086 # the unit's command line is words
unshare --mount --propagation private bash -c "$ns"'exec "$@"' _ setpriv --reuid=nobody --regid=nogroup \
    --groups=daemon --no-new-privs env -i "${ENVS[@]}" $START 2>"$LOG" &
REPO_PID=$!
PIDS+=("$REPO_PID")
listening_port "$LOG"
if [[ -n $PORT ]]; then ok "ExecStart=${START//$ROOT/} serves as nobody, group daemon, in the unit's namespace"; else
    not_ok "the repository did not start"
    sed 's/^/#   /' "$LOG"
fi
check "in it data.mdb is read-only" nsenter -t "$REPO_PID" -m bash -c "! touch '$CA/store/data.mdb' 2>/dev/null"
check "lock.mdb writable" nsenter -t "$REPO_PID" -m test -w "$CA/store/lock.mdb"
check "and the CA's token folder hidden" nsenter -t "$REPO_PID" -m bash -c "! ls '$CA/hsm' >/dev/null 2>&1 || [ -z \"\$(ls -A '$CA/hsm')\" ]"
SERIAL=$(openssl x509 -inform DER -in "$CA/org.der" -noout -serial | cut -d= -f2)
run curl -sS --max-time 10 -o "$W/got.der" "http://127.0.0.1:$PORT/certificates/$SERIAL"
check "it serves the certificate" cmp "$W/got.der" "$CA/org.der"
run curl -sS --max-time 10 "http://127.0.0.1:$PORT/health"
expect_in '"status":"ok"' "/health: ok with the lists the publish unit made"
RELOAD=$(unit_lines $U ExecReload)
RELOAD=${RELOAD//\$MAINPID/$REPO_PID}
# shellcheck disable=SC2086 # the unit's command line is words
expect_exit 0 "ExecReload=$(unit_lines $U ExecReload)" $RELOAD
for _ in $(seq 50); do grep -q '"event":"reloaded"' "$LOG" && break; sleep 0.1; done
check "the repository reloaded" grep -q '"event":"reloaded"' "$LOG"
check "KillSignal=SIGTERM" test "$(unit_lines $U KillSignal)" = SIGTERM
kill -TERM "$REPO_PID"
rc=0
wait "$REPO_PID" || rc=$?
PIDS=()
if [[ $rc == 0 ]]; then ok "SIGTERM: exit 0"; else not_ok "SIGTERM: exit $rc"; sed 's/^/#   /' "$LOG"; fi
finish
