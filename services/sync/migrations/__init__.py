"""Alembic migrations of the sync service (a package so that wheels include them)."""
