# Shared by the integration scripts: TAP-like checks ("ok - ..." / "not ok - ..."),
# running a command with its output captured, and the closing "N passed, M failed".
# Source it after setting W (a scratch folder), SMKI_BIN, TIMEOUT and PY.
# DIAG_STDOUT=tail shows the end of a failing command's stdout instead of its start.

PASSED=0
FAILED=0
OUT=
ERR=
RC=0
LAST=

ok() {
    PASSED=$((PASSED + 1))
    echo "ok - $*"
}
not_ok() {
    FAILED=$((FAILED + 1))
    echo "not ok - $*"
}
# What the last command printed, as comments, for a failing check.
diag() {
    echo "#   command: $LAST"
    echo "#   exit: $RC"
    [[ -n $OUT ]] && sed 's/^/#   stdout: /' <<<"$OUT" | "${DIAG_STDOUT:-head}" -20
    [[ -n $ERR ]] && sed 's/^/#   stderr: /' <<<"$ERR" | head -40
    return 0
}

# smki with a time limit: a hang is exit 124, never a stuck suite.
smki() { timeout "$TIMEOUT" "$SMKI_BIN" "$@"; }

# run CMD...: run it, keep stdout in OUT, stderr in ERR, exit code in RC. Never
# aborts the script. A sanitizer report in stderr counts as a failed check.
run() {
    LAST="$*"
    RC=0
    "$@" >"$W/.out" 2>"$W/.err" </dev/null || RC=$?
    OUT=$(<"$W/.out")
    ERR=$(<"$W/.err")
    if grep -qE 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:' "$W/.err"; then
        not_ok "no sanitizer report from: $LAST"
        sed 's/^/#   /' "$W/.err"
    fi
}

# expect_exit CODE DESC CMD...: run CMD and check its exit code.
expect_exit() {
    local code=$1 desc=$2
    shift 2
    run "$@"
    if [[ $RC == "$code" ]]; then
        ok "$desc (exit $code)"
    else
        not_ok "$desc: exit $RC, wanted $code"
        diag
    fi
}

# expect_in TEXT DESC: the last command printed TEXT (stdout or stderr).
expect_in() {
    if [[ "$OUT"$'\n'"$ERR" == *"$1"* ]]; then
        ok "$2"
    else
        not_ok "$2: no '$1' in the output"
        diag
    fi
}

# expect_not_in TEXT DESC: the last command did not print TEXT.
expect_not_in() {
    if [[ "$OUT"$'\n'"$ERR" != *"$1"* ]]; then
        ok "$2"
    else
        not_ok "$2: '$1' is in the output"
        diag
    fi
}

# expect_json DESC PYEXPR: the last command's stdout is one JSON document and PYEXPR
# (over it, as d) is true.
expect_json() {
    local desc=$1 expr=$2
    if printf '%s' "$OUT" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$expr" 2>"$W/.pyerr"; then
        ok "$desc"
    else
        not_ok "$desc: stdout is not JSON with $expr"
        sed 's/^/#   python: /' "$W/.pyerr"
        diag
    fi
}

# check DESC CMD...: a plain assertion by another tool's exit status.
check() {
    local desc=$1
    shift
    if "$@" >"$W/.chk" 2>&1; then
        ok "$desc"
    else
        not_ok "$desc"
        sed 's/^/#   /' "$W/.chk" | head -20
    fi
}

# check_fails DESC CMD...: the command must fail.
check_fails() {
    local desc=$1
    shift
    if "$@" >"$W/.chk" 2>&1; then
        not_ok "$desc (it succeeded)"
        sed 's/^/#   /' "$W/.chk" | head -20
    else
        ok "$desc"
    fi
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}

# start_server LOG ARGS...: `smki repo serve ARGS...` in the background (PIDS, REPO_PID;
# tools/repo_lib.sh); sets PORT, or shows LOG and returns 1 when it did not start.
source "$(dirname "${BASH_SOURCE[0]}")/../../tools/repo_lib.sh"
start_server() {
    local log=$1
    shift
    repo_serve_start "$SMKI_BIN" "$log" "$@" || { echo "# the server did not start:"; sed 's/^/#   /' "$log"; return 1; }
}

