"""Smoke tests: the stack's Kubernetes is a real control plane, controllers and RBAC included."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes import client as k8s
from support.names import unique

pytestmark = pytest.mark.controlplane

T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float = 60, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def crd(kube_api: k8s.ApiClient) -> Iterator[dict[str, str]]:
    """A CRD of this test's own (CRDs are cluster-scoped: its group is unique)."""
    ext = k8s.ApiextensionsV1Api(kube_api)
    group = f"{unique('smoke')}.test.mobileplane.io"
    body: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {
                                        "phase": {"type": "string"},
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(body)

    def established() -> bool:
        got = ext.read_custom_resource_definition(body["metadata"]["name"])
        return any(
            c.type == "Established" and c.status == "True" for c in (got.status.conditions or [])
        )

    eventually(established, 30, "the CRD to be Established")
    yield {"group": group, "version": "v1", "plural": "widgets"}
    ext.delete_custom_resource_definition(body["metadata"]["name"])


def test_custom_resource_with_status_subresource(
    kube_api: k8s.ApiClient, k8s_namespace: str, crd: dict[str, str]
) -> None:
    api = k8s.CustomObjectsApi(kube_api)
    args = (crd["group"], crd["version"], k8s_namespace, crd["plural"])
    obj = {
        "apiVersion": f"{crd['group']}/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3},
        "status": {"phase": "ignored-on-create"},
    }
    created = api.create_namespaced_custom_object(*args, obj)
    # With the status subresource, status in the main resource is ignored...
    assert "status" not in created or created["status"] == {}
    # ...and only the /status endpoint writes it, without bumping the generation.
    patched = api.patch_namespaced_custom_object_status(*args, "w1", {"status": {"phase": "Ready"}})
    assert patched["status"]["phase"] == "Ready"
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]
    # The schema is enforced by the API server.
    with pytest.raises(k8s.ApiException) as bad:
        api.create_namespaced_custom_object(
            *args, {**obj, "metadata": {"name": "w2"}, "spec": {"size": 0}}
        )
    assert bad.value.status == 422


def test_deployment_becomes_available_on_kwok_node(
    kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    apps = k8s.AppsV1Api(kube_api)
    labels = {"app": "smoke"}
    apps.create_namespaced_deployment(
        k8s_namespace,
        k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="smoke"),
            spec=k8s.V1DeploymentSpec(
                replicas=2,
                selector=k8s.V1LabelSelector(match_labels=labels),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="app", image="smoke:1")]),
                ),
            ),
        ),
    )

    def available() -> k8s.V1Deployment | None:
        d = apps.read_namespaced_deployment_status("smoke", k8s_namespace)
        ok = any(c.type == "Available" and c.status == "True" for c in d.status.conditions or [])
        return d if ok and d.status.available_replicas == 2 else None

    dep = eventually(available, 60, "the Deployment to become Available")
    assert dep.status.ready_replicas == 2
    pods = k8s.CoreV1Api(kube_api).list_namespaced_pod(k8s_namespace, label_selector="app=smoke")
    assert {p.spec.node_name for p in pods.items} == {"kwok-node-0"}
    assert all(p.status.phase == "Running" for p in pods.items)


def test_namespace_deletion_completes(kube_api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(kube_api)
    name = unique("t-nsdel")
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(
        name, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="c"), data={"k": "v"})
    )
    core.create_namespaced_pod(
        name,
        k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name="p"),
            spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="smoke:1")]),
        ),
    )
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except k8s.ApiException as e:
            return e.status == 404
        return False

    eventually(gone, 90, f"namespace {name} to finish deleting")


def test_garbage_collector_deletes_dependents(kube_api: k8s.ApiClient, k8s_namespace: str) -> None:
    core = k8s.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        k8s_namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="owner"))
    )
    core.create_namespaced_config_map(
        k8s_namespace,
        k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(
                name="dependent",
                owner_references=[
                    k8s.V1OwnerReference(
                        api_version="v1",
                        kind="ConfigMap",
                        name="owner",
                        uid=owner.metadata.uid,
                    )
                ],
            ),
        ),
    )
    core.delete_namespaced_config_map("owner", k8s_namespace)

    def collected() -> bool:
        try:
            core.read_namespaced_config_map("dependent", k8s_namespace)
        except k8s.ApiException as e:
            return e.status == 404
        return False

    eventually(collected, 60, "the garbage collector to delete the dependent ConfigMap")


def test_rbac_refuses_a_service_account_without_permissions(
    kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_api)
    core.create_namespaced_service_account(
        k8s_namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody",
        k8s_namespace,
        k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[])),
    ).status.token

    conf = k8s.Configuration()
    conf.host = kube_api.configuration.host
    conf.ssl_ca_cert = kube_api.configuration.ssl_ca_cert
    conf.api_key = {"authorization": f"Bearer {token}"}
    with k8s.ApiClient(conf) as as_sa:
        sa_core = k8s.CoreV1Api(as_sa)
        with pytest.raises(k8s.ApiException) as refused:
            sa_core.list_namespaced_config_map(k8s_namespace)
        assert refused.value.status == 403
        assert "cannot list resource" in str(refused.value.body)

        # Granting the permission opens exactly that door: RBAC decides, not a blanket deny.
        rbac = k8s.RbacAuthorizationV1Api(kube_api)
        rbac.create_namespaced_role(
            k8s_namespace,
            k8s.V1Role(
                metadata=k8s.V1ObjectMeta(name="read-cm"),
                rules=[k8s.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            k8s_namespace,
            k8s.V1RoleBinding(
                metadata=k8s.V1ObjectMeta(name="read-cm"),
                role_ref=k8s.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="read-cm"
                ),
                subjects=[
                    k8s.RbacV1Subject(kind="ServiceAccount", name="nobody", namespace=k8s_namespace)
                ],
            ),
        )
        listed = eventually(
            lambda: _try(lambda: sa_core.list_namespaced_config_map(k8s_namespace)),
            30,
            "the RoleBinding to take effect",
        )
        assert listed is not None
        with pytest.raises(k8s.ApiException) as still:
            sa_core.list_namespaced_secret(k8s_namespace)
        assert still.value.status == 403


def _try(fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except k8s.ApiException:
        return None


def test_default_service_account_is_created(kube_api: k8s.ApiClient, k8s_namespace: str) -> None:
    core = k8s.CoreV1Api(kube_api)
    eventually(
        lambda: _try(lambda: core.read_namespaced_service_account("default", k8s_namespace)),
        30,
        "kube-controller-manager to create the default ServiceAccount",
    )
