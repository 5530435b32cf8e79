#!/usr/bin/env bash
# Every example in every --help runs as written. The test walks the whole command tree
# (`smki --help`, each group's "Commands:" table, each leaf's --help; a level without a
# table is a leaf), takes the example blocks out of each help text and runs each block,
# in order, in one shell, in a home prepared as below. It fails on any block that does
# not run; the report names the command, the block and its trace.
#
# The marker convention (every help text follows it):
#   - An example block starts at a line that begins with "Example" (Example:, Examples:,
#     "Example (what the home needs):"): the heading, which may wrap over several
#     unindented lines and ends with ':', says what the examples need.
#   - The block is the lines indented by two spaces that follow the heading; a line
#     ending in '\' continues on the next (indented further). It ends at a blank or an
#     unindented line.
#   - Every line is shell, run as written: `smki ...` lines are the examples; other lines
#     prepare or check (`echo hello > msg`, `openssl dgst ... -verify`, `cd`, `V=...`).
#     "# ..." is a comment. A line whose comment starts "# exits N" ("# exits 2: why")
#     is an example whose exit code is N (a refusal, a problem found); a line ending in
#     '&' runs in the background (a server) and is stopped when its block ends.
#   - Where the block runs: the working folder is a fresh clone-like folder beside
#     ../shared (so ../shared/vectors/... names the real vectors), `smki` on PATH is the
#     binary under test, and SMKI_HOME is a fresh copy of the prepared home:
#       * a token (SMKI_PIN, SMKI_SO_PIN in the environment) initialised by `hsm init`;
#       * the test CA of `ca init --env test` (home/ca/test/...);
#       * an RA with the operator 'tester' whose key is SMKI_OPERATOR_KEY (SMKI_OPERATOR
#         set), a checkpoint key, and the Testing Participant GITTEST holding User ID
#         90-B3-D5-1F-30-01-00-00 (EIS, block 90B3D51F3/36), authorised for supplier and
#         device certificates in test (lib.sh's ra_test_participant); and the Party
#         PARTY0001 authorised for DCCKI TLS certificates (ra_dccki_party);
#       * every CA's CRL or ARL published (`ca crl`/`ca arl --env test`): what
#         `smki doctor` asks of a working home.
#     The help texts name this home "a test home" (HELP_TEST_HOME in tools/smki/commands.h
#     spells it out for an operator: keep the two in step).
#     A heading that says "a new home" gets instead a SMKI_HOME that does not exist yet
#     and no PINs in the environment (`hsm init`'s example makes the home).
#     Anything else an example needs, its block makes (keys, CSRs, files).
# Environment (ctest sets it): SMKI_BIN, SMKI_SHARED (the folder holding vectors/).
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"

PY=/usr/bin/python3
TIMEOUT=120
BLOCK_SECONDS=${SMKI_HELP_EXAMPLE_SECONDS:-40}
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_OPERATOR SMKI_OPERATOR_KEY SMKI_HSM_KEY_COPY SMKI_DEBUG SOFTHSM2_CONF

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-help-examples.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
mkdir -p "$W" "$ROOT/bin" "$ROOT/blocks"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# `smki` in an example is the binary under test.
ln -s "$SMKI_BIN" "$ROOT/bin/smki"

# ---- The walk: every help text reached from `smki --help` --------------------------------
# help_of WORDS...: the help text of `smki WORDS... --help` (no home needed to print it).
help_of() { env SMKI_HOME="$ROOT/no-home" timeout "$TIMEOUT" "$SMKI_BIN" "$@" --help 2>&1; }
# The names of a "Commands:" table, one a line.
table_of() { awk '/^Commands:/ { t = 1; next } t && /^  [a-z0-9]/ { print $1; next } t { t = 0 }'; }

LEAVES=0
walk() {
    local text names n
    text=$(help_of "$@") || { not_ok "smki $* --help exits 0"; return 0; }
    printf '%s\n' "$text" >"$ROOT/help.$LEAVES"
    echo "smki $*" >"$ROOT/help.$LEAVES.name"
    LEAVES=$((LEAVES + 1))
    names=$(table_of <<<"$text")
    for n in $names; do walk "$@" "$n"; done
}
walk
if [[ $LEAVES -ge 40 ]]; then ok "walked $LEAVES help texts"; else not_ok "walked only $LEAVES help texts"; fi

