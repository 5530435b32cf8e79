#!/usr/bin/env bash
# The gateway's remaining duties from the outside (smki gbcs gateway): RTDS responses and
# alerts through the return path with their own thresholds (quarantined and released as
# received); a command executing more than 30 days ahead refused (future-dated.too-far,
# --max-future-days); another environment's certificates refused (cert.environment,
# device.environment, user.environment) whatever the anchors; the quarantine hook fired
# once per message with the record as JSON, a failing hook losing nothing and counted,
# then notify retrying the pending ones; the record of checked messages archived, signed,
# pruned, and the archive verified by smki and by openssl.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
V=$SMKI_SHARED/vectors/gbcs
K=$V/keystore
R=$V/rtds
TIMEOUT=120
SUP=90B3D51F30010000
METER=00DB1234567890A0

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-gwduties.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
mkdir -p "$W"
export SMKI_HOME=$ROOT/home
mkdir -p "$SMKI_HOME" # only init commands make a home
. "$HERE/lib.sh"

# The Z1 OCA certificate from the certification path of an RTDS CS02b command.
"$PY" - "$R" "$W" <<'PYTHON'
import glob, os, sys
from cryptography import x509
rtds, w = sys.argv[1], sys.argv[2]
f = glob.glob(os.path.join(rtds, "6.15.1_CS02bSupplierBySupplier", "*IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"))[0]
b = bytes.fromhex("".join(open(f).read().split()))
for i in range(len(b) - 4):
    if b[i:i + 2] != b"\x30\x82":
        continue
    n = int.from_bytes(b[i + 2:i + 4], "big")
    try:
        c = x509.load_der_x509_certificate(b[i:i + 4 + n])
    except Exception:
        continue
    if "CN=Z1" in c.subject.rfc4514_string():
        open(os.path.join(w, "z1.der"), "wb").write(b[i:i + 4 + n])
        break
PYTHON
check "the Z1 OCA certificate extracted" test -s "$W/z1.der"

GW=(gbcs gateway)
CHECK=(gbcs gateway check --oca "$W/z1.der" --no-crl)
RESP=$R/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_RESPONSE_GBCS.HEX
ALERT=$R/NA_FDRA-DLMS/FDRA-DLMS_NA_8F72_ALERT_GBCS.HEX
CS02B_FUTURE=$R/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX
CS02B_CANCEL=$R/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_CANCELLATION_SUCCESS_COMMAND_GBCS.HEX
CS02B_NOW=$R/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX

# The supplier's User ID is the RA's (lib.sh: operator 'tester', Party GITTEST, EIS).
ra_test_participant "$SMKI_HOME"
expect_exit 0 "register the supplier" smki "${GW[@]}" user add --eui $SUP --role supplier --cert "$K/90b3d51f30010000-ds.pem"
expect_exit 0 "register the meter with its KA certificate" \
    smki "${GW[@]}" device add --eui $METER --status commissioned --ka-cert "$K/00db1234567890a0-ka.pem"

# ---- responses and alerts: the return path, their own thresholds --------------------------------------
printf 'user,message_code,window_seconds,max_count,kind\n%s,*,3600,1,response\n%s,*,3600,1,alert\n' $SUP $SUP \
    >"$W/thr.csv"
expect_exit 0 "sign the thresholds with the supplier's key" \
    smki file sign --key "file:$K/90b3d51f30010000-ds.key" --in "$W/thr.csv" --out "$W/thr.sig"
expect_exit 0 "load them" smki "${GW[@]}" thresholds load --eui $SUP --in "$W/thr.csv" --sig "$W/thr.sig"
run smki --json "${GW[@]}" thresholds show --eui $SUP
expect_json "the rules keep their kinds" "[r['kind'] for r in d['rules']] == ['response', 'alert']"
run smki --json "${CHECK[@]}" --at 2020-01-01 "$RESP" "$ALERT"
expect_json "a response and an alert from the meter to the supplier pass" \
    "d['ok'] and [m['verdict'] for m in d['messages']] == ['passed', 'passed']"
run smki --json "${CHECK[@]}" --at 2020-01-01T00:10:00Z "$RESP"
expect_json "the second response in the hour is quarantined" \
    "d['messages'][0]['verdict'] == 'quarantined' and d['messages'][0]['reason'] == 'threshold.exceeded'"
