"""The content service's tables: items, media objects, and audience segments of users."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()

items = Table(
    "content_items",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),  # article | feed | config
    Column("title", Text, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("locale", Text),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("segments", ARRAY(Text), nullable=False, server_default="{}"),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("media", ARRAY(Text), nullable=False, server_default="{}"),  # media object ids
    Column("published_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

media = Table(
    "content_media",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("key", Text, nullable=False, unique=True),
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),  # hex
    Column("status", Text, nullable=False, server_default="pending"),  # pending | ready
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

audience = Table(
    "content_audience",
    metadata,
    Column("subject", Text, primary_key=True),
    Column("segment", Text, primary_key=True),
)
