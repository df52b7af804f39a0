"""What the telemetry service holds about a user, for GDPR access and erasure requests.

Apps report the signed-in user as Sentry's user id, which on this platform is the user's id
(the tokens' ``sub``). Telemetry keeps it in a few places:

- ``telemetry_events`` (errors): ``user_key`` is ``id:<sub>`` (:func:`.events.user_key`), and the
  stored payload carries the whole ``user`` context the SDK sent (possibly an IP address or an
  e-mail) with breadcrumbs and request data;
- ``telemetry_issue_users``: the same key, once per issue the user hit (the issue's user count);
- ``telemetry_sessions`` and ``telemetry_session_buckets`` (release health): ``did``, which the
  SDKs set to the user's id;
- ``telemetry_transactions``: the payload's ``user.id``;
- ``telemetry_spans`` (OTLP): the ``enduser.id`` or ``user.id`` attribute, if the app sets it.

**Export**: what is stored about the subject, not the raw payloads — per event its id, project,
issue, release, environment, level, time and the ``user`` context that was sent; per session its
id, release, environment, start, status, outcome; the aggregate buckets; the transactions and
spans (names, times, durations); the issues the user is counted in.

**Erasure** (in the caller's transaction) deletes the raw records and anonymises the counted
ones:

- events, transactions and spans are *deleted*: their payloads can hold any personal data,
  which no anonymisation could find reliably. Issues keep their stored counters (as after the
  retention purge), so the issue list does not change;
- sessions, aggregate buckets and the issue's user set are *anonymised*: their ``did`` (or user
  key) becomes one random pseudonym, ``erased:<random>``, drawn per erasure and kept nowhere.
  Deleting them would change release health retroactively — crash-free rates, session and user
  counts of releases already judged — and the release controller's history of a rollout would
  no longer match what it decided on. With one pseudonym for all the subject's records, every
  count (sessions by outcome, distinct users, crashed users, an issue's users) stays exactly
  what it was, while nothing links the records to the person any more: the pseudonym is random,
  not derived from the id, so it cannot be recomputed from it.

Telemetry sent for the user after the erasure is new data and is stored as usual.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.telemetry import models as m
from mobileplane.services.telemetry.events import user_key

#: OTLP span attributes naming the end user (semantic conventions: old and current name).
SPAN_USER_ATTRIBUTES = ("enduser.id", "user.id")
#: Sessions keep at most this much of a ``did`` (:func:`.sessions.parse_update`).
DID_LIMIT = 128


def subject_key(subject: str) -> str:
    """The ``user_key`` an event of ``subject`` is stored with."""
    key = user_key({"user": {"id": subject}})
    if key is None:
        raise ValueError("a data subject's id cannot be empty")
    return key


def new_pseudonym() -> str:
    """A ``did`` / user key that stands for one erased user and for nobody identifiable."""
    return f"erased:{secrets.token_hex(16)}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _transaction_of(subject: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = m.transactions.c.payload["user"]["id"].astext == subject
    return condition


def _span_of(subject: str) -> ColumnElement[bool]:
    return or_(*(m.spans.c.attributes[name].astext == subject for name in SPAN_USER_ATTRIBUTES))


class TelemetrySubjectData:
    """The telemetry service's :class:`kit.privacy.SubjectData`."""

    service = "telemetry"

    async def export(self, session: AsyncSession, subject: str) -> dict[str, Any]:
        key = subject_key(subject)
        projects: Mapping[int, str] = {
            r.id: r.slug for r in await session.execute(select(m.projects.c.id, m.projects.c.slug))
        }

        def project(project_id: int) -> str | int:
            return projects.get(project_id, project_id)

        e = m.events
        events = await session.execute(
            select(
                e.c.project_id,
                e.c.event_id,
                e.c.issue_id,
                e.c.level,
                e.c.release,
                e.c.environment,
                e.c.handled,
                e.c.timestamp,
                e.c.received_at,
                e.c.payload["user"].label("user"),
            )
            .where(e.c.user_key == key)
            .order_by(e.c.timestamp, e.c.event_id)
        )
        did = subject[:DID_LIMIT]
        s = m.sessions
        sessions = await session.execute(
            select(s).where(s.c.did == did).order_by(s.c.started, s.c.sid)
        )
        b = m.session_buckets
        buckets = await session.execute(
            select(b).where(b.c.did == did).order_by(b.c.started, b.c.id)
        )
        t = m.transactions
        transactions = await session.execute(
            select(
                t.c.project_id,
                t.c.event_id,
                t.c.trace_id,
                t.c.name,
                t.c.op,
                t.c.status,
                t.c.release,
                t.c.environment,
                t.c.start,
                t.c.duration_ms,
            )
            .where(_transaction_of(subject))
            .order_by(t.c.start, t.c.event_id)
        )
        sp = m.spans
        spans = await session.execute(
            select(
                sp.c.project_id,
                sp.c.trace_id,
                sp.c.span_id,
                sp.c.name,
                sp.c.service_name,
                sp.c.start,
                sp.c.duration_ms,
                sp.c.status,
            )
            .where(_span_of(subject))
            .order_by(sp.c.start, sp.c.span_id)
        )
        issues = await session.scalars(
            select(m.issue_users.c.issue_id)
            .where(m.issue_users.c.user_key == key)
            .order_by(m.issue_users.c.issue_id)
        )
        return {
            "events": [
                {
                    "project": project(r.project_id),
                    "event_id": r.event_id,
                    "issue_id": int(r.issue_id),
                    "level": r.level,
                    "release": r.release,
                    "environment": r.environment,
                    "handled": r.handled,
                    "timestamp": _iso(r.timestamp),
                    "received_at": _iso(r.received_at),
                    "user": r.user,
                }
                for r in events
            ],
            "issues": [int(i) for i in issues],
            "sessions": [
                {
                    "project": project(r.project_id),
                    "sid": r.sid,
                    "release": r.release,
                    "environment": r.environment,
                    "started": _iso(r.started),
                    "timestamp": _iso(r.timestamp),
                    "duration": r.duration,
                    "status": r.status,
                    "errors": r.errors,
                    "outcome": r.outcome,
                }
                for r in sessions
            ],
            "session_aggregates": [
                {
                    "project": project(r.project_id),
                    "release": r.release,
                    "environment": r.environment,
                    "started": _iso(r.started),
                    "exited": r.exited,
                    "errored": r.errored,
                    "abnormal": r.abnormal,
                    "crashed": r.crashed,
                }
                for r in buckets
            ],
            "transactions": [
                {
                    "project": project(r.project_id),
                    "event_id": r.event_id,
                    "trace_id": r.trace_id,
                    "name": r.name,
                    "op": r.op,
                    "status": r.status,
                    "release": r.release,
                    "environment": r.environment,
                    "start": _iso(r.start),
                    "duration_ms": r.duration_ms,
                }
                for r in transactions
            ],
            "spans": [
                {
                    "project": project(r.project_id),
                    "trace_id": r.trace_id,
                    "span_id": r.span_id,
                    "name": r.name,
                    "service": r.service_name,
                    "start": _iso(r.start),
                    "duration_ms": r.duration_ms,
                    "status": r.status,
                }
                for r in spans
            ],
        }

    async def erase(self, session: AsyncSession, subject: str) -> int:
        """Delete the subject's events, transactions and spans; give their sessions, aggregate
        buckets and issue memberships one fresh pseudonym. Returns the records affected."""
        key, did = subject_key(subject), subject[:DID_LIMIT]
        pseudonym = new_pseudonym()
        statements: list[Any] = [
            delete(m.events).where(m.events.c.user_key == key),
            delete(m.transactions).where(_transaction_of(subject)),
            delete(m.spans).where(_span_of(subject)),
            update(m.issue_users).where(m.issue_users.c.user_key == key).values(user_key=pseudonym),
            update(m.sessions).where(m.sessions.c.did == did).values(did=pseudonym),
            update(m.session_buckets).where(m.session_buckets.c.did == did).values(did=pseudonym),
        ]
        affected = 0
        for statement in statements:
            result = await session.execute(statement)
            affected += int(getattr(result, "rowcount", 0) or 0)
        return affected
