"""The benchmark harness's summary maths (bench/harness.py)."""

from __future__ import annotations

import pytest
from harness import compare, summarize


@pytest.mark.parametrize(
    ("reference", "candidate", "median", "low", "high"),
    [
        pytest.param([1.0], [2.0], 2.0, 2.0, 2.0, id="one-round"),
        pytest.param([1.0, 2.0, 4.0], [0.5, 1.0, 4.0], 0.5, 0.5, 1.0, id="paired-not-pooled"),
        pytest.param([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0], 1.25, 0.5, 2.0, id="even-count"),
    ],
)
def test_summarize_uses_per_round_ratios(
    reference: list[float], candidate: list[float], median: float, low: float, high: float
) -> None:
    r = summarize("x", reference, candidate)
    assert (r.ratio_median, r.ratio_min, r.ratio_max) == (median, low, high)
    assert r.rounds == len(reference)


@pytest.mark.parametrize(
    ("reference", "candidate"),
    [pytest.param([], [], id="empty"), pytest.param([1.0], [1.0, 2.0], id="unpaired")],
)
def test_summarize_refuses_unpaired_input(reference: list[float], candidate: list[float]) -> None:
    with pytest.raises(ValueError, match="same, non-zero number"):
        summarize("x", reference, candidate)


def test_compare_alternates_and_counts_calls() -> None:
    calls: list[str] = []
    r = compare("x", lambda: calls.append("r"), lambda: calls.append("c"), rounds=4, warmup=1)
    assert r.rounds == 4
    assert calls == ["r", "c", "r", "c", "c", "r", "r", "c", "c", "r"]
