"""The PostgreSQL provisioner against the stack's real server, the stack's role as the admin.

The stack's role ``mobileplane`` has CREATEDB and CREATEROLE but is no superuser: the same
powers as an admin role on a managed service.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from support.stack import StackSettings

from mobileplane.operator.provision import (
    AdminConnection,
    DatabaseInfo,
    PostgresProvisioner,
    ProvisioningError,
    Refused,
    Unreachable,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin(stack: StackSettings) -> AdminConnection:
    params = conninfo_to_dict(stack.database_url)
    return AdminConnection(
        host=str(params["host"]),
        port=int(params["port"] or 5432),
        user=str(params["user"]),
        password=str(params["password"]),
        sslmode="prefer",
        dbname=str(params["dbname"]),
        source="Secret test/pg-admin",
    )


@pytest.fixture
def provisioner() -> PostgresProvisioner:
    return PostgresProvisioner()


def _name() -> str:
    return f"mpt_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def app_names(
    admin: AdminConnection, provisioner: PostgresProvisioner
) -> AsyncIterator[Callable[[], str]]:
    """Hands out database/role names; whatever they made is dropped afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(_name())
        return made[-1]

    yield new
    for name in made:
        await provisioner.drop(admin, name, name)


def _connect(admin: AdminConnection, *, user: str, password: str, dbname: str) -> Any:
    return psycopg.connect(
        host=admin.host,
        port=admin.port,
        user=user,
        password=password,
        dbname=dbname,
        connect_timeout=5,
        autocommit=True,
    )


def _admin_query(stack: StackSettings, query: sql.Composable, params: Any = None) -> Any:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connections to it are refused


