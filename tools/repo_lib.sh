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
        PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$log" 2>/dev/null | head -1 || true) # the log may not be there yet
        [[ -n $PORT ]] && break
        kill -0 "$REPO_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $PORT ]]
}

# repo_cleanup_trap: PIDS=() and, on every exit, each process in PIDS stopped (SIGTERM,
# then waited for) and the scratch folder $W removed.
repo_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
repo_cleanup_trap() {
    PIDS=()
    trap repo_cleanup EXIT INT TERM
}

# repo_soft_ca_conf HOME CONF: a software P-256 key for each test-environment CA in
# HOME/keys, and in CONF the smki.conf that names them ([store] in HOME/store, [ca.test]).
repo_soft_ca_conf() {
    local home=$1 conf=$2 k
    mkdir -p "$home/keys"
    for k in smki_root smki_oca smki_dca dccki_root dccki_ica; do
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$home/keys/$k.pem" 2>/dev/null
    done
    {
        printf '[store]\npath = store\n[ca.test]\n'
        for k in smki_root smki_oca smki_dca dccki_root dccki_ica; do echo "${k}_key = file:$home/keys/$k.pem"; done
    } >"$conf"
}
