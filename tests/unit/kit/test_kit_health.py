"""Probes: liveness checks nothing, readiness runs checks with timeouts and explains failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI

from mobileplane.services.kit.health import (
    Check,
    CheckResult,
    Readiness,
    health_router,
    readiness_report,
)

ClientFactory = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


async def passes() -> None:
    return None


async def fails() -> None:
    raise ConnectionRefusedError("connection refused on 127.0.0.1:1")


async def hangs() -> None:
    await asyncio.sleep(30)


def make_app(checks: dict[str, Check], timeout: float = 0.2) -> FastAPI:
    app = FastAPI()
    app.include_router(health_router())
    readiness = Readiness()
    for name, check in checks.items():
        readiness.add(name, check, timeout=timeout)
    app.state.readiness = readiness
    return app


@pytest.mark.parametrize(
    ("checks", "status", "failed", "reason"),
    [
        pytest.param({}, 200, None, None, id="no-checks"),
        pytest.param({"postgres": passes, "redis": passes}, 200, None, None, id="all-pass"),
        pytest.param(
            {"postgres": passes, "redis": fails},
            503,
            ["redis"],
            "ConnectionRefusedError: connection refused on 127.0.0.1:1",
            id="one-fails",
        ),
        pytest.param(
            {"postgres": hangs, "redis": passes},
            503,
            ["postgres"],
            "timed out after 0.2s",
            id="one-times-out",
        ),
    ],
)
async def test_readyz(
    client_for: ClientFactory,
    checks: dict[str, Check],
    status: int,
    failed: list[str] | None,
    reason: str | None,
) -> None:
    async with client_for(make_app(checks)) as client:
        response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == status
    assert set(body["checks"]) == set(checks)
    assert body["status"] == ("ready" if status == 200 else "not_ready")
    assert body.get("failed") == failed
    if failed:
        assert body["checks"][failed[0]]["error"] == reason
        assert body["checks"][failed[0]]["ok"] is False


async def test_checks_run_concurrently(client_for: ClientFactory) -> None:
    async def slowish() -> None:
        await asyncio.sleep(0.15)

    app = make_app({f"c{i}": slowish for i in range(5)}, timeout=1.0)
    loop = asyncio.get_running_loop()
    async with client_for(app) as client:
        started = loop.time()
        response = await client.get("/readyz")
        elapsed = loop.time() - started
    assert response.status_code == 200
    assert elapsed < 0.6  # five 0.15 s checks in sequence would take 0.75 s


async def test_healthz_ignores_failing_checks(client_for: ClientFactory) -> None:
    async with client_for(make_app({"postgres": fails})) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_duplicate_check_names_are_refused() -> None:
    readiness = Readiness()
    readiness.add("postgres", passes)
    with pytest.raises(ValueError, match="already registered"):
        readiness.add("postgres", passes)


def test_readiness_report_is_pure() -> None:
    status, body = readiness_report(
        [CheckResult("a", True, 1.0), CheckResult("b", False, 2.0, "boom")]
    )
    assert status == 503
    assert body == {
        "status": "not_ready",
        "checks": {
            "a": {"ok": True, "duration_ms": 1.0},
            "b": {"ok": False, "duration_ms": 2.0, "error": "boom"},
        },
        "failed": ["b"],
    }