async def test_check_reports_version_and_powers(
    admin: AdminConnection, provisioner: PostgresProvisioner
) -> None:
    info = await provisioner.check(admin)
    assert info.version_num >= 130000
    assert info.version.split(".")[0] == str(info.version_num // 10000)
    assert info.user == admin.user
    assert info.createdb and info.createrole
    assert info.missing_privileges == ()


async def test_ensure_creates_a_least_privileged_database(
    admin: AdminConnection,
    provisioner: PostgresProvisioner,
    app_names: Callable[[], str],
    stack: StackSettings,
) -> None:
    name = app_names()
    info = await provisioner.ensure(admin, name, name, "s3cret-one")

    assert info.created_database and info.created_role
    assert (info.database, info.role, info.schema, info.owner) == (name, name, "app", admin.user)
    (row,) = _admin_query(
        stack,
        sql.SQL(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolconfig "
            "FROM pg_roles WHERE rolname = %s"
        ),
        (name,),
    )
    assert row == (True, False, False, False, ["search_path=app"])
    # The admin borrowed membership in the role for the schema step, and gave it back.
    assert not _admin_query(
        stack,
        sql.SQL("SELECT 1 FROM pg_auth_members WHERE roleid = %s::regrole"),
        (name,),
    )

    with _connect(admin, user=name, password="s3cret-one", dbname=name) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'hello')")
        assert conn.execute(
            "SELECT schemaname, tableowner FROM pg_tables WHERE tablename = 'notes'"
        ).fetchone() == ("app", name)
        assert conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app'"
        ).fetchone() == (name,)
        conn.execute("CREATE TEMPORARY TABLE scratch (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.elsewhere (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_name())))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(_name())))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


async def test_ensure_is_idempotent_and_keeps_the_password(
    admin: AdminConnection, provisioner: PostgresProvisioner, app_names: Callable[[], str]
) -> None:
    name = app_names()
    await provisioner.ensure(admin, name, name, "first-password")
    with _connect(admin, user=name, password="first-password", dbname=name) as conn:
        conn.execute("CREATE TABLE kept (id int)")

    again = await provisioner.ensure(admin, name, name, "second-password")

    assert not again.created_database and not again.created_role
    with _connect(admin, user=name, password="first-password", dbname=name) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(admin, user=name, password="second-password", dbname=name)


async def test_set_password_changes_it(
    admin: AdminConnection, provisioner: PostgresProvisioner, app_names: Callable[[], str]
) -> None:
    name = app_names()
    await provisioner.ensure(admin, name, name, "old-password")

    await provisioner.set_password(admin, name, "new-password")

    _connect(admin, user=name, password="new-password", dbname=name).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(admin, user=name, password="old-password", dbname=name)
    with pytest.raises(Refused, match="does not exist"):
        await provisioner.set_password(admin, _name(), "whatever")


async def test_one_apps_role_cannot_connect_to_another_apps_database(
    admin: AdminConnection, provisioner: PostgresProvisioner, app_names: Callable[[], str]
) -> None:
    a, b = app_names(), app_names()
    await provisioner.ensure(admin, a, a, "password-a")
    await provisioner.ensure(admin, b, b, "password-b")

    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        _connect(admin, user=a, password="password-a", dbname=b)
    _connect(admin, user=b, password="password-b", dbname=b).close()


async def test_concurrent_ensures_end_with_one_database(
    admin: AdminConnection,
    provisioner: PostgresProvisioner,
    app_names: Callable[[], str],
    stack: StackSettings,
) -> None:
    """Two operator replicas at once: the losers may fail (retryably); the outcome is one."""
    name = app_names()
    results = await asyncio.gather(
        *(provisioner.ensure(admin, name, name, "password") for _ in range(4)),
        return_exceptions=True,
    )

    assert all(isinstance(r, DatabaseInfo | ProvisioningError) for r in results), results
    assert any(isinstance(r, DatabaseInfo) for r in results)
    assert not (await provisioner.ensure(admin, name, name, "password")).created
    _connect(admin, user=name, password="password", dbname=name).close()


async def test_ensure_takes_elevated_attributes_from_an_existing_role(
    admin: AdminConnection,
    provisioner: PostgresProvisioner,
    app_names: Callable[[], str],
    stack: StackSettings,
) -> None:
    name = app_names()
    _admin_query(
        stack,
        sql.SQL("CREATE ROLE {} NOLOGIN CREATEDB CREATEROLE").format(sql.Identifier(name)),
    )

    info = await provisioner.ensure(admin, name, name, "unused")

    assert not info.created_role and info.created_database
    (row,) = _admin_query(
        stack,
        sql.SQL("SELECT rolcanlogin, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s"),
        (name,),
    )
    assert row == (True, False, False)


async def test_drop_removes_database_and_role_and_is_idempotent(
    admin: AdminConnection,
    provisioner: PostgresProvisioner,
    app_names: Callable[[], str],
    stack: StackSettings,
) -> None:
    name = app_names()
    await provisioner.ensure(admin, name, name, "password")
    # An open session of the app does not stop the drop (WITH (FORCE) ends it).
    session = _connect(admin, user=name, password="password", dbname=name)
    session.execute("CREATE TABLE t (id int)")
    try:
        dropped = await provisioner.drop(admin, name, name)
    finally:
        session.close()

    assert dropped.dropped_database and dropped.dropped_role
    assert not _admin_query(stack, sql.SQL("SELECT 1 FROM pg_database WHERE datname = %s"), (name,))
    assert not _admin_query(stack, sql.SQL("SELECT 1 FROM pg_roles WHERE rolname = %s"), (name,))

    again = await provisioner.drop(admin, name, name)
    assert not again.dropped_database and not again.dropped_role


async def test_invalid_or_reserved_names_are_refused(
    admin: AdminConnection, provisioner: PostgresProvisioner
) -> None:
    for database, role in [
        ("Shop", "shop"),
        ("shop", "shop; DROP ROLE x"),
        ("postgres", "shop"),
        (admin.dbname, "shop"),
        ("shop", admin.user),
        ("shop", "pg_shop"),
    ]:
        with pytest.raises(Refused) as caught:
            await provisioner.ensure(admin, database, role, "password")
        assert not caught.value.transient
        with pytest.raises(Refused):
            await provisioner.drop(admin, database, role)


async def test_closed_port_is_unreachable_and_transient(
    admin: AdminConnection, provisioner: PostgresProvisioner
) -> None:
    closed = AdminConnection(
        host="127.0.0.1", port=_closed_port(), user="u", password="p", source="Secret t/pg"
    )
    with pytest.raises(Unreachable) as caught:
        await provisioner.ensure(closed, "shop", "shop", "password")
    assert caught.value.transient
    assert "127.0.0.1" in str(caught.value) and "Secret t/pg" in str(caught.value)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


async def test_wrong_admin_password_is_refused(
    admin: AdminConnection, provisioner: PostgresProvisioner
) -> None:
    wrong = AdminConnection(
        host=admin.host, port=admin.port, user=admin.user, password="wrong", source="Secret t/pg"
    )
    with pytest.raises(Refused, match=r"password authentication failed.*Secret t/pg"):
        await provisioner.check(wrong)


@pytest.fixture
def weak_admin(stack: StackSettings, admin: AdminConnection) -> Iterator[AdminConnection]:
    """An admin role with CREATEROLE but without CREATEDB."""
    name = _name()
    _admin_query(
        stack,
        sql.SQL("CREATE ROLE {} LOGIN CREATEROLE NOCREATEDB PASSWORD {}").format(
            sql.Identifier(name), sql.Literal("weak-password")
        ),
    )
    yield AdminConnection(
        host=admin.host,
        port=admin.port,
        user=name,
        password="weak-password",
        dbname="postgres",
        source="Secret test/weak-admin",
    )
    _admin_query(stack, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


async def test_admin_without_createdb_is_refused_with_the_fix(
    weak_admin: AdminConnection,
    admin: AdminConnection,
    provisioner: PostgresProvisioner,
    app_names: Callable[[], str],
) -> None:
    info = await provisioner.check(weak_admin)
    assert info.missing_privileges == ("CREATEDB",)
    name = app_names()

    with pytest.raises(Refused) as caught:
        await provisioner.ensure(weak_admin, name, name, "password")

    message = str(caught.value)
    assert f"the admin role {weak_admin.user!r} in Secret test/weak-admin" in message
    assert f"may not create database {name!r}" in message
    assert "grant it CREATEDB or use a superuser" in message
    assert not caught.value.transient
    assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege)
    # The role it made before failing is dropped by the weak admin too (it has CREATEROLE).
    dropped = await provisioner.drop(weak_admin, name, name)
    assert dropped.dropped_role and not dropped.dropped_database


async def test_drop_waits_out_a_session_it_may_not_end(
    admin: AdminConnection,
    provisioner: PostgresProvisioner,
    app_names: Callable[[], str],
    stack: StackSettings,
) -> None:
    """Like an autovacuum worker: a session of a role the admin cannot signal, which leaves
    on its own moments later. The drop retries instead of refusing for good."""
    import threading

    name = app_names()
    outsider = f"{name}_x"
    await provisioner.ensure(admin, name, name, "password")
    _admin_query(
        stack,
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'x-password'").format(sql.Identifier(outsider)),
    )
    try:
        _admin_query(
            stack,
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.Identifier(outsider)
            ),
        )
        session = _connect(admin, user=outsider, password="x-password", dbname=name)
        leaving = threading.Timer(0.3, session.close)
        leaving.start()
        try:
            dropped = await provisioner.drop(admin, name, name)
        finally:
            leaving.join()
        assert dropped.dropped_database
    finally:
        _admin_query(stack, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(outsider)))
