#!/bin/bash
# The clean Debian 12 side of tools/deb_check.sh (copied into its root as /root/inside.sh):
#   inside.sh install DEB PORT   in the chroot: apt install ./DEB, then the command
#   inside.sh units DEB PORT     under systemd as PID 1: the package's units
# Prints "ok - ..." / "not ok - ..." lines; the host counts them. Uses only what a
# minbase root and the package bring (bash's /dev/tcp stands in for curl).
set -uo pipefail
MODE=$1 DEB=$2 PORT=$3
cd /root
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }
check() { # DESC CMD...: ok when CMD exits 0; its output shown when not
    local desc=$1
    shift
    if "$@" >/root/check.out 2>&1; then ok "$desc"; else
        not_ok "$desc (exit $?)"
        sed 's/^/#   /' /root/check.out | tail -15
    fi
}
secret() { (umask 077; od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$1"); }
# http PATH: a GET on loopback through bash's /dev/tcp; the whole answer on stdout.
http() {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
    timeout 10 cat <&3
    exec 3<&-
}
wait_for() { # FILE TEXT: up to 10 s for TEXT in FILE
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
wait_journal() { # UNIT TEXT: up to 10 s for TEXT in UNIT's journal
    for _ in $(seq 100); do journalctl -u "$1" -o cat | grep -q "$2" && return 0; sleep 0.1; done
    return 1
}

# An RA with one operator OP (its token key op-OP), a Testing Participant DEBCHECK with
# the device block 00DB12/24, and the real device CSR issued: $H/device.der. Run as
# "$@" (a prefix such as setpriv), SMKI_HOME set.
ca_and_issue() {
    local op=$1 H=$2
    shift 2
    local S=("$@" smki)
    check "smki ca init --env test" "${S[@]}" ca init --env test
    check "smki key generate (the audit key, op-$op)" bash -c \
        "$(printf '%q ' "${S[@]}") key generate --label smki-audit --usage ds && $(printf '%q ' "${S[@]}") key generate --label op-$op --usage ds"
    check "smki key pub" "${S[@]}" key pub "op-$op" --out "$H/$op.pub"
    check "the RA's first operator" "${S[@]}" ra operator add "$op" --pub "$H/$op.pub" --operator "$op"
    check "a Testing Participant" "${S[@]}" ra party add DEBCHECK --testing-participant --agreement-signed --operator "$op"
    check "its device block" "${S[@]}" ra range assign 00DB12/24 --party DEBCHECK --kind device --operator "$op"
    check "authorised for device certificates" "${S[@]}" ra subscriber authorise --party DEBCHECK --type device \
        --env test --operator "$op"
    install -m 0644 /root/device.csr.der "$H/device.csr.der"
    if "${S[@]}" --json ca issue --env test --party DEBCHECK --operator "$op" --csr "$H/device.csr.der" --der \
        --out "$H/device.der" >/root/issue.json 2>/root/issue.err; then
        SERIAL=$(sed -n 's/.*"serial":"\([0-9a-fA-F]*\)".*/\1/p' /root/issue.json)
        ok "a device certificate issued from a real device CSR (serial $SERIAL)"
    else
        not_ok "smki ca issue"
        sed 's/^/#   /' /root/issue.err /root/issue.json
    fi
}

# ---- install: apt install ./DEB on the clean root, then the command ------------------------------
apt_and_command() {
    export DEBIAN_FRONTEND=noninteractive
    dpkg-query -W -f '${Package}\n' | sort >/root/before.txt
    check "apt-get update (Debian's mirror)" apt-get update -qq
    check "apt install ./$DEB" apt install -y "./$DEB"
    dpkg-query -W -f '${Package}\n' | sort >/root/after.txt
    echo "# installed with it: $(comm -13 /root/before.txt /root/after.txt | tr '\n' ' ')"
    local extra
    extra=$(comm -13 /root/before.txt /root/after.txt |
        grep -xE 'gcc.*|cpp.*|cmake.*|clang.*|libcmocka.*|valgrind|wrk|nginx.*|curl|python3.*|opensc|swtpm.*|postgresql.*|tpm2-.*|lintian|xmlsec1' || true)
    if [ -z "$extra" ]; then ok "no build, test, fuzz or bench tool came with it"; else not_ok "it pulled in: $extra"; fi
    check "smki --version" smki --version
    echo "# $(smki --version 2>&1 | head -1)"
    check "the users smki and smki-repo exist (systemd-sysusers in postinst)" id smki-repo
    check "smki-repo is in group smki" bash -c "id -nG smki-repo | grep -qw smki"
    check "/var/lib/smki belongs to smki, mode 750 (tmpfiles)" test "$(stat -c '%U %a' /var/lib/smki)" = "smki 750"
    check "the man page" test -s /usr/share/man/man1/smki-repo.1.gz
    check "the units" test -s /lib/systemd/system/smki-repo.service -a -s /lib/systemd/system/smki-publish@.timer

    local H=/root/home
    mkdir -p "$H/secrets" && chmod 700 "$H" "$H/secrets"
    secret "$H/secrets/so.pin"
    secret "$H/secrets/user.pin"
    printf '[hsm]\ntoken = smki\npin_file = secrets/user.pin\nso_pin_file = secrets/so.pin\n\n[audit]\ncheckpoint_key = smki-audit\n\n[operators]\nalice = op-alice\n' >"$H/smki.conf"
    export SMKI_HOME=$H
    check "smki hsm init (SoftHSM, from the package's Recommends)" smki hsm init
    SERIAL=
    ca_and_issue alice "$H"
    check "smki ca crl" smki ca crl --env test --operator alice
    check "smki ca arl" smki ca arl --env test --operator alice
    smki repo serve --env test --listen "127.0.0.1:$PORT" 2>/root/serve.log &
    local pid=$!
    if wait_for /root/serve.log '"event":"listening"'; then ok "smki repo serve listens on 127.0.0.1:$PORT"; else
        not_ok "smki repo serve did not start"
        sed 's/^/#   /' /root/serve.log
    fi
    check "smki repo get fetches the certificate back" bash -c \
        "smki repo get --url http://127.0.0.1:$PORT $SERIAL --out - | cmp - $H/device.der"
    echo "$SERIAL" >/root/serving # the host's curl asks now
    for _ in $(seq 300); do [ -e /root/curl-done ] && break; sleep 0.1; done
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    check "SIGTERM: smki repo serve exits 0" test "$rc" = 0
    rc=0
    smki doctor >/root/doctor.out 2>&1 || rc=$?
    echo "# smki doctor: exit $rc"
    grep -iE 'problem|error|warn' /root/doctor.out | sed 's/^/#   /' 
}

# ---- units: systemd is PID 1 ----------------------------------------------------------------------
as_smki() { setpriv --reuid=smki --regid=smki --init-groups env SMKI_HOME=/var/lib/smki "$@"; }
prop() { systemctl show -p "$2" --value "$1"; }

units_setup() {
    check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd
    # The CA's home as docs/operations.md makes it; its smki.conf names no PIN file: the
    # unattended publication gets the PIN from the credential alone.
    local H=/var/lib/smki
    install -d -m 0700 -o root /etc/smki/credentials
    secret /etc/smki/credentials/user.pin
    secret /root/so.pin
    printf '[hsm]\ntoken = smki\n\n[audit]\ncheckpoint_key = smki-audit\n\n[operators]\npublisher = op-publisher\n' >"$H/smki.conf"
    chown smki:smki "$H/smki.conf"
    # The set-up's PINs through the environment (never on a command line).
    SMKI_PIN=$(cat /etc/smki/credentials/user.pin) SMKI_SO_PIN=$(cat /root/so.pin)
    export SMKI_PIN SMKI_SO_PIN
    check "hsm init as smki" as_smki smki hsm init
    ca_and_issue publisher "$H" as_smki
    unset SMKI_PIN SMKI_SO_PIN
    check "smki cannot read the credential's source" bash -c "! as_smki cat /etc/smki/credentials/user.pin"
    install -d -m 0755 /etc/smki/repo
    printf '[store]\npath = /var/lib/smki/store\n\n[repo]\nenv = test\nlisten = 127.0.0.1:%s\n' "$PORT" >/etc/smki/repo/smki.conf
}

units() {
    export -f as_smki
    units_setup
    check "systemctl start smki-publish@test.service (PIN from LoadCredential=)" systemctl start smki-publish@test.service
    check "its result: success" test "$(prop smki-publish@test.service Result)" = success
    check "the CRL it published" test -s /var/lib/smki/ca/test/smki-oca.crl
    check "the ARL it published" test -s /var/lib/smki/ca/test/smki-root.crl
    check "the store: data.mdb 0640, lock.mdb 0660 (its ExecStartPost)" \
        test "$(stat -c %a /var/lib/smki/store/data.mdb) $(stat -c %a /var/lib/smki/store/lock.mdb)" = "640 660"
    check "smki-repo cannot write data.mdb (owner smki, 0640; smki-repo in group smki)" bash -c \
        "! setpriv --reuid=smki-repo --regid=smki-repo --init-groups test -w /var/lib/smki/store/data.mdb"
    check "the timer starts" systemctl start smki-publish@test.timer
    check "and has a next run" test -n "$(prop smki-publish@test.timer NextElapseUSecRealtime)"

    check "systemctl start smki-repo.service" systemctl start smki-repo.service
    wait_journal smki-repo '"event":"listening"' 
    local pid
    pid=$(prop smki-repo.service MainPID)
    check "it is active" systemctl is-active smki-repo.service
    check "it runs as smki-repo" test "$(stat -c %U "/proc/$pid")" = smki-repo
    check "with no capabilities and no_new_privs" bash -c \
        "grep -q '^CapEff:.*0000000000000000' /proc/$pid/status && grep -q '^NoNewPrivs:.*1' /proc/$pid/status"
    check "in its mount namespace data.mdb is on a read-only mount" bash -c \
        "nsenter -t $pid -m findmnt -no OPTIONS -T /var/lib/smki/store/data.mdb | grep -qE '(^|,)ro(,|$)'"
    check "and lock.mdb on a writable one" bash -c \
        "nsenter -t $pid -m findmnt -no OPTIONS -T /var/lib/smki/store/lock.mdb | grep -qE '(^|,)rw(,|$)'"
    check "the CA's token folder is hidden from it (an inaccessible mount, mode 000)" bash -c \
        "nsenter -t $pid -m findmnt -n /var/lib/smki/hsm >/dev/null && test \"\$(nsenter -t $pid -m stat -c %a /var/lib/smki/hsm)\" = 0"
    check "it serves the certificate" bash -c "smki repo get --url http://127.0.0.1:$PORT $SERIAL --out - | cmp - /var/lib/smki/device.der"
    check "/health: ok (the CRLs and ARLs the publish unit made)" bash -c "$(declare -f http); PORT=$PORT; http /health | grep -q '\"status\":\"ok\"'"
    check "systemctl reload smki-repo" systemctl reload smki-repo.service
    check "reloaded, in the journal" wait_journal smki-repo '"event":"reloaded"' 
    check "the same process serves on" test "$(prop smki-repo.service MainPID)" = "$pid"
    check "systemctl stop smki-repo" systemctl stop smki-repo.service
    check "it stopped cleanly (Result=success, exit 0)" test "$(prop smki-repo.service Result) $(prop smki-repo.service ExecMainStatus)" = "success 0"
    check "its log says stopped" wait_journal smki-repo '"event":"stopped"' 
    echo "# done"
}

case "$MODE" in
install) apt_and_command ;;
units) units ;;
*) echo "inside.sh install|units DEB PORT" >&2; exit 1 ;;
esac
