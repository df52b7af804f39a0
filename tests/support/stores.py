"""Protocol-faithful local endpoints for the app stores the release controller drives.

Google Play Developer API v3 (edits → tracks → commit; OAuth 2.0 JWT-bearer token endpoint)
and App Store Connect (appStoreVersions, appStoreVersionPhasedReleases; ES256 provider
tokens). Each validates what the real API validates that matters here — the bearer token
(signature, issuer, audience, lifetime), the JSON shapes, the state machine of a staged or
phased release — answers errors in the API's own shape, and records the state and the
accepted changes for tests to assert on.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, Response

# -- Google Play -----------------------------------------------------------------------------


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class GooglePlayFake:
    """State of the fake Play Console: tracks per package, edits, commits, tokens."""

    package: str
    key: Any = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    client_email: str = "release@mobileplane-test.iam.gserviceaccount.com"
    tracks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    edits: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    base_url: str = ""

    def service_account(self) -> str:
        """The JSON a Secret's ``service-account.json`` holds."""
        return json.dumps(
            {
                "type": "service_account",
                "client_email": self.client_email,
                "private_key_id": "k1",
                "private_key": _pem(self.key),
                "token_uri": f"{self.base_url}/token",
            }
        )

    def release(self, track: str, version_code: str) -> dict[str, Any] | None:
        for r in self.tracks.get(track, []):
            if version_code in r.get("versionCodes", []):
                return r
        return None


def _google_error(status: int, message: str) -> JSONResponse:
    reason = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}.get(
        status, "FAILED_PRECONDITION"
    )
    return JSONResponse(
        {"error": {"code": status, "message": message, "status": reason}}, status_code=status
    )


_PLAY_STATUSES = {"draft", "inProgress", "halted", "completed"}


def _check_release(release: Any) -> str | None:
    if not isinstance(release, dict):
        return "releases[] must be objects"
    status = release.get("status")
    if status not in _PLAY_STATUSES:
        return f"releases[].status must be one of {sorted(_PLAY_STATUSES)}"
    codes = release.get("versionCodes")
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        return "releases[].versionCodes must be a list of strings (int64 as string)"
    fraction = release.get("userFraction")
    if status in ("inProgress", "halted"):
        if not isinstance(fraction, float | int) or not 0 < fraction < 1:
            return f"userFraction must be in (0, 1) for a {status} release"
    elif fraction is not None:
        return f"userFraction is not allowed for a {status} release"
    return None


def google_play_app(fake: GooglePlayFake) -> FastAPI:
    app = FastAPI()
    prefix = "/androidpublisher/v3/applications/{package}"

    @app.post("/token")
    async def token(grant_type: str = Form(), assertion: str = Form()) -> JSONResponse:
        if grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            claims = jwt.decode(
                assertion,
                fake.key.public_key(),
                algorithms=["RS256"],
                audience=f"{fake.base_url}/token",
                issuer=fake.client_email,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as e:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": str(e)}, status_code=400
            )
        if "androidpublisher" not in str(claims.get("scope", "")):
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        access = uuid.uuid4().hex
        fake.tokens.add(access)
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 3600})

    def _authorised(request: Request, package: str) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in fake.tokens:
            return _google_error(401, "Request is missing valid authentication credentials.")
        if package != fake.package:
            return _google_error(404, f"Package not found: {package}.")
        return None

    @app.post(prefix + "/edits")
    async def insert(package: str, request: Request) -> JSONResponse:
        if denied := _authorised(request, package):
            return denied
        edit_id = uuid.uuid4().hex[:16]
        fake.edits[edit_id] = {k: [dict(r) for r in v] for k, v in fake.tracks.items()}
        expiry = str(int(time.time()) + 3600)
        return JSONResponse({"id": edit_id, "expiryTimeSeconds": expiry})

    @app.get(prefix + "/edits/{edit}/tracks/{track}")
    async def get_track(package: str, edit: str, track: str, request: Request) -> JSONResponse:
        if denied := _authorised(request, package):
            return denied
        if edit not in fake.edits:
            return _google_error(404, "Edit not found.")
        return JSONResponse({"track": track, "releases": fake.edits[edit].get(track, [])})

    @app.put(prefix + "/edits/{edit}/tracks/{track}")
    async def update_track(package: str, edit: str, track: str, request: Request) -> JSONResponse:
        if denied := _authorised(request, package):
            return denied
        if edit not in fake.edits:
            return _google_error(404, "Edit not found.")
        body = await request.json()
        if not isinstance(body, dict) or body.get("track") != track:
            return _google_error(400, "track in the body must match the URL")
        releases = body.get("releases")
        if not isinstance(releases, list):
            return _google_error(400, "releases must be a list")
        for release in releases:
            if problem := _check_release(release):
                return _google_error(400, problem)
        if sum(1 for r in releases if r["status"] in ("inProgress", "halted")) > 1:
            return _google_error(400, "a track can have only one staged release")
        fake.edits[edit][track] = releases
        return JSONResponse({"track": track, "releases": releases})

    @app.post(prefix + "/edits/{edit}:commit")
    async def commit(package: str, edit: str, request: Request) -> JSONResponse:
        if denied := _authorised(request, package):
            return denied
        tracks = fake.edits.pop(edit, None)
        if tracks is None:
            return _google_error(404, "Edit not found.")
        fake.tracks = tracks
        fake.commits.append(json.loads(json.dumps(tracks)))
        return JSONResponse({"id": edit})

    @app.delete(prefix + "/edits/{edit}")
    async def delete(package: str, edit: str, request: Request) -> Response:
        if denied := _authorised(request, package):
            return denied
        fake.edits.pop(edit, None)
        return Response(status_code=204)

    return app


