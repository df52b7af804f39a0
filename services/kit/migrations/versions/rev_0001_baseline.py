"""Baseline: the kit's migration history starts here.

The kit owns no tables yet; this empty revision gives ``alembic_version_kit`` a first head so
that later kit revisions (and the quick start's "migrations applied" check) have a base.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
