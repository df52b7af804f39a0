"""Alembic environment of the auth service's migrations."""

from mobileplane.services.auth.models import metadata
from mobileplane.services.kit.migrate import run_migrations

run_migrations(target_metadata=metadata)
