"""Where the stack keeps its files, which ports it binds, and its generated credentials.

Everything is decided here, once, from the environment: the cache directory (installed and
built components, keyed by version, kept across runs), the state directory (data, logs, pid
files, kubeconfig; one per stack), and the loopback ports. Credentials are generated on the
first ``up`` and kept in the state directory, so every later ``env`` prints the same ones.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

#: Default loopback ports. They sit in 50000-57999, away from each component's well-known
#: port, so the stack can run beside a developer's own PostgreSQL, Redis or cluster.
#: Override any of them with ``MOBILEPLANE_<NAME>_PORT`` (e.g. ``MOBILEPLANE_POSTGRES_PORT``).
DEFAULT_PORTS: dict[str, int] = {
    "postgres": 55432,
    "redis": 56379,
    "s3": 57070,
    # SeaweedFS: its S3 port; it also binds the 9 ports after it (master, volume, filer...).
    "seaweedfs": 57080,
    "unleash": 54242,
    "etcd": 52379,
    "etcd_peer": 52380,
    "apiserver": 56443,
    "controller_manager": 50257,
    "scheduler": 50259,
    "kwok": 50247,
    # The real node (docs/development.md, "The real node"): kubelet's API on the node's
    # address, the rest on loopback. CoreDNS itself answers on the node's address, port 53.
    "kubelet": 50250,
    "kubelet_healthz": 50248,
    "kube_proxy_healthz": 50256,
    "kube_proxy_metrics": 50249,
    "coredns_health": 50253,
    "coredns_ready": 50254,
}


#: Components that bind consecutive ports from their own: how many in all.
PORT_SPANS: dict[str, int] = {"seaweedfs": 10}


class ConfigError(ValueError):
    """A stack setting from the environment is unusable."""


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def cache_dir() -> Path:
    """Installed and built components, one subdirectory per ``<component>-<version>``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) / "mobileplane" if xdg else Path.home() / ".cache" / "mobileplane"
    return _env_path("MOBILEPLANE_CACHE_DIR", base)


def state_dir() -> Path:
    """Data, logs, pid files and generated settings of one running stack."""
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return _env_path("MOBILEPLANE_STACK_DIR", base / "mobileplane" / "stack")


def ports_from_env(environ: dict[str, str] | None = None) -> dict[str, int]:
    """The ports to bind: the defaults, overridden by ``MOBILEPLANE_<NAME>_PORT``."""
    env = os.environ if environ is None else environ
    ports = dict(DEFAULT_PORTS)
    for name in ports:
        var = f"MOBILEPLANE_{name.upper()}_PORT"
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not a port number; use 1024-65535") from None
        if not 1024 <= value <= 65535:
            raise ConfigError(f"{var}={value} is outside 1024-65535; choose an unprivileged port")
        ports[name] = value
    seen: dict[int, str] = {}
    for name, value in ports.items():
        for port in range(value, value + PORT_SPANS.get(name, 1)):
            if port in seen:
                other = seen[port]
                variables = " or ".join(f"MOBILEPLANE_{n.upper()}_PORT" for n in (other, name))
                raise ConfigError(
                    f"ports of {other} and {name} are both {port}; set {variables} to another "
                    "port"
                    + (
                        ""
                        if port == value
                        else f" ({name} binds {value} to {value + PORT_SPANS[name] - 1})"
                    )
                )
            if port > 65535:
                raise ConfigError(
                    f"{name} binds {PORT_SPANS[name]} ports from {value}, past 65535; set "
                    f"MOBILEPLANE_{name.upper()}_PORT lower"
                )
            seen[port] = name
    return ports


@dataclass(frozen=True)
class Credentials:
    """Secrets of the local stack, generated once per state directory."""

    postgres_password: str
    s3_access_key: str
    s3_secret_key: str
    unleash_admin_token: str
    unleash_backend_token: str
    unleash_frontend_token: str
    unleash_admin_password: str
    kube_admin_token: str
    seaweedfs_sse_key: str

    @classmethod
    def generate(cls) -> Credentials:
        def tok(n: int = 24) -> str:
            return secrets.token_hex(n)

        return cls(
            postgres_password=tok(16),
            s3_access_key="mp" + secrets.token_hex(9).upper(),
            s3_secret_key=tok(20),
            unleash_admin_token=f"*:*.{tok()}",
            unleash_backend_token=f"default:development.{tok()}",
            unleash_frontend_token=f"default:development.{tok()}",
            unleash_admin_password=tok(12),
            kube_admin_token=tok(),
            seaweedfs_sse_key=tok(32),
        )


def load_or_create_credentials(path: Path) -> Credentials:
    if path.exists():
        data = json.loads(path.read_text())
        fresh = Credentials.generate().__dict__
        fresh.update(data)  # fields added in later versions get generated values
        creds = Credentials(**{k: fresh[k] for k in Credentials.__dataclass_fields__})
        if creds.__dict__ != data:
            _write_private(path, creds.__dict__)
        return creds
    creds = Credentials.generate()
    _write_private(path, creds.__dict__)
    return creds


def _write_private(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    tmp.replace(path)


@dataclass(frozen=True)
class StackConfig:
    """Everything a component needs to know about the stack it belongs to."""

    cache: Path
    state: Path
    ports: dict[str, int]
    credentials: Credentials
    host: str = "127.0.0.1"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls) -> StackConfig:
        state = state_dir()
        state.mkdir(parents=True, exist_ok=True)
        recorded = state / "ports.json"
        ports = ports_from_env()
        # A running stack keeps the ports it was started with, unless overridden again.
        if recorded.exists() and not any(
            k.startswith("MOBILEPLANE_") and k.endswith("_PORT") for k in os.environ
        ):
            ports.update(json.loads(recorded.read_text()))
        return cls(
            cache=cache_dir(),
            state=state,
            ports=ports,
            credentials=load_or_create_credentials(state / "credentials.json"),
        )

    def record_ports(self) -> None:
        (self.state / "ports.json").write_text(json.dumps(self.ports, indent=2))

    def component_state(self, name: str) -> Path:
        path = self.state / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def logs(self) -> Path:
        path = self.state / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path
