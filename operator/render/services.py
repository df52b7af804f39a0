"""The workloads of each enabled service: Deployment, Service, HPA and PodDisruptionBudget.

A disabled service renders nothing; the caller deletes children it no longer renders.

- **Deployment** — one container running ``mobileplane serve <service>`` on port 8080
  (named ``http``), configured by ``envFrom`` the platform ConfigMap plus the Secrets it needs
  (database URL for all; cache URL when the cache is External; media credentials for
  content; signing keys for auth; checkpoint keys for sync; APNs/FCM credentials for
  notifications). With autoscaling
  on, ``replicas`` is left out so the HPA owns it (server-side apply would otherwise reset
  the count on every reconcile). The pod template carries the config hash.
- **Shutdown** — a ``preStop`` sleep keeps a stopping pod serving until its endpoint is gone
  from every Service, then SIGTERM lets uvicorn drain requests in flight (20 s) within the
  30 s grace period: rollouts and restarts drop no request. A crash's last log lines become
  its termination message (``FallbackToLogsOnError``), which the operator's conditions quote.
- **Schema first** — every service but the gateway waits in an init container
  (``mobileplane migrate --wait``) until the migration Job has brought the schema to its
  image's heads, instead of crash-looping until then.
- **Probes** — liveness ``/healthz`` checks only that the process serves (restarting a pod
  whose database is down cures nothing); readiness ``/readyz`` checks the dependencies, and
  its timeout exceeds the services kit's 2 s per-check timeout.
- **Service** — ClusterIP on 8080: the gateway's upstreams and the NetworkPolicies' targets.
- **PodDisruptionBudget** — ``maxUnavailable: 1`` rather than ``minAvailable: 1``: with one
  replica, ``minAvailable: 1`` would block every node drain forever, while ``maxUnavailable:
  1`` lets a drain proceed one pod at a time and keeps all but one replica of larger services
  serving, whatever the HPA scaled to. Unhealthy pods may always be evicted, so a crash-looping
  pod never blocks a drain either.
"""

from __future__ import annotations

from typing import Any

from mobileplane.operator.render.appkeys import PROJECTS_KEY, SOURCES_KEY
from mobileplane.operator.render.config import (
    APNS_KEY_DIR,
    FCM_CREDENTIALS_DIR,
    FCM_CREDENTIALS_FILE,
    GATEWAY_ROUTES_DIR,
    MEDIA_SERVICES,
    SIGNING_KEYS_DIR,
)
from mobileplane.operator.render.confighash import config_hash
from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.names import (
    CONFIG_HASH_ANNOTATION,
    HTTP_PORT,
    child_name,
    labels,
    metadata,
    selector,
)
from mobileplane.operator.render.pods import (
    app_image,
    container_security_context,
    env_secret,
    env_value,
    pod_spec,
    resources,
    secret_volume,
    spread,
    tmp_volume,
)
from mobileplane.operator.render.secrets import (
    DB_URL,
    SYNC_CHECKPOINT_KEYS_KEY,
    app_keys_secret_name,
    database_secret_name,
    signing_keys_secret_name,
    sync_keys_secret_name,
)
from mobileplane.operator.spec import CacheMode

#: Old ReplicaSets kept: the operator, not ``kubectl rollout undo``, decides what runs, so
#: more history is clutter; a few help to read what changed.
REVISION_HISTORY_LIMIT = 3
#: Room for request bodies Starlette spools to disk (over 1 MiB) and Python's tempfiles.
TMP_SIZE = "256Mi"