QID=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["messages"][0]["quarantine_id"])' "$OUT")
expect_exit 0 "release the held response without an ACB key" \
    smki "${GW[@]}" quarantine release "$QID" --out "$W/released.hex"
check "it is the response as the device sent it" \
    cmp <(tr -d ' \r\n' <"$RESP" | tr a-f A-F) <(tr -d ' \r\n' <"$W/released.hex")
expect_exit 0 "and it verifies for the supplier (smki gbcs verify)" \
    smki gbcs verify --trust "$K" --at 2020-01-01 "$W/released.hex"
"$PY" "$HERE/gbcs_return.py" set-title "$RESP" "$W/resp-a1.hex" originator 00db1234567890a1
run smki --json "${CHECK[@]}" --at 2020-01-01 "$W/resp-a1.hex"
expect_json "a response from a device not in the inventory: device.unknown" "d['messages'][0]['reason'] == 'device.unknown'"

# ---- future dating ----------------------------------------------------------------------------------
run smki --json "${CHECK[@]}" --at 2020-01-01 "$CS02B_FUTURE"
expect_json "a CS02b executing in 2030, checked in 2020: future-dated.too-far" \
    "d['messages'][0]['reason'] == 'future-dated.too-far' and '30 day(s)' in d['messages'][0]['detail']"
expect_exit 2 "30 days is the default limit" smki "${CHECK[@]}" --at 2020-01-01 "$CS02B_FUTURE"
run smki --json "${CHECK[@]}" --at 2020-01-01 --max-future-days 4000 "$CS02B_FUTURE"
expect_json "with --max-future-days 4000 it passes" "d['messages'][0]['verdict'] == 'passed'"
run smki --json "${CHECK[@]}" --at 2020-01-01 "$CS02B_CANCEL"
expect_json "the cancellation (executionDateTime 9999-12-31) is not future dating" \
    "d['messages'][0]['reason'] != 'future-dated.too-far'"
expect_exit 1 "--max-future-days 0 is a usage error" smki "${CHECK[@]}" --max-future-days 0 "$CS02B_NOW"

# ---- test and live never mix -------------------------------------------------------------------------
mkdir -p "$SMKI_HOME"
cat >>"$SMKI_HOME/smki.conf" <<'CONF'
[env.live]
org_policy = 1.2.826.0.1.8641679.1.2.1.9
device_policy = 1.2.826.0.1.1800000.1.2.1.9
hw_type = 1.2.826.0.1.8641679.1.2.2.9
[env.orglive]
org_policy = 1.2.826.0.1.8641679.1.2.1.9
device_policy = 1.2.826.0.1.1800000.1.2.1.4
hw_type = 1.2.826.0.1.8641679.1.2.2.1
CONF
run smki --json "${CHECK[@]}" --at 2020-01-01 --env live "$RESP"
expect_json "a live gateway: the test meter's certificate is refused (device.environment)" \
    "d['messages'][0]['reason'] == 'device.environment'"
run smki --json "${CHECK[@]}" --at 2020-01-01 --env orglive --max-future-days 4000 "$CS02B_FUTURE"
expect_json "a gateway whose organisation policy differs: the test signer is refused, although it chains to Z1" \
    "d['messages'][0]['reason'] == 'cert.environment'"
run smki --json "${CHECK[@]}" --at 2020-01-01 --env orglive "$RESP"
expect_json "... and the test supplier as the recipient of a response (user.environment)" \
    "d['messages'][0]['reason'] == 'user.environment'"
expect_exit 1 "an environment that is not configured is refused" \
    smki "${CHECK[@]}" --at 2020-01-01 --env production "$RESP"

