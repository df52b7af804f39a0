"""Alembic environment of the kit's migrations; every service's ``env.py`` looks like this."""

from mobileplane.services.kit.migrate import run_migrations

# The kit has no tables of its own yet; a service passes its models' ``MetaData`` here.
run_migrations(target_metadata=None)
