"""The sync service's repository: applying uploads and reading checkpoints, in Postgres.

Upload (:func:`apply_upload`), in the caller's transaction:

1. lock the client's row (``FOR UPDATE``) — one upload per client at a time — and skip every
   mutation at or below its last applied id, so a replayed batch is a no-op;
2. lock the user's bucket row: operation ids are taken from it, so they are gap-free and in
   commit order within the bucket;
3. merge each mutation into its row (:mod:`.merge`), store the row whenever its state
   changed (visible or not), append an operation when the visible row changed, keep the
   bucket checksum (:mod:`.checksum`), record overridden writes;
4. store the client's new last mutation id. The caller commits; only then does it answer.

Download (:func:`read_changes`) runs in a ``REPEATABLE READ`` snapshot: the target checkpoint,
the changes up to it and the client's last mutation id are read consistently. Changes are
compacted per row (the last operation of each row up to the target), paged by op id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.sync import models as m
from mobileplane.services.sync.apply import (
    BucketState,
    Key,
    StoredRow,
    plan_batch,
    touched_keys,
)
from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.merge import Elements, Row
from mobileplane.services.sync.protocol import (
    BucketCheckpoint,
    Change,
    Mutation,
    MutationResult,
)
from mobileplane.services.sync.schema import GLOBAL_BUCKET, SyncSchema, project, user_bucket


class ClientMismatch(Exception):
    """The client id is registered to another user."""


@dataclass(frozen=True)
class UploadOutcome:
    last_mutation_id: int
    results: list[MutationResult]
    bucket: str
    last_op: int


async def _lock_client(
    session: AsyncSession, client_id: str, subject: str, schema_version: int
) -> int:
    await session.execute(
        insert(m.clients)
        .values(client_id=client_id, subject=subject, schema_version=schema_version)
        .on_conflict_do_nothing()
    )
    row = (
        await session.execute(
            select(m.clients.c.subject, m.clients.c.last_mutation_id)
            .where(m.clients.c.client_id == client_id)
            .with_for_update()
        )
    ).one()
    if row.subject != subject:
        raise ClientMismatch(client_id)
    return int(row.last_mutation_id)


async def _lock_bucket(session: AsyncSession, bucket: str) -> BucketState:
    await session.execute(insert(m.buckets).values(bucket=bucket).on_conflict_do_nothing())
    row = (
        await session.execute(
            select(m.buckets.c.last_op, m.buckets.c.checksum, m.buckets.c.live_rows)
            .where(m.buckets.c.bucket == bucket)
            .with_for_update()
        )
    ).one()
    return BucketState(int(row.last_op), int(row.checksum), int(row.live_rows))


async def _lock_rows(session: AsyncSession, bucket: str, keys: set[Key]) -> dict[Key, StoredRow]:
    if not keys:
        return {}
    found = await session.execute(
        select(
            m.rows.c.table_name,
            m.rows.c.row_id,
            m.rows.c.vals,
            m.rows.c.clocks,
            m.rows.c.deleted_at,
            m.rows.c.elements,
            m.rows.c.op_id,
        )
        .where(
            m.rows.c.bucket == bucket,
            tuple_(m.rows.c.table_name, m.rows.c.row_id).in_(sorted(keys)),
        )
        .order_by(m.rows.c.table_name, m.rows.c.row_id)  # one lock order: no deadlocks
        .with_for_update()
    )
    return {
        (r.table_name, r.row_id): StoredRow(
            Row(r.vals, r.clocks, r.deleted_at, _elements_from_json(r.elements)), int(r.op_id)
        )
        for r in found
    }


def _elements_from_json(stored: dict[str, dict[str, list[str | None]]] | None) -> Elements:
    """Set-member states as stored (JSON lists) → the merge's tuples."""
    return {
        column: {key: (pair[0], pair[1]) for key, pair in states.items()}
        for column, states in (stored or {}).items()
    }


