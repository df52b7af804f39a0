"""What ``mobileplane release …`` says about a release, table-tested."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.rollout.commands import NEXT, describe
from mobileplane.rollout.engine import Control

STEPS = [{"setWeight": 10}, {"approval": True}, {"setWeight": 100}]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, "phase Pending, step 1/3 (setWeight) at 0%"),
        (
            {"phase": "Progressing", "currentStep": 1, "weight": 10},
            "phase Progressing, step 2/3 (approval) at 10%",
        ),
        (
            {"phase": "Completed", "currentStep": 3, "weight": 100},
            "phase Completed, step 4/3 (done) at 100%",
        ),
    ],
)
def test_describe(status: dict[str, Any], expected: str) -> None:
    assert describe({"spec": {"steps": STEPS}, "status": status}) == expected


def test_every_control_says_what_happens_next() -> None:
    assert set(NEXT) == {c for c in Control if c is not Control.NONE}
