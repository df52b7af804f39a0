"""The sync service's tables: buckets, rows, the operation log, clients, conflicts.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "sync_buckets",
        sa.Column("bucket", sa.Text(), primary_key=True),
        sa.Column("last_op", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("checksum", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("purged_through", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("live_rows", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "sync_rows",
        sa.Column("bucket", sa.Text(), primary_key=True),
        sa.Column("table_name", sa.Text(), primary_key=True),
        sa.Column("row_id", sa.Text(), primary_key=True),
        sa.Column("vals", postgresql.JSONB(), nullable=False),
        sa.Column("clocks", postgresql.JSONB(), nullable=False),
        sa.Column("deleted_at", sa.Text()),
        sa.Column("op_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "sync_ops",
        sa.Column("bucket", sa.Text(), primary_key=True),
        sa.Column("op_id", sa.BigInteger(), primary_key=True),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("row_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("vals", postgresql.JSONB()),
        sa.Column("checksum", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_index("ix_sync_ops_row", "sync_ops", ["bucket", "table_name", "row_id", "op_id"])
    op.create_table(
        "sync_clients",
        sa.Column("client_id", sa.Text(), primary_key=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("last_mutation_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_index("ix_sync_clients_subject", "sync_clients", ["subject"])
    op.create_table(
        "sync_conflicts",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("mutation_id", sa.BigInteger(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("row_id", sa.Text(), nullable=False),
        sa.Column("column_name", sa.Text(), nullable=False),
        sa.Column("client_value", postgresql.JSONB()),
        sa.Column("server_value", postgresql.JSONB()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_index("ix_sync_conflicts_subject", "sync_conflicts", ["subject"])


def downgrade() -> None:
    for table in ("sync_conflicts", "sync_clients", "sync_ops", "sync_rows", "sync_buckets"):
        op.drop_table(table)
