"""How each rendered child is written: the apply policy, decided from what was read back.

Most children are declarative and go through server-side apply every time. Four Secrets are
not: they hold material generated once and then kept (signing keys, app DSN/write keys, sync
checkpoint keys) or follow what provisioning found (the database credentials). Writing them
with apply would regenerate or overwrite what apps and devices already depend on. This module
decides, without I/O, which write each child gets; :mod:`reconcile` performs the writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class WriteKind(StrEnum):
    APPLY = "apply"  # server-side apply: the rendered object is the truth
    CREATE = "create"  # create if absent; an existing object is never touched
    UPDATE_DATA = "update-data"  # merge ``data`` into an existing Secret
    SKIP = "skip"  # not written this time


@dataclass(frozen=True)
class Write:
    kind: WriteKind
    child: Mapping[str, Any]
    data: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.child["metadata"]["name"])


@dataclass(frozen=True)
class GeneratedSecrets:
    """The generated Secrets' names, what each held when read, and what this reconcile wants.

    ``None`` for a stored value means the Secret did not exist.
    """

    signing_keys: str
    app_keys: str
    sync_keys: str
    database: str
    signing_keys_stored: bool
    signing_keys_changed: bool
    signing_keys_data: Mapping[str, str]
    app_keys_stored: Mapping[str, str] | None
    app_keys_data: Mapping[str, str]
    sync_keys_stored: bool
    sync_keys_missing_key: bool
    sync_keys_data: Mapping[str, str]
    database_known: bool


def _secret_write(child: Mapping[str, Any], s: GeneratedSecrets) -> Write | None:
    name = child["metadata"]["name"]
    if name == s.signing_keys:
        if not s.signing_keys_stored:
            return Write(WriteKind.CREATE, child)
        if s.signing_keys_changed:  # rotated or pruned
            return Write(WriteKind.UPDATE_DATA, child, s.signing_keys_data)
        return Write(WriteKind.SKIP, child)
    if name == s.app_keys:
        if s.app_keys_stored is None:
            return Write(WriteKind.CREATE, child)  # made meanwhile: the stored keys win
        if any(s.app_keys_stored.get(k) != v for k, v in s.app_keys_data.items()):
            return Write(WriteKind.UPDATE_DATA, child, s.app_keys_data)  # a platform added
        return Write(WriteKind.SKIP, child)
    if name == s.sync_keys:
        if not s.sync_keys_stored:
            return Write(WriteKind.CREATE, child)  # made meanwhile: the stored wins
        if s.sync_keys_missing_key:
            # The key was removed from the Secret: put one back (never overwrite one).
            return Write(WriteKind.UPDATE_DATA, child, s.sync_keys_data)
        return Write(WriteKind.SKIP, child)
    if name == s.database:
        # Same password as read back: re-applying only follows the provisioned target, which
        # is unknown until the external server's admin Secret is readable.
        return Write(WriteKind.APPLY if s.database_known else WriteKind.SKIP, child)
    return None


def plan_writes(children: Sequence[Mapping[str, Any]], secrets: GeneratedSecrets) -> list[Write]:
    """One write per child, in the rendered order."""
    writes = []
    for child in children:
        special = _secret_write(child, secrets) if child["kind"] == "Secret" else None
        writes.append(special or Write(WriteKind.APPLY, child))
    return writes
