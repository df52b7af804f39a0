"""Processing one accepted envelope inside the request's transaction.

Each item is validated and stored before the response: events are deobfuscated (Android, when
the release has a mapping), fingerprinted and counted into their issue; session updates are
merged; aggregates, client reports and transactions are stored once. Because the request's
transaction commits before the SDK gets its 200, an accepted envelope is durable, and because
every write is idempotent (see :mod:`.store`), the SDK's retries never double count.

A malformed item fails the whole envelope (400, nothing stored): an SDK does not retry a 400,
and storing half an envelope would make "what did we keep?" unanswerable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.telemetry import issue_store, session_store, store
from mobileplane.services.telemetry.envelope import Envelope, EnvelopeTooLarge, Item
from mobileplane.services.telemetry.events import (
    clean_json,
    digest,
    event_facts,
    timestamp,
    transaction_values,
)
from mobileplane.services.telemetry.fingerprint import culprit, fingerprint, title
from mobileplane.services.telemetry.proguard import ProguardMapping, deobfuscate_event
from mobileplane.services.telemetry.ratelimit import ITEM_CATEGORY, keep_trace
from mobileplane.services.telemetry.sessions import (
    SessionState,
    combine,
    merge,
    parse_aggregates,
    parse_update,
)

#: (project id, release) -> the release's parsed mapping and its id, if one was uploaded.
MappingLookup = Callable[[int, str], Awaitable[tuple[ProguardMapping, str] | None]]

KNOWN_ITEMS = frozenset({"event", "transaction", "session", "sessions", "client_report"})


@dataclass
class IngestResult:
    stored: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    sampled_out: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "stored": dict(self.stored),
            "duplicates": dict(self.duplicates),
            "ignored": dict(self.ignored),
            "rate_limited": dict(self.rate_limited),
            "sampled_out": self.sampled_out,
        }


@dataclass(frozen=True)
class IngestContext:
    project: dict[str, Any]
    now: datetime
    max_event_bytes: int
    traces_sample_rate: float
    allows: Callable[[str | None], bool]
    mappings: MappingLookup | None = None


def _check_size(item: Item, limit: int) -> None:
    if len(item.payload) > limit:
        raise EnvelopeTooLarge(
            f"{item.type} item is {len(item.payload)} bytes; the limit is {limit}"
        )


async def ingest(session: AsyncSession, envelope: Envelope, ctx: IngestContext) -> IngestResult:
    result = IngestResult()
    project_id = int(ctx.project["id"])
    sessions: dict[str, SessionState] = {}  # one write per session, however many updates
    for item in envelope.items:
        if item.type not in KNOWN_ITEMS:
            result.ignored[item.type] += 1  # attachments, profiles, replays...: not (yet) ours
            continue
        if not ctx.allows(ITEM_CATEGORY.get(item.type)):
            result.rate_limited[item.type] += 1
            continue
        if item.type == "session":
            update = merge(None, parse_update(item.json()))
            known = sessions.get(update.sid)
            sessions[update.sid] = update if known is None else combine(known, update)
            result.stored[item.type] += 1  # merging is idempotent: a retry is not a duplicate
            continue
        stored = await _ingest_item(session, envelope, item, ctx, project_id, result)
        if stored is None:
            continue
        (result.stored if stored else result.duplicates)[item.type] += 1
    for state in sessions.values():
        await session_store.apply_session(session, project_id, state)
    return result


async def _ingest_item(
    session: AsyncSession,
    envelope: Envelope,
    item: Item,
    ctx: IngestContext,
    project_id: int,
    result: IngestResult,
) -> bool | None:
    if item.type == "event":
        _check_size(item, ctx.max_event_bytes)
        return await _event(session, envelope, item, ctx, project_id)
    if item.type == "transaction":
        _check_size(item, ctx.max_event_bytes)
        payload = clean_json(item.json())
        values = transaction_values(payload, envelope.headers, item.payload, ctx.now)
        if not keep_trace(values["trace_id"] or values["event_id"], ctx.traces_sample_rate):
            result.sampled_out += 1
            return None
        return await store.store_transaction(
            session, {**values, "project_id": project_id, "payload": payload}
        )
    if item.type == "sessions":
        buckets = parse_aggregates(item.json())
        key = digest(envelope.header_line, item.payload)
        return await session_store.store_aggregates(session, project_id, key, buckets)
    # client_report: what the SDK dropped (rate limits, queue overflow, sampling)
    payload = clean_json(item.json())
    key = digest(envelope.header_line, item.payload)
    when = timestamp(payload.get("timestamp"), ctx.now)
    return await store.store_client_report(session, project_id, key, when, payload)


async def _event(
    session: AsyncSession, envelope: Envelope, item: Item, ctx: IngestContext, project_id: int
) -> bool:
    payload: dict[str, Any] = clean_json(item.json())
    facts = event_facts(payload, envelope.headers, item.payload, ctx.now)
    if ctx.mappings is not None and facts.release and ctx.project["platform"] == "android":
        found = await ctx.mappings(project_id, facts.release)
        if found is not None:
            mapping, mapping_id = found
            payload = deobfuscate_event(mapping, payload, mapping_id)
    group = fingerprint(payload)
    record = issue_store.EventRecord(
        project_id=project_id,
        event_id=facts.event_id,
        fingerprint=group,
        title=title(payload),
        culprit=culprit(payload),
        level=facts.level,
        release=facts.release,
        environment=facts.environment,
        user_key=facts.user_key,
        handled=facts.handled,
        timestamp=facts.timestamp,
        payload=payload,
    )
    return await issue_store.store_event(session, record)
