"""Rate-limit decisions (pure): which data categories of an envelope to refuse, and how to say
so in the form Sentry SDKs obey.

Limits are per minute, in fixed windows (``WINDOW_SECONDS``): a DSN key's limit covers events
(errors and transactions, Sentry's "key" scope); a project's per-category limits cover
``error``, ``transaction``, ``session`` and ``span`` separately. The caller counts an
envelope's items into the current window (Redis) and asks :func:`decide` which categories are
over. Refused categories are announced in ``X-Sentry-Rate-Limits``
(``<seconds>:<category>;<category>:<scope>:<reason>``, comma-separated), which every Sentry
SDK parses to stop sending those categories until the window ends; the response is 429 with
``Retry-After`` when nothing in the envelope was accepted, 200 otherwise (Sentry's relay does
the same). ``client_report`` items (the SDK telling us what it dropped) are never limited.

Also here: server-side transaction sampling (``TELEMETRY_TRACES_SAMPLE_RATE``), decided by the
trace id so every transaction of one trace is kept or dropped together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

WINDOW_SECONDS = 60
CATEGORIES = ("error", "transaction", "session", "span")
EVENT_CATEGORIES = frozenset({"error", "transaction"})

#: Envelope item type -> data category (Sentry's names); absent: never rate limited.
ITEM_CATEGORY = {
    "event": "error",
    "transaction": "transaction",
    "session": "session",
    "sessions": "session",
}


@dataclass(frozen=True)
class Limits:
    key_per_minute: int | None = None  # events through one DSN key
    category_per_minute: Mapping[str, int] | None = None  # per project and category


@dataclass(frozen=True)
class Decision:
    limited: frozenset[str]
    retry_after: int
    header: str | None

    def allows(self, category: str | None) -> bool:
        return category is None or category not in self.limited


def window(now: float) -> tuple[int, int]:
    """The current window's number and the seconds left in it (at least 1)."""
    index = int(now // WINDOW_SECONDS)
    left = (index + 1) * WINDOW_SECONDS - now
    return index, max(1, int(-(-left // 1)))


def requested(item_types: list[str]) -> dict[str, int]:
    """How many items of each limited category an envelope holds."""
    counts: dict[str, int] = {}
    for item_type in item_types:
        category = ITEM_CATEGORY.get(item_type)
        if category is not None:
            counts[category] = counts.get(category, 0) + 1
    return counts


def decide(
    limits: Limits,
    *,
    counted: Mapping[str, int],
    key_counted: int,
    now: float,
) -> Decision:
    """``counted``: each category's count in this window *including* this envelope;
    ``key_counted``: the key's events in this window including this envelope."""
    _, left = window(now)
    parts: list[str] = []
    limited: set[str] = set()
    per_category = limits.category_per_minute or {}
    over = sorted(c for c, n in counted.items() if c in per_category and n > per_category[c])
    if over:
        limited.update(over)
        parts.append(f"{left}:{';'.join(over)}:project:project_quota")
    if limits.key_per_minute is not None and key_counted > limits.key_per_minute:
        events = sorted(EVENT_CATEGORIES)
        limited.update(events)
        parts.append(f"{left}:{';'.join(events)}:key:key_quota")
    return Decision(frozenset(limited), left, ", ".join(parts) or None)


def keep_trace(trace_id: str, sample_rate: float) -> bool:
    """Whether a trace is kept at ``sample_rate`` (0..1), the same answer for every span and
    transaction of it and in every process."""
    if sample_rate >= 1:
        return True
    if sample_rate <= 0:
        return False
    digest = hashlib.sha256(trace_id.lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < sample_rate
