"""When the gateway tries an upstream again, and what counts as the upstream failing.

A request is retried only if all of these hold:

1. its method is one the route retries (the operator lists only idempotent methods, RFC 9110
   §9.2.2: repeating them has the effect of sending them once);
2. the failure is one the route retries on: ``connect-failure`` (nothing reached the
   upstream: connection refused or reset before the request was sent) or the upstream
   answered 502/503/504. A *timeout* is never retried: the upstream may still be working on
   the request, and a retry would double the load exactly when it is overloaded;
3. the body can be sent again: no body, or a body of at most ``buffer_limit`` bytes with a
   ``Content-Length``, which the gateway reads whole before the first attempt. Larger and
   chunked bodies stream straight through (never held in memory) and so are sent once;
4. attempts remain (``retries.max`` retries after the first attempt) and the circuit breaker
   still admits the request.

For the breaker, a failure is a connect failure, a timeout, or a 502/503/504 answer: the
signs of an upstream that cannot serve. Every other answer, 500 included, is the upstream
working (a bug in one request is not an outage).

Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mobileplane.services.gateway.routes import Route

#: ``protocol-error``: the connection broke after the request may have been sent.
Failure = Literal["connect-failure", "timeout", "protocol-error", "502", "503", "504"]
BodyKind = Literal["none", "buffer", "stream"]

#: Upstream statuses that mean "cannot serve now" (bad gateway, unavailable, timeout).
FAILURE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class BodyPlan:
    kind: BodyKind
    replayable: bool


def body_plan(
    route: Route, method: str, content_length: int | None, chunked: bool, buffer_limit: int
) -> BodyPlan:
    """How to send the request body: not at all, buffered (replayable) or streamed (once)."""
    if not chunked and (content_length is None or content_length == 0):
        return BodyPlan("none", replayable=True)
    if (
        route.retries_method(method)
        and not chunked
        and content_length is not None
        and content_length <= buffer_limit
    ):
        return BodyPlan("buffer", replayable=True)
    return BodyPlan("stream", replayable=False)


def failure_of(status: int) -> Failure | None:
    """The failure an upstream status stands for, if any."""
    if status in FAILURE_STATUSES:
        return "502" if status == 502 else "503" if status == 503 else "504"
    return None


def should_retry(
    route: Route, method: str, failure: Failure, attempts_made: int, replayable: bool
) -> bool:
    """Whether to try again after ``attempts_made`` attempts ended in ``failure``."""
    if (
        failure in ("timeout", "protocol-error")
        or not replayable
        or not route.retries_method(method)
    ):
        return False
    if failure not in route.retries.on:
        return False
    return attempts_made <= route.retries.max
