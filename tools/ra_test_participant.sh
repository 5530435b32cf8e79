#!/usr/bin/env bash
# tools/ra_test_participant.sh SMKI HOME KEYDIR [EUI...]: register in HOME's RA what test
# certificates need (they go only to registered Testing Participants): an operator
# 'tester' and an audit checkpoint key, both software keys written to KEYDIR, and the
# Party GITTEST (Testing Participant, agreement signed) with its central block
# 90B3D51F3/36, the User ID 90-B3-D5-1F-30-01-00-00 and any further EUIs (EIS),
# authorised for supplier and device certificates in test. For scratch homes of scripts
# (bench, soak, demo); tests use lib.sh's ra_test_participant. Afterwards, with
#   export SMKI_OPERATOR=tester SMKI_OPERATOR_KEY=file:KEYDIR/ra-op.pem
# smki ca issue --env test ... --party GITTEST
set -euo pipefail
SMKI=$1 HOME_DIR=$2 KEYS=$3
shift 3
mkdir -p "$KEYS"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KEYS/ra-op.pem" 2>/dev/null
openssl pkey -in "$KEYS/ra-op.pem" -pubout -out "$KEYS/ra-op.pub" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KEYS/ra-checkpoint.pem" 2>/dev/null
printf '\n[audit]\ncheckpoint_key = file:%s\n' "$KEYS/ra-checkpoint.pem" >>"$HOME_DIR/smki.conf"
export SMKI_HOME=$HOME_DIR SMKI_OPERATOR=tester SMKI_OPERATOR_KEY=file:$KEYS/ra-op.pem
ra() { "$SMKI" ra "$@" >/dev/null; }
ra operator add tester --pub "$KEYS/ra-op.pub"
ra party add GITTEST --testing-participant --agreement-signed
ra range assign 90B3D51F3/36 --party GITTEST --kind central
for id in 90-B3-D5-1F-30-01-00-00 "$@"; do ra id allocate --party GITTEST --roles EIS --eui "$id"; done
ra subscriber authorise --party GITTEST --type organisation --role supplier --env test
ra subscriber authorise --party GITTEST --type device --env test
