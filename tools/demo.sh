#!/usr/bin/env bash
# make demo: the main job end to end on embedded defaults, narrated for an operator.
# Home ./var/demo (not the default ./var/smki: the demo configures a production
# environment with made-up OIDs, which must never meet a real home): its own SoftHSM
# tokens and LMDB store. PINs live in files under ./var/demo/secrets (mode 0600),
# never on a command line. Safe to run again: a re-run reuses the home, the CAs and
# the device CSRs, and finds every batch already issued.
set -euo pipefail
SMKI=${1:-build/bin/smki}
MAKE_CSRS=$(dirname "$SMKI")/make_device_csrs
export SMKI_HOME=${SMKI_HOME:-./var/demo}
unset SMKI_PIN SMKI_SO_PIN
SECRETS=$SMKI_HOME/secrets
WORK=$SMKI_HOME/demo
TOKEN_LABEL=smki

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run()  { printf '$ %s\n' "$*"; "$@"; }

say "Home $SMKI_HOME: configuration, token and store of this smki installation"
mkdir -p "$SECRETS" "$WORK"
chmod 700 "$SMKI_HOME" "$SECRETS"
if [ ! -f "$SECRETS/user.pin" ]; then
  (umask 077; openssl rand -hex 12 > "$SECRETS/so.pin"; openssl rand -hex 12 > "$SECRETS/user.pin")
  echo "Made random SO and user PINs in $SECRETS/ (mode 0600)."
else
  echo "Using the PINs already in $SECRETS/."
fi
if [ ! -f "$SMKI_HOME/smki.conf" ]; then
  cat > "$SMKI_HOME/smki.conf" <<'CONF'
# smki configuration of this home. Paths are relative to the home.
[hsm]
# The embedded default: SoftHSM 2 with its token folder under hsm/.
# For a real HSM, set module = /path/to/its/pkcs11.so
token = smki
pin_file = secrets/user.pin
so_pin_file = secrets/so.pin

[store]
path = store
CONF
  echo "Wrote $SMKI_HOME/smki.conf: the token label and where its PINs are kept."
fi
sed 's/^/  | /' "$SMKI_HOME/smki.conf"

say "1. Initialise the token (SoftHSM 2, inside the home). Running it again changes nothing."
run "$SMKI" hsm init
run "$SMKI" hsm init

