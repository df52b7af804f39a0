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

OAuth endpoints answer errors in RFC 6749 §5.2's shape (``error``, ``error_description``)
because that is what OAuth client libraries parse; the account API uses the kit's shape.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
import httpx
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.auth import pkce, rules, store
from mobileplane.services.auth.clients import Client
from mobileplane.services.auth.keys import KeyStore
from mobileplane.services.auth.mail import Email, EmailSender
from mobileplane.services.auth.pages import message, page
from mobileplane.services.auth.settings import AuthSettings
from mobileplane.services.auth.tokens import (
    ACCESS_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    Grant,
    access_claims,
    id_claims,
)
from mobileplane.services.auth.upstream import Upstreams, UpstreamTokenError, email_verified
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import NotFound, Unauthorized, ValidationFailed
from mobileplane.services.kit.identity import revoked_session_key
from mobileplane.services.kit.redis import unavailable_on_error

_logger = logging.getLogger("mobileplane.auth")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ID_TOKEN_TYPE_URN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
ACCESS_TOKEN_TYPE_URN = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
LOGIN_COOKIE = "mp_login"
EMAIL_LINK_TTL = timedelta(days=2)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$")
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


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
        headers={**_NO_STORE, **headers},
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


# -- discovery --------------------------------------------------------------------------------


def discovery(settings: AuthSettings, algorithms: list[str]) -> dict[str, Any]:
    issuer = settings.auth_issuer
    scopes = sorted({s for c in settings.clients for s in c.scopes} | {"openid", "email"})
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth/authorize",
        "token_endpoint": f"{issuer}/auth/token",
        "userinfo_endpoint": f"{issuer}/auth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/auth/revoke",
        "introspection_endpoint": f"{issuer}/auth/introspect",
        "end_session_endpoint": f"{issuer}/auth/end-session",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": list(pkce.METHODS),
        "scopes_supported": scopes,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "email",
            "email_verified",
            "amr",
            "azp",
            "at_hash",
        ],
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }


def well_known_router() -> APIRouter:
    router = APIRouter(tags=["oidc"])

    @router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
    async def configuration(state: State) -> JSONResponse:
        body = discovery(state.settings, state.keys.algorithms)
        return JSONResponse(body, headers={"cache-control": "public, max-age=300"})

    @router.get("/.well-known/oauth-authorization-server", include_in_schema=False)
    async def oauth_metadata(state: State) -> JSONResponse:
        return JSONResponse(discovery(state.settings, state.keys.algorithms))

    @router.get("/.well-known/jwks.json", summary="The public signing keys (JWKS)")
    async def jwks(state: State) -> JSONResponse:
        # Short max-age: a rotated-in key must reach clients quickly; the gateway also
        # refetches on an unknown kid.
        return JSONResponse(
            state.keys.jwks(),
            media_type="application/jwk-set+json",
            headers={"cache-control": "public, max-age=60"},
        )

    @router.get("/.well-known/apple-app-site-association", include_in_schema=False)
    async def apple(state: State) -> JSONResponse:
        if not state.settings.auth_apple_app_ids:
            raise NotFound("No iOS app is configured (spec.app.ios.teamID)")
        app_ids = json.loads(state.settings.auth_apple_app_ids)
        return JSONResponse(
            {
                "applinks": {"details": [{"appIDs": app_ids, "components": [{"/": "/auth/*"}]}]},
                "webcredentials": {"apps": app_ids},
            }
        )

    @router.get("/.well-known/assetlinks.json", include_in_schema=False)
    async def android(state: State) -> JSONResponse:
        if not state.settings.auth_android_app_links:
            raise NotFound("No Android signing certificate is configured")
        links = json.loads(state.settings.auth_android_app_links)
        return JSONResponse(
            [
                {
                    "relation": [
                        "delegate_permission/common.handle_all_urls",
                        "delegate_permission/common.get_login_creds",
                    ],
                    "target": {"namespace": "android_app", **link},
                }
                for link in links
            ]
        )

    return router


# -- the authorization endpoint ---------------------------------------------------------------


def _redirect(uri: str, params: dict[str, str | None]) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{separator}{query}", status_code=303, headers=_NO_STORE)


def _login_key(request: Request, request_id: str) -> str:
    return str(request.app.state.keyspace.key("auth", "login-request", request_id))


def _hash_password(state: AuthState, password: str) -> str:
    return state.hasher.hash(password)


