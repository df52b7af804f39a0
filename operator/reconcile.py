"""One reconciliation of a MobilePlatform: observe, provision, render, apply, report.

This is the edge that performs I/O around the deciding code: it provisions the external
resources through their gateways (PostgreSQL, S3), renders the desired children (pure), applies
them with server-side apply, reads back what the cluster reports, and decides the status with
:mod:`conditions`. It never sleeps and never raises for an expected failure: every problem
becomes a condition, and the returned :class:`Outcome` says whether and when to retry.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from mobileplane.operator import conditions as cond
from mobileplane.operator.childwrites import GeneratedSecrets, Write, WriteKind, plan_writes
from mobileplane.operator.conditions import FALSE, TRUE, UNKNOWN, Observation
from mobileplane.operator.keys import KeySet, generate, needs_key, prune, rotate
from mobileplane.operator.kube import KubeError, KubeGateway
from mobileplane.operator.podhealth import Problem, diagnose
from mobileplane.operator.provision.buckets import BucketProvisioner, S3Endpoint
from mobileplane.operator.provision.errors import ProvisioningError
from mobileplane.operator.provision.postgres import AdminConnection, PostgresProvisioner
from mobileplane.operator.render import (
    DatabaseTarget,
    GeneratedMaterial,
    PlatformRef,
    RenderInput,
    base_name,
    child_name,
    gateway_url,
    keyset_from_secret_data,
    postgres_host,
    render,
    signing_keys_data,
)
from mobileplane.operator.render.appkeys import (
    app_keys_data,
    apps_status,
    missing_platforms,
    stored_keys,
    stored_write_keys,
)
from mobileplane.operator.render.names import MANAGED_BY
from mobileplane.operator.render.secrets import (
    SYNC_CHECKPOINT_KEYS_KEY,
    app_keys_secret_name,
    database_secret_name,
    signing_keys_secret_name,
    stored_sync_keys,
    sync_keys_secret_name,
)
from mobileplane.operator.spec import CacheMode, DatabaseMode, MobilePlatformSpec


class Clock(Protocol):
    def __call__(self) -> datetime: ...


@dataclass
class Deps:
    kube: KubeGateway
    postgres: PostgresProvisioner
    buckets: BucketProvisioner
    clock: Clock
    retry_seconds: float = 15.0
    refused_retry_seconds: float = 300.0
    controller_namespace: str = "mobileplane-system"


@dataclass
class Outcome:
    """What a reconciliation decided: the status to write, events, and the retry."""

    status: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    retry_after: float | None = None
    permanent_error: str | None = None


def default_database_name(namespace: str, name: str) -> str:
    """``mp_<namespace>_<name>``, as a PostgreSQL identifier of at most 63 characters."""
    raw = re.sub(r"[^a-z0-9_]", "_", f"mp_{namespace}_{name}".lower())
    return raw[:63]


def _owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _adopt(child: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    meta = child.setdefault("metadata", {})
    meta.setdefault("namespace", body["metadata"]["namespace"])
    meta["ownerReferences"] = [_owner_reference(body)]
    return child


class _Retry:
    def __init__(self) -> None:
        self.delay: float | None = None

    def want(self, seconds: float) -> None:
        self.delay = seconds if self.delay is None else min(self.delay, seconds)


async def _database(
    deps: Deps, platform: PlatformRef, spec: MobilePlatformSpec, password: str, retry: _Retry
) -> tuple[Observation, DatabaseTarget | None, list[tuple[str, str, str]]]:
    """DatabaseReady, and where the services connect (None while that is unknown)."""
    db = spec.database
    ns = platform.namespace
    dbname = db.name or default_database_name(ns, platform.name)
    events: list[tuple[str, str, str]] = []
    if db.mode == DatabaseMode.IN_CLUSTER:
        target = DatabaseTarget(host=postgres_host(platform), port=5432, name=dbname, role=dbname)
        sts = child_name(platform, "postgres")
        if await deps.kube.statefulset_ready(ns, sts):
            return (
                Observation(
                    "DatabaseReady", TRUE, "InClusterReady", f"in-cluster PostgreSQL {sts} is ready"
                ),
                target,
                events,
            )
        return (
            Observation(
                "DatabaseReady",
                FALSE,
                "InClusterStarting",
                f"waiting for the StatefulSet {sts} (and its volume)",
            ),
            target,
            events,
        )
    assert db.external is not None  # CEL guarantees it; the model mirrors CEL
    ref = db.external.admin_secret_ref.name
    admin_data = await deps.kube.read_secret(ns, ref)
    try:
        if admin_data is None:
            raise ProvisioningError(
                f"Secret {ref} not found: create it with keys host, port, username, password "
                "(optional sslmode, database)",
                transient=True,
            )
        admin = AdminConnection.from_secret_data(admin_data, source=f"Secret {ns}/{ref}")
    except ProvisioningError as e:
        retry.want(deps.retry_seconds)
        return Observation("DatabaseReady", FALSE, "AdminSecretInvalid", str(e)), None, events
    target = DatabaseTarget(
        host=admin.host,
        port=admin.port,
        name=dbname,
        role=dbname,
        sslmode=admin_data.get("sslmode"),
    )
    try:
        created = await deps.postgres.ensure(admin, dbname, dbname, password)
    except ProvisioningError as e:
        retry.want(deps.retry_seconds if e.transient else deps.refused_retry_seconds)
        reason = "Unreachable" if e.transient else "Refused"
        return Observation("DatabaseReady", FALSE, reason, str(e)), target, events
    if created.created:
        events.append(("Normal", "DatabaseProvisioned", f"database {dbname} and role created"))
    return (
        Observation(
            "DatabaseReady", TRUE, "Provisioned", f"database {dbname} on {admin.host}:{admin.port}"
        ),
        target,
        events,
    )


async def _cache(
    deps: Deps, platform: PlatformRef, spec: MobilePlatformSpec, retry: _Retry
) -> Observation:
    ns = platform.namespace
    if spec.cache.mode == CacheMode.IN_CLUSTER:
        redis = child_name(platform, "redis")
        deployments = await deps.kube.deployments(
            ns,
            f"app.kubernetes.io/instance={base_name(platform.name)},"
            "app.kubernetes.io/component=redis",
        )
        if any(d["available"] for d in deployments):
            return Observation("CacheReady", TRUE, "InClusterReady", f"{redis} available")
        return Observation(
            "CacheReady", FALSE, "InClusterStarting", f"waiting for the Deployment {redis}"
        )
    ref = spec.cache.url_secret_ref
    assert ref is not None
    data = await deps.kube.read_secret(ns, ref.name)
    if data is None or ref.key not in data:
        retry.want(deps.retry_seconds)
        return Observation(
            "CacheReady",
            FALSE,
            "UrlSecretInvalid",
            f"Secret {ref.name} with key {ref.key} (a redis:// URL) not found",
        )
    if not data[ref.key].startswith(("redis://", "rediss://")):
        return Observation(
            "CacheReady",
            FALSE,
            "UrlSecretInvalid",
            f"Secret {ref.name} key {ref.key} is not a redis:// or rediss:// URL",
        )
    return Observation("CacheReady", TRUE, "ExternalConfigured", "external Redis configured")


async def _bucket(
    deps: Deps, ns: str, spec: MobilePlatformSpec, retry: _Retry
) -> tuple[Observation, list[tuple[str, str, str]]]:
    media = spec.media
    if media is None:
        return Observation("BucketReady", TRUE, "NotRequested", "no media bucket requested"), []
    ref = media.credentials_secret_ref.name
    data = await deps.kube.read_secret(ns, ref)
    if data is None or not {"accessKeyId", "secretAccessKey"} <= data.keys():
        retry.want(deps.retry_seconds)
        return Observation(
            "BucketReady",
            FALSE,
            "CredentialsSecretInvalid",
            f"Secret {ref} with keys accessKeyId and secretAccessKey not found",
        ), []
    try:
        endpoint = S3Endpoint.from_secret_data(
            data, endpoint_url=media.endpoint, region=media.region, source=f"Secret {ns}/{ref}"
        )
        info = await deps.buckets.ensure(endpoint, media.bucket, list(media.lifecycle))
    except ProvisioningError as e:
        retry.want(deps.retry_seconds if e.transient else deps.refused_retry_seconds)
        return Observation(
            "BucketReady", FALSE, "Unreachable" if e.transient else "Refused", str(e)
        ), []
    events = []
    if info.created:
        events.append(("Normal", "BucketProvisioned", f"bucket {media.bucket} created"))
    note = f"{NOT_APPLIED}{'; '.join(info.notes)}" if info.unsupported else ""
    return Observation("BucketReady", TRUE, "Provisioned", f"bucket {media.bucket}{note}"), events


def _signing_keys(
    spec: MobilePlatformSpec, existing: Mapping[str, str] | None, now: datetime
) -> tuple[KeySet, bool]:
    keyset = keyset_from_secret_data(existing) if existing else KeySet()
    changed = False
    if needs_key(keyset, spec.auth.signing_algorithm, spec.auth.key_rotation):
        keyset = rotate(
            keyset, generate(spec.auth.signing_algorithm, now), spec.auth.key_rotation, now
        )
        changed = True
    pruned = prune(keyset, timedelta(seconds=spec.auth.access_token_ttl_seconds), now)
    changed = changed or pruned != keyset
    return pruned, changed


def _previous(previous: list[dict[str, Any]], ctype: str) -> Observation | None:
    for c in previous:
        if c.get("type") == ctype:
            return Observation(
                ctype, str(c.get("status")), str(c.get("reason", "")), str(c.get("message", ""))
            )
    return None


async def observe(deps: Deps, body: Mapping[str, Any]) -> Outcome | None:
    """The cheap path for a child's status change: re-read health, provision nothing.

    Returns None when a full reconcile is needed instead (the spec changed since the last
    one, or there is no previous status to build on).
    """
    meta = body["metadata"]
    name, ns, generation = meta["name"], meta["namespace"], int(meta.get("generation", 0))
    status = body.get("status") or {}
    previous = list(status.get("conditions") or [])
    db_prev, bucket_prev = _previous(previous, "DatabaseReady"), _previous(previous, "BucketReady")
    if status.get("observedGeneration") != generation or db_prev is None or bucket_prev is None:
        return None
    try:
        spec = MobilePlatformSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None
    platform = PlatformRef(name=name, namespace=ns, uid=meta["uid"])
    retry = _Retry()
    try:
        db_obs = db_prev
        if spec.database.mode == DatabaseMode.IN_CLUSTER:
            db_obs, _, _ = await _database(deps, platform, spec, "", retry)
        cache_obs = await _cache(deps, platform, spec, retry)
        selector = (
            f"app.kubernetes.io/instance={base_name(name)},"
            f"app.kubernetes.io/managed-by={MANAGED_BY}"
        )
        deployments = await deps.kube.deployments(ns, selector)
    except KubeError:
        return None
    enabled = [s for s, svc in spec.services.by_name().items() if svc.enabled]
    by_component = _by_component(deployments)
    rolling = _rolling(deployments)
    problems = await _pod_problems(deps, ns, selector, enabled, by_component, rolling)
    observations = [
        db_obs,
        cache_obs,
        bucket_prev,
        cond.services_observation(enabled, by_component, problems, rolling),
    ]
    conditions = cond.merge(
        previous, [*observations, cond.ready(observations)], generation, deps.clock()
    )
    return Outcome(
        status={
            "observedGeneration": generation,
            "conditions": conditions,
            "services": _services_status(enabled, by_component, status),
        },
        events=_ready_events(previous, conditions),
    )


async def _pod_problems(
    deps: Deps,
    namespace: str,
    selector: str,
    enabled: list[str],
    by_component: Mapping[str, tuple[int, int, bool]],
    rolling: Collection[str],
) -> dict[str, Problem]:
    """What the pods of services that are not available, or mid-rollout, say; nothing listed
    when every service is available and rolled out.

    Diagnostic only: if pods cannot be listed (an older chart without the permission), the
    condition falls back to the Deployments' counts rather than failing the reconcile.
    """
    looked_at = [s for s in enabled if not by_component.get(s, (0, 0, False))[2] or s in rolling]
    if not looked_at:
        return {}
    try:
        pods = await deps.kube.pods(namespace, selector)
    except KubeError:
        return {}
    problems: dict[str, Problem] = {}
    for service in looked_at:
        found = diagnose([view for component, view in pods if component == service])
        if found is not None:
            problems[service] = found
    return problems


def _rolling(deployments: list[dict[str, Any]]) -> set[str]:
    return {
        d["labels"].get("app.kubernetes.io/component", "") for d in deployments if d.get("rolling")
    }


def _by_component(deployments: list[dict[str, Any]]) -> dict[str, tuple[int, int, bool]]:
    return {
        d["labels"].get("app.kubernetes.io/component", ""): (
            int(d["replicas"]),
            int(d["available_replicas"]),
            bool(d["available"]),
        )
        for d in deployments
    }


def _services_status(
    enabled: list[str],
    by_component: Mapping[str, tuple[int, int, bool]],
    previous_status: Mapping[str, Any],
) -> dict[str, Any]:
    empty = (0, 0, False)
    previous_services = set((previous_status.get("services") or {}).keys())
    return {
        # A merge patch: services switched off are removed with null.
        **dict.fromkeys(previous_services - set(enabled)),
        **{
            s: {
                "replicas": by_component.get(s, empty)[0],
                "availableReplicas": by_component.get(s, empty)[1],
                "available": by_component.get(s, empty)[2],
            }
            for s in enabled
        },
    }


#: What BucketReady's message says after the bucket name when the server lacks a setting.
NOT_APPLIED = "; not applied: "


def bucket_settings_events(
    previous: list[dict[str, Any]], bucket: Observation
) -> list[tuple[str, str, str]]:
    """A Warning when the bucket's server does not implement a setting it should have
    (encryption, public-access block, lifecycle) — once, when that first shows or changes,
    not at every reconciliation."""
    _, found, missing = bucket.message.partition(NOT_APPLIED)
    if bucket.status != TRUE or not found:
        return []
    before = next((c.get("message", "") for c in previous if c.get("type") == "BucketReady"), "")
    if before == bucket.message:
        return []
    return [("Warning", "BucketSettingsNotApplied", f"the S3 server lacks: {missing}")]


def _ready_events(
    previous: list[dict[str, Any]], conditions: list[dict[str, Any]]
) -> list[tuple[str, str, str]]:
    events = []
    for ctype, before, after in cond.transitions(previous, conditions):
        if ctype == "Ready" and after == TRUE:
            events.append(("Normal", "Ready", "all components are ready"))
        elif ctype == "Ready" and before == TRUE:
            message = next(c["message"] for c in conditions if c["type"] == "Ready")
            events.append(("Warning", "NotReady", message))
    return events


@dataclass
class _Material:
    """What the generated Secrets held and what this reconcile keeps or makes of it."""

    password: str
    keyset: KeySet
    keys_stored: bool
    keys_changed: bool
    app_keys_secret: dict[str, str] | None
    app_keys: dict[str, str]
    write_keys: dict[str, str]
    sync_keys_secret: dict[str, str] | None
    sync_keys: str


async def _material(
    deps: Deps,
    platform: PlatformRef,
    spec: MobilePlatformSpec,
    password: str,
    now: datetime,
    events: list[tuple[str, str, str]],
) -> _Material:
    """Read the generated Secrets back and decide what they hold now (generate what is new)."""
    ns, name = platform.namespace, platform.name
    keys_secret = await deps.kube.read_secret(ns, signing_keys_secret_name(platform))
    keyset, keys_changed = _signing_keys(spec, keys_secret, now)
    if keys_secret is not None and keys_changed:
        active = keyset.active.kid if keyset.active else "?"
        events.append(("Normal", "SigningKeysRotated", f"active key {active}"))

    # DSN keys: made once per app platform, kept forever (they are compiled into apps).
    app_keys_secret = await deps.kube.read_secret(ns, app_keys_secret_name(platform))
    app_keys = stored_keys(app_keys_secret)
    write_keys = stored_write_keys(app_keys_secret)
    for added in missing_platforms(spec, app_keys):
        app_keys[added] = secrets.token_hex(16)
        events.append(("Normal", "TelemetryProjectCreated", f"{name}-{added}"))
    for added in missing_platforms(spec, write_keys):
        write_keys[added] = secrets.token_urlsafe(24)
        events.append(("Normal", "AnalyticsSourceCreated", f"{name}-{added}"))

    # Sync checkpoint keys: made once and kept (a new key would send every device to a full
    # resync); a key rotated by hand in the Secret is read back and kept as it is.
    sync_keys_secret = await deps.kube.read_secret(ns, sync_keys_secret_name(platform))
    sync_keys = stored_sync_keys(sync_keys_secret) or secrets.token_urlsafe(32)
    return _Material(
        password=password,
        keyset=keyset,
        keys_stored=keys_secret is not None,
        keys_changed=keys_changed,
        app_keys_secret=app_keys_secret,
        app_keys=app_keys,
        write_keys=write_keys,
        sync_keys_secret=sync_keys_secret,
        sync_keys=sync_keys,
    )


def _generated_secrets(
    platform: PlatformRef, spec: MobilePlatformSpec, m: _Material, database_known: bool
) -> GeneratedSecrets:
    return GeneratedSecrets(
        signing_keys=signing_keys_secret_name(platform),
        app_keys=app_keys_secret_name(platform),
        sync_keys=sync_keys_secret_name(platform),
        database=database_secret_name(platform),
        signing_keys_stored=m.keys_stored,
        signing_keys_changed=m.keys_changed,
        signing_keys_data=signing_keys_data(m.keyset),
        app_keys_stored=m.app_keys_secret,
        app_keys_data=app_keys_data(platform, spec, m.app_keys, m.write_keys),
        sync_keys_stored=m.sync_keys_secret is not None,
        sync_keys_missing_key=stored_sync_keys(m.sync_keys_secret) is None,
        sync_keys_data={SYNC_CHECKPOINT_KEYS_KEY: m.sync_keys},
        database_known=database_known,
    )


async def _write(deps: Deps, platform: PlatformRef, writes: list[Write], m: _Material) -> None:
    """Perform the planned writes. Keys another writer made meanwhile win over ours: the app
    keys are read back then (the status shows the stored ones)."""
    for w in writes:
        if w.kind == WriteKind.APPLY:
            await deps.kube.apply(w.child)
        elif w.kind == WriteKind.CREATE:
            created = await deps.kube.create_if_absent(w.child)
            if not created and w.name == app_keys_secret_name(platform):
                stored = await deps.kube.read_secret(platform.namespace, w.name)
                m.app_keys, m.write_keys = stored_keys(stored), stored_write_keys(stored)
        elif w.kind == WriteKind.UPDATE_DATA:
            await deps.kube.update_secret_data(platform.namespace, w.name, w.data)


async def reconcile(deps: Deps, body: Mapping[str, Any]) -> Outcome:
    """Provision, render, write, report: one pass over a MobilePlatform."""
    meta = body["metadata"]
    name, ns, generation = meta["name"], meta["namespace"], int(meta.get("generation", 0))
    now = deps.clock()
    previous = list((body.get("status") or {}).get("conditions") or [])
    try:
        spec = MobilePlatformSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"spec.{where}: {first['msg']}"
        obs = [Observation("Ready", FALSE, "InvalidSpec", message)]
        return Outcome(
            status={
                "observedGeneration": generation,
                "conditions": cond.merge(previous, obs, generation, now),
            },
            events=[("Warning", "InvalidSpec", message)],
            permanent_error=message,
        )

    platform = PlatformRef(name=name, namespace=ns, uid=meta["uid"])
    retry = _Retry()
    events: list[tuple[str, str, str]] = []
    selector = (
        f"app.kubernetes.io/instance={base_name(name)},app.kubernetes.io/managed-by={MANAGED_BY}"
    )
    try:
        # Provision: the database (its password generated once, then read back) and bucket.
        db_secret = await deps.kube.read_secret(ns, database_secret_name(platform))
        password = (db_secret or {}).get("password") or secrets.token_urlsafe(24)
        db_obs, target, db_events = await _database(deps, platform, spec, password, retry)
        events += db_events
        bucket_obs, bucket_events = await _bucket(deps, ns, spec, retry)
        events += bucket_events
        material = await _material(deps, platform, spec, password, now, events)

        # Render (pure), then write each child by its policy, then prune what is not desired.
        inp = _render_input(deps, platform, spec, target, material)
        desired = [_adopt(child, body) for child in render(inp)]
        plan = plan_writes(
            desired, _generated_secrets(platform, spec, material, target is not None)
        )
        await _write(deps, platform, plan, material)
        for gone in await deps.kube.prune(ns, base_name(name), MANAGED_BY, desired):
            events.append(("Normal", "ChildRemoved", f"{gone} is no longer desired"))

        # Observe what runs.
        cache_obs = await _cache(deps, platform, spec, retry)
        deployments = await deps.kube.deployments(ns, selector)
    except KubeError as e:
        retry.want(deps.retry_seconds)
        obs = [Observation("Ready", UNKNOWN, "KubernetesApiError", str(e))]
        return Outcome(
            status={
                "observedGeneration": generation,
                "conditions": cond.merge(previous, obs, generation, now),
            },
            events=[("Warning", "KubernetesApiError", str(e))],
            retry_after=retry.delay,
        )

    enabled = [s for s, svc in spec.services.by_name().items() if svc.enabled]
    by_component = _by_component(deployments)
    rolling = _rolling(deployments)
    problems = await _pod_problems(deps, ns, selector, enabled, by_component, rolling)
    observations = [
        db_obs,
        cache_obs,
        bucket_obs,
        cond.services_observation(enabled, by_component, problems, rolling),
    ]
    conditions = cond.merge(previous, [*observations, cond.ready(observations)], generation, now)
    events += _ready_events(previous, conditions)
    events += bucket_settings_events(previous, bucket_obs)
    status = _status(
        inp, spec, generation, conditions, enabled, by_component, body, target, material
    )
    return Outcome(status=status, events=events, retry_after=retry.delay)


def _render_input(
    deps: Deps,
    platform: PlatformRef,
    spec: MobilePlatformSpec,
    target: DatabaseTarget | None,
    m: _Material,
) -> RenderInput:
    return RenderInput(
        platform=platform,
        spec=spec,
        # Until the external server is known, the children point at no database: the
        # services start and report not-ready, and the database Secret waits.
        database=target or DatabaseTarget(host="", port=5432, name="", role=""),
        generated=GeneratedMaterial(
            db_password=m.password,
            signing_keys=m.keyset,
            sync_checkpoint_keys=m.sync_keys,
            app_keys=m.app_keys,
            write_keys=m.write_keys,
        ),
        controller_namespace=deps.controller_namespace,
    )


def _status(
    inp: RenderInput,
    spec: MobilePlatformSpec,
    generation: int,
    conditions: list[dict[str, Any]],
    enabled: list[str],
    by_component: Mapping[str, tuple[int, int, bool]],
    body: Mapping[str, Any],
    target: DatabaseTarget | None,
    m: _Material,
) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "conditions": conditions,
        "gatewayURL": gateway_url(inp),
        "services": _services_status(enabled, by_component, body.get("status") or {}),
        "database": (
            {"name": target.name, "role": target.role, "host": target.host} if target else None
        ),
        "bucket": spec.media.bucket if spec.media else None,
        "signingKeys": {
            "activeKid": m.keyset.active.kid if m.keyset.active else None,
            "publishedKids": [k.kid for k in m.keyset.keys],
            "rotation": m.keyset.rotation,
        },
        "apps": apps_status(
            inp.platform,
            spec,
            m.app_keys,
            gateway_url(inp),
            m.write_keys if spec.services.analytics.enabled else None,
        ),
    }