say "2. Generate a digital-signature key and a key-agreement key inside the token"
for spec in demo-supplier-ds:ds demo-supplier-ka:ka; do
  label=${spec%%:*} usage=${spec##*:}
  if "$SMKI" --json key list | grep -q "\"label\":\"$label\""; then
    echo "Key '$label' is already on the token; using it."
  else
    run "$SMKI" key generate --label "$label" --usage "$usage"
  fi
done
run "$SMKI" key list
echo "An independent look into the token (OpenSC pkcs11-tool): the private keys must be"
echo "sensitive and never extractable."
# pkcs11-tool's --token-label matches a prefix ('smki' would pick 'smki-test' once the CA
# ceremony has made it): find the slot whose label is exactly ours.
P11=(env SOFTHSM2_CONF="$SMKI_HOME/hsm/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so)
slot=$("${P11[@]}" -L 2>/dev/null | awk -v want="$TOKEN_LABEL" \
  '/^Slot [0-9]+ \(0x/ { id = substr($3, 2, length($3) - 2) } $1 == "token" && $2 == "label" { sub(/^[^:]*: /, ""); if ($0 == want) print id }')
listing=$("${P11[@]}" --slot "$slot" --login --pin "$(cat "$SECRETS/user.pin")" --list-objects --type privkey 2>/dev/null)
echo "$listing" | grep -A4 'demo-supplier-ds' | sed 's/^/  /'
echo "$listing" | grep -A4 'demo-supplier-ds' | grep -q 'never extractable' || { echo "UNEXPECTED: key is extractable"; exit 1; }

say "3. Export the public key"
run "$SMKI" key pub demo-supplier-ds --out "$WORK/supplier-ds.pub.pem" --force  # a demo run again rewrites its files
cat "$WORK/supplier-ds.pub.pem"

say "4. Sign a message in the token, as GBCS does (raw r||s) and as X.509 does (DER)"
printf 'ECS01a pre-command for 00-DB-12-34-56-78-90-A0, %s\n' "$(date -u +%FT%TZ)" > "$WORK/message.txt"
run "$SMKI" sign --key demo-supplier-ds --in "$WORK/message.txt" --out "$WORK/message.raw" --raw --force
run "$SMKI" sign --key demo-supplier-ds --in "$WORK/message.txt" --out "$WORK/message.der" --der --force

say "5. Verify: with smki, and independently with openssl"
run "$SMKI" verify --pub "$WORK/supplier-ds.pub.pem" --in "$WORK/message.txt" --sig "$WORK/message.raw"
run "$SMKI" verify --pub "$WORK/supplier-ds.pub.pem" --in "$WORK/message.txt" --sig "$WORK/message.der"
run openssl dgst -sha256 -verify "$WORK/supplier-ds.pub.pem" -signature "$WORK/message.der" "$WORK/message.txt"

say "6. A message changed after signing is refused (exit 2)"
cp "$WORK/message.txt" "$WORK/tampered.txt"; echo "one more line" >> "$WORK/tampered.txt"
set +e
"$SMKI" verify --pub "$WORK/supplier-ds.pub.pem" --in "$WORK/tampered.txt" --sig "$WORK/message.raw"
rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "UNEXPECTED exit $rc"; exit 1; }
echo "  exit $rc, as it should be."

say "7. EUI-64s: a supplier User ID inside the DCC's MA-S block, a device ID outside it"
run "$SMKI" eui64 parse 90-B3-D5-1F-30-01-00-00 --range 90B3D51F3/36
set +e
"$SMKI" eui64 parse 00DB1234567890A0 --range 90B3D51F3/36; rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "UNEXPECTED exit $rc"; exit 1; }

say "8. The CA ceremony for the test PKI (ZAZ1-style): SMKI root, OCA, DCA, DCCKI root and issuing CA"
echo "The first ceremony precedes the RA (no operator exists yet): it is the bootstrap, audited later:"
echo "the first operator's registration (step 9) binds its CA certificates to the trail (ca-adopt entries)."
echo "Once the store has RA operators (step 9 registers them), the ceremony, CRLs and ARLs are RA"
echo "actions: --operator, and an audit entry in the same transaction (docs/ra.md)."
run "$SMKI" ca init --env test --operator demo-ra
run "$SMKI" ca init --env test --operator demo-ra | tail -2

