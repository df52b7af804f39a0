"""The MobileRelease resource: its spec and status as typed models (the CRD is generated).

A release manager applies one MobileRelease per app version and platform; the release
controller walks it through ``steps`` (see :mod:`.engine`), gating on crash-rate signals, and
moves its Unleash ``flags`` and store rollout with it. ``python -m mobileplane.rollout.crdgen``
renders ``crds/mobilerelease.yaml`` from these models; a unit test keeps the two equal.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import Field

from mobileplane.operator.spec import Condition, Model, cel, validations
from mobileplane.rollout.engine import FailurePolicy, Gates, Step, StepKind

DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> timedelta:
    """Go-style durations as Kubernetes uses them: ``90s``, ``10m``, ``1h30m``."""
    import re

    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 10m, 1h30m)")
    return timedelta(seconds=sum(float(a) * _UNITS[b] for a, b in parts))


class Platform(StrEnum):
    IOS = "ios"
    ANDROID = "android"


class Store(StrEnum):
    GOOGLE_PLAY = "googlePlay"
    APP_STORE = "appStore"
    NONE = "none"


class PlatformRef(Model):
    name: str = Field(min_length=1, max_length=253, description="The MobilePlatform's name.")


class AppVersion(Model):
    platform: Platform = Field(description="ios or android.")
    version: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[0-9A-Za-z.+-]+$",
        description="The marketing version (e.g. 2.4.0); telemetry's release is "
        "<bundle id>@<version>+<build>.",
    )
    build: str = Field(
        min_length=1, max_length=64, pattern=r"^[0-9A-Za-z.-]+$", description="The build number."
    )


class StepSpec(Model):
    set_weight: int | None = Field(
        default=None, ge=0, le=100, description="Expose the version to this percentage."
    )
    pause: str | None = Field(
        default=None, pattern=DURATION, description="Hold for this long (e.g. 30m)."
    )
    approval: bool | None = Field(default=None, description="Hold until a person promotes.")
    analysis: str | None = Field(
        default=None,
        pattern=DURATION,
        description="Hold until the gates pass, on at least this long of data (e.g. 1h).",
    )

    model_config = Model.model_config | {
        "json_schema_extra": validations(
            cel(
                "[has(self.setWeight), has(self.pause), has(self.approval), has(self.analysis)]"
                ".filter(x, x).size() == 1",
                "a step is exactly one of setWeight, pause, approval, analysis",
            )
        )
    }

    def to_step(self) -> Step:
        if self.set_weight is not None:
            return Step(StepKind.SET_WEIGHT, weight=self.set_weight)
        if self.pause is not None:
            return Step(StepKind.PAUSE, duration=parse_duration(self.pause))
        if self.approval:
            return Step(StepKind.APPROVAL)
        if self.analysis is not None:
            return Step(StepKind.ANALYSIS, duration=parse_duration(self.analysis))
        raise ValueError("a step is exactly one of setWeight, pause, approval, analysis")


class Baseline(Model):
    release: str = Field(
        default="previous",
        max_length=200,
        description="The release to compare with: a version, or 'previous' (the last "
        "completed MobileRelease of the app and platform).",
    )
    max_degradation: float = Field(
        default=0.2,
        ge=0,
        le=100,
        description="How many percentage points the crash rate may exceed the baseline's.",
    )


class GatesSpec(Model):
    min_crash_free_sessions: float = Field(
        default=99.5, ge=0, le=100, description="Minimum crash-free sessions, in percent."
    )
    min_crash_free_users: float = Field(
        default=99.0, ge=0, le=100, description="Minimum crash-free users, in percent."
    )
    max_error_rate: float | None = Field(
        default=None, ge=0, le=100, description="Maximum errored sessions, in percent."
    )
    min_sessions: int = Field(default=100, ge=1, description="Sessions before any verdict.")
    min_users: int = Field(default=50, ge=1, description="Users before any verdict.")
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1, description="Confidence level of the bounds gates use."
    )
    baseline: Baseline | None = Field(default=None, description="Compare with a baseline.")
    max_consecutive_failures: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Failed measurements in a row before the failure policy applies.",
    )

    def to_gates(self) -> Gates:
        return Gates(
            min_crash_free_sessions=self.min_crash_free_sessions / 100,
            min_crash_free_users=self.min_crash_free_users / 100,
            max_error_rate=None if self.max_error_rate is None else self.max_error_rate / 100,
            min_sessions=self.min_sessions,
            min_users=self.min_users,
            confidence=self.confidence,
            max_degradation=self.baseline.max_degradation / 100 if self.baseline else None,
            max_consecutive_failures=self.max_consecutive_failures,
        )


class FlagSpec(Model):
    name: str = Field(min_length=1, max_length=100, description="The Unleash feature flag.")
    follow_weight: bool = Field(
        default=True,
        description="Its gradual rollout follows the release's percentage (else: it switches "
        "on at enableAtStep).",
    )
    enable_at_step: int | None = Field(
        default=None, ge=0, description="The step (0-based) at which the flag switches on."
    )


class StoreSpec(Model):
    kind: Store = Field(default=Store.NONE, description="googlePlay, appStore or none.")
    package_name: str | None = Field(default=None, description="Google Play package name.")
    track: str = Field(default="production", description="Google Play track.")
    app_id: str | None = Field(default=None, description="App Store Connect app id.")

    model_config = Model.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.kind != 'googlePlay' || has(self.packageName)", "googlePlay needs packageName"
            ),
            cel("self.kind != 'appStore' || has(self.appId)", "appStore needs appId"),
        )
    }


class MobileReleaseSpec(Model):
    """A staged rollout of one app version on one platform."""

    platform_ref: PlatformRef = Field(description="The MobilePlatform serving the app.")
    app: AppVersion = Field(description="The version being released.")
    channel: str = Field(default="production", max_length=63, description="Release channel.")
    steps: list[StepSpec] = Field(min_length=1, max_length=50, description="The rollout steps.")
    gates: GatesSpec = Field(default_factory=GatesSpec, description="When to stop.")
    flags: list[FlagSpec] = Field(default_factory=list, max_length=50, description="Flags.")
    store: StoreSpec = Field(default_factory=StoreSpec, description="Store staged rollout.")
    failure_policy: FailurePolicy = Field(
        default=FailurePolicy.HALT, description="pause or halt when a gate fails."
    )

    model_config = Model.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
                "setWeight percentages must not go down from one step to the next",
                field_path=".steps",
            ),
            cel(
                "self.app == oldSelf.app",
                "app is immutable: apply a new MobileRelease",
                field_path=".app",
            ),
        )
    }

    def to_steps(self) -> list[Step]:
        return [s.to_step() for s in self.steps]


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HALTED = "Halted"
    COMPLETED = "Completed"


class AnalysisStatus(Model):
    verdict: str = Field(description="pass, fail or inconclusive.")
    reasons: list[str] = Field(default_factory=list, description="Why.")
    crash_free_sessions: float | None = Field(default=None, description="Percent.")
    crash_free_users: float | None = Field(default=None, description="Percent.")
    sessions: int | None = Field(default=None, description="Sessions measured.")
    users: int | None = Field(default=None, description="Users measured.")
    at: str | None = Field(default=None, description="When (RFC 3339).")


class DecisionRecord(Model):
    at: str = Field(description="When (RFC 3339).")
    action: str = Field(description="advance, wait, pause, halt, complete, resume.")
    step: int = Field(description="The step after the decision.")
    weight: int = Field(description="The percentage after the decision.")
    reason: str = Field(description="Why.")


class MobileReleaseStatus(Model):
    phase: Phase = Field(default=Phase.PENDING, description="Where the release is.")
    current_step: int = Field(default=0, description="The step being run (0-based).")
    weight: int = Field(default=0, description="The percentage exposed.")
    step_started_at: str | None = Field(default=None, description="When the step started.")
    consecutive_failures: int = Field(default=0, description="Failed measurements in a row.")
    last_analysis: AnalysisStatus | None = Field(default=None, description="The last analysis.")
    history: list[DecisionRecord] = Field(
        default_factory=list, max_length=100, description="The last decisions, newest last."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")
    observed_generation: int | None = Field(default=None, description="Spec generation seen.")