def _volumes(inp: RenderInput, service: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts) of a service's pods."""
    tmp, tmp_mount = tmp_volume(TMP_SIZE)
    volumes, mounts = [tmp], [tmp_mount]
    spec = inp.spec

    def add(volume: dict[str, Any], path: str) -> None:
        volumes.append(volume)
        mounts.append({"name": volume["name"], "mountPath": path, "readOnly": True})

    if service == "gateway":
        routes = child_name(inp.platform, "gateway-routes")
        add({"name": "routes", "configMap": {"name": routes}}, GATEWAY_ROUTES_DIR)
    if service == "auth":
        add(secret_volume("signing-keys", signing_keys_secret_name(inp.platform)), SIGNING_KEYS_DIR)
    if service == "notifications" and spec.push.apns:
        ref = spec.push.apns.key_secret_ref
        add(secret_volume("apns", ref.name, [(ref.key, "key.p8")]), APNS_KEY_DIR)
    if service == "notifications" and spec.push.fcm:
        ref = spec.push.fcm.service_account_secret_ref
        file = FCM_CREDENTIALS_FILE.rsplit("/", 1)[1]
        add(secret_volume("fcm", ref.name, [(ref.key, file)]), FCM_CREDENTIALS_DIR)
    return volumes, mounts


def _env(inp: RenderInput, service: str) -> list[dict[str, Any]]:
    spec = inp.spec
    env = [
        env_value("SERVICE_NAME", service),
        env_secret("DATABASE_URL", database_secret_name(inp.platform), DB_URL),
    ]
    if spec.cache.mode == CacheMode.EXTERNAL and spec.cache.url_secret_ref:
        ref = spec.cache.url_secret_ref
        env.append(env_secret("REDIS_URL", ref.name, ref.key))
    if service in MEDIA_SERVICES and spec.media:
        media = spec.media.credentials_secret_ref.name
        env.append(env_secret("AWS_ACCESS_KEY_ID", media, "accessKeyId"))
        env.append(env_secret("AWS_SECRET_ACCESS_KEY", media, "secretAccessKey"))
    smtp = spec.auth.email.smtp if spec.auth.email else None
    if service == "auth" and smtp and smtp.credentials_secret_ref:
        login = smtp.credentials_secret_ref.name
        env.append(env_secret("AUTH_SMTP_USERNAME", login, "username"))
        env.append(env_secret("AUTH_SMTP_PASSWORD", login, "password"))
    if service == "analytics":
        # The apps' sources and write keys, created or updated at startup.
        env.append(env_secret("ANALYTICS_SOURCES", app_keys_secret_name(inp.platform), SOURCES_KEY))
    if service == "sync":
        # MACs checkpoint tokens: a key devices' tokens were not made with sends them to resync.
        keys = sync_keys_secret_name(inp.platform)
        env.append(env_secret("SYNC_CHECKPOINT_KEYS", keys, SYNC_CHECKPOINT_KEYS_KEY))
    if service == "telemetry":
        # The apps' projects and DSN keys, created or updated at startup.
        env.append(
            env_secret("TELEMETRY_PROJECTS", app_keys_secret_name(inp.platform), PROJECTS_KEY)
        )
    return env


#: How long a stopping pod keeps serving before SIGTERM: long enough for the endpoint's
#: removal to reach every node's kube-proxy and the gateway's connection pool.
PRESTOP_SLEEP_SECONDS = 5

#: Startup probe failures allowed (every 2 s) before kubelet restarts a service that never
#: answered /healthz: 3 minutes.
STARTUP_PROBE_FAILURES = 90

#: The preStop sleep, uvicorn's 20 s graceful drain (``services.runner``) and a margin.
TERMINATION_GRACE_SECONDS = 30


