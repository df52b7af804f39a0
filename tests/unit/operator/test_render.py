"""The renderer's children: what a spec renders, what it leaves out, and what every child has."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from render_fixtures import (
    DB_PASSWORD,
    KEYSET,
    MINIMAL,
    NAMESPACE,
    SYNC_KEYS,
    UID,
    example,
    example_input,
    find,
    make_input,
    pod_specs,
    with_changes,
)

from mobileplane.operator.keys import KeySet
from mobileplane.operator.render import (
    base_name,
    child_key,
    is_generated,
    keyset_from_secret_data,
    render,
    signing_keys_data,
)
from mobileplane.operator.render.routes import route_table
from mobileplane.operator.render.secrets import stored_sync_keys
from mobileplane.operator.spec import SERVICE_NAMES, UNSHIPPED_SERVICES
from mobileplane.services.sync.tokens import parse_keys

#: The services a default platform runs: every one this version ships.
SHIPPED = [s for s in SERVICE_NAMES if s not in UNSHIPPED_SERVICES]

LABEL_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
}
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "CronJob"}


def _render(changes: dict[str, Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
    return render(make_input(with_changes(MINIMAL, changes or {}), **kw))


def _keys(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


# -- what a spec renders --------------------------------------------------------------------


def test_minimal_example_renders_the_default_platform() -> None:
    per_service = {
        (kind, f"hello-{s}")
        for s in SHIPPED
        for kind in ("Deployment", "Service", "PodDisruptionBudget")
    }
    objects = render(example_input("minimal"))
    migrate = [o["metadata"]["name"] for o in objects if o["kind"] == "Job"]
    assert _keys(objects) == per_service | {
        ("Secret", "hello-database"),
        ("Secret", "hello-signing-keys"),
        ("Secret", "hello-app-keys"),
        ("Secret", "hello-sync-keys"),
        ("ConfigMap", "hello-config"),
        ("ConfigMap", "hello-gateway-routes"),
        ("NetworkPolicy", "hello-default-deny"),
        ("NetworkPolicy", "hello-gateway"),
        ("NetworkPolicy", "hello-services"),
        ("NetworkPolicy", "hello-release-controller"),
        ("NetworkPolicy", "hello-postgres"),
        ("NetworkPolicy", "hello-redis"),
        ("StatefulSet", "hello-postgres"),
        ("Service", "hello-postgres"),
        ("Deployment", "hello-redis"),
        ("Service", "hello-redis"),
        ("Job", migrate[0]),
    }
    assert re.fullmatch(r"hello-migrate-[0-9a-f]{10}", migrate[0])


@pytest.mark.parametrize("service", [s for s in SERVICE_NAMES if s != "gateway"])
def test_a_disabled_service_renders_nothing(service: str) -> None:
    objects = _render({f"services.{service}.enabled": False})
    # Generated Secrets stay: the signing keys outlive a paused auth service.
    assert not [
        o
        for o in objects
        if not is_generated(o)
        and (
            o["metadata"]["name"] == f"hello-{service}"
            or o["metadata"]["labels"]["app.kubernetes.io/component"] == service
        )
    ]
    config = find(objects, "ConfigMap", "hello-config")
    assert config is not None
    assert not [key for key in config["data"] if key.startswith(f"{service.upper()}_")]
    behind_gateway = find(objects, "NetworkPolicy", "hello-services")
    assert behind_gateway is not None
    values = behind_gateway["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert service not in values


@pytest.mark.parametrize(
    ("autoscaling", "replicas", "has_hpa", "rendered_replicas"),
    [
        pytest.param({"enabled": False}, 3, False, 3, id="fixed-replicas"),
        pytest.param({"enabled": False}, 0, False, 0, id="scaled-to-zero"),
        pytest.param(
            {"enabled": True, "minReplicas": 2, "maxReplicas": 5}, 3, True, None, id="hpa-owns"
        ),
    ],
)
def test_autoscaling_owns_the_replica_count(
    autoscaling: dict[str, Any], replicas: int, has_hpa: bool, rendered_replicas: int | None
) -> None:
    objects = _render(
        {"services.sync.autoscaling": autoscaling, "services.sync.replicas": replicas}
    )
    deployment = find(objects, "Deployment", "hello-sync")
    hpa = find(objects, "HorizontalPodAutoscaler", "hello-sync")
    assert deployment is not None
    assert deployment["spec"].get("replicas") == rendered_replicas
    assert (hpa is not None) == has_hpa
    if hpa is not None:
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] == "hello-sync"
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)


@pytest.mark.parametrize(
    ("changes", "present", "absent"),
    [
        pytest.param(
            {},
            {("StatefulSet", "hello-postgres"), ("NetworkPolicy", "hello-postgres")},
            set(),
            id="in-cluster-database",
        ),
        pytest.param(
            {
                "database.mode": "External",
                "database.external": {"adminSecretRef": {"name": "pg-admin"}},
            },
            set(),
            {
                ("StatefulSet", "hello-postgres"),
                ("Service", "hello-postgres"),
                ("NetworkPolicy", "hello-postgres"),
            },
            id="external-database",
        ),
        pytest.param(
            {},
            {("Deployment", "hello-redis"), ("Service", "hello-redis")},
            set(),
            id="in-cluster-cache",
        ),
        pytest.param(
            {"cache.mode": "External", "cache.urlSecretRef": {"name": "r", "key": "url"}},
            set(),
            {
                ("Deployment", "hello-redis"),
                ("Service", "hello-redis"),
                ("NetworkPolicy", "hello-redis"),
            },
            id="external-cache",
        ),
        pytest.param({}, set(), {("CronJob", "hello-backup")}, id="backups-off"),
        pytest.param(
            {"backups.enabled": True, "backups.bucket": "hello-backups"},
            {("CronJob", "hello-backup")},
            set(),
            id="backups-on",
        ),
    ],
)
def test_optional_children(
    changes: dict[str, Any], present: set[tuple[str, str]], absent: set[tuple[str, str]]
) -> None:
    keys = _keys(_render(changes))
    assert present <= keys
    assert not absent & keys


def test_in_cluster_postgres_follows_the_spec() -> None:
    objects = _render(
        {
            "database.inCluster": {"image": "postgres:16", "storage": "5Gi"},
            "database.deletionPolicy": "Delete",
        }
    )
    sts = find(objects, "StatefulSet", "hello-postgres")
    svc = find(objects, "Service", "hello-postgres")
    assert sts is not None and svc is not None
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "postgres:16"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert svc["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == "hello-postgres"
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    for var, key in (("POSTGRES_USER", "username"), ("POSTGRES_PASSWORD", "password")):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "hello-database", "key": key}


def test_external_cache_url_comes_from_its_secret() -> None:
    objects = _render({"cache.mode": "External", "cache.urlSecretRef": {"name": "r", "key": "u"}})
    config = find(objects, "ConfigMap", "hello-config")
    assert config is not None and "REDIS_URL" not in config["data"]
    for s in SHIPPED:
        deployment = find(objects, "Deployment", f"hello-{s}")
        assert deployment is not None
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "r", "key": "u"}


@pytest.mark.parametrize(
    ("changes", "bucket"),
    [
        pytest.param({"backups.bucket": "own-backups"}, "own-backups", id="own-bucket"),
        pytest.param(
            {"media": {"bucket": "hello-media", "credentialsSecretRef": {"name": "m"}}},
            "hello-media",
            id="media-bucket",
        ),
    ],
)
def test_backups_target(changes: dict[str, Any], bucket: str) -> None:
    objects = _render({"backups.enabled": True, "backups.schedule": "15 2 * * *", **changes})
    cron = find(objects, "CronJob", "hello-backup")
    config = find(objects, "ConfigMap", "hello-config")
    assert cron is not None and config is not None
    assert cron["spec"]["schedule"] == "15 2 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert config["data"]["BACKUP_BUCKET"] == bucket
    assert config["data"]["BACKUP_PREFIX"] == "backups/"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"][0] == "pg_dump"
    upload_env = {e["name"] for e in pod["containers"][0]["env"]}
    assert ("AWS_SECRET_ACCESS_KEY" in upload_env) == ("media" in changes)


# -- what every child has -------------------------------------------------------------------


def _all_renders() -> Iterator[Any]:
    yield pytest.param(render(example_input("minimal")), id="minimal")
    yield pytest.param(render(example_input("complete")), id="complete")
    yield pytest.param(_render({"backups.enabled": True, "backups.bucket": "b-1"}), id="backups")


@pytest.mark.parametrize("objects", list(_all_renders()))
def test_every_child_is_labelled_namespaced_and_unowned(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == NAMESPACE, child_key(obj)
        assert set(meta["labels"]) == LABEL_KEYS, child_key(obj)
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "mobileplane-operator"
        assert meta["labels"]["app.kubernetes.io/name"] == "mobileplane"
        assert "ownerReferences" not in meta  # the caller adopts
        for pod_meta in _pod_metadata(obj):
            assert set(pod_meta["labels"]) == LABEL_KEYS
    assert len({child_key(o) for o in objects}) == len(objects), "duplicate children"


def _pod_metadata(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
        return [obj["spec"]["template"]["metadata"]]
    if obj["kind"] == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]]
    return []


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("hello", id="plain"),
        pytest.param("a" * 43, id="longest-kept"),
        pytest.param("a" * 63, id="long"),
        pytest.param("x" * 200 + ".example", id="subdomain-253"),
        pytest.param("3d.shop", id="digit-and-dot"),
    ],
)
def test_child_names_are_valid_for_any_platform_name(name: str) -> None:
    objects = _render(
        {
            "backups.enabled": True,
            "backups.bucket": "b-1",
            "services.sync.autoscaling": {"enabled": True},
        },
        name=name,
    )
    for obj in objects:
        child = obj["metadata"]["name"]
        assert DNS_1123_SUBDOMAIN.match(child) and len(child) <= 63, child
        if obj["kind"] in ("Service", "Deployment", "StatefulSet", "Job", "CronJob"):
            assert DNS_1035_LABEL.match(child), child
        if obj["kind"] in ("StatefulSet", "CronJob"):
            assert len(child) <= 52, child  # room for the controllers' suffixes
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        pytest.param("hello", True, id="plain"),
        pytest.param("a" * 43, True, id="longest-kept"),
        pytest.param("a" * 44, False, id="too-long"),
        pytest.param("3d", False, id="starts-with-digit"),
        pytest.param("my.shop", False, id="has-a-dot"),
    ],
)
def test_base_name_keeps_sensible_names(name: str, kept: bool) -> None:
    assert (base_name(name) == name) == kept
    assert DNS_1035_LABEL.match(base_name(name)) and len(base_name(name)) <= 43


def test_long_names_stay_distinct() -> None:
    a, b = "p" * 60 + "-a", "p" * 60 + "-b"
    assert base_name(a) != base_name(b)
    assert len(base_name(a)) <= 43


@pytest.mark.parametrize("objects", list(_all_renders()))
def test_every_pod_is_restricted(objects: list[dict[str, Any]]) -> None:
    workloads = [o for o in objects if o["kind"] in WORKLOAD_KINDS]
    assert workloads
    for obj in workloads:
        for pod in pod_specs(obj):
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] > 0
            assert pod["automountServiceAccountToken"] is False
            for c in [*pod.get("initContainers", []), *pod["containers"]]:
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False, child_key(obj)
                assert sc["readOnlyRootFilesystem"] is True
                assert sc["capabilities"] == {"drop": ["ALL"]}
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_service_deployments() -> None:
    spec = with_changes(
        MINIMAL,
        {
            "image": {"repository": "registry.local/mp", "tag": "sha256:" + "a" * 64},
            "services.content.image": "registry.local/content:7",
            "services.profiles.resources": {"requests": {"cpu": "1"}, "limits": {}},
        },
    )
    objects = render(make_input(spec))
    for s in SHIPPED:
        deployment = find(objects, "Deployment", f"hello-{s}")
        service = find(objects, "Service", f"hello-{s}")
        pdb = find(objects, "PodDisruptionBudget", f"hello-{s}")
        assert deployment is not None and service is not None and pdb is not None
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["mobileplane", "serve", s]
        assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["envFrom"] == [{"configMapRef": {"name": "hello-config"}}]
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["ports"][0]["port"] == 8080
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
        expected = {
            "content": "registry.local/content:7",
        }.get(s, "registry.local/mp@sha256:" + "a" * 64)
        assert container["image"] == expected
    profiles = find(objects, "Deployment", "hello-profiles")
    assert profiles is not None
    assert profiles["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "1"}
    }


def test_network_policies() -> None:
    objects = render(example_input("minimal"))
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    everyone = {"app.kubernetes.io/name": "mobileplane", "app.kubernetes.io/instance": "hello"}
    deny = policies["hello-default-deny"]
    # Ingress listed with no rules denies all; no `ingress: []`, which the API server drops
    # (so applying it would be a change every time).
    assert deny == {
        "podSelector": {"matchLabels": everyone},
        "policyTypes": ["Ingress"],
    }
    gateway = policies["hello-gateway"]
    assert gateway["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    behind = policies["hello-services"]
    assert behind["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {**everyone, "app.kubernetes.io/component": "gateway"}}}
    ]
    assert behind["podSelector"]["matchExpressions"][0]["values"] == [
        s for s in SHIPPED if s != "gateway"
    ]
    assert all(p["policyTypes"] == ["Ingress"] for p in policies.values())  # egress open
    # The release controller (the chart's namespace and labels) reads release health and
    # writes app config directly.
    controller = policies["hello-release-controller"]
    assert controller["podSelector"]["matchExpressions"][0]["values"] == ["telemetry", "appconfig"]
    assert controller["ingress"][0]["from"] == [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "mobileplane-system"}
            },
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "mobileplane",
                    "app.kubernetes.io/component": "release-controller",
                }
            },
        }
    ]


# -- secrets --------------------------------------------------------------------------------


def test_database_secret() -> None:
    objects = render(example_input("complete"))
    secret = find(objects, "Secret", "shop-database")
    assert secret is not None and is_generated(secret)
    assert secret["metadata"]["annotations"]["mobileplane.io/platform-uid"] == UID
    data = secret["stringData"]
    assert (data["username"], data["database"], data["port"]) == ("shop", "shop", "5432")
    assert data["password"] == DB_PASSWORD
    url = urlsplit(data["url"])
    assert (url.scheme, url.hostname, url.port, url.path) == (
        "postgresql",
        "pg.example.com",
        5432,
        "/shop",
    )
    assert url.password is not None and url.query == "sslmode=require"
    assert "@z@" not in data["url"]  # the password's '@' is escaped


def test_signing_keys_secret_publishes_every_key() -> None:
    objects = render(example_input("minimal"))
    secret = find(objects, "Secret", "hello-signing-keys")
    assert secret is not None and is_generated(secret)
    data = secret["stringData"]
    assert KEYSET.active is not None
    assert data["active-kid"] == KEYSET.active.kid
    jwks = json.loads(data["jwks.json"])
    assert jwks["keys"][0]["kid"] == KEYSET.active.kid
    assert {k["kid"] for k in jwks["keys"]} == {k.kid for k in KEYSET.keys}
    assert all("d" not in k for k in jwks["keys"])
    for key in KEYSET.keys:
        assert data[f"key-{key.kid}.pem"] == key.private_pem
    assert keyset_from_secret_data(data) == KEYSET
    assert keyset_from_secret_data(signing_keys_data(KeySet())) == KeySet()
    generated = [o for o in objects if is_generated(o)]
    assert {o["metadata"]["name"] for o in generated} == {
        "hello-database",
        "hello-signing-keys",
        "hello-app-keys",
        "hello-sync-keys",
    }


def test_sync_keys_secret_holds_a_usable_key_only_sync_reads() -> None:
    objects = render(example_input("minimal"))
    secret = find(objects, "Secret", "hello-sync-keys")
    assert secret is not None and is_generated(secret)  # created once, never overwritten
    assert secret["metadata"]["annotations"]["mobileplane.io/platform-uid"] == UID
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "sync"
    stored = stored_sync_keys(secret["stringData"])
    assert stored == SYNC_KEYS
    assert parse_keys(stored).retained == ()  # one key, usable by the sync service
    ref = {"secretKeyRef": {"name": "hello-sync-keys", "key": "checkpoint-keys"}}
    readers = {
        o["metadata"]["name"]
        for o in objects
        for spec in pod_specs(o)
        for container in spec["containers"]
        for var in container.get("env", [])
        if var.get("valueFrom") == ref and var["name"] == "SYNC_CHECKPOINT_KEYS"
    }
    assert readers == {"hello-sync"}


def test_sync_keys_are_stable_across_re_renders() -> None:
    """The operator passes the key it reads back: the same Secret, byte for byte, every time."""
    first = find(render(example_input("minimal")), "Secret", "hello-sync-keys")
    assert first is not None
    read_back = stored_sync_keys(first["stringData"])
    assert read_back is not None
    again = find(
        render(make_input(example("minimal")[1], sync_keys=read_back)), "Secret", "hello-sync-keys"
    )
    assert again == first
    # A key rotated by hand (new first, old still verifying) is kept as it is.
    rotated = f"{'n' * 43},{read_back}"
    kept = find(render(make_input(MINIMAL, sync_keys=rotated)), "Secret", "hello-sync-keys")
    assert kept is not None and stored_sync_keys(kept["stringData"]) == rotated


def test_no_sync_keys_stored_is_none() -> None:
    assert stored_sync_keys(None) is None
    assert stored_sync_keys({}) is None
    assert stored_sync_keys({"checkpoint-keys": "  "}) is None


# -- migrations -----------------------------------------------------------------------------


def _migration_name(changes: dict[str, Any]) -> str:
    return str(next(o["metadata"]["name"] for o in _render(changes) if o["kind"] == "Job"))


@pytest.mark.parametrize(
    ("changes", "same"),
    [
        pytest.param({"image.tag": "0.2.0"}, False, id="new-image"),
        pytest.param({"image.repository": "registry.local/mp"}, False, id="new-repository"),
        pytest.param({"database.name": "other_db"}, False, id="other-database"),
        pytest.param({"services.sync.replicas": 4}, True, id="replicas"),
        pytest.param({"services.sync.enabled": False}, True, id="service-disabled"),
        pytest.param({"auth.accessTokenTTLSeconds": 60}, True, id="settings"),
    ],
)
def test_migration_job_is_named_by_what_it_migrates(changes: dict[str, Any], same: bool) -> None:
    assert (_migration_name(changes) == _migration_name({})) == same


def test_migration_job() -> None:
    job = next(o for o in render(example_input("minimal")) if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["mobileplane", "migrate"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] > 0 and job["spec"]["ttlSecondsAfterFinished"] > 0


# -- purity ---------------------------------------------------------------------------------


def _ids(node: Any, seen: dict[int, Any]) -> None:
    if isinstance(node, dict | list):
        assert id(node) not in seen, f"shared object {node!r}"
        seen[id(node)] = node
        for child in node.values() if isinstance(node, dict) else node:
            _ids(child, seen)


def test_render_is_deterministic_plain_and_unshared() -> None:
    name, spec = example("complete")
    first = render(make_input(spec, name=name))
    assert first == render(make_input(spec, name=name))
    assert json.loads(json.dumps(first)) == first  # plain JSON data only
    _ids(first, {})  # no dict or list appears twice: callers may mutate what they get


def test_gateway_is_first_and_routes_only_enabled_services() -> None:
    objects = _render({"services.analytics.enabled": False})
    deployments = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"]
    assert deployments[0] == "hello-redis"  # data stores before services
    assert deployments[1] == "hello-gateway"
    table = route_table(make_input(with_changes(MINIMAL, {"services.analytics.enabled": False})))
    assert "analytics" not in {r["service"] for r in table["routes"]}
