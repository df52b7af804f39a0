"""Status conditions of a MobilePlatform, decided from observations.

Pure: the reconciler observes (is the database provisioned? is each Deployment Available?),
and this module turns observations into Kubernetes conditions (``metav1.Condition``) and the
aggregate ``Ready``. ``lastTransitionTime`` changes only when a condition's status changes,
as the API conventions require, so the clock is passed in and old conditions are merged.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mobileplane.operator.podhealth import SEVERITY, STUCK, Problem

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

#: The component conditions; Ready is True only when all of them are.
COMPONENTS = ("DatabaseReady", "CacheReady", "BucketReady", "ServicesReady")


@dataclass(frozen=True)
class Observation:
    """What the reconciler found for one condition type."""

    type: str
    status: str
    reason: str
    message: str = ""


def rfc3339(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def ready(observations: Sequence[Observation]) -> Observation:
    """Ready is the conjunction of the components; the first non-True one explains why not."""
    by_type = {o.type: o for o in observations}
    for name in COMPONENTS:
        o = by_type.get(name)
        if o is None:
            return Observation("Ready", UNKNOWN, "Reconciling", f"{name} not observed yet")
        if o.status != TRUE:
            status = FALSE if o.status == FALSE else UNKNOWN
            return Observation("Ready", status, o.reason, f"{name}: {o.message}".rstrip(": "))
    return Observation("Ready", TRUE, "AllComponentsReady", "the platform is ready")


def merge(
    previous: Iterable[Mapping[str, Any]],
    observations: Sequence[Observation],
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """New conditions, keeping each one's lastTransitionTime unless its status changed.

    Returned in a stable order: Ready first, then the components, then any others seen.
    """
    old = {c.get("type"): c for c in previous}
    stamp = rfc3339(now)
    out: list[dict[str, Any]] = []
    for o in observations:
        before = old.get(o.type)
        transition = stamp
        if before is not None and before.get("status") == o.status:
            transition = str(before.get("lastTransitionTime") or stamp)
        out.append(
            {
                "type": o.type,
                "status": o.status,
                "reason": o.reason,
                "message": o.message,
                "lastTransitionTime": transition,
                "observedGeneration": generation,
            }
        )
    order = {name: i for i, name in enumerate(("Ready", *COMPONENTS))}
    out.sort(key=lambda c: (order.get(c["type"], len(order)), c["type"]))
    return out


def transitions(
    previous: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]]
) -> list[tuple[str, str | None, str]]:
    """(type, old status, new status) of every condition whose status changed."""
    old = {c.get("type"): c.get("status") for c in previous}
    return [
        (str(c["type"]), old.get(c["type"]), str(c["status"]))
        for c in current
        if old.get(c["type"]) != c["status"]
    ]


def services_observation(
    enabled: Sequence[str],
    available: Mapping[str, tuple[int, int, bool]],
    problems: Mapping[str, Problem] | None = None,
    rolling: Collection[str] = (),
) -> Observation:
    """ServicesReady from each enabled service's Deployment: (replicas, available, Available).

    ``problems`` are what the pods of services that are not available say (see
    :mod:`~mobileplane.operator.podhealth`): the most severe becomes the condition's reason
    (``CrashLoopBackOff``, ``ImagePullBackOff``…) and every one is named in the message.
    A service whose rollout is under way (``rolling``) while old pods keep it available counts
    only when its problem is one that waiting never cures (:data:`~podhealth.STUCK`): the
    spec change cannot take effect, though the old version still serves.
    """
    missing = [s for s in enabled if s not in available]
    if missing:
        return Observation(
            "ServicesReady",
            FALSE,
            "DeploymentsMissing",
            f"no Deployment yet for {', '.join(missing)}",
        )
    not_available = [s for s in enabled if not available[s][2]]
    found = {
        s: p
        for s in enabled
        if (p := (problems or {}).get(s)) is not None
        and (s in not_available or (s in rolling and p.reason in STUCK))
    }
    if found:
        worst = min(found.values(), key=lambda p: SEVERITY.index(p.reason))
        return Observation(
            "ServicesReady",
            FALSE,
            worst.reason,
            "; ".join(
                f"{s}: {p.message}" + ("" if s in not_available else " (the old pods still serve)")
                for s, p in found.items()
            ),
        )
    waiting = [f"{s} ({available[s][1]}/{available[s][0]} available)" for s in not_available]
    if waiting:
        return Observation(
            "ServicesReady", FALSE, "DeploymentsNotAvailable", "waiting for " + ", ".join(waiting)
        )
    return Observation(
        "ServicesReady", TRUE, "DeploymentsAvailable", f"{len(enabled)} services available"
    )
