"""What the content cache buys: a feed GET served from Redis against the same GET loading
from Postgres each time (cache invalidated before every request), in process over ASGI.

Run with ``.venv/bin/python bench/bench_content.py`` (needs the local stack).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from harness import summarize
from psycopg import sql

from mobileplane.services.content.service import SERVICE
from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.migrate import upgrade
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.platform import platform_migrations
from mobileplane.stack import manager

ITEMS = 300
REQUESTS = 200


async def run(url: str, redis_url: str, rounds: int) -> None:
    settings = KitSettings(
        database_url=url.replace("postgresql://", "postgresql+psycopg://"),
        redis_url=redis_url,
        redis_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        log_level="WARNING",
    )
    app = create_service_app(SERVICE, settings=settings)
    async with app.router.lifespan_context(app):
        editor = identity_headers(Identity("ed", frozenset({"content", "content:write"})))
        reader = identity_headers(Identity("alice", frozenset({"content"})))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            for i in range(ITEMS):
                r = await client.post(
                    "/content/items",
                    headers=editor,
                    json={
                        "slug": f"item-{i}",
                        "kind": "article",
                        "title": f"Item {i}",
                        "body": {"text": "x" * 500},
                        "tags": [f"t{i % 7}"],
                        "published_at": past,
                        "priority": i % 3,
                    },
                )
                r.raise_for_status()
            cache = app.state.content.cache

            async def requests(invalidate: bool) -> float:
                start = time.perf_counter()
                for _ in range(REQUESTS):
                    if invalidate:
                        await cache.invalidate()
                    r = await client.get(
                        "/content/feed", headers=reader, params={"interests": "t1"}
                    )
                    r.raise_for_status()
                return time.perf_counter() - start

            await requests(False)
            cached, uncached = [], []
            for n in range(rounds):
                order = [(True, uncached), (False, cached)]
                for invalidate, sink in order if n % 2 else reversed(order):
                    sink.append(await requests(invalidate))
            result = summarize(
                f"content feed GET ({ITEMS} items) cached / uncached", uncached, cached
            )
            print(result.line())
            print(
                f"  cached: {REQUESTS / result.candidate_median_s:,.0f} req/s; "
                f"uncached: {REQUESTS / result.reference_median_s:,.0f} req/s"
            )


def main() -> None:
    env = manager.env()
    admin = env["DATABASE_URL"]
    name = f"bench_content_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    os.environ.pop("CONTENT_MEDIA_BUCKET", None)
    try:
        for ms in platform_migrations():
            upgrade(ms, url)
        asyncio.run(run(url, env["REDIS_URL"], rounds=5))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
