"""Smoke tests: each data component of the stack is the real thing and behaves like it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg
import pytest
import redis
from support.stack import StackSettings
from support.unleash import UnleashAdmin
from UnleashClient import UnleashClient

pytestmark = pytest.mark.integration


def _sync_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_postgres_round_trip_and_rollback(database_url: str) -> None:
    with psycopg.connect(_sync_url(database_url)) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None and int(version[0]) >= 150000
        conn.execute("CREATE TABLE smoke (id int PRIMARY KEY, note text NOT NULL)")
        conn.execute("INSERT INTO smoke VALUES (1, 'kept')")
        conn.commit()
        conn.execute("INSERT INTO smoke VALUES (2, 'rolled back')")
        conn.rollback()
        rows = conn.execute("SELECT id, note FROM smoke ORDER BY id").fetchall()
        assert rows == [(1, "kept")]
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO smoke VALUES (1, 'duplicate')")
        conn.rollback()


def test_template_database_has_migrations(database_url: str) -> None:
    with psycopg.connect(_sync_url(database_url)) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert "alembic_version_kit" in tables


def test_databases_are_isolated(database_url: str, stack: StackSettings) -> None:
    own = database_url.rsplit("/", 1)[1]
    with psycopg.connect(stack.database_url) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()]
    assert own in names
    assert own != stack.database_url.rsplit("/", 1)[1]


def test_redis_stream_with_consumer_group(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stream = f"{redis_prefix}events"
    try:
        assert str(client.info("server")["redis_version"]).startswith("7.")
        ids = [client.xadd(stream, {"n": str(i)}) for i in range(3)]
        client.xgroup_create(stream, "loaders", id="0")
        got = client.xreadgroup("loaders", "c1", {stream: ">"}, count=10)
        entries = got[0][1]
        assert [e[1]["n"] for e in entries] == ["0", "1", "2"]
        # Unacknowledged entries stay pending for the group until acknowledged.
        assert client.xpending(stream, "loaders")["pending"] == 3
        assert client.xack(stream, "loaders", *ids[:2]) == 2
        pending = client.xpending(stream, "loaders")
        assert pending["pending"] == 1 and pending["min"] == ids[2]
        # A second consumer sees nothing new: delivery is once per group.
        assert client.xreadgroup("loaders", "c2", {stream: ">"}, count=10) == []
    finally:
        client.close()


def test_s3_put_get_multipart_and_presigned(s3_client: Any, s3_bucket: str) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="hello.txt", Body=b"hello", ContentType="text/plain")
    got = s3_client.get_object(Bucket=s3_bucket, Key="hello.txt")
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "text/plain"

    part_size = 5 * 1024 * 1024  # S3's minimum size of every part but the last
    parts_data = [b"a" * part_size, b"b" * part_size, b"c" * 1024]
    upload = s3_client.create_multipart_upload(Bucket=s3_bucket, Key="big.bin")
    parts = []
    for number, chunk in enumerate(parts_data, start=1):
        r = s3_client.upload_part(
            Bucket=s3_bucket,
            Key="big.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=chunk,
        )
        parts.append({"ETag": r["ETag"], "PartNumber": number})
    s3_client.complete_multipart_upload(
        Bucket=s3_bucket,
        Key="big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    head = s3_client.head_object(Bucket=s3_bucket, Key="big.bin")
    assert head["ContentLength"] == sum(len(p) for p in parts_data)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag names its part count

    url = s3_client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": "hello.txt"}, ExpiresIn=60
    )
    assert httpx.get(url).content == b"hello"
    put_url = s3_client.generate_presigned_url(
        "put_object", Params={"Bucket": s3_bucket, "Key": "up.txt"}, ExpiresIn=60
    )
    assert httpx.put(put_url, content=b"uploaded").status_code == 200
    assert s3_client.get_object(Bucket=s3_bucket, Key="up.txt")["Body"].read() == b"uploaded"
    # Unsigned access is refused: the server really checks signatures.
    assert httpx.get(url.split("?", 1)[0]).status_code == 403


def test_unleash_client_sees_flag_created_through_admin_api(
    stack: StackSettings, unleash_admin: UnleashAdmin, tmp_path: Any
) -> None:
    flag = unleash_admin.create_flag("smoke")
    unleash_admin.add_rollout(flag, 100)
    unleash_admin.set_enabled(flag, True)

    client = UnleashClient(
        url=stack.unleash_url,
        app_name="mobileplane-smoke",
        custom_headers={"Authorization": stack.unleash_api_token},
        refresh_interval=1,
        disable_metrics=True,
        disable_registration=True,
        cache_directory=str(tmp_path),
    )
    client.initialize_client()
    try:
        deadline = time.monotonic() + 15
        while not client.is_enabled(flag, {"userId": "u1"}) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.is_enabled(flag, {"userId": "u1"})
        assert not client.is_enabled(unleash_admin.flag_name("missing"), {"userId": "u1"})

        unleash_admin.set_enabled(flag, False)
        deadline = time.monotonic() + 15
        while client.is_enabled(flag, {"userId": "u1"}) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not client.is_enabled(flag, {"userId": "u1"})
    finally:
        client.destroy()


def test_unleash_refuses_a_wrong_token(stack: StackSettings) -> None:
    r = httpx.get(
        stack.unleash_url + "/client/features", headers={"Authorization": "default:development.x"}
    )
    assert r.status_code in (401, 403)
