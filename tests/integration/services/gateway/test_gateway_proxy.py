"""Proxying to real uvicorn upstreams: bodies, retries, timeouts, the circuit breaker, streams."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.uvicorn_server import ServerHandle

from mobileplane.operator.keys import SigningKey
from mobileplane.services.gateway.service import create_gateway_app
from mobileplane.services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


def free_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def auth(es_key: SigningKey, sign_token: Callable[..., str]) -> dict[str, str]:
    return {"authorization": f"Bearer {sign_token(es_key)}"}


async def test_bodies_over_the_limit_get_413_up_front_and_while_streaming(
    gateway: Any, auth: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 20_000

    async with gateway() as client:
        declared = await client.post("/sync/upload", headers=auth, content=b"x" * 70_000)
        chunked = await client.post("/sync/upload", headers=auth, content=chunks())
        small = await client.post("/auth/login", content=b"x" * 1024)
        over = await client.post("/auth/login", content=b"x" * 1025)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"
    assert chunked.status_code == 413
    assert small.status_code == 200 and small.json()["body_bytes"] == 1024
    assert over.status_code == 413


async def test_idempotent_requests_are_retried_and_posts_are_not(
    gateway: Any, auth: dict[str, str]
) -> None:
    async with gateway() as client:
        get = await client.get("/sync/flaky/a/2", headers=auth)
        put = await client.put("/sync/flaky/b/1", headers=auth, content=b'{"v": 1}')
        post = await client.post("/sync/flaky/c/1", headers=auth, content=b"{}")
        exhausted = await client.get("/sync/flaky/d/3", headers=auth)
    assert get.status_code == 200 and get.json()["attempt"] == 3
    assert (
        put.status_code == 200
        and put.json()["body_sha256"] == hashlib.sha256(b'{"v": 1}').hexdigest()
    )
    assert post.status_code == 503  # the upstream's own answer, passed through
    assert post.json() == {"status": "flaky"}
    assert exhausted.status_code == 503


async def test_an_unreachable_upstream_is_502_and_a_slow_one_504(
    gateway: Any, make_table: Callable[..., dict[str, Any]], auth: dict[str, str]
) -> None:
    table = make_table(profiles={"upstream": free_port_url()}, sync={"timeoutSeconds": 0.3})
    table["routes"][2]["auth"] = {"mode": "public"}
    async with gateway(routes=table) as client:
        unreachable = await client.get("/profiles/me")
        slow = await client.get("/sync/hang", headers=auth)
    assert unreachable.status_code == 502
    assert unreachable.json()["error"]["code"] == "bad_gateway"
    assert slow.status_code == 504
    assert slow.json()["error"]["code"] == "gateway_timeout"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def hello_app() -> FastAPI:
    app = FastAPI()

    @app.get("/profiles/me")
    async def me() -> dict[str, str]:
        return {"hello": "world"}

    return app


@pytest.fixture
def late_upstream() -> Iterator[ServerHandle]:
    handle = ServerHandle(hello_app)  # not started: the test starts it
    yield handle
    handle.stop()


async def test_the_circuit_opens_after_failures_and_closes_after_a_good_probe(
    gateway: Any, make_table: Callable[..., dict[str, Any]], late_upstream: ServerHandle
) -> None:
    table = make_table(
        profiles={"upstream": late_upstream.url, "auth": {"mode": "public"}, "retries": {}}
    )
    clock = Clock()
    breaker = {"gateway_breaker_failure_threshold": 2, "gateway_breaker_cooldown_seconds": 10}
    async with gateway(routes=table, clock=clock, **breaker) as client:
        first = await client.get("/profiles/me")
        second = await client.get("/profiles/me")
        opened = await client.get("/profiles/me")
        late_upstream.start()
        still_open = await client.get("/profiles/me")  # the upstream is up, but not asked
        clock.now += 11
        probe = await client.get("/profiles/me")
        after = await client.get("/profiles/me")
    assert [first.status_code, second.status_code] == [502, 502]
    assert opened.status_code == 503 and opened.headers["retry-after"] == "10"
    assert "circuit open" in opened.json()["error"]["message"]
    assert still_open.status_code == 503
    assert probe.status_code == 200 and after.status_code == 200


@pytest.fixture
def gateway_server(
    upstream: ServerHandle,
    jwks_server: ServerHandle,
    make_table: Callable[..., dict[str, Any]],
    redis_url: str,
    redis_prefix: str,
) -> Iterator[str]:
    table = make_table(sync={"maxBodyBytes": 50 * 1024 * 1024})
    settings = GatewaySettings(
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        log_format="text",
        gateway_routes=json.dumps(table),
    )
    handle = ServerHandle(lambda: create_gateway_app(settings, configure_logs=False))
    handle.start()
    yield handle.url
    handle.stop()


async def test_large_bodies_stream_through_a_real_server_both_ways(
    gateway_server: str, auth: dict[str, str]
) -> None:
    size = 20 * 1024 * 1024
    digest = hashlib.sha256()

    async def upload() -> AsyncIterator[bytes]:
        for i in range(size // 65536):
            chunk = bytes([i % 256]) * 65536
            digest.update(chunk)
            yield chunk

    async with httpx.AsyncClient(base_url=gateway_server, timeout=60) as client:
        sent = await client.post("/sync/upload", headers=auth, content=upload())
        assert sent.status_code == 200, sent.text
        assert sent.json()["body_bytes"] == size
        assert sent.json()["body_sha256"] == digest.hexdigest()
        received = 0
        async with client.stream("GET", f"/sync/download/{size}", headers=auth) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_raw():
                received += len(chunk)
        assert received == size


_header_names = st.sampled_from(
    [
        "authorization",
        "x-mobileplane-subject",
        "content-type",
        "x-request-id",
        "traceparent",
        "connection",
        "te",
        "x-forwarded-for",
        "accept",
        "x-anything",
    ]
)
_header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60
)
_paths = st.one_of(
    st.sampled_from(["/sync/", "/auth/", "/profiles/", "/", "/healthz", "/sync"]),
    st.text(alphabet="/abc.%2e5fsyncauth?&=#", max_size=40).map(lambda p: "/" + p),
)


@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    path=_paths,
    headers=st.dictionaries(_header_names, _header_values, max_size=5),
    body=st.binary(max_size=2048),
    token=st.one_of(st.none(), st.sampled_from(["valid", "junk", "bearer-empty"])),
)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_fuzzing_the_gateway_never_gives_a_5xx(
    gateway: Any,
    auth: dict[str, str],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    token: str | None,
) -> None:
    if token == "valid":
        headers.update(auth)
    elif token == "junk":
        headers["authorization"] = "Bearer " + body[:40].hex()
    elif token == "bearer-empty":
        headers["authorization"] = "Bearer "
    async with gateway(gateway_rate_limit_ip_requests=0) as client:
        response = await client.request(method, path, headers=headers, content=body)
    assert response.status_code < 500, (response.status_code, response.text)


async def test_unknown_paths_and_dot_segments_are_refused(gateway: Any) -> None:
    async with gateway() as client:
        unknown = await client.get("/nowhere")
        dotted = await client.get("/auth/%2e%2e/sync/x")
        encoded_slash = await client.get("/auth/..%2fsync")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "no_route"
    assert dotted.status_code == 400
    assert encoded_slash.status_code == 400
