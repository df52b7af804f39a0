"""The whole desired state of a MobilePlatform: every child, in an order that can be applied.

:func:`render` is the entry point: a pure function of :class:`RenderInput` (no I/O, no clock,
no randomness), so the same input always gives the same objects, byte for byte, and a spec
change shows up as a diff of plain dicts. The caller (the kopf handler) adopts each object
(owner reference), creates the generated Secrets once (:func:`is_generated`), applies the
rest with server-side apply, and deletes children of the platform it no longer renders,
comparing by :func:`child_key`.

The order is one in which everything can be created from scratch: the Secrets and ConfigMaps
pods read, the NetworkPolicies (so no pod is ever reachable before they exist), the data
stores, the migration Job, then each enabled service in ``SERVICE_NAMES`` order (gateway
first), and the backup CronJob last.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mobileplane.operator.render.config import config_map
from mobileplane.operator.render.datastores import datastore_children
from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.jobs import backup_cronjob, migration_job
from mobileplane.operator.render.network import network_policies
from mobileplane.operator.render.routes import routes_config_map
from mobileplane.operator.render.secrets import (
    app_keys_secret,
    database_secret,
    signing_keys_secret,
    sync_keys_secret,
)
from mobileplane.operator.render.services import service_children
from mobileplane.operator.spec import SERVICE_NAMES


def render(inp: RenderInput) -> list[dict[str, Any]]:
    """Every child object of the platform, as Kubernetes manifests, in a stable order."""
    out: list[dict[str, Any]] = [
        database_secret(inp),
        signing_keys_secret(inp),
        app_keys_secret(inp),
        sync_keys_secret(inp),
        config_map(inp),
        routes_config_map(inp),
        *network_policies(inp),
        *datastore_children(inp),
        migration_job(inp),
    ]
    for service in SERVICE_NAMES:
        out += service_children(inp, service)
    backup = backup_cronjob(inp)
    if backup is not None:
        out.append(backup)
    return out


def child_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(apiVersion, kind, name)``: what identifies a child within the platform's namespace."""
    return (str(obj["apiVersion"]), str(obj["kind"]), str(obj["metadata"]["name"]))
