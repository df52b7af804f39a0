"""``create_app`` wires the kit: probes, errors, request ids, and a lifespan that opens and
closes the database and Redis clients (here pointed at closed ports: nothing is listening)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import APIRouter, FastAPI

from mobileplane.services.kit.app import create_app
from mobileplane.services.kit.db import Database
from mobileplane.services.kit.errors import NotFound
from mobileplane.services.kit.settings import KitSettings

ClientFactory = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for_closed_ports() -> KitSettings:
    return KitSettings(
        service_name="unit",
        database_url=f"postgresql://u:pw-not-placeholder@127.0.0.1:{closed_port()}/d",
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        log_format="text",
    )


def items_router() -> APIRouter:
    router = APIRouter(prefix="/items")

    @router.get("/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        raise NotFound(f"no item {item_id}")

    return router


async def test_app_wires_kit_and_reports_dependencies_down(client_for: ClientFactory) -> None:
    started: list[str] = []
    stopped: list[str] = []

    async def on_start(app: FastAPI) -> None:
        started.append(type(app.state.database).__name__)

    async def on_stop(app: FastAPI) -> None:
        stopped.append("stopped")

    app = create_app(
        name="unit",
        routers=[items_router()],
        settings=settings_for_closed_ports,
        on_startup=[on_start],
        on_shutdown=[on_stop],
        configure_logs=False,
    )
    async with app.router.lifespan_context(app), client_for(app) as client:
        assert isinstance(app.state.database, Database)
        assert started == ["Database"]
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        missing = await client.get("/items/42", headers={"x-request-id": "unit-1"})
    assert stopped == ["stopped"]
    assert health.status_code == 200
    assert ready.status_code == 503
    assert sorted(ready.json()["failed"]) == ["postgres", "redis"]
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "not_found",
        "message": "no item 42",
        "details": None,
        "request_id": "unit-1",
    }
    assert missing.headers["x-request-id"] == "unit-1"


async def test_app_without_dependencies_is_ready(client_for: ClientFactory) -> None:
    app = create_app(
        name="bare",
        settings=settings_for_closed_ports(),
        use_database=False,
        use_redis=False,
        configure_logs=False,
    )
    async with app.router.lifespan_context(app), client_for(app) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {}}


def test_creating_the_app_reads_no_settings() -> None:
    def explode() -> KitSettings:
        raise AssertionError("settings must be loaded at startup, not at create_app")

    create_app(name="lazy", settings=explode)
