"""The MobilePlatform operator on the real control plane, with real PostgreSQL and S3.

The operator runs in-process (kopf's KopfRunner) as the chart's ServiceAccount, watching the
test's namespace only; kwok makes the rendered Deployments Available.
"""

from __future__ import annotations

import base64
import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from support.operator import (
    GROUP,
    PLURAL,
    ROOT,
    VERSION,
    apply,
    chart_objects,
    condition,
    environment,
    eventually,
    get_platform,
    install_crds,
    operator_kubeconfig,
    volume_for,
)
from support.s3_servers import IMPLEMENTS, S3Server
from support.stack import (
    StackSettings,
    component_data_dir,
    seaweedfs_endpoint,
    use_existing_cluster,
)

from mobileplane.operator.provision import S3Endpoint
from mobileplane.operator.spec import SERVICE_NAMES, UNSHIPPED_SERVICES
from mobileplane.services.sync.tokens import parse_keys
from mobileplane.stack import manager
from mobileplane.stack.components.kube import Kube
from mobileplane.stack.progress import Progress

pytestmark = [
    pytest.mark.controlplane,
    # kopf's aiohttp connections of a stopped KopfRunner are closed by the garbage collector
    # after the runner's event loop is gone: a ResourceWarning from kopf's shutdown, not ours.
    pytest.mark.filterwarnings("ignore:unclosed transport:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*_SelectorTransport:pytest.PytestUnraisableExceptionWarning"
    ),
]

# Generous: under load (two cores, other tests), kwok and the controllers take their time.
READY_TIMEOUT = 180


def _example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "crds" / "examples" / name).read_text())
    return doc


@pytest.fixture
def operator(kube_api: k8s.ApiClient, k8s_namespace: str, tmp_path: Path) -> Iterator[KopfRunner]:
    """The operator, as the chart's ServiceAccount, watching this test's namespace."""
    install_crds(kube_api)
    sa = f"mp-operator-{uuid.uuid4().hex[:8]}"
    objects = chart_objects(k8s_namespace, sa)
    for obj in objects:
        apply(kube_api, obj, k8s_namespace if obj["kind"] == "ServiceAccount" else None)
    kubeconfig = operator_kubeconfig(kube_api, k8s_namespace, sa, tmp_path / "kubeconfig")
    env = {
        "KUBECONFIG": str(kubeconfig),
        "MOBILEPLANE_OPERATOR_STANDALONE": "true",
        "MOBILEPLANE_OPERATOR_RETRY_SECONDS": "2",
        "MOBILEPLANE_OPERATOR_REFUSED_RETRY_SECONDS": "5",
    }
    args = [
        "run",
        "--namespace",
        k8s_namespace,
        "--standalone",
        "--verbose",
        "-m",
        "mobileplane.operator.handlers",
    ]
    try:
        with environment(**env), KopfRunner(args, timeout=60) as runner:
            yield runner
            _delete_all(kube_api, k8s_namespace)  # while the operator can run finalizers
        assert runner.exception is None, runner.output
        assert runner.exit_code == 0, runner.output
    finally:
        rbac = k8s.RbacAuthorizationV1Api(kube_api)
        for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
            try:
                delete(sa)
            except k8s.ApiException as e:
                if e.status != 404:
                    raise


def _delete_all(kube_api: k8s.ApiClient, namespace: str, timeout: float = 120) -> None:
    api = k8s.CustomObjectsApi(kube_api)
    for item in api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        api.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"]
        )
    eventually(
        lambda: not api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"],
        timeout,
        "every MobilePlatform to finish deleting",
    )


def _delete_and_wait(kube_api: k8s.ApiClient, namespace: str, name: str) -> None:
    k8s.CustomObjectsApi(kube_api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    eventually(
        lambda: get_platform(kube_api, namespace, name) is None,
        60,
        f"MobilePlatform {name} to be deleted",
    )


def _create(kube_api: k8s.ApiClient, namespace: str, obj: dict[str, Any]) -> None:
    k8s.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, obj
    )


@pytest.fixture
def hello_volume(kube_api: k8s.ApiClient, k8s_namespace: str) -> Iterator[None]:
    """Storage for the minimal example's in-cluster PostgreSQL."""
    with volume_for(kube_api, k8s_namespace, "data-hello-postgres-0"):
        yield


