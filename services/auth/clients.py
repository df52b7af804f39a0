"""OAuth clients: the apps allowed to sign users in, as RFC 7591 client metadata.

The operator renders one public client per app id from the MobilePlatform
(``operator/render/config.py``, ``AUTH_CLIENTS``); the quick start configures a demo client.
A client here is **public** (``token_endpoint_auth_method: none``): a native app cannot keep a
secret (RFC 8252 §8.4), so PKCE is mandatory for it. Redirect URIs are checked at load time
(:mod:`.redirects`), so a bad registration fails at start with the client's name, not at a
user's first login.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mobileplane.services.auth import redirects


class ClientConfigError(ValueError):
    """The configured clients cannot be used; the message names the client and the field."""


class Client(BaseModel):
    """One registered client (the RFC 7591 names; unknown members are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    client_id: str = Field(min_length=1, max_length=255)
    client_name: str = ""
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    response_types: tuple[str, ...] = ("code",)
    token_endpoint_auth_method: str = "none"  # noqa: S105 - a method name
    require_pkce: bool = True
    scope: str = "openid offline_access"

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _valid_redirects(cls, uris: tuple[str, ...]) -> tuple[str, ...]:
        for uri in uris:
            try:
                redirects.kind(uri)
            except redirects.RedirectUriError as e:
                raise ValueError(str(e)) from None
        return uris

    @field_validator("token_endpoint_auth_method")
    @classmethod
    def _public_only(cls, method: str) -> str:
        if method != "none":
            raise ValueError("only public clients (token_endpoint_auth_method: none) are supported")
        return method

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def redirect_uri(self, requested: str) -> str | None:
        """The registered URI ``requested`` matches (RFC 8252 rules), or ``None``."""
        return redirects.find(self.redirect_uris, requested)

    def post_logout_redirect_uri(self, requested: str) -> str | None:
        allowed = self.post_logout_redirect_uris or self.redirect_uris
        return redirects.find(allowed, requested)

    def allowed_scope(self, requested: str | None) -> tuple[str, ...] | None:
        """The scopes granted for ``requested`` (the client's own when absent), or ``None``
        when it asks for one the client may not have."""
        asked = (requested or self.scope).split()
        if not set(asked) <= self.scopes:
            return None
        return tuple(dict.fromkeys(asked))


class ClientRegistry:
    """The configured clients by id."""

    def __init__(self, clients: Sequence[Client]) -> None:
        self._by_id: dict[str, Client] = {}
        for client in clients:
            if client.client_id in self._by_id:
                raise ClientConfigError(f"client {client.client_id!r} is configured twice")
            self._by_id[client.client_id] = client

    def get(self, client_id: str | None) -> Client | None:
        return self._by_id.get(client_id or "")

    def __iter__(self) -> Any:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def parse_clients(raw: str | Sequence[Mapping[str, Any]]) -> ClientRegistry:
    """Clients from JSON text (``AUTH_CLIENTS``) or already-parsed data."""
    data: Any = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as e:
            raise ClientConfigError(f"AUTH_CLIENTS is not JSON: {e}") from None
    if not isinstance(data, list):
        raise ClientConfigError("AUTH_CLIENTS must be a JSON list of client objects")
    clients = []
    for index, item in enumerate(data):
        name = item.get("client_id", f"#{index}") if isinstance(item, Mapping) else f"#{index}"
        try:
            clients.append(Client.model_validate(item))
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
            )
            raise ClientConfigError(f"client {name!r}: {problems}") from None
    return ClientRegistry(clients)
