"""PostgreSQL 15 from the Debian package, one cluster per stack, on loopback.

PostgreSQL refuses to run as root, so when we are root the server runs as the ``postgres``
system user, with its data under /var/lib/mobileplane (the ``postgres`` user cannot reach a
root home directory). The stack's role ``mobileplane`` may create databases and roles: the
tests create one database per test and the operator creates least-privileged roles.

The cluster runs with ``fsync=off``: it is a throwaway development and test database, and
the speed matters more than surviving a power cut. Production uses a real server.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import signal
from pathlib import Path

import psycopg
from psycopg import sql

from mobileplane.stack.components.base import Context, Health, ensure_port_free, wait_until
from mobileplane.stack.components.debian import apt_install
from mobileplane.stack.errors import StackError
from mobileplane.stack.versions import pin

APP_ROLE = "mobileplane"
APP_DATABASE = "mobileplane"


def bindir() -> Path:
    return Path(f"/usr/lib/postgresql/{pin('postgres').version}/bin")


def _run_as() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def data_root(ctx: Context) -> Path:
    if os.geteuid() != 0:
        return ctx.config.component_state("postgres")
    key = hashlib.sha256(str(ctx.config.state).encode()).hexdigest()[:10]
    return Path("/var/lib/mobileplane") / f"stack-{key}" / "postgres"


def admin_conninfo(ctx: Context, dbname: str = "postgres") -> str:
    c = ctx.config
    return (
        f"host={c.host} port={c.ports['postgres']} user=postgres dbname={dbname} "
        f"password={c.credentials.postgres_password} connect_timeout=3"
    )


def app_url(ctx: Context, dbname: str = APP_DATABASE, role: str = APP_ROLE) -> str:
    c = ctx.config
    return (
        f"postgresql://{role}:{c.credentials.postgres_password}@{c.host}:"
        f"{c.ports['postgres']}/{dbname}"
    )


def ensure_database(ctx: Context, dbname: str, owner: str) -> None:
    """Create role ``owner`` (login, same password) and database ``dbname`` if missing."""
    pw = ctx.config.credentials.postgres_password
    with psycopg.connect(admin_conninfo(ctx), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
                    sql.Identifier(owner), sql.Literal(pw)
                )
            )
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(owner)
                )
            )


class Postgres:
    name = "postgres"
    requires: tuple[str, ...] = ()

    def installed(self, ctx: Context) -> bool:
        return (bindir() / "postgres").exists()

    def install(self, ctx: Context) -> None:
        if self.installed(ctx):
            return
        apt_install(ctx, self.name, [pin("postgres").source])
        if not self.installed(ctx):
            raise StackError(
                self.name,
                f"{bindir()}/postgres is missing after the install",
                "check `dpkg -L postgresql-15`",
            )

    def _chown(self, path: Path) -> None:
        user = _run_as()
        if user is None:
            return
        uid = pwd.getpwnam(user).pw_uid
        gid = grp.getgrnam(user).gr_gid
        os.chown(path, uid, gid)

    def _initdb(self, ctx: Context, data: Path) -> None:
        root = data.parent
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self._chown(root)
        pwfile = root / "pwfile"
        pwfile.write_text(ctx.config.credentials.postgres_password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        cmd = [
            str(bindir() / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
        ]
        if _run_as():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        try:
            ctx.progress.run(
                self.name,
                "initdb",
                cmd,
                ctx.log("postgres-initdb"),
                fix=f"remove {root} and run `mobileplane stack up` again",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def health(self, ctx: Context) -> Health:
        try:
            with psycopg.connect(admin_conninfo(ctx)) as conn:
                version = conn.execute("SHOW server_version").fetchone()
        except psycopg.Error as e:
            return Health(False, str(e).strip().splitlines()[0] if str(e) else type(e).__name__)
        return Health(True, f"PostgreSQL {version[0] if version else '?'}")

    def start(self, ctx: Context) -> None:
        port = ctx.config.ports["postgres"]
        if ctx.procs.alive(self.name) and self.health(ctx).healthy:
            ctx.progress.say(self.name, f"already running on {ctx.config.host}:{port}")
            return
        ensure_port_free(self.name, ctx.config.host, port, "MOBILEPLANE_POSTGRES_PORT")
        root = data_root(ctx)
        data = root / "data"
        if not (data / "PG_VERSION").exists():
            if data.exists():
                shutil.rmtree(data)
            self._initdb(ctx, data)
        sockets = root / "run"
        sockets.mkdir(exist_ok=True)
        self._chown(sockets)
        argv = [
            str(bindir() / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={ctx.config.host}",
            "-c",
            f"unix_socket_directories={sockets}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=400",
            "-c",
            "shared_buffers=128MB",
        ]
        log = ctx.log(self.name)
        ctx.procs.start(self.name, argv, log, cwd=root, user=_run_as())
        wait_until(
            self.name,
            "PostgreSQL start",
            lambda: self.health(ctx),
            timeout=60,
            fix=f"read the log; to start afresh remove {root}",
            log=log,
            alive=lambda: ctx.procs.alive(self.name),
        )
        ensure_database(ctx, APP_DATABASE, APP_ROLE)
        ctx.progress.say(self.name, f"ready on {ctx.config.host}:{port}")

    def stop(self, ctx: Context) -> list[str]:
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
        return [self.name] if ctx.procs.stop(self.name, signal.SIGINT, timeout=30) else []

    def env(self, ctx: Context) -> dict[str, str]:
        c = ctx.config
        return {
            "DATABASE_URL": app_url(ctx),
            "PGHOST": c.host,
            "PGPORT": str(c.ports["postgres"]),
            "PGUSER": APP_ROLE,
            "PGPASSWORD": c.credentials.postgres_password,
            "PGDATABASE": APP_DATABASE,
        }
