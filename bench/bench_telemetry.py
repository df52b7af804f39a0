"""What ingestion costs: Sentry envelopes accepted *and stored* (the 200 is sent after the
commit, so accepted = drained to storage) against inserting the same rows raw.

Each envelope holds one error event and two updates of one session, as a mobile SDK sends at
a crash. Candidate: N envelopes POSTed to the telemetry service under uvicorn (in a process of
its own, as a pod runs it) by 8 concurrent clients (auth, parsing, grouping, issue counters,
session merge, one transaction each).
Reference: the same rows — an event row, an issue upsert and a session row per envelope —
written with psycopg by 8 connections, one transaction per envelope, into plain tables of the
same shape in the same database. Rounds alternate; the result is the median per-round ratio.

Needs the local stack; run with ``.venv/bin/python bench/bench_telemetry.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import time
import uuid
from datetime import UTC, datetime

import httpx
import psycopg
import uvicorn
from harness import summarize
from psycopg import sql

from mobileplane.services.kit.migrate import upgrade
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.platform import platform_migrations
from mobileplane.services.telemetry.service import SERVICE
from mobileplane.stack import manager

KEY = "be" * 16
CONCURRENCY = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(database_url: str, redis_url: str, port: int) -> None:
    """The service alone in a child process, as a pod runs it (the client's CPU is not its)."""
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
            raise RuntimeError("the telemetry service did not start")
        time.sleep(0.1)


def rows(n: int, round_no: int) -> list[dict[str, object]]:
    now = datetime.now(UTC).isoformat()
    out = []
    for i in range(n):
        sid = str(uuid.uuid4())
        event = {
            "event_id": uuid.uuid4().hex,
            "timestamp": now,
            "level": "fatal",
            "release": "bench@1.0.0",
            "user": {"id": f"u{i % 50}"},
            "exception": {
                "values": [
                    {
                        "type": f"Crash{i % 20}",
                        "value": "boom",
                        "mechanism": {"handled": False},
                        "stacktrace": {
                            "frames": [
                                {"module": f"app.m{j}", "function": "f", "in_app": True}
                                for j in range(8)
                            ]
                        },
                    }
                ]
            },
        }
        session = {
            "sid": sid,
            "did": f"u{i % 50}",
            "started": now,
            "timestamp": now,
            "attrs": {"release": "bench@1.0.0"},
        }
        out.append({"event": event, "session": session, "round": round_no, "i": i})
    return out


def envelope(row: dict[str, object]) -> bytes:
    event = json.dumps(row["event"]).encode()
    session = dict(row["session"])  # type: ignore[call-overload]
    first = json.dumps({**session, "init": True, "seq": 0, "status": "ok"}).encode()
    last = json.dumps({**session, "seq": 1, "status": "crashed", "errors": 1}).encode()
    parts = [b"{}"]
    for kind, payload in (("event", event), ("session", first), ("session", last)):
        parts += [json.dumps({"type": kind, "length": len(payload)}).encode(), payload]
    return b"\n".join(parts) + b"\n"


async def candidate(url: str, batch: list[dict[str, object]]) -> float:
    bodies = [envelope(r) for r in batch]
    headers = {"x-sentry-auth": f"Sentry sentry_key={KEY}"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker(part: list[bytes]) -> None:
            for body in part:
                r = await client.post("/telemetry/api/1/envelope/", content=body, headers=headers)
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker(bodies[k::CONCURRENCY]) for k in range(CONCURRENCY)))
        return time.perf_counter() - start


async def reference(database_url: str, batch: list[dict[str, object]]) -> float:
    conns = [await psycopg.AsyncConnection.connect(database_url) for _ in range(CONCURRENCY)]
    try:

        async def worker(
            conn: psycopg.AsyncConnection[object], part: list[dict[str, object]]
        ) -> None:
            for row in part:
                event = row["event"]
                session = row["session"]
                assert isinstance(event, dict) and isinstance(session, dict)
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO raw_issues (fingerprint, n) VALUES (%s, 1) "
                        "ON CONFLICT (fingerprint) DO UPDATE SET n = raw_issues.n + 1",
                        (event["exception"]["values"][0]["type"],),
                    )
                    await conn.execute(
                        "INSERT INTO raw_events (event_id, payload) VALUES (%s, %s)",
                        (event["event_id"], json.dumps(event)),
                    )
                    await conn.execute(
                        "INSERT INTO raw_sessions (sid, payload) VALUES (%s, %s)",
                        (session["sid"], json.dumps(session)),
                    )

        start = time.perf_counter()
        await asyncio.gather(*(worker(conns[k], batch[k::CONCURRENCY]) for k in range(CONCURRENCY)))
        return time.perf_counter() - start
    finally:
        for conn in conns:
            await conn.close()


async def run(url: str, database_url: str, n: int, rounds: int) -> None:
    await candidate(url, rows(50, -1))  # warm up
    await reference(database_url, rows(50, -1))
    cand, ref = [], []
    for r in range(rounds):
        batch = rows(n, r)
        order = [("c", cand), ("r", ref)]
        for kind, sink in order if r % 2 else reversed(order):
            if kind == "c":
                sink.append(await candidate(url, batch))
            else:
                sink.append(await reference(database_url, batch))
    result = summarize(f"telemetry: {n} envelopes (event + 2 session updates)", ref, cand)
    print(result.line())
    print(
        f"  ingest: {n / result.candidate_median_s:,.0f} envelopes/s accepted and stored; "
        f"raw inserts: {n / result.reference_median_s:,.0f} envelopes/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--envelopes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = manager.env()
    admin = env["DATABASE_URL"]
    name = f"bench_telemetry_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    os.environ.pop("TELEMETRY_ARTIFACTS_BUCKET", None)
    os.environ["TELEMETRY_PROJECTS"] = json.dumps(
        [{"id": 1, "slug": "bench", "platform": "python", "keys": [{"public_key": KEY}]}]
    )
    process = None
    try:
        for ms in platform_migrations():
            upgrade(ms, url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE raw_issues (fingerprint text PRIMARY KEY, n bigint)")
            conn.execute("CREATE TABLE raw_events (event_id text PRIMARY KEY, payload jsonb)")
            conn.execute("CREATE TABLE raw_sessions (sid text PRIMARY KEY, payload jsonb)")
        base, process = serve(url, env["REDIS_URL"])
        asyncio.run(run(base, url, args.envelopes, args.rounds))
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
