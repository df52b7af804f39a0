"""What a service's pods say when it is not available: the diagnosis and the condition."""

from __future__ import annotations

import json

import pytest
from kubernetes import client as k8s

from mobileplane.operator.conditions import FALSE, TRUE, services_observation
from mobileplane.operator.kube import pod_view
from mobileplane.operator.podhealth import (
    MESSAGE_CHARS,
    ContainerView,
    PodView,
    Problem,
    diagnose,
    last_log_line,
)

CRASHING = ContainerView(
    name="gateway",
    restart_count=4,
    waiting_reason="CrashLoopBackOff",
    waiting_message="back-off 40s restarting failed container",
    last_exit_code=1,
    last_reason="Error",
    last_message='{"message": "startup failed", "exc_info": "Traceback...\\nOperationalError: '
    'password authentication failed for user \\"app\\""}\n',
)


@pytest.mark.parametrize(
    ("pods", "reason", "fragments"),
    [
        ([], None, []),
        ([PodView("p", "Running", containers=(ContainerView("c", ready=True),))], None, []),
        # Progress is not a problem.
        (
            [PodView("p", containers=(ContainerView("c", waiting_reason="ContainerCreating"),))],
            None,
            [],
        ),
        (
            [PodView("p-1", "Running", containers=(CRASHING,))],
            "CrashLoopBackOff",
            [
                "pod p-1",
                "container gateway keeps crashing",
                "exit code 1",
                "restarted 4 times",
                'startup failed: OperationalError: password authentication failed for user "app"',
            ],
        ),
        (
            [
                PodView(
                    "p",
                    "Running",
                    containers=(
                        ContainerView(
                            "c",
                            restart_count=2,
                            waiting_reason="CrashLoopBackOff",
                            last_exit_code=137,
                            last_reason="OOMKilled",
                        ),
                    ),
                )
            ],
            "CrashLoopBackOff",
            ["OOMKilled", "restarted 2 times"],
        ),
        # Between a crash and the back-off: terminated, not yet waiting.
        (
            [
                PodView(
                    "p",
                    "Running",
                    containers=(ContainerView("c", restart_count=1, last_exit_code=2),),
                )
            ],
            "CrashLoopBackOff",
            ["exit code 2"],
        ),
        (
            [
                PodView(
                    "p",
                    containers=(
                        ContainerView(
                            "c",
                            waiting_reason="CreateContainerConfigError",
                            waiting_message='secret "db" not found',
                        ),
                    ),
                )
            ],
            "CreateContainerConfigError",
            ['secret "db" not found'],
        ),
        (
            [
                PodView(
                    "p",
                    containers=(
                        ContainerView(
                            "c",
                            waiting_reason="ImagePullBackOff",
                            waiting_message='Back-off pulling image "x:1"',
                        ),
                    ),
                )
            ],
            "ImagePullBackOff",
            ['Back-off pulling image "x:1"'],
        ),
        (
            [PodView("p", unschedulable_message="0/2 nodes are available: 1 node(s) had taint")],
            "Unschedulable",
            ["0/2 nodes are available"],
        ),
        (
            [PodView("p", "Running", containers=(ContainerView("c", ready=False),))],
            "NotReady",
            ["readiness probe fails"],
        ),
        # An init container that keeps failing (the schema never arrives) is a crash loop.
        (
            [
                PodView(
                    "p",
                    "Pending",
                    init_containers=(
                        ContainerView(
                            "wait-for-schema",
                            restart_count=1,
                            waiting_reason="CrashLoopBackOff",
                            last_exit_code=2,
                            last_message="error: the schema is still behind this image",
                        ),
                    ),
                    containers=(ContainerView("c", waiting_reason="PodInitializing"),),
                )
            ],
            "CrashLoopBackOff",
            ["container wait-for-schema keeps crashing", "still behind"],
        ),
        # Waiting for the schema is progress, not a fault.
        (
            [
                PodView(
                    "p",
                    "Pending",
                    init_containers=(ContainerView("wait-for-schema"),),
                    containers=(ContainerView("c", waiting_reason="PodInitializing"),),
                )
            ],
            None,
            [],
        ),
        # A pod being deleted (a rollout) is not a fault, even when it is not ready.
        (
            [PodView("p", "Running", deleting=True, containers=(CRASHING,))],
            None,
            [],
        ),
        # The most severe problem of several pods wins: a config error never heals by itself.
        (
            [
                PodView("a", "Running", containers=(CRASHING,)),
                PodView(
                    "b",
                    containers=(ContainerView("c", waiting_reason="CreateContainerConfigError"),),
                ),
            ],
            "CreateContainerConfigError",
            ["pod b"],
        ),
    ],
)
def test_diagnose(pods: list[PodView], reason: str | None, fragments: list[str]) -> None:
    found = diagnose(pods)
    if reason is None:
        assert found is None
        return
    assert found is not None
    assert found.reason == reason
    for fragment in fragments:
        assert fragment in found.message


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (None, ""),
        ("", ""),
        ("plain\nlast line\n\n", "last line"),
        (json.dumps({"message": "boom"}), "boom"),
        (json.dumps({"msg": "m", "exception": "T\nValueError: x"}), "m: ValueError: x"),
        (json.dumps({"exc_info": "T\nKeyError: 'k'"}), "KeyError: 'k'"),
        ("[1, 2]", "[1, 2]"),
    ],
)
def test_last_log_line(message: str | None, line: str) -> None:
    assert last_log_line(message) == line


