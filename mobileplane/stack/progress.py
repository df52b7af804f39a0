"""Progress for long operations: step lines, and heartbeats while a slow command runs.

A cold build of kube-apiserver takes many minutes; the user must see that it is alive, how
long it has been running and what it is doing (the last line of its log), without the log
itself flooding the terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from mobileplane.stack.errors import StackError

#: Seconds between heartbeat lines of a running command: often enough to show life in CI
#: logs, rarely enough to keep a 30-minute build under a hundred lines.
HEARTBEAT_SECONDS = 20.0


class Progress:
    """Writes progress lines, prefixed by component, to a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._lock = threading.Lock()

    def say(self, component: str, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self.stream.write(f"[{component}] {message}\n")
            self.stream.flush()

    def run(
        self,
        component: str,
        label: str,
        cmd: Sequence[str],
        log: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        fix: str,
        timeout: float | None = None,
    ) -> None:
        """Run ``cmd`` to completion with its output in ``log`` and heartbeats meanwhile.

        Raises StackError (with ``fix`` and the log's tail) when the command fails.
        """
        log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.say(component, f"{label} (log: {log})")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with log.open("ab") as out:
            out.write(f"\n$ {' '.join(cmd)}\n".encode())
            out.flush()
            try:
                proc = subprocess.Popen(
                    list(cmd),
                    cwd=cwd,
                    env=full_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            except FileNotFoundError as e:
                raise StackError(component, f"{label}: {e.filename} not found", fix) from e
            try:
                while True:
                    try:
                        code = proc.wait(timeout=HEARTBEAT_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        elapsed = time.monotonic() - started
                        if timeout is not None and elapsed > timeout:
                            proc.kill()
                            proc.wait()
                            raise StackError(
                                component, f"{label}: timed out after {elapsed:.0f}s", fix, log
                            ) from None
                        self.say(component, f"  … {label}: {_clock(elapsed)} {_last_line(log)}")
            except BaseException:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                raise
        elapsed = time.monotonic() - started
        if code != 0:
            raise StackError(component, f"{label} failed (exit {code})", fix, log)
        self.say(component, f"  done in {_clock(elapsed)}")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _last_line(log: Path) -> str:
    try:
        with log.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 2048))
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f"— {lines[-1][:100]}" if lines else ""
