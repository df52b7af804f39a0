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

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from mobileplane.services.kit.errors import Forbidden, Unauthorized
from mobileplane.services.kit.redis import KeySpace

#: Every header of the identity contract; the gateway removes all of them from client requests.
SUBJECT_HEADER = "x-mobileplane-subject"  # the token's ``sub``: the user id
SCOPES_HEADER = "x-mobileplane-scopes"  # the token's ``scope``: space-separated
SESSION_HEADER = "x-mobileplane-session"  # the token's ``sid``: one per device
CLIENT_HEADER = "x-mobileplane-client"  # the token's ``client_id`` (or ``azp``)
TOKEN_ID_HEADER = "x-mobileplane-token-id"  # noqa: S105 - the token's ``jti``, a header name
IDENTITY_HEADERS = (SUBJECT_HEADER, SCOPES_HEADER, SESSION_HEADER, CLIENT_HEADER, TOKEN_ID_HEADER)


#: Revoked sessions, shared by auth (writes) and the gateway (reads): an access token is a
#: stateless JWT, so signing a device out must also reach the gateway before the token expires.
#: Auth sets ``<REDIS_PREFIX>:auth:revoked-session:<sid>`` with a TTL at least as long as the
#: longest access-token lifetime (plus the gateway's leeway); the gateway refuses any token
#: whose ``sid`` has that key.
REVOKED_SESSIONS = ("auth", "revoked-session")


def revoked_session_key(keyspace: KeySpace, session_id: str) -> str:
    """The Redis key that marks session ``session_id`` as revoked."""
    return keyspace.key(*REVOKED_SESSIONS, session_id)


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: a user on one device, through one client."""

    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None
    client_id: str | None = None
    token_id: str | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def identity_headers(identity: Identity) -> dict[str, str]:
    """The headers that carry ``identity`` (absent fields are left out)."""
    headers = {SUBJECT_HEADER: identity.subject, SCOPES_HEADER: " ".join(sorted(identity.scopes))}
    if identity.session_id:
        headers[SESSION_HEADER] = identity.session_id
    if identity.client_id:
        headers[CLIENT_HEADER] = identity.client_id
    if identity.token_id:
        headers[TOKEN_ID_HEADER] = identity.token_id
    return headers


def identity_from_headers(headers: object) -> Identity | None:
    """The identity in a request's headers, or ``None`` when there is no subject."""
    get = getattr(headers, "get", None)
    if get is None:
        raise TypeError("headers must be a mapping")
    subject = (get(SUBJECT_HEADER) or "").strip()
    if not subject:
        return None
    return Identity(
        subject=subject,
        scopes=frozenset((get(SCOPES_HEADER) or "").split()),
        session_id=get(SESSION_HEADER) or None,
        client_id=get(CLIENT_HEADER) or None,
        token_id=get(TOKEN_ID_HEADER) or None,
    )


def optional_identity(request: Request) -> Identity | None:
    """FastAPI dependency: the forwarded identity, if any."""
    return identity_from_headers(request.headers)


def require_identity(request: Request) -> Identity:
    """FastAPI dependency: the forwarded identity; 401 when the request carries none."""
    identity = identity_from_headers(request.headers)
    if identity is None:
        raise Unauthorized("This endpoint needs an access token: call it through the gateway")
    return identity


def require_scope(scope: str) -> object:
    """A FastAPI dependency that also requires ``scope`` (403 without it)."""

    def dependency(identity: Annotated[Identity, Depends(require_identity)]) -> Identity:
        if not identity.has_scope(scope):
            raise Forbidden(f"The access token lacks the {scope!r} scope")
        return identity

    return Depends(dependency)


CurrentIdentity = Annotated[Identity, Depends(require_identity)]
