"""The profiles service's tables: profiles, pending avatar uploads, and the event outbox."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

profiles = Table(
    "profiles",
    metadata,
    Column("subject", Text, primary_key=True),  # the tokens' ``sub``
    Column("display_name", Text),
    Column("locale", Text),
    Column("time_zone", Text),
    Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("avatar_key", Text),  # S3 key of the current avatar
    Column("avatar_content_type", Text),
    Column("avatar_size", BigInteger),
    Column("avatar_sha256", Text),
    Column("avatar_updated_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

avatar_uploads = Table(
    "profile_avatar_uploads",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("subject", Text, nullable=False, index=True),
    Column("key", Text, nullable=False, unique=True),
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),  # hex
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = Table(
    "profile_outbox",
    metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),  # publication order
    Column("id", UUID(as_uuid=False), nullable=False, unique=True),  # the event id
    Column("type", Text, nullable=False),
    Column("subject", Text, nullable=False, index=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("stream_id", Text),  # the Redis Stream entry id, once published
    Index("profile_outbox_pending", "seq", postgresql_where=text("published_at IS NULL")),
)
