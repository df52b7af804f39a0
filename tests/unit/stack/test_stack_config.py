"""Stack settings from the environment: ports, directories and generated credentials."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import fields
from pathlib import Path

import pytest

from mobileplane.stack.config import (
    DEFAULT_PORTS,
    ConfigError,
    Credentials,
    StackConfig,
    cache_dir,
    load_or_create_credentials,
    ports_from_env,
    state_dir,
)

CREDENTIAL_FIELDS = [f.name for f in fields(Credentials)]

# -- ports ----------------------------------------------------------------------------------


def test_default_ports_are_distinct_and_away_from_well_known_ports() -> None:
    assert len(set(DEFAULT_PORTS.values())) == len(DEFAULT_PORTS)
    assert all(50000 <= p <= 57999 for p in DEFAULT_PORTS.values())


@pytest.mark.parametrize(
    ("environ", "changed"),
    [
        pytest.param({}, {}, id="defaults"),
        pytest.param({"MOBILEPLANE_POSTGRES_PORT": "6543"}, {"postgres": 6543}, id="one-override"),
        pytest.param(
            {"MOBILEPLANE_ETCD_PEER_PORT": "40001", "MOBILEPLANE_CONTROLLER_MANAGER_PORT": "40002"},
            {"etcd_peer": 40001, "controller_manager": 40002},
            id="multi-word-names",
        ),
        pytest.param({"MOBILEPLANE_REDIS_PORT": ""}, {}, id="empty-means-default"),
        pytest.param(
            {"MOBILEPLANE_S3_PORT": "1024", "MOBILEPLANE_KWOK_PORT": "65535"},
            {"s3": 1024, "kwok": 65535},
            id="range-boundaries",
        ),
        pytest.param(
            {"MOBILEPLANE_APISERVER_PORT": "55432", "MOBILEPLANE_POSTGRES_PORT": "6000"},
            {"apiserver": 55432, "postgres": 6000},
            id="taking-a-freed-default",
        ),
        pytest.param(
            {"POSTGRES_PORT": "1", "MOBILEPLANE_UNKNOWN_PORT": "1"}, {}, id="other-variables"
        ),
    ],
)
def test_ports_from_env(environ: dict[str, str], changed: dict[str, int]) -> None:
    assert ports_from_env(environ) == {**DEFAULT_PORTS, **changed}


@pytest.mark.parametrize(
    ("environ", "names", "fragment"),
    [
        pytest.param(
            {"MOBILEPLANE_POSTGRES_PORT": "abc"},
            ["MOBILEPLANE_POSTGRES_PORT"],
            "is not a port number",
            id="not-a-number",
        ),
        pytest.param(
            {"MOBILEPLANE_REDIS_PORT": "6379.0"},
            ["MOBILEPLANE_REDIS_PORT"],
            "is not a port number",
            id="not-an-integer",
        ),
        pytest.param(
            {"MOBILEPLANE_ETCD_PEER_PORT": "0x50"},
            ["MOBILEPLANE_ETCD_PEER_PORT"],
            "is not a port number",
            id="hexadecimal",
        ),
        pytest.param(
            {"MOBILEPLANE_S3_PORT": "80"}, ["MOBILEPLANE_S3_PORT"], "outside 1024-65535", id="80"
        ),
        pytest.param(
            {"MOBILEPLANE_S3_PORT": "1023"},
            ["MOBILEPLANE_S3_PORT"],
            "outside 1024-65535",
            id="below-range",
        ),
        pytest.param(
            {"MOBILEPLANE_UNLEASH_PORT": "65536"},
            ["MOBILEPLANE_UNLEASH_PORT"],
            "outside 1024-65535",
            id="above-range",
        ),
        pytest.param(
            {"MOBILEPLANE_KWOK_PORT": "-5000"},
            ["MOBILEPLANE_KWOK_PORT"],
            "outside 1024-65535",
            id="negative",
        ),
        pytest.param(
            {"MOBILEPLANE_REDIS_PORT": "55432"},
            ["postgres", "redis", "55432", "MOBILEPLANE_REDIS_PORT"],
            "both",
            id="duplicate-of-a-default",
        ),
        pytest.param(
            {"MOBILEPLANE_S3_PORT": "6000", "MOBILEPLANE_KWOK_PORT": "6000"},
            ["s3", "kwok", "6000", "MOBILEPLANE_KWOK_PORT"],
            "both",
            id="two-overrides-collide",
        ),
        pytest.param(
            {"MOBILEPLANE_SEAWEEDFS_PORT": "57065"},
            ["s3", "seaweedfs", "57070", "MOBILEPLANE_SEAWEEDFS_PORT", "57065 to 57074"],
            "both",
            id="a-port-inside-seaweedfs-span",
        ),
        pytest.param(
            {"MOBILEPLANE_SEAWEEDFS_PORT": "65530"},
            ["seaweedfs", "MOBILEPLANE_SEAWEEDFS_PORT"],
            "past 65535",
            id="seaweedfs-span-past-the-last-port",
        ),
        pytest.param(
            {"MOBILEPLANE_POSTGRES_PORT": "56379"},
            ["postgres", "redis", "56379", "MOBILEPLANE_POSTGRES_PORT"],
            "both",
            id="duplicate-names-the-variable-that-was-set",
        ),
    ],
)
def test_ports_from_env_rejects(environ: dict[str, str], names: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        ports_from_env(environ)
    message = str(info.value)
    assert fragment in message
    for name in names:
        assert name in message


def test_ports_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("MOBILEPLANE_") and var.endswith("_PORT"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("MOBILEPLANE_S3_PORT", "45000")
    assert ports_from_env() == {**DEFAULT_PORTS, "s3": 45000}


def test_ports_from_env_does_not_change_the_defaults() -> None:
    before = dict(DEFAULT_PORTS)
    ports = ports_from_env({"MOBILEPLANE_POSTGRES_PORT": "6543"})
    ports["redis"] = 1
    assert before == DEFAULT_PORTS


# -- credentials ----------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


#: What each generated credential looks like.
CREDENTIAL_PATTERNS = {
    "postgres_password": r"[0-9a-f]{32}",
    "s3_access_key": r"mp[0-9A-F]{18}",
    "s3_secret_key": r"[0-9a-f]{40}",
    "unleash_admin_token": r"\*:\*\.[0-9a-f]{48}",
    "unleash_backend_token": r"default:development\.[0-9a-f]{48}",
    "unleash_frontend_token": r"default:development\.[0-9a-f]{48}",
    "unleash_admin_password": r"[0-9a-f]{24}",
    "kube_admin_token": r"[0-9a-f]{48}",
    "seaweedfs_sse_key": r"[0-9a-f]{64}",
}


def test_every_credential_has_a_pattern() -> None:
    assert sorted(CREDENTIAL_PATTERNS) == sorted(CREDENTIAL_FIELDS)


@pytest.mark.parametrize(
    ("name", "pattern"), [pytest.param(k, v, id=k) for k, v in CREDENTIAL_PATTERNS.items()]
)
def test_generated_credential_formats(name: str, pattern: str) -> None:
    first, second = Credentials.generate(), Credentials.generate()
    assert re.fullmatch(pattern, getattr(first, name))
    assert getattr(first, name) != getattr(second, name)


def test_credentials_are_created_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nested" / "credentials.json"

    creds = load_or_create_credentials(path)

    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == creds.__dict__
    assert sorted(creds.__dict__) == sorted(CREDENTIAL_FIELDS)
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no .tmp left


def test_credentials_are_stable_across_loads(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    first = load_or_create_credentials(path)
    written = path.read_bytes()
    inode = path.stat().st_ino

    again = [load_or_create_credentials(path) for _ in range(3)]

    assert all(c == first for c in again)
    assert path.read_bytes() == written
    assert path.stat().st_ino == inode  # not rewritten


@pytest.mark.parametrize(
    "old",
    [
        pytest.param({"postgres_password": "old-pg"}, id="only-postgres"),
        pytest.param(
            {
                "postgres_password": "old-pg",
                "s3_access_key": "MPOLD",
                "s3_secret_key": "old-secret",
                "unleash_admin_token": "*:*.old",
                "unleash_backend_token": "default:development.old",
                "unleash_frontend_token": "default:development.old2",
                "unleash_admin_password": "old-admin",
            },
            id="all-but-the-kube-token",
        ),
        pytest.param({}, id="empty-object"),
    ],
)
def test_missing_credentials_are_filled_in(tmp_path: Path, old: dict[str, str]) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(old))
    path.chmod(0o644)

    creds = load_or_create_credentials(path)

    for key, value in old.items():
        assert getattr(creds, key) == value
    for key in set(CREDENTIAL_FIELDS) - set(old):
        assert getattr(creds, key)
    stored = json.loads(path.read_text())
    assert stored == creds.__dict__
    assert _mode(path) == 0o600
    assert load_or_create_credentials(path) == creds


# -- directories ----------------------------------------------------------------------------

DIR_VARS = ("MOBILEPLANE_CACHE_DIR", "MOBILEPLANE_STACK_DIR", "XDG_CACHE_HOME", "XDG_STATE_HOME")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment for the directory settings, with HOME in ``tmp_path``."""
    for var in DIR_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    return home