def _check_password(state: AuthState, password_hash: str | None, password: str) -> bool:
    try:
        # Unknown users are checked against a dummy hash: the same work, no timing oracle.
        return state.hasher.verify(password_hash or state.dummy_hash, password) and bool(
            password_hash
        )
    except (VerificationError, InvalidHashError):
        return False


async def _rate_limited(request: Request, state: AuthState) -> int:
    """Seconds to wait when this address has made too many login attempts this minute."""
    ip = client_ip(request) or "unknown"
    window = int(now().timestamp()) // 60
    key = request.app.state.keyspace.key("auth", "login-attempts", ip, str(window))
    redis = request.app.state.redis
    async with (
        unavailable_on_error(),
        redis.pipeline(transaction=True) as pipe,
    ):
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = await pipe.execute()
    if int(count) > state.settings.auth_login_attempts_per_ip_per_minute:
        return 60 - int(now().timestamp()) % 60
    return 0


def authorize_router() -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["oidc"])

    @router.get("/authorize", summary="Authorization endpoint: the login page")
    async def authorize(request: Request, state: State) -> Response:
        params = request.query_params
        settings = state.settings
        name = settings.auth_display_name
        client = settings.clients.get(params.get("client_id"))
        if client is None:
            return message(
                name,
                "Unknown app",
                "This app is not registered with the sign-in service (unknown client_id).",
                400,
                "Check the client_id the app sends; it must be one of its app ids.",
            )
        requested_redirect = params.get("redirect_uri", "")
        redirect_uri = client.redirect_uri(requested_redirect) if requested_redirect else None
        if redirect_uri is None:
            # Never redirect to an unregistered URI (RFC 6749 §4.1.2.1): show the error here.
            return message(
                name,
                "Invalid redirect",
                "The app asked to return to an address it has not registered (redirect_uri).",
                400,
                "Register the redirect URI in the MobilePlatform's spec.app.redirectURIs.",
            )
        issuer = settings.auth_issuer
        stateparam = params.get("state")

        def fail(error: str, description: str) -> RedirectResponse:
            return _redirect(
                requested_redirect,
                {
                    "error": error,
                    "error_description": description,
                    "state": stateparam,
                    "iss": issuer,
                },
            )

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "only response_type=code is supported")
        problem = pkce.challenge_problem(
            params.get("code_challenge"), params.get("code_challenge_method")
        )
        if problem:
            return fail("invalid_request", problem)
        scope = client.allowed_scope(params.get("scope"))
        if scope is None:
            return fail("invalid_scope", f"the app may ask only for: {client.scope}")
        if "none" in params.get("prompt", "").split():
            return fail("login_required", "the user must sign in")
        request_id, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        pending = {
            "client_id": client.client_id,
            "redirect_uri": requested_redirect,
            "state": stateparam,
            "nonce": params.get("nonce"),
            "code_challenge": params.get("code_challenge"),
            "scope": " ".join(scope),
            "csrf": csrf,
            "device_id": params.get("device_id"),
            "device_name": params.get("device_name"),
            "login_hint": params.get("login_hint"),
        }
        redis = request.app.state.redis
        async with unavailable_on_error():
            await redis.set(
                _login_key(request, request_id),
                json.dumps(pending),
                ex=settings.auth_login_request_ttl_seconds,
            )
        response = _login_page(
            request, state, client, request_id, csrf, email=params.get("login_hint") or ""
        )
        response.set_cookie(
            LOGIN_COOKIE,
            csrf,
            httponly=True,
            samesite="lax",
            secure=issuer.startswith("https://"),
            path="/auth/",
            max_age=settings.auth_login_request_ttl_seconds,
        )
        return response

    @router.post("/authorize", summary="Sign in (or create an account) and return to the app")
    async def authorize_submit(
        request: Request,
        state: State,
        db: DbSession,
        request_id: Annotated[str, Form(max_length=100)],
        csrf: Annotated[str, Form(max_length=100)],
        email: Annotated[str, Form(max_length=320)],
        password: Annotated[str, Form(max_length=1024)],
        action: Annotated[str, Form(pattern="^(login|register)$")] = "login",
    ) -> Response:
        settings = state.settings
        name = settings.auth_display_name
        redis = request.app.state.redis
        async with unavailable_on_error():
            raw = await redis.get(_login_key(request, request_id))
        if raw is None:
            return message(
                name,
                "Sign-in expired",
                "This sign-in page is too old.",
                400,
                "Go back to the app and start signing in again.",
            )
        pending = json.loads(raw)
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not (
            secrets.compare_digest(csrf, pending["csrf"])
            and secrets.compare_digest(cookie, pending["csrf"])
        ):
            return message(
                name,
                "Sign-in refused",
                "This form was not sent by the sign-in page in this browser.",
                403,
                "Go back to the app and start again.",
            )
        client = settings.clients.get(pending["client_id"])
        assert client is not None
        ip = client_ip(request)

        def again(error: str, status: int, register: bool = False) -> Response:
            return _login_page(
                request,
                state,
                client,
                request_id,
                pending["csrf"],
                email=email,
                error=error,
                status=status,
                register_open=register,
            )

        wait = await _rate_limited(request, state)
        if wait:
            return again(f"Too many attempts from your network. Try again in {wait} seconds.", 429)
        moment = now()
        email = email.strip()
        if action == "register":
            if not _EMAIL.match(email):
                return again("Enter a valid email address.", 422, register=True)
            if len(password) < settings.auth_min_password_length:
                return again(
                    f"Choose a password of at least "
                    f"{settings.auth_min_password_length} characters.",
                    422,
                    register=True,
                )
            password_hash = await anyio.to_thread.run_sync(_hash_password, state, password)
            try:
                user = await store.create_user(db, email, password_hash)
            except store.EmailTaken:
                return again("An account with this email exists: sign in instead.", 409)
            await store.record(
                db, "user.registered", user_id=user.id, client_id=client.client_id, ip=ip
            )
            await _send_verification(request, state, db, user.id, user.email)
            if settings.auth_require_verified_email:
                return message(
                    name,
                    "Check your email",
                    f"We sent a link to {email}. Open it, then sign in from the app.",
                    200,
                )
        else:
            user_or_none = await store.user_by_email(db, email, lock=True)
            ok = await anyio.to_thread.run_sync(
                _check_password,
                state,
                user_or_none.password_hash if user_or_none else None,
                password,
            )
            if user_or_none is None:
                await store.record(
                    db, "login.failed", client_id=client.client_id, ip=ip, reason="unknown_email"
                )
                return again("Wrong email or password.", 401)
            user = user_or_none
            if rules.is_locked(user.locked_until, moment):
                await store.record(
                    db, "login.locked", user_id=user.id, ip=ip, client_id=client.client_id
                )
                assert user.locked_until is not None
                minutes = max(1, int((user.locked_until - moment).total_seconds() // 60) + 1)
                return again(
                    "Too many failed sign-ins: this account is locked for "
                    f"{minutes} more minute(s).",
                    429,
                )
            if not ok:
                locked = await store.record_failure(db, user, moment, settings.lockout)
                await store.record(
                    db,
                    "login.failed",
                    user_id=user.id,
                    ip=ip,
                    client_id=client.client_id,
                    reason="bad_password",
                    locked_until=locked.isoformat() if locked else None,
                )
                return again("Wrong email or password.", 401)
            if settings.auth_require_verified_email and not user.email_verified:
                return again("Verify your email first: open the link we sent you.", 403)
            await store.reset_failures(db, user.id)
        sid, ended = await store.create_session(
            db,
            user_id=user.id,
            client_id=client.client_id,
            amr="pwd",
            device=store.DeviceInfo(
                pending.get("device_id"),
                pending.get("device_name"),
                request.headers.get("user-agent"),
                ip,
            ),
            now=moment,
            lifetimes=settings.lifetimes,
            cap=settings.auth_max_sessions_per_user,
        )
        await announce_revoked(request, state, ended)
        code = await store.create_code(
            db,
            store.CodeGrant(
                client_id=client.client_id,
                redirect_uri=pending["redirect_uri"],
                code_challenge=pending["code_challenge"],
                scope=pending["scope"],
                nonce=pending.get("nonce"),
                user_id=user.id,
                session_id=sid,
                auth_time=moment,
            ),
            moment,
            timedelta(seconds=settings.auth_code_ttl_seconds),
        )
        await store.record(
            db,
            "login.succeeded",
            user_id=user.id,
            client_id=client.client_id,
            session_id=sid,
            ip=ip,
            method=action,
            ended_sessions=ended,
        )
        async with unavailable_on_error():
            await redis.delete(_login_key(request, request_id))
        response = _redirect(
            pending["redirect_uri"],
            {"code": code, "state": pending["state"], "iss": settings.auth_issuer},
        )
        response.delete_cookie(LOGIN_COOKIE, path="/auth/")
        return response

    return router


def _login_page(
    request: Request,
    state: AuthState,
    client: Client,
    request_id: str,
    csrf: str,
    *,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    register_open: bool = False,
) -> Response:
    return page(
        "login.html",
        status,
        display_name=state.settings.auth_display_name,
        client_name=client.client_name or client.client_id,
        action=f"{state.settings.auth_issuer}/auth/authorize",
        request_id=request_id,
        csrf=csrf,
        email=email,
        error=error,
        notice=None,
        min_password=state.settings.auth_min_password_length,
        register_open=register_open,
    )


async def _send_verification(
    request: Request, state: AuthState, db: AsyncSession, user_id: str, email: str
) -> None:
    token = await store.create_email_token(db, user_id, email, now(), EMAIL_LINK_TTL)
    link = f"{state.settings.auth_issuer}/auth/verify-email?token={token}"
    await state.sender.send(
        Email(
            to=email,
            subject=f"Verify your email for {state.settings.auth_display_name}",
            body=f"Open this link to verify your email address: {link}",
            link=link,
        )
    )


# -- the token endpoint -----------------------------------------------------------------------


def _issue(
    state: AuthState,
    grant: Grant,
    nonce: str | None,
    refresh: str | None,
    **extra: str,
) -> JSONResponse:
    settings = state.settings
    moment = now()
    access = state.keys.sign(
        access_claims(grant, settings.auth_issuer, moment, settings.access_ttl), ACCESS_TOKEN_TYPE
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": settings.auth_access_token_ttl_seconds,
        "scope": " ".join(grant.scope),
        **extra,
    }
    if refresh:
        body["refresh_token"] = refresh
    if "openid" in grant.scope:
        body["id_token"] = state.keys.sign(
            id_claims(
                grant,
                settings.auth_issuer,
                moment,
                timedelta(seconds=settings.auth_id_token_ttl_seconds),
                nonce=nonce,
                access_token=access,
                algorithm=state.keys.active.algorithm,
            ),
            ID_TOKEN_TYPE,
        )
    return JSONResponse(body, headers=_NO_STORE)


_FIELD = Field(default=None, max_length=8192)


class TokenForm(BaseModel):
    """The form parameters of the token, revocation and introspection endpoints (RFC 6749
    §4.1.3 and §6, RFC 8693 §2.1, RFC 7009 §2.1, RFC 7662 §2.1); each endpoint reads its own."""

    model_config = {"extra": "ignore"}

    grant_type: str | None = _FIELD
    client_id: str | None = _FIELD
    code: str | None = _FIELD
    redirect_uri: str | None = _FIELD
    code_verifier: str | None = _FIELD
    refresh_token: str | None = _FIELD
    scope: str | None = _FIELD
    subject_token: str | None = _FIELD
    subject_token_type: str | None = _FIELD
    nonce: str | None = _FIELD
    device_id: str | None = Field(default=None, max_length=200)
    device_name: str | None = Field(default=None, max_length=200)
    token: str | None = _FIELD
    token_type_hint: str | None = _FIELD

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if isinstance(v, str)}


def token_router() -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["oidc"])

    @router.post("/token", summary="Token endpoint (code, refresh, token exchange)")
    async def token(
        request: Request, state: State, db: DbSession, form: Annotated[TokenForm, Form()]
    ) -> Response:
        fields = form.fields()
        settings = state.settings
        if request.headers.get("authorization", "").lower().startswith("basic "):
            return oauth_error(
                "invalid_client",
                "clients are public: send client_id in the body, no client secret",
                401,
            )
        client = settings.clients.get(fields.get("client_id"))
        if client is None:
            return oauth_error("invalid_client", "unknown or missing client_id", 401)
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            return await _code_grant(request, state, db, client, fields)
        if grant_type == "refresh_token":
            return await _refresh_grant(request, state, db, client, fields)
        if grant_type == TOKEN_EXCHANGE:
            return await _exchange_grant(request, state, db, client, fields)
        return oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    return router


