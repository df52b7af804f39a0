"""The API the gateway describes: the upstreams' documents merged as the route table routes."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.services.gateway.apidocs import merge_openapi
from mobileplane.services.gateway.routes import RouteTable

SYNC, AUTH = "http://sync:8080", "http://auth:8080"
TABLE = RouteTable.model_validate(
    {
        "version": 1,
        "issuer": "https://api.example",
        "audience": "https://api.example",
        "algorithms": ["ES256"],
        "jwksURL": f"{AUTH}/.well-known/jwks.json",
        "routes": [
            {"service": "sync", "pathPrefix": "/sync/", "upstream": SYNC,
             "auth": {"mode": "jwt", "scopes": ["sync"]}, "timeoutSeconds": 5,
             "maxBodyBytes": 1000},
            {"service": "auth", "pathPrefix": "/auth/", "upstream": AUTH,
             "auth": {"mode": "public"}, "timeoutSeconds": 5, "maxBodyBytes": 1000},
        ],
    }
)  # fmt: skip
GATEWAY: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "mobileplane gateway", "version": "0.1.0"},
    "paths": {"/readyz": {"get": {"summary": "the gateway's readiness"}}},
}


def operation(summary: str, **extra: Any) -> dict[str, Any]:
    return {"get": {"summary": summary, **extra}}


def doc(paths: dict[str, Any], schemas: dict[str, Any] | None = None, **extra: Any) -> Any:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas or {}}, **extra}


def test_paths_kept_are_those_the_gateway_routes_to_their_upstream() -> None:
    documents = {
        SYNC: doc(
            {
                "/sync/upload": operation("upload"),
                "/readyz": operation("sync's readiness"),  # the gateway answers it itself
                "/auth/token": operation("not routed to sync"),
                "/internal": operation("not routed at all"),
            }
        ),
        AUTH: doc({"/auth/token": operation("token")}),
    }
    merged = merge_openapi(GATEWAY, documents, TABLE)
    assert {p: i["get"]["summary"] for p, i in merged["paths"].items()} == {
        "/readyz": "the gateway's readiness",
        "/sync/upload": "upload",
        "/auth/token": "token",
    }


def test_a_document_served_under_a_root_path_is_prefixed_as_routed() -> None:
    documents = {SYNC: doc({"/upload": operation("upload")}, servers=[{"url": "/sync"}])}
    assert "/sync/upload" in merge_openapi(GATEWAY, documents, TABLE)["paths"]


def test_jwt_routes_need_the_bearer_token_and_identity_headers_are_the_gateways() -> None:
    identity = {"name": "x-mobileplane-subject", "in": "header", "schema": {"type": "string"}}
    if_match = {"name": "if-match", "in": "header", "schema": {"type": "string"}}
    documents = {
        SYNC: doc({"/sync/upload": operation("upload", parameters=[identity, if_match])}),
        AUTH: doc({"/auth/token": operation("token", parameters=[identity])}),
    }
    merged = merge_openapi(GATEWAY, documents, TABLE)
    upload = merged["paths"]["/sync/upload"]["get"]
    assert upload["security"] == [{"bearer": []}]
    assert upload["description"] == "Needs an access token with scope `sync`."
    assert upload["parameters"] == [if_match]
    assert upload["tags"] == ["sync"]
    token = merged["paths"]["/auth/token"]["get"]
    assert token["security"] == [] and "parameters" not in token
    assert merged["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize(
    ("auth_error", "expected_auth_ref"),
    [
        pytest.param({"type": "object"}, "#/components/schemas/Error", id="equal-shared"),
        pytest.param({"type": "string"}, "#/components/schemas/auth_Error", id="different-renamed"),
    ],
)
def test_schemas_of_one_name(auth_error: dict[str, Any], expected_auth_ref: str) -> None:
    ref = {"$ref": "#/components/schemas/Error"}
    documents = {
        SYNC: doc(
            {"/sync/upload": operation("upload", responses=ref)}, {"Error": {"type": "object"}}
        ),
        AUTH: doc({"/auth/token": operation("token", responses=ref)}, {"Error": auth_error}),
    }
    merged = merge_openapi(GATEWAY, documents, TABLE)
    assert merged["paths"]["/sync/upload"]["get"]["responses"] == ref
    assert merged["paths"]["/auth/token"]["get"]["responses"] == {"$ref": expected_auth_ref}
    schemas = merged["components"]["schemas"]
    assert schemas["Error"] == {"type": "object"}
    assert schemas.get("auth_Error", auth_error) == auth_error


def test_an_unreadable_upstream_is_named_and_the_rest_described() -> None:
    merged = merge_openapi(GATEWAY, {SYNC: "ConnectError", AUTH: doc({"/auth/token": {}})}, TABLE)
    assert set(merged["paths"]) == {"/readyz", "/auth/token"}
    assert "sync (http://sync:8080): ConnectError" in merged["info"]["description"]
