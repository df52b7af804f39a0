"""Every error, ours or the framework's, is rendered in the one JSON shape."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from mobileplane.services.kit.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    code_for_status,
    install_error_handlers,
)
from mobileplane.services.kit.logging import RequestContextMiddleware

ClientFactory = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


class Item(BaseModel):
    name: str
    count: int


def make_app(error: Exception | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/raise")
    async def raise_it() -> None:
        assert error is not None
        raise error

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    return app


@pytest.mark.parametrize(
    ("error", "status", "code", "headers"),
    [
        pytest.param(NotFound("no such profile"), 404, "not_found", {}, id="not-found"),
        pytest.param(Conflict("taken"), 409, "conflict", {}, id="conflict"),
        pytest.param(BadRequest("bad"), 400, "bad_request", {}, id="bad-request"),
        pytest.param(ValidationFailed("rule"), 422, "validation_failed", {}, id="validation"),
        pytest.param(
            Unauthorized(), 401, "unauthorized", {"www-authenticate": "Bearer"}, id="unauthorized"
        ),
        pytest.param(Forbidden("nope"), 403, "forbidden", {}, id="forbidden"),
        pytest.param(
            RateLimited(retry_after=7), 429, "rate_limited", {"retry-after": "7"}, id="rate-limited"
        ),
        pytest.param(
            Unavailable(retry_after=2), 503, "unavailable", {"retry-after": "2"}, id="unavailable"
        ),
        pytest.param(
            NotFound("gone", code="object_not_found"), 404, "object_not_found", {}, id="own-code"
        ),
        pytest.param(ServiceError("base"), 500, "internal_error", {}, id="base"),
    ],
)
async def test_service_errors(
    client_for: ClientFactory, error: ServiceError, status: int, code: str, headers: dict[str, str]
) -> None:
    async with client_for(make_app(error)) as client:
        response = await client.get("/raise", headers={"x-request-id": "req-1"})
    assert response.status_code == status
    assert response.json() == {
        "error": {
            "code": code,
            "message": error.message,
            "details": None,
            "request_id": "req-1",
        }
    }
    for name, value in headers.items():
        assert response.headers[name] == value


async def test_details_are_rendered(client_for: ClientFactory) -> None:
    error = Conflict("handle taken", details={"field": "handle", "suggestions": ["ann2"]})
    async with client_for(make_app(error)) as client:
        response = await client.get("/raise")
    assert response.json()["error"]["details"] == {"field": "handle", "suggestions": ["ann2"]}


async def test_request_validation_is_422_with_field_details(client_for: ClientFactory) -> None:
    async with client_for(make_app()) as client:
        response = await client.post("/items", json={"name": "x", "count": "many-secret-input"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"] == [
        {"loc": ["body", "count"], "message": error["details"][0]["message"], "type": "int_parsing"}
    ]
    assert "many-secret-input" not in response.text
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        pytest.param("GET", "/nowhere", 404, "not_found", id="unknown-route"),
        pytest.param("DELETE", "/items", 405, "method_not_allowed", id="wrong-method"),
    ],
)
async def test_framework_http_errors(
    client_for: ClientFactory, method: str, path: str, status: int, code: str
) -> None:
    async with client_for(make_app()) as client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("exc", "message", "details"),
    [
        pytest.param(HTTPException(418, "short and stout"), "short and stout", None, id="str"),
        pytest.param(HTTPException(400, {"why": "x"}), "Bad Request", {"why": "x"}, id="dict"),
    ],
)
async def test_http_exception(
    client_for: ClientFactory, exc: HTTPException, message: str, details: Any
) -> None:
    async with client_for(make_app(exc)) as client:
        response = await client.get("/raise")
    assert response.status_code == exc.status_code
    assert response.json()["error"]["message"] == message
    assert response.json()["error"]["details"] == details


async def test_unexpected_error_is_500_without_internals(client_for: ClientFactory) -> None:
    error = RuntimeError("password=hunter2 at /srv/app/secret.py")
    async with client_for(make_app(error)) as client:
        response = await client.get("/raise", headers={"x-request-id": "abc"})
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "An unexpected error occurred",
            "details": None,
            "request_id": "abc",
        }
    }
    assert "hunter2" not in response.text
    assert response.headers["x-request-id"] == "abc"


async def test_unexpected_error_without_middleware_has_same_shape(
    client_for: ClientFactory,
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("internal detail")

    async with client_for(app) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "internal detail" not in response.text


@pytest.mark.parametrize(
    ("status", "code"), [(404, "not_found"), (409, "conflict"), (599, "http_599")]
)
def test_code_for_status(status: int, code: str) -> None:
    assert code_for_status(status) == code
