"""The auth service's reads and writes, inside the caller's transaction.

Every token (authorization code, refresh token, email link) is random, returned once to its
holder and stored only as its SHA-256. Single use is enforced by conditional updates
(``… WHERE used_at IS NULL RETURNING``): of two concurrent redemptions exactly one gets the
row, the other finds nothing and is judged by :func:`rules.judge_refresh`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.auth import rules
from mobileplane.services.auth.models import (
    audit,
    codes,
    email_tokens,
    identities,
    refresh_tokens,
    sessions,
    users,
)
from mobileplane.services.kit.revocation import revoke_on_commit


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


# -- users ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    id: str
    email: str
    email_verified: bool
    password_hash: str | None
    failed_logins: int
    locked_until: datetime | None


def _user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        email_verified=row.email_verified,
        password_hash=row.password_hash,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
    )


class EmailTaken(Exception):
    pass


async def create_user(
    db: AsyncSession, email: str, password_hash: str | None, *, verified: bool = False
) -> User:
    user_id = new_id("usr")
    try:
        async with db.begin_nested():
            await db.execute(
                insert(users).values(
                    id=user_id, email=email, password_hash=password_hash, email_verified=verified
                )
            )
    except IntegrityError:
        raise EmailTaken(email) from None
    found = await get_user(db, user_id)
    assert found is not None
    return found


async def get_user(db: AsyncSession, user_id: str) -> User | None:
    row = (await db.execute(select(users).where(users.c.id == user_id))).first()
    return _user(row) if row else None


async def is_first_account(db: AsyncSession, user_id: str) -> bool:
    """Whether ``user_id`` is the platform's earliest created account."""
    first = await db.scalar(select(users.c.id).order_by(users.c.created_at, users.c.id).limit(1))
    return first == user_id


async def user_by_email(db: AsyncSession, email: str, *, lock: bool = False) -> User | None:
    query = select(users).where(func.lower(users.c.email) == email.lower())
    if lock:
        query = query.with_for_update()
    row = (await db.execute(query)).first()
    return _user(row) if row else None


async def record_failure(
    db: AsyncSession, user: User, now: datetime, policy: rules.LockoutPolicy
) -> datetime | None:
    failures, locked_until = rules.after_failed_login(user.failed_logins, now, policy)
    await db.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(failed_logins=failures, locked_until=locked_until)
    )
    return locked_until


async def reset_failures(db: AsyncSession, user_id: str) -> None:
    await db.execute(
        update(users).where(users.c.id == user_id).values(failed_logins=0, locked_until=None)
    )


async def mark_verified(db: AsyncSession, user_id: str) -> None:
    await db.execute(update(users).where(users.c.id == user_id).values(email_verified=True))


async def user_for_identity(
    db: AsyncSession, issuer: str, subject: str, email: str | None, email_verified: bool
) -> tuple[User, bool]:
    """The user linked to an upstream identity, created (or linked by verified email) on first
    sign-in; the flag says whether the user is new."""
    row = (
        await db.execute(
            select(identities.c.user_id).where(
                identities.c.issuer == issuer, identities.c.subject == subject
            )
        )
    ).first()
    if row:
        user = await get_user(db, row.user_id)
        assert user is not None
        return user, False
    created = False
    user = await user_by_email(db, email) if email and email_verified else None
    if user is None:
        # An upstream account without a (verified) email gets a placeholder address that can
        # never collide with a real one.
        address = email if email and email_verified else f"{subject}@{issuer_host(issuer)}.invalid"
        try:
            user = await create_user(db, address, None, verified=bool(email and email_verified))
        except EmailTaken:
            user = await user_by_email(db, address)
            assert user is not None
        created = True
    await db.execute(
        insert(identities).values(issuer=issuer, subject=subject, user_id=user.id, email=email)
    )
    return user, created


def issuer_host(issuer: str) -> str:
    return issuer.split("://", 1)[-1].split("/", 1)[0] or "upstream"


# -- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    client_id: str
    device_id: str | None
    device_name: str | None
    user_agent: str | None
    ip: str | None
    amr: str
    created_at: datetime
    last_used_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None

    def public(self, current: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "device_id": self.device_id,
            "device_name": self.device_name,
            "user_agent": self.user_agent,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat(),
            "current": self.id == current,
        }


def _session(row: Any) -> Session:
    return Session(**{name: getattr(row, name) for name in Session.__dataclass_fields__})


