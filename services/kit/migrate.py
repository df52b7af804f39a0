"""Run a service's Alembic migrations from code, with one version table per service.

Each service owns a migrations folder (``env.py``, ``script.py.mako``, ``versions/``) and is
described by a :class:`MigrationSet`. All services may share one database (the quick start
does), so each records its revision in its own table, ``alembic_version_<service>``, and its
autogenerate ignores the other services' tables.

:func:`upgrade` runs synchronously (a CLI, an init container); :func:`upgrade_async` runs the
same in a worker thread for callers inside an event loop. Concurrent upgrades of one service
(two replicas starting together) serialise on a PostgreSQL advisory lock, and an up-to-date
database is left untouched, so upgrading is idempotent.

A service's ``env.py`` is two lines: import :func:`run_migrations` and call it with the
service's ``MetaData``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, pool, text

from mobileplane.services.kit.settings import normalize_database_url

_SERVICE_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")
# Alembic's ``context`` and ``op`` are process-wide proxies: two commands running at once in
# one process (e.g. two upgrade_async calls) would overwrite each other's. One at a time here;
# across processes, the advisory lock in run_migrations serialises them.
_ALEMBIC_LOCK = threading.Lock()


@dataclass(frozen=True)
class MigrationSet:
    """The migrations of one service: its name and its Alembic script folder."""

    service: str
    script_location: Path

    def __post_init__(self) -> None:
        if not _SERVICE_NAME.fullmatch(self.service):
            raise ValueError(f"service name {self.service!r} must match {_SERVICE_NAME.pattern}")

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.service}"


KIT_MIGRATIONS = MigrationSet("kit", Path(__file__).parent / "migrations")


def make_config(migrations: MigrationSet, database_url: str | None = None) -> Config:
    """An Alembic ``Config`` without an ini file, for ``alembic.command`` functions."""
    config = Config()
    config.set_main_option("script_location", str(migrations.script_location))
    # Revision files must be importable module names (mypy, ruff): "rev_0002_add_users.py".
    config.set_main_option("file_template", "rev_%%(rev)s_%%(slug)s")
    # Passed as attributes, not main options: ini interpolation would mangle a "%" in a password.
    config.attributes["version_table"] = migrations.version_table
    if database_url is not None:
        config.attributes["database_url"] = normalize_database_url(database_url)
    return config


def upgrade(migrations: MigrationSet, database_url: str, revision: str = "head") -> None:
    with _ALEMBIC_LOCK:
        command.upgrade(make_config(migrations, database_url), revision)


async def upgrade_async(
    migrations: MigrationSet, database_url: str, revision: str = "head"
) -> None:
    await asyncio.to_thread(upgrade, migrations, database_url, revision)


def downgrade(migrations: MigrationSet, database_url: str, revision: str) -> None:
    with _ALEMBIC_LOCK:
        command.downgrade(make_config(migrations, database_url), revision)


def head_revision(migrations: MigrationSet) -> str | None:
    return ScriptDirectory.from_config(make_config(migrations)).get_current_head()


def known_revisions(migrations: MigrationSet) -> frozenset[str]:
    """Every revision this code's migration scripts know."""
    script = ScriptDirectory.from_config(make_config(migrations))
    return frozenset(r.revision for r in script.walk_revisions())


def current_revision(migrations: MigrationSet, database_url: str) -> str | None:
    """The revision recorded in the database, ``None`` before the first upgrade."""
    engine = create_engine(normalize_database_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": migrations.version_table}
            )
            return context.get_current_revision()
    finally:
        engine.dispose()


def new_revision(
    migrations: MigrationSet,
    message: str,
    *,
    database_url: str | None = None,
    autogenerate: bool = False,
    rev_id: str | None = None,
) -> None:
    """Write a new revision file (``autogenerate`` compares the models with ``database_url``)."""
    with _ALEMBIC_LOCK:
        command.revision(
            make_config(migrations, database_url),
            message=message,
            autogenerate=autogenerate,
            rev_id=rev_id,
        )


def _only_own_tables(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # A table found in the database but absent from this service's metadata belongs to another
    # service sharing the database: autogenerate must not propose to drop it.
    return not (type_ == "table" and reflected and compare_to is None)


def run_migrations(target_metadata: MetaData | None) -> None:
    """Body of a service's ``env.py``: run its migrations online (or offline, as SQL)."""
    from alembic import context  # only importable while Alembic runs an env.py

    config = context.config
    version_table = config.attributes.get("version_table") or config.get_main_option(
        "version_table"
    )
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not version_table or not url:
        raise RuntimeError(
            "run migrations through mobileplane.services.kit.migrate (version table and "
            "database URL are passed there)"
        )
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "version_table": version_table,
        "include_object": _only_own_tables,
        "compare_type": True,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **options)
            with context.begin_transaction():
                # Replicas starting together take turns; the second finds the work done.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": version_table}
                )
                context.run_migrations()
    finally:
        engine.dispose()
