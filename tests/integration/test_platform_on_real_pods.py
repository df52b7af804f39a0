"""The whole platform on real pods (issue 13): what kwok's fake nodes could never show.

The project's image, built from the Dockerfile and imported into the real node's containerd,
runs everything: ``helm install`` of charts/mobileplane starts the operator and the release
controller as pods under the chart's own ServiceAccount and RBAC (no admin credentials), and
the operator brings ``crds/examples/complete.yaml`` up on the stack's External PostgreSQL,
Redis and S3 (reached at the node's address) with every service Running and Ready through
its real readiness probe. Then an app signs in and reads its profile through the gateway pod
with standard clients, and a spec change whose pods cannot run is named, with the pods' own
reason, in the MobilePlatform's conditions while the old pods keep serving.

The cluster's names (``shop-gateway.<ns>.svc``) resolve only inside it; the test's clients
reach the gateway's ClusterIP (kube-proxy's rules apply to the host too) with the name kept in
the ``Host`` header, as ``curl --resolve`` does.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client as k8s
import psycopg
import pytest
import yaml
from support.oidc import sign_in
from support.operator import condition, eventually, get_platform, install_crds
from support.stack import NodeSettings, StackSettings, require_node

from mobileplane.image import builder
from mobileplane.operator.crdgen import GROUP, PLURAL, VERSION
from mobileplane.stack import manager, nodeplan
from mobileplane.stack.progress import Progress

pytestmark = [pytest.mark.realnode, pytest.mark.image, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
#: Apply → Ready with the image on the node; the issue's goal is 60 s, this the hard stop.
READY_TIMEOUT = 420
PLACEMENT = {
    "nodeSelector": {nodeplan.NODE_LABEL: "true"},
    "tolerations": [{"key": nodeplan.NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
}
PASSWORD = "a long enough password"


class ClusterNames(httpx.HTTPTransport):
    """Sends requests for cluster names to their ClusterIPs, the ``Host`` header unchanged."""

    def __init__(self, addresses: dict[str, str]) -> None:
        super().__init__()
        self.addresses = addresses

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        address = self.addresses.get(request.url.host)
        if address is None:
            return super().handle_request(request)
        # A copy goes out: the client's request keeps its URL, so cookies stay the name's.
        sent = httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return super().handle_request(sent)


@pytest.fixture(scope="module")
def node() -> NodeSettings:
    return require_node()


@pytest.fixture(scope="module")
def image(node: NodeSettings) -> str:
    """The project's image, built (cached) and imported into the node's containerd."""
    built = builder.build(ROOT, Progress())
    (ref,) = [t for t in built.tags if ":content-" in t]
    ctr = ["ctr", "--address", node.containerd, "--namespace", "k8s.io"]
    subprocess.run([*ctr, "images", "import", built.archive], check=True, capture_output=True)
    return ref


def _namespace(core: k8s.CoreV1Api, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        k8s.V1Namespace(
            metadata=k8s.V1ObjectMeta(name=name, labels={"mobileplane.io/test": "true"})
        )
    )
    return name


def _helm(stack: StackSettings, *args: str) -> str:
    helm = manager.env()["HELM"]
    done = subprocess.run(
        [helm, "--kubeconfig", str(stack.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args[:2])} failed:\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def chart(
    stack: StackSettings,
    kube_api: k8s.ApiClient,
    image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """charts/mobileplane installed by helm on the real node; uninstalled afterwards (its
    operator watches every namespace: it must not outlive these tests)."""
    install_crds(kube_api)
    core = k8s.CoreV1Api(kube_api)
    namespace = _namespace(core, "mobileplane-system")
    suffix = namespace.rsplit("-", 1)[1]
    repository, _, tag = image.rpartition(":")
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "serviceAccount": {"name": f"mobileplane-operator-{suffix}"},
        "operator": {"peering": f"mobileplane-operator-{suffix}", "resyncSeconds": 10},
        "releaseController": {"peering": f"mobileplane-release-{suffix}"},
        **PLACEMENT,
    }
    values_file = tmp_path_factory.mktemp("chart") / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    release = f"mobileplane-{suffix}"
    _helm(
        stack,
        "install",
        release,
        str(ROOT / "charts" / "mobileplane"),
        "--namespace",
        namespace,
        "--skip-crds",
        "--values",
        str(values_file),
        "--wait",
        "--timeout",
        "300s",
    )
    try:
        yield namespace
    finally:
        _helm(stack, "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s")
        core.delete_namespace(namespace)


def _pods(core: k8s.CoreV1Api, namespace: str, selector: str) -> list[k8s.V1Pod]:
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


def _ready(pod: k8s.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_the_chart_runs_the_operator_and_release_controller_as_pods(
    chart: str, kube_api: k8s.ApiClient, node: NodeSettings
) -> None:
    core = k8s.CoreV1Api(kube_api)
    pods = _pods(core, chart, "app.kubernetes.io/name=mobileplane")
    components = {p.metadata.labels["app.kubernetes.io/component"] for p in pods}
    assert {"operator", "release-controller"} <= components, components
    for pod in pods:
        assert pod.spec.node_name == node.name
        assert pod.spec.service_account_name.startswith("mobileplane-operator-")
        assert _ready(pod), pod.status
        [status] = pod.status.container_statuses
        assert status.restart_count == 0, (pod.metadata.name, status.last_state)


def _secret(core: k8s.CoreV1Api, namespace: str, name: str, data: dict[str, str]) -> None:
    core.create_namespaced_secret(
        namespace, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name), string_data=data)
    )


def _complete(
    core: k8s.CoreV1Api, namespace: str, stack: StackSettings, node: NodeSettings, image: str
) -> dict[str, Any]:
    """crds/examples/complete.yaml on the stack's datastores, as pods on the node reach them."""
    suffix = uuid.uuid4().hex[:8]
    pg = psycopg.conninfo.conninfo_to_dict(stack.database_url)
    _secret(
        core,
        namespace,
        "shop-postgres-admin",
        {
            "host": node.ip,
            "port": str(pg["port"]),
            "username": str(pg["user"]),
            "password": str(pg["password"]),
            "database": str(pg["dbname"]),
        },
    )
    s3 = httpx.URL(stack.s3_endpoint)
    redis = httpx.URL(stack.redis_url)
    _secret(
        core,
        namespace,
        "shop-media",
        {"accessKeyId": stack.s3_access_key, "secretAccessKey": stack.s3_secret_key},
    )
    _secret(core, namespace, "shop-redis", {"url": str(redis.copy_with(host=node.ip))})
    _secret(core, namespace, "shop-smtp", {"username": "relay", "password": "relay-pw"})
    obj: dict[str, Any] = yaml.safe_load((ROOT / "crds/examples/complete.yaml").read_text())
    spec = obj["spec"]
    repository, _, tag = image.rpartition(":")
    spec["image"] = {"repository": repository, "tag": tag, "pullPolicy": "Never"}
    spec["scheduling"] = PLACEMENT
    spec["database"]["name"] = f"shop_{suffix}"
    spec["media"].update(bucket=f"shop-media-{suffix}", endpoint=str(s3.copy_with(host=node.ip)))
    # Reached by the test at the gateway's ClusterIP under its in-cluster name.
    del spec["gateway"]["host"]
    # No mail relay here: verification emails are logged (development), not required.
    del spec["auth"]["email"]
    return obj


