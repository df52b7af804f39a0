"""Which child events take the status-only path (table)."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.operator.childevents import needs_reconcile, only_status_changed


def child(kind: str, generation: int | None, observed: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "metadata": {}, "status": {}}
    if generation is not None:
        body["metadata"]["generation"] = generation
    if observed is not None:
        body["status"]["observedGeneration"] = observed
    return body


@pytest.mark.parametrize(
    ("event_type", "body", "expected"),
    [
        pytest.param("MODIFIED", child("Deployment", 3, 3), True, id="deployment-caught-up"),
        pytest.param("MODIFIED", child("Deployment", 4, 3), False, id="deployment-spec-edited"),
        pytest.param("MODIFIED", child("StatefulSet", 1, 1), True, id="statefulset-caught-up"),
        pytest.param("MODIFIED", child("PodDisruptionBudget", 2, 2), True, id="pdb-recount"),
        pytest.param("MODIFIED", child("PodDisruptionBudget", 2, 1), False, id="pdb-edited"),
        pytest.param("MODIFIED", child("HorizontalPodAutoscaler", 1, 1), True, id="hpa-metrics"),
        pytest.param("MODIFIED", child("HorizontalPodAutoscaler", 1, None), False, id="hpa-new"),
        pytest.param("MODIFIED", child("NetworkPolicy", 1, None), False, id="netpol-edited"),
        pytest.param("MODIFIED", child("ConfigMap", None, None), False, id="configmap-edited"),
        pytest.param("MODIFIED", child("Deployment", None, None), False, id="no-generation"),
        pytest.param("DELETED", child("Deployment", 3, 3), False, id="deleted"),
        pytest.param("ADDED", child("Deployment", 3, 3), False, id="added"),
    ],
)
def test_only_status_changed(event_type: str, body: dict[str, Any], expected: bool) -> None:
    assert only_status_changed(event_type, body) is expected


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [("DELETED", True), ("MODIFIED", True), ("ADDED", False), (None, False)],
)
def test_needs_reconcile(event_type: str | None, expected: bool) -> None:
    assert needs_reconcile(event_type) is expected
