"""The identity contract between the gateway and the services, free of any web framework.

The gateway forwards who the caller is in the headers below (after stripping them from the
client's request); services read them back. This module holds the names and the plain
data, so that deciding code on both sides (the gateway's token checks and header rules) can
use them without importing FastAPI or Redis; :mod:`.identity` adds the FastAPI dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Every header of the identity contract; the gateway removes all of them from client requests.
SUBJECT_HEADER = "x-mobileplane-subject"  # the token's ``sub``: the user id
SCOPES_HEADER = "x-mobileplane-scopes"  # the token's ``scope``: space-separated
SESSION_HEADER = "x-mobileplane-session"  # the token's ``sid``: one per device
CLIENT_HEADER = "x-mobileplane-client"  # the token's ``client_id`` (or ``azp``)
TOKEN_ID_HEADER = "x-mobileplane-token-id"  # noqa: S105 - the token's ``jti``, a header name
IDENTITY_HEADERS = (SUBJECT_HEADER, SCOPES_HEADER, SESSION_HEADER, CLIENT_HEADER, TOKEN_ID_HEADER)


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
