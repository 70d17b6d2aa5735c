#!/bin/sh
# Entry point of the CI stand-in for the postgres image (postgres.Containerfile): on first start
# an empty data folder gets a cluster whose superuser is POSTGRES_USER (password
# POSTGRES_PASSWORD) and a database POSTGRES_DB, as the real image does; then PostgreSQL runs in
# the foreground as the unprivileged postgres user. Anything but `postgres` runs as given.
set -eu
if [ "${1:-postgres}" != postgres ]; then
    exec "$@"
fi
: "${POSTGRES_PASSWORD:?the postgres stand-in needs POSTGRES_PASSWORD}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    # POSTGRES_INITDB_ARGS is a list of options, split on spaces as the real image does.
    # shellcheck disable=SC2086
    as_postgres initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
        as_postgres createdb --username="$user" "$db"
        as_postgres pg_ctl -D "$PGDATA" -m fast -w stop
    fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" \
    -c listen_addresses='*'
