"""The platform as apps meet it: the auth service and other services under real uvicorn
servers, behind a real gateway whose route table points at them.

The issuer is the gateway's URL (apps know the platform by it); the gateway validates tokens
against the auth service's JWKS. Routes and policies are the operator's
(``operator/render/routes.py``), so these tests exercise what a cluster would run.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mobileplane.operator.render.routes import ROUTES, route_entry
from mobileplane.services.auth.service import SERVICE as AUTH
from mobileplane.services.gateway.service import create_gateway_app
from mobileplane.services.gateway.settings import GatewaySettings
from mobileplane.services.kit.mount import ServiceDefinition, create_service_app
from mobileplane.services.kit.settings import KitSettings
from support.oidc import clients_json, keyset_json
from support.uvicorn_server import ServerHandle


@dataclass
class Platform:
    gateway: ServerHandle
    services: dict[str, ServerHandle]
    keys_dir: Path

    @property
    def url(self) -> str:
        return self.gateway.url


def route_table(issuer: str, upstreams: dict[str, str]) -> dict[str, Any]:
    routes = [
        route_entry(name, upstream, policy)
        for name, upstream in upstreams.items()
        for policy in ROUTES[name]
    ]
    return {
        "version": 1,
        "issuer": issuer,
        "audience": issuer,
        "algorithms": ["ES256"],
        "jwksURL": f"{upstreams['auth']}/.well-known/jwks.json",
        "routes": routes,
    }


@contextmanager
def platform_behind_gateway(
    monkeypatch: pytest.MonkeyPatch,
    keys_dir: Path,
    kit: KitSettings,
    services: Sequence[ServiceDefinition],
    *,
    auth_env: Mapping[str, str] | None = None,
    **gateway_settings: Any,
) -> Iterator[Platform]:
    """Start auth, ``services`` and a gateway in front of them; stop them all afterwards.
    ``auth_env`` adds to (or overrides) the auth service's ``AUTH_*`` settings."""
    running = (AUTH, *services)
    # Each server knows every running service's data-subject store, as `mobileplane serve`
    # does with the platform's: an erasure through profiles reaches auth's tables too.
    handles = {
        definition.name: ServerHandle(
            lambda definition=definition: create_service_app(
                definition, settings=kit, all_services=running
            )
        )
        for definition in running
    }

    def make_gateway() -> Any:
        table = route_table(gateway.url, {name: h.url for name, h in handles.items()})
        settings = GatewaySettings(
            database_url=kit.database_url,
            redis_url=kit.redis_url,
            redis_prefix=kit.redis_prefix,
            log_format="text",
            gateway_routes=json.dumps(table),
            **gateway_settings,
        )
        return create_gateway_app(settings, configure_logs=False)

    gateway = ServerHandle(make_gateway)
    keys_dir.mkdir(parents=True, exist_ok=True)
    (keys_dir / "keyset.json").write_text(keyset_json())
    for key, value in {
        "AUTH_ISSUER": gateway.url,
        "AUTH_CLIENTS": clients_json(),
        "AUTH_SIGNING_KEYS_DIR": str(keys_dir),
        "AUTH_SIGNING_KEYS_CHECK_SECONDS": "0",
        "AUTH_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "1000",
        "SYNC_CHECKPOINT_KEYS": secrets.token_urlsafe(32),
        **(auth_env or {}),
    }.items():
        monkeypatch.setenv(key, value)
    started: list[ServerHandle] = []
    try:
        for handle in (*handles.values(), gateway):
            handle.start()
            started.append(handle)
        yield Platform(gateway, handles, keys_dir)
    finally:
        for handle in reversed(started):
            handle.stop()
