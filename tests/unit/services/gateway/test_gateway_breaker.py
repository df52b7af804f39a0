"""The circuit breaker's state machine, case by case."""

from __future__ import annotations

import pytest

from mobileplane.services.gateway.breaker import (
    Breaker,
    BreakerConfig,
    admit,
    record_failure,
    record_success,
    release_probe,
)

CONFIG = BreakerConfig(failure_threshold=3, cooldown_seconds=10, half_open_probes=1)


@pytest.mark.parametrize(
    ("name", "breaker", "now", "allowed", "state_after", "retry_after"),
    [
        ("closed admits", Breaker(), 0, True, "closed", 0),
        ("open refuses during cool-down", Breaker("open", opened_at=100), 103, False, "open", 7),
        ("open rounds the wait up", Breaker("open", opened_at=100), 109.5, False, "open", 1),
        (
            "cool-down over: half-open probe",
            Breaker("open", opened_at=100),
            110,
            True,
            "half-open",
            0,
        ),
        (
            "one probe at a time",
            Breaker("half-open", opened_at=100, probes=1),
            111,
            False,
            "half-open",
            1,
        ),
    ],
)
def test_admit(
    name: str, breaker: Breaker, now: float, allowed: bool, state_after: str, retry_after: int
) -> None:
    admission = admit(breaker, CONFIG, now)
    assert admission.allowed is allowed, name
    assert admission.breaker.state == state_after, name
    assert admission.retry_after == retry_after, name


@pytest.mark.parametrize(
    ("name", "breaker", "expected"),
    [
        ("first failure counts", Breaker(), Breaker(failures=1)),
        ("below threshold", Breaker(failures=1), Breaker(failures=2)),
        ("threshold opens", Breaker(failures=2), Breaker("open", opened_at=50)),
        (
            "failed probe reopens",
            Breaker("half-open", opened_at=1, probes=1),
            Breaker("open", opened_at=50),
        ),
        (
            "late failure keeps the cool-down",
            Breaker("open", opened_at=40),
            Breaker("open", opened_at=40),
        ),
    ],
)
def test_record_failure(name: str, breaker: Breaker, expected: Breaker) -> None:
    assert record_failure(breaker, CONFIG, 50) == expected, name


def test_success_closes_and_forgets_failures() -> None:
    assert record_success(Breaker(failures=2)) == Breaker()
    assert record_success(Breaker("half-open", opened_at=1, probes=1)) == Breaker()


def test_a_released_probe_frees_its_slot() -> None:
    assert release_probe(Breaker("half-open", probes=1)) == Breaker("half-open", probes=0)
    assert release_probe(Breaker()) == Breaker()


def test_the_whole_cycle() -> None:
    breaker, now = Breaker(), 0.0
    for _ in range(3):
        admission = admit(breaker, CONFIG, now)
        assert admission.allowed
        breaker = record_failure(admission.breaker, CONFIG, now)
    assert breaker.state == "open"
    assert not admit(breaker, CONFIG, 5).allowed
    probe = admit(breaker, CONFIG, 10)
    assert probe.allowed and probe.breaker.state == "half-open"
    assert record_success(probe.breaker).state == "closed"


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerConfig(failure_threshold=0)
