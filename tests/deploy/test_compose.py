"""docker-compose.yml: parses, wires the services as the issue says, and reads only variables
that .env.example documents. (No Docker engine here: what Compose would do is checked on the
parsed file, with Compose's interpolation rules from ``support.interpolate``.)"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

import pytest
import yaml

from .support import (
    BASE_DIR,
    COMPOSE_FILE,
    MissingVariable,
    compose_env,
    dockerfile_instructions,
    env_example,
    interpolate,
    load_compose,
    referenced_variables,
)

APP_SERVICES = ("ui", "worker", "token-keys")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return compose_env()


@pytest.fixture(scope="module")
def resolved(compose, env) -> dict:
    """The file as ``docker compose config`` would print it for .env.example plus secrets."""
    return interpolate(compose, env)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_it_has_the_services_of_the_issue(compose):
    services = compose["services"]
    assert set(services) == {"registry", "db", "ui", "worker", "token-keys"}
    for name in APP_SERVICES:
        assert services[name]["build"] == "."
        assert services[name]["image"] == services["ui"]["image"]
        assert services[name]["env_file"] == ".env"


def test_third_party_images_are_pinned_to_exact_versions(compose):
    """A floating tag (registry:2, postgres:16-alpine) changes under a running installation at
    the next pull; upgrades are deliberate (docs/OPERATIONS.md, "Upgrading")."""
    services = compose["services"]
    assert re.fullmatch(r"registry:2\.8\.\d+", services["registry"]["image"])
    assert re.fullmatch(r"postgres:16\.\d+-alpine", services["db"]["image"])
    operations = (BASE_DIR / "docs/OPERATIONS.md").read_text()
    for image in (services["registry"]["image"], services["db"]["image"]):
        assert f"`{image}`" in operations  # the upgrade section names the pinned versions


def test_podman_compose_runs_the_same_file(compose):
    """CI runs this very file with podman-compose 1.0.3 (deploy/ci/compose_test.py), which
    ignores profiles, and 1.6.0 crashes on `required: false`: the stack uses neither. 1.0.3
    also leaves a reference with an empty default (``${A:-}``) unexpanded."""
    assert not re.search(r"\$\{\w+:?-\}", COMPOSE_FILE.read_text())
    for name, service in compose["services"].items():
        assert "profiles" not in service, name
        for dependency in (service.get("depends_on") or {}).values():
            assert "required" not in dependency, name


def test_every_variable_it_reads_is_documented_in_env_example(compose):
    _, documented = env_example()
    missing = referenced_variables(compose) - documented
    assert not missing, f"docker-compose.yml reads undocumented variables: {sorted(missing)}"


def _names_read_by(path, pattern: str) -> set[str]:
    return set(re.findall(pattern, (BASE_DIR / path).read_text()))


def test_every_variable_the_app_reads_is_documented_in_env_example():
    _, documented = env_example()
    read = (
        _names_read_by("registryui/settings.py", r'env_\w+\(\s*"([A-Z][A-Z0-9_]*)"')
        | _names_read_by("gunicorn.conf.py", r'(?:_env_int|environ\.get)\(\s*"([A-Z][A-Z0-9_]*)"')
        | _names_read_by("deploy/migrate.py", r'environ\.get\(\s*"([A-Z][A-Z0-9_]*)"')
        | _names_read_by("deploy/healthcheck.py", r'environ\.get\(\s*"([A-Z][A-Z0-9_]*)"')
    )
    read -= {"DJANGO_SETTINGS_MODULE"}  # set by manage.py, wsgi.py and the image
    assert {"SECRET_KEY", "BEHIND_HTTPS_PROXY", "WEB_CONCURRENCY", "DATABASE_WAIT"} <= read
    missing = read - documented
    assert not missing, f"read but not documented in .env.example: {sorted(missing)}"


def test_what_the_registry_entrypoint_reads_comes_from_its_service(compose):
    """Every variable of deploy/registry/entrypoint.sh without a default is given by Compose."""
    script = (BASE_DIR / "deploy/registry/entrypoint.sh").read_text()
    read = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)(?::-[^}]*)?\}", script))
    defaulted = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-", script))
    given = set(environment(compose["services"]["registry"]))
    assert {"TOKEN_AUTH_ENABLED", "TOKEN_REALM", "REGISTRY_READ_ONLY"} <= given
    assert read - defaulted <= given
    # The switches that have defaults in the script are still passed on from .env.
    assert {"TOKEN_AUTH_ENABLED", "TOKEN_SERVICE", "TOKEN_ISSUER", "REGISTRY_READ_ONLY"} <= given


def test_required_secrets_stop_compose_with_a_message(compose):
    for name in (
        "POSTGRES_PASSWORD",
        "REGISTRY_EVENTS_TOKEN",
        "REGISTRY_HTTP_SECRET",
        "ALLOWED_HOSTS",
    ):
        with pytest.raises(MissingVariable, match=f"{name}: set {name} in .env"):
            interpolate(compose, compose_env(**{name: ""}))


def test_services_start_in_order_on_health(compose, resolved):
    services = resolved["services"]
    assert services["ui"]["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services["worker"]["depends_on"] == {
        "ui": {"condition": "service_healthy"},  # healthy = migrated and serving
        "registry": {"condition": "service_healthy"},
    }
    # The token key exists before the registry (which trusts its certificate) and the UI start.
    for name in ("ui", "registry"):
        assert services[name]["depends_on"]["token-keys"] == {
            "condition": "service_completed_successfully"
        }
    assert "pg_isready" in services["db"]["healthcheck"]["test"]
    assert services["registry"]["healthcheck"]["test"][-1] == "http://127.0.0.1:5000/"
    # The ui's health check is the image's HEALTHCHECK command (GET /healthz), more often.
    image_check = next(a for k, a in dockerfile_instructions() if k == "HEALTHCHECK")
    assert (
        json.loads(image_check.partition(" CMD ")[2]) == services["ui"]["healthcheck"]["test"][1:]
    )
    assert services["ui"]["healthcheck"]["test"][0] == "CMD"
    # The worker and the one-shot job serve no HTTP: the image's check would fail forever.
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["token-keys"]["healthcheck"] == {"disable": True}


def test_the_app_talks_to_the_stacks_database_and_registry(resolved, env):
    for name in APP_SERVICES:
        app = environment(resolved["services"][name])
        assert app["DATABASE_URL"] == (
            f"postgres://registryui:{env['POSTGRES_PASSWORD']}@db:5432/registryui"
        )
        assert app["REGISTRY_URL"] == "http://registry:5000"
        # The registry's notifications arrive with Host: ui:8000.
        assert app["ALLOWED_HOSTS"].split(",") == [*env["ALLOWED_HOSTS"].split(","), "ui"]
    db = environment(resolved["services"]["db"])
    assert db == {
        "POSTGRES_DB": "registryui",
        "POSTGRES_USER": "registryui",
        "POSTGRES_PASSWORD": env["POSTGRES_PASSWORD"],
        # Search's prefix ranges are exact under a code-point collation.
        "POSTGRES_INITDB_ARGS": "--encoding=UTF8 --lc-collate=C --lc-ctype=C",
    }


def test_the_registry_notifies_the_ui_with_the_shared_token(resolved, env):
    from django.urls import resolve

    registry = environment(resolved["services"]["registry"])
    endpoints = yaml.safe_load(registry["REGISTRY_NOTIFICATIONS_ENDPOINTS"])
    assert endpoints == [
        {
            "name": "registryui",
            "url": "http://ui:8000/events/registry",
            "headers": {"Authorization": [f"Bearer {env['REGISTRY_EVENTS_TOKEN']}"]},
            "timeout": "5s",
            "threshold": 5,
            "backoff": "10s",
            # Registry 2.8 ignores `actions` unless `mediatypes` is non-empty (checked for real
            # in test_registry_config.py); blob events are of no use to the UI anyway.
            "ignore": {"mediatypes": ["application/octet-stream"], "actions": ["pull"]},
        },
        {
            # Pulls on their own queue (issue 16): never in front of a push event.
            "name": "registryui-pulls",
            "url": "http://ui:8000/events/registry/pulls",
            "headers": {"Authorization": [f"Bearer {env['REGISTRY_EVENTS_TOKEN']}"]},
            "timeout": "2s",
            "threshold": 5,
            "backoff": "5s",
            "ignore": {"mediatypes": ["application/octet-stream"], "actions": ["push", "delete"]},
        },
    ]
    assert resolve("/events/registry").view_name == "events:registry"
    assert resolve("/events/registry/pulls").view_name == "events:registry_pulls"


def test_the_worker_runs_the_sync_loop(resolved):
    assert resolved["services"]["worker"]["command"] == [
        "python", "manage.py", "sync_registry", "--loop", "--interval", "600",
    ]  # fmt: skip
    every_30s = interpolate(load_compose(), compose_env(SYNC_INTERVAL="30"))
    assert every_30s["services"]["worker"]["command"][-1] == "30"
    assert resolved["services"]["ui"]["command"] == ["web"]


def test_the_registry_keeps_its_data_and_config_on_mounts(compose):
    registry = compose["services"]["registry"]
    mounts = {volume.split(":")[1]: volume for volume in registry["volumes"]}
    assert mounts["/var/lib/registry"] == "registry-data:/var/lib/registry"
    source, target, mode = mounts["/etc/registryui"].split(":")
    assert (source, mode) == ("./deploy/registry", "ro")
    assert (BASE_DIR / "deploy/registry/config.yml").is_file()
    assert registry["entrypoint"] == ["/bin/sh", f"{target}/entrypoint.sh"]
    assert registry["command"] == [f"{target}/config.yml"]
    config = yaml.safe_load((BASE_DIR / "deploy/registry/config.yml").read_text())
    assert config["storage"]["delete"] == {"enabled": True}
    assert config["storage"]["filesystem"]["rootdirectory"] == "/var/lib/registry"
    assert config["http"]["addr"] == ":5000"


def test_every_named_volume_is_declared(compose):
    declared = set(compose["volumes"])
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared == {"registry-data", "db-data", "token-key", "token-cert"}
    assert compose["services"]["db"]["volumes"] == ["db-data:/var/lib/postgresql/data"]


def test_token_authentication_is_the_default_with_an_explicit_opt_out(compose, resolved, env):
    registry = environment(resolved["services"]["registry"])
    assert env["TOKEN_AUTH_ENABLED"] == "true"  # .env.example
    for name in APP_SERVICES:
        assert environment(resolved["services"][name])["TOKEN_AUTH_ENABLED"] == "true"
    assert registry["TOKEN_AUTH_ENABLED"] == "true"
    # A .env without the line (older installations) still gets tokens on both sides.
    without = {k: v for k, v in env.items() if k != "TOKEN_AUTH_ENABLED"}
    unset = interpolate(compose, without)
    for name in ("registry", *APP_SERVICES):
        assert environment(unset["services"][name])["TOKEN_AUTH_ENABLED"] == "true", name
    # The opt-out reaches the registry and the app alike.
    off = interpolate(compose, compose_env(TOKEN_AUTH_ENABLED="false"))
    for name in ("registry", *APP_SERVICES):
        assert environment(off["services"][name])["TOKEN_AUTH_ENABLED"] == "false", name


def test_the_registry_http_secret_comes_from_env(resolved, env):
    registry = environment(resolved["services"]["registry"])
    assert registry["REGISTRY_HTTP_SECRET"] == env["REGISTRY_HTTP_SECRET"]
    made = (BASE_DIR / "deploy/make-env.py").read_text()
    assert '"REGISTRY_HTTP_SECRET"' in made  # generated like the other secrets


def test_the_token_keys_job_shares_the_certificate_but_not_the_key(resolved):
    services = resolved["services"]
    app = environment(services["ui"])
    key_dir = str(PurePosixPath(app["TOKEN_KEY_FILE"]).parent)
    cert_dir = str(PurePosixPath(app["TOKEN_CERT_FILE"]).parent)
    for name in APP_SERVICES:
        assert f"token-key:{key_dir}" in services[name]["volumes"]
        assert f"token-cert:{cert_dir}" in services[name]["volumes"]
    registry = services["registry"]
    assert f"token-cert:{cert_dir}:ro" in registry["volumes"]
    assert not any(v.startswith("token-key:") for v in registry["volumes"])
    # The registry's rootcertbundle is the file the UI's token_keys writes.
    assert environment(registry)["TOKEN_CERT_FILE"] == app["TOKEN_CERT_FILE"]
    job = services["token-keys"]
    assert job["command"] == ["token-keys"]
    assert job["restart"] == "no"


def test_published_ports_default_to_loopback(resolved):
    assert resolved["services"]["ui"]["ports"] == ["127.0.0.1:8000:8000"]
    assert resolved["services"]["registry"]["ports"] == ["127.0.0.1:5000:5000"]
    assert "ports" not in resolved["services"]["db"]
    changed = interpolate(load_compose(), compose_env(UI_BIND="192.0.2.10", UI_PORT="80"))
    assert changed["services"]["ui"]["ports"] == ["192.0.2.10:80:8000"]


def test_interpolation_follows_composes_rules():
    from .support import interpolate_text

    env = {"SET": "x", "EMPTY": ""}
    assert interpolate_text("${SET:-d} ${EMPTY:-d} ${UNSET:-d} ${EMPTY-d} ${UNSET-d}", env) == (
        "x d d  d"
    )
    assert interpolate_text("${SET:+y}|${EMPTY:+y}|$SET|$$SET", env) == "y||x|$SET"
    with pytest.raises(MissingVariable, match="EMPTY: needed"):
        interpolate_text("${EMPTY:?needed}", env)
    assert referenced_variables({"a": ["${A:-b}", "$C $$D"]}) == {"A", "C"}
    # Compose allows nesting; our reader does not, so it must say so rather than misread.
    with pytest.raises(ValueError, match="nested"):
        referenced_variables("${A:-${B}}")
