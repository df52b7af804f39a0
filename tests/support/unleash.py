"""A small Unleash Admin API client for tests, which removes every flag it made."""

from __future__ import annotations

from typing import Any

import httpx


class UnleashAdmin:
    """The few Admin API calls tests need, with cleanup of every flag made through it."""

    def __init__(self, base: str, token: str, prefix: str) -> None:
        self.base = base.removesuffix("/api")
        self.prefix = prefix
        self.http = httpx.Client(base_url=self.base, headers={"Authorization": token}, timeout=10.0)
        self.created: list[str] = []

    def flag_name(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def create_flag(self, name: str, *, project: str = "default") -> str:
        full = self.flag_name(name)
        r = self.http.post(
            f"/api/admin/projects/{project}/features", json={"name": full, "type": "release"}
        )
        r.raise_for_status()
        self.created.append(full)
        return full

    def add_rollout(
        self, flag: str, percentage: int, *, env: str = "development", project: str = "default"
    ) -> dict[str, Any]:
        r = self.http.post(
            f"/api/admin/projects/{project}/features/{flag}/environments/{env}/strategies",
            json={
                "name": "flexibleRollout",
                "parameters": {
                    "rollout": str(percentage),
                    "stickiness": "default",
                    "groupId": flag,
                },
            },
        )
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def set_enabled(
        self, flag: str, enabled: bool, *, env: str = "development", project: str = "default"
    ) -> None:
        action = "on" if enabled else "off"
        r = self.http.post(
            f"/api/admin/projects/{project}/features/{flag}/environments/{env}/{action}"
        )
        r.raise_for_status()

    def cleanup(self) -> None:
        for flag in self.created:
            self.http.delete(f"/api/admin/projects/default/features/{flag}")
            self.http.delete(f"/api/admin/archive/{flag}")
        self.http.close()
