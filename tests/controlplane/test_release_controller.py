"""The release controller on the real control plane, with real Unleash, our telemetry service
fed by the real sentry-sdk, our app-config service, and protocol-faithful store endpoints.

The controller runs in-process (KopfRunner) as the chart's ServiceAccount, watching the
test's namespace, with a 0.5 s tick and 1 s requeues. Waiting is bounded polling.
"""

from __future__ import annotations

import gc
import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from support.operator import (
    apply,
    chart_objects,
    environment,
    eventually,
    install_crds,
    operator_kubeconfig,
)
from support.release import (
    create_release,
    events_of,
    get_release,
    send_sessions,
    service_server,
    serving,
    telemetry_env,
)
from support.stack import StackSettings
from support.stores import AppStoreFake, GooglePlayFake, app_store_app, google_play_app
from support.unleash import UnleashAdmin
from support.uvicorn_server import ServerHandle

from mobileplane.cli import main as cli
from mobileplane.services.appconfig.service import SERVICE as APPCONFIG
from mobileplane.services.telemetry.service import SERVICE as TELEMETRY

pytestmark = [
    pytest.mark.controlplane,
    pytest.mark.filterwarnings("ignore:unclosed transport:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*_SelectorTransport:pytest.PytestUnraisableExceptionWarning"
    ),
]

PACKAGE = "com.example.shop"
RELEASE = f"{PACKAGE}@2.4.0+2040"
#: The bound on reacting to data: tick (0.5 s) + requeue cap (1 s) + the calls, with a wide
#: margin for a loaded 2-core machine. bench/bench_release.py measures the real figure.
REACT_WITHIN = 60


