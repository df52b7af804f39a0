"""The MobilePlatform CRD on the real API server: examples accepted, bad specs refused."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "mobileplane.io", "v1alpha1", "mobileplatforms"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "crds" / "examples" / name).read_text())
    return doc


@pytest.fixture(scope="session")
def mobileplatform_crd(kube_api: k8s.ApiClient) -> str:
    """The CRD from crds/, applied server-side (idempotent; shared by the session)."""
    body = yaml.safe_load((ROOT / "crds" / "mobileplatform.yaml").read_text())
    api = k8s.ApiextensionsV1Api(kube_api)
    name = body["metadata"]["name"]
    crds = DynamicClient(kube_api).resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    crds.server_side_apply(body=body, field_manager="mobileplane-tests", force_conflicts=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = api.read_custom_resource_definition(name)
        conditions = crd.status.conditions or [] if crd.status else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return name
        time.sleep(0.2)
    raise AssertionError("the MobilePlatform CRD did not become Established")


def _create(kube_api: k8s.ApiClient, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    api = k8s.CustomObjectsApi(kube_api)
    created: dict[str, Any] = api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, obj
    )
    return created


@pytest.mark.parametrize("example", ["minimal.yaml", "complete.yaml"])
def test_examples_are_accepted(
    kube_api: k8s.ApiClient, k8s_namespace: str, mobileplatform_crd: str, example: str
) -> None:
    created = _create(kube_api, k8s_namespace, _load(example))
    spec = created["spec"]
    # The API server filled in the defaults from the schema.
    assert spec["services"]["gateway"]["replicas"] >= 1
    assert spec["database"]["deletionPolicy"] in ("Retain", "Delete")
    assert spec["auth"]["signingAlgorithm"] == "ES256"
    assert spec["telemetry"]["crashFreeSessions"]["critical"] <= 99.5


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node = out["spec"]
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return out


INVALID = [
    pytest.param("app.redirectURIs", ["http://localhost/cb"], "RFC 8252", id="localhost-redirect"),
    pytest.param("app.redirectURIs", ["myapp:/cb"], "RFC 8252", id="non-reverse-dns-scheme"),
    pytest.param("app.ios", None, "ios or an android", id="no-app-identity"),
    pytest.param("app.ios.bundleIds", ["not a bundle"], "bundleIds", id="bad-bundle-id"),
    pytest.param("services.gateway.enabled", False, "gateway cannot be disabled", id="no-gateway"),
    pytest.param(
        "services.notifications.enabled",
        True,
        "does not ship the notifications service yet",
        id="unshipped-notifications",
    ),
    pytest.param(
        "services.auth.autoscaling",
        {"enabled": True, "minReplicas": 4, "maxReplicas": 2},
        "maxReplicas must be at least minReplicas",
        id="autoscaling-bounds",
    ),
    pytest.param("services.sync.replicas", 1000, "sync.replicas", id="too-many-replicas"),
    pytest.param("database.mode", "External", "database.external is required", id="external-db"),
    pytest.param("database.name", "Bad-Name", "database.name", id="bad-db-name"),
    pytest.param("cache.mode", "External", "cache.urlSecretRef is required", id="external-cache"),
    pytest.param("backups.enabled", True, "backups need a target", id="backups-without-target"),
    pytest.param(
        "telemetry.crashFreeSessions",
        {"target": 98, "critical": 99},
        "critical must not exceed target",
        id="stability-targets",
    ),
    pytest.param(
        "push.apns",
        {
            "keySecretRef": {"name": "a", "key": "k"},
            "keyId": "ABC123DEFG",
            "teamId": "ABCDE12345",
            "topic": "com.other.app",
        },
        "push.apns.topic must be one of app.ios.bundleIds",
        id="apns-topic",
    ),
    pytest.param("nonsense", 1, "unknown field", id="unknown-field"),
]


@pytest.mark.parametrize(("path", "value", "message"), INVALID)
def test_invalid_specs_are_refused_with_a_reason(
    kube_api: k8s.ApiClient,
    k8s_namespace: str,
    mobileplatform_crd: str,
    path: str,
    value: Any,
    message: str,
) -> None:
    obj = _with(_load("minimal.yaml"), path, value)
    if value is None:
        obj = copy.deepcopy(obj)
        obj["spec"]["app"].pop("ios")
    with pytest.raises(k8s.ApiException) as refused:
        api = k8s.CustomObjectsApi(kube_api)
        api.create_namespaced_custom_object(
            GROUP, VERSION, k8s_namespace, PLURAL, obj, field_validation="Strict"
        )
    assert refused.value.status in (400, 422)
    assert message in str(refused.value.body)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param({"database": {"name": "renamed"}}, "database.name is immutable", id="db-name"),
        pytest.param(
            {"media": {"bucket": "other-bucket"}}, "media.bucket is immutable", id="bucket"
        ),
    ],
)
def test_immutable_fields(
    kube_api: k8s.ApiClient,
    k8s_namespace: str,
    mobileplatform_crd: str,
    patch: dict[str, Any],
    message: str,
) -> None:
    obj = _load("minimal.yaml")
    obj["spec"]["database"] = {"name": "hello_db"}
    obj["spec"]["media"] = {"bucket": "hello-media", "credentialsSecretRef": {"name": "m"}}
    _create(kube_api, k8s_namespace, obj)
    api = k8s.CustomObjectsApi(kube_api)
    with pytest.raises(k8s.ApiException) as refused:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, k8s_namespace, PLURAL, "hello", {"spec": patch}
        )
    assert refused.value.status == 422
    assert message in str(refused.value.body)
