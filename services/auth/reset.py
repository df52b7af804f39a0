"""Forgotten passwords: a single-use link by email, then a new password, every device out.

- ``GET /auth/password/forgot`` shows a form; ``POST`` (``email``) answers the same page
  whether or not an account exists (no way to learn who has one), and, when one does and it
  was not sent a link in the last minute, emails a link valid for an hour — after the
  response, so the answer takes as long either way. Posting is rate-limited per address like
  sign-in attempts. A relay that fails is logged, not shown.
- ``GET /auth/password/reset?token=`` shows the new-password form without spending the link
  (mail scanners open links); ``POST`` (``token``, ``password``, ``confirm``; rate-limited
  like sign-in, and hashing only for a live link) checks the password policy, spends the
  link (once: one conditional UPDATE), sets the new argon2id hash, clears failed attempts
  and any lock, voids the user's other reset links, and signs every device out — sessions
  revoked and announced to the gateway before the commit, as a sign-out is. Audit event
  ``password.reset``.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from starlette.background import BackgroundTask

from mobileplane.services.auth import store
from mobileplane.services.auth.authorize import hash_password, login_rate_limited
from mobileplane.services.auth.context import (
    RESET_LINK_TTL,
    AuthState,
    State,
    announce_revoked,
    client_ip,
    now,
    valid_email,
)
from mobileplane.services.auth.mail import Email, MailError
from mobileplane.services.auth.pages import message, page
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.redis import unavailable_on_error

_log = logging.getLogger("mobileplane.auth")

#: Seconds between two reset emails to one address (the rest are dropped, silently).
MAIL_INTERVAL = 60


def _form(state: AuthState, status: int = 200, **values: Any) -> HTMLResponse:
    return page(
        "password.html",
        status,
        display_name=state.settings.auth_display_name,
        min_password=state.settings.auth_min_password_length,
        **values,
    )


async def _first_mail_this_minute(request: Request, email: str) -> bool:
    digest = hashlib.sha256(email.lower().encode()).hexdigest()[:32]
    key = request.app.state.keyspace.key("auth", "reset-mail", digest)
    async with unavailable_on_error():
        return bool(await request.app.state.redis.set(key, "1", nx=True, ex=MAIL_INTERVAL))


async def _send(state: AuthState, mail: Email) -> None:
    try:
        await state.sender.send(mail)
    except MailError as e:
        _log.warning("password-reset email not sent: %s", e)


def password_router() -> APIRouter:
    router = APIRouter(prefix="/auth/password", tags=["account"])

    @router.get("/forgot", summary="Forgotten password: the form", response_class=HTMLResponse)
    async def forgot_form(state: State) -> HTMLResponse:
        return _form(state, step="forgot", email="")

    @router.post("/forgot", summary="Email a password-reset link", response_class=HTMLResponse)
    async def forgot(
        request: Request, state: State, db: DbSession, email: Annotated[str, Form()] = ""
    ) -> HTMLResponse:
        name = state.settings.auth_display_name
        email = email.strip()
        wait = await login_rate_limited(request, state)
        if wait:
            return message(name, "Too many attempts", f"Try again in {wait} seconds.", 429)
        if not valid_email(email):
            return _form(state, 422, step="forgot", email=email, error="Enter an email address.")
        user = await store.user_by_email(db, email)
        mail: Email | None = None
        if user is not None and await _first_mail_this_minute(request, user.email):
            token = await store.create_email_token(
                db, user.id, user.email, now(), RESET_LINK_TTL, purpose=store.RESET
            )
            await store.record(
                db, "password.reset_requested", user_id=user.id, ip=client_ip(request)
            )
            link = f"{state.settings.auth_issuer}/auth/password/reset?token={token}"
            mail = Email(
                to=user.email,
                subject=f"Reset your {name} password",
                body=(
                    f"Someone (we hope you) asked to reset the password of {user.email}.\n\n"
                    f"Open this link within an hour to choose a new one: {link}\n\n"
                    "If it was not you, ignore this email: your password stays as it is."
                ),
                link=link,
            )
        answer = message(
            name,
            "Check your email",
            f"If an account exists for {email}, we sent it a link to choose a new password. "
            "The link works for an hour.",
            200,
        )
        if mail is not None:
            # After the response (and the commit): the answer takes the same time whether or
            # not the account exists, and a relay failure is logged, never shown.
            answer.background = BackgroundTask(_send, state, mail)
        return answer

    @router.get("/reset", summary="Password reset: the form", response_class=HTMLResponse)
    async def reset_form(
        state: State, db: DbSession, token: Annotated[str, Query(max_length=128)] = ""
    ) -> HTMLResponse:
        if not token or not await store.reset_token_is_live(db, token, now()):
            return _expired(state)
        return _form(state, step="reset", token=token)

    @router.post("/reset", summary="Set a new password", response_class=HTMLResponse)
    async def reset(
        request: Request,
        state: State,
        db: DbSession,
        token: Annotated[str, Form(max_length=128)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        confirm: Annotated[str, Form(max_length=1024)] = "",
    ) -> HTMLResponse:
        settings = state.settings
        wait = await login_rate_limited(request, state)
        if wait:
            return message(
                settings.auth_display_name, "Too many attempts", f"Try again in {wait} s.", 429
            )
        # A cheap look first: hashing (argon2id, deliberately slow) only for a live link.
        if not token or not await store.reset_token_is_live(db, token, now()):
            return _expired(state)
        if len(password) < settings.auth_min_password_length:
            error = f"Choose a password of at least {settings.auth_min_password_length} characters."
            return _form(state, 422, step="reset", token=token, error=error)
        if password != confirm:
            return _form(state, 422, step="reset", token=token, error="The passwords differ.")
        password_hash = await anyio.to_thread.run_sync(hash_password, state, password)
        moment = now()
        user = await store.reset_password(db, token, password_hash, moment)
        if user is None:
            return _expired(state)
        live = await store.live_sessions(db, user.id, moment, settings.lifetimes)
        ended = [
            s.id for s in live if await store.revoke_session(db, s.id, "password_reset", moment)
        ]
        await announce_revoked(request, state, ended)  # before the commit: or nothing changes
        await store.record(
            db, "password.reset", user_id=user.id, ip=client_ip(request), ended=ended
        )
        return message(
            settings.auth_display_name,
            "Password changed",
            "Your password is changed and every device was signed out. Sign in again from "
            "the app with the new password.",
            200,
        )

    return router


def _expired(state: AuthState) -> HTMLResponse:
    return message(
        state.settings.auth_display_name,
        "Link expired",
        "This password-reset link was used already or has expired.",
        400,
        "Ask for a new one from the sign-in page (“Forgot your password?”).",
    )
