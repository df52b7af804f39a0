"""The device's hybrid logical clock: it stamps every local write (docs/sync-protocol.md §3).

The same algorithm as the server's (``<15-digit millis>-<5-digit counter>-<node>``, compared
as strings): never goes backwards, even when the phone's clock does.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    def __init__(
        self, node: str, last: str | None = None, wall_ms: Callable[[], int] | None = None
    ) -> None:
        self.node = node
        self._wall = wall_ms or (lambda: int(time.time() * 1000))
        self._millis, self._counter = 0, -1
        if last:
            millis, counter, _ = last.split("-", 2)
            self._millis, self._counter = int(millis), int(counter)

    def now(self) -> str:
        wall = self._wall()
        if wall > self._millis:
            self._millis, self._counter = wall, 0
        else:
            self._counter += 1
        return f"{self._millis:015d}-{self._counter:05d}-{self.node}"
