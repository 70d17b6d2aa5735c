"""Logins against a real OpenLDAP directory (Debian's slapd, started by the test): directory
passwords, groups → teams at each login, wrong passwords, StartTLS, and the directory down."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.test import Client

from registryui.accounts.ldap_settings import ldap_settings
from registryui.accounts.models import GroupMapping, LoginCounter, Provider
from registryui.core.models import AuditEntry
from registryui.devtools.registry import free_port
from registryui.teams.models import Membership, Team
from registryui.tokens.keys import write_key_pair

from .ldap_server import available, new_slapd

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not available(), reason="apt-get install -y slapd ldap-utils"),
]

DEVELOPERS = "cn=developers,ou=groups,dc=example,dc=org"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    server = new_slapd(tmp_path_factory.mktemp("slapd")).start()
    try:
        server.load()
        yield server
    finally:
        server.stop()


def use_directory(settings, monkeypatch, uri: str, **env: str) -> None:
    monkeypatch.setenv("LDAP_USER_BASE", "ou=people,dc=example,dc=org")
    monkeypatch.setenv("LDAP_GROUP_BASE", "ou=groups,dc=example,dc=org")
    monkeypatch.setenv("LDAP_TIMEOUT", "3")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name, value in ldap_settings(uri).items():
        setattr(settings, name, value)
    settings.LDAP_SERVER_URI = uri
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "registryui.accounts.ldap.LDAPBackend",
    ]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_FAILURE_LIMIT = 5


@pytest.fixture
def directory(settings, monkeypatch, slapd):
    use_directory(settings, monkeypatch, slapd.uri)
    return slapd


@pytest.fixture
def teams():
    developers = Team.objects.create(name="Developers", slug="developers")
    operators = Team.objects.create(name="Operators", slug="operators")
    # One mapping by the group's DN, one by its name (cn), in another case than the directory.
    GroupMapping.objects.create(provider=Provider.LDAP, group=DEVELOPERS, team=developers)
    GroupMapping.objects.create(provider=Provider.LDAP, group="Operators", team=operators)
    return developers, operators


def login(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def sources(username: str) -> dict[str, str]:
    return dict(
        Membership.objects.filter(user__username=username).values_list("team__slug", "source")
    )


def test_a_directory_user_logs_in_with_the_directory_password(client, directory) -> None:
    response = login(client, "carol", "carol-directory-pw")
    assert response.status_code == 302
    user = get_user_model().objects.get(username="carol")
    assert int(client.session["_auth_user_id"]) == user.pk
    assert (user.email, user.first_name, user.last_name) == ("carol@example.org", "Carol", "Clark")
    assert not user.has_usable_password()  # the password stays in the directory
    entry = AuditEntry.objects.get(action="login")
    assert (entry.actor, entry.via, entry.details) == (user, "ui", {"method": "LDAP"})


@pytest.mark.usefixtures("teams")
def test_groups_become_teams_and_follow_the_directory(client, directory) -> None:
    login(client, "carol", "carol-directory-pw")
    assert sources("carol") == {"developers": "ldap", "operators": "ldap"}
    login(Client(), "dave", "dave-directory-pw")
    assert sources("dave") == {"developers": "ldap"}

    # Carol leaves the operators at the directory; an admin adds her to a team by hand.
    directory.modify(
        "dn: cn=operators,ou=groups,dc=example,dc=org\nchangetype: modify\n"
        "delete: member\nmember: uid=carol,ou=people,dc=example,dc=org\n"
    )
    try:
        by_hand = Team.objects.create(name="By hand", slug="by-hand")
        by_hand.members.add(get_user_model().objects.get(username="carol"))
        assert login(Client(), "carol", "carol-directory-pw").status_code == 302
        assert sources("carol") == {"developers": "ldap", "by-hand": "local"}
        removed = AuditEntry.objects.get(action="team_member_removed")
        assert removed.details == {"team": "Operators", "user": "carol", "source": "ldap"}
    finally:
        directory.modify(
            "dn: cn=operators,ou=groups,dc=example,dc=org\nchangetype: modify\n"
            "add: member\nmember: uid=carol,ou=people,dc=example,dc=org\n"
        )


def test_a_wrong_directory_password_is_refused_counted_and_audited(client, directory) -> None:
    response = login(client, "carol", "not-her-password")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "Please enter a correct username and password" in response.content.decode()
    assert AuditEntry.objects.get(action="login_failed").actor_name == "carol"
    assert LoginCounter.objects.get(username="carol").attempts == 1
    for _ in range(5):
        login(client, "carol", "not-her-password")
    # Over the limit the directory is not even asked.
    assert login(client, "carol", "carol-directory-pw").status_code == 429


def test_the_directory_down_is_a_clear_error_and_local_accounts_still_log_in(
    client, settings, monkeypatch
) -> None:
    use_directory(settings, monkeypatch, f"ldap://127.0.0.1:{free_port()}")
    get_user_model().objects.create_superuser("root", password="local-root-pw")
    response = login(client, "carol", "carol-directory-pw")
    assert response.status_code == 503
    page = response.content.decode()
    assert "The LDAP directory did not answer" in page
    assert "Local accounts still can" in page
    assert 'name="password"' in page  # the form is still there
    assert "LDAP directory did not answer" in AuditEntry.objects.get(action="login_failed").message

    response = login(Client(), "root", "local-root-pw")
    assert response.status_code == 302


def test_start_tls_with_the_directory_certificate(settings, monkeypatch, tmp_path) -> None:
    cert, key = self_signed(tmp_path)
    server = new_slapd(tmp_path / "tls").start(tls=(cert, key))
    try:
        server.load()
        use_directory(
            settings,
            monkeypatch,
            server.uri,
            LDAP_START_TLS="true",
            LDAP_CA_CERT_FILE=str(cert),
        )
        assert login(Client(), "carol", "carol-directory-pw").status_code == 302
        # A certificate the client does not trust: no login, and said so.
        other, _ = self_signed(tmp_path / "other")
        use_directory(
            settings, monkeypatch, server.uri, LDAP_START_TLS="true", LDAP_CA_CERT_FILE=str(other)
        )
        response = login(Client(), "dave", "dave-directory-pw")
        assert response.status_code == 503
    finally:
        server.stop()


def test_directory_passwords_at_auth_token_only_when_allowed(
    client, directory, settings, tmp_path
) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    write_key_pair(key, cert, algorithm="ES256", common_name="registryui", days=30)
    settings.TOKEN_AUTH_ENABLED = True
    settings.TOKEN_KEY_FILE, settings.TOKEN_CERT_FILE = str(key), str(cert)
    credentials = base64.b64encode(b"carol:carol-directory-pw").decode()

    def ask():
        return client.get(
            "/auth/token",
            {"service": settings.TOKEN_SERVICE, "scope": "repository:x/y:pull"},
            HTTP_AUTHORIZATION=f"Basic {credentials}",
        )

    settings.LDAP_TOKEN_PASSWORDS = False
    assert ask().status_code == 401
    settings.LDAP_TOKEN_PASSWORDS = True
    response = ask()
    assert response.status_code == 200
    entry = AuditEntry.objects.get(action="login")
    assert (entry.via, entry.details) == ("token", {"method": "LDAP"})


def self_signed(directory) -> tuple:
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
