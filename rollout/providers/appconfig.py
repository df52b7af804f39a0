"""The app-config service, so a halt reaches apps already installed: mark the version halted
(with the gate's reason), clear the mark on resume, make it the latest version on completion.

The controller calls the service directly with the identity headers the gateway would
forward (subject ``release-controller``, scope ``appconfig:write``); every write is
idempotent on the service's side.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from mobileplane.rollout.effects import AppConfigState
from mobileplane.rollout.providers import ProviderError
from mobileplane.rollout.providers.targets import AppConfigTarget
from mobileplane.services.kit.identity_contract import Identity, identity_headers

WRITE_SCOPE = "appconfig:write"


class AppConfig:
    """:class:`~mobileplane.rollout.providers.AppConfigPublisher` over HTTP."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.headers = identity_headers(Identity("release-controller", frozenset({WRITE_SCOPE})))

    async def _send(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        try:
            r = await self.http.request(method, url, headers=self.headers, **kw)
        except httpx.HTTPError as e:
            raise ProviderError(f"app-config unreachable ({method} {url}): {e!r}") from e
        if r.status_code >= 300:
            raise ProviderError(
                f"app-config answered {r.status_code} to {method} {url}: {r.text[:300]}"
            )
        body: dict[str, Any] = r.json()
        return body

    async def apply(
        self, base_url: str, target: AppConfigTarget, state: AppConfigState, reason: str
    ) -> bool:
        base = f"{base_url.rstrip('/')}/appconfig/{quote(target.app)}/platforms/{target.platform}"
        halted_url = f"{base}/halted/{quote(target.version)}"
        if state.halted:
            body = await self._send("PUT", halted_url, json={"reason": reason[:2000] or "halted"})
        else:
            body = await self._send("DELETE", halted_url)
        changed = bool(body.get("changed"))
        if state.latest:
            await self._send("PATCH", base, json={"latest_version": target.version})
            changed = True
        return changed