def _ready(kube_api: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get_platform(kube_api, namespace, name)
        ready = condition(obj, "Ready")
        return obj if ready and ready["status"] == "True" else None

    return eventually(check, READY_TIMEOUT, f"MobilePlatform {name} to be Ready")


def _secret(kube_api: k8s.ApiClient, namespace: str, name: str, data: dict[str, str]) -> None:
    k8s.CoreV1Api(kube_api).create_namespaced_secret(
        namespace, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name), string_data=data)
    )


def _external(
    stack: StackSettings,
    kube_api: k8s.ApiClient,
    namespace: str,
    policy: str,
    s3_endpoint: str | None = None,
) -> tuple[dict[str, Any], str, str]:
    """The complete example on the stack's PostgreSQL and S3 (or ``s3_endpoint``, which
    takes the same credentials), with unique names."""
    suffix = uuid.uuid4().hex[:8]
    dbname, bucket = f"shop_{suffix}", f"shop-media-{suffix}"
    pg = psycopg.conninfo.conninfo_to_dict(stack.database_url)
    _secret(
        kube_api,
        namespace,
        "shop-postgres-admin",
        {
            "host": str(pg["host"]),
            "port": str(pg["port"]),
            "username": str(pg["user"]),
            "password": str(pg["password"]),
            "database": str(pg["dbname"]),
        },
    )
    _secret(
        kube_api,
        namespace,
        "shop-media",
        {
            "accessKeyId": stack.s3_access_key,
            "secretAccessKey": stack.s3_secret_key,
        },
    )
    _secret(kube_api, namespace, "shop-redis", {"url": stack.redis_url})
    _secret(kube_api, namespace, "shop-smtp", {"username": "relay", "password": "relay-pw"})
    obj = _example("complete.yaml")
    obj["spec"]["database"]["name"] = dbname
    obj["spec"]["database"]["deletionPolicy"] = policy
    obj["spec"]["media"].update(
        bucket=bucket, endpoint=s3_endpoint or stack.s3_endpoint, deletionPolicy=policy
    )
    return obj, dbname, bucket


