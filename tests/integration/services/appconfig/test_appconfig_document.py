"""The pure part of app-config: version order and what an install is told, table-tested."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mobileplane.services.appconfig.document import (
    HaltedRow,
    KillSwitchRow,
    PlatformRow,
    client_status,
    document,
    older,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2.9.1", "2.10.0", True),
        ("2.10.0", "2.9.1", False),
        ("2.0", "2.0.0", False),
        ("2.0.0", "2.0", False),
        ("2.0.0-beta.1", "2.0.0", True),
        ("2.0.0-beta.2", "2.0.0-beta.10", True),
        ("2.0.0-alpha", "2.0.0-beta", True),
        ("1.0.0+99", "1.0.0+1", False),
        ("1.0.0", "1.0.1", True),
    ],
)
def test_version_order(a: str, b: str, expected: bool) -> None:
    assert older(a, b) is expected


AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DOC = document(
    "shop",
    [PlatformRow("android", "2.4.0", "2.0.0")],
    [HaltedRow("android", "2.4.0", "crashes", AT), HaltedRow("ios", "1.1.0", "abort", AT)],
    [KillSwitchRow("b", False, ""), KillSwitchRow("a", True, "off")],
)


def test_document_is_stable_and_complete() -> None:
    assert list(DOC["platforms"]) == ["android", "ios"]
    assert list(DOC["kill_switches"]) == ["a", "b"]
    assert DOC["platforms"]["ios"] == {
        "latest_version": None,
        "min_supported_version": None,
        "halted_versions": [
            {"version": "1.1.0", "reason": "abort", "halted_at": "2026-11-25T12:00:00Z"}
        ],
    }


@pytest.mark.parametrize(
    ("platform", "version", "halted", "required", "available"),
    [
        ("android", "2.4.0", True, False, False),
        ("android", "2.3.0", False, False, True),
        ("android", "1.9.9", False, True, True),
        ("ios", "1.1.0", True, False, False),
        ("ios", "0.1", False, False, False),  # nothing configured: no demands
    ],
)
def test_client_status(
    platform: str, version: str, halted: bool, required: bool, available: bool
) -> None:
    status = client_status(DOC, platform, version)
    assert (status["halted"], status["update_required"], status["update_available"]) == (
        halted,
        required,
        available,
    )
