"""The quick start's logs: everything to files, the terminal quiet (at most a line a request)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobileplane import quicklog


def record(name: str, level: int, service: str | None = None) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, "GET /sync/download 200", None, None)
    if service is not None:
        made.service = service
    return made


@pytest.mark.parametrize(
    ("made", "verbose", "shown"),
    [
        pytest.param(record("mobileplane.access", 20, "gateway"), False, False, id="quiet"),
        pytest.param(record("mobileplane.access", 20, "gateway"), True, True, id="verbose-front"),
        pytest.param(record("mobileplane.access", 20, "platform"), True, False, id="behind"),
        pytest.param(record("mobileplane.gateway", 20), True, False, id="upstream-line"),
        pytest.param(record("httpx", 20), True, False, id="httpx"),
        pytest.param(record("mobileplane.access", 10, "gateway"), True, False, id="probe"),
        pytest.param(record("mobileplane.errors", 40), False, True, id="error"),
        pytest.param(record("uvicorn.error", 30), False, True, id="warning"),
    ],
)
def test_what_the_terminal_shows(made: logging.LogRecord, verbose: bool, shown: bool) -> None:
    assert quicklog.on_terminal(made, verbose=verbose) is shown


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize("verbose", [False, True])
def test_every_record_goes_to_the_files(tmp_path: Path, verbose: bool) -> None:
    terminal = io.StringIO()
    quicklog.configure(tmp_path / "logs", verbose=verbose, terminal=terminal)
    access = logging.getLogger("mobileplane.access")
    for service in ("gateway", "platform"):
        access.info("GET /sync/download 200", extra={"service": service, "duration_ms": 1.5})
    logging.getLogger("mobileplane.services.sync").info("applied 1 mutation")
    logging.getLogger("httpx").info("HTTP Request: GET http://x/?code=secret")
    logging.getLogger("mobileplane.errors").error("unhandled error")

    files = quicklog.log_files(tmp_path / "logs")
    lines = [json.loads(line) for line in files["every service"].read_text().splitlines()]
    assert [(e["logger"], e.get("service")) for e in lines] == [
        ("mobileplane.access", "gateway"),
        ("mobileplane.access", "platform"),
        ("mobileplane.services.sync", None),
        ("mobileplane.errors", None),
    ]  # httpx's line (with its query string) is not kept
    [request] = files["requests"].read_text().splitlines()
    assert request.endswith("GET /sync/download 200 1.5ms None")
    shown = terminal.getvalue().splitlines()
    expected = ["GET /sync/download 200", "unhandled error"] if verbose else ["unhandled error"]
    assert [line.split(": ", 1)[1] for line in shown] == expected
