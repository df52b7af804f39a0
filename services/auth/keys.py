"""Signing keys: read from the operator's Secret, re-read when it changes, used to sign and verify.

The operator keeps the key set in the Secret ``<name>-signing-keys`` (``operator/keys.py``),
mounted at ``AUTH_SIGNING_KEYS_DIR``: ``keyset.json`` holds every key with its private PEM,
algorithm, creation and retirement times. Exactly one key is active (signs new tokens); the
others are passive — still published in the JWKS so tokens they signed keep validating until
they expire, after which the operator prunes them.

A rotation updates the Secret; the kubelet swaps the mounted files atomically (a symlink
flip), and :class:`KeyStore` notices on its next :meth:`KeyStore.refresh` (it compares the
file's content hash, at most every ``check_interval``), so no restart is needed and no token
is invalidated.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

KEYSET_FILE = "keyset.json"
#: Algorithms a key may have; HS* never (a symmetric key cannot be published).
ALGORITHMS = ("ES256", "RS256")


class KeyConfigError(ValueError):
    """No usable key set: the message says what is missing or malformed."""


@dataclass(frozen=True)
class Key:
    kid: str
    algorithm: str
    private_key: EllipticCurvePrivateKey | RSAPrivateKey
    public_jwk: dict[str, Any]
    active: bool


def parse_keyset(text: str) -> tuple[Key, ...]:
    """Keys from ``keyset.json`` (the operator's format), active key first."""
    try:
        data = json.loads(text)
        entries = data["keys"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise KeyConfigError(f"the key set is not the operator's keyset.json format: {e}") from None
    keys = []
    for entry in entries:
        try:
            algorithm = entry["algorithm"]
            if algorithm not in ALGORITHMS:
                raise KeyConfigError(
                    f"key {entry.get('kid')!r}: algorithm {algorithm!r} is not allowed"
                )
            private = serialization.load_pem_private_key(entry["private_pem"].encode(), None)
            if not isinstance(private, EllipticCurvePrivateKey | RSAPrivateKey):
                raise KeyConfigError(f"key {entry['kid']!r} is neither EC nor RSA")
            keys.append(
                Key(
                    kid=entry["kid"],
                    algorithm=algorithm,
                    private_key=private,
                    public_jwk=dict(entry["public_jwk"]),
                    active=entry.get("retired_at") is None,
                )
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, KeyConfigError):
                raise
            raise KeyConfigError(f"a key of the key set is malformed: {e!r}") from None
    active = [k for k in keys if k.active]
    if len(active) != 1:
        raise KeyConfigError(f"the key set must have exactly one active key, it has {len(active)}")
    return (active[0], *(k for k in keys if not k.active))


class KeyStore:
    """The current key set; :meth:`refresh` re-reads the mounted Secret when it changed."""

    def __init__(
        self,
        *,
        directory: Path | None = None,
        inline: str | None = None,
        check_interval: float = 10.0,
    ) -> None:
        if (directory is None) == (inline is None):
            raise KeyConfigError("set AUTH_SIGNING_KEYS_DIR or AUTH_SIGNING_KEYS (exactly one)")
        self._directory = directory
        self._inline = inline
        self._check_interval = check_interval
        self._checked = 0.0
        self._digest = ""
        self._keys: tuple[Key, ...] = ()
        self.refresh(force=True)

    def _read(self) -> str:
        if self._inline is not None:
            return self._inline
        assert self._directory is not None
        path = self._directory / KEYSET_FILE
        try:
            return path.read_text()
        except OSError as e:
            raise KeyConfigError(
                f"cannot read {path}: {e}; the operator writes it to the signing-keys Secret"
            ) from None

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._check_interval:
            return
        self._checked = now
        text = self._read()
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest != self._digest:
            self._keys = parse_keyset(text)
            self._digest = digest

    @property
    def active(self) -> Key:
        self.refresh()
        return self._keys[0]

    def by_kid(self, kid: str) -> Key | None:
        self.refresh()
        return next((k for k in self._keys if k.kid == kid), None)

    @property
    def algorithms(self) -> list[str]:
        return sorted({k.algorithm for k in self._keys})

    def jwks(self) -> dict[str, Any]:
        self.refresh()
        return {"keys": [k.public_jwk for k in self._keys]}

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        key = self.active
        return jwt.encode(
            claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": typ}
        )

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str | None,
        typ: str,
        verify_exp: bool = True,
    ) -> dict[str, Any]:
        """The claims of a token this service signed; raises :class:`jwt.InvalidTokenError`."""
        header = jwt.get_unverified_header(token)
        key = self.by_kid(str(header.get("kid", "")))
        if key is None:
            raise jwt.InvalidTokenError("unknown signing key")
        if header.get("alg") != key.algorithm:
            raise jwt.InvalidAlgorithmError("algorithm does not match the key")
        if header.get("typ") != typ:
            raise jwt.InvalidTokenError(f"not a {typ} token")
        options = {
            "require": ["exp", "iat", "sub", "iss"],
            "verify_aud": audience is not None,
            "verify_exp": verify_exp,
        }
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=[key.algorithm],
            issuer=issuer,
            audience=audience,
            options=options,  # type: ignore[arg-type]
            leeway=5,
        )
        return claims
