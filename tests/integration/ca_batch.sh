#!/usr/bin/env bash
# smki ca batch from the outside: device CSRs made by tests/helpers/make_device_csrs
# (shaped like the real one in vectors/gbcs/csr/) issued in bulk, every certificate
# linted by `smki lint`, verified by openssl against the test chain and parsed by
# python3-cryptography; bad CSRs (garbage, bad signature, wrong curve, both usages,
# not a device) refused by name while the rest proceed; re-runs that give back the
# same certificates; a bundle file; name clashes; and a crash test: a big batch
# killed with SIGKILL at random moments, after each kill every file naming a stored
# certificate and none half written, then a re-run to the end and exactly one
# certificate per CSR. Every check prints "ok - ..." or "not ok - ...".
#
# Environment (ctest sets it; by hand:
#   SMKI_BIN=/tmp/b/bin/smki SMKI_BUILD=/tmp/b SMKI_SHARED=/work/shared bash tests/integration/ca_batch.sh):
#   SMKI_BIN    the smki binary;  SMKI_BUILD  the build folder (bin/make_device_csrs)
#   CA_BATCH_CRASH_CSRS  CSRs in the crash test (default 3000); CA_BATCH_KILLS kills (default 6)
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_BUILD:?set SMKI_BUILD to the build folder}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3 # Debian's: the python3 on PATH may lack cryptography
GEN=$SMKI_BUILD/bin/make_device_csrs
REAL_CSR=$SMKI_SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der
TIMEOUT=300
CRASH_N=${CA_BATCH_CRASH_CSRS:-3000}
KILLS=${CA_BATCH_KILLS:-6}

unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_DEBUG SOFTHSM2_CONF SMKI_SHIM_FAIL
export SMKI_PIN=batch-user-1234 SMKI_SO_PIN=batch-so-12345678

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-ca-batch.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
H=$ROOT/home
W=$ROOT/work
mkdir -p "$W" "$H"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
hsmki() { SMKI_HOME=$H smki "$@"; }
TCA=$H/ca/test

# store_check HOME OUT MODE: the store's device certificates (ca list --json) against
# the files in OUT. MODE "files-in-store": every *.pem in OUT is a whole certificate
# whose serial the store holds, for the EUI-64 and usage its name says, and no
# temporary is left. MODE "exact N": also exactly one certificate per EUI-64 and
# usage, N of them, each with its file.
store_check() {
    local home=$1 out=$2 mode=$3 want=${4:-0}
    SMKI_HOME=$home "$SMKI_BIN" --json ca list --env test --profile device >"$W/list.json" || return 1
    "$PY" - "$W/list.json" "$out" "$mode" "$want" <<'PY'
import collections, glob, json, os, re, sys
from cryptography import x509
listing, out, mode, want = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], int(sys.argv[4])
store = {c["serial"]: c for c in listing["certificates"]}
per = collections.Counter((c["eui64"], c["usage"]) for c in store.values())
bad = []
names = sorted(os.listdir(out)) if os.path.isdir(out) else []
# A kill between a temporary's creation and its rename leaves it (hidden, never a
# .pem name); the next run sweeps it away.
temps = [n for n in names if n.startswith(".")]
if temps and mode == "exact": bad.append(f"temporaries left: {temps[:3]}")
files = {}
for n in names:
    if not n.endswith(".pem"): continue
    m = re.fullmatch(r"([0-9a-f]{16})-(ds|ka)(?:-([0-9a-f]{32}))?\.pem", n)
    if not m: bad.append(f"unexpected name {n}"); continue
    try:
        c = x509.load_pem_x509_certificate(open(os.path.join(out, n), "rb").read())
    except Exception as e:
        bad.append(f"{n} is not a whole certificate: {e}"); continue
    serial = format(c.serial_number, "032x")
    s = store.get(serial)
    if s is None: bad.append(f"{n} names serial {serial}, which the store does not hold"); continue
    eui = "-".join(m.group(1)[i:i+2] for i in range(0, 16, 2)).upper()
    if s["eui64"] != eui or s["usage"] != m.group(2).upper(): bad.append(f"{n} holds {s['eui64']} {s['usage']}")
    if m.group(3) and m.group(3) != serial: bad.append(f"{n} holds serial {serial}")
    files[serial] = n
