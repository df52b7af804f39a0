"""PostgreSQL access for the services: one async engine per process, one transaction per request.

The kit owns the engine (SQLAlchemy 2, psycopg 3 async driver) and the rule that services
never commit: a request gets one :class:`AsyncSession` inside one transaction through the
:data:`DbSession` dependency; the transaction commits when the endpoint returns — before the
response is sent, so a failed commit is an error response and a client that got a 2xx reads
its own writes — and rolls back if the endpoint raises. Work outside a request (a background
task, a CLI) uses :meth:`Database.transaction` for the same boundary.

``expire_on_commit=False`` keeps loaded attributes usable after the commit (the response is
serialised after it); relationships should be declared ``lazy="raise"`` so no lazy load
happens behind an ``await``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mobileplane.services.kit.errors import Unavailable, ValidationFailed
from mobileplane.services.kit.settings import normalize_database_url

# Errors that mean "the database cannot serve now" rather than "this request is wrong":
# connection refused or lost, pool exhausted, deadlock or serialization failure.
_UNAVAILABLE_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def create_engine(
    url: str,
    *,
    application_name: str | None = None,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 10.0,
    connect_timeout: int = 5,
    echo: bool = False,
) -> AsyncEngine:
    """An async engine for ``url`` (any accepted PostgreSQL URL form; normalised here)."""
    connect_args: dict[str, Any] = {"connect_timeout": connect_timeout}
    if application_name:
        # Shows in pg_stat_activity, so a DBA sees which service holds a connection.
        connect_args["application_name"] = application_name
    return create_async_engine(
        normalize_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,  # a pooled connection killed by a DB restart is replaced, not used
        echo=echo,
        connect_args=connect_args,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


class Database:
    """The engine and session factory of one process; opened at startup, disposed at shutdown."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = create_session_factory(engine)

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> Database:
        return cls(create_engine(url, **engine_options))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on normal exit, rolled back on error."""
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except _UNAVAILABLE_ERRORS as e:
            raise Unavailable("The database is unavailable", retry_after=1) from e
        except sa_exc.DataError as e:
            # The database refused a value the request carried (a NUL byte in text, a number
            # out of range, text where a UUID goes): the client's input, not our failure.
            reason = str(getattr(e, "orig", e)).splitlines()[0][:200]
            raise ValidationFailed(f"A value cannot be stored: {reason}") from e

    async def ping(self) -> None:
        """``SELECT 1``; raises if the database cannot be reached (used by readiness)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def get_database(request: Request) -> Database:
    database = getattr(request.app.state, "database", None)
    if not isinstance(database, Database):
        raise RuntimeError("no Database on app.state: create the app with kit.app.create_app")
    return database


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: the request's session, committed when the endpoint returns."""
    async with get_database(request).transaction() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(db_session, scope="function")]
"""Declare ``session: DbSession`` in an endpoint. ``scope="function"`` makes the commit happen
when the endpoint returns, before the response is sent (the default scope would commit after)."""
