"""The bucket provisioner against the stack's real S3 server (versitygw).

What a server implements varies: each setting the provisioner reports as applied is read
back here with a plain client, and each it reports as unsupported must indeed be answered
NotImplemented by the server — so the report is checked either way, on any server.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from support.stack import StackSettings

from mobileplane.operator.provision import (
    ENCRYPTION,
    LIFECYCLE,
    PUBLIC_ACCESS_BLOCK,
    BucketInfo,
    BucketProvisioner,
    InProgress,
    Refused,
    S3Endpoint,
    Unreachable,
)
from mobileplane.operator.spec import LifecycleRule

pytestmark = pytest.mark.integration

RULES = [
    LifecycleRule(id="tmp", prefix="tmp/", expiration_days=7),
    LifecycleRule(id="uploads", abort_incomplete_multipart_upload_days=2),
]


@pytest.fixture(scope="module")
def endpoint(stack: StackSettings) -> S3Endpoint:
    return S3Endpoint(
        endpoint_url=stack.s3_endpoint,
        region=stack.s3_region,
        access_key_id=stack.s3_access_key,
        secret_access_key=stack.s3_secret_key,
        source="Secret test/media",
    )


@pytest.fixture
def provisioner() -> BucketProvisioner:
    return BucketProvisioner()


@pytest.fixture
async def bucket_names(
    endpoint: S3Endpoint, provisioner: BucketProvisioner
) -> AsyncIterator[Callable[[], str]]:
    """Hands out bucket names; whatever they name is deleted afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"mpt-{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield new
    for name in made:
        await provisioner.delete(endpoint, name)


def _error_code(call: Callable[[], Any]) -> str:
    try:
        call()
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    return ""


