#!/bin/sh
# The entrypoint of the sluice-postgres image (deploy/Dockerfile.postgres),
# run by Debian's busybox-static sh as the unprivileged user postgres.
#
# First start (no $PGDATA/PG_VERSION): initdb (UTF8, C locale, data
# checksums, scram-sha-256 for every connection, the superuser
# $POSTGRES_USER with the password $POSTGRES_PASSWORD, read from a pipe so
# it never touches the disk), a pg_hba.conf line that lets any address log in
# with that password, then `CREATE DATABASE $POSTGRES_DB` in single-user
# mode. Every start: exec postgres on $PGDATA, listening on every address
# (TCP only: no Unix socket directory to own), with any extra arguments
# (`-c name=value`). A shell is needed anyway: initdb runs postgres through
# popen(3), that is /bin/sh.
set -eu
PATH=/usr/lib/postgresql/15/bin:/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_USER=${POSTGRES_USER:-sluice}
POSTGRES_DB=${POSTGRES_DB:-sluice}
export PGDATA

fail() {
    echo "postgres-entrypoint: $*" >&2
    exit 2
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -n "${POSTGRES_PASSWORD:-}" ] ||
        fail "no database in $PGDATA yet, and POSTGRES_PASSWORD is not set (the password of $POSTGRES_USER)"
    case "$POSTGRES_USER$POSTGRES_DB" in
    *[!a-z0-9_]*) fail "POSTGRES_USER and POSTGRES_DB must be lower-case letters, digits and _" ;;
    esac
    echo "postgres-entrypoint: initdb $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
    printf '%s\n' "$POSTGRES_PASSWORD" |
        initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/dev/stdin -A scram-sha-256 \
            -E UTF8 --locale=C --data-checksums >/dev/null
    echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
    echo "CREATE DATABASE $POSTGRES_DB" | postgres --single -D "$PGDATA" -c listen_addresses= \
        -c unix_socket_directories= postgres >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories= "$@"
