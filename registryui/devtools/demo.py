"""``make demo``: a real local registry with sample images, synced, served by gunicorn.

Starts ``docker-registry`` on 127.0.0.1 with storage under ``var/demo/``, pushes the sample
images with skopeo, migrates, creates a demo login, syncs, and serves the UI on
http://127.0.0.1:8000 with a sync worker beside it, until Ctrl-C, which stops them all.
``DEMO_REGISTRY_PORT``, ``DEMO_BIND`` and ``DEMO_VAR_DIR`` move it elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("DEMO_VAR_DIR", str(BASE_DIR / "var" / "demo")))
REGISTRY_PORT = int(os.environ.get("DEMO_REGISTRY_PORT", "5000"))
UI_ADDRESS = os.environ.get("DEMO_BIND", "127.0.0.1:8000")
EVENTS_TOKEN = "demo-events-token"  # noqa: S105 - a local demo secret, printed below
DEMO_USER, DEMO_PASSWORD = "admin", "registryui-demo"


def notification_endpoint(ui_address: str, token: str = EVENTS_TOKEN) -> dict[str, Any]:
    """The registry's notification endpoint for the UI at ``ui_address`` (host:port)."""
    return {
        "name": "registryui",
        "url": f"http://{ui_address}/events/registry",
        "headers": {"Authorization": [f"Bearer {token}"]},
        "timeout": "2s",
        "threshold": 5,
        "backoff": "2s",
        # Registry 2.8 applies ignore.actions only when ignore.mediatypes is not empty: without
        # it every sync HEAD would come back as a pull event. Blob events are of no use here.
        "ignore": {"mediatypes": ["application/octet-stream"], "actions": ["pull"]},
    }


def pull_endpoint(ui_address: str, token: str = EVENTS_TOKEN) -> dict[str, Any]:
    """The second endpoint, for pulls only (issue 16): its own queue, so that a storm of pulls
    never delays a push event. ``ignore`` drops pushes and deletes here (and blob pulls, the
    layers of a pull whose manifest GET is counted); 2.8 needs the media type for the actions
    to apply. A short timeout and backoff: a pull lost to a slow UI costs little."""
    return {
        "name": "registryui-pulls",
        "url": f"http://{ui_address}/events/registry/pulls",
        "headers": {"Authorization": [f"Bearer {token}"]},
        "timeout": "2s",
        "threshold": 5,
        "backoff": "2s",
        "ignore": {"mediatypes": ["application/octet-stream"], "actions": ["push", "delete"]},
    }


def pull_samples(host: str, references: list[str], *, times: int = 3) -> None:
    """Pull a few sample images with skopeo (manifest GETs), so that the demo shows pull
    counts, a sparkline and images that are not stale."""
    for reference in references:
        for _ in range(times):
            subprocess.run(
                [
                    "skopeo",
                    "inspect",
                    "--tls-verify=false",
                    "--raw",
                    f"docker://{host}/{reference}",
                ],
                check=False,
                capture_output=True,
                timeout=60,
            )


def _port_taken(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host or "127.0.0.1", int(port)))
        except OSError:
            return True
    return False


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    # A supervisor's SIGTERM ends the demo like Ctrl-C does: every process is stopped.
    raise KeyboardInterrupt


def seed_builds(url: str) -> None:
    """A CI repository with 60 builds (``build-0`` … ``build-59``, the last 20 on one image):
    shows the tags table's filter, natural order, flat view and collapsed groups."""
    from registryui.devtools.seed import Seeder
    from registryui.registry import RegistryClient

    with RegistryClient(url) as client:
        Seeder(client).put_many(
            ("team-a/ci", f"build-{i}", "release" if i >= 40 else None) for i in range(60)
        )


