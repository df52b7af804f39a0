"""The route table: parsing the operator's JSON, refusing bad tables, longest-prefix matching."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mobileplane.services.gateway.attempts import body_plan, failure_of, should_retry
from mobileplane.services.gateway.routes import RouteTableError, has_dot_segments, parse_route_table


def table(**changes: Any) -> dict[str, Any]:
    def route(prefix: str, mode: str = "jwt") -> dict[str, Any]:
        return {
            "service": prefix.strip("/").split("/")[0] or "root",
            "pathPrefix": prefix,
            "upstream": "http://svc.ns.svc:8080",
            "auth": {"mode": mode, "scopes": ["x"]} if mode == "jwt" else {"mode": mode},
            "timeoutSeconds": 10,
            "retries": {"max": 2, "methods": ["GET", "PUT"], "on": ["connect-failure", "503"]},
            "maxBodyBytes": 1024,
        }

    data: dict[str, Any] = {
        "version": 1,
        "issuer": "https://api.example",
        "audience": "https://api.example",
        "algorithms": ["ES256"],
        "jwksURL": "http://auth:8080/.well-known/jwks.json",
        "routes": [route("/auth/", "public"), route("/auth/admin/"), route("/sync/")],
    }
    data.update(changes)
    return data


def test_longest_prefix_wins_and_bare_prefix_matches() -> None:
    parsed = parse_route_table(json.dumps(table()))
    cases = {
        "/auth/login": "/auth/",
        "/auth/admin/users": "/auth/admin/",
        "/sync": "/sync/",
        "/sync/x": "/sync/",
        "/syncs": None,
        "/": None,
    }
    for path, prefix in cases.items():
        route = parsed.match(path)
        assert (route.path_prefix if route else None) == prefix, path


def test_the_operators_own_table_parses() -> None:
    # The exact shape operator/render/routes.py writes (canonical JSON, sorted keys).
    from mobileplane.operator.render.routes import IDEMPOTENT_METHODS, MAX_RETRIES, RETRY_ON

    rendered = table()
    rendered["routes"][0]["retries"] = {
        "max": MAX_RETRIES,
        "methods": list(IDEMPOTENT_METHODS),
        "on": list(RETRY_ON),
    }
    parsed = parse_route_table(json.dumps(rendered, sort_keys=True))
    assert parsed.routes[0].retries_method("DELETE")


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("alg none", {"algorithms": ["none"]}, "never none or HS"),
        ("hmac", {"algorithms": ["ES256", "HS256"]}, "HS256 not allowed"),
        ("version", {"version": 2}, "version"),
        ("no jwks for jwt routes", {"jwksURL": None}, "need jwksURL"),
        ("unknown field", {"extra": 1}, "extra"),
    ],
)
def test_bad_tables_are_startup_errors(name: str, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(RouteTableError, match=message):
        parse_route_table(json.dumps(table(**changes)))


@pytest.mark.parametrize(
    ("route_change", "message"),
    [
        ({"upstream": "ftp://x"}, "http"),
        ({"upstream": "http://x/base"}, "paths are forwarded unchanged"),
        ({"pathPrefix": "sync/"}, "absolute path"),
        ({"retries": {"max": 1, "methods": ["POST"], "on": []}}, "idempotent"),
        ({"auth": {"mode": "public", "scopes": ["a"]}}, "public route cannot"),
        ({"timeoutSeconds": 0}, "greater than 0"),
    ],
)
def test_bad_routes_are_refused(route_change: dict[str, Any], message: str) -> None:
    data = table()
    data["routes"][2].update(route_change)
    with pytest.raises(RouteTableError, match=message):
        parse_route_table(json.dumps(data))


def test_not_json_and_duplicates() -> None:
    with pytest.raises(RouteTableError, match="not JSON"):
        parse_route_table("{")
    data = table()
    data["routes"].append(data["routes"][2])
    with pytest.raises(RouteTableError, match="appear twice"):
        parse_route_table(json.dumps(data))


@pytest.mark.parametrize(
    ("path", "dotted"),
    [
        ("/sync/x", False),
        ("/sync/x.json", False),
        ("/sync/../auth", True),
        ("/sync/%2e%2e/auth", True),
        ("/sync/.", True),
        ("/sync/a%2Fb", True),
        ("/sync/a\\b", True),
    ],
)
def test_dot_segments(path: str, dotted: bool) -> None:
    assert has_dot_segments(path) is dotted


ROUTE = parse_route_table(json.dumps(table())).routes[2]  # GET, PUT; connect-failure, 503


@pytest.mark.parametrize(
    ("method", "length", "chunked", "kind", "replayable"),
    [
        ("GET", None, False, "none", True),
        ("POST", 0, False, "none", True),
        ("PUT", 100, False, "buffer", True),
        ("PUT", 100_000, False, "stream", False),
        ("PUT", None, True, "stream", False),
        ("POST", 100, False, "stream", False),
    ],
)
def test_body_plans(
    method: str, length: int | None, chunked: bool, kind: str, replayable: bool
) -> None:
    plan = body_plan(ROUTE, method, length, chunked, buffer_limit=64 * 1024)
    assert (plan.kind, plan.replayable) == (kind, replayable)


@pytest.mark.parametrize(
    ("method", "failure", "attempts", "replayable", "retry"),
    [
        ("GET", "connect-failure", 1, True, True),
        ("GET", "503", 2, True, True),
        ("GET", "503", 3, True, False),  # max 2 retries
        ("GET", "502", 1, True, False),  # not in the route's "on"
        ("GET", "timeout", 1, True, False),
        ("GET", "protocol-error", 1, True, False),
        ("POST", "connect-failure", 1, True, False),
        ("PUT", "connect-failure", 1, False, False),
    ],
)
def test_retry_rules(
    method: str, failure: Any, attempts: int, replayable: bool, retry: bool
) -> None:
    assert should_retry(ROUTE, method, failure, attempts, replayable) is retry


def test_failure_statuses() -> None:
    assert [failure_of(s) for s in (200, 500, 502, 503, 504)] == [None, None, "502", "503", "504"]


@pytest.mark.parametrize("value", ["\u00b9", "-1", "1e3", " ", "9" * 19])
def test_a_content_length_that_is_not_a_plain_integer_is_a_400(value: str) -> None:
    from starlette.requests import Request

    from mobileplane.services.gateway.proxy import _content_length
    from mobileplane.services.kit.errors import BadRequest

    raw = value.encode("latin-1")
    request = Request({"type": "http", "headers": [(b"content-length", raw)]})
    with pytest.raises(BadRequest):
        _content_length(request)
