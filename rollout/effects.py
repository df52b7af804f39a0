"""What the outside world should look like for a release where it is now — pure.

The controller does not replay decisions onto the providers; it computes the **desired**
state of each from the release's phase, step and weight, and the providers converge to it
idempotently. So a restarted controller (or one that lost an answer) re-applies the same
state, and nothing is done twice.

- **Flags** (Unleash): a flag that follows the weight has a gradual rollout at the release's
  percentage; one with ``enableAtStep`` is at 100 % from that step on, off before; every flag
  is **off** when the release is halted; on completion all are at 100 %.
- **Store**: Google Play's staged rollout follows the weight (``userFraction``; ``halted`` on
  halt; ``completed`` at the end); the App Store's phased release has Apple's fixed 7-day
  schedule, so only its state follows (``ACTIVE``, ``PAUSED`` on pause or halt, ``COMPLETE``).
- **App config**: a halted release's version is marked halted (apps already installed learn
  it at their next read); resumed, the mark goes; completed, it becomes the latest version.
- A paused release holds everything where it is (``None``: leave as is).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mobileplane.rollout.engine import Phase, Progress
from mobileplane.rollout.spec import FlagSpec, MobileReleaseSpec, Store


@dataclass(frozen=True)
class FlagState:
    name: str
    enabled: bool
    percentage: int


class StoreAction(StrEnum):
    ROLLOUT = "rollout"  # Google: inProgress at a fraction; Apple: ACTIVE
    PAUSE = "pause"  # Apple: PAUSED (Google has no pause: halted is its stop)
    HALT = "halt"  # Google: halted; Apple: PAUSED (Apple has no halt)
    COMPLETE = "complete"


@dataclass(frozen=True)
class StoreState:
    kind: Store
    action: StoreAction
    fraction: float | None = None  # Google's userFraction while in progress


@dataclass(frozen=True)
class AppConfigState:
    halted: bool
    latest: bool  # this version is the latest one


@dataclass(frozen=True)
class Effects:
    flags: tuple[FlagState, ...]
    store: StoreState | None
    appconfig: AppConfigState | None


def _flag(flag: FlagSpec, progress: Progress) -> FlagState:
    if progress.phase is Phase.HALTED:
        return FlagState(flag.name, False, 0)
    if progress.phase is Phase.COMPLETED:
        return FlagState(flag.name, True, 100)
    if flag.follow_weight:
        return FlagState(flag.name, True, progress.weight)
    on = flag.enable_at_step is not None and progress.step >= flag.enable_at_step
    return FlagState(flag.name, on, 100 if on else 0)


def _store(spec: MobileReleaseSpec, progress: Progress) -> StoreState | None:
    kind = spec.store.kind
    if kind is Store.NONE:
        return None
    phase = progress.phase
    if phase is Phase.COMPLETED:
        return StoreState(kind, StoreAction.COMPLETE)
    if phase is Phase.HALTED:
        return StoreState(kind, StoreAction.HALT)
    if phase is Phase.PAUSED:
        # Google Play cannot pause without halting: hold its fraction where it is.
        return StoreState(kind, StoreAction.PAUSE) if kind is Store.APP_STORE else None
    if progress.weight <= 0:
        return None  # nothing exposed yet
    if kind is Store.GOOGLE_PLAY and progress.weight >= 100:
        return StoreState(kind, StoreAction.COMPLETE)
    return StoreState(kind, StoreAction.ROLLOUT, round(progress.weight / 100, 4))


def desired(spec: MobileReleaseSpec, progress: Progress) -> Effects | None:
    """The desired outside state; ``None`` while pending or paused with nothing to hold."""
    if progress.phase is Phase.PENDING:
        return None
    if progress.phase is Phase.PAUSED:
        store = _store(spec, progress)
        return Effects((), store, None)
    flags = tuple(_flag(f, progress) for f in spec.flags)
    appconfig = AppConfigState(
        halted=progress.phase is Phase.HALTED, latest=progress.phase is Phase.COMPLETED
    )
    return Effects(flags, _store(spec, progress), appconfig)
