"""The quick start's pure pieces: where data goes, what is printed, whom PostgreSQL runs as."""

from __future__ import annotations

import io
import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from mobileplane.embedded.postgres import PostgresSetupError, choose_run_as, first_blocked_dir
from mobileplane.embedded.process import RESERVED_PORTS, RunAs, pick_port
from mobileplane.quickstart import (
    Progress,
    banner,
    default_data_dir,
    demo_app_keys,
    display_host,
)

POSTGRES = RunAs(name="postgres", uid=101, gid=104, home="/var/lib/postgresql")


@pytest.mark.parametrize(
    ("euid", "environ", "expected"),
    [
        pytest.param(
            1000, {"HOME": "/home/ann"}, "/home/ann/.local/share/mobileplane/quickstart", id="user"
        ),
        pytest.param(
            1000,
            {"HOME": "/home/ann", "XDG_DATA_HOME": "/data"},
            "/data/mobileplane/quickstart",
            id="xdg",
        ),
        pytest.param(0, {"HOME": "/root"}, "/var/lib/mobileplane/quickstart", id="root"),
    ],
)
def test_default_data_dir(euid: int, environ: dict[str, str], expected: str) -> None:
    assert default_data_dir(euid=euid, environ=environ) == Path(expected)


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("me", "me")],  # noqa: S104
)
def test_display_host(host: str, shown: str) -> None:
    assert display_host(host) == shown


def test_banner_has_urls_and_next_steps() -> None:
    text = "\n".join(
        banner(
            http_url="http://127.0.0.1:8080",
            postgres_url="postgresql://postgres:pw@127.0.0.1:15432/mobileplane",
            redis_url="redis://127.0.0.1:16379/0",
            data_dir=Path("/d"),
        )
    )
    assert "curl http://127.0.0.1:8080/readyz" in text
    assert "mobileplane stack up" in text
    assert "Ctrl-C" in text


def test_demo_dsns_are_made_once_and_shown(tmp_path: Path) -> None:
    keys = demo_app_keys(tmp_path)
    assert set(keys) == {"ios", "android"}
    assert demo_app_keys(tmp_path) == keys  # kept across restarts
    assert stat.S_IMODE((tmp_path / "app-keys.json").stat().st_mode) == 0o600
    text = "\n".join(
        banner(
            http_url="http://127.0.0.1:8080",
            postgres_url="postgresql://p",
            redis_url="redis://r",
            data_dir=tmp_path,
            app_keys=keys,
        )
    )
    assert f"Sentry DSN  http://{keys['ios']}@127.0.0.1:8080/telemetry/1  (ios builds)" in text
    assert f"Sentry DSN  http://{keys['android']}@127.0.0.1:8080/telemetry/2  (android" in text


def test_progress_off_a_terminal_writes_whole_lines() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    with progress.step("starting PostgreSQL (embedded)"):
        pass
    assert stream.getvalue().startswith("starting PostgreSQL (embedded)... ready in 0.")
    assert stream.getvalue().count("\n") == 1


@pytest.mark.parametrize(
    ("euid", "account", "expected"),
    [
        pytest.param(1000, None, None, id="user-runs-as-self"),
        pytest.param(1000, POSTGRES, None, id="user-ignores-account"),
        pytest.param(0, POSTGRES, POSTGRES, id="root-uses-postgres"),
    ],
)
def test_choose_run_as(euid: int, account: RunAs | None, expected: RunAs | None) -> None:
    assert choose_run_as(euid, account) == expected


@pytest.mark.parametrize(
    "account",
    [None, RunAs("postgres", 0, 0, "/")],
    ids=["no-account", "account-is-root"],
)
def test_root_without_an_unprivileged_account_is_a_clear_error(account: RunAs | None) -> None:
    with pytest.raises(PostgresSetupError, match="refuses to run as root"):
        choose_run_as(0, account)


def test_first_blocked_dir() -> None:
    # Under /tmp (searchable by all), not pytest's tmp_path (its per-user root is 0700).
    stranger = RunAs(name="nobody-mp-test", uid=os.getuid() + 4242, gid=4242, home="/")
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        closed = base / "closed"
        inner = closed / "inner"
        inner.mkdir(parents=True)
        base.chmod(0o755)
        closed.chmod(0o700)
        assert first_blocked_dir(inner, stranger) == closed
        assert first_blocked_dir(base, stranger) is None
        closed.chmod(0o711)  # search without read is enough to pass through
        assert first_blocked_dir(inner, stranger) is None


def test_pick_port_prefers_the_given_port_and_skips_busy_ones() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        chosen = pick_port("127.0.0.1", taken)
    assert chosen != taken
    assert chosen not in RESERVED_PORTS
