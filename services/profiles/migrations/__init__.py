"""Alembic migrations of the profiles service (a package so that wheels include them)."""
