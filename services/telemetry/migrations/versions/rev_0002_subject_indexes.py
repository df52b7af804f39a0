"""Indexes on the user's identifiers, so a data-subject export or erasure (services/telemetry
/privacy.py) finds a user's rows without scanning whole tables.

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

INDEXES = (
    ("ix_telemetry_events_user_key", "telemetry_events", "user_key"),
    ("ix_telemetry_sessions_did", "telemetry_sessions", "did"),
    ("ix_telemetry_session_buckets_did", "telemetry_session_buckets", "did"),
    ("ix_telemetry_issue_users_user_key", "telemetry_issue_users", "user_key"),
    ("ix_telemetry_transactions_user_id", "telemetry_transactions", "(payload->'user'->>'id')"),
    ("ix_telemetry_spans_enduser_id", "telemetry_spans", "(attributes->>'enduser.id')"),
    ("ix_telemetry_spans_user_id", "telemetry_spans", "(attributes->>'user.id')"),
)


def upgrade() -> None:
    for name, table, expression in INDEXES:
        # Partial: most rows carry no user at all.
        column = expression if expression.startswith("(") else f"({expression})"
        op.execute(sa.text(f"CREATE INDEX {name} ON {table} ({column}) WHERE {column} IS NOT NULL"))


def downgrade() -> None:
    for name, _table, _expression in INDEXES:
        op.drop_index(name)
