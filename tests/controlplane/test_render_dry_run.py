"""The renderer's children are valid Kubernetes objects: the real API server says so.

Each child of both examples is created with ``dryRun=All``: the API server decodes, defaults,
validates and admits it exactly as it would for real, then stores nothing. Any field we got
wrong (a bad name, an invalid probe, a selector that does not match its template) fails here.

Pod Security is checked too: the namespace enforces the ``restricted`` profile, and a Pod is
dry-run created from every pod template, because admission only rejects Pods, never the
Deployments that would make them.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError

from mobileplane.operator.keys import KeySet
from mobileplane.operator.render import (
    DatabaseTarget,
    GeneratedMaterial,
    PlatformRef,
    RenderInput,
    child_key,
    postgres_host,
    render,
)
from mobileplane.operator.spec import DatabaseMode, MobilePlatformSpec

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parents[2]
KEYSET_FILE = ROOT / "tests" / "unit" / "operator" / "data" / "signing-keyset.json"


def _input(example: str, namespace: str) -> RenderInput:
    doc = yaml.safe_load((ROOT / "crds" / "examples" / f"{example}.yaml").read_text())
    spec = MobilePlatformSpec.model_validate(doc["spec"])
    platform = PlatformRef(name=doc["metadata"]["name"], namespace=namespace, uid="dry-run")
    db_name = spec.database.name or f"mp_{platform.name}"
    host = (
        postgres_host(platform)
        if spec.database.mode == DatabaseMode.IN_CLUSTER
        else "pg.example.com"
    )
    return RenderInput(
        platform=platform,
        spec=spec,
        database=DatabaseTarget(host=host, port=5432, name=db_name, role=db_name),
        generated=GeneratedMaterial(
            db_password="dry-run-password-9f2c",
            signing_keys=KeySet.from_json(KEYSET_FILE.read_text()),
            sync_checkpoint_keys="dry-run-sync-checkpoint-key-" + "x" * 16,
        ),
    )


def _pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj["kind"] == "StatefulSet":
        # The controller adds a volume per claim template, as below.
        template = copy.deepcopy(obj["spec"]["template"])
        for claim in obj["spec"].get("volumeClaimTemplates", []):
            name = claim["metadata"]["name"]
            template["spec"]["volumes"].append(
                {
                    "name": name,
                    "persistentVolumeClaim": {"claimName": f"{name}-{obj['metadata']['name']}-0"},
                }
            )
        return [template]
    if obj["kind"] in ("Deployment", "Job"):
        return [obj["spec"]["template"]]
    if obj["kind"] == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]]
    return []


def _restricted(kube_api: k8s.ApiClient, namespace: str) -> None:
    """Enforce Pod Security 'restricted' in the namespace; wait for its ServiceAccount."""
    core = k8s.CoreV1Api(kube_api)
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    core.patch_namespace(namespace, {"metadata": {"labels": labels}})
    deadline = time.monotonic() + 30
    while True:  # Pods need the "default" ServiceAccount, made by the controller-manager
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except k8s.ApiException as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("example", ["minimal", "complete"])
def test_rendered_children_pass_server_side_validation(
    kube_api: k8s.ApiClient, k8s_namespace: str, example: str
) -> None:
    _restricted(kube_api, k8s_namespace)
    dynamic = DynamicClient(kube_api)
    objects = render(_input(example, k8s_namespace))
    failures: list[str] = []
    checked: list[str] = []

    def dry_run(obj: dict[str, Any], what: str) -> None:
        resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        try:
            resource.create(body=obj, namespace=k8s_namespace, dry_run="All")
            checked.append(what)
        except DynamicApiError as e:
            failures.append(f"{what}: {e.summary()}")

    for obj in objects:
        dry_run(obj, "/".join(child_key(obj)))
        for i, template in enumerate(_pod_templates(obj)):
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{obj['metadata']['name'][:50]}-pod-{i}",
                    "namespace": k8s_namespace,
                    "labels": template["metadata"]["labels"],
                },
                "spec": template["spec"],
            }
            dry_run(pod, f"pod of {obj['kind']}/{obj['metadata']['name']}")

    assert failures == []
    assert len(checked) > len(objects)  # every object, and a Pod per workload
