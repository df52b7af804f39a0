"""NetworkPolicies: who may open connections to the platform's pods.

Ingress is denied by default to every pod of the platform (``<name>-default-deny``), then
allowed where the architecture needs it:

- the gateway from anywhere on 8080 (``<name>-gateway``): it is the public entry point, and
  the ingress controller or load balancer in front of it lives in a namespace we cannot know;
- every other enabled service from the gateway's pods only, on 8080 (``<name>-services``):
  apps reach services through the gateway, whose JWT checks must not be bypassed;
- telemetry and app config also from the release controller (its namespace and labels,
  ``<name>-release-controller``): it reads release health and writes app config directly,
  not through the gateway;
- in-cluster PostgreSQL and Redis from the platform's own pods only (services, migration and
  backup jobs), on their ports.

Egress stays open, on purpose: services connect to an External PostgreSQL or Redis, to S3,
APNs, FCM and telemetry collectors, which are host names outside the cluster; NetworkPolicy
can only express IP blocks, so an egress rule would either be wide open anyway or break those
modes whenever a provider's addresses change. Ingress is where the platform's trust boundary
is; egress control belongs to a cluster-wide policy (or an egress gateway) the admin owns.

Policies select pods by the platform's labels, so they apply to pods of this platform only.
"""

from __future__ import annotations

from typing import Any

from mobileplane.operator.render.datastores import POSTGRES_PORT, REDIS_PORT
from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.names import (
    HTTP_PORT,
    PLATFORM_COMPONENT,
    child_name,
    metadata,
    platform_selector,
    selector,
)
from mobileplane.operator.render.routes import enabled_services
from mobileplane.operator.spec import CacheMode, DatabaseMode

#: The services the release controller calls, and the labels of its pods (set by the chart).
RELEASE_CONTROLLER_TARGETS = ("telemetry", "appconfig")
RELEASE_CONTROLLER_LABELS = {
    "app.kubernetes.io/name": "mobileplane",
    "app.kubernetes.io/component": "release-controller",
}


def _policy(
    inp: RenderInput, suffix: str, pods: dict[str, Any], ingress: list[dict[str, Any]]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pods, "policyTypes": ["Ingress"]}
    if ingress:
        # An empty list is stored as no field at all: sending `ingress: []` would make every
        # server-side apply a change, and every change a watch event and another reconcile.
        spec["ingress"] = ingress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(inp.platform, child_name(inp.platform, suffix), PLATFORM_COMPONENT),
        "spec": spec,
    }


def _port(port: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port}]


def network_policies(inp: RenderInput) -> list[dict[str, Any]]:
    """The platform's NetworkPolicies, in a stable order."""
    platform = inp.platform
    own_pods = {"podSelector": {"matchLabels": platform_selector(platform)}}
    gateway_pods = {"podSelector": {"matchLabels": selector(platform, "gateway")}}
    out = [
        # No rule: nothing may connect unless another policy allows it.
        _policy(inp, "default-deny", {"matchLabels": platform_selector(platform)}, []),
        _policy(
            inp,
            "gateway",
            {"matchLabels": selector(platform, "gateway")},
            [{"ports": _port(HTTP_PORT)}],  # no "from": any source
        ),
    ]
    behind_gateway = [s for s in enabled_services(inp) if s != "gateway"]
    if behind_gateway:
        pods = {
            "matchLabels": platform_selector(platform),
            "matchExpressions": [
                {
                    "key": "app.kubernetes.io/component",
                    "operator": "In",
                    "values": behind_gateway,
                }
            ],
        }
        out.append(
            _policy(inp, "services", pods, [{"from": [gateway_pods], "ports": _port(HTTP_PORT)}])
        )
    controlled = [s for s in behind_gateway if s in RELEASE_CONTROLLER_TARGETS]
    if controlled:
        controller = {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": inp.controller_namespace}
            },
            "podSelector": {"matchLabels": RELEASE_CONTROLLER_LABELS},
        }
        pods = {
            "matchLabels": platform_selector(platform),
            "matchExpressions": [
                {"key": "app.kubernetes.io/component", "operator": "In", "values": controlled}
            ],
        }
        out.append(
            _policy(
                inp, "release-controller", pods, [{"from": [controller], "ports": _port(HTTP_PORT)}]
            )
        )
    if inp.spec.database.mode == DatabaseMode.IN_CLUSTER:
        out.append(
            _policy(
                inp,
                "postgres",
                {"matchLabels": selector(platform, "postgres")},
                [{"from": [own_pods], "ports": _port(POSTGRES_PORT)}],
            )
        )
    if inp.spec.cache.mode == CacheMode.IN_CLUSTER:
        out.append(
            _policy(
                inp,
                "redis",
                {"matchLabels": selector(platform, "redis")},
                [{"from": [own_pods], "ports": _port(REDIS_PORT)}],
            )
        )
    return out
