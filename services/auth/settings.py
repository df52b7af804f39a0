"""The auth service's settings (``AUTH_*``), read once at startup.

The operator renders most of them from the MobilePlatform (``operator/render/config.py``):
the issuer (the gateway's public URL), the clients, the signing algorithm and key directory,
the access-token lifetime. The rest have production defaults.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from mobileplane.services.auth.clients import ClientRegistry, parse_clients
from mobileplane.services.auth.rules import LockoutPolicy, SessionLifetimes
from mobileplane.services.kit.settings import KitSettings


class AuthSettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    auth_issuer: str = Field(
        default="http://127.0.0.1:8080",
        description="The issuer URL (the gateway's public URL); tokens carry it as iss and aud.",
    )
    auth_display_name: str = Field(default="mobileplane", description="Shown on the login page.")
    auth_clients: str = Field(default="[]", description="RFC 7591 client metadata, a JSON list.")
    auth_signing_algorithm: str = Field(default="ES256", pattern=r"^(ES256|RS256)$")
    auth_signing_keys_dir: Path | None = Field(
        default=None, description="The mounted signing-keys Secret (keyset.json)."
    )
    auth_signing_keys: str | None = Field(
        default=None, description="The key set inline (keyset.json content), instead of a dir."
    )
    auth_signing_keys_check_seconds: float = Field(
        default=10.0, ge=0, description="How often the mounted key set is checked for a rotation."
    )
    auth_access_token_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    auth_id_token_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    auth_code_ttl_seconds: int = Field(default=60, ge=10, le=600)
    auth_login_request_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    auth_session_idle_seconds: int = Field(default=30 * 86400, ge=300)
    auth_session_absolute_seconds: int = Field(default=90 * 86400, ge=300)
    auth_refresh_grace_seconds: int = Field(default=0, ge=0, le=60)
    auth_max_sessions_per_user: int | None = Field(default=None, ge=1)
    auth_lockout_threshold: int = Field(default=5, ge=1)
    auth_lockout_seconds: int = Field(default=60, ge=1)
    auth_lockout_max_seconds: int = Field(default=3600, ge=1)
    auth_login_attempts_per_ip_per_minute: int = Field(default=30, ge=1)
    auth_require_verified_email: bool = Field(
        default=False, description="Refuse password logins until the email is verified."
    )
    auth_email_sender: str = Field(
        default="log",
        pattern=r"^(log|smtp)$",
        description="log: messages only logged (development); smtp: sent (AUTH_SMTP_*).",
    )
    auth_email_from: str = Field(
        default="", max_length=320, description="From header of the platform's emails."
    )
    auth_smtp_host: str | None = Field(default=None, max_length=253)
    auth_smtp_port: int = Field(default=587, ge=1, le=65535)
    auth_smtp_security: str = Field(default="starttls", pattern=r"^(starttls|tls|none)$")
    auth_smtp_username: str | None = None
    auth_smtp_password: str | None = Field(default=None, repr=False)
    auth_smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    auth_smtp_ca_file: str | None = Field(
        default=None, description="CA bundle for the SMTP server's certificate (default: system)."
    )
    auth_upstream_providers: str = Field(
        default="[]",
        description="Upstream OpenID providers whose ID tokens sign users in: a JSON list of "
        '{"name", "issuer", "jwks_uri", "audiences"}.',
    )
    auth_restricted_scopes: str = Field(
        default="telemetry:read telemetry:admin analytics:read analytics:admin appconfig:write",
        description="Scopes for the platform's people, not an app's users: a client may ask for "
        "them, but only users who hold them get them (space-separated).",
    )
    auth_first_account_scopes: str = Field(
        default="",
        description="Restricted scopes the platform's first account (the earliest created) "
        "holds: the quick start's developer (space-separated; empty: nobody).",
    )
    auth_scope_grants: str = Field(
        default="{}",
        description="Restricted scopes held by the platform's people, by verified email: a "
        'JSON object {"dev@example.com": "telemetry:read telemetry:admin"} (the operator '
        "renders it from spec.auth.members).",
    )
    auth_min_password_length: int = Field(default=10, ge=8, le=128)
    auth_apple_app_ids: str | None = None
    auth_android_app_links: str | None = None

    @field_validator("auth_issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or "?" in value or "#" in value:
            raise ValueError("must be an http(s) URL without query or fragment (OIDC Discovery §3)")
        return value.rstrip("/")

    @field_validator("auth_first_account_scopes")
    @classmethod
    def _first_account_restricted(cls, value: str, info: ValidationInfo) -> str:
        restricted = set(str(info.data.get("auth_restricted_scopes", "")).split())
        loose = sorted(set(value.split()) - restricted)
        if loose:
            raise ValueError(
                f"{' '.join(loose)} not in AUTH_RESTRICTED_SCOPES: every user of a client that "
                "may ask for an unrestricted scope gets it, so the first account holding it "
                "means nothing"
            )
        return value

    @field_validator("auth_scope_grants")
    @classmethod
    def _grants_restricted(cls, value: str, info: ValidationInfo) -> str:
        restricted = set(str(info.data.get("auth_restricted_scopes", "")).split())
        for email, scopes in parse_scope_grants(value).items():
            loose = sorted(scopes - restricted)
            if loose:
                raise ValueError(
                    f"{email}: {' '.join(loose)} not in AUTH_RESTRICTED_SCOPES (every user may "
                    "get an unrestricted scope; granting it to one person means nothing)"
                )
        return value

    @cached_property
    def scope_grants(self) -> dict[str, frozenset[str]]:
        return parse_scope_grants(self.auth_scope_grants)

    @property
    def restricted_scopes(self) -> frozenset[str]:
        return frozenset(self.auth_restricted_scopes.split())

    @property
    def first_account_scopes(self) -> frozenset[str]:
        return frozenset(self.auth_first_account_scopes.split())

    @cached_property
    def clients(self) -> ClientRegistry:
        return parse_clients(self.auth_clients)

    @cached_property
    def upstream_providers(self) -> list[dict[str, Any]]:
        data = json.loads(self.auth_upstream_providers or "[]")
        if not isinstance(data, list):
            raise ValueError("AUTH_UPSTREAM_PROVIDERS must be a JSON list")
        return data

    @property
    def lifetimes(self) -> SessionLifetimes:
        return SessionLifetimes(
            idle=timedelta(seconds=self.auth_session_idle_seconds),
            absolute=timedelta(seconds=self.auth_session_absolute_seconds),
        )

    @property
    def lockout(self) -> LockoutPolicy:
        return LockoutPolicy(
            threshold=self.auth_lockout_threshold,
            base=timedelta(seconds=self.auth_lockout_seconds),
            maximum=timedelta(seconds=self.auth_lockout_max_seconds),
        )

    @property
    def access_ttl(self) -> timedelta:
        return timedelta(seconds=self.auth_access_token_ttl_seconds)

    @property
    def refresh_grace(self) -> timedelta:
        return timedelta(seconds=self.auth_refresh_grace_seconds)


def parse_scope_grants(raw: str) -> dict[str, frozenset[str]]:
    """``AUTH_SCOPE_GRANTS``: a JSON object of email → space-separated scopes (or a list)."""
    try:
        data = json.loads(raw or "{}")
    except ValueError as e:
        raise ValueError(f"AUTH_SCOPE_GRANTS is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError('AUTH_SCOPE_GRANTS must be a JSON object {"email": "scope ..."}')
    out: dict[str, frozenset[str]] = {}
    for email, scopes in data.items():
        if not isinstance(email, str) or "@" not in email:
            raise ValueError(f"AUTH_SCOPE_GRANTS: {email!r} is not an email address")
        if isinstance(scopes, str):
            names = scopes.split()
        elif isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
            names = list(scopes)
        else:
            raise ValueError(f"AUTH_SCOPE_GRANTS: the scopes of {email} must be a string or list")
        out[email.strip().lower()] = frozenset(names)
    return out
