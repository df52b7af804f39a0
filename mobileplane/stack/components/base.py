"""What every stack component does: install (cached), start, check health, stop, describe.

The manager drives components through this interface only, in dependency order, so adding a
component is one module and one entry in :mod:`mobileplane.stack.manager`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mobileplane.stack.config import StackConfig
from mobileplane.stack.errors import StackError
from mobileplane.stack.procs import ProcessTable
from mobileplane.stack.progress import Progress


@dataclass(frozen=True)
class Context:
    """What a component gets from the manager: configuration, pid files, progress."""

    config: StackConfig
    procs: ProcessTable
    progress: Progress

    def log(self, name: str) -> Path:
        return self.config.logs() / f"{name}.log"


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str


class Component(Protocol):
    name: str
    #: Components that must be up before this one starts.
    requires: tuple[str, ...]

    def install(self, ctx: Context) -> None:
        """Make the component's binaries available (idempotent, cached by version)."""

    def installed(self, ctx: Context) -> bool:
        """Whether :meth:`install` has nothing left to do."""

    def start(self, ctx: Context) -> None:
        """Start what is not running and wait until it is healthy; a no-op when it is."""

    def health(self, ctx: Context) -> Health:
        """A quick check of the running component."""

    def stop(self, ctx: Context) -> list[str]:
        """Stop the processes this stack started; return their names."""

    def env(self, ctx: Context) -> dict[str, str]:
        """Connection settings, as environment variables with conventional names."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    component: str,
    what: str,
    check: Callable[[], Health],
    *,
    timeout: float,
    fix: str,
    log: Path | None = None,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.25,
) -> Health:
    """Poll ``check`` until healthy; fail fast if ``alive`` says the process has died."""
    deadline = time.monotonic() + timeout
    last = Health(False, "not checked yet")
    while time.monotonic() < deadline:
        last = check()
        if last.healthy:
            return last
        if alive is not None and not alive():
            raise StackError(component, f"{what}: the process exited ({last.detail})", fix, log)
        time.sleep(interval)
    raise StackError(
        component, f"{what}: not healthy after {timeout:.0f}s ({last.detail})", fix, log
    )


def ensure_port_free(component: str, host: str, port: int, setting: str) -> None:
    if port_open(host, port):
        raise StackError(
            component,
            f"port {port} on {host} is already in use by another program",
            f"stop that program, or choose another port: export {setting}=<free port>",
        )
