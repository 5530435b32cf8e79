#!/usr/bin/env bash
# The Registration Authority, narrated for an operator (make demo calls it).
#
#   tools/demo_ra.sh SMKI              the RA story in a home of its own, made afresh each run
#                                      ($SMKI_HOME/ra-demo): operators with keys in the token,
#                                      a supplier and a network operator registered, their IDs
#                                      allocated, their organisation certificates issued through
#                                      approved requests, a device batch, a revocation and its
#                                      CRL, the audit trail verified, then tampered with.
#   tools/demo_ra.sh SMKI participant  in $SMKI_HOME: the RA registration that test certificates
#                                      need (operator demo-ra, Party GITTEST, a Testing Participant
#                                      with the User ID 90-B3-D5-1F-30-01-00-00; PARTY0001, authorised
#                                      for DCCKI TLS certificates) and a second operator,
#                                      demo-ra2, who approves demo-ra's requests. Safe to run again.
#                                      Then: smki ca issue --env test ... --party GITTEST --operator demo-ra
# PINs live in files (mode 0600), never on a command line.
set -euo pipefail
SMKI=${1:-build/bin/smki}
MODE=${2:-story}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
refused() { # the command must be refused (exit 2); show its message
  printf '$ %s\n' "$*"
  set +e
  "$@"
  local rc=$?
  set -e
  [ "$rc" -eq 2 ] || { echo "UNEXPECTED exit $rc (wanted 2: refused)"; exit 1; }
  echo "  (refused, exit 2, as it should be)"
}

# ---- participant: the registration the main demo's test certificates need -------------------------
if [ "$MODE" = participant ]; then
  : "${SMKI_HOME:?set SMKI_HOME}"
  CONF=$SMKI_HOME/smki.conf
  if ! "$SMKI" --json key list 2>/dev/null | grep -q '"label":"smki-audit"'; then
    "$SMKI" key generate --label smki-audit --usage ds >/dev/null
  fi
  # Two operators, each with a key of their own in the token: demo-ra acts, demo-ra2
  # approves what demo-ra submits (nobody approves their own request).
  for op in demo-ra demo-ra2; do
    if ! "$SMKI" --json key list | grep -q "\"label\":\"$op-op\""; then
      "$SMKI" key generate --label "$op-op" --usage ds >/dev/null
    fi
  done
  grep -q '^\[operators\]' "$CONF" 2>/dev/null || printf '\n[operators]\n' >>"$CONF"
  grep -q '^demo-ra = ' "$CONF" || sed -i 's/^\[operators\]$/[operators]\ndemo-ra = demo-ra-op/' "$CONF"
  grep -q '^demo-ra2 = ' "$CONF" || sed -i 's/^\[operators\]$/[operators]\ndemo-ra2 = demo-ra2-op/' "$CONF"
  O=(--operator demo-ra)
  OPS=$("$SMKI" ra operator list 2>/dev/null || true)
  if ! grep -q '^demo-ra ' <<<"$OPS"; then
    "$SMKI" key pub demo-ra-op --out "$SMKI_HOME/demo-ra-op.pub" >/dev/null
    run "$SMKI" ra operator add demo-ra --pub "$SMKI_HOME/demo-ra-op.pub" "${O[@]}"
  fi
  if ! grep -q '^demo-ra2 ' <<<"$OPS"; then
    "$SMKI" key pub demo-ra2-op --out "$SMKI_HOME/demo-ra2-op.pub" >/dev/null
    run "$SMKI" ra operator add demo-ra2 --pub "$SMKI_HOME/demo-ra2-op.pub" "${O[@]}"
  fi
  # PARTY0001, whose DCCKI TLS certificates (a gateway's server and client) the main demo
  # issues: registered and an Authorised Subscriber for both types in test.
  if ! "$SMKI" ra party show PARTY0001 >/dev/null 2>&1; then
    run "$SMKI" ra party add PARTY0001 --name "DCCKI test party" --testing-participant --agreement-signed "${O[@]}"
    run "$SMKI" ra subscriber authorise --party PARTY0001 --type dccki-server --env test "${O[@]}"
    run "$SMKI" ra subscriber authorise --party PARTY0001 --type dccki-client --env test "${O[@]}"
  fi
  if "$SMKI" ra party show GITTEST >/dev/null 2>&1; then
    echo "The RA already knows the Testing Participant GITTEST; operators demo-ra and demo-ra2 are registered."
    exit 0
  fi
  run "$SMKI" ra party add GITTEST --name "GIT test participant" --testing-participant --agreement-signed "${O[@]}"
  run "$SMKI" ra range assign 90B3D51F3/36 --party GITTEST --kind central "${O[@]}"
  run "$SMKI" ra id allocate --party GITTEST --roles EIS --eui 90-B3-D5-1F-30-01-00-00 "${O[@]}"
  run "$SMKI" ra subscriber authorise --party GITTEST --type organisation --role supplier --env test "${O[@]}"
  run "$SMKI" ra subscriber authorise --party GITTEST --type device --env test "${O[@]}"
  exit 0
