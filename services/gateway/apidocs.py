"""The platform's API as clients reach it: the services' OpenAPI documents merged into one.

The gateway serves it at ``/openapi.json`` (and Swagger UI at ``/docs``): before, its docs
page described only the gateway's own ``/healthz`` and ``/readyz`` (issue 21 §4). Each
upstream's document is read from ``<upstream>/openapi.json``; :func:`merge_openapi` keeps of
it what the gateway routes to that upstream:

- a path is the upstream's path under the prefix its document declares (``servers[0]``, for
  an app mounted under a root path), which is how the gateway routes it (paths are forwarded
  unchanged, ``routes.py``); it is kept only if the route table sends that path to that
  upstream, and never when the gateway answers it itself (its probes);
- operations of ``jwt`` routes require the bearer token, their scopes named in the
  description; the identity headers are dropped from parameters (the gateway sets them);
- schemas of the same name are shared when equal and renamed ``<service>_<name>`` when not;
- an upstream whose document cannot be read is named in the description, not an error: the
  rest of the API is still described.

Pure: documents in, document out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from mobileplane.services.gateway.routes import Route, RouteTable
from mobileplane.services.kit.identity_contract import IDENTITY_HEADERS

Document = dict[str, Any]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCHEMA_REF = "#/components/schemas/"
BEARER = "bearer"
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def upstreams(table: RouteTable) -> list[str]:
    """Each upstream once, in route order."""
    return list(dict.fromkeys(route.upstream for route in table.routes))


def merge_openapi(
    gateway: Mapping[str, Any],
    documents: Mapping[str, Document | str],
    table: RouteTable,
) -> Document:
    """One document: ``gateway``'s own paths, then each upstream's (``documents`` by upstream
    URL; a string is why that upstream's could not be read)."""
    paths: dict[str, Any] = copy.deepcopy(dict(gateway.get("paths", {})))
    own = set(paths)
    schemas: dict[str, Any] = copy.deepcopy(dict(gateway.get("components", {}).get("schemas", {})))
    missing: list[str] = []
    for upstream in upstreams(table):
        document = documents.get(upstream, "not read")
        services = sorted({r.service for r in table.routes if r.upstream == upstream})
        if isinstance(document, str):
            missing.append(f"{', '.join(services)} ({upstream}): {document}")
            continue
        renames = _renames(document, schemas, services[0])
        document = _rewrite_refs(document, renames)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        prefix = _served_prefix(document)
        for path, item in document.get("paths", {}).items():
            public = prefix + path
            route = table.match(public)
            if route is None or route.upstream != upstream or public in own:
                continue
            paths[public] = _as_routed(item, route)
    description = (
        "Every service's API as clients reach it: through the API gateway, which validates "
        "the bearer token (from the platform's OpenID Provider) and routes by path."
    )
    if missing:
        description += "\n\nNot described (their API description could not be read): " + (
            "; ".join(missing)
        )
    merged: Document = {
        "openapi": gateway.get("openapi", "3.1.0"),
        "info": {
            "title": "mobileplane API",
            "version": gateway.get("info", {}).get("version", ""),
            "description": description,
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
    return merged


def _served_prefix(document: Mapping[str, Any]) -> str:
    servers = document.get("servers") or []
    if not servers:
        return ""
    return urlsplit(str(servers[0].get("url", ""))).path.rstrip("/")


def _as_routed(item: Mapping[str, Any], route: Route) -> dict[str, Any]:
    routed = copy.deepcopy(dict(item))
    routed["parameters"] = _without_identity(routed.get("parameters", []))
    if not routed["parameters"]:
        del routed["parameters"]
    for method in METHODS:
        operation = routed.get(method)
        if not isinstance(operation, dict):
            continue
        parameters = _without_identity(operation.get("parameters", []))
        if parameters:
            operation["parameters"] = parameters
        else:
            operation.pop("parameters", None)
        operation.setdefault("tags", [route.service])
        if route.auth.mode == "jwt":
            operation["security"] = [{BEARER: []}]
            needs = ", ".join(f"`{s}`" for s in route.auth.scopes)
            note = f"Needs an access token{f' with scope {needs}' if needs else ''}."
            operation["description"] = "\n\n".join(
                part for part in (operation.get("description", ""), note) if part
            )
        else:
            operation["security"] = []
    return routed


def _without_identity(parameters: list[Any]) -> list[Any]:
    return [
        p
        for p in parameters
        if not (
            isinstance(p, dict)
            and p.get("in") == "header"
            and str(p.get("name", "")).lower() in IDENTITY_HEADERS
        )
    ]


def _renames(
    document: Mapping[str, Any], merged: Mapping[str, Any], service: str
) -> dict[str, str]:
    """Schemas of ``document`` whose name is taken by a different schema: new names."""
    renames: dict[str, str] = {}
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if name in merged and merged[name] != schema:
            renames[name] = f"{service}_{name}"
    return renames


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if not renames:
        return node
    if isinstance(node, dict):
        out = {key: _rewrite_refs(value, renames) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            name = ref.removeprefix(SCHEMA_REF)
            out["$ref"] = SCHEMA_REF + renames.get(name, name)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(value, renames) for value in node]
    return node