@pytest.fixture(scope="module")
def shop(
    chart: str,
    kube_api: k8s.ApiClient,
    stack: StackSettings,
    node: NodeSettings,
    image: str,
) -> Iterator[tuple[str, dict[str, Any], float]]:
    """The complete example applied and Ready: (namespace, its object, seconds to Ready)."""
    core = k8s.CoreV1Api(kube_api)
    namespace = _namespace(core, "shop")
    obj = _complete(core, namespace, stack, node, image)
    custom = k8s.CustomObjectsApi(kube_api)
    started = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, obj)

    def ready() -> dict[str, Any] | None:
        current = get_platform(kube_api, namespace, "shop")
        found = condition(current, "Ready")
        return current if found and found["status"] == "True" else None

    try:
        ready_obj = eventually(ready, READY_TIMEOUT, "the complete example to be Ready")
    except AssertionError:
        current = get_platform(kube_api, namespace, "shop")
        conditions = (current or {}).get("status", {}).get("conditions")
        raise AssertionError(f"not Ready: {json.dumps(conditions, indent=1)}") from None
    seconds = time.monotonic() - started
    print(f"complete.yaml apply -> Ready on real pods: {seconds:.1f} s")
    try:
        yield namespace, ready_obj, seconds
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shop")
        eventually(
            lambda: get_platform(kube_api, namespace, "shop") is None or None,
            120,
            "the platform to be deprovisioned",
        )
        core.delete_namespace(namespace)


