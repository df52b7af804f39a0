"""Status <-> engine, controls, events, telemetry names, desired provider state: table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mobileplane.rollout.effects import (
    AppConfigState,
    FlagState,
    StoreAction,
    StoreState,
    desired,
)
from mobileplane.rollout.engine import (
    Control,
    Counts,
    Decision,
    FailurePolicy,
    Gates,
    Measurement,
    MeasurementFailed,
    Phase,
    Progress,
    decide,
)
from mobileplane.rollout.spec import MobileReleaseSpec, Store
from mobileplane.rollout.state import (
    CONTROL_ANNOTATION,
    TELEMETRY_RELEASE_ANNOTATION,
    app_id,
    decision_due,
    event_for,
    health_window,
    is_news,
    previous_version,
    progress_from_status,
    read_control,
    status_after,
    telemetry_names,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SPEC = MobileReleaseSpec.model_validate(
    {
        "platformRef": {"name": "shop"},
        "app": {"platform": "android", "version": "2.4.0", "build": "2040"},
        "steps": [{"setWeight": 10}, {"pause": "1m"}, {"approval": True}, {"setWeight": 50}],
        "flags": [
            {"name": "follow"},
            {"name": "late", "followWeight": False, "enableAtStep": 2},
        ],
        "store": {"kind": "googlePlay", "packageName": "com.example.shop"},
    }
)


@pytest.mark.parametrize(
    ("annotations", "control", "error"),
    [
        (None, Control.NONE, False),
        ({}, Control.NONE, False),
        ({CONTROL_ANNOTATION: "promote"}, Control.PROMOTE, False),
        ({CONTROL_ANNOTATION: " Abort "}, Control.ABORT, False),
        ({CONTROL_ANNOTATION: "promote-full"}, Control.PROMOTE_FULL, False),
        ({CONTROL_ANNOTATION: "launch"}, Control.NONE, True),
    ],
)
def test_read_control(annotations: dict[str, str] | None, control: Control, error: bool) -> None:
    request = read_control(annotations)
    assert request.control is control
    assert (request.error is not None) is error


def test_status_round_trip_resumes_exactly() -> None:
    """What the controller writes is what a restarted controller reads back."""
    progress = Progress(Phase.PROGRESSING, 1, 10, T0, 2)
    decision = decide(
        SPEC.to_steps(), Gates(), FailurePolicy.HALT, progress, T0 + timedelta(seconds=5), None
    )
    status = status_after({}, decision, None, Control.NONE, 3, T0 + timedelta(seconds=5))
    assert progress_from_status(status) == decision.progress
    assert status["observedGeneration"] == 3
    assert progress_from_status(None) == Progress()


def _status(
    progress: Progress,
    *,
    measurement: Any = None,
    control: Control = Control.NONE,
    previous: dict[str, Any] | None = None,
    at: datetime = T0,
) -> dict[str, Any]:
    decision = decide(
        SPEC.to_steps(),
        Gates(min_sessions=10, min_users=5),
        FailurePolicy.HALT,
        progress,
        at,
        measurement,
        control,
    )
    return status_after(previous or {}, decision, measurement, control, 1, at)


def test_waiting_ticks_do_not_grow_history_or_make_news() -> None:
    start = _status(Progress())  # pending -> step 1 (pause) at 10 %
    assert start["history"][-1]["action"] == "advance"
    assert is_news({}, start)
    progress = progress_from_status(start)
    tick1 = _status(progress, previous=start, at=T0 + timedelta(seconds=10))
    tick2 = _status(progress, previous=tick1, at=T0 + timedelta(seconds=20))
    assert [h["action"] for h in tick2["history"]] == ["advance", "wait"]
    assert not is_news(tick1, tick2)


def test_failed_measurements_are_news_and_set_healthy_unknown() -> None:
    progress = Progress(Phase.PROGRESSING, 1, 10, T0)
    failed = MeasurementFailed("telemetry unreachable")
    first = _status(progress, measurement=failed)
    assert first["consecutiveFailures"] == 1
    healthy = next(c for c in first["conditions"] if c["type"] == "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("Unknown", "MeasurementFailed")
    second = _status(progress_from_status(first), measurement=failed, previous=first)
    assert is_news(first, second)
    third = _status(progress_from_status(second), measurement=failed, previous=second)
    assert third["phase"] == "Halted"
    progressing = next(c for c in third["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "Halted"
    assert "measurement failed (3/3)" in progressing["message"]


def test_gate_failure_records_the_analysis() -> None:
    bad = Measurement(Counts(1000, 300, 0, 500, 200))
    status = _status(Progress(Phase.PROGRESSING, 1, 10, T0), measurement=bad)
    assert status["phase"] == "Halted"
    assert status["lastAnalysis"]["verdict"] == "fail"
    assert status["lastAnalysis"]["sessions"] == 1000
    assert status["lastAnalysis"]["crashFreeSessions"] == 70.0
    healthy = next(c for c in status["conditions"] if c["type"] == "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "GatesFailed")


def test_condition_transition_time_only_moves_on_change() -> None:
    progress = Progress(Phase.PROGRESSING, 1, 10, T0)
    a = _status(progress)
    b = _status(progress, previous=a, at=T0 + timedelta(seconds=30))
    ta = {c["type"]: c["lastTransitionTime"] for c in a["conditions"]}
    tb = {c["type"]: c["lastTransitionTime"] for c in b["conditions"]}
    assert ta == tb


@pytest.mark.parametrize(
    ("action", "control", "kind", "reason"),
    [
        ("halt", Control.NONE, "Warning", "Halted"),
        ("pause", Control.PAUSE, "Warning", "Paused"),
        ("advance", Control.PROMOTE, "Normal", "StepStarted"),
        ("complete", Control.NONE, "Normal", "Completed"),
    ],
)
def test_event_for(action: str, control: Control, kind: str, reason: str) -> None:
    event = event_for(Decision(Progress(), action, ("why",)), control)
    assert event[:2] == (kind, reason)
    assert "why" in event[2]
    assert (control.value in event[2]) is (control is not Control.NONE)


@pytest.mark.parametrize(
    ("created", "now", "window"),
    [
        (None, T0, "24h"),
        (T0, T0, "1m"),
        (T0, T0 + timedelta(minutes=90, seconds=5), "91m"),
        (T0 - timedelta(days=400), T0, f"{90 * 24 * 60}m"),
    ],
)
def test_health_window(created: datetime | None, now: datetime, window: str) -> None:
    assert health_window(created, now) == window


@pytest.mark.parametrize(
    ("platform", "package", "platform_spec", "expected"),
    [
        ("android", "com.a", None, "com.a"),
        ("android", None, {"app": {"android": {"packageNames": ["com.b"]}}}, "com.b"),
        ("ios", None, {"app": {"ios": {"bundleIds": ["com.c", "com.d"]}}}, "com.c"),
        ("ios", "com.a", {"app": {}}, None),
    ],
)
def test_app_id(
    platform: str, package: str | None, platform_spec: Any, expected: str | None
) -> None:
    assert app_id(platform, None, package, platform_spec) == expected


def test_telemetry_names() -> None:
    names = telemetry_names("shop", "ios", "1.1.0", "42", None, "com.c", "1.0.0+41")
    assert not isinstance(names, str)
    assert (names.project, names.release, names.baseline) == (
        "shop-ios",
        "com.c@1.1.0+42",
        "com.c@1.0.0+41",
    )
    override = telemetry_names(
        "shop", "ios", "1.1.0", "42", {TELEMETRY_RELEASE_ANNOTATION: "x@1"}, None, None
    )
    assert not isinstance(override, str)
    assert override.release == "x@1"
    missing = telemetry_names("shop", "ios", "1.1.0", "42", None, None, None)
    assert isinstance(missing, str)
    assert TELEMETRY_RELEASE_ANNOTATION in missing


def test_previous_version_is_the_newest_completed_of_the_same_app() -> None:
    def item(name: str, created: str, phase: str, platform: str = "ios", ref: str = "shop") -> Any:
        return {
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {
                "platformRef": {"name": ref},
                "app": {"platform": platform, "version": name, "build": "1"},
            },
            "status": {"phase": phase},
        }

    items = [
        item("1.0", "2026-01-01T00:00:00Z", "Completed"),
        item("1.1", "2026-02-01T00:00:00Z", "Completed"),
        item("1.2", "2026-03-01T00:00:00Z", "Halted"),
        item("9.9", "2026-04-01T00:00:00Z", "Completed", platform="android"),
        item("8.8", "2026-04-01T00:00:00Z", "Completed", ref="other"),
        item("2.0", "2026-05-01T00:00:00Z", "Progressing"),
    ]
    assert previous_version(items, "shop", "ios", "2.0") == "1.1+1"
    assert previous_version(items[2:3], "shop", "ios", "2.0") is None


# -- desired provider state ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "flags", "store", "appconfig"),
    [
        pytest.param(Progress(), None, None, None, id="pending: nothing"),
        pytest.param(
            Progress(Phase.PROGRESSING, 1, 10, T0),
            (FlagState("follow", True, 10), FlagState("late", False, 0)),
            StoreState(Store.GOOGLE_PLAY, StoreAction.ROLLOUT, 0.1),
            AppConfigState(halted=False, latest=False),
            id="10 %",
        ),
        pytest.param(
            Progress(Phase.PROGRESSING, 2, 10, T0),
            (FlagState("follow", True, 10), FlagState("late", True, 100)),
            StoreState(Store.GOOGLE_PLAY, StoreAction.ROLLOUT, 0.1),
            AppConfigState(halted=False, latest=False),
            id="enableAtStep reached",
        ),
        pytest.param(
            Progress(Phase.HALTED, 2, 10, T0),
            (FlagState("follow", False, 0), FlagState("late", False, 0)),
            StoreState(Store.GOOGLE_PLAY, StoreAction.HALT),
            AppConfigState(halted=True, latest=False),
            id="halted: flags off, store halted, version marked",
        ),
        pytest.param(
            Progress(Phase.COMPLETED, 4, 100, T0),
            (FlagState("follow", True, 100), FlagState("late", True, 100)),
            StoreState(Store.GOOGLE_PLAY, StoreAction.COMPLETE),
            AppConfigState(halted=False, latest=True),
            id="completed",
        ),
        pytest.param(
            Progress(Phase.PAUSED, 1, 10, T0), (), None, None, id="paused: Google Play holds"
        ),
    ],
)
def test_desired(progress: Progress, flags: Any, store: Any, appconfig: Any) -> None:
    effects = desired(SPEC, progress)
    if flags is None:
        assert effects is None
        return
    assert effects is not None
    assert (effects.flags, effects.store, effects.appconfig) == (flags, store, appconfig)


@pytest.mark.parametrize(
    ("phase", "weight", "action"),
    [
        (Phase.PROGRESSING, 10, StoreAction.ROLLOUT),
        (Phase.PAUSED, 10, StoreAction.PAUSE),
        (Phase.HALTED, 10, StoreAction.HALT),
        (Phase.COMPLETED, 100, StoreAction.COMPLETE),
    ],
)
def test_desired_app_store(phase: Phase, weight: int, action: StoreAction) -> None:
    spec = SPEC.model_copy(
        update={"store": SPEC.store.model_copy(update={"kind": Store.APP_STORE, "app_id": "1"})}
    )
    effects = desired(spec, Progress(phase, 1, weight, T0))
    assert effects is not None and effects.store is not None
    assert effects.store.action is action


BODY = {"metadata": {"generation": 2}, "status": {"observedGeneration": 2}}


@pytest.mark.parametrize(
    ("due", "body", "control", "now", "expected"),
    [
        pytest.param(None, BODY, False, T0, True, id="first look of this process"),
        pytest.param(T0 + timedelta(seconds=5), BODY, False, T0, False, id="not due"),
        pytest.param(T0, BODY, False, T0, True, id="due now"),
        pytest.param(T0 + timedelta(seconds=5), BODY, True, T0, True, id="control waiting"),
        pytest.param(
            T0 + timedelta(seconds=5),
            {"metadata": {"generation": 3}, "status": {"observedGeneration": 2}},
            False,
            T0,
            True,
            id="spec changed",
        ),
    ],
)
def test_decision_due(
    due: datetime | None, body: dict[str, Any], control: bool, now: datetime, expected: bool
) -> None:
    assert decision_due(due, body, control, now) is expected


@pytest.mark.parametrize(
    ("failures_before", "action", "step"),
    [
        pytest.param(0, "complete", 4, id="promote is not lost to a flaky measurement"),
        pytest.param(2, "halt", 2, id="at the failure limit the policy wins"),
    ],
)
def test_promote_with_a_failed_measurement(failures_before: int, action: str, step: int) -> None:
    """An approval step, a person promotes while telemetry fails (engine.decide)."""
    progress = Progress(Phase.PROGRESSING, 2, 10, T0, failures_before)
    decision = decide(
        SPEC.to_steps(),
        Gates(),
        FailurePolicy.HALT,
        progress,
        T0,
        MeasurementFailed("telemetry unreachable"),
        Control.PROMOTE,
    )
    assert (decision.action, decision.progress.step) == (action, step)
    assert any("measurement failed" in r for r in decision.reasons)
