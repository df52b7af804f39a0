"""A real Kubernetes control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok.

Everything is built from the Go module proxy into the version-keyed cache (the first build
takes minutes; later starts take seconds) and started on loopback with the plan of
:mod:`mobileplane.stack.kubeplan`. ``KUBECONFIG`` points at an admin kubeconfig with a
static token; RBAC is on, so identities other than the admin are really checked.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobileplane.stack import kubeplan
from mobileplane.stack.components.base import Context, Health, ensure_port_free, wait_until
from mobileplane.stack.errors import StackError
from mobileplane.stack.gobuild import (
    Build,
    godebug_line,
    module_dir,
    module_gomod,
    staging_modules,
)
from mobileplane.stack.pki import ensure_client_cert, ensure_pki
from mobileplane.stack.versions import pin

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
#: Start order; stop runs in reverse.
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def build_etcd(ctx: Context) -> Build:
    p = pin("etcd")
    b = Build(ctx, "etcd", p.version)
    if b.complete(["etcd"]):
        return b
    # go.etcd.io/etcd/server/v3 is a main package with replace directives, so it cannot be
    # `go install`ed: build it from a wrapper module of its own (kept apart from the
    # Kubernetes wrapper, whose etcd client versions it would otherwise bump).
    b.reset()
    (b.root / "go.mod").write_text("module mobileplane.local/etcdbuild\n\ngo 1.24.0\n")
    b.go("resolving etcd modules", ["get", "-tool", f"{p.source}@{p.version}"])
    b.go(
        f"building etcd {p.version}",
        ["build", "-trimpath", "-ldflags=-s -w", "-o", str(b.bin / "etcd"), p.source],
    )
    b.mark_complete()
    return b


def build_kubernetes(ctx: Context) -> Build:
    return build_kube_wrapper(
        ctx,
        "kubernetes",
        KUBE_BINARIES,
        resolving="resolving Kubernetes modules (0.5-1 GB on a cold cache)",
        duration="a cold build takes 5-30 minutes",
    )


def build_kube_wrapper(
    ctx: Context, name: str, binaries: Sequence[str], *, resolving: str, duration: str
) -> Build:
    """``binaries`` (commands of kubernetes/cmd) from the Kubernetes wrapper module
    (:func:`kubeplan.kube_wrapper_gomod`) into the cache directory ``name``: the control
    plane's and the real node's builds share the go.mod, flags and Go caches, each with a
    directory of its own so that one never invalidates the other's finished build."""
    p = pin("kubernetes")
    b = Build(ctx, name, p.version)
    if b.complete(binaries):
        return b
    b.reset()
    ctx.progress.say(name, f"fetching the go.mod of {p.source}@{p.version}")
    gomod = module_gomod(name, p.source, p.version)
    (b.root / "go.mod").write_text(
        kubeplan.kube_wrapper_gomod(p.version, staging_modules(gomod), godebug_line(gomod))
    )
    cmds = [f"{p.source}/cmd/{binary}" for binary in binaries]
    b.go(resolving, ["get", "-tool", *[f"{c}@{p.version}" for c in cmds]])
    b.go("tidying the wrapper module", ["mod", "tidy"])
    b.go(
        f"building {', '.join(binaries)} {p.version} ({duration})",
        [
            "build",
            "-trimpath",
            "-tags=selinux,notest",
            f"-ldflags={kubeplan.kube_version_ldflags(p.version)}",
            "-o",
            str(b.bin) + "/",
            *cmds,
        ],
    )
    b.mark_complete()
    return b


def build_kwok(ctx: Context) -> Build:
    p = pin("kwok")
    b = Build(ctx, "kwok", p.version)
    if not b.complete(["kwok", "stages.yaml"]):
        b.install(f"{p.source}/cmd/kwok", ["kwok"])
        source = module_dir("kwok", p.source, p.version)
        docs = [(source / f).read_text().strip() for f in kubeplan.KWOK_STAGE_FILES]
        (b.bin / "stages.yaml").write_text("\n---\n".join(docs) + "\n")
    return b