async def _grant_for(
    db: AsyncSession,
    user_id: str,
    client_id: str,
    sid: str,
    scope: str,
    auth_time: datetime,
    amr: str,
) -> Grant | None:
    user = await store.get_user(db, user_id)
    if user is None:
        return None
    return Grant(
        user_id=user.id,
        client_id=client_id,
        session_id=sid,
        scope=tuple(scope.split()),
        auth_time=auth_time,
        email=user.email,
        email_verified=user.email_verified,
        amr=(amr,),
    )


async def _code_grant(
    request: Request, state: AuthState, db: AsyncSession, client: Client, fields: dict[str, str]
) -> Response:
    moment = now()
    code = fields.get("code")
    if not code:
        return oauth_error("invalid_request", "code is required")
    grant, why, revoked = await store.redeem_code(db, code, moment)
    if grant is None:
        if revoked:
            await announce_revoked(request, state, [revoked])
        await store.record(db, "token.code_refused", client_id=client.client_id, reason=why)
        return oauth_error("invalid_grant", why)
    if grant.client_id != client.client_id:
        return oauth_error("invalid_grant", "the code was issued to another client")
    if fields.get("redirect_uri") != grant.redirect_uri:
        return oauth_error("invalid_grant", "redirect_uri differs from the authorization request")
    if not pkce.verify(fields.get("code_verifier"), grant.code_challenge):
        return oauth_error("invalid_grant", "code_verifier does not match the code_challenge")
    session = await store.get_session(db, grant.session_id)
    if session is None or session.revoked_at is not None:
        return oauth_error("invalid_grant", "the session of this code has ended")
    issued = await _grant_for(
        db,
        grant.user_id,
        client.client_id,
        grant.session_id,
        grant.scope,
        grant.auth_time,
        session.amr,
    )
    if issued is None:
        return oauth_error("invalid_grant", "the user no longer exists")
    refresh = await store.issue_refresh(
        db,
        session_id=grant.session_id,
        client_id=client.client_id,
        scope=grant.scope,
        parent_hash=None,
        now=moment,
        expires_at=rules.refresh_expiry(session.created_at, moment, state.settings.lifetimes),
    )
    return _issue(state, issued, grant.nonce, refresh)