RUN=$WORK/run-$(date +%s)
mkdir -p "$RUN"
SHARED=${SMKI_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
CSR=$SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der
say "9. Test certificates go only to a registered Testing Participant: the RA registers GITTEST"
"$(dirname "$0")/demo_ra.sh" "$SMKI" participant
RA=(--party GITTEST --operator demo-ra)

say "9b. A real device CSR (from a GBCS CS02c response) becomes a device certificate"
IN_USE=$("$SMKI" --json ca list --env test --eui 00-DB-12-34-56-78-90-A0 --profile device |
  /usr/bin/python3 -c 'import json,sys; print(" ".join(c["serial"] for c in json.load(sys.stdin)["certificates"] if c["status"] == "in-use"))')
if [ -z "$IN_USE" ]; then
  run "$SMKI" ca issue --env test --csr "$CSR" "${RA[@]}" --out "$RUN/device-00db1234567890a0-ds.pem"
else
  echo "An earlier run issued it. A second in-use certificate for the same key and Device ID from the same"
  echo "CA is refused unless asked for (--allow-duplicate-key): running a command again never issues twice."
  set +e
  "$SMKI" ca issue --env test --csr "$CSR" "${RA[@]}" --out "$RUN/device-00db1234567890a0-ds.pem"; rc=$?
  set -e
  [ "$rc" -eq 2 ] || { echo "UNEXPECTED exit $rc"; exit 1; }
  echo "  (refused, exit 2, as it should be; the one there is written out instead)"
  run "$SMKI" ca show "${IN_USE%% *}" --out "$RUN/device-00db1234567890a0-ds.pem"
fi
run "$SMKI" lint "$RUN/device-00db1234567890a0-ds.pem"
CA_DIR=$SMKI_HOME/ca/test
ls "$CA_DIR"
run openssl verify -CAfile "$CA_DIR/smki-root.pem" -untrusted "$CA_DIR/smki-dca.pem" "$RUN/device-00db1234567890a0-ds.pem"

say "10. An organisation certificate pair for a supplier (User ID 90-B3-D5-1F-30-01-00-00): DS and KA"
for usage in digitalSignature keyAgreement; do
  short=$([ "$usage" = digitalSignature ] && echo ds || echo ka)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$RUN/supplier-$short.key" 2>/dev/null
  openssl req -new -key "$RUN/supplier-$short.key" -subj "/CN=GITTESTSUPPLIER" -addext "keyUsage=critical,$usage" \
    -out "$RUN/supplier-$short.csr" 2>/dev/null
  run "$SMKI" ca issue --env test --csr "$RUN/supplier-$short.csr" --role supplier --eui 90-B3-D5-1F-30-01-00-00 \
    --cn GITTESTSUPPLIER "${RA[@]}" --out "$RUN/supplier-$short.pem"
done
run "$SMKI" lint "$RUN/supplier-ds.pem" "$RUN/supplier-ka.pem"
run openssl verify -CAfile "$CA_DIR/smki-root.pem" -untrusted "$CA_DIR/smki-oca.pem" "$RUN/supplier-ds.pem" "$RUN/supplier-ka.pem"
run "$SMKI" ca list --env test

say "11. DCCKI TLS certificates: a gateway server and a client of Party PARTY0001 (endpoint keys are files)"
for role in server client; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$RUN/tls-$role.key" 2>/dev/null
  openssl req -new -key "$RUN/tls-$role.key" -subj "/CN=gw1" -addext "keyUsage=critical,digitalSignature" \
    -out "$RUN/tls-$role.csr" 2>/dev/null
done
echo "PARTY0001 is an Authorised Subscriber for both types (step 9); the RA's gate checks it and audits each."
run "$SMKI" ca issue --env test --profile dccki-server --csr "$RUN/tls-server.csr" --party PARTY0001 --cn gw1 \
  --dns localhost --ip 127.0.0.1 --operator demo-ra --out "$RUN/tls-server.pem"
run "$SMKI" ca issue --env test --profile dccki-client --csr "$RUN/tls-client.csr" --party PARTY0001 \
  --operator demo-ra --out "$RUN/tls-client.pem"
run "$SMKI" lint "$RUN/tls-server.pem" "$RUN/tls-client.pem"
run openssl verify -purpose sslserver -CAfile "$CA_DIR/dccki-root.pem" -untrusted "$CA_DIR/dccki-ica.pem" "$RUN/tls-server.pem"
run openssl verify -purpose sslclient -CAfile "$CA_DIR/dccki-root.pem" -untrusted "$CA_DIR/dccki-ica.pem" "$RUN/tls-client.pem"

say "12. Revocation: the supplier's KA certificate is superseded; the organisation CA's CRL lists it"
KA_SERIAL=$(openssl x509 -in "$RUN/supplier-ka.pem" -noout -serial | cut -d= -f2)
run "$SMKI" ca revoke --env test "$KA_SERIAL" --reason superseded --operator demo-ra
run "$SMKI" ca crl --env test --operator demo-ra
run "$SMKI" ca arl --env test --operator demo-ra
run openssl crl -inform DER -in "$CA_DIR/smki-oca.crl" -noout -text
cat "$CA_DIR/smki-root.pem" "$CA_DIR/smki-oca.pem" > "$RUN/smki-chain.pem"
run openssl verify -crl_check -CAfile "$RUN/smki-chain.pem" -CRLfile "$CA_DIR/smki-oca.crl" "$RUN/supplier-ds.pem"
set +e
openssl verify -crl_check -CAfile "$RUN/smki-chain.pem" -CRLfile "$CA_DIR/smki-oca.crl" "$RUN/supplier-ka.pem"; rc=$?
set -e
[ "$rc" -ne 0 ] || { echo "UNEXPECTED: the revoked certificate verified"; exit 1; }
echo "(as expected: openssl refuses the revoked KA certificate)"

say "13. A batch of device certificates: 200 device CSRs (as devices send them in CS02c responses)"
CSRS_TEST=$WORK/csrs-test
if [ ! -d "$CSRS_TEST" ]; then
  echo "Making 200 device CSRs, EUI-64 00-DB-12-34-00-00-00-00 upwards (tests/helpers/make_device_csrs):"
  echo "EC P-256 keys, empty subject, critical keyUsage, the Device ID in a hardwareModuleName SAN."
  "$MAKE_CSRS" --out "$CSRS_TEST" --count 100 --start 00-DB-12-34-00-00-00-00 --usage both
else
  echo "Using the 200 device CSRs already in $CSRS_TEST."
fi
ls "$CSRS_TEST" | sed -n 1,3p; echo "  ... $(ls "$CSRS_TEST" | wc -l) files"
echo "Test is a direct-issue environment (ra.direct_issue): the batch goes straight to the CA, but only"
echo "for a registered Testing Participant, every CSR through the RA's checks, each commit in the audit trail."
run "$SMKI" ca batch --env test --in "$CSRS_TEST" --out "$WORK/devices-test" "${RA[@]}"
echo "Run it again, as after a crash: every CSR is found already issued and its certificate written"
echo "out again; nothing is issued twice."
run "$SMKI" ca batch --env test --in "$CSRS_TEST" --out "$WORK/devices-test" "${RA[@]}" | sed -n 2,3p
echo "Every certificate checked by the linter and chained by openssl:"
"$SMKI" lint "$WORK"/devices-test/*.pem | tail -1
openssl verify -CAfile "$CA_DIR/smki-root.pem" -untrusted "$CA_DIR/smki-dca.pem" "$WORK"/devices-test/*.pem \
  | grep -c ': OK$' | sed 's/$/ certificates: OK (openssl verify)/'

say "14. The production hierarchy. Its OIDs are not public: they are configuration."
PROD_CONF=$SMKI_HOME/demo-production.conf
if [ ! -f "$PROD_CONF" ]; then
  cat > "$PROD_CONF" <<'CONF'
# DEMO ONLY. A production environment for `make demo`, with MADE-UP policy OIDs in the
# example arc 2.999 (X.660), which nothing live carries. These are NOT the DCC's: the
# live SMKI OIDs are not public; an operator sets them from the SMKI Compliance Policy
# and GBCS as issued (see docs/ca-ceremony.conf). Never copy this file to a real home.
[env.production]
org_policy = 2.999.0.1
device_policy = 2.999.0.2
hw_type = 1.2.826.0.1.8641679.1.2.2.1
dccki_policy = 2.999.0.4
root_name = DEMO PROD ROOT
oca_name = DEMO PROD OCA
dca_name = DEMO PROD DCA

[ca.production]
token = smki-demo-production
smki_root_key = demo-prod-smki-root
smki_oca_key = demo-prod-smki-oca
smki_dca_key = demo-prod-smki-dca
dccki_root_name = smki demo production DCCKI Root
dccki_root_key = demo-prod-dccki-root
dccki_ica_name = smki demo production DCCKI Issuing CA
dccki_ica_key = demo-prod-dccki-ica
CONF
  echo "Wrote $PROD_CONF (demo placeholders, clearly labelled)."
fi
sed 's/^/  | /' "$PROD_CONF"
PCA_DIR=$SMKI_HOME/ca/production
if [ ! -f "$PCA_DIR/smki-root.pem" ]; then
  echo "Without it, production is refused: its OIDs are placeholders until configured."
  set +e
  "$SMKI" ca init --env production --operator demo-ra; rc=$?
  set -e
  [ "$rc" -ne 0 ] || { echo "UNEXPECTED: production accepted without configuration"; exit 1; }
fi
echo "The ceremony records the configuration with the hierarchy: later runs and issuance use it."
run "$SMKI" ca init --env production --config "$PROD_CONF" --operator demo-ra

say "15. Production: an organisation certificate pair for the supplier, and 200 device certificates"
PROD=$WORK/production
mkdir -p "$PROD"
echo "Production is not a direct-issue environment: 'smki ca issue' and 'smki ca batch' are refused here."
echo "Every production certificate is a request to the RA: one operator submits it (the eligibility"
echo "checks run at once), another approves it (nobody approves their own), then it is executed: checked"
echo "again, issued by the CA and written to the audit trail in one transaction."
# ra_request ARGS...: submit, show what was submitted, leave its number in REQ.
ra_request() {
  local out
  printf '$ %s\n' "$SMKI ra request submit $*"
  out=$("$SMKI" ra request submit "$@")
  echo "$out"
  REQ=$(sed -n 's/^Request \([0-9]*\) submitted.*/\1/p' <<<"$out")
  [ -n "$REQ" ] || { echo "UNEXPECTED: no request number in the answer"; exit 1; }
}
AS_RA=(--operator demo-ra) AS_RA2=(--operator demo-ra2)
echo
echo "The registration: GITTEST's supplier User ID may hold production supplier certificates, and"
echo "GITTEST may request production device certificates (Authorised Subscriber, per environment)."
for sub in "organisation --role supplier" device; do
  # shellcheck disable=SC2086 # the type and its role are separate arguments
  if "$SMKI" ra subscriber list | grep -E "^ *GITTEST +$(cut -d' ' -f1 <<<"$sub") .*production" >/dev/null; then
    echo "GITTEST is already an Authorised Subscriber for $(cut -d' ' -f1 <<<"$sub") certificates in production."
  else
    run "$SMKI" ra subscriber authorise --party GITTEST --type $sub --env production "${AS_RA[@]}"
  fi
