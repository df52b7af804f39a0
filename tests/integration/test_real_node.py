"""The stack's real node: containers really run, probes really probe, Services resolve and
route, and pods reach the stack's PostgreSQL on the host (issue 13).

Every pod here selects the real node and tolerates its taint; kwok's fake node keeps the rest.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes.client as k8s
import pytest
from support.stack import NodeSettings, require_node

from mobileplane.image import builder
from mobileplane.stack import nodeplan
from mobileplane.stack.components.nodebuild import image_refs
from mobileplane.stack.progress import Progress

pytestmark = pytest.mark.realnode

PROBE = image_refs()["probe"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def node() -> NodeSettings:
    return require_node()


def _pod(
    name: str,
    args: list[str],
    *,
    labels: dict[str, str] | None = None,
    readiness: dict[str, Any] | None = None,
    restart: str = "Always",
    image: str = PROBE,
    command: str = "/probe",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "command": [command],
        "args": args,
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
    }
    if readiness:
        container["readinessProbe"] = readiness
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "nodeSelector": {nodeplan.NODE_LABEL: "true"},
            "tolerations": [
                {"key": nodeplan.NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
            ],
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
            "containers": [container],
        },
    }


def _wait(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def _ready(pod: k8s.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _run_to_completion(core: k8s.CoreV1Api, ns: str, name: str, args: list[str], **pod: Any) -> str:
    """Run the probe (or ``pod``'s image) with ``args`` once; its log when it succeeded."""
    core.create_namespaced_pod(ns, _pod(name, args, restart="Never", **pod))

    def finished() -> str | None:
        phase = core.read_namespaced_pod(name, ns).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = _wait(f"pod {name} to finish", finished)
    log: str = core.read_namespaced_pod_log(name, ns)
    assert phase == "Succeeded", log
    return log


def test_node_is_ready_tainted_and_labelled_and_kwok_keeps_its_own(
    node: NodeSettings, kube_api: k8s.ApiClient
) -> None:
    core = k8s.CoreV1Api(kube_api)
    real = core.read_node(node.name)
    assert any(c.type == "Ready" and c.status == "True" for c in real.status.conditions)
    assert real.metadata.labels[nodeplan.NODE_LABEL] == "true"
    assert [(t.key, t.value, t.effect) for t in real.spec.taints or []] == [
        (nodeplan.NODE_LABEL, "true", "NoSchedule")
    ]
    # kubelet's own addresses: kwok (which fakes 10.0.0.1) leaves this node alone.
    addresses = {a.type: a.address for a in real.status.addresses}
    assert addresses["InternalIP"] == node.ip
    assert real.status.node_info.kubelet_version == "v1.34.4"
    assert real.status.node_info.container_runtime_version.startswith("containerd://1.6")
    fake = core.read_node("kwok-node-0")
    assert any(c.type == "Ready" and c.status == "True" for c in fake.status.conditions)


def test_readiness_probes_are_real(
    node: NodeSettings, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    """A pod is Ready only through its real readiness probe: one that fails stays unready."""
    core = k8s.CoreV1Api(kube_api)
    good = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    bad = {"httpGet": {"path": "/healthz", "port": 9999}, "periodSeconds": 1}
    core.create_namespaced_pod(k8s_namespace, _pod("good", ["serve", ":8080"], readiness=good))
    core.create_namespaced_pod(k8s_namespace, _pod("bad", ["serve", ":8080"], readiness=bad))

    def pod(name: str) -> k8s.V1Pod:
        return core.read_namespaced_pod(name, k8s_namespace)

    _wait("pod good Ready", lambda: _ready(pod("good")))
    good_pod = pod("good")
    assert good_pod.spec.node_name == node.name
    assert good_pod.status.phase == "Running"
    assert good_pod.status.pod_ip.startswith("10.244.0.")
    _wait("pod bad Running", lambda: pod("bad").status.phase == "Running")
    time.sleep(3)  # several probe periods
    bad_pod = pod("bad")
    assert not _ready(bad_pod)
    assert bad_pod.status.container_statuses[0].started


def test_service_name_resolves_and_routes_to_the_pods(
    node: NodeSettings, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_api)
    readiness = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    core.create_namespaced_pod(
        k8s_namespace,
        _pod("web", ["serve", ":8080"], labels={"app": "web"}, readiness=readiness),
    )
    core.create_namespaced_service(
        k8s_namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    _wait("pod web Ready", lambda: _ready(core.read_namespaced_pod("web", k8s_namespace)))
    service_ip = core.read_namespaced_service("web", k8s_namespace).spec.cluster_ip

    lookup = _run_to_completion(core, k8s_namespace, "lookup", ["lookup", "web"])
    assert service_ip in lookup  # the short name, through the pod's search domains
    body = _run_to_completion(
        core, k8s_namespace, "get", ["get", f"http://web.{k8s_namespace}.svc.cluster.local/"]
    )
    assert body.strip() == "mobileplane-probe web"  # the answer came from the pod behind it


def test_pod_reaches_the_host_postgresql(
    node: NodeSettings, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_api)
    log = _run_to_completion(
        core, k8s_namespace, "pg", ["postgres", f"{node.ip}:{node.postgres_port}"]
    )
    assert "PostgreSQL asks for authentication" in log


def test_pod_reaches_the_api_server_through_the_kubernetes_service(
    node: NodeSettings, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    """In-cluster clients (the operator's pods) use https://kubernetes.default.svc with their
    ServiceAccount's CA and token."""
    core = k8s.CoreV1Api(kube_api)
    _wait(
        "the namespace's default ServiceAccount",
        lambda: any(
            sa.metadata.name == "default"
            for sa in core.list_namespaced_service_account(k8s_namespace).items
        ),
    )
    body = _run_to_completion(
        core, k8s_namespace, "incluster", ["get", "https://kubernetes.default.svc/version"]
    )
    assert '"gitVersion": "v1.34.4"' in body


QUERY = """
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn:
    print(*conn.execute("SELECT current_user, inet_client_addr()").fetchone())
"""


@pytest.mark.image
@pytest.mark.timeout(builder.BUILD_TIMEOUT)
def test_the_project_image_runs_on_the_node_and_queries_the_host_postgresql(
    node: NodeSettings, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    """The project's own image, imported without a registry, signs in to the stack's
    PostgreSQL with the address ``stack env`` gives pods, and runs a query."""
    built = builder.build(ROOT, Progress())  # cached: seconds when nothing changed
    (tag,) = [t for t in built.tags if ":content-" in t]
    ctr = ["ctr", "--address", node.containerd, "--namespace", "k8s.io"]
    subprocess.run(
        [*ctr, "images", "import", built.archive],
        check=True,
        capture_output=True,
    )
    core = k8s.CoreV1Api(kube_api)
    log = _run_to_completion(
        core,
        k8s_namespace,
        "psql",
        ["-c", QUERY],
        image=tag,
        command="python",
        env={"DATABASE_URL": node.pod_database_url},
    )
    # The stack's role, arriving from loopback: the node's rules carry pods there.
    assert log.split() == ["mobileplane", "127.0.0.1"]
