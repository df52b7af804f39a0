"""In-cluster PostgreSQL and Redis, for platforms that do not bring their own.

Both are for development and small installations (the spec says so for the database): one
instance each, no replication, no failover. In mode External neither is rendered.

- **PostgreSQL** — a one-replica StatefulSet with a volume claim of
  ``spec.database.inCluster.storage`` and a headless Service ``<name>-postgres`` (the pod's
  stable DNS name is what services connect to). The official image creates the role and the
  database from ``POSTGRES_USER``/``POSTGRES_PASSWORD``/``POSTGRES_DB`` on first start, read
  from the generated ``<name>-database`` Secret, so the services' credentials and the
  server's agree by construction. ``PGDATA`` is a subdirectory of the volume: initdb refuses
  a non-empty directory and a fresh volume may hold ``lost+found``. The claim follows
  ``spec.database.deletionPolicy``: Delete removes it with the StatefulSet, Retain keeps it.
- **Redis** — a one-replica Deployment and Service ``<name>-redis``. Redis also carries queues
  (the profiles outbox relays to a Stream), so append-only persistence is on, into an ``emptyDir``:
  it survives a container restart (the common failure), not a pod's rescheduling. The
  Deployment recreates rather than surges, so two Redis never share the name.
"""

from __future__ import annotations

import copy
from typing import Any

from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.names import child_name, labels, metadata, selector
from mobileplane.operator.render.pods import (
    DATASTORE_UID,
    container_security_context,
    env_secret,
    env_value,
    pod_spec,
    tmp_volume,
)
from mobileplane.operator.render.secrets import (
    DB_NAME,
    DB_PASSWORD,
    DB_USERNAME,
    database_secret_name,
)
from mobileplane.operator.spec import CacheMode, DatabaseMode

POSTGRES_PORT = 5432
REDIS_PORT = 6379
#: Redis 7, as the local stack runs; the spec has no field for it (the cache is a cache).
REDIS_IMAGE = "redis:7.2"
DATA_DIR = "/var/lib/postgresql/data"

#: Small, as befits a development database; memory is limited so a runaway query is killed
#: rather than the node starved.
POSTGRES_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
REDIS_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}


def _pg_isready() -> dict[str, Any]:
    script = 'pg_isready -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'
    return {"exec": {"command": ["sh", "-c", script]}}


def postgres_statefulset(inp: RenderInput) -> dict[str, Any]:
    """The in-cluster PostgreSQL server."""
    platform, db = inp.platform, inp.spec.database
    name = child_name(platform, "postgres")
    secret = database_secret_name(inp.platform)
    tmp, tmp_mount = tmp_volume("64Mi")
    container = {
        "name": "postgres",
        "image": db.in_cluster.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "env": [
            env_secret("POSTGRES_USER", secret, DB_USERNAME),
            env_secret("POSTGRES_PASSWORD", secret, DB_PASSWORD),
            env_secret("POSTGRES_DB", secret, DB_NAME),
            env_value("PGDATA", f"{DATA_DIR}/pgdata"),
        ],
        # initdb and crash recovery may take minutes: liveness waits for the first success.
        "startupProbe": {**_pg_isready(), "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {**_pg_isready(), "periodSeconds": 5, "timeoutSeconds": 3},
        "livenessProbe": {
            "tcpSocket": {"port": "postgres"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": copy.deepcopy(POSTGRES_RESOURCES),
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "run", "mountPath": "/var/run/postgresql"},  # the Unix socket
            tmp_mount,
        ],
    }
    volumes = [{"name": "run", "emptyDir": {}}, tmp]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(platform, name, "postgres"),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector(platform, "postgres")},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": db.deletion_policy.value,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": labels(platform, "postgres")},
                "spec": pod_spec(
                    [container],
                    volumes,
                    uid=DATASTORE_UID,
                    placement=inp.spec.scheduling.pod_fields(),
                ),
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": labels(platform, "postgres")},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": db.in_cluster.storage}},
                    },
                }
            ],
        },
    }


def postgres_service(inp: RenderInput) -> dict[str, Any]:
    """The headless Service naming the PostgreSQL pod."""
    platform = inp.platform
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(platform, child_name(platform, "postgres"), "postgres"),
        "spec": {
            "clusterIP": "None",
            "selector": selector(platform, "postgres"),
            "ports": [
                {
                    "name": "postgres",
                    "port": POSTGRES_PORT,
                    "targetPort": "postgres",
                    "protocol": "TCP",
                }
            ],
        },
    }


def redis_deployment(inp: RenderInput) -> dict[str, Any]:
    """The in-cluster Redis."""
    platform = inp.platform
    tmp, tmp_mount = tmp_volume("16Mi")
    container = {
        "name": "redis",
        "image": REDIS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--appendonly", "yes", "--dir", "/data", "--protected-mode", "no"],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", "redis-cli ping | grep -q PONG"]},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
        },
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
        "resources": copy.deepcopy(REDIS_RESOURCES),
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, tmp_mount],
    }
    volumes = [{"name": "data", "emptyDir": {}}, tmp]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(platform, child_name(platform, "redis"), "redis"),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(platform, "redis")},
            "template": {
                "metadata": {"labels": labels(platform, "redis")},
                "spec": pod_spec(
                    [container],
                    volumes,
                    uid=DATASTORE_UID,
                    placement=inp.spec.scheduling.pod_fields(),
                ),
            },
        },
    }


def redis_service(inp: RenderInput) -> dict[str, Any]:
    platform = inp.platform
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(platform, child_name(platform, "redis"), "redis"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(platform, "redis"),
            "ports": [
                {"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}
            ],
        },
    }


def datastore_children(inp: RenderInput) -> list[dict[str, Any]]:
    """The in-cluster data stores the spec asks for (none in mode External)."""
    out: list[dict[str, Any]] = []
    if inp.spec.database.mode == DatabaseMode.IN_CLUSTER:
        out += [postgres_statefulset(inp), postgres_service(inp)]
    if inp.spec.cache.mode == CacheMode.IN_CLUSTER:
        out += [redis_deployment(inp), redis_service(inp)]
    return out