async def _refresh_grant(
    request: Request, state: AuthState, db: AsyncSession, client: Client, fields: dict[str, str]
) -> Response:
    settings = state.settings
    moment = now()
    token = fields.get("refresh_token")
    if not token:
        return oauth_error("invalid_request", "refresh_token is required")
    outcome = await store.consume_refresh(db, token, moment, settings.refresh_grace)
    if isinstance(outcome, store.Refused):
        if outcome.verdict is rules.RefreshVerdict.REUSE and outcome.session_id:
            await announce_revoked(request, state, [outcome.session_id])
            await store.record(
                db,
                "refresh_token.reuse",
                session_id=outcome.session_id,
                client_id=outcome.client_id,
                ip=client_ip(request),
            )
            _logger.warning("refresh token reuse: session %s revoked", outcome.session_id)
        return oauth_error(
            "invalid_grant",
            {
                rules.RefreshVerdict.UNKNOWN: "the refresh token is unknown",
                rules.RefreshVerdict.EXPIRED: "the refresh token has expired: sign in again",
                rules.RefreshVerdict.REVOKED: "the refresh token was revoked: sign in again",
                rules.RefreshVerdict.REUSE: "the refresh token was already used; every token of "
                "this session is now revoked: sign in again",
            }.get(outcome.verdict, "the refresh token cannot be used"),
        )
    if outcome.client_id != client.client_id:
        return oauth_error("invalid_grant", "the refresh token was issued to another client")
    session = await store.get_session(db, outcome.session_id, lock=True)
    ended = (
        rules.session_end(
            session.created_at,
            session.last_used_at,
            session.revoked_at is not None,
            moment,
            settings.lifetimes,
        )
        if session
        else "revoked"
    )
    if session is None or ended:
        if session is not None and ended in ("idle", "absolute"):
            await store.revoke_session(db, session.id, f"{ended}_timeout", moment)
        return oauth_error("invalid_grant", f"the session has ended ({ended}): sign in again")
    scope = outcome.scope
    if fields.get("scope"):
        narrowed = fields["scope"].split()
        if not set(narrowed) <= set(scope.split()):
            return oauth_error("invalid_scope", "a refresh may only narrow the granted scope")
        scope = " ".join(narrowed)
    await store.touch_session(db, session.id, moment)
    refresh = await store.issue_refresh(
        db,
        session_id=session.id,
        client_id=client.client_id,
        scope=outcome.scope,
        parent_hash=outcome.parent_hash,
        now=moment,
        expires_at=rules.refresh_expiry(session.created_at, moment, settings.lifetimes),
    )
    grant = await _grant_for(
        db, session.user_id, client.client_id, session.id, scope, session.created_at, session.amr
    )
    if grant is None:
        return oauth_error("invalid_grant", "the user no longer exists")
    return _issue(state, grant, None, refresh)


