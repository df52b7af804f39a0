"""Sessions in Postgres: updates merged per ``sid``, aggregates stored once, and the
counts release health is computed from.

A session's row is written by an insert that does nothing if the session exists; then, under
the row's lock, the stored and the incoming views are combined with the pure
:func:`.sessions.combine` (idempotent, order-independent). Counts add up sessions (by
outcome) and aggregate buckets; users are distinct ``did`` across both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.telemetry import models as m
from mobileplane.services.telemetry.health import SessionCounts
from mobileplane.services.telemetry.sessions import (
    AggregateBucket,
    SessionState,
    combine,
    outcome,
)


def _session_values(state: SessionState) -> dict[str, Any]:
    return {
        "did": state.did,
        "release": state.release,
        "environment": state.environment,
        "init": state.init,
        "started": state.started,
        "timestamp": state.timestamp,
        "seq": state.seq,
        "first_seq": state.first_seq,
        "status_seq": state.status_seq,
        "status": state.status,
        "errors": state.errors,
        "duration": state.duration,
        "outcome": outcome(state),
    }


async def apply_session(session: AsyncSession, project_id: int, incoming: SessionState) -> None:
    """Merge a session's updates (already combined per envelope) into its row (idempotent)."""
    inserted = await session.scalar(
        pg_insert(m.sessions)
        .values(project_id=project_id, sid=incoming.sid, **_session_values(incoming))
        .on_conflict_do_nothing()
        .returning(m.sessions.c.sid)
    )
    if inserted is not None:
        return
    row = (
        await session.execute(
            select(m.sessions)
            .where(m.sessions.c.project_id == project_id, m.sessions.c.sid == incoming.sid)
            .with_for_update()
        )
    ).one()
    state = SessionState(
        sid=row.sid,
        did=row.did,
        init=row.init,
        started=row.started,
        timestamp=row.timestamp,
        seq=row.seq,
        first_seq=row.first_seq,
        status_seq=row.status_seq,
        status=row.status,
        errors=row.errors,
        release=row.release,
        environment=row.environment,
        duration=row.duration,
    )
    merged = combine(state, incoming)
    if merged != state:
        await session.execute(
            update(m.sessions)
            .where(m.sessions.c.project_id == project_id, m.sessions.c.sid == incoming.sid)
            .values(**_session_values(merged))
        )


async def store_aggregates(
    session: AsyncSession, project_id: int, digest: str, buckets: Sequence[AggregateBucket]
) -> bool:
    """Store one ``sessions`` item's buckets once; ``False`` if this item was stored before."""
    marker = await session.scalar(
        pg_insert(m.aggregate_items)
        .values(project_id=project_id, digest=digest)
        .on_conflict_do_nothing()
        .returning(m.aggregate_items.c.digest)
    )
    if marker is None:
        return False
    if buckets:
        await session.execute(
            insert(m.session_buckets),
            [
                {
                    "project_id": project_id,
                    "digest": digest,
                    "release": b.release,
                    "environment": b.environment,
                    "started": b.started,
                    "did": b.did,
                    "exited": b.exited,
                    "errored": b.errored,
                    "abnormal": b.abnormal,
                    "crashed": b.crashed,
                }
                for b in buckets
            ],
        )
    return True


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    environment: str | None = None


def _session_filter(table: Any, project_id: int, window: Window, release: str | None) -> Any:
    clauses = [
        table.c.project_id == project_id,
        table.c.started >= window.start,
        table.c.started < window.end,
    ]
    if release is not None:
        clauses.append(table.c.release == release)
    if window.environment is not None:
        clauses.append(table.c.environment == window.environment)
    return and_(*clauses)


async def session_counts(
    session: AsyncSession, project_id: int, window: Window, release: str | None
) -> SessionCounts:
    """Sessions by outcome and users of ``release`` (``None``: every release) in ``window``."""
    s, b = m.sessions, m.session_buckets
    by_outcome: dict[str, int] = {}
    rows = await session.execute(
        select(s.c.outcome, func.count())
        .where(_session_filter(s, project_id, window, release))
        .group_by(s.c.outcome)
    )
    for name, count in rows:
        by_outcome[name] = int(count)
    sums = (
        await session.execute(
            select(
                func.coalesce(func.sum(b.c.exited), 0),
                func.coalesce(func.sum(b.c.errored), 0),
                func.coalesce(func.sum(b.c.abnormal), 0),
                func.coalesce(func.sum(b.c.crashed), 0),
            ).where(_session_filter(b, project_id, window, release))
        )
    ).one()
    users = union_all(
        select(s.c.did.label("did"), (s.c.outcome == "crashed").label("crashed")).where(
            _session_filter(s, project_id, window, release), s.c.did.is_not(None)
        ),
        select(b.c.did.label("did"), (b.c.crashed > 0).label("crashed")).where(
            _session_filter(b, project_id, window, release), b.c.did.is_not(None)
        ),
    ).subquery()
    user_row = (
        await session.execute(
            select(
                func.count(func.distinct(users.c.did)),
                func.count(func.distinct(users.c.did)).filter(users.c.crashed),
            )
        )
    ).one()
    return SessionCounts(
        healthy=by_outcome.get("healthy", 0) + int(sums[0]),
        errored=by_outcome.get("errored", 0) + int(sums[1]),
        abnormal=by_outcome.get("abnormal", 0) + int(sums[2]),
        crashed=by_outcome.get("crashed", 0) + int(sums[3]),
        users=int(user_row[0]),
        crashed_users=int(user_row[1]),
    )


async def releases_seen(
    session: AsyncSession, project_id: int, window: Window, limit: int
) -> list[str]:
    s, b = m.sessions, m.session_buckets
    both = union_all(
        select(s.c.release, s.c.started).where(_session_filter(s, project_id, window, None)),
        select(b.c.release, b.c.started).where(_session_filter(b, project_id, window, None)),
    ).subquery()
    rows = await session.execute(
        select(both.c.release)
        .group_by(both.c.release)
        .order_by(func.max(both.c.started).desc())
        .limit(limit)
    )
    return [r[0] for r in rows]
