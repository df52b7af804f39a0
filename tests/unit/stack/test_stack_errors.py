"""StackError.render: what failed, what to do next, and the tail of the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobileplane.stack.errors import StackError


def _numbered(n: int) -> bytes:
    return "".join(f"line {i}\n" for i in range(1, n + 1)).encode()


@pytest.mark.parametrize(
    ("log_bytes", "expected_tail"),
    [
        pytest.param(None, None, id="missing-log-file"),
        pytest.param(b"", None, id="empty-log"),
        pytest.param(b"one line\n", ["one line"], id="one-line"),
        pytest.param(b"no newline at the end", ["no newline at the end"], id="no-final-newline"),
        pytest.param(_numbered(30), [f"line {i}" for i in range(19, 31)], id="last-12-lines"),
        pytest.param(b"x" * 300 + b"\n", ["x" * 200], id="long-line-cut-at-200"),
        pytest.param(b"caf\xc3\xa9 \xff\n", ["caf\u00e9 \ufffd"], id="invalid-utf8-replaced"),
        pytest.param(
            b"y" * 10_000 + b"\nend\n", ["y" * 200, "end"], id="only-the-last-8k-are-read"
        ),
    ],
)
def test_render_with_log(
    tmp_path: Path, log_bytes: bytes | None, expected_tail: list[str] | None
) -> None:
    log = tmp_path / "build.log"
    if log_bytes is not None:
        log.write_bytes(log_bytes)

    err = StackError("kubernetes", "building kube-apiserver failed (exit 2)", "retry", log)
    lines = err.render().splitlines()

    assert lines[:3] == [
        "kubernetes: building kube-apiserver failed (exit 2)",
        "  next: retry",
        f"  log:  {log}",
    ]
    if expected_tail is None:
        assert len(lines) == 3
    else:
        assert lines[3] == "  last lines of the log:"
        assert lines[4:] == [f"    | {t}" for t in expected_tail]


def test_render_without_log() -> None:
    err = StackError("redis", "port 56379 is in use", "export MOBILEPLANE_REDIS_PORT=<free port>")
    assert err.render() == (
        "redis: port 56379 is in use\n  next: export MOBILEPLANE_REDIS_PORT=<free port>"
    )


def test_the_message_is_the_rendering(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("boom\n")
    err = StackError("s3", "did not start", "read the log", log)

    assert isinstance(err, RuntimeError)
    assert str(err) == err.render()
    assert "    | boom" in str(err)
    assert (err.component, err.what, err.fix, err.log) == (
        "s3",
        "did not start",
        "read the log",
        log,
    )
