#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests of the store's PostgreSQL engine:
# initdb and pg_ctl as an unprivileged user (root runs them as `nobody`), listening
# only on a Unix socket in the cluster's own temporary folder, never on TCP.
#
#   cluster.sh start INFO   make and start a cluster; write its conninfo to INFO
#   cluster.sh stop INFO    stop the cluster INFO names and remove its folder
#   cluster.sh standby INFO PRIMARY_INFO NAME
#                           a streaming hot standby of that primary (pg_basebackup
#                           -R), application_name NAME (for synchronous_standby_names)
#   cluster.sh promote INFO the standby becomes a primary (pg_ctl promote)
#
# The tests read INFO (SMKI_TEST_PG_FILE) and each keep their stores in a schema of
# their own. The cluster trades durability for speed (fsync off): the tests check
# the engine's semantics, not the disk's.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
info=${2:-}
[[ -n $cmd && -n $info ]] || { echo "usage: $0 start|stop INFO" >&2; exit 2; }

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

stop_cluster() {
    [[ -f $info ]] || return 0
    local dir
    dir=$(sed -n 's/^# dir //p' "$info")
    if [[ -n $dir && -d $dir ]]; then
        # An immediate shutdown (SIGQUIT to the postmaster): nothing in it needs keeping.
        local pid
        pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && kill -QUIT "$pid" 2>/dev/null; then
            # postmaster.pid goes when the server has stopped (the process itself may
            # linger as a zombie where nothing reaps it)
            for _ in $(seq 1 200); do [[ -e $dir/data/postmaster.pid ]] || break; sleep 0.05; done
        fi
        rm -rf "$dir"
    fi
    rm -f "$info"
}

case $cmd in
start)
    [[ -x $PGBIN/initdb ]] || { echo "no PostgreSQL 15 at $PGBIN: apt-get install postgresql-15" >&2; exit 1; }
    stop_cluster # a cluster left by an interrupted run
    dir=$(mktemp -d /tmp/smki-pg.XXXXXX)
    chmod 0755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown nobody: "$dir"
    as_owner "$PGBIN/initdb" -D "$dir/data" -U smki --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 200
CONF
    # SMKI_PG_DURABLE=1 (make bench): commits synced as in production
    [[ -n ${SMKI_PG_DURABLE:-} ]] || printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' \
        >>"$dir/data/postgresql.conf"
    # One role that must log in with a password, for the tests of a refused login and
    # of a password read from a password file.
    { echo "local all smki_pw scram-sha-256"; cat "$dir/data/pg_hba.conf"; } >"$dir/hba" &&
        cat "$dir/hba" >"$dir/data/pg_hba.conf" && rm "$dir/hba"
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    "$PGBIN/psql" -qAt -h "$dir" -U smki -d postgres \
        -c "CREATE ROLE smki_pw LOGIN PASSWORD 'smki-test-password'" >/dev/null
    mkdir -p "$(dirname "$info")"
    printf '# dir %s\nhost=%s port=5432 user=smki dbname=postgres\n' "$dir" "$dir" >"$info"
    echo "PostgreSQL cluster in $dir"
    ;;
standby)
    primary=${3:?usage: $0 standby INFO PRIMARY_INFO NAME}
    name=${4:?usage: $0 standby INFO PRIMARY_INFO NAME}
    pdir=$(sed -n 's/^# dir //p' "$primary")
    stop_cluster
    dir=$(mktemp -d /tmp/smki-pg.XXXXXX)
    chmod 0755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown nobody: "$dir"
    as_owner "$PGBIN/pg_basebackup" -D "$dir/data" -X stream -R \
        -d "host=$pdir port=5432 user=smki application_name=$name" >"$dir/basebackup.log" 2>&1 ||
        { cat "$dir/basebackup.log" >&2; exit 1; }
    # the copied configuration is the primary's: its own socket folder, and a name the
    # primary's synchronous_standby_names can match
    echo "unix_socket_directories = '$dir'" >>"$dir/data/postgresql.conf"
    echo "primary_conninfo = 'host=$pdir port=5432 user=smki application_name=$name'" \
        >>"$dir/data/postgresql.auto.conf"
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    printf '# dir %s\nhost=%s port=5432 user=smki dbname=postgres\n' "$dir" "$dir" >"$info"
    echo "PostgreSQL standby $name in $dir"
    ;;
promote)
    dir=$(sed -n 's/^# dir //p' "$info")
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
    ;;
stop) stop_cluster ;;
*) echo "usage: $0 start|stop INFO" >&2; exit 2 ;;
esac
