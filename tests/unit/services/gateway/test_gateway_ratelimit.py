"""GCRA arithmetic, all-or-nothing decisions and the RateLimit headers."""

from __future__ import annotations

import pytest

from mobileplane.services.gateway.ratelimit import (
    Counted,
    Limits,
    Quota,
    applicable,
    decide,
    gcra,
    headers,
)

PER_SECOND = Quota("ip", limit=3, window_seconds=3)  # one a second, burst of three


def test_worked_example_from_the_docstring() -> None:
    tat: float | None = None
    allowed = []
    for _ in range(4):
        step = gcra(tat, 0.0, PER_SECOND)
        allowed.append(step.usage.allowed)
        if step.usage.allowed:
            tat = step.new_tat
    assert allowed == [True, True, True, False]
    refused = gcra(tat, 0.0, PER_SECOND).usage
    assert refused.retry_after == pytest.approx(1.0)
    assert refused.remaining == 0


@pytest.mark.parametrize(
    ("name", "tat", "now", "allowed", "remaining", "reset", "retry_after"),
    [
        ("empty bucket", None, 10.0, True, 2, 1.0, 0.0),
        ("old TAT is a full bucket", 2.0, 10.0, True, 2, 1.0, 0.0),
        ("two used", 12.0, 10.0, True, 0, 3.0, 0.0),
        ("full", 13.0, 10.0, False, 0, 3.0, 1.0),
        ("refilled a little", 13.0, 11.5, True, 0, 2.5, 0.0),
    ],
)
def test_gcra(
    name: str,
    tat: float | None,
    now: float,
    allowed: bool,
    remaining: int,
    reset: float,
    retry_after: float,
) -> None:
    usage = gcra(tat, now, PER_SECOND).usage
    assert (usage.allowed, usage.remaining) == (allowed, remaining), name
    assert usage.reset == pytest.approx(reset), name
    assert usage.retry_after == pytest.approx(retry_after), name


def test_a_refusal_by_one_quota_counts_in_none() -> None:
    user = Counted(Quota("user", 10, 10), "alice")
    ip = Counted(PER_SECOND, "1.2.3.4")
    verdict = decide([None, 13.0], 10.0, [user, ip])
    assert not verdict.allowed
    assert verdict.retry_after == 1
    user_usage = verdict.usages[0]
    assert user_usage.allowed and user_usage.remaining == 10  # untouched


def test_headers_name_every_quota() -> None:
    verdict = decide(
        [None, 13.0], 10.0, [Counted(Quota("user", 10, 60), "a"), Counted(PER_SECOND, "b")]
    )
    assert headers(verdict) == {
        "ratelimit-policy": '"user";q=10;w=60, "ip";q=3;w=3',
        "ratelimit": '"user";r=10;t=0, "ip";r=0;t=3',
        "retry-after": "1",
    }
    allowed = decide([None], 0.0, [Counted(PER_SECOND, "b")])
    assert "retry-after" not in headers(allowed)


@pytest.mark.parametrize(
    ("subject", "ip", "expected"),
    [
        ("alice", "1.2.3.4", ["user", "ip", "route"]),
        (None, "1.2.3.4", ["ip", "route"]),
        (None, None, ["route"]),
    ],
)
def test_applicable_quotas(subject: str | None, ip: str | None, expected: list[str]) -> None:
    limits = Limits(user=Quota("user", 1, 1), ip=Quota("ip", 1, 1), route=Quota("route", 1, 1))
    counted = applicable(limits, subject=subject, client_ip=ip, route="/sync/")
    assert [c.quota.name for c in counted] == expected


def test_quotas_are_checked() -> None:
    with pytest.raises(ValueError, match="limit"):
        Quota("ip", 0, 1)
