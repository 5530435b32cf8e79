# Shared by the scripts that run `smki repo serve` on a free loopback port and need to
# know which: tools/bench_repo.sh, tools/soak_repo.sh, tools/demo_repo.sh, and the repo
# integration tests (through tests/integration/lib.sh). Source it; it defines only
# functions.

# repo_serve_start SMKI LOG ARGS...: `SMKI repo serve ARGS...` in the background with
# its stderr (the JSON log) to LOG; appends its pid to PIDS (the caller's cleanup stops
# it) and sets REPO_PID. Sets PORT from the log's "listening" event (ARGS give
# --listen HOST:0 or the home's [repo] listen does), waiting up to 10 s, and less if
# the server exits first. Returns 1, with PORT empty, when it did not start.
repo_serve_start() {
    local bin=$1 log=$2
    shift 2
    "$bin" repo serve "$@" 2>"$log" &
    REPO_PID=$!
    PIDS+=("$REPO_PID")
    PORT=
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$log" | head -1)
        [[ -n $PORT ]] && break
        kill -0 "$REPO_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $PORT ]]
}
