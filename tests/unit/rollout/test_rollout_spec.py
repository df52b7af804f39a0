"""The MobileRelease models: the committed CRD is the generated one; the examples parse."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from mobileplane.rollout.crdgen import render
from mobileplane.rollout.engine import StepKind
from mobileplane.rollout.spec import MobileReleaseSpec, parse_duration

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_crd_is_the_generated_one() -> None:
    committed = (ROOT / "crds" / "mobilerelease.yaml").read_text()
    assert committed == render(), (
        "regenerate: python -m mobileplane.rollout.crdgen > crds/mobilerelease.yaml"
    )


@pytest.mark.parametrize("name", ["mobilerelease-minimal.yaml", "mobilerelease-complete.yaml"])
def test_examples_parse_and_become_engine_input(name: str) -> None:
    doc = yaml.safe_load((ROOT / "crds" / "examples" / name).read_text())
    spec = MobileReleaseSpec.model_validate(doc["spec"])
    steps = spec.to_steps()
    assert steps[0].kind is StepKind.SET_WEIGHT
    gates = spec.gates.to_gates()
    assert 0 < gates.min_crash_free_sessions <= 1


def test_complete_example_converts_units() -> None:
    doc = yaml.safe_load((ROOT / "crds" / "examples" / "mobilerelease-complete.yaml").read_text())
    spec = MobileReleaseSpec.model_validate(doc["spec"])
    gates = spec.gates.to_gates()
    assert gates.min_crash_free_sessions == pytest.approx(0.995)
    assert gates.max_degradation == pytest.approx(0.002)
    assert gates.max_error_rate == pytest.approx(0.05)
    assert spec.to_steps()[5].duration == timedelta(hours=12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "1d", "h1", "1h 30m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
