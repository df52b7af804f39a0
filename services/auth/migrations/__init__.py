"""Alembic migrations of the auth service (a package so that wheels include them)."""
