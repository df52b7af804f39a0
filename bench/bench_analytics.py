"""What ingestion costs: Segment batches accepted *and stored* (the 200 is sent after the
commit) against inserting the same rows raw.

Each batch holds 100 messages as a mobile SDK flushes them (track calls with properties and
context, one identify). Candidate: N batches POSTed to the analytics service under uvicorn (in
a process of its own, as a pod runs it) by 4 concurrent clients, with Basic auth (write-key
lookup, validation, timestamp correction, IP anonymisation, dedupe, profile upserts, one
transaction per batch). Reference: the same event rows written with psycopg by 4
connections, one multi-row INSERT per batch, into a plain table of the same shape in the same
database. Rounds alternate; the result is the median per-round ratio.

Needs the local stack; run with ``.venv/bin/python bench/bench_analytics.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import uvicorn
from harness import summarize
from psycopg import sql

from mobileplane.services.analytics.service import SERVICE
from mobileplane.services.kit.migrate import upgrade
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.platform import platform_migrations
from mobileplane.stack import manager

KEY = "benchWriteKey0000000000000000001"
CONCURRENCY = 4
PER_BATCH = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(database_url: str, redis_url: str, port: int) -> None:
    settings = KitSettings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        log_level="WARNING",
    )
    app = create_service_app(SERVICE, settings=settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve(database_url: str, redis_url: str) -> tuple[str, multiprocessing.Process]:
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(database_url, redis_url, port), daemon=True
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return base, process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not process.is_alive():
            raise RuntimeError("the analytics service did not start")
        time.sleep(0.1)


def batches(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    out = []
    for b in range(n):
        user = f"usr_{b % 40}"
        messages: list[dict[str, Any]] = [
            {
                "type": "identify",
                "userId": user,
                "anonymousId": f"dev-{b % 40}",
                "traits": {"plan": "pro", "batch": b},
                "messageId": uuid.uuid4().hex,
                "timestamp": now,
            }
        ]
        messages += [
            {
                "type": "track",
                "event": f"Event {i % 12}",
                "userId": user,
                "messageId": uuid.uuid4().hex,
                "timestamp": now,
                "properties": {"i": i, "price": 9.99, "sku": f"sku-{i}"},
                "context": {
                    "app": {"name": "shop", "version": "1.2.0"},
                    "os": {"name": "iOS", "version": "18.1"},
                    "ip": "203.0.113.7",
                },
            }
            for i in range(PER_BATCH - 1)
        ]
        out.append({"batch": messages, "sentAt": now})
    return out


async def candidate(url: str, work: list[dict[str, Any]]) -> float:
    bodies = [json.dumps(b).encode() for b in work]
    auth = base64.b64encode(f"{KEY}:".encode()).decode()
    headers = {"authorization": f"Basic {auth}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker(part: list[bytes]) -> None:
            for body in part:
                r = await client.post("/analytics/v1/batch", content=body, headers=headers)
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker(bodies[k::CONCURRENCY]) for k in range(CONCURRENCY)))
        return time.perf_counter() - start


async def reference(database_url: str, work: list[dict[str, Any]]) -> float:
    conns = [await psycopg.AsyncConnection.connect(database_url) for _ in range(CONCURRENCY)]
    try:

        async def worker(conn: psycopg.AsyncConnection[Any], part: list[dict[str, Any]]) -> None:
            for body in part:
                rows = [
                    (
                        m["messageId"],
                        m["type"],
                        m.get("event"),
                        m.get("userId"),
                        m["timestamp"],
                        json.dumps(m),
                    )
                    for m in body["batch"]
                ]
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.executemany(
                        "INSERT INTO raw_events (message_id, type, event, user_id, ts, payload) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        rows,
                    )

        start = time.perf_counter()
        await asyncio.gather(*(worker(conns[k], work[k::CONCURRENCY]) for k in range(CONCURRENCY)))
        return time.perf_counter() - start
    finally:
        for conn in conns:
            await conn.close()


async def run(url: str, database_url: str, n: int, rounds: int) -> None:
    await candidate(url, batches(8))  # warm up
    await reference(database_url, batches(8))
    cand: list[float] = []
    ref: list[float] = []
    for r in range(rounds):
        work = batches(n)
        order = [("c", cand), ("r", ref)]
        for kind, sink in order if r % 2 else reversed(order):
            if kind == "c":
                sink.append(await candidate(url, work))
            else:
                sink.append(await reference(database_url, work))
    result = summarize(f"analytics: {n} batches of {PER_BATCH} messages", ref, cand)
    print(result.line())
    print(
        f"  ingest: {n * PER_BATCH / result.candidate_median_s:,.0f} messages/s accepted and "
        f"stored; raw inserts: {n * PER_BATCH / result.reference_median_s:,.0f} messages/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = manager.env()
    admin = env["DATABASE_URL"]
    name = f"bench_analytics_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    os.environ["ANALYTICS_SOURCES"] = json.dumps([{"slug": "bench", "write_keys": [KEY]}])
    process = None
    try:
        for ms in platform_migrations():
            upgrade(ms, url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE raw_events (message_id text PRIMARY KEY, type text, event text, "
                "user_id text, ts timestamptz, payload jsonb)"
            )
        base, process = serve(url, env["REDIS_URL"])
        asyncio.run(run(base, url, args.batches, args.rounds))
    finally:
        if process is not None:
            process.terminate()
            process.join(10)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
