"""Alembic migrations of the telemetry service (a package so that wheels include them)."""
