# Sourced by deploy/backup.sh and deploy/restore.sh: finds the running container of a service of
# the Compose stack by the labels both docker compose and podman-compose put on containers.
engine="${CONTAINER_ENGINE:-docker}"
# Compose's default project name: the folder's name, lower case, without other characters
# than letters, digits, "-" and "_".
project="${COMPOSE_PROJECT_NAME:-$(basename "$PWD" | tr '[:upper:]' '[:lower:]' | tr -cd 'a-z0-9_-')}"

stack_container() {
    id="$("$engine" ps --quiet --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=$1" | head -n 1)"
    if [ -z "$id" ]; then
        echo "no running $1 container in the Compose project '$project'" \
            "(set COMPOSE_PROJECT_NAME, or start it: docker compose up -d $1)" >&2
        return 1
    fi
    printf '%s\n' "$id"
}
