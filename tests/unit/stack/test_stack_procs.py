"""ProcessTable with real short-lived processes: start, track, trust, stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from mobileplane.stack.procs import ProcessTable, Tracked


class Start(Protocol):
    def __call__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Tracked: ...


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def table(tmp_path: Path) -> ProcessTable:
    return ProcessTable(tmp_path / "state")


@pytest.fixture
def start(table: ProcessTable, tmp_path: Path) -> Iterator[Start]:
    """``start(name, argv, cwd=, env=)`` through the table; leftovers are killed afterwards."""
    started: list[Tracked] = []

    def run(
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Tracked:
        log = tmp_path / "logs" / f"{name}.log"
        tracked = table.start(name, argv, log, cwd=cwd, env=env)
        started.append(tracked)
        return tracked

    yield run
    for tracked in started:
        fields = _stat(tracked.pid)
        if fields is not None and fields[19] == tracked.start_time:
            if fields[0] != "Z":
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(tracked.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(tracked.pid, 0)


def _log(tmp_path: Path, name: str) -> str:
    path = tmp_path / "logs" / f"{name}.log"
    return path.read_text() if path.exists() else ""


def test_start_records_the_process(table: ProcessTable, start: Start, tmp_path: Path) -> None:
    tracked = start("sleeper", ["sleep", "30"])

    assert tracked.name == "sleeper"
    assert tracked.argv == ["sleep", "30"]
    assert tracked.start_time.isdigit()
    assert _running(tracked.pid)
    assert os.getsid(tracked.pid) == tracked.pid  # a session of its own
    assert json.loads((table.dir / "sleeper.json").read_text()) == tracked.__dict__
    assert table.names() == ["sleeper"]
    assert table.get("sleeper") == tracked
    assert table.alive("sleeper")


def test_stop_terminates_the_process(table: ProcessTable, start: Start) -> None:
    tracked = start("sleeper", ["sleep", "30"])

    assert table.stop("sleeper", timeout=5.0)

    assert not _running(tracked.pid)
    assert not table.alive("sleeper")
    assert table.get("sleeper") is None
    assert table.names() == []


def test_stop_kills_what_ignores_sigterm(table: ProcessTable, start: Start, tmp_path: Path) -> None:
    tracked = start("stubborn", ["sh", "-c", "trap '' TERM; echo ready; exec sleep 30"])
    _wait_for(lambda: "ready" in _log(tmp_path, "stubborn"))

    began = time.monotonic()
    assert table.stop("stubborn", timeout=0.3)

    assert time.monotonic() - began < 5.0
    # stop() returns right after SIGKILL, so the process may take a moment to die.
    _wait_for(lambda: not _running(tracked.pid), timeout=2.0)
    assert table.names() == []


@pytest.mark.parametrize(
    "start_time",
    [
        pytest.param("1", id="different-start-time"),
        pytest.param("", id="empty-start-time"),
    ],
)
def test_a_pid_file_with_another_start_time_is_not_trusted(
    table: ProcessTable, start: Start, start_time: str
) -> None:
    tracked = start("sleeper", ["sleep", "30"])
    path = table.dir / "sleeper.json"
    data = json.loads(path.read_text())
    data["start_time"] = start_time
    path.write_text(json.dumps(data))

    assert table.get("sleeper") is None
    assert not table.alive("sleeper")
    assert table.stop("sleeper", timeout=0.5) is False

    assert _running(tracked.pid)  # never signalled
    assert not path.exists()  # but forgotten


def test_a_process_that_exited_is_not_alive(table: ProcessTable, start: Start) -> None:
    tracked = start("quick", ["sh", "-c", "exit 0"])
    _wait_for(lambda: not _running(tracked.pid))

    assert not table.alive("quick")
    assert table.stop("quick") is False
    assert table.names() == []


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(None, id="no-pid-file"),
        pytest.param("", id="empty-file"),
        pytest.param("{not json", id="not-json"),
        pytest.param(
            json.dumps({"name": "x", "pid": 2**22 + 12345, "start_time": "1", "argv": []}),
            id="pid-that-does-not-exist",
        ),
        pytest.param(
            json.dumps({"name": "x", "pid": 1, "start_time": "nope", "argv": ["init"]}),
            id="pid-1-with-another-start-time",
        ),
        pytest.param(
            json.dumps({"name": "x", "pid": 1, "start_time": "1"}),
            id="older-format-missing-a-field",
        ),
        pytest.param(
            "[1, 2]",
            id="json-but-not-an-object",
        ),
    ],
)
def test_unusable_pid_files_are_not_trusted(table: ProcessTable, content: str | None) -> None:
    if content is not None:
        (table.dir / "x.json").write_text(content)

    assert table.get("x") is None
    assert not table.alive("x")
    assert table.stop("x", timeout=0.5) is False
    assert not (table.dir / "x.json").exists()


def test_stop_of_an_unknown_name(table: ProcessTable) -> None:
    assert table.stop("never-started") is False
    assert table.names() == []


def test_names_are_sorted(table: ProcessTable, start: Start) -> None:
    for name in ("redis", "etcd", "postgres"):
        start(name, ["sleep", "30"])

    assert table.names() == ["etcd", "postgres", "redis"]
    assert table.stop("postgres", timeout=5.0)
    assert table.names() == ["etcd", "redis"]


def test_output_env_and_cwd(start: Start, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()

    start(
        "talker",
        ["sh", "-c", 'echo "greeting=$MP_GREETING"; pwd; echo oops >&2'],
        cwd=workdir,
        env={"MP_GREETING": "hello there"},
    )
    _wait_for(lambda: "oops" in _log(tmp_path, "talker"))

    assert _log(tmp_path, "talker").splitlines() == ["greeting=hello there", str(workdir), "oops"]


def test_the_log_is_appended_to(start: Start, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "twice.log"
    log.parent.mkdir(parents=True)
    log.write_text("earlier run\n")

    start("twice", ["sh", "-c", "echo later run"])
    _wait_for(lambda: "later run" in _log(tmp_path, "twice"))

    assert _log(tmp_path, "twice") == "earlier run\nlater run\n"