done
for short in ds ka; do
  usage=$([ "$short" = ds ] && echo digitalSignature || echo keyAgreement)
  if [ -f "$PROD/supplier-$short.pem" ]; then
    echo "The production supplier $short certificate exists: $PROD/supplier-$short.pem"
    continue
  fi
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PROD/supplier-$short.key" 2>/dev/null
  openssl req -new -key "$PROD/supplier-$short.key" -subj "/CN=GITTESTSUPPLIER" -addext "keyUsage=critical,$usage" \
    -out "$PROD/supplier-$short.csr" 2>/dev/null
  echo
  echo "demo-ra submits the supplier's $short CSR for GITTEST's User ID 90-B3-D5-1F-30-01-00-00, role supplier:"
  ra_request --type organisation --party GITTEST --env production --role supplier \
    --eui 90-B3-D5-1F-30-01-00-00 --cn GITTESTSUPPLIER --csr "$PROD/supplier-$short.csr" "${AS_RA[@]}"
  echo "demo-ra2, a second operator, checks it against the Party's paperwork and approves it:"
  run "$SMKI" ra request approve "$REQ" "${AS_RA2[@]}"
  echo "Approved: demo-ra executes it (eligibility checked again, issued, audited in one transaction):"
  rm -rf "$PROD/out-$short"
  run "$SMKI" ra request execute "$REQ" --out-dir "$PROD/out-$short" "${AS_RA[@]}"
  mv "$PROD"/out-"$short"/*.pem "$PROD/supplier-$short.pem"
  rmdir "$PROD/out-$short"
done
CSRS_PROD=$WORK/csrs-production
[ -d "$CSRS_PROD" ] || "$MAKE_CSRS" --out "$CSRS_PROD" --count 100 --start 00-DB-56-78-00-00-00-00 --usage both
echo
echo "The device certificates: the same rule, as a device-batch request of 200 CSRs. It is under"
echo "ra.batch_review_size (1000) and within the subscriber's demand, so one approval suffices; a larger"
echo "batch, or demand above its usual level, would be held for two."
echo "First, the CA's direct path is refused in production, and says what to do instead:"
set +e
"$SMKI" ca batch --env production --in "$CSRS_PROD" --out "$PROD/devices" "${RA[@]}"; rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "UNEXPECTED exit $rc: a production batch outside the RA"; exit 1; }
echo "  (refused, exit 2, as it should be)"
BATCH_REQ_FILE=$PROD/device-batch.request
# The state of a request: pending, held, approved, done or rejected.
req_state() { "$SMKI" ra request show "$1" | sed -n 's/^ *state *//p'; }
if [ -f "$BATCH_REQ_FILE" ] && [ "$(req_state "$(cat "$BATCH_REQ_FILE")")" = rejected ]; then
  rm "$BATCH_REQ_FILE" # rejected by an operator: a new request
