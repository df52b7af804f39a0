"""A Warning event when the S3 server lacks a bucket setting: once, not every reconcile."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.operator.conditions import FALSE, TRUE, Observation
from mobileplane.operator.reconcile import bucket_settings_events

LACKING = (
    "bucket b; not applied: encryption: PutBucketEncryption answered NotImplemented (HTTP 501)"
)


def _previous(message: str | None) -> list[dict[str, Any]]:
    return [] if message is None else [{"type": "BucketReady", "status": TRUE, "message": message}]


@pytest.mark.parametrize(
    ("before", "now", "status", "warned"),
    [
        pytest.param(None, LACKING, TRUE, True, id="first-time"),
        pytest.param("bucket b", LACKING, TRUE, True, id="server-lost-a-setting"),
        pytest.param(LACKING, LACKING, TRUE, False, id="unchanged-no-repeat"),
        pytest.param(None, "bucket b", TRUE, False, id="everything-applied"),
        pytest.param(None, "unreachable; not applied: x", FALSE, False, id="not-ready"),
    ],
)
def test_bucket_settings_events(before: str | None, now: str, status: str, warned: bool) -> None:
    events = bucket_settings_events(
        _previous(before), Observation("BucketReady", status, "Provisioned", now)
    )
    if warned:
        assert events == [
            (
                "Warning",
                "BucketSettingsNotApplied",
                "the S3 server lacks: encryption: PutBucketEncryption answered NotImplemented "
                "(HTTP 501)",
            )
        ]
    else:
        assert events == []
