"""The Unleash flag provider against the stack's real Unleash server: the gradual rollout
follows the release, a halt switches the flag off, and the same state twice changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.stack import StackSettings
from support.unleash import UnleashAdmin

from mobileplane.rollout.effects import FlagState
from mobileplane.rollout.providers import ProviderError
from mobileplane.rollout.providers.unleash import UnleashFlags

pytestmark = pytest.mark.integration


@pytest.fixture
async def flags(stack: StackSettings) -> AsyncIterator[UnleashFlags]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield UnleashFlags(
            http, stack.unleash_url, stack.unleash_admin_token, "default", "development"
        )


def _env(admin: UnleashAdmin, flag: str) -> dict[str, Any]:
    r = admin.http.get(f"/api/admin/projects/default/features/{flag}/environments/development")
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


async def test_rollout_follows_and_halt_switches_off(
    flags: UnleashFlags, unleash_admin: UnleashAdmin
) -> None:
    flag = unleash_admin.create_flag("checkout")
    assert await flags.apply(FlagState(flag, True, 5))
    assert not await flags.apply(FlagState(flag, True, 5))  # idempotent
    env = _env(unleash_admin, flag)
    assert env["enabled"] is True
    [strategy] = env["strategies"]
    assert strategy["name"] == "flexibleRollout"
    assert strategy["parameters"] == {"rollout": "5", "stickiness": "default", "groupId": flag}
    assert await flags.apply(FlagState(flag, True, 50))
    [strategy] = _env(unleash_admin, flag)["strategies"]
    assert strategy["parameters"]["rollout"] == "50"
    assert await flags.apply(FlagState(flag, False, 0))
    env = _env(unleash_admin, flag)
    assert env["enabled"] is False
    assert len(env["strategies"]) == 1  # updated in place, never duplicated


async def test_existing_strategy_keeps_its_constraints(
    flags: UnleashFlags, unleash_admin: UnleashAdmin
) -> None:
    flag = unleash_admin.create_flag("banner")
    unleash_admin.add_rollout(flag, 1)
    r = unleash_admin.http.get(
        f"/api/admin/projects/default/features/{flag}/environments/development"
    )
    strategy = r.json()["strategies"][0]
    constraint = {"contextName": "appName", "operator": "IN", "values": ["shop"]}
    unleash_admin.http.put(
        f"/api/admin/projects/default/features/{flag}/environments/development/strategies/"
        f"{strategy['id']}",
        json={
            "name": "flexibleRollout",
            "parameters": strategy["parameters"],
            "constraints": [constraint],
        },
    ).raise_for_status()
    assert await flags.apply(FlagState(flag, True, 20))
    [after] = _env(unleash_admin, flag)["strategies"]
    assert after["parameters"]["rollout"] == "20"
    assert [c["contextName"] for c in after["constraints"]] == ["appName"]


async def test_unknown_flag_is_a_provider_error(flags: UnleashFlags) -> None:
    with pytest.raises(ProviderError, match="create the flag"):
        await flags.apply(FlagState("no-such-flag-for-release-tests", True, 5))
