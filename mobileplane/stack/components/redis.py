"""Redis 7 from the Debian package, on loopback, without persistence.

The stack's Redis holds caches, rate-limit counters and test streams; it keeps nothing
across restarts (``save ""``, no AOF), like a cache in development should.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from mobileplane.stack.components.base import Context, Health, ensure_port_free, wait_until
from mobileplane.stack.components.debian import apt_install
from mobileplane.stack.errors import StackError
from mobileplane.stack.versions import pin


def server_binary() -> Path | None:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    return Path(found) if found else None


class Redis:
    name = "redis"
    requires: tuple[str, ...] = ()

    def installed(self, ctx: Context) -> bool:
        return server_binary() is not None

    def install(self, ctx: Context) -> None:
        if self.installed(ctx):
            return
        apt_install(ctx, self.name, [pin("redis").source])
        if not self.installed(ctx):
            raise StackError(
                self.name,
                "redis-server is missing after the install",
                "check `dpkg -L redis-server`",
            )

    def url(self, ctx: Context) -> str:
        return f"redis://{ctx.config.host}:{ctx.config.ports['redis']}/0"

    def health(self, ctx: Context) -> Health:
        try:
            client = redis.Redis.from_url(self.url(ctx), socket_timeout=2, socket_connect_timeout=2)
            info = client.info("server")
            client.close()
        except redis.RedisError as e:
            return Health(False, str(e) or type(e).__name__)
        return Health(True, f"Redis {info.get('redis_version', '?')}")

    def start(self, ctx: Context) -> None:
        port = ctx.config.ports["redis"]
        if ctx.procs.alive(self.name) and self.health(ctx).healthy:
            ctx.progress.say(self.name, f"already running on {ctx.config.host}:{port}")
            return
        ensure_port_free(self.name, ctx.config.host, port, "MOBILEPLANE_REDIS_PORT")
        binary = server_binary()
        if binary is None:
            raise StackError(
                self.name, "redis-server is not installed", "run `mobileplane stack up`"
            )
        workdir = ctx.config.component_state(self.name)
        argv = [
            str(binary),
            "--port",
            str(port),
            "--bind",
            ctx.config.host,
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--databases",
            "16",
        ]
        log = ctx.log(self.name)
        ctx.procs.start(self.name, argv, log, cwd=workdir)
        wait_until(
            self.name,
            "Redis start",
            lambda: self.health(ctx),
            timeout=30,
            fix="read the log",
            log=log,
            alive=lambda: ctx.procs.alive(self.name),
        )
        ctx.progress.say(self.name, f"ready on {ctx.config.host}:{port}")

    def stop(self, ctx: Context) -> list[str]:
        return [self.name] if ctx.procs.stop(self.name) else []

    def env(self, ctx: Context) -> dict[str, str]:
        return {"REDIS_URL": self.url(ctx)}
