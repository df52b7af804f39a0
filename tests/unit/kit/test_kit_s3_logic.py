"""The S3 gateway's own logic: error translation and part regrouping (no server needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from mobileplane.services.kit.errors import NotFound, ServiceError
from mobileplane.services.kit.s3 import (
    MIN_PART_SIZE,
    BucketNotFound,
    ObjectNotFound,
    PreconditionFailed,
    S3Config,
    StorageUnavailable,
    _numbered_parts,
    translate_error,
)


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetObject")


@pytest.mark.parametrize(
    ("error", "expected", "status"),
    [
        pytest.param(client_error("NoSuchKey"), ObjectNotFound, 404, id="no-such-key"),
        pytest.param(client_error("404"), ObjectNotFound, 404, id="head-404"),
        pytest.param(client_error("NoSuchBucket"), BucketNotFound, 404, id="no-such-bucket"),
        pytest.param(client_error("NoSuchUpload"), NotFound, 404, id="no-such-upload"),
        pytest.param(client_error("PreconditionFailed"), PreconditionFailed, 412, id="412"),
        pytest.param(client_error("AccessDenied"), StorageUnavailable, 503, id="access-denied"),
        pytest.param(
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            StorageUnavailable,
            503,
            id="unreachable",
        ),
    ],
)
def test_translate_error(error: Exception, expected: type[ServiceError], status: int) -> None:
    translated = translate_error(error, bucket="media", key="a/b.png")
    assert type(translated) is expected
    assert translated.status_code == status
    assert translated.message != "m"  # botocore's message is not passed through verbatim


async def collect(chunks: list[bytes], part_size: int) -> list[tuple[int, int]]:
    return [(n, len(part)) async for n, part in _numbered_parts(chunks, part_size)]


@pytest.mark.parametrize(
    ("chunk_sizes", "part_size", "parts"),
    [
        pytest.param([10], 4, [(1, 4), (2, 4), (3, 2)], id="one-big-chunk"),
        pytest.param([1, 1, 1, 1, 1], 2, [(1, 2), (2, 2), (3, 1)], id="small-chunks"),
        pytest.param([4, 4], 4, [(1, 4), (2, 4)], id="exact"),
        pytest.param([], 4, [(1, 0)], id="empty-stream-is-one-empty-part"),
    ],
)
async def test_parts_regroup_chunks(
    chunk_sizes: list[int], part_size: int, parts: list[tuple[int, int]]
) -> None:
    assert await collect([b"x" * size for size in chunk_sizes], part_size) == parts


async def test_parts_from_async_iterable_keep_bytes_in_order() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for letter in b"abcdefg":
            yield bytes([letter])

    parts = [part async for _, part in _numbered_parts(chunks(), 3)]
    assert parts == [b"abc", b"def", b"g"]


def test_config_repr_hides_secret() -> None:
    config = S3Config("http://127.0.0.1:9000", "AKIA", "very-secret-key")
    assert "very-secret-key" not in repr(config)


def test_min_part_size_is_s3s() -> None:
    assert MIN_PART_SIZE == 5 * 1024 * 1024