async def _exchange_grant(
    request: Request, state: AuthState, db: AsyncSession, client: Client, fields: dict[str, str]
) -> Response:
    settings = state.settings
    if fields.get("subject_token_type") != ID_TOKEN_TYPE_URN:
        return oauth_error("invalid_request", f"subject_token_type must be {ID_TOKEN_TYPE_URN}")
    if not state.upstreams:
        return oauth_error("invalid_grant", "no upstream provider is configured")
    scope = client.allowed_scope(fields.get("scope"))
    if scope is None:
        return oauth_error("invalid_scope", f"the app may ask only for: {client.scope}")
    try:
        provider, claims = await state.upstreams.verify(fields.get("subject_token", ""))
    except UpstreamTokenError as e:
        await store.record(
            db,
            "login.failed",
            client_id=client.client_id,
            ip=client_ip(request),
            reason="upstream_token",
            detail=str(e),
        )
        return oauth_error("invalid_grant", str(e))
    moment = now()
    user, created = await store.user_for_identity(
        db, provider.issuer, str(claims["sub"]), claims.get("email"), email_verified(claims)
    )
    sid, ended = await store.create_session(
        db,
        user_id=user.id,
        client_id=client.client_id,
        amr="fed",
        device=store.DeviceInfo(
            fields.get("device_id"),
            fields.get("device_name"),
            request.headers.get("user-agent"),
            client_ip(request),
        ),
        now=moment,
        lifetimes=settings.lifetimes,
        cap=settings.auth_max_sessions_per_user,
    )
    await announce_revoked(request, state, ended)
    await store.record(
        db,
        "login.succeeded",
        user_id=user.id,
        client_id=client.client_id,
        session_id=sid,
        ip=client_ip(request),
        method=f"upstream:{provider.name}",
        new_user=created,
    )
    refresh = await store.issue_refresh(
        db,
        session_id=sid,
        client_id=client.client_id,
        scope=" ".join(scope),
        parent_hash=None,
        now=moment,
        expires_at=rules.refresh_expiry(moment, moment, settings.lifetimes),
    )
    grant = Grant(
        user_id=user.id,
        client_id=client.client_id,
        session_id=sid,
        scope=scope,
        auth_time=moment,
        email=user.email,
        email_verified=user.email_verified,
        amr=("fed",),
    )
    return _issue(
        state, grant, fields.get("nonce"), refresh, issued_token_type=ACCESS_TOKEN_TYPE_URN
    )


