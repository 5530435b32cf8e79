#!/usr/bin/env bash
# smki repo serve against clients that hold on (tests/integration/repo_limits.py):
# clients that pipeline requests and never read are ended after --timeout (h2o 2.2's
# HTTP/1 has no write timeout of its own), and connections over --max-conns never
# reach h2o: a fixed 429 or a close, memory bounded, and the server serves again once
# they are gone; out of descriptors, accepting pauses instead of spinning. The refusals
# show in /metrics and the log. Servers stop on every exit.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
PY=/usr/bin/python3
TIMEOUT=120
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-repo-limits.XXXXXX")
source "$HERE/lib.sh"
repo_cleanup_trap

unset SMKI_PIN SMKI_SO_PIN SMKI_DEBUG SOFTHSM2_CONF
export SMKI_HOME=$W/home
repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf"
expect_exit 0 "a test hierarchy to serve" smki ca init --env test --config "$SMKI_HOME/smki.conf"
in_log() { grep -q "$1" "$2" && ok "$3" || { not_ok "$3"; sed 's/^/#   /' "$2" | tail -5; }; }

# ---- Clients that stop reading ----------------------------------------------------------------
start_server "$W/s1.log" --env test --listen 127.0.0.1:0 --threads 1 --max-conns 3 --timeout 2
run timeout "$TIMEOUT" "$PY" "$HERE/repo_limits.py" stuck "$PORT" "$REPO_PID"
printf '%s\n' "$OUT"
[[ $RC == 0 ]] && ok "clients that never read are ended after --timeout" || not_ok "repo_limits.py stuck"
in_log '"event":"conn_cut".*did not read' "$W/s1.log" "the cut is logged"

# ---- Connections over --max-conns ------------------------------------------------------------
start_server "$W/s2.log" --env test --listen 127.0.0.1:0 --threads 1 --max-conns 5 --timeout 30
run timeout "$TIMEOUT" "$PY" "$HERE/repo_limits.py" overlimit "$PORT" "$REPO_PID"
printf '%s\n' "$OUT"
[[ $RC == 0 ]] && ok "connections over --max-conns cost a 429 or a close, nothing more" || not_ok "repo_limits.py overlimit"
run curl -sS "http://127.0.0.1:$PORT/metrics"
REFUSED=$(printf '%s\n' "$OUT" | sed -n 's/^smki_repo_connections_refused_total \([0-9]*\)$/\1/p')
check "the refusals are counted in /metrics ($REFUSED)" test "${REFUSED:-0}" -ge 2
check "the 429s are counted with the requests" grep -qE '^smki_repo_requests_total\{env="test",endpoint="other",code="4xx"\} [1-9]' <<<"$OUT"

# ---- Out of descriptors -----------------------------------------------------------------------
# (a subshell with a low descriptor limit, hard and soft, execs the server)
(ulimit -n 64 && exec "$SMKI_BIN" repo serve --env test --listen 127.0.0.1:0 --threads 1 --max-conns 1000) 2>"$W/s3.log" &
PIDS+=("$!")
EMFILE_PID=$!
listening_port "$W/s3.log"
run timeout "$TIMEOUT" "$PY" "$HERE/repo_limits.py" emfile "$PORT" "$EMFILE_PID"
printf '%s\n' "$OUT"
[[ $RC == 0 ]] && ok "out of descriptors: accepting pauses, then serves again" || not_ok "repo_limits.py emfile"
in_log '"event":"accept","error":"Too many open files"' "$W/s3.log" "the failed accept is logged, the loop paused"

stop_servers_and_check_logs "$W"/s*.log

finish
