"""Running the MobilePlatform operator in tests, as its chart's ServiceAccount.

The operator runs in-process with ``kopf.testing.KopfRunner``, but authenticated as the
ServiceAccount that ``charts/mobileplane`` defines, bound to the chart's ClusterRole: a
permission missing from the chart makes these tests fail, as it would in a real cluster.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient

from mobileplane.stack import manager

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "mobileplane.io", "v1alpha1", "mobileplatforms"
T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float = 60, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def apply(kube_api: k8s.ApiClient, obj: dict[str, Any], namespace: str | None = None) -> None:
    resource = DynamicClient(kube_api).resources.get(
        api_version=obj["apiVersion"], kind=obj["kind"]
    )
    resource.server_side_apply(
        body=obj,
        namespace=namespace or obj["metadata"].get("namespace"),
        field_manager="mobileplane-tests",
        force_conflicts=True,
    )


def install_crds(kube_api: k8s.ApiClient) -> None:
    for path in sorted((ROOT / "charts" / "mobileplane" / "crds").glob("*.yaml")):
        apply(kube_api, yaml.safe_load(path.read_text()))
    ext = k8s.ApiextensionsV1Api(kube_api)

    def established() -> bool:
        names = ["mobileplatforms.mobileplane.io", "clusterkopfpeerings.kopf.dev"]
        for name in names:
            crd = ext.read_custom_resource_definition(name)
            conditions = (crd.status.conditions or []) if crd.status else []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    eventually(established, 30, "the CRDs to be Established")


def chart_objects(namespace: str, sa_name: str) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC, rendered by the real helm."""
    helm = os.environ.get("HELM") or manager.env()["HELM"]
    out = subprocess.run(
        [
            helm,
            "template",
            "mp",
            str(ROOT / "charts" / "mobileplane"),
            "--namespace",
            namespace,
            "--set",
            f"serviceAccount.name={sa_name}",
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/rbac.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def operator_kubeconfig(kube_api: k8s.ApiClient, namespace: str, sa_name: str, path: Path) -> Path:
    """A kubeconfig holding a token of the operator's ServiceAccount."""
    core = k8s.CoreV1Api(kube_api)
    token = core.create_namespaced_service_account_token(
        sa_name,
        namespace,
        k8s.AuthenticationV1TokenRequest(
            spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    conf = kube_api.configuration
    ca = base64.b64encode(Path(conf.ssl_ca_cert).read_bytes()).decode()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "operator",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": conf.host, "certificate-authority-data": ca},
                    }
                ],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [{"name": "operator", "context": {"cluster": "c", "user": "operator"}}],
            }
        )
    )
    return path


@contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def get_platform(kube_api: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = k8s.CustomObjectsApi(kube_api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except k8s.ApiException as e:
        if e.status == 404:
            return None
        raise
    return obj


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


@contextmanager
def volume_for(kube_api: k8s.ApiClient, namespace: str, claim: str) -> Iterator[None]:
    """A PersistentVolume pre-bound to ``claim``: the stack's cluster has no provisioner.

    (kind and real clusters have a default StorageClass that provisions one; kwok's fake
    nodes have no storage, so the test plays the provisioner for the in-cluster PostgreSQL.)
    """
    core = k8s.CoreV1Api(kube_api)
    digest = hashlib.sha256(f"{namespace}/{claim}".encode()).hexdigest()[:12]
    name = f"pv-{digest}-{claim}"[:63].rstrip("-")
    core.create_persistent_volume(
        k8s.V1PersistentVolume(
            metadata=k8s.V1ObjectMeta(name=name),
            spec=k8s.V1PersistentVolumeSpec(
                capacity={"storage": "10Gi"},
                access_modes=["ReadWriteOnce"],
                persistent_volume_reclaim_policy="Delete",
                host_path=k8s.V1HostPathVolumeSource(path=f"/tmp/{name}"),
                claim_ref=k8s.V1ObjectReference(namespace=namespace, name=claim),
            ),
        )
    )
    try:
        yield
    finally:
        try:
            core.delete_persistent_volume(name)
        except k8s.ApiException as e:
            if e.status != 404:
                raise
