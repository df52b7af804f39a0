"""Building the stack's Go programs from the Go module proxy, cached by version.

Nothing here downloads a prebuilt binary: every Go program (etcd, the Kubernetes control
plane, kwok, helm, versitygw) is compiled from its module, once, into
``<cache>/<component>-<version>/bin``. A build is trusted only after it completed (a
``.complete`` marker), so an interrupted build is redone rather than half used.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from mobileplane.stack.components.base import Context
from mobileplane.stack.errors import StackError

#: Go environment for every build: the machine's own toolchain (no toolchain downloads),
#: static binaries, and module-mode resolution in wrapper modules.
GO_ENV = {"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}

GO_FIX = "install Go 1.24 or newer (https://go.dev/doc/install) and put `go` on PATH"


def go_binary(component: str) -> str:
    go = shutil.which("go")
    if go is None:
        raise StackError(component, "the Go toolchain is needed to build this component", GO_FIX)
    return go


class Build:
    """One cached build directory: ``<cache>/<component>-<version>``."""

    def __init__(self, ctx: Context, component: str, version: str) -> None:
        self.ctx = ctx
        self.component = component
        self.version = version
        self.root = ctx.config.cache / f"{component}-{version}"
        self.bin = self.root / "bin"
        self.log = self.root / "build.log"

    def complete(self, binaries: Sequence[str]) -> bool:
        return (self.root / ".complete").exists() and all((self.bin / b).exists() for b in binaries)

    def mark_complete(self) -> None:
        (self.root / ".complete").write_text(self.version + "\n")

    def reset(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.bin.mkdir(parents=True)

    def go(
        self,
        label: str,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        fix: str | None = None,
    ) -> None:
        full_env = dict(GO_ENV)
        if env:
            full_env.update(env)
        self.ctx.progress.run(
            self.component,
            label,
            [go_binary(self.component), *args],
            self.log,
            cwd=cwd or self.root,
            env=full_env,
            fix=fix
            or "check the network access to the Go module proxy and the log, then retry "
            "`mobileplane stack up` (completed downloads are kept in the Go module cache)",
        )

    def install(self, package: str, binaries: Sequence[str]) -> None:
        """``go install package@version`` into this build's bin directory."""
        self.reset()
        self.go(
            f"building {package}@{self.version} (cold builds take minutes)",
            ["install", "-trimpath", "-ldflags=-s -w", f"{package}@{self.version}"],
            env={"GOBIN": str(self.bin)},
        )
        self.mark_complete()


def _download(component: str, module: str, version: str) -> dict[str, str]:
    out = subprocess.run(
        [go_binary(component), "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        env={**_os_env(), **GO_ENV},
        check=False,
    )
    if out.returncode != 0:
        raise StackError(
            component,
            f"cannot download {module}@{version}: {out.stderr.strip()}",
            "check the network access to the Go module proxy",
        )
    info: dict[str, str] = json.loads(out.stdout)
    return info


def module_gomod(component: str, module: str, version: str) -> str:
    """The text of ``module@version``'s go.mod, downloaded through the proxy."""
    return Path(_download(component, module, version)["GoMod"]).read_text()


def module_dir(component: str, module: str, version: str) -> Path:
    """The extracted source of ``module@version`` in the Go module cache (read-only)."""
    return Path(_download(component, module, version)["Dir"])


def staging_modules(gomod: str) -> list[str]:
    """k8s.io/kubernetes requires its staging modules at v0.0.0 (replaced by ./staging)."""
    found = re.findall(r"^\s+(k8s\.io/[a-z0-9-]+) v0\.0\.0(?:\s*//.*)?$", gomod, flags=re.MULTILINE)
    return sorted(set(found))


def godebug_line(gomod: str) -> str | None:
    """The main module's ``godebug`` directive (single line or block), to copy verbatim."""
    match = re.search(r"^godebug \([^)]*\)|^godebug .*$", gomod, flags=re.MULTILINE)
    return match.group(0) if match else None


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)
