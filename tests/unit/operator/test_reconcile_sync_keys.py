"""The sync checkpoint key is made on the first reconcile and kept by every later one.

A new key would make every device's checkpoint token unverifiable (a full resync for all of
them), so the operator generates ``<name>-sync-keys`` once, reads it back afterwards, and never
overwrites it; a key rotated by hand in the Secret is kept as written. Reconciles run against
an in-memory stand-in for the Kubernetes API (only what a minimal platform touches).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from render_fixtures import MINIMAL

from mobileplane.operator.reconcile import Deps, reconcile
from mobileplane.operator.render.secrets import stored_sync_keys
from mobileplane.services.sync.tokens import parse_keys

NS = "apps"
SECRET = "hello-sync-keys"


class _Kube:
    """Secrets kept in memory; every other child applied is recorded, nothing is ready."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, str]] = {}
        self.writes: list[tuple[str, str]] = []  # (verb, Secret name)

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        data = self.secrets.get(name)
        return dict(data) if data is not None else None

    async def create_if_absent(self, obj: Mapping[str, Any]) -> bool:
        name = obj["metadata"]["name"]
        if name in self.secrets:
            return False
        self.secrets[name] = dict(obj["stringData"])
        self.writes.append(("create", name))
        return True

    async def update_secret_data(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        self.secrets[name].update(data)
        self.writes.append(("update", name))

    async def apply(self, obj: Mapping[str, Any]) -> None:
        pass

    async def prune(self, *args: Any) -> list[str]:
        return []

    async def statefulset_ready(self, namespace: str, name: str) -> bool:
        return False

    async def deployments(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return []

    async def pods(self, namespace: str, selector: str) -> list[Any]:
        return []


def _deps(kube: _Kube) -> Deps:
    return Deps(
        kube=cast(Any, kube),
        postgres=cast(Any, None),
        buckets=cast(Any, None),
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )


BODY = {
    "apiVersion": "mobileplane.io/v1alpha1",
    "kind": "MobilePlatform",
    "metadata": {"name": "hello", "namespace": NS, "uid": "u-1", "generation": 1},
    "spec": MINIMAL,
}


async def test_the_key_is_made_once_and_kept_across_reconciles() -> None:
    kube = _Kube()
    await reconcile(_deps(kube), BODY)
    key = stored_sync_keys(kube.secrets[SECRET])
    assert key is not None and parse_keys(key).retained == ()  # one usable random key
    for _ in range(3):
        await reconcile(_deps(kube), BODY)
    assert stored_sync_keys(kube.secrets[SECRET]) == key
    assert [w for w in kube.writes if w[1] == SECRET] == [("create", SECRET)]


async def test_each_platform_gets_its_own_random_key() -> None:
    one, two = _Kube(), _Kube()
    await reconcile(_deps(one), BODY)
    await reconcile(_deps(two), BODY)
    assert one.secrets[SECRET] != two.secrets[SECRET]


async def test_keys_rotated_by_hand_are_kept_as_written() -> None:
    kube = _Kube()
    rotated = f"{'n' * 43},{'o' * 43}"
    kube.secrets[SECRET] = {"checkpoint-keys": rotated}
    await reconcile(_deps(kube), BODY)
    assert kube.secrets[SECRET] == {"checkpoint-keys": rotated}
    assert not [w for w in kube.writes if w[1] == SECRET]


async def test_a_key_removed_from_the_secret_is_put_back() -> None:
    kube = _Kube()
    kube.secrets[SECRET] = {}
    await reconcile(_deps(kube), BODY)
    key = stored_sync_keys(kube.secrets[SECRET])
    assert key is not None and parse_keys(key).signing
    assert kube.writes == [w for w in kube.writes if w != ("create", SECRET)]
    assert ("update", SECRET) in kube.writes