def _check_report(info: BucketInfo, s3_client: Any, bucket: str, *, lifecycle: bool) -> None:
    wanted = {ENCRYPTION, PUBLIC_ACCESS_BLOCK} | ({LIFECYCLE} if lifecycle else set())
    reported = set(info.applied) | set(info.unverified) | set(info.unsupported)
    assert wanted <= reported
    assert len(info.notes) == len(info.unverified) + len(info.unsupported)

    gets = {
        ENCRYPTION: lambda: s3_client.get_bucket_encryption(Bucket=bucket),
        PUBLIC_ACCESS_BLOCK: lambda: s3_client.get_public_access_block(Bucket=bucket),
        LIFECYCLE: lambda: s3_client.get_bucket_lifecycle_configuration(Bucket=bucket),
    }
    for setting in info.unsupported:
        assert _error_code(gets[setting]) == "NotImplemented", setting
    if ENCRYPTION in info.applied:
        rules = gets[ENCRYPTION]()["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    if PUBLIC_ACCESS_BLOCK in info.applied:
        switches = gets[PUBLIC_ACCESS_BLOCK]()["PublicAccessBlockConfiguration"]
        assert switches == dict.fromkeys(
            ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"],
            True,
        )
    if LIFECYCLE in info.applied and lifecycle:
        by_id = {r["ID"]: r for r in gets[LIFECYCLE]()["Rules"]}
        assert by_id["tmp"]["Expiration"] == {"Days": 7}
        assert by_id["uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}


async def test_ensure_creates_and_configures_the_bucket(
    endpoint: S3Endpoint,
    provisioner: BucketProvisioner,
    bucket_names: Callable[[], str],
    s3_client: Any,
) -> None:
    bucket = bucket_names()

    info = await provisioner.ensure(endpoint, bucket, RULES)

    assert info.bucket == bucket and info.created
    s3_client.head_bucket(Bucket=bucket)
    _check_report(info, s3_client, bucket, lifecycle=True)


async def test_ensure_is_idempotent(
    endpoint: S3Endpoint,
    provisioner: BucketProvisioner,
    bucket_names: Callable[[], str],
    s3_client: Any,
) -> None:
    bucket = bucket_names()
    first = await provisioner.ensure(endpoint, bucket, RULES)
    s3_client.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")

    second = await provisioner.ensure(endpoint, bucket, RULES)
    without_rules = await provisioner.ensure(endpoint, bucket, [])

    assert first.created and not second.created and not without_rules.created
    assert (second.applied, second.unsupported) == (first.applied, first.unsupported)
    assert s3_client.get_object(Bucket=bucket, Key="kept.txt")["Body"].read() == b"kept"
    _check_report(without_rules, s3_client, bucket, lifecycle=False)
    if LIFECYCLE in without_rules.applied:
        assert _error_code(lambda: s3_client.get_bucket_lifecycle_configuration(Bucket=bucket)) == (
            "NoSuchLifecycleConfiguration"
        )


async def test_stack_server_answers_not_implemented_for_bucket_settings(
    endpoint: S3Endpoint, provisioner: BucketProvisioner, bucket_names: Callable[[], str]
) -> None:
    """What versitygw v1.8.0 (posix backend) does; update this when the stack's server moves."""
    info = await provisioner.ensure(endpoint, bucket_names(), RULES)

    assert info.unsupported == (ENCRYPTION, PUBLIC_ACCESS_BLOCK, LIFECYCLE)
    assert info.applied == () and info.unverified == ()
    assert info.notes == (
        "encryption: PutBucketEncryption answered NotImplemented (HTTP 501)",
        "public-access-block: PutPublicAccessBlock answered NotImplemented (HTTP 501)",
        "lifecycle: PutBucketLifecycleConfiguration answered NotImplemented (HTTP 501)",
    )


async def test_delete_empties_and_removes_the_bucket(
    endpoint: S3Endpoint,
    provisioner: BucketProvisioner,
    bucket_names: Callable[[], str],
    s3_client: Any,
) -> None:
    bucket = bucket_names()
    await provisioner.ensure(endpoint, bucket, [])
    for i in range(5):
        s3_client.put_object(Bucket=bucket, Key=f"media/{i}.jpg", Body=b"x" * i)
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key="big.mp4")
    s3_client.upload_part(
        Bucket=bucket, Key="big.mp4", UploadId=upload["UploadId"], PartNumber=1, Body=b"part"
    )

    deleted = await provisioner.delete(endpoint, bucket)

    assert (deleted.existed, deleted.objects_deleted, deleted.uploads_aborted) == (True, 5, 1)
    assert _error_code(lambda: s3_client.head_bucket(Bucket=bucket)) == "404"
    again = await provisioner.delete(endpoint, bucket)
    assert not again.existed


async def test_delete_of_a_large_bucket_goes_in_steps(
    endpoint: S3Endpoint, bucket_names: Callable[[], str], s3_client: Any
) -> None:
    provisioner = BucketProvisioner(delete_budget=2)
    bucket = bucket_names()
    await provisioner.ensure(endpoint, bucket, [])
    for i in range(3):
        s3_client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")

    with pytest.raises(InProgress) as caught:
        await provisioner.delete(endpoint, bucket)
    assert caught.value.transient and caught.value.retry_after
    assert s3_client.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    deleted = await provisioner.delete(endpoint, bucket)
    assert (deleted.existed, deleted.objects_deleted) == (True, 1)
    assert _error_code(lambda: s3_client.head_bucket(Bucket=bucket)) == "404"


async def test_wrong_credentials_are_refused(
    endpoint: S3Endpoint, provisioner: BucketProvisioner, bucket_names: Callable[[], str]
) -> None:
    bucket = bucket_names()
    for wrong in (
        S3Endpoint(endpoint.endpoint_url, endpoint.region, endpoint.access_key_id, "wrong", "S"),
        S3Endpoint(endpoint.endpoint_url, endpoint.region, "NOSUCHKEY", "wrong", "S"),
    ):
        with pytest.raises(Refused, match=r"rejected the credentials in S .*check accessKeyId"):
            await provisioner.ensure(wrong, bucket, RULES)
        with pytest.raises(Refused) as caught:
            await provisioner.delete(wrong, bucket)
        assert not caught.value.transient
        assert isinstance(caught.value.__cause__, ClientError)


async def test_closed_port_is_unreachable_and_transient(provisioner: BucketProvisioner) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = S3Endpoint(f"http://127.0.0.1:{port}", "us-east-1", "key", "secret")

    for call in (
        lambda: provisioner.ensure(closed, "mpt-closed", RULES),
        lambda: provisioner.delete(closed, "mpt-closed"),
    ):
        with pytest.raises(Unreachable) as caught:
            await call()
        assert caught.value.transient
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert isinstance(caught.value.__cause__, EndpointConnectionError)


async def test_invalid_bucket_name_is_refused_before_any_call(
    endpoint: S3Endpoint, provisioner: BucketProvisioner
) -> None:
    with pytest.raises(Refused, match=r"media\.bucket"):
        await provisioner.ensure(endpoint, "Not_A_Bucket", [])