@dataclass
class World:
    kube_api: k8s.ApiClient
    namespace: str
    telemetry_url: str
    appconfig_url: str
    play: GooglePlayFake
    apple: AppStoreFake
    unleash: UnleashAdmin
    env: dict[str, str]

    @contextmanager
    def controller(self) -> Iterator[KopfRunner]:
        args = [
            "run",
            "--namespace",
            self.namespace,
            "--standalone",
            "--verbose",
            "-m",
            "mobileplane.rollout.controller",
        ]
        with environment(**self.env), KopfRunner(args, timeout=60) as runner:
            yield runner
        # kopf's connections of a stopped runner are closed by the garbage collector: collect
        # now, under this module's warning filters, not in some later test.
        gc.collect()
        assert runner.exception is None, runner.output
        assert runner.exit_code == 0, runner.output

    def release(self, name: str, steps: list[dict[str, Any]], **spec: Any) -> str:
        flags = spec.pop("flags", [])
        annotations = spec.pop("annotations", {})
        body = {
            "apiVersion": "mobileplane.io/v1alpha1",
            "kind": "MobileRelease",
            "metadata": {
                "name": name,
                "annotations": {
                    "release.mobileplane.io/telemetry-url": self.telemetry_url,
                    "release.mobileplane.io/appconfig-url": self.appconfig_url,
                    **annotations,
                },
            },
            "spec": {
                "platformRef": {"name": "shop"},
                "app": {"platform": "android", "version": "2.4.0", "build": "2040"},
                "steps": steps,
                "gates": {
                    "minCrashFreeSessions": 90,
                    "minCrashFreeUsers": 80,
                    "minSessions": 20,
                    "minUsers": 10,
                    **spec.pop("gates", {}),
                },
                "flags": flags,
                "store": {"kind": "googlePlay", "packageName": PACKAGE},
                **spec,
            },
        }
        create_release(self.kube_api, self.namespace, body)
        return name

    def status(self, name: str) -> dict[str, Any]:
        return dict(get_release(self.kube_api, self.namespace, name).get("status") or {})

    def wait(
        self, name: str, what: str, check: Any, timeout: float = REACT_WITHIN
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = self.status(name)
            return status if check(status) else None

        try:
            return eventually(probe, timeout, f"{name}: {what}")
        except AssertionError as e:
            raise AssertionError(f"{e}; status: {self.status(name)}") from None

    def appconfig(self) -> dict[str, Any]:
        r = httpx.get(f"{self.appconfig_url}/appconfig/shop", timeout=10)
        return dict(r.json())

    def flag(self, flag: str) -> tuple[bool, str | None]:
        r = self.unleash.http.get(
            f"/api/admin/projects/default/features/{flag}/environments/development"
        )
        r.raise_for_status()
        env = r.json()
        rollouts = [
            s["parameters"].get("rollout")
            for s in env.get("strategies") or []
            if s["name"] == "flexibleRollout"
        ]
        return bool(env["enabled"]), (rollouts[0] if rollouts else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def world(
    kube_api: k8s.ApiClient,
    k8s_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    stack: StackSettings,
    unleash_admin: UnleashAdmin,
) -> Iterator[World]:
    install_crds(kube_api)
    sa = f"mp-release-{uuid.uuid4().hex[:8]}"
    for obj in chart_objects(k8s_namespace, sa):
        apply(kube_api, obj, k8s_namespace if obj["kind"] == "ServiceAccount" else None)
    kubeconfig = operator_kubeconfig(kube_api, k8s_namespace, sa, tmp_path / "kubeconfig")
    for key, value in telemetry_env().items():
        monkeypatch.setenv(key, value)
    play = GooglePlayFake(PACKAGE)
    play_server = ServerHandle(lambda: google_play_app(play))
    play_server.start()
    play.base_url = play_server.url
    apple = AppStoreFake("1234567890")
    apple.add_version("2.4.0")
    apple_server = ServerHandle(lambda: app_store_app(apple))
    apple_server.start()
    core = k8s.CoreV1Api(kube_api)
    for secret, data in (
        ("shop-googleplay", {"service-account.json": play.service_account()}),
        ("shop-appstore", apple.credentials()),
    ):
        core.create_namespaced_secret(
            k8s_namespace,
            k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=secret), string_data=data),
        )
    env = {
        "KUBECONFIG": str(kubeconfig),
        "MOBILEPLANE_OPERATOR_STANDALONE": "true",
        "MOBILEPLANE_RELEASE_STANDALONE": "true",
        "MOBILEPLANE_RELEASE_TICK_SECONDS": "0.5",
        "MOBILEPLANE_RELEASE_MAX_REQUEUE_SECONDS": "1",
        "MOBILEPLANE_RELEASE_ACTION_RETRY_SECONDS": "1",
        "MOBILEPLANE_RELEASE_HTTP_TIMEOUT_SECONDS": "5",
        "MOBILEPLANE_RELEASE_UNLEASH_URL": stack.unleash_url,
        "MOBILEPLANE_RELEASE_UNLEASH_TOKEN": stack.unleash_admin_token,
        "MOBILEPLANE_RELEASE_UNLEASH_ENVIRONMENT": "development",
        "MOBILEPLANE_RELEASE_GOOGLE_PLAY_URL": play_server.url,
        "MOBILEPLANE_RELEASE_APP_STORE_URL": apple_server.url,
    }
    with ExitStack() as stack_:
        stack_.enter_context(serving(play_server))
        stack_.enter_context(serving(apple_server))
        telemetry = stack_.enter_context(
            serving(service_server(TELEMETRY, database_url, redis_url, redis_prefix))
        )
        appconfig = stack_.enter_context(
            serving(service_server(APPCONFIG, database_url, redis_url, redis_prefix))
        )
        try:
            yield World(
                kube_api,
                k8s_namespace,
                telemetry.url,
                appconfig.url,
                play,
                apple,
                unleash_admin,
                env,
            )
        finally:
            rbac = k8s.RbacAuthorizationV1Api(kube_api)
            for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
                try:
                    delete(sa)
                except k8s.ApiException as e:
                    if e.status != 404:
                        raise


def test_healthy_release_walks_every_step_to_100(world: World) -> None:
    flag = world.unleash.create_flag("new-checkout")
    late = world.unleash.create_flag("banner")
    send_sessions(world.telemetry_url, RELEASE, healthy=40, crashed=0, users=20)
    with world.controller():
        name = world.release(
            "healthy",
            [
                {"setWeight": 10},
                {"analysis": "1s"},
                {"setWeight": 50},
                {"pause": "1s"},
                {"setWeight": 100},
            ],
            flags=[{"name": flag}, {"name": late, "followWeight": False, "enableAtStep": 3}],
        )
        status = world.wait(name, "Completed", lambda s: s.get("phase") == "Completed")
    assert status["weight"] == 100
    actions = [(h["action"], h["weight"]) for h in status["history"]]
    assert ("advance", 10) in actions and ("advance", 50) in actions
    assert actions[-1] == ("complete", 100)
    assert status["lastAnalysis"]["verdict"] == "pass"
    assert world.flag(flag) == (True, "100")
    assert world.flag(late) == (True, "100")
    assert world.play.release("production", "2040")["status"] == "completed"  # type: ignore[index]
    fractions = [
        r["userFraction"]
        for commit in world.play.commits
        for r in commit.get("production", [])
        if r.get("status") == "inProgress"
    ]
    assert fractions == [0.1, 0.5]
    assert world.appconfig()["platforms"]["android"]["latest_version"] == "2.4.0"
    reasons = [reason for reason, _ in events_of(world.kube_api, world.namespace, name)]
    assert "StepStarted" in reasons and "Completed" in reasons


