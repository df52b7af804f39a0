"""Alembic environment of the app-config service's migrations."""

from mobileplane.services.appconfig.models import metadata
from mobileplane.services.kit.migrate import run_migrations

run_migrations(target_metadata=metadata)