def test_minimal_example_becomes_ready(
    hello_volume: None, operator: KopfRunner, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    _create(kube_api, k8s_namespace, _example("minimal.yaml"))
    obj = _ready(kube_api, k8s_namespace, "hello")
    status = obj["status"]
    for ctype in ("DatabaseReady", "CacheReady", "BucketReady", "ServicesReady"):
        c = condition(obj, ctype)
        assert c is not None and c["status"] == "True", c
        assert c["observedGeneration"] == obj["metadata"]["generation"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["gatewayURL"].startswith("http://hello-gateway.")
    # One telemetry project per app platform (the example ships iOS only), its DSN made once.
    ios = status["apps"]["ios"]
    assert set(status["apps"]) == {"ios"} and ios["telemetryProject"] == "hello-ios"
    key = k8s.CoreV1Api(kube_api).read_namespaced_secret("hello-app-keys", k8s_namespace)
    public_key = base64.b64decode(key.data["telemetry-key-ios"]).decode()
    assert ios["sentryDSN"] == status["gatewayURL"].replace("://", f"://{public_key}@", 1) + (
        "/telemetry/1"
    )
    assert all(s["available"] for s in status["services"].values())
    # The sync checkpoint key: a usable key, made once (unchanged by later reconciles, below).
    sync_keys = k8s.CoreV1Api(kube_api).read_namespaced_secret("hello-sync-keys", k8s_namespace)
    assert parse_keys(base64.b64decode(sync_keys.data["checkpoint-keys"]).decode()).signing
    assert sync_keys.metadata.annotations["mobileplane.io/generated"] == "true"
    deployments = k8s.AppsV1Api(kube_api).list_namespaced_deployment(k8s_namespace).items
    owned = [
        d
        for d in deployments
        if d.metadata.owner_references and d.metadata.owner_references[0].kind == "MobilePlatform"
    ]
    # The Ready transition was announced as a Kubernetes Event on the MobilePlatform.
    events = eventually(
        lambda: [
            e
            for e in k8s.CoreV1Api(kube_api).list_namespaced_event(k8s_namespace).items
            if e.involved_object.name == "hello" and e.reason == "Ready"
        ],
        30,
        "a Ready event",
    )
    assert events[0].involved_object.kind == "MobilePlatform"
    components = {d.metadata.labels["app.kubernetes.io/component"] for d in owned}
    assert components >= set(SERVICE_NAMES) - set(UNSHIPPED_SERVICES)
    assert not components & set(UNSHIPPED_SERVICES)
    # A reconcile of a changed spec keeps the sync key Secret as it is: never rewritten.
    k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s_namespace,
        PLURAL,
        "hello",
        {"spec": {"services": {"sync": {"replicas": 2}}}},
    )
    apps = k8s.AppsV1Api(kube_api)
    eventually(
        lambda: apps.read_namespaced_deployment("hello-sync", k8s_namespace).spec.replicas == 2,
        30,
        "sync's replicas to follow the spec",
    )
    again = k8s.CoreV1Api(kube_api).read_namespaced_secret("hello-sync-keys", k8s_namespace)
    assert again.metadata.resource_version == sync_keys.metadata.resource_version
    assert again.data == sync_keys.data


def test_external_database_and_bucket_with_delete_policy(
    operator: KopfRunner, kube_api: k8s.ApiClient, k8s_namespace: str, stack: StackSettings
) -> None:
    """On SeaweedFS, which implements every bucket setting: all are applied, as asked."""
    server = S3Server(
        "seaweedfs",
        S3Endpoint(seaweedfs_endpoint(), stack.s3_region, stack.s3_access_key, stack.s3_secret_key),
        IMPLEMENTS["seaweedfs"],
        component_data_dir("seaweedfs"),
    )
    s3 = server.client()
    obj, dbname, bucket = _external(
        stack, kube_api, k8s_namespace, "Delete", server.endpoint.endpoint_url
    )
    _create(kube_api, k8s_namespace, obj)
    ready = _ready(kube_api, k8s_namespace, "shop")
    assert ready["status"]["database"]["name"] == dbname
    assert ready["status"]["bucket"] == bucket
    bucket_ready = condition(ready, "BucketReady")
    assert bucket_ready is not None
    assert bucket_ready["message"] == f"bucket {bucket}", bucket_ready  # no "not applied"
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (dbname,)).fetchone()
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert set(block.values()) == {True} and len(block) == 4
    lifecycle = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert lifecycle["expire-tmp"]["Filter"] == {"Prefix": "tmp/"}
    assert lifecycle["expire-tmp"]["Expiration"] == {"Days": 7}
    assert lifecycle["abort-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 2
    }
    s3.put_object(Bucket=bucket, Key="avatars/u1.jpg", Body=b"jpeg")

    _delete_and_wait(kube_api, k8s_namespace, "shop")
    with psycopg.connect(stack.database_url) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (dbname,)).fetchone() is None
        )
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", (dbname,)).fetchone() is None
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket not in names


def test_retain_policy_keeps_database_and_bucket(
    operator: KopfRunner,
    kube_api: k8s.ApiClient,
    k8s_namespace: str,
    stack: StackSettings,
    s3_client: Any,
) -> None:
    obj, dbname, bucket = _external(stack, kube_api, k8s_namespace, "Retain")
    _create(kube_api, k8s_namespace, obj)
    ready = _ready(kube_api, k8s_namespace, "shop")
    # versitygw implements none of the bucket settings: Ready, and the condition says so.
    bucket_ready = condition(ready, "BucketReady")
    assert bucket_ready is not None
    assert bucket_ready["message"].startswith(f"bucket {bucket}; not applied: encryption: ")
    assert "PutPublicAccessBlock answered NotImplemented" in bucket_ready["message"]
    warnings = eventually(
        lambda: [
            e
            for e in k8s.CoreV1Api(kube_api).list_namespaced_event(k8s_namespace).items
            if e.involved_object.name == "shop" and e.reason == "BucketSettingsNotApplied"
        ],
        30,
        "a Warning event naming the settings the server lacks",
    )
    assert warnings[0].type == "Warning" and "encryption" in warnings[0].message
    _delete_and_wait(kube_api, k8s_namespace, "shop")
    try:
        with psycopg.connect(stack.database_url) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (dbname,)).fetchone()
        s3_client.head_bucket(Bucket=bucket)
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{dbname}"')
        for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3_client.delete_object(Bucket=bucket, Key=o["Key"])
        s3_client.delete_bucket(Bucket=bucket)


