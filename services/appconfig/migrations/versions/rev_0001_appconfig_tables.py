"""The app-config service's tables: platforms, halted versions, kill switches.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "appconfig_platforms",
        sa.Column("app", sa.Text(), primary_key=True),
        sa.Column("platform", sa.Text(), primary_key=True),
        sa.Column("latest_version", sa.Text()),
        sa.Column("min_supported_version", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "appconfig_halted_versions",
        sa.Column("app", sa.Text(), primary_key=True),
        sa.Column("platform", sa.Text(), primary_key=True),
        sa.Column("version", sa.Text(), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("halted_by", sa.Text(), nullable=False),
        sa.Column("halted_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "appconfig_kill_switches",
        sa.Column("app", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )


def downgrade() -> None:
    for table in ("appconfig_kill_switches", "appconfig_halted_versions", "appconfig_platforms"):
        op.drop_table(table)
