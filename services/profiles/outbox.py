"""The outbox relay: publishes committed profile events to a Redis Stream, at least once.

Changes write their event to ``profile_outbox`` in their own transaction (:mod:`.store`);
this relay moves pending rows to the stream ``<REDIS_PREFIX>:profiles:events``:

1. in one transaction, take the relay lock (``pg_try_advisory_xact_lock``: one replica
   publishes at a time, so events leave in commit order — the others skip the round), claim up
   to a batch of pending rows in ``seq`` order with ``FOR UPDATE SKIP LOCKED`` (never waiting on
   a row an erasure is deleting);
2. ``XADD`` them (one pipeline, ``MAXLEN ~`` bounding the stream);
3. mark them published with their stream ids, and commit.

A crash (or a lost connection) between 2 and 3 rolls the marks back: the rows are published
again by the next round, with the same event ids, so nothing is lost and consumers dedupe on
``id``. Per subject, events are in the order their changes committed: each change locks the
profile's row, so a later change gets a later ``seq``.

The relay runs as a task of each replica (started by the service's startup hook); it is woken
right after a request commits an event (:meth:`OutboxRelay.wake`) and otherwise polls every
``PROFILES_RELAY_POLL_SECONDS`` (events committed by a replica that died before publishing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import text

from mobileplane.services.kit.db import Database
from mobileplane.services.kit.redis import KeySpace
from mobileplane.services.profiles import store
from mobileplane.services.profiles.events import ProfileEvent

log = logging.getLogger("mobileplane.profiles.outbox")

#: Advisory lock held by the replica publishing a batch (other ids: sync 727_100).
RELAY_LOCK = 727_200
#: The stream's key parts under the deployment's prefix: ``<prefix>:profiles:events``.
STREAM = ("profiles", "events")

#: How long shutdown waits for a round in progress (a batch is a few ms; a hung Redis is not).
STOP_TIMEOUT = 10.0

Publish = Callable[[Sequence[ProfileEvent]], Awaitable[list[str]]]
Clock = Callable[[], datetime]


def stream_key(keyspace: KeySpace) -> str:
    return keyspace.key(*STREAM)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StreamPublisher:
    """Appends events to the Redis Stream; returns their entry ids in order."""

    def __init__(self, redis: Redis, key: str, *, maxlen: int) -> None:
        self.redis = redis
        self.key = key
        self.maxlen = maxlen

    async def __call__(self, events: Sequence[ProfileEvent]) -> list[str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(
                    self.key,
                    event.stream_fields(),  # type: ignore[arg-type]  # str fields are accepted
                    maxlen=self.maxlen,
                    approximate=True,
                )
            ids = await pipe.execute()
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]


async def relay_once(
    database: Database, publish: Publish, *, batch: int, clock: Clock = _utcnow
) -> int:
    """Publish one batch of pending events; how many were published (0: none or not our turn)."""
    async with database.transaction() as session:
        ours = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RELAY_LOCK}
        )
        if not ours:
            return 0
        pending = await store.claim_pending(session, batch)
        if not pending:
            return 0
        stream_ids = await publish([event for _, event in pending])
        if len(stream_ids) != len(pending):
            raise RuntimeError("the stream returned a different number of entry ids")
        await store.mark_published(
            session, zip((seq for seq, _ in pending), stream_ids, strict=True), clock()
        )
    return len(pending)


async def purge_once(database: Database, retention: timedelta, *, clock: Clock = _utcnow) -> int:
    """Delete events published more than ``retention`` ago; how many."""
    async with database.transaction() as session:
        return await store.purge_published(session, clock() - retention)


class OutboxRelay:
    """The background task of one replica: publish after each wake-up or poll interval."""

    def __init__(
        self,
        database: Database,
        publish: Publish,
        *,
        batch: int,
        poll_seconds: float,
        retention: timedelta,
    ) -> None:
        self.database = database
        self.publish = publish
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.retention = retention
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.published = 0  # events this replica published (for tests and metrics)

    def wake(self) -> None:
        """Publish now: called after a transaction that wrote an event commits."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="profiles-outbox-relay")

    async def stop(self) -> None:
        """Let the round in progress finish (a batch is never abandoned mid-transaction),
        then end; cancel only if it does not finish within :data:`STOP_TIMEOUT` seconds."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=STOP_TIMEOUT)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        next_purge = _utcnow()
        while not self._stopping:
            self._wake.clear()
            try:
                published = await relay_once(self.database, self.publish, batch=self.batch)
                self.published += published
                if _utcnow() >= next_purge:
                    await purge_once(self.database, self.retention)
                    next_purge = _utcnow() + timedelta(hours=1)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis or Postgres down: the rows stay pending; try again at the next poll.
                log.exception("publishing profile events failed; retrying at the next poll")
                published = 0
            if published >= self.batch or self._stopping:
                continue  # more may be waiting (or the loop ends)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