fi

# ---- The story, in a home of its own -------------------------------------------------------------------
BASE=${SMKI_HOME:-./var/smki}
export SMKI_HOME=$BASE/ra-demo
unset SMKI_PIN SMKI_SO_PIN SMKI_OPERATOR SMKI_OPERATOR_KEY
rm -rf "$SMKI_HOME"
mkdir -p "$SMKI_HOME/secrets" "$SMKI_HOME/work"
chmod 700 "$SMKI_HOME" "$SMKI_HOME/secrets"
W=$SMKI_HOME/work
(umask 077; openssl rand -hex 12 >"$SMKI_HOME/secrets/so.pin"; openssl rand -hex 12 >"$SMKI_HOME/secrets/user.pin")
cat >"$SMKI_HOME/smki.conf" <<'CONF'
[hsm]
token = smki
pin_file = secrets/user.pin
so_pin_file = secrets/so.pin
[ra]
# a batch above 50 CSRs needs two approvals; demand is judged against 40 a month
batch_review_size = 50
demand_baseline = 40
[audit]
checkpoint_every = 8
checkpoint_key = smki-audit
[operators]
alice = op-alice
bob = op-bob
carol = op-carol
CONF
A=(--operator alice) B=(--operator bob) C=(--operator carol)

say "RA 1. A home of its own ($SMKI_HOME): the token, the test CA, the audit checkpoint key"
run "$SMKI" hsm init >/dev/null
run "$SMKI" ca init --env test | sed -n 1p
run "$SMKI" key generate --label smki-audit --usage ds

say "RA 2. Three operators, each with a key of their own in the token"
for o in alice bob carol; do
  "$SMKI" key generate --label "op-$o" --usage ds >/dev/null
  "$SMKI" key pub "op-$o" --out "$W/$o.pub" >/dev/null
done
run "$SMKI" ra operator add alice --pub "$W/alice.pub" "${A[@]}"
run "$SMKI" ra operator add bob --pub "$W/bob.pub" "${A[@]}"
run "$SMKI" ra operator add carol --pub "$W/carol.pub" "${A[@]}"
run "$SMKI" ra operator list

say "RA 3. Register a supplier and a network operator; their blocks; their User IDs"
run "$SMKI" ra party add SUPPLIER-A --name "Supplier A Ltd" --testing-participant --agreement-signed "${A[@]}"
run "$SMKI" ra party add NETOP-B --name "Network B plc" --testing-participant --agreement-signed "${A[@]}"
run "$SMKI" ra range assign 90B3D51F3/36 --party SUPPLIER-A --kind central "${A[@]}"
run "$SMKI" ra range assign 90B3D51F4/36 --party NETOP-B --kind central "${A[@]}"
run "$SMKI" ra range assign 00DB12/24 --party SUPPLIER-A --kind device "${A[@]}"
run "$SMKI" ra id allocate --party SUPPLIER-A --roles EIS,GIS "${A[@]}"
run "$SMKI" ra id allocate --party NETOP-B --roles ENO "${A[@]}"
run "$SMKI" ra subscriber authorise --party SUPPLIER-A --type organisation --role supplier --env test "${A[@]}"
run "$SMKI" ra subscriber authorise --party SUPPLIER-A --type device --env test "${A[@]}"
run "$SMKI" ra subscriber authorise --party NETOP-B --type organisation --role networkOperator --env test "${A[@]}"
echo "An ID outside the requester's own block is refused:"
refused "$SMKI" ra id allocate --party SUPPLIER-A --roles EIS --eui 90-B3-D5-1F-40-00-00-09 "${A[@]}"

say "RA 4. Organisation certificates through approved requests"
for p in sup:SUPPLIER-A:supplier:90-B3-D5-1F-30-00-00-00 net:NETOP-B:networkOperator:90-B3-D5-1F-40-00-00-00; do
  IFS=: read -r short party role eui <<<"$p"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$short.key" -subj "/CN=$party" \
    -addext "keyUsage=critical,digitalSignature" -out "$W/$short.csr" 2>/dev/null
  run "$SMKI" ra request submit --type organisation --party "$party" --env test --role "$role" --eui "$eui" \
    --csr "$W/$short.csr" "${A[@]}"
