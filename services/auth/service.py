"""The auth service's definition: the OpenID Provider under ``/auth`` and ``/.well-known``."""

from __future__ import annotations

from pathlib import Path

import httpx
from argon2 import PasswordHasher
from fastapi import APIRouter, FastAPI

from mobileplane.services.auth import api
from mobileplane.services.auth.api import AuthState
from mobileplane.services.auth.keys import KeyStore
from mobileplane.services.auth.mail import create_sender
from mobileplane.services.auth.settings import AuthSettings
from mobileplane.services.auth.store import AuthSubjectData
from mobileplane.services.auth.upstream import Provider, Upstreams
from mobileplane.services.kit.migrate import MigrationSet
from mobileplane.services.kit.mount import ServiceDefinition, service_settings

MIGRATIONS = MigrationSet("auth", Path(__file__).parent / "migrations")


async def start(app: FastAPI) -> None:
    settings = service_settings(app, AuthSettings)
    keys = KeyStore(
        directory=settings.auth_signing_keys_dir,
        inline=settings.auth_signing_keys or None,
        check_interval=settings.auth_signing_keys_check_seconds,
    )
    _ = settings.clients  # a bad client registration fails the start, naming the client
    http = httpx.AsyncClient(follow_redirects=False)
    providers = [Provider.from_config(p) for p in settings.upstream_providers]
    # argon2id with the library's defaults (RFC 9106's second recommended option).
    hasher = PasswordHasher()
    app.state.auth = AuthState(
        settings=settings,
        keys=keys,
        upstreams=Upstreams(providers, http),
        sender=create_sender(
            settings.auth_email_sender,
            host=settings.auth_smtp_host,
            port=settings.auth_smtp_port,
            sender=settings.auth_email_from,
            security=settings.auth_smtp_security,
            username=settings.auth_smtp_username,
            password=settings.auth_smtp_password,
            timeout=settings.auth_smtp_timeout_seconds,
            cafile=settings.auth_smtp_ca_file,
        ),
        http=http,
        hasher=hasher,
        dummy_hash=hasher.hash("not a password: equalises timing for unknown users"),
    )


async def stop(app: FastAPI) -> None:
    state = getattr(app.state, "auth", None)
    if isinstance(state, AuthState):
        await state.http.aclose()


def routers() -> list[APIRouter]:
    return api.routers()


SERVICE = ServiceDefinition(
    name="auth",
    base_path="/auth",
    summary="OpenID Provider: login, tokens (PKCE, refresh rotation), sessions, JWKS",
    routers=routers,
    migrations=MIGRATIONS,
    endpoints=(
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/auth/authorize",
        "/auth/token",
    ),
    on_startup=(start,),
    on_shutdown=(stop,),
    subject_data=AuthSubjectData,
    absolute_paths=True,
    settings=(AuthSettings,),
)
