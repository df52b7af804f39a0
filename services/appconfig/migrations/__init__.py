"""Alembic migrations of the app-config service."""
