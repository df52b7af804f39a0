"""Progress.run: step lines, heartbeats while a command runs, and errors that say what next."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from mobileplane.stack import progress as progress_module
from mobileplane.stack.errors import StackError
from mobileplane.stack.progress import Progress

FIX = "check the network access to the Go module proxy, then retry"


def _progress() -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(stream=stream), stream


@pytest.mark.parametrize(
    ("quiet", "expected"),
    [
        pytest.param(False, "[redis] started on 127.0.0.1:56379\n", id="loud"),
        pytest.param(True, "", id="quiet"),
    ],
)
def test_say(quiet: bool, expected: str) -> None:
    stream = io.StringIO()
    Progress(stream=stream, quiet=quiet).say("redis", "started on 127.0.0.1:56379")
    assert stream.getvalue() == expected


def test_run_success_prints_done_and_logs_the_output(tmp_path: Path) -> None:
    progress, stream = _progress()
    log = tmp_path / "logs" / "build.log"

    progress.run("etcd", "building etcd", ["sh", "-c", "echo compiled"], log, fix=FIX)

    first, second = stream.getvalue().splitlines()
    assert first == f"[etcd] building etcd (log: {log})"
    assert re.fullmatch(r"\[etcd\]   done in \d+s", second)
    assert log.read_text() == "\n$ sh -c echo compiled\ncompiled\n"


def test_run_appends_to_the_log(tmp_path: Path) -> None:
    progress, _ = _progress()
    log = tmp_path / "build.log"
    log.write_text("first build\n")

    progress.run("helm", "building helm", ["sh", "-c", "echo second >&2"], log, fix=FIX)

    assert log.read_text() == "first build\n\n$ sh -c echo second >&2\nsecond\n"


def test_run_passes_env_and_cwd(tmp_path: Path) -> None:
    progress, _ = _progress()
    log = tmp_path / "build.log"
    workdir = tmp_path / "work"
    workdir.mkdir()

    progress.run(
        "kubernetes",
        "env",
        ["sh", "-c", 'echo "$GOFLAGS"; pwd'],
        log,
        cwd=workdir,
        env={"GOFLAGS": "-mod=mod"},
        fix=FIX,
    )

    assert log.read_text().splitlines()[-2:] == ["-mod=mod", str(workdir)]


@pytest.mark.parametrize(
    ("script", "code", "tail"),
    [
        pytest.param("echo boom; exit 3", 3, ["boom"], id="exit-3"),
        pytest.param(
            "for i in $(seq 1 40); do echo step $i; done; exit 1",
            1,
            [f"step {i}" for i in range(29, 41)],
            id="only-the-tail",
        ),
        pytest.param("echo to stderr >&2; exit 2", 2, ["to stderr"], id="stderr-is-logged"),
        pytest.param("kill -9 $$", -9, ["$ sh -c kill -9 $$"], id="killed-by-a-signal"),
    ],
)
def test_run_failure_raises_with_fix_and_log_tail(
    tmp_path: Path, script: str, code: int, tail: list[str]
) -> None:
    progress, stream = _progress()
    log = tmp_path / "build.log"

    with pytest.raises(StackError) as info:
        progress.run("kubernetes", "building kube-apiserver", ["sh", "-c", script], log, fix=FIX)

    err = info.value
    assert err.component == "kubernetes"
    assert err.what == f"building kube-apiserver failed (exit {code})"
    assert err.fix == FIX
    assert err.log == log
    rendered = err.render()
    assert f"  next: {FIX}" in rendered
    assert f"  log:  {log}" in rendered
    assert rendered.splitlines()[-len(tail) :] == [f"    | {line}" for line in tail]
    assert "done" not in stream.getvalue()


def test_run_of_a_missing_program(tmp_path: Path) -> None:
    progress, _ = _progress()
    missing = tmp_path / "no-such-go"

    with pytest.raises(StackError) as info:
        progress.run("etcd", "building etcd", [str(missing), "build"], tmp_path / "b.log", fix=FIX)

    assert info.value.what == f"building etcd: {missing} not found"
    assert info.value.fix == FIX


def test_run_prints_heartbeats_while_a_slow_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_module, "HEARTBEAT_SECONDS", 0.05)
    progress, stream = _progress()

    progress.run(
        "kubernetes",
        "building",
        ["sh", "-c", "echo compiling k8s.io/apiserver; sleep 0.3"],
        tmp_path / "build.log",
        fix=FIX,
    )

    lines = stream.getvalue().splitlines()
    heartbeats = [line for line in lines if line.startswith("[kubernetes]   … building: ")]
    assert heartbeats, lines
    assert all(re.fullmatch(r"\[kubernetes\]   … building: \d+s — .+", h) for h in heartbeats)
    assert heartbeats[-1].endswith("— compiling k8s.io/apiserver")
    assert re.fullmatch(r"\[kubernetes\]   done in \d+s", lines[-1])


def test_run_timeout_kills_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "HEARTBEAT_SECONDS", 0.05)
    progress, _ = _progress()
    log = tmp_path / "build.log"

    with pytest.raises(StackError) as info:
        progress.run("s3", "building versitygw", ["sleep", "30"], log, fix=FIX, timeout=0.2)

    assert re.fullmatch(r"building versitygw: timed out after \d+s", info.value.what)
    assert info.value.log == log
