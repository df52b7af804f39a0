"""OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414), the JWKS, and the app-association
files (Apple universal links, Android app links) served under ``/.well-known/``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mobileplane.services.auth import pkce
from mobileplane.services.auth.context import (
    TOKEN_EXCHANGE,
    State,
)
from mobileplane.services.auth.settings import AuthSettings
from mobileplane.services.kit.errors import NotFound


def discovery(settings: AuthSettings, algorithms: list[str]) -> dict[str, Any]:
    issuer = settings.auth_issuer
    scopes = sorted({s for c in settings.clients for s in c.scopes} | {"openid", "email"})
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth/authorize",
        "token_endpoint": f"{issuer}/auth/token",
        "userinfo_endpoint": f"{issuer}/auth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/auth/revoke",
        "introspection_endpoint": f"{issuer}/auth/introspect",
        "end_session_endpoint": f"{issuer}/auth/end-session",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": list(pkce.METHODS),
        "scopes_supported": scopes,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "email",
            "email_verified",
            "amr",
            "azp",
            "at_hash",
        ],
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }


def well_known_router() -> APIRouter:
    router = APIRouter(tags=["oidc"])

    @router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
    async def configuration(state: State) -> JSONResponse:
        body = discovery(state.settings, state.keys.algorithms)
        return JSONResponse(body, headers={"cache-control": "public, max-age=300"})

    @router.get("/.well-known/oauth-authorization-server", include_in_schema=False)
    async def oauth_metadata(state: State) -> JSONResponse:
        return JSONResponse(discovery(state.settings, state.keys.algorithms))

    @router.get("/.well-known/jwks.json", summary="The public signing keys (JWKS)")
    async def jwks(state: State) -> JSONResponse:
        # Short max-age: a rotated-in key must reach clients quickly; the gateway also
        # refetches on an unknown kid.
        return JSONResponse(
            state.keys.jwks(),
            media_type="application/jwk-set+json",
            headers={"cache-control": "public, max-age=60"},
        )

    @router.get("/.well-known/apple-app-site-association", include_in_schema=False)
    async def apple(state: State) -> JSONResponse:
        if not state.settings.auth_apple_app_ids:
            raise NotFound("No iOS app is configured (spec.app.ios.teamID)")
        app_ids = json.loads(state.settings.auth_apple_app_ids)
        return JSONResponse(
            {
                "applinks": {"details": [{"appIDs": app_ids, "components": [{"/": "/auth/*"}]}]},
                "webcredentials": {"apps": app_ids},
            }
        )

    @router.get("/.well-known/assetlinks.json", include_in_schema=False)
    async def android(state: State) -> JSONResponse:
        if not state.settings.auth_android_app_links:
            raise NotFound("No Android signing certificate is configured")
        links = json.loads(state.settings.auth_android_app_links)
        return JSONResponse(
            [
                {
                    "relation": [
                        "delegate_permission/common.handle_all_urls",
                        "delegate_permission/common.get_login_creds",
                    ],
                    "target": {"namespace": "android_app", **link},
                }
                for link in links
            ]
        )

    return router
