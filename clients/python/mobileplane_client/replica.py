"""The device's SQLite replica: the server's rows, plus the local writes not yet synced.

An app reads and writes here, online or not. A write goes to the **queue** (the ordered
mutation log the sync loop uploads) and is visible at once: reads overlay the pending queue on
the last checkpoint's rows (*optimistic* application). A queued write leaves the queue only
when a downloaded checkpoint includes it (its ``last_mutation_id``), so the local view never
flickers back to the old value between upload and download.

Applying a checkpoint is one SQLite transaction: rows, the checkpoint token and the queue
change together or not at all (the app can be killed at any moment). After applying, the
replica checks each bucket's checksum; a mismatch drops the replica's rows and checkpoint,
so the next download resyncs from scratch instead of building on a wrong state.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobileplane_client.clock import Clock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    tbl TEXT NOT NULL, row_id TEXT NOT NULL, bucket TEXT NOT NULL,
    vals TEXT NOT NULL, op_id INTEGER NOT NULL, PRIMARY KEY (tbl, row_id));
CREATE INDEX IF NOT EXISTS rows_bucket ON rows (bucket);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, op TEXT NOT NULL,
    row_id TEXT NOT NULL, vals TEXT NOT NULL, hlc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def row_hash(table: str, row_id: str, op_id: int) -> int:
    """docs/sync-protocol.md §5: first 4 bytes of SHA-256 of ``table\\nrow_id\\nop_id``."""
    digest = hashlib.sha256(f"{table}\n{row_id}\n{op_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Pending:
    id: int
    table: str
    op: str
    row_id: str
    values: dict[str, Any]
    hlc: str

    def as_mutation(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "table": self.table,
            "op": self.op,
            "row_id": self.row_id,
            "values": self.values,
            "hlc": self.hlc,
        }


def _apply_values(base: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A pending write on top of a row, as the server would merge it (docs §4)."""
    out = dict(base)
    for column, value in values.items():
        if isinstance(value, dict) and set(value) == {"$inc"}:
            current = out.get(column)
            out[column] = (current if isinstance(current, int) else 0) + value["$inc"]
        elif isinstance(value, dict) and value and set(value) <= {"$add", "$remove"}:
            members = set(out.get(column) or [])
            members = (members - set(value.get("$remove", []))) | set(value.get("$add", []))
            out[column] = sorted(members, key=lambda m: (isinstance(m, str), m))
        else:
            out[column] = value
    return out


