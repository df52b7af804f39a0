"""Migration sets: one version table per service, and the kit's own script folder is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobileplane.services.kit.migrate import KIT_MIGRATIONS, MigrationSet, head_revision


@pytest.mark.parametrize(
    ("service", "table"),
    [
        ("kit", "alembic_version_kit"),
        ("auth", "alembic_version_auth"),
        ("a_b2", "alembic_version_a_b2"),
    ],
)
def test_version_table_per_service(service: str, table: str) -> None:
    assert MigrationSet(service, Path("/x")).version_table == table


@pytest.mark.parametrize("service", ["", "Auth", "1abc", "has-dash", "x" * 42])
def test_bad_service_names_are_refused(service: str) -> None:
    with pytest.raises(ValueError):
        MigrationSet(service, Path("/x"))


def test_kit_migrations_have_one_head() -> None:
    assert head_revision(KIT_MIGRATIONS) == "0001"
