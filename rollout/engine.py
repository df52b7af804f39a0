"""The release controller's decision engine: given where a release is and what telemetry
says, what to do next — pure, clock injected, table-tested.

A release walks its **steps** in order:

- ``setWeight`` — expose the version to ``weight`` percent, then move on at once;
- ``pause`` — hold the current weight for ``duration``;
- ``approval`` — hold until a person approves (promote);
- ``analysis`` — hold until the gates pass (at least ``duration`` of data, if set).

At **every** decision, whatever the step, the **gates** are checked on the latest
measurement: a release that starts crashing during a pause is stopped then, not at the next
analysis. A gate verdict is one of:

- ``fail`` — some gate is missed with confidence: the pessimistic reading is not needed, even
  the *optimistic* bound of the interval misses the threshold (crash-free upper bound below
  the minimum; error-rate lower bound above the maximum; the crash rate's excess over the
  baseline's, at its lower bound, above the allowed degradation);
- ``pass`` — every gate is met with confidence (the pessimistic bounds meet the thresholds);
- ``inconclusive`` — neither, or fewer sessions/users than the minimum sample: wait for more
  data. A release with too little data never advances past an analysis; it waits.

A failed verdict applies the **failure policy**: ``halt`` (flags off, store rollout halted) or
``pause``. A failed *measurement* (telemetry unreachable) is not a verdict: it is counted, and
after ``max_consecutive_failures`` the failure policy applies with the reason; before that the
controller waits and retries. Manual controls (promote, promote-full, pause, resume, abort)
come in as inputs and win over everything but a halt-worthy verdict on ``resume``.

Waits are returned as a ``requeue_after``: the controller re-runs the decision then; nothing
sleeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from mobileplane.rollout.stats import difference_interval, wilson

#: How often to look again while waiting for data or a pause.
ANALYSIS_INTERVAL = timedelta(seconds=30)
#: How soon to retry a failed measurement.
RETRY_INTERVAL = timedelta(seconds=15)


class StepKind(StrEnum):
    SET_WEIGHT = "setWeight"
    PAUSE = "pause"
    APPROVAL = "approval"
    ANALYSIS = "analysis"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    weight: int | None = None  # setWeight
    duration: timedelta | None = None  # pause; analysis: minimum time of data


@dataclass(frozen=True)
class Gates:
    """Thresholds as fractions (0.995 = 99.5 % crash-free)."""

    min_crash_free_sessions: float = 0.995
    min_crash_free_users: float = 0.99
    max_error_rate: float | None = None  # errored (not crashed) sessions / sessions
    min_sessions: int = 100
    min_users: int = 50
    confidence: float = 0.95
    max_degradation: float | None = None  # crash-rate excess over the baseline allowed
    max_consecutive_failures: int = 3


class FailurePolicy(StrEnum):
    PAUSE = "pause"
    HALT = "halt"


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HALTED = "Halted"
    COMPLETED = "Completed"


class Control(StrEnum):
    NONE = "none"
    PROMOTE = "promote"  # finish the current step now (approves an approval step)
    PROMOTE_FULL = "promote-full"  # skip to 100 %
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"


@dataclass(frozen=True)
class Counts:
    """Release health over the analysis window (from the telemetry API)."""

    sessions: int
    crashed_sessions: int
    errored_sessions: int
    users: int
    crashed_users: int


@dataclass(frozen=True)
class Measurement:
    candidate: Counts
    baseline: Counts | None = None


@dataclass(frozen=True)
class MeasurementFailed:
    reason: str


@dataclass(frozen=True)
class Progress:
    """Where the release is (the controller keeps it in the status)."""

    phase: Phase = Phase.PENDING
    step: int = 0
    weight: int = 0
    step_started_at: datetime | None = None
    consecutive_failures: int = 0


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    reasons: tuple[str, ...]
    crash_free_sessions: tuple[float, float, float] | None = None  # estimate, low, high
    crash_free_users: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Decision:
    progress: Progress
    action: str  # advance | wait | pause | halt | complete | resume | none
    reasons: tuple[str, ...] = ()
    requeue_after: timedelta | None = None
    analysis: Analysis | None = None
    events: tuple[str, ...] = field(default=())


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def analyse(measurement: Measurement, gates: Gates) -> Analysis:
    """The gates' verdict on one measurement (see the module docstring)."""
    c = measurement.candidate
    if c.sessions < gates.min_sessions or c.users < gates.min_users:
        return Analysis(
            Verdict.INCONCLUSIVE,
            (
                f"not enough data: {c.sessions}/{gates.min_sessions} sessions, "
                f"{c.users}/{gates.min_users} users",
            ),
        )
    fails: list[str] = []
    unsure: list[str] = []
    s_lo, s_hi = wilson(c.sessions - c.crashed_sessions, c.sessions, gates.confidence)
    s_est = 1 - c.crashed_sessions / c.sessions
    u_lo, u_hi = wilson(c.users - c.crashed_users, c.users, gates.confidence)
    u_est = 1 - c.crashed_users / c.users
    for name, est, lo, hi, minimum in (
        ("crash-free sessions", s_est, s_lo, s_hi, gates.min_crash_free_sessions),
        ("crash-free users", u_est, u_lo, u_hi, gates.min_crash_free_users),
    ):
        stated = f"{name} {_pct(est)} [{_pct(lo)}, {_pct(hi)}] vs minimum {_pct(minimum)}"
        if hi < minimum:
            fails.append(stated)
        elif lo < minimum:
            unsure.append(stated)
    if gates.max_error_rate is not None:
        e_lo, e_hi = wilson(c.errored_sessions, c.sessions, gates.confidence)
        stated = (
            f"error rate {_pct(c.errored_sessions / c.sessions)} [{_pct(e_lo)}, {_pct(e_hi)}] "
            f"vs maximum {_pct(gates.max_error_rate)}"
        )
        if e_lo > gates.max_error_rate:
            fails.append(stated)
        elif e_hi > gates.max_error_rate:
            unsure.append(stated)
    b = measurement.baseline
    if gates.max_degradation is not None and b is not None and b.sessions > 0:
        d_lo, d_hi = difference_interval(
            c.crashed_sessions, c.sessions, b.crashed_sessions, b.sessions, gates.confidence
        )
        stated = (
            f"crash rate {_pct(c.crashed_sessions / c.sessions)} vs baseline "
            f"{_pct(b.crashed_sessions / b.sessions)}: difference [{_pct(d_lo)}, {_pct(d_hi)}] "
            f"vs allowed {_pct(gates.max_degradation)}"
        )
        if d_lo > gates.max_degradation:
            fails.append(stated)
        elif d_hi > gates.max_degradation:
            unsure.append(stated)
    numbers = {"crash_free_sessions": (s_est, s_lo, s_hi), "crash_free_users": (u_est, u_lo, u_hi)}
    if fails:
        return Analysis(Verdict.FAIL, tuple(fails), **numbers)
    if unsure:
        return Analysis(Verdict.INCONCLUSIVE, ("not yet sure: " + "; ".join(unsure),), **numbers)
    return Analysis(Verdict.PASS, ("all gates met",), **numbers)


