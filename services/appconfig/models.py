"""The app-config service's tables: per app and platform versions, halted versions, kill
switches. Small by design: a handful of rows per app, read on every app start."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, MetaData, Table, Text, func

metadata = MetaData()

platforms = Table(
    "appconfig_platforms",
    metadata,
    Column("app", Text, primary_key=True),
    Column("platform", Text, primary_key=True),  # ios | android
    Column("latest_version", Text),
    Column("min_supported_version", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

halted = Table(
    "appconfig_halted_versions",
    metadata,
    Column("app", Text, primary_key=True),
    Column("platform", Text, primary_key=True),
    Column("version", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("halted_by", Text, nullable=False),
    Column("halted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

kill_switches = Table(
    "appconfig_kill_switches",
    metadata,
    Column("app", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
