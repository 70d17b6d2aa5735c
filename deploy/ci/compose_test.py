#!/usr/bin/env python3
"""The Compose stack, run for real: ``make compose-test`` (CI runs it after the suite).

docker-compose.yml and the Dockerfile run unchanged under podman and podman-compose (Debian's
1.0.3): the image is built, the stack started, and each check below is an assertion against
the running containers, through the published ports and through Caddy's TLS in front
(deploy/caddy/Caddyfile). No container registry is reachable from CI, so the base images are
stand-ins built from Debian packages (deploy/ci/*.Containerfile) under the names the project's
files use.

Checks, in order (one stack, upgraded, then restored into a second one):

1. The image of the previous commit starts the stack; this commit's image then starts with two
   ui replicas at once, and every new migration is applied exactly once.
2. The UI answers on the published port and through TLS; /healthz says the registry is
   reachable; the first admin is created as the README says.
3. A ``skopeo copy`` shows up in the UI within seconds (the registry's notification).
4. Token authentication: a team member pulls and pushes exactly what the team grants.
5. ``podman-compose restart registry`` loses an undelivered event; the worker's next full sync
   ("Sync now" on the status page) reconciles.
6. ``down`` and ``up`` again keeps every row and image.
7. deploy/backup.sh, then deploy/restore.sh into a fresh stack: same repositories, images pull.

Everything it starts (containers, networks, volumes, Caddy) is removed at the end, also on
failure, after printing the containers' logs. Images are kept as a cache (stand-ins under
their Docker Hub names and ``localhost/registryui-ci/*``), and so is the Debian root file system
(REGISTRYUI_CI_CACHE, default /var/cache/registryui-ci). Podman is configured only through
files in a temporary folder (CONTAINERS_CONF, CONTAINERS_REGISTRIES_CONF).

Environment: COMPOSE_TEST_PREVIOUS (default HEAD~1: the commit whose image is upgraded),
COMPOSE_TEST_KEEP=1 (leave the stack running on failure, for a look), DEBIAN_MIRROR.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))  # this checkout's registryui, whatever the venv has installed

from registryui.devtools.images import ImageSpec, Layout  # noqa: E402

CI_DIR = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("REGISTRYUI_CI_CACHE", "/var/cache/registryui-ci"))
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
PREFIX = "registryui-ci"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

#: Everything the three stand-ins need, installed once into one minimal Debian root file system.
BASE_PACKAGES = (
    "ca-certificates",
    "python3",
    "python3-venv",
    "docker-registry",
    "wget",
    "postgresql-15",
)

#: podman's defaults that this sandbox refuses: ulimits above what root may set, crun (which
#: rejects the host's hybrid cgroups), journald and systemd (absent). netavark gives the
#: containers of a stack DNS names for each other (CNI has no DNS plugin here).
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
{init_path}
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
"""

#: Short names (registry:2.8.3) resolve to the local stand-ins; nothing is ever pulled.
REGISTRIES_CONF = 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n'


class CheckFailed(AssertionError):
    pass


