"""The one module that talks to object storage (the S3 API, through boto3).

:class:`S3Gateway` offers what the services need — buckets, objects, presigned URLs for
clients to download or upload directly, and multipart upload of large streams — as async
methods (boto3 is blocking, so each call runs in a worker thread and the event loop keeps
serving). boto3's exceptions never leave this module: they are chained into kit errors
(:class:`ObjectNotFound`, :class:`PreconditionFailed`, :class:`StorageUnavailable`).

The client is configured for S3-compatible servers as well as AWS: path-style addressing
(``http://host/bucket/key``, no wildcard DNS needed) and checksums only when an operation
requires them (botocore >= 1.36 otherwise sends CRC trailers many servers reject).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mobileplane.services.kit.errors import NotFound, ServiceError, Unavailable
from mobileplane.services.kit.settings import S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3's rule: every part of a multipart upload but the last is at least 5 MiB.
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024


class ObjectNotFound(NotFound):
    code = "object_not_found"


class BucketNotFound(NotFound):
    code = "bucket_not_found"


class PreconditionFailed(ServiceError):
    """A conditional request (If-Match, If-None-Match) did not hold."""

    status_code = 412
    code = "precondition_failed"


class StorageUnavailable(Unavailable):
    code = "storage_unavailable"


@dataclass(frozen=True)
class S3Config:
    endpoint_url: str | None
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"

    @classmethod
    def from_settings(cls, settings: S3Settings) -> S3Config:
        return cls(
            endpoint_url=settings.endpoint_url,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key.get_secret_value(),
            region=settings.region,
        )


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str  # without the surrounding quotes
    size: int
    content_type: str | None = None
    last_modified: dt.datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredObject:
    info: ObjectInfo
    body: bytes


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


def translate_error(error: Exception, *, bucket: str, key: str | None = None) -> ServiceError:
    """The kit error for a boto3/botocore exception (callers ``raise ... from error``)."""
    where = f"{bucket}/{key}" if key is not None else bucket
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            return BucketNotFound(f"Bucket {bucket!r} does not exist")
        if code in {"NoSuchKey", "404", "NotFound"}:
            return ObjectNotFound(f"Object {where!r} does not exist")
        if code == "NoSuchUpload":
            return NotFound(f"Upload for {where!r} does not exist", code="upload_not_found")
        if code in {"PreconditionFailed", "412"}:
            return PreconditionFailed(f"Precondition failed for {where!r}")
        return StorageUnavailable(f"Object storage refused the request ({code or 'error'})")
    return StorageUnavailable("Object storage is unreachable")


class S3Gateway:
    """Async access to one S3 endpoint; one instance per process is enough (thread-safe)."""

    def __init__(self, config: S3Config, *, max_pool_connections: int = 20) -> None:
        self.config = config
        botocore_config = Config(
            region_name=config.region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=max_pool_connections,
        )
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=config.endpoint_url,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            region_name=config.region,
            config=botocore_config,
        )

    async def _call(self, bucket: str, key: str | None, fn: Any, /, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except (ClientError, BotoCoreError) as e:
            raise translate_error(e, bucket=bucket, key=key) from e

    async def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists (and is ours)."""
        try:
            await self._call(bucket, None, self._client.head_bucket, Bucket=bucket)
            return
        except NotFound:
            pass
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.config.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
        try:
            await asyncio.to_thread(self._client.create_bucket, **kwargs)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise translate_error(e, bucket=bucket) from e
        except BotoCoreError as e:
            raise translate_error(e, bucket=bucket) from e

    async def put_object(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        response = await self._call(
            bucket,
            key,
            self._client.put_object,
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata=dict(metadata or {}),
        )
        return ObjectInfo(
            key=key,
            etag=_etag(response.get("ETag")),
            size=len(body),
            content_type=content_type,
            metadata=dict(metadata or {}),
        )

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        response = await self._call(bucket, key, self._client.head_object, Bucket=bucket, Key=key)
        return self._info(key, response)

    async def get_object(self, bucket: str, key: str) -> StoredObject:
        """The whole object, body read into memory (use presigned URLs for large media)."""

        def fetch() -> tuple[dict[str, Any], bytes]:
            response = self._client.get_object(Bucket=bucket, Key=key)
            with response["Body"] as stream:
                return dict(response), stream.read()

        response, body = await self._call(bucket, key, fetch)
        return StoredObject(info=self._info(key, response), body=body)

    async def delete_object(self, bucket: str, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error (S3 semantics)."""
        await self._call(bucket, key, self._client.delete_object, Bucket=bucket, Key=key)

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        def collect() -> list[str]:
            paginator = self._client.get_paginator("list_objects_v2")
            return [
                item["Key"]
                for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
                for item in page.get("Contents", [])
                if "Key" in item
            ]

        result: list[str] = await self._call(bucket, None, collect)
        return result

    def presigned_get_url(self, bucket: str, key: str, *, expires_in: int = 3600) -> str:
        """A URL anyone holding it can GET for ``expires_in`` seconds (computed locally)."""
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )

    def presigned_put_url(
        self, bucket: str, key: str, *, expires_in: int = 900, content_type: str | None = None
    ) -> str:
        """A URL to PUT the object directly; the uploader must send the same Content-Type."""
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if content_type is not None:
            params["ContentType"] = content_type
        return self._client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=expires_in
        )

    async def upload_multipart(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterable[bytes] | Iterable[bytes],
        *,
        part_size: int = DEFAULT_PART_SIZE,
        content_type: str = "application/octet-stream",
    ) -> ObjectInfo:
        """Upload a stream of any length in parts of ``part_size``; aborted if anything fails."""
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3 minimum)")
        created = await self._call(
            bucket,
            key,
            self._client.create_multipart_upload,
            Bucket=bucket,
            Key=key,
            ContentType=content_type,
        )
        upload_id: str = created["UploadId"]
        parts: list[dict[str, Any]] = []
        size = 0
        try:
            async for number, part in _numbered_parts(chunks, part_size):
                uploaded = await self._call(
                    bucket,
                    key,
                    self._client.upload_part,
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                )
                parts.append({"PartNumber": number, "ETag": uploaded["ETag"]})
                size += len(part)
            completed = await self._call(
                bucket,
                key,
                self._client.complete_multipart_upload,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Parts of an unfinished upload are stored (and billed) until aborted.
            await asyncio.shield(self._abort(bucket, key, upload_id))
            raise
        return ObjectInfo(
            key=key, etag=_etag(completed.get("ETag")), size=size, content_type=content_type
        )

    async def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        # The original error matters more; a bucket lifecycle rule reaps what is left.
        with contextlib.suppress(ClientError, BotoCoreError):
            await asyncio.to_thread(
                self._client.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id
            )

    @staticmethod
    def _info(key: str, response: Mapping[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            etag=_etag(response.get("ETag")),
            size=int(response.get("ContentLength", 0)),
            content_type=response.get("ContentType"),
            last_modified=response.get("LastModified"),
            metadata=dict(response.get("Metadata", {})),
        )

    def close(self) -> None:
        self._client.close()


async def _numbered_parts(
    chunks: AsyncIterable[bytes] | Iterable[bytes], part_size: int
) -> AsyncIterator[tuple[int, bytes]]:
    """Regroup arbitrary chunks into numbered parts of ``part_size`` (the last may be smaller)."""
    buffer = bytearray()
    number = 0

    async def chunk_stream() -> AsyncIterator[bytes]:
        if isinstance(chunks, AsyncIterable):
            async for chunk in chunks:
                yield chunk
        else:
            for chunk in chunks:
                yield chunk

    async for chunk in chunk_stream():
        buffer.extend(chunk)
        while len(buffer) >= part_size:
            number += 1
            yield number, bytes(buffer[:part_size])
            del buffer[:part_size]
    if buffer or number == 0:
        yield number + 1, bytes(buffer)
