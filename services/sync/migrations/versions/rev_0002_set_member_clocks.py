"""Set members keep their own clocks, so set columns merge the same in any arrival order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before this revision have none: the merge derives each member's add
    # clock from its column's clock (services/sync/merge.py, _elements_of).
    op.add_column(
        "sync_rows",
        sa.Column(
            "elements", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
    )


def downgrade() -> None:
    op.drop_column("sync_rows", "elements")
