"""Keys and certificates of the local control plane, made once per stack.

A CA signs the API server's serving certificate (so clients verify TLS instead of skipping
it), and an RSA key signs ServiceAccount tokens. Files are written 0600 and reused on later
starts, so a kubeconfig handed out once stays valid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

#: Ten years: a development CA should not expire under a long-lived checkout.
VALIDITY = dt.timedelta(days=3650)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_pki(pki: Path, host: str) -> None:
    """Create ca.crt/key, apiserver.crt/key and sa.key/pub in ``pki`` unless present."""
    pki.mkdir(parents=True, exist_ok=True)
    names = ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub")
    if all((pki / n).exists() for n in names):
        return
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mobileplane-local-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
        x509.IPAddress(ipaddress.ip_address(host)),
        x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
    ]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(pki / "ca.key", _key_pem(ca_key))
    _write(pki / "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(pki / "apiserver.key", _key_pem(server_key))
    _write(pki / "apiserver.crt", server_cert.public_bytes(serialization.Encoding.PEM))
    _write(pki / "sa.key", _key_pem(sa_key))
    _write(
        pki / "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def ensure_client_cert(pki: Path, out: Path, stem: str, user: str, groups: tuple[str, ...]) -> None:
    """``<out>/<stem>.crt``/``.key``: a client certificate for ``user`` in ``groups``.

    Signed by the stack's CA (made by :func:`ensure_pki`, which the API server trusts for
    client certificates): the API server reads the user from the CN and the groups from O.
    Kept once made; remade when the CA changed (a new stack state).
    """
    out.mkdir(parents=True, exist_ok=True)
    crt, key_path = out / f"{stem}.crt", out / f"{stem}.key"
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    if crt.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(crt.read_bytes())
        try:
            existing.verify_directly_issued_by(ca_cert)
            return
        except (ValueError, TypeError, InvalidSignature):
            pass  # signed by an earlier CA of this state directory: make a new one
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key))
    _write(crt, cert.public_bytes(serialization.Encoding.PEM))
