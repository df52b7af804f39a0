"""Email through SMTP: the sender against a real SMTP server (aiosmtpd, standing in for the
relay a platform uses: SES, SendGrid…) with STARTTLS and a login, as production runs it; and
the auth service sending its verification link through it."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_auth_login_flow import sign_in

from mobileplane.services.auth.mail import Email, MailError, SmtpSender

pytestmark = pytest.mark.integration

USER, PASSWORD = "relay-user", "relay-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the test's CA bundle is the cert itself)."""
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
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Relay:
    port: int
    cafile: Path
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message_from_bytes(envelope.content, policy=policy.default),
            )
        )
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(USER)
        # handled=False: aiosmtpd answers (235, or 535 for a failure) itself.
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    state = Relay(port=_free_port(), cafile=cert)
    controller = Controller(
        state,
        hostname="127.0.0.1",
        port=state.port,
        tls_context=context,
        require_starttls=True,
        authenticator=state.authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield state
    finally:
        controller.stop()


def sender(relay: Relay, **overrides: Any) -> SmtpSender:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": relay.port,
        "sender": "Shop <no-reply@shop.example.com>",
        "security": "starttls",
        "username": USER,
        "password": PASSWORD,
        "timeout": 5.0,
        "cafile": str(relay.cafile),
    }
    settings.update(overrides)
    return SmtpSender(**settings)


async def test_a_message_goes_through_starttls_and_a_login(relay: Relay) -> None:
    await sender(relay).send(
        Email(to="ann@example.com", subject="Verify", body="Open https://x/verify?t=1")
    )

    [(mail_from, rcpt, msg)] = relay.received
    assert relay.logins == [USER]
    assert (mail_from, rcpt) == ("no-reply@shop.example.com", ["ann@example.com"])
    assert msg["From"] == "Shop <no-reply@shop.example.com>" and msg["Subject"] == "Verify"
    assert msg["Message-ID"].endswith("@shop.example.com>")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "https://x/verify?t=1" in msg.get_content()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        pytest.param({"password": "wrong"}, "535", id="wrong-password"),
        pytest.param({"cafile": None}, "CERTIFICATE_VERIFY_FAILED", id="untrusted-certificate"),
        pytest.param({"security": "none", "username": None}, "530", id="no-tls-refused"),
    ],
)
async def test_a_refused_message_is_an_error_saying_why(
    relay: Relay, overrides: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(MailError, match=fragment):
        await sender(relay, **overrides).send(Email(to="a@example.com", subject="s", body="b"))
    assert relay.received == []


async def test_an_unreachable_server_is_an_error() -> None:
    closed = SmtpSender("127.0.0.1", _free_port(), "x@example.com", timeout=2)
    with pytest.raises(MailError, match="did not take the message"):
        await closed.send(Email(to="a@example.com", subject="s", body="b"))


def test_the_auth_service_sends_its_verification_link_by_smtp(
    auth_server: Any, relay: Relay
) -> None:
    server = auth_server(
        AUTH_EMAIL_SENDER="smtp",
        AUTH_EMAIL_FROM="Shop <no-reply@shop.example.com>",
        AUTH_SMTP_HOST="127.0.0.1",
        AUTH_SMTP_PORT=str(relay.port),
        AUTH_SMTP_USERNAME=USER,
        AUTH_SMTP_PASSWORD=PASSWORD,
        AUTH_SMTP_CA_FILE=str(relay.cafile),
    )
    token = sign_in(server, "smtp@example.com")
    [(_, rcpt, msg)] = relay.received
    assert rcpt == ["smtp@example.com"]
    link = next(w for w in msg.get_content().split() if "/auth/verify-email?token=" in w)
    assert httpx.get(link).status_code == 200
    info = httpx.get(
        f"{server.url}/auth/userinfo",
        headers={"authorization": f"Bearer {token['access_token']}"},
    ).json()
    assert info["email_verified"] is True


def test_a_resend_the_relay_refuses_is_a_503(auth_server: Any, relay: Relay) -> None:
    server = auth_server(
        AUTH_EMAIL_SENDER="smtp",
        AUTH_EMAIL_FROM="no-reply@shop.example.com",
        AUTH_SMTP_HOST="127.0.0.1",
        AUTH_SMTP_PORT=str(relay.port),
        AUTH_SMTP_USERNAME=USER,
        AUTH_SMTP_PASSWORD="wrong",  # the sign-up still works; its email is not sent
        AUTH_SMTP_CA_FILE=str(relay.cafile),
    )
    token = sign_in(server, "nosend@example.com")
    answer = httpx.post(
        f"{server.url}/auth/verify-email/resend",
        headers={"authorization": f"Bearer {token['access_token']}"},
    )
    assert answer.status_code == 503, answer.text
    assert "could not be sent" in answer.json()["error"]["message"]
    assert relay.received == []
