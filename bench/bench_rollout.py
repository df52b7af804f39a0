"""How fast the release controller decides: ``decide`` (gates, bounds, baseline comparison,
the step machine) against the bare arithmetic it rests on (two Wilson intervals), per call.

Run with ``.venv/bin/python bench/bench_rollout.py``; needs nothing running.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness import compare

from mobileplane.rollout.engine import (
    Counts,
    FailurePolicy,
    Gates,
    Measurement,
    Phase,
    Progress,
    Step,
    StepKind,
    decide,
)
from mobileplane.rollout.stats import wilson

CALLS = 20_000


def main() -> None:
    steps = [Step(StepKind.SET_WEIGHT, weight=5), Step(StepKind.ANALYSIS, duration=timedelta(0))]
    gates = Gates(max_error_rate=0.05, max_degradation=0.002)
    progress = Progress(Phase.PROGRESSING, 1, 5, datetime(2026, 11, 25, tzinfo=UTC), 0)
    now = datetime(2026, 11, 25, 1, tzinfo=UTC)
    measurement = Measurement(Counts(10_000, 5, 100, 3_000, 4), Counts(10_000, 6, 90, 3_000, 5))

    def candidate() -> None:
        for _ in range(CALLS):
            decide(steps, gates, FailurePolicy.HALT, progress, now, measurement)

    def reference() -> None:
        for _ in range(CALLS):
            wilson(9_995, 10_000)
            wilson(2_996, 3_000)

    result = compare(
        f"rollout decide() / two Wilson intervals, {CALLS} calls", reference, candidate
    )
    print(result.line())
    print(f"  {CALLS / result.candidate_median_s:,.0f} decisions/s")


if __name__ == "__main__":
    main()
