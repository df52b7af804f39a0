"""The chart's admission policies on a real API server: what each allows, refuses, and says.

The policies (policies/*.yaml) are rendered by the real helm from the chart, as an install
would apply them, with bindings narrowed to namespaces labelled for this run so nothing else
in the cluster is judged while the test runs. Workloads are sent with a server-side dry run:
admission runs, nothing is created.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError
from support.operator import eventually
from support.stack import StackSettings
from test_mobilerelease_crd import example, release_crd  # noqa: F401 - a fixture
from test_render_dry_run import _input

from mobileplane.operator.crdgen import GROUP, VERSION
from mobileplane.operator.render import render
from mobileplane.stack import manager

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]
LABEL = "mobileplane.io/policy-test"
DIGEST = "@sha256:" + "a" * 64


def _rendered(stack: StackSettings, release: str) -> list[dict[str, Any]]:
    # The chart's default labels are dropped (null deletes a value in helm), ours put in.
    values = {
        "policies": {
            "releaseNamespaces": {"matchLabels": {LABEL: f"{RUN}-releases"}},
            "enforcedNamespaces": {
                "matchLabels": {"mobileplane.io/policy": None, LABEL: f"{RUN}-enforce"}
            },
            "productionNamespaces": {
                "matchLabels": {"mobileplane.io/environment": None, LABEL: f"{RUN}-production"}
            },
        }
    }
    done = subprocess.run(
        [
            manager.env()["HELM"],
            "template",
            release,
            str(ROOT / "charts" / "mobileplane"),
            "--show-only",
            "templates/policies.yaml",
            "--values",
            "-",
        ],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def policies(stack: StackSettings, kube_api: k8s.ApiClient) -> Iterator[list[str]]:
    """The chart's policies and bindings, applied for this module; their names."""
    adm = k8s.AdmissionregistrationV1Api(kube_api)
    docs = _rendered(stack, f"pt{RUN}")
    names = []
    for doc in docs:
        if doc["kind"] == "ValidatingAdmissionPolicy":
            adm.create_validating_admission_policy(doc)
            names.append(doc["metadata"]["name"])
    for doc in docs:
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            adm.create_validating_admission_policy_binding(doc)
    yield names
    for name in names:
        adm.delete_validating_admission_policy_binding(name)
        adm.delete_validating_admission_policy(name)


@pytest.fixture
def namespace(kube_api: k8s.ApiClient) -> Iterator[Callable[[str], str]]:
    """Namespaces labelled so that one group of the bindings applies to them."""
    core = k8s.CoreV1Api(kube_api)
    made: list[str] = []

    def make(kind: str) -> str:
        name = f"pt-{RUN}-{kind}-{uuid.uuid4().hex[:5]}"
        labels = {LABEL: f"{RUN}-{kind}", "mobileplane.io/test": "true"}
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels)))
        made.append(name)
        return name

    yield make
    for name in made:
        core.delete_namespace(name)


def _deployment(image: str, labels: bool = True, init: str | None = None) -> dict[str, Any]:
    meta = {"app.kubernetes.io/name": "shop"} if labels else {}
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": image}]}
    if init:
        spec["initContainers"] = [{"name": "setup", "image": init}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "labels": meta},
        "spec": {
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop", **meta}}, "spec": spec},
        },
    }


def _cronjob(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "job", "image": image}],
                        }
                    }
                }
            },
        },
    }


def _send(kube_api: k8s.ApiClient, namespace: str, obj: dict[str, Any]) -> str | None:
    """Create ``obj`` with a dry run: None when admitted, else the refusal's message."""
    try:
        if obj["kind"] == "Deployment":
            k8s.AppsV1Api(kube_api).create_namespaced_deployment(namespace, obj, dry_run="All")
        else:
            k8s.BatchV1Api(kube_api).create_namespaced_cron_job(namespace, obj, dry_run="All")
    except ApiException as e:
        if e.status not in (400, 403, 422):
            raise
        return str(json.loads(e.body or "{}").get("message", e.body))
    return None


def _in_force(kube_api: k8s.ApiClient, namespace: str, probe: dict[str, Any]) -> None:
    """Policies reach the API server's admission chain a moment after they are created."""
    eventually(lambda: _send(kube_api, namespace, probe) is not None, 30, "the policies to apply")


