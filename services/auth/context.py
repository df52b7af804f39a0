"""What every endpoint of the auth service shares: its state, the clock, the caller's address,
RFC 6749 error answers, redirects back to the app, and telling the gateway about revoked
sessions."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

import httpx
from argon2 import PasswordHasher
from fastapi import Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse

from mobileplane.services.auth.keys import KeyStore
from mobileplane.services.auth.mail import EmailSender
from mobileplane.services.auth.settings import AuthSettings
from mobileplane.services.auth.upstream import Upstreams
from mobileplane.services.kit.identity import revoked_session_key
from mobileplane.services.kit.redis import unavailable_on_error

logger = logging.getLogger("mobileplane.auth")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ID_TOKEN_TYPE_URN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
ACCESS_TOKEN_TYPE_URN = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
LOGIN_COOKIE = "mp_login"
EMAIL_LINK_TTL = timedelta(days=2)
#: A password-reset link works for an hour.
RESET_LINK_TTL = timedelta(hours=1)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$")


def valid_email(address: str) -> bool:
    """A plausible address (one @, a dotted domain); the verification link proves the rest."""
    return _EMAIL.match(address) is not None


NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


@dataclass
class AuthState:
    settings: AuthSettings
    keys: KeyStore
    upstreams: Upstreams
    sender: EmailSender
    http: httpx.AsyncClient
    hasher: PasswordHasher
    dummy_hash: str


def state_of(request: Request) -> AuthState:
    state: AuthState = request.app.state.auth
    return state


State = Annotated[AuthState, Depends(state_of)]


def now() -> datetime:
    return datetime.now(UTC)


def client_ip(request: Request) -> str | None:
    # The gateway appends the client's address to X-Forwarded-For; take the last hop it added.
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[-1].strip() or None
    return request.client.host if request.client else None


def oauth_error(error: str, description: str, status: int = 400, **headers: str) -> JSONResponse:
    """RFC 6749 §5.2 error response."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **headers},
    )


async def announce_revoked(request: Request, state: AuthState, sids: list[str]) -> None:
    """Tell the gateway (through Redis) to refuse access tokens of these sessions at once.

    Runs before the transaction commits: if Redis cannot be told, the request fails (503) and
    the revocation is rolled back, rather than answering "revoked" while tokens still work.
    """
    if not sids:
        return
    ttl = state.settings.auth_access_token_ttl_seconds + 120  # outlives every token + leeway
    redis = request.app.state.redis
    async with (
        unavailable_on_error(),
        redis.pipeline(transaction=False) as pipe,
    ):
        for sid in sids:
            pipe.set(revoked_session_key(request.app.state.keyspace, sid), "1", ex=ttl)
        await pipe.execute()


def redirect_to(uri: str, params: dict[str, str | None]) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{separator}{query}", status_code=303, headers=NO_STORE)