async def get_session(db: AsyncSession, sid: str, *, lock: bool = False) -> Session | None:
    query = select(sessions).where(sessions.c.id == sid)
    if lock:
        query = query.with_for_update()
    row = (await db.execute(query)).first()
    return _session(row) if row else None


async def live_sessions(
    db: AsyncSession, user_id: str, now: datetime, lifetimes: rules.SessionLifetimes
) -> list[Session]:
    rows = (
        await db.execute(
            select(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .order_by(sessions.c.last_used_at.desc())
        )
    ).all()
    found = [_session(r) for r in rows]
    return [
        s
        for s in found
        if rules.session_end(s.created_at, s.last_used_at, False, now, lifetimes) is None
    ]


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str | None = None
    device_name: str | None = None
    user_agent: str | None = None
    ip: str | None = None


async def create_session(
    db: AsyncSession,
    *,
    user_id: str,
    client_id: str,
    amr: str,
    device: DeviceInfo,
    now: datetime,
    lifetimes: rules.SessionLifetimes,
    cap: int | None,
) -> tuple[str, list[str]]:
    """A new session; returns its id and the sessions it ended (the same device signing in
    again, and the least recently used ones over the per-user cap)."""
    # Serialise concurrent sign-ins of one user, so the cap holds.
    await db.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
    live = await live_sessions(db, user_id, now, lifetimes)
    replaced = [
        s.id
        for s in live
        if device.device_id and s.device_id == device.device_id and s.client_id == client_id
    ]
    remaining = [rules.LiveSession(s.id, s.last_used_at) for s in live if s.id not in set(replaced)]
    evicted = rules.sessions_to_evict(remaining, cap)
    for sid in replaced:
        await revoke_session(db, sid, "replaced", now)
    for sid in evicted:
        await revoke_session(db, sid, "session_cap", now)
    sid = new_id("sid")
    await db.execute(
        insert(sessions).values(
            id=sid,
            user_id=user_id,
            client_id=client_id,
            device_id=device.device_id,
            device_name=device.device_name,
            user_agent=(device.user_agent or "")[:300] or None,
            ip=device.ip,
            amr=amr,
            created_at=now,
            last_used_at=now,
        )
    )
    return sid, [*replaced, *evicted]


async def revoke_session(db: AsyncSession, sid: str, reason: str, now: datetime) -> bool:
    """End a session and its refresh tokens; ``False`` if it was already ended."""
    result = await db.execute(
        update(sessions)
        .where(sessions.c.id == sid, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .returning(sessions.c.id)
    )
    await db.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.session_id == sid, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.first() is not None


# -- authorization codes ----------------------------------------------------------------------


@dataclass(frozen=True)
class CodeGrant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    nonce: str | None
    user_id: str
    session_id: str
    auth_time: datetime


async def create_code(db: AsyncSession, grant: CodeGrant, now: datetime, ttl: timedelta) -> str:
    code = new_token()
    await db.execute(
        insert(codes).values(code_hash=token_hash(code), expires_at=now + ttl, **grant.__dict__)
    )
    return code


async def redeem_code(
    db: AsyncSession, code: str, now: datetime
) -> tuple[CodeGrant | None, str, str | None]:
    """The grant behind ``code``, used up atomically; else ``None``, why, and the session
    revoked because of it: a code presented twice ends the session it created (RFC 6749
    §4.1.2: the server "SHOULD revoke … all tokens previously issued based on that code")."""
    row = (
        await db.execute(
            update(codes)
            .where(codes.c.code_hash == token_hash(code), codes.c.used_at.is_(None))
            .values(used_at=now)
            .returning(codes)
        )
    ).first()
    if row is None:
        used = (
            await db.execute(
                select(codes.c.session_id).where(
                    codes.c.code_hash == token_hash(code), codes.c.used_at.is_not(None)
                )
            )
        ).first()
        if used:
            await revoke_session(db, used.session_id, "code_reuse", now)
            return (
                None,
                "the authorization code was already used; its session is revoked",
                used.session_id,
            )
        return None, "the authorization code is unknown", None
    if row.expires_at <= now:
        return None, "the authorization code has expired", None
    grant = CodeGrant(**{name: getattr(row, name) for name in CodeGrant.__dataclass_fields__})
    return grant, "", None


# -- refresh tokens ---------------------------------------------------------------------------


async def issue_refresh(
    db: AsyncSession,
    *,
    session_id: str,
    client_id: str,
    scope: str,
    parent_hash: str | None,
    now: datetime,
    expires_at: datetime,
) -> str:
    token = new_token()
    await db.execute(
        insert(refresh_tokens).values(
            token_hash=token_hash(token),
            session_id=session_id,
            parent_hash=parent_hash,
            client_id=client_id,
            scope=scope,
            issued_at=now,
            expires_at=expires_at,
        )
    )
    return token


@dataclass(frozen=True)
class Consumed:
    """A refresh token redeemed (or a forgiven replay): what to issue next."""

    session_id: str
    client_id: str
    scope: str
    parent_hash: str


@dataclass(frozen=True)
class Refused:
    verdict: rules.RefreshVerdict
    session_id: str | None
    client_id: str | None


async def consume_refresh(
    db: AsyncSession, token: str, client_id: str, now: datetime, grace: timedelta
) -> Consumed | Refused:
    """Redeem a refresh token of ``client_id`` atomically, or judge why not (revoking the
    family on reuse). Another client's token is not even touched: presenting it by mistake
    must not spend it for its owner."""
    hashed = token_hash(token)
    row = (
        await db.execute(
            update(refresh_tokens)
            .where(
                refresh_tokens.c.token_hash == hashed,
                refresh_tokens.c.client_id == client_id,
                refresh_tokens.c.consumed_at.is_(None),
                refresh_tokens.c.revoked_at.is_(None),
                refresh_tokens.c.expires_at > now,
            )
            .values(consumed_at=now)
            .returning(refresh_tokens)
        )
    ).first()
    if row is not None:
        return Consumed(row.session_id, row.client_id, row.scope, hashed)
    found = (
        await db.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == hashed))
    ).first()
    if found is None or found.client_id != client_id:
        return Refused(rules.RefreshVerdict.UNKNOWN, None, None)
    child = (
        await db.execute(
            select(refresh_tokens.c.token_hash).where(
                refresh_tokens.c.parent_hash == hashed,
                refresh_tokens.c.consumed_at.is_(None),
                refresh_tokens.c.revoked_at.is_(None),
            )
        )
    ).first()
    verdict = rules.judge_refresh(
        rules.PresentedRefresh(
            expires_at=found.expires_at,
            revoked=found.revoked_at is not None,
            consumed_at=found.consumed_at,
            child_is_live=child is not None,
        ),
        now,
        grace,
    )
    if verdict is rules.RefreshVerdict.GRACE_REPLAY:
        assert child is not None
        # Supersede the unused child atomically: of two concurrent replays only one wins.
        superseded = (
            await db.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.token_hash == child.token_hash,
                    refresh_tokens.c.consumed_at.is_(None),
                    refresh_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
                .returning(refresh_tokens.c.token_hash)
            )
        ).first()
        if superseded is not None:
            return Consumed(found.session_id, found.client_id, found.scope, hashed)
        verdict = rules.RefreshVerdict.REUSE
    if verdict is rules.RefreshVerdict.REUSE:
        await revoke_session(db, found.session_id, "refresh_token_reuse", now)
    return Refused(verdict, found.session_id, found.client_id)


