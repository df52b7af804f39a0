"""The config hash: one digest of everything a component's pods consume besides their spec.

Kubernetes restarts pods when their template changes, but not when a ConfigMap or Secret they
read changes. So each pod template carries ``mobileplane.io/config-hash``: a sha256 over

- the ConfigMap keys the component consumes (for ``<name>-config`` only the keys declared
  for it, see :mod:`.config`; for any other ConfigMap, such as the gateway's routes, all of
  it),
- the *names and versions* of the Secrets it references (versions from the caller; never the
  values: the annotation is readable by anyone who can read the Deployment),
- for the signing keys, the key ids (public) and which one is active, so a rotation rolls the
  auth service even when the caller passes no version;
- for the apps' DSN keys, a digest of the telemetry projects, so a platform added to the app
  rolls telemetry (which seeds projects at startup);
- for the sync checkpoint keys, their key ids (derived, public: tokens carry them), so keys
  rotated by hand in the Secret roll the sync service, which reads them at startup.

What is referenced is read from the pod spec itself (``envFrom``, ``valueFrom``, volumes), so
the hash cannot miss a reference the pod has. A change to one service's settings thus
changes that service's hash only, and rolls exactly that Deployment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from mobileplane.operator.render.appkeys import analytics_sources, telemetry_projects
from mobileplane.operator.render.config import consumed_config
from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.names import child_name
from mobileplane.operator.render.routes import routes_config_map
from mobileplane.operator.render.secrets import (
    app_keys_secret_name,
    signing_keys_secret_name,
    sync_keys_secret_name,
)
from mobileplane.services.sync.tokens import key_id


def _containers(pod_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from pod_spec.get("initContainers", [])
    yield from pod_spec.get("containers", [])


def references(pod_spec: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and of the Secrets a pod spec reads."""
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for container in _containers(pod_spec):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
        for var in container.get("env", []):
            ref = var.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                config_maps.add(ref["configMapKeyRef"]["name"])
            if "secretKeyRef" in ref:
                secrets.add(ref["secretKeyRef"]["name"])
    for volume in pod_spec.get("volumes", []):
        if "configMap" in volume:
            config_maps.add(volume["configMap"]["name"])
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
    return config_maps, secrets


def config_hash(inp: RenderInput, component: str, pod_spec: Mapping[str, Any]) -> str:
    """The hex sha256 of what ``component``'s pods (with this ``pod_spec``) consume."""
    config_maps, secrets = references(pod_spec)
    routes = routes_config_map(inp)
    rendered: dict[str, dict[str, str]] = {
        child_name(inp.platform, "config"): consumed_config(inp, component),
        routes["metadata"]["name"]: routes["data"],
    }
    payload: dict[str, Any] = {
        # A ConfigMap the renderer does not make (none today) hashes by name alone.
        "configMaps": {name: rendered.get(name, {}) for name in sorted(config_maps)},
        "secrets": {name: inp.secret_versions.get(name, "") for name in sorted(secrets)},
    }
    if app_keys_secret_name(inp.platform) in secrets:
        # The projects are read at startup: new ones (a platform added) roll telemetry. Their
        # digest, not the keys (the annotation is readable by more people than the Secret).
        # Each reader only its part: a new analytics source does not roll telemetry.
        part: Any = (
            analytics_sources(inp.platform, inp.spec, inp.generated.write_keys)
            if component == "analytics"
            else telemetry_projects(inp.platform, inp.spec, inp.generated.app_keys)
        )
        canonical_part = json.dumps(part, sort_keys=True).encode()
        payload["appKeys"] = hashlib.sha256(canonical_part).hexdigest()
    if signing_keys_secret_name(inp.platform) in secrets:
        keyset = inp.generated.signing_keys
        payload["signingKeys"] = {
            "active": keyset.active.kid if keyset.active else None,
            "published": sorted(k.kid for k in keyset.keys),
        }
    if sync_keys_secret_name(inp.platform) in secrets:
        keys = inp.generated.sync_checkpoint_keys.split(",")
        payload["syncKeys"] = [key_id(k.strip().encode()) for k in keys]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
