#!/usr/bin/env bash
# The GBCS device story, on smki's own test PKI and keys (called from tools/demo.sh, or
# alone: tools/demo_gbcs.sh [SMKI_BIN]). A device's DS and KA CSRs (CS02c-shaped) become
# device certificates; a supplier signs a pre-command, the DCC gateway (smki gbcs gateway
# check: registry, inventory, chain and CRL, signature, counter) passes it and the ACB
# MACs it for the device's KA certificate; the device verifies (its own KA key in the
# token) and acts; then a Change of Supplier (CS02b supplierByTransitionalCoS, signed by
# the transitional CoS party, through the gateway too) moves the device to a second
# supplier, and the first supplier's next command is refused by the device.
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
# The remote parties' keys and certificates outlive a run (the gateway's registry holds
# their certificates); a run makes only those missing.
PARTIES=${GBCS_DEMO_PARTIES:-$SMKI_HOME/demo/gbcs-parties}
mkdir -p "$PARTIES"
# The gateway refuses a counter not above the last that passed from an originator, and
# its record outlives a run: this run's counters start above every earlier run's.
C0=$(( $(date +%s) * 1000 ))

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
  local name=$1 role=$2 eui=$3 usage=$4 ku P=$PARTIES
  if [ ! -s "$P/$name-$usage.pem" ]; then
    ku=$([ "$usage" = ds ] && echo digitalSignature || echo keyAgreement)
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$P/$name-$usage.key" 2>/dev/null
    openssl req -new -key "$P/$name-$usage.key" -subj "/CN=$name" -addext "keyUsage=critical,$ku" -out "$P/$name-$usage.csr" 2>/dev/null
    "$SMKI" ca issue --env test --csr "$P/$name-$usage.csr" --role "$role" --eui "$eui" --party "$(party_of "$eui")" \
      "${RA[@]}" --out "$P/$name-$usage.pem" >/dev/null
  fi
  cp "$P/$name-$usage.key" "$P/$name-$usage.pem" "$W/"
  echo "  $name ($role, $eui) $usage: $W/$name-$usage.pem"
}
org supplierA supplier $SUP_A ds; org supplierA supplier $SUP_A ka
org supplierB supplier $SUP_B ds; org supplierB supplier $SUP_B ka
org acb accessControlBroker $ACB ds; org acb accessControlBroker $ACB ka
org cos transitionalCoS $COS ds

say "GBCS 2. A device $DEV: DS and KA keys made in the token; its CS02c-shaped CSRs issued by the device CA"
echo "(the KA key signs its own CSR when it is made, the CSR's proof of possession, and the"
echo " token refuses it every signature after: CKA_SIGN is cleared; see docs/gbcs-device.md)"
run "$SMKI" device create --eui "$DEV" --csr-dir "$W"
HEX=$(echo "$DEV" | tr -d - | tr 'A-F' 'a-f')
run "$SMKI" ca issue --env test --csr "$W/$HEX-ds.csr" --party GITTEST "${RA[@]}" --out "$W/device-ds.pem"
run "$SMKI" ca issue --env test --csr "$W/$HEX-ka.csr" --party GITTEST "${RA[@]}" --out "$W/device-ka.pem"
openssl asn1parse -inform DER -in "$W/$HEX-ka.csr" | grep -E 'hardwareModuleName|Key Usage|Alternative' | sed 's/^/  /' || true
run "$SMKI" lint "$W/device-ka.pem"
run openssl verify -CAfile "$CA/smki-root.pem" -untrusted "$CA/smki-dca.pem" "$W/device-ka.pem"

say "GBCS 3. Its trust anchor cells, as at manufacture: root, supplier A, ACB, transitional CoS"
run "$SMKI" device load-cell --eui "$DEV" --cert "$CA/smki-root.pem"
for cert in supplierA-ds supplierA-ka acb-ds acb-ka cos-ds; do
  run "$SMKI" device load-cell --eui "$DEV" --cert "$W/$cert.pem"
done
run "$SMKI" device show --eui "$DEV"

say "GBCS 4. The DCC gateway's registry: the Users' DS certificates (supplier A and B, transitional CoS:"
echo "the Users themselves are the RA's), the device (commissioned) with its KA certificate, and the OCA's"
echo "current CRL; each an RA operator's action in the audit trail"
gw_user() { # id role cert: registered once (the registry outlives a run)
  if "$SMKI" --json gbcs gateway user list | grep -q "\"eui64\":\"$1\""; then echo "  User $1 registered already"; return 0; fi
  run "$SMKI" gbcs gateway user add --eui "$1" --role "$2" --cert "$3" "${RA[@]}"
}
gw_user $SUP_A supplier "$W/supplierA-ds.pem"
gw_user $SUP_B supplier "$W/supplierB-ds.pem"
gw_user $COS transitionalCoS "$W/cos-ds.pem"
run "$SMKI" gbcs gateway device add --eui "$DEV" --status commissioned --ka-cert "$W/device-ka.pem" "${RA[@]}"
# The default eligibility lets a supplier send ECS01a (0019) and the transitional CoS
# CS02b supplierByTransitionalCoS (0107): nothing to add here.
run "$SMKI" ca crl --env test "${RA[@]}"
# Checked at the present time (--at defaults to now).
GW=(--oca "$CA/smki-oca.pem" --crl "$CA/smki-oca.crl" --acb-key "file:$W/acb-ka.key")

