"""Profile events: outbox to Redis Stream, in order, at least once, across replicas and crashes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio
from fastapi import FastAPI
from sqlalchemy import func, select

from mobileplane.services.kit.db import Database
from mobileplane.services.kit.redis import KeySpace
from mobileplane.services.profiles import models as m
from mobileplane.services.profiles import store
from mobileplane.services.profiles.events import CREATED, UPDATED, ProfileEvent, new_event
from mobileplane.services.profiles.outbox import (
    StreamPublisher,
    purge_once,
    relay_once,
    stream_key,
)

pytestmark = pytest.mark.integration

Client = Callable[..., httpx.AsyncClient]
MERGE = {"Content-Type": "application/merge-patch+json"}
GROUP = "notifications"


async def read_group(
    client: redis.asyncio.Redis, key: str, want: int, *, rounds: int = 30
) -> list[ProfileEvent]:
    """Read ``want`` entries as one consumer of ``GROUP`` (blocking reads, bounded rounds)."""
    got: list[ProfileEvent] = []
    for _ in range(rounds):
        if len(got) >= want:
            break
        reply = await client.xreadgroup(GROUP, "c1", {key: ">"}, count=100, block=1000)
        for _stream, entries in reply:
            for entry_id, fields in entries:
                got.append(ProfileEvent.from_stream_fields(fields))
                await client.xack(key, GROUP, entry_id)
    return got


async def test_a_consumer_group_reads_created_updated_deleted_in_order(
    as_user: Client, profiles_app: FastAPI, redis_client: redis.asyncio.Redis
) -> None:
    key = stream_key(profiles_app.state.keyspace)
    await redis_client.xgroup_create(key, GROUP, id="0", mkstream=True)
    rae = as_user("rae")
    etag = (await rae.get("/profiles/me")).headers["etag"]
    patched = await rae.patch(
        "/profiles/me", json={"locale": "fr"}, headers={**MERGE, "If-Match": etag}
    )
    assert patched.status_code == 200
    assert (await rae.delete("/profiles/me")).status_code == 200

    # The relay polls once an hour in these tests: only the wake-up after commit publishes.
    events = await read_group(redis_client, key, 3)
    assert [(e.type, e.subject) for e in events] == [
        ("profile.created", "rae"),
        ("profile.updated", "rae"),
        ("profile.deleted", "rae"),
    ]
    assert dict(events[1].data) == {"changed": ["locale"], "version": 2}
    assert len({e.id for e in events}) == 3
    # Events are notifications: no profile content travels on the stream.
    assert all("fr" not in str(e.data) for e in events)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database.from_url(database_url)
    yield db
    await db.dispose()


async def write_events(database: Database, subject: str, kinds: Sequence[str]) -> list[str]:
    ids = []
    async with database.transaction() as session:
        for kind in kinds:
            event = new_event(CREATED if kind == "c" else UPDATED, subject, datetime.now(UTC))
            await store.add_event(session, event)
            ids.append(event.id)
    return ids


async def pending(database: Database) -> int:
    async with database.transaction() as session:
        query = select(func.count()).where(m.outbox.c.published_at.is_(None))
        return int(await session.scalar(query) or 0)


class CrashAfterPublishing:
    """Publishes for real, then dies before the relay can mark the rows published."""

    def __init__(self, publish: StreamPublisher) -> None:
        self.publish = publish

    async def __call__(self, events: Sequence[ProfileEvent]) -> list[str]:
        await self.publish(events)
        raise ConnectionResetError("the relay's process died after XADD")


async def test_a_crash_between_publishing_and_marking_loses_nothing(
    database: Database, redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    key = stream_key(KeySpace(redis_prefix))
    publish = StreamPublisher(redis_client, key, maxlen=1000)
    ids = await write_events(database, "sam", ["c", "u", "u"])

    with pytest.raises(ConnectionResetError):
        await relay_once(database, CrashAfterPublishing(publish), batch=10)
    assert await pending(database) == 3  # the marks were rolled back with the transaction
    assert await redis_client.xlen(key) == 3

    assert await relay_once(database, publish, batch=10) == 3
    assert await pending(database) == 0
    entries = await redis_client.xrange(key)
    delivered = [ProfileEvent.from_stream_fields(fields).id for _, fields in entries]
    assert delivered == ids + ids  # at least once: the same ids again, in the same order
    assert list(dict.fromkeys(delivered)) == ids  # a consumer deduplicating on id sees each once
    assert await relay_once(database, publish, batch=10) == 0


async def test_replicas_publish_each_event_once_and_in_order(
    database_url: str, redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    replicas = [Database.from_url(database_url) for _ in range(3)]
    try:
        key = stream_key(KeySpace(redis_prefix))
        publish = StreamPublisher(redis_client, key, maxlen=1000)
        ids = []
        for n in range(5):
            ids += await write_events(replicas[0], f"user-{n}", ["c", "u"])

        async def drain(db: Database) -> int:
            total = 0
            while await pending(db):
                total += await relay_once(db, publish, batch=3)
                await asyncio.sleep(0)
            return total

        counts = await asyncio.gather(*(drain(db) for db in replicas))
        assert sum(counts) == len(ids)
        entries = await redis_client.xrange(key)
        assert [ProfileEvent.from_stream_fields(f).id for _, f in entries] == ids
    finally:
        for db in replicas:
            await db.dispose()


async def test_published_events_are_purged_after_the_retention(
    database: Database, redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    publish = StreamPublisher(redis_client, stream_key(KeySpace(redis_prefix)), maxlen=1000)
    await write_events(database, "tia", ["c"])
    assert await purge_once(database, timedelta(hours=1)) == 0  # not published: kept
    await relay_once(database, publish, batch=10)
    assert await purge_once(database, timedelta(hours=1)) == 0  # too recent
    later = datetime.now(UTC) + timedelta(hours=2)
    assert await purge_once(database, timedelta(hours=1), clock=lambda: later) == 1


async def test_an_erasure_drops_published_events_and_lets_pending_ones_through(
    database: Database, redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    key = stream_key(KeySpace(redis_prefix))
    publish = StreamPublisher(redis_client, key, maxlen=1000)
    published = await write_events(database, "uma", ["c"])
    await relay_once(database, publish, batch=10)
    in_flight = await write_events(database, "uma", ["u"])

    async with database.transaction() as session:
        assert await store.ProfilesSubjectData().erase(session, "uma") == 1  # the published one
    assert await pending(database) == 1
    await relay_once(database, publish, batch=10)
    delivered = [ProfileEvent.from_stream_fields(f).id for _, f in await redis_client.xrange(key)]
    assert delivered == published + in_flight
