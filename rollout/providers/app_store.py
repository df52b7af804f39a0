"""App Store phased releases through the App Store Connect API.

Apple's phased release has a fixed 7-day schedule (1, 2, 5, 10, 20, 50, 100 %): it can be
**paused** (``PAUSED``), **resumed** (``ACTIVE``) or **completed** at once (``COMPLETE``), not
set to a percentage. So the release's steps drive the state only: progressing → ``ACTIVE``,
paused or halted → ``PAUSED`` (Apple has no halt), completed → ``COMPLETE``.

Calls: ``GET /v1/apps/{id}/appStoreVersions?filter[versionString]=…&filter[platform]=IOS``
→ the version, ``GET /v1/appStoreVersions/{id}/appStoreVersionPhasedRelease`` → its phased
release, ``PATCH /v1/appStoreVersionPhasedReleases/{id}`` with a JSON:API document setting
``attributes.phasedReleaseState``. Auth: an ES256 JWT signed with the API key (``kid`` = key
id, ``iss`` = issuer id, ``aud`` = ``appstoreconnect-v1``, at most 20 minutes), from the
Secret's ``issuer-id``, ``key-id`` and ``private-key`` (the ``.p8`` PEM).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from mobileplane.rollout.effects import StoreAction, StoreState
from mobileplane.rollout.providers import ProviderError
from mobileplane.rollout.providers.targets import StoreTarget

DEFAULT_API = "https://api.appstoreconnect.apple.com"
AUDIENCE = "appstoreconnect-v1"
STATE_FOR = {
    StoreAction.ROLLOUT: "ACTIVE",
    StoreAction.PAUSE: "PAUSED",
    StoreAction.HALT: "PAUSED",
    StoreAction.COMPLETE: "COMPLETE",
}


def provider_token(credentials: dict[str, str], now: int | None = None) -> str:
    try:
        issuer, key_id, key = (
            credentials["issuer-id"],
            credentials["key-id"],
            credentials["private-key"],
        )
    except KeyError as e:
        raise ProviderError(
            "the App Store Connect credentials need keys issuer-id, key-id and private-key "
            f"(missing {e})"
        ) from e
    at = int(time.time()) if now is None else now
    claims = {"iss": issuer, "iat": at, "exp": at + 1200, "aud": AUDIENCE}
    try:
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": key_id, "typ": "JWT"})
    except (ValueError, TypeError, jwt.PyJWTError) as e:
        raise ProviderError(f"cannot sign with the App Store Connect key: {e!r}") from e


class AppStore:
    """:class:`~mobileplane.rollout.providers.StoreRollout` for the App Store."""

    def __init__(self, http: httpx.AsyncClient, api_url: str = DEFAULT_API) -> None:
        self.http = http
        self.api = api_url.rstrip("/")

    async def _send(self, method: str, path: str, token: str, **kw: Any) -> Any:
        url = f"{self.api}{path}"
        try:
            r = await self.http.request(
                method, url, headers={"Authorization": f"Bearer {token}"}, **kw
            )
        except httpx.HTTPError as e:
            raise ProviderError(f"App Store Connect unreachable ({method} {url}): {e!r}") from e
        if r.status_code >= 300:
            raise ProviderError(
                f"App Store Connect answered {r.status_code} to {method} {url}: {r.text[:300]}"
            )
        return r.json() if r.content else None

    async def apply(
        self, target: StoreTarget, state: StoreState, credentials: dict[str, str]
    ) -> bool:
        if not target.app_id:
            raise ProviderError("store.appId is required for appStore")
        token = provider_token(credentials)
        versions = await self._send(
            "GET",
            f"/v1/apps/{quote(target.app_id)}/appStoreVersions",
            token,
            params={"filter[versionString]": target.version, "filter[platform]": "IOS"},
        )
        found = versions.get("data") or []
        if not found:
            raise ProviderError(
                f"App Store Connect has no version {target.version} of app {target.app_id}"
            )
        version_id = found[0]["id"]
        phased = await self._send(
            "GET", f"/v1/appStoreVersions/{quote(version_id)}/appStoreVersionPhasedRelease", token
        )
        data = phased.get("data") if phased else None
        if not data:
            raise ProviderError(
                f"version {target.version} has no phased release: turn phased release on in "
                "App Store Connect before submitting"
            )
        wanted = STATE_FOR[state.action]
        current = (data.get("attributes") or {}).get("phasedReleaseState")
        if current == wanted or current == "COMPLETE":
            return False  # COMPLETE is final
        body = {
            "data": {
                "type": "appStoreVersionPhasedReleases",
                "id": data["id"],
                "attributes": {"phasedReleaseState": wanted},
            }
        }
        await self._send(
            "PATCH", f"/v1/appStoreVersionPhasedReleases/{quote(data['id'])}", token, json=body
        )
        return True