done
echo "alice may not approve her own request:"
refused "$SMKI" ra request approve 1 "${A[@]}"
run "$SMKI" ra request approve 1 "${B[@]}"
run "$SMKI" ra request approve 2 "${C[@]}"
run "$SMKI" ra request execute 1 "${B[@]}" --out-dir "$W/issued"
run "$SMKI" ra request execute 2 "${C[@]}" --out-dir "$W/issued"
run "$SMKI" lint --env test "$W"/issued/*.pem
CA=$SMKI_HOME/ca/test
run openssl verify -CAfile "$CA/smki-root.pem" -untrusted "$CA/smki-oca.pem" "$W"/issued/*.pem

say "RA 4b. A DCCKI TLS server certificate for the supplier's gateway: also a request"
run "$SMKI" ra subscriber authorise --party SUPPLIER-A --type dccki-server --env test "${A[@]}"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/gw.key" \
  -subj "/2.5.4.97=SUPPLIER-A/CN=gw1" -addext "keyUsage=critical,digitalSignature" -out "$W/gw.csr" 2>/dev/null
echo "NETOP-B is not an Authorised Subscriber for DCCKI TLS server certificates:"
refused "$SMKI" ra request submit --type dccki-server --party NETOP-B --env test --csr "$W/gw.csr" --dns gw1.supplier-a.test "${A[@]}"
TLS_REQ=$("$SMKI" --json ra request submit --type dccki-server --party SUPPLIER-A --env test --csr "$W/gw.csr" \
  --dns gw1.supplier-a.test --cn gw1 "${A[@]}" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
run "$SMKI" ra request show "$TLS_REQ"
run "$SMKI" ra request approve "$TLS_REQ" "${B[@]}"
run "$SMKI" ra request execute "$TLS_REQ" "${B[@]}" --out-dir "$W/tls"
run openssl verify -purpose sslserver -CAfile "$CA/dccki-root.pem" -untrusted "$CA/dccki-ica.pem" "$W"/tls/*.pem

say "RA 5. A device batch of 60 CSRs: above the review size and the demand threshold, so held for two approvals"
"$PY" "$HERE/device_csrs.py" "$W/devices" 00DB120000000100 60
run "$SMKI" ra request submit --type device-batch --party SUPPLIER-A --env test --csr-dir "$W/devices" "${A[@]}"
run "$SMKI" ra request list --state held
run "$SMKI" ra request approve 4 "${B[@]}"
run "$SMKI" ra request approve 4 "${C[@]}"
run "$SMKI" ra request execute 4 "${C[@]}" --out-dir "$W/devout"
run "$SMKI" lint --env test "$W"/devout/*.pem | tail -1

say "RA 6. Revoke the supplier's certificate (key compromise): two approvals, then the CRL"
SERIAL=$("$SMKI" --json ra request show 1 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["serial"])')
run "$SMKI" ra revoke "$SERIAL" --reason keyCompromise "${A[@]}"
run "$SMKI" ra request approve 5 "${B[@]}"
run "$SMKI" ra request approve 5 "${C[@]}"
run "$SMKI" ra request execute 5 "${C[@]}"
run openssl crl -inform DER -in "$CA/smki-oca.crl" -noout -text -CAfile "$CA/smki-oca.pem" | sed -n '1,14p'
openssl crl -inform DER -in "$CA/smki-oca.crl" -out "$W/oca-crl.pem"
cat "$CA/smki-root.pem" "$CA/smki-oca.pem" >"$W/chain.pem"
echo "openssl verify with the CRL now refuses the supplier's certificate:"
set +e
openssl verify -crl_check -CAfile "$W/chain.pem" -CRLfile "$W/oca-crl.pem" "$W/issued/$SERIAL.pem"
rc=$?
set -e
[ "$rc" -ne 0 ] || { echo "UNEXPECTED: the revoked certificate verified"; exit 1; }
run "$SMKI" ra request list

say "RA 7. The audit trail: every step above, chained, signed by its operator, checkpointed"
run "$SMKI" audit list --last 8
run "$SMKI" audit verify

say "RA 8. Someone with write access to the store edits one entry: verify names it"
cp -a "$SMKI_HOME/store" "$W/store.bak"
if [ -x "${SMKI_TAMPER:-}" ]; then
  "$SMKI_TAMPER" "$SMKI_HOME/store" flip 5
  refused "$SMKI" audit verify
  rm -rf "$SMKI_HOME/store" && mv "$W/store.bak" "$SMKI_HOME/store"
  run "$SMKI" audit verify
else
  echo "(set SMKI_TAMPER to build/bin/ra_tamper to see it; tests/integration/ra.sh does every kind)"
fi
echo
echo "The RA demo lives in $SMKI_HOME; it is made afresh on every run."
