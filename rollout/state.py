"""Between the MobileRelease object and the engine: read where a release is from its status,
read the manual control from its annotation, write the decision back — pure.

Everything the engine needs to resume is in the status (phase, current step, weight, when the
step started, failed measurements in a row), so a restarted controller decides exactly as the
old one would have. A person steers a release with one annotation,
``release.mobileplane.io/control`` (``promote``, ``promote-full``, ``pause``, ``resume``,
``abort``): the controller applies it once, removes it and records it in ``status.history``.
Other annotations name what the controller cannot infer (see :data:`ANNOTATIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mobileplane.rollout.engine import (
    Analysis,
    Control,
    Decision,
    Measurement,
    MeasurementFailed,
    Phase,
    Progress,
)

PREFIX = "release.mobileplane.io/"
CONTROL_ANNOTATION = PREFIX + "control"
#: Where the telemetry service answers (default: the platform's in-cluster Service).
TELEMETRY_URL_ANNOTATION = PREFIX + "telemetry-url"
#: The telemetry project (slug or id); default ``<platform>-<ios|android>``.
TELEMETRY_PROJECT_ANNOTATION = PREFIX + "telemetry-project"
#: The release name the app's Sentry SDK reports; default ``<app id>@<version>+<build>``.
TELEMETRY_RELEASE_ANNOTATION = PREFIX + "telemetry-release"
#: Where the app-config service answers (default: the platform's in-cluster Service).
APPCONFIG_URL_ANNOTATION = PREFIX + "appconfig-url"
#: The app-config app name (default: the MobilePlatform's name).
APPCONFIG_APP_ANNOTATION = PREFIX + "appconfig-app"
#: The Secret with the store credentials (default ``<platform>-<googleplay|appstore>``).
STORE_SECRET_ANNOTATION = PREFIX + "store-credentials"
ANNOTATIONS = (
    CONTROL_ANNOTATION,
    TELEMETRY_URL_ANNOTATION,
    APPCONFIG_URL_ANNOTATION,
    TELEMETRY_PROJECT_ANNOTATION,
    TELEMETRY_RELEASE_ANNOTATION,
    APPCONFIG_APP_ANNOTATION,
    STORE_SECRET_ANNOTATION,
)

#: The status keeps this many decisions (the CRD's maxItems).
HISTORY_LIMIT = 100
#: The controller's condition types.
CONDITIONS = ("Progressing", "Healthy")


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ControlRequest:
    control: Control
    raw: str | None  # the annotation's value, removed after use (None: no annotation)
    error: str | None = None  # an annotation we cannot understand


def read_control(annotations: Mapping[str, str] | None) -> ControlRequest:
    raw = (annotations or {}).get(CONTROL_ANNOTATION)
    if raw is None:
        return ControlRequest(Control.NONE, None)
    try:
        control = Control(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(c.value for c in Control if c is not Control.NONE)
        return ControlRequest(Control.NONE, raw, f"unknown control {raw!r}: use one of {allowed}")
    if control is Control.NONE:
        return ControlRequest(Control.NONE, raw)
    return ControlRequest(control, raw)


def decision_due(
    due: datetime | None, body: Mapping[str, Any], control_pending: bool, now: datetime
) -> bool:
    """Whether a look should decide now: a control is waiting, the spec changed since the
    status was written, this process has no due time yet (a new release, or a restart), or
    the engine's requeue time has come."""
    if control_pending:
        return True
    observed = (body.get("status") or {}).get("observedGeneration")
    if observed != (body.get("metadata") or {}).get("generation"):
        return True
    return due is None or now >= due


def progress_from_status(status: Mapping[str, Any] | None) -> Progress:
    s = status or {}
    return Progress(
        phase=Phase(s.get("phase") or Phase.PENDING),
        step=int(s.get("currentStep") or 0),
        weight=int(s.get("weight") or 0),
        step_started_at=parse_time(s.get("stepStartedAt")),
        consecutive_failures=int(s.get("consecutiveFailures") or 0),
    )


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 4)


