#!/bin/sh
# Back up the Compose stack into one folder: the database (pg_dump, custom format) and the
# registry's storage (a tar of the registry-data volume). Run from the folder of
# docker-compose.yml while the stack runs; docs/OPERATIONS.md, "Backups", says what else to
# keep and how to restore (deploy/restore.sh).
#
#   deploy/backup.sh [FOLDER]        default: backups/<UTC date and time>
#
# The database is dumped first, then the storage's tag and manifest links, then its blobs: an
# image pushed meanwhile is either whole in the copy or not in it at all, and whatever the
# dump lacks the next sync adds. Garbage collection must not run during the backup.
#
# Environment: CONTAINER_ENGINE (default docker; podman works), COMPOSE_PROJECT_NAME (default:
# as Compose names the project, from this folder's name).
set -eu
cd "$(dirname "$0")/.."
. deploy/stack-containers.sh

folder="${1:-backups/$(date -u +%Y-%m-%dT%H%M%SZ)}"
mkdir -p "$folder"
db="$(stack_container db)"
registry="$(stack_container registry)"

echo "backup: database -> $folder/registryui.dump" >&2
"$engine" exec "$db" pg_dump --username registryui --format custom registryui \
    >"$folder/registryui.dump.partial"
mv "$folder/registryui.dump.partial" "$folder/registryui.dump"

echo "backup: registry storage -> $folder/registry-data.tar" >&2
# shellcheck disable=SC2016  # expanded by the container's shell
"$engine" exec "$registry" sh -c '
    cd /var/lib/registry
    set --
    for part in docker/registry/v2/repositories docker/registry/v2/blobs; do
        if [ -e "$part" ]; then set -- "$@" "$part"; fi
    done
    if [ $# -eq 0 ]; then exec tar -cf - -T /dev/null; fi
    exec tar -cf - "$@"
' >"$folder/registry-data.tar.partial"
mv "$folder/registry-data.tar.partial" "$folder/registry-data.tar"
echo "backup: done: $folder" >&2
