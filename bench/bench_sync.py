"""What sync costs: uploads against writing the same rows straight into Postgres, and an
initial sync of 100k rows into a device's SQLite replica against inserting them there raw.

1. **Upload**: N mutations in batches of 500, through HTTP to the sync service under uvicorn
   (validation, merge, the op log, checksums, one transaction per batch), against inserting
   the same N rows with ``executemany`` into a plain table in the same database.
2. **Initial sync**: the Python SDK downloads a bucket of 100k rows (pages of 10,000) and
   applies them to a SQLite file in one transaction, checksum included, against inserting the
   same 100k rows into SQLite directly. Reports rows/s too.

Needs the local stack; run with ``.venv/bin/python bench/bench_sync.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import uvicorn
from harness import compare
from mobileplane_client import Replica, SyncClient
from psycopg import sql

from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.migrate import upgrade
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.platform import platform_migrations
from mobileplane.services.sync.checksum import updated
from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.service import SERVICE
from mobileplane.stack import manager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(database_url: str, redis_url: str) -> tuple[str, uvicorn.Server]:
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_PREFIX=f"bench-{uuid.uuid4().hex[:6]}",
        SYNC_MAX_ROWS_PER_USER="1000000",
        SYNC_MAX_BATCH="10000",
        SYNC_CHECKPOINT_KEYS=secrets.token_urlsafe(32),
    )
    settings = KitSettings(database_url=database_url, redis_url=redis_url, log_level="WARNING")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_service_app(SERVICE, settings=settings, all_services=[SERVICE]),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server


def seed_bucket(database_url: str, subject: str, rows: int) -> None:
    """A bucket of ``rows`` rows written as the service would (ops, checksum), fast."""
    bucket = f"user:{subject}"
    checksum = 0
    ops = []
    for i in range(1, rows + 1):
        row_id = f"r{i}"
        checksum = updated(checksum, "notes", row_id, None, i)
        values = {"title": f"note {i}", "body": "x" * 80, "done": i % 2 == 0}
        ops.append((bucket, i, "notes", row_id, "put", json.dumps(values), checksum))
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sync_ops (bucket, op_id, table_name, row_id, kind, vals, checksum) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            ops,
        )
        cur.execute(
            "INSERT INTO sync_buckets (bucket, last_op, checksum, live_rows) VALUES (%s,%s,%s,%s)",
            (bucket, rows, checksum, rows),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mutations", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = manager.env()
    admin = env["DATABASE_URL"]
    name = f"bench_sync_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        for ms in platform_migrations():
            upgrade(ms, url)
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE bench_plain (id text PRIMARY KEY, vals jsonb)")
        base, server = serve(
            url.replace("postgresql://", "postgresql+psycopg://"), env["REDIS_URL"]
        )
        http = httpx.Client(base_url=base, timeout=120)
        node = "bench"

        def candidate_upload() -> None:
            subject = uuid.uuid4().hex[:10]
            headers = identity_headers(Identity(subject, frozenset({"sync"})))
            now = int(time.time() * 1000)
            for start in range(0, args.mutations, 500):
                mutations = [
                    {
                        "id": i + 1,
                        "table": "notes",
                        "op": "insert",
                        "row_id": f"r{i}",
                        "values": {"title": f"note {i}", "done": False},
                        "hlc": Timestamp(now, i % 99_999, node).encode(),
                    }
                    for i in range(start, min(start + 500, args.mutations))
                ]
                r = http.post(
                    "/sync/upload",
                    headers=headers,
                    json={
                        "client_id": f"bench-{subject}",
                        "schema_version": 1,
                        "mutations": mutations,
                    },
                )
                r.raise_for_status()

        def reference_upload() -> None:
            prefix = uuid.uuid4().hex[:10]
            with psycopg.connect(url) as conn, conn.cursor() as cur:
                for start in range(0, args.mutations, 500):
                    cur.executemany(
                        "INSERT INTO bench_plain (id, vals) VALUES (%s, %s)",
                        [
                            (f"{prefix}-{i}", json.dumps({"title": f"note {i}", "done": False}))
                            for i in range(start, min(start + 500, args.mutations))
                        ],
                    )
                    conn.commit()

        upload = compare(
            f"sync upload of {args.mutations} mutations (batches of 500) / executemany of the "
            "same rows",
            reference_upload,
            candidate_upload,
            rounds=args.rounds,
        )
        print(upload.line(), flush=True)
        print(
            f"  upload throughput: {args.mutations / upload.candidate_median_s:,.0f} mutations/s",
            flush=True,
        )

        subject = f"big-{uuid.uuid4().hex[:8]}"
        seed_bucket(url, subject, args.rows)
        headers = identity_headers(Identity(subject, frozenset({"sync"})))
        workdir = Path(tempfile.mkdtemp(prefix="bench-sync-"))

        def candidate_initial() -> None:
            replica = Replica(workdir / f"{uuid.uuid4().hex}.db")
            client = SyncClient(base, replica, schema_version=1, headers=headers, page_size=10_000)
            client.download()
            assert len(replica.server_rows("notes")) == args.rows
            client.close()
            replica.close()

        payload = [
            (f"r{i}", json.dumps({"title": f"note {i}", "body": "x" * 80, "done": i % 2 == 0}))
            for i in range(1, args.rows + 1)
        ]

        def reference_initial() -> None:
            import sqlite3

            db = sqlite3.connect(workdir / f"{uuid.uuid4().hex}.raw.db")
            db.execute(
                "CREATE TABLE rows (tbl TEXT, row_id TEXT, vals TEXT, PRIMARY KEY (tbl, row_id))"
            )
            with db:
                db.executemany("INSERT INTO rows VALUES ('notes', ?, ?)", payload)
            db.close()

        initial = compare(
            f"initial sync of {args.rows} rows into SQLite (SDK, pages of 10,000) / raw SQLite "
            "insert of the same rows",
            reference_initial,
            candidate_initial,
            rounds=max(3, args.rounds // 2),
        )
        print(initial.line(), flush=True)
        print(f"  initial sync: {args.rows / initial.candidate_median_s:,.0f} rows/s", flush=True)
        server.should_exit = True
        http.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
