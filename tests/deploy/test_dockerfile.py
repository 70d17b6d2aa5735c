"""The Dockerfile, checked without a Docker engine: its instructions parsed, and the commands
that can run here (dependency extraction, collectstatic) run exactly as written."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

from .support import (
    BASE_DIR,
    app_env,
    collect_static_like_the_image,
    dockerfile_env,
    dockerfile_instructions,
    dockerfile_run_step,
)


def keywords() -> list[str]:
    return [keyword for keyword, _ in dockerfile_instructions()]


def first(keyword: str) -> str:
    return next(args for k, args in dockerfile_instructions() if k == keyword)


def test_it_builds_on_a_slim_python_the_project_supports():
    image = first("FROM")
    match = re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?", image)
    assert match, image
    required = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    assert required == ">=3.11" and int(match[1]) >= 11
    assert keywords().count("FROM") == 1


def test_it_runs_as_an_unprivileged_user():
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER instruction: the container would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit() and int(gid) >= 1000
    setup = dockerfile_run_step("useradd")
    assert f"--uid {uid}" in setup and f"--gid {gid}" in setup
    # The token-keys job hands key files to this same user.
    assert f'app_user="{uid}:{gid}"' in (BASE_DIR / "deploy/entrypoint.sh").read_text()
    # Everything after USER runs unprivileged: no RUN may come later.
    assert "RUN" not in keywords()[keywords().index("USER") :]


def test_dependencies_come_from_pyproject_before_the_code(tmp_path):
    order = [
        (keyword, args) for keyword, args in dockerfile_instructions() if keyword in ("COPY", "RUN")
    ]
    assert order[0] == ("COPY", "pyproject.toml ./")
    install = order[1][1]
    assert "pip install --requirement" in install
    assert order[2] == ("COPY", ". .")
    # The extraction command, run as written, yields exactly pyproject's dependencies.
    extract = install.split(" && ")[0].replace("/tmp/requirements.txt", str(tmp_path / "req"))
    subprocess.run(["sh", "-c", extract], cwd=BASE_DIR, env=app_env(), check=True, timeout=60)
    expected = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]["dependencies"]
    assert (tmp_path / "req").read_text().splitlines() == expected
    assert any(line.startswith("gunicorn") for line in expected)


def test_static_files_are_collected_at_build_time(tmp_path):
    step = dockerfile_run_step("collectstatic")
    assert step.index("collectstatic") > 0
    assert keywords().index("RUN") < keywords().index("USER")
    assert dockerfile_env()["STATIC_ROOT"] == "/app/staticfiles"
    # The step, run as the image runs it: no SECRET_KEY in the build, DEBUG off.
    collect_static_like_the_image(tmp_path / "static")
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    assert "admin/css/base.css" in manifest["paths"]
    hashed = manifest["paths"]["admin/css/base.css"]
    assert (tmp_path / "static" / hashed).is_file()
    assert (tmp_path / "static" / f"{hashed}.gz").is_file()  # compressed for WhiteNoise


def test_gunicorn_is_the_entry_point_with_migrations_first():
    assert json.loads(first("ENTRYPOINT")) == ["/bin/sh", "/app/deploy/entrypoint.sh"]
    assert json.loads(first("CMD")) == ["web"]
    script = (BASE_DIR / "deploy/entrypoint.sh").read_text()
    web = script[script.index("web)") : script.index(";;", script.index("web)"))]
    steps = [line.strip() for line in web.splitlines()[1:] if line.strip()]
    steps = [s for s in steps if not s.startswith("#")]
    assert steps == [
        "python manage.py check --deploy",
        "python deploy/migrate.py",
        "exec gunicorn --config gunicorn.conf.py registryui.wsgi",
    ]
    assert first("EXPOSE") == "8000"
    assert (
        'bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")'
        in (BASE_DIR / "gunicorn.conf.py").read_text()
    )


def test_the_health_check_asks_healthz_with_python():
    check = first("HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert json.loads(command) == ["python", "/app/deploy/healthcheck.py"]
    for option in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert option in options
    assert '/healthz"' in (BASE_DIR / "deploy/healthcheck.py").read_text()


def test_the_build_context_leaves_out_secrets_and_local_state():
    ignored = {
        line.strip()
        for line in (BASE_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".env.*", ".git", ".venv", "var", "tests", "test-artifacts"} <= ignored
    needed = {"registryui", "templates", "static", "deploy", "manage.py", "gunicorn.conf.py"}
    assert not needed & ignored
    assert "pyproject.toml" not in ignored