# ---- the quarantine hook ------------------------------------------------------------------------------
HOOKLOG=$W/hook.jsonl
printf '%s,0019,3600,1\n' $SUP >"$W/thr2.csv"
smki file sign --key "file:$K/90b3d51f30010000-ds.key" --in "$W/thr2.csv" --out "$W/thr2.sig" >/dev/null
expect_exit 0 "one ECS01a an hour" smki "${GW[@]}" thresholds load --eui $SUP --in "$W/thr2.csv" --sig "$W/thr2.sig"
sign_pre() { # COUNTER OUT: the RTDS ECS01a pre-command with this counter, signed by the supplier
    "$PY" - "$R/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX" "$1" "$W/pre-$1.hex" <<'PYTHON'
import sys
b = bytearray(bytes.fromhex("".join(open(sys.argv[1]).read().split())))
b[3:11] = int(sys.argv[2]).to_bytes(8, "big")
open(sys.argv[3], "w").write(b.hex())
PYTHON
    smki gbcs sign --key "file:$K/90b3d51f30010000-ds.key" --cert "$K/90b3d51f30010000-ds.pem" \
        --in "$W/pre-$1.hex" --out "$2" >/dev/null
}
for n in 3001 3002 3003 3004; do sign_pre $n "$W/s$n.hex"; done
run smki --json "${CHECK[@]}" --at 2020-02-01 --quarantine-hook "cat >> '$HOOKLOG'" "$W/s3001.hex" "$W/s3002.hex" \
    "$W/s3003.hex"
expect_json "one passes, two are quarantined and notified" \
    "[m['verdict'] for m in d['messages']] == ['passed', 'quarantined', 'quarantined'] and \
     all(m['notified'] for m in d['messages'][1:])"
check "the hook got each record once, as JSON" "$PY" -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 2 and len({r["id"] for r in recs}) == 2, recs
assert all(r["reason"] == "threshold.exceeded" and r["kind"] == "command" and r["counter"] in (3002, 3003) for r in recs)' \
    "$HOOKLOG"
run smki --json "${CHECK[@]}" --at 2020-02-01T00:01:00Z --quarantine-hook "exit 7" --log "$W/gw.jsonl" "$W/s3004.hex"
expect_json "a failing hook: still quarantined, the failure reported" \
    "d['messages'][0]['verdict'] == 'quarantined' and d['messages'][0]['notified'] is False and \
     'exited 7' in d['messages'][0]['notify_error']"
check "the JSON log: one line for it, the counters with the failure counted" "$PY" -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 1 and recs[0]["event"] == "gateway_quarantine" and recs[0]["notified"] is False, recs
assert recs[0]["notify_failed_total"] == 1 and recs[0]["notified_total"] == 2 and recs[0]["quarantined_total"] >= 3, recs' \
    "$W/gw.jsonl"
run smki --json "${GW[@]}" quarantine stats
expect_json "the counters: 4 quarantined (with the response), 2 notified, 1 failed" \
    "d['quarantined_total'] == 3 + 1 - 1 + 1 and d['notified_total'] == 2 and d['notify_failed_total'] == 1"
run smki --json "${GW[@]}" quarantine list
expect_json "the failed one is listed as failed" \
    "[q['notification'] for q in d['quarantine'] if q['counter'] == 3004] == ['failed']"
expect_exit 0 "notify: the pending ones once each" smki "${GW[@]}" quarantine notify --quarantine-hook "cat >> '$HOOKLOG'"
check "the hook now has the failed one too (the response held without a hook was released: not raised)" "$PY" -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 3 and len({r["id"] for r in recs}) == 3, recs
assert sorted(r["counter"] for r in recs) == [3002, 3003, 3004], recs' "$HOOKLOG"
expect_exit 0 "notify again: nothing is raised twice" smki "${GW[@]}" quarantine notify --quarantine-hook "cat >> '$HOOKLOG'"
check "still three" test "$(wc -l <"$HOOKLOG")" -eq 3
expect_exit 1 "notify without a hook" smki "${GW[@]}" quarantine notify

# ---- eligibility by User Role per Service Reference Variant ------------------------------------------
printf 'srv,use_case,message_code,user_roles\n1.1.1,ECS01a,0019,EIS\n1.1.1,GCS01a,006B,GIS\n' >"$W/srv.csv"
expect_exit 0 "load the Service Request eligibility table" smki "${GW[@]}" eligibility load --in "$W/srv.csv"
run smki --json "${GW[@]}" eligibility srv
expect_json "the table in force" "d['loaded'] and [(r['srv'], r['message_code'], r['user_roles']) for r in d['rows']] == \
     [('1.1.1', '0019', 'EIS'), ('1.1.1', '006B', 'GIS')]"
