#!/bin/sh
# Entry point of the Registry UI image (see Dockerfile and docker-compose.yml).
#
#   web (default)  report deployment problems, migrate (one replica at a time), serve with gunicorn
#   token-keys     create the token signing key and certificate once (the compose service of
#                  that name, at every start); `token-keys --force` replaces them
#   anything else  runs as given, e.g. `python manage.py sync_registry --loop --interval 600`
set -eu
cd "$(dirname "$0")/.."  # the project folder (/app in the image)

is_true() {
    case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in
        true | on | yes | 1) return 0 ;;
        *) return 1 ;;
    esac
}

case "${1:-web}" in
web)
    # Warnings (an unsafe setting) go to the log; errors (e.g. missing token keys) stop here.
    python manage.py check --deploy
    python deploy/migrate.py
    exec gunicorn --config gunicorn.conf.py registryui.wsgi
    ;;
token-keys)
    if ! is_true "${TOKEN_AUTH_ENABLED:-false}"; then
        # The stack's opt-out: success, so that the services waiting for this job start.
        echo "token-keys: TOKEN_AUTH_ENABLED is not true: the registry accepts anyone, no key" \
            "is needed. Nothing to do."
        exit 0
    fi
    key="${TOKEN_KEY_FILE:?TOKEN_KEY_FILE is not set}"
    cert="${TOKEN_CERT_FILE:?TOKEN_CERT_FILE is not set}"
    app_user="10001:10001"  # the image's user (Dockerfile)
    if [ "$(id -u)" = 0 ]; then
        # Named volumes are created owned by root when another image mounts them first: give
        # the folders to the app's user, who must read the key.
        mkdir -p "$(dirname "$key")" "$(dirname "$cert")"
        chown "$app_user" "$(dirname "$key")" "$(dirname "$cert")"
        chmod 0700 "$(dirname "$key")"
        chmod 0755 "$(dirname "$cert")"
    fi
    if [ "${2:-}" = "--force" ]; then
        python manage.py token_keys --force
    elif [ -s "$key" ] && [ -s "$cert" ]; then
        echo "token-keys: keeping the existing key $key and certificate $cert."
    else
        python manage.py token_keys
    fi
    if [ "$(id -u)" = 0 ]; then
        chown "$app_user" "$key" "$cert"
    fi
    ;;
*)
    exec "$@"
    ;;
esac
