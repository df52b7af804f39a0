"""The caller's identity as the gateway forwards it to upstream services.

The gateway validates the access token (signature against the JWKS, issuer, audience, expiry,
algorithm allow-list, revoked sessions) and forwards who the caller is in the headers below.
It strips these headers from every client request first, so an upstream can trust them: in a
cluster the platform's NetworkPolicies admit traffic to services only from the gateway.

Revoked sessions reach the gateway through Redis: see :data:`REVOKED_SESSIONS`.

Services read the identity with the :func:`require_identity` dependency (401 without one) or
:func:`optional_identity`; :func:`identity_headers` builds the headers (the gateway's side,
and tests that call a service directly).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mobileplane.services.kit.errors import Forbidden, Unauthorized
from mobileplane.services.kit.identity_contract import (
    CLIENT_HEADER,
    IDENTITY_HEADERS,
    SCOPES_HEADER,
    SESSION_HEADER,
    SUBJECT_HEADER,
    TOKEN_ID_HEADER,
    Identity,
    identity_from_headers,
    identity_headers,
)
from mobileplane.services.kit.redis import KeySpace

__all__ = [
    "CLIENT_HEADER",
    "IDENTITY_HEADERS",
    "REVOKED_SESSIONS",
    "SCOPES_HEADER",
    "SESSION_HEADER",
    "SUBJECT_HEADER",
    "TOKEN_ID_HEADER",
    "CurrentIdentity",
    "Identity",
    "identity_from_headers",
    "identity_headers",
    "optional_identity",
    "require_identity",
    "require_scope",
    "revoked_session_key",
    "scope_refusal",
]

#: Revoked sessions, shared by auth (writes) and the gateway (reads): an access token is a
#: stateless JWT, so signing a device out must also reach the gateway before the token expires.
#: Auth sets ``<REDIS_PREFIX>:auth:revoked-session:<sid>`` with a TTL at least as long as the
#: longest access-token lifetime (plus the gateway's leeway); the gateway refuses any token
#: whose ``sid`` has that key.
REVOKED_SESSIONS = ("auth", "revoked-session")


def revoked_session_key(keyspace: KeySpace, session_id: str) -> str:
    """The Redis key that marks session ``session_id`` as revoked."""
    return keyspace.key(*REVOKED_SESSIONS, session_id)


def optional_identity(request: Request) -> Identity | None:
    """FastAPI dependency: the forwarded identity, if any."""
    return identity_from_headers(request.headers)


def require_identity(request: Request) -> Identity:
    """FastAPI dependency: the forwarded identity; 401 when the request carries none."""
    identity = identity_from_headers(request.headers)
    if identity is None:
        raise Unauthorized("This endpoint needs an access token: call it through the gateway")
    return identity


def scope_refusal(identity: Identity, scopes: tuple[str, ...]) -> Forbidden | None:
    """``None`` when ``identity`` holds one of ``scopes``; else the 403 that names them
    (``insufficient_scope``, the gateway's code and RFC 6750's error, with the scopes in
    ``details``), so a client can say which scope to ask for."""
    if any(identity.has_scope(s) for s in scopes):
        return None
    first, others = scopes[0], scopes[1:]
    alternatives = f" (or {', '.join(repr(s) for s in others)})" if others else ""
    return Forbidden(
        f"The access token lacks the {first!r} scope{alternatives}",
        code="insufficient_scope",
        details={"scopes": list(scopes)},
        headers={
            "www-authenticate": f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'
        },
    )


def require_scope(scope: str, *alternatives: str) -> object:
    """A FastAPI dependency that also requires ``scope``, or one of ``alternatives`` (403
    ``insufficient_scope`` without any of them)."""
    scopes = (scope, *alternatives)

    def dependency(identity: Annotated[Identity, Depends(require_identity)]) -> Identity:
        refusal = scope_refusal(identity, scopes)
        if refusal is not None:
            raise refusal
        return identity

    return Depends(dependency)


CurrentIdentity = Annotated[Identity, Depends(require_identity)]
