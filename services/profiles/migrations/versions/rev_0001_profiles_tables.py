"""The profiles service's tables: profiles, avatar uploads, the event outbox.

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
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("subject", sa.Text(), primary_key=True),
        sa.Column("display_name", sa.Text()),
        sa.Column("locale", sa.Text()),
        sa.Column("time_zone", sa.Text()),
        sa.Column(
            "settings", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("avatar_key", sa.Text()),
        sa.Column("avatar_content_type", sa.Text()),
        sa.Column("avatar_size", sa.BigInteger()),
        sa.Column("avatar_sha256", sa.Text()),
        sa.Column("avatar_updated_at", TS),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
        sa.Column("updated_at", TS, nullable=False, server_default=NOW),
    )
    op.create_table(
        "profile_avatar_uploads",
        sa.Column("id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False, unique=True),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
    )
    op.create_index("ix_profile_avatar_uploads_subject", "profile_avatar_uploads", ["subject"])
    op.create_table(
        "profile_outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("id", postgresql.UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("published_at", TS),
        sa.Column("stream_id", sa.Text()),
    )
    op.create_index("ix_profile_outbox_subject", "profile_outbox", ["subject"])
    op.create_index(
        "profile_outbox_pending",
        "profile_outbox",
        ["seq"],
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    for table in ("profile_outbox", "profile_avatar_uploads", "profiles"):
        op.drop_table(table)
