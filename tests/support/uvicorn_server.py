"""Run an ASGI app under a real uvicorn, in a thread, on a free loopback port.

Streams (server-sent events) and blocking clients (the SDK) need a real server; ASGI
transports buffer whole responses. The handle can stop and start the server on the same port,
which is how tests restart a service.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI


class ServerHandle:
    """An app under a real uvicorn in a thread, which tests can restart (same port)."""

    def __init__(self, make_app: Callable[[], FastAPI]) -> None:
        self._make_app = make_app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.app: Any = None  # the app being served (tests may read its state)
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> None:
        self.app = self._make_app()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the app did not start under uvicorn")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()
