"""The sync service's tables (SQLAlchemy Core): rows, their operation log, buckets, clients.

- ``sync_buckets`` — one row per bucket: the last operation id (a per-bucket counter, taken
  under the row's lock, so operation ids are gap-free and commit-ordered within a bucket: a
  client that has seen op *n* has seen every op before it), the running checksum, and how far
  tombstones have been purged (a client whose checkpoint is older must resync).
- ``sync_rows`` — the server's state of every synced row: values, per-field clocks, set
  members' clocks, the delete marker (the latest delete's timestamp).
  A row is identified within its bucket, so users' row ids never collide.
- ``sync_ops`` — the change log: what each operation made of a row (its visible values, or a
  removal), and the bucket's checksum after it. Downloads read it.
- ``sync_clients`` — per client (an app install): its user, the last mutation id applied (a
  replayed upload is a no-op), its schema version.
- ``sync_conflicts`` — every client write the server overrode, reported back to that client.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

buckets = Table(
    "sync_buckets",
    metadata,
    Column("bucket", Text, primary_key=True),
    Column("last_op", BigInteger, nullable=False, server_default="0"),
    Column("checksum", BigInteger, nullable=False, server_default="0"),
    Column("purged_through", BigInteger, nullable=False, server_default="0"),
    Column("live_rows", Integer, nullable=False, server_default="0"),
)

rows = Table(
    "sync_rows",
    metadata,
    Column("bucket", Text, primary_key=True),
    Column("table_name", Text, primary_key=True),
    Column("row_id", Text, primary_key=True),
    Column("vals", JSONB, nullable=False),
    Column("clocks", JSONB, nullable=False),
    Column("deleted_at", Text),
    Column("elements", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("op_id", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

ops = Table(
    "sync_ops",
    metadata,
    Column("bucket", Text, primary_key=True),
    Column("op_id", BigInteger, primary_key=True),
    Column("table_name", Text, nullable=False),
    Column("row_id", Text, nullable=False),
    Column("kind", Text, nullable=False),  # "put" or "remove"
    Column("vals", JSONB),
    Column("checksum", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_sync_ops_row", "bucket", "table_name", "row_id", "op_id"),
)

clients = Table(
    "sync_clients",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("subject", Text, nullable=False, index=True),
    Column("last_mutation_id", BigInteger, nullable=False, server_default="0"),
    Column("schema_version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

conflicts = Table(
    "sync_conflicts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("subject", Text, nullable=False, index=True),
    Column("client_id", Text, nullable=False),
    Column("mutation_id", BigInteger, nullable=False),
    Column("table_name", Text, nullable=False),
    Column("row_id", Text, nullable=False),
    Column("column_name", Text, nullable=False),
    Column("client_value", JSONB),
    Column("server_value", JSONB),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
