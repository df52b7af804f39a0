"""The S3 gateway against the stack's real S3-compatible server."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from mobileplane.services.kit.s3 import (
    MIN_PART_SIZE,
    BucketNotFound,
    ObjectNotFound,
    S3Config,
    S3Gateway,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(s3_config: dict[str, str]) -> Iterator[S3Gateway]:
    gateway = S3Gateway(S3Config(**s3_config))
    yield gateway
    gateway.close()


async def test_put_get_head_delete(gateway: S3Gateway, s3_bucket: str) -> None:
    stored = await gateway.put_object(
        s3_bucket, "avatars/u1.png", b"\x89PNG...", content_type="image/png",
        metadata={"owner": "u1"},
    )  # fmt: skip
    assert stored.etag == hashlib.md5(b"\x89PNG...", usedforsecurity=False).hexdigest()

    fetched = await gateway.get_object(s3_bucket, "avatars/u1.png")
    assert fetched.body == b"\x89PNG..."
    assert fetched.info.content_type == "image/png"
    assert fetched.info.etag == stored.etag
    assert fetched.info.metadata == {"owner": "u1"}

    head = await gateway.head_object(s3_bucket, "avatars/u1.png")
    assert head.size == len(b"\x89PNG...")
    assert await gateway.list_keys(s3_bucket, prefix="avatars/") == ["avatars/u1.png"]

    await gateway.delete_object(s3_bucket, "avatars/u1.png")
    with pytest.raises(ObjectNotFound):
        await gateway.get_object(s3_bucket, "avatars/u1.png")
    with pytest.raises(ObjectNotFound):
        await gateway.head_object(s3_bucket, "avatars/u1.png")
    await gateway.delete_object(s3_bucket, "avatars/u1.png")  # deleting twice is fine


async def test_missing_bucket(gateway: S3Gateway, s3_bucket: str) -> None:
    with pytest.raises(BucketNotFound):
        await gateway.get_object(f"{s3_bucket}-missing", "k")


async def test_ensure_bucket_creates_once(
    gateway: S3Gateway, s3_bucket: str, s3_client: Any
) -> None:
    await gateway.ensure_bucket(s3_bucket)  # exists already: no error
    new_bucket = f"{s3_bucket[:55]}-new"
    try:
        await gateway.ensure_bucket(new_bucket)
        await gateway.ensure_bucket(new_bucket)
        await gateway.put_object(new_bucket, "k", b"v")
        assert (await gateway.get_object(new_bucket, "k")).body == b"v"
    finally:
        for key in await gateway.list_keys(new_bucket):
            await gateway.delete_object(new_bucket, key)
        s3_client.delete_bucket(Bucket=new_bucket)


async def test_multipart_upload_of_a_stream(gateway: S3Gateway, s3_bucket: str) -> None:
    # 11 MiB in 1 MiB chunks -> parts of 5, 5 and 1 MiB.
    chunk = bytes(range(256)) * 4096

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(11):
            yield chunk

    info = await gateway.upload_multipart(
        s3_bucket, "videos/clip.bin", chunks(), part_size=MIN_PART_SIZE
    )
    assert info.size == 11 * len(chunk)
    assert info.etag.endswith("-3")  # S3's multipart ETag: md5-of-md5s, "-<parts>"
    fetched = await gateway.get_object(s3_bucket, "videos/clip.bin")
    assert fetched.body == chunk * 11


async def test_failed_multipart_upload_is_aborted(
    gateway: S3Gateway, s3_bucket: str, s3_client: Any
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * MIN_PART_SIZE
        raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        await gateway.upload_multipart(s3_bucket, "partial.bin", broken())
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert await gateway.list_keys(s3_bucket) == []


async def test_presigned_urls_work_with_a_plain_http_client(
    gateway: S3Gateway, s3_bucket: str
) -> None:
    put_url = gateway.presigned_put_url(s3_bucket, "up/photo.jpg", content_type="image/jpeg")
    async with httpx.AsyncClient(timeout=10) as client:
        uploaded = await client.put(
            put_url, content=b"jpeg-bytes", headers={"content-type": "image/jpeg"}
        )
        assert uploaded.status_code == 200, uploaded.text
        downloaded = await client.get(gateway.presigned_get_url(s3_bucket, "up/photo.jpg"))
        assert downloaded.status_code == 200
        assert downloaded.content == b"jpeg-bytes"
        tampered = await client.get(
            gateway.presigned_get_url(s3_bucket, "up/photo.jpg").replace("photo", "other")
        )
        assert tampered.status_code == 403
    assert (await gateway.head_object(s3_bucket, "up/photo.jpg")).content_type == "image/jpeg"
