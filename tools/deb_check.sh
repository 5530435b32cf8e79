#!/usr/bin/env bash
# make deb-check: the .deb that make deb built, installed with `apt install ./smki_*.deb`
# on a clean Debian 12 (debootstrap --variant=minbase bookworm: no build tools, no test
# tools), then used there as an operator would:
#   1. in a chroot (a private mount namespace: its /proc goes with it): smki --version,
#      the users and folders the package makes, hsm init (SoftHSM, pulled in by the
#      package's Recommends), ca init --env test, an RA with one operator, a device
#      certificate issued from a real device CSR, and smki repo serve answering the
#      host's curl on loopback with that very certificate;
#   2. booted with systemd as PID 1 (systemd-nspawn -b): smki-repo.service as its own
#      user from /etc/smki/repo with the store read-only, reload (SIGHUP) and stop;
#      smki-publish@test.service with the PIN from LoadCredential=; the timer loaded.
# Needs root, debootstrap and systemd-nspawn (tools/deps.sh bench), and Debian's mirror
# (the one network use): minutes, so it is not part of make test.
#   tools/deb_check.sh [DEB]   DEB_MIRROR=http://deb.debian.org/debian
#                              DEB_CHECK_ROOT=DIR: a clean root kept from an earlier run
#                              (made there if missing; copied, never changed)
#                              DEB_CHECK_BOOT=0: skip part 2
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
SHARED=${SMKI_SHARED:-$SRC/../shared}
DEB=${1:-$(ls -t "$SRC"/smki_*.deb 2>/dev/null | head -1)}
MIRROR=${DEB_MIRROR:-http://deb.debian.org/debian}
CACHE=${DEB_CHECK_ROOT:-}
BOOT=${DEB_CHECK_BOOT:-1}
[ -n "$DEB" ] && [ -f "$DEB" ] || { echo "deb-check: no smki_*.deb (make deb first, or give its path)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "deb-check: needs root (debootstrap, chroot, systemd-nspawn)" >&2; exit 1; }
for t in debootstrap systemd-nspawn curl; do
    command -v "$t" >/dev/null || { echo "deb-check: $t is missing (tools/deps.sh bench)" >&2; exit 1; }
done
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-deb-check.XXXXXX")
ROOT=$W/root
trap '[ -n "${DEB_CHECK_KEEP:-}" ] || rm -rf "$W"' EXIT
PASS=0 FAIL=0
tally() { # the ok / not ok lines of a part's output
    PASS=$((PASS + $(grep -c '^ok ' "$1" || true)))
    FAIL=$((FAIL + $(grep -c '^not ok ' "$1" || true)))
}
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'; }

echo "smki deb-check: $(basename "$DEB") on a clean Debian 12 (bookworm, minbase) from $MIRROR"
t0=$(date +%s.%N)
if [ -n "$CACHE" ] && [ -x "$CACHE/bin/bash" ]; then
    cp -a "$CACHE" "$ROOT"
    echo "  clean root copied from $CACHE in $(secs "$t0") s"
else
    debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$W/debootstrap.log" 2>&1 ||
        { tail -20 "$W/debootstrap.log"; exit 1; }
    echo "  debootstrap --variant=minbase bookworm: $(secs "$t0") s, $(du -sh "$ROOT" | cut -f1)"
    [ -n "$CACHE" ] && cp -a "$ROOT" "$CACHE"
fi
cp "$DEB" "$ROOT/root/$(basename "$DEB")"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp "$SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der" "$ROOT/root/device.csr.der"
cp "$HERE/deb_check_inside.sh" "$ROOT/root/inside.sh"
PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# ---- 1. apt install in a chroot, then the command ------------------------------------------------
t1=$(date +%s.%N)
set +e
unshare --mount --propagation private --fork bash -c '
    mount -t proc proc "$1/proc" && exec chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LC_ALL=C.UTF-8 bash /root/inside.sh install "$2" "$3"' _ "$ROOT" "$(basename "$DEB")" "$PORT" \
    >"$W/part1.out" 2>"$W/part1.err" &
INSIDE=$!
# While the chroot's repository serves (it waits for the file 'curl-done'): the host's curl.
for _ in $(seq 600); do [ -e "$ROOT/root/serving" ] || ! kill -0 "$INSIDE" 2>/dev/null && break; sleep 0.2; done
if [ -e "$ROOT/root/serving" ]; then
    SERIAL=$(cat "$ROOT/root/serving")
    curl -sS --max-time 10 "http://127.0.0.1:$PORT/certificates/$SERIAL" -o "$W/got.der"
    if cmp -s "$W/got.der" "$ROOT/root/home/device.der"; then
        echo "ok - the host's curl gets the issued certificate from the chroot's smki repo serve (127.0.0.1:$PORT)"
    else echo "not ok - curl /certificates/$SERIAL: not the issued certificate"; fi >>"$W/curl.out"
    curl -sS --max-time 10 "http://127.0.0.1:$PORT/health" >"$W/health.json" || true
    if grep -q '"status":' "$W/health.json"; then echo "ok - curl /health: $(head -c 200 "$W/health.json")"; else
        echo "not ok - curl /health"; fi >>"$W/curl.out"
    touch "$ROOT/root/curl-done"
fi
wait "$INSIDE"
rc1=$?
set -e
cat "$W/part1.out" "$W/curl.out" 2>/dev/null
[ "$rc1" = 0 ] || { echo "not ok - the chroot part ended with exit $rc1"; sed 's/^/#   /' "$W/part1.err" | tail -30; FAIL=$((FAIL + 1)); }
tally "$W/part1.out"
[ -f "$W/curl.out" ] && tally "$W/curl.out" || { echo "not ok - the repository never served"; FAIL=$((FAIL + 1)); }
echo "  part 1 (apt install, then the command): $(secs "$t1") s"

# ---- 2. systemd as PID 1: the units --------------------------------------------------------------
if [ "$BOOT" = 1 ]; then
    t2=$(date +%s.%N)
    cp "$HERE/deb_check_inside.sh" "$ROOT/root/inside.sh"
    cat >"$ROOT/etc/systemd/system/smki-deb-check.service" <<UNIT
[Unit]
Description=make deb-check: the smki units under systemd
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash /root/inside.sh units $(basename "$DEB") $PORT
StandardOutput=file:/root/units.out
StandardError=file:/root/units.err
ExecStopPost=/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
UNIT
    ln -sf /etc/systemd/system/smki-deb-check.service "$ROOT/etc/systemd/system/multi-user.target.wants/"
    set +e
    timeout 300 systemd-nspawn --quiet --boot --register=no --keep-unit --directory "$ROOT" \
        >"$W/boot.log" 2>&1 </dev/null
    rcb=$?
    set -e
    if [ -s "$ROOT/root/units.out" ]; then
        cat "$ROOT/root/units.out"
        tally "$ROOT/root/units.out"
        grep -q '^# done' "$ROOT/root/units.out" || { echo "not ok - the units part did not finish"; FAIL=$((FAIL + 1)); }
    else
        echo "not ok - systemd-nspawn --boot ran no check (exit $rcb)"
        FAIL=$((FAIL + 1))
        tail -30 "$W/boot.log" | sed 's/^/#   /'
    fi
    [ -s "$ROOT/root/units.err" ] && sed 's/^/#   stderr: /' "$ROOT/root/units.err" | tail -20
    echo "  part 2 (systemd-nspawn --boot, the units): $(secs "$t2") s"
fi
echo "deb-check: $PASS passed, $FAIL failed, $(secs "$t0") s in all; load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$FAIL" = 0 ]
