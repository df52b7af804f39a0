"""The bucket provisioner's handling of answers the stack's server never gives.

A stubbed boto3 client (botocore's Stubber) plays AWS: a name owned by another account, a
server that takes a setting but cannot show it back, one that silently ignores part of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mobileplane.operator.provision import (
    ENCRYPTION,
    LIFECYCLE,
    PUBLIC_ACCESS_BLOCK,
    BucketProvisioner,
    ProvisioningError,
    Refused,
    S3Endpoint,
)
from mobileplane.operator.spec import LifecycleRule

ENDPOINT = S3Endpoint(None, "us-east-1", "AKIAEXAMPLE", "secret", source="Secret shop/media")
RULES = [LifecycleRule(id="tmp", prefix="tmp/", expiration_days=7)]
ENCRYPTION_CONFIG = {
    "ServerSideEncryptionConfiguration": {
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
}
BLOCKED = {
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
}


@pytest.fixture
def stubbed() -> Iterator[tuple[BucketProvisioner, Stubber]]:
    client = boto3.session.Session().client(
        "s3", region_name="us-east-1", aws_access_key_id="AK", aws_secret_access_key="SK"
    )
    stubber = Stubber(client)
    with stubber:
        yield BucketProvisioner(client_factory=lambda _endpoint: client), stubber
    stubber.assert_no_pending_responses()


def _ok(stubber: Stubber, operation: str, response: dict[str, Any] | None = None) -> None:
    stubber.add_response(operation, response or {}, None)


def _fail(stubber: Stubber, operation: str, code: str, status: int) -> None:
    stubber.add_client_error(operation, code, f"{code} message", status)


async def test_a_name_owned_by_another_account_is_refused(
    stubbed: tuple[BucketProvisioner, Stubber],
) -> None:
    provisioner, stubber = stubbed
    _fail(stubber, "head_bucket", "403", 403)
    _fail(stubber, "create_bucket", "BucketAlreadyExists", 409)

    with pytest.raises(Refused, match=r"taken by another .*: choose another media\.bucket"):
        await provisioner.ensure(ENDPOINT, "media", RULES)


async def test_an_existing_bucket_of_ours_is_configured_not_created(
    stubbed: tuple[BucketProvisioner, Stubber],
) -> None:
    provisioner, stubber = stubbed
    _ok(stubber, "head_bucket")
    _ok(stubber, "put_bucket_encryption")
    _ok(stubber, "get_bucket_encryption", ENCRYPTION_CONFIG)
    _ok(stubber, "put_public_access_block")
    _ok(stubber, "get_public_access_block", BLOCKED)
    _ok(stubber, "put_bucket_lifecycle_configuration")
    _ok(
        stubber,
        "get_bucket_lifecycle_configuration",
        {
            "Rules": [
                {
                    "ID": "tmp",
                    "Filter": {"Prefix": "tmp/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 7},
                }
            ]
        },
    )

    info = await provisioner.ensure(ENDPOINT, "media", RULES)

    assert not info.created
    assert info.applied == (ENCRYPTION, PUBLIC_ACCESS_BLOCK, LIFECYCLE)
    assert info.unsupported == info.unverified == info.notes == ()


async def test_a_setting_that_cannot_be_read_back_is_unverified(
    stubbed: tuple[BucketProvisioner, Stubber],
) -> None:
    provisioner, stubber = stubbed
    _fail(stubber, "head_bucket", "404", 404)
    _ok(stubber, "create_bucket")
    _ok(stubber, "put_bucket_encryption")
    _fail(stubber, "get_bucket_encryption", "NotImplemented", 501)
    _fail(stubber, "put_public_access_block", "NotImplemented", 501)
    _ok(stubber, "delete_bucket_lifecycle")

    info = await provisioner.ensure(ENDPOINT, "media", [])

    assert info.created
    assert info.applied == (LIFECYCLE,)
    assert info.unverified == (ENCRYPTION,)
    assert info.unsupported == (PUBLIC_ACCESS_BLOCK,)
    assert info.notes == (
        "encryption: set, but GetBucketEncryption answered NotImplemented (HTTP 501)",
        "public-access-block: PutPublicAccessBlock answered NotImplemented (HTTP 501)",
    )


async def test_a_setting_read_back_otherwise_is_an_error(
    stubbed: tuple[BucketProvisioner, Stubber],
) -> None:
    provisioner, stubber = stubbed
    _ok(stubber, "head_bucket")
    _ok(stubber, "put_bucket_encryption")
    _ok(stubber, "get_bucket_encryption", ENCRYPTION_CONFIG)
    _ok(stubber, "put_public_access_block")
    half = {"PublicAccessBlockConfiguration": {"BlockPublicAcls": True}}
    _ok(stubber, "get_public_access_block", half)

    with pytest.raises(ProvisioningError, match="ignores part of the setting") as caught:
        await provisioner.ensure(ENDPOINT, "media", RULES)
    assert not caught.value.transient


async def test_delete_of_a_versioned_bucket_removes_versions_and_markers(
    stubbed: tuple[BucketProvisioner, Stubber],
) -> None:
    provisioner, stubber = stubbed
    _ok(stubber, "list_objects_v2", {"KeyCount": 1})
    _ok(stubber, "list_multipart_uploads", {"Uploads": []})
    _ok(stubber, "get_bucket_versioning", {"Status": "Suspended"})
    _ok(
        stubber,
        "list_object_versions",
        {
            "Versions": [{"Key": "a", "VersionId": "v1"}, {"Key": "a", "VersionId": "v2"}],
            "DeleteMarkers": [{"Key": "b", "VersionId": "m1"}],
        },
    )
    stubber.add_response(
        "delete_objects",
        {},
        {
            "Bucket": "media",
            "Delete": {
                "Objects": [
                    {"Key": "a", "VersionId": "v1"},
                    {"Key": "a", "VersionId": "v2"},
                    {"Key": "b", "VersionId": "m1"},
                ],
                "Quiet": True,
            },
        },
    )
    _ok(stubber, "list_object_versions", {})
    _ok(stubber, "delete_bucket")

    deleted = await provisioner.delete(ENDPOINT, "media")

    assert (deleted.existed, deleted.objects_deleted) == (True, 3)
