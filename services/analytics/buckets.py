"""Time buckets of the counts API (pure): which hours or days cover a range, and the series
with a zero for every empty bucket. Buckets are UTC hours or UTC days, half-open
``[start, start + interval)``; the range is ``[start, end)``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Interval = Literal["hour", "day"]
STEP: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
#: Most buckets one query answers (a year of days, or three months of hours).
MAX_BUCKETS = 2400


class RangeError(ValueError):
    """A range the counts API refuses; the text says why."""


@dataclass(frozen=True)
class Point:
    start: datetime
    events: int
    users: int


def bucket_start(at: datetime, interval: Interval) -> datetime:
    """The start of the bucket holding ``at`` (an aware datetime; naive means UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    at = at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if interval == "day" else at


def buckets(start: datetime, end: datetime, interval: Interval) -> list[datetime]:
    """Every bucket start overlapping ``[start, end)``, oldest first."""
    if end <= start:
        raise RangeError("end must be after start")
    step = STEP[interval]
    try:
        first = bucket_start(start, interval)
        count = -(-(end.astimezone(UTC) - first) // step)
        if count > MAX_BUCKETS:
            raise RangeError(f"the range spans {count} {interval}s; at most {MAX_BUCKETS} at once")
        return [first + i * step for i in range(count)]
    except OverflowError:
        raise RangeError("the range is out of the representable dates") from None


def series(
    start: datetime,
    end: datetime,
    interval: Interval,
    counts: Mapping[datetime, tuple[int, int]],
) -> list[Point]:
    """One point per bucket, ``(events, users)`` from ``counts`` (keyed by bucket start; any
    key is normalised to its bucket), zero where there is none."""
    normalised: dict[datetime, tuple[int, int]] = {}
    for at, value in counts.items():
        key = bucket_start(at, interval)
        old = normalised.get(key, (0, 0))
        normalised[key] = (old[0] + value[0], old[1] + value[1])
    return [Point(b, *normalised.get(b, (0, 0))) for b in buckets(start, end, interval)]
