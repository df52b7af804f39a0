"""Google Play staged rollouts through the Google Play Developer API v3 (androidpublisher).

One change is one **edit**: ``edits.insert`` → ``edits.tracks.get`` / ``edits.tracks.update``
(the track's ``releases[]``: ``versionCodes``, ``status`` ``inProgress`` with a
``userFraction`` in (0, 1), ``halted``, or ``completed``) → ``edits.commit``. If the track
already says what we want, the edit is deleted instead of committed (nothing changes twice).

Auth is a service account's OAuth 2.0 **JWT bearer** grant (RFC 7523): an RS256 assertion
signed with the account's private key (``iss`` = its ``client_email``, ``scope`` =
androidpublisher, ``aud`` = its ``token_uri``) exchanged at ``token_uri`` for an access
token. The credentials are the service-account JSON in the Secret the release names
(key ``service-account.json``). The API base URL is a setting, so tests point the same code
at a protocol-faithful local endpoint.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from mobileplane.rollout.effects import StoreAction, StoreState
from mobileplane.rollout.providers import ProviderError
from mobileplane.rollout.providers.targets import StoreTarget

SCOPE = "https://www.googleapis.com/auth/androidpublisher"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_API = "https://androidpublisher.googleapis.com"
ACCOUNT_KEY = "service-account.json"  # the Secret key holding the JSON


def release_body(
    target: StoreTarget, state: StoreState, current: dict[str, Any] | None
) -> dict[str, Any]:
    """The track release we want (pure)."""
    release: dict[str, Any] = {
        "versionCodes": [target.build],
        "name": f"{target.version} ({target.build})",
    }
    if state.action is StoreAction.COMPLETE:
        release["status"] = "completed"
    elif state.action is StoreAction.HALT:
        release["status"] = "halted"
        fraction = (current or {}).get("userFraction")
        if fraction is not None:
            release["userFraction"] = fraction
    else:
        release["status"] = "inProgress"
        release["userFraction"] = state.fraction
    return release


def same(current: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    if current is None:
        return False
    keys = ("status", "userFraction")
    return all(current.get(k) == wanted.get(k) for k in keys)


class GooglePlay:
    """:class:`~mobileplane.rollout.providers.StoreRollout` for Google Play."""

    def __init__(self, http: httpx.AsyncClient, api_url: str = DEFAULT_API) -> None:
        self.http = http
        self.api = api_url.rstrip("/")

    async def _token(self, credentials: dict[str, str]) -> str:
        try:
            account = json.loads(credentials[ACCOUNT_KEY])
            email, key, token_uri = (
                account["client_email"],
                account["private_key"],
                account["token_uri"],
            )
        except (KeyError, ValueError, TypeError) as e:
            raise ProviderError(
                f"the Google Play credentials need key {ACCOUNT_KEY!r} holding a service-account "
                f"JSON with client_email, private_key and token_uri ({e!r})"
            ) from e
        now = int(time.time())
        claims = {"iss": email, "scope": SCOPE, "aud": token_uri, "iat": now, "exp": now + 3600}
        try:
            assertion = jwt.encode(
                claims, key, algorithm="RS256", headers={"kid": account.get("private_key_id")}
            )
        except (ValueError, TypeError, jwt.PyJWTError) as e:
            raise ProviderError(f"cannot sign with the service account's private key: {e!r}") from e
        r = await self._send("POST", token_uri, data={"grant_type": GRANT, "assertion": assertion})
        return str(r["access_token"])

    async def _send(self, method: str, url: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            r = await self.http.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as e:
            raise ProviderError(f"Google Play unreachable ({method} {url}): {e!r}") from e
        if r.status_code >= 300:
            raise ProviderError(
                f"Google Play answered {r.status_code} to {method} {url}: {r.text[:300]}"
            )
        return r.json() if r.content else None

    async def apply(
        self, target: StoreTarget, state: StoreState, credentials: dict[str, str]
    ) -> bool:
        if not target.package_name:
            raise ProviderError("store.packageName is required for googlePlay")
        token = await self._token(credentials)
        app = f"{self.api}/androidpublisher/v3/applications/{quote(target.package_name)}"
        edit = await self._send("POST", f"{app}/edits", token, json={})
        edit_url = f"{app}/edits/{quote(str(edit['id']))}"
        track_url = f"{edit_url}/tracks/{quote(target.track)}"
        track = await self._send("GET", track_url, token)
        releases: list[dict[str, Any]] = list(track.get("releases") or [])
        current = next((r for r in releases if target.build in (r.get("versionCodes") or [])), None)
        wanted = release_body(target, state, current)
        if same(current, wanted):
            await self._send("DELETE", edit_url, token)
            return False
        others = [r for r in releases if r is not current]
        if state.action is StoreAction.COMPLETE:
            # A completed release replaces the track's older releases.
            others = [r for r in others if r.get("status") == "draft"]
        body = {"track": target.track, "releases": [*others, wanted]}
        await self._send("PUT", track_url, token, json=body)
        await self._send("POST", f"{edit_url}:commit", token)
        return True
