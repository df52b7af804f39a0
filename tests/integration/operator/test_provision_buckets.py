"""The bucket provisioner against the stack's two real S3 servers: versitygw and SeaweedFS.

What a server implements varies (see :mod:`support.s3_servers`): each setting the
provisioner reports as applied is read back here with a plain client, and each it reports
as unsupported must indeed be answered NotImplemented by the server — so the report is
checked either way, on every server, and compared with what the server is known to do.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from support.s3_servers import IMPLEMENTS, S3Server, files_containing
from support.stack import StackSettings, component_data_dir, seaweedfs_endpoint

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


@pytest.fixture(scope="module", params=["versitygw", "seaweedfs"])
def server(request: pytest.FixtureRequest, endpoint: S3Endpoint) -> S3Server:
    """Each S3 server in turn (same credentials); tests that take it run once per server."""
    name = request.param
    if name == "seaweedfs":
        endpoint = S3Endpoint(
            endpoint_url=seaweedfs_endpoint(),
            region=endpoint.region,
            access_key_id=endpoint.access_key_id,
            secret_access_key=endpoint.secret_access_key,
            source=endpoint.source,
        )
    component = "s3" if name == "versitygw" else name
    return S3Server(name, endpoint, IMPLEMENTS[name], component_data_dir(component))


@pytest.fixture
def provisioner() -> BucketProvisioner:
    return BucketProvisioner()


def _names(
    endpoint: S3Endpoint, provisioner: BucketProvisioner
) -> tuple[Callable[[], str], list[str]]:
    made: list[str] = []

    def new() -> str:
        made.append(f"mpt-{uuid.uuid4().hex[:12]}")
        return made[-1]

    return new, made


@pytest.fixture
async def bucket_names(
    endpoint: S3Endpoint, provisioner: BucketProvisioner
) -> AsyncIterator[Callable[[], str]]:
    """Hands out bucket names on versitygw; whatever they name is deleted afterwards."""
    new, made = _names(endpoint, provisioner)
    yield new
    for name in made:
        await provisioner.delete(endpoint, name)


@pytest.fixture
async def server_bucket_names(
    server: S3Server, provisioner: BucketProvisioner
) -> AsyncIterator[Callable[[], str]]:
    """Hands out bucket names on ``server``; whatever they name is deleted afterwards."""
    new, made = _names(server.endpoint, provisioner)
    yield new
    for name in made:
        await provisioner.delete(server.endpoint, name)


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
    server: S3Server, provisioner: BucketProvisioner, server_bucket_names: Callable[[], str]
) -> None:
    bucket = server_bucket_names()
    client = server.client()

    info = await provisioner.ensure(server.endpoint, bucket, RULES)

    assert info.bucket == bucket and info.created
    client.head_bucket(Bucket=bucket)
    _check_report(info, client, bucket, lifecycle=True)


async def test_each_server_gets_what_it_implements(
    server: S3Server, provisioner: BucketProvisioner, server_bucket_names: Callable[[], str]
) -> None:
    """Nothing a server implements is left out, nothing it lacks is claimed."""
    info = await provisioner.ensure(server.endpoint, server_bucket_names(), RULES)

    order = (ENCRYPTION, PUBLIC_ACCESS_BLOCK, LIFECYCLE)
    assert info.applied == tuple(s for s in order if s in server.implements)
    assert info.unsupported == tuple(s for s in order if s not in server.implements)
    assert info.unverified == ()
    calls = {
        ENCRYPTION: "PutBucketEncryption",
        PUBLIC_ACCESS_BLOCK: "PutPublicAccessBlock",
        LIFECYCLE: "PutBucketLifecycleConfiguration",
    }
    assert info.notes == tuple(
        f"{s}: {calls[s]} answered NotImplemented (HTTP 501)" for s in info.unsupported
    )


async def test_default_encryption_covers_objects_written_without_asking(
    server: S3Server, provisioner: BucketProvisioner, server_bucket_names: Callable[[], str]
) -> None:
    """Where encryption is applied, an upload that names no encryption (the services'
    presigned PUTs do not) is encrypted at rest: its bytes are in none of the server's files,
    while the same upload to a bucket without the setting is there in the clear."""
    encrypted, plain = server_bucket_names(), server_bucket_names()
    client = server.client()
    info = await provisioner.ensure(server.endpoint, encrypted, [])
    client.create_bucket(Bucket=plain)
    # Random bytes around a marker: incompressible, so a server's compression hides nothing.
    marker = f"mobileplane-at-rest-{uuid.uuid4().hex}".encode()
    body = os.urandom(4096) + marker + os.urandom(4096)
    for bucket in (encrypted, plain):
        client.put_object(
            Bucket=bucket, Key="avatars/u1", Body=body, ContentType="application/octet-stream"
        )

    head = client.head_object(Bucket=encrypted, Key="avatars/u1")
    assert client.get_object(Bucket=encrypted, Key="avatars/u1")["Body"].read() == body
    # Both servers name their files after the bucket (a directory; a volume collection).
    in_clear = [str(p) for p in files_containing(server.data_dir, marker)]
    assert any(plain in p for p in in_clear), f"no clear copy in {server.data_dir}"
    if ENCRYPTION in server.implements:
        assert ENCRYPTION in info.applied
        assert head.get("ServerSideEncryption") == "AES256"
        assert not [p for p in in_clear if encrypted in p], "stored in the clear"
    else:
        assert ENCRYPTION in info.unsupported


async def test_public_access_block_refuses_public_acls(
    server: S3Server, provisioner: BucketProvisioner, server_bucket_names: Callable[[], str]
) -> None:
    """Where the block is applied, a public-read object ACL is refused (BlockPublicAcls)."""
    bucket = server_bucket_names()
    client = server.client()
    info = await provisioner.ensure(server.endpoint, bucket, [])
    if PUBLIC_ACCESS_BLOCK not in server.implements:
        assert PUBLIC_ACCESS_BLOCK in info.unsupported
        return

    code = _error_code(
        lambda: client.put_object(Bucket=bucket, Key="public.jpg", Body=b"x", ACL="public-read")
    )

    assert code == "AccessDenied"
    assert _error_code(lambda: client.head_object(Bucket=bucket, Key="public.jpg")) == "404"


async def test_ensure_is_idempotent(
    server: S3Server, provisioner: BucketProvisioner, server_bucket_names: Callable[[], str]
) -> None:
    bucket = server_bucket_names()
    client = server.client()
    first = await provisioner.ensure(server.endpoint, bucket, RULES)
    client.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")

    second = await provisioner.ensure(server.endpoint, bucket, RULES)
    without_rules = await provisioner.ensure(server.endpoint, bucket, [])

    assert first.created and not second.created and not without_rules.created
    assert (second.applied, second.unsupported) == (first.applied, first.unsupported)
    assert client.get_object(Bucket=bucket, Key="kept.txt")["Body"].read() == b"kept"
    _check_report(without_rules, client, bucket, lifecycle=False)
    assert (LIFECYCLE in without_rules.applied) == (LIFECYCLE in server.implements)
    if LIFECYCLE in without_rules.applied:
        assert _error_code(lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket)) == (
            "NoSuchLifecycleConfiguration"
        )


async def test_delete_empties_and_removes_the_bucket(
    server: S3Server, provisioner: BucketProvisioner, server_bucket_names: Callable[[], str]
) -> None:
    endpoint, s3_client = server.endpoint, server.client()
    bucket = server_bucket_names()
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


@pytest.mark.parametrize("real", ["versitygw", "seaweedfs"])
async def test_wrong_credentials_are_refused(
    real: str, endpoint: S3Endpoint, provisioner: BucketProvisioner
) -> None:
    """On the real servers (the AWS stand-in takes any credentials)."""
    if real == "seaweedfs":
        endpoint = S3Endpoint(
            seaweedfs_endpoint(), endpoint.region, endpoint.access_key_id, "unused", "S"
        )
    bucket = f"mpt-{uuid.uuid4().hex[:12]}"
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
