#!/usr/bin/env bash
# make bench: figures of the crypto core, each beside the physical bound measured in
# the same run (openssl speed ecdsap256, 1 process and 2), as a ratio. Prints figures;
# never passes or fails on a threshold. SECONDS_PER=N sets the length of each run.
set -euo pipefail
BUILD=${1:-build}
BENCH=$BUILD/bin/bench_core
SECS=${SECONDS_PER:-5}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

speed() { # threads -> "sign/s verify/s"
  local multi=()
  [ "$1" -gt 1 ] && multi=(-multi "$1")
  openssl speed -seconds "$SECS" "${multi[@]}" ecdsap256 2>/dev/null |
    awk '/ecdsa \(nistp256\)/ {print $(NF-1), $NF}' | tail -1
}

echo "smki bench: crypto core on $(nproc) core(s), ${SECS}s per figure; $(openssl version)"
echo "Setting up a SoftHSM token and keys in $WORK ..."
export SMKI_HOME=$WORK/home SMKI_PIN=benchpin1 SMKI_SO_PIN=benchso12
"$BUILD/bin/smki" hsm init >/dev/null
"$BUILD/bin/smki" key generate --label bench-ds --usage ds >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/soft.pem" 2>/dev/null
export SOFTHSM2_CONF=$SMKI_HOME/hsm/softhsm2.conf
TOKEN_KEY="pkcs11:token=smki;object=bench-ds"
SOFT_KEY="file:$WORK/soft.pem"

read -r S1 V1 <<<"$(speed 1)"
read -r S2 V2 <<<"$(speed 2)"

row() { # label threads measured bound target-note
  awk -v l="$1" -v t="$2" -v m="$3" -v b="$4" -v n="$5" \
    'BEGIN { printf "%-34s %2s  %10.0f  %10.0f  %6.3f  %s\n", l, t, m, b, m / b, n }'
}
printf '\n%-34s %2s  %10s  %10s  %6s  %s\n' "figure (per second)" "th" "smki" "bound" "ratio" "bound = openssl speed ecdsap256; note"
for t in 1 2; do
  if [ "$t" = 1 ]; then SB=$S1 VB=$V1; else SB=$S2 VB=$V2; fi
  m=$("$BENCH" "$SOFT_KEY" sign "$t" "$SECS" | awk '{print $3}')
  row "sign, software key" "$t" "$m" "$SB" "target ratio >= 0.9"
  m=$("$BENCH" "$SOFT_KEY" verify "$t" "$SECS" | awk '{print $3}')
  row "verify" "$t" "$m" "$VB" ""
  m=$("$BENCH" "$TOKEN_KEY" sign "$t" "$SECS" | awk '{print $3}')
  row "sign, SoftHSM key (libp11)" "$t" "$m" "$SB" "$(awk -v m="$m" -v t="$t" 'BEGIN{printf "target >= 15000/s per core: %.0f per core", m/t}')"
done
if [ -x "$BUILD/bin/bench_csr" ] && [ -d "${SMKI_SHARED:-../shared}/vectors" ]; then
  for t in 1 2; do
    if [ "$t" = 1 ]; then VB=$V1; else VB=$V2; fi
    m=$(SMKI_SHARED=${SMKI_SHARED:-../shared} "$BUILD/bin/bench_csr" $((SECS * 12000)) "$t" | awk '{print $3}')
    row "CSR intake (parse + PoP verify)" "$t" "$m" "$VB" "bound = verify; the real device CSR"
  done
fi
if [ -x "$BUILD/bin/bench_ca" ] && [ -d "${SMKI_SHARED:-../shared}/vectors" ]; then
  echo
  echo "CA issuance, step by step (1 thread, software CA key; bound = one sign + one verify per certificate):"
  SMKI_SHARED=${SMKI_SHARED:-../shared} "$BUILD/bin/bench_ca" $((SECS * 2000)) | sed 's/^/  /'
fi
echo
echo "Ratios above 1.0 at 2 threads on a 2-core machine mean the bound itself was held back by"
echo "other load; run again on an idle machine for a clean reading."

if [ -x "$BUILD/bin/bench_repo_load" ] && command -v wrk >/dev/null; then
  echo
  echo "Repository lookups by EUI-64 beside nginx serving the same answers (tools/bench_repo.sh):"
  SMKI_SHARED=${SMKI_SHARED:-../shared} "$(dirname "$0")/bench_repo.sh" "$BUILD" | sed 's/^/  /'
fi
