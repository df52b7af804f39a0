"""kopf handlers of the MobilePlatform operator: thin edges around :mod:`reconcile`.

Every path that can change the desired or the observed state leads to the same
``reconcile`` call, serialised per MobilePlatform:

- create, update (of the spec) and resume after an operator restart;
- a resync timer, the safety net for a missed event;
- watch events of the children (a deleted or hand-edited Deployment, a Deployment that
  became Available), which restore drift at once and keep the status current.

Deletion honours ``deletionPolicy`` for the external database and bucket behind kopf's
finalizer; children go with the garbage collector through their owner references.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from mobileplane.operator.childevents import needs_reconcile, only_status_changed
from mobileplane.operator.crdgen import GROUP, PLURAL, VERSION
from mobileplane.operator.kube import KubeGateway, load_api_client
from mobileplane.operator.provision.buckets import BucketProvisioner, S3Endpoint
from mobileplane.operator.provision.errors import ProvisioningError
from mobileplane.operator.provision.postgres import AdminConnection, PostgresProvisioner
from mobileplane.operator.reconcile import (
    Deps,
    Outcome,
    default_database_name,
    observe,
    reconcile,
)
from mobileplane.operator.render.names import MANAGED_BY
from mobileplane.operator.settings import OperatorSettings
from mobileplane.operator.spec import DatabaseMode, DeletionPolicy, MobilePlatformSpec

log = logging.getLogger("mobileplane.operator")

#: The resync interval must be known when the decorators run (at import), so it alone is
#: read from the environment here; everything else is read in ``startup``.
RESYNC_SECONDS = float(os.environ.get("MOBILEPLANE_OPERATOR_RESYNC_SECONDS", "60"))

#: Children whose watch events trigger a reconcile of their owner.
CHILD_RESOURCES = (
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("", "v1", "secrets"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("batch", "v1", "cronjobs"),
)


class _Work:
    """Per-object serialisation: one reconcile at a time, one more if asked meanwhile."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.again = False
        self.again_full = False


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount, else the kubeconfig that KUBECONFIG names *now*.

    (kopf's default goes through the ``kubernetes`` client, whose kubeconfig path is fixed
    when that package is first imported.)
    """
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
    return info or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg = OperatorSettings.from_env()
    # An integer: the API server refuses timeoutSeconds=300.0 (strconv.ParseInt).
    settings.watching.server_timeout = int(cfg.watch_server_timeout)
    settings.watching.client_timeout = cfg.watch_client_timeout
    settings.persistence.finalizer = "mobileplane.io/finalizer"
    settings.peering.name = cfg.peering_name
    settings.peering.priority = cfg.peering_priority
    settings.peering.lifetime = cfg.peering_lifetime
    settings.peering.standalone = cfg.standalone
    settings.peering.clusterwide = True
    settings.posting.level = logging.WARNING  # our own Events are posted explicitly
    memo.settings = cfg
    # Gateway calls run in worker threads; asyncio's default pool (cores + 4) would queue the
    # I/O of many platforms behind six threads.
    memo.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="mobileplane-io")
    asyncio.get_running_loop().set_default_executor(memo.executor)
    memo.deps = Deps(
        kube=KubeGateway(load_api_client()),
        postgres=PostgresProvisioner(),
        buckets=BucketProvisioner(),
        clock=lambda: datetime.now(UTC),
        retry_seconds=cfg.retry_seconds,
        refused_retry_seconds=cfg.refused_retry_seconds,
        controller_namespace=cfg.namespace,
    )
    memo.work = {}


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    executor: ThreadPoolExecutor | None = getattr(memo, "executor", None)
    if executor is not None:
        # Let API calls in flight finish before the client's pool is closed: a connection
        # still checked out at close would be left for the garbage collector to find.
        with ThreadPoolExecutor(max_workers=1) as waiter:
            await asyncio.get_running_loop().run_in_executor(waiter, executor.shutdown, True)
    deps: Deps | None = getattr(memo, "deps", None)
    if deps is not None:
        deps.kube.api.close()  # type: ignore[no-untyped-call]


def _post(body: Any, events: list[tuple[str, str, str]]) -> None:
    for event_type, reason, message in events:
        kopf.event(body, type=event_type, reason=reason, message=message[:1024])


async def run(memo: Any, namespace: str, name: str, *, full: bool = True) -> Outcome | None:
    """Reconcile the current state of one MobilePlatform (serialised, coalesced).

    ``full=False`` (a child's status changed) only re-reads health when the spec has not
    changed since the last full reconcile: with many platforms, Deployment status events
    would otherwise re-apply every child of every platform again and again.
    """
    key = (namespace, name)
    work: _Work = memo.work.setdefault(key, _Work())
    if work.lock.locked():
        work.again = True
        work.again_full = work.again_full or full
        return None
    outcome: Outcome | None = None
    async with work.lock:
        while True:
            work.again = work.again_full = False
            deps: Deps = memo.deps
            body = await deps.kube.get_custom(GROUP, VERSION, PLURAL, namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                memo.work.pop(key, None)
                return None
            outcome = None if full else await observe(deps, body)
            if outcome is None:
                outcome = await reconcile(deps, body)
            await deps.kube.patch_status(GROUP, VERSION, PLURAL, namespace, name, outcome.status)
            _post(body, outcome.events)
            if not work.again:
                break
            full = work.again_full
    return outcome


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def reconcile_platform(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    assert namespace is not None  # MobilePlatform is namespaced
    outcome = await run(memo, namespace, name)
    if outcome is None:
        return
    if outcome.permanent_error:
        raise kopf.PermanentError(outcome.permanent_error)
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(
            "not ready yet: see the status conditions", delay=outcome.retry_after
        )


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def resync(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    if namespace is not None:
        await run(memo, namespace, name)


def _owner(body: Any) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "MobilePlatform" and ref.get("apiVersion", "").startswith(GROUP):
            return str(ref.get("name"))
    return None


async def child_event(event: Any, body: Any, memo: Any, **_: Any) -> None:
    if not needs_reconcile(event.get("type")):
        return  # the initial listing and additions change nothing we would restore
    owner = _owner(body)
    namespace = body.get("metadata", {}).get("namespace")
    if owner and namespace and getattr(memo, "deps", None) is not None:
        full = not only_status_changed(event.get("type"), body)
        await run(memo, namespace, owner, full=full)


for _group, _version, _plural in CHILD_RESOURCES:
    kopf.on.event(
        _group,
        _version,
        _plural,
        labels={"app.kubernetes.io/managed-by": MANAGED_BY},
        id=f"child-{_plural}",
    )(child_event)


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=20, backoff=15)
async def deprovision(body: Any, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    """Honour deletionPolicy for the external database and the bucket.

    Holds the platform's reconcile lock, so a reconcile still in flight (granting on the
    database, say) finishes before anything is dropped; later ones see the deletion and stop.
    """
    assert namespace is not None
    work: _Work = memo.work.setdefault((namespace, name), _Work())
    async with work.lock:
        await _deprovision(body, name, namespace, memo.deps)


async def _deprovision(body: Any, name: str, namespace: str, deps: Deps) -> None:
    try:
        spec = MobilePlatformSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return  # an invalid spec never provisioned anything
    try:
        db = spec.database
        if db.mode == DatabaseMode.EXTERNAL and db.deletion_policy == DeletionPolicy.DELETE:
            assert db.external is not None
            ref = db.external.admin_secret_ref.name
            data = await deps.kube.read_secret(namespace, ref)
            if data is None:
                raise kopf.TemporaryError(
                    f"cannot drop the database: Secret {ref} is gone; restore it, or remove "
                    "the finalizer mobileplane.io/finalizer to keep the database",
                    delay=30,
                )
            admin = AdminConnection.from_secret_data(data, source=f"Secret {namespace}/{ref}")
            dbname = db.name or default_database_name(namespace, name)
            await deps.postgres.drop(admin, dbname, dbname)
            kopf.info(body, reason="DatabaseDropped", message=f"database and role {dbname}")
        media = spec.media
        if media is not None and media.deletion_policy == DeletionPolicy.DELETE:
            ref = media.credentials_secret_ref.name
            creds = await deps.kube.read_secret(namespace, ref)
            if creds is None:
                raise kopf.TemporaryError(
                    f"cannot delete the bucket: Secret {ref} is gone; restore it, or remove the "
                    "finalizer mobileplane.io/finalizer to keep the bucket",
                    delay=30,
                )
            endpoint = S3Endpoint.from_secret_data(
                creds,
                endpoint_url=media.endpoint,
                region=media.region,
                source=f"Secret {namespace}/{ref}",
            )
            await deps.buckets.delete(endpoint, media.bucket)
            kopf.info(body, reason="BucketDeleted", message=f"bucket {media.bucket}")
    except ProvisioningError as e:
        delay = e.retry_after or (15.0 if e.transient else 120.0)
        raise kopf.TemporaryError(str(e), delay=delay) from e
