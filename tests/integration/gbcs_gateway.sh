#!/usr/bin/env bash
# The gateway from the outside (smki gbcs gateway, smki file): threshold files signed with
# a token key and a file key and cross-checked with openssl in both directions (CRLF and
# LF); the RTDS supplier pre-commands signed with its published test key pass under the
# Z1 organisation CA at 2020-01-01 and come out MACed; the RTDS command re-MACed equals
# the RTDS file; every refusal by its reason code and exit 2; revocation on a hierarchy
# and CRL made by python3-cryptography (the RTDS OCA key is not published); a threshold
# burst quarantined, then released (the MAC checked by smki gbcs verify) or rejected.
# The Users are the RA's (its registry, its suspensions); every administration action is
# an RA operator's, refused without one or with a key not theirs, and in the audit trail
# that 'smki audit verify' checks.
# Every check prints "ok - ..." or "not ok - ..."; the last line is "N passed, M failed".
#
# Environment (ctest sets it; by hand:
#   SMKI_BIN=build/bin/smki SMKI_SHARED=/work/shared bash tests/integration/gbcs_gateway.sh)
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3
V=$SMKI_SHARED/vectors/gbcs
K=$V/keystore
R=$V/rtds
TIMEOUT=120
SUP=90B3D51F30010000
NO=90B3D51F30020000
METER=00DB1234567890A0

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export SMKI_HOME=$W/home SMKI_PIN=gw-user-1234 SMKI_SO_PIN=gw-so-12345678
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# ---- helpers (python3-cryptography: independent of smki's C code) ------------------------
# z1.der: the Z1 OCA certificate from the certification path of an RTDS CS02b command.
# sign PRE KEY COUNTER ORIGINATOR OUT: set counter and originator, sign the octets after DF
# up to the end of content, append 40 r s (hex text out).
"$PY" - "$R" "$W" <<'PYTHON'
import glob, os, sys
from cryptography import x509
rtds, w = sys.argv[1], sys.argv[2]
f = glob.glob(os.path.join(rtds, "6.15.1_CS02bSupplierBySupplier", "*IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"))[0]
b = bytes.fromhex("".join(open(f).read().split()))
i = 0
while True:
    i = b.find(b"\x30\x82", i)
    if i < 0:
        sys.exit("no Z1 certificate found")
    n = int.from_bytes(b[i + 2:i + 4], "big")
    try:
        c = x509.load_der_x509_certificate(b[i:i + 4 + n])
        if "CN=Z1" in c.subject.rfc4514_string():
            open(os.path.join(w, "z1.der"), "wb").write(b[i:i + 4 + n])
            break
    except Exception:
        pass
    i += 1
PYTHON

cat >"$W/sign.py" <<'PYTHON'
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
pre, keyf, counter, orig, out = sys.argv[1:6]
b = bytearray(bytes.fromhex("".join(open(pre).read().split())))
assert b[0] == 0xDF
b[3:11] = int(counter).to_bytes(8, "big")
b[12:20] = bytes.fromhex(orig)
# The pre-command ends with the content, or with a lone 00 some tools append.
def end_of_content(b):
    i = 1 + 10 + 9 + 9
    i += 1 if b[i] == 0 else 13
    for _ in range(2):
        l = b[i]; i += 1
        if l & 0x80:
            n = l & 0x7F; l = int.from_bytes(b[i:i + n], "big"); i += n
        i += l
    return i
