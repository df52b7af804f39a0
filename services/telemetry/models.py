"""The telemetry service's tables.

Uniqueness is what makes ingestion idempotent: an event is stored once per ``(project,
event_id)``, a session once per ``(project, sid)`` (updates merge into it), an aggregate item
once per digest of its envelope, a span once per ``(project, trace_id, span_id)``, a metric
point once per digest of its identity. A retried envelope therefore changes nothing.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

projects = Table(
    "telemetry_projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("platform", Text, nullable=False),  # ios | android | python | javascript | other
    Column("category_limits", JSONB, nullable=False, server_default="{}"),  # per minute
    Column("crash_free_sessions_target", Float),  # percent; NULL: the deployment's default
    Column("crash_free_sessions_critical", Float),
    Column("crash_free_users_target", Float),
    Column("crash_free_users_critical", Float),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

keys = Table(
    "telemetry_keys",
    metadata,
    Column("public_key", Text, primary_key=True),
    Column(
        "project_id",
        Integer,
        ForeignKey("telemetry_projects.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("label", Text, nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("rate_limit_per_minute", Integer),  # events (errors + transactions); NULL: none
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

issues = Table(
    "telemetry_issues",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", Integer, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("fingerprint_version", Integer, nullable=False),
    Column("components", JSONB, nullable=False),
    Column("title", Text, nullable=False),
    Column("culprit", Text),
    Column("level", Text, nullable=False, server_default="error"),
    Column("status", Text, nullable=False, server_default="unresolved"),  # | resolved
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_in_release", Text),
    Column("regressed_at", DateTime(timezone=True)),
    Column("regressed_in_release", Text),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("first_release", Text),
    Column("last_release", Text),
    Column("event_count", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("project_id", "fingerprint", name="uq_telemetry_issues_fingerprint"),
)

issue_users = Table(
    "telemetry_issue_users",
    metadata,
    Column("issue_id", BigInteger, primary_key=True),
    Column("user_key", Text, primary_key=True),
)

issue_releases = Table(
    "telemetry_issue_releases",
    metadata,
    Column("issue_id", BigInteger, primary_key=True),
    Column("release", Text, primary_key=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("event_count", BigInteger, nullable=False, server_default="0"),
)

events = Table(
    "telemetry_events",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("event_id", Text, primary_key=True),  # 32 hex digits
    Column("issue_id", BigInteger, nullable=False),
    Column("level", Text, nullable=False),
    Column("release", Text),
    Column("environment", Text),
    Column("user_key", Text),
    Column("handled", Boolean),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("payload", JSONB, nullable=False),
    Index("ix_telemetry_events_issue", "issue_id", "timestamp"),
    Index("ix_telemetry_events_received", "received_at"),
)

sessions = Table(
    "telemetry_sessions",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("sid", Text, primary_key=True),
    Column("did", Text),
    Column("release", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("init", Boolean, nullable=False),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the latest update's order key
    Column("first_seq", BigInteger, nullable=False),  # the earliest's (attributes come from it)
    Column("status_seq", BigInteger, nullable=False),  # the update that set the status
    Column("status", Text, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("duration", Float),
    Column("outcome", Text, nullable=False),  # healthy | errored | abnormal | crashed
    Index("ix_telemetry_sessions_release", "project_id", "release", "started"),
    Index("ix_telemetry_sessions_started", "project_id", "started"),
)

aggregate_items = Table(
    "telemetry_aggregate_items",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("digest", Text, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

session_buckets = Table(
    "telemetry_session_buckets",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", Integer, nullable=False),
    Column("digest", Text, nullable=False),  # the aggregate item it came from
    Column("release", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("did", Text),
    Column("exited", Integer, nullable=False),
    Column("errored", Integer, nullable=False),
    Column("abnormal", Integer, nullable=False),
    Column("crashed", Integer, nullable=False),
    Index("ix_telemetry_session_buckets_release", "project_id", "release", "started"),
)

client_reports = Table(
    "telemetry_client_reports",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("digest", Text, primary_key=True),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("discarded", JSONB, nullable=False),
)

transactions = Table(
    "telemetry_transactions",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("trace_id", Text),
    Column("name", Text, nullable=False),
    Column("op", Text),
    Column("status", Text),
    Column("release", Text),
    Column("environment", Text),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("span_count", Integer, nullable=False),
    Column("payload", JSONB, nullable=False),
    Index("ix_telemetry_transactions_start", "project_id", "start"),
)

spans = Table(
    "telemetry_spans",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("trace_id", Text, primary_key=True),
    Column("span_id", Text, primary_key=True),
    Column("parent_span_id", Text),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("service_name", Text),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status", Text, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("resource", JSONB, nullable=False),
    Index("ix_telemetry_spans_start", "project_id", "start"),
)

metric_points = Table(
    "telemetry_metric_points",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("digest", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),  # gauge | sum | histogram | ...
    Column("unit", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("value", Float),  # gauge/sum value; histogram: NULL (see data)
    Column("data", JSONB, nullable=False),  # histogram count/sum/buckets, temporality ...
    Column("attributes", JSONB, nullable=False),
    Column("resource", JSONB, nullable=False),
    Index("ix_telemetry_metric_points_name", "project_id", "name", "time"),
)

artifacts = Table(
    "telemetry_artifacts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", Integer, nullable=False),
    Column("kind", Text, nullable=False),  # proguard | dsym
    Column("ident", Text, nullable=False),  # proguard: the release; dsym: the debug id
    Column("key", Text, nullable=False),  # S3 object key
    Column("sha256", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("project_id", "kind", "ident", name="uq_telemetry_artifacts_ident"),
)
