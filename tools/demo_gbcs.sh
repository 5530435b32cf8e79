#!/usr/bin/env bash
# The GBCS device story, on smki's own test PKI and keys (called from tools/demo.sh, or
# alone: tools/demo_gbcs.sh [SMKI_BIN]). A supplier signs a pre-command, the ACB MACs
# it, the device verifies (its own KA key in the token) and acts; then a Change of
# Supplier (CS02b supplierByTransitionalCoS, signed by the transitional CoS party) moves
# the device to a second supplier, and the first supplier's next command is refused.
# Needs a home whose token and PINs are set up (SMKI_HOME, SMKI_PIN or the home's
# pin_file) and the test CA (smki ca init --env test). Exits non-zero on any surprise.
set -euo pipefail
SMKI=${1:-build/bin/smki}
export SMKI_HOME=${SMKI_HOME:-./var/smki}
W=${GBCS_DEMO_DIR:-$SMKI_HOME/demo/gbcs-$(date +%s)-$$}
mkdir -p "$W"
CA=$SMKI_HOME/ca/test
new_eui() { printf '00-DB-12-34-56-78-%02X-%02X' $((RANDOM % 256)) $((RANDOM % 256)); }
DEV=${GBCS_DEMO_DEVICE:-$(new_eui)}
# Safe to run again: a fresh device each run (one the store does not hold yet).
while [ -z "${GBCS_DEMO_DEVICE:-}" ] && "$SMKI" device show --eui "$DEV" >/dev/null 2>&1; do DEV=$(new_eui); done
SUP_A=90-B3-D5-1F-30-01-00-00 SUP_B=90-B3-D5-1F-30-03-00-00 ACB=90-B3-D5-1F-40-00-00-02 COS=90-B3-D5-1F-40-00-00-04

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run()  { printf '$ %s\n' "$*"; "$@"; }
expect_refused() { # command... : must exit 2
  printf '$ %s\n' "$*"
  set +e; "$@"; local rc=$?; set -e
  [ "$rc" -eq 2 ] || { echo "UNEXPECTED exit $rc (wanted 2: refused)"; exit 1; }
  echo "  exit 2: refused, as it should be."
}

say "GBCS 1. The test PKI (smki ca init --env test) and the remote parties' certificates"
run "$SMKI" ca init --env test --operator demo-ra | tail -1
# Test certificates go only to registered Testing Participants (the RA): GITTEST holds the
# suppliers' User IDs, the DCC's test party DCCTEST the ACB's and the transitional CoS's.
"$(dirname "$0")/demo_ra.sh" "$SMKI" participant >/dev/null
RA=(--operator demo-ra)
ra_once() { # description, check command (exit 0: done already), then the RA command
  local what=$1 check=$2; shift 2
  if eval "$check" >/dev/null 2>&1; then return 0; fi
  "$SMKI" ra "$@" "${RA[@]}" >/dev/null && echo "  RA: $what"
}
ra_once "supplier B's User ID for GITTEST" "\"$SMKI\" ra id check $SUP_B" \
  id allocate --party GITTEST --roles EIS --eui $SUP_B
ra_once "the DCC's test party DCCTEST" "\"$SMKI\" ra party show DCCTEST" \
  party add DCCTEST --name "DCC (test)" --dcc --testing-participant --agreement-signed
ra_once "DCCTEST's central block 90B3D51F4/36" "\"$SMKI\" --json ra range list | grep -q DCCTEST" \
  range assign 90B3D51F4/36 --party DCCTEST --kind central
for id in $ACB $COS; do
  ra_once "DCC ID $id" "\"$SMKI\" ra id check $id" id allocate --party DCCTEST --roles OU --eui $id
done
for role in accessControlBroker:04 transitionalCoS:05; do # the role and its code, as the list shows it
  ra_once "DCCTEST may request ${role%:*} certificates" \
    "\"$SMKI\" --json ra subscriber list | grep -q '\"party\":\"DCCTEST\",\"type\":\"organisation\",\"role\":\"${role#*:}\"'" \
    subscriber authorise --party DCCTEST --type organisation --role "${role%:*}" --env test
done
party_of() { case $1 in "$ACB"|"$COS") echo DCCTEST ;; *) echo GITTEST ;; esac; }
org() { # name role eui usage
  local name=$1 role=$2 eui=$3 usage=$4 ku
  ku=$([ "$usage" = ds ] && echo digitalSignature || echo keyAgreement)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/$name-$usage.key" 2>/dev/null
  openssl req -new -key "$W/$name-$usage.key" -subj "/CN=$name" -addext "keyUsage=critical,$ku" -out "$W/$name-$usage.csr" 2>/dev/null
  "$SMKI" ca issue --env test --csr "$W/$name-$usage.csr" --role "$role" --eui "$eui" --party "$(party_of "$eui")" \
    "${RA[@]}" --out "$W/$name-$usage.pem" >/dev/null
  echo "  $name ($role, $eui) $usage: $W/$name-$usage.pem"
}
org supplierA supplier $SUP_A ds; org supplierA supplier $SUP_A ka
org supplierB supplier $SUP_B ds; org supplierB supplier $SUP_B ka
org acb accessControlBroker $ACB ds; org acb accessControlBroker $ACB ka
org cos transitionalCoS $COS ds

