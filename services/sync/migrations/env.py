"""Alembic environment of the sync service's migrations."""

from mobileplane.services.kit.migrate import run_migrations
from mobileplane.services.sync.models import metadata

run_migrations(target_metadata=metadata)
