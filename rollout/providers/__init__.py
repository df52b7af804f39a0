"""The release controller's providers: one module per outside system, one Protocol per kind
of action, so the controller depends on what is done, not on who does it.

- :class:`HealthSource` — measurements (our telemetry service's release-health API);
- :class:`FlagRollout` — feature flags (the Unleash Admin API);
- :class:`StoreRollout` — the store's staged rollout (Google Play, App Store Connect);
- :class:`AppConfigPublisher` — what installed apps read (the app-config service).

Every provider is idempotent (converges to a desired state, reports whether it changed
anything) and raises only :class:`ProviderError`, whose message says what failed and what to
check; HTTP client errors never leave the provider modules.
"""

from __future__ import annotations

from typing import Protocol

from mobileplane.rollout.effects import AppConfigState, FlagState, StoreState
from mobileplane.rollout.engine import Measurement, MeasurementFailed
from mobileplane.rollout.providers.targets import AppConfigTarget, StoreTarget


class ProviderError(Exception):
    """An action could not be done (now); the controller retries and reports it."""


class HealthSource(Protocol):
    async def measure(
        self,
        base_url: str,
        project: str,
        release: str,
        *,
        baseline: str | None,
        window: str,
        environment: str | None,
    ) -> Measurement | MeasurementFailed: ...


class FlagRollout(Protocol):
    async def apply(self, flag: FlagState) -> bool: ...


class StoreRollout(Protocol):
    async def apply(
        self, target: StoreTarget, state: StoreState, credentials: dict[str, str]
    ) -> bool: ...


class AppConfigPublisher(Protocol):
    async def apply(
        self, base_url: str, target: AppConfigTarget, state: AppConfigState, reason: str
    ) -> bool: ...


__all__ = [
    "AppConfigPublisher",
    "AppConfigTarget",
    "FlagRollout",
    "HealthSource",
    "ProviderError",
    "StoreRollout",
    "StoreTarget",
]
