"""The Secrets of generated material: the database credentials, the signing keys, the
apps' telemetry DSN keys and the sync service's checkpoint keys.

All hold material the caller generated (the renderer has no randomness). They are marked
``mobileplane.io/generated: "true"``: the caller creates them once and never overwrites them,
because regenerating a password or a key would lock the services out of their database,
invalidate every issued token or every DSN compiled into an app, or send every device back
to a full resync (a checkpoint token MAC'd with a key the sync service no longer has). The
sanctioned changes are a signing-key rotation (:func:`signing_keys_data` gives the new data to
merge) and a DSN key added for a platform added to the app (:func:`.appkeys.app_keys_data`).
The sync keys are rotated by hand, in the Secret (docs/sync-protocol.md §7); the operator
keeps what it reads back. Each also records the uid of the platform that generated it (see
``PlatformRef.uid``).

Values go in ``stringData``: these Secrets are created, never applied, so ``stringData``'s
write-only nature costs nothing, and the values stay readable in reviews and golden files.
To merge a rotation, pass :func:`signing_keys_data` (the same decoded values) to the caller's
Secret update.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from mobileplane.operator.keys import KeySet
from mobileplane.operator.render.appkeys import app_keys_data
from mobileplane.operator.render.inputs import PlatformRef, RenderInput
from mobileplane.operator.render.names import (
    GENERATED_ANNOTATION,
    PLATFORM_UID_ANNOTATION,
    child_name,
    metadata,
)

#: Keys of ``<name>-database``; the in-cluster Postgres and the backup job read them too.
DB_USERNAME, DB_PASSWORD, DB_HOST, DB_PORT, DB_NAME, DB_URL = (
    "username",
    "password",
    "host",
    "port",
    "database",
    "url",
)

#: Keys of ``<name>-signing-keys``.
JWKS_KEY = "jwks.json"
ACTIVE_KID_KEY = "active-kid"
#: The whole key set with its history (created/retired times, the rotation acted upon), for
#: the operator to read back: rotation and pruning need it.
KEYSET_KEY = "keyset.json"


#: Key of ``<name>-sync-keys``: the sync service's ``SYNC_CHECKPOINT_KEYS``, comma-separated,
#: the first signing (``services/sync/tokens.py``).
SYNC_CHECKPOINT_KEYS_KEY = "checkpoint-keys"


def private_key_name(kid: str) -> str:
    """The Secret key holding one signing key's private PEM."""
    return f"key-{kid}.pem"


def database_secret_name(platform: PlatformRef) -> str:
    """``<name>-database`` (known before the material is: the caller reads it back first)."""
    return child_name(platform, "database")


def signing_keys_secret_name(platform: PlatformRef) -> str:
    """``<name>-signing-keys``."""
    return child_name(platform, "signing-keys")


def app_keys_secret_name(platform: PlatformRef) -> str:
    """``<name>-app-keys``: the telemetry DSN keys (see :mod:`.appkeys`)."""
    return child_name(platform, "app-keys")


def sync_keys_secret_name(platform: PlatformRef) -> str:
    """``<name>-sync-keys``: the keys that MAC sync checkpoint tokens."""
    return child_name(platform, "sync-keys")


def _generated_secret(
    inp: RenderInput, name: str, component: str, data: Mapping[str, str]
) -> dict[str, Any]:
    annotations = {GENERATED_ANNOTATION: "true", PLATFORM_UID_ANNOTATION: inp.platform.uid}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(inp.platform, name, component, annotations),
        "type": "Opaque",
        "stringData": dict(sorted(data.items())),
    }


def database_url(inp: RenderInput) -> str:
    """``postgresql://role:password@host:port/database``, the password percent-encoded."""
    db = inp.database
    user = quote(db.role, safe="")
    password = quote(inp.generated.db_password, safe="")
    host = f"[{db.host}]" if ":" in db.host else db.host  # an IPv6 literal
    url = f"postgresql://{user}:{password}@{host}:{db.port}/{quote(db.name, safe='')}"
    return f"{url}?sslmode={quote(db.sslmode, safe='')}" if db.sslmode else url


def database_secret(inp: RenderInput) -> dict[str, Any]:
    """Secret ``<name>-database``: how the services (and backups) log in to the database."""
    db = inp.database
    data = {
        DB_USERNAME: db.role,
        DB_PASSWORD: inp.generated.db_password,
        DB_HOST: db.host,
        DB_PORT: str(db.port),
        DB_NAME: db.name,
        DB_URL: database_url(inp),
    }
    return _generated_secret(inp, database_secret_name(inp.platform), "database", data)


def signing_keys_data(keyset: KeySet) -> dict[str, str]:
    """The (decoded) data of ``<name>-signing-keys`` for a key set.

    The public JWKS lists every published key (the active one first) so tokens signed by a
    retired key keep validating; each private key has its own PEM; ``active-kid`` says which
    one signs new tokens.
    """
    data = {
        JWKS_KEY: json.dumps(keyset.jwks(), sort_keys=True, indent=2) + "\n",
        # Indented for people reading the Secret; KeySet.from_json reads either form.
        KEYSET_KEY: json.dumps(json.loads(keyset.to_json()), sort_keys=True, indent=2) + "\n",
    }
    active = keyset.active
    if active is not None:
        data[ACTIVE_KID_KEY] = active.kid
    for key in keyset.keys:
        data[private_key_name(key.kid)] = key.private_pem
    return data


def keyset_from_secret_data(data: Mapping[str, str]) -> KeySet:
    """The key set stored in (decoded) ``<name>-signing-keys`` data: the inverse of the above."""
    raw = data.get(KEYSET_KEY)
    return KeySet.from_json(raw) if raw else KeySet()


def signing_keys_secret(inp: RenderInput) -> dict[str, Any]:
    """Secret ``<name>-signing-keys``, mounted by the auth service."""
    data = signing_keys_data(inp.generated.signing_keys)
    return _generated_secret(inp, signing_keys_secret_name(inp.platform), "auth", data)


def app_keys_secret(inp: RenderInput) -> dict[str, Any]:
    """Secret ``<name>-app-keys``, read by the telemetry service."""
    data = app_keys_data(inp.platform, inp.spec, inp.generated.app_keys, inp.generated.write_keys)
    return _generated_secret(inp, app_keys_secret_name(inp.platform), "telemetry", data)


def stored_sync_keys(data: Mapping[str, str] | None) -> str | None:
    """``SYNC_CHECKPOINT_KEYS`` as stored in (decoded) ``<name>-sync-keys`` data, if any."""
    value = (data or {}).get(SYNC_CHECKPOINT_KEYS_KEY, "").strip()
    return value or None


def sync_keys_secret(inp: RenderInput) -> dict[str, Any]:
    """Secret ``<name>-sync-keys``, read by the sync service (``SYNC_CHECKPOINT_KEYS``)."""
    data = {SYNC_CHECKPOINT_KEYS_KEY: inp.generated.sync_checkpoint_keys}
    return _generated_secret(inp, sync_keys_secret_name(inp.platform), "sync", data)


def is_generated(obj: Mapping[str, Any]) -> bool:
    """Whether a rendered object is a generated Secret (create once, never overwrite)."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return bool(annotations.get(GENERATED_ANNOTATION) == "true")