def _fail(
    progress: Progress, policy: FailurePolicy, reasons: tuple[str, ...], **kw: object
) -> Decision:
    phase = Phase.HALTED if policy is FailurePolicy.HALT else Phase.PAUSED
    action = "halt" if policy is FailurePolicy.HALT else "pause"
    return Decision(replace(progress, phase=phase), action, reasons, **kw)  # type: ignore[arg-type]


def _enter(steps: Sequence[Step], progress: Progress, index: int, now: datetime) -> Decision:
    """Move to step ``index``; apply consecutive setWeight steps at once."""
    weight = progress.weight
    while index < len(steps) and steps[index].kind is StepKind.SET_WEIGHT:
        weight = steps[index].weight or 0
        index += 1
    if index >= len(steps):
        done = Progress(Phase.COMPLETED, len(steps), 100, now, 0)
        return Decision(done, "complete", ("every step done: 100%",))
    moved = Progress(Phase.PROGRESSING, index, weight, now, 0)
    return Decision(
        moved,
        "advance",
        (f"step {index + 1}: {steps[index].kind} at {weight}%",),
        requeue_after=ANALYSIS_INTERVAL,
    )


def decide(
    steps: Sequence[Step],
    gates: Gates,
    policy: FailurePolicy,
    progress: Progress,
    now: datetime,
    measurement: Measurement | MeasurementFailed | None,
    control: Control = Control.NONE,
) -> Decision:
    """The next decision for a release (see the module docstring)."""
    if progress.phase is Phase.COMPLETED:
        return Decision(progress, "none", ("completed",))
    if control is Control.ABORT:
        return Decision(replace(progress, phase=Phase.HALTED), "halt", ("aborted by a person",))
    if progress.phase is Phase.HALTED and control is not Control.RESUME:
        return Decision(progress, "none", ("halted: resume or abort",))
    if control is Control.PAUSE:
        return Decision(replace(progress, phase=Phase.PAUSED), "pause", ("paused by a person",))
    if progress.phase is Phase.PAUSED and control is not Control.RESUME:
        return Decision(progress, "none", ("paused: resume to continue",))
    if progress.phase is Phase.PENDING:
        return _enter(steps, Progress(Phase.PROGRESSING, 0, 0, now), 0, now)
    if control is Control.PROMOTE_FULL:
        done = Progress(Phase.COMPLETED, len(steps), 100, now, 0)
        return Decision(done, "complete", ("promoted to 100% by a person",))

    resumed = progress.phase in (Phase.PAUSED, Phase.HALTED)
    if resumed:
        progress = replace(
            progress, phase=Phase.PROGRESSING, step_started_at=now, consecutive_failures=0
        )

    analysis: Analysis | None = None
    if isinstance(measurement, MeasurementFailed):
        failures = progress.consecutive_failures + 1
        counted = replace(progress, consecutive_failures=failures)
        limit = gates.max_consecutive_failures
        reason = f"measurement failed ({failures}/{limit}): {measurement.reason}"
        if failures >= gates.max_consecutive_failures:
            return _fail(counted, policy, (reason,))
        if control is Control.PROMOTE:
            # A person's promote is not lost to a flaky measurement below the limit: the step
            # finishes (the next step's first decision measures again).
            decision = _enter(steps, counted, progress.step + 1, now)
            return replace(decision, reasons=("promoted by a person", reason, *decision.reasons))
        return Decision(counted, "wait", (reason,), requeue_after=RETRY_INTERVAL)
    if measurement is not None:
        progress = replace(progress, consecutive_failures=0)
        analysis = analyse(measurement, gates)
        if analysis.verdict is Verdict.FAIL:
            return _fail(progress, policy, analysis.reasons, analysis=analysis)

    step = steps[progress.step]
    if control is Control.PROMOTE:
        decision = _enter(steps, progress, progress.step + 1, now)
        return replace(
            decision, reasons=("promoted by a person", *decision.reasons), analysis=analysis
        )
    started = progress.step_started_at or now
    elapsed = now - started
    if step.kind is StepKind.PAUSE:
        remaining = (step.duration or timedelta(0)) - elapsed
        if remaining > timedelta(0):
            return Decision(
                progress,
                "wait",
                (f"pausing: {remaining} left",),
                requeue_after=min(remaining, ANALYSIS_INTERVAL),
                analysis=analysis,
            )
        return replace(_enter(steps, progress, progress.step + 1, now), analysis=analysis)
    if step.kind is StepKind.APPROVAL:
        return Decision(
            progress,
            "wait",
            ("waiting for approval (promote)",),
            requeue_after=ANALYSIS_INTERVAL,
            analysis=analysis,
        )
    # analysis step
    if analysis is None:
        return Decision(
            progress, "wait", ("waiting for a measurement",), requeue_after=ANALYSIS_INTERVAL
        )
    if step.duration is not None and elapsed < step.duration:
        left = step.duration - elapsed
        return Decision(
            progress,
            "wait",
            (f"collecting data: {left} left", *analysis.reasons),
            requeue_after=min(left, ANALYSIS_INTERVAL),
            analysis=analysis,
        )
    if analysis.verdict is Verdict.INCONCLUSIVE:
        return Decision(
            progress, "wait", analysis.reasons, requeue_after=ANALYSIS_INTERVAL, analysis=analysis
        )
    decision = _enter(steps, progress, progress.step + 1, now)
    return replace(decision, reasons=("analysis passed", *decision.reasons), analysis=analysis)
