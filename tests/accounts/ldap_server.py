"""Debian's slapd (OpenLDAP) as a process of the test: a temporary slapd.conf (``slapd -f``,
no system service), an MDB database in a temp folder, a free loopback port, users and groups
loaded from ``directory.ldif`` with ldapadd."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from registryui.devtools.registry import free_port

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "slapd-admin-secret"
LDIF = Path(__file__).with_name("directory.ldif")

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
{tls}
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {root}/data
access to attrs=userPassword by anonymous auth by self write by * none
access to * by * read
"""


def available() -> bool:
    return Path(SLAPD).exists() and shutil.which("ldapadd") is not None


@dataclass
class Slapd:
    root: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def start(self, *, tls: tuple[Path, Path] | None = None) -> Slapd:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        tls_lines = f"TLSCertificateFile {tls[0]}\nTLSCertificateKeyFile {tls[1]}" if tls else ""
        conf = self.root / "slapd.conf"
        conf.write_text(
            CONFIG.format(
                root=self.root,
                suffix=SUFFIX,
                root_dn=ROOT_DN,
                root_password=ROOT_PASSWORD,
                tls=tls_lines,
            )
        )
        log = (self.root / "slapd.log").open("wb")
        # -d 0 keeps slapd in the foreground (our child, stopped by us) without debug output.
        self.process = subprocess.Popen(
            [SLAPD, "-f", str(conf), "-h", f"{self.uri}/", "-d", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited:\n{(self.root / 'slapd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("slapd did not listen within 30 s") from None
                time.sleep(0.1)
        return self

    def load(self, ldif: Path = LDIF) -> None:
        subprocess.run(
            ["ldapadd", "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD, "-f", str(ldif)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def modify(self, ldif_text: str) -> None:
        subprocess.run(
            ["ldapmodify", "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif_text.encode(),
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def new_slapd(root: Path) -> Slapd:
    return Slapd(root, free_port())
