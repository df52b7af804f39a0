"""Release health from our telemetry service (``GET …/releases/{release}/health``), mapped to
the engine's counts.

A failed call — refused connection, timeout, a non-200 answer, a body that is not the
documented shape — is returned as a :class:`MeasurementFailed` with the reason, never raised:
the engine counts consecutive failures and applies the failure policy at its limit, so a
flaky backend never crashes the controller and a broken one stops the rollout with a stated
reason. The controller calls the service directly (in a cluster, the platform's
``<platform>-telemetry`` Service) with the identity headers the gateway would forward: subject
``release-controller``, scope ``telemetry:read``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from mobileplane.rollout.engine import Counts, Measurement, MeasurementFailed
from mobileplane.services.kit.identity_contract import Identity, identity_headers

READ_SCOPE = "telemetry:read"
SUBJECT = "release-controller"


def counts(block: Mapping[str, Any]) -> Counts:
    """The engine's counts from one release block of the health answer.

    Sessions that ended *errored* count as errored; crashed ones as crashed (abnormal ones,
    as in Sentry, lower neither).
    """
    sessions = block["sessions"]
    users = block["users"]
    return Counts(
        sessions=int(sessions["total"]),
        crashed_sessions=int(sessions["crashed"]),
        errored_sessions=int(sessions["errored"]),
        users=int(users["total"]),
        crashed_users=int(users["crashed"]),
    )


def measurement_from(body: Mapping[str, Any]) -> Measurement:
    """The health answer as a measurement; raises ``KeyError``/``TypeError``/``ValueError``
    on a body that is not the documented shape."""
    baseline = body.get("baseline")
    return Measurement(counts(body["release"]), counts(baseline) if baseline else None)


class TelemetryHealth:
    """:class:`~mobileplane.rollout.providers.HealthSource` over HTTP."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.headers = identity_headers(Identity(SUBJECT, frozenset({READ_SCOPE})))

    async def measure(
        self,
        base_url: str,
        project: str,
        release: str,
        *,
        baseline: str | None,
        window: str,
        environment: str | None,
    ) -> Measurement | MeasurementFailed:
        url = (
            f"{base_url.rstrip('/')}/telemetry/projects/{quote(project, safe='')}"
            f"/releases/{quote(release, safe='')}/health"
        )
        params = {"window": window}
        if baseline:
            params["baseline"] = baseline
        if environment:
            params["environment"] = environment
        try:
            response = await self.http.get(url, params=params, headers=self.headers)
        except httpx.HTTPError as e:
            return MeasurementFailed(f"telemetry at {base_url} unreachable: {e!r}")
        if response.status_code != 200:
            return MeasurementFailed(
                f"telemetry answered {response.status_code} for {project}/{release}: "
                f"{_error_message(response)}"
            )
        try:
            return measurement_from(response.json())
        except (KeyError, TypeError, ValueError) as e:
            return MeasurementFailed(f"telemetry's answer is not release health: {e!r}")


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or response.text[:200])
    except ValueError:
        return response.text[:200]