def test_drift_is_restored_and_spec_changes_roll_out(
    hello_volume: None, operator: KopfRunner, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    _create(kube_api, k8s_namespace, _example("minimal.yaml"))
    _ready(kube_api, k8s_namespace, "hello")
    apps = k8s.AppsV1Api(kube_api)
    before = apps.read_namespaced_deployment("hello-profiles", k8s_namespace)

    apps.delete_namespaced_deployment("hello-profiles", k8s_namespace)

    def restored() -> k8s.V1Deployment | None:
        try:
            d = apps.read_namespaced_deployment("hello-profiles", k8s_namespace)
        except k8s.ApiException:
            return None
        return d if d.metadata.uid != before.metadata.uid else None

    eventually(restored, 30, "the deleted Deployment to be restored")

    apps.patch_namespaced_deployment(
        "hello-auth",
        k8s_namespace,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "auth", "image": "hand-edited:1"}]}}
            }
        },
    )
    eventually(
        lambda: (
            apps.read_namespaced_deployment("hello-auth", k8s_namespace)
            .spec.template.spec.containers[0]
            .image
            != "hand-edited:1"
        ),
        30,
        "the hand-edited image to be taken back",
    )

    hash_before = (before.spec.template.metadata.annotations or {}).get(
        "mobileplane.io/config-hash"
    )
    k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s_namespace,
        PLURAL,
        "hello",
        {"spec": {"services": {"profiles": {"replicas": 3}}}},
    )
    eventually(
        lambda: apps.read_namespaced_deployment("hello-profiles", k8s_namespace).spec.replicas == 3,
        30,
        "replicas to follow the spec",
    )
    _ready(kube_api, k8s_namespace, "hello")
    after = apps.read_namespaced_deployment("hello-profiles", k8s_namespace)
    assert (after.spec.template.metadata.annotations or {}).get(
        "mobileplane.io/config-hash"
    ) is not None
    assert hash_before is not None

    # A service switched off is pruned, and the platform stays Ready without it.
    k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s_namespace,
        PLURAL,
        "hello",
        {"spec": {"services": {"content": {"enabled": False}}}},
    )

    def pruned() -> bool:
        try:
            apps.read_namespaced_deployment("hello-content", k8s_namespace)
        except k8s.ApiException as e:
            return e.status == 404
        return False

    eventually(pruned, 30, "the disabled service's Deployment to be pruned")

    def without_content() -> dict[str, Any] | None:
        obj = _ready(kube_api, k8s_namespace, "hello")
        return obj if "content" not in obj["status"]["services"] else None

    ready = eventually(without_content, 30, "the status to drop the disabled service")

    # The app ships on Android too: a second telemetry project and DSN; iOS's stays the same.
    ios_dsn = ready["status"]["apps"]["ios"]["sentryDSN"]
    k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s_namespace,
        PLURAL,
        "hello",
        {"spec": {"app": {"android": {"packageNames": ["com.example.hello"]}}}},
    )

    def with_android() -> dict[str, Any] | None:
        obj = _ready(kube_api, k8s_namespace, "hello")
        return obj if "android" in obj["status"].get("apps", {}) else None

    both = eventually(with_android, 30, "an Android telemetry project in the status")["status"]
    assert both["apps"]["ios"]["sentryDSN"] == ios_dsn
    assert both["apps"]["android"]["telemetryProject"] == "hello-android"
    assert both["apps"]["android"]["sentryDSN"].endswith("/telemetry/2")


def test_unreachable_database_is_a_condition_not_a_crash(
    operator: KopfRunner, kube_api: k8s.ApiClient, k8s_namespace: str, stack: StackSettings
) -> None:
    obj, _, _ = _external(stack, kube_api, k8s_namespace, "Retain")
    del obj["spec"]["media"]
    obj["spec"]["backups"]["enabled"] = False
    obj["spec"]["database"]["external"]["adminSecretRef"]["name"] = "nowhere"
    _secret(
        kube_api,
        k8s_namespace,
        "nowhere",
        {"host": "127.0.0.1", "port": "1", "username": "x", "password": "y"},
    )
    _create(kube_api, k8s_namespace, obj)

    def reported() -> dict[str, Any] | None:
        c = condition(get_platform(kube_api, k8s_namespace, "shop"), "DatabaseReady")
        return c if c and c["reason"] == "Unreachable" else None

    c = eventually(reported, 60, "DatabaseReady=False reason Unreachable")
    assert c["status"] == "False"
    ready = condition(get_platform(kube_api, k8s_namespace, "shop"), "Ready")
    assert ready is not None and ready["status"] == "False"