def analysis_status(
    analysis: Analysis, measurement: Measurement | None, now: datetime
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "verdict": analysis.verdict.value,
        "reasons": list(analysis.reasons),
        "at": rfc3339(now),
    }
    if analysis.crash_free_sessions is not None:
        out["crashFreeSessions"] = _pct(analysis.crash_free_sessions[0])
    if analysis.crash_free_users is not None:
        out["crashFreeUsers"] = _pct(analysis.crash_free_users[0])
    if measurement is not None:
        out["sessions"] = measurement.candidate.sessions
        out["users"] = measurement.candidate.users
    return out


def _condition(
    previous: Sequence[Mapping[str, Any]],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    old = next((c for c in previous if c.get("type") == ctype), None)
    changed = old is None or old.get("status") != status
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": rfc3339(now) if changed else old["lastTransitionTime"],  # type: ignore[index]
        "observedGeneration": generation,
    }


def conditions(
    previous: Sequence[Mapping[str, Any]],
    decision: Decision,
    measurement: Measurement | MeasurementFailed | None,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """``Progressing`` (is it moving?) and ``Healthy`` (what do the gates or telemetry say?)."""
    phase = decision.progress.phase
    why = "; ".join(decision.reasons)
    progressing = {
        Phase.PENDING: ("Unknown", "Pending"),
        Phase.PROGRESSING: ("True", "Waiting" if decision.action == "wait" else "Advancing"),
        Phase.PAUSED: ("False", "Paused"),
        Phase.HALTED: ("False", "Halted"),
        Phase.COMPLETED: ("False", "Completed"),
    }[phase]
    if isinstance(measurement, MeasurementFailed):
        healthy = ("Unknown", "MeasurementFailed", why)
    elif decision.analysis is not None:
        verdict = decision.analysis.verdict.value
        status = {"pass": "True", "fail": "False"}.get(verdict, "Unknown")
        reason = {"pass": "GatesPassed", "fail": "GatesFailed"}.get(verdict, "Inconclusive")
        healthy = (status, reason, "; ".join(decision.analysis.reasons))
    else:
        old = next((c for c in previous if c.get("type") == "Healthy"), None)
        if old is not None:
            healthy = (old["status"], old["reason"], old.get("message", ""))
        else:
            healthy = ("Unknown", "NotMeasured", "no measurement yet")
    return [
        _condition(previous, "Progressing", *progressing, why, generation, now),
        _condition(previous, "Healthy", *healthy, generation, now),
    ]


def _worth_recording(
    last: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    control: Control,
    measurement: Measurement | MeasurementFailed | None,
) -> bool:
    """A change of action, step or weight, a control, a failed measurement: yes. Another
    tick of the same wait (only the time left changed): no — history and Events stay
    readable however long a release waits."""
    if last is None or control is not Control.NONE or isinstance(measurement, MeasurementFailed):
        return True
    if record["action"] not in ("wait", "none"):
        return True
    return any(last.get(k) != record[k] for k in ("action", "step", "weight"))


def status_after(
    previous: Mapping[str, Any] | None,
    decision: Decision,
    measurement: Measurement | MeasurementFailed | None,
    control: Control,
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    """The whole new status (a merge patch of ``status``) after ``decision``."""
    prev = previous or {}
    p = decision.progress
    reason = "; ".join(decision.reasons)
    if control is not Control.NONE:
        reason = f"control {control.value}: {reason}"
    history = list(prev.get("history") or [])
    last = history[-1] if history else None
    record = {
        "at": rfc3339(now),
        "action": decision.action,
        "step": p.step,
        "weight": p.weight,
        "reason": reason[:1024],
    }
    if _worth_recording(last, record, control, measurement):
        history.append(record)
    status: dict[str, Any] = {
        "phase": p.phase.value,
        "currentStep": p.step,
        "weight": p.weight,
        "stepStartedAt": rfc3339(p.step_started_at) if p.step_started_at else None,
        "consecutiveFailures": p.consecutive_failures,
        "history": history[-HISTORY_LIMIT:],
        "conditions": conditions(
            prev.get("conditions") or [], decision, measurement, generation, now
        ),
        "observedGeneration": generation,
    }
    if decision.analysis is not None:
        m = measurement if isinstance(measurement, Measurement) else None
        status["lastAnalysis"] = analysis_status(decision.analysis, m, now)
    return status


def is_news(previous: Mapping[str, Any] | None, status: Mapping[str, Any]) -> bool:
    """Whether the decision deserves an Event: anything but a repeated wait or no-op."""
    before = list((previous or {}).get("history") or [])
    after = list(status.get("history") or [])
    return len(after) != len(before) or (bool(after) and after[-1] != before[-1])


def event_for(decision: Decision, control: Control) -> tuple[str, str, str]:
    """(type, reason, message) of the Kubernetes Event recording ``decision``."""
    kind = "Warning" if decision.action in ("halt", "pause") else "Normal"
    reason = {
        "advance": "StepStarted",
        "wait": "Waiting",
        "pause": "Paused",
        "halt": "Halted",
        "complete": "Completed",
        "none": "NoChange",
    }.get(decision.action, decision.action.capitalize())
    p = decision.progress
    message = f"step {p.step}, {p.weight}%: " + "; ".join(decision.reasons)
    if control is not Control.NONE:
        message = f"{control.value} requested: {message}"
    return kind, reason, message[:1024]


def health_window(created: datetime | None, now: datetime) -> str:
    """The telemetry window covering the release's life (``<minutes>m``, 1 minute at least,
    at most 90 days): data from before the release existed cannot judge it."""
    if created is None:
        return "24h"
    minutes = int((now - created) / timedelta(minutes=1)) + 1
    return f"{max(1, min(minutes, 90 * 24 * 60))}m"


def set_condition(
    conditions_: Sequence[Mapping[str, Any]],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """``conditions_`` with ``ctype`` set (its transition time kept if its status did not
    change)."""
    new = _condition(conditions_, ctype, status, reason, message, generation, now)
    return [dict(c) for c in conditions_ if c.get("type") != ctype] + [new]


@dataclass(frozen=True)
class TelemetryNames:
    project: str
    release: str
    baseline: str | None


def app_id(
    platform: str,
    annotations: Mapping[str, str] | None,
    package_name: str | None,
    platform_spec: Mapping[str, Any] | None,
) -> str | None:
    """The app's id (bundle id / application id) Sentry SDKs put before ``@`` in a release:
    the store's package name for Android, else the MobilePlatform's first app id."""
    if platform == "android" and package_name:
        return package_name
    app = (platform_spec or {}).get("app") or {}
    if platform == "ios":
        ids = (app.get("ios") or {}).get("bundleIds") or []
    else:
        ids = (app.get("android") or {}).get("packageNames") or []
    return str(ids[0]) if ids else None


def telemetry_names(
    spec_platform_ref: str,
    platform: str,
    version: str,
    build: str,
    annotations: Mapping[str, str] | None,
    the_app_id: str | None,
    baseline: str | None,
) -> TelemetryNames | str:
    """The telemetry project and release names, or why they cannot be known."""
    notes = annotations or {}
    project = notes.get(TELEMETRY_PROJECT_ANNOTATION) or f"{spec_platform_ref}-{platform}"
    release = notes.get(TELEMETRY_RELEASE_ANNOTATION)
    if release is None:
        if the_app_id is None:
            return (
                "cannot name the release in telemetry: no app id (set store.packageName, the "
                "MobilePlatform's app ids, or the annotation "
                f"{TELEMETRY_RELEASE_ANNOTATION})"
            )
        release = f"{the_app_id}@{version}+{build}"
    base = None
    if baseline:
        if "@" in baseline:
            base = baseline
        elif "@" in release:
            base = f"{release.split('@', 1)[0]}@{baseline}"
        else:
            base = baseline
    return TelemetryNames(project, release, base)


def previous_version(
    items: Sequence[Mapping[str, Any]], platform_ref: str, platform: str, me: str
) -> str | None:
    """``<version>+<build>`` of the newest completed release of the same app and platform
    (what ``baseline.release: previous`` means), or None."""
    done = [
        i
        for i in items
        if i.get("metadata", {}).get("name") != me
        and (i.get("status") or {}).get("phase") == "Completed"
        and (i.get("spec") or {}).get("platformRef", {}).get("name") == platform_ref
        and (i.get("spec") or {}).get("app", {}).get("platform") == platform
    ]
    if not done:
        return None
    newest = max(done, key=lambda i: str(i["metadata"].get("creationTimestamp") or ""))
    app = newest["spec"]["app"]
    return f"{app['version']}+{app['build']}"
