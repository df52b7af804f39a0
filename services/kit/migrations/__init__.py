"""The kit's own Alembic migrations (version table ``alembic_version_kit``)."""
