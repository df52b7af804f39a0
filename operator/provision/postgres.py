"""The one operator module that talks to PostgreSQL: an app's database and its role.

For a MobilePlatform with ``database.mode: External`` the operator logs in to an existing
server with an admin role (from the Secret named by ``adminSecretRef``) and makes, idempotently:

- a **role** that may log in, with the password the operator generated once. An existing role
  keeps its password (:meth:`PostgresProvisioner.ensure` never changes it;
  :meth:`~PostgresProvisioner.set_password` does, on purpose). It gets no CREATEDB, CREATEROLE,
  SUPERUSER, REPLICATION or BYPASSRLS; an existing role with one of the last three is refused.
- a **database** owned by the admin, not by the app's role: the app cannot drop it or change
  who may connect. PUBLIC loses every privilege on it; the role gets CONNECT and TEMPORARY, so
  the role of another app on the same server cannot connect to it.
- a **schema** ``app`` in that database, owned by the role, where the app's tables live (the
  role's ``search_path`` is ``app``), and no CREATE for PUBLIC on schema ``public``.

:meth:`~PostgresProvisioner.drop` undoes all of it (``deletionPolicy: Delete``).

The password never travels as text: it is hashed to a SCRAM-SHA-256 verifier on our side
(libpq's ``PQencryptPasswordConn``, what ``psql``'s ``\\password`` does), so it cannot show up
in the server's statement log or in ``pg_stat_activity``.

A non-superuser admin (CREATEDB and CREATEROLE, as on managed services) must be a member of
the app's role to create a schema owned by it, to drop what it owns and to end its sessions;
such a membership is granted for the duration of the step and revoked afterwards (in
:meth:`~PostgresProvisioner.drop`, it goes with the role).

Concurrent calls for the same names (two operator replicas) end with the same objects; the
loser may see a transient :class:`ProvisioningError` ("tuple concurrently updated") that the
next retry clears.

Identifiers go through :mod:`psycopg.sql`, never through string formatting, and are checked
against the spec's pattern first. Every psycopg exception becomes a
:class:`~mobileplane.operator.provision.errors.ProvisioningError` (chained) that says whether a
retry can help: connection failures are :class:`Unreachable`, missing privileges and bad
logins are :class:`Refused` with the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeAlias

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.rows import TupleRow

from mobileplane.operator.provision.errors import ProvisioningError, Refused, Unreachable
from mobileplane.operator.provision.models import (
    SCHEMA,
    AdminConnection,
    DatabaseInfo,
    DroppedDatabase,
    ServerInfo,
    validate_identifier,
    validate_names,
)

#: A drop that meets a session it may not end (an autovacuum worker) is retried this often.
DROP_ATTEMPTS = 5
DROP_RETRY_SECONDS = 0.2

__all__ = [
    "AdminConnection",
    "DatabaseInfo",
    "DroppedDatabase",
    "PostgresProvisioner",
    "ServerInfo",
    "connection_error",
    "query_error",
]

Connection: TypeAlias = psycopg.AsyncConnection[TupleRow]

#: Seconds to wait for a connection. A handler should fail fast and be requeued (kopf paces
#: the retries) rather than hold a worker while a server is down.
CONNECT_TIMEOUT = 5

#: A statement may run this long (ms): DROP DATABASE of a large database deletes its files.
STATEMENT_TIMEOUT_MS = 120_000

#: Waiting for a lock this long (ms) is a transient error and a requeue, not a hung handler.
LOCK_TIMEOUT_MS = 10_000

#: Stored password hash. SCRAM works under pg_hba's "md5" method as well (PostgreSQL >= 10).
PASSWORD_ALGORITHM = b"scram-sha-256"

APPLICATION_NAME = "mobileplane-operator"

#: Connection failures that a retry cannot fix, by libpq/server message, with the fix.
#: (A failed connection carries no SQLSTATE in libpq, only its message.) Anything else —
#: refused, timed out, DNS, "too many clients", "starting up" — is transient.
_PERMANENT_CONNECT_FAILURES: tuple[tuple[str, str], ...] = (
    ("authentication failed", "check username and password"),
    ("no password supplied", "set password"),
    ("no pg_hba.conf entry", "allow the operator's address in the server's pg_hba.conf"),
    ("does not support ssl", "set sslmode to prefer or disable"),
    ("certificate", "check sslmode and the server's certificate"),
    ("does not exist", "check username and database"),
    ("permission denied for database", "grant the admin role CONNECT on its database"),
)


# -- error mapping ---------------------------------------------------------------------------


def connection_error(
    error: psycopg.Error, admin: AdminConnection, dbname: str
) -> ProvisioningError:
    """The provisioning error for a failed login (callers ``raise ... from error``)."""
    # libpq tries each address of a host and reports one line per attempt (e.g. refused on
    # ::1, then a bad password on 127.0.0.1): the telling line may not be the first.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        for marker, fix in _PERMANENT_CONNECT_FAILURES:
            if marker in line.lower():
                return Refused(
                    f"{admin.server} refused the login as {admin.user!r} to database "
                    f"{dbname!r} ({line}): {fix}{' in ' + admin.source if admin.source else ''}"
                )
    detail = lines[0] if lines else "no detail"
    return Unreachable(
        f"cannot reach {admin.server} ({detail}): check host and port"
        f"{' in ' + admin.source if admin.source else ''} and that the server accepts "
        "connections from the operator; retrying"
    )


def query_error(
    error: psycopg.Error, admin: AdminConnection, *, doing: str, hint: str
) -> ProvisioningError:
    """The provisioning error for a failed statement (callers ``raise ... from error``)."""
    primary = error.diag.message_primary or _first_line(str(error))
    state = error.sqlstate
    if isinstance(error, pgerrors.InsufficientPrivilege):
        return Refused(f"{admin.admin} may not {doing} ({primary}): {hint}")
    lost = state is None and isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    if lost or (state or "").startswith("08") or state in ("57P01", "57P02", "57P03"):
        return Unreachable(
            f"lost the connection to {admin.server} while trying to {doing} ({primary}); retrying"
        )
    if isinstance(error, psycopg.OperationalError | psycopg.errors.InternalError):
        # Lock and statement timeouts, "in use", out of resources: they pass.
        return ProvisioningError(
            f"{admin.server} could not {doing} now ({primary}, SQLSTATE {state}); retrying",
            transient=True,
        )
    return ProvisioningError(
        f"{admin.server} refused to {doing} ({primary}, SQLSTATE {state}): {hint}",
        transient=False,
    )


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no detail"


@contextlib.contextmanager
def _mapped(admin: AdminConnection, doing: str, hint: str) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as e:
        raise query_error(e, admin, doing=doing, hint=hint) from e


# -- the gateway -----------------------------------------------------------------------------


class PostgresProvisioner:
    """Creates and drops apps' databases and roles on servers given by admin connections.

    Stateless apart from its timeouts: every call opens its own connection(s) and closes them,
    so one instance serves all MobilePlatforms and concurrent handlers.
    """

    def __init__(
        self,
        *,
        connect_timeout: int = CONNECT_TIMEOUT,
        statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.statement_timeout_ms = statement_timeout_ms
        self.lock_timeout_ms = lock_timeout_ms

    async def check(self, admin: AdminConnection) -> ServerInfo:
        """Log in and report the server version and the admin's role attributes."""
        async with self._connect(admin) as conn:
            return await self._server_info(conn, admin)

    async def ensure(
        self, admin: AdminConnection, database: str, role: str, password: str
    ) -> DatabaseInfo:
        """Make the role, the database and the schema, and set least privilege. Idempotent.

        An existing role keeps its password; ``password`` is used only when creating it.
        """
        validate_names(admin, database, role)
        if not password:
            raise Refused(f"the password for role {role!r} is empty: generate one")
        async with self._connect(admin) as conn:
            me = await self._server_info(conn, admin)
            created_role = await self._ensure_role(conn, admin, role, password)
            created_database, owner = await self._ensure_database(conn, admin, database)
            await self._database_privileges(conn, admin, database, role)
            granted = await self._borrow_role(conn, admin, me, role)
            try:
                async with self._connect(admin, database) as db:
                    await self._ensure_schema(db, admin, database, role)
            finally:
                if granted:
                    # Best effort: a membership left behind gives the admin nothing it could
                    # not take anyway, and must not hide the error that got us here.
                    with contextlib.suppress(ProvisioningError, psycopg.Error):
                        await self._execute(
                            conn,
                            admin,
                            sql.SQL("REVOKE {} FROM CURRENT_USER").format(sql.Identifier(role)),
                            doing=f"give up its membership in role {role!r}",
                            hint="revoke it by hand",
                        )
        return DatabaseInfo(
            database=database,
            role=role,
            schema=SCHEMA,
            owner=owner,
            created_database=created_database,
            created_role=created_role,
            server_version=me.version,
        )

    async def set_password(self, admin: AdminConnection, role: str, password: str) -> None:
        """Change the password of the app's ``role`` (a rotation; :meth:`ensure` never does)."""
        validate_identifier(role, "role")
        if role == admin.user:
            raise Refused(f"role {role!r} is {admin.admin} itself: refusing to change it")
        if not password:
            raise Refused(f"the new password for role {role!r} is empty: generate one")
        async with self._connect(admin) as conn:
            row = await self._fetchone(
                conn,
                admin,
                sql.SQL("SELECT rolsuper FROM pg_roles WHERE rolname = %s"),
                (role,),
                doing=f"look up role {role!r}",
            )
            if row is None:
                raise Refused(f"role {role!r} does not exist on {admin.server}: ensure it first")
            await self._execute(
                conn,
                admin,
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(self._verifier(conn, admin, role, password))
                ),
                doing=f"change the password of role {role!r}",
                hint="grant it CREATEROLE or use a superuser",
            )

    async def _drop_database(self, conn: Any, admin: AdminConnection, database: str) -> None:
        """``DROP DATABASE … WITH (FORCE)``, riding out an autovacuum worker.

        FORCE ends the database's sessions, checking the admin's right to signal each. An
        autovacuum worker that happens to be in the database (likely right after it was
        written to) fails that check for a non-superuser admin; it exits within moments, so
        the drop is retried a few times before the refusal is reported.
        """
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(database)
        )
        for attempt in range(DROP_ATTEMPTS):
            try:
                await self._execute(
                    conn,
                    admin,
                    statement,
                    doing=f"drop database {database!r}",
                    hint="only its owner (or a superuser) may drop it, and ending sessions of "
                    "other roles needs pg_signal_backend: drop it by hand or use its owner",
                )
                return
            except Refused as e:
                busy = isinstance(e.__cause__, pgerrors.InsufficientPrivilege) and (
                    "process is being terminated" in str(e.__cause__)
                )
                if not busy or attempt == DROP_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(DROP_RETRY_SECONDS * (attempt + 1))

    async def drop(self, admin: AdminConnection, database: str, role: str) -> DroppedDatabase:
        """Drop the database (ending its sessions) and the role. Idempotent."""
        validate_names(admin, database, role)
        async with self._connect(admin) as conn:
            me = await self._server_info(conn, admin)
            role_exists = await self._role_attributes(conn, admin, role) is not None
            if role_exists:
                # Membership lets a non-superuser end the role's sessions and drop what it owns;
                # it goes away with the role.
                await self._borrow_role(conn, admin, me, role)
            db_exists = (
                await self._fetchone(
                    conn,
                    admin,
                    sql.SQL("SELECT 1 FROM pg_database WHERE datname = %s"),
                    (database,),
                    doing=f"look up database {database!r}",
                )
                is not None
            )
            if db_exists:
                await self._drop_database(conn, admin, database)
            if role_exists:
                # Objects and grants of the role in this (admin) database and on shared
                # objects; its own database is gone already.
                await self._execute(
                    conn,
                    admin,
                    sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)),
                    doing=f"drop what role {role!r} owns",
                    hint="grant it membership in the role, or use a superuser",
                )
                try:
                    await conn.execute(
                        sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role))
                    )
                except pgerrors.DependentObjectsStillExist as e:
                    detail = (e.diag.message_detail or "").replace("\n", "; ")
                    raise Refused(
                        f"role {role!r} still owns objects or holds privileges in other "
                        f"databases of {admin.server} ({detail}): run REASSIGN OWNED BY / "
                        f"DROP OWNED BY {role} in each of them, then retry"
                    ) from e
                except psycopg.Error as e:
                    raise query_error(
                        e,
                        admin,
                        doing=f"drop role {role!r}",
                        hint="grant it CREATEROLE or use a superuser",
                    ) from e
        return DroppedDatabase(
            database=database, role=role, dropped_database=db_exists, dropped_role=role_exists
        )

    # -- steps -------------------------------------------------------------------------------

    async def _ensure_role(
        self, conn: Connection, admin: AdminConnection, role: str, password: str
    ) -> bool:
        created = False
        attributes = await self._role_attributes(conn, admin, role)
        if attributes is None:
            statement = sql.SQL(
                "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                "NOBYPASSRLS INHERIT PASSWORD {}"
            ).format(sql.Identifier(role), sql.Literal(self._verifier(conn, admin, role, password)))
            with _mapped(admin, f"create role {role!r}", "grant it CREATEROLE or use a superuser"):
                try:
                    await conn.execute(statement)
                    created = True
                except (pgerrors.DuplicateObject, pgerrors.UniqueViolation):
                    # Made concurrently (another replica): the same outcome. A race on the
                    # catalog's unique index shows as UniqueViolation, not DuplicateObject.
                    pass
            attributes = await self._role_attributes(conn, admin, role)
            if attributes is None:
                raise ProvisioningError(f"role {role!r} vanished right after creation; retrying")
        superuser, replication, bypassrls, createdb, createrole, canlogin, config = attributes
        privileged = [
            name
            for name, has in (
                ("SUPERUSER", superuser),
                ("REPLICATION", replication),
                ("BYPASSRLS", bypassrls),
            )
            if has
        ]
        if privileged:
            raise Refused(
                f"role {role!r} already exists on {admin.server} with "
                f"{', '.join(privileged)}, which an app must not have: drop it, or set "
                "database.name to another name"
            )
        if createdb or createrole or not canlogin:
            await self._execute(
                conn,
                admin,
                sql.SQL("ALTER ROLE {} WITH LOGIN NOCREATEDB NOCREATEROLE").format(
                    sql.Identifier(role)
                ),
                doing=f"take CREATEDB and CREATEROLE from role {role!r}",
                hint="grant it CREATEROLE or use a superuser",
            )
        if f"search_path={SCHEMA}" not in (config or []):
            await self._execute(
                conn,
                admin,
                sql.SQL("ALTER ROLE {} SET search_path TO {}").format(
                    sql.Identifier(role), sql.Identifier(SCHEMA)
                ),
                doing=f"set the search_path of role {role!r}",
                hint="grant it CREATEROLE or use a superuser",
            )
        return created

    async def _ensure_database(
        self, conn: Connection, admin: AdminConnection, database: str
    ) -> tuple[bool, str]:
        """Create the database unless it exists; (created, owner)."""
        created = False
        query = sql.SQL(
            "SELECT pg_get_userbyid(datdba), pg_has_role(current_user, datdba, 'USAGE') "
            "FROM pg_database WHERE datname = %s"
        )
        row = await self._fetchone(conn, admin, query, (database,), doing="look up databases")
        if row is None:
            # template0: never in use (template1 may be, which fails CREATE DATABASE), and
            # the only template that allows choosing the encoding.
            statement = sql.SQL("CREATE DATABASE {} WITH TEMPLATE template0 ENCODING 'UTF8'")
            with _mapped(
                admin, f"create database {database!r}", "grant it CREATEDB or use a superuser"
            ):
                try:
                    await conn.execute(statement.format(sql.Identifier(database)))
                    created = True
                except (pgerrors.DuplicateDatabase, pgerrors.UniqueViolation):
                    pass  # made concurrently: the same outcome
            row = await self._fetchone(conn, admin, query, (database,), doing="look up databases")
            if row is None:
                raise ProvisioningError(f"database {database!r} vanished right after creation")
        owner, manageable = row
        if not manageable:
            raise Refused(
                f"database {database!r} already exists on {admin.server} and is owned by "
                f"{owner!r}, which {admin.admin} cannot manage: set database.name to a new "
                f"name, or make the admin a member of {owner!r}"
            )
        return created, str(owner)

    async def _database_privileges(
        self, conn: Connection, admin: AdminConnection, database: str, role: str
    ) -> None:
        db, app = sql.Identifier(database), sql.Identifier(role)
        await self._execute(
            conn,
            admin,
            sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db),
            doing=f"revoke PUBLIC's privileges on database {database!r}",
            hint="the admin must own the database",
        )
        await self._execute(
            conn,
            admin,
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, app),
            doing=f"grant CONNECT on database {database!r} to role {role!r}",
            hint="the admin must own the database",
        )

    async def _ensure_schema(
        self, db: Connection, admin: AdminConnection, database: str, role: str
    ) -> None:
        row = await self._fetchone(
            db,
            admin,
            sql.SQL("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s"),
            (SCHEMA,),
            doing=f"look up schema {SCHEMA} in database {database!r}",
        )
        schema, app = sql.Identifier(SCHEMA), sql.Identifier(role)
        if row is None:
            statement = sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}")
            await self._execute(
                db,
                admin,
                statement.format(schema, app),
                doing=f"create schema {SCHEMA} owned by {role!r} in database {database!r}",
                hint="the admin must own the database and be able to SET ROLE to the app's role",
            )
        elif row[0] != role:
            await self._execute(
                db,
                admin,
                sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, app),
                doing=f"hand schema {SCHEMA} in database {database!r} to role {role!r}",
                hint=f"the admin must own the schema (now {row[0]!r}) or be a superuser",
            )
        public = await self._fetchone(
            db,
            admin,
            sql.SQL("SELECT 1 FROM pg_namespace WHERE nspname = 'public'"),
            doing=f"look up schema public in database {database!r}",
        )
        if public is not None:
            await self._execute(
                db,
                admin,
                sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
                doing=f"revoke CREATE on schema public in database {database!r}",
                hint="the admin must own the database",
            )

    async def _borrow_role(
        self, conn: Connection, admin: AdminConnection, me: ServerInfo, role: str
    ) -> bool:
        """Make the admin a member of ``role`` unless it has its powers; True if granted."""
        if me.superuser:
            return False
        # PostgreSQL 16 split membership into ADMIN, INHERIT and SET options; CREATE SCHEMA
        # AUTHORIZATION needs SET there, the rest needs the role's privileges (USAGE).
        if me.version_num >= 160000:
            query = sql.SQL(
                "SELECT pg_has_role(current_user, %s, 'USAGE') "
                "AND pg_has_role(current_user, %s, 'SET')"
            )
            params: tuple[str, ...] = (role, role)
        else:
            query = sql.SQL("SELECT pg_has_role(current_user, %s, 'USAGE')")
            params = (role,)
        row = await self._fetchone(
            conn, admin, query, params, doing=f"check its membership in role {role!r}"
        )
        if row is not None and row[0]:
            return False
        await self._execute(
            conn,
            admin,
            sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)),
            doing=f"become a member of role {role!r}",
            hint="grant it CREATEROLE (or ADMIN OPTION on the role) or use a superuser",
        )
        return True

    # -- plumbing ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connect(
        self, admin: AdminConnection, dbname: str | None = None
    ) -> AsyncIterator[Connection]:
        target = dbname or admin.dbname
        try:
            conn = await psycopg.AsyncConnection.connect(
                host=admin.host,
                port=admin.port,
                user=admin.user,
                password=admin.password,
                dbname=target,
                sslmode=admin.sslmode,
                connect_timeout=self.connect_timeout,
                application_name=APPLICATION_NAME,
                autocommit=True,
            )
        except psycopg.Error as e:
            raise connection_error(e, admin, target) from e
        async with conn:
            # Through SET, not the startup packet: connection poolers reject unknown options.
            await self._execute(
                conn,
                admin,
                sql.SQL(
                    "SELECT set_config('statement_timeout', %s, false), "
                    "set_config('lock_timeout', %s, false)"
                ),
                (str(self.statement_timeout_ms), str(self.lock_timeout_ms)),
                doing="set timeouts",
                hint="report this as a bug",
            )
            yield conn

    async def _server_info(self, conn: Connection, admin: AdminConnection) -> ServerInfo:
        row = await self._fetchone(
            conn,
            admin,
            sql.SQL(
                "SELECT current_setting('server_version'), "
                "current_setting('server_version_num')::int, current_user, "
                "rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
            ),
            doing="read the server version and its own attributes",
        )
        if row is None:
            raise ProvisioningError(f"{admin.admin} is not in pg_roles", transient=False)
        version, version_num, user, superuser, createdb, createrole = row
        return ServerInfo(
            version=str(version),
            version_num=int(version_num),
            user=str(user),
            superuser=bool(superuser),
            createdb=bool(createdb),
            createrole=bool(createrole),
        )

    async def _role_attributes(
        self, conn: Connection, admin: AdminConnection, role: str
    ) -> TupleRow | None:
        return await self._fetchone(
            conn,
            admin,
            sql.SQL(
                "SELECT rolsuper, rolreplication, rolbypassrls, rolcreatedb, rolcreaterole, "
                "rolcanlogin, rolconfig FROM pg_roles WHERE rolname = %s"
            ),
            (role,),
            doing=f"look up role {role!r}",
        )

    @staticmethod
    def _verifier(conn: Connection, admin: AdminConnection, role: str, password: str) -> str:
        """The SCRAM verifier of ``password`` (computed here: no round trip, no plain text)."""
        try:
            return conn.pgconn.encrypt_password(
                password.encode(), role.encode(), PASSWORD_ALGORITHM
            ).decode()
        except psycopg.Error as e:
            raise ProvisioningError(
                f"could not hash the password of role {role!r} for {admin.server} ({e})",
                transient=False,
            ) from e

    @staticmethod
    async def _execute(
        conn: Connection,
        admin: AdminConnection,
        statement: sql.SQL | sql.Composed,
        params: tuple[Any, ...] | None = None,
        *,
        doing: str,
        hint: str,
    ) -> None:
        with _mapped(admin, doing, hint):
            await conn.execute(statement, params)

    @staticmethod
    async def _fetchone(
        conn: Connection,
        admin: AdminConnection,
        query: sql.SQL | sql.Composed,
        params: tuple[Any, ...] | None = None,
        *,
        doing: str,
    ) -> TupleRow | None:
        with _mapped(admin, doing, "check the server's log"):
            cursor = await conn.execute(query, params)
            return await cursor.fetchone()