# ---- The blocks ---------------------------------------------------------------------------
# extract HELPFILE PREFIX: each example block of the help text into PREFIX.N.sh.
extract() {
    awk -v prefix="$2" '
        function flush() { if (n > 0) close(file); n = 0 }
        /^Example/ { flush(); heading = 1; blocks++; file = prefix "." blocks ".sh"; hdr = $0
                     if ($0 ~ /:$/) { heading = 0; inblock = 1; printf "# %s\n", hdr > file }
                     next }
        heading { hdr = hdr " " $0; if ($0 ~ /:$/) { heading = 0; inblock = 1; printf "# %s\n", hdr > file }; next }
        inblock && /^  / { print substr($0, 3) > file; n++; next }
        inblock { inblock = 0; flush() }
        END { flush() }' "$1"
}
for ((i = 0; i < LEAVES; i++)); do extract "$ROOT/help.$i" "$ROOT/blocks/$i"; done
mapfile -t BLOCKS < <(find "$ROOT/blocks" -name '*.sh' | sort -V)
if [[ ${#BLOCKS[@]} -ge 20 ]]; then ok "${#BLOCKS[@]} example blocks found"; else not_ok "only ${#BLOCKS[@]} example blocks found"; fi

# A block as a script: "# exits N" lines checked for N, background jobs stopped at the end
# and waited for, so a server's port is free again before the next block starts.
script_of() {
    echo 'trap '\''kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true'\'' EXIT'
    "$PY" - "$1" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
logical, cur = [], ""
for l in lines[1:]:
    cur = cur + ("\n" if cur else "") + l
    if not l.endswith("\\"):
        logical.append(cur)
        cur = ""
if cur:
    logical.append(cur)
for l in logical:
    m = re.search(r"\s#\s*exits\s+(\d+)\b[^\n]*$", l)
    if m:
        print("rc=0; %s || rc=$?; [ $rc = %s ] || { echo \"exit $rc, wanted %s: the line above\" >&2; exit 1; }"
              % (l[: m.start()].rstrip(), m.group(1), m.group(1)))
    else:
        print(l)
PY
}

# ---- The prepared home --------------------------------------------------------------------
export SMKI_PIN=help-user-1234 SMKI_SO_PIN=help-so-12345678
HOME0=$ROOT/home
mkdir -p "$HOME0"
expect_exit 0 "the prepared home: its token" env SMKI_HOME="$HOME0" "$SMKI_BIN" hsm init
expect_exit 0 "the prepared home: the test CA" env SMKI_HOME="$HOME0" timeout 300 "$SMKI_BIN" ca init --env test
ra_test_participant "$HOME0"
ra_dccki_party "$HOME0" PARTY0001
expect_exit 0 "the prepared home: its CRLs published" env SMKI_HOME="$HOME0" "$SMKI_BIN" ca crl --env test
expect_exit 0 "the prepared home: its ARLs published" env SMKI_HOME="$HOME0" "$SMKI_BIN" ca arl --env test

# run_block N FILE: the block in a fresh copy of the home (or a new home, when its
# heading says so) and a fresh clone beside ../shared.
run_block() {
    local n=$1 file=$2 b=$ROOT/run/$1
    local -a pins=(SMKI_PIN="$SMKI_PIN" SMKI_SO_PIN="$SMKI_SO_PIN")
    mkdir -p "$b/clone"
    ln -s "$SMKI_SHARED" "$b/shared"
    if head -1 "$file" | grep -q 'a new home'; then
        pins=(-u SMKI_PIN -u SMKI_SO_PIN)
    else
        cp -a "$HOME0" "$b/home"
        # SoftHSM's configuration names its token folder absolutely: the copy writes its own.
        rm -f "$b/home/hsm/softhsm2.conf"
    fi
    script_of "$file" >"$b/block.sh"
    run env -C "$b/clone" "${pins[@]}" SMKI_HOME="$b/home" PATH="$ROOT/bin:$PATH" \
        timeout -k 5 "$BLOCK_SECONDS" bash -e -x "$b/block.sh"
}

FAILS=()
for f in "${BLOCKS[@]}"; do
    base=$(basename "$f" .sh)
    leaf=${base%%.*}
    name=$(<"$ROOT/help.$leaf.name")
    heading=$(head -1 "$f")
    run_block "$base" "$f"
    if [[ $RC == 0 ]]; then
        ok "$name --help: ${heading#\# }"
    else
        not_ok "$name --help: ${heading#\# } (exit $RC)"
        sed 's/^/#   | /' "$f" | tail -n +2
        DIAG_STDOUT=tail diag
        FAILS+=("$name")
    fi
done
[[ ${#FAILS[@]} == 0 ]] || echo "# the help texts whose examples do not run: ${FAILS[*]}"

finish
