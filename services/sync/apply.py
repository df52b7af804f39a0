"""Deciding what an upload batch does, given the rows it touches: pure, so it is fast and tested.

The repository (:mod:`.store`) loads, under lock, every row the batch mentions, calls
:func:`plan_batch`, and writes the plan back in a handful of statements (one ``SELECT … FOR
UPDATE``, one multi-row insert of operations, one multi-row upsert of rows) instead of three
round trips per mutation. The plan holds the operations to append (with op ids and the bucket
checksum after each), the final state of each touched row, the conflicts to record, and the
per-mutation results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mobileplane.services.sync import checksum as checksums
from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.merge import Row, merge
from mobileplane.services.sync.protocol import ConflictOut, Mutation, MutationResult
from mobileplane.services.sync.schema import SyncSchema

Key = tuple[str, str]  # (table, row id)


class QuotaExceeded(Exception):
    """The user's bucket would hold more live rows than allowed."""


@dataclass
class StoredRow:
    row: Row
    op_id: int  # the op that last wrote it (0: none, e.g. a tombstone of a never-seen row)


@dataclass(frozen=True)
class BucketState:
    last_op: int
    checksum: int
    live_rows: int


@dataclass
class BatchPlan:
    results: list[MutationResult] = field(default_factory=list)
    ops: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[Key, StoredRow] = field(default_factory=dict)  # rows to write back
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    last_applied: int = 0
    bucket: BucketState = BucketState(0, 0, 0)


def touched_keys(mutations: Sequence[Mutation], last_applied: int) -> set[Key]:
    return {(m.table, m.row_id) for m in mutations if m.id > last_applied}


def plan_batch(
    schema: SyncSchema,
    *,
    bucket: str,
    state: BucketState,
    stored: Mapping[Key, StoredRow],
    mutations: Sequence[Mutation],
    stamps: Sequence[Timestamp],
    last_applied: int,
    max_rows: int,
) -> BatchPlan:
    """Apply ``mutations`` (validated; ``stamps[i]`` is mutation *i*'s clock) in order to the
    ``stored`` rows; raises :class:`QuotaExceeded` if the batch would exceed ``max_rows``."""
    plan = BatchPlan(last_applied=last_applied)
    current: dict[Key, StoredRow] = dict(stored)
    last_op, bucket_sum, live_rows = state.last_op, state.checksum, state.live_rows
    for mutation, stamp in zip(mutations, stamps, strict=True):
        if mutation.id <= plan.last_applied:
            plan.results.append(MutationResult(id=mutation.id, status="duplicate"))
            continue
        table = schema.table(mutation.table)
        key = (table.name, mutation.row_id)
        before = current.get(key)
        merged = merge(
            before.row if before else None, mutation.op, mutation.values, stamp, table.resolvers()
        )
        op_id: int | None = None
        # Any change of the row's state is stored, visible or not: a newer clock on an
        # unchanged value, a delete marker moved forward, a hidden counter's sum. A new row
        # comes from an insert (or a delete's marker, so that writes older than the delete
        # lose); an update of a row the server has no record of stores nothing.
        if merged.row != (before.row if before else Row()):
            was_live, now_live = merged.existed, not merged.row.deleted
            if now_live and not was_live and live_rows >= max_rows:
                raise QuotaExceeded(bucket)
            written_by = before.op_id if before else 0
            if merged.changed or (now_live and not was_live):
                last_op += 1
                op_id = last_op
                bucket_sum = checksums.updated(
                    bucket_sum,
                    table.name,
                    mutation.row_id,
                    written_by if was_live else None,
                    op_id if now_live else None,
                )
                live_rows += int(now_live) - int(was_live)
                plan.ops.append(
                    {
                        "bucket": bucket,
                        "op_id": op_id,
                        "table_name": table.name,
                        "row_id": mutation.row_id,
                        "kind": "put" if now_live else "remove",
                        "vals": merged.row.visible() if now_live else None,
                        "checksum": bucket_sum,
                    }
                )
                written_by = op_id
            current[key] = StoredRow(merged.row, written_by)
            plan.rows[key] = current[key]
        for o in merged.overrides:
            plan.conflicts.append(
                {
                    "mutation_id": mutation.id,
                    "table_name": mutation.table,
                    "row_id": mutation.row_id,
                    "column_name": o.column,
                    "client_value": o.client_value,
                    "server_value": o.server_value,
                    "reason": o.reason,
                }
            )
        plan.results.append(
            MutationResult(
                id=mutation.id,
                status="conflict" if merged.overrides else "applied",
                op_id=op_id,
                conflicts=[
                    ConflictOut(
                        column=o.column,
                        client_value=o.client_value,
                        server_value=o.server_value,
                        reason=o.reason,
                    )
                    for o in merged.overrides
                ],
            )
        )
        plan.last_applied = mutation.id
    plan.bucket = BucketState(last_op, bucket_sum, live_rows)
    return plan
