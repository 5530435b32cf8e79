#!/usr/bin/env bash
# make demo: the main job end to end on embedded defaults, narrated for an operator.
# Home ./var/smki: its own SoftHSM token and LMDB store. PINs live in files under
# ./var/smki/secrets (mode 0600), never on a command line. Safe to run again.
set -euo pipefail
SMKI=${1:-build/bin/smki}
export SMKI_HOME=${SMKI_HOME:-./var/smki}
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
listing=$(SOFTHSM2_CONF=$SMKI_HOME/hsm/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
  --token-label "$TOKEN_LABEL" --login --pin "$(cat "$SECRETS/user.pin")" --list-objects --type privkey 2>/dev/null)
echo "$listing" | grep -A4 'demo-supplier-ds' | sed 's/^/  /'
echo "$listing" | grep -A4 'demo-supplier-ds' | grep -q 'never extractable' || { echo "UNEXPECTED: key is extractable"; exit 1; }

say "3. Export the public key"
run "$SMKI" key pub demo-supplier-ds --out "$WORK/supplier-ds.pub.pem"
cat "$WORK/supplier-ds.pub.pem"

say "4. Sign a message in the token, as GBCS does (raw r||s) and as X.509 does (DER)"
printf 'ECS01a pre-command for 00-DB-12-34-56-78-90-A0, %s\n' "$(date -u +%FT%TZ)" > "$WORK/message.txt"
run "$SMKI" sign --key demo-supplier-ds --in "$WORK/message.txt" --out "$WORK/message.raw" --raw
run "$SMKI" sign --key demo-supplier-ds --in "$WORK/message.txt" --out "$WORK/message.der" --der

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
run "$SMKI" eui64 parse 90-B3-D5-1F-30-01-00-00 --in 90B3D51F3/36
set +e
"$SMKI" eui64 parse 00DB1234567890A0 --in 90B3D51F3/36; rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "UNEXPECTED exit $rc"; exit 1; }

say "8. The CA ceremony for the test PKI (ZAZ1-style): SMKI root, OCA, DCA, DCCKI root and issuing CA"
run "$SMKI" ca init --env test
run "$SMKI" ca init --env test | tail -2

RUN=$WORK/run-$(date +%s)
mkdir -p "$RUN"
SHARED=${SMKI_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
CSR=$SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der
say "9. A real device CSR (from a GBCS CS02c response) becomes a device certificate"
run "$SMKI" ca issue --env test --csr "$CSR" --out "$RUN/device-00db1234567890a0-ds.pem"
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
    --cn GITTESTSUPPLIER --out "$RUN/supplier-$short.pem"
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
run "$SMKI" ca issue --env test --profile dccki-server --csr "$RUN/tls-server.csr" --party PARTY0001 --cn gw1 \
  --dns localhost --ip 127.0.0.1 --out "$RUN/tls-server.pem"
run "$SMKI" ca issue --env test --profile dccki-client --csr "$RUN/tls-client.csr" --party PARTY0001 \
  --out "$RUN/tls-client.pem"
run "$SMKI" lint "$RUN/tls-server.pem" "$RUN/tls-client.pem"
run openssl verify -purpose sslserver -CAfile "$CA_DIR/dccki-root.pem" -untrusted "$CA_DIR/dccki-ica.pem" "$RUN/tls-server.pem"
run openssl verify -purpose sslclient -CAfile "$CA_DIR/dccki-root.pem" -untrusted "$CA_DIR/dccki-ica.pem" "$RUN/tls-client.pem"

say "12. Revocation: the supplier's KA certificate is superseded; the organisation CA's CRL lists it"
KA_SERIAL=$(openssl x509 -in "$RUN/supplier-ka.pem" -noout -serial | cut -d= -f2)
run "$SMKI" ca revoke --env test --serial "$KA_SERIAL" --reason superseded
run "$SMKI" ca crl --env test
run "$SMKI" ca arl --env test
run openssl crl -inform DER -in "$CA_DIR/smki-oca.crl" -noout -text
cat "$CA_DIR/smki-root.pem" "$CA_DIR/smki-oca.pem" > "$RUN/smki-chain.pem"
run openssl verify -crl_check -CAfile "$RUN/smki-chain.pem" -CRLfile "$CA_DIR/smki-oca.crl" "$RUN/supplier-ds.pem"
set +e
openssl verify -crl_check -CAfile "$RUN/smki-chain.pem" -CRLfile "$CA_DIR/smki-oca.crl" "$RUN/supplier-ka.pem"; rc=$?
set -e
[ "$rc" -ne 0 ] || { echo "UNEXPECTED: the revoked certificate verified"; exit 1; }
echo "(as expected: openssl refuses the revoked KA certificate)"

say "13. The store"
run "$SMKI" store info

say "Done. Everything above lives in $SMKI_HOME; 'rm -rf $SMKI_HOME' starts afresh."
