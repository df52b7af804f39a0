"""The one operator module that talks to object storage (S3, through boto3): the media bucket.

For a MobilePlatform with ``spec.media`` the operator makes the bucket, idempotently, with:

- default encryption SSE-S3 (AES256),
- the public access block, all four switches on (no public ACLs or policies, ever),
- a lifecycle configuration from ``media.lifecycle`` (expiration by prefix, aborting
  unfinished multipart uploads); no rules means no lifecycle configuration.

Each setting is written, then read back. S3-compatible servers implement different subsets
of the API: an answer ``NotImplemented`` (HTTP 501) is data, not a failure — the setting is
reported in :attr:`BucketInfo.unsupported` (or ``unverified`` when only the read-back is
missing) with the call and the answer in ``notes``, and the rest goes on. Nothing is faked.

:meth:`BucketProvisioner.delete` (``deletionPolicy: Delete``) aborts unfinished multipart
uploads, deletes every object (every version and delete marker if the bucket is versioned)
and then the bucket. A large bucket is emptied across several calls: after
``delete_budget`` objects it raises :class:`InProgress` so the handler is requeued instead of
holding a worker for minutes.

boto3 is blocking: the async methods run each whole operation in one worker thread
(:func:`asyncio.to_thread`), so handlers await PostgreSQL and S3 provisioning alike. A client
is made per operation from the endpoint (each MobilePlatform may have its own) and closed
after it. The botocore configuration suits S3-compatible servers as well as AWS: SigV4,
path-style addressing for a custom endpoint (``http://host/bucket``, no wildcard DNS), and
checksums only when an operation requires them (botocore >= 1.36 otherwise sends CRC trailers
that many servers reject).

boto3's exceptions never leave this module: they are chained into
:class:`~mobileplane.operator.provision.errors.ProvisioningError` subclasses.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from mobileplane.operator.provision.errors import (
    InProgress,
    ProvisioningError,
    Refused,
    Unreachable,
)
from mobileplane.operator.provision.models import (
    ENCRYPTION,
    LIFECYCLE,
    PUBLIC_ACCESS_BLOCK,
    BucketInfo,
    DeletedBucket,
    S3Endpoint,
    lifecycle_configuration,
    lifecycle_summary,
    validate_bucket_name,
)
from mobileplane.operator.spec import LifecycleRule

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        BucketLifecycleConfigurationTypeDef,
        CreateBucketConfigurationTypeDef,
        ObjectIdentifierTypeDef,
    )

__all__ = [
    "BucketInfo",
    "BucketProvisioner",
    "DeletedBucket",
    "S3Endpoint",
    "s3_error",
]

#: Objects deleted per :meth:`BucketProvisioner.delete` call before it hands back with
#: InProgress: at ~1,000 objects per request this keeps a call to about a minute.
DELETE_BUDGET = 50_000

#: DeleteObjects takes at most 1,000 keys (S3 limit).
DELETE_BATCH = 1_000

#: Seconds: fail fast and let kopf pace the retries, as for PostgreSQL.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30

#: Error codes of credentials the server does not accept (XAdminUserNotFound: versitygw's
#: answer to an unknown access key id).
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "XAdminUserNotFound",
        "InvalidToken",
        "ExpiredToken",
        "InvalidSecurity",
    }
)
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem"})
_WRONG_REGION = frozenset(
    {
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
        "301",
    }
)
_TRANSIENT = frozenset(
    {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "OperationAborted"}
)

ClientFactory = Callable[[S3Endpoint], "S3Client"]


def _code(error: ClientError) -> tuple[str, int]:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return code, status


def _not_implemented(error: ClientError) -> bool:
    code, status = _code(error)
    return code in ("NotImplemented", "VersioningNotConfigured") or status == 501


def s3_error(error: Exception, endpoint: S3Endpoint, *, doing: str) -> ProvisioningError:
    """The provisioning error for a boto3/botocore exception (callers ``raise ... from``)."""
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return Unreachable(
            f"cannot reach {endpoint.server} to {doing} ({error}): check media.endpoint and "
            "that the server accepts connections from the operator; retrying"
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return Refused(
            f"no credentials to {doing} on {endpoint.server}: set accessKeyId and "
            f"secretAccessKey{endpoint.in_source}"
        )
    if isinstance(error, ParamValidationError):
        return Refused(f"cannot {doing}: {error}")
    if not isinstance(error, ClientError):
        return ProvisioningError(f"could not {doing} on {endpoint.server} ({error}); retrying")
    code, status = _code(error)
    message = error.response.get("Error", {}).get("Message") or code
    answer = f"{code or status}: {message}"
    if code in _BAD_CREDENTIALS:
        return Refused(
            f"{endpoint.server} rejected the credentials{endpoint.in_source} while trying to "
            f"{doing} ({answer}): check accessKeyId and secretAccessKey"
        )
    if code in _DENIED or status == 403:
        return Refused(
            f"the credentials{endpoint.in_source} may not {doing} on {endpoint.server} "
            f"({answer}): grant them the permission or use other credentials"
        )
    if code == "BucketAlreadyExists":
        return Refused(
            f"cannot {doing}: the name is taken by another account on {endpoint.server}: "
            "choose another media.bucket"
        )
    if code == "InvalidBucketName":
        return Refused(f"cannot {doing}: {endpoint.server} rejects the name: fix media.bucket")
    if code in _WRONG_REGION or status == 301:
        return Refused(
            f"cannot {doing}: the bucket or endpoint is in another region than "
            f"{endpoint.region!r} ({answer}): fix media.region"
        )
    if _not_implemented(error):
        return Refused(f"{endpoint.server} does not implement what it takes to {doing} ({answer})")
    if code in _TRANSIENT or status >= 500:
        return ProvisioningError(
            f"{endpoint.server} could not {doing} now ({answer}); retrying", transient=True
        )
    if code == "RequestTimeTooSkewed":
        return ProvisioningError(
            f"{endpoint.server} refused to {doing}: the operator's clock is off ({answer}): "
            "synchronise the node's clock",
            transient=False,
        )
    return ProvisioningError(
        f"{endpoint.server} refused to {doing} ({answer})", transient=status >= 500
    )


def make_client(endpoint: S3Endpoint, session: boto3.session.Session | None = None) -> S3Client:
    """A boto3 S3 client for ``endpoint`` (only its own credentials; no ambient config)."""
    config = Config(
        region_name=endpoint.region,
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint.endpoint_url else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 2},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        # No endpoint means AWS, even if AWS_ENDPOINT_URL is set around the operator.
        # (botocore >= 1.31 has it; botocore-stubs do not know it yet.)
        ignore_configured_endpoint_urls=endpoint.endpoint_url is None,  # type: ignore[call-arg]
    )
    return (session or boto3.session.Session()).client(
        "s3",
        endpoint_url=endpoint.endpoint_url,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        region_name=endpoint.region,
        config=config,
    )


class BucketProvisioner:
    """Creates, configures and deletes media buckets on the S3 endpoints it is given.

    ``client_factory`` makes the boto3 client for an endpoint; tests pass one that returns a
    stubbed client. One instance serves all MobilePlatforms and concurrent handlers.
    """

    def __init__(
        self, client_factory: ClientFactory | None = None, *, delete_budget: int = DELETE_BUDGET
    ) -> None:
        self._session = boto3.session.Session()
        # boto3 sessions are not thread-safe; clients made from one are.
        self._lock = threading.Lock()
        self._client_factory = client_factory or self._make_client
        self.delete_budget = delete_budget

    def _make_client(self, endpoint: S3Endpoint) -> S3Client:
        with self._lock:
            return make_client(endpoint, self._session)

    async def ensure(
        self, endpoint: S3Endpoint, bucket: str, lifecycle_rules: Sequence[LifecycleRule] = ()
    ) -> BucketInfo:
        """Create the bucket unless it exists and apply its settings. Idempotent."""
        validate_bucket_name(bucket)
        lifecycle = lifecycle_configuration(lifecycle_rules)
        return await asyncio.to_thread(self._ensure, endpoint, bucket, lifecycle)

    async def delete(self, endpoint: S3Endpoint, bucket: str) -> DeletedBucket:
        """Empty the bucket and delete it; a missing bucket is fine. Idempotent.

        Raises :class:`InProgress` when ``delete_budget`` objects were deleted and more remain.
        """
        validate_bucket_name(bucket)
        return await asyncio.to_thread(self._delete, endpoint, bucket)

    # -- ensure ------------------------------------------------------------------------------

    def _ensure(self, endpoint: S3Endpoint, bucket: str, lifecycle: dict[str, Any]) -> BucketInfo:
        client = self._client_factory(endpoint)
        try:
            created = self._create(client, endpoint, bucket)
            outcome = _Outcome()
            outcome.apply(
                ENCRYPTION,
                endpoint,
                bucket,
                put=(
                    "PutBucketEncryption",
                    lambda: client.put_bucket_encryption(
                        Bucket=bucket,
                        ServerSideEncryptionConfiguration={
                            "Rules": [
                                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                            ]
                        },
                    ),
                ),
                get=("GetBucketEncryption", lambda: client.get_bucket_encryption(Bucket=bucket)),
                holds=_encrypted,
            )
            outcome.apply(
                PUBLIC_ACCESS_BLOCK,
                endpoint,
                bucket,
                put=(
                    "PutPublicAccessBlock",
                    lambda: client.put_public_access_block(
                        Bucket=bucket,
                        PublicAccessBlockConfiguration={
                            "BlockPublicAcls": True,
                            "IgnorePublicAcls": True,
                            "BlockPublicPolicy": True,
                            "RestrictPublicBuckets": True,
                        },
                    ),
                ),
                get=("GetPublicAccessBlock", lambda: client.get_public_access_block(Bucket=bucket)),
                holds=_blocked,
            )
            if lifecycle["Rules"]:
                outcome.apply(
                    LIFECYCLE,
                    endpoint,
                    bucket,
                    put=(
                        "PutBucketLifecycleConfiguration",
                        lambda: client.put_bucket_lifecycle_configuration(
                            Bucket=bucket,
                            LifecycleConfiguration=cast(
                                "BucketLifecycleConfigurationTypeDef", lifecycle
                            ),
                        ),
                    ),
                    get=(
                        "GetBucketLifecycleConfiguration",
                        lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket),
                    ),
                    holds=lambda got: lifecycle_summary(got) == lifecycle_summary(lifecycle),
                )
            else:
                outcome.remove_lifecycle(client, endpoint, bucket)
        except (ClientError, BotoCoreError) as e:
            raise s3_error(e, endpoint, doing=f"configure bucket {bucket!r}") from e
        finally:
            client.close()
        return BucketInfo(
            bucket=bucket,
            created=created,
            applied=tuple(outcome.applied),
            unverified=tuple(outcome.unverified),
            unsupported=tuple(outcome.unsupported),
            notes=tuple(outcome.notes),
        )

    @staticmethod
    def _create(client: S3Client, endpoint: S3Endpoint, bucket: str) -> bool:
        """Create the bucket unless it is there; True if created."""
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as e:
            code, status = _code(e)
            # 404: make it. 403: ours but not readable, someone else's, or bad credentials —
            # HeadBucket has no body to tell; CreateBucket's error code does.
            if status not in (403, 404) and code not in ("404", "NoSuchBucket", "NotFound"):
                raise s3_error(e, endpoint, doing=f"look up bucket {bucket!r}") from e
        try:
            if endpoint.region == "us-east-1":
                client.create_bucket(Bucket=bucket)
            else:
                client.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration=cast(
                        "CreateBucketConfigurationTypeDef",
                        {"LocationConstraint": endpoint.region},
                    ),
                )
            return True
        except ClientError as e:
            if _code(e)[0] == "BucketAlreadyOwnedByYou":
                return False
            raise s3_error(e, endpoint, doing=f"create bucket {bucket!r}") from e

    # -- delete ------------------------------------------------------------------------------

    def _delete(self, endpoint: S3Endpoint, bucket: str) -> DeletedBucket:
        client = self._client_factory(endpoint)
        doing = f"delete bucket {bucket!r}"
        try:
            try:
                # Not HeadBucket: its errors have no body, and versitygw answers an unknown
                # access key with 404 too — "gone" must be NoSuchBucket, nothing else.
                client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            except ClientError as e:
                if _code(e)[0] == "NoSuchBucket":
                    return DeletedBucket(bucket=bucket, existed=False)
                raise
            aborted = self._abort_uploads(client, bucket)
            deleted, more = self._delete_objects(client, endpoint, bucket)
            if more:
                raise InProgress(
                    f"deleted {deleted} objects of bucket {bucket!r} on {endpoint.server}; "
                    "more remain: continuing"
                )
            try:
                client.delete_bucket(Bucket=bucket)
            except ClientError as e:
                code = _code(e)[0]
                if code == "BucketNotEmpty":
                    raise ProvisioningError(
                        f"objects were written to bucket {bucket!r} while it was being "
                        "emptied: stop the writers; retrying",
                        transient=True,
                    ) from e
                if code != "NoSuchBucket":
                    raise
        except ClientError as e:
            if _code(e)[0] == "NoSuchBucket":  # deleted meanwhile: the same outcome
                return DeletedBucket(bucket=bucket, existed=True)
            raise s3_error(e, endpoint, doing=doing) from e
        except BotoCoreError as e:
            raise s3_error(e, endpoint, doing=doing) from e
        finally:
            client.close()
        return DeletedBucket(
            bucket=bucket, existed=True, objects_deleted=deleted, uploads_aborted=aborted
        )

    @staticmethod
    def _abort_uploads(client: S3Client, bucket: str) -> int:
        aborted = 0
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                try:
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
                except ClientError as e:
                    if _code(e)[0] != "NoSuchUpload":  # finished or aborted meanwhile
                        raise
        return aborted

    def _delete_objects(
        self, client: S3Client, endpoint: S3Endpoint, bucket: str
    ) -> tuple[int, bool]:
        """Delete up to ``delete_budget`` objects; (deleted, whether more remain).

        Always lists from the start: what was deleted is gone, so no marker is needed, and
        objects written meanwhile are found too.
        """
        try:
            status = client.get_bucket_versioning(Bucket=bucket).get("Status")
        except ClientError as e:
            if not _not_implemented(e):
                raise
            status = None  # a server without versioning
        versioned = status in ("Enabled", "Suspended")
        deleted = 0
        while True:
            remaining = self.delete_budget - deleted
            size = max(1, min(DELETE_BATCH, remaining))
            batch = _versions(client, bucket, size) if versioned else _keys(client, bucket, size)
            if not batch:
                return deleted, False
            if remaining <= 0:
                return deleted, True
            response = client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": batch, "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise ProvisioningError(
                    f"{endpoint.server} did not delete {len(errors)} object(s) of bucket "
                    f"{bucket!r}, e.g. {first.get('Key')!r}: {first.get('Code')} "
                    f"{first.get('Message', '')}".rstrip(),
                    transient=first.get("Code") not in _DENIED,
                )
            deleted += len(batch)


_PAB_SWITCHES = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


def _keys(client: S3Client, bucket: str, size: int) -> list[ObjectIdentifierTypeDef]:
    page = client.list_objects_v2(Bucket=bucket, MaxKeys=size)
    return [{"Key": o["Key"]} for o in page.get("Contents", [])]


def _versions(client: S3Client, bucket: str, size: int) -> list[ObjectIdentifierTypeDef]:
    page = client.list_object_versions(Bucket=bucket, MaxKeys=size)
    entries = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
    batch: list[ObjectIdentifierTypeDef] = [
        {"Key": v["Key"], "VersionId": v["VersionId"]} for v in entries[:size]
    ]
    return batch


def _encrypted(response: Mapping[str, Any]) -> bool:
    rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    return any(
        r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "AES256"
        for r in rules
    )


def _blocked(response: Mapping[str, Any]) -> bool:
    switches = response.get("PublicAccessBlockConfiguration", {})
    return all(switches.get(name) is True for name in _PAB_SWITCHES)


class _Outcome:
    """Per setting: applied, unverified or unsupported, with a note for the latter two."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.unverified: list[str] = []
        self.unsupported: list[str] = []
        self.notes: list[str] = []

    def apply(
        self,
        setting: str,
        endpoint: S3Endpoint,
        bucket: str,
        *,
        put: tuple[str, Callable[[], Any]],
        get: tuple[str, Callable[[], Any]],
        holds: Callable[[Any], bool],
    ) -> None:
        """Write a setting and read it back; a 501 answer is recorded, not raised."""
        (put_name, put_call), (get_name, get_call) = put, get
        try:
            put_call()
        except ClientError as e:
            if not _not_implemented(e):
                raise s3_error(e, endpoint, doing=f"set the {setting} of bucket {bucket!r}") from e
            self.unsupported.append(setting)
            self.notes.append(f"{setting}: {put_name} answered {_answer(e)}")
            return
        try:
            got = get_call()
        except ClientError as e:
            if not _not_implemented(e):
                raise s3_error(e, endpoint, doing=f"read the {setting} of bucket {bucket!r}") from e
            self.unverified.append(setting)
            self.notes.append(f"{setting}: set, but {get_name} answered {_answer(e)}")
            return
        if not holds(got):
            got.pop("ResponseMetadata", None)
            raise ProvisioningError(
                f"{endpoint.server} accepted {put_name} for bucket {bucket!r} but {get_name} "
                f"reads back {got}: the server ignores part of the setting",
                transient=False,
            )
        self.applied.append(setting)

    def remove_lifecycle(self, client: S3Client, endpoint: S3Endpoint, bucket: str) -> None:
        """No rules wanted: remove any; a server without lifecycle support has none."""
        try:
            client.delete_bucket_lifecycle(Bucket=bucket)
        except ClientError as e:
            if _not_implemented(e):
                return
            raise s3_error(e, endpoint, doing=f"remove the lifecycle of bucket {bucket!r}") from e
        self.applied.append(LIFECYCLE)


def _answer(error: ClientError) -> str:
    code, status = _code(error)
    return f"{code or 'an error'} (HTTP {status})"