fi
if [ -f "$BATCH_REQ_FILE" ] && [ "$(req_state "$(cat "$BATCH_REQ_FILE")")" = "done" ]; then
  echo "The device batch was requested, approved and executed by an earlier run: request $(cat "$BATCH_REQ_FILE")."
  run "$SMKI" ra request show "$(cat "$BATCH_REQ_FILE")"
else
  if [ -f "$BATCH_REQ_FILE" ]; then
    REQ=$(cat "$BATCH_REQ_FILE")
    echo "Request $REQ of an earlier run is not finished: carried on (an interrupted batch resumes)."
  else
    echo "demo-ra submits the 200 CSRs (the RA checks each: proof of possession, a Device ID from no central"
    echo "block, GITTEST's standing and demand):"
    ra_request --type device-batch --party GITTEST --env production --csr-dir "$CSRS_PROD" "${AS_RA[@]}"
    echo "$REQ" >"$BATCH_REQ_FILE"
  fi
  state=$(req_state "$REQ")
  if [ "$state" = pending ] || [ "$state" = held ]; then
    echo "demo-ra2 approves the batch:"
    run "$SMKI" ra request approve "$REQ" "${AS_RA2[@]}"
  fi
  echo "demo-ra executes it: issued in group commits, each with its audit entry:"
  run "$SMKI" ra request execute "$REQ" --out-dir "$PROD/devices" "${AS_RA[@]}"
