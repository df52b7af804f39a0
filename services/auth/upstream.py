"""Sign-in through an upstream OpenID provider (Sign in with Apple, Google, …).

The app signs the user in with the provider's native SDK, gets an ID token, and exchanges it
at our token endpoint (RFC 8693 token exchange, ``subject_token_type`` = ID token). We accept
it only if it is signed by a key from the provider's JWKS (fetched over HTTPS, cached, and
refetched — at most once a minute — when a token names an unknown ``kid``, which is how
providers rotate), with the configured issuer, an audience that is one of our app ids, and
a valid ``exp``/``iat``; the algorithm comes from the key, never from the token alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

#: What upstream ID tokens may be signed with (never ``none`` or a shared-secret HS*).
ALLOWED = ("RS256", "ES256", "RS384", "ES384", "RS512", "PS256")
REFETCH_INTERVAL = 60.0


class UpstreamTokenError(Exception):
    """The upstream ID token is not acceptable; the message says why (safe to show)."""


@dataclass
class Provider:
    name: str
    issuer: str
    jwks_uri: str
    audiences: tuple[str, ...]
    _keys: dict[str, tuple[str, Any]] = field(default_factory=dict)
    _fetched: float = float("-inf")

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Provider:
        try:
            audiences = data["audiences"]
            if isinstance(audiences, str):
                audiences = [audiences]
            return cls(
                name=str(data["name"]),
                issuer=str(data["issuer"]),
                jwks_uri=str(data["jwks_uri"]),
                audiences=tuple(str(a) for a in audiences),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(
                f"an upstream provider needs name, issuer, jwks_uri and audiences: {e}"
            ) from None

    async def _refresh(self, client: httpx.AsyncClient) -> None:
        self._fetched = time.monotonic()
        try:
            response = await client.get(self.jwks_uri, timeout=5.0)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise UpstreamTokenError(f"cannot fetch the keys of {self.name}: {e}") from None
        keys: dict[str, tuple[str, Any]] = {}
        for jwk in document.get("keys", []):
            kid, alg, kty = jwk.get("kid"), jwk.get("alg"), jwk.get("kty")
            if not kid or jwk.get("use", "sig") != "sig":
                continue
            try:
                if kty == "RSA":
                    keys[kid] = (alg or "RS256", RSAAlgorithm.from_jwk(json.dumps(jwk)))
                elif kty == "EC":
                    keys[kid] = (alg or "ES256", ECAlgorithm.from_jwk(json.dumps(jwk)))
            except (ValueError, jwt.InvalidKeyError):
                continue
        self._keys = keys

    async def key(self, kid: str, client: httpx.AsyncClient) -> tuple[str, Any]:
        if kid not in self._keys and time.monotonic() - self._fetched >= REFETCH_INTERVAL:
            await self._refresh(client)
        if kid not in self._keys:
            raise UpstreamTokenError(f"the token's key {kid!r} is not one of {self.name}'s keys")
        return self._keys[kid]


class Upstreams:
    def __init__(self, providers: list[Provider], client: httpx.AsyncClient) -> None:
        self._by_issuer = {p.issuer: p for p in providers}
        self._client = client

    def __bool__(self) -> bool:
        return bool(self._by_issuer)

    async def verify(self, id_token: str) -> tuple[Provider, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(id_token)
            unverified = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.InvalidTokenError as e:
            raise UpstreamTokenError(f"not a JWT: {e}") from None
        provider = self._by_issuer.get(str(unverified.get("iss")))
        if provider is None:
            raise UpstreamTokenError("the token's issuer is not a configured upstream provider")
        algorithm, key = await provider.key(str(header.get("kid", "")), self._client)
        if header.get("alg") != algorithm or algorithm not in ALLOWED:
            raise UpstreamTokenError("the token's algorithm does not match its key")
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[algorithm],
                audience=list(provider.audiences),
                issuer=provider.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=30,
            )
        except jwt.InvalidTokenError as e:
            raise UpstreamTokenError(f"the {provider.name} ID token is invalid: {e}") from None
        return provider, claims


def email_verified(claims: dict[str, Any]) -> bool:
    """Apple sends ``"true"`` as a string; Google a boolean."""
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")
