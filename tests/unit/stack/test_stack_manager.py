"""The manager's pure parts: choosing components, and rendering ``stack env`` for a shell."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from mobileplane.stack.config import ConfigError
from mobileplane.stack.manager import components, names, render_env, select

ORDER = ["postgres", "redis", "s3", "seaweedfs", "unleash", "kube", "node", "helm"]


def test_components_in_dependency_order() -> None:
    assert names() == ORDER
    seen: set[str] = set()
    for comp in components():
        assert set(comp.requires) <= seen, f"{comp.name} requires {comp.requires} after it"
        seen.add(comp.name)


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        pytest.param(None, ORDER, id="none-means-all"),
        pytest.param([], ORDER, id="empty-means-all"),
        pytest.param(["unleash"], ["postgres", "unleash"], id="unleash-pulls-in-postgres"),
        pytest.param(["postgres"], ["postgres"], id="postgres-alone"),
        pytest.param(["helm", "redis"], ["redis", "helm"], id="stack-order-not-argument-order"),
        pytest.param(["unleash", "postgres", "unleash"], ["postgres", "unleash"], id="duplicates"),
        pytest.param(["kube", "s3"], ["s3", "kube"], id="kube-and-s3"),
        pytest.param(("unleash",), ["postgres", "unleash"], id="tuple"),
    ],
)
def test_select(only: Sequence[str] | None, expected: list[str]) -> None:
    assert [c.name for c in select(only)] == expected


@pytest.mark.parametrize(
    ("only", "unknown"),
    [
        pytest.param(["mysql"], "mysql", id="unknown"),
        pytest.param(["postgres", "kafka"], "kafka", id="one-of-several"),
        pytest.param(["Postgres"], "Postgres", id="case-sensitive"),
        pytest.param(["kubernetes"], "kubernetes", id="pin-name-is-not-a-component"),
    ],
)
def test_select_rejects_unknown_names(only: list[str], unknown: str) -> None:
    with pytest.raises(ConfigError) as info:
        select(only)
    message = str(info.value)
    assert repr(unknown) in message
    assert all(name in message for name in ORDER)  # the choices


# -- render_env -----------------------------------------------------------------------------

# The stack manager targets Linux with bash; its absence is a broken machine, not a skip.
BASH = shutil.which("bash")


def _eval_in_bash(script: str, var: str, cwd: Path) -> str:
    assert BASH is not None
    out = subprocess.run(
        [BASH, "-c", 'eval "$X"; printf %s "${!V}"'],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "X": script, "V": var},
        cwd=cwd,
        capture_output=True,
        check=True,
    )
    assert out.stderr == b""
    return out.stdout.decode()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("postgresql://mobileplane:pw@127.0.0.1:55432/mobileplane", id="url"),
        pytest.param("with spaces  and\ttab", id="spaces"),
        pytest.param('it\'s "quoted"', id="quotes"),
        pytest.param("$HOME ${PATH} $1 $$", id="dollars"),
        pytest.param("`touch pwned` $(touch pwned)", id="command-substitution"),
        pytest.param("*:*.abc; rm -rf pwned && echo pwned | cat > pwned", id="shell-syntax"),
        pytest.param("line one\nline two\n", id="newlines"),
        pytest.param("back\\slash \\n '\\''", id="backslashes"),
        pytest.param("", id="empty"),
        pytest.param("caf\u00e9 \u2014 \u2603", id="unicode"),
        pytest.param("-n", id="looks-like-an-option"),
    ],
)
def test_render_env_round_trips_through_bash(tmp_path: Path, value: str) -> None:
    script = render_env({"MP_VALUE": value})

    assert script.startswith("export MP_VALUE=")
    assert script.endswith("\n")
    assert _eval_in_bash(script, "MP_VALUE", tmp_path) == value
    assert list(tmp_path.iterdir()) == []  # nothing was executed


def test_render_env_several_variables(tmp_path: Path) -> None:
    values = {
        "DATABASE_URL": "postgresql://u:p w@h/db",
        "UNLEASH_API_TOKEN": "*:*.0123",
        "MOBILEPLANE_STACK_DIR": "/tmp/my stack",
    }
    script = render_env(values)

    assert script.count("\n") == len(values)
    assert [line.split("=", 1)[0] for line in script.splitlines()] == [
        f"export {k}" for k in values
    ]
    for key, value in values.items():
        assert _eval_in_bash(script, key, tmp_path) == value
