"""Revocations recorded in a transaction; their keys outlive every access token."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.operator.spec import Auth
from mobileplane.services.auth.settings import AuthSettings
from mobileplane.services.kit.revocation import (
    ANNOUNCE_TTL_SECONDS,
    MAX_ACCESS_TOKEN_TTL_SECONDS,
    pending,
    revoke_on_commit,
)


def _maximum(model: type, field: str) -> int:
    (limit,) = [m.le for m in model.model_fields[field].metadata if hasattr(m, "le")]
    return int(limit)


def test_no_token_lifetime_outlives_an_announced_revocation() -> None:
    assert _maximum(AuthSettings, "auth_access_token_ttl_seconds") == MAX_ACCESS_TOKEN_TTL_SECONDS
    assert _maximum(Auth, "access_token_ttl_seconds") == MAX_ACCESS_TOKEN_TTL_SECONDS
    assert ANNOUNCE_TTL_SECONDS > MAX_ACCESS_TOKEN_TTL_SECONDS


def test_sessions_are_recorded_once_per_transaction() -> None:
    db, other = AsyncSession(), AsyncSession()  # no bind: nothing connects
    assert pending(db) == []
    revoke_on_commit(db, ["ses_b", "ses_a"])
    revoke_on_commit(db, iter(["ses_a", "ses_c"]))
    assert pending(db) == ["ses_a", "ses_b", "ses_c"]
    assert pending(other) == []
