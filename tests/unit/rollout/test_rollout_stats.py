"""Wilson intervals and the difference of two proportions against known values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobileplane.rollout.stats import difference_interval, wilson, z_for


def test_z() -> None:
    assert z_for(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_for(0.99) == pytest.approx(2.575829, abs=1e-6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        z_for(1.0)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # Newcombe (1998), table I, Wilson score without continuity correction.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_published_values(x: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(x, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


def test_wilson_without_data_says_nothing() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(5, 3)


def test_difference_matches_newcombe() -> None:
    # Newcombe (1998b), example (a): 56/70 - 48/80, method 10: [0.0524, 0.3339].
    lo, hi = difference_interval(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=1e-4)
    assert hi == pytest.approx(0.3339, abs=1e-4)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_estimate_is_inside_its_interval(xn: tuple[int, int]) -> None:
    x, n = xn
    lo, hi = wilson(x, n)
    assert 0 <= lo <= x / n <= hi <= 1


@given(st.integers(10, 5000), st.floats(0.5, 0.99))
def test_more_confidence_is_wider(n: int, confidence: float) -> None:
    lo, hi = wilson(n // 3, n, confidence)
    lo2, hi2 = wilson(n // 3, n, min(0.999, confidence + 0.005))
    assert lo2 <= lo and hi2 >= hi