def test_last_log_line_is_bounded() -> None:
    line = last_log_line("x" * 10_000)
    assert len(line) == MESSAGE_CHARS
    assert line.endswith("…")


def test_services_ready_names_the_pods_problem() -> None:
    available = {"gateway": (1, 0, False), "auth": (1, 1, True), "sync": (1, 0, False)}
    problems = {
        "gateway": Problem("CrashLoopBackOff", "pod g: container gateway keeps crashing"),
        "sync": Problem("CreateContainerConfigError", 'pod s: secret "x" not found'),
    }
    obs = services_observation(["gateway", "auth", "sync"], available, problems)
    assert (obs.status, obs.reason) == (FALSE, "CreateContainerConfigError")
    assert obs.message == (
        'gateway: pod g: container gateway keeps crashing; sync: pod s: secret "x" not found'
    )
    # A problem of an available service (one bad replica of three) does not fail the platform.
    obs = services_observation(["auth"], available, {"auth": problems["gateway"]})
    assert obs.status == TRUE
    # Without a diagnosis, the counts.
    obs = services_observation(["gateway"], available, {})
    assert (obs.reason, obs.message) == (
        "DeploymentsNotAvailable",
        "waiting for gateway (0/1 available)",
    )


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        pytest.param("ErrImageNeverPull", FALSE, id="new-image-never-runs"),
        pytest.param("CrashLoopBackOff", FALSE, id="new-version-crashes"),
        pytest.param("CreateContainerConfigError", FALSE, id="new-secret-key-missing"),
        # What every rollout goes through: not stuck.
        pytest.param("NotReady", TRUE, id="new-pod-not-ready-yet"),
        pytest.param("Unschedulable", TRUE, id="waiting-for-room"),
    ],
)
def test_a_stuck_rollout_is_named_though_the_old_pods_serve(reason: str, status: str) -> None:
    available = {"appconfig": (1, 1, True)}
    problems = {"appconfig": Problem(reason, "pod a-2: " + reason)}
    obs = services_observation(["appconfig"], available, problems, rolling={"appconfig"})
    assert obs.status == status
    if status == FALSE:
        assert obs.reason == reason
        assert obs.message == f"appconfig: pod a-2: {reason} (the old pods still serve)"
    # The same problem on a service not rolling (one bad replica among good ones): available.
    assert services_observation(["appconfig"], available, problems).status == TRUE


def test_pod_view_reads_the_api_objects() -> None:
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="gw-1", labels={"app.kubernetes.io/component": "gateway"}),
        status=k8s.V1PodStatus(
            phase="Running",
            conditions=[k8s.V1PodCondition(type="PodScheduled", status="True")],
            container_statuses=[
                k8s.V1ContainerStatus(
                    name="gateway",
                    image="i",
                    image_id="",
                    ready=False,
                    restart_count=3,
                    state=k8s.V1ContainerState(
                        waiting=k8s.V1ContainerStateWaiting(reason="CrashLoopBackOff", message="m")
                    ),
                    last_state=k8s.V1ContainerState(
                        terminated=k8s.V1ContainerStateTerminated(
                            exit_code=1, reason="Error", message="bad password"
                        )
                    ),
                )
            ],
        ),
    )
    view = pod_view(pod)
    assert view == PodView(
        name="gw-1",
        phase="Running",
        containers=(
            ContainerView(
                name="gateway",
                restart_count=3,
                waiting_reason="CrashLoopBackOff",
                waiting_message="m",
                last_exit_code=1,
                last_reason="Error",
                last_message="bad password",
            ),
        ),
    )
    pending = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="p"),
        status=k8s.V1PodStatus(
            phase="Pending",
            conditions=[
                k8s.V1PodCondition(
                    type="PodScheduled", status="False", reason="Unschedulable", message="taint"
                )
            ],
        ),
    )
    assert pod_view(pending).unschedulable_message == "taint"