class Replica:
    """A SQLite file (or ``:memory:``) holding one user's replica on one device."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        client_id: str | None = None,
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        if self._meta("client_id") is None:
            self._set_meta("client_id", client_id or f"c-{uuid.uuid4().hex}")
        self.clock = Clock(self.client_id[-32:], self._meta("clock"), wall_ms)

    # -- meta ------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def client_id(self) -> str:
        value = self._meta("client_id")
        assert value is not None
        return value

    @property
    def checkpoint(self) -> str | None:
        return self._meta("checkpoint")

    @property
    def acked(self) -> int:
        """The last mutation id the server confirmed applying (not yet necessarily downloaded)."""
        return int(self._meta("acked") or 0)

    def set_acked(self, mutation_id: int) -> None:
        self._set_meta("acked", str(max(mutation_id, self.acked)))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- local writes ----------------------------------------------------------------------

    def _enqueue(self, table: str, op: str, row_id: str, values: Mapping[str, Any]) -> int:
        with self._transaction() as db:
            stamp = self.clock.now()
            cursor = db.execute(
                "INSERT INTO queue (tbl, op, row_id, vals, hlc) VALUES (?, ?, ?, ?, ?)",
                (table, op, row_id, json.dumps(dict(values)), stamp),
            )
            self._set_meta("clock", stamp)
            return int(cursor.lastrowid or 0)

    def insert(self, table: str, row_id: str, values: Mapping[str, Any]) -> int:
        return self._enqueue(table, "insert", row_id, values)

    def update(self, table: str, row_id: str, values: Mapping[str, Any]) -> int:
        return self._enqueue(table, "update", row_id, values)

    def delete(self, table: str, row_id: str) -> int:
        return self._enqueue(table, "delete", row_id, {})

    def increment(self, table: str, row_id: str, column: str, by: int = 1) -> int:
        return self.update(table, row_id, {column: {"$inc": by}})

    def pending(self, after: int = 0, limit: int | None = None) -> list[Pending]:
        query = "SELECT id, tbl, op, row_id, vals, hlc FROM queue WHERE id > ? ORDER BY id"
        args: tuple[Any, ...] = (after,)
        if limit is not None:
            query += " LIMIT ?"
            args = (after, limit)
        return [
            Pending(int(r[0]), r[1], r[2], r[3], json.loads(r[4]), r[5])
            for r in self._db.execute(query, args)
        ]

    def drop_pending(self, mutation_id: int) -> None:
        """Forget one queued write the server refused as malformed (an app bug)."""
        self._db.execute("DELETE FROM queue WHERE id = ?", (mutation_id,))

    # -- reads -----------------------------------------------------------------------------

    def _server_rows(self, table: str) -> dict[str, dict[str, Any]]:
        return {
            row_id: json.loads(vals)
            for row_id, vals in self._db.execute(
                "SELECT row_id, vals FROM rows WHERE tbl = ?", (table,)
            )
        }

    def rows(self, table: str) -> dict[str, dict[str, Any]]:
        """Every row of ``table`` as the app sees it: the server's, with pending writes."""
        view = self._server_rows(table)
        for p in self.pending():
            if p.table != table:
                continue
            if p.op == "delete":
                view.pop(p.row_id, None)
            elif p.op == "insert" or p.row_id in view:
                view[p.row_id] = _apply_values(view.get(p.row_id, {}), p.values)
        return view

    def get(self, table: str, row_id: str) -> dict[str, Any] | None:
        return self.rows(table).get(row_id)

    def server_rows(self, table: str) -> dict[str, dict[str, Any]]:
        """The last checkpoint's rows only (no pending writes)."""
        return self._server_rows(table)

    # -- checkpoints -----------------------------------------------------------------------

    def apply_checkpoint(
        self,
        changes: Sequence[Mapping[str, Any]],
        checkpoint: Mapping[str, Any],
        reset_buckets: Sequence[str] = (),
    ) -> bool:
        """Apply a complete checkpoint atomically; ``False`` if a checksum did not match (the
        replica then dropped its rows and checkpoint: download again from scratch)."""
        with self._transaction() as db:
            for bucket in reset_buckets:
                db.execute("DELETE FROM rows WHERE bucket = ?", (bucket,))
            puts: list[tuple[str, str, str, str, int]] = []

            def flush() -> None:
                db.executemany(
                    "INSERT INTO rows (tbl, row_id, bucket, vals, op_id) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (tbl, row_id) DO UPDATE SET bucket = excluded.bucket, "
                    "vals = excluded.vals, op_id = excluded.op_id",
                    puts,
                )
                puts.clear()

            for change in changes:  # in op order; a row's later change wins
                if change["kind"] == "put":
                    puts.append(
                        (
                            change["table"],
                            change["row_id"],
                            change["bucket"],
                            json.dumps(change["values"]),
                            change["op_id"],
                        )
                    )
                else:
                    flush()
                    db.execute(
                        "DELETE FROM rows WHERE tbl = ? AND row_id = ?",
                        (change["table"], change["row_id"]),
                    )
            flush()
            for bucket, expected in checkpoint["buckets"].items():
                total = (
                    sum(
                        row_hash(t, r, o)
                        for t, r, o in db.execute(
                            "SELECT tbl, row_id, op_id FROM rows WHERE bucket = ?", (bucket,)
                        )
                    )
                    % 2**32
                )
                if total != expected["checksum"]:
                    break
            else:
                self._set_meta("checkpoint", checkpoint["token"])
                db.execute("DELETE FROM queue WHERE id <= ?", (checkpoint["last_mutation_id"],))
                return True
        self.reset()
        return False

    def reset(self) -> None:
        """Forget the server's rows and the checkpoint (pending writes stay queued)."""
        with self._transaction() as db:
            db.execute("DELETE FROM rows")
            self._set_meta("checkpoint", None)

    def close(self) -> None:
        self._db.close()