class Kube:
    name = "kube"
    requires: tuple[str, ...] = ()

    def _paths(self, ctx: Context) -> kubeplan.KubePaths:
        return kubeplan.KubePaths(ctx.config.component_state("kube"))

    def _builds(self, ctx: Context) -> tuple[Build, Build, Build]:
        return (
            Build(ctx, "etcd", pin("etcd").version),
            Build(ctx, "kubernetes", pin("kubernetes").version),
            Build(ctx, "kwok", pin("kwok").version),
        )

    def installed(self, ctx: Context) -> bool:
        etcd, kube, kwok = self._builds(ctx)
        return (
            etcd.complete(["etcd"])
            and kube.complete(KUBE_BINARIES)
            and kwok.complete(["kwok", "stages.yaml"])
        )

    def install(self, ctx: Context) -> None:
        build_etcd(ctx)
        build_kubernetes(ctx)
        build_kwok(ctx)

    # -- talking to the API server ------------------------------------------------------

    def server(self, ctx: Context) -> str:
        return f"https://{ctx.config.host}:{ctx.config.ports['apiserver']}"

    def request(
        self,
        ctx: Context,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout: float = 5.0,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """One API request as the stack's admin: ``(status, decoded body)``."""
        return self._request(ctx, method, path, body, timeout, content_type)

    def _request(
        self,
        ctx: Context,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout: float = 5.0,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        paths = self._paths(ctx)
        tls = ssl.create_default_context(cafile=str(paths.pem("ca.crt")))
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server(ctx) + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {ctx.config.credentials.kube_admin_token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=tls, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def _api_health(self, ctx: Context) -> Health:
        try:
            status, body = self._request(ctx, "GET", "/readyz", timeout=3)
        except (OSError, ssl.SSLError) as e:
            return Health(False, f"API server unreachable: {e}")
        return Health(status == 200, f"/readyz {status}: {str(body)[:120]}")

    def _etcd_health(self, ctx: Context) -> Health:
        url = f"http://{ctx.config.host}:{ctx.config.ports['etcd']}/health"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError) as e:
            return Health(False, f"etcd unreachable: {e}")
        return Health(body.get("health") == "true", f"etcd health {body}")

    def _nodes_ready(self, ctx: Context) -> Health:
        try:
            status, body = self._request(ctx, "GET", "/api/v1/nodes")
        except OSError as e:
            return Health(False, str(e))
        if status != 200:
            return Health(False, f"listing nodes: {status}")
        ready = [
            n["metadata"]["name"]
            for n in body.get("items", [])
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        missing = [n for n in kubeplan.FAKE_NODE_NAMES if n not in ready]
        return Health(
            not missing, f"ready nodes {ready}" if not missing else f"waiting for {missing}"
        )

    def health(self, ctx: Context) -> Health:
        dead = [p for p in PROCESSES if not ctx.procs.alive(p)]
        if dead:
            return Health(False, f"not running: {', '.join(dead)}")
        api = self._api_health(ctx)
        if not api.healthy:
            return api
        nodes = self._nodes_ready(ctx)
        if not nodes.healthy:
            return nodes
        _, version = self._request(ctx, "GET", "/version")
        git = version.get("gitVersion", "?") if isinstance(version, dict) else "?"
        return Health(True, f"Kubernetes {git}, {nodes.detail}")

    # -- lifecycle -----------------------------------------------------------------------

    def _write_kubeconfig(self, ctx: Context, paths: kubeplan.KubePaths) -> None:
        token = ctx.config.credentials.kube_admin_token
        paths.tokens.write_text(kubeplan.token_file_line(token))
        os.chmod(paths.tokens, 0o600)
        ca = base64.b64encode(paths.pem("ca.crt").read_bytes()).decode()
        paths.kubeconfig.write_text(kubeplan.kubeconfig_yaml(self.server(ctx), ca, token))
        os.chmod(paths.kubeconfig, 0o600)

    def _start(self, ctx: Context, name: str, argv: list[str], port_key: str) -> None:
        if ctx.procs.alive(name):
            return
        ensure_port_free(
            self.name,
            ctx.config.host,
            ctx.config.ports[port_key],
            f"MOBILEPLANE_{port_key.upper()}_PORT",
        )
        ctx.procs.start(name, argv, ctx.log(name), cwd=self._paths(ctx).root)

    def start(self, ctx: Context) -> None:
        if self.health(ctx).healthy:
            ctx.progress.say(self.name, f"already running at {self.server(ctx)}")
            return
        etcd, kube, kwok = self._builds(ctx)
        if not self.installed(ctx):
            raise StackError(
                self.name, "the control plane is not built", "run `mobileplane stack up`"
            )
        paths = self._paths(ctx)
        host, ports = ctx.config.host, ctx.config.ports
        ensure_pki(paths.pki, host)
        user, groups = kubeplan.KUBELET_CLIENT
        ensure_client_cert(paths.pki, paths.pki, "apiserver-kubelet-client", user, groups)
        self._write_kubeconfig(ctx, paths)

        self._start(
            ctx,
            "etcd",
            kubeplan.etcd_argv(etcd.bin / "etcd", paths, host, ports["etcd"], ports["etcd_peer"]),
            "etcd",
        )
        wait_until(
            "etcd",
            "etcd start",
            lambda: self._etcd_health(ctx),
            timeout=60,
            fix=f"read the log; to start afresh remove {paths.etcd_data}",
            log=ctx.log("etcd"),
            alive=lambda: ctx.procs.alive("etcd"),
        )

        self._start(
            ctx,
            "kube-apiserver",
            kubeplan.apiserver_argv(
                kube.bin / "kube-apiserver", paths, host, ports["apiserver"], ports["etcd"]
            ),
            "apiserver",
        )
        wait_until(
            "kube-apiserver",
            "API server start",
            lambda: self._api_health(ctx),
            timeout=120,
            fix="read the log",
            log=ctx.log("kube-apiserver"),
            alive=lambda: ctx.procs.alive("kube-apiserver"),
        )
        ctx.progress.say(self.name, f"API server ready at {self.server(ctx)}")

        self._start(
            ctx,
            "kube-controller-manager",
            kubeplan.controller_manager_argv(
                kube.bin / "kube-controller-manager", paths, host, ports["controller_manager"]
            ),
            "controller_manager",
        )
        self._start(
            ctx,
            "kube-scheduler",
            kubeplan.scheduler_argv(kube.bin / "kube-scheduler", paths, host, ports["scheduler"]),
            "scheduler",
        )
        self._start(
            ctx,
            "kwok",
            kubeplan.kwok_argv(
                kwok.bin / "kwok", kwok.bin / "stages.yaml", paths, host, ports["kwok"]
            ),
            "kwok",
        )
        for node in kubeplan.FAKE_NODE_NAMES:
            manifest = kubeplan.fake_node(node)
            status, body = self._request(ctx, "POST", "/api/v1/nodes", manifest)
            if status == 409:  # made by an earlier version: bring its capacity up to date
                status, body = self._request(
                    ctx,
                    "PATCH",
                    f"/api/v1/nodes/{node}/status",
                    {"status": manifest["status"]},
                    content_type="application/merge-patch+json",
                )
            if status not in (200, 201):
                raise StackError(
                    self.name,
                    f"creating node {node}: {status} {body}",
                    "read the kube-apiserver log",
                    ctx.log("kube-apiserver"),
                )
        wait_until(
            self.name,
            "fake nodes Ready (kwok)",
            lambda: self._nodes_ready(ctx),
            timeout=60,
            fix="read the kwok log",
            log=ctx.log("kwok"),
            alive=lambda: ctx.procs.alive("kwok"),
        )
        for name in ("kube-controller-manager", "kube-scheduler"):
            if not ctx.procs.alive(name):
                raise StackError(self.name, f"{name} exited", "read its log", ctx.log(name))
        ctx.progress.say(self.name, f"ready; KUBECONFIG={paths.kubeconfig}")

    def stop(self, ctx: Context) -> list[str]:
        return [name for name in reversed(PROCESSES) if ctx.procs.stop(name)]

    def env(self, ctx: Context) -> dict[str, str]:
        return {"KUBECONFIG": str(self._paths(ctx).kubeconfig)}


def kubeconfig_path(state: Path) -> Path:
    return kubeplan.KubePaths(state / "kube").kubeconfig
