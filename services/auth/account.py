"""Endpoints that take a token back: userinfo, revocation (RFC 7009), introspection (RFC 7662),
RP-initiated logout, the user's device sessions and sign-out scopes, email verification,
and the user's security events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.auth import rules, store
from mobileplane.services.auth.authorize import send_verification
from mobileplane.services.auth.context import (
    NO_STORE,
    AuthState,
    State,
    announce_revoked,
    client_ip,
    now,
    oauth_error,
    redirect_to,
)
from mobileplane.services.auth.grants import TokenForm
from mobileplane.services.auth.mail import MailError
from mobileplane.services.auth.pages import message
from mobileplane.services.auth.tokens import (
    ACCESS_TOKEN_TYPE,
    ID_TOKEN_TYPE,
)
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import NotFound, Unauthorized, Unavailable, ValidationFailed


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
        return JSONResponse(body, headers=NO_STORE)

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
        return Response(status_code=200, headers=NO_STORE)

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
        return JSONResponse(body, headers=NO_STORE)

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
            return redirect_to(post_logout_redirect_uri, {"state": state_param})
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
        try:
            await send_verification(request, state, db, user.id, user.email)
        except MailError as e:
            raise Unavailable("The email could not be sent: try again later", retry_after=60) from e
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
