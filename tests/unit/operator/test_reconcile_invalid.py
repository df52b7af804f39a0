"""A spec the models refuse becomes a condition and a permanent error, with no I/O at all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from mobileplane.operator.reconcile import Deps, default_database_name, reconcile


class _Untouchable:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"reconcile must not call {name} for an invalid spec")


def _deps() -> Deps:
    return Deps(
        kube=cast(Any, _Untouchable()),
        postgres=cast(Any, _Untouchable()),
        buckets=cast(Any, _Untouchable()),
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        pytest.param({}, "spec.app", id="no-app"),
        pytest.param({"app": {"displayName": "x"}, "surprise": 1}, "spec.surprise", id="unknown"),
        pytest.param(
            {"app": {"displayName": "x"}, "services": {"gateway": {"replicas": -1}}},
            "spec.services.gateway.replicas",
            id="out-of-range",
        ),
    ],
)
async def test_invalid_spec(spec: dict[str, Any], fragment: str) -> None:
    body = {"metadata": {"name": "p", "namespace": "n", "uid": "u", "generation": 3}, "spec": spec}
    outcome = await reconcile(_deps(), body)
    assert outcome.permanent_error is not None and fragment in outcome.permanent_error
    (ready,) = outcome.status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")
    assert ready["observedGeneration"] == 3 and outcome.status["observedGeneration"] == 3
    assert outcome.events[0][:2] == ("Warning", "InvalidSpec")


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        pytest.param("shop", "app", "mp_shop_app", id="simple"),
        pytest.param("my-team", "my-app", "mp_my_team_my_app", id="dashes"),
        pytest.param("n" * 40, "a" * 40, ("mp_" + "n" * 40 + "_" + "a" * 40)[:63], id="long"),
    ],
)
def test_default_database_name(namespace: str, name: str, expected: str) -> None:
    assert default_database_name(namespace, name) == expected
    assert len(expected) <= 63
