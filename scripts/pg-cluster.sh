#!/bin/sh
# pg-cluster.sh - a throwaway PostgreSQL 15 cluster for tests and benches.
#
#   scripts/pg-cluster.sh start DIR   initdb (with data checksums) in DIR,
#                                     start it on a Unix socket in DIR only,
#                                     create database "mamori", print conninfo
#   scripts/pg-cluster.sh env DIR     print the conninfo of a started cluster
#   scripts/pg-cluster.sh stop DIR    stop it (DIR is left for inspection)
#
# No TCP listener (listen_addresses=''); the socket directory is mode 0710
# with group "mamori" (when that service user exists, so mamorid's sandboxed
# workers can connect) else 0700: only the owner, that group and root can
# connect; trust auth inside that fence.
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# "postgres" user.  fsync and synchronous_commit are forced on: the store
# refuses a server without them (R9.6).
#
# Usage in tests:
#   export MAMORI_TEST_PG="$(scripts/pg-cluster.sh start /tmp/mamori-pg)"
#   ctest ...; scripts/pg-cluster.sh stop /tmp/mamori-pg
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

usage() {
    echo "usage: $0 start|stop|env DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

conninfo() {
    echo "host=$dir dbname=mamori user=postgres"
}

case $cmd in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chmod 0700 "$dir"
    if [ "$(id -u)" = 0 ]; then
        if getent group mamori >/dev/null 2>&1; then
            chown postgres:mamori "$dir"
            chmod 0710 "$dir"
        else
            chown postgres:postgres "$dir"
        fi
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$PGBIN/initdb" --data-checksums -D "$dir/data" -U postgres \
            --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=on -c synchronous_commit=on -c full_page_writes=on" \
        start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    if ! as_owner "$PGBIN/psql" -h "$dir" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'mamori'" | grep -q 1; then
        as_owner "$PGBIN/createdb" -h "$dir" -U postgres mamori
    fi
    conninfo
    ;;
stop)
    dir=$(cd "$dir" && pwd)
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
env)
    dir=$(cd "$dir" && pwd)
    [ -f "$dir/data/postmaster.pid" ] || {
        echo "$0: no cluster running in $dir" >&2
        exit 1
    }
    conninfo
    ;;
*)
    usage
    ;;
esac