fi
echo "The audit trail holds every step (submitted, approved, executed, by whom), chained and signed:"
printf '$ %s\n' "$SMKI audit list | grep ' request-' | tail -9"
"$SMKI" audit list | sed -n 1p
"$SMKI" audit list | grep ' request-' | tail -9
run "$SMKI" audit verify
run "$SMKI" lint --env production --config "$PROD_CONF" "$PROD/supplier-ds.pem" "$PROD/supplier-ka.pem"
"$SMKI" lint --env production --config "$PROD_CONF" "$PROD"/devices/*.pem | tail -1
run openssl verify -CAfile "$PCA_DIR/smki-root.pem" -untrusted "$PCA_DIR/smki-oca.pem" "$PROD/supplier-ds.pem" \
  "$PROD/supplier-ka.pem"
openssl verify -CAfile "$PCA_DIR/smki-root.pem" -untrusted "$PCA_DIR/smki-dca.pem" "$PROD"/devices/*.pem \
  | grep -c ': OK$' | sed 's/$/ production device certificates: OK (openssl verify)/'
echo "Test and production never cross: a test device certificate against production's root:"
set +e
openssl verify -CAfile "$PCA_DIR/smki-root.pem" -untrusted "$PCA_DIR/smki-dca.pem" \
  "$WORK/devices-test/00db123400000000-ds.pem" >/dev/null 2>&1; rc=$?
set -e
[ "$rc" -ne 0 ] || { echo "UNEXPECTED: a test certificate verified against production"; exit 1; }
echo "  refused by openssl verify, as it should be."
run "$SMKI" ca list --env production --profile organisation

say "16. The registration authority: requests, approvals, a batch, a revocation, the audit trail"
SMKI_TAMPER=${SMKI_TAMPER:-$(dirname "$SMKI")/ra_tamper} "$(dirname "$0")/demo_ra.sh" "$SMKI"

say "17. GBCS: a supplier signs, the ACB MACs, the device verifies and acts; then a Change of Supplier"
"$(dirname "$0")/demo_gbcs.sh" "$SMKI"

say "18. The SMKI Repository: serve the store over HTTP, fetch, search, download the CRL"
"$(dirname "$0")/demo_repo.sh" "$SMKI"

say "19. The store"
run "$SMKI" store info

say "Done. Everything above lives in $SMKI_HOME; 'rm -rf $SMKI_HOME' starts afresh."
