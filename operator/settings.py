"""The operator's settings, read from the environment once at start-up.

Every tunable has a reason next to it. The Helm chart sets these variables one to one from
its values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class OperatorSettings:
    #: How often every MobilePlatform is reconciled even without events: the safety net for a
    #: missed watch event. Drift of children is also caught at once by their watch events.
    resync_seconds: float
    #: Backoff after a transient failure (database or S3 unreachable): long enough not to
    #: hammer a struggling server, short enough that recovery shows within a minute.
    retry_seconds: float
    #: Backoff after a refusal (bad credentials, missing privilege): it needs a human, so
    #: retry rarely; a change to the spec or the Secret is picked up by its own event.
    refused_retry_seconds: float
    #: Watch timeouts: without them a watch can silently stop delivering events
    #: (nolar/kopf#585, #957, #1120).
    watch_server_timeout: float
    watch_client_timeout: float
    #: kopf peering: only one operator replica is active; a paused replica waits.
    peering_name: str
    peering_priority: int
    #: How long a replica's peering record counts as alive without a refresh: the time a
    #: standby waits before it takes over from a replica that died without saying goodbye.
    peering_lifetime: int
    standalone: bool
    #: The operator's own namespace (the chart sets it from the pod's): the release controller
    #: runs there, and platforms' NetworkPolicies admit it.
    namespace: str

    @classmethod
    def from_env(cls) -> OperatorSettings:
        return cls(
            resync_seconds=_float("MOBILEPLANE_OPERATOR_RESYNC_SECONDS", 60.0),
            retry_seconds=_float("MOBILEPLANE_OPERATOR_RETRY_SECONDS", 15.0),
            refused_retry_seconds=_float("MOBILEPLANE_OPERATOR_REFUSED_RETRY_SECONDS", 300.0),
            watch_server_timeout=_float("MOBILEPLANE_OPERATOR_WATCH_SERVER_TIMEOUT", 300.0),
            watch_client_timeout=_float("MOBILEPLANE_OPERATOR_WATCH_CLIENT_TIMEOUT", 301.0),
            peering_name=os.environ.get("MOBILEPLANE_OPERATOR_PEERING", "mobileplane-operator"),
            peering_priority=int(os.environ.get("MOBILEPLANE_OPERATOR_PRIORITY", "0")),
            peering_lifetime=int(os.environ.get("MOBILEPLANE_OPERATOR_PEERING_LIFETIME", "60")),
            standalone=os.environ.get("MOBILEPLANE_OPERATOR_STANDALONE", "").lower()
            in ("1", "true", "yes"),
            namespace=os.environ.get("MOBILEPLANE_OPERATOR_NAMESPACE", "mobileplane-system"),
        )