def _container(inp: RenderInput, service: str, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    svc = inp.spec.services.by_name()[service]
    req, lim = svc.resources.requests, svc.resources.limits
    return {
        "name": service,
        "image": app_image(inp, service),
        "imagePullPolicy": inp.spec.image.pull_policy,
        # `mobileplane serve <service>` listens on 0.0.0.0:8080.
        "command": ["mobileplane", "serve", service],
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": child_name(inp.platform, "config")}}],
        "env": _env(inp, service),
        # Liveness starts only once the process answers: a start slowed by a busy node (imports
        # under a CPU limit took over 30 s on a loaded 2-core node in CI) is not killed and
        # restarted, which would only make it slower. Up to 3 minutes, checked every 2 s.
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": STARTUP_PROBE_FAILURES,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "resources": resources(
            {"cpu": req.cpu, "memory": req.memory}, {"cpu": lim.cpu, "memory": lim.memory}
        ),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
        # Zero-downtime rollouts: the endpoint is removed from Services and kube-proxy rules
        # while the pod still serves; only then does SIGTERM start uvicorn's drain.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        # A crash's last log lines become the container's termination message, which the
        # operator quotes in the MobilePlatform's ServicesReady condition.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


#: How long a service pod's init container waits for the migration Job (its own limit is
#: 10 minutes too): then the pod fails with a message that names the Job.
SCHEMA_WAIT_SECONDS = 600


def _wait_for_schema(inp: RenderInput, service: str) -> dict[str, Any]:
    """An init container that waits until the migration Job has brought the schema to this
    image's heads. Without it a service started first crash-looped until the Job was done
    (telemetry seeds its projects at startup): seen on the first real node, never on kwok."""
    return {
        "name": "wait-for-schema",
        "image": app_image(inp, service),
        "imagePullPolicy": inp.spec.image.pull_policy,
        "command": ["mobileplane", "migrate", "--wait", str(SCHEMA_WAIT_SECONDS)],
        "env": [env_secret("DATABASE_URL", database_secret_name(inp.platform), DB_URL)],
        "resources": resources({"cpu": "10m", "memory": "64Mi"}, {"cpu": None, "memory": "256Mi"}),
        "securityContext": container_security_context(),
        "volumeMounts": [tmp_volume(TMP_SIZE)[1]],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def deployment(inp: RenderInput, service: str) -> dict[str, Any]:
    """The Deployment of one enabled service."""
    svc = inp.spec.services.by_name()[service]
    volumes, mounts = _volumes(inp, service)
    pod = pod_spec(
        [_container(inp, service, mounts)],
        volumes,
        # The gateway reads no table: it starts at once.
        init_containers=None if service == "gateway" else [_wait_for_schema(inp, service)],
        placement=inp.spec.scheduling.pod_fields(),
    )
    pod["topologySpreadConstraints"] = spread(inp, service)
    pod["terminationGracePeriodSeconds"] = TERMINATION_GRACE_SECONDS
    spec: dict[str, Any] = {}
    if not svc.autoscaling.enabled:
        spec["replicas"] = svc.replicas
    spec |= {
        "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
        "selector": {"matchLabels": selector(inp.platform, service)},
        "template": {
            "metadata": {
                "labels": labels(inp.platform, service),
                "annotations": {CONFIG_HASH_ANNOTATION: config_hash(inp, service, pod)},
            },
            "spec": pod,
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(inp.platform, child_name(inp.platform, service), service),
        "spec": spec,
    }


def service_object(inp: RenderInput, service: str) -> dict[str, Any]:
    """The ClusterIP Service in front of one enabled service."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(inp.platform, child_name(inp.platform, service), service),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(inp.platform, service),
            "ports": [
                {
                    "name": "http",
                    "port": HTTP_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def autoscaler(inp: RenderInput, service: str) -> dict[str, Any] | None:
    """An autoscaling/v2 HPA on CPU utilisation, when the service's autoscaling is on."""
    scaling = inp.spec.services.by_name()[service].autoscaling
    if not scaling.enabled:
        return None
    name = child_name(inp.platform, service)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(inp.platform, name, service),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def disruption_budget(inp: RenderInput, service: str) -> dict[str, Any]:
    """A policy/v1 PodDisruptionBudget of one service (see the module docstring)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(inp.platform, child_name(inp.platform, service), service),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector(inp.platform, service)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def service_children(inp: RenderInput, service: str) -> list[dict[str, Any]]:
    """Everything one service needs, or nothing when it is disabled."""
    if not inp.spec.services.by_name()[service].enabled:
        return []
    out = [deployment(inp, service), service_object(inp, service)]
    hpa = autoscaler(inp, service)
    if hpa is not None:
        out.append(hpa)
    out.append(disruption_budget(inp, service))
    return out
