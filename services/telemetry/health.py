"""Release health arithmetic (pure): crash-free rates, their uncertainty, adoption, targets.

Inputs are counts for one release over one window (sessions by outcome, users, and the whole
project's sessions and users in the same window, for adoption); outputs are the numbers the
dashboards and the release controller read. Following Sentry:

- crash-free sessions = 1 − crashed / sessions; crash-free users = 1 − users with at least one
  crashed session / users. Abnormal sessions (OS kills, ANRs) are reported on their own and do
  not lower the crash-free rate, as in Sentry;
- adoption = the release's share of the project's sessions (and users) in the window.

Every rate comes with its sample size ``n`` and a Wilson score interval: a 99.9 % rate from
40 sessions and one from 40,000 are not the same evidence, and the release controller must
know which it has. Wilson (not the normal approximation) because rates here sit near 1,
where the normal interval overshoots 100 % and collapses to a point at 0 failures.

Worked example: 199 crash-free sessions out of 200, z = 1.96: p̂ = 0.995, interval
≈ [0.97223, 0.99912] — wide, because one crash in 200 says little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

#: z for a two-sided 95 % interval.
Z95 = 1.959963984540054

Verdict = Literal["healthy", "warning", "critical", "no_data"]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Rate:
    """A proportion with its evidence: ``rate`` is ``None`` when ``n`` is 0."""

    rate: float | None
    n: int
    successes: int
    interval: Interval | None


def wilson(successes: int, n: int, z: float = Z95) -> Interval | None:
    """The Wilson score interval of ``successes`` out of ``n`` (``None`` when ``n`` is 0)."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; floating point would miss it by an ulp.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high)


def proportion(successes: int, n: int) -> Rate:
    return Rate(
        rate=None if n == 0 else successes / n,
        n=n,
        successes=successes,
        interval=wilson(successes, n),
    )


@dataclass(frozen=True)
class SessionCounts:
    """One release's sessions in a window, each in exactly one outcome, and its users."""

    healthy: int = 0
    errored: int = 0
    abnormal: int = 0
    crashed: int = 0
    users: int = 0
    crashed_users: int = 0

    @property
    def total(self) -> int:
        return self.healthy + self.errored + self.abnormal + self.crashed

    def __add__(self, other: SessionCounts) -> SessionCounts:
        return SessionCounts(
            self.healthy + other.healthy,
            self.errored + other.errored,
            self.abnormal + other.abnormal,
            self.crashed + other.crashed,
            self.users + other.users,
            self.crashed_users + other.crashed_users,
        )


@dataclass(frozen=True)
class Target:
    """A stability target in percent: healthy at or above ``target``, critical below
    ``critical`` (the operator's ``StabilityTarget``)."""

    target: float
    critical: float

    def __post_init__(self) -> None:
        if not 0 <= self.critical <= self.target <= 100:
            raise ValueError("need 0 <= critical <= target <= 100 (percent)")


def verdict(rate: Rate, target: Target) -> Verdict:
    if rate.rate is None:
        return "no_data"
    percent = rate.rate * 100
    if percent >= target.target:
        return "healthy"
    if percent < target.critical:
        return "critical"
    return "warning"


@dataclass(frozen=True)
class ReleaseHealth:
    sessions: int
    healthy: int
    errored: int
    abnormal: int
    crashed: int
    users: int
    crashed_users: int
    crash_free_sessions: Rate
    crash_free_users: Rate
    adoption_sessions: float | None
    adoption_users: float | None
    sessions_verdict: Verdict
    users_verdict: Verdict


def release_health(
    counts: SessionCounts,
    *,
    project_sessions: int,
    project_users: int,
    sessions_target: Target,
    users_target: Target,
) -> ReleaseHealth:
    if counts.crashed_users > counts.users:
        raise ValueError("crashed users cannot exceed users")
    sessions = proportion(counts.total - counts.crashed, counts.total)
    users = proportion(counts.users - counts.crashed_users, counts.users)
    return ReleaseHealth(
        sessions=counts.total,
        healthy=counts.healthy,
        errored=counts.errored,
        abnormal=counts.abnormal,
        crashed=counts.crashed,
        users=counts.users,
        crashed_users=counts.crashed_users,
        crash_free_sessions=sessions,
        crash_free_users=users,
        adoption_sessions=_share(counts.total, project_sessions),
        adoption_users=_share(counts.users, project_users),
        sessions_verdict=verdict(sessions, sessions_target),
        users_verdict=verdict(users, users_target),
    )


def _share(part: int, whole: int) -> float | None:
    if whole <= 0:
        return None
    return min(1.0, part / whole)


#: The longest window the API answers for; older data is past the default retention anyway.
MAX_WINDOW_DAYS = 90
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> int:
    """``"90m"``, ``"24h"``, ``"7d"`` -> seconds; raises ``ValueError`` saying what is allowed."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:]) if value else None
    number = value[:-1]
    if unit is None or not (number.isascii() and number.isdigit()) or int(number) <= 0:
        raise ValueError("window must be a positive number followed by m, h or d (e.g. 24h)")
    seconds = int(number) * unit
    if seconds > MAX_WINDOW_DAYS * 86400:
        raise ValueError(f"window must be at most {MAX_WINDOW_DAYS}d")
    return seconds


def rate_json(rate: Rate, verdict_: Verdict) -> dict[str, object]:
    return {
        "rate": rate.rate,
        "low": None if rate.interval is None else rate.interval.low,
        "high": None if rate.interval is None else rate.interval.high,
        "n": rate.n,
        "verdict": verdict_,
    }


def health_json(release: str, health: ReleaseHealth) -> dict[str, object]:
    """The JSON block of one release (documented in docs/telemetry.md)."""
    return {
        "release": release,
        "sessions": {
            "total": health.sessions,
            "healthy": health.healthy,
            "errored": health.errored,
            "abnormal": health.abnormal,
            "crashed": health.crashed,
        },
        "users": {"total": health.users, "crashed": health.crashed_users},
        "crash_free_sessions": rate_json(health.crash_free_sessions, health.sessions_verdict),
        "crash_free_users": rate_json(health.crash_free_users, health.users_verdict),
        "adoption": {"sessions": health.adoption_sessions, "users": health.adoption_users},
    }