async def apply_upload(
    session: AsyncSession,
    schema: SyncSchema,
    *,
    subject: str,
    client_id: str,
    schema_version: int,
    mutations: Sequence[Mutation],
    stamps: Sequence[Timestamp],
    max_rows: int,
) -> UploadOutcome:
    """Apply a validated batch (``stamps[i]`` is mutation *i*'s clock, already checked).

    Raises :class:`ClientMismatch` or :class:`~.apply.QuotaExceeded` (nothing written)."""
    last_applied = await _lock_client(session, client_id, subject, schema_version)
    bucket = user_bucket(subject)
    state = await _lock_bucket(session, bucket)
    stored = await _lock_rows(session, bucket, touched_keys(mutations, last_applied))
    plan = plan_batch(
        schema,
        bucket=bucket,
        state=state,
        stored=stored,
        mutations=mutations,
        stamps=stamps,
        last_applied=last_applied,
        max_rows=max_rows,
    )
    if plan.ops:
        await session.execute(insert(m.ops), plan.ops)
    if plan.rows:
        upsert = insert(m.rows)
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=["bucket", "table_name", "row_id"],
                set_={
                    "vals": upsert.excluded.vals,
                    "clocks": upsert.excluded.clocks,
                    "deleted_at": upsert.excluded.deleted_at,
                    "elements": upsert.excluded.elements,
                    "op_id": upsert.excluded.op_id,
                    "updated_at": func.now(),
                },
            ),
            [
                {
                    "bucket": bucket,
                    "table_name": table,
                    "row_id": row_id,
                    "vals": dict(r.row.values),
                    "clocks": dict(r.row.clocks),
                    "deleted_at": r.row.deleted_at,
                    "elements": {c: dict(e) for c, e in r.row.elements.items()},
                    "op_id": r.op_id,
                }
                for (table, row_id), r in plan.rows.items()
            ],
        )
    if plan.conflicts:
        await session.execute(
            insert(m.conflicts),
            [{"subject": subject, "client_id": client_id, **c} for c in plan.conflicts],
        )
    if plan.bucket != state:
        await session.execute(
            update(m.buckets)
            .where(m.buckets.c.bucket == bucket)
            .values(
                last_op=plan.bucket.last_op,
                checksum=plan.bucket.checksum,
                live_rows=plan.bucket.live_rows,
            )
        )
    await session.execute(
        update(m.clients)
        .where(m.clients.c.client_id == client_id)
        .values(
            last_mutation_id=plan.last_applied,
            schema_version=schema_version,
            updated_at=func.now(),
        )
    )
    return UploadOutcome(plan.last_applied, plan.results, bucket, plan.bucket.last_op)


# -- download --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketPosition:
    last_op: int
    checksum: int
    purged_through: int


async def bucket_states(session: AsyncSession, names: Sequence[str]) -> dict[str, BucketPosition]:
    found = {
        r.bucket: BucketPosition(int(r.last_op), int(r.checksum), int(r.purged_through))
        for r in await session.execute(
            select(
                m.buckets.c.bucket,
                m.buckets.c.last_op,
                m.buckets.c.checksum,
                m.buckets.c.purged_through,
            ).where(m.buckets.c.bucket.in_(names))
        )
    }
    return {name: found.get(name, BucketPosition(0, 0, 0)) for name in names}


async def checksum_at(session: AsyncSession, bucket: str, op_id: int) -> int:
    if op_id == 0:
        return 0
    value = await session.scalar(
        select(m.ops.c.checksum).where(m.ops.c.bucket == bucket, m.ops.c.op_id == op_id)
    )
    if value is None:  # compacted away: only possible for a superseded op, never a target
        raise LookupError(f"no operation {op_id} in bucket {bucket}")
    return int(value)


async def last_mutation_id(session: AsyncSession, client_id: str, subject: str) -> int:
    value = await session.scalar(
        select(m.clients.c.last_mutation_id).where(
            m.clients.c.client_id == client_id, m.clients.c.subject == subject
        )
    )
    return int(value or 0)


