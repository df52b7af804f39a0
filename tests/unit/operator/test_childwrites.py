"""The apply policy per child: generated Secrets are created once and then kept."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mobileplane.operator.childwrites import GeneratedSecrets, WriteKind, plan_writes


def _child(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name}}


CHILDREN = [
    _child("ConfigMap", "hello-config"),
    _child("Secret", "hello-signing-keys"),
    _child("Secret", "hello-app-keys"),
    _child("Secret", "hello-sync-keys"),
    _child("Secret", "hello-database"),
    _child("Secret", "someone-elses"),
    _child("Deployment", "hello-auth"),
]

#: Everything already stored and unchanged: only declarative children are applied.
STEADY = GeneratedSecrets(
    signing_keys="hello-signing-keys",
    app_keys="hello-app-keys",
    sync_keys="hello-sync-keys",
    database="hello-database",
    signing_keys_stored=True,
    signing_keys_changed=False,
    signing_keys_data={"keys.json": "{}"},
    app_keys_stored={"ios": "k1"},
    app_keys_data={"ios": "k1"},
    sync_keys_stored=True,
    sync_keys_missing_key=False,
    sync_keys_data={"keys": "s"},
    database_known=True,
)
A, C, U, S = WriteKind.APPLY, WriteKind.CREATE, WriteKind.UPDATE_DATA, WriteKind.SKIP


@pytest.mark.parametrize(
    ("changes", "kinds"),
    [
        pytest.param({}, [A, S, S, S, A, A, A], id="steady"),
        pytest.param(
            {
                "signing_keys_stored": False,
                "app_keys_stored": None,
                "sync_keys_stored": False,
                "database_known": False,
            },
            [A, C, C, C, S, A, A],
            id="first-reconcile-external-server-unknown",
        ),
        pytest.param({"signing_keys_changed": True}, [A, U, S, S, A, A, A], id="keys-rotated"),
        pytest.param(
            {"app_keys_data": {"ios": "k1", "android": "k2"}},
            [A, S, U, S, A, A, A],
            id="a-platform-added",
        ),
        pytest.param(
            {"sync_keys_missing_key": True}, [A, S, S, U, A, A, A], id="sync-key-removed-by-hand"
        ),
    ],
)
def test_plan_writes(changes: dict[str, Any], kinds: list[WriteKind]) -> None:
    plan = plan_writes(CHILDREN, replace(STEADY, **changes))
    assert [w.kind for w in plan] == kinds
    assert [w.name for w in plan] == [c["metadata"]["name"] for c in CHILDREN]


def test_updates_carry_only_the_data_to_merge() -> None:
    [_, keys, *_] = plan_writes(CHILDREN, replace(STEADY, signing_keys_changed=True))
    assert keys.data == {"keys.json": "{}"}