@pytest.mark.parametrize(
    ("obj", "refusal"),
    [
        pytest.param(_deployment("nginx:1.27.3"), None, id="a-version"),
        pytest.param(_deployment("registry.example.com:5000/shop/api:2.4.0"), None, id="port"),
        pytest.param(_deployment(f"nginx{DIGEST}"), None, id="a-digest"),
        pytest.param(_deployment("nginx"), "container app runs nginx, a floating tag", id="no-tag"),
        pytest.param(
            _deployment("registry.example.com:5000/shop/api"),
            "a floating tag",
            id="a-port-is-not-a-tag",
        ),
        pytest.param(_deployment("nginx:latest"), "nginx:latest, a floating tag", id="latest"),
        pytest.param(
            _deployment("nginx:1.27.3", init="busybox:latest"),
            "container setup runs busybox:latest",
            id="init-containers-too",
        ),
        pytest.param(_cronjob("busybox"), "container job runs busybox", id="a-cronjob"),
        pytest.param(
            _deployment("nginx:1.27.3", labels=False),
            "Deployment shop needs the label app.kubernetes.io/name",
            id="unlabelled",
        ),
    ],
)
def test_enforced_namespaces_refuse_floating_tags_and_unlabelled_workloads(
    kube_api: k8s.ApiClient,
    policies: list[str],
    namespace: Callable[[str], str],
    obj: dict[str, Any],
    refusal: str | None,
) -> None:
    ns = namespace("enforce")
    _in_force(kube_api, ns, _deployment("nginx:latest"))
    message = _send(kube_api, ns, obj)
    if refusal is None:
        assert message is None
    else:
        assert message is not None and refusal in message, message
        assert "pin a version or a digest" in message or "app.kubernetes.io/name" in message


def test_production_namespaces_want_digests_and_others_are_not_judged(
    kube_api: k8s.ApiClient, policies: list[str], namespace: Callable[[str], str]
) -> None:
    production = namespace("production")
    _in_force(kube_api, production, _deployment("nginx:1.27.3"))
    message = _send(kube_api, production, _deployment("nginx:1.27.3"))
    assert message is not None and "named by digest (image@sha256:...)" in message
    assert _send(kube_api, production, _deployment(f"nginx:1.27.3{DIGEST}")) is None
    # A namespace no binding selects: nothing is refused.
    assert _send(kube_api, namespace("elsewhere"), _deployment("nginx", labels=False)) is None


def _annotate(kube_api: k8s.ApiClient, ns: str, name: str, notes: dict[str, str]) -> str | None:
    try:
        k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
            GROUP, VERSION, ns, "mobilereleases", name, {"metadata": {"annotations": notes}}
        )
    except ApiException as e:
        assert e.status in (400, 403, 422), e.body
        return str(json.loads(e.body or "{}").get("message", e.body))
    return None


def _release(kube_api: k8s.ApiClient, ns: str, name: str, channel: str) -> None:
    body = example("mobilerelease-minimal.yaml")
    body["metadata"]["name"] = name
    body["spec"]["channel"] = channel
    k8s.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, ns, "mobilereleases", body
    )


CONTROL = "release.mobileplane.io/control"
APPROVER = "release.mobileplane.io/approved-by"


def test_a_production_release_skips_its_gates_only_with_a_named_approver(
    kube_api: k8s.ApiClient,
    release_crd: None,  # noqa: F811
    policies: list[str],
    namespace: Callable[[str], str],
) -> None:
    ns = namespace("releases")
    _release(kube_api, ns, "prod", "production")
    _release(kube_api, ns, "beta", "beta")
    eventually(
        lambda: _annotate(kube_api, ns, "prod", {CONTROL: "promote-full"}) is not None,
        30,
        "the policies to apply",
    )
    message = _annotate(kube_api, ns, "prod", {CONTROL: "promote-full", APPROVER: "ana"})
    assert message is not None and f"add the annotation {APPROVER}" in message
    assert _annotate(kube_api, ns, "prod", {CONTROL: "promote-full", APPROVER: "ana@x.io"}) is None
    assert _annotate(kube_api, ns, "beta", {CONTROL: "promote-full"}) is None  # not production
    assert _annotate(kube_api, ns, "beta", {CONTROL: "pause"}) is None


def test_a_halted_release_is_resumed_before_it_is_promoted(
    kube_api: k8s.ApiClient,
    release_crd: None,  # noqa: F811
    policies: list[str],
    namespace: Callable[[str], str],
) -> None:
    ns = namespace("releases")
    _release(kube_api, ns, "halted", "beta")
    k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, "mobilereleases", "halted", {"status": {"phase": "Halted"}}
    )
    eventually(
        lambda: _annotate(kube_api, ns, "halted", {CONTROL: "promote"}) is not None,
        30,
        "the policies to apply",
    )
    message = _annotate(kube_api, ns, "halted", {CONTROL: "Promote-Full"})
    assert message is not None and "halted by a failed gate: resume it first" in message
    assert _annotate(kube_api, ns, "halted", {CONTROL: "resume"}) is None


@pytest.mark.parametrize("example_name", ["minimal", "complete"])
def test_what_the_operator_renders_passes_the_enforced_policies(
    kube_api: k8s.ApiClient,
    policies: list[str],
    namespace: Callable[[str], str],
    example_name: str,
) -> None:
    ns = namespace("enforce")
    _in_force(kube_api, ns, _deployment("nginx:latest"))
    refused = []
    for obj in render(_input(example_name, ns)):
        if obj["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob"):
            resource = DynamicClient(kube_api).resources.get(
                api_version=obj["apiVersion"], kind=obj["kind"]
            )
            try:
                resource.create(body=obj, namespace=ns, dry_run="All")
            except DynamicApiError as e:
                refused.append(f"{obj['kind']}/{obj['metadata']['name']}: {e.summary()}")
    assert refused == []