say "GBCS 2. A device $DEV: DS and KA keys made in the token; its CS02c-shaped DS CSR issued by the device CA"
run "$SMKI" device create --eui "$DEV" --csr-dir "$W"
HEX=$(echo "$DEV" | tr -d - | tr 'A-F' 'a-f')
run "$SMKI" ca issue --env test --csr "$W/$HEX-ds.csr" --party GITTEST "${RA[@]}" --out "$W/device-ds.pem"
cp "$W/$HEX-ka.pub.pem" "$W/device-ka.pem"   # the device's KA public key, what the ACB MACs for
openssl asn1parse -inform DER -in "$W/$HEX-ds.csr" | grep -E 'hardwareModuleName|Key Usage|Alternative' | sed 's/^/  /' || true

say "GBCS 3. Its trust anchor cells, as at manufacture: root, supplier A, ACB, transitional CoS"
run "$SMKI" device load-cell --eui "$DEV" --cert "$CA/smki-root.pem"
for cert in supplierA-ds supplierA-ka acb-ds acb-ka cos-ds; do
  run "$SMKI" device load-cell --eui "$DEV" --cert "$W/$cert.pem"
done
run "$SMKI" device show --eui "$DEV"

mkdir -p "$W/trust" && cp "$W/supplierA-ds.pem" "$W/supplierB-ds.pem" "$W/cos-ds.pem" "$W/trust/"
say "GBCS 4. The DCC returns a pre-command (ECS01a, counter 1); supplier A signs it; the gateway checks the"
echo "signature against supplier A's certificate; the ACB MACs it for the device's KA key"
run "$SMKI" device make-command --from $SUP_A --to "$DEV" --counter 1 --code 0019 --content-hex 0102 \
  --out "$W/ecs01a-1.pre.hex"
run "$SMKI" gbcs sign --key "file:$W/supplierA-ds.key" --cert "$W/supplierA-ds.pem" --in "$W/ecs01a-1.pre.hex" \
  --out "$W/ecs01a-1.signed.hex" --expect-code 0019 --expect-target "$DEV"
run "$SMKI" gbcs verify --trust "$W/trust" "$W/ecs01a-1.signed.hex"
run "$SMKI" device make-command --wrap "$W/ecs01a-1.signed.hex" --acb-ka "file:$W/acb-ka.key" \
  --device-ka "$W/device-ka.pem" --out "$W/ecs01a-1.hex"
say "GBCS 5. The device verifies (recipient, MAC with its own KA key in the token, signature by the supplier cell,"
echo "counter above the floor, permission) and acts"
run "$SMKI" device receive --eui "$DEV" "$W/ecs01a-1.hex" --out "$W/ecs01a-1.response.hex"
echo "The same command again is a replay:"
expect_refused "$SMKI" device receive --eui "$DEV" "$W/ecs01a-1.hex" --out "$W/replay.alert.hex"

say "GBCS 6. Change of Supplier: the transitional CoS party signs CS02b supplierByTransitionalCoS (mode 7)"
run "$SMKI" device make-cs02b --mode 7 --seq 10 --replace "supplier:ds=$W/supplierB-ds.pem" \
  --replace "supplier:ka=$W/supplierB-ka.pem" --path "$CA/smki-oca.pem" --other supplier=0 --apply-time-checks \
  --out "$W/cos.der"
run "$SMKI" device make-command --from $COS --to "$DEV" --counter 10 --code 0107 --content "$W/cos.der" \
  --out "$W/cos.pre.hex"
run "$SMKI" gbcs sign --key "file:$W/cos-ds.key" --cert "$W/cos-ds.pem" --in "$W/cos.pre.hex" --out "$W/cos.signed.hex" \
  --expect-code 0107
run "$SMKI" gbcs verify --trust "$W/trust" "$W/cos.signed.hex"
run "$SMKI" device make-command --wrap "$W/cos.signed.hex" --acb-ka "file:$W/acb-ka.key" --device-ka "$W/device-ka.pem" \
  --out "$W/cos.hex"
run "$SMKI" device receive --eui "$DEV" "$W/cos.hex" --out "$W/cos.response.hex"
run "$SMKI" device show --eui "$DEV"

say "GBCS 7. Supplier A's next command (counter 2) is refused: no supplier cell holds it any more (alert A2)"
echo "(make-command --sign does the pre-command, signature and ACB MAC of step 4 in one go)"
run "$SMKI" device make-command --sign "file:$W/supplierA-ds.key" --from $SUP_A --to "$DEV" --counter 2 --code 0019 \
  --content-hex 0102 --acb-ka "file:$W/acb-ka.key" --device-ka "$W/device-ka.pem" --out "$W/ecs01a-2.hex"
expect_refused "$SMKI" device receive --eui "$DEV" "$W/ecs01a-2.hex" --out "$W/ecs01a-2.alert.hex"
say "GBCS 8. Supplier B's first command is accepted"
run "$SMKI" device make-command --sign "file:$W/supplierB-ds.key" --from $SUP_B --to "$DEV" --counter 1 --code 0019 \
  --content-hex 0102 --acb-ka "file:$W/acb-ka.key" --device-ka "$W/device-ka.pem" --out "$W/ecs01a-b1.hex"
run "$SMKI" device receive --eui "$DEV" "$W/ecs01a-b1.hex" --out "$W/ecs01a-b1.response.hex"
echo
echo "GBCS demo done: files in $W"
