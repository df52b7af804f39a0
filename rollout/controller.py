"""kopf handlers of the release controller: thin edges around the engine.

Every look at a MobileRelease runs the same :func:`run`, serialised per release: read the
object, read the control annotation, measure (telemetry), :func:`~.engine.decide`, converge
the providers to :func:`~.effects.desired`, consume the control annotation, write the status,
post an Event when something happened. Looks are triggered by watch events of the release
(a new release, a spec change, a control annotation) and by a timer that ticks every
``MOBILEPLANE_RELEASE_TICK_SECONDS``; a tick decides only when the engine's ``requeue_after``
is due. Nothing sleeps. The due time is kept in memory only: everything the engine needs is
in the status, so after a restart the first look decides at once and resumes exactly where
the release was (and re-applies the desired provider state, which is idempotent).

Run it with ``kopf run -m mobileplane.rollout.controller`` (or ``mobileplane release
controller``), as the chart's ServiceAccount.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kopf
from kubernetes import client as k8s
from pydantic import ValidationError

from mobileplane.operator.kube import KubeError, KubeGateway, load_api_client
from mobileplane.operator.render.names import base_name
from mobileplane.rollout.effects import Effects, desired
from mobileplane.rollout.engine import (
    Control,
    Measurement,
    MeasurementFailed,
    Phase,
    Progress,
    decide,
)
from mobileplane.rollout.providers import (
    AppConfigPublisher,
    AppConfigTarget,
    FlagRollout,
    HealthSource,
    ProviderError,
    StoreRollout,
    StoreTarget,
)
from mobileplane.rollout.providers.app_store import AppStore
from mobileplane.rollout.providers.appconfig import AppConfig
from mobileplane.rollout.providers.google_play import GooglePlay
from mobileplane.rollout.providers.telemetry import TelemetryHealth
from mobileplane.rollout.providers.unleash import UnleashFlags
from mobileplane.rollout.settings import ReleaseSettings
from mobileplane.rollout.spec import MobileReleaseSpec, Store
from mobileplane.rollout.state import (
    APPCONFIG_APP_ANNOTATION,
    APPCONFIG_URL_ANNOTATION,
    CONTROL_ANNOTATION,
    STORE_SECRET_ANNOTATION,
    TELEMETRY_URL_ANNOTATION,
    TelemetryNames,
    app_id,
    decision_due,
    event_for,
    health_window,
    is_news,
    parse_time,
    previous_version,
    progress_from_status,
    read_control,
    set_condition,
    status_after,
    telemetry_names,
)

log = logging.getLogger("mobileplane.rollout")

GROUP, VERSION, PLURAL = "mobileplane.io", "v1alpha1", "mobilereleases"
#: The tick must be known when the decorators run (at import); the rest is read at startup.
TICK_SECONDS = float(os.environ.get("MOBILEPLANE_RELEASE_TICK_SECONDS", "5"))


@dataclass
class Deps:
    """The composition root's wiring (kept in kopf's memo)."""

    kube: KubeGateway
    http: httpx.AsyncClient
    health: HealthSource
    flags: FlagRollout | None
    stores: dict[Store, StoreRollout]
    appconfig: AppConfigPublisher
    settings: ReleaseSettings
    clock: Any = field(default=lambda: datetime.now(UTC))


@dataclass
class _Slot:
    """Per-release state of this process: the lock, when to decide next, what was applied."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    due: datetime | None = None
    applied: Effects | None = None
    again: bool = False


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount, else the kubeconfig that KUBECONFIG names *now*."""
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
    return info or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg = ReleaseSettings()
    # The controller may share a process with the MobilePlatform operator (``kopf run -m
    # mobileplane.operator.handlers -m mobileplane.rollout.controller``): never undo peering
    # that the operator (or the command line) configured.
    if settings.peering.name == kopf.OperatorSettings().peering.name:
        settings.peering.name = cfg.peering_name
        settings.peering.clusterwide = True
    if cfg.standalone:
        settings.peering.standalone = True
    settings.posting.level = logging.WARNING  # our own Events are posted explicitly
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 301
    memo.release_deps = build_deps(cfg, KubeGateway(load_api_client()))
    memo.releases = {}


def build_deps(cfg: ReleaseSettings, kube: KubeGateway) -> Deps:
    http = httpx.AsyncClient(timeout=cfg.http_timeout_seconds)
    flags: FlagRollout | None = None
    if cfg.unleash_url and cfg.unleash_token:
        flags = UnleashFlags(
            http,
            cfg.unleash_url,
            cfg.unleash_token.get_secret_value(),
            cfg.unleash_project,
            cfg.unleash_environment,
        )
    return Deps(
        kube=kube,
        http=http,
        health=TelemetryHealth(http),
        flags=flags,
        stores={
            Store.GOOGLE_PLAY: GooglePlay(http, cfg.google_play_url),
            Store.APP_STORE: AppStore(http, cfg.app_store_url),
        },
        appconfig=AppConfig(http),
        settings=cfg,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    deps: Deps | None = getattr(memo, "release_deps", None)
    if deps is not None:
        await deps.http.aclose()
        deps.kube.api.close()  # type: ignore[no-untyped-call]


@kopf.on.event(GROUP, VERSION, PLURAL)
async def release_event(event: Any, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    if event.get("type") == "DELETED" or namespace is None:
        getattr(memo, "releases", {}).pop((namespace, name), None)
        return
    await run(memo, namespace, name)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK_SECONDS)
async def tick(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    if namespace is not None:
        await run(memo, namespace, name)


def _post(body: Any, *, type: str, reason: str, message: str) -> None:
    kopf.event(body, type=type, reason=reason, message=message[:1024])


async def run(memo: Any, namespace: str, name: str) -> None:
    """Look at one release (serialised; a look asked for meanwhile runs right after)."""
    if getattr(memo, "release_deps", None) is None:
        return  # loaded in a process whose startup did not run ours
    slots: dict[tuple[str, str], _Slot] = memo.releases
    slot = slots.setdefault((namespace, name), _Slot())
    if slot.lock.locked():
        slot.again = True
        return
    async with slot.lock:
        while True:
            slot.again = False
            try:
                await look(memo.release_deps, slot, namespace, name)
            except KubeError as e:
                log.warning("release %s/%s: %s (retrying)", namespace, name, e)
            if not slot.again:
                break


async def look(deps: Deps, slot: _Slot, namespace: str, name: str) -> None:
    body = await deps.kube.get_custom(GROUP, VERSION, PLURAL, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    now: datetime = deps.clock()
    annotations = body["metadata"].get("annotations") or {}
    control = read_control(annotations)
    if not decision_due(slot.due, body, control.raw is not None, now):
        return
    generation = int(body["metadata"].get("generation") or 0)
    previous = body.get("status") or {}
    try:
        spec = MobileReleaseSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        conditions = set_condition(
            previous.get("conditions") or [],
            "Progressing",
            "False",
            "InvalidSpec",
            str(e),
            generation,
            now,
        )
        await deps.kube.patch_status(
            GROUP,
            VERSION,
            PLURAL,
            namespace,
            name,
            {"conditions": conditions, "observedGeneration": generation},
        )
        slot.due = now + timedelta(seconds=deps.settings.max_requeue_seconds)
        return
    if control.error:
        _post(body, type="Warning", reason="BadControl", message=control.error)
        await _remove_control(deps, namespace, name, control.raw)
        return

    progress = progress_from_status(previous)
    measurement = await _measure(deps, body, spec, progress.phase, control.control, now)
    decision = decide(
        spec.to_steps(),
        spec.gates.to_gates(),
        spec.failure_policy,
        progress,
        now,
        measurement,
        control.control,
    )
    status = status_after(previous, decision, measurement, control.control, generation, now)
    failure = await _converge(
        deps, slot, body, spec, decision.progress, "; ".join(decision.reasons)
    )
    if failure:
        status["conditions"] = set_condition(
            status["conditions"],
            "ActionsApplied",
            "False",
            "ProviderFailed",
            failure,
            generation,
            now,
        )
    else:
        status["conditions"] = set_condition(
            status["conditions"],
            "ActionsApplied",
            "True",
            "Converged",
            "flags, store and app-config match the release",
            generation,
            now,
        )
    if control.raw is not None:
        await _remove_control(deps, namespace, name, control.raw)
    await deps.kube.patch_status(GROUP, VERSION, PLURAL, namespace, name, status)
    if is_news(previous, status):
        kind, reason, message = event_for(decision, control.control)
        _post(body, type=kind, reason=reason, message=message)
    if failure:
        _post(body, type="Warning", reason="ProviderFailed", message=failure[:1024])
    cfg = deps.settings
    wait = decision.requeue_after
    cap = timedelta(seconds=cfg.max_requeue_seconds)
    wait = cap if wait is None else min(wait, cap)
    if failure:
        wait = min(wait, timedelta(seconds=cfg.action_retry_seconds))
    slot.due = now + wait


async def _measure(
    deps: Deps,
    body: dict[str, Any],
    spec: MobileReleaseSpec,
    phase: Phase,
    control: Control,
    now: datetime,
) -> Measurement | MeasurementFailed | None:
    """The release's health now; None when the engine will not look at it (pending,
    completed, paused or halted without a resume)."""
    if phase in (Phase.PENDING, Phase.COMPLETED):
        return None
    if phase in (Phase.PAUSED, Phase.HALTED) and control is not Control.RESUME:
        return None
    if control is Control.ABORT:
        return None
    meta = body["metadata"]
    namespace = meta["namespace"]
    names = await _telemetry_names(deps, body, spec)
    if isinstance(names, str):
        return MeasurementFailed(names)
    url = _url(
        deps.settings.telemetry_url,
        meta.get("annotations"),
        TELEMETRY_URL_ANNOTATION,
        spec.platform_ref.name,
        namespace,
    )
    created = parse_time(meta.get("creationTimestamp"))
    return await deps.health.measure(
        url,
        names.project,
        names.release,
        baseline=names.baseline,
        window=health_window(created, now),
        environment=spec.channel,
    )


async def _telemetry_names(
    deps: Deps, body: dict[str, Any], spec: MobileReleaseSpec
) -> TelemetryNames | str:
    meta = body["metadata"]
    platform_body = await deps.kube.get_custom(
        GROUP, VERSION, "mobileplatforms", meta["namespace"], spec.platform_ref.name
    )
    the_app_id = app_id(
        spec.app.platform.value,
        meta.get("annotations"),
        spec.store.package_name,
        (platform_body or {}).get("spec"),
    )
    baseline: str | None = None
    if spec.gates.baseline is not None:
        baseline = spec.gates.baseline.release
        if baseline == "previous":
            items: Any = await asyncio.to_thread(
                k8s.CustomObjectsApi(deps.kube.api).list_namespaced_custom_object,
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
            )
            baseline = previous_version(
                items.get("items") or [],
                spec.platform_ref.name,
                spec.app.platform.value,
                meta["name"],
            )
    return telemetry_names(
        spec.platform_ref.name,
        spec.app.platform.value,
        spec.app.version,
        spec.app.build,
        meta.get("annotations"),
        the_app_id,
        baseline,
    )


def _url(template: str, annotations: Any, key: str, platform: str, namespace: str) -> str:
    override = (annotations or {}).get(key)
    if override:
        return str(override)
    return template.format(platform=base_name(platform), namespace=namespace)


async def _converge(
    deps: Deps,
    slot: _Slot,
    body: dict[str, Any],
    spec: MobileReleaseSpec,
    progress: Progress,
    reason: str,
) -> str | None:
    """Bring flags, store and app-config to the desired state; the failures, or None."""
    wanted = desired(spec, progress)
    if wanted is None or wanted == slot.applied:
        return None
    meta = body["metadata"]
    namespace = meta["namespace"]
    annotations = meta.get("annotations") or {}
    failures: list[str] = []
    if wanted.flags:
        if deps.flags is None:
            failures.append(
                "flags: Unleash is not configured (MOBILEPLANE_RELEASE_UNLEASH_URL and "
                "MOBILEPLANE_RELEASE_UNLEASH_TOKEN)"
            )
        else:
            for flag in wanted.flags:
                try:
                    await deps.flags.apply(flag)
                except ProviderError as e:
                    failures.append(f"flag {flag.name}: {e}")
    if wanted.store is not None:
        store = deps.stores[wanted.store.kind]
        secret = annotations.get(STORE_SECRET_ANNOTATION) or (
            f"{base_name(spec.platform_ref.name)}-"
            f"{'googleplay' if wanted.store.kind is Store.GOOGLE_PLAY else 'appstore'}"
        )
        try:
            credentials = await deps.kube.read_secret(namespace, secret)
        except KubeError as e:
            credentials = None
            failures.append(f"store: cannot read Secret {secret}: {e}")
        if credentials is None:
            failures.append(f"store: Secret {namespace}/{secret} with the credentials is missing")
        else:
            target = StoreTarget(
                package_name=spec.store.package_name,
                track=spec.store.track,
                app_id=spec.store.app_id,
                version=spec.app.version,
                build=spec.app.build,
            )
            try:
                await store.apply(target, wanted.store, credentials)
            except ProviderError as e:
                failures.append(f"store: {e}")
    if wanted.appconfig is not None:
        url = _url(
            deps.settings.appconfig_url,
            annotations,
            APPCONFIG_URL_ANNOTATION,
            spec.platform_ref.name,
            namespace,
        )
        target_ac = AppConfigTarget(
            app=annotations.get(APPCONFIG_APP_ANNOTATION) or spec.platform_ref.name,
            platform=spec.app.platform.value,
            version=spec.app.version,
        )
        try:
            await deps.appconfig.apply(url, target_ac, wanted.appconfig, reason)
        except ProviderError as e:
            failures.append(f"app-config: {e}")
    if failures:
        return "; ".join(failures)
    slot.applied = wanted
    return None


async def _remove_control(deps: Deps, namespace: str, name: str, raw: str | None) -> None:
    """Consume the control annotation — only if it still holds what we acted on (a JSON
    patch ``test``), so a newer control set meanwhile is not lost."""
    if raw is None:
        return
    path = "/metadata/annotations/" + CONTROL_ANNOTATION.replace("~", "~0").replace("/", "~1")
    patch = [{"op": "test", "path": path, "value": raw}, {"op": "remove", "path": path}]

    def call() -> None:
        try:
            k8s.CustomObjectsApi(deps.kube.api).patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                patch,
                _content_type="application/json-patch+json",
            )
        except k8s.ApiException as e:
            if e.status in (404, 409, 422):
                return  # gone, or a newer control replaced it: the next look handles that
            raise KubeError(
                f"removing the control annotation of {name}: {e.reason}", e.status
            ) from e

    await asyncio.to_thread(call)
