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
    checkout_key,
    default_data_dir,
    demo_app_keys,
    display_host,
    render_section,
    shown_command,
    sync_checkpoint_keys,
)
from mobileplane.services.sync.tokens import parse_keys

POSTGRES = RunAs(name="postgres", uid=101, gid=104, home="/var/lib/postgresql")


CHECKOUT = Path("/src/mobileplane")
KEY = checkout_key(CHECKOUT)


@pytest.mark.parametrize(
    ("euid", "environ", "expected"),
    [
        pytest.param(
            1000,
            {"HOME": "/home/ann"},
            f"/home/ann/.local/share/mobileplane/quickstart-{KEY}",
            id="user",
        ),
        pytest.param(
            1000,
            {"HOME": "/home/ann", "XDG_DATA_HOME": "/data"},
            f"/data/mobileplane/quickstart-{KEY}",
            id="xdg",
        ),
        pytest.param(0, {"HOME": "/root"}, f"/var/lib/mobileplane/quickstart-{KEY}", id="root"),
    ],
)
def test_default_data_dir(euid: int, environ: dict[str, str], expected: str) -> None:
    assert default_data_dir(euid=euid, environ=environ, source=CHECKOUT) == Path(expected)


@pytest.mark.parametrize("euid", [0, 1000])
def test_two_checkouts_never_share_a_data_dir(euid: int) -> None:
    env = {"HOME": "/home/ann"}
    first = default_data_dir(euid=euid, environ=env, source=Path("/src/a/mobileplane"))
    second = default_data_dir(euid=euid, environ=env, source=Path("/src/b/mobileplane"))
    assert first != second
    assert first.name.startswith("quickstart-mobileplane-")  # the checkout's folder name shows


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("me", "me")],  # noqa: S104
)
def test_display_host(host: str, shown: str) -> None:
    assert display_host(host) == shown


def banner_text(http_url: str = "http://127.0.0.1:8080", **overrides: object) -> str:
    arguments: dict[str, object] = {
        "http_url": http_url,
        "postgres_url": "postgresql://postgres:s3cret-pw@127.0.0.1:15432/mobileplane",
        "credentials_file": Path("/d/postgres.password"),
        "redis_url": "redis://127.0.0.1:16379/0",
        "data_dir": Path("/d"),
        "command": ".venv/bin/mobileplane",
        **overrides,
    }
    return "\n".join(banner(**arguments))  # type: ignore[arg-type]


def test_banner_leads_next_with_login_and_never_shows_the_password() -> None:
    text = banner_text()
    next_steps = text.split("Next:\n", 1)[1].split("\n\n")[0].splitlines()
    assert next_steps[0].startswith("  .venv/bin/mobileplane login  ")
    assert next_steps[1].startswith("  .venv/bin/mobileplane token  ")
    # How to see crashes (issue 21 §3): the first account's sign-in may read them.
    assert next_steps[2].startswith("  .venv/bin/mobileplane telemetry issues  ")
    assert next_steps[3].startswith("  .venv/bin/mobileplane telemetry health  ")
    assert "the first one also reads telemetry" in next_steps[0]
    assert "$(.venv/bin/mobileplane token)" in text
    assert "s3cret-pw" not in text
    assert "postgresql://postgres:***@127.0.0.1:15432/mobileplane" in text
    assert "(password in /d/postgres.password)" in text
    assert "logs        /d/logs  (mobileplane.log" in text
    assert "data        /d  " in text
    # The stack is the contributors' test environment, not a next step for a newcomer.
    assert "stack up" not in text
    assert "make test" in next_steps[-1] and "Go, Node.js and root" in next_steps[-1]
    assert "Ctrl-C" in text


def test_banner_on_another_port_passes_the_url_to_login() -> None:
    text = banner_text("http://127.0.0.1:18480")
    assert ".venv/bin/mobileplane login --url http://127.0.0.1:18480  " in text
    assert "$(.venv/bin/mobileplane token --url http://127.0.0.1:18480)" in text
    assert ".venv/bin/mobileplane telemetry issues --url http://127.0.0.1:18480  " in text


def test_a_banner_line_is_a_row() -> None:
    lines = render_section(("Heading:", [("a", "one"), ("longer", "two")]))
    assert lines == ["", "Heading:", "  a       one", "  longer  two"]
    commands = render_section(("Next:", [("cmd", "why"), ("a long command", "")]), comments=True)
    assert commands == ["", "Next:", "  cmd  # why", "  a long command"]


def test_shown_command(tmp_path: Path) -> None:
    script = tmp_path / ".venv" / "bin" / "mobileplane"
    assert shown_command(script, tmp_path) == "mobileplane"  # no such script: the PATH's
    script.parent.mkdir(parents=True)
    script.touch()
    assert shown_command(script, tmp_path) == ".venv/bin/mobileplane"
    assert shown_command(script, Path("/elsewhere")) == str(script)


def test_the_sync_checkpoint_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key = sync_checkpoint_keys(tmp_path / "data")
    assert parse_keys(key).retained == ()  # one usable key
    assert sync_checkpoint_keys(tmp_path / "data") == key  # kept across restarts
    path = tmp_path / "data" / "sync-checkpoint-keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


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