async def refresh_token_row(db: AsyncSession, token: str) -> Any:
    return (
        await db.execute(
            select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash(token))
        )
    ).first()


async def touch_session(db: AsyncSession, sid: str, now: datetime) -> None:
    await db.execute(update(sessions).where(sessions.c.id == sid).values(last_used_at=now))


async def session_of_refresh(db: AsyncSession, token: str) -> tuple[str, str] | None:
    row = (
        await db.execute(
            select(refresh_tokens.c.session_id, refresh_tokens.c.client_id).where(
                refresh_tokens.c.token_hash == token_hash(token)
            )
        )
    ).first()
    return (row.session_id, row.client_id) if row else None


# -- email links: verification and password reset ---------------------------------------------

VERIFY, RESET = "verify", "reset"


async def create_email_token(
    db: AsyncSession,
    user_id: str,
    email: str,
    now: datetime,
    ttl: timedelta,
    purpose: str = VERIFY,
) -> str:
    token = new_token()
    await db.execute(
        insert(email_tokens).values(
            token_hash=token_hash(token),
            user_id=user_id,
            email=email,
            expires_at=now + ttl,
            purpose=purpose,
        )
    )
    return token


def _live_token(token: str, purpose: str, now: datetime) -> Any:
    return (
        email_tokens.c.token_hash == token_hash(token),
        email_tokens.c.purpose == purpose,
        email_tokens.c.used_at.is_(None),
        email_tokens.c.expires_at > now,
    )


