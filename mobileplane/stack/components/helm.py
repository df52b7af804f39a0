"""Helm 3, built from the Go module proxy; a tool, not a server.

Built with the version ldflags Helm's own release uses, so ``helm version`` is truthful and
``helm template`` assumes the Kubernetes minor version the stack runs instead of 1.20.
"""

from __future__ import annotations

import subprocess

from mobileplane.stack.components.base import Context, Health
from mobileplane.stack.gobuild import Build
from mobileplane.stack.versions import pin


def helm_ldflags(helm_version: str, kube_version: str) -> str:
    _, minor, _ = kube_version.removeprefix("v").split(".")
    return " ".join(
        [
            "-s",
            "-w",
            f"-X helm.sh/helm/v3/internal/version.version={helm_version}",
            "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}",
            # `helm lint`'s deprecation rules read their own copy of the version.
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor}",
        ]
    )


class Helm:
    name = "helm"
    requires: tuple[str, ...] = ()

    def _build(self, ctx: Context) -> Build:
        return Build(ctx, "helm", pin("helm").version)

    def installed(self, ctx: Context) -> bool:
        return self._build(ctx).complete(["helm"])

    def install(self, ctx: Context) -> None:
        if self.installed(ctx):
            return
        b = self._build(ctx)
        p = pin("helm")
        b.reset()
        b.go(
            f"building helm {p.version}",
            [
                "install",
                "-trimpath",
                f"-ldflags={helm_ldflags(p.version, pin('kubernetes').version)}",
                f"{p.source}/cmd/helm@{p.version}",
            ],
            env={"GOBIN": str(b.bin)},
        )
        b.mark_complete()

    def health(self, ctx: Context) -> Health:
        if not self.installed(ctx):
            return Health(False, "not built")
        out = subprocess.run(
            [str(self._build(ctx).bin / "helm"), "version", "--short"],
            capture_output=True,
            text=True,
            check=False,
        )
        return Health(out.returncode == 0, (out.stdout or out.stderr).strip())

    def start(self, ctx: Context) -> None:
        ctx.progress.say(self.name, self.health(ctx).detail)

    def stop(self, ctx: Context) -> list[str]:
        return []

    def env(self, ctx: Context) -> dict[str, str]:
        return {"HELM": str(self._build(ctx).bin / "helm")}
