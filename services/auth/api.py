"""The OpenID Provider's HTTP endpoints.

Discovery and keys under ``/.well-known/``; everything else under ``/auth/``:

- ``GET /auth/authorize`` shows the login page; ``POST /auth/authorize`` signs in (or creates
  an account) and redirects to the app with a code (authorization code + PKCE, RFC 8252).
- ``POST /auth/token``: ``authorization_code``, ``refresh_token`` (rotated, single use, reuse
  revokes the family) and token exchange of an upstream provider's ID token (RFC 8693).
- ``/auth/userinfo``, ``/auth/revoke`` (RFC 7009), ``/auth/introspect`` (RFC 7662),
  ``/auth/end-session`` (OIDC RP-Initiated Logout).
- ``/auth/sessions`` (a user's devices; revoke one), ``/auth/logout`` (local, global, others),
  ``/auth/verify-email``, ``/auth/audit``.
- ``/auth/password/forgot`` and ``/auth/password/reset``: a forgotten password (``reset.py``).

OAuth endpoints answer errors in RFC 6749 §5.2's shape (``error``, ``error_description``)
because that is what OAuth client libraries parse; the account API uses the kit's shape.
"""

from __future__ import annotations

from fastapi import APIRouter

from mobileplane.services.auth.account import account_router
from mobileplane.services.auth.authorize import authorize_router
from mobileplane.services.auth.context import AuthState
from mobileplane.services.auth.discovery import well_known_router
from mobileplane.services.auth.grants import token_router
from mobileplane.services.auth.reset import password_router

__all__ = ["AuthState", "routers"]


def routers() -> list[APIRouter]:
    return [
        well_known_router(),
        authorize_router(),
        token_router(),
        account_router(),
        password_router(),
    ]
