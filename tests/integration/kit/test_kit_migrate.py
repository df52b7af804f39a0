"""The migration helper on a real PostgreSQL: idempotent upgrades, one version table per
service, services sharing a database without touching each other's history."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from mobileplane.services.kit.migrate import (
    KIT_MIGRATIONS,
    MigrationSet,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
    upgrade_async,
)

pytestmark = pytest.mark.integration

SERVICE_ENV = """
from mobileplane.services.kit.migrate import run_migrations

run_migrations(target_metadata=None)
"""

SERVICE_REVISION = '''
"""Create widgets."""
import sqlalchemy as sa
from alembic import op

revision = "w001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Slow on purpose: concurrent upgrades overlap, so only the advisory lock keeps them apart.
    op.execute("SELECT pg_sleep(1)")
    op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("widgets")
'''


def tables(database_url: str) -> set[str]:
    plain = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


@pytest.fixture
def widgets_migrations(tmp_path: Path) -> MigrationSet:
    """A service's own migrations folder, as each service will have one."""
    folder = tmp_path / "migrations"
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text(SERVICE_ENV)
    (folder / "versions" / "rev_w001_widgets.py").write_text(SERVICE_REVISION)
    return MigrationSet("widgets", folder)


def test_kit_upgrade_is_idempotent(database_url: str) -> None:
    head = head_revision(KIT_MIGRATIONS)
    assert head is not None
    downgrade(KIT_MIGRATIONS, database_url, "base")
    assert current_revision(KIT_MIGRATIONS, database_url) is None
    for _ in range(3):
        upgrade(KIT_MIGRATIONS, database_url)
        assert current_revision(KIT_MIGRATIONS, database_url) == head
    assert "alembic_version_kit" in tables(database_url)
    assert "alembic_version" not in tables(database_url)


def test_concurrent_upgrades_take_turns(
    database_url: str, widgets_migrations: MigrationSet
) -> None:
    """Replicas starting together: separate processes, one database, one winner per step."""
    script = (
        "import sys; from pathlib import Path; "
        "from mobileplane.services.kit.migrate import MigrationSet, upgrade; "
        "upgrade(MigrationSet('widgets', Path(sys.argv[1])), sys.argv[2])"
    )
    argv = [sys.executable, "-c", script, str(widgets_migrations.script_location), database_url]
    processes = [subprocess.Popen(argv, stderr=subprocess.PIPE) for _ in range(3)]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    assert current_revision(widgets_migrations, database_url) == "w001"


async def test_concurrent_upgrades_in_one_process(
    database_url: str, widgets_migrations: MigrationSet
) -> None:
    await asyncio.gather(*(upgrade_async(widgets_migrations, database_url) for _ in range(3)))
    assert current_revision(widgets_migrations, database_url) == "w001"


async def test_services_keep_separate_histories(
    database_url: str, widgets_migrations: MigrationSet
) -> None:
    await upgrade_async(widgets_migrations, database_url)
    assert {"widgets", "alembic_version_widgets", "alembic_version_kit"} <= tables(database_url)
    assert current_revision(widgets_migrations, database_url) == "w001"
    assert current_revision(KIT_MIGRATIONS, database_url) == head_revision(KIT_MIGRATIONS)

    downgrade(widgets_migrations, database_url, "base")
    assert "widgets" not in tables(database_url)
    assert current_revision(KIT_MIGRATIONS, database_url) == head_revision(KIT_MIGRATIONS)
