"""The sync service's repository: applying uploads and reading checkpoints, in Postgres.

Upload (:func:`apply_upload`), in the caller's transaction:

1. lock the client's row (``FOR UPDATE``) — one upload per client at a time — and skip every
   mutation at or below its last applied id, so a replayed batch is a no-op;
2. lock the user's bucket row: operation ids are taken from it, so they are gap-free and in
   commit order within the bucket;
3. merge each mutation into its row (:mod:`.merge`), append an operation when the visible row
   changed, keep the bucket checksum (:mod:`.checksum`), record overridden writes;
4. store the client's new last mutation id. The caller commits; only then does it answer.

Download (:func:`read_changes`) runs in a ``REPEATABLE READ`` snapshot: the target checkpoint,
the changes up to it and the client's last mutation id are read consistently. Changes are
compacted per row (the last operation of each row up to the target), paged by op id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.sync import checksum as checksums
from mobileplane.services.sync import models as m
from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.merge import Op, Row, merge
from mobileplane.services.sync.protocol import (
    BucketCheckpoint,
    Change,
    ConflictOut,
    Mutation,
    MutationResult,
)
from mobileplane.services.sync.schema import GLOBAL_BUCKET, SyncSchema, project, user_bucket


class ClientMismatch(Exception):
    """The client id is registered to another user."""


class QuotaExceeded(Exception):
    """The user's bucket holds as many rows as allowed."""


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


async def _lock_bucket(session: AsyncSession, bucket: str) -> tuple[int, int, int]:
    await session.execute(insert(m.buckets).values(bucket=bucket).on_conflict_do_nothing())
    row = (
        await session.execute(
            select(m.buckets.c.last_op, m.buckets.c.checksum, m.buckets.c.live_rows)
            .where(m.buckets.c.bucket == bucket)
            .with_for_update()
        )
    ).one()
    return int(row.last_op), int(row.checksum), int(row.live_rows)


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
    """Apply a validated batch (``stamps[i]`` is mutation *i*'s clock, already checked)."""
    last_applied = await _lock_client(session, client_id, subject, schema_version)
    bucket = user_bucket(subject)
    last_op, bucket_sum, live_rows = await _lock_bucket(session, bucket)
    results: list[MutationResult] = []
    conflict_rows: list[dict[str, Any]] = []
    for mutation, stamp in zip(mutations, stamps, strict=True):
        if mutation.id <= last_applied:
            results.append(MutationResult(id=mutation.id, status="duplicate"))
            continue
        table = schema.table(mutation.table)
        stored = (
            await session.execute(
                select(m.rows)
                .where(
                    m.rows.c.bucket == bucket,
                    m.rows.c.table_name == table.name,
                    m.rows.c.row_id == mutation.row_id,
                )
                .with_for_update()
            )
        ).one_or_none()
        current = Row(stored.vals, stored.clocks, stored.deleted_at) if stored is not None else None
        merged = merge(current, mutation.op, mutation.values, stamp, table.resolvers())
        overrides = merged.overrides
        op_id: int | None = None
        # A new row comes from an insert (or a delete's tombstone, so that writes older than
        # the delete lose); an update of a row that does not exist stores nothing.
        new_row = stored is None and mutation.op is not Op.UPDATE
        if merged.changed or new_row:
            was_live = merged.existed
            now_live = not merged.row.deleted
            if now_live and not was_live and live_rows >= max_rows:
                raise QuotaExceeded(bucket)
            old_op = int(stored.op_id) if stored is not None and was_live else None
            if merged.changed or (now_live and not was_live):
                last_op += 1
                op_id = last_op
                bucket_sum = checksums.updated(
                    bucket_sum, table.name, mutation.row_id, old_op, op_id if now_live else None
                )
                live_rows += int(now_live) - int(was_live)
                await session.execute(
                    insert(m.ops).values(
                        bucket=bucket,
                        op_id=op_id,
                        table_name=table.name,
                        row_id=mutation.row_id,
                        kind="put" if now_live else "remove",
                        vals=merged.row.visible() if now_live else None,
                        checksum=bucket_sum,
                    )
                )
            row_values = {
                "vals": dict(merged.row.values),
                "clocks": dict(merged.row.clocks),
                "deleted_at": merged.row.deleted_at,
                "op_id": op_id if op_id is not None else (stored.op_id if stored else 0),
                "updated_at": func.now(),
            }
            await session.execute(
                insert(m.rows)
                .values(bucket=bucket, table_name=table.name, row_id=mutation.row_id, **row_values)
                .on_conflict_do_update(
                    index_elements=["bucket", "table_name", "row_id"], set_=row_values
                )
            )
        for override in overrides:
            conflict_rows.append(
                {
                    "subject": subject,
                    "client_id": client_id,
                    "mutation_id": mutation.id,
                    "table_name": mutation.table,
                    "row_id": mutation.row_id,
                    "column_name": override.column,
                    "client_value": override.client_value,
                    "server_value": override.server_value,
                    "reason": override.reason,
                }
            )
        results.append(
            MutationResult(
                id=mutation.id,
                status="conflict" if overrides else "applied",
                op_id=op_id,
                conflicts=[
                    ConflictOut(
                        column=o.column,
                        client_value=o.client_value,
                        server_value=o.server_value,
                        reason=o.reason,
                    )
                    for o in overrides
                ],
            )
        )
        last_applied = mutation.id
    if conflict_rows:
        await session.execute(insert(m.conflicts), conflict_rows)
    await session.execute(
        update(m.buckets)
        .where(m.buckets.c.bucket == bucket)
        .values(last_op=last_op, checksum=bucket_sum, live_rows=live_rows)
    )
    await session.execute(
        update(m.clients)
        .where(m.clients.c.client_id == client_id)
        .values(last_mutation_id=last_applied, schema_version=schema_version, updated_at=func.now())
    )
    return UploadOutcome(last_applied, results, bucket, last_op)


# -- download --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketState:
    last_op: int
    checksum: int
    purged_through: int


async def bucket_states(session: AsyncSession, names: Sequence[str]) -> dict[str, BucketState]:
    found = {
        r.bucket: BucketState(int(r.last_op), int(r.checksum), int(r.purged_through))
        for r in await session.execute(
            select(
                m.buckets.c.bucket,
                m.buckets.c.last_op,
                m.buckets.c.checksum,
                m.buckets.c.purged_through,
            ).where(m.buckets.c.bucket.in_(names))
        )
    }
    return {name: found.get(name, BucketState(0, 0, 0)) for name in names}


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
    newer = m.ops.alias("newer")
    superseded = exists().where(
        and_(
            newer.c.bucket == m.ops.c.bucket,
            newer.c.table_name == m.ops.c.table_name,
            newer.c.row_id == m.ops.c.row_id,
            newer.c.op_id > m.ops.c.op_id,
            newer.c.op_id <= target,
        )
    )
    query = (
        select(m.ops)
        .where(m.ops.c.bucket == bucket, m.ops.c.op_id > after, m.ops.c.op_id <= target)
        .where(~superseded)
        .order_by(m.ops.c.op_id)
        .limit(limit)
    )
    if initial:
        query = query.where(m.ops.c.kind == "put")
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
    # Tombstoned rows older than the horizon: a write older than the delete can no longer
    # arrive from a client that is still allowed to sync.
    await session.execute(delete(m.rows).where(m.rows.c.updated_at < cutoff, m.rows.c.vals == {}))
    return count + len(removed)
