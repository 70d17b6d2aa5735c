"""``make demo``: a real local registry with sample images, synced, served by gunicorn.

Starts ``docker-registry`` on 127.0.0.1 with storage under ``var/demo/``, pushes the sample
images with skopeo, migrates, creates a demo login, syncs, and serves the UI on
http://127.0.0.1:8000 until Ctrl-C, which stops both processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
VAR = BASE_DIR / "var" / "demo"
REGISTRY_PORT = int(os.environ.get("DEMO_REGISTRY_PORT", "5000"))
UI_ADDRESS = os.environ.get("DEMO_BIND", "127.0.0.1:8000")
EVENTS_TOKEN = "demo-events-token"  # noqa: S105 - a local demo secret, printed below
DEMO_USER, DEMO_PASSWORD = "admin", "registryui-demo"


def main() -> int:
    missing = [tool for tool in ("docker-registry", "skopeo") if shutil.which(tool) is None]
    if missing:
        print(
            f"The demo needs {' and '.join(missing)}, which this machine lacks. Install with:\n\n"
            "    sudo apt-get install -y docker-registry skopeo\n",
            file=sys.stderr,
        )
        return 1

    VAR.mkdir(parents=True, exist_ok=True)
    secret_file = VAR / "secret_key"
    if not secret_file.exists():
        import secrets

        secret_file.write_text(secrets.token_urlsafe(50))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "registryui.settings",
        "REGISTRY_URL": f"http://127.0.0.1:{REGISTRY_PORT}",
        "REGISTRY_PUBLIC_HOST": os.environ.get("REGISTRY_PUBLIC_HOST", f"127.0.0.1:{REGISTRY_PORT}"),
        "REGISTRY_EVENTS_TOKEN": EVENTS_TOKEN,
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{VAR / 'registryui.sqlite3'}"),
        "STATIC_ROOT": str(VAR / "staticfiles"),
        "DEBUG": os.environ.get("DEBUG", "false"),
        "SECRET_KEY_FILE": str(secret_file),
    }
    os.environ.update(env)

    from registryui.devtools.registry import RegistryProcess
    from registryui.devtools.samples import push_samples

    registry = RegistryProcess(
        VAR / "registry",
        port=REGISTRY_PORT,
        notifications=[
            {
                "name": "registryui",
                "url": f"http://{UI_ADDRESS}/events/registry",
                "headers": {"Authorization": [f"Bearer {EVENTS_TOKEN}"]},
                "timeout": "2s",
                "threshold": 5,
                "backoff": "2s",
                "ignore": {"actions": ["pull"]},
            }
        ],
    )
    print(f"Starting the registry on {registry.url} (storage: {registry.storage})")
    registry.start()
    gunicorn = None
    try:
        print("Pushing sample images with skopeo ...")
        push_samples(registry.host, VAR)
        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], check=True, env=env)
        subprocess.run([*manage, "collectstatic", "--no-input", "-v", "0"], check=True, env=env)
        subprocess.run([*manage, "demo_data", "--password", DEMO_PASSWORD], check=True, env=env)
        subprocess.run([*manage, "sync_registry"], check=False, env=env)
        print(
            f"\nRegistry UI: http://{UI_ADDRESS}/  (log in as {DEMO_USER} / {DEMO_PASSWORD})\n"
            f"Registry:    {registry.url}  (push with: skopeo copy --dest-tls-verify=false ...)\n"
            "Press Ctrl-C to stop both.\n"
        )
        gunicorn = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "registryui.wsgi",
                "--bind", UI_ADDRESS,
                "--workers", "2",
                "--access-logfile", "-",
            ],
            env=env,
            cwd=BASE_DIR,
        )
        gunicorn.wait()
    except KeyboardInterrupt:
        print("\nStopping ...")
    finally:
        if gunicorn is not None and gunicorn.poll() is None:
            gunicorn.send_signal(signal.SIGTERM)
            try:
                gunicorn.wait(timeout=10)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
