"""The statistics release gates rest on: Wilson score intervals and a two-proportion bound.

A crash-free rate measured on a few hundred sessions is noisy; a gate that compares the point
estimate with its threshold flaps between pass and fail on chance alone. Gates here compare
*confidence bounds* instead: a release fails a gate only when even the optimistic end of the
interval misses the threshold, passes only when even the pessimistic end meets it, and
otherwise waits for more data.

- :func:`wilson` — the Wilson score interval for a binomial proportion (well behaved near 0
  and 1, where crash rates live; the normal approximation is not).
- :func:`difference_interval` — an interval for the difference of two proportions (the
  candidate's crash rate minus the baseline's), by Newcombe's method 10 (hybrid Wilson
  score), which keeps its coverage for small counts and rates near 0.

Pure, stdlib only (``statistics.NormalDist`` for quantiles).
"""

from __future__ import annotations

import math
from statistics import NormalDist


def z_for(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (0.95 → 1.96)."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n``; ``(0, 1)`` when ``n`` is 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError("need 0 <= successes <= n")
    if n == 0:
        return (0.0, 1.0)
    z = z_for(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # Exact at the edges (rounding would otherwise put 0/n a hair above its own lower bound).
    low = 0.0 if successes == 0 else max(0.0, centre - margin)
    high = 1.0 if successes == n else min(1.0, centre + margin)
    return (low, high)


def difference_interval(
    x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float]:
    """An interval for ``x1/n1 - x2/n2`` (Newcombe's hybrid score method)."""
    if n1 <= 0 or n2 <= 0:
        return (-1.0, 1.0)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, confidence)
    l2, u2 = wilson(x2, n2, confidence)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (max(-1.0, lower), min(1.0, upper))
