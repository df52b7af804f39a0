"""Access-token validation (RFC 9068 JWTs), decided without I/O and with the clock injected.

A token is accepted only if every check below passes; each failure is a
:class:`TokenRejected` whose description is safe to send back in ``WWW-Authenticate``:

1. **Shape**: at most :data:`MAX_TOKEN_BYTES`, three base64url parts, a JSON header.
2. **Header**: ``alg`` in the route table's allow-list, which itself never holds ``none`` or
   an HMAC algorithm (:func:`check_algorithms`): the JWKS publishes public keys, and a
   verifier that let a token choose HS256 could be fooled into using a public key as an HMAC
   secret ("algorithm confusion"). ``typ`` must be ``at+jwt`` (RFC 9068 §4), so an ID token
   or another JWT from the same issuer is not an access token. ``kid`` names the key; no
   ``crit``, ``jku``, ``x5u`` or ``jwk`` (keys come from the JWKS only, never from a token).
3. **Key**: the JWKS key with that ``kid`` must be of the algorithm's family (EC for ES*, RSA
   for RS*/PS*, OKP for EdDSA) and, when it declares one, of the same ``alg``.
4. **Signature**, by pyjwt with exactly the header's (allowed) algorithm.
5. **Claims** against the injected ``now``: ``iss`` and ``aud`` equal the table's, ``exp``
   in the future and ``nbf``/``iat`` not in the future, each with :attr:`TokenPolicy.leeway`;
   ``sub`` present; every claim forwarded in a header is printable ASCII of bounded length.

The result is the kit's :class:`~kit.identity.Identity`, which the gateway forwards.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import PyJWTError

from mobileplane.services.gateway.keyring import KEY_TYPES, PublicKey
from mobileplane.services.kit.identity_contract import Identity

#: Bigger than any access token we issue (ES256 with a few scopes is ~600 bytes), small enough
#: that a client cannot make the gateway base64-decode and parse megabytes per request.
MAX_TOKEN_BYTES = 8 * 1024

#: Media types RFC 9068 §4 allows in ``typ``.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})

#: Header parameters that would let a token pick its own key or add semantics we ignore.
_REFUSED_HEADER_PARAMS = ("crit", "jku", "x5u", "jwk", "x5c", "b64")

#: What a forwarded claim may hold: visible ASCII (no spaces, no control characters), bounded.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]{1,256}")
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class TokenRejected(Exception):
    """The token is not acceptable; ``description`` says why (no secrets, header-safe)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    algorithms: frozenset[str]
    #: Clock skew tolerated between the issuer and the gateway, in seconds.
    leeway: float = 30.0


@dataclass(frozen=True)
class TokenHeader:
    alg: str
    kid: str
    typ: str


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; ``None`` when absent.

    A header with another scheme or without a token raises :class:`TokenRejected`.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenRejected("the Authorization header must use the Bearer scheme")
    token = token.strip()
    if not token:
        raise TokenRejected("the Bearer token is empty")
    return token


def _b64json(part: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as e:
        raise TokenRejected(f"the token {what} is not base64url-encoded JSON") from e
    if not isinstance(value, dict):
        raise TokenRejected(f"the token {what} is not a JSON object")
    return value


def read_header(token: str, policy: TokenPolicy) -> TokenHeader:
    """The token's checked header (steps 1 and 2); the signature is not verified yet."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("the token is too long")
    if not _TOKEN_SHAPE.fullmatch(token):
        raise TokenRejected("the token is not a signed JWT (header.payload.signature)")
    header = _b64json(token.split(".", 1)[0], "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in policy.algorithms or alg not in KEY_TYPES:
        raise TokenRejected("the token's signing algorithm is not accepted")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise TokenRejected("the token is not an access token (typ must be at+jwt)")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _HEADER_SAFE.fullmatch(kid):
        raise TokenRejected("the token has no usable key id (kid)")
    for param in _REFUSED_HEADER_PARAMS:
        if param in header:
            raise TokenRejected(f"the token header parameter {param!r} is not accepted")
    return TokenHeader(alg=alg, kid=kid, typ=typ)


def verify_signature(token: str, header: TokenHeader, key: PublicKey) -> dict[str, Any]:
    """The token's claims once its signature verifies with ``key`` (steps 3 and 4)."""
    if key.key_type != KEY_TYPES[header.alg]:
        raise TokenRejected("the token's algorithm does not match its key")
    if key.algorithm is not None and key.algorithm != header.alg:
        raise TokenRejected("the token's algorithm does not match its key")
    try:
        decoded = jwt.PyJWS().decode_complete(token, key.key, algorithms=[header.alg])
    except PyJWTError as e:
        raise TokenRejected("the token's signature is invalid") from e
    payload = decoded["payload"]
    try:
        claims = json.loads(payload)
    except ValueError as e:
        raise TokenRejected("the token's claims are not JSON") from e
    if not isinstance(claims, dict):
        raise TokenRejected("the token's claims are not a JSON object")
    return claims


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenRejected(f"the token has no {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"the token's {name} claim is not a number")
    return float(value)


def _safe_string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _HEADER_SAFE.fullmatch(value):
        raise TokenRejected(f"the token's {name} claim is not a short printable string")
    return value


def check_claims(claims: Mapping[str, Any], policy: TokenPolicy, now: float) -> Identity:
    """The caller's identity if the claims hold at ``now`` (step 5)."""
    if claims.get("iss") != policy.issuer:
        raise TokenRejected("the token was issued by another issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if policy.audience not in audiences:
        raise TokenRejected("the token is meant for another audience")
    expires = _number(claims, "exp", required=True)
    assert expires is not None
    if now > expires + policy.leeway:
        raise TokenRejected("the token has expired")
    not_before = _number(claims, "nbf", required=False)
    if not_before is not None and now + policy.leeway < not_before:
        raise TokenRejected("the token is not valid yet")
    issued_at = _number(claims, "iat", required=False)
    if issued_at is not None and now + policy.leeway < issued_at:
        raise TokenRejected("the token was issued in the future")
    subject = _safe_string(claims, "sub")
    if subject is None:
        raise TokenRejected("the token has no subject (sub)")
    scope = claims.get("scope", "")
    if not isinstance(scope, str) or len(scope) > 4096:
        raise TokenRejected("the token's scope claim is not a string")
    scopes = frozenset(scope.split(" ")) - {""}
    if any(not _HEADER_SAFE.fullmatch(s) for s in scopes):
        raise TokenRejected("the token's scope claim holds unprintable characters")
    return Identity(
        subject=subject,
        scopes=scopes,
        session_id=_safe_string(claims, "sid"),
        client_id=_safe_string(claims, "client_id") or _safe_string(claims, "azp"),
        token_id=_safe_string(claims, "jti"),
    )


def missing_scopes(identity: Identity, required: tuple[str, ...]) -> tuple[str, ...]:
    """The route's required scopes that the token lacks (all are required)."""
    return tuple(s for s in required if not identity.has_scope(s))


def www_authenticate(error: str | None, description: str | None = None, **params: str) -> str:
    """A ``WWW-Authenticate: Bearer ...`` challenge (RFC 6750 §3), values quoted safely."""
    parts = ['realm="mobileplane"']
    if error is not None:
        parts.append(f'error="{error}"')
    if description is not None:
        parts.append(f'error_description="{_quotable(description)}"')
    parts.extend(f'{name}="{_quotable(value)}"' for name, value in params.items())
    return "Bearer " + ", ".join(parts)


def _quotable(text: str) -> str:
    # RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (no " or \).
    return "".join(c for c in text if c in _QUOTABLE)[:200]


_QUOTABLE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}