# -- App Store Connect -------------------------------------------------------------------------


@dataclass
class AppStoreFake:
    """State of the fake App Store Connect: one app, its versions and phased releases."""

    app_id: str
    issuer_id: str = "69a6de7e-0000-47e3-e053-5b8c7c11a4d1"
    key_id: str = "2X9R4HXF34"
    key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> version
    phased: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> phased release
    changes: list[tuple[str, str]] = field(default_factory=list)  # (version, new state)

    def credentials(self) -> dict[str, str]:
        return {"issuer-id": self.issuer_id, "key-id": self.key_id, "private-key": _pem(self.key)}

    def add_version(self, version: str, state: str = "ACTIVE") -> None:
        vid = uuid.uuid4().hex[:12]
        pid = uuid.uuid4().hex[:12]
        self.versions[vid] = {"versionString": version, "platform": "IOS", "phased": pid}
        self.phased[pid] = {"state": state, "version": version}

    def state_of(self, version: str) -> str | None:
        for p in self.phased.values():
            if p["version"] == version:
                return str(p["state"])
        return None


_APPLE_MOVES = {
    ("ACTIVE", "PAUSED"),
    ("PAUSED", "ACTIVE"),
    ("ACTIVE", "COMPLETE"),
    ("PAUSED", "COMPLETE"),
}


def _apple_error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"status": str(status), "code": code, "title": code, "detail": detail}]},
        status_code=status,
    )


def app_store_app(fake: AppStoreFake) -> FastAPI:
    app = FastAPI()

    def _authorised(request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return _apple_error(401, "NOT_AUTHORIZED", "Provide a properly configured token")
        token = header[7:]
        try:
            head = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                fake.key.public_key(),
                algorithms=["ES256"],
                audience="appstoreconnect-v1",
                issuer=fake.issuer_id,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as e:
            return _apple_error(401, "NOT_AUTHORIZED", f"invalid token: {e}")
        if head.get("kid") != fake.key_id:
            return _apple_error(401, "NOT_AUTHORIZED", "unknown key id")
        if int(claims["exp"]) - int(claims["iat"]) > 1200:
            return _apple_error(401, "NOT_AUTHORIZED", "token lifetime over 20 minutes")
        return None

    @app.get("/v1/apps/{app_id}/appStoreVersions")
    async def versions(app_id: str, request: Request) -> JSONResponse:
        if denied := _authorised(request):
            return denied
        if app_id != fake.app_id:
            return _apple_error(404, "NOT_FOUND", f"no app {app_id}")
        wanted = request.query_params.get("filter[versionString]")
        platform = request.query_params.get("filter[platform]")
        data = [
            {
                "type": "appStoreVersions",
                "id": vid,
                "attributes": {"versionString": v["versionString"], "platform": v["platform"]},
            }
            for vid, v in fake.versions.items()
            if (wanted is None or v["versionString"] == wanted)
            and (platform is None or v["platform"] == platform)
        ]
        return JSONResponse({"data": data, "links": {"self": str(request.url)}})

    @app.get("/v1/appStoreVersions/{vid}/appStoreVersionPhasedRelease")
    async def phased_of(vid: str, request: Request) -> JSONResponse:
        if denied := _authorised(request):
            return denied
        version = fake.versions.get(vid)
        if version is None:
            return _apple_error(404, "NOT_FOUND", f"no appStoreVersion {vid}")
        pid = version["phased"]
        p = fake.phased[pid]
        return JSONResponse(
            {
                "data": {
                    "type": "appStoreVersionPhasedReleases",
                    "id": pid,
                    "attributes": {"phasedReleaseState": p["state"]},
                }
            }
        )

    @app.patch("/v1/appStoreVersionPhasedReleases/{pid}")
    async def patch(pid: str, request: Request) -> JSONResponse:
        if denied := _authorised(request):
            return denied
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _apple_error(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
        body = await request.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "appStoreVersionPhasedReleases":
            return _apple_error(
                409, "ENTITY_ERROR.TYPE", "data.type must be appStoreVersionPhasedReleases"
            )
        if data.get("id") != pid:
            return _apple_error(409, "ENTITY_ERROR.ID", "data.id must match the URL")
        state = (data.get("attributes") or {}).get("phasedReleaseState")
        if state not in ("ACTIVE", "PAUSED", "COMPLETE"):
            return _apple_error(
                409, "ENTITY_ERROR.ATTRIBUTE.INVALID", f"bad phasedReleaseState {state!r}"
            )
        p = fake.phased.get(pid)
        if p is None:
            return _apple_error(404, "NOT_FOUND", f"no phased release {pid}")
        if (p["state"], state) not in _APPLE_MOVES:
            return _apple_error(409, "STATE_ERROR", f"cannot go from {p['state']} to {state}")
        p["state"] = state
        fake.changes.append((p["version"], state))
        return JSONResponse(
            {
                "data": {
                    "type": "appStoreVersionPhasedReleases",
                    "id": pid,
                    "attributes": {"phasedReleaseState": state},
                }
            }
        )

    return app
