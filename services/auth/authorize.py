"""The authorization endpoint: the login page, sign-in and sign-up, and the redirect back to
the app with a code (authorization code + PKCE, RFC 8252). Failed sign-ins count towards the
account's lockout and the address's rate limit; the form is bound to the browser by a cookie."""

from __future__ import annotations

import json
import logging
import secrets
from datetime import timedelta
from typing import Annotated

import anyio
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.auth import pkce, rules, store
from mobileplane.services.auth.clients import Client
from mobileplane.services.auth.context import (
    EMAIL_LINK_TTL,
    LOGIN_COOKIE,
    AuthState,
    State,
    announce_revoked,
    client_ip,
    now,
    redirect_to,
    valid_email,
)
from mobileplane.services.auth.mail import Email, MailError
from mobileplane.services.auth.pages import message, page
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.redis import unavailable_on_error

_log = logging.getLogger("mobileplane.auth")


def _login_key(request: Request, request_id: str) -> str:
    return str(request.app.state.keyspace.key("auth", "login-request", request_id))


def hash_password(state: AuthState, password: str) -> str:
    return state.hasher.hash(password)


def _check_password(state: AuthState, password_hash: str | None, password: str) -> bool:
    try:
        # Unknown users are checked against a dummy hash: the same work, no timing oracle.
        return state.hasher.verify(password_hash or state.dummy_hash, password) and bool(
            password_hash
        )
    except (VerificationError, InvalidHashError):
        return False


async def login_rate_limited(request: Request, state: AuthState) -> int:
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
            return redirect_to(
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

        wait = await login_rate_limited(request, state)
        if wait:
            return again(f"Too many attempts from your network. Try again in {wait} seconds.", 429)
        moment = now()
        email = email.strip()
        if action == "register":
            if not valid_email(email):
                return again("Enter a valid email address.", 422, register=True)
            if len(password) < settings.auth_min_password_length:
                return again(
                    f"Choose a password of at least "
                    f"{settings.auth_min_password_length} characters.",
                    422,
                    register=True,
                )
            password_hash = await anyio.to_thread.run_sync(hash_password, state, password)
            try:
                user = await store.create_user(db, email, password_hash)
            except store.EmailTaken:
                return again("An account with this email exists: sign in instead.", 409)
            await store.record(
                db, "user.registered", user_id=user.id, client_id=client.client_id, ip=ip
            )
            try:
                await send_verification(request, state, db, user.id, user.email)
            except MailError as e:
                # The account stands; the user asks for another link (verify-email/resend).
                _log.warning("verification email to a new account not sent: %s", e)
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
        response = redirect_to(
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


async def send_verification(
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
