"""Rate limits: which quotas a request counts against, the GCRA arithmetic, the headers.

Three quotas, each optional (a limit of 0 turns it off), all shared by every replica through
Redis (``limiter.py`` runs the arithmetic below in one Lua script, atomically):

- **user**: per ``sub`` of a valid token — one user cannot starve the others, whatever
  number of devices or addresses they use;
- **ip**: per client address — covers public routes and requests without a valid token
  (password guessing at ``/auth/``, floods of forged tokens);
- **route**: per route prefix, all callers together — protects one upstream from the sum.

A request is admitted only if *every* quota that applies has room, and then it is counted in
all of them; a refused request is counted in none (so a user refused by the route quota does
not also burn their own).

The arithmetic is the **generic cell rate algorithm** (GCRA): a quota of ``limit`` requests
per ``window`` seconds is a bucket of ``limit`` requests refilled at one per
``window / limit`` seconds, stored as one number per key — the *theoretical arrival time*
(TAT) of the next request. Worked example, limit 3 per 3 s (one request per second, burst 3),
everything at t=0: TATs 1, 2, 3 → three admitted; the fourth would make the TAT 4 > 0 + 3, so
it is refused with ``Retry-After`` 1 s.

Responses carry the quotas per draft-ietf-httpapi-ratelimit-headers (structured fields):
``RateLimit-Policy: "user";q=600;w=60`` and ``RateLimit: "user";r=599;t=1`` where ``r`` is
what is left and ``t`` the seconds until the quota is whole again; a 429 adds ``Retry-After``.

Pure: no I/O, times are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

QuotaName = Literal["user", "ip", "route"]


@dataclass(frozen=True)
class Quota:
    name: QuotaName
    limit: int  # requests ...
    window_seconds: float  # ... per this many seconds

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds <= 0:
            raise ValueError("a quota needs limit >= 1 and window_seconds > 0")

    @property
    def interval(self) -> float:
        """Seconds between two requests at the sustained rate (GCRA's emission interval)."""
        return self.window_seconds / self.limit


@dataclass(frozen=True)
class Limits:
    user: Quota | None = None
    ip: Quota | None = None
    route: Quota | None = None


@dataclass(frozen=True)
class Counted:
    """One quota a request counts against, and the identifier of the bucket."""

    quota: Quota
    identifier: str


def applicable(
    limits: Limits, *, subject: str | None, client_ip: str | None, route: str
) -> list[Counted]:
    """The quotas a request counts against: user only with a valid token, ip when known."""
    counted: list[Counted] = []
    if limits.user is not None and subject is not None:
        counted.append(Counted(limits.user, subject))
    if limits.ip is not None and client_ip is not None:
        counted.append(Counted(limits.ip, client_ip))
    if limits.route is not None:
        counted.append(Counted(limits.route, route))
    return counted


@dataclass(frozen=True)
class Usage:
    """One quota after a decision: ``remaining`` requests, whole again in ``reset`` seconds."""

    quota: Quota
    allowed: bool
    remaining: int
    reset: float
    retry_after: float  # 0 when allowed


@dataclass(frozen=True)
class Step:
    usage: Usage
    new_tat: float  # what to store when the request is admitted


def gcra(tat: float | None, now: float, quota: Quota) -> Step:
    """GCRA for one bucket whose stored TAT is ``tat`` (``None``: empty bucket, full quota)."""
    interval = quota.interval
    tolerance = quota.window_seconds  # a full window's worth of burst: ``limit`` at once
    current = now if tat is None else max(tat, now)
    new_tat = current + interval
    allow_at = new_tat - tolerance
    if now < allow_at - 1e-9:
        remaining = 0
        usage = Usage(quota, False, remaining, current - now, allow_at - now)
        return Step(usage, current)
    remaining = max(0, math.floor((tolerance - (new_tat - now)) / interval + 1e-9))
    return Step(Usage(quota, True, remaining, new_tat - now, 0.0), new_tat)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    usages: tuple[Usage, ...]

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait (``Retry-After``), at least 1 when refused."""
        waits = [u.retry_after for u in self.usages if not u.allowed]
        return max(1, math.ceil(max(waits))) if waits else 0


def decide(tats: Sequence[float | None], now: float, counted: Sequence[Counted]) -> Verdict:
    """All-or-nothing over the applicable quotas (what the Lua script does, step by step)."""
    steps = [gcra(tat, now, c.quota) for tat, c in zip(tats, counted, strict=True)]
    allowed = all(s.usage.allowed for s in steps)
    if allowed:
        return Verdict(True, tuple(s.usage for s in steps))
    # Nothing is counted: report the quotas as they stand, refused ones with their wait.
    usages = tuple(
        s.usage
        if not s.usage.allowed
        else Usage(
            s.usage.quota,
            True,
            s.usage.remaining + 1,
            max(0.0, s.new_tat - now - s.usage.quota.interval),
            0.0,
        )
        for s in steps
    )
    return Verdict(False, usages)


def headers(verdict: Verdict) -> dict[str, str]:
    """``RateLimit-Policy``, ``RateLimit`` and, when refused, ``Retry-After``."""
    if not verdict.usages:
        return {}
    policy = ", ".join(
        f'"{u.quota.name}";q={u.quota.limit};w={_seconds(u.quota.window_seconds)}'
        for u in verdict.usages
    )
    state = ", ".join(
        f'"{u.quota.name}";r={u.remaining};t={_seconds(u.reset)}' for u in verdict.usages
    )
    out = {"ratelimit-policy": policy, "ratelimit": state}
    if not verdict.allowed:
        out["retry-after"] = str(verdict.retry_after)
    return out


def _seconds(value: float) -> int:
    return max(0, math.ceil(value - 1e-9))
