"""Alembic environment of the analytics service's migrations."""

from mobileplane.services.analytics.models import metadata
from mobileplane.services.kit.migrate import run_migrations

run_migrations(target_metadata=metadata)