async def _spend_email_token(
    db: AsyncSession, token: str, purpose: str, now: datetime
) -> User | None:
    """Spend a link once (one conditional UPDATE: of two concurrent uses one wins); the user
    it was made for, unless the address changed since."""
    row = (
        await db.execute(
            update(email_tokens)
            .where(*_live_token(token, purpose, now))
            .values(used_at=now)
            .returning(email_tokens.c.user_id, email_tokens.c.email)
        )
    ).first()
    if row is None:
        return None
    user = await get_user(db, row.user_id)
    if user is None or user.email.lower() != row.email.lower():
        return None  # the address changed since the link was sent
    return user


async def use_email_token(db: AsyncSession, token: str, now: datetime) -> str | None:
    """The user whose email the link verifies (once, before it expires), or ``None``."""
    user = await _spend_email_token(db, token, VERIFY, now)
    if user is None:
        return None
    await mark_verified(db, user.id)
    return user.id


async def reset_token_is_live(db: AsyncSession, token: str, now: datetime) -> bool:
    """Whether a reset link can still be used (shown before the form; not spent)."""
    found = await db.execute(select(email_tokens.c.user_id).where(*_live_token(token, RESET, now)))
    return found.first() is not None


async def reset_password(
    db: AsyncSession, token: str, password_hash: str, now: datetime
) -> User | None:
    """Spend a reset link and set the user's new password (clearing failures and any lock);
    the user, or ``None`` for a used, expired or unknown link."""
    user = await _spend_email_token(db, token, RESET, now)
    if user is None:
        return None
    await db.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(password_hash=password_hash, failed_logins=0, locked_until=None)
    )
    # Every other reset link of the user is void now.
    await db.execute(
        update(email_tokens)
        .where(
            email_tokens.c.user_id == user.id,
            email_tokens.c.purpose == RESET,
            email_tokens.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return user


# -- audit ------------------------------------------------------------------------------------


async def record(
    db: AsyncSession,
    event: str,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    session_id: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> None:
    await db.execute(
        insert(audit).values(
            type=event,
            user_id=user_id,
            client_id=client_id,
            session_id=session_id,
            ip=ip,
            details=details,
        )
    )


async def audit_events(db: AsyncSession, user_id: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = (
        await db.execute(
            select(audit).where(audit.c.user_id == user_id).order_by(audit.c.id.desc()).limit(limit)
        )
    ).all()
    return [
        {
            "at": r.at.isoformat(),
            "type": r.type,
            "client_id": r.client_id,
            "session_id": r.session_id,
            "ip": r.ip,
            "details": r.details,
        }
        for r in rows
    ]


# -- data-subject requests --------------------------------------------------------------------


class AuthSubjectData:
    """What auth holds about a user: account, upstream links, sessions, audit trail."""

    service = "auth"

    async def export(self, session: AsyncSession, subject: str) -> dict[str, Any]:
        user = await get_user(session, subject)
        if user is None:
            return {}
        links = (
            await session.execute(
                select(identities.c.issuer, identities.c.email, identities.c.created_at).where(
                    identities.c.user_id == subject
                )
            )
        ).all()
        rows = (await session.execute(select(sessions).where(sessions.c.user_id == subject))).all()
        return {
            "account": {
                "id": user.id,
                "email": user.email,
                "email_verified": user.email_verified,
                "has_password": user.password_hash is not None,
            },
            "linked_providers": [
                {"issuer": r.issuer, "email": r.email, "linked_at": r.created_at.isoformat()}
                for r in links
            ],
            "sessions": [
                {**_session(r).public(), "revoked_at": r.revoked_at and r.revoked_at.isoformat()}
                for r in rows
            ],
            "audit": await audit_events(session, subject, limit=1000),
        }

    async def erase(self, session: AsyncSession, subject: str) -> int:
        # Deleting the user deletes the sessions; their access tokens must stop working at
        # the gateway too, not when they expire: announced by the transaction's owner.
        live = await session.execute(
            select(sessions.c.id).where(
                sessions.c.user_id == subject, sessions.c.revoked_at.is_(None)
            )
        )
        revoke_on_commit(session, live.scalars())
        removed = await session.execute(
            delete(audit).where(audit.c.user_id == subject).returning(audit.c.id)
        )
        count = len(removed.all())
        deleted = await session.execute(
            delete(users).where(users.c.id == subject).returning(users.c.id)
        )
        return count + len(deleted.all())
