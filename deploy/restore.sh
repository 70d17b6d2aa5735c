#!/bin/sh
# Restore a backup of deploy/backup.sh into the Compose stack: the database (pg_restore, which
# replaces what is there) and the registry's storage (extracted into the registry-data volume).
# Run from the folder of docker-compose.yml with db and registry running, best in a fresh stack:
#
#   docker compose up -d db registry
#   deploy/restore.sh backups/2026-12-01T020000Z
#   docker compose up -d
#   docker compose exec ui python manage.py sync_registry
#
# Environment: as deploy/backup.sh (CONTAINER_ENGINE, COMPOSE_PROJECT_NAME).
set -eu
cd "$(dirname "$0")/.."
. deploy/stack-containers.sh

folder="${1:?usage: deploy/restore.sh FOLDER (made by deploy/backup.sh)}"
for file in registryui.dump registry-data.tar; do
    [ -s "$folder/$file" ] || { echo "restore: $folder/$file is missing or empty" >&2; exit 1; }
done
db="$(stack_container db)"
registry="$(stack_container registry)"

echo "restore: database <- $folder/registryui.dump" >&2
"$engine" exec -i "$db" pg_restore --username registryui --dbname registryui --clean \
    --if-exists --no-owner --exit-on-error <"$folder/registryui.dump"

echo "restore: registry storage <- $folder/registry-data.tar" >&2
"$engine" exec -i "$registry" tar -xf - -C /var/lib/registry <"$folder/registry-data.tar"
# The registry caches blob descriptors in memory: start it afresh on the restored files.
"$engine" restart "$registry" >/dev/null
echo "restore: done; start the rest (docker compose up -d) and run one sync_registry" >&2