if mode == "exact":
    twice = [k for k, v in per.items() if v != 1]
    if twice: bad.append(f"{len(twice)} EUI-64/usage pairs with more than one certificate, e.g. {twice[:2]}")
    if len(store) != want: bad.append(f"{len(store)} certificates in the store, wanted {want}")
    missing = [s for s in store if s not in files]
    if missing: bad.append(f"{len(missing)} stored certificates without a file")
print(f"{len(store)} in the store, {len(files)} files")
for b in bad[:10]: print(b)
sys.exit(1 if bad else 0)
PY
}

# ---- Tools and help ---------------------------------------------------------------------------------
check "smki is executable: $SMKI_BIN" test -x "$SMKI_BIN"
check "the CSR generator is built: $GEN" test -x "$GEN"
check "$PY imports cryptography (python3-cryptography)" "$PY" -c 'import cryptography'
expect_exit 0 "smki ca batch --help" smki ca batch --help
expect_in "Usage: smki ca batch" "the help shows the usage"
expect_in "Resumable" "the help explains resuming"
expect_exit 0 "smki ca --help" smki ca --help
expect_in "batch" "smki ca --help lists batch"

# ---- CSRs ----------------------------------------------------------------------------------------------
# The generator's CSRs have the real CSR's shape: the same extensions, critical, in
# the same order, and the same SAN up to the EUI-64.
check "make 40 DS and 40 KA device CSRs (PEM)" \
    "$GEN" --out "$W/good" --count 40 --start 00-DB-12-34-00-00-00-00 --usage both
check "make 10 DER device CSRs" "$GEN" --out "$W/good" --count 10 --start 00-DB-12-34-00-00-01-00 --der
shape() { openssl asn1parse -inform "$1" -in "$2" | sed -n 's/.*\(OBJECT\|BOOLEAN\) *:\(.*\)/\2/p' | tr '\n' ' '; }
real_shape=$(shape DER "$REAL_CSR")
check "a generated CSR has the real CSR's objects and critical flags: $real_shape" \
    test "$(shape PEM "$W/good/00db123400000000-ds.csr")" = "$real_shape"
SAN_HEX=3029A02706082B06010505070804A01B3019060D2A863A0001848FB90F010202010408
check "the SAN is the real CSR's shape, hwSerialNum = the EUI-64" \
    bash -c "openssl asn1parse -inform PEM -in '$W/good/00db123400000007-ds.csr' | grep -q '${SAN_HEX}00DB123400000007'"