def _apply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environ: dict[str, str]) -> None:
    for key, value in environ.items():
        monkeypatch.setenv(key, value.replace("{tmp}", str(tmp_path)))


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, "{home}/.cache/mobileplane", id="default"),
        pytest.param({"XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/mobileplane", id="xdg"),
        pytest.param({"XDG_CACHE_HOME": ""}, "{home}/.cache/mobileplane", id="empty-xdg"),
        pytest.param(
            {"XDG_CACHE_HOME": "{tmp}/xdg", "MOBILEPLANE_CACHE_DIR": "{tmp}/mine"},
            "{tmp}/mine",
            id="own-variable-wins-over-xdg",
        ),
        pytest.param({"MOBILEPLANE_CACHE_DIR": "~/c"}, "{home}/c", id="tilde-expanded"),
        pytest.param(
            {"MOBILEPLANE_CACHE_DIR": "", "XDG_CACHE_HOME": "{tmp}/xdg"},
            "{tmp}/xdg/mobileplane",
            id="empty-own-variable-is-unset",
        ),
        pytest.param(
            {"MOBILEPLANE_STACK_DIR": "{tmp}/s", "XDG_STATE_HOME": "{tmp}/st"},
            "{home}/.cache/mobileplane",
            id="state-variables-do-not-matter",
        ),
    ],
)
def test_cache_dir(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    expected: str,
) -> None:
    _apply(monkeypatch, tmp_path, environ)
    assert cache_dir() == Path(expected.format(home=home, tmp=tmp_path))


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, "{home}/.local/state/mobileplane/stack", id="default"),
        pytest.param({"XDG_STATE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/mobileplane/stack", id="xdg"),
        pytest.param(
            {"XDG_STATE_HOME": ""}, "{home}/.local/state/mobileplane/stack", id="empty-xdg"
        ),
        pytest.param(
            {"XDG_STATE_HOME": "{tmp}/xdg", "MOBILEPLANE_STACK_DIR": "{tmp}/stack"},
            "{tmp}/stack",
            id="own-variable-wins-over-xdg",
        ),
        pytest.param({"MOBILEPLANE_STACK_DIR": "~/s"}, "{home}/s", id="tilde-expanded"),
        pytest.param(
            {"MOBILEPLANE_STACK_DIR": "", "XDG_STATE_HOME": "{tmp}/xdg"},
            "{tmp}/xdg/mobileplane/stack",
            id="empty-own-variable-is-unset",
        ),
        pytest.param(
            {"MOBILEPLANE_CACHE_DIR": "{tmp}/c", "XDG_CACHE_HOME": "{tmp}/ch"},
            "{home}/.local/state/mobileplane/stack",
            id="cache-variables-do-not-matter",
        ),
    ],
)
def test_state_dir(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    expected: str,
) -> None:
    _apply(monkeypatch, tmp_path, environ)
    assert state_dir() == Path(expected.format(home=home, tmp=tmp_path))