def log(message: str) -> None:
    print(f"[compose-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def check(condition: Any, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float, interval: float = 0.5) -> Any:
    """Call ``probe`` until it returns something true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except (requests.RequestException, subprocess.SubprocessError, ValueError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


class Timer:
    """Wall time of each phase, printed at the end."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.phases: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        log(f"== {name}")
        began = time.monotonic()
        try:
            yield
        finally:
            self.phases.append((name, time.monotonic() - began))

    def report(self) -> str:
        lines = [f"  {seconds:6.1f} s  {name}" for name, seconds in self.phases]
        lines.append(f"  {time.monotonic() - self.start:6.1f} s  total")
        return "\n".join(lines)


class Podman:
    """podman and podman-compose with this test's own configuration files."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        init = shutil.which("catatonit")
        conf = workdir / "containers.conf"
        conf.write_text(CONTAINERS_CONF.format(init_path=f'init_path = "{init}"' if init else ""))
        registries = workdir / "registries.conf"
        registries.write_text(REGISTRIES_CONF)
        policy = workdir / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        auth = workdir / "auth.json"
        auth.write_text("{}")
        self.policy = policy
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(conf),
            "CONTAINERS_REGISTRIES_CONF": str(registries),
            "REGISTRY_AUTH_FILE": str(auth),
        }

    def run(
        self, *args: str, check: bool = True, capture: bool = True, timeout: float = 300, **kw
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            args,
            env=kw.pop("env", self.env),
            capture_output=capture,
            text=True,
            timeout=timeout,
            **kw,
        )
        if check and done.returncode != 0:
            output = (done.stdout or "") + (done.stderr or "") if capture else ""
            raise CheckFailed(f"{' '.join(args)} exited {done.returncode}:\n{output[-4000:]}")
        return done

    def podman(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("podman", *args, **kw)

    def image_exists(self, name: str) -> bool:
        return self.podman("image", "exists", name, check=False).returncode == 0


# -- Images ------------------------------------------------------------------------------------


def base_image(pm: Podman) -> str:
    """The minimal Debian bookworm image with BASE_PACKAGES, made once and cached."""
    key = hashlib.sha256(" ".join((MIRROR, *BASE_PACKAGES)).encode()).hexdigest()[:12]
    name = f"localhost/{PREFIX}/bookworm-base:{key}"
    if pm.image_exists(name):
        log(f"base image {name}: cached")
        return name
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"bookworm-base-{key}.tar"
    if not tarball.exists():
        rootfs = CACHE / f"rootfs-{key}.partial"
        shutil.rmtree(rootfs, ignore_errors=True)
        log(f"debootstrap --variant=minbase bookworm ({', '.join(BASE_PACKAGES)})")
        pm.run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            "bookworm",
            str(rootfs),
            MIRROR,
            timeout=1200,
        )
        # Downloaded packages and indexes are of no use in the image.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".partial")
        pm.run("tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), ".")
        partial.rename(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    log(f"podman import {tarball.name}")
    pm.podman("import", str(tarball), name, timeout=600)
    return name


def standin_names(*trees: Path) -> dict[str, set[str]]:
    """Each stand-in's names: the images the Dockerfile and docker-compose.yml of these trees
    (this checkout, and the previous commit's for the upgrade) name."""
    names: dict[str, set[str]] = {"python": set(), "registry": set(), "postgres": set()}
    for tree in trees:
        compose = (tree / "docker-compose.yml").read_text()
        dockerfile = (tree / "Dockerfile").read_text()
        names["python"].add(re.search(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)[1])
        for kind in ("registry", "postgres"):
            names[kind].add(re.search(rf"^\s+image:\s+({kind}:\S+)", compose, re.MULTILINE)[1])
    return names


def standin_images(pm: Podman, base: str, *trees: Path) -> None:
    for kind, names in standin_names(*trees).items():
        containerfile = CI_DIR / f"{kind}.Containerfile"
        # The Containerfile and its files decide the image: rebuilt when they change.
        digest = hashlib.sha256(base.encode() + containerfile.read_bytes())
        if kind == "postgres":
            digest.update((CI_DIR / "postgres-entrypoint.sh").read_bytes())
        own = f"localhost/{PREFIX}/{kind}:{digest.hexdigest()[:12]}"
        if not pm.image_exists(own):
            log(f"building the {kind} stand-in ({', '.join(sorted(names))})")
            pm.podman(
                "build",
                "--format",
                "docker",
                "--build-arg",
                f"BASE={base}",
                "-f",
                str(containerfile),
                "-t",
                own,
                str(CI_DIR),
                timeout=600,
            )
        for name in names:
            # "registry:2.8.3" is docker.io/library/registry:2.8.3 to podman, as to Docker.
            full = name if "/" in name.split(":")[0] else f"docker.io/library/{name}"
            pm.podman("tag", own, full)


def build_app(pm: Podman, context: Path, tag: str) -> None:
    """The project's Dockerfile as `docker compose build` would run it."""
    log(f"podman build {context} -> {tag}")
    before = pm.podman("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    pm.podman(
        "build",
        "--format",
        "docker",  # keeps HEALTHCHECK, which the OCI format drops
        # The sandbox's resolver is not reachable from a container network; the host's is.
        "--network",
        "host",
        # pip inside the build goes through CI's TLS-re-signing proxy: trust the host's CAs.
        "-v",
        f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
        "-t",
        tag,
        str(context),
        timeout=900,
    )
    # The image this tag named before is of no use now (its layers shared with the new one
    # stay): remove it, so that runs on one machine do not pile images up.
    after = pm.podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    if before and before != after:
        pm.podman("rmi", before, check=False)


def previous_tree(workdir: Path, revision: str) -> Path | None:
    """The files of ``revision`` (git archive), or None when the clone does not have it."""
    found = subprocess.run(
        ["git", "-C", str(BASE_DIR), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        return None
    target = workdir / "previous"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(BASE_DIR), "archive", "--format=tar", revision],
        capture_output=True,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


# -- The stack ---------------------------------------------------------------------------------


class Stack:
    """One Compose project of docker-compose.yml, copied unchanged into a folder of its own."""

    SERVICES = ("token-keys", "db", "registry", "ui", "worker")

    def __init__(self, pm: Podman, folder: Path, project: str, env_text: str) -> None:
        self.pm = pm
        self.folder = folder
        self.project = project
        folder.mkdir(parents=True)
        shutil.copy(BASE_DIR / "docker-compose.yml", folder / "docker-compose.yml")
        shutil.copytree(BASE_DIR / "deploy", folder / "deploy")
        (folder / ".env").write_text(env_text)
        (folder / ".env").chmod(0o600)

    def set_env(self, **values: str) -> None:
        """Change lines of the stack's .env (podman-compose 1.0.3 lets .env win over the shell)."""
        path = self.folder / ".env"
        text = path.read_text()
        for name, value in values.items():
            text, found = re.subn(rf"^{name}=.*$", f"{name}={value}", text, flags=re.MULTILINE)
            if not found:
                text += f"{name}={value}\n"
        path.write_text(text)

    def env_value(self, name: str) -> str:
        match = re.search(rf"^{name}=(.*)$", (self.folder / ".env").read_text(), re.MULTILINE)
        return match[1] if match else ""

    def compose(self, *args: str, check: bool = True, timeout: float = 300):
        return self.pm.run(
            "podman-compose",
            "-p",
            self.project,
            "-f",
            str(self.folder / "docker-compose.yml"),
            *args,
            check=check,
            timeout=timeout,
            cwd=self.folder,
        )

    def container(self, service: str, index: int = 1) -> str:
        return f"{self.project}_{service}_{index}"

    def exec(self, service: str, *command: str, input: str | None = None, check: bool = True):
        args = ["exec", "-i"] if input is not None else ["exec"]
        return self.pm.podman(*args, self.container(service), *command, input=input, check=check)

    def manage(self, *command: str, input: str | None = None) -> str:
        return self.exec("ui", "python", "manage.py", *command, input=input).stdout

    def shell(self, code: str) -> Any:
        """Run Python in the ui container (Django set up); returns the JSON it prints last."""
        out = self.manage("shell", "--no-imports", "-c", code)
        return json.loads(out.strip().splitlines()[-1])

    def state(self, name: str) -> dict:
        out = self.pm.podman("inspect", name, "--format", "{{json .State}}").stdout
        return json.loads(out)

    def wait_healthy(self, service: str, *, container: str | None = None, timeout=120) -> None:
        """podman 4.3 runs no health check timer: run the service's check until it passes."""
        name = container or self.container(service)

        def healthy() -> bool:
            state = self.state(name)
            if state.get("Status") != "running":
                raise CheckFailed(f"{name} is {state.get('Status')} (exit {state.get('ExitCode')})")
            return self.pm.podman("healthcheck", "run", name, check=False).returncode == 0

        wait_for(f"{name} to be healthy", healthy, timeout=timeout, interval=1)

    def wait_exited(self, name: str, timeout=120) -> int:
        self.pm.podman("wait", name, timeout=timeout)
        return self.state(name)["ExitCode"]

    def start(self, *services: str) -> None:
        """``up -d`` of these services alone. podman-compose 1.0.3 only restarts a container
        that exists (with its old image and settings): remove it first, as docker compose
        re-creates one whose configuration changed. Containers keep no state; volumes do."""
        for service in services:
            self.pm.podman("rm", "-f", "--ignore", self.container(service))
        self.compose("up", "-d", "--no-build", "--no-deps", *services)

    def up(self, services: tuple[str, ...] = SERVICES) -> None:
        """``up -d`` in the order of depends_on and its conditions, which podman-compose 1.0.3
        ignores: each step waits for what docker compose would wait for."""
        if "token-keys" in services:
            self.start("token-keys")
            code = self.wait_exited(self.container("token-keys"))
            check(code == 0, f"token-keys exited {code}")
        first = tuple(s for s in ("db", "registry") if s in services)
        if first:
            self.start(*first)
            for service in first:
                self.wait_healthy(service)
        if "ui" in services:
            self.start("ui")
            self.wait_healthy("ui", timeout=180)
        if "worker" in services:
            self.start("worker")

    def containers(self) -> list[str]:
        out = self.pm.podman(
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            f"label=io.podman.compose.project={self.project}",
        ).stdout
        return sorted(out.split())

    def logs(self) -> str:
        parts = []
        for name in self.containers():
            state = self.pm.podman(
                "inspect", name, "--format", "{{.State.Status}} {{.State.ExitCode}}", check=False
            ).stdout.strip()
            out = self.pm.podman("logs", "--tail", "80", name, check=False)
            parts.append(f"----- {name} ({state}) -----\n{out.stdout}{out.stderr}")
        return "\n".join(parts)

    def remove(self) -> None:
        """Everything of the project: containers, volumes, its network. Never fails."""
        self.compose("down", "-v", "-t", "5", check=False, timeout=180)
        for name in self.containers():
            self.pm.podman("rm", "-f", "-t", "2", name, check=False)
        volumes = self.pm.podman(
            "volume",
            "ls",
            "-q",
            "--filter",
            f"label=io.podman.compose.project={self.project}",
            check=False,
        ).stdout.split()
        for volume in volumes:
            self.pm.podman("volume", "rm", "-f", volume, check=False)
        self.pm.podman("network", "rm", "-f", f"{self.project}_default", check=False)


# -- The test ----------------------------------------------------------------------------------


class ComposeTest:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pm = Podman(workdir)
        self.timer = Timer()
        self.stacks: list[Stack] = []
        self.caddy: subprocess.Popen | None = None
        self.ports = {
            name: free_port() for name in ("ui", "registry", "tls_ui", "tls_registry", "http")
        }
        self.admin_password = secrets.token_urlsafe(18)
        self.alice_password = secrets.token_urlsafe(18)
        self.images = workdir / "images"
        self.images.mkdir()
        self.layout = Layout(workdir / "layout")
        self.notes: list[str] = []

    # URLs ------------------------------------------------------------------------------------
    @property
    def ui_published(self) -> str:
        return f"http://127.0.0.1:{self.ports['ui']}"

    @property
    def ui_tls(self) -> str:
        return f"https://localhost:{self.ports['tls_ui']}"

    @property
    def registry_plain(self) -> str:
        return f"localhost:{self.ports['registry']}"

    @property
    def registry_tls(self) -> str:
        return f"localhost:{self.ports['tls_registry']}"

    # Set-up ----------------------------------------------------------------------------------
    def env_text(self) -> str:
        """.env as deploy/make-env.py writes it, with the host names of this machine."""
        path = self.workdir / "made.env"
        subprocess.run(
            [sys.executable, str(BASE_DIR / "deploy/make-env.py"), "--output", str(path)],
            check=True,
            capture_output=True,
        )
        text = path.read_text()
        values = {
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "CSRF_TRUSTED_ORIGINS": self.ui_tls,
            "BEHIND_HTTPS_PROXY": "true",
            "REGISTRY_PUBLIC_HOST": self.registry_tls,
            "TOKEN_REALM": f"{self.ui_tls}/auth/token",
            "UI_PORT": str(self.ports["ui"]),
            "REGISTRY_PORT": str(self.ports["registry"]),
            "LOG_FORMAT": "plain",
            # Only the checks decide when the worker syncs: at its (re)start.
            "SYNC_INTERVAL": "3600",
            "WEB_CONCURRENCY": "2",
            "REGISTRYUI_IMAGE": f"localhost/{PREFIX}/app:current",
        }
        for name, value in values.items():
            text, found = re.subn(
                rf"^#? ?{name}=.*$", f"{name}={value}", text, count=1, flags=re.MULTILINE
            )
            check(found, f".env.example has no {name}= line")
        check("TOKEN_AUTH_ENABLED=true" in text, "token authentication is not the stack's default")
        return text

    def start_caddy(self) -> None:
        """deploy/caddy/Caddyfile, imported by a file giving Caddy's internal CA and our ports."""
        data = self.workdir / "caddy"
        data.mkdir()
        wrapper = data / "Caddyfile"
        wrapper.write_text(
            "{\n"
            "\tadmin off\n"
            "\tlocal_certs\n"
            "\tskip_install_trust\n"
            f"\thttp_port {self.ports['http']}\n"
            f"\tstorage file_system {data / 'storage'}\n"
            "}\n"
            f"import {BASE_DIR / 'deploy/caddy/Caddyfile'}\n"
        )
        env = {
            **os.environ,
            "HOME": str(data),
            "XDG_DATA_HOME": str(data / "data"),
            "XDG_CONFIG_HOME": str(data / "config"),
            "UI_HOST": f"localhost:{self.ports['tls_ui']}",
            "REGISTRY_HOST": f"localhost:{self.ports['tls_registry']}",
            "UI_PORT": str(self.ports["ui"]),
            "REGISTRY_PORT": str(self.ports["registry"]),
        }
        self.caddy_log = (data / "caddy.log").open("w")
        self.caddy = subprocess.Popen(
            ["caddy", "run", "--config", str(wrapper), "--adapter", "caddyfile"],
            env=env,
            stdout=self.caddy_log,
            stderr=subprocess.STDOUT,
        )
        root = data / "storage/pki/authorities/local/root.crt"
        wait_for("Caddy's local CA", root.exists, timeout=30)
        self.certs = data / "certs"  # skopeo's --cert-dir: *.crt files are CAs
        self.certs.mkdir()
        shutil.copy(root, self.certs / "caddy-local-root.crt")
        self.ca_file = str(root)

        def serving() -> bool:
            with socket.create_connection(("127.0.0.1", self.ports["tls_ui"]), timeout=2):
                return True

        wait_for("Caddy to listen", lambda: self._try(serving), timeout=30)

    @staticmethod
    def _try(probe: Callable[[], bool]) -> bool:
        try:
            return probe()
        except OSError:
            return False

    # Clients ---------------------------------------------------------------------------------
    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.pm.run(
            "skopeo", "--policy", str(self.pm.policy), *args, check=check, timeout=180
        )

    def push(
        self,
        note: str,
        reference: str,
        *,
        creds: str | None = None,
        token: str | None = None,
        check: bool = True,
    ):
        """skopeo copy of a new small image into the stack's registry (published port)."""
        self.layout.add_image(note, ImageSpec(files={"note.txt": f"{note}\n".encode()}))
        auth = ["--dest-creds", creds] if creds else []
        if token:
            auth = ["--dest-registry-token", token]
        return self.skopeo(
            "copy",
            "--dest-tls-verify=false",
            *auth,
            f"oci:{self.layout.path}:{note}",
            f"docker://{self.registry_plain}/{reference}",
            check=check,
        )

    def pull(self, reference: str, *, creds: str | None, tls: bool = False, check: bool = True):
        """skopeo copy out of the registry: through Caddy (TLS verified) or the published port."""
        target = self.images / f"pulled-{secrets.token_hex(6)}"
        source = self.registry_tls if tls else self.registry_plain
        options = ["--src-cert-dir", str(self.certs)] if tls else ["--src-tls-verify=false"]
        auth = ["--src-creds", creds] if creds else ["--src-no-creds"]
        return self.skopeo(
            "copy", *options, *auth, f"docker://{source}/{reference}", f"dir:{target}", check=check
        )

    def session(self, username: str, password: str) -> requests.Session:
        """A logged-in browser session through Caddy (HTTPS, secure cookies, CSRF)."""
        session = requests.Session()
        # Else REQUESTS_CA_BUNDLE (set on CI machines) would win over session.verify.
        session.trust_env = False
        session.verify = self.ca_file
        login = f"{self.ui_tls}/accounts/login/"
        page = session.get(login, timeout=10)
        check(page.status_code == 200, f"login page answered {page.status_code}")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        check(token, "the login page has no CSRF token")
        done = session.post(
            login,
            data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": login},
            timeout=10,
            allow_redirects=False,
        )
        check(done.status_code == 302, f"login as {username} answered {done.status_code}")
        return session

    def sync_now(self, session: requests.Session) -> None:
        status = f"{self.ui_tls}/status/"
        page = session.get(status, timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        check(page.status_code == 200 and token, f"/status/ answered {page.status_code}")
        done = session.post(
            f"{self.ui_tls}/status/sync-now",
            data={"csrfmiddlewaretoken": token[1]},
            headers={"Referer": status},
            timeout=10,
            allow_redirects=False,
        )
        check(done.status_code == 302, f"sync now answered {done.status_code}")

    def shows(self, session: requests.Session, repository: str) -> bool:
        page = session.get(f"{self.ui_tls}/r/{repository}", timeout=10)
        if page.status_code == 404:
            return False
        check(page.status_code == 200, f"/r/{repository} answered {page.status_code}")
        return repository in page.text

    def listed(self, session: requests.Session) -> set[str]:
        page = session.get(f"{self.ui_tls}/", timeout=10)
        check(page.status_code == 200, f"/ answered {page.status_code}")
        return set(re.findall(r'href="/r/([a-z0-9][a-z0-9._/-]*)"', page.text))

    # The checks ------------------------------------------------------------------------------
    def run(self) -> None:
        with self.timer.phase("images"):
            revision = os.environ.get("COMPOSE_TEST_PREVIOUS", "HEAD~1")
            previous = previous_tree(self.workdir, revision)
            base = base_image(self.pm)
            standin_images(self.pm, base, BASE_DIR, *([previous] if previous else []))
            build_app(self.pm, BASE_DIR, f"localhost/{PREFIX}/app:current")
            if previous is not None:
                build_app(self.pm, previous, f"localhost/{PREFIX}/app:previous")
            else:
                self.notes.append(f"upgrade check skipped: {revision} is not in this clone")

        env_text = self.env_text()
        self.start_caddy()
        stack = Stack(self.pm, self.workdir / "stack", f"{PREFIX}-{os.getpid()}", env_text)
        self.stacks.append(stack)

        if previous is not None:
            with self.timer.phase(
                f"start the stack on {revision}'s image, upgrade with two ui replicas"
            ):
                self.upgrade(stack)
        else:
            with self.timer.phase("start the stack"):
                stack.up()

        with self.timer.phase("published port, TLS, /healthz, first admin"):
            admin = self.first_checks(stack)
        with self.timer.phase("push → notification → UI; token grants"):
            self.push_and_grants(stack, admin)
        with self.timer.phase("registry restart loses an event; the worker's sync reconciles"):
            self.lost_event(stack, admin)
        with self.timer.phase("down and up keeps rows and images"):
            before = self.restart_keeps_everything(stack)
        with self.timer.phase("backup, restore into a fresh stack"):
            self.backup_and_restore(stack, env_text, before)

    def upgrade(self, stack: Stack) -> None:
        stack.set_env(REGISTRYUI_IMAGE=f"localhost/{PREFIX}/app:previous")
        stack.up()
        plan = stack.manage("showmigrations", "--plan")
        applied_before = plan.count("[X]")
        check(applied_before > 0 and "[ ]" not in plan, "the previous image did not migrate")
        # Two replicas of the new image start together and race for the migrations.
        stack.compose("stop", "ui", "worker")
        stack.pm.podman("rm", stack.container("ui"), stack.container("worker"))
        stack.set_env(REGISTRYUI_IMAGE=f"localhost/{PREFIX}/app:current")
        replica = f"{stack.project}_ui_replica"
        threads = [
            threading.Thread(target=stack.start, args=("ui",)),
            threading.Thread(
                target=stack.compose,
                args=("run", "-d", "--no-deps", "--name", replica, "ui", "web"),
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stack.wait_healthy("ui", timeout=180)
        stack.wait_healthy("ui", container=replica, timeout=180)
        plan = stack.manage("showmigrations", "--plan")
        check("[ ]" not in plan, f"migrations left unapplied:\n{plan}")
        new = plan.count("[X]") - applied_before
        # Both streams: migrate prints to stdout, a traceback goes to stderr.
        outputs = [stack.pm.podman("logs", name) for name in (stack.container("ui"), replica)]
        logs = [done.stdout + done.stderr for done in outputs]
        applied = [
            line.split()[1]
            for text in logs
            for line in text.splitlines()
            if line.strip().startswith("Applying ")
        ]
        check(len(applied) == len(set(applied)) == new, f"{new} new migrations, applied: {applied}")
        check(
            all("Traceback" not in text for text in logs),
            "a replica logged a traceback:\n" + "\n".join(logs),
        )
        log(f"upgrade: {new} new migration(s), each applied once across two replicas")
        revision = os.environ.get("COMPOSE_TEST_PREVIOUS", "HEAD~1")
        self.notes.append(f"upgrade from {revision}: {new} new migration(s)")
        self.pm.podman("rm", "-f", "-t", "5", replica)
        stack.start("worker")

    def first_checks(self, stack: Stack) -> requests.Session:
        health = requests.get(f"{self.ui_published}/healthz", timeout=10)
        check(health.status_code == 200, f"/healthz on the published port: {health.status_code}")
        body = health.json()
        check(body["database"] == "ok", f"/healthz: {body}")
        check(
            body["registry"]["reachable"] and body["registry"]["ok"],
            f"/healthz: registry not reachable: {body}",
        )
        # Pages over plain HTTP redirect to HTTPS; through Caddy they are served with HSTS, and
        # HSTS's preload and includeSubDomains are off by default.
        plain = requests.get(
            f"{self.ui_published}/accounts/login/", timeout=10, allow_redirects=False
        )
        check(
            plain.status_code == 301 and plain.headers["Location"].startswith("https://"),
            "no HTTPS redirect",
        )
        page = requests.get(f"{self.ui_tls}/accounts/login/", timeout=10, verify=self.ca_file)
        check(page.status_code == 200, f"the login page through Caddy: {page.status_code}")
        check(
            page.headers.get("Strict-Transport-Security") == "max-age=31536000",
            f"HSTS: {page.headers.get('Strict-Transport-Security')}",
        )
        v2 = requests.get(f"https://{self.registry_tls}/v2/", timeout=10, verify=self.ca_file)
        check(v2.status_code == 401, f"/v2/ through Caddy without a token: {v2.status_code}")
        check(
            f'realm="{self.ui_tls}/auth/token"' in v2.headers.get("WWW-Authenticate", ""),
            f"challenge: {v2.headers}",
        )
        # README: `docker compose exec ui python manage.py createsuperuser` (here without a
        # terminal: Django's documented --noinput with the password in the environment).
        stack.pm.podman(
            "exec",
            "-e",
            f"DJANGO_SUPERUSER_PASSWORD={self.admin_password}",
            stack.container("ui"),
            "python",
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
        )
        admin = self.session("admin", self.admin_password)
        status = admin.get(f"{self.ui_tls}/status/", timeout=10)
        check(status.status_code == 200, f"/status/ as the first admin: {status.status_code}")
        return admin

    def push_and_grants(self, stack: Stack, admin: requests.Session) -> None:
        admin_creds = f"admin:{self.admin_password}"
        began = time.monotonic()
        self.push("app-1", "team-a/app:1", creds=admin_creds)
        wait_for(
            "team-a/app in the UI (notification)",
            lambda: self.shows(admin, "team-a/app"),
            timeout=15,  # "within seconds"; 1-3 s here, even on a busy machine
        )
        log(f"notification: shown {time.monotonic() - began:.1f} s after the push began")
        self.push("base-1", "shared/base:1", creds=admin_creds)
        self.push("secret-1", "team-b/secret:1", creds=admin_creds)
        # A team as an admin would set it up: alice pushes to team-a/*, may only pull shared/*.
        password = self.alice_password
        stack.shell(
            "import json\n"
            "from django.contrib.auth import get_user_model\n"
            "from registryui.teams.models import Grant, Level, Team\n"
            f"alice = get_user_model().objects.create_user('alice', password={password!r})\n"
            "team = Team.objects.create(name='Team A', slug='team-a')\n"
            "team.members.add(alice)\n"
            "Grant.objects.create(team=team, pattern='team-a/*', level=Level.PUSH)\n"
            "Grant.objects.create(team=team, pattern='shared/*', level=Level.VIEW)\n"
            "print(json.dumps(True))\n"
        )
        alice = f"alice:{self.alice_password}"
        allowed = [
            ("push", self.push("alice-1", "team-a/alice:1", creds=alice, check=False)),
            ("pull team-a", self.pull("team-a/app:1", creds=alice, check=False)),
            ("pull shared", self.pull("shared/base:1", creds=alice, tls=True, check=False)),
        ]
        for what, done in allowed:
            check(done.returncode == 0, f"alice may {what}: {done.stderr[-2000:]}")
        denied = [
            (
                "push to a view grant",
                self.push("alice-2", "shared/base:2", creds=alice, check=False),
            ),
            (
                "push outside her grants",
                self.push("alice-3", "team-b/alice:1", creds=alice, check=False),
            ),
            ("pull outside her grants", self.pull("team-b/secret:1", creds=alice, check=False)),
            ("pull without a login", self.pull("team-a/app:1", creds=None, check=False)),
        ]
        for what, done in denied:
            check(done.returncode != 0, f"alice could {what}")
            check(
                re.search(
                    r"denied|unauthorized|authentication required|insufficient_scope",
                    done.stderr,
                    re.I,
                ),
                f"{what}: {done.stderr[-2000:]}",
            )
        # Nothing of the refused pushes reached the registry, and the allowed one the UI.
        check(
            self.pull("shared/base:2", creds=admin_creds, check=False).returncode != 0,
            "shared/base:2 exists",
        )
        check(
            self.pull("team-b/alice:1", creds=admin_creds, check=False).returncode != 0,
            "team-b/alice exists",
        )
        wait_for("team-a/alice in the UI", lambda: self.shows(admin, "team-a/alice"), timeout=10)
        # alice sees what she may pull, not team-b's repository.
        seen = self.listed(self.session("alice", self.alice_password))
        check(
            {"team-a/app", "team-a/alice", "shared/base"} <= seen and "team-b/secret" not in seen,
            f"alice sees {seen}",
        )

    def lost_event(self, stack: Stack, admin: requests.Session) -> None:
        # A token fetched beforehand: with the ui stopped, nobody could hand one out.
        token = requests.get(
            f"{self.ui_tls}/auth/token",
            params={"service": "registry", "scope": "repository:team-a/lost:pull,push"},
            auth=("admin", self.admin_password),
            verify=self.ca_file,
            timeout=10,
        ).json()["token"]
        stack.compose("stop", "ui")
        self.push("lost-1", "team-a/lost:1", token=token)
        # The registry holds the undelivered event in memory; a restart drops it.
        stack.compose("restart", "registry")
        stack.wait_healthy("registry")
        stack.compose("start", "ui")
        stack.wait_healthy("ui", timeout=180)
        time.sleep(12)  # longer than the endpoint's backoff (10 s): a retry would have come
        check(not self.shows(admin, "team-a/lost"), "the event survived the registry's restart")
        check(
            self.pull("team-a/lost:1", creds=f"admin:{self.admin_password}", check=False).returncode
            == 0,
            "team-a/lost:1 is not in the registry",
        )
        # "Sync now" on the status page, as a staff user would: the worker runs a full sync.
        self.sync_now(admin)
        wait_for(
            "the worker's sync to show team-a/lost",
            lambda: self.shows(admin, "team-a/lost"),
            timeout=90,
            interval=2,
        )

    SNAPSHOT = (
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from registryui.catalog.models import Repository, Tag\n"
        "from registryui.teams.models import Grant, Team\n"
        "print(json.dumps({\n"
        "  'users': sorted(get_user_model().objects.values_list('username', flat=True)),\n"
        "  'teams': sorted(Team.objects.values_list('slug', flat=True)),\n"
        "  'grants': sorted(f'{g.team.slug} {g.pattern} {g.level}' for g in Grant.objects.all()),\n"
        "  'repositories': sorted(Repository.objects.values_list('name', flat=True)),\n"
        "  'tags': sorted(f'{t.repository.name}:{t.name} {t.manifest.digest}'\n"
        "                 for t in Tag.objects.select_related('repository', 'manifest')),\n"
        "}))\n"
    )

    def restart_keeps_everything(self, stack: Stack) -> dict:
        before = stack.shell(self.SNAPSHOT)
        check(len(before["tags"]) >= 5, f"too little data to compare: {before}")
        stack.compose("down", "-t", "10")
        check(not stack.containers(), f"containers left after down: {stack.containers()}")
        stack.up()
        after = stack.shell(self.SNAPSHOT)
        check(after == before, f"rows changed across down/up:\n{before}\n{after}")
        self.all_images_pull(before)
        return before

    def all_images_pull(self, snapshot: dict) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(self.image_pulls, snapshot["tags"]))

    def image_pulls(self, line: str) -> None:
        """The tag still names the same manifest, and the image (layers too) pulls."""
        reference, digest = line.split()
        creds = f"admin:{self.admin_password}"
        done = self.skopeo(
            "inspect", "--tls-verify=false", "--creds", creds,
            f"docker://{self.registry_plain}/{reference}",
        )  # fmt: skip
        check(json.loads(done.stdout)["Digest"] == digest, f"{reference} is not {digest}")
        self.pull(reference, creds=creds)

    def backup_and_restore(self, stack: Stack, env_text: str, before: dict) -> None:
        backups = self.workdir / "backups"
        env = {"CONTAINER_ENGINE": "podman", "COMPOSE_PROJECT_NAME": stack.project}
        self.pm.run(
            "sh",
            str(stack.folder / "deploy/backup.sh"),
            str(backups),
            env={**self.pm.env, **env},
            cwd=stack.folder,
        )
        check((backups / "registryui.dump").stat().st_size > 0, "empty database dump")
        # The restore drill: a fresh stack (new volumes, new token key) on the same ports.
        stack.compose("down", "-t", "10")
        fresh = Stack(self.pm, self.workdir / "restored", f"{stack.project}-restored", env_text)
        self.stacks.append(fresh)
        fresh.up(("token-keys", "db", "registry"))
        env["COMPOSE_PROJECT_NAME"] = fresh.project
        self.pm.run(
            "sh",
            str(fresh.folder / "deploy/restore.sh"),
            str(backups),
            env={**self.pm.env, **env},
            cwd=fresh.folder,
        )
        fresh.wait_healthy("registry")
        fresh.up(("ui", "worker"))
        fresh.manage("sync_registry")
        after = fresh.shell(self.SNAPSHOT)
        check(after == before, f"the restored stack differs:\n{before}\n{after}")
        admin = self.session("admin", self.admin_password)
        shown = self.listed(admin)
        check(
            set(before["repositories"]) <= shown,
            f"the UI shows {shown}, not {before['repositories']}",
        )
        self.all_images_pull(before)
        done = self.pull(
            "team-a/app:1", creds=f"alice:{self.alice_password}", tls=True, check=False
        )
        check(done.returncode == 0, f"alice cannot pull from the restored stack: {done.stderr}")

    # Tear-down -------------------------------------------------------------------------------
    def diagnostics(self) -> None:
        for stack in self.stacks:
            print(stack.logs(), flush=True)
        if self.caddy is not None:
            self.caddy_log.flush()
            text = Path(self.caddy_log.name).read_text()
            print(f"----- caddy -----\n{text[-3000:]}", flush=True)

    def cleanup(self) -> None:
        if self.caddy is not None:
            self.caddy.terminate()
            try:
                self.caddy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.caddy.kill()
        for stack in self.stacks:
            stack.remove()


def main() -> int:
    missing = [
        tool
        for tool in ("podman", "podman-compose", "debootstrap", "skopeo", "caddy")
        if not shutil.which(tool)
    ]
    if missing:
        print(
            f"compose-test: missing {', '.join(missing)} (.ci/run installs them)", file=sys.stderr
        )
        return 2
    workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
    test = ComposeTest(workdir)
    failed = False
    try:
        test.run()
    except (CheckFailed, subprocess.SubprocessError, requests.RequestException) as exc:
        failed = True
        print(f"\ncompose-test FAILED: {exc}\n", file=sys.stderr, flush=True)
        test.diagnostics()
    except BaseException:
        failed = True
        test.diagnostics()
        raise
    finally:
        if failed and os.environ.get("COMPOSE_TEST_KEEP") == "1":
            log(f"COMPOSE_TEST_KEEP=1: left running; files in {workdir}")
        else:
            test.cleanup()
            shutil.rmtree(workdir, ignore_errors=True)
        print(test.timer.report(), flush=True)
        for note in test.notes:
            log(note)
    if not failed:
        log("all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
