"""``python manage.py token_keys``: key, self-signed certificate, and the auth.token block."""

from __future__ import annotations

import io
import stat

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.management import CommandError, ManagementUtility, call_command

from registryui.tokens.keys import load_signing_key


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("token_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def paths(settings, tmp_path):
    settings.TOKEN_KEY_FILE = str(tmp_path / "keys" / "key.pem")
    settings.TOKEN_CERT_FILE = str(tmp_path / "keys" / "cert.pem")
    settings.TOKEN_ISSUER = "registry-ui.example.com"
    settings.TOKEN_SERVICE = "registry.example.com"
    settings.TOKEN_REALM = "https://registry-ui.example.com/auth/token"
    return tmp_path / "keys" / "key.pem", tmp_path / "keys" / "cert.pem"


def test_it_creates_an_es256_key_and_a_self_signed_certificate(paths) -> None:
    key_path, cert_path = paths
    out, err = run()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644
    key = load_signing_key(key_path, cert_path)
    assert key.algorithm == "ES256"
    assert isinstance(key.private_key, ec.EllipticCurvePrivateKey)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert certificate.issuer == certificate.subject
    assert "registry-ui.example.com" in certificate.subject.rfc4514_string()
    certificate.verify_directly_issued_by(certificate)  # self-signed, with our key
    assert "Wrote a new ES256 key" in err

    block = yaml.safe_load(out)
    assert block == {
        "auth": {
            "token": {
                "realm": "https://registry-ui.example.com/auth/token",
                "service": "registry.example.com",
                "issuer": "registry-ui.example.com",
                "rootcertbundle": str(cert_path),
            }
        }
    }


def test_it_keeps_existing_keys_unless_forced(paths) -> None:
    key_path, cert_path = paths
    run()
    first = key_path.read_bytes()
    out, err = run("--rootcertbundle", "/etc/docker/registry/token.pem", "--realm", "http://x/t")
    assert key_path.read_bytes() == first
    assert "Keeping the existing ES256 key" in err
    token = yaml.safe_load(out)["auth"]["token"]
    assert token["rootcertbundle"] == "/etc/docker/registry/token.pem"
    assert token["realm"] == "http://x/t"

    run("--force", "--algorithm", "RS256")
    assert key_path.read_bytes() != first
    key = load_signing_key(key_path, cert_path)
    assert key.algorithm == "RS256"
    assert isinstance(key.private_key, rsa.RSAPrivateKey)


def test_it_refuses_half_a_pair_or_a_broken_one(paths) -> None:
    _, cert_path = paths
    run()
    cert_path.unlink()
    with pytest.raises(CommandError, match="Only"):
        run()
    run("--force")
    cert_path.write_text("not a certificate")
    with pytest.raises(CommandError, match="--force"):
        run()


def test_a_certificate_for_another_key_is_refused(paths, tmp_path) -> None:
    key_path, _ = paths
    run()
    other = tmp_path / "other"
    other.mkdir()
    from registryui.tokens.keys import TokenKeyError, write_key_pair

    write_key_pair(other / "k.pem", other / "c.pem", common_name="x", days=1)
    with pytest.raises(TokenKeyError, match="not for the key"):
        load_signing_key(key_path, other / "c.pem")


def test_it_runs_in_token_mode_before_the_key_exists(paths, settings, capsys) -> None:
    # As from the shell (call_command skips the system checks): the checks report the missing
    # key in token mode, and must not stop the command that makes it.
    settings.TOKEN_AUTH_ENABLED = True
    key_path, cert_path = paths
    ManagementUtility(["manage.py", "token_keys"]).execute()
    assert load_signing_key(key_path, cert_path).algorithm == "ES256"
    assert "rootcertbundle" in capsys.readouterr().out