def main() -> int:
    missing = [tool for tool in ("docker-registry", "skopeo") if shutil.which(tool) is None]
    if missing:
        print(
            f"The demo needs {' and '.join(missing)}, which this machine lacks. Install with:\n\n"
            "    sudo apt-get install -y docker-registry skopeo\n",
            file=sys.stderr,
        )
        return 1
    for address, variable in (
        (f"127.0.0.1:{REGISTRY_PORT}", "DEMO_REGISTRY_PORT"),
        (UI_ADDRESS, "DEMO_BIND"),
    ):
        if _port_taken(address):
            print(
                f"{address} is already in use. Stop what listens there, or choose another "
                f"address, e.g.: make demo {variable}="
                + ("5001" if variable == "DEMO_REGISTRY_PORT" else "127.0.0.1:8001"),
                file=sys.stderr,
            )
            return 1
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    VAR.mkdir(parents=True, exist_ok=True)
    secret_file = VAR / "secret_key"
    if not secret_file.exists():
        import secrets

        secret_file.write_text(secrets.token_urlsafe(50))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "registryui.settings",
        "REGISTRY_URL": f"http://127.0.0.1:{REGISTRY_PORT}",
        "REGISTRY_PUBLIC_HOST": os.environ.get(
            "REGISTRY_PUBLIC_HOST", f"127.0.0.1:{REGISTRY_PORT}"
        ),
        "REGISTRY_EVENTS_TOKEN": EVENTS_TOKEN,
        "PULL_TRACKING": "true",
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{VAR / 'registryui.sqlite3'}"),
        "STATIC_ROOT": str(VAR / "staticfiles"),
        "DEBUG": os.environ.get("DEBUG", "false"),
        "SECRET_KEY_FILE": str(secret_file),
        # Readable lines in a terminal; production logs are JSON.
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "plain"),
    }
    os.environ.update(env)

    from registryui.devtools.registry import RegistryProcess
    from registryui.devtools.samples import push_attached, push_samples

    registry = RegistryProcess(
        VAR / "registry",
        port=REGISTRY_PORT,
        notifications=[notification_endpoint(UI_ADDRESS), pull_endpoint(UI_ADDRESS)],
    )
    print(f"Starting the registry on {registry.url} (storage: {registry.storage})", flush=True)
    registry.start()
    gunicorn = worker = None
    try:
        print("Pushing sample images with skopeo ...", flush=True)
        push_samples(registry.host, VAR)
        seed_builds(registry.url)
        push_attached(registry.url)  # signatures, SBOMs, provenance, a Helm chart
        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], check=True, env=env)
        subprocess.run([*manage, "collectstatic", "--no-input", "-v", "0"], check=True, env=env)
        subprocess.run([*manage, "demo_data", "--password", DEMO_PASSWORD], check=True, env=env)
        subprocess.run([*manage, "sync_registry"], check=False, env=env)
        print(
            f"\nRegistry UI: http://{UI_ADDRESS}/  (log in as {DEMO_USER} / {DEMO_PASSWORD})\n"
            f"Registry:    {registry.url}  (push with: skopeo copy --dest-tls-verify=false ...)\n"
            "Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        # The sync worker reconciles every five minutes and runs the status page's "Sync now";
        # pushes show up at once through the registry's notifications.
        worker = subprocess.Popen(
            [*manage, "sync_registry", "--loop", "--interval", "300"], env=env, cwd=BASE_DIR
        )
        gunicorn = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "registryui.wsgi",
                "--bind",
                UI_ADDRESS,
                "--workers",
                "2",
                "--access-logfile",
                "-",
            ],
            env=env,
            cwd=BASE_DIR,
        )
        # A few real pulls for the pull counts and the sparkline; the registry delivers them
        # (retrying until gunicorn answers).
        pull_samples(registry.host, ["team-a/api:1.5", "team-a/api:latest", "team-a/web:2.0"])
        gunicorn.wait()
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
    finally:
        for process in (gunicorn, worker):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (gunicorn, worker):
            if process is not None:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        registry.stop()
        print("Stopped the UI, the sync worker and the registry.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