async def read_changes(
    session: AsyncSession,
    schema: SyncSchema,
    *,
    bucket: str,
    after: int,
    target: int,
    limit: int,
    client_version: int,
    initial: bool,
) -> list[Change]:
    """The last operation of each row changed in ``(after, target]``, in op order.

    ``initial``: the client holds nothing of this bucket, so removals are left out.
    """
    # The last op of each row in the range (DISTINCT ON: one pass over the range and a sort,
    # whatever the planner's statistics), then the page in op order.
    last = (
        select(m.ops)
        .where(m.ops.c.bucket == bucket, m.ops.c.op_id > after, m.ops.c.op_id <= target)
        .order_by(m.ops.c.table_name, m.ops.c.row_id, m.ops.c.op_id.desc())
        .ext(distinct_on(m.ops.c.table_name, m.ops.c.row_id))
        .subquery()
    )
    query = select(last).order_by(last.c.op_id).limit(limit)
    if initial:
        query = query.where(last.c.kind == "put")
    changes = []
    for op in await session.execute(query):
        values = None
        if op.kind == "put" and op.table_name in schema.tables:
            values = project(schema.tables[op.table_name], op.vals or {}, client_version)
        changes.append(
            Change(
                bucket=bucket,
                op_id=int(op.op_id),
                table=op.table_name,
                row_id=op.row_id,
                kind=op.kind,
                values=values,
            )
        )
    return changes


def buckets_of(subject: str) -> list[str]:
    return [user_bucket(subject), GLOBAL_BUCKET]


def bucket_checkpoint(op_id: int, checksum: int) -> BucketCheckpoint:
    return BucketCheckpoint(op_id=op_id, checksum=checksum)


# -- maintenance -----------------------------------------------------------------------------


async def compact(session: AsyncSession, *, horizon: timedelta, now: datetime) -> int:
    """Drop operations older than ``horizon`` that a later operation superseded, and
    removals older than it (raising the buckets' ``purged_through``). Returns ops dropped."""
    cutoff = now - horizon
    newer = m.ops.alias("newer")
    superseded = exists().where(
        and_(
            newer.c.bucket == m.ops.c.bucket,
            newer.c.table_name == m.ops.c.table_name,
            newer.c.row_id == m.ops.c.row_id,
            newer.c.op_id > m.ops.c.op_id,
        )
    )
    dropped = await session.execute(
        delete(m.ops).where(m.ops.c.created_at < cutoff, superseded).returning(m.ops.c.op_id)
    )
    count = len(dropped.all())
    removed = (
        await session.execute(
            delete(m.ops)
            .where(m.ops.c.created_at < cutoff, m.ops.c.kind == "remove")
            .returning(m.ops.c.bucket, m.ops.c.op_id)
        )
    ).all()
    purged: dict[str, int] = {}
    for bucket, op_id in removed:
        purged[bucket] = max(purged.get(bucket, 0), int(op_id))
    for bucket, op_id in purged.items():
        await session.execute(
            update(m.buckets)
            .where(m.buckets.c.bucket == bucket)
            .values(purged_through=func.greatest(m.buckets.c.purged_through, op_id))
        )
    # Deleted rows with nothing visible, untouched for longer than the horizon: a write older
    # than the delete can no longer arrive from a client that is still allowed to sync. (A
    # hidden counter's sum goes with them.)
    field_clock = func.jsonb_each_text(m.rows.c.clocks).table_valued("key", "value").alias("f")
    visible_field = (
        select(1).select_from(field_clock).where(field_clock.c.value > m.rows.c.deleted_at)
    ).exists()
    await session.execute(
        delete(m.rows).where(
            m.rows.c.updated_at < cutoff, m.rows.c.deleted_at.is_not(None), ~visible_field
        )
    )
    return count + len(removed)
