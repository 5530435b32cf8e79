#!/usr/bin/env bash
# The store on PostgreSQL from the outside, in a throwaway cluster of its own
# (tests/pg/cluster.sh: initdb as an unprivileged user, a Unix socket in a temporary
# folder): a home with [store] engine = postgresql issues certificates and keeps an RA
# audit trail there; `smki repo serve` serves them from it; `smki store copy` takes
# every record to LMDB and back, counting each database and verifying the audit trail
# of the copy; and the refusals: a copy into a store that is not empty, a password in
# conninfo, an unknown engine, an unreachable server.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
PY=/usr/bin/python3
TIMEOUT=120
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/smki-store-pg.XXXXXX")
chmod 0755 "$W"
source "$HERE/lib.sh"
PIDS=()
INFO=$W/pg.info
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    "$HERE/../pg/cluster.sh" stop "$INFO" || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

unset SMKI_PIN SMKI_SO_PIN SMKI_DEBUG SOFTHSM2_CONF
"$HERE/../pg/cluster.sh" start "$INFO" >/dev/null
CONNINFO=$(grep -v '^#' "$INFO")
SOCKDIR=$(sed -n 's/^host=\([^ ]*\).*/\1/p' <<<"$CONNINFO")
psql_() { psql -qAtX "$CONNINFO" "$@"; }
psql_ -c "CREATE SCHEMA ca; CREATE SCHEMA back"
PG="postgresql:$CONNINFO options='-c search_path=ca'"

export SMKI_HOME=$W/home
repo_soft_ca_conf "$SMKI_HOME" "$SMKI_HOME/smki.conf"
sed -i "s|^path = store\$|engine = postgresql\nconninfo = $CONNINFO options='-c search_path=ca'|" "$SMKI_HOME/smki.conf"
expect_exit 0 "store info on PostgreSQL" smki --json store info
expect_json "the store is the server's, schema 2" 'd["path"].startswith("postgresql:") and d["schema"] == 2'
expect_exit 0 "the test hierarchy from software keys, into PostgreSQL" smki ca init --env test --config "$SMKI_HOME/smki.conf"
check "no LMDB store was made in the home" test ! -e "$SMKI_HOME/store"
ra_test_participant "$SMKI_HOME"
expect_exit 0 "a device certificate from the real CSR" \
    smki ca issue --env test --party GITTEST --csr "$SMKI_SHARED/vectors/gbcs/csr/00db1234567890a0-ds.csr.der" --der --out "$W/dev.der"
SERIAL=$(openssl x509 -inform DER -in "$W/dev.der" -noout -serial | cut -d= -f2)
run psql_ -c "SELECT count(*) FROM ca.smki_dbs"
check "the named databases are tables of the schema" test "$OUT" -gt 10
expect_exit 0 "the audit trail verifies on PostgreSQL" smki audit verify
run smki --json doctor # exit 2 is fine here (this home has warnings of its own); the store is what is checked
expect_json "smki doctor opens the PostgreSQL store and reads its CAs" \
    'any(c["check"] == "store" and c["level"] == "ok" and c["subject"].startswith("postgresql:") for c in d["checks"]) and any(c["check"] == "ca" for c in d["checks"])'

# The repository reads the same server.
start_server "$W/serve.log" --env test --listen 127.0.0.1:0
expect_exit 0 "smki repo get from the repository on PostgreSQL" smki repo get --url "http://127.0.0.1:$PORT" "$SERIAL" --out "$W/got.der"
check "it is the issued certificate" cmp "$W/got.der" "$W/dev.der"
stop_servers_and_check_logs "$W/serve.log"

# PostgreSQL -> LMDB -> PostgreSQL, each copy counted and its audit trail verified.
expect_exit 0 "store copy to LMDB" smki --json store copy --from "$PG" --to "$W/copy"
expect_json "every database counted the same on both sides, audit verified" \
    'd["ok"] and d["audit_trail"] and d["audit_entries"] > 0 and d["records"] > 0 and all(x["from"] == x["to"] for x in d["databases"])'
RECORDS=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["records"])' "$OUT")
check "the LMDB copy is an LMDB store" test -s "$W/copy/data.mdb"
BACK="postgresql:$CONNINFO options='-c search_path=back'"
expect_exit 0 "store copy back to PostgreSQL" smki --json store copy --from "$W/copy" --to "$BACK"
expect_json "the same records came back" "d[\"ok\"] and d[\"records\"] == $RECORDS"
run psql_ -c "SELECT (SELECT count(*) FROM ca.\"kv_ra_audit\") = (SELECT count(*) FROM back.\"kv_ra_audit\")"
check "the audit trail has as many entries in both schemas" test "$OUT" = t

# Refusals.
expect_exit 2 "a copy into a store that holds records" smki store copy --from "$W/copy" --to "$PG"
expect_in "copy only into an empty store" "named: a copy never merges"
expect_exit 1 "a copy without --to" smki store copy --from "$W/copy"
expect_in "give both --from STORE and --to STORE" "says what is missing"
expect_exit 1 "a copy with an argument it does not take" smki store copy --from "$W/copy" --to "$W/copy3" extra
expect_in "unexpected argument 'extra' (it takes none)" "the refusal names it"
check "and copies nothing" test ! -e "$W/copy3"
expect_exit 1 "store info takes no argument" smki store info extra
expect_exit 2 "a copy from nowhere" smki store copy --from "$W/nowhere" --to "$W/copy2"
expect_in "there is no store at $W/nowhere" "names the missing store"
cp "$SMKI_HOME/smki.conf" "$W/good.conf"
sed -i "s|^conninfo = .*|conninfo = host=$SOCKDIR user=smki password=hunter2|" "$SMKI_HOME/smki.conf"
expect_exit 1 "a password in [store] conninfo" smki store info
expect_in "holds a password; put it in a password file" "says where the password goes"
expect_not_in "hunter2" "and never shows it"
sed -i "s|^conninfo = .*|conninfo = host=$W/nosocket port=5999 dbname=smki|" "$SMKI_HOME/smki.conf"
expect_exit 3 "an unreachable server" smki store info
expect_in "cannot reach the PostgreSQL server at socket directory $W/nosocket port 5999" "names the socket"
expect_in "pg_isready" "and what to check"
sed -i "s|^engine = postgresql|engine = postgres|" "$SMKI_HOME/smki.conf"
expect_exit 1 "an unknown engine" smki store info
expect_in "[store] engine = postgres: use lmdb or postgresql" "names the engines"
cp "$W/good.conf" "$SMKI_HOME/smki.conf"

finish
