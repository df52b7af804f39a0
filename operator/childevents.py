"""Which events of a MobilePlatform's children need a full reconcile, and which a cheap look.

Every child the operator owns is watched, so that a deleted or hand-edited child is restored.
Most of the events, though, are controllers reporting progress: a Deployment's replicas
becoming ready, a PodDisruptionBudget recounting healthy pods, an autoscaler's metrics. Those
change only ``status``; the platform's status must follow (services' availability), but
re-applying every child would be wasted work — and at scale, a load of its own. A child whose
controller has caught up with its spec (``status.observedGeneration == metadata.generation``)
and whose event is a modification gets the status-only path; anything else (a deletion, a
spec edit, a kind without generations) gets a full reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Kinds whose controllers publish ``status.observedGeneration``.
GENERATION_TRACKING_KINDS = frozenset(
    {"Deployment", "StatefulSet", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
)


def only_status_changed(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """A modification of a child whose controller has caught up with its spec."""
    if event_type != "MODIFIED" or body.get("kind") not in GENERATION_TRACKING_KINDS:
        return False
    generation = (body.get("metadata") or {}).get("generation")
    observed = (body.get("status") or {}).get("observedGeneration")
    return generation is not None and generation == observed


def needs_reconcile(event_type: str | None) -> bool:
    """Whether a child's event can change anything at all (the initial listing and additions
    are the operator's own doing)."""
    return event_type in ("DELETED", "MODIFIED")
