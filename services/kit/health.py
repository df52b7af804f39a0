"""Liveness and readiness probes, the Kubernetes way.

``GET /healthz`` (liveness) answers as long as the process serves HTTP; it checks no
dependency, because restarting a pod whose database is down cures nothing. ``GET /readyz``
(readiness) runs every registered check — ``SELECT 1`` on PostgreSQL, ``PING`` on Redis, ... —
concurrently, each under its own timeout, and answers 200 when all pass or 503 naming the
checks that failed and why, so Kubernetes stops routing to a pod that cannot serve.

Deciding (:func:`readiness_report`) is separate from doing (:meth:`Readiness.run`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[object]]
"""A readiness check: succeeds by returning (anything), fails by raising."""

# A check slower than this counts as failed: a dependency that slow cannot serve requests
# either. Checks run concurrently, so /readyz answers within about this; the chart's probe
# timeoutSeconds must be larger (Kubernetes' default of 1 s is not).
DEFAULT_CHECK_TIMEOUT = 2.0
_MAX_REASON = 200


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    duration_ms: float
    error: str | None = None


@dataclass(frozen=True)
class _Registered:
    name: str
    check: Check
    timeout: float


class Readiness:
    """The readiness checks of one process."""

    def __init__(self) -> None:
        self._checks: dict[str, _Registered] = {}

    def add(self, name: str, check: Check, *, timeout: float = DEFAULT_CHECK_TIMEOUT) -> None:
        if name in self._checks:
            raise ValueError(f"a readiness check named {name!r} is already registered")
        self._checks[name] = _Registered(name, check, timeout)

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def run(self) -> list[CheckResult]:
        return list(await asyncio.gather(*(_run_one(c) for c in self._checks.values())))


async def _run_one(registered: _Registered) -> CheckResult:
    started = time.perf_counter()
    error: str | None = None
    try:
        async with asyncio.timeout(registered.timeout):
            await registered.check()
    except TimeoutError:
        error = f"timed out after {registered.timeout:g}s"
    except Exception as e:
        error = (f"{type(e).__name__}: {e}".strip().rstrip(":"))[:_MAX_REASON]
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(registered.name, error is None, elapsed, error)


def readiness_report(results: Sequence[CheckResult]) -> tuple[int, dict[str, Any]]:
    """The status code and body of ``/readyz`` for these results."""
    ready = all(result.ok for result in results)
    checks: dict[str, dict[str, Any]] = {}
    for result in results:
        entry: dict[str, Any] = {"ok": result.ok, "duration_ms": result.duration_ms}
        if result.error is not None:
            entry["error"] = result.error
        checks[result.name] = entry
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
    if not ready:
        body["failed"] = [result.name for result in results if not result.ok]
    return (200 if ready else 503), body


def get_readiness(request: Request) -> Readiness:
    readiness = getattr(request.app.state, "readiness", None)
    return readiness if isinstance(readiness, Readiness) else Readiness()


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process serves HTTP")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: every dependency answers",
        responses={503: {"description": "At least one check failed"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        status_code, body = readiness_report(await get_readiness(request).run())
        return JSONResponse(body, status_code=status_code, headers={"cache-control": "no-store"})

    return router
