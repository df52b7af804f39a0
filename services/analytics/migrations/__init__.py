"""Alembic migrations of the analytics service (a package so that wheels include them)."""
