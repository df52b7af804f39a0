"""The auth service's token-signing keys: generated once, rotated on request, never lost.

A key set holds one active key (signs new tokens) and passive keys (still published in the
JWKS, so tokens they signed keep validating). Rotation makes a new key active and retires the
old one; a retired key is dropped only after every token it could have signed has expired
(the access-token lifetime, doubled for clock skew and in-flight requests).

Generation uses the operating system's randomness; :func:`rotate` and :func:`prune` are pure
and take the new key and the clock from the caller.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

#: Passive keys kept at most, however recent: bounds the JWKS a client must fetch.
MAX_PASSIVE_KEYS = 4


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_pem: str
    public_jwk: dict[str, Any]
    created_at: str
    retired_at: str | None = None

    @property
    def active(self) -> bool:
        return self.retired_at is None


@dataclass(frozen=True)
class KeySet:
    keys: tuple[SigningKey, ...] = ()
    rotation: str | None = None  # the spec.auth.keyRotation value this set reflects

    @property
    def active(self) -> SigningKey | None:
        return next((k for k in self.keys if k.active), None)

    def to_json(self) -> str:
        return json.dumps(
            {"rotation": self.rotation, "keys": [k.__dict__ for k in self.keys]}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str) -> KeySet:
        data = json.loads(text)
        return cls(
            keys=tuple(SigningKey(**k) for k in data.get("keys", [])),
            rotation=data.get("rotation"),
        )

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: active key first, then passive keys."""
        ordered = sorted(self.keys, key=lambda k: (not k.active, k.created_at), reverse=False)
        return {"keys": [k.public_jwk for k in ordered]}


def generate(algorithm: str, now: datetime) -> SigningKey:
    """A fresh key pair for ``algorithm`` (ES256 or RS256) with an RFC 7638 thumbprint kid."""
    if algorithm == "ES256":
        private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec.generate_private_key(
            ec.SECP256R1()
        )
        numbers = private.public_key().public_numbers()
        assert isinstance(numbers, ec.EllipticCurvePublicNumbers)
        members = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
    elif algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_numbers = private.public_key().public_numbers()
        n = rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")
        e = rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")
        members = {"e": _b64url(e), "kty": "RSA", "n": _b64url(n)}
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}; use ES256 or RS256")
    thumbprint = hashlib.sha256(
        json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    kid = _b64url(thumbprint)[:16]
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = {**members, "kid": kid, "alg": algorithm, "use": "sig"}
    return SigningKey(
        kid=kid, algorithm=algorithm, private_pem=pem, public_jwk=jwk, created_at=now.isoformat()
    )


def needs_key(keyset: KeySet, algorithm: str, rotation: str | None) -> bool:
    """Whether a new key must be made: none yet, a rotation requested, or a new algorithm."""
    active = keyset.active
    if active is None:
        return True
    if rotation is not None and rotation != keyset.rotation:
        return True
    return active.algorithm != algorithm


def rotate(keyset: KeySet, new_key: SigningKey, rotation: str | None, now: datetime) -> KeySet:
    """``new_key`` becomes active; the previously active key is retired (still published)."""
    stamp = now.isoformat()
    keys = tuple(replace(k, retired_at=stamp) if k.active else k for k in keyset.keys)
    return KeySet(keys=(new_key, *keys), rotation=rotation)


def prune(keyset: KeySet, token_lifetime: timedelta, now: datetime) -> KeySet:
    """Drop retired keys that can no longer have valid tokens, and keep a bounded number."""
    horizon = now - 2 * token_lifetime
    kept = [
        k
        for k in keyset.keys
        if k.active or (k.retired_at and datetime.fromisoformat(k.retired_at) > horizon)
    ]
    active = [k for k in kept if k.active]
    passive = sorted(
        (k for k in kept if not k.active), key=lambda k: k.retired_at or "", reverse=True
    )[:MAX_PASSIVE_KEYS]
    return replace(keyset, keys=(*active, *passive))
