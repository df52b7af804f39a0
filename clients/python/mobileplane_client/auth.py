"""Signing in and staying signed in: OIDC authorization code + PKCE, tokens kept and refreshed.

What AppAuth does in an iOS or Android app, as a reference:

1. :meth:`OIDCClient.begin_login` makes the authorization URL (PKCE S256, ``state``,
   ``nonce``); the app opens it in the system browser (ASWebAuthenticationSession, Custom
   Tabs). The provider redirects to the app's redirect URI with a code.
2. :meth:`OIDCClient.complete_login` checks ``state`` and ``iss`` (RFC 9207), redeems the
   code with the PKCE verifier, checks the ID token's ``iss``/``aud``/``nonce`` and stores the
   tokens in a :class:`TokenStore` (Keychain / EncryptedSharedPreferences in an app; a 0600
   file or memory here).
3. :meth:`OIDCClient.auth` is an ``httpx.Auth`` for every API call: it sends the access token,
   refreshes it shortly before it expires, and once more on a 401. Refresh tokens are
   single-use: a refresh is serialised by a lock and the rotated token is stored before it is
   used, so two calls never spend one token twice (which the provider would treat as theft).

Signing out only happens when the provider says the session is over (``invalid_grant``):
a network failure during a refresh is a :class:`TransientAuthError` and the tokens are kept,
so an app that loses connectivity never logs its user out.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

#: Refresh this long before the access token expires (clock skew, requests in flight).
REFRESH_MARGIN = 30.0


class LoginError(Exception):
    """The sign-in did not complete (refused, tampered with, or the code is bad)."""


class SignedOut(LoginError):
    """The session is over (revoked, expired, or a refresh token was reused): sign in again."""


class TransientAuthError(Exception):
    """The provider could not be reached to refresh; tokens are kept, retry later."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: float  # seconds since the epoch
    scope: str
    id_token: str | None = None

    def fresh(self, now: float, margin: float = REFRESH_MARGIN) -> bool:
        return now < self.expires_at - margin


class TokenStore(Protocol):
    def load(self) -> Tokens | None: ...
    def save(self, tokens: Tokens) -> None: ...
    def clear(self) -> None: ...


class MemoryTokenStore:
    def __init__(self) -> None:
        self._tokens: Tokens | None = None

    def load(self) -> Tokens | None:
        return self._tokens

    def save(self, tokens: Tokens) -> None:
        self._tokens = tokens

    def clear(self) -> None:
        self._tokens = None


