"""The claims of the tokens the provider issues (pure: the caller signs them).

- **Access token** (RFC 9068, JWT profile for OAuth 2.0 access tokens, ``typ: at+jwt``):
  ``iss``, ``sub``, ``aud`` (the platform's API, i.e. the issuer URL the gateway serves),
  ``exp``, ``iat``, ``nbf``, ``jti``, ``scope``, ``sid`` (the device session, so a revoked
  session is refused at the gateway), ``client_id`` and ``auth_time``. Short-lived.
- **ID token** (OIDC Core §2): ``aud`` is the client, ``nonce`` echoed, ``azp``, ``at_hash``
  (OIDC Core §3.1.3.6, the left half of the access token's SHA-256), ``email`` when the
  ``email`` scope was granted.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
ID_TOKEN_TYPE = "JWT"  # noqa: S105


@dataclass(frozen=True)
class Grant:
    """Who was authenticated, for which client, device session and scopes."""

    user_id: str
    client_id: str
    session_id: str
    scope: tuple[str, ...]
    auth_time: datetime
    email: str | None = None
    email_verified: bool = False
    amr: tuple[str, ...] = ("pwd",)


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def access_claims(grant: Grant, issuer: str, now: datetime, ttl: timedelta) -> dict[str, Any]:
    return {
        "iss": issuer,
        "sub": grant.user_id,
        "aud": issuer,
        "exp": _ts(now + ttl),
        "iat": _ts(now),
        "nbf": _ts(now),
        "jti": secrets.token_urlsafe(16),
        "scope": " ".join(grant.scope),
        "sid": grant.session_id,
        "client_id": grant.client_id,
        "auth_time": _ts(grant.auth_time),
    }


def at_hash(access_token: str, algorithm: str) -> str:
    """OIDC Core §3.1.3.6: base64url of the left half of the token's hash (SHA-256 for *256)."""
    if not algorithm.endswith("256"):
        raise ValueError(f"no at_hash rule for {algorithm}")
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def id_claims(
    grant: Grant,
    issuer: str,
    now: datetime,
    ttl: timedelta,
    *,
    nonce: str | None,
    access_token: str,
    algorithm: str,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": grant.user_id,
        "aud": grant.client_id,
        "azp": grant.client_id,
        "exp": _ts(now + ttl),
        "iat": _ts(now),
        "auth_time": _ts(grant.auth_time),
        "sid": grant.session_id,
        "amr": list(grant.amr),
        "at_hash": at_hash(access_token, algorithm),
    }
    if nonce:
        claims["nonce"] = nonce
    if "email" in grant.scope and grant.email:
        claims["email"] = grant.email
        claims["email_verified"] = grant.email_verified
    return claims