mkdir -p "$W/mixed"
cp "$W/good"/* "$W/mixed/"
"$GEN" --out "$W/badgen" --count 1 --start 00-DB-99-00-00-00-00-01 --kind bad-signature
"$GEN" --out "$W/badgen" --count 1 --start 00-DB-99-00-00-00-00-02 --kind wrong-curve
"$GEN" --out "$W/badgen" --count 1 --start 00-DB-99-00-00-00-00-03 --kind both-usages
"$GEN" --out "$W/badgen" --count 1 --start 00-DB-99-00-00-00-00-04 --kind no-device
cp "$W/badgen/00db990000000001-ds.csr" "$W/mixed/bad-signature.csr"
cp "$W/badgen/00db990000000002-ds.csr" "$W/mixed/wrong-curve.csr"
cp "$W/badgen/00db990000000003-ds.csr" "$W/mixed/both-usages.csr"
cp "$W/badgen/00db990000000004-ds.csr" "$W/mixed/not-a-device.csr"
head -c 300 /dev/urandom >"$W/mixed/garbage.csr"
printf 'not a CSR\n' >"$W/mixed/readme.txt"
echo hidden >"$W/mixed/.hidden"
mkdir -p "$W/mixed/subfolder"
GOOD=90

# ---- Refusals before anything is issued --------------------------------------------------------------
expect_exit 1 "batch without --out is a usage error" hsmki ca batch --env test --in "$W/good"
expect_in "--env, --in and --out are required" "and says what is missing"
expect_exit 1 "--threads 0 is a usage error" hsmki ca batch --env test --in "$W/good" --out "$W/x" --threads 0
expect_in "--threads is a whole number from 1 to 64, not 0" "the refusal names the bounds"
expect_exit 1 "--threads 65 is a usage error" hsmki ca batch --env test --in "$W/good" --out "$W/x" --threads=65
expect_exit 1 "--group that is not a number is a usage error" hsmki ca batch --env test --in "$W/good" --out "$W/x" \
    --group 10k
expect_in "--group is a whole number from 1 to 100000, not '10k'" "the refusal names the text"
expect_exit 1 "--threads given twice is a usage error" hsmki ca batch --env test --in "$W/good" --out "$W/x" \
    --threads 1 --threads 2
expect_in "--threads is given twice" "the refusal names it"
check "no output folder made by the refusals" test ! -e "$W/x"
expect_exit 2 "batch before ca init is refused" hsmki ca batch --env test --in "$W/good" --out "$W/early"
expect_in "run 'smki ca init --env test' first" "the refusal says what to do"
check "no store made by the refusal" test ! -e "$H/store/data.mdb"
check "no output folder made by the refusal" test ! -e "$W/early"

expect_exit 0 "ca init --env test" hsmki ca init --env test

# ---- The RA's gate -----------------------------------------------------------------------------------------
# Test certificates go only to registered Testing Participants: a batch in test names
# the Party (--party) and the operator who takes it (an RA action, audited).
expect_exit 2 "a test batch without --party is refused" hsmki ca batch --env test --in "$W/good" --out "$W/o-noparty"
expect_in "give --party SIGNIFIER" "the refusal says what to give"
expect_in "Testing Participants" "and who may have test certificates"
check "nothing written for it" test ! -e "$W/o-noparty"
ra_test_participant "$H"
expect_exit 1 "a test batch without --operator is a usage error" env -u SMKI_OPERATOR -u SMKI_OPERATOR_KEY \
    SMKI_HOME="$H" "$SMKI_BIN" ca batch --party GITTEST --env test --in "$W/good" --out "$W/o-noop"
expect_in "--operator NAME" "the refusal names the missing operator"
check "nothing written without an operator" test ! -e "$W/o-noop"
expect_exit 2 "an unregistered Party is refused" \
    hsmki ca batch --party NOSUCH --env test --in "$W/good" --out "$W/o-nosuch"
expect_in "NOSUCH" "the refusal names the Party"
expect_exit 0 "RA: a Party that is not a Testing Participant" hsmki ra party add NOTTP
expect_exit 0 "RA: ... authorised for device certificates in test" \
    hsmki ra subscriber authorise --party NOTTP --type device --env test
expect_exit 2 "a Party that is not a Testing Participant gets no test certificate" \
    hsmki ca batch --party NOTTP --env test --in "$W/good" --out "$W/o-nottp"
expect_in "is not a Testing Participant" "the refusal says why"
check "nothing written for it" test ! -e "$W/o-nottp"
expect_exit 0 "RA: a Testing Participant with its agreement, not authorised for devices" \
    hsmki ra party add TPNOSUB --testing-participant --agreement-signed
expect_exit 2 "a Party not authorised for device certificates is refused" \
    hsmki ca batch --party TPNOSUB --env test --in "$W/good" --out "$W/o-nosub"
expect_in "not an Authorised Subscriber for device" "the refusal names the missing authorisation"
expect_exit 0 "RA: a Testing Participant TPSUSP" \
    hsmki ra party add TPSUSP --testing-participant --agreement-signed
expect_exit 0 "RA: TPSUSP authorised for devices" hsmki ra subscriber authorise --party TPSUSP --type device --env test
expect_exit 0 "RA: TPSUSP suspended" hsmki ra party suspend TPSUSP --reason "audit finding"
expect_exit 2 "a suspended Party is refused" hsmki ca batch --party TPSUSP --env test --in "$W/good" --out "$W/o-susp"
expect_in "suspended" "the refusal says so"
expect_exit 0 "list the device certificates" hsmki --json ca list --env test --profile device
expect_json "no certificate issued by any refused batch" "d['count'] == 0"
expect_exit 2 "an --in that does not exist is refused" hsmki ca batch --party GITTEST --env test --in "$W/nothing" --out "$W/o0"
expect_exit 1 "--out the same as --in is refused" hsmki ca batch --party GITTEST --env test --in "$W/good" --out "$W/good/"
expect_in "is the input folder" "the refusal says why"
expect_exit 2 "an environment without a hierarchy is refused" hsmki ca batch --party GITTEST --env production --in "$W/good" --out "$W/o1"
check "nothing written for it" test ! -e "$W/o1/00db123400000000-ds.pem"

# ---- A batch with bad CSRs among good ones ---------------------------------------------------------------
expect_exit 2 "a batch with 6 bad inputs among $GOOD good CSRs exits 2" \
    hsmki --json ca batch --party GITTEST --env test --in "$W/mixed" --out "$W/out" --threads 2 --group 16
expect_json "issued $GOOD, refused 6, none already issued" \
    "not d['ok'] and d['issued'] == $GOOD and d['refused'] == 6 and d['already_issued'] == 0 \
     and d['total'] == $((GOOD + 6))"
for bad in bad-signature wrong-curve both-usages not-a-device garbage readme; do
    expect_json "$bad is refused by name with a reason" \
        "any(i['input'].endswith('/$bad' + ('.txt' if '$bad' == 'readme' else '.csr'))
             and i['outcome'] == 'refused' and i['reason'] for i in d['items'])"
done
expect_json "the bad signature is refused as a failed verification" \
    "[i['code'] for i in d['items'] if i['input'].endswith('bad-signature.csr')] == ['verify']"
expect_json "the wrong curve's reason names P-256" \
    "'P-256' in [i['reason'] for i in d['items'] if i['input'].endswith('wrong-curve.csr')][0]"
expect_json "both usages' reason says a key serves one" \
    "'both' in [i['reason'] for i in d['items'] if i['input'].endswith('both-usages.csr')][0]"
expect_json "not a device: no hardwareModuleName" \
    "'hardwareModuleName' in [i['reason'] for i in d['items'] if i['input'].endswith('not-a-device.csr')][0]"
expect_json "hidden files and folders are not inputs" \
    "not any('.hidden' in i['input'] or 'subfolder' in i['input'] for i in d['items'])"
expect_json "files are named <eui>-<usage>.pem" \
    "{'00db123400000000-ka.pem', '00db123400000100-ds.pem'} <= {i.get('file') for i in d['items']}"
check "$GOOD certificate files, nothing for the refused" test "$(ls "$W/out" | wc -l)" -eq "$GOOD"
check "files and store agree, one certificate per CSR" store_check "$H" "$W/out" exact "$GOOD"
run hsmki ca batch --party GITTEST --env test --in "$W/mixed" --out "$W/out-human"
check "the human summary exits 2 too" test "$RC" -eq 2
expect_in "already issued      $GOOD" "the human summary counts what a re-run found already issued"
expect_in "mixed/garbage.csr: input:" "the human summary names the garbage file and the error class"
expect_in "refused: 6 of $((GOOD + 6)) CSR(s) refused" "and closes with the refusal count on stderr"

expect_exit 0 "smki lint: every issued certificate is clean" hsmki lint "$W"/out/*.pem
expect_in "$GOOD clean, 0 with violations" "lint counts $GOOD clean"
run openssl verify -x509_strict -CAfile "$TCA/smki-root.pem" -untrusted "$TCA/smki-dca.pem" "$W"/out/*.pem
check "openssl verify: every certificate chains to the test root through the DCA" \
    test "$(grep -c ': OK$' <<<"$OUT")" -eq "$GOOD"
check "python3-cryptography: the KA certificate carries keyAgreement only, the EUI in the SAN" "$PY" - "$W/out/00db123400000005-ka.pem" <<'PY'
import sys
from cryptography import x509
c = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
assert ku.key_agreement and not ku.digital_signature
san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName)
assert san.critical and san.value[0].value.endswith(bytes.fromhex("00db123400000005"))
PY

# ---- Re-running gives back the same certificates ----------------------------------------------------------
md5sum "$W"/out/*.pem >"$W/sums"
rm "$W/out/00db123400000003-ds.pem"
expect_exit 2 "the same batch again" hsmki --json ca batch --party GITTEST --env test --in "$W/mixed" --out "$W/out"
expect_json "nothing issued again: $GOOD already issued" "d['issued'] == 0 and d['already_issued'] == $GOOD"
expect_json "only the missing file is written again" "d['files_written'] == 1"
check "every file byte for byte as before (the deleted one restored)" md5sum --quiet -c "$W/sums"
check "still one certificate per CSR" store_check "$H" "$W/out" exact "$GOOD"

# ---- A bundle file of concatenated PEM CSRs ----------------------------------------------------------------
"$GEN" --out "$W/bundle.pem" --bundle --count 5 --start 00-DB-12-34-00-00-02-00
{ printf 'a comment before the first block\n'; cat "$W/bundle.pem"; cat "$W/good/00db123400000001-ds.csr"; \
  sed -n 1,3p "$W/bundle.pem"; } >"$W/bundle2.pem"
cat "$W/good/00db123400000002-ds.csr" >>"$W/bundle2.pem" # after a truncated block
expect_exit 2 "a bundle of 5 new, 1 known, 1 truncated, then 1 known" \
    hsmki --json ca batch --party GITTEST --env test --in "$W/bundle2.pem" --out "$W/out-bundle" --threads 1
expect_json "items are named FILE#n" \
    "[i['input'].rsplit('#', 1)[1] for i in d['items']] == ['1','2','3','4','5','6','7']"
expect_json "5 issued, the 2 known ones already issued, the truncated block refused" \
    "d['issued'] == 5 and d['already_issued'] == 1 and d['refused'] == 1 and d['items'][5]['outcome'] == 'already-issued'"
expect_json "the truncated block swallows what follows it up to the next END line" \
    "d['total'] == 7 and d['items'][6]['outcome'] == 'refused'"
cat "$W/good/00db123400000004-ds.csr" "$W/good/00db123400000004-ds.csr" "$W/good/00db123400000009-ka.csr" >"$W/dups.pem"
expect_exit 0 "the same CSR twice in one input" hsmki --json ca batch --party GITTEST --env test --in "$W/dups.pem" --out "$W/out-dups"
expect_json "the second is a duplicate of the first, with the same file" \
    "(d['items'][1]['outcome'] == 'duplicate' and d['items'][1]['duplicate_of'].endswith('#1')
     and d['items'][1]['file'] == d['items'][0]['file'])"
expect_exit 0 "--in -: the bundle from standard input" env SMKI_HOME="$H" bash -c \
    '"$1" --json ca batch --party GITTEST --env test --in - --out "$2" --threads 1 <"$3"' \
    _ "$SMKI_BIN" "$W/out-stdin" "$W/bundle.pem"
expect_json "items named stdin#n, the 5 given back as already issued" \
    "[i['input'] for i in d['items']] == ['stdin#%d' % n for n in range(1, 6)] and d['already_issued'] == 5"
check "their 5 files written to --out" test "$(ls "$W/out-stdin" | wc -l)" = 5
expect_exit 1 "--out - is refused: the certificates go to a folder" \
    hsmki ca batch --party GITTEST --env test --in "$W/bundle.pem" --out -
expect_in "not '-' (standard output)" "the refusal says why"
check "no folder named '-' was made" test ! -e ./-
expect_exit 0 "a single DER CSR file as --in" hsmki --json ca batch --party GITTEST --env test --in "$REAL_CSR" --out "$W/out-real"
expect_json "the real device CSR is issued" "d['issued'] == 1 and d['items'][0]['file'] == '00db1234567890a0-ds.pem'"
mkdir -p "$W/empty"
expect_exit 0 "an empty folder is an empty batch" hsmki --json ca batch --party GITTEST --env test --in "$W/empty" --out "$W/o3"
expect_json "with nothing in it" "d['total'] == 0 and d['ok'] is True"

# ---- Name clash: a device with a new key ---------------------------------------------------------------------
"$GEN" --out "$W/rekey" --count 1 --start 00-DB-12-34-00-00-00-06
cp "$W/out/00db123400000006-ds.pem" "$W/old-6.pem"
expect_exit 0 "a new CSR for a device that has a certificate" hsmki --json ca batch --party GITTEST --env test --in "$W/rekey" --out "$W/out"
expect_json "it is issued and written under its serial's name" \
    "(d['issued'] == 1 and d['name_clashes'] == 1
     and d['items'][0]['file'] == '00db123400000006-ds-' + d['items'][0]['serial'] + '.pem')"
check "the earlier certificate's file is untouched" cmp "$W/old-6.pem" "$W/out/00db123400000006-ds.pem"
expect_exit 0 "the new certificate lints clean" hsmki lint "$W"/out/00db123400000006-ds-*.pem

# ---- The RA's gate on what is issued -----------------------------------------------------------------
# A Device ID from a central block (GITTEST's own 90B3D51F3/36): that CSR is refused
# by name, the rest of the batch proceeds.
"$GEN" --out "$W/central" --count 2 --start 90-B3-D5-1F-30-00-00-05
"$GEN" --out "$W/central" --count 2 --start 00-DB-12-34-00-00-03-00
expect_exit 2 "a batch holding 2 Device IDs from a central block exits 2" \
    hsmki --json ca batch --party GITTEST --env test --in "$W/central" --out "$W/out-central"
expect_json "the 2 central IDs refused by name, the 2 others issued, for GITTEST" \
    "(d['party'] == 'GITTEST' and d['issued'] == 2 and d['refused'] == 2
      and all(('90b3d51f30' in i['input']) == (i['outcome'] == 'refused') for i in d['items']))"
expect_json "the reason says a central ID is never a Device ID" \
    "all('never a Device ID' in i['reason'] for i in d['items'] if i['outcome'] == 'refused')"
# Production is not a direct-issue environment: its device certificates go by an
# approved device-batch request.
printf '[env.production]\norg_policy = 2.999.0.1\ndevice_policy = 2.999.0.2\nhw_type = 1.2.826.0.1.8641679.1.2.2.1\nroot_name = PROD ROOT\noca_name = PROD OCA\ndca_name = PROD DCA\n[ca.production]\ndccki = no\n' \
    >"$W/production.conf" # made-up OIDs of the example arc: a test's own production
expect_exit 0 "ca init --env production (made-up OIDs)" hsmki ca init --env production --config "$W/production.conf"
expect_exit 0 "RA: GITTEST authorised for devices in production" \
    hsmki ra subscriber authorise --party GITTEST --type device --env production
expect_exit 2 "a batch in production (not in ra.direct_issue) is refused" \
    hsmki ca batch --party GITTEST --env production --in "$W/good" --out "$W/o-prod"
expect_in "smki ra request submit --type device-batch" "the refusal points at the device-batch request"
check "nothing written for it" test ! -e "$W/o-prod/00db123400000000-ds.pem"
expect_exit 0 "the audit trail verifies" hsmki audit verify

# ---- Crash test: kill -9 at random moments, then finish -----------------------------------------------------
# The crash test's CA keys are software keys (file:PATH): SoftHSM's file store rewrites
# its token.object in place at every C_Login (Token::loginUser resets the PIN flags),
# so a kill at that instant leaves it empty and the token gone. That is SoftHSM's
# weakness, not the batch's, and a real HSM has no such file; here it would only make
# the test flaky.
CH=$ROOT/crash-home
mkdir -p "$CH" "$ROOT/keys"
for k in smki_root smki_oca smki_dca; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ROOT/keys/$k.pem" 2>/dev/null
    printf '%s_key = file:%s\n' "$k" "$ROOT/keys/$k.pem" >>"$W/crash-keys"
done
{ printf '[ca.test]\ndccki = no\n'; cat "$W/crash-keys"; } >"$W/crash-ceremony.conf"
expect_exit 0 "ca init in a fresh home for the crash test (software CA keys)" \
    env SMKI_HOME="$CH" "$SMKI_BIN" ca init --env test --config "$W/crash-ceremony.conf"
ra_test_participant "$CH"
check "make $CRASH_N CSRs" "$GEN" --out "$W/crash-in" --count "$CRASH_N" --start 00-DB-55-00-00-00-00-00
COUT=$W/crash-out
killed=0
for k in $(seq 1 "$KILLS"); do
    SMKI_HOME=$CH "$SMKI_BIN" --json ca batch --party GITTEST --env test --in "$W/crash-in" --out "$COUT" --group 32 \
        >"$W/crash-$k.json" 2>"$W/crash-$k.err" &
    pid=$!
    # A random moment, 0.05 to 0.35 s in: most land while certificates are being issued
    # (how many did is printed below; the checks hold wherever a kill lands).
    sleep "0.$(printf '%03d' $((50 + RANDOM % 300)))"
    if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
    wait "$pid" 2>/dev/null || true
    check "after kill $k: every file is whole and names a certificate the store holds" \
        store_check "$CH" "$COUT" files-in-store
    echo "#   after kill $k: $(head -1 "$W/.chk")"
    check "after kill $k: no sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error' '$W/crash-$k.err'"
done
echo "# $killed of $KILLS runs were killed before they finished"
expect_exit 0 "the re-run after the kills finishes the batch" \
    env SMKI_HOME="$CH" "$SMKI_BIN" --json ca batch --party GITTEST --env test --in "$W/crash-in" --out "$COUT"
expect_json "every CSR accounted for: issued now or already issued" \
    "d['issued'] + d['already_issued'] == $CRASH_N and d['refused'] == 0 and d['duplicate'] == 0"
check "exactly one certificate per CSR in the store, each with its file" store_check "$CH" "$COUT" exact "$CRASH_N"
check "$CRASH_N files" test "$(ls "$COUT" | wc -l)" -eq "$CRASH_N"
expect_exit 0 "one more run issues nothing" env SMKI_HOME="$CH" "$SMKI_BIN" --json ca batch --party GITTEST --env test --in "$W/crash-in" --out "$COUT"
expect_json "all $CRASH_N already issued, no file rewritten" \
    "d['issued'] == 0 and d['already_issued'] == $CRASH_N and d['files_written'] == 0"

expect_exit 0 "the crash home's audit trail verifies after the kills and re-runs" \
    env SMKI_HOME="$CH" "$SMKI_BIN" --json audit verify
run env SMKI_HOME="$CH" "$SMKI_BIN" --json audit list
check "the audit entries of the batch's group commits cover all $CRASH_N certificates" "$PY" -c '
import json, re, sys
d = json.loads(sys.argv[1])
n = sum(int(re.match(r"issued (\d+) device", e["detail"]).group(1)) for e in d["entries"] if e["action"] == "ca-batch-direct")
print(n); sys.exit(0 if n == int(sys.argv[2]) else 1)' "$OUT" "$CRASH_N"

# ---- One batch at a time per store --------------------------------------------------------------------------
SMKI_HOME=$CH "$SMKI_BIN" ca batch --party GITTEST --env test --in "$W/crash-in" --out "$W/crash-out2" --threads 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 50); do [[ -e $W/crash-out2 ]] && break; sleep 0.1; done
run env SMKI_HOME="$CH" "$SMKI_BIN" ca batch --party GITTEST --env test --in "$W/good" --out "$W/crash-out3"
if kill -0 "$pid" 2>/dev/null; then
    if [[ $RC == 3 && $ERR == *"is locked by process $pid"* ]]; then
        ok "a second batch on the same store while one runs is refused, naming the first (exit 3)"
    else
        not_ok "a second concurrent batch: exit $RC"
        diag
    fi
else
    ok "a second concurrent batch (the first had already finished: nothing to check)"
fi
wait "$pid" || true

finish
