"""Conditions from observations: Ready's logic and lastTransitionTime's rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mobileplane.operator.conditions import (
    FALSE,
    TRUE,
    UNKNOWN,
    Observation,
    merge,
    ready,
    services_observation,
    transitions,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 12, 5, 0, tzinfo=UTC)


def _obs(
    db: str = TRUE, cache: str = TRUE, bucket: str = TRUE, svc: str = TRUE
) -> list[Observation]:
    return [
        Observation("DatabaseReady", db, "Provisioned" if db == TRUE else "Unreachable", "db"),
        Observation("CacheReady", cache, "Available" if cache == TRUE else "NotAvailable", "c"),
        Observation("BucketReady", bucket, "Provisioned" if bucket == TRUE else "Refused", "b"),
        Observation("ServicesReady", svc, "DeploymentsAvailable", "s"),
    ]


@pytest.mark.parametrize(
    ("observations", "status", "reason"),
    [
        pytest.param(_obs(), TRUE, "AllComponentsReady", id="all-true"),
        pytest.param(_obs(db=FALSE), FALSE, "Unreachable", id="database-down-explains"),
        pytest.param(_obs(bucket=FALSE, db=FALSE), FALSE, "Unreachable", id="first-in-order"),
        pytest.param(_obs(cache=UNKNOWN), UNKNOWN, "NotAvailable", id="unknown-stays-unknown"),
        pytest.param(_obs()[:2], UNKNOWN, "Reconciling", id="not-all-observed"),
    ],
)
def test_ready(observations: list[Observation], status: str, reason: str) -> None:
    r = ready(observations)
    assert (r.type, r.status, r.reason) == ("Ready", status, reason)


def test_transition_time_changes_only_with_status() -> None:
    first = merge([], [*_obs(db=FALSE), ready(_obs(db=FALSE))], generation=1, now=T0)
    assert {c["lastTransitionTime"] for c in first} == {"2026-01-01T12:00:00Z"}
    second = merge(first, [*_obs(), ready(_obs())], generation=2, now=T1)
    times = {c["type"]: c["lastTransitionTime"] for c in second}
    assert times["DatabaseReady"] == "2026-01-01T12:05:00Z"  # False -> True
    assert times["Ready"] == "2026-01-01T12:05:00Z"
    assert times["CacheReady"] == "2026-01-01T12:00:00Z"  # unchanged True
    assert {c["observedGeneration"] for c in second} == {2}
    assert [c["type"] for c in second] == [
        "Ready",
        "DatabaseReady",
        "CacheReady",
        "BucketReady",
        "ServicesReady",
    ]


def test_transitions_lists_changed_statuses() -> None:
    before = merge([], _obs(db=FALSE), 1, T0)
    after = merge(before, _obs(), 1, T1)
    assert transitions(before, after) == [("DatabaseReady", FALSE, TRUE)]
    assert transitions([], before)[0] == ("DatabaseReady", None, FALSE)


@pytest.mark.parametrize(
    ("enabled", "available", "status", "reason", "fragment"),
    [
        pytest.param(
            ["gateway"],
            {"gateway": (2, 2, True)},
            TRUE,
            "DeploymentsAvailable",
            "1 services",
            id="available",
        ),
        pytest.param(
            ["gateway", "auth"],
            {"gateway": (1, 1, True)},
            FALSE,
            "DeploymentsMissing",
            "auth",
            id="missing",
        ),
        pytest.param(
            ["gateway"],
            {"gateway": (3, 1, False)},
            FALSE,
            "DeploymentsNotAvailable",
            "gateway (1/3 available)",
            id="partially",
        ),
        pytest.param(
            ["gateway"],
            {"gateway": (1, 1, True), "old": (1, 0, False)},
            TRUE,
            "DeploymentsAvailable",
            "",
            id="disabled-services-ignored",
        ),
    ],
)
def test_services_observation(
    enabled: list[str],
    available: dict[str, tuple[int, int, bool]],
    status: str,
    reason: str,
    fragment: str,
) -> None:
    o = services_observation(enabled, available)
    assert (o.status, o.reason) == (status, reason)
    assert fragment in o.message
