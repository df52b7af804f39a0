"""The real sentry-sdk, pointed at our DSN: errors appear grouped, sessions become release
health that matches a hand-counted fixture exactly."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sentry_sdk
from support.sentry import sentry, session

pytestmark = pytest.mark.integration

Dsn = Callable[[str, str, int], str]


def _id(issues: list[dict[str, Any]], prefix: str) -> int:
    return int(next(i["id"] for i in issues if i["title"].startswith(prefix)))


#: The hand-counted fixture: (release, user, outcome) per session.
SESSIONS = [
    ("shop@1.0.0", "u1", "healthy"),
    ("shop@1.0.0", "u1", "errored"),
    ("shop@1.0.0", "u2", "crashed"),
    ("shop@1.0.0", "u3", "healthy"),
    ("shop@1.1.0", "u5", "healthy"),
    ("shop@1.1.0", "u6", "crashed"),
    ("shop@1.1.0", "u6", "errored"),
]


def test_sentry_sdk_errors_grouped_and_release_health_exact(
    telemetry_url: str, keys: dict[str, str], make_dsn: Dsn, reader_headers: dict[str, str]
) -> None:
    dsn = make_dsn(telemetry_url, keys["shop-python"], 1)
    for release in ("shop@1.0.0", "shop@1.1.0"):
        with sentry(dsn, release):
            for rel, user, outcome in SESSIONS:
                if rel == release:
                    session(user, outcome)

    with httpx.Client(base_url=telemetry_url, headers=reader_headers) as api:
        issues = api.get("/telemetry/projects/shop-python/issues").json()["issues"]
        detail = api.get(f"/telemetry/projects/1/issues/{_id(issues, 'ValueError')}").json()
        health = api.get(
            "/telemetry/projects/shop-python/releases/shop@1.1.0/health",
            params={"window": "1h", "baseline": "shop@1.0.0"},
        )
    by_title = {i["title"]: i for i in issues}
    # Two errored sessions raised the same ValueError from the same code: one issue.
    value_error = by_title["ValueError: negative amount -1"]
    assert value_error["event_count"] == 2
    assert value_error["user_count"] == 2  # u1 and u6
    assert value_error["culprit"].endswith("in checkout")
    key_errors = [i for i in issues if i["title"].startswith("KeyError")]
    assert len(key_errors) == 1 and key_errors[0]["event_count"] == 2  # u2's and u6's crash
    assert len(issues) == 2
    assert {r["release"] for r in detail["releases"]} == {"shop@1.0.0", "shop@1.1.0"}
    assert detail["first_release"] == "shop@1.0.0"

    assert health.status_code == 200, health.text
    body = health.json()
    new, old = body["release"], body["baseline"]
    # Hand count, shop@1.1.0: u5 healthy, u6 crashed, u6 errored -> 3 sessions, 1 crashed;
    # users u5, u6 (u6 crashed once) -> 1 of 2 crash-free.
    assert new["sessions"] == {"total": 3, "healthy": 1, "errored": 1, "abnormal": 0, "crashed": 1}
    assert new["users"] == {"total": 2, "crashed": 1}
    assert new["crash_free_sessions"]["rate"] == pytest.approx(2 / 3)
    assert new["crash_free_sessions"]["n"] == 3
    assert new["crash_free_users"]["rate"] == pytest.approx(1 / 2)
    assert new["adoption"] == {"sessions": pytest.approx(3 / 7), "users": pytest.approx(2 / 5)}
    # shop@1.0.0: 4 sessions (2 healthy, 1 errored, 1 crashed); users u1, u2, u3 (u2 crashed).
    assert old["sessions"] == {"total": 4, "healthy": 2, "errored": 1, "abnormal": 0, "crashed": 1}
    assert old["users"] == {"total": 3, "crashed": 1}
    assert old["crash_free_users"]["rate"] == pytest.approx(2 / 3)
    low, high = old["crash_free_sessions"]["low"], old["crash_free_sessions"]["high"]
    assert low < 0.75 < high
    assert new["crash_free_sessions"]["verdict"] == "critical"
    assert body["targets"]["crash_free_sessions"] == {"target": 99.5, "critical": 99.0}


def test_sentry_sdk_obeys_our_rate_limits(
    telemetry_url: str, keys: dict[str, str], make_dsn: Dsn, reader_headers: dict[str, str]
) -> None:
    """Project 4 allows 3 errors a minute: the SDK is told, stops sending, and records the
    drops in a client report (which we store)."""
    dsn = make_dsn(telemetry_url, keys["limited"], 4)
    with sentry(dsn, "svc@1"):
        for i in range(6):
            try:
                raise RuntimeError(f"failure {i}")
            except RuntimeError:
                sentry_sdk.capture_exception()
            sentry_sdk.flush(timeout=10)
        transport: Any = sentry_sdk.get_client().transport
        assert transport is not None
        assert "error" in {str(c) for c in transport._disabled_until}
    with httpx.Client(base_url=telemetry_url, headers=reader_headers) as api:
        issues = api.get("/telemetry/projects/limited/issues").json()["issues"]
    assert sum(i["event_count"] for i in issues) == 3


@pytest.mark.parametrize("algorithm", [None, "br", "gzip"], ids=["sdk-default", "br", "gzip"])
def test_sentry_sdk_compression_is_accepted(
    telemetry_url: str,
    keys: dict[str, str],
    make_dsn: Dsn,
    reader_headers: dict[str, str],
    algorithm: str | None,
) -> None:
    """sentry-python compresses with brotli by default when ``brotli`` is importable (it is:
    a dependency of ours), else gzip; both must land (issue 21: br was answered 415 and the
    SDK dropped the event silently)."""
    import brotli  # noqa: F401 - the SDK's default is br only when this imports

    experiments = {} if algorithm is None else {"transport_compression_algo": algorithm}
    dsn = make_dsn(telemetry_url, keys["shop-python"], 1)
    marker = f"compressed with {algorithm or 'the default'} {uuid.uuid4().hex[:8]}"
    with sentry(dsn, "shop@2.0.0", _experiments=experiments):
        transport: Any = sentry_sdk.get_client().transport
        assert transport._compression_algo == (algorithm or "br")
        sentry_sdk.capture_message(marker)
    with httpx.Client(base_url=telemetry_url, headers=reader_headers) as api:
        issues = api.get("/telemetry/projects/shop-python/issues").json()["issues"]
    assert [i["title"] for i in issues if marker in i["title"]] != []