def test_signing_keys_rotate_and_the_old_key_stays_published(
    hello_volume: None, operator: KopfRunner, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    obj = copy.deepcopy(_example("minimal.yaml"))
    _create(kube_api, k8s_namespace, obj)
    first = _ready(kube_api, k8s_namespace, "hello")["status"]["signingKeys"]
    k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        GROUP, VERSION, k8s_namespace, PLURAL, "hello", {"spec": {"auth": {"keyRotation": "r1"}}}
    )

    def rotated() -> dict[str, Any] | None:
        keys = ((get_platform(kube_api, k8s_namespace, "hello") or {}).get("status") or {}).get(
            "signingKeys"
        ) or {}
        return keys if keys.get("rotation") == "r1" else None

    second = eventually(rotated, 30, "the signing key to rotate")
    assert second["activeKid"] != first["activeKid"]
    assert first["activeKid"] in second["publishedKids"]


def test_operator_killed_mid_reconcile_converges_after_restart(
    hello_volume: None, kube_api: k8s.ApiClient, k8s_namespace: str, tmp_path: Path
) -> None:
    """SIGKILL the operator once it has begun writing children; a new one finishes the job."""
    install_crds(kube_api)
    sa = f"mp-operator-{uuid.uuid4().hex[:8]}"
    for obj in chart_objects(k8s_namespace, sa):
        apply(kube_api, obj, k8s_namespace if obj["kind"] == "ServiceAccount" else None)
    kubeconfig = operator_kubeconfig(kube_api, k8s_namespace, sa, tmp_path / "kubeconfig")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "MOBILEPLANE_OPERATOR_STANDALONE": "true"}
    args = [
        "run",
        "--namespace",
        k8s_namespace,
        "--standalone",
        "-m",
        "mobileplane.operator.handlers",
    ]
    kopf_bin = str(Path(sys.executable).parent / "kopf")
    log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen([kopf_bin, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    apps = k8s.AppsV1Api(kube_api)
    try:
        _create(kube_api, k8s_namespace, _example("minimal.yaml"))
        eventually(
            lambda: apps.list_namespaced_deployment(k8s_namespace).items,
            60,
            "the first operator to write a child",
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        log.close()
    try:
        with (
            environment(KUBECONFIG=str(kubeconfig), MOBILEPLANE_OPERATOR_STANDALONE="true"),
            KopfRunner(args, timeout=60) as runner,
        ):
            obj = _ready(kube_api, k8s_namespace, "hello")
            assert condition(obj, "ServicesReady")["status"] == "True"  # type: ignore[index]
            _delete_all(kube_api, k8s_namespace)
        assert runner.exception is None, runner.output
    finally:
        rbac = k8s.RbacAuthorizationV1Api(kube_api)
        rbac.delete_cluster_role_binding(sa)
        rbac.delete_cluster_role(sa)


@pytest.mark.timeout(900)
def test_fifty_platforms_at_once_all_become_ready(
    operator: KopfRunner, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    """Fifty MobilePlatforms applied together (in-cluster cache, a volume each) all get Ready."""
    count = 50
    names = [f"app{i:02d}" for i in range(count)]
    with ExitStack() as volumes:
        for name in names:
            volumes.enter_context(volume_for(kube_api, k8s_namespace, f"data-{name}-postgres-0"))
        for name in names:
            obj = _example("minimal.yaml")
            obj["metadata"]["name"] = name
            # Two services each keep the cluster's pod count modest on two cores.
            obj["spec"]["services"] = {
                s: {"enabled": s in ("gateway", "auth")} for s in SERVICE_NAMES
            }
            _create(kube_api, k8s_namespace, obj)

        def all_ready() -> bool:
            items = k8s.CustomObjectsApi(kube_api).list_namespaced_custom_object(
                GROUP, VERSION, k8s_namespace, PLURAL
            )["items"]
            ready = [i for i in items if (condition(i, "Ready") or {}).get("status") == "True"]
            return len(ready) == count

        started = time.monotonic()
        eventually(all_ready, 600, f"all {count} MobilePlatforms to be Ready")
        print(f"{count} MobilePlatforms Ready in {time.monotonic() - started:.0f}s")
        _delete_all(kube_api, k8s_namespace, timeout=600)


@pytest.mark.skipif(
    use_existing_cluster(), reason="restarts the local stack's API server; not someone's cluster"
)
def test_operator_survives_an_api_server_restart(
    hello_volume: None, operator: KopfRunner, kube_api: k8s.ApiClient, k8s_namespace: str
) -> None:
    """Watches reconnect: after kube-apiserver restarts, spec changes still reach children."""
    _create(kube_api, k8s_namespace, _example("minimal.yaml"))
    _ready(kube_api, k8s_namespace, "hello")

    ctx = manager.context(Progress(quiet=True))
    assert ctx.procs.stop("kube-apiserver"), "the stack's API server was not running"
    Kube().start(ctx)  # starts what is not running, waits for /readyz

    k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s_namespace,
        PLURAL,
        "hello",
        {"spec": {"services": {"content": {"replicas": 2}}}},
    )
    apps = k8s.AppsV1Api(kube_api)
    eventually(
        lambda: apps.read_namespaced_deployment("hello-content", k8s_namespace).spec.replicas == 2,
        120,
        "the operator to act on a change made after the restart",
    )
    _ready(kube_api, k8s_namespace, "hello")


def test_one_replica_is_active_and_a_standby_takes_over(
    hello_volume: None, kube_api: k8s.ApiClient, k8s_namespace: str, tmp_path: Path
) -> None:
    """Two replicas under kopf peering: the higher priority one works, the other waits; when
    the active one dies without a goodbye (SIGKILL), the standby takes over once the dead
    one's peering record expires."""
    install_crds(kube_api)
    sa = f"mp-operator-{uuid.uuid4().hex[:8]}"
    for obj in chart_objects(k8s_namespace, sa):
        apply(kube_api, obj, k8s_namespace if obj["kind"] == "ServiceAccount" else None)
    kubeconfig = operator_kubeconfig(kube_api, k8s_namespace, sa, tmp_path / "kubeconfig")
    peering = f"mp-peering-{uuid.uuid4().hex[:8]}"  # this test's own, tests run in parallel
    peerings = k8s.CustomObjectsApi(kube_api)
    peerings.create_cluster_custom_object(
        "kopf.dev",
        "v1",
        "clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}},
    )
    kopf_bin = str(Path(sys.executable).parent / "kopf")
    args = ["run", "--namespace", k8s_namespace, "--verbose", "-m", "mobileplane.operator.handlers"]

    def replica(name: str, priority: int) -> tuple[subprocess.Popen[bytes], Path]:
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "MOBILEPLANE_OPERATOR_PEERING": peering,
            "MOBILEPLANE_OPERATOR_PRIORITY": str(priority),
            "MOBILEPLANE_OPERATOR_PEERING_LIFETIME": "10",
            "MOBILEPLANE_OPERATOR_STANDALONE": "false",
        }
        path = tmp_path / f"{name}.log"
        with path.open("wb") as log:
            process = subprocess.Popen(
                [kopf_bin, *args], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        return process, path

    active, _ = replica("active", 100)
    standby, standby_log = replica("standby", 50)
    apps = k8s.AppsV1Api(kube_api)
    try:
        _create(kube_api, k8s_namespace, _example("minimal.yaml"))
        _ready(kube_api, k8s_namespace, "hello")
        eventually(
            lambda: "Pausing operations" in standby_log.read_text(errors="replace"),
            30,
            "the standby to pause in favour of the active replica",
        )
        active.send_signal(signal.SIGKILL)
        active.wait(10)
        k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            k8s_namespace,
            PLURAL,
            "hello",
            {"spec": {"services": {"gateway": {"replicas": 3}}}},
        )
        eventually(
            lambda: (
                apps.read_namespaced_deployment("hello-gateway", k8s_namespace).spec.replicas == 3
            ),
            90,
            "the standby to take over and roll the change out",
        )
        assert "Resuming operations" in standby_log.read_text(errors="replace")
        _delete_all(kube_api, k8s_namespace)  # while the standby can run finalizers
    finally:
        for process in (active, standby):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        peerings.delete_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
        rbac = k8s.RbacAuthorizationV1Api(kube_api)
        rbac.delete_cluster_role_binding(sa)
        rbac.delete_cluster_role(sa)
