"""Drives the stack's components: ``up``, ``down``, ``status`` and ``env``.

Components are handled in a fixed dependency order; ``up`` installs then starts each one and
is a no-op for what is already healthy, ``down`` stops what the pid files say we started, in
reverse order. After ``up`` the connection settings are also written to ``<state>/env.sh``
and the built tools are linked into ``<state>/bin``.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mobileplane.stack.components.base import Component, Context
from mobileplane.stack.components.helm import Helm
from mobileplane.stack.components.kube import KUBE_BINARIES, Kube
from mobileplane.stack.components.node import Node
from mobileplane.stack.components.nodebuild import NODE_BINARIES, coredns_key
from mobileplane.stack.components.postgres import Postgres, data_root
from mobileplane.stack.components.redis import Redis
from mobileplane.stack.components.s3 import S3
from mobileplane.stack.components.seaweedfs import SeaweedFS
from mobileplane.stack.components.unleash import Unleash
from mobileplane.stack.config import ConfigError, StackConfig
from mobileplane.stack.gobuild import Build
from mobileplane.stack.procs import ProcessTable
from mobileplane.stack.progress import Progress
from mobileplane.stack.versions import pin


def components() -> list[Component]:
    return [Postgres(), Redis(), S3(), SeaweedFS(), Unleash(), Kube(), Node(), Helm()]


def names() -> list[str]:
    return [c.name for c in components()]


def select(only: Sequence[str] | None) -> list[Component]:
    """The components to act on: ``only`` and everything they require, in order."""
    every = components()
    if not only:
        return every
    by_name = {c.name: c for c in every}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise ConfigError(f"unknown component(s) {unknown}; choose from {sorted(by_name)}")
    wanted: set[str] = set()
    todo = list(only)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].requires)
    return [c for c in every if c.name in wanted]


def context(progress: Progress | None = None) -> Context:
    config = StackConfig.load()
    return Context(config=config, procs=ProcessTable(config.state), progress=progress or Progress())


def up(only: Sequence[str] | None = None, progress: Progress | None = None) -> Context:
    ctx = context(progress)
    chosen = select(only)
    ctx.config.record_ports()
    started = time.monotonic()
    for comp in chosen:
        if not comp.installed(ctx):
            comp.install(ctx)
        comp.start(ctx)
    _link_tools(ctx)
    (ctx.config.state / "env.sh").write_text(render_env(env(ctx)))
    ctx.progress.say(
        "stack",
        f"up in {time.monotonic() - started:.1f}s; "
        f'connection settings: eval "$(mobileplane stack env)"',
    )
    return ctx


def down(purge: bool = False, progress: Progress | None = None) -> list[str]:
    ctx = context(progress)
    stopped: list[str] = []
    for comp in reversed(components()):
        stopped += comp.stop(ctx)
    # Anything else we started and still track (e.g. from an older version of the stack).
    for name in ctx.procs.names():
        if ctx.procs.stop(name):
            stopped.append(name)
    for name in stopped:
        ctx.progress.say(name, "stopped")
    if purge:
        pg = data_root(ctx)
        shutil.rmtree(ctx.config.state, ignore_errors=True)
        shutil.rmtree(pg.parent if pg.parent.name.startswith("stack-") else pg, ignore_errors=True)
        ctx.progress.say(
            "stack", f"removed {ctx.config.state} (the build cache stays in {ctx.config.cache})"
        )
    return stopped


@dataclass(frozen=True)
class Status:
    name: str
    installed: bool
    running: bool
    detail: str


def status() -> list[Status]:
    ctx = context(Progress(quiet=True))
    out = []
    for comp in components():
        installed = comp.installed(ctx)
        health = comp.health(ctx) if installed else None
        out.append(
            Status(
                name=comp.name,
                installed=installed,
                running=bool(health and health.healthy),
                detail=health.detail if health else "not installed: run `mobileplane stack up`",
            )
        )
    return out


def env(ctx: Context | None = None) -> dict[str, str]:
    ctx = ctx or context(Progress(quiet=True))
    out: dict[str, str] = {"MOBILEPLANE_STACK_DIR": str(ctx.config.state)}
    for comp in components():
        out.update(comp.env(ctx))
    return out


def render_env(values: dict[str, str]) -> str:
    lines = [f"export {key}={shlex.quote(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def bin_dir(ctx: Context) -> str:
    return str(ctx.config.state / "bin")


def _link_tools(ctx: Context) -> None:
    """Link the built tools into ``<state>/bin`` so one PATH entry reaches them all."""
    target = ctx.config.state / "bin"
    target.mkdir(exist_ok=True)
    tools = {
        "helm": Build(ctx, "helm", pin("helm").version).bin / "helm",
        "kwok": Build(ctx, "kwok", pin("kwok").version).bin / "kwok",
        "etcd": Build(ctx, "etcd", pin("etcd").version).bin / "etcd",
        "versitygw": Build(ctx, "versitygw", pin("versitygw").version).bin / "versitygw",
        "weed": Build(ctx, "seaweedfs", pin("seaweedfs").version).bin / "weed",
    }
    for b in KUBE_BINARIES:
        tools[b] = Build(ctx, "kubernetes", pin("kubernetes").version).bin / b
    for b in NODE_BINARIES:
        tools[b] = Build(ctx, "kubernetes-node", pin("kubernetes").version).bin / b
    tools["coredns"] = Build(ctx, "coredns", coredns_key()).bin / "coredns"
    tools["crictl"] = Build(ctx, "cri-tools", pin("cri-tools").version).bin / "crictl"
    for name, path in tools.items():
        link = target / name
        if path.exists():
            link.unlink(missing_ok=True)
            link.symlink_to(path)
