"""A server binary run as a child process: started in its own session, probed, stopped.

The child gets its own session (``start_new_session``) so that a Ctrl-C in the terminal
reaches only us: we then stop the app first and the servers after, in order, instead of every
process racing to exit at once. Output goes to a log file whose tail is quoted when the server
fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Ports 50000-59999 belong to the full local stack (`mobileplane stack up`): never pick one.
RESERVED_PORTS = range(50000, 60000)


class ServerStartError(RuntimeError):
    """A server did not become ready; the message says why and quotes its log."""


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account to run a server as (used when we are root)."""

    name: str
    uid: int
    gid: int
    home: str


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: a port held only by connections in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(host: str, preferred: int, *, attempts: int = 50) -> int:
    """``preferred`` if free (stable across runs), else the next free one, else any free one."""
    for port in range(preferred, preferred + attempts):
        if port not in RESERVED_PORTS and port_is_free(host, port):
            return port
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port
    raise ServerStartError(f"no free TCP port found on {host}")


class ServerProcess:
    """One child server process."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        run_as: RunAs | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.run_as = run_as
        self.env = dict(env) if env is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        with self.log_path.open("ab") as log:
            if self.run_as is None:
                self._process = subprocess.Popen(
                    self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, start_new_session=True,
                )  # fmt: skip
            else:
                env.update(HOME=self.run_as.home, USER=self.run_as.name, LOGNAME=self.run_as.name)
                self._process = subprocess.Popen(
                    self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, start_new_session=True, cwd="/",
                    # extra_groups=[] drops root's supplementary groups too, not just the uid.
                    user=self.run_as.uid, group=self.run_as.gid, extra_groups=[],
                )  # fmt: skip

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float) -> float:
        """Poll ``probe`` until it returns True; returns the seconds it took."""
        started = time.monotonic()
        while True:
            if not self.running:
                code = self._process.returncode if self._process else None
                raise ServerStartError(
                    f"{self.name} exited during startup (exit code {code}); "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if probe():
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                self.stop()
                raise ServerStartError(
                    f"{self.name} was not ready after {timeout:g}s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, timeout: float = 30.0) -> None:
        """Send ``sig`` and wait for the exit; SIGKILL if it takes longer than ``timeout``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
