#!/bin/sh
# Entry point of the `registry` service in docker-compose.yml: the static config.yml next to
# this file, plus two switches from the environment (the .env file):
#
#   REGISTRY_READ_ONLY=true   refuse pushes and deletes while the garbage collector runs
#   TOKEN_AUTH_ENABLED=true   docker push/pull need a token from Registry UI (auth.token):
#                             realm TOKEN_REALM, service TOKEN_SERVICE, issuer TOKEN_ISSUER,
#                             rootcertbundle TOKEN_CERT_FILE (written by the token-keys service)
#
# The notification endpoint comes in REGISTRY_NOTIFICATIONS_ENDPOINTS, which the registry reads
# itself. Distribution overrides any config.yml key from REGISTRY_<PATH> variables.
#
# Usage: entrypoint.sh [CONFIG]   (default /etc/registryui/config.yml)
set -eu
config="${1:-/etc/registryui/config.yml}"

is_true() {
    case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in
        true | on | yes | 1) return 0 ;;
        *) return 1 ;;
    esac
}

if is_true "${REGISTRY_READ_ONLY:-false}"; then
    export REGISTRY_STORAGE_MAINTENANCE_READONLY='{"enabled": true}'
    echo "registry: read-only mode: pulls work, pushes and deletes are refused" >&2
fi

if is_true "${TOKEN_AUTH_ENABLED:-false}"; then
    realm="${TOKEN_REALM:-}"
    case "$realm" in
        http://*/auth/token | https://*/auth/token) ;;
        *)
            echo "registry: TOKEN_REALM='$realm' must be the URL of Registry UI's /auth/token" \
                "as docker clients reach it, e.g. https://registry-ui.example.com/auth/token" >&2
            exit 1
            ;;
    esac
    cert="${TOKEN_CERT_FILE:-/keys/public/cert.pem}"
    # The token-keys service writes the certificate; docker-compose.yml starts us after it.
    wait="${TOKEN_CERT_WAIT:-30}"
    while [ ! -s "$cert" ] && [ "$wait" -gt 0 ]; do
        sleep 1
        wait=$((wait - 1))
    done
    if [ ! -s "$cert" ]; then
        echo "registry: TOKEN_AUTH_ENABLED is true but $cert does not exist: the token-keys" \
            "service creates it (docker compose logs token-keys)." >&2
        exit 1
    fi
    export REGISTRY_AUTH_TOKEN_REALM="$realm"
    export REGISTRY_AUTH_TOKEN_SERVICE="${TOKEN_SERVICE:-registry}"
    export REGISTRY_AUTH_TOKEN_ISSUER="${TOKEN_ISSUER:-registryui}"
    export REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE="$cert"
    echo "registry: token authentication, realm $realm" >&2
fi

# Our own switch is no registry setting: the registry would log it as unrecognized.
unset REGISTRY_READ_ONLY
exec registry serve "$config"
