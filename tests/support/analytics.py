"""What the analytics tests share besides fixtures: the seeded sources and their write keys,
identities for the admin API, the SDKs' Basic auth header, kit settings and the query type.

(Tests import these from here, not from their conftest: ``conftest`` is not a unique module
name across the suite, so an import of it can find another directory's.)"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.settings import KitSettings

IOS_KEY = "iosWriteKey0000000000000000000001"
ANDROID_KEY = "androidWriteKey00000000000000001"
SOURCES = [
    {"slug": "ios", "name": "iOS app", "write_keys": [IOS_KEY]},
    {"slug": "android", "write_keys": [ANDROID_KEY]},
]
ADMIN = identity_headers(Identity("ops", frozenset({"analytics:admin"})))
READER = identity_headers(Identity("dashboard", frozenset({"analytics:read"})))

Query = Callable[..., list[dict[str, Any]]]


def basic(key: str) -> dict[str, str]:
    """What the SDKs send: Basic auth, the write key as user name, no password."""
    return {"authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def kit_settings(database_url: str, redis_url: str, redis_prefix: str) -> KitSettings:
    return KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )
