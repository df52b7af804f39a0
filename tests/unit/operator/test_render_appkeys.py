"""The apps' telemetry projects and DSN keys: which to make, what the Secret holds, the DSNs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from render_fixtures import MINIMAL, make_input, with_changes

from mobileplane.operator.render import CONFIG_HASH_ANNOTATION, render
from mobileplane.operator.render.appkeys import (
    PROJECTS_KEY,
    SOURCES_KEY,
    app_keys_data,
    app_platforms,
    apps_status,
    dsn,
    missing_platforms,
    stored_keys,
    stored_write_keys,
    telemetry_projects,
)
from mobileplane.operator.render.inputs import PlatformRef
from mobileplane.operator.spec import MobilePlatformSpec

REF = PlatformRef(name="shop", namespace="apps", uid="u")
ANDROID = {"packageNames": ["com.example.hello"]}
BOTH = with_changes(MINIMAL, {"app.android": ANDROID})
ANDROID_ONLY = with_changes(BOTH, {"app.ios": None})


def spec(raw: dict[str, object]) -> MobilePlatformSpec:
    return MobilePlatformSpec.model_validate(raw)


@pytest.mark.parametrize(
    ("raw", "platforms"),
    [
        pytest.param(MINIMAL, ["ios"], id="ios"),
        pytest.param(BOTH, ["ios", "android"], id="both"),
        pytest.param(ANDROID_ONLY, ["android"], id="android"),
    ],
)
def test_app_platforms(raw: dict[str, object], platforms: list[str]) -> None:
    assert app_platforms(spec(raw)) == platforms


@pytest.mark.parametrize(
    ("raw", "keys", "missing"),
    [
        pytest.param(BOTH, {}, ["ios", "android"], id="first-reconcile"),
        pytest.param(BOTH, {"ios": "k1"}, ["android"], id="android-added"),
        pytest.param(MINIMAL, {"ios": "k1", "android": "k2"}, [], id="android-removed"),
        pytest.param(BOTH, {"ios": ""}, ["ios", "android"], id="empty-is-missing"),
    ],
)
def test_missing_platforms(
    raw: dict[str, object], keys: dict[str, str], missing: list[str]
) -> None:
    assert missing_platforms(spec(raw), keys) == missing


def test_a_removed_platform_keeps_its_key_but_loses_its_project() -> None:
    keys = {"ios": "k1", "android": "k2"}
    data = app_keys_data(REF, spec(MINIMAL), keys)
    assert stored_keys(data) == keys  # adding Android back brings back the same DSN
    assert [p["slug"] for p in json.loads(data[PROJECTS_KEY])] == ["shop-ios"]


def test_projects_have_fixed_ids_and_the_release_controllers_slugs() -> None:
    projects = telemetry_projects(REF, spec(BOTH), {"ios": "k1", "android": "k2"})
    assert projects == [
        {
            "id": 1,
            "slug": "shop-ios",
            "name": "Hello (iOS)",
            "platform": "ios",
            "keys": [{"public_key": "k1", "label": "operator"}],
        },
        {
            "id": 2,
            "slug": "shop-android",
            "name": "Hello (Android)",
            "platform": "android",
            "keys": [{"public_key": "k2", "label": "operator"}],
        },
    ]


def test_stored_keys_ignore_other_entries() -> None:
    assert stored_keys(None) == {}
    assert stored_keys({"telemetry-key-ios": "k", PROJECTS_KEY: "[]", "other": "x"}) == {"ios": "k"}


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        pytest.param(
            "https://api.shop.example.com", "https://k@api.shop.example.com/telemetry/1", id="host"
        ),
        pytest.param(
            "http://shop-gateway.apps.svc:8080",
            "http://k@shop-gateway.apps.svc:8080/telemetry/1",
            id="in-cluster-port",
        ),
        pytest.param(
            "https://h.example.com/base/", "https://k@h.example.com/base/telemetry/1", id="path"
        ),
    ],
)
def test_dsn(gateway: str, expected: str) -> None:
    assert dsn(gateway, "k", 1) == expected


def test_status_lists_each_platform_with_a_key() -> None:
    status = apps_status(REF, spec(BOTH), {"ios": "k1"}, "https://api.example.com")
    assert status == {
        "ios": {
            "telemetryProject": "shop-ios",
            "sentryDSN": "https://k1@api.example.com/telemetry/1",
        }
    }


def _hashes(raw: dict[str, object], keys: dict[str, str]) -> dict[str, str]:
    """Each service's config hash, rendered with these DSN keys."""
    inp = make_input(raw)
    inp = replace(inp, generated=replace(inp.generated, app_keys=keys))
    return {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"]["template"]["metadata"][
            "annotations"
        ][CONFIG_HASH_ANNOTATION]
        for o in render(inp)
        if o["kind"] == "Deployment" and o["metadata"]["name"] != "hello-redis"
    }


def test_a_platform_added_rolls_telemetry_only() -> None:
    before = _hashes(BOTH, {"ios": "k1"})
    after = _hashes(BOTH, {"ios": "k1", "android": "k2"})
    assert {s for s in after if after[s] != before[s]} == {"telemetry"}


def test_the_hash_does_not_carry_the_keys() -> None:
    inp = make_input(BOTH)
    for obj in render(inp):
        annotations = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
        for key in inp.generated.app_keys.values():
            assert key not in json.dumps(annotations or {})


def test_analytics_sources_and_write_keys() -> None:
    keys, write = {"ios": "k1", "android": "k2"}, {"ios": "w" * 20}
    data = app_keys_data(REF, spec(BOTH), keys, write)
    assert stored_write_keys(data) == write
    assert json.loads(data[SOURCES_KEY]) == [
        {"slug": "shop-ios", "name": "Hello (iOS)", "write_keys": ["w" * 20]}
    ]
    status = apps_status(REF, spec(BOTH), keys, "https://api.example.com", write)
    assert status["ios"]["analyticsWriteKey"] == "w" * 20
    assert "analyticsWriteKey" not in status["android"]


def test_a_new_write_key_rolls_analytics_only() -> None:
    def hashes(write: dict[str, str]) -> dict[str, str]:
        inp = make_input(BOTH)
        inp = replace(inp, generated=replace(inp.generated, write_keys=write))
        return {
            o["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"]["template"][
                "metadata"
            ]["annotations"][CONFIG_HASH_ANNOTATION]
            for o in render(inp)
            if o["kind"] == "Deployment" and o["metadata"]["name"] != "hello-redis"
        }

    before, after = hashes({"ios": "w" * 20}), hashes({"ios": "w" * 20, "android": "v" * 20})
    assert {s for s in after if after[s] != before[s]} == {"analytics"}
