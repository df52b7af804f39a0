"""The analytics service's tables.

``(source_id, message_id)`` is the events' primary key: a retried batch (the SDKs retry on
5xx, 429 and network errors) inserts nothing twice, and concurrent copies of one batch
serialise on it. Profiles and groups are platform-wide; identity links are per source (an
anonymous id is a device's).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

sources = Table(
    "analytics_sources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

write_keys = Table(
    "analytics_write_keys",
    metadata,
    Column("write_key", Text, primary_key=True),
    Column(
        "source_id",
        Integer,
        ForeignKey("analytics_sources.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("label", Text, nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

events = Table(
    "analytics_events",
    metadata,
    Column("source_id", Integer, primary_key=True),
    Column("message_id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("event", Text),  # track: the event; page/screen: the name
    Column("user_id", Text),
    Column("anonymous_id", Text),
    Column("group_id", Text),
    Column("previous_id", Text),
    Column("timestamp", DateTime(timezone=True), nullable=False),  # corrected (server clock)
    Column("original_timestamp", DateTime(timezone=True)),  # as the device sent it
    Column("sent_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("ip", Text),  # anonymised unless ANALYTICS_IP_ANONYMIZATION=false
    Column("payload", JSONB, nullable=False),
    Index("ix_analytics_events_time", "timestamp"),
    Index("ix_analytics_events_event_time", "event", "timestamp"),
    Index("ix_analytics_events_user", "user_id"),
    Index("ix_analytics_events_anonymous", "source_id", "anonymous_id"),
    Index("ix_analytics_events_previous", "previous_id"),
)

profiles = Table(
    "analytics_profiles",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("traits", JSONB, nullable=False, server_default="{}"),
    Column("traits_at", DateTime(timezone=True)),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)

groups = Table(
    "analytics_groups",
    metadata,
    Column("group_id", Text, primary_key=True),
    Column("traits", JSONB, nullable=False, server_default="{}"),
    Column("traits_at", DateTime(timezone=True)),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)

links = Table(
    "analytics_identity_links",
    metadata,
    Column("source_id", Integer, primary_key=True),
    Column("anonymous_id", Text, primary_key=True),  # or an alias's previousId
    Column("user_id", Text, primary_key=True),
    Column("kind", Text, primary_key=True),  # identify | alias
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Index("ix_analytics_identity_links_user", "user_id"),
)

__all__ = ["events", "groups", "links", "metadata", "profiles", "sources", "write_keys"]
