"""Email tokens carry their purpose: ``verify`` (email verification) or ``reset`` (a
password reset), so a link made for one can never be used for the other.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "auth_email_tokens",
        sa.Column("purpose", sa.Text(), nullable=False, server_default=sa.text("'verify'")),
    )
    op.create_check_constraint(
        "auth_email_tokens_purpose", "auth_email_tokens", "purpose IN ('verify', 'reset')"
    )


def downgrade() -> None:
    op.drop_constraint("auth_email_tokens_purpose", "auth_email_tokens")
    op.drop_column("auth_email_tokens", "purpose")
