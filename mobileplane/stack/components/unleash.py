"""The Unleash feature-flag server, from npm, on its own database in the stack's PostgreSQL.

``unleash-server`` 7.5.1 is the newest release that runs on Node 20. It is installed once
into the version-keyed cache with ``npm install`` and started with its own entry point
(``dist/server.js``), configured through the environment as its documentation describes.
Three API tokens are made at first start: admin (Admin API), backend (server SDKs such as
the Python UnleashClient) and frontend.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from mobileplane.stack.components.base import Context, Health, ensure_port_free, wait_until
from mobileplane.stack.components.postgres import app_url, ensure_database
from mobileplane.stack.errors import StackError
from mobileplane.stack.versions import pin

DATABASE = "unleash"
#: Node 20 is the oldest Node that unleash-server 7.x supports.
MIN_NODE_MAJOR = 20


def _node_major(node: str) -> int | None:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    try:
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except ValueError:
        return None


class Unleash:
    name = "unleash"
    requires: tuple[str, ...] = ("postgres",)

    def _root(self, ctx: Context) -> Path:
        return ctx.config.cache / pin("unleash").cache_key

    def _entry(self, ctx: Context) -> Path:
        return self._root(ctx) / "node_modules" / "unleash-server" / "dist" / "server.js"

    def installed(self, ctx: Context) -> bool:
        return (self._root(ctx) / ".complete").exists() and self._entry(ctx).exists()

    def _tools(self) -> tuple[str, str]:
        node, npm = shutil.which("node"), shutil.which("npm")
        fix = f"install Node.js {MIN_NODE_MAJOR} or newer with npm (https://nodejs.org)"
        if node is None or npm is None:
            raise StackError(self.name, "Node.js and npm are needed for the Unleash server", fix)
        major = _node_major(node)
        if major is None or major < MIN_NODE_MAJOR:
            raise StackError(self.name, f"Node.js {major} is too old for unleash-server", fix)
        return node, npm

    def install(self, ctx: Context) -> None:
        if self.installed(ctx):
            return
        _, npm = self._tools()
        p = pin("unleash")
        root = self._root(ctx)
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        (root / "package.json").write_text(
            json.dumps({"name": "mobileplane-unleash", "private": True}) + "\n"
        )
        ctx.progress.run(
            self.name,
            f"npm install {p.source}@{p.version}",
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--omit=dev",
                "--save-exact",
                f"{p.source}@{p.version}",
            ],
            root / "install.log",
            cwd=root,
            fix="check the network access to the npm registry, then retry",
        )
        (root / ".complete").write_text(p.version + "\n")

    def url(self, ctx: Context) -> str:
        return f"http://{ctx.config.host}:{ctx.config.ports['unleash']}"

    def health(self, ctx: Context) -> Health:
        try:
            with urllib.request.urlopen(self.url(ctx) + "/health", timeout=3) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError) as e:
            return Health(False, f"Unleash unreachable: {e}")
        ok = body.get("health") == "GOOD"
        return Health(ok, f"unleash-server {pin('unleash').version} ({body.get('health')})")

    def start(self, ctx: Context) -> None:
        port = ctx.config.ports["unleash"]
        if ctx.procs.alive(self.name) and self.health(ctx).healthy:
            ctx.progress.say(self.name, f"already running at {self.url(ctx)}")
            return
        ensure_port_free(self.name, ctx.config.host, port, "MOBILEPLANE_UNLEASH_PORT")
        node, _ = self._tools()
        ensure_database(ctx, DATABASE, DATABASE)
        creds = ctx.config.credentials
        env = {
            "DATABASE_URL": app_url(ctx, DATABASE, DATABASE),
            "DATABASE_SSL": "false",
            "HTTP_HOST": ctx.config.host,
            "HTTP_PORT": str(port),
            "UNLEASH_URL": self.url(ctx),
            "INIT_ADMIN_API_TOKENS": creds.unleash_admin_token,
            "INIT_BACKEND_API_TOKENS": creds.unleash_backend_token,
            "INIT_FRONTEND_API_TOKENS": creds.unleash_frontend_token,
            "UNLEASH_DEFAULT_ADMIN_USERNAME": "admin",
            "UNLEASH_DEFAULT_ADMIN_PASSWORD": creds.unleash_admin_password,
            "LOG_LEVEL": "warn",
            # No network but the registries here, and no telemetry in any case.
            "CHECK_VERSION": "false",
            "SEND_TELEMETRY": "false",
            "NODE_ENV": "production",
        }
        log = ctx.log(self.name)
        ctx.procs.start(self.name, [node, str(self._entry(ctx))], log, cwd=self._root(ctx), env=env)
        wait_until(
            self.name,
            "Unleash start (first start runs its migrations)",
            lambda: self.health(ctx),
            timeout=180,
            fix="read the log",
            log=log,
            alive=lambda: ctx.procs.alive(self.name),
            interval=1.0,
        )
        self._check_tokens(ctx)
        ctx.progress.say(self.name, f"ready at {self.url(ctx)}")

    def _check_tokens(self, ctx: Context) -> None:
        """The admin token must open the Admin API: tokens are only made on a first start."""
        req = urllib.request.Request(self.url(ctx) + "/api/admin/projects")
        req.add_header("Authorization", ctx.config.credentials.unleash_admin_token)
        try:
            with urllib.request.urlopen(req, timeout=5):
                return
        except urllib.error.HTTPError as e:
            raise StackError(
                self.name,
                f"the admin token is refused ({e.code}): the database was set up with other tokens",
                "`mobileplane stack down --purge` then `mobileplane stack up`",
            ) from e

    def stop(self, ctx: Context) -> list[str]:
        return [self.name] if ctx.procs.stop(self.name) else []

    def env(self, ctx: Context) -> dict[str, str]:
        creds = ctx.config.credentials
        return {
            "UNLEASH_URL": self.url(ctx) + "/api",
            "UNLEASH_API_TOKEN": creds.unleash_backend_token,
            "UNLEASH_ADMIN_TOKEN": creds.unleash_admin_token,
            "UNLEASH_FRONTEND_TOKEN": creds.unleash_frontend_token,
        }
