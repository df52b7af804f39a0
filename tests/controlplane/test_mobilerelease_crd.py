"""The MobileRelease CRD on a real API server: examples apply, CEL refuses bad releases."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from support.operator import eventually

from mobileplane.operator.crdgen import GROUP, VERSION

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parents[2]
PLURAL = "mobilereleases"


@pytest.fixture(scope="module")
def release_crd(kube_api: k8s.ApiClient) -> None:
    body = yaml.safe_load((ROOT / "crds" / "mobilerelease.yaml").read_text())
    ext = k8s.ApiextensionsV1Api(kube_api)
    name = body["metadata"]["name"]
    try:
        existing = ext.read_custom_resource_definition(name)
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        ext.replace_custom_resource_definition(name, body)
    except ApiException as e:
        if e.status != 404:
            raise
        ext.create_custom_resource_definition(body)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        conditions = (crd.status.conditions or []) if crd.status else []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    eventually(established, 30, "the MobileRelease CRD to be Established")


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "crds" / "examples" / name).read_text())


def create(kube_api: k8s.ApiClient, namespace: str, body: dict[str, Any]) -> Any:
    return k8s.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


@pytest.mark.parametrize("name", ["mobilerelease-minimal.yaml", "mobilerelease-complete.yaml"])
def test_examples_apply_and_get_defaults(
    kube_api: k8s.ApiClient, k8s_namespace: str, release_crd: None, name: str
) -> None:
    created = create(kube_api, k8s_namespace, example(name))
    assert created["spec"]["failurePolicy"] == "halt"
    assert created["spec"]["gates"]["confidence"] == 0.95


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["steps"].append({"setWeight": 5}), "must not go down"),
        (lambda s: s["steps"].append({"pause": "1h", "approval": True}), "exactly one of"),
        (lambda s: s["steps"].append({"setWeight": 101}), "less than or equal to 100"),
        (lambda s: s["steps"].append({"pause": "soon"}), "should match"),
        (lambda s: s.update(store={"kind": "appStore"}), "appStore needs appId"),
    ],
)
def test_cel_refuses_bad_releases(
    kube_api: k8s.ApiClient, k8s_namespace: str, release_crd: None, change: Any, message: str
) -> None:
    body = copy.deepcopy(example("mobilerelease-minimal.yaml"))
    change(body["spec"])
    with pytest.raises(ApiException) as info:
        create(kube_api, k8s_namespace, body)
    assert info.value.status == 422
    assert message in info.value.body


def test_the_app_version_is_immutable(
    kube_api: k8s.ApiClient, k8s_namespace: str, release_crd: None
) -> None:
    created = create(kube_api, k8s_namespace, example("mobilerelease-minimal.yaml"))
    created["spec"]["app"]["version"] = "9.9.9"
    with pytest.raises(ApiException) as info:
        k8s.CustomObjectsApi(kube_api).replace_namespaced_custom_object(
            GROUP, VERSION, k8s_namespace, PLURAL, created["metadata"]["name"], created
        )
    assert "app is immutable" in info.value.body