# -- tokens presented back: userinfo, revocation, introspection, sessions --------------------


@dataclass(frozen=True)
class Caller:
    claims: dict[str, Any]
    session: store.Session

    @property
    def user_id(self) -> str:
        return str(self.claims["sub"])


async def _verify_access(state: AuthState, db: AsyncSession, token: str) -> Caller | None:
    try:
        claims = state.keys.verify(
            token,
            issuer=state.settings.auth_issuer,
            audience=state.settings.auth_issuer,
            typ=ACCESS_TOKEN_TYPE,
        )
    except jwt.InvalidTokenError:
        return None
    session = await store.get_session(db, str(claims.get("sid", "")))
    if session is None or session.revoked_at is not None:
        return None
    return Caller(claims, session)


async def bearer(request: Request, state: State, db: DbSession) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send the access token as Authorization: Bearer <token>")
    caller = await _verify_access(state, db, token.strip())
    if caller is None:
        raise Unauthorized(
            "The access token is invalid, expired or its session was revoked",
            headers={"www-authenticate": 'Bearer error="invalid_token"'},
        )
    return caller


CallerDep = Annotated[Caller, Depends(bearer)]


class LogoutRequest(BaseModel):
    scope: str = Field(
        default="local",
        pattern="^(local|global|others)$",
        description="local: this device; global: every device; others: every device but this one",
    )