class FileTokenStore:
    """Tokens in a JSON file readable only by its owner, replaced atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> Tokens | None:
        try:
            return Tokens(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, tokens: Tokens) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_suffix(".tmp")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(tokens), f)
        staged.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class LoginRequest:
    """One sign-in in progress: open :attr:`url`, then pass the redirect to ``complete_login``."""

    url: str
    state: str
    nonce: str
    verifier: str
    redirect_uri: str


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        data: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
        return data
    except (IndexError, ValueError) as e:
        raise LoginError(f"the ID token is not a JWT: {e}") from None


class OIDCClient:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        redirect_uri: str,
        *,
        store: TokenStore | None = None,
        scope: str = "openid offline_access",
        transport: httpx.BaseTransport | None = None,
        clock: Any = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.store: TokenStore = store or MemoryTokenStore()
        self._http = httpx.Client(timeout=30, transport=transport)
        self._clock = clock
        self._metadata: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            try:
                response = self._http.get(f"{self.issuer}/.well-known/openid-configuration")
                response.raise_for_status()
                metadata: dict[str, Any] = response.json()
            except (httpx.HTTPError, ValueError) as e:
                raise TransientAuthError(f"cannot discover {self.issuer}: {e}") from None
            if metadata.get("issuer") != self.issuer:
                raise LoginError(f"the provider calls itself {metadata.get('issuer')!r}")
            self._metadata = metadata
        return self._metadata

    # -- signing in --------------------------------------------------------------------------

    def begin_login(self, **extra: str) -> LoginRequest:
        verifier = secrets.token_urlsafe(64)
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
            **extra,
        }
        url = f"{self.metadata()['authorization_endpoint']}?{urlencode(query)}"
        return LoginRequest(url, state, nonce, verifier, self.redirect_uri)

    def complete_login(self, request: LoginRequest, redirect_url: str) -> Tokens:
        query = {k: v[0] for k, v in parse_qs(urlsplit(redirect_url).query).items()}
        if query.get("state") != request.state:
            raise LoginError("the redirect does not belong to this sign-in (state differs)")
        if "iss" in query and query["iss"] != self.issuer:
            raise LoginError("the redirect comes from another provider (RFC 9207)")
        if "error" in query:
            raise LoginError(f"{query['error']}: {query.get('error_description', '')}")
        body = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": query.get("code", ""),
                "redirect_uri": request.redirect_uri,
                "client_id": self.client_id,
                "code_verifier": request.verifier,
            },
            on_refusal=LoginError,
        )
        tokens = self._tokens(body, previous=None)
        if tokens.id_token:
            claims = _jwt_claims(tokens.id_token)
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if claims.get("iss") != self.issuer or self.client_id not in audiences:
                raise LoginError("the ID token was not issued by this provider for this app")
            if claims.get("nonce") != request.nonce:
                raise LoginError("the ID token's nonce differs (a replayed response?)")
        self.store.save(tokens)
        return tokens

    # -- staying signed in -------------------------------------------------------------------

    def access_token(self, *, force_refresh: bool = False, stale: str | None = None) -> str:
        """A usable access token, refreshed when it is about to expire (or was refused)."""
        with self._lock:
            tokens = self.store.load()
            if tokens is None:
                raise SignedOut("not signed in")
            if stale is not None and tokens.access_token != stale:
                return tokens.access_token  # another call refreshed it meanwhile
            if not force_refresh and tokens.fresh(self._clock()):
                return tokens.access_token
            if not tokens.refresh_token:
                self.store.clear()
                raise SignedOut("the access token expired and there is no refresh token")
            try:
                body = self._token_request(
                    {
                        "grant_type": "refresh_token",
                        "refresh_token": tokens.refresh_token,
                        "client_id": self.client_id,
                    },
                    on_refusal=SignedOut,
                )
            except SignedOut:
                self.store.clear()
                raise
            renewed = self._tokens(body, previous=tokens)
            self.store.save(renewed)
            return renewed.access_token

    def auth(self) -> httpx.Auth:
        """Authentication for an ``httpx`` client (the SDK's sync and media clients)."""
        return _BearerAuth(self)

    def logout(self) -> None:
        """Revoke this device's session (RFC 7009) and forget the tokens."""
        tokens = self.store.load()
        self.store.clear()
        if tokens and tokens.refresh_token:
            endpoint = self.metadata().get("revocation_endpoint")
            if endpoint:
                # On failure the session still ends when its tokens expire.
                with contextlib.suppress(httpx.HTTPError):
                    self._http.post(
                        endpoint,
                        data={
                            "token": tokens.refresh_token,
                            "token_type_hint": "refresh_token",
                            "client_id": self.client_id,
                        },
                    )

    # -- helpers -----------------------------------------------------------------------------

    def _token_request(self, form: dict[str, str], on_refusal: type[LoginError]) -> dict[str, Any]:
        try:
            response = self._http.post(self.metadata()["token_endpoint"], data=form)
        except httpx.TransportError as e:
            raise TransientAuthError(f"cannot reach the token endpoint: {e}") from None
        if response.status_code >= 500:
            raise TransientAuthError(f"the token endpoint answered {response.status_code}")
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise TransientAuthError(
                "the token endpoint answered something other than JSON"
            ) from None
        if response.status_code != 200:
            raise on_refusal(f"{body.get('error')}: {body.get('error_description', '')}")
        return body

    def _tokens(self, body: dict[str, Any], previous: Tokens | None) -> Tokens:
        return Tokens(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token")
            or (previous.refresh_token if previous else None),
            expires_at=self._clock() + float(body.get("expires_in", 300)),
            scope=str(body.get("scope", self.scope)),
            id_token=body.get("id_token") or (previous.id_token if previous else None),
        )


class _BearerAuth(httpx.Auth):
    def __init__(self, client: OIDCClient) -> None:
        self._client = client

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._client.access_token()
        request.headers["authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # Revoked keys, a clock off, a session ended elsewhere: one refresh, one retry.
            token = self._client.access_token(force_refresh=True, stale=token)
            request.headers["authorization"] = f"Bearer {token}"
            yield request
