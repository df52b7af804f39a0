"""The store, telemetry and app-config providers against protocol-faithful local endpoints
(in process): real request shapes, real JWT signing and verification, state machines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from support.stores import AppStoreFake, GooglePlayFake, app_store_app, google_play_app

from mobileplane.rollout.effects import StoreAction, StoreState
from mobileplane.rollout.engine import Counts, Measurement, MeasurementFailed
from mobileplane.rollout.providers import ProviderError, StoreTarget
from mobileplane.rollout.providers.app_store import AppStore
from mobileplane.rollout.providers.google_play import GooglePlay
from mobileplane.rollout.providers.telemetry import TelemetryHealth
from mobileplane.rollout.spec import Store

PLAY = StoreTarget("com.example.shop", "production", None, "2.4.0", "2040")
APPLE = StoreTarget(None, "production", "1234567890", "1.1.0", "42")


@pytest.fixture
async def play() -> AsyncIterator[tuple[GooglePlayFake, GooglePlay]]:
    fake = GooglePlayFake("com.example.shop", base_url="http://play")
    transport = httpx.ASGITransport(app=google_play_app(fake))
    async with httpx.AsyncClient(transport=transport) as http:
        yield fake, GooglePlay(http, "http://play")


def _state(action: StoreAction, fraction: float | None = None) -> StoreState:
    return StoreState(Store.GOOGLE_PLAY, action, fraction)


async def test_google_play_staged_rollout_walks_halts_resumes_completes(
    play: tuple[GooglePlayFake, GooglePlay],
) -> None:
    fake, provider = play
    creds = {"service-account.json": fake.service_account()}
    assert await provider.apply(PLAY, _state(StoreAction.ROLLOUT, 0.05), creds)
    assert fake.release("production", "2040") == {
        "versionCodes": ["2040"],
        "name": "2.4.0 (2040)",
        "status": "inProgress",
        "userFraction": 0.05,
    }
    # The same state again: the edit is deleted, nothing is committed.
    assert not await provider.apply(PLAY, _state(StoreAction.ROLLOUT, 0.05), creds)
    assert len(fake.commits) == 1
    assert fake.edits == {}
    assert await provider.apply(PLAY, _state(StoreAction.HALT), creds)
    halted = fake.release("production", "2040")
    assert halted is not None
    assert (halted["status"], halted["userFraction"]) == ("halted", 0.05)
    assert await provider.apply(PLAY, _state(StoreAction.ROLLOUT, 0.2), creds)
    assert fake.release("production", "2040")["status"] == "inProgress"  # type: ignore[index]
    assert await provider.apply(PLAY, _state(StoreAction.COMPLETE), creds)
    done = fake.release("production", "2040")
    assert done == {"versionCodes": ["2040"], "name": "2.4.0 (2040)", "status": "completed"}
    assert len(fake.commits) == 4


async def test_google_play_refuses_a_foreign_key(play: tuple[GooglePlayFake, GooglePlay]) -> None:
    fake, provider = play
    impostor = GooglePlayFake("com.example.shop", base_url="http://play")
    creds = {"service-account.json": impostor.service_account()}
    with pytest.raises(ProviderError, match="invalid_grant"):
        await provider.apply(PLAY, _state(StoreAction.ROLLOUT, 0.05), creds)
    with pytest.raises(ProviderError, match=r"service-account\.json"):
        await provider.apply(PLAY, _state(StoreAction.ROLLOUT, 0.05), {})
    assert fake.commits == []


@pytest.fixture
async def apple() -> AsyncIterator[tuple[AppStoreFake, AppStore]]:
    fake = AppStoreFake("1234567890")
    fake.add_version("1.1.0")
    transport = httpx.ASGITransport(app=app_store_app(fake))
    async with httpx.AsyncClient(transport=transport) as http:
        yield fake, AppStore(http, "http://apple")


async def test_app_store_phased_release_pauses_resumes_completes(
    apple: tuple[AppStoreFake, AppStore],
) -> None:
    fake, provider = apple
    creds = fake.credentials()

    def state(action: StoreAction) -> StoreState:
        return StoreState(Store.APP_STORE, action)

    assert not await provider.apply(APPLE, state(StoreAction.ROLLOUT), creds)  # already ACTIVE
    assert await provider.apply(APPLE, state(StoreAction.HALT), creds)
    assert fake.state_of("1.1.0") == "PAUSED"
    assert await provider.apply(APPLE, state(StoreAction.ROLLOUT), creds)
    assert await provider.apply(APPLE, state(StoreAction.COMPLETE), creds)
    assert not await provider.apply(APPLE, state(StoreAction.HALT), creds)  # COMPLETE is final
    assert fake.changes == [("1.1.0", "PAUSED"), ("1.1.0", "ACTIVE"), ("1.1.0", "COMPLETE")]


async def test_app_store_errors_are_provider_errors(apple: tuple[AppStoreFake, AppStore]) -> None:
    fake, provider = apple
    state = StoreState(Store.APP_STORE, StoreAction.HALT)
    other = dict(fake.credentials())
    wrong = AppStoreFake("x", key=ec.generate_private_key(ec.SECP256R1()))
    other["private-key"] = wrong.credentials()["private-key"]
    with pytest.raises(ProviderError, match="401"):
        await provider.apply(APPLE, state, other)
    with pytest.raises(ProviderError, match=r"no version 9\.9"):
        await provider.apply(
            StoreTarget(None, "production", "1234567890", "9.9", "1"), state, fake.credentials()
        )
    with pytest.raises(ProviderError, match="issuer-id"):
        await provider.apply(APPLE, state, {})
    assert fake.changes == []


HEALTH = {
    "release": {
        "release": "com.c@1.1.0+42",
        "sessions": {"total": 300, "healthy": 280, "errored": 12, "abnormal": 1, "crashed": 7},
        "users": {"total": 120, "crashed": 5},
    },
    "baseline": {
        "release": "com.c@1.0.0+41",
        "sessions": {"total": 1000, "healthy": 990, "errored": 8, "abnormal": 0, "crashed": 2},
        "users": {"total": 400, "crashed": 2},
    },
}


def _telemetry(answer: Any, status: int = 200) -> FastAPI:
    app = FastAPI()
    seen: list[dict[str, Any]] = []
    app.state.seen = seen

    @app.get("/telemetry/projects/{project}/releases/{release:path}/health")
    async def health(project: str, release: str) -> JSONResponse:
        seen.append({"project": project, "release": release})
        return JSONResponse(answer, status_code=status)

    return app


@pytest.mark.parametrize(
    ("answer", "status", "expected"),
    [
        pytest.param(
            HEALTH,
            200,
            Measurement(Counts(300, 7, 12, 120, 5), Counts(1000, 2, 8, 400, 2)),
            id="release and baseline",
        ),
        pytest.param(
            {**HEALTH, "baseline": None},
            200,
            Measurement(Counts(300, 7, 12, 120, 5)),
            id="no baseline",
        ),
        pytest.param({"error": {"message": "no such project"}}, 404, "404", id="404"),
        pytest.param({"release": {"sessions": {}}}, 200, "not release health", id="bad shape"),
    ],
)
async def test_telemetry_health_maps_or_fails_as_data(
    answer: Any, status: int, expected: Measurement | str
) -> None:
    app = _telemetry(answer, status)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        got = await TelemetryHealth(http).measure(
            "http://t",
            "shop-ios",
            "com.c@1.1.0+42",
            baseline=None,
            window="5m",
            environment="production",
        )
    if isinstance(expected, str):
        assert isinstance(got, MeasurementFailed)
        assert expected in got.reason
    else:
        assert got == expected
        assert app.state.seen == [{"project": "shop-ios", "release": "com.c@1.1.0+42"}]


async def test_telemetry_unreachable_is_a_failed_measurement() -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        got = await TelemetryHealth(http).measure(
            "http://127.0.0.1:9", "p", "r", baseline=None, window="5m", environment=None
        )
    assert isinstance(got, MeasurementFailed)
    assert "unreachable" in got.reason
