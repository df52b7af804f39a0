"""Why a service's pods are not serving, read from real pod status.

A Deployment says only *that* it is not Available. On a real node the reason is in its pods:
a container waiting in ``CrashLoopBackOff`` (its last exit code and the end of its log), an
image that cannot be pulled, a Secret key that does not exist (``CreateContainerConfigError``),
a pod no node accepts (``Unschedulable``), or a process that runs but whose readiness probe
fails (its database is down, say). This module turns the pods of one service into the one
problem worth telling a platform engineer, most severe first, so that the MobilePlatform's
``ServicesReady`` condition says ``CrashLoopBackOff`` and why instead of "waiting for gateway".

Pure: the operator lists pods (:meth:`KubeGateway.pods`) into :class:`PodView` values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

#: How much of a termination message (the end of the container's log, with
#: ``terminationMessagePolicy: FallbackToLogsOnError``) a condition message quotes.
MESSAGE_CHARS = 300


@dataclass(frozen=True)
class ContainerView:
    """The parts of a ``ContainerStatus`` that explain a failure."""

    name: str
    ready: bool = False
    restart_count: int = 0
    waiting_reason: str | None = None
    waiting_message: str | None = None
    last_exit_code: int | None = None
    last_reason: str | None = None
    last_message: str | None = None


@dataclass(frozen=True)
class PodView:
    """The parts of a pod's status that explain a failure."""

    name: str
    phase: str = "Pending"
    deleting: bool = False
    unschedulable_message: str | None = None
    containers: tuple[ContainerView, ...] = ()
    init_containers: tuple[ContainerView, ...] = ()


@dataclass(frozen=True)
class Problem:
    """The reason (a CamelCase word, as in a condition) and a sentence for people."""

    reason: str
    message: str


#: Waiting reasons, most severe first: the first found among a service's pods is reported.
#: A pull or config error never heals by itself; a crash loop may be the database, so it
#: follows them; ``ContainerCreating`` and ``PodInitializing`` are progress, not problems.
SEVERITY = (
    "CreateContainerConfigError",
    "InvalidImageName",
    "ErrImagePull",
    "ErrImageNeverPull",
    "ImagePullBackOff",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
    "Unschedulable",
    "NotReady",
)


#: Problems that never resolve by waiting: a rollout whose new pods show one is stuck even
#: while the old pods keep the Deployment Available. (Not yet ready, or waiting for room on a
#: node, is what every rollout goes through.)
STUCK = frozenset(SEVERITY[: SEVERITY.index("Unschedulable")])


def last_log_line(message: str | None) -> str:
    """The last meaningful line of a termination message, shortened for a condition.

    The services log JSON records (``{"message": ..., "exc_info": ...}``); a record's message
    and the last line of its traceback say more than the raw JSON does.
    """
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if isinstance(record, dict):
        text = str(record.get("message") or record.get("msg") or "")
        exc = record.get("exc_info") or record.get("exception")
        if isinstance(exc, str) and exc.strip():
            last = exc.strip().splitlines()[-1]
            text = f"{text}: {last}" if text else last
        line = text or line
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"


def _container_problem(pod: PodView, c: ContainerView) -> Problem | None:
    reason = c.waiting_reason
    if reason in ("CrashLoopBackOff", "RunContainerError") or (
        reason is None and not c.ready and c.last_exit_code not in (None, 0) and c.restart_count
    ):
        exit_part = f"exit code {c.last_exit_code}" if c.last_exit_code is not None else "exited"
        if c.last_reason == "OOMKilled":
            exit_part = "killed for using more memory than its limit (OOMKilled)"
        restarts = f", restarted {c.restart_count} times" if c.restart_count else ""
        tail = last_log_line(c.last_message)
        return Problem(
            reason or "CrashLoopBackOff",
            f"pod {pod.name}: container {c.name} keeps crashing ({exit_part}{restarts})"
            + (f": {tail}" if tail else ""),
        )
    if reason in SEVERITY:
        detail = (c.waiting_message or "").strip()
        return Problem(reason, f"pod {pod.name}: {reason}" + (f": {detail}" if detail else ""))
    return None


def _pod_problems(pod: PodView) -> list[Problem]:
    if pod.deleting:
        return []  # a pod on its way out (a rollout, a scale-down) is not a fault
    if pod.unschedulable_message:
        return [Problem("Unschedulable", f"pod {pod.name}: {pod.unschedulable_message}")]
    found = [
        p
        for c in (*pod.init_containers, *pod.containers)
        if (p := _container_problem(pod, c)) is not None
    ]
    if found:
        return found
    if pod.phase == "Running" and pod.containers and not all(c.ready for c in pod.containers):
        return [
            Problem(
                "NotReady",
                f"pod {pod.name}: running but its readiness probe fails (see /readyz: a "
                "dependency such as the database or the cache is unreachable)",
            )
        ]
    return []


def diagnose(pods: Sequence[PodView]) -> Problem | None:
    """The most severe problem among one service's pods, or None if none is known."""
    problems = [p for pod in pods for p in _pod_problems(pod)]
    if not problems:
        return None
    return min(problems, key=lambda p: SEVERITY.index(p.reason))
