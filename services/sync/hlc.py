"""Hybrid logical clocks: timestamps that order writes across devices with skewed clocks.

Per-field last-writer-wins needs to know which of two writes came last. Wall clocks of phones
are wrong by minutes and jump; pure logical counters forget real time. A hybrid logical clock
(Kulkarni et al., 2014) is both: the physical part follows the largest wall time seen, and a
counter breaks ties and orders events within one millisecond, so a clock never goes backwards
and an event always sorts after every event its node has seen.

A timestamp is encoded as a fixed-width string, ``<millis:15 digits>-<counter:5 digits>-<node>``,
so that string order is timestamp order: clients in any language compare them as strings.
Everything here is pure: the wall clock is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Counter values per millisecond before the clock must refuse (a runaway sender).
MAX_COUNTER = 99_999
#: Largest physical time a timestamp may carry (15 digits of milliseconds: year 33658).
MAX_MILLIS = 10**15 - 1
#: How far ahead of the server's clock a client's timestamp may be before it is refused:
#: a phone set to next year must not win every conflict for a year.
DEFAULT_MAX_DRIFT_MS = 5 * 60 * 1000

_NODE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ENCODED = re.compile(r"(\d{15})-(\d{5})-([A-Za-z0-9._:-]{1,64})")


class ClockError(ValueError):
    """A timestamp is malformed, or too far ahead of the receiver's clock."""


@dataclass(frozen=True, order=True)
class Timestamp:
    """One point of a hybrid logical clock; ordered by (millis, counter, node)."""

    millis: int
    counter: int
    node: str

    def __post_init__(self) -> None:
        if not 0 <= self.millis <= MAX_MILLIS:
            raise ClockError(f"physical time {self.millis} is out of range")
        if not 0 <= self.counter <= MAX_COUNTER:
            raise ClockError(f"counter {self.counter} is out of range")
        if not _NODE.fullmatch(self.node):
            raise ClockError(f"node id {self.node!r} must match {_NODE.pattern}")

    def encode(self) -> str:
        return f"{self.millis:015d}-{self.counter:05d}-{self.node}"

    @classmethod
    def decode(cls, text: str) -> Timestamp:
        match = _ENCODED.fullmatch(text)
        if match is None:
            raise ClockError(
                f"{text!r} is not a hybrid logical clock timestamp "
                "(expected <15-digit millis>-<5-digit counter>-<node id>)"
            )
        return cls(int(match[1]), int(match[2]), match[3])


def tick(last: Timestamp | None, wall_millis: int, node: str) -> Timestamp:
    """The timestamp of a local event at wall time ``wall_millis``, after ``last``."""
    if last is None or wall_millis > last.millis:
        return Timestamp(wall_millis, 0, node)
    if last.counter >= MAX_COUNTER:
        raise ClockError("the clock's counter overflowed within one millisecond")
    return Timestamp(last.millis, last.counter + 1, node)


def receive(
    last: Timestamp | None,
    remote: Timestamp,
    wall_millis: int,
    node: str,
    *,
    max_drift_ms: int = DEFAULT_MAX_DRIFT_MS,
) -> Timestamp:
    """The local clock after receiving ``remote``: later than both, and than the wall time.

    Refuses (:class:`ClockError`) a remote timestamp more than ``max_drift_ms`` ahead of the
    local wall clock.
    """
    if remote.millis - wall_millis > max_drift_ms:
        raise ClockError(
            f"timestamp {remote.encode()} is {remote.millis - wall_millis} ms ahead of the "
            f"server's clock (at most {max_drift_ms} ms allowed): check the device's clock"
        )
    last_millis = last.millis if last else -1
    millis = max(last_millis, remote.millis, wall_millis)
    if millis == last_millis and millis == remote.millis:
        counter = max(last.counter if last else 0, remote.counter) + 1
    elif millis == last_millis:
        counter = (last.counter if last else 0) + 1
    elif millis == remote.millis:
        counter = remote.counter + 1
    else:
        counter = 0
    if counter > MAX_COUNTER:
        raise ClockError("the clock's counter overflowed within one millisecond")
    return Timestamp(millis, counter, node)
