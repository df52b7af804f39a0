"""Benchmarks as ratios: a candidate against a reference, interleaved, on the same machine.

Absolute times on a shared 2-core machine swing by tens of percent from one minute to the
next; a ratio of two things measured in alternation within the same run does not. Each round
times the reference once and the candidate once (order alternating), and the result is the
median of the per-round ratios with its spread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RatioResult:
    name: str
    rounds: int
    reference_median_s: float
    candidate_median_s: float
    ratio_median: float
    ratio_min: float
    ratio_max: float

    def line(self) -> str:
        return (
            f"{self.name}: candidate/reference = {self.ratio_median:.3f} "
            f"(min {self.ratio_min:.3f}, max {self.ratio_max:.3f}, {self.rounds} rounds; "
            f"medians {self.candidate_median_s * 1000:.1f} ms vs "
            f"{self.reference_median_s * 1000:.1f} ms)"
        )


def summarize(name: str, reference: list[float], candidate: list[float]) -> RatioResult:
    """Pure: per-round ratios of paired timings, summarised."""
    if len(reference) != len(candidate) or not reference:
        raise ValueError("need the same, non-zero number of reference and candidate timings")
    ratios = [c / r for r, c in zip(reference, candidate, strict=True)]
    return RatioResult(
        name=name,
        rounds=len(ratios),
        reference_median_s=statistics.median(reference),
        candidate_median_s=statistics.median(candidate),
        ratio_median=statistics.median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
    )


def compare(
    name: str,
    reference: Callable[[], object],
    candidate: Callable[[], object],
    rounds: int = 7,
    warmup: int = 1,
) -> RatioResult:
    for _ in range(warmup):
        reference()
        candidate()
    ref_t: list[float] = []
    cand_t: list[float] = []
    for i in range(rounds):
        pair = [(reference, ref_t), (candidate, cand_t)]
        if i % 2:
            pair.reverse()
        for fn, sink in pair:
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    return summarize(name, ref_t, cand_t)
