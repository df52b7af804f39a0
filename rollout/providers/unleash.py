"""Feature flags through the real Unleash Admin API: a flag's gradual rollout follows the
release, and a halt switches it off.

For one flag in the configured project and environment: find its ``flexibleRollout``
strategy (``stickiness: default``, ``groupId`` = the flag's name, so users are bucketed as
:mod:`mobileplane.rollout.bucketing` computes) and set its ``rollout`` percentage — creating
the strategy if the flag has none — then switch the flag on or off in the environment. Each
call first reads the environment's state and writes only what differs, so applying the same
state twice changes nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from mobileplane.rollout.effects import FlagState
from mobileplane.rollout.providers import ProviderError

STRATEGY = "flexibleRollout"


class UnleashFlags:
    """:class:`~mobileplane.rollout.providers.FlagRollout` over the Admin API."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, token: str, project: str, environment: str
    ) -> None:
        self.http = http
        self.base = base_url.rstrip("/").removesuffix("/api")
        self.headers = {"Authorization": token}
        self.project = project
        self.environment = environment

    def _url(self, flag: str, tail: str = "") -> str:
        return (
            f"{self.base}/api/admin/projects/{quote(self.project)}/features/{quote(flag)}"
            f"/environments/{quote(self.environment)}{tail}"
        )

    async def _call(self, method: str, url: str, **kw: Any) -> Any:
        try:
            r = await self.http.request(method, url, headers=self.headers, **kw)
        except httpx.HTTPError as e:
            raise ProviderError(f"Unleash at {self.base} unreachable: {e!r}") from e
        if r.status_code == 404:
            raise ProviderError(
                f"Unleash: no such flag or environment ({method} {url}): create the flag "
                f"in project {self.project!r} first"
            )
        if r.status_code >= 300:
            raise ProviderError(
                f"Unleash answered {r.status_code} to {method} {url}: {r.text[:300]}"
            )
        return r.json() if r.content else None

    async def apply(self, flag: FlagState) -> bool:
        env = await self._call("GET", self._url(flag.name))
        strategies = [s for s in env.get("strategies") or [] if s.get("name") == STRATEGY]
        parameters = {
            "rollout": str(flag.percentage),
            "stickiness": "default",
            "groupId": flag.name,
        }
        changed = False
        if not strategies:
            await self._call(
                "POST",
                self._url(flag.name, "/strategies"),
                json={"name": STRATEGY, "parameters": parameters},
            )
            changed = True
        else:
            current = strategies[0]
            params = dict(current.get("parameters") or {})
            if str(params.get("rollout")) != parameters["rollout"]:
                params.update(rollout=parameters["rollout"])
                params.setdefault("stickiness", "default")
                params.setdefault("groupId", flag.name)
                body = {
                    "name": STRATEGY,
                    "parameters": params,
                    "constraints": current.get("constraints") or [],
                }
                await self._call(
                    "PUT", self._url(flag.name, f"/strategies/{current['id']}"), json=body
                )
                changed = True
        if bool(env.get("enabled")) != flag.enabled:
            await self._call("POST", self._url(flag.name, "/on" if flag.enabled else "/off"))
            changed = True
        return changed