say "GBCS 5. The DCC returns a pre-command (ECS01a, counter $((C0 + 1))); supplier A signs it; the gateway"
echo "checks it (User, device, certificate chain, CRL, signature, counter) and the ACB MACs it for the device's KA certificate"
run "$SMKI" device make-command --from $SUP_A --to "$DEV" --counter $((C0 + 1)) --code 0019 --content-hex 0102 \
  --out "$W/ecs01a-1.pre.hex"
run "$SMKI" gbcs sign --key "file:$W/supplierA-ds.key" --cert "$W/supplierA-ds.pem" --in "$W/ecs01a-1.pre.hex" \
  --out "$W/ecs01a-1.signed.hex" --expect-code 0019 --expect-target "$DEV"
run "$SMKI" gbcs gateway check "${GW[@]}" --out "$W/ecs01a-1.hex" "$W/ecs01a-1.signed.hex"
echo "The same signed pre-command again: the gateway refuses it (counter.replay), nothing goes to the device"
expect_refused "$SMKI" gbcs gateway check "${GW[@]}" --out "$W/ecs01a-1.again.hex" "$W/ecs01a-1.signed.hex"
[ ! -e "$W/ecs01a-1.again.hex" ] || { echo "UNEXPECTED: the gateway wrote a command for a replay"; exit 1; }

say "GBCS 6. The device verifies (recipient, MAC with its own KA key in the token, signature by the supplier cell,"
echo "counter above the floor, permission) and acts"
run "$SMKI" device receive --eui "$DEV" "$W/ecs01a-1.hex" --out "$W/ecs01a-1.response.hex"
echo "The same command again (had it got past the gateway) is a replay for the device too:"
expect_refused "$SMKI" device receive --eui "$DEV" "$W/ecs01a-1.hex" --out "$W/replay.alert.hex"

say "GBCS 7. Change of Supplier: the transitional CoS party signs CS02b supplierByTransitionalCoS (mode 7);"
echo "the gateway checks and MACs it"
run "$SMKI" device make-cs02b --mode 7 --seq $((C0 + 10)) --replace "supplier:ds=$W/supplierB-ds.pem" \
  --replace "supplier:ka=$W/supplierB-ka.pem" --path "$CA/smki-oca.pem" --other supplier=0 --apply-time-checks \
  --out "$W/cos.der"
run "$SMKI" device make-command --from $COS --to "$DEV" --counter $((C0 + 10)) --code 0107 --content "$W/cos.der" \
  --out "$W/cos.pre.hex"
run "$SMKI" gbcs sign --key "file:$W/cos-ds.key" --cert "$W/cos-ds.pem" --in "$W/cos.pre.hex" --out "$W/cos.signed.hex" \
  --expect-code 0107
run "$SMKI" gbcs gateway check "${GW[@]}" --out "$W/cos.hex" "$W/cos.signed.hex"
run "$SMKI" device receive --eui "$DEV" "$W/cos.hex" --out "$W/cos.response.hex"
run "$SMKI" device show --eui "$DEV"

say "GBCS 8. Supplier A's next command passes the gateway (A is still a User) but the device refuses it:"
echo "no supplier cell holds A any more (alert A2)"
run "$SMKI" device make-command --from $SUP_A --to "$DEV" --counter $((C0 + 2)) --code 0019 --content-hex 0102 \
  --out "$W/ecs01a-2.pre.hex"
run "$SMKI" gbcs sign --key "file:$W/supplierA-ds.key" --cert "$W/supplierA-ds.pem" --in "$W/ecs01a-2.pre.hex" \
  --out "$W/ecs01a-2.signed.hex" --expect-code 0019 --expect-target "$DEV"
run "$SMKI" gbcs gateway check "${GW[@]}" --out "$W/ecs01a-2.hex" "$W/ecs01a-2.signed.hex"
expect_refused "$SMKI" device receive --eui "$DEV" "$W/ecs01a-2.hex" --out "$W/ecs01a-2.alert.hex"
say "GBCS 9. Supplier B's first command is accepted"
run "$SMKI" device make-command --from $SUP_B --to "$DEV" --counter $((C0 + 1)) --code 0019 --content-hex 0102 \
  --out "$W/ecs01a-b1.pre.hex"
run "$SMKI" gbcs sign --key "file:$W/supplierB-ds.key" --cert "$W/supplierB-ds.pem" --in "$W/ecs01a-b1.pre.hex" \
  --out "$W/ecs01a-b1.signed.hex" --expect-code 0019 --expect-target "$DEV"
run "$SMKI" gbcs gateway check "${GW[@]}" --out "$W/ecs01a-b1.hex" "$W/ecs01a-b1.signed.hex"
run "$SMKI" device receive --eui "$DEV" "$W/ecs01a-b1.hex" --out "$W/ecs01a-b1.response.hex"
echo
echo "GBCS demo done: files in $W"
