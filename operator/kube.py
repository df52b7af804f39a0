"""The operator's one gateway to the Kubernetes API (besides kopf's own watching).

Children are written with server-side apply under one field manager, forcing ownership of
the fields we manage, so a hand-edited field is taken back and fields set by others (an HPA's
replicas, a user's annotation) are left alone. Generated Secrets are created once and never
overwritten. The client is the synchronous ``kubernetes`` package, called in worker threads
so kopf's event loop never blocks. Its exceptions become :class:`KubeError`.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError

from mobileplane.operator.podhealth import ContainerView, PodView

FIELD_MANAGER = "mobileplane-operator"


class KubeError(RuntimeError):
    """A Kubernetes API call failed; ``status`` is the HTTP status (0 when unreachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def load_api_client() -> k8s.ApiClient:
    """In-cluster credentials when running in a pod, else the ambient kubeconfig."""
    try:
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    except ConfigException:
        # Read KUBECONFIG now: the client's own default was fixed when it was imported.
        path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
        api: k8s.ApiClient = k8s_config.new_client_from_config(config_file=path)
        return api


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}"


class KubeGateway:
    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api
        self.dynamic = DynamicClient(api)
        self.core = k8s.CoreV1Api(api)
        self.apps = k8s.AppsV1Api(api)

    def _resource(self, obj: Mapping[str, Any]) -> Any:
        return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def _apply_sync(self, obj: Mapping[str, Any]) -> None:
        try:
            self._resource(obj).server_side_apply(
                body=dict(obj),
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except DynamicApiError as e:
            raise KubeError(f"applying {_describe(obj)}: {e.summary()}", e.status) from e
        except Exception as e:  # urllib3 connection errors and the like
            raise KubeError(f"applying {_describe(obj)}: {e}") from e

    async def apply(self, obj: Mapping[str, Any]) -> None:
        await asyncio.to_thread(self._apply_sync, obj)

    def _create_if_absent_sync(self, obj: Mapping[str, Any]) -> bool:
        try:
            self._resource(obj).create(
                body=dict(obj),
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
            )
            return True
        except DynamicApiError as e:
            if e.status == 409:
                return False
            raise KubeError(f"creating {_describe(obj)}: {e.summary()}", e.status) from e
        except Exception as e:
            raise KubeError(f"creating {_describe(obj)}: {e}") from e

    async def create_if_absent(self, obj: Mapping[str, Any]) -> bool:
        """Create ``obj`` unless it exists; True when created. Never overwrites."""
        return await asyncio.to_thread(self._create_if_absent_sync, obj)

    def _read_secret_sync(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except k8s.ApiException as e:
            if e.status == 404:
                return None
            raise KubeError(f"reading Secret {namespace}/{name}: {e.reason}", e.status) from e
        except Exception as e:
            raise KubeError(f"reading Secret {namespace}/{name}: {e}") from e
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The decoded data of a Secret, or None when it does not exist."""
        return await asyncio.to_thread(self._read_secret_sync, namespace, name)

    def _write_secret_sync(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        body = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
        try:
            self.core.patch_namespaced_secret(name, namespace, body)
        except k8s.ApiException as e:
            raise KubeError(f"updating Secret {namespace}/{name}: {e.reason}", e.status) from e

    async def update_secret_data(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """Merge ``data`` into an existing Secret (key rotation: the one sanctioned change)."""
        await asyncio.to_thread(self._write_secret_sync, namespace, name, data)

    def _deployments_sync(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        try:
            items = self.apps.list_namespaced_deployment(namespace, label_selector=selector).items
        except k8s.ApiException as e:
            raise KubeError(f"listing Deployments in {namespace}: {e.reason}", e.status) from e
        out = []
        for d in items:
            assert d.metadata is not None
            conditions = d.status.conditions or [] if d.status else []
            out.append(
                {
                    "name": d.metadata.name,
                    "labels": dict(d.metadata.labels or {}),
                    "replicas": (d.status.replicas if d.status else 0) or 0,
                    "available_replicas": (d.status.available_replicas if d.status else 0) or 0,
                    "available": any(
                        c.type == "Available" and c.status == "True" for c in conditions
                    ),
                    "observed": bool(
                        d.status and d.status.observed_generation == d.metadata.generation
                    ),
                    # A rollout under way: pods of the current template are not all there yet,
                    # or old ones remain (the Deployment may stay Available on the old pods).
                    "rolling": bool(
                        not d.status
                        or d.status.observed_generation != d.metadata.generation
                        or (d.status.updated_replicas or 0) < ((d.spec and d.spec.replicas) or 0)
                        or (d.status.replicas or 0) > (d.status.updated_replicas or 0)
                    ),
                }
            )
        return out

    async def deployments(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._deployments_sync, namespace, selector)

    def _pods_sync(self, namespace: str, selector: str) -> list[tuple[str, PodView]]:
        try:
            items = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        except k8s.ApiException as e:
            raise KubeError(f"listing pods in {namespace}: {e.reason}", e.status) from e
        return [
            (
                ((p.metadata and p.metadata.labels) or {}).get("app.kubernetes.io/component", ""),
                pod_view(p),
            )
            for p in items
        ]

    async def pods(self, namespace: str, selector: str) -> list[tuple[str, PodView]]:
        """The pods matching ``selector``, each with its ``app.kubernetes.io/component``."""
        return await asyncio.to_thread(self._pods_sync, namespace, selector)

    def _delete_sync(self, obj: Mapping[str, Any]) -> None:
        try:
            self._resource(obj).delete(
                name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace")
            )
        except DynamicApiError as e:
            if e.status != 404:
                raise KubeError(f"deleting {_describe(obj)}: {e.summary()}", e.status) from e

    async def delete(self, obj: Mapping[str, Any]) -> None:
        await asyncio.to_thread(self._delete_sync, obj)

    async def statefulset_ready(self, namespace: str, name: str) -> bool:
        return await statefulset_ready(self, namespace, name)

    async def prune(
        self, namespace: str, instance: str, managed_by: str, desired: list[dict[str, Any]]
    ) -> list[str]:
        """Delete our children of ``instance`` that are no longer desired; return them."""
        return await asyncio.to_thread(
            _prune_sync, self, namespace, instance, managed_by, list(desired)
        )

    def _patch_status_sync(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
    ) -> None:
        try:
            k8s.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
                group, version, namespace, plural, name, {"status": dict(status)}
            )
        except k8s.ApiException as e:
            if e.status == 404:
                return  # deleted meanwhile: nothing to report on
            raise KubeError(f"patching status of {plural}/{name}: {e.reason}", e.status) from e

    async def patch_status(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
    ) -> None:
        await asyncio.to_thread(
            self._patch_status_sync, group, version, plural, namespace, name, status
        )

    def _get_custom_sync(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            obj: Any = k8s.CustomObjectsApi(self.api).get_namespaced_custom_object(
                group, version, namespace, plural, name
            )
        except k8s.ApiException as e:
            if e.status == 404:
                return None
            raise KubeError(f"reading {plural}/{name}: {e.reason}", e.status) from e
        return dict(obj)

    async def get_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        return await asyncio.to_thread(
            self._get_custom_sync, group, version, plural, namespace, name
        )


#: The kinds the operator renders; stale objects of these kinds are pruned.
CHILD_KINDS = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("batch/v1", "CronJob"),
)


def _statefulset_ready_sync(gw: KubeGateway, namespace: str, name: str) -> bool:
    try:
        sts = gw.apps.read_namespaced_stateful_set(name, namespace)
    except k8s.ApiException as e:
        if e.status == 404:
            return False
        raise KubeError(f"reading StatefulSet {namespace}/{name}: {e.reason}", e.status) from e
    return bool(sts.status and (sts.status.ready_replicas or 0) >= 1)


async def statefulset_ready(gw: KubeGateway, namespace: str, name: str) -> bool:
    return await asyncio.to_thread(_statefulset_ready_sync, gw, namespace, name)


def _prune_sync(
    gw: KubeGateway,
    namespace: str,
    instance: str,
    managed_by: str,
    desired: list[Mapping[str, Any]],
) -> list[str]:
    keep = {(o["kind"], o["metadata"]["name"]) for o in desired}
    owner_uids = {
        ref.get("uid") for o in desired for ref in o.get("metadata", {}).get("ownerReferences", [])
    }
    selector = f"app.kubernetes.io/instance={instance},app.kubernetes.io/managed-by={managed_by}"
    removed = []
    for api_version, kind in CHILD_KINDS:
        try:
            resource = gw.dynamic.resources.get(api_version=api_version, kind=kind)
            items = resource.get(namespace=namespace, label_selector=selector).items
        except DynamicApiError as e:
            raise KubeError(f"listing {kind} in {namespace}: {e.summary()}", e.status) from e
        for item in items:
            refs = item.metadata.ownerReferences or []
            ours = any(r.uid in owner_uids for r in refs)
            if ours and (kind, item.metadata.name) not in keep:
                try:
                    resource.delete(name=item.metadata.name, namespace=namespace)
                except DynamicApiError as e:
                    if e.status != 404:
                        raise KubeError(
                            f"deleting {kind} {item.metadata.name}: {e.summary()}", e.status
                        ) from e
                removed.append(f"{kind} {item.metadata.name}")
    return removed


def pod_view(pod: Any) -> PodView:
    """The failure-relevant parts of a ``V1Pod`` (see :mod:`~mobileplane.operator.podhealth`)."""
    status = pod.status
    unschedulable = None
    for c in (status.conditions if status else None) or []:
        if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
            unschedulable = c.message or "no node can run it"
    return PodView(
        name=pod.metadata.name,
        phase=(status.phase if status else None) or "Pending",
        deleting=pod.metadata.deletion_timestamp is not None,
        unschedulable_message=unschedulable,
        containers=_container_views(status.container_statuses if status else None),
        init_containers=_container_views(status.init_container_statuses if status else None),
    )


def _container_views(statuses: Any) -> tuple[ContainerView, ...]:
    containers = []
    for cs in statuses or []:
        waiting = cs.state.waiting if cs.state else None
        last = cs.last_state.terminated if cs.last_state else None
        containers.append(
            ContainerView(
                name=cs.name,
                ready=bool(cs.ready),
                restart_count=cs.restart_count or 0,
                waiting_reason=waiting.reason if waiting else None,
                waiting_message=waiting.message if waiting else None,
                last_exit_code=last.exit_code if last else None,
                last_reason=last.reason if last else None,
                last_message=last.message if last else None,
            )
        )
    return tuple(containers)
