"""Installing Debian packages for the stack, when we may (as root) and saying how when not.

Also used by ``mobileplane image build`` for its tools (buildah, skopeo, debootstrap).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mobileplane.stack.components.base import Context
from mobileplane.stack.errors import StackError
from mobileplane.stack.progress import Progress


def apt_install(ctx: Context, component: str, packages: list[str]) -> None:
    install_packages(ctx.progress, component, packages, ctx.log(f"{component}-install"))


def install_packages(progress: Progress, component: str, packages: list[str], log: Path) -> None:
    """``apt-get install`` the packages as root, with progress lines and output in ``log``."""
    fix = f"install them yourself: sudo apt-get install -y {' '.join(packages)}"
    if os.geteuid() != 0:
        raise StackError(component, f"Debian packages {packages} are missing", fix)
    if shutil.which("apt-get") is None:
        raise StackError(component, "apt-get is not available on this machine", fix)
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    progress.run(
        component,
        "apt-get update",
        ["apt-get", "update", "-q"],
        log,
        env=env,
        fix="check the network access to the Debian mirrors, then retry",
    )
    progress.run(
        component,
        f"apt-get install {' '.join(packages)}",
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        log,
        env=env,
        fix=fix,
    )
