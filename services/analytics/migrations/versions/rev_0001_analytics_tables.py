"""The analytics service's tables: sources and write keys, events, profiles, groups and
identity links.

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


def upgrade() -> None:
    op.create_table(
        "analytics_events",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("anonymous_id", sa.Text(), nullable=True),
        sa.Column("group_id", sa.Text(), nullable=True),
        sa.Column("previous_id", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("original_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "message_id"),
    )
    op.create_index(
        "ix_analytics_events_anonymous",
        "analytics_events",
        ["source_id", "anonymous_id"],
        unique=False,
    )
    op.create_index(
        "ix_analytics_events_event_time", "analytics_events", ["event", "timestamp"], unique=False
    )
    op.create_index(
        "ix_analytics_events_previous", "analytics_events", ["previous_id"], unique=False
    )
    op.create_index("ix_analytics_events_time", "analytics_events", ["timestamp"], unique=False)
    op.create_index("ix_analytics_events_user", "analytics_events", ["user_id"], unique=False)
    op.create_table(
        "analytics_groups",
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column(
            "traits", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("traits_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_table(
        "analytics_identity_links",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("anonymous_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "anonymous_id", "user_id", "kind"),
    )
    op.create_index(
        "ix_analytics_identity_links_user", "analytics_identity_links", ["user_id"], unique=False
    )
    op.create_table(
        "analytics_profiles",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column(
            "traits", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("traits_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "analytics_sources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "analytics_write_keys",
        sa.Column("write_key", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["analytics_sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("write_key"),
    )
    op.create_index(
        op.f("ix_analytics_write_keys_source_id"),
        "analytics_write_keys",
        ["source_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_analytics_write_keys_source_id"), table_name="analytics_write_keys")
    op.drop_table("analytics_write_keys")
    op.drop_table("analytics_sources")
    op.drop_table("analytics_profiles")
    op.drop_index("ix_analytics_identity_links_user", table_name="analytics_identity_links")
    op.drop_table("analytics_identity_links")
    op.drop_table("analytics_groups")
    op.drop_index("ix_analytics_events_user", table_name="analytics_events")
    op.drop_index("ix_analytics_events_time", table_name="analytics_events")
    op.drop_index("ix_analytics_events_previous", table_name="analytics_events")
    op.drop_index("ix_analytics_events_event_time", table_name="analytics_events")
    op.drop_index("ix_analytics_events_anonymous", table_name="analytics_events")
    op.drop_table("analytics_events")
