"""Alembic environment of the telemetry service's migrations."""

from mobileplane.services.kit.migrate import run_migrations
from mobileplane.services.telemetry.models import metadata

run_migrations(target_metadata=metadata)