# listening_port LOG [PID]: PORT from the "listening" event in LOG of a server started in
# the background, waiting up to 10 s (less when PID is given and exits first); PORT is
# empty when the server did not start. Always returns 0: the caller checks PORT.
listening_port() {
    local log=$1 pid=${2:-}
    PORT=
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$log" | head -1)
        [[ -n $PORT ]] && break
        [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    return 0
}

# stop_servers_and_check_logs LOG...: SIGTERM every server in PIDS, each must exit 0
# (127: already reaped), then no sanitizer report in any LOG (the ASan build).
stop_servers_and_check_logs() {
    local p rc log
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        rc=0
        wait "$p" 2>/dev/null || rc=$?
        [[ $rc == 0 || $rc == 127 ]] || not_ok "server $p exited $rc on SIGTERM"
    done
    PIDS=()
    for log in "$@"; do
        if grep -qE 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:' "$log"; then
            not_ok "no sanitizer report in $(basename "$log")"
            sed 's/^/#   /' "$log" | head -40
        else
            ok "no sanitizer report in $(basename "$log")"
        fi
    done
}

# ra_test_participant HOME: what a test certificate needs in HOME's RA (test
# certificates go only to registered Testing Participants): an operator whose key is
# in $W (exported as SMKI_OPERATOR / SMKI_OPERATOR_KEY, which 'smki ca issue' reads),
# a checkpoint key for the audit trail, and the Party GITTEST (Testing Participant,
# agreement signed) holding the User ID 90-B3-D5-1F-30-01-00-00 (EIS) of its block
# 90B3D51F3/36, authorised for supplier and device certificates in test. Afterwards:
# smki ca issue --env test ... --party GITTEST
ra_test_participant() {
    local home=$1
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ra-op.pem" 2>/dev/null
    openssl pkey -in "$W/ra-op.pem" -pubout -out "$W/ra-op.pub" 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ra-checkpoint.pem" 2>/dev/null
    printf '\n[audit]\ncheckpoint_key = file:%s\n' "$W/ra-checkpoint.pem" >>"$home/smki.conf"
    export SMKI_OPERATOR=tester SMKI_OPERATOR_KEY=file:$W/ra-op.pem
    local step
    for step in "operator add tester --pub $W/ra-op.pub" \
        "party add GITTEST --testing-participant --agreement-signed" \
        "range assign 90B3D51F3/36 --party GITTEST --kind central" \
        "id allocate --party GITTEST --roles EIS --eui 90-B3-D5-1F-30-01-00-00" \
        "subscriber authorise --party GITTEST --type organisation --role supplier --env test" \
        "subscriber authorise --party GITTEST --type device --env test"; do
        # shellcheck disable=SC2086 # the step's words are the arguments
        expect_exit 0 "RA: $step" env SMKI_HOME="$home" timeout "$TIMEOUT" "$SMKI_BIN" ra $step
    done
}

# ra_dccki_party HOME PARTY...: after ra_test_participant, each PARTY registered in HOME's
# RA (Testing Participant, agreement signed) and authorised for DCCKI TLS server and
# client certificates in test. Afterwards:
# smki ca issue --env test --profile dccki-server ... --party PARTY
ra_dccki_party() {
    local home=$1 p step
    shift
    for p in "$@"; do
        for step in "party add $p --testing-participant --agreement-signed" \
            "subscriber authorise --party $p --type dccki-server --env test" \
            "subscriber authorise --party $p --type dccki-client --env test"; do
            # shellcheck disable=SC2086 # the step's words are the arguments
            expect_exit 0 "RA: $step" env SMKI_HOME="$home" timeout "$TIMEOUT" "$SMKI_BIN" ra $step
        done
    done
}
