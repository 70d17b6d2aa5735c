"""Production settings, checked the way an operator meets them: ``manage.py check --deploy``
and start-up, in subprocesses with a clean environment built from .env.example."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from registryui.devtools.registry import free_port

from .support import BASE_DIR, app_env, compose_env, token_key_files, wait_until

MANAGE = [str(BASE_DIR / ".venv/bin/python"), str(BASE_DIR / "manage.py")]


def documented_production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """.env.example as an operator fills it in (secrets set), outside Compose, with the token
    key pair that `manage.py token_keys` makes (token authentication is on in .env.example)."""
    values = compose_env()
    values.update(
        **token_key_files(tmp_path, values["TOKEN_ISSUER"]),
        VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **overrides,
    )
    return app_env(**values)


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MANAGE, "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BASE_DIR,
    )


def test_check_deploy_is_clean_with_the_documented_variables(tmp_path):
    done = check_deploy(documented_production_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    # HSTS preload and includeSubDomains are off in .env.example: a choice, not a warning.
    assert "System check identified no issues (2 silenced)." in done.stdout


def test_check_deploy_names_what_a_plain_http_setup_lacks(tmp_path):
    done = check_deploy(documented_production_env(tmp_path, BEHIND_HTTPS_PROXY="false"))
    assert done.returncode != 0
    # HTTPS redirect, secure session and CSRF cookies (HSTS is set in .env.example anyway).
    for warning in ("security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr, warning


def test_a_weak_key_is_a_deploy_warning(tmp_path):
    done = check_deploy(documented_production_env(tmp_path, SECRET_KEY="short-key"))
    assert done.returncode != 0
    assert "security.W009" in done.stderr


def test_hsts_preload_and_subdomains_are_off_unless_turned_on(tmp_path):
    unset = documented_production_env(tmp_path)
    del unset["SECURE_HSTS_PRELOAD"], unset["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_PRELOAD, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_SECONDS)"
    )
    done = subprocess.run(
        [*MANAGE, "shell", "-c", code],
        env=unset,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BASE_DIR,
    )
    assert done.stdout.split()[-3:] == ["False", "False", "31536000"], done.stdout + done.stderr
    turned_on = documented_production_env(
        tmp_path, SECURE_HSTS_PRELOAD="true", SECURE_HSTS_INCLUDE_SUBDOMAINS="true"
    )
    done = check_deploy(turned_on)
    assert done.returncode == 0, done.stderr
    assert "(0 silenced)" in done.stdout


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        (None, "the default SECRET_KEY"),
        ("", "no SECRET_KEY"),
        ("change-me-to-a-long-random-string", "the default SECRET_KEY"),  # old .env.example
    ],
)
def test_it_refuses_to_start_with_the_default_secret_key(tmp_path, secret, says):
    env = documented_production_env(tmp_path)
    env.pop("SECRET_KEY")
    if secret is not None:
        env["SECRET_KEY"] = secret
    done = subprocess.run(
        [*MANAGE, "check"], env=env, capture_output=True, text=True, timeout=120, cwd=BASE_DIR
    )
    assert done.returncode != 0
    assert f"ImproperlyConfigured: Refusing to start with DEBUG off and {says}" in done.stderr


def test_the_default_key_is_fine_for_development_and_a_key_file_for_production(tmp_path):
    env = documented_production_env(tmp_path, DEBUG="true", BEHIND_HTTPS_PROXY="false")
    env.pop("SECRET_KEY")
    run = [*MANAGE, "check"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    key_file = tmp_path / "secret_key"
    key_file.write_text(compose_env()["SECRET_KEY"] + "\n")
    env = documented_production_env(tmp_path, SECRET_KEY_FILE=str(key_file))
    env.pop("SECRET_KEY")
    done = check_deploy(env)
    assert done.returncode == 0, done.stderr


def test_gunicorn_refuses_to_start_with_the_default_secret_key(tmp_path):
    env = documented_production_env(tmp_path, GUNICORN_BIND=f"127.0.0.1:{free_port()}")
    env.pop("SECRET_KEY")
    server = subprocess.Popen(
        [str(BASE_DIR / ".venv/bin/gunicorn"), "--config", "gunicorn.conf.py", "registryui.wsgi"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode != 0
    assert "Refusing to start with DEBUG off and the default SECRET_KEY" in output


def test_log_format_typos_are_an_error(tmp_path):
    env = documented_production_env(tmp_path, LOG_FORMAT="xml")
    done = subprocess.run(
        [*MANAGE, "check"], env=env, capture_output=True, text=True, timeout=120, cwd=BASE_DIR
    )
    assert done.returncode != 0
    assert "LOG_FORMAT='xml': use json or plain." in done.stderr


def test_the_app_logs_json_lines_to_stdout(tmp_path):
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('registryui.test').warning('hello %s', 'world', extra={'repo': 'a/b'})"
    )
    done = subprocess.run(
        [str(BASE_DIR / ".venv/bin/python"), "-c", code],
        env=documented_production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BASE_DIR,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    import json

    (line,) = done.stdout.splitlines()
    record = json.loads(line)
    assert record["message"] == "hello world"
    assert record["level"] == "WARNING"
    assert record["logger"] == "registryui.test"
    assert record["repo"] == "a/b"


def test_middleware_order(settings):
    middleware = settings.MIDDLEWARE
    assert middleware[0] == "registryui.core.middleware.TrustedProxyMiddleware"
    assert middleware[1] == "django.middleware.security.SecurityMiddleware"
    assert middleware[2] == "registryui.ops.metrics.RequestMetricsMiddleware"
    # Before WhiteNoise, which answers static files without calling later middleware.
    assert middleware.index("registryui.core.middleware.SecurityHeadersMiddleware") < (
        middleware.index("whitenoise.middleware.WhiteNoiseMiddleware")
    )


def test_the_csp_allows_nothing_inline_or_foreign(settings):
    policy = settings.CONTENT_SECURITY_POLICY
    for directive in ("default-src", "script-src", "style-src", "connect-src", "font-src"):
        assert policy[directive] == ["'self'"], directive
    assert policy["object-src"] == policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    everything = " ".join(" ".join(v) for v in policy.values())
    assert "unsafe" not in everything and "*" not in everything and "http" not in everything


def test_wait_until_gives_up_with_a_message():
    with pytest.raises(AssertionError, match="waiting for nothing"):
        wait_until(lambda: False, timeout=0.2, what="nothing")
