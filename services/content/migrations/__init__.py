"""Alembic migrations of the content service (a package so that wheels include them)."""
