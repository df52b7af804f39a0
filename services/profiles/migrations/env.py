"""Alembic environment of the profiles service's migrations."""

from mobileplane.services.kit.migrate import run_migrations
from mobileplane.services.profiles.models import metadata

run_migrations(target_metadata=metadata)
