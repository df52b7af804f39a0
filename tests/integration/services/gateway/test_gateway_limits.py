"""Rate limits shared through the real Redis, and what happens when Redis is down."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from mobileplane.operator.keys import SigningKey

pytestmark = pytest.mark.integration


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens once the probe is closed


async def test_a_burst_gets_429_with_ratelimit_headers_across_replicas(gateway: Any) -> None:
    limits = {"gateway_rate_limit_ip_requests": 3, "gateway_rate_limit_ip_window_seconds": 60}
    async with gateway(**limits) as one, gateway(**limits) as two:
        answers = [await (one if i % 2 else two).post("/auth/login") for i in range(5)]
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 200, 200, 429, 429]
    assert [a.headers["ratelimit"] for a in answers[:3]] == [
        '"ip";r=2;t=20',
        '"ip";r=1;t=40',
        '"ip";r=0;t=60',
    ]
    refused = answers[3]
    assert refused.headers["ratelimit-policy"] == '"ip";q=3;w=60'
    assert refused.headers["retry-after"] == "20"
    assert refused.json()["error"]["code"] == "rate_limited"


async def test_users_are_limited_separately_and_refusals_count_nowhere(
    gateway: Any, es_key: SigningKey, sign_token: Callable[..., str]
) -> None:
    limits = {
        "gateway_rate_limit_user_requests": 2,
        "gateway_rate_limit_ip_requests": 100,
    }
    alice = {"authorization": f"Bearer {sign_token(es_key, sub='alice')}"}
    bob = {"authorization": f"Bearer {sign_token(es_key, sub='bob')}"}
    async with gateway(**limits) as client:
        alice_statuses = [
            (await client.get("/sync/x", headers=alice)).status_code for _ in range(4)
        ]
        bob_answer = await client.get("/sync/x", headers=bob)
    assert alice_statuses == [200, 200, 429, 429]
    assert bob_answer.status_code == 200
    # The ip quota counted only the three admitted requests (refusals count nowhere).
    assert '"ip";r=97;' in bob_answer.headers["ratelimit"]
    assert '"user";r=1;' in bob_answer.headers["ratelimit"]


async def test_redis_down_fails_open_for_rate_limits_by_default(gateway: Any) -> None:
    async with gateway(redis_url=closed_port_url()) as client:
        response = await client.post("/auth/login")
    assert response.status_code == 200
    assert "ratelimit" not in response.headers


async def test_redis_down_fails_closed_when_configured(gateway: Any) -> None:
    async with gateway(redis_url=closed_port_url(), gateway_rate_limit_fail_open=False) as client:
        response = await client.post("/auth/login")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["retry-after"] == "1"


async def test_revocation_fails_closed_by_default_and_open_when_configured(
    gateway: Any, es_key: SigningKey, sign_token: Callable[..., str]
) -> None:
    headers = {"authorization": f"Bearer {sign_token(es_key)}"}
    async with gateway(redis_url=closed_port_url()) as client:
        closed = await client.get("/sync/x", headers=headers)
    async with gateway(redis_url=closed_port_url(), gateway_revocation_fail_open=True) as client:
        opened = await client.get("/sync/x", headers=headers)
    assert closed.status_code == 503
    assert opened.status_code == 200