for n in 4001 4002; do sign_pre $n "$W/e$n.hex"; done
# One source of truth: the User Roles are the RA's registry's, read at every check.
expect_exit 0 "the RA makes the supplier a Gas Supplier" smki ra id set-roles $SUP --roles gis
run smki --json "${GW[@]}" user list
expect_json "the gateway shows the RA's User Roles" "d['users'][0]['user_roles'] == 'GIS'"
run smki --json "${CHECK[@]}" --at 2020-03-01 "$W/e4001.hex"
expect_json "a Gas Supplier's ECS01a (0019): user.not-eligible, naming the variant" \
    "d['messages'][0]['reason'] == 'user.not-eligible' and '1.1.1 (ECS01a)' in d['messages'][0]['detail']"
expect_exit 0 "as an Import Supplier too" smki ra id set-roles $SUP --roles EIS,GIS
expect_exit 0 "... it passes" smki "${CHECK[@]}" --at 2020-03-01 "$W/e4002.hex"
printf '1.1.1,ECS01a,19,EIS\n' >"$W/bad-srv.csv"
expect_exit 2 "a malformed table is refused, naming the line" smki "${GW[@]}" eligibility load --in "$W/bad-srv.csv"
expect_in "eligibility:1: message_code must be 4 hex digits" "the line is named"
expect_exit 1 "a malformed User Role" smki ra id set-roles $SUP --roles "EIS,9X"
expect_exit 1 "the gateway keeps no User Roles of its own" smki "${GW[@]}" user set-roles --eui $SUP --user-roles GIS
: >"$W/empty.csv"
expect_exit 0 "an empty table removes it" smki "${GW[@]}" eligibility load --in "$W/empty.csv"
run smki --json "${GW[@]}" eligibility srv
expect_json "none loaded" "not d['loaded']"

# ---- the record of checked messages, archived --------------------------------------------------------
run smki --json "${GW[@]}" log list
N_ALL=$("$PY" -c 'import json,sys; print(len(json.loads(sys.argv[1])["records"]))' "$OUT")
check "every check was recorded ($N_ALL)" test "$N_ALL" -ge 14
expect_json "with verdict, reason and kind" \
    "any(r['reason'] == 'future-dated.too-far' for r in d['records']) and \
     any(r['kind'] == 'response' and r['verdict'] == 'quarantined' for r in d['records'])"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/gw.key" 2>/dev/null
openssl pkey -in "$W/gw.key" -pubout -out "$W/gw-pub.pem"
openssl req -new -x509 -key "$W/gw.key" -subj "/CN=gateway" -days 30 -out "$W/gw.pem" 2>/dev/null
run smki --json "${GW[@]}" log archive --key "file:$W/gw.key" --out "$W/jan.archive" --before 2020-02-01
expect_json "archive the checks of January 2020" "d['archived'] > 0"
N_ARCH=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["archived"])' "$OUT")
run smki --json "${GW[@]}" log list
expect_json "they are pruned from the store" "len(d['records']) == $N_ALL - $N_ARCH and \
     all(r['at'] >= 1580515200 for r in d['records'])"
expect_exit 0 "smki verifies the archive" smki "${GW[@]}" log verify --in "$W/jan.archive" --cert "$W/gw.pem"
expect_in "holds $N_ARCH record(s)" "and counts its records"
head -n -1 "$W/jan.archive" >"$W/body"
tail -n 1 "$W/jan.archive" | cut -d' ' -f2 | "$PY" -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' >"$W/sig"
check "openssl verifies it too" openssl dgst -sha256 -verify "$W/gw-pub.pem" -signature "$W/sig" "$W/body"
sed 's/"passed"/"PASSED"/' "$W/jan.archive" >"$W/changed.archive"
expect_exit 2 "a changed archive is refused" smki "${GW[@]}" log verify --in "$W/changed.archive" --cert "$W/gw.pem"
expect_in "does not verify" "the refusal says so"
expect_exit 2 "an existing archive file is not overwritten" \
    smki "${GW[@]}" log archive --key "file:$W/gw.key" --out "$W/jan.archive" --before 2030-01-01
run smki --json "${GW[@]}" log archive --key "file:$W/gw.key" --out "$W/none.archive" --keep-days 92
expect_json "with the default retention nothing is old enough... relative to now: all of 2020 is" \
    "d['archived'] == $N_ALL - $N_ARCH"
expect_exit 1 "--before and --keep-days together" \
    smki "${GW[@]}" log archive --key "file:$W/gw.key" --out "$W/x.archive" --before 2020-01-01 --keep-days 3

finish