def account_router() -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["oidc"])

    @router.get("/userinfo", summary="OIDC UserInfo", operation_id="userinfo_get")
    @router.post("/userinfo", summary="OIDC UserInfo", operation_id="userinfo_post")
    async def userinfo(caller: CallerDep, db: DbSession) -> JSONResponse:
        user = await store.get_user(db, caller.user_id)
        if user is None:
            raise Unauthorized("The user no longer exists")
        body: dict[str, Any] = {"sub": user.id}
        if "email" in str(caller.claims.get("scope", "")).split():
            body.update(email=user.email, email_verified=user.email_verified)
        return JSONResponse(body, headers=_NO_STORE)

    @router.post("/revoke", summary="Token revocation (RFC 7009)")
    async def revoke(
        request: Request, state: State, db: DbSession, form: Annotated[TokenForm, Form()]
    ) -> Response:
        token = form.token
        client = state.settings.clients.get(form.client_id)
        if client is None:
            return oauth_error("invalid_client", "unknown or missing client_id", 401)
        if not isinstance(token, str) or not token:
            return oauth_error("invalid_request", "token is required")
        sid = await _session_of_token(state, db, token, client.client_id)
        if sid and await store.revoke_session(db, sid, "revoked_by_client", now()):
            await announce_revoked(request, state, [sid])
            await store.record(
                db,
                "session.revoked",
                session_id=sid,
                client_id=client.client_id,
                ip=client_ip(request),
                via="revocation_endpoint",
            )
        # RFC 7009 §2.2: 200 whether or not the token was valid.
        return Response(status_code=200, headers=_NO_STORE)

    @router.post("/introspect", summary="Token introspection (RFC 7662)")
    async def introspect(
        state: State, db: DbSession, form: Annotated[TokenForm, Form()]
    ) -> JSONResponse:
        token = form.token
        client = state.settings.clients.get(form.client_id)
        if client is None:
            return oauth_error("invalid_client", "unknown or missing client_id", 401)
        if not isinstance(token, str) or not token:
            return oauth_error("invalid_request", "token is required")
        body = await _introspect(state, db, token)
        # A public client learns only about its own tokens.
        if body.get("client_id") != client.client_id:
            body = {"active": False}
        return JSONResponse(body, headers=_NO_STORE)

    @router.get("/end-session", summary="RP-Initiated Logout", operation_id="end_session_get")
    @router.post("/end-session", summary="RP-Initiated Logout", operation_id="end_session_post")
    async def end_session(
        request: Request,
        state: State,
        db: DbSession,
        id_token_hint: Annotated[str | None, Query()] = None,
        post_logout_redirect_uri: Annotated[str | None, Query()] = None,
        client_id: Annotated[str | None, Query()] = None,
        state_param: Annotated[str | None, Query(alias="state")] = None,
    ) -> Response:
        settings = state.settings
        name = settings.auth_display_name
        sid = None
        hinted_client = client_id
        if id_token_hint:
            try:
                # An expired hint is fine (the user may sign out long after signing in); a
                # forged one is not.
                claims = state.keys.verify(
                    id_token_hint,
                    issuer=settings.auth_issuer,
                    audience=None,
                    typ=ID_TOKEN_TYPE,
                    verify_exp=False,
                )
            except jwt.InvalidTokenError:
                return message(
                    name, "Sign-out refused", "The id_token_hint is not a token we issued.", 400
                )
            sid, hinted_client = claims.get("sid"), claims.get("aud") or client_id
        client = settings.clients.get(hinted_client)
        if sid and client and await store.revoke_session(db, sid, "signed_out", now()):
            await announce_revoked(request, state, [sid])
            await store.record(
                db,
                "session.signed_out",
                session_id=sid,
                client_id=client.client_id,
                ip=client_ip(request),
            )
        if post_logout_redirect_uri:
            target = client.post_logout_redirect_uri(post_logout_redirect_uri) if client else None
            if target is None:
                return message(
                    name,
                    "Signed out",
                    "You are signed out, but the app's return address is not registered.",
                    400,
                )
            return _redirect(post_logout_redirect_uri, {"state": state_param})
        return message(name, "Signed out", "You are signed out. You can close this window.", 200)

    @router.get("/sessions", summary="The caller's signed-in devices")
    async def list_sessions(caller: CallerDep, state: State, db: DbSession) -> dict[str, Any]:
        live = await store.live_sessions(db, caller.user_id, now(), state.settings.lifetimes)
        return {"sessions": [s.public(caller.session.id) for s in live]}

    @router.delete("/sessions/{session_id}", status_code=204, summary="Sign a device out")
    async def delete_session(
        session_id: str, request: Request, caller: CallerDep, state: State, db: DbSession
    ) -> Response:
        target = await store.get_session(db, session_id)
        if target is None or target.user_id != caller.user_id:
            raise NotFound("No such session of yours")
        if await store.revoke_session(db, session_id, "revoked_by_user", now()):
            await announce_revoked(request, state, [session_id])
            await store.record(
                db,
                "session.revoked",
                user_id=caller.user_id,
                session_id=session_id,
                ip=client_ip(request),
                by_session=caller.session.id,
            )
        return Response(status_code=204)

    @router.post("/logout", summary="Sign out this device, every device, or every other one")
    async def logout(
        body: LogoutRequest, request: Request, caller: CallerDep, state: State, db: DbSession
    ) -> dict[str, Any]:
        moment = now()
        if body.scope == "local":
            targets = [caller.session.id]
        else:
            live = await store.live_sessions(db, caller.user_id, moment, state.settings.lifetimes)
            targets = [s.id for s in live if body.scope == "global" or s.id != caller.session.id]
        ended = [
            sid
            for sid in targets
            if await store.revoke_session(db, sid, f"logout_{body.scope}", moment)
        ]
        await announce_revoked(request, state, ended)
        await store.record(
            db,
            "session.signed_out",
            user_id=caller.user_id,
            session_id=caller.session.id,
            ip=client_ip(request),
            scope=body.scope,
            ended=ended,
        )
        return {"ended_sessions": ended}

    @router.get("/verify-email", summary="Open an email verification link")
    async def verify_email(
        state: State, db: DbSession, token: Annotated[str, Query(max_length=200)]
    ) -> Response:
        name = state.settings.auth_display_name
        user_id = await store.use_email_token(db, token, now())
        if user_id is None:
            return message(
                name,
                "Link not valid",
                "This verification link is used, expired or unknown.",
                400,
                "Ask the app to send a new one.",
            )
        await store.record(db, "email.verified", user_id=user_id)
        return message(
            name,
            "Email verified",
            "Your email address is verified. You can return to the app.",
            200,
        )

    @router.post("/verify-email/resend", status_code=202, summary="Send a new verification link")
    async def resend(
        request: Request, caller: CallerDep, state: State, db: DbSession
    ) -> dict[str, str]:
        user = await store.get_user(db, caller.user_id)
        if user is None:
            raise NotFound("No such user")
        if user.email_verified:
            raise ValidationFailed("The email address is already verified")
        await _send_verification(request, state, db, user.id, user.email)
        return {"status": "sent"}

    @router.get("/audit", summary="The caller's recent security events")
    async def my_audit(caller: CallerDep, db: DbSession) -> dict[str, Any]:
        return {"events": await store.audit_events(db, caller.user_id)}

    return router


