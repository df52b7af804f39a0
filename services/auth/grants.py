"""The token endpoint: authorization codes (PKCE-verified), rotating refresh tokens (reuse
revokes the family), and token exchange of an upstream provider's ID token (RFC 8693).

Every token issued carries the scopes asked for less the restricted ones the user does not
hold (:func:`granted_scope`, ``AUTH_RESTRICTED_SCOPES``), decided at each issuance; the
response's ``scope`` says what was granted (RFC 6749 §3.3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.auth import pkce, rules, store
from mobileplane.services.auth.clients import Client
from mobileplane.services.auth.context import (
    ACCESS_TOKEN_TYPE_URN,
    ID_TOKEN_TYPE_URN,
    NO_STORE,
    TOKEN_EXCHANGE,
    AuthState,
    State,
    announce_revoked,
    client_ip,
    logger,
    now,
    oauth_error,
)
from mobileplane.services.auth.settings import AuthSettings
from mobileplane.services.auth.tokens import (
    ACCESS_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    Grant,
    access_claims,
    id_claims,
)
from mobileplane.services.auth.upstream import UpstreamTokenError, email_verified
from mobileplane.services.kit.db import DbSession


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
    return JSONResponse(body, headers=NO_STORE)


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


async def granted_scope(
    db: AsyncSession, settings: AuthSettings, user: store.User, asked: tuple[str, ...]
) -> tuple[str, ...]:
    """``asked`` less the restricted scopes ``user`` does not hold (decided at every
    issuance, refreshes too, so a scope taken away is gone within one access-token lifetime)."""
    restricted = settings.restricted_scopes
    first_account = False
    if set(asked) & restricted & settings.first_account_scopes:
        first_account = await store.is_first_account(db, user.id)
    held = rules.held_scopes(
        restricted,
        settings.first_account_scopes,
        first_account=first_account,
        granted=rules.member_scopes(settings.scope_grants, user.email, user.email_verified),
    )
    return rules.granted_scopes(asked, restricted, held)


async def _grant_for(
    db: AsyncSession,
    settings: AuthSettings,
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
        scope=await granted_scope(db, settings, user, tuple(scope.split())),
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
        state.settings,
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
    outcome = await store.consume_refresh(
        db, token, client.client_id, moment, settings.refresh_grace
    )
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
            logger.warning("refresh token reuse: session %s revoked", outcome.session_id)
        return oauth_error(
            "invalid_grant",
            {
                rules.RefreshVerdict.UNKNOWN: "the refresh token is unknown (to this client)",
                rules.RefreshVerdict.EXPIRED: "the refresh token has expired: sign in again",
                rules.RefreshVerdict.REVOKED: "the refresh token was revoked: sign in again",
                rules.RefreshVerdict.REUSE: "the refresh token was already used; every token of "
                "this session is now revoked: sign in again",
            }.get(outcome.verdict, "the refresh token cannot be used"),
        )
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
        db,
        settings,
        session.user_id,
        client.client_id,
        session.id,
        scope,
        session.created_at,
        session.amr,
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
        scope=await granted_scope(db, settings, user, scope),
        auth_time=moment,
        email=user.email,
        email_verified=user.email_verified,
        amr=("fed",),
    )
    return _issue(
        state, grant, fields.get("nonce"), refresh, issued_token_type=ACCESS_TOKEN_TYPE_URN
    )