# -- StackConfig.load -----------------------------------------------------------------------


@pytest.fixture
def stack_env(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MOBILEPLANE_STACK_DIR and MOBILEPLANE_CACHE_DIR in ``tmp_path``, no port overrides."""
    for var in list(os.environ):
        if var.startswith("MOBILEPLANE_") and var.endswith("_PORT"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("MOBILEPLANE_STACK_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MOBILEPLANE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_stack_config_load_creates_state_and_credentials(stack_env: Path) -> None:
    config = StackConfig.load()

    assert config.state == stack_env / "state"
    assert config.cache == stack_env / "cache"
    assert config.state.is_dir()
    assert config.ports == DEFAULT_PORTS
    assert config.host == "127.0.0.1"
    assert _mode(config.state / "credentials.json") == 0o600
    assert StackConfig.load().credentials == config.credentials
    assert config.component_state("kube") == config.state / "kube"
    assert config.logs().is_dir()
    assert (config.state / "kube").is_dir()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, {"postgres": 60000}, id="recorded-ports-are-kept"),
        pytest.param(
            {"MOBILEPLANE_REDIS_PORT": "61000"},
            {"redis": 61000},
            id="an-override-replaces-the-recorded-ports",
        ),
    ],
)
def test_stack_config_load_recorded_ports(
    stack_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    expected: dict[str, int],
) -> None:
    first = StackConfig.load()
    first.ports["postgres"] = 60000
    first.record_ports()
    for key, value in environ.items():
        monkeypatch.setenv(key, value)

    assert StackConfig.load().ports == {**DEFAULT_PORTS, **expected}
