"""The telemetry service's tables: projects and DSN keys, issues and events, sessions and
aggregates, client reports, transactions, OTLP spans and metric points, debug files.

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
        "telemetry_aggregate_items",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("project_id", "digest"),
    )
    op.create_table(
        "telemetry_artifacts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ident", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "kind", "ident", name="uq_telemetry_artifacts_ident"),
    )
    op.create_table(
        "telemetry_client_reports",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discarded", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "digest"),
    )
    op.create_table(
        "telemetry_events",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("release", sa.Text(), nullable=True),
        sa.Column("environment", sa.Text(), nullable=True),
        sa.Column("user_key", sa.Text(), nullable=True),
        sa.Column("handled", sa.Boolean(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "event_id"),
    )
    op.create_index(
        "ix_telemetry_events_issue", "telemetry_events", ["issue_id", "timestamp"], unique=False
    )
    op.create_index(
        "ix_telemetry_events_received", "telemetry_events", ["received_at"], unique=False
    )
    op.create_table(
        "telemetry_issue_releases",
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("release", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("issue_id", "release"),
    )
    op.create_table(
        "telemetry_issue_users",
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("user_key", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("issue_id", "user_key"),
    )
    op.create_table(
        "telemetry_issues",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("fingerprint_version", sa.Integer(), nullable=False),
        sa.Column("components", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("culprit", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(), server_default="error", nullable=False),
        sa.Column("status", sa.Text(), server_default="unresolved", nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_in_release", sa.Text(), nullable=True),
        sa.Column("regressed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("regressed_in_release", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_release", sa.Text(), nullable=True),
        sa.Column("last_release", sa.Text(), nullable=True),
        sa.Column("event_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "fingerprint", name="uq_telemetry_issues_fingerprint"),
    )
    op.create_table(
        "telemetry_metric_points",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("resource", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "digest"),
    )
    op.create_index(
        "ix_telemetry_metric_points_name",
        "telemetry_metric_points",
        ["project_id", "name", "time"],
        unique=False,
    )
    op.create_table(
        "telemetry_projects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column(
            "category_limits",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("crash_free_sessions_target", sa.Float(), nullable=True),
        sa.Column("crash_free_sessions_critical", sa.Float(), nullable=True),
        sa.Column("crash_free_users_target", sa.Float(), nullable=True),
        sa.Column("crash_free_users_critical", sa.Float(), nullable=True),
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
        "telemetry_session_buckets",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("release", sa.Text(), nullable=False),
        sa.Column("environment", sa.Text(), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("did", sa.Text(), nullable=True),
        sa.Column("exited", sa.Integer(), nullable=False),
        sa.Column("errored", sa.Integer(), nullable=False),
        sa.Column("abnormal", sa.Integer(), nullable=False),
        sa.Column("crashed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_telemetry_session_buckets_release",
        "telemetry_session_buckets",
        ["project_id", "release", "started"],
        unique=False,
    )
    op.create_table(
        "telemetry_sessions",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sid", sa.Text(), nullable=False),
        sa.Column("did", sa.Text(), nullable=True),
        sa.Column("release", sa.Text(), nullable=False),
        sa.Column("environment", sa.Text(), nullable=False),
        sa.Column("init", sa.Boolean(), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("status_seq", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "sid"),
    )
    op.create_index(
        "ix_telemetry_sessions_release",
        "telemetry_sessions",
        ["project_id", "release", "started"],
        unique=False,
    )
    op.create_index(
        "ix_telemetry_sessions_started",
        "telemetry_sessions",
        ["project_id", "started"],
        unique=False,
    )
    op.create_table(
        "telemetry_spans",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=False),
        sa.Column("span_id", sa.Text(), nullable=False),
        sa.Column("parent_span_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("service_name", sa.Text(), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("resource", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "trace_id", "span_id"),
    )
    op.create_index(
        "ix_telemetry_spans_start", "telemetry_spans", ["project_id", "start"], unique=False
    )
    op.create_table(
        "telemetry_transactions",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("release", sa.Text(), nullable=True),
        sa.Column("environment", sa.Text(), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("span_count", sa.Integer(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "event_id"),
    )
    op.create_index(
        "ix_telemetry_transactions_start",
        "telemetry_transactions",
        ["project_id", "start"],
        unique=False,
    )
    op.create_table(
        "telemetry_keys",
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["project_id"], ["telemetry_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("public_key"),
    )
    op.create_index(
        op.f("ix_telemetry_keys_project_id"), "telemetry_keys", ["project_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_telemetry_keys_project_id"), table_name="telemetry_keys")
    op.drop_table("telemetry_keys")
    op.drop_index("ix_telemetry_transactions_start", table_name="telemetry_transactions")
    op.drop_table("telemetry_transactions")
    op.drop_index("ix_telemetry_spans_start", table_name="telemetry_spans")
    op.drop_table("telemetry_spans")
    op.drop_index("ix_telemetry_sessions_started", table_name="telemetry_sessions")
    op.drop_index("ix_telemetry_sessions_release", table_name="telemetry_sessions")
    op.drop_table("telemetry_sessions")
    op.drop_index("ix_telemetry_session_buckets_release", table_name="telemetry_session_buckets")
    op.drop_table("telemetry_session_buckets")
    op.drop_table("telemetry_projects")
    op.drop_index("ix_telemetry_metric_points_name", table_name="telemetry_metric_points")
    op.drop_table("telemetry_metric_points")
    op.drop_table("telemetry_issues")
    op.drop_table("telemetry_issue_users")
    op.drop_table("telemetry_issue_releases")
    op.drop_index("ix_telemetry_events_received", table_name="telemetry_events")
    op.drop_index("ix_telemetry_events_issue", table_name="telemetry_events")
    op.drop_table("telemetry_events")
    op.drop_table("telemetry_client_reports")
    op.drop_table("telemetry_artifacts")
    op.drop_table("telemetry_aggregate_items")
