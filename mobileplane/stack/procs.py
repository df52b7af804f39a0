"""Background processes the stack starts, tracked by pid files so ``down`` stops only them.

Each started server gets ``<state>/pids/<name>.json`` with its pid, its command line and the
start time the kernel reports for it; a pid is only trusted (and only ever signalled) when the
kernel still reports the same start time, so a recycled pid never gets a signal from us.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    start_time: str
    argv: list[str]


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the parenthesised command name.
    fields = stat.rsplit(")", 1)[1].split()
    if fields and fields[0] == "Z":  # a zombie has exited
        return None
    return fields[19] if len(fields) > 19 else None


class ProcessTable:
    """The pid files of one stack."""

    def __init__(self, state: Path) -> None:
        self.dir = state / "pids"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def get(self, name: str) -> Tracked | None:
        """The tracked process ``name`` if it is still the very process we started."""
        path = self._path(name)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                return None
            tracked = Tracked(**data)
        except (OSError, ValueError, TypeError):
            # Unreadable, or written by another version of the stack: not ours to signal.
            return None
        if _proc_start_time(tracked.pid) != tracked.start_time:
            return None
        return tracked

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.dir.glob("*.json"))

    def start(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> Tracked:
        """Start ``argv`` detached (own session, output to ``log``) and record it."""
        log.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
            )
        _children[proc.pid] = proc
        start_time = _proc_start_time(proc.pid) or ""
        tracked = Tracked(name=name, pid=proc.pid, start_time=start_time, argv=list(argv))
        self._path(name).write_text(json.dumps(tracked.__dict__))
        return tracked

    def alive(self, name: str) -> bool:
        return self.get(name) is not None

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> bool:
        """Stop ``name`` if we started it: ``sig``, then SIGKILL after ``timeout`` seconds.

        Returns whether a process was stopped. Forgets the pid file either way.
        """
        tracked = self.get(name)
        stopped = False
        if tracked is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(tracked.pid, sig)
            if not self._wait_gone(name, tracked.pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(tracked.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(tracked.pid, signal.SIGKILL)
                self._wait_gone(name, tracked.pid, 10.0)
            stopped = True
        self._path(name).unlink(missing_ok=True)
        return stopped

    def _wait_gone(self, name: str, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            _reap(pid)  # a child of ours stays a zombie until reaped
            if self.get(name) is None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


#: Servers started by this process, kept so that they can be reaped (and so that Python does
#: not warn about a ``Popen`` dropped while its process runs). Pid files outlive this.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    """Collect ``pid`` if it has exited and is our child (it is when started here)."""
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
