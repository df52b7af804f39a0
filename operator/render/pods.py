"""Building blocks every pod of the platform shares: security, images, volumes, env refs.

Every pod passes the Pod Security Standard *restricted* profile: non-root with a numeric uid
(so the kubelet can check ``runAsNonRoot`` without trusting the image), a read-only root
filesystem with an ``emptyDir`` where a process must write, no privilege escalation, no
capabilities, the runtime's default seccomp profile. Pods do not mount a ServiceAccount token
(no service calls the Kubernetes API) and do not get Docker-link env vars (a Service named
``redis`` would otherwise inject ``REDIS_PORT=tcp://…`` and break ``REDIS_*`` settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.names import image_ref, selector

#: The uid/gid of the mobileplane image's user. The image must declare ``USER 10001``; a uid
#: above 10000 never collides with a host user when a runtime lacks user namespaces.
APP_UID = 10001
#: The uid/gid the official ``postgres`` and ``redis`` images reserve for their servers.
DATASTORE_UID = 999

#: Secret files readable by owner and group only (the pod's fsGroup), not by others.
SECRET_FILE_MODE = 0o440


def container_security_context() -> dict[str, Any]:
    """The restricted profile, per container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(uid: int = APP_UID) -> dict[str, Any]:
    """The restricted profile, per pod; ``fsGroup`` makes mounted volumes writable by ``uid``."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def app_image(inp: RenderInput, service: str | None = None) -> str:
    """A service's own image when set, else ``spec.image`` (also the migration image)."""
    own = inp.spec.services.by_name()[service].image if service else None
    return own or image_ref(inp.spec.image.repository, inp.spec.image.tag)


def resources(requests: dict[str, str | None], limits: dict[str, str | None]) -> dict[str, Any]:
    """A ``resources`` block without the amounts left unset."""
    out: dict[str, Any] = {}
    for kind, amounts in (("requests", requests), ("limits", limits)):
        kept = {k: v for k, v in amounts.items() if v is not None}
        if kept:
            out[kind] = kept
    return out


def tmp_volume(size_limit: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A writable ``/tmp`` (volume, mount): the root filesystem is read-only."""
    return (
        {"name": "tmp", "emptyDir": {"sizeLimit": size_limit}},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a pod-private emptyDir
    )


def secret_volume(
    name: str, secret: str, items: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """A Secret as files; ``items`` maps Secret keys to file names (all keys when None)."""
    source: dict[str, Any] = {"secretName": secret, "defaultMode": SECRET_FILE_MODE}
    if items:
        source["items"] = [{"key": key, "path": path} for key, path in items]
    return {"name": name, "secret": source}


def env_value(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def env_secret(name: str, secret: str, key: str) -> dict[str, Any]:
    """An env var read from one key of a Secret."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def env_config(name: str, config_map: str, key: str, optional: bool = False) -> dict[str, Any]:
    """An env var read from one key of a ConfigMap."""
    ref: dict[str, Any] = {"name": config_map, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"configMapKeyRef": ref}}


def pod_spec(
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    *,
    uid: int = APP_UID,
    restart_policy: str | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    placement: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A pod spec with the platform's defaults (see the module docstring).

    ``placement`` is the MobilePlatform's ``spec.scheduling`` as pod fields (node selector,
    tolerations, priority class): every pod of the platform lands where the user said.
    """
    out: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(uid),
        **(placement or {}),
    }
    if restart_policy:
        out["restartPolicy"] = restart_policy
    if init_containers:
        out["initContainers"] = init_containers
    out["containers"] = containers
    out["volumes"] = volumes
    return out


def spread(inp: RenderInput, component: str) -> list[dict[str, Any]]:
    """Spread a component's replicas over nodes when it can, but never refuse to schedule."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector(inp.platform, component)},
        }
    ]
