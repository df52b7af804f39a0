"""Third-party failures become provisioning errors that say whether a retry can help."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from mobileplane.operator.provision.buckets import s3_error
from mobileplane.operator.provision.errors import (
    InProgress,
    ProvisioningError,
    Refused,
    Unreachable,
)
from mobileplane.operator.provision.models import AdminConnection, S3Endpoint
from mobileplane.operator.provision.postgres import connection_error, query_error

ADMIN = AdminConnection(
    host="db.example", port=5432, user="root", password="pw", source="Secret shop/pg-admin"
)
ENDPOINT = S3Endpoint("http://s3.example", "us-east-1", "AK", "SK", source="Secret shop/media")


def test_error_classes_say_what_happens_next() -> None:
    assert Unreachable("x").transient and Unreachable("x").reason == "Unreachable"
    assert not Refused("x").transient and Refused("x").reason == "Refused"
    assert InProgress("x").transient and InProgress("x").retry_after == 1.0
    assert ProvisioningError("x").transient
    assert not ProvisioningError("x", transient=False).transient
    assert ProvisioningError("x", retry_after=5).retry_after == 5


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind", "says"),
    [
        pytest.param(
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
            "Connection refused\n\tIs the server running on that host?",
            Unreachable,
            "check host and port in Secret shop/pg-admin",
            id="refused",
        ),
        pytest.param(
            "failed to resolve host 'db.example': [Errno -2] Name or service not known",
            Unreachable,
            "cannot reach PostgreSQL at db.example:5432",
            id="dns",
        ),
        pytest.param("connection timeout expired", Unreachable, "retrying", id="timeout"),
        pytest.param(
            "connection failed: FATAL:  sorry, too many clients already",
            Unreachable,
            "retrying",
            id="too-many-clients",
        ),
        pytest.param(
            'connection failed: FATAL:  password authentication failed for user "root"',
            Refused,
            "check username and password in Secret shop/pg-admin",
            id="bad-password",
        ),
        pytest.param(
            'connection failed: FATAL:  no pg_hba.conf entry for host "10.1.2.3"',
            Refused,
            "pg_hba.conf",
            id="pg-hba",
        ),
        pytest.param(
            'connection failed: FATAL:  database "ops" does not exist',
            Refused,
            "check username and database",
            id="no-database",
        ),
        pytest.param(
            'connection failed: connection to server at "::1", port 5432 failed: Connection '
            'refused\nconnection to server at "127.0.0.1", port 5432 failed: FATAL:  password '
            'authentication failed for user "root"',
            Refused,
            "127.0.0.1",
            id="second-address-tells",
        ),
        pytest.param(
            "connection failed: server does not support SSL, but SSL was required",
            Refused,
            "sslmode",
            id="ssl-required",
        ),
    ],
)
def test_connection_failures(message: str, kind: type[ProvisioningError], says: str) -> None:
    error = connection_error(psycopg.OperationalError(message), ADMIN, "postgres")
    assert type(error) is kind
    assert says in str(error)


@pytest.mark.parametrize(
    ("error", "kind", "transient", "says"),
    [
        pytest.param(
            psycopg.errors.InsufficientPrivilege("permission denied to create database"),
            Refused,
            False,
            "the admin role 'root' in Secret shop/pg-admin may not create database 'shop' "
            "(permission denied to create database): grant it CREATEDB or use a superuser",
            id="privilege",
        ),
        pytest.param(
            psycopg.OperationalError("server closed the connection unexpectedly"),
            Unreachable,
            True,
            "lost the connection to PostgreSQL at db.example:5432",
            id="connection-lost",
        ),
        pytest.param(
            psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
            Unreachable,
            True,
            "lost the connection",
            id="admin-shutdown",
        ),
        pytest.param(
            psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
            ProvisioningError,
            True,
            "SQLSTATE 55P03",
            id="lock-timeout",
        ),
        pytest.param(
            psycopg.errors.ObjectInUse("source database is being accessed by other users"),
            ProvisioningError,
            True,
            "could not create database 'shop' now",
            id="in-use",
        ),
        pytest.param(
            psycopg.ProgrammingError("the query has 1 placeholder but 0 parameters"),
            ProvisioningError,
            False,
            "refused to create database 'shop'",
            id="client-side-bug",
        ),
        pytest.param(
            psycopg.errors.InvalidParameterValue("encoding UTF8 does not match locale"),
            ProvisioningError,
            False,
            "SQLSTATE 22023",
            id="permanent-other",
        ),
    ],
)
def test_statement_failures(
    error: psycopg.Error, kind: type[ProvisioningError], transient: bool, says: str
) -> None:
    mapped = query_error(
        error,
        ADMIN,
        doing="create database 'shop'",
        hint="grant it CREATEDB or use a superuser",
    )
    assert type(mapped) is kind
    assert mapped.transient is transient
    assert says in str(mapped)


# -- S3 --------------------------------------------------------------------------------------


def _client_error(code: str, status: int, operation: str = "CreateBucket") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} message"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("error", "kind", "transient", "says"),
    [
        pytest.param(
            EndpointConnectionError(endpoint_url="http://s3.example/b"),
            Unreachable,
            True,
            "cannot reach S3 at http://s3.example",
            id="connection-refused",
        ),
        pytest.param(
            ReadTimeoutError(endpoint_url="http://s3.example/b"),
            Unreachable,
            True,
            "retrying",
            id="read-timeout",
        ),
        pytest.param(
            _client_error("SignatureDoesNotMatch", 403),
            Refused,
            False,
            "rejected the credentials in Secret shop/media",
            id="bad-secret",
        ),
        pytest.param(
            _client_error("InvalidAccessKeyId", 403),
            Refused,
            False,
            "check accessKeyId and secretAccessKey",
            id="unknown-key-aws",
        ),
        pytest.param(
            _client_error("XAdminUserNotFound", 404),
            Refused,
            False,
            "check accessKeyId and secretAccessKey",
            id="unknown-key-versitygw",
        ),
        pytest.param(
            _client_error("AccessDenied", 403),
            Refused,
            False,
            "may not create bucket 'media'",
            id="access-denied",
        ),
        pytest.param(
            _client_error("BucketAlreadyExists", 409),
            Refused,
            False,
            "taken by another account",
            id="someone-elses-bucket",
        ),
        pytest.param(
            _client_error("InvalidBucketName", 400),
            Refused,
            False,
            "fix media.bucket",
            id="invalid-name",
        ),
        pytest.param(
            _client_error("IllegalLocationConstraintException", 400),
            Refused,
            False,
            "fix media.region",
            id="wrong-region",
        ),
        pytest.param(
            _client_error("NotImplemented", 501),
            Refused,
            False,
            "does not implement",
            id="not-implemented",
        ),
        pytest.param(
            _client_error("SlowDown", 503),
            ProvisioningError,
            True,
            "retrying",
            id="slow-down",
        ),
        pytest.param(
            _client_error("InternalError", 500),
            ProvisioningError,
            True,
            "retrying",
            id="internal-error",
        ),
        pytest.param(
            NoCredentialsError(),
            Refused,
            False,
            "set accessKeyId and secretAccessKey in Secret shop/media",
            id="no-credentials",
        ),
    ],
)
def test_s3_failures(
    error: Exception, kind: type[ProvisioningError], transient: bool, says: str
) -> None:
    mapped = s3_error(error, ENDPOINT, doing="create bucket 'media'")
    assert type(mapped) is kind
    assert mapped.transient is transient
    assert says in str(mapped)