async def _session_of_token(
    state: AuthState, db: AsyncSession, token: str, client_id: str
) -> str | None:
    found = await store.session_of_refresh(db, token)
    if found:
        sid, owner = found
        return sid if owner == client_id else None
    try:
        claims = state.keys.verify(
            token,
            issuer=state.settings.auth_issuer,
            audience=state.settings.auth_issuer,
            typ=ACCESS_TOKEN_TYPE,
        )
    except jwt.InvalidTokenError:
        return None
    return str(claims["sid"]) if claims.get("client_id") == client_id else None


async def _introspect(state: AuthState, db: AsyncSession, token: str) -> dict[str, Any]:
    caller = await _verify_access(state, db, token)
    if caller is not None:
        c = caller.claims
        return {
            "active": True,
            "token_type": "Bearer",
            **{
                k: c[k]
                for k in (
                    "scope",
                    "client_id",
                    "sub",
                    "exp",
                    "iat",
                    "nbf",
                    "iss",
                    "aud",
                    "jti",
                    "sid",
                )
                if k in c
            },
        }
    row = await store.refresh_token_row(db, token)
    moment = now()
    if row is None or row.consumed_at or row.revoked_at or row.expires_at <= moment:
        return {"active": False}
    session = await store.get_session(db, row.session_id)
    if session is None or rules.session_end(
        session.created_at,
        session.last_used_at,
        session.revoked_at is not None,
        moment,
        state.settings.lifetimes,
    ):
        return {"active": False}
    return {
        "active": True,
        "token_type": "refresh_token",
        "scope": row.scope,
        "client_id": row.client_id,
        "sub": session.user_id,
        "sid": session.id,
        "exp": int(row.expires_at.timestamp()),
        "iat": int(row.issued_at.timestamp()),
        "iss": state.settings.auth_issuer,
    }


def routers() -> list[APIRouter]:
    return [well_known_router(), authorize_router(), token_router(), account_router()]
