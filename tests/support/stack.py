"""The settings of the real components the tests run against.

By default these are the local stack's (``mobileplane stack up``). A missing stack is an
error with the command to run, never a skip: a smoke test that silently skips proves nothing.
With ``MOBILEPLANE_USE_EXISTING_CLUSTER=true`` the Kubernetes tests use the cluster of the
ambient ``KUBECONFIG`` instead (like envtest's ``USE_EXISTING_CLUSTER``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from mobileplane.stack import manager
from mobileplane.stack.progress import Progress


@dataclass(frozen=True)
class StackSettings:
    database_url: str
    redis_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    unleash_url: str
    unleash_api_token: str
    unleash_admin_token: str
    kubeconfig: str


def use_existing_cluster() -> bool:
    return os.environ.get("MOBILEPLANE_USE_EXISTING_CLUSTER", "").lower() in ("1", "true", "yes")


def _require(needed: list[str]) -> None:
    statuses = {s.name: s for s in manager.status()}
    down = [f"{n} ({statuses[n].detail})" for n in needed if not statuses[n].running]
    if down:
        pytest.fail(
            "the local stack is not running: " + "; ".join(down) + "\n"
            "start it with `mobileplane stack up` (or run the README's test command)",
            pytrace=False,
        )


@cache
def require_kube() -> None:
    """Fail (never skip) unless the stack's Kubernetes API is up; an existing cluster is the
    caller's to provide."""
    if not use_existing_cluster():
        _require(["kube"])


@cache
def settings() -> StackSettings:
    """The data components every integration test may use; Kubernetes is checked on its own
    (:func:`require_kube`), so service tests do not wait for a control plane they never use."""
    _require(["postgres", "redis", "s3", "unleash"])
    env = manager.env()
    kubeconfig = env["KUBECONFIG"]
    if use_existing_cluster():
        kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    return StackSettings(
        database_url=env["DATABASE_URL"],
        redis_url=env["REDIS_URL"],
        s3_endpoint=env["AWS_ENDPOINT_URL"],
        s3_access_key=env["AWS_ACCESS_KEY_ID"],
        s3_secret_key=env["AWS_SECRET_ACCESS_KEY"],
        s3_region=env["AWS_REGION"],
        unleash_url=env["UNLEASH_URL"],
        unleash_api_token=env["UNLEASH_API_TOKEN"],
        unleash_admin_token=env["UNLEASH_ADMIN_TOKEN"],
        kubeconfig=kubeconfig,
    )


@cache
def seaweedfs_endpoint() -> str:
    """The stack's second S3 server (SeaweedFS), which implements default encryption and
    lifecycle; it takes the same credentials as the main one."""
    _require(["seaweedfs"])
    return manager.env()["MOBILEPLANE_SEAWEEDFS_ENDPOINT"]


def component_data_dir(component: str) -> Path:
    """Where a stack component keeps its data (tests look at what is stored at rest)."""
    return manager.context(Progress(quiet=True)).config.component_state(component) / "data"


@dataclass(frozen=True)
class NodeSettings:
    """The stack's real node: its name, its address (where pods reach the host services)."""

    name: str
    ip: str
    containerd: str
    postgres_port: int
    pod_database_url: str


@cache
def require_node() -> NodeSettings:
    """Fail (never skip) unless the real node is Ready and its check pods resolve and reach a
    Service. ``MOBILEPLANE_REAL_NODE=off`` (a stack run without one, on purpose) skips."""
    if os.environ.get("MOBILEPLANE_REAL_NODE", "on").lower() in ("off", "0", "false", "no"):
        pytest.skip("MOBILEPLANE_REAL_NODE=off: this stack runs without a real node")
    _require(["kube", "node"])
    env = manager.env()
    return NodeSettings(
        name=env["MOBILEPLANE_NODE_NAME"],
        ip=env["MOBILEPLANE_NODE_IP"],
        containerd=env["MOBILEPLANE_NODE_CONTAINERD"],
        postgres_port=int(env["PGPORT"]),
        pod_database_url=env["MOBILEPLANE_POD_DATABASE_URL"],
    )
