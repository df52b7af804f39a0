"""How much a per-test database costs: cloning the migrated template vs. migrating afresh.

The test fixtures give every test its own PostgreSQL database by ``CREATE DATABASE …
TEMPLATE`` of a database that has every migration applied. The reference is what the
fixture would otherwise do: create an empty database and run the migrations into it.
A ratio below 1 means the template is cheaper. Needs the local stack
(``mobileplane stack up``); run with ``.venv/bin/python bench/bench_test_databases.py``.
"""

from __future__ import annotations

import uuid

import psycopg
from harness import compare
from psycopg import sql

from mobileplane.services.kit.migrate import KIT_MIGRATIONS, upgrade
from mobileplane.stack import manager


def main() -> None:
    url = manager.env()["DATABASE_URL"]
    base = url.rsplit("/", 1)[0]
    made: list[str] = []

    def create(template: str | None = None) -> str:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(url, autocommit=True) as conn:
            if template:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
            else:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return name

    template = create()
    upgrade(KIT_MIGRATIONS, f"{base}/{template}")
    try:
        result = compare(
            "per-test database: template clone vs. create + migrate",
            reference=lambda: upgrade(KIT_MIGRATIONS, f"{base}/{create()}"),
            candidate=lambda: create(template),
            rounds=9,
        )
        print(result.line())
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in made:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    main()
