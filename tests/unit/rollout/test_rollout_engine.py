"""The decision engine: worked examples, step by step, and a labelled suite of simulated
releases whose verdicts are known."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from mobileplane.rollout.engine import (
    Analysis,
    Control,
    Counts,
    FailurePolicy,
    Gates,
    Measurement,
    MeasurementFailed,
    Phase,
    Progress,
    Step,
    StepKind,
    Verdict,
    analyse,
    decide,
)

T0 = datetime(2026, 11, 25, 9, tzinfo=UTC)
MIN = timedelta(minutes=1)
STEPS = [
    Step(StepKind.SET_WEIGHT, weight=5),
    Step(StepKind.ANALYSIS, duration=10 * MIN),
    Step(StepKind.SET_WEIGHT, weight=50),
    Step(StepKind.PAUSE, duration=30 * MIN),
    Step(StepKind.APPROVAL),
    Step(StepKind.SET_WEIGHT, weight=100),
]
GATES = Gates(
    min_crash_free_sessions=0.995,
    min_crash_free_users=0.99,
    min_sessions=100,
    min_users=50,
    max_error_rate=0.05,
    max_degradation=0.002,
)
HEALTHY = Measurement(Counts(10_000, 5, 100, 3_000, 4))
CRASHING = Measurement(Counts(10_000, 400, 100, 3_000, 300))


def at(step: int, weight: int, since: datetime = T0, phase: Phase = Phase.PROGRESSING) -> Progress:
    return Progress(phase, step, weight, since, 0)


def test_a_pending_release_starts_at_its_first_weight() -> None:
    d = decide(STEPS, GATES, FailurePolicy.HALT, Progress(), T0, None)
    assert (d.action, d.progress.step, d.progress.weight) == ("advance", 1, 5)
    assert d.progress.phase is Phase.PROGRESSING


def test_an_analysis_waits_for_its_window_then_advances_on_pass() -> None:
    waiting = decide(STEPS, GATES, FailurePolicy.HALT, at(1, 5), T0 + 5 * MIN, HEALTHY)
    assert waiting.action == "wait" and waiting.requeue_after == timedelta(seconds=30)
    done = decide(STEPS, GATES, FailurePolicy.HALT, at(1, 5), T0 + 11 * MIN, HEALTHY)
    assert (done.action, done.progress.step, done.progress.weight) == ("advance", 3, 50)
    assert done.analysis is not None and done.analysis.verdict is Verdict.PASS


def test_too_few_sessions_waits_and_never_advances() -> None:
    tiny = Measurement(Counts(40, 0, 0, 30, 0))
    for minutes in (11, 60, 600, 6000):
        d = decide(STEPS, GATES, FailurePolicy.HALT, at(1, 5), T0 + minutes * MIN, tiny)
        assert d.action == "wait" and d.progress.step == 1
        assert "not enough data: 40/100 sessions" in d.reasons[0]


def test_a_crash_spike_halts_even_during_a_pause() -> None:
    d = decide(STEPS, GATES, FailurePolicy.HALT, at(3, 50), T0 + MIN, CRASHING)
    assert d.action == "halt" and d.progress.phase is Phase.HALTED
    assert d.reasons[0].startswith("crash-free sessions 96.00%")


def test_the_pause_policy_pauses_instead() -> None:
    d = decide(STEPS, GATES, FailurePolicy.PAUSE, at(1, 5), T0 + 11 * MIN, CRASHING)
    assert d.action == "pause" and d.progress.phase is Phase.PAUSED


def test_a_pause_step_waits_its_duration() -> None:
    d = decide(STEPS, GATES, FailurePolicy.HALT, at(3, 50), T0 + 10 * MIN, HEALTHY)
    assert d.action == "wait" and d.requeue_after == timedelta(seconds=30)
    d = decide(STEPS, GATES, FailurePolicy.HALT, at(3, 50), T0 + 31 * MIN, HEALTHY)
    assert (d.action, d.progress.step) == ("advance", 4)


def test_an_approval_waits_for_a_person_and_then_completes() -> None:
    d = decide(STEPS, GATES, FailurePolicy.HALT, at(4, 50), T0 + 99 * MIN, HEALTHY)
    assert d.action == "wait" and "approval" in d.reasons[0]
    d = decide(STEPS, GATES, FailurePolicy.HALT, at(4, 50), T0 + 99 * MIN, HEALTHY, Control.PROMOTE)
    assert d.action == "complete" and d.progress.weight == 100
    assert d.progress.phase is Phase.COMPLETED


def test_measurement_failures_count_against_the_limit_then_pause() -> None:
    progress = at(1, 5)
    for expected in ("wait", "wait", "pause"):
        d = decide(STEPS, GATES, FailurePolicy.PAUSE, progress, T0, MeasurementFailed("timeout"))
        assert d.action == expected
        progress = d.progress
    assert progress.phase is Phase.PAUSED
    assert "measurement failed (3/3): timeout" in d.reasons[0]


def test_a_good_measurement_resets_the_failure_count() -> None:
    failing = Progress(Phase.PROGRESSING, 1, 5, T0, 2)
    d = decide(STEPS, GATES, FailurePolicy.HALT, failing, T0 + MIN, HEALTHY)
    assert d.progress.consecutive_failures == 0


@pytest.mark.parametrize(
    ("phase", "control", "action", "after"),
    [
        (Phase.PROGRESSING, Control.ABORT, "halt", Phase.HALTED),
        (Phase.PROGRESSING, Control.PAUSE, "pause", Phase.PAUSED),
        (Phase.PAUSED, Control.NONE, "none", Phase.PAUSED),
        (Phase.PAUSED, Control.RESUME, "wait", Phase.PROGRESSING),
        (Phase.HALTED, Control.NONE, "none", Phase.HALTED),
        (Phase.HALTED, Control.RESUME, "wait", Phase.PROGRESSING),
        (Phase.PROGRESSING, Control.PROMOTE_FULL, "complete", Phase.COMPLETED),
        (Phase.COMPLETED, Control.ABORT, "none", Phase.COMPLETED),
    ],
)
def test_manual_controls(phase: Phase, control: Control, action: str, after: Phase) -> None:
    d = decide(STEPS, GATES, FailurePolicy.HALT, at(1, 5, phase=phase), T0 + MIN, HEALTHY, control)
    assert (d.action, d.progress.phase) == (action, after)


def test_resuming_a_crashing_release_halts_it_again() -> None:
    halted = at(3, 50, phase=Phase.HALTED)
    d = decide(STEPS, GATES, FailurePolicy.HALT, halted, T0, CRASHING, Control.RESUME)
    assert d.action == "halt"


def test_worse_than_the_baseline_fails_even_above_the_threshold() -> None:
    gates = Gates(min_crash_free_sessions=0.99, min_crash_free_users=0.9, max_degradation=0.001)
    worse = Measurement(
        Counts(20_000, 120, 0, 5_000, 100), baseline=Counts(20_000, 20, 0, 5_000, 20)
    )
    a = analyse(worse, gates)
    assert a.verdict is Verdict.FAIL and "vs baseline" in a.reasons[0]


# -- a labelled suite of simulated releases -------------------------------------------------

SUITE_GATES = Gates(
    min_crash_free_sessions=0.995,
    min_crash_free_users=0.98,
    min_sessions=200,
    min_users=100,
    confidence=0.95,
    max_degradation=0.002,
)
BASELINE_RATE = 0.002  # the previous release crashes in 0.2% of sessions


def simulate(rng: random.Random, crash_rate: float, sessions: int) -> Measurement:
    users = max(1, sessions // 4)
    crashed = sum(rng.random() < crash_rate for _ in range(sessions))
    # Each crash hits a random user: users with at least one crash.
    crashed_users = len({rng.randrange(users) for _ in range(crashed)})
    base = sum(rng.random() < BASELINE_RATE for _ in range(sessions))
    return Measurement(
        Counts(sessions, crashed, 0, users, crashed_users),
        baseline=Counts(sessions, base, 0, users, min(users, base)),
    )


def verdicts(crash_rate: float, sessions: int, runs: int = 200) -> dict[Verdict, int]:
    rng = random.Random(f"{crash_rate}-{sessions}")
    out = dict.fromkeys(Verdict, 0)
    for _ in range(runs):
        out[analyse(simulate(rng, crash_rate, sessions), SUITE_GATES).verdict] += 1
    return out


def share(counts: dict[Verdict, int], verdict: Verdict) -> float:
    return counts[verdict] / sum(counts.values())


def test_suite_healthy_releases_advance() -> None:
    counts = verdicts(0.001, 20_000)
    assert share(counts, Verdict.PASS) >= 0.95
    assert counts[Verdict.FAIL] == 0


def test_suite_clearly_bad_releases_are_stopped() -> None:
    counts = verdicts(0.03, 2_000)
    assert share(counts, Verdict.FAIL) == 1.0


def test_suite_slightly_worse_releases_never_advance() -> None:
    # 0.7% crashes: misses the 99.5% gate by a little; with 20k sessions mostly caught.
    counts = verdicts(0.007, 20_000)
    assert counts[Verdict.PASS] == 0
    assert share(counts, Verdict.FAIL) >= 0.9


def test_suite_tiny_samples_wait() -> None:
    counts = verdicts(0.03, 150)
    assert share(counts, Verdict.INCONCLUSIVE) == 1.0


def test_analysis_reports_its_numbers() -> None:
    a: Analysis = analyse(HEALTHY, GATES)
    assert a.crash_free_sessions is not None
    estimate, low, high = a.crash_free_sessions
    assert low < estimate < high and estimate == pytest.approx(0.9995)
