"""One transaction per request on a real PostgreSQL: committed when the endpoint returns
(before the response is sent), rolled back when it raises."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mobileplane.services.kit.app import create_app
from mobileplane.services.kit.db import Database, DbSession
from mobileplane.services.kit.errors import Conflict, Unavailable
from mobileplane.services.kit.settings import KitSettings

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "kit_itest_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(200))


# Deferred, so a duplicate passes the INSERT and fails only at COMMIT.
CREATE_TABLE = """
CREATE TABLE kit_itest_notes (
    id serial PRIMARY KEY,
    body varchar(200) NOT NULL,
    CONSTRAINT body_unique UNIQUE (body) DEFERRABLE INITIALLY DEFERRED
)
"""


class NoteIn(BaseModel):
    body: str


class NoteOut(BaseModel):
    id: int
    body: str


def notes_router() -> APIRouter:
    router = APIRouter(prefix="/notes")

    @router.post("", status_code=201)
    async def create(note: NoteIn, session: DbSession) -> NoteOut:
        row = Note(body=note.body)
        session.add(row)
        await session.flush()
        return NoteOut(id=row.id, body=row.body)  # read after flush; commit comes after

    @router.post("/then-conflict")
    async def create_then_conflict(note: NoteIn, session: DbSession) -> None:
        session.add(Note(body=note.body))
        await session.flush()
        raise Conflict("changed my mind")

    @router.post("/then-crash")
    async def create_then_crash(note: NoteIn, session: DbSession) -> None:
        session.add(Note(body=note.body))
        await session.flush()
        raise RuntimeError("bug after the write")

    @router.get("")
    async def list_notes(session: DbSession) -> list[str]:
        return list((await session.scalars(select(Note.body).order_by(Note.id))).all())

    return router


def committed_bodies(database_url: str) -> list[str]:
    """What another connection sees: only committed rows."""
    plain = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as connection:
        rows = connection.execute("SELECT body FROM kit_itest_notes ORDER BY id").fetchall()
    return [row[0] for row in rows]


@pytest.fixture
async def app(database_url: str, redis_url: str) -> AsyncIterator[FastAPI]:
    settings = KitSettings(database_url=database_url, redis_url=redis_url, log_format="text")
    app = create_app(name="itest", routers=[notes_router()], settings=settings, use_redis=False)
    async with app.router.lifespan_context(app):
        async with app.state.database.engine.begin() as connection:
            await connection.execute(text(CREATE_TABLE))
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://itest") as client:
        yield client


async def test_write_is_committed_when_the_response_arrives(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post("/notes", json={"body": "first"})
    assert response.status_code == 201
    assert response.json()["body"] == "first"
    assert committed_bodies(database_url) == ["first"]  # no wait: committed before the response


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        pytest.param("/notes/then-conflict", 409, "conflict", id="service-error"),
        pytest.param("/notes/then-crash", 500, "internal_error", id="unexpected-error"),
    ],
)
async def test_write_is_rolled_back_when_the_endpoint_raises(
    client: httpx.AsyncClient, database_url: str, path: str, status: int, code: str
) -> None:
    response = await client.post(path, json={"body": "never"})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert committed_bodies(database_url) == []


async def test_a_value_the_database_refuses_is_a_422_and_nothing_is_stored(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post("/notes", json={"body": "nul \u0000 byte"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert "NUL" in error["message"]
    assert committed_bodies(database_url) == []


async def test_failed_commit_is_an_error_response_not_a_success(
    client: httpx.AsyncClient, database_url: str
) -> None:
    assert (await client.post("/notes", json={"body": "dup"})).status_code == 201
    second = await client.post("/notes", json={"body": "dup"})  # fails at COMMIT (deferred)
    assert second.status_code == 500
    assert second.json()["error"]["code"] == "internal_error"
    assert committed_bodies(database_url) == ["dup"]


async def test_each_request_has_its_own_session(client: httpx.AsyncClient) -> None:
    for body in ("a", "b", "c"):
        assert (await client.post("/notes", json={"body": body})).status_code == 201
    assert (await client.get("/notes")).json() == ["a", "b", "c"]


async def test_transaction_outside_requests(app: FastAPI, database_url: str) -> None:
    database: Database = app.state.database
    async with database.transaction() as session:
        session.add(Note(body="from a task"))
    with pytest.raises(Conflict):
        async with database.transaction() as session:
            session.add(Note(body="rolled back"))
            await session.flush()
            raise Conflict("abort")
    assert committed_bodies(database_url) == ["from a task"]


async def test_unreachable_database_is_unavailable(unused_tcp_port: int) -> None:
    database = Database.from_url(
        f"postgresql://u:not-a-placeholder@127.0.0.1:{unused_tcp_port}/d", connect_timeout=2
    )
    try:
        with pytest.raises(Unavailable) as raised:
            async with database.transaction() as session:
                await session.execute(text("SELECT 1"))
        assert raised.value.status_code == 503
    finally:
        await database.dispose()
