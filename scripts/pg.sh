#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for tests and benchmarks.
#   scripts/pg.sh start DIR [PORT]   initdb in DIR/data (trust auth, user "test", no fsync unless
#                                    PG_DURABLE=1), start it,
#                                    print its URL (postgres://test@127.0.0.1:PORT/postgres)
#   scripts/pg.sh stop DIR           stop it (fast shutdown)
#   scripts/pg.sh restart DIR        stop and start again (same port)
# initdb refuses to run as root: as root the cluster runs as the `postgres` system user (the apt
# package makes it). Binaries: PG_BIN, or the newest /usr/lib/postgresql/*/bin, or PATH.
set -euo pipefail

find_bin() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
    [ -x "$d/initdb" ] && { echo "$d"; return; }
    echo "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql" >&2
    exit 1
}

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/sh -c "$1"
    else
        sh -c "$1"
    fi
}

cmd=${1:?usage: pg.sh start|stop|restart DIR [PORT]}
dir=${2:?usage: pg.sh start|stop|restart DIR [PORT]}
B=$(find_bin)
case "$cmd" in
start)
    port=${3:-55432}
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    if [ ! -d "$dir/data" ]; then
        as_owner "$B/initdb -D '$dir/data' -A trust -U test --no-sync -E UTF8 --locale=C" >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    echo "$port" >"$dir/port"
    # Tests trade durability for speed; PG_DURABLE=1 keeps PostgreSQL's defaults (benchmarks).
    fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${PG_DURABLE:-}" = 1 ] && fast=""
    as_owner "$B/pg_ctl -D '$dir/data' -l '$dir/log' -o \"-c listen_addresses=127.0.0.1 -p $port -k '$dir' $fast -c max_connections=200\" -w -t 60 start" >/dev/null || {
        tail -n 20 "$dir/log" >&2
        exit 1
    }
    echo "postgres://test@127.0.0.1:$port/postgres"
    ;;
stop)
    [ -d "$dir/data" ] && as_owner "$B/pg_ctl -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
    ;;
restart)
    "$0" stop "$dir"
    "$0" start "$dir" "$(cat "$dir/port")"
    ;;
*)
    echo "usage: pg.sh start|stop|restart DIR [PORT]" >&2
    exit 2
    ;;
esac
