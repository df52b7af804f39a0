"""A circuit breaker per upstream: stop sending requests to a service that keeps failing.

States (the classic machine, with the clock injected)::

    closed --N consecutive failures--> open --cool-down elapsed--> half-open
      ^                                 ^                              |
      |                                 +------- probe fails ----------+
      +------------------------------- probe succeeds -----------------+

- **closed**: requests flow; each failure (connection refused, timeout, 502/503/504 from the
  upstream) adds to a run of consecutive failures, any success resets it.
- **open**: requests are refused at once (503 with ``Retry-After`` = the cool-down left),
  which sheds load from a struggling service and answers clients fast instead of at timeout.
- **half-open**: after the cool-down, up to ``half_open_probes`` requests are let through;
  the first success closes the circuit, a failure opens it again for a new cool-down.

Each replica keeps its own breakers: a replica that cannot reach an upstream (its own network
path) should not stop the others. Pure: the state is a value, transitions are functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass(frozen=True)
class BreakerConfig:
    #: Consecutive failures that open the circuit. Five rides out a pod restart's refused
    #: connections (the retries count too) without hiding a service that is really down.
    failure_threshold: int = 5
    #: Seconds the circuit stays open before probing: long enough for a pod to restart.
    cooldown_seconds: float = 10.0
    #: Requests let through at once while half-open.
    half_open_probes: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_probes < 1 or self.cooldown_seconds < 0:
            raise ValueError("failure_threshold and half_open_probes >= 1, cooldown >= 0")


@dataclass(frozen=True)
class Breaker:
    state: State = "closed"
    failures: int = 0  # consecutive, while closed
    opened_at: float = 0.0
    probes: int = 0  # in flight, while half-open


@dataclass(frozen=True)
class Admission:
    allowed: bool
    breaker: Breaker
    retry_after: int = 0  # seconds, when refused


def admit(breaker: Breaker, config: BreakerConfig, now: float) -> Admission:
    """Whether a request may go to the upstream now, and the breaker after deciding."""
    if breaker.state == "open":
        waited = now - breaker.opened_at
        if waited < config.cooldown_seconds:
            return Admission(False, breaker, max(1, math.ceil(config.cooldown_seconds - waited)))
        breaker = Breaker(state="half-open", opened_at=breaker.opened_at)
    if breaker.state == "half-open":
        if breaker.probes >= config.half_open_probes:
            return Admission(False, breaker, 1)
        return Admission(True, replace(breaker, probes=breaker.probes + 1))
    return Admission(True, breaker)


def record_success(breaker: Breaker) -> Breaker:
    """After an upstream answered (anything but a failure): closed, failures forgotten."""
    return Breaker()


def record_failure(breaker: Breaker, config: BreakerConfig, now: float) -> Breaker:
    """After a failed attempt: count it, and open the circuit when the threshold is reached."""
    if breaker.state == "half-open":
        return Breaker(state="open", opened_at=now)
    if breaker.state == "open":
        return breaker  # a request admitted before it opened; the cool-down keeps running
    failures = breaker.failures + 1
    if failures >= config.failure_threshold:
        return Breaker(state="open", opened_at=now)
    return replace(breaker, failures=failures)


def release_probe(breaker: Breaker) -> Breaker:
    """A half-open probe ended without a verdict (the client went away): free its slot."""
    if breaker.state == "half-open" and breaker.probes > 0:
        return replace(breaker, probes=breaker.probes - 1)
    return breaker