e = end_of_content(b)
key = serialization.load_pem_private_key(open(keyf, "rb").read(), None)
r, s = decode_dss_signature(key.sign(bytes(b[1:e]), ec.ECDSA(hashes.SHA256())))
open(out, "w").write((bytes(b[:e]) + b"\x40" + r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex().upper() + "\n")
PYTHON
sign() { "$PY" "$W/sign.py" "$@"; }

PRE_BLOCK=$R/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX
CMD_BLOCK=$R/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_COMMAND_GBCS.HEX
AT=2020-01-01
GW=(gbcs gateway)
CHECK=(gbcs gateway check --oca "$W/z1.der" --no-crl --at "$AT")

# ---- smki file sign / verify, cross-checked with openssl ------------------------------------
printf 'user,message_code,window_seconds,max_count\r\n# GITTESTSUPPLIER\r\n%s,0019,3600,3\r\n%s,*,86400,1000\r\n' \
    $SUP $SUP >"$W/thr.csv"
tr -d '\r' <"$W/thr.csv" >"$W/thr-lf.csv"
expect_exit 0 "file sign with a file: key" smki file sign --key "file:$K/90b3d51f30010000-ds.key" --in "$W/thr.csv" --out "$W/thr.sig"
expect_exit 0 "file verify with the certificate" smki file verify --cert "$K/90b3d51f30010000-ds.pem" --in "$W/thr.csv" --sig "$W/thr.sig"
expect_exit 0 "the signature holds for the LF form too" smki file verify --cert "$K/90b3d51f30010000-ds.pem" --in "$W/thr-lf.csv" --sig "$W/thr.sig"
openssl x509 -in "$K/90b3d51f30010000-ds.pem" -pubkey -noout >"$W/sup.pub"
check "openssl verifies smki's signature over the canonical (LF) bytes" \
    openssl dgst -sha256 -verify "$W/sup.pub" -signature "$W/thr.sig" "$W/thr-lf.csv"
openssl dgst -sha256 -sign "$K/90b3d51f30010000-ds.key" -out "$W/thr.ossl.sig" "$W/thr-lf.csv"
expect_exit 0 "smki verifies openssl's signature, over the CRLF file as well" smki file verify --pub "$W/sup.pub" --in "$W/thr.csv" --sig "$W/thr.ossl.sig"
sed 's/,3$/,4/; s/,3\r$/,4\r/' "$W/thr.csv" >"$W/thr-changed.csv"
expect_exit 2 "a changed rule does not verify" smki file verify --cert "$K/90b3d51f30010000-ds.pem" --in "$W/thr-changed.csv" --sig "$W/thr.sig"
expect_in "NOT verified" "it says so"
expect_exit 2 "another key does not verify" smki file verify --cert "$K/90b3d51f30020000-ds.pem" --in "$W/thr.csv" --sig "$W/thr.sig"
expect_exit 0 "file sign --help says what canonical means" smki file sign --help
expect_in "CRLF" "the help names CRLF"
# A token key, by label.
run smki hsm init
run smki key generate --label thr-ds --usage ds
expect_exit 0 "file sign with a token key (label)" smki file sign --key thr-ds --in "$W/thr.csv" --out "$W/thr.tok.sig"
run smki key pub thr-ds --out "$W/tok.pub"
check "openssl verifies the token key's signature" openssl dgst -sha256 -verify "$W/tok.pub" -signature "$W/thr.tok.sig" "$W/thr-lf.csv"
expect_exit 1 "file verify needs one of --cert or --pub" smki file verify --in "$W/thr.csv" --sig "$W/thr.sig"

# ---- the RA: its Users, its operator ---------------------------------------------------------------
# ra_users HOME: the RA of HOME (lib.sh's ra_test_participant: operator 'tester', the Party
# GITTEST with the supplier's User ID, EIS) and the network operator's User ID (ENO).
ra_users() {
    ra_test_participant "$1"
    expect_exit 0 "RA: the network operator's User ID" env SMKI_HOME="$1" "$SMKI_BIN" ra id allocate \
        --party GITTEST --roles ENO --eui $NO
}
ra_users "$SMKI_HOME"
NOOP=(env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY "$SMKI_BIN")
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/mallory.pem" 2>/dev/null

# ---- registry ------------------------------------------------------------------------------------
expect_exit 1 "user add without an operator is refused" "${NOOP[@]}" "${GW[@]}" user add --eui $SUP --role supplier --cert "$K/90b3d51f30010000-ds.pem"
expect_in "--operator NAME" "the refusal names the missing operator"
expect_exit 2 "user add with a key that is not the operator's is refused" smki "${GW[@]}" user add --eui $SUP --role supplier \
    --cert "$K/90b3d51f30010000-ds.pem" --operator-key "file:$W/mallory.pem"
expect_in "not operator tester's registered key" "the refusal says whose key it is not"
expect_exit 2 "user add refuses an ID the RA does not know" smki "${GW[@]}" user add --eui 90-B3-D5-1F-30-03-00-00 --role supplier --cert "$K/90b3d51f30010000-ds.pem"
expect_in "is not a User ID of the RA's registry" "it says the RA does not know the ID"
expect_exit 2 "user add refuses a role the RA's User Roles do not allow" smki "${GW[@]}" user add --eui $NO --role supplier --cert "$K/90b3d51f30020000-ds.pem"
expect_exit 0 "user add (RTDS supplier)" smki "${GW[@]}" user add --eui 90-B3-D5-1F-30-01-00-00 --role supplier --cert "$K/90b3d51f30010000-ds.pem"
expect_exit 2 "user add refuses a certificate of another User ID" smki "${GW[@]}" user add --eui $NO --role networkOperator --cert "$K/90b3d51f30010000-ds.pem"
expect_exit 1 "device add without an operator is refused" "${NOOP[@]}" "${GW[@]}" device add --eui $METER --status commissioned
expect_exit 0 "device add (RTDS electricity meter, its KA certificate)" smki "${GW[@]}" device add --eui $METER --status commissioned --ka-cert "$K/00db1234567890a0-ka.pem"
expect_exit 1 "device add refuses an unknown status" smki "${GW[@]}" device add --eui 00DB1234567890A1 --status broken
run smki --json "${GW[@]}" user list
expect_json "user list --json: the RA's word beside the certificate" 'd["users"][0]["eui64"] == "90-B3-D5-1F-30-01-00-00" and d["users"][0]["role"] == "02" and d["users"][0]["party"] == "GITTEST" and d["users"][0]["user_roles"] == "EIS"'
run smki --json "${GW[@]}" eligibility list
expect_json "the default eligibility lets a supplier send ECS01a" 'd["default"] and any(r["role"] == "02" and r["message_code"] == "0019" for r in d["rows"])'
expect_exit 2 "thresholds load refuses a file signed by another key" smki "${GW[@]}" thresholds load --eui $SUP --in "$W/thr.csv" --sig "$W/thr.tok.sig"
expect_exit 1 "thresholds load without an operator is refused" "${NOOP[@]}" "${GW[@]}" thresholds load --eui $SUP --in "$W/thr.csv" --sig "$W/thr.sig"
expect_exit 0 "thresholds load with the user's signature" smki "${GW[@]}" thresholds load --eui $SUP --in "$W/thr.csv" --sig "$W/thr.sig"
run smki --json audit list
expect_json "each administration action is an entry signed by its operator" '[e["action"] for e in d["entries"] if e["action"].startswith("gateway.")] == ["gateway.user-add", "gateway.device-add", "gateway.thresholds-load"] and all(e["operator"] == "tester" for e in d["entries"] if e["action"].startswith("gateway."))'
openssl pkey -in "$W/ra-checkpoint.pem" -pubout -out "$W/ra-checkpoint.pub" 2>/dev/null
expect_exit 0 "audit verify covers them" smki audit verify --checkpoint-pub "$W/ra-checkpoint.pub"
run smki --json "${GW[@]}" thresholds show --eui $SUP
expect_json "thresholds show" 'len(d["rules"]) == 2 and d["rules"][0]["max_count"] == 3'

# ---- the RTDS pre-commands pass and come out MACed ------------------------------------------------
ACB=file:$K/90b3d51f30000002-ka.key
mkdir -p "$W/signed" "$W/out"
n=0
for f in "$R"/1.1.1_ECS01a/*PRECOMMAND*; do
    n=$((n + 1))
    run smki gbcs sign --key "file:$K/90b3d51f30010000-ds.key" --cert "$K/90b3d51f30010000-ds.pem" --in "$f" --out "$W/signed/$(basename "$f")"
done
# In counter order (the RTDS files share some counters: keep the first of each).
mapfile -t ordered < <(for f in "$W"/signed/*; do echo "$(head -c 22 "$f" | tail -c 16) $f"; done | sort -u -k1,1 | awk '{print $2}')
expect_exit 2 "the ECS01a burst: 3 pass, the 4th in the hour is quarantined (exit 2)" \
    smki --json "${CHECK[@]}" --acb-key "$ACB" --out "$W/out" "${ordered[@]:0:4}"
expect_json "three passed with commands, one quarantined" \
    '[m["verdict"] for m in d["messages"]] == ["passed"] * 3 + ["quarantined"] and all("command" in m for m in d["messages"][:3]) and d["messages"][3]["reason"] == "threshold.exceeded"'
for c in "$W"/out/*.command.hex; do
    expect_exit 0 "smki gbcs verify accepts the gateway's command $(basename "$c")" smki gbcs verify --trust "$K" --acb-key "$ACB" --at "$AT" "$c"
done
run smki --json "${GW[@]}" quarantine list
expect_json "the quarantine holds it" 'len(d["quarantine"]) == 1 and d["quarantine"][0]["state"] == "held" and d["quarantine"][0]["message_code"] == "0019"'
QID=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["quarantine"][0]["id"])')
expect_exit 0 "quarantine show" smki "${GW[@]}" quarantine show "$QID"
expect_in "threshold.exceeded" "show gives the reason"
: >"$W/taken.hex"
expect_exit 2 "release to a file that exists is refused before anything is released" \
    smki "${GW[@]}" quarantine release "$QID" --acb-key "$ACB" --out "$W/taken.hex"
expect_in "exists; --force replaces it" "it says how to replace it"
run smki --json "${GW[@]}" quarantine show "$QID"
expect_json "still held" 'd["quarantine"][0]["state"] == "held"'
expect_exit 1 "release without an operator is refused" "${NOOP[@]}" "${GW[@]}" quarantine release "$QID" --acb-key "$ACB" --out "$W/released.hex"
check "and writes nothing" test ! -e "$W/released.hex"
expect_exit 0 "quarantine release MACs it" smki "${GW[@]}" quarantine release "$QID" --acb-key "$ACB" --out "$W/released.hex"
expect_exit 0 "the released command verifies" smki gbcs verify --trust "$K" --acb-key "$ACB" --at "$AT" "$W/released.hex"
expect_exit 2 "a released message cannot be released again" smki "${GW[@]}" quarantine release "$QID" --acb-key "$ACB" --out "$W/again.hex"
expect_exit 2 "replayed counter" smki --json "${CHECK[@]}" "${ordered[0]}"
expect_json "reason counter.replay" 'd["messages"][0]["reason"] == "counter.replay"'

# The RTDS command itself, re-MACed in a fresh home: the same bytes as the RTDS file.
export SMKI_HOME=$W/home2
mkdir -p "$SMKI_HOME" # only init commands make a home
ra_users "$SMKI_HOME"
run smki "${GW[@]}" user add --eui $SUP --role supplier --cert "$K/90b3d51f30010000-ds.pem"
run smki "${GW[@]}" device add --eui $METER --status commissioned --ka-cert "$K/00db1234567890a0-ka.pem"
expect_exit 0 "the RTDS ECS01a command passes" smki "${CHECK[@]}" --acb-key "$ACB" --out "$W/remac.hex" "$CMD_BLOCK"
check "its new MAC equals the RTDS command byte for byte" cmp <(tr -d ' \r\n' <"$CMD_BLOCK") <(tr -d '\n' <"$W/remac.hex")

# ---- refusals, each with its reason code ------------------------------------------------------------
reason() { # DESC REASON CHECK-ARGS...
    local desc=$1 want=$2
    shift 2
    run smki --json "$@"
    if [[ $RC == 2 ]]; then ok "$desc (exit 2)"; else not_ok "$desc: exit $RC, wanted 2"; diag; fi
    expect_json "$desc: reason $want" "d['messages'][0]['reason'] == '$want'"
}
sign "$PRE_BLOCK" "$K/90b3d51f30020000-ds.key" 2000 $NO "$W/no.hex"
reason "unknown user (a User ID of the RA without a certificate here)" user.unknown "${CHECK[@]}" "$W/no.hex"
sign "$PRE_BLOCK" "$K/90b3d51f30020000-ds.key" 2000 90B3D51F30030000 "$W/stranger.hex"
reason "unknown user (an ID the RA does not know)" user.unknown "${CHECK[@]}" "$W/stranger.hex"
run smki "${GW[@]}" user add --eui $NO --role networkOperator --cert "$K/90b3d51f30020000-ds.pem"
reason "a network operator may not send ECS01a" user.not-eligible "${CHECK[@]}" "$W/no.hex"
sign "$PRE_BLOCK" "$K/90b3d51f30020000-ds.key" 2001 $SUP "$W/wrong-signer.hex"
reason "wrong signer (the network operator's key for the supplier)" signature.invalid "${CHECK[@]}" "$W/wrong-signer.hex"
sign "$PRE_BLOCK" "$K/90b3d51f30010000-ds.key" 2002 $SUP "$W/s2002.hex"
reason "expired signer (at 2030)" cert.expired gbcs gateway check --oca "$W/z1.der" --no-crl --at 2030-01-01 "$W/s2002.hex"
# Suspension is the RA's (the gateway keeps none): of the User ID, then of its Party.
run smki ra id suspend $SUP --reason "key compromise reported"
reason "a User ID suspended in the RA" user.suspended "${CHECK[@]}" "$W/s2002.hex"
expect_json "the RA's reason is given" "'by the RA' in d['messages'][0]['detail'] and 'key compromise reported' in d['messages'][0]['detail']"
run smki ra id resume $SUP
run smki ra party suspend GITTEST --reason "contract ended"
reason "a Party suspended in the RA" user.suspended "${CHECK[@]}" "$W/s2002.hex"
run smki ra party resume GITTEST
expect_exit 1 "device set-status without an operator is refused" "${NOOP[@]}" "${GW[@]}" device set-status --eui $METER --status decommissioned
expect_exit 0 "the message still passes: nothing changed" smki "${CHECK[@]}" "$W/s2002.hex"
sign "$PRE_BLOCK" "$K/90b3d51f30010000-ds.key" 2003 $SUP "$W/s2003.hex"
run smki "${GW[@]}" device set-status --eui $METER --status decommissioned
reason "decommissioned device" device.status "${CHECK[@]}" "$W/s2003.hex"
run smki "${GW[@]}" device set-status --eui $METER --status commissioned
reason "unsigned pre-command" structure.unsigned "${CHECK[@]}" "$PRE_BLOCK"
expect_exit 0 "after all that, the message passes" smki "${CHECK[@]}" "$W/s2003.hex"
expect_exit 1 "check needs --crl or --no-crl" smki "${GW[@]}" check --oca "$W/z1.der" "$W/s2003.hex"
expect_exit 1 "check needs --trust or --oca" smki "${GW[@]}" check --no-crl "$W/s2003.hex"

# ---- revocation, wrong role: a hierarchy and CRL made by python3-cryptography ----------------------
mkdir -p "$W/pki/trust"
"$PY" - "$W/pki" <<'PYTHON'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
d = sys.argv[1]
t0, t1 = datetime.datetime(2019, 1, 1), datetime.datetime(2029, 1, 1)
def key(name):
    k = ec.generate_private_key(ec.SECP256R1())
    open(f"{d}/{name}.key", "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return k
def ku(ca):
    return x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)
def cert(subject, k, issuer, ik, serial, ca):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(k.public_key())
         .serial_number(serial).not_valid_before(t0).not_valid_after(t1).add_extension(ku(ca), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ik.public_key()), critical=False)
         # the test environment's policy (reference §4): the gateway refuses another environment's
         .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
             x509.ObjectIdentifier("1.2.826.0.1.8641679.1.2.1.4"), None)]), critical=True))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return b.sign(ik, hashes.SHA256())
def org(role, eui):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                      # the value is the BIT STRING content: unused-bits octet, then the EUI-64
                      x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, bytes.fromhex("00" + eui), _type=_ASN1Type.BitString)])
rk, ok_ = key("root"), key("oca")
rn = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "00"), x509.NameAttribute(NameOID.COMMON_NAME, "TROOT")])
on = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "07"), x509.NameAttribute(NameOID.COMMON_NAME, "TOCA")])
root = cert(rn, rk, rn, rk, 1, True)
oca = cert(on, ok_, rn, rk, 2, True)
open(f"{d}/trust/root.pem", "wb").write(root.public_bytes(serialization.Encoding.PEM))
open(f"{d}/trust/oca.pem", "wb").write(oca.public_bytes(serialization.Encoding.PEM))
for name, role, eui, serial in (("a", "02", "90B3D51F3F000001", 100), ("b", "02", "90B3D51F3F000002", 101),
                                ("c", "03", "90B3D51F3F000003", 102)):
    c = cert(org(role, eui), key(name), on, ok_, serial, False)
    open(f"{d}/{name}.pem", "wb").write(c.public_bytes(serialization.Encoding.PEM))
now = datetime.datetime(2020, 1, 1)
crl = (x509.CertificateRevocationListBuilder().issuer_name(on).last_update(now - datetime.timedelta(days=1))
       .next_update(now + datetime.timedelta(days=7))
       .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(100).revocation_date(now - datetime.timedelta(days=1)).build())
       .sign(ok_, hashes.SHA256()))
open(f"{d}/oca.crl", "wb").write(crl.public_bytes(serialization.Encoding.DER))
open(f"{d}/oca.crl.pem", "wb").write(crl.public_bytes(serialization.Encoding.PEM))
rogue = ec.generate_private_key(ec.SECP256R1())
bad = (x509.CertificateRevocationListBuilder().issuer_name(on).last_update(now).next_update(now + datetime.timedelta(days=7))
       .sign(rogue, hashes.SHA256()))
open(f"{d}/rogue.crl", "wb").write(bad.public_bytes(serialization.Encoding.DER))
PYTHON
P=$W/pki
check "openssl agrees that A is revoked" bash -c "! openssl verify -crl_check -attime 1577836800 -CAfile <(cat $P/trust/root.pem $P/trust/oca.pem) -CRLfile $P/oca.crl.pem $P/a.pem"
export SMKI_HOME=$W/home3
mkdir -p "$SMKI_HOME"
ra_users "$SMKI_HOME"
for u in a:90B3D51F3F000001:supplier b:90B3D51F3F000002:supplier c:90B3D51F3F000003:supplier; do
    IFS=: read -r n id role <<<"$u"
    run smki ra id allocate --party GITTEST --roles EIS --eui "$id"
    run smki "${GW[@]}" user add --eui "$id" --role "$role" --cert "$P/$n.pem"
done
run smki "${GW[@]}" user add --eui $SUP --role supplier --cert "$K/90b3d51f30010000-ds.pem"
run smki "${GW[@]}" device add --eui $METER --status commissioned
PCHECK=(gbcs gateway check --trust "$P/trust" --crl "$P/oca.crl" --at "$AT")
sign "$PRE_BLOCK" "$P/a.key" 1 90B3D51F3F000001 "$W/a.hex"
sign "$PRE_BLOCK" "$P/b.key" 1 90B3D51F3F000002 "$W/b.hex"
sign "$PRE_BLOCK" "$P/c.key" 1 90B3D51F3F000003 "$W/c.hex"
reason "revoked signer" cert.revoked "${PCHECK[@]}" "$W/a.hex"
expect_exit 0 "its unrevoked sibling passes (DER CRL)" smki "${PCHECK[@]}" "$W/b.hex"
reason "revoked signer (PEM CRL)" cert.revoked gbcs gateway check --trust "$P/trust" --crl "$P/oca.crl.pem" --at "$AT" "$W/a.hex"
reason "a network operator's certificate for a user registered as supplier" cert.role "${PCHECK[@]}" "$W/c.hex"
reason "the RTDS supplier does not chain to this hierarchy" cert.untrusted "${PCHECK[@]}" "$W/s2002.hex"
expect_exit 2 "a CRL not signed by its issuer is refused" smki "${GW[@]}" check --trust "$P/trust" --crl "$P/rogue.crl" --at "$AT" "$W/b.hex"
expect_in "does not verify under its issuer's key" "it says why"

# ---- quarantine reject --------------------------------------------------------------------------------
export SMKI_HOME=$W/home4
mkdir -p "$SMKI_HOME"
ra_users "$SMKI_HOME"
run smki "${GW[@]}" user add --eui $SUP --role supplier --cert "$K/90b3d51f30010000-ds.pem"
run smki "${GW[@]}" device add --eui $METER --status commissioned
printf '%s,*,60,1\n' $SUP >"$W/one.csv"
run smki file sign --key "file:$K/90b3d51f30010000-ds.key" --in "$W/one.csv" --out "$W/one.sig"
expect_exit 0 "thresholds: one message a minute" smki "${GW[@]}" thresholds load --eui $SUP --in "$W/one.csv" --sig "$W/one.sig"
sign "$PRE_BLOCK" "$K/90b3d51f30010000-ds.key" 10 $SUP "$W/q10.hex"
sign "$PRE_BLOCK" "$K/90b3d51f30010000-ds.key" 11 $SUP "$W/q11.hex"
expect_exit 0 "the first passes" smki "${CHECK[@]}" "$W/q10.hex"
reason "the second in the minute is quarantined" threshold.exceeded "${CHECK[@]}" "$W/q11.hex"
expect_json "with its quarantine id" 'd["messages"][0]["verdict"] == "quarantined" and d["messages"][0]["quarantine_id"] == 1'
expect_exit 1 "reject needs a reason" smki "${GW[@]}" quarantine reject 1
expect_exit 1 "reject without an operator is refused" "${NOOP[@]}" "${GW[@]}" quarantine reject 1 --reason "not expected"
expect_exit 2 "reject with a key that is not the operator's is refused" smki "${GW[@]}" quarantine reject 1 --reason "not expected" --operator-key "file:$W/mallory.pem"
run smki --json "${GW[@]}" quarantine show 1
expect_json "still held after the refusals" 'd["quarantine"][0]["state"] == "held"'
expect_exit 0 "reject with a reason" smki "${GW[@]}" quarantine reject 1 --reason "not expected from this user"
run smki --json audit list
expect_json "the rejection is in the audit trail, with its reason" 'any(e["action"] == "gateway.quarantine-reject" and "not expected from this user" in e["detail"] and e["operator"] == "tester" for e in d["entries"])'
openssl pkey -in "$W/ra-checkpoint.pem" -pubout -out "$W/ra-checkpoint.pub" 2>/dev/null # this home's
expect_exit 0 "audit verify covers it" smki audit verify --checkpoint-pub "$W/ra-checkpoint.pub"
run smki --json "${GW[@]}" quarantine show 1
expect_json "the record keeps the reason" 'd["quarantine"][0]["state"] == "rejected" and d["quarantine"][0]["note"] == "not expected from this user"'
expect_exit 2 "an unknown quarantine id" smki "${GW[@]}" quarantine show 42

finish
