"""Alembic environment of the content service's migrations."""

from mobileplane.services.content.models import metadata
from mobileplane.services.kit.migrate import run_migrations

run_migrations(target_metadata=metadata)
