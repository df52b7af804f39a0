"""``mobileplane migrate``: what the operator's migration Job runs, on an empty database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from support.names import unique
from support.stack import StackSettings

from mobileplane.cli import main
from mobileplane.services.kit.migrate import head_revision
from mobileplane.services.platform import platform_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database(stack: StackSettings, request: pytest.FixtureRequest) -> Iterator[str]:
    name = unique("m", request.node.name, max_len=60).replace("-", "_")
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = stack.database_url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def versions(url: str) -> dict[str, str]:
    found = {}
    with psycopg.connect(url) as conn:
        for ms in platform_migrations():
            row = conn.execute(
                sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(ms.version_table))
            ).fetchone()
            assert row is not None, f"{ms.version_table} is empty"
            found[ms.service] = row[0]
    return found


def test_migrate_brings_an_empty_database_to_every_head(empty_database: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["migrate"], env={"DATABASE_URL": empty_database})
    assert result.exit_code == 0, result.output
    heads = {ms.service: head_revision(ms) for ms in platform_migrations()}
    assert versions(empty_database) == heads
    assert "database is up to date" in result.output
    # A second run (the next rollout's Job) changes nothing and succeeds.
    again = runner.invoke(main, ["migrate", "--database-url", empty_database])
    assert again.exit_code == 0, again.output
    assert versions(empty_database) == heads


def test_migrate_without_a_database_says_what_to_set() -> None:
    result = CliRunner().invoke(main, ["migrate"], env={"DATABASE_URL": ""})
    assert result.exit_code == 2
    assert "DATABASE_URL is not set" in result.output


def test_migrate_refuses_a_url_that_is_not_postgres() -> None:
    result = CliRunner().invoke(main, ["migrate", "--database-url", "mysql://x@y/z"])
    assert result.exit_code == 2
    assert "must be a PostgreSQL URL" in result.output


def test_serve_names_the_services_it_knows() -> None:
    result = CliRunner().invoke(main, ["serve", "no-such-service"])
    assert result.exit_code == 2
    assert "no service named 'no-such-service'" in result.output
