"""The auth service's decisions, as pure functions of plain data and the clock.

- **Refresh tokens** (:func:`judge_refresh`): single-use and rotated. Presenting a token that
  was already used is either the app retrying a refresh whose answer it lost — forgiven only
  within the configured grace window and only for the *immediate parent* of the family's live
  token — or a replay by someone who stole it, which revokes the whole family (RFC 9700
  §4.14.2, OAuth 2.1 §4.3.1). The consumption itself is an atomic conditional update in the
  store; this module judges what to do when that update finds nothing.
- **Sessions** (:func:`session_end`, :func:`refresh_expiry`, :func:`sessions_to_evict`): idle and
  absolute lifetimes, and an optional cap on sessions per user (least recently used go first).
- **Lockout** (:func:`after_failed_login`): consecutive failed logins lock the account for a
  time that doubles with each further failure, capped.
- **Restricted scopes** (:func:`granted_scopes`): a client's registration says which scopes it
  may ask for; some scopes are for the platform's people (developers, release managers), not
  for every user of an app, and only users who hold them get them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

#: The longest grace window we allow: a longer one turns a stolen token into a usable one.
MAX_REFRESH_GRACE = timedelta(seconds=60)


class RefreshVerdict(enum.Enum):
    UNKNOWN = "unknown"  # not a token we issued (or long purged)
    EXPIRED = "expired"
    REVOKED = "revoked"  # its family or session was revoked
    GRACE_REPLAY = "grace_replay"  # a lost answer: issue again, superseding the unused child
    REUSE = "reuse"  # a superseded token presented again: revoke the family


@dataclass(frozen=True)
class PresentedRefresh:
    """What the store knows of a refresh token that could not be consumed."""

    expires_at: datetime
    revoked: bool
    consumed_at: datetime | None
    #: Whether the token's child is the family's live token (unused, not revoked): then the
    #: presented token is the immediate parent of what the app should hold now.
    child_is_live: bool


def judge_refresh(
    token: PresentedRefresh | None, now: datetime, grace: timedelta
) -> RefreshVerdict:
    """Why a presented refresh token was not consumed, and what follows from it."""
    if grace > MAX_REFRESH_GRACE:
        raise ValueError(f"the refresh grace window is at most {MAX_REFRESH_GRACE}")
    if token is None:
        return RefreshVerdict.UNKNOWN
    if token.revoked:
        return RefreshVerdict.REVOKED
    if token.consumed_at is None:
        # Not consumed, not revoked, yet the conditional update missed it: it has expired.
        return RefreshVerdict.EXPIRED
    if token.child_is_live and now - token.consumed_at <= grace:
        return RefreshVerdict.GRACE_REPLAY
    return RefreshVerdict.REUSE


@dataclass(frozen=True)
class SessionLifetimes:
    idle: timedelta  # a session not refreshed for this long ends
    absolute: timedelta  # a session ends this long after the login, whatever happens


def session_end(
    created_at: datetime,
    last_used_at: datetime,
    revoked: bool,
    now: datetime,
    lifetimes: SessionLifetimes,
) -> str | None:
    """Why a session is over (``"revoked"``, ``"idle"``, ``"absolute"``), or ``None``."""
    if revoked:
        return "revoked"
    if now >= created_at + lifetimes.absolute:
        return "absolute"
    if now >= last_used_at + lifetimes.idle:
        return "idle"
    return None


def refresh_expiry(created_at: datetime, now: datetime, lifetimes: SessionLifetimes) -> datetime:
    """When a refresh token issued now expires: the idle limit, never past the absolute one."""
    return min(now + lifetimes.idle, created_at + lifetimes.absolute)


@dataclass(frozen=True)
class LiveSession:
    session_id: str
    last_used_at: datetime


def sessions_to_evict(
    live: list[LiveSession], cap: int | None, making_room_for: int = 1
) -> list[str]:
    """Sessions to end so that ``making_room_for`` new ones fit under ``cap`` (LRU first)."""
    if cap is None:
        return []
    excess = len(live) + making_room_for - cap
    if excess <= 0:
        return []
    oldest = sorted(live, key=lambda s: (s.last_used_at, s.session_id))
    return [s.session_id for s in oldest[:excess]]


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = 5  # consecutive failures before the first lock
    base: timedelta = timedelta(seconds=60)  # the first lock; doubles with each failure after
    maximum: timedelta = timedelta(hours=1)


def after_failed_login(
    failures_before: int, now: datetime, policy: LockoutPolicy
) -> tuple[int, datetime | None]:
    """The failure count after one more failure, and until when the account is locked."""
    failures = failures_before + 1
    if failures < policy.threshold:
        return failures, None
    doublings = min(failures - policy.threshold, 20)
    lock = min(policy.base * (2**doublings), policy.maximum)
    return failures, now + lock


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until


def granted_scopes(
    asked: tuple[str, ...], restricted: frozenset[str], held: frozenset[str]
) -> tuple[str, ...]:
    """The scopes a token gets for ``asked`` (already allowed for the client): the restricted
    ones only if the user holds them. Never an error: an authorization server may grant less
    than asked (RFC 6749 §3.3), and the token response's ``scope`` says what was granted, so a
    client can tell the user what is missing.

    >>> granted_scopes(("openid", "telemetry:read"), frozenset({"telemetry:read"}), frozenset())
    ('openid',)
    """
    return tuple(s for s in asked if s not in restricted or s in held)


def held_scopes(
    restricted: frozenset[str],
    first_account_scopes: frozenset[str],
    *,
    first_account: bool,
    granted: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """The restricted scopes a user holds: the first account's (the quick start's developer)
    when the user is the platform's first account, and those granted to the user's verified
    email (``AUTH_SCOPE_GRANTS``, the MobilePlatform's ``spec.auth.members``)."""
    first = first_account_scopes if first_account else frozenset()
    return (first | granted) & restricted


def member_scopes(
    grants: Mapping[str, frozenset[str]], email: str | None, email_verified: bool
) -> frozenset[str]:
    """The scopes granted to a user's email, only once the user has proved it is theirs: an
    unverified address is anyone's claim (register as the release manager's email first, get
    their scopes)."""
    if not email or not email_verified:
        return frozenset()
    return grants.get(email.strip().lower(), frozenset())
