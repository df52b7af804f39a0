"""Fixed inputs for the renderer's tests: examples, a stored key set, a fake password.

Nothing here is random, so rendered objects (and the golden files) are the same on every run.
The signing keys in ``data/signing-keyset.json`` were generated once with
:func:`mobileplane.operator.keys.generate` (an active and a retired ES256 key) and are
test material only.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mobileplane.operator.keys import KeySet
from mobileplane.operator.render import (
    DatabaseTarget,
    GeneratedMaterial,
    PlatformRef,
    RenderInput,
    postgres_host,
)
from mobileplane.operator.render.appkeys import app_platforms
from mobileplane.operator.spec import DatabaseMode, MobilePlatformSpec

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
EXAMPLES = {  # MobilePlatform examples (the folder also holds MobileRelease ones)
    p.stem: p
    for p in sorted((ROOT / "crds" / "examples").glob("*.yaml"))
    if yaml.safe_load(p.read_text())["kind"] == "MobilePlatform"
}

NAMESPACE = "apps"
UID = "0b9d6f3e-5c2a-4e1b-9f00-000000000001"
DB_PASSWORD = "fixture-db-password-7Q/x+y@z"  # characters a URL must escape
#: ``SYNC_CHECKPOINT_KEYS`` as generated (one key, 43 base64url characters): test material.
SYNC_KEYS = "fixture-sync-checkpoint-key-0123456789abcdef"
KEYSET = KeySet.from_json((HERE / "data" / "signing-keyset.json").read_text())
EXTERNAL_DB_HOST = "pg.example.com"

MINIMAL: dict[str, Any] = {
    "app": {
        "displayName": "Hello",
        "ios": {"bundleIds": ["com.example.hello"]},
        "redirectURIs": ["com.example.hello:/oauth2redirect"],
    }
}


def example(name: str) -> tuple[str, dict[str, Any]]:
    """(metadata.name, spec dict) of ``crds/examples/<name>.yaml``."""
    doc = yaml.safe_load(EXAMPLES[name].read_text())
    return doc["metadata"]["name"], doc["spec"]


def with_changes(spec: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a spec dict with ``{"dotted.camelCase.path": value}`` set (None deletes)."""
    out = copy.deepcopy(dict(spec))
    for path, value in changes.items():
        node = out
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return out


#: Fixed telemetry DSN keys, as the operator would have generated them.
APP_KEYS = {"ios": "1a" * 16, "android": "2b" * 16}
#: Fixed analytics write keys.
WRITE_KEYS = {"ios": "wk-ios-" + "3c" * 12, "android": "wk-android-" + "4d" * 12}


def make_input(
    spec: Mapping[str, Any] | MobilePlatformSpec = MINIMAL,
    *,
    name: str = "hello",
    namespace: str = NAMESPACE,
    keyset: KeySet = KEYSET,
    sync_keys: str = SYNC_KEYS,
    secret_versions: Mapping[str, str] | None = None,
) -> RenderInput:
    """A RenderInput as the operator would resolve it, from fixed material."""
    parsed = (
        spec if isinstance(spec, MobilePlatformSpec) else MobilePlatformSpec.model_validate(spec)
    )
    platform = PlatformRef(name=name, namespace=namespace, uid=UID)
    db_name = parsed.database.name or f"mp_{namespace}_{name}".replace("-", "_")[:63]
    if parsed.database.mode == DatabaseMode.IN_CLUSTER:
        target = DatabaseTarget(host=postgres_host(platform), port=5432, name=db_name, role=db_name)
    else:
        target = DatabaseTarget(
            host=EXTERNAL_DB_HOST, port=5432, name=db_name, role=db_name, sslmode="require"
        )
    return RenderInput(
        platform=platform,
        spec=parsed,
        database=target,
        generated=GeneratedMaterial(
            db_password=DB_PASSWORD,
            signing_keys=keyset,
            sync_checkpoint_keys=sync_keys,
            app_keys={p: APP_KEYS[p] for p in app_platforms(parsed)},
            write_keys={p: WRITE_KEYS[p] for p in app_platforms(parsed)},
        ),
        secret_versions=dict(secret_versions or {}),
    )


def example_input(name: str, namespace: str = NAMESPACE) -> RenderInput:
    platform_name, spec = example(name)
    return make_input(spec, name=platform_name, namespace=namespace)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def pod_specs(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod spec(s) inside a workload object (none for other kinds)."""
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        return [obj["spec"]["template"]["spec"]]
    if kind == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return []