def test_the_complete_example_is_ready_on_real_pods(
    shop: tuple[str, dict[str, Any], float], kube_api: k8s.ApiClient, node: NodeSettings
) -> None:
    namespace, obj, _ = shop
    core = k8s.CoreV1Api(kube_api)
    services = [s for s, status in obj["status"]["services"].items() if status["available"]]
    assert set(services) == {
        "gateway",
        "auth",
        "profiles",
        "content",
        "sync",
        "telemetry",
        "appconfig",
    }
    pods = _pods(core, namespace, "app.kubernetes.io/instance=shop")
    serving = [p for p in pods if p.metadata.labels["app.kubernetes.io/component"] in services]
    assert len(serving) >= len(services)
    for pod in serving:
        assert pod.spec.node_name == node.name, pod.metadata.name
        assert pod.status.phase == "Running" and _ready(pod), pod.metadata.name
        [status] = pod.status.container_statuses
        if status.restart_count:
            # Say why (the last state and the pod's warnings), so a restart seen once in CI
            # names its cause.
            events = core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={pod.metadata.name}"
            ).items
            warnings = [f"{e.reason}: {e.message}" for e in events if e.type == "Warning"]
            pytest.fail(f"{pod.metadata.name} restarted: {status.last_state} {warnings}")


def _gateway(kube_api: k8s.ApiClient, namespace: str, obj: dict[str, Any]) -> ClusterNames:
    url = httpx.URL(obj["status"]["gatewayURL"])
    service = k8s.CoreV1Api(kube_api).read_namespaced_service("shop-gateway", namespace)
    return ClusterNames({url.host: service.spec.cluster_ip})


def test_an_app_signs_in_and_reads_its_profile_through_the_gateway_pod(
    shop: tuple[str, dict[str, Any], float], kube_api: k8s.ApiClient
) -> None:
    namespace, obj, _ = shop
    url = obj["status"]["gatewayURL"]
    transport = _gateway(kube_api, namespace, obj)
    token = sign_in(
        url,
        "ada@example.com",
        PASSWORD,
        "openid offline_access profiles",
        register=True,
        client_id="com.example.shop",
        redirect_uri="com.example.shop:/oauth2redirect",
        transport=transport,
    )
    with httpx.Client(transport=transport, timeout=10) as client:
        me = client.get(
            f"{url}/profiles/me", headers={"authorization": f"Bearer {token['access_token']}"}
        )
        anonymous = client.get(f"{url}/profiles/me")
    assert me.status_code == 200, me.text
    assert anonymous.status_code == 401


def test_a_rollout_that_cannot_run_is_named_in_the_conditions(
    shop: tuple[str, dict[str, Any], float], kube_api: k8s.ApiClient
) -> None:
    namespace, _, _ = shop
    custom = k8s.CustomObjectsApi(kube_api)
    missing = "registry.invalid/mobileplane:missing"
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "shop",
        {"spec": {"services": {"appconfig": {"image": missing}}}},
    )

    def named() -> dict[str, Any] | None:
        found = condition(get_platform(kube_api, namespace, "shop"), "ServicesReady")
        return found if found and found["reason"] == "ErrImageNeverPull" else None

    services_ready = eventually(named, 120, "ServicesReady to name the image that cannot run")
    assert services_ready["status"] == "False"
    assert services_ready["message"].startswith("appconfig: pod shop-appconfig-")
    assert services_ready["message"].endswith("(the old pods still serve)")
    ready = condition(get_platform(kube_api, namespace, "shop"), "Ready")
    assert ready is not None and ready["status"] == "False"
    # Put right, it is Ready again (the old pods kept serving meanwhile).
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "shop",
        {"spec": {"services": {"appconfig": {"image": None}}}},
    )

    def recovered() -> dict[str, Any] | None:
        found = condition(get_platform(kube_api, namespace, "shop"), "Ready")
        return found if found and found["status"] == "True" else None

    eventually(recovered, 180, "the platform to be Ready again")
