"""What the sync service holds about a user, for GDPR access and erasure requests.

A user's synced data lives in their own bucket, ``user:<sub>`` (:func:`.schema.user_bucket`):
its ``sync_buckets`` row, its rows in ``sync_rows`` and its change log in ``sync_ops``. Besides,
``sync_clients`` registers the user's app installs and ``sync_conflicts`` keeps the writes of
theirs the server overrode (with the values involved).

- **Export**: every row of the user's bucket as the server holds it now — its values, whether
  it is deleted (a tombstone), when it last changed — not the operation log, which only
  repeats older states of the same rows; plus the clients and the conflicts.
- **Erasure**: all of it is deleted. A device that still holds a checkpoint of the bucket is
  told to resync from scratch at its next download (its checkpoint is past the emptied
  bucket's last operation, which the download treats like a restore).

Global buckets (``global``) are reference data the server writes and every user reads: they
are shared, not the user's, so neither call touches them.

Deletes take locks in the upload's order — the user's clients, then the bucket — so an
erasure and a concurrent upload queue behind each other instead of deadlocking. Both calls run
in the caller's transaction (:mod:`kit.privacy`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.sync import models as m
from mobileplane.services.sync.schema import user_bucket


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class SyncSubjectData:
    """The sync service's :class:`kit.privacy.SubjectData`."""

    service = "sync"

    async def export(self, session: AsyncSession, subject: str) -> dict[str, Any]:
        bucket = user_bucket(subject)
        rows = await session.execute(
            select(
                m.rows.c.table_name,
                m.rows.c.row_id,
                m.rows.c.vals,
                m.rows.c.deleted_at,
                m.rows.c.updated_at,
            )
            .where(m.rows.c.bucket == bucket)
            .order_by(m.rows.c.table_name, m.rows.c.row_id)
        )
        clients = await session.execute(
            select(m.clients).where(m.clients.c.subject == subject).order_by(m.clients.c.client_id)
        )
        conflicts = await session.execute(
            select(m.conflicts).where(m.conflicts.c.subject == subject).order_by(m.conflicts.c.id)
        )
        return {
            "bucket": bucket,
            "rows": [
                {
                    "table": r.table_name,
                    "id": r.row_id,
                    "values": r.vals,
                    # A tombstone keeps only the fields written after the delete, if any.
                    "deleted": r.deleted_at is not None and not r.vals,
                    "updated_at": _iso(r.updated_at),
                }
                for r in rows
            ],
            "clients": [
                {
                    "client_id": c.client_id,
                    "schema_version": c.schema_version,
                    "last_mutation_id": int(c.last_mutation_id),
                    "updated_at": _iso(c.updated_at),
                }
                for c in clients
            ],
            "conflicts": [
                {
                    "client_id": c.client_id,
                    "mutation_id": int(c.mutation_id),
                    "table": c.table_name,
                    "row_id": c.row_id,
                    "column": c.column_name,
                    "client_value": c.client_value,
                    "server_value": c.server_value,
                    "reason": c.reason,
                    "created_at": _iso(c.created_at),
                }
                for c in conflicts
            ],
        }

    async def erase(self, session: AsyncSession, subject: str) -> int:
        """Delete the user's clients, bucket (rows, operations) and conflicts; rows deleted."""
        bucket = user_bucket(subject)
        erased = 0
        for table, condition in (
            (m.clients, m.clients.c.subject == subject),
            (m.buckets, m.buckets.c.bucket == bucket),
            (m.rows, m.rows.c.bucket == bucket),
            (m.ops, m.ops.c.bucket == bucket),
            (m.conflicts, m.conflicts.c.subject == subject),
        ):
            result = await session.execute(delete(table).where(condition))
            erased += int(getattr(result, "rowcount", 0) or 0)
        return erased
