"""Per-test isolated resources on the real components of the local stack.

Every test that asks gets its own PostgreSQL database (cloned from a template with all
migrations applied), its own Redis key prefix, its own S3 bucket, its own Kubernetes
namespace and its own Unleash flag-name prefix, and each is removed afterwards, so tests run
in any order and in parallel.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import psycopg
import pytest
import redis
import redis.asyncio
from botocore.config import Config as BotoConfig
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from psycopg import sql
from support.names import unique
from support.stack import StackSettings, require_kube, settings
from support.unleash import UnleashAdmin

from mobileplane.services.kit.migrate import MigrationSet, upgrade
from mobileplane.services.platform import platform_migrations

#: Tries at dropping a test's database (see ``database_url``).
DROP_ATTEMPTS = 5

#: Every service's migrations; the template database has all of them applied.
MIGRATION_SETS: tuple[MigrationSet, ...] = tuple(platform_migrations())


@pytest.fixture(scope="session")
def stack() -> StackSettings:
    return settings()


# -- PostgreSQL -----------------------------------------------------------------------------


def _with_db(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


def _migrations_fingerprint() -> str:
    digest = hashlib.sha256()
    for ms in MIGRATION_SETS:
        for path in sorted(ms.script_location.rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def template_database(stack: StackSettings) -> str:
    """A database with every migration applied, made once per migration content."""
    name = f"mp_template_{_migrations_fingerprint()}"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        # Parallel workers: the first makes the template, the others wait for it.
        conn.execute("SELECT pg_advisory_lock(727001)")
        try:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                building = f"{name}_building"
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(building)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
                for ms in MIGRATION_SETS:
                    upgrade(ms, _with_db(stack.database_url, building))
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(building), sql.Identifier(name)
                    )
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(727001)")
    return name


@pytest.fixture
def database_url(
    stack: StackSettings, template_database: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh database of this test's own, migrations applied (postgresql+psycopg URL)."""
    name = unique("t", request.node.name, max_len=60).replace("-", "_")
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    url = _with_db(stack.database_url, name).replace("postgresql://", "postgresql+psycopg://", 1)
    yield url
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        # An autovacuum worker on the database is a session FORCE may not end (the error says
        # "must be a member of the role whose process is being terminated"); it finishes in
        # moments, so try again, as the operator's provisioner does.
        for attempt in range(DROP_ATTEMPTS):
            try:
                conn.execute(drop)
                break
            except psycopg.errors.InsufficientPrivilege:
                if attempt == DROP_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))


# -- Redis ----------------------------------------------------------------------------------


@pytest.fixture
def redis_url(stack: StackSettings) -> str:
    return stack.redis_url


@pytest.fixture
def redis_prefix(stack: StackSettings, request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = unique("t", request.node.name) + ":"
    yield prefix
    client = redis.Redis.from_url(stack.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


# -- S3 -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_config(stack: StackSettings) -> dict[str, str]:
    return {
        "endpoint_url": stack.s3_endpoint,
        "access_key_id": stack.s3_access_key,
        "secret_access_key": stack.s3_secret_key,
        "region": stack.s3_region,
    }


@pytest.fixture(scope="session")
def s3_client(stack: StackSettings) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name=stack.s3_region,
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture
def s3_bucket(s3_client: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A bucket of this test's own, emptied and deleted afterwards."""
    name = unique("t", request.node.name, max_len=63)
    s3_client.create_bucket(Bucket=name)
    yield name
    uploads = s3_client.list_multipart_uploads(Bucket=name).get("Uploads", [])
    for up in uploads:
        s3_client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3_client.delete_object(Bucket=name, Key=obj["Key"])
    s3_client.delete_bucket(Bucket=name)


# -- Kubernetes -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube_api(stack: StackSettings) -> Iterator[k8s.ApiClient]:
    """An API client for the stack's cluster (or the existing one), as cluster admin."""
    require_kube()
    api = k8s_config.new_client_from_config(config_file=stack.kubeconfig)
    yield api
    api.close()


@pytest.fixture
def k8s_namespace(kube_api: k8s.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of this test's own, deleted afterwards (without waiting for it to go)."""
    core = k8s.CoreV1Api(kube_api)
    name = unique("t", request.node.name, max_len=63)
    core.create_namespace(
        k8s.V1Namespace(
            metadata=k8s.V1ObjectMeta(name=name, labels={"mobileplane.io/test": "true"})
        )
    )
    yield name
    try:
        core.delete_namespace(name)
    except k8s.ApiException as e:
        if e.status != 404:
            raise


# -- Unleash --------------------------------------------------------------------------------


@pytest.fixture
def unleash_admin(stack: StackSettings, request: pytest.FixtureRequest) -> Iterator[UnleashAdmin]:
    """Admin API access with a flag-name prefix of this test's own (OSS has one project)."""
    admin = UnleashAdmin(
        stack.unleash_url, stack.unleash_admin_token, unique("t", request.node.name) + "."
    )
    yield admin
    admin.cleanup()