def test_crashing_release_is_halted_everywhere(world: World) -> None:
    flag = world.unleash.create_flag("new-checkout")
    with world.controller():
        name = world.release(
            "crashing",
            [{"setWeight": 10}, {"analysis": "1h"}, {"setWeight": 100}],
            flags=[{"name": flag}],
        )
        world.wait(
            name,
            "waiting for data at 10%",
            lambda s: (
                s.get("weight") == 10
                and "not enough data" in str(s.get("lastAnalysis", {}).get("reasons"))
            ),
        )
        assert world.flag(flag) == (True, "10")
        # The crash spike arrives: half the sessions crash.
        send_sessions(world.telemetry_url, RELEASE, healthy=20, crashed=20, users=20)
        status = world.wait(name, "Halted", lambda s: s.get("phase") == "Halted")
    assert status["lastAnalysis"]["verdict"] == "fail"
    assert "crash-free sessions 50.00%" in status["lastAnalysis"]["reasons"][0]
    healthy = next(c for c in status["conditions"] if c["type"] == "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "GatesFailed")
    assert world.flag(flag)[0] is False
    assert world.play.release("production", "2040")["status"] == "halted"  # type: ignore[index]
    halted = world.appconfig()["platforms"]["android"]["halted_versions"]
    assert [h["version"] for h in halted] == ["2.4.0"]
    assert "crash-free sessions" in halted[0]["reason"]
    assert "Halted" in [r for r, _ in events_of(world.kube_api, world.namespace, name)]


def test_too_few_sessions_waits_and_never_advances(world: World) -> None:
    send_sessions(world.telemetry_url, RELEASE, healthy=5, crashed=0, users=5)
    with world.controller():
        name = world.release("few", [{"setWeight": 10}, {"analysis": "1s"}, {"setWeight": 100}])
        first = world.wait(
            name,
            "an analysis without enough data",
            lambda s: (
                "not enough data: 5/20 sessions"
                in str((s.get("lastAnalysis") or {}).get("reasons"))
            ),
        )
        seen = {first["lastAnalysis"]["at"]}
        for _ in range(3):  # three more decisions, whatever time they take
            later = world.wait(
                name, "another decision", lambda s: s["lastAnalysis"]["at"] not in seen
            )
            seen.add(later["lastAnalysis"]["at"])
            assert (later["phase"], later["currentStep"], later["weight"]) == ("Progressing", 1, 10)
    assert world.play.release("production", "2040")["userFraction"] == 0.1  # type: ignore[index]


def test_telemetry_down_pauses_after_the_error_limit(world: World) -> None:
    with world.controller():
        name = world.release(
            "blind",
            [{"setWeight": 10}, {"analysis": "1s"}, {"setWeight": 100}],
            gates={"maxConsecutiveFailures": 2},
            failurePolicy="pause",
            annotations={
                "release.mobileplane.io/telemetry-url": f"http://127.0.0.1:{_free_port()}"
            },
        )
        status = world.wait(name, "Paused", lambda s: s.get("phase") == "Paused")
    assert status["weight"] == 10
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Healthy"]["reason"] == "MeasurementFailed"
    assert conditions["Progressing"]["reason"] == "Paused"
    assert "measurement failed (2/2)" in conditions["Progressing"]["message"]
    assert "unreachable" in conditions["Progressing"]["message"]


def _cli(world: World, *args: str) -> str:
    """``mobileplane release …`` as the chart's ServiceAccount (it may patch releases)."""
    with environment(KUBECONFIG=world.env["KUBECONFIG"]):
        result = CliRunner().invoke(cli, ["release", *args, "-n", world.namespace])
    assert result.exit_code == 0, result.output
    return result.output


def test_manual_control_and_restart_resume_exactly(world: World) -> None:
    with world.controller():
        name = world.release(
            "manual",
            [
                {"setWeight": 10},
                {"approval": True},
                {"setWeight": 30},
                {"pause": "1h"},
                {"setWeight": 100},
            ],
            gates={"minSessions": 1, "minUsers": 1},
        )
        world.wait(
            name,
            "awaiting approval",
            lambda s: s.get("currentStep") == 1 and s.get("phase") == "Progressing",
        )
        out = _cli(world, "promote", name)
        assert "promote" in out
        paused_step = world.wait(
            name,
            "step 3 (pause) at 30%",
            lambda s: s.get("currentStep") == 3 and s.get("weight") == 30,
        )
    # Restart: a new controller resumes the pause where it was, same step start.
    with world.controller():
        _cli(world, "pause", name)
        status = world.wait(name, "Paused", lambda s: s.get("phase") == "Paused")
        assert status["stepStartedAt"] == paused_step["stepStartedAt"]
        assert status["currentStep"] == 3
        _cli(world, "resume", name)
        world.wait(name, "Progressing", lambda s: s.get("phase") == "Progressing")
        _cli(world, "abort", name)
        status = world.wait(name, "Halted", lambda s: s.get("phase") == "Halted")
    controls = [
        h["reason"].split(":")[0] for h in status["history"] if h["reason"].startswith("control")
    ]
    assert controls == ["control promote", "control pause", "control resume", "control abort"]
    annotations = get_release(world.kube_api, world.namespace, name)["metadata"].get("annotations")
    assert "release.mobileplane.io/control" not in (annotations or {})
    assert world.play.release("production", "2040")["status"] == "halted"  # type: ignore[index]


def test_unknown_control_is_refused_with_an_event(world: World) -> None:
    with world.controller():
        name = world.release(
            "odd",
            [{"setWeight": 10}, {"approval": True}, {"setWeight": 100}],
            gates={"minSessions": 1, "minUsers": 1},
        )
        world.wait(name, "awaiting approval", lambda s: s.get("currentStep") == 1)
        k8s.CustomObjectsApi(world.kube_api).patch_namespaced_custom_object(
            "mobileplane.io",
            "v1alpha1",
            world.namespace,
            "mobilereleases",
            name,
            {"metadata": {"annotations": {"release.mobileplane.io/control": "launch"}}},
        )

        def refused() -> bool:
            return any(
                reason == "BadControl" and "unknown control 'launch'" in message
                for reason, message in events_of(world.kube_api, world.namespace, name)
            )

        eventually(refused, REACT_WITHIN, "a BadControl Event")
        eventually(
            lambda: (
                "release.mobileplane.io/control"
                not in (
                    get_release(world.kube_api, world.namespace, name)["metadata"].get(
                        "annotations"
                    )
                    or {}
                )
            ),
            REACT_WITHIN,
            "the bad control annotation to be removed",
        )
    status = world.status(name)
    assert (status["phase"], status["currentStep"], status["weight"]) == ("Progressing", 1, 10)


def test_ios_phased_release_follows_pause_resume_and_completes(world: World) -> None:
    """The App Store has no percentages: its phased release pauses, resumes and completes."""
    ios = {"platform": "ios", "version": "2.4.0", "build": "77"}
    with world.controller():
        name = world.release(
            "ios",
            [{"setWeight": 10}, {"approval": True}, {"setWeight": 100}],
            app=ios,
            store={"kind": "appStore", "appId": "1234567890"},
            gates={"minSessions": 1, "minUsers": 1},
            annotations={"release.mobileplane.io/telemetry-release": "com.example.shop@2.4.0+77"},
        )
        world.wait(name, "awaiting approval", lambda s: s.get("currentStep") == 1)
        _cli(world, "pause", name)
        world.wait(name, "Paused", lambda s: s.get("phase") == "Paused")
        eventually(lambda: world.apple.state_of("2.4.0") == "PAUSED", REACT_WITHIN, "PAUSED")
        _cli(world, "resume", name)
        world.wait(name, "Progressing", lambda s: s.get("phase") == "Progressing")
        _cli(world, "promote", name)
        world.wait(name, "Completed", lambda s: s.get("phase") == "Completed")
    assert world.apple.changes == [("2.4.0", "PAUSED"), ("2.4.0", "ACTIVE"), ("2.4.0", "COMPLETE")]
    assert world.appconfig()["platforms"]["ios"]["latest_version"] == "2.4.0"
